r"""Lyapunov spectra by the Benettin/QR method, for maps, fixed-step ODEs and any system with a tangent map.

Benettin/QR method (Benettin et al. 1980; the form of Engelken, Wolf & Abbott 2020). For a trajectory
:math:`x_{t+1} = F_t(x_t)` with Jacobians :math:`J_t = \partial F_t/\partial x\,(x_t)` and an orthonormal
:math:`d \times m` basis :math:`Q`:

.. math::

    \tilde Q \leftarrow J_t Q \text{ every step}, \qquad
    \tilde Q = Q R \text{ (QR) every } n_{ons} \text{ steps and after the last}, \qquad
    \lambda_k = \frac{1}{T\,dt} \sum_{\text{QR}} \log |R_{kk}|

Phases, in order: ``transient`` steps of the state alone (discarded), ``align`` steps of state and tangent with
QR but no accumulation (so that Q settles onto the dominant Oseledets directions), then ``n_steps`` accumulated
steps (T = n_steps). The m exponents are the top m of the spectrum, sorted in descending order; m = d gives the
full spectrum. Each row of the batch is an independent initial condition, and the spread of the per-row estimates
is the error bar. Exponents are per unit time (``dt`` is the time per step; ``dt = 1`` gives per step).

The finite-time exponent of QR interval i (length :math:`n_i` steps) is :math:`\log|R_{kk}| / (n_i\,dt)`; the
running estimate of :math:`\lambda_k` after I intervals is :math:`\sum_{i \le I} \log|R^{(i)}_{kk}| /
(dt \sum_{i \le I} n_i)`, which is how "the largest exponent over time" is reported.

Systems implement :class:`TangentSystem`: ``advance`` moves a batch of states, ``linearize`` moves them while
returning the local linear maps :math:`J_t` of that segment as a :class:`Linearization` (``apply(k, Q) = J_{t_0+k}
Q``). :class:`MapSystem` builds one from any step function with Jacobians from ``torch.func``:

* ``tangent="jacobian"`` forms full Jacobians with ``vmap(jacfwd(step))``, vectorised over a whole segment of the
  trajectory (blocks bounded in memory), then multiplies: best for small d (Lorenz, logistic, d ≲ 300).
* ``tangent="jvp"`` pushes the m basis vectors through ``vmap(jvp(step))`` one step at a time: O(d·m) memory,
  for large d with m ≪ d.

Node-wise finite-time exponents (LNP spec §2.3): for a horizon :math:`T_f` and window start :math:`t_0`,
:math:`P = J_{t_0+T_f-1}\cdots J_{t_0}` and :math:`\lambda_i = \log\lVert P e_i\rVert_2 / (T_f\,dt)`, averaged over
windows and initial conditions (:func:`node_ftle`). The alternative reading assigns the i-th exponent of a spectrum
started from :math:`Q_0 = [e_i]` to node i (:func:`node_exponents_by_index`); that node↔index map is arbitrary.

Kaplan–Yorke dimension: :math:`D_{KY} = k + \sum_{i \le k}\lambda_i / |\lambda_{k+1}|` with k the largest index
whose partial sum :math:`\sum_{i \le k}\lambda_i \ge 0` (0 if :math:`\lambda_1 < 0`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal, Protocol, runtime_checkable

import torch
from torch import Tensor
from torch.func import jacfwd, jvp, vmap

from hrsnn._validate import check_int, check_real, check_tensor
from hrsnn.errors import ConfigError

__all__ = [
    "INTEGRATORS",
    "TANGENT_MODES",
    "FTLEConfig",
    "Linearization",
    "LyapunovConfig",
    "LyapunovResult",
    "MapSystem",
    "NodeExponents",
    "TangentSystem",
    "euler_step",
    "heun_step",
    "kaplan_yorke_dimension",
    "lyapunov_spectrum",
    "node_exponents_by_index",
    "node_ftle",
    "ode_system",
    "rk4_step",
]

StepFunction = Callable[[Tensor], Tensor]
VectorField = Callable[[Tensor], Tensor]
TangentMode = Literal["jacobian", "jvp"]


# --------------------------------------------------------------------------------------------------
# protocols
# --------------------------------------------------------------------------------------------------


@runtime_checkable
class Linearization(Protocol):
    """The local linear maps :math:`J_{t_0}, \\dots, J_{t_0+n-1}` along one computed trajectory segment."""

    def __len__(self) -> int:
        """Number of steps n in the segment."""
        ...

    def apply(self, k: int, q: Tensor) -> Tensor:
        """Return :math:`J_{t_0+k} Q` for a batch of tangent bases ``q`` of shape (B, d, m)."""
        ...


@runtime_checkable
class TangentSystem(Protocol):
    """A batched discrete-time system with a tangent map.

    Attributes:
        dim: state dimension d.
        rank: upper bound on the rank of every Jacobian (d unless part of the state is a function of the rest);
            exponents beyond it are exactly −∞ and are reported as such.
        dt: time per step (exponents are per unit of this time).
    """

    @property
    def dim(self) -> int: ...

    @property
    def rank(self) -> int: ...

    @property
    def dt(self) -> float: ...

    def advance(self, x: Tensor, t0: int, n: int) -> Tensor:
        """Move a batch of states (B, d) from step ``t0`` through ``n`` steps."""
        ...

    def linearize(self, x: Tensor, t0: int, n: int) -> tuple[Tensor, Linearization]:
        """Like :meth:`advance`, also returning the Jacobians of those n steps."""
        ...


# --------------------------------------------------------------------------------------------------
# configuration and results
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LyapunovConfig:
    """Run lengths of the Benettin/QR method (module docstring).

    Attributes:
        n_steps: accumulated steps T (>= 1).
        transient: state-only steps discarded first.
        align: tangent steps with QR but no accumulation, after the transient.
        n_ons: steps between QR re-orthonormalisations (>= 1); a last QR always closes the run.
        n_exponents: number m of leading exponents; None for the full spectrum.
        chunk: steps linearised per call of :meth:`TangentSystem.linearize` (bounds stored coefficients).
        seed: seed of the random orthonormal initial basis.
    """

    n_steps: int = 1000
    transient: int = 100
    align: int = 100
    n_ons: int = 5
    n_exponents: int | None = None
    chunk: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        check_int("lyapunov.n_steps", self.n_steps, 1)
        check_int("lyapunov.transient", self.transient, 0)
        check_int("lyapunov.align", self.align, 0)
        check_int("lyapunov.n_ons", self.n_ons, 1)
        check_int("lyapunov.chunk", self.chunk, 1)
        check_int("lyapunov.seed", self.seed, 0)
        if self.n_exponents is not None:
            check_int("lyapunov.n_exponents", self.n_exponents, 1)


@dataclass(frozen=True, eq=False)
class LyapunovResult:
    """Estimated spectrum of a batch of initial conditions.

    Attributes:
        exponents: (B, m) exponents per initial condition, each row sorted in descending order.
        local: (B, I, m) finite-time exponents :math:`\\log|R_{kk}|/(n_i dt)` of the I QR intervals, columns in the
            same order as ``exponents``.
        interval_steps: (I,) steps in each QR interval.
        dt: time per step.
        dim: state dimension d.
        final_state: (B, d) state after the run (to continue it).
    """

    exponents: Tensor
    local: Tensor
    interval_steps: Tensor
    dt: float
    dim: int
    final_state: Tensor

    @property
    def mean(self) -> Tensor:
        """Mean over initial conditions, (m,)."""
        return self.exponents.mean(dim=0)

    @property
    def std(self) -> Tensor:
        """Sample standard deviation over initial conditions (ddof = 1), (m,); NaN for a single one."""
        if self.exponents.shape[0] < 2:
            return torch.full_like(self.exponents[0], math.nan)
        return self.exponents.std(dim=0)

    @property
    def sem(self) -> Tensor:
        """Standard error of the mean, std / √B, (m,)."""
        return self.std / math.sqrt(self.exponents.shape[0])

    @property
    def times(self) -> Tensor:
        """Time at the end of each QR interval, counted from the start of accumulation, (I,)."""
        return torch.cumsum(self.interval_steps.to(torch.float64), 0) * self.dt

    @property
    def running(self) -> Tensor:
        """Running estimates :math:`\\sum_{i\\le I}\\log|R_{kk}^{(i)}| / (dt\\sum_{i\\le I} n_i)`, (B, I, m)."""
        weights = self.interval_steps.to(self.local)[None, :, None]
        return torch.cumsum(self.local * weights, dim=1) / torch.cumsum(weights, dim=1)

    @property
    def lambda_max_history(self) -> Tensor:
        """Running estimate of the largest exponent over time, (B, I)."""
        return self.running[..., 0]

    def kaplan_yorke(self) -> float:
        """Kaplan–Yorke dimension of the mean spectrum (see :func:`kaplan_yorke_dimension`)."""
        return kaplan_yorke_dimension(self.mean)

    def summary(self, top: int | None = None) -> dict[str, Any]:
        """JSON-able summary of the top exponents: non-finite values (−∞ exponents, NaN spreads) become None."""
        top = self.exponents.shape[1] if top is None else min(check_int("top", top, 1), self.exponents.shape[1])
        return {
            "exponents": _finite_list(self.mean[:top]),
            "std": _finite_list(self.std[:top]),
            "lambda_max": _finite_or_none(float(self.mean[0])),
            "kaplan_yorke": self.kaplan_yorke(),
            "n_exponents": int(self.exponents.shape[1]),
            "dim": self.dim,
            "n_initial_conditions": int(self.exponents.shape[0]),
            "dt": self.dt,
        }


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _finite_list(values: Tensor) -> list[float | None]:
    return [_finite_or_none(float(v)) for v in values]


def kaplan_yorke_dimension(exponents: Tensor | Sequence[float]) -> float:
    """Kaplan–Yorke dimension :math:`D = k + \\sum_{i\\le k}\\lambda_i / |\\lambda_{k+1}|`.

    k is the largest index with :math:`\\sum_{i\\le k}\\lambda_i \\ge 0` (the exponents are sorted in descending
    order first); D = 0 when :math:`\\lambda_1 < 0`. When every partial sum is ≥ 0, D = m, the number of exponents
    given: the dimension itself for a full spectrum, a lower bound for a truncated one. A −∞ exponent after the k-th
    gives D = k.

    Args:
        exponents: a 1-D spectrum (−∞ allowed, NaN not).
    """
    lam = torch.as_tensor(exponents, dtype=torch.float64).flatten()
    if lam.numel() == 0:
        raise ConfigError("exponents", [], "must contain at least one exponent")
    if bool(torch.isnan(lam).any()):
        raise ConfigError("exponents", lam.tolist(), "must not contain NaN")
    lam = torch.sort(lam, descending=True).values
    partial = torch.cumsum(lam, 0)
    nonnegative = int((partial >= 0).sum())
    if nonnegative == 0:
        return 0.0
    if nonnegative == lam.numel():
        return float(nonnegative)
    return nonnegative + float(partial[nonnegative - 1]) / abs(float(lam[nonnegative]))


# --------------------------------------------------------------------------------------------------
# generic maps with torch.func Jacobians
# --------------------------------------------------------------------------------------------------


class _JacobianLinearization:
    """Full Jacobians ``vmap(jacfwd(step))`` of stored states, computed lazily block by block."""

    def __init__(self, step: StepFunction, states: Tensor, block_elements: int) -> None:
        self._jacobian = vmap(jacfwd(step))
        self._states = states
        batch, _, dim = states.shape
        self._block = max(1, block_elements // max(1, batch * dim * dim))
        self._cached = -1
        self._jacobians = states.new_empty(0)

    def __len__(self) -> int:
        return self._states.shape[1]

    def apply(self, k: int, q: Tensor) -> Tensor:
        block = k // self._block
        if block != self._cached:
            start = block * self._block
            segment = self._states[:, start : start + self._block]
            batch, length, dim = segment.shape
            self._jacobians = self._jacobian(segment.reshape(batch * length, dim)).reshape(batch, length, dim, dim)
            self._cached = block
        return self._jacobians[:, k - block * self._block] @ q


class _JvpLinearization:
    """Jacobian-vector products ``vmap(jvp(step))`` of the m tangent columns, one step at a time."""

    def __init__(self, step: StepFunction, states: Tensor, block_elements: int) -> None:
        del block_elements
        self._states = states

        def tangent(x: Tensor, v: Tensor) -> Tensor:
            return jvp(step, (x,), (v,))[1]

        self._tangent = vmap(tangent)

    def __len__(self) -> int:
        return self._states.shape[1]

    def apply(self, k: int, q: Tensor) -> Tensor:
        batch, dim, m = q.shape
        x = self._states[:, k].repeat_interleave(m, dim=0)
        v = q.transpose(1, 2).reshape(batch * m, dim)
        return self._tangent(x, v).reshape(batch, m, dim).transpose(1, 2)


TANGENT_MODES: Mapping[str, Callable[[StepFunction, Tensor, int], Linearization]] = MappingProxyType(
    {"jacobian": _JacobianLinearization, "jvp": _JvpLinearization}
)
"""Read-only map from a tangent mode of :class:`MapSystem` to its linearisation."""


class MapSystem:
    """An autonomous map :math:`x_{t+1} = f(x_t)` given as a step function, with Jacobians from ``torch.func``.

    Args:
        step: maps one state of shape (d,) to the next (d,); it must be a pure torch function (no in-place writes
            to its input, no Python branching on values) so that ``jacfwd``/``jvp``/``vmap`` can transform it.
        dim: state dimension d.
        dt: time per step (1 gives exponents per step).
        batched: True if ``step`` also maps a batch (..., d) row by row (e.g. written with ``x[..., i]`` and
            ``x @ A.T``); the state is then advanced without ``vmap``, which is several times faster. False (safe
            default) wraps ``step`` in ``vmap``.
        tangent: "jacobian" or "jvp" (see the module docstring and :data:`TANGENT_MODES`).
        block_elements: largest number of Jacobian entries held at once in "jacobian" mode.
    """

    def __init__(
        self,
        step: StepFunction,
        dim: int,
        *,
        dt: float = 1.0,
        batched: bool = False,
        tangent: TangentMode = "jacobian",
        block_elements: int = 1 << 22,
    ) -> None:
        if not callable(step):
            raise ConfigError("step", type(step).__name__, "must be callable")
        self._dim = check_int("dim", dim, 1)
        self._dt = check_real("dt", dt, low=0.0, strict=True)
        if not isinstance(batched, bool):
            raise ConfigError("batched", batched, "must be a bool")
        if not isinstance(tangent, str) or tangent not in TANGENT_MODES:
            raise ConfigError("tangent", tangent, f"must be one of {sorted(TANGENT_MODES)}")
        self._linearization = TANGENT_MODES[tangent]
        self._block_elements = check_int("block_elements", block_elements, 1)
        self._step = step
        self._batched_step = step if batched else vmap(step)

    @property
    def dim(self) -> int:
        """State dimension d."""
        return self._dim

    @property
    def rank(self) -> int:
        """d: no structural rank deficiency is assumed."""
        return self._dim

    @property
    def dt(self) -> float:
        """Time per step."""
        return self._dt

    def step(self, x: Tensor) -> Tensor:
        """One step of a batch of states (B, d)."""
        y = self._batched_step(x)
        if not isinstance(y, Tensor) or y.shape != x.shape:
            shape = tuple(getattr(y, "shape", ()))
            raise ConfigError("step", shape, f"must map a state ({self._dim},) to the same shape")
        return y

    def advance(self, x: Tensor, t0: int, n: int) -> Tensor:
        """``n`` steps of a batch (B, d); ``t0`` is unused (the map is autonomous)."""
        del t0
        with torch.no_grad():
            for _ in range(n):
                x = self.step(x)
        return x

    def linearize(self, x: Tensor, t0: int, n: int) -> tuple[Tensor, Linearization]:
        """``n`` steps, returning the final states and the Jacobians at the n visited states."""
        del t0
        states = []
        with torch.no_grad():
            for _ in range(n):
                states.append(x)
                x = self.step(x)
        return x, self._linearization(self._step, torch.stack(states, dim=1), self._block_elements)


# --------------------------------------------------------------------------------------------------
# fixed-step ODE integrators
# --------------------------------------------------------------------------------------------------


def euler_step(f: VectorField, x: Tensor, dt: float) -> Tensor:
    """Forward Euler: :math:`x + dt\\,f(x)`."""
    return x + dt * f(x)


def heun_step(f: VectorField, x: Tensor, dt: float) -> Tensor:
    """Heun (explicit trapezoid): :math:`k_1 = f(x),\\ k_2 = f(x + dt\\,k_1),\\ x + \\tfrac{dt}{2}(k_1 + k_2)`."""
    k1 = f(x)
    k2 = f(x + dt * k1)
    return x + 0.5 * dt * (k1 + k2)


def rk4_step(f: VectorField, x: Tensor, dt: float) -> Tensor:
    """Classical Runge–Kutta: :math:`x + \\tfrac{dt}{6}(k_1 + 2k_2 + 2k_3 + k_4)`.

    With :math:`k_1 = f(x)`, :math:`k_2 = f(x + \\tfrac{dt}{2}k_1)`, :math:`k_3 = f(x + \\tfrac{dt}{2}k_2)`,
    :math:`k_4 = f(x + dt\\,k_3)`.
    """
    k1 = f(x)
    k2 = f(x + 0.5 * dt * k1)
    k3 = f(x + 0.5 * dt * k2)
    k4 = f(x + dt * k3)
    return x + (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


INTEGRATORS: Mapping[str, Callable[[VectorField, Tensor, float], Tensor]] = MappingProxyType(
    {"euler": euler_step, "heun": heun_step, "rk4": rk4_step}
)
"""Read-only map from a scheme name to its one-step integrator ``(f, x, dt) -> x_next``."""


class _ODEStep:
    """One integrator step of a vector field, as a step function of the state alone."""

    def __init__(self, scheme: Callable[[VectorField, Tensor, float], Tensor], field: VectorField, dt: float) -> None:
        self._scheme = scheme
        self._field = field
        self._dt = dt

    def __call__(self, x: Tensor) -> Tensor:
        return self._scheme(self._field, x, self._dt)


def ode_system(
    vector_field: VectorField,
    dim: int,
    dt: float,
    *,
    scheme: str = "rk4",
    batched: bool = False,
    tangent: TangentMode = "jacobian",
) -> MapSystem:
    """The time-dt map of :math:`\\dot x = f(x)` under a fixed-step scheme, as a :class:`MapSystem`.

    The exponents are those of the discrete map divided by dt, i.e. per unit time; for a consistent scheme they
    converge to the ODE's exponents as dt → 0 (for Euler exactly :math:`\\log|1 + dt\\,\\mu|/dt` on a linear
    field with eigenvalue μ). The Jacobian of the step is the scheme applied to the variational equation.

    Args:
        vector_field: f, mapping a state (d,) (or a batch (..., d) when ``batched``) to its time derivative.
        dim: d.
        dt: integration step, > 0.
        scheme: a key of :data:`INTEGRATORS` ("euler", "heun", "rk4").
        batched, tangent: as in :class:`MapSystem`.
    """
    if not callable(vector_field):
        raise ConfigError("vector_field", type(vector_field).__name__, "must be callable")
    integrator = INTEGRATORS.get(scheme) if isinstance(scheme, str) else None
    if integrator is None:
        raise ConfigError("scheme", scheme, f"must be one of {sorted(INTEGRATORS)}")
    dt = check_real("dt", dt, low=0.0, strict=True)
    return MapSystem(_ODEStep(integrator, vector_field, dt), dim, dt=dt, batched=batched, tangent=tangent)


# --------------------------------------------------------------------------------------------------
# the Benettin/QR engine
# --------------------------------------------------------------------------------------------------


def _check_system(system: Any) -> TangentSystem:
    if not isinstance(system, TangentSystem):
        reason = "must implement TangentSystem (dim, rank, dt, advance, linearize)"
        raise ConfigError("system", type(system).__name__, reason)
    return system


def _initial_states(x0: Any, dim: int) -> Tensor:
    x = check_tensor("x0", x0, (1, 2), finite=True)
    x = x.detach().to(torch.float64)
    if x.dim() == 1:
        x = x[None]
    if x.shape[1] != dim:
        raise ConfigError("x0", tuple(x0.shape), f"must be (batch, {dim}) or ({dim},) for this system")
    return x


def _initial_basis(basis: Tensor | None, batch: int, dim: int, m: int, seed: int, device: torch.device) -> Tensor:
    if basis is None:
        generator = torch.Generator().manual_seed(seed)
        q = torch.linalg.qr(torch.randn(dim, m, generator=generator, dtype=torch.float64))[0]
    else:
        q = check_tensor("basis", basis, (2, 3), finite=True).detach().to(torch.float64)
        if q.shape[-2:] != (dim, m) or (q.dim() == 3 and q.shape[0] != batch):
            raise ConfigError("basis", tuple(q.shape), f"must be ({dim}, {m}) or ({batch}, {dim}, {m})")
        gram = q.transpose(-1, -2) @ q
        if not torch.allclose(gram, torch.eye(m, dtype=torch.float64).expand_as(gram), atol=1e-8):
            raise ConfigError("basis", "QᵀQ ≠ I", "columns must be orthonormal")
    return q.to(device).expand(batch, dim, m).clone()


def _evolve(
    system: TangentSystem, x: Tensor, q: Tensor, t0: int, n: int, config: LyapunovConfig
) -> tuple[Tensor, Tensor, list[Tensor], list[int]]:
    """Propagate state and basis n steps from t0 with QR every ``n_ons`` steps and after the last one.

    Returns the state, the basis, :math:`\\log|\\mathrm{diag}\\,R|` of every QR (each (B, m)) and the steps per QR.
    """
    logs: list[Tensor] = []
    steps: list[int] = []
    done = 0
    since = 0
    while done < n:
        length = min(config.chunk, n - done)
        x_next, linearization = system.linearize(x, t0 + done, length)
        for k in range(length):
            q = linearization.apply(k, q)
            since += 1
            if since == config.n_ons or done + k + 1 == n:
                if not bool(torch.isfinite(q).all()):
                    reason = "tangent vectors overflowed between QR steps; use a smaller n_ons"
                    raise ConfigError("lyapunov.n_ons", config.n_ons, reason)
                q, r = torch.linalg.qr(q)
                logs.append(torch.log(torch.diagonal(r, dim1=-2, dim2=-1).abs()))
                steps.append(since)
                since = 0
        x = x_next
        done += length
    return x, q, logs, steps


def lyapunov_spectrum(
    system: TangentSystem, x0: Tensor, config: LyapunovConfig | None = None, *, basis: Tensor | None = None
) -> LyapunovResult:
    """Top-m (or full) Lyapunov spectrum by the Benettin/QR method (module docstring), in float64.

    Args:
        system: the dynamics (:class:`MapSystem`, :func:`ode_system`, an RSNN map from :mod:`hrsnn.dynamics.snn`).
        x0: initial states, (B, d) for B initial conditions or (d,) for one.
        config: run lengths; defaults to ``LyapunovConfig()``.
        basis: initial orthonormal basis (d, m) or (B, d, m); default a seeded random one.

    Returns:
        The exponents per initial condition, sorted in descending order, with per-interval finite-time exponents.
        Exponents beyond ``system.rank`` are −∞ (only the first ``min(m, rank)`` basis columns are propagated).
    """
    config = LyapunovConfig() if config is None else config
    if not isinstance(config, LyapunovConfig):
        raise ConfigError("config", type(config).__name__, "must be a LyapunovConfig")
    system = _check_system(system)
    x = _initial_states(x0, system.dim)
    batch, dim = x.shape
    m = dim if config.n_exponents is None else config.n_exponents
    if m > dim:
        raise ConfigError("lyapunov.n_exponents", m, f"must be <= the state dimension {dim}")
    # The top k exponents depend only on the first k columns of Q, and those beyond the rank are −∞: propagate
    # min(m, rank) columns and pad the rest.
    m_run = min(m, system.rank)
    q = _initial_basis(basis, batch, dim, m, config.seed, x.device)[..., :m_run].contiguous()
    x = system.advance(x, 0, config.transient)
    t = config.transient
    x, q, _, _ = _evolve(system, x, q, t, config.align, config)
    t += config.align
    x, q, logs, steps = _evolve(system, x, q, t, config.n_steps, config)
    log_r = torch.stack(logs, dim=1)
    interval_steps = torch.tensor(steps, dtype=torch.long)
    local = log_r / (interval_steps.to(log_r)[None, :, None] * system.dt)
    exponents = log_r.sum(dim=1) / (config.n_steps * system.dt)
    if m_run < m:
        exponents = torch.cat([exponents, exponents.new_full((batch, m - m_run), -math.inf)], dim=1)
        local = torch.cat([local, local.new_full((*local.shape[:2], m - m_run), -math.inf)], dim=2)
    order = torch.sort(exponents, dim=1, descending=True, stable=True).indices
    exponents = torch.gather(exponents, 1, order)
    local = torch.gather(local, 2, order[:, None, :].expand_as(local))
    return LyapunovResult(exponents, local, interval_steps, system.dt, dim, x)


# --------------------------------------------------------------------------------------------------
# node-wise exponents
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FTLEConfig:
    """Windows of the node-wise finite-time Lyapunov exponents (module docstring).

    Attributes:
        horizon: steps :math:`T_f` per window (LNP spec: 20–50).
        windows: number of windows averaged.
        stride: steps between window starts; None means ``horizon`` (back-to-back windows). Must be >= horizon.
        transient: state-only steps before the first window.
        renorm: steps between column renormalisations inside a window (guards against overflow; exact).
    """

    horizon: int = 30
    windows: int = 10
    stride: int | None = None
    transient: int = 100
    renorm: int = 10

    def __post_init__(self) -> None:
        check_int("ftle.horizon", self.horizon, 1)
        check_int("ftle.windows", self.windows, 1)
        check_int("ftle.transient", self.transient, 0)
        check_int("ftle.renorm", self.renorm, 1)
        if self.stride is not None and check_int("ftle.stride", self.stride, 1) < self.horizon:
            raise ConfigError("ftle.stride", self.stride, f"must be >= horizon={self.horizon}")


@dataclass(frozen=True, eq=False)
class NodeExponents:
    """Exponents attached to state coordinates ("nodes").

    Attributes:
        values: (n,) mean over initial conditions and windows.
        samples: (B, W, n) one value per initial condition and window (W = 1 for the spectrum reading).
        coordinates: (n,) the state coordinates, in the order of ``values``.
        reading: "ftle" or "spectrum_index".
    """

    values: Tensor
    samples: Tensor
    coordinates: Tensor
    reading: str

    @property
    def std(self) -> Tensor:
        """Standard deviation over all samples (ddof = 1), (n,); NaN for a single sample."""
        flat = self.samples.reshape(-1, self.samples.shape[-1])
        if flat.shape[0] < 2:
            return torch.full_like(self.values, math.nan)
        return flat.std(dim=0)


def _check_coordinates(coordinates: Any, dim: int) -> Tensor:
    coords = torch.as_tensor(coordinates)
    if coords.dim() != 1 or coords.numel() == 0 or coords.dtype not in (torch.int32, torch.int64):
        raise ConfigError("coordinates", coordinates, "must be a non-empty 1-D sequence of integer indices")
    if bool((coords < 0).any()) or bool((coords >= dim).any()):
        raise ConfigError("coordinates", coords.tolist(), f"indices must lie in [0, {dim})")
    if coords.unique().numel() != coords.numel():
        raise ConfigError("coordinates", coords.tolist(), "indices must be distinct")
    return coords.long()


def _unit_vectors(coords: Tensor, batch: int, dim: int, device: torch.device) -> Tensor:
    q = torch.zeros(batch, dim, coords.numel(), dtype=torch.float64, device=device)
    q[:, coords.to(device), torch.arange(coords.numel(), device=device)] = 1.0
    return q


def node_ftle(
    system: TangentSystem, x0: Tensor, coordinates: Sequence[int] | Tensor, config: FTLEConfig | None = None
) -> NodeExponents:
    """Node-wise finite-time exponents :math:`\\lambda_i = \\log\\lVert P e_i\\rVert_2 / (T_f\\,dt)`.

    P is the product of the :math:`T_f` Jacobians of a window; the columns :math:`P e_i` are renormalised every
    ``renorm`` steps and their log-norms summed, which is exact for a linear propagation. Windows start after
    ``transient`` steps, ``stride`` apart.

    Args:
        system: the dynamics.
        x0: initial states (B, d) or (d,).
        coordinates: state indices i whose unit vectors :math:`e_i` are propagated (e.g. the membrane coordinates
            from :meth:`hrsnn.dynamics.snn.SpikingMap.neuron_coordinates`).
        config: windows; defaults to ``FTLEConfig()``.
    """
    config = FTLEConfig() if config is None else config
    if not isinstance(config, FTLEConfig):
        raise ConfigError("config", type(config).__name__, "must be an FTLEConfig")
    system = _check_system(system)
    x = _initial_states(x0, system.dim)
    batch, dim = x.shape
    coords = _check_coordinates(coordinates, dim)
    stride = config.horizon if config.stride is None else config.stride
    x = system.advance(x, 0, config.transient)
    t = config.transient
    samples = []
    for _ in range(config.windows):
        q = _unit_vectors(coords, batch, dim, x.device)
        acc = torch.zeros(batch, coords.numel(), dtype=torch.float64, device=x.device)
        x_window, linearization = system.linearize(x, t, config.horizon)
        for k in range(config.horizon):
            q = linearization.apply(k, q)
            if (k + 1) % config.renorm == 0 or k + 1 == config.horizon:
                norms = torch.linalg.vector_norm(q, dim=1)
                acc += torch.log(norms)
                q = q / torch.where(norms > 0, norms, torch.ones_like(norms))[:, None, :]
        samples.append(acc / (config.horizon * system.dt))
        x = system.advance(x_window, t + config.horizon, stride - config.horizon)
        t += stride
    stacked = torch.stack(samples, dim=1)
    return NodeExponents(stacked.mean(dim=(0, 1)), stacked, coords, "ftle")


def node_exponents_by_index(
    system: TangentSystem,
    x0: Tensor,
    coordinates: Sequence[int] | Tensor,
    config: LyapunovConfig | None = None,
) -> NodeExponents:
    """The alternative reading: node i gets :math:`\\lambda_i`, the i-th largest exponent of the spectrum.

    The spectrum is computed with :math:`Q_0 = [e_{c_1}, \\dots, e_{c_n}]` (the unit vectors of ``coordinates``)
    and n exponents. Cheaper than :func:`node_ftle` (one run) but the node↔index assignment is arbitrary: the
    exponents are sorted, so the first coordinate always gets the largest. ``config.n_exponents`` is ignored.
    """
    config = LyapunovConfig() if config is None else config
    if not isinstance(config, LyapunovConfig):
        raise ConfigError("config", type(config).__name__, "must be a LyapunovConfig")
    system = _check_system(system)
    x = _initial_states(x0, system.dim)
    coords = _check_coordinates(coordinates, system.dim)
    run = LyapunovConfig(
        n_steps=config.n_steps,
        transient=config.transient,
        align=config.align,
        n_ons=config.n_ons,
        n_exponents=coords.numel(),
        chunk=config.chunk,
        seed=config.seed,
    )
    basis = _unit_vectors(coords, x.shape[0], system.dim, x.device)
    result = lyapunov_spectrum(system, x, run, basis=basis)
    return NodeExponents(result.mean, result.exponents[:, None, :], coords, "spectrum_index")
