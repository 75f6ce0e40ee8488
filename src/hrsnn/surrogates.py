"""Spike function with surrogate gradients.

The forward pass is the Heaviside step of the distance to threshold ``v = u - θ``::

    s = H(v),   H(v) = 1 if v > 0 else 0        (strict: H(0) = 0)

and the backward pass replaces the ill-defined derivative by a smooth bump::

    ∂s/∂v ≈ derivative(v) = scale · ψ(v)

Each surrogate is a small frozen dataclass whose fields are its hyper-parameters. ``shape`` returns the
unscaled bump ψ, ``derivative`` returns ``scale · ψ``, and ``derivative_(v, work)`` writes the same derivative into
``v`` in place (``work`` is scratch of v's shape): the fused kernels (:mod:`hrsnn.fused`) call it on blocks of time
steps so that nothing is allocated; it equals ``derivative`` to rounding. ``N(x; μ, σ)`` is the normalised Gaussian pdf
``exp(-(x-μ)²/(2σ²)) / (√(2π) σ)``.

The authors of the adaptive SRNN multiply every surrogate by a "gradient scale" γ = 0.5. The default
``scale = 0.5`` of :class:`MultiGaussian`, :class:`Gaussian`, :class:`Triangle` and
:class:`SlayerExponential` (the four surrogates in their code: ``MG``, ``G``, ``linear``, ``slayer``)
reproduces that γ, so these defaults give exactly their backward pass. :class:`FastSigmoid` (SuperSpike) and
:class:`ArcTan` are not in their code and default to ``scale = 1``.

:func:`spike` is a ``torch.autograd.Function`` in the functional style (``setup_context``,
``generate_vmap_rule``), so it works under ``torch.func.jacrev``, ``jacfwd`` and ``vmap``.

Configs name surrogates through :data:`SURROGATES`; :func:`make_surrogate` and :func:`surrogate_to_dict` are
inverse to each other.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch
from torch import Tensor

from hrsnn.errors import ConfigError

__all__ = [
    "SURROGATES",
    "ArcTan",
    "FastSigmoid",
    "Gaussian",
    "MultiGaussian",
    "SlayerExponential",
    "Surrogate",
    "Triangle",
    "make_surrogate",
    "spike",
    "surrogate_to_dict",
]

_SQRT_2PI = math.sqrt(2.0 * math.pi)


@runtime_checkable
class Surrogate(Protocol):
    """A surrogate derivative of the Heaviside spike function.

    Attributes:
        name: key of the surrogate in :data:`SURROGATES` and in configs.
        scale: gradient scale γ multiplying the bump.
    """

    name: ClassVar[str]
    scale: float

    def shape(self, v: Tensor) -> Tensor:
        """Unscaled bump ψ(v), elementwise."""
        ...

    def derivative(self, v: Tensor) -> Tensor:
        """Surrogate derivative ``scale · ψ(v)``, elementwise."""
        ...


def _check_real(obj: object, field: str, *, positive: bool = True) -> None:
    """Coerce dataclass field ``field`` of ``obj`` to float and check that it is finite (and > 0 or >= 0).

    Raises:
        ConfigError: naming ``surrogate.<field>`` when the value is not a finite real number in range.
    """
    value = getattr(obj, field)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"surrogate.{field}", value, "must be a real number")
    value = float(value)
    if not math.isfinite(value):
        raise ConfigError(f"surrogate.{field}", value, "must be finite")
    if positive and value <= 0.0:
        raise ConfigError(f"surrogate.{field}", value, "must be > 0")
    if not positive and value < 0.0:
        raise ConfigError(f"surrogate.{field}", value, "must be >= 0")
    object.__setattr__(obj, field, value)


def _normal_pdf(v: Tensor, mean: float, std: float) -> Tensor:
    """Normalised Gaussian pdf ``N(v; mean, std) = exp(-(v-mean)²/(2 std²)) / (√(2π) std)``."""
    z = (v - mean) / std
    return torch.exp(-0.5 * z * z) / (_SQRT_2PI * std)


class _Scaled:
    """Mixin: ``derivative(v) = scale · shape(v)`` for dataclasses that define ``scale`` and ``shape``."""

    scale: float

    def shape(self, v: Tensor) -> Tensor:  # pragma: no cover - overridden by every surrogate
        raise NotImplementedError

    def derivative(self, v: Tensor) -> Tensor:
        """Surrogate derivative ``scale · ψ(v)``."""
        return self.scale * self.shape(v)


@dataclasses.dataclass(frozen=True)
class MultiGaussian(_Scaled):
    """Multi-Gaussian surrogate of Yin, Corradi & Bohté (2021).

    ``ψ(v) = (1+h)·N(v; 0, σ) − h·N(v; σ, sσ) − h·N(v; −σ, sσ)``. With the defaults ψ(0) ≈ 0.8782,
    ψ crosses zero at |v| ≈ 1.272, has its minimum ≈ −0.0317 at |v| ≈ 1.86, and ``∫ψ dv = 1 − h``.

    Args:
        sigma: width σ of the central Gaussian (the authors' ``lens``), > 0.
        h: height h of the negative side lobes (``hight``), >= 0.
        s: width ratio s of the side lobes (``scale`` in their code), > 0.
        scale: gradient scale γ, > 0.
    """

    name: ClassVar[str] = "multi_gaussian"

    sigma: float = 0.5
    h: float = 0.15
    s: float = 6.0
    scale: float = 0.5

    def __post_init__(self) -> None:
        _check_real(self, "sigma")
        _check_real(self, "h", positive=False)
        _check_real(self, "s")
        _check_real(self, "scale")

    def shape(self, v: Tensor) -> Tensor:
        """``ψ(v) = (1+h)·N(v; 0, σ) − h·N(v; σ, sσ) − h·N(v; −σ, sσ)``."""
        side = self.s * self.sigma
        return (1.0 + self.h) * _normal_pdf(v, 0.0, self.sigma) - self.h * (
            _normal_pdf(v, self.sigma, side) + _normal_pdf(v, -self.sigma, side)
        )

    def derivative_(self, v: Tensor, work: Tensor) -> Tensor:
        """In place, with the two side lobes as one: with S = sσ,
        ``N(v; σ, S) + N(v; −σ, S) = 2 e^{−(v² + σ²)/(2S²)} cosh(vσ/S²) / (√(2π) S)``."""
        side2 = (self.s * self.sigma) ** 2
        centre = self.scale * (1.0 + self.h) / (_SQRT_2PI * self.sigma)
        lobes = self.scale * self.h * 2.0 * math.exp(-0.5 * self.sigma**2 / side2) / (_SQRT_2PI * math.sqrt(side2))
        torch.mul(v, self.sigma / side2, out=work).cosh_()
        v.square_()
        work.mul_(torch.mul(v, -0.5 / side2).exp_())
        v.mul_(-0.5 / self.sigma**2).exp_().mul_(centre)
        return v.sub_(work, alpha=lobes)


@dataclasses.dataclass(frozen=True)
class Gaussian(_Scaled):
    """Single Gaussian surrogate: ``ψ(v) = N(v; 0, σ)``, ``∫ψ dv = 1``.

    Args:
        sigma: width σ, > 0.
        scale: gradient scale γ, > 0.
    """

    name: ClassVar[str] = "gaussian"

    sigma: float = 0.5
    scale: float = 0.5

    def __post_init__(self) -> None:
        _check_real(self, "sigma")
        _check_real(self, "scale")

    def shape(self, v: Tensor) -> Tensor:
        """``ψ(v) = exp(−v²/(2σ²)) / (√(2π) σ)``."""
        return _normal_pdf(v, 0.0, self.sigma)

    def derivative_(self, v: Tensor, work: Tensor) -> Tensor:
        """In place (``work`` unused)."""
        return v.square_().mul_(-0.5 / self.sigma**2).exp_().mul_(self.scale / (_SQRT_2PI * self.sigma))


@dataclasses.dataclass(frozen=True)
class Triangle(_Scaled):
    """Triangular (piecewise linear) surrogate, the authors' ``linear``: ``ψ(v) = max(0, 1 − |v|/w)``.

    ``∫ψ dv = w``.

    Args:
        width: half-width w of the support, > 0.
        scale: gradient scale γ, > 0.
    """

    name: ClassVar[str] = "triangle"

    width: float = 1.0
    scale: float = 0.5

    def __post_init__(self) -> None:
        _check_real(self, "width")
        _check_real(self, "scale")

    def shape(self, v: Tensor) -> Tensor:
        """``ψ(v) = max(0, 1 − |v|/w)``."""
        return torch.relu(1.0 - v.abs() / self.width)

    def derivative_(self, v: Tensor, work: Tensor) -> Tensor:
        """In place (``work`` unused)."""
        return v.abs_().div_(self.width).neg_().add_(1.0).clamp_(min=0.0).mul_(self.scale)


@dataclasses.dataclass(frozen=True)
class SlayerExponential(_Scaled):
    """SLAYER exponential surrogate: ``ψ(v) = exp(−α|v|)``, ``∫ψ dv = 2/α``.

    Args:
        alpha: decay rate α, > 0.
        scale: gradient scale γ, > 0.
    """

    name: ClassVar[str] = "slayer"

    alpha: float = 5.0
    scale: float = 0.5

    def __post_init__(self) -> None:
        _check_real(self, "alpha")
        _check_real(self, "scale")

    def shape(self, v: Tensor) -> Tensor:
        """``ψ(v) = exp(−α|v|)``."""
        return torch.exp(-self.alpha * v.abs())

    def derivative_(self, v: Tensor, work: Tensor) -> Tensor:
        """In place (``work`` unused)."""
        return v.abs_().mul_(-self.alpha).exp_().mul_(self.scale)


@dataclasses.dataclass(frozen=True)
class FastSigmoid(_Scaled):
    """Fast-sigmoid (SuperSpike) surrogate: ``ψ(v) = 1 / (1 + k|v|)²``, ``∫ψ dv = 2/k``.

    Args:
        slope: steepness k, > 0.
        scale: gradient scale, > 0.
    """

    name: ClassVar[str] = "fast_sigmoid"

    slope: float = 10.0
    scale: float = 1.0

    def __post_init__(self) -> None:
        _check_real(self, "slope")
        _check_real(self, "scale")

    def shape(self, v: Tensor) -> Tensor:
        """``ψ(v) = 1 / (1 + k|v|)²``."""
        return (1.0 + self.slope * v.abs()).reciprocal().square()

    def derivative_(self, v: Tensor, work: Tensor) -> Tensor:
        """In place (``work`` unused)."""
        return v.abs_().mul_(self.slope).add_(1.0).reciprocal_().square_().mul_(self.scale)


@dataclasses.dataclass(frozen=True)
class ArcTan(_Scaled):
    """Arctan surrogate (derivative of ``arctan(π α v / 2)/π``): ``ψ(v) = (α/2) / (1 + (π α v / 2)²)``.

    ``∫ψ dv = 1``.

    Args:
        alpha: steepness α, > 0.
        scale: gradient scale, > 0.
    """

    name: ClassVar[str] = "arctan"

    alpha: float = 2.0
    scale: float = 1.0

    def __post_init__(self) -> None:
        _check_real(self, "alpha")
        _check_real(self, "scale")

    def shape(self, v: Tensor) -> Tensor:
        """``ψ(v) = (α/2) / (1 + (π α v / 2)²)``."""
        x = (0.5 * math.pi * self.alpha) * v
        return (0.5 * self.alpha) / (1.0 + x * x)

    def derivative_(self, v: Tensor, work: Tensor) -> Tensor:
        """In place (``work`` unused)."""
        return v.mul_(0.5 * math.pi * self.alpha).square_().add_(1.0).reciprocal_().mul_(0.5 * self.alpha * self.scale)


class _SpikeFunction(torch.autograd.Function):
    """``s = H(v)`` forward, ``∂s/∂v = surrogate.derivative(v)`` backward (reverse and forward mode)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(v: Tensor, surrogate: Surrogate) -> Tensor:  # type: ignore[override]
        return (v > 0).to(v.dtype)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor, Surrogate], output: Tensor) -> None:
        v, surrogate = inputs
        ctx.save_for_backward(v)
        ctx.save_for_forward(v)
        ctx.surrogate = surrogate

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        (v,) = ctx.saved_tensors
        return grad_output * ctx.surrogate.derivative(v), None

    @staticmethod
    def jvp(ctx: Any, v_tangent: Tensor, surrogate_tangent: None) -> Tensor:
        (v,) = ctx.saved_tensors
        return ctx.surrogate.derivative(v) * v_tangent


