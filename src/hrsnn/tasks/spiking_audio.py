"""Spiking Heidelberg Digits (SHD) and Spiking Speech Commands (SSC) from the Zenke-lab HDF5 files.

Both data sets (Cramer et al. 2022) ship as HDF5 files of one layout: ``spikes/times`` (one variable-length float
array per sample, in seconds), ``spikes/units`` (one variable-length uint16 array per sample: cochlea channels
0..699), ``labels`` (uint16, one per sample) and ``extra/`` metadata (``extra/keys``: class names,
``extra/speaker``, ...). SHD has ``shd_train.h5`` (8,156 samples) and ``shd_test.h5`` (2,264), 20 classes; SSC has
``ssc_train.h5``, ``ssc_valid.h5`` and ``ssc_test.h5``, 35 classes.

A sample's spikes become a dense ``(T, C)`` frame (:class:`SpikeBinning`, the SRNN preprocessing by default) only
when a batch is built (:class:`SpikeH5Source`): SSC's dense training tensor would take 53 GB, its spike events a
small fraction of that. An optional on-disk cache keeps each sample's binned frame as its sorted non-zero positions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

import h5py
import numpy as np
import torch
from torch import Tensor

from hrsnn._validate import check_int, check_seed
from hrsnn.errors import ConfigError, DataFormatError, DataNotFoundError
from hrsnn.tasks.base import (
    LazySequenceDataset,
    TaskSplits,
    _check_fraction,
    _split_name,
    split_indices,
)
from hrsnn.tasks.files import DatasetFiles, RemoteFile, locate

__all__ = [
    "SHD_FILES",
    "SHD_N_CLASSES",
    "SRNN_BINNING",
    "SRNN_ICONS_BINNING",
    "SSC_FILES",
    "SSC_N_CLASSES",
    "SpikeBinning",
    "SpikeH5Source",
    "load_shd",
    "load_ssc",
]

_ZENKE = "https://zenkelab.org/datasets"
_ZENKE_MD5 = f"list:{_ZENKE}/md5sums.txt"


def _zenke_file(name: str) -> RemoteFile:
    return RemoteFile(name, f"{_ZENKE}/{name}.gz", _ZENKE_MD5, "gunzip")


SHD_FILES = DatasetFiles(
    name="shd",
    folder="shd",
    files=(_zenke_file("shd_train.h5"), _zenke_file("shd_test.h5")),
    description="Spiking Heidelberg Digits: spoken digits 0-9 (English, German) as 700-channel cochlea spikes",
    homepage="https://zenkelab.org/resources/spiking-heidelberg-datasets-shd/",
)
"""The SHD files (``<data root>/shd/shd_{train,test}.h5``), gzipped on the Zenke lab's server."""

SSC_FILES = DatasetFiles(
    name="ssc",
    folder="ssc",
    files=tuple(_zenke_file(f"ssc_{part}.h5") for part in ("train", "valid", "test")),
    description="Spiking Speech Commands: 35 spoken command words as 700-channel cochlea spikes",
    homepage="https://zenkelab.org/resources/spiking-heidelberg-datasets-shd/",
)
"""The SSC files (``<data root>/ssc/ssc_{train,valid,test}.h5``), gzipped on the Zenke lab's server."""

SHD_N_CLASSES = 20
SSC_N_CLASSES = 35
_N_UNITS = 700

TimeRule = Literal["srnn", "floor"]
ChannelRule = Literal["srnn", "identity"]


