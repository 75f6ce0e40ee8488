r"""Chaotic time-series prediction: Lorenz-63, Rössler and Mackey–Glass series, windowed into regression tasks.

Pipeline of every loader (:func:`load_lorenz`, :func:`load_rossler`, :func:`load_mackey_glass`):

1. **Generate** one long trajectory ``u`` of shape ``(L, d)`` (float64) with a fixed-step integrator, seeded by a
   jitter of the initial condition, after discarding a transient.
2. **Split chronologically** into train / val / test segments (in that order in time, see
   :func:`chronological_split`).
3. **Fit a scaler on the train segment only** (:class:`SeriesScaler`): standardised values
   :math:`z = (u - \mu)/\sigma` and unit values :math:`r = \mathrm{clip}((z - z_{lo})/(z_{hi} - z_{lo}), 0, 1)`.
4. **Encode** ``r`` into network input (:data:`ENCODINGS`, :func:`encode_series`); targets are the standardised
   series ``z``.
5. **Window** each segment on its own (:func:`make_windows`): a window never reads a value from another segment,
   so nothing leaks from val/test into train.

Metrics: :func:`nrmse` (one-step and multi-step prediction) and :func:`valid_time` (free-running prediction).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hrsnn._validate import check_seed
from hrsnn.encoding import bernoulli_spikes, gaussian_fields, rate_probability
from hrsnn.errors import ConfigError
from hrsnn.tasks.base import InMemorySequences, _check_fraction, _is_int, check_finite, check_inputs, check_splits

__all__ = [
    "ENCODINGS",
    "LorenzParams",
    "MackeyGlassParams",
    "RegressionDataset",
    "RegressionSplits",
    "RosslerParams",
    "SeriesEncoding",
    "SeriesScaler",
    "WindowSpec",
    "chronological_split",
    "encode_series",
    "fit_scaler",
    "integrate_rk4",
    "load_lorenz",
    "load_mackey_glass",
    "load_rossler",
    "lorenz63",
    "mackey_glass",
    "make_windows",
    "nrmse",
    "rk4_step",
    "rossler",
    "valid_time",
]

State = tuple[float, ...]
"""A point of an ODE's state space, as plain Python floats (fast for the small systems here)."""

VectorField = Callable[[State], State]
"""Right-hand side ``f`` of an autonomous ODE ``du/dt = f(u)``."""


# ------------------------------------------------------------------------------------------------ validation


def _check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if not _is_int(value) or int(value) < minimum:
        raise ConfigError(name, value, f"must be an int >= {minimum}")
    return int(value)


def _check_positive_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ConfigError(name, value, "must be a number > 0")
    if not math.isfinite(float(value)) or float(value) <= 0.0:
        raise ConfigError(name, value, "must be a finite number > 0")
    return float(value)


def _check_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ConfigError(name, value, "must be a number")
    if not math.isfinite(float(value)):
        raise ConfigError(name, value, "must be finite")
    return float(value)


def _check_nonneg_float(name: str, value: Any) -> float:
    out = _check_float(name, value)
    if out < 0.0:
        raise ConfigError(name, value, "must be >= 0")
    return out


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(name, value, "must be a bool")
    return value


# ------------------------------------------------------------------------------------------------ integrators


def rk4_step(field: VectorField, state: State, h: float) -> State:
    r"""One classical Runge–Kutta (RK4) step of ``du/dt = f(u)``.

    .. math::

        k_1 = f(u),\ k_2 = f(u + \tfrac{h}{2} k_1),\ k_3 = f(u + \tfrac{h}{2} k_2),\ k_4 = f(u + h k_3),\quad
        u' = u + \tfrac{h}{6}(k_1 + 2k_2 + 2k_3 + k_4)

    Args:
        field: the vector field ``f``.
        state: the present point ``u``.
        h: step size.

    Returns:
        ``u'``, the point one step later.
    """
    half = 0.5 * h
    k1 = field(state)
    k2 = field(tuple(u + half * k for u, k in zip(state, k1, strict=True)))
    k3 = field(tuple(u + half * k for u, k in zip(state, k2, strict=True)))
    k4 = field(tuple(u + h * k for u, k in zip(state, k3, strict=True)))
    sixth = h / 6.0
    return tuple(u + sixth * (a + 2.0 * b + 2.0 * c + e) for u, a, b, c, e in zip(state, k1, k2, k3, k4, strict=True))