def spike(v: Tensor, surrogate: Surrogate) -> Tensor:
    """Heaviside spike with a surrogate gradient.

    Forward ``s = H(v)`` with ``H(v) = 1`` if ``v > 0`` else ``0`` (strict, so ``H(0) = 0``); backward
    ``∂s/∂v = surrogate.derivative(v)``. The surrogate's hyper-parameters receive no gradient.

    Args:
        v: distance to threshold ``u − θ``, a floating-point tensor of any shape.
        surrogate: the surrogate derivative to use in the backward pass.

    Returns:
        Spikes in {0, 1}, same shape, dtype and device as ``v``.

    Raises:
        ConfigError: if ``v`` is not floating point.
    """
    if not v.is_floating_point():
        raise ConfigError("v", v.dtype, "must be a floating-point tensor")
    return _SpikeFunction.apply(v, surrogate)


_SURROGATE_CLASSES: tuple[type[Surrogate], ...] = (
    MultiGaussian,
    Gaussian,
    Triangle,
    SlayerExponential,
    FastSigmoid,
    ArcTan,
)

SURROGATES: Mapping[str, type[Surrogate]] = types.MappingProxyType({c.name: c for c in _SURROGATE_CLASSES})
"""Read-only map from a config name to its surrogate class."""


def make_surrogate(name: str, **params: float) -> Surrogate:
    """Build a surrogate from its config name and hyper-parameters (missing ones take their defaults).

    Args:
        name: a key of :data:`SURROGATES`, e.g. ``"multi_gaussian"``.
        **params: hyper-parameters of that surrogate, e.g. ``sigma=0.3``.

    Raises:
        ConfigError: ``surrogate.name`` for an unknown name, ``surrogate.<key>`` for an unknown or invalid
            hyper-parameter.
    """
    cls = SURROGATES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ConfigError("surrogate.name", name, f"unknown; choose one of {sorted(SURROGATES)}")
    allowed = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    for key, value in params.items():
        if key not in allowed:
            raise ConfigError(f"surrogate.{key}", value, f"unknown hyper-parameter of {name!r}; expected {allowed}")
    return cls(**params)


def surrogate_to_dict(surrogate: Surrogate) -> dict[str, Any]:
    """Config form ``{"name": ..., <field>: <value>, ...}``; ``make_surrogate(**surrogate_to_dict(s)) == s``.

    Raises:
        ConfigError: ``surrogate`` if the object is not one of the registered surrogate dataclasses.
    """
    name = getattr(surrogate, "name", None)
    if not isinstance(name, str) or SURROGATES.get(name) is not type(surrogate):
        raise ConfigError("surrogate", surrogate, f"not a registered surrogate; choose one of {sorted(SURROGATES)}")
    return {"name": name, **dataclasses.asdict(surrogate)}  # type: ignore[call-overload]
