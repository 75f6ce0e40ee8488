"""RSNN maps: hand tangent vs torch.func, the exact (a.e.) reading's known spectrum, drives, the fitted rate model."""

from __future__ import annotations

import math

import pytest
import torch
from torch.func import jacrev

from hrsnn.connectivity import ConnectivitySpec
from hrsnn.dynamics.lyapunov import FTLEConfig, LyapunovConfig, MapSystem, lyapunov_spectrum
from hrsnn.dynamics.snn import (
    DriveConfig,
    RateMap,
    SigmoidGain,
    SpikingMap,
    ZeroSurrogate,
    fit_rate_map,
    fit_sigmoid_gain,
    rsnn_lyapunov,
    rsnn_node_ftle,
)
from hrsnn.errors import ConfigError
from hrsnn.network import RSNN, LayerConfig, NeuronConfig, RSNNConfig
from hrsnn.surrogates import Gaussian

F64 = torch.float64


def _model(kinds=("alif",), n=6, n_inputs=3, gain=1.0, seed=1, recurrent=None, kind="erdos_renyi"):
    recurrent = recurrent or (True,) * len(kinds)
    layers = tuple(
        LayerConfig(
            size=n,
            recurrent=rec,
            neuron=NeuronConfig(kind=k),
            connectivity=ConnectivitySpec(kind=kind, p=0.5, init="normal", gain=gain),
        )
        for k, rec in zip(kinds, recurrent, strict=True)
    )
    return RSNN(RSNNConfig(n_inputs=n_inputs, n_outputs=2, layers=layers), seed=seed)


