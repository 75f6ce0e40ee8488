"""Speed of SHD loading (HDF5 read + SRNN binning + batching) against a training step of the SHD network.

What is measured. A generated file of SHD's size (8,156 samples, each 8,000-12,000 spikes at uniform times in
[0, 1.2) s on uniform units 0..699, seeded) is written to a temporary folder in the Zenke-lab layout and loaded with
:func:`hrsnn.tasks.spiking_audio.load_shd` at the SRNN binning (4 ms × 250 steps × 700 channels, binary). The
binned-frame cache is built first (one pass over the file, timed). Then each round times, one after the other:

- loading ``--pass-batches`` shuffled batches of 64 (a fresh iterator each time, so worker start-up is included):
  ``0 workers`` (batches built in this process: the baseline every loading ratio is printed against),
  ``2 workers`` (DataLoader worker processes), ``cache, 0 workers`` (frames read from the cache), and
  ``source.load only`` (:meth:`SpikeH5Source.load` called directly, without the data set's per-batch check of
  shape, dtype and NaN/inf: what the binning itself costs);
- training: forward + backward of the SRNN NMI network of SHD (700 → 128 recurrent ALIF → 128 recurrent ALIF →
  20 leaky integrator, hrsnn's defaults; loss: cross-entropy of the summed softmax over t ≥ 10) on batches of
  64 × 250 steps with the weights fixed (an optimiser step changes the firing, hence the cost, from step to step):
  the median of ``--train-batches`` steps after one untimed warm-up step, on pre-built batches, then fed by the
  loader with 0 and with 2 workers.

Rounds interleave all modes, so load from other processes hits them alike; every figure printed is the median over
rounds of a per-round value. "loading / training" is the loading time per sample over the pre-built training time
per sample of the same round: the fraction by which loading lengthens an epoch when nothing overlaps. "x pre-built"
is the training time per sample fed by the loader over the pre-built one.

Run::

    python benchmarks/shd_loading.py                      # the full size, about 2 minutes on 2 cores
    python benchmarks/shd_loading.py --samples 1000 --rounds 1 --pass-batches 8   # a quick look
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import Tensor

from hrsnn.network import RSNN, LayerConfig, RSNNConfig
from hrsnn.objectives import make_objective
from hrsnn.tasks.base import LazySequenceDataset
from hrsnn.tasks.spiking_audio import SHD_N_CLASSES, SRNN_BINNING, load_shd

SEED = 0


def write_shd_like(folder: Path, n_samples: int, spikes: int, times_dtype: str, seed: int = SEED) -> Path:
    """``folder/shd/shd_{train,test}.h5`` in the Zenke-lab layout; the test file holds 64 samples."""
    rng = np.random.default_rng(seed)
    for name, n in (("shd_train.h5", n_samples), ("shd_test.h5", 64)):
        times = np.empty(n, dtype=object)
        units = np.empty(n, dtype=object)
        for i in range(n):
            k = int(rng.integers(int(spikes * 0.8), int(spikes * 1.2) + 1))
            times[i] = np.sort(rng.uniform(0.0, 1.2, k)).astype(times_dtype)
            units[i] = rng.integers(0, 700, k).astype(np.uint16)
        path = folder / "shd" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(path, "w") as f:
            f.create_dataset("spikes/times", (n,), dtype=h5py.vlen_dtype(np.dtype(times_dtype)))[...] = times
            f.create_dataset("spikes/units", (n,), dtype=h5py.vlen_dtype(np.dtype(np.uint16)))[...] = units
            f.create_dataset("labels", data=(np.arange(n) % SHD_N_CLASSES).astype(np.uint16))
            f.create_dataset("extra/speaker", data=np.zeros(n, dtype=np.uint16))
    return folder


def shd_network() -> RSNN:
    """700 → 128r → 128r → 20 integrator, hrsnn's default ALIF neurons (the spec's SHD NMI architecture)."""
    layers = (LayerConfig(size=128), LayerConfig(size=128))
    return RSNN(RSNNConfig(n_inputs=700, n_outputs=SHD_N_CLASSES, layers=layers), seed=SEED)


class Step:
    """One forward+backward pass of the SHD network (sum of softmax over t >= 10, cross-entropy), weights fixed."""

    def __init__(self) -> None:
        self.model = shd_network()
        self.objective = make_objective("sum_softmax_ce", skip=10)
        self.generator = torch.Generator().manual_seed(SEED)
        self.rates: list[float] = []

    def __call__(self, x: Tensor, y: Tensor) -> None:
        out = self.model(x, generator=self.generator)
        loss = self.objective.loss(self.objective.accumulate(out, 0, None), y)
        loss.backward()
        self.model.zero_grad(set_to_none=True)
        self.rates.append(float(out.layer_spikes[0].detach().mean()))


def shuffled(data: LazySequenceDataset, batch_size: int, round_: int) -> Iterator[tuple[Tensor, Tensor]]:
    return data.batches(batch_size, shuffle=True, generator=torch.Generator().manual_seed(SEED + round_))


def loading_time(batches: Iterator[tuple[Tensor, Tensor]], n: int) -> float:
    """Seconds per sample to draw the next ``n`` batches."""
    start = time.perf_counter()
    seen = sum(x.shape[0] for x, _ in islice(batches, n))
    return (time.perf_counter() - start) / seen


def training_time(step: Step, batches: Iterator[tuple[Tensor, Tensor]], n: int) -> float:
    """Median seconds per sample of ``n`` steps on the next batches (drawing them included), after one untimed
    step (warm-up, and for worker processes their start-up)."""
    step(*next(batches))
    times = []
    for _ in range(n):
        start = time.perf_counter()
        x, y = next(batches)
        step(x, y)
        times.append((time.perf_counter() - start) / x.shape[0])
    return statistics.median(times)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=8156, help="training samples in the generated file")
    parser.add_argument("--spikes", type=int, default=10_000, help="mean spikes per sample")
    parser.add_argument("--times-dtype", choices=("float16", "float32"), default="float32")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes of the parallel mode")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pass-batches", type=int, default=32, help="batches drawn per loading measurement")
    parser.add_argument("--train-batches", type=int, default=3, help="timed training steps (after one warm-up)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    b, w = args.batch_size, args.workers
    print(f"cores {os.cpu_count()}, torch threads {torch.get_num_threads()}, batch {b}, {args.rounds} rounds")
    print(f"binning: {SRNN_BINNING.describe()}")
    load: dict[str, list[float]] = {"0 workers": [], f"{w} workers": [], "cache, 0 workers": [], "source.load only": []}
    train: dict[str, list[float]] = {"pre-built batches": [], "fed by 0 workers": [], f"fed by {w} workers": []}
    step = Step()
    with tempfile.TemporaryDirectory(prefix="hrsnn-shd-bench-") as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        write_shd_like(root / "data", args.samples, args.spikes, args.times_dtype)
        size = (root / "data" / "shd" / "shd_train.h5").stat().st_size
        print(f"generated {args.samples} samples (~{args.spikes} spikes each, {args.times_dtype} times): "
              f"{size / 2**20:.0f} MiB in {time.perf_counter() - start:.1f} s")  # fmt: skip

        def dataset(workers: int, cache: bool = False) -> LazySequenceDataset:
            extra = {"cache_dir": root / "cache"} if cache else {}
            return load_shd(data_dir=root / "data", val_fraction=0.0, workers=workers, **extra).train

        start = time.perf_counter()
        cached = dataset(0, cache=True)
        build = time.perf_counter() - start
        plain, parallel = dataset(0), dataset(w)
        prebuilt = list(plain.subset(np.arange(b * (args.train_batches + 1))).batches(b, shuffle=False))
        for r in range(args.rounds):
            load["0 workers"].append(loading_time(shuffled(plain, b, r), args.pass_batches))
            load[f"{w} workers"].append(loading_time(shuffled(parallel, b, r), args.pass_batches))
            load["cache, 0 workers"].append(loading_time(shuffled(cached, b, r), args.pass_batches))
            order = np.random.default_rng(SEED + r).permutation(plain.n_samples)[: b * args.pass_batches]
            start = time.perf_counter()
            for first in range(0, order.size, b):
                plain.source.load(order[first : first + b])
            load["source.load only"].append((time.perf_counter() - start) / order.size)
            train["pre-built batches"].append(training_time(step, iter(prebuilt), args.train_batches))
            train["fed by 0 workers"].append(training_time(step, shuffled(plain, b, r), args.train_batches))
            train[f"fed by {w} workers"].append(training_time(step, shuffled(parallel, b, r), args.train_batches))

    base, reference = load["0 workers"], train["pre-built batches"]

    def median_ratio(a: list[float], c: list[float]) -> float:
        return statistics.median(x / y for x, y in zip(a, c, strict=True))

    print(f"cache build (one pass over the file, 0 workers): {build:.1f} s = {args.samples / build:.0f} samples/s")
    print(f"\n{'loading':<20s} {'samples/s':>10s} {'ms/sample':>10s} {'vs 0 workers':>13s} {'loading / training':>19s}")
    report: dict[str, float] = {"cache_build_s": build}
    for label, times in load.items():
        per = statistics.median(times)
        speed = median_ratio(base, times)
        ratio = median_ratio(times, reference)
        print(f"{label:<20s} {1 / per:10.0f} {per * 1e3:10.3f} {speed:12.2f}x {ratio:19.3f}")
        report[f"load {label} s/sample"] = per
        report[f"load {label} / training"] = ratio
    print(f"\ntraining (forward+backward, {b} x 250 steps, median of {args.train_batches} steps per round; "
          f"layer-1 firing rate {statistics.mean(step.rates):.3f})")  # fmt: skip
    for label, times in train.items():
        per = statistics.median(times)
        ratio = median_ratio(times, reference)
        print(f"  {label:<20s} {per * 1e3:8.2f} ms/sample {ratio:7.3f} x pre-built")
        report[f"train {label} s/sample"] = per
    return report


if __name__ == "__main__":
    main()
