"""Speed of the fused ALIF sequence kernel against the reference step-function loop (same process, same inputs).

Prints forward+backward time per batch for each path and the ratio reference / fused (median of repeats, after a
warm-up). Run: ``python benchmarks/fused_speed.py [--threads 1]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from hrsnn.connectivity import ConnectivitySpec
from hrsnn.network import RSNN, LayerConfig, NeuronConfig, ReadoutConfig, RSNNConfig


def _model(n_hidden: int, n_in: int, kind: str, p: float | None) -> RSNN:
    conn = ConnectivitySpec(kind="erdos_renyi", p=p) if p else ConnectivitySpec()
    cfg = RSNNConfig(
        n_inputs=n_in,
        n_outputs=6,
        layers=(LayerConfig(size=n_hidden, neuron=NeuronConfig(kind=kind, b0=0.1), connectivity=conn),),
        readout=ReadoutConfig(kind="alif", neuron=NeuronConfig(b0=0.1)),
    )
    return RSNN(cfg, seed=0)


def _time(model: RSNN, x: torch.Tensor, fused: bool, repeats: int) -> float:
    for layer in [*model.layers, model.readout]:
        layer.fused = fused
    times = []
    for i in range(repeats + 1):
        model.zero_grad(set_to_none=True)
        start = time.perf_counter()
        out = model(x)
        (out.readout.sum() + out.layer_spikes[0].sum()).backward()
        if i:  # the first run is a warm-up
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cases = [
        ("ECG 4→36 LIF→6 ALIF, B=64, T=1301", 36, 4, "lif", None, 64, 1301),
        ("ALIF 64 dense, B=32, T=64", 64, 1, "alif", None, 32, 64),
        ("ALIF 256 ER p=0.1, B=32, T=500", 256, 16, "alif", 0.1, 32, 500),
    ]
    print(f"threads={args.threads}; forward+backward per batch, median of {args.repeats}")
    print(f"{'case':40s} {'reference s':>12s} {'fused s':>10s} {'ratio':>7s}")
    for name, n, n_in, kind, p, batch, steps in cases:
        model = _model(n, n_in, kind, p)
        x = (torch.rand(batch, steps, n_in, generator=torch.Generator().manual_seed(0)) < 0.2).float()
        ref = _time(model, x, False, args.repeats)
        fused = _time(model, x, True, args.repeats)
        print(f"{name:40s} {ref:12.3f} {fused:10.3f} {ref / fused:7.2f}x")


if __name__ == "__main__":
    main()
