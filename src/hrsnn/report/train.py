"""The report of a training run (``hrsnn train``, kind ``"train"``).

After the overview (:func:`hrsnn.report.html.record_overview`): the training curves (loss, accuracy and firing
rate per epoch, from the run store); the trained network's sizes; for a spiking network, the τ distributions before
training (the initial network redrawn from the saved model's config and the run's seed, since networks are seeded)
and after (the saved model), spike rasters and per-neuron firing rates on the task's test split (reloaded with the
run's config; a note instead when its data are absent), and the Lyapunov spectrum with λ_max over time
(:func:`hrsnn.dynamics.rsnn_lyapunov`: short and cheap, optional); last, the efficiency the run recorded
(``efficiency.json`` and the final metrics: operations, synaptic operations, energy).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hrsnn.classical import ClassicalRNN
from hrsnn.dynamics import DriveConfig, LyapunovConfig, SpikingMap, plot_lyapunov, rsnn_lyapunov
from hrsnn.errors import DataFormatError, DataNotFoundError
from hrsnn.experiments.lnp import _figure
from hrsnn.experiments.runner import ExperimentConfig, load_splits
from hrsnn.experiments.store import RunRecord
from hrsnn.io import load_json
from hrsnn.models import load_model
from hrsnn.network import RSNN
from hrsnn.neurons import TimeConstants
from hrsnn.report.html import Page, Section, record_overview
from hrsnn.tasks.base import LazySequenceDataset, SequenceDataset

__all__ = [
    "LYAPUNOV_INITIAL_CONDITIONS",
    "LYAPUNOV_RUN",
    "RASTER_SAMPLES",
    "RATE_SAMPLES",
    "Activity",
    "fill_train",
    "plot_raster",
    "plot_rate_histograms",
    "plot_tau_histograms",
    "plot_training_curves",
    "spiking_activity",
    "tau_values",
]

RASTER_SAMPLES = 4
"""Test sequences shown in the raster plot."""

RATE_SAMPLES = 512
"""Firing rates are measured on at most this many test sequences (the first ones)."""

LYAPUNOV_RUN = LyapunovConfig(n_steps=300, transient=100, align=50, n_exponents=5, seed=0)
"""The report's Lyapunov run: top 5 exponents (fewer for a smaller state), 300 accumulated steps."""

LYAPUNOV_INITIAL_CONDITIONS = 2
"""Initial conditions of the report's Lyapunov run (each with its own drive realisation)."""

_CURVES: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("loss", (("train", "train_loss"), ("validation", "val_loss"))),
    ("accuracy", (("train", "train_accuracy"), ("validation", "val_accuracy"))),
    ("firing rate (spikes / neuron / step)", (("train", "train_firing_rate"), ("validation", "val_firing_rate"))),
)


def fill_train(page: Page, record: RunRecord, *, lyapunov: bool = True, data_dir: str | Path | None = None) -> None:
    """Add every section of a training run's report to ``page`` (module docstring)."""
    record_overview(page, record)
    _curves(page.section("curves", "Training curves"), record)
    model = _network(page.section("network", "Trained network"), record)
    if isinstance(model, RSNN):
        _timescales(page.section("timescales", "Time constants τ"), record, model)
        _activity(page.section("activity", "Spiking activity on test samples"), record, model, data_dir)
        lyap = page.section("lyapunov", "Lyapunov spectrum")
        if lyapunov:
            _lyapunov(lyap, model)
        else:
            lyap.note("skipped (--no-lyapunov)")
    _efficiency(page.section("efficiency", "Efficiency"), record)


# ------------------------------------------------------------------------------------------------ curves


def _present(epochs: Sequence[Mapping[str, Any]], key: str) -> bool:
    return any(key in e["metrics"] for e in epochs)


