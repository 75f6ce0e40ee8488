"""Linear-noise analysis (continuous Lyapunov equation, Δ, stability rescaling) and eigenvector IPR: known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from hrsnn.dynamics.noise import (
    STABILIZERS,
    difference_matrix,
    eigenvector_localization,
    gershgorin_scale,
    inverse_participation_ratio,
    linear_noise_analysis,
    localization_eigenpairs,
    max_real_eigenvalue,
    stabilizing_scale,
    stationary_covariance,
)
from hrsnn.errors import ConfigError

F64 = torch.float64


def _weight(n: int = 8, scale: float = 0.3, seed: int = 0) -> torch.Tensor:
    return scale * torch.randn(n, n, generator=torch.Generator().manual_seed(seed), dtype=F64)


def _scipy_covariance(a: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """Reference C from scipy directly: A C + C A^T + σ² I = 0."""
    n = a.shape[0]
    return torch.from_numpy(scipy.linalg.solve_continuous_lyapunov(a.double().numpy(), -(sigma**2) * np.eye(n)))


def _abscissa(a: torch.Tensor) -> float:
    return float(torch.linalg.eigvals(a).real.max())


def test_covariance_solves_the_continuous_lyapunov_equation():
    a = -2.0 * torch.eye(8, dtype=F64) + _weight()
    sigma = 0.7
    c = stationary_covariance(a, sigma)
    residual = a @ c + c @ a.T + sigma**2 * torch.eye(8, dtype=F64)
    assert float(residual.abs().max()) < 1e-8
    assert torch.equal(c, c.T)
    assert bool((torch.linalg.eigvalsh(c) > 0).all())


def test_covariance_closed_forms_symmetric_and_normal():
    # Symmetric A: C = −σ² A⁻¹ / 2. Normal A (here A = −3I + K, K skew): C = −σ² (A + Aᵀ)⁻¹ = σ²/6 · I.
    w = _weight(6)
    sym = -3.0 * torch.eye(6, dtype=F64) + 0.5 * (w + w.T)
    assert torch.allclose(stationary_covariance(sym, 2.0), -4.0 * torch.linalg.inv(sym) / 2.0, atol=1e-12)
    normal = -3.0 * torch.eye(6, dtype=F64) + (w - w.T)
    assert torch.allclose(stationary_covariance(normal, 2.0), torch.eye(6, dtype=F64) * 4.0 / 6.0, atol=1e-12)


def test_scalar_ou_process_variance():
    # ẋ = −d x + σ ξ: Var x = σ² / (2d).
    c = stationary_covariance(torch.tensor([[-0.5]], dtype=F64), sigma=3.0)
    assert float(c) == pytest.approx(9.0 / 1.0)
    torch.testing.assert_close(
        stationary_covariance(torch.tensor([[-2.0]]), sigma=3.0), torch.tensor([[9.0 / 4.0]]).double()
    )


def test_covariance_of_symmetric_system_is_minus_half_inverse():
    g = torch.Generator().manual_seed(0)
    b = torch.randn(6, 6, generator=g, dtype=torch.float64)
    a = -(b @ b.T) - torch.eye(6, dtype=torch.float64)
    c = stationary_covariance(a, sigma=2.0)
    torch.testing.assert_close(c, -4.0 * torch.linalg.inv(a) / 2.0)


def test_covariance_matches_scipy_on_a_diagonally_dominant_system():
    g = torch.Generator().manual_seed(1)
    mask = (torch.rand(10, 10, generator=g) < 0.5) & ~torch.eye(10, dtype=torch.bool)
    w = torch.randn(10, 10, generator=g, dtype=torch.float64) * mask
    a = w - torch.diag(w.abs().sum(1) + 0.1)
    c = stationary_covariance(a, sigma=0.5)
    residual = a @ c + c @ a.T + 0.25 * torch.eye(10, dtype=torch.float64)
    assert float(residual.abs().max()) < 1e-10
    torch.testing.assert_close(c, _scipy_covariance(a, 0.5))
    torch.testing.assert_close(c, c.T, rtol=0, atol=0)
    assert stationary_covariance(torch.zeros(0, 0)).shape == (0, 0)


def test_covariance_of_normal_system_with_complex_eigenvalues():
    # A = [[−a, −b], [b, −a]] is normal with eigenvalues −a ± ib: C = −σ²(A + Aᵀ)⁻¹ = σ²/(2a) I
    a = torch.tensor([[-0.2, -3.0], [3.0, -0.2]])
    torch.testing.assert_close(stationary_covariance(a, sigma=2.0), torch.eye(2).double() * 4.0 / 0.4)
    with pytest.raises(ConfigError) as info:
        stationary_covariance(torch.tensor([[0.01, -3.0], [3.0, 0.01]]))  # Re eig = +0.01
    assert info.value.field == "a"


def test_unstable_system_is_rejected():
    with pytest.raises(ConfigError) as info:
        stationary_covariance(torch.tensor([[0.5, 0.0], [1.0, -1.0]]))
    assert info.value.field == "a" and "not stable" in info.value.reason
    with pytest.raises(ConfigError):
        stationary_covariance(torch.tensor([[-1.0]]), sigma=0.0)


def test_difference_matrix_by_hand_and_positive_on_excitatory_edges():
    c = torch.tensor([[2.0, 0.5, -0.3], [0.5, 1.0, 0.2], [-0.3, 0.2, 3.0]], dtype=F64)
    w = torch.tensor([[0.0, 1.0, -2.0], [-1.0, 0.0, 0.0], [0.5, 0.0, 0.0]], dtype=F64)
    delta = difference_matrix(w, c)
    # Δ01 = 2 + 1 − 2·0.5 = 2 ; Δ02 = 2 + 3 + 2·(−0.3) = 4.4 ; Δ10 = 1 + 2 + 2·0.5 = 4 ; Δ12 = 1 + 3 (no edge)
    assert float(delta[0, 1]) == pytest.approx(2.0)
    assert float(delta[0, 2]) == pytest.approx(4.4)
    assert float(delta[1, 0]) == pytest.approx(4.0)
    assert float(delta[1, 2]) == pytest.approx(4.0)
    assert float(delta[2, 0]) == pytest.approx(3.0 + 2.0 + 0.6)
    w = _weight(10)
    result = linear_noise_analysis(w, leak=2.0)
    excitatory = (w > 0) & ~torch.eye(10, dtype=torch.bool)
    assert bool((result.delta[excitatory] > 0).all())  # Δ_ij = Var(x_i − x_j) on edges i ≠ j
    c = result.covariance
    i, j = 1, 4
    assert float(c[i, i] + c[j, j] - 2 * c[i, j]) >= 0
    cov = torch.tensor([[2.0, 0.5], [0.5, 1.0]])
    w = torch.tensor([[0.0, 1.0], [-3.0, 0.0]])
    # Δ_01 = 2 + 1 − 2·(+1)·0.5 = 2,  Δ_10 = 2 + 1 − 2·(−1)·0.5 = 4,  Δ_ii = 2 C_ii (sign 0)
    torch.testing.assert_close(difference_matrix(w, cov), torch.tensor([[4.0, 2.0], [4.0, 2.0]]).double())


def test_unstable_drift_raises_and_rescaling_restores_the_margin():
    w = _weight(8, scale=1.5)
    with pytest.raises(ConfigError, match="A=") as info:
        linear_noise_analysis(w, leak=1.0)
    assert "not stable" in str(info.value)
    with pytest.raises(ConfigError, match="a="):
        stationary_covariance(torch.eye(3, dtype=F64))
    result = linear_noise_analysis(w, leak=1.0, rescale=True, margin=0.05)
    assert 0 < result.scale < 1
    assert max_real_eigenvalue(result.a) == pytest.approx(-0.05, abs=1e-9)
    residual = result.a @ result.covariance + result.covariance @ result.a.T + torch.eye(8, dtype=F64)
    assert float(residual.abs().max()) < 1e-8
    stable = linear_noise_analysis(_weight(8, scale=0.1), leak=1.0, rescale=True)
    assert stable.scale == 1.0


def test_bisection_scale_known_answer():
    # Symmetric M with top eigenvalue μ: max Re λ(−dI + cM) = −d + cμ, so c = d(1 − δ)/μ.
    m = torch.tensor([[0.0, 2.0], [2.0, 0.0]], dtype=F64)  # eigenvalues ±2
    assert stabilizing_scale(1.0, m, margin=0.1) == pytest.approx(0.45, abs=1e-10)
    assert stabilizing_scale(3.0, m, margin=0.1) == 1.0


def test_root_search_scale_known_answer_for_uniform_leak():
    g = torch.Generator().manual_seed(0)
    b = torch.randn(30, 30, generator=g, dtype=torch.float64)
    m = b + b.T
    alpha = float(torch.linalg.eigvalsh(m).max())
    d = 0.5
    # A = −d I + c M has abscissa −d + c·α(M); the margin −δ d is met at c* = (1 − δ) d / α(M)
    c = stabilizing_scale(torch.full((30,), d), m, margin=0.05, tol=1e-6)
    assert math.isclose(c, 0.95 * d / alpha, rel_tol=1e-5)
    assert c <= 0.95 * d / alpha + 1e-15
    assert stabilizing_scale(torch.full((30,), d), 1e-3 * m) == 1.0


def test_root_search_scale_heterogeneous_leak_meets_the_margin():
    g = torch.Generator().manual_seed(1)
    tau = 2.0 + 40.0 * torch.rand(40, generator=g, dtype=torch.float64)
    m = torch.randn(40, 40, generator=g, dtype=torch.float64) * (torch.rand(40, 40, generator=g) < 0.2)
    leak = 1.0 / tau
    c = stabilizing_scale(leak, m, tol=1e-4)
    bound = -0.05 * float(leak.min())
    assert _abscissa(-torch.diag(leak) + c * m) <= bound
    assert _abscissa(-torch.diag(leak) + c * (1 + 1e-3) * m) > bound
    assert c >= gershgorin_scale(leak, m)
    assert STABILIZERS["bisection"](leak, m, 0.05, 1e-4) == c


def test_gershgorin_scale_by_hand():
    # c = min(1, (1 − δ) min_i d_i / Σ_j |W_ij|) = 0.9 · min(1/3, 2/1) = 0.3
    w = torch.tensor([[1.0, -2.0], [0.0, 1.0]], dtype=F64)
    assert gershgorin_scale(torch.tensor([1.0, 2.0]), w, margin=0.1) == pytest.approx(0.3)
    assert gershgorin_scale(10.0, w, margin=0.1) == 1.0
    result = linear_noise_analysis(3.0 * w, leak=1.0, rescale=True, method="gershgorin", margin=0.1)
    assert max_real_eigenvalue(result.a) <= -0.1 + 1e-12
    leak = torch.tensor([1.0, 2.0])
    coupling = torch.tensor([[0.0, 2.0], [-1.0, 0.0]])
    # c = (1 − δ) · min_i d_i / Σ_j |M_ij| = 0.95 · min(1/2, 2/1) = 0.475
    c = gershgorin_scale(leak, coupling)
    assert math.isclose(c, 0.475)
    assert STABILIZERS["gershgorin"](leak, coupling, 0.05, 1e-3) == c
    a = -torch.diag(leak.double()) + c * coupling.double()
    assert _abscissa(a) <= -0.05 * 1.0
    assert gershgorin_scale(leak, 0.01 * coupling) == 1.0


def test_noise_validation():
    with pytest.raises(ConfigError, match="leak"):
        linear_noise_analysis(_weight(3), leak=torch.tensor([1.0, -1.0, 1.0]))
    with pytest.raises(ConfigError, match="leak"):
        linear_noise_analysis(_weight(3), leak=torch.ones(2))
    with pytest.raises(ConfigError, match="method"):
        linear_noise_analysis(_weight(3), leak=1.0, method="newton")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="margin"):
        stabilizing_scale(1.0, _weight(3), margin=1.0)
    with pytest.raises(ConfigError, match="weight"):
        difference_matrix(torch.eye(2, dtype=F64), torch.eye(3, dtype=F64))
    with pytest.raises(ConfigError, match="a="):
        stationary_covariance(torch.ones(2, 3, dtype=F64))
    with pytest.raises(ConfigError, match="tol"):
        stabilizing_scale(1.0, _weight(3), tol=0.0)


# ---------------------------------------------------------------------------------------- localisation


def test_ipr_by_hand():
    assert float(inverse_participation_ratio(torch.tensor([0.0, 3.0, 0.0]))) == pytest.approx(1.0)
    assert float(inverse_participation_ratio(torch.ones(5))) == pytest.approx(0.2)
    # v = (1, 1, 0, 0)·2: Σv⁴ = 32, (Σv²)² = 64 → 1/2; complex entries use |v|.
    vectors = torch.tensor([[2.0, 1j], [2.0, 1.0], [0.0, 0.0], [0.0, 0.0]], dtype=torch.complex128)
    assert inverse_participation_ratio(vectors).tolist() == pytest.approx([0.5, 0.5])
    with pytest.raises(ConfigError, match="vectors"):
        inverse_participation_ratio(torch.zeros(3))


def test_ipr_of_delocalised_and_localised_vectors():
    n = 8
    assert math.isclose(float(inverse_participation_ratio(torch.ones(n))), 1.0 / n)
    assert math.isclose(float(inverse_participation_ratio(torch.eye(n)[3] * -2.5)), 1.0)
    two = torch.tensor([1.0, -1.0, 0.0, 0.0])
    assert math.isclose(float(inverse_participation_ratio(two)), 0.5)
    cols = inverse_participation_ratio(torch.stack([torch.ones(4), two], 1))
    torch.testing.assert_close(cols, torch.tensor([0.25, 0.5]).double())
    v = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0], [0.0, 1.0, -1.0]], dtype=torch.float64)
    v[:, 1:] /= math.sqrt(2.0)
    torch.testing.assert_close(inverse_participation_ratio(v), torch.tensor([1.0, 0.5, 0.5]).double())
    with pytest.raises(ConfigError):
        inverse_participation_ratio(torch.zeros(4))


def test_pair_and_isolated_nodes_eigenpairs():
    w = torch.zeros(4, 4)
    w[1, 0] = w[0, 1] = 1.0  # a pair and two isolated nodes
    values, vectors = localization_eigenpairs(w, "symmetric")
    assert values.shape == (4,) and torch.allclose(vectors.T @ vectors, torch.eye(4).double(), atol=1e-12)
    ipr = eigenvector_localization(w, "symmetric").ipr
    assert sorted(round(float(x), 6) for x in ipr) == [0.5, 0.5, 1.0, 1.0]
    assert eigenvector_localization(w, "laplacian").ipr.shape == (4,)
    with pytest.raises(ConfigError, match="operator"):
        localization_eigenpairs(w, "sym_abs")


def test_three_node_path_ipr_by_hand():
    w = torch.zeros(3, 3)
    w[1, 0] = w[0, 1] = w[2, 1] = w[1, 2] = 1.0
    # S = adjacency: eigenvectors (1, ±√2, 1)/2 (IPR 6/16) and (1, 0, −1)/√2 (IPR 1/2)
    ipr = eigenvector_localization(w, "symmetric").ipr
    torch.testing.assert_close(torch.sort(ipr).values, torch.tensor([0.375, 0.375, 0.5]).double())
    # Laplacian diag(S1) − S: eigenvectors (1, 1, 1)/√3 (IPR 1/3), (1, 0, −1)/√2 (1/2), (1, −2, 1)/√6 (18/36)
    ipr = eigenvector_localization(w, "laplacian").ipr
    torch.testing.assert_close(torch.sort(ipr).values, torch.tensor([1 / 3, 0.5, 0.5]).double())


def test_symmetrised_operators_ignore_self_connections():
    # W = [[5, 2], [0, −1]]: S = [[0, 1], [1, 0]] (diagonal dropped), eigenvalues ±1; L = [[1, −1], [−1, 1]],
    # eigenvalues 0 and 2; every eigenvector is (1, ±1)/√2 with IPR 1/2.
    w = torch.tensor([[5.0, 2.0], [0.0, -1.0]], dtype=F64)
    values, ipr = eigenvector_localization(w, "symmetric")
    torch.testing.assert_close(values, torch.tensor([-1.0, 1.0], dtype=F64))
    torch.testing.assert_close(ipr, torch.tensor([0.5, 0.5], dtype=F64))
    values, ipr = eigenvector_localization(w, "laplacian")
    torch.testing.assert_close(values, torch.tensor([0.0, 2.0], dtype=F64), atol=1e-12, rtol=0)
    torch.testing.assert_close(ipr, torch.tensor([0.5, 0.5], dtype=F64))


def test_path_graph_laplacian_ipr_known_answer():
    # Path graph on n (odd) nodes: L's eigenvectors are cos(πk(i + ½)/n), with IPR 1/n for k = 0 and
    # Σcos⁴/(Σcos²)² = (3n/8)/(n/2)² = 3/(2n) for every k ≠ 0.
    n = 9
    w = torch.zeros(n, n, dtype=F64)
    idx = torch.arange(n - 1)
    w[idx, idx + 1] = 1.0
    w[idx + 1, idx] = -1.0  # the operator uses S = (|W| + |W|ᵀ)/2, here the path's adjacency
    values, ipr = eigenvector_localization(w, "laplacian")
    k = torch.arange(n, dtype=F64)
    assert torch.allclose(values, 2.0 - 2.0 * torch.cos(math.pi * k / n), atol=1e-12)
    expected = torch.full((n,), 3.0 / (2 * n), dtype=F64)
    expected[0] = 1.0 / n
    assert torch.allclose(ipr, expected, atol=1e-10)


def test_weight_and_symmetric_operators():
    diag = torch.diag(torch.tensor([3.0, -1.0, 0.5], dtype=F64))
    values, ipr = eigenvector_localization(diag, "weight")
    assert values.dtype == torch.complex128
    assert torch.allclose(ipr, torch.ones(3, dtype=F64))
    values, ipr = eigenvector_localization(torch.ones(4, 4, dtype=F64) - torch.eye(4, dtype=F64), "symmetric")
    assert float(values[-1]) == pytest.approx(3.0)
    assert float(ipr[-1]) == pytest.approx(0.25)  # Perron vector (1,1,1,1)/2
    with pytest.raises(ConfigError, match="operator"):
        eigenvector_localization(diag, "adjacency")
