"""The fused sequence kernel computes the reference step loop's values and gradients exactly."""

from __future__ import annotations

import pytest
import torch

from hrsnn.errors import ConfigError
from hrsnn.fused import alif_sequence
from hrsnn.network import RSNN, LayerConfig, NeuronConfig, RSNNConfig
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


def test_double_backward_through_fused_kernel_raises_and_step_loop_supports_it():
    """A Hessian-vector product needs create_graph=True: the fused kernel refuses it, naming the way out; the step
    loop computes it exactly. Exactness is checked against central differences of the gradient, with a triangle
    surrogate narrower than every |u − θ| met so that the surrogate terms vanish and the HVP is the true one (the
    unguarded fused kernel was off by 4.3 of 309 here)."""
    cfg = RSNNConfig(
        n_inputs=3,
        n_outputs=2,
        layers=(LayerConfig(size=8, neuron=NeuronConfig(b0=0.05)),),
        surrogate={"name": "triangle", "width": 1e-6},
    )
    model = RSNN(cfg, seed=1).double()
    layer = model.layers[0]
    x = torch.rand(2, 30, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3
    params = [layer.input.weight, layer.tau_m.theta, layer.tau_adp.theta]

    def grad(create_graph: bool) -> tuple[torch.Tensor, ...]:
        out = model(x, record=True)
        loss = out.membranes[0].pow(2).sum() + 10 * out.thresholds[0].pow(2).sum()
        return torch.autograd.grad(loss, params, create_graph=create_graph)

    with pytest.raises(ConfigError, match=r"fused=True.*layer\.fused = False"):
        grad(create_graph=True)
    layer.fused = False
    with torch.no_grad():
        out = model(x, record=True)
    assert out.layer_spikes[0].sum() > 20
    assert float((out.membranes[0] - out.thresholds[0]).abs().min()) > 1e-5
    g = grad(create_graph=True)
    direction = [torch.randn(p.shape, generator=torch.Generator().manual_seed(3), dtype=p.dtype) for p in params]
    hvp = torch.autograd.grad(sum((gi * d).sum() for gi, d in zip(g, direction, strict=True)), params)
    eps = 1e-6
    shifted = []
    for sign in (1.0, -1.0):
        with torch.no_grad():
            for p, d in zip(params, direction, strict=True):
                p.add_(sign * eps * d)
        shifted.append(grad(create_graph=False))
        with torch.no_grad():
            for p, d in zip(params, direction, strict=True):
                p.sub_(sign * eps * d)
    for h, plus, minus in zip(hvp, *shifted, strict=True):
        numeric = (plus - minus) / (2 * eps)
        assert float(numeric.abs().max()) > 1e-2
        torch.testing.assert_close(h, numeric, rtol=1e-6, atol=1e-6)


def test_float32_long_sequence_fused_and_step_loop_agree_to_rounding():
    """Over 1000 steps in float32 both paths agree to rounding (module docstring). A spike may flip only where the
    membrane sits within rounding distance of its threshold; until a sequence's first flip, membranes agree."""
    cfg = RSNNConfig(
        n_inputs=4,
        n_outputs=2,
        layers=(LayerConfig(size=48, neuron=NeuronConfig(b0=0.05, r_m=3.0)),),
    )
    model = RSNN(cfg, seed=0)
    layer = model.layers[0]
    x = (torch.rand(8, 1000, 4, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    with torch.no_grad():
        fused = model(x, record=True)
        layer.fused = False
        ref = model(x, record=True)
    s_f, s_r = fused.layer_spikes[0], ref.layer_spikes[0]
    assert s_r.mean() > 0.03  # a busy network: many threshold crossings
    flips = (s_f != s_r).any(-1)  # (B, T)
    n_steps = x.shape[1]
    for b in range(x.shape[0]):
        first = int(flips[b].nonzero()[0]) if flips[b].any() else n_steps
        torch.testing.assert_close(fused.membranes[0][b, :first], ref.membranes[0][b, :first], rtol=0, atol=1e-5)
        if first < n_steps:  # the flipped neuron sat at its threshold
            which = s_f[b, first] != s_r[b, first]
            gap = (ref.membranes[0][b, first] - ref.thresholds[0][b, first])[which]
            assert float(gap.abs().max()) < 1e-5
    assert int(flips.any(-1).sum()) <= 1
