"""BPTT training with surrogate gradients: optimiser groups per parameter family, schedules, truncated BPTT,
model selection on a validation split, atomic per-epoch checkpoints and exact resume.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from hrsnn._validate import nonfinite_counts
from hrsnn.errors import ConfigError, NonFiniteError
from hrsnn.io import (
    CHECKPOINT_STATE_KEY,
    flatten_state_dict,
    load_checkpoint,
    load_metadata,
    save_checkpoint,
    unflatten_state_dict,
)
from hrsnn.models import ModelOutput, SequenceModel, detach_state
from hrsnn.objectives import Objective, PerStepNLL, SequenceSum, make_objective
from hrsnn.tasks.base import LazySequenceDataset, SequenceDataset


@dataclass(frozen=True)
class TrainConfig:
    """Training options.

    Attributes:
        epochs: maximum number of epochs.
        batch_size: samples per optimiser batch.
        optimizer: "adam" or "adamax".
        lr: learning rate of the weights; ``tau_lr_mult`` multiplies it per τ family ("tau_m", "tau_adp",
            "tau_out"), as the authors' parameter groups do.
        weight_decay: L2 penalty of the optimiser (all groups).
        eps: the optimiser's ε (PyTorch's default 1e-8; the authors' SHD script sets 1e-5).
        scheduler: "none", "step" (StepLR(step_size, gamma)), "multistep" (MultiStepLR(milestones, gamma)) or
            "linear" (lr × (1 − epoch/epochs), the PS-MNIST schedule).
        grad_clip: maximum global gradient norm, or None.
        loss: objective name (:mod:`hrsnn.objectives`); skip_steps: output steps ignored by loss and accuracy.
        time_mean: average per-step losses over time instead of summing (per_step_nll only).
        tbptt: truncated-BPTT window k: update every k steps and detach the state; None means full BPTT.
        patience: stop when the validation accuracy has not improved for this many epochs (None: never).
        seed: seeds shuffling and random initial states.
        device: "cpu", "cuda" or "auto" (cuda when available).
        eval_batch_size: batch size of evaluation passes.
        progress: show progress bars.
        on_nonfinite: what a NaN/inf loss or gradient does: "stop" (default) raises
            :class:`hrsnn.errors.NonFiniteError` naming the epoch, batch and tensor; "skip" drops that batch
            (no optimiser step; counted in the epoch's ``skipped_batches``) and stops only when a whole epoch is
            skipped. A non-finite parameter after a step, or a non-finite validation loss, always stops.
    """

    epochs: int = 10
    batch_size: int = 64
    optimizer: Literal["adam", "adamax"] = "adam"
    lr: float = 1e-2
    tau_lr_mult: Mapping[str, float] = field(
        default_factory=lambda: MappingProxyType({"tau_m": 2.0, "tau_adp": 3.0, "tau_out": 2.0})
    )
    weight_decay: float = 0.0
    eps: float = 1e-8
    scheduler: Literal["none", "step", "multistep", "linear"] = "none"
    step_size: int = 100
    gamma: float = 0.5
    milestones: tuple[int, ...] = ()
    grad_clip: float | None = None
    loss: Literal["per_step_nll", "sum_softmax_ce", "mean_readout_ce", "spike_count_ce"] = "sum_softmax_ce"
    skip_steps: int = 0
    time_mean: bool = False
    tbptt: int | None = None
    patience: int | None = None
    seed: int = 0
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    eval_batch_size: int = 256
    progress: bool = True
    on_nonfinite: Literal["stop", "skip"] = "stop"

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_batch_size", "step_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name}", getattr(self, name), "must be >= 1")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError("train.lr", self.lr, "must be a finite number > 0")
        if self.weight_decay < 0:
            raise ConfigError("train.weight_decay", self.weight_decay, "must be >= 0")
        if not (self.eps > 0 and math.isfinite(self.eps)):
            raise ConfigError("train.eps", self.eps, "must be a finite number > 0")
        if not 0 < self.gamma <= 1:
            raise ConfigError("train.gamma", self.gamma, "must be in (0, 1]")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ConfigError("train.grad_clip", self.grad_clip, "must be > 0 (or omitted)")
        if self.tbptt is not None and self.tbptt < 1:
            raise ConfigError("train.tbptt", self.tbptt, "must be >= 1 (or omitted for full BPTT)")
        if self.patience is not None and self.patience < 1:
            raise ConfigError("train.patience", self.patience, "must be >= 1 (or omitted)")
        for family, mult in self.tau_lr_mult.items():
            if family not in ("tau_m", "tau_adp", "tau_out"):
                raise ConfigError(f"train.tau_lr_mult.{family}", mult, "family must be tau_m, tau_adp or tau_out")
            if not mult > 0:
                raise ConfigError(f"train.tau_lr_mult.{family}", mult, "must be > 0")
        if self.on_nonfinite not in ("stop", "skip"):
            raise ConfigError("train.on_nonfinite", self.on_nonfinite, "must be 'stop' or 'skip'")
        if self.scheduler == "multistep" and not self.milestones:
            raise ConfigError("train.milestones", self.milestones, "multistep scheduler needs milestones")
        make_objective(self.loss, self.skip_steps, self.time_mean)

    def objective(self) -> Objective:
        """The configured objective."""
        return make_objective(self.loss, self.skip_steps, self.time_mean)


@dataclass(frozen=True)
class CheckpointProgress:
    """How far a training checkpoint got (read from its header, without loading tensors)."""

    epoch: int
    bad_epochs: int

    def stopped_early(self, patience: int | None) -> bool:
        """Whether early stopping with ``patience`` had already fired at this checkpoint."""
        return patience is not None and self.bad_epochs >= patience


def read_checkpoint_progress(path: str | Path) -> CheckpointProgress:
    """Epochs done and epochs without improvement of a checkpoint written by :meth:`Trainer.save_checkpoint`."""
    metadata = load_metadata(path)
    if CHECKPOINT_STATE_KEY not in metadata:
        raise ConfigError("checkpoint", str(path), "is not an hrsnn training checkpoint")
    state = json.loads(metadata[CHECKPOINT_STATE_KEY])
    return CheckpointProgress(int(state["epoch"]), int(state["bad_epochs"]))


def resolve_device(name: str) -> torch.device:
    """ "auto" → cuda when available, else cpu; "cuda" without a GPU is an error naming the field."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device", name, "CUDA is not available on this machine")
    return torch.device(name)


