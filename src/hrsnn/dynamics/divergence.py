r"""Stability of the spiking network itself: perturbation divergence (no surrogate) and the edge of chaos.

The Lyapunov exponents of :mod:`hrsnn.dynamics.snn` linearise the map; the spiking map is discontinuous, so they
either smooth the spike (surrogate reading) or never see a spike move (exact reading). This module measures what a
*finite* perturbation does to the exact network, in the spirit of Derrida's damage spreading.

**Perturbation divergence** (:func:`perturbation_divergence`). P pairs, each with its own initial condition
(membranes :math:`u \sim U[0, \vartheta)`, the network's ``"uniform"`` scheme, ϑ = b0, or the hard threshold) and,
for a :class:`~hrsnn.dynamics.snn.DriveConfig`, its own drive realisation. Each is run for ``transient`` steps;
then the state is copied and the copy's membranes of one layer are moved by
:math:`\varepsilon\,d`, d a random unit vector (:math:`\lVert \varepsilon d\rVert_2 = \varepsilon`). Both copies
then run the same input for ``horizon`` steps in one batched forward pass (B = 2P) of the model's own dynamics
(:meth:`hrsnn.network.RSNN.forward` from an explicit state), under ``torch.no_grad`` on the model's device and in its
dtype. Perturbing a membrane rather than flipping a spike keeps the size of the perturbation a continuous knob.

With :math:`u^a_t, u^b_t` the membranes of all spiking layers and :math:`s^a_t, s^b_t` their spikes
(:math:`N = \sum_l N_l` neurons), step t = 1..H after the perturbation at t = 0:

.. math::

    d_t = \lVert u^a_t - u^b_t\rVert_2 \;(d_0 = \varepsilon),\qquad
    h_t = \frac1N \sum_i |s^a_{t,i} - s^b_{t,i}| \in [0, 1]

* **Divergence rate** of a pair: the least-squares slope of :math:`\log \max(d_t, d_{floor})` against time
  :math:`t\,dt` over t = 0..``fit_steps``, per unit time (dt = 1: per step). Positive: the perturbation grows
  (chaotic); negative: it dies out (stable). Without spikes that differ it is the leak: in a network that never
  spikes, :math:`d_t = \alpha^t\varepsilon` for a common :math:`\alpha = e^{-dt/\tau_m}` and the rate is
  :math:`\log\alpha/dt = -1/\tau_m`. A moved spike adds a jump of order ϑ to :math:`d_t`; a distance that
  saturates at the size of the attractor flattens the slope, so a long ``fit_steps`` shrinks |rate| but keeps
  its sign, which is the stability verdict. The rate is reported as an :class:`~hrsnn.stats.Estimate` over the P
  pairs (mean, SEM).
* **Spike-train distance at the end** :math:`D_T = \frac1w \sum_{t=H-w+1}^{H} h_t \in [0, 1]` (w = ``window``):
  0 when the two spike trains agree over the last window (re-merged, or never apart), about 2r(1 − r) for
  uncorrelated trains of rate r per step.

**The discontinuity and the choice of ε.** A membrane moved by much less than the distance of any neuron from its
threshold moves no spike: the two trains stay identical and :math:`d_t` just leaks away, whatever the recurrent
weights. Only a perturbation that moves a spike can reveal divergence, and the chance of that grows with ε. So the
rate is a *finite-size, finite-time* growth rate of the exact network: it depends on ε (compare networks at the
same ε, and report ε), unlike a Lyapunov exponent. Choose ε as a fraction of the threshold spread over the layer
(ε = 0.1 ϑ on 300 neurons moves each membrane by about 0.006 ϑ). ε = 0 is the control: identical copies,
:math:`d_t = h_t = 0`. Measured on the LNP experiment's dense network (:func:`hrsnn.experiments.lnp.build_dense`,
N = 300, ρ = 10, probe drive, 32 pairs, H = 100): ε = 0.01 ϑ moves a spike in 31 % of the pairs and gives a rate of
−0.013 ± 0.006 per step; ε = 0.1 ϑ moves one in every pair and gives +0.023 ± 0.002, while the surrogate λ_max of
the same network is −0.050 ± 0.002: finite perturbations spread where smoothed infinitesimal ones die out.

**Re-merging.** Two copies can become exactly equal (a hard reset erases a membrane difference; rounding absorbs a
difference below the resolution of the dtype). The distance is therefore floored at
:math:`d_{floor} = \epsilon_{mach}\,\vartheta` (float32: 1.2e-7 ϑ), the smallest membrane difference the dtype
resolves near threshold, before the logarithm; a re-merged pair's rate is the finite
:math:`\log(d_{floor}/\varepsilon)` slope rather than −∞. ``merged_fraction`` reports the pairs that re-merged
(:math:`d_H \le d_{floor}` and :math:`D_T = 0`), ``flipped_fraction`` those in which any spike ever differed.
ε must be 0 or at least :math:`d_{floor}`.

**λ_max with an error bar** (:func:`largest_lyapunov_estimate`): :func:`hrsnn.dynamics.snn.rsnn_lyapunov` with a
batch of independent initial conditions, as an Estimate.

**Edge of chaos** (:func:`edge_of_chaos`): a measure (any callable model → Estimate, e.g. the divergence rate or
λ_max) at each spectral radius of one layer's recurrent weight (:func:`hrsnn.connectivity.scale_to_spectral_radius`
on a copy, or a builder called with the radius); the critical radius is the first zero crossing of the mean,
interpolated linearly between the two radii that bracket it, and it is *resolved* when both bracketing means lie
more than 2 SEM from 0. A measure that hovers near 0 over a range of radii (the divergence rate does, below the
radius where perturbations clearly grow) gives crossings that are noise: look at ``resolved`` and ``crossings``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from hrsnn._validate import check_int, check_model, check_real, check_seed, check_tensor
from hrsnn.connectivity import scale_to_spectral_radius
from hrsnn.dynamics.lyapunov import LyapunovConfig
from hrsnn.dynamics.snn import DriveConfig, _common_dt, rsnn_lyapunov
from hrsnn.errors import ConfigError
from hrsnn.network import RSNN, STATE_INITS, RSNNState, SpikingLayer
from hrsnn.neurons import ALIFState
from hrsnn.stats import Estimate
from hrsnn.surrogates import Surrogate

__all__ = [
    "RESOLVING_SEMS",
    "DivergenceResult",
    "EdgeOfChaosResult",
    "edge_of_chaos",
    "largest_lyapunov_estimate",
    "perturbation_divergence",
]

Measure = Callable[[RSNN], Estimate]
"""A stability measure of a network: positive = chaotic, negative = stable."""


# --------------------------------------------------------------------------------------------------
# perturbation divergence
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class DivergenceResult:
    """Divergence of P perturbed pairs (module docstring for the definitions); tensors are float64 on the CPU.

    Attributes:
        membrane_distance: (P, H + 1) :math:`d_t`, t = 0..H (column 0 is the perturbation, ε).
        spike_distance: (P, H) :math:`h_t`, t = 1..H, the normalised Hamming distance of the spikes of each step.
        rates: (P,) divergence rate of each pair, per unit time.
        rate: mean and SEM of ``rates``.
        final_distance: mean and SEM over pairs of :math:`D_T`.
        merged_fraction: fraction of pairs that re-merged (:math:`d_H \\le d_{floor}` and :math:`D_T = 0`).
        flipped_fraction: fraction of pairs in which at least one spike differed during the horizon.
        epsilon: the perturbation's norm ε.
        floor: :math:`d_{floor}`.
        window: w, steps of the spike-distance windows.
        fit_steps: steps 0..fit_steps entered the rate's fit.
        dt: time per step.
    """

    membrane_distance: Tensor
    spike_distance: Tensor
    rates: Tensor
    rate: Estimate
    final_distance: Estimate
    merged_fraction: float
    flipped_fraction: float
    epsilon: float
    floor: float
    window: int
    fit_steps: int
    dt: float

    @property
    def times(self) -> Tensor:
        """Time of each column of ``membrane_distance``, :math:`t\\,dt` for t = 0..H, (H + 1,)."""
        return torch.arange(self.membrane_distance.shape[1], dtype=torch.float64) * self.dt

    @property
    def windowed_spike_distance(self) -> Tensor:
        """:math:`h_t` averaged over consecutive windows of ``window`` steps from t = 1 (a shorter last window if
        ``window`` does not divide H), (P, ⌈H / window⌉)."""
        return torch.stack([chunk.mean(dim=1) for chunk in self.spike_distance.split(self.window, dim=1)], dim=1)


def _threshold(layer: SpikingLayer) -> float:
    """ϑ of a layer: the hard threshold for "lif_hard", the baseline b0 otherwise."""
    neuron = layer.config.neuron
    return neuron.hard_threshold if neuron.kind == "lif_hard" else neuron.b0


def _pair_inputs(inputs: Tensor | DriveConfig, n_inputs: int, n_pairs: int, n_steps: int) -> Tensor:
    """The drive of the P pairs, (P, n_steps, n_inputs) on the CPU."""
    if isinstance(inputs, DriveConfig):
        return inputs.sample(n_pairs, n_steps, n_inputs)
    x = check_tensor("inputs", inputs, 3, finite=True)
    if x.shape[0] not in (1, n_pairs) or x.shape[1] < n_steps or x.shape[2] != n_inputs:
        expected = f"(1 or n_pairs={n_pairs}, >= transient + horizon = {n_steps}, {n_inputs})"
        raise ConfigError("inputs", tuple(x.shape), f"must be {expected}, or a DriveConfig")
    return x[:, :n_steps].detach().cpu().expand(n_pairs, -1, -1)


def _initial_state(model: RSNN, batch: int, dtype: torch.dtype, generator: torch.Generator) -> RSNNState:
    """The network's "uniform" scheme with scale ϑ, drawn on the CPU (same draws on every device)."""
    like = torch.empty(0, dtype=dtype)
    layers = tuple(
        STATE_INITS["uniform"](batch, layer.size, _threshold(layer), layer.config.neuron.b0, like, generator)
        for layer in model.layers
    )
    device = model.device
    return RSNNState(
        tuple(ALIFState(*(v.to(device) for v in st)) for st in layers),
        model.readout.initial_state(batch, "zeros", None, None),
    )


