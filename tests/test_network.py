"""RSNN construction, masks, τ application, recording, save/load and the fused/reference equivalence."""

from __future__ import annotations

import math

import pytest
import torch

from hrsnn import fused as fused_module
from hrsnn.connectivity import ConnectivitySpec
from hrsnn.errors import ConfigError
from hrsnn.fused import Recurrence
from hrsnn.network import (
    RSNN,
    LayerConfig,
    NeuronConfig,
    ReadoutConfig,
    RSNNConfig,
    RSNNOutput,
    RSNNState,
    load_model,
    save_model,
)
from hrsnn.neurons import ALIFState


def _config(kind="alif", readout="integrator", recurrent=True, sparse=True, **kw) -> RSNNConfig:
    conn = ConnectivitySpec(kind="erdos_renyi", p=0.3) if sparse else ConnectivitySpec()
    neuron = NeuronConfig(kind=kind, b0=0.05, tau_m={"dist": "uniform", "low": 5.0, "high": 30.0})
    return RSNNConfig(
        n_inputs=3,
        n_outputs=2,
        layers=(LayerConfig(size=12, recurrent=recurrent, neuron=neuron, connectivity=conn),),
        readout=ReadoutConfig(kind=readout, neuron=NeuronConfig(b0=0.05)),
        **kw,
    )


def _x(b=4, t=30, c=3, seed=0):
    return torch.rand(b, t, c, generator=torch.Generator().manual_seed(seed))


def test_output_shapes_and_constant_return_type():
    model = RSNN(_config())
    out = model(_x())
    assert out.readout.shape == (4, 30, 2)
    assert out.layer_spikes[0].shape == (4, 30, 12)
    assert out.output_spikes is None and out.membranes is None
    rec = model(_x(), record=True)
    assert type(rec) is type(out)
    assert rec.membranes[0].shape == (4, 30, 12) and rec.thresholds[0].shape == (4, 30, 12)


def test_bad_input_shape_names_the_problem():
    with pytest.raises(ConfigError, match=r"input=\(4, 30, 5\)"):
        RSNN(_config())(_x(c=5))


@pytest.mark.parametrize("kind", ["alif", "lif"])
@pytest.mark.parametrize("readout", ["integrator", "alif"])
def test_fused_and_reference_paths_agree(kind, readout):
    model = RSNN(_config(kind=kind, readout=readout, state_init="uniform_spike"), seed=3)
    x = _x()
    gen = torch.Generator().manual_seed(5)
    fused = model(x, generator=gen, record=True)
    for layer in [*model.layers, model.readout]:
        layer.fused = False
    ref = model(x, generator=torch.Generator().manual_seed(5), record=True)
    torch.testing.assert_close(fused.readout, ref.readout, rtol=0, atol=1e-6)
    torch.testing.assert_close(fused.layer_spikes[0], ref.layer_spikes[0])
    torch.testing.assert_close(fused.thresholds[0], ref.thresholds[0], rtol=0, atol=1e-6)


def test_mask_is_buffer_no_autapses_and_applied():
    model = RSNN(_config())
    layer = model.layers[0]
    assert "layers.0.mask" in dict(model.named_buffers())
    assert not layer.mask.diagonal().any()
    eff = layer.effective_recurrent_weight()
    assert (eff[~layer.mask] == 0).all()
    assert model.synapse_counts()["layers.0.recurrent"] == int((eff != 0).sum())


def test_mask_holds_after_optimizer_steps_and_save_load(tmp_path):
    model = RSNN(_config(), seed=1)
    mask = model.layers[0].mask.clone()
    opt = torch.optim.Adam(model.parameters(), lr=0.05, weight_decay=0.1)
    for i in range(5):
        loss = model(_x(seed=i)).readout.pow(2).sum() + model.layers[0].weight_rec.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    eff = model.layers[0].effective_recurrent_weight()
    assert (eff[~mask] == 0).all()
    assert (eff[mask] != 0).all()
    path = tmp_path / "m.safetensors"
    save_model(model, path)
    loaded = load_model(path)
    assert torch.equal(loaded.layers[0].mask, mask)
    x = _x(seed=9)
    torch.testing.assert_close(loaded(x).readout, model(x).readout, rtol=0, atol=0)
    assert loaded.config == model.config


