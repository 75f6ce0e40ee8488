"""Network surgery: shrink_layer index maps, trace invariance, set_mask, clone_model, save/load of shrunk models."""

from __future__ import annotations

import pytest
import torch

from hrsnn.connectivity import ConnectivitySpec
from hrsnn.errors import ConfigError
from hrsnn.network import RSNN, LayerConfig, NeuronConfig, ReadoutConfig, RSNNConfig, load_model, save_model
from hrsnn.pruning.base import (
    PruneHistoryEntry,
    clone_model,
    set_mask,
    shrink_layer,
    synapse_total,
)


def _config(n=12, n_layers=1, readout="integrator", kind="alif", conn=None, recurrent=True) -> RSNNConfig:
    conn = conn or ConnectivitySpec(kind="erdos_renyi", p=0.4)
    neuron = NeuronConfig(kind=kind, b0=0.05, tau_m={"dist": "uniform", "low": 5.0, "high": 30.0})
    layers = tuple(LayerConfig(size=n, neuron=neuron, connectivity=conn, recurrent=recurrent) for _ in range(n_layers))
    return RSNNConfig(
        n_inputs=3, n_outputs=2, layers=layers, readout=ReadoutConfig(kind=readout, neuron=NeuronConfig(b0=0.05))
    )


def _x(seed=0, b=3, t=25):
    return torch.rand(b, t, 3, generator=torch.Generator().manual_seed(seed))


KEEP = torch.tensor([True, False, True, True, False, True, True, True, False, True, True, False])


def test_shrink_layer_index_maps_and_new_config():
    model = RSNN(_config(n_layers=2), seed=1)
    idx = torch.nonzero(KEEP).flatten()
    new = shrink_layer(model, 0, KEEP)
    old0, new0 = model.layers[0], new.layers[0]
    assert new.config.layers[0].size == 8 and new0.size == 8 and new.config.layers[1].size == 12
    torch.testing.assert_close(new0.weight_rec, old0.weight_rec[idx][:, idx], rtol=0, atol=0)
    assert torch.equal(new0.mask, old0.mask[idx][:, idx])
    torch.testing.assert_close(new0.bias_rec, old0.bias_rec[idx], rtol=0, atol=0)
    torch.testing.assert_close(new0.input.weight, old0.input.weight[idx], rtol=0, atol=0)
    torch.testing.assert_close(new0.input.bias, old0.input.bias[idx], rtol=0, atol=0)
    torch.testing.assert_close(new0.tau_m.tau, old0.tau_m.tau[idx], rtol=0, atol=1e-6)
    torch.testing.assert_close(new0.tau_adp.tau, old0.tau_adp.tau[idx], rtol=0, atol=1e-6)
    torch.testing.assert_close(new.layers[1].input.weight, model.layers[1].input.weight[:, idx], rtol=0, atol=0)
    torch.testing.assert_close(new.layers[1].weight_rec, model.layers[1].weight_rec, rtol=0, atol=0)
    assert new0.input.in_features == 3 and new.layers[1].input.in_features == 8
    assert model.layers[0].size == 12 and model.layers[0].weight_rec.shape == (12, 12)  # original untouched
    assert new0.weight_rec.requires_grad and new0.tau_m.theta.requires_grad


@pytest.mark.parametrize("readout", ["integrator", "alif"])
def test_removing_neurons_without_outgoing_synapses_leaves_other_traces_identical(readout):
    model = RSNN(_config(readout=readout), seed=2)
    removed = ~KEEP
    mask = model.layers[0].mask.clone()
    mask[:, removed] = False  # removed neurons send nothing inside the layer ...
    set_mask(model, 0, mask)
    with torch.no_grad():
        model.readout.input.weight[:, removed] = 0.0  # ... nor to the readout
    new = shrink_layer(model, 0, KEEP)
    x = _x()
    ref = model(x, record=True)
    out = new(x, record=True)
    assert ref.layer_spikes[0].sum() > 0
    assert torch.equal(out.layer_spikes[0], ref.layer_spikes[0][..., KEEP])
    torch.testing.assert_close(out.membranes[0], ref.membranes[0][..., KEEP], rtol=0, atol=1e-6)
    torch.testing.assert_close(out.readout, ref.readout, rtol=0, atol=1e-6)


def test_shrink_feed_forward_layer_and_readout_columns():
    model = RSNN(_config(recurrent=False, kind="lif"), seed=3)
    new = shrink_layer(model, 0, KEEP)
    assert new.layers[0].weight_rec is None and new.layers[0].tau_adp is None
    torch.testing.assert_close(new.readout.input.weight, model.readout.input.weight[:, KEEP], rtol=0, atol=0)


def test_shrunk_model_saves_and_loads_with_a_fitting_connectivity(tmp_path):
    conn = ConnectivitySpec(kind="small_world", k=6, p_rewire=0.2)
    model = RSNN(_config(n=8, conn=conn), seed=4)
    keep = torch.tensor([True, False, True, True, False, True, False, True])
    new = shrink_layer(model, 0, keep)
    assert new.config.layers[0].connectivity.k == 4  # lowered: k <= n - 1 and even for 5 neurons
    save_model(new, tmp_path / "m.safetensors")
    back = load_model(tmp_path / "m.safetensors")
    assert torch.equal(back.layers[0].mask, new.layers[0].mask)
    torch.testing.assert_close(back(_x()).readout, new(_x()).readout, rtol=0, atol=1e-6)


