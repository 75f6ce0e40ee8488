r"""Lyapunov analysis of the RSNNs of :mod:`hrsnn.network`: the spiking map and a fitted rate model.

**State vector.** The map's state is the concatenation over the spiking layers, in order, of

* ALIF layers (kind "alif"): :math:`(u, s, \eta)`, 3N entries: membrane, spikes of the step, adaptation trace;
* LIF layers ("lif", β = 0, η constant) and hard-reset layers ("lif_hard"): :math:`(u, s)`, 2N entries.

The readout does not feed back and is left out. One step is the core's own step (:func:`hrsnn.neurons.alif_step`
or :func:`hrsnn.neurons.lif_hard_reset_step`) in float64, with the current
:math:`I_t = W_{in} x_t + b_{in} + (W_{rec}\odot M) s_{t-1} + b_{rec}`, where :math:`x_t` is the drive for the
first layer and the previous layer's spikes of the same step for the others. Because :math:`s_t` is a function of
:math:`(u_t, \eta_t)` (of :math:`v_t` for the hard reset), every Jacobian has rank at most 2N per ALIF layer and N
per LIF layer: the last :math:`\sum_l N_l` exponents of the full spectrum are exactly −∞ and are reported as −∞.

**Tangent map** (ALIF; LIF is β = 0, ρ = 1 without the η rows), with ψ the surrogate derivative at
:math:`u_t - \theta_t`:

.. math::

    \delta I_t &= W_{in}\,\delta x_t + W\,\delta s_{t-1},\qquad
    \delta\eta_t = \rho\,\delta\eta_{t-1} + (1-\rho)\,\delta s_{t-1},\qquad \delta\theta_t = \beta\,\delta\eta_t \\
    \delta u_t &= \alpha\,\delta u_{t-1} + (1-\alpha) R_m\,\delta I_t - dt\,(s_{t-1}\,\delta\theta_t
        + \theta_t\,\delta s_{t-1}),\qquad \delta s_t = \psi_t\,(\delta u_t - \delta\theta_t)

and for the hard reset (:math:`v_t = \alpha u_{t-1} + I_t`, :math:`u_t = (1 - s_t) v_t`, ψ at :math:`v_t - \vartheta`):
:math:`\delta v_t = \alpha\,\delta u_{t-1} + \delta I_t`, :math:`\delta s_t = \psi_t\,\delta v_t`,
:math:`\delta u_t = (1 - s_t - v_t\psi_t)\,\delta v_t`. These are exactly what ``torch.func`` returns through
:func:`hrsnn.surrogates.spike` (tests check them against ``jacrev``); they are coded by hand so that an N×m tangent
basis costs one sparse product and a few elementwise operations per step, O(nnz(W)·m + N·m).

**How the spike discontinuity is handled — three readings** (``method`` of :func:`rsnn_lyapunov`):

* ``"surrogate"`` — the *surrogate-smoothed Jacobian* of the discrete map: :math:`\partial s/\partial u = \psi`.
  These are the exponents of the network with each Heaviside step replaced by a smooth ramp of slope ψ, i.e. of the
  same linearisation through which BPTT gradients flow. λ₁ > 0 means tangent vectors, and hence gradients over long
  horizons, grow. They depend on the surrogate's width and scale, and they are *not* exponents of the spiking
  network itself, whose map is discontinuous.
* ``"exact"`` — the *almost-everywhere* Jacobian of the discrete map (:class:`ZeroSurrogate`, ψ = 0). The map is
  piecewise smooth and, wherever it is differentiable, an infinitesimal perturbation never moves a spike, so for
  the soft reset (ALIF, LIF) the Jacobian is block-triangular with diagonal blocks diag(α), 0, diag(ρ) and the
  spectrum is :math:`\{-1/\tau_{m,i}\} \cup \{-1/\tau_{adp,i}\} \cup \{-\infty\}`: always stable (for the
  hard reset a spike also erases the membrane perturbation, :math:`\delta u_t = (1 - s_t)\,\delta v_t`, so every
  neuron that spikes contributes −∞ instead of :math:`-1/\tau_{m,i}`). Finite
  perturbations can still flip spikes and make trajectories diverge ("stable chaos"); no infinitesimal exponent
  sees that. This reading is the baseline that shows what the two smooth readings add.
* ``"rate"`` — the *linearised rate model* :math:`\tau_i \dot r_i = -r_i + \phi(h_i)`, :math:`h = W r + c`,
  discretised like the membrane (exponential Euler, :math:`\alpha = e^{-dt/\tau_m}`):

  .. math::

      r_{t+1} = \alpha\,r_t + (1-\alpha)\,\phi(h_t),\qquad
      J_t = \mathrm{diag}(\alpha) + \mathrm{diag}\big((1-\alpha)\,\phi'(h_t)\big)\,W

  with :math:`c_t = W_{in} x_t + b_{in} + b_{rec}` (previous layer's rates for deeper layers) and φ a sigmoid
  :math:`\phi(h) = r_{max}\,\sigma(a(h - h_0))` fitted per layer, by least squares, to the measured time-averaged
  (current, rate) pairs of the neurons of the spiking network under the same drive. Its exponents describe the
  population-rate dynamics that the spiking network approximates (the mean-field reading): λ₁ > 0 is rate chaos.
  Adaptation and spike timing are ignored. Rates are in spikes per step.

**Drive.** An undriven spiking network is often silent, so the first layer receives a configurable input
(:class:`DriveConfig`: zeros, constant, Poisson spikes or Gaussian noise, seeded). Each initial condition gets its
own realisation, so the spread over initial conditions includes the input noise; the exponents are those of the
driven (non-autonomous) system.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar, Literal, NamedTuple

import numpy as np
import torch
from scipy.optimize import least_squares
from torch import Tensor

from hrsnn._validate import check_int, check_model, check_real, check_tensor
from hrsnn.dynamics.lyapunov import (
    FTLEConfig,
    LyapunovConfig,
    LyapunovResult,
    NodeExponents,
    TangentSystem,
    lyapunov_spectrum,
    node_ftle,
)
from hrsnn.errors import ConfigError
from hrsnn.network import RSNN, SpikingLayer
from hrsnn.neurons import ALIFState, alif_step, lif_hard_reset_step
from hrsnn.surrogates import Surrogate

__all__ = [
    "DRIVES",
    "LAYER_MAPS",
    "METHODS",
    "DriveConfig",
    "RateMap",
    "SigmoidGain",
    "SpikingMap",
    "ZeroSurrogate",
    "driven_gains",
    "fit_rate_map",
    "fit_sigmoid_gain",
    "rsnn_lyapunov",
    "rsnn_node_ftle",
]

SPARSE_MAX_DENSITY = 0.25
"""Recurrent weights at most this dense use a CSR product in the tangent map (when few columns are propagated)."""

SPARSE_MAX_COLUMNS = 256
"""Largest batch × m for which the CSR product is used; above it a dense product is faster on CPU (measured)."""


# --------------------------------------------------------------------------------------------------
# drive
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DriveConfig:
    """Input to the first layer during a run, :math:`x_t \\in \\mathbb{R}^{n_{in}}` per step.

    Kinds: "zeros" (:math:`x_t = 0`), "constant" (:math:`x_t = \\text{mean}`), "poisson"
    (:math:`x_{t,k} \\sim \\text{Bernoulli}(\\text{rate})`, i.e. Poisson spikes at ``rate`` per step) and "gaussian"
    (:math:`x_{t,k} = \\text{mean} + \\text{std}\\,\\varepsilon`, :math:`\\varepsilon \\sim N(0, 1)`).

    Attributes:
        kind: one of :data:`DRIVES`.
        rate: spike probability per input line and step, in [0, 1] (poisson).
        mean: value (constant) or mean (gaussian).
        std: standard deviation (gaussian), >= 0.
        seed: seed of the drive's generator.
    """

    kind: Literal["zeros", "constant", "poisson", "gaussian"] = "poisson"
    rate: float = 0.05
    mean: float = 0.0
    std: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or self.kind not in DRIVES:
            raise ConfigError("drive.kind", self.kind, f"must be one of {sorted(DRIVES)}")
        rate = check_real("drive.rate", self.rate, low=0.0)
        if rate > 1.0:
            raise ConfigError("drive.rate", self.rate, "must lie in [0, 1] (a probability per step)")
        object.__setattr__(self, "rate", rate)
        object.__setattr__(self, "mean", check_real("drive.mean", self.mean))
        object.__setattr__(self, "std", check_real("drive.std", self.std, low=0.0))
        check_int("drive.seed", self.seed, 0)

    def sample(self, batch: int, n_steps: int, n_inputs: int) -> Tensor:
        """Draw the drive, float32 of shape (batch, n_steps, n_inputs), from a generator seeded with ``seed``."""
        check_int("batch", batch, 1)
        check_int("n_steps", n_steps, 1)
        check_int("n_inputs", n_inputs, 1)
        generator = torch.Generator().manual_seed(self.seed)
        return DRIVES[self.kind](self, (batch, n_steps, n_inputs), generator)


def _drive_zeros(cfg: DriveConfig, shape: tuple[int, int, int], generator: torch.Generator) -> Tensor:
    del cfg, generator
    return torch.zeros(shape)


def _drive_constant(cfg: DriveConfig, shape: tuple[int, int, int], generator: torch.Generator) -> Tensor:
    del generator
    return torch.full(shape, cfg.mean)


def _drive_poisson(cfg: DriveConfig, shape: tuple[int, int, int], generator: torch.Generator) -> Tensor:
    return (torch.rand(shape, generator=generator) < cfg.rate).float()


def _drive_gaussian(cfg: DriveConfig, shape: tuple[int, int, int], generator: torch.Generator) -> Tensor:
    return cfg.mean + cfg.std * torch.randn(shape, generator=generator)


DRIVES: Mapping[str, Callable[[DriveConfig, tuple[int, int, int], torch.Generator], Tensor]] = MappingProxyType(
    {"zeros": _drive_zeros, "constant": _drive_constant, "poisson": _drive_poisson, "gaussian": _drive_gaussian}
)
"""Read-only map from a drive kind to its sampler."""


# --------------------------------------------------------------------------------------------------
# surrogate for the almost-everywhere Jacobian
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ZeroSurrogate:
    """The almost-everywhere derivative of the Heaviside step: :math:`\\psi(v) = 0`.

    Passing it as the surrogate gives the exact Jacobian of the discrete spiking map wherever that map is
    differentiable (the ``"exact"`` reading of the module docstring). It is not a training surrogate.
    """

    name: ClassVar[str] = "zero"
    scale: float = 0.0

    def shape(self, v: Tensor) -> Tensor:
        """ψ(v) = 0."""
        return torch.zeros_like(v)

    def derivative(self, v: Tensor) -> Tensor:
        """ψ(v) = 0."""
        return torch.zeros_like(v)


# --------------------------------------------------------------------------------------------------
# layer maps
# --------------------------------------------------------------------------------------------------


class _Recurrent:
    """The recurrent projection :math:`W s + b` and its tangent :math:`W\\,\\delta s` (CSR when sparse)."""

    def __init__(self, weight: Tensor | None, bias: Tensor | None, size: int) -> None:
        self.weight = weight
        self.bias = bias if bias is not None else torch.zeros(size, dtype=torch.float64)
        self.sparse: Tensor | None = None
        if weight is not None and weight.numel() > 0:
            density = float(torch.count_nonzero(weight)) / weight.numel()
            if density <= SPARSE_MAX_DENSITY:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
                    self.sparse = weight.to_sparse_csr()

    def current(self, s: Tensor) -> Tensor:
        """:math:`W s + b` for spikes (B, N); just b without recurrence."""
        if self.weight is None:
            return self.bias.expand_as(s)
        return s @ self.weight.t() + self.bias

    def tangent(self, ds: Tensor) -> Tensor | None:
        """:math:`W\\,\\delta s` for tangents (B, N, m); None without recurrence."""
        if self.weight is None:
            return None
        batch, n, m = ds.shape
        if self.sparse is not None and batch * m <= SPARSE_MAX_COLUMNS:
            flat = ds.permute(1, 0, 2).reshape(n, batch * m)
            return (self.sparse @ flat).reshape(n, batch, m).permute(1, 0, 2)
        return torch.matmul(self.weight, ds)


class _LayerParams(NamedTuple):
    """float64 copies of one spiking layer's parameters."""

    size: int
    w_in: Tensor
    b_in: Tensor
    recurrent: _Recurrent
    alpha: Tensor
    rho: Tensor
    b0: float
    beta: float
    r_m: float
    dt: float
    hard_threshold: float


