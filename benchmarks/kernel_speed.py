"""Speed of one recurrent LIF layer: hrsnn against a plain PyTorch loop of the same equation and peer libraries.

What is measured. One recurrent LIF layer (hrsnn ``kind="lif"``, dense recurrence, heterogeneous τ_m drawn by
hrsnn) driven by B = 64 sequences of T = 250 steps of 128 Bernoulli(0.05) input channels, for N ∈ {128, 512, 2048}
neurons, float32 on the CPU. Every library runs the same map with the same weights and inputs::

    I_t = W_in x_t + b_in + W_rec s_{t-1} + b_rec
    u_t = α u_{t-1} + (1 - α) R I_t - b0 s_{t-1}          (soft reset one step late, hrsnn's convention)
    s_t = H(u_t - b0),  H(v) = [v > 0]

and the same surrogate in the backward pass (hrsnn's default multi-Gaussian, written out below). The input
projection is inside the timed region. The contenders:

- ``hrsnn``: ``RSNN(...).layers[0]`` as the library runs it by default (the fused sequence kernel);
  ``hrsnn-step`` (with ``--step-path``): the same layer with ``layer.fused = False`` (step functions in a loop);
- ``plain``: a plain PyTorch loop of the equation above, written here; every ratio is printed against it;
- ``snntorch``: ``snntorch.RLeaky`` (subtract reset with its default one-step delay, the input scaled by
  (1 - α) R outside the neuron and the recurrent weight by (1 - α) R row-wise) when it imports;
- Norse, SpikingJelly, Sinabs and spyx are reported as skipped (not installed, or no adapter here yet).

How. First a spike-identity check in this process: every contender's forward spikes are compared with the plain
loop's on identical weights and inputs, in float32 and float64, and the number of mismatching spikes is printed with
the likely reason (float rounding when the first mismatch sits within a rounding distance of the threshold, a
convention difference otherwise); in float64 the recurrent-weight gradient is compared too. Then timings: each
(library, N) is measured in a fresh subprocess (this script in ``--worker`` mode) that runs ``--repeats`` forward
calls and then ``--repeats`` forward+backward calls (loss = number of spikes) after one warm-up each and reports the
median of each and its peak RSS after each phase (VmHWM, or ``resource.getrusage`` where /proc is absent). Passes
are interleaved (pass 1 runs every library once, then pass 2, ...); the reported time is the median over passes of
the per-pass medians, and the ratio is that time divided by the plain loop's from the same run. ``--threads`` sets
``torch.set_num_threads`` (and ``OMP_NUM_THREADS``) in every worker.

Run::

    python benchmarks/kernel_speed.py --quick                  # N = 128, T = 50, 2 passes (well under a minute)
    python benchmarks/kernel_speed.py --sizes 128,512 --step-path --json out.json
    python benchmarks/kernel_speed.py                           # N = 128, 512, 2048, T = 250
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from hrsnn.network import RSNN, LayerConfig, NeuronConfig, RSNNConfig, SpikingLayer

BATCH = 64
N_INPUTS = 128
INPUT_RATE = 0.05
SEED = 0
OTHER_PEERS = {"norse": "norse", "spikingjelly": "spikingjelly", "sinabs": "sinabs", "spyx": "spyx"}
_SQRT_2PI = math.sqrt(2.0 * math.pi)
GRAD_NOTES = {"snntorch": "RLeaky detaches its reset term, so no gradient flows through -b0·s_{t-1}"}


class _MultiGaussianSpike(torch.autograd.Function):
    """H(v) forward; hrsnn's default multi-Gaussian surrogate backward (σ = 0.5, h = 0.15, s = 6, γ = 0.5)."""

    @staticmethod
    def forward(ctx: Any, v: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(v)
        return (v > 0).to(v.dtype)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:  # type: ignore[override]
        (v,) = ctx.saved_tensors
        sigma, h, side = 0.5, 0.15, 3.0
        centre = torch.exp(-0.5 * (v / sigma) ** 2) / (_SQRT_2PI * sigma)
        lobes = torch.exp(-0.5 * ((v - sigma) / side) ** 2) + torch.exp(-0.5 * ((v + sigma) / side) ** 2)
        return grad * 0.5 * ((1.0 + h) * centre - h * lobes / (_SQRT_2PI * side))


def spike_fn(v: Tensor) -> Tensor:
    """The spike nonlinearity every contender uses."""
    return _MultiGaussianSpike.apply(v)


@dataclass
class Problem:
    """The shared layer (built by hrsnn) and input of one configuration."""

    layer: SpikingLayer
    x: Tensor

    @property
    def alpha(self) -> Tensor:
        return self.layer.tau_m.decay(self.layer.config.neuron.dt).detach()

    def recurrent(self) -> tuple[Tensor, Tensor]:
        """Detached effective recurrent weight W_rec ⊙ M and recurrent bias."""
        w_rec, b_rec = self.layer.effective_recurrent_weight(), self.layer.bias_rec
        if w_rec is None or b_rec is None:
            raise RuntimeError("the benchmark layer must be recurrent with a bias")
        return w_rec.detach(), b_rec.detach()

    @property
    def scale(self) -> Tensor:
        """(1 - α) R per neuron."""
        return (1.0 - self.alpha) * self.layer.config.neuron.r_m


def make_problem(n: int, steps: int, dtype: torch.dtype) -> Problem:
    """hrsnn's recurrent LIF layer (seeded) and a seeded Bernoulli input, both in ``dtype``."""
    cfg = RSNNConfig(n_inputs=N_INPUTS, n_outputs=2, layers=(LayerConfig(size=n, neuron=NeuronConfig(kind="lif")),))
    layer = RSNN(cfg, seed=SEED).layers[0].to(dtype)
    gen = torch.Generator().manual_seed(SEED + 1)
    x = (torch.rand(BATCH, steps, N_INPUTS, generator=gen) < INPUT_RATE).to(dtype)
    return Problem(layer, x)


class PlainLoop(nn.Module):
    """The equation of the module docstring as a plain PyTorch loop (the baseline)."""

    def __init__(self, p: Problem) -> None:
        super().__init__()
        neuron = p.layer.config.neuron
        w_rec, b_rec = p.recurrent()
        self.input = nn.Linear(N_INPUTS, p.layer.size).to(p.x.dtype)
        with torch.no_grad():
            self.input.weight.copy_(p.layer.input.weight)
            self.input.bias.copy_(p.layer.input.bias)
        self.w_rec = nn.Parameter(w_rec.clone())
        self.b_rec = nn.Parameter(b_rec.clone())
        self.alpha = nn.Parameter(p.alpha.clone())
        self.r_m = neuron.r_m
        self.b0 = neuron.b0 * neuron.dt
        self.threshold = neuron.b0

    def forward(self, x: Tensor, *, record: bool = False) -> tuple[Tensor, Tensor | None]:
        """Spikes (B, T, N) and, when ``record``, membranes (B, T, N)."""
        currents = self.input(x)
        scale = (1.0 - self.alpha) * self.r_m
        u = currents.new_zeros(currents.shape[0], currents.shape[2])
        s = torch.zeros_like(u)
        spikes, membranes = [], []
        for c in currents.unbind(1):
            i = c + self.b_rec + s @ self.w_rec.t()
            u = self.alpha * u + scale * i - self.b0 * s
            s = spike_fn(u - self.threshold)
            spikes.append(s)
            if record:
                membranes.append(u)
        return torch.stack(spikes, 1), torch.stack(membranes, 1) if record else None


def _snntorch_runner(p: Problem) -> tuple[Callable[[Tensor], Tensor], nn.Module, Tensor]:
    """snntorch.RLeaky with the plain loop's weights; returns (run, module, row scale of its recurrent weight)."""
    snn = importlib.import_module("snntorch")
    w_rec, b_rec = p.recurrent()
    scale = p.scale
    lif = snn.RLeaky(
        beta=p.alpha.clone(),
        linear_features=p.layer.size,
        threshold=p.layer.config.neuron.b0,  # also the amount its reset subtracts: hrsnn's b0·dt with dt = 1
        spike_grad=spike_fn,
        learn_beta=True,
        reset_mechanism="subtract",
    ).to(p.x.dtype)
    net = nn.Module()
    net.input = nn.Linear(N_INPUTS, p.layer.size).to(p.x.dtype)
    net.lif = lif
    net.b_rec = nn.Parameter(b_rec.clone())
    with torch.no_grad():
        net.input.weight.copy_(p.layer.input.weight)
        net.input.bias.copy_(p.layer.input.bias)
        lif.recurrent.weight.copy_(scale[:, None] * w_rec)
        lif.recurrent.bias.zero_()

    def run(x: Tensor) -> Tensor:
        drive = (net.input(x) + net.b_rec) * scale
        spk, mem = lif.init_rleaky()
        out = []
        for d in drive.unbind(1):
            spk, mem = lif(d, spk, mem)
            out.append(spk)
        return torch.stack(out, 1)

    return run, net, scale


def build(name: str, p: Problem) -> tuple[Callable[[Tensor], Tensor], Callable[[], Tensor]]:
    """(run: x -> spikes, grad of the loss w.r.t. the unscaled recurrent weight after a backward) for a contender."""
    if name in ("hrsnn", "hrsnn-step"):
        layer = p.layer
        layer.fused = name == "hrsnn"

        def run_hrsnn(x: Tensor) -> Tensor:
            state = layer.initial_state(x.shape[0], "zeros", None, None)
            return layer(x, state).spikes

        return run_hrsnn, lambda: layer.weight_rec.grad  # type: ignore[union-attr]
    if name == "plain":
        plain = PlainLoop(p)
        return (lambda x: plain(x)[0]), lambda: plain.w_rec.grad  # type: ignore[return-value]
    if name == "snntorch":
        run, net, scale = _snntorch_runner(p)
        return run, lambda: net.lif.recurrent.weight.grad * scale[:, None]
    raise ValueError(f"unknown library {name!r}")


def snntorch_status() -> str | None:
    """None when snnTorch imports, else why it is skipped."""
    if importlib.util.find_spec("snntorch") is None:
        return "skipped: not installed"
    try:
        importlib.import_module("snntorch")
    except Exception as exc:  # a --no-deps install may miss a dependency; any import failure means skip
        return f"skipped: import failed ({type(exc).__name__}: {exc})"
    return None


# --- worker ---------------------------------------------------------------------------------------------------


def _peak_rss_mib() -> float:
    """Peak resident memory of this process in MiB.

    Linux's ``ru_maxrss`` survives fork + exec, so a worker would report its parent's peak; the kernel's VmHWM (the
    same high-water mark, but of this process's own address space) is used where /proc provides it.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _median_time(fn: Callable[[], None], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def worker(name: str, n: int, steps: int, repeats: int, threads: int) -> dict[str, float]:
    """Time one contender at one size: forward, then forward+backward; peak RSS after each phase."""
    torch.set_num_threads(threads)
    p = make_problem(n, steps, torch.float32)
    run, _ = build(name, p)
    rss_setup = _peak_rss_mib()

    def fwd() -> None:
        with torch.no_grad():
            run(p.x)

    def fwd_bwd() -> None:
        run(p.x).sum().backward()

    t_fwd = _median_time(fwd, repeats)
    rss_fwd = _peak_rss_mib()
    t_bwd = _median_time(fwd_bwd, repeats)
    return {"fwd_s": t_fwd, "fwdbwd_s": t_bwd, "rss_setup_mib": rss_setup, "rss_fwd_mib": rss_fwd,
            "rss_fwdbwd_mib": _peak_rss_mib()}  # fmt: skip


def spawn(name: str, n: int, steps: int, repeats: int, threads: int) -> dict[str, float]:
    """Run :func:`worker` in a fresh interpreter and return its result."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", name, "--sizes", str(n), "--steps", str(steps),
           "--repeats", str(repeats), "--threads", str(threads)]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"worker {name} N={n} failed:\n{done.stderr.strip()}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- spike identity -------------------------------------------------------------------------------------------