def test_load_model_refuses_other_files(tmp_path):
    from hrsnn.io import save_tensors

    path = tmp_path / "other.safetensors"
    save_tensors(path, {"w": torch.zeros(2)})
    with pytest.raises(ConfigError, match="not an hrsnn model"):
        load_model(path)


def _loss_weights(out, seed=11):
    g = torch.Generator().manual_seed(seed)
    parts = [out.readout, out.membranes[0], out.thresholds[0]]
    return [torch.randn(p.shape, generator=g, dtype=p.dtype) for p in parts]


def _traced_loss(model, x, weights):
    out = model(x, record=True)
    parts = [out.readout, out.membranes[0], out.thresholds[0]]
    return sum((w * p).sum() for w, p in zip(weights, parts, strict=True)), out


@pytest.mark.parametrize("fused", [True, False])
def test_tau_gradients_equal_finite_differences(fused):
    """Every τ (hidden τ_m, τ_adp; ALIF readout τ_m, τ_adp) gets the exact derivative, checked by central
    differences in float64. A triangle surrogate narrower than every |u − θ| met makes the surrogate term vanish,
    so the backward pass must equal the true derivative of the (locally spike-constant) loss."""
    width = 1e-6
    cfg = _config(readout="alif", surrogate={"name": "triangle", "width": width})
    model = RSNN(cfg, seed=1).double()
    for layer in [*model.layers, model.readout]:
        layer.fused = fused
    x = _x(b=4, t=40, seed=2).double() * 3
    with torch.no_grad():
        out = model(x, record=True)
        ro = model.readout(out.layer_spikes[0], model.initial_state(x.shape[0]).readout, record=True)
    for u, theta in ((out.membranes[0], out.thresholds[0]), (ro.membranes, ro.thresholds)):
        assert float((u - theta).abs().min()) > 10 * width  # no v near the surrogate's support
    assert out.layer_spikes[0].sum() > 20 and out.output_spikes.sum() > 5
    weights = _loss_weights(out)
    loss, _ = _traced_loss(model, x, weights)
    families = model.parameter_families()
    assert set(families) == {"weights", "tau_m", "tau_adp", "tau_out"}
    thetas = [*families["tau_m"], *families["tau_adp"], *families["tau_out"]]
    assert len(thetas) == 4  # hidden τ_m, hidden τ_adp, readout τ_m, readout τ_adp
    grads = torch.autograd.grad(loss, thetas)
    eps = 1e-6
    for theta, grad in zip(thetas, grads, strict=True):
        numeric = torch.zeros_like(theta)
        for i in range(theta.numel()):
            with torch.no_grad():
                theta[i] += eps
                plus = float(_traced_loss(model, x, weights)[0])
                theta[i] -= 2 * eps
                minus = float(_traced_loss(model, x, weights)[0])
                theta[i] += eps
            numeric[i] = (plus - minus) / (2 * eps)
        assert float(numeric.abs().min()) > 1e-6  # every τ really matters
        torch.testing.assert_close(grad, numeric, rtol=1e-5, atol=1e-8)


