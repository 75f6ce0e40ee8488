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
:math:`-\delta\,\min_i d_i` (LNP spec §2.4 step 4): by a bracketed root search on the eigenvalues
(:func:`stabilizing_scale`), or by the closed-form Gershgorin bound
:math:`c = \min(1, (1-\delta)\min_i d_i / \sum_j |W_{ij}|)` (:func:`gershgorin_scale`).

Eigenvector localisation: the inverse participation ratio of a vector v,

.. math::

    \mathrm{IPR}(v) = \frac{\sum_i |v_i|^4}{\left(\sum_i |v_i|^2\right)^2} \in [1/n, 1],

is 1 for a vector on one node and 1/n for one spread evenly over n nodes. :func:`eigenvector_localization` returns
it for every eigenvector of W, of the symmetrised :math:`S_{ij} = (|W_{ij}| + |W_{ji}|)/2` for i ≠ j,
:math:`S_{ii} = 0` (the undirected graph of W; self-connections ignored), or of its Laplacian
:math:`L = \mathrm{diag}(S\mathbf{1}) - S` (:data:`LOCALIZATION_OPERATORS`).

Dense LAPACK work (eigenvalues, Schur form, Sylvester solve) runs on one thread, see :mod:`hrsnn._threads`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

import numpy as np
import scipy.linalg
import scipy.linalg.lapack
import torch
from torch import Tensor

from hrsnn._threads import single_threaded
from hrsnn._validate import check_real, check_tensor, float64_matrix, off_diagonal
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
    "localization_eigenpairs",
    "max_real_eigenvalue",
    "stabilizing_scale",
    "stationary_covariance",
]


def max_real_eigenvalue(matrix: Tensor) -> float:
    """:math:`\\max_k \\mathrm{Re}\\,\\lambda_k(A)` in float64 (A is stable iff this is < 0)."""
    a = float64_matrix("A", matrix)
    with single_threaded():
        return float(torch.linalg.eigvals(a).real.max())


def _solve_lyapunov(a: Tensor, sigma: float, field: str) -> Tensor:
    """C with :math:`AC + CA^\\top + \\sigma^2 I = 0` for a float64 CPU matrix A; ``field`` names A in errors."""
    n = a.shape[0]
    if n == 0:
        return torch.zeros(0, 0, dtype=torch.float64)
    with single_threaded():
        r, u = scipy.linalg.schur(a.numpy(), output="real")
        top = float(np.diagonal(r).max())  # real Schur form: the diagonal holds the real parts of the eigenvalues
        if top >= 0.0:
            raise ConfigError(
                field,
                f"max Re λ = {top:.6g}",
                "is not stable, so no stationary covariance exists; shrink the coupling (linear_noise_analysis "
                "with rescale=True, stabilizing_scale) or raise the leak",
            )
        y, scale, info = scipy.linalg.lapack.dtrsyl(r, r, -(sigma**2) * np.eye(n), trana="N", tranb="T")
        if info < 0:  # pragma: no cover - only for malformed arguments
            raise ConfigError(field, f"dtrsyl info={info}", "the Sylvester solver rejected the Schur factors")
        c = u @ (y / scale) @ u.T
    out = torch.from_numpy(np.ascontiguousarray(c))
    return 0.5 * (out + out.T)


def stationary_covariance(a: Tensor, sigma: float = 1.0) -> Tensor:
    """Stationary covariance of :math:`\\dot x = Ax + \\sigma\\xi`: C solving :math:`AC + CA^\\top + \\sigma^2 I = 0`.

    Bartels–Stewart in float64 on one thread: real Schur form :math:`A = U R U^\\top` (its diagonal holds the real
    parts of the eigenvalues, so the stability check costs nothing extra), then :math:`RY + YR^\\top = -\\sigma^2 I`
    by LAPACK ``dtrsyl`` and :math:`C = U Y U^\\top`, symmetrised. O(n³).

    Args:
        a: the drift matrix A (n, n); must be stable.
        sigma: noise amplitude σ, > 0; C scales with σ².

    Returns:
        C, float64 (n, n), on the CPU.

    Raises:
        ConfigError: ``a`` if it is not a finite square matrix or some eigenvalue has a real part >= 0 (no
            stationary state exists).
    """
    matrix = float64_matrix("a", a)
    sigma = check_real("sigma", sigma, low=0.0, strict=True)
    return _solve_lyapunov(matrix, sigma, "a")


