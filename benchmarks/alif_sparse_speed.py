"""ALIF layers: dense against pruned (10 %-dense) recurrence, hrsnn against a plain PyTorch loop; BPTT memory in T.

What is measured. One recurrent ALIF layer built by hrsnn (heterogeneous τ_m and τ_adp, β = 1.8) with either a
dense recurrent mask or an Erdős–Rényi mask of ``--density`` (default 0.1), driven by B = 64 sequences of
128 Bernoulli(0.05) input channels, float32 on the CPU. Contenders:

- ``hrsnn``: the layer as the library runs it (fused kernel on the compiled kernels of :mod:`hrsnn._native` when a C
  compiler is available; a pruned layer takes the sparse path);
- ``pytorch``: the same layer on the PyTorch fallback (``HRSNN_NATIVE=0``: what runs without a C compiler);
- ``plain``: a plain PyTorch loop of the same ALIF equations (:mod:`hrsnn.neurons`), whose recurrent product
  multiplies the masked dense matrix, as every peer library does with a mask.

``--contenders`` picks among them (default all three).

``--floor`` (default 0.002) also times hrsnn on a mask of that density: the work that does not scale with the
synapses (element-wise updates, buffers, input projection, per-step overheads), measured. Dense / floor is then the
largest dense / pruned ratio this machine allows even if the sparse products cost nothing.

Norse's ``LSNNRecurrent`` is not timed against the ALIF layer: its adaptation enters the threshold after the spike
and its reset is Norse's (to a fixed value in the spiking step), which no parameter mapping turns into this ALIF map.

First a spike-identity check (hrsnn, on each of its two paths, against the plain loop, float64, ``--identity-steps``
steps, both masks: number of differing spikes and the largest relative difference of dL/dW_rec), then timings: each
(contender, mask) in a fresh process, ``--passes`` interleaved passes, median of ``--repeats`` forward and
forward+backward calls (loss = number of spikes) after a warm-up, peak RSS. Ratios: each contender against hrsnn
(> 1: hrsnn faster) and dense / pruned per contender.
Finally hrsnn's peak memory of forward+backward at T, 2T and 4T (N = ``--memory-size``): BPTT memory grows linearly in
T when the increments are equal.

Run: ``python benchmarks/alif_sparse_speed.py [--sizes 4096] [--steps 250] [--contenders hrsnn,pytorch,plain]``;
``--quick``: N = 1024, T = 30.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from typing import Any
from unittest import mock

import torch
from torch import Tensor, nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernel_speed import median_time, peak_rss_mib

from hrsnn import _native
from hrsnn.connectivity import ConnectivitySpec
from hrsnn.network import RSNN, LayerConfig, NeuronConfig, RSNNConfig, SpikingLayer
from hrsnn.neurons import ALIFState, alif_step

BATCH = 64
N_INPUTS = 128
INPUT_RATE = 0.05
SEED = 0


def make_layer(n: int, density: float, steps: int, dtype: torch.dtype) -> tuple[SpikingLayer, Tensor]:
    """hrsnn's ALIF layer (dense mask when density >= 1) and a seeded Bernoulli input."""
    conn = ConnectivitySpec() if density >= 1.0 else ConnectivitySpec(kind="erdos_renyi", p=density)
    neuron = NeuronConfig(kind="alif")  # b0 = 0.01, β = 1.8: firing rates of 1–2 %
    cfg = RSNNConfig(n_inputs=N_INPUTS, n_outputs=2, layers=(LayerConfig(size=n, neuron=neuron, connectivity=conn),))
    layer = RSNN(cfg, seed=SEED).layers[0].to(dtype)
    gen = torch.Generator().manual_seed(SEED + 1)
    x = (torch.rand(BATCH, steps, N_INPUTS, generator=gen) < INPUT_RATE).to(dtype)
    return layer, x


def plain_runner(layer: SpikingLayer) -> tuple[Callable[[Tensor], Tensor], Callable[[], Tensor]]:
    """A plain loop of the ALIF step functions on copies of the layer's parameters: (run, dL/dW_rec after backward)."""
    neuron = layer.config.neuron
    w_in = nn.Parameter(layer.input.weight.detach().clone())
    b = nn.Parameter((layer.input.bias + layer.bias_rec).detach().clone())  # type: ignore[operator]
    w_rec = nn.Parameter(layer.weight_rec.detach().clone())  # type: ignore[union-attr]
    mask = layer.mask
    alpha = nn.Parameter(layer.tau_m.decay(neuron.dt).detach().clone())
    rho = nn.Parameter(layer.tau_adp.decay(neuron.dt).detach().clone())  # type: ignore[union-attr]

    def run(x: Tensor) -> Tensor:
        w = torch.where(mask, w_rec, 0.0)
        currents = x @ w_in.t() + b
        z = currents.new_zeros(x.shape[0], layer.size)
        state = ALIFState(z, z, torch.full_like(z, neuron.b0))
        spikes = []
        for c in currents.unbind(1):
            s, state = alif_step(c + state.s @ w.t(), state, alpha, rho, b0=neuron.b0, beta=neuron.beta,
                                 surrogate=layer.surrogate, r_m=neuron.r_m, dt=neuron.dt)  # fmt: skip
            spikes.append(s)
        return torch.stack(spikes, 1)

    return run, lambda: torch.where(mask, w_rec.grad, 0.0)  # type: ignore[arg-type]


