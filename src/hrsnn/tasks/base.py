"""In-memory sequence data sets, train/validation splitting and data-directory lookup.

Every task loader returns a :class:`TaskSplits` of three :class:`SequenceDataset` objects. All tensors are
batch-first: ``x`` is ``(N, T, C)`` float32 and ``y`` is ``(N,)`` (one label per sequence) or ``(N, T)``
(one label per step), dtype long.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol, Self, TypeVar

import numpy as np
import torch
from torch import Tensor

from hrsnn._validate import check_seed
from hrsnn.errors import ConfigError, DataNotFoundError
from hrsnn.tasks.files import DATA_ENV_VAR, candidate_roots

__all__ = [
    "DATA_ENV_VAR",
    "LazySequenceDataset",
    "SequenceDataset",
    "SequenceSource",
    "TaskSplits",
    "resolve_data_dir",
    "split_indices",
    "split_train_val",
]


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _as_index(indices: Sequence[int] | Tensor | np.ndarray, n: int, device: torch.device) -> Tensor:
    """Validated long index tensor from integer positions in ``[0, n)`` or a boolean mask of length ``n``."""
    idx = indices if isinstance(indices, Tensor) else torch.as_tensor(np.asarray(indices))
    if idx.dim() != 1:
        raise ConfigError("indices", tuple(idx.shape), "must be one-dimensional")
    if idx.dtype == torch.bool:
        if idx.numel() != n:
            raise ConfigError("indices", idx.numel(), f"a boolean mask needs length N = {n}")
        idx = torch.nonzero(idx.cpu(), as_tuple=False).flatten()
    elif idx.numel() == 0:
        idx = torch.zeros(0, dtype=torch.long)
    elif idx.dtype.is_floating_point or idx.dtype.is_complex:
        raise ConfigError("indices", idx.dtype, "must be integers or a boolean mask")
    idx = idx.to(device=device, dtype=torch.long)
    if idx.numel() > 0:
        low, high = int(idx.min()), int(idx.max())
        if low < 0 or high >= n:
            raise ConfigError("indices", (low, high), f"must lie in [0, {n}) (min, max shown)")
    return idx


def nonfinite_reason(values: Tensor | np.ndarray, axes: tuple[str, ...]) -> str | None:
    """None when every entry of ``values`` is finite; else a phrase giving the count and the first bad entry.

    ``axes`` names the dimensions, e.g. ``("sample", "step", "channel")`` gives "holds 2 non-finite values (NaN
    or inf); the first is inf at sample 3, step 4, channel 2" (first in row-major order).
    """
    if isinstance(values, np.ndarray):
        if values.dtype.kind != "f":
            return None
        values = values.astype(values.dtype.newbyteorder("="), copy=False)  # torch reads native byte order only
    x = torch.as_tensor(values)
    if not torch.is_floating_point(x):
        return None
    bad = ~torch.isfinite(x)
    if not bool(bad.any()):
        return None
    count = int(bad.sum())
    flat = int(torch.argmax(bad.flatten().to(torch.uint8)))  # the first True in row-major order
    where = ", ".join(f"{axis} {i}" for axis, i in zip(axes, np.unravel_index(flat, tuple(x.shape)), strict=True))
    noun = "value" if count == 1 else "values"
    return f"holds {count} non-finite {noun} (NaN or inf); the first is {x.flatten()[flat].item()} at {where}"


def check_finite(field_name: str, values: Tensor, axes: tuple[str, ...]) -> None:
    """Raise :class:`ConfigError` naming ``field_name`` and the first NaN/inf entry (see :func:`nonfinite_reason`)."""
    reason = nonfinite_reason(values, axes)
    if reason is not None:
        raise ConfigError(field_name, tuple(values.shape), reason)


def check_inputs(x: Any) -> None:
    """Validate the inputs ``x`` of an in-memory data set: a float32 tensor (N, T, C) with T, C >= 1, all finite."""
    if not isinstance(x, Tensor):
        raise ConfigError("dataset.x", type(x).__name__, "must be a torch.Tensor")
    if x.dim() != 3:
        raise ConfigError("dataset.x", tuple(x.shape), "must have shape (N, T, C)")
    if x.shape[1] < 1 or x.shape[2] < 1:
        raise ConfigError("dataset.x", tuple(x.shape), "needs T >= 1 steps and C >= 1 channels")
    if x.dtype != torch.float32:
        raise ConfigError("dataset.x", x.dtype, "must be float32")
    check_finite("dataset.x", x, ("sample", "step", "channel"))


def _check_batching(batch_size: Any, shuffle: bool, generator: Any) -> None:
    """The arguments of a data set's ``batches``: ``batch_size`` an int >= 1, a generator when shuffling."""
    if not _is_int(batch_size) or batch_size < 1:
        raise ConfigError("batch_size", batch_size, "must be an int >= 1")
    if shuffle and not isinstance(generator, torch.Generator):
        raise ConfigError("generator", generator, "shuffle=True needs an explicit torch.Generator")


