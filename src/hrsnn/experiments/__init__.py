"""Experiment bookkeeping: the SQLite run store and environment capture."""

from __future__ import annotations

from hrsnn.experiments.store import (
    RunNotFoundError,
    RunRecord,
    RunStore,
    RunSummary,
    default_store_path,
    environment_info,
    format_run,
    format_runs_table,
)

__all__ = [
    "RunNotFoundError",
    "RunRecord",
    "RunStore",
    "RunSummary",
    "default_store_path",
    "environment_info",
    "format_run",
    "format_runs_table",
]