def integrate_rk4(
    field: VectorField, initial: Sequence[float], *, dt: float, n_steps: int, substeps: int = 1, transient: int = 0
) -> np.ndarray:
    """Integrate ``du/dt = f(u)`` with fixed-step RK4 (:func:`rk4_step`) and sample it every ``dt``.

    The internal step is ``h = dt / substeps``. Row ``i`` of the result is ``u((transient + i)·dt)``, with
    ``u(0) = initial``: the first ``transient`` samples are computed and discarded.

    Args:
        field: the vector field ``f``.
        initial: the initial point ``u(0)`` (``d >= 1`` numbers).
        dt: sampling interval (> 0).
        n_steps: number of samples returned (>= 1).
        substeps: RK4 steps per sample (>= 1).
        transient: samples discarded first (>= 0).

    Returns:
        float64 array ``(n_steps, d)``.

    Raises:
        ConfigError: naming ``initial``, ``dt``, ``n_steps``, ``substeps`` or ``transient``; or ``field`` when the
            trajectory leaves the finite floats (step too large).
    """
    state = tuple(float(v) for v in np.asarray(initial, dtype=np.float64).reshape(-1))
    if not state or not all(math.isfinite(v) for v in state):
        raise ConfigError("initial", initial, "must be a non-empty sequence of finite numbers")
    dt = _check_positive_float("dt", dt)
    n_steps = _check_positive_int("n_steps", n_steps)
    substeps = _check_positive_int("substeps", substeps)
    transient = _check_positive_int("transient", transient, 0)
    h = dt / substeps
    out = np.empty((n_steps, len(state)), dtype=np.float64)
    try:
        for i in range(transient + n_steps):
            if i >= transient:
                out[i - transient] = state
            for _ in range(substeps):
                state = rk4_step(field, state, h)
    except OverflowError:
        out[:] = math.inf
    if not np.isfinite(out).all():
        raise ConfigError("field", getattr(field, "__qualname__", field), f"trajectory diverged with step h={h}")
    return out


# ------------------------------------------------------------------------------------------------ systems


@dataclass(frozen=True)
class LorenzParams:
    r"""Lorenz-63 system (Lorenz 1963), the classical chaotic parameters.

    .. math::

        \dot x = \sigma (y - x),\quad \dot y = x(\rho - z) - y,\quad \dot z = x y - \beta z
    """

    sigma: float = 10.0
    rho: float = 28.0
    beta: float = 8.0 / 3.0

    def __post_init__(self) -> None:
        for name in ("sigma", "rho", "beta"):
            object.__setattr__(self, name, _check_float(f"params.{name}", getattr(self, name)))

    def derivative(self, state: State) -> State:
        """The vector field at ``(x, y, z)`` (class docstring)."""
        x, y, z = state
        return (self.sigma * (y - x), x * (self.rho - z) - y, x * y - self.beta * z)


@dataclass(frozen=True)
class RosslerParams:
    r"""Rössler system (Rössler 1976), the classical chaotic parameters.

    .. math::

        \dot x = -y - z,\quad \dot y = x + a y,\quad \dot z = b + z (x - c)
    """

    a: float = 0.2
    b: float = 0.2
    c: float = 5.7

    def __post_init__(self) -> None:
        for name in ("a", "b", "c"):
            object.__setattr__(self, name, _check_float(f"params.{name}", getattr(self, name)))

    def derivative(self, state: State) -> State:
        """The vector field at ``(x, y, z)`` (class docstring)."""
        x, y, z = state
        return (-y - z, x + self.a * y, self.b + z * (x - self.c))


@dataclass(frozen=True)
class MackeyGlassParams:
    r"""Mackey–Glass delay equation (Mackey & Glass 1977); τ = 17 gives the classical chaotic benchmark.

    .. math::

        \dot x(t) = \beta \frac{x(t - \tau)}{1 + x(t - \tau)^n} - \gamma x(t)
    """

    tau: float = 17.0
    beta: float = 0.2
    gamma: float = 0.1
    n: float = 10.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "tau", _check_positive_float("params.tau", self.tau))
        for name in ("beta", "gamma", "n"):
            object.__setattr__(self, name, _check_float(f"params.{name}", getattr(self, name)))

    def derivative(self, x: float, x_delayed: float) -> float:
        """The right-hand side for present value ``x`` and delayed value ``x(t − τ)`` (class docstring)."""
        return self.beta * x_delayed / (1.0 + x_delayed**self.n) - self.gamma * x


