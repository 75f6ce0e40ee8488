"""Sequential digits: an offline stand-in for (permuted) sequential MNIST.

MNIST cannot be downloaded offline, so this task uses the 1797 8×8 digit images shipped with scikit-learn
(``sklearn.datasets.load_digits``; pixel values 0..16) and reads each image as a sequence, as S-MNIST does
with 28×28 MNIST images.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import torch
from torch import Tensor

from hrsnn._validate import check_seed
from hrsnn.encoding import threshold_spikes
from hrsnn.errors import ConfigError
from hrsnn.tasks.base import (
    SequenceDataset,
    TaskSplits,
    _check_fraction,
    _is_int,
    _split_indices,
    _split_name,
)

__all__ = ["DIGITS_CLASSES", "DIGITS_MODES", "N_PIXELS", "digits_permutation", "load_digits_sequence"]

N_PIXELS = 64
"""Pixels per image (8×8)."""

DIGITS_CLASSES: tuple[str, ...] = tuple(str(d) for d in range(10))
"""Class names, in label order."""

_PIXEL_MAX = 16.0


def _encode_rows(pixels: Tensor, window: int) -> Tensor:
    """``(N, 64) → (N, 8, 8)``: step ``t`` is image row ``t`` (pixels ``8t .. 8t+7``)."""
    del window
    return pixels.reshape(pixels.shape[0], 8, 8)


def _encode_pixels(pixels: Tensor, window: int) -> Tensor:
    """``(N, 64) → (N, 64, 1)``: step ``t`` is pixel ``t`` in row-major order."""
    del window
    return pixels.unsqueeze(-1)


def _encode_windows(pixels: Tensor, window: int) -> Tensor:
    """``(N, 64) → (N, 64, w)``: step ``t`` holds pixels ``s_t .. s_t+w−1``, ``s_t = min(t, 64 − w)``."""
    starts = torch.clamp(torch.arange(N_PIXELS), max=N_PIXELS - window)
    index = starts.unsqueeze(1) + torch.arange(window).unsqueeze(0)  # (64, w)
    return pixels[:, index]


_ENCODERS: Mapping[str, Callable[[Tensor, int], Tensor]] = MappingProxyType(
    {"row": _encode_rows, "pixel": _encode_pixels, "window": _encode_windows}
)

DIGITS_MODES: tuple[str, ...] = tuple(_ENCODERS)
"""Accepted values of ``mode``."""


def digits_permutation(seed: int) -> Tensor:
    """The fixed pixel permutation of the permuted task: ``torch.randperm(64)`` from a ``seed``-ed generator.

    The permuted image is ``p'[k] = p[perm[k]]``; ``p = p'[argsort(perm)]`` undoes it.
    """
    seed = check_seed("permutation_seed", seed)
    return torch.randperm(N_PIXELS, generator=torch.Generator().manual_seed(seed))


def load_digits_sequence(
    *,
    mode: str = "row",
    permute: bool = False,
    val_fraction: float = 0.15,
    test_fraction: float = 0.2,
    seed: int = 0,
    permutation_seed: int | None = None,
    window: int = 4,
    binarize: float | None = None,
) -> TaskSplits:
    """Load scikit-learn's 8×8 digits as a sequence-classification task (offline S-MNIST / PS-MNIST proxy).

    Pixels are scaled ``p = v / 16`` into [0, 1] (``v`` in 0..16) and flattened row-major to 64 values. With
    ``permute``, ``p'[k] = p[perm[k]]`` for one fixed permutation (:func:`digits_permutation`). With
    ``binarize = θ``, ``p ← 1 if p > θ else 0`` (:func:`hrsnn.encoding.threshold_spikes`; as the authors'
    PS-MNIST ``pixel/255 > 0.1``). Then, by ``mode``:

    - ``"row"``: T = 8 steps of C = 8 pixels (image rows);
    - ``"pixel"``: T = 64 steps of C = 1 pixel (the sequential task);
    - ``"window"``: T = 64 steps of C = ``window`` consecutive pixels; step ``t`` holds pixels
      ``s_t .. s_t + window − 1`` with ``s_t = min(t, 64 − window)``, so the last steps reuse the final window
      (the authors' S-MNIST sliding window, stride 1).

    Splits are stratified and seeded: the test set takes ``⌊f_test·N + 1/2⌋`` images, then the validation set
    takes a fraction ``f_val / (1 − f_test)`` of the rest, so both fractions refer to the whole set (up to
    rounding; allocation per class as in :func:`~hrsnn.tasks.base.split_train_val`). With the defaults:
    test 359, val 270, train 1168.

    Args:
        mode: one of :data:`DIGITS_MODES`.
        permute: apply the fixed pixel permutation before sequencing.
        val_fraction: validation fraction of all images, in [0, 1).
        test_fraction: test fraction of all images, in [0, 1); ``val_fraction + test_fraction < 1``.
        seed: seed of the splits (and of the permutation when ``permutation_seed`` is None).
        permutation_seed: seed of the permutation.
        window: pixels per step in ``"window"`` mode, 1..64 (checked in every mode).
        binarize: threshold ``θ`` in [0, 1) turning pixels into {0, 1} spikes, or None for analog values.

    Returns:
        ``TaskSplits`` named ``digits/train``, ``digits/val``, ``digits/test`` with y of shape (N,);
        ``info`` holds ``classes``, ``mode``, ``window``, ``permutation`` (tuple or None), ``binarize``,
        ``source``, the split fractions, ``seed`` and ``train_indices``/``val_indices``/``test_indices``
        (positions in ``load_digits()``).

    Raises:
        ConfigError: naming the offending argument.
    """
    encoder = _ENCODERS.get(mode) if isinstance(mode, str) else None
    if encoder is None:
        raise ConfigError("mode", mode, f"must be one of {DIGITS_MODES}")
    if not isinstance(permute, bool):
        raise ConfigError("permute", permute, "must be a bool")
    val_frac = _check_fraction("val_fraction", val_fraction)
    test_frac = _check_fraction("test_fraction", test_fraction)
    if val_frac + test_frac >= 1.0:
        raise ConfigError("val_fraction", val_fraction, f"val_fraction + test_fraction ({test_fraction}) must be < 1")
    seed = check_seed("seed", seed)
    if permutation_seed is not None:
        permutation_seed = check_seed("permutation_seed", permutation_seed)
    if not _is_int(window) or not 1 <= window <= N_PIXELS:
        raise ConfigError("window", window, f"must be an int in [1, {N_PIXELS}]")
    if binarize is not None and (
        isinstance(binarize, bool) or not isinstance(binarize, int | float) or not 0.0 <= binarize < 1.0
    ):
        raise ConfigError("binarize", binarize, "must be None or a threshold in [0, 1)")

    from sklearn.datasets import load_digits  # imported here: scikit-learn is slow to import

    bunch = load_digits()
    pixels = torch.as_tensor(bunch.data, dtype=torch.float32) / _PIXEL_MAX  # (1797, 64)
    labels = torch.as_tensor(bunch.target, dtype=torch.long)
    perm: Tensor | None = None
    if permute:
        perm = digits_permutation(seed if permutation_seed is None else permutation_seed)
        pixels = pixels[:, perm]
    if binarize is not None:
        pixels = threshold_spikes(pixels, float(binarize))
    full = SequenceDataset(
        x=encoder(pixels, int(window)).contiguous(), y=labels, n_classes=len(DIGITS_CLASSES), name="digits"
    )

    gen = torch.Generator().manual_seed(seed)
    rest_idx, test_idx = _split_indices(labels, full.n_samples, test_frac, gen)
    rel_train, rel_val = _split_indices(labels[rest_idx], rest_idx.numel(), val_frac / (1.0 - test_frac), gen)
    train_idx, val_idx = rest_idx[rel_train], rest_idx[rel_val]
    info: dict[str, Any] = {
        "classes": DIGITS_CLASSES,
        "mode": mode,
        "window": int(window),
        "permutation": None if perm is None else tuple(perm.tolist()),
        "binarize": binarize,
        "source": "sklearn.datasets.load_digits (8x8, values 0..16, scaled by 1/16)",
        "val_fraction": val_frac,
        "test_fraction": test_frac,
        "seed": seed,
        "train_indices": tuple(train_idx.tolist()),
        "val_indices": tuple(val_idx.tolist()),
        "test_indices": tuple(test_idx.tolist()),
    }
    return TaskSplits(
        train=full.subset(train_idx, name=_split_name("digits", "train")),
        val=full.subset(val_idx, name=_split_name("digits", "val")),
        test=full.subset(test_idx, name=_split_name("digits", "test")),
        info=info,
    )
