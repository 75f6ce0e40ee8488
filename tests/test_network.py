"""RSNN construction, masks, τ application, recording, save/load and the fused/reference equivalence."""

from __future__ import annotations

import pytest
import torch

from hrsnn.connectivity import ConnectivitySpec
from hrsnn.errors import ConfigError
from hrsnn.network import RSNN, LayerConfig, NeuronConfig, ReadoutConfig, RSNNConfig, load_model, save_model


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


def test_gradients_reach_every_tau():
    cfg = _config(readout="alif")
    model = RSNN(cfg)
    out = model(_x(t=60) * 3)
    (out.readout.sum() + out.layer_spikes[0].sum()).backward()
    families = model.parameter_families()
    assert set(families) == {"weights", "tau_m", "tau_adp"}
    for name in ("tau_m", "tau_adp"):
        for p in families[name]:
            assert p.grad is not None and (p.grad != 0).any(), name
    model = RSNN(_config(readout="integrator"))
    model(_x(t=60) * 3).readout.sum().backward()
    assert (model.readout.tau_m.theta.grad != 0).all()


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
