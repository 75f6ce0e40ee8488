"""Efficiency of trained models, as recorded for every training run and compared by ``hrsnn energy``.

:func:`model_efficiency` counts any model the runner trains: an :class:`~hrsnn.network.RSNN` from its activity on
the data (:func:`~hrsnn.metrics.measure_efficiency`), a :class:`~hrsnn.classical.ClassicalRNN` from its sizes
(:func:`~hrsnn.metrics.classical_macs`, readout at every step as the model applies it). :func:`efficiency_metrics`
flattens the counts and their energy under each constant set into the numbers a run records, and
:func:`format_comparison` renders several runs side by side with energy ratios against the first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from hrsnn.classical import ClassicalRNN
from hrsnn.errors import ConfigError
from hrsnn.metrics.classical import ClassicalOps, classical_macs
from hrsnn.metrics.counting import Data, EfficiencyReport, measure_efficiency
from hrsnn.metrics.energy import DEFAULT_ENERGY_SETS, EnergyConstants, energy
from hrsnn.network import RSNN

Counts = EfficiencyReport | ClassicalOps
"""Operation counts of a spiking or a classical model."""


def model_efficiency(model: RSNN | ClassicalRNN, data: Data, *, batch_size: int = 256) -> Counts:
    """Operation counts per sample of ``model`` on ``data`` (the test split, by convention); random initial states
    come from a generator seeded with 0, as in :func:`hrsnn.training.evaluate`, so the counts are deterministic."""
    if isinstance(model, RSNN):
        generator = torch.Generator(device=model.device).manual_seed(0)
        return measure_efficiency(model, data, batch_size=batch_size, generator=generator)
    if isinstance(model, ClassicalRNN):
        cfg = model.config
        n_steps = data.shape[1] if hasattr(data, "shape") else data.n_steps
        return classical_macs(cfg.kind, cfg.n_inputs, cfg.hidden_sizes, cfg.n_outputs, n_steps, bias=cfg.bias)
    raise ConfigError("model", type(model).__name__, "must be an RSNN or a ClassicalRNN")


def efficiency_metrics(counts: Counts, constants: Sequence[EnergyConstants] = DEFAULT_ENERGY_SETS) -> dict[str, Any]:
    """The numbers a run records: ``ops_acs``, ``ops_macs`` (effective, per sample), ``ops_steps``,
    ``energy_pj.<set>`` (per sample) and, for a spiking model, ``synaptic_ops`` (NeuroBench's effective ACs + MACs,
    per sample) and ``dense_ops`` (NeuroBench's Dense)."""
    acs, macs = counts.counts()
    out: dict[str, Any] = {"ops_acs": acs, "ops_macs": macs, "ops_steps": counts.n_steps}
    if isinstance(counts, EfficiencyReport):
        out["synaptic_ops"] = counts.synaptic_acs + counts.synaptic_macs
        out["dense_ops"] = counts.dense
    for c in constants:
        out[f"energy_pj.{c.name}"] = energy(counts, c).pj
    return out


@dataclass(frozen=True)
class RunEfficiency:
    """One row of a comparison: a run's label, its test accuracy and its operation counts."""

    label: str
    accuracy: float | None
    counts: Counts


def _fmt(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def format_comparison(
    rows: Sequence[RunEfficiency], constants: Sequence[EnergyConstants] = DEFAULT_ENERGY_SETS
) -> str:
    """Runs side by side: accuracy, parameters, ACs and MACs per step, energy per sample under each constant set,
    and each run's energy as a multiple of the first run's (``x first``)."""
    if not rows:
        raise ConfigError("runs", 0, "need at least one run to compare")
    steps = {r.counts.n_steps for r in rows}
    if len(steps) != 1:
        raise ConfigError("runs", sorted(steps), "must cover sequences of one length (the same task)")
    first = rows[0]
    headers = ["run", "test acc", "params", "ACs/step", "MACs/step"]
    for c in constants:
        headers += [f"{c.name} nJ", "x first"]
    lines = []
    for r in rows:
        acs, macs = r.counts.counts()
        n = r.counts.n_steps
        cells = [r.label, "-" if r.accuracy is None else f"{r.accuracy:.4f}", f"{r.counts.parameter_count:,}"]
        cells += [_fmt(acs / n), _fmt(macs / n)]
        for c in constants:
            pj, base = energy(r.counts, c).pj, energy(first.counts, c).pj
            cells += [_fmt(pj / 1000.0), f"{pj / base:.3g}" if base > 0 else "inf"]
        lines.append(cells)
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]
    out = ["  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(headers, widths, strict=True)))]
    out.append("  ".join("-" * w for w in widths))
    for line in lines:
        cells = (c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True)))
        out.append("  ".join(cells))
    out.append(
        f"energy per test sequence of {first.counts.n_steps} steps (effective counts); "
        "x first = this run's energy / the first run's"
    )
    return "\n".join(out)