class InMemorySequences:
    """Shared behaviour of the in-memory data sets (a frozen dataclass with fields ``x``, ``y`` and ``name``):
    sizes, ``subset``, ``to`` and mini-batch iteration."""

    x: Tensor
    y: Tensor
    name: str

    @property
    def n_samples(self) -> int:
        """Number of sequences ``N``."""
        return int(self.x.shape[0])

    @property
    def n_steps(self) -> int:
        """Sequence length ``T``."""
        return int(self.x.shape[1])

    @property
    def n_channels(self) -> int:
        """Input channels per step ``C``."""
        return int(self.x.shape[2])

    def __len__(self) -> int:
        return self.n_samples

    def subset(self, indices: Sequence[int] | Tensor | np.ndarray, *, name: str | None = None) -> Self:
        """Return the sequences at ``indices`` (in that order) as a new data set.

        Args:
            indices: integer positions in ``[0, N)``, or a boolean mask of length ``N``.
            name: name of the result; the current name when None.

        Raises:
            ConfigError: naming ``indices`` when they are not 1-D integers in range.
        """
        idx = _as_index(indices, self.n_samples, self.x.device)
        return replace(  # type: ignore[type-var]
            self,
            x=self.x.index_select(0, idx),
            y=self.y.index_select(0, idx),
            name=self.name if name is None else name,
        )

    def to(self, device: torch.device | str) -> Self:
        """Return a copy with ``x`` and ``y`` on ``device``."""
        return replace(self, x=self.x.to(device), y=self.y.to(device))  # type: ignore[type-var]

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """Iterate once over the data set in mini-batches ``(x_b, y_b)``.

        Batches hold ``batch_size`` sequences each, the last one possibly fewer (dropped when ``drop_last``).
        With ``shuffle`` the order is ``torch.randperm(N, generator=generator)``, so the same generator state
        gives the same order; without it the order is ``0, 1, ..., N-1``.

        Args:
            batch_size: sequences per batch (>= 1).
            shuffle: draw a fresh random order (needs ``generator``).
            generator: the source of randomness for ``shuffle``.
            drop_last: skip a final batch smaller than ``batch_size``.

        Raises:
            ConfigError: naming ``batch_size`` or ``generator`` (shuffle without a generator).
        """
        _check_batching(batch_size, shuffle, generator)
        order: Tensor | None = None
        if shuffle and generator is not None:
            order = torch.randperm(self.n_samples, generator=generator, device=generator.device).to(self.x.device)
        return self._iter_batches(int(batch_size), order, drop_last)

    def _iter_batches(self, batch_size: int, order: Tensor | None, drop_last: bool) -> Iterator[tuple[Tensor, Tensor]]:
        n = self.n_samples
        stop = n - n % batch_size if drop_last else n
        for start in range(0, stop, batch_size):
            end = min(start + batch_size, n)
            if order is None:
                yield self.x[start:end], self.y[start:end]
            else:
                idx = order[start:end]
                yield self.x.index_select(0, idx), self.y.index_select(0, idx)


