r"""Training objectives (loss aggregations of the SRNN scripts) and their predictions.

With readout :math:`u^o_t` (B, C) at step t and the first ``skip`` steps ignored (t ≥ k):

- ``per_step_nll`` (ECG, SoLi): :math:`L = \sum_{t \ge k} \mathrm{NLL}(\log\mathrm{softmax}(u^o_t), y_t)`, NLL
  averaged over the batch and **summed** over time (``time_mean=True`` divides by the number of steps).
  Prediction per step: :math:`\arg\max u^o_t`.
- ``sum_softmax_ce`` (SHD, ICONS): :math:`P = \sum_{t \ge k} \mathrm{softmax}(u^o_t)`,
  :math:`L = \mathrm{CE}(P, y)`, i.e. log-softmax is applied to the summed probabilities (the authors' quirk).
- ``mean_readout_ce`` (SSC, GSC): :math:`L = \mathrm{CE}(\frac{1}{n}\sum_{t \ge k} u^o_t, y)`.
- ``spike_count_ce`` (S/PS-MNIST "adp-spike"): :math:`L = \mathrm{CE}(\sum_{t \ge k} s^o_t, y)`, spike counts of
  ALIF output neurons as logits.

Sequence objectives keep a running sum so truncated BPTT can evaluate the loss at every chunk end on the sum so far
(the PS-MNIST scheme); the sum is detached between chunks by the trainer.

What :math:`u^o_t` is depends on the model (:class:`hrsnn.models.ModelOutput`): an SRNN's readout membranes (a
leaky integrator's, or an ALIF output layer's, whose soft reset keeps it near its threshold b0; the authors' ECG
loss applies log-softmax to exactly these membranes), or a classical RNN's linear readout, unbounded logits. Every
objective but ``spike_count_ce`` is a proper classification loss for either: ``per_step_nll`` and
``mean_readout_ce`` are the usual cross-entropy of per-step and of time-averaged logits; ``sum_softmax_ce`` sums
probabilities, so its logits lie in [0, n] whatever the scale of :math:`u^o_t`. ``spike_count_ce`` needs spiking
output units, which a classical model does not have.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from hrsnn.errors import ConfigError
from hrsnn.models import ModelOutput


class SequenceSum(NamedTuple):
    """Running sum over valid steps of a sequence objective's per-step values, and how many steps it holds."""

    total: Tensor
    count: int


def _valid_slice(t0: int, n_steps: int, skip: int) -> slice:
    """Steps of a chunk starting at global step t0 whose global index is ≥ skip."""
    return slice(max(0, skip - t0), n_steps)


@dataclass(frozen=True)
class PerStepNLL:
    """Per-step negative log-likelihood, summed (or averaged) over steps t ≥ skip."""

    skip: int = 0
    time_mean: bool = False
    per_step = True

    def chunk_loss(self, out: ModelOutput, y: Tensor, t0: int, total_steps: int) -> Tensor | None:
        """Loss of the valid steps inside a chunk that starts at global step ``t0``; None if it has none.

        ``y`` holds the labels of the chunk's steps, (B, T_chunk).
        """
        sl = _valid_slice(t0, out.readout.shape[1], self.skip)
        logits = out.readout[:, sl]
        if logits.shape[1] == 0:
            return None
        nll = F.cross_entropy(logits.transpose(1, 2), y[:, sl], reduction="none")  # (B, T)
        loss = nll.mean(0).sum()
        if self.time_mean:
            loss = loss / max(1, total_steps - self.skip)
        return loss

    def predictions(self, out: ModelOutput) -> Tensor:
        """Class per valid step, (B, T − skip)."""
        return out.readout[:, self.skip :].argmax(-1)


def _softmax_values(out: ModelOutput) -> Tensor:
    return torch.softmax(out.readout, -1)


def _readout_values(out: ModelOutput) -> Tensor:
    return out.readout


def _spike_values(out: ModelOutput) -> Tensor:
    if out.output_spikes is None:
        raise ConfigError("train.loss", "spike_count_ce", "needs a spiking ('alif') readout")
    return out.output_spikes


@dataclass(frozen=True)
class SequenceCE:
    """Cross-entropy on an aggregate over steps t ≥ skip of a per-step value (see module docstring)."""

    values: Callable[[ModelOutput], Tensor]
    mean: bool
    skip: int = 0
    per_step = False

    def accumulate(self, out: ModelOutput, t0: int, running: SequenceSum | None) -> SequenceSum | None:
        """Add the chunk's valid steps to the running sum."""
        sl = _valid_slice(t0, out.readout.shape[1], self.skip)
        vals = self.values(out)[:, sl]
        if vals.shape[1] == 0:
            return running
        part = SequenceSum(vals.sum(1), vals.shape[1])
        if running is None:
            return part
        return SequenceSum(running.total + part.total, running.count + part.count)

    def logits(self, running: SequenceSum) -> Tensor:
        """Logits fed to cross-entropy: the sum, or the mean for ``mean_readout_ce``."""
        return running.total / running.count if self.mean else running.total

    def loss(self, running: SequenceSum, y: Tensor) -> Tensor:
        """CE(logits, y), averaged over the batch."""
        return F.cross_entropy(self.logits(running), y)


Objective = PerStepNLL | SequenceCE


def _per_step(skip: int, time_mean: bool) -> Objective:
    return PerStepNLL(skip, time_mean)


def _sum_softmax(skip: int, time_mean: bool) -> Objective:
    return SequenceCE(_softmax_values, mean=False, skip=skip)


def _mean_readout(skip: int, time_mean: bool) -> Objective:
    return SequenceCE(_readout_values, mean=True, skip=skip)


def _spike_count(skip: int, time_mean: bool) -> Objective:
    return SequenceCE(_spike_values, mean=False, skip=skip)


OBJECTIVES: Mapping[str, Callable[[int, bool], Objective]] = MappingProxyType(
    {
        "per_step_nll": _per_step,
        "sum_softmax_ce": _sum_softmax,
        "mean_readout_ce": _mean_readout,
        "spike_count_ce": _spike_count,
    }
)


def make_objective(name: str, skip: int = 0, time_mean: bool = False) -> Objective:
    """Objective by config name; ``skip`` output steps are ignored by loss and prediction."""
    factory = OBJECTIVES.get(name)
    if factory is None:
        raise ConfigError("train.loss", name, f"unknown; choose one of {sorted(OBJECTIVES)}")
    if skip < 0:
        raise ConfigError("train.skip_steps", skip, "must be >= 0")
    return factory(skip, time_mean)
