r"""The LNP sparsity sweep: LNP against fair baselines at equal budgets, over sparsities, seeds and tasks.

For every seed s (each builds its own dense network, :func:`hrsnn.experiments.lnp.build_dense`):

1. **LNP snapshots.** One LNP run (:func:`hrsnn.experiments.lnp.prune_with_lnp`) is continued from its checkpoint
   to each neuron sparsity of ``sparsities`` in turn (targets 0.3, 0.5, ...), and the network at each level is
   kept. LNP's own stopping rules still act: if it stops first (λ_max above the threshold, or no change), the
   deeper levels have no LNP network for that seed, and the sparsity where it stopped is reported as an outcome.
2. **Baselines at LNP's counts** (n neurons, m recurrent synapses of the snapshot). Equal neuron counts hold *by
   construction* for every baseline, equal synapse counts for the random ones; ``ap`` keeps every synapse among
   its survivors, and the magnitude-based ones keep all when their neurons hold fewer than m (LNP's step 3 adds
   synapses, so this happens); the table flags every comparison whose counts differ:

   * ``random``: uniform random neurons then synapses (:func:`hrsnn.experiments.lnp.random_sparse`), rescaled to
     the dense spectral radius; ``random_lnp_radius``: the same draw rescaled to the LNP snapshot's radius;
   * ``magnitude``: global magnitude pruning of the untrained dense network
     (:func:`hrsnn.pruning.global_magnitude_prune`);
   * per task, from the dense network trained on the task by BPTT (``ap_epochs``): ``ap`` = activity pruning
     to n neurons then fine-tuning (``finetune_epochs``), ``ap_magnitude`` = AP then magnitude pruning to m
     synapses then fine-tuning, ``imp`` = iterative magnitude pruning with rewinding (lottery ticket) through the
     levels in order, retrained ``imp_epochs`` per level.
3. **Evaluation** of every network on every task as in the single experiment
   (:func:`hrsnn.experiments.lnp.evaluate_on_task`: per-task input layer, readout fitted on train, its
   regularisation chosen on validation, the test split read once per network), plus two stability measures under
   the probe drive, each an :class:`hrsnn.stats.Estimate`: λ_max of the surrogate-smoothed map over
   ``lyapunov_ics`` initial conditions, and the surrogate-free divergence rate of membrane perturbations of norm
   ``divergence_epsilon`` (:func:`hrsnn.dynamics.perturbation_divergence`, ``divergence_pairs`` pairs; > 0: they
   grow), and the synaptic operations per step.
4. **Statistics**: per task, level and baseline, the paired difference LNP − baseline over the seeds where both
   exist (:func:`hrsnn.stats.paired_comparison`: mean, t interval, sign and Wilcoxon tests), and metric-vs-sparsity
   plots with 95 % confidence bands.

Resuming: every finished measurement is one line of ``records.jsonl`` in the run folder (written and flushed at
once); LNP checkpoints every iteration; the trained dense networks and LNP snapshots are saved. A killed sweep
resumes with ``hrsnn lnp --sweep --resume RUN_ID`` and computes only what is missing.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

import scipy.stats
import torch

from hrsnn.config import deep_update, to_dict
from hrsnn.connectivity import spectral_radius
from hrsnn.dynamics import LyapunovConfig, perturbation_divergence, rsnn_lyapunov
from hrsnn.errors import ConfigError, DataFormatError
from hrsnn.experiments.lnp import (
    HIGHER_IS_BETTER,
    QUICK_PRESET,
    TRAINERS,
    LNPExperimentConfig,
    TaskData,
    _cli_data,
    _figure,
    build_dense,
    evaluate_on_task,
    load_task,
    probe_drive,
    prune_with_lnp,
    random_sparse,
    task_input_weight,
    with_input_layer,
)
from hrsnn.experiments.store import RunStore, environment_info
from hrsnn.network import RSNN, load_model, save_model
from hrsnn.pruning import (
    PruneResult,
    activity_prune,
    global_magnitude_prune,
    iterative_magnitude_prune,
    magnitude_prune,
    synapse_total,
)
from hrsnn.stats import Estimate, PairedComparison, paired_comparison

__all__ = [
    "ABLATIONS",
    "BASELINES",
    "SWEEP_QUICK",
    "Comparison",
    "LNPStop",
    "LNPSweepConfig",
    "SummaryRow",
    "SweepRecord",
    "SweepResult",
    "cmd_sweep",
    "compare",
    "format_sweep",
    "format_sweep_markdown",
    "plot_sweep",
    "resume_lnp_sweep",
    "run_lnp_sweep",
    "summarize",
]

BASELINES: tuple[str, ...] = ("random", "random_lnp_radius", "magnitude", "ap", "ap_magnitude", "imp")
"""Baselines the sweep can compare LNP with (module docstring, step 2)."""

_TRAINED = ("ap", "ap_magnitude", "imp")

ABLATIONS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "no_step1": MappingProxyType({"prune_synapses": False}),
        "no_step3": MappingProxyType({"delocalise": False}),
        "with_step4": MappingProxyType({"tune_timescales": True}),
        "prefer_stable": MappingProxyType({"lyapunov_preference": "stable"}),
        "leak_model": MappingProxyType({"linear_model": "leak", "scale_method": "gershgorin"}),
    }
)
"""LNP ablations, each a set of :class:`hrsnn.pruning.LNPConfig` overrides; in a sweep each is one more LNP run
per seed, reported as variant ``"lnp:<name>"`` and compared paired with LNP as configured (whose step 4 is off
by default: "with_step4" turns it on). Step 2 (node removal) has no
ablation: the levels are neuron sparsities, which only step 2 reaches. "prefer_stable" reverses the A1 preference;
"leak_model" is step 1 as it was before the rate model (A = −D + cM, Gershgorin scale). The dense network's kind
(homogeneous τ, HRSNN, CHRSNN) is a setting of the experiment (``tau_homogeneous``, ``clustered``): one sweep each."""


def _ablated(config: LNPExperimentConfig, variant: str) -> LNPExperimentConfig:
    """The experiment config of LNP variant ``"lnp"`` or ``"lnp:<ablation>"``."""
    if variant == "lnp":
        return config
    return dataclasses.replace(config, lnp={**config.lnp, **ABLATIONS[variant.removeprefix("lnp:")]})

SWEEP_QUICK: Mapping[str, Any] = MappingProxyType(
    {"sparsities": [0.2, 0.4], "finetune_epochs": 1, "imp_epochs": 1, "lnp": {"k_max": 8}}
)
"""Sweep settings merged under the user's with ``quick`` (over the experiment's own quick preset): two levels, one
epoch of fine-tuning, enough LNP iterations to reach both levels."""

_SWEEP_FIELDS = (
    "sparsities",
    "baselines",
    "finetune_epochs",
    "imp_epochs",
    "lyapunov_ics",
    "divergence_epsilon",
    "divergence_pairs",
    "ablations",
    "confidence",
)


@dataclass(frozen=True)
class LNPSweepConfig:
    """A sweep: the experiment's settings (:class:`hrsnn.experiments.lnp.LNPExperimentConfig`) plus the levels.

    Attributes:
        experiment: network, LNP, tasks, seeds and training settings (its ``lnp.target_neuron_sparsity`` is set
            per level by the sweep).
        sparsities: increasing neuron sparsities in (0, 1) (fraction of neurons removed).
        baselines: names from :data:`BASELINES`.
        finetune_epochs: BPTT epochs after AP pruning. imp_epochs: BPTT epochs after each IMP level.
        lyapunov_ics: initial conditions of each λ_max estimate (its SEM needs ≥ 2; the issue asks ≥ 4).
        divergence_epsilon, divergence_pairs: size of the membrane perturbation and number of pairs of the
            divergence rate (0.1: every pair moves a spike on the default network, smaller ε often none; measured).
        ablations: names from :data:`ABLATIONS`, each one more LNP variant.
        confidence: level of the paired confidence intervals.
    """

    experiment: LNPExperimentConfig
    sparsities: tuple[float, ...] = (0.3, 0.5, 0.7, 0.9)
    baselines: tuple[str, ...] = BASELINES
    finetune_epochs: int = 2
    imp_epochs: int = 2
    lyapunov_ics: int = 4
    divergence_epsilon: float = 0.1
    divergence_pairs: int = 16
    ablations: tuple[str, ...] = ()
    confidence: float = 0.95

    def __post_init__(self) -> None:
        if not isinstance(self.experiment, LNPExperimentConfig):
            raise ConfigError("experiment", type(self.experiment).__name__, "must be an LNPExperimentConfig")
        levels = self.sparsities
        if not isinstance(levels, tuple) or not levels:
            raise ConfigError("sparsities", levels, "must be a non-empty list")
        for i, level in enumerate(levels):
            if isinstance(level, bool) or not isinstance(level, int | float) or not 0.0 < level < 1.0:
                raise ConfigError(f"sparsities[{i}]", level, "must lie in (0, 1)")
        if any(b <= a for a, b in itertools.pairwise(levels)):
            raise ConfigError("sparsities", levels, "must be strictly increasing")
        object.__setattr__(self, "sparsities", tuple(float(v) for v in levels))
        if not isinstance(self.baselines, tuple) or len(set(self.baselines)) != len(self.baselines):
            raise ConfigError("baselines", self.baselines, "must be a list of distinct names")
        for i, name in enumerate(self.baselines):
            if name not in BASELINES:
                raise ConfigError(f"baselines[{i}]", name, f"must be one of {list(BASELINES)}")
        if not isinstance(self.ablations, tuple) or len(set(self.ablations)) != len(self.ablations):
            raise ConfigError("ablations", self.ablations, "must be a list of distinct names")
        for i, name in enumerate(self.ablations):
            if name not in ABLATIONS:
                raise ConfigError(f"ablations[{i}]", name, f"must be one of {list(ABLATIONS)}")
        for name, low in (("finetune_epochs", 0), ("imp_epochs", 0), ("lyapunov_ics", 1), ("divergence_pairs", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(name, value, f"must be an integer >= {low}")
        eps = self.divergence_epsilon
        if isinstance(eps, bool) or not isinstance(eps, int | float) or not 0.0 < eps < math.inf:
            raise ConfigError("divergence_epsilon", eps, "must be a number > 0")
        object.__setattr__(self, "divergence_epsilon", float(eps))
        if not isinstance(self.confidence, float) or not 0.0 < self.confidence < 1.0:
            raise ConfigError("confidence", self.confidence, "must be a number in (0, 1)")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LNPSweepConfig:
        """Parse one flat mapping: the sweep fields plus every experiment field (``quick`` applies to both)."""
        if not isinstance(data, Mapping):
            raise ConfigError("config", data, "must be a table/mapping")
        if data.get("quick") is True:
            data = deep_update(to_dict(SWEEP_QUICK), data)
        sweep = {k: tuple(data[k]) if isinstance(data[k], list) else data[k] for k in _SWEEP_FIELDS if k in data}
        experiment = LNPExperimentConfig.from_dict({k: v for k, v in data.items() if k not in _SWEEP_FIELDS})
        return cls(experiment=experiment, **sweep)

    def to_dict(self) -> dict[str, Any]:
        """The flat mapping :meth:`from_dict` reads."""
        out = self.experiment.to_dict()
        out.update({k: to_dict(getattr(self, k)) for k in _SWEEP_FIELDS})
        return out


# ---------------------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class SweepRecord:
    """One network (variant) at one sparsity level on one task with one seed.

    ``level`` is the requested neuron sparsity; ``neurons``/``synapses`` are the counts actually reached (LNP
    overshoots a level by at most one iteration's removals; the baselines copy LNP's counts). ``lambda_max`` and
    ``lambda_max_sem``: mean and SEM over ``lyapunov_ics`` initial conditions under the probe drive;
    ``divergence_rate`` and ``divergence_sem``: the same over the perturbation pairs (module docstring, step 3).
    """

    task: str
    variant: str
    seed: int
    level: float
    neurons: int
    synapses: int
    metric: float
    metric_name: str
    lambda_max: float
    lambda_max_sem: float
    divergence_rate: float
    divergence_sem: float
    spectral_radius: float
    firing_rate: float
    sops_per_step: float

    @property
    def key(self) -> tuple[str, str, int, float]:
        """(task, variant, seed, level): what a resume looks up."""
        return (self.task, self.variant, self.seed, self.level)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return dataclasses.asdict(self)


class LNPStop(NamedTuple):
    """Where one seed's LNP run (``variant``: "lnp" or an ablation) ended: the deepest level it reached, its neuron
    sparsity and why."""

    variant: str
    seed: int
    deepest_level: float | None
    sparsity: float
    note: str


class _Journal:
    """Append-only JSON-lines file of finished measurements; a torn last line (killed mid-write) is ignored."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: dict[tuple[str, str, int, float], SweepRecord] = {}
        self.stops: dict[tuple[str, int], LNPStop] = {}
        if path.exists():
            lines = path.read_text(encoding="utf-8").splitlines()
            for number, line in enumerate(lines, 1):
                try:
                    item = json.loads(line)
                except json.JSONDecodeError:
                    if number == len(lines):
                        break
                    raise DataFormatError(
                        "sweep journal", str(path), f"line {number} is not JSON (the file is damaged)"
                    ) from None
                self._index(item)

    def _index(self, item: Mapping[str, Any]) -> None:
        if item.get("type") == "record":
            record = SweepRecord(**{k: v for k, v in item.items() if k != "type"})
            self.records[record.key] = record
        elif item.get("type") == "lnp_stop":
            stop = LNPStop(**{k: v for k, v in item.items() if k != "type"})
            self.stops[(stop.variant, stop.seed)] = stop

    def _write(self, item: Mapping[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(item, allow_nan=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self._index(item)

    def add(self, record: SweepRecord) -> None:
        self._write({"type": "record", **record.to_dict()})

    def add_stop(self, stop: LNPStop) -> None:
        self._write({"type": "lnp_stop", **stop._asdict()})


# ------------------------------------------------------------------------------------------------- networks


class _Net(NamedTuple):
    """A network of one variant: the model and the original indices of its neurons in the dense layer."""

    model: RSNN
    kept: torch.Tensor


def _level_config(config: LNPExperimentConfig, level: float) -> LNPExperimentConfig:
    return dataclasses.replace(config, lnp={**config.lnp, "target_neuron_sparsity": level})


def _reached(model: RSNN, level: float, n_dense: int) -> bool:
    return model.layers[0].size <= (1.0 - level) * n_dense + 1e-9


def _lnp_snapshots(
    dense: RSNN, config: LNPSweepConfig, seed: int, ctx: _Context, variant: str = "lnp"
) -> dict[float, _Net]:
    """LNP (or the ablation ``variant``) continued level by level from one checkpoint; each level's network saved
    (and reloaded on resume)."""
    exp = _ablated(config.experiment, variant)
    tag = variant.replace(":", "-")
    checkpoint = ctx.run_dir / f"{tag}_seed{seed}.ckpt.safetensors"
    snaps: dict[float, _Net] = {}
    for level in config.sparsities:
        stem = f"{tag}_seed{seed}_level{level:g}"
        model_path, kept_path = ctx.run_dir / f"{stem}.safetensors", ctx.run_dir / f"{stem}.kept.json"
        if model_path.exists() and kept_path.exists():
            kept = torch.tensor(json.loads(kept_path.read_text(encoding="utf-8")), dtype=torch.long)
            snaps[level] = _Net(load_model(model_path), kept)
            continue
        start = time.perf_counter()
        result = prune_with_lnp(dense, _level_config(exp, level), seed=seed, checkpoint_path=checkpoint)
        last = result.history[-1]
        if not _reached(result.model, level, exp.n_neurons):
            sparsity = 1.0 - result.model.layers[0].size / exp.n_neurons
            deepest = max(snaps) if snaps else None
            k_max = exp.lnp_config().k_max
            reason = f"k_max = {k_max} iterations reached" if last.iteration >= k_max else last.note
            ctx.journal.add_stop(LNPStop(variant, seed, deepest, sparsity, reason))
            ctx.say(f"[seed {seed}] {variant} stopped at neuron sparsity {sparsity:.3f} before {level:g}: {reason}")
            break
        save_model(result.model, model_path, extra={"run_id": ctx.run_id, "seed": seed, "level": level})
        kept_path.write_text(json.dumps(result.kept_neurons.tolist()), encoding="utf-8")
        snaps[level] = _Net(result.model, result.kept_neurons)
        ctx.say(
            f"[seed {seed}] {variant} level {level:g}: {result.model.layers[0].size} neurons, "
            f"{synapse_total(result.model, 0)} synapses, iteration {last.iteration} "
            f"({time.perf_counter() - start:.1f} s)"
        )
    if len(snaps) == len(config.sparsities) and (variant, seed) not in ctx.journal.stops:
        deepest = config.sparsities[-1]
        size = snaps[deepest].model.layers[0].size
        ctx.journal.add_stop(LNPStop(variant, seed, deepest, 1.0 - size / exp.n_neurons, "reached every level"))
    return snaps


def _counts(net: _Net) -> tuple[int, int]:
    return net.model.layers[0].size, synapse_total(net.model, 0)


def _radius(model: RSNN) -> float:
    return spectral_radius(model.layers[0].effective_recurrent_weight().detach())


def _random_dense_radius(dense: RSNN, lnp: _Net, generator: torch.Generator) -> PruneResult:
    return random_sparse(dense, *_counts(lnp), generator=generator, radius=_radius(dense))


def _random_lnp_radius(dense: RSNN, lnp: _Net, generator: torch.Generator) -> PruneResult:
    return random_sparse(dense, *_counts(lnp), generator=generator, radius=_radius(lnp.model))


def _magnitude(dense: RSNN, lnp: _Net, generator: torch.Generator) -> PruneResult:
    del generator
    return global_magnitude_prune(dense, 0, *_counts(lnp), allow_fewer_synapses=True)


_TASK_FREE: Mapping[str, Callable[[RSNN, _Net, torch.Generator], PruneResult]] = MappingProxyType(
    {"random": _random_dense_radius, "random_lnp_radius": _random_lnp_radius, "magnitude": _magnitude}
)
"""Task-independent baselines at LNP's counts, ``build(dense, lnp_snapshot, generator)``."""


def _task_free(dense: RSNN, lnp: _Net, name: str, seed: int, level: float) -> _Net:
    """A task-independent baseline at LNP's counts (module docstring); its draws seeded by (seed, level)."""
    generator = torch.Generator().manual_seed(seed * 1000 + round(level * 1000))
    result = _TASK_FREE[name](dense, lnp, generator)
    return _Net(result.model, result.kept_neurons)


def _train(model: RSNN, data: TaskData, exp: LNPExperimentConfig, seed: int, epochs: int) -> None:
    """BPTT on the task for ``epochs`` epochs (:data:`hrsnn.experiments.lnp.TRAINERS`; the best validation epoch)."""
    if epochs > 0:
        TRAINERS[data.spec.kind](model, data, dataclasses.replace(exp, ap_epochs=epochs), seed)


def _task_model(dense: RSNN, data: TaskData, exp: LNPExperimentConfig, seed: int) -> RSNN:
    """The dense network with the task's input layer and a fresh readout (untrained: IMP's rewind point)."""
    return with_input_layer(dense, task_input_weight(exp, data, seed), n_outputs=data.n_outputs, seed=seed)


def _trained_dense(dense: RSNN, data: TaskData, config: LNPSweepConfig, seed: int, ctx: _Context) -> RSNN:
    """The dense network trained on the task (``ap_epochs``), saved once and reloaded on resume."""
    path = ctx.run_dir / f"trained_seed{seed}_{data.name}.safetensors"
    if path.exists():
        return load_model(path)
    start = time.perf_counter()
    model = _task_model(dense, data, config.experiment, seed)
    _train(model, data, config.experiment, seed, config.experiment.ap_epochs)
    save_model(model, path, extra={"run_id": ctx.run_id, "seed": seed, "task": data.name})
    ctx.say(f"[seed {seed}] {data.name}: dense network trained ({time.perf_counter() - start:.1f} s)")
    return model


def _activity_baselines(
    trained: RSNN, data: TaskData, n: int, m: int, names: Sequence[str], config: LNPSweepConfig, seed: int
) -> dict[str, _Net]:
    """The AP baselines among ``names``, from one activity pruning to ``n`` neurons (rates on the training inputs):
    "ap" as pruned, "ap_magnitude" after magnitude pruning to at most ``m`` synapses; each then fine-tuned for
    ``finetune_epochs``."""
    batches = [x for x, _ in data.train.batches(256, shuffle=False)]
    pruned = activity_prune(trained, 0, batches, n)
    models = {"ap": pruned.model}
    if "ap_magnitude" in names:  # a copy, so that fine-tuning "ap" in place does not touch it
        models["ap_magnitude"] = magnitude_prune(pruned.model, 0, m).model
    nets = {name: _Net(models[name], pruned.kept_neurons) for name in names}
    for net in nets.values():
        _train(net.model, data, config.experiment, seed, config.finetune_epochs)
    return nets


def _imp_chain(
    dense: RSNN,
    trained: RSNN,
    data: TaskData,
    targets: Mapping[float, tuple[int, int]],
    config: LNPSweepConfig,
    seed: int,
) -> dict[float, _Net]:
    """Lottery-ticket IMP (:func:`hrsnn.pruning.iterative_magnitude_prune`) from the trained dense network through
    the levels' counts in order, rewinding the survivors to the untrained task network and retraining
    ``imp_epochs`` per level; the network after each level's retraining is that level's."""
    levels = list(targets)
    out: dict[float, _Net] = {}

    def grab(r: int, snapshot: PruneResult) -> None:
        if r > 0:
            out[levels[r - 1]] = _Net(snapshot.model, snapshot.kept_neurons)

    def train_fn(model: RSNN) -> None:
        _train(model, data, config.experiment, seed, config.imp_epochs)

    schedule, previous = [], (trained.layers[0].size, synapse_total(trained, 0))
    for level in levels:  # IMP only removes; should LNP's step 3 have added synapses, IMP keeps the fewer
        previous = (min(previous[0], targets[level][0]), min(previous[1], targets[level][1]))
        schedule.append(previous)
    n, m = schedule[-1]
    iterative_magnitude_prune(
        trained,
        0,
        n,
        m,
        train_fn=train_fn,
        rounds=len(levels),
        rewind_state=_task_model(dense, data, config.experiment, seed).state_dict(),
        on_round=grab,
        schedule=schedule,
        pretrained=True,
        allow_fewer_synapses=True,
    )
    return out


# ---------------------------------------------------------------------------------------------- measuring


class _Context(NamedTuple):
    store: RunStore
    run_id: int
    run_dir: Path
    journal: _Journal
    say: Callable[[str], None]


class _Stability(NamedTuple):
    lambda_max: Estimate
    divergence: Estimate


def _stability(net: _Net, probe_rows: torch.Tensor, config: LNPSweepConfig, seed: int) -> _Stability:
    """λ_max and the divergence rate under the probe drive (the network reads the probe through its neurons'
    dense probe rows)."""
    exp = config.experiment
    model = with_input_layer(net.model, probe_rows[net.kept])
    lyap = LyapunovConfig(
        n_steps=exp.lyapunov_steps,
        transient=exp.lyapunov_transient,
        align=exp.lyapunov_align,
        n_exponents=1,
        seed=seed,
    )
    drive = probe_drive(exp, seed)
    result = rsnn_lyapunov(model, lyap, method=exp.lyapunov_method, drive=drive, batch=config.lyapunov_ics, seed=seed)
    divergence = perturbation_divergence(
        model, drive, epsilon=config.divergence_epsilon, n_pairs=config.divergence_pairs, seed=seed
    )
    return _Stability(Estimate.of(result.exponents[:, 0].tolist()), divergence.rate)


def _measure(
    net: _Net,
    variant: str,
    level: float,
    data: TaskData,
    seed: int,
    config: LNPSweepConfig,
    ctx: _Context,
    stability: _Stability,
    *,
    attach_input: bool,
) -> None:
    exp = config.experiment
    scores = evaluate_on_task(
        net.model, data.name, seed, exp, data=data, kept=net.kept if attach_input else None, attach_input=attach_input
    )
    record = SweepRecord(
        data.name,
        variant,
        seed,
        level,
        int(scores["neurons"]),
        int(scores["synapses"]),
        float(scores["metric"]),
        str(scores["metric_name"]),
        stability.lambda_max.mean,
        stability.lambda_max.sem,
        stability.divergence.mean,
        stability.divergence.sem,
        _radius(net.model),
        float(scores["firing_rate"]),
        float(scores["sops_per_step"]),
    )
    ctx.journal.add(record)
    ctx.store.log_epoch(
        ctx.run_id,
        len(ctx.journal.records),
        {
            "seed": seed,
            "level": level,
            "neurons": record.neurons,
            "synapses": record.synapses,
            "metric": record.metric,
            "lambda_max": record.lambda_max,
        },
    )
    ctx.say(
        f"[seed {seed}] {data.name} level {level:g} {variant}: {record.metric_name}={record.metric:.4f}, "
        f"{record.neurons} neurons, {record.synapses} synapses, λ_max={record.lambda_max:.4f}±"
        f"{record.lambda_max_sem:.4f}, divergence {record.divergence_rate:+.4f}±{record.divergence_sem:.4f}"
    )


def _seed(config: LNPSweepConfig, seed: int, ctx: _Context) -> None:
    """Everything of one seed that the journal does not hold yet."""
    exp = config.experiment
    done = ctx.journal.records
    dense = build_dense(exp, seed)
    snaps = _lnp_snapshots(dense, config, seed, ctx)
    # every task-independent network of the seed: (variant, level) -> (model, kept), built lazily
    builders: dict[tuple[str, float], Callable[[], _Net]] = {}
    builders |= {("lnp", lv): (lambda n=net: n) for lv, net in snaps.items()}
    for name in config.ablations:
        ablated = _lnp_snapshots(dense, config, seed, ctx, f"lnp:{name}")
        builders |= {(f"lnp:{name}", lv): (lambda n=net: n) for lv, net in ablated.items()}
    for baseline in (b for b in config.baselines if b in _TASK_FREE):
        for lv, net in snaps.items():
            builders[(baseline, lv)] = lambda b=baseline, n=net, lv=lv: _task_free(dense, n, b, seed, lv)
    probe_rows = dense.layers[0].input.weight.detach()
    trained_names = [b for b in config.baselines if b in _TRAINED]
    measured: dict[tuple[str, float], tuple[_Net, _Stability]] = {}

    def task_free(variant: str, level: float) -> tuple[_Net, _Stability]:
        if (variant, level) not in measured:
            net = builders[(variant, level)]()
            measured[(variant, level)] = (net, _stability(net, probe_rows, config, seed))
        return measured[(variant, level)]

    for task in exp.tasks:
        wanted = [*builders, *((v, lv) for lv in snaps for v in trained_names)]
        if all((task, v, seed, lv) in done for v, lv in wanted):
            continue
        data = load_task(task, seed, exp)
        for variant, level in builders:
            if (task, variant, seed, level) not in done:
                net, stability = task_free(variant, level)
                _measure(net, variant, level, data, seed, config, ctx, stability, attach_input=True)
        if not any((task, v, seed, lv) not in done for v in trained_names for lv in snaps):
            continue
        trained = _trained_dense(dense, data, config, seed, ctx)
        trained_nets: dict[tuple[str, float], _Net] = {}
        ap_names = [name for name in trained_names if name != "imp"]
        for level, snap in snaps.items():
            if ap_names:
                nets = _activity_baselines(trained, data, *_counts(snap), ap_names, config, seed)
                trained_nets |= {(name, level): net for name, net in nets.items()}
        if "imp" in trained_names:
            chain = _imp_chain(dense, trained, data, {lv: _counts(s) for lv, s in snaps.items()}, config, seed)
            trained_nets.update({("imp", lv): net for lv, net in chain.items()})
        for (variant, level), net in trained_nets.items():
            if (task, variant, seed, level) not in done:
                stability = _stability(net, probe_rows, config, seed)
                _measure(net, variant, level, data, seed, config, ctx, stability, attach_input=False)


# --------------------------------------------------------------------------------------------- statistics


class Comparison(NamedTuple):
    """LNP against one baseline on one task at one level, paired over seeds (``stats.diff`` > 0: LNP better)."""

    task: str
    level: float
    baseline: str
    metric_name: str
    stats: PairedComparison
    neurons_equal: bool
    synapses_equal: bool


def compare(records: Sequence[SweepRecord], *, confidence: float = 0.95) -> tuple[Comparison, ...]:
    """Paired LNP − baseline comparisons of the task metric for every (task, level, baseline) with seeds in common.

    ``neurons_equal``/``synapses_equal`` say whether the counts matched on every pair (module docstring, step 2).
    """
    by_key = {r.key: r for r in records}
    out = []
    tasks = list(dict.fromkeys(r.task for r in records))
    levels = sorted({r.level for r in records})
    variants = [v for v in dict.fromkeys(r.variant for r in records) if v != "lnp"]
    for task in tasks:
        for level in levels:
            for baseline in sorted(variants, key=_order):
                pairs = [
                    (by_key[(task, "lnp", r.seed, level)], r)
                    for r in records
                    if r.key[:2] == (task, baseline) and r.level == level and (task, "lnp", r.seed, level) in by_key
                ]
                if not pairs:
                    continue
                metric = pairs[0][0].metric_name
                stats = paired_comparison(
                    [a.metric for a, _ in pairs],
                    [b.metric for _, b in pairs],
                    higher_is_better=HIGHER_IS_BETTER[metric],
                    confidence=confidence,
                )
                out.append(
                    Comparison(
                        task,
                        level,
                        baseline,
                        metric,
                        stats,
                        all(a.neurons == b.neurons for a, b in pairs),
                        all(a.synapses == b.synapses for a, b in pairs),
                    )
                )
    return tuple(out)


def _order(variant: str) -> tuple[int, str]:
    names = ("lnp", *(f"lnp:{a}" for a in ABLATIONS), *BASELINES)
    return (names.index(variant) if variant in names else len(names), variant)


class SummaryRow(NamedTuple):
    """Mean ± std over seeds of one (task, level, variant)."""

    task: str
    level: float
    variant: str
    metric_name: str
    n_seeds: int
    neurons: Estimate
    synapses: Estimate
    metric: Estimate
    lambda_max: Estimate
    divergence_rate: Estimate
    sops_per_step: Estimate


def summarize(records: Sequence[SweepRecord]) -> tuple[SummaryRow, ...]:
    """One row per (task, level, variant), in task, level, variant order (``Estimate`` holds mean and SEM)."""
    groups: dict[tuple[str, float, str], list[SweepRecord]] = {}
    for r in records:
        groups.setdefault((r.task, r.level, r.variant), []).append(r)
    tasks = list(dict.fromkeys(r.task for r in records))
    keys = sorted(groups, key=lambda k: (tasks.index(k[0]), k[1], _order(k[2])))
    return tuple(
        SummaryRow(
            *key,
            groups[key][0].metric_name,
            len(groups[key]),
            *(
                Estimate.of([getattr(r, c) for r in groups[key]])
                for c in ("neurons", "synapses", "metric", "lambda_max", "divergence_rate", "sops_per_step")
            ),
        )
        for key in keys
    )


def _pm(e: Estimate, digits: int) -> str:
    if e.n == 1:
        return f"{e.mean:.{digits}f}"
    return f"{e.mean:.{digits}f} ± {e.sem:.{digits}f}"


def format_sweep(rows: Sequence[SummaryRow], comparisons: Sequence[Comparison], stops: Sequence[LNPStop]) -> str:
    """The sweep as text: where LNP stopped per seed, the summary (mean ± SEM over seeds) and the paired tests."""
    lines = ["LNP runs (sparsity where each stopped is an outcome):"]
    lines += [
        f"  {s.variant} seed {s.seed}: deepest level {s.deepest_level if s.deepest_level is not None else 'none'}, "
        f"neuron sparsity {s.sparsity:.3f} ({s.note})"
        for s in sorted(stops)
    ]
    lines.append("")
    header = f"{'task':<8} {'level':>5} {'variant':<18} {'n':>2} {'neurons':>14} {'synapses':>16} {'metric':>17}"
    header += f" {'lambda_max':>19} {'divergence':>19} {'SOPs/step':>16}"
    lines += ["summary (mean ± SEM over seeds):", header]
    for r in rows:
        lines.append(
            f"{r.task:<8} {r.level:>5.2f} {r.variant:<18} {r.n_seeds:>2} {_pm(r.neurons, 1):>14} "
            f"{_pm(r.synapses, 0):>16} {_pm(r.metric, 4):>17} {_pm(r.lambda_max, 4):>19} "
            f"{_pm(r.divergence_rate, 4):>19} {_pm(r.sops_per_step, 1):>16}"
        )
    lines += [
        "",
        "paired LNP - baseline over seeds (diff > 0: LNP better; interval: t, two-sided; equal neuron counts hold "
        "by construction, equal synapse counts unless flagged):",
        f"{'task':<8} {'level':>5} {'baseline':<18} {'n':>2} {'diff':>9} {'interval':>21} {'W/L':>5} "
        f"{'sign p':>7} {'wilcoxon p':>10}  verdict",
    ]
    for c in comparisons:
        s = c.stats
        verdict = {"A better": "LNP better", "B better": "baseline better"}.get(s.verdict(), s.verdict())
        counts = "" if c.neurons_equal and c.synapses_equal else " (counts differ)"
        lines.append(
            f"{c.task:<8} {c.level:>5.2f} {c.baseline:<18} {s.n:>2} {s.diff:>+9.4f} "
            f"[{s.ci_low:>+9.4f}, {s.ci_high:>+9.4f}] {s.wins:>2}/{s.losses:<2} {s.sign_p:>7.3f} "
            f"{s.wilcoxon_p:>10.3f}  {verdict}{counts}"
        )
    return "\n".join(lines)


def format_sweep_markdown(rows: Sequence[SummaryRow], comparisons: Sequence[Comparison]) -> str:
    """A Markdown table per task: rows = levels; LNP's metric (mean ± SEM) and, per compared variant, the paired
    difference LNP − variant with its interval (bold when the interval excludes 0; † when counts differ)."""
    out = []
    tasks = list(dict.fromkeys(r.task for r in rows))
    for task in tasks:
        mine = [c for c in comparisons if c.task == task]
        others = sorted({c.baseline for c in mine}, key=_order)
        levels = sorted({r.level for r in rows if r.task == task})
        lnp = {r.level: r for r in rows if r.task == task and r.variant == "lnp"}
        metric = next(r.metric_name for r in rows if r.task == task)
        out.append(f"**{task}** ({metric}; cells: LNP − variant, + = LNP better, 95 % interval over seeds)")
        out.append("")
        out.append("| level | LNP | " + " | ".join(others) + " |")
        out.append("|---|---|" + "---|" * len(others))
        for level in levels:
            cells = []
            for other in others:
                c = next((c for c in mine if c.level == level and c.baseline == other), None)
                if c is None:
                    cells.append("")
                    continue
                s_ = c.stats
                text = f"{s_.diff:+.3f} [{s_.ci_low:+.3f}, {s_.ci_high:+.3f}]"
                text = f"**{text}**" if s_.significant else text
                cells.append(text + ("" if c.neurons_equal and c.synapses_equal else " †"))
            head = _pm(lnp[level].metric, 3) if level in lnp else ""
            out.append(f"| {level:g} | {head} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def _style(variant: str) -> dict[str, Any]:
    """Line style of a variant: LNP thick black, its ablations dashed, baselines solid; one tab20 colour each."""
    from matplotlib import colormaps  # imported with the figure (slow to import)

    if variant == "lnp":
        return {"color": "black", "lw": 2.2}
    index = _order(variant)[0]
    return {"color": colormaps["tab20"](index % 20), "ls": "--" if variant.startswith("lnp:") else "-"}


def plot_sweep(rows: Sequence[SummaryRow], path: str | Path, *, confidence: float = 0.95) -> Path:
    """Test metric, λ_max and divergence rate (rows) against neuron sparsity per task (columns), one line per
    variant with its confidence band (t interval of the mean over seeds)."""
    tasks = list(dict.fromkeys(r.task for r in rows))
    figure = _figure((4.2 * len(tasks), 10.0), path)
    axes = figure.subplots(3, len(tasks), squeeze=False)
    for col, task in enumerate(tasks):
        mine = [r for r in rows if r.task == task]
        for variant in sorted({r.variant for r in mine}, key=_order):
            line = sorted((r for r in mine if r.variant == variant), key=lambda r: r.level)
            for ax, field in zip(axes[:, col], ("metric", "lambda_max", "divergence_rate"), strict=True):
                xs = [r.level for r in line]
                est = [getattr(r, field) for r in line]
                ys = [e.mean for e in est]
                half = [
                    0.0 if e.n < 2 else float(scipy.stats.t.ppf(0.5 + confidence / 2, e.n - 1)) * e.sem for e in est
                ]
                (handle,) = ax.plot(xs, ys, marker="o", ms=3, label=variant, **_style(variant))
                ax.fill_between(
                    xs,
                    [y - h for y, h in zip(ys, half, strict=True)],
                    [y + h for y, h in zip(ys, half, strict=True)],
                    color=handle.get_color(),
                    alpha=0.15,
                )
        axes[0][col].set_title(task)
        axes[0][col].set_ylabel(f"{mine[0].metric_name} (test)")
        axes[1][col].set_ylabel("λ_max (per step, surrogate)")
        axes[2][col].set_ylabel("divergence rate (per step)")
        for row in (0, 1, 2):
            axes[row][col].set_xlabel("neuron sparsity (level)")
            if row:
                axes[row][col].axhline(0.0, color="grey", lw=0.8)
        if col == 0:
            axes[0][col].legend(loc="best", fontsize="x-small")
    figure.suptitle(f"LNP vs baselines over sparsity ({confidence:.0%} confidence bands over seeds)")
    figure.savefig(Path(path), dpi=120)
    return Path(path)


# ------------------------------------------------------------------------------------------------- driver


@dataclass(frozen=True)
class SweepResult:
    """What :func:`run_lnp_sweep` returns: the run, its folder, every record, where LNP stopped, the summary, the
    paired comparisons and the written artifacts."""

    run_id: int
    run_dir: Path
    records: tuple[SweepRecord, ...]
    stops: tuple[LNPStop, ...]
    rows: tuple[SummaryRow, ...]
    comparisons: tuple[Comparison, ...]
    artifacts: Mapping[str, Path]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return {
            "run_id": self.run_id,
            "run_dir": str(self.run_dir),
            "records": [r.to_dict() for r in self.records],
            "lnp_stops": [s._asdict() for s in self.stops],
            "comparisons": [
                {
                    **{k: v for k, v in c._asdict().items() if k != "stats"},
                    **c.stats._asdict(),
                    "verdict": c.stats.verdict(),
                }
                for c in self.comparisons
            ],
            "artifacts": {k: str(v) for k, v in self.artifacts.items()},
        }


_FOLDER = "folder"
_KIND = "lnp_sweep"


def run_lnp_sweep(
    config: LNPSweepConfig, *, store: RunStore, out_dir: str | Path, log: Callable[[str], None] | None = None
) -> SweepResult:
    """Run the sweep (module docstring) as one run of kind ``"lnp_sweep"`` in ``store``, artifacts in
    ``out_dir/lnp_sweep-<run id>/``. Ctrl-C or SIGTERM marks it "interrupted"; :func:`resume_lnp_sweep` continues."""
    if not isinstance(config, LNPSweepConfig):
        raise ConfigError("config", type(config).__name__, "must be an LNPSweepConfig")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError("--out", str(out), "is a file; it must name a folder for the run's artifacts")
    exp = config.experiment
    run_id = store.create_run(
        name=f"{exp.name}-sweep", kind=_KIND, config=config.to_dict(), seed=exp.seeds[0], env=environment_info()
    )
    with store.recording(run_id, _KIND):
        run_dir = out / f"lnp_sweep-{run_id:05d}"
        run_dir.mkdir(parents=True, exist_ok=True)
        store.add_artifact(run_id, _FOLDER, run_dir)
        return _run(config, _Context(store, run_id, run_dir, _Journal(run_dir / "records.jsonl"), log or _quiet))


def resume_lnp_sweep(run_id: int, *, store: RunStore, log: Callable[[str], None] | None = None) -> SweepResult:
    """Continue sweep ``run_id`` (killed, interrupted or failed) with its own config, computing only what its
    journal lacks. A completed run is refused; a run whose process is alive raises ``RunBusyError``."""
    record = store.get_run(run_id)
    if record.kind != _KIND:
        raise ConfigError("--resume", run_id, f"is a {record.kind!r} run, not an LNP sweep")
    if record.status == "completed":
        raise ConfigError("--resume", run_id, "is already completed")
    config = LNPSweepConfig.from_dict(record.config)
    folders = [a["path"] for a in record.artifacts if a["kind"] == _FOLDER]
    if not folders:
        raise ConfigError("--resume", run_id, "has no recorded folder")
    run_dir = Path(folders[-1])
    store.claim_run(run_id)
    with store.recording(run_id, _KIND):
        run_dir.mkdir(parents=True, exist_ok=True)
        say = log or _quiet
        journal = _Journal(run_dir / "records.jsonl")
        say(f"resuming LNP sweep {run_id} in {run_dir} ({len(journal.records)} measurements done)")
        return _run(config, _Context(store, run_id, run_dir, journal, say))


def _quiet(line: str) -> None:
    del line


def _run(config: LNPSweepConfig, ctx: _Context) -> SweepResult:
    for seed in config.experiment.seeds:
        _seed(config, seed, ctx)
    records = tuple(ctx.journal.records.values())
    stops = tuple(sorted(ctx.journal.stops.values()))
    rows = summarize(records)
    comparisons = compare(records, confidence=config.confidence)
    artifacts = {"figure": plot_sweep(rows, ctx.run_dir / "sweep.png", confidence=config.confidence)}
    artifacts["table"] = ctx.run_dir / "table.txt"
    artifacts["table"].write_text(format_sweep(rows, comparisons, stops) + "\n", encoding="utf-8")
    artifacts["markdown"] = ctx.run_dir / "summary.md"
    artifacts["markdown"].write_text(format_sweep_markdown(rows, comparisons), encoding="utf-8")
    result = SweepResult(ctx.run_id, ctx.run_dir, records, stops, rows, comparisons, MappingProxyType({}))
    artifacts["results"] = ctx.run_dir / "results.json"
    payload = {"config": config.to_dict(), **result.to_dict()}
    artifacts["results"].write_text(json.dumps(payload, indent=2, allow_nan=True), encoding="utf-8")
    for kind, path in artifacts.items():
        ctx.store.add_artifact(ctx.run_id, kind, path)
    final = {f"{c.task}.{c.level:g}.{c.baseline}.diff": c.stats.diff for c in comparisons}
    final |= {f"{c.task}.{c.level:g}.{c.baseline}.ci_low": c.stats.ci_low for c in comparisons}
    final |= {f"{c.task}.{c.level:g}.{c.baseline}.ci_high": c.stats.ci_high for c in comparisons}
    ctx.store.finish_run(ctx.run_id, status="completed", final_metrics={k: _finite(v) for k, v in final.items()})
    return dataclasses.replace(result, artifacts=MappingProxyType(artifacts))


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


# ---------------------------------------------------------------------------------------------------- CLI


def _floats(option: str, text: str) -> list[float]:
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ConfigError(option, text, "must be a comma-separated list of numbers") from None


def cmd_sweep(args: argparse.Namespace, store: RunStore) -> int:
    """``hrsnn lnp --sweep``: run (or resume) a sweep and print its text report (or ``--json``)."""
    log: Callable[[str], None] | None = None
    if not args.quiet:
        log = (lambda line: print(line, file=sys.stderr)) if args.json else print
    if args.resume is not None:  # hrsnn lnp has refused options that would change the sweep
        result = resume_lnp_sweep(args.resume, store=store, log=log)
    else:
        data = _cli_data(args, deep_update(to_dict(QUICK_PRESET), to_dict(SWEEP_QUICK)))
        if args.sparsities is not None:
            data["sparsities"] = _floats("--sparsities", args.sparsities)
        if args.baselines is not None:
            data["baselines"] = [b.strip() for b in args.baselines.split(",") if b.strip()]
        config = LNPSweepConfig.from_dict(data)
        runs_dir = getattr(args, "runs_dir", None)
        out = Path(args.out) if args.out else (Path(runs_dir) if runs_dir else store.path.parent / "runs")
        result = run_lnp_sweep(config, store=store, out_dir=out, log=log)
    if args.json:
        print(json.dumps(result.to_dict(), allow_nan=True))
        return 0
    print(f"\nsweep {result.run_id}: artifacts in {result.run_dir}")
    print(result.artifacts["table"].read_text(encoding="utf-8"))
    return 0