def plot_training_curves(
    epochs: Sequence[Mapping[str, Any]], path: str | Path, *, best_epoch: int | None = None
) -> Path:
    """Loss, accuracy and (spiking networks) firing rate per epoch, train and validation, from the store's epoch
    rows (``{"epoch", "metrics"}``); a dotted line marks the selected epoch."""
    panels = [(title, lines) for title, lines in _CURVES if any(_present(epochs, key) for _, key in lines)]
    figure = _figure((4.3 * max(1, len(panels)), 3.4), path)
    axes = figure.subplots(1, max(1, len(panels)), squeeze=False)[0]
    for ax, (title, lines) in zip(axes, panels, strict=False):
        for label, key in lines:
            points = [(e["epoch"], e["metrics"][key]) for e in epochs if key in e["metrics"]]
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, marker="o", ms=3, label=label)
        if best_epoch is not None:
            ax.axvline(best_epoch, color="grey", ls=":", lw=1.2, label="selected epoch")
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.locator_params(axis="x", integer=True)
        ax.legend(loc="best", fontsize="small")
    figure.savefig(Path(path), dpi=120)
    return Path(path)


def _curves(section: Section, record: RunRecord) -> None:
    epochs = record.epochs
    if not epochs:
        section.note(f"no epochs recorded (the run is {record.state})")
        return
    best = record.final_metrics.get("best_epoch")
    best = best if isinstance(best, int) and not isinstance(best, bool) else None
    section.figure(
        "training-curves",
        "Training curves",
        lambda path: plot_training_curves(epochs, path, best_epoch=best),
        caption=f"{len(epochs)} epochs; the saved model is that of the selected epoch (best validation accuracy).",
    )
    by_epoch = {e["epoch"]: e["metrics"] for e in epochs}
    keys = [key for _, lines in _CURVES for _, key in lines if _present(epochs, key)]
    chosen = by_epoch.get(best, {}) if best is not None else {}
    rows = [(key, epochs[0]["metrics"].get(key), chosen.get(key), epochs[-1]["metrics"].get(key)) for key in keys]
    section.table(("metric", f"epoch {epochs[0]['epoch']}", "selected epoch", f"epoch {epochs[-1]['epoch']}"), rows)


# ---------------------------------------------------------------------------------------------- network


def _network(section: Section, record: RunRecord) -> RSNN | ClassicalRNN | None:
    """The saved model (its sizes shown), or None with a note saying why there is none."""
    paths = [a["path"] for a in record.artifacts if a["kind"] == "model"]
    if not paths:
        section.note(f"no saved model (the run is {record.state}): no τ, activity or Lyapunov sections")
        return None
    if not Path(paths[-1]).is_file():
        section.note(f"the saved model {paths[-1]} is missing: no τ, activity or Lyapunov sections")
        return None
    model = load_model(paths[-1])
    section.paragraph(f"saved model: {paths[-1]}")
    if isinstance(model, ClassicalRNN):
        cfg = model.config
        section.table(
            ("architecture", "hidden sizes", "hidden units", "parameters"),
            [(cfg.kind, ", ".join(map(str, cfg.hidden_sizes)), model.hidden_units(), model.parameter_count())],
        )
        section.note("a classical (non-spiking) network: τ, spike activity and Lyapunov sections do not apply")
        return model
    if not isinstance(model, RSNN):
        raise DataFormatError("model file", paths[-1], f"holds a {type(model).__name__}, not an hrsnn network")
    kinds = {f"layers.{i}": layer.config.neuron.kind for i, layer in enumerate(model.layers)}
    kinds["readout"] = model.config.readout.kind
    section.table(("population", "neuron model", "neurons"), [(k, kinds[k], n) for k, n in model.n_neurons().items()])
    section.table(("projection", "synapses (nonzero weights)"), list(model.synapse_counts().items()))
    return model


# ---------------------------------------------------------------------------------------------- τ


def tau_values(model: RSNN) -> dict[str, np.ndarray]:
    """τ per neuron of every time-constant family of ``model`` (e.g. ``layers.0.tau_m``, ``readout.tau_m``)."""
    return {
        name: module.tau.detach().cpu().double().numpy()
        for name, module in model.named_modules()
        if isinstance(module, TimeConstants)
    }


def plot_tau_histograms(before: Mapping[str, np.ndarray], after: Mapping[str, np.ndarray], path: str | Path) -> Path:
    """One histogram per τ family: the initial values and the trained ones, on shared bins."""
    names = list(after)
    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    figure = _figure((4.2 * cols, 3.0 * rows), path)
    axes = figure.subplots(rows, cols, squeeze=False).ravel()
    for ax, name in zip(axes, names, strict=False):
        values = [v for v in (before.get(name), after[name]) if v is not None]
        edges = np.histogram_bin_edges(np.concatenate(values), bins=20)
        if name in before:
            ax.hist(before[name], bins=edges, histtype="stepfilled", alpha=0.35, color="grey", label="before (init)")
        ax.hist(after[name], bins=edges, histtype="step", lw=1.6, color="tab:blue", label="after (trained)")
        ax.set_title(name)
        ax.set_xlabel("τ (steps)")
        ax.set_ylabel("neurons")
        ax.legend(loc="best", fontsize="small")
    for ax in axes[len(names) :]:
        ax.set_axis_off()
    figure.savefig(Path(path), dpi=120)
    return Path(path)