@dataclass(frozen=True)
class SpikeBinning:
    """How one sample's spike events ``(t_k, u_k)`` become a ``(n_steps, n_channels)`` frame.

    The defaults are the SRNN preprocessing (``SHD/generate_dataset.py``; spec §4.2): dt = 4 ms, 250 steps.

    Time rule (which step a spike at ``t`` seconds lands in):

    - ``"srnn"``: with edges ``e_i = fl(i·dt)`` (``i·dt`` in float64, rounded to the float type of the file's
      times, the precision in which the authors' ``times <= i*dt`` compares), step ``i`` holds the spikes with
      ``t ≤ e_i`` not already in an earlier step: step 0 holds ``t ≤ 0``, step ``i`` holds ``e_{i−1} < t ≤ e_i``,
      and spikes with ``t > e_{T−1}`` (after 0.996 s for the defaults) are dropped.
    - ``"floor"``: step ``⌊t/dt⌋`` (computed in float64) for ``0 ≤ t/dt < T``; other spikes (``t < 0`` or after
      the window) are dropped. The common binning of event libraries (Tonic's ``ToFrame``).

    Channel rule (which column unit ``u`` lands in; units must lie in ``[0, n_channels)``):

    - ``"srnn"``: column ``n_channels − u`` for ``u > 0`` (the frequency axis reversed); unit 0 is dropped, so
      column 0 stays empty.
    - ``"identity"``: column ``u``, every unit kept.

    Value: ``binary=True`` (the SRNN's) puts 1 where a step and column hold at least one spike (repeated spikes
    collapse to 1); ``binary=False`` puts the spike count there.

    The ICONS variant of the SRNN paper is ``SpikeBinning(dt=1e-2, n_steps=100)`` (:data:`SRNN_ICONS_BINNING`).

    Raises:
        ConfigError: naming ``binning.<field>``.
    """

    dt: float = 4e-3
    n_steps: int = 250
    n_channels: int = _N_UNITS
    time_rule: TimeRule = "srnn"
    channel_rule: ChannelRule = "srnn"
    binary: bool = True

    def __post_init__(self) -> None:
        dt = self.dt
        if isinstance(dt, bool) or not isinstance(dt, int | float | np.floating | np.integer):
            raise ConfigError("binning.dt", dt, "must be a number of seconds > 0")
        if not (math.isfinite(dt) and dt > 0):
            raise ConfigError("binning.dt", dt, "must be a finite number of seconds > 0")
        object.__setattr__(self, "dt", float(dt))
        object.__setattr__(self, "n_steps", check_int("binning.n_steps", self.n_steps, 1))
        object.__setattr__(self, "n_channels", check_int("binning.n_channels", self.n_channels, 1))
        if self.time_rule not in ("srnn", "floor"):
            raise ConfigError("binning.time_rule", self.time_rule, "must be 'srnn' or 'floor'")
        if self.channel_rule not in ("srnn", "identity"):
            raise ConfigError("binning.channel_rule", self.channel_rule, "must be 'srnn' or 'identity'")
        if not isinstance(self.binary, bool):
            raise ConfigError("binning.binary", self.binary, "must be True (0/1 frames) or False (spike counts)")

    @property
    def frame_size(self) -> int:
        """Entries of one frame, ``n_steps · n_channels``."""
        return self.n_steps * self.n_channels

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-able dict."""
        return asdict(self)

    def describe(self) -> str:
        """One line stating the rules with their numbers."""
        last = (self.n_steps - 1) * self.dt
        if self.time_rule == "srnn":
            time = f"step i holds the spikes with t <= i*{self.dt:g} s not in an earlier step (step 0: t <= 0)"
            time += f", spikes after {last:g} s dropped"
        else:
            time = f"step floor(t/{self.dt:g} s) for 0 <= t < {self.n_steps * self.dt:g} s, other spikes dropped"
        if self.channel_rule == "srnn":
            chan = f"unit u > 0 in column {self.n_channels} - u, unit 0 dropped"
        else:
            chan = "unit u in column u"
        value = "1 where a step and column hold a spike" if self.binary else "spike counts"
        return f"{self.n_steps} steps of {self.dt:g} s; {time}; {chan}; {value}"

    def steps(self, times: np.ndarray) -> np.ndarray:
        """Step of each spike time (int64), ``n_steps`` for a dropped spike."""
        if self.time_rule == "srnn":
            edges = (np.arange(self.n_steps, dtype=np.float64) * self.dt).astype(times.dtype)
            return np.searchsorted(edges, times, side="left").astype(np.int64, copy=False)
        step = np.floor(times.astype(np.float64) / self.dt)
        step[(step < 0) | (step >= self.n_steps)] = self.n_steps
        return step.astype(np.int64)

    def columns(self, units: np.ndarray) -> np.ndarray:
        """Column of each unit (int64), −1 for a dropped unit."""
        u = units.astype(np.int64)
        if self.channel_rule == "identity":
            return u
        return np.where(u > 0, self.n_channels - u, -1)

    def flat_indices(self, times: np.ndarray, units: np.ndarray) -> np.ndarray:
        """``step · n_channels + column`` of every kept spike (int64, repeats kept, in the spikes' order).

        Raises:
            ConfigError: naming ``times`` or ``units`` when they differ in length, are not 1-D floats and
                integers, hold a NaN/inf time or a unit outside ``[0, n_channels)``.
        """
        times, units = np.asarray(times), np.asarray(units)
        _check_spikes(times, units, self.n_channels)
        step, col = self.steps(times), self.columns(units)
        keep = (step < self.n_steps) & (col >= 0)
        return step[keep] * self.n_channels + col[keep]

    def dense(self, times: np.ndarray, units: np.ndarray) -> np.ndarray:
        """The float32 ``(n_steps, n_channels)`` frame of one sample (see the class docstring)."""
        out = np.zeros(self.frame_size, dtype=np.float32)
        self._fill(out, self.flat_indices(times, units))
        return out.reshape(self.n_steps, self.n_channels)

    def _fill(self, out: np.ndarray, flat: np.ndarray) -> None:
        """Write one frame's flat spike positions into the zeroed flat row ``out``."""
        if self.binary:
            out[flat] = 1.0
        else:
            out[:] = np.bincount(flat, minlength=self.frame_size)


SRNN_BINNING = SpikeBinning()
"""The SRNN (NMI) preprocessing of SHD and SSC: 4 ms steps, 250 of them, binary, reversed channels."""

SRNN_ICONS_BINNING = SpikeBinning(dt=1e-2, n_steps=100)
"""The ICONS variant: 10 ms steps, 100 of them, otherwise as :data:`SRNN_BINNING`."""


def _check_spikes(times: np.ndarray, units: np.ndarray, n_channels: int) -> None:
    """Raise ConfigError naming ``times`` or ``units`` unless they are one sample's valid spike events."""
    if times.ndim != 1 or times.dtype.kind != "f":
        raise ConfigError("times", f"{times.dtype}{list(times.shape)}", "must be a 1-D float array (seconds)")
    if units.ndim != 1 or units.dtype.kind not in "iu":
        raise ConfigError("units", f"{units.dtype}{list(units.shape)}", "must be a 1-D integer array")
    if times.shape != units.shape:
        raise ConfigError("units", f"{units.shape[0]} units", f"needs one unit per spike time ({times.shape[0]})")
    bad = ~np.isfinite(times)
    if bad.any():
        first = int(np.argmax(bad))
        reason = f"must be finite; {int(bad.sum())} NaN/inf, the first at spike {first}"
        raise ConfigError("times", float(times[first]), reason)
    if units.size:
        low, high = int(units.min()), int(units.max())
        if low < 0 or high >= n_channels:
            bad_unit = low if low < 0 else high
            raise ConfigError("units", bad_unit, f"must lie in [0, {n_channels}) (the channels)")


_TIMES, _UNITS, _LABELS, _KEYS = "spikes/times", "spikes/units", "labels", "extra/keys"
_CACHE_FORMAT = 1
_READ_CHUNK = 256  # samples per HDF5 read when a cache is built


class SpikeH5Source:
    """Binned samples of one Zenke-lab HDF5 file, built per batch (a ``SequenceSource`` for
    :class:`~hrsnn.tasks.base.LazySequenceDataset`).

    The constructor checks the file's layout (datasets, dtypes, lengths, labels) and reads the labels and class
    names; spike events are read and binned only by :meth:`load`, and each one is checked then (an error names the
    sample). The HDF5 file (and the cache's arrays) are opened lazily, once per process: the source pickles into
    DataLoader workers as its path and labels.

    Cache: with ``cache_dir``, the constructor bins every sample once (checking each) into a folder
    ``<cache_dir>/<file stem>-<key>``: ``offsets.npy`` (int64, N + 1), ``events.bin`` (each sample's sorted
    non-zero frame positions ``step · C + column``, int32 or int64 as ``meta.json`` says), ``counts.bin``
    (uint32 spike counts at those positions, when ``binary=False``) and ``meta.json``. The key hashes the data
    file (resolved path, size, modification time), the binning and the cache format, so another binning or a
    changed file gets another folder and never reads a stale one. The folder is written under a temporary name
    and renamed into place, so an interrupted build leaves no cache that looks complete.

    Args:
        path: the HDF5 file.
        binning: how spikes become frames.
        n_classes: labels must lie in ``[0, n_classes)``; None: ``max(labels) + 1``.
        role: what the file is, for error messages (e.g. ``"SHD training file"``).
        cache_dir: folder of binned-frame caches, or None for none.

    Attributes:
        labels: int64 ``(N,)`` labels of the file. classes: the names in ``extra/keys`` when it holds
            ``n_classes`` of them, else ``"0", "1", ...``. cache_path: the cache folder in use, or None.

    Raises:
        DataNotFoundError: when ``path`` is not a file.
        DataFormatError: naming the file when it is not readable HDF5 (truncated, or another kind of file), lacks
            ``spikes/times``, ``spikes/units`` or ``labels``, has other dtypes or lengths that differ, or labels
            outside ``[0, n_classes)``; while building a cache, naming the first bad sample.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        binning: SpikeBinning = SRNN_BINNING,
        *,
        n_classes: int | None = None,
        role: str = "spike file",
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if not isinstance(binning, SpikeBinning):
            raise ConfigError("binning", type(binning).__name__, "must be a SpikeBinning")
        self.path = Path(path).expanduser().absolute()
        self.binning = binning
        self.role = role
        self._opened: tuple[int, dict[str, Any]] | None = None
        if not self.path.is_file():
            raise DataNotFoundError(f"{role} not found: {self.path}")
        self.labels, keys = self._read_layout()
        if n_classes is None:
            n_classes = int(self.labels.max()) + 1 if self.labels.size else 1
        self.n_classes = check_int("n_classes", n_classes, 1)
        outside = (self.labels < 0) | (self.labels >= self.n_classes)
        if outside.any():
            first = int(np.argmax(outside))
            reason = f"label {self.labels[first]} at sample {first} is outside [0, {self.n_classes})"
            raise self._error(f"{reason} ({int(outside.sum())} such labels)")
        self.classes = keys if len(keys) == self.n_classes else tuple(str(c) for c in range(self.n_classes))
        self.cache_path: Path | None = None
        if cache_dir is not None:
            folder = self._ensure_cache(Path(cache_dir).expanduser().absolute())
            self._close()  # the HDF5 handles used to build the cache; load() reads the cache from now on
            self.cache_path = folder

    # -- SequenceSource ----------------------------------------------------------------------------------------
    @property
    def n_steps(self) -> int:
        """Steps per frame ``T``."""
        return self.binning.n_steps

    @property
    def n_channels(self) -> int:
        """Columns per step ``C``."""
        return self.binning.n_channels

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def load(self, indices: np.ndarray | Sequence[int]) -> Tensor:
        """float32 ``(len(indices), T, C)``: the binned frames of the samples at ``indices`` (any order, repeats
        allowed).

        Raises:
            ConfigError: naming ``indices`` when they are not 1-D integers in ``[0, N)``.
            DataFormatError: naming the file and sample whose events cannot be read or are invalid (see
                :meth:`SpikeBinning.flat_indices`).
        """
        idx = self._check_indices(indices)
        out = np.zeros((idx.size, self.binning.frame_size), dtype=np.float32)
        if self.cache_path is not None:
            self._fill_from_cache(out, idx)
        else:
            uniq, inverse = np.unique(idx, return_inverse=True)
            times, units = self._read(uniq)
            flats = [self._flat(int(i), t, u) for i, t, u in zip(uniq, times, units, strict=True)]
            for row, k in enumerate(inverse):
                self.binning._fill(out[row], flats[k])
        return torch.from_numpy(out.reshape(idx.size, self.n_steps, self.n_channels))

    # -- pickling: paths and arrays only -----------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_opened"] = None
        return state

    def __repr__(self) -> str:
        return f"SpikeH5Source({str(self.path)!r}, {self.binning!r}, n={len(self)})"

    # -- file access -------------------------------------------------------------------------------------------
    def _error(self, reason: str) -> DataFormatError:
        return DataFormatError(self.role, str(self.path), reason)

    def _open_h5(self) -> h5py.File:
        try:
            return h5py.File(self.path, "r")
        except OSError as exc:
            reason = " ".join(str(exc).split())
            raise self._error(f"is not a readable HDF5 file (truncated, or another kind of file): {reason}") from None

    def _read_layout(self) -> tuple[np.ndarray, tuple[str, ...]]:
        """Check the datasets, dtypes and lengths; return the labels (int64) and the class names of extra/keys."""
        with self._open_h5() as f:
            found = {}
            for name in (_TIMES, _UNITS, _LABELS):
                ds = f.get(name)
                if not isinstance(ds, h5py.Dataset):
                    raise self._error(
                        f"has no dataset {name!r} (a Zenke-lab spike file has spikes/times, spikes/units, labels)"
                    )
                if ds.ndim != 1:
                    raise self._error(f"dataset {name!r} has shape {ds.shape}; expected one entry per sample")
                found[name] = ds
            for name, kinds, what in ((_TIMES, "f", "float"), (_UNITS, "iu", "integer")):
                base = h5py.check_vlen_dtype(found[name].dtype)
                if base is None or base.kind not in kinds:
                    raise self._error(
                        f"dataset {name!r} has dtype {found[name].dtype}; expected variable-length {what} arrays"
                    )
            if found[_LABELS].dtype.kind not in "iu":
                raise self._error(f"dataset 'labels' has dtype {found[_LABELS].dtype}; expected integers")
            lengths = {name: ds.shape[0] for name, ds in found.items()}
            if len(set(lengths.values())) != 1:
                raise self._error(f"datasets differ in length: {lengths}")
            try:
                labels = found[_LABELS][()].astype(np.int64)
                keys_ds = f.get(_KEYS)
                keys = tuple(_as_text(k) for k in keys_ds[()]) if isinstance(keys_ds, h5py.Dataset) else ()
            except OSError as exc:
                raise self._error(f"cannot be read (truncated?): {' '.join(str(exc).split())}") from None
        return labels, keys

    def _handles(self) -> dict[str, Any]:
        """This process's open HDF5 datasets and cache arrays (opened on first use after a fork or unpickling)."""
        if self._opened is None or self._opened[0] != os.getpid():
            handles: dict[str, Any] = {}
            if self.cache_path is None:
                f = self._open_h5()
                handles.update(file=f, times=f[_TIMES], units=f[_UNITS])
            else:
                handles.update(_open_cache(self.cache_path))
            self._opened = (os.getpid(), handles)
        return self._opened[1]

    def _close(self) -> None:
        """Close this process's HDF5 file, if open (the next access reopens what it needs)."""
        if self._opened is not None and self._opened[0] == os.getpid() and "file" in self._opened[1]:
            self._opened[1]["file"].close()
        self._opened = None

    def _read(self, which: np.ndarray | slice) -> tuple[np.ndarray, np.ndarray]:
        """Object arrays of the spike times and units of samples ``which`` (increasing positions, or a slice)."""
        h = self._handles()
        try:
            return h["times"][which], h["units"][which]
        except (OSError, ValueError) as exc:
            span = f"{which.start}..{which.stop - 1}" if isinstance(which, slice) else f"{which[0]}..{which[-1]}"
            raise self._error(f"samples {span} cannot be read (truncated?): {' '.join(str(exc).split())}") from None

    def _flat(self, i: int, times: np.ndarray, units: np.ndarray) -> np.ndarray:
        try:
            return self.binning.flat_indices(times, units)
        except ConfigError as exc:
            raise self._error(f"sample {i}: spikes/{exc.field} = {exc.value!r} {exc.reason}") from None

    def _check_indices(self, indices: np.ndarray | Sequence[int]) -> np.ndarray:
        idx = np.asarray(indices)
        if idx.size == 0:
            return np.zeros(0, dtype=np.int64)
        if idx.ndim != 1 or idx.dtype.kind not in "iu":
            raise ConfigError("indices", f"{idx.dtype}{list(idx.shape)}", "must be a 1-D integer array")
        if int(idx.min()) < 0 or int(idx.max()) >= len(self):
            raise ConfigError("indices", (int(idx.min()), int(idx.max())), f"must lie in [0, {len(self)})")
        return idx.astype(np.int64)

    # -- cache -------------------------------------------------------------------------------------------------
    def _cache_key(self) -> dict[str, Any]:
        stat = self.path.stat()
        return {
            "format": _CACHE_FORMAT,
            "file": str(self.path.resolve()),
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "binning": self.binning.to_dict(),
        }

    def _ensure_cache(self, cache_dir: Path) -> Path:
        """The cache folder for this file and binning, built now if absent."""
        key = self._cache_key()
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        folder = cache_dir / f"{self.path.stem}-{digest}"
        if not folder.is_dir():
            cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=cache_dir))
            try:
                self._write_cache(tmp, key)
                try:
                    tmp.rename(folder)
                except OSError:
                    if not folder.is_dir():  # not a concurrent build that finished first
                        raise
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        meta_path = folder / "meta.json"
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            raise DataFormatError("cache folder", str(folder), "has no readable meta.json; delete the folder") from None
        if meta.get("key") != key:
            raise DataFormatError("cache folder", str(folder), f"was written for {meta.get('key')}; delete the folder")
        return folder

    def _write_cache(self, folder: Path, key: dict[str, Any]) -> None:
        """Bin every sample (checking each) into the cache files of ``folder``."""
        n, size = len(self), self.binning.frame_size
        index_dtype = np.int32 if size <= np.iinfo(np.int32).max else np.int64
        offsets = np.zeros(n + 1, dtype=np.int64)
        with ExitStack() as stack:
            events: BinaryIO = stack.enter_context((folder / "events.bin").open("wb"))
            counts: BinaryIO | None = None
            if not self.binning.binary:
                counts = stack.enter_context((folder / "counts.bin").open("wb"))
            for start in range(0, n, _READ_CHUNK):
                times, units = self._read(slice(start, min(start + _READ_CHUNK, n)))
                for i, (t, u) in enumerate(zip(times, units, strict=True), start=start):
                    frame = np.bincount(self._flat(i, t, u), minlength=size)
                    nonzero = np.flatnonzero(frame)
                    events.write(nonzero.astype(index_dtype).tobytes())
                    if counts is not None:
                        counts.write(frame[nonzero].astype(np.uint32).tobytes())
                    offsets[i + 1] = offsets[i] + nonzero.size
        np.save(folder / "offsets.npy", offsets)
        meta = {"key": key, "index_dtype": np.dtype(index_dtype).name, "n_samples": n}
        (folder / "meta.json").write_text(json.dumps(meta, indent=1))

    def _fill_from_cache(self, out: np.ndarray, idx: np.ndarray) -> None:
        h = self._handles()
        offsets, events, counts = h["offsets"], h["events"], h["counts"]
        for row, i in enumerate(idx):
            start, stop = offsets[i], offsets[i + 1]
            out[row, events[start:stop]] = 1.0 if counts is None else counts[start:stop]


