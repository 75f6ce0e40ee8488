r"""Baseline pruning methods to compare LNP against (spec §3).

* Magnitude pruning: keep the S synapses of largest :math:`|W_{ij}|` (ties: lower flat index (i·N + j) first).
* Random pruning: keep a uniformly random set of n neurons, then a uniformly random set of S synapses.
* Activity-based pruning (AP) of a trained network: measure every neuron's mean firing rate
  :math:`r_i = \frac{1}{B T} \sum_{b, t} s_{b,t,i}` on the given data and remove the least active neurons
  (ties: lower index first) until n remain, in ``rounds`` equal steps with the rates measured again after each.

Equal-budget baselines end with exactly n neurons and S recurrent synapses (by construction; a budget the network
cannot meet raises :class:`hrsnn.errors.ConfigError`), so that a comparison with LNP at its (n, S) isolates *which*
neurons and synapses are kept:

* :func:`global_magnitude_prune`: the n neurons of largest strength
  :math:`\sigma_i = \sum_j |W_{ij}| + \sum_j |W_{ji}|` (in + out; an autapse counts twice; ties: lower index kept),
  then magnitude pruning to S among them.
* :func:`activity_magnitude_prune`: AP to n neurons, magnitude pruning to S, then optional fine-tuning.
* :func:`iterative_magnitude_prune`: lottery-ticket IMP with weight rewinding.

Training is injected as a callable ``train_fn(model) -> None`` that trains its argument in place, so this module
depends on no task. After every call the recurrent mask is applied again (:func:`hrsnn.pruning.base.set_mask`):
whatever the trainer does to the raw weights, pruned synapses stay exactly 0.

All return a :class:`hrsnn.pruning.base.PruneResult` and leave the input model unchanged. The stopping rule on
validation performance of the spec's AP is left to the caller.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from hrsnn._validate import check_bool, check_generator, check_int
from hrsnn.errors import ConfigError
from hrsnn.network import RSNN
from hrsnn.pruning.base import (
    PruneHistoryEntry,
    PruneResult,
    clone_model,
    recurrent_layer,
    recurrent_weight,
    set_mask,
    shrink_layer,
    synapse_total,
)

__all__ = [
    "activity_magnitude_prune",
    "activity_prune",
    "firing_rates",
    "global_magnitude_prune",
    "iterative_magnitude_prune",
    "magnitude_prune",
    "random_prune",
]

Batches = Tensor | Iterable[Tensor | tuple[Tensor, ...] | list[Tensor]]
TrainFn = Callable[[RSNN], None]
"""Trains the network it is given in place (e.g. BPTT on a task) and returns None."""


def _entry(
    model: RSNN,
    layer_index: int,
    iteration: int,
    seconds: float,
    note: str,
    details: Mapping[str, float] | None = None,
) -> PruneHistoryEntry:
    synapses = synapse_total(model, layer_index) if model.layers[layer_index].weight_rec is not None else 0
    size = model.layers[layer_index].size
    return PruneHistoryEntry(iteration, size, synapses, seconds=seconds, note=note, details=details or {})


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


def _keep_largest(model: RSNN, layer_index: int, n_synapses: int) -> None:
    """In place: keep the ``n_synapses`` synapses of largest |W| (all of them if there are fewer)."""
    effective, present = _synapse_flags(model, layer_index)
    magnitude = torch.where(present, effective.abs(), torch.full_like(effective, -1.0)).flatten()
    order = torch.argsort(-magnitude, stable=True)
    _keep_synapses(model, layer_index, order, min(n_synapses, int(present.sum())))


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
    _keep_largest(new, layer_index, n_synapses)
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


# ------------------------------------------------------------------------------------- equal-budget baselines


def _check_budget(model: RSNN, layer_index: int, n_neurons: Any, n_synapses: Any) -> tuple[int, int]:
    """(n_neurons, n_synapses) checked against a recurrent layer: 1 ≤ n ≤ N, 0 ≤ S ≤ min(its synapses, n²)."""
    size = recurrent_layer(model, layer_index).size
    n_neurons = check_int("n_neurons", n_neurons, 1)
    if n_neurons > size:
        raise ConfigError("n_neurons", n_neurons, f"must be <= {size}, the layer size")
    n_synapses = check_int("n_synapses", n_synapses, 0)
    total = synapse_total(model, layer_index)
    if n_synapses > total:
        raise ConfigError("n_synapses", n_synapses, f"must be <= {total}, the layer's recurrent synapses")
    if n_synapses > n_neurons * n_neurons:
        raise ConfigError("n_synapses", n_synapses, f"must be <= n_neurons² = {n_neurons * n_neurons}")
    return n_neurons, n_synapses


def _check_callable(field: str, value: Any) -> None:
    if not callable(value):
        raise ConfigError(field, type(value).__name__, "must be callable")


def _check_available(model: RSNN, layer_index: int, n_synapses: int, allow_fewer: bool) -> None:
    """Raise if the (already shrunk) layer holds fewer than ``n_synapses`` synapses (unless ``allow_fewer``)."""
    available = synapse_total(model, layer_index)
    if not check_bool("allow_fewer_synapses", allow_fewer) and n_synapses > available:
        size = model.layers[layer_index].size
        raise ConfigError("n_synapses", n_synapses, f"exceeds the {available} synapses among the {size} kept neurons")


def _train(train_fn: TrainFn, model: RSNN, layer_index: int) -> None:
    """``train_fn(model)``, then the recurrent mask applied again (pruned synapses back to exactly 0)."""
    returned = train_fn(model)
    if returned is not None:
        raise ConfigError("train_fn", type(returned).__name__, "must train the model in place and return None")
    set_mask(model, layer_index, model.layers[layer_index].mask)


def _strongest(model: RSNN, layer_index: int, n_neurons: int) -> Tensor:
    """Bool (N,) flags of the ``n_neurons`` neurons of largest strength σ (in + out |W|; ties: lower index kept)."""
    effective, _ = _synapse_flags(model, layer_index)
    magnitude = effective.abs().to(device="cpu", dtype=torch.float64)
    strength = magnitude.sum(0) + magnitude.sum(1)
    keep = torch.zeros(strength.numel(), dtype=torch.bool)
    keep[torch.argsort(-strength, stable=True)[:n_neurons]] = True
    return keep


def global_magnitude_prune(
    model: RSNN, layer_index: int, n_neurons: int, n_synapses: int, *, allow_fewer_synapses: bool = False
) -> PruneResult:
    """Equal-budget magnitude pruning: the ``n_neurons`` strongest neurons, then the ``n_synapses`` largest |W|.

    Strength σ (module docstring) is measured on the network as given; the synapse step is
    :func:`magnitude_prune`'s rule (ties: lower flat index first) among the kept neurons. By construction the
    result has exactly ``n_neurons`` neurons and ``n_synapses`` recurrent synapses.

    Args:
        model: the network.
        layer_index: a recurrent layer.
        n_neurons: neurons to keep (1 … N).
        n_synapses: recurrent synapses to keep (0 … the synapses among the kept neurons; ConfigError beyond).
        allow_fewer_synapses: keep every synapse among the kept neurons when they hold fewer than ``n_synapses``
            (the result then has fewer; its counts say so) instead of raising.
    """
    start = time.perf_counter()
    n_neurons, n_synapses = _check_budget(model, layer_index, n_neurons, n_synapses)
    first = _entry(model, layer_index, 0, 0.0, "start")
    keep = _strongest(model, layer_index, n_neurons)
    new = shrink_layer(model, layer_index, keep)
    _check_available(new, layer_index, n_synapses, allow_fewer_synapses)
    _keep_largest(new, layer_index, n_synapses)
    note = f"kept the {n_neurons} strongest neurons and the {n_synapses} largest |W| among them"
    last = _entry(new, layer_index, 1, time.perf_counter() - start, note)
    return PruneResult(new, (first, last), torch.nonzero(keep).flatten())


def activity_magnitude_prune(
    model: RSNN,
    layer_index: int,
    data: Batches,
    n_neurons: int,
    n_synapses: int,
    *,
    rounds: int = 1,
    train_fn: TrainFn | None = None,
    generator: torch.Generator | None = None,
    allow_fewer_synapses: bool = False,
) -> PruneResult:
    """Equal-budget AP: :func:`activity_prune` to ``n_neurons``, magnitude pruning to ``n_synapses``, fine-tuning.

    ``train_fn``, when given, is called once on the pruned network (the fine-tuning of the paper's AP; what it
    trains, e.g. the readout only or every weight, is the caller's choice), and the mask is applied again after
    it. By construction the network has exactly ``n_neurons`` neurons and ``n_synapses`` synapses before
    fine-tuning; after it the mask still has ``n_synapses`` entries (the count is of nonzero weights inside it,
    equal unless training leaves one at exactly 0).

    Args:
        model: the (trained) network.
        layer_index: a recurrent layer.
        data: inputs for the firing rates, as for :func:`firing_rates`.
        n_neurons: neurons to keep (1 … N).
        n_synapses: recurrent synapses to keep (0 … the synapses among the kept neurons; ConfigError beyond).
        rounds: AP removal rounds R ≥ 1.
        train_fn: fine-tunes the network it receives in place; None = no fine-tuning.
        generator: passed to :func:`firing_rates`.
        allow_fewer_synapses: as for :func:`global_magnitude_prune`.

    Returns:
        PruneResult whose history is :func:`activity_prune`'s (iterations 0 … R), then the magnitude step (R + 1)
        and, with ``train_fn``, the fine-tuned network (R + 2).
    """
    n_neurons, n_synapses = _check_budget(model, layer_index, n_neurons, n_synapses)
    rounds = check_int("rounds", rounds, 1)
    if train_fn is not None:
        _check_callable("train_fn", train_fn)
    ap = activity_prune(model, layer_index, data, n_neurons, rounds=rounds, generator=generator)
    start = time.perf_counter()
    new = ap.model
    _check_available(new, layer_index, n_synapses, allow_fewer_synapses)
    _keep_largest(new, layer_index, n_synapses)
    note = f"magnitude pruning to {n_synapses} synapses"
    history = [*ap.history, _entry(new, layer_index, rounds + 1, time.perf_counter() - start, note)]
    if train_fn is not None:
        start = time.perf_counter()
        _train(train_fn, new, layer_index)
        history.append(_entry(new, layer_index, rounds + 2, time.perf_counter() - start, "fine-tuned"))
    return PruneResult(new, tuple(history), ap.kept_neurons)


def _geometric(start: int, end: int, rounds: int) -> list[int]:
    """Counts after rounds 1 … R: round half up of start·(end/start)^(r/R), within [end, start]; the last is end."""
    if start == 0:
        return [0] * rounds
    ratio = end / start
    counts = [min(start, max(end, math.floor(start * ratio ** (r / rounds) + 0.5))) for r in range(1, rounds)]
    return [*counts, end]


def _check_schedule(
    schedule: Sequence[tuple[int, int]], rounds: int, start: tuple[int, int], end: tuple[int, int]
) -> list[tuple[int, int]]:
    """An explicit IMP schedule: ``rounds`` pairs (n_r, s_r), non-increasing from ``start``, ending at ``end``."""
    pairs = [tuple(p) for p in schedule] if isinstance(schedule, Sequence) else None
    if pairs is None or len(pairs) != rounds or any(len(p) != 2 for p in pairs):
        raise ConfigError("schedule", schedule, f"must be {rounds} pairs (neurons, synapses), one per round")
    previous = start
    for r, (n_r, s_r) in enumerate(pairs, start=1):
        if not (isinstance(n_r, int) and isinstance(s_r, int)) or n_r > previous[0] or s_r > previous[1]:
            raise ConfigError(f"schedule[{r - 1}]", (n_r, s_r), f"must be integers <= the previous {previous}")
        previous = (n_r, s_r)
    if previous != end:
        raise ConfigError("schedule", pairs[-1], f"must end at (n_neurons, n_synapses) = {end}")
    return [(int(n), int(s)) for n, s in pairs]


def _rewind_reference(model: RSNN, rewind_state: Mapping[str, Tensor] | None) -> RSNN:
    """A copy of ``model`` holding the rewind point's values (``model``'s own when ``rewind_state`` is None)."""
    reference = clone_model(model)
    if rewind_state is None:
        return reference
    if not isinstance(rewind_state, Mapping):
        raise ConfigError("rewind_state", type(rewind_state).__name__, "must be a state_dict of the model")
    expected = reference.state_dict()
    for key in rewind_state:
        if key not in expected:
            raise ConfigError("rewind_state", key, "is not a key of the model's state_dict")
    for key, value in expected.items():
        if key not in rewind_state:
            raise ConfigError("rewind_state", key, "is missing: must be a full state_dict of the model")
        given = rewind_state[key]
        if not isinstance(given, Tensor) or given.shape != value.shape:
            raise ConfigError("rewind_state", key, f"must be a tensor of shape {tuple(value.shape)}")
    reference.load_state_dict(dict(rewind_state))
    return reference


def iterative_magnitude_prune(
    model: RSNN,
    layer_index: int,
    n_neurons: int,
    n_synapses: int,
    *,
    train_fn: TrainFn,
    rounds: int,
    rewind_state: Mapping[str, Tensor] | None = None,
    on_round: Callable[[int, PruneResult], None] | None = None,
    schedule: Sequence[tuple[int, int]] | None = None,
    pretrained: bool = False,
    allow_fewer_synapses: bool = False,
) -> PruneResult:
    r"""Lottery-ticket iterative magnitude pruning with rewinding (Frankle & Carbin 2019; Frankle et al. 2020).

    Round 0 trains a copy of ``model`` with ``train_fn`` (skipped with ``pretrained``: ``model`` is then the
    trained network and ``rewind_state`` is required). Each round r = 1 … R then

    1. keeps the :math:`n_r` neurons of largest strength σ (module docstring) of the trained network,
    2. keeps the :math:`s_r` synapses of largest trained |W| among them (:func:`magnitude_prune`'s rule),
    3. rewinds: every parameter (input, recurrent and readout weights, biases, τ, the other layers) takes its
       value in ``rewind_state``, restricted to the surviving neurons (:func:`shrink_layer`'s index maps) and,
       for the recurrent weights, to the surviving synapses; the mask is not rewound, so a pruned synapse or
       neuron never returns,
    4. retrains with ``train_fn``.

    ``train_fn`` is thus called R + 1 times (R with ``pretrained``); the result is the network after the last
    retraining.

    Schedules: :math:`n_r = \mathrm{round}(N_0 q_n^r)`, :math:`s_r = \mathrm{round}(S_0 q_s^r)` with
    :math:`q_n = (n / N_0)^{1/R}`, :math:`q_s = (S / S_0)^{1/R}` (round half up; N_0, S_0 the counts of ``model``):
    each round removes a fraction 1 − q of what remains (up to rounding), and :math:`n_R = n`, :math:`s_R = S`.
    An explicit ``schedule`` of R pairs :math:`(n_r, s_r)` (non-increasing, ending at (n, S)) replaces it, e.g. to
    visit the counts another method reached.
    If removing neurons leaves fewer than :math:`s_r` synapses in an earlier round, all of them stay (the history
    shows it); in round R a shortfall raises ConfigError before the last retraining.

    By construction the result has exactly ``n_neurons`` neurons and a mask of exactly ``n_synapses`` entries;
    the reported synapse count is of the nonzero weights inside it (equal unless a weight is exactly 0).

    Args:
        model: the network at the start of training (left unchanged).
        layer_index: a recurrent layer.
        n_neurons: final neurons n (1 … N_0).
        n_synapses: final recurrent synapses S (0 … min(S_0, n²)).
        train_fn: trains the network it receives in place; the mask is applied again after every call.
        rounds: R ≥ 1.
        rewind_state: a ``state_dict`` of ``model`` to rewind to (e.g. captured early in training, Frankle et al.
            2020); None = ``model``'s own values at the call (its initial weights, Frankle & Carbin 2019). Its
            mask entry is not used.
        on_round: called as ``on_round(r, snapshot)`` after the training of round r = 0 … R, where ``snapshot``
            is a PruneResult holding a copy of the trained network, the history so far and the kept neurons, so
            one run yields the network at every intermediate sparsity.
        schedule: the counts after each round, R pairs (n_r, s_r); None = the geometric schedule.
        pretrained: ``model`` is already trained (round 0 does not train it again).
        allow_fewer_synapses: in round R too, keep every synapse when fewer than :math:`s_R` remain (instead of
            raising); the result's counts say how many.

    Returns:
        PruneResult whose history has R + 1 entries (counts after each round's training; ``details`` hold the
        round's ``target_neurons`` and ``target_synapses``).
    """
    n_neurons, n_synapses = _check_budget(model, layer_index, n_neurons, n_synapses)
    rounds = check_int("rounds", rounds, 1)
    _check_callable("train_fn", train_fn)
    if on_round is not None:
        _check_callable("on_round", on_round)
    check_bool("pretrained", pretrained)
    if pretrained and rewind_state is None:
        raise ConfigError("rewind_state", None, "is required with pretrained=True (the model holds trained values)")
    reference = _rewind_reference(model, rewind_state)
    n0, s0 = model.layers[layer_index].size, synapse_total(model, layer_index)
    if schedule is None:
        targets = list(zip(_geometric(n0, n_neurons, rounds), _geometric(s0, n_synapses, rounds), strict=True))
    else:
        targets = _check_schedule(schedule, rounds, (n0, s0), (n_neurons, n_synapses))
    kept = torch.arange(n0)
    history: list[PruneHistoryEntry] = []

    def finish(current: RSNN, r: int, start: float, note: str, details: Mapping[str, float]) -> None:
        history.append(_entry(current, layer_index, r, time.perf_counter() - start, note, details))
        if on_round is not None:
            on_round(r, PruneResult(clone_model(current), tuple(history), kept.clone()))

    start = time.perf_counter()
    current = clone_model(model)
    if not pretrained:
        _train(train_fn, current, layer_index)
    finish(current, 0, start, "trained dense network", {"target_neurons": n0, "target_synapses": s0})
    for r, (n_r, s_r) in enumerate(targets, start=1):
        start = time.perf_counter()
        keep = _strongest(current, layer_index, n_r)
        kept = kept[keep]
        current = shrink_layer(current, layer_index, keep)
        if r == rounds:
            _check_available(current, layer_index, n_synapses, allow_fewer_synapses)
        _keep_largest(current, layer_index, s_r)
        survivors = torch.zeros(n0, dtype=torch.bool)
        survivors[kept] = True
        rewound = shrink_layer(reference, layer_index, survivors)
        current = set_mask(rewound, layer_index, current.layers[layer_index].mask)
        _train(train_fn, current, layer_index)
        note = f"pruned to {n_r} neurons and {s_r} synapses, rewound, retrained"
        finish(current, r, start, note, {"target_neurons": n_r, "target_synapses": s_r})
    return PruneResult(current, tuple(history), kept)
