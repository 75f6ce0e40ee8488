"""Spike encoders (hrsnn.encoding): every equation checked by hand on tiny inputs, plus draw statistics and the
validation of each argument."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hrsnn.encoding import (
    bernoulli_spikes,
    gaussian_fields,
    level_crossing,
    population_spikes,
    rate_probability,
    rate_spikes,
    ternary_spikes,
    threshold_spikes,
)
from hrsnn.errors import ConfigError
from hrsnn.surrogates import Triangle

F64 = torch.float64


def _t(values: object) -> torch.Tensor:
    return torch.tensor(values, dtype=F64)


# ------------------------------------------------------------------------------------------------ rate coding


def test_rate_probability_by_hand():
    u = _t([[0.0, 0.25, 0.5, 1.0]])
    assert torch.equal(rate_probability(u), u)  # defaults: p = u
    # r_max = 200 Hz, dt = 1 ms: p = 0.2 u
    torch.testing.assert_close(rate_probability(u, max_rate=200.0, dt=1e-3), _t([[0.0, 0.05, 0.1, 0.2]]))
    # a plain gain of 3, clipped at 1
    torch.testing.assert_close(rate_probability(u, max_rate=3.0), _t([[0.0, 0.75, 1.0, 1.0]]))


def test_rate_spikes_are_a_hand_made_draw_from_the_same_generator():
    u = _t([[0.1, 0.5, 0.9], [0.3, 0.7, 1.0]])
    p = _t([[0.05, 0.25, 0.45], [0.15, 0.35, 0.5]])  # u · 2 · 0.25
    got = rate_spikes(u, torch.Generator().manual_seed(11), max_rate=2.0, dt=0.25, n_steps=4)
    draws = torch.rand((2, 4, 3), generator=torch.Generator().manual_seed(11), dtype=F64)
    want = (draws < p[:, None, :]).to(F64)  # the same p at every step, a new draw per step
    assert got.shape == (2, 4, 3) and got.dtype == F64
    assert torch.equal(got, want) and 0 < int(want.sum()) < want.numel()
    # without n_steps: one draw per entry; a numpy generator draws numpy's stream
    got_np = rate_spikes(u, np.random.default_rng(5), max_rate=2.0, dt=0.25)
    want_np = np.random.default_rng(5).random((2, 3)) < p.numpy()
    assert np.array_equal(got_np.numpy(), want_np.astype(np.float64)) and 0 < want_np.sum() < want_np.size


def test_bernoulli_spike_statistics_and_seeding():
    p = torch.tensor([0.0, 0.3, 1.0])
    s = bernoulli_spikes(p, torch.Generator().manual_seed(0), n_steps=20_000)
    assert s.shape == (20_000, 3) and s.dtype == torch.float32
    assert set(s.unique().tolist()) <= {0.0, 1.0}
    assert s[:, 0].sum() == 0 and bool(s[:, 2].all())
    assert float(s[:, 1].mean()) == pytest.approx(0.3, abs=0.01)  # 3 binomial std is 0.0097
    # successive steps are independent: P(s_t = s_{t+1} = 1) = p²
    both = (s[1:, 1] * s[:-1, 1]).mean()
    assert float(both) == pytest.approx(0.09, abs=0.008)
    assert torch.equal(s, bernoulli_spikes(p, torch.Generator().manual_seed(0), n_steps=20_000))
    assert not torch.equal(s, bernoulli_spikes(p, torch.Generator().manual_seed(1), n_steps=20_000))


# ------------------------------------------------------------------------------------------------ population coding


def test_gaussian_fields_by_hand():
    u = _t([[0.25, 0.9]])
    got = gaussian_fields(u, 3)  # centres 0, 0.5, 1; σ = 1/3
    want = [[math.exp(-((v - c) ** 2) / (2.0 / 9.0)) for v in (0.25, 0.9) for c in (0.0, 0.5, 1.0)]]
    torch.testing.assert_close(got, _t(want), rtol=1e-14, atol=0.0)  # channel c·M + m
    got = gaussian_fields(_t([0.3]), 5, low=-1.0, high=1.0, width=0.5)  # centres -1, -0.5, 0, 0.5, 1
    want = [math.exp(-((0.3 - c) ** 2) / 0.5) for c in (-1.0, -0.5, 0.0, 0.5, 1.0)]
    torch.testing.assert_close(got, _t(want), rtol=1e-14, atol=0.0)


def test_icons_smnist_rbf_is_the_normalised_pdf_with_peak_31():
    # srnn.md §4.5: N = 80 Gaussians, μ_i = (i − 1)/78 for i = 0..79, σ = 1/78, value = N(p; μ_i, σ)
    pixels = _t([[0.0], [0.5], [1.0]])
    got = gaussian_fields(pixels, 80, low=-1 / 78, high=1.0, width=1 / 78, normalize=True)
    sigma = 1 / 78
    want = [
        [math.exp(-((p - (i - 1) / 78) ** 2) / (2 * sigma**2)) / (math.sqrt(2 * math.pi) * sigma) for i in range(80)]
        for p in (0.0, 0.5, 1.0)
    ]
    assert got.shape == (3, 80)
    torch.testing.assert_close(got, _t(want), rtol=1e-9, atol=1e-12)
    assert float(got[2, 79]) == pytest.approx(78 / math.sqrt(2 * math.pi)) == pytest.approx(31.1175, abs=1e-4)
    assert float(got[0, 1]) == float(got[2, 79])  # pixel 0 sits on μ_1 = 0


def test_population_spikes_lnp_code_by_hand():
    # lnp.md §1.5: M = 20, σ = 1/20, r_max = 200 Hz, dt = 1 ms: p_m = 0.2 exp(−(u − m/19)² / (2/400))
    u = _t([[0.5]])
    p = _t([[0.2 * math.exp(-((0.5 - m / 19) ** 2) / (2 / 400)) for m in range(20)]])
    got = population_spikes(u, 20, torch.Generator().manual_seed(3), max_rate=200.0, dt=1e-3, n_steps=30)
    draws = torch.rand((1, 30, 20), generator=torch.Generator().manual_seed(3), dtype=F64)
    want = (draws < p[:, None, :]).to(F64)
    assert got.shape == (1, 30, 20) and torch.equal(got, want) and want.sum() > 0
    # statistics: u on a centre fires at r_max·dt = 0.2, a field 5σ away almost never
    rates = population_spikes(_t([0.0]), 20, torch.Generator().manual_seed(4), max_rate=200.0, dt=1e-3, n_steps=20_000)
    assert float(rates[:, 0].mean()) == pytest.approx(0.2, abs=0.01) and float(rates[:, 5:].sum()) == 0.0


# ------------------------------------------------------------------------------------------------ level crossing

# Two channels of exactly representable values, δ = 0.25: a jumpy one and a slow drift of δ/2 per step.
_JUMPY = [0.0, 0.5, 0.5, 2.0, 1.75, 1.0, 1.0, 0.5]
_DRIFT = [0.125 * t for t in range(8)]


def _spike_steps(out: torch.Tensor) -> list[list[int]]:
    return [torch.nonzero(out[:, k]).flatten().tolist() for k in range(out.shape[1])]


def test_level_crossing_previous_reference_by_hand():
    signal = _t([_JUMPY, _DRIFT]).T  # (T=8, C=2)
    out = level_crossing(signal, 0.25)
    # jumpy moves: +.5, 0, +1.5, -.25, -.75, 0, -.5 at steps 1..7: one spike per move, even the 6δ jump
    # drift moves by δ/2 every step: never a spike
    assert out.shape == (8, 4) and out.dtype == F64
    assert _spike_steps(out) == [[1, 3], [4, 5, 7], [], []]  # up0, down0, up1, down1


def test_level_crossing_tracking_reference_by_hand():
    out = level_crossing(_t([_JUMPY, _DRIFT]).T, 0.25, reference="tracking")
    # jumpy: r = 0 -> .25 (t1) -> .5 (t2) -> .75 (t3, x=2 is 5δ above: one spike) -> 1 (t4) ; t5, t6: x = r;
    #        t7: x = .5 is 2δ below r = 1 -> down, r = .75
    # drift: spikes each time it has travelled δ from the reference: t = 2, 4, 6
    assert _spike_steps(out) == [[1, 2, 3, 4], [7], [2, 4, 6], []]


def test_level_crossing_batches_and_sign_symmetry():
    signal = _t([_JUMPY, _DRIFT]).T
    for reference in ("previous", "tracking"):
        out = level_crossing(torch.stack([signal, -signal]), 0.25, reference=reference)  # (2, T, C)
        assert torch.equal(out[0], level_crossing(signal, 0.25, reference=reference))
        assert torch.equal(out[1], out[0][:, [1, 0, 3, 2]])  # a negated signal swaps up and down


# ------------------------------------------------------------------------------------------------ threshold coding


def test_threshold_and_ternary_by_hand():
    x = _t([-0.2, -0.05, -0.01, 0.0, 0.03, 0.05, 0.3])
    # x̂ = H(x − θ) − H(−θ − x), strict H: |x| = θ gives 0
    assert ternary_spikes(x, 0.05).tolist() == [-1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    assert threshold_spikes(x, 0.05).tolist() == [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    assert threshold_spikes(x, -0.01).tolist() == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]
    assert ternary_spikes(x, 0.0).tolist() == [-1.0, -1.0, -1.0, 0.0, 1.0, 1.0, 1.0]
    # one threshold per channel, broadcast over steps
    steps = _t([[0.1, 0.1], [-0.3, -0.3]])
    assert ternary_spikes(steps, _t([0.05, 0.2])).tolist() == [[1.0, 0.0], [-1.0, -1.0]]


def test_ternary_surrogate_gradient_by_hand():
    # Triangle: ψ(v) = max(0, 1 − |v|/w), w = 0.2, γ = 0.5; ∂x̂/∂x = γψ(x − θ) + γψ(−θ − x),
    # ∂x̂/∂θ = −γψ(x − θ) + γψ(−θ − x)
    x = _t([-0.1, 0.02, 0.3]).requires_grad_()
    theta = _t(0.05).requires_grad_()
    out = ternary_spikes(x, theta, surrogate=Triangle(width=0.2, scale=0.5))
    assert out.tolist() == [-1.0, 0.0, 1.0]
    out.sum().backward()
    # x = -0.1: ψ(-0.15) = 0.25, ψ(0.05) = 0.75; x = 0.02: ψ(-0.03) = 0.85, ψ(-0.07) = 0.65; x = 0.3: 0 and 0
    torch.testing.assert_close(x.grad, _t([0.5, 0.75, 0.0]))
    torch.testing.assert_close(theta.grad, _t(0.5 * (-0.25 + 0.75) + 0.5 * (-0.85 + 0.65)))  # 0.15
    plain = ternary_spikes(x.detach(), 0.05)
    assert not plain.requires_grad and plain.tolist() == out.tolist()


# ------------------------------------------------------------------------------------------------ validation


def test_bad_values_are_named_with_their_index():
    with pytest.raises(ConfigError) as err:
        rate_probability(_t([[0.2, 0.4], [1.5, -0.1]]))
    assert err.value.field == "u" and err.value.value == 1.5
    assert "2 entries are not" in str(err.value) and "index (1, 0)" in str(err.value)
    with pytest.raises(ConfigError) as err:
        level_crossing(_t([[0.0], [math.inf], [1.0]]), 0.1)
    assert err.value.field == "signal" and err.value.value == math.inf and "index (1, 0)" in str(err.value)
    with pytest.raises(ConfigError) as err:
        gaussian_fields(_t([0.1, math.nan]), 4)
    assert err.value.field == "u" and math.isnan(err.value.value)


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: rate_probability([0.5]), "u"),
        (lambda: rate_probability(torch.tensor([1, 0])), "u"),
        (lambda: rate_probability(_t(0.5)), "u"),
        (lambda: rate_probability(_t([0.5]), max_rate=0.0), "max_rate"),
        (lambda: rate_probability(_t([0.5]), dt=math.inf), "dt"),
        (lambda: rate_spikes(_t([0.5]), 7), "generator"),
        (lambda: rate_spikes(_t([0.5]), _gen(), n_steps=0), "n_steps"),
        (lambda: bernoulli_spikes(_t([0.5, 1.01]), _gen()), "p"),
        (lambda: gaussian_fields(_t([0.5]), 1), "n_fields"),
        (lambda: gaussian_fields(_t([0.5]), 2.0), "n_fields"),
        (lambda: gaussian_fields(_t([0.5]), 4, low=1.0, high=1.0), "high"),
        (lambda: gaussian_fields(_t([0.5]), 4, width=0.0), "width"),
        (lambda: gaussian_fields(_t([0.5]), 4, normalize=1), "normalize"),
        (lambda: population_spikes(_t([0.5]), 4, _gen(), max_rate=-1.0), "max_rate"),
        (lambda: level_crossing(_t([0.0, 1.0]), 0.1), "signal"),
        (lambda: level_crossing(_t([[0.0], [1.0]]), 0.0), "delta"),
        (lambda: level_crossing(_t([[0.0], [1.0]]), -0.5), "delta"),
        (lambda: level_crossing(_t([[0.0], [1.0]]), 0.1, reference="last"), "reference"),
        (lambda: threshold_spikes(_t([0.5]), math.nan), "threshold"),
        (lambda: threshold_spikes(_t([[0.5, 0.1]]), _t([0.1, 0.2, 0.3])), "threshold"),
        (lambda: ternary_spikes(_t([0.5]), -0.1), "threshold"),
        (lambda: ternary_spikes(_t([0.5]), _t([-0.1])), "threshold"),
        (lambda: ternary_spikes(_t([0.5]), 0.1, surrogate="mg"), "surrogate"),
        (lambda: ternary_spikes(_t([[math.nan]]), 0.1), "x"),
    ],
)
def test_bad_arguments_raise_config_error_naming_the_field(call, field):
    with pytest.raises(ConfigError) as err:
        call()
    assert err.value.field == field
