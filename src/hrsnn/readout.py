r"""Readout-only training: a frozen RSNN as a spiking reservoir, with a linear readout (closed form or LBFGS).

Pipeline (:func:`fit_readout`):

1. **Run** the network without gradients over a data set and take the spike trains ``s`` ``(N, T, H)`` of one
   spiking layer (the last by default). Random initial states come from a ``torch.Generator`` seeded with
   ``config.seed``, so features are deterministic.
2. **Decode** spikes into analog features (:data:`DECODERS`): an exponential filter
   :math:`r_t = \lambda r_{t-1} + s_t` (:math:`r_{-1} = 0`, :math:`\lambda = e^{-1/\tau_f}`, :math:`\tau_f` in steps)
   or spike counts over the last ``w`` steps :math:`c_t = \sum_{k=\max(0, t-w+1)}^{t} s_k`. With
   ``include_input`` the raw input ``x_t`` is appended to the features of step ``t``.
3. **Select** feature steps (:data:`SELECTIONS`): every step ``t >= skip`` (per-step targets), the last step, or
   the time average over ``t >= skip`` (sequence targets). Targets are selected the same way.
4. **Standardise** features with the training mean and standard deviation (a constant feature gets scale 1).
5. **Fit** the readout for every α of a grid (:data:`READOUT_KINDS`) and keep the α with the best validation
   score (lowest NRMSE for regression, highest accuracy for classification; ties go to the larger α).

Readouts, with ``M`` selected training samples, standardised features ``z_m`` and parameters ``W, b``:

- ``"ridge"``: :math:`\min_{W,b} \frac{1}{M}\sum_m \lVert y_m - W^\top z_m - b\rVert^2 + \alpha \lVert W\rVert_F^2`
  (:func:`ridge_path`); regression targets, or one-hot class targets (prediction = arg-max).
- ``"logistic"``: multinomial logistic regression,
  :math:`\min_{W,b} \frac{1}{M}\sum_m -\log \mathrm{softmax}(W^\top z_m + b)_{y_m} + \frac{\alpha}{2}\lVert W\rVert_F^2`
  (:func:`logistic_fit`, full-batch LBFGS in float64 with a strong-Wolfe line search). This is scikit-learn's
  ``LogisticRegression`` objective with ``C = 1 / (α M)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from hrsnn.errors import ConfigError
from hrsnn.network import RSNN
from hrsnn.tasks.base import SequenceDataset
from hrsnn.tasks.chaotic import RegressionDataset, nrmse

__all__ = [
    "DECODERS",
    "READOUT_KINDS",
    "SELECTIONS",
    "FittedReadout",
    "ReadoutFitConfig",
    "collect_features",
    "exponential_trace",
    "fit_readout",
    "logistic_fit",
    "ridge_fit",
    "ridge_path",
    "select_steps",
    "window_count",
]

Dataset = SequenceDataset | RegressionDataset
"""Data sets a readout can be fitted to: class labels or real-valued per-step targets."""

DEFAULT_ALPHAS: tuple[float, ...] = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
"""Default regularisation grid (the LNP spec's 1e-6 … 1e0)."""


# ------------------------------------------------------------------------------------------------ decoders


def exponential_trace(spikes: Tensor, tau: float) -> Tensor:
    r"""Exponentially filtered spike trains along the time axis (dim 1).

    .. math:: r_t = \lambda r_{t-1} + s_t,\quad r_{-1} = 0,\quad \lambda = e^{-1/\tau}

    Args:
        spikes: ``(B, T, H)``.
        tau: filter time constant ``τ_f`` in steps (> 0).

    Returns:
        ``(B, T, H)`` traces, same dtype as ``spikes``.
    """
    tau = _check_positive_float("filter_tau", tau)
    lam = math.exp(-1.0 / tau)
    trace = torch.zeros_like(spikes[:, 0])
    out = []
    for s in spikes.unbind(1):
        trace = lam * trace + s
        out.append(trace)
    return torch.stack(out, 1)


def window_count(spikes: Tensor, window: int) -> Tensor:
    r"""Spike counts over the last ``w`` steps (dim 1), truncated at the start of the sequence.

    .. math:: c_t = \sum_{k=\max(0,\,t-w+1)}^{t} s_k

    Args:
        spikes: ``(B, T, H)``.
        window: ``w`` (>= 1).

    Returns:
        ``(B, T, H)`` counts, same dtype as ``spikes``.
    """
    window = _check_int("count_window", window, 1)
    csum = torch.cumsum(spikes, dim=1)
    shifted = torch.zeros_like(csum)
    if window < spikes.shape[1]:
        shifted[:, window:] = csum[:, :-window]
    return csum - shifted


def _decode_exp(spikes: Tensor, config: ReadoutFitConfig) -> Tensor:
    return exponential_trace(spikes, config.filter_tau)


def _decode_count(spikes: Tensor, config: ReadoutFitConfig) -> Tensor:
    return window_count(spikes, config.count_window)


DECODERS: Mapping[str, Callable[[Tensor, ReadoutFitConfig], Tensor]] = MappingProxyType(
    {"exp": _decode_exp, "count": _decode_count}
)
"""Read-only map from decoder name to ``f(spikes (B, T, H), config) -> features (B, T, H)``."""


# ------------------------------------------------------------------------------------------------ step selection


def _select_all(values: Tensor, skip: int) -> Tensor:
    return values[:, skip:].reshape(-1, values.shape[-1])


def _select_last(values: Tensor, skip: int) -> Tensor:
    del skip
    return values[:, -1]


def _select_mean(values: Tensor, skip: int) -> Tensor:
    return values[:, skip:].mean(dim=1)


SELECTIONS: Mapping[str, Callable[[Tensor, int], Tensor]] = MappingProxyType(
    {"all": _select_all, "last": _select_last, "mean": _select_mean}
)
"""Read-only map from feature-step selection to ``f(values (B, T, F), skip) -> (M, F)``.

``"all"``: steps ``t >= skip`` flattened sample-major (``M = B·(T − skip)``); ``"last"``: step ``T − 1``
(``M = B``); ``"mean"``: the average over steps ``t >= skip`` (``M = B``).
"""


def select_steps(values: Tensor, features: str, skip: int) -> Tensor:
    """Apply a :data:`SELECTIONS` entry to ``(B, T, F)`` values (see there).

    Raises:
        ConfigError: naming ``features`` or ``skip``.
    """
    if not isinstance(features, str) or features not in SELECTIONS:
        raise ConfigError("features", features, f"must be one of {tuple(SELECTIONS)}")
    skip = _check_int("skip", skip, 0)
    if values.dim() != 3:
        raise ConfigError("values", tuple(values.shape), "must have shape (B, T, F)")
    if skip >= values.shape[1]:
        raise ConfigError("skip", skip, f"must be < the sequence length {values.shape[1]}")
    return SELECTIONS[features](values, skip)


# ------------------------------------------------------------------------------------------------ configuration


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or int(value) < minimum:
        raise ConfigError(name, value, f"must be an int >= {minimum}")
    return int(value)


def _check_positive_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ConfigError(name, value, "must be a number > 0")
    if not math.isfinite(float(value)) or float(value) <= 0:
        raise ConfigError(name, value, "must be a finite number > 0")
    return float(value)


@dataclass(frozen=True)
class ReadoutFitConfig:
    """Options of :func:`fit_readout` (module docstring for the equations).

    Attributes:
        kind: a key of :data:`READOUT_KINDS`, or ``"auto"``: ridge for a :class:`RegressionDataset`, logistic
            for a :class:`SequenceDataset`.
        decoder: a key of :data:`DECODERS` (``"exp"`` or ``"count"``).
        filter_tau: ``τ_f`` of the exponential filter, in steps (> 0).
        count_window: ``w`` of the spike-count decoder, in steps (>= 1).
        features: a key of :data:`SELECTIONS`, or ``"auto"``: ``"all"`` for per-step targets, ``"mean"`` for
            one label per sequence.
        skip: leading steps left out of ``"all"`` and ``"mean"`` (washout of the initial state), >= 0.
        layer: index of the spiking layer whose spikes are decoded (negative counts from the end).
        include_input: append the raw input ``x_t`` to the decoded features.
        standardize: standardise features with the training statistics before fitting.
        alphas: the regularisation grid (values >= 0, at least one; stored deduplicated, in descending order).
        batch_size: sequences per forward pass.
        max_iter: LBFGS iterations per α (logistic).
        tol: LBFGS gradient tolerance (logistic).
        seed: seeds the generator of random initial states of the network.
    """

    kind: str = "auto"
    decoder: str = "exp"
    filter_tau: float = 20.0
    count_window: int = 20
    features: str = "auto"
    skip: int = 0
    layer: int = -1
    include_input: bool = False
    standardize: bool = True
    alphas: tuple[float, ...] = DEFAULT_ALPHAS
    batch_size: int = 256
    max_iter: int = 500
    tol: float = 1e-9
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or (self.kind != "auto" and self.kind not in READOUT_KINDS):
            raise ConfigError("readout.kind", self.kind, f"must be 'auto' or one of {tuple(READOUT_KINDS)}")
        if not isinstance(self.decoder, str) or self.decoder not in DECODERS:
            raise ConfigError("readout.decoder", self.decoder, f"must be one of {tuple(DECODERS)}")
        if not isinstance(self.features, str) or (self.features != "auto" and self.features not in SELECTIONS):
            raise ConfigError("readout.features", self.features, f"must be 'auto' or one of {tuple(SELECTIONS)}")
        object.__setattr__(self, "filter_tau", _check_positive_float("readout.filter_tau", self.filter_tau))
        for name, low in (("count_window", 1), ("skip", 0), ("batch_size", 1), ("max_iter", 1), ("seed", 0)):
            object.__setattr__(self, name, _check_int(f"readout.{name}", getattr(self, name), low))
        if isinstance(self.layer, bool) or not isinstance(self.layer, int | np.integer):
            raise ConfigError("readout.layer", self.layer, "must be an int")
        for name in ("include_input", "standardize"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"readout.{name}", getattr(self, name), "must be a bool")
        object.__setattr__(self, "tol", _check_positive_float("readout.tol", self.tol))
        alphas = self.alphas
        if isinstance(alphas, str | bytes) or not isinstance(alphas, Sequence) or len(alphas) == 0:
            raise ConfigError("readout.alphas", alphas, "must be a non-empty sequence of numbers >= 0")
        checked = []
        for a in alphas:
            if isinstance(a, bool) or not isinstance(a, int | float | np.integer | np.floating):
                raise ConfigError("readout.alphas", alphas, "must be a non-empty sequence of numbers >= 0")
            if not math.isfinite(float(a)) or float(a) < 0:
                raise ConfigError("readout.alphas", alphas, "must be a non-empty sequence of numbers >= 0")
            checked.append(float(a))
        object.__setattr__(self, "alphas", tuple(sorted(set(checked), reverse=True)))


# ------------------------------------------------------------------------------------------------ linear solvers


def _as_float64_2d(name: str, value: Tensor, rows: int | None = None) -> Tensor:
    if not isinstance(value, Tensor) or value.dim() != 2 or value.shape[0] < 1:
        raise ConfigError(name, getattr(value, "shape", value), "must be a 2-D tensor (M >= 1, F)")
    if rows is not None and value.shape[0] != rows:
        raise ConfigError(name, tuple(value.shape), f"needs M = {rows} rows like the features")
    return value.to(torch.float64)


def ridge_path(features: Tensor, targets: Tensor, alphas: Sequence[float]) -> list[tuple[Tensor, Tensor]]:
    r"""Ridge regression with an unpenalised intercept for every α of a grid, from one eigendecomposition.

    Minimises :math:`\frac{1}{M}\lVert Y - Z W - \mathbf{1} b^\top\rVert^2 + \alpha \lVert W\rVert_F^2`. With
    centred :math:`Z_c = Z - \mathbf 1\bar z^\top`, :math:`Y_c = Y - \mathbf 1\bar y^\top` and
    :math:`Z_c^\top Z_c = V \mathrm{diag}(g) V^\top` (``torch.linalg.eigh``, float64):

    .. math::

        W = V \,\mathrm{diag}\!\Big(\frac{1}{g + \alpha M}\Big) V^\top Z_c^\top Y_c
          = (Z_c^\top Z_c + \alpha M I)^{-1} Z_c^\top Y_c,\qquad b = \bar y - W^\top \bar z

    For ``α = 0`` eigenvalues below ``g_max · F · 1e-13`` are treated as zero (pseudo-inverse: the minimum-norm
    least-squares ``W``), so ``α → 0`` gives ordinary least squares.

    Args:
        features: ``Z``, ``(M, F)``.
        targets: ``Y``, ``(M, D)``.
        alphas: α values (>= 0).

    Returns:
        ``[(W (F, D), b (D,)), ...]`` in float64, one pair per α, in the order given.

    Raises:
        ConfigError: naming ``features``, ``targets`` or ``alphas``.
    """
    z = _as_float64_2d("features", features)
    y = _as_float64_2d("targets", targets, z.shape[0])
    m = z.shape[0]
    z_mean, y_mean = z.mean(0), y.mean(0)
    zc, yc = z - z_mean, y - y_mean
    g, v = torch.linalg.eigh(zc.T @ zc)
    g = g.clamp_min(0.0)
    proj = v.T @ (zc.T @ yc)  # (F, D)
    cutoff = float(g.max()) * z.shape[1] * 1e-13
    out = []
    for alpha in alphas:
        if isinstance(alpha, bool) or not math.isfinite(float(alpha)) or float(alpha) < 0:
            raise ConfigError("alphas", alpha, "every alpha must be a finite number >= 0")
        denom = g + float(alpha) * m
        inv = torch.where(denom > cutoff, 1.0 / denom.clamp_min(cutoff), torch.zeros_like(denom))
        w = v @ (inv[:, None] * proj)
        out.append((w, y_mean - z_mean @ w))
    return out


def ridge_fit(features: Tensor, targets: Tensor, alpha: float) -> tuple[Tensor, Tensor]:
    """Ridge regression for one α; see :func:`ridge_path` for the equations. Returns ``(W (F, D), b (D,))``."""
    return ridge_path(features, targets, (alpha,))[0]


def logistic_fit(
    features: Tensor,
    labels: Tensor,
    n_classes: int,
    alpha: float,
    *,
    init: tuple[Tensor, Tensor] | None = None,
    max_iter: int = 500,
    tol: float = 1e-9,
) -> tuple[Tensor, Tensor]:
    r"""Multinomial logistic regression with an L2 penalty on the weights (not the intercept), fitted by LBFGS.

    Minimises, in float64 with ``torch.optim.LBFGS`` (strong-Wolfe line search, full batch),

    .. math::

        J(W, b) = \frac{1}{M}\sum_{m} -\log \mathrm{softmax}(W^\top z_m + b)_{y_m} + \frac{\alpha}{2}\lVert W\rVert_F^2

    whose minimiser satisfies :math:`\frac{1}{M} Z^\top (P - \mathrm{onehot}(y)) + \alpha W = 0` and
    :math:`\mathbf 1^\top (P - \mathrm{onehot}(y)) = 0` (``P`` the softmax probabilities). With ``α > 0``
    ``W`` is unique (its columns sum to zero); ``b`` is unique up to a constant added to every class.

    Args:
        features: ``Z``, ``(M, F)``.
        labels: long ``(M,)`` in ``[0, n_classes)``.
        n_classes: number of classes ``K`` (>= 2).
        alpha: α (>= 0).
        init: starting ``(W, b)`` (warm start), zeros when None.
        max_iter: LBFGS iterations (>= 1).
        tol: gradient tolerance (> 0).

    Returns:
        ``(W (F, K), b (K,))`` in float64.

    Raises:
        ConfigError: naming ``features``, ``labels``, ``n_classes``, ``alpha`` or ``init``.
    """
    z = _as_float64_2d("features", features)
    n_classes = _check_int("n_classes", n_classes, 2)
    if not isinstance(labels, Tensor) or labels.shape != (z.shape[0],) or labels.dtype != torch.long:
        raise ConfigError("labels", getattr(labels, "shape", labels), f"must be a long tensor of shape ({z.shape[0]},)")
    if int(labels.min()) < 0 or int(labels.max()) >= n_classes:
        raise ConfigError("labels", (int(labels.min()), int(labels.max())), f"must lie in [0, {n_classes})")
    if isinstance(alpha, bool) or not math.isfinite(float(alpha)) or float(alpha) < 0:
        raise ConfigError("alpha", alpha, "must be a finite number >= 0")
    shape = (z.shape[1], n_classes)
    if init is None:
        w0, b0 = torch.zeros(shape, dtype=torch.float64), torch.zeros(n_classes, dtype=torch.float64)
    else:
        w0, b0 = init
        if tuple(w0.shape) != shape or tuple(b0.shape) != (n_classes,):
            raise ConfigError("init", (tuple(w0.shape), tuple(b0.shape)), f"must be shapes ({shape}, ({n_classes},))")
    w = w0.detach().clone().to(torch.float64).requires_grad_(True)
    b = b0.detach().clone().to(torch.float64).requires_grad_(True)
    opt = torch.optim.LBFGS(
        [w, b],
        lr=1.0,
        max_iter=_check_int("max_iter", max_iter, 1),
        tolerance_grad=_check_positive_float("tol", tol),
        tolerance_change=1e-14,
        history_size=20,
        line_search_fn="strong_wolfe",
    )
    half_alpha = 0.5 * float(alpha)

    def closure() -> Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(z @ w + b, labels) + half_alpha * (w * w).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return w.detach(), b.detach()


# ------------------------------------------------------------------------------------------------ features


def _resolve_layer(model: RSNN, layer: int) -> int:
    n = len(model.layers)
    if not -n <= layer < n:
        raise ConfigError("readout.layer", layer, f"must index one of the model's {n} spiking layers")
    return layer % n


def _check_dataset(name: str, data: Any) -> Dataset:
    if not isinstance(data, SequenceDataset | RegressionDataset):
        raise ConfigError(name, type(data).__name__, "must be a SequenceDataset or a RegressionDataset")
    return data


@torch.no_grad()
def collect_features(model: RSNN, data: Dataset, config: ReadoutFitConfig) -> tuple[Tensor, Tensor]:
    """Run ``model`` over ``data`` and return decoded, selected features and the matching targets.

    ``config.features`` must be resolved (not ``"auto"``). Targets: regression ``y`` selected like the features
    (float, ``(M, D)``); per-step labels ``y[:, skip:]`` flattened (long, ``(M,)``, needs ``"all"``); one label
    per sequence unchanged (long, ``(N,)``, needs ``"last"`` or ``"mean"``). The model's train/eval mode is
    restored afterwards.

    Returns:
        ``(features (M, F) float32 on CPU, targets on CPU)``; ``F = H`` (+ ``C`` with ``include_input``).

    Raises:
        ConfigError: naming ``readout.features``, ``readout.layer``, ``readout.skip`` or ``input``.
    """
    data = _check_dataset("data", data)
    sel = config.features
    if sel not in SELECTIONS:
        raise ConfigError("readout.features", sel, f"must be resolved to one of {tuple(SELECTIONS)}")
    sequence_labels = isinstance(data, SequenceDataset) and not data.per_step
    if sequence_labels and sel == "all":
        raise ConfigError("readout.features", sel, "one label per sequence needs 'last' or 'mean'")
    if isinstance(data, SequenceDataset) and data.per_step and sel != "all":
        raise ConfigError("readout.features", sel, "per-step labels need 'all'")
    if config.skip >= data.n_steps:
        raise ConfigError("readout.skip", config.skip, f"must be < the sequence length {data.n_steps}")
    layer = _resolve_layer(model, config.layer)
    device = model.device
    generator = torch.Generator(device=device).manual_seed(config.seed)
    was_training = model.training
    model.eval()
    feats, targets = [], []
    try:
        for x, y in data.batches(config.batch_size, shuffle=False):
            x_dev = x.to(device)
            spikes = model(x_dev, generator=generator).layer_spikes[layer]
            decoded = DECODERS[config.decoder](spikes.float(), config)
            if config.include_input:
                decoded = torch.cat([decoded, x_dev.float()], dim=-1)
            feats.append(SELECTIONS[sel](decoded, config.skip).cpu())
            if sequence_labels:
                targets.append(y.cpu())
            elif y.dim() == 2:
                targets.append(y[:, config.skip :].reshape(-1).cpu())
            else:
                targets.append(SELECTIONS[sel](y, config.skip).cpu())
    finally:
        model.train(was_training)
    width = model.layers[layer].size + (data.n_channels if config.include_input else 0)
    if not feats:
        return torch.zeros(0, width), data.y.new_zeros((0, *data.y.shape[2:])).cpu()
    return torch.cat(feats), torch.cat(targets)


# ------------------------------------------------------------------------------------------------ readout kinds


def _one_hot(labels: Tensor, n_classes: int) -> Tensor:
    return F.one_hot(labels, n_classes).to(torch.float64)


def _fit_ridge(
    z: Tensor, targets: Tensor, n_classes: int | None, config: ReadoutFitConfig
) -> list[tuple[Tensor, Tensor]]:
    y = targets.to(torch.float64) if n_classes is None else _one_hot(targets, n_classes)
    return ridge_path(z, y, config.alphas)


def _fit_logistic(
    z: Tensor, targets: Tensor, n_classes: int | None, config: ReadoutFitConfig
) -> list[tuple[Tensor, Tensor]]:
    if n_classes is None:
        raise ConfigError("readout.kind", "logistic", "needs class labels (a SequenceDataset), not regression targets")
    path, init = [], None
    for alpha in config.alphas:  # descending: each fit warm-starts from the more regularised one
        init = logistic_fit(z, targets, max(n_classes, 2), alpha, init=init, max_iter=config.max_iter, tol=config.tol)
        path.append(init)
    return path


READOUT_KINDS: Mapping[str, Callable[[Tensor, Tensor, int | None, ReadoutFitConfig], list[tuple[Tensor, Tensor]]]] = (
    MappingProxyType({"ridge": _fit_ridge, "logistic": _fit_logistic})
)
"""Read-only map from readout kind to ``f(features, targets, n_classes or None, config) -> [(W, b) per α]``."""


# ------------------------------------------------------------------------------------------------ fitted readout


@dataclass(frozen=True, eq=False)
class FittedReadout:
    r"""A linear readout fitted on a frozen network's decoded spikes (module docstring).

    Outputs are :math:`o = W^\top \tilde z + b` with standardised features
    :math:`\tilde z = (z - \mu) / \sigma`; a regression prediction is ``o``, a class prediction ``argmax o``.

    Attributes:
        config: the resolved options (``kind`` and ``features`` never ``"auto"``).
        weight: ``W``, float64 ``(F, D)`` (``D = K`` classes for classification).
        bias: ``b``, float64 ``(D,)``.
        feature_mean, feature_scale: ``μ`` and ``σ`` (``(F,)``; zeros and ones without standardisation).
        alpha: the selected α.
        n_classes: number of classes, or None for regression.
        val_scores: validation score per α (NRMSE for regression, accuracy for classification; empty when the
            grid has one α and no validation data).
    """

    config: ReadoutFitConfig
    weight: Tensor
    bias: Tensor
    feature_mean: Tensor
    feature_scale: Tensor
    alpha: float
    n_classes: int | None
    val_scores: Mapping[float, float]

    @property
    def is_classifier(self) -> bool:
        """True for a classification readout."""
        return self.n_classes is not None

    def _check_data(self, data: Any) -> Dataset:
        data = _check_dataset("data", data)
        if isinstance(data, SequenceDataset) != self.is_classifier:
            want = "a SequenceDataset" if self.is_classifier else "a RegressionDataset"
            raise ConfigError("data", type(data).__name__, f"this readout was fitted on {want}")
        return data

    def _outputs(self, model: RSNN, data: Dataset) -> tuple[Tensor, Tensor]:
        z, targets = collect_features(model, data, self.config)
        if z.shape[1] != self.weight.shape[0]:
            raise ConfigError(
                "model", z.shape[1], f"gives that many features; the readout needs {self.weight.shape[0]}"
            )
        out = ((z.to(torch.float64) - self.feature_mean) / self.feature_scale) @ self.weight + self.bias
        return out, targets

    def _shape(self, values: Tensor, data: Dataset) -> Tensor:
        if self.config.features == "all":
            return values.reshape(data.n_samples, data.n_steps - self.config.skip, *values.shape[1:])
        return values

    def scores(self, model: RSNN, data: Dataset) -> Tensor:
        """Raw readout outputs ``o`` (logits for logistic), float64.

        Shapes: ``(N, T − skip, D)`` with ``features="all"``, else ``(N, D)``.
        """
        data = self._check_data(data)
        return self._shape(self._outputs(model, data)[0], data)

    def predict(self, model: RSNN, data: Dataset) -> Tensor:
        """Predictions: values ``o`` (regression, float64) or class indices ``argmax o`` (long).

        Shapes: regression ``(N, T − skip, D)`` / ``(N, D)``; classification ``(N, T − skip)`` / ``(N,)``.
        """
        data = self._check_data(data)
        out = self._outputs(model, data)[0]
        return self._shape(out.argmax(-1) if self.is_classifier else out, data)

    def evaluate(self, model: RSNN, data: Dataset) -> dict[str, float]:
        """Score on ``data``: ``{"accuracy"}`` for classification; ``{"nrmse", "rmse"}`` for regression.

        ``nrmse`` is :func:`hrsnn.tasks.chaotic.nrmse` over the pooled selected steps (per target dimension,
        normalised by the std of that dimension's targets, then averaged); ``rmse`` is the root of the mean
        squared error over all steps and dimensions. Both also report ``n_samples`` (selected rows) and ``alpha``.

        Raises:
            ConfigError: naming ``data`` when it is empty or of the wrong kind.
        """
        data = self._check_data(data)
        if data.n_samples == 0:
            raise ConfigError("data", data.name, "is empty")
        out, targets = self._outputs(model, data)
        metrics = {"n_samples": float(out.shape[0]), "alpha": self.alpha}
        if self.is_classifier:
            metrics["accuracy"] = float((out.argmax(-1) == targets).double().mean())
        else:
            t = targets.to(torch.float64)
            metrics["nrmse"] = nrmse(out, t)
            metrics["rmse"] = float(torch.sqrt(torch.mean((out - t) ** 2)))
        return metrics


def _val_score(out: Tensor, targets: Tensor, classifier: bool) -> float:
    """Higher is better: accuracy, or −NRMSE."""
    if classifier:
        return float((out.argmax(-1) == targets).double().mean())
    return -nrmse(out, targets.to(torch.float64))


def fit_readout(
    model: RSNN, train: Dataset, val: Dataset, *, config: ReadoutFitConfig | None = None, **options: Any
) -> FittedReadout:
    """Fit a linear readout on the frozen ``model`` (module docstring), choosing α on ``val``.

    Args:
        model: the network; its weights are not changed (no gradients are taken).
        train: training data (a :class:`SequenceDataset` or a :class:`RegressionDataset`).
        val: validation data of the same kind; may be empty only when ``alphas`` has one value.
        config: the options; None for the defaults.
        **options: fields of :class:`ReadoutFitConfig` overriding ``config`` (e.g. ``kind="ridge"``,
            ``filter_tau=10.0``, ``alphas=(1e-3, 1e-1)``).

    Returns:
        The :class:`FittedReadout` with the best validation score (ties: the larger α).

    Raises:
        ConfigError: naming the bad option or data set.
    """
    base = ReadoutFitConfig() if config is None else config
    if not isinstance(base, ReadoutFitConfig):
        raise ConfigError("config", type(base).__name__, "must be a ReadoutFitConfig")
    unknown = sorted(set(options) - set(ReadoutFitConfig.__dataclass_fields__))
    if unknown:
        raise ConfigError("options", unknown[0], "is not a ReadoutFitConfig field")
    train, val = _check_dataset("train", train), _check_dataset("val", val)
    if type(val) is not type(train):
        raise ConfigError("val", type(val).__name__, f"must be a {type(train).__name__} like train")
    if train.n_samples == 0:
        raise ConfigError("train", train.name, "is empty")
    if not isinstance(model, RSNN):
        raise ConfigError("model", type(model).__name__, "must be an RSNN")
    cfg = replace(base, **options)
    per_step = train.per_step
    cfg = replace(
        cfg,
        kind=("ridge" if isinstance(train, RegressionDataset) else "logistic") if cfg.kind == "auto" else cfg.kind,
        features=("all" if per_step else "mean") if cfg.features == "auto" else cfg.features,
    )
    if len(cfg.alphas) > 1 and val.n_samples == 0:
        raise ConfigError("val", val.name, f"is empty; choosing among {len(cfg.alphas)} alphas needs validation data")
    n_classes = train.n_classes if isinstance(train, SequenceDataset) else None

    z_train, y_train = collect_features(model, train, cfg)
    z64 = z_train.to(torch.float64)
    if cfg.standardize:
        mean, scale = z64.mean(0), z64.std(0, unbiased=False)
        scale = torch.where(scale > 1e-12, scale, torch.ones_like(scale))
    else:
        mean, scale = torch.zeros(z64.shape[1], dtype=torch.float64), torch.ones(z64.shape[1], dtype=torch.float64)
    path = READOUT_KINDS[cfg.kind]((z64 - mean) / scale, y_train, n_classes, cfg)

    best, scores = 0, {}
    if val.n_samples > 0:
        z_val, y_val = collect_features(model, val, cfg)
        z_val = (z_val.to(torch.float64) - mean) / scale
        values = [_val_score(z_val @ w + b, y_val, n_classes is not None) for w, b in path]
        scores = {alpha: (v if n_classes is not None else -v) for alpha, v in zip(cfg.alphas, values, strict=True)}
        best = max(range(len(values)), key=lambda i: (values[i], -i))  # alphas are descending: ties → larger α
    weight, bias = path[best]
    return FittedReadout(
        config=cfg,
        weight=weight,
        bias=bias,
        feature_mean=mean,
        feature_scale=scale,
        alpha=cfg.alphas[best],
        n_classes=n_classes,
        val_scores=MappingProxyType(scores),
    )