# --- evaluation -------------------------------------------------------------------------------------------------


def spike_statistics(out: ModelOutput) -> dict[str, Tensor]:
    """Spike sums for firing rates: per layer (summed over batch, time, neurons) and the output layer.

    Empty for a model without spiking neurons."""
    stats = {f"layer{i}": s.detach().sum() for i, s in enumerate(out.layer_spikes)}
    if out.output_spikes is not None:
        stats["output"] = out.output_spikes.detach().sum()
    return stats


def spiking_sizes(out: ModelOutput) -> dict[str, int]:
    """Spiking neurons behind each entry of :func:`spike_statistics` (read from the spike tensors' shapes)."""
    sizes = {f"layer{i}": s.shape[-1] for i, s in enumerate(out.layer_spikes)}
    if out.output_spikes is not None:
        sizes["output"] = out.output_spikes.shape[-1]
    return sizes


def _firing_rates(spikes: Mapping[str, float], sizes: Mapping[str, int], neuron_steps: int) -> dict[str, float]:
    """``rate_<key>`` per entry of ``sizes`` and ``firing_rate`` over all of them: spikes per neuron per step,
    ``neuron_steps`` being samples × steps. Empty when there are no spiking neurons (a classical model)."""
    if not sizes:
        return {}
    rates = {f"rate_{key}": spikes.get(key, 0.0) / (neuron_steps * size) for key, size in sizes.items()}
    rates["firing_rate"] = sum(spikes.get(key, 0.0) for key in sizes) / (neuron_steps * sum(sizes.values()))
    return rates


