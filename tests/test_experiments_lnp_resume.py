"""LNP experiment lifecycle: iterations logged as they happen, honest end states, `hrsnn lnp --resume`."""

from __future__ import annotations

import json

import pytest

import hrsnn.experiments.lnp as lnp_experiment
from hrsnn.cli import main
from hrsnn.errors import ConfigError, RunInterrupted
from hrsnn.experiments.lnp import LNPExperimentConfig, resume_lnp_experiment, run_lnp_experiment
from hrsnn.experiments.store import RunStore

QUICK = {"quick": True, "tasks": ["lorenz"]}


def _quick_config() -> LNPExperimentConfig:
    return LNPExperimentConfig.from_dict(QUICK)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    root = tmp_path_factory.mktemp("lnp-reference")
    return run_lnp_experiment(_quick_config(), store=RunStore(root / "runs.sqlite"), out_dir=root / "out")


def test_an_interrupted_lnp_run_resumes_from_its_checkpoint_to_the_uninterrupted_result(
    tmp_path, monkeypatch, uninterrupted
):
    store = RunStore(tmp_path / "runs.sqlite")
    real_log = lnp_experiment._log_iterations
    seen: list[int] = []

    def log_then_stop(ctx, seed, first_epoch, history, start):
        real_log(ctx, seed, first_epoch, history, start)
        # the row of this iteration is in the store while the seed is still being pruned
        seen.append(len(store.epochs(ctx.run_id)))
        if len(history) == 2:  # after LNP iteration 1 of seed 0 (history[0] is the dense start)
            raise KeyboardInterrupt

    monkeypatch.setattr(lnp_experiment, "_log_iterations", log_then_stop)
    with pytest.raises(RunInterrupted, match=r"run 1 interrupted \(Ctrl-C\); resume it with `hrsnn lnp --resume 1`"):
        run_lnp_experiment(_quick_config(), store=store, out_dir=tmp_path / "out")
    assert seen == [2]  # rows 0 (dense start) and 1 were logged before the seed ended
    record = store.get_run(1)
    assert (record.status, record.reason) == ("interrupted", "interrupted (Ctrl-C)")
    monkeypatch.undo()

    result = resume_lnp_experiment(1, store=store)
    assert store.get_run(1).status == "completed"
    # resumed from the iteration-1 checkpoint: the same table as a run that was never stopped
    assert [r.to_dict() for r in result.table] == [r.to_dict() for r in uninterrupted.table]
    assert len(store.epochs(1)) == sum(len(h) for h in uninterrupted.histories.values())
    assert result.run_dir == tmp_path / "out" / "lnp-00001"


def test_a_failure_after_pruning_records_the_reason_and_keeps_the_logged_iterations(tmp_path, monkeypatch):
    store = RunStore(tmp_path / "runs.sqlite")

    def broken(*args, **kwargs):
        raise RuntimeError("probe exploded")

    monkeypatch.setattr(lnp_experiment, "_probe_seed", broken)
    with pytest.raises(RuntimeError, match="probe exploded"):
        run_lnp_experiment(_quick_config(), store=store, out_dir=tmp_path / "out")
    record = store.get_run(1)
    assert (record.status, record.reason) == ("failed", "RuntimeError: probe exploded")
    assert len(record.epochs) >= 2  # the LNP iterations of seed 0
    monkeypatch.undo()
    resume_lnp_experiment(1, store=store)  # a failed run may be resumed
    assert store.get_run(1).status == "completed"
    with pytest.raises(ConfigError, match="--resume=1: is already completed"):
        resume_lnp_experiment(1, store=store)


def test_cli_refuses_an_out_file_and_experiment_options_on_resume(tmp_path, capsys):
    store = tmp_path / "runs.sqlite"
    afile = tmp_path / "a-file"
    afile.write_text("x")
    code = main(["--store", str(store), "lnp", "--quick", "--out", str(afile)])
    err = capsys.readouterr().err
    assert code == 2 and f"--out='{afile}': is a file" in err
    assert RunStore(store).list_runs() == []  # refused before any run row was created
    code = main(["--store", str(store), "lnp", "--resume", "1", "--neurons", "80"])
    err = capsys.readouterr().err
    assert code == 2 and "--neurons=80: cannot change when resuming run 1" in err
    code = main(["--store", str(store), "lnp", "--resume", "7"])
    assert code == 2 and "no run with id 7" in capsys.readouterr().err


def test_cli_resume_prints_the_table(tmp_path, capsys, monkeypatch):
    store = RunStore(tmp_path / "runs.sqlite")
    run_id = store.create_run(name="lnp", kind="lnp", config=_quick_config().to_dict(), seed=0)
    store.add_artifact(run_id, "folder", tmp_path / "out" / "lnp-00001")
    store.finish_run(run_id, status="interrupted", reason="terminated by SIGTERM")
    code = main(["--store", str(store.path), "lnp", "--resume", str(run_id), "--json", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    payload = json.loads(out)
    assert payload["run_id"] == run_id and {row["task"] for row in payload["table"]} == {"lorenz"}
    assert store.get_run(run_id).status == "completed"
