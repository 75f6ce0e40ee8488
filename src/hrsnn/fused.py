r"""Fused sequence kernels: a whole layer over a whole sequence as one autograd node with a hand-derived backward.

The reference path (:func:`hrsnn.neurons.alif_step` in a Python loop) records about a dozen autograd nodes per
step and allocates every intermediate. These kernels run the same maps for a whole sequence inside one
:class:`torch.autograd.Function`, on **time-major** buffers ``(T, B, N)`` allocated once per call, with in-place
per-step operations and no stacking; the backward pass runs BPTT by hand, evaluating the surrogate derivative in
blocks of time steps (a few MiB, cache-sized) with the surrogate's in-place form (``derivative_``). Nothing is
materialised that is not needed: membranes are kept only when recorded or differentiated, gradients of outputs
nobody used arrive as None instead of zero-filled tensors, and the weight gradient is one matrix product over all
steps. Three kernels:

**ALIF / LIF** (:func:`alif_sequence_tm`; LIF is β = 0, ρ = 1). Forward, for t = 1..T, with W the effective
recurrent weight W_rec ⊙ M and c_t the external current (the input projection plus both biases):

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
run on CSR copies of W and Wᵀ built once per call, and the weight gradient is kept only on the mask's entries; where
this pays is :data:`SPARSE_DENSITY` and :data:`SPARSE_MIN_SIZE` (measured: 1.4× at N = 4096 and 10 % density,
nothing below 1024 neurons). Where few neurons fire (layers of N ≥ 2048), the forward recurrent product and the
weight gradient are event-driven: a CSR matrix of the spikes times Wᵀ, whose cost grows with the spike count
(:data:`EVENT_RATE`, :data:`EVENT_RATE_GRAD`). The backward product Ī W stays dense in the spikes (the surrogate
derivative is nonzero almost everywhere) and sparse only in W.

Exactness. The kernels evaluate the reference formulas with different roundings (fused ``addcmul``/``lerp``/
``addmm``, the bias folded into the current, the multi-Gaussian's side lobes summed in closed form). In float64
they agree with the step loop to about 1e-14 with identical spikes (the parity tests ask 1e-12 and 1e-10 for
gradients); on the authors' ECG model and the 141 QTDB test sequences × 1301 steps not one spike differs. In float32
the membranes differ by a few ulp (≈ 5e-8), which is harmless until a membrane lands within that distance of its
threshold: then one path spikes and the other does not, and from there on that sequence follows a different but
equally valid trajectory (on the same ECG run in float32: 1 of 141 sequences diverges, from step 621; 19 of 182,031
per-step predictions differ; accuracy 0.85860 vs 0.85864). Use float64 where spike patterns must match bit for bit.

The kernels are differentiable once: a backward pass with ``create_graph=True`` (Hessian-vector products, gradient
penalties) raises :class:`~hrsnn.errors.ConfigError`; set ``layer.fused = False`` to use the step loop.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from hrsnn.errors import ConfigError
from hrsnn.surrogates import Surrogate

__all__ = [
    "EVENT_RATE",
    "EVENT_RATE_GRAD",
    "SPARSE_DENSITY",
    "SPARSE_MIN_SIZE",
    "Recurrence",
    "alif_sequence",
    "alif_sequence_tm",
    "alif_thresholds",
    "integrator_sequence_tm",
    "lif_hard_sequence_tm",
]

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


def _to_csr(x: Tensor) -> Tensor:
    """``x.to_sparse_csr()`` without PyTorch's "sparse CSR support is in beta" warning (the ops used here are
    tested)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return x.to_sparse_csr()


def _surrogate_(surrogate: Surrogate, v: Tensor, work: Tensor) -> Tensor:
    """Overwrite v with the surrogate derivative at v (the in-place form when the surrogate has one)."""
    inplace = getattr(surrogate, "derivative_", None)
    if inplace is None:
        return v.copy_(surrogate.derivative(v))
    return inplace(v, work)


