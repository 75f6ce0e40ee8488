r"""Neuron dynamics: pure step functions on typed states, and the time-constant parameter module.

All step functions take the synaptic current of the present step and the previous state and return
``(spikes, new_state)``. They are pure (no module state), so they compose with ``torch.func`` for Jacobians.

Adaptive LIF (ALIF), exactly as in the SRNN authors' code (Yin, Corradi & Bohté), one step of size dt:

.. math::

    \eta_t &= \rho\,\eta_{t-1} + (1-\rho)\,s_{t-1} \\
    \theta_t &= b_0 + \beta\,\eta_t \\
    u_t &= \alpha\,u_{t-1} + (1-\alpha)\,R_m I_t - \theta_t\,s_{t-1}\,dt \\
    s_t &= H(u_t - \theta_t), \quad H(x) = [x > 0]

with :math:`\alpha = e^{-dt/\tau_m}` and :math:`\rho = e^{-dt/\tau_{adp}}`. The reset subtracts the *present*
threshold for a spike emitted at t-1 (a soft reset landing one step late). LIF is the same map with β = 0.

The hard-reset LIF (the authors' "LIF" baseline switch) has no input scaling and a fixed threshold:

.. math::

    v_t = \alpha\,u_{t-1} + I_t,\quad s_t = H(v_t - \vartheta),\quad u_t = (1 - s_t)\,v_t

The non-spiking leaky-integrator readout is :math:`u^o_t = \alpha_o u^o_{t-1} + (1-\alpha_o)\,I_t`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hrsnn.errors import ConfigError
from hrsnn.surrogates import Surrogate, spike


class ALIFState(NamedTuple):
    """State of an ALIF/LIF population after a step.

    Attributes:
        u: membrane potential, shape (B, N).
        s: spikes emitted at this step (binary, or real-valued for the authors' s_0 = u_0 initialisation).
        eta: adaptation trace η (``b`` in the authors' code), shape (B, N).
    """

    u: Tensor
    s: Tensor
    eta: Tensor


def decay(tau: Tensor, dt: float = 1.0) -> Tensor:
    """Per-step decay factor :math:`e^{-dt/\\tau}`."""
    return torch.exp(-dt / tau)


def alif_step(
    current: Tensor,
    state: ALIFState,
    alpha: Tensor,
    rho: Tensor,
    *,
    b0: float,
    beta: float,
    surrogate: Surrogate,
    r_m: float = 1.0,
    dt: float = 1.0,
) -> tuple[Tensor, ALIFState]:
    """One ALIF step in the authors' order (module docstring); returns ``(s_t, state_t)``.

    Args:
        current: synaptic current :math:`I_t`, shape (B, N).
        state: previous state (u_{t-1}, s_{t-1}, η_{t-1}).
        alpha: membrane decay :math:`e^{-dt/\\tau_m}`, shape (N,) or broadcastable.
        rho: adaptation decay :math:`e^{-dt/\\tau_{adp}}`.
        b0: baseline threshold.
        beta: adaptation strength (0 gives LIF).
        surrogate: surrogate derivative used by the backward pass of H.
        r_m: membrane resistance.
        dt: step size.
    """
    eta = rho * state.eta + (1.0 - rho) * state.s
    theta = b0 + beta * eta
    u = alpha * state.u + (1.0 - alpha) * r_m * current - theta * state.s * dt
    s = spike(u - theta, surrogate)
    return s, ALIFState(u, s, eta)


def lif_hard_reset_step(
    current: Tensor,
    state: ALIFState,
    alpha: Tensor,
    *,
    threshold: float,
    surrogate: Surrogate,
) -> tuple[Tensor, ALIFState]:
    """One step of the hard-reset LIF (module docstring): no input scaling, fixed threshold, u ← (1 − s)·v.

    The adaptation trace is carried unchanged.
    """
    v = alpha * state.u + current
    s = spike(v - threshold, surrogate)
    return s, ALIFState((1.0 - s) * v, s, state.eta)


def leaky_readout_step(current: Tensor, u: Tensor, alpha: Tensor) -> Tensor:
    """Leaky-integrator readout :math:`u^o_t = \\alpha_o u^o_{t-1} + (1-\\alpha_o) I_t`."""
    return alpha * u + (1.0 - alpha) * current


# --- time-constant parametrisations ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RawTau:
    """The authors' parametrisation: τ is the trained parameter itself (τ = θ). Nothing keeps τ positive."""

    name = "raw"

    def to_tau(self, theta: Tensor) -> Tensor:
        """τ = θ."""
        return theta

    def from_tau(self, tau: Tensor) -> Tensor:
        """θ = τ."""
        return tau.clone()


@dataclass(frozen=True)
class SoftplusTau:
    """Positivity-safe default: τ = τ_min + softplus(θ).

    For τ − τ_min ≫ 1, softplus(θ) ≈ θ, so gradient steps on θ equal steps on τ and the authors' learning rates
    carry over; τ can never fall to τ_min or below. No clamping is involved.
    """

    tau_min: float = 0.0
    name = "softplus"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.tau_min) and self.tau_min >= 0.0):
            raise ConfigError("tau_min", self.tau_min, "must be a finite number >= 0")

    def to_tau(self, theta: Tensor) -> Tensor:
        """τ = τ_min + softplus(θ)."""
        return self.tau_min + F.softplus(theta)

    def from_tau(self, tau: Tensor) -> Tensor:
        """θ = softplus⁻¹(τ − τ_min) = x + log(1 − e^{−x}) with x = τ − τ_min (stable for large x)."""
        x = tau - self.tau_min
        if bool((x <= 0).any()):
            raise ConfigError("tau", float(tau.min()), f"every τ must exceed tau_min={self.tau_min}")
        return x + torch.log(-torch.expm1(-x))


