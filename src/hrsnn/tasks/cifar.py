"""CIFAR-10 image classification from the python pickle batches, as spike trains or pixel sequences.

Files: ``<data root>/cifar10/cifar-10-batches-py/`` with ``data_batch_1`` .. ``data_batch_5`` (50,000 training
images) and ``test_batch`` (10,000), as unpacked from the official ``cifar-10-python.tar.gz`` (``hrsnn data fetch
cifar10``). Each batch is a pickled dict: ``b"data"`` a uint8 array ``(10000, 3072)`` (per image the 1024 red, then
1024 green, then 1024 blue values of the 32×32 pixels, row-major) and ``b"labels"`` a list of ints in 0..9. The
batches are read with a restricted unpickler (:func:`read_cifar_batch`) that rebuilds only dicts, lists, strings
and numpy arrays, so a tampered file cannot run code.

Encodings (built per batch, see :func:`load_cifar10`): Bernoulli rate frames (the LNP image task's best reading,
spec lnp.md §1.5), image rows, or pixels.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hrsnn._validate import check_int, check_real, check_seed
from hrsnn.encoding import bernoulli_spikes, rate_probability
from hrsnn.errors import ConfigError, DataFormatError, DataNotFoundError
from hrsnn.tasks.base import LazySequenceDataset, TaskSplits, _check_fraction, _split_indices, _split_name
from hrsnn.tasks.files import DatasetFiles, RemoteFile, locate
from hrsnn.tasks.mnist import PixelSequenceSource

__all__ = [
    "CIFAR10_CLASSES",
    "CIFAR10_ENCODINGS",
    "CIFAR10_FILES",
    "RateFrameSource",
    "load_cifar10",
    "read_cifar_batch",
]

CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
"""Class names, in label order."""

CIFAR10_FILES = DatasetFiles(
    name="cifar10",
    folder="cifar10",
    files=(
        RemoteFile(
            "cifar-10-batches-py",
            "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
            "md5:c58f30108f718f92721af3b95e74349a",
            unpack="untar",
            size=186_000_000,
        ),
    ),
    description="CIFAR-10 (50,000 train / 10,000 test 32x32 colour images, python pickle batches): the LNP image task",
    homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
)
"""The python version of CIFAR-10: one archive unpacking to the folder ``cifar-10-batches-py``."""

TRAIN_BATCHES: tuple[str, ...] = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
N_VALUES = 3072  # 32 × 32 pixels × 3 colours
_SIDE = 32


# ------------------------------------------------------------------------------------------------ pickle batches


def _latin1_encode(text: str, encoding: str) -> bytes:
    """``_codecs.encode`` as protocol-2 pickles written by Python 3 use it for bytes (latin-1 only)."""
    if encoding != "latin1" or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refused _codecs.encode({type(text).__name__}, {encoding!r})")
    return text.encode("latin1")


_RECONSTRUCT = np.empty(0).__reduce__()[0]  # numpy's array-unpickling helper, wherever this numpy keeps it

_ALLOWED: Mapping[tuple[str, str], Callable[..., Any]] = MappingProxyType(
    {
        ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,  # the original batches (numpy 1)
        ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,  # pickles written with numpy 2
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
    }
)


class _BatchUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds only numpy arrays (besides the built-in dicts, lists, strings and numbers)."""

    def find_class(self, module: str, name: str) -> Any:
        found = _ALLOWED.get((module, name))
        if found is None:
            allowed = ", ".join(f"{m}.{n}" for m, n in _ALLOWED)
            raise pickle.UnpicklingError(f"it refers to {module}.{name}, which is refused (allowed: {allowed})")
        return found


