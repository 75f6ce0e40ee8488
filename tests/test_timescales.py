"""Known-answer tests for hrsnn.timescales."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from hrsnn.errors import ConfigError
from hrsnn.timescales import (
    TIMESCALE_SAMPLERS,
    Clustered,
    Constant,
    Gamma,
    LogNormal,
    LogUniform,
    Normal,
    TimescaleSampler,
    Uniform,
    sampler_from_dict,
    sampler_to_dict,
)

SAMPLERS = (
    Constant(7.0),
    Normal(20.0, 5.0),
    Gamma(3.0, 10.0),
    Gamma(0.5, 2.0, floor=1.0),
    LogNormal(10.0, 0.5),
    Uniform(2.0, 30.0),
    LogUniform(1.0, 1000.0),
    Clustered((Constant(5.0), Normal(200.0, 50.0), LogUniform(1.0, 10.0)), (0.2, 0.5, 0.3)),
)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _draw(sampler: TimescaleSampler, n: int, seed: int = 0) -> torch.Tensor:
    return sampler.sample(n, _gen(seed)).double()


# --------------------------------------------------------------------------------- common contract


@pytest.mark.parametrize("sampler", SAMPLERS, ids=repr)
def test_contract_and_reproducibility(sampler):
    a = sampler.sample(500, _gen(1))
    assert a.dtype == torch.float32
    assert a.shape == (500,)
    assert bool(torch.all(a > 0)) and bool(torch.all(torch.isfinite(a)))
    assert torch.equal(a, sampler.sample(500, _gen(1)))
    assert isinstance(sampler, TimescaleSampler)
    if not isinstance(sampler, Constant):
        assert not torch.equal(a, sampler.sample(500, _gen(2)))


def test_zero_neurons():
    assert Normal(20.0, 5.0).sample(0, _gen(0)).shape == (0,)
    assert Clustered((Constant(1.0), Constant(2.0))).sample(0, _gen(0)).shape == (0,)


def test_constant_exact_and_does_not_advance_generator():
    g = _gen(3)
    assert Constant(5).sample(4, g).tolist() == [5.0, 5.0, 5.0, 5.0]
    assert torch.equal(torch.rand(3, generator=g), torch.rand(3, generator=_gen(3)))


# ------------------------------------------------------------------------------------------- normal


def test_normal_matches_plain_normal_init_when_nothing_is_truncated():
    tau = Normal(20.0, 5.0).sample(256, _gen(0))
    plain = torch.empty(256).normal_(20.0, 5.0, generator=_gen(0))
    assert float(plain.min()) > 1.0  # nothing to redraw for this seed
    assert torch.equal(tau, plain)


def test_normal_far_from_floor_moments():
    x = _draw(Normal(50.0, 5.0, floor=1.0), 20000)
    assert float(x.mean()) == pytest.approx(50.0, abs=0.15)
    assert float(x.std()) == pytest.approx(5.0, rel=0.03)


def test_normal_truncation_is_exact_not_clamping():
    # mean 3, std 1, floor 2: a = -1, λ = φ(a)/(1-Φ(a)); truncated mean μ + σλ, var σ²(1 + aλ − λ²)
    a = -1.0
    phi = math.exp(-a * a / 2) / math.sqrt(2 * math.pi)
    tail = 0.5 * math.erfc(a / math.sqrt(2))
    lam = phi / tail
    x = _draw(Normal(3.0, 1.0, floor=2.0), 20000)
    assert float(x.min()) >= 2.0
    assert float((x == 2.0).sum()) == 0  # clamping would pile ~16 % of the mass on the floor
    assert float(x.mean()) == pytest.approx(3.0 + lam, abs=0.02)  # 3.2876; clamping gives 3.083
    assert float(x.std()) == pytest.approx(math.sqrt(1 + a * lam - lam * lam), abs=0.02)
    assert Normal(3.0, 1.0, floor=2.0).acceptance == pytest.approx(tail, rel=1e-12)


def test_normal_low_acceptance_still_exact():
    # floor 2.5 std above the mean: acceptance ≈ 0.0062, needs many redraw rounds
    x = _draw(Normal(0.0, 2.0, floor=5.0), 5000)
    a = 2.5
    lam = math.exp(-a * a / 2) / math.sqrt(2 * math.pi) / (0.5 * math.erfc(a / math.sqrt(2)))
    assert float(x.min()) >= 5.0
    assert float(x.mean()) == pytest.approx(2.0 * lam, abs=0.03)


# -------------------------------------------------------------------------------------------- gamma


@pytest.mark.parametrize(("shape", "scale", "floor"), [(3.0, 10.0, 0.0), (0.5, 4.0, 2.0), (20.0, 1.5, 1.0)])
def test_gamma_mean_and_variance(shape, scale, floor):
    x = _draw(Gamma(shape, scale, floor=floor), 100000)
    assert float(x.mean()) == pytest.approx(floor + shape * scale, rel=0.03)
    assert float(x.var()) == pytest.approx(shape * scale**2, rel=0.03)
    assert float(x.min()) >= floor


# ---------------------------------------------------------------------------------------- lognormal


def test_lognormal_median_and_log_moments():
    x = _draw(LogNormal(12.0, 0.4), 20000)
    assert float(x.median()) == pytest.approx(12.0, rel=0.02)
    assert float(x.log().mean()) == pytest.approx(math.log(12.0), abs=0.01)
    assert float(x.log().std()) == pytest.approx(0.4, rel=0.03)


# ------------------------------------------------------------------------------------------ uniform


def test_uniform_bounds_and_mean():
    x = _draw(Uniform(2.0, 30.0), 20000)
    assert 2.0 <= float(x.min()) < 2.1
    assert 29.9 < float(x.max()) <= 30.0
    assert float(x.mean()) == pytest.approx(16.0, abs=0.2)


def test_loguniform_bounds_and_log_mean():
    x = _draw(LogUniform(1.0, 1000.0), 20000)
    assert 1.0 <= float(x.min()) < 1.01
    assert 990.0 < float(x.max()) <= 1000.0
    assert float(x.log().mean()) == pytest.approx(0.5 * math.log(1000.0), abs=0.05)
    # equal mass per decade
    assert float((x < 10).double().mean()) == pytest.approx(1 / 3, abs=0.015)


# ---------------------------------------------------------------------------------------- clustered


@pytest.mark.parametrize(
    ("weights", "n", "sizes"),
    [
        (None, 10, (4, 3, 3)),  # quotas 3.33 each, ties to lower index
        ((0.5, 0.3, 0.2), 7, (4, 2, 1)),  # quotas 3.5, 2.1, 1.4
        ((2.0, 1.0, 1.0), 5, (3, 1, 1)),  # quotas 2.5, 1.25, 1.25
        ((1.0, 1.0, 6.0), 9, (1, 1, 7)),  # quotas 1.125, 1.125, 6.75
        ((1.0, 2.0, 3.0), 0, (0, 0, 0)),
        ((1.0, 2.0, 3.0), 600, (100, 200, 300)),
    ],
)
def test_cluster_sizes_largest_remainder(weights, n, sizes):
    c = Clustered((Constant(1.0), Constant(2.0), Constant(3.0)), weights)
    assert c.cluster_sizes(n) == sizes
    labels = c.labels(n)
    assert labels.dtype == torch.long
    assert labels.tolist() == [i for i, m in enumerate(sizes) for _ in range(m)]


def test_clustered_per_cluster_statistics():
    c = Clustered((Constant(5.0), Normal(200.0, 10.0), Uniform(20.0, 40.0)), (1.0, 2.0, 1.0))
    n = 20000
    x = c.sample(n, _gen(4)).double()
    labels = c.labels(n)
    assert c.cluster_sizes(n) == (5000, 10000, 5000)
    assert torch.all(x[labels == 0] == 5.0)
    assert float(x[labels == 1].mean()) == pytest.approx(200.0, abs=0.5)
    assert float(x[labels == 1].std()) == pytest.approx(10.0, rel=0.03)
    third = x[labels == 2]
    assert float(third.min()) >= 20.0 and float(third.max()) <= 40.0
    assert float(third.mean()) == pytest.approx(30.0, abs=0.3)


def test_clustered_draws_components_in_order_from_one_generator():
    comps = (Normal(20.0, 5.0), LogNormal(10.0, 0.5))
    c = Clustered(comps, (3.0, 1.0))
    g = _gen(9)
    expected = torch.cat([comps[0].sample(30, g), comps[1].sample(10, g)])
    assert torch.equal(c.sample(40, _gen(9)), expected)


def test_clustered_normalises_sequences_to_tuples():
    c = Clustered([Constant(1.0), Constant(2.0)], [1, 3])  # type: ignore[arg-type]
    assert c.components == (Constant(1.0), Constant(2.0))
    assert c.weights == (1.0, 3.0)
    assert hash(c) == hash(Clustered((Constant(1.0), Constant(2.0)), (1.0, 3.0)))


# ----------------------------------------------------------------------------------- config round trip


def test_registry():
    assert dict(TIMESCALE_SAMPLERS) == {
        "constant": Constant,
        "normal": Normal,
        "gamma": Gamma,
        "lognormal": LogNormal,
        "uniform": Uniform,
        "loguniform": LogUniform,
        "clustered": Clustered,
    }
    with pytest.raises(TypeError):
        TIMESCALE_SAMPLERS["x"] = Constant  # type: ignore[index]


@pytest.mark.parametrize("sampler", [*SAMPLERS, Clustered((Constant(1.0), Gamma(2.0, 3.0)))], ids=repr)
def test_dict_round_trip(sampler):
    d = sampler_to_dict(sampler)
    assert sampler_from_dict(d) == sampler


def test_from_dict_examples():
    assert sampler_from_dict({"dist": "gamma", "shape": 3, "scale": 10.0}) == Gamma(3.0, 10.0, 0.0)
    assert sampler_from_dict({"dist": "normal", "mean": 20, "std": 5}) == Normal(20.0, 5.0, floor=1.0)
    d = {
        "dist": "clustered",
        "components": [{"dist": "constant", "value": 5}, {"dist": "normal", "mean": 200, "std": 50}],
        "weights": [0.5, 0.5],
    }
    assert sampler_from_dict(d) == Clustered((Constant(5.0), Normal(200.0, 50.0)), (0.5, 0.5))
    assert sampler_to_dict(sampler_from_dict(d)) == {
        "dist": "clustered",
        "components": [
            {"dist": "constant", "value": 5.0},
            {"dist": "normal", "mean": 200.0, "std": 50.0, "floor": 1.0},
        ],
        "weights": [0.5, 0.5],
    }


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Constant(1.0).value = 2.0  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------- errors

_GOOD = {"dist": "normal", "mean": 1.0, "std": 1.0}


@pytest.mark.parametrize(
    ("d", "field", "value"),
    [
        ([1, 2], "tau", [1, 2]),
        ({"mean": 1.0}, "tau.dist", None),
        ({"dist": "poisson"}, "tau.dist", "poisson"),
        ({"dist": "gamma", "shape": 1.0}, "tau.scale", None),
        ({"dist": "gamma", "shape": 1.0, "scale": 1.0, "shap": 2.0}, "tau.shap", 2.0),
        ({"dist": "gamma", "shape": -1.0, "scale": 1.0}, "tau.shape", -1.0),
        ({"dist": "gamma", "shape": 1.0, "scale": 1.0, "floor": -0.5}, "tau.floor", -0.5),
        ({"dist": "constant", "value": "5"}, "tau.value", "5"),
        ({"dist": "constant", "value": math.nan}, "tau.value", math.nan),
        ({"dist": "normal", "mean": 1.0, "std": 0.0}, "tau.std", 0.0),
        ({"dist": "normal", "mean": 1.0, "std": 1.0, "floor": 0.0}, "tau.floor", 0.0),
        ({"dist": "normal", "mean": 0.0, "std": 1.0, "floor": 4.0}, "tau.floor", 4.0),
        ({"dist": "lognormal", "median": 0.0, "sigma": 1.0}, "tau.median", 0.0),
        ({"dist": "uniform", "low": 5.0, "high": 5.0}, "tau.high", 5.0),
        ({"dist": "loguniform", "low": 0.0, "high": 5.0}, "tau.low", 0.0),
        ({"dist": "clustered", "components": []}, "tau.components", []),
        (
            {"dist": "clustered", "components": [_GOOD, {"dist": "normal", "mean": 1.0, "std": -2.0}]},
            "tau.components[1].std",
            -2.0,
        ),
        ({"dist": "clustered", "components": [_GOOD, {"dist": "x"}]}, "tau.components[1].dist", "x"),
        ({"dist": "clustered", "components": [_GOOD, _GOOD], "weights": [1.0, -1.0]}, "tau.weights[1]", -1.0),
        ({"dist": "clustered", "components": [_GOOD, _GOOD], "weights": [1.0]}, "tau.weights", (1.0,)),
    ],
)
def test_from_dict_errors_name_the_field(d, field, value):
    with pytest.raises(ConfigError) as err:
        sampler_from_dict(d)
    assert err.value.field == field
    if isinstance(value, float) and math.isnan(value):
        assert math.isnan(err.value.value)
    else:
        assert err.value.value == value
    assert str(err.value).startswith(f"{field}=")


def test_custom_field_prefix():
    with pytest.raises(ConfigError) as err:
        sampler_from_dict({"dist": "gamma", "shape": 1.0, "scale": 0.0}, field="model.tau_adp")
    assert err.value.field == "model.tau_adp.scale"


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: Normal(1.0, -1.0), "normal.std"),
        (lambda: Uniform(3.0, 1.0), "uniform.high"),
        (lambda: Clustered(()), "clustered.components"),
        (lambda: Clustered((Constant(1.0), "x")), "clustered.components[1]"),  # type: ignore[arg-type]
        (lambda: Clustered((Constant(1.0),), (0.0,)), "clustered.weights[0]"),
        (lambda: Constant(1.0).sample(-1, _gen(0)), "n"),
        (lambda: Constant(1.0).sample(2.0, _gen(0)), "n"),  # type: ignore[arg-type]
        (lambda: Constant(1.0).sample(2, 0), "generator"),  # type: ignore[arg-type]
        (lambda: Clustered((Constant(1.0),)).cluster_sizes(-3), "n"),
        (lambda: sampler_to_dict(object()), "sampler"),  # type: ignore[arg-type]
    ],
)
def test_direct_errors_name_the_field(call, field):
    with pytest.raises(ConfigError) as err:
        call()
    assert err.value.field == field
