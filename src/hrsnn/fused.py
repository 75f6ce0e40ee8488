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
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

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
        u, s, eta = u0, s0, eta0
        one_m_alpha_r = (1.0 - alpha) * r_m
        one_m_rho = 1.0 - rho
        n_steps = currents.shape[1]
        us, ss, etas, total_inputs = [], [], [], []
        for c in currents.unbind(1):
            if weight is None:
                i_t = c
            elif bias is None:
                i_t = c + s @ weight.t()
            else:
                i_t = c + torch.addmm(bias, s, weight.t())
            eta = rho * eta + one_m_rho * s
            theta = b0 + beta * eta
            u = alpha * u + one_m_alpha_r * i_t - theta * s * dt
            s = (u > theta).to(u.dtype)
            us.append(u)
            ss.append(s)
            etas.append(eta)
            total_inputs.append(i_t)
        spikes = torch.stack(ss, 1)
        membranes = torch.stack(us, 1)
        traces = torch.stack(etas, 1)
        ctx.save_for_backward(torch.stack(total_inputs, 1), membranes, traces, spikes, weight, alpha, rho, u0, s0, eta0)
        ctx.consts = (b0, beta, r_m, dt, surrogate, n_steps, weight is not None, bias is not None)
        thresholds = b0 + beta * traces
        return spikes, membranes, thresholds, u, eta

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: Any, g_spikes: Tensor, g_membranes: Tensor, g_thresholds: Tensor, g_u_last: Tensor, g_eta_last: Tensor
    ) -> tuple[Tensor | None, ...]:
        inputs, membranes, traces, spikes, weight, alpha, rho, u0, s0, eta0 = ctx.saved_tensors
        b0, beta, r_m, dt, surrogate, n_steps, has_weight, has_bias = ctx.consts
        thetas = b0 + beta * traces
        psi = surrogate.derivative(membranes - thetas)
        s_prev_all = torch.cat([s0.unsqueeze(1), spikes[:, :-1]], 1)
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
        s_prev = s_prev_all.unbind(1)
        u_bars: list[Tensor] = [u_bar] * n_steps
        eta_bars: list[Tensor] = [eta_bar] * n_steps
        i_bars: list[Tensor] = [u_bar] * n_steps
        w_t = weight if has_weight else None
        for t in range(n_steps - 1, -1, -1):
            v_bar = (ext_s[t] + s_bar_carry) * psis[t]
            u_bar = u_bar + ext_u[t] + v_bar
            theta_bar = ext_th[t] - v_bar - u_bar * s_prev[t] * dt
            eta_bar = eta_bar + beta * theta_bar
            i_bar = one_m_alpha_r * u_bar
            s_bar_carry = one_m_rho * eta_bar - u_bar * thetas_t[t] * dt
            if w_t is not None:
                s_bar_carry = torch.addmm(s_bar_carry, i_bar, w_t)
            u_bars[t], eta_bars[t], i_bars[t] = u_bar, eta_bar, i_bar
            u_bar = alpha * u_bar
            eta_bar = rho * eta_bar
        u_bar_all = torch.stack(u_bars, 1)
        eta_bar_all = torch.stack(eta_bars, 1)
        i_bar_all = torch.stack(i_bars, 1)
        u_prev_all = torch.cat([u0.unsqueeze(1), membranes[:, :-1]], 1)
        eta_prev_all = torch.cat([eta0.unsqueeze(1), traces[:, :-1]], 1)
        g_alpha = (u_bar_all * (u_prev_all - r_m * inputs)).sum((0, 1))
        g_rho = (eta_bar_all * (eta_prev_all - s_prev_all)).sum((0, 1))
        g_weight = g_bias = None
        if has_weight:
            flat_i = i_bar_all.reshape(-1, i_bar_all.shape[-1])
            g_weight = flat_i.t() @ s_prev_all.reshape(-1, s_prev_all.shape[-1])
            g_bias = flat_i.sum(0) if has_bias else None
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