def _layer_params(layer: SpikingLayer) -> _LayerParams:
    neuron = layer.config.neuron
    f64 = {"dtype": torch.float64, "device": "cpu"}
    n = layer.size
    w_rec = layer.effective_recurrent_weight()
    tau_m = layer.tau_m.tau.detach().to(**f64)
    adaptive = neuron.kind == "alif" and layer.tau_adp is not None
    rho = torch.exp(-neuron.dt / layer.tau_adp.tau.detach().to(**f64)) if adaptive else torch.ones(n, **f64)
    return _LayerParams(
        size=n,
        w_in=layer.input.weight.detach().to(**f64),
        b_in=layer.input.bias.detach().to(**f64) if layer.input.bias is not None else torch.zeros(n, **f64),
        recurrent=_Recurrent(
            None if w_rec is None else w_rec.detach().to(**f64),
            None if layer.bias_rec is None else layer.bias_rec.detach().to(**f64),
            n,
        ),
        alpha=torch.exp(-neuron.dt / tau_m),
        rho=rho,
        b0=neuron.b0,
        beta=neuron.beta if adaptive else 0.0,
        r_m=neuron.r_m,
        dt=neuron.dt,
        hard_threshold=neuron.hard_threshold,
    )


Coefficients = tuple[Tensor, ...]


