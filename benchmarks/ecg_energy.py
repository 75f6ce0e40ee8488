"""The SRNN-vs-RNN efficiency comparison on ECG-QTDB: accuracy, operations and energy of SRNN, LSTM and GRU.

The SRNN is the authors' trained ECG model (imported; 4 → 36 LIF → 6 ALIF), or a training run of this library given
by ``--srnn-run``. LSTM and GRU are trained here through the runner (``hrsnn train --task ecg --arch lstm|gru``
presets, recorded in ``--store``), on the same splits with the same metric (strict per-step accuracy, t ≥ 10).
Operations per test sequence (1301 steps): the SRNN's counted from the spikes it emits on the QTDB test set, the
classical models' from their sizes (:mod:`hrsnn.metrics`). Energy with the 45 nm constant sets (32-bit float:
0.9 pJ/AC, 4.6 pJ/MAC; 32-bit int: 0.1 / 3.2). Prints the comparison table and the ratios that come out.

    python benchmarks/ecg_energy.py --data-dir ../shared/data [--seed 0] [--srnn-run RUN_ID --store PATH]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from hrsnn.experiments.energy import run_efficiency
from hrsnn.experiments.runner import ExperimentConfig, run_experiment
from hrsnn.experiments.store import RunStore
from hrsnn.importers import import_srnn_ecg
from hrsnn.metrics import DEFAULT_ENERGY_SETS, energy
from hrsnn.metrics.runs import RunEfficiency, format_comparison, model_efficiency
from hrsnn.objectives import make_objective
from hrsnn.tasks.base import resolve_data_dir
from hrsnn.tasks.ecg import load_qtdb
from hrsnn.training import evaluate


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--data-dir", default=None, help="folder holding qtdb/ and srnn/ ($HRSNN_DATA, ../shared/data)")
    p.add_argument("--seed", type=int, default=0, help="seed of the LSTM/GRU runs")
    p.add_argument("--store", default=None, help="run store for the LSTM/GRU runs (default: a temporary one)")
    p.add_argument("--srnn-run", type=int, default=None, help="an SRNN training run in --store instead of the authors'")
    args = p.parse_args()
    torch.set_num_threads(1)
    root = resolve_data_dir(args.data_dir)
    folder = Path(args.store).parent if args.store else Path(tempfile.mkdtemp(prefix="ecg-energy-"))
    store = RunStore(args.store or folder / "runs.sqlite")
    if args.srnn_run is None:
        model = import_srnn_ecg(root / "srnn" / "ecg_nmi_state_dict.pt")
        test = load_qtdb(root).test
        accuracy = evaluate(model, test, make_objective("per_step_nll", skip=10), batch_size=141)["accuracy"]
        srnn = RunEfficiency("authors' SRNN", accuracy, model_efficiency(model, test))
    else:
        srnn = run_efficiency(store, args.srnn_run, root)
    rows = [srnn]
    for arch in ("lstm", "gru"):
        config = ExperimentConfig.from_dict({"task": {"name": "ecg"}, "arch": arch, "seed": args.seed})
        result = run_experiment(config, store=store, runs_dir=folder / "runs", data_dir=root, log=print)
        rows.append(run_efficiency(store, result.run_id, root))
        rows[-1] = RunEfficiency(f"{arch} (run {result.run_id})", result.metrics["test_accuracy"], rows[-1].counts)
    print()
    print(format_comparison(rows, DEFAULT_ENERGY_SETS))
    print()
    for row in rows[1:]:
        for c in DEFAULT_ENERGY_SETS:
            ratio = energy(row.counts, c).pj / energy(srnn.counts, c).pj
            delta = (row.accuracy or 0.0) - (srnn.accuracy or 0.0)
            print(
                f"{row.label} needs {ratio:.1f}x the SRNN's energy under {c.name} "
                f"(accuracy {row.accuracy:.4f} vs {srnn.accuracy:.4f}, {delta:+.4f})"
            )


if __name__ == "__main__":
    main()