def _twice(state: ALIFState) -> ALIFState:
    return ALIFState(*(torch.cat([v, v]) for v in state))


def _perturbed_pairs(state: RSNNState, layer: int, epsilon: float, generator: torch.Generator) -> RSNNState:
    """Rows 0..P-1: ``state``; rows P..2P-1: ``state`` with layer ``layer``'s membranes moved by ε d, |d| = 1."""
    u = state.layers[layer].u
    direction = torch.randn(u.shape, generator=generator, dtype=torch.float64)
    direction = (direction / torch.linalg.vector_norm(direction, dim=1, keepdim=True)).to(u)
    layers = [_twice(st) for st in state.layers]
    layers[layer] = layers[layer]._replace(u=torch.cat([u, u + epsilon * direction]))
    return RSNNState(tuple(layers), _twice(state.readout))


def _slopes(y: Tensor, dt: float) -> Tensor:
    """Least-squares slope of each row of y (P, n) against time t·dt, t = 0..n-1."""
    t = torch.arange(y.shape[1], dtype=torch.float64) * dt
    tc = t - t.mean()
    return ((y - y.mean(dim=1, keepdim=True)) * tc).sum(dim=1) / (tc * tc).sum()


def perturbation_divergence(
    model: RSNN,
    inputs: Tensor | DriveConfig,
    *,
    epsilon: float,
    n_pairs: int = 8,
    transient: int = 100,
    horizon: int = 100,
    fit_steps: int | None = None,
    window: int = 10,
    layer: int = 0,
    seed: int = 0,
) -> DivergenceResult:
    """Divergence of ε-perturbed copies of the exact spiking network (module docstring).

    Args:
        model: the network; it runs on its own device and in its own dtype.
        inputs: the first layer's input, (1 or n_pairs, >= transient + horizon, n_inputs) (both copies of a pair
            get the same rows), or a DriveConfig sampled with one realisation per pair.
        epsilon: norm ε of the membrane perturbation (0, or at least the floor :math:`\\epsilon_{mach}\\vartheta`).
        n_pairs: P, independent pairs (initial condition, perturbation direction and, for a drive, input).
        transient: steps before the perturbation.
        horizon: H, steps after it.
        fit_steps: steps 0..fit_steps of :math:`\\log d_t` enter the rate's slope; None means H.
        window: w of the spike-distance windows and of :math:`D_T`, in [1, H].
        layer: index of the spiking layer whose membranes are perturbed.
        seed: seed of the initial membranes and the perturbation directions.
    """
    model = check_model(model)
    n_pairs = check_int("n_pairs", n_pairs, 1)
    transient = check_int("transient", transient, 0)
    horizon = check_int("horizon", horizon, 1)
    fit_steps = horizon if fit_steps is None else check_int("fit_steps", fit_steps, 1)
    if fit_steps > horizon:
        raise ConfigError("fit_steps", fit_steps, f"must be <= horizon={horizon}")
    if check_int("window", window, 1) > horizon:
        raise ConfigError("window", window, f"must be <= horizon={horizon}")
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < len(model.layers):
        raise ConfigError("layer", layer, f"must be a spiking layer index in [0, {len(model.layers)})")
    dt = _common_dt(model)
    dtype = model.layers[0].input.weight.dtype
    floor = torch.finfo(dtype).eps * _threshold(model.layers[layer])
    epsilon = check_real("epsilon", epsilon, low=0.0)
    if 0.0 < epsilon < floor:
        raise ConfigError("epsilon", epsilon, f"must be 0 or >= {floor:.3g}, the membrane resolution of {dtype}")
    generator = torch.Generator().manual_seed(check_seed("seed", seed))
    x = _pair_inputs(inputs, model.config.n_inputs, n_pairs, transient + horizon).to(model.device, dtype)
    with torch.no_grad():
        state = _initial_state(model, n_pairs, dtype, generator)
        if transient > 0:
            state = model(x[:, :transient], state).state
        state = _perturbed_pairs(state, layer, epsilon, generator)
        u0 = state.layers[layer].u.to(torch.float64)
        d0 = torch.linalg.vector_norm(u0[n_pairs:] - u0[:n_pairs], dim=1)
        drive = x[:, transient:]
        out = model(torch.cat([drive, drive]), state, record=True)
    gaps = torch.cat([m[n_pairs:] - m[:n_pairs] for m in out.membranes], dim=2)
    distance = torch.linalg.vector_norm(gaps.to(torch.float64), dim=2)
    distance = torch.cat([d0[:, None], distance], dim=1).cpu()
    differ = torch.cat([s[n_pairs:] != s[:n_pairs] for s in out.layer_spikes], dim=2)
    hamming = differ.to(torch.float64).mean(dim=2).cpu()
    rates = _slopes(torch.log(distance[:, : fit_steps + 1].clamp_min(floor)), dt)
    final = hamming[:, -window:].mean(dim=1)
    merged = (distance[:, -1] <= floor) & (final == 0.0)
    return DivergenceResult(
        membrane_distance=distance,
        spike_distance=hamming,
        rates=rates,
        rate=Estimate.of(rates.tolist()),
        final_distance=Estimate.of(final.tolist()),
        merged_fraction=float(merged.double().mean()),
        flipped_fraction=float((hamming.sum(dim=1) > 0).double().mean()),
        epsilon=epsilon,
        floor=floor,
        window=window,
        fit_steps=fit_steps,
        dt=dt,
    )


