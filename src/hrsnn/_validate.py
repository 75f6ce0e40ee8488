"""Input checks shared by :mod:`hrsnn.dynamics` and :mod:`hrsnn.pruning`; every failure raises
:class:`hrsnn.errors.ConfigError` naming the offending field."""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from hrsnn.errors import ConfigError

if TYPE_CHECKING:
    from hrsnn.network import RSNN


def check_int(field: str, value: Any, minimum: int) -> int:
    """Return ``value`` if it is an integer (not a bool) ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ConfigError(field, value, "must be an integer")
    if value < minimum:
        raise ConfigError(field, value, f"must be >= {minimum}")
    return int(value)


def check_real(
    field: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    strict: bool = False,
    allow_inf: bool = False,
) -> float:
    """Return ``value`` as a float if it is a real number (not a bool) in ``[low, high]`` (``(low, high]`` when
    ``strict``).

    It must be finite, except that ``allow_inf`` lets +inf through when there is no ``high`` (NaN is then
    reported as such, and a bound is checked before finiteness).
    """
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ConfigError(field, value, "must be a real number")
    out = float(value)
    if not allow_inf and not math.isfinite(out):
        raise ConfigError(field, value, "must be finite")
    if math.isnan(out):
        raise ConfigError(field, value, "must not be NaN")
    if low is not None and strict and out <= low:
        raise ConfigError(field, value, f"must be > {low:g}")
    if low is not None and out < low:
        raise ConfigError(field, value, f"must be >= {low:g}")
    if high is not None and out > high:
        raise ConfigError(field, value, f"must be <= {high:g}")
    if math.isinf(out) and (high is not None or out < 0):
        raise ConfigError(field, value, "must be finite")
    return out


def check_fraction(field: str, value: Any, *, open_low: bool = False) -> float:
    """Return ``value`` if it lies in [0, 1] (in (0, 1] when ``open_low``)."""
    out = check_real(field, value, low=0.0, high=1.0)
    if open_low and out == 0.0:
        raise ConfigError(field, value, "must be > 0")
    return out


def check_bool(field: str, value: Any) -> bool:
    """Return ``value`` if it is a bool."""
    if not isinstance(value, bool):
        raise ConfigError(field, value, "must be true or false")
    return value


def check_choice(field: str, value: Any, choices: Mapping[str, Any]) -> str:
    """Return ``value`` if it is one of the keys of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(field, value, f"must be one of {sorted(choices)}")
    return value


def check_generator(field: str, generator: Any) -> torch.Generator:
    """Return ``generator`` if it is a ``torch.Generator``."""
    if not isinstance(generator, torch.Generator):
        raise ConfigError(field, type(generator).__name__, "must be a torch.Generator")
    return generator


def check_model(model: Any) -> RSNN:
    """Return ``model`` if it is an :class:`hrsnn.network.RSNN` (field ``model``)."""
    from hrsnn.network import RSNN  # imported here so that this module stays importable by hrsnn.network's imports

    if not isinstance(model, RSNN):
        raise ConfigError("model", type(model).__name__, "must be an hrsnn.network.RSNN")
    return model


def check_tensor(field: str, x: Any, dim: int | tuple[int, ...] | None = None, *, finite: bool = False) -> Tensor:
    """Return ``x`` if it is a tensor with ``dim`` dimensions (one of them, when a tuple; any when None).

    With ``finite`` it must also be a floating-point tensor with finite entries.
    """
    if not isinstance(x, Tensor):
        raise ConfigError(field, type(x).__name__, "must be a torch.Tensor")
    dims = (dim,) if isinstance(dim, int) else dim
    if dims is not None and x.dim() not in dims:
        raise ConfigError(field, tuple(x.shape), f"must have {' or '.join(map(str, dims))} dimension(s)")
    if finite:
        _check_finite_entries(field, x)
    return x


def _check_finite_entries(field: str, x: Tensor) -> None:
    if not torch.is_floating_point(x):
        raise ConfigError(field, str(x.dtype), "must be a floating-point tensor")
    if not bool(torch.isfinite(x).all()):
        raise ConfigError(field, "non-finite entries", "must be finite")


def check_square(field: str, x: Any, n: int | None = None) -> Tensor:
    """Return ``x`` if it is a square matrix (of size ``n`` when given)."""
    x = check_tensor(field, x, dim=2)
    if x.shape[0] != x.shape[1]:
        raise ConfigError(field, tuple(x.shape), "must be a square matrix (n, n)")
    if n is not None and x.shape[0] != n:
        raise ConfigError(field, tuple(x.shape), f"must have shape ({n}, {n})")
    return x


def check_vector(field: str, x: Any, n: int) -> Tensor:
    """Return ``x`` if it is a finite vector of length ``n``."""
    x = check_tensor(field, x, dim=1)
    if x.shape[0] != n:
        raise ConfigError(field, tuple(x.shape), f"must have shape ({n},)")
    if torch.is_floating_point(x) and not bool(torch.isfinite(x).all()):
        raise ConfigError(field, "non-finite entries", "must be finite")
    return x


def check_bool_matrix(field: str, x: Any, n: int | None = None) -> Tensor:
    """Return ``x`` if it is a square bool matrix."""
    x = check_square(field, x, n)
    if x.dtype != torch.bool:
        raise ConfigError(field, str(x.dtype), "must be a bool tensor")
    return x


def check_finite_matrix(field: str, x: Any, n: int | None = None) -> Tensor:
    """Return ``x`` if it is a square floating matrix with finite entries."""
    x = check_square(field, x, n)
    _check_finite_entries(field, x)
    return x


def float64_matrix(field: str, x: Any, n: int | None = None) -> Tensor:
    """:func:`check_finite_matrix`, then ``x`` detached as float64 on the CPU (no copy when it already is)."""
    return check_finite_matrix(field, x, n).detach().to(device="cpu", dtype=torch.float64)


def off_diagonal(n: int, device: torch.device | None = None) -> Tensor:
    """Bool (n, n) matrix that is True off the diagonal."""
    return ~torch.eye(n, dtype=torch.bool, device=device)
