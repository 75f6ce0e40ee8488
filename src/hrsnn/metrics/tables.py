"""Plain-text rendering of efficiency reports (for the command line)."""

from __future__ import annotations

from collections.abc import Sequence

from hrsnn.errors import ConfigError
from hrsnn.metrics.classical import ClassicalOps
from hrsnn.metrics.counting import EfficiencyReport
from hrsnn.metrics.energy import DEFAULT_ENERGY_SETS, EnergyConstants, compare, energy

__all__ = ["format_table"]


def _count(value: float) -> str:
    if value == int(value):
        return f"{value:,.0f}"
    return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.4g}"


def _fraction(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _render(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> list[str]:
    """Aligned columns: the first ``left`` columns left-aligned, the others right-aligned."""
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        parts = [c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "  ".join(parts).rstrip()

    return [line(headers), *(line(r) for r in rows)]


def format_table(
    report: EfficiencyReport,
    *,
    constants: Sequence[EnergyConstants] = DEFAULT_ENERGY_SETS,
    classical: Sequence[ClassicalOps] = (),
) -> str:
    """Render ``report`` as text: projections (dense vs effective operations), populations (activity and
    state updates), totals, the energy under each of ``constants``, and, for each ``classical`` baseline, its
    counts, energy and the ratio E_classical / E_SRNN. All counts are per sample; energy per sample and per step.

    Raises:
        ConfigError: naming ``constants`` when empty, or ``classical.n_steps`` when a baseline covers another
            sequence length.
    """
    if not isinstance(report, EfficiencyReport):
        raise ConfigError("report", type(report).__name__, "must be an EfficiencyReport")
    if not constants:
        raise ConfigError("constants", constants, "needs at least one EnergyConstants")
    comparisons = [[compare(report, ops, c) for c in constants] for ops in classical]
    inputs = "events (ACs)" if report.binary_input else "analog values (MACs)"
    lines = [
        f"Operations per sample: {report.n_samples} samples x {report.n_steps} steps; inputs counted as {inputs}",
        "",
    ]
    proj_rows = [
        [
            p.name,
            p.source,
            f"{p.n_synapses:,}",
            _fraction(p.connection_sparsity),
            _count(p.dense),
            _count(p.effective_acs),
            _count(p.effective_macs),
        ]
        for p in report.projections
    ]
    proj_rows.append(
        [
            "synaptic total",
            "",
            f"{report.n_synapses:,}",
            _fraction(report.connection_sparsity),
            _count(report.dense),
            _count(report.synaptic_acs),
            _count(report.synaptic_macs),
        ]
    )
    headers = ["projection", "source", "synapses", "conn. sparsity", "dense ops", "effective ACs", "effective MACs"]
    lines += _render(headers, proj_rows, left=2)
    lines.append("")
    pop_rows = [
        [
            p.name,
            p.kind,
            str(p.n_neurons),
            _count(p.spikes) if p.spiking else "-",
            _fraction(p.firing_rate),
            _fraction(p.activation_sparsity),
            _count(p.neuron_acs),
            _count(p.neuron_macs),
        ]
        for p in report.populations
    ]
    pop_rows.append(
        [
            "neuron total",
            "",
            str(sum(p.n_neurons for p in report.populations)),
            _count(sum(p.spikes for p in report.populations)),
            _fraction(report.firing_rate),
            _fraction(report.activation_sparsity),
            _count(report.neuron_acs),
            _count(report.neuron_macs),
        ]
    )
    headers = ["population", "kind", "neurons", "spikes", "firing rate", "act. sparsity", "neuron ACs", "neuron MACs"]
    lines += _render(headers, pop_rows, left=2)
    lines.append("")
    steps = report.n_steps
    for label, (acs, macs) in (("effective", report.counts()), ("dense", report.counts(dense=True))):
        lines.append(
            f"{label} total: {_count(acs)} ACs + {_count(macs)} MACs per sample "
            f"({_count(acs / steps)} ACs + {_count(macs / steps)} MACs per step)"
        )
    lines.append(
        f"parameters {report.parameter_count:,}; footprint {report.footprint:,} bytes; synapses {report.n_synapses:,}"
    )
    lines.append("")
    energy_rows = []
    for c in constants:
        eff, den = energy(report, c), energy(report, c, dense=True)
        energy_rows.append(
            [c.name, f"{c.e_ac_pj:g}", f"{c.e_mac_pj:g}", _count(eff.pj), _count(eff.pj_per_step), _count(den.pj),
             _count(den.pj_per_step)]
        )  # fmt: skip
    headers = ["energy", "E_AC pJ", "E_MAC pJ", "effective pJ", "pJ/step", "dense pJ", "dense pJ/step"]
    lines += _render(headers, energy_rows)
    if classical:
        lines.append("")
        headers = ["baseline", "MACs", "ACs", "parameters"]
        headers += [h for c in constants for h in (f"{c.name} pJ", "ratio")]
        rows = []
        for ops, comps in zip(classical, comparisons, strict=True):
            row = [ops.label(), _count(ops.macs), _count(ops.acs), f"{ops.parameter_count:,}"]
            row += [cell for comp in comps for cell in (_count(comp.classical.pj), f"{comp.ratio:,.1f}x")]
            rows.append(row)
        lines += _render(headers, rows)
        lines.append("ratio = baseline energy / SRNN effective energy, per sample")
    return "\n".join(lines)
