"""Readout-only training: decoders, step selection, ridge and logistic solvers, and fits on frozen RSNNs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hrsnn.connectivity import ConnectivitySpec
from hrsnn.errors import ConfigError
from hrsnn.network import RSNN, LayerConfig, NeuronConfig, RSNNConfig
from hrsnn.readout import (
    DECODERS,
    READOUT_KINDS,
    SELECTIONS,
    ReadoutFitConfig,
    collect_features,
    exponential_trace,
    fit_readout,
    logistic_fit,
    ridge_fit,
    ridge_path,
    select_steps,
    window_count,
)
from hrsnn.tasks.base import SequenceDataset
from hrsnn.tasks.chaotic import RegressionDataset, load_lorenz, nrmse


def _close(actual: torch.Tensor, expected: torch.Tensor, atol: float = 1e-6) -> None:
    """Element-wise closeness via numpy (torch.testing's first call costs seconds of lazy imports)."""
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    np.testing.assert_allclose(actual.double().numpy(), expected.double().numpy(), rtol=1e-6, atol=atol)


# ------------------------------------------------------------------------------------------------ decoders


def test_exponential_filter_by_hand_on_three_steps():
    s = torch.tensor([[[1.0], [0.0], [1.0]]])  # (B=1, T=3, H=1)
    lam = math.exp(-1 / 2.0)
    got = exponential_trace(s, 2.0)[0, :, 0]
    _close(got, torch.tensor([1.0, lam, lam**2 + 1.0]))


def test_window_count_by_hand():
    s = torch.tensor([[[1.0], [1.0], [0.0], [1.0]]])
    _close(window_count(s, 2)[0, :, 0], torch.tensor([1.0, 2.0, 1.0, 1.0]))
    _close(window_count(s, 9)[0, :, 0], torch.tensor([1.0, 2.0, 2.0, 3.0]))
    with pytest.raises(ConfigError, match="count_window"):
        window_count(s, 0)
    assert set(DECODERS) == {"exp", "count"}


def test_step_selection_by_hand():
    v = torch.arange(12.0).reshape(2, 3, 2)  # (B, T, F)
    _close(select_steps(v, "all", 1), torch.tensor([[2.0, 3], [4, 5], [8, 9], [10, 11]]))
    _close(select_steps(v, "last", 2), torch.tensor([[4.0, 5], [10, 11]]))
    _close(select_steps(v, "mean", 1), torch.tensor([[3.0, 4], [9, 10]]))  # mean of t >= 1
    assert set(SELECTIONS) == {"all", "last", "mean"}
    with pytest.raises(ConfigError, match="skip"):
        select_steps(v, "all", 3)
    with pytest.raises(ConfigError, match="features"):
        select_steps(v, "first", 0)


# ------------------------------------------------------------------------------------------------ ridge


def _regression_problem(m=40, f=3, d=2, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(m, f)) + 2.0
    y = z @ rng.normal(size=(f, d)) + np.array([1.0, -3.0])[:d] + 0.1 * rng.normal(size=(m, d))
    return z, y


def test_ridge_alpha_zero_matches_numpy_lstsq_with_intercept():
    z, y = _regression_problem()
    w, b = ridge_fit(torch.tensor(z), torch.tensor(y), 0.0)
    coef, *_ = np.linalg.lstsq(np.hstack([z, np.ones((z.shape[0], 1))]), y, rcond=None)
    np.testing.assert_allclose(w.numpy(), coef[:-1], atol=1e-9)
    np.testing.assert_allclose(b.numpy(), coef[-1], atol=1e-9)
    w_small, b_small = ridge_fit(torch.tensor(z), torch.tensor(y), 1e-12)  # α → 0 limit
    np.testing.assert_allclose(w_small.numpy(), coef[:-1], atol=1e-8)
    np.testing.assert_allclose(b_small.numpy(), coef[-1], atol=1e-8)


def test_ridge_closed_form_by_hand_and_path_order():
    z, y = _regression_problem(m=25)
    alpha, m = 0.3, z.shape[0]
    zc, yc = z - z.mean(0), y - y.mean(0)
    w_hand = np.linalg.solve(zc.T @ zc + alpha * m * np.eye(3), zc.T @ yc)
    b_hand = y.mean(0) - z.mean(0) @ w_hand
    path = ridge_path(torch.tensor(z), torch.tensor(y), [10.0, alpha])
    np.testing.assert_allclose(path[1][0].numpy(), w_hand, atol=1e-12)
    np.testing.assert_allclose(path[1][1].numpy(), b_hand, atol=1e-12)
    # The solution zeroes the gradient of (1/M)||Y − ZW − 1b||² + α||W||².
    w, b = path[1]
    resid = y - z @ w.numpy() - b.numpy()
    np.testing.assert_allclose(-2 / m * z.T @ resid + 2 * alpha * w.numpy(), 0.0, atol=1e-12)
    assert np.linalg.norm(path[0][0].numpy()) < np.linalg.norm(w_hand)  # larger α shrinks W
    with pytest.raises(ConfigError, match="targets"):
        ridge_fit(torch.tensor(z), torch.tensor(y[:3]), 1.0)
    with pytest.raises(ConfigError, match="alphas"):
        ridge_path(torch.tensor(z), torch.tensor(y), [-1.0])


def test_ridge_alpha_zero_rank_deficient_gives_minimum_norm_weights():
    z, y = _regression_problem(f=2, d=1)
    dup = np.hstack([z, z[:, :1]])  # column 2 copies column 0
    w, _ = ridge_fit(torch.tensor(dup), torch.tensor(y), 0.0)
    w_full, _ = ridge_fit(torch.tensor(z), torch.tensor(y), 0.0)
    np.testing.assert_allclose(w[0].numpy(), w[2].numpy(), atol=1e-8)  # weight split evenly
    np.testing.assert_allclose((w[0] + w[2]).numpy(), w_full[0].numpy(), atol=1e-8)


# ------------------------------------------------------------------------------------------------ logistic


def _classification_problem(m=120, f=3, k=3, seed=1):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, m)
    centres = rng.normal(scale=1.5, size=(k, f))
    return centres[labels] + rng.normal(size=(m, f)), labels


