"""LNP step 1 on the right linear model: the rate drift, the edge scale, A1's named preference, driven gains,
Spearman diagnostics, and the Moore–Chaudhuri claim on a real dense HRSNN."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import scipy.stats
import torch
from _helpers import small_world_rsnn

from hrsnn.dynamics import DriveConfig, SpikingMap, driven_gains, fit_sigmoid_gain, stationary_covariance
from hrsnn.errors import ConfigError
from hrsnn.experiments.lnp import LNPExperimentConfig, build_dense, node_exponents, node_gains
from hrsnn.network import RSNN, LayerConfig, NeuronConfig, RSNNConfig
from hrsnn.pruning import LNPConfig, lnp_prune
from hrsnn.pruning.lnp import SCALES, growth_factors, lyapunov_matrix, prune_synapses
from hrsnn.pruning.noise_prune import retention_probabilities, sample_edges
from hrsnn.stats import Estimate

# ----------------------------------------------------------------------------------------- A1: preference


LAM = torch.tensor([-0.3, -0.1, -0.2], dtype=torch.float64)


@pytest.mark.parametrize(
    ("positive_map", "preference", "expected"),
    [
        ("exp", "unstable", [math.exp(-3.0), math.exp(-1.0), math.exp(-2.0)]),  # g = e^{+λ τ̄}, τ̄ = 10
        ("exp", "stable", [math.exp(3.0), math.exp(1.0), math.exp(2.0)]),  # g = e^{-λ τ̄}
        ("linear", "unstable", [0.0 + 0.01, 0.2 + 0.01, 0.1 + 0.01]),  # g = (λ − min λ) + ε
        ("linear", "stable", [0.2 + 0.01, 0.0 + 0.01, 0.1 + 0.01]),  # g = (max λ − λ) + ε
    ],
)
def test_growth_factors_by_hand_for_both_maps_and_preferences(positive_map, preference, expected):
    g = growth_factors(LAM, tau_bar=10.0, positive_map=positive_map, preference=preference, eps=0.01)
    torch.testing.assert_close(g, torch.tensor(expected, dtype=torch.float64))


@pytest.mark.parametrize("positive_map", ["exp", "linear"])
def test_both_maps_honour_the_named_direction(positive_map):
    lam = torch.tensor([-0.5, -0.02, -0.3, -0.11, -0.07], dtype=torch.float64)  # all negative, as measured FTLEs
    up = growth_factors(lam, tau_bar=20.0, positive_map=positive_map, preference="unstable")
    down = growth_factors(lam, tau_bar=20.0, positive_map=positive_map, preference="stable")
    order = torch.argsort(lam)
    assert bool((up[order].diff() > 0).all())  # larger λ -> larger g: synapses of unstable neurons are kept
    assert bool((down[order].diff() < 0).all())
    # the harmonic mean keeps the direction: the edge between the two most unstable neurons has the largest L
    edges = ~torch.eye(5, dtype=torch.bool)
    lyap = lyapunov_matrix(lam, edges, tau_bar=20.0, positive_map=positive_map)
    assert divmod(int(torch.argmax(lyap)), 5) in {(1, 4), (4, 1)}


def test_the_abs_map_and_unknown_options_are_rejected():
    with pytest.raises(ConfigError) as info:
        growth_factors(LAM, tau_bar=1.0, positive_map="abs")
    assert info.value.field == "positive_map"
    with pytest.raises(ConfigError) as info:
        LNPConfig(lyapunov_preference="chaotic")
    assert info.value.field == "lnp.lyapunov_preference"
    with pytest.raises(ConfigError) as info:
        LNPConfig(linear_model="nonlinear")
    assert info.value.field == "lnp.linear_model"


# ------------------------------------------------------------------------------------------- linear models

# three neurons: τ = (2, 4, 5) -> d = (0.5, 0.25, 0.2); λ = 0 -> g = 1 -> L = 1 on the edges, M = W
TAU3 = torch.tensor([2.0, 4.0, 5.0], dtype=torch.float64)
W3 = torch.tensor([[0.0, 0.5, -1.0], [0.2, 0.0, 0.0], [0.0, 0.4, 0.0]], dtype=torch.float64)
GAINS3 = torch.tensor([0.1, 0.5, 1.0], dtype=torch.float64)


def _step3(**kwargs):
    config = LNPConfig(keep_fraction=0.5, scale_method="gershgorin", **kwargs)
    return prune_synapses(W3, W3 != 0, TAU3, torch.zeros(3), config, torch.Generator().manual_seed(0), gains=GAINS3)


def test_rate_drift_on_three_neurons_by_hand():
    step = _step3()
    # K = diag(d φ') M: rows scaled by 0.5·0.1 = 0.05, 0.25·0.5 = 0.125, 0.2·1 = 0.2; Gershgorin
    # c = min(1, 0.95 · min(0.5/0.075, 0.25/0.025, 0.2/0.08)) = min(1, 2.375) = 1, so A = −D + K
    expected = torch.tensor([[-0.5, 0.025, -0.05], [0.025, -0.25, 0.0], [0.0, 0.08, -0.2]], dtype=torch.float64)
    assert step.scale == 1.0
    torch.testing.assert_close(step.drift, expected)
    # scores s_ij = |A_ij| (C_ii + C_jj − 2 sign(A_ij) C_ij), C from scipy's own Lyapunov solver
    c = scipy.linalg.solve_continuous_lyapunov(expected.numpy(), -np.eye(3))
    s02 = 0.05 * (c[0, 0] + c[2, 2] + 2.0 * c[0, 2])  # inhibitory edge 2 -> 0
    s10 = 0.025 * (c[1, 1] + c[0, 0] - 2.0 * c[1, 0])
    assert step.scores[0, 2].item() == pytest.approx(s02, rel=1e-10)
    assert step.scores[1, 0].item() == pytest.approx(s10, rel=1e-10)


def test_leak_drift_on_three_neurons_by_hand():
    step = _step3(linear_model="leak")
    # K = M = W; c = min(1, 0.95 · min(0.5/1.5, 0.25/0.2, 0.2/0.4)) = 0.95/3
    c = 0.95 / 3.0
    expected = -torch.diag(1.0 / TAU3) + c * W3
    assert step.scale == pytest.approx(c, rel=1e-12)
    torch.testing.assert_close(step.drift, expected)


def test_edge_scale_puts_the_leading_eigenvalue_at_the_margin():
    # d = 1, symmetric path graph with weights 0.1, unit gains: eig(K) = 0, ±0.1·√2, so the leading eigenvalue of
    # −I + cK is −1 + 0.1·√2·c = −δ at c = 0.95 / (0.1·√2) ≈ 6.72 — far above the old cap c ≤ 1
    w = 0.1 * torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    tau, gains = torch.ones(3), torch.ones(3)
    generator = torch.Generator().manual_seed(0)
    edge = prune_synapses(w, w != 0, tau, torch.zeros(3), LNPConfig(scale_tol=1e-10), generator, gains=gains)
    assert edge.scale == pytest.approx(0.95 / (0.1 * math.sqrt(2.0)), rel=1e-8)
    assert float(torch.linalg.eigvalsh(edge.drift).max()) == pytest.approx(-0.05, abs=1e-9)
    for method in ("bisection", "gershgorin"):
        old = prune_synapses(w, w != 0, tau, torch.zeros(3), LNPConfig(scale_method=method), generator, gains=gains)
        assert old.scale == 1.0


def test_edge_scale_falls_back_to_gershgorin_when_the_edge_is_unreachable():
    # a feed-forward chain: every eigenvalue of −I + cK is −1 for every c; the edge is never reached
    chain = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 2.0, 0.0]], dtype=torch.float64)
    assert SCALES["edge"](torch.ones(3, dtype=torch.float64), chain, 0.05, 1e-3) == pytest.approx(0.95 / 2.0)


STEP1_ONLY = {"prune_neurons": False, "delocalise": False, "tune_timescales": False}


def test_rate_model_needs_gains():
    with pytest.raises(ConfigError) as info:
        prune_synapses(W3, W3 != 0, TAU3, torch.zeros(3), LNPConfig(), torch.Generator())
    assert info.value.field == "gains"
    with pytest.raises(ConfigError) as info:
        prune_synapses(W3, W3 != 0, TAU3, torch.zeros(3), LNPConfig(), torch.Generator(), gains=-GAINS3)
    assert info.value.field == "gains"
    model = small_world_rsnn()
    args = {"exponents_fn": _exponents, "lambda_max_fn": _stable, "generator": torch.Generator()}
    with pytest.raises(ConfigError) as info:
        lnp_prune(model, LNPConfig(k_max=1, **STEP1_ONLY), progress=False, **args)
    assert info.value.field == "gains_fn" and "gains_fn" in str(info.value)
    with pytest.raises(ConfigError) as info:
        lnp_prune(model, LNPConfig(k_max=1, **STEP1_ONLY), progress=False, gains_fn=lambda m: torch.ones(3), **args)
    assert info.value.field == "gains_fn"
    leak = lnp_prune(model, LNPConfig(k_max=1, linear_model="leak", **STEP1_ONLY), progress=False, **args)
    assert len(leak.history) == 2  # the leak model runs without gains


# -------------------------------------------------------------------------------------- Spearman diagnostics


def test_spearman_diagnostics_match_scipy():
    g = torch.Generator().manual_seed(4)
    n = 12
    mask = (torch.rand(n, n, generator=g) < 0.5) & ~torch.eye(n, dtype=torch.bool)
    w = torch.randn(n, n, generator=g) * mask
    tau = 5.0 + 20.0 * torch.rand(n, generator=g)
    lam = -0.05 + 0.02 * torch.randn(n, generator=g)
    gains = 0.1 + torch.rand(n, generator=g)
    step = prune_synapses(w, mask, tau, lam, LNPConfig(), torch.Generator().manual_seed(0), gains=gains)
    scores = step.scores[mask].numpy()
    assert step.spearman_absw == pytest.approx(scipy.stats.spearmanr(scores, w[mask].abs().numpy()).statistic)
    uncoupled = step.drift.abs() * (tau[:, None] + tau[None, :]).double()
    assert step.spearman_uncoupled == pytest.approx(scipy.stats.spearmanr(scores, uncoupled[mask].numpy()).statistic)



def _exponents(model: RSNN) -> torch.Tensor:
    layer = model.layers[0]
    return -1.0 / layer.tau_m.tau.detach() + 0.01 * layer.effective_recurrent_weight().detach().abs().sum(1)


def _stable(model: RSNN) -> Estimate:
    return Estimate(-0.05, 0.002, 4)


def _gains(model: RSNN) -> torch.Tensor:
    return 0.05 + 0.01 * torch.arange(model.layers[0].size, dtype=torch.float64)


def test_history_records_step1_diagnostics_and_calls_gains_fn():
    model = small_world_rsnn()
    calls = []

    def gains_fn(m: RSNN) -> torch.Tensor:
        calls.append(m.layers[0].size)
        return _gains(m)

    config = LNPConfig(k_max=1, **STEP1_ONLY)
    result = lnp_prune(
        model, config, exponents_fn=_exponents, lambda_max_fn=_stable, gains_fn=gains_fn,
        generator=torch.Generator().manual_seed(0), progress=False,
    )  # fmt: skip
    layer = model.layers[0]
    direct = prune_synapses(
        layer.weight_rec.detach(), layer.mask, layer.tau_m.tau.detach(), _exponents(model), config,
        torch.Generator().manual_seed(0), gains=_gains(model),
    )  # fmt: skip
    details = result.history[1].details
    assert calls == [30]
    assert details["step1_spearman_absw"] == direct.spearman_absw
    assert details["step1_spearman_uncoupled"] == direct.spearman_uncoupled
    assert details["step1_scale"] == direct.scale


# ------------------------------------------------------------------------------------------- driven gains


def _feed_forward(biases: torch.Tensor) -> RSNN:
    neuron = NeuronConfig(kind="lif", b0=1.0, beta=0.0, tau_m={"dist": "constant", "value": 5.0})
    layer = LayerConfig(size=biases.numel(), recurrent=False, neuron=neuron)
    model = RSNN(RSNNConfig(n_inputs=2, n_outputs=1, layers=(layer,)), seed=0)
    with torch.no_grad():
        model.layers[0].input.bias.copy_(biases)
    return model


def test_driven_gains_are_the_fitted_slope_at_each_mean_current():
    biases = torch.tensor([0.5, 0.9, 1.1, 1.3, 1.6, 2.0, 3.0, 5.0])
    spiking = SpikingMap(_feed_forward(biases), DriveConfig(kind="zeros").sample(1, 300, 2))
    x0 = spiking.initial_state(1, torch.Generator().manual_seed(0))
    _, rates, currents = spiking.probe(spiking.advance(x0, 0, 100), 100, 200)
    torch.testing.assert_close(currents[0], biases.double())  # no recurrence, zero drive: h_i = b_i
    assert float(rates[0][0]) == 0.0 and float(rates[0][-1]) > 0.3  # sub- and supra-threshold neurons
    fit = fit_sigmoid_gain(currents[0], rates[0])
    h = biases.double()
    phi = fit.r_max / (1.0 + torch.exp(-fit.slope * (h - fit.threshold)))
    gains = driven_gains(spiking, x0, 200, transient=100)
    torch.testing.assert_close(gains, fit.slope * phi * (1.0 - phi / fit.r_max))
    eps = 1e-6  # and it is the slope of the fitted rate curve: a central difference agrees
    torch.testing.assert_close(gains, (fit(h + eps) - fit(h - eps)) / (2 * eps))


def test_driven_gains_of_a_silent_network_raise():
    spiking = SpikingMap(_feed_forward(torch.zeros(4)), DriveConfig(kind="zeros").sample(1, 50, 2))
    with pytest.raises(ConfigError) as info:
        driven_gains(spiking, spiking.initial_state(1, torch.Generator().manual_seed(0)), 50)
    assert info.value.field == "drive"


# ------------------------------------------------------------------------------------ on a real dense HRSNN

REAL = LNPExperimentConfig(
    n_neurons=150, k=10, probe_inputs=10, ftle_transient=50, ftle_windows=2, ftle_horizon=20, lnp_lyapunov_steps=250
)


def _covariance_errors(drift: torch.Tensor, edges: torch.Tensor, scores: torch.Tensor, draws: int = 8) -> list[float]:
    """Relative Frobenius error of the pruned drift's covariance per Bernoulli draw (inf: the draw is unstable)."""
    leak = torch.diag(torch.diagonal(drift))
    target = stationary_covariance(drift)
    p = retention_probabilities(scores, edges, 0.5, renormalise=True)
    generator = torch.Generator().manual_seed(1)
    errors = []
    for _ in range(draws):
        kept, rescaled = sample_edges(drift - leak, p, generator, r_cap=10.0)
        try:
            cov = stationary_covariance(leak + torch.where(kept & edges, rescaled, torch.zeros_like(rescaled)))
        except ConfigError:  # the pruned linear model is unstable: it has no covariance at all
            errors.append(math.inf)
            continue
        errors.append(float(torch.linalg.matrix_norm(cov - target) / torch.linalg.matrix_norm(target)))
    return errors


