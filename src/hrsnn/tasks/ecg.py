"""QT database (QTDB) ECG wave segmentation, in the SRNN authors' spike encoding.

The authors ship the data already encoded (``QTDB_train.mat``: 618 records, ``QTDB_test.mat``: 141 records,
each 1301 steps at 250 Hz): 4 input channels (level-crossing "up"/"down" spikes of two leads, see
:func:`encode_ecg_level_crossing`) and a one-hot label per step over 6 wave classes (:data:`QTDB_CLASSES`).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io
import torch

from hrsnn.encoding import level_crossing
from hrsnn.errors import ConfigError, DataFormatError, DataNotFoundError
from hrsnn.tasks.base import (
    DATA_ENV_VAR,
    SequenceDataset,
    TaskSplits,
    _is_int,
    _split_name,
    nonfinite_reason,
    split_indices,
)
from hrsnn.tasks.files import DatasetFiles, RemoteFile, locate

__all__ = [
    "QTDB_CLASSES",
    "QTDB_FILES",
    "QTDB_TEST_FILE",
    "QTDB_TRAIN_FILE",
    "encode_ecg_level_crossing",
    "load_qtdb",
]

QTDB_CLASSES: tuple[str, ...] = ("P", "PQ", "QR", "RS", "ST", "TP")
"""Wave classes of the per-step labels, in label order."""

QTDB_TRAIN_FILE = Path("qtdb") / "QTDB_train.mat"
"""Training file, relative to the data folder."""

QTDB_TEST_FILE = Path("qtdb") / "QTDB_test.mat"
"""Test file, relative to the data folder."""

_QTDB_RAW = "https://raw.githubusercontent.com/byin-cwi/Efficient-spiking-networks/1331f6c052e73d48eb71a1dc62239948e874ecb2"

QTDB_FILES = DatasetFiles(
    name="qtdb",
    folder="qtdb",
    files=(
        RemoteFile(
            "QTDB_train.mat",
            f"{_QTDB_RAW}/data/QTDB_train.mat",
            "sha256:72d1a10c96f1540880447e07256835d66da419c0b34f3dff495731a7928c5bc7",
            size=537_262,
        ),
        RemoteFile(
            "QTDB_test.mat",
            f"{_QTDB_RAW}/data/QTDB_test.mat",
            "sha256:916f11e21679a5b61988305bbb7cd1e6df8b34f1ed4a157a7a4e295d400ef232",
            size=112_720,
        ),
    ),
    description="QT database ECG, the SRNN authors' level-crossing encoding (618 train / 141 test records)",
    homepage="https://github.com/byin-cwi/Efficient-spiking-networks (MIT licence)",
)
"""The SRNN authors' encoded QTDB files, pinned to one commit of their repository."""

