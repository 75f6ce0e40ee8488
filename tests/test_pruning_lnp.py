"""LNP steps 1–4 as separate functions, with hand-computed answers, plus LNPConfig validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from hrsnn.errors import ConfigError
from hrsnn.pruning.lnp import (
    LNPConfig,
    add_delocalising_edges,
    coupling_matrix,
    delocalise,
    gamma_quantile_timescales,
    growth_factors,
    initial_quantiles,
    lyapunov_matrix,
    nodes_to_remove,
    optimise_timescales,
    prune_synapses,
    stability_objective,
)
from hrsnn.pruning.noise_prune import noise_scores, retention_probabilities


def _scipy_covariance(a: torch.Tensor, sigma: float) -> torch.Tensor:
    n = a.shape[0]
    return torch.from_numpy(scipy.linalg.solve_continuous_lyapunov(a.numpy(), -(sigma**2) * np.eye(n)))


def _abscissa(a: torch.Tensor) -> float:
    return float(torch.linalg.eigvals(a).real.max())


# ----------------------------------------------------------------------------------------------- step 1


def test_growth_factors_exp_and_linear():
    lam = torch.tensor([0.0, math.log(3.0)])
    torch.testing.assert_close(growth_factors(lam, tau_bar=1.0), torch.tensor([1.0, 3.0]).double())
    torch.testing.assert_close(growth_factors(lam, tau_bar=2.0), torch.tensor([1.0, 9.0]).double())
    g = growth_factors(torch.tensor([-2.0, 0.5]), tau_bar=1.0, positive_map="linear", eps=0.01)
    torch.testing.assert_close(g, torch.tensor([0.01, 2.51]).double())  # λ − min λ + ε
    with pytest.raises(ConfigError) as info:
        growth_factors(lam, tau_bar=1.0, positive_map="log")
    assert info.value.field == "positive_map"


def test_endpoint_harmonic_mean_by_hand():
    edges = torch.tensor([[False, True], [False, False]])
    lyap = lyapunov_matrix(torch.tensor([0.0, math.log(3.0)]), edges, tau_bar=1.0)
    # g = (1, 3): L_01 = 2·1·3 / (1 + 3) = 1.5, and 0 off the edges
    torch.testing.assert_close(lyap, torch.tensor([[0.0, 1.5], [0.0, 0.0]]).double())


def test_neighbourhood_harmonic_mean_by_hand():
    edges = torch.zeros(4, 4, dtype=torch.bool)
    edges[1, 0] = edges[2, 1] = edges[3, 2] = True  # path 0 → 1 → 2 → 3
    lam = torch.log(torch.tensor([1.0, 2.0, 4.0, 8.0]))  # g = 1, 2, 4, 8 with tau_bar = 1
    lyap = lyapunov_matrix(lam, edges, tau_bar=1.0, variant="neighbourhood")
    expected = torch.zeros(4, 4, dtype=torch.float64)
    expected[1, 0] = 3.0 / (1.0 + 1 / 2 + 1 / 4)  # S = N(1) ∪ N(0) = {0, 1, 2}
    expected[2, 1] = 4.0 / (1.0 + 1 / 2 + 1 / 4 + 1 / 8)  # S = {0, 1, 2, 3}
    expected[3, 2] = 3.0 / (1 / 2 + 1 / 4 + 1 / 8)  # S = {1, 2, 3}
    torch.testing.assert_close(lyap, expected)


def test_coupling_modes():
    lyap = torch.tensor([[0.0, 2.0], [0.5, 0.0]])
    w = torch.tensor([[0.0, -3.0], [4.0, 0.0]])
    torch.testing.assert_close(coupling_matrix(lyap, w), torch.tensor([[0.0, -6.0], [2.0, 0.0]]).double())
    torch.testing.assert_close(coupling_matrix(lyap, w, mode="replace"), lyap.double())


def _small_layer(n: int = 12, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    mask = (torch.rand(n, n, generator=g) < 0.4) & ~torch.eye(n, dtype=torch.bool)
    mask[0, 0] = True  # an autapse is never pruned
    weight = torch.randn(n, n, generator=g) * mask
    tau = 5.0 + 20.0 * torch.rand(n, generator=g)
    lam = -0.05 + 0.02 * torch.randn(n, generator=g)
    return weight, mask, tau, lam


def test_prune_synapses_follows_the_pipeline():
    weight, mask, tau, lam = _small_layer()
    config = LNPConfig(keep_fraction=0.6, linear_model="leak", scale_method="bisection")  # A = −D + cM, c ≤ 1
    step = prune_synapses(weight, mask, tau, lam, config, torch.Generator().manual_seed(0))
    edges = mask & ~torch.eye(12, dtype=torch.bool)
    # probabilities rebuilt by hand from the spec's formulas with scipy's Lyapunov solver
    g = torch.exp(lam.double() * float(tau.double().mean()))
    lyap = 2 * g[:, None] * g[None, :] / (g[:, None] + g[None, :]) * edges
    coupling = lyap * weight.double()
    leak = 1.0 / tau.double()
    assert _abscissa(-torch.diag(leak) + step.scale * coupling) <= -0.05 * float(leak.min()) + 1e-12
    cov = _scipy_covariance(-torch.diag(leak) + step.scale * coupling, 1.0)
    p = retention_probabilities(noise_scores(step.scale * coupling, cov), edges, 0.6, renormalise=True)
    torch.testing.assert_close(step.probabilities, p)
    assert math.isclose(float(step.probabilities.sum()), 0.6 * int(edges.sum()))
    assert not bool((step.mask & ~mask).any()) and bool(step.mask[0, 0])
    kept = step.mask & edges
    assert step.removed == int(edges.sum()) - int(kept.sum())
    expected = weight.double() / torch.clamp(p, min=0.1)
    torch.testing.assert_close(step.weight[kept], expected[kept])
    assert float(step.weight[~step.mask].abs().sum()) == 0.0
    assert float(step.weight[0, 0]) == float(weight[0, 0])
    again = prune_synapses(weight, mask, tau, lam, config, torch.Generator().manual_seed(0))
    assert torch.equal(again.mask, step.mask) and torch.equal(again.weight, step.weight)


def test_prune_synapses_accepts_a_covariance_function():
    weight, mask, tau, lam = _small_layer(seed=2)
    calls = []

    def covariance(a, sigma):
        calls.append(sigma)
        return _scipy_covariance(a, sigma)

    config = LNPConfig(
        sigma=0.5, scale_method="gershgorin", eq3_mode="replace", lyap_matrix="neighbourhood", linear_model="leak"
    )
    step = prune_synapses(weight, mask, tau, lam, config, torch.Generator().manual_seed(0), covariance_fn=covariance)
    assert calls == [0.5] and step.mask.shape == (12, 12)


# ----------------------------------------------------------------------------------------------- step 2


def test_nodes_to_remove_lowest_betweenness_and_dead_ends():
    w = torch.zeros(5, 5)
    for i in range(4):
        w[i + 1, i] = w[i, i + 1] = 1.0
    bc = torch.tensor([0.0, 6.0, 8.0, 6.0, 0.0])
    # ⌈0.2·5⌉ = 1 neuron of lowest BC: one of the two ends (random tie break); no dead ends in a two-way path
    remove = nodes_to_remove(bc, w, 0.2, torch.Generator().manual_seed(0))
    assert int(remove.sum()) == 1 and bool(remove[0] | remove[4])
    ends = {int(torch.nonzero(nodes_to_remove(bc, w, 0.2, torch.Generator().manual_seed(s)))[0]) for s in range(8)}
    assert ends == {0, 4}
    one_way = torch.zeros(5, 5)
    for i in range(4):
        one_way[i + 1, i] = 1.0
    remove = nodes_to_remove(torch.tensor([0.0, 3.0, 4.0, 3.0, 0.0]), one_way, 0.0, torch.Generator())
    assert remove.tolist() == [True, False, False, False, True]  # no input to 0, no output from 4
    assert remove.tolist() == nodes_to_remove(torch.zeros(5), one_way, 0.0, torch.Generator()).tolist()
    # never everything: the neuron of highest betweenness survives
    remove = nodes_to_remove(torch.tensor([0.0, 1.0, 0.5]), torch.zeros(3, 3), 0.0, torch.Generator())
    assert remove.tolist() == [True, False, True]


# ----------------------------------------------------------------------------------------------- step 3


def _star_graph():
    mask = torch.zeros(5, 5, dtype=torch.bool)
    for a, b in ((0, 1), (0, 2), (3, 4), (1, 3)):
        mask[a, b] = mask[b, a] = True
    return mask, mask.double() * 0.3


def test_greedy_edge_addition_maximises_local_degree_heterogeneity():
    mask, w = _star_graph()
    signs = torch.tensor([1.0, 1.0, 1.0, 1.0, -1.0])
    scores = torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0])
    # i* = 0, N(0) = {1, 2} with degrees (4, 2). Candidates: 3 (deg 4) → H([4,2,4]) = 0.283,
    # 4 (deg 2) → H([4,2,2]) = 0.354, so j* = 4 and the synapse 4 → 0 gets 4's sign (−) and the pool magnitude.
    new_mask, new_w, added = add_delocalising_edges(
        w, mask, scores, 1, torch.tensor([0.7], dtype=torch.float64), signs, torch.Generator()
    )
    assert bool(new_mask[0, 4]) and math.isclose(float(new_w[0, 4]), -0.7)
    assert added in (1, 2)
    assert added == 1 or (bool(new_mask[4, 0]) and math.isclose(float(new_w[4, 0]), 0.7))
    assert int(new_mask.sum()) == int(mask.sum()) + added
    torch.testing.assert_close(new_w[mask], w[mask])


def test_delocalise_fires_only_when_the_ipr_grew():
    mask, w = _star_graph()
    config = LNPConfig(rho_add=0.5, ipr_reference="dense", deloc_rule="heterogeneity")
    args = dict(magnitudes=torch.tensor([0.3]), signs=torch.ones(5), config=config)
    quiet = delocalise(w, mask, removed=4, reference_ipr=1.0, reference_size=5, generator=torch.Generator(), **args)
    assert not quiet.triggered and quiet.added == 0 and torch.equal(quiet.mask, mask)
    fired = delocalise(w, mask, removed=4, reference_ipr=1e-3, reference_size=5, generator=torch.Generator(), **args)
    assert fired.triggered and fired.budget == 2 and 2 <= fired.added <= 4  # ⌈0.5 · 4⌉ = 2 rounds of 1 or 2
    assert fired.mean_ipr == quiet.mean_ipr


def test_ipr_trigger_scales_with_network_size():
    mask, w = _star_graph()
    dense = LNPConfig(ipr_reference="dense")
    base = delocalise(
        w, mask, removed=4, reference_ipr=1.0, reference_size=5, magnitudes=torch.tensor([0.3]), signs=torch.ones(5),
        config=dense, generator=torch.Generator(),
    )  # fmt: skip
    m = base.mean_ipr
    # reference: 10 neurons with mean IPR 0.6 m. Raw: m > 1.1 · 0.6 m fires;
    # size-scaled: 5 m > 1.1 · 10 · 0.6 m does not
    args = dict(
        removed=4, reference_ipr=0.6 * m, reference_size=10, magnitudes=torch.tensor([0.3]), signs=torch.ones(5)
    )
    size = delocalise(w, mask, config=dense, generator=torch.Generator(), **args)
    raw_config = LNPConfig(ipr_reference="dense", ipr_scale="raw")
    raw = delocalise(w, mask, config=raw_config, generator=torch.Generator(), **args)
    assert not size.triggered and raw.triggered


# ----------------------------------------------------------------------------------------------- step 4


def test_stability_objective_by_hand():
    # (λ_max − λ*)² = (−0.05 + 0.01)² = 0.0016; β Σ_{k≤2} (λ_k − λ_ref,k)² = 0.1 · (0.1² + 0.2²) = 0.005
    assert math.isclose(stability_objective(-0.05), 0.0016)
    spectrum = torch.tensor([0.1, 0.2], dtype=torch.float64)
    reference = torch.tensor([0.0, 0.0, 5.0], dtype=torch.float64)
    assert math.isclose(stability_objective(-0.05, spectrum, reference), 0.0066)
    assert math.isclose(stability_objective(0.0, spectrum, reference, lambda_target=0.0, spectrum_weight=1.0), 0.05)


def test_gamma_quantile_timescales_known_answer():
    u = torch.tensor([0.1, 0.5, 0.9])
    # shape 1 is the exponential distribution: F⁻¹(u) = −μ ln(1 − u)
    tau = gamma_quantile_timescales(u, 1.0, 20.0)
    torch.testing.assert_close(tau, -20.0 * torch.log1p(-u.double()))
    with pytest.raises(ConfigError) as info:
        gamma_quantile_timescales(u, 0.0, 20.0)
    assert info.value.field == "shape"


def test_initial_quantiles_ranks_and_random():
    tau = torch.tensor([30.0, 10.0, 20.0])
    torch.testing.assert_close(
        initial_quantiles(tau, "ranks", torch.Generator()), torch.tensor([2.5, 0.5, 1.5]).double() / 3
    )
    u = initial_quantiles(tau, "random", torch.Generator().manual_seed(0))
    assert torch.equal(u, initial_quantiles(tau, "random", torch.Generator().manual_seed(0)))
    assert bool(((u > 0) & (u < 1)).all())


@pytest.mark.parametrize("sampler", ["tpe", "gp"])
def test_optimise_timescales_finds_a_good_box_point_and_keeps_ranks(sampler):
    u = torch.tensor([0.2, 0.7, 0.4, 0.9])
    calls = []

    def objective(tau):
        calls.append(tau)
        return float((tau.mean() - 30.0) ** 2)

    result = optimise_timescales(u, objective, sampler=sampler, n_startup=3, n_trials=5, seed=1)
    assert result.trials == 5 and len(calls) == 5
    assert result.best.mean == min(float((t.mean() - 30.0) ** 2) for t in calls) and result.moved
    torch.testing.assert_close(result.tau, gamma_quantile_timescales(u, result.shape, result.means[0]))
    assert torch.equal(torch.argsort(result.tau), torch.argsort(u))
    assert 1.0 <= result.shape <= 10.0 and 2.0 <= result.means[0] <= 100.0


# ----------------------------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"keep_fraction": 0.0}, "lnp.keep_fraction"),
        ({"lyap_matrix": "bogus"}, "lnp.lyap_matrix"),
        ({"betweenness_backend": "graph-tool"}, "lnp.betweenness_backend"),
        ({"r_cap": 0.5}, "lnp.r_cap"),
        ({"c_stop": 0}, "lnp.c_stop"),
        ({"delta": 1.0}, "lnp.delta"),
        ({"mean_range": (1.0, 50.0)}, "lnp.mean_range"),  # below tau_floor = 2
        ({"deloc_rule": "bogus"}, "lnp.deloc_rule"),
        ({"ipr_reference": "bogus"}, "lnp.ipr_reference"),
        ({"target_neuron_sparsity": 1.5}, "lnp.target_neuron_sparsity"),
    ],
)
def test_config_validation_names_the_field(kwargs, field):
    with pytest.raises(ConfigError) as info:
        LNPConfig(**kwargs)
    assert info.value.field == field


def test_config_round_trip_through_a_dict():
    config = LNPConfig(k_max=7, eq3_mode="replace", shape_range=(2.0, 5.0))
    assert LNPConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError) as info:
        LNPConfig.from_dict({"k_maxx": 3})
    assert info.value.field == "lnp.k_maxx"
