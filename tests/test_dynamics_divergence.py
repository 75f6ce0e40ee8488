"""Perturbation divergence, λ_max with SEM and the edge-of-chaos sweep: by-hand answers and a real dense network."""

from __future__ import annotations

import math
import re
from dataclasses import replace

import pytest
import torch

from hrsnn.connectivity import ConnectivitySpec, spectral_radius
from hrsnn.dynamics import (
    DriveConfig,
    LyapunovConfig,
    edge_of_chaos,
    largest_lyapunov_estimate,
    perturbation_divergence,
)
from hrsnn.errors import ConfigError
from hrsnn.experiments.lnp import LNPExperimentConfig, build_dense, probe_drive
from hrsnn.network import RSNN, LayerConfig, NeuronConfig, RSNNConfig
from hrsnn.stats import Estimate

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")),
]


def _lif(n: int, tau: float, *, recurrent: bool = True, dt: float = 1.0, n_inputs: int = 2) -> RSNN:
    """A float64 LIF layer (threshold 1, constant τ) with zero recurrent weights and biases."""
    neuron = NeuronConfig(kind="lif", b0=1.0, beta=0.0, dt=dt, tau_m={"dist": "constant", "value": tau})
    layer = LayerConfig(
        size=n, recurrent=recurrent, neuron=neuron, connectivity=ConnectivitySpec(kind="erdos_renyi", p=0.5)
    )
    model = RSNN(RSNNConfig(n_inputs=n_inputs, n_outputs=1, layers=(layer,)), seed=0).double()
    model.layers[0].tau_m.set_tau(torch.full((n,), tau, dtype=torch.float64))  # τ exact in float64
    if recurrent:
        with torch.no_grad():
            model.layers[0].weight_rec.zero_()
    return model


def _dense(radius: float, n: int = 150) -> RSNN:
    return build_dense(replace(LNPExperimentConfig(n_neurons=n), spectral_radius=radius), 0)


# --------------------------------------------------------------------------------------------------
# perturbation divergence: known answers
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
def test_membrane_perturbation_of_a_silent_network_decays_by_alpha_per_step(device: str) -> None:
    # No input, no bias, no recurrence, u0 < ϑ = 1: nothing ever spikes, and u_t = α u_{t-1} in both copies, so
    # d_t = ε α^t with α = exp(-dt/τ), and the rate is log(α)/dt = -1/τ per unit time.
    tau, dt, eps = 10.0, 0.5, 1e-3
    model = _lif(5, tau, dt=dt).to(device)
    res = perturbation_divergence(
        model, torch.zeros(1, 47, 2, dtype=torch.float64), epsilon=eps, n_pairs=4, transient=7, horizon=40
    )
    alpha = math.exp(-dt / tau)
    expected = eps * alpha ** torch.arange(41, dtype=torch.float64)
    torch.testing.assert_close(res.membrane_distance, expected.expand(4, -1), rtol=1e-10, atol=0.0)
    torch.testing.assert_close(res.times, torch.arange(41, dtype=torch.float64) * dt)
    torch.testing.assert_close(res.rates, torch.full((4,), -1.0 / tau, dtype=torch.float64), rtol=1e-9, atol=0.0)
    assert res.rate.mean == pytest.approx(-1.0 / tau, rel=1e-9) and res.rate.n == 4
    assert not res.spike_distance.any() and res.flipped_fraction == 0.0 and res.merged_fraction == 0.0
    assert res.final_distance.mean == 0.0


def _pulse_chain() -> RSNN:
    """float64 feed-forward LIF chain (τ = 3, ϑ = 1): one neuron reading one input line with weight 1, then three
    neurons reading its spikes with weight 0.5 (a spike adds (1 − α)/2 = 0.14 to them: they never spike)."""
    neuron = NeuronConfig(kind="lif", b0=1.0, beta=0.0, tau_m={"dist": "constant", "value": 3.0})
    layers = (LayerConfig(size=1, recurrent=False, neuron=neuron), LayerConfig(size=3, recurrent=False, neuron=neuron))
    model = RSNN(RSNNConfig(n_inputs=1, n_outputs=1, layers=layers), seed=0).double()
    with torch.no_grad():
        for layer in model.layers:
            layer.tau_m.set_tau(torch.full((layer.size,), 3.0, dtype=torch.float64))
        model.layers[0].input.weight.fill_(1.0)
        model.layers[1].input.weight.fill_(0.5)
    return model


