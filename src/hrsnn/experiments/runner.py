"""Experiment configs and the training runner: task + model + training, recorded in the run store.

An experiment config is one mapping (a TOML/YAML file, or built from CLI options) with four sections::

    name = "ecg-srnn"
    seed = 0                      # model init, data split, shuffling and random initial states
    arch = "srnn"                 # or a classical baseline: "lstm", "gru", "rnn" (Elman)
    [task]   name = "ecg"; options = { val_fraction = 0.1 }
    [model]  layers = [...]; readout = {...}   # an RSNNConfig without n_inputs/n_outputs (taken from the task)
    [train]  epochs = 100; loss = "per_step_nll"; ...

For a classical ``arch`` the ``[model]`` section is a :class:`hrsnn.classical.ClassicalConfig` without ``kind``
(the arch), ``n_inputs`` and ``n_outputs``: ``hidden_sizes = [64]``, ``bias = true``.

``PRESETS`` holds the SRNN defaults per task and ``CLASSICAL_PRESETS[task][arch]`` those of the baselines (same
task section, hence the same splits and metrics); a user config is merged over the preset of its task and arch.
"""

from __future__ import annotations

import dataclasses
import inspect
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import torch

from hrsnn._threads import auto_threads
from hrsnn._validate import check_run_seed
from hrsnn.classical import ClassicalConfig, ClassicalRNN
from hrsnn.config import deep_update, from_dict, to_dict
from hrsnn.errors import ConfigError, NonFiniteError
from hrsnn.experiments.store import RunRecord, RunStore, environment_info
from hrsnn.io import save_json
from hrsnn.metrics.runs import efficiency_metrics, model_efficiency
from hrsnn.models import ModelConfig, build_model, save_model
from hrsnn.network import RSNN, RSNNConfig
from hrsnn.tasks import TASK_LOADERS
from hrsnn.tasks.base import TaskSplits
from hrsnn.training import TrainConfig, Trainer, evaluate, read_checkpoint_progress, resolve_device


@dataclass(frozen=True)
class TaskConfig:
    """Which task to load and the keyword options of its loader (see :mod:`hrsnn.tasks`)."""

    name: str = "digits"
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if self.name not in TASK_LOADERS:
            raise ConfigError("task.name", self.name, f"unknown; choose one of {sorted(TASK_LOADERS)}")


Arch = Literal["srnn", "lstm", "gru", "rnn"]
ARCHS: tuple[str, ...] = ("srnn", "lstm", "gru", "rnn")
"""Architectures of ``hrsnn train``: the spiking network and the classical baselines of :mod:`hrsnn.classical`."""


