"""Sweeps: grids and Bayesian optimisation (Optuna) over training or LNP experiments, on one machine or a Ray cluster.

A sweep config (TOML/YAML/JSON; ``examples/sweep.toml``, docs/sweeps.md) names a base experiment, the parameters to
vary, the objective(s) read from each run's recorded final metrics, a sampler, a pruner, a budget and the seeds of
every point::

    name = "digits-lr"
    kind = "train"                  # the base is an `hrsnn train` experiment ("lnp": an `hrsnn lnp` one)
    seeds = [0, 1]                  # every trial runs its point once per seed; its objective is the mean
    sampler = "tpe"                 # "grid", "random", "tpe", "gp", "nsga2" (default: "grid" without [space])
    pruner = "median"               # "none", "median", "hyperband", "successive_halving"
    objective = { metric = "val_accuracy", direction = "maximize" }   # a list of tables: multi-objective
    budget = { n_trials = 20, timeout_s = 3600 }
    [base]                          # the experiment, as `hrsnn train --config` reads it
    task = { name = "digits" }
    [grid]                          # dotted keys → lists; a number indexes a list (model.layers.0.size)
    "model.layers.0.size" = [32, 64]
    [space."train.lr"]              # "uniform", "loguniform", "int", "categorical"; `when` makes it conditional
    type = "loguniform"
    low = 1e-4
    high = 1e-2

What is recorded (the contract with ``hrsnn report``): the sweep is a run of kind ``"sweep"`` in the run store, its
id the sweep id; its Optuna study ``sweep-<id>`` lives in ``<store folder>/optuna.sqlite``; every trial runs one
normal run per seed (kind ``"train"`` or ``"lnp"``) whose config carries ``"sweep": {"id": <sweep>, "trial": <n>}``,
and the trial has the user attributes ``run_id`` (its first run), ``run_ids``, ``seed_values`` (seed → objective
values), ``reason`` (why it failed or was pruned), ``owner`` (the process that runs it) and, for a trial lost with
its process, ``lost``. :func:`load_sweep` opens both.

Concurrency: every write to the Optuna study (ask, tell, report, user attributes, enqueue) happens under an exclusive
``flock`` on ``<store folder>/optuna.sqlite.lock``, which the OS releases when its holder dies, even by kill -9. The
lock makes "count the budget, pop a queued trial, sample, record the owner" one atomic step: measured without it (4
processes asking 60 queued trials of one SQLite study), 68 and 65 trials ran in two tries, points ran twice or not
from the queue, and 2 tells failed; with it, exactly 60 (docs/sweeps.md). SQLite's own busy timeout (60 s here)
serialises the writes themselves. The run store needs no such lock (:mod:`hrsnn.experiments.store`).

Lost trials: a trial records its owner process (host, pid, start time). A trial left RUNNING whose owner is dead
(checked as the run store checks a run's owner) is marked failed with the user attribute
``lost`` and queued again with the same parameters (:meth:`optuna.study.Study.enqueue_trial`), at most
:data:`MAX_ATTEMPTS` times per point; every worker does this before it asks for a trial, and so does a resumed sweep.
Finished trials are never run again.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import io
import json
import math
import multiprocessing
import os
import signal
import socket
import sqlite3
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from hrsnn.config import from_dict, read_config_file, to_dict
from hrsnn.errors import ConfigError, RunInterrupted, Terminated
from hrsnn.experiments.store import (
    RunRecord,
    RunStore,
    _fmt_value,
    _process_alive,
    _render_table,
    environment_info,
    process_start_time,
)

if TYPE_CHECKING:
    import optuna

__all__ = [
    "MAX_ATTEMPTS",
    "Budget",
    "Objective",
    "Param",
    "RayOptions",
    "SweepConfig",
    "add_parser",
    "cmd_sweep",
    "format_sweep",
    "grid_points",
    "load_sweep",
    "run_sweep",
    "sweep_csv",
    "sweep_report",
]

MAX_ATTEMPTS = 3
"""A point whose trial was lost this many times (its process killed each time) is not queued again."""

PRUNERS = ("none", "median", "hyperband", "successive_halving")
"""Optuna pruners by name: NopPruner, MedianPruner, HyperbandPruner, SuccessiveHalvingPruner."""

PARAM_TYPES = ("uniform", "loguniform", "int", "categorical")
"""Kinds of a ``[space]`` entry."""

_POLL_S = 0.2
_GRACE_S = 30.0  # how long an interrupted sweep waits for its workers to record the interruption
_SQLITE_TIMEOUT_S = 60.0
_T = TypeVar("_T")
_Scalar = (str, int, float, bool, type(None))


# ----------------------------------------------------------------------------------------------------- config


@dataclass(frozen=True)
class Objective:
    """A final metric of each run (e.g. ``"val_accuracy"``, ``"synapses"``) and whether to maximise or minimise it."""

    metric: str
    direction: Literal["maximize", "minimize"]

    def __post_init__(self) -> None:
        if not self.metric.strip():
            raise ConfigError("objective.metric", self.metric, "must name a recorded metric")


@dataclass(frozen=True)
class Budget:
    """When a sweep stops: after ``n_trials`` trials (lost ones not counted) and/or ``timeout_s`` seconds of this
    invocation (no trial starts after it; running ones finish)."""

    n_trials: int | None = None
    timeout_s: float | None = None

    def __post_init__(self) -> None:
        if self.n_trials is not None and self.n_trials < 1:
            raise ConfigError("budget.n_trials", self.n_trials, "must be >= 1")
        if self.timeout_s is not None and not (self.timeout_s > 0 and math.isfinite(self.timeout_s)):
            raise ConfigError("budget.timeout_s", self.timeout_s, "must be a finite number of seconds > 0")


@dataclass(frozen=True)
class _SpaceEntry:
    """One ``[space."key"]`` table as written (checked by :func:`_param`)."""

    type: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    choices: tuple[Any, ...] | None = None
    when: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class Param:
    """A varied field: its dotted key, how it is drawn and the condition under which it exists.

    Attributes:
        name: dotted key into the base experiment (a number indexes a list: ``model.layers.0.size``).
        type: ``"categorical"`` (grid entries too), ``"uniform"``, ``"loguniform"`` or ``"int"``.
        choices: the values of a categorical parameter.
        low, high, step, log: the range of a numeric one.
        when: parameter name → allowed values; the parameter is drawn only when every one holds.
        where: where it was written (``grid."train.lr"``, ``space."train.lr"``), for errors.
    """

    name: str
    type: str
    choices: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    when: Mapping[str, tuple[Any, ...]] = field(default_factory=lambda: MappingProxyType({}))
    where: str = ""

    def active(self, chosen: Mapping[str, Any]) -> bool:
        """Whether the parameter exists at a point whose earlier parameters are ``chosen``."""
        return all(key in chosen and chosen[key] in allowed for key, allowed in self.when.items())


def _param(name: str, raw: Any) -> Param:
    where = f'space."{name}"'
    entry = from_dict(_SpaceEntry, raw, where)
    if entry.type not in PARAM_TYPES:
        raise ConfigError(f"{where}.type", entry.type, f"must be one of {list(PARAM_TYPES)}")
    when = {str(k): tuple(v) if isinstance(v, list | tuple) else (v,) for k, v in entry.when.items()}
    if entry.type == "categorical":
        for key in ("low", "high", "step"):
            if getattr(entry, key) is not None:
                raise ConfigError(f"{where}.{key}", getattr(entry, key), "is not used by a categorical parameter")
        return Param(name, "categorical", _choices(f"{where}.choices", entry.choices), when=when, where=where)
    if entry.choices is not None:
        raise ConfigError(f"{where}.choices", list(entry.choices), "is only used by type 'categorical'")
    for key in ("low", "high"):
        if getattr(entry, key) is None:
            raise ConfigError(f"{where}.{key}", None, f"is required for type {entry.type!r}")
    low, high = float(entry.low), float(entry.high)  # type: ignore[arg-type]
    if not (math.isfinite(low) and math.isfinite(high) and low <= high):
        raise ConfigError(f"{where}.high", entry.high, f"must be finite and >= low ({entry.low})")
    if entry.type == "loguniform" and low <= 0:
        raise ConfigError(f"{where}.low", entry.low, "must be > 0 for type 'loguniform'")
    if entry.step is not None and not entry.step > 0:
        raise ConfigError(f"{where}.step", entry.step, "must be > 0")
    if entry.type == "int":
        for key in ("low", "high", "step"):
            value = getattr(entry, key)
            if value is not None and value != int(value):
                raise ConfigError(f"{where}.{key}", value, "must be an integer for type 'int'")
        if entry.log and entry.step not in (None, 1):
            raise ConfigError(f"{where}.step", entry.step, "must be 1 (or omitted) with log = true")
        step = None if entry.step is None else int(entry.step)
        return Param(name, "int", low=int(low), high=int(high), step=step, log=entry.log, when=when, where=where)
    if entry.log:
        raise ConfigError(f"{where}.log", True, "is only used by type 'int' (use type 'loguniform')")
    if entry.type == "loguniform" and entry.step is not None:
        raise ConfigError(f"{where}.step", entry.step, "cannot be combined with type 'loguniform'")
    return Param(name, entry.type, low=low, high=high, step=entry.step, when=when, where=where)


def _choices(where: str, values: Any) -> tuple[Any, ...]:
    if not isinstance(values, list | tuple) or not values:
        raise ConfigError(where, values, "must be a non-empty list")
    for value in values:
        if not isinstance(value, _Scalar):
            raise ConfigError(where, list(values), "values must be numbers, strings, booleans or null")
    if len({json.dumps(v) for v in values}) != len(values):
        raise ConfigError(where, list(values), "values must be distinct")
    return tuple(values)


def _objectives(raw: Any) -> tuple[Objective, ...]:
    items = raw if isinstance(raw, list | tuple) else [raw]
    if not items:
        raise ConfigError("objective", raw, "must be a table {metric, direction} or a non-empty list of them")
    out = []
    for i, item in enumerate(items):
        where = "objective" if not isinstance(raw, list | tuple) else f"objective[{i}]"
        out.append(from_dict(Objective, item, where))
    if len({o.metric for o in out}) != len(out):
        raise ConfigError("objective", raw, "names a metric twice")
    return tuple(out)


@dataclass(frozen=True)
class _PrunerEntry:
    """The ``pruner`` table as written: its kind, the per-epoch metric it reads and its Optuna options."""

    kind: str = "none"
    metric: str | None = None
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


def _order(params: Sequence[Param]) -> tuple[Param, ...]:
    """The parameters in drawing order: each after those its ``when`` names (declared order otherwise)."""
    by_name = {p.name: p for p in params}
    for p in params:
        for key, allowed in p.when.items():
            if key == p.name or key not in by_name:
                raise ConfigError(f"{p.where}.when", key, f"must name another parameter; known: {sorted(by_name)}")
            condition = by_name[key]
            if condition.type != "categorical":
                raise ConfigError(f"{p.where}.when", key, "must name a grid or categorical parameter")
            for value in allowed:
                if value not in condition.choices:
                    raise ConfigError(f"{p.where}.when.{key}", value, f"is not one of {list(condition.choices)}")
    placed: list[Param] = []
    remaining = list(params)
    while remaining:
        ready = [p for p in remaining if all(k in {q.name for q in placed} for k in p.when)]
        if not ready:
            raise ConfigError(f"{remaining[0].where}.when", dict(remaining[0].when), "the conditions form a cycle")
        placed.append(ready[0])
        remaining.remove(ready[0])
    return tuple(placed)


def grid_points(params: Sequence[Param]) -> list[dict[str, Any]]:
    """Every point of a grid of categorical parameters (in drawing order; the first varies slowest). A conditional
    parameter appears only at the points where its condition holds, so no point is repeated."""
    points: list[dict[str, Any]] = [{}]
    for p in params:
        points = [new for pt in points for new in ([{**pt, p.name: v} for v in p.choices] if p.active(pt) else [pt])]
    return points


@dataclass(frozen=True)
class SweepConfig:
    """A sweep (module docstring; every field in docs/sweeps.md). Parsed by :meth:`from_dict`; errors name the field.

    Attributes:
        base: the experiment every trial starts from (a training or LNP experiment config, possibly partial).
        objective: ``{metric, direction}`` or a list of them (multi-objective: the Pareto front is reported).
        kind: ``"train"`` or ``"lnp"``: what ``base`` is.
        name: the sweep's name in the run store.
        grid: dotted key → list of values.
        space: dotted key → ``{type, low, high, step, log, choices, when}``.
        sampler: ``"grid"`` (every point queued), ``"random"``, ``"tpe"``, ``"gp"``, ``"nsga2"`` (Optuna's
            RandomSampler, TPESampler, GPSampler, NSGAIISampler), or ``"auto"``: ``"grid"`` when there is no
            ``space``, else ``"tpe"``.
        sampler_options: keyword options of the Optuna sampler (e.g. ``n_startup_trials``).
        sampler_seed: seed of the sampler; trial n draws from a stream fixed by (sampler_seed, n).
        pruner: a name of :data:`PRUNERS` or ``{kind, metric, options}``; it reads the per-epoch ``metric``
            (default: the objective's) of training runs.
        budget: ``{n_trials, timeout_s}``.
        seeds: seeds of every point.
        workers: parallel trials (local: worker processes, default 1; Ray: default the cluster's CPUs divided by
            the CPUs per trial).
    """

    base: Mapping[str, Any]
    objective: Any
    kind: Literal["train", "lnp"] = "train"
    name: str = "sweep"
    grid: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    space: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    sampler: Literal["auto", "grid", "random", "tpe", "gp", "nsga2"] = "auto"
    sampler_options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    sampler_seed: int = 0
    pruner: Any = "none"
    budget: Budget = field(default_factory=Budget)
    seeds: tuple[int, ...] = (0,)
    workers: int | None = None
    params: tuple[Param, ...] = field(init=False, repr=False, compare=False)
    objectives: tuple[Objective, ...] = field(init=False, repr=False, compare=False)
    pruning: _PrunerEntry = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        from hrsnn._validate import check_run_seed

        if not self.name.strip():
            raise ConfigError("name", self.name, "must be a non-empty string")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError("seeds", list(self.seeds), "must be a non-empty list of distinct seeds")
        for i, seed in enumerate(self.seeds):
            check_run_seed(f"seeds[{i}]", seed)
        check_run_seed("sampler_seed", self.sampler_seed)
        if self.workers is not None and self.workers < 1:
            raise ConfigError("workers", self.workers, "must be >= 1")
        seed_key = "seed" if self.kind == "train" else "seeds"
        if seed_key in self.base:
            raise ConfigError(f"base.{seed_key}", self.base[seed_key], "set the seeds with the sweep's `seeds`")
        grid = [
            Param(str(k), "categorical", _choices(f'grid."{k}"', v), where=f'grid."{k}"') for k, v in self.grid.items()
        ]
        space = [_param(str(k), v) for k, v in self.space.items()]
        for p in (*grid, *space):
            if p.name.split(".")[0] in ("seed", "seeds", "sweep"):
                raise ConfigError(p.where, p.name, "cannot be varied (set the seeds with the sweep's `seeds`)")
        duplicate = {p.name for p in grid} & {p.name for p in space}
        if duplicate:
            raise ConfigError(f'space."{sorted(duplicate)[0]}"', None, "is also in grid; give it in one of them")
        object.__setattr__(self, "params", _order([*grid, *space]))
        object.__setattr__(self, "objectives", _objectives(self.objective))
        self._check_sampler()
        self._check_pruner()
        self._check_base()

    @property
    def sampler_kind(self) -> str:
        """The sampler that runs: :attr:`sampler`, with ``"auto"`` resolved."""
        if self.sampler != "auto":
            return self.sampler
        return "grid" if not self.space else "tpe"

    @property
    def directions(self) -> list[str]:
        """The Optuna study's directions, one per objective."""
        return [o.direction for o in self.objectives]

    def _check_sampler(self) -> None:
        if not self.params:
            raise ConfigError("grid", {}, "a sweep needs at least one parameter in grid or space")
        if self.sampler_kind == "grid":
            for p in self.params:
                if p.type != "categorical":
                    raise ConfigError(p.where, p.type, "the grid sampler needs finite choices: use grid or categorical")
            if self.sampler_options:
                raise ConfigError("sampler_options", dict(self.sampler_options), "the grid sampler takes no options")
            points = len(grid_points(self.params))
            if self.budget.n_trials is not None and self.budget.n_trials > points:
                raise ConfigError("budget.n_trials", self.budget.n_trials, f"is more than the grid's {points} points")
        elif self.budget.n_trials is None and self.budget.timeout_s is None:
            raise ConfigError("budget", {}, f"the {self.sampler_kind} sampler needs n_trials and/or timeout_s")
        _make_sampler(self, 0)

    def _check_pruner(self) -> None:
        raw = self.pruner
        entry = _PrunerEntry(kind=raw) if isinstance(raw, str) else from_dict(_PrunerEntry, raw, "pruner")
        if entry.kind not in PRUNERS:
            raise ConfigError(
                "pruner.kind" if not isinstance(raw, str) else "pruner", entry.kind, f"must be one of {list(PRUNERS)}"
            )
        if entry.kind != "none":
            if self.kind != "train":
                raise ConfigError("pruner", entry.kind, "prunes on per-epoch training metrics; an LNP run has none")
            if len(self.objectives) > 1:
                raise ConfigError("pruner", entry.kind, "Optuna prunes single-objective sweeps only")
            metric = entry.metric or self.objectives[0].metric
            if not (metric.startswith(("train_", "val_")) or metric == "lr"):
                raise ConfigError(
                    "pruner.metric", metric, "must be a per-epoch metric of a training run (val_*, train_*)"
                )
            entry = dataclasses.replace(entry, metric=metric)
        object.__setattr__(self, "pruning", entry)
        _make_pruner(self)

    def _check_base(self) -> None:
        """Parse the base alone, and with every grid/categorical value and every range end of each parameter."""
        self.trial_config({}, self.seeds[0], check=True)
        for p in self.params:
            values = p.choices if p.type == "categorical" else (p.low, p.high)
            for value in values:
                try:
                    self.trial_config({p.name: value}, self.seeds[0], check=True)
                except ConfigError as exc:
                    raise ConfigError(p.where, value, f"does not fit the base experiment: {exc}") from None

    def trial_config(self, params: Mapping[str, Any], seed: int, *, check: bool = False) -> dict[str, Any]:
        """The experiment config of one run: ``base`` with ``params`` set and the seed; parsed when ``check``."""
        resolved = self._resolved()
        data = to_dict(self.base)
        for name, value in params.items():
            _set_path(data, resolved, name, value)
        if self.kind == "train":
            data["seed"] = seed
            train = data.setdefault("train", {})
            if isinstance(train, dict):
                train["progress"] = False
        else:
            data["seeds"] = [seed]
        if check:
            _parse_experiment(self.kind, data)
        return data

    def _resolved(self) -> dict[str, Any]:
        """The base merged over its preset: where lists that a parameter indexes come from."""
        return _parse_experiment(self.kind, to_dict(self.base)).to_dict()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SweepConfig:
        """Parse a plain dict (a read config file); errors name the field."""
        return from_dict(cls, data, "sweep")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (the inverse of :meth:`from_dict`)."""
        return to_dict(self)

    def identity(self) -> dict[str, Any]:
        """What a resumed sweep must agree on: everything but ``workers``."""
        data = self.to_dict()
        data.pop("workers", None)
        return data


def _base_field(name: str) -> str:
    return "base" if name == "config" else "base." + name.removeprefix("config.")


def _parse_experiment(kind: str, data: Mapping[str, Any]) -> Any:
    """An ExperimentConfig or LNPExperimentConfig; a bad field raises a ConfigError naming ``base.<field>``."""
    if kind == "train":
        from hrsnn.experiments.runner import ExperimentConfig

        parse: Callable[[Mapping[str, Any]], Any] = ExperimentConfig.from_dict
    else:
        from hrsnn.experiments.lnp import LNPExperimentConfig

        parse = LNPExperimentConfig.from_dict
    try:
        return parse(data)
    except ConfigError as exc:
        raise ConfigError(_base_field(exc.field), exc.value, exc.reason) from None


def _set_path(data: dict[str, Any], resolved: Any, name: str, value: Any) -> None:
    """Set dotted key ``name`` in ``data`` as ``--set`` does (missing tables are created, and merge over the
    preset); a number indexes a list, which is copied from ``resolved`` (the merged config) when ``data`` lacks it."""
    parts = name.split(".")
    node: Any = data
    ref: Any = resolved
    for depth, part in enumerate(parts):
        where = ".".join(parts[:depth]) or "the config"
        key: int | str
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(name, value, f"{where} is a list of {len(node)}; {part!r} is not an index in it")
            key = int(part)
        elif isinstance(node, dict):
            key = part
        else:
            raise ConfigError(name, value, f"{where} is a value, not a table or list")
        if isinstance(ref, dict):
            ref = ref.get(key)
        elif isinstance(ref, list) and isinstance(key, int) and key < len(ref):
            ref = ref[key]
        else:
            ref = None
        if depth == len(parts) - 1:
            node[key] = value
            return
        present = isinstance(node, list) or key in node
        if not present:
            node[key] = to_dict(ref) if isinstance(ref, list) else {}
        node = node[key]


# ----------------------------------------------------------------------------------------------------- optuna


def _optuna() -> Any:
    from hrsnn.pruning._optional import require

    return require("optuna", "sampler", "optuna")


def _make_sampler(config: SweepConfig, seed: int) -> Any:
    """The Optuna sampler of ``config`` seeded with ``seed`` (a grid's points are queued, so any sampler serves)."""
    optuna = _optuna()
    classes = {
        "grid": optuna.samplers.RandomSampler,
        "random": optuna.samplers.RandomSampler,
        "tpe": optuna.samplers.TPESampler,
        "gp": optuna.samplers.GPSampler,
        "nsga2": optuna.samplers.NSGAIISampler,
    }
    return _construct(classes[config.sampler_kind], "sampler_options", config.sampler_options, seed=seed)


def _make_pruner(config: SweepConfig) -> Any:
    optuna = _optuna()
    classes = {
        "none": optuna.pruners.NopPruner,
        "median": optuna.pruners.MedianPruner,
        "hyperband": optuna.pruners.HyperbandPruner,
        "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
    }
    return _construct(classes[config.pruning.kind], "pruner.options", config.pruning.options)


def _construct(cls: Any, field: str, options: Mapping[str, Any], **fixed: Any) -> Any:
    """``cls(**fixed, **options)``; options the class rejects raise a ConfigError naming ``field``."""
    try:
        return cls(**fixed, **options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(field, dict(options), f"{cls.__name__}: {exc}") from None


def _storage_url(store: RunStore) -> str:
    return f"sqlite:///{store.path.parent / 'optuna.sqlite'}"


def _storage(store: RunStore) -> Any:
    optuna = _optuna()
    return optuna.storages.RDBStorage(
        _storage_url(store), engine_kwargs={"connect_args": {"timeout": _SQLITE_TIMEOUT_S}}
    )


def _study_name(sweep_id: int) -> str:
    return f"sweep-{sweep_id}"


class _FileLock:
    """An exclusive ``flock`` on a file, taken per block; the OS drops it when the holder dies (even by kill -9)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna's per-trial INFO lines off (hrsnn prints its own progress)."""
    optuna = _optuna()
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(verbosity)


def load_sweep(store: RunStore, sweep_id: int) -> tuple[RunRecord, optuna.Study]:
    """The sweep's run record and its Optuna study (with the configured sampler and pruner).

    Raises:
        RunNotFoundError: no run ``sweep_id``. ConfigError: the run is not a sweep, or its study is missing.
    """
    record, _, study = _open(store, sweep_id)
    return record, study


def _open(store: RunStore, sweep_id: int) -> tuple[RunRecord, SweepConfig, optuna.Study]:
    record = store.get_run(sweep_id)
    if record.kind != "sweep":
        raise ConfigError("SWEEP_ID", sweep_id, f"is a {record.kind!r} run, not a sweep")
    config = SweepConfig.from_dict(record.config)
    optuna = _optuna()
    try:
        study = optuna.load_study(
            study_name=_study_name(sweep_id),
            storage=_storage(store),
            sampler=_make_sampler(config, config.sampler_seed),
            pruner=_make_pruner(config),
        )
    except KeyError:
        raise ConfigError("SWEEP_ID", sweep_id, f"has no Optuna study in {_storage_url(store)}") from None
    return record, config, study


def _lost(trial: optuna.trial.FrozenTrial) -> bool:
    return "lost" in trial.user_attrs


def _state(trial: optuna.trial.FrozenTrial) -> str:
    return "LOST" if _lost(trial) else trial.state.name


def _owner() -> dict[str, Any]:
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "pid_start": process_start_time(pid)}


def _owner_alive(owner: Mapping[str, Any] | None) -> bool:
    """Whether the process that runs a trial lives: on this host its pid (and start time, where the OS tells it)
    decides; on another host it cannot be checked and counts as dead, so resume a sweep on the host that ran it."""
    if not owner or owner.get("host") != socket.gethostname():
        return False
    return _process_alive(int(owner["pid"]), owner.get("pid_start")) is not False


# ----------------------------------------------------------------------------------------------------- trials


@dataclass(frozen=True)
class _Job:
    """One trial to run: which, and the experiment config of each seed (plain data, picklable)."""

    sweep_id: int
    number: int
    trial_id: int
    kind: str
    runs: tuple[tuple[int, dict[str, Any]], ...]
    prune_metric: str | None
    pruner: str


@dataclass
class _Outcome:
    """What running a job gave: its runs, and why it stopped early (pruned) or failed, if it did."""

    run_ids: list[int]
    pruned: str | None = None
    error: str | None = None


class _Reporter(Protocol):
    """How a trial's runs reach its Optuna trial: linking each new run, and reporting per-epoch values."""

    def link_run(self, trial_id: int, run_id: int) -> None: ...

    def should_prune(self, trial_id: int, step: int, value: float) -> bool: ...


class _TrialStore(RunStore):
    """The run store as one trial's runs see it: every run created carries the sweep link and is recorded on the
    trial; every logged epoch is reported to the pruner (which may stop the run by raising TrialPruned)."""

    def __init__(self, path: str | os.PathLike[str], job: _Job, reporter: _Reporter) -> None:
        super().__init__(path)
        self._attach(job, reporter)

    def _attach(self, job: _Job, reporter: _Reporter) -> None:
        self.job = job
        self.reporter = reporter
        self.run_ids: list[int] = []
        self._step0 = 0
        self._seed = 0

    def begin(self, index: int, seed: int, epochs: int) -> None:
        """The next run is that of seed ``seed`` (the ``index``-th); its epochs are pruning steps from
        ``index * epochs`` on, so trials compare at the same seed and epoch."""
        self._step0 = index * epochs
        self._seed = seed

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
        linked = {**config, "sweep": {"id": self.job.sweep_id, "trial": self.job.number}}
        run_id = super().create_run(name=name, kind=kind, config=linked, seed=seed, env=env, notes=notes, owner=owner)
        self.run_ids.append(run_id)
        self.reporter.link_run(self.job.trial_id, run_id)
        return run_id

    def log_epoch(self, run_id: int, epoch: int, metrics: Mapping[str, float]) -> None:
        super().log_epoch(run_id, epoch, metrics)
        metric = self.job.prune_metric
        if metric is None:
            return
        if metric not in metrics:
            raise ConfigError("pruner.metric", metric, f"is not a per-epoch metric of run {run_id}: {sorted(metrics)}")
        value = float(metrics[metric])
        if self.reporter.should_prune(self.job.trial_id, self._step0 + epoch, value):
            optuna = _optuna()
            raise optuna.TrialPruned(
                f"pruned by the {self.job.pruner} pruner after epoch {epoch} of seed {self._seed}: {metric} {value:.4g}"
            )


def _execute(job: _Job, store: _TrialStore, runs_dir: str | Path, data_dir: str | Path | None) -> _Outcome:
    """Run every seed of a job; a pruned or failing run ends the trial (the run itself is marked failed with the
    reason by the run store)."""
    optuna = _optuna()
    try:
        for index, (seed, data) in enumerate(job.runs):
            config = _parse_experiment(job.kind, data)
            if job.kind == "train":
                from hrsnn.experiments.runner import run_experiment

                store.begin(index, seed, config.train.epochs)
                run_experiment(config, store=store, runs_dir=runs_dir, data_dir=data_dir)
            else:
                from hrsnn.experiments.lnp import run_lnp_experiment

                store.begin(index, seed, 0)
                run_lnp_experiment(config, store=store, out_dir=runs_dir)
    except optuna.TrialPruned as exc:
        return _Outcome(store.run_ids, pruned=str(exc))
    except Exception as exc:
        return _Outcome(store.run_ids, error=f"{type(exc).__name__}: {exc}")
    return _Outcome(store.run_ids)


class _StudyLink:
    """What a trial's runs need of the study (the :class:`_Reporter`): linking runs and pruning reports, each
    under the file lock."""

    def __init__(self, lock: _FileLock, study: optuna.Study) -> None:
        self.lock = lock
        self.study = study

    @classmethod
    def open(cls, store: RunStore, sweep_id: int, pruner: Any) -> _StudyLink:
        """The study of sweep ``sweep_id`` with ``pruner``, without parsing the sweep's config (no torch import:
        the Ray relay uses this)."""
        lock = _FileLock(store.path.parent / "optuna.sqlite.lock")
        with lock():
            study = _optuna().load_study(study_name=_study_name(sweep_id), storage=_storage(store), pruner=pruner)
        return cls(lock, study)

    def link_run(self, trial_id: int, run_id: int) -> None:
        optuna = _optuna()
        with self.lock():
            trial = optuna.trial.Trial(self.study, trial_id)
            run_ids = [*trial.user_attrs.get("run_ids", []), run_id]
            trial.set_user_attr("run_ids", run_ids)
            trial.set_user_attr("run_id", run_ids[0])

    def should_prune(self, trial_id: int, step: int, value: float) -> bool:
        optuna = _optuna()
        with self.lock():
            trial = optuna.trial.Trial(self.study, trial_id)
            trial.report(value, step)
            return bool(trial.should_prune())


class _StudyAccess(_StudyLink):
    """One process's handle on a sweep: its config and study; claims and concludes trials (every write to the
    study under the file lock, module docstring)."""

    def __init__(self, store: RunStore, sweep_id: int, log: Callable[[str], None]) -> None:
        self.store = store
        self.sweep_id = sweep_id
        self.log = log
        lock = _FileLock(store.path.parent / "optuna.sqlite.lock")
        with lock():
            self.record, self.config, study = _open(store, sweep_id)
        super().__init__(lock, study)

    # -- claiming and concluding trials ------------------------------------------------------------------------

    def aborted(self) -> str | None:
        """Why the sweep was stopped for good (an objective that runs do not record), or None."""
        reason = self.study.user_attrs.get("abort")
        return str(reason) if reason else None

    def claim(self, deadline: float | None) -> tuple[optuna.Trial, _Job] | None:
        """The next trial to run, owned by this process, or None when the budget is spent (lost trials are queued
        again first)."""
        optuna = _optuna()
        waiting_state = optuna.trial.TrialState.WAITING
        with self.lock():
            if self.aborted():
                return None
            self.requeue_lost()
            if deadline is not None and time.time() >= deadline:
                return None
            trials = self.study.get_trials(deepcopy=False)
            started = sum(1 for t in trials if t.state != waiting_state and not _lost(t))
            waiting = any(t.state == waiting_state for t in trials)
            budget = self.config.budget.n_trials
            if self.config.sampler_kind == "grid":
                budget = min(budget or math.inf, len(grid_points(self.config.params)))
                if not waiting:
                    return None
            if budget is not None and started >= budget:
                return None
            self.study.sampler = _make_sampler(self.config, _trial_seed(self.config.sampler_seed, len(trials)))
            trial = self.study.ask()
            trial.set_user_attr("owner", _owner())
            params = _suggest(trial, self.config.params)
        try:
            runs = tuple((seed, self._run_config(trial.number, params, seed)) for seed in self.config.seeds)
        except ConfigError as exc:
            self.conclude(trial, _Outcome([], error=f"ConfigError: {exc}"))
            return self.claim(deadline)
        pruning = self.config.pruning
        job = _Job(self.sweep_id, trial.number, _trial_id(trial), self.config.kind, runs, pruning.metric, pruning.kind)
        return trial, job

    def _run_config(self, number: int, params: Mapping[str, Any], seed: int) -> dict[str, Any]:
        """The config of one run of trial ``number``, named after the sweep and trial (``hrsnn runs list``)."""
        data = self.config.trial_config(params, seed)
        data["name"] = f"{self.config.name}.trial{number}"
        return data

    def requeue_lost(self) -> None:
        """Mark RUNNING trials whose owner process is dead as lost and queue their points again (caller holds
        the lock)."""
        optuna = _optuna()
        for frozen in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            owner = frozen.user_attrs.get("owner")
            if _owner_alive(owner):
                continue
            where = f"pid {owner['pid']} on {owner['host']}" if owner else "a process that died while claiming it"
            self._lose(frozen, f"its process ({where}) died")

    def _lose(self, frozen: optuna.trial.FrozenTrial, reason: str, *, attempt: bool = True) -> None:
        """Mark a trial lost and queue its point again, unless it was lost :data:`MAX_ATTEMPTS` times (an
        interruption by the user does not count as an attempt)."""
        optuna = _optuna()
        trial = optuna.trial.Trial(self.study, frozen._trial_id)
        trial.set_user_attr("lost", reason)
        self.study.tell(frozen.number, state=optuna.trial.TrialState.FAIL)
        attempts = int(frozen.user_attrs.get("attempt", 1))
        if attempts < MAX_ATTEMPTS or not attempt:
            self.study.enqueue_trial(
                dict(frozen.params),
                user_attrs={"attempt": attempts + 1 if attempt else attempts, "requeued_from": frozen.number},
            )
            self.log(f"sweep {self.sweep_id}: trial {frozen.number} lost ({reason}); its point is queued again")
        else:
            self.log(
                f"sweep {self.sweep_id}: trial {frozen.number} lost ({reason}), {attempts} times: not queued again"
            )

    def lose(self, trial: optuna.Trial, reason: str, *, attempt: bool = True) -> None:
        """Give up a trial of this process that was interrupted or whose execution vanished (a lost Ray task):
        its runs that still say running are marked failed, and its point is queued again."""
        for run_id in trial.user_attrs.get("run_ids", []):
            if self.store.get_run(run_id).status == "running":
                self.store.finish_run(run_id, status="failed", reason=reason)
        with self.lock():
            frozen = next(t for t in self.study.get_trials(deepcopy=False) if t.number == trial.number)
            self._lose(frozen, reason, attempt=attempt)

    def conclude(self, trial: optuna.Trial, outcome: _Outcome) -> None:
        """Tell the study how a trial ended: the mean of each objective over its seeds' recorded final metrics,
        pruned, or failed (with the reason). An objective that the runs do not record stops the sweep."""
        optuna = _optuna()
        state = optuna.trial.TrialState
        values: list[float] | None = None
        reason = outcome.pruned or outcome.error
        seed_values: dict[str, dict[str, Any]] = {}
        if reason is None:
            records = [self.store.get_run(run_id) for run_id in outcome.run_ids]
            for seed, record in zip(self.config.seeds, records, strict=True):
                seed_values[str(seed)] = {o.metric: _objective_value(record, o.metric) for o in self.config.objectives}
            missing = [
                (r.id, o.metric) for r in records for o in self.config.objectives if o.metric not in r.final_metrics
            ]
            if missing:
                run_id, metric = missing[0]
                known = sorted(self.store.get_run(run_id).final_metrics)
                message = f"objective.metric={metric!r}: run {run_id} does not record it; recorded: {known}"
                with self.lock():
                    self.study.set_user_attr("abort", message)
                    trial.set_user_attr("reason", message)
                    self.study.tell(trial, state=state.FAIL)
                raise ConfigError("objective.metric", metric, f"run {run_id} does not record it; recorded: {known}")
            values = [_mean([seed_values[str(s)][o.metric] for s in self.config.seeds]) for o in self.config.objectives]
            if not all(math.isfinite(v) for v in values):
                reason = f"non-finite objective {values}"
                values = None
        with self.lock():
            if trial.number not in {t.number for t in self.study.get_trials(deepcopy=False, states=(state.RUNNING,))}:
                self.log(f"sweep {self.sweep_id}: trial {trial.number} was given up meanwhile; its result is not told")
                return
            if seed_values:
                trial.set_user_attr("seed_values", seed_values)
            if reason is not None:
                trial.set_user_attr("reason", reason)
            if outcome.pruned is not None:
                self.study.tell(trial, state=state.PRUNED)
            elif values is None:
                self.study.tell(trial, state=state.FAIL)
            else:
                self.study.tell(trial, values)
        self.log(self.progress(trial.number))

    def progress(self, number: int) -> str:
        """One line: how trial ``number`` ended, trials done of the budget, and the best so far."""
        trials = self.study.get_trials(deepcopy=False)
        this = next(t for t in trials if t.number == number)
        counts = {s: sum(1 for t in trials if _state(t) == s) for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING")}
        done = counts["COMPLETE"] + counts["PRUNED"] + counts["FAIL"]
        total = self.config.budget.n_trials
        if self.config.sampler_kind == "grid":
            total = min(total or math.inf, len(grid_points(self.config.params)))  # type: ignore[assignment]
        outcome = (
            _fmt_values(self.config, this.values)
            if this.values and this.state.name == "COMPLETE"
            else _state(this).lower()
        )
        line = f"sweep {self.sweep_id}: trial {number} {outcome}; {done}/{total or '?'} done"
        line += f" ({counts['PRUNED']} pruned, {counts['FAIL']} failed), {counts['RUNNING']} running"
        best = _best(self.config, trials)
        if best and len(self.config.objectives) == 1:
            line += f"; best {_fmt_values(self.config, best[0].values)} (trial {best[0].number})"
        elif best:
            line += f"; Pareto front: {len(best)} trials"
        return line


def _trial_id(trial: optuna.Trial) -> int:
    return int(trial._trial_id)


def _trial_seed(sampler_seed: int, number: int) -> int:
    """The sampler seed of trial ``number``: fixed by the sweep's seed and the trial number, whichever worker asks."""
    return zlib.crc32(f"{sampler_seed}:{number}".encode())


def _suggest(trial: optuna.Trial, params: Sequence[Param]) -> dict[str, Any]:
    """Draw the point of a trial (a queued trial returns its fixed values); conditional parameters only where their
    condition holds."""
    chosen: dict[str, Any] = {}
    for p in params:
        if not p.active(chosen):
            continue
        if p.type == "categorical":
            chosen[p.name] = trial.suggest_categorical(p.name, list(p.choices))
        elif p.type == "int":
            chosen[p.name] = trial.suggest_int(p.name, int(p.low), int(p.high), step=p.step or 1, log=p.log)  # type: ignore[arg-type]
        else:
            chosen[p.name] = trial.suggest_float(
                p.name,
                p.low,
                p.high,
                step=p.step,
                log=p.type == "loguniform",  # type: ignore[arg-type]
            )
    return chosen


def _objective_value(record: RunRecord, metric: str) -> float:
    value = record.final_metrics.get(metric)
    return math.nan if value is None or isinstance(value, bool) or not isinstance(value, int | float) else float(value)


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def _fmt_values(config: SweepConfig, values: Sequence[float] | None) -> str:
    if not values:
        return "-"
    return ", ".join(f"{o.metric} {v:.4g}" for o, v in zip(config.objectives, values, strict=True))


def _best(config: SweepConfig, trials: Sequence[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    """The best complete trial (single objective), or the Pareto front (several), by increasing trial number."""
    complete = [t for t in trials if t.state.name == "COMPLETE" and t.values is not None]
    signs = [1.0 if d == "maximize" else -1.0 for d in config.directions]
    scored = [(t, [s * v for s, v in zip(signs, t.values, strict=True)]) for t in complete]  # larger is better

    def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
        return all(x >= y for x, y in zip(a, b, strict=True)) and any(x > y for x, y in zip(a, b, strict=True))

    if len(signs) == 1:
        return [max(complete, key=lambda t: signs[0] * t.values[0])] if complete else []
    return [t for t, a in scored if not any(dominates(b, a) for _, b in scored)]


# ----------------------------------------------------------------------------------------------------- backends


@dataclass(frozen=True)
class _Context:
    """Where a sweep's processes record (picklable: spawned workers receive it)."""

    store_path: str
    sweep_id: int
    runs_dir: str
    data_dir: str | None
    quiet: bool
    main: dict[str, Any]  # the sweep's own process (host, pid, start): workers stop claiming when it is gone


def _say(quiet: bool) -> Callable[[str], None]:
    if quiet:
        return lambda line: None
    return lambda line: print(line, flush=True)


def _work(ctx: _Context, deadline: float | None, log: Callable[[str], None]) -> None:
    """One worker: claim a trial, run it, tell its result, until the budget is spent or the sweep's own process is
    gone (killed alone, it leaves no worker claiming trials behind its back)."""
    store = RunStore(ctx.store_path)
    access = _StudyAccess(store, ctx.sweep_id, log)
    while _owner_alive(ctx.main):
        claimed = access.claim(deadline)
        if claimed is None:
            return
        trial, job = claimed
        try:
            outcome = _execute(job, _TrialStore(ctx.store_path, job, access), ctx.runs_dir, ctx.data_dir)
        except KeyboardInterrupt as exc:
            access.lose(trial, _interruption(exc), attempt=False)
            raise
        access.conclude(trial, outcome)


def _interruption(exc: KeyboardInterrupt) -> str:
    """What stopped a trial: Ctrl-C or a termination signal (as the run store words it)."""
    if isinstance(exc, RunInterrupted):
        return exc.reason
    return f"terminated by {exc.signal_name}" if isinstance(exc, Terminated) else "interrupted (Ctrl-C)"


def _worker_main(ctx: _Context, deadline: float | None) -> None:
    """Entry point of a worker process: Ctrl-C or SIGTERM ends the current run as interrupted and queues its point
    again; further signals are ignored while it records that."""

    def stop(signum: int, frame: object) -> None:
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, signal.SIG_IGN)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Terminated(signal.Signals(signum).name)

    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, stop)
    try:
        with _quiet_optuna():
            _work(ctx, deadline, _say(ctx.quiet))
    except KeyboardInterrupt:
        sys.exit(130)
    except ConfigError as exc:
        print(f"hrsnn: error: {exc}", file=sys.stderr)
        sys.exit(2)


def _drive_local(ctx: _Context, deadline: float | None, workers: int, log: Callable[[str], None]) -> None:
    """Run the sweep in ``workers`` processes (this one when 1). When a worker dies, the others (and, once all are
    gone, this process) run what it left."""
    if workers == 1:
        _work(ctx, deadline, log)
        return
    # Workers fork from a single-threaded server that imported the training code once (spawn would import torch in
    # every worker; fork would copy this process's heartbeat thread's locks).
    server = multiprocessing.get_context("forkserver")
    server.set_forkserver_preload(["hrsnn.experiments.runner", "hrsnn.experiments.sweep"])
    procs = [
        server.Process(target=_worker_main, args=(ctx, deadline), name=f"hrsnn-sweep-{ctx.sweep_id}-{i}")
        for i in range(workers)
    ]
    for proc in procs:
        proc.start()
    log(f"sweep {ctx.sweep_id}: {workers} worker processes (pids {', '.join(str(p.pid) for p in procs)})")
    reported: set[int] = set()

    def report(proc: multiprocessing.process.BaseProcess) -> None:
        code = proc.exitcode
        if code is not None and code != 0 and proc.pid not in reported:
            reported.add(proc.pid or 0)
            how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
            log(f"sweep {ctx.sweep_id}: worker pid {proc.pid} ended ({how})")

    try:
        while any(p.is_alive() for p in procs):
            for proc in procs:
                proc.join(_POLL_S / len(procs))
                report(proc)
        for proc in procs:
            report(proc)
    except KeyboardInterrupt as exc:
        # pass the signal on (a worker that got it already, as Ctrl-C reaches the whole process group, ignores it)
        number = signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT
        for proc in procs:
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, number)
        for proc in procs:
            proc.join(_GRACE_S)
            if proc.is_alive():
                proc.kill()
                proc.join()
        raise
    if reported:  # a worker died: finish here what nobody else could
        _work(ctx, deadline, log)


def _require_ray() -> Any:
    from hrsnn.pruning._optional import require

    return require("ray", "--backend", "ray", extra="ray")


class _Relay:
    """Ray actor on the driver's node: the remote trials' door to the driver's run store, runs folder and study."""

    def __init__(self, store_path: str, sweep_id: int, runs_dir: str, pruner: Any) -> None:
        self.store = RunStore(store_path)
        self.runs_dir = Path(runs_dir)
        self.link = _StudyLink.open(self.store, sweep_id, pruner)

    def write(self, body: Callable[[sqlite3.Connection], _T]) -> _T:
        return self.store._write(body)

    def read(self, body: Callable[[sqlite3.Connection], _T]) -> _T:
        return self.store._read(body)

    def put_file(self, relative: str, data: bytes) -> str:
        """Write one artifact file under the driver's runs folder (atomically); its path there."""
        target = self.runs_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        partial.write_bytes(data)
        partial.replace(target)
        return str(target)

    def folder(self, relative: str) -> str:
        target = self.runs_dir / relative
        target.mkdir(parents=True, exist_ok=True)
        return str(target)

    def link_run(self, trial_id: int, run_id: int) -> None:
        self.link.link_run(trial_id, run_id)

    def should_prune(self, trial_id: int, step: int, value: float) -> bool:
        return self.link.should_prune(trial_id, step, value)


class _RelayReporter:
    """The :class:`_Reporter` of a remote trial: the relay actor does the work on the driver's node."""

    def __init__(self, relay: Any) -> None:
        self.relay = relay

    def link_run(self, trial_id: int, run_id: int) -> None:
        _require_ray().get(self.relay.link_run.remote(trial_id, run_id))

    def should_prune(self, trial_id: int, step: int, value: float) -> bool:
        return bool(_require_ray().get(self.relay.should_prune.remote(trial_id, step, value)))


class _RemoteTrialStore(_TrialStore):
    """A trial's run store inside a Ray task: every transaction runs in the relay against the driver's store (so
    run ids, epochs and heartbeats are the driver's, live), and artifact files are copied to the driver's runs
    folder (files when recorded, folders when the run finishes)."""

    def __init__(self, relay: Any, store_path: str, job: _Job, root: Path) -> None:
        self._path = Path(store_path)  # the driver's store, named in messages
        self._relay = relay
        self._root = root
        self._folders: list[tuple[Path, str]] = []
        self._attach(job, _RelayReporter(relay))

    def _write(self, body: Callable[[sqlite3.Connection], _T]) -> _T:
        return _require_ray().get(self._relay.write.remote(body))

    def _read(self, body: Callable[[sqlite3.Connection], _T]) -> _T:
        return _require_ray().get(self._relay.read.remote(body))

    def _relative(self, run_id: int, path: Path) -> str:
        return str(
            path.relative_to(self._root) if path.is_relative_to(self._root) else Path(f"run-{run_id:05d}") / path.name
        )

    def add_artifact(self, run_id: int, kind: str, path: str | os.PathLike[str]) -> None:
        ray = _require_ray()
        local = Path(path).absolute()
        relative = self._relative(run_id, local)
        if local.is_dir():
            self._folders.append((local, relative))
            target = ray.get(self._relay.folder.remote(relative))
        else:
            target = ray.get(self._relay.put_file.remote(relative, local.read_bytes()))
        super().add_artifact(run_id, kind, target)

    def finish_run(
        self,
        run_id: int,
        *,
        status: str = "completed",
        final_metrics: Mapping[str, Any] | None = None,
        reason: str | None = None,
    ) -> None:
        ray = _require_ray()
        for local, relative in self._folders:
            for file in sorted(p for p in local.rglob("*") if p.is_file()):
                ray.get(self._relay.put_file.remote(str(Path(relative) / file.relative_to(local)), file.read_bytes()))
        self._folders.clear()
        super().finish_run(run_id, status=status, final_metrics=final_metrics, reason=reason)


def _ray_execute(job: _Job, relay: Any, store_path: str, data_dir: str | None) -> _Outcome:
    """Body of a Ray task: run a job in a scratch folder of the worker node, recording into the driver's store."""
    with tempfile.TemporaryDirectory(prefix="hrsnn-trial-") as scratch:
        root = Path(scratch)
        store = _RemoteTrialStore(relay, store_path, job, root)
        return _execute(job, store, root, data_dir)


@dataclass(frozen=True)
class RayOptions:
    """The Ray backend's settings: cluster address (None: ``RAY_ADDRESS`` or a local instance) and per-trial
    resources."""

    address: str | None = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0

    def __post_init__(self) -> None:
        if not self.cpus_per_trial > 0:
            raise ConfigError("--cpus-per-trial", self.cpus_per_trial, "must be > 0")
        if self.gpus_per_trial < 0:
            raise ConfigError("--gpus-per-trial", self.gpus_per_trial, "must be >= 0")


def _drive_ray(
    ctx: _Context, deadline: float | None, workers: int | None, options: RayOptions, log: Callable[[str], None]
) -> None:
    """Run trials as Ray tasks; this process (the driver) asks and tells the study; the results come back to its
    store through a relay actor pinned to this node."""
    ray = _require_ray()
    if not ray.is_initialized():
        ray.init(address=options.address, include_dashboard=False, log_to_driver=False)
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)
    access = _StudyAccess(RunStore(ctx.store_path), ctx.sweep_id, log)
    relay = (
        ray.remote(_Relay)
        .options(num_cpus=0, scheduling_strategy=here)
        .remote(ctx.store_path, ctx.sweep_id, ctx.runs_dir, _make_pruner(access.config))
    )
    task = ray.remote(_ray_execute).options(
        num_cpus=options.cpus_per_trial, num_gpus=options.gpus_per_trial, max_retries=0
    )
    parallel = workers or max(1, int(ray.cluster_resources().get("CPU", 1) // options.cpus_per_trial))
    log(f"sweep {ctx.sweep_id}: Ray backend, up to {parallel} trials at a time")
    in_flight: dict[Any, Any] = {}
    try:
        while True:
            while len(in_flight) < parallel and (claimed := access.claim(deadline)) is not None:
                trial, job = claimed
                in_flight[task.remote(job, relay, ctx.store_path, ctx.data_dir)] = trial
            if not in_flight:
                return
            [ref], _ = ray.wait(list(in_flight), num_returns=1)
            trial = in_flight.pop(ref)
            try:
                outcome = ray.get(ref)
            except ray.exceptions.RayError as exc:
                access.lose(trial, f"its Ray task failed: {type(exc).__name__}")
                continue
            access.conclude(trial, outcome)
    except KeyboardInterrupt as exc:
        for ref, trial in in_flight.items():
            ray.cancel(ref, force=True)
            access.lose(trial, _interruption(exc), attempt=False)
        in_flight.clear()
        raise
    finally:
        for ref in in_flight:
            ray.cancel(ref, force=True)
        ray.kill(relay)


# ----------------------------------------------------------------------------------------------------- running


def _create(config: SweepConfig, store: RunStore) -> int:
    """Record a new sweep (run of kind "sweep") and create its study, with a grid's points queued."""
    sweep_id = store.create_run(
        name=config.name, kind="sweep", config=config.to_dict(), seed=config.sampler_seed, env=environment_info()
    )
    _ensure_study(config, store, sweep_id)
    return sweep_id


def _ensure_study(config: SweepConfig, store: RunStore, sweep_id: int) -> None:
    """Create the sweep's study if it does not exist yet (a sweep killed before it did), queueing a grid."""
    optuna = _optuna()
    with _FileLock(store.path.parent / "optuna.sqlite.lock")():
        study = optuna.create_study(
            storage=_storage(store),
            study_name=_study_name(sweep_id),
            directions=config.directions,
            sampler=_make_sampler(config, config.sampler_seed),
            pruner=_make_pruner(config),
            load_if_exists=True,
        )
        if study.user_attrs.get("sweep_id") == sweep_id:
            return
        if config.sampler_kind == "grid":
            points = grid_points(config.params)[: config.budget.n_trials]
            for point in points:
                study.enqueue_trial(point, user_attrs={"attempt": 1}, skip_if_exists=True)
        study.set_user_attr("sweep_id", sweep_id)


def run_sweep(
    config: SweepConfig | None,
    *,
    store: RunStore,
    runs_dir: str | Path,
    data_dir: str | Path | None = None,
    resume: int | None = None,
    workers: int | None = None,
    backend: Literal["local", "ray"] = "local",
    ray_options: RayOptions | None = None,
    log: Callable[[str], None] | None = None,
) -> int:
    """Run a new sweep (``config``) or continue sweep ``resume`` (with its own config; a given ``config`` must
    equal it but for ``workers``), and return the sweep id.

    Finished trials are kept; trials lost with their process are run again. The sweep run ends "completed" with a
    summary in its final metrics; Ctrl-C or SIGTERM marks it "interrupted" (:class:`hrsnn.errors.RunInterrupted`).

    Raises:
        ConfigError: bad options, a resumed sweep whose config differs, a sweep whose objective the runs do not
            record, or ``backend="ray"`` without Ray (:class:`hrsnn.errors.MissingDependencyError`).
        RunBusyError: the sweep to resume is still running.
    """
    with _quiet_optuna():
        return _run_sweep(config, store, runs_dir, data_dir, resume, workers, backend, ray_options, log)


def _run_sweep(
    config: SweepConfig | None,
    store: RunStore,
    runs_dir: str | Path,
    data_dir: str | Path | None,
    resume: int | None,
    workers: int | None,
    backend: str,
    ray_options: RayOptions | None,
    log: Callable[[str], None] | None,
) -> int:
    say = log or (lambda line: None)
    if backend not in ("local", "ray"):
        raise ConfigError("--backend", backend, "must be 'local' or 'ray'")
    if backend == "ray":
        _require_ray()
    if workers is not None and workers < 1:
        raise ConfigError("--workers", workers, "must be >= 1")
    if resume is None:
        if config is None:
            raise ConfigError("CONFIG", None, "give a sweep config (or --resume SWEEP_ID)")
        sweep_id = _create(config, store)
        say(f"sweep {sweep_id}: {config.name}, study {_study_name(sweep_id)} in {_storage_url(store)}")
    else:
        record = store.get_run(resume)
        if record.kind != "sweep":
            raise ConfigError("--resume", resume, f"is a {record.kind!r} run, not a sweep")
        stored = SweepConfig.from_dict(record.config)
        if config is not None and config.identity() != stored.identity():
            key = _first_difference(config.identity(), stored.identity())
            raise ConfigError(
                "--resume", resume, f"was started with another config (it differs at {key}); start a new sweep"
            )
        config = stored if config is None else config
        if record.status == "completed":
            raise ConfigError("--resume", resume, "is already completed")
        store.claim_run(resume)
        _ensure_study(config, store, resume)
        sweep_id = resume
        say(f"sweep {sweep_id}: resuming {config.name}")
    count = workers or config.workers
    ctx = _Context(
        str(store.path),
        sweep_id,
        str(Path(runs_dir).absolute()),
        None if data_dir is None else str(data_dir),
        log is None,
        _owner(),
    )
    deadline = None if config.budget.timeout_s is None else time.time() + config.budget.timeout_s
    with store.recording(sweep_id, "sweep"):
        try:
            if backend == "ray":
                _drive_ray(ctx, deadline, count, ray_options or RayOptions(), say)
            else:
                _drive_local(ctx, deadline, count or 1, say)
        except RunInterrupted as exc:  # a trial's run was interrupted: so is the sweep, for the same reason
            raise exc.__cause__ if isinstance(exc.__cause__, KeyboardInterrupt) else KeyboardInterrupt() from None
        access = _StudyAccess(store, sweep_id, say)
        reason = access.aborted()
        if reason is not None:
            raise ConfigError("objective", [o.metric for o in config.objectives], reason)
        store.finish_run(sweep_id, status="completed", final_metrics=_summary(config, access.study))
    return sweep_id


def _first_difference(a: Any, b: Any, prefix: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{prefix}.{key}" if prefix else str(key))
    return prefix or "the top level"


def _summary(config: SweepConfig, study: optuna.Study) -> dict[str, Any]:
    """The sweep's final metrics: trial counts and the best values (single objective) or the front's size."""
    trials = study.get_trials(deepcopy=False)
    out: dict[str, Any] = {"trials": len(trials)}
    for state in ("COMPLETE", "PRUNED", "FAIL", "LOST"):
        out[state.lower()] = sum(1 for t in trials if _state(t) == state)
    best = _best(config, trials)
    if len(config.objectives) == 1 and best:
        out["best_trial"] = best[0].number
        out[f"best_{config.objectives[0].metric}"] = best[0].values[0]
    elif best:
        out["pareto_trials"] = [t.number for t in best]
    return out


# ----------------------------------------------------------------------------------------------------- reports


def _trial_row(trial: optuna.trial.FrozenTrial, config: SweepConfig) -> dict[str, Any]:
    values = None
    if trial.values is not None and trial.state.name == "COMPLETE":
        values = {o.metric: v for o, v in zip(config.objectives, trial.values, strict=True)}
    return {
        "number": trial.number,
        "state": _state(trial),
        "values": values,
        "params": dict(trial.params),
        "run_ids": list(trial.user_attrs.get("run_ids", [])),
        "seed_values": dict(trial.user_attrs.get("seed_values", {})),
        "reason": trial.user_attrs.get("lost") or trial.user_attrs.get("reason"),
        "requeued_from": trial.user_attrs.get("requeued_from"),
    }


def _importances(config: SweepConfig, study: optuna.Study) -> tuple[dict[str, dict[str, float] | None], str | None]:
    """Parameter importances per objective (Optuna's default evaluator), or None with the reason when there are
    too few complete trials."""
    optuna = _optuna()
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    out: dict[str, dict[str, float] | None] = {}
    note = None
    for i, objective in enumerate(config.objectives):
        if len(complete) < 2:
            out[objective.metric] = None
            note = f"needs at least 2 complete trials ({len(complete)} so far)"
            continue
        try:
            with _warnings_off():
                # with a target, Optuna's default evaluator (PED-ANOVA) takes lower as better: flip maximised ones
                sign = -1.0 if objective.direction == "maximize" else 1.0
                ranked = optuna.importance.get_param_importances(study, target=lambda t, i=i, c=sign: c * t.values[i])
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:
            out[objective.metric] = None
            note = f"not computable: {exc}"
            continue
        out[objective.metric] = {k: float(v) for k, v in ranked.items()}
    return out, note


@contextlib.contextmanager
def _warnings_off() -> Iterator[None]:
    """Silence Optuna's experimental/user warnings while computing a report."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def sweep_report(store: RunStore, sweep_id: int) -> dict[str, Any]:
    """Everything ``hrsnn sweep show`` prints, as JSON-able data: the sweep, its best trial(s) (the Pareto front for
    several objectives), parameter importances and every trial."""
    record, study = load_sweep(store, sweep_id)
    config = SweepConfig.from_dict(record.config)
    trials = study.get_trials(deepcopy=False)
    importances, note = _importances(config, study)
    return {
        "sweep_id": sweep_id,
        "name": record.name,
        "kind": config.kind,
        "state": record.state,
        "study": _study_name(sweep_id),
        "storage": _storage_url(store),
        "sampler": config.sampler_kind,
        "pruner": config.pruning.kind,
        "objectives": [dataclasses.asdict(o) for o in config.objectives],
        "seeds": list(config.seeds),
        "params": [p.name for p in config.params],
        "best": [_trial_row(t, config) for t in _best(config, trials)],
        "importances": importances,
        "importance_note": note,
        "trials": [_trial_row(t, config) for t in trials],
    }


def _columns(report: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    return [o["metric"] for o in report["objectives"]], list(report["params"])


def _cells(row: Mapping[str, Any], metrics: Sequence[str], params: Sequence[str]) -> list[str]:
    values = row["values"] or {}
    return [
        str(row["number"]),
        row["state"],
        *(_fmt_value(values.get(m)) for m in metrics),
        *(_fmt_value(row["params"][p]) if p in row["params"] else "-" for p in params),
        ",".join(str(r) for r in row["run_ids"]) or "-",
    ]


def format_sweep(report: Mapping[str, Any]) -> str:
    """The text of ``hrsnn sweep show``."""
    metrics, params = _columns(report)
    trials = report["trials"]
    counts = {
        s: sum(1 for t in trials if t["state"] == s)
        for s in ("COMPLETE", "PRUNED", "FAIL", "LOST", "RUNNING", "WAITING")
    }
    objective = ", ".join(f"{o['metric']} ({o['direction']})" for o in report["objectives"])
    lines = [
        f"sweep {report['sweep_id']}: {report['name']} ({report['kind']}, {report['state']}; study {report['study']})",
        f"  objective  {objective}, mean over seeds {report['seeds']}",
        f"  sampler    {report['sampler']}, pruner {report['pruner']}",
        "  trials     " + ", ".join(f"{n} {s.lower()}" for s, n in counts.items() if n)
        if trials
        else "  trials     none",
        "",
    ]
    headers = ["trial", "state", *metrics, *params, "runs"]
    right = [True, False, *([True] * len(metrics)), *([False] * len(params)), False]
    title = "best trial" if len(metrics) == 1 else f"Pareto front ({len(report['best'])} trials)"
    if report["best"]:
        lines += [
            f"{title}:",
            *(
                "  " + r
                for r in _render_table(
                    headers, [_cells(b, metrics, params) for b in report["best"]], right
                ).splitlines()
            ),
        ]
    else:
        lines.append(f"{title}: none (no complete trial)")
    lines.append("")
    for metric, ranked in report["importances"].items():
        if ranked is None:
            lines.append(f"parameter importances ({metric}): n/a, {report['importance_note']}")
        else:
            lines.append(f"parameter importances ({metric}):")
            lines += [f"  {name:<{max(len(k) for k in ranked)}}  {value:.3f}" for name, value in ranked.items()]
    lines += ["", "trials:"]
    rows = []
    for t in trials:
        per_seed = "; ".join(
            f"{seed}: " + ", ".join(_fmt_value(v) for v in values.values()) for seed, values in t["seed_values"].items()
        )
        rows.append([*_cells(t, metrics, params), per_seed or "-", t["reason"] or ""])
    table = _render_table([*headers, "per seed", "note"], rows, [*right, False, False])
    lines += ["  " + r for r in table.splitlines()]
    return "\n".join(lines)


def sweep_csv(report: Mapping[str, Any]) -> str:
    """The trials of ``hrsnn sweep show --csv``: one row per trial, a column per objective and parameter."""
    metrics, params = _columns(report)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["trial", "state", *metrics, *params, "run_ids", "seed_values", "reason"])
    for t in report["trials"]:
        values = t["values"] or {}
        writer.writerow(
            [
                t["number"],
                t["state"],
                *("" if values.get(m) is None else repr(values[m]) for m in metrics),
                *(t["params"].get(p, "") for p in params),
                " ".join(str(r) for r in t["run_ids"]),
                json.dumps(t["seed_values"]) if t["seed_values"] else "",
                t["reason"] or "",
            ]
        )
    return out.getvalue()


# ----------------------------------------------------------------------------------------------------- CLI


def cmd_sweep(args: argparse.Namespace) -> int:
    """Handler of ``hrsnn sweep``: run or resume a sweep, or ``show`` one."""
    store = RunStore(getattr(args, "store", None))
    if args.config == "show":
        return _cmd_show(args, store)
    if args.sweep_id is not None:
        raise ConfigError("ID", args.sweep_id, "is only read by `hrsnn sweep show ID`")
    if args.csv:
        raise ConfigError("--csv", True, "is an option of `hrsnn sweep show`")
    if args.backend != "ray":
        for option in ("address", "cpus_per_trial", "gpus_per_trial"):
            if getattr(args, option) is not None:
                raise ConfigError("--" + option.replace("_", "-"), getattr(args, option), "needs --backend ray")
    config = SweepConfig.from_dict(read_config_file(args.config)) if args.config else None
    runs_dir = getattr(args, "runs_dir", None) or store.path.parent / "runs"
    options = None
    if args.backend == "ray":
        options = RayOptions(
            args.address, 1.0 if args.cpus_per_trial is None else args.cpus_per_trial, args.gpus_per_trial or 0.0
        )
    quiet = args.quiet or args.json
    sweep_id = run_sweep(
        config,
        store=store,
        runs_dir=runs_dir,
        data_dir=args.data_dir,
        resume=args.resume,
        workers=args.workers,
        backend=args.backend,
        ray_options=options,
        log=None if quiet else (lambda line: print(line, flush=True)),
    )
    report = sweep_report(store, sweep_id)
    if args.json:
        print(json.dumps(report, allow_nan=True))
    elif not args.quiet:
        print("\n" + format_sweep(report))
    return 0


def _cmd_show(args: argparse.Namespace, store: RunStore) -> int:
    if args.sweep_id is None:
        raise ConfigError("ID", None, "give the sweep to show: hrsnn sweep show ID")
    for option in ("workers", "data_dir", "address", "resume", "cpus_per_trial", "gpus_per_trial"):
        if getattr(args, option) is not None:
            raise ConfigError("--" + option.replace("_", "-"), getattr(args, option), "is not an option of sweep show")
    if args.backend != "local":
        raise ConfigError("--backend", args.backend, "is not an option of sweep show")
    if args.json and args.csv:
        raise ConfigError("--csv", True, "give --json or --csv, not both")
    with _quiet_optuna():
        report = sweep_report(store, args.sweep_id)
    if args.json:
        print(json.dumps(report, allow_nan=True))
    elif args.csv:
        print(sweep_csv(report), end="")
    else:
        print(format_sweep(report))
    return 0


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``hrsnn sweep CONFIG``, ``hrsnn sweep --resume ID`` and ``hrsnn sweep show ID`` (handler
    :func:`cmd_sweep`; heavy packages are imported only when it runs)."""
    p = subparsers.add_parser(
        "sweep",
        help="hyper-parameter sweep (grid, random, TPE, GP, NSGA-II) over train or LNP experiments",
        description="Run a sweep over a training or LNP experiment: a grid and/or a search space, an objective read "
        "from every run's recorded metrics, Optuna samplers and pruners, several seeds per point, parallel worker "
        "processes or a Ray cluster. Every trial's runs are normal runs in the run store. See docs/sweeps.md.",
        usage="hrsnn sweep CONFIG [--workers K] [--backend ray ...]\n"
        "       hrsnn sweep --resume SWEEP_ID [--workers K]\n"
        "       hrsnn sweep show SWEEP_ID [--json | --csv]",
    )
    p.add_argument(
        "config", nargs="?", metavar="CONFIG", help="sweep config (TOML/YAML/JSON; examples/sweep.toml), or show"
    )
    p.add_argument("sweep_id", nargs="?", type=int, metavar="SWEEP_ID", help="with show: the sweep to show")
    p.add_argument(
        "--resume",
        type=int,
        metavar="SWEEP_ID",
        help="continue a killed or interrupted sweep: finished trials are kept, lost ones run again",
    )
    p.add_argument(
        "--workers", type=int, metavar="K", help="parallel trials (local: worker processes; default: the config's, 1)"
    )
    p.add_argument("--backend", choices=["local", "ray"], default="local", help="where trials run (default local)")
    p.add_argument(
        "--address",
        metavar="ADDR",
        help="with --backend ray: the cluster (e.g. 10.0.0.1:6379; default RAY_ADDRESS or local)",
    )
    p.add_argument("--cpus-per-trial", type=float, metavar="C", help="with --backend ray: CPUs per trial (default 1)")
    p.add_argument("--gpus-per-trial", type=float, metavar="G", help="with --backend ray: GPUs per trial (default 0)")
    p.add_argument("--data-dir", help="data root for file-backed tasks (see hrsnn data list)")
    p.add_argument("--json", action="store_true", help="print the sweep's report as one JSON object")
    p.add_argument("--csv", action="store_true", help="with show: print the trials as CSV")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_sweep)