class _AdaptiveLayer:
    """ALIF (state (u, s, η)) or soft-reset LIF (state (u, s), β = 0, ρ = 1) layer map; equations in the module doc."""

    def __init__(self, params: _LayerParams, surrogate: Surrogate, adaptive: bool) -> None:
        self.p = params
        self.surrogate = surrogate
        self.adaptive = adaptive
        n = params.size
        self.width = 3 * n if adaptive else 2 * n
        self.rank = 2 * n if adaptive else n
        self._eta_fixed = torch.zeros(1, n, dtype=torch.float64)

    def initial(self, u: Tensor) -> Tensor:
        """State with membrane u and s = η = 0."""
        zeros = torch.zeros_like(u)
        return torch.cat([u, zeros, zeros] if self.adaptive else [u, zeros], dim=1)

    def step(self, x: Tensor, c: Tensor, record: bool) -> tuple[Tensor, Tensor, Tensor, Coefficients]:
        """One step; returns (state, spikes, current I_t, tangent coefficients (s_{t-1}, θ_t, ψ_t) if ``record``)."""
        p, n = self.p, self.p.size
        u, s = x[:, :n], x[:, n : 2 * n]
        eta = x[:, 2 * n :] if self.adaptive else self._eta_fixed.expand_as(u)
        current = c + p.recurrent.current(s)
        s_new, state = alif_step(
            current, ALIFState(u, s, eta), p.alpha, p.rho,
            b0=p.b0, beta=p.beta, surrogate=self.surrogate, r_m=p.r_m, dt=p.dt,
        )  # fmt: skip
        parts = [state.u, state.s, state.eta] if self.adaptive else [state.u, state.s]
        coefficients: Coefficients = ()
        if record:
            theta = p.b0 + p.beta * state.eta
            coefficients = (s, theta, self.surrogate.derivative(state.u - theta))
        return torch.cat(parts, dim=1), s_new, current, coefficients

    def tangent(self, q: Tensor, dc: Tensor | None, coefficients: Coefficients) -> tuple[Tensor, Tensor]:
        """Tangent step of a basis slice (B, width, m); returns (new slice, δs_t)."""
        p, n = self.p, self.p.size
        s_prev, theta, psi = (c[..., None] for c in coefficients)
        du, ds = q[:, :n], q[:, n : 2 * n]
        di = p.recurrent.tangent(ds)
        if dc is not None:
            di = dc if di is None else di + dc
        alpha = p.alpha[:, None]
        du_new = alpha * du - p.dt * theta * ds
        if di is not None:
            du_new = du_new + ((1.0 - alpha) * p.r_m) * di
        if not self.adaptive:
            ds_new = psi * du_new
            return torch.cat([du_new, ds_new], dim=1), ds_new
        rho = p.rho[:, None]
        de_new = rho * q[:, 2 * n :] + (1.0 - rho) * ds
        dtheta = p.beta * de_new
        du_new = du_new - p.dt * s_prev * dtheta
        ds_new = psi * (du_new - dtheta)
        return torch.cat([du_new, ds_new, de_new], dim=1), ds_new


