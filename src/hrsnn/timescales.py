"""Seeded samplers of per-neuron time constants τ (in units of the time step dt).

Every sampler is a small frozen dataclass validated on construction, with
``sample(n, generator) -> Tensor``: a float32 tensor of shape ``(n,)`` whose entries are all finite and
``> 0``, drawn only from the explicit ``torch.Generator`` (on that generator's device), so the same seed
gives the same τ.

===================  ==========================================================================
sampler              distribution of τ
===================  ==========================================================================
:class:`Constant`    ``τ = value``
:class:`Normal`      ``N(mean, std²)`` truncated to ``τ ≥ floor`` (exact, by resampling)
:class:`Gamma`       ``τ = floor + G``, ``G ~ Gamma(shape, scale)``
:class:`LogNormal`   ``τ = median · exp(σ ε)``, ``ε ~ N(0, 1)``
:class:`Uniform`     ``τ ~ U[low, high)``
:class:`LogUniform`  ``log τ ~ U[log low, log high)``
:class:`Clustered`   k contiguous clusters, cluster i drawn from ``components[i]`` (the CHRSNN)
===================  ==========================================================================

Configs describe a sampler as a mapping with a ``dist`` key (see :data:`TIMESCALE_SAMPLERS`), parsed by
:func:`sampler_from_dict` and written by :func:`sampler_to_dict`. Errors raised on direct construction name
the field as ``<dist>.<field>`` (e.g. ``normal.std``); :func:`sampler_from_dict` renames them after the
config path (e.g. ``tau.components[1].std``).

Draws that round to 0 or to infinity in float32 are redrawn as well, so the guarantee ``τ > 0`` always holds.
This only matters for extreme parameters: with ``floor = 0``, ``Gamma`` puts mass ``≈ (1e-45/θ)^k / Γ(k+1)``
below float32's smallest value, negligible for ``k ≥ 0.5`` but large for ``k ≲ 0.05``, where the redraw
visibly truncates the distribution near 0 (use a positive ``floor`` there).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch
from torch import Tensor

from hrsnn.errors import ConfigError

__all__ = [
    "TIMESCALE_SAMPLERS",
    "Clustered",
    "Constant",
    "Gamma",
    "LogNormal",
    "LogUniform",
    "Normal",
    "TimescaleSampler",
    "Uniform",
    "sampler_from_dict",
    "sampler_to_dict",
]

MIN_NORMAL_ACCEPTANCE = 1e-3
"""Smallest allowed ``P(X ≥ floor)`` for :class:`Normal`; below it the floor sits too far in the tail."""

_MAX_ROUNDS = 10_000


@runtime_checkable
class TimescaleSampler(Protocol):
    """A seeded distribution of positive per-neuron time constants.

    Attributes:
        dist: key of the sampler in :data:`TIMESCALE_SAMPLERS` and in configs.
    """

    dist: ClassVar[str]

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """Draw ``n`` time constants: float32, shape ``(n,)``, all finite and > 0."""
        ...


# --------------------------------------------------------------------------------------------- helpers


def _check_real(obj: object, field: str, *, low: float | None = None, strict: bool = True) -> float:
    """Coerce field ``field`` of frozen dataclass ``obj`` to a finite float, ``> low`` (or ``>= low``).

    Raises:
        ConfigError: naming ``<dist>.<field>``.
    """
    name = f"{type(obj).dist}.{field}"  # type: ignore[attr-defined]
    value = getattr(obj, field)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(name, value, "must be a real number")
    value = float(value)
    if not math.isfinite(value):
        raise ConfigError(name, value, "must be finite")
    if low is not None and strict and value <= low:
        raise ConfigError(name, value, f"must be > {low:g}")
    if low is not None and not strict and value < low:
        raise ConfigError(name, value, f"must be >= {low:g}")
    object.__setattr__(obj, field, value)
    return value


def _check_request(n: int, generator: torch.Generator) -> None:
    """Validate the arguments of ``sample``."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise ConfigError("n", n, "must be an integer >= 0")
    if not isinstance(generator, torch.Generator):
        raise ConfigError("generator", generator, "must be a torch.Generator")