class Recurrence:
    r"""The recurrent product of one call: dense W or CSR copies of W and Wᵀ (pruned W), spike-driven where few fire.

    ``add_into(out, c, s)`` writes :math:`c + s W^\top` (rows of s are samples), ``add_transposed_(acc, g)`` adds
    :math:`g W`, ``scaled_add_transposed(out, x, beta, g)`` writes :math:`\beta x + g W`, and ``weight_grad(g, s)``
    returns :math:`\sum_k g_k^\top s_k` over the flattened rows. On the
    CSR path that gradient is computed only on the synapse pattern (``mask``, or W's nonzeros when no mask is given)
    and is exactly 0 elsewhere; otherwise it is the full product (the caller's mask zeroes it).

    Event-driven products: where a step's spikes are few, :math:`s W^\top` runs as a sparse (CSR) spike matrix times
    Wᵀ, whose cost grows with the number of spikes instead of B·N; likewise the weight gradient, from the spikes of
    all steps at once. Exact up to summation order.

    Args:
        weight: effective recurrent weight (N, N), zero outside the pattern.
        sparse: True or False forces the CSR weight path; None takes it on the CPU for layers of at least
            :data:`SPARSE_MIN_SIZE` neurons whose pattern's density is at most :data:`SPARSE_DENSITY`.
        mask: the synapse pattern (N, N), bool; None means W's nonzero entries.
        events: True uses the spike-driven products always, False never; None on the CPU for layers of at least
            :data:`SPARSE_MIN_SIZE` neurons, per step when at most :data:`EVENT_RATE` of the entries of s are
            nonzero, and for the weight gradient when at most :data:`EVENT_RATE_GRAD` of all spikes are.
    """

    def __init__(
        self, weight: Tensor, sparse: bool | None, mask: Tensor | None = None, events: bool | None = None
    ) -> None:
        n = weight.shape[0]
        pattern = weight != 0 if mask is None else mask
        large_cpu = weight.device.type == "cpu" and n >= SPARSE_MIN_SIZE
        if sparse is None:
            sparse = large_cpu and int(torch.count_nonzero(pattern)) <= SPARSE_DENSITY * n * n
        self.sparse = sparse
        self.events = events if events is not None or large_cpu else False  # None: decided by the spike count
        self.weight = weight
        if self.events is not False:
            self.weight_t = weight.t().contiguous()
        if sparse:
            self.rows, self.cols = pattern.nonzero(as_tuple=True)

    @functools.cached_property
    def csr(self) -> Tensor:
        """W in CSR (built when first needed: a forward pass whose steps all go event-driven never needs it)."""
        return _to_csr(self.weight)

    @functools.cached_property
    def csr_t(self) -> Tensor:
        """Wᵀ in CSR (for the backward product)."""
        return _to_csr(self.weight.t().contiguous())

    def _use_events(self, s: Tensor, rate: float) -> bool:
        """Whether the product with ``s`` goes event-driven: as forced, else when at most ``rate`` of s is nonzero."""
        if self.events is not None:
            return self.events
        return int(torch.count_nonzero(s)) <= rate * s.numel()

    def add_into(self, out: Tensor, c: Tensor, s: Tensor) -> Tensor:
        if self._use_events(s, EVENT_RATE):
            return torch.add(c, _to_csr(s) @ self.weight_t, out=out)
        if self.sparse:
            return torch.add(c, (self.csr @ s.t()).t(), out=out)
        return torch.addmm(c, s, self.weight.t(), out=out)

    def add_transposed_(self, acc: Tensor, g: Tensor) -> Tensor:
        if self.sparse:
            return acc.add_((self.csr_t @ g.t()).t())
        return acc.addmm_(g, self.weight)

    def scaled_add_transposed(self, out: Tensor, x: Tensor, beta: float, g: Tensor) -> Tensor:
        if self.sparse:
            return self.add_transposed_(torch.mul(x, beta, out=out), g)
        return torch.addmm(x, g, self.weight, beta=beta, out=out)

    def weight_grad(self, g: Tensor, s: Tensor) -> Tensor:
        g2, s2 = g.reshape(-1, g.shape[-1]), s.reshape(-1, s.shape[-1])
        if self._use_events(s2, EVENT_RATE_GRAD):
            k, j = s2.nonzero(as_tuple=True)
            shape_t = (s2.shape[1], s2.shape[0])  # indices from nonzero(): valid, no invariant check needed
            spikes_t = torch.sparse_coo_tensor(torch.stack((j, k)), s2[k, j], shape_t, check_invariants=False)
            grad_t = _to_csr(spikes_t) @ g2  # (N_in, N_out)
        elif self.sparse:
            grad_t = s2.t() @ g2
        else:
            return g2.t() @ s2
        if not self.sparse:
            return grad_t.t()
        return torch.zeros_like(self.weight).index_put_((self.rows, self.cols), grad_t[self.cols, self.rows])


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


