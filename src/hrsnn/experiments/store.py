"""SQLite store of experiment runs: configs, per-epoch metrics, final metrics and artifacts.

Safe for many concurrent writers (processes or threads): the database runs in WAL mode, every operation
opens its own short-lived connection, writes take the lock up front with ``BEGIN IMMEDIATE`` and lock
contention is retried. A :class:`RunStore` holds only its path, so it can be pickled into worker processes.

Liveness: a run records the host, pid (and, on Linux, the process start time) of the process that owns it, and
a heartbeat that the owner refreshes (:meth:`RunStore.heartbeat`, :meth:`RunStore.keep_alive`). A run stored as
``running`` is *shown* as ``crashed`` when its owner process on this host is gone (kill -9, OOM, power loss), and
as ``stale`` when it runs on another host and its heartbeat is older than ``stale_after_s``. These two states are
derived when reading (:attr:`RunSummary.state`), never stored, so a run that is still alive is never mislabelled
for good.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.metadata
import json
import math
import os
import platform
import random
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager, suppress
from pathlib import Path, PurePath
from typing import Any, TypeVar

from hrsnn.errors import ConfigError, RunInterrupted, Terminated

__all__ = [
    "DERIVED_STATES",
    "RUN_STATUSES",
    "SCHEMA_VERSION",
    "RunBusyError",
    "RunNotFoundError",
    "RunRecord",
    "RunStore",
    "RunSummary",
    "code_version",
    "default_store_path",
    "environment_info",
    "format_run",
    "format_runs_table",
    "run_state",
]

SCHEMA_VERSION = 2
"""Value of ``PRAGMA user_version`` for the current schema."""

RUN_STATUSES = ("running", "completed", "failed", "interrupted")
"""Allowed values of a run's stored status."""

DERIVED_STATES = ("crashed", "stale")
"""States derived when reading a ``running`` run whose owner is gone (``crashed``) or silent (``stale``)."""

HEARTBEAT_INTERVAL_S = 30.0
"""How often :meth:`RunStore.keep_alive` refreshes a run's heartbeat."""

STALE_AFTER_S = 600.0
"""A running run on another host whose heartbeat is older than this is shown as ``stale``."""