def _usable(x: Tensor) -> Tensor:
    """Mask of float32 values that are finite and > 0."""
    return torch.isfinite(x) & (x > 0)


def _fill(n: int, propose: Callable[[int], Tensor], accept: Callable[[Tensor], Tensor]) -> Tensor:
    """Exact rejection sampling: keep accepted proposals, in draw order, until there are ``n``.

    The first round proposes exactly ``n`` values, so if all are accepted the result is the plain proposal.
    Later rounds propose enough values for the remaining count at the acceptance rate observed so far.
    Accepted draws of an i.i.d. sequence are i.i.d. from the conditional distribution, so this is exact.
    """
    parts: list[Tensor] = []
    have = 0
    proposed = 0
    size = n
    for _ in range(_MAX_ROUNDS):
        draws = propose(size)
        kept = draws[accept(draws)]
        parts.append(kept)
        have += kept.numel()
        proposed += size
        if have >= n:
            return torch.cat(parts)[:n]
        rate = max(have / proposed, 1e-4)
        size = math.ceil((n - have) / rate * 1.2) + 16
    raise RuntimeError(f"rejection sampling did not finish after {_MAX_ROUNDS} rounds")  # pragma: no cover


def _uniform64(size: int, generator: torch.Generator) -> Tensor:
    """``size`` float64 draws of U[0, 1) on the generator's device."""
    return torch.rand(size, generator=generator, dtype=torch.float64, device=generator.device)


def _normal64(size: int, generator: torch.Generator) -> Tensor:
    """``size`` float64 draws of N(0, 1) on the generator's device."""
    return torch.randn(size, generator=generator, dtype=torch.float64, device=generator.device)


def _standard_gamma64(size: int, shape: float, generator: torch.Generator) -> Tensor:
    """Draws of Gamma(shape, 1) by Marsaglia & Tsang (2000), exact.

    For ``a = shape ≥ 1``: ``d = a − 1/3``, ``c = 1/√(9d)``; propose ``x ~ N(0,1)``, ``u ~ U(0,1)``,
    ``w = (1 + c x)³``; accept ``d·w`` if ``w > 0`` and ``log u < x²/2 + d − d w + d log w``.
    For ``a < 1``: ``G_a = G_{a+1} · U^{1/a}``.
    """
    boosted = shape < 1.0
    a = shape + 1.0 if boosted else shape
    d = a - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)

    def propose(m: int) -> Tensor:
        x = _normal64(m, generator)
        u = _uniform64(m, generator)
        w = (1.0 + c * x) ** 3
        ok = (w > 0) & (torch.log(u) < 0.5 * x * x + d - d * w + d * torch.log(w))
        return torch.where(ok, d * w, torch.full_like(w, math.nan))

    g = _fill(size, propose, torch.isfinite)
    if boosted:
        g = g * _uniform64(size, generator) ** (1.0 / shape)
    return g


def _positive_float32(n: int, propose64: Callable[[int], Tensor]) -> Tensor:
    """Draw float64 proposals, round to float32, redraw any that are not finite and > 0."""
    return _fill(n, lambda m: propose64(m).to(torch.float32), _usable)


# -------------------------------------------------------------------------------------------- samplers