def _near_threshold_state(sm: SpikingMap, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = sm.advance(sm.initial_state(1, g), 0, 8)
    return x + 0.05 * torch.randn(x.shape, generator=g, dtype=F64)


# ---------------------------------------------------------------------------------------- tangent map


@pytest.mark.parametrize(
    ("kinds", "recurrent"),
    [
        (("alif",), (True,)),
        (("lif",), (True,)),
        (("lif_hard",), (True,)),
        (("alif", "lif_hard", "lif"), (True, False, True)),
    ],
)
def test_hand_tangent_equals_jacrev_and_jvp(kinds, recurrent):
    model = _model(kinds, recurrent=recurrent)
    sm = SpikingMap(model, DriveConfig(kind="gaussian", std=0.5).sample(1, 20, 3), surrogate=Gaussian(sigma=0.3))
    x = _near_threshold_state(sm)
    t = 8

    def single(z: torch.Tensor) -> torch.Tensor:
        return sm.step(z[None], t)[0]

    jacobian = jacrev(single)(x[0])
    assert float(jacobian[sm.layer_slices[0]][6:12].abs().max()) > 1e-3  # the s-rows carry a nonzero ψ
    q = torch.randn(1, sm.dim, 5, generator=torch.Generator().manual_seed(3), dtype=F64)
    x_next, linearization = sm.linearize(x, t, 1)
    assert torch.allclose(x_next, sm.step(x, t))
    hand = linearization.apply(0, q)
    assert torch.allclose(hand[0], jacobian @ q[0], atol=1e-12, rtol=0)
    _, jvp_lin = MapSystem(single, sm.dim, tangent="jvp").linearize(x, 0, 1)
    assert torch.allclose(hand, jvp_lin.apply(0, q), atol=1e-12, rtol=0)


def test_state_layout_dimensions_and_rank():
    sm = SpikingMap(_model(("alif", "lif", "lif_hard"), n=4), torch.zeros(1, 5, 3))
    assert sm.dim == 12 + 8 + 8
    assert sm.rank == 8 + 4 + 4
    assert sm.neuron_coordinates().tolist() == [0, 1, 2, 3, 12, 13, 14, 15, 20, 21, 22, 23]
    assert sm.neuron_coordinates(1).tolist() == [12, 13, 14, 15]
    with pytest.raises(ConfigError, match="layer"):
        sm.neuron_coordinates(3)


def test_step_reproduces_the_network_spikes():
    model = _model(("alif",), n=8)
    inputs = DriveConfig(kind="poisson", rate=0.4).sample(1, 30, 3)
    sm = SpikingMap(model, inputs)
    state = model.initial_state(1)
    x = torch.cat([state.layers[0].u, state.layers[0].s, state.layers[0].eta], dim=1).double()
    spikes = []
    for t in range(30):
        x = sm.step(x, t)
        spikes.append(x[:, 8:16])
    assert torch.equal(torch.stack(spikes, 1).float(), model(inputs).layer_spikes[0])


def test_probe_measures_rates_and_mean_currents_by_hand():
    # r_i = ⟨s_i,t⟩ and h_i = ⟨W_in x_t + b_in + W s_{t−1} + b_rec⟩ over steps and batch.
    model = _model(("alif",), n=8)
    with torch.no_grad():
        model.layers[0].bias_rec.fill_(0.01)
    inputs = DriveConfig(kind="poisson", rate=0.4).sample(2, 40, 3)
    sm = SpikingMap(model, inputs)
    state = model.initial_state(2)
    x = torch.cat([state.layers[0].u, state.layers[0].s, state.layers[0].eta], dim=1).double()
    _, rates, currents = sm.probe(x, 0, 40)
    layer = model.layers[0]
    spikes = model(inputs).layer_spikes[0].double()
    previous = torch.cat([torch.zeros(2, 1, 8, dtype=F64), spikes[:, :-1]], dim=1)
    w_rec = layer.effective_recurrent_weight().detach().double()
    drive = inputs.double() @ layer.input.weight.detach().double().T + layer.input.bias.detach().double()
    expected = (drive + previous @ w_rec.T + layer.bias_rec.detach().double()).mean(dim=(0, 1))
    assert torch.allclose(rates[0], spikes.mean(dim=(0, 1)))
    assert torch.allclose(currents[0], expected, atol=1e-6)


# ---------------------------------------------------------------------------------------- exact (a.e.) reading


def test_exact_reading_of_driven_lif_is_minus_inverse_tau():
    # With ψ = 0 the LIF Jacobian is [[diag(α), C], [0, 0]] with constant C, so the spectrum is
    # {log α_i / dt} = {−1/τ_m,i} and N exponents −∞, even while the network spikes.
    model = _model(("lif",), n=4, gain=2.0)
    tau = torch.tensor([5.0, 10.0, 20.0, 40.0])
    model.layers[0].tau_m.set_tau(tau)
    config = LyapunovConfig(n_steps=300, transient=20, align=1500, n_ons=5)
    result = rsnn_lyapunov(model, config, method="exact", drive=DriveConfig(rate=0.5), batch=2)
    probe = SpikingMap(model, DriveConfig(rate=0.5).sample(1, 100, 3))
    x0 = probe.initial_state(1, torch.Generator().manual_seed(0))
    assert float(probe.probe(x0, 0, 100)[1][0].sum()) > 0  # the network does spike
    expected = torch.cat([-1.0 / model.layers[0].tau_m.tau.detach().double(), torch.full((4,), -math.inf, dtype=F64)])
    assert torch.allclose(result.exponents, expected.sort(descending=True).values.expand(2, 8), atol=1e-8, rtol=0)


def test_exact_reading_of_silent_alif_includes_adaptation_timescales():
    # Undriven and silent: J is diagonal on (u, η), so the spectrum is {−1/τ_m,i} ∪ {−1/τ_adp,i} (and N × −∞).
    model = _model(("alif",), n=2)
    model.layers[0].tau_m.set_tau(torch.tensor([5.0, 20.0]))
    model.layers[0].tau_adp.set_tau(torch.tensor([50.0, 200.0]))
    config = LyapunovConfig(n_steps=100, transient=0, align=1000, n_ons=5, n_exponents=4)
    result = rsnn_lyapunov(model, config, method="exact", drive=DriveConfig(kind="zeros"))
    layer = model.layers[0]
    tau = torch.cat([layer.tau_m.tau, layer.tau_adp.tau]).detach().double()
    assert torch.allclose(result.mean, (-1.0 / tau).sort(descending=True).values, atol=1e-8, rtol=0)


def test_zero_surrogate_is_zero():
    v = torch.linspace(-1, 1, 5)
    assert torch.equal(ZeroSurrogate().derivative(v), torch.zeros(5))
    assert torch.equal(ZeroSurrogate().shape(v), torch.zeros(5))


# ---------------------------------------------------------------------------------------- surrogate reading


def test_surrogate_full_spectrum_shape_spread_and_minus_infinity():
    model = _model(("alif",), n=5, gain=2.0)
    config = LyapunovConfig(n_steps=100, transient=20, align=20)
    result = rsnn_lyapunov(model, config, drive=DriveConfig(rate=0.3), batch=3)
    assert result.exponents.shape == (3, 15)
    assert bool(torch.isfinite(result.exponents[:, :10]).all())
    assert bool(torch.isneginf(result.exponents[:, 10:]).all())
    assert bool(torch.isfinite(result.std[:10]).all())
    assert torch.allclose(result.sem[:10], result.std[:10] / math.sqrt(3))
    assert float(result.mean[0]) < 0.5


def test_node_ftle_of_rsnn_has_one_value_per_neuron():
    model = _model(("alif", "lif"), n=4)
    result = rsnn_node_ftle(model, FTLEConfig(horizon=6, windows=2, transient=5), drive=DriveConfig(rate=0.3))
    assert result.values.shape == (8,)
    assert result.samples.shape == (1, 2, 8)
    assert bool(torch.isfinite(result.values).all())
    one = rsnn_node_ftle(model, FTLEConfig(horizon=6, windows=1, transient=5), layer=1, drive=DriveConfig(rate=0.3))
    assert one.coordinates.tolist() == [12, 13, 14, 15]


def test_spiking_map_validation():
    sm = SpikingMap(_model(), torch.zeros(1, 4, 3))
    x = sm.initial_state(1, torch.Generator().manual_seed(0))
    with pytest.raises(ConfigError, match="^t="):
        sm.advance(x, 0, 5)
    with pytest.raises(ConfigError, match="inputs"):
        SpikingMap(_model(), torch.zeros(1, 4, 2))
    with pytest.raises(ConfigError, match="model"):
        SpikingMap(object(), torch.zeros(1, 4, 3))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="method"):
        rsnn_lyapunov(_model(), method="event")
    with pytest.raises(ConfigError, match="^x="):
        SpikingMap(_model(), torch.zeros(2, 4, 3)).advance(torch.zeros(3, 18), 0, 1)