def test_step1_on_a_real_network_preserves_the_covariance_better_than_naive_scores():
    model = build_dense(REAL, 0)
    lam, gains = node_exponents(model, REAL, 0), node_gains(model, REAL, 0)
    layer = model.layers[0]
    weight, tau = layer.effective_recurrent_weight().detach(), layer.tau_m.tau.detach()
    edges = layer.mask & ~torch.eye(150, dtype=torch.bool)
    step = prune_synapses(
        weight, layer.mask, tau, lam, LNPConfig(keep_fraction=0.5), torch.Generator().manual_seed(0), gains=gains
    )
    # the leading eigenvalue sits at the margin −δ min d, not deep inside the stable half plane
    assert float(torch.linalg.eigvals(step.drift).real.max()) == pytest.approx(-0.05 / float(tau.max()), rel=0.01)
    noise = _covariance_errors(step.drift, edges, step.scores)
    magnitude = _covariance_errors(step.drift, edges, (step.drift * edges).abs())  # |A_ij|: the same model, no Δ
    weights = _covariance_errors(step.drift, edges, weight.double().abs())  # |W_ij|
    uniform = _covariance_errors(step.drift, edges, edges.double())
    print(
        f"median covariance error (inf: unstable draw): noise {np.median(noise):.4f}, |A| {np.median(magnitude):.4f}, "
        f"|W| {np.median(weights):.4f}, uniform {np.median(uniform):.4f}; Spearman with |W| {step.spearman_absw:.4f}, "
        f"with the uncoupled score {step.spearman_uncoupled:.4f}; c = {step.scale:.4g}"
    )
    # measured: noise 0.062 (0 of 8 draws unstable), |A| 0.27 (1 unstable), |W| and uniform inf (5 and 6 unstable)
    assert max(noise) < 0.2  # every draw stays stable and close
    for control in (magnitude, weights, uniform):
        assert np.median(noise) < 0.5 * np.median(control)
    assert step.spearman_absw < 0.9  # measured 0.68
    assert step.spearman_uncoupled < 0.97  # measured 0.94: the covariance term reorders the synapses
    old = prune_synapses(
        weight, layer.mask, tau, lam, LNPConfig(linear_model="leak", scale_method="gershgorin"),
        torch.Generator().manual_seed(0),
    )  # fmt: skip
    assert old.spearman_uncoupled > 0.999  # the old experiment setting: |L_ij W_ij| (τ_i + τ_j)/2 in disguise