@pytest.mark.parametrize("device", DEVICES)
def test_one_moved_spike_by_hand(device: str) -> None:
    # α = e^{-1/3}. 30 silent transient steps leave u ≈ 0 (α^30 u0 < 5e-5); ε = 0.2 moves the first neuron's
    # membrane by ±0.2 (its direction is ±1); then an input pulse adds (1 − α)·P = 0.9 at the first horizon step.
    # Copy a: u_1 = 0.9 < 1, never spikes. +: u_1 = 0.9 + 0.2α = 1.04 spikes at t = 1 only (u_2 = αu_1 − 1 < 0):
    #    first neuron 0.2α at t = 1, then α^{t-2}|0.2α² − 1| (the soft reset); each of the three others
    #    (1 − α)/2·α^{t-1} from t = 1 (the spike's current); d_t is the norm over all four. h_1 = 1/4, then 0.
    # −: u_1 = 0.76, no spike; d_t = 0.2 α^t, h = 0.
    alpha, eps = math.exp(-1.0 / 3.0), 0.2
    x = torch.zeros(1, 36, 1, dtype=torch.float64)
    x[0, 30, 0] = 0.9 / (1.0 - alpha)
    res = perturbation_divergence(
        _pulse_chain().to(device), x, epsilon=eps, n_pairs=16, transient=30, horizon=6, window=4
    )
    t = torch.arange(7, dtype=torch.float64)
    down = eps * alpha**t
    first = torch.cat(
        [torch.tensor([eps, eps * alpha], dtype=torch.float64), (1.0 - eps * alpha**2) * alpha ** (t[2:] - 2)]
    )
    others = torch.cat([torch.zeros(1, dtype=torch.float64), 0.5 * (1.0 - alpha) * alpha ** (t[1:] - 1)])
    up = torch.sqrt(first**2 + 3.0 * others**2)
    moved = res.spike_distance[:, 0] == 0.25
    n_moved = int(moved.sum())
    assert 0 < n_moved < 16  # both signs occur (seeded)
    torch.testing.assert_close(res.membrane_distance[moved], up.expand(n_moved, -1), rtol=1e-12, atol=0.0)
    torch.testing.assert_close(res.membrane_distance[~moved], down.expand(16 - n_moved, -1), rtol=1e-12, atol=0.0)
    assert not res.spike_distance[~moved].any() and not res.spike_distance[:, 1:].any()
    expected_windows = torch.tensor([[0.25 / 4, 0.0]], dtype=torch.float64) * moved[:, None]  # 4 steps, last 2
    torch.testing.assert_close(res.windowed_spike_distance, expected_windows)
    assert res.flipped_fraction == n_moved / 16
    assert res.final_distance.mean == 0.0 and res.merged_fraction == 0.0  # spikes re-merged, membranes did not
    # A pulse at the last transient step makes the neuron spike there (u = 1.1) in the state that is perturbed, so
    # the soft reset at t = 1 keeps both copies below threshold (α·1.3 − 0.1 = 0.83): no spike moves, d_t = 0.2 α^t.
    x[0, 29, 0] = 1.1 / (1.0 - alpha)
    reset = perturbation_divergence(
        _pulse_chain().to(device), x, epsilon=eps, n_pairs=16, transient=30, horizon=6, window=6
    )
    assert not reset.spike_distance.any()
    torch.testing.assert_close(reset.membrane_distance, down.expand(16, -1), rtol=1e-12, atol=0.0)


def test_zero_perturbation_gives_zero_distance_in_a_chaotic_network() -> None:
    res = perturbation_divergence(_dense(20.0), probe_drive(LNPExperimentConfig(), 0), epsilon=0.0, n_pairs=4)
    assert not res.membrane_distance.any() and not res.spike_distance.any()
    assert not res.rates.any() and res.rate.mean == 0.0  # log of the floor at every step: slope 0
    assert res.merged_fraction == 1.0 and res.flipped_fraction == 0.0
    positive = perturbation_divergence(_dense(20.0), probe_drive(LNPExperimentConfig(), 0), epsilon=0.1, n_pairs=4)
    assert positive.membrane_distance[:, -1].min() > 0.1  # the same network does separate ε = 0.1 copies