@dataclass(frozen=True, eq=False)
class SequenceDataset(InMemorySequences):
    """A batch-first set of sequences held in memory.

    Attributes:
        x: inputs, finite float32 tensor ``(N, T, C)`` with ``T >= 1`` and ``C >= 1`` (``N`` may be 0).
        y: long labels, ``(N,)`` for sequence classification or ``(N, T)`` for per-step labels, each in
            ``[0, n_classes)``; on the same device as ``x``.
        n_classes: number of classes (>= 1).
        name: a short name, e.g. ``"qtdb/train"``.

    Raises:
        ConfigError: naming ``dataset.x``, ``dataset.y``, ``dataset.n_classes`` or ``dataset.name``.
    """

    x: Tensor
    y: Tensor
    n_classes: int
    name: str

    def __post_init__(self) -> None:
        x, y = self.x, self.y
        check_inputs(x)
        if not isinstance(y, Tensor):
            raise ConfigError("dataset.y", type(y).__name__, "must be a torch.Tensor")
        if y.dtype != torch.long:
            raise ConfigError("dataset.y", y.dtype, "must be long (int64)")
        if y.dim() not in (1, 2):
            raise ConfigError("dataset.y", tuple(y.shape), "must have shape (N,) or (N, T)")
        if y.shape[0] != x.shape[0]:
            raise ConfigError("dataset.y", tuple(y.shape), f"needs N = {x.shape[0]} rows like dataset.x")
        if y.dim() == 2 and y.shape[1] != x.shape[1]:
            raise ConfigError("dataset.y", tuple(y.shape), f"per-step labels need T = {x.shape[1]} steps")
        if y.device != x.device:
            raise ConfigError("dataset.y", str(y.device), f"must be on the device of dataset.x ({x.device})")
        if not _is_int(self.n_classes) or self.n_classes < 1:
            raise ConfigError("dataset.n_classes", self.n_classes, "must be an int >= 1")
        if y.numel() > 0:
            low, high = int(y.min()), int(y.max())
            if low < 0 or high >= self.n_classes:
                raise ConfigError(
                    "dataset.y", (low, high), f"labels must lie in [0, {self.n_classes}) (min, max shown)"
                )
        if not isinstance(self.name, str):
            raise ConfigError("dataset.name", self.name, "must be a str")

    @property
    def per_step(self) -> bool:
        """True when ``y`` holds one label per step ``(N, T)``."""
        return self.y.dim() == 2


class SequenceSource(Protocol):
    """Compact storage that builds input sequences per batch (HDF5 spike events, uint8 images, ...).

    Sources are pickled into DataLoader worker processes: they hold paths and arrays, never open file handles.
    """

    @property
    def n_steps(self) -> int:
        """Sequence length ``T``."""
        ...

    @property
    def n_channels(self) -> int:
        """Input channels per step ``C``."""
        ...

    def __len__(self) -> int: ...

    def load(self, indices: np.ndarray) -> Tensor:
        """float32 ``(len(indices), T, C)``: the sequences at these positions of the source."""
        ...


class _IndexBatches(torch.utils.data.Dataset[Tensor | ConfigError | OSError]):
    """Batch ``k`` is ``source.load(chunks[k])`` (what a DataLoader worker computes). A bad-input error is returned,
    not raised, so that the main process re-raises it as it is (DataLoader would wrap it in a RuntimeError)."""

    def __init__(self, source: SequenceSource, chunks: list[np.ndarray]) -> None:
        self.source = source
        self.chunks = chunks

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, k: int) -> Tensor | ConfigError | OSError:
        try:
            return self.source.load(self.chunks[k])
        except (ConfigError, OSError) as exc:
            return exc


