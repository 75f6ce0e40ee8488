r"""Fused ALIF/LIF time loop: one autograd node per layer and sequence, with a hand-derived BPTT backward.

The reference path (:func:`hrsnn.neurons.alif_step` in a Python loop) records about a dozen autograd nodes per
step; on a CPU with small layers that bookkeeping, not arithmetic, dominates. This module runs the same map for a
whole sequence inside one :class:`torch.autograd.Function` and back-propagates through time by hand. It computes
exactly the same function and gradients as the reference (a parity test checks every input's gradient).

Forward, for t = 1..T (W is the effective recurrent weight W_rec ⊙ M, c_t the external current):

.. math::

    I_t &= c_t + W s_{t-1} + b \\
    \eta_t &= \rho\eta_{t-1} + (1-\rho)s_{t-1},\quad \theta_t = b_0 + \beta\eta_t \\
    u_t &= \alpha u_{t-1} + (1-\alpha)R I_t - \theta_t s_{t-1}dt,\quad s_t = H(u_t - \theta_t)

Backward, from t = T down to 1, with ψ_t the surrogate derivative at v_t = u_t − θ_t and bars for adjoints
(ū_t, η̄_t include what flows back from step t+1, s̄_t includes the external gradient of the spike output):

.. math::

    \bar v_t &= \bar s_t \psi_t,\quad \bar u_t \mathrel{+}= \bar v_t,\quad
    \bar\theta_t = -\bar v_t - \bar u_t s_{t-1} dt,\quad \bar\eta_t \mathrel{+}= \beta\bar\theta_t \\
    \bar I_t &= (1-\alpha)R\,\bar u_t,\quad
    \bar s_{t-1} \mathrel{+}= -\bar u_t\theta_t dt + (1-\rho)\bar\eta_t + W^\top \bar I_t \\
    \bar u_{t-1} &= \alpha\bar u_t,\quad \bar\eta_{t-1} = \rho\bar\eta_t

and, summed over batch and time, :math:`\bar\alpha = \sum \bar u_t(u_{t-1} - R I_t)`,
:math:`\bar\rho = \sum\bar\eta_t(\eta_{t-1} - s_{t-1})`, :math:`\bar W = \sum \bar I_t s_{t-1}^\top`,
:math:`\bar b = \sum \bar I_t`, :math:`\bar c_t = \bar I_t`.

Exactness. Both paths evaluate the same formulas but with different roundings: the kernel uses fused operations
(``addcmul``, ``lerp``, ``addmm`` with the bias folded into the current) where the reference takes separate
products and sums. In float64 they agree to about 1e-14 (the parity tests ask 1e-12), also over long sequences: on
the authors' ECG model and the 141 QTDB test sequences × 1301 steps not one spike differs. In float32 the membranes
differ by a few ulp (≈ 5e-8), which is harmless until a membrane lands within that distance of its threshold: then
one path spikes and the other does not, and from there on that sequence follows a different but equally valid
trajectory. Measured on the same ECG run in float32: 1 of 141 sequences diverges (from step 621), 19 of 182,031
per-step predictions differ, accuracy 0.85860 (kernel) vs 0.85864 (step loop). Use float64 where trajectories must
match bit for bit in the spike pattern.

The kernel is differentiable once: a backward pass with ``create_graph=True`` (needed for Hessian-vector products
or gradient penalties) raises :class:`~hrsnn.errors.ConfigError`; set ``layer.fused = False`` to use the step loop,
which supports higher derivatives.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from hrsnn.errors import ConfigError
from hrsnn.surrogates import Surrogate


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
        b0: float,
        beta: float,
        r_m: float,
        dt: float,
        surrogate: Surrogate,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        adaptive = beta != 0.0 or not bool((rho == 1.0).all())
        u, s, eta = u0, s0, eta0
        one_m_alpha_r = (1.0 - alpha) * r_m
        n_steps = currents.shape[1]
        us, ss, etas, total_inputs = [], [], [], []
        w_t = weight.t() if weight is not None else None
        for c in currents.unbind(1):
            if w_t is None:
                i_t = c
            elif bias is None:
                i_t = torch.addmm(c, s, w_t)
            else:
                i_t = torch.addmm(c + bias, s, w_t)
            u = torch.addcmul(u * alpha, one_m_alpha_r, i_t)
            if adaptive:
                eta = torch.lerp(s, eta, rho)
                theta = eta * beta + b0
                u = torch.addcmul(u, theta, s, value=-dt)
                s = (u > theta).to(u.dtype)
                etas.append(eta)
            else:
                u = u.sub_(s, alpha=b0 * dt)
                s = (u > b0).to(u.dtype)
            us.append(u)
            ss.append(s)
            total_inputs.append(i_t)
        spikes = torch.stack(ss, 1)
        membranes = torch.stack(us, 1)
        traces = torch.stack(etas, 1) if adaptive else eta0.unsqueeze(1).expand_as(membranes)
        ctx.save_for_backward(torch.stack(total_inputs, 1), membranes, traces, spikes, weight, alpha, rho, u0, s0, eta0)
        ctx.consts = (b0, beta, r_m, dt, surrogate, n_steps, weight is not None, bias is not None, adaptive)
        thresholds = b0 + beta * traces
        return spikes, membranes, thresholds, u, eta

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: Any, g_spikes: Tensor, g_membranes: Tensor, g_thresholds: Tensor, g_u_last: Tensor, g_eta_last: Tensor
    ) -> tuple[Tensor | None, ...]:
        if torch.is_grad_enabled():  # create_graph=True: this hand-written backward would record an incomplete graph
            raise ConfigError(
                "fused",
                True,
                "the fused ALIF kernel is once-differentiable (no double backward, e.g. Hessian-vector products); "
                "set layer.fused = False on every SpikingLayer (hidden and ALIF readout) to use the step loop",
            )
        inputs, membranes, traces, spikes, weight, alpha, rho, u0, s0, eta0 = ctx.saved_tensors
        b0, beta, r_m, dt, surrogate, n_steps, has_weight, has_bias, adaptive = ctx.consts
        thetas = b0 + beta * traces
        psi = surrogate.derivative(membranes - thetas)
        one_m_alpha_r = (1.0 - alpha) * r_m
        one_m_rho = 1.0 - rho
        u_bar = g_u_last.clone()
        eta_bar = g_eta_last.clone()
        s_bar_carry = torch.zeros_like(u0)
        ext_s = g_spikes.unbind(1)
        ext_u = g_membranes.unbind(1)
        ext_th = g_thresholds.unbind(1)
        psis = psi.unbind(1)
        thetas_t = thetas.unbind(1)
        s_prev = [s0, *spikes.unbind(1)[:-1]]
        u_bars: list[Tensor] = [u_bar] * n_steps
        eta_bars: list[Tensor] = [eta_bar] * n_steps
        i_bars: list[Tensor] = [u_bar] * n_steps
        w = weight if has_weight else None
        for t in range(n_steps - 1, -1, -1):
            v_bar = (ext_s[t] + s_bar_carry) * psis[t]
            u_bar = u_bar + ext_u[t] + v_bar
            if adaptive:
                theta_bar = ext_th[t] - v_bar - u_bar * s_prev[t] * dt
                eta_bar = eta_bar + beta * theta_bar
                s_bar_carry = torch.addcmul(one_m_rho * eta_bar, u_bar, thetas_t[t], value=-dt)
            else:
                s_bar_carry = u_bar * (-b0 * dt)
            i_bar = one_m_alpha_r * u_bar
            if w is not None:
                s_bar_carry = torch.addmm(s_bar_carry, i_bar, w)
            u_bars[t], eta_bars[t], i_bars[t] = u_bar, eta_bar, i_bar
            u_bar = alpha * u_bar
            if adaptive:
                eta_bar = rho * eta_bar
        u_bar_all = torch.stack(u_bars, 1)
        i_bar_all = torch.stack(i_bars, 1)
        # Σ_t ū_t (u_{t-1} − R I_t), with u_0 the initial membrane
        g_alpha = (u_bar_all[:, 0] * u0).sum(0) + (u_bar_all[:, 1:] * membranes[:, :-1]).sum((0, 1))
        g_alpha = g_alpha - r_m * (u_bar_all * inputs).sum((0, 1))
        if adaptive:
            eta_bar_all = torch.stack(eta_bars, 1)
            g_rho = (eta_bar_all[:, 0] * (eta0 - s0)).sum(0)
            g_rho = g_rho + (eta_bar_all[:, 1:] * (traces[:, :-1] - spikes[:, :-1])).sum((0, 1))
        else:  # η̄_t = g_eta_last and η_{t-1} = η_0 at every step
            g_rho = (g_eta_last * (n_steps * eta0 - s0 - spikes[:, :-1].sum(1))).sum(0)
        g_weight = g_bias = None
        if has_weight:
            g_weight = i_bar_all[:, 0].t() @ s0
            if n_steps > 1:
                flat_i = i_bar_all[:, 1:].reshape(-1, i_bar_all.shape[-1])
                g_weight = g_weight + flat_i.t() @ spikes[:, :-1].reshape(-1, spikes.shape[-1])
            g_bias = i_bar_all.sum((0, 1)) if has_bias else None
        return (
            i_bar_all,
            g_weight,
            g_bias,
            g_alpha.reshape(alpha.shape),
            g_rho.reshape(rho.shape),
            u_bar,
            s_bar_carry,
            eta_bar,
            None,
            None,
            None,
            None,
            None,
        )


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
    """Run the ALIF map (β = 0: LIF) over a sequence in one autograd node (module docstring).

    Args:
        currents: external currents c_t, (B, T, N).
        weight: effective recurrent weight (N, N) in ``nn.Linear`` layout, or None for a feed-forward layer.
        bias: recurrent bias (N,) or None (only used with a weight).
        alpha, rho: decays (N,); u0, s0, eta0: initial state (B, N).

    Returns:
        spikes, membranes and thresholds, each (B, T, N), and the final u and η (B, N).
    """
    n = currents.shape[-1]
    return _ALIFSequence.apply(
        currents,
        weight,
        bias,
        alpha.expand(n),
        rho.expand(n),
        u0,
        s0,
        eta0,
        b0,
        beta,
        r_m,
        dt,
        surrogate,
    )