class _HardResetLayer:
    """Hard-reset LIF layer map, state (u, s); equations in the module docstring."""

    def __init__(self, params: _LayerParams, surrogate: Surrogate) -> None:
        self.p = params
        self.surrogate = surrogate
        self.width = 2 * params.size
        self.rank = params.size

    def initial(self, u: Tensor) -> Tensor:
        """State with membrane u and s = 0."""
        return torch.cat([u, torch.zeros_like(u)], dim=1)

    def step(self, x: Tensor, c: Tensor, record: bool) -> tuple[Tensor, Tensor, Tensor, Coefficients]:
        """One step; returns (state, spikes, current, coefficients (ψ_t, 1 − s_t − v_t ψ_t) if ``record``)."""
        p, n = self.p, self.p.size
        u, s = x[:, :n], x[:, n:]
        current = c + p.recurrent.current(s)
        s_new, state = lif_hard_reset_step(
            current, ALIFState(u, s, torch.zeros_like(u)), p.alpha, threshold=p.hard_threshold, surrogate=self.surrogate
        )
        coefficients: Coefficients = ()
        if record:
            v = p.alpha * u + current
            psi = self.surrogate.derivative(v - p.hard_threshold)
            coefficients = (psi, 1.0 - s_new - v * psi)
        return torch.cat([state.u, state.s], dim=1), s_new, current, coefficients

    def tangent(self, q: Tensor, dc: Tensor | None, coefficients: Coefficients) -> tuple[Tensor, Tensor]:
        """Tangent step of a basis slice (B, 2N, m); returns (new slice, δs_t)."""
        p, n = self.p, self.p.size
        psi, gain = (c[..., None] for c in coefficients)
        dv = p.alpha[:, None] * q[:, :n]
        di = p.recurrent.tangent(q[:, n:])
        if di is not None:
            dv = dv + di
        if dc is not None:
            dv = dv + dc
        ds_new = psi * dv
        return torch.cat([gain * dv, ds_new], dim=1), ds_new


_LayerMap = _AdaptiveLayer | _HardResetLayer

LAYER_MAPS: Mapping[str, Callable[[_LayerParams, Surrogate], _LayerMap]] = MappingProxyType(
    {
        "alif": lambda params, surrogate: _AdaptiveLayer(params, surrogate, adaptive=True),
        "lif": lambda params, surrogate: _AdaptiveLayer(params, surrogate, adaptive=False),
        "lif_hard": _HardResetLayer,
    }
)
"""Read-only map from a neuron kind to its layer map."""


def _common_dt(model: RSNN) -> float:
    dts = [layer.config.neuron.dt for layer in model.layers]
    for i, dt in enumerate(dts):
        if dt != dts[0]:
            raise ConfigError(f"model.layers[{i}].neuron.dt", dt, f"differs from layer 0 (dt={dts[0]}); one dt needed")
    return float(dts[0])


def _check_inputs(inputs: object, n_inputs: int) -> Tensor:
    x = check_tensor("inputs", inputs, 3, finite=True)
    if x.shape[-1] != n_inputs:
        raise ConfigError("inputs", tuple(x.shape), f"must be (batch, steps, {n_inputs}) for this model")
    return x.detach().cpu()


class _Offsets(NamedTuple):
    starts: tuple[int, ...]
    widths: tuple[int, ...]


def _offsets(widths: Sequence[int]) -> _Offsets:
    starts = [0]
    for w in widths[:-1]:
        starts.append(starts[-1] + w)
    return _Offsets(tuple(starts), tuple(widths))


class _DrivenNetwork:
    """Shared plumbing of the spiking and rate maps: drive lookup and input-current bookkeeping."""

    def __init__(self, model: RSNN, inputs: Tensor) -> None:
        self.model = model
        self._inputs = _check_inputs(inputs, model.config.n_inputs)
        self._dt = _common_dt(model)
        self._params = tuple(_layer_params(layer) for layer in model.layers)

    @property
    def dt(self) -> float:
        """Time per step (the neurons' dt)."""
        return self._dt

    @property
    def inputs(self) -> Tensor:
        """The first-layer input (B, T, n_inputs)."""
        return self._inputs

    @property
    def n_steps(self) -> int:
        """Length of the drive; steps beyond it cannot be run."""
        return self._inputs.shape[1]

    def _drive(self, t: int, batch: int) -> Tensor:
        """First-layer external current :math:`W_{in} x_t + b_{in}`, (B, N_0)."""
        if not 0 <= t < self._inputs.shape[1]:
            raise ConfigError("t", t, f"the drive holds {self._inputs.shape[1]} steps; sample a longer one")
        if self._inputs.shape[0] not in (1, batch):
            raise ConfigError("x", batch, f"batch must be 1 or match the drive's batch {self._inputs.shape[0]}")
        x = self._inputs[:, t].to(torch.float64)
        p = self._params[0]
        return (x @ p.w_in.t() + p.b_in).expand(batch, -1)

    def _check_state(self, x: Tensor, dim: int) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != dim:
            raise ConfigError("x", tuple(getattr(x, "shape", ())), f"must be (batch, {dim})")
        return x

    def advance(self, x: Tensor, t0: int, n: int) -> Tensor:
        """``n`` steps from step ``t0`` (no tangents; subclasses define ``dim`` and ``_step``)."""
        x = self._check_state(x, self.dim).to(torch.float64)
        with torch.no_grad():
            for t in range(t0, t0 + n):
                x = self._step(x, t, record=False)[0]
        return x


# --------------------------------------------------------------------------------------------------
# the spiking map
# --------------------------------------------------------------------------------------------------