@dataclass(frozen=True)
class ExperimentConfig:
    """A complete training experiment (module docstring)."""

    task: TaskConfig
    model: Mapping[str, Any]
    train: TrainConfig = field(default_factory=TrainConfig)
    name: str = "run"
    seed: int = 0
    threads: int | None = None
    arch: Arch = "srnn"

    def __post_init__(self) -> None:
        check_run_seed("seed", self.seed)
        if self.arch not in ARCHS:
            raise ConfigError("arch", self.arch, f"must be one of {list(ARCHS)}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError("threads", self.threads, "must be >= 1 (or omitted)")
        for key in ("n_inputs", "n_outputs"):
            if key in self.model:
                raise ConfigError(f"model.{key}", self.model[key], "is taken from the task; remove it")
        if self.arch != "srnn":
            if "kind" in self.model:
                raise ConfigError("model.kind", self.model["kind"], f"is taken from arch ({self.arch!r}); remove it")
            if self.train.loss == "spike_count_ce":
                raise ConfigError(
                    "train.loss", self.train.loss, f"needs spiking output units; arch {self.arch!r} has none"
                )
        # validate the model section now, with placeholder channel counts
        _parse_model(self.arch, {**self.model, "n_inputs": 1, "n_outputs": 1})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExperimentConfig:
        """Merge ``data`` over the preset of its task and arch and parse it; errors name the bad field. A ``sweep``
        entry (the link :mod:`hrsnn.experiments.sweep` records in its runs' configs) is not part of the experiment."""
        data = {k: v for k, v in data.items() if k != "sweep"}
        task = data.get("task", {})
        task_name = task.get("name", "digits") if isinstance(task, Mapping) else "digits"
        arch = data.get("arch", "srnn")
        if not isinstance(task_name, str) or not isinstance(arch, str):
            preset: Mapping[str, Any] = {}  # the parse below names the bad field
        elif arch == "srnn":
            preset = PRESETS.get(task_name, {})
        else:
            preset = CLASSICAL_PRESETS.get(task_name, {}).get(arch, {})
        if not preset and "model" not in data and task_name in TASK_LOADERS and arch in ARCHS:
            raise ConfigError(
                "task.name", task_name, f"has no {arch} preset; give the model and train sections in a config file"
            )
        return from_dict(cls, deep_update(preset, data), "config")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (the inverse of :meth:`from_dict`)."""
        return to_dict(self)

    def model_config(self, splits: TaskSplits) -> ModelConfig:
        """The full network config for a loaded task: an RSNNConfig, or a ClassicalConfig of kind ``arch``."""
        return _parse_model(self.arch, {**self.model, "n_inputs": splits.n_channels, "n_outputs": splits.n_classes})


def _parse_model(arch: str, data: Mapping[str, Any]) -> ModelConfig:
    if arch == "srnn":
        return RSNNConfig.from_dict(data)
    return ClassicalConfig.from_dict({**data, "kind": arch})


def _frozen(d: dict[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(d)


def _normal(mean: float, std: float) -> dict[str, Any]:
    return {"dist": "normal", "mean": mean, "std": std}


def _alif(tau_m: dict[str, Any], tau_adp: dict[str, Any], b0: float = 0.01) -> dict[str, Any]:
    """The authors' ALIF neuron (β = 1.8, R_m = dt = 1) with τ trained directly ("raw")."""
    return {"kind": "alif", "b0": b0, "beta": 1.8, "tau_m": tau_m, "tau_adp": tau_adp, "parametrization": "raw"}


def _layer(size: int, neuron: dict[str, Any], recurrent: bool = True, init: str = "orthogonal") -> dict[str, Any]:
    layer: dict[str, Any] = {"size": size, "recurrent": recurrent, "neuron": neuron}
    if recurrent:
        layer["connectivity"] = {"kind": "dense", "autapses": True, "init": init}
    return layer


# The seeds' published set-ups (srnn.md §3, §4.2–4.5; every number below is the spec's). Deviations, all forced by
# there being no validation split in the authors' scripts (they select the epoch on the test set): hrsnn selects on a
# validation split carved from the training set (SHD, S-/PS-MNIST: 10 %, stratified; SSC has its own).
_SEED_PRESETS: dict[str, Any] = {
    # SHD, NMI (SHD/SHD_2layer_ALIF.py): 700 → 128r → 128r → 20 integrator, 4 ms bins (250 steps), CE of
    # Σ_{t>10} softmax(u_t), plain Adam(lr 1e-2, eps 1e-5) for every parameter (τ at the base lr), StepLR(10, 0.5),
    # 19 epochs, batch 64, u_0 ~ U[0, 1) and readout u_0 ~ U[0, 1). The logged run reached 90.72 %.
    "shd": {
        "name": "shd-srnn",
        "task": {"name": "shd", "options": {"val_fraction": 0.1}},
        "model": {
            "layers": [
                _layer(128, _alif(_normal(20.0, 5.0), _normal(150.0, 10.0))),
                _layer(128, _alif(_normal(20.0, 5.0), _normal(150.0, 10.0))),
            ],
            "readout": {"kind": "integrator", "neuron": {"tau_m": _normal(20.0, 5.0), "parametrization": "raw"}},
            "state_init": "uniform",
            "state_init_scale": 1.0,
            "readout_init": "uniform",
        },
        "train": {
            "epochs": 19,
            "batch_size": 64,
            "lr": 1e-2,
            "eps": 1e-5,
            "tau_lr_mult": {"tau_m": 1.0, "tau_adp": 1.0, "tau_out": 1.0},
            "scheduler": "step",
            "step_size": 10,
            "gamma": 0.5,
            "loss": "sum_softmax_ce",
            "skip_steps": 11,
        },
    },
    # SSC, NMI (NMI_vis/SSC/vis.ipynb): 700 → 400r → 400r → 35 integrator (τ_m N(3, 1)), log_softmax of
    # mean_{t>0} u_t, Adam lr 1e-2 with τ_adp × 5 and τ_m × 2.5, StepLR(5, 0.5), batch 32, u_0 = s_0 ~ U[0, 1),
    # readout at 0. The notebook's epoch count is unclear (num_epochs = 150 is set); 150 here. Test: 74.05 %.
    "ssc": {
        "name": "ssc-srnn",
        "task": {"name": "ssc", "options": {}},
        "model": {
            "layers": [
                _layer(400, _alif(_normal(20.0, 5.0), _normal(200.0, 50.0))),
                _layer(400, _alif(_normal(20.0, 5.0), _normal(200.0, 50.0))),
            ],
            "readout": {"kind": "integrator", "neuron": {"tau_m": _normal(3.0, 1.0), "parametrization": "raw"}},
            "state_init": "uniform_spike",
            "state_init_scale": 1.0,
        },
        "train": {
            "epochs": 150,
            "batch_size": 32,
            "lr": 1e-2,
            "tau_lr_mult": {"tau_m": 2.5, "tau_adp": 5.0, "tau_out": 2.5},
            "scheduler": "step",
            "step_size": 5,
            "gamma": 0.5,
            "loss": "mean_readout_ce",
            "skip_steps": 1,
        },
    },
    # S-MNIST, NMI (smnist_vis.ipynb): a sliding window of 8 analog pixels (/255), 784 steps; 8 → 64r → 256r →
    # 256d → 10 ALIF outputs, CE of the output spike counts, b0 0.01, τ_adp N(700, 25) everywhere, τ_m N(20, 5),
    # batch 200. The notebook gives no optimiser; the ICONS S-MNIST one is used: Adam lr 1e-2 with τ × 2,
    # MultiStepLR([25, 50, 100, 150], 0.5), 200 epochs. Test: 98.11 % (notebook).
    "smnist": {
        "name": "smnist-srnn",
        "task": {"name": "smnist", "options": {"mode": "window", "window": 8, "val_fraction": 0.1}},
        "model": {
            "layers": [
                _layer(64, _alif(_normal(20.0, 5.0), _normal(700.0, 25.0))),
                _layer(256, _alif(_normal(20.0, 5.0), _normal(700.0, 25.0))),
                _layer(256, _alif(_normal(20.0, 5.0), _normal(700.0, 25.0)), recurrent=False),
            ],
            "readout": {"kind": "alif", "neuron": _alif(_normal(20.0, 5.0), _normal(700.0, 25.0))},
            "state_init": "zeros",
        },
        "train": {
            "epochs": 200,
            "batch_size": 200,
            "lr": 1e-2,
            "tau_lr_mult": {"tau_m": 2.0, "tau_adp": 2.0, "tau_out": 2.0},
            "scheduler": "multistep",
            "milestones": [25, 50, 100, 150],
            "gamma": 0.5,
            "loss": "spike_count_ce",
            "skip_steps": 0,
        },
    },
    # PS-MNIST, NMI with truncated BPTT (psmnist-gpu-tbptt-v1.py): a window of 4 permuted pixels binarised at
    # pixel/255 > 0.1; 4 → 64r → 256r → 256d → 10 ALIF outputs, recurrent weights initialised to 0, τ_adp N(200, 25),
    # CE of the output spike counts, Adamax lr 8e-3 with τ_adp × 3 and τ_m × 2, lr × (1 − epoch/200), 200 epochs,
    # batch 300, an update every 100 steps, u_0 = s_0 ~ U[0, b0) in the hidden layers. Test: 94.54 % (notebook).
    "psmnist": {
        "name": "psmnist-srnn",
        "task": {"name": "psmnist", "options": {"window": 4, "binarize": 0.1, "val_fraction": 0.1}},
        "model": {
            "layers": [
                _layer(64, _alif(_normal(20.0, 5.0), _normal(200.0, 25.0)), init="zeros"),
                _layer(256, _alif(_normal(20.0, 5.0), _normal(200.0, 25.0)), init="zeros"),
                _layer(256, _alif(_normal(20.0, 5.0), _normal(200.0, 25.0)), recurrent=False),
            ],
            "readout": {"kind": "alif", "neuron": _alif(_normal(20.0, 5.0), _normal(200.0, 25.0))},
            "state_init": "uniform_spike",
        },
        "train": {
            "epochs": 200,
            "batch_size": 300,
            "optimizer": "adamax",
            "lr": 8e-3,
            "tau_lr_mult": {"tau_m": 2.0, "tau_adp": 3.0, "tau_out": 2.0},
            "scheduler": "linear",
            "loss": "spike_count_ce",
            "skip_steps": 0,
            "tbptt": 100,
        },
    },
}


PRESETS: Mapping[str, Mapping[str, Any]] = _frozen(
    {
        # The SRNN authors' ECG setup (srnn.md §4.1): 4 → 36 recurrent LIF → 6 ALIF outputs, per-step NLL, τ trained
        # directly (their "raw" parametrisation), 400 epochs with StepLR(100, 0.5); readout τ_m and τ_adp form the
        # "tau_out" family (lr × 2, hidden τ × 3, as in the authors' parameter groups).
        # b0 = 0.1, not the 0.01 their published ECG script sets: their trained checkpoint only works at 0.1 (imported,
        # it gives 0.8586 per-step accuracy and firing rate 0.2953 at b0 = 0.1, but 0.304 at 0.01, where the hidden
        # layer fires at 0.52 and the output units fall silent), so it was trained at 0.1, a value their other
        # scripts use. The authors start the readout at u0 = s0 ~ U[0, b0) (readout_init = "uniform_spike" with
        # state_init_scale); this preset keeps the default zeros start with which its 85.0 % was measured.
        "ecg": {
            "name": "ecg-srnn",
            "task": {"name": "ecg", "options": {"val_fraction": 0.1}},
            "model": {
                "layers": [
                    {
                        "size": 36,
                        "neuron": {
                            "kind": "lif",
                            "b0": 0.1,
                            "beta": 0.0,
                            "tau_m": {"dist": "constant", "value": 20.0},
                            "parametrization": "raw",
                        },
                        "connectivity": {"kind": "dense", "autapses": True, "init": "orthogonal"},
                    }
                ],
                "readout": {
                    "kind": "alif",
                    "neuron": {
                        "kind": "alif",
                        "b0": 0.1,
                        "beta": 1.8,
                        "tau_m": {"dist": "constant", "value": 20.0},
                        "tau_adp": {"dist": "constant", "value": 100.0},
                        "parametrization": "raw",
                    },
                },
                "state_init": "uniform_spike",
                "state_init_scale": 0.01,
            },
            "train": {
                "epochs": 400,
                "batch_size": 64,
                "lr": 1e-2,
                "tau_lr_mult": {"tau_m": 3.0, "tau_adp": 3.0, "tau_out": 2.0},
                "scheduler": "step",
                "step_size": 100,
                "gamma": 0.5,
                "loss": "per_step_nll",
                "skip_steps": 10,
            },
        },
        # Sequential digits (sklearn's 8×8 digits, 64 steps of an 8-pixel sliding window, as NMI's S-MNIST input):
        # 128 ALIF neurons with log-uniform τ_m in [2, 30] and log-normal τ_adp around 100 (tuned on validation).
        "digits": {
            "name": "digits-srnn",
            "task": {"name": "digits", "options": {"mode": "window", "window": 8}},
            "model": {
                "layers": [
                    {
                        "size": 128,
                        "neuron": {
                            "kind": "alif",
                            "b0": 0.01,
                            "beta": 3.0,
                            "r_m": 3.0,
                            "tau_m": {"dist": "loguniform", "low": 2.0, "high": 30.0},
                            "tau_adp": {"dist": "lognormal", "median": 100.0, "sigma": 0.5},
                        },
                        "connectivity": {"kind": "dense", "init": "orthogonal"},
                    }
                ],
                "readout": {"kind": "integrator", "neuron": {"tau_m": {"dist": "constant", "value": 5.0}}},
                "state_init": "zeros",
            },
            "train": {
                "epochs": 60,
                "batch_size": 32,
                "lr": 5e-3,
                "scheduler": "linear",
                "loss": "sum_softmax_ce",
                "skip_steps": 0,
            },
        },
        **_SEED_PRESETS,
    }
)


def _classical(task: str, arch: str, hidden_sizes: list[int], train: dict[str, Any]) -> Mapping[str, Any]:
    """A baseline's preset: the SRNN preset's task section (same splits and metrics), its own model and training."""
    return _frozen(
        {
            "name": f"{task}-{arch}",
            "arch": arch,
            "task": PRESETS[task]["task"],
            "model": {"hidden_sizes": hidden_sizes, "bias": True},
            "train": train,
        }
    )


# Training of the baselines on ECG: the SRNN preset's batch, lr, loss and skipped steps (the same per-step accuracy over
# t >= 10), 100 epochs with StepLR(50, 0.5) and gradient clipping.
_ECG_CLASSICAL_TRAIN = {
    "epochs": 100,
    "batch_size": 64,
    "lr": 1e-2,
    "scheduler": "step",
    "step_size": 50,
    "gamma": 0.5,
    "grad_clip": 1.0,
    "loss": "per_step_nll",
    "skip_steps": 10,
}
# On digits: the SRNN preset's training (60 epochs, batch 32, Adam 5e-3 with the linear decay, CE of the summed
# per-step softmax) with gradient clipping.
_DIGITS_CLASSICAL_TRAIN = {
    "epochs": 60,
    "batch_size": 32,
    "lr": 5e-3,
    "scheduler": "linear",
    "grad_clip": 1.0,
    "loss": "sum_softmax_ce",
    "skip_steps": 0,
}

# Hidden sizes: the smallest tried whose validation accuracy (seed 0) reached the SRNN preset's (seed 0: ECG 83.3 %,
# digits 95.9 %). Every size tried, with its validation and test accuracy, is in docs/config.md. No Elman network
# tried reached the SRNN on ECG (best: 64 units, lr 3e-3, 76.8 %); its preset is that one.
# The seeds' tasks: LSTM/GRU/Elman baselines of 128 units (the size of the classical SHD and S-MNIST baselines in the
# literature), Adam lr 1e-3 with gradient clipping, the SRNN preset's epochs and batch; the loss is the SRNN's where a
# classical readout allows it (no spikes: CE of the mean readout for S-/PS-MNIST). Not tuned: the data are not offline.
_SEED_CLASSICAL_LOSS = {"shd": "sum_softmax_ce", "ssc": "mean_readout_ce", "smnist": "mean_readout_ce"}


def _seed_classical(task: str) -> Mapping[str, Mapping[str, Any]]:
    srnn_train = _SEED_PRESETS[task]["train"]
    train = {
        "epochs": srnn_train["epochs"],
        "batch_size": srnn_train["batch_size"],
        "lr": 1e-3,
        "grad_clip": 1.0,
        "loss": _SEED_CLASSICAL_LOSS.get(task, "mean_readout_ce"),
        "skip_steps": srnn_train["skip_steps"],
    }
    return _frozen({arch: _classical(task, arch, [128], train) for arch in ("lstm", "gru", "rnn")})


CLASSICAL_PRESETS: Mapping[str, Mapping[str, Mapping[str, Any]]] = _frozen(
    {
        **{task: _seed_classical(task) for task in _SEED_PRESETS},
        "ecg": _frozen(
            {
                "lstm": _classical("ecg", "lstm", [32], _ECG_CLASSICAL_TRAIN),
                "gru": _classical("ecg", "gru", [16], _ECG_CLASSICAL_TRAIN),
                "rnn": _classical("ecg", "rnn", [64], {**_ECG_CLASSICAL_TRAIN, "lr": 3e-3}),
            }
        ),
        "digits": _frozen(
            {
                "lstm": _classical("digits", "lstm", [32], _DIGITS_CLASSICAL_TRAIN),
                "gru": _classical("digits", "gru", [32], _DIGITS_CLASSICAL_TRAIN),
                "rnn": _classical("digits", "rnn", [48], _DIGITS_CLASSICAL_TRAIN),
            }
        ),
    }
)


@dataclass(frozen=True)
class RunResult:
    """What :func:`run_experiment` returns: the run id, final metrics and where the model was saved."""

    run_id: int
    metrics: Mapping[str, Any]
    model_path: Path
    history: list[dict[str, float]]


def _extend_or_refuse(config: ExperimentConfig, record: RunRecord, checkpoint: Path) -> None:
    """Check that resuming ``record`` with ``config`` trains something; a clear error otherwise."""
    progress = read_checkpoint_progress(checkpoint) if checkpoint.exists() else None
    done = 0 if progress is None else progress.epoch
    wanted = config.train.epochs
    if wanted < done:
        raise ConfigError(
            "train.epochs", wanted, f"run {record.id} has already trained {done} epochs; give more to extend it"
        )
    if progress is not None and progress.stopped_early(config.train.patience) and wanted > done:
        raise ConfigError(
            "train.epochs",
            wanted,
            f"run {record.id} stopped early after {done} epochs (patience {config.train.patience}): "
            "extending it would train nothing",
        )
    if record.status == "completed" and wanted == done:
        raise ConfigError(
            "train.epochs", wanted, f"run {record.id} is completed ({done} epochs); give --epochs > {done} to extend it"
        )


def load_splits(config: ExperimentConfig, data_dir: str | Path | None = None) -> TaskSplits:
    """The train/val/test splits of the config's task, drawn with its seed (``data_dir`` for file-backed tasks)."""
    loader = TASK_LOADERS[config.task.name]
    options = dict(config.task.options)
    if data_dir is not None and "data_dir" in inspect.signature(loader).parameters:
        options.setdefault("data_dir", data_dir)
    options.setdefault("seed", config.seed)
    try:
        return loader(**options)
    except TypeError as exc:
        raise ConfigError("task.options", options, f"not accepted by the {config.task.name} loader: {exc}") from exc


def run_experiment(
    config: ExperimentConfig,
    *,
    store: RunStore,
    runs_dir: str | Path,
    data_dir: str | Path | None = None,
    resume_run: int | None = None,
    log: Callable[[str], None] | None = None,
) -> RunResult:
    """Train and test one experiment, recording config, environment, epochs, metrics and artifacts in ``store``.

    With ``resume_run``, the run's checkpoint is loaded and training continues where it stopped (same result as
    an uninterrupted run); ``config.train.epochs`` may be larger than the run's own, which extends it (the new
    config is recorded). Resuming a run whose process is still alive raises
    :class:`hrsnn.experiments.store.RunBusyError`. A failure marks the run "failed" with its reason; Ctrl-C or
    SIGTERM marks it "interrupted" and raises :class:`hrsnn.errors.RunInterrupted` (see
    :meth:`RunStore.recording`). The last checkpoint (the last completed epoch) stays on disk.
    """
    splits = load_splits(config, data_dir)
    model = build_model(config.model_config(splits), seed=config.seed)
    train_config = dataclasses.replace(config.train, seed=config.seed)
    resolve_device(train_config.device)
    runs_root = Path(runs_dir)
    if runs_root.exists() and not runs_root.is_dir():
        raise ConfigError("runs_dir", str(runs_root), "is a file; it must name a folder")
    if resume_run is None:
        run_id = store.create_run(
            name=config.name, kind="train", config=config.to_dict(), seed=config.seed, env=environment_info()
        )
    else:
        record = store.get_run(resume_run)
        if record.kind != "train":
            raise ConfigError("--resume", resume_run, f"is a {record.kind!r} run, not a training run")
        _extend_or_refuse(config, record, runs_root / f"run-{resume_run:05d}" / "checkpoint.safetensors")
        store.claim_run(resume_run)
        run_id = resume_run
    with store.recording(run_id, "train"):
        if resume_run is not None and config.to_dict() != record.config:
            store.set_config(run_id, config.to_dict())
        run_dir = runs_root / f"run-{run_id:05d}"
        return _train_and_test(
            config, model, splits, train_config, store, run_id, run_dir, log, resume=resume_run is not None
        )


def _size_metrics(model: RSNN | ClassicalRNN) -> dict[str, int]:
    """Sizes reported with a run: an RSNN's neurons (spiking and readout) and synapses (nonzero weights inside its
    masks); a classical model's hidden units and trainable parameters (weights and biases, readout included)."""
    if isinstance(model, ClassicalRNN):
        return {"hidden_units": model.hidden_units(), "parameters": model.parameter_count()}
    return {"neurons": sum(model.n_neurons().values()), "synapses": sum(model.synapse_counts().values())}


def _train_and_test(
    config: ExperimentConfig,
    model: RSNN | ClassicalRNN,
    splits: TaskSplits,
    train_config: TrainConfig,
    store: RunStore,
    run_id: int,
    run_dir: Path,
    log: Callable[[str], None] | None,
    *,
    resume: bool,
) -> RunResult:
    """The body of :func:`run_experiment` once its run is recorded (every failure here is recorded too)."""
    torch.set_num_threads(config.threads or auto_threads(model))
    run_dir.mkdir(parents=True, exist_ok=True)
    task_path = run_dir / "task.json"  # what the data were: split indices, permutation, binning, source files
    save_json(task_path, {"task": config.task.name, **splits.info})
    store.add_artifact(run_id, "task", task_path)
    checkpoint = run_dir / "checkpoint.safetensors"
    trainer = Trainer(
        model, train_config, checkpoint_path=checkpoint, on_epoch=lambda e, m: store.log_epoch(run_id, e, m)
    )
    sizes = _size_metrics(model)
    if log:
        log(
            f"run {run_id}: task {config.task.name}, arch {config.arch} ({splits.train.n_samples} train / "
            f"{splits.val.n_samples} val / {splits.test.n_samples} test), "
            + ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in sizes.items())
            + f", device {trainer.device}"
        )
    start = time.perf_counter()
    try:
        result = trainer.fit(splits.train, splits.val, resume=resume, log=log)
    except NonFiniteError as exc:
        if trainer.epoch:
            exc.add_note(f"the last good checkpoint is {checkpoint} (after epoch {trainer.epoch})")
        else:
            exc.add_note("no epoch completed, so no checkpoint was written")
        raise
    test_data = splits.test.to(trainer.device)
    test = evaluate(model, test_data, trainer.objective, batch_size=train_config.eval_batch_size)
    counts = model_efficiency(model, test_data, batch_size=train_config.eval_batch_size)
    model_path = run_dir / "model.safetensors"
    save_model(model, model_path, extra={"run_id": run_id})
    store.add_artifact(run_id, "model", model_path)
    store.add_artifact(run_id, "checkpoint", checkpoint)
    efficiency_path = run_dir / "efficiency.json"
    save_json(efficiency_path, counts.to_dict())
    store.add_artifact(run_id, "efficiency", efficiency_path)
    metrics: dict[str, Any] = {f"test_{k}": v for k, v in test.items()}
    metrics.update(efficiency_metrics(counts))
    metrics.update(
        {
            "best_epoch": result.best_epoch,
            "epochs_run": len(result.history),
            "stopped_early": result.stopped_early,
            "val_accuracy": result.best_val.get("accuracy"),
            "train_time_s": result.wall_time_s,
            "wall_time_s": time.perf_counter() - start,
            **sizes,
        }
    )
    store.finish_run(run_id, status="completed", final_metrics=metrics)
    return RunResult(run_id, metrics, model_path, result.history)
