r"""The LNP experiment: prune one dense heterogeneous RSNN once with LNP, then train it on several tasks.

Pipeline of :func:`run_lnp_experiment`, for every seed s:

1. **Dense network** (:func:`build_dense`, spec §1.2–1.4): one recurrent layer of N soft-reset LIF neurons
   (threshold :math:`\vartheta` = ``threshold``; :math:`u_t = \alpha u_{t-1} + (1-\alpha) I_t - \vartheta s_{t-1}`,
   :math:`\alpha_i = e^{-1/\tau_i}`), :math:`\tau_i = \tau_{floor} + G_i`, :math:`G_i \sim \Gamma(k_\tau, \theta_\tau)`
   (HRSNN), or four clusters with gamma means ``cluster_means`` (CHRSNN), or one τ for all, the HRSNN's mean
   :math:`\tau_{floor} + k_\tau\theta_\tau` (homogeneous RSNN, ``tau_homogeneous``). Directed small world
   (lattice in-degree ``k``, rewiring ``p_rewire``; clustered small world for the CHRSNN), Dale's law with 80 %
   excitatory neurons,
   :math:`|W_{ij}| \sim |N(0, 1/k)|`, inhibitory columns multiplied by ``inhibitory_gain`` (4 balances E and I),
   then :math:`W \leftarrow W \rho / \rho(W)` with :math:`\rho` = ``spectral_radius``, or, with ``start_at_edge``,
   ρ = ``edge_factor`` × the radius where the stability measure crosses 0 (:func:`edge_radius`). Every neuron gets
   the background current :math:`b_i` = ``bias``. The *probe* input layer has ``probe_inputs`` lines driven by
   Poisson spikes of ``drive_rate`` per step (spec §2.5's noise probe).
2. **LNP** (:func:`prune_with_lnp`, :func:`hrsnn.pruning.lnp_prune`) under that probe drive, with per-neuron
   node-wise FTLEs (:func:`node_exponents`) of the surrogate-smoothed spiking map (:mod:`hrsnn.dynamics.snn`). Its
   stability stop uses ``stability_measure`` (:data:`STABILITY_MEASURES`): the surrogate map's λ_max, or the
   surrogate-free divergence rate of ε-perturbed membranes (:func:`hrsnn.dynamics.perturbation_divergence`).
3. **Baselines**: ``random_pruned`` (:func:`random_sparse`: a uniform random set of LNP's neuron count, then of
   LNP's synapse count, rescaled to the dense spectral radius by default); ``lnp_homogeneous`` (the LNP network
   with every τ set to its mean τ̄); per task ``activity_pruned`` (:func:`activity_baseline`: the dense network
   trained on the task by BPTT, then its least active neurons removed down to LNP's neuron count).
4. **Tasks** (:func:`evaluate_on_task`, spec §2.4 "after LNP, per task: build the input layer onto V*"): the
   recurrent network is frozen and gets a per-task input layer (:func:`task_input_weight`):
   :math:`U_{ik} = B_{ik}\, \mu\, |1 + 0.1 \varepsilon_{ik}|`, :math:`B_{ik} \sim \mathrm{Bernoulli}(p_{in})`,
   :math:`\mu = g_{in} / (p_{in}\, \bar m)` with :math:`\bar m` the mean over training steps of
   :math:`\sum_k x_{tk}`, so the mean input current is :math:`g_{in}` = ``input_gain``. It is drawn once per
   (seed, task) for all N dense neurons; a pruned network uses the rows of its surviving neurons, so every
   variant sees the same input weights. A linear readout (:func:`hrsnn.readout.fit_readout`) is fitted on
   exponentially filtered spikes: ridge regression (NRMSE) for Lorenz/Rössler, a ridge classifier on one-hot
   targets (accuracy) for digits.
5. **Measurements** per (task, variant, seed): neurons and recurrent synapses of the layer (readout not counted,
   spec A12), the task metric on the test split, the firing rate on the test inputs (spikes per neuron per step)
   and λ_max under the probe drive (an ``activity_pruned`` network gets the probe rows of its surviving neurons
   back for this). Table: mean ± std over seeds (std with ddof 1; 0 for one seed).

Everything is recorded in one run of kind ``"lnp"`` of a :class:`hrsnn.experiments.store.RunStore`: epoch rows are
the LNP iterations of every seed, final metrics the flattened table and claims, artifacts the figures, the JSON
results, the table and the pruned networks.

Command line (options declared in :mod:`hrsnn.cli`, handler :func:`cmd_lnp`)::

    hrsnn lnp [--quick] [--neurons 1000] [--seeds 0,1,2] [--tasks lorenz,digits] [--set lnp.q_node=0.02] [--json]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import sys
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hrsnn._validate import check_run_seed
from hrsnn.config import deep_update, from_dict, parse_overrides, read_config_file, to_dict
from hrsnn.connectivity import ConnectivitySpec, scale_to_spectral_radius, spectral_radius
from hrsnn.dynamics import (
    DriveConfig,
    FTLEConfig,
    LyapunovConfig,
    SpikingMap,
    driven_gains,
    edge_of_chaos,
    node_ftle,
    perturbation_divergence,
    rsnn_lyapunov,
)
from hrsnn.errors import ConfigError, MissingDependencyError
from hrsnn.experiments.store import RunStore, environment_info
from hrsnn.metrics import measure_efficiency
from hrsnn.network import RSNN, IntegratorReadout, LayerConfig, NeuronConfig, ReadoutConfig, RSNNConfig, save_model
from hrsnn.pruning import (
    LNPConfig,
    PruneHistoryEntry,
    PruneResult,
    activity_prune,
    clone_model,
    firing_rates,
    lnp_prune,
    random_prune,
    set_mask,
    synapse_total,
)
from hrsnn.pruning.lnp import stability_objective
from hrsnn.readout import ReadoutFitConfig, fit_readout
from hrsnn.stats import Estimate, paired_comparison
from hrsnn.tasks import (
    RegressionDataset,
    SequenceDataset,
    load_digits_sequence,
    load_lorenz,
    load_mackey_glass,
    load_qtdb,
    load_rossler,
    load_santafe_laser,
    load_sunspots,
)
from hrsnn.timescales import sampler_from_dict
from hrsnn.training import TrainConfig, Trainer

__all__ = [
    "DIVERGENCE_HORIZON",
    "DIVERGENCE_TRANSIENT",
    "HIGHER_IS_BETTER",
    "LNP_DEFAULTS",
    "QUICK_PRESET",
    "RANDOM_RADII",
    "STABILITY_MEASURES",
    "TASKS",
    "TRAINERS",
    "VARIANTS",
    "Claim",
    "LNPExperimentConfig",
    "LNPExperimentResult",
    "Stat",
    "SummaryRow",
    "TaskData",
    "TaskSpec",
    "VariantRecord",
    "activity_baseline",
    "build_dense",
    "cmd_lnp",
    "compute_claims",
    "edge_radius",
    "evaluate_on_task",
    "format_claims",
    "format_table",
    "homogeneous_tau",
    "largest_exponent",
    "load_task",
    "node_exponents",
    "node_gains",
    "plot_lnp_history",
    "plot_spectra",
    "probe_drive",
    "probe_spectra",
    "prune_with_lnp",
    "random_sparse",
    "run_lnp_experiment",
    "summarize",
    "task_input_weight",
    "top_exponents",
    "with_input_layer",
]

Dataset = RegressionDataset | SequenceDataset

VARIANTS: tuple[str, ...] = ("dense", "lnp", "lnp_homogeneous", "activity_pruned", "random_pruned")
"""The compared networks, in table order."""


# ------------------------------------------------------------------------------------------------------ tasks


HIGHER_IS_BETTER: Mapping[str, bool] = MappingProxyType({"nrmse": False, "rmse": False, "accuracy": True})
"""Read-only map from a task metric to its direction (True: higher is better)."""


@dataclass(frozen=True)
class TaskSpec:
    """How one task is loaded, read out and scored.

    Attributes:
        load: loader returning train/val/test splits (``seed`` is passed to it).
        kind: "regression" (per-step real targets) or "classification".
        metric: the reported test metric, a key of :data:`HIGHER_IS_BETTER`.
        options: default loader options (overridden by ``LNPExperimentConfig.task_options[name]``).
        readout: default :class:`hrsnn.readout.ReadoutFitConfig` fields (overridden by ``config.readout``).
        present_steps: every input step is held for this many network steps (spec §1.5's presentation window).
    """

    load: Callable[..., Any]
    kind: Literal["regression", "classification"]
    metric: Literal["nrmse", "accuracy"]
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    readout: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    present_steps: int = 1


def _chaotic(load: Callable[..., Any], **options: Any) -> TaskSpec:
    """One-step prediction of a (chaotic or real) series from a 20-field population code, scored after 20 warm-up
    steps; ``options`` are further loader defaults."""
    return TaskSpec(
        load,
        "regression",
        "nrmse",
        MappingProxyType({"encoding": "population", "n_fields": 20, **options}),
        MappingProxyType({"skip": 20}),
    )


TASKS: Mapping[str, TaskSpec] = MappingProxyType(
    {
        "lorenz": _chaotic(load_lorenz),
        "rossler": _chaotic(load_rossler),
        "mackey_glass": _chaotic(load_mackey_glass),
        "santafe_laser": _chaotic(load_santafe_laser),
        "sunspots": _chaotic(load_sunspots, resolution="monthly", window=60),
        "ecg": TaskSpec(
            load_qtdb,
            "classification",
            "accuracy",
            MappingProxyType({}),
            MappingProxyType({"kind": "ridge"}),
        ),
        "digits": TaskSpec(
            load_digits_sequence,
            "classification",
            "accuracy",
            MappingProxyType({"mode": "row"}),
            MappingProxyType({"kind": "ridge"}),
            present_steps=5,
        ),
    }
)
"""Read-only map from task name to its :class:`TaskSpec`. Lorenz/Rössler: one-step-ahead prediction of the
standardised state from a 20-field Gaussian population code per variable (spec §1.5, analog activations);
Mackey–Glass: the same for the 1-D series (τ = 17, sampled every time unit); ecg: the SRNN authors' QTDB ECG (real
data, 4 spike channels, a wave label per step, per-step accuracy; found as by ``hrsnn train --task ecg``, or
``task_options.ecg.data_dir``; 556 training sequences of 1301 steps, so it costs far more than the others);
digits: sklearn's 8×8 digits, one image row per input step held for 5 steps (40 steps); santafe_laser and sunspots:
the real-world series (the LNP paper's second kind of prediction task; its stock-price series is not public), the Santa
Fe laser (10,093 points, windows of 100) and the monthly sunspot numbers (3,126 months, windows of 60), coded like the
chaotic series."""


# ----------------------------------------------------------------------------------------------------- config

LNP_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        "q_node": 0.04,
        "target_neuron_sparsity": 0.5,
        "tune_timescales": False,
        "betweenness_backend": "igraph",
        "bo_sampler": "tpe",
        "bo_startup": 3,
        "bo_trials": 8,
        "shape_range": (1.5, 6.0),
        "mean_range": (10.0, 40.0),
    }
)
"""LNP settings of this experiment, under ``config.lnp`` (fields of :class:`hrsnn.pruning.LNPConfig`). Chosen for
speed (``benchmarks/lnp_speed.py``): 4 % of neurons per iteration until half are gone (≈ 17 iterations instead of
the spec's 57 at 1 %), igraph betweenness, and 8 TPE trials (3 random) of step 4 instead of 20 GP trials. Step 4's
box is the dense gamma's shape and mean halved and doubled (k ∈ [1.5, 6], μ ∈ [10, 40]) instead of the spec's
k ∈ [1, 10], μ ∈ [2, 100]: with the wide box and 8 trials, step 4 jumped between mean τ of 3 and 90 from one
iteration to the next (measured). Step 4 is off: with its objective's standard error taken into account it never
moved τ (the best trial never beat the current τ by 2 SEM: 17 of 17 iterations at N = 1000, 6 of 6 at N = 200;
``benchmarks/lnp_speed.py``), so it only cost time; ``lnp.tune_timescales = true`` turns it on, and the sweep's
"with_step4" ablation measures it. Step 1 keeps LNPConfig's "edge" scale: the closed-form Gershgorin scale made the
linear model so weakly coupled that its scores ranked synapses exactly like the covariance-free score (Spearman 1.0;
measured)."""

QUICK_PRESET: Mapping[str, Any] = MappingProxyType(
    {
        "n_neurons": 60,
        "k": 6,
        "probe_inputs": 10,
        "seeds": [0],
        "lnp": {"k_max": 2, "q_node": 0.1, "bo_startup": 2, "bo_trials": 3},
        "ftle_horizon": 10,
        "ftle_windows": 2,
        "ftle_transient": 20,
        "lnp_lyapunov_steps": 50,
        "lyapunov_steps": 100,
        "lyapunov_transient": 20,
        "lyapunov_align": 10,
        "spectrum_top": 5,
        "bo_spectrum_top": 3,
        "ap_epochs": 1,
        "task_options": {
            "lorenz": {"n_steps": 1500, "transient": 200, "window": 50},
            "rossler": {"n_steps": 1500, "transient": 200, "window": 50},
            "mackey_glass": {"n_steps": 1500, "transient": 200, "window": 50},
            "santafe_laser": {"window": 50},
            "digits": {"present_steps": 2},
        },
    }
)
"""Settings merged under the user's when ``quick`` is true (smoke tests: 60 neurons, 2 LNP iterations, 1 seed,
short chaotic series, short Lyapunov runs, one BPTT epoch)."""


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(name, value, f"must be an integer >= {minimum}")
    return value


def _real(name: str, value: Any, *, low: float | None = None, high: float | None = None, strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(name, value, "must be a finite number")
    out = float(value)
    if low is not None and (out < low or (strict and out == low)):
        raise ConfigError(name, value, f"must be {'>' if strict else '>='} {low}")
    if high is not None and out > high:
        raise ConfigError(name, value, f"must be <= {high}")
    return out


def _choice(name: str, value: Any, options: Sequence[str] | Mapping[str, Any]) -> str:
    if not isinstance(value, str) or value not in options:
        raise ConfigError(name, value, f"must be one of {sorted(options)}")
    return value


@dataclass(frozen=True)
class LNPExperimentConfig:
    r"""Everything :func:`run_lnp_experiment` needs (module docstring for the model; time in steps, dt = 1).

    Attributes:
        name: run name in the store.
        n_neurons: dense layer size N.
        k, p_rewire: small-world lattice in-degree (even) and rewiring probability.
        clustered, cluster_means, p_between: CHRSNN: one gamma τ distribution (shape ``tau_shape``, floor
            ``tau_floor``) per cluster with these means, clustered small world with this between-cluster probability.
        tau_shape, tau_scale, tau_floor: HRSNN τ = floor + Gamma(shape, scale) (defaults: mean 20, CV ≈ 0.5).
        tau_homogeneous: every τ = floor + shape·scale (the HRSNN's mean), the homogeneous-RSNN control; LNP's
            step 4 is then off unless ``lnp.tune_timescales`` says otherwise (it would make τ heterogeneous).
        frac_excitatory, inhibitory_gain, spectral_radius: Dale's law, g_I/g_E and the dense radius ρ(W).
        threshold, bias: LIF threshold ϑ and background current b.
        probe_inputs, drive_rate: probe input lines and their Poisson spike probability per step.
        p_in, input_gain: input connection probability and mean input current (probe and tasks).
        lnp: overrides of :data:`LNP_DEFAULTS` (fields of :class:`hrsnn.pruning.LNPConfig`).
        ftle_horizon, ftle_windows, ftle_transient, ftle_chunk: node-wise FTLEs; columns per tangent batch.
        lyapunov_method: reading of the spike nonlinearity for λ_max and spectra (:data:`hrsnn.dynamics.METHODS`);
            the node FTLEs always use the surrogate reading (the only one :func:`node_exponents` supports).
        lnp_lyapunov_steps: accumulated steps of λ_max inside LNP (stability check and step 4).
        lnp_ics: initial conditions (each with its own probe-drive realisation) of every λ_max and step-4 objective
            inside LNP, so each comes as a mean with its standard error (at N = 200 and 200 steps one λ_max has an
            SD of about 0.01 across initial conditions, more than step 4's trials differ by; measured).
        stability_measure: what LNP's stability stop (and ``start_at_edge``) measures, a key of
            :data:`STABILITY_MEASURES`: "lyapunov", λ_max of the surrogate-smoothed map, or "divergence", the
            surrogate-free growth rate of ε-perturbed membranes. An iteration whose measure exceeds
            ``lnp.lambda_max_threshold`` (0) by more than ``lnp.stop_z`` SEM is reverted and LNP stops; the
            history's and the epoch rows' ``lambda_max`` then hold the chosen measure. Step 4's objective
            (``lnp.tune_timescales``) uses λ_max either way. Measured (N = 300, seeds 0 and 1,
            ``lnp.target_neuron_sparsity`` 0.9): "lyapunov" never stops LNP (λ_max in [−0.085, −0.018] at each of 45
            and 42 iterations until the target, and < 0 at every radius up to 128), so the sparsity is an input.
            "divergence" at the default ρ = 10 reverts the first iteration (+0.027 ± 0.003 and +0.022 ± 0.003 with
            16 pairs): perturbations grow, LNP prunes nothing.
        lnp_divergence_epsilon, lnp_divergence_pairs: ε (norm of the membrane perturbation) and the number of
            pairs of the "divergence" measure (:data:`DIVERGENCE_TRANSIENT` steps, the perturbation, a fit over
            :data:`DIVERGENCE_HORIZON` steps); named apart from the sweep's ``divergence_epsilon`` and
            ``divergence_pairs`` (its measurement columns, same flat file). 64 pairs, not the sweep's 16: with 16
            (SEM ≈ 0.005) seed 0's rate is > 0 at every radius of the default ``edge_radii`` (+0.004 at ρ = 1), so
            ``start_at_edge`` found no edge; with 64 (SEM ≈ 0.0024) both seeds cross, at ρ = 3.6 and 4.3. Cost at
            N = 300: 0.37 s per call (16 pairs: 0.10 s), N = 1000: 1.9 s (one thread).
        start_at_edge, edge_radii, edge_factor: rescale the dense network to ``edge_factor`` × the first radius of
            ``edge_radii`` at which ``stability_measure`` crosses 0 (:func:`edge_radius`); ``spectral_radius`` then
            only matters through rounding. Measured (N = 300, target 0.9): with "divergence" the crossing is never
            resolved (the rate stays within ±0.005 of 0 for every ρ ≤ 4), so a stop on the mean alone
            (``lnp.stop_z`` = 0, as measured here; the 2-SEM default came after) is decided by noise: seed 0 (ρ =
            3.65) reaches the target (sparsity 0.90, 23 iterations; the rate fell to ≈ −0.015 after iteration 8),
            seed 1 (ρ = 4.32) reverts iteration 2 at +0.0013 ± 0.0024 and stops at sparsity 0.04; ``edge_factor``
            0.9 reverts iteration 1 of both seeds (+0.0008 and +0.0009, each ± 0.0025). With "lyapunov" no radius in
            ``edge_radii`` (nor up to 128) crosses 0, so :func:`build_dense` raises.
        lyapunov_steps, lyapunov_transient, lyapunov_align: λ_max and spectra of the table and figure.
        spectrum_top: m, the number of leading exponents in ``lyapunov_spectra.png``.
        bo_spectrum_top: m of the spectrum term of LNP step 4's objective (0: only :math:`(\lambda_1 - \lambda^*)^2`).
        bo_target_dense: step 4's λ* is the dense network's λ_1 rather than ``lnp.lambda_target`` (the spec's
            −0.01 per step sits within the 200-step estimator's noise of the stability threshold 0, so runs stopped
            as "unstable" after a few iterations; measured).
        tasks, task_options: task names (:data:`TASKS`) and per-task loader options (plus ``present_steps``).
        seeds: seeds; each builds, prunes and evaluates its own dense network.
        readout: overrides of :class:`hrsnn.readout.ReadoutFitConfig` for every task.
        ap_epochs, ap_lr, ap_batch_size, readout_tau: BPTT training of the dense network for the AP baseline
            (Adam; integrator readout with this τ).
        random_radius: spectral radius of the random baseline (:data:`RANDOM_RADII`).
        quick: smoke-test mode: :meth:`from_dict` merges the given settings over :data:`QUICK_PRESET`.
    """

    name: str = "lnp"
    n_neurons: int = 1000
    k: int = 20
    p_rewire: float = 0.1
    clustered: bool = False
    tau_homogeneous: bool = False
    cluster_means: tuple[float, ...] = (5.0, 10.0, 20.0, 40.0)
    p_between: float = 0.01
    tau_shape: float = 3.0
    tau_scale: float = 6.0
    tau_floor: float = 2.0
    frac_excitatory: float = 0.8
    inhibitory_gain: float = 4.0
    spectral_radius: float = 10.0
    threshold: float = 1.0
    bias: float = 0.5
    probe_inputs: int = 20
    drive_rate: float = 0.02
    p_in: float = 0.2
    input_gain: float = 1.0
    lnp: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    ftle_horizon: int = 20
    ftle_windows: int = 3
    ftle_transient: int = 100
    ftle_chunk: int = 256
    lyapunov_method: Literal["surrogate", "exact", "rate"] = "surrogate"
    lnp_lyapunov_steps: int = 200
    lnp_ics: int = 4
    stability_measure: Literal["lyapunov", "divergence"] = "lyapunov"
    lnp_divergence_epsilon: float = 0.1
    lnp_divergence_pairs: int = 64
    start_at_edge: bool = False
    edge_radii: tuple[float, ...] = (1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0)
    edge_factor: float = 1.0
    lyapunov_steps: int = 500
    lyapunov_transient: int = 100
    lyapunov_align: int = 50
    spectrum_top: int = 20
    bo_spectrum_top: int = 5
    bo_target_dense: bool = True
    tasks: tuple[str, ...] = ("lorenz", "digits")
    task_options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    seeds: tuple[int, ...] = (0, 1, 2)
    readout: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    ap_epochs: int = 5
    ap_lr: float = 1e-3
    ap_batch_size: int = 32
    readout_tau: float = 5.0
    random_radius: Literal["dense", "lnp", "none"] = "dense"
    quick: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError("name", self.name, "must be a non-empty string")
        _positive_int("n_neurons", self.n_neurons, 4)
        _positive_int("k", self.k, 2)
        if self.k % 2 or self.k >= self.n_neurons:
            raise ConfigError("k", self.k, f"must be even and < n_neurons={self.n_neurons}")
        for name in ("p_rewire", "p_between", "frac_excitatory", "p_in", "drive_rate"):
            object.__setattr__(self, name, _real(name, getattr(self, name), low=0.0, high=1.0))
        if self.p_in == 0.0:
            raise ConfigError("p_in", self.p_in, "must be > 0")
        for name in ("tau_shape", "tau_scale", "threshold", "spectral_radius", "ap_lr", "readout_tau"):
            object.__setattr__(self, name, _real(name, getattr(self, name), low=0.0, strict=True))
        for name in ("tau_floor", "inhibitory_gain", "bias", "input_gain"):
            object.__setattr__(self, name, _real(name, getattr(self, name), low=0.0))
        for name in ("clustered", "tau_homogeneous", "quick", "bo_target_dense", "start_at_edge"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(name, getattr(self, name), "must be true or false")
        if not isinstance(self.cluster_means, tuple) or not self.cluster_means:
            raise ConfigError("cluster_means", self.cluster_means, "must be a non-empty list of mean τ")
        for i, mean in enumerate(self.cluster_means):
            _real(f"cluster_means[{i}]", mean, low=self.tau_floor, strict=True)
        if self.clustered and self.tau_homogeneous:
            raise ConfigError("tau_homogeneous", True, "cannot be combined with clustered = true")
        if self.clustered:
            smallest = min(sampler_from_dict(self.tau_spec(), "tau").cluster_sizes(self.n_neurons))
            if self.k >= smallest:
                raise ConfigError("k", self.k, f"must be < the smallest cluster ({smallest} neurons)")
        _positive_int("probe_inputs", self.probe_inputs)
        names = ("ftle_horizon", "ftle_windows", "ftle_chunk", "lnp_lyapunov_steps", "lnp_ics", "lyapunov_steps")
        for name in (*names, "lnp_divergence_pairs"):
            _positive_int(name, getattr(self, name))
        _choice("stability_measure", self.stability_measure, STABILITY_MEASURES)
        floor = torch.finfo(torch.float32).eps * self.threshold  # perturbation_divergence's membrane resolution
        epsilon = _real("lnp_divergence_epsilon", self.lnp_divergence_epsilon, low=0.0)
        object.__setattr__(self, "lnp_divergence_epsilon", epsilon)
        if epsilon < floor:
            reason = f"must be >= {floor:.3g}, the float32 membrane resolution at threshold {self.threshold:g}"
            raise ConfigError("lnp_divergence_epsilon", self.lnp_divergence_epsilon, reason)
        object.__setattr__(self, "edge_factor", _real("edge_factor", self.edge_factor, low=0.0, strict=True))
        if not isinstance(self.edge_radii, tuple) or len(self.edge_radii) < 2:
            raise ConfigError("edge_radii", self.edge_radii, "must be a list of at least two spectral radii")
        radii = tuple(_real(f"edge_radii[{i}]", r, low=0.0, strict=True) for i, r in enumerate(self.edge_radii))
        if any(b <= a for a, b in itertools.pairwise(radii)):
            raise ConfigError("edge_radii", list(self.edge_radii), "must be strictly increasing")
        object.__setattr__(self, "edge_radii", radii)
        for name in ("ftle_transient", "lyapunov_transient", "lyapunov_align"):
            _positive_int(name, getattr(self, name), 0)
        _positive_int("spectrum_top", self.spectrum_top)
        _positive_int("bo_spectrum_top", self.bo_spectrum_top, 0)
        _positive_int("ap_epochs", self.ap_epochs, 0)
        _positive_int("ap_batch_size", self.ap_batch_size)
        _choice("lyapunov_method", self.lyapunov_method, ("surrogate", "exact", "rate"))
        _choice("random_radius", self.random_radius, RANDOM_RADII)
        if not isinstance(self.tasks, tuple) or not self.tasks or len(set(self.tasks)) != len(self.tasks):
            raise ConfigError("tasks", self.tasks, "must be a non-empty list of distinct task names")
        for i, task in enumerate(self.tasks):
            _choice(f"tasks[{i}]", task, TASKS)
        if not isinstance(self.seeds, tuple) or not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError("seeds", self.seeds, "must be a non-empty list of distinct seeds")
        for i, seed in enumerate(self.seeds):
            check_run_seed(f"seeds[{i}]", seed)
        for name in ("lnp", "task_options", "readout"):
            if not isinstance(getattr(self, name), Mapping):
                raise ConfigError(name, getattr(self, name), "must be a table/mapping")
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))
        for task, options in self.task_options.items():
            _choice(f"task_options.{task}", task, TASKS)
            if not isinstance(options, Mapping):
                raise ConfigError(f"task_options.{task}", options, "must be a table/mapping of loader options")
        self.lnp_config()
        unknown = sorted(set(self.readout) - {f.name for f in dataclasses.fields(ReadoutFitConfig)})
        if unknown:
            raise ConfigError(f"readout.{unknown[0]}", self.readout[unknown[0]], "is not a ReadoutFitConfig field")
        ReadoutFitConfig(**self.readout)

    def lnp_config(self) -> LNPConfig:
        """The LNP hyper-parameters: ``lnp`` merged over :data:`LNP_DEFAULTS` (step 4 off by default with
        ``tau_homogeneous``)."""
        homogeneous = {"tune_timescales": False} if self.tau_homogeneous else {}
        return LNPConfig.from_dict({**LNP_DEFAULTS, **homogeneous, **self.lnp})

    def tau_spec(self) -> Mapping[str, Any]:
        """The τ sampler mapping (:mod:`hrsnn.timescales`): gamma, clustered gammas with ``cluster_means``, or the
        gamma's mean for every neuron (``tau_homogeneous``)."""
        floor = self.tau_floor
        if self.tau_homogeneous:
            return {"dist": "constant", "value": floor + self.tau_shape * self.tau_scale}
        if not self.clustered:
            return {"dist": "gamma", "shape": self.tau_shape, "scale": self.tau_scale, "floor": floor}
        shape = self.tau_shape
        parts = [
            {"dist": "gamma", "shape": shape, "scale": (m - floor) / shape, "floor": floor} for m in self.cluster_means
        ]
        return {"dist": "clustered", "components": parts}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LNPExperimentConfig:
        """Parse a plain dict; with ``quick: true`` it is merged over :data:`QUICK_PRESET`. Errors name the field. A
        ``sweep`` entry (the link :mod:`hrsnn.experiments.sweep` records in its runs' configs) is not part of it."""
        if not isinstance(data, Mapping):
            raise ConfigError("config", data, "must be a table/mapping")
        data = {k: v for k, v in data.items() if k != "sweep"}
        if data.get("quick") is True:
            data = deep_update(to_dict(QUICK_PRESET), data)
        return from_dict(cls, data, "config")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (the inverse of :meth:`from_dict`)."""
        return to_dict(self)


# ------------------------------------------------------------------------------------------ network building


def _input_weights(n: int, channels: int, mean_total: float, config: LNPExperimentConfig, seed: int) -> Tensor:
    """Input weights :math:`U_{ik} = B_{ik}\\,\\mu\\,|1 + 0.1\\varepsilon_{ik}|`, :math:`\\mu = g_{in}/(p_{in}\\bar m)`.

    :math:`\\bar m` = ``mean_total``, the mean of :math:`\\sum_k x_{tk}` (module docstring). Seeded by ``seed``.
    """
    if not mean_total > 0.0:
        raise ConfigError("input", mean_total, "mean total input per step must be > 0 to scale the input weights")
    generator = torch.Generator().manual_seed(seed)
    connected = torch.rand(n, channels, generator=generator) < config.p_in
    scale = config.input_gain / (config.p_in * mean_total)
    return connected.float() * scale * (1.0 + 0.1 * torch.randn(n, channels, generator=generator)).abs()


def build_dense(config: LNPExperimentConfig, seed: int) -> RSNN:
    """The dense HRSNN/CHRSNN of the module docstring (step 1), with its probe input layer.

    Draws: the RSNN's own build (τ, mask, weights, Dale signs) from ``seed``; the probe input weights from a
    generator seeded with ``seed + 1``.
    """
    if not isinstance(config, LNPExperimentConfig):
        raise ConfigError("config", type(config).__name__, "must be an LNPExperimentConfig")
    _positive_int("seed", seed, 0)
    neuron = NeuronConfig(
        kind="lif", b0=config.threshold, beta=0.0, tau_m=config.tau_spec(), learn_tau_m=False, learn_tau_adp=False
    )
    connectivity = ConnectivitySpec(
        kind="clustered_small_world" if config.clustered else "small_world",
        k=config.k,
        p_rewire=config.p_rewire,
        p_between=config.p_between,
        dale=True,
        frac_excitatory=config.frac_excitatory,
        init="normal",
    )
    readout = ReadoutConfig(
        kind="integrator",
        neuron=NeuronConfig(kind="lif", tau_m={"dist": "constant", "value": config.readout_tau}, learn_tau_m=False),
    )
    layer = LayerConfig(size=config.n_neurons, neuron=neuron, connectivity=connectivity)
    model = RSNN(RSNNConfig(n_inputs=config.probe_inputs, n_outputs=1, layers=(layer,), readout=readout), seed=seed)
    rec = model.layers[0]
    with torch.no_grad():
        weight = rec.effective_recurrent_weight().detach().clone()
        weight[:, weight.sum(0) < 0] *= config.inhibitory_gain
        rec.weight_rec.copy_(scale_to_spectral_radius(weight, config.spectral_radius))
        mean_total = config.probe_inputs * config.drive_rate
        rec.input.weight.copy_(_input_weights(config.n_neurons, config.probe_inputs, mean_total, config, seed + 1))
        rec.input.bias.fill_(config.bias)
    if config.start_at_edge:
        radius = _edge_radius(model, config, seed)
        with torch.no_grad():  # the very operation by which edge_of_chaos made the networks it measured
            rec.weight_rec.copy_(scale_to_spectral_radius(rec.effective_recurrent_weight().detach(), radius))
    return model


def edge_radius(config: LNPExperimentConfig, seed: int) -> float:
    """``edge_factor`` × the critical spectral radius of seed ``seed``'s dense network under ``stability_measure``.

    :func:`hrsnn.dynamics.edge_of_chaos` rescales the dense network (:func:`build_dense` without
    ``start_at_edge``) to every radius of ``edge_radii`` and measures it (:data:`STABILITY_MEASURES`, with the
    seed's common random numbers); the critical radius is the first crossing of the mean through 0, interpolated
    linearly between the two radii that bracket it. It is taken even when not *resolved* (a bracketing mean within
    2 SEM of 0): the divergence rate hovers a few thousandths around 0 below the radius where perturbations clearly
    grow (measured), so its first crossing is noisy. No crossing raises a :class:`ConfigError` naming
    ``edge_radii`` with the measured means. Cost: one measure per radius on the dense network, nothing cached:
    every :func:`build_dense` call (each seed of ``hrsnn lnp`` and of the sweep, and again on a resume) repeats the
    search. Per radius (one thread): N = 300, 0.37 s for "divergence" (64 pairs) and 0.23 s for "lyapunov"
    (4 initial conditions, 200 steps); N = 1000, 1.9 s and 0.8 s, i.e. 15 s and 6 s for the 8 default radii.
    """
    return _edge_radius(build_dense(dataclasses.replace(config, start_at_edge=False), seed), config, seed)


def _edge_radius(dense: RSNN, config: LNPExperimentConfig, seed: int) -> float:
    measure = STABILITY_MEASURES[config.stability_measure]
    result = edge_of_chaos(dense, config.edge_radii, lambda model: measure(model, config, seed))
    if result.critical_radius is None:
        means = ", ".join(f"{r:g}: {e.mean:+.4g}" for r, e in zip(result.radii, result.estimates, strict=True))
        reason = (
            f"the {config.stability_measure!r} stability measure of seed {seed}'s dense network never crosses 0 "
            f"({result.verdict}; mean at each radius: {means}); widen edge_radii or set start_at_edge = false"
        )
        raise ConfigError("edge_radii", list(config.edge_radii), reason)
    return result.critical_radius * config.edge_factor


def with_input_layer(model: RSNN, weight: Tensor, *, n_outputs: int | None = None, seed: int = 0) -> RSNN:
    """Copy of ``model`` whose first layer reads ``C`` channels through ``weight`` (per-task input layer).

    :math:`I_t = U x_t + b + (W \\odot M) s_{t-1}` with :math:`U` = ``weight`` (N, C) and the model's own background
    current b (``layers[0].input.bias``) kept. Recurrent weights, mask and τ are shared values (copied). With
    ``n_outputs``, the integrator readout is replaced by a fresh one (xavier weights from ``seed``) with that many
    outputs, for BPTT training. ``model`` is not modified.
    """
    if not isinstance(model, RSNN):
        raise ConfigError("model", type(model).__name__, "must be an hrsnn.network.RSNN")
    layer = model.layers[0]
    if not isinstance(weight, Tensor) or weight.dim() != 2 or weight.shape[0] != layer.size or weight.shape[1] < 1:
        shown = tuple(weight.shape) if isinstance(weight, Tensor) else type(weight).__name__
        raise ConfigError("weight", shown, f"must be a tensor (N={layer.size}, C >= 1)")
    if not bool(torch.isfinite(weight).all()):
        raise ConfigError("weight", "non-finite entries", "must be finite")
    old = layer.input
    has_bias = old.bias is not None
    linear = nn.utils.skip_init(nn.Linear, weight.shape[1], layer.size, bias=has_bias, device=old.weight.device)
    with torch.no_grad():
        linear.weight.copy_(weight)
        if old.bias is not None and linear.bias is not None:
            linear.bias.copy_(old.bias)
    new = clone_model(model)
    new.layers[0].input = linear
    config = dataclasses.replace(model.config, n_inputs=int(weight.shape[1]))
    if n_outputs is not None:
        _positive_int("n_outputs", n_outputs)
        if model.config.readout.kind != "integrator":
            raise ConfigError("model.readout.kind", model.config.readout.kind, "must be 'integrator' to be replaced")
        generator = torch.Generator().manual_seed(seed)
        readout = IntegratorReadout(model.layers[-1].size, n_outputs, model.config.readout.neuron, generator)
        new.readout = readout.to(old.weight.device)
        config = dataclasses.replace(config, n_outputs=n_outputs)
    new.config = config
    return new


def homogeneous_tau(model: RSNN) -> RSNN:
    """Copy of ``model`` with every membrane τ of layer 0 set to their mean: :math:`\\tau_i \\leftarrow \\bar\\tau`."""
    if not isinstance(model, RSNN):
        raise ConfigError("model", type(model).__name__, "must be an hrsnn.network.RSNN")
    new = clone_model(model)
    tc = new.layers[0].tau_m
    tau = tc.tau.detach()
    tc.set_tau(torch.full_like(tau, float(tau.mean())))
    return new


def _rescale(model: RSNN, radius: float) -> None:
    layer = model.layers[0]
    weight = layer.effective_recurrent_weight().detach()
    current = spectral_radius(weight)
    if current > 0.0:
        set_mask(model, 0, layer.mask, weight * (radius / current))


def random_sparse(
    dense: RSNN, n_neurons: int, n_synapses: int, *, generator: torch.Generator, radius: float | None
) -> PruneResult:
    """Random sparse network with exactly ``n_neurons`` neurons and ``n_synapses`` recurrent synapses.

    :func:`hrsnn.pruning.random_prune` keeps a uniform random set of neurons, then of synapses among them. If
    fewer than ``n_synapses`` synapses survive the neuron draw, the missing ones are added uniformly among the absent
    off-diagonal pairs, with magnitudes drawn from the dense layer's nonzero :math:`|W|` and the sign of the
    presynaptic neuron (Dale). Finally, with ``radius``, :math:`W \\leftarrow W\\,r/\\rho(W)`.
    """
    result = random_prune(dense, 0, generator=generator, n_neurons=n_neurons, n_synapses=n_synapses)
    model = result.model
    missing = n_synapses - synapse_total(model, 0)
    if missing > 0:
        dense_w = dense.layers[0].effective_recurrent_weight().detach().cpu()
        magnitudes = dense_w[dense_w != 0].abs()
        signs = torch.where(dense_w.sum(0) < 0, -1.0, 1.0)[result.kept_neurons]
        layer = model.layers[0]
        weight = layer.effective_recurrent_weight().detach().cpu()
        n = layer.size
        absent = (weight == 0) & ~torch.eye(n, dtype=torch.bool)
        candidates = torch.nonzero(absent.flatten()).flatten()
        if missing > candidates.numel():
            raise ConfigError("n_synapses", n_synapses, f"does not fit {n} neurons without autapses")
        chosen = candidates[torch.randperm(candidates.numel(), generator=generator)[:missing]]
        draws = magnitudes[torch.randint(magnitudes.numel(), (missing,), generator=generator)]
        weight.view(-1)[chosen] = draws * signs[chosen % n].to(draws.dtype)
        set_mask(model, 0, weight != 0, weight)
    if radius is not None:
        _rescale(model, radius)
    note = f"random: {n_neurons} neurons, {synapse_total(model, 0)} synapses ({max(missing, 0)} added)"
    last = PruneHistoryEntry(1, model.layers[0].size, synapse_total(model, 0), note=note)
    return PruneResult(model, (result.history[0], last), result.kept_neurons)


def _radius_dense(dense: float, lnp: float) -> float | None:
    del lnp
    return dense


def _radius_lnp(dense: float, lnp: float) -> float | None:
    del dense
    return lnp


def _radius_none(dense: float, lnp: float) -> float | None:
    del dense, lnp
    return None


RANDOM_RADII: Mapping[str, Callable[[float, float], float | None]] = MappingProxyType(
    {"dense": _radius_dense, "lnp": _radius_lnp, "none": _radius_none}
)
"""Spectral radius given to the random baseline: the dense network's (default: a random sparse network built by the
same recipe), the LNP network's, or none (plain random pruning, weights unchanged)."""


# ----------------------------------------------------------------------------------------------- dynamics


def probe_drive(config: LNPExperimentConfig, seed: int) -> DriveConfig:
    """The noise probe: Poisson spikes with probability ``drive_rate`` per step on every input line, seeded."""
    return DriveConfig(kind="poisson", rate=config.drive_rate, seed=seed)


def node_exponents(model: RSNN, config: LNPExperimentConfig, seed: int) -> Tensor:
    """Node-wise FTLEs of layer 0, :math:`\\lambda_i = \\langle\\log\\lVert P e_{u_i}\\rVert\\rangle/T_f`.

    Same definition as :func:`hrsnn.dynamics.rsnn_node_ftle` (surrogate-smoothed spiking map, probe drive, one
    initial condition from ``seed``), computed in blocks of ``ftle_chunk`` columns so that the tangent product
    uses the sparse recurrent weight (several times faster at N = 1000 than all N columns at once).
    """
    ftle = FTLEConfig(horizon=config.ftle_horizon, windows=config.ftle_windows, transient=config.ftle_transient)
    n_steps = ftle.transient + ftle.windows * ftle.horizon
    inputs = probe_drive(config, seed).sample(1, n_steps, model.config.n_inputs)
    system = SpikingMap(model, inputs)
    x0 = system.initial_state(1, torch.Generator().manual_seed(seed))
    blocks = system.neuron_coordinates(0).split(config.ftle_chunk)
    return torch.cat([node_ftle(system, x0, block, ftle).values for block in blocks])


def node_gains(model: RSNN, config: LNPExperimentConfig, seed: int) -> Tensor:
    """Each layer-0 neuron's gain φ'(h_i) under the probe drive (:func:`hrsnn.dynamics.driven_gains`), LNP step 1.

    The same drive and initial condition as :func:`node_exponents`: ``ftle_transient`` steps discarded, then
    rates and mean currents over ``lnp_lyapunov_steps`` steps.
    """
    n_probe = config.lnp_lyapunov_steps
    inputs = probe_drive(config, seed).sample(1, config.ftle_transient + n_probe, model.config.n_inputs)
    system = SpikingMap(model, inputs)
    x0 = system.initial_state(1, torch.Generator().manual_seed(seed))
    return driven_gains(system, x0, n_probe, transient=config.ftle_transient, layer=0)


def top_exponents(model: RSNN, config: LNPExperimentConfig, seed: int, *, m: int, n_steps: int) -> Tensor:
    """The m leading Lyapunov exponents (descending) under the probe drive (:func:`hrsnn.dynamics.rsnn_lyapunov`)."""
    lyap = LyapunovConfig(
        n_steps=n_steps,
        transient=config.lyapunov_transient,
        align=config.lyapunov_align,
        n_exponents=min(m, model.layers[0].size),
        seed=seed,
    )
    drive = probe_drive(config, seed)
    return rsnn_lyapunov(model, lyap, method=config.lyapunov_method, drive=drive, seed=seed).mean


def largest_exponent(model: RSNN, config: LNPExperimentConfig, seed: int, *, n_steps: int | None = None) -> float:
    """λ_max under the probe drive.

    By default (the table's λ_max) it is λ_1 of the very spectrum that ``lyapunov_spectra.png`` plots: the top
    ``spectrum_top`` exponents over ``lyapunov_steps`` steps (:func:`top_exponents`), so table and figure agree. A
    finite-time λ_1 depends on the initial tangent basis, which :func:`hrsnn.dynamics.lyapunov_spectrum` draws as
    a seeded Gaussian (d, m) matrix: a one-vector run starts from another first vector than an m-vector run, and
    the two λ_1 differed by more than the networks did (``--quick``, seed 0: LNP −0.0903 vs −0.0849, random
    −0.0969 vs −0.0840, which reversed their order). With ``n_steps`` (LNP's stability checks): a cheaper
    one-vector run over ``n_steps`` steps.
    """
    if n_steps is None:
        return float(top_exponents(model, config, seed, m=config.spectrum_top, n_steps=config.lyapunov_steps)[0])
    return float(top_exponents(model, config, seed, m=1, n_steps=n_steps)[0])


def probe_spectra(model: RSNN, config: LNPExperimentConfig, seed: int, m: int) -> Tensor:
    """(``lnp_ics``, m) leading Lyapunov exponents under the probe drive, one row per initial condition (each with
    its own drive realisation), over ``lnp_lyapunov_steps`` steps: LNP's λ_max and step-4 spectra."""
    lyap = LyapunovConfig(
        n_steps=config.lnp_lyapunov_steps,
        transient=config.lyapunov_transient,
        align=config.lyapunov_align,
        n_exponents=min(m, model.layers[0].size),
        seed=seed,
    )
    drive = probe_drive(config, seed)
    method = config.lyapunov_method
    return rsnn_lyapunov(model, lyap, method=method, drive=drive, batch=config.lnp_ics, seed=seed).exponents


def _lyapunov_measure(model: RSNN, config: LNPExperimentConfig, seed: int) -> Estimate:
    values = probe_spectra(model, config, seed, 1)[:, 0]
    if not bool(torch.isfinite(values).all()):  # a diverging run counts as unstable
        return Estimate(math.inf, math.nan, values.numel())
    return Estimate.of(values.tolist())


DIVERGENCE_TRANSIENT = 100
"""Steps of the "divergence" measure before the perturbation (:func:`hrsnn.dynamics.perturbation_divergence`'s
default)."""

DIVERGENCE_HORIZON = 100
"""Steps of the "divergence" measure after the perturbation, all in the rate's fit (its default too)."""


def _divergence_measure(model: RSNN, config: LNPExperimentConfig, seed: int) -> Estimate:
    drive = probe_drive(config, seed)
    return perturbation_divergence(
        model,
        drive,
        epsilon=config.lnp_divergence_epsilon,
        n_pairs=config.lnp_divergence_pairs,
        transient=DIVERGENCE_TRANSIENT,
        horizon=DIVERGENCE_HORIZON,
        seed=seed,
    ).rate


StabilityMeasure = Callable[[RSNN, LNPExperimentConfig, int], Estimate]
"""A network's stability under the probe drive, ``measure(model, config, seed)``: > 0 unstable, < 0 stable."""

STABILITY_MEASURES: Mapping[str, StabilityMeasure] = MappingProxyType(
    {"lyapunov": _lyapunov_measure, "divergence": _divergence_measure}
)
"""Read-only map from ``stability_measure`` to its function, each seeded by ``seed`` alone (common random numbers:
the same drive, initial conditions and perturbations at every call). "lyapunov": λ_1 of the surrogate-smoothed map
over ``lnp_ics`` initial conditions and ``lnp_lyapunov_steps`` steps (:func:`probe_spectra`; a non-finite run is
+inf). "divergence": the rate of :func:`hrsnn.dynamics.perturbation_divergence` with ε = ``lnp_divergence_epsilon``,
``lnp_divergence_pairs`` pairs, :data:`DIVERGENCE_TRANSIENT` and :data:`DIVERGENCE_HORIZON` steps."""


def prune_with_lnp(
    model: RSNN,
    config: LNPExperimentConfig,
    *,
    seed: int,
    checkpoint_path: str | Path | None = None,
    progress: bool = False,
    on_iteration: Callable[[tuple[PruneHistoryEntry, ...]], None] | None = None,
) -> PruneResult:
    r"""Run :func:`hrsnn.pruning.lnp_prune` on layer 0 with this experiment's dynamics.

    ``exponents_fn`` = :func:`node_exponents`, ``gains_fn`` = :func:`node_gains` (step 1's rate model),
    ``lambda_max_fn`` = the ``stability_measure`` of :data:`STABILITY_MEASURES` (an :class:`hrsnn.stats.Estimate`: mean
    ± SEM; an iteration whose mean exceeds ``lnp.lambda_max_threshold`` by more than ``lnp.stop_z`` SEM is reverted and
    LNP stops); all use the probe drive with the same seed at every call (common random numbers, so step 4 compares
    timescales under the same noise realisations). Step 4's objective always uses λ_max (:func:`probe_spectra`),
    whatever the stability measure. With ``bo_spectrum_top`` = m > 0, step 4 minimises the spec's full objective
    :math:`J = (\lambda_1 - \lambda^*)^2 + \beta \sum_{k \le m} (\lambda_k - \lambda_{ref,k})^2`
    (:func:`hrsnn.pruning.lnp.stability_objective`; λ_ref: the dense network's top m averaged over the initial
    conditions), J taken per initial condition of a trial's top-m spectra, then mean ± SEM; with
    ``bo_target_dense`` λ* is the dense network's λ_1 (spec A9: keep the dense network's stability) instead of
    ``lnp.lambda_target``; step 4's ``tau_floor`` is this config's ``tau_floor`` unless ``lnp`` sets it. The pruning
    draws come from a generator seeded with ``seed``; with ``checkpoint_path`` a killed run resumes.
    ``on_iteration`` gets the history after every iteration (the store logs it as it happens).
    """

    lnp_config = config.lnp_config()
    if "tau_floor" not in config.lnp:  # step 4 retunes τ within the dense initialisation's family (floor + Γ)
        lnp_config = dataclasses.replace(lnp_config, tau_floor=config.tau_floor)
    stability = STABILITY_MEASURES[config.stability_measure]

    def exponents(candidate: RSNN) -> Tensor:
        return node_exponents(candidate, config, seed)

    def gains(candidate: RSNN) -> Tensor:
        return node_gains(candidate, config, seed)

    def lambda_max(candidate: RSNN) -> Estimate:
        return stability(candidate, config, seed)

    objective: Callable[[RSNN], Estimate] | None = None
    if config.bo_spectrum_top > 0 and lnp_config.tune_timescales:
        reference = probe_spectra(model, config, seed, config.bo_spectrum_top).mean(0)
        if config.bo_target_dense:
            lnp_config = dataclasses.replace(lnp_config, lambda_target=float(reference[0]))

        def objective(candidate: RSNN) -> Estimate:
            rows = probe_spectra(candidate, config, seed, config.bo_spectrum_top)
            if not bool(torch.isfinite(rows).all()):
                return Estimate(math.inf, math.nan, rows.shape[0])
            return Estimate.of(
                stability_objective(
                    float(row[0]),
                    row,
                    reference,
                    lambda_target=lnp_config.lambda_target,
                    spectrum_weight=lnp_config.spectrum_weight,
                )
                for row in rows
            )

    return lnp_prune(
        model,
        lnp_config,
        exponents_fn=exponents,
        lambda_max_fn=lambda_max,
        generator=torch.Generator().manual_seed(seed),
        checkpoint_path=checkpoint_path,
        progress=progress,
        timescale_objective=objective,
        on_iteration=on_iteration,
        gains_fn=gains,
    )


# --------------------------------------------------------------------------------------------------- tasks


class TaskData(NamedTuple):
    """A loaded task (inputs already held for ``present_steps``) and its spec."""

    name: str
    spec: TaskSpec
    train: Dataset
    val: Dataset
    test: Dataset

    @property
    def n_outputs(self) -> int:
        """Target dimension (regression) or number of classes."""
        if isinstance(self.train, SequenceDataset):
            return self.train.n_classes
        return int(self.train.y.shape[-1])


def _hold(data: Dataset, steps: int) -> Dataset:
    """Repeat every step ``steps`` times along time (x, and per-step targets)."""
    if steps == 1:
        return data
    y = data.y.repeat_interleave(steps, 1) if data.y.dim() >= 2 else data.y
    return dataclasses.replace(data, x=data.x.repeat_interleave(steps, 1), y=y)


def load_task(task: str, seed: int, config: LNPExperimentConfig) -> TaskData:
    """Load ``task`` with ``seed`` and the spec's options overridden by ``config.task_options[task]``."""
    spec = TASKS[_choice("task", task, TASKS)]
    options = {**spec.options, **config.task_options.get(task, {}), "seed": seed}
    hold = _positive_int(f"task_options.{task}.present_steps", options.pop("present_steps", spec.present_steps))
    try:
        splits = spec.load(**options)
    except TypeError as exc:
        raise ConfigError(f"task_options.{task}", options, f"not accepted by the {task} loader: {exc}") from exc
    return TaskData(task, spec, _hold(splits.train, hold), _hold(splits.val, hold), _hold(splits.test, hold))


def _task_seed(seed: int, task: str) -> int:
    return (seed * 1_000_003 + zlib.crc32(task.encode())) % (2**31 - 1)


def task_input_weight(config: LNPExperimentConfig, data: TaskData, seed: int) -> Tensor:
    """Per-task input weights U (N_dense, C) of all dense neurons (module docstring, step 4), seeded by (seed, task)."""
    x = data.train.x
    return _input_weights(config.n_neurons, x.shape[-1], float(x.sum(-1).mean()), config, _task_seed(seed, data.name))


def _readout_config(data: TaskData, config: LNPExperimentConfig, seed: int) -> ReadoutFitConfig:
    return ReadoutFitConfig(**{**data.spec.readout, **config.readout, "seed": seed})


def evaluate_on_task(
    model: RSNN,
    task: str,
    seed: int,
    config: LNPExperimentConfig,
    *,
    data: TaskData | None = None,
    kept: Tensor | None = None,
    attach_input: bool = True,
) -> dict[str, Any]:
    """Fit a readout on the frozen network for one task and score it on the test split.

    Args:
        model: the network (its layer 0 is the recurrent layer).
        task: a key of :data:`TASKS`.
        seed: seeds the task data, the input layer and the readout's initial states.
        config: the experiment config.
        data: the loaded task (loaded with ``seed`` when None).
        kept: original indices of the model's neurons in the dense layer (their input rows are used); None means
            the model has all ``n_neurons`` dense neurons.
        attach_input: build the per-task input layer (:func:`task_input_weight`); False uses the model as it is
            (it must already read the task's channels, e.g. a network trained on the task).

    Returns:
        ``{"metric", "metric_name", <the readout's test scores>, "firing_rate", "neurons", "synapses",
        "sops_per_step", "input_ops_per_step", "alpha"}``; the firing rate is the mean over neurons, steps and test
        sequences of the layer's spikes; ``sops_per_step`` the recurrent layer's effective synaptic operations per
        step and test sequence (each spike × its nonzero recurrent fan-out, :func:`hrsnn.metrics.measure_efficiency`)
        and ``input_ops_per_step`` those of the input projection (ACs for event inputs, MACs for analog ones).
    """
    data = load_task(task, seed, config) if data is None else data
    if attach_input:
        rows = torch.arange(config.n_neurons) if kept is None else kept
        if rows.numel() != model.layers[0].size:
            raise ConfigError("kept", rows.numel(), f"must list the model's {model.layers[0].size} neurons")
        model = with_input_layer(model, task_input_weight(config, data, seed)[rows])
    readout = fit_readout(model, data.train, data.val, config=_readout_config(data, config, seed))
    scores = readout.evaluate(model, data.test)
    rates = firing_rates(model, list(data.test.batches(256, shuffle=False)), 0)
    ops = {p.name: p for p in measure_efficiency(model, data.test).projections}
    steps = data.test.n_steps
    return {
        "metric": scores[data.spec.metric],
        "metric_name": data.spec.metric,
        **scores,
        "firing_rate": float(rates.mean()),
        "neurons": model.layers[0].size,
        "synapses": synapse_total(model, 0),
        "sops_per_step": ops["layers.0.recurrent"].effective_acs / steps,
        "input_ops_per_step": (ops["layers.0.input"].effective_acs + ops["layers.0.input"].effective_macs) / steps,
    }


def _train_classifier(model: RSNN, data: TaskData, config: LNPExperimentConfig, seed: int) -> None:
    """BPTT with :class:`hrsnn.training.Trainer`: per-step NLL for per-step labels, else CE of the mean readout."""
    train, val = data.train, data.val
    if not isinstance(train, SequenceDataset) or not isinstance(val, SequenceDataset):
        raise ConfigError("task", data.name, "a classifier needs SequenceDataset splits")
    loss = "per_step_nll" if train.per_step else "mean_readout_ce"
    train_config = TrainConfig(
        epochs=config.ap_epochs, batch_size=config.ap_batch_size, lr=config.ap_lr, loss=loss, progress=False, seed=seed
    )
    Trainer(model, train_config).fit(train, val)


def _regression_loss(model: RSNN, data: RegressionDataset, skip: int) -> float:
    with torch.no_grad():
        total = sum(
            float(F.mse_loss(model(x).readout[:, skip:], y[:, skip:], reduction="sum"))
            for x, y in data.batches(256, shuffle=False)
        )
    return total / max(1, data.y[:, skip:].numel())


def _train_regressor(model: RSNN, data: TaskData, config: LNPExperimentConfig, seed: int) -> None:
    """BPTT (Adam) on :math:`L = \\mathrm{mean}_{b, t \\ge skip, d}(o_{btd} - y_{btd})^2`; keeps the epoch of lowest
    validation loss (the Trainer's objectives are classification-only)."""
    train, val = data.train, data.val
    if not isinstance(train, RegressionDataset) or not isinstance(val, RegressionDataset):
        raise ConfigError("task", data.name, "a regressor needs RegressionDataset splits")
    skip = _readout_config(data, config, seed).skip
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=config.ap_lr)
    generator = torch.Generator().manual_seed(seed)
    best = (_regression_loss(model, val, skip), {k: v.detach().clone() for k, v in model.state_dict().items()})
    for _ in range(config.ap_epochs):
        model.train()
        for x, y in train.batches(config.ap_batch_size, shuffle=True, generator=generator):
            loss = F.mse_loss(model(x).readout[:, skip:], y[:, skip:])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        model.eval()
        value = _regression_loss(model, val, skip)
        if value < best[0]:
            best = (value, {k: v.detach().clone() for k, v in model.state_dict().items()})
    model.load_state_dict(best[1])
    model.eval()


TRAINERS: Mapping[str, Callable[[RSNN, TaskData, LNPExperimentConfig, int], None]] = MappingProxyType(
    {"classification": _train_classifier, "regression": _train_regressor}
)
"""Read-only map from a task kind to the BPTT routine that trains the dense network for the AP baseline."""


def activity_baseline(
    dense: RSNN, data: TaskData, n_neurons: int, config: LNPExperimentConfig, seed: int
) -> PruneResult:
    """AP (spec §3): train the dense network on the task, then keep its ``n_neurons`` most active neurons.

    The dense network gets the task's input layer and a fresh integrator readout, and all its weights (input,
    recurrent within the mask, biases, readout; τ frozen) are trained by BPTT for ``ap_epochs`` epochs
    (:data:`TRAINERS`). :func:`hrsnn.pruning.activity_prune` then removes the least active neurons (mean firing rate
    on the training inputs) in one round. The returned network keeps the trained task input layer; its readout is
    refitted by :func:`evaluate_on_task` like every other variant's.
    """
    model = with_input_layer(dense, task_input_weight(config, data, seed), n_outputs=data.n_outputs, seed=seed)
    TRAINERS[data.spec.kind](model, data, config, seed)
    batches = [x for x, _ in data.train.batches(256, shuffle=False)]
    return activity_prune(model, 0, batches, n_neurons)


# ----------------------------------------------------------------------------------------- records, claims


@dataclass(frozen=True)
class VariantRecord:
    """One network on one task with one seed (λ_max and spectral radius under the probe drive)."""

    task: str
    variant: str
    seed: int
    neurons: int
    synapses: int
    metric: float
    metric_name: str
    lambda_max: float
    firing_rate: float
    spectral_radius: float
    sops_per_step: float
    input_ops_per_step: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return dataclasses.asdict(self)


class Stat(NamedTuple):
    """Mean and spread over seeds (sample std, ddof 1; 0.0 for a single seed)."""

    mean: float
    std: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat:
        """Mean ± std of ``values`` (at least one)."""
        t = torch.tensor([float(v) for v in values], dtype=torch.float64)
        return cls(float(t.mean()), float(t.std()) if t.numel() > 1 else 0.0)


_COLUMNS = (
    "neurons",
    "synapses",
    "metric",
    "lambda_max",
    "firing_rate",
    "spectral_radius",
    "sops_per_step",
    "input_ops_per_step",
)


@dataclass(frozen=True)
class SummaryRow:
    """One line of the table: a task × variant over seeds."""

    task: str
    variant: str
    metric_name: str
    higher_is_better: bool
    n_seeds: int
    neurons: Stat
    synapses: Stat
    metric: Stat
    lambda_max: Stat
    firing_rate: Stat
    spectral_radius: Stat
    sops_per_step: Stat
    input_ops_per_step: Stat

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (each statistic as ``{"mean", "std"}``)."""
        out: dict[str, Any] = {f: getattr(self, f) for f in ("task", "variant", "metric_name", "higher_is_better")}
        out["n_seeds"] = self.n_seeds
        out.update({c: getattr(self, c)._asdict() for c in _COLUMNS})
        return out


def summarize(records: Sequence[VariantRecord]) -> tuple[SummaryRow, ...]:
    """Aggregate records over seeds into one :class:`SummaryRow` per (task, variant), tasks in order of appearance."""
    groups: dict[tuple[str, str], list[VariantRecord]] = {}
    for record in records:
        groups.setdefault((record.task, record.variant), []).append(record)
    tasks = list(dict.fromkeys(r.task for r in records))
    rows = []
    for task in tasks:
        for variant in sorted({v for t, v in groups if t == task}, key=_variant_order):
            group = groups[(task, variant)]
            metric_name = group[0].metric_name
            if metric_name not in HIGHER_IS_BETTER or any(r.metric_name != metric_name for r in group):
                raise ConfigError("records", metric_name, f"one metric per task, one of {sorted(HIGHER_IS_BETTER)}")
            rows.append(
                SummaryRow(
                    task,
                    variant,
                    metric_name,
                    HIGHER_IS_BETTER[metric_name],
                    len(group),
                    *(Stat.of([getattr(r, c) for r in group]) for c in _COLUMNS),
                )
            )
    return tuple(rows)


def _variant_order(variant: str) -> tuple[int, str]:
    return (VARIANTS.index(variant) if variant in VARIANTS else len(VARIANTS), variant)


@dataclass(frozen=True)
class Claim:
    """One of the paper's claims checked on the runs: its verdict here, and the numbers behind it.

    ``verdict``: "holds" or "refuted" when the paired 95 % interval over seeds (:func:`hrsnn.stats.paired_comparison`)
    excludes 0 in the claim's favour or against it, "not shown" when it does not (or with one seed), "by
    construction" for a comparison the experiment fixes itself (e.g. equal neuron counts).
    """

    name: str
    task: str
    verdict: Literal["holds", "refuted", "not shown", "by construction"]
    statement: str
    numbers: Mapping[str, float]
    note: str = ""

    @property
    def holds(self) -> bool:
        """Whether the claim is shown (or true by construction)."""
        return self.verdict in ("holds", "by construction")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return {**dataclasses.asdict(self), "numbers": dict(self.numbers)}


def _paired_claim(
    records: Sequence[VariantRecord], task: str, a: str, b: str, column: str, higher_is_better: bool
) -> tuple[Literal["holds", "refuted", "not shown"], dict[str, float]]:
    """Paired comparison of ``column`` between variants a and b over their common seeds (d > 0 favours a)."""
    values_a = {r.seed: float(getattr(r, column)) for r in records if (r.task, r.variant) == (task, a)}
    values_b = {r.seed: float(getattr(r, column)) for r in records if (r.task, r.variant) == (task, b)}
    seeds = sorted(values_a.keys() & values_b.keys())
    if not seeds:
        return "not shown", {}
    c = paired_comparison(
        [values_a[s] for s in seeds], [values_b[s] for s in seeds], higher_is_better=higher_is_better
    )
    numbers = {
        "paired_diff_mean": c.diff,
        "ci_low": c.ci_low,
        "ci_high": c.ci_high,
        "seeds_favouring": float(c.wins),
        "seeds_paired": float(c.n),
        "wilcoxon_p": c.wilcoxon_p,
    }
    verdict: Literal["holds", "refuted", "not shown"] = (
        "holds" if c.ci_low > 0 else "refuted" if c.ci_high < 0 else "not shown"
    )
    return verdict, numbers


_PAIRED_NOTE = "paired over seeds: holds/refuted only when the 95 % interval excludes 0"


def compute_claims(rows: Sequence[SummaryRow], records: Sequence[VariantRecord]) -> tuple[Claim, ...]:
    """Check the paper's claims per task (each claim needs the variants it compares); see :class:`Claim`.

    * ``lnp_neurons_le_ap``: by construction (AP is pruned to LNP's neuron count).
    * ``lnp_synapses_le_ap``: by construction when it holds in every seed (AP removes neurons only and keeps every
      synapse among them), refuted otherwise.
    * ``lnp_metric_ge_ap``: LNP's metric better than AP's, paired over seeds.
    * ``lnp_beats_ap``: the three together (the abstract's claim): holds only if the metric claim holds.
    * ``random_less_stable``: λ_max of the random baseline above LNP's, paired over seeds.
    * ``heterogeneous_tau_helps``: LNP's metric better than with homogeneous τ, paired over seeds.
    """
    by_key = {(r.task, r.variant): r for r in rows}
    claims: list[Claim] = []
    for task in dict.fromkeys(r.task for r in rows):
        lnp = by_key.get((task, "lnp"))
        if lnp is None:
            continue
        if (task, "activity_pruned") in by_key:
            claims += _ap_claims(task, lnp, records)
        random = by_key.get((task, "random_pruned"))
        if random is not None:
            verdict, paired = _paired_claim(records, task, "random_pruned", "lnp", "lambda_max", True)
            lam = {
                "random_lambda_max": random.lambda_max.mean,
                "lnp_lambda_max": lnp.lambda_max.mean,
                **paired,
                "random_spectral_radius": random.spectral_radius.mean,
                "lnp_spectral_radius": lnp.spectral_radius.mean,
            }
            note = f"{_PAIRED_NOTE}; depends on the random network's spectral radius (config random_radius)"
            claims.append(Claim("random_less_stable", task, verdict, "random sparse less stable than LNP", lam, note))
        homog = by_key.get((task, "lnp_homogeneous"))
        if homog is not None:
            verdict, paired = _paired_claim(records, task, "lnp", "lnp_homogeneous", "metric", lnp.higher_is_better)
            num = {"heterogeneous_metric": lnp.metric.mean, "homogeneous_metric": homog.metric.mean, **paired}
            statement = f"heterogeneous tau gives better {lnp.metric_name} than homogeneous tau"
            claims.append(Claim("heterogeneous_tau_helps", task, verdict, statement, num, _PAIRED_NOTE))
    return tuple(claims)


def _ap_claims(task: str, lnp: SummaryRow, records: Sequence[VariantRecord]) -> list[Claim]:
    mine = {(r.variant, r.seed): r for r in records if r.task == task}
    seeds = sorted({s for v, s in mine if v == "lnp"} & {s for v, s in mine if v == "activity_pruned"})
    fewer = all(mine[("lnp", s)].synapses <= mine[("activity_pruned", s)].synapses for s in seeds)
    syn = {
        "lnp_synapses": Stat.of([mine[("lnp", s)].synapses for s in seeds]).mean if seeds else math.nan,
        "ap_synapses": Stat.of([mine[("activity_pruned", s)].synapses for s in seeds]).mean if seeds else math.nan,
    }
    counts = {"lnp_neurons": lnp.neurons.mean}
    verdict, paired = _paired_claim(records, task, "lnp", "activity_pruned", "metric", lnp.higher_is_better)
    syn_verdict: Literal["refuted", "by construction"] = "by construction" if fewer else "refuted"
    return [
        Claim(
            "lnp_neurons_le_ap", task, "by construction", "LNP <= AP in neurons", counts,
            "AP is pruned to LNP's neuron count",
        ),
        Claim(
            "lnp_synapses_le_ap", task, syn_verdict, "LNP <= AP in synapses", syn,
            "AP removes neurons only and keeps every synapse among them",
        ),
        Claim("lnp_metric_ge_ap", task, verdict, f"LNP {lnp.metric_name} better than AP", paired, _PAIRED_NOTE),
        Claim(
            "lnp_beats_ap", task, verdict if fewer else "refuted",
            "LNP <= AP in neurons and synapses at better metric", {**counts, **syn, **paired},
            "the counts hold by construction; the verdict is the metric's",
        ),
    ]  # fmt: skip


def _fmt(stat: Stat, digits: int, n_seeds: int) -> str:
    """``mean ± std``, or the mean alone for one seed (no spread measured) or a non-finite mean or std."""
    if n_seeds < 2 or not (math.isfinite(stat.mean) and math.isfinite(stat.std)):
        return f"{stat.mean:.{digits}f}"
    return f"{stat.mean:.{digits}f} ± {stat.std:.{digits}f}"


def format_table(rows: Sequence[SummaryRow]) -> str:
    """Plain-text table: task, variant, neurons, synapses, metric, λ_max, firing rate, ρ(W), recurrent synaptic
    operations per step (SOPs/step: spikes × nonzero recurrent fan-out, per test sequence).

    Each cell is the mean ± std over the row's seeds; with a single seed (or a non-finite value) only the mean.
    """
    headers = ("task", "variant", "neurons", "synapses", "metric", "λ_max", "firing rate", "ρ(W)", "SOPs/step", "seeds")
    lines = [
        (
            r.task,
            r.variant,
            _fmt(r.neurons, 0, r.n_seeds),
            _fmt(r.synapses, 0, r.n_seeds),
            f"{r.metric_name} {_fmt(r.metric, 4, r.n_seeds)}",
            _fmt(r.lambda_max, 4, r.n_seeds),
            _fmt(r.firing_rate, 4, r.n_seeds),
            _fmt(r.spectral_radius, 2, r.n_seeds),
            _fmt(r.sops_per_step, 1, r.n_seeds),
            str(r.n_seeds),
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    out.append("  ".join("-" * w for w in widths))
    out += ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    return "\n".join(out)


def format_claims(claims: Sequence[Claim]) -> str:
    """One line per claim: ``[task] statement: VERDICT (numbers) note``."""
    out = []
    for c in claims:
        numbers = ", ".join(f"{k}={v:.4g}" for k, v in c.numbers.items())
        note = f"; {c.note}" if c.note else ""
        out.append(f"[{c.task}] {c.statement}: {c.verdict.upper()} ({numbers}){note}")
    return "\n".join(out)


# --------------------------------------------------------------------------------------------------- plots


def _figure(size: tuple[float, float], path: str | Path) -> Any:
    """A matplotlib figure for ``path`` (matplotlib is imported here: it is slow to import)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingDependencyError("path", str(path), "matplotlib") from None
    figure = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def plot_lnp_history(histories: Mapping[int, Sequence[PruneHistoryEntry]], path: str | Path) -> Path:
    """Neurons, synapses and λ_max per LNP iteration (one line per seed), written to ``path`` (e.g. a PNG)."""
    figure = _figure((12.0, 3.6), path)
    axes = figure.subplots(1, 3)
    for seed, history in histories.items():
        it = [e.iteration for e in history]
        axes[0].plot(it, [e.neurons for e in history], marker="o", ms=3, label=f"seed {seed}")
        axes[1].plot(it, [e.synapses for e in history], marker="o", ms=3, label=f"seed {seed}")
        lam = [math.nan if e.lambda_max is None else e.lambda_max for e in history]
        axes[2].plot(it, lam, marker="o", ms=3, label=f"seed {seed}")
    for ax, label in zip(axes, ("neurons", "recurrent synapses", "λ_max (per step)"), strict=True):
        ax.set_xlabel("LNP iteration")
        ax.set_ylabel(label)
        ax.legend(loc="best", fontsize="small")
    axes[2].axhline(0.0, color="grey", lw=0.8)
    figure.suptitle("LNP: network size and stability per iteration")
    figure.savefig(Path(path), dpi=120)
    return Path(path)


def plot_spectra(spectra: Mapping[str, Tensor], path: str | Path, *, title: str = "") -> Path:
    """Top-m Lyapunov spectra (exponent λ_k against k), one line per network, written to ``path``.

    Each network's spectrum is (m,) for one seed or (seeds, m); the line is the mean over seeds (its λ_1 is the
    table's λ_max, :func:`largest_exponent`, and is named in the legend), shaded ± the std over seeds.
    """
    figure = _figure((6.5, 4.2), path)
    ax = figure.subplots()
    for name, values in spectra.items():
        if not isinstance(values, Tensor) or values.dim() not in (1, 2) or values.shape[-1] < 1:
            shown = tuple(values.shape) if isinstance(values, Tensor) else type(values).__name__
            raise ConfigError(f"spectra.{name}", shown, "must be a tensor (m,) or (seeds, m)")
        v = values.detach().cpu().double().reshape(-1, values.shape[-1])
        mean = v.mean(0)
        k = range(1, mean.numel() + 1)
        (line,) = ax.plot(k, mean.tolist(), marker="o", ms=3, label=f"{name} (λ₁ = {float(mean[0]):.4f})")
        if v.shape[0] > 1:
            std = v.std(0)
            ax.fill_between(k, (mean - std).tolist(), (mean + std).tolist(), color=line.get_color(), alpha=0.2)
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.locator_params(axis="x", integer=True)
    ax.set_xlabel("index k")
    ax.set_ylabel("λ_k (per step)")
    ax.set_title(title or "Lyapunov spectra")
    ax.legend(loc="best")
    figure.savefig(Path(path), dpi=120)
    return Path(path)


# -------------------------------------------------------------------------------------------------- driver


@dataclass(frozen=True)
class LNPExperimentResult:
    """What :func:`run_lnp_experiment` returns.

    Attributes:
        run_id: the run in the store. run_dir: where the artifacts are.
        records: every (task, variant, seed) measurement. table: aggregated over seeds. claims: checked claims.
        histories: LNP history per seed. spectra: top-m spectra per network, (seeds, m).
        artifacts: artifact kind → path.
    """

    run_id: int
    run_dir: Path
    records: tuple[VariantRecord, ...]
    table: tuple[SummaryRow, ...]
    claims: tuple[Claim, ...]
    histories: Mapping[int, tuple[PruneHistoryEntry, ...]]
    spectra: Mapping[str, Tensor]
    artifacts: Mapping[str, Path]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (without the config)."""
        return {
            "run_id": self.run_id,
            "run_dir": str(self.run_dir),
            "table": [r.to_dict() for r in self.table],
            "claims": [c.to_dict() for c in self.claims],
            "records": [r.to_dict() for r in self.records],
            "histories": {str(s): [e.to_dict() for e in h] for s, h in self.histories.items()},
            "spectra": {k: v.tolist() for k, v in self.spectra.items()},
            "artifacts": {k: str(v) for k, v in self.artifacts.items()},
        }


def _final_metrics(table: Sequence[SummaryRow], claims: Sequence[Claim]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for row in table:
        for column in _COLUMNS:
            stat = getattr(row, column)
            name = row.metric_name if column == "metric" else column  # e.g. "digits.lnp.accuracy_mean"
            out[f"{row.task}.{row.variant}.{name}_mean"] = stat.mean
            out[f"{row.task}.{row.variant}.{name}_std"] = stat.std
    for claim in claims:
        out[f"claim.{claim.task}.{claim.name}"] = claim.verdict
    return out


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


class _Probe(NamedTuple):
    """A network of one seed measured under the probe: its model, surviving indices, top-m spectrum, λ_max (its
    first entry, as :func:`largest_exponent` gives it) and ρ(W)."""

    model: RSNN
    kept: Tensor
    spectrum: Tensor
    lambda_max: float
    radius: float


def _measure(model: RSNN, kept: Tensor, config: LNPExperimentConfig, seed: int) -> _Probe:
    radius = spectral_radius(model.layers[0].effective_recurrent_weight().detach())
    spectrum = top_exponents(model, config, seed, m=config.spectrum_top, n_steps=config.lyapunov_steps)
    return _Probe(model, kept, spectrum, float(spectrum[0]), radius)


def _record(task: str, variant: str, seed: int, probe: _Probe, scores: Mapping[str, Any]) -> VariantRecord:
    return VariantRecord(
        task,
        variant,
        seed,
        int(scores["neurons"]),
        int(scores["synapses"]),
        float(scores["metric"]),
        str(scores["metric_name"]),
        probe.lambda_max,
        float(scores["firing_rate"]),
        probe.radius,
        float(scores["sops_per_step"]),
        float(scores["input_ops_per_step"]),
    )


def run_lnp_experiment(
    config: LNPExperimentConfig,
    *,
    store: RunStore,
    out_dir: str | Path,
    log: Callable[[str], None] | None = None,
    progress: bool = False,
) -> LNPExperimentResult:
    """Run the whole experiment (module docstring) and record it as one run of kind ``"lnp"`` in ``store``.

    Artifacts go to ``out_dir/lnp-<run id>/``: ``lnp_history.png``, ``lyapunov_spectra.png``, ``results.json``,
    ``table.txt``, ``lnp_seed<s>.safetensors`` (pruned networks, with their probe input layer) and the LNP
    checkpoints, written after every iteration. Every LNP iteration is logged to the store as it ends. A
    failure marks the run "failed" with its reason; Ctrl-C or SIGTERM marks it "interrupted" and raises
    :class:`hrsnn.errors.RunInterrupted`; :func:`resume_lnp_experiment` continues it.
    """
    if not isinstance(config, LNPExperimentConfig):
        raise ConfigError("config", type(config).__name__, "must be an LNPExperimentConfig")
    out = _check_out_dir(out_dir)
    run_id = store.create_run(
        name=config.name, kind="lnp", config=config.to_dict(), seed=config.seeds[0], env=environment_info()
    )
    with store.recording(run_id, "lnp"):
        run_dir = out / f"lnp-{run_id:05d}"
        run_dir.mkdir(parents=True, exist_ok=True)
        store.add_artifact(run_id, _FOLDER, run_dir)
        return _run(config, _Context(store, run_id, run_dir, log or _silent, progress))


def resume_lnp_experiment(
    run_id: int,
    *,
    store: RunStore,
    log: Callable[[str], None] | None = None,
    progress: bool = False,
) -> LNPExperimentResult:
    """Continue LNP experiment ``run_id`` (killed, interrupted or failed) in its own folder, with its own config.

    Each seed's pruning resumes from its per-iteration checkpoint (a finished seed is not pruned again); the
    task evaluations, which are not checkpointed, run again from the same seeds. Resuming a run whose process is
    still alive raises :class:`hrsnn.experiments.store.RunBusyError`; a completed run is refused.
    """
    record = store.get_run(run_id)
    if record.kind != "lnp":
        raise ConfigError("--resume", run_id, f"is a {record.kind!r} run, not an LNP experiment")
    if record.status == "completed":
        raise ConfigError("--resume", run_id, "is already completed")
    config = LNPExperimentConfig.from_dict(record.config)
    folders = [a["path"] for a in record.artifacts if a["kind"] == _FOLDER]
    if not folders:
        raise ConfigError("--resume", run_id, "has no recorded folder (it was made by an older hrsnn)")
    run_dir = Path(folders[-1])
    store.claim_run(run_id)
    with store.recording(run_id, "lnp"):
        run_dir.mkdir(parents=True, exist_ok=True)
        say = log or _silent
        say(f"resuming LNP run {run_id} in {run_dir}")
        return _run(config, _Context(store, run_id, run_dir, say, progress))


_FOLDER = "folder"
"""Artifact kind under which an LNP run records its folder (so that a resume finds it)."""


def _silent(line: str) -> None:
    del line


def _check_out_dir(out_dir: str | Path) -> Path:
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError("--out", str(out), "is a file; it must name a folder for the run's artifacts")
    return out


class _Context(NamedTuple):
    """What every stage of a run writes to: the store, the run, its folder, the log and the progress switch."""

    store: RunStore
    run_id: int
    run_dir: Path
    say: Callable[[str], None]
    progress: bool


def _log_iterations(
    ctx: _Context, seed: int, first_epoch: int, history: Sequence[PruneHistoryEntry], start: int
) -> None:
    """Store LNP history entries ``start:`` of ``seed`` as epoch rows ``first_epoch + index`` (idempotent)."""
    for index in range(start, len(history)):
        entry = history[index]
        metrics = {
            "seed": seed,
            "iteration": entry.iteration,
            "neurons": entry.neurons,
            "synapses": entry.synapses,
            "lambda_max": _nan(entry.lambda_max),
            "mean_ipr": _nan(entry.mean_ipr),
            "seconds": entry.seconds,
        }
        ctx.store.log_epoch(ctx.run_id, first_epoch + index, metrics)


def _prune_seed(config: LNPExperimentConfig, seed: int, ctx: _Context, first_epoch: int) -> tuple[RSNN, PruneResult]:
    """Build the dense network of ``seed``, prune it with LNP (each iteration logged as an epoch row as it ends),
    save the pruned net."""
    start = time.perf_counter()
    dense = build_dense(config, seed)
    ctx.say(f"[seed {seed}] dense network: {config.n_neurons} neurons, {synapse_total(dense, 0)} synapses")
    checkpoint = ctx.run_dir / f"lnp_seed{seed}.ckpt.safetensors"
    if checkpoint.exists():
        ctx.say(f"[seed {seed}] resuming LNP from {checkpoint}")
    logged = 0

    def on_iteration(history: tuple[PruneHistoryEntry, ...]) -> None:
        nonlocal logged
        _log_iterations(ctx, seed, first_epoch, history, logged)
        logged = len(history)

    pruned = prune_with_lnp(
        dense, config, seed=seed, checkpoint_path=checkpoint, progress=ctx.progress, on_iteration=on_iteration
    )
    _log_iterations(ctx, seed, first_epoch, pruned.history, logged)  # e.g. a seed finished before a resume
    last = pruned.history[-1]
    ctx.say(
        f"[seed {seed}] LNP: {pruned.model.layers[0].size} neurons, {synapse_total(pruned.model, 0)} synapses after "
        f"{last.iteration} iterations ({time.perf_counter() - start:.1f} s; last: {last.note})"
    )
    model_path = ctx.run_dir / f"lnp_seed{seed}.safetensors"
    save_model(pruned.model, model_path, extra={"run_id": ctx.run_id, "seed": seed})
    ctx.store.add_artifact(ctx.run_id, "model", model_path)
    ctx.store.add_artifact(ctx.run_id, "checkpoint", checkpoint)
    return dense, pruned


def _probe_seed(
    dense: RSNN, pruned: PruneResult, config: LNPExperimentConfig, seed: int, ctx: _Context
) -> dict[str, _Probe]:
    """The task-independent variants of one seed (dense, lnp, lnp_homogeneous, random_pruned), measured."""
    lnp_model, kept = pruned.model, pruned.kept_neurons
    probes = {"dense": _measure(dense, torch.arange(config.n_neurons), config, seed)}
    probes["lnp"] = _measure(lnp_model, kept, config, seed)
    probes["lnp_homogeneous"] = _measure(homogeneous_tau(lnp_model), kept, config, seed)
    radius = RANDOM_RADII[config.random_radius](probes["dense"].radius, probes["lnp"].radius)
    counts = (lnp_model.layers[0].size, synapse_total(lnp_model, 0))
    rand = random_sparse(dense, *counts, generator=torch.Generator().manual_seed(seed), radius=radius)
    probes["random_pruned"] = _measure(rand.model, rand.kept_neurons, config, seed)
    ctx.say("[seed {}] λ_max: {}".format(seed, ", ".join(f"{k} {p.lambda_max:.4f}" for k, p in probes.items())))
    return probes


def _evaluate_seed(
    dense: RSNN, probes: Mapping[str, _Probe], config: LNPExperimentConfig, seed: int, ctx: _Context
) -> list[VariantRecord]:
    """Every variant of one seed on every task; the AP baseline is trained and pruned per task here."""
    records: list[VariantRecord] = []
    probe_rows = dense.layers[0].input.weight.detach()
    n_lnp = probes["lnp"].model.layers[0].size
    for task in config.tasks:
        data = load_task(task, seed, config)
        done = []
        for variant, probe in probes.items():
            scores = evaluate_on_task(probe.model, task, seed, config, data=data, kept=probe.kept)
            done.append(_record(task, variant, seed, probe, scores))
        ap = activity_baseline(dense, data, n_lnp, config, seed)
        scores = evaluate_on_task(ap.model, task, seed, config, data=data, attach_input=False)
        ap_probe = _measure(with_input_layer(ap.model, probe_rows[ap.kept_neurons]), ap.kept_neurons, config, seed)
        done.append(_record(task, "activity_pruned", seed, ap_probe, scores))
        ctx.say(f"[seed {seed}] {task}: " + ", ".join(f"{r.variant} {r.metric_name}={r.metric:.4f}" for r in done))
        records += done
    return records


def _run(config: LNPExperimentConfig, ctx: _Context) -> LNPExperimentResult:
    records: list[VariantRecord] = []
    histories: dict[int, tuple[PruneHistoryEntry, ...]] = {}
    per_seed: dict[str, list[Tensor]] = {}
    for seed in config.seeds:
        dense, pruned = _prune_seed(config, seed, ctx, sum(len(h) for h in histories.values()))
        histories[seed] = pruned.history
        probes = _probe_seed(dense, pruned, config, seed, ctx)
        for name, key in _SPECTRUM_LINES:
            per_seed.setdefault(name, []).append(probes[key].spectrum)
        records += _evaluate_seed(dense, probes, config, seed, ctx)
    # the figure shows the seed mean of the very spectra whose λ_1 the table averages
    spectra = {name: torch.stack([v[: min(len(u) for u in vs)] for v in vs]) for name, vs in per_seed.items()}
    return _finish(config, ctx, tuple(records), histories, spectra)


_SPECTRUM_LINES = (("dense", "dense"), ("random sparse", "random_pruned"), ("LNP", "lnp"))
"""Lines of ``lyapunov_spectra.png``: (legend name, variant)."""


def _finish(
    config: LNPExperimentConfig,
    ctx: _Context,
    records: tuple[VariantRecord, ...],
    histories: Mapping[int, tuple[PruneHistoryEntry, ...]],
    spectra: Mapping[str, Tensor],
) -> LNPExperimentResult:
    """Table, claims, figures, text and JSON results; artifacts and final metrics into the store."""
    table = summarize(records)
    claims = compute_claims(table, records)
    run_dir = ctx.run_dir
    artifacts = {"lnp_history": plot_lnp_history(histories, run_dir / "lnp_history.png")}
    seeds = f"seed {config.seeds[0]}" if len(config.seeds) == 1 else f"mean over {len(config.seeds)} seeds"
    title = f"top-{config.spectrum_top} Lyapunov spectra, {seeds} ({config.lyapunov_method} reading)"
    artifacts["lyapunov_spectra"] = plot_spectra(spectra, run_dir / "lyapunov_spectra.png", title=title)
    artifacts["table"] = run_dir / "table.txt"
    text = format_table(table) + "\n\nclaims (computed from the table):\n" + format_claims(claims) + "\n"
    artifacts["table"].write_text(text, encoding="utf-8")
    artifacts["results"] = run_dir / "results.json"
    result = LNPExperimentResult(
        ctx.run_id,
        run_dir,
        records,
        table,
        claims,
        MappingProxyType(dict(histories)),
        MappingProxyType(dict(spectra)),
        MappingProxyType(artifacts),
    )
    payload = {"config": config.to_dict(), **result.to_dict()}
    artifacts["results"].write_text(json.dumps(payload, indent=2, allow_nan=True), encoding="utf-8")
    for kind in ("lnp_history", "lyapunov_spectra", "table", "results"):
        ctx.store.add_artifact(ctx.run_id, kind, artifacts[kind])
    ctx.store.finish_run(ctx.run_id, status="completed", final_metrics=_final_metrics(table, claims))
    return result


# ----------------------------------------------------------------------------------------------------- CLI


def _cli_data(args: argparse.Namespace, quick: Mapping[str, Any] = QUICK_PRESET) -> dict[str, Any]:
    """The experiment from the command line: --config < --quick (``quick``'s settings) < --neurons/--seeds/--tasks
    < --set."""
    data: dict[str, Any] = read_config_file(args.config) if args.config else {}
    if args.quick:  # the flag asks for a quick run whatever the file says
        data = deep_update(data, {**to_dict(quick), "quick": True})
    over: dict[str, Any] = {}
    if args.neurons is not None:
        over["n_neurons"] = args.neurons
    if args.seeds is not None:
        over["seeds"] = [_parse_int("--seeds", s) for s in args.seeds.split(",") if s.strip()]
    if args.tasks is not None:
        over["tasks"] = [t.strip() for t in args.tasks.split(",") if t.strip()]
    return deep_update(deep_update(data, over), parse_overrides(args.set))


def _parse_int(option: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(option, text, "must be a comma-separated list of integers") from None


_RESUME_OPTIONS = ("config", "neurons", "seeds", "tasks", "quick", "out", "set", "sparsities", "baselines")
"""Options that define an experiment, so they cannot accompany ``--resume`` (the run's own config is used)."""


def cmd_lnp(args: argparse.Namespace) -> int:
    """Handler of ``hrsnn lnp``: run (or resume) the experiment, print the table and claims (or ``--json``)."""
    threads = 1 if args.threads is None else args.threads
    if threads < 1:
        raise ConfigError("--threads", threads, "must be >= 1")
    if args.resume is not None:
        for option in _RESUME_OPTIONS:
            if getattr(args, option) not in (None, False, []):
                flag = f"--{option}"
                raise ConfigError(flag, getattr(args, option), f"cannot change when resuming run {args.resume}")
    elif not args.sweep and (args.sparsities is not None or args.baselines is not None):
        flag = "--sparsities" if args.sparsities is not None else "--baselines"
        raise ConfigError(flag, args.sparsities or args.baselines, "needs --sweep")
    store = RunStore(getattr(args, "store", None))
    if args.sweep or (args.resume is not None and store.get_run(args.resume).kind == "lnp_sweep"):
        from hrsnn.experiments.lnp_sweep import cmd_sweep  # the sweep builds on this module

        torch.set_num_threads(threads)
        return cmd_sweep(args, store)
    log: Callable[[str], None] | None = None
    if not args.quiet:
        log = (lambda line: print(line, file=sys.stderr)) if args.json else print
    progress = not (args.quiet or args.json)
    if args.resume is not None:
        torch.set_num_threads(threads)
        result = resume_lnp_experiment(args.resume, store=store, log=log, progress=progress)
    else:
        config = LNPExperimentConfig.from_dict(_cli_data(args))
        runs_dir = getattr(args, "runs_dir", None)
        out = Path(args.out) if args.out else (Path(runs_dir) if runs_dir else store.path.parent / "runs")
        torch.set_num_threads(threads)
        result = run_lnp_experiment(config, store=store, out_dir=out, log=log, progress=progress)
    if args.json:
        print(json.dumps(result.to_dict(), allow_nan=True))
        return 0
    print(f"\nrun {result.run_id}: artifacts in {result.run_dir}")
    print(format_table(result.table))
    print("\nclaims (computed from the table):")
    print(format_claims(result.claims))
    return 0
