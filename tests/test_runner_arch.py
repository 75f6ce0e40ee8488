"""`hrsnn train --arch`: classical baselines through the same runner, CLI and run store as the SRNN."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from _helpers import run_cli

from hrsnn.classical import ClassicalConfig, ClassicalRNN
from hrsnn.errors import ConfigError
from hrsnn.experiments.runner import CLASSICAL_PRESETS, PRESETS, ExperimentConfig
from hrsnn.experiments.store import RunStore
from hrsnn.models import load_model
from hrsnn.objectives import make_objective
from hrsnn.tasks import load_digits_sequence
from hrsnn.training import evaluate

TINY = [
    "--set", "model.hidden_sizes=[8]",
    "--set", "task.options={mode: row, val_fraction: 0.15}",
    "--set", "train.batch_size=64",
]  # fmt: skip



def test_train_arch_gru_records_a_completed_run(capsys, tmp_path):
    code, out, _ = run_cli(capsys, tmp_path, "train", "--arch", "gru", "--epochs", "2", "--json", *TINY)
    assert code == 0
    result = json.loads(out.strip().splitlines()[-1])
    # 8 inputs (a row per step) → GRU(8) → 10 classes: 3·8·8 input + 3·8·8 recurrent + 2·3·8 biases + 8·10 + 10
    assert result["hidden_units"] == 8 and result["parameters"] == 192 + 192 + 48 + 90
    assert not {"neurons", "synapses", "test_firing_rate"} & result.keys()
    record = RunStore(tmp_path / "runs.sqlite").get_run(result["run_id"])
    assert record.status == "completed" and record.kind == "train" and record.name == "digits-gru"
    assert record.config["arch"] == "gru" and record.config["model"] == {"hidden_sizes": [8], "bias": True}
    assert len(record.epochs) == 2 and "train_firing_rate" not in record.epochs[0]["metrics"]
    # the saved model is the selected one: loaded back, it scores the recorded test accuracy
    model = load_model(result["model_path"])
    assert isinstance(model, ClassicalRNN) and model.config.kind == "gru"
    config = ExperimentConfig.from_dict(record.config)
    test = load_digits_sequence(**config.task.options, seed=0).test
    metrics = evaluate(model, test, make_objective(config.train.loss))
    assert metrics["accuracy"] == pytest.approx(result["test_accuracy"])
    code, out, _ = run_cli(capsys, tmp_path, "runs", "list")
    assert code == 0 and "digits-gru" in out and "completed" in out


def test_a_bad_arch_is_one_line_naming_it(capsys, tmp_path):
    code, _, err = run_cli(capsys, tmp_path, "train", "--arch", "transformer", "--epochs", "1")
    assert code == 2 and err.count("\n") == 1
    assert "config.arch='transformer': must be one of ['srnn', 'lstm', 'gru', 'rnn']" in err
    code, _, err = run_cli(capsys, tmp_path, "train", "--set", "arch=[lstm]")
    assert code == 2 and err.count("\n") == 1 and "config.arch=['lstm']" in err


def test_an_interrupted_classical_run_resumes_to_the_uninterrupted_result(capsys, tmp_path, monkeypatch):
    reference = tmp_path / "reference"
    reference.mkdir()
    code, out, _ = run_cli(capsys, reference, "train", "--arch", "lstm", "--epochs", "4", "--json", *TINY)
    assert code == 0
    expected = json.loads(out.splitlines()[-1])
    log_epoch = RunStore.log_epoch

    def interrupt_after_two(self, run_id, epoch, metrics):
        log_epoch(self, run_id, epoch, metrics)
        if epoch == 2:
            raise KeyboardInterrupt  # Ctrl-C after the checkpoint of epoch 2 was written

    with monkeypatch.context() as patch:
        patch.setattr(RunStore, "log_epoch", interrupt_after_two)
        code, _, err = run_cli(capsys, tmp_path, "train", "--arch", "lstm", "--epochs", "4", "--quiet", *TINY)
    assert code == 130 and "resume it with `hrsnn train --resume 1`" in err
    store = RunStore(tmp_path / "runs.sqlite")
    assert store.get_run(1).status == "interrupted" and len(store.epochs(1)) == 2
    code, _, err = run_cli(capsys, tmp_path, "train", "--resume", "1", "--arch", "gru")
    assert code == 2 and "--arch='gru': cannot change when resuming run 1" in err
    code, out, _ = run_cli(capsys, tmp_path, "train", "--resume", "1", "--json")
    assert code == 0
    resumed = json.loads(out.splitlines()[-1])
    for key in ("test_accuracy", "test_loss", "val_accuracy", "best_epoch", "epochs_run", "parameters"):
        assert resumed[key] == expected[key], key
    record = store.get_run(1)
    assert record.status == "completed" and record.config["arch"] == "lstm" and len(record.epochs) == 4


def test_classical_presets_share_the_srnn_task_section_and_differ_in_model():
    for task, by_arch in CLASSICAL_PRESETS.items():
        srnn = ExperimentConfig.from_dict({"task": {"name": task}})
        assert srnn.arch == "srnn" and "layers" in srnn.model
        for arch in ("lstm", "gru", "rnn"):
            config = ExperimentConfig.from_dict({"task": {"name": task}, "arch": arch})
            assert config.arch == arch and config.task == srnn.task and config.name == f"{task}-{arch}"
            assert dict(config.model) == dict(by_arch[arch]["model"])
            if task == "ecg":  # per-step labels: the same loss and skipped steps, hence the same accuracy
                assert (config.train.loss, config.train.skip_steps) == ("per_step_nll", 10)
    assert (
        ExperimentConfig.from_dict({"task": {"name": "ecg"}}).model
        == ExperimentConfig.from_dict({"task": {"name": "ecg"}, "arch": "srnn"}).model
    )
    assert set(PRESETS) == set(CLASSICAL_PRESETS)


def test_model_section_errors_name_the_field():
    with pytest.raises(ConfigError, match=r"model.layers=.*unknown field; known: \['bias', 'hidden_sizes'"):
        ExperimentConfig.from_dict({"arch": "lstm", "model": {"layers": [{"size": 8}]}})
    with pytest.raises(ConfigError, match="model.kind='gru': is taken from arch \\('lstm'\\)"):
        ExperimentConfig.from_dict({"arch": "lstm", "model": {"kind": "gru"}})
    with pytest.raises(ConfigError, match=r"model.hidden_sizes\[0\]=0: must be >= 1"):
        ExperimentConfig.from_dict({"arch": "rnn", "model": {"hidden_sizes": [0]}})
    with pytest.raises(ConfigError, match="train.loss='spike_count_ce': needs spiking output units; arch 'gru' has"):
        ExperimentConfig.from_dict({"arch": "gru", "train": {"loss": "spike_count_ce"}})
    with pytest.raises(ConfigError, match="model.n_inputs=4: is taken from the task"):
        ExperimentConfig.from_dict({"arch": "gru", "model": {"n_inputs": 4}})
    preset = ExperimentConfig.from_dict({"arch": "gru"})
    with pytest.raises(ConfigError, match="arch='bert'"):
        dataclasses.replace(preset, arch="bert")


def test_model_config_is_the_arch_with_the_task_channels():
    config = ExperimentConfig.from_dict({"arch": "rnn", "model": {"hidden_sizes": [7, 3], "bias": False}})
    splits = load_digits_sequence(mode="row", seed=0)
    built = config.model_config(splits)
    assert built == ClassicalConfig("rnn", 8, 10, (7, 3), bias=False)


def test_classical_model_fields_are_documented():
    docs = (Path(__file__).resolve().parents[1] / "docs" / "config.md").read_text("utf-8")
    names = {f.name for f in dataclasses.fields(ClassicalConfig)} - {"kind", "n_inputs", "n_outputs"}
    assert all(f"`{name}`" in docs for name in names)
    assert all(f'`"{arch}"`' in docs for arch in ("srnn", "lstm", "gru", "rnn"))


def test_srnn_runs_keep_their_metrics_and_record_the_arch(capsys, tmp_path):
    tiny = ["--set", "model.layers=[{size: 8, neuron: {b0: 0.01}}]", *TINY[2:]]
    code, out, _ = run_cli(capsys, tmp_path, "train", "--epochs", "1", "--json", *tiny)
    assert code == 0
    result = json.loads(out.splitlines()[-1])
    assert result["neurons"] == 18 and "test_firing_rate" in result and "parameters" not in result
    assert RunStore(tmp_path / "runs.sqlite").get_run(1).config["arch"] == "srnn"
