"""Tasks and their data: in-memory sequence data sets and the loaders of each task.

``TASK_LOADERS`` maps a task name to its loader; every loader returns a :class:`TaskSplits`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from hrsnn.tasks.base import (
    DATA_ENV_VAR,
    LazySequenceDataset,
    SequenceDataset,
    SequenceSource,
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
from hrsnn.tasks.cifar import CIFAR10_CLASSES, CIFAR10_ENCODINGS, CIFAR10_FILES, load_cifar10
from hrsnn.tasks.digits import DIGITS_CLASSES, DIGITS_MODES, digits_permutation, load_digits_sequence
from hrsnn.tasks.ecg import QTDB_CLASSES, encode_ecg_level_crossing, load_qtdb
from hrsnn.tasks.mnist import MNIST_CLASSES, MNIST_FILES, load_psmnist, load_smnist, mnist_permutation
from hrsnn.tasks.series import load_csv_series, load_santafe_laser, load_sunspots
from hrsnn.tasks.spiking_audio import SHD_FILES, SSC_FILES, SpikeBinning, load_shd, load_ssc

__all__ = [
    "CIFAR10_CLASSES",
    "CIFAR10_ENCODINGS",
    "CIFAR10_FILES",
    "DATA_ENV_VAR",
    "DIGITS_CLASSES",
    "DIGITS_MODES",
    "MNIST_CLASSES",
    "MNIST_FILES",
    "QTDB_CLASSES",
    "REGRESSION_TASK_LOADERS",
    "SHD_FILES",
    "SSC_FILES",
    "TASK_LOADERS",
    "LazySequenceDataset",
    "RegressionDataset",
    "RegressionSplits",
    "SequenceDataset",
    "SequenceSource",
    "SpikeBinning",
    "TaskSplits",
    "digits_permutation",
    "encode_ecg_level_crossing",
    "load_cifar10",
    "load_csv_series",
    "load_digits_sequence",
    "load_lorenz",
    "load_mackey_glass",
    "load_psmnist",
    "load_qtdb",
    "load_rossler",
    "load_santafe_laser",
    "load_shd",
    "load_smnist",
    "load_ssc",
    "load_sunspots",
    "mnist_permutation",
    "nrmse",
    "resolve_data_dir",
    "split_indices",
    "split_train_val",
    "valid_time",
]

TASK_LOADERS: Mapping[str, Callable[..., TaskSplits]] = MappingProxyType(
    {
        "ecg": load_qtdb,
        "digits": load_digits_sequence,
        "shd": load_shd,
        "ssc": load_ssc,
        "smnist": load_smnist,
        "psmnist": load_psmnist,
        "cifar10": load_cifar10,
    }
)
"""Read-only map from task name to its loader."""

REGRESSION_TASK_LOADERS: Mapping[str, Callable[..., RegressionSplits]] = MappingProxyType(
    {
        "lorenz": load_lorenz,
        "rossler": load_rossler,
        "mackey_glass": load_mackey_glass,
        "santafe_laser": load_santafe_laser,
        "sunspots": load_sunspots,
        "csv": load_csv_series,
    }
)
"""Read-only map from chaotic-prediction (regression) task name to its loader."""
