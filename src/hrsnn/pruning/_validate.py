"""Input checks shared by the pruning modules; every failure raises :class:`hrsnn.errors.ConfigError`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Integral, Real
from typing import Any

import torch
from torch import Tensor

from hrsnn.errors import ConfigError


def check_int(field: str, value: Any, minimum: int) -> int:
    """Return ``value`` if it is an integer ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ConfigError(field, value, "must be an integer")
    if value < minimum:
        raise ConfigError(field, value, f"must be >= {minimum}")
    return int(value)


def check_real(field: str, value: Any, *, low: float | None = None, high: float | None = None) -> float:
    """Return ``value`` as a float if it is a real number (not NaN) in ``[low, high]``; ±inf only at open ends."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ConfigError(field, value, "must be a real number")
    out = float(value)
    if math.isnan(out):
        raise ConfigError(field, value, "must not be NaN")
    if low is not None and out < low:
        raise ConfigError(field, value, f"must be >= {low:g}")
    if high is not None and out > high:
        raise ConfigError(field, value, f"must be <= {high:g}")
    if math.isinf(out) and (high is not None or out < 0):
        raise ConfigError(field, value, "must be finite")
    return out


def check_finite_real(field: str, value: Any, *, low: float | None = None, high: float | None = None) -> float:
    """Like :func:`check_real` but also rejects infinities."""
    out = check_real(field, value, low=low, high=high)
    if math.isinf(out):
        raise ConfigError(field, value, "must be finite")
    return out


def check_fraction(field: str, value: Any, *, open_low: bool = False) -> float:
    """Return ``value`` if it lies in [0, 1] (in (0, 1] when ``open_low``)."""
    out = check_finite_real(field, value, low=0.0, high=1.0)
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


def check_tensor(field: str, x: Any, *, dim: int | None = None) -> Tensor:
    """Return ``x`` if it is a tensor (of ``dim`` dimensions when given)."""
    if not isinstance(x, Tensor):
        raise ConfigError(field, type(x).__name__, "must be a torch.Tensor")
    if dim is not None and x.dim() != dim:
        raise ConfigError(field, tuple(x.shape), f"must have {dim} dimension(s)")
    return x


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
    if not torch.is_floating_point(x):
        raise ConfigError(field, str(x.dtype), "must be a floating-point tensor")
    if not bool(torch.isfinite(x).all()):
        raise ConfigError(field, "non-finite entries", "must be finite")
    return x


def off_diagonal(n: int, device: torch.device | None = None) -> Tensor:
    """Bool (n, n) matrix that is True off the diagonal."""
    return ~torch.eye(n, dtype=torch.bool, device=device)
