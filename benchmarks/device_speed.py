"""hrsnn's fused layers against a plain PyTorch loop on one device (a GPU where there is one): identity, then speed.

What is measured. Two problems, both built by the other benchmarks of this folder so that the layers are theirs:
the recurrent LIF layer of ``kernel_speed.py`` (B = 64, 128 Bernoulli(0.05) inputs) at ``--sizes``, and the ALIF
layer of ``alif_sparse_speed.py`` with a dense and a ``--density`` mask at ``--alif-size``. Contenders: ``hrsnn``
(the layer as the library runs it on that device: on a GPU the PyTorch path of :mod:`hrsnn.fused`, whose recurrent
product multiplies the masked dense matrix, since the compiled and CSR paths are CPU-only) and ``plain`` (the plain
loop of each benchmark: step functions, masked dense product).

How. First the identity on the device: both contenders in float64 on ``--identity-steps`` steps, hrsnn's spikes and
dL/dW_rec against the plain loop's *on the CPU* (the reference): number of differing spikes and the largest
relative difference of the gradient. Then float32 timings in this one process (the device serves nobody else),
``--passes`` interleaved passes × median of ``--repeats`` forward+backward calls (loss = number of spikes) after a
warm-up, each call closed by a device synchronisation; peak device memory of one forward+backward (CUDA's
allocator statistics; not reported on the CPU, where ``kernel_speed.py`` measures RSS in fresh processes).

Run (about a minute on a GPU): ``python benchmarks/device_speed.py [--device cuda] [--json out.json]``;
``--device cpu --quick`` runs the same code on the CPU (what the tests do).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import alif_sparse_speed as alif_bench
import kernel_speed as lif_bench

Runner = tuple[Callable[[Tensor], Tensor], Callable[[], Tensor]]
"""run: x -> spikes; then, after a backward, dL/dW_rec (masked)."""


def lif_runners(n: int, steps: int, dtype: torch.dtype, device: torch.device) -> tuple[dict[str, Runner], Tensor]:
    """hrsnn's recurrent LIF layer and the plain loop on ``device``, from kernel_speed's seeded problem."""
    p = lif_bench.make_problem(n, steps, dtype)
    p.layer.to(device)
    x = p.x.to(device)
    plain = lif_bench.PlainLoop(p).to(device)
    layer, mask = p.layer, p.layer.mask

    def run_hrsnn(inputs: Tensor) -> Tensor:
        return layer(inputs, layer.initial_state(inputs.shape[0], "zeros", None, None)).spikes

    runners: dict[str, Runner] = {
        "hrsnn": (run_hrsnn, lambda: torch.where(mask, layer.weight_rec.grad, 0.0)),  # type: ignore[union-attr, arg-type]
        "plain": (lambda inputs: plain(inputs)[0], lambda: torch.where(mask, plain.w_rec.grad, 0.0)),  # type: ignore[arg-type]
    }
    return runners, x


def alif_runners(
    n: int, density: float, steps: int, dtype: torch.dtype, device: torch.device
) -> tuple[dict[str, Runner], Tensor]:
    """hrsnn's ALIF layer (dense mask at density 1) and alif_sparse_speed's plain loop on ``device``."""
    layer, x = alif_bench.make_layer(n, density, steps, dtype)
    layer.to(device)
    return {"hrsnn": alif_bench.hrsnn_runner(layer), "plain": alif_bench.plain_runner(layer)}, x.to(device)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def identity(build: Callable[[torch.device], tuple[dict[str, Runner], Tensor]], device: torch.device) -> dict[str, Any]:
    """hrsnn and the plain loop on ``device`` (float64) against the plain loop on the CPU: differing spikes and the
    largest relative difference of dL/dW_rec, per contender."""
    results: dict[str, tuple[Tensor, Tensor]] = {}
    for where, names in ((torch.device("cpu"), ("plain",)), (device, ("plain", "hrsnn"))):
        runners, x = build(where)
        for name in names:
            run, grad = runners[name]
            spikes = run(x)
            spikes.sum().backward()
            results[f"{name}@{where.type}"] = (spikes.detach().cpu(), grad().detach().cpu())
    ref_spikes, ref_grad = results["plain@cpu"]
    out: dict[str, Any] = {"rate": float(ref_spikes.mean())}
    for name in ("plain", "hrsnn"):
        spikes, grad = results[f"{name}@{device.type}"]
        out[name] = {"mismatches": int((spikes != ref_spikes).sum()), "of": spikes.numel(),
                     "grad_rel_err": float((grad - ref_grad).abs().max() / ref_grad.abs().max())}  # fmt: skip
    return out


def timings(runners: dict[str, Runner], x: Tensor, passes: int, repeats: int) -> dict[str, dict[str, Any]]:
    """Median forward+backward seconds per contender (interleaved passes, synchronised calls) and peak device MiB."""
    device = x.device
    calls: dict[str, Callable[[], None]] = {}
    for name, (run, _) in runners.items():

        def call(run: Callable[[Tensor], Tensor] = run) -> None:
            run(x).sum().backward()
            synchronize(device)

        calls[name] = call
    peak: dict[str, float | None] = {}
    for name, call in calls.items():
        call()  # warm-up
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            call()
            peak[name] = torch.cuda.max_memory_allocated(device) / 2**20
        else:
            peak[name] = None
    passes_s: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(passes):
        for name, call in calls.items():
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                call()
                times.append(time.perf_counter() - start)
            passes_s[name].append(statistics.median(times))
    return {name: {"fwdbwd_s": statistics.median(v), "fwdbwd_passes_s": v, "peak_mib": peak[name]}
            for name, v in passes_s.items()}  # fmt: skip


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sizes", default="128,512,2048", help="LIF layer sizes")
    parser.add_argument("--alif-size", type=int, default=4096)
    parser.add_argument("--density", type=float, default=0.1, help="density of the pruned ALIF mask")
    parser.add_argument("--steps", type=int, default=250)
    parser.add_argument("--identity-steps", type=int, default=40)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="LIF N = 64, ALIF N = 256, T = 30, 1 pass × 2")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    try:
        device = torch.device(args.device)
        torch.empty(1, device=device)
    except (RuntimeError, AssertionError) as exc:
        parser.error(f"--device {args.device!r} is not usable here: {exc}")
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
    except ValueError:
        parser.error(f"--sizes: {args.sizes!r} is not a comma-separated list of integers")
    if not 0.0 < args.density < 1.0:
        parser.error(f"--density: {args.density} must lie in (0, 1)")
    if args.quick:
        sizes, args.alif_size, args.steps, args.identity_steps, args.passes, args.repeats = [64], 256, 30, 20, 1, 2
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device {device} ({name}), B={lif_bench.BATCH}, T={args.steps}, float32 timings, {args.passes} "
          f"interleaved passes × median of {args.repeats}; identity in float64 against the CPU plain loop")  # fmt: skip
    configs: list[tuple[str, Callable[[int, torch.dtype, torch.device], tuple[dict[str, Runner], Tensor]]]] = [
        (f"LIF N={n}", lambda steps, dtype, dev, n=n: lif_runners(n, steps, dtype, dev)) for n in sizes
    ]
    for d in (1.0, args.density):
        configs.append((f"ALIF N={args.alif_size} mask {d:g}",
                        lambda steps, dtype, dev, d=d: alif_runners(args.alif_size, d, steps, dtype, dev)))  # fmt: skip
    report: dict[str, Any] = {"device": str(device), "device_name": name, "steps": args.steps, "configs": {}}
    for label, build in configs:
        check = identity(lambda dev, build=build: build(args.identity_steps, torch.float64, dev), device)
        timing = timings(*build(args.steps, torch.float32, device), args.passes, args.repeats)
        report["configs"][label] = {"identity": check, "timing": timing}
        h, p = timing["hrsnn"], timing["plain"]
        peak = "" if h["peak_mib"] is None else f"; peak {h['peak_mib']:.0f} / {p['peak_mib']:.0f} MiB"
        print(f"  {label}: fwd+bwd hrsnn {1e3 * h['fwdbwd_s']:.1f} ms, plain {1e3 * p['fwdbwd_s']:.1f} ms "
              f"(plain / hrsnn = {p['fwdbwd_s'] / h['fwdbwd_s']:.2f}){peak}; identity (rate "
              f"{check['rate']:.3f}): hrsnn {check['hrsnn']['mismatches']} of {check['hrsnn']['of']} spikes differ, "
              f"dW_rec {check['hrsnn']['grad_rel_err']:.1e}; plain on {device.type} "
              f"{check['plain']['mismatches']} differ, {check['plain']['grad_rel_err']:.1e}")  # fmt: skip
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
        print(f"wrote {args.json}")
    return report


if __name__ == "__main__":
    main()