def _as_text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _open_cache(folder: Path) -> dict[str, Any]:
    """Memory-map the arrays of a cache folder written by :meth:`SpikeH5Source._write_cache`."""
    meta = json.loads((folder / "meta.json").read_text())
    offsets = np.load(folder / "offsets.npy")

    def _array(name: str, dtype: np.dtype[Any] | type) -> np.ndarray:
        path = folder / name
        if path.stat().st_size != int(offsets[-1]) * np.dtype(dtype).itemsize:
            raise DataFormatError("cache folder", str(folder), f"{name} does not match offsets.npy; delete the folder")
        return np.memmap(path, dtype=dtype, mode="r") if offsets[-1] else np.zeros(0, dtype=dtype)

    events = _array("events.bin", np.dtype(meta["index_dtype"]))
    counts = None if meta["key"]["binning"]["binary"] else _array("counts.bin", np.uint32)
    return {"offsets": offsets, "events": events, "counts": counts}


# -- loaders ---------------------------------------------------------------------------------------------------


def as_binning(binning: SpikeBinning | Mapping[str, Any]) -> SpikeBinning:
    """A :class:`SpikeBinning`, or one built from a mapping of its fields (a config's ``binning = {dt = 0.01}``).

    Raises:
        ConfigError: naming ``binning`` (not a SpikeBinning or mapping, or an unknown field) or ``binning.<field>``.
    """
    if isinstance(binning, SpikeBinning):
        return binning
    if not isinstance(binning, Mapping):
        raise ConfigError("binning", binning, "must be a SpikeBinning or a mapping of its fields")
    known = {f.name for f in dataclasses.fields(SpikeBinning)}
    unknown = sorted(set(binning) - known)
    if unknown:
        raise ConfigError(f"binning.{unknown[0]}", binning[unknown[0]], f"unknown field; known: {sorted(known)}")
    return SpikeBinning(**binning)