def test_logistic_fit_matches_sklearn_and_stationarity():
    from sklearn.linear_model import LogisticRegression  # imported here: slow to import

    z, labels = _classification_problem()
    alpha, m = 0.05, z.shape[0]
    w, b = logistic_fit(torch.tensor(z), torch.tensor(labels), 3, alpha, tol=1e-12)
    p = torch.softmax(torch.tensor(z) @ w + b, -1).numpy()
    onehot = np.eye(3)[labels]
    np.testing.assert_allclose(z.T @ (p - onehot) / m + alpha * w.numpy(), 0.0, atol=1e-7)  # ∂J/∂W = 0
    np.testing.assert_allclose((p - onehot).sum(0), 0.0, atol=1e-6)  # ∂J/∂b = 0
    ref = LogisticRegression(C=1.0 / (alpha * m), tol=1e-12, max_iter=10_000).fit(z, labels)
    np.testing.assert_allclose(w.numpy().T, ref.coef_, atol=1e-4)
    np.testing.assert_allclose(p, ref.predict_proba(z), atol=1e-5)


def test_logistic_fit_validates():
    z, labels = _classification_problem(m=10)
    with pytest.raises(ConfigError, match="labels"):
        logistic_fit(torch.tensor(z), torch.tensor(labels) + 5, 3, 0.1)
    with pytest.raises(ConfigError, match="alpha"):
        logistic_fit(torch.tensor(z), torch.tensor(labels), 3, -0.1)
    with pytest.raises(ConfigError, match="init"):
        logistic_fit(torch.tensor(z), torch.tensor(labels), 3, 0.1, init=(torch.zeros(2, 3), torch.zeros(3)))


# ------------------------------------------------------------------------------------------------ RSNN fits


def _rsnn(n_inputs, size, seed=0, tau=(1.0, 4.0), p=0.2):
    neuron = NeuronConfig(kind="lif", b0=0.05, tau_m={"dist": "uniform", "low": tau[0], "high": tau[1]})
    conn = ConnectivitySpec(kind="erdos_renyi", p=p, gain=0.5)
    layers = (LayerConfig(size=size, neuron=neuron, connectivity=conn),)
    return RSNN(RSNNConfig(n_inputs=n_inputs, n_outputs=1, layers=layers), seed=seed)