def _jittered(base: Sequence[float], jitter: float, seed: int) -> State:
    """``base + jitter · U(−1, 1)^d`` from ``numpy.random.default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    return tuple(float(v) for v in np.asarray(base, dtype=np.float64) + jitter * rng.uniform(-1.0, 1.0, len(base)))


_LORENZ_BASE: State = (1.0, 1.0, 1.0)
_ROSSLER_BASE: State = (1.0, 1.0, 0.0)


def lorenz63(
    n_steps: int,
    *,
    dt: float = 0.01,
    substeps: int = 4,
    transient: int = 1000,
    params: LorenzParams | None = None,
    jitter: float = 1.0,
    seed: int = 0,
) -> np.ndarray:
    """A Lorenz-63 trajectory (:class:`LorenzParams`), RK4 with internal step ``dt / substeps``, sampled every ``dt``.

    The initial point is ``(1, 1, 1) + jitter · U(−1, 1)^3`` (``numpy.random.default_rng(seed)``); the first
    ``transient`` samples (default 1000, i.e. 10 time units) are discarded so the result lies on the attractor.

    Returns:
        float64 array ``(n_steps, 3)`` of ``(x, y, z)``.

    Raises:
        ConfigError: naming the bad argument.
    """
    params = LorenzParams() if params is None else params
    if not isinstance(params, LorenzParams):
        raise ConfigError("params", params, "must be a LorenzParams")
    start = _jittered(_LORENZ_BASE, _check_nonneg_float("jitter", jitter), check_seed("seed", seed))
    return integrate_rk4(params.derivative, start, dt=dt, n_steps=n_steps, substeps=substeps, transient=transient)


def rossler(
    n_steps: int,
    *,
    dt: float = 0.05,
    substeps: int = 5,
    transient: int = 1000,
    params: RosslerParams | None = None,
    jitter: float = 1.0,
    seed: int = 0,
) -> np.ndarray:
    """A Rössler trajectory (:class:`RosslerParams`), RK4 with internal step ``dt / substeps``, sampled every ``dt``.

    The initial point is ``(1, 1, 0) + jitter · U(−1, 1)^3`` (``numpy.random.default_rng(seed)``); the first
    ``transient`` samples (default 1000, i.e. 50 time units) are discarded.

    Returns:
        float64 array ``(n_steps, 3)`` of ``(x, y, z)``.

    Raises:
        ConfigError: naming the bad argument.
    """
    params = RosslerParams() if params is None else params
    if not isinstance(params, RosslerParams):
        raise ConfigError("params", params, "must be a RosslerParams")
    start = _jittered(_ROSSLER_BASE, _check_nonneg_float("jitter", jitter), check_seed("seed", seed))
    return integrate_rk4(params.derivative, start, dt=dt, n_steps=n_steps, substeps=substeps, transient=transient)


def mackey_glass(
    n_steps: int,
    *,
    dt: float = 1.0,
    substeps: int = 10,
    transient: int = 1000,
    params: MackeyGlassParams | None = None,
    x0: float = 1.2,
    jitter: float = 0.1,
    seed: int = 0,
) -> np.ndarray:
    r"""A Mackey–Glass series (:class:`MackeyGlassParams`), fixed-step RK4 with a history buffer, sampled every ``dt``.

    Internal step ``h = dt / substeps`` must divide τ: ``m = τ / h`` is an integer (default ``h = 0.1``,
    ``m = 170``). The history is constant, ``x(t) = x_0 + jitter · U(−1, 1)`` for ``t ∈ [−τ, 0]``
    (``numpy.random.default_rng(seed)``). A buffer holds the last ``m + 1`` grid values
    :math:`x_{k-m}, \dots, x_k` (:math:`x_k = x(kh)`), and step ``k`` is RK4 with the delayed value taken
    from the buffer at the stage times, linearly interpolated at the half step:

    .. math::

        k_1 &= f(x_k, x_{k-m}),\quad k_2 = f(x_k + \tfrac{h}{2} k_1, \bar x),\quad
        k_3 = f(x_k + \tfrac{h}{2} k_2, \bar x),\quad k_4 = f(x_k + h k_3, x_{k-m+1}), \\
        \bar x &= \tfrac{1}{2}(x_{k-m} + x_{k-m+1}),\qquad x_{k+1} = x_k + \tfrac{h}{6}(k_1 + 2k_2 + 2k_3 + k_4)

    with :math:`f(x, x_\tau) = \beta x_\tau / (1 + x_\tau^n) - \gamma x`. On ``[0, τ]`` the delayed value is the
    constant history, so there the scheme is plain RK4 of a linear ODE. The first ``transient`` samples
    (default 1000 time units) are discarded; sample ``i`` is ``x((transient + i)·dt)``.

    Returns:
        float64 array ``(n_steps, 1)``.

    Raises:
        ConfigError: naming the bad argument (``substeps`` when ``dt / substeps`` does not divide τ).
    """
    params = MackeyGlassParams() if params is None else params
    if not isinstance(params, MackeyGlassParams):
        raise ConfigError("params", params, "must be a MackeyGlassParams")
    dt = _check_positive_float("dt", dt)
    n_steps = _check_positive_int("n_steps", n_steps)
    substeps = _check_positive_int("substeps", substeps)
    transient = _check_positive_int("transient", transient, 0)
    x0 = _check_positive_float("x0", x0)
    jitter = _check_nonneg_float("jitter", jitter)
    if jitter >= x0:
        raise ConfigError("jitter", jitter, f"must be < x0 = {x0} so that the history stays positive")
    h = dt / substeps
    lag = round(params.tau / h)
    if lag < 1 or abs(lag * h - params.tau) > 1e-9 * params.tau:
        raise ConfigError("substeps", substeps, f"the step dt/substeps = {h} must divide params.tau = {params.tau}")
    x = _jittered((x0,), jitter, check_seed("seed", seed))[0]
    history: deque[float] = deque([x] * (lag + 1), maxlen=lag + 1)
    half, sixth, f = 0.5 * h, h / 6.0, params.derivative
    out = np.empty((n_steps, 1), dtype=np.float64)
    try:
        for i in range(transient + n_steps):
            if i >= transient:
                out[i - transient, 0] = x
            for _ in range(substeps):
                d0, d1 = history[0], history[1]
                mid = 0.5 * (d0 + d1)
                k1 = f(x, d0)
                k2 = f(x + half * k1, mid)
                k3 = f(x + half * k2, mid)
                k4 = f(x + h * k3, d1)
                x = x + sixth * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
                history.append(x)
    except (OverflowError, ZeroDivisionError):
        out[:] = math.inf
    if not np.isfinite(out).all():
        raise ConfigError("params", params, "the series diverged")
    return out


# ------------------------------------------------------------------------------------------------ data sets


@dataclass(frozen=True, eq=False)
class RegressionDataset(InMemorySequences):
    """A batch-first set of sequences with real-valued per-step targets, held in memory.

    The regression counterpart of :class:`~hrsnn.tasks.base.SequenceDataset`, with the same ``batches`` /
    ``subset`` / ``to`` interface.

    Attributes:
        x: inputs, finite float32 tensor ``(N, T, C)`` with ``T >= 1`` and ``C >= 1`` (``N`` may be 0).
        y: targets, finite float32 tensor ``(N, T, D)`` with ``D >= 1``, on the device of ``x``; ``y[n, t]`` is the
            target of step ``t`` of sequence ``n``.
        name: a short name, e.g. ``"lorenz/train"``.

    Raises:
        ConfigError: naming ``dataset.x``, ``dataset.y`` or ``dataset.name``.
    """

    x: Tensor
    y: Tensor
    name: str

    def __post_init__(self) -> None:
        x, y = self.x, self.y
        check_inputs(x)
        if not isinstance(y, Tensor):
            raise ConfigError("dataset.y", type(y).__name__, "must be a torch.Tensor")
        if y.dtype != torch.float32:
            raise ConfigError("dataset.y", y.dtype, "must be float32")
        if y.dim() != 3 or y.shape[2] < 1 or tuple(y.shape[:2]) != tuple(x.shape[:2]):
            raise ConfigError(
                "dataset.y", tuple(y.shape), f"must have shape (N, T, D) = ({x.shape[0]}, {x.shape[1]}, D >= 1)"
            )
        if y.device != x.device:
            raise ConfigError("dataset.y", str(y.device), f"must be on the device of dataset.x ({x.device})")
        check_finite("dataset.y", y, ("sample", "step", "output"))
        if not isinstance(self.name, str):
            raise ConfigError("dataset.name", self.name, "must be a str")

    @property
    def n_outputs(self) -> int:
        """Target dimensions per step ``D``."""
        return int(self.y.shape[2])

    @property
    def per_step(self) -> bool:
        """Always True: every step has a target."""
        return True


@dataclass(frozen=True, eq=False)
class RegressionSplits:
    """The train, validation and test sets of one regression task, plus read-only metadata.

    Attributes:
        train, val, test: :class:`RegressionDataset` parts with equal ``n_steps``, ``n_channels`` and ``n_outputs``.
        info: read-only metadata (system, parameters, scaler, encoding, segments, ...).

    Raises:
        ConfigError: naming ``splits.<part>`` or ``splits.info``.
    """

    train: RegressionDataset
    val: RegressionDataset
    test: RegressionDataset
    info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_splits(self, RegressionDataset, ("n_steps", "n_channels", "n_outputs"))

    @property
    def n_channels(self) -> int:
        """Input channels per step (shared by all splits)."""
        return self.train.n_channels

    @property
    def n_outputs(self) -> int:
        """Target dimensions per step (shared by all splits)."""
        return self.train.n_outputs


# ------------------------------------------------------------------------------------------------ scaling, encoding


@dataclass(frozen=True)
class SeriesScaler:
    r"""Per-dimension affine maps fitted on the training segment (:func:`fit_scaler`).

    Standardised value :math:`z = (u - \mu)/\sigma`; unit value
    :math:`r = \mathrm{clip}((z - z_{lo}) / (z_{hi} - z_{lo}), 0, 1)`, where :math:`z_{lo}, z_{hi}` are the
    minimum and maximum of ``z`` over the training segment (values of val/test outside that range are clipped).

    Attributes:
        mean, std, low, high: :math:`\mu, \sigma, z_{lo}, z_{hi}`, one per dimension.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]

    def standardise(self, series: np.ndarray) -> np.ndarray:
        """``z = (u − μ)/σ`` of a ``(L, d)`` array."""
        return (np.asarray(series, dtype=np.float64) - np.asarray(self.mean)) / np.asarray(self.std)

    def unit(self, series: np.ndarray) -> np.ndarray:
        """``r = clip((z − z_lo)/(z_hi − z_lo), 0, 1)`` of a ``(L, d)`` array."""
        low, high = np.asarray(self.low), np.asarray(self.high)
        return np.clip((self.standardise(series) - low) / (high - low), 0.0, 1.0)


