"""The report of a sweep (``hrsnn sweep``, kind ``"sweep"``), read through Optuna's Study API.

After the overview: the trials (how many in each state, the best ones, and all of them with their values,
parameters and run ids), the optimisation history (each objective per finished trial, with the best so far),
parallel coordinates (every parameter and the first objective, one line per finished trial), the Pareto front
(first two objectives of a multi-objective study) and the parameter importances (Optuna's default evaluator, per
objective, once :data:`MIN_IMPORTANCE_TRIALS` trials have finished). Drawn with matplotlib's Agg canvas.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from hrsnn.errors import ConfigError
from hrsnn.experiments.lnp import _figure
from hrsnn.experiments.store import RunRecord
from hrsnn.report.html import Page, Section, fmt, record_overview

__all__ = [
    "MIN_IMPORTANCE_TRIALS",
    "fill_sweep",
    "objective_names",
    "param_importances",
    "plot_importances",
    "plot_optimization_history",
    "plot_parallel_coordinates",
    "plot_pareto_front",
]

MIN_IMPORTANCE_TRIALS = 8
"""Finished trials needed before parameter importances are estimated (fewer give noise)."""

_PED_ANOVA_TARGET = ".*computes the importances of params to achieve low `target` values.*"


def objective_names(study: optuna.Study, config: Mapping[str, Any] | None = None) -> list[str]:
    """Names of the study's objectives: its metric names; else the metrics of the sweep config's ``objective``
    (``{metric, direction}`` or a list of them, as ``hrsnn sweep`` records it); else ``objective``/``objective k``."""
    n = len(study.directions)
    if study.metric_names:
        return list(study.metric_names)
    raw = (config or {}).get("objective")
    entries = [raw] if isinstance(raw, Mapping) else raw if isinstance(raw, list) else []
    metrics = [e.get("metric") for e in entries if isinstance(e, Mapping)]
    if len(metrics) == n and all(isinstance(m, str) and m for m in metrics):
        return metrics
    return ["objective"] if n == 1 else [f"objective {k}" for k in range(n)]


def _plain(text: str) -> str:
    """User text for a matplotlib label: dollar signs escaped so that no mathtext is parsed."""
    return str(text).replace("$", r"\$")


def _finished(study: optuna.Study) -> list[FrozenTrial]:
    return sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), key=lambda t: t.number)


def _maximize(study: optuna.Study, k: int) -> bool:
    return study.directions[k] == StudyDirection.MAXIMIZE


def fill_sweep(page: Page, record: RunRecord, study: optuna.Study) -> None:
    """Add every section of a sweep's report to ``page`` (module docstring)."""
    record_overview(page, record)
    names = objective_names(study, record.config)
    finished = _finished(study)
    _trials(page.section("trials", "Trials"), study, finished, names)
    if not finished:
        page.section("optimisation", "Optimisation").note("no trial has finished yet: nothing to plot")
        return
    page.section("history", "Optimisation history").figure(
        "optimisation-history",
        "Objective values per trial",
        lambda path: plot_optimization_history(study, names, path),
        caption="finished trials; the line is the best value so far.",
    )
    params = _param_names(finished)
    coordinates = page.section("parallel", "Parallel coordinates")
    if params:
        coordinates.figure(
            "parallel-coordinates",
            "Parameters and objective of every finished trial",
            lambda path: plot_parallel_coordinates(study, names, path),
            caption=f"one line per trial, coloured by {names[0]}; log-scaled parameters on log axes.",
        )
    else:
        coordinates.note("the trials have no parameters")
    if len(study.directions) > 1:
        extra = f" (the first two of {len(names)} objectives)" if len(names) > 2 else ""
        page.section("pareto", "Pareto front").figure(
            "pareto-front",
            f"Pareto front: {names[0]} against {names[1]}{extra}",
            lambda path: plot_pareto_front(study, names, path),
            caption=f"{len(study.best_trials)} of {len(finished)} finished trials are on the front.",
        )
    _importance_section(page.section("importances", "Parameter importances"), study, finished, names, params)


# ----------------------------------------------------------------------------------------------- tables


def _param_names(trials: Sequence[FrozenTrial]) -> list[str]:
    return list(dict.fromkeys(name for t in trials for name in t.params))


def _values(trial: FrozenTrial, n: int) -> tuple[float | None, ...]:
    return tuple(trial.values) if trial.values is not None else (None,) * n