def identity_check(names: list[str], n: int, steps: int, dtype: torch.dtype) -> dict[str, dict[str, Any]]:
    """Forward spikes of each contender against the plain loop's (float64: also the recurrent-weight gradient)."""
    p = make_problem(n, steps, dtype)
    plain = PlainLoop(p)
    ref_spikes, ref_u = plain(p.x, record=True)
    if ref_u is None:
        raise RuntimeError("the plain loop did not record its membranes")
    ref_spikes.sum().backward()
    mask = p.layer.mask
    ref_grad = torch.where(mask, plain.w_rec.grad, 0.0)  # the plain loop's leaf also has the masked entries
    threshold = p.layer.config.neuron.b0
    results: dict[str, dict[str, Any]] = {"plain": {"rate": float(ref_spikes.detach().mean())}}
    for name in names:
        if name == "plain":
            continue
        p = make_problem(n, steps, dtype)  # a fresh, identical layer: gradients must not accumulate across names
        run, grad = build(name, p)
        spikes = run(p.x)
        spikes.sum().backward()
        diff = spikes.detach() != ref_spikes.detach()
        entry: dict[str, Any] = {"mismatches": int(diff.sum()), "of": diff.numel()}
        if entry["mismatches"]:
            first_t = int(diff.any(2).any(0).nonzero()[0])
            b, i = (int(k) for k in diff[:, first_t].nonzero()[0])
            margin = abs(float(ref_u[b, first_t, i].detach()) - threshold)
            eps = torch.finfo(dtype).eps * max(1.0, float(ref_u[:, first_t].detach().abs().max()))
            entry["first_step"] = first_t
            entry["margin"] = margin
            entry["reason"] = (
                f"float rounding: at the first mismatch (step {first_t}) the membrane is {margin:.1e} from threshold "
                "(different operation order), after which the trajectories diverge"
                if margin < 64 * eps
                else f"convention differs (reset or threshold): first mismatch at step {first_t}, {margin:.1e} "
                "from threshold"
            )
        elif dtype == torch.float64:
            g = torch.where(mask, grad(), 0.0)
            entry["grad_rel_err"] = float((g - ref_grad).abs().max() / ref_grad.abs().max().clamp_min(1e-300))
            if name in GRAD_NOTES:
                entry["grad_note"] = GRAD_NOTES[name]
        results[name] = entry
    return results