_FINAL_STATUSES = ("completed", "failed", "interrupted")
_BUSY_TIMEOUT_S = 30.0
_RETRY_DEADLINE_S = 120.0
_SQLITE_INT_MIN, _SQLITE_INT_MAX = -(2**63), 2**63 - 1

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ({", ".join(repr(s) for s in RUN_STATUSES)})),
    created_at TEXT NOT NULL,
    finished_at TEXT,
    seed INTEGER,
    config_json TEXT NOT NULL,
    env_json TEXT,
    final_metrics_json TEXT,
    notes TEXT
);
CREATE INDEX IF NOT EXISTS runs_kind ON runs(kind);
CREATE INDEX IF NOT EXISTS runs_status ON runs(status);
CREATE TABLE IF NOT EXISTS epochs (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL,
    metrics_json TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (run_id, epoch)
);
CREATE TABLE IF NOT EXISTS artifacts (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS artifacts_run ON artifacts(run_id);
"""

_MIGRATIONS: Mapping[int, tuple[str, ...]] = {
    # version 2: the owner process of a run (liveness), its heartbeat, and why it failed
    2: (
        "ALTER TABLE runs ADD COLUMN host TEXT",
        "ALTER TABLE runs ADD COLUMN pid INTEGER",
        "ALTER TABLE runs ADD COLUMN pid_start INTEGER",
        "ALTER TABLE runs ADD COLUMN heartbeat_at TEXT",
        "ALTER TABLE runs ADD COLUMN reason TEXT",
    ),
}

_T = TypeVar("_T")


class RunNotFoundError(KeyError):
    """No run with the requested id exists in the store."""

    def __str__(self) -> str:
        # KeyError quotes its message; show it as written.
        return str(self.args[0]) if self.args else ""


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """One row of :meth:`RunStore.list_runs`.

    Attributes:
        id: run id.
        name: human-readable run name.
        kind: what sort of run (e.g. ``"train"``, ``"lyapunov"``, ``"prune"``).
        status: one of :data:`RUN_STATUSES`.
        created_at: ISO-8601 UTC timestamp.
        finished_at: ISO-8601 UTC timestamp, or None while running.
        seed: the run's seed, if any.
        final_metrics: metrics given to :meth:`RunStore.finish_run` (empty if none).
        n_epochs: number of logged epochs.
        state: what the run is now: its status, or ``crashed``/``stale`` for a ``running`` run whose owner
            process is gone or silent (module docstring).
        host: host name of the owner process. pid: its process id. heartbeat_at: its last heartbeat (ISO-8601).
        reason: why the run failed or was interrupted (None otherwise).
    """

    id: int
    name: str
    kind: str
    status: str
    created_at: str
    finished_at: str | None
    seed: int | None
    final_metrics: dict[str, Any]
    n_epochs: int
    state: str
    host: str | None
    pid: int | None
    heartbeat_at: str | None
    reason: str | None


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """Everything stored about one run (:meth:`RunStore.get_run`).

    Attributes:
        id: run id.
        name: human-readable run name.
        kind: what sort of run.
        status: one of :data:`RUN_STATUSES`.
        created_at: ISO-8601 UTC timestamp.
        finished_at: ISO-8601 UTC timestamp, or None while running.
        seed: the run's seed, if any.
        config: the configuration given to :meth:`RunStore.create_run`.
        env: environment info (see :func:`environment_info`), empty if none was given.
        final_metrics: metrics given to :meth:`RunStore.finish_run` (empty if none).
        notes: free-text notes, or None.
        epochs: per-epoch entries as returned by :meth:`RunStore.epochs`, by increasing epoch.
        artifacts: ``{"kind", "path", "created_at"}`` dicts in the order they were added.
        state, host, pid, heartbeat_at, reason: as in :class:`RunSummary`.
    """

    id: int
    name: str
    kind: str
    status: str
    created_at: str
    finished_at: str | None
    seed: int | None
    config: dict[str, Any]
    env: dict[str, Any]
    final_metrics: dict[str, Any]
    notes: str | None
    epochs: tuple[dict[str, Any], ...]
    artifacts: tuple[dict[str, str], ...]
    state: str
    host: str | None
    pid: int | None
    heartbeat_at: str | None
    reason: str | None


# ----------------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------------


def default_store_path() -> Path:
    """Where :class:`RunStore` keeps its database when no path is given.

    Returns:
        ``$HRSNN_HOME/runs.sqlite`` if ``HRSNN_HOME`` is set (and non-empty), else ``./.hrsnn/runs.sqlite``
        under the current working directory, as an absolute path.
    """
    home = os.environ.get("HRSNN_HOME", "")
    if home:
        folder = Path(home).expanduser().absolute()
        if folder.exists() and not folder.is_dir():
            raise ConfigError("HRSNN_HOME", home, "is a file; it must name a folder (the run store goes inside it)")
        return folder / "runs.sqlite"
    return Path.cwd() / ".hrsnn" / "runs.sqlite"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def process_start_time(pid: int) -> int | None:
    """Start time of process ``pid`` in clock ticks since boot (Linux ``/proc``), or None where unknown.

    Together with the pid it identifies a process even after the pid is reused.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # the command name may hold spaces; fields resume after ")"
    try:
        return int(fields[19])  # field 22 of proc(5): starttime
    except (IndexError, ValueError):
        return None


def _process_alive(pid: int, start: int | None) -> bool | None:
    """True/False when this host can tell whether process ``pid`` (started at ``start``) lives; None if unknown."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    except OSError:
        return None
    if start is None:
        return None  # alive, but the pid may have been reused: let the heartbeat decide
    now = process_start_time(pid)
    if now is None:
        return None
    if now != start:
        return False  # the pid now belongs to another process
    with suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False  # a zombie has exited; only its parent has not reaped it yet
    return True


def _age_s(stamp: str | None) -> float | None:
    if not stamp:
        return None
    try:
        moment = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return (dt.datetime.now(dt.UTC) - moment).total_seconds()


def run_state(
    status: str,
    host: str | None,
    pid: int | None,
    pid_start: int | None,
    heartbeat_at: str | None,
    *,
    stale_after_s: float = STALE_AFTER_S,
) -> str:
    """What a run is now (module docstring): its stored status, or ``crashed``/``stale`` for a dead running run.

    On the owner's host the process itself is checked (pid + start time): gone → ``crashed``. Elsewhere, or when
    the process cannot be checked, a heartbeat older than ``stale_after_s`` (or none, for a run recorded without
    an owner) → ``stale``.
    """
    if status != "running":
        return status
    if host == socket.gethostname() and pid is not None:
        alive = _process_alive(pid, pid_start)
        if alive is not None:
            return "running" if alive else "crashed"
    age = _age_s(heartbeat_at)
    return "stale" if age is None or age > stale_after_s else "running"


class RunBusyError(ConfigError):
    """A run cannot be taken over: the process that owns it is still alive."""


def _jsonable(obj: Any) -> Any:
    """Lenient conversion for recording: paths → str, tuples/sets → lists, array scalars → numbers."""
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, Mapping):
        return {k if isinstance(k, str) else str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, set | frozenset):
        return sorted((_jsonable(v) for v in obj), key=repr)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if hasattr(obj, "tolist") and callable(obj.tolist):  # numpy arrays/scalars, torch tensors
        return _jsonable(obj.tolist())
    return str(obj)


def _dumps(obj: Any) -> str:
    return json.dumps(_jsonable(obj), allow_nan=True)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _check_str(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(field, value, "must be a non-empty string")
    return value


def _check_int(field: str, value: Any, *, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(field, value, "must be an int")
    if minimum is not None and value < minimum:
        raise ConfigError(field, value, f"must be >= {minimum}")
    return int(value)


def _check_status(field: str, value: Any, allowed: Sequence[str] = RUN_STATUSES) -> str:
    if value not in allowed:
        raise ConfigError(field, value, f"must be one of {', '.join(allowed)}")
    return str(value)


def _check_mapping(field: str, value: Any) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(field, type(value).__name__, "must be a mapping")
    return value


def _metric_value(name: str, value: Any) -> bool | int | float | None:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str | bytes):
        raise ConfigError(f"metrics[{name!r}]", value, "must be a real number")
    try:
        return float(value)  # numpy scalars, one-element tensors
    except (TypeError, ValueError, RuntimeError):
        raise ConfigError(f"metrics[{name!r}]", value, "must be a real number") from None


def _owner() -> tuple[str, int, int | None, str]:
    """(host, pid, process start time, now) of the calling process: what a run records about its owner."""
    pid = os.getpid()
    return socket.gethostname(), pid, process_start_time(pid), _now()


def _is_locked(err: sqlite3.OperationalError) -> bool:
    text = str(err).lower()
    return "locked" in text or "busy" in text


# ----------------------------------------------------------------------------------------------------------
# the store
# ----------------------------------------------------------------------------------------------------------


class RunStore:
    """A SQLite database of experiment runs.

    Args:
        path: database file; None → :func:`default_store_path`. The parent directory and schema are created.

    Raises:
        ConfigError: if ``path`` is a directory, not an SQLite database, or has a newer schema.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        resolved = default_store_path() if path is None else Path(path).expanduser().absolute()
        if resolved.is_dir():
            raise ConfigError("path", str(resolved), "is a directory, expected a database file")
        resolved.parent.mkdir(parents=True, exist_ok=True)
        self._path = resolved
        self._init_schema()

    @property
    def path(self) -> Path:
        """Absolute path of the database file."""
        return self._path

    def __repr__(self) -> str:
        return f"RunStore({str(self._path)!r})"

    # -- plumbing --------------------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            conn.close()
            raise
        return conn

    def _retry(self, attempt: Callable[[], _T]) -> _T:
        """Run ``attempt`` again while SQLite reports the database locked/busy, with jittered backoff."""
        rng = random.Random()  # private RNG: never disturb the caller's seeded global stream
        deadline = time.monotonic() + _RETRY_DEADLINE_S
        delay = 0.01
        while True:
            try:
                return attempt()
            except sqlite3.OperationalError as err:
                if not _is_locked(err) or time.monotonic() >= deadline:
                    raise
            except sqlite3.DatabaseError as err:
                # Only the bare DatabaseError means "not a database"; IntegrityError etc. are real bugs.
                if type(err) is not sqlite3.DatabaseError:
                    raise
                reason = f"is not a usable SQLite database ({err})"
                raise ConfigError("path", str(self._path), reason) from err
            time.sleep(delay * (0.5 + rng.random()))
            delay = min(delay * 2, 1.0)

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        with closing(self._connect()) as conn:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    with suppress(sqlite3.Error):  # never mask the original error
                        conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _write(self, body: Callable[[sqlite3.Connection], _T]) -> _T:
        def attempt() -> _T:
            with self._transaction(write=True) as conn:
                return body(conn)

        return self._retry(attempt)

    def _read(self, body: Callable[[sqlite3.Connection], _T]) -> _T:
        def attempt() -> _T:
            with self._transaction(write=False) as conn:
                return body(conn)

        return self._retry(attempt)

    def _init_schema(self) -> None:
        def set_wal() -> None:
            with closing(self._connect()) as conn:
                # Persistent in the file; a filesystem without shared memory support keeps its old mode.
                conn.execute("PRAGMA journal_mode = WAL")

        def create(conn: sqlite3.Connection) -> None:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise ConfigError(
                    "path",
                    str(self._path),
                    f"has schema version {version}, newer than this hrsnn supports ({SCHEMA_VERSION})",
                )
            if version == 0:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                version = 1
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[target]:
                    conn.execute(statement)
            if version < SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

        self._retry(set_wal)
        self._write(create)

    def _require_run(self, conn: sqlite3.Connection, run_id: int) -> None:
        if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
            raise self._missing(run_id)

    def _missing(self, run_id: int) -> RunNotFoundError:
        return RunNotFoundError(f"no run with id {run_id} in {self._path}")

    # -- writes ----------------------------------------------------------------------------------------------

    def create_run(
        self,
        *,
        name: str,
        kind: str,
        config: Mapping[str, Any],
        seed: int | None,
        env: Mapping[str, Any] | None = None,
        notes: str | None = None,
        owner: bool = True,
    ) -> int:
        """Record a new run with status ``"running"``.

        Args:
            name: human-readable name.
            kind: what sort of run (e.g. ``"train"``).
            config: the full configuration (stored as JSON; paths/tuples converted).
            seed: the run's seed, or None.
            env: environment info, e.g. :func:`environment_info` (None → not recorded).
            notes: optional free text.
            owner: record the calling process (host, pid, start time) as the run's owner, with a first heartbeat.

        Returns:
            The new run id.

        Raises:
            ConfigError: for an empty name/kind, a non-mapping config/env or a seed outside the int64 range.
        """
        _check_str("name", name)
        _check_str("kind", kind)
        config_json = _dumps(_check_mapping("config", config))
        env_json = None if env is None else _dumps(_check_mapping("env", env))
        if seed is not None:
            _check_int("seed", seed)
            if not _SQLITE_INT_MIN <= seed <= _SQLITE_INT_MAX:
                raise ConfigError("seed", seed, "must fit in a signed 64-bit integer")
        if notes is not None and not isinstance(notes, str):
            raise ConfigError("notes", notes, "must be a str or None")

        host, pid, start, beat = _owner() if owner else (None, None, None, None)

        def body(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "INSERT INTO runs (name, kind, status, created_at, seed, config_json, env_json, notes, "
                "host, pid, pid_start, heartbeat_at) VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (name, kind, _now(), seed, config_json, env_json, notes, host, pid, start, beat),
            )
            run_id = cursor.lastrowid
            if run_id is None:  # pragma: no cover - sqlite always sets it after an INSERT
                raise RuntimeError("sqlite did not return a row id")
            return int(run_id)

        return self._write(body)

    def log_epoch(self, run_id: int, epoch: int, metrics: Mapping[str, float]) -> None:
        """Record the metrics of one epoch; logging the same epoch again (after a resume) replaces it.

        Args:
            run_id: the run.
            epoch: epoch number (>= 0).
            metrics: metric name → number (ints, floats, numpy scalars, one-element tensors; NaN/inf allowed).

        Raises:
            RunNotFoundError: if the run does not exist.
            ConfigError: for a negative epoch or a non-numeric metric.
        """
        _check_int("run_id", run_id)
        _check_int("epoch", epoch, minimum=0)
        _check_mapping("metrics", metrics)
        values: dict[str, bool | int | float | None] = {}
        for key, value in metrics.items():
            _check_str("metrics key", key)
            values[key] = _metric_value(key, value)
        metrics_json = _dumps(values)

        def body(conn: sqlite3.Connection) -> None:
            self._require_run(conn, run_id)
            conn.execute(
                "INSERT OR REPLACE INTO epochs (run_id, epoch, metrics_json, created_at) VALUES (?, ?, ?, ?)",
                (run_id, epoch, metrics_json, _now()),
            )

        self._write(body)

    def finish_run(
        self,
        run_id: int,
        *,
        status: str = "completed",
        final_metrics: Mapping[str, Any] | None = None,
        reason: str | None = None,
    ) -> None:
        """Mark a run finished, stamping ``finished_at``.

        Args:
            run_id: the run.
            status: ``"completed"``, ``"failed"`` or ``"interrupted"``.
            final_metrics: summary metrics (any JSON-able values); None keeps what was stored before.
            reason: why it failed or was interrupted (shown by ``runs list``/``runs show``); cleared otherwise.

        Raises:
            RunNotFoundError: if the run does not exist.
            ConfigError: for a bad status or non-mapping metrics.
        """
        _check_int("run_id", run_id)
        _check_status("status", status, _FINAL_STATUSES)
        final_json = None if final_metrics is None else _dumps(_check_mapping("final_metrics", final_metrics))
        if reason is not None and not isinstance(reason, str):
            raise ConfigError("reason", reason, "must be a str or None")

        def body(conn: sqlite3.Connection) -> None:
            cursor = conn.execute(
                "UPDATE runs SET status = ?, finished_at = ?, reason = ?, "
                "final_metrics_json = COALESCE(?, final_metrics_json) WHERE id = ?",
                (status, _now(), reason, final_json, run_id),
            )
            if cursor.rowcount == 0:
                raise self._missing(run_id)

        self._write(body)

    def set_status(self, run_id: int, status: str) -> None:
        """Change a run's status; ``"running"`` clears ``finished_at`` (resume), others stamp it.

        Args:
            run_id: the run.
            status: one of :data:`RUN_STATUSES`.

        Raises:
            RunNotFoundError: if the run does not exist.
            ConfigError: for an unknown status.
        """
        _check_int("run_id", run_id)
        _check_status("status", status)
        finished = None if status == "running" else _now()

        def body(conn: sqlite3.Connection) -> None:
            cursor = conn.execute(
                "UPDATE runs SET status = ?, finished_at = ? WHERE id = ?", (status, finished, run_id)
            )
            if cursor.rowcount == 0:
                raise self._missing(run_id)

        self._write(body)

    def claim_run(self, run_id: int, *, stale_after_s: float = STALE_AFTER_S) -> None:
        """Make the calling process the owner of an existing run and set it ``running`` again (to resume it).

        Args:
            run_id: the run.
            stale_after_s: see :func:`run_state`.

        Raises:
            RunNotFoundError: if the run does not exist.
            RunBusyError: if the run is ``running`` and its owner process is alive (or, on another host, its
                heartbeat is fresh): two processes must never write the same run.
        """
        _check_int("run_id", run_id)
        host, pid, start, beat = _owner()

        def body(conn: sqlite3.Connection) -> None:
            row = conn.execute(
                "SELECT status, host, pid, pid_start, heartbeat_at FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
            if row is None:
                raise self._missing(run_id)
            mine = (row[1], row[2], row[3]) == (host, pid, start)
            if not mine and run_state(*row, stale_after_s=stale_after_s) == "running":
                where = f"pid {row[2]} on host {row[1]}" if row[2] is not None else "another process"
                raise RunBusyError(
                    "run", run_id, f"is still running ({where}); wait for it or stop it before resuming"
                )
            conn.execute(
                "UPDATE runs SET status = 'running', finished_at = NULL, reason = NULL, host = ?, pid = ?, "
                "pid_start = ?, heartbeat_at = ? WHERE id = ?",
                (host, pid, start, beat, run_id),
            )

        self._write(body)

    def heartbeat(self, run_id: int) -> None:
        """Refresh the heartbeat of a run (its owner calls this while it works).

        Raises:
            RunNotFoundError: if the run does not exist.
        """
        _check_int("run_id", run_id)

        def body(conn: sqlite3.Connection) -> None:
            cursor = conn.execute("UPDATE runs SET heartbeat_at = ? WHERE id = ?", (_now(), run_id))
            if cursor.rowcount == 0:
                raise self._missing(run_id)

        self._write(body)

    @contextmanager
    def keep_alive(self, run_id: int, *, interval_s: float = HEARTBEAT_INTERVAL_S) -> Iterator[None]:
        """Refresh the run's heartbeat every ``interval_s`` seconds from a daemon thread while the block runs.

        A failed refresh (e.g. a locked or vanished database) is skipped; the next one tries again.
        """
        if not interval_s > 0:
            raise ConfigError("interval_s", interval_s, "must be > 0")
        self.heartbeat(run_id)
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(interval_s):
                with suppress(sqlite3.Error, ConfigError, RunNotFoundError):
                    self.heartbeat(run_id)

        thread = threading.Thread(target=beat, name=f"hrsnn-heartbeat-{run_id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    @contextmanager
    def recording(self, run_id: int, command: str) -> Iterator[None]:
        """Run the block as the live body of ``run_id``: heartbeats while it runs, and an honest end state.

        Ctrl-C or a termination signal marks the run ``interrupted`` (with the reason) and raises
        :class:`hrsnn.errors.RunInterrupted`, whose message says how to resume (``hrsnn <command> --resume ID``).
        Any other exception marks it ``failed`` with ``"<type>: <message>"`` as the reason and propagates. The
        block itself finishes the run (``finish_run(status="completed")``) when it succeeds.
        """
        try:
            with self.keep_alive(run_id):
                yield
        except RunInterrupted:
            raise
        except KeyboardInterrupt as exc:
            reason = f"terminated by {exc.signal_name}" if isinstance(exc, Terminated) else "interrupted (Ctrl-C)"
            self._finish_quietly(run_id, "interrupted", reason, exc)
            raise RunInterrupted(run_id, command, reason) from exc
        except BaseException as exc:
            self._finish_quietly(run_id, "failed", f"{type(exc).__name__}: {exc}", exc)
            raise

    def _finish_quietly(self, run_id: int, status: str, reason: str, exc: BaseException) -> None:
        """Record the end of a run that failed; if the store itself fails, say so on the original error."""
        try:
            self.finish_run(run_id, status=status, reason=reason)
        except Exception as store_error:  # never mask the original error
            exc.add_note(f"hrsnn could not mark run {run_id} {status} in {self._path}: {store_error}")
        else:
            exc.add_note(f"run {run_id} is marked {status} in {self._path}")

    def set_config(self, run_id: int, config: Mapping[str, Any]) -> None:
        """Replace a run's stored configuration (e.g. when a resumed run is extended to more epochs).

        Raises:
            RunNotFoundError: if the run does not exist.
            ConfigError: for a non-mapping config.
        """
        _check_int("run_id", run_id)
        config_json = _dumps(_check_mapping("config", config))

        def body(conn: sqlite3.Connection) -> None:
            cursor = conn.execute("UPDATE runs SET config_json = ? WHERE id = ?", (config_json, run_id))
            if cursor.rowcount == 0:
                raise self._missing(run_id)

        self._write(body)

    def add_artifact(self, run_id: int, kind: str, path: str | os.PathLike[str]) -> None:
        """Record a file produced by a run (checkpoint, plot, results table...).

        Args:
            run_id: the run.
            kind: what the file is (e.g. ``"checkpoint"``).
            path: where it is; stored as given (made absolute if relative).

        Raises:
            RunNotFoundError: if the run does not exist.
            ConfigError: for an empty kind or path.
        """
        _check_int("run_id", run_id)
        _check_str("kind", kind)
        if not isinstance(path, str | os.PathLike) or not os.fspath(path):
            raise ConfigError("path", path, "must be a non-empty path")
        stored = str(Path(path).absolute())

        def body(conn: sqlite3.Connection) -> None:
            self._require_run(conn, run_id)
            conn.execute(
                "INSERT INTO artifacts (run_id, kind, path, created_at) VALUES (?, ?, ?, ?)",
                (run_id, kind, stored, _now()),
            )

        self._write(body)

    # -- reads -----------------------------------------------------------------------------------------------

    def list_runs(
        self, *, limit: int | None = None, kind: str | None = None, status: str | None = None
    ) -> list[RunSummary]:
        """List runs, newest first.

        Args:
            limit: at most this many runs (> 0), or all.
            kind: only runs of this kind.
            status: only runs in this state: a stored status (:data:`RUN_STATUSES`; ``running`` means really
                running) or a derived one (:data:`DERIVED_STATES`).

        Returns:
            Run summaries ordered by decreasing id.

        Raises:
            ConfigError: for a non-positive limit or unknown status.
        """
        clauses: list[str] = []
        params: list[Any] = []
        if kind is not None:
            clauses.append("kind = ?")
            params.append(_check_str("kind", kind))
        if status is not None:
            _check_status("status", status, RUN_STATUSES + DERIVED_STATES)
            clauses.append("status = ?")
            params.append("running" if status in DERIVED_STATES else status)
        if limit is not None:
            _check_int("limit", limit, minimum=1)
        sql = (
            "SELECT id, name, kind, status, created_at, finished_at, seed, final_metrics_json, "
            "(SELECT COUNT(*) FROM epochs e WHERE e.run_id = runs.id), host, pid, pid_start, heartbeat_at, reason "
            "FROM runs"
        )
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY id DESC"

        def body(conn: sqlite3.Connection) -> list[RunSummary]:
            runs = []
            for row in conn.execute(sql, params):
                state = run_state(row[3], row[9], row[10], row[11], row[12])
                if status is not None and state != status:
                    continue
                runs.append(
                    RunSummary(
                        id=row[0],
                        name=row[1],
                        kind=row[2],
                        status=row[3],
                        created_at=row[4],
                        finished_at=row[5],
                        seed=row[6],
                        final_metrics=_loads(row[7]) or {},
                        n_epochs=row[8],
                        state=state,
                        host=row[9],
                        pid=row[10],
                        heartbeat_at=row[12],
                        reason=row[13],
                    )
                )
                if limit is not None and len(runs) == limit:
                    break
            return runs

        return self._read(body)

    @staticmethod
    def _epochs(conn: sqlite3.Connection, run_id: int) -> list[dict[str, Any]]:
        rows = conn.execute(
            "SELECT epoch, metrics_json, created_at FROM epochs WHERE run_id = ? ORDER BY epoch", (run_id,)
        )
        return [{"epoch": r[0], "metrics": json.loads(r[1]), "created_at": r[2]} for r in rows]

    def epochs(self, run_id: int) -> list[dict[str, Any]]:
        """Per-epoch metrics of a run.

        Args:
            run_id: the run.

        Returns:
            ``{"epoch": int, "metrics": dict, "created_at": str}`` dicts by increasing epoch.

        Raises:
            RunNotFoundError: if the run does not exist.
        """
        _check_int("run_id", run_id)

        def body(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            self._require_run(conn, run_id)
            return self._epochs(conn, run_id)

        return self._read(body)

    def get_run(self, run_id: int) -> RunRecord:
        """Everything stored about one run.

        Args:
            run_id: the run.

        Returns:
            The run's record, read in one consistent snapshot.

        Raises:
            RunNotFoundError: (a KeyError) ``"no run with id 7 in <path>"`` if the run does not exist.
        """
        _check_int("run_id", run_id)

        def body(conn: sqlite3.Connection) -> RunRecord:
            row = conn.execute(
                "SELECT id, name, kind, status, created_at, finished_at, seed, config_json, env_json, "
                "final_metrics_json, notes, host, pid, pid_start, heartbeat_at, reason FROM runs WHERE id = ?",
                (run_id,),
            ).fetchone()
            if row is None:
                raise self._missing(run_id)
            artifacts = conn.execute(
                "SELECT kind, path, created_at FROM artifacts WHERE run_id = ? ORDER BY rowid", (run_id,)
            )
            return RunRecord(
                id=row[0],
                name=row[1],
                kind=row[2],
                status=row[3],
                created_at=row[4],
                finished_at=row[5],
                seed=row[6],
                config=_loads(row[7]) or {},
                env=_loads(row[8]) or {},
                final_metrics=_loads(row[9]) or {},
                notes=row[10],
                epochs=tuple(self._epochs(conn, run_id)),
                artifacts=tuple({"kind": a[0], "path": a[1], "created_at": a[2]} for a in artifacts),
                state=run_state(row[3], row[11], row[12], row[13], row[14]),
                host=row[11],
                pid=row[12],
                heartbeat_at=row[14],
                reason=row[15],
            )

        return self._read(body)


# ----------------------------------------------------------------------------------------------------------
# environment
# ----------------------------------------------------------------------------------------------------------


def _git(args: Sequence[str], cwd: Path) -> str | None:
    try:
        result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout if result.returncode == 0 else None


def _checkout_commit(source: Path) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the git checkout whose tracked files include ``source``, else (None, None)."""
    top = _git(["rev-parse", "--show-toplevel"], source)
    if top is None or _git(["ls-files", "--error-unmatch", str(source)], source) is None:
        return None, None  # not in a checkout, or the package is not tracked there (e.g. a venv inside one)
    commit = (_git(["rev-parse", "HEAD"], source) or "").strip() or None
    status = _git(["status", "--porcelain", "--untracked-files=no", "--", "."], Path(top.strip()))
    return commit, None if status is None else bool(status.strip())


def code_version(package_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The version of the hrsnn code that runs, independent of the current directory.

    Args:
        package_dir: the package's source folder; None → where :mod:`hrsnn` was imported from.

    Returns:
        ``{"hrsnn": version, "git_commit": str | None, "git_dirty": bool | None}``: the installed distribution's
        version; the commit when the package runs from a git checkout (editable install) or was installed by pip
        from a git URL (its ``direct_url.json``), and whether that checkout had uncommitted changes.
    """
    try:
        version = importlib.metadata.version("hrsnn")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    source = Path(package_dir) if package_dir is not None else Path(__file__).resolve().parent.parent
    commit, dirty = _checkout_commit(source)
    if commit is None:
        with suppress(importlib.metadata.PackageNotFoundError, ValueError, TypeError):
            text = importlib.metadata.distribution("hrsnn").read_text("direct_url.json")
            vcs = json.loads(text).get("vcs_info", {}) if text else {}
            commit = vcs.get("commit_id") or None
    return {"hrsnn": version, "git_commit": commit, "git_dirty": dirty}


def environment_info() -> dict[str, Any]:
    """Describe the software and hardware a run executes on, for reproducibility.

    Returns:
        A JSON-able dict with keys ``python``, ``platform``, ``torch``, ``numpy``, ``hrsnn``, ``git_commit``,
        ``git_dirty`` (see :func:`code_version`), ``cpu_count``, ``hostname``, ``cuda_available``,
        ``cuda_device`` (name or None) and ``cuda_version``.
    """
    import numpy
    import torch

    cuda_available = bool(torch.cuda.is_available())
    cuda_device = None
    if cuda_available:
        try:
            cuda_device = torch.cuda.get_device_name(0)
        except (RuntimeError, AssertionError):
            cuda_device = None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        **code_version(),
        "cpu_count": os.cpu_count(),
        "hostname": socket.gethostname(),
        "cuda_available": cuda_available,
        "cuda_device": cuda_device,
        "cuda_version": torch.version.cuda,
    }


# ----------------------------------------------------------------------------------------------------------
# formatting
# ----------------------------------------------------------------------------------------------------------


def _fmt_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.4g}"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, allow_nan=True)


def _fmt_time(stamp: str | None) -> str:
    if not stamp:
        return "-"
    try:
        moment = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    return moment.strftime("%Y-%m-%d %H:%M")


def _truncate(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _key_metrics(runs: Sequence[RunSummary], max_metrics: int) -> list[str]:
    """Pick the scalar final metrics to show: accuracies first, then losses, then the most common others."""
    counts: dict[str, int] = {}
    for run in runs:
        for key, value in run.final_metrics.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                counts[key] = counts.get(key, 0) + 1

    def rank(key: str) -> tuple[int, int, str]:
        lowered = key.lower()
        group = 0 if "acc" in lowered else 1 if "loss" in lowered else 2
        return (group, -counts[key], key)

    return sorted(counts, key=rank)[:max_metrics]


def _render_table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        parts = [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=True)]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def format_runs_table(runs: Sequence[RunSummary], *, metrics: Sequence[str] | None = None, max_metrics: int = 3) -> str:
    """Render runs as an aligned plain-text table.

    Args:
        runs: summaries, e.g. from :meth:`RunStore.list_runs`.
        metrics: final-metric columns to show; None → up to ``max_metrics`` picked automatically (accuracies,
            then losses, then the most common).
        max_metrics: cap on automatically picked metric columns.

    Returns:
        The table (``"no runs"`` when ``runs`` is empty).
    """
    if not runs:
        return "no runs"
    shown = list(metrics) if metrics is not None else _key_metrics(runs, max_metrics)
    headers = ["id", "name", "kind", "status", "created", "epochs", *shown]
    right = [True, False, False, False, False, True, *([True] * len(shown))]
    rows = [
        [
            str(run.id),
            _truncate(run.name, 40),
            run.kind,
            run.state,
            _fmt_time(run.created_at),
            str(run.n_epochs),
            *(_fmt_value(run.final_metrics.get(key)) for key in shown),
        ]
        for run in runs
    ]
    return _render_table(headers, rows, right)


def _flatten_for_display(obj: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(obj, Mapping) and obj:
        items: list[tuple[str, str]] = []
        for key, value in obj.items():
            items.extend(_flatten_for_display(value, f"{prefix}.{key}" if prefix else str(key)))
        return items
    return [(prefix, _fmt_value(obj))]


def _section(title: str, obj: Mapping[str, Any]) -> list[str]:
    pairs = _flatten_for_display(obj) if obj else []
    if not pairs:
        return [f"{title}: -"]
    width = max(len(k) for k, _ in pairs)
    return [f"{title}:", *(f"  {k.ljust(width)}  {v}" for k, v in pairs)]


def _resume_command(record: RunRecord) -> str:
    """How to resume a crashed run: a sweep, and a run of a sweep's trial, through ``hrsnn sweep --resume``."""
    sweep = record.config.get("sweep")
    if record.kind == "sweep":
        return f"hrsnn sweep --resume {record.id}"
    if isinstance(sweep, Mapping) and "id" in sweep:
        return f"hrsnn sweep --resume {sweep['id']}"
    return f"hrsnn {'lnp' if record.kind == 'lnp' else 'train'} --resume {record.id}"


def format_run(record: RunRecord, *, max_epochs: int = 20) -> str:
    """Render one run as a readable multi-line report.

    Args:
        record: from :meth:`RunStore.get_run`.
        max_epochs: show at most this many (the latest) epochs in the epoch table.

    Returns:
        The report.
    """
    status = record.status if record.state == record.status else f"{record.state} (recorded as {record.status})"
    lines = [
        f"run {record.id}: {record.name}",
        f"  kind      {record.kind}",
        f"  status    {status}",
    ]
    if record.reason:
        lines.append(f"  reason    {record.reason}")
    if record.state in DERIVED_STATES:
        lines.append(f"  resume    {_resume_command(record)}")
    lines += [
        f"  created   {record.created_at}",
        f"  finished  {record.finished_at or '-'}",
        f"  seed      {_fmt_value(record.seed)}",
    ]
    if record.host is not None:
        lines.append(f"  process   pid {record.pid} on {record.host}, last heartbeat {record.heartbeat_at or '-'}")
    if record.notes:
        lines.append(f"  notes     {record.notes}")
    lines += _section("config", record.config)
    lines += _section("final metrics", record.final_metrics)
    if record.epochs:
        shown = record.epochs[-max_epochs:] if max_epochs > 0 else ()
        names: list[str] = []
        for entry in shown:
            names.extend(k for k in entry["metrics"] if k not in names)
        skipped = len(record.epochs) - len(shown)
        lines.append(f"epochs ({len(record.epochs)}" + (f", first {skipped} not shown):" if skipped else "):"))
        if shown:
            rows = [[str(e["epoch"]), *(_fmt_value(e["metrics"].get(n)) for n in names)] for e in shown]
            table = _render_table(["epoch", *names], rows, [True] * (len(names) + 1))
            lines += ["  " + row for row in table.splitlines()]
    else:
        lines.append("epochs: -")
    if record.artifacts:
        lines.append("artifacts:")
        lines += [f"  {a['kind']}: {a['path']}" for a in record.artifacts]
    else:
        lines.append("artifacts: -")
    lines += _section("environment", record.env)
    return "\n".join(lines)