def hrsnn_runner(layer: SpikingLayer) -> tuple[Callable[[Tensor], Tensor], Callable[[], Tensor]]:
    def run(x: Tensor) -> Tensor:
        return layer(x, layer.initial_state(x.shape[0], "zeros", None, None)).spikes

    return run, lambda: torch.where(layer.mask, layer.weight_rec.grad, 0.0)  # type: ignore[union-attr, arg-type]


RUNNERS = {"hrsnn": hrsnn_runner, "pytorch": hrsnn_runner, "plain": plain_runner}
"""Contenders; ``pytorch`` is hrsnn with the compiled kernels off (:data:`ENVIRONMENTS`)."""

ENVIRONMENTS = {"pytorch": {_native.ENV_SWITCH: "0"}}
"""Extra environment variables of each contender's worker process."""


def worker(name: str, n: int, density: float, steps: int, repeats: int, threads: int, fwd: bool) -> dict[str, float]:
    torch.set_num_threads(threads)
    layer, x = make_layer(n, density, steps, torch.float32)
    run, _ = RUNNERS[name](layer)
    setup = peak_rss_mib()
    out: dict[str, float] = {"rss_setup_mib": setup}
    if fwd:

        def forward() -> None:
            with torch.no_grad():
                run(x)

        out["fwd_s"] = median_time(forward, repeats)
    out["fwdbwd_s"] = median_time(lambda: run(x).sum().backward(), repeats)
    with torch.no_grad():
        out["rate"] = float(run(x).mean())
    out["rss_fwdbwd_mib"] = peak_rss_mib()
    return out