class _SpikingLinearization:
    def __init__(
        self, layers: tuple[_LayerMap, ...], offsets: _Offsets, coefficients: list[list[Coefficients]]
    ) -> None:
        self._layers = layers
        self._offsets = offsets
        self._coefficients = coefficients

    def __len__(self) -> int:
        return len(self._coefficients)

    def apply(self, k: int, q: Tensor) -> Tensor:
        out = []
        ds: Tensor | None = None
        for layer, start, width, coeffs in zip(
            self._layers, self._offsets.starts, self._offsets.widths, self._coefficients[k], strict=True
        ):
            dc = None if ds is None else torch.matmul(layer.p.w_in, ds)
            q_new, ds = layer.tangent(q[:, start : start + width], dc, coeffs)
            out.append(q_new)
        return torch.cat(out, dim=1)


class SpikingMap(_DrivenNetwork):
    """The discrete RSNN map on the state of the module docstring, driven by given inputs (a TangentSystem).

    Args:
        model: the network (its parameters are copied to float64; later changes to the model are not seen).
        inputs: first-layer input, (B, T, n_inputs) with B = 1 (shared) or the batch of initial conditions.
        surrogate: ψ used in the tangent map; None means the model's own surrogate, :class:`ZeroSurrogate` the
            almost-everywhere Jacobian.
    """

    def __init__(self, model: RSNN, inputs: Tensor, *, surrogate: Surrogate | None = None) -> None:
        model = check_model(model)
        super().__init__(model, inputs)
        if surrogate is None:
            surrogate = model.layers[0].surrogate
        if not callable(getattr(surrogate, "derivative", None)):
            raise ConfigError("surrogate", surrogate, "must be a Surrogate (with a derivative method)")
        self._layers = tuple(
            LAYER_MAPS[layer.config.neuron.kind](params, surrogate)
            for layer, params in zip(model.layers, self._params, strict=True)
        )
        self._offsets = _offsets([layer.width for layer in self._layers])
        self._thresholds = tuple(
            layer.config.neuron.hard_threshold if layer.config.neuron.kind == "lif_hard" else layer.config.neuron.b0
            for layer in model.layers
        )

    @property
    def dim(self) -> int:
        """State dimension: Σ 3N (ALIF) or 2N (LIF) over the layers."""
        return sum(self._offsets.widths)

    @property
    def rank(self) -> int:
        """Σ 2N (ALIF) or N (LIF): the s-block is a function of the rest, so the other exponents are −∞."""
        return sum(layer.rank for layer in self._layers)

    @property
    def layer_slices(self) -> tuple[slice, ...]:
        """Slice of each layer's block in the state vector."""
        return tuple(slice(s, s + w) for s, w in zip(self._offsets.starts, self._offsets.widths, strict=True))

    def neuron_coordinates(self, layer: int | None = None) -> Tensor:
        """Indices of the membrane coordinates :math:`u_i` of one layer (or of all layers, in order)."""
        layers = range(len(self._layers)) if layer is None else [layer]
        if layer is not None and not (isinstance(layer, int) and 0 <= layer < len(self._layers)):
            raise ConfigError("layer", layer, f"must be an index in [0, {len(self._layers)})")
        return torch.cat([torch.arange(self._layers[i].p.size) + self._offsets.starts[i] for i in layers])

    def initial_state(self, batch: int, generator: torch.Generator) -> Tensor:
        """Random initial states (B, dim): :math:`u \\sim U[0, \\vartheta_0)` (b0, or the hard threshold), s = η = 0."""
        check_int("batch", batch, 1)
        parts = [
            layer.initial(torch.rand(batch, layer.p.size, generator=generator, dtype=torch.float64) * threshold)
            for layer, threshold in zip(self._layers, self._thresholds, strict=True)
        ]
        return torch.cat(parts, dim=1)

    def _step(self, x: Tensor, t: int, record: bool) -> tuple[Tensor, list[Tensor], list[Tensor], list[Coefficients]]:
        c = self._drive(t, x.shape[0])
        parts, spikes, currents, coefficients = [], [], [], []
        for layer, sl in zip(self._layers, self.layer_slices, strict=True):
            if spikes:
                c = spikes[-1] @ layer.p.w_in.t() + layer.p.b_in
            part, s_new, current, coeffs = layer.step(x[:, sl], c, record)
            parts.append(part)
            spikes.append(s_new)
            currents.append(current)
            coefficients.append(coeffs)
        return torch.cat(parts, dim=1), spikes, currents, coefficients

    def step(self, x: Tensor, t: int) -> Tensor:
        """The map :math:`x_{t+1} = F_t(x_t)` on a batch (B, dim): pure, so ``torch.func`` transforms apply."""
        return self._step(self._check_state(x, self.dim), t, record=False)[0]

    def linearize(self, x: Tensor, t0: int, n: int) -> tuple[Tensor, _SpikingLinearization]:
        """``n`` steps from ``t0``, keeping the tangent coefficients of each step."""
        x = self._check_state(x, self.dim).to(torch.float64)
        coefficients = []
        with torch.no_grad():
            for t in range(t0, t0 + n):
                x, _, _, coeffs = self._step(x, t, record=True)
                coefficients.append(coeffs)
        return x, _SpikingLinearization(self._layers, self._offsets, coefficients)

    def probe(self, x: Tensor, t0: int, n: int) -> tuple[Tensor, tuple[Tensor, ...], tuple[Tensor, ...]]:
        """Run ``n`` steps and measure each neuron's rate and mean current.

        Returns:
            ``(state, rates, currents)``: per layer, :math:`r_i = \\langle s_{i,t}\\rangle` (spikes per step) and
            :math:`h_i = \\langle I_{i,t}\\rangle`, averaged over steps and the batch.
        """
        check_int("n", n, 1)
        x = self._check_state(x, self.dim).to(torch.float64)
        rate_sums = [torch.zeros(layer.p.size, dtype=torch.float64) for layer in self._layers]
        current_sums = [torch.zeros(layer.p.size, dtype=torch.float64) for layer in self._layers]
        with torch.no_grad():
            for t in range(t0, t0 + n):
                x, spikes, currents, _ = self._step(x, t, record=False)
                for i, (s, current) in enumerate(zip(spikes, currents, strict=True)):
                    rate_sums[i] += s.sum(dim=0)
                    current_sums[i] += current.sum(dim=0)
        count = n * x.shape[0]
        return x, tuple(r / count for r in rate_sums), tuple(h / count for h in current_sums)


