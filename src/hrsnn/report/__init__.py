"""HTML reports of recorded runs: ``hrsnn report RUN_ID|SWEEP_ID|LNP_ID``.

One self-contained HTML file per run (figures embedded as base64 PNG, inline CSS, no script, no external URL: it
opens offline in any browser) and the same figures as PNG files beside it, written atomically. What a report holds
depends on the run's kind in the store:

* ``train`` (:mod:`hrsnn.report.train`): training curves, τ distributions before/after training, spike rasters and
  firing-rate histograms on test samples, Lyapunov spectrum and λ_max over time, efficiency tables;
* ``lnp`` and ``lnp_sweep`` (:mod:`hrsnn.report.lnp`): LNP per-iteration history, Lyapunov spectra, the comparison
  table and claims; for a sparsity sweep, metric against sparsity with confidence bands and the paired comparisons;
* ``sweep`` (:mod:`hrsnn.report.sweep`): its Optuna study's trials, optimisation history, parallel coordinates,
  Pareto front and parameter importances.

:func:`hrsnn.report.build.build_report` makes a report; :mod:`hrsnn.report.html` is the page. This package's own
import is light (no torch, no matplotlib), so that :func:`add_parser` can register the sub-command in ``hrsnn``'s
parser without slowing ``hrsnn --help``; the handler imports the rest when it runs.
"""

from __future__ import annotations

import argparse

__all__ = ["REPORT_KINDS", "add_parser"]

REPORT_KINDS: dict[str, tuple[str, ...]] = {"train": ("train",), "lnp": ("lnp", "lnp_sweep"), "sweep": ("sweep",)}
"""Report kind → the run kinds (as recorded in the store) it covers."""


def _cmd_report(args: argparse.Namespace) -> int:
    from hrsnn.report.build import cmd_report

    return cmd_report(args)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``hrsnn report`` (handler :func:`hrsnn.report.build.cmd_report`)."""
    p = subparsers.add_parser(
        "report",
        help="write a self-contained HTML report (and its PNG figures) of a training run, LNP run or sweep",
        description="Writes report-<ID>.html, one self-contained file that opens offline (figures embedded), and "
        "the figures as report-<ID>-<figure>.png beside it. The report's content follows the run's kind: "
        "a training run, an LNP experiment or sparsity sweep, or a hyper-parameter sweep.",
    )
    p.add_argument("run_id", type=int, metavar="ID", help="run, LNP run or sweep id (see hrsnn runs list)")
    p.add_argument("--out", help="folder for the report (default: reports/ beside the run store)")
    p.add_argument(
        "--kind", choices=tuple(REPORT_KINDS), help="the kind of report expected (default: from the run's kind)"
    )
    p.add_argument("--no-lyapunov", action="store_true", help="training runs: skip the Lyapunov spectrum")
    p.add_argument("--data-dir", help="data folder of file-backed tasks (default: as hrsnn train looks for it)")
    p.set_defaults(func=_cmd_report)