def difference_matrix(weight: Tensor, covariance: Tensor) -> Tensor:
    """:math:`\\Delta_{ij} = C_{ii} + C_{jj} - 2\\,\\mathrm{sign}(W_{ij})\\,C_{ij}` (sign(0) = 0), float64.

    Args:
        weight: W (n, n), W_ij the weight from j to i; only its signs are used.
        covariance: C (n, n).
    """
    c = float64_matrix("covariance", covariance)
    w = float64_matrix("weight", weight)
    if w.shape != c.shape:
        raise ConfigError("weight", tuple(w.shape), f"must have the covariance's shape {tuple(c.shape)}")
    diag = torch.diagonal(c)
    return diag[:, None] + diag[None, :] - 2.0 * torch.sign(w) * c


# --------------------------------------------------------------------------------------------------
# stability rescaling
# --------------------------------------------------------------------------------------------------


def _leak_and_weight(leak: Any, weight: Any) -> tuple[Tensor, Tensor]:
    w = float64_matrix("weight", weight)
    d = check_tensor("leak", torch.as_tensor(leak, dtype=torch.float64), (0, 1), finite=True)
    d = d.detach().to(device="cpu", dtype=torch.float64)
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


def _gershgorin(d: Tensor, w: Tensor, margin: float) -> float:
    row = w.abs().sum(dim=1)
    active = row > 0
    if not bool(active.any()):
        return 1.0
    return min(1.0, (1.0 - margin) * float((d[active] / row[active]).min()))


def gershgorin_scale(leak: Tensor | float, weight: Tensor, margin: float = 0.05) -> float:
    """Closed-form :math:`c = \\min\\big(1, (1-\\delta)\\min_i d_i / \\sum_j |W_{ij}|\\big)` (rows with Σ = 0 skipped).

    By Gershgorin's theorem every eigenvalue of :math:`-D + cW` then has real part
    :math:`\\le \\max_i(-d_i + c\\sum_j|W_{ij}|) \\le -\\delta \\min_i d_i`; conservative but needs no eigenvalues.
    """
    d, w = _leak_and_weight(leak, weight)
    return _gershgorin(d, w, _check_margin(margin))


def stabilizing_scale(leak: Tensor | float, weight: Tensor, margin: float = 0.05, tol: float = 1e-12) -> float:
    """Largest c ∈ (0, 1] with :math:`\\max\\mathrm{Re}\\,\\lambda(-D + cW) \\le -\\delta\\min_i d_i`, to ``tol``.

    c = 1 when the unscaled matrix already meets the bound. Otherwise a bracketed root search of
    :math:`g(c) = \\max\\mathrm{Re}\\,\\lambda(-D + cW) + \\delta\\min_i d_i` on :math:`[c_G, 1]`, with
    :math:`c_G` = :func:`gershgorin_scale` (where g ≤ 0): false position with the Illinois modification, falling
    back to the midpoint whenever the secant leaves the bracket. It stops once the bracket is narrower than
    ``tol``·c or :math:`|g| \\le` ``tol``·min d at its stable end, and returns that end (so the bound always holds).
    Measured: 6–11 eigen-solves for n = 40–200 and tol = 1e-3 to 1e-12, where bisection on [0, 1] needs
    :math:`\\log_2(1/tol) + 1` (11 to 41).

    Args:
        leak: d (scalar or (n,)), every entry > 0.
        weight: W (n, n).
        margin: δ ∈ [0, 1).
        tol: relative tolerance, > 0.
    """
    d, w = _leak_and_weight(leak, weight)
    margin = _check_margin(margin)
    tol = check_real("tol", tol, low=0.0, strict=True)
    with single_threaded():
        return _false_position(d, w, margin, tol)


def _false_position(d: Tensor, w: Tensor, margin: float, tol: float) -> float:
    """The root search of :func:`stabilizing_scale` on validated float64 inputs."""
    bound = -margin * float(d.min())
    base = -torch.diag(d)

    def excess(c: float) -> float:
        return float(torch.linalg.eigvals(base + c * w).real.max()) - bound

    g_hi = excess(1.0)
    if g_hi <= 0.0:
        return 1.0
    lo, hi = _gershgorin(d, w, margin), 1.0
    g_lo = excess(lo)
    if g_lo > 0.0:  # only rounding can put the Gershgorin scale on the wrong side
        return lo
    close = tol * float(d.min())
    side = 0
    for _ in range(200):
        if hi - lo <= tol * hi or -g_lo <= close:
            break
        c = hi - g_hi * (hi - lo) / (g_hi - g_lo)
        if not lo < c < hi:
            c = 0.5 * (lo + hi)
        g_c = excess(c)
        if g_c <= 0.0:
            lo, g_lo = c, g_c
            g_hi = g_hi / 2.0 if side == -1 else g_hi
            side = -1
        else:
            hi, g_hi = c, g_c
            g_lo = g_lo / 2.0 if side == 1 else g_lo
            side = 1
    return lo


