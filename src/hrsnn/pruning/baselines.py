r"""Baseline pruning methods to compare LNP against (spec §3).

* Magnitude pruning: keep the S synapses of largest :math:`|W_{ij}|` (ties: lower flat index (i·N + j) first).
* Random pruning: keep a uniformly random set of n neurons, then a uniformly random set of S synapses.
* Activity-based pruning (AP) of a trained network: measure every neuron's mean firing rate
  :math:`r_i = \frac{1}{B T} \sum_{b, t} s_{b,t,i}` on the given data and remove the least active neurons
  (ties: lower index first) until n remain, in ``rounds`` equal steps with the rates measured again after each.

All return a :class:`hrsnn.pruning.base.PruneResult` and leave the input model unchanged. Fine-tuning the
readout (or the whole network) after pruning is left to the caller's trainer, as is the stopping rule on
validation performance of the spec's AP.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable

import torch
from torch import Tensor

from hrsnn._validate import check_generator, check_int
from hrsnn.errors import ConfigError
from hrsnn.network import RSNN
from hrsnn.pruning.base import (
    PruneHistoryEntry,
    PruneResult,
    recurrent_layer,
    recurrent_weight,
    set_mask,
    shrink_layer,
    synapse_total,
)

__all__ = ["activity_prune", "firing_rates", "magnitude_prune", "random_prune"]

Batches = Tensor | Iterable[Tensor | tuple[Tensor, ...] | list[Tensor]]


def _entry(model: RSNN, layer_index: int, iteration: int, seconds: float, note: str) -> PruneHistoryEntry:
    synapses = synapse_total(model, layer_index) if model.layers[layer_index].weight_rec is not None else 0
    return PruneHistoryEntry(iteration, model.layers[layer_index].size, synapses, seconds=seconds, note=note)


def _synapse_flags(model: RSNN, layer_index: int) -> tuple[Tensor, Tensor]:
    """(effective weight, synapse flags) of a recurrent layer, flags = nonzero weights inside the mask."""
    layer, _ = recurrent_weight(model, layer_index)
    effective = layer.effective_recurrent_weight().detach()
    return effective, (effective != 0) & layer.mask


def _keep_synapses(model: RSNN, layer_index: int, order: Tensor, n_synapses: int) -> None:
    """Keep the first ``n_synapses`` entries of ``order`` (flat indices of synapses) and zero the rest."""
    effective, present = _synapse_flags(model, layer_index)
    keep = torch.zeros(present.numel(), dtype=torch.bool, device=present.device)
    keep[order[:n_synapses]] = True
    set_mask(model, layer_index, keep.view_as(present), effective)


def magnitude_prune(model: RSNN, layer_index: int, n_synapses: int) -> PruneResult:
    """Keep the ``n_synapses`` recurrent synapses of largest |W| (module docstring).

    Args:
        model: the network.
        layer_index: a recurrent layer.
        n_synapses: synapses to keep (≥ 0); if it is not below the current count nothing changes.
    """
    start = time.perf_counter()
    n_synapses = check_int("n_synapses", n_synapses, 0)
    new = shrink_layer(model, layer_index, torch.ones(recurrent_layer(model, layer_index).size, dtype=torch.bool))
    first = _entry(new, layer_index, 0, 0.0, "start")
    effective, present = _synapse_flags(new, layer_index)
    magnitude = torch.where(present, effective.abs(), torch.full_like(effective, -1.0)).flatten()
    order = torch.argsort(-magnitude, stable=True)
    _keep_synapses(new, layer_index, order, min(n_synapses, int(present.sum())))
    last = _entry(new, layer_index, 1, time.perf_counter() - start, f"magnitude pruning to {n_synapses} synapses")
    return PruneResult(new, (first, last), torch.arange(first.neurons))


def random_prune(
    model: RSNN,
    layer_index: int,
    *,
    generator: torch.Generator,
    n_neurons: int | None = None,
    n_synapses: int | None = None,
) -> PruneResult:
    """Random pruning: a uniform random set of ``n_neurons`` neurons, then of ``n_synapses`` recurrent synapses.

    Draws (in order): ``torch.randperm(N)`` if ``n_neurons`` is given, ``torch.randperm(N'²)`` if
    ``n_synapses`` is given.

    Args:
        model: the network.
        layer_index: the layer (recurrent when ``n_synapses`` is given).
        generator: source of randomness.
        n_neurons: neurons to keep (1 … N), None = all.
        n_synapses: recurrent synapses to keep among the remaining ones, None = all.
    """
    start = time.perf_counter()
    layer = recurrent_layer(model, layer_index, need_recurrent=n_synapses is not None)
    check_generator("generator", generator)
    n = layer.size
    keep = torch.ones(n, dtype=torch.bool)
    if n_neurons is not None:
        n_neurons = check_int("n_neurons", n_neurons, 1)
        if n_neurons > n:
            raise ConfigError("n_neurons", n_neurons, f"must be <= {n}, the layer size")
        keep = torch.zeros(n, dtype=torch.bool)
        keep[torch.randperm(n, generator=generator, device=generator.device).cpu()[:n_neurons]] = True
    first = _entry(model, layer_index, 0, 0.0, "start")
    new = shrink_layer(model, layer_index, keep)
    if n_synapses is not None:
        n_synapses = check_int("n_synapses", n_synapses, 0)
        _, present = _synapse_flags(new, layer_index)
        perm = torch.randperm(present.numel(), generator=generator, device=generator.device).to(present.device)
        order = perm[present.flatten()[perm]]
        _keep_synapses(new, layer_index, order, min(n_synapses, order.numel()))
    note = f"random pruning to {new.layers[layer_index].size} neurons"
    last = _entry(new, layer_index, 1, time.perf_counter() - start, note)
    return PruneResult(new, (first, last), torch.nonzero(keep).flatten())


def _inputs(data: Batches) -> Iterable[Tensor]:
    if isinstance(data, Tensor):
        yield data
        return
    for item in data:
        x = item[0] if isinstance(item, tuple | list) else item
        if not isinstance(x, Tensor):
            raise ConfigError("data", type(x).__name__, "must yield tensors (B, T, C) or tuples starting with one")
        yield x


def firing_rates(model: RSNN, data: Batches, layer_index: int, *, generator: torch.Generator | None = None) -> Tensor:
    """Mean firing rate of every neuron of a layer, :math:`r_i = \\frac{1}{BT}\\sum_{b,t} s_{b,t,i}` (spikes per step).

    Args:
        model: the network (run without gradients; its train/eval mode is restored afterwards).
        data: inputs (B, T, C), or an iterable of such tensors or of tuples whose first item is one (a
            DataLoader of (x, y) works); every batch is run from a fresh initial state.
        layer_index: the layer to measure.
        generator: passed to the model's initial-state draw (for the "uniform" schemes).

    Returns:
        float64 tensor (N,).
    """
    layer = recurrent_layer(model, layer_index, need_recurrent=False)
    if generator is not None:
        check_generator("generator", generator)
    total = torch.zeros(layer.size, dtype=torch.float64)
    count = 0
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for x in _inputs(data):
                spikes = model(x.to(model.device), generator=generator).layer_spikes[layer_index]
                total += spikes.to(torch.float64).sum((0, 1)).cpu()
                count += spikes.shape[0] * spikes.shape[1]
    finally:
        model.train(was_training)
    if count == 0:
        raise ConfigError("data", "empty", "must contain at least one sample with at least one step")
    return total / count


def activity_prune(
    model: RSNN,
    layer_index: int,
    data: Batches,
    n_neurons: int,
    *,
    rounds: int = 1,
    generator: torch.Generator | None = None,
) -> PruneResult:
    """Activity-based pruning: remove the least active neurons down to ``n_neurons`` (module docstring).

    Round r (1 … R) shrinks the layer to :math:`N - \\lceil r (N - n) / R \\rceil` neurons, measuring
    :func:`firing_rates` on ``data`` before each round, so ``data`` must be re-iterable when ``rounds > 1``.
    Retraining between or after rounds is the caller's job.

    Args:
        model: the (trained) network.
        layer_index: the layer to prune.
        data: inputs, as for :func:`firing_rates`.
        n_neurons: neurons to keep (1 … N).
        rounds: number of removal rounds R ≥ 1.
        generator: passed to :func:`firing_rates`.
    """
    layer = recurrent_layer(model, layer_index, need_recurrent=False)
    n = layer.size
    n_neurons = check_int("n_neurons", n_neurons, 1)
    if n_neurons > n:
        raise ConfigError("n_neurons", n_neurons, f"must be <= {n}, the layer size")
    rounds = check_int("rounds", rounds, 1)
    history = [_entry(model, layer_index, 0, 0.0, "start")]
    current = model
    kept = torch.arange(n)
    for r in range(1, rounds + 1):
        start = time.perf_counter()
        target = n - math.ceil(r * (n - n_neurons) / rounds)
        size = current.layers[layer_index].size
        rates = firing_rates(current, data, layer_index, generator=generator)
        order = torch.argsort(rates, stable=True)
        keep = torch.ones(size, dtype=torch.bool)
        keep[order[: size - target]] = False
        current = shrink_layer(current, layer_index, keep)
        kept = kept[keep]
        note = (
            f"removed {size - target} least active neurons (rates {float(rates.min()):.3g}..{float(rates.max()):.3g})"
        )
        history.append(_entry(current, layer_index, r, time.perf_counter() - start, note))
    return PruneResult(current, tuple(history), kept)