class _Sampler:
    """Shared config conversion: a sampler's parameters are its dataclass fields."""

    dist: ClassVar[str]

    def _params(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    @classmethod
    def _from_params(cls, params: Mapping[str, Any], field: str) -> TimescaleSampler:
        return cls(**params)  # type: ignore[return-value]


@dataclasses.dataclass(frozen=True)
class Constant(_Sampler):
    """Every neuron gets the same time constant: ``τ = value``.

    Args:
        value: the time constant, > 0.
    """

    dist: ClassVar[str] = "constant"

    value: float

    def __post_init__(self) -> None:
        _check_real(self, "value", low=0.0)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """``τ_i = value`` for all i (the generator is not advanced)."""
        _check_request(n, generator)
        return torch.full((n,), self.value, dtype=torch.float32, device=generator.device)


@dataclasses.dataclass(frozen=True)
class Normal(_Sampler):
    """Normal distribution truncated to ``τ ≥ floor``, sampled exactly by resampling.

    Values below ``floor`` are redrawn (never clamped), so τ has the truncated-normal density
    ``p(τ) = φ((τ−μ)/σ) / (σ (1 − Φ(a)))`` for ``τ ≥ floor``, ``a = (floor − μ)/σ``, with mean
    ``μ + σ φ(a) / (1 − Φ(a))``. The first draw is ``torch.Tensor.normal_(mean, std)`` in float32, so when no
    value falls below the floor the result equals the authors' untruncated ``nn.init.normal_`` from the same
    generator state.

    Args:
        mean: mean μ of the untruncated normal.
        std: standard deviation σ of the untruncated normal, > 0.
        floor: lower truncation point, > 0; ``1 − Φ(a)`` must be at least :data:`MIN_NORMAL_ACCEPTANCE`.
    """

    dist: ClassVar[str] = "normal"

    mean: float
    std: float
    floor: float = 1.0

    def __post_init__(self) -> None:
        _check_real(self, "mean")
        _check_real(self, "std", low=0.0)
        _check_real(self, "floor", low=0.0)
        if self.acceptance < MIN_NORMAL_ACCEPTANCE:
            raise ConfigError(
                "normal.floor",
                self.floor,
                f"P(tau >= floor) = {self.acceptance:.3g} < {MIN_NORMAL_ACCEPTANCE:g}: the floor sits too "
                "far above the mean; use gamma or lognormal",
            )

    @property
    def acceptance(self) -> float:
        """``1 − Φ(a) = erfc(a/√2)/2``, the probability that an untruncated draw is kept."""
        a = (self.floor - self.mean) / self.std
        return 0.5 * math.erfc(a / math.sqrt(2.0))

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """Draw from ``N(μ, σ²)`` and redraw every value below ``floor``."""
        _check_request(n, generator)

        def propose(m: int) -> Tensor:
            x = torch.empty(m, dtype=torch.float32, device=generator.device)
            return x.normal_(self.mean, self.std, generator=generator)

        return _fill(n, propose, lambda x: (x >= self.floor) & torch.isfinite(x))


@dataclasses.dataclass(frozen=True)
class Gamma(_Sampler):
    """Shifted gamma distribution: ``τ = floor + G``, ``G ~ Gamma(shape k, scale θ)``.

    ``E[τ] = floor + kθ``, ``Var[τ] = kθ²``.

    Args:
        shape: shape k, > 0.
        scale: scale θ, > 0.
        floor: shift, >= 0.
    """

    dist: ClassVar[str] = "gamma"

    shape: float
    scale: float
    floor: float = 0.0

    def __post_init__(self) -> None:
        _check_real(self, "shape", low=0.0)
        _check_real(self, "scale", low=0.0)
        _check_real(self, "floor", low=0.0, strict=False)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """``τ = floor + θ · G_k`` with ``G_k`` a standard gamma draw (Marsaglia–Tsang)."""
        _check_request(n, generator)
        return _positive_float32(n, lambda m: self.floor + self.scale * _standard_gamma64(m, self.shape, generator))


@dataclasses.dataclass(frozen=True)
class LogNormal(_Sampler):
    """Log-normal distribution: ``τ = median · exp(σ ε)``, ``ε ~ N(0, 1)``; the median of τ is ``median``.

    Args:
        median: median of τ, > 0.
        sigma: standard deviation σ of ``log τ``, > 0.
    """

    dist: ClassVar[str] = "lognormal"

    median: float
    sigma: float

    def __post_init__(self) -> None:
        _check_real(self, "median", low=0.0)
        _check_real(self, "sigma", low=0.0)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """``τ = median · exp(σ ε)``."""
        _check_request(n, generator)
        return _positive_float32(n, lambda m: self.median * torch.exp(self.sigma * _normal64(m, generator)))


@dataclasses.dataclass(frozen=True)
class Uniform(_Sampler):
    """Uniform distribution: ``τ = low + (high − low) u``, ``u ~ U[0, 1)``.

    Args:
        low: lower bound, > 0.
        high: upper bound, > low.
    """

    dist: ClassVar[str] = "uniform"

    low: float
    high: float

    def __post_init__(self) -> None:
        _check_real(self, "low", low=0.0)
        _check_real(self, "high", low=self.low)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """``τ = low + (high − low) u``."""
        _check_request(n, generator)
        return _positive_float32(n, lambda m: self.low + (self.high - self.low) * _uniform64(m, generator))


@dataclasses.dataclass(frozen=True)
class LogUniform(_Sampler):
    """Log-uniform distribution: ``τ = exp(log low + u (log high − log low))``, ``u ~ U[0, 1)``.

    Equal mass per octave; ``E[log τ] = (log low + log high)/2``.

    Args:
        low: lower bound, > 0.
        high: upper bound, > low.
    """

    dist: ClassVar[str] = "loguniform"

    low: float
    high: float

    def __post_init__(self) -> None:
        _check_real(self, "low", low=0.0)
        _check_real(self, "high", low=self.low)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """``τ = exp(log low + u (log high − log low))``."""
        _check_request(n, generator)
        lo, hi = math.log(self.low), math.log(self.high)
        return _positive_float32(n, lambda m: torch.exp(lo + (hi - lo) * _uniform64(m, generator)))


@dataclasses.dataclass(frozen=True)
class Clustered(_Sampler):
    """Clustered heterogeneous timescales (the CHRSNN).

    The n neurons are split into k contiguous clusters, cluster i holding neurons
    ``[Σ_{j<i} n_j, Σ_{j≤i} n_j)`` and drawing its τ from ``components[i]``. Sizes follow the weights by
    largest-remainder rounding: with quotas ``q_i = n w_i / Σ_j w_j``, each cluster gets ``⌊q_i⌋`` and the
    ``n − Σ_i ⌊q_i⌋`` leftover neurons go one each to the clusters with the largest ``q_i − ⌊q_i⌋`` (ties to
    the lower index), so ``Σ_i n_i = n``.

    Args:
        components: one sampler per cluster (at least one).
        weights: relative cluster sizes, each > 0; ``None`` means equal sizes.
    """

    dist: ClassVar[str] = "clustered"

    components: tuple[TimescaleSampler, ...]
    weights: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        comps = self.components
        if isinstance(comps, (str, bytes)) or not isinstance(comps, Sequence) or len(comps) == 0:
            raise ConfigError("clustered.components", comps, "must be a non-empty sequence of samplers")
        for i, comp in enumerate(comps):
            if not isinstance(comp, TimescaleSampler):
                raise ConfigError(f"clustered.components[{i}]", comp, "must be a timescale sampler")
        object.__setattr__(self, "components", tuple(comps))
        if self.weights is None:
            return
        weights = self.weights
        if isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence):
            raise ConfigError("clustered.weights", weights, "must be a sequence of numbers or None")
        if len(weights) != len(comps):
            raise ConfigError("clustered.weights", weights, f"must have one entry per component ({len(comps)})")
        checked = []
        for i, w in enumerate(weights):
            if isinstance(w, bool) or not isinstance(w, numbers.Real) or not math.isfinite(w) or w <= 0:
                raise ConfigError(f"clustered.weights[{i}]", w, "must be a finite number > 0")
            checked.append(float(w))
        object.__setattr__(self, "weights", tuple(checked))

    def cluster_sizes(self, n: int) -> tuple[int, ...]:
        """Cluster sizes ``n_i`` by largest-remainder rounding of ``n w_i / Σ w``; they sum to ``n``."""
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
            raise ConfigError("n", n, "must be an integer >= 0")
        weights = self.weights if self.weights is not None else (1.0,) * len(self.components)
        total = math.fsum(weights)
        quotas = [n * w / total for w in weights]
        sizes = [math.floor(q) for q in quotas]
        leftover = n - sum(sizes)
        order = sorted(range(len(quotas)), key=lambda i: (sizes[i] - quotas[i], i))
        for i in order[:leftover]:
            sizes[i] += 1
        return tuple(sizes)

    def labels(self, n: int) -> Tensor:
        """Cluster index of each neuron (long, shape ``(n,)``, non-decreasing)."""
        sizes = torch.tensor(self.cluster_sizes(n), dtype=torch.long)
        return torch.repeat_interleave(torch.arange(len(self.components)), sizes)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """Concatenate ``components[i].sample(n_i, generator)`` for i = 0 … k−1, in order."""
        _check_request(n, generator)
        sizes = self.cluster_sizes(n)
        return torch.cat([c.sample(m, generator) for c, m in zip(self.components, sizes, strict=True)])

    def _params(self) -> dict[str, Any]:
        return {
            "components": [sampler_to_dict(c) for c in self.components],
            "weights": None if self.weights is None else list(self.weights),
        }

    @classmethod
    def _from_params(cls, params: Mapping[str, Any], field: str) -> TimescaleSampler:
        comps = params.get("components")
        if isinstance(comps, (str, bytes, Mapping)) or not isinstance(comps, Sequence) or len(comps) == 0:
            raise ConfigError(f"{field}.components", comps, "must be a non-empty list of sampler mappings")
        parsed = tuple(sampler_from_dict(c, f"{field}.components[{i}]") for i, c in enumerate(comps))
        weights = params.get("weights")
        if weights is not None and isinstance(weights, Sequence) and not isinstance(weights, (str, bytes)):
            weights = tuple(weights)
        return cls(parsed, weights)