def _two_class_spikes(n, seed):
    """Class c fires its own half of 8 input lines at 40 % and the other half at 5 %, for 30 steps."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    rates = torch.full((n, 1, 8), 0.05)
    rates[labels == 0, :, :4] = 0.4
    rates[labels == 1, :, 4:] = 0.4
    x = (torch.rand(n, 30, 8, generator=gen) < rates).float()
    return SequenceDataset(x=x, y=labels, n_classes=2, name=f"toy{seed}")


def test_logistic_readout_separates_a_toy_two_class_spike_problem():
    model = _rsnn(8, 40, tau=(2.0, 10.0))
    train, val, test = _two_class_spikes(60, 1), _two_class_spikes(30, 2), _two_class_spikes(60, 3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ro = fit_readout(model, train, val, filter_tau=10.0, alphas=(1e-3, 1e-1))
    assert ro.config.kind == "logistic" and ro.config.features == "mean" and ro.is_classifier
    acc = ro.evaluate(model, test)["accuracy"]
    assert acc >= 0.95, f"test accuracy {acc:.3f}"
    assert set(ro.val_scores) == {1e-3, 1e-1} and ro.alpha in ro.val_scores
    assert ro.predict(model, test).shape == (60,) and ro.scores(model, test).shape == (60, 2)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # recurrent weights frozen
    assert model.training  # mode restored
    ridge = fit_readout(model, train, val, kind="ridge", features="last", decoder="count", count_window=10)
    assert ridge.weight.shape == (40, 2) and ridge.evaluate(model, test)["accuracy"] >= 0.9


def test_ridge_readout_on_lorenz_beats_persistence():
    sp = load_lorenz(
        n_steps=4000, dt=0.1, substeps=5, window=100, components=(0,), encoding="population", n_fields=10,
        val_fraction=0.15, test_fraction=0.25, seed=0,
    )  # fmt: skip
    model = _rsnn(sp.n_channels, 100)
    ro = fit_readout(model, sp.train, sp.val, kind="ridge", filter_tau=2.0, skip=10)
    pred = ro.predict(model, sp.test)
    assert pred.shape == (sp.test.n_samples, 90, 1)
    ours = ro.evaluate(model, sp.test)["nrmse"]
    target = sp.test.y[:, 10:]
    assert nrmse(pred, target) == pytest.approx(ours)
    persistence = nrmse(sp.test.y[:, 9:-1], target)  # ŷ_{t} = z_t: the last observed value
    assert ours < 0.8 * persistence, f"readout NRMSE {ours:.3f} vs persistence NRMSE {persistence:.3f}"


def test_features_standardisation_and_include_input():
    data = RegressionDataset(x=torch.rand(4, 12, 3), y=torch.rand(4, 12, 2), name="r")
    model = _rsnn(3, 10)
    cfg = ReadoutFitConfig(kind="ridge", features="all", skip=2, include_input=True)
    z, y = collect_features(model, data, cfg)
    assert z.shape == (4 * 10, 13) and y.shape == (40, 2)
    _close(z[:, 10:], data.x[:, 2:].reshape(-1, 3))
    ro = fit_readout(model, data, data, config=cfg, alphas=(1.0,))
    _close(ro.feature_mean, z.double().mean(0))
    _close(ro.feature_scale[10:], z[:, 10:].double().std(0, unbiased=False))
    pred = ro.predict(model, data)
    assert pred.shape == (4, 10, 2)
    by_hand = ((z.double() - ro.feature_mean) / ro.feature_scale) @ ro.weight + ro.bias  # o = Wᵀ z̃ + b
    _close(pred.reshape(-1, 2), by_hand)
    raw = fit_readout(model, data, data, config=cfg, alphas=(0.5,), standardize=False)
    assert torch.equal(raw.feature_mean, torch.zeros(13, dtype=torch.float64))
    assert torch.equal(raw.feature_scale, torch.ones(13, dtype=torch.float64))
    w, b = ridge_fit(z, y, 0.5)
    _close(raw.weight, w, atol=1e-10)
    _close(raw.bias, b, atol=1e-10)
    last = fit_readout(model, data, data, kind="ridge", features="last", alphas=(1.0,))
    assert last.predict(model, data).shape == (4, 2)


def test_fit_readout_errors_name_the_option():
    reg = RegressionDataset(x=torch.rand(3, 5, 2), y=torch.rand(3, 5, 1), name="r")
    empty = reg.subset([], name="empty")
    model = _rsnn(2, 6)
    with pytest.raises(ConfigError, match="readout.kind"):
        fit_readout(model, reg, reg, kind="logistic")
    with pytest.raises(ConfigError, match="val"):
        fit_readout(model, reg, empty)
    assert fit_readout(model, reg, empty, alphas=(0.1,)).val_scores == {}
    with pytest.raises(ConfigError, match="options"):
        fit_readout(model, reg, reg, filter_tua=3.0)
    with pytest.raises(ConfigError, match="readout.layer"):
        fit_readout(model, reg, reg, layer=1)
    with pytest.raises(ConfigError, match="readout.alphas"):
        ReadoutFitConfig(alphas=(-1.0,))
    with pytest.raises(ConfigError, match="readout.decoder"):
        ReadoutFitConfig(decoder="gauss")
    with pytest.raises(ConfigError, match="readout.filter_tau"):
        ReadoutFitConfig(filter_tau=0)
    seq = _two_class_spikes(4, 0)
    with pytest.raises(ConfigError, match="readout.features"):
        fit_readout(_rsnn(8, 6), seq, seq, features="all")
    ro = fit_readout(model, reg, reg, alphas=(0.1,))
    with pytest.raises(ConfigError, match="data"):
        ro.evaluate(model, seq)
    assert ReadoutFitConfig(alphas=(0.1, 1.0, 0.1)).alphas == (1.0, 0.1)  # deduplicated, descending
    assert set(READOUT_KINDS) == {"ridge", "logistic"}
