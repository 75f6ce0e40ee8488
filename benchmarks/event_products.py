"""The measurements behind the event-driven thresholds and the buffer pool (ratios in one process).

Five sections; ``dense`` prints PyTorch's time / the compiled time, the others dense time / event time (> 1: the
compiled or event-driven path is faster):

- ``dense``: the compiled dense product of a dense W (``panel_matmul`` on Wᵀ packed in panels, called directly as
  the compiled time loops call it) against PyTorch's ``addmm`` on a step's (64, N) x (N, N) shape, with the time of
  each in µs;

- ``recurrent``: one spike-driven recurrent product with a dense W (compiled ``event_matmul``, the rows of Wᵀ of
  the neurons that fired) against the compiled dense product (``panel_matmul``, what a dense step runs otherwise),
  B = 64, for N and firing rates
  (:data:`hrsnn.fused.NATIVE_EVENT_RATE`);
- ``input``: :class:`hrsnn.events.EventLinear` forced on against off, forward alone and forward+backward of the
  weight, R = 16,000 rows (:data:`hrsnn.events.EVENT_RATE`);
- ``grad``: the compiled event-driven weight gradient (``event_linear_grad``, xᵀg from the nonzeros of x) against
  PyTorch's dense product, R = 16,000 rows, K inputs x N outputs, binary x at several rates
  (:data:`hrsnn.events.EVENT_GRAD_MIN_OUTPUTS`, :data:`hrsnn.fused.NATIVE_EVENT_RATE_GRAD`,
  :data:`hrsnn.fused.NATIVE_EVENT_GRAD_MIN_SIZE`);
- ``pool``: forward+backward of an ALIF layer (``alif_sparse_speed.make_layer``) with the buffer pool keeping
  nothing against the default pool, alternated call by call (:data:`hrsnn.fused.BUFFERS`).

Run: ``python benchmarks/event_products.py [--threads 2] [--sections dense,recurrent,input,grad,pool]``. Needs the
compiled kernels (a C compiler).
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from alif_sparse_speed import make_layer
from kernel_speed import median_time

from hrsnn import _native, fused
from hrsnn.events import EventLinear

RATES = (0.02, 0.05, 0.1, 0.2, 0.4, 0.6)


def dense(threads: int, kernels: _native.Kernels) -> None:
    run = kernels.function("panel_matmul", torch.float32)
    batch = 64
    print(f"dense recurrent product, B={batch}, {threads} threads: addmm / compiled panels (µs each)")
    for n in (128, 512, 2048, 4096):
        w = torch.randn(n, n)
        packed = fused.Recurrence(w, False, events=False).panels_t
        s, c, out = (torch.rand(batch, n) < 0.4).float(), torch.randn(batch, n), torch.empty(batch, n)
        args = (batch, n, n, s.data_ptr(), n, packed.data_ptr(), c.data_ptr(), out.data_ptr(), threads)
        repeats = max(10, 2_000_000 // (n * n) * 10)
        reference = median_time(functools.partial(torch.addmm, c, s, w.t(), out=out), repeats)
        compiled = median_time(functools.partial(run, *args), repeats)
        print(f"  N={n:5d}: {reference / compiled:5.2f}  ({reference * 1e6:.1f} / {compiled * 1e6:.1f} µs)")


def recurrent(threads: int, kernels: _native.Kernels) -> None:
    run = kernels.function("event_matmul", torch.float32)
    batch = 64
    print(f"recurrent product, B={batch}: compiled dense product / spike-driven at rates {RATES}")
    for n in (32, 64, 128, 256, 512, 1024, 2048, 4096):
        rec = fused.Recurrence(torch.randn(n, n), False, events=False)
        wt, c, out = rec.weight_t, torch.randn(batch, n), torch.empty(batch, n)
        ratios = []
        for rate in RATES:
            s = (torch.rand(batch, n) < rate).float()
            dense = median_time(functools.partial(rec.add_into, out, c, s), 40)
            args = (batch, n, c.data_ptr(), s.data_ptr(), None, None, None, wt.data_ptr(), out.data_ptr(), threads)
            ratios.append(dense / median_time(functools.partial(run, *args), 40))
        print(f"  N={n:5d}: " + " ".join(f"{r:5.2f}" for r in ratios))


def call(layer: EventLinear, x: torch.Tensor, g: torch.Tensor | None, events: bool) -> None:
    """The forward (g None, no graph) or forward+backward (gradient g) of ``layer`` with ``events``."""
    layer.events = events
    if g is None:
        with torch.no_grad():
            layer(x)
        return
    layer.weight.grad = layer.bias.grad = None
    layer(x).backward(g)


def input_projection() -> None:
    rows = 16_000
    print(f"input projection, R={rows}: nn.Linear / event-driven (forward | forward+backward of the weight)")
    for k, n in ((128, 4096), (128, 512), (700, 128)):
        layer = EventLinear(k, n)
        g_out = torch.randn(rows, n)
        cells = []
        for rate in RATES[:4]:
            x = (torch.rand(rows, k) < rate).float()
            fwd, fb = (
                median_time(functools.partial(call, layer, x, g, False), 7)
                / median_time(functools.partial(call, layer, x, g, True), 7)
                for g in (None, g_out)
            )
            cells.append(f"{rate}: {fwd:.2f} | {fb:.2f}")
        print(f"  K={k}, N={n}: " + "; ".join(cells))


def weight_gradient(threads: int, kernels: _native.Kernels) -> None:
    run = kernels.function("event_linear_grad", torch.float32)
    rows, rates = 16_000, (0.05, 0.1, 0.2, 0.3, 0.4)
    print(f"weight gradient, R={rows}: x^T g dense / event-driven at rates {rates}")
    for k, n in ((64, 64), (128, 128), (256, 256), (512, 512), (2048, 2048), (128, 512), (128, 4096), (700, 128)):
        g, out = torch.randn(rows, n), torch.empty(k, n)
        ratios = []
        for rate in rates:
            x = (torch.rand(rows, k) < rate).float()
            dense = median_time(functools.partial(torch.mm, x.t(), g), 7)
            args = (rows, k, n, x.data_ptr(), g.data_ptr(), out.data_ptr(), threads)
            ratios.append(dense / median_time(functools.partial(run, *args), 7))
        print(f"  K={k:4d}, N={n:4d}: " + " ".join(f"{r:5.2f}" for r in ratios), flush=True)


def pool(steps: int) -> None:
    print(f"buffer pool, ALIF layer, B=64, T={steps}: forward+backward without / with the pool (alternated)")
    limit = fused.BUFFERS.limit_bytes
    for n, density in ((4096, 0.1), (4096, 1.0), (512, 1.0), (128, 1.0)):
        layer, x = make_layer(n, density, steps, torch.float32)
        times: dict[int, list[float]] = {0: [], limit: []}
        for _ in range(6):
            for cap in times:
                fused.BUFFERS.limit_bytes = cap
                fused.BUFFERS.release()
                layer(x, layer.initial_state(64, "zeros", None, None)).spikes.sum().backward()  # warm (refill)
                start = time.perf_counter()
                layer(x, layer.initial_state(64, "zeros", None, None)).spikes.sum().backward()
                times[cap].append(time.perf_counter() - start)
        fused.BUFFERS.limit_bytes = limit
        off, on = statistics.median(times[0]), statistics.median(times[limit])
        print(f"  N={n}, density {density}: {off:.3f} s / {on:.3f} s = {off / on:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sections", default="dense,recurrent,input,grad,pool")
    parser.add_argument("--steps", type=int, default=200, help="T of the pool section")
    args = parser.parse_args()
    kernels = _native.kernels()
    if kernels is None:
        raise SystemExit("the compiled kernels are not available (no C compiler, or HRSNN_NATIVE=0)")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    sections = {s.strip() for s in args.sections.split(",")}
    if "dense" in sections:
        dense(args.threads, kernels)
    if "recurrent" in sections:
        recurrent(args.threads, kernels)
    if "input" in sections:
        input_projection()
    if "grad" in sections:
        weight_gradient(args.threads, kernels)
    if "pool" in sections:
        pool(args.steps)


if __name__ == "__main__":
    main()
