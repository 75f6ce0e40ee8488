"""The fused sequence kernel computes the reference step loop's values and gradients exactly."""

from __future__ import annotations

import pytest
import torch

from hrsnn.fused import alif_sequence
from hrsnn.neurons import ALIFState, alif_step
from hrsnn.surrogates import MultiGaussian, Triangle


def _reference(currents, weight, bias, alpha, rho, state, *, b0, beta, surrogate):
    spikes, membranes, thresholds = [], [], []
    for c in currents.unbind(1):
        if weight is not None:
            c = c + torch.nn.functional.linear(state.s, weight, bias)
        s, state = alif_step(c, state, alpha, rho, b0=b0, beta=beta, surrogate=surrogate)
        spikes.append(s)
        membranes.append(state.u)
        thresholds.append(b0 + beta * state.eta)
    return torch.stack(spikes, 1), torch.stack(membranes, 1), torch.stack(thresholds, 1), state.u, state.eta


def _inputs(recurrent: bool, real_s0: bool, seed: int = 0, rho_one: bool = False):
    g = torch.Generator().manual_seed(seed)
    b, t, n = 3, 25, 6
    dt = torch.float64
    currents = (torch.rand(b, t, n, generator=g, dtype=dt) * 0.6).requires_grad_()
    weight = (torch.randn(n, n, generator=g, dtype=dt) * 0.3).requires_grad_() if recurrent else None
    bias = (torch.randn(n, generator=g, dtype=dt) * 0.05).requires_grad_() if recurrent else None
    alpha = torch.rand(n, generator=g, dtype=dt).mul(0.5).add(0.4).requires_grad_()
    rho = torch.rand(n, generator=g, dtype=dt).mul(0.2).add(0.75)
    rho = (torch.ones_like(rho) if rho_one else rho).requires_grad_()
    u0 = (torch.rand(b, n, generator=g, dtype=dt) * 0.05).requires_grad_()
    s0 = (u0.detach().clone() if real_s0 else torch.zeros(b, n, dtype=dt)).requires_grad_()
    eta0 = torch.full((b, n), 0.02, dtype=dt).requires_grad_()
    return currents, weight, bias, alpha, rho, u0, s0, eta0


@pytest.mark.parametrize("recurrent", [True, False])
@pytest.mark.parametrize(("beta", "rho_one"), [(0.0, False), (0.0, True), (1.8, False)])
@pytest.mark.parametrize("real_s0", [False, True])
def test_fused_matches_reference_values_and_gradients(recurrent, beta, rho_one, real_s0):
    """Covers the adaptive path and the LIF path (β = 0, ρ = 1), which skips the η recursion."""
    sg = MultiGaussian()
    args = _inputs(recurrent, real_s0, rho_one=rho_one)
    currents, weight, bias, alpha, rho, u0, s0, eta0 = args
    ref = _reference(currents, weight, bias, alpha, rho, ALIFState(u0, s0, eta0), b0=0.02, beta=beta, surrogate=sg)
    fused = alif_sequence(*args, b0=0.02, beta=beta, surrogate=sg)
    assert ref[0].sum() > 5  # the test is only meaningful when neurons spike
    for r, f in zip(ref, fused, strict=True):
        torch.testing.assert_close(f, r, rtol=0, atol=1e-12)
    # a loss touching every output: spikes, membranes, thresholds and the final state
    g = torch.Generator().manual_seed(1)
    weights = [torch.randn(r.shape, generator=g, dtype=torch.float64) for r in ref]
    leaves = [a for a in args if a is not None]
    grads_ref = torch.autograd.grad(sum((w * r).sum() for w, r in zip(weights, ref, strict=True)), leaves)
    grads_fused = torch.autograd.grad(sum((w * f).sum() for w, f in zip(weights, fused, strict=True)), leaves)
    for gr, gf in zip(grads_ref, grads_fused, strict=True):
        torch.testing.assert_close(gf, gr, rtol=1e-9, atol=1e-10)
    assert any(float(gr.abs().sum()) > 0 for gr in grads_ref)


def test_fused_other_surrogate_gradients_differ_from_mg():
    """The kernel really uses the given surrogate: the triangle gives other gradients than MG."""
    args = _inputs(True, False)
    mg = torch.autograd.grad(alif_sequence(*args, b0=0.02, beta=1.8, surrogate=MultiGaussian())[1].sum(), args[0])[0]
    tri = torch.autograd.grad(alif_sequence(*args, b0=0.02, beta=1.8, surrogate=Triangle())[1].sum(), args[0])[0]
    assert not torch.allclose(mg, tri)