def test_integrator_readout_tau_gradient_equals_finite_differences():
    model = RSNN(_config(readout="integrator"), seed=3).double()
    x = _x(t=40).double() * 3
    weights = torch.randn(4, 40, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    theta = model.readout.tau_m.theta
    (grad,) = torch.autograd.grad((weights * model(x).readout).sum(), theta)
    eps = 1e-6
    for i in range(theta.numel()):
        with torch.no_grad():
            theta[i] += eps
            plus = float((weights * model(x).readout).sum())
            theta[i] -= 2 * eps
            minus = float((weights * model(x).readout).sum())
            theta[i] += eps
        assert float(grad[i]) == pytest.approx((plus - minus) / (2 * eps), rel=1e-6, abs=1e-9)
    assert model.parameter_families()["tau_out"] == [theta]


def test_per_neuron_tau_vector_is_really_applied():
    """Each neuron's trace equals a one-neuron simulation with that neuron's own τ (not a shared scalar)."""
    cfg = RSNNConfig(
        n_inputs=4,
        n_outputs=1,
        layers=(LayerConfig(size=4, recurrent=False, neuron=NeuronConfig(kind="lif", b0=10.0)),),
    )
    model = RSNN(cfg)
    taus = torch.tensor([2.0, 5.0, 20.0, 80.0])
    layer = model.layers[0]
    layer.tau_m.set_tau(taus)
    with torch.no_grad():
        layer.input.weight.copy_(torch.eye(4))
        layer.input.bias.zero_()
    x = torch.ones(1, 10, 4)
    u = model(x, record=True).membranes[0][0]  # (T, 4)
    for j, tau in enumerate(taus.tolist()):
        alpha = torch.exp(torch.tensor(-1.0 / tau))
        expected = 1.0 - alpha ** torch.arange(1, 11)  # u_t = (1 − α^t) for a unit step input
        torch.testing.assert_close(u[:, j], expected, rtol=1e-5, atol=1e-6)
    assert len(set(u[-1].tolist())) == 4


def test_uniform_spike_state_init_sets_s_equal_u():
    model = RSNN(_config(state_init="uniform_spike", state_init_scale=0.5))
    st = model.initial_state(3, torch.Generator().manual_seed(0)).layers[0]
    assert torch.equal(st.s, st.u) and float(st.u.max()) < 0.5 and float(st.u.min()) >= 0.0
    torch.testing.assert_close(st.eta, torch.full_like(st.u, 0.05))


def test_continuing_a_sequence_from_the_final_state_equals_one_pass():
    model = RSNN(_config(readout="alif"), seed=2)
    x = _x(t=40)
    full = model(x)
    first = model(x[:, :25])
    second = model(x[:, 25:], first.state)
    torch.testing.assert_close(torch.cat([first.readout, second.readout], 1), full.readout)


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match=r"model\.layers\[0\]\.size"):
        RSNNConfig.from_dict({"n_inputs": 2, "n_outputs": 2, "layers": [{"size": "ten"}]})
    with pytest.raises(ConfigError, match=r"model\.layers\[0\]\.neuron\.kind"):
        RSNNConfig.from_dict({"n_inputs": 2, "n_outputs": 2, "layers": [{"size": 4, "neuron": {"kind": "izh"}}]})
    with pytest.raises(ConfigError, match=r"model\.layers\[0\]\.sise"):
        RSNNConfig.from_dict({"n_inputs": 2, "n_outputs": 2, "layers": [{"sise": 4}]})
    with pytest.raises(ConfigError, match=r"neuron\.b0"):
        NeuronConfig(b0=-1.0)
    with pytest.raises(ConfigError, match=r"neuron\.tau_m"):
        NeuronConfig(tau_m={"dist": "cauchy"})


def test_config_dict_round_trip():
    cfg = _config(readout="alif")
    assert RSNNConfig.from_dict(cfg.to_dict()) == cfg


def test_nan_in_masked_entries_never_leaks():
    """Masked entries are exactly zero whatever W holds: values, synapse counts and gradients."""
    model = RSNN(_config(), seed=5)
    layer = model.layers[0]
    x = _x(seed=6) * 3
    clean = model(x, record=True)
    counts = model.synapse_counts()
    with torch.no_grad():
        layer.weight_rec[~layer.mask] = float("nan")
    eff = layer.effective_recurrent_weight()
    assert torch.equal(eff[~layer.mask], torch.zeros(int((~layer.mask).sum())))
    assert model.synapse_counts() == counts
    for fused in (True, False):
        layer.fused = fused
        out = model(x, record=True)
        torch.testing.assert_close(out.membranes[0], clean.membranes[0], rtol=0, atol=1e-6)
        (grad,) = torch.autograd.grad(out.readout.sum() + out.membranes[0].sum(), layer.weight_rec)
        assert torch.equal(grad[~layer.mask], torch.zeros(int((~layer.mask).sum())))
        assert bool(grad[layer.mask].isfinite().all()) and bool((grad[layer.mask] != 0).any())


