"""The reports of LNP runs: the experiment (``hrsnn lnp``, kind ``"lnp"``) and the sparsity sweep (``hrsnn lnp
--sweep``, kind ``"lnp_sweep"``).

The experiment: the per-iteration history of every seed's pruning (neurons, recurrent synapses, λ_max) from the run
store's epoch rows, so an unfinished run shows the iterations it made, with each iteration's note and step-4
objective J from the recorded results; the top Lyapunov spectra; the comparison table (mean ± std over seeds) and the
claims. The sweep: test metric, λ_max and divergence rate against neuron sparsity with confidence bands, the
summary (mean ± SEM over seeds), the paired comparisons LNP − baseline and where each LNP run stopped. Figures are
drawn by the experiments' own plotting functions from the recorded data (``results.json``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from hrsnn.experiments.lnp import Stat, _fmt, plot_lnp_history, plot_spectra
from hrsnn.experiments.lnp_sweep import LNPStop, SweepRecord, _pm, compare, plot_sweep, summarize
from hrsnn.experiments.store import RunRecord
from hrsnn.io import load_json
from hrsnn.pruning import PruneHistoryEntry
from hrsnn.report.html import Page, Section, record_overview

__all__ = ["fill_lnp", "fill_lnp_sweep", "lnp_histories", "recorded_results"]


def recorded_results(record: RunRecord) -> dict[str, Any] | None:
    """The run's ``results.json`` (written when an LNP run or sweep completes), or None when it has none."""
    paths = [a["path"] for a in record.artifacts if a["kind"] == "results"]
    if not paths or not Path(paths[-1]).is_file():
        return None
    return load_json(paths[-1])