def _source(
    files: DatasetFiles,
    name: str,
    data_dir: str | os.PathLike[str] | None,
    binning: SpikeBinning,
    n_classes: int,
    role: str,
    cache_dir: str | os.PathLike[str] | None,
) -> SpikeH5Source:
    path = locate(files, name, data_dir)
    return SpikeH5Source(path, binning, n_classes=n_classes, role=role, cache_dir=cache_dir)


def _lazy(source: SpikeH5Source, name: str, workers: int) -> LazySequenceDataset:
    return LazySequenceDataset.from_source(source, source.labels, name, n_classes=source.n_classes, workers=workers)


def _binning_info(binning: SpikeBinning, cache_dir: str | os.PathLike[str] | None) -> dict[str, Any]:
    return {
        "binning": binning.to_dict(),
        "encoding": binning.describe(),
        "cache_dir": None if cache_dir is None else str(Path(cache_dir).expanduser().absolute()),
    }


def load_shd(
    *,
    data_dir: str | os.PathLike[str] | None = None,
    binning: SpikeBinning | Mapping[str, Any] = SRNN_BINNING,
    val_fraction: float = 0.1,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    workers: int = 0,
) -> TaskSplits:
    """Load the Spiking Heidelberg Digits (``shd/shd_train.h5`` and ``shd/shd_test.h5``), binned lazily.

    SHD has no validation file (and the SRNN authors used none). The validation set here is a seeded stratified
    subset of the training file (``⌊f·8156 + 1/2⌋`` samples, per class as
    :func:`~hrsnn.tasks.base.split_train_val`); it shares speakers with the training set, whereas the test file
    also holds two speakers found in neither. The test file never enters the split.

    Args:
        data_dir: the data root holding ``shd/``; None searches ``$HRSNN_DATA``, ``../shared/data`` and
            ``~/.hrsnn/data`` (see :func:`hrsnn.tasks.files.locate`).
        binning: how spikes become frames (default: the SRNN's 4 ms × 250 steps, binary).
        val_fraction: fraction of the training file held out for validation, in [0, 1).
        seed: seed of the validation split.
        cache_dir: folder of binned-frame caches (built on the first call, one pass over each file), or None.
        workers: DataLoader worker processes that build batches (0: in this process).

    Returns:
        ``TaskSplits`` of :class:`~hrsnn.tasks.base.LazySequenceDataset` named ``shd/train``, ``shd/val``,
        ``shd/test``: frames ``(B, T, 700)`` float32, labels in [0, 20). ``info`` holds ``classes`` (from the
        file's ``extra/keys``), ``binning``, ``encoding``, ``cache_dir``, ``train_file``, ``test_file``,
        ``train_indices`` and ``val_indices`` (sample positions in the training file), ``val_fraction``,
        ``seed`` and ``val_rule``.

    Raises:
        DataNotFoundError: naming every path tried for a missing file and how to get it.
        DataFormatError: naming a file that is not readable HDF5, lacks a dataset, has mismatched lengths or
            labels outside [0, 20); while batches are built (or a cache), naming the file and a bad sample.
        ConfigError: naming ``val_fraction``, ``seed``, ``workers``, ``binning`` (a SpikeBinning or a mapping of its
            fields) or ``data_dir``.
    """
    frac = _check_fraction("val_fraction", val_fraction)
    seed = check_seed("seed", seed)
    workers = check_int("workers", workers, 0)
    binning = as_binning(binning)
    train_src = _source(SHD_FILES, "shd_train.h5", data_dir, binning, SHD_N_CLASSES, "SHD training file", cache_dir)
    test_src = _source(SHD_FILES, "shd_test.h5", data_dir, binning, SHD_N_CLASSES, "SHD test file", cache_dir)
    full = _lazy(train_src, "shd", workers)
    train_idx, val_idx = split_indices(full, frac, seed)
    info: dict[str, Any] = {
        "classes": train_src.classes,
        **_binning_info(binning, cache_dir),
        "train_file": str(train_src.path),
        "test_file": str(test_src.path),
        "train_indices": tuple(train_idx.tolist()),
        "val_indices": tuple(val_idx.tolist()),
        "val_fraction": frac,
        "seed": seed,
        "val_rule": "stratified by class from shd_train.h5 (shares its speakers); the test file is never used",
    }
    return TaskSplits(
        train=full.subset(train_idx, name=_split_name("shd", "train")),
        val=full.subset(val_idx, name=_split_name("shd", "val")),
        test=_lazy(test_src, _split_name("shd", "test"), workers),
        info=info,
    )