def fit_scaler(train_series: np.ndarray) -> SeriesScaler:
    """Fit :class:`SeriesScaler` on a ``(L, d)`` training segment: μ, σ (ddof 0) and the range of ``z``.

    Raises:
        ConfigError: naming ``train_series`` when it is not ``(L >= 2, d)`` or a dimension is constant.
    """
    u = np.asarray(train_series, dtype=np.float64)
    if u.ndim != 2 or u.shape[0] < 2 or u.shape[1] < 1:
        raise ConfigError("train_series", u.shape, "must have shape (L >= 2, d >= 1)")
    mean, std = u.mean(axis=0), u.std(axis=0)
    if not np.all(std > 0):
        raise ConfigError("train_series", tuple(std.tolist()), "every dimension must vary (std > 0 shown)")
    z = (u - mean) / std
    return SeriesScaler(
        mean=tuple(mean.tolist()), std=tuple(std.tolist()), low=tuple(z.min(0).tolist()), high=tuple(z.max(0).tolist())
    )


@dataclass(frozen=True)
class SeriesEncoding:
    r"""How unit values ``r ∈ [0, 1]^d`` become network input (see :data:`ENCODINGS`).

    - ``"rate"``: one channel per dimension, :math:`p_d = r_d` (``C = d``).
    - ``"population"``: ``K = n_fields`` Gaussian receptive fields per dimension, centres
      :math:`c_k = k/(K-1)`, :math:`k = 0..K-1`, evenly spanning the training range (``[0, 1]`` in unit values),
      width :math:`\sigma_{rf}` (``field_width``, default ``1/K``):
      :math:`p_{d,k} = \exp(-(r_d - c_k)^2 / (2\sigma_{rf}^2))`, channel ``d·K + k`` (``C = d·K``).

    With ``spikes`` the input is Bernoulli spikes :math:`x = [U < p_{max} \, p]`, :math:`U \sim U(0, 1)`, one
    draw per step and channel (``p_max = max_probability``; the LNP spec's ``r_max · dt = 200 Hz · 1 ms`` is
    0.2); without it the input is the analog ``p``.

    Attributes:
        kind: a key of :data:`ENCODINGS`.
        spikes: Bernoulli spikes instead of analog values.
        n_fields: receptive fields per dimension (population only, >= 2).
        field_width: receptive-field width in unit values, or None for ``1 / n_fields``.
        max_probability: spike probability at activation 1 (``spikes`` only), in (0, 1].
    """

    kind: str = "rate"
    spikes: bool = False
    n_fields: int = 20
    field_width: float | None = None
    max_probability: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or self.kind not in ENCODINGS:
            raise ConfigError("encoding", self.kind, f"must be one of {tuple(ENCODINGS)}")
        _check_bool("spikes", self.spikes)
        object.__setattr__(self, "n_fields", _check_positive_int("n_fields", self.n_fields, 2))
        if self.field_width is not None:
            object.__setattr__(self, "field_width", _check_positive_float("field_width", self.field_width))
        p_max = _check_positive_float("max_probability", self.max_probability)
        if p_max > 1.0:
            raise ConfigError("max_probability", self.max_probability, "must be in (0, 1]")
        object.__setattr__(self, "max_probability", p_max)

    @property
    def width(self) -> float:
        """The receptive-field width σ_rf actually used."""
        return 1.0 / self.n_fields if self.field_width is None else float(self.field_width)