def read_cifar_batch(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 python batch without running code from the file.

    The pickle (protocol 2, bytes or str keys) may refer only to numpy's array reconstruction
    (``numpy.core.multiarray._reconstruct``, ``numpy.ndarray``, ``numpy.dtype``) and to ``_codecs.encode`` with
    latin-1; anything else (e.g. ``os.system``) is refused before it is called.

    Returns:
        ``(data, labels)``: uint8 ``(N, 3072)`` and int64 ``(N,)`` in 0..9.

    Raises:
        DataFormatError: naming the file: unreadable, truncated, not a pickle, a refused reference, or contents
            that are not a CIFAR-10 batch (keys, dtype, shape, label range, counts).
    """
    path = Path(path)
    role = "CIFAR-10 batch"
    try:
        with path.open("rb") as handle:
            batch = _BatchUnpickler(handle, encoding="bytes").load()
    except OSError as exc:
        raise DataFormatError(role, str(path), f"cannot be read: {exc.strerror or exc}") from exc
    except EOFError as exc:
        raise DataFormatError(role, str(path), "is truncated (the pickle ends early)") from exc
    except (pickle.UnpicklingError, ValueError, TypeError, IndexError, KeyError, AttributeError, OverflowError) as exc:
        raise DataFormatError(role, str(path), f"cannot be unpickled: {exc}") from exc
    if not isinstance(batch, dict):
        raise DataFormatError(role, str(path), f"holds a {type(batch).__name__}, not a dict")
    entries = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    missing = [key for key in ("data", "labels") if key not in entries]
    if missing:
        raise DataFormatError(role, str(path), f"lacks the keys {missing} (has {sorted(map(str, entries))})")
    data = entries["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != N_VALUES:
        got = (type(data).__name__, getattr(data, "dtype", None), getattr(data, "shape", None))
        raise DataFormatError(role, str(path), f"has data {got}, expected a uint8 array (N, {N_VALUES})")
    try:
        labels = np.asarray(entries["labels"], dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise DataFormatError(role, str(path), f"has labels that are not integers ({exc})") from exc
    if labels.shape != (data.shape[0],):
        raise DataFormatError(role, str(path), f"has {labels.size} labels for {data.shape[0]} images")
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) > 9):
        raise DataFormatError(role, str(path), f"has labels in [{labels.min()}, {labels.max()}], not 0..9")
    return np.ascontiguousarray(data), labels


def _read_batches(folder: Path, names: tuple[str, ...], n_limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The batches ``names`` of ``folder`` concatenated, stopping once ``n_limit`` images are read."""
    data, labels, have = [], [], 0
    for name in names:
        path = folder / name
        if not path.is_file():
            expected = ", ".join((*TRAIN_BATCHES, TEST_BATCH))
            raise DataNotFoundError(
                f"CIFAR-10 batch {name!r} not found in {folder} (it should hold {expected}); fetch the data set "
                "again with `hrsnn data fetch cifar10`"
            )
        x, y = read_cifar_batch(path)
        data.append(x)
        labels.append(y)
        have += len(y)
        if n_limit is not None and have >= n_limit:
            break
    return np.concatenate(data)[:n_limit], np.concatenate(labels)[:n_limit]


# ------------------------------------------------------------------------------------------------ rate frames


@dataclass(frozen=True, eq=False)
class RateFrameSource:
    r"""Images as Bernoulli rate-coded spike frames, built per batch (a :class:`~hrsnn.tasks.base.SequenceSource`).

    Value ``v`` (0..255) of channel ``c`` fires at each of ``T`` steps with probability
    :math:`p_c = \min(g \, v_c / 255, 1)` (:func:`hrsnn.encoding.rate_probability`, then
    :func:`~hrsnn.encoding.bernoulli_spikes`; for small ``p`` a Poisson process of rate ``p`` per step). The
    draws of the sample at position ``i`` come from ``numpy.random.default_rng([seed, i])``, so a sample's spikes
    are the same in every batch, epoch and worker.

    Attributes:
        pixels: uint8 ``(N, D)``; channel ``d`` of every step is value ``d`` (CIFAR-10: colour-plane major,
            ``d = colour·1024 + row·32 + column``).
        n_steps: frames ``T`` per image (>= 1).
        gain: ``g > 0``, the spike probability of a full-intensity value (clipped at 1).
        seed: seed of the draws, in ``[0, 2**64)``.

    Raises:
        ConfigError: naming the bad attribute.
    """

    pixels: np.ndarray
    n_steps: int
    gain: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        px = self.pixels
        if not isinstance(px, np.ndarray) or px.dtype != np.uint8 or px.ndim != 2 or px.shape[1] < 1:
            got = (type(px).__name__, getattr(px, "dtype", None), getattr(px, "shape", None))
            raise ConfigError("pixels", got, "must be a uint8 numpy array (N, D) with D >= 1")
        object.__setattr__(self, "n_steps", check_int("n_steps", self.n_steps, 1))
        object.__setattr__(self, "gain", check_real("gain", self.gain, low=0.0, strict=True))
        object.__setattr__(self, "seed", check_seed("seed", self.seed))

    @property
    def n_channels(self) -> int:
        """Input channels per step ``D``."""
        return int(self.pixels.shape[1])

    def __len__(self) -> int:
        return int(self.pixels.shape[0])

    def load(self, indices: np.ndarray) -> Tensor:
        """float32 ``(len(indices), T, D)`` spikes in {0, 1} of the images at these positions."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        p = rate_probability(torch.from_numpy(self.pixels[idx]).to(torch.float32) / 255.0, max_rate=self.gain)
        out = torch.empty((len(idx), self.n_steps, self.n_channels), dtype=torch.float32)
        for row, position in enumerate(idx.tolist()):
            out[row] = bernoulli_spikes(p[row], np.random.default_rng([self.seed, position]), n_steps=self.n_steps)
        return out


# ------------------------------------------------------------------------------------------------ loader


def _pixels_rgb(data: np.ndarray) -> np.ndarray:
    """``(N, 3072)`` colour planes → ``(N, 1024, 3)``: pixel ``r·32 + c`` holds its (red, green, blue)."""
    return np.ascontiguousarray(data.reshape(-1, 3, _SIDE * _SIDE).transpose(0, 2, 1))


CIFAR10_ENCODINGS: tuple[str, ...] = ("rate", "row", "pixel")
"""Accepted values of ``encoding`` in :func:`load_cifar10`."""


def load_cifar10(
    *,
    data_dir: str | os.PathLike[str] | None = None,
    encoding: str = "rate",
    n_steps: int = 50,
    gain: float = 1.0,
    val_fraction: float = 0.1,
    seed: int = 0,
    n_limit: int | None = None,
    workers: int = 0,
) -> TaskSplits:
    r"""CIFAR-10 as a sequence-classification task, built per batch.

    Encodings:

    - ``"rate"``: ``n_steps`` Bernoulli frames of 3072 channels, :math:`p = \min(g \, v/255, 1)` per step
      (:class:`RateFrameSource`, seeded per sample with ``seed``); the LNP spec's best reading of its image input
      (T = 50–100).
    - ``"row"``: 32 steps of 96 analog values ``v/255``: step ``r`` is image row ``r``, channel ``3·c + k`` colour
      ``k`` (red, green, blue) of column ``c``.
    - ``"pixel"``: 1024 steps of 3 analog values: step ``t`` is pixel ``t`` (row-major), channels (red, green, blue).

    Splits: the validation set is a seeded, stratified ``val_fraction`` of the 50,000 training images
    (:func:`~hrsnn.tasks.base.split_train_val`'s allocation); the test set is the official ``test_batch``.

    Args:
        data_dir: the data root holding ``cifar10/cifar-10-batches-py/`` (else ``$HRSNN_DATA`` or the default
            roots, see :func:`hrsnn.tasks.files.locate`).
        encoding: one of :data:`CIFAR10_ENCODINGS`.
        n_steps: frames per image for ``"rate"`` (>= 1; checked in every encoding).
        gain: spike probability of a full-intensity value for ``"rate"`` (> 0, clipped at 1).
        val_fraction: validation fraction of the training images, in [0, 1).
        seed: seed of the split and of the spikes.
        n_limit: keep only the first ``n_limit`` (>= 1) training and test images, for quick runs; None for all.
        workers: DataLoader worker processes building batches.

    Returns:
        ``TaskSplits`` of :class:`~hrsnn.tasks.base.LazySequenceDataset` named ``cifar10/train`` etc. (``index``:
        positions in the concatenated training batches or in the test batch); ``info`` holds the classes, the
        encoding and its parameters, and the folder read.

    Raises:
        ConfigError: naming the bad argument.
        DataNotFoundError: the folder or one of its batches is missing.
        DataFormatError: a batch is truncated, not a CIFAR-10 batch, or refers to anything but numpy arrays.
    """
    if encoding not in CIFAR10_ENCODINGS:
        raise ConfigError("encoding", encoding, f"must be one of {CIFAR10_ENCODINGS}")
    n_steps = check_int("n_steps", n_steps, 1)
    gain = check_real("gain", gain, low=0.0, strict=True)
    val_frac = _check_fraction("val_fraction", val_fraction)
    seed = check_seed("seed", seed)
    if n_limit is not None:
        n_limit = check_int("n_limit", n_limit, 1)
    workers = check_int("workers", workers, 0)
    folder = locate(CIFAR10_FILES, "cifar-10-batches-py", data_dir)
    train_x, train_y = _read_batches(folder, TRAIN_BATCHES, n_limit)
    test_x, test_y = _read_batches(folder, (TEST_BATCH,), n_limit)

    def source_of(data: np.ndarray) -> RateFrameSource | PixelSequenceSource:
        if encoding == "rate":
            return RateFrameSource(data, n_steps, gain=gain, seed=seed)
        if encoding == "row":
            return PixelSequenceSource(_pixels_rgb(data), mode="row", width=_SIDE)
        return PixelSequenceSource(_pixels_rgb(data), mode="pixel")

    train_source, test_source = source_of(train_x), source_of(test_x)
    kept, held = _split_indices(torch.as_tensor(train_y), len(train_y), val_frac, torch.Generator().manual_seed(seed))
    n_classes = len(CIFAR10_CLASSES)
    parts = {
        part: LazySequenceDataset.from_source(
            src, labels[pos], _split_name("cifar10", part), index=pos, n_classes=n_classes, workers=workers
        )
        for part, src, labels, pos in (
            ("train", train_source, train_y, kept.numpy()),
            ("val", train_source, train_y, held.numpy()),
            ("test", test_source, test_y, np.arange(len(test_y))),
        )
    }
    info: dict[str, Any] = {
        "classes": CIFAR10_CLASSES,
        "encoding": encoding,
        "n_steps": n_steps if encoding == "rate" else train_source.n_steps,
        "gain": gain if encoding == "rate" else None,
        "folder": str(folder),
        "n_limit": n_limit,
        "val_fraction": val_frac,
        "seed": seed,
    }
    return TaskSplits(train=parts["train"], val=parts["val"], test=parts["test"], info=info)