# --------------------------------------------------------------------------------------------------
# the rate model
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigmoidGain:
    """Gain function :math:`\\phi(h) = r_{max}\\,\\sigma(a(h - h_0))`, :math:`\\sigma(z) = 1/(1 + e^{-z})`.

    Its derivative is :math:`\\phi'(h) = a\\,\\phi(h)\\,(1 - \\phi(h)/r_{max})`.

    Attributes:
        r_max: saturation rate r_max (spikes per step), > 0.
        slope: gain a, > 0.
        threshold: half-activation current h_0.
    """

    r_max: float
    slope: float
    threshold: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "r_max", check_real("gain.r_max", self.r_max, low=0.0, strict=True))
        object.__setattr__(self, "slope", check_real("gain.slope", self.slope, low=0.0, strict=True))
        object.__setattr__(self, "threshold", check_real("gain.threshold", self.threshold))

    def __call__(self, h: Tensor) -> Tensor:
        """:math:`\\phi(h)`."""
        return self.r_max * torch.sigmoid(self.slope * (h - self.threshold))

    def derivative(self, h: Tensor) -> Tensor:
        """:math:`\\phi'(h) = a\\,\\phi(h)(1 - \\phi(h)/r_{max})`."""
        phi = self(h)
        return self.slope * phi * (1.0 - phi / self.r_max)


def fit_sigmoid_gain(currents: Tensor, rates: Tensor) -> SigmoidGain:
    """Least-squares fit of :class:`SigmoidGain` to (current, rate) pairs: :math:`\\min \\sum_i (\\phi(h_i) - r_i)^2`.

    Bounds: :math:`0 < r_{max} \\le 1` (at most one spike per step), a > 0. The start is r_max = 1.25·max r
    (capped at 1), h_0 = the current of the neuron whose rate is nearest r_max/2, a = 4/std(h).

    Args:
        currents: mean input currents :math:`h_i`, 1-D.
        rates: rates :math:`r_i` in spikes per step, same shape, in [0, 1], not all zero.
    """
    h = check_tensor("currents", currents, 1, finite=True).detach().to(torch.float64).cpu().numpy()
    r = check_tensor("rates", rates, 1, finite=True).detach().to(torch.float64).cpu().numpy()
    if h.shape != r.shape or h.size < 3:
        raise ConfigError("rates", r.shape, f"must match currents {h.shape} and hold at least 3 neurons")
    if (r < 0).any() or (r > 1).any():
        raise ConfigError("rates", float(r.min() if (r < 0).any() else r.max()), "must lie in [0, 1] spikes per step")
    if r.max() <= 0:
        raise ConfigError("rates", 0.0, "all neurons are silent; the gain cannot be fitted (strengthen the drive)")
    r_max0 = min(1.0, 1.25 * float(r.max()))
    h0 = float(h[np.argmin(np.abs(r - 0.5 * r_max0))])
    slope0 = 4.0 / max(float(np.std(h)), 1e-6)

    def residual(theta: np.ndarray) -> np.ndarray:
        r_max, slope, threshold = theta
        z = np.clip(slope * (h - threshold), -500.0, 500.0)
        return r_max / (1.0 + np.exp(-z)) - r

    fit = least_squares(
        residual,
        x0=np.array([r_max0, slope0, h0]),
        bounds=(np.array([1e-12, 1e-12, -np.inf]), np.array([1.0, np.inf, np.inf])),
        x_scale="jac",
        xtol=1e-15,
        ftol=1e-15,
        gtol=1e-15,
        max_nfev=10_000,
    )
    r_max, slope, threshold = (float(v) for v in fit.x)
    return SigmoidGain(r_max, slope, threshold)


class _RateLinearization:
    def __init__(
        self, recurrents: tuple[_Recurrent, ...], params: tuple[_LayerParams, ...], gains: list[list[Tensor]]
    ) -> None:
        self._recurrents = recurrents
        self._params = params
        self._gains = gains

    def __len__(self) -> int:
        return len(self._gains)

    def apply(self, k: int, q: Tensor) -> Tensor:
        out = []
        start = 0
        dr_prev: Tensor | None = None
        for p, rec, g in zip(self._params, self._recurrents, self._gains[k], strict=True):
            dr = q[:, start : start + p.size]
            dh = rec.tangent(dr)
            if dr_prev is not None:
                dc = torch.matmul(p.w_in, dr_prev)
                dh = dc if dh is None else dh + dc
            dr_new = p.alpha[:, None] * dr
            if dh is not None:
                dr_new = dr_new + g[..., None] * dh
            out.append(dr_new)
            dr_prev = dr_new
            start += p.size
        return torch.cat(out, dim=1)