def _gershgorin_stabilizer(leak: Tensor | float, weight: Tensor, margin: float, tol: float) -> float:
    del tol  # the closed form is exact
    return gershgorin_scale(leak, weight, margin)


STABILIZERS: Mapping[str, Callable[[Tensor, Tensor, float, float], float]] = MappingProxyType(
    {"bisection": stabilizing_scale, "gershgorin": _gershgorin_stabilizer}
)
"""Read-only map from a rescaling method to ``fn(leak, weight, margin, tol) -> c``: "bisection", the bracketed
root search :func:`stabilizing_scale` (exact margin), or "gershgorin", :func:`gershgorin_scale` (no eigenvalues;
more conservative; ``tol`` unused)."""


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
    tol: float = 1e-12,
) -> NoiseAnalysis:
    """Covariance C and difference matrix Δ of :math:`\\dot x = (-D + cW)x + \\sigma\\xi` (module docstring).

    Args:
        weight: W (n, n), W_ij from j to i.
        leak: d (scalar or (n,)), e.g. 1/τ_i; every entry > 0.
        sigma: noise amplitude σ.
        rescale: if −D + W misses the margin, shrink W by c from :data:`STABILIZERS` ``[method]`` instead of
            raising (when A is unstable) or keeping it.
        method: "bisection" (exact margin) or "gershgorin" (conservative closed form).
        margin: δ of the target :math:`\\max\\mathrm{Re}\\,\\lambda = -\\delta\\min_i d_i`.
        tol: relative tolerance of the "bisection" root search.

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
    sigma = check_real("sigma", sigma, low=0.0, strict=True)
    scale = 1.0
    if rescale and max_real_eigenvalue(-torch.diag(d) + w) > -margin * float(d.min()):
        scale = stabilizer(d, w, margin, tol)
    a = -torch.diag(d) + scale * w
    covariance = _solve_lyapunov(a, sigma, "A")
    return NoiseAnalysis(a, covariance, difference_matrix(w, covariance), scale)


# --------------------------------------------------------------------------------------------------
# eigenvector localisation
# --------------------------------------------------------------------------------------------------


def inverse_participation_ratio(vectors: Tensor) -> Tensor:
    """:math:`\\mathrm{IPR}_k = \\sum_i |v_{ik}|^4 / (\\sum_i |v_{ik}|^2)^2` for every column k of ``vectors``.

    Args:
        vectors: (n, K) real or complex; a 1-D tensor is one vector. No column may be zero.

    Returns:
        float64 (K,), or a 0-D tensor for a 1-D input.
    """
    if not isinstance(vectors, Tensor) or vectors.dim() not in (1, 2):
        raise ConfigError("vectors", getattr(vectors, "shape", vectors), "must be a 1-D or 2-D tensor")
    v = vectors.detach()
    v = v[:, None] if v.dim() == 1 else v
    p = v.abs().to(torch.float64) ** 2
    norm = p.sum(dim=0)
    if bool((norm == 0).any()):
        raise ConfigError("vectors", "zero column", "every vector must be nonzero")
    ipr = (p**2).sum(dim=0) / norm**2
    return ipr[0] if vectors.dim() == 1 else ipr


def _symmetrized(w: Tensor) -> Tensor:
    """:math:`S = (|W| + |W|^\\top)/2` off the diagonal, 0 on it."""
    s = w.abs() * off_diagonal(w.shape[0])
    return 0.5 * (s + s.T)


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


def localization_eigenpairs(weight: Tensor, operator: str = "weight") -> tuple[Tensor, Tensor]:
    """Eigenvalues and eigenvectors (as columns) of an operator built from W (:data:`LOCALIZATION_OPERATORS`).

    "weight" uses ``torch.linalg.eig`` on W itself (complex, LAPACK order); "symmetric" and "laplacian" use
    ``torch.linalg.eigh`` (real, eigenvalues ascending, orthonormal eigenvectors). Float64, one thread.
    """
    w = float64_matrix("weight", weight)
    solve = LOCALIZATION_OPERATORS.get(operator) if isinstance(operator, str) else None
    if solve is None:
        raise ConfigError("operator", operator, f"must be one of {sorted(LOCALIZATION_OPERATORS)}")
    with single_threaded():
        return solve(w)


def eigenvector_localization(weight: Tensor, operator: str = "weight") -> Localization:
    """IPR of every eigenvector of an operator built from W (:func:`localization_eigenpairs`), in float64.

    For a degenerate eigenvalue the eigenvectors are any orthonormal basis of its eigenspace, so their IPRs are
    not unique.
    """
    values, vectors = localization_eigenpairs(weight, operator)
    return Localization(values, inverse_participation_ratio(vectors))