def _trials(section: Section, study: optuna.Study, finished: list[FrozenTrial], names: list[str]) -> None:
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    if not trials:
        section.note("the study has no trials yet")
        return
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    directions = ", ".join(f"{n}: {'maximise' if _maximize(study, k) else 'minimise'}" for k, n in enumerate(names))
    section.paragraph(f"study {study.study_name}; objectives {directions}.")
    section.table(("state", "trials"), sorted(counts.items()))
    params = _param_names(trials)
    if finished:
        best = sorted(study.best_trials, key=lambda t: t.number)
        section.table(
            ("trial", *names, "parameters", "run"),
            [
                (
                    t.number,
                    *_values(t, len(names)),
                    ", ".join(f"{k}={fmt(v)}" for k, v in t.params.items()),
                    t.user_attrs.get("run_id"),
                )
                for t in best
            ],
            caption="best trial" if len(names) == 1 else "best trials (the Pareto front)",
        )
    section.table(
        ("trial", "state", *names, *params, "run"),
        [
            (
                t.number,
                t.state.name.lower(),
                *_values(t, len(names)),
                *(t.params.get(p) for p in params),
                t.user_attrs.get("run_id"),
            )
            for t in trials
        ],
        caption="every trial (run: the trial's run in the run store)",
    )


# ----------------------------------------------------------------------------------------------- figures


def plot_optimization_history(study: optuna.Study, names: Sequence[str], path: str | Path) -> Path:
    """Each objective (named ``names``) against the trial number (finished trials), with the best value so far."""
    finished = _finished(study)
    figure = _figure((5.0 * len(names), 3.6), path)
    axes = figure.subplots(1, len(names), squeeze=False)[0]
    numbers = [t.number for t in finished]
    for k, ax in enumerate(axes):
        values = np.array([t.values[k] for t in finished], dtype=float)
        best = np.maximum.accumulate(values) if _maximize(study, k) else np.minimum.accumulate(values)
        ax.scatter(numbers, values, s=16, color="tab:blue", label="trial")
        ax.step(numbers, best, where="post", color="tab:red", lw=1.5, label="best so far")
        ax.set_xlabel("trial")
        ax.set_ylabel(_plain(names[k]))
        ax.set_title(f"{_plain(names[k])} ({'maximise' if _maximize(study, k) else 'minimise'})")
        ax.locator_params(axis="x", integer=True)
        ax.legend(loc="best", fontsize="small")
    figure.savefig(Path(path), dpi=120)
    return Path(path)


def _axis(values: Sequence[Any], distribution: BaseDistribution) -> tuple[np.ndarray, list[tuple[float, str]]]:
    """Positions in [0, 1] of one parameter's values (NaN where a trial lacks it) and the axis's tick labels."""
    if isinstance(distribution, CategoricalDistribution):
        choices = list(distribution.choices)
        span = max(1, len(choices) - 1)
        pos = np.array([math.nan if v is None else choices.index(v) / span for v in values])
        return pos, [(i / span, str(c)) for i, c in enumerate(choices)]
    if not isinstance(distribution, FloatDistribution | IntDistribution):
        raise ConfigError("distribution", type(distribution).__name__, "is not a categorical, float or int range")
    low, high, log = float(distribution.low), float(distribution.high), distribution.log
    scale = np.log10 if log else (lambda x: x)
    lo, hi = scale(low), scale(high)
    raw = np.array([math.nan if v is None else float(v) for v in values])
    pos = (scale(raw) - lo) / (hi - lo) if hi > lo else np.where(np.isnan(raw), math.nan, 0.5)
    return pos, [(0.0, fmt(low, 3)), (1.0, fmt(high, 3))]