@dataclass(frozen=True)
class LogTau:
    """τ = exp(θ): positivity-safe, multiplicative updates (a step changes τ by a relative amount)."""

    name = "log"

    def to_tau(self, theta: Tensor) -> Tensor:
        """τ = e^θ."""
        return torch.exp(theta)

    def from_tau(self, tau: Tensor) -> Tensor:
        """θ = log τ."""
        if bool((tau <= 0).any()):
            raise ConfigError("tau", float(tau.min()), "every τ must be > 0 for the log parametrisation")
        return torch.log(tau)


TauParametrization = RawTau | SoftplusTau | LogTau

PARAMETRIZATIONS: Mapping[str, type[RawTau] | type[SoftplusTau] | type[LogTau]] = MappingProxyType(
    {cls.name: cls for cls in (RawTau, SoftplusTau, LogTau)}
)


def make_parametrization(name: str, tau_min: float = 0.0) -> TauParametrization:
    """Build a parametrisation by config name ("raw", "softplus", "log")."""
    cls = PARAMETRIZATIONS.get(name)
    if cls is None:
        raise ConfigError("parametrization", name, f"unknown; choose one of {sorted(PARAMETRIZATIONS)}")
    return SoftplusTau(tau_min) if cls is SoftplusTau else cls()


class TimeConstants(nn.Module):
    """Per-neuron time constants τ held as a registered parameter θ with τ = f(θ).

    Args:
        tau: initial τ per neuron, shape (N,).
        parametrization: how θ maps to τ.
        learnable: whether θ receives gradients (frozen θ still lives in ``parameters()`` and state dicts).
        family: role tag ("tau_m", "tau_adp", "tau_out"), used to build optimiser groups.
    """

    def __init__(
        self, tau: Tensor, parametrization: TauParametrization, *, learnable: bool = True, family: str = "tau"
    ) -> None:
        super().__init__()
        if tau.dim() != 1:
            raise ConfigError(family, tuple(tau.shape), "τ must be a vector with one value per neuron")
        self.parametrization = parametrization
        self.family = family
        self.theta = nn.Parameter(parametrization.from_tau(tau.detach().float()), requires_grad=learnable)

    @property
    def tau(self) -> Tensor:
        """τ per neuron."""
        return self.parametrization.to_tau(self.theta)

    def decay(self, dt: float = 1.0) -> Tensor:
        """:math:`e^{-dt/\\tau}` per neuron."""
        return decay(self.tau, dt)

    def set_tau(self, tau: Tensor) -> None:
        """Overwrite θ so that τ equals ``tau`` (used by importers and timescale optimisers)."""
        with torch.no_grad():
            self.theta.copy_(self.parametrization.from_tau(tau.to(self.theta)))

    def extra_repr(self) -> str:
        return f"n={self.theta.numel()}, family={self.family}, parametrization={self.parametrization.name}"
