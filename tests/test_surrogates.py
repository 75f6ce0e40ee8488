"""Known-answer tests for hrsnn.surrogates."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from scipy import integrate

from hrsnn.errors import ConfigError
from hrsnn.surrogates import (
    SURROGATES,
    ArcTan,
    FastSigmoid,
    Gaussian,
    MultiGaussian,
    SlayerExponential,
    Surrogate,
    Triangle,
    make_surrogate,
    spike,
    surrogate_to_dict,
)

ALL = (MultiGaussian(), Gaussian(), Triangle(), SlayerExponential(), FastSigmoid(), ArcTan())


def _pdf(x: float, mu: float, sd: float) -> float:
    return math.exp(-((x - mu) ** 2) / (2 * sd * sd)) / (math.sqrt(2 * math.pi) * sd)


def _psi(sg: Surrogate, x: float) -> float:
    return float(sg.shape(torch.tensor(x, dtype=torch.float64)))


# ----------------------------------------------------------------------------------- multi-Gaussian


def test_multi_gaussian_peak_by_hand():
    sg = MultiGaussian()
    # (1+h) N(0;0,σ) − 2 h N(0;σ,sσ) with σ=0.5, h=0.15, s=6
    by_hand = 1.15 / (math.sqrt(2 * math.pi) * 0.5) - 2 * 0.15 * math.exp(-(0.5**2) / (2 * 3.0**2)) / (
        math.sqrt(2 * math.pi) * 3.0
    )
    assert _psi(sg, 0.0) == pytest.approx(by_hand, abs=1e-12)
    assert _psi(sg, 0.0) == pytest.approx(0.8782, abs=1e-4)
    assert float(sg.derivative(torch.tensor(0.0, dtype=torch.float64))) == pytest.approx(0.5 * by_hand, abs=1e-12)


@pytest.mark.parametrize("x", [-2.5, -0.7, 0.3, 1.1, 4.0])
def test_multi_gaussian_formula_by_hand(x):
    sg = MultiGaussian(sigma=0.3, h=0.4, s=2.0, scale=0.7)
    side = 2.0 * 0.3
    expected = 1.4 * _pdf(x, 0, 0.3) - 0.4 * _pdf(x, 0.3, side) - 0.4 * _pdf(x, -0.3, side)
    assert _psi(sg, x) == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert float(sg.derivative(torch.tensor(x, dtype=torch.float64))) == pytest.approx(0.7 * expected, rel=1e-12)


def test_multi_gaussian_zero_crossing_by_bisection():
    sg = MultiGaussian()
    lo, hi = 0.5, 1.86
    assert _psi(sg, lo) > 0 > _psi(sg, hi)
    while hi - lo > 1e-6:
        mid = 0.5 * (lo + hi)
        if _psi(sg, mid) > 0:
            lo = mid
        else:
            hi = mid
    assert lo == pytest.approx(1.2722, abs=1e-3)
    assert _psi(sg, -lo) == pytest.approx(_psi(sg, lo), abs=1e-15)  # symmetric


def test_multi_gaussian_minimum():
    sg = MultiGaussian()
    v = torch.linspace(0.0, 6.0, 60001, dtype=torch.float64)
    psi = sg.shape(v)
    i = int(torch.argmin(psi))
    assert float(psi[i]) == pytest.approx(-0.0317, abs=1e-4)
    assert float(v[i]) == pytest.approx(1.86, abs=0.01)


def test_multi_gaussian_integral_is_one_minus_h():
    value, _ = integrate.quad(lambda x: _psi(MultiGaussian(), x), -math.inf, math.inf, limit=200)
    assert value == pytest.approx(0.85, abs=1e-4)


# ---------------------------------------------------------------------------------------- others


@pytest.mark.parametrize(
    ("sg", "closed_form"),
    [
        (Gaussian(sigma=0.7), 1.0),
        (Triangle(width=1.5), 1.5),
        (SlayerExponential(alpha=5.0), 2.0 / 5.0),
        (FastSigmoid(slope=10.0), 2.0 / 10.0),
        (ArcTan(alpha=2.0), 1.0),
        (ArcTan(alpha=0.5), 1.0),
    ],
)
def test_integral_matches_closed_form(sg, closed_form):
    left, _ = integrate.quad(lambda x: _psi(sg, x), -math.inf, 0.0, limit=400, epsabs=1e-10)
    right, _ = integrate.quad(lambda x: _psi(sg, x), 0.0, math.inf, limit=400, epsabs=1e-10)
    assert left + right == pytest.approx(closed_form, abs=1e-4)


@pytest.mark.parametrize("x", [-1.3, -0.25, 0.0, 0.4, 2.0])
def test_simple_shapes_by_hand(x):
    assert _psi(Gaussian(sigma=0.5), x) == pytest.approx(_pdf(x, 0, 0.5), rel=1e-12)
    assert _psi(Triangle(width=1.5), x) == pytest.approx(max(0.0, 1 - abs(x) / 1.5), abs=1e-15)
    assert _psi(SlayerExponential(alpha=5.0), x) == pytest.approx(math.exp(-5 * abs(x)), rel=1e-12)
    assert _psi(FastSigmoid(slope=10.0), x) == pytest.approx(1 / (1 + 10 * abs(x)) ** 2, rel=1e-12)
    assert _psi(ArcTan(alpha=2.0), x) == pytest.approx(1 / (1 + (math.pi * x) ** 2), rel=1e-12)


def _by_hand(name: str, x: float) -> float:
    """ψ(x) of each surrogate at its default hyper-parameters, written out from the formulas."""
    if name == "multi_gaussian":
        return 1.15 * _pdf(x, 0, 0.5) - 0.15 * (_pdf(x, 0.5, 3.0) + _pdf(x, -0.5, 3.0))
    if name == "gaussian":
        return _pdf(x, 0, 0.5)
    if name == "triangle":
        return max(0.0, 1 - abs(x))
    if name == "slayer":
        return math.exp(-5 * abs(x))
    if name == "fast_sigmoid":
        return 1 / (1 + 10 * abs(x)) ** 2
    return 1 / (1 + (math.pi * x) ** 2)  # arctan, α = 2


@pytest.mark.parametrize("name", sorted(SURROGATES))
@pytest.mark.parametrize("scale", [0.5, 0.37, 2.5])
def test_derivative_is_scale_times_shape(name, scale):
    """derivative(v) = scale · ψ(v) with ψ from the written-out formula, for default and other scales."""
    sg = make_surrogate(name, scale=scale)
    xs = [-3.0, -1.2, -0.45, -0.1, 0.0, 0.05, 0.3, 0.9, 2.0]
    got = sg.derivative(torch.tensor(xs, dtype=torch.float64)).tolist()
    assert got == pytest.approx([scale * _by_hand(name, x) for x in xs], rel=1e-12, abs=1e-15)


def test_default_scales():
    assert [s.scale for s in ALL] == [0.5, 0.5, 0.5, 0.5, 1.0, 1.0]


# ------------------------------------------------------------------------------------ spike()


def test_forward_is_strict_heaviside():
    v = torch.tensor([-1.0, -1e-30, 0.0, -0.0, 1e-30, 2.0])
    assert spike(v, MultiGaussian()).tolist() == [0.0, 0.0, 0.0, 0.0, 1.0, 1.0]


@pytest.mark.parametrize("sg", ALL, ids=lambda s: s.name)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_autograd_gradient_equals_derivative(sg, dtype):
    v = torch.linspace(-3, 3, 37, dtype=dtype).requires_grad_()
    out = spike(v, sg)
    assert out.dtype == dtype
    out.sum().backward()
    assert v.grad is not None
    assert v.grad.dtype == dtype
    assert torch.equal(v.grad, sg.derivative(v.detach()))


def test_gradient_chains_with_upstream():
    sg = Gaussian()
    v = torch.tensor([0.1, -0.2], requires_grad=True)
    (spike(v, sg) * torch.tensor([3.0, -2.0])).sum().backward()
    assert v.grad is not None
    expected = torch.tensor([3.0 * 0.5 * _pdf(0.1, 0, 0.5), -2.0 * 0.5 * _pdf(-0.2, 0, 0.5)])
    torch.testing.assert_close(v.grad, expected)


def test_jacrev_is_diagonal_derivative():
    sg = MultiGaussian()
    v = torch.linspace(-2.0, 2.0, 9, dtype=torch.float64)
    jac = torch.func.jacrev(lambda x: spike(x, sg))(v)
    assert torch.equal(jac, torch.diag(sg.derivative(v)))


# forward-mode AD loads torch's own TorchScript decompositions once, which warn about torch.jit.script
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_jacfwd_and_vmap():
    sg = Triangle()
    v = torch.linspace(-2.0, 2.0, 7)
    assert torch.equal(torch.func.jacfwd(lambda x: spike(x, sg))(v), torch.diag(sg.derivative(v)))
    batch = torch.tensor([[-1.0, 0.5], [0.0, 2.0]])
    assert torch.func.vmap(lambda x: spike(x, sg))(batch).tolist() == [[0.0, 1.0], [0.0, 1.0]]
    per_row = torch.func.vmap(torch.func.grad(lambda x: spike(x, sg).sum()))(batch)
    assert torch.equal(per_row, sg.derivative(batch))


def test_spike_rejects_integer_input():
    with pytest.raises(ConfigError) as err:
        spike(torch.tensor([1, 2]), Gaussian())
    assert err.value.field == "v"


# --------------------------------------------------------------------------------------- registry


def test_registry_names():
    assert dict(SURROGATES) == {
        "multi_gaussian": MultiGaussian,
        "gaussian": Gaussian,
        "triangle": Triangle,
        "slayer": SlayerExponential,
        "fast_sigmoid": FastSigmoid,
        "arctan": ArcTan,
    }
    with pytest.raises(TypeError):
        SURROGATES["x"] = Gaussian  # type: ignore[index]


@pytest.mark.parametrize("sg", ALL, ids=lambda s: s.name)
def test_dict_round_trip(sg):
    d = surrogate_to_dict(sg)
    assert d["name"] == sg.name
    assert make_surrogate(**d) == sg
    assert isinstance(sg, Surrogate)


def test_make_surrogate_params_and_defaults():
    sg = make_surrogate("multi_gaussian", sigma=0.3)
    assert sg == MultiGaussian(sigma=0.3, h=0.15, s=6.0, scale=0.5)
    assert surrogate_to_dict(sg) == {
        "name": "multi_gaussian",
        "sigma": 0.3,
        "h": 0.15,
        "s": 6.0,
        "scale": 0.5,
    }
    assert make_surrogate("slayer", alpha=2) == SlayerExponential(alpha=2.0)
    assert isinstance(make_surrogate("slayer", alpha=2).alpha, float)


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Gaussian().sigma = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("call", "field", "value"),
    [
        (lambda: make_surrogate("gauss"), "surrogate.name", "gauss"),
        (lambda: make_surrogate("gaussian", width=1.0), "surrogate.width", 1.0),
        (lambda: make_surrogate("gaussian", sigma=0.0), "surrogate.sigma", 0.0),
        (lambda: make_surrogate("multi_gaussian", h=-0.1), "surrogate.h", -0.1),
        (lambda: MultiGaussian(s=-1.0), "surrogate.s", -1.0),
        (lambda: Triangle(width=math.inf), "surrogate.width", math.inf),
        (lambda: FastSigmoid(slope="10"), "surrogate.slope", "10"),
        (lambda: ArcTan(scale=True), "surrogate.scale", True),
        (lambda: SlayerExponential(alpha=-5.0), "surrogate.alpha", -5.0),
    ],
)
def test_errors_name_the_field(call, field, value):
    with pytest.raises(ConfigError) as err:
        call()
    assert err.value.field == field
    assert err.value.value == value
    assert field in str(err.value)


def test_unknown_name_lists_choices():
    with pytest.raises(ConfigError, match="multi_gaussian"):
        make_surrogate("nope")


def test_to_dict_rejects_unregistered():
    @dataclasses.dataclass(frozen=True)
    class Fake:
        name = "gaussian"
        scale: float = 1.0

    with pytest.raises(ConfigError) as err:
        surrogate_to_dict(Fake())  # type: ignore[arg-type]
    assert err.value.field == "surrogate"


@pytest.mark.parametrize("name", sorted(SURROGATES))
def test_in_place_derivative_equals_derivative(name):
    """``derivative_`` (the fused kernels' in-place form, the multi-Gaussian's side lobes in closed form) equals
    ``derivative`` to rounding over the whole range, including far tails, and overwrites its input."""
    sg = make_surrogate(name)
    v = torch.cat([torch.linspace(-8.0, 8.0, 4001, dtype=torch.float64), torch.tensor([0.0, 1e-300, -50.0, 300.0])])
    expected = sg.derivative(v)
    work = torch.empty_like(v)
    got = v.clone()
    out = sg.derivative_(got, work)
    assert out.data_ptr() == got.data_ptr()
    torch.testing.assert_close(got, expected, rtol=1e-13, atol=1e-16)  # ψ crosses 0 near |v| = 1.27
