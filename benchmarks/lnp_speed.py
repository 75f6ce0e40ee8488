"""Speed of LNP (issue 4) on CPU with the experiment's defaults: a full run on a 1000-neuron HRSNN, and a
2000-neuron feasibility point with a few iterations.

Target: the full LNP run on N = 1000 in under 5 minutes on 2 CPU cores. The network and the LNP wiring are those
of ``hrsnn lnp`` (:mod:`hrsnn.experiments.lnp`): soft-reset LIF, gamma τ (k = 3, mean 20), small world k = 20,
balanced Dale weights at ρ(W) = 10, Poisson probe drive; node FTLEs (horizon 20, 3 windows, 256-column blocks),
λ_max over 200 steps, step 4 = 8 TPE trials on the top-5 spectrum objective, "edge" scale of step 1, igraph betweenness,
4 % of neurons per iteration until half are gone. Prints the configuration, the cost of each callback on the dense
network, then one line per LNP iteration and the total.

    python benchmarks/lnp_speed.py [--threads 1] [--neurons 1000] [--big 2000] [--big-iterations 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import torch

from hrsnn.experiments.lnp import (
    LNPExperimentConfig,
    build_dense,
    largest_exponent,
    node_exponents,
    prune_with_lnp,
    top_exponents,
)
from hrsnn.pruning import synapse_total


def _timed(label: str, fn: Any) -> float:
    start = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - start
    print(f"  {label:<44s} {elapsed:7.2f} s")
    return elapsed


def _run(config: LNPExperimentConfig, *, components: bool) -> dict[str, Any]:
    dense = build_dense(config, 0)
    k_max = config.lnp_config().k_max
    print(f"\n-- N = {config.n_neurons}: {synapse_total(dense, 0)} recurrent synapses, k_max = {k_max}")
    costs: dict[str, float] = {}
    if components:
        print("  cost of one call on the dense network:")
        costs["node_exponents"] = _timed("node FTLEs (exponents_fn)", lambda: node_exponents(dense, config, 0))
        costs["lambda_max"] = _timed(
            f"λ_max, {config.lnp_lyapunov_steps} steps (lambda_max_fn)",
            lambda: largest_exponent(dense, config, 0, n_steps=config.lnp_lyapunov_steps),
        )
        costs["spectrum"] = _timed(
            f"top-{config.bo_spectrum_top} spectrum (one step-4 trial)",
            lambda: top_exponents(dense, config, 0, m=config.bo_spectrum_top, n_steps=config.lnp_lyapunov_steps),
        )
    start = time.perf_counter()
    result = prune_with_lnp(dense, config, seed=0)
    total = time.perf_counter() - start
    print(f"  {'it':>3} {'neurons':>8} {'synapses':>9} {'λ_max':>9} {'seconds':>8}  note")
    for e in result.history:
        lam = float("nan") if e.lambda_max is None else e.lambda_max
        print(f"  {e.iteration:>3} {e.neurons:>8} {e.synapses:>9} {lam:>9.4f} {e.seconds:>8.1f}  {e.note}")
    print(f"  total {total:.1f} s ({total / 60:.2f} min) for {result.history[-1].iteration} iterations")
    return {
        "n_neurons": config.n_neurons,
        "total_s": total,
        "components_s": costs,
        "history": [e.to_dict() for e in result.history],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--neurons", type=int, default=1000, help="size of the full run (0 skips it)")
    p.add_argument("--big", type=int, default=2000, help="size of the feasibility point (0 skips it)")
    p.add_argument("--big-iterations", type=int, default=2, help="LNP iterations of the feasibility point")
    p.add_argument("--set", action="append", default=[], metavar="KEY=JSON", help="override, e.g. lnp.q_node=0.02")
    p.add_argument("--json", help="write the results to this file")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    overrides = {}
    for item in args.set:
        key, _, raw = item.partition("=")
        node = overrides
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = json.loads(raw)
    base = LNPExperimentConfig.from_dict(overrides)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    print(
        "base configuration (each run below sets n_neurons, the 2000 point also lnp.k_max):",
        json.dumps({**base.to_dict(), "lnp_effective": base.lnp_config().to_dict()}),
    )
    rows = []
    if args.neurons:
        rows.append(_run(LNPExperimentConfig.from_dict({**overrides, "n_neurons": args.neurons}), components=True))
    if args.big:
        lnp = {**overrides.get("lnp", {}), "k_max": args.big_iterations}
        big = LNPExperimentConfig.from_dict({**overrides, "n_neurons": args.big, "lnp": lnp})
        rows.append(_run(big, components=True))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()