# --------------------------------------------------------------------------------------------------
# λ_max with a standard error
# --------------------------------------------------------------------------------------------------


def largest_lyapunov_estimate(
    model: RSNN,
    config: LyapunovConfig | None = None,
    *,
    method: str = "surrogate",
    drive: DriveConfig | None = None,
    n_initial: int = 4,
    surrogate: Surrogate | None = None,
    seed: int = 0,
) -> Estimate:
    """λ_max (per unit time) over ``n_initial`` independent initial conditions, each with its own drive
    realisation: :func:`hrsnn.dynamics.snn.rsnn_lyapunov` with ``batch = n_initial``, as mean and SEM.

    Args:
        model: the network.
        config: run lengths; None means ``LyapunovConfig(n_exponents=1)`` (one tangent vector).
        method, drive, surrogate, seed: as in :func:`hrsnn.dynamics.snn.rsnn_lyapunov`.
        n_initial: number of initial conditions, >= 2.
    """
    n_initial = check_int("n_initial", n_initial, 2)
    config = LyapunovConfig(n_exponents=1) if config is None else config
    result = rsnn_lyapunov(model, config, method=method, drive=drive, batch=n_initial, surrogate=surrogate, seed=seed)
    lam = result.exponents[:, 0]
    if not bool(torch.isfinite(lam).all()):
        raise ConfigError("method", method, f"gave a non-finite λ_max ({lam.tolist()}); no estimate")
    return Estimate.of(lam.tolist())