def test_set_mask_zeroes_outside_and_replaces_buffer():
    model = RSNN(_config(), seed=5)
    layer = model.layers[0]
    mask = torch.zeros(12, 12, dtype=torch.bool)
    mask[0, 1] = mask[3, 2] = True
    weight = torch.full((12, 12), 2.5)
    out = set_mask(model, 0, mask, weight)
    assert out is model and torch.equal(layer.mask, mask) and layer.mask is not mask
    expected = torch.zeros(12, 12)
    expected[0, 1] = expected[3, 2] = 2.5
    torch.testing.assert_close(layer.weight_rec.detach(), expected, rtol=0, atol=0)
    assert synapse_total(model, 0) == 2
    assert synapse_total(model, 0, scope="all") == 2 + 12 * 3 + 2 * 12


def test_set_mask_keeps_current_weight_by_default():
    model = RSNN(_config(), seed=6)
    before = model.layers[0].weight_rec.detach().clone()
    mask = model.layers[0].mask & (torch.arange(12)[:, None] > torch.arange(12)[None, :])
    set_mask(model, 0, mask)
    torch.testing.assert_close(model.layers[0].weight_rec.detach(), before * mask, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda m: set_mask(m, 0, torch.ones(5, 5, dtype=torch.bool)), "mask"),
        (lambda m: set_mask(m, 0, torch.ones(12, 12)), "mask"),
        (lambda m: set_mask(m, 3, torch.ones(12, 12, dtype=torch.bool)), "layer_index"),
        (lambda m: shrink_layer(m, 0, torch.zeros(12, dtype=torch.bool)), "keep"),
        (lambda m: shrink_layer(m, 0, torch.ones(11, dtype=torch.bool)), "keep"),
        (lambda m: shrink_layer(m, 0, torch.ones(12)), "keep"),
        (lambda m: synapse_total(m, 0, scope="most"), "scope"),
    ],
)
def test_bad_surgery_input_names_the_field(call, field):
    with pytest.raises(ConfigError) as info:
        call(RSNN(_config()))
    assert info.value.field == field


def test_set_mask_on_feed_forward_layer_is_rejected():
    with pytest.raises(ConfigError, match="feed-forward"):
        set_mask(RSNN(_config(recurrent=False)), 0, torch.ones(12, 12, dtype=torch.bool))


def test_clone_model_is_independent_but_shares_configs():
    model = RSNN(_config(), seed=7)
    copy = clone_model(model)
    assert copy.config is model.config
    with torch.no_grad():
        copy.layers[0].weight_rec.add_(1.0)
    assert not torch.equal(copy.layers[0].weight_rec, model.layers[0].weight_rec)


def test_history_entry_round_trip():
    entry = PruneHistoryEntry(3, 10, 40, -0.01, None, 1.5, "note")
    assert PruneHistoryEntry.from_dict(entry.to_dict()) == entry


def test_bptt_fine_tuning_of_a_shrunk_network_learns_and_keeps_its_mask():
    """The pruned network is an ordinary RSNN: the core trainer fine-tunes it and pruned synapses stay absent."""
    from hrsnn.objectives import make_objective
    from hrsnn.tasks.base import SequenceDataset
    from hrsnn.training import TrainConfig, Trainer, evaluate

    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (64,), generator=g)
    rates = torch.full((64, 20, 2), 0.05)
    rates[torch.arange(64), :, y] = 0.6
    data = SequenceDataset((torch.rand(64, 20, 2, generator=g) < rates).float(), y, 2, "toy")
    cfg = RSNNConfig(
        n_inputs=2,
        n_outputs=2,
        layers=(
            LayerConfig(
                size=20, neuron=NeuronConfig(b0=0.05, r_m=4.0), connectivity=ConnectivitySpec(kind="erdos_renyi", p=0.4)
            ),
        ),
        readout=ReadoutConfig(neuron=NeuronConfig(b0=0.05)),
    )
    keep = torch.ones(20, dtype=torch.bool)
    keep[::3] = False
    model = shrink_layer(RSNN(cfg, seed=0), 0, keep)
    mask = model.layers[0].mask.clone()
    objective = make_objective("mean_readout_ce")
    before = evaluate(model, data, objective)["loss"]
    Trainer(model, TrainConfig(epochs=8, batch_size=16, loss="mean_readout_ce", lr=0.02, progress=False)).fit(
        data, data
    )
    assert evaluate(model, data, objective)["loss"] < 0.7 * before
    assert torch.equal(model.layers[0].mask, mask)
    assert (model.layers[0].effective_recurrent_weight()[~mask] == 0).all()


def test_history_entry_details_round_trip_and_old_files() -> None:
    entry = PruneHistoryEntry(2, 10, 40, details={"spearman": 0.5, "count": 3})
    data = entry.to_dict()
    assert data["details"] == {"spearman": 0.5, "count": 3.0}
    assert PruneHistoryEntry.from_dict(data) == entry
    old = {k: v for k, v in data.items() if k != "details"}
    assert dict(PruneHistoryEntry.from_dict(old).details) == {}
