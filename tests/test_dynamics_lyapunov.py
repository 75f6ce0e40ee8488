"""Benettin/QR engine: known answers for linear maps and ODEs, Lorenz-63, logistic and rate-RNN maps, FTLE, D_KY."""

from __future__ import annotations

import json
import math

import pytest
import torch

from hrsnn.dynamics.lyapunov import (
    FTLEConfig,
    LyapunovConfig,
    MapSystem,
    kaplan_yorke_dimension,
    lyapunov_spectrum,
    node_exponents_by_index,
    node_ftle,
    ode_system,
)
from hrsnn.errors import ConfigError

F64 = torch.float64

# torch's forward-mode AD loads its decompositions with torch.jit.script the first time; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _matrix_with_eigenvalues(mu: torch.Tensor, seed: int = 0) -> torch.Tensor:
    v = torch.randn(mu.numel(), mu.numel(), generator=_gen(seed), dtype=F64)
    return v @ torch.diag(mu) @ torch.linalg.inv(v)


# ---------------------------------------------------------------------------------------- linear maps


@pytest.mark.parametrize("tangent", ["jacobian", "jvp"])
def test_linear_map_full_spectrum_is_log_moduli_of_eigenvalues(tangent):
    # x_{t+1} = A x_t with A = V diag(μ) V⁻¹: λ_k = log|μ_k| sorted, to 1e-6 (after alignment the QR is exact).
    mu = torch.tensor([1.5, -0.9, 0.6, 0.3, -0.1], dtype=F64)
    a = _matrix_with_eigenvalues(mu)
    system = MapSystem(lambda x: a @ x, 5, tangent=tangent)
    x0 = torch.randn(3, 5, generator=_gen(1), dtype=F64)
    result = lyapunov_spectrum(system, x0, LyapunovConfig(n_steps=300, transient=0, align=150, n_ons=3))
    expected = mu.abs().log().sort(descending=True).values
    assert result.exponents.shape == (3, 5)
    assert torch.allclose(result.exponents, expected.expand(3, 5), atol=1e-6, rtol=0)
    assert torch.allclose(result.std, torch.zeros(5, dtype=F64), atol=1e-6)


def test_linear_map_top_m_and_batched_step():
    mu = torch.tensor([2.0, 1.2, -0.7, 0.2], dtype=F64)
    a = _matrix_with_eigenvalues(mu, seed=3)
    system = MapSystem(lambda x: x @ a.T, 4, batched=True)
    result = lyapunov_spectrum(system, torch.ones(4, dtype=F64), LyapunovConfig(n_steps=200, align=100, n_exponents=2))
    assert result.exponents.shape == (1, 2)
    assert torch.allclose(result.mean, torch.tensor([math.log(2.0), math.log(1.2)], dtype=F64), atol=1e-6)