# --------------------------------------------------------------------------------------------------
# edge of chaos
# --------------------------------------------------------------------------------------------------


RESOLVING_SEMS = 2.0
"""A crossing is *resolved* when both bracketing means lie more than this many SEMs from 0."""


@dataclass(frozen=True)
class EdgeOfChaosResult:
    """A stability measure over spectral radii and where its mean crosses 0.

    Attributes:
        radii: the spectral radii, ascending.
        estimates: the measure at each radius.
        crossings: every zero crossing of the mean, ascending: between two neighbouring radii whose means have
            opposite signs, by linear interpolation; a radius whose mean is exactly 0 is its own crossing.
        critical_radius: the first crossing, or None when the mean never changes sign.
        bracket: the two measured radii around the first crossing (equal for an exact 0), or None.
        resolved: whether both means of ``bracket`` lie more than :data:`RESOLVING_SEMS` SEMs from 0 (False
            without a crossing); a crossing that is not resolved may be noise.
        verdict: the finding in words.
    """

    radii: tuple[float, ...]
    estimates: tuple[Estimate, ...]
    crossings: tuple[float, ...]
    critical_radius: float | None
    bracket: tuple[float, float] | None
    resolved: bool
    verdict: str


def _scaled_copy(model: RSNN, layer: int) -> Callable[[float], RSNN]:
    """Radius → a copy of ``model`` whose layer ``layer`` has :math:`W \\odot M` scaled to that spectral radius."""
    # imported here: hrsnn.pruning imports hrsnn.dynamics, so a module-level import would make a cycle
    from hrsnn.pruning.base import clone_model

    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < len(model.layers):
        raise ConfigError("layer", layer, f"must be a spiking layer index in [0, {len(model.layers)})")
    weight = model.layers[layer].effective_recurrent_weight()
    if weight is None:
        raise ConfigError("layer", layer, "is a feed-forward layer; it has no recurrent weight to scale")
    weight = weight.detach()

    def build(radius: float) -> RSNN:
        copy = clone_model(model)
        with torch.no_grad():
            copy.layers[layer].weight_rec.copy_(scale_to_spectral_radius(weight, radius))
        return copy

    return build


