"""Neuron step functions against hand-computed traces, and the τ parametrisations."""

from __future__ import annotations

import math

import pytest
import torch

from hrsnn.errors import ConfigError
from hrsnn.neurons import (
    ALIFState,
    LogTau,
    RawTau,
    SoftplusTau,
    TimeConstants,
    alif_step,
    decay,
    leaky_readout_step,
    lif_hard_reset_step,
    make_parametrization,
)
from hrsnn.surrogates import MultiGaussian

SG = MultiGaussian()


def _run(step, inputs, state):
    us, ss, etas = [], [], []
    for i in inputs:
        s, state = step(torch.tensor([[i]]), state)
        us.append(round(float(state.u), 6))
        ss.append(float(s))
        etas.append(round(float(state.eta), 6))
    return us, ss, etas


def _state(u=0.0, s=0.0, eta=0.1):
    return ALIFState(torch.tensor([[u]]), torch.tensor([[s]]), torch.tensor([[eta]]))


def test_alif_three_steps_by_hand():
    # α = 0.5, ρ = 0.8, b0 = 0.1, β = 1, inputs 1, 0, 1, starting from u = s = 0, η = b0:
    # t1: η = 0.08, θ = 0.18, u = 0.5            → s = 1
    # t2: η = 0.264, θ = 0.364, u = 0.25 − 0.364 = −0.114 → s = 0
    # t3: η = 0.2112, θ = 0.3112, u = −0.057 + 0.5 = 0.443 → s = 1
    alpha, rho = torch.tensor([0.5]), torch.tensor([0.8])

    def step(i, st):
        return alif_step(i, st, alpha, rho, b0=0.1, beta=1.0, surrogate=SG)

    us, ss, etas = _run(step, [1.0, 0.0, 1.0], _state())
    assert us == pytest.approx([0.5, -0.114, 0.443], abs=1e-6)
    assert ss == [1.0, 0.0, 1.0]
    assert etas == pytest.approx([0.08, 0.264, 0.2112], abs=1e-6)


def test_alif_resistance_and_dt_enter_as_written():
    # u = α u + (1 − α) R I − θ s dt with R = 2, dt = 0.5, previous spike 1, u = 0.2, η = 0.1, ρ = 0.5, β = 1:
    # η = 0.05 + 0.5 = 0.55, θ = 0.1 + 0.55 = 0.65, u = 0.1 + 0.5·2·0.3 − 0.65·0.5 = 0.075
    s, st = alif_step(
        torch.tensor([[0.3]]), _state(0.2, 1.0, 0.1), torch.tensor([0.5]), torch.tensor([0.5]),
        b0=0.1, beta=1.0, surrogate=SG, r_m=2.0, dt=0.5,
    )  # fmt: skip
    assert float(st.eta) == pytest.approx(0.55)
    assert float(st.u) == pytest.approx(0.075)
    assert float(s) == 0.0


def test_lif_is_alif_with_beta_zero_by_hand():
    # β = 0: θ = b0 = 0.1; t1 u = 0.5 (s=1); t2 u = 0.25 − 0.1 = 0.15 (s=1); t3 u = 0.075 + 0.5 − 0.1 = 0.475 (s=1)
    alpha, rho = torch.tensor([0.5]), torch.tensor([0.8])

    def step(i, st):
        return alif_step(i, st, alpha, rho, b0=0.1, beta=0.0, surrogate=SG)

    us, ss, _ = _run(step, [1.0, 0.0, 1.0], _state())
    assert us == pytest.approx([0.5, 0.15, 0.475], abs=1e-6)
    assert ss == [1.0, 1.0, 1.0]


def test_strict_threshold_no_spike_at_equality():
    # u reaches exactly θ = b0: H(0) = 0
    s, st = alif_step(
        torch.tensor([[0.25]]), _state(0.0, 0.0, 0.0), torch.tensor([0.5]), torch.tensor([0.5]),
        b0=0.125, beta=0.0, surrogate=SG,
    )  # fmt: skip
    assert float(st.u) == 0.125
    assert float(s) == 0.0


