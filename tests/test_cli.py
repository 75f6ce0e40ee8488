"""The `hrsnn` command: train (--json), runs list/show, config errors, resume, demo."""

from __future__ import annotations

import json

import pytest

from hrsnn.cli import main
from hrsnn.experiments.store import RunStore

TINY = [
    "--set", "model.layers=[{size: 8, neuron: {b0: 0.01}}]",
    "--set", "task.options={mode: row, val_fraction: 0.15}",
    "--set", "train.batch_size=64",
]  # fmt: skip


def _run(capsys, tmp_path, *args):
    code = main(["--store", str(tmp_path / "runs.sqlite"), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_train_json_records_run_and_runs_commands(capsys, tmp_path):
    code, out, _ = _run(capsys, tmp_path, "train", "--task", "digits", "--epochs", "2", "--json", *TINY)
    assert code == 0
    result = json.loads(out.strip().splitlines()[-1])
    assert result["run_id"] == 1 and 0.0 <= result["test_accuracy"] <= 1.0
    assert result["epochs_run"] == 2 and result["neurons"] == 18
    store = RunStore(tmp_path / "runs.sqlite")
    record = store.get_run(1)
    assert record.status == "completed" and len(record.epochs) == 2
    assert record.config["model"]["layers"][0]["size"] == 8
    assert {a["kind"] for a in record.artifacts} == {"model", "checkpoint"}
    code, out, _ = _run(capsys, tmp_path, "runs", "list")
    assert code == 0 and "digits" in out
    code, out, _ = _run(capsys, tmp_path, "runs", "show", "1", "--json")
    assert json.loads(out)["final_metrics"]["test_accuracy"] == pytest.approx(result["test_accuracy"])


def test_config_file_and_bad_field_errors(capsys, tmp_path):
    cfg = tmp_path / "exp.toml"
    cfg.write_text('[task]\nname = "digits"\n[train]\nepochs = 1\nlr = "fast"\n')
    code, _, err = _run(capsys, tmp_path, "train", "--config", str(cfg), "--quiet")
    assert code == 2 and "config.train.lr='fast'" in err and "must be a number" in err
    code, _, err = _run(capsys, tmp_path, "train", "--task", "mnist")
    assert code == 2 and "task.name='mnist'" in err
    code, _, err = _run(capsys, tmp_path, "runs", "show", "42")
    assert code == 2 and "no run with id 42" in err


def test_resume_continues_a_killed_run(capsys, tmp_path):
    code, out, _ = _run(capsys, tmp_path, "train", "--epochs", "1", "--json", *TINY)
    assert code == 0
    store = RunStore(tmp_path / "runs.sqlite")
    store.set_status(1, "interrupted")
    # resuming a finished 1-epoch run with its own config trains nothing more and reports the same metrics
    code, out2, _ = _run(capsys, tmp_path, "train", "--resume", "1", "--json")
    assert code == 0
    first, second = json.loads(out.splitlines()[-1]), json.loads(out2.splitlines()[-1])
    assert second["run_id"] == 1 and second["test_accuracy"] == first["test_accuracy"]
    assert store.get_run(1).status == "completed" and len(store.epochs(1)) == 1


def test_demo_prints_result_table(capsys, tmp_path):
    code, out, _ = _run(capsys, tmp_path, "demo", "--epochs", "1", "--quiet")
    assert code == 0
    assert "test accuracy" in out and "firing rate" in out and "neurons / synapses" in out