def load_ssc(
    *,
    data_dir: str | os.PathLike[str] | None = None,
    binning: SpikeBinning | Mapping[str, Any] = SRNN_BINNING,
    cache_dir: str | os.PathLike[str] | None = None,
    workers: int = 0,
) -> TaskSplits:
    """Load the Spiking Speech Commands (``ssc/ssc_{train,valid,test}.h5``), binned lazily.

    SSC ships its own validation file, used as the validation set. The training file holds 75,466 samples: at
    the default binning its dense float32 tensor would take 53 GB, so frames are only built per batch (or read
    from the cache, which stores 4 bytes per non-zero frame entry, at most one per spike).

    Args:
        data_dir: the data root holding ``ssc/`` (see :func:`load_shd`).
        binning: how spikes become frames (default: the SRNN's 4 ms × 250 steps, binary).
        cache_dir: folder of binned-frame caches (built on the first call, one pass over each file), or None.
        workers: DataLoader worker processes that build batches (0: in this process).

    Returns:
        ``TaskSplits`` of lazy data sets named ``ssc/train``, ``ssc/val``, ``ssc/test``: frames ``(B, T, 700)``
        float32, labels in [0, 35). ``info`` holds ``classes``, ``binning``, ``encoding``, ``cache_dir``,
        ``train_file``, ``val_file`` and ``test_file``.

    Raises:
        DataNotFoundError, DataFormatError, ConfigError: as :func:`load_shd` (labels in [0, 35)).
    """
    binning = as_binning(binning)
    workers = check_int("workers", workers, 0)
    sources = {
        part: _source(SSC_FILES, f"ssc_{stem}.h5", data_dir, binning, SSC_N_CLASSES, f"SSC {role} file", cache_dir)
        for part, stem, role in (
            ("train", "train", "training"),
            ("val", "valid", "validation"),
            ("test", "test", "test"),
        )
    }
    info: dict[str, Any] = {
        "classes": sources["train"].classes,
        **_binning_info(binning, cache_dir),
        **{f"{part}_file": str(src.path) for part, src in sources.items()},
    }
    parts = {part: _lazy(src, _split_name("ssc", part), workers) for part, src in sources.items()}
    return TaskSplits(train=parts["train"], val=parts["val"], test=parts["test"], info=info)
