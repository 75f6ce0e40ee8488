"""``hrsnn energy RUN_ID [RUN_ID ...]``: operation counts and energy of trained runs, alone or side by side.

Each run's saved model is counted on its task's test split (rebuilt from the run's config and seed): an RSNN from
the spikes it emits there (:func:`hrsnn.metrics.measure_efficiency`), an LSTM/GRU/Elman model from its sizes
(:func:`hrsnn.metrics.classical_macs`). One run prints its full efficiency table; several print a comparison whose
``x first`` columns give each run's energy as a multiple of the first run's (e.g. ``hrsnn energy 1 2 3`` with an
SRNN run first, then LSTM and GRU runs of the same task).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hrsnn.errors import ConfigError
from hrsnn.experiments.runner import ExperimentConfig, load_splits
from hrsnn.experiments.store import RunStore
from hrsnn.metrics import DEFAULT_ENERGY_SETS, EfficiencyReport, EnergyConstants, energy, energy_constants, format_table
from hrsnn.metrics.runs import RunEfficiency, format_comparison, model_efficiency
from hrsnn.models import load_model


def _constants(args: argparse.Namespace) -> tuple[EnergyConstants, ...]:
    chosen = tuple(energy_constants(name) for name in args.constants) if args.constants else DEFAULT_ENERGY_SETS
    if (args.e_ac is None) != (args.e_mac is None):
        raise ConfigError("--e-ac/--e-mac", (args.e_ac, args.e_mac), "give both energies of a user constant set")
    if args.e_ac is not None:
        chosen += (EnergyConstants("user", args.e_ac, args.e_mac, "given on the command line"),)
    return chosen


def run_efficiency(store: RunStore, run_id: int, data_dir: str | Path | None = None) -> RunEfficiency:
    """Count the saved model of training run ``run_id`` on its task's test split."""
    record = store.get_run(run_id)
    if record.kind != "train":
        raise ConfigError("RUN_ID", run_id, f"is a {record.kind!r} run, not a training run")
    models = [a["path"] for a in record.artifacts if a["kind"] == "model"]
    if not models:
        raise ConfigError("RUN_ID", run_id, f"has no saved model (the run is {record.state})")
    config = ExperimentConfig.from_dict(record.config)
    splits = load_splits(config, data_dir)
    counts = model_efficiency(load_model(models[-1]), splits.test)
    return RunEfficiency(f"{run_id} {config.arch}", record.final_metrics.get("test_accuracy"), counts)


def cmd_energy(args: argparse.Namespace) -> int:
    """Handler of ``hrsnn energy``: print the table (or ``--json``); returns 0."""
    constants = _constants(args)
    store = RunStore(args.store)
    rows = [run_efficiency(store, run_id, args.data_dir) for run_id in args.run_ids]
    if args.json:
        payload = [
            {
                "run": row.label,
                "test_accuracy": row.accuracy,
                "counts": row.counts.to_dict(constants)
                if isinstance(row.counts, EfficiencyReport)
                else row.counts.to_dict(),
                "energy_pj": {c.name: energy(row.counts, c).pj for c in constants},
            }
            for row in rows
        ]
        print(json.dumps(payload, allow_nan=True))
    elif len(rows) == 1 and isinstance(rows[0].counts, EfficiencyReport):
        print(f"run {rows[0].label}\n" + format_table(rows[0].counts, constants=constants))
    else:
        print(format_comparison(rows, constants))
    return 0