def test_divergence_rate_grows_with_the_spectral_radius() -> None:
    # Measured (N = 150, ε = 0.1, 32 pairs): ρ = 0.5 gives ≈ −0.01 ± 0.005 (perturbations die out), ρ = 20 gives
    # ≈ +0.03 ± 0.003 (they grow), and the spike trains stay apart only at ρ = 20.
    drive = probe_drive(LNPExperimentConfig(), 0)
    weak = perturbation_divergence(_dense(0.5), drive, epsilon=0.1, n_pairs=32)
    strong = perturbation_divergence(_dense(20.0), drive, epsilon=0.1, n_pairs=32)
    assert weak.rate.mean < 0.0 < strong.rate.mean
    assert strong.rate.mean - weak.rate.mean > 3.0 * math.hypot(weak.rate.sem, strong.rate.sem)
    assert strong.final_distance.mean > 10.0 * weak.final_distance.mean
    assert strong.final_distance.mean > 0.02


def test_tensor_inputs_are_shared_by_the_pairs_and_pairs_are_independent() -> None:
    # One shared input row: the pairs still differ (own initial membranes and directions), and the same seed
    # reproduces the run exactly.
    model = _dense(10.0, n=100)
    x = DriveConfig(rate=0.02, seed=3).sample(1, 150, model.config.n_inputs)
    a = perturbation_divergence(model, x, epsilon=0.1, n_pairs=4, transient=50, horizon=100, seed=5)
    b = perturbation_divergence(model, x, epsilon=0.1, n_pairs=4, transient=50, horizon=100, seed=5)
    torch.testing.assert_close(a.membrane_distance, b.membrane_distance, rtol=0.0, atol=0.0)
    assert len(set(a.rates.tolist())) == 4


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"epsilon": -0.1}, "epsilon"),
        ({"epsilon": 1e-30}, "epsilon"),
        ({"epsilon": 0.1, "window": 101}, "window"),
        ({"epsilon": 0.1, "fit_steps": 101}, "fit_steps"),
        ({"epsilon": 0.1, "layer": 1}, "layer"),
        ({"epsilon": 0.1, "n_pairs": 0}, "n_pairs"),
        ({"epsilon": 0.1, "inputs": torch.zeros(1, 199, 2)}, "inputs"),
        ({"epsilon": 0.1, "inputs": torch.zeros(3, 200, 2)}, "inputs"),
        ({"epsilon": 0.1, "inputs": torch.zeros(1, 200, 5)}, "inputs"),
    ],
)
def test_divergence_rejects_bad_arguments(kwargs: dict, field: str) -> None:
    inputs = kwargs.pop("inputs", torch.zeros(1, 200, 2))
    with pytest.raises(ConfigError, match=f"^{field}="):
        perturbation_divergence(_lif(3, 10.0).float(), inputs, n_pairs=kwargs.pop("n_pairs", 2), **kwargs)


# --------------------------------------------------------------------------------------------------
# λ_max with a standard error
# --------------------------------------------------------------------------------------------------


def test_largest_lyapunov_estimate_known_answer_and_spread() -> None:
    # Exact reading of a constant-τ LIF network: the Jacobian is diag(α) on u, so λ_max = log(α) = −1/τ for every
    # initial condition (SEM 0), whatever the spikes.
    model = _lif(6, 8.0).float()
    config = LyapunovConfig(n_steps=50, transient=10, align=10, n_exponents=1)
    drive = DriveConfig(kind="gaussian", mean=2.0, std=1.0)
    exact = largest_lyapunov_estimate(model, config, method="exact", drive=drive, n_initial=4)
    assert exact.n == 4 and exact.mean == pytest.approx(-1.0 / 8.0, rel=1e-9) and exact.sem < 1e-12
    # Surrogate reading of a real network: four initial conditions, four different finite-time values.
    smooth = largest_lyapunov_estimate(_dense(10.0, n=100), config, drive=probe_drive(LNPExperimentConfig(), 0))
    assert smooth.n == 4 and smooth.sem > 0.0 and math.isfinite(smooth.mean)
    with pytest.raises(ConfigError, match="^n_initial="):
        largest_lyapunov_estimate(model, config, n_initial=1)


# --------------------------------------------------------------------------------------------------
# edge of chaos
# --------------------------------------------------------------------------------------------------


