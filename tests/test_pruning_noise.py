"""Moore & Chaudhuri noise pruning: scores, κ normalisation, sampling, and the spectral property.

The covariance and Δ it builds on are tested with :mod:`hrsnn.dynamics.noise` (tests/test_dynamics_noise.py).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from hrsnn.dynamics import noise
from hrsnn.errors import ConfigError
from hrsnn.pruning import stationary_covariance
from hrsnn.pruning.noise_prune import (
    expected_pruned_weight,
    magnitude_scores,
    noise_prune,
    noise_scores,
    retention_probabilities,
    sample_edges,
    uniform_scores,
)


def _scipy_covariance(a: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """Reference C from scipy directly: A C + C A^T + σ² I = 0."""
    n = a.shape[0]
    return torch.from_numpy(scipy.linalg.solve_continuous_lyapunov(a.double().numpy(), -(sigma**2) * np.eye(n)))


def _diag_dominant(seed: int, n: int = 40, p: float = 0.5, margin: float = 0.1):
    g = torch.Generator().manual_seed(seed)
    mask = (torch.rand(n, n, generator=g) < p) & ~torch.eye(n, dtype=torch.bool)
    w = torch.randn(n, n, generator=g, dtype=torch.float64).abs() * mask
    signs = torch.where(torch.rand(n, generator=g) < 0.8, 1.0, -1.0).double()
    w = w * signs[None, :]
    row = w.abs().sum(1)
    return w, row + margin * (1.0 + row)


def test_covariance_is_re_exported_from_the_dynamics_home():
    assert stationary_covariance is noise.stationary_covariance
    w, d = _diag_dominant(1, n=10)
    a = w - torch.diag(d)
    torch.testing.assert_close(stationary_covariance(a, sigma=0.5), _scipy_covariance(a, 0.5))


def test_scores_by_hand():
    cov = torch.tensor([[2.0, 0.5], [0.5, 1.0]])
    w = torch.tensor([[0.0, 1.0], [-3.0, 0.0]])
    # Δ_01 = 2 + 1 − 2·(+1)·0.5 = 2,  Δ_10 = 2 + 1 − 2·(−1)·0.5 = 4, so s = |W| Δ off the diagonal
    torch.testing.assert_close(noise_scores(w, cov), torch.tensor([[0.0, 2.0], [12.0, 0.0]]).double())
    torch.testing.assert_close(magnitude_scores(w), torch.tensor([[0.0, 1.0], [3.0, 0.0]]).double())
    torch.testing.assert_close(uniform_scores(w), torch.tensor([[0.0, 1.0], [1.0, 0.0]]).double())


def _edges4():
    edges = torch.zeros(3, 3, dtype=torch.bool)
    edges[0, 1] = edges[0, 2] = edges[1, 2] = edges[2, 0] = True
    return edges


def _scores4(values):
    s = torch.zeros(3, 3, dtype=torch.float64)
    s[0, 1], s[0, 2], s[1, 2], s[2, 0] = values
    return s


def test_kappa_normalises_the_expected_edge_count():
    edges = _edges4()
    # κ = ρ|E| / Σs = 0.5·4 / 10 = 0.2 → p = 0.2 s
    p = retention_probabilities(_scores4([1.0, 2.0, 3.0, 4.0]), edges, 0.5)
    torch.testing.assert_close(p, 0.2 * _scores4([1.0, 2.0, 3.0, 4.0]))
    assert math.isclose(float(p.sum()), 2.0)


def test_clipping_without_and_with_renormalisation():
    edges = _edges4()
    scores = _scores4([1.0, 1.0, 1.0, 7.0])
    # budget 3, κ = 3/10: p = [0.3, 0.3, 0.3, min(1, 2.1)] → Σp = 1.9 < 3 (no re-normalisation)
    torch.testing.assert_close(retention_probabilities(scores, edges, 0.75), _scores4([0.3, 0.3, 0.3, 1.0]))
    # water filling: 3κ + 1 = 3 → κ = 2/3
    p = retention_probabilities(scores, edges, 0.75, renormalise=True)
    torch.testing.assert_close(p, _scores4([2 / 3, 2 / 3, 2 / 3, 1.0]))
    assert math.isclose(float(p.sum()), 3.0)
    # a budget above the number of positive scores keeps every positive-score edge surely
    p = retention_probabilities(_scores4([0.0, 1.0, 1.0, 1.0]), edges, 1.0, renormalise=True)
    torch.testing.assert_close(p, _scores4([0.0, 1.0, 1.0, 1.0]))


def test_probability_floor_zero_scores_and_non_edges():
    edges = _edges4()
    p = retention_probabilities(_scores4([1.0, 2.0, 3.0, 4.0]), edges, 0.5, p_min=0.3)
    torch.testing.assert_close(p, _scores4([0.0, 0.4, 0.6, 0.8]))
    torch.testing.assert_close(retention_probabilities(torch.zeros(3, 3), edges, 0.25), _scores4([0.25] * 4))
    outside = torch.ones(3, 3)
    assert float(retention_probabilities(outside, edges, 0.5)[~edges].abs().sum()) == 0.0
    with pytest.raises(ConfigError) as info:
        retention_probabilities(_scores4([1.0, 1.0, 1.0, 1.0]), edges, 0.0)
    assert info.value.field == "keep_fraction"


def test_sampling_is_seeded_and_keeps_p_one_drops_p_zero():
    w = torch.arange(1.0, 17.0).reshape(4, 4)
    p = torch.full((4, 4), 0.5)
    p[0] = 1.0
    p[1] = 0.0
    kept_a, w_a = sample_edges(w, p, torch.Generator().manual_seed(3))
    kept_b, w_b = sample_edges(w, p, torch.Generator().manual_seed(3))
    assert torch.equal(kept_a, kept_b) and torch.equal(w_a, w_b)
    assert bool(kept_a[0].all()) and not bool(kept_a[1].any())
    torch.testing.assert_close(w_a[0], w[0].double())
    torch.testing.assert_close(w_a[2:][kept_a[2:]], 2.0 * w[2:][kept_a[2:]].double())


def test_pruned_weight_is_unbiased_without_capping_and_shrunk_with_capping():
    w = torch.tensor([[0.0, 2.0, -1.0], [0.5, 0.0, 4.0], [-3.0, 1.0, 0.0]], dtype=torch.float64)
    p = torch.tensor([[0.0, 0.3, 0.8], [0.5, 0.0, 0.05], [0.9, 0.2, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(expected_pruned_weight(w, p), w * (p > 0))
    capped = expected_pruned_weight(w, p, r_cap=10.0)
    torch.testing.assert_close(capped[1, 2], torch.tensor(0.05 * 10.0 * 4.0, dtype=torch.float64))
    g = torch.Generator().manual_seed(0)
    tiles = 64  # one draw on a 64×64 tiling of (w, p) gives 4096 independent samples of every entry
    draws = tiles * tiles

    def mean_of(r_cap: float) -> torch.Tensor:
        _, sample = sample_edges(w.repeat(tiles, tiles), p.repeat(tiles, tiles), g, r_cap=r_cap)
        return sample.reshape(tiles, 3, tiles, 3).mean((0, 2))

    std = w.abs() * torch.sqrt((1 - p) / p.clamp_min(1e-9)) / math.sqrt(draws)
    assert bool(((mean_of(math.inf) - w * (p > 0)).abs() <= 5 * std + 1e-12).all())
    # capped entry (p = 0.05 < 1/r_cap): E = p · r_cap · W = 2, sample std = 10 · 4 · sqrt(p(1 − p))
    assert abs(float(mean_of(10.0)[1, 2]) - 2.0) < 5 * 40.0 * math.sqrt(0.05 * 0.95 / draws)


def test_noise_prune_preserves_covariance_better_than_random_pruning():
    errors = {"noise": [], "uniform": []}
    for seed in range(5):
        w, d = _diag_dominant(seed)
        c = _scipy_covariance(w - torch.diag(d))
        n_edges = None
        for rule in errors:
            out = noise_prune(w, d, keep_fraction=0.3, rule=rule, generator=torch.Generator().manual_seed(100 + seed))
            pruned_c = _scipy_covariance(out.weight - torch.diag(out.leak))
            errors[rule].append(float((pruned_c - c).norm() / c.norm()))
            expected = float(out.probabilities.sum())
            n_edges = expected if n_edges is None else n_edges
            assert math.isclose(expected, n_edges, rel_tol=0.15)  # comparable edge budgets
    assert np.mean(errors["noise"]) < 0.8 * np.mean(errors["uniform"])


def test_noise_prune_structure_and_row_sum_diagonal():
    w, d = _diag_dominant(7, n=20)
    w = w + torch.diag(torch.full((20,), 0.1, dtype=torch.float64))
    out = noise_prune(w, d, keep_fraction=0.4, generator=torch.Generator().manual_seed(1), diagonal="row_sum")
    off = ~torch.eye(20, dtype=torch.bool)
    assert not bool((out.kept & ~((w != 0) & off)).any())
    torch.testing.assert_close(torch.diagonal(out.weight), torch.diagonal(w))
    torch.testing.assert_close(out.weight[off & ~out.kept], torch.zeros(int((off & ~out.kept).sum())).double())
    lost = (w.abs() * off).sum(1) - (out.weight.abs() * off).sum(1)
    torch.testing.assert_close(out.leak, d - lost)
    torch.testing.assert_close(out.covariance, _scipy_covariance(w - torch.diag(d)))
    same = noise_prune(w, d, keep_fraction=0.4, generator=torch.Generator().manual_seed(1))
    assert torch.equal(same.kept, out.kept) and torch.equal(same.leak, d)
    with pytest.raises(ConfigError) as info:
        noise_prune(w, d, keep_fraction=0.4, generator=torch.Generator(), rule="bogus")
    assert info.value.field == "rule"
