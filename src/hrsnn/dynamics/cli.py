"""``hrsnn lyapunov``: the Lyapunov spectrum of a saved or generated RSNN.

Hook it into the main parser with ``add_lyapunov_parser(subparsers)``; the registered handler is
``args.func(args) -> int`` and raises :class:`hrsnn.errors.ConfigError` for bad input.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from hrsnn.connectivity import ConnectivitySpec
from hrsnn.dynamics.lyapunov import LyapunovConfig, LyapunovResult
from hrsnn.dynamics.snn import DRIVES, METHODS, DriveConfig, rsnn_lyapunov
from hrsnn.errors import ConfigError
from hrsnn.network import RSNN, LayerConfig, NeuronConfig, RSNNConfig, load_model

__all__ = ["add_lyapunov_parser", "cmd_lyapunov"]

DEFAULT_TAU_M = '{"dist": "gamma", "shape": 3.0, "scale": 6.0, "floor": 2.0}'
"""Gamma-distributed membrane τ with mean 20 (k = 3, LNP spec §1.3), floor 2."""


def _json_mapping(option: str, text: str) -> Mapping[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(option, text, f"is not valid JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise ConfigError(option, text, 'must be a JSON object such as {"dist": "gamma", "shape": 3, "scale": 6}')
    return value


def _generated_model(args: argparse.Namespace) -> RSNN:
    """A one-layer Erdős–Rényi RSNN with density 1 − sparsity, N(0, gain²/fan_in) weights and sampled τ."""
    if not 0.0 <= args.sparsity < 1.0:
        raise ConfigError("--sparsity", args.sparsity, "must lie in [0, 1) (fraction of absent synapses)")
    neuron: dict[str, Any] = {"kind": args.kind, "tau_m": _json_mapping("--tau-m", args.tau_m)}
    if args.tau_adp is not None:
        neuron["tau_adp"] = _json_mapping("--tau-adp", args.tau_adp)
    if args.size < 1:
        raise ConfigError("--size", args.size, "must be >= 1")
    if args.inputs < 1:
        raise ConfigError("--inputs", args.inputs, "must be >= 1")
    layer = LayerConfig(
        size=args.size,
        neuron=NeuronConfig(**neuron),
        connectivity=ConnectivitySpec(kind="erdos_renyi", p=1.0 - args.sparsity, init="normal", gain=args.gain),
    )
    config = RSNNConfig(n_inputs=args.inputs, n_outputs=1, layers=(layer,))
    return RSNN(config, seed=args.seed)


def _load(args: argparse.Namespace) -> tuple[RSNN, str]:
    if args.model is None:
        return _generated_model(args), f"generated {args.kind} network (N={args.size}, sparsity={args.sparsity})"
    path = Path(args.model)
    if not path.is_file():
        raise ConfigError("--model", args.model, "no such file")
    return load_model(path), f"model {path}"


def _print_text(result: LyapunovResult, source: str, args: argparse.Namespace, elapsed: float) -> None:
    m = result.exponents.shape[1]
    print(
        f"hrsnn lyapunov: {source}, method={args.method}, state dim={result.dim}, {m} exponents, "
        f"{result.exponents.shape[0]} initial condition(s), {args.steps} steps of dt={result.dt:g}"
    )
    print(f"{'k':>5}  {'λ_k (1/time)':>14}  {'± std':>10}")
    for k, (value, spread) in enumerate(zip(result.mean.tolist(), result.std.tolist(), strict=True), start=1):
        print(f"{k:>5}  {value:>14.6g}  {spread:>10.3g}")
    print(f"λ_max = {float(result.mean[0]):.6g}; Kaplan–Yorke dimension = {result.kaplan_yorke():.4g}")
    print(f"elapsed {elapsed:.1f} s")


def cmd_lyapunov(args: argparse.Namespace) -> int:
    """Handler of ``hrsnn lyapunov``: compute, print (text or ``--json``), optionally plot; returns 0."""
    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError("--threads", args.threads, "must be >= 1")
        torch.set_num_threads(args.threads)
    if args.plot is not None and not Path(args.plot).parent.is_dir():
        raise ConfigError("--plot", args.plot, "its directory does not exist")
    model, source = _load(args)
    config = LyapunovConfig(
        n_steps=args.steps,
        transient=args.transient,
        align=args.align,
        n_ons=args.ons,
        n_exponents=None if args.full else args.top,
        seed=args.seed,
    )
    drive = DriveConfig(
        kind=args.drive, rate=args.drive_rate, mean=args.drive_mean, std=args.drive_std, seed=args.drive_seed
    )
    start = time.perf_counter()
    result = rsnn_lyapunov(
        model,
        config,
        method=args.method,
        drive=drive,
        batch=args.batch,
        probe_steps=args.probe_steps,
        seed=args.seed,
    )
    elapsed = time.perf_counter() - start
    if args.plot is not None:
        from hrsnn.dynamics.plots import plot_lyapunov

        try:
            plot_lyapunov(result, args.plot, title=f"{source}, method={args.method}")
        except ImportError:
            reason = "needs matplotlib; install it with `pip install matplotlib`"
            raise ConfigError("--plot", args.plot, reason) from None
    if args.json:
        summary = result.summary()
        summary.update(method=args.method, source=source, steps=args.steps, elapsed_s=elapsed, plot=args.plot)
        print(json.dumps(summary))
    else:
        _print_text(result, source, args, elapsed)
        if args.plot is not None:
            print(f"plot written to {args.plot}")
    return 0


def add_lyapunov_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``lyapunov`` sub-command on ``subparsers`` (from ``parser.add_subparsers()``)."""
    p = subparsers.add_parser(
        "lyapunov",
        help="Lyapunov spectrum of a saved or generated RSNN",
        description="Top Lyapunov exponents of an RSNN by the Benettin/QR method (see hrsnn.dynamics.snn for the "
        "meaning of each --method). Without --model a one-layer network is generated.",
    )
    p.add_argument("--model", help="saved model (.safetensors from hrsnn train); default: generate a network")
    gen = p.add_argument_group("generated network (without --model)")
    gen.add_argument("--size", type=int, default=200, help="neurons (default 200)")
    gen.add_argument("--sparsity", type=float, default=0.9, help="fraction of absent synapses (default 0.9)")
    gen.add_argument("--kind", choices=["alif", "lif", "lif_hard"], default="alif", help="neuron model")
    gen.add_argument("--tau-m", default=DEFAULT_TAU_M, help=f"membrane τ distribution, JSON (default {DEFAULT_TAU_M})")
    gen.add_argument("--tau-adp", default=None, help="adaptation τ distribution, JSON (default: the core's)")
    gen.add_argument("--gain", type=float, default=1.0, help="recurrent weight gain ≈ spectral radius (default 1)")
    gen.add_argument("--inputs", type=int, default=20, help="input lines (default 20)")
    run = p.add_argument_group("analysis")
    run.add_argument("--method", choices=sorted(METHODS), default="surrogate", help="spike reading (default surrogate)")
    run.add_argument("--steps", type=int, default=1000, help="accumulated steps (default 1000)")
    run.add_argument("--transient", type=int, default=100, help="discarded state steps (default 100)")
    run.add_argument("--align", type=int, default=100, help="tangent alignment steps (default 100)")
    run.add_argument("--ons", type=int, default=5, help="steps between QR re-orthonormalisations (default 5)")
    run.add_argument("--top", type=int, default=10, help="number of exponents m (default 10)")
    run.add_argument("--full", action="store_true", help="full spectrum (overrides --top)")
    run.add_argument("--batch", type=int, default=1, help="initial conditions (default 1)")
    run.add_argument("--probe-steps", type=int, default=1000, help="steps to fit the rate model (--method rate)")
    run.add_argument("--seed", type=int, default=0, help="seed of network, initial states and basis (default 0)")
    run.add_argument("--threads", type=int, help="torch intra-op threads")
    drv = p.add_argument_group("drive")
    drv.add_argument("--drive", choices=sorted(DRIVES), default="poisson", help="input kind (default poisson)")
    drv.add_argument("--drive-rate", type=float, default=0.05, help="Poisson spike probability per step")
    drv.add_argument("--drive-mean", type=float, default=0.0, help="constant value / Gaussian mean")
    drv.add_argument("--drive-std", type=float, default=1.0, help="Gaussian standard deviation")
    drv.add_argument("--drive-seed", type=int, default=0)
    out = p.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print one JSON object")
    out.add_argument("--plot", help="write a PNG of the spectrum and of λ_max over time to this path")
    p.set_defaults(func=cmd_lyapunov)