class RateMap(_DrivenNetwork):
    """The linearised rate model of the module docstring (a TangentSystem); state = rates of all layers (Σ N).

    Args:
        model: the network whose weights, biases and τ_m are used.
        inputs: first-layer input (B, T, n_inputs), as for :class:`SpikingMap`.
        gains: one gain function per spiking layer (see :func:`fit_rate_map`).
    """

    def __init__(self, model: RSNN, inputs: Tensor, gains: Sequence[SigmoidGain]) -> None:
        model = check_model(model)
        super().__init__(model, inputs)
        gains = tuple(gains)
        if len(gains) != len(self._params) or not all(isinstance(g, SigmoidGain) for g in gains):
            raise ConfigError("gains", gains, f"must be {len(self._params)} SigmoidGain (one per spiking layer)")
        self.gains = gains
        self._recurrents = tuple(p.recurrent for p in self._params)

    @property
    def dim(self) -> int:
        """Σ N over the layers."""
        return sum(p.size for p in self._params)

    @property
    def rank(self) -> int:
        """The full dimension."""
        return self.dim

    def _step(self, r: Tensor, t: int, record: bool) -> tuple[Tensor, list[Tensor]]:
        c = self._drive(t, r.shape[0])
        out: list[Tensor] = []
        coefficients = []
        start = 0
        for p, rec, phi in zip(self._params, self._recurrents, self.gains, strict=True):
            if out:
                c = out[-1] @ p.w_in.t() + p.b_in
            r_l = r[:, start : start + p.size]
            h = c + rec.current(r_l)
            out.append(p.alpha * r_l + (1.0 - p.alpha) * phi(h))
            if record:
                coefficients.append((1.0 - p.alpha) * phi.derivative(h))
            start += p.size
        return torch.cat(out, dim=1), coefficients

    def step(self, r: Tensor, t: int) -> Tensor:
        """:math:`r_{t+1} = \\alpha r_t + (1-\\alpha)\\phi(W r_t + c_t)` on a batch (B, dim)."""
        return self._step(self._check_state(r, self.dim), t, record=False)[0]

    def linearize(self, x: Tensor, t0: int, n: int) -> tuple[Tensor, _RateLinearization]:
        """``n`` steps from ``t0``, keeping :math:`(1-\\alpha)\\phi'(h_t)` of each step."""
        x = self._check_state(x, self.dim).to(torch.float64)
        gains = []
        with torch.no_grad():
            for t in range(t0, t0 + n):
                x, coefficients = self._step(x, t, record=True)
                gains.append(coefficients)
        return x, _RateLinearization(self._recurrents, self._params, gains)


class _Probed(NamedTuple):
    gains: tuple[SigmoidGain, ...]
    rates: tuple[Tensor, ...]
    currents: tuple[Tensor, ...]


def _probe_and_fit(spiking: SpikingMap, x0: Tensor, t0: int, n_probe: int) -> _Probed:
    """Probe steps t0 .. t0 + n_probe − 1 from ``x0`` and fit one :class:`SigmoidGain` per layer."""
    if not isinstance(spiking, SpikingMap):
        raise ConfigError("spiking", type(spiking).__name__, "must be a SpikingMap")
    check_int("n_probe", n_probe, 1)
    _, rates, currents = spiking.probe(x0, t0, n_probe)
    gains = []
    for i, (r, h) in enumerate(zip(rates, currents, strict=True)):
        if float(r.max()) <= 0.0:
            raise ConfigError(
                "drive", f"layer {i} silent", f"no spikes in {n_probe} probe steps; the rate model needs activity"
            )
        gains.append(fit_sigmoid_gain(h, r))
    return _Probed(tuple(gains), rates, currents)


def fit_rate_map(spiking: SpikingMap, x0: Tensor, n_probe: int) -> tuple[RateMap, Tensor]:
    """Fit the rate model to a spiking network under its drive.

    Runs ``spiking`` from ``x0`` for ``n_probe`` steps, measures each neuron's rate and mean current
    (:meth:`SpikingMap.probe`), fits one :class:`SigmoidGain` per layer (:func:`fit_sigmoid_gain`) and returns
    the rate map (same model and drive) with initial rates: the measured rates, repeated for each row of ``x0``.
    """
    gains, rates, _ = _probe_and_fit(spiking, x0, 0, n_probe)
    rate_map = RateMap(spiking.model, spiking.inputs, gains)
    r0 = torch.cat(rates)[None].expand(x0.shape[0], -1).clone()
    return rate_map, r0


def driven_gains(
    spiking: SpikingMap, x0: Tensor, n_probe: int, *, transient: int = 0, layer: int | None = None
) -> Tensor:
    """Each neuron's gain at the network's driven operating point: :math:`\\phi'(h_i)`, float64.

    Runs ``spiking`` from ``x0`` for ``transient`` steps (discarded), then probes ``n_probe`` steps: each neuron's
    rate :math:`r_i` and mean current :math:`h_i` (:meth:`SpikingMap.probe`, averaged over steps and the batch).
    Per layer, :func:`fit_sigmoid_gain` fits :math:`\\phi(h) = r_{max}\\sigma(a(h - h_0))` to the pairs
    :math:`(h_i, r_i)`, and neuron i's gain is the fitted slope at its own mean current,
    :math:`\\phi'(h_i) = a\\,\\phi(h_i)(1 - \\phi(h_i)/r_{max})` (spikes per step per unit current): the
    :math:`\\mathrm{diag}(\\phi')` of the rate model's Jacobian (module docstring, "rate") at the mean state.

    Args:
        spiking: the spiking network and its drive (which must hold ``transient + n_probe`` steps).
        x0: initial states (B, dim).
        n_probe: probe steps, >= 1.
        transient: steps run before the probe.
        layer: return this layer's gains only; None: every layer's, concatenated in order.

    Raises:
        ConfigError: ``drive`` when a layer does not spike during the probe (no gain can be fitted).
    """
    check_int("transient", transient, 0)
    if not isinstance(spiking, SpikingMap):
        raise ConfigError("spiking", type(spiking).__name__, "must be a SpikingMap")
    layers = range(len(spiking.model.layers)) if layer is None else [layer]
    if layer is not None and not (isinstance(layer, int) and 0 <= layer < len(spiking.model.layers)):
        raise ConfigError("layer", layer, f"must be an index in [0, {len(spiking.model.layers)})")
    x = spiking.advance(x0, 0, transient)
    gains, _, currents = _probe_and_fit(spiking, x, transient, n_probe)
    return torch.cat([gains[i].derivative(currents[i]) for i in layers])


