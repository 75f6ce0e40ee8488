"""Input validation shared by the dynamics modules; every failure raises :class:`hrsnn.errors.ConfigError`."""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch
from torch import Tensor

from hrsnn.errors import ConfigError


def check_int(field: str, value: Any, minimum: int) -> int:
    """Return ``value`` if it is an integer (not a bool) ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(field, value, "must be an integer")
    if value < minimum:
        raise ConfigError(field, value, f"must be >= {minimum}")
    return int(value)


def check_real(field: str, value: Any, *, low: float | None = None, strict: bool = False) -> float:
    """Return ``value`` as a finite float, ``>= low`` (or ``> low`` when ``strict``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(field, value, "must be a real number")
    out = float(value)
    if not math.isfinite(out):
        raise ConfigError(field, value, "must be finite")
    if low is not None and strict and out <= low:
        raise ConfigError(field, value, f"must be > {low:g}")
    if low is not None and not strict and out < low:
        raise ConfigError(field, value, f"must be >= {low:g}")
    return out


def check_tensor(field: str, value: Any, ndim: int | tuple[int, ...]) -> Tensor:
    """Return ``value`` if it is a finite floating-point tensor with ``ndim`` dimensions (one of them)."""
    dims = (ndim,) if isinstance(ndim, int) else ndim
    if not isinstance(value, Tensor):
        raise ConfigError(field, type(value).__name__, "must be a torch.Tensor")
    if value.dim() not in dims:
        raise ConfigError(field, tuple(value.shape), f"must have {' or '.join(map(str, dims))} dimension(s)")
    if not value.is_floating_point():
        raise ConfigError(field, str(value.dtype), "must be a floating-point tensor")
    if not bool(torch.isfinite(value).all()):
        raise ConfigError(field, "non-finite entries", "must be finite")
    return value


def check_square(field: str, value: Any) -> Tensor:
    """Return ``value`` as a float64 CPU copy if it is a finite square floating-point matrix."""
    matrix = check_tensor(field, value, 2)
    if matrix.shape[0] != matrix.shape[1]:
        raise ConfigError(field, tuple(matrix.shape), "must be a square matrix (n, n)")
    return matrix.detach().to(device="cpu", dtype=torch.float64)
