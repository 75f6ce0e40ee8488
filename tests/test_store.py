from __future__ import annotations

import importlib.metadata
import math
import multiprocessing
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hrsnn.errors import ConfigError
from hrsnn.experiments import (
    RunRecord,
    RunStore,
    RunSummary,
    default_store_path,
    environment_info,
)
from hrsnn.experiments.store import (
    SCHEMA_VERSION,
    RunBusyError,
    RunNotFoundError,
    code_version,
    format_run,
    format_runs_table,
)


def _worker(db_path: str, worker: int) -> None:
    store = RunStore(db_path)
    for i in range(5):
        run_id = store.create_run(name=f"w{worker}-r{i}", kind="train", config={"w": worker, "i": i}, seed=i)
        for epoch in range(20):
            store.log_epoch(run_id, epoch, {"loss": 1.0 / (epoch + 1), "worker": worker})
        store.finish_run(run_id, final_metrics={"acc": 0.5 + worker / 10})


def test_round_trip(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    config = {"model": {"hidden": 64, "taus": (2.0, 20.0)}, "data": Path("/data/shd")}
    env = {"python": "3.11", "cuda_available": False}
    run_id = store.create_run(name="shd-small", kind="train", config=config, seed=42, env=env, notes="first")
    assert store.get_run(run_id).status == "running"
    store.log_epoch(run_id, 0, {"loss": 2.0, "acc": 0.1})
    store.log_epoch(run_id, 1, {"loss": 1.5, "acc": 0.3, "grad": math.nan})
    store.add_artifact(run_id, "checkpoint", tmp_path / "ckpt.safetensors")
    store.finish_run(run_id, final_metrics={"test_acc": 0.82, "confusion": [[1, 0], [0, 1]]})

    record = store.get_run(run_id)
    assert isinstance(record, RunRecord)
    assert (record.id, record.name, record.kind, record.seed) == (run_id, "shd-small", "train", 42)
    assert record.status == "completed" and record.finished_at is not None
    assert record.config == {"model": {"hidden": 64, "taus": [2.0, 20.0]}, "data": "/data/shd"}
    assert record.env == env
    assert record.notes == "first"
    assert record.final_metrics == {"test_acc": 0.82, "confusion": [[1, 0], [0, 1]]}
    assert [e["epoch"] for e in record.epochs] == [0, 1]
    assert record.epochs[0]["metrics"] == {"loss": 2.0, "acc": 0.1}
    assert math.isnan(record.epochs[1]["metrics"]["grad"])
    assert record.artifacts[0]["kind"] == "checkpoint"
    assert record.artifacts[0]["path"] == str(tmp_path / "ckpt.safetensors")
    assert store.epochs(run_id) == list(record.epochs)

    # a second store object on the same file sees the same data
    assert RunStore(store.path).get_run(run_id) == record


def test_relogging_an_epoch_replaces_it(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    run_id = store.create_run(name="r", kind="train", config={}, seed=None)
    for epoch in range(3):
        store.log_epoch(run_id, epoch, {"loss": 10.0 + epoch})
    store.set_status(run_id, "interrupted")
    assert store.get_run(run_id).finished_at is not None
    store.set_status(run_id, "running")  # resume from the epoch-1 checkpoint
    assert store.get_run(run_id).finished_at is None
    store.log_epoch(run_id, 2, {"loss": 1.0, "acc": 0.9})
    epochs = store.epochs(run_id)
    assert [e["epoch"] for e in epochs] == [0, 1, 2]
    assert epochs[2]["metrics"] == {"loss": 1.0, "acc": 0.9}
    assert store.list_runs()[0].n_epochs == 3


def test_list_runs_filters(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    ids = {}
    for name, kind, status in [
        ("a", "train", "completed"),
        ("b", "train", "failed"),
        ("c", "lyapunov", "completed"),
        ("d", "train", None),
    ]:
        ids[name] = store.create_run(name=name, kind=kind, config={}, seed=1)
        if status is not None:
            store.finish_run(ids[name], status=status, final_metrics={"acc": 0.5})
    all_runs = store.list_runs()
    assert all(isinstance(r, RunSummary) for r in all_runs)
    assert [r.name for r in all_runs] == ["d", "c", "b", "a"]  # newest first
    assert [r.name for r in store.list_runs(kind="train")] == ["d", "b", "a"]
    assert [r.name for r in store.list_runs(status="completed")] == ["c", "a"]
    assert [r.name for r in store.list_runs(kind="train", status="completed")] == ["a"]
    assert [r.name for r in store.list_runs(kind="train", limit=2)] == ["d", "b"]
    assert store.list_runs(status="running")[0].final_metrics == {}
    assert store.list_runs(kind="prune") == []
    with pytest.raises(ConfigError, match="limit"):
        store.list_runs(limit=0)
    with pytest.raises(ConfigError, match="status"):
        store.list_runs(status="done")


def test_missing_run_errors(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    with pytest.raises(KeyError) as info:
        store.get_run(7)
    assert str(info.value) == f"no run with id 7 in {store.path}"
    for call in (
        lambda: store.log_epoch(7, 0, {"loss": 1.0}),
        lambda: store.finish_run(7),
        lambda: store.set_status(7, "failed"),
        lambda: store.add_artifact(7, "plot", "x.png"),
        lambda: store.epochs(7),
    ):
        with pytest.raises(RunNotFoundError, match="no run with id 7"):
            call()


def test_input_validation(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    with pytest.raises(ConfigError, match="name"):
        store.create_run(name="", kind="train", config={}, seed=None)
    with pytest.raises(ConfigError, match="config"):
        store.create_run(name="x", kind="train", config=[1], seed=None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="seed"):
        store.create_run(name="x", kind="train", config={}, seed=2**64 - 1)
    run_id = store.create_run(name="x", kind="train", config={}, seed=None)
    with pytest.raises(ConfigError, match="epoch"):
        store.log_epoch(run_id, -1, {})
    with pytest.raises(ConfigError, match="metrics"):
        store.log_epoch(run_id, 0, {"loss": "low"})
    with pytest.raises(ConfigError, match="status"):
        store.finish_run(run_id, status="running")
    assert store.epochs(run_id) == []


def test_not_a_database(tmp_path):
    path = tmp_path / "junk.sqlite"
    path.write_bytes(b"definitely not sqlite" * 100)
    with pytest.raises(ConfigError, match="SQLite"):
        RunStore(path)


def test_schema_version_and_wal(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    con = sqlite3.connect(store.path)
    try:
        assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        con.commit()
    finally:
        con.close()
    with pytest.raises(ConfigError, match="newer"):
        RunStore(store.path)


def test_store_seed_does_not_touch_global_random(tmp_path):
    random.seed(123)
    expected = random.random()
    random.seed(123)
    store = RunStore(tmp_path / "runs.sqlite")
    store.create_run(name="x", kind="train", config={}, seed=None)
    assert random.random() == expected


def test_concurrent_writers_do_not_lose_rows(tmp_path):
    db = tmp_path / "shared" / "runs.sqlite"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(str(db), w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    store = RunStore(db)
    runs = store.list_runs()
    assert len(runs) == 20
    assert sorted(r.name for r in runs) == sorted(f"w{w}-r{i}" for w in range(4) for i in range(5))
    assert sum(r.n_epochs for r in runs) == 400
    assert all(r.status == "completed" for r in runs)
    con = sqlite3.connect(db)
    try:
        assert con.execute("SELECT COUNT(*) FROM epochs").fetchone()[0] == 400
    finally:
        con.close()


def test_default_path_under_hrsnn_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("HRSNN_HOME", str(home))
    assert default_store_path() == home / "runs.sqlite"
    store = RunStore()
    assert store.path == home / "runs.sqlite"
    assert (home / "runs.sqlite").is_file()

    monkeypatch.delenv("HRSNN_HOME")
    monkeypatch.chdir(tmp_path)
    assert default_store_path() == tmp_path / ".hrsnn" / "runs.sqlite"
    RunStore()
    assert (tmp_path / ".hrsnn" / "runs.sqlite").is_file()


def test_environment_info_keys():
    info = environment_info()
    expected = {
        "python",
        "platform",
        "torch",
        "numpy",
        "hrsnn",
        "cpu_count",
        "hostname",
        "cuda_available",
        "cuda_device",
        "cuda_version",
        "git_commit",
        "git_dirty",
    }
    assert set(info) == expected
    assert isinstance(info["cuda_available"], bool)
    assert info["python"].count(".") == 2
    assert info["hrsnn"] == importlib.metadata.version("hrsnn")


def _git_repo(path: Path) -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=path, check=True, capture_output=True, text=True).stdout

    git("init", "-q")
    (path / "pkg").mkdir()
    (path / "pkg" / "mod.py").write_text("x = 1\n")
    git("add", "pkg/mod.py")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "init")
    return git("rev-parse", "HEAD").strip()


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_code_version_follows_the_package_not_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "checkout").mkdir()
    commit = _git_repo(tmp_path / "checkout")
    # the package lives in the checkout: its commit is recorded, wherever the user stands
    monkeypatch.chdir("/")
    info = code_version(tmp_path / "checkout" / "pkg")
    assert info["git_commit"] == commit and info["git_dirty"] is False
    (tmp_path / "checkout" / "pkg" / "mod.py").write_text("x = 2\n")
    assert code_version(tmp_path / "checkout" / "pkg")["git_dirty"] is True
    # standing inside a checkout does not lend its commit to a package installed elsewhere
    elsewhere = tmp_path / "site-packages" / "pkg"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "checkout")
    assert code_version(elsewhere)["git_commit"] is None
    # an untracked folder inside a checkout (a venv) is not that checkout's code either
    venv_pkg = tmp_path / "checkout" / ".venv" / "pkg"
    venv_pkg.mkdir(parents=True)
    assert code_version(venv_pkg)["git_commit"] is None


def test_formatting(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    assert format_runs_table([]) == "no runs"
    a = store.create_run(name="alpha", kind="train", config={"model": {"hidden": 32}}, seed=3)
    store.log_epoch(a, 0, {"loss": 0.123456, "acc": 0.5})
    store.add_artifact(a, "checkpoint", tmp_path / "a.safetensors")
    store.finish_run(a, final_metrics={"test_acc": 0.87654, "test_loss": 0.4, "aux": 1})
    store.create_run(name="a-much-longer-run-name", kind="lyapunov", config={}, seed=None)

    table = format_runs_table(store.list_runs())
    lines = table.splitlines()
    assert lines[0].split() == [
        "id",
        "name",
        "kind",
        "status",
        "created",
        "epochs",
        "test_acc",
        "test_loss",
        "aux",
    ]
    assert "0.8765" in table and "lyapunov" in table
    # columns are aligned: every row starts its 'kind' cell at the same offset
    offsets = {line.index(kind) for line, kind in zip(lines[2:], ["lyapunov", "train"], strict=True)}
    assert offsets == {lines[0].index("kind")}

    report = format_run(store.get_run(a))
    assert "run 1: alpha" in report
    assert "model.hidden" in report and "32" in report
    assert "test_acc" in report and "0.8765" in report
    assert "checkpoint: " + str(tmp_path / "a.safetensors") in report
    assert "0.1235" in report


def test_old_schema_is_migrated_and_keeps_its_runs(tmp_path):
    path = tmp_path / "v1.sqlite"
    con = sqlite3.connect(path)
    con.executescript(
        """CREATE TABLE runs (id INTEGER PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL,
        status TEXT NOT NULL, created_at TEXT NOT NULL, finished_at TEXT, seed INTEGER, config_json TEXT NOT NULL,
        env_json TEXT, final_metrics_json TEXT, notes TEXT);
        CREATE TABLE epochs (run_id INTEGER NOT NULL, epoch INTEGER NOT NULL, metrics_json TEXT NOT NULL,
        created_at TEXT NOT NULL, PRIMARY KEY (run_id, epoch));
        CREATE TABLE artifacts (run_id INTEGER NOT NULL, kind TEXT NOT NULL, path TEXT NOT NULL,
        created_at TEXT NOT NULL);
        INSERT INTO runs (name, kind, status, created_at, config_json) VALUES ('old', 'train', 'running',
        '2026-01-01T00:00:00.000+00:00', '{}');
        PRAGMA user_version = 1;"""
    )
    con.close()
    store = RunStore(path)
    record = store.get_run(1)
    assert record.name == "old" and record.host is None
    # an old "running" row has no owner and no heartbeat: nobody can vouch for it
    assert record.state == "stale"
    store.finish_run(1, status="failed", reason="boom")
    assert store.get_run(1).reason == "boom"


def test_hrsnn_home_pointing_at_a_file_is_a_clear_error(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.write_text("not a folder")
    monkeypatch.setenv("HRSNN_HOME", str(home))
    with pytest.raises(ConfigError, match=r"HRSNN_HOME=.*is a file"):
        RunStore()


_HOLD = """
import sys, time
from hrsnn.experiments.store import RunStore
store = RunStore(sys.argv[1])
run_id = store.create_run(name="held", kind="train", config={}, seed=0)
print(run_id, flush=True)
time.sleep(120)
"""


def _held_run(db: Path) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(db)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def test_a_killed_owner_shows_as_crashed_and_a_live_one_cannot_be_taken_over(tmp_path):
    db = tmp_path / "runs.sqlite"
    proc, run_id = _held_run(db)
    store = RunStore(db)
    try:
        record = store.get_run(run_id)
        assert (record.state, record.pid, record.host) == ("running", proc.pid, socket.gethostname())
        with pytest.raises(RunBusyError, match=rf"run={run_id}: is still running \(pid {proc.pid}"):
            store.claim_run(run_id)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    record = store.get_run(run_id)
    assert record.status == "running" and record.state == "crashed"
    assert [r.id for r in store.list_runs(status="crashed")] == [run_id]
    assert store.list_runs(status="running") == []
    assert "crashed" in format_runs_table(store.list_runs())
    assert f"hrsnn train --resume {run_id}" in format_run(record)
    store.claim_run(run_id)  # now allowed: this process becomes the owner
    record = store.get_run(run_id)
    assert (record.state, record.pid) == ("running", os.getpid())


def test_a_run_of_another_host_is_stale_once_its_heartbeat_stops(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    run_id = store.create_run(name="remote", kind="train", config={}, seed=0)
    con = sqlite3.connect(store.path)
    con.execute("UPDATE runs SET host = 'elsewhere', pid = 1 WHERE id = ?", (run_id,))
    con.commit()
    assert store.get_run(run_id).state == "running"  # fresh heartbeat
    with pytest.raises(RunBusyError, match="on host elsewhere"):
        store.claim_run(run_id)
    con.execute("UPDATE runs SET heartbeat_at = '2026-01-01T00:00:00.000+00:00' WHERE id = ?", (run_id,))
    con.commit()
    con.close()
    assert store.get_run(run_id).state == "stale"
    assert [r.id for r in store.list_runs(status="stale")] == [run_id]
    store.claim_run(run_id)
    assert store.get_run(run_id).state == "running"


def test_keep_alive_refreshes_the_heartbeat(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    run_id = store.create_run(name="beat", kind="train", config={}, seed=0)
    first = store.get_run(run_id).heartbeat_at
    with store.keep_alive(run_id, interval_s=0.05):
        deadline = time.monotonic() + 5
        while store.get_run(run_id).heartbeat_at == first and time.monotonic() < deadline:
            time.sleep(0.02)
    assert store.get_run(run_id).heartbeat_at > first
    with pytest.raises(ConfigError, match="interval_s"), store.keep_alive(run_id, interval_s=0):
        pass