def _timescales(section: Section, record: RunRecord, model: RSNN) -> None:
    after = tau_values(model)
    before: dict[str, np.ndarray] = {}
    if record.seed is None:
        section.note("the run recorded no seed, so its initial network cannot be redrawn: trained τ only")
    else:
        before = tau_values(RSNN(model.config, seed=record.seed))
        section.paragraph(
            f"before: the initial network, redrawn from the saved config with the run's seed {record.seed}; "
            "after: the saved (trained) network."
        )
    rows = []
    for name, trained in after.items():
        start = before.get(name)
        rows.append(
            (
                name,
                trained.size,
                *((float(start.mean()), float(start.min()), float(start.max())) if start is not None else (None,) * 3),
                float(trained.mean()),
                float(trained.min()),
                float(trained.max()),
                float(np.abs(trained - start).mean()) if start is not None else None,
            )
        )
    headers = ("τ family", "neurons", "init mean", "init min", "init max", "trained mean", "trained min")
    section.table((*headers, "trained max", "mean |Δτ|"), rows)
    section.figure(
        "timescales",
        "τ distributions before and after training",
        lambda path: plot_tau_histograms(before, after, path),
    )


# ------------------------------------------------------------------------------------------- activity


@dataclasses.dataclass(frozen=True)
class Activity:
    """Spikes of the first test sequences and per-neuron firing rates over the measured ones.

    Attributes:
        raster: per spiking population (``layers.<l>``, ``readout`` for an ALIF readout), spikes (k, T, N) of the
            first k sequences. labels: their labels ((k,) or per step (k, T)).
        rates: per population, spikes per neuron and step over the ``n_samples`` measured sequences, (N,).
    """

    raster: Mapping[str, np.ndarray]
    labels: np.ndarray
    rates: Mapping[str, np.ndarray]
    n_samples: int


@torch.no_grad()
def spiking_activity(
    model: RSNN,
    data: SequenceDataset | LazySequenceDataset,
    *,
    n_samples: int = RATE_SAMPLES,
    n_raster: int = RASTER_SAMPLES,
    batch_size: int = 256,
) -> Activity:
    """Run ``model`` on the first ``n_samples`` sequences of ``data`` as :func:`hrsnn.training.evaluate` does
    (eval mode, batches in order, random initial states from one generator seeded with 0), keeping the spikes of
    the first ``n_raster`` and the spike counts of all."""
    n = min(n_samples, data.n_samples)
    was_training = model.training
    model.eval()
    generator = torch.Generator(device=model.device).manual_seed(0)
    totals: dict[str, torch.Tensor] = {}
    raster: dict[str, np.ndarray] = {}
    labels = np.zeros(0, dtype=np.int64)
    try:
        for x, y in data.subset(torch.arange(n)).batches(batch_size, shuffle=False):
            out = model(x.to(model.device), generator=generator)
            populations = {f"layers.{i}": s for i, s in enumerate(out.layer_spikes)}
            if out.output_spikes is not None:
                populations["readout"] = out.output_spikes
            if not raster:
                raster = {k: s[:n_raster].cpu().numpy() for k, s in populations.items()}
                labels = y[:n_raster].cpu().numpy()
            for key, spikes in populations.items():
                totals[key] = totals.get(key, 0) + spikes.double().sum(dim=(0, 1)).cpu()
    finally:
        model.train(was_training)
    rates = {k: (total / (n * data.n_steps)).numpy() for k, total in totals.items()}
    return Activity(raster, labels, rates, n)