def spawn(name: str, n: int, density: float, steps: int, repeats: int, threads: int, fwd: bool) -> dict[str, float]:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), **ENVIRONMENTS.get(name, {}))
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", name, "--sizes", str(n), "--density", str(density),
           "--steps", str(steps), "--repeats", str(repeats), "--threads", str(threads)] + ([] if fwd else ["--no-fwd"])
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"worker {name} N={n} density={density} failed:\n{done.stderr.strip()}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def identity(n: int, density: float, steps: int, name: str) -> dict[str, Any]:
    """hrsnn (contender ``name``) against the plain loop in float64: differing spikes and max relative difference of
    dL/dW_rec."""
    results = []
    for contender in ("plain", name):
        layer, x = make_layer(n, density, steps, torch.float64)
        run, grad = RUNNERS[contender](layer)
        with mock.patch.dict(os.environ, ENVIRONMENTS.get(contender, {})):
            spikes = run(x.double())
            spikes.sum().backward()
        results.append((spikes.detach(), grad()))
    (s_ref, g_ref), (s, g) = results
    return {"rate": float(s_ref.mean()), "mismatches": int((s != s_ref).sum()), "of": s.numel(),
            "grad_rel_err": float((g - g_ref).abs().max() / g_ref.abs().max())}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4096")
    parser.add_argument("--density", type=float, default=0.1, help="density of the pruned mask (default 0.1)")
    parser.add_argument("--floor", type=float, default=0.002,
                        help="also time hrsnn at this density: the work that does not scale with the synapses (0: off)")
    parser.add_argument("--steps", type=int, default=250)
    parser.add_argument("--identity-steps", type=int, default=40)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-size", type=int, default=512)
    parser.add_argument("--contenders", default=",".join(RUNNERS), help="among hrsnn, pytorch, plain")
    parser.add_argument("--quick", action="store_true", help="N = 1024, T = 30, 1 pass, 2 repeats")
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--no-fwd", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.worker:
        fwd = not args.no_fwd
        result = worker(args.worker, sizes[0], args.density, args.steps, args.repeats, args.threads, fwd)
        print(json.dumps(result))
        return
    if args.quick:
        sizes, args.steps, args.passes, args.repeats, args.identity_steps = [1024], 30, 1, 2, 20
    contenders = args.contenders.split(",")
    unknown = [c for c in contenders if c not in RUNNERS]
    if unknown:
        parser.error(f"--contenders: unknown {unknown}; choose among {sorted(RUNNERS)}")
    densities = (1.0, args.density)
    native = _native.kernels()
    print(f"recurrent ALIF layer, B={BATCH}, T={args.steps}, {N_INPUTS} Bernoulli({INPUT_RATE}) inputs, float32, "
          f"threads={args.threads}, {args.passes} interleaved passes × median of {args.repeats}; compiled kernels: "
          f"{native.path if native is not None else 'unavailable (hrsnn runs on PyTorch ops)'}")  # fmt: skip
    report: dict[str, Any] = {"steps": args.steps, "threads": args.threads, "sizes": {}}
    for n in sizes:
        entry: dict[str, Any] = {"identity": {}, "timing": {}}
        report["sizes"][str(n)] = entry
        for d in densities:
            for name in (c for c in contenders if c != "plain"):
                check = identity(n, d, args.identity_steps, name)
                entry["identity"][f"{name}@{d:g}"] = check
                print(f"  identity {name} N={n} density={d:g} float64 T={args.identity_steps}: spike rate "
                      f"{check['rate']:.3f}, {check['mismatches']} of {check['of']} spikes differ, dW_rec max rel. "
                      f"diff {check['grad_rel_err']:.1e}")  # fmt: skip
        runs: dict[tuple[str, float], list[dict[str, float]]] = {}
        for _ in range(args.passes):
            for d in densities:
                for name in contenders:
                    r = spawn(name, n, d, args.steps, args.repeats, args.threads, fwd=True)
                    runs.setdefault((name, d), []).append(r)
            if args.floor > 0 and args.floor not in densities and "hrsnn" in contenders:
                r = spawn("hrsnn", n, args.floor, args.steps, args.repeats, args.threads, fwd=True)
                runs.setdefault(("hrsnn", args.floor), []).append(r)
        print(f"  N={n}: {'contender':8s} {'mask':>6s} {'rate':>6s} {'fwd ms':>9s} {'fwd+bwd ms':>11s} {'peak MiB':>9s}"
              "  per pass")
        med = {}
        for (name, d), rs in runs.items():
            med[(name, d)] = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
            m = med[(name, d)]
            per_pass = " / ".join(f"{1e3 * r['fwdbwd_s']:.0f}" for r in rs)
            print(f"        {name:8s} {d:6g} {m['rate']:6.4f} {1e3 * m['fwd_s']:9.0f} {1e3 * m['fwdbwd_s']:11.0f} "
                  f"{m['rss_fwdbwd_mib']:9.0f}  {per_pass}")  # fmt: skip
            entry["timing"][f"{name}@{d:g}"] = {**m, "fwdbwd_passes_s": [r["fwdbwd_s"] for r in rs]}
        for d in densities:
            if "hrsnn" not in contenders:
                break
            h = med[("hrsnn", d)]
            for name in (c for c in contenders if c != "hrsnn"):
                p = med[(name, d)]
                print(f"    mask {d:g}: {name} / hrsnn = {p['fwd_s'] / h['fwd_s']:.2f} (fwd), "
                      f"{p['fwdbwd_s'] / h['fwdbwd_s']:.2f} (fwd+bwd)")  # fmt: skip
        for name in contenders:
            dense, pruned = med[(name, 1.0)], med[(name, args.density)]
            print(f"    {name}: dense / pruned = {dense['fwd_s'] / pruned['fwd_s']:.2f} (fwd), "
                  f"{dense['fwdbwd_s'] / pruned['fwdbwd_s']:.2f} (fwd+bwd)")  # fmt: skip
        if ("hrsnn", args.floor) in med:
            dense, pruned, floor = (med[("hrsnn", d)] for d in (1.0, args.density, args.floor))
            share = floor["fwdbwd_s"] / pruned["fwdbwd_s"]
            print(f"    hrsnn at density {args.floor:g}: {1e3 * floor['fwdbwd_s']:.0f} ms fwd+bwd, {share:.0%} of the "
                  f"pruned pass; dense / floor = {dense['fwdbwd_s'] / floor['fwdbwd_s']:.2f} (the dense / pruned "
                  "ratio if the sparse products cost nothing)")  # fmt: skip
    n_mem = args.memory_size
    print(f"\nBPTT memory of hrsnn (N={n_mem}, dense ALIF, one forward+backward per process)")
    mem = {}
    for steps in (args.steps, 2 * args.steps, 4 * args.steps):
        r = spawn("hrsnn", n_mem, 1.0, steps, 1, args.threads, fwd=False)
        mem[steps] = r["rss_fwdbwd_mib"] - r["rss_setup_mib"]
        print(f"  T={steps:5d}: peak above setup {mem[steps]:7.0f} MiB")
    steps = sorted(mem)
    increments = [mem[b] - mem[a] for a, b in itertools.pairwise(steps)]
    print(f"  increments per doubling: {' then '.join(f'{i:.0f}' for i in increments)} MiB "
          f"(linear growth: the second is twice the first)")  # fmt: skip
    report["memory_mib_above_setup"] = mem
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
