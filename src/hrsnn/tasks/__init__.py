"""Tasks and their data: in-memory sequence data sets and the loaders of each task.

``TASK_LOADERS`` maps a task name to its loader; every loader returns a :class:`TaskSplits`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from hrsnn.tasks.base import (
    DATA_ENV_VAR,
    SequenceDataset,
    TaskSplits,
    resolve_data_dir,
    split_indices,
    split_train_val,
)
from hrsnn.tasks.digits import DIGITS_CLASSES, DIGITS_MODES, digits_permutation, load_digits_sequence
from hrsnn.tasks.ecg import QTDB_CLASSES, encode_ecg_level_crossing, load_qtdb

__all__ = [
    "DATA_ENV_VAR",
    "DIGITS_CLASSES",
    "DIGITS_MODES",
    "QTDB_CLASSES",
    "TASK_LOADERS",
    "SequenceDataset",
    "TaskSplits",
    "digits_permutation",
    "encode_ecg_level_crossing",
    "load_digits_sequence",
    "load_qtdb",
    "resolve_data_dir",
    "split_indices",
    "split_train_val",
]

TASK_LOADERS: Mapping[str, Callable[..., TaskSplits]] = MappingProxyType(
    {"ecg": load_qtdb, "digits": load_digits_sequence}
)
"""Read-only map from task name to its loader."""