def plot_raster(activity: Activity, path: str | Path) -> Path:
    """Spike rasters: one row per spiking population, one column per test sequence (step against neuron)."""
    names = list(activity.raster)
    k = next(iter(activity.raster.values())).shape[0]
    figure = _figure((3.3 * k, 2.5 * len(names)), path)
    axes = figure.subplots(len(names), k, squeeze=False)
    for r, name in enumerate(names):
        spikes = activity.raster[name]
        for c in range(k):
            ax = axes[r][c]
            steps, neurons = np.nonzero(spikes[c])
            size = max(2.0, min(40.0, 2400.0 / spikes.shape[2]))  # marker area: tall ticks for few neurons
            ax.scatter(steps, neurons, s=size, marker="|", color="black", linewidths=0.8)
            ax.set_xlim(-0.5, spikes.shape[1] - 0.5)
            ax.set_ylim(-0.5, spikes.shape[2] - 0.5)
            if r == 0:
                label = activity.labels[c]
                ax.set_title(f"test sequence {c}" + (f" (class {int(label)})" if np.ndim(label) == 0 else ""))
            if c == 0:
                ax.set_ylabel(f"{name}: neuron")
            if r == len(names) - 1:
                ax.set_xlabel("step")
    figure.savefig(Path(path), dpi=120)
    return Path(path)


def plot_rate_histograms(rates: Mapping[str, np.ndarray], path: str | Path) -> Path:
    """Histogram of per-neuron firing rates, one panel per spiking population, with the mean marked."""
    figure = _figure((4.2 * len(rates), 3.2), path)
    axes = figure.subplots(1, len(rates), squeeze=False)[0]
    for ax, (name, values) in zip(axes, rates.items(), strict=True):
        ax.hist(values, bins=np.histogram_bin_edges(values, bins=20), color="tab:blue", alpha=0.8)
        ax.axvline(float(values.mean()), color="black", ls="--", lw=1.2, label=f"mean {values.mean():.4f}")
        ax.set_title(name)
        ax.set_xlabel("firing rate (spikes / step)")
        ax.set_ylabel("neurons")
        ax.legend(loc="best", fontsize="small")
    figure.savefig(Path(path), dpi=120)
    return Path(path)


def _activity(section: Section, record: RunRecord, model: RSNN, data_dir: str | Path | None) -> None:
    try:
        splits = load_splits(ExperimentConfig.from_dict(record.config), data_dir)
    except DataNotFoundError as exc:
        section.note(f"the task's data are absent, so there are no rasters or firing rates here: {exc}")
        return
    if splits.test.n_samples == 0:
        section.note("the task's test split is empty")
        return
    activity = spiking_activity(model, splits.test)
    section.paragraph(
        f"the trained network on the first {activity.n_samples} of {splits.test.n_samples} test sequences "
        f"({splits.test.n_steps} steps each), evaluated as during training; rasters of the first "
        f"{next(iter(activity.raster.values())).shape[0]}."
    )
    section.figure("raster", "Spike rasters", lambda path: plot_raster(activity, path))
    section.figure("firing-rates", "Per-neuron firing rates", lambda path: plot_rate_histograms(activity.rates, path))
    rows = [
        (k, v.size, float(v.mean()), float(np.median(v)), float(v.max()), int((v == 0).sum()))
        for k, v in activity.rates.items()
    ]
    section.table(("population", "neurons", "mean rate", "median rate", "max rate", "silent neurons"), rows)


# ------------------------------------------------------------------------------------------- Lyapunov


def _lyapunov(section: Section, model: RSNN) -> None:
    drive = DriveConfig()
    dim = SpikingMap(model, torch.zeros(1, 1, model.config.n_inputs)).dim
    config = dataclasses.replace(LYAPUNOV_RUN, n_exponents=min(LYAPUNOV_RUN.n_exponents or dim, dim))
    result = rsnn_lyapunov(model, config, method="surrogate", drive=drive, batch=LYAPUNOV_INITIAL_CONDITIONS)
    section.paragraph(
        f"top {config.n_exponents} exponents of the trained network's surrogate-smoothed map (hrsnn.dynamics.snn), "
        f"per step, under Poisson input spikes of rate {drive.rate:g} per step on every input line; "
        f"{LYAPUNOV_INITIAL_CONDITIONS} initial conditions, {config.transient} transient + {config.align} "
        f"alignment + {config.n_steps} accumulated steps. A short estimate for a report; use hrsnn lyapunov for "
        "longer runs."
    )
    section.figure(
        "lyapunov",
        "Lyapunov spectrum and λ_max over time",
        lambda path: plot_lyapunov(result, path, title="trained network"),
    )
    summary = result.summary()
    rows = [(k + 1, m, s) for k, (m, s) in enumerate(zip(summary["exponents"], summary["std"], strict=True))]
    section.table(("k", "λ_k (per step)", "std over initial conditions"), rows)
    section.table(
        ("λ_max", "Kaplan–Yorke dimension", "state dimension"),
        [(summary["lambda_max"], summary["kaplan_yorke"], summary["dim"])],
    )