# --- driver ---------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="128,512,2048", help="comma-separated N (default 128,512,2048)")
    parser.add_argument("--steps", type=int, default=250, help="sequence length T (default 250)")
    parser.add_argument("--passes", type=int, default=2, help="interleaved passes (default 2)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per worker and phase (default 5)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per worker (default 2)")
    parser.add_argument("--step-path", action="store_true", help="also time hrsnn's step-function path")
    parser.add_argument("--quick", action="store_true", help="N = 128, T = 50, 2 passes, 3 repeats")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument("--worker", metavar="LIB", help=argparse.SUPPRESS)
    args = parser.parse_args()
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
    except ValueError:
        parser.error(f"--sizes: {args.sizes!r} is not a comma-separated list of integers")
    for flag, value in (("--steps", args.steps), ("--passes", args.passes), ("--repeats", args.repeats),
                        ("--threads", args.threads), *(("--sizes", s) for s in sizes)):  # fmt: skip
        if value < 1:
            parser.error(f"{flag}: {value} must be >= 1")
    if args.worker:
        print(json.dumps(worker(args.worker, sizes[0], args.steps, args.repeats, args.threads)))
        return
    if args.quick:
        sizes, args.steps, args.passes, args.repeats = [128], 50, 2, 3

    names = ["plain", "hrsnn"] + (["hrsnn-step"] if args.step_path else [])
    skipped: dict[str, str] = {}
    status = snntorch_status()
    if status is None:
        names.append("snntorch")
    else:
        skipped["snntorch"] = status
    for peer, module in OTHER_PEERS.items():
        installed = importlib.util.find_spec(module) is not None
        skipped[peer] = "skipped: installed, but this benchmark has no adapter for it yet" if installed else (
            "skipped: not installed")  # fmt: skip

    print(f"recurrent LIF layer, B={BATCH}, T={args.steps}, {N_INPUTS} Bernoulli({INPUT_RATE}) inputs, float32, "
          f"threads={args.threads}, {args.passes} interleaved passes × median of {args.repeats}")  # fmt: skip
    for peer, why in skipped.items():
        print(f"  {peer}: {why}")
    report: dict[str, Any] = {
        "batch": BATCH, "steps": args.steps, "n_inputs": N_INPUTS, "threads": args.threads, "passes": args.passes,
        "repeats": args.repeats, "skipped": skipped, "sizes": {},
    }  # fmt: skip

    print("\nspike identity against the plain loop (same weights and inputs)")
    for n in sizes:
        entry: dict[str, Any] = {"identity": {}}
        report["sizes"][str(n)] = entry
        for dtype in (torch.float32, torch.float64):
            check = identity_check(names, n, args.steps, dtype)
            entry["identity"][str(dtype).removeprefix("torch.")] = check
            print(f"  N={n} {str(dtype).removeprefix('torch.')}: plain-loop spike rate {check['plain']['rate']:.4f}")
            for name in names[1:]:
                c = check[name]
                line = f"    {name:11s} {c['mismatches']} of {c['of']} spikes differ"
                if "grad_rel_err" in c:
                    line += f"; dW_rec max rel. diff {c['grad_rel_err']:.1e}"
                if "grad_note" in c:
                    line += f" ({c['grad_note']})"
                if "reason" in c:
                    line += f" ({c['reason']})"
                print(line)

    print("\ntimings (each library and size in a fresh process)")
    for n in sizes:
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
        for _ in range(args.passes):
            for name in names:
                runs[name].append(spawn(name, n, args.steps, args.repeats, args.threads))
        timing = {}
        for name, rs in runs.items():
            timing[name] = {key: statistics.median(r[key] for r in rs) for key in rs[0]}
            timing[name]["fwd_passes_s"] = [r["fwd_s"] for r in rs]
            timing[name]["fwdbwd_passes_s"] = [r["fwdbwd_s"] for r in rs]
        base = timing["plain"]
        for t in timing.values():
            t["fwd_ratio"] = t["fwd_s"] / base["fwd_s"]
            t["fwdbwd_ratio"] = t["fwdbwd_s"] / base["fwdbwd_s"]
        report["sizes"][str(n)]["timing"] = timing
        print(f"  N={n}")
        print(f"    {'library':11s} {'fwd ms':>9s} {'×plain':>7s} {'fwd+bwd ms':>11s} {'×plain':>7s} "
              f"{'peak MiB fwd':>13s} {'fwd+bwd':>8s} {'setup':>6s}   per pass fwd+bwd ms")  # fmt: skip
        for name, t in timing.items():
            per_pass = " / ".join(f"{1e3 * v:.0f}" for v in t["fwdbwd_passes_s"])
            print(f"    {name:11s} {1e3 * t['fwd_s']:9.1f} {t['fwd_ratio']:7.2f} {1e3 * t['fwdbwd_s']:11.1f} "
                  f"{t['fwdbwd_ratio']:7.2f} {t['rss_fwd_mib']:13.0f} {t['rss_fwdbwd_mib']:8.0f} "
                  f"{t['rss_setup_mib']:6.0f}   {per_pass}")  # fmt: skip
    print("ratios are time / plain-loop time in this run (< 1: faster than the plain loop)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
