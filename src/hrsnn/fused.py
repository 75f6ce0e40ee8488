r"""Fused sequence kernels: a whole layer over a whole sequence as one autograd node with a hand-derived backward.

The reference path (:func:`hrsnn.neurons.alif_step` in a Python loop) records about a dozen autograd nodes per
step and allocates every intermediate. These kernels run the same maps for a whole sequence inside one
:class:`torch.autograd.Function`, on **time-major** buffers ``(T, B, N)`` allocated once per call, with in-place
per-step operations and no stacking; the backward pass runs BPTT by hand, evaluating the surrogate derivative in
blocks of time steps (a few MiB, cache-sized) with the surrogate's in-place form (``derivative_``). Nothing is
materialised that is not needed: membranes are kept only when recorded or differentiated, gradients of outputs
nobody used arrive as None instead of zero-filled tensors, and the weight gradient is one matrix product over all
steps. On the CPU the (T, B, N) buffers come from :data:`BUFFERS`, which keeps the memory of the last call's
buffers mapped, so that a training loop does not pay the OS for fresh zero-filled pages at every call (measured,
forward+backward, 2 threads, ``benchmarks/event_products.py --sections pool``: 1.4–1.6× faster for a 10 %-dense
N = 4096 ALIF layer, 1.14–1.17× dense, 1.5–1.75× at N = 512).
Three kernels:

**ALIF / LIF** (:func:`alif_sequence_tm`; LIF is β = 0, ρ = 1). Forward, for t = 1..T, with W the effective
recurrent weight W_rec ⊙ M (the kernels take W_rec and M and apply the mask themselves) and c_t the external
current (the input projection plus both biases; the recurrent bias may be passed apart, ``bias=``, and is then added
inside the step):

.. math::

    I_t &= c_t + W s_{t-1} \\
    \eta_t &= \rho\eta_{t-1} + (1-\rho)s_{t-1},\quad \theta_t = b_0 + \beta\eta_t \\
    u_t &= \alpha u_{t-1} + (1-\alpha)R I_t - \theta_t s_{t-1}dt,\quad s_t = H(u_t - \theta_t)

Backward, from t = T down to 1, with ψ_t the surrogate derivative at v_t = u_t − θ_t and bars for adjoints
(ū_t, η̄_t include what flows back from step t+1 and any external gradient of u_t, η_t; s̄_t includes the external
gradient of the spike output):

.. math::

    \bar v_t &= \bar s_t \psi_t,\quad \bar u_t \mathrel{+}= \bar v_t,\quad
    \bar\eta_t \mathrel{+}= -\beta(\bar v_t + \bar u_t s_{t-1} dt) \\
    \bar I_t &= (1-\alpha)R\,\bar u_t,\quad
    \bar s_{t-1} \mathrel{+}= -\bar u_t\theta_t dt + (1-\rho)\bar\eta_t + W^\top \bar I_t \\
    \bar u_{t-1} &= \alpha\bar u_t,\quad \bar\eta_{t-1} = \rho\bar\eta_t

and, summed over batch and time, :math:`\bar\alpha = \sum \bar u_t(u_{t-1} - R I_t)`,
:math:`\bar\rho = \sum\bar\eta_t(\eta_{t-1} - s_{t-1})`, :math:`\bar W = \sum \bar I_t s_{t-1}^\top`,
:math:`\bar c_t = \bar I_t`.

**Hard-reset LIF** (:func:`lif_hard_sequence_tm`): :math:`v_t = \alpha u_{t-1} + I_t`,
:math:`s_t = H(v_t - \vartheta)`, :math:`u_t = (1 - s_t) v_t`; backward
:math:`\bar v_t = \bar u_t (1 - s_t) + (\bar s_t - \bar u_t v_t)\psi_t`, :math:`\bar I_t = \bar v_t`,
:math:`\bar u_{t-1} = \alpha\bar v_t`, :math:`\bar s_{t-1} \mathrel{+}= W^\top\bar v_t`,
:math:`\bar\alpha = \sum\bar v_t u_{t-1}`.

**Leaky-integrator readout** (:func:`integrator_sequence_tm`): :math:`u_t = \alpha u_{t-1} + (1-\alpha) c_t`;
backward :math:`\bar c_t = (1-\alpha)\bar u_t`, :math:`\bar u_{t-1} = \alpha\bar u_t`,
:math:`\bar\alpha = \sum\bar u_t(u_{t-1} - c_t)`.

Sparse recurrence (:class:`Recurrence`). When the synapse mask is sparse (a pruned network), the recurrent products
run on sparse copies of W built once per call, and the weight gradient is kept only on the mask's entries; where
this pays is :data:`SPARSE_DENSITY` and :data:`SPARSE_MIN_SIZE` (PyTorch ops; measured: 1.4× at N = 4096 and 10 %
density, nothing below 1024 neurons) and :data:`NATIVE_SPARSE_DENSITY`, :data:`NATIVE_SPARSE_MIN_SIZE` (compiled
kernels). Where few neurons fire, the forward recurrent product and the weight gradient are event-driven: their cost
grows with the spike count (:data:`EVENT_RATE`, :data:`EVENT_RATE_GRAD`; :data:`NATIVE_EVENT_RATE`,
:data:`NATIVE_EVENT_RATE_SPARSE`, :data:`NATIVE_EVENT_RATE_GRAD`, :data:`NATIVE_EVENT_WORK_GRAD`). The backward
product Ī W stays dense in the spikes (the surrogate derivative is nonzero almost everywhere) and sparse only in W.

Compiled kernels (:mod:`hrsnn._native`; CPU, float32 and float64). When a C compiler is available (built once per
machine into a cache folder; ``HRSNN_NATIVE=0`` turns them off, and without a compiler everything runs on the
PyTorch ops described above), the ALIF/LIF kernel runs its time loops in C, one call per sequence (at N = 128, T =
250 forward+backward went from 34 to 23 ms when the loops moved from Python to C: ``kernel_speed.py``'s hrsnn worker
at ec92bab and acc87ac, alternating). Each forward step is one compiled pass per sample (the spike-driven product,
then the neuron update; the step's spike count comes back for free and decides the next step's product; a sparse W's
steps with more spikes return to Python for PyTorch's CSR product) and each backward step one pass (the surrogate
derivative of :mod:`hrsnn.surrogates` evaluated in place, the adjoint update, and for a sparse W the product Ī W;
other surrogates are evaluated with PyTorch in blocks of steps, one loop call per block). A dense W's products s Wᵀ
(steps with many spikes) and Ī W run on a compiled matrix product with W packed once per call in panels of 2 × 64
bytes of columns (8 rows by 2 vectors of fused multiply-adds in registers, depth blocks of 128; threads take whole
panels, so the sums do not depend on the thread count). On a step's (64, N) x (N, N) shape, against PyTorch's
``addmm`` (``benchmarks/event_products.py --sections dense``, float32, 2 threads, 2-core Xeon): 2.1–2.3× at N = 128,
1.4–1.6× at 512, 1.06–1.26× at 2048, on par at 4096 (0.95–0.97×, W streams from memory); the weight gradient, one
large product per call, stays PyTorch's. The sparse W is kept in CSR by source neuron (the targets of each neuron,
for the spike-driven forward product and the weight gradient) and, for the backward product, in tiles of targets:
each step's Ī is transposed into one row of B values per neuron (16 × 16 register blocks where the CPU has AVX-512),
a tile's rows stay in cache while every output row takes its entries from them, and the result is transposed back
into s̄. A layer keeps these structures between calls in its :class:`SynapseCache` while its mask holds the same
pattern (each call gathers W's values onto them). The weight gradient of a sparse W gathers, per spike, the
gradients of the neuron's targets, and is written only on the synapses. The hard-reset LIF uses the compiled
products through :class:`Recurrence`.

Exactness. The kernels evaluate the reference formulas with different roundings (fused ``addcmul``/``lerp``/
``addmm``, the bias folded into the current, the multi-Gaussian's side lobes summed in closed form; in the compiled
kernels fused multiply-adds, sums in another order and their own vectorised exponential, within a few ulp). In float64
they agree with the step loop to about 1e-14 with identical spikes (the parity tests ask 1e-12 and 1e-10 for
gradients); on the authors' ECG model and the 141 QTDB test sequences × 1301 steps not one spike differs. In float32
the membranes differ by a few ulp (≈ 5e-8), which is harmless until a membrane lands within that distance of its
threshold: then one path spikes and the other does not, and from there on that sequence follows a different but
equally valid trajectory (on the same ECG run in float32 the kernels with PyTorch's products diverged in 1 of 141
sequences, from step 621, and 19 of 182,031 per-step predictions differed, accuracy 0.85860 vs 0.85864; the
compiled products and time loops match the step loop there spike for spike, which is the luck of this case's
roundings, not a guarantee). Use float64 where spike patterns must match bit for bit.

The kernels are differentiable once: a backward pass with ``create_graph=True`` (Hessian-vector products, gradient
penalties) raises :class:`~hrsnn.errors.ConfigError`; set ``layer.fused = False`` to use the step loop.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from hrsnn import _native
from hrsnn._workspace import BufferPool, default_limit
from hrsnn.errors import ConfigError
from hrsnn.surrogates import ArcTan, FastSigmoid, Gaussian, MultiGaussian, SlayerExponential, Surrogate, Triangle

__all__ = [
    "BUFFERS",
    "EVENT_RATE",
    "EVENT_RATE_GRAD",
    "NATIVE_ACC_GROUPS",
    "NATIVE_EVENT_GRAD_MIN_SIZE",
    "NATIVE_EVENT_MIN_SIZE",
    "NATIVE_EVENT_RATE",
    "NATIVE_EVENT_RATE_GRAD",
    "NATIVE_EVENT_RATE_MAX",
    "NATIVE_EVENT_RATE_SPARSE",
    "NATIVE_EVENT_WORK_GRAD",
    "NATIVE_SPARSE_DENSITY",
    "NATIVE_SPARSE_MIN_SIZE",
    "NATIVE_TILE_BYTES",
    "SPARSE_DENSITY",
    "SPARSE_MIN_SIZE",
    "Recurrence",
    "alif_sequence",
    "alif_sequence_tm",
    "alif_thresholds",
    "integrator_sequence_tm",
    "lif_hard_sequence_tm",
]

_SQRT_2PI = math.sqrt(2.0 * math.pi)

BLOCK_BYTES = 1 << 21
"""Size of the blocks of time steps in which the backward pass evaluates the surrogate (2 MiB: cache-sized)."""

SPARSE_DENSITY = 0.15
"""Recurrent layers of at least :data:`SPARSE_MIN_SIZE` neurons whose synapse pattern has at most this density use
the CSR path (:class:`Recurrence`). Measured (ALIF layer, B = 64, T = 40, forward + backward, 2 threads, idle 2-core
Xeon VM; dense time / CSR time): N = 4096: 1.67, 1.55, 1.42, 0.69 at densities 0.02, 0.05, 0.1, 0.2;
N = 2048: 1.39, 1.21, 1.04, 0.78; N = 1024: 1.25, 0.96, 0.99, 0.82; N = 512: 0.89–1.02 at every density. The
break-even lies between 0.1 and 0.2; 0.15 keeps a pruned mask of nominal density 0.1 on the CSR path."""

SPARSE_MIN_SIZE = 2048
"""Smallest layer that takes the CSR or the event-driven paths automatically (see :data:`SPARSE_DENSITY`)."""

EVENT_RATE = 0.03
"""Steps whose spikes fill at most this fraction of the (B, N) entries take the event-driven recurrent product.
Measured (one step, B = 64, dense time / event time): N = 4096: 2.4 at rate 0.01, 1.35 at 0.05, 0.70 at 0.1;
N = 2048: 3.0, 1.26, 1.5 (noisy); N = 512: 0.3–0.7 at every rate (hence :data:`SPARSE_MIN_SIZE`)."""

EVENT_RATE_GRAD = 0.02
"""Sequences whose spikes fill at most this fraction of the (T, B, N) entries compute the weight gradient from the
spikes (event-driven). Measured (T = 100, B = 64): N = 4096: 3.2× faster at rate 0.01, 0.76× at 0.05; N = 2048:
2.3×, 0.73×."""


NATIVE_SPARSE_DENSITY = 0.2
"""As :data:`SPARSE_DENSITY`, for the compiled kernels (CSR by source neuron, tiled backward product). Measured
(ALIF layer, B = 64, T = 40, forward + backward, 1 thread, float32, firing rates 0.3–1 %; dense time / sparse
time at densities 0.02, 0.05, 0.1, 0.2, 0.3): N = 4096: 3.82, 3.26, 2.50, 1.78, 1.37; N = 2048: 2.88, 2.95, 2.18,
1.36, 1.13; N = 1024: 1.62, 1.47, 1.35, 1.07, 0.77; N = 512: 1.37, 1.15, 1.12, 1.09, 0.94; N = 256: 1.20, 1.32,
0.89, 0.98, 1.03."""

NATIVE_SPARSE_MIN_SIZE = 512
"""As :data:`SPARSE_MIN_SIZE`, for the compiled kernels (see :data:`NATIVE_SPARSE_DENSITY`)."""

NATIVE_EVENT_MIN_SIZE = 128
"""Smallest layer whose forward product goes spike-driven automatically with the compiled kernels. Measured
(``benchmarks/event_products.py --sections recurrent``, as in :data:`NATIVE_EVENT_RATE`; 2 threads | 1 thread):
N = 32: 2.9, 2.1, 1.08, 0.77, 0.48, 0.35 | 1.9, 1.6, 0.68, 0.43, 0.28, 0.17; N = 64: 1.8, 1.14, 0.53, 0.33, 0.21,
0.13 | 1.7, 0.55, 0.48, 0.20, 0.11, 0.14; N = 128 and up: see :data:`NATIVE_EVENT_RATE`. Below 128 the dense
product wins from a few % of spikes. (Against PyTorch's ``addmm``, before the compiled dense product, the
threshold was 64.)"""

NATIVE_EVENT_RATE = 0.25
r"""As :data:`EVENT_RATE`, for the compiled kernels with a dense W (the rows of Wᵀ of the neurons that fired, added
in register-held blocks), at N = 512; a layer of N neurons goes spike-driven up to this rate times
:math:`\sqrt{512/N}`, at most :data:`NATIVE_EVENT_RATE_MAX`. Measured (``benchmarks/event_products.py --sections
recurrent``; one product, B = 64, the compiled dense product's time through :meth:`Recurrence.add_into` /
spike-driven time at rates 0.02, 0.05, 0.1, 0.2, 0.4, 0.6; 2 threads | 1 thread, 2-core Xeon): N = 128: 6.4,
5.5, 3.5, 3.1, 2.0, 1.05 | 8.9, 6.3, 4.6, 3.1, 1.6, 0.99; N = 256: 8.5, 6.1, 4.1, 1.9, 1.05, 0.66 | 10.9, 6.6, 3.7,
1.7, 0.94, 0.63; N = 512: 11.8, 5.2, 2.8, 1.6, 0.78, 0.56 | 12.3, 5.2, 2.9, 1.6, 0.79, 0.55; N = 1024: 4.8, 2.9,
1.6, 0.81, 0.35 | 5.6, 2.8, 1.5, 0.73, 0.31; N = 2048: 5.9, 2.6, 1.2, 0.55, 0.21 | 5.2, 2.1, 0.88, 0.45, 0.20;
N = 4096: 7.2, 2.5, 1.2, 0.51, 0.23 | 5.8, 2.0, 0.95, 0.39, 0.21 (break-even near 0.33, 0.17, 0.12 and 0.11 of the
spikes at N = 512, 1024, 2048, 4096). The threshold was 0.28 while the dense steps ran PyTorch's ``addmm`` (break-even
near 0.38 at N = 512 then)."""

NATIVE_EVENT_RATE_MAX = 0.4
"""Cap of the dense spike-driven rate (see :data:`NATIVE_EVENT_RATE`)."""

NATIVE_EVENT_RATE_SPARSE = 0.05
"""As :data:`EVENT_RATE`, for the compiled kernels with a sparse W (the CSR entries of each spike's neuron).
Measured (one product, B = 64, 1 thread) at density 0.1 against PyTorch's CSR product, at rates 0.02, 0.05,
0.1: N = 256: 4.5, 2.9, 1.7; N = 512: 4.6, 2.4, 0.91; N = 1024: 4.0, 1.9, 0.99; N = 4096: 2.8, 1.3, 0.95."""

NATIVE_EVENT_RATE_GRAD = 0.2
"""With the compiled kernels and a dense W of at least :data:`NATIVE_EVENT_GRAD_MIN_SIZE` neurons, the weight
gradient comes from the spikes (per chunk of 64 rows and source neuron, the rows where it fired add their gradient
rows into a register-held block of the result) when at most this fraction of them is nonzero. Measured
(``benchmarks/event_products.py --sections grad``; R = 16,000 rows, PyTorch's dense product time / compiled time
at rates 0.1, 0.2, 0.3, 0.4; 2 threads | 1 thread; square products, noisy VM): N = 64: 0.91, 0.67, 0.56, 0.46 |
1.05, 0.74, 0.59, 0.49; N = 128: 1.87, 1.41, 1.13, 0.93 | 1.67, 1.28, 1.00, 0.82; N = 256: 1.50, 1.37, 1.06, 1.06 |
2.49, 1.87, 1.11, 0.89; N = 512: 1.94, 2.05, 1.45, 1.35 | 2.66, 1.72, 1.26, 0.96; N = 2048: 2.52, 1.93, 1.19, 1.37
| 1.93, 1.59, 1.00, 0.92. Other runs of N = 512 at 2 threads gave 0.9–1.0 at 0.4: the threshold keeps a margin."""

NATIVE_EVENT_GRAD_MIN_SIZE = 128
"""Smallest dense layer whose weight gradient goes event-driven with the compiled kernels (see
:data:`NATIVE_EVENT_RATE_GRAD`; below 128 float32 neurons the kernel runs a scalar loop and loses)."""

NATIVE_EVENT_WORK_GRAD = 0.01
"""With the compiled kernels and a sparse W, the weight gradient comes from the spikes (gathering, per spike, the
gradients of the neuron's targets) when the spike fraction times the synapse density is at most this. Measured
(N = 512, 1024, 4096, T·B = 1280, 1 thread; PyTorch's dense product / compiled time): density 0.05 at rates 0.1,
0.2, 0.4: 1.7, 0.97, 0.52 / 1.9, 1.17, 0.59 / 2.9, 1.7, 0.82; density 0.2 at rates 0.05, 0.1, 0.2: 1.21, 0.69,
0.38 / 1.37, 0.81, 0.43 / 2.27, 0.93, 0.50."""

BUFFERS = BufferPool(default_limit())
"""Where the kernels' large buffers come from on the CPU (:mod:`hrsnn._workspace`): memory of freed buffers stays
mapped for the next call, up to ``$HRSNN_BUFFER_CACHE_MIB`` idle (default: the smaller of 2 GiB and an eighth of
the RAM); ``BUFFERS.release()`` unmaps it."""

NATIVE_ACC_GROUPS = 8
"""The compiled backward step accumulates the gradients of α and ρ in one row of N per group of samples (this many
groups), in cache, instead of one row per sample (B x N values read and written every step); threads take whole
groups, so the result does not depend on the thread count."""

NATIVE_TILE_BYTES = 1 << 16
"""The compiled sparse backward product reads the gradient rows of this many bytes of targets at a time (at most
256 targets) while it runs over all output rows. Measured (N = 4096, 10 % density, B = 64, float32, 1 thread, mean
backward step inside a layer's backward): 7.2, 5.4, 5.3, 4.9 ms for 16, 32, 48, 64 KiB."""


def _check_once_differentiable() -> None:
    if torch.is_grad_enabled():  # create_graph=True: a hand-written backward would record an incomplete graph
        raise ConfigError(
            "fused",
            True,
            "the fused kernels are once-differentiable (no double backward, e.g. Hessian-vector products); "
            "set layer.fused = False on every SpikingLayer and readout to use the step loop",
        )


def _needs_grad(*tensors: Tensor | None) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _block_steps(batch: int, n: int, element_size: int, steps: int) -> int:
    return max(1, min(steps, BLOCK_BYTES // max(1, batch * n * element_size)))


def _threads() -> int:
    return torch.get_num_threads()


def _native_for(*tensors: Tensor) -> _native.Kernels | None:
    """The compiled kernels when they are available and the tensors are CPU float32 or float64 of one dtype."""
    dtype = tensors[0].dtype
    if dtype not in (torch.float32, torch.float64) or any(t.device.type != "cpu" or t.dtype != dtype for t in tensors):
        return None
    return _native.kernels()


def _sequence_operands(*tensors: Tensor | None) -> Tensor:
    """The compiled loops' table of sequence operands: per (T', B, N) tensor with contiguous slices, the address of
    slice 0, the bytes between slices and the number of slices (zeros for None). The caller keeps the tensors."""
    rows = [(x.data_ptr(), x.stride(0) * x.element_size(), x.shape[0]) if x is not None else (0, 0, 0) for x in tensors]
    return torch.tensor(rows, dtype=torch.int64)


def _incoming(g: Tensor | None) -> Tensor | None:
    """An incoming gradient for the compiled loops: one (B, N) slice for all steps when g repeats along time (the
    gradient of a sum arrives expanded), else g with contiguous slices."""
    if g is not None and g.stride(0) == 0:
        return g[0].contiguous().unsqueeze(0)
    return g.contiguous() if g is not None else None


def _buffer(like: Tensor, *shape: int) -> Tensor:
    """An uninitialised tensor of ``like``'s dtype and device; on the CPU from :data:`BUFFERS`."""
    if like.device.type == "cpu":
        return BUFFERS.empty(shape, like.dtype)
    return like.new_empty(shape)


def _zeros_or_copy(g: Tensor | None, like: Tensor) -> Tensor:
    """A contiguous copy of the incoming gradient g, or zeros shaped like ``like`` when there is none."""
    return g.clone(memory_format=torch.contiguous_format) if g is not None else torch.zeros_like(like)


def _to_csr(x: Tensor) -> Tensor:
    """``x.to_sparse_csr()`` without PyTorch's "sparse CSR support is in beta" warning (the ops used here are
    tested)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return x.to_sparse_csr()


def _native_surrogate(surrogate: Surrogate) -> tuple[int, tuple[float, ...]] | None:
    """The compiled backward step's code and five constants for the surrogate derivative (``surrogate_row`` in
    ``_native/kernels_body.h``: the formulas of :mod:`hrsnn.surrogates`), or None for another surrogate class."""
    sg: Any = surrogate
    kind = type(surrogate)
    if kind is MultiGaussian:
        side2 = (sg.s * sg.sigma) ** 2
        centre = sg.scale * (1.0 + sg.h) / (_SQRT_2PI * sg.sigma)
        lobes = sg.scale * sg.h * 2.0 * math.exp(-0.5 * sg.sigma**2 / side2) / (_SQRT_2PI * math.sqrt(side2))
        return 1, (centre, -0.5 / sg.sigma**2, 0.5 * lobes, -0.5 / side2, sg.sigma / side2)
    if kind is Gaussian:
        return 2, (sg.scale / (_SQRT_2PI * sg.sigma), -0.5 / sg.sigma**2, 0.0, 0.0, 0.0)
    if kind is Triangle:
        return 3, (sg.scale, sg.width, 0.0, 0.0, 0.0)
    if kind is SlayerExponential:
        return 4, (sg.scale, sg.alpha, 0.0, 0.0, 0.0)
    if kind is FastSigmoid:
        return 5, (sg.scale, sg.slope, 0.0, 0.0, 0.0)
    if kind is ArcTan:
        return 6, (0.5 * sg.alpha * sg.scale, 0.5 * math.pi * sg.alpha, 0.0, 0.0, 0.0)
    return None


def _surrogate_(surrogate: Surrogate, v: Tensor, work: Tensor) -> Tensor:
    """Overwrite v with the surrogate derivative at v (the in-place form when the surrogate has one)."""
    inplace = getattr(surrogate, "derivative_", None)
    if inplace is None:
        return v.copy_(surrogate.derivative(v))
    return inplace(v, work)


def _surrogate_block(
    k: _ALIFConsts, mem: Tensor, traces: Tensor | None, start: int, end: int, psi: Tensor, work: Tensor, theta: Tensor
) -> Tensor | None:
    """ψ_t of the steps t = start + 1 … end into ``psi[: end - start]``; when adaptive, θ_t into ``theta``, returned."""
    size = end - start
    th = None
    if traces is not None:
        th = torch.mul(traces[start + 1 : end + 1], k.beta, out=theta[:size]).add_(k.b0)
        torch.sub(mem[start + 1 : end + 1], th, out=psi[:size])
    else:
        torch.sub(mem[start + 1 : end + 1], k.b0, out=psi[:size])
    _surrogate_(k.surrogate, psi[:size], work[:size])
    return th


@dataclass(frozen=True)
class _Tiles:
    """The compiled kernels' CSR of Wᵀ in tiles of ``size`` <= 256 targets (``tiles`` of them; entries of tile t and
    source i from ``tptr[t N + i]`` to ``tptr[t N + i + 1]``, targets as offsets in the tile, uint8) and two scratch
    buffers of B·N values."""

    tiles: int
    size: int
    tptr: Tensor
    tidx: Tensor
    tval: Tensor
    scratch_t: Tensor
    scratch_acc: Tensor

    def product(self) -> tuple[int, ...]:
        """The arguments of the compiled backward product: tiles, tile size, pointers, targets, values, two scratch
        buffers."""
        return (self.tiles, self.size, self.tptr.data_ptr(), self.tidx.data_ptr(), self.tval.data_ptr(),
                self.scratch_t.data_ptr(), self.scratch_acc.data_ptr())  # fmt: skip


def _same_pattern(mask: Tensor, kept: Tensor) -> bool:
    """Whether two bool masks are equal (compared eight bytes at a time where the size allows)."""
    if mask.shape != kept.shape or mask.device != kept.device:
        return False
    a, b = mask.contiguous().reshape(-1).view(torch.uint8), kept.reshape(-1).view(torch.uint8)
    if a.numel() % 8 == 0:
        a, b = a.view(torch.int64), b.view(torch.int64)
    return torch.equal(a, b)


class SynapseCache:
    """The compiled sparse kernels' structures for one layer's synapse pattern, kept across calls (pass one per layer
    as ``synapse_cache=`` to :func:`alif_sequence_tm` or :func:`lif_hard_sequence_tm`; used with a bool mask).

    The structures (the CSR of Wᵀ, the synapses by target, the tiled CSR per tile size) depend on the mask alone.
    They are kept while the mask holds the same pattern, checked against a private copy at every call (one pass
    over its N² bytes, so a change is seen however it was made), and rebuilt when it changed. W's values are
    gathered onto them at every call (a gather from W and a scatter into the CSR, then a gather from the CSR for
    each tile size, instead of sorting the pattern again); nothing of W is kept. A call's :class:`Recurrence` notes
    the cache's generation, so a call whose mask was replaced before its backward builds its own structures. Copies
    and pickles are empty."""

    def __init__(self) -> None:
        self.generation = 0
        self._clear()

    def _clear(self) -> None:
        self._pattern: Tensor | None = None  # private copy of the mask the structures belong to
        self._nnz: int | None = None
        self._csr: tuple[Tensor, ...] | None = None  # ptr, idx, row_ptr, cols, pos
        self._flat: Tensor | None = None  # j N + i of each synapse i -> j, by target (row after row of W)
        self._tiles: dict[int, tuple[Tensor, Tensor, Tensor]] = {}  # tile size -> tptr, tidx, CSR entry of each

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.generation = 0
        self._clear()

    def follow(self, mask: Tensor) -> int:
        """Keep the structures if ``mask`` holds the kept pattern, else drop them; the generation they belong to."""
        if self._pattern is None or not _same_pattern(mask, self._pattern):
            self._clear()
            self._pattern = mask.clone()
            self.generation += 1
        return self.generation

    def count(self) -> int:
        """The number of synapses of the pattern."""
        if self._nnz is None:
            self._nnz = int(torch.count_nonzero(self._pattern))
        return self._nnz

    def csr(self, rec: Recurrence) -> tuple[Tensor, ...]:
        """:attr:`Recurrence.native_csr` of ``rec``, W's values gathered onto the kept structures."""
        if self._csr is None:
            ptr, idx, val, row_ptr, cols, pos = rec.build_native_csr()
            self._csr = (ptr, idx, row_ptr, cols, pos)
            return ptr, idx, val, row_ptr, cols, pos
        ptr, idx, row_ptr, cols, pos = self._csr
        return ptr, idx, self._scatter(rec.weight, pos), row_ptr, cols, pos

    def tiles(self, rec: Recurrence, size: int) -> tuple[Tensor, Tensor, Tensor]:
        """The tiled CSR (pointers, offsets, values) of ``rec`` for tiles of ``size`` targets; the values are taken
        from ``rec``'s CSR values in the kept tiled order."""
        if size not in self._tiles:
            tptr, tidx, tval, order = rec.build_native_tiles(size, keep_order=True)
            self._tiles[size] = (tptr, tidx, order)  # type: ignore[assignment]
            return tptr, tidx, tval
        tptr, tidx, order = self._tiles[size]
        return tptr, tidx, rec.native_csr[2].take(order)

    def _scatter(self, weight: Tensor, pos: Tensor) -> Tensor:
        """W's values on the synapses in CSR order: read row after row of W (by target), written to ``pos``."""
        if self._flat is None:
            row_ptr, cols = self._csr[2], self._csr[3]  # type: ignore[index]
            n = weight.shape[0]
            targets = torch.repeat_interleave(torch.arange(n), row_ptr.diff(), output_size=len(cols))
            self._flat = targets * n + cols
        return weight.new_empty(len(pos)).index_copy_(0, pos, weight.reshape(-1).take(self._flat))


class Recurrence:
    r"""The recurrent product of one call: dense W or a sparse copy of it (pruned W), spike-driven where few fire.

    ``add_into(out, c, s)`` writes :math:`c + s W^\top` (rows of s are samples), ``add_transposed_(acc, g)`` adds
    :math:`g W`, ``scaled_add_transposed(out, x, beta, g)`` writes :math:`\beta x + g W`, and ``weight_grad(g, s)``
    returns :math:`\sum_k g_k^\top s_k` over the flattened rows. On the
    sparse path that gradient is computed only on the synapse pattern (``mask``, or W's nonzeros when no mask is
    given) and is exactly 0 elsewhere; otherwise it is the full product, zeroed outside ``mask`` when one is given.

    Event-driven products: where a step's spikes are few, :math:`s W^\top` adds, per sample, the columns of W of
    the neurons that fired, so that its cost grows with the number of spikes instead of B·N; likewise the weight
    gradient, from the spikes of all steps at once. Exact up to summation order.

    Two implementations: the compiled kernels of :mod:`hrsnn._native` (CPU, float32/float64; W in CSR by source
    neuron, the backward product tiled for the cache) when they are available, else PyTorch ops (CSR copies of W and
    Wᵀ, a CSR matrix of the spikes). ``native`` is the loaded library or None.

    Args:
        weight: recurrent weight (N, N); with a ``mask``, its entries outside the mask are ignored (as if 0, NaN
            and ±inf included).
        sparse: True or False forces the sparse weight path; None takes it on the CPU for layers of at least
            :data:`SPARSE_MIN_SIZE` neurons (:data:`NATIVE_SPARSE_MIN_SIZE` with the compiled kernels) whose
            pattern's density is at most :data:`SPARSE_DENSITY` (:data:`NATIVE_SPARSE_DENSITY`).
        mask: the synapse pattern (N, N), bool; None means W's nonzero entries.
        events: True uses the spike-driven products always, False never; None on the CPU for layers of at least
            :data:`SPARSE_MIN_SIZE` neurons (:data:`NATIVE_EVENT_MIN_SIZE` with the compiled kernels), per step
            when at most :data:`EVENT_RATE` (:data:`NATIVE_EVENT_RATE`, or :data:`NATIVE_EVENT_RATE_SPARSE` for a
            sparse W) of the entries of s are nonzero; for the weight gradient, on layers of at least
            :data:`SPARSE_MIN_SIZE` neurons when at most :data:`EVENT_RATE_GRAD` of all spikes are (compiled
            kernels: with a dense W from :data:`NATIVE_EVENT_GRAD_MIN_SIZE` neurons at most
            :data:`NATIVE_EVENT_RATE_GRAD`; with a sparse W at any size, when the spike fraction times the density
            is at most :data:`NATIVE_EVENT_WORK_GRAD`).
    """

    def __init__(
        self,
        weight: Tensor,
        sparse: bool | None,
        mask: Tensor | None = None,
        events: bool | None = None,
        synapse_cache: SynapseCache | None = None,
    ) -> None:
        n = weight.shape[0]
        self.native = _native_for(weight)
        self.pattern = weight != 0 if mask is None else mask.bool()
        self._mask_given = mask is not None
        # the cache serves the compiled sparse path (and counts the synapses for the choice of path)
        keep = mask is not None and mask.dtype == torch.bool and self.native is not None and sparse is not False
        cache = synapse_cache if keep else None
        self._generation = cache.follow(mask) if cache is not None else 0  # type: ignore[arg-type]
        cpu = weight.device.type == "cpu"
        if sparse is None:
            min_size, density = (
                (NATIVE_SPARSE_MIN_SIZE, NATIVE_SPARSE_DENSITY) if self.native else (SPARSE_MIN_SIZE, SPARSE_DENSITY)
            )
            count = cache.count() if cache is not None else int(torch.count_nonzero(self.pattern))
            sparse = cpu and n >= min_size and count <= density * n * n
        self.sparse = sparse
        self._cache = cache if sparse else None
        native_sparse = sparse and self.native is not None
        event_min = NATIVE_EVENT_MIN_SIZE if self.native else SPARSE_MIN_SIZE
        self.events = events if events is not None or (cpu and n >= event_min) else False  # None: by spike count
        grad_min = 0 if native_sparse else (NATIVE_EVENT_GRAD_MIN_SIZE if self.native else SPARSE_MIN_SIZE)
        self.events_grad = events if events is not None or (cpu and n >= grad_min) else False
        if self.native is None:
            self.event_rate = EVENT_RATE
        elif sparse:
            self.event_rate = NATIVE_EVENT_RATE_SPARSE
        else:
            self.event_rate = min(NATIVE_EVENT_RATE_MAX, NATIVE_EVENT_RATE * math.sqrt(512 / max(n, 1)))
        self.weight = weight
        self._tiles: dict[int, _Tiles] = {}

    @functools.cached_property
    def weight_t(self) -> Tensor:
        """Wᵀ, contiguous (rows: the targets of each neuron, for the spike-driven forward product)."""
        return self.effective.t().contiguous()

    @functools.cached_property
    def effective(self) -> Tensor:
        """W, zero outside the mask, built when a product first needs it (the compiled CSR reads W on the pattern
        only, so a compiled sparse layer never does)."""
        return torch.where(self.pattern, self.weight, 0.0) if self._mask_given else self.weight

    @functools.cached_property
    def panels_t(self) -> Tensor:
        """Wᵀ packed for the compiled dense product :math:`s W^\top` (``pack_panels`` of :mod:`hrsnn._native`;
        built when first needed, dropped by :meth:`forward_done`)."""
        w = self.effective
        return self._pack(w.stride(1), w.stride(0))

    @functools.cached_property
    def panels(self) -> Tensor:
        """W packed for the compiled dense product :math:`g W` of the backward pass."""
        return self._pack(*self.effective.stride())

    def _pack(self, stride_k: int, stride_n: int) -> Tensor:
        """W's entries packed in panels, B[k, q] read at ``W.data_ptr() + k stride_k + q stride_n``."""
        n = self.weight.shape[0]
        packed = _buffer(self.weight, int(self._native("packed_size")(n, n)))
        self._native("pack_panels")(n, n, self.effective.data_ptr(), stride_k, stride_n, packed.data_ptr(),
                                    _threads())  # fmt: skip
        return packed

    def forward_done(self) -> None:
        """Drop what only the forward products use (Wᵀ and its panels), kept by a call for its backward."""
        for name in ("panels_t", "weight_t"):
            self.__dict__.pop(name, None)

    @functools.cached_property
    def csr(self) -> Tensor:
        """W in CSR (built when first needed: a forward pass whose steps all go event-driven never needs it)."""
        return _to_csr(self.effective)

    @functools.cached_property
    def csr_t(self) -> Tensor:
        """Wᵀ in CSR (for the backward product of the PyTorch path)."""
        return _to_csr(self.effective.t().contiguous())

    @functools.cached_property
    def synapses(self) -> tuple[Tensor, Tensor]:
        """(targets, sources) of the synapse pattern's entries, row-major."""
        return self.pattern.nonzero(as_tuple=True)  # type: ignore[return-value]

    @functools.cached_property
    def native_csr(self) -> tuple[Tensor, ...]:
        """The compiled kernels' CSR of Wᵀ: row pointers (N + 1, int64), targets (int32) and values W[j, i]; and the
        synapses by target: row pointers, sources (int32) and each one's position in the CSR of Wᵀ (int64). From
        the layer's :class:`SynapseCache` when there is one."""
        if self._cached():
            return self._cache.csr(self)  # type: ignore[union-attr]
        return self.build_native_csr()

    def _cached(self) -> bool:
        """Whether the layer's cache still holds this call's pattern."""
        return self._cache is not None and self._cache.generation == self._generation

    def build_native_csr(self) -> tuple[Tensor, ...]:
        """:attr:`native_csr`, built (sorting the pattern)."""
        n = self.weight.shape[0]
        pattern = self.pattern.contiguous()
        nnz = int(torch.count_nonzero(pattern))
        ptr, row_ptr = torch.empty(2, n + 1, dtype=torch.int64)
        idx, cols = torch.empty(2, nnz, dtype=torch.int32)
        val, pos = self.weight.new_empty(nnz), torch.empty(nnz, dtype=torch.int64)
        weight = self.weight.contiguous()
        mask_ptr = pattern.data_ptr() if self._mask_given else None  # None: W's nonzeros, as the pattern says
        self._native("csr_transpose")(
            n, mask_ptr, weight.data_ptr(), *(t.data_ptr() for t in (ptr, idx, val, row_ptr, cols, pos)), _threads()
        )
        return ptr, idx, val, row_ptr, cols, pos

    def native_tiles(self, batch: int) -> _Tiles:
        """The CSR of Wᵀ in tiles of targets for the compiled backward product and weight gradient with ``batch``
        samples per step (built once per batch size)."""
        if batch not in self._tiles:
            n = self.weight.shape[0]
            size = min(256, max(8, NATIVE_TILE_BYTES // (batch * self.weight.element_size())))
            if self._cached():
                tptr, tidx, tval = self._cache.tiles(self, size)  # type: ignore[union-attr]
            else:
                tptr, tidx, tval, _ = self.build_native_tiles(size)
            scratch = self.weight.new_empty(2, batch * n)
            self._tiles[batch] = _Tiles(-(-n // size), size, tptr, tidx, tval, scratch[0], scratch[1])
        return self._tiles[batch]

    def build_native_tiles(
        self, size: int, *, keep_order: bool = False
    ) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """The CSR of Wᵀ in tiles of ``size`` targets, built: pointers, offsets, values and, with ``keep_order``,
        each tiled entry's position in :attr:`native_csr` (else None)."""
        n = self.weight.shape[0]
        ptr, idx, val = self.native_csr[:3]
        tptr = torch.empty(-(-n // size) * n + 1, dtype=torch.int64)
        tidx, tval = torch.empty_like(idx, dtype=torch.uint8), torch.empty_like(val)
        order = torch.empty_like(idx, dtype=torch.int64) if keep_order else None
        self._native("csr_tile")(
            n, size, ptr.data_ptr(), idx.data_ptr(), val.data_ptr(), tptr.data_ptr(), tidx.data_ptr(),
            tval.data_ptr(), order.data_ptr() if order is not None else None,
        )  # fmt: skip
        return tptr, tidx, tval, order

    def _masked(self, grad: Tensor) -> Tensor:
        """A dense weight gradient, zeroed outside the mask when one was given."""
        return grad.masked_fill_(~self.pattern, 0.0) if self._mask_given else grad

    def _native(self, name: str) -> Any:
        return self.native.function(name, self.weight.dtype)  # type: ignore[union-attr]

    def _native_takes(self, *tensors: Tensor) -> bool:
        """Whether the compiled kernels take these operands with W: loaded, contiguous CPU tensors of W's dtype."""
        return self.native is not None and tensors[0].dtype == self.weight.dtype and self.native.supports(*tensors)

    def _use_events(self, s: Tensor, rate: float, count: int | None = None, *, grad: bool = False) -> bool:
        """Whether the product with ``s`` (the weight gradient's when ``grad``) goes event-driven: as forced, else
        when at most ``rate`` of s is nonzero (``count``: the number of nonzeros of s when known)."""
        forced = self.events_grad if grad else self.events
        if forced is not None:
            return forced
        return (int(torch.count_nonzero(s)) if count is None else count) <= rate * s.numel()

    def event_limit(self, batch: int) -> int:
        """The most spikes in a step's (batch, N) s for which the compiled loop adds :math:`s W^\top` spike-driven
        (from the CSR of Wᵀ, or from the rows of dense Wᵀ); more, and the step takes the dense product: all when
        forced on, -1 when off, else the measured fraction (the same decision as :meth:`add_into`'s)."""
        size = batch * self.weight.shape[0]
        return {True: size, False: -1, None: math.floor(self.event_rate * size)}[self.events]

    def native_operands(self) -> tuple[int | None, ...]:
        """Addresses of the CSR of Wᵀ (row pointers, targets, values) and of dense Wᵀ for the compiled kernels
        (None where not used)."""
        if self.sparse:
            ptr, idx, val = self.native_csr[:3]
            return ptr.data_ptr(), idx.data_ptr(), val.data_ptr(), None
        return None, None, None, self.weight_t.data_ptr() if self.events is not False else None

    def add_into(self, out: Tensor, c: Tensor, s: Tensor, count: int | None = None) -> Tensor:
        if self._use_events(s, self.event_rate, count):
            if self._native_takes(out, c, s):
                batch, n = s.shape
                if self._native("event_matmul")(
                    batch, n, c.data_ptr(), s.data_ptr(), *self.native_operands(), out.data_ptr(), _threads()
                ):
                    raise MemoryError(f"no memory for the spike lists of a recurrent layer with N={n}")
                return out
            return torch.add(c, _to_csr(s) @ self.weight_t, out=out)
        if self.sparse:
            return torch.add(c, (self.csr @ s.t()).t(), out=out)
        if self._native_takes(out, c, s):
            batch, n = s.shape
            self._native("panel_matmul")(batch, n, n, s.data_ptr(), n, self.panels_t.data_ptr(), c.data_ptr(),
                                         out.data_ptr(), _threads())  # fmt: skip
            return out
        return torch.addmm(c, s, self.effective.t(), out=out)

    def add_transposed_(self, acc: Tensor, g: Tensor) -> Tensor:
        if self.sparse and self._native_takes(acc, g):
            batch, n = g.shape
            self._native("csr_matmul_t")(batch, n, g.data_ptr(), *self.native_tiles(batch).product(), acc.data_ptr(),
                                         _threads())  # fmt: skip
            return acc
        if self.sparse:
            return acc.add_((self.csr_t @ g.t()).t())
        if self._native_takes(acc, g):
            batch, n = g.shape
            self._native("panel_matmul")(batch, n, n, g.data_ptr(), n, self.panels.data_ptr(), None, acc.data_ptr(),
                                         _threads())  # fmt: skip
            return acc
        return acc.addmm_(g, self.effective)

    def scaled_add_transposed(self, out: Tensor, x: Tensor, beta: float, g: Tensor) -> Tensor:
        if self.sparse or self._native_takes(out, x, g):
            return self.add_transposed_(torch.mul(x, beta, out=out), g)
        return torch.addmm(x, g, self.effective, beta=beta, out=out)

    def weight_grad(self, g: Tensor, s: Tensor, count: int | None = None) -> Tensor:
        """:math:`\\sum_k g_k^\\top s_k` (see the class); ``count``: the number of nonzeros of s when known."""
        g2, s2 = g.reshape(-1, g.shape[-1]), s.reshape(-1, s.shape[-1])
        native = self._native_takes(g2, s2)
        if native and self.sparse:
            n = self.weight.shape[0]
            density = max(len(self.native_csr[1]), 1) / (n * n)
            events = self._use_events(s2, NATIVE_EVENT_WORK_GRAD / density, count, grad=True)
        elif native:
            events = self._use_events(s2, NATIVE_EVENT_RATE_GRAD, count, grad=True)
        else:
            events = self._use_events(s2, EVENT_RATE_GRAD, count, grad=True)
        if events and native and self.sparse:
            rows, n = s2.shape
            ptr, idx, _, row_ptr, cols, pos = self.native_csr
            out = _buffer(self.weight, n, n)
            structure = (t.data_ptr() for t in (ptr, idx, row_ptr, cols, pos))
            if self._native("csr_weight_grad")(rows, n, g2.data_ptr(), s2.data_ptr(), *structure, out.data_ptr(),
                                               _threads()):  # fmt: skip
                raise MemoryError(f"no memory for the weight gradient of a recurrent layer with N={n}")
            return out
        if events and native:
            rows, n = s2.shape
            out_t = _buffer(self.weight, n, n)  # (N_in, N_out): row i sums s[r, i] g[r, :]
            if self._native("event_linear_grad")(rows, n, n, s2.data_ptr(), g2.data_ptr(), out_t.data_ptr(),
                                                 _threads()):  # fmt: skip
                raise MemoryError(f"no memory for the weight gradient of a recurrent layer with N={n}")
            return self._masked(out_t.t())
        if events:
            k, j = s2.nonzero(as_tuple=True)
            shape_t = (s2.shape[1], s2.shape[0])  # indices from nonzero(): valid, no invariant check needed
            spikes_t = torch.sparse_coo_tensor(torch.stack((j, k)), s2[k, j], shape_t, check_invariants=False)
            grad_t = _to_csr(spikes_t) @ g2  # (N_in, N_out)
        elif self.sparse:
            grad_t = s2.t() @ g2
        else:
            return self._masked(g2.t() @ s2)
        if not self.sparse:
            return self._masked(grad_t.t())
        rows, cols = self.synapses
        return torch.zeros_like(self.weight).index_put_((rows, cols), grad_t[cols, rows])


@dataclass(frozen=True)
class _ALIFConsts:
    b0: float
    beta: float
    r_m: float
    dt: float
    surrogate: Surrogate
    adaptive: bool
    sparse: bool | None
    events: bool | None
    mask: Tensor | None
    grad: bool
    synapse_cache: SynapseCache | None


class _ALIFSequence(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        currents: Tensor,
        weight: Tensor | None,
        bias: Tensor | None,
        alpha: Tensor,
        rho: Tensor,
        u0: Tensor,
        s0: Tensor,
        eta0: Tensor,
        k: _ALIFConsts,
        keep_membranes: bool,
    ) -> tuple[Tensor, Tensor | None, Tensor | None, Tensor, Tensor]:
        """``bias`` (N,), with a weight only: added to every step's current as c_t + b (before the recurrent
        product, as when it is part of c_t), without a (T, B, N) pass; the backward sums its gradient per group of
        samples on the compiled path."""
        ctx.set_materialize_grads(False)
        steps, batch, n = currents.shape
        grad = k.grad
        full = grad or keep_membranes
        rec = Recurrence(weight, k.sparse, k.mask, k.events, k.synapse_cache) if weight is not None else None
        operands = [t for t in (currents, alpha, rho, weight, bias) if t is not None]
        native = _native_for(*operands) if rec is None or rec.native is not None else None
        if native is not None:
            currents, alpha, rho = currents.contiguous(), alpha.contiguous(), rho.contiguous()
            bias = bias.contiguous() if bias is not None else None
        spikes = _buffer(currents, steps + 1, batch, n)
        spikes[0] = s0
        mem = _buffer(currents, steps + 1 if full else 2, batch, n)
        mem[0] = u0
        inputs = currents
        if rec is not None:
            inputs = _buffer(currents, steps if grad else 1, batch, n)
        scale = (1.0 - alpha) * k.r_m
        traces = None
        if k.adaptive:
            traces = _buffer(currents, steps + 1 if full else 2, batch, n)
            traces[0] = eta0
        # c_t + b for all steps in one pass (one launch on a GPU) where every step's current is kept, except on a
        # compiled sparse layer, whose spike-driven steps add b where they copy c_t
        ready = bias is not None and rec is not None and inputs.shape[0] == steps
        ready = ready and not (native is not None and rec.sparse)  # type: ignore[union-attr]
        if ready:
            torch.add(currents, bias, out=inputs)
        if native is not None:
            count = _ALIFSequence._forward_native(native, rec, currents, bias, ready, inputs, spikes, mem, traces,
                                                  alpha, rho, scale, k)  # fmt: skip
        else:
            count = None
            _ALIFSequence._forward_torch(rec, currents, bias, ready, inputs, spikes, mem, traces, alpha, rho, scale,
                                         k)  # fmt: skip
        if rec is not None:
            rec.forward_done()
        last = steps % mem.shape[0]
        u_last = mem[last].clone()
        eta_last = traces[last].clone() if traces is not None else eta0.clone()
        if grad:
            ctx.save_for_backward(inputs, mem, traces, spikes, alpha, rho, eta0)
            ctx.rec, ctx.k, ctx.native, ctx.count = rec, k, native, count
        membranes = mem[1:] if full else None
        out_traces = traces[1:] if (traces is not None and full) else None
        return spikes[1:], membranes, out_traces, u_last, eta_last

    @staticmethod
    def _forward_torch(
        rec: Recurrence | None,
        currents: Tensor,
        bias: Tensor | None,
        ready: bool,
        inputs: Tensor,
        spikes: Tensor,
        mem: Tensor,
        traces: Tensor | None,
        alpha: Tensor,
        rho: Tensor,
        scale: Tensor,
        k: _ALIFConsts,
    ) -> None:
        """``ready``: ``inputs`` already holds c_t + b for every step."""
        s_t, i_t, c_t, u_t = spikes.unbind(0), inputs.unbind(0), currents.unbind(0), mem.unbind(0)
        n_u, n_i = len(u_t), len(i_t)
        if traces is not None:
            eta_t = traces.unbind(0)
            theta = torch.empty_like(u_t[0])
        for t in range(currents.shape[0]):
            if ready:
                c = i_t[t]
            elif bias is not None:
                c = torch.add(c_t[t], bias, out=i_t[t % n_i])
            else:
                c = c_t[t]
            i = rec.add_into(c if bias is not None else i_t[t % n_i], c, s_t[t]) if rec is not None else c
            u_prev, u = u_t[t % n_u], u_t[(t + 1) % n_u]
            torch.mul(u_prev, alpha, out=u).addcmul_(scale, i)
            if traces is not None:
                torch.lerp(s_t[t], eta_t[t % n_u], rho, out=eta_t[(t + 1) % n_u])
                torch.mul(eta_t[(t + 1) % n_u], k.beta, out=theta).add_(k.b0)
                u.addcmul_(theta, s_t[t], value=-k.dt)
                torch.gt(u, theta, out=s_t[t + 1])
            else:
                u.sub_(s_t[t], alpha=k.b0 * k.dt)
                torch.gt(u, k.b0, out=s_t[t + 1])

    @staticmethod
    def _forward_native(
        native: _native.Kernels,
        rec: Recurrence | None,
        currents: Tensor,
        bias: Tensor | None,
        ready: bool,
        inputs: Tensor,
        spikes: Tensor,
        mem: Tensor,
        traces: Tensor | None,
        alpha: Tensor,
        rho: Tensor,
        scale: Tensor,
        k: _ALIFConsts,
    ) -> int:
        """The forward loop on the compiled step (events and the neuron update in one pass per sample); returns
        the number of spikes in s_0 … s_{T-1} (for the weight gradient's event decision)."""
        steps, batch, n = currents.shape
        run = native.function("alif_forward_loop", currents.dtype)
        ops = _sequence_operands(spikes, mem, traces, currents, inputs)
        counts = torch.tensor([int(torch.count_nonzero(spikes[0])), 0], dtype=torch.int64)
        kind, limit, packed_t = 0, -1, None
        if rec is not None:
            kind, limit = (1 if rec.sparse else 2), rec.event_limit(batch)
            packed_t = rec.panels_t.data_ptr() if kind == 2 and rec.events is not True else None
        operands = rec.native_operands() if rec is not None else (None,) * 4
        # b goes into the compiled steps unless every c_t + b is ready in `inputs`
        in_kernel = bias.data_ptr() if bias is not None and not ready else None
        params = (alpha.data_ptr(), rho.data_ptr(), scale.data_ptr(), k.b0, k.beta, k.dt, int(k.adaptive), _threads())
        t, done = 0, 0
        while True:
            t = run(batch, n, t, steps, ops.data_ptr(), counts.data_ptr(), kind, limit, done, in_kernel, int(ready),
                    *operands, packed_t, *params)  # fmt: skip
            if t < 0:
                raise MemoryError(f"no memory for the spike lists of a recurrent layer with N={n}")
            if t == steps:
                return int(counts[1])
            # a sparse W with many spikes in s_{t-1}: PyTorch's CSR product writes I_t (ready is False here)
            row = inputs[t % inputs.shape[0]]
            c = torch.add(currents[t], bias, out=row) if bias is not None else currents[t]
            rec.add_into(row, c, spikes[t], int(counts[0]))  # type: ignore[union-attr]
            done = 1

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: Any,
        g_spikes: Tensor | None,
        g_membranes: Tensor | None,
        g_traces: Tensor | None,
        g_u_last: Tensor | None,
        g_eta_last: Tensor | None,
    ) -> tuple[Tensor | None, ...]:
        _check_once_differentiable()
        inputs, mem, traces, spikes, alpha, rho, eta0 = ctx.saved_tensors
        rec: Recurrence | None = ctx.rec
        k: _ALIFConsts = ctx.k
        steps = spikes.shape[0] - 1
        u_bar = _zeros_or_copy(g_u_last, mem[0])
        eta_bar = _zeros_or_copy(g_eta_last, mem[0])
        s_bar = torch.zeros_like(u_bar)  # what flows into s_t from step t+1
        native = ctx.native is not None
        rows = min(NATIVE_ACC_GROUPS, u_bar.shape[0]) if native else u_bar.shape[0]
        # α's and ρ's accumulators, and b's on the compiled path (the PyTorch path sums b's gradient from Ī)
        accs = u_bar.new_zeros(3 if native else 2, rows, u_bar.shape[1]).unbind(0)
        acc_alpha, acc_rho = accs[0], accs[1]
        i_bar = _buffer(mem, *mem[1:].shape)
        state = (u_bar, eta_bar, s_bar, acc_alpha, acc_rho, i_bar)
        outer = (g_spikes, g_membranes, g_traces)
        if native:
            _ALIFSequence._backward_native(ctx.native, rec, k, inputs, mem, traces, spikes, alpha, rho, outer, state,
                                           accs[2])  # fmt: skip
        else:
            _ALIFSequence._backward_torch(rec, k, inputs, mem, traces, spikes, alpha, rho, outer, state)
        g_alpha = acc_alpha.sum(0)
        if k.adaptive:
            g_rho = acc_rho.sum(0)
        elif g_eta_last is not None:  # η̄_t = g_eta_last and η_{t-1} = η_0 at every step
            g_rho = (g_eta_last * (steps * eta0 - spikes[:steps].sum(0))).sum(0)
        else:
            g_rho = torch.zeros_like(rho)
        g_weight = rec.weight_grad(i_bar, spikes[:steps], ctx.count) if rec is not None else None
        g_bias = None
        if ctx.needs_input_grad[2]:
            g_bias = accs[2].sum(0) if native else i_bar.sum((0, 1))
        return i_bar, g_weight, g_bias, g_alpha, g_rho, u_bar, s_bar, eta_bar, None, None

    @staticmethod
    def _backward_torch(
        rec: Recurrence | None,
        k: _ALIFConsts,
        inputs: Tensor,
        mem: Tensor,
        traces: Tensor | None,
        spikes: Tensor,
        alpha: Tensor,
        rho: Tensor,
        outer: tuple[Tensor | None, Tensor | None, Tensor | None],
        state: tuple[Tensor, ...],
    ) -> None:
        u_bar, eta_bar, s_bar, acc_alpha, acc_rho, i_bar = state
        g_spikes, g_membranes, g_traces = outer
        steps, batch, n = spikes.shape[0] - 1, spikes.shape[1], spikes.shape[2]
        scale = (1.0 - alpha) * k.r_m
        one_m_rho = 1.0 - rho
        v_bar = torch.empty_like(u_bar)  # s̄_t before the surrogate: v̄_t = v_bar ψ_t
        block = _block_steps(batch, n, mem.element_size(), steps)
        psi, work, theta = mem.new_empty(3, block, batch, n).unbind(0)  # ψ_t, scratch, θ_t
        d_alpha = mem.new_empty(block, batch, n)  # u_{t-1} − R I_t, the coefficient of ū_t in ᾱ
        if traces is not None:  # η_{t-1} − s_{t-1}, the coefficient of η̄_t in ρ̄
            d_rho = mem.new_empty(block, batch, n)
        s_t, ib_t = spikes.unbind(0), i_bar.unbind(0)
        gs_t = g_spikes.unbind(0) if g_spikes is not None else None
        gu_t = g_membranes.unbind(0) if g_membranes is not None else None
        ge_t = g_traces.unbind(0) if g_traces is not None else None
        for end in range(steps, 0, -block):
            start = max(0, end - block)
            size = end - start
            th = _surrogate_block(k, mem, traces, start, end, psi, work, theta)
            if th is not None:
                th_t = th.unbind(0)
                dr_t = torch.sub(traces[start:end], spikes[start:end], out=d_rho[:size]).unbind(0)  # type: ignore[index]
            p_t = psi[:size].unbind(0)
            da_t = torch.sub(mem[start:end], inputs[start:end], alpha=k.r_m, out=d_alpha[:size]).unbind(0)
            for t in range(end - 1, start - 1, -1):  # step t + 1 of the docstring; s_{t-1} there is s_t[t] here
                j = t - start
                pre = torch.add(s_bar, gs_t[t], out=v_bar) if gs_t is not None else s_bar
                u_bar.addcmul_(pre, p_t[j])
                if gu_t is not None:
                    u_bar.add_(gu_t[t])
                if traces is not None:
                    if ge_t is not None:
                        eta_bar.add_(ge_t[t])
                    eta_bar.addcmul_(pre, p_t[j], value=-k.beta).addcmul_(u_bar, s_t[t], value=-k.beta * k.dt)
                    torch.mul(eta_bar, one_m_rho, out=s_bar).addcmul_(u_bar, th_t[j], value=-k.dt)
                    acc_rho.addcmul_(eta_bar, dr_t[j])
                    eta_bar.mul_(rho)
                acc_alpha.addcmul_(u_bar, da_t[j])
                torch.mul(u_bar, scale, out=ib_t[t])
                if traces is not None:
                    if rec is not None:
                        rec.add_transposed_(s_bar, ib_t[t])
                elif rec is not None:
                    rec.scaled_add_transposed(s_bar, u_bar, -k.b0 * k.dt, ib_t[t])
                else:
                    torch.mul(u_bar, -k.b0 * k.dt, out=s_bar)
                u_bar.mul_(alpha)

    @staticmethod
    def _backward_native(
        native: _native.Kernels,
        rec: Recurrence | None,
        k: _ALIFConsts,
        inputs: Tensor,
        mem: Tensor,
        traces: Tensor | None,
        spikes: Tensor,
        alpha: Tensor,
        rho: Tensor,
        outer: tuple[Tensor | None, Tensor | None, Tensor | None],
        state: tuple[Tensor, ...],
        acc_bias: Tensor,
    ) -> None:
        """The backward loop on the compiled step: the whole per-step update in one pass, the surrogate derivative
        included for the surrogates of :mod:`hrsnn.surrogates` (others are evaluated with PyTorch in blocks of steps
        as on the PyTorch path), plus the product with a sparse W; b's gradient accumulates in ``acc_bias``."""
        u_bar, eta_bar, s_bar, acc_alpha, acc_rho, i_bar = state
        steps, batch, n = spikes.shape[0] - 1, spikes.shape[1], spikes.shape[2]
        scale = (1.0 - alpha) * k.r_m
        known = _native_surrogate(k.surrogate)
        block = steps if known is not None else _block_steps(batch, n, mem.element_size(), steps)
        blocks = mem.new_empty(3, block, batch, n).unbind(0) if known is None else None  # ψ_t, scratch, θ_t
        sg = torch.tensor(known[1] if known is not None else (0.0,) * 5, dtype=torch.float64)
        g_s, g_u, g_e = (_incoming(g) for g in outer)
        ops = _sequence_operands(mem, g_s, g_u, g_e, spikes, traces, inputs, i_bar)
        product = rec.native_tiles(batch).product() if rec is not None and rec.sparse else (0, 0, *(None,) * 5)
        packed = rec.panels.data_ptr() if rec is not None and not rec.sparse else None
        run = native.function("alif_backward_loop", mem.dtype)
        head = (int(k.adaptive), known[0] if known is not None else 0, sg.data_ptr())
        bars = tuple(x.data_ptr() for x in (u_bar, eta_bar, s_bar, acc_alpha, acc_rho, acc_bias))
        params = (alpha.data_ptr(), rho.data_ptr(), scale.data_ptr(), k.b0, k.beta, k.dt, k.r_m, packed, *product)
        for end in range(steps, 0, -block):
            start = max(0, end - block)
            psi = None
            if blocks is not None:
                _surrogate_block(k, mem, traces, start, end, *blocks)
                psi = blocks[0].data_ptr()
            if run(batch, n, start, end, ops.data_ptr(), *head, psi, *bars, *params, acc_alpha.shape[0], _threads()):
                raise MemoryError("no memory for the scratch rows of the compiled backward step")


def alif_sequence_tm(
    currents: Tensor,
    weight: Tensor | None,
    alpha: Tensor,
    rho: Tensor,
    u0: Tensor,
    s0: Tensor,
    eta0: Tensor,
    *,
    b0: float,
    beta: float,
    surrogate: Surrogate,
    r_m: float = 1.0,
    dt: float = 1.0,
    keep_membranes: bool = True,
    sparse: bool | None = None,
    mask: Tensor | None = None,
    events: bool | None = None,
    bias: Tensor | None = None,
    synapse_cache: SynapseCache | None = None,
) -> tuple[Tensor, Tensor | None, Tensor | None, Tensor, Tensor]:
    """Run the ALIF map (β = 0 and ρ = 1: LIF) over a time-major sequence in one autograd node.

    Args:
        currents: external currents c_t, (T, B, N), including every bias except ``bias``.
        weight: recurrent weight (N, N) in ``nn.Linear`` layout, or None for a feed-forward layer; with a ``mask``,
            its entries outside the mask are ignored (as if 0) and get a gradient of exactly 0.
        alpha, rho: decays (N,); u0, s0, eta0: initial state (B, N).
        keep_membranes: return membranes and traces even when no gradient is needed (recording).
        sparse: force the CSR (True) or dense (False) recurrent product; None chooses by density
            (:class:`Recurrence`).
        mask: the synapse pattern of ``weight`` (bool (N, N)); None means its nonzero entries.
        events: force (True) or forbid (False) the spike-driven products; None chooses by size and spike count.
        bias: a current (N,) added at every step, c_t + b (the recurrent bias), or None. Passing it here rather
            than in ``currents`` gives the same values and saves a pass over the (T, B, N) currents forward and one
            backward (its gradient is summed while the adjoints are computed).
        synapse_cache: the layer's :class:`SynapseCache` (used with a bool ``mask``): the compiled sparse kernels keep
            the pattern's structures there between calls.

    Returns:
        spikes (T, B, N); membranes (T, B, N) and the adaptation traces η (T, B, N), each None when not kept
        (traces are None for LIF, whose η stays η_0); the final u and η (B, N).
    """
    n = currents.shape[-1]
    if bias is not None and weight is None:  # a feed-forward layer computes no input buffer to add it into
        currents, bias = currents + bias, None
    adaptive = beta != 0.0 or not bool((rho == 1.0).all())
    grad = _needs_grad(currents, weight, bias, alpha, rho, u0, s0, eta0)
    consts = _ALIFConsts(b0, beta, r_m, dt, surrogate, adaptive, sparse, events, mask, grad, synapse_cache)
    return _ALIFSequence.apply(
        currents, weight, bias, alpha.expand(n), rho.expand(n), u0, s0, eta0, consts, keep_membranes
    )


def alif_thresholds(traces: Tensor | None, membranes: Tensor, b0: float, beta: float) -> Tensor:
    """θ_t = b0 + β η_t from the traces :func:`alif_sequence_tm` returns (None for LIF: θ = b0, shaped like
    ``membranes``)."""
    return b0 + beta * traces if traces is not None else torch.full_like(membranes, b0)


def alif_sequence(
    currents: Tensor,
    weight: Tensor | None,
    bias: Tensor | None,
    alpha: Tensor,
    rho: Tensor,
    u0: Tensor,
    s0: Tensor,
    eta0: Tensor,
    *,
    b0: float,
    beta: float,
    surrogate: Surrogate,
    r_m: float = 1.0,
    dt: float = 1.0,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Batch-first form of :func:`alif_sequence_tm` (module docstring).

    Args:
        currents: external currents c_t, (B, T, N).
        weight: effective recurrent weight (N, N) in ``nn.Linear`` layout, or None for a feed-forward layer.
        bias: recurrent bias (N,) or None (only used with a weight).
        alpha, rho: decays (N,); u0, s0, eta0: initial state (B, N).

    Returns:
        spikes, membranes and thresholds θ_t = b0 + β η_t, each (B, T, N), and the final u and η (B, N).
    """
    spikes, membranes, traces, u, eta = alif_sequence_tm(
        currents.transpose(0, 1).contiguous(), weight, alpha, rho, u0, s0, eta0,
        b0=b0, beta=beta, surrogate=surrogate, r_m=r_m, dt=dt, bias=bias if weight is not None else None,
    )  # fmt: skip
    if membranes is None:  # pragma: no cover - keep_membranes=True always returns them
        raise RuntimeError("membranes were not kept")
    thresholds = alif_thresholds(traces, membranes, b0, beta)
    return spikes.transpose(0, 1), membranes.transpose(0, 1), thresholds.transpose(0, 1), u, eta


class _LIFHardSequence(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        currents: Tensor,
        weight: Tensor | None,
        alpha: Tensor,
        u0: Tensor,
        s0: Tensor,
        threshold: float,
        surrogate: Surrogate,
        sparse: bool | None,
        mask: Tensor | None,
        events: bool | None,
        synapse_cache: SynapseCache | None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        ctx.set_materialize_grads(False)
        steps, batch, n = currents.shape
        rec = Recurrence(weight, sparse, mask, events, synapse_cache) if weight is not None else None
        spikes = _buffer(currents, steps + 1, batch, n)
        spikes[0] = s0
        mem = _buffer(currents, steps + 1, batch, n)
        mem[0] = u0
        pre = _buffer(currents, steps, batch, n)  # v_t, before the reset
        s_t, u_t, v_t, c_t = spikes.unbind(0), mem.unbind(0), pre.unbind(0), currents.unbind(0)
        for t in range(steps):
            if rec is not None:
                rec.add_into(v_t[t], c_t[t], s_t[t]).addcmul_(alpha, u_t[t])
            else:
                torch.mul(u_t[t], alpha, out=v_t[t]).add_(c_t[t])
            torch.gt(v_t[t], threshold, out=s_t[t + 1])
            torch.sub(v_t[t], torch.mul(v_t[t], s_t[t + 1], out=u_t[t + 1]), out=u_t[t + 1])  # (1 − s) v, s ∈ {0, 1}
        if rec is not None:
            rec.forward_done()
        if any(ctx.needs_input_grad):
            ctx.save_for_backward(pre, mem, spikes, alpha)
            ctx.rec, ctx.consts = rec, (threshold, surrogate)
        return spikes[1:], mem[1:], mem[steps].clone()

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: Any, g_spikes: Tensor | None, g_membranes: Tensor | None, g_u_last: Tensor | None
    ) -> tuple[Tensor | None, ...]:
        _check_once_differentiable()
        pre, mem, spikes, alpha = ctx.saved_tensors
        rec: Recurrence | None = ctx.rec
        threshold, surrogate = ctx.consts
        steps, batch, n = pre.shape
        u_bar = g_u_last.clone() if g_u_last is not None else torch.zeros_like(mem[0])
        s_bar = torch.zeros_like(u_bar)
        acc = torch.zeros_like(u_bar)
        v_bar = _buffer(mem, *mem[1:].shape)
        block = _block_steps(batch, n, mem.element_size(), steps)
        psi, work = mem.new_empty(block, batch, n), mem.new_empty(block, batch, n)
        u_t, s_t, v_t, vb_t = mem.unbind(0), spikes.unbind(0), pre.unbind(0), v_bar.unbind(0)
        gs_t = g_spikes.unbind(0) if g_spikes is not None else None
        gu_t = g_membranes.unbind(0) if g_membranes is not None else None
        for end in range(steps, 0, -block):
            start = max(0, end - block)
            v = torch.sub(pre[start:end], threshold, out=psi[: end - start])
            p_t = _surrogate_(surrogate, v, work[: end - start]).unbind(0)
            for t in range(end - 1, start - 1, -1):
                if gu_t is not None:
                    u_bar.add_(gu_t[t])
                if gs_t is not None:
                    s_bar.add_(gs_t[t])
                vb = vb_t[t]
                torch.sub(u_bar, torch.mul(u_bar, s_t[t + 1], out=vb), out=vb)  # ū (1 − s), s ∈ {0, 1}
                s_bar.addcmul_(u_bar, v_t[t], value=-1.0).mul_(p_t[t - start])  # (s̄ − ū v) ψ
                vb.add_(s_bar)
                acc.addcmul_(vb, u_t[t])
                s_bar.zero_()
                if rec is not None:
                    rec.add_transposed_(s_bar, vb)
                torch.mul(vb, alpha, out=u_bar)
        g_weight = rec.weight_grad(v_bar, spikes[:steps]) if rec is not None else None
        return v_bar, g_weight, acc.sum(0), u_bar, s_bar, None, None, None, None, None, None


def lif_hard_sequence_tm(
    currents: Tensor,
    weight: Tensor | None,
    alpha: Tensor,
    u0: Tensor,
    s0: Tensor,
    *,
    threshold: float,
    surrogate: Surrogate,
    sparse: bool | None = None,
    mask: Tensor | None = None,
    events: bool | None = None,
    synapse_cache: SynapseCache | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Run the hard-reset LIF over a time-major sequence (module docstring) in one autograd node.

    Args:
        currents: external currents including every bias, (T, B, N).
        weight: recurrent weight (N, N) or None (entries outside ``mask`` ignored); alpha: decays (N,); u0, s0:
            initial state (B, N).
        sparse, mask, events, synapse_cache: as in :func:`alif_sequence_tm`.

    Returns:
        spikes (T, B, N), membranes after the reset (T, B, N) and the final membrane (B, N).
    """
    n = currents.shape[-1]
    return _LIFHardSequence.apply(
        currents, weight, alpha.expand(n), u0, s0, threshold, surrogate, sparse, mask, events, synapse_cache
    )


class _IntegratorSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, currents: Tensor, alpha: Tensor, u0: Tensor) -> Tensor:  # type: ignore[override]
        ctx.set_materialize_grads(False)
        mem = _buffer(currents, currents.shape[0] + 1, *currents.shape[1:])
        mem[0] = u0
        one_m_alpha = 1.0 - alpha
        u_t, c_t = mem.unbind(0), currents.unbind(0)
        for t in range(currents.shape[0]):
            torch.mul(u_t[t], alpha, out=u_t[t + 1]).addcmul_(one_m_alpha, c_t[t])
        if any(ctx.needs_input_grad):
            ctx.save_for_backward(currents, mem, alpha)
        return mem[1:]

    @staticmethod
    def backward(ctx: Any, g_membranes: Tensor | None) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        _check_once_differentiable()
        currents, mem, alpha = ctx.saved_tensors
        if g_membranes is None:
            return None, None, None
        one_m_alpha = 1.0 - alpha
        u_bar = torch.zeros_like(mem[0])
        acc_u, acc_c = torch.zeros_like(u_bar), torch.zeros_like(u_bar)
        c_bar = _buffer(currents, *currents.shape)
        u_t, c_t, g_t, cb_t = mem.unbind(0), currents.unbind(0), g_membranes.unbind(0), c_bar.unbind(0)
        for t in range(currents.shape[0] - 1, -1, -1):
            u_bar.add_(g_t[t])
            acc_u.addcmul_(u_bar, u_t[t])
            acc_c.addcmul_(u_bar, c_t[t])
            torch.mul(u_bar, one_m_alpha, out=cb_t[t])
            u_bar.mul_(alpha)
        return c_bar, (acc_u - acc_c).sum(0), u_bar


def integrator_sequence_tm(currents: Tensor, alpha: Tensor, u0: Tensor) -> Tensor:
    """Leaky-integrator membranes u_t = α u_{t-1} + (1 − α) c_t (T, B, N) of time-major currents, from u0 (B, N)."""
    return _IntegratorSequence.apply(currents, alpha.expand(currents.shape[-1]), u0)