def _optional(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def lnp_histories(record: RunRecord) -> dict[int, tuple[PruneHistoryEntry, ...]]:
    """Every seed's LNP history, rebuilt from the run's epoch rows (one per iteration; NaN stands for "not
    measured")."""
    out: dict[int, list[PruneHistoryEntry]] = {}
    for row in record.epochs:
        m = row["metrics"]
        entry = PruneHistoryEntry(
            int(m["iteration"]),
            int(m["neurons"]),
            int(m["synapses"]),
            _optional(m.get("lambda_max")),
            _optional(m.get("mean_ipr")),
            float(m.get("seconds", 0.0)),
        )
        out.setdefault(int(m["seed"]), []).append(entry)
    return {seed: tuple(entries) for seed, entries in out.items()}


def fill_lnp(page: Page, record: RunRecord) -> None:
    """Add every section of an LNP experiment's report to ``page`` (module docstring)."""
    record_overview(page, record)
    results = recorded_results(record)
    _history(page.section("history", "LNP per-iteration history"), record, results)
    if results is None:
        page.section("results", "Results").note(
            f"the run has no recorded results (it is {record.state}): no spectra, comparison table or claims"
        )
        return
    spectra = {name: torch.tensor(values, dtype=torch.float64) for name, values in results["spectra"].items()}
    section = page.section("spectra", "Lyapunov spectra")
    section.figure(
        "lyapunov-spectra",
        "Top Lyapunov spectra under the probe drive",
        lambda path: plot_spectra(spectra, path, title="top Lyapunov spectra (mean ± std over seeds)"),
        caption="λ₁ of each line is the comparison table's λ_max.",
    )
    _comparison(page.section("comparison", "Comparison table"), results)
    _claims(page.section("claims", "Claims"), results)


def _history(section: Section, record: RunRecord, results: dict[str, Any] | None) -> None:
    histories = lnp_histories(record)
    if not histories:
        section.note(f"no LNP iteration recorded (the run is {record.state})")
        return
    section.figure(
        "lnp-history",
        "Network size and stability per LNP iteration",
        lambda path: plot_lnp_history(histories, path),
        caption="one line per seed; λ_max of the stability measure the run was configured with.",
    )
    recorded = {
        (int(seed), entry["iteration"]): entry
        for seed, entries in (results or {}).get("histories", {}).items()
        for entry in entries
    }
    with_objective = any("bo_best" in e.get("details", {}) for e in recorded.values())
    rows = []
    for seed, entries in histories.items():
        for e in entries:
            extra = recorded.get((seed, e.iteration), {})
            objective = (extra.get("details", {}).get("bo_best"),) if with_objective else ()
            rows.append(
                (
                    seed,
                    e.iteration,
                    e.neurons,
                    e.synapses,
                    e.lambda_max,
                    e.mean_ipr,
                    *objective,
                    e.seconds,
                    extra.get("note", ""),
                )
            )
    headers = ("seed", "iteration", "neurons", "synapses", "λ_max", "mean IPR")
    objective_header = ("step-4 objective J",) if with_objective else ()
    section.table((*headers, *objective_header, "seconds", "note"), rows)


def _comparison(section: Section, results: dict[str, Any]) -> None:
    section.paragraph(
        "mean ± std over seeds (the mean alone for one seed); λ_max and ρ(W) under the probe drive; SOPs/step: "
        "recurrent synaptic operations per step (spikes × nonzero recurrent fan-out) on the test inputs."
    )
    columns = (("neurons", 0), ("synapses", 0), ("metric", 4), ("lambda_max", 4), ("firing_rate", 4))
    columns += (("spectral_radius", 2), ("sops_per_step", 1), ("input_ops_per_step", 1))
    rows = []
    for row in results["table"]:
        cells = {c: _fmt(Stat(**row[c]), digits, row["n_seeds"]) for c, digits in columns}
        cells["metric"] = f"{row['metric_name']} {cells['metric']}"
        rows.append((row["task"], row["variant"], *cells.values(), row["n_seeds"]))
    headers = ("task", "variant", "neurons", "synapses", "test metric", "λ_max", "firing rate", "ρ(W)")
    section.table((*headers, "SOPs/step", "input ops/step", "seeds"), rows)


def _claims(section: Section, results: dict[str, Any]) -> None:
    claims = results.get("claims", [])
    if not claims:
        section.note("no claims were checked")
        return
    rows = [
        (c["task"], c["statement"], c["verdict"], ", ".join(f"{k}={v:.4g}" for k, v in c["numbers"].items()), c["note"])
        for c in claims
    ]
    section.table(("task", "claim", "verdict", "numbers", "note"), rows)


def fill_lnp_sweep(page: Page, record: RunRecord) -> None:
    """Add every section of an LNP sparsity sweep's report to ``page`` (module docstring)."""
    record_overview(page, record)
    results = recorded_results(record)
    records = tuple(SweepRecord(**r) for r in results["records"]) if results is not None else ()
    if results is None or not records:
        page.section("results", "Results").note(f"the sweep has no recorded results (it is {record.state})")
        return
    confidence = float(results["config"].get("confidence", 0.95))
    rows = summarize(records)
    section = page.section("sparsity", "Metric against sparsity")
    section.figure(
        "sparsity",
        "Test metric, λ_max and divergence rate against neuron sparsity",
        lambda path: plot_sweep(rows, path, confidence=confidence),
        caption=f"bands: {confidence:.0%} t intervals of the mean over seeds.",
    )
    summary = page.section("summary", "Summary")
    summary.table(
        ("task", "level", "variant", "seeds", "neurons", "synapses", "metric", "λ_max", "divergence rate", "SOPs/step"),
        [
            (
                r.task,
                r.level,
                r.variant,
                r.n_seeds,
                _pm(r.neurons, 1),
                _pm(r.synapses, 0),
                f"{r.metric_name} {_pm(r.metric, 4)}",
                _pm(r.lambda_max, 4),
                _pm(r.divergence_rate, 4),
                _pm(r.sops_per_step, 1),
            )
            for r in rows
        ],
        caption="mean ± SEM over seeds",
    )
    comparisons = page.section("comparison", "Comparison table")
    comparisons.table(
        (
            "task",
            "level",
            "baseline",
            "pairs",
            "diff",
            "interval low",
            "interval high",
            "wins/losses",
            "sign p",
            "Wilcoxon p",
            "verdict",
            "equal counts",
        ),
        [
            (
                c.task,
                c.level,
                c.baseline,
                c.stats.n,
                c.stats.diff,
                c.stats.ci_low,
                c.stats.ci_high,
                f"{c.stats.wins}/{c.stats.losses}",
                c.stats.sign_p,
                c.stats.wilcoxon_p,
                {"A better": "LNP better", "B better": "baseline better"}.get(c.stats.verdict(), c.stats.verdict()),
                "yes" if c.neurons_equal and c.synapses_equal else "no (counts differ)",
            )
            for c in compare(records, confidence=confidence)
        ],
        caption=f"paired LNP − baseline over seeds (diff > 0: LNP better; {confidence:.0%} t interval)",
    )
    stops = [LNPStop(**s) for s in results.get("lnp_stops", [])]
    page.section("stops", "Where LNP stopped").table(
        ("variant", "seed", "deepest level reached", "neuron sparsity", "note"),
        [(s.variant, s.seed, s.deepest_level, s.sparsity, s.note) for s in sorted(stops)],
    )