def _encode_rate(unit: Tensor, encoding: SeriesEncoding) -> Tensor:
    """``p_d = r_d`` (:func:`hrsnn.encoding.rate_probability` with gain 1), ``(L, d)``."""
    del encoding
    return rate_probability(unit)


def _encode_population(unit: Tensor, encoding: SeriesEncoding) -> Tensor:
    """``p_{d,k} = exp(−(r_d − c_k)² / (2σ²))`` with ``c_k = k/(K−1)`` (:func:`hrsnn.encoding.gaussian_fields`),
    ``(L, d·K)``."""
    return gaussian_fields(unit, encoding.n_fields, width=encoding.width)


ENCODINGS: Mapping[str, Callable[[Tensor, SeriesEncoding], Tensor]] = MappingProxyType(
    {"rate": _encode_rate, "population": _encode_population}
)
"""Read-only map from encoding name to ``f(unit_values (L, d), encoding) -> activations (L, C)`` in [0, 1]
(float64 tensors)."""


def encode_series(
    unit: np.ndarray, encoding: SeriesEncoding, generator: np.random.Generator | None = None
) -> np.ndarray:
    """Encode unit values ``(L, d)`` into network input ``(L, C)`` (see :class:`SeriesEncoding`).

    The spikes are :func:`hrsnn.encoding.bernoulli_spikes` of ``max_probability · p``, drawn from ``generator``.

    Args:
        unit: values in ``[0, 1]``, e.g. from :meth:`SeriesScaler.unit`.
        encoding: the encoding.
        generator: numpy generator of the Bernoulli draws (required when ``encoding.spikes``).

    Returns:
        float64 array ``(L, C)``: activations in ``[0, 1]``, or spikes in ``{0, 1}``.

    Raises:
        ConfigError: naming ``unit`` or ``generator``.
    """
    r = np.asarray(unit, dtype=np.float64)
    if r.ndim != 2 or not np.all((r >= 0.0) & (r <= 1.0)):
        raise ConfigError("unit", r.shape, "must be a (L, d) array of values in [0, 1]")
    act = ENCODINGS[encoding.kind](torch.from_numpy(r), encoding)
    if not encoding.spikes:
        return act.numpy()
    if not isinstance(generator, np.random.Generator):
        raise ConfigError("generator", generator, "spikes=True needs an explicit numpy.random.Generator")
    return bernoulli_spikes(encoding.max_probability * act, generator).numpy()


# ------------------------------------------------------------------------------------------------ windowing