# ---------------------------------------------------------------------------------------- drive


def test_drive_kinds_by_hand():
    assert torch.equal(DriveConfig(kind="zeros").sample(2, 3, 4), torch.zeros(2, 3, 4))
    assert torch.equal(DriveConfig(kind="constant", mean=0.7).sample(1, 2, 3), torch.full((1, 2, 3), 0.7))
    poisson = DriveConfig(kind="poisson", rate=0.2, seed=3).sample(4, 500, 10)
    assert set(poisson.unique().tolist()) <= {0.0, 1.0}
    assert float(poisson.mean()) == pytest.approx(0.2, abs=0.01)
    gauss = DriveConfig(kind="gaussian", mean=1.0, std=2.0).sample(4, 500, 10)
    assert float(gauss.mean()) == pytest.approx(1.0, abs=0.05)
    assert float(gauss.std()) == pytest.approx(2.0, rel=0.03)
    assert torch.equal(DriveConfig(seed=5).sample(1, 9, 2), DriveConfig(seed=5).sample(1, 9, 2))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"kind": "pink"}, "drive.kind"), ({"rate": 1.5}, "drive.rate"), ({"std": -1.0}, "drive.std")],
)
def test_drive_validation(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        DriveConfig(**kwargs)


# ---------------------------------------------------------------------------------------- rate model


def test_sigmoid_gain_values_and_derivative_by_hand():
    phi = SigmoidGain(r_max=0.4, slope=3.0, threshold=0.5)
    h = torch.tensor([0.5, 0.5 + math.log(3.0) / 3.0], dtype=F64, requires_grad=True)
    values = phi(h)
    assert values.tolist() == pytest.approx([0.2, 0.3])  # r_max/2 and r_max·σ(log 3) = 0.75·r_max
    (grad,) = torch.autograd.grad(values.sum(), h)
    assert torch.allclose(phi.derivative(h.detach()), grad)
    assert float(phi.derivative(torch.tensor(0.5))) == pytest.approx(3.0 * 0.4 / 4.0)
    with pytest.raises(ConfigError, match="gain.slope"):
        SigmoidGain(0.4, 0.0, 0.0)


def test_fit_sigmoid_gain_recovers_known_parameters():
    h = torch.linspace(-2.0, 3.0, 40, dtype=F64)
    truth = SigmoidGain(r_max=0.35, slope=2.5, threshold=0.4)
    fit = fit_sigmoid_gain(h, truth(h))
    assert (fit.r_max, fit.slope, fit.threshold) == pytest.approx((0.35, 2.5, 0.4), rel=1e-6)
    with pytest.raises(ConfigError, match="rates"):
        fit_sigmoid_gain(h, torch.zeros(40, dtype=F64))
    with pytest.raises(ConfigError, match="rates"):
        fit_sigmoid_gain(h, torch.full((40,), 2.0, dtype=F64))


def test_rate_map_jacobian_by_hand_and_against_jacrev():
    # One layer: J = diag(α) + diag((1 − α) φ'(h)) W with h = W_in x_t + b_in + W r + b_rec.
    model = _model(("alif",), n=5, gain=1.5)
    inputs = DriveConfig(kind="gaussian").sample(1, 4, 3)
    phi = SigmoidGain(0.3, 2.0, 0.1)
    rate_map = RateMap(model, inputs, [phi])
    r = torch.rand(1, 5, generator=torch.Generator().manual_seed(0), dtype=F64) * 0.3
    layer = model.layers[0]
    w = layer.effective_recurrent_weight().detach().double()
    alpha = torch.exp(-1.0 / layer.tau_m.tau.detach().double())
    h = inputs[0, 2].double() @ layer.input.weight.detach().double().T + layer.input.bias.detach().double()
    h = h + r[0] @ w.T + layer.bias_rec.detach().double()
    by_hand = torch.diag(alpha) + torch.diag((1 - alpha) * phi.derivative(h)) @ w
    assert torch.allclose(rate_map.step(r, 2)[0], alpha * r[0] + (1 - alpha) * phi(h))
    q = torch.eye(5, dtype=F64)[None]
    assert torch.allclose(rate_map.linearize(r, 2, 1)[1].apply(0, q)[0], by_hand, atol=1e-12)
    assert torch.allclose(jacrev(lambda z: rate_map.step(z[None], 2)[0])(r[0]), by_hand, atol=1e-12)


def test_two_layer_rate_map_tangent_matches_jacrev():
    model = _model(("alif", "lif"), n=4, recurrent=(True, False))
    rate_map = RateMap(model, DriveConfig(kind="gaussian").sample(1, 3, 3), [SigmoidGain(0.3, 2.0, 0.0)] * 2)
    r = torch.full((1, 8), 0.1, dtype=F64)
    q = torch.randn(1, 8, 3, generator=torch.Generator().manual_seed(1), dtype=F64)
    jacobian = jacrev(lambda z: rate_map.step(z[None], 1)[0])(r[0])
    assert torch.allclose(rate_map.linearize(r, 1, 1)[1].apply(0, q)[0], jacobian @ q[0], atol=1e-12)
    with pytest.raises(ConfigError, match="gains"):
        RateMap(model, torch.zeros(1, 3, 3), [SigmoidGain(0.3, 2.0, 0.0)])


def test_rate_reading_end_to_end_and_silent_network_error():
    model = _model(("alif",), n=12, gain=1.0)
    drive = DriveConfig(rate=0.3)
    config = LyapunovConfig(n_steps=80, transient=10, align=10, n_exponents=4)
    result = rsnn_lyapunov(model, config, method="rate", drive=drive, probe_steps=200)
    assert result.dim == 12
    assert bool(torch.isfinite(result.mean).all())
    sm = SpikingMap(model, drive.sample(1, 200, 3))
    rate_map, r0 = fit_rate_map(sm, sm.initial_state(1, torch.Generator().manual_seed(0)), 200)
    assert r0.shape == (1, 12) and float(r0.max()) > 0
    assert 0 < rate_map.gains[0].r_max <= 1
    with pytest.raises(ConfigError, match="drive"):
        rsnn_lyapunov(model, config, method="rate", drive=DriveConfig(kind="zeros"), probe_steps=50)


def test_lyapunov_spectrum_accepts_spiking_map_directly():
    model = _model(("lif_hard",), n=4)
    sm = SpikingMap(model, DriveConfig(rate=0.3).sample(2, 60, 3))
    x0 = sm.initial_state(2, torch.Generator().manual_seed(0))
    result = lyapunov_spectrum(sm, x0, LyapunovConfig(n_steps=40, transient=10, align=10, n_exponents=3))
    assert result.exponents.shape == (2, 3)
    assert result.dt == 1.0