class _ALIFSequence(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        currents: Tensor,
        weight: Tensor | None,
        alpha: Tensor,
        rho: Tensor,
        u0: Tensor,
        s0: Tensor,
        eta0: Tensor,
        k: _ALIFConsts,
        keep_membranes: bool,
    ) -> tuple[Tensor, Tensor | None, Tensor | None, Tensor, Tensor]:
        ctx.set_materialize_grads(False)
        steps, batch, n = currents.shape
        grad = k.grad
        full = grad or keep_membranes
        rec = Recurrence(weight, k.sparse, k.mask, k.events) if weight is not None else None
        spikes = currents.new_empty(steps + 1, batch, n)
        spikes[0] = s0
        mem = currents.new_empty(steps + 1 if full else 2, batch, n)
        mem[0] = u0
        inputs = currents
        if rec is not None:
            inputs = currents.new_empty(steps if grad else 1, batch, n)
        scale = (1.0 - alpha) * k.r_m
        s_t, i_t, c_t = spikes.unbind(0), inputs.unbind(0), currents.unbind(0)
        u_t = mem.unbind(0)
        n_u, n_i = len(u_t), len(i_t)
        if k.adaptive:
            traces = currents.new_empty(steps + 1 if full else 2, batch, n)
            traces[0] = eta0
            eta_t = traces.unbind(0)
            theta = torch.empty_like(u0)
        for t in range(steps):
            i = rec.add_into(i_t[t % n_i], c_t[t], s_t[t]) if rec is not None else c_t[t]
            u_prev, u = u_t[t % n_u], u_t[(t + 1) % n_u]
            torch.mul(u_prev, alpha, out=u).addcmul_(scale, i)
            if k.adaptive:
                torch.lerp(s_t[t], eta_t[t % n_u], rho, out=eta_t[(t + 1) % n_u])
                torch.mul(eta_t[(t + 1) % n_u], k.beta, out=theta).add_(k.b0)
                u.addcmul_(theta, s_t[t], value=-k.dt)
                torch.gt(u, theta, out=s_t[t + 1])
            else:
                u.sub_(s_t[t], alpha=k.b0 * k.dt)
                torch.gt(u, k.b0, out=s_t[t + 1])
        last = steps % n_u
        u_last = mem[last].clone()
        eta_last = traces[last].clone() if k.adaptive else eta0.clone()
        if grad:
            ctx.save_for_backward(inputs, mem, traces if k.adaptive else None, spikes, alpha, rho, eta0)
            ctx.rec, ctx.k = rec, k
        membranes = mem[1:] if full else None
        out_traces = traces[1:] if (k.adaptive and full) else None
        return spikes[1:], membranes, out_traces, u_last, eta_last

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
        steps, batch, n = spikes.shape[0] - 1, spikes.shape[1], spikes.shape[2]
        scale = (1.0 - alpha) * k.r_m
        one_m_rho = 1.0 - rho
        u_bar = g_u_last.clone() if g_u_last is not None else torch.zeros_like(mem[0])
        eta_bar = g_eta_last.clone() if g_eta_last is not None else torch.zeros_like(mem[0])
        s_bar = torch.zeros_like(u_bar)  # what flows into s_t from step t+1
        v_bar = torch.empty_like(u_bar)  # s̄_t before the surrogate: v̄_t = v_bar ψ_t
        acc_alpha, acc_rho = torch.zeros_like(u_bar), torch.zeros_like(u_bar)
        i_bar = torch.empty_like(mem[1:])
        block = _block_steps(batch, n, mem.element_size(), steps)
        psi, work = mem.new_empty(block, batch, n), mem.new_empty(block, batch, n)
        d_alpha = mem.new_empty(block, batch, n)  # u_{t-1} − R I_t, the coefficient of ū_t in ᾱ
        if k.adaptive:  # θ_t and η_{t-1} − s_{t-1}, the coefficient of η̄_t in ρ̄
            theta, d_rho = mem.new_empty(block, batch, n), mem.new_empty(block, batch, n)
        s_t, ib_t = spikes.unbind(0), i_bar.unbind(0)
        gs_t = g_spikes.unbind(0) if g_spikes is not None else None
        gu_t = g_membranes.unbind(0) if g_membranes is not None else None
        ge_t = g_traces.unbind(0) if g_traces is not None else None
        for end in range(steps, 0, -block):
            start = max(0, end - block)
            size = end - start
            v = psi[:size]
            if k.adaptive:
                th = torch.mul(traces[start + 1 : end + 1], k.beta, out=theta[:size]).add_(k.b0)
                torch.sub(mem[start + 1 : end + 1], th, out=v)
                th_t = th.unbind(0)
                dr_t = torch.sub(traces[start:end], spikes[start:end], out=d_rho[:size]).unbind(0)
            else:
                torch.sub(mem[start + 1 : end + 1], k.b0, out=v)
            _surrogate_(k.surrogate, v, work[:size])
            p_t = v.unbind(0)
            da_t = torch.sub(mem[start:end], inputs[start:end], alpha=k.r_m, out=d_alpha[:size]).unbind(0)
            for t in range(end - 1, start - 1, -1):  # step t + 1 of the docstring; s_{t-1} there is s_t[t] here
                j = t - start
                pre = torch.add(s_bar, gs_t[t], out=v_bar) if gs_t is not None else s_bar
                u_bar.addcmul_(pre, p_t[j])
                if gu_t is not None:
                    u_bar.add_(gu_t[t])
                if k.adaptive:
                    if ge_t is not None:
                        eta_bar.add_(ge_t[t])
                    eta_bar.addcmul_(pre, p_t[j], value=-k.beta).addcmul_(u_bar, s_t[t], value=-k.beta * k.dt)
                    torch.mul(eta_bar, one_m_rho, out=s_bar).addcmul_(u_bar, th_t[j], value=-k.dt)
                    acc_rho.addcmul_(eta_bar, dr_t[j])
                    eta_bar.mul_(rho)
                acc_alpha.addcmul_(u_bar, da_t[j])
                torch.mul(u_bar, scale, out=ib_t[t])
                if k.adaptive:
                    if rec is not None:
                        rec.add_transposed_(s_bar, ib_t[t])
                elif rec is not None:
                    rec.scaled_add_transposed(s_bar, u_bar, -k.b0 * k.dt, ib_t[t])
                else:
                    torch.mul(u_bar, -k.b0 * k.dt, out=s_bar)
                u_bar.mul_(alpha)
        g_alpha = acc_alpha.sum(0)
        if k.adaptive:
            g_rho = acc_rho.sum(0)
        elif g_eta_last is not None:  # η̄_t = g_eta_last and η_{t-1} = η_0 at every step
            g_rho = (g_eta_last * (steps * eta0 - spikes[:steps].sum(0))).sum(0)
        else:
            g_rho = torch.zeros_like(rho)
        g_weight = rec.weight_grad(i_bar, spikes[:steps]) if rec is not None else None
        return i_bar, g_weight, g_alpha, g_rho, u_bar, s_bar, eta_bar, None, None


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
) -> tuple[Tensor, Tensor | None, Tensor | None, Tensor, Tensor]:
    """Run the ALIF map (β = 0 and ρ = 1: LIF) over a time-major sequence in one autograd node.

    Args:
        currents: external currents c_t including every bias, (T, B, N).
        weight: effective recurrent weight (N, N) in ``nn.Linear`` layout, or None for a feed-forward layer.
        alpha, rho: decays (N,); u0, s0, eta0: initial state (B, N).
        keep_membranes: return membranes and traces even when no gradient is needed (recording).
        sparse: force the CSR (True) or dense (False) recurrent product; None chooses by density
            (:class:`Recurrence`).
        mask: the synapse pattern of ``weight`` (bool (N, N)); None means its nonzero entries.
        events: force (True) or forbid (False) the spike-driven products; None chooses by size and spike count.

    Returns:
        spikes (T, B, N); membranes (T, B, N) and the adaptation traces η (T, B, N), each None when not kept
        (traces are None for LIF, whose η stays η_0); the final u and η (B, N).
    """
    n = currents.shape[-1]
    adaptive = beta != 0.0 or not bool((rho == 1.0).all())
    grad = _needs_grad(currents, weight, alpha, rho, u0, s0, eta0)
    consts = _ALIFConsts(b0, beta, r_m, dt, surrogate, adaptive, sparse, events, mask, grad)
    return _ALIFSequence.apply(currents, weight, alpha.expand(n), rho.expand(n), u0, s0, eta0, consts, keep_membranes)


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
    c = currents if bias is None or weight is None else currents + bias
    spikes, membranes, traces, u, eta = alif_sequence_tm(
        c.transpose(0, 1).contiguous(), weight, alpha, rho, u0, s0, eta0,
        b0=b0, beta=beta, surrogate=surrogate, r_m=r_m, dt=dt,
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
    ) -> tuple[Tensor, Tensor, Tensor]:
        ctx.set_materialize_grads(False)
        steps, batch, n = currents.shape
        rec = Recurrence(weight, sparse, mask, events) if weight is not None else None
        spikes = currents.new_empty(steps + 1, batch, n)
        spikes[0] = s0
        mem = currents.new_empty(steps + 1, batch, n)
        mem[0] = u0
        pre = currents.new_empty(steps, batch, n)  # v_t, before the reset
        s_t, u_t, v_t, c_t = spikes.unbind(0), mem.unbind(0), pre.unbind(0), currents.unbind(0)
        for t in range(steps):
            if rec is not None:
                rec.add_into(v_t[t], c_t[t], s_t[t]).addcmul_(alpha, u_t[t])
            else:
                torch.mul(u_t[t], alpha, out=v_t[t]).add_(c_t[t])
            torch.gt(v_t[t], threshold, out=s_t[t + 1])
            torch.sub(v_t[t], torch.mul(v_t[t], s_t[t + 1], out=u_t[t + 1]), out=u_t[t + 1])  # (1 − s) v, s ∈ {0, 1}
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
        v_bar = torch.empty_like(mem[1:])
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
        return v_bar, g_weight, acc.sum(0), u_bar, s_bar, None, None, None, None, None


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
) -> tuple[Tensor, Tensor, Tensor]:
    """Run the hard-reset LIF over a time-major sequence (module docstring) in one autograd node.

    Args:
        currents: external currents including every bias, (T, B, N).
        weight: effective recurrent weight (N, N) or None; alpha: decays (N,); u0, s0: initial state (B, N).
        sparse, mask, events: as in :func:`alif_sequence_tm`.

    Returns:
        spikes (T, B, N), membranes after the reset (T, B, N) and the final membrane (B, N).
    """
    n = currents.shape[-1]
    return _LIFHardSequence.apply(
        currents, weight, alpha.expand(n), u0, s0, threshold, surrogate, sparse, mask, events
    )


class _IntegratorSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, currents: Tensor, alpha: Tensor, u0: Tensor) -> Tensor:  # type: ignore[override]
        ctx.set_materialize_grads(False)
        mem = currents.new_empty(currents.shape[0] + 1, *currents.shape[1:])
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
        c_bar = torch.empty_like(currents)
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