@dataclass(frozen=True)
class WindowSpec:
    r"""How a segment is cut into input/target windows (:func:`make_windows`).

    A window starting at ``s`` has inputs ``x_t = e_{s+t}`` (the encoded series) for ``t = 0..T−1``. Targets:

    - ``multi_output=False``: the value ``horizon`` steps ahead, :math:`y_t = z_{s+t+h}` (``D = d``);
      ``horizon = 1`` is one-step-ahead prediction.
    - ``multi_output=True``: the next ``h`` values, :math:`y_t = (z_{s+t+1}, \dots, z_{s+t+h})` flattened lead
      time first, i.e. component ``(j−1)·d + i`` is dimension ``i`` at lead ``j`` (``D = h·d``).

    Starts are ``s = 0, stride, 2·stride, ...`` while ``s + T − 1 + h`` stays inside the segment.

    Attributes:
        window: steps per window ``T`` (>= 1).
        horizon: lead ``h`` of the target (>= 1).
        stride: distance between window starts (>= 1); None means ``window`` (non-overlapping inputs).
        multi_output: targets are the next ``h`` values instead of the ``h``-th.
    """

    window: int = 100
    horizon: int = 1
    stride: int | None = None
    multi_output: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "window", _check_positive_int("window", self.window))
        object.__setattr__(self, "horizon", _check_positive_int("horizon", self.horizon))
        if self.stride is not None:
            object.__setattr__(self, "stride", _check_positive_int("stride", self.stride))
        _check_bool("multi_output", self.multi_output)

    @property
    def step(self) -> int:
        """Distance between window starts actually used."""
        return self.window if self.stride is None else int(self.stride)


def make_windows(inputs: np.ndarray, targets: np.ndarray, spec: WindowSpec) -> tuple[np.ndarray, np.ndarray]:
    """Cut one segment into windows (:class:`WindowSpec`); reads nothing outside the given arrays.

    Args:
        inputs: encoded series ``e`` of the segment, ``(L, C)``.
        targets: standardised series ``z`` of the same segment, ``(L, d)``.
        spec: window length, horizon, stride and target layout.

    Returns:
        ``(x, y)`` of shapes ``(N, T, C)`` and ``(N, T, D)``, ``N = ⌊(L − T − h)/stride⌋ + 1`` (0 when
        ``L < T + h``).

    Raises:
        ConfigError: naming ``targets`` when its length differs from ``inputs``.
    """
    e, z = np.asarray(inputs), np.asarray(targets)
    if e.ndim != 2 or z.ndim != 2 or e.shape[0] != z.shape[0]:
        raise ConfigError("targets", z.shape, f"must be (L, d) with the L = {e.shape[0]} rows of inputs")
    n_len, t_len, h = e.shape[0], spec.window, spec.horizon
    starts = np.arange(0, max(n_len - t_len - h + 1, 0), spec.step)
    steps = starts[:, None] + np.arange(t_len)[None, :]  # (N, T) absolute step of each input
    x = e[steps]
    leads = np.arange(1, h + 1) if spec.multi_output else np.array([h])
    y = z[steps[:, :, None] + leads[None, None, :]]  # (N, T, n_leads, d)
    return x, y.reshape(starts.size, t_len, leads.size * z.shape[1])


def chronological_split(n: int, val_fraction: float, test_fraction: float) -> tuple[range, range, range]:
    """Split ``range(n)`` into consecutive train, val and test ranges, in that order in time.

    ``n_test = ⌊f_test·n + 1/2⌋``, ``n_val = ⌊f_val·n + 1/2⌋``, ``n_train = n − n_val − n_test``.

    Raises:
        ConfigError: naming ``val_fraction``, ``test_fraction`` or ``n``.
    """
    f_val = _check_fraction("val_fraction", val_fraction)
    f_test = _check_fraction("test_fraction", test_fraction)
    if f_val + f_test >= 1.0:
        raise ConfigError("val_fraction", val_fraction, f"val_fraction + test_fraction ({test_fraction}) must be < 1")
    n = _check_positive_int("n", n)
    n_test = math.floor(f_test * n + 0.5)
    n_val = math.floor(f_val * n + 0.5)
    n_train = n - n_val - n_test
    if n_train < 1:
        raise ConfigError("n", n, f"too short: {n_val} validation and {n_test} test steps leave no training step")
    return range(0, n_train), range(n_train, n_train + n_val), range(n_train + n_val, n)


# ------------------------------------------------------------------------------------------------ metrics


def _ndim(value: Any) -> int:
    return value.dim() if isinstance(value, Tensor) else np.ndim(value)


def _as_2d(name: str, value: Any) -> np.ndarray:
    arr = value.detach().cpu().double().numpy() if isinstance(value, Tensor) else np.asarray(value, dtype=np.float64)
    if arr.ndim == 0 or arr.size == 0:
        raise ConfigError(name, arr.shape, "must be a non-empty array (..., D)")
    return arr.reshape(-1, 1) if arr.ndim == 1 else arr.reshape(-1, arr.shape[-1])


def nrmse(pred: np.ndarray | Tensor, target: np.ndarray | Tensor) -> float:
    r"""Normalised root-mean-square error, per dimension then averaged.

    Both arrays have shape ``(..., D)`` (a 1-D array is one dimension); all leading axes are pooled into ``M``
    samples. With :math:`\sigma_d` the standard deviation (ddof 0) of the *targets* of dimension ``d`` over
    those ``M`` samples:

    .. math::

        \mathrm{NRMSE} = \frac{1}{D} \sum_{d=1}^{D} \frac{\sqrt{\frac{1}{M}\sum_m (p_{md} - y_{md})^2}}{\sigma_d}

    Raises:
        ConfigError: naming ``pred`` (shape mismatch) or ``target`` (a constant dimension).
    """
    p, y = _as_2d("pred", pred), _as_2d("target", target)
    if p.shape != y.shape:
        raise ConfigError("pred", p.shape, f"must match the target shape {y.shape} (leading axes pooled)")
    std = y.std(axis=0)
    if not np.all(std > 0):
        raise ConfigError("target", tuple(std.tolist()), "every dimension must vary (std > 0 shown)")
    rmse = np.sqrt(np.mean((p - y) ** 2, axis=0))
    return float(np.mean(rmse / std))