@pytest.mark.parametrize("scheme", ["zeros", "uniform", "uniform_spike"])
@pytest.mark.parametrize("readout", ["integrator", "alif"])
@pytest.mark.parametrize("kind", ["alif", "lif"])
def test_double_model_runs_in_float64(scheme, readout, kind):
    """RSNN(cfg).double() works: every state (hidden and readout) follows the model's dtype."""
    ro_init = "uniform_spike" if readout == "alif" else "uniform"
    cfg = _config(kind=kind, readout=readout, state_init=scheme, readout_init=ro_init)
    single, model = RSNN(cfg, seed=1), RSNN(cfg, seed=1).double()
    x = _x(seed=3) * 3
    state = model.initial_state(4, torch.Generator().manual_seed(0))
    assert {t.dtype for st in (*state.layers, state.readout) for t in st} == {torch.float64}
    state32 = RSNNState(
        tuple(ALIFState(*(t.float() for t in st)) for st in state.layers),
        ALIFState(*(t.float() for t in state.readout)),
    )
    expected = single(x, state32).readout
    for fused in (True, False):
        for layer in [*model.layers, model.readout]:
            layer.fused = fused
        out = model(x.double(), generator=torch.Generator().manual_seed(0))
        assert out.readout.dtype == torch.float64 and out.layer_spikes[0].dtype == torch.float64
        torch.testing.assert_close(out.readout, model(x.double(), state).readout, rtol=0, atol=0)
        torch.testing.assert_close(out.readout.float(), expected, rtol=0, atol=1e-5)


