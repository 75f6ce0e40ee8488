"""The fused sequence kernel computes the reference step loop's values and gradients exactly."""

from __future__ import annotations

import pytest
import torch

from hrsnn import _native
from hrsnn import fused as fused_module
from hrsnn.errors import ConfigError
from hrsnn.fused import Recurrence, alif_sequence, alif_sequence_tm, integrator_sequence_tm, lif_hard_sequence_tm
from hrsnn.network import RSNN, LayerConfig, NeuronConfig, RSNNConfig
from hrsnn.neurons import ALIFState, alif_step, leaky_readout_step, lif_hard_reset_step
from hrsnn.surrogates import SURROGATES, MultiGaussian, Triangle, make_surrogate


@pytest.fixture(params=["native", "pytorch"], autouse=True)
def kernel_path(request, monkeypatch):
    """Every test of this module runs on the compiled kernels and on the PyTorch fallback (HRSNN_NATIVE=0)."""
    if request.param == "pytorch":
        monkeypatch.setenv(_native.ENV_SWITCH, "0")
    elif _native.kernels() is None:
        pytest.skip("compiled kernels unavailable (no working C compiler)")
    return request.param


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


def _masked_weight(n: int, density: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(n, n, generator=g, dtype=torch.float64) < density
    return (torch.randn(n, n, generator=g, dtype=torch.float64) * 0.4 * mask).requires_grad_()


def _loss_weights(outputs, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(o.shape, generator=g, dtype=torch.float64) for o in outputs]


@pytest.mark.parametrize("surrogate", sorted(SURROGATES))
@pytest.mark.parametrize("beta", [0.0, 1.8])
@pytest.mark.parametrize("sparse", [False, True])
def test_time_major_kernel_matches_step_loop_for_every_surrogate(surrogate, beta, sparse):
    """Random heterogeneous τ, a 30 %-dense mask, ALIF and LIF, each surrogate, dense and CSR recurrence: float64
    spikes identical to the step loop, values to 1e-12, every gradient to 1e-10 relative."""
    sg = make_surrogate(surrogate)
    currents, _, bias, alpha, rho, u0, s0, eta0 = _inputs(True, True, seed=4, rho_one=beta == 0.0)
    n = currents.shape[-1]
    weight = _masked_weight(n, 0.3, seed=5)
    ref = _reference(currents, weight, bias, alpha, rho, ALIFState(u0, s0, eta0), b0=0.02, beta=beta, surrogate=sg)
    c_tm = (currents + bias).transpose(0, 1)
    pattern = weight.detach() != 0
    out = alif_sequence_tm(
        c_tm, weight, alpha, rho, u0, s0, eta0, b0=0.02, beta=beta, surrogate=sg, sparse=sparse, mask=pattern
    )
    spikes, membranes, traces, u, eta = out
    assert ref[0].sum() > 10 and not bool(ref[0].all())
    assert torch.equal(spikes.transpose(0, 1), ref[0])
    torch.testing.assert_close(membranes.transpose(0, 1), ref[1], rtol=0, atol=1e-12)
    torch.testing.assert_close(u, ref[3], rtol=0, atol=1e-12)
    thresholds = 0.02 + beta * traces.transpose(0, 1) if traces is not None else torch.full_like(ref[2], 0.02)
    torch.testing.assert_close(thresholds, ref[2], rtol=0, atol=1e-12)
    w = _loss_weights(ref)
    leaves = [currents, weight, bias, alpha, rho, u0, s0, eta0]
    mine = (spikes.transpose(0, 1), membranes.transpose(0, 1), thresholds, u, eta)
    g_ref = torch.autograd.grad(sum((a * r).sum() for a, r in zip(w, ref, strict=True)), leaves, allow_unused=True)
    g_new = torch.autograd.grad(sum((a * r).sum() for a, r in zip(w, mine, strict=True)), leaves, allow_unused=True)
    for name, gr, gn in zip(["c", "W", "b", "alpha", "rho", "u0", "s0", "eta0"], g_ref, g_new, strict=True):
        if name == "W":  # the CSR path differentiates the synapses only; a network's mask zeroes the rest anyway
            assert not sparse or float(gn[~pattern].abs().max()) == 0.0
            gr, gn = gr * pattern, gn * pattern
        if gr is None:
            assert gn is None or float(gn.abs().max()) == 0.0, name
            continue
        scale = float(gr.abs().max())
        assert float((gn - gr).abs().max()) <= 1e-10 * max(scale, 1e-12), name
    assert float(g_ref[1].abs().max()) > 0 and float(g_ref[3].abs().max()) > 0


def test_spike_only_loss_and_inference_skip_unused_buffers():
    """A loss on the spikes alone (no membrane gradient: None, not zeros) gives the reference gradients; without
    gradients and without recording, membranes are not kept, yet spikes and final states are unchanged."""
    sg = MultiGaussian()
    currents, weight, bias, alpha, rho, u0, s0, eta0 = _inputs(True, False, seed=6)
    ref = _reference(currents, weight, bias, alpha, rho, ALIFState(u0, s0, eta0), b0=0.02, beta=1.8, surrogate=sg)
    c_tm = (currents + bias).transpose(0, 1)
    spikes = alif_sequence_tm(c_tm, weight, alpha, rho, u0, s0, eta0, b0=0.02, beta=1.8, surrogate=sg)[0]
    g_ref = torch.autograd.grad((ref[0] * torch.arange(25.0, dtype=torch.float64)[:, None]).sum(), [weight, alpha])
    g_new = torch.autograd.grad(
        (spikes.transpose(0, 1) * torch.arange(25.0, dtype=torch.float64)[:, None]).sum(), [weight, alpha]
    )
    for gr, gn in zip(g_ref, g_new, strict=True):
        torch.testing.assert_close(gn, gr, rtol=1e-10, atol=1e-12)
    with torch.no_grad():
        lean = alif_sequence_tm(c_tm, weight, alpha, rho, u0, s0, eta0, b0=0.02, beta=1.8, surrogate=sg,
                                keep_membranes=False)  # fmt: skip
    assert lean[1] is None and lean[2] is None
    assert torch.equal(lean[0].transpose(0, 1), ref[0])
    torch.testing.assert_close(lean[3], ref[3], rtol=0, atol=1e-12)
    torch.testing.assert_close(lean[4], ref[4], rtol=0, atol=1e-12)


@pytest.mark.parametrize("recurrent", [True, False])
@pytest.mark.parametrize("sparse", [False, True])
def test_lif_hard_kernel_matches_step_loop(recurrent, sparse):
    """v_t = α u_{t-1} + c_t + W s_{t-1}, s_t = [v_t > ϑ], u_t = (1 − s_t) v_t: values and every gradient."""
    sg = MultiGaussian()
    currents, _, _, alpha, _, u0, s0, eta0 = _inputs(False, True, seed=7)
    currents = (currents.detach() * 1.5).requires_grad_()
    n = currents.shape[-1]
    weight = _masked_weight(n, 0.5, seed=8) if recurrent else None
    state, spikes_ref, mem_ref = ALIFState(u0, s0, eta0), [], []
    for c in currents.unbind(1):
        if weight is not None:
            c = c + state.s @ weight.t()
        s, state = lif_hard_reset_step(c, state, alpha, threshold=0.5, surrogate=sg)
        spikes_ref.append(s)
        mem_ref.append(state.u)
    ref = (torch.stack(spikes_ref, 1), torch.stack(mem_ref, 1), state.u)
    pattern = weight.detach() != 0 if weight is not None else None
    spikes, membranes, u = lif_hard_sequence_tm(
        currents.transpose(0, 1), weight, alpha, u0, s0, threshold=0.5, surrogate=sg, sparse=sparse, mask=pattern
    )
    mine = (spikes.transpose(0, 1), membranes.transpose(0, 1), u)
    assert 10 < ref[0].sum() < 0.75 * ref[0].numel()
    assert torch.equal(mine[0], ref[0])
    torch.testing.assert_close(mine[1], ref[1], rtol=0, atol=1e-12)
    w = _loss_weights(ref, seed=9)
    leaves = [t for t in (currents, weight, alpha, u0, s0) if t is not None]
    g_ref = torch.autograd.grad(sum((a * r).sum() for a, r in zip(w, ref, strict=True)), leaves, allow_unused=True)
    g_new = torch.autograd.grad(sum((a * r).sum() for a, r in zip(w, mine, strict=True)), leaves, allow_unused=True)
    for gr, gn in zip(g_ref, g_new, strict=True):
        if gr is None:  # s0 of a feed-forward layer feeds nothing
            assert gn is None or float(gn.abs().max()) == 0.0
            continue
        if pattern is not None and gr.shape == pattern.shape:  # dW: compared on the synapses (see above)
            gr, gn = gr * pattern, gn * pattern
        torch.testing.assert_close(gn, gr, rtol=1e-10, atol=1e-12)
    assert float(g_ref[0].abs().max()) > 0


def test_integrator_kernel_matches_step_loop_and_hand_values():
    """u_t = α u_{t-1} + (1 − α) c_t: a hand trace for two steps, then values and gradients against the loop."""
    alpha = torch.tensor([0.5, 0.9], dtype=torch.float64)
    c = torch.tensor([[[1.0, 2.0]], [[3.0, -1.0]]], dtype=torch.float64)  # (T=2, B=1, N=2)
    u = integrator_sequence_tm(c, alpha, torch.tensor([[2.0, 0.0]], dtype=torch.float64))
    # step 1: 0.5·2 + 0.5·1 = 1.5 and 0.9·0 + 0.1·2 = 0.2; step 2: 0.5·1.5 + 0.5·3 = 2.25, 0.9·0.2 − 0.1 = 0.08
    torch.testing.assert_close(u[:, 0], torch.tensor([[1.5, 0.2], [2.25, 0.08]], dtype=torch.float64))
    g = torch.Generator().manual_seed(10)
    currents = torch.randn(30, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    alpha = torch.rand(4, generator=g, dtype=torch.float64).mul(0.9).requires_grad_()
    u0 = torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    out, u_ref = [], u0
    for c_t in currents.unbind(0):
        u_ref = leaky_readout_step(c_t, u_ref, alpha)
        out.append(u_ref)
    ref = torch.stack(out)
    mine = integrator_sequence_tm(currents, alpha, u0)
    torch.testing.assert_close(mine, ref, rtol=0, atol=1e-13)
    w = torch.randn(ref.shape, generator=g, dtype=torch.float64)
    g_ref = torch.autograd.grad((w * ref).sum(), [currents, alpha, u0])
    g_new = torch.autograd.grad((w * mine).sum(), [currents, alpha, u0])
    for gr, gn in zip(g_ref, g_new, strict=True):
        torch.testing.assert_close(gn, gr, rtol=1e-11, atol=1e-12)


def test_recurrence_picks_csr_by_size_and_density_and_its_weight_gradient_is_the_masked_product(monkeypatch):
    n = 40
    sparse_w = _masked_weight(n, 0.08, seed=11).detach()
    dense_w = torch.randn(n, n, dtype=torch.float64)
    assert not Recurrence(sparse_w, None).sparse  # below SPARSE_MIN_SIZE
    monkeypatch.setattr(fused_module, "SPARSE_MIN_SIZE", 32)
    monkeypatch.setattr(fused_module, "NATIVE_SPARSE_MIN_SIZE", 32)
    assert Recurrence(sparse_w, None).sparse and not Recurrence(dense_w, None).sparse
    assert not Recurrence(sparse_w, False).sparse
    assert not Recurrence(sparse_w, None, mask=torch.ones(n, n, dtype=torch.bool)).sparse  # the mask decides
    g = torch.Generator().manual_seed(12)
    grads = torch.randn(7, 5, n, generator=g, dtype=torch.float64)
    spikes = (torch.rand(7, 5, n, generator=g) < 0.3).double()
    expected = torch.einsum("tbi,tbj->ij", grads, spikes) * (sparse_w != 0)
    torch.testing.assert_close(Recurrence(sparse_w, True).weight_grad(grads, spikes), expected, rtol=1e-13, atol=0)
    out = torch.empty(5, n, dtype=torch.float64)
    c = torch.randn(5, n, generator=g, dtype=torch.float64)
    torch.testing.assert_close(Recurrence(sparse_w, True).add_into(out, c, spikes[0]), c + spikes[0] @ sparse_w.t())
    acc = torch.zeros(5, n, dtype=torch.float64)
    torch.testing.assert_close(Recurrence(sparse_w, True).add_transposed_(acc, grads[0]), grads[0] @ sparse_w)


@pytest.mark.parametrize("sparse", [False, True])
def test_event_driven_products_equal_dense_ones_and_are_chosen_by_spike_count(sparse, monkeypatch):
    """The spike-driven forward product and weight gradient (forced on) give the kernel's values and gradients;
    automatically they are taken only for large layers whose spike fraction is at most the measured threshold."""
    sg = MultiGaussian()
    currents, _, bias, alpha, rho, u0, s0, eta0 = _inputs(True, True, seed=13)
    weight = _masked_weight(currents.shape[-1], 0.3, seed=14)
    pattern = weight.detach() != 0
    c_tm = (currents + bias).transpose(0, 1)
    outs, grads = [], []
    for events in (False, True):
        out = alif_sequence_tm(c_tm, weight, alpha, rho, u0, s0, eta0, b0=0.02, beta=1.8, surrogate=sg,
                               sparse=sparse, mask=pattern, events=events)  # fmt: skip
        w = _loss_weights(out[:2], seed=15)
        grads.append(torch.autograd.grad(sum((a * o).sum() for a, o in zip(w, out[:2], strict=True)),
                                         [currents, weight, alpha, u0, s0]))  # fmt: skip
        outs.append(out)
    assert torch.equal(outs[0][0], outs[1][0]) and outs[0][0].sum() > 10
    torch.testing.assert_close(outs[1][1], outs[0][1], rtol=0, atol=1e-13)
    for a, b in zip(grads[1], grads[0], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-13)
    w = torch.zeros(16, 16, dtype=torch.float64)
    few, many = torch.zeros(4, 16, dtype=torch.float64), torch.ones(4, 16, dtype=torch.float64)
    few[0, 0] = 1.0
    event_rate, grad_rate = fused_module.EVENT_RATE, fused_module.EVENT_RATE_GRAD
    assert not Recurrence(w, False)._use_events(few, event_rate)  # a small layer never goes event-driven by itself
    monkeypatch.setattr(fused_module, "SPARSE_MIN_SIZE", 16)
    monkeypatch.setattr(fused_module, "NATIVE_EVENT_MIN_SIZE", 16)
    rec = Recurrence(w, False)
    assert rec._use_events(few, event_rate) and not rec._use_events(many, event_rate)  # 1/64 <= EVENT_RATE = 0.03 < 1
    assert not rec._use_events(few[:2], grad_rate) and rec._use_events(few, grad_rate)  # 0.02: 1/32 > it >= 1/64
    assert (event_rate, grad_rate) == (0.03, 0.02)  # the thresholds the two lines above are built around


@pytest.mark.parametrize("sparse", [True, False])
def test_the_kernels_apply_the_mask_whatever_w_holds_outside_it(sparse):
    """The sequence functions take the raw W with its mask: NaN and ±inf outside the mask change nothing (spikes,
    membranes, every gradient), and the gradient of W is exactly 0 there; on every path (compiled CSR, which reads
    W on the synapses only, dense, PyTorch CSR), ALIF and hard-reset LIF."""
    g = torch.Generator().manual_seed(21)
    n, batch, steps = 40, 3, 12
    mask = torch.rand(n, n, generator=g) < 0.3
    clean = torch.randn(n, n, generator=g, dtype=torch.float64) * 0.5 * mask
    dirty = clean.clone()
    dirty[~mask] = torch.tensor([float("nan"), float("inf"), -float("inf")], dtype=torch.float64).repeat(n * n)[
        : int((~mask).sum())
    ]
    currents = torch.rand(steps, batch, n, generator=g, dtype=torch.float64) * 0.4
    alpha = torch.rand(n, generator=g, dtype=torch.float64) * 0.3 + 0.6
    rho = torch.full((n,), 0.9, dtype=torch.float64)
    zeros = torch.zeros(batch, n, dtype=torch.float64)
    results = []
    for w in (clean, dirty):
        w = w.clone().requires_grad_()
        c = currents.clone().requires_grad_()
        alif = alif_sequence_tm(c, w, alpha, rho, zeros, zeros, zeros, b0=0.05, beta=0.5, surrogate=MultiGaussian(),
                                sparse=sparse, mask=mask)  # fmt: skip
        hard = lif_hard_sequence_tm(c, w, alpha, zeros, zeros, threshold=0.1, surrogate=MultiGaussian(),
                                    sparse=sparse, mask=mask)  # fmt: skip
        loss = (alif[1] * torch.linspace(-1, 1, n, dtype=torch.float64)).sum() + alif[0].sum() + hard[1].sum()
        results.append((alif[0], alif[1], hard[0], *torch.autograd.grad(loss, [w, c])))
    assert results[0][0].sum() > 5 and results[0][2].sum() > 5
    for a, b in zip(*results, strict=True):
        assert torch.equal(a, b)
    assert torch.equal(results[1][3][~mask], torch.zeros(int((~mask).sum()), dtype=torch.float64))
    assert bool((results[1][3][mask] != 0).any())


@pytest.mark.parametrize("events", [None, True])
@pytest.mark.parametrize("sparse", [True, False])
@pytest.mark.parametrize("beta", [1.8, 0.0])
def test_a_bias_passed_apart_is_the_bias_added_to_the_currents(sparse, beta, events):
    """``bias=b`` gives the values of currents c_t + b bit for bit (b is added before the recurrent product either
    way) and the same gradients, b's included (summed in another order: float64 to 1e-12)."""
    g = torch.Generator().manual_seed(4)
    n, batch, steps = 50, 6, 15
    weight = _masked_weight(n, 0.2, seed=8)
    currents = (torch.rand(steps, batch, n, generator=g, dtype=torch.float64) * 0.3).requires_grad_()
    bias = (torch.randn(n, generator=g, dtype=torch.float64) * 0.05).requires_grad_()
    alpha = (torch.rand(n, generator=g, dtype=torch.float64) * 0.3 + 0.6).requires_grad_()
    rho = torch.full((n,), 0.9 if beta else 1.0, dtype=torch.float64)
    zeros = torch.zeros(batch, n, dtype=torch.float64)
    outs, grads = [], []
    for apart in (True, False):
        c, b = (currents, bias) if apart else (currents + bias, None)
        out = alif_sequence_tm(c, weight, alpha, rho, zeros, zeros, zeros, b0=0.05, beta=beta,
                               surrogate=MultiGaussian(), sparse=sparse, events=events, bias=b)  # fmt: skip
        loss = out[0].sum() + (out[1] * torch.linspace(-1, 1, n, dtype=torch.float64)).sum()
        outs.append(out[:2])
        grads.append(torch.autograd.grad(loss, [currents, weight, bias, alpha]))
    assert outs[0][0].sum() > 20
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-13)
    by_hand = grads[0][0].sum((0, 1))  # d loss / d b = sum over steps and samples of d loss / d c_t
    torch.testing.assert_close(grads[0][2], by_hand, rtol=1e-12, atol=1e-13)