def valid_time(
    pred: np.ndarray | Tensor,
    target: np.ndarray | Tensor,
    threshold: float = 0.4,
    *,
    scale: Sequence[float] | None = None,
) -> int:
    r"""Valid time of a free-running prediction: the first step whose normalised error exceeds ``threshold``.

    ``pred`` and ``target`` are trajectories ``(T, D)`` (or ``(T,)``). The normalised error of step ``t`` is

    .. math::

        e_t = \sqrt{\frac{1}{D} \sum_{d} \Big(\frac{p_{td} - y_{td}}{s_d}\Big)^2}

    with :math:`s_d` = ``scale[d]`` or, by default, the standard deviation (ddof 0) of ``target[:, d]`` over the
    ``T`` steps. Returns :math:`\min\{t : e_t > \text{threshold}\}` (0-based steps), or ``T`` when the error never
    exceeds it; multiply by ``dt`` (and by the largest Lyapunov exponent) for time (Lyapunov times).

    Raises:
        ConfigError: naming ``pred``, ``target``, ``threshold`` or ``scale``.
    """
    if _ndim(pred) > 2 or _ndim(target) > 2:
        raise ConfigError("pred", (_ndim(pred), _ndim(target)), "pred and target must be trajectories (T, D) or (T,)")
    p, y = _as_2d("pred", pred), _as_2d("target", target)
    if p.shape != y.shape:
        raise ConfigError("pred", p.shape, f"must match the target shape {y.shape}")
    threshold = _check_positive_float("threshold", threshold)
    s = y.std(axis=0) if scale is None else np.asarray(scale, dtype=np.float64).reshape(-1)
    if s.shape != (y.shape[1],) or not np.all(s > 0):
        raise ConfigError("scale", None if scale is None else tuple(s.tolist()), f"needs {y.shape[1]} values > 0")
    err = np.sqrt(np.mean(((p - y) / s) ** 2, axis=1))
    over = np.flatnonzero(err > threshold)
    return int(over[0]) if over.size else int(y.shape[0])


# ------------------------------------------------------------------------------------------------ loaders


def _check_components(components: Sequence[int] | None, dim: int) -> tuple[int, ...]:
    if components is None:
        return tuple(range(dim))
    if isinstance(components, str | bytes) or not isinstance(components, Sequence):
        raise ConfigError("components", components, f"must be a sequence of distinct ints in [0, {dim})")
    comps = tuple(components)
    if not comps or len(set(comps)) != len(comps) or not all(_is_int(c) and 0 <= c < dim for c in comps):
        raise ConfigError("components", components, f"must be a non-empty sequence of distinct ints in [0, {dim})")
    return tuple(int(c) for c in comps)


def _build_splits(
    system: str,
    series: np.ndarray,
    *,
    spec: WindowSpec,
    encoding: SeriesEncoding,
    components: Sequence[int] | None,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    info: Mapping[str, Any],
) -> RegressionSplits:
    """Steps 2–5 of the module pipeline on a generated ``(L, d)`` series."""
    comps = _check_components(components, series.shape[1])
    u = series[:, comps]
    parts = chronological_split(u.shape[0], val_fraction, test_fraction)
    scaler = fit_scaler(u[parts[0].start : parts[0].stop])
    spike_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[1])
    encoded = encode_series(scaler.unit(u), encoding, spike_rng)
    z = scaler.standardise(u)
    datasets = {}
    for part, rng in zip(("train", "val", "test"), parts, strict=True):
        x, y = make_windows(encoded[rng.start : rng.stop], z[rng.start : rng.stop], spec)
        if part == "train" and x.shape[0] == 0:
            raise ConfigError("window", spec.window, f"train segment of {len(rng)} steps is too short for T + h")
        if x.shape[0] == 0:
            x = np.zeros((0, spec.window, encoded.shape[1]))
            y = np.zeros((0, spec.window, len(comps) * (spec.horizon if spec.multi_output else 1)))
        datasets[part] = RegressionDataset(
            x=torch.as_tensor(x, dtype=torch.float32),
            y=torch.as_tensor(y, dtype=torch.float32),
            name=f"{system}/{part}",
        )
    full_info = {
        **info,
        "system": system,
        "components": comps,
        "encoding": asdict(encoding),
        "windows": {**asdict(spec), "stride": spec.step},
        "val_fraction": val_fraction,
        "test_fraction": test_fraction,
        "seed": seed,
        "segments": {part: (rng.start, rng.stop) for part, rng in zip(("train", "val", "test"), parts, strict=True)},
        "scaler": asdict(scaler),
        "targets": "standardised series z = (u - mean) / std (train statistics)",
    }
    return RegressionSplits(train=datasets["train"], val=datasets["val"], test=datasets["test"], info=full_info)


