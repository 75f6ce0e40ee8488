"""``hrsnn lyapunov``: the Lyapunov spectrum of a saved or generated RSNN.

Its options are declared in :mod:`hrsnn.cli` (so that ``hrsnn --help`` imports no torch); the handler
:func:`cmd_lyapunov` takes the parsed namespace, returns the exit code and raises
:class:`hrsnn.errors.ConfigError` for bad input.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from hrsnn._threads import auto_threads
from hrsnn._validate import check_rsnn_memory, check_seed, nonfinite_counts
from hrsnn.connectivity import ConnectivitySpec
from hrsnn.dynamics.lyapunov import Linearization, LyapunovConfig, LyapunovResult, TangentSystem
from hrsnn.dynamics.snn import DriveConfig, rsnn_lyapunov
from hrsnn.errors import ConfigError
from hrsnn.network import RSNN, LayerConfig, NeuronConfig, RSNNConfig, load_model

__all__ = ["cmd_lyapunov"]

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
    check_rsnn_memory(config, field="--size")
    return RSNN(config, seed=args.seed)


def _check_finite(model: RSNN, path: Path) -> None:
    """Refuse a model with NaN or infinite values, naming each such tensor and its counts."""
    bad = [f"{name}: {n_nan} NaN, {n_inf} inf" for name, n_nan, n_inf in nonfinite_counts(model.state_dict().items())]
    if bad:
        raise ConfigError("--model", str(path), f"the model holds non-finite values ({'; '.join(bad)})")


def _load(args: argparse.Namespace) -> tuple[RSNN, str]:
    if args.model is None:
        return _generated_model(args), f"generated {args.kind} network (N={args.size}, sparsity={args.sparsity})"
    path = Path(args.model)
    if not path.is_file():
        raise ConfigError("--model", args.model, "no such file")
    model = load_model(path)
    _check_finite(model, path)
    return model, f"model {path}"


class _CountedSteps:
    """A :class:`TangentSystem` that passes every call on and reports the steps it simulates to a progress bar."""

    def __init__(self, system: TangentSystem, bar: tqdm) -> None:
        self._system = system
        self._bar = bar

    @property
    def dim(self) -> int:
        return self._system.dim

    @property
    def rank(self) -> int:
        return self._system.rank

    @property
    def dt(self) -> float:
        return self._system.dt

    def advance(self, x: Tensor, t0: int, n: int) -> Tensor:
        out = self._system.advance(x, t0, n)
        self._bar.update(n)
        return out

    def linearize(self, x: Tensor, t0: int, n: int) -> tuple[Tensor, Linearization]:
        out = self._system.linearize(x, t0, n)
        self._bar.update(n)
        return out


def _print_text(result: LyapunovResult, source: str, args: argparse.Namespace, elapsed: float) -> None:
    m = result.exponents.shape[1]
    print(
        f"hrsnn lyapunov: {source}, method={args.method}, state dim={result.dim}, {m} exponents, "
        f"{result.exponents.shape[0]} initial condition(s), {args.steps} steps of dt={result.dt:g}"
    )
    spread_shown = result.exponents.shape[0] > 1  # one initial condition has no spread to show
    print(f"{'k':>5}  {'λ_k (1/time)':>14}" + (f"  {'± std':>10}" if spread_shown else ""))
    for k, (value, spread) in enumerate(zip(result.mean.tolist(), result.std.tolist(), strict=True), start=1):
        print(f"{k:>5}  {value:>14.6g}" + (f"  {spread:>10.3g}" if spread_shown else ""))
    print(f"λ_max = {float(result.mean[0]):.6g}; Kaplan–Yorke dimension = {result.kaplan_yorke():.4g}")
    print(f"elapsed {elapsed:.1f} s")


def cmd_lyapunov(args: argparse.Namespace) -> int:
    """Handler of ``hrsnn lyapunov``: compute, print (text or ``--json``), optionally plot; returns 0.

    Runs on ``--threads`` intra-op threads (default :func:`hrsnn._threads.auto_threads`: one for layers below 512
    neurons), restored afterwards; a progress bar over the simulated steps goes to stderr unless ``--quiet`` or
    ``--json``.
    """
    if args.threads is not None and args.threads < 1:
        raise ConfigError("--threads", args.threads, "must be >= 1")
    check_seed("--seed", args.seed)
    check_seed("--drive-seed", args.drive_seed)
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
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads or auto_threads(model))
    start = time.perf_counter()
    try:
        with tqdm(
            total=config.transient + config.align + config.n_steps,
            disable=True if args.quiet or args.json else None,
            desc="lyapunov",
            unit="step",
        ) as bar:
            result = rsnn_lyapunov(
                model,
                config,
                method=args.method,
                drive=drive,
                batch=args.batch,
                probe_steps=args.probe_steps,
                seed=args.seed,
                wrap_system=lambda system: _CountedSteps(system, bar),
            )
    finally:
        torch.set_num_threads(previous_threads)
    elapsed = time.perf_counter() - start
    if args.plot is not None:
        from hrsnn.dynamics.plots import plot_lyapunov

        plot_lyapunov(result, args.plot, title=f"{source}, method={args.method}")
    if args.json:
        summary = result.summary()
        summary.update(method=args.method, source=source, steps=args.steps, elapsed_s=elapsed, plot=args.plot)
        print(json.dumps(summary))
    else:
        _print_text(result, source, args, elapsed)
        if args.plot is not None:
            print(f"plot written to {args.plot}")
    return 0