def test_normal_rotation_block_gives_equal_exponents():
    # A = r·Rot(θ) ⊕ (0.5): the rotation block scales every vector of its plane by r, so λ1 = λ2 = log r exactly.
    r, theta = 1.3, 0.7
    a = torch.zeros(3, 3, dtype=F64)
    a[:2, :2] = r * torch.tensor([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    a[2, 2] = 0.5
    result = lyapunov_spectrum(MapSystem(lambda x: a @ x, 3), torch.ones(3), LyapunovConfig(n_steps=100, align=100))
    expected = torch.tensor([math.log(r), math.log(r), math.log(0.5)], dtype=F64)
    assert torch.allclose(result.mean, expected, atol=1e-6)


def test_interval_bookkeeping_running_estimate_and_times_by_hand():
    # n_steps = 7, n_ons = 3: QR after steps 3, 6 and 7; dt = 0.5 → times 1.5, 3, 3.5.
    # Diagonal map diag(e, 1): every interval's local exponent is 1/dt = 2 for the first, 0 for the second.
    a = torch.diag(torch.tensor([math.e, 1.0], dtype=F64))
    system = MapSystem(lambda x: a @ x, 2, dt=0.5)
    result = lyapunov_spectrum(system, torch.ones(2), LyapunovConfig(n_steps=7, transient=0, align=60, n_ons=3))
    assert result.interval_steps.tolist() == [3, 3, 1]
    assert torch.allclose(result.times, torch.tensor([1.5, 3.0, 3.5], dtype=F64))
    assert torch.allclose(result.local[0, :, 0], torch.full((3,), 2.0, dtype=F64))
    assert torch.allclose(result.running[0, :, 1], torch.zeros(3, dtype=F64), atol=1e-12)
    assert torch.allclose(result.lambda_max_history, torch.full((1, 3), 2.0, dtype=F64))
    assert result.final_state.shape == (1, 2)


def test_rank_deficient_system_reports_minus_infinity():
    # A projector onto the first coordinate has exponents (log 0.5, −∞); the zero direction gives log|R_22| = −∞.
    a = torch.tensor([[0.5, 1.0], [0.0, 0.0]], dtype=F64)
    result = lyapunov_spectrum(MapSystem(lambda x: a @ x, 2), torch.ones(2), LyapunovConfig(n_steps=20, align=5))
    assert result.mean[0] == pytest.approx(math.log(0.5), abs=1e-12)
    assert result.mean[1] == -math.inf
    summary = result.summary()
    assert summary["exponents"][1] is None and summary["std"] == [None, None]
    json.dumps(summary)


# ---------------------------------------------------------------------------------------- ODEs


@pytest.mark.parametrize(
    ("scheme", "amplification"),
    [
        ("euler", lambda z: 1 + z),
        ("heun", lambda z: 1 + z + z**2 / 2),
        ("rk4", lambda z: 1 + z + z**2 / 2 + z**3 / 6 + z**4 / 24),
    ],
)
def test_linear_ode_exponents_are_log_amplification_factor_over_dt(scheme, amplification):
    # On ẋ = A x each scheme is x ← P(dt A) x with P its stability polynomial: λ_k = log|P(dt μ_k)| / dt exactly.
    mu = torch.tensor([-0.3, -1.0, -2.5], dtype=F64)
    a = _matrix_with_eigenvalues(mu, seed=5)
    dt = 0.1
    system = ode_system(lambda x: a @ x, 3, dt, scheme=scheme)
    result = lyapunov_spectrum(system, torch.ones(3), LyapunovConfig(n_steps=100, transient=0, align=300, n_ons=4))
    expected = torch.log(amplification(dt * mu).abs()) / dt
    assert torch.allclose(result.mean, expected, atol=1e-6)


def _lorenz(x: torch.Tensor) -> torch.Tensor:
    sigma, rho, beta = 10.0, 28.0, 8.0 / 3.0
    x0, x1, x2 = x[..., 0], x[..., 1], x[..., 2]
    return torch.stack([sigma * (x1 - x0), x0 * (rho - x2) - x1, x0 * x1 - beta * x2], dim=-1)


def test_lorenz63_spectrum():
    # σ = 10, ρ = 28, β = 8/3: λ ≈ (0.906, 0, −14.57) and Σλ = −(σ + 1 + β) (the trace of the vector field's
    # Jacobian); 48 initial conditions, RK4 with dt = 0.02 over 44 time units each.
    system = ode_system(_lorenz, 3, 0.02, scheme="rk4", batched=True)
    x0 = torch.randn(48, 3, generator=_gen(2), dtype=F64) * 5 + torch.tensor([0.0, 0.0, 25.0], dtype=F64)
    config = LyapunovConfig(n_steps=2200, transient=250, align=50, n_ons=5, chunk=500)
    result = lyapunov_spectrum(system, x0, config)
    lam = result.mean
    assert lam[0] == pytest.approx(0.906, rel=0.03)
    assert abs(float(lam[1])) < 0.03
    assert lam[2] == pytest.approx(-14.57, rel=0.01)
    assert float(lam.sum()) == pytest.approx(-(10.0 + 1.0 + 8.0 / 3.0), rel=1e-3)
    assert result.kaplan_yorke() == pytest.approx(2.06, abs=0.01)
    assert float(result.sem[0]) < 0.02


# ---------------------------------------------------------------------------------------- nonlinear maps


def test_logistic_map_at_r4_has_exponent_log2():
    system = MapSystem(lambda x: 4.0 * x * (1.0 - x), 1, batched=True)
    x0 = torch.rand(64, 1, generator=_gen(4), dtype=F64) * 0.8 + 0.1
    result = lyapunov_spectrum(system, x0, LyapunovConfig(n_steps=1500, transient=50, align=0, n_ons=1, chunk=500))
    assert result.mean[0] == pytest.approx(math.log(2.0), abs=0.02)


def _rate_rnn(n: int, g: float):
    w = torch.randn(n, n, generator=_gen(7), dtype=F64) / math.sqrt(n)
    return w, MapSystem(lambda x: torch.tanh(g * (x @ w.T)), n, batched=True)


def test_random_rate_rnn_is_stable_below_g1_with_the_linear_answer():
    # For g < 1 the orbit falls onto x = 0 where J = gW, so λ1 = log(g ρ(W)) (up to O(1/T) for a complex pair).
    w, system = _rate_rnn(60, 0.5)
    x0 = torch.randn(2, 60, generator=_gen(8), dtype=F64)
    result = lyapunov_spectrum(system, x0, LyapunovConfig(n_steps=600, transient=150, n_exponents=3))
    rho = float(torch.linalg.eigvals(w).abs().max())
    assert float(result.mean[0]) < 0
    assert result.mean[0] == pytest.approx(math.log(0.5 * rho), abs=0.01)


def test_random_rate_rnn_is_chaotic_well_above_g1():
    _, system = _rate_rnn(60, 3.0)
    x0 = torch.randn(2, 60, generator=_gen(9), dtype=F64)
    result = lyapunov_spectrum(system, x0, LyapunovConfig(n_steps=500, transient=100, n_exponents=2, n_ons=2))
    assert float(result.exponents[:, 0].min()) > 0.05


# ---------------------------------------------------------------------------------------- node-wise exponents


def test_node_ftle_of_triangular_map_by_hand():
    # A = [[a, b], [0, c]]: P = A^T, P e1 = (a^T, 0) and P e2 = (b (a^T − c^T)/(a − c), c^T), so
    # λ_1 = log a and λ_2 = log‖P e2‖ / T, the same in every window (dt = 2 divides both).
    a, b, c, horizon, dt = 0.9, 1.0, 0.5, 12, 2.0
    mat = torch.tensor([[a, b], [0.0, c]], dtype=F64)
    system = MapSystem(lambda x: mat @ x, 2, dt=dt)
    result = node_ftle(system, torch.ones(2), [0, 1], FTLEConfig(horizon=horizon, windows=3, transient=4, renorm=5))
    pe2 = torch.tensor([b * (a**horizon - c**horizon) / (a - c), c**horizon], dtype=F64)
    expected = torch.tensor([math.log(a**horizon), math.log(float(pe2.norm()))], dtype=F64) / (horizon * dt)
    assert result.samples.shape == (1, 3, 2)
    assert torch.allclose(result.values, expected, atol=1e-12)
    assert torch.allclose(result.std, torch.zeros(2, dtype=F64), atol=1e-12)
    assert result.reading == "ftle"


def test_node_ftle_stride_skips_steps_and_validates():
    mat = torch.diag(torch.tensor([0.5, 2.0], dtype=F64))
    system = MapSystem(lambda x: mat @ x, 2)
    result = node_ftle(system, torch.ones(1, 2), torch.tensor([1]), FTLEConfig(horizon=3, windows=2, stride=7))
    assert result.values.tolist() == pytest.approx([math.log(2.0)])
    with pytest.raises(ConfigError, match="coordinates"):
        node_ftle(system, torch.ones(2), [0, 2])
    with pytest.raises(ConfigError, match="ftle.stride"):
        FTLEConfig(horizon=5, stride=3)


def test_node_exponents_by_index_assigns_sorted_spectrum():
    # Generic A with eigenvalues (0.5, 2, 1) and Q0 = [e0, e1]: the run gives the top two, log 2 and 0, in order.
    mat = _matrix_with_eigenvalues(torch.tensor([0.5, 2.0, 1.0], dtype=F64), seed=11)
    system = MapSystem(lambda x: mat @ x, 3)
    result = node_exponents_by_index(system, torch.ones(3), [0, 1], LyapunovConfig(n_steps=50, align=200))
    assert result.reading == "spectrum_index"
    assert result.values.tolist() == pytest.approx([math.log(2.0), 0.0], abs=1e-9)


# ---------------------------------------------------------------------------------------- Kaplan–Yorke


@pytest.mark.parametrize(
    ("spectrum", "expected"),
    [
        ([1.0, 0.0, -2.0], 2.5),  # k = 2, D = 2 + (1 + 0)/2
        ([-2.0, 1.0, 0.0], 2.5),  # sorted first
        ([0.3, -0.1, -1.0], 2.2),  # k = 2, D = 2 + 0.2/1
        ([-1.0, -2.0], 0.0),  # λ1 < 0
        ([0.5, 0.2], 2.0),  # every partial sum ≥ 0: D = m
        ([1.0, -math.inf], 1.0),  # 1 + 1/∞
    ],
)
def test_kaplan_yorke_by_hand(spectrum, expected):
    assert kaplan_yorke_dimension(spectrum) == pytest.approx(expected)


def test_kaplan_yorke_rejects_nan_and_empty():
    with pytest.raises(ConfigError, match="exponents"):
        kaplan_yorke_dimension([0.1, math.nan])
    with pytest.raises(ConfigError, match="exponents"):
        kaplan_yorke_dimension([])


# ---------------------------------------------------------------------------------------- validation


def test_config_and_input_validation():
    with pytest.raises(ConfigError, match="lyapunov.n_steps"):
        LyapunovConfig(n_steps=0)
    with pytest.raises(ConfigError, match="lyapunov.n_ons"):
        LyapunovConfig(n_ons=True)
    system = MapSystem(lambda x: 0.5 * x, 2)
    with pytest.raises(ConfigError, match="lyapunov.n_exponents"):
        lyapunov_spectrum(system, torch.ones(2), LyapunovConfig(n_steps=2, n_exponents=3))
    with pytest.raises(ConfigError, match="x0"):
        lyapunov_spectrum(system, torch.ones(3))
    with pytest.raises(ConfigError, match="x0"):
        lyapunov_spectrum(system, torch.tensor([1.0, math.nan]))
    with pytest.raises(ConfigError, match="system"):
        lyapunov_spectrum(object(), torch.ones(2))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="basis"):
        lyapunov_spectrum(system, torch.ones(2), LyapunovConfig(n_exponents=1), basis=torch.ones(2, 1))
    with pytest.raises(ConfigError, match="tangent"):
        MapSystem(lambda x: x, 2, tangent="adjoint")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="scheme"):
        ode_system(lambda x: x, 2, 0.1, scheme="rk45")
    with pytest.raises(ConfigError, match="step"):
        MapSystem(lambda x: x[:1], 2).advance(torch.ones(1, 2), 0, 1)


def test_overflow_between_reorthonormalisations_is_reported():
    system = MapSystem(lambda x: 1e30 * x, 1)
    with pytest.raises(ConfigError, match="lyapunov.n_ons"):
        lyapunov_spectrum(system, torch.ones(1), LyapunovConfig(n_steps=20, transient=0, align=0, n_ons=20))
