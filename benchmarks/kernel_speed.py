"""Speed of one recurrent LIF layer: hrsnn against a plain PyTorch loop of the same equation and peer libraries.

What is measured. One recurrent LIF layer (hrsnn ``kind="lif"``, dense recurrence, heterogeneous τ_m drawn by
hrsnn) driven by B = 64 sequences of T = 250 steps of 128 Bernoulli(0.05) input channels, for N ∈ {128, 512, 2048}
neurons, float32 on the CPU. Every library runs the same map with the same weights and inputs::

    I_t = W_in x_t + b_in + W_rec s_{t-1} + b_rec
    u_t = α u_{t-1} + (1 - α) R I_t - b0 s_{t-1}          (soft reset one step late, hrsnn's convention)
    s_t = H(u_t - b0),  H(v) = [v > 0]

with a per-neuron α, and the same surrogate in the backward pass (hrsnn's default multi-Gaussian, written out
below) wherever the library takes one. The input projection is inside the timed region. The contenders:

- ``hrsnn``: ``RSNN(...).layers[0]`` as the library runs it by default (the fused sequence kernel);
  ``hrsnn-step`` (with ``--step-path``): the same layer with ``layer.fused = False`` (step functions in a loop);
- ``plain``: a plain PyTorch loop of the equation above, written here; every ratio is printed against it;
- ``snntorch``: ``snntorch.RLeaky`` (subtract reset with its default one-step delay, the input scaled by
  (1 - α) R outside the neuron and the recurrent weight by (1 - α) R row-wise);
- ``norse``: ``norse.torch.LIFBoxCell`` with leak dt·τ_mem⁻¹ = 1 - α per neuron (dt = 1), v_th = b0 and its
  ``reset_subtract``, in a time loop with the recurrent ``nn.Linear`` written here. Norse's ``LIFRecurrent`` is not
  used: it carries a synaptic current and resets to v_reset in the spiking step, which no weight mapping undoes.
  Norse picks its surrogate by name (SuperSpike by default) and takes no other, so its gradient is checked against
  the plain loop run with that same surrogate;
- ``spikingjelly``: ``ParametricLIFNode`` (decay_input, soft reset v_reset = None, hrsnn's surrogate) in single-step
  mode in the same time loop (multi-step mode cannot feed a step's spikes back into the next). Its ``LIFNode`` takes
  one float τ; PLIF's w (1/τ = sigmoid(w)) is set per neuron to logit(1 - α), which its functional supports by
  falling back to its Torch reference path;
- ``sinabs``: ``sinabs.layers.LIFRecurrent`` (norm_input, train_alphas with alpha_mem = α, MembraneSubtract reset,
  rec_connect = the recurrent ``nn.Linear``), hrsnn's surrogate as surrogate_grad_fn and a spike_fn in Sinabs's own
  protocol that fires on v > θ in the membrane's dtype (its SingleSpike fires on v >= θ and returns float32 spikes
  in any dtype: a float64 rec_connect rejects them, and a cast would round the reset and the gradients through the
  spikes to float32);
- ``spyx``: ``spyx.nn.RLIF`` (per-neuron beta = α, threshold = b0, hrsnn's surrogate through ``spyx.axn.custom``)
  scanned by ``spyx.nn.run`` under ``jax.jit``, forward+backward by ``jax.value_and_grad`` over every parameter.
  RLIF fires from its membrane before the update and subtracts the threshold in that update, which is hrsnn's
  one-step-late reset exactly, but its output lags one step: it gets (1 - α) R (W_in x_t + b_in + b_rec) and
  (1 - α) R W_rec, runs T + 1 steps (a trailing zero input) and its first output is dropped.

Norse, SpikingJelly and Sinabs subtract the threshold in the step that spikes, before the next leak, so their
membrane keeps u_t - b0 s_t. Each is fed R I_t - b0 s_{t-1} (the self-connection -b0·1 added to R W_rec), which gives
back hrsnn's map exactly: α (u - b0 s) + (1 - α)(R I - b0 s) = α u + (1 - α) R I - b0 s (dt = 1 here, so hrsnn's
reset b0·dt is the threshold these libraries subtract). A peer that is not installed, does not import, or lacks what
its adapter uses is listed as skipped with the reason.

The peers are optional extras, installed without their dependencies so that pip cannot replace the pinned torch;
this file was written against the versions of these lines (snnTorch: ``snntorch==1.0.0``, likewise)::

    pip install --no-deps norse==1.1.0 spikingjelly==2.0.0 sinabs==3.1.3 spyx==1.0.0 jax==0.10.2 jaxlib==0.10.2
    pip install --no-deps ml_dtypes==0.6.0 opt_einsum==3.4.0 nir==1.0.8 nirtorch==2.6 loguru==0.7.3 pbr==7.1.3
    pip install --no-deps h5py==3.16.0 flax==0.12.8 msgpack==1.2.4 absl-py==2.5.1 rich==15.0.0 treescope==0.1.10
    pip install --no-deps optax==0.2.8 grain==0.2.18 etils==1.15.0 protobuf==7.36.2 portpicker==1.6.0
    pip install --no-deps array_record==0.8.6

How. First a spike-identity check in this process: every contender's forward spikes are compared with the plain
loop's on identical weights and inputs, in float32 and float64, and the number of mismatching spikes is printed with
the likely reason (float rounding when the first mismatch sits within a rounding distance of the threshold, a
convention difference otherwise); in float64 the recurrent-weight gradient is compared too. Then timings: each
(library, N) is measured in a fresh subprocess (this script in ``--worker`` mode) that runs ``--repeats`` forward
calls and then ``--repeats`` forward+backward calls (loss = number of spikes) after one warm-up each and reports the
median of each and its peak RSS after each phase (VmHWM, or ``resource.getrusage`` where /proc is absent). Passes
are interleaved (pass 1 runs every library once, then pass 2, ...); the reported time is the median over passes of
the per-pass medians, and the ratio is that time divided by the plain loop's from the same run. ``--threads`` sets
``torch.set_num_threads`` (and ``OMP_NUM_THREADS``) in every worker. The spyx worker compiles in its warm-up calls,
waits for every result (``block_until_ready``) and caps XLA at ``--threads`` CPUs by pinning itself to that many
before JAX starts (XLA sizes its thread pools by the CPUs a process may use; with one thread it also sets
``--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1``); its peak RSS includes torch, which builds
the problem.

Run::

    python benchmarks/kernel_speed.py --quick                  # N = 128, T = 50, 2 passes (about a minute)
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

import numpy as np
import torch
from torch import Tensor, nn

from hrsnn.network import RSNN, LayerConfig, NeuronConfig, RSNNConfig, SpikingLayer

BATCH = 64
N_INPUTS = 128
INPUT_RATE = 0.05
SEED = 0
_SQRT_2PI = math.sqrt(2.0 * math.pi)
# Each peer (keyed by its package name) with what its adapter uses, as (module, attribute); the peer is skipped, with
# the reason, when one is missing.
PEERS: dict[str, tuple[tuple[str, str], ...]] = {
    "snntorch": (("snntorch", "RLeaky"),),
    "norse": (("norse.torch", "LIFBoxCell"), ("norse.torch.functional.reset", "reset_subtract"),
              ("norse.torch.functional.threshold", "threshold")),
    "spikingjelly": (("spikingjelly.activation_based.neuron", "ParametricLIFNode"),),
    "sinabs": (("sinabs.layers", "LIFRecurrent"), ("sinabs.activation.spike_generation", "BackwardClass")),
    "spyx": (("jax", "value_and_grad"), ("flax.nnx", "split"), ("spyx.nn", "RLIF"), ("spyx.axn", "custom")),
}  # fmt: skip
WRITTEN_FOR = {"snntorch": "1.0.0", "norse": "1.1.0", "spikingjelly": "2.0.0", "sinabs": "3.1.3", "spyx": "1.0.0"}
GRAD_NOTES = {
    "snntorch": "RLeaky detaches its reset term, so no gradient flows through -b0·s_{t-1}",
    "norse": "against the plain loop with Norse's own SuperSpike surrogate: Norse takes no other",
}


def multi_gaussian_grad(v: Any, exp: Callable[[Any], Any]) -> Any:
    """Derivative of hrsnn's default multi-Gaussian surrogate at v (σ = 0.5, h = 0.15, s = 6, γ = 0.5).

    ``exp`` is ``torch.exp`` or ``jax.numpy.exp``: one formula for the PyTorch contenders and spyx.
    """
    sigma, h, side = 0.5, 0.15, 3.0
    centre = exp(-0.5 * (v / sigma) ** 2) / (_SQRT_2PI * sigma)
    lobes = exp(-0.5 * ((v - sigma) / side) ** 2) + exp(-0.5 * ((v + sigma) / side) ** 2)
    return 0.5 * ((1.0 + h) * centre - h * lobes / (_SQRT_2PI * side))


class _MultiGaussianSpike(torch.autograd.Function):
    """H(v) forward; hrsnn's default multi-Gaussian surrogate backward."""

    @staticmethod
    def forward(ctx: Any, v: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(v)
        return (v > 0).to(v.dtype)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:  # type: ignore[override]
        (v,) = ctx.saved_tensors
        return grad * multi_gaussian_grad(v, torch.exp)


def spike_fn(v: Tensor) -> Tensor:
    """The spike nonlinearity every contender uses where it can take one."""
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
    """The equation of the module docstring as a plain PyTorch loop (the baseline), with spike function ``spike``."""

    def __init__(self, p: Problem, spike: Callable[[Tensor], Tensor] = spike_fn) -> None:
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
        self.spike = spike

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
            s = self.spike(u - self.threshold)
            spikes.append(s)
            if record:
                membranes.append(u)
        return torch.stack(spikes, 1), torch.stack(membranes, 1) if record else None


# --- peer adapters --------------------------------------------------------------------------------------------


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


class _EarlyResetDrive(nn.Module):
    """Input projection and recurrent weight for a peer that subtracts the threshold in the spiking step.

    ``drive(x)`` is R (W_in x + b_in + b_rec); ``recurrent`` holds R W_rec - b0·1, whose self-connection feeds back the
    -b0 s_{t-1} that turns the peer's early reset into hrsnn's (module docstring).
    """

    def __init__(self, p: Problem) -> None:
        super().__init__()
        neuron = p.layer.config.neuron
        w_rec, b_rec = p.recurrent()
        self.r_m = neuron.r_m
        self.input = nn.Linear(N_INPUTS, p.layer.size).to(p.x.dtype)
        self.b_rec = nn.Parameter(b_rec.clone())
        self.recurrent = nn.Linear(p.layer.size, p.layer.size, bias=False).to(p.x.dtype)
        with torch.no_grad():
            self.input.weight.copy_(p.layer.input.weight)
            self.input.bias.copy_(p.layer.input.bias)
            self.recurrent.weight.copy_(self.r_m * w_rec - neuron.b0 * torch.eye(p.layer.size, dtype=p.x.dtype))

    def drive(self, x: Tensor) -> Tensor:
        return self.r_m * (self.input(x) + self.b_rec)

    def grad_w_rec(self) -> Tensor:
        """dL/dW_rec from the gradient of ``recurrent`` (after a backward)."""
        grad = self.recurrent.weight.grad
        if grad is None:
            raise RuntimeError("no backward has run through the recurrent weight")
        return self.r_m * grad


def _norse_runner(p: Problem) -> tuple[Callable[[Tensor], Tensor], _EarlyResetDrive]:
    """Norse's LIFBoxCell (leak 1 - α per neuron, subtractive reset) in a time loop with the recurrent weight."""
    norse = importlib.import_module("norse.torch")
    reset = importlib.import_module("norse.torch.functional.reset")
    dtype = p.x.dtype
    net = _EarlyResetDrive(p)
    cell = norse.LIFBoxCell(
        norse.LIFBoxParameters(
            tau_mem_inv=1.0 - p.alpha,  # its leak is dt·tau_mem_inv
            v_leak=torch.zeros((), dtype=dtype),
            v_th=torch.tensor(p.layer.config.neuron.b0, dtype=dtype),
            reset_method=reset.reset_subtract,
        ),
        dt=1.0,
    )

    def run(x: Tensor) -> Tensor:
        drive = net.drive(x)
        state = norse.LIFBoxFeedForwardState(v=drive.new_zeros(drive.shape[0], drive.shape[2]))
        s = drive.new_zeros(drive.shape[0], drive.shape[2])
        out = []
        for d in drive.unbind(1):
            s, state = cell(d + net.recurrent(s), state)
            out.append(s)
        return torch.stack(out, 1)

    return run, net


def _spikingjelly_runner(p: Problem) -> tuple[Callable[[Tensor], Tensor], _EarlyResetDrive]:
    """SpikingJelly's ParametricLIFNode (per-neuron w, soft reset) single-step in a time loop."""
    neuron = importlib.import_module("spikingjelly.activation_based.neuron")
    net = _EarlyResetDrive(p)
    node = neuron.ParametricLIFNode(
        decay_input=True,
        v_threshold=p.layer.config.neuron.b0,
        v_reset=None,  # soft reset: v - θ s
        surrogate_function=spike_fn,
        detach_reset=False,
        step_mode="s",
    )
    node.w = nn.Parameter(torch.logit(1.0 - p.alpha))  # 1/τ = sigmoid(w) = 1 - α
    net.node = node

    def run(x: Tensor) -> Tensor:
        drive = net.drive(x)
        node.reset()
        s = drive.new_zeros(drive.shape[0], drive.shape[2])
        out = []
        for d in drive.unbind(1):
            s = node(d + net.recurrent(s))
            out.append(s)
        return torch.stack(out, 1)

    return run, net


def _sinabs_runner(p: Problem) -> tuple[Callable[[Tensor], Tensor], _EarlyResetDrive]:
    """Sinabs's LIFRecurrent (alpha_mem = α, subtractive reset) with the recurrent weight as its rec_connect."""
    layers = importlib.import_module("sinabs.layers")
    backward_class = importlib.import_module("sinabs.activation.spike_generation").BackwardClass

    class StrictSingleSpike(backward_class, torch.autograd.Function):
        """SingleSpike firing on v > θ (not >=) and in the membrane's dtype; Sinabs's backward and surrogate."""

        required_states = ("v_mem",)

        @staticmethod
        def forward(  # type: ignore[override]
            ctx: Any, v_mem: Tensor, threshold: Tensor, surrogate: Callable[..., Tensor]
        ) -> Tensor:
            ctx.save_for_backward(v_mem)
            ctx.spike_threshold = threshold
            ctx.surrogate_grad_fn = surrogate
            return (v_mem - threshold > 0).to(v_mem.dtype)

    net = _EarlyResetDrive(p)
    lif = layers.LIFRecurrent(
        tau_mem=-1.0 / torch.log(p.alpha),  # α = exp(-1/τ); alpha_mem is overwritten with hrsnn's α below
        rec_connect=net.recurrent,
        spike_threshold=torch.tensor(p.layer.config.neuron.b0, dtype=p.x.dtype),
        spike_fn=StrictSingleSpike,
        surrogate_grad_fn=lambda v, threshold: multi_gaussian_grad(v - threshold, torch.exp),
        train_alphas=True,
        norm_input=True,
    ).to(p.x.dtype)
    with torch.no_grad():
        lif.alpha_mem.copy_(p.alpha)
    net.lif = lif

    def run(x: Tensor) -> Tensor:
        lif.init_state_with_shape((x.shape[0], p.layer.size))  # a fresh zero membrane for each call
        return lif(net.drive(x))

    return run, net


class SpyxRunner:
    """spyx's RLIF scanned by ``spyx.nn.run`` under ``jax.jit``; forward+backward by ``jax.value_and_grad``.

    Built from a :class:`Problem` (float64 turns on JAX's x64 mode); ``forward`` and ``forward_backward`` wait for
    their results (the timed calls); ``spikes`` and ``grad_w_rec`` return those of the last ``forward_backward`` as
    torch tensors (the identity check).
    """

    def __init__(self, p: Problem) -> None:
        jax = importlib.import_module("jax")
        if p.x.dtype == torch.float64:
            jax.config.update("jax_enable_x64", True)
        jnp = importlib.import_module("jax.numpy")
        nnx = importlib.import_module("flax.nnx")
        spyx_nn = importlib.import_module("spyx.nn")
        axn = importlib.import_module("spyx.axn")

        def array(t: Tensor) -> Any:
            return jnp.asarray(t.detach().cpu().numpy())

        self._jax = jax
        self._scale = p.scale
        w_rec, b_rec = p.recurrent()
        rlif = spyx_nn.RLIF(
            (p.layer.size,),
            threshold=p.layer.config.neuron.b0,
            activation=axn.custom(bwd=lambda v: multi_gaussian_grad(v, jnp.exp), fwd=axn.heaviside),
            rngs=nnx.Rngs(SEED),
        )
        rlif.beta.set_value(array(p.alpha))
        rlif.recurrent_w.set_value(array((self._scale[:, None] * w_rec).t()))  # spikes @ W: W[j, i] is j -> i
        graph, rlif_params = nnx.split(rlif)
        self.params = {"w_in": array(p.layer.input.weight), "b_in": array(p.layer.input.bias), "b_rec": array(b_rec),
                       "rlif": rlif_params}  # fmt: skip
        scale = array(self._scale)
        v0 = array(p.x.new_zeros(p.x.shape[0], p.layer.size))
        self.x = array(torch.cat([p.x, p.x.new_zeros(p.x.shape[0], 1, N_INPUTS)], 1))  # one trailing zero step

        def spikes(params: dict[str, Any], x: Any) -> Any:
            drive = scale * (x @ params["w_in"].T + params["b_in"] + params["b_rec"])
            out, _ = spyx_nn.run(nnx.merge(graph, params["rlif"]), drive, v0, batch_major=True)
            return out[:, 1:]  # RLIF's output at call t + 1 is hrsnn's s_t

        def loss(params: dict[str, Any], x: Any) -> tuple[Any, Any]:
            out = spikes(params, x)
            return out.sum(), out

        self._spikes = jax.jit(spikes)
        self._value_and_grad = jax.jit(jax.value_and_grad(loss, has_aux=True))
        self._last: tuple[Any, dict[str, Any]] | None = None

    def forward(self) -> None:
        self._spikes(self.params, self.x).block_until_ready()

    def forward_backward(self) -> None:
        (_, out), grads = self._value_and_grad(self.params, self.x)
        self._last = self._jax.block_until_ready((out, grads))

    def _result(self) -> tuple[Any, dict[str, Any]]:
        if self._last is None:
            raise RuntimeError("forward_backward has not run")
        return self._last

    def spikes(self) -> Tensor:
        return torch.from_numpy(np.array(self._result()[0]))

    def grad_w_rec(self) -> Tensor:
        """dL/dW_rec in hrsnn's convention."""
        g = torch.from_numpy(np.array(self._result()[1]["rlif"]["recurrent_w"][...]))
        return g.t() * self._scale[:, None]


def build(name: str, p: Problem) -> tuple[Callable[[Tensor], Tensor], Callable[[], Tensor]]:
    """(run: x -> spikes, grad of the loss w.r.t. the unscaled recurrent weight after a backward) for a PyTorch
    contender (spyx: :class:`SpyxRunner`)."""
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
    runners = {"norse": _norse_runner, "spikingjelly": _spikingjelly_runner, "sinabs": _sinabs_runner}
    if name in runners:
        run, drive = runners[name](p)
        return run, drive.grad_w_rec
    raise ValueError(f"unknown library {name!r}")


def peer_spike_fn(name: str) -> Callable[[Tensor], Tensor] | None:
    """The spike function of a peer that cannot take hrsnn's surrogate (its gradient reference); None otherwise."""
    if name != "norse":
        return None
    norse = importlib.import_module("norse.torch")
    threshold = importlib.import_module("norse.torch.functional.threshold").threshold
    params = norse.LIFBoxParameters()  # the method and alpha the benchmark's LIFBoxCell runs with
    return lambda v: threshold(v, params.method, params.alpha)


def peer_status(name: str) -> str | None:
    """None when everything the adapter of peer ``name`` uses imports, else why the peer is skipped."""
    if importlib.util.find_spec(name) is None:
        return "skipped: not installed"
    for module, attribute in PEERS[name]:
        try:
            imported = importlib.import_module(module)
        except Exception as exc:  # a --no-deps install may miss a dependency; any import failure means skip
            return f"skipped: import of {module} failed ({type(exc).__name__}: {exc})"
        if not hasattr(imported, attribute):
            return f"skipped: {module} has no {attribute} (the adapter was written for {name} {WRITTEN_FOR[name]})"
    return None


# --- worker ---------------------------------------------------------------------------------------------------


def peak_rss_mib() -> float:
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


def median_time(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up (JAX: compiles)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _limit_xla_threads(threads: int) -> None:
    """Cap XLA's CPU threads at ``threads``; must run before JAX is imported (module docstring)."""
    if "jax" in sys.modules:
        raise RuntimeError("JAX is already imported: its thread pools are sized")
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        if threads < len(cpus):
            os.sched_setaffinity(0, cpus[:threads])
    if threads == 1:
        flags = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flags}".strip()


def worker(name: str, n: int, steps: int, repeats: int, threads: int) -> dict[str, float]:
    """Time one contender at one size: forward, then forward+backward; peak RSS after each phase."""
    torch.set_num_threads(threads)
    p = make_problem(n, steps, torch.float32)
    if name == "spyx":
        _limit_xla_threads(threads)
        runner = SpyxRunner(p)
        fwd, fwd_bwd = runner.forward, runner.forward_backward
    else:
        run, _ = build(name, p)

        def fwd() -> None:
            with torch.no_grad():
                run(p.x)

        def fwd_bwd() -> None:
            run(p.x).sum().backward()

    rss_setup = peak_rss_mib()
    t_fwd = median_time(fwd, repeats)
    rss_fwd = peak_rss_mib()
    t_bwd = median_time(fwd_bwd, repeats)
    return {"fwd_s": t_fwd, "fwdbwd_s": t_bwd, "rss_setup_mib": rss_setup, "rss_fwd_mib": rss_fwd,
            "rss_fwdbwd_mib": peak_rss_mib()}  # fmt: skip


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


def spikes_and_grad(name: str, p: Problem) -> tuple[Tensor, Tensor]:
    """A contender's forward spikes on ``p.x`` and, after the backward of their sum, its dL/dW_rec."""
    if name == "spyx":
        runner = SpyxRunner(p)
        runner.forward_backward()
        return runner.spikes(), runner.grad_w_rec()
    run, grad = build(name, p)
    spikes = run(p.x)
    spikes.sum().backward()
    return spikes.detach(), grad()


def plain_reference(p: Problem, spike: Callable[[Tensor], Tensor] = spike_fn) -> tuple[Tensor, Tensor, Tensor]:
    """The plain loop's spikes, membranes and masked dL/dW_rec (loss = number of spikes) on ``p``."""
    plain = PlainLoop(p, spike)
    spikes, membranes = plain(p.x, record=True)
    if membranes is None:
        raise RuntimeError("the plain loop did not record its membranes")
    spikes.sum().backward()
    grad = torch.where(p.layer.mask, plain.w_rec.grad, 0.0)  # the plain loop's leaf also has the masked entries
    return spikes.detach(), membranes.detach(), grad


def identity_check(names: list[str], n: int, steps: int, dtype: torch.dtype) -> dict[str, dict[str, Any]]:
    """Forward spikes of each contender against the plain loop's (float64: also the recurrent-weight gradient)."""
    p = make_problem(n, steps, dtype)
    ref_spikes, ref_u, ref_grad = plain_reference(p)
    mask = p.layer.mask
    threshold = p.layer.config.neuron.b0
    results: dict[str, dict[str, Any]] = {"plain": {"rate": float(ref_spikes.mean())}}
    for name in names:
        if name == "plain":
            continue
        # a fresh, identical layer: gradients must not accumulate across names
        spikes, grad = spikes_and_grad(name, make_problem(n, steps, dtype))
        diff = spikes != ref_spikes
        entry: dict[str, Any] = {"mismatches": int(diff.sum()), "of": diff.numel()}
        if entry["mismatches"]:
            first_t = int(diff.any(2).any(0).nonzero()[0])
            b, i = (int(k) for k in diff[:, first_t].nonzero()[0])
            margin = abs(float(ref_u[b, first_t, i]) - threshold)
            eps = torch.finfo(dtype).eps * max(1.0, float(ref_u[:, first_t].abs().max()))
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
            own_spike = peer_spike_fn(name)
            target = ref_grad if own_spike is None else plain_reference(make_problem(n, steps, dtype), own_spike)[2]
            g = torch.where(mask, grad, 0.0)
            entry["grad_rel_err"] = float((g - target).abs().max() / target.abs().max().clamp_min(1e-300))
            if name in GRAD_NOTES:
                entry["grad_note"] = GRAD_NOTES[name]
        results[name] = entry
    return results


# --- driver ---------------------------------------------------------------------------------------------------


def markdown_table(report: dict[str, Any]) -> str:
    """The timing part of ``report`` as the README's Markdown table: fwd+bwd ms (× plain) per size, forward ms, and
    peak MiB of the forward+backward process; one column per library, in the order timed."""
    sizes = [n for n, e in report["sizes"].items() if "timing" in e]
    if not sizes:
        return "(no timings)"
    names = list(report["sizes"][sizes[0]]["timing"])
    rows = ["| N | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for n in sizes:
        t = report["sizes"][n]["timing"]
        cells = [f"{1e3 * t[k]['fwdbwd_s']:.0f} ({t[k]['fwdbwd_ratio']:.2f})" for k in names]
        rows.append(f"| {n}, fwd+bwd | " + " | ".join(cells) + " |")
    for key, label in (("fwd_s", "fwd"), ("rss_fwdbwd_mib", "peak MiB")):
        cells = []
        for k in names:
            values = [report["sizes"][n]["timing"][k][key] for n in sizes]
            cells.append(" / ".join(f"{1e3 * v:.0f}" if key == "fwd_s" else f"{v:.0f}" for v in values))
        rows.append(f"| {' / '.join(sizes)}, {label} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="128,512,2048", help="comma-separated N (default 128,512,2048)")
    parser.add_argument("--steps", type=int, default=250, help="sequence length T (default 250)")
    parser.add_argument("--passes", type=int, default=2, help="interleaved passes (default 2)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per worker and phase (default 5)")
    parser.add_argument("--threads", type=int, default=2, help="torch / XLA threads per worker (default 2)")
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
    for peer in PEERS:
        status = peer_status(peer)
        if status is None:
            names.append(peer)
        else:
            skipped[peer] = status

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
                line = f"    {name:12s} {c['mismatches']} of {c['of']} spikes differ"
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
        print(f"    {'library':12s} {'fwd ms':>9s} {'×plain':>7s} {'fwd+bwd ms':>11s} {'×plain':>7s} "
              f"{'peak MiB fwd':>13s} {'fwd+bwd':>8s} {'setup':>6s}   per pass fwd+bwd ms")  # fmt: skip
        for name, t in timing.items():
            per_pass = " / ".join(f"{1e3 * v:.0f}" for v in t["fwdbwd_passes_s"])
            print(f"    {name:12s} {1e3 * t['fwd_s']:9.1f} {t['fwd_ratio']:7.2f} {1e3 * t['fwdbwd_s']:11.1f} "
                  f"{t['fwdbwd_ratio']:7.2f} {t['rss_fwd_mib']:13.0f} {t['rss_fwdbwd_mib']:8.0f} "
                  f"{t['rss_setup_mib']:6.0f}   {per_pass}")  # fmt: skip
    print("ratios are time / plain-loop time in this run (< 1: faster than the plain loop)")
    print("\nmarkdown (the README's table)\n" + markdown_table(report))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
