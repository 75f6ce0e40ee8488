"""Speed of the RSNN Lyapunov spectrum (surrogate reading) on CPU, and how it scales with N and with m.

Target (issue 3): the top-50 spectrum of a 1000-neuron sparse ALIF RSNN over 2000 steps in under 60 s on 2 CPU
cores; also the full spectrum of a 500-neuron network. Networks: one ALIF layer, Erdős–Rényi density 0.1 (sparsity
0.9), N(0, 1/fan_in) weights, gamma τ_m (k = 3, mean 20, floor 2), Poisson drive 0.05 per step on 20 inputs. Every
run has 100 transient and 100 alignment steps besides the accumulated ones, QR every 5 steps, one initial condition.

    python benchmarks/lyapunov_speed.py [--threads 1] [--quick] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from hrsnn.connectivity import ConnectivitySpec
from hrsnn.dynamics import DriveConfig, LyapunovConfig, rsnn_lyapunov
from hrsnn.network import RSNN, LayerConfig, NeuronConfig, RSNNConfig

TAU_M = {"dist": "gamma", "shape": 3.0, "scale": 6.0, "floor": 2.0}


def _model(n: int) -> RSNN:
    layer = LayerConfig(
        size=n,
        neuron=NeuronConfig(kind="alif", tau_m=TAU_M),
        connectivity=ConnectivitySpec(kind="erdos_renyi", p=0.1, init="normal", gain=1.0),
    )
    return RSNN(RSNNConfig(n_inputs=20, n_outputs=1, layers=(layer,)), seed=0)


def _time(n: int, m: int | None, steps: int, n_ons: int = 5) -> dict[str, float | int | None]:
    model = _model(n)
    config = LyapunovConfig(n_steps=steps, transient=100, align=100, n_ons=n_ons, n_exponents=m)
    start = time.perf_counter()
    result = rsnn_lyapunov(model, config, drive=DriveConfig(kind="poisson", rate=0.05))
    elapsed = time.perf_counter() - start
    tangent_steps = steps + config.align
    return {
        "N": n,
        "dim": result.dim,
        "m": result.exponents.shape[1],
        "steps": steps,
        "seconds": elapsed,
        "ms_per_tangent_step": 1e3 * elapsed / tangent_steps,
        "lambda_max": float(result.mean[0]),
    }


def _row(r: dict[str, float | int | None]) -> str:
    return (
        f"N={r['N']:>5}  dim={r['dim']:>5}  m={r['m']:>5}  steps={r['steps']:>5}  "
        f"{r['seconds']:8.1f} s  {r['ms_per_tangent_step']:8.2f} ms/step  λ_max={r['lambda_max']:.5f}"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="shorter runs (scaling only, no 2000-step target)")
    p.add_argument("--scaling-steps", type=int, default=200, help="accumulated steps of each scaling run")
    p.add_argument("--full-steps", type=int, default=300, help="accumulated steps of the full-spectrum run")
    p.add_argument("--sections", default="target,n,m,full", help="comma-separated subset of target,n,m,full")
    p.add_argument("--full-ons", type=int, default=5, help="QR interval of the full-spectrum run")
    p.add_argument("--json", help="write all rows to this file")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    rows: dict[str, list[dict[str, float | int | None]]] = {"target": [], "scaling_n": [], "scaling_m": [], "full": []}

    sections = set(args.sections.split(","))
    if "target" in sections and not args.quick:
        print("\n-- target: top-50, N = 1000, 2000 steps (goal < 60 s)")
        rows["target"].append(_time(1000, 50, 2000))
        print(_row(rows["target"][-1]))

    if "n" in sections:
        print(f"\n-- scaling with N (m = 50, {args.scaling_steps} steps)")
        for n in (250, 500, 1000, 2000):
            rows["scaling_n"].append(_time(n, 50, args.scaling_steps))
            print(_row(rows["scaling_n"][-1]))

    if "m" in sections:
        print(f"\n-- scaling with m (N = 1000, {args.scaling_steps} steps)")
        for m in (10, 25, 50, 100, 200, 400):
            rows["scaling_m"].append(_time(1000, m, args.scaling_steps))
            print(_row(rows["scaling_m"][-1]))

    if "full" in sections:
        print(f"\n-- full spectrum, N = 500 (dim 1500, rank 1000), {args.full_steps} steps, QR every {args.full_ons}")
        rows["full"].append(_time(500, None, args.full_steps, args.full_ons))
        full = rows["full"][-1]
        print(_row(full))
        print(f"   → about {float(full['ms_per_tangent_step'] or 0.0) * 2100 / 1e3:.0f} s for 2100 tangent steps")

    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()