def test_hard_reset_lif_by_hand():
    # α = 0.5, threshold 0.5, inputs 0.6, 0.3, 0.4: v = 0.6 (spike, u → 0); v = 0.3; v = 0.15 + 0.4 = 0.55 (spike)
    def step(i, st):
        return lif_hard_reset_step(i, st, torch.tensor([0.5]), threshold=0.5, surrogate=SG)

    us, ss, etas = _run(step, [0.6, 0.3, 0.4], _state(eta=0.7))
    assert us == pytest.approx([0.0, 0.3, 0.0], abs=1e-6)
    assert ss == [1.0, 0.0, 1.0]
    assert etas == [0.7, 0.7, 0.7]


def test_leaky_readout_by_hand():
    # u = α u + (1 − α) I with α = 0.5 and I = 1, 0, 2: 0.5, 0.25, 1.125
    u = torch.zeros(1)
    out = []
    for i in (1.0, 0.0, 2.0):
        u = leaky_readout_step(torch.tensor([i]), u, torch.tensor([0.5]))
        out.append(float(u))
    assert out == pytest.approx([0.5, 0.25, 1.125])


def test_decay_formula():
    assert float(decay(torch.tensor(20.0), 1.0)) == pytest.approx(math.exp(-1 / 20))
    assert float(decay(torch.tensor(4.0), 2.0)) == pytest.approx(math.exp(-0.5))


def test_softplus_parametrisation_by_hand_and_round_trip():
    p = SoftplusTau(tau_min=1.0)
    theta = torch.tensor([0.0, 2.0])
    assert p.to_tau(theta).tolist() == pytest.approx([1.0 + math.log(2.0), 1.0 + math.log(1.0 + math.e**2)])
    tau = torch.tensor([1.5, 20.0, 700.0, 5000.0], dtype=torch.float64)
    theta = p.from_tau(tau)
    assert torch.isfinite(theta).all()
    torch.testing.assert_close(p.to_tau(theta), tau)
    # for large τ, θ ≈ τ − τ_min, so steps on θ equal steps on τ
    assert float(theta[2]) == pytest.approx(699.0)


def test_softplus_rejects_tau_at_or_below_floor():
    with pytest.raises(ConfigError, match="tau_min"):
        SoftplusTau(1.0).from_tau(torch.tensor([1.0, 3.0]))


def test_log_and_raw_parametrisations():
    tau = torch.tensor([0.5, 20.0])
    assert LogTau().from_tau(tau).tolist() == pytest.approx([math.log(0.5), math.log(20.0)])
    torch.testing.assert_close(LogTau().to_tau(LogTau().from_tau(tau)), tau)
    assert RawTau().to_tau(tau) is tau
    with pytest.raises(ConfigError, match="> 0"):
        LogTau().from_tau(torch.tensor([-1.0]))


def test_make_parametrization_names_bad_value():
    with pytest.raises(ConfigError, match="parametrization='tanh'"):
        make_parametrization("tanh")
    assert make_parametrization("softplus", 2.0) == SoftplusTau(2.0)


def test_time_constants_never_go_below_floor_after_big_step():
    tc = TimeConstants(torch.tensor([2.0, 30.0]), SoftplusTau(1.0))
    with torch.no_grad():
        tc.theta -= 1e4
    assert (tc.tau >= 1.0).all()
    d = tc.decay()
    assert (d > 0).all()
    d.sum().backward()
    assert torch.isfinite(tc.theta.grad).all()


def test_time_constants_frozen_and_set_tau():
    tc = TimeConstants(torch.tensor([5.0, 6.0]), SoftplusTau(), learnable=False, family="tau_m")
    assert not tc.theta.requires_grad
    tc.set_tau(torch.tensor([7.0, 8.0]))
    torch.testing.assert_close(tc.tau, torch.tensor([7.0, 8.0]))
    with pytest.raises(ConfigError):
        TimeConstants(torch.ones(2, 2), RawTau())