def load_lorenz(
    *,
    n_steps: int = 10_000,
    dt: float = 0.01,
    substeps: int = 4,
    transient: int = 1000,
    window: int = 100,
    horizon: int = 1,
    stride: int | None = None,
    multi_output: bool = False,
    components: Sequence[int] | None = None,
    encoding: str = "rate",
    spikes: bool = False,
    n_fields: int = 20,
    field_width: float | None = None,
    max_probability: float = 1.0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
    params: LorenzParams | None = None,
) -> RegressionSplits:
    """Lorenz-63 prediction task: :func:`lorenz63` trajectory, split, scaled, encoded and windowed (module docstring).

    Defaults follow the LNP spec: σ = 10, ρ = 28, β = 8/3, samples every dt = 0.01 (RK4, internal step
    dt/4), 1000 transient samples dropped, 70/10/20 chronological split, one-step-ahead targets.

    Args:
        n_steps: samples of the kept trajectory (all three segments together).
        dt, substeps, transient: sampling interval, RK4 steps per sample, discarded samples.
        window, horizon, stride, multi_output: see :class:`WindowSpec`.
        components: state variables used as inputs and targets (0 = x, 1 = y, 2 = z); None for all three.
        encoding, spikes, n_fields, field_width, max_probability: see :class:`SeriesEncoding`.
        val_fraction, test_fraction: fractions of the trajectory for validation and test (chronological).
        seed: seeds the initial-condition jitter and the Bernoulli spikes.
        params: system parameters; None for the classical ones.

    Returns:
        :class:`RegressionSplits` named ``lorenz/train`` etc.; ``info`` holds the parameters, scaler, encoding,
        window spec and the ``segments`` ``(start, stop)`` of each part in the trajectory.

    Raises:
        ConfigError: naming the bad argument.
    """
    params = LorenzParams() if params is None else params
    series = lorenz63(n_steps, dt=dt, substeps=substeps, transient=transient, params=params, seed=seed)
    return _build_splits(
        "lorenz",
        series,
        spec=WindowSpec(window=window, horizon=horizon, stride=stride, multi_output=multi_output),
        encoding=SeriesEncoding(
            kind=encoding, spikes=spikes, n_fields=n_fields, field_width=field_width, max_probability=max_probability
        ),
        components=components,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        info={
            "params": asdict(params),
            "n_steps": n_steps,
            "dt": dt,
            "substeps": substeps,
            "transient": transient,
        },
    )


def load_rossler(
    *,
    n_steps: int = 10_000,
    dt: float = 0.05,
    substeps: int = 5,
    transient: int = 1000,
    window: int = 100,
    horizon: int = 1,
    stride: int | None = None,
    multi_output: bool = False,
    components: Sequence[int] | None = None,
    encoding: str = "rate",
    spikes: bool = False,
    n_fields: int = 20,
    field_width: float | None = None,
    max_probability: float = 1.0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
    params: RosslerParams | None = None,
) -> RegressionSplits:
    """Rössler prediction task (a = b = 0.2, c = 5.7; dt = 0.05, RK4 internal step dt/5), as :func:`load_lorenz`.

    Returns:
        :class:`RegressionSplits` named ``rossler/train`` etc.

    Raises:
        ConfigError: naming the bad argument.
    """
    params = RosslerParams() if params is None else params
    series = rossler(n_steps, dt=dt, substeps=substeps, transient=transient, params=params, seed=seed)
    return _build_splits(
        "rossler",
        series,
        spec=WindowSpec(window=window, horizon=horizon, stride=stride, multi_output=multi_output),
        encoding=SeriesEncoding(
            kind=encoding, spikes=spikes, n_fields=n_fields, field_width=field_width, max_probability=max_probability
        ),
        components=components,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        info={
            "params": asdict(params),
            "n_steps": n_steps,
            "dt": dt,
            "substeps": substeps,
            "transient": transient,
        },
    )


def load_mackey_glass(
    *,
    n_steps: int = 10_000,
    dt: float = 1.0,
    substeps: int = 10,
    transient: int = 1000,
    window: int = 100,
    horizon: int = 1,
    stride: int | None = None,
    multi_output: bool = False,
    encoding: str = "rate",
    spikes: bool = False,
    n_fields: int = 20,
    field_width: float | None = None,
    max_probability: float = 1.0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
    params: MackeyGlassParams | None = None,
) -> RegressionSplits:
    """Mackey–Glass prediction task (τ = 17, β = 0.2, γ = 0.1, n = 10; :func:`mackey_glass`), as :func:`load_lorenz`.

    Samples every dt = 1 time unit (RK4 with history buffer, internal step dt/10 = 0.1); the series is 1-D.

    Returns:
        :class:`RegressionSplits` named ``mackey_glass/train`` etc.

    Raises:
        ConfigError: naming the bad argument.
    """
    params = MackeyGlassParams() if params is None else params
    series = mackey_glass(n_steps, dt=dt, substeps=substeps, transient=transient, params=params, seed=seed)
    return _build_splits(
        "mackey_glass",
        series,
        spec=WindowSpec(window=window, horizon=horizon, stride=stride, multi_output=multi_output),
        encoding=SeriesEncoding(
            kind=encoding, spikes=spikes, n_fields=n_fields, field_width=field_width, max_probability=max_probability
        ),
        components=None,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        info={
            "params": asdict(params),
            "n_steps": n_steps,
            "dt": dt,
            "substeps": substeps,
            "transient": transient,
        },
    )
