"""Experiment configs and the training runner: task + model + training, recorded in the run store.

An experiment config is one mapping (a TOML/YAML file, or built from CLI options) with four sections::

    name = "ecg-srnn"
    seed = 0                      # model init, data split, shuffling and random initial states
    [task]   name = "ecg"; options = { val_fraction = 0.1 }
    [model]  layers = [...]; readout = {...}   # an RSNNConfig without n_inputs/n_outputs (taken from the task)
    [train]  epochs = 100; loss = "per_step_nll"; ...

``PRESETS`` holds the defaults per task; a user config is merged over the preset of its task.
"""

from __future__ import annotations

import dataclasses
import inspect
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch

from hrsnn._threads import auto_threads
from hrsnn._validate import check_run_seed
from hrsnn.config import deep_update, from_dict, to_dict
from hrsnn.errors import ConfigError, NonFiniteError
from hrsnn.experiments.store import RunRecord, RunStore, environment_info
from hrsnn.network import RSNN, RSNNConfig, save_model
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


@dataclass(frozen=True)
class ExperimentConfig:
    """A complete training experiment (module docstring)."""

    task: TaskConfig
    model: Mapping[str, Any]
    train: TrainConfig = field(default_factory=TrainConfig)
    name: str = "run"
    seed: int = 0
    threads: int | None = None

    def __post_init__(self) -> None:
        check_run_seed("seed", self.seed)
        if self.threads is not None and self.threads < 1:
            raise ConfigError("threads", self.threads, "must be >= 1 (or omitted)")
        for key in ("n_inputs", "n_outputs"):
            if key in self.model:
                raise ConfigError(f"model.{key}", self.model[key], "is taken from the task; remove it")
        # validate the model section now, with placeholder channel counts
        RSNNConfig.from_dict({**self.model, "n_inputs": 1, "n_outputs": 1})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExperimentConfig:
        """Merge ``data`` over the preset of its task and parse it; errors name the bad field."""
        task = data.get("task", {})
        task_name = task.get("name", "digits") if isinstance(task, Mapping) else "digits"
        preset = PRESETS.get(task_name, {})
        return from_dict(cls, deep_update(preset, data), "config")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (the inverse of :meth:`from_dict`)."""
        return to_dict(self)

    def model_config(self, splits: TaskSplits) -> RSNNConfig:
        """The full network config for a loaded task."""
        return RSNNConfig.from_dict({**self.model, "n_inputs": splits.n_channels, "n_outputs": splits.n_classes})


def _frozen(d: dict[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(d)


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
    loader = TASK_LOADERS[config.task.name]
    options = dict(config.task.options)
    if data_dir is not None and "data_dir" in inspect.signature(loader).parameters:
        options.setdefault("data_dir", data_dir)
    options.setdefault("seed", config.seed)
    try:
        splits = loader(**options)
    except TypeError as exc:
        raise ConfigError("task.options", options, f"not accepted by the {config.task.name} loader: {exc}") from exc
    model_config = config.model_config(splits)
    model = RSNN(model_config, seed=config.seed)
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


def _train_and_test(
    config: ExperimentConfig,
    model: RSNN,
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
    checkpoint = run_dir / "checkpoint.safetensors"
    trainer = Trainer(
        model, train_config, checkpoint_path=checkpoint, on_epoch=lambda e, m: store.log_epoch(run_id, e, m)
    )
    if log:
        log(
            f"run {run_id}: task {config.task.name} ({splits.train.n_samples} train / {splits.val.n_samples} val / "
            f"{splits.test.n_samples} test), neurons {sum(model.n_neurons().values())}, "
            f"synapses {sum(model.synapse_counts().values())}, device {trainer.device}"
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
    test = evaluate(model, splits.test.to(trainer.device), trainer.objective, batch_size=train_config.eval_batch_size)
    model_path = run_dir / "model.safetensors"
    save_model(model, model_path, extra={"run_id": run_id})
    store.add_artifact(run_id, "model", model_path)
    store.add_artifact(run_id, "checkpoint", checkpoint)
    metrics: dict[str, Any] = {f"test_{k}": v for k, v in test.items()}
    metrics.update(
        {
            "best_epoch": result.best_epoch,
            "epochs_run": len(result.history),
            "stopped_early": result.stopped_early,
            "val_accuracy": result.best_val.get("accuracy"),
            "train_time_s": result.wall_time_s,
            "wall_time_s": time.perf_counter() - start,
            "neurons": sum(model.n_neurons().values()),
            "synapses": sum(model.synapse_counts().values()),
        }
    )
    store.finish_run(run_id, status="completed", final_metrics=metrics)
    return RunResult(run_id, metrics, model_path, result.history)