def _radius(model: RSNN) -> float:
    return spectral_radius(model.layers[0].effective_recurrent_weight().detach())


def test_edge_of_chaos_interpolates_linearly_between_the_bracketing_radii() -> None:
    # measure = ρ² − 8 at radii 1, 2, 4: −7, −4, +8; the line through (2, −4) and (4, 8) crosses 0 at 2 + 2·4/12
    # = 8/3 (neither the midpoint 3 nor √8 = 2.83: the interpolation is linear in the radius).
    model = _dense(10.0, n=100).double()
    before = model.layers[0].weight_rec.detach().clone()
    res = edge_of_chaos(model, [4.0, 1.0, 2.0], lambda m: Estimate(_radius(m) ** 2 - 8.0, 0.1, 4))
    assert res.radii == (1.0, 2.0, 4.0)
    assert [e.mean for e in res.estimates] == pytest.approx([-7.0, -4.0, 8.0], abs=1e-9)
    assert res.critical_radius == pytest.approx(8.0 / 3.0, abs=1e-9) and res.bracket == (2.0, 4.0)
    assert res.crossings == pytest.approx((8.0 / 3.0,)) and res.resolved
    torch.testing.assert_close(model.layers[0].weight_rec.detach(), before, rtol=0.0, atol=0.0)  # a copy was scaled


def test_edge_of_chaos_reports_noise_crossings_and_no_crossing() -> None:
    table = {
        1.0: Estimate(-1.0, 2.0, 4),
        2.0: Estimate(1.0, 2.0, 4),
        3.0: Estimate(-1.0, 2.0, 4),
        4.0: Estimate(0.0, 1, 4),
    }

    def build(radius: float) -> RSNN:
        model = _lif(2, 10.0)
        model.tag = radius  # type: ignore[attr-defined]
        return model

    res = edge_of_chaos(build, list(table), lambda m: table[m.tag])
    assert res.crossings == pytest.approx((1.5, 2.5, 4.0)) and res.critical_radius == pytest.approx(1.5)
    assert res.bracket == (1.0, 2.0) and not res.resolved  # |mean| = 1 < 2 SEM
    assert "3 crossing(s)" in res.verdict
    none = edge_of_chaos(build, [1.0, 2.0], lambda m: Estimate(-m.tag, 0.1, 4))
    assert none.critical_radius is None and none.bracket is None and none.crossings == () and not none.resolved
    assert none.verdict.startswith("no crossing: mean < 0 (stable)")


def test_edge_of_chaos_on_the_divergence_rate_of_a_dense_network() -> None:
    drive = probe_drive(LNPExperimentConfig(), 0)
    res = edge_of_chaos(_dense(10.0), [0.5, 20.0], lambda m: perturbation_divergence(m, drive, epsilon=0.1).rate)
    low, high = res.estimates
    assert low.mean < 0.0 < high.mean
    assert res.bracket == (0.5, 20.0) and 0.5 < res.critical_radius < 20.0


@pytest.mark.parametrize(
    ("model", "radii", "measure", "field"),
    [
        (None, [1.0], None, "radii"),
        (None, [1.0, 1.0], None, "radii"),
        (None, [-1.0, 2.0], None, "radii[0]"),
        (None, [1.0, 2.0], lambda m: 0.5, "measure"),
        (3, [1.0, 2.0], None, "model"),
        ("feed-forward", [1.0, 2.0], None, "layer"),
    ],
)
def test_edge_of_chaos_rejects_bad_arguments(model, radii, measure, field) -> None:
    model = {None: _dense(10.0, n=100), "feed-forward": _lif(3, 10.0, recurrent=False)}.get(model, model)
    measure = measure or (lambda m: Estimate(1.0, 0.1, 4))
    with pytest.raises(ConfigError, match="^" + re.escape(field)):
        edge_of_chaos(model, radii, measure)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_edge_of_chaos_keeps_a_cuda_model_on_its_device() -> None:
    drive = probe_drive(LNPExperimentConfig(), 0)
    seen = []

    def measure(m: RSNN) -> Estimate:
        seen.append(m.device.type)
        return perturbation_divergence(m, drive, epsilon=0.1).rate

    res = edge_of_chaos(_dense(10.0).cuda(), [0.5, 20.0], measure)
    assert seen == ["cuda", "cuda"] and res.estimates[0].mean < 0.0 < res.estimates[1].mean
