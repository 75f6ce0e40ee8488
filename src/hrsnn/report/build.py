"""Making a report: :func:`build_report` (the library call) and :func:`cmd_report` (the ``hrsnn report`` handler)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hrsnn.errors import ConfigError
from hrsnn.experiments.store import RunRecord, RunStore
from hrsnn.report import REPORT_KINDS
from hrsnn.report.html import Page, publish, staging_folder

__all__ = ["build_report", "cmd_report", "default_report_dir", "report_kind"]


def default_report_dir(store: RunStore) -> Path:
    """Where reports go when no folder is given: ``reports/`` beside the run store's database."""
    return store.path.parent / "reports"


def report_kind(record: RunRecord, expected: str | None = None) -> str:
    """The report kind (a key of :data:`hrsnn.report.REPORT_KINDS`) of ``record``'s run kind.

    Raises:
        ConfigError: for a run kind no report covers, or when ``expected`` is given and differs.
    """
    if expected is not None and expected not in REPORT_KINDS:
        raise ConfigError("--kind", expected, f"must be one of {list(REPORT_KINDS)}")
    detected = next((kind for kind, run_kinds in REPORT_KINDS.items() if record.kind in run_kinds), None)
    if detected is None:
        covered = sorted(k for kinds in REPORT_KINDS.values() for k in kinds)
        raise ConfigError("ID", record.id, f"is a {record.kind!r} run; reports cover {', '.join(covered)} runs")
    if expected is not None and expected != detected:
        raise ConfigError("--kind", expected, f"run {record.id} is a {record.kind!r} run (a {detected} report)")
    return detected


def _study(store: RunStore, record: RunRecord) -> Any:
    from hrsnn.experiments.sweep import load_sweep  # the sweep engine; imported only for sweep reports

    return load_sweep(store, record.id)[1]


def build_report(
    store: RunStore,
    run_id: int,
    *,
    out_dir: str | Path | None = None,
    kind: str | None = None,
    lyapunov: bool = True,
    data_dir: str | Path | None = None,
    study: Any = None,
) -> Path:
    """Write the report of run ``run_id``: ``report-<id>.html`` and ``report-<id>-<figure>.png`` in ``out_dir``
    (default :func:`default_report_dir`), replacing an earlier report of the run atomically.

    Args:
        store: the run store holding the run.
        run_id: a training run, an LNP run or sweep, or a sweep.
        out_dir: folder of the report (created).
        kind: the report kind expected (see :func:`report_kind`); None takes the run's.
        lyapunov: training runs: whether to estimate the Lyapunov spectrum (the report's slowest part).
        data_dir: data folder of file-backed tasks (training runs: rasters and firing rates).
        study: sweeps: the sweep's ``optuna.Study``; None loads it with
            :func:`hrsnn.experiments.sweep.load_sweep`.

    Returns:
        The HTML file's path.

    Raises:
        RunNotFoundError: no such run. ConfigError: a bad ``kind`` or ``out_dir``, or a run kind without report.
    """
    record = store.get_run(run_id)
    detected = report_kind(record, kind)
    out = Path(out_dir) if out_dir is not None else default_report_dir(store)
    if out.exists() and not out.is_dir():
        raise ConfigError("--out", str(out), "is a file; it must name a folder for the report")
    if detected == "sweep" and study is None:
        study = _study(store, record)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"report-{run_id:05d}"
    with staging_folder(out, stem) as staging:
        page = Page(
            f"hrsnn report: run {record.id}, {record.name}",
            f"{record.kind} run, {record.state}, created {record.created_at}",
            stem,
            staging,
        )
        if detected == "train":
            from hrsnn.report.train import fill_train

            fill_train(page, record, lyapunov=lyapunov, data_dir=data_dir)
        elif record.kind == "lnp_sweep":
            from hrsnn.report.lnp import fill_lnp_sweep

            fill_lnp_sweep(page, record)
        elif detected == "lnp":
            from hrsnn.report.lnp import fill_lnp

            fill_lnp(page, record)
        else:
            from hrsnn.report.sweep import fill_sweep

            fill_sweep(page, record, study)
        return publish(page, out)


def cmd_report(args: argparse.Namespace) -> int:
    """Handler of ``hrsnn report``: write the report and print the HTML file's path; returns 0."""
    store = RunStore(getattr(args, "store", None))
    path = build_report(
        store,
        args.run_id,
        out_dir=args.out,
        kind=args.kind,
        lyapunov=not args.no_lyapunov,
        data_dir=args.data_dir,
    )
    print(path)
    return 0
