r"""Linear-noise analysis (Moore & Chaudhuri 2020, LNP spec §2.2) and eigenvector localisation.

Linear rate network driven by white noise, W_ij the weight from j to i, D = diag(d) the leak:

.. math::

    \dot x = A x + \sigma\xi(t), \qquad A = -D + c\,W

For a stable A (every eigenvalue has a negative real part) the stationary covariance C solves the continuous
Lyapunov equation

.. math::

    A C + C A^\top + \sigma^2 I = 0

(closed forms: :math:`C = -\sigma^2 A^{-1}/2` for symmetric A, :math:`C = -\sigma^2 (A + A^\top)^{-1}` for normal
A). The difference matrix is

.. math::

    \Delta_{ij} = C_{ii} + C_{jj} - 2\,\mathrm{sign}(W_{ij})\,C_{ij}

which is :math:`\mathrm{Var}(x_i - x_j) \ge 0` on excitatory edges (:math:`W_{ij} > 0`) and
:math:`\mathrm{Var}(x_i + x_j)` on inhibitory ones. If A is unstable no stationary covariance exists:
:func:`stationary_covariance` raises :class:`hrsnn.errors.ConfigError`, and :func:`linear_noise_analysis` either
raises too or, with ``rescale=True``, shrinks the coupling by a factor c ∈ (0, 1] so that the largest real part is
:math:`-\delta\,\min_i d_i` (LNP spec §2.4 step 4): by bisection on the eigenvalues (:func:`stabilizing_scale`), or
by the closed-form Gershgorin bound :math:`c = \min(1, (1-\delta)\min_i d_i / \sum_j |W_{ij}|)`
(:func:`gershgorin_scale`).

Eigenvector localisation: the inverse participation ratio of a vector v,

.. math::

    \mathrm{IPR}(v) = \frac{\sum_i |v_i|^4}{\left(\sum_i |v_i|^2\right)^2} \in [1/n, 1],

is 1 for a vector on one node and 1/n for one spread evenly over n nodes. :func:`eigenvector_localization` returns
it for every eigenvector of W, of the symmetrised :math:`S = (|W| + |W|^\top)/2`, or of the Laplacian
:math:`L = \mathrm{diag}(S\mathbf{1}) - S` (:data:`LOCALIZATION_OPERATORS`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from scipy.linalg import solve_continuous_lyapunov
from torch import Tensor

from hrsnn.dynamics._checks import check_real, check_square, check_tensor
from hrsnn.errors import ConfigError

__all__ = [
    "LOCALIZATION_OPERATORS",
    "STABILIZERS",
    "Localization",
    "NoiseAnalysis",
    "difference_matrix",
    "eigenvector_localization",
    "gershgorin_scale",
    "inverse_participation_ratio",
    "linear_noise_analysis",
    "max_real_eigenvalue",
    "stabilizing_scale",
    "stationary_covariance",
]


def max_real_eigenvalue(matrix: Tensor) -> float:
    """:math:`\\max_k \\mathrm{Re}\\,\\lambda_k(A)` in float64 (A is stable iff this is < 0)."""
    a = check_square("A", matrix)
    return float(torch.linalg.eigvals(a).real.max())


def stationary_covariance(a: Tensor, sigma: float = 1.0) -> Tensor:
    """Stationary covariance of :math:`\\dot x = Ax + \\sigma\\xi`: C solving :math:`AC + CA^\\top + \\sigma^2 I = 0`.

    Uses ``scipy.linalg.solve_continuous_lyapunov`` (Bartels–Stewart, O(n³)) in float64 and returns the symmetric
    part of the solution.

    Args:
        a: the drift matrix A (n, n); must be stable.
        sigma: noise amplitude σ, > 0.

    Raises:
        ConfigError: ``A`` if some eigenvalue has a real part >= 0 (no stationary state exists).
    """
    matrix = check_square("A", a)
    sigma = check_real("sigma", sigma, low=0.0, strict=True)
    top = max_real_eigenvalue(matrix)
    if top >= 0.0:
        raise ConfigError(
            "A",
            f"max Re λ = {top:.6g}",
            "is not stable, so no stationary covariance exists; shrink the coupling (linear_noise_analysis with "
            "rescale=True, stabilizing_scale) or raise the leak",
        )
    n = matrix.shape[0]
    c = solve_continuous_lyapunov(matrix.numpy(), -(sigma**2) * np.eye(n))
    c = torch.from_numpy(np.ascontiguousarray(c)).to(torch.float64)
    return 0.5 * (c + c.T)


def difference_matrix(covariance: Tensor, weight: Tensor) -> Tensor:
    """:math:`\\Delta_{ij} = C_{ii} + C_{jj} - 2\\,\\mathrm{sign}(W_{ij})\\,C_{ij}` (sign(0) = 0).

    Args:
        covariance: C (n, n).
        weight: W (n, n), W_ij the weight from j to i; only its signs are used.
    """
    c = check_square("covariance", covariance)
    w = check_square("weight", weight)
    if w.shape != c.shape:
        raise ConfigError("weight", tuple(w.shape), f"must have the covariance's shape {tuple(c.shape)}")
    diag = torch.diagonal(c)
    return diag[:, None] + diag[None, :] - 2.0 * torch.sign(w) * c


def _leak_and_weight(leak: Any, weight: Any) -> tuple[Tensor, Tensor]:
    w = check_square("weight", weight)
    d = check_tensor("leak", torch.as_tensor(leak, dtype=torch.float64), (0, 1)).to(torch.float64).cpu()
    d = d.expand(w.shape[0]).clone() if d.dim() == 0 else d
    if d.shape != (w.shape[0],):
        raise ConfigError("leak", tuple(d.shape), f"must be a scalar or a vector of length {w.shape[0]}")
    if bool((d <= 0).any()):
        raise ConfigError("leak", float(d.min()), "every leak rate d_i must be > 0")
    return d, w


def _check_margin(margin: float) -> float:
    margin = check_real("margin", margin, low=0.0)
    if margin >= 1.0:
        raise ConfigError("margin", margin, "must lie in [0, 1)")
    return margin


def stabilizing_scale(leak: Tensor | float, weight: Tensor, margin: float = 0.05, tol: float = 1e-12) -> float:
    """Coupling scale c ∈ (0, 1] with :math:`\\max\\mathrm{Re}\\,\\lambda(-D + cW) = -\\delta\\min_i d_i`, by bisection.

    c = 1 when the unscaled matrix already satisfies the bound. Otherwise bisection on [0, 1] (where the bound holds
    at 0 since δ < 1) until the bracket is narrower than ``tol``; the returned c is the bracket's stable end.

    Args:
        leak: d (scalar or (n,)), every entry > 0.
        weight: W (n, n).
        margin: δ ∈ [0, 1).
        tol: bracket width at which bisection stops.
    """
    d, w = _leak_and_weight(leak, weight)
    margin = _check_margin(margin)
    tol = check_real("tol", tol, low=0.0, strict=True)
    target = -margin * float(d.min())
    base = -torch.diag(d)

    def excess(c: float) -> float:
        return float(torch.linalg.eigvals(base + c * w).real.max()) - target

    if excess(1.0) <= 0.0:
        return 1.0
    low, high = 0.0, 1.0
    while high - low > tol:
        mid = 0.5 * (low + high)
        if excess(mid) <= 0.0:
            low = mid
        else:
            high = mid
    return low


def gershgorin_scale(leak: Tensor | float, weight: Tensor, margin: float = 0.05) -> float:
    """Closed-form :math:`c = \\min\\big(1, (1-\\delta)\\min_i d_i / \\sum_j |W_{ij}|\\big)` (rows with Σ = 0 skipped).

    By Gershgorin's theorem every eigenvalue of :math:`-D + cW` then has real part
    :math:`\\le \\max_i(-d_i + c\\sum_j|W_{ij}|) \\le -\\delta \\min_i d_i`; conservative but needs no eigenvalues.
    """
    d, w = _leak_and_weight(leak, weight)
    margin = _check_margin(margin)
    row = w.abs().sum(dim=1)
    active = row > 0
    if not bool(active.any()):
        return 1.0
    return min(1.0, (1.0 - margin) * float((d[active] / row[active]).min()))


STABILIZERS: Mapping[str, Callable[[Tensor, Tensor, float], float]] = MappingProxyType(
    {"bisection": stabilizing_scale, "gershgorin": gershgorin_scale}
)
"""Read-only map from a rescaling method to the function returning the coupling scale c."""


@dataclass(frozen=True, eq=False)
class NoiseAnalysis:
    """Result of :func:`linear_noise_analysis`.

    Attributes:
        a: the drift matrix :math:`A = -D + cW`.
        covariance: stationary covariance C (per σ² as given).
        delta: the difference matrix Δ.
        scale: the coupling scale c (1 when no rescaling was needed or allowed).
    """

    a: Tensor
    covariance: Tensor
    delta: Tensor
    scale: float


def linear_noise_analysis(
    weight: Tensor,
    leak: Tensor | float,
    sigma: float = 1.0,
    *,
    rescale: bool = False,
    method: Literal["bisection", "gershgorin"] = "bisection",
    margin: float = 0.05,
) -> NoiseAnalysis:
    """Covariance C and difference matrix Δ of :math:`\\dot x = (-D + cW)x + \\sigma\\xi` (module docstring).

    Args:
        weight: W (n, n), W_ij from j to i.
        leak: d (scalar or (n,)), e.g. 1/τ_i; every entry > 0.
        sigma: noise amplitude σ.
        rescale: if A = −D + W is unstable, shrink W by c from :data:`STABILIZERS` ``[method]`` instead of raising.
        method: "bisection" (exact margin) or "gershgorin" (conservative closed form).
        margin: δ of the target :math:`\\max\\mathrm{Re}\\,\\lambda = -\\delta\\min_i d_i`.

    Raises:
        ConfigError: ``A`` when A is unstable and ``rescale`` is False.
    """
    d, w = _leak_and_weight(leak, weight)
    if not isinstance(rescale, bool):
        raise ConfigError("rescale", rescale, "must be a bool")
    stabilizer = STABILIZERS.get(method) if isinstance(method, str) else None
    if stabilizer is None:
        raise ConfigError("method", method, f"must be one of {sorted(STABILIZERS)}")
    margin = _check_margin(margin)
    scale = 1.0
    if rescale and max_real_eigenvalue(-torch.diag(d) + w) > -margin * float(d.min()):
        scale = stabilizer(d, w, margin)
    a = -torch.diag(d) + scale * w
    covariance = stationary_covariance(a, sigma)
    return NoiseAnalysis(a, covariance, difference_matrix(covariance, w), scale)


# --------------------------------------------------------------------------------------------------
# eigenvector localisation
# --------------------------------------------------------------------------------------------------


def inverse_participation_ratio(vectors: Tensor) -> Tensor:
    """:math:`\\mathrm{IPR}_k = \\sum_i |v_{ik}|^4 / (\\sum_i |v_{ik}|^2)^2` for every column k of ``vectors``.

    Args:
        vectors: (n, K) real or complex; a 1-D tensor is one vector. No column may be zero.
    """
    if not isinstance(vectors, Tensor) or vectors.dim() not in (1, 2):
        raise ConfigError("vectors", getattr(vectors, "shape", vectors), "must be a 1-D or 2-D tensor")
    v = vectors[:, None] if vectors.dim() == 1 else vectors
    p = v.abs().to(torch.float64) ** 2
    norm = p.sum(dim=0)
    if bool((norm == 0).any()):
        raise ConfigError("vectors", "zero column", "every vector must be nonzero")
    ipr = (p**2).sum(dim=0) / norm**2
    return ipr[0] if vectors.dim() == 1 else ipr


def _symmetrized(w: Tensor) -> Tensor:
    """:math:`S = (|W| + |W|^\\top)/2`."""
    return 0.5 * (w.abs() + w.abs().T)


def _eig_weight(w: Tensor) -> tuple[Tensor, Tensor]:
    return torch.linalg.eig(w)


def _eig_symmetric(w: Tensor) -> tuple[Tensor, Tensor]:
    return torch.linalg.eigh(_symmetrized(w))


def _eig_laplacian(w: Tensor) -> tuple[Tensor, Tensor]:
    s = _symmetrized(w)
    return torch.linalg.eigh(torch.diag(s.sum(dim=1)) - s)


LOCALIZATION_OPERATORS: Mapping[str, Callable[[Tensor], tuple[Tensor, Tensor]]] = MappingProxyType(
    {"weight": _eig_weight, "symmetric": _eig_symmetric, "laplacian": _eig_laplacian}
)
"""Read-only map from an operator name (module docstring) to its eigen-solver returning (values, vectors)."""


class Localization(NamedTuple):
    """Eigenvalues (complex for "weight", real ascending otherwise) and the IPR of each eigenvector."""

    eigenvalues: Tensor
    ipr: Tensor


def eigenvector_localization(weight: Tensor, operator: str = "weight") -> Localization:
    """IPR of every eigenvector of an operator built from W (:data:`LOCALIZATION_OPERATORS`), in float64.

    "weight" uses ``torch.linalg.eig`` on W itself (complex eigenvectors, LAPACK order); "symmetric" and
    "laplacian" use ``torch.linalg.eigh`` (eigenvalues ascending). For a degenerate eigenvalue the eigenvectors
    are any orthonormal basis of its eigenspace, so their IPRs are not unique.
    """
    w = check_square("weight", weight)
    solve = LOCALIZATION_OPERATORS.get(operator) if isinstance(operator, str) else None
    if solve is None:
        raise ConfigError("operator", operator, f"must be one of {sorted(LOCALIZATION_OPERATORS)}")
    values, vectors = solve(w)
    return Localization(values, inverse_participation_ratio(vectors))