def _crossings(radii: Sequence[float], means: Sequence[float]) -> list[tuple[float, int, int]]:
    """Every zero crossing as (radius, index below, index above), ascending."""
    found = []
    for i, (r, m) in enumerate(zip(radii, means, strict=True)):
        if m == 0.0:
            found.append((r, i, i))
        elif i + 1 < len(radii) and m * means[i + 1] < 0.0:
            r1, m1 = radii[i + 1], means[i + 1]
            found.append((r + (0.0 - m) * (r1 - r) / (m1 - m), i, i + 1))
    return found


def _edge_result(radii: tuple[float, ...], estimates: tuple[Estimate, ...]) -> EdgeOfChaosResult:
    means = [e.mean for e in estimates]
    found = _crossings(radii, means)
    if not found:
        side = "< 0 (stable)" if means[0] < 0.0 else "> 0 (chaotic)"
        verdict = f"no crossing: mean {side} at every radius in [{radii[0]:g}, {radii[-1]:g}]"
        return EdgeOfChaosResult(radii, estimates, (), None, None, False, verdict)
    critical, i, j = found[0]
    resolved = all(abs(estimates[k].mean) > RESOLVING_SEMS * estimates[k].sem for k in (i, j))
    where = (
        f"mean is 0 at radius {radii[i]:g}"
        if i == j
        else f"mean changes sign between radii {radii[i]:g} ({means[i]:+.4g}) and {radii[j]:g} ({means[j]:+.4g})"
    )
    quality = "resolved" if resolved else f"not resolved (a bracketing mean within {RESOLVING_SEMS:g} SEM of 0)"
    verdict = f"{where}: critical radius {critical:.4g}, {quality}; {len(found)} crossing(s) in all"
    crossings = tuple(c for c, _, _ in found)
    return EdgeOfChaosResult(radii, estimates, crossings, critical, (radii[i], radii[j]), resolved, verdict)


