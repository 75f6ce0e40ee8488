"""Efficiency accounting (hrsnn.metrics): operation counts by hand on tiny networks with known spikes and masks,
classical RNN/GRU/LSTM counts by hand, energy by hand."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from hrsnn.errors import ConfigError, DataNotFoundError
from hrsnn.metrics import (
    ENERGY_CONSTANTS,
    FLOAT32_45NM,
    INT32_45NM,
    EnergyConstants,
    classical_macs,
    compare,
    count_from_spikes,
    energy,
    energy_constants,
    format_table,
    measure_efficiency,
)
from hrsnn.network import RSNN, LayerConfig, NeuronConfig, ReadoutConfig, RSNNConfig
from hrsnn.tasks.base import SequenceDataset

NAN = float("nan")

# The hand network: 2 inputs -> 3 recurrent neurons -> 2 readout units.
#   input weight: input 0 reaches neurons 0 and 1 (fan-out 2), input 1 reaches neuron 1 (fan-out 1)
#   recurrent (post x pre), mask without autapses and without 0 -> 2; weight 2 <- 1 is allowed but pruned to 0:
#       fan-out of neuron 0: {1, 2} = 2, neuron 1: {0} = 1 (2 <- 1 is zero), neuron 2: {1} = 1
#       NaN at the masked position 0 <- 2 and 9s on the (masked) diagonal never count
#   readout: neuron 0 -> unit 0 (fan-out 1), neuron 1 -> nothing (0), neuron 2 -> both units (2)
W_IN = [[1.0, 0.0], [0.5, -1.0], [0.0, 0.0]]
MASK = [[0, 1, 0], [1, 0, 1], [1, 1, 0]]
W_REC = [[9.0, 2.0, NAN], [3.0, 9.0, 4.0], [5.0, 0.0, 9.0]]
W_OUT = [[1.0, 0.0, 2.0], [0.0, 0.0, -1.0]]
# one sample, 4 steps
X = [[1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [0.0, 1.0]]  # input ops per step: 2, 3, 0, 1 -> 6
S = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 0.0, 1.0]]
# recurrent ops use s_{t-1} (s_{-1} = 0): 0, 2, 1, 3 -> 6; readout ops use s_t: 1, 0, 3, 2 -> 6


def _hand_model(kind: str = "alif", readout: str = "integrator", dt: float = 1.0) -> RSNN:
    neuron = NeuronConfig(kind=kind, dt=dt)  # type: ignore[arg-type]
    config = RSNNConfig(
        n_inputs=2,
        n_outputs=2,
        layers=(LayerConfig(size=3, neuron=neuron),),
        readout=ReadoutConfig(kind=readout, neuron=NeuronConfig(kind="alif")),  # type: ignore[arg-type]
    )
    model = RSNN(config)
    layer = model.layers[0]
    with torch.no_grad():
        layer.input.weight.copy_(torch.tensor(W_IN))
        layer.input.bias.copy_(torch.tensor([0.1, 0.0, 0.0]))
        layer.mask.copy_(torch.tensor(MASK, dtype=torch.bool))
        layer.weight_rec.copy_(torch.tensor(W_REC))
        layer.bias_rec.copy_(torch.tensor([0.0, 0.0, -0.2]))  # folded biases: 2 neurons nonzero
        model.readout.input.weight.copy_(torch.tensor(W_OUT))
        model.readout.input.bias.copy_(torch.tensor([0.0, 0.3]))  # 1 unit nonzero
    return model


def _x() -> torch.Tensor:
    return torch.tensor([X])


def _s() -> torch.Tensor:
    return torch.tensor([S])


def _by_name(report):
    return {p.name: p for p in report.projections}


# ------------------------------------------------------------------------------------------------ synaptic ops


def test_hand_counted_synaptic_operations():
    report = count_from_spikes(_hand_model(), _x(), [_s()])
    rows = _by_name(report)
    assert list(rows) == ["layers.0.input", "layers.0.recurrent", "readout.input"]
    assert [rows[n].source for n in rows] == ["input", "layers.0", "layers.0"]
    assert [rows[n].n_synapses for n in rows] == [3, 4, 3]
    assert rows["layers.0.input"].profile == (2.0, 3.0, 0.0, 1.0)
    assert rows["layers.0.recurrent"].profile == (0.0, 2.0, 1.0, 3.0)
    assert rows["readout.input"].profile == (1.0, 0.0, 3.0, 2.0)
    assert [rows[n].effective_acs for n in rows] == [6.0, 6.0, 6.0]
    assert [rows[n].effective_macs for n in rows] == [0.0, 0.0, 0.0]
    assert [rows[n].dense for n in rows] == [4 * 2 * 3, 4 * 3 * 3, 4 * 3 * 2]
    assert report.binary_input
    assert report.synaptic_acs == 18.0 and report.synaptic_macs == 0.0 and report.dense == 84.0
    assert report.profile == (3.0, 5.0, 4.0, 6.0)


def test_pruned_synapse_is_not_counted():
    model = _hand_model()
    with torch.no_grad():
        model.layers[0].mask[1, 0] = False  # prune 1 <- 0: neuron 0 spikes at t=0 and t=2, delivered at t=1, t=3
        model.readout.input.weight[0, 2] = 0.0  # prune readout 0 <- 2: neuron 2 spikes at t=2 and t=3
    rows = _by_name(count_from_spikes(model, _x(), [_s()]))
    assert rows["layers.0.recurrent"].effective_acs == 6.0 - 2.0
    assert rows["layers.0.recurrent"].profile == (0.0, 1.0, 1.0, 2.0)
    assert rows["readout.input"].effective_acs == 6.0 - 2.0
    assert rows["layers.0.recurrent"].dense == 36.0  # dense ignores pruning


def test_silent_neuron_costs_no_synaptic_operation():
    spikes = _s()
    spikes[..., 2] = 0.0  # neuron 2 never spikes: its recurrent fan-out 1 (t=3) and readout fan-out 2 (t=2, t=3) vanish
    rows = _by_name(count_from_spikes(_hand_model(), _x(), [spikes]))
    assert rows["layers.0.recurrent"].effective_acs == 6.0 - 1.0
    assert rows["readout.input"].effective_acs == 6.0 - 4.0


def test_recurrent_weight_nan_outside_the_mask_and_masked_diagonal_never_count():
    rows = _by_name(count_from_spikes(_hand_model(), _x(), [_s()]))
    rec = rows["layers.0.recurrent"]
    assert rec.n_synapses == 4 and rec.n_possible == 6 and rec.n_zero == 2
    assert rec.connection_sparsity == pytest.approx(2 / 6)


def test_analog_input_costs_macs_and_binary_input_is_checked():
    model = _hand_model()
    x = torch.tensor([[[0.5, 0.0], [1.0, 0.3], [0.0, 0.0], [0.0, -2.0]]])  # same nonzero pattern as X
    report = count_from_spikes(model, x, [_s()])
    rows = _by_name(report)
    assert not report.binary_input and not rows["layers.0.input"].event_driven
    assert (rows["layers.0.input"].effective_acs, rows["layers.0.input"].effective_macs) == (0.0, 6.0)
    assert report.counts(dense=True)[1] == report.neuron_macs + 24.0  # the dense input ops are MACs
    with pytest.raises(ConfigError, match="binary_input"):
        count_from_spikes(model, x, [_s()], binary_input=True)
    forced = _by_name(count_from_spikes(model, _x(), [_s()], binary_input=False))["layers.0.input"]
    assert (forced.effective_acs, forced.effective_macs) == (0.0, 6.0)


def test_analog_values_are_detected_even_where_they_cost_nothing():
    model = _hand_model()
    with torch.no_grad():
        model.layers[0].input.weight[:, 1] = 0.0  # input 1 reaches nobody
    x = torch.tensor([[[1.0, 0.5], [1.0, 0.25], [0.0, 0.0], [0.0, 0.5]]])
    report = count_from_spikes(model, x, [_s()])
    assert not report.binary_input
    assert _by_name(report)["layers.0.input"].effective_macs == 2 * 2.0  # input 0 at t=0, 1 (fan-out 2)


def test_ternary_events_count_as_accumulates():
    x = torch.tensor([[[-1.0, 0.0], [1.0, -1.0], [0.0, 0.0], [0.0, 1.0]]])
    report = count_from_spikes(_hand_model(), x, [_s()])
    assert report.binary_input
    assert _by_name(report)["layers.0.input"].effective_acs == 6.0


def test_real_valued_initial_spikes_cost_macs():
    initial = torch.tensor([[0.5, 0.0, 1.0]])  # the uniform_spike scheme: s_0 = u_0, real-valued
    report = count_from_spikes(_hand_model(), _x(), [_s()], initial_spikes=[initial])
    rec = _by_name(report)["layers.0.recurrent"]
    # step 0 now carries 0.5 from neuron 0 (fan-out 2: MACs) and 1 from neuron 2 (fan-out 1: an AC)
    assert (rec.effective_acs, rec.effective_macs) == (6.0 + 1.0, 2.0)
    assert rec.profile == (3.0, 2.0, 1.0, 3.0)
    hidden = report.populations[0]
    # ALIF spike-triggered ops (2 per previous spike): 4 unit spikes + 1 -> 10 ACs; 0.5 -> 2 MACs
    assert (hidden.neuron_acs, hidden.neuron_macs) == (12 + 8 + 10, 48 + 2)


# ------------------------------------------------------------------------------------------------ neuron updates


@pytest.mark.parametrize(
    ("kind", "dt", "acs", "macs"),
    [
        # 3 neurons x 4 steps = 12 neuron-steps; 2 neurons with a nonzero bias -> 8 bias ACs;
        # 4 previous spikes (s_{-1}..s_2 = 0, 1, 1, 2)
        ("alif", 1.0, 12 + 8 + 2 * 4, 4 * 12),  # compare + bias + (trace add, reset) per spike; 4 MACs each step
        ("alif", 0.5, 12 + 8 + 4, 4 * 12 + 4),  # with dt != 1 the reset θ·dt is a MAC
        ("lif", 1.0, 12 + 8 + 4, 2 * 12),
        ("lif", 0.5, 12 + 8 + 4, 2 * 12),  # the LIF reset b0·dt is a constant: still an AC
        ("lif_hard", 1.0, 12 + 8, 12),
    ],
)
def test_neuron_update_operations_by_hand(kind, dt, acs, macs):
    report = count_from_spikes(_hand_model(kind, dt=dt), _x(), [_s()])
    hidden, readout = report.populations
    assert (hidden.name, hidden.kind, hidden.n_neurons) == ("layers.0", kind, 3)
    assert (hidden.neuron_acs, hidden.neuron_macs) == (acs, macs)
    assert (readout.kind, readout.spiking, readout.firing_rate) == ("integrator", False, None)
    assert (readout.neuron_acs, readout.neuron_macs) == (4.0, 2 * 2 * 4)  # 1 biased unit x 4 steps; 2 MACs


def test_spiking_readout_counts_its_spikes_and_updates():
    model = _hand_model(readout="alif")
    out = torch.tensor([[[0.0, 1.0], [0.0, 0.0], [1.0, 1.0], [0.0, 0.0]]])
    report = count_from_spikes(model, _x(), [_s()], output_spikes=out)
    readout = report.populations[1]
    assert (readout.kind, readout.spiking, readout.spikes) == ("alif", True, 3.0)
    assert readout.firing_rate == 3 / 8
    # 8 neuron-steps: compare 8 + bias 4; previous spikes (0, 1 at t=1, 2 at t=3) = 3 -> 6 ACs; 4 MACs per step
    assert (readout.neuron_acs, readout.neuron_macs) == (8 + 4 + 6, 32)
    assert report.activation_sparsity == pytest.approx(1 - (5 + 3) / (12 + 8))
    with pytest.raises(ConfigError, match="output_spikes"):
        count_from_spikes(model, _x(), [_s()])
    with pytest.raises(ConfigError, match="output_spikes"):
        count_from_spikes(_hand_model(), _x(), [_s()], output_spikes=out)


# ------------------------------------------------------------------------------------------------ statistics


def test_sparsities_rates_and_parameters_by_hand():
    report = count_from_spikes(_hand_model(), _x(), [_s()])
    assert report.populations[0].spikes == 5.0
    assert report.firing_rate == pytest.approx(5 / 12)
    assert report.activation_sparsity == pytest.approx(7 / 12)
    # zeros over possible connections: input 3/6, recurrent 2/6 (diagonal excluded), readout 3/6
    assert report.connection_sparsity == pytest.approx(8 / 18)
    assert report.n_synapses == 10
    # W_in 6 + b 3, W_rec 9 + b 3, τ_m 3 + τ_adp 3, readout W 6 + b 2 + τ 2; float32, plus a 9-byte bool mask
    assert report.parameter_count == 37
    assert report.footprint == 37 * 4 + 9


def test_counts_are_means_per_sample():
    x = torch.cat([_x(), torch.zeros(1, 4, 2)])
    spikes = torch.cat([_s(), torch.zeros(1, 4, 3)])  # a second, silent sample
    report = count_from_spikes(_hand_model(), x, [spikes])
    assert report.n_samples == 2
    assert [p.effective_acs for p in report.projections] == [3.0, 3.0, 3.0]
    assert report.profile == (1.5, 2.5, 2.0, 3.0)
    assert report.populations[0].spikes == 2.5
    assert report.populations[0].neuron_acs == 12 + 8 + 4  # clock-driven ops per sample unchanged, spike ops halved
    assert report.firing_rate == pytest.approx(5 / 24)


# ------------------------------------------------------------------------------------------------ energy


def test_energy_by_hand():
    report = count_from_spikes(_hand_model(), _x(), [_s()])
    # effective: ACs 18 synaptic + 28 hidden + 4 readout = 50; MACs 48 + 16 = 64; dense ACs 84 + 32 = 116
    assert report.counts() == (50.0, 64.0)
    assert report.counts(dense=True) == (116.0, 64.0)
    e = energy(report, FLOAT32_45NM)
    assert e.pj == pytest.approx(50 * 0.9 + 64 * 4.6) and e.pj_per_step == pytest.approx((50 * 0.9 + 64 * 4.6) / 4)
    assert energy(report, INT32_45NM).pj == pytest.approx(50 * 0.1 + 64 * 3.2)
    assert energy(report, FLOAT32_45NM, dense=True).pj == pytest.approx(116 * 0.9 + 64 * 4.6)
    custom = EnergyConstants("mine", 1.0, 10.0)
    assert energy(report, custom).pj == 50 + 640
    d = report.to_dict()
    json.dumps(d)
    assert set(d["energy"]) == {"float32_45nm", "int32_45nm"}
    assert d["energy"]["int32_45nm"]["dense"]["pj"] == pytest.approx(116 * 0.1 + 64 * 3.2)
    assert d["neurobench"]["SynapticOperations"] == {"Effective_MACs": 0.0, "Effective_ACs": 18.0, "Dense": 84.0}
    assert "profile" not in d and report.to_dict(profiles=True)["profile"] == [3.0, 5.0, 4.0, 6.0]


def test_energy_constants_named_and_validated():
    assert (FLOAT32_45NM.e_ac_pj, FLOAT32_45NM.e_mac_pj) == (0.9, 4.6)
    assert (INT32_45NM.e_ac_pj, INT32_45NM.e_mac_pj) == (0.1, 3.2)
    assert energy_constants("int32_45nm") is INT32_45NM
    assert energy_constants({"name": "x", "e_ac_pj": 2, "e_mac_pj": 3}) == EnergyConstants("x", 2.0, 3.0)
    with pytest.raises(TypeError):
        ENERGY_CONSTANTS["mine"] = FLOAT32_45NM  # type: ignore[index]
    for bad in (0.0, -1.0, math.nan, math.inf, True, "1"):
        with pytest.raises(ConfigError, match="energy.e_mac_pj"):
            EnergyConstants("x", 1.0, bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="energy.name"):
        EnergyConstants("", 1.0, 1.0)
    with pytest.raises(ConfigError, match="unknown constant set"):
        energy_constants("float16_7nm")
    with pytest.raises(ConfigError, match="misses"):
        energy_constants({"name": "x", "e_ac_pj": 1.0})
    with pytest.raises(ConfigError, match="e_mac"):
        energy_constants({"name": "x", "e_ac_pj": 1.0, "e_mac": 2.0})


# ------------------------------------------------------------------------------------------------ classical


def test_classical_counts_by_hand():
    # N_x = 2, N_h = 3, N_out = 2, T = 4; readout every step: 6 MACs + 2 bias ACs
    rnn = classical_macs("rnn", 2, (3,), 2, 4)
    assert rnn.layers[0].macs == 3 * (2 + 3)
    assert (rnn.macs, rnn.acs, rnn.tanhs, rnn.sigmoids) == ((15 + 6) * 4, (3 + 2) * 4, 3 * 4, 0)
    gru = classical_macs("gru", 2, 3, 2, 4)
    # 3·3·5 = 45 matrix MACs + r⊙(·), (1−z)⊙n, z⊙h = 9; biases: r, z folded (6) + b_in, b_hn (6); 1 − z (3)
    assert (gru.layers[0].matrix_macs, gru.layers[0].elementwise_macs, gru.layers[0].acs) == (45, 9, 15)
    assert (gru.macs, gru.acs, gru.sigmoids, gru.tanhs) == ((54 + 6) * 4, (15 + 2) * 4, 6 * 4, 3 * 4)
    lstm = classical_macs("lstm", 2, 3, 2, 4)
    # 4·3·5 = 60 + f⊙c, i⊙g, o⊙tanh(c) = 9; 4 folded biases per unit = 12 ACs
    assert (lstm.layers[0].matrix_macs, lstm.layers[0].elementwise_macs, lstm.layers[0].acs) == (60, 9, 12)
    assert (lstm.macs, lstm.acs, lstm.sigmoids, lstm.tanhs) == ((69 + 6) * 4, (12 + 2) * 4, 9 * 4, 6 * 4)
    last = classical_macs("lstm", 2, 3, 2, 4, readout="last_step")
    assert (last.macs, last.acs) == (69 * 4 + 6, 12 * 4 + 2)
    plain = classical_macs("gru", 2, 3, 2, 4, bias=False)
    assert (plain.acs, plain.macs) == (3 * 4, (54 + 6) * 4)  # only 1 − z remains
    stacked = classical_macs("lstm", 2, (3, 4), 2, 4)
    assert [layer.matrix_macs for layer in stacked.layers] == [4 * 3 * (2 + 3), 4 * 4 * (3 + 4)]
    assert stacked.readout_macs == 4 * 2
    assert energy(lstm, FLOAT32_45NM).pj == pytest.approx(300 * 4.6 + 56 * 0.9)
    assert lstm.label() == "lstm 2→(3)→2"


@pytest.mark.parametrize(("kind", "module"), [("rnn", nn.RNN), ("gru", nn.GRU), ("lstm", nn.LSTM)])
def test_classical_parameters_and_matrix_macs_match_pytorch_modules(kind, module):
    rnn, readout = module(2, 3, num_layers=2), nn.Linear(3, 2)
    ops = classical_macs(kind, 2, (3, 3), 2, 5)
    assert ops.parameter_count == sum(p.numel() for p in [*rnn.parameters(), *readout.parameters()])
    weights = [p.numel() for name, p in rnn.named_parameters() if name.startswith("weight")]
    assert sum(layer.matrix_macs for layer in ops.layers) == sum(weights)  # one MAC per weight per step


def test_compare_gives_the_energy_ratio():
    report = count_from_spikes(_hand_model(), _x(), [_s()])
    lstm = classical_macs("lstm", 2, 3, 2, 4)
    comp = compare(report, lstm, INT32_45NM)
    assert comp.ratio == pytest.approx((300 * 3.2 + 56 * 0.1) / (50 * 0.1 + 64 * 3.2))
    assert comp.to_dict()["classical"]["pj"] == pytest.approx(300 * 3.2 + 56 * 0.1)
    with pytest.raises(ConfigError, match="classical.n_steps"):
        compare(report, classical_macs("lstm", 2, 3, 2, 5))


def test_classical_errors_name_the_argument():
    with pytest.raises(ConfigError, match="kind"):
        classical_macs("transformer", 2, 3, 2, 4)  # type: ignore[arg-type]
    for field, args in [
        ("n_inputs", (0, 3, 2, 4)),
        ("hidden_sizes", (2, (3, 0), 2, 4)),
        ("hidden_sizes", (2, (), 2, 4)),
        ("n_outputs", (2, 3, -1, 4)),
        ("n_steps", (2, 3, 2, 0)),
    ]:
        with pytest.raises(ConfigError, match=field):
            classical_macs("gru", *args)
    with pytest.raises(ConfigError, match="readout"):
        classical_macs("gru", 2, 3, 2, 4, readout="sometimes")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ end to end


def _driven_model(bias: torch.Tensor, readout_zero: bool = True) -> RSNN:
    """4 LIF neurons, recurrent without autapses, one masked and one zero-weight synapse; bias drives spiking."""
    config = RSNNConfig(
        n_inputs=2, n_outputs=2, layers=(LayerConfig(size=4, neuron=NeuronConfig(kind="lif", b0=0.05)),)
    )
    model = RSNN(config, seed=3)
    layer = model.layers[0]
    with torch.no_grad():
        layer.input.bias.copy_(bias)
        layer.mask[0, 1] = False
        layer.weight_rec[2, 3] = 0.0
        if readout_zero:
            model.readout.input.weight[1, 0] = 0.0
    return model


def test_every_neuron_spiking_every_step_end_to_end():
    model = _driven_model(torch.full((4,), 1000.0))
    x = torch.zeros(2, 5, 2)
    report = measure_efficiency(model, x)
    assert report.firing_rate == 1.0 and report.activation_sparsity == 0.0
    rows = _by_name(report)
    assert rows["layers.0.input"].effective_acs == 0.0  # all-zero inputs
    assert rows["layers.0.recurrent"].effective_acs == (5 - 1) * (12 - 2)  # s_{-1} = 0, then 10 synapses per step
    assert rows["readout.input"].effective_acs == 5 * (8 - 1)


def test_silent_network_end_to_end():
    silent = measure_efficiency(_driven_model(torch.full((4,), -1000.0)), torch.zeros(3, 5, 2))
    assert silent.synaptic_acs == 0.0 and silent.synaptic_macs == 0.0
    assert silent.firing_rate == 0.0 and silent.activation_sparsity == 1.0
    assert silent.populations[0].neuron_macs == 2 * 4 * 5  # state updates still run every step
    bias = torch.tensor([-1000.0, 1000.0, 1000.0, 1000.0])
    one_silent = measure_efficiency(_driven_model(bias), torch.zeros(1, 5, 2))
    # neuron 0 projects to 1, 2 and 3 (the masked 0 <- 1 and the zero 2 <- 3 are other neurons' synapses):
    # 10 - 3 recurrent synapses; its one readout synapse (0 -> unit 0; 0 -> unit 1 is pruned): 7 - 1
    rows = _by_name(one_silent)
    assert rows["layers.0.recurrent"].effective_acs == (5 - 1) * 7
    assert rows["readout.input"].effective_acs == 5 * 6


def test_measure_efficiency_counts_the_model_activity_with_its_initial_state():
    config = RSNNConfig(
        n_inputs=3,
        n_outputs=2,
        layers=(LayerConfig(size=5, neuron=NeuronConfig(b0=0.05)), LayerConfig(size=4, recurrent=False)),
        readout=ReadoutConfig(kind="alif", neuron=NeuronConfig(b0=0.05)),
        state_init="uniform_spike",
        readout_init="uniform_spike",
    )
    model = RSNN(config, seed=2)
    x = (torch.rand(6, 12, 3, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    model.train()
    report = measure_efficiency(model, x, batch_size=6, generator=torch.Generator().manual_seed(7))
    assert model.training  # mode restored
    state = model.initial_state(6, torch.Generator().manual_seed(7))
    with torch.no_grad():
        out = model(x, state)
    expected = count_from_spikes(
        model,
        x,
        out.layer_spikes,
        output_spikes=out.output_spikes,
        initial_spikes=[s.s for s in state.layers],
        initial_output_spikes=state.readout.s,
    )
    assert report == expected
    assert _by_name(report)["layers.0.recurrent"].effective_macs > 0  # the real-valued s_0 costs MACs
    assert report.populations[2].neuron_macs > 4 * 2 * 12  # and so do the readout's spike-triggered updates


def test_measure_efficiency_is_independent_of_batch_size_and_takes_data_sets():
    config = RSNNConfig(n_inputs=3, n_outputs=2, layers=(LayerConfig(size=6, neuron=NeuronConfig(b0=0.05)),))
    model = RSNN(config, seed=1)
    x = (torch.rand(7, 10, 3, generator=torch.Generator().manual_seed(1)) < 0.4).float()
    data = SequenceDataset(x, torch.zeros(7, dtype=torch.long), 1, "toy")
    whole = measure_efficiency(model, data, batch_size=7)
    assert whole.synaptic_acs > 0
    assert measure_efficiency(model, data, batch_size=2) == whole
    assert measure_efficiency(model, x, batch_size=3) == whole


def test_measure_efficiency_errors_name_the_argument():
    model = _hand_model()
    with pytest.raises(ConfigError, match="data.*empty"):
        measure_efficiency(model, SequenceDataset(torch.zeros(0, 4, 2), torch.zeros(0, dtype=torch.long), 1, "e"))
    with pytest.raises(ConfigError, match="3 channels"):
        measure_efficiency(model, torch.zeros(2, 4, 3))
    with pytest.raises(ConfigError, match="data"):
        measure_efficiency(model, [[0.0, 1.0]])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="batch_size"):
        measure_efficiency(model, torch.zeros(2, 4, 2), batch_size=0)
    with pytest.raises(ConfigError, match="binary_input"):
        measure_efficiency(model, torch.zeros(2, 4, 2), binary_input="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="generator"):
        measure_efficiency(model, torch.zeros(2, 4, 2), generator=7)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="model"):
        measure_efficiency(nn.Linear(2, 2), torch.zeros(2, 4, 2))  # type: ignore[arg-type]


def test_count_from_spikes_checks_shapes():
    model = _hand_model()
    with pytest.raises(ConfigError, match=r"layer_spikes\[0\]"):
        count_from_spikes(model, _x(), [torch.zeros(1, 4, 2)])
    with pytest.raises(ConfigError, match="layer_spikes"):
        count_from_spikes(model, _x(), _s())  # a tensor, not one per layer
    with pytest.raises(ConfigError, match=r"initial_spikes\[0\]"):
        count_from_spikes(model, _x(), [_s()], initial_spikes=[torch.zeros(3)])
    with pytest.raises(ConfigError, match="inputs"):
        count_from_spikes(model, torch.zeros(1, 4, 5), [_s()])
    with pytest.raises(ConfigError, match="inputs"):
        count_from_spikes(model, torch.full((1, 4, 2), NAN), [_s()])


def test_format_table_shows_dense_and_effective_counts_and_energy():
    report = count_from_spikes(_hand_model(), _x(), [_s()])
    text = format_table(report, classical=[classical_macs("lstm", 2, 3, 2, 4)])
    lines = text.splitlines()
    rec = next(line for line in lines if line.startswith("layers.0.recurrent"))
    assert rec.split() == ["layers.0.recurrent", "layers.0", "4", "0.3333", "36", "6", "0"]
    assert next(line for line in lines if line.startswith("float32_45nm")).split()[3:5] == ["339.4", "84.85"]
    assert next(line for line in lines if line.startswith("int32_45nm")).split()[3] == "209.8"
    lstm = next(line for line in lines if line.startswith("lstm"))
    assert f"{(300 * 4.6 + 56 * 0.9) / 339.4:,.1f}x" in lstm
    custom = format_table(report, constants=[EnergyConstants("mine", 1.0, 10.0)])
    assert "int32_45nm" not in custom and "690" in custom
    with pytest.raises(ConfigError, match="constants"):
        format_table(report, constants=[])


def _ecg():
    try:
        from hrsnn.tasks.base import resolve_data_dir

        root = resolve_data_dir(None)
    except DataNotFoundError:
        pytest.skip("shared data not available")
    if not (root / "srnn" / "ecg_nmi_state_dict.pt").is_file() or not (root / "qtdb" / "QTDB_test.mat").is_file():
        pytest.skip("SRNN ECG model or QTDB test set not available")
    from hrsnn.importers import import_srnn_ecg
    from hrsnn.tasks.ecg import load_qtdb

    return import_srnn_ecg(root / "srnn" / "ecg_nmi_state_dict.pt"), load_qtdb(root).test


def test_authors_ecg_model_on_the_whole_test_set():
    model, test = _ecg()
    report = measure_efficiency(model, test)
    assert (report.n_samples, report.n_steps) == (141, 1301)
    assert report.firing_rate == pytest.approx(0.2953, abs=5e-4)  # the data README's published figure
    assert report.binary_input  # spikes in {0, 1} plus the -1 end marker
    assert [p.n_synapses for p in report.projections] == [4 * 36, 36 * 36, 36 * 6]  # all-to-all, autapses included
    assert report.connection_sparsity == 0.0
    assert [p.kind for p in report.populations] == ["lif", "alif"]