@dataclass(frozen=True, eq=False)
class LazySequenceDataset:
    """A batch-first set of sequences built per batch from a :class:`SequenceSource` (for data sets whose dense
    ``(N, T, C)`` tensor does not fit in memory: SSC, S-MNIST with a window, CIFAR-10 frames).

    The same interface as :class:`SequenceDataset` without ``x``: sizes, ``subset``, ``to`` and ``batches``.
    Every batch is checked (shape, float32, finite) as it is built; a bad one raises naming the data set and
    sample.

    Attributes:
        source: the storage.
        y: long labels ``(N,)`` (or ``(N, T)`` per step) of the selected samples, in memory (CPU).
        n_classes: number of classes (>= 1).
        name: a short name, e.g. ``"shd/train"``.
        index: long ``(N,)`` positions in ``source`` of this set's samples.
        workers: DataLoader worker processes building batches (0: in this process).
        device: where batches are delivered.
    """

    source: SequenceSource
    y: Tensor
    n_classes: int
    name: str
    index: Tensor
    workers: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        for attr in ("n_steps", "n_channels", "load"):
            if not hasattr(self.source, attr):
                raise ConfigError("dataset.source", type(self.source).__name__, f"has no {attr!r} (a SequenceSource)")
        if not isinstance(self.y, Tensor) or self.y.dtype != torch.long or self.y.dim() not in (1, 2):
            raise ConfigError("dataset.y", getattr(self.y, "shape", self.y), "must be a long tensor (N,) or (N, T)")
        if not isinstance(self.index, Tensor) or self.index.dtype != torch.long or self.index.dim() != 1:
            raise ConfigError("dataset.index", getattr(self.index, "shape", self.index), "must be a long tensor (N,)")
        if self.index.shape[0] != self.y.shape[0]:
            raise ConfigError("dataset.y", tuple(self.y.shape), f"needs N = {self.index.shape[0]} rows like the index")
        if self.index.numel() and (int(self.index.min()) < 0 or int(self.index.max()) >= len(self.source)):
            raise ConfigError("dataset.index", int(self.index.max()), f"must lie in [0, {len(self.source)})")
        if not _is_int(self.n_classes) or self.n_classes < 1:
            raise ConfigError("dataset.n_classes", self.n_classes, "must be an int >= 1")
        if self.y.numel() and (int(self.y.min()) < 0 or int(self.y.max()) >= self.n_classes):
            raise ConfigError(
                "dataset.y", (int(self.y.min()), int(self.y.max())), f"labels must lie in [0, {self.n_classes})"
            )
        if not _is_int(self.workers) or self.workers < 0:
            raise ConfigError("dataset.workers", self.workers, "must be an int >= 0")

    @classmethod
    def from_source(
        cls,
        source: SequenceSource,
        y: Tensor | np.ndarray,
        name: str,
        *,
        index: Tensor | np.ndarray | None = None,
        n_classes: int | None = None,
        workers: int = 0,
    ) -> LazySequenceDataset:
        """The samples ``index`` (all of ``source`` when None) with labels ``y``; ``n_classes`` defaults to
        ``max(y) + 1``."""
        labels = torch.as_tensor(np.asarray(y)).to(torch.long)
        idx = torch.arange(len(source)) if index is None else torch.as_tensor(np.asarray(index)).to(torch.long)
        if n_classes is None:
            n_classes = int(labels.max()) + 1 if labels.numel() else 1
        return cls(source, labels, n_classes, name, idx, workers)

    @property
    def n_samples(self) -> int:
        """Number of sequences ``N``."""
        return int(self.index.shape[0])

    @property
    def n_steps(self) -> int:
        """Sequence length ``T``."""
        return int(self.source.n_steps)

    @property
    def n_channels(self) -> int:
        """Input channels per step ``C``."""
        return int(self.source.n_channels)

    @property
    def per_step(self) -> bool:
        """True when ``y`` holds one label per step ``(N, T)``."""
        return self.y.dim() == 2

    def __len__(self) -> int:
        return self.n_samples

    def subset(self, indices: Sequence[int] | Tensor | np.ndarray, *, name: str | None = None) -> Self:
        """The samples at ``indices`` (positions in this set, or a boolean mask), in that order."""
        idx = _as_index(indices, self.n_samples, torch.device("cpu"))
        return replace(
            self, y=self.y.index_select(0, idx), index=self.index.index_select(0, idx), name=name or self.name
        )

    def to(self, device: torch.device | str) -> Self:
        """The same set delivering its batches on ``device``."""
        return replace(self, device=str(torch.device(device)))

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """Iterate once in mini-batches ``(x_b, y_b)``, in the order and sizes of
        :meth:`SequenceDataset.batches` (the same generator state gives the same order); batches are built by
        ``workers`` DataLoader processes when ``workers > 0``, in order.

        Raises:
            ConfigError: naming ``batch_size`` or ``generator``; naming the data set and sample when the source
                builds a batch of the wrong shape or dtype or with a NaN/inf.
        """
        _check_batching(batch_size, shuffle, generator)
        n = self.n_samples
        order = torch.randperm(n, generator=generator) if shuffle and generator is not None else torch.arange(n)
        stop = n - n % batch_size if drop_last else n
        chunks = [order[s : min(s + batch_size, n)] for s in range(0, stop, batch_size)]
        return self._iter_batches(chunks)

    def _iter_batches(self, chunks: list[Tensor]) -> Iterator[tuple[Tensor, Tensor]]:
        positions = [self.index[c].numpy() for c in chunks]
        if self.workers > 0 and len(chunks) > 1:
            loader = torch.utils.data.DataLoader(
                _IndexBatches(self.source, positions), batch_size=None, num_workers=self.workers
            )
            built: Iterator[Tensor | ConfigError | OSError] = iter(loader)
        else:
            built = (self.source.load(p) for p in positions)
        for chunk, pos, x in zip(chunks, positions, built, strict=True):
            if isinstance(x, ConfigError | OSError):
                raise x
            self._check_batch(x, pos)
            yield x.to(self.device), self.y[chunk].to(self.device)

    def _check_batch(self, x: Any, positions: np.ndarray) -> None:
        want = (len(positions), self.n_steps, self.n_channels)
        if not isinstance(x, Tensor) or tuple(x.shape) != want or x.dtype != torch.float32:
            got = (type(x).__name__, tuple(getattr(x, "shape", ())), getattr(x, "dtype", None))
            raise ConfigError(f"{self.name} batch", got, f"the source must build float32 {want}")
        if bool(torch.isfinite(x.sum())):  # one pass; the full scan only when a NaN/inf (or an overflow) shows
            return
        reason = nonfinite_reason(x, ("batch row", "step", "channel"))
        if reason is not None:
            raise ConfigError(f"{self.name} samples", positions.tolist()[:8], f"the built batch {reason}")