def test_lif_hard_through_rsnn_equals_hand_trace():
    """Two recurrent hard-reset LIF neurons: v_t = α u_{t−1} + W_in x_t + W s_{t−1}, s = [v > 0.5], u = (1 − s) v."""
    neuron = NeuronConfig(kind="lif_hard", hard_threshold=0.5)
    cfg = RSNNConfig(
        n_inputs=1,
        n_outputs=1,
        layers=(LayerConfig(size=2, neuron=neuron, connectivity=ConnectivitySpec(kind="dense")),),
    )
    model = RSNN(cfg)
    layer = model.layers[0]
    layer.tau_m.set_tau(torch.tensor([2.0, 5.0]))
    with torch.no_grad():
        layer.input.weight.copy_(torch.tensor([[0.4], [0.2]]))
        layer.input.bias.zero_()
        layer.weight_rec.copy_(torch.tensor([[0.0, 0.3], [0.35, 0.0]]))
        layer.bias_rec.zero_()
    inputs = [1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    out = model(torch.tensor(inputs).reshape(1, -1, 1), record=True)
    alpha = [math.exp(-1 / 2.0), math.exp(-1 / 5.0)]
    w_in, w_rec = [0.4, 0.2], [[0.0, 0.3], [0.35, 0.0]]
    u, s = [0.0, 0.0], [0.0, 0.0]
    us, ss = [], []
    for x_t in inputs:
        v = [alpha[i] * u[i] + w_in[i] * x_t + sum(w_rec[i][j] * s[j] for j in range(2)) for i in range(2)]
        s = [1.0 if v[i] > 0.5 else 0.0 for i in range(2)]
        u = [(1.0 - s[i]) * v[i] for i in range(2)]
        us.append(u)
        ss.append(s)
    assert sum(map(sum, ss)) == 6  # resets and recurrent input are exercised
    torch.testing.assert_close(out.membranes[0][0], torch.tensor(us), rtol=0, atol=1e-6)
    assert out.layer_spikes[0][0].tolist() == ss
    torch.testing.assert_close(out.thresholds[0][0], torch.full((8, 2), 0.5))


def test_uniform_state_init_values_and_reproducibility():
    model = RSNN(_config(state_init="uniform", state_init_scale=0.3))
    st = model.initial_state(5, torch.Generator().manual_seed(1)).layers[0]
    by_hand = torch.rand(5, 12, generator=torch.Generator().manual_seed(1)) * 0.3
    assert torch.equal(st.u, by_hand)
    assert float(st.u.min()) >= 0.0 and float(st.u.max()) < 0.3 and float(st.u.std()) > 0.03
    assert torch.equal(st.s, torch.zeros(5, 12))
    torch.testing.assert_close(st.eta, torch.full((5, 12), 0.05))
    other = model.initial_state(5, torch.Generator().manual_seed(2)).layers[0]
    assert not torch.equal(other.u, st.u)
    # the forward pass uses the same draw: a run from the drawn state equals a run with the generator
    x = _x(seed=4) * 3
    out = model(x, generator=torch.Generator().manual_seed(1))
    ref = model(x, model.initial_state(4, torch.Generator().manual_seed(1)))
    zero = RSNN(_config(), seed=0)(x)
    assert torch.equal(out.readout, ref.readout) and not torch.equal(out.readout, zero.readout)


def test_readout_init_draws_after_hidden_layers_from_the_same_generator():
    model = RSNN(_config(readout="alif", state_init="uniform_spike", readout_init="uniform_spike"))
    state = model.initial_state(3, torch.Generator().manual_seed(7))
    g = torch.Generator().manual_seed(7)
    hidden = torch.rand(3, 12, generator=g) * 0.05
    readout = torch.rand(3, 2, generator=g) * 0.05
    assert torch.equal(state.layers[0].u, hidden) and torch.equal(state.readout.u, readout)
    assert torch.equal(state.readout.s, readout)
    torch.testing.assert_close(state.readout.eta, torch.full((3, 2), 0.05))
    scaled = RSNN(_config(readout="integrator", readout_init="uniform", state_init_scale=0.5))
    st = scaled.initial_state(3, torch.Generator().manual_seed(7)).readout
    assert torch.equal(st.u, torch.rand(3, 2, generator=torch.Generator().manual_seed(7)) * 0.5)
    assert not st.s.any()
    default = RSNN(_config(readout="alif")).initial_state(3, torch.Generator().manual_seed(7)).readout
    assert not default.u.any() and not default.s.any()
    with pytest.raises(ConfigError, match="model.readout_init='uniform_spike'"):
        _config(readout="integrator", readout_init="uniform_spike")


def test_recurrent_fused_layer_without_bias_matches_step_loop():
    cfg = RSNNConfig(
        n_inputs=3,
        n_outputs=2,
        layers=(
            LayerConfig(
                size=10,
                neuron=NeuronConfig(b0=0.05),
                connectivity=ConnectivitySpec(kind="erdos_renyi", p=0.4),
                bias=False,
            ),
        ),
    )
    model = RSNN(cfg, seed=2).double()
    layer = model.layers[0]
    assert layer.input.bias is None and layer.bias_rec is None
    x = _x(t=50, seed=8).double() * 3
    results = []
    for fused in (True, False):
        layer.fused = fused
        out = model(x, record=True)
        loss = out.readout.pow(2).sum() + out.membranes[0].sum() + out.thresholds[0].sum()
        results.append((out, torch.autograd.grad(loss, list(model.parameters()), allow_unused=True)))
    (fo, fg), (ro, rg) = results
    assert fo.layer_spikes[0].sum() > 20
    assert torch.equal(fo.layer_spikes[0], ro.layer_spikes[0])
    torch.testing.assert_close(fo.membranes[0], ro.membranes[0], rtol=0, atol=1e-12)
    for a, b in zip(fg, rg, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def _pruned_model(kind: str, readout: str, seed: int = 0) -> RSNN:
    """A 60-neuron layer with a 7 %-dense mask (the fused kernels take their CSR path) and a feed-forward layer."""
    neuron = NeuronConfig(kind=kind, b0=0.05, tau_m={"dist": "uniform", "low": 5.0, "high": 30.0})
    layers = (
        LayerConfig(size=60, neuron=neuron, connectivity=ConnectivitySpec(kind="erdos_renyi", p=0.07)),
        LayerConfig(size=8, recurrent=False, neuron=neuron),
    )
    cfg = RSNNConfig(n_inputs=3, n_outputs=2, layers=layers, readout=ReadoutConfig(kind=readout),
                     state_init="uniform_spike" if kind != "lif_hard" else "uniform")  # fmt: skip
    return RSNN(cfg, seed=seed).double()


def _run_and_grad(model: RSNN, x: torch.Tensor) -> tuple[RSNNOutput, tuple[torch.Tensor, ...]]:
    out = model(x, generator=torch.Generator().manual_seed(1), record=True)
    w = torch.Generator().manual_seed(2)
    loss = sum((torch.randn(t.shape, generator=w, dtype=t.dtype).to(t.device) * t).sum()
               for t in (out.readout, *out.membranes, *out.layer_spikes))  # fmt: skip
    return out, torch.autograd.grad(loss, [p for p in model.parameters() if p.requires_grad])


@pytest.mark.parametrize("kind", ["alif", "lif", "lif_hard"])
@pytest.mark.parametrize("readout", ["integrator", "alif"])
def test_pruned_network_fused_kernels_equal_step_loop_in_float64(kind, readout, monkeypatch):
    """Whole network (sparse recurrent layer on the CSR path, feed-forward layer, readout): identical spikes and
    every parameter gradient to 1e-10 relative against the step-function reference."""
    monkeypatch.setattr(fused_module, "SPARSE_MIN_SIZE", 32)  # the CSR path for a small layer
    monkeypatch.setattr(fused_module, "NATIVE_SPARSE_MIN_SIZE", 32)  # likewise with the compiled kernels
    model = _pruned_model(kind, readout)
    layer = model.layers[0]
    assert Recurrence(layer.effective_recurrent_weight().detach(), None, layer.mask).sparse
    x = _x(b=3, t=40, seed=4).double() * 2
    fused, g_fused = _run_and_grad(model, x)
    for module in [*model.layers, model.readout]:
        module.fused = False
    ref, g_ref = _run_and_grad(model, x)
    assert 0.02 < float(ref.layer_spikes[0].detach().mean()) < 0.9
    for a, b in zip(fused.layer_spikes, ref.layer_spikes, strict=True):
        assert torch.equal(a, b)
    torch.testing.assert_close(fused.readout, ref.readout, rtol=0, atol=1e-12)
    for a, b in zip(g_fused, g_ref, strict=True):
        assert float((a - b).abs().max()) <= 1e-10 * max(float(b.abs().max()), 1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("kind", ["alif", "lif_hard"])
def test_cuda_kernels_equal_the_cpu_reference(kind):
    """The same kernels on the GPU (dense recurrence there): spikes identical and gradients to 1e-10 in float64."""
    model = _pruned_model(kind, "alif")
    x = _x(b=3, t=40, seed=4).double() * 2
    cpu, g_cpu = _run_and_grad(model, x)
    gpu, g_gpu = _run_and_grad(model.cuda(), x.cuda())
    for a, b in zip(gpu.layer_spikes, cpu.layer_spikes, strict=True):
        assert torch.equal(a.cpu(), b)
    for a, b in zip(g_gpu, g_cpu, strict=True):
        assert float((a.cpu() - b).abs().max()) <= 1e-10 * max(float(b.abs().max()), 1e-12)