# -------------------------------------------------------------------------------------- config plumbing

_SAMPLER_CLASSES: tuple[type[_Sampler], ...] = (
    Constant,
    Normal,
    Gamma,
    LogNormal,
    Uniform,
    LogUniform,
    Clustered,
)

TIMESCALE_SAMPLERS: Mapping[str, type[_Sampler]] = types.MappingProxyType({c.dist: c for c in _SAMPLER_CLASSES})
"""Read-only map from a config ``dist`` name to its sampler class."""


def sampler_from_dict(d: Mapping[str, Any], field: str = "tau") -> TimescaleSampler:
    """Parse a sampler from its config mapping, e.g. ``{"dist": "gamma", "shape": 3.0, "scale": 10.0}``.

    ``{"dist": "clustered", "components": [{...}, {...}], "weights": [0.5, 0.5]}`` nests component mappings.

    Args:
        d: mapping with a ``dist`` key (a key of :data:`TIMESCALE_SAMPLERS`) and the sampler's parameters.
        field: config path of ``d``, used in error messages.

    Raises:
        ConfigError: naming the bad entry, e.g. ``tau.dist`` or ``tau.components[1].std``.
    """
    if not isinstance(d, Mapping):
        raise ConfigError(field, d, "must be a mapping with a 'dist' key")
    if "dist" not in d:
        raise ConfigError(f"{field}.dist", None, f"missing; choose one of {sorted(TIMESCALE_SAMPLERS)}")
    name = d["dist"]
    cls = TIMESCALE_SAMPLERS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ConfigError(f"{field}.dist", name, f"unknown; choose one of {sorted(TIMESCALE_SAMPLERS)}")
    params = {k: v for k, v in d.items() if k != "dist"}
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    allowed = [f.name for f in fields]
    for key, value in params.items():
        if key not in allowed:
            raise ConfigError(f"{field}.{key}", value, f"unknown parameter of {name!r}; expected {allowed}")
    for f in fields:
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required and f.name not in params:
            raise ConfigError(f"{field}.{f.name}", None, f"missing (required by {name!r})")
    try:
        return cls._from_params(params, field)
    except ConfigError as err:
        if not err.field.startswith(f"{name}."):
            raise
        raise ConfigError(field + err.field[len(name) :], err.value, err.reason) from None


def sampler_to_dict(sampler: TimescaleSampler) -> dict[str, Any]:
    """Config mapping of a sampler; ``sampler_from_dict(sampler_to_dict(s)) == s``.

    Raises:
        ConfigError: ``sampler`` if it is not one of the registered sampler classes.
    """
    dist = getattr(sampler, "dist", None)
    if not isinstance(dist, str) or TIMESCALE_SAMPLERS.get(dist) is not type(sampler):
        raise ConfigError("sampler", sampler, f"not a registered sampler; choose one of {sorted(TIMESCALE_SAMPLERS)}")
    return {"dist": dist, **sampler._params()}  # type: ignore[attr-defined]
