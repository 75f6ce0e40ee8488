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
from hrsnn.tasks.chaotic import (
    RegressionDataset,
    RegressionSplits,
    load_lorenz,
    load_mackey_glass,
    load_rossler,
    nrmse,
    valid_time,
)
from hrsnn.tasks.digits import DIGITS_CLASSES, DIGITS_MODES, digits_permutation, load_digits_sequence
from hrsnn.tasks.ecg import QTDB_CLASSES, encode_ecg_level_crossing, load_qtdb

__all__ = [
    "DATA_ENV_VAR",
    "DIGITS_CLASSES",
    "DIGITS_MODES",
    "QTDB_CLASSES",
    "REGRESSION_TASK_LOADERS",
    "TASK_LOADERS",
    "RegressionDataset",
    "RegressionSplits",
    "SequenceDataset",
    "TaskSplits",
    "digits_permutation",
    "encode_ecg_level_crossing",
    "load_digits_sequence",
    "load_lorenz",
    "load_mackey_glass",
    "load_qtdb",
    "load_rossler",
    "nrmse",
    "resolve_data_dir",
    "split_indices",
    "split_train_val",
    "valid_time",
]

TASK_LOADERS: Mapping[str, Callable[..., TaskSplits]] = MappingProxyType(
    {"ecg": load_qtdb, "digits": load_digits_sequence}
)
"""Read-only map from task name to its loader."""

REGRESSION_TASK_LOADERS: Mapping[str, Callable[..., RegressionSplits]] = MappingProxyType(
    {"lorenz": load_lorenz, "rossler": load_rossler, "mackey_glass": load_mackey_glass}
)
"""Read-only map from chaotic-prediction (regression) task name to its loader."""
