"""The `hrsnn` command: train (--json), runs list/show, config errors, resume, demo."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from _helpers import run_cli

from hrsnn.cli import main
from hrsnn.experiments.runner import ExperimentConfig, load_splits
from hrsnn.experiments.store import RunNotFoundError, RunStore

TINY = [
    "--set", "model.layers=[{size: 8, neuron: {b0: 0.01}}]",
    "--set", "task.options={mode: row, val_fraction: 0.15}",
    "--set", "train.batch_size=64",
]  # fmt: skip



def test_train_json_records_run_and_runs_commands(capsys, tmp_path):
    code, out, _ = run_cli(capsys, tmp_path, "train", "--task", "digits", "--epochs", "2", "--json", *TINY)
    assert code == 0
    result = json.loads(out.strip().splitlines()[-1])
    assert result["run_id"] == 1 and 0.0 <= result["test_accuracy"] <= 1.0
    assert result["epochs_run"] == 2 and result["neurons"] == 18
    store = RunStore(tmp_path / "runs.sqlite")
    record = store.get_run(1)
    assert record.status == "completed" and len(record.epochs) == 2
    assert record.config["model"]["layers"][0]["size"] == 8
    assert {a["kind"] for a in record.artifacts} == {"model", "checkpoint", "efficiency", "task"}
    task = json.loads(next(tmp_path.glob("runs/run-00001/task.json")).read_text())
    splits = load_splits(ExperimentConfig.from_dict(record.config))
    assert task["task"] == "digits" and task["test_indices"] == list(splits.info["test_indices"])
    # every run records its operation counts and energy (per test sequence) with its metrics
    assert record.final_metrics["ops_steps"] == 8 and record.final_metrics["energy_pj.float32_45nm"] > 0
    assert record.final_metrics["energy_pj.float32_45nm"] == pytest.approx(
        0.9 * record.final_metrics["ops_acs"] + 4.6 * record.final_metrics["ops_macs"]
    )
    code, out, _ = run_cli(capsys, tmp_path, "runs", "list")
    assert code == 0 and "digits" in out
    code, out, _ = run_cli(capsys, tmp_path, "runs", "show", "1", "--json")
    assert json.loads(out)["final_metrics"]["test_accuracy"] == pytest.approx(result["test_accuracy"])


def test_config_file_and_bad_field_errors(capsys, tmp_path):
    cfg = tmp_path / "exp.toml"
    cfg.write_text('[task]\nname = "digits"\n[train]\nepochs = 1\nlr = "fast"\n')
    code, _, err = run_cli(capsys, tmp_path, "train", "--config", str(cfg), "--quiet")
    assert code == 2 and "config.train.lr='fast'" in err and "must be a number" in err
    code, _, err = run_cli(capsys, tmp_path, "train", "--task", "mnist")
    assert code == 2 and "task.name='mnist'" in err
    code, _, err = run_cli(capsys, tmp_path, "runs", "show", "42")
    assert code == 2 and "no run with id 42" in err


def _spawn_train(tmp_path, *args) -> subprocess.Popen[str]:
    """`hrsnn train` in a child process (its own store in tmp_path), as a user or job scheduler would start it."""
    cmd = [sys.executable, "-m", "hrsnn.cli", "--store", str(tmp_path / "runs.sqlite"), "train", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for_epochs(store_path, run_id: int, n: int, proc: subprocess.Popen[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if store_path.exists():
            with contextlib.suppress(RunNotFoundError):
                if len(RunStore(store_path).epochs(run_id)) >= n:
                    return
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"run {run_id} did not reach {n} epochs in {timeout} s")


SLOW = ["--epochs", "6", "--quiet", *TINY]


def test_a_killed_run_shows_as_crashed_and_resumes_to_the_uninterrupted_result(capsys, tmp_path):
    reference = tmp_path / "reference"
    reference.mkdir()
    code, out, _ = run_cli(capsys, reference, "train", "--json", *SLOW)
    assert code == 0
    expected = json.loads(out.splitlines()[-1])

    proc = _spawn_train(tmp_path, *SLOW)
    store = RunStore(tmp_path / "runs.sqlite")
    _wait_for_epochs(store.path, 1, 2, proc)
    proc.kill()  # SIGKILL: no handler runs, the row says "running"
    proc.communicate()
    record = store.get_run(1)
    assert record.status == "running" and record.state == "crashed"
    code, out, _ = run_cli(capsys, tmp_path, "runs", "list")
    assert "crashed" in out
    done = len(store.epochs(1))
    assert 2 <= done < 6
    code, out, _ = run_cli(capsys, tmp_path, "train", "--resume", "1", "--json")
    assert code == 0
    resumed = json.loads(out.splitlines()[-1])
    # killed after `done` epochs and resumed: the same model as a run that was never interrupted
    for key in ("test_accuracy", "test_loss", "val_accuracy", "best_epoch", "epochs_run"):
        assert resumed[key] == expected[key], key
    assert store.get_run(1).status == "completed" and len(store.epochs(1)) == 6


def test_sigterm_marks_the_run_interrupted_with_a_resume_hint(tmp_path):
    proc = _spawn_train(tmp_path, *SLOW)
    store = RunStore(tmp_path / "runs.sqlite")
    _wait_for_epochs(store.path, 1, 1, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM
    assert "run 1 terminated by SIGTERM; resume it with `hrsnn train --resume 1`" in err
    record = store.get_run(1)
    assert (record.status, record.state, record.reason) == ("interrupted", "interrupted", "terminated by SIGTERM")


def test_resuming_a_live_run_is_refused(capsys, tmp_path):
    proc = _spawn_train(tmp_path, "--epochs", "200", "--quiet", *TINY)
    try:
        _wait_for_epochs(tmp_path / "runs.sqlite", 1, 1, proc)
        code, _, err = run_cli(capsys, tmp_path, "train", "--resume", "1")
        assert code == 2 and f"run=1: is still running (pid {proc.pid} on host" in err
    finally:
        proc.kill()
        proc.communicate()


def test_resume_with_epochs_extends_a_completed_run_and_refuses_what_it_cannot_do(capsys, tmp_path):
    code, out, _ = run_cli(capsys, tmp_path, "train", "--epochs", "1", "--json", *TINY)
    assert code == 0
    store = RunStore(tmp_path / "runs.sqlite")
    # a completed run without more epochs: nothing to do, said clearly
    code, _, err = run_cli(capsys, tmp_path, "train", "--resume", "1")
    assert code == 2 and "run 1 is completed (1 epochs); give --epochs > 1 to extend it" in err
    code, _, err = run_cli(capsys, tmp_path, "train", "--resume", "1", "--lr", "0.1")
    assert code == 2 and "--lr=0.1: cannot change when resuming run 1" in err
    code, out, _ = run_cli(capsys, tmp_path, "train", "--resume", "1", "--epochs", "3", "--json")
    assert code == 0 and json.loads(out.splitlines()[-1])["epochs_run"] == 3
    record = store.get_run(1)
    assert record.status == "completed" and len(record.epochs) == 3 and record.config["train"]["epochs"] == 3
    code, _, err = run_cli(capsys, tmp_path, "train", "--resume", "1", "--epochs", "2")
    assert code == 2 and "run 1 has already trained 3 epochs" in err
    assert store.get_run(1).status == "completed"  # a refused resume leaves the run as it was


def test_non_finite_training_fails_the_run_with_its_reason(capsys, tmp_path):
    code, _, err = run_cli(capsys, tmp_path, "train", "--lr", "1e6", "--epochs", "3", "--quiet", *TINY)
    assert code == 1
    assert err.count("\n") == 1 and "hrsnn: error: non-finite" in err and "run 1 is marked failed" in err
    record = RunStore(tmp_path / "runs.sqlite").get_run(1)
    assert record.status == "failed" and record.reason.startswith("NonFiniteError: non-finite")
    assert "model" not in {a["kind"] for a in record.artifacts}


def test_demo_prints_result_table(capsys, tmp_path):
    code, out, _ = run_cli(capsys, tmp_path, "demo", "--epochs", "1", "--seed", "3", "--quiet")
    assert code == 0
    assert "test accuracy" in out and "firing rate" in out and "neurons / synapses" in out
    header = out.split("\n\n")[0]
    # a readable summary, not a Python dict
    assert "{" not in header and "'mode'" not in header
    assert "a window of 8 pixels" in header and "128 recurrent ALIF neurons" in header and "seed 3" in header
    assert RunStore(tmp_path / "runs.sqlite").get_run(1).seed == 3


def test_help_starts_without_importing_torch():
    code = "import sys; from hrsnn.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_cli_choices_equal_the_registries_they_name():
    from hrsnn.cli import LNP_TASKS, LYAPUNOV_DRIVES, LYAPUNOV_METHODS
    from hrsnn.dynamics.snn import DRIVES, METHODS
    from hrsnn.experiments.lnp import TASKS

    assert tuple(sorted(METHODS)) == LYAPUNOV_METHODS
    assert tuple(sorted(DRIVES)) == LYAPUNOV_DRIVES
    assert tuple(sorted(TASKS)) == LNP_TASKS


def test_lnp_quick_flag_wins_over_a_config_file(tmp_path):
    from hrsnn.cli import build_parser
    from hrsnn.experiments.lnp import LNPExperimentConfig, _cli_data

    path = tmp_path / "big.toml"
    path.write_text("n_neurons = 1000\nseeds = [0, 1, 2]\n")
    args = build_parser().parse_args(["lnp", "--config", str(path), "--quick", "--seeds", "4"])
    config = LNPExperimentConfig.from_dict(_cli_data(args))
    assert (config.n_neurons, config.seeds) == (60, (4,))


def test_hrsnn_home_naming_a_file_is_one_line_and_exit_2(capsys, tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.write_text("")
    monkeypatch.setenv("HRSNN_HOME", str(home))
    code = main(["runs", "list"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and f"HRSNN_HOME='{home}': is a file" in err


def test_energy_compares_an_srnn_run_with_a_classical_run(capsys, tmp_path):
    assert run_cli(capsys, tmp_path, "train", "--epochs", "1", "--quiet", *TINY)[0] == 0
    gru = ["--arch", "gru", "--set", "model.hidden_sizes=[8]", "--set", "task.options={mode: row, val_fraction: 0.15}"]
    assert run_cli(capsys, tmp_path, "train", "--epochs", "1", "--quiet", *gru)[0] == 0
    code, out, _ = run_cli(capsys, tmp_path, "energy", "1")
    assert code == 0 and "run 1 srnn" in out and "effective total" in out
    code, out, _ = run_cli(capsys, tmp_path, "energy", "1", "2", "--e-ac", "1", "--e-mac", "2")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[-3:] == ["nJ", "x", "first"] and "user nJ" in lines[0]
    code, out, _ = run_cli(capsys, tmp_path, "energy", "1", "2", "--json")
    srnn, gru_row = json.loads(out)
    store = RunStore(tmp_path / "runs.sqlite")
    for row, run_id in ((srnn, 1), (gru_row, 2)):
        recorded = store.get_run(run_id).final_metrics
        assert row["energy_pj"]["float32_45nm"] == pytest.approx(recorded["energy_pj.float32_45nm"])
    # the GRU counts by hand: 3 gates of 8 units over 8 inputs + 8 recurrent, 3·8 element-wise products, readout 10×8
    assert gru_row["counts"]["macs"] == 8 * (3 * 8 * (8 + 8) + 3 * 8 + 10 * 8)
    code, _, err = run_cli(capsys, tmp_path, "energy", "1", "--e-ac", "1")
    assert code == 2 and "give both energies" in err
    code, _, err = run_cli(capsys, tmp_path, "energy", "9")
    assert code == 2 and "no run with id 9" in err