_D = TypeVar("_D", "SequenceDataset", "LazySequenceDataset")


def check_splits(splits: Any, kind: type, shared: tuple[str, ...]) -> None:
    """Validate a frozen train/val/test container and freeze its ``info``.

    Every part must be a ``kind``; ``val`` and ``test`` must agree with ``train`` on the ``shared`` attributes.

    Raises:
        ConfigError: naming ``splits.<part>`` or ``splits.info``.
    """
    for part in ("train", "val", "test"):
        ds = getattr(splits, part)
        if not isinstance(ds, kind):
            raise ConfigError(f"splits.{part}", type(ds).__name__, f"must be a {kind.__name__}")
    want = tuple(getattr(splits.train, name) for name in shared)
    for part in ("val", "test"):
        got = tuple(getattr(getattr(splits, part), name) for name in shared)
        if got != want:
            raise ConfigError(f"splits.{part}", got, f"({', '.join(shared)}) must match train {want}")
    if not isinstance(splits.info, Mapping):
        raise ConfigError("splits.info", type(splits.info).__name__, "must be a Mapping")
    object.__setattr__(splits, "info", MappingProxyType(dict(splits.info)))


@dataclass(frozen=True, eq=False)
class TaskSplits:
    """The train, validation and test sets of one task, plus read-only metadata.

    Attributes:
        train: training sequences (all three parts in memory, or all three lazy).
        val: validation sequences (may be empty, see :func:`split_train_val`).
        test: test sequences.
        info: read-only metadata (class names, encoding, source paths, split indices, ...).

    Raises:
        ConfigError: naming ``splits.<part>`` when a part is not a :class:`SequenceDataset` or its
            shape/classes differ from ``train``, or ``splits.info`` when it is not a mapping.
    """

    train: SequenceDataset | LazySequenceDataset
    val: SequenceDataset | LazySequenceDataset
    test: SequenceDataset | LazySequenceDataset
    info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        kind = LazySequenceDataset if isinstance(self.train, LazySequenceDataset) else SequenceDataset
        check_splits(self, kind, ("n_steps", "n_channels", "n_classes", "per_step"))

    @property
    def n_classes(self) -> int:
        """Number of classes (shared by all splits)."""
        return self.train.n_classes

    @property
    def n_channels(self) -> int:
        """Input channels per step (shared by all splits)."""
        return self.train.n_channels


