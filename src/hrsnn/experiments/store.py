"""SQLite store of experiment runs: configs, per-epoch metrics, final metrics and artifacts.

Safe for many concurrent writers (processes or threads): the database runs in WAL mode, every operation
opens its own short-lived connection, writes take the lock up front with ``BEGIN IMMEDIATE`` and lock
contention is retried. A :class:`RunStore` holds only its path, so it can be pickled into worker processes.
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
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager, suppress
from pathlib import Path, PurePath
from typing import Any, TypeVar

from hrsnn.errors import ConfigError

__all__ = [
    "RUN_STATUSES",
    "SCHEMA_VERSION",
    "RunNotFoundError",
    "RunRecord",
    "RunStore",
    "RunSummary",
    "default_store_path",
    "environment_info",
    "format_run",
    "format_runs_table",
]

SCHEMA_VERSION = 1
"""Value of ``PRAGMA user_version`` for the current schema."""

RUN_STATUSES = ("running", "completed", "failed", "interrupted")
"""Allowed values of a run's status."""

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
        return Path(home).expanduser().absolute() / "runs.sqlite"
    return Path.cwd() / ".hrsnn" / "runs.sqlite"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


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
            if version < SCHEMA_VERSION:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
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
    ) -> int:
        """Record a new run with status ``"running"``.

        Args:
            name: human-readable name.
            kind: what sort of run (e.g. ``"train"``).
            config: the full configuration (stored as JSON; paths/tuples converted).
            seed: the run's seed, or None.
            env: environment info, e.g. :func:`environment_info` (None → not recorded).
            notes: optional free text.

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

        def body(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "INSERT INTO runs (name, kind, status, created_at, seed, config_json, env_json, notes) "
                "VALUES (?, ?, 'running', ?, ?, ?, ?, ?)",
                (name, kind, _now(), seed, config_json, env_json, notes),
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
        self, run_id: int, *, status: str = "completed", final_metrics: Mapping[str, Any] | None = None
    ) -> None:
        """Mark a run finished, stamping ``finished_at``.

        Args:
            run_id: the run.
            status: ``"completed"``, ``"failed"`` or ``"interrupted"``.
            final_metrics: summary metrics (any JSON-able values); None keeps what was stored before.

        Raises:
            RunNotFoundError: if the run does not exist.
            ConfigError: for a bad status or non-mapping metrics.
        """
        _check_int("run_id", run_id)
        _check_status("status", status, _FINAL_STATUSES)
        final_json = None if final_metrics is None else _dumps(_check_mapping("final_metrics", final_metrics))

        def body(conn: sqlite3.Connection) -> None:
            cursor = conn.execute(
                "UPDATE runs SET status = ?, finished_at = ?, "
                "final_metrics_json = COALESCE(?, final_metrics_json) WHERE id = ?",
                (status, _now(), final_json, run_id),
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
            status: only runs with this status.

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
            clauses.append("status = ?")
            params.append(_check_status("status", status))
        sql = (
            "SELECT id, name, kind, status, created_at, finished_at, seed, final_metrics_json, "
            "(SELECT COUNT(*) FROM epochs e WHERE e.run_id = runs.id) FROM runs"
        )
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(_check_int("limit", limit, minimum=1))

        def body(conn: sqlite3.Connection) -> list[RunSummary]:
            return [
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
                )
                for row in conn.execute(sql, params)
            ]

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
                "final_metrics_json, notes FROM runs WHERE id = ?",
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
            )

        return self._read(body)


# ----------------------------------------------------------------------------------------------------------
# environment
# ----------------------------------------------------------------------------------------------------------


def _git_commit(cwd: Path) -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and commit else None


def environment_info(cwd: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Describe the software and hardware a run executes on, for reproducibility.

    Args:
        cwd: directory whose git commit is recorded; None → the current working directory.

    Returns:
        A JSON-able dict with keys ``python``, ``platform``, ``torch``, ``numpy``, ``hrsnn``, ``cpu_count``,
        ``hostname``, ``cuda_available``, ``cuda_device`` (name or None), ``cuda_version`` and ``git_commit``
        (None outside a git checkout or without git).
    """
    import numpy
    import torch

    try:
        hrsnn_version = importlib.metadata.version("hrsnn")
    except importlib.metadata.PackageNotFoundError:
        hrsnn_version = "unknown"
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
        "hrsnn": hrsnn_version,
        "cpu_count": os.cpu_count(),
        "hostname": socket.gethostname(),
        "cuda_available": cuda_available,
        "cuda_device": cuda_device,
        "cuda_version": torch.version.cuda,
        "git_commit": _git_commit(Path.cwd() if cwd is None else Path(cwd)),
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
            run.status,
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


def format_run(record: RunRecord, *, max_epochs: int = 20) -> str:
    """Render one run as a readable multi-line report.

    Args:
        record: from :meth:`RunStore.get_run`.
        max_epochs: show at most this many (the latest) epochs in the epoch table.

    Returns:
        The report.
    """
    lines = [
        f"run {record.id}: {record.name}",
        f"  kind      {record.kind}",
        f"  status    {record.status}",
        f"  created   {record.created_at}",
        f"  finished  {record.finished_at or '-'}",
        f"  seed      {_fmt_value(record.seed)}",
    ]
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