_SCORED_FROM_STEP = 10  # the authors' loss and accuracy skip steps t < 10


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _read_qtdb_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read ``x`` (N, T, 4) and one-hot ``y`` (N, T, 6) from one authors' .mat file, checked (numeric, shapes,
    finite); every failure is a one-line :class:`DataFormatError` naming the file."""
    if not path.is_file():
        raise DataNotFoundError(
            f"QTDB file not found: {path}; give the folder that holds qtdb/ with --data-dir (data_dir= in Python) "
            f"or set ${DATA_ENV_VAR}"
        )
    try:
        mat = scipy.io.loadmat(path, variable_names=("x", "y"))
    except Exception as exc:  # scipy raises MatReadError, ValueError, OSError, IndexError, zlib.error, ... on bad bytes
        reason = f"is not a readable MATLAB .mat file ({type(exc).__name__}: {_one_line(str(exc))})"
        raise DataFormatError("QTDB file", str(path), reason) from None
    for key in ("x", "y"):
        if key not in mat:
            raise DataFormatError("QTDB file", str(path), f"has no variable {key}")
        if mat[key].dtype.kind not in "biuf":
            raise DataFormatError("QTDB file", str(path), f"variable {key} must be numeric, not {mat[key].dtype}")
    x, y = mat["x"], mat["y"]
    if x.ndim != 3 or x.shape[2] != 4:
        raise DataFormatError("QTDB file", str(path), f"variable x has shape {x.shape}; expected (N, T, 4)")
    if y.shape != (*x.shape[:2], len(QTDB_CLASSES)):
        expected = (*x.shape[:2], len(QTDB_CLASSES))
        raise DataFormatError("QTDB file", str(path), f"variable y has shape {y.shape}; expected {expected} like x")
    for key, axes in (("x", ("sample", "step", "channel")), ("y", ("sample", "step", "class"))):
        reason = nonfinite_reason(mat[key], axes)
        if reason is not None:
            raise DataFormatError("QTDB file", str(path), f"variable {key} {reason}")
    return x, y


def _to_dataset(x: np.ndarray, y_onehot: np.ndarray, name: str) -> SequenceDataset:
    return SequenceDataset(
        x=torch.from_numpy(x.astype(np.float32)),
        y=torch.from_numpy(np.argmax(y_onehot, axis=-1).astype(np.int64)),
        n_classes=len(QTDB_CLASSES),
        name=name,
    )


def load_qtdb(
    data_dir: str | os.PathLike[str] | None = None, *, val_fraction: float = 0.1, seed: int = 0
) -> TaskSplits:
    """Load the authors' encoded QTDB ECG task.

    Inputs ``x`` are the file's int16 values as float32, unchanged: spikes in {0, 1}, plus the −1 end marker
    the files carry in channel 0 at the last step (t = 1300), which the authors' model also sees. Labels are
    ``y_t = argmax_k onehot_{t,k}`` per step, as in the authors' code, so a step whose one-hot row is all zero
    (unlabelled) gets class 0 (``"P"``), exactly like ``numpy.argmax``.

    The validation set is a seeded random subset of the 618 training records (``⌊f·618 + 1/2⌋`` records, see
    :func:`~hrsnn.tasks.base.split_train_val`); the 141 test records are untouched.

    Args:
        data_dir: folder holding ``qtdb/QTDB_train.mat`` and ``qtdb/QTDB_test.mat``; None looks in the default
            roots (:func:`hrsnn.tasks.files.candidate_roots`: ``HRSNN_DATA``, else ``../shared/data`` and
            ``~/.hrsnn/data``, where ``hrsnn data fetch qtdb`` puts them).
        val_fraction: fraction of training records held out for validation, in [0, 1).
        seed: seed of the validation split.

    Returns:
        ``TaskSplits`` named ``qtdb/train``, ``qtdb/val``, ``qtdb/test``: x (N, 1301, 4) float32, y (N, 1301)
        long. ``info`` holds ``classes``, ``encoding``, ``label_rule``, ``sampling_hz``, ``scored_from_step``,
        ``train_file``, ``test_file``, ``train_indices`` and ``val_indices`` (record positions in the training
        file), ``val_fraction`` and ``seed``.

    Raises:
        DataNotFoundError: when the folder or one of the two files is missing (the message names it).
        DataFormatError: naming a file that is unreadable, lacks ``x`` or ``y``, has the wrong shapes or holds
            NaN/inf (with the sample, step and channel of the first bad value and their count).
        ConfigError: naming ``val_fraction``, ``seed`` or ``data_dir``.
    """
    train_path = locate(QTDB_FILES, QTDB_TRAIN_FILE.name, data_dir)
    test_path = locate(QTDB_FILES, QTDB_TEST_FILE.name, data_dir)
    full = _to_dataset(*_read_qtdb_file(train_path), name="qtdb")
    test = _to_dataset(*_read_qtdb_file(test_path), name=_split_name("qtdb", "test"))
    train_idx, val_idx = split_indices(full, val_fraction, seed)
    info: dict[str, Any] = {
        "classes": QTDB_CLASSES,
        "encoding": (
            "level-crossing spikes of 2 leads (Savitzky-Golay window 5, order 3; threshold 0.03): channels "
            "up0, down0, up1, down1; -1 end marker in channel 0 at the last step"
        ),
        "label_rule": "argmax of the one-hot row per step; all-zero rows give class 0",
        "sampling_hz": 250,
        "scored_from_step": _SCORED_FROM_STEP,
        "train_file": str(train_path),
        "test_file": str(test_path),
        "train_indices": tuple(train_idx.tolist()),
        "val_indices": tuple(val_idx.tolist()),
        "val_fraction": float(val_fraction),
        "seed": int(seed),
    }
    return TaskSplits(
        train=full.subset(train_idx, name=_split_name("qtdb", "train")),
        val=full.subset(val_idx, name=_split_name("qtdb", "val")),
        test=test,
        info=info,
    )


def encode_ecg_level_crossing(
    signal: np.ndarray, threshold: float = 0.03, window: int = 5, order: int = 3
) -> np.ndarray:
    """Encode raw ECG leads as level-crossing up/down spikes (the SRNN authors' QTDB encoding).

    Per lead ``j``: ``s = savgol_filter(x_j, window, order)`` (scipy defaults, ``mode="interp"``), then for
    ``i = 0..T−2``::

        up_j[i]   = 1  if  s[i+1] − s[i] ≥ θ  else 0
        down_j[i] = 1  if  s[i] − s[i+1] ≥ θ  else 0

    and ``up_j[T−1] = down_j[T−1] = 0`` (the last step has no successor). That is
    :func:`hrsnn.encoding.level_crossing` of ``s`` with ``δ = θ`` and ``reference="previous"`` (one spike at most
    per step, whatever the jump), moved one step earlier: the authors put the spike of the move ``s[i] → s[i+1]``
    at step ``i``. Channels are ordered ``up0, down0, up1, down1, ...``. The authors' files add a −1 end marker
    afterwards; this function does not.

    Args:
        signal: raw leads, shape ``(T, n_leads)`` with ``T >= window``, finite values.
        threshold: ``θ > 0``, in the signal's units (the authors use 0.03 on QTDB millivolts).
        window: Savitzky–Golay window length, odd, ``> order``.
        order: Savitzky–Golay polynomial order, ``>= 0``.

    Returns:
        float32 array ``(T, 2·n_leads)`` of {0, 1}.

    Raises:
        ConfigError: naming ``signal``, ``threshold``, ``window`` or ``order``.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, int | float | np.floating | np.integer):
        raise ConfigError("threshold", threshold, "must be a positive number")
    if not (math.isfinite(float(threshold)) and threshold > 0):
        raise ConfigError("threshold", threshold, "must be a positive finite number")
    if not _is_int(order) or order < 0:
        raise ConfigError("order", order, "must be an int >= 0")
    if not _is_int(window) or window % 2 == 0 or window <= order:
        raise ConfigError("window", window, f"must be an odd int > order ({order})")
    arr = np.asarray(signal, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise ConfigError("signal", arr.shape, "must have shape (T, n_leads)")
    if arr.shape[0] < window:
        raise ConfigError("signal", arr.shape, f"needs T >= window ({window}) steps")
    reason = nonfinite_reason(arr, ("step", "lead"))
    if reason is not None:
        raise ConfigError("signal", arr.shape, reason)
    from scipy.signal import savgol_filter  # imported here: scipy.signal is slow to import

    smooth = savgol_filter(arr, window_length=int(window), polyorder=int(order), axis=0)
    spikes = level_crossing(torch.from_numpy(smooth), float(threshold), reference="previous")  # spike of i-1 -> i at i
    out = np.zeros((arr.shape[0], 2 * arr.shape[1]), dtype=np.float32)
    out[:-1] = spikes[1:].numpy()
    return out