def edge_of_chaos(
    model: RSNN | Callable[[float], RSNN],
    radii: Sequence[float],
    measure: Measure,
    *,
    layer: int = 0,
) -> EdgeOfChaosResult:
    """Sweep the spectral radius of a recurrent weight and find where ``measure`` crosses 0 (module docstring).

    Args:
        model: a network, whose layer ``layer`` gets :math:`W \\odot M` rescaled to each radius on a copy (the
            model itself is not changed), or a builder called with each radius.
        radii: at least two distinct spectral radii >= 0 (sorted ascending here).
        measure: model → Estimate, positive = chaotic, e.g. ``lambda m: perturbation_divergence(m, drive,
            epsilon=0.1).rate`` or ``lambda m: largest_lyapunov_estimate(m, drive=drive)``.
        layer: the layer whose recurrent weight is scaled (with a model).
    """
    if isinstance(radii, str | bytes) or not isinstance(radii, Sequence) or len(radii) < 2:
        raise ConfigError("radii", radii, "must be a sequence of at least two spectral radii")
    values = sorted(check_real(f"radii[{i}]", r, low=0.0) for i, r in enumerate(radii))
    if len(set(values)) != len(values):
        raise ConfigError("radii", list(radii), "must be distinct")
    if not callable(measure):
        raise ConfigError("measure", type(measure).__name__, "must be a callable model -> Estimate")
    if isinstance(model, RSNN):
        build = _scaled_copy(model, layer)
    elif callable(model):
        build = model
    else:
        raise ConfigError("model", type(model).__name__, "must be an RSNN or a callable radius -> RSNN")
    estimates = []
    for radius in values:
        estimate = measure(check_model(build(radius)))
        if not isinstance(estimate, Estimate):
            raise ConfigError("measure", type(estimate).__name__, "must return an hrsnn.stats.Estimate")
        if not math.isfinite(estimate.mean):
            raise ConfigError("measure", estimate.mean, f"gave a non-finite mean at radius {radius:g}")
        estimates.append(estimate)
    return _edge_result(tuple(values), tuple(estimates))