# ------------------------------------------------------------------------------------------ efficiency

_RECORDED = (
    ("effective ACs (accumulates)", "ops_acs"),
    ("effective MACs (multiply-accumulates)", "ops_macs"),
    ("synaptic operations (SOPs: effective synaptic ACs + MACs)", "synaptic_ops"),
    ("dense synaptic operations", "dense_ops"),
)


def _efficiency(section: Section, record: RunRecord) -> None:
    metrics = record.final_metrics
    steps = metrics.get("ops_steps")
    rows = [(label, metrics[key]) for label, key in _RECORDED if key in metrics]
    rows += [
        (f"energy, {k.removeprefix('energy_pj.')} (pJ)", v) for k, v in metrics.items() if k.startswith("energy_pj.")
    ]
    if not rows or not isinstance(steps, int) or steps < 1:
        section.note(f"no efficiency recorded (the run is {record.state})")
        return
    section.table(
        ("quantity", "per test sequence", "per step"),
        [(label, value, value / steps if isinstance(value, int | float) else None) for label, value in rows],
        caption=f"recorded with the run, per test sequence of {steps} steps",
    )
    files = [a["path"] for a in record.artifacts if a["kind"] == "efficiency"]
    if not files or not Path(files[-1]).is_file():
        section.note("the run's efficiency.json is absent: no per-projection tables")
        return
    counts = load_json(files[-1])
    if "projections" in counts:
        _spiking_counts(section, counts)
    else:
        scalars = [(k, v) for k, v in counts.items() if isinstance(v, int | float) and not isinstance(v, bool)]
        section.table(("count", "value"), scalars, caption="operations per test sequence (classical model)")
        layers = counts.get("layers") or []
        if layers:
            keys = list(layers[0])
            section.table(("layer", *keys), [(i, *(layer.get(k) for k in keys)) for i, layer in enumerate(layers)])


def _spiking_counts(section: Section, counts: Mapping[str, Any]) -> None:
    """The tables of an :class:`hrsnn.metrics.EfficiencyReport` dict (``efficiency.json`` of a spiking run)."""
    n = counts["n_samples"]
    section.table(
        ("projection", "source", "synapses", "conn. sparsity", "dense ops", "effective ACs", "effective MACs"),
        [
            (
                p["name"],
                p["source"],
                p["n_synapses"],
                p["connection_sparsity"],
                p["dense"],
                p["effective_acs"],
                p["effective_macs"],
            )
            for p in counts["projections"]
        ],
        caption=f"synaptic operations per sample ({n} test samples counted)",
    )
    section.table(
        ("population", "kind", "neurons", "spikes", "firing rate", "act. sparsity", "neuron ACs", "neuron MACs"),
        [
            (
                p["name"],
                p["kind"],
                p["n_neurons"],
                p["spikes"] if p["spiking"] else None,
                p["firing_rate"],
                p["activation_sparsity"],
                p["neuron_acs"],
                p["neuron_macs"],
            )
            for p in counts["populations"]
        ],
        caption="activity and state updates per sample",
    )
    section.table(
        ("constants", "E_AC (pJ)", "E_MAC (pJ)", "effective pJ", "effective pJ/step", "dense pJ", "dense pJ/step"),
        [
            (
                name,
                e["constants"]["e_ac_pj"],
                e["constants"]["e_mac_pj"],
                e["effective"]["pj"],
                e["effective"]["pj_per_step"],
                e["dense"]["pj"],
                e["dense"]["pj_per_step"],
            )
            for name, e in counts.get("energy", {}).items()
        ],
        caption="energy per sample",
    )
    section.table(
        ("parameters", "footprint (bytes)", "synapses", "connection sparsity", "activation sparsity"),
        [
            (
                counts["parameter_count"],
                counts["footprint"],
                counts["n_synapses"],
                counts["connection_sparsity"],
                counts["activation_sparsity"],
            )
        ],
    )