def _check_fraction(field_name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise ConfigError(field_name, value, "must be a number in [0, 1)")
    frac = float(value)
    if not 0.0 <= frac < 1.0:
        raise ConfigError(field_name, value, "must be in [0, 1)")
    return frac


def _round_half_up(value: float) -> int:
    return math.floor(value + 0.5)


def _stratified_quota(counts: Sequence[int], fraction: float) -> list[int]:
    """Per-class sizes of the held-out part (largest-remainder allocation).

    With class sizes ``n_c`` and ``N = Σ n_c``, the held-out size is ``m = ⌊f·N + 1/2⌋``; class ``c`` first
    gets ``⌊f·n_c⌋``, then the ``m − Σ⌊f·n_c⌋`` left over go one each to the classes with the largest
    remainders ``f·n_c − ⌊f·n_c⌋`` (ties: lower class index first), skipping a class whose quota would reach
    ``n_c``, so every non-empty class keeps at least one sequence.
    """
    exact = [fraction * n for n in counts]
    quota = [math.floor(e) for e in exact]
    left = _round_half_up(fraction * sum(counts)) - sum(quota)
    ranked = sorted(range(len(counts)), key=lambda c: (-(exact[c] - quota[c]), c))
    for c in ranked:
        if left <= 0:
            break
        if quota[c] + 1 < counts[c]:
            quota[c] += 1
            left -= 1
    return quota


def _split_indices(labels: Tensor | None, n: int, fraction: float, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Seeded split of ``range(n)`` into (kept, held-out) index tensors, each sorted ascending.

    With ``labels`` (one per item) the split is stratified by :func:`_stratified_quota`: the held-out items of
    class ``c`` are the first ``quota_c`` of a random permutation of that class. Without labels the held-out
    part is the first ``min(⌊f·n + 1/2⌋, n − 1)`` items of ``torch.randperm(n)``.
    """
    if labels is None:
        take = min(_round_half_up(fraction * n), max(n - 1, 0))
        perm = torch.randperm(n, generator=generator)
        held = perm[:take]
    else:
        labels = labels.cpu()
        n_classes = int(labels.max()) + 1 if labels.numel() else 0
        counts = torch.bincount(labels, minlength=n_classes).tolist()
        quota = _stratified_quota(counts, fraction)
        parts = []
        for c in range(n_classes):
            members = torch.nonzero(labels == c, as_tuple=False).flatten()
            perm = torch.randperm(members.numel(), generator=generator)
            parts.append(members[perm[: quota[c]]])
        held = torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)
    mask = torch.zeros(n, dtype=torch.bool)
    mask[held] = True
    return torch.nonzero(~mask).flatten(), torch.nonzero(mask).flatten()


def _split_name(name: str, part: str) -> str:
    return f"{name}/{part}"


def split_indices(
    ds: SequenceDataset | LazySequenceDataset, val_fraction: float, seed: int
) -> tuple[Tensor, Tensor]:
    """Index form of :func:`split_train_val`: sorted ``(train_indices, val_indices)`` into ``ds``."""
    frac = _check_fraction("val_fraction", val_fraction)
    seed = check_seed("seed", seed)
    if not isinstance(ds, SequenceDataset | LazySequenceDataset):
        raise ConfigError("ds", type(ds).__name__, "must be a SequenceDataset or a LazySequenceDataset")
    gen = torch.Generator().manual_seed(seed)
    labels = None if ds.per_step else ds.y
    return _split_indices(labels, ds.n_samples, frac, gen)


def split_train_val(ds: _D, val_fraction: float, seed: int) -> tuple[_D, _D]:
    """Split ``ds`` into seeded, disjoint training and validation sets.

    Sequence-level labels (``y`` of shape ``(N,)``): stratified. The validation set holds
    ``m = ⌊f·N + 1/2⌋`` sequences; class ``c`` with ``n_c`` members contributes ``⌊f·n_c⌋`` plus one more
    for the classes with the largest remainders ``f·n_c − ⌊f·n_c⌋`` until ``m`` is reached, never taking a
    class's last member (so ``m`` can fall short for tiny classes). Per-step labels (``(N, T)``): the first
    ``min(⌊f·N + 1/2⌋, N − 1)`` of a seeded random permutation.

    Both parts keep the original order of ``ds`` and are named ``"<name>/train"`` and ``"<name>/val"``.
    ``val_fraction = 0`` (or a fraction too small to round to one sequence) gives an *empty* validation set of
    shape ``(0, T, C)``: it iterates to nothing, so callers should skip validation (or validate on test) when
    ``val.n_samples == 0``; the training set is then all of ``ds``.

    Args:
        ds: the data set to split.
        val_fraction: fraction ``f`` of sequences for validation, ``0 <= f < 1``.
        seed: int in ``[0, 2**64)`` seeding a ``torch.Generator``; the same seed gives the same split.

    Raises:
        ConfigError: naming ``val_fraction``, ``seed`` or ``ds``.
    """
    train_idx, val_idx = split_indices(ds, val_fraction, seed)
    return (
        ds.subset(train_idx, name=_split_name(ds.name, "train")),
        ds.subset(val_idx, name=_split_name(ds.name, "val")),
    )


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Find the data root (the folder that holds ``qtdb/``, ``srnn/``, ...).

    The candidates and their order come from :func:`hrsnn.tasks.files.candidate_roots`: the ``data_dir``
    argument; else the ``HRSNN_DATA`` environment variable (when set and non-empty); else ``../shared/data``
    relative to the current working directory, ``../shared/data`` relative to the repository of an editable
    install, and ``~/.hrsnn/data`` (where ``hrsnn data fetch`` downloads by default). An explicit argument or
    environment variable is authoritative: when it names a missing folder the lookup fails rather than falling
    back silently. Among the default locations the first existing one wins.

    Returns:
        The folder as an absolute, resolved path.

    Raises:
        ConfigError: naming ``data_dir`` when it is not a non-empty path.
        DataNotFoundError: when no candidate folder exists; the message lists every path tried.
    """
    roots = candidate_roots(data_dir)
    for root in roots:
        if root.is_dir():
            return root.resolve()
    tried = ", ".join(str(p) for p in roots)
    if data_dir is not None:
        raise DataNotFoundError(
            f"data folder {str(data_dir)!r} given by --data-dir (data_dir= in Python) does not exist (tried "
            f"{tried}); give the folder that holds the task data (e.g. qtdb/), or leave it unset and set "
            f"${DATA_ENV_VAR}"
        )
    env = os.environ.get(DATA_ENV_VAR, "")
    if env:
        raise DataNotFoundError(
            f"data folder given by ${DATA_ENV_VAR}={env!r} does not exist (tried {tried}); point "
            f"${DATA_ENV_VAR} or --data-dir (data_dir= in Python) to the folder that holds the task data (e.g. qtdb/)"
        )
    raise DataNotFoundError(
        f"no data folder found (tried {tried}); download a data set with `hrsnn data fetch NAME`, or give the "
        f"folder that holds the task data (e.g. qtdb/) with --data-dir (data_dir= in Python) or set ${DATA_ENV_VAR}"
    )