def plot_parallel_coordinates(study: optuna.Study, names: Sequence[str], path: str | Path) -> Path:
    """Parallel coordinates: one vertical axis per parameter (its search range) and one for the first objective
    (``names[0]``, its observed range); one line per finished trial, coloured by that objective."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    name = names[0]
    finished = _finished(study)
    params = _param_names(finished)
    columns: list[tuple[np.ndarray, list[tuple[float, str]]]] = []
    for p in params:
        distribution = next(t.distributions[p] for t in finished if p in t.distributions)
        columns.append(_axis([t.params.get(p) for t in finished], distribution))
    objective = np.array([t.values[0] for t in finished], dtype=float)
    lo, hi = float(objective.min()), float(objective.max())
    columns.append(
        ((objective - lo) / (hi - lo) if hi > lo else np.full_like(objective, 0.5), [(0, fmt(lo)), (1, fmt(hi))])
    )
    labels = [_plain(p) for p in params] + [_plain(name)]
    figure = _figure((max(6.0, 1.6 * len(columns) + 2.0), 4.4), path)
    ax = figure.subplots()
    norm = Normalize(lo, hi if hi > lo else lo + 1.0)
    cmap = colormaps["viridis"]
    xs = np.arange(len(columns))
    positions = np.stack([c[0] for c in columns], axis=1)
    for row, value in zip(positions, objective, strict=True):
        ax.plot(xs, row, color=cmap(norm(value)), alpha=0.75, lw=1.2)
    for x, (_, ticks) in zip(xs, columns, strict=True):
        ax.axvline(x, color="black", lw=0.8)
        for y, text in ticks if len(ticks) <= 8 else (ticks[0], ticks[-1]):
            ax.text(x + 0.03, y, _plain(text), fontsize="x-small", va="center")
    ax.set_xticks(xs, labels, rotation=20)
    ax.set_yticks([])
    ax.set_ylim(-0.08, 1.08)
    ax.set_xlim(-0.2, len(columns) - 0.6)
    figure.colorbar(ScalarMappable(norm, cmap), ax=ax, label=_plain(name))
    figure.savefig(Path(path), dpi=120)
    return Path(path)


def plot_pareto_front(study: optuna.Study, names: Sequence[str], path: str | Path) -> Path:
    """The first two objectives (named ``names``) of every finished trial, the Pareto-optimal ones joined."""
    finished = _finished(study)
    front = sorted(study.best_trials, key=lambda t: t.values[0])
    figure = _figure((6.0, 4.6), path)
    ax = figure.subplots()
    ax.scatter(
        [t.values[0] for t in finished],
        [t.values[1] for t in finished],
        s=18,
        color="tab:blue",
        alpha=0.6,
        label="trial",
    )
    ax.plot(
        [t.values[0] for t in front], [t.values[1] for t in front], "o-", color="tab:red", ms=5, label="Pareto front"
    )
    for k, setter in enumerate((ax.set_xlabel, ax.set_ylabel)):
        setter(f"{_plain(names[k])} ({'maximise' if _maximize(study, k) else 'minimise'})")
    ax.legend(loc="best", fontsize="small")
    figure.savefig(Path(path), dpi=120)
    return Path(path)


def param_importances(study: optuna.Study, k: int = 0) -> dict[str, float]:
    """Importances (summing to 1) of the parameters for objective ``k``, by Optuna's default evaluator.

    A single objective is passed as the study's own; objective k of several as a target that is lower for better
    trials (negated when maximised), which is what the evaluator ranks on.
    """
    if len(study.directions) == 1:
        return dict(optuna.importance.get_param_importances(study))
    sign = -1.0 if _maximize(study, k) else 1.0
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_PED_ANOVA_TARGET, category=UserWarning)
        return dict(optuna.importance.get_param_importances(study, target=lambda t: sign * t.values[k]))


def plot_importances(importances: Sequence[tuple[str, dict[str, float]]], path: str | Path) -> Path:
    """Horizontal bars of parameter importances, one panel per objective."""
    figure = _figure((4.6 * len(importances), 0.45 * max(len(i) for _, i in importances) + 1.6), path)
    axes = figure.subplots(1, len(importances), squeeze=False)[0]
    for ax, (name, values) in zip(axes, importances, strict=True):
        ordered = sorted(values.items(), key=lambda kv: kv[1])
        ax.barh([_plain(p) for p, _ in ordered], [v for _, v in ordered], color="tab:blue")
        ax.set_xlabel("importance")
        ax.set_title(_plain(name))
        ax.set_xlim(0.0, 1.0)
    figure.savefig(Path(path), dpi=120)
    return Path(path)


def _importance_section(
    section: Section, study: optuna.Study, finished: list[FrozenTrial], names: list[str], params: list[str]
) -> None:
    if not params:
        section.note("the trials have no parameters")
        return
    if len(finished) < MIN_IMPORTANCE_TRIALS:
        section.note(f"{len(finished)} finished trials; importances need at least {MIN_IMPORTANCE_TRIALS}")
        return
    importances = [(name, param_importances(study, k)) for k, name in enumerate(names)]
    section.figure(
        "importances",
        "Parameter importances",
        lambda path: plot_importances(importances, path),
        caption="Optuna's default importance evaluator; per objective, importances sum to 1.",
    )
    section.table(
        ("objective", "parameter", "importance"),
        [(name, p, v) for name, values in importances for p, v in values.items()],
    )