# --------------------------------------------------------------------------------------------------
# one-call analysis
# --------------------------------------------------------------------------------------------------


class _Prepared(NamedTuple):
    system: SpikingMap | RateMap
    x0: Tensor


def _prepare_spiking(
    model: RSNN, inputs: Tensor, batch: int, surrogate: Surrogate | None, probe: int, generator: torch.Generator
) -> _Prepared:
    del probe
    system = SpikingMap(model, inputs, surrogate=surrogate)
    return _Prepared(system, system.initial_state(batch, generator))


def _prepare_exact(
    model: RSNN, inputs: Tensor, batch: int, surrogate: Surrogate | None, probe: int, generator: torch.Generator
) -> _Prepared:
    del surrogate
    return _prepare_spiking(model, inputs, batch, ZeroSurrogate(), probe, generator)


def _prepare_rate(
    model: RSNN, inputs: Tensor, batch: int, surrogate: Surrogate | None, probe: int, generator: torch.Generator
) -> _Prepared:
    spiking = SpikingMap(model, inputs, surrogate=surrogate)
    rate_map, r0 = fit_rate_map(spiking, spiking.initial_state(batch, generator), probe)
    return _Prepared(rate_map, r0)


METHODS: Mapping[str, Callable[[RSNN, Tensor, int, Surrogate | None, int, torch.Generator], _Prepared]] = (
    MappingProxyType({"surrogate": _prepare_spiking, "exact": _prepare_exact, "rate": _prepare_rate})
)
"""Read-only map from a reading of the spike nonlinearity (module docstring) to the system it analyses."""


def _drive_inputs(model: RSNN, drive: DriveConfig | None, batch: int, n_steps: int) -> Tensor:
    drive = DriveConfig() if drive is None else drive
    if not isinstance(drive, DriveConfig):
        raise ConfigError("drive", type(drive).__name__, "must be a DriveConfig")
    check_int("batch", batch, 1)
    return drive.sample(batch, n_steps, model.config.n_inputs)


def rsnn_lyapunov(
    model: RSNN,
    config: LyapunovConfig | None = None,
    *,
    method: str = "surrogate",
    drive: DriveConfig | None = None,
    batch: int = 1,
    surrogate: Surrogate | None = None,
    probe_steps: int = 1000,
    seed: int = 0,
    wrap_system: Callable[[TangentSystem], TangentSystem] | None = None,
) -> LyapunovResult:
    """Lyapunov spectrum of an RSNN under a drive, in one of the readings of :data:`METHODS`.

    Args:
        model: the network.
        config: run lengths (``n_exponents`` is m; None for the full spectrum).
        method: "surrogate", "exact" or "rate" (module docstring).
        drive: input to the first layer; default ``DriveConfig()`` (Poisson, 0.05 per step).
        batch: number of initial conditions (each with its own drive realisation).
        surrogate: ψ for "surrogate" (default: the model's); ignored by "exact".
        probe_steps: spiking steps used to fit the rate model ("rate" only).
        seed: seed of the initial membranes.
        wrap_system: applied to the prepared map before the run, e.g. to count its steps for a progress bar.
    """
    config = LyapunovConfig() if config is None else config
    if not isinstance(config, LyapunovConfig):
        raise ConfigError("config", type(config).__name__, "must be a LyapunovConfig")
    model = check_model(model)
    builder = METHODS.get(method) if isinstance(method, str) else None
    if builder is None:
        raise ConfigError("method", method, f"must be one of {sorted(METHODS)}")
    check_int("probe_steps", probe_steps, 1)
    generator = torch.Generator().manual_seed(check_int("seed", seed, 0))
    n_total = max(config.transient + config.align + config.n_steps, probe_steps)
    inputs = _drive_inputs(model, drive, batch, n_total)
    prepared = builder(model, inputs, batch, surrogate, probe_steps, generator)
    system = prepared.system if wrap_system is None else wrap_system(prepared.system)
    return lyapunov_spectrum(system, prepared.x0, config)


def rsnn_node_ftle(
    model: RSNN,
    config: FTLEConfig | None = None,
    *,
    layer: int | None = None,
    drive: DriveConfig | None = None,
    batch: int = 1,
    surrogate: Surrogate | None = None,
    seed: int = 0,
) -> NodeExponents:
    """Per-neuron finite-time exponents (spec §2.3) of the surrogate-smoothed spiking map.

    Neuron i's exponent is :math:`\\log\\lVert P e_{u_i}\\rVert_2/(T_f\\,dt)`: the growth of a perturbation of its
    membrane potential over the horizon, norm over the whole state (see :func:`hrsnn.dynamics.lyapunov.node_ftle`).

    Args:
        model: the network.
        config: windows; defaults to ``FTLEConfig()``.
        layer: restrict to one layer's neurons (None: all layers, in order).
        drive, batch, surrogate, seed: as in :func:`rsnn_lyapunov`.
    """
    config = FTLEConfig() if config is None else config
    if not isinstance(config, FTLEConfig):
        raise ConfigError("config", type(config).__name__, "must be an FTLEConfig")
    model = check_model(model)
    generator = torch.Generator().manual_seed(check_int("seed", seed, 0))
    stride = config.horizon if config.stride is None else config.stride
    n_total = config.transient + (config.windows - 1) * stride + config.horizon
    system = SpikingMap(model, _drive_inputs(model, drive, batch, n_total), surrogate=surrogate)
    return node_ftle(system, system.initial_state(batch, generator), system.neuron_coordinates(layer), config)
