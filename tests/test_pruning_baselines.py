"""Baselines: magnitude, random and activity-based pruning."""

from __future__ import annotations

import pytest
import torch

from hrsnn.connectivity import ConnectivitySpec
from hrsnn.errors import ConfigError
from hrsnn.network import RSNN, LayerConfig, NeuronConfig, RSNNConfig
from hrsnn.pruning import activity_prune, firing_rates, magnitude_prune, random_prune, set_mask


def _model(n: int = 10, seed: int = 0) -> RSNN:
    neuron = NeuronConfig(kind="lif", b0=0.05, tau_m={"dist": "uniform", "low": 5.0, "high": 20.0})
    layer = LayerConfig(size=n, neuron=neuron, connectivity=ConnectivitySpec(kind="erdos_renyi", p=0.5))
    return RSNN(RSNNConfig(n_inputs=3, n_outputs=2, layers=(layer,)), seed=seed)


def test_magnitude_pruning_keeps_the_largest_weights():
    model = _model(n=3)
    w = torch.tensor([[0.0, -5.0, 1.0], [2.0, 0.0, -0.5], [3.0, 4.0, 0.0]])
    set_mask(model, 0, w != 0, w)
    result = magnitude_prune(model, 0, 3)
    expected = torch.tensor([[0.0, -5.0, 0.0], [0.0, 0.0, 0.0], [3.0, 4.0, 0.0]])
    torch.testing.assert_close(result.model.layers[0].weight_rec.detach(), expected, rtol=0, atol=0)
    assert torch.equal(result.model.layers[0].mask, expected != 0)
    assert [(e.neurons, e.synapses) for e in result.history] == [(3, 6), (3, 3)]
    assert model.synapse_counts()["layers.0.recurrent"] == 6  # input untouched
    assert magnitude_prune(model, 0, 99).history[-1].synapses == 6


def test_random_pruning_counts_and_seed():
    model = _model(n=12)
    a = random_prune(model, 0, generator=torch.Generator().manual_seed(1), n_neurons=8, n_synapses=10)
    b = random_prune(model, 0, generator=torch.Generator().manual_seed(1), n_neurons=8, n_synapses=10)
    c = random_prune(model, 0, generator=torch.Generator().manual_seed(2), n_neurons=8, n_synapses=10)
    assert a.model.layers[0].size == 8 and a.kept_neurons.numel() == 8
    assert a.model.synapse_counts()["layers.0.recurrent"] == 10
    assert torch.equal(a.kept_neurons, b.kept_neurons) and torch.equal(a.model.layers[0].mask, b.model.layers[0].mask)
    assert not torch.equal(a.kept_neurons, c.kept_neurons) or not torch.equal(
        a.model.layers[0].mask, c.model.layers[0].mask
    )
    old = model.layers[0].weight_rec.detach()[a.kept_neurons][:, a.kept_neurons]
    kept = a.model.layers[0].mask
    torch.testing.assert_close(a.model.layers[0].weight_rec.detach()[kept], old[kept], rtol=0, atol=0)
    with pytest.raises(ConfigError) as info:
        random_prune(model, 0, generator=torch.Generator(), n_neurons=13)
    assert info.value.field == "n_neurons"


def _x(seed: int = 0, b: int = 4):
    return torch.rand(b, 30, 3, generator=torch.Generator().manual_seed(seed))


def test_firing_rates_is_the_mean_spike_count_per_step():
    model = _model()
    x = _x()
    spikes = model(x).layer_spikes[0]
    torch.testing.assert_close(firing_rates(model, x, 0), spikes.double().mean((0, 1)))
    batches = [(x[:2], torch.zeros(2)), (x[2:], torch.zeros(2))]  # (x, y) pairs, like a DataLoader
    torch.testing.assert_close(firing_rates(model, batches, 0), spikes.double().mean((0, 1)))
    with pytest.raises(ConfigError):
        firing_rates(model, [], 0)


def test_activity_pruning_removes_the_silent_neurons():
    model = _model()
    silent = torch.tensor([1, 4, 7])
    with torch.no_grad():
        model.layers[0].input.weight.abs_()
        model.layers[0].input.weight.mul_(3.0)
        model.layers[0].input.weight[silent] = -5.0  # strongly inhibited: never fire
    rates = firing_rates(model, _x(), 0)
    assert bool((rates[silent] == 0).all()) and bool((rates[rates != 0] > 0).all())
    for rounds in (1, 3):
        result = activity_prune(model, 0, _x(), 7, rounds=rounds)
        assert result.model.layers[0].size == 7 and len(result.history) == rounds + 1
        assert set(result.kept_neurons.tolist()).isdisjoint(silent.tolist())
    # round r keeps N − ⌈r (N − n) / R⌉ neurons: 10 − ⌈r·3/3⌉ = 9, 8, 7
    assert [e.neurons for e in result.history] == [10, 9, 8, 7]
    with pytest.raises(ConfigError) as info:
        activity_prune(model, 0, _x(), 0)
    assert info.value.field == "n_neurons"
