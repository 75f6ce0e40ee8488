"""Chaotic time-series tasks: integrators, systems, scaling, encodings, windowing, splits, metrics and loaders."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hrsnn.errors import ConfigError
from hrsnn.tasks.chaotic import (
    ENCODINGS,
    LorenzParams,
    MackeyGlassParams,
    RegressionDataset,
    RegressionSplits,
    RosslerParams,
    SeriesEncoding,
    WindowSpec,
    chronological_split,
    encode_series,
    fit_scaler,
    integrate_rk4,
    load_lorenz,
    load_mackey_glass,
    load_rossler,
    lorenz63,
    mackey_glass,
    make_windows,
    nrmse,
    rk4_step,
    rossler,
    valid_time,
)

# ------------------------------------------------------------------------------------------------ integrators


def test_rk4_step_on_linear_ode_is_the_fourth_order_taylor_polynomial():
    # For f(x) = −x the RK4 stages give x' = x (1 − h + h²/2 − h³/6 + h⁴/24) exactly.
    h, x = 0.3, 2.0
    want = x * (1 - h + h**2 / 2 - h**3 / 6 + h**4 / 24)
    assert rk4_step(lambda s: (-s[0],), (x,), h)[0] == pytest.approx(want, abs=1e-15)


def test_rk4_integration_of_decay_matches_exp():
    out = integrate_rk4(lambda s: (-s[0],), (1.0,), dt=0.1, n_steps=51, substeps=10)
    t = 0.1 * np.arange(51)
    assert out.shape == (51, 1) and out.dtype == np.float64
    np.testing.assert_allclose(out[:, 0], np.exp(-t), rtol=0, atol=1e-8)


def test_transient_drops_the_first_samples():
    field = LorenzParams().derivative
    full = integrate_rk4(field, (1.0, 2.0, 3.0), dt=0.01, n_steps=30, substeps=2)
    tail = integrate_rk4(field, (1.0, 2.0, 3.0), dt=0.01, n_steps=20, substeps=2, transient=10)
    np.testing.assert_array_equal(tail, full[10:])


def test_integrator_rejects_bad_arguments_and_divergence():
    with pytest.raises(ConfigError, match="dt"):
        integrate_rk4(lambda s: s, (1.0,), dt=0.0, n_steps=3)
    with pytest.raises(ConfigError, match="n_steps"):
        integrate_rk4(lambda s: s, (1.0,), dt=0.1, n_steps=0)
    with pytest.raises(ConfigError, match="initial"):
        integrate_rk4(lambda s: s, (math.nan,), dt=0.1, n_steps=3)
    with pytest.raises(ConfigError, match="diverged"):
        integrate_rk4(lambda s: (s[0] ** 2,), (10.0,), dt=1.0, n_steps=20)


# ------------------------------------------------------------------------------------------------ systems


def test_vector_fields_by_hand():
    x, y, z = 1.5, -2.0, 3.0
    assert LorenzParams().derivative((x, y, z)) == pytest.approx(
        (10 * (y - x), x * (28 - z) - y, x * y - 8 / 3 * z), abs=1e-14
    )
    assert RosslerParams().derivative((x, y, z)) == pytest.approx((-y - z, x + 0.2 * y, 0.2 + z * (x - 5.7)), abs=1e-14)
    assert MackeyGlassParams().derivative(0.8, 1.1) == pytest.approx(0.2 * 1.1 / (1 + 1.1**10) - 0.1 * 0.8, abs=1e-15)


def test_lorenz_stays_on_the_attractor():
    u = lorenz63(20_000, dt=0.02, substeps=2, transient=500, seed=1)  # 400 time units
    assert u.shape == (20_000, 3)
    assert np.abs(u[:, 0]).max() < 30 and np.abs(u[:, 1]).max() < 35
    assert u[:, 2].min() > 0 and u[:, 2].max() < 55
    assert u[:, 2].mean() == pytest.approx(23.5, abs=0.6)
    assert u[:, 0].std() > 5  # still chaotic, not at a fixed point


def test_rossler_is_bounded_and_not_at_a_fixed_point():
    u = rossler(4000, seed=2)
    assert np.abs(u[:, :2]).max() < 15
    assert u[:, 2].min() > -0.1 and u[:, 2].max() < 30
    assert u[:, 0].std() > 3 and u[:, 2].max() > 5  # the z-spikes of the attractor


def test_mackey_glass_first_delay_interval_matches_closed_form():
    # On [0, τ] the delayed value is the constant history x0, so dx/dt = c − γx with c = βx0/(1 + x0^n):
    # x(t) = c/γ + (x0 − c/γ) e^{−γt}.
    x = mackey_glass(18, dt=1.0, substeps=10, transient=0, jitter=0.0)[:, 0]
    x0, p = 1.2, MackeyGlassParams()
    c = p.beta * x0 / (1 + x0**p.n)
    t = np.arange(18.0)
    np.testing.assert_allclose(x, c / p.gamma + (x0 - c / p.gamma) * np.exp(-p.gamma * t), rtol=0, atol=1e-8)


def test_mackey_glass_step_with_interpolated_delay_by_hand():
    # h = 1 (substeps = 1), lag m = 17: step k = 17 is the first that reads two different history values.
    x = mackey_glass(19, dt=1.0, substeps=1, transient=0, jitter=0.0)[:, 0]
    f, h = MackeyGlassParams().derivative, 1.0
    d0, d1 = x[0], x[1]
    mid = 0.5 * (d0 + d1)
    k1 = f(x[17], d0)
    k2 = f(x[17] + h / 2 * k1, mid)
    k3 = f(x[17] + h / 2 * k2, mid)
    k4 = f(x[17] + h * k3, d1)
    assert x[18] == pytest.approx(x[17] + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4), abs=1e-15)


def _relative_recurrence(x: np.ndarray, lags: range) -> tuple[float, float]:
    """(min over lags of RMS(x[t+L] − x[t]) / std(x), max over lags of the autocorrelation)."""
    xc = x - x.mean()
    diffs = [np.sqrt(np.mean((x[lag:] - x[:-lag]) ** 2)) / x.std() for lag in lags]
    acs = [
        np.dot(xc[lag:], xc[:-lag]) / np.sqrt(np.dot(xc[lag:], xc[lag:]) * np.dot(xc[:-lag], xc[:-lag])) for lag in lags
    ]
    return min(diffs), max(acs)


def test_mackey_glass_is_bounded_and_aperiodic_while_short_delay_is_periodic():
    x = mackey_glass(4000, seed=3)[:, 0]
    assert x.min() > 0.2 and x.max() < 1.4
    recurrence, max_ac = _relative_recurrence(x, range(10, 2000))
    assert recurrence > 0.3, "the τ = 17 series comes back close to itself: periodic?"
    assert max_ac < 0.9, "the autocorrelation returns to ~1 at some lag: periodic?"
    # Control: τ = 7 is a limit cycle, which the same measures detect.
    periodic = mackey_glass(4000, params=MackeyGlassParams(tau=7.0))[:, 0]
    recurrence, max_ac = _relative_recurrence(periodic, range(10, 2000))
    assert recurrence < 0.01 and max_ac > 0.999


def test_mackey_glass_rejects_step_that_does_not_divide_tau_and_bad_history():
    with pytest.raises(ConfigError, match="substeps"):
        mackey_glass(10, dt=0.3, substeps=1)
    with pytest.raises(ConfigError, match="jitter"):
        mackey_glass(10, x0=0.5, jitter=0.5)


def test_initial_conditions_are_jittered_by_hand():
    u = lorenz63(3, transient=0, jitter=0.5, seed=9)
    np.testing.assert_allclose(u[0], np.ones(3) + 0.5 * np.random.default_rng(9).uniform(-1, 1, 3), atol=0)
    r = rossler(3, transient=0, jitter=0.25, seed=9)
    np.testing.assert_allclose(r[0], [1.0, 1.0, 0.0] + 0.25 * np.random.default_rng(9).uniform(-1, 1, 3), atol=0)
    x = mackey_glass(3, transient=0, x0=1.0, jitter=0.3, seed=9)
    assert x[0, 0] == 1.0 + 0.3 * np.random.default_rng(9).uniform(-1, 1, 1)[0]


def test_generators_are_seeded():
    np.testing.assert_array_equal(lorenz63(200, seed=4), lorenz63(200, seed=4))
    assert not np.allclose(lorenz63(200, seed=4), lorenz63(200, seed=5))
    np.testing.assert_array_equal(mackey_glass(50, seed=4), mackey_glass(50, seed=4))
    assert not np.allclose(rossler(200, seed=4), rossler(200, seed=5))
    with pytest.raises(ConfigError, match="seed"):
        lorenz63(10, seed=-1)
    with pytest.raises(ConfigError, match="params"):
        lorenz63(10, params=RosslerParams())


# ------------------------------------------------------------------------------------------------ scaling, encoding


def test_scaler_by_hand():
    u = np.array([[0.0, 10.0], [2.0, 10.0], [4.0, 40.0]])
    sc = fit_scaler(u)
    mean, std = u.mean(0), u.std(0)
    assert sc.mean == pytest.approx(tuple(mean)) and sc.std == pytest.approx(tuple(std))
    z = (u - mean) / std
    assert sc.low == pytest.approx(tuple(z.min(0))) and sc.high == pytest.approx(tuple(z.max(0)))
    np.testing.assert_allclose(sc.standardise(u), z)
    np.testing.assert_allclose(sc.unit(u), [[0.0, 0.0], [0.5, 0.0], [1.0, 1.0]], atol=1e-12)
    np.testing.assert_allclose(sc.unit(np.array([[-2.0, 25.0], [8.0, 50.0]])), [[0.0, 0.5], [1.0, 1.0]], atol=1e-12)
    with pytest.raises(ConfigError, match="train_series"):
        fit_scaler(np.array([[1.0, 2.0], [1.0, 3.0]]))


def test_rate_and_population_encodings_by_hand():
    r = np.array([[0.25, 1.0], [0.0, 0.5]])
    np.testing.assert_array_equal(encode_series(r, SeriesEncoding("rate")), r)
    enc = SeriesEncoding("population", n_fields=3, field_width=0.5)
    got = encode_series(r, enc)
    centres = (0.0, 0.5, 1.0)
    want = [[math.exp(-((v - c) ** 2) / (2 * 0.25)) for v in row for c in centres] for row in r]
    assert got.shape == (2, 6)
    np.testing.assert_allclose(got, want, atol=1e-15)
    assert SeriesEncoding("population", n_fields=4).width == 0.25
    assert set(ENCODINGS) == {"rate", "population"}


def test_spike_encoding_is_bernoulli_and_seeded():
    r = np.tile(np.array([[0.0, 0.3, 1.0]]), (20_000, 1))
    enc = SeriesEncoding("rate", spikes=True)
    s = encode_series(r, enc, np.random.default_rng(0))
    assert set(np.unique(s)) <= {0.0, 1.0}
    assert s[:, 0].sum() == 0 and s[:, 2].all()
    assert s[:, 1].mean() == pytest.approx(0.3, abs=0.015)
    np.testing.assert_array_equal(s, encode_series(r, enc, np.random.default_rng(0)))
    with pytest.raises(ConfigError, match="generator"):
        encode_series(r, enc)
    capped = encode_series(r, SeriesEncoding("rate", spikes=True, max_probability=0.5), np.random.default_rng(1))
    assert capped[:, 1].mean() == pytest.approx(0.15, abs=0.01) and capped[:, 2].mean() == pytest.approx(0.5, abs=0.02)
    with pytest.raises(ConfigError, match="unit"):
        encode_series(r + 0.5, SeriesEncoding("rate"))


def test_encoding_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="encoding='poisson'"):
        SeriesEncoding("poisson")
    with pytest.raises(ConfigError, match="n_fields"):
        SeriesEncoding("population", n_fields=1)
    with pytest.raises(ConfigError, match="field_width"):
        SeriesEncoding("population", field_width=0.0)
    with pytest.raises(ConfigError, match="max_probability"):
        SeriesEncoding("rate", spikes=True, max_probability=1.5)


# ------------------------------------------------------------------------------------------------ windowing, split


def test_windows_one_step_target_is_the_input_shifted_by_one():
    series = np.arange(12.0).reshape(-1, 1)
    x, y = make_windows(series, series, WindowSpec(window=4, horizon=1, stride=3))
    assert x.shape == (3, 4, 1) and y.shape == (3, 4, 1)  # starts 0, 3, 6 (s + T − 1 + h <= 11)
    np.testing.assert_array_equal(x[:, :, 0], [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]])
    np.testing.assert_array_equal(y[:, :-1], x[:, 1:])
    np.testing.assert_array_equal(y[:, :, 0], x[:, :, 0] + 1)


def test_windows_horizon_and_multi_output_layout_by_hand():
    e = np.arange(10.0).reshape(-1, 1)
    z = np.stack([np.arange(10.0), 100 + np.arange(10.0)], axis=1)  # d = 2
    x, y = make_windows(e, z, WindowSpec(window=3, horizon=2))
    assert x.shape == (2, 3, 1)  # starts 0, 3; 6 would need index 6 + 2 + 2 = 10
    np.testing.assert_array_equal(y[0], [[2, 102], [3, 103], [4, 104]])  # y_t = z_{s+t+2}
    _, ym = make_windows(e, z, WindowSpec(window=3, horizon=2, multi_output=True))
    assert ym.shape == (2, 3, 4)
    np.testing.assert_array_equal(ym[1, 0], [4, 104, 5, 105])  # (z_{s+t+1}, z_{s+t+2}), lead first
    assert make_windows(e[:4], z[:4], WindowSpec(window=3, horizon=2))[0].shape == (0, 3, 1)


def test_chronological_split_by_hand():
    train, val, test = chronological_split(101, 0.1, 0.2)
    assert (train, val, test) == (range(0, 71), range(71, 81), range(81, 101))  # n_test = ⌊20.2 + .5⌋ = 20
    with pytest.raises(ConfigError, match="val_fraction"):
        chronological_split(100, 0.5, 0.5)
    with pytest.raises(ConfigError, match="n=2"):
        chronological_split(2, 0.3, 0.4)  # 1 val + 1 test step leave no training step


def test_loader_split_is_chronological_without_leakage():
    sp = load_lorenz(n_steps=1200, window=50, horizon=3, stride=20, val_fraction=0.2, test_fraction=0.25, seed=2)
    seg = sp.info["segments"]
    assert seg == {"train": (0, 660), "val": (660, 900), "test": (900, 1200)}
    u = lorenz63(1200, seed=2)
    scaler = fit_scaler(u[:660])
    assert sp.info["scaler"]["mean"] == pytest.approx(scaler.mean)
    unit, z = scaler.unit(u), scaler.standardise(u)
    for part in ("train", "val", "test"):
        ds = getattr(sp, part)
        start, stop = seg[part]
        for n in range(ds.n_samples):
            s = start + 20 * n
            assert s + 50 - 1 + 3 < stop  # the last target index stays inside the segment
            np.testing.assert_allclose(ds.x[n].numpy(), unit[s : s + 50], atol=1e-6)
            np.testing.assert_allclose(ds.y[n].numpy(), z[s + 3 : s + 53], atol=1e-5)
        assert ds.n_samples == (stop - start - 50 - 3) // 20 + 1


def test_loader_one_step_target_is_next_input_after_inverse_scaling():
    sp = load_lorenz(n_steps=800, window=40, components=(0, 2))
    low, high = (np.array(sp.info["scaler"][k]) for k in ("low", "high"))
    as_unit = (sp.train.y.numpy() - low) / (high - low)  # train values lie inside the train range: no clipping
    np.testing.assert_allclose(as_unit[:, :-1], sp.train.x.numpy()[:, 1:], atol=1e-5)
    assert sp.n_channels == 2 and sp.n_outputs == 2 and sp.info["components"] == (0, 2)


def test_loaders_shapes_names_and_reproducibility():
    kw = {"n_steps": 600, "transient": 100, "window": 30, "encoding": "population", "n_fields": 5, "spikes": True}
    a, b = load_rossler(**kw, seed=1), load_rossler(**kw, seed=1)
    assert a.train.x.shape[1:] == (30, 15) and a.train.y.shape[2] == 3
    assert a.test.name == "rossler/test"
    assert torch.equal(a.train.x, b.train.x)
    assert torch.equal(a.test.y, b.test.y)
    mg = load_mackey_glass(n_steps=500, transient=100, window=25, horizon=5, multi_output=True)
    assert mg.train.x.shape[1:] == (25, 1) and mg.n_outputs == 5 and mg.train.x.dtype == torch.float32
    assert isinstance(mg.info, type(a.info)) and mg.info["params"]["tau"] == 17.0
    slow = load_lorenz(n_steps=300, transient=10, window=20, params=LorenzParams(rho=14.0))
    assert slow.info["params"]["rho"] == 14.0


def test_loader_errors_name_the_argument():
    with pytest.raises(ConfigError, match="window"):
        load_lorenz(n_steps=100, window=200)
    with pytest.raises(ConfigError, match="components"):
        load_lorenz(n_steps=300, components=(3,))
    with pytest.raises(ConfigError, match="horizon"):
        load_lorenz(n_steps=300, horizon=0)
    with pytest.raises(ConfigError, match="encoding"):
        load_mackey_glass(n_steps=300, encoding="latency")


# ------------------------------------------------------------------------------------------------ data sets


def _ds(n=5, t=4, c=2, d=3) -> RegressionDataset:
    x = torch.arange(n * t * c, dtype=torch.float32).reshape(n, t, c)
    y = torch.arange(n * t * d, dtype=torch.float32).reshape(n, t, d)
    return RegressionDataset(x=x, y=y, name="toy")


def test_regression_dataset_interface():
    ds = _ds()
    assert (ds.n_samples, ds.n_steps, ds.n_channels, ds.n_outputs, len(ds)) == (5, 4, 2, 3, 5) and ds.per_step
    sub = ds.subset([3, 1], name="s")
    assert torch.equal(sub.x, ds.x[[3, 1]])
    assert sub.name == "s" and ds.subset(torch.tensor([True, False, True, False, False])).n_samples == 2
    assert [xb.shape[0] for xb, _ in ds.batches(2, shuffle=False)] == [2, 2, 1]
    order = torch.randperm(5, generator=torch.Generator().manual_seed(7))
    got = torch.cat([yb for _, yb in ds.batches(2, shuffle=True, generator=torch.Generator().manual_seed(7))])
    assert torch.equal(got, ds.y[order])
    assert ds.to("cpu").x.device.type == "cpu"
    with pytest.raises(ConfigError, match="generator"):
        next(ds.batches(2, shuffle=True))
    with pytest.raises(ConfigError, match="indices"):
        ds.subset([5])


def test_regression_dataset_and_splits_validate():
    x = torch.zeros(2, 3, 1)
    with pytest.raises(ConfigError, match="dataset.y"):
        RegressionDataset(x=x, y=torch.zeros(2, 4, 1), name="a")
    with pytest.raises(ConfigError, match="dataset.y"):
        RegressionDataset(x=x, y=torch.zeros(2, 3, 1, dtype=torch.float64), name="a")
    with pytest.raises(ConfigError, match="dataset.x"):
        RegressionDataset(x=torch.zeros(2, 3), y=torch.zeros(2, 3, 1), name="a")
    with pytest.raises(ConfigError, match="splits.test"):
        RegressionSplits(train=_ds(), val=_ds(), test=_ds(d=2))
    splits = RegressionSplits(train=_ds(), val=_ds(n=0), test=_ds(), info={"a": 1})
    with pytest.raises(TypeError):
        splits.info["b"] = 2  # type: ignore[index]


# ------------------------------------------------------------------------------------------------ metrics


def test_nrmse_by_hand():
    target = np.array([[1.0, 0.0], [3.0, 0.0], [5.0, 6.0]])
    pred = np.array([[2.0, 0.0], [3.0, 1.0], [5.0, 6.0]])
    std0 = math.sqrt(((1 - 3) ** 2 + 0 + (5 - 3) ** 2) / 3)
    std1 = math.sqrt((2 * 2**2 + 4**2) / 3)
    rmse0, rmse1 = math.sqrt(1 / 3), math.sqrt(1 / 3)
    want = (rmse0 / std0 + rmse1 / std1) / 2
    assert nrmse(pred, target) == pytest.approx(want, abs=1e-14)
    assert nrmse(torch.tensor(pred), torch.tensor(target)) == pytest.approx(want, abs=1e-14)
    assert nrmse(pred[None], target[None]) == pytest.approx(want, abs=1e-14)  # leading axes pooled
    assert nrmse(target, target) == 0.0
    with pytest.raises(ConfigError, match="pred"):
        nrmse(pred[:2], target)
    with pytest.raises(ConfigError, match="target"):
        nrmse(pred, np.ones_like(target))


def test_valid_time_by_hand():
    target = np.array([[0.0], [2.0], [0.0], [2.0]])  # std 1
    pred = target + np.array([[0.1], [0.3], [0.5], [0.0]])
    assert valid_time(pred, target, 0.4) == 2  # e = 0.1, 0.3, 0.5 > 0.4
    assert valid_time(pred, target, 0.6) == 4  # never exceeds
    assert valid_time(pred, target, 0.4, scale=[0.5]) == 1  # e = 0.2, 0.6 > 0.4
    assert valid_time(torch.tensor(pred[:, 0]), torch.tensor(target[:, 0]), 0.4) == 2  # (T,) tensors
    # D = 2: e_t = sqrt(((Δ1/s1)² + (Δ2/s2)²) / 2)
    t2 = np.stack([target[:, 0], 2 * target[:, 0]], axis=1)  # stds 1, 2
    p2 = t2 + np.array([[0.0, 0.0], [0.4, 0.0], [0.0, 1.2], [0.0, 0.0]])
    assert valid_time(p2, t2, 0.35) == 2  # e = 0, 0.283, 0.424
    with pytest.raises(ConfigError, match="scale"):
        valid_time(pred, target, scale=[0.0])


def test_regression_dataset_rejects_non_finite_values_naming_the_first():
    x, y = torch.zeros(2, 3, 1), torch.zeros(2, 3, 2)
    y[1, 2, 1] = float("inf")
    with pytest.raises(ConfigError) as err:
        RegressionDataset(x=x, y=y, name="a")
    assert err.value.field == "dataset.y" and "the first is inf at sample 1, step 2, output 1" in str(err.value)
    x[0, 1, 0] = float("nan")
    with pytest.raises(ConfigError, match=r"dataset\.x.*nan at sample 0, step 1, channel 0"):
        RegressionDataset(x=x, y=torch.zeros(2, 3, 2), name="a")


@pytest.mark.parametrize("seed", [2**64, -1, 1.5])
def test_chaotic_seed_outside_generator_range(seed):
    with pytest.raises(ConfigError) as err:
        load_lorenz(n_steps=500, window=10, seed=seed)
    assert err.value.field == "seed"