@torch.no_grad()
def evaluate(
    model: SequenceModel,
    data: SequenceDataset | LazySequenceDataset,
    objective: Objective,
    *,
    batch_size: int = 256,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """Loss, accuracy and firing rates of ``model`` on ``data``.

    Accuracy: per-step objectives average the strict per-step hit rate over steps t ≥ skip (every sequence has
    the same length, so this equals the mean of per-sequence accuracies); sequence objectives use the arg-max of
    their aggregate. Firing rates are spikes per neuron per step: ``rate_layer{i}`` per spiking layer,
    ``rate_output`` for an ALIF readout, and ``firing_rate`` over all spiking neurons (hidden + output); a model
    without spiking neurons (:mod:`hrsnn.classical`) reports none of them.
    Random initial states (if the model uses them) come from ``generator``, by default one seeded with 0, so
    evaluation is deterministic. The model runs in eval mode and is left in the mode it was given in.
    """
    was_training = model.training
    model.eval()
    device = model.device
    if generator is None:
        generator = torch.Generator(device=device).manual_seed(0)
    loss_sum, correct, total, n_seen = 0.0, 0.0, 0, 0
    spikes: dict[str, float] = {}
    sizes: dict[str, int] = {}
    try:
        for x, y in data.batches(batch_size, shuffle=False):
            x, y = x.to(device), y.to(device)
            out = model(x, generator=generator)
            n = x.shape[0]
            if isinstance(objective, PerStepNLL):
                loss = objective.chunk_loss(out, y, 0, x.shape[1])
                pred = objective.predictions(out)
                target = y[:, objective.skip :]
            else:
                running = objective.accumulate(out, 0, None)
                if running is None:
                    raise ConfigError("train.skip_steps", objective.skip, "skips every step of the sequence")
                loss = objective.loss(running, y)
                pred = objective.logits(running).argmax(-1)
                target = y
            loss_sum += float(loss) * n if loss is not None else 0.0
            correct += float((pred == target).sum())
            total += target.numel()
            n_seen += n
            for key, value in spike_statistics(out).items():
                spikes[key] = spikes.get(key, 0.0) + float(value)
            sizes = spiking_sizes(out)
    finally:
        model.train(was_training)
    metrics = {"loss": loss_sum / max(1, n_seen), "accuracy": correct / max(1, total)}
    metrics.update(_firing_rates(spikes, sizes, n_seen * data.n_steps))
    return metrics


# --- optimisation -----------------------------------------------------------------------------------------------

OPTIMIZERS: Mapping[str, type[torch.optim.Optimizer]] = MappingProxyType(
    {"adam": torch.optim.Adam, "adamax": torch.optim.Adamax}
)


def build_optimizer(model: SequenceModel, config: TrainConfig) -> torch.optim.Optimizer:
    """One parameter group per family; τ groups get ``lr × tau_lr_mult[family]``."""
    groups = []
    for family, params in model.parameter_families().items():
        if params:
            mult = config.tau_lr_mult.get(family, 1.0)
            groups.append({"params": params, "lr": config.lr * mult, "name": family})
    return OPTIMIZERS[config.optimizer](groups, lr=config.lr, eps=config.eps, weight_decay=config.weight_decay)


def _step_scheduler(opt: torch.optim.Optimizer, c: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler:
    return torch.optim.lr_scheduler.StepLR(opt, c.step_size, c.gamma)


def _multistep_scheduler(opt: torch.optim.Optimizer, c: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler:
    return torch.optim.lr_scheduler.MultiStepLR(opt, list(c.milestones), c.gamma)


def _linear_scheduler(opt: torch.optim.Optimizer, c: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler:
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: max(0.0, 1.0 - epoch / c.epochs))


def _constant_scheduler(opt: torch.optim.Optimizer, c: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler:
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 1.0)


SCHEDULERS: Mapping[str, Callable[[torch.optim.Optimizer, TrainConfig], torch.optim.lr_scheduler.LRScheduler]] = (
    MappingProxyType(
        {
            "none": _constant_scheduler,
            "step": _step_scheduler,
            "multistep": _multistep_scheduler,
            "linear": _linear_scheduler,
        }
    )
)


@dataclass
class TrainResult:
    """Outcome of :meth:`Trainer.fit`: per-epoch history, the selected epoch and its validation metrics."""

    history: list[dict[str, float]]
    best_epoch: int
    best_val: dict[str, float]
    stopped_early: bool
    wall_time_s: float


class BatchResult(NamedTuple):
    """What :meth:`Trainer.train_batch` returns: the sequence loss, spike sums (:func:`spike_statistics`), the
    predictions and their targets (None and unused when the objective saw no valid step), and the number of spiking
    neurons behind the spike sums (0 for a classical model)."""

    loss: float
    spikes: dict[str, Tensor]
    predictions: Tensor | None
    targets: Tensor
    spiking_neurons: int


EpochCallback = Callable[[int, dict[str, float]], None]


class _SkipBatch(Exception):
    """Internal: the current batch met a non-finite value and ``on_nonfinite="skip"`` drops it."""


class Trainer:
    """Trains a model (:class:`hrsnn.models.SequenceModel`: an RSNN or a classical RNN) by (truncated) BPTT and
    selects the epoch with the best validation accuracy.

    Args:
        model: the network (moved to the configured device).
        config: training options.
        checkpoint_path: where to save an atomic checkpoint after every epoch (safetensors; no pickling).
        on_epoch: called with (epoch, metrics) after every epoch (e.g. to log into the run store).
    """

    def __init__(
        self,
        model: SequenceModel,
        config: TrainConfig,
        *,
        checkpoint_path: str | Path | None = None,
        on_epoch: EpochCallback | None = None,
    ) -> None:
        self.config = config
        self.device = resolve_device(config.device)
        self.model = model.to(self.device)
        self.objective = config.objective()
        self.optimizer = build_optimizer(self.model, config)
        self.scheduler = SCHEDULERS[config.scheduler](self.optimizer, config)
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path is not None else None
        self.on_epoch = on_epoch
        self.shuffle_gen = torch.Generator().manual_seed(config.seed)
        self.state_gen = torch.Generator(device=self.device).manual_seed(config.seed + 1)
        self.history: list[dict[str, float]] = []
        self.best_epoch = 0
        self.best_val: dict[str, float] = {}
        self.best_state: dict[str, Tensor] = {}
        self.bad_epochs = 0
        self.epoch = 0
        self.elapsed = 0.0
        self._batch = 0

    # -- one batch ---------------------------------------------------------------------------------------------
    def train_batch(self, x: Tensor, y: Tensor) -> BatchResult:
        """One (truncated) BPTT pass over a batch (the state, every tensor of it, is detached between windows).

        The loss is that of the whole sequence, whatever ``tbptt``: per-step losses add up over the chunks, and a
        sequence objective reports the loss of its final running sum (each chunk's update uses the loss of the sum
        so far, which is not comparable across window sizes).
        """
        window = self.config.tbptt or x.shape[1]
        state = self.model.initial_state(x.shape[0], self.state_gen)
        running: SequenceSum | None = None
        total_loss = 0.0
        spikes: dict[str, Tensor] = {}
        n_spiking = 0
        preds = []
        for t0 in range(0, x.shape[1], window):
            out = self.model(x[:, t0 : t0 + window], state)
            if isinstance(self.objective, PerStepNLL):
                loss = self.objective.chunk_loss(out, y[:, t0 : t0 + window], t0, x.shape[1])
                if t0 + window > self.objective.skip:
                    start = max(0, self.objective.skip - t0)
                    preds.append(out.readout[:, start:].detach().argmax(-1))
            else:
                running = self.objective.accumulate(out, t0, running)
                loss = self.objective.loss(running, y) if running is not None else None
            if loss is not None:
                self._update(loss)
                chunk_loss = float(loss.detach())
                total_loss = total_loss + chunk_loss if isinstance(self.objective, PerStepNLL) else chunk_loss
            for key, value in spike_statistics(out).items():
                spikes[key] = spikes.get(key, 0) + value
            n_spiking = sum(spiking_sizes(out).values())
            state = detach_state(out.state)
            if running is not None:
                running = SequenceSum(running.total.detach(), running.count)
        if isinstance(self.objective, PerStepNLL):
            pred = torch.cat(preds, 1) if preds else None
            return BatchResult(total_loss, spikes, pred, y[:, self.objective.skip :], n_spiking)
        pred = self.objective.logits(running).argmax(-1) if running is not None else None
        return BatchResult(total_loss, spikes, pred, y, n_spiking)

    def _where(self) -> str:
        return f"epoch {self.epoch + 1}, batch {self._batch}"

    def _nonfinite(self, what: str, *, skippable: bool = True) -> None:
        """Stop (raise NonFiniteError) or, when allowed and configured, drop the current batch."""
        if skippable and self.config.on_nonfinite == "skip":
            self.optimizer.zero_grad(set_to_none=True)
            raise _SkipBatch(what)
        hints = [f"a lower train.lr (now {self.config.lr:g})"]
        if self.config.grad_clip is None:
            hints.append("train.grad_clip")
        if skippable:
            hints.append("train.on_nonfinite='skip' to drop such batches")
        raise NonFiniteError(f"{what} at {self._where()}; training stopped (try {', '.join(hints)})")

    def _update(self, loss: Tensor) -> None:
        if not bool(torch.isfinite(loss.detach())):
            self._nonfinite(f"non-finite loss ({float(loss.detach()):g})")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        named = list(self.model.named_parameters())
        bad = nonfinite_counts((n, p.grad) for n, p in named if p.grad is not None)
        if bad:
            self._nonfinite("non-finite gradient of {} ({} NaN, {} inf)".format(*bad[0]))
        if self.config.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        bad = nonfinite_counts((n, p.detach()) for n, p in named)
        if bad:
            self._nonfinite(
                "parameter {} became non-finite ({} NaN, {} inf) after the optimiser step".format(*bad[0]),
                skippable=False,
            )

    # -- epochs ------------------------------------------------------------------------------------------------
    def train_epoch(self, data: SequenceDataset | LazySequenceDataset) -> dict[str, float]:
        """One pass over the training set; returns mean loss, accuracy and (spiking models) training firing rate."""
        self.model.train()
        n_batches = math.ceil(data.n_samples / self.config.batch_size)
        bar = tqdm(
            data.batches(self.config.batch_size, shuffle=True, generator=self.shuffle_gen),
            total=n_batches,
            desc=f"epoch {self.epoch + 1}",
            leave=False,
            disable=None if self.config.progress else True,
        )
        loss_sum, correct, total, spikes, n_seen, skipped, n_neurons = 0.0, 0.0, 0, 0.0, 0, 0, 0
        for batch, (x, y) in enumerate(bar, start=1):
            self._batch = batch
            x, y = x.to(self.device), y.to(self.device)
            try:
                loss, spk, pred, target, n_neurons = self.train_batch(x, y)
            except _SkipBatch:
                skipped += 1
                continue
            loss_sum += loss * x.shape[0]
            n_seen += x.shape[0]
            if pred is not None:
                correct += float((pred == target).sum())
                total += target.numel()
            spikes += float(sum(spk.values()))
            bar.set_postfix(loss=f"{loss:.4g}")
        if skipped and n_seen == 0:
            raise NonFiniteError(
                f"every batch of epoch {self.epoch + 1} ({skipped}) met a non-finite loss or gradient; "
                f"training stopped (lower train.lr, now {self.config.lr:g})"
            )
        self.scheduler.step()
        metrics = {"train_loss": loss_sum / max(1, n_seen), "train_accuracy": correct / max(1, total)}
        if n_neurons:
            metrics["train_firing_rate"] = spikes / max(1, n_seen * data.n_steps * n_neurons)
        if self.config.on_nonfinite == "skip":
            metrics["skipped_batches"] = skipped
        return metrics

    def fit(
        self,
        train: SequenceDataset | LazySequenceDataset,
        val: SequenceDataset | LazySequenceDataset,
        *,
        resume: bool = False,
        log: Callable[[str], None] | None = None,
    ) -> TrainResult:
        """Train for ``config.epochs`` epochs (or until early stopping), selecting on validation accuracy.

        With ``resume=True`` and an existing checkpoint, training continues after the last saved epoch and gives
        the same result as an uninterrupted run. At the end the model holds the weights of the best epoch.
        """
        if val.n_samples == 0:
            raise ConfigError("data.val", 0, "model selection needs a non-empty validation split")
        if resume and self.checkpoint_path is not None and self.checkpoint_path.exists():
            self.load_checkpoint(self.checkpoint_path)
            if log:
                log(f"resumed from {self.checkpoint_path} after epoch {self.epoch}")
        stopped_early = self.config.patience is not None and self.bad_epochs >= self.config.patience
        while self.epoch < self.config.epochs and not stopped_early:
            start = time.perf_counter()
            metrics = self.train_epoch(train)
            val_metrics = evaluate(self.model, val, self.objective, batch_size=self.config.eval_batch_size)
            if not math.isfinite(val_metrics["loss"]):
                raise NonFiniteError(
                    f"non-finite validation loss ({val_metrics['loss']:g}) after epoch {self.epoch + 1}: the "
                    f"network's output holds NaN/inf; training stopped (lower train.lr, now {self.config.lr:g})"
                )
            self.epoch += 1
            self.elapsed += time.perf_counter() - start
            metrics.update({f"val_{k}": v for k, v in val_metrics.items()})
            metrics["lr"] = self.optimizer.param_groups[0]["lr"]
            metrics["epoch_time_s"] = time.perf_counter() - start
            self.history.append(metrics)
            if not self.best_val or val_metrics["accuracy"] > self.best_val["accuracy"]:
                self.best_epoch, self.best_val, self.bad_epochs = self.epoch, val_metrics, 0
                self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            else:
                self.bad_epochs += 1
            stopped_early = self.config.patience is not None and self.bad_epochs >= self.config.patience
            if self.checkpoint_path is not None:
                self.save_checkpoint(self.checkpoint_path)
            if self.on_epoch is not None:
                self.on_epoch(self.epoch, metrics)
            if log:
                skipped = metrics.get("skipped_batches", 0)
                log(
                    f"epoch {self.epoch:3d}  loss {metrics['train_loss']:.4f}"
                    f"  train acc {metrics['train_accuracy']:.4f}"
                    f"  val acc {val_metrics['accuracy']:.4f}"
                    + (f"  rate {val_metrics['firing_rate']:.4f}" if "firing_rate" in val_metrics else "")
                    + f"  ({metrics['epoch_time_s']:.1f}s)"
                    + (f"  skipped {skipped} non-finite batches" if skipped else "")
                )
        if self.best_state:
            self.model.load_state_dict(self.best_state)
        return TrainResult(self.history, self.best_epoch, self.best_val, stopped_early, self.elapsed)

    # -- checkpoints -------------------------------------------------------------------------------------------
    def save_checkpoint(self, path: Path) -> None:
        """Atomically save model, optimiser, scheduler, RNG states, history and the best model so far."""
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        tensors.update({f"best.{k}": v for k, v in self.best_state.items()})
        opt_tensors, opt_spec = flatten_state_dict(self.optimizer.state_dict(), prefix="optim.")
        tensors.update(opt_tensors)
        tensors["rng.shuffle"] = self.shuffle_gen.get_state()
        tensors["rng.state"] = self.state_gen.get_state()
        sched = copy.deepcopy(self.scheduler.state_dict())
        sched.pop("lr_lambdas", None)
        if "milestones" in sched:
            sched["milestones"] = {str(k): v for k, v in sched["milestones"].items()}
        state: dict[str, Any] = {
            "epoch": self.epoch,
            "elapsed": self.elapsed,
            "history": self.history,
            "best_epoch": self.best_epoch,
            "best_val": self.best_val,
            "bad_epochs": self.bad_epochs,
            "optimizer": opt_spec,
            "scheduler": sched,
        }
        save_checkpoint(path, tensors, state)

    def load_checkpoint(self, path: Path) -> None:
        """Restore everything :meth:`save_checkpoint` wrote."""
        tensors, state = load_checkpoint(path)
        self.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        self.best_state = {k[5:]: v.to(self.device) for k, v in tensors.items() if k.startswith("best.")}
        opt = unflatten_state_dict({k: v for k, v in tensors.items() if k.startswith("optim.")}, state["optimizer"])
        self.optimizer.load_state_dict(opt)
        sched = dict(state["scheduler"])
        if "milestones" in sched:
            sched["milestones"] = Counter({int(k): v for k, v in sched["milestones"].items()})
        self.scheduler.load_state_dict({**self.scheduler.state_dict(), **sched})
        self.shuffle_gen.set_state(tensors["rng.shuffle"])
        self.state_gen.set_state(tensors["rng.state"].cpu())
        self.epoch = state["epoch"]
        self.elapsed = state["elapsed"]
        self.history = state["history"]
        self.best_epoch = state["best_epoch"]
        self.best_val = state["best_val"]
        self.bad_epochs = state["bad_epochs"]
