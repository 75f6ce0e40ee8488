"""Efficiency of trained models (what a run records) and the side-by-side comparison of runs."""

from __future__ import annotations

import pytest
import torch

from hrsnn.classical import ClassicalConfig, ClassicalRNN
from hrsnn.errors import ConfigError
from hrsnn.metrics import FLOAT32_45NM, INT32_45NM
from hrsnn.metrics.runs import RunEfficiency, efficiency_metrics, format_comparison, model_efficiency
from hrsnn.network import RSNN, LayerConfig, NeuronConfig, RSNNConfig


def _lstm_hand_count(n_x: int, n_h: int, n_out: int, t: int) -> tuple[int, int]:
    """(MACs, ACs) per sample of PyTorch's LSTM + a per-step linear readout, counted by hand.

    Per step: 4 gates × n_h × (n_x + n_h) weight MACs; c' = f⊙c + i⊙g and h' = o⊙tanh(c') are 3 n_h products
    (f⊙c folds its add into i⊙g's, so 3 MACs); each gate's two biases add once: 4 n_h ACs; readout n_out × n_h MACs
    plus n_out bias ACs.
    """
    macs = t * (4 * n_h * (n_x + n_h) + 3 * n_h + n_out * n_h)
    acs = t * (4 * n_h + n_out)
    return macs, acs


def test_classical_model_counts_and_recorded_energy_by_hand():
    model = ClassicalRNN(ClassicalConfig(kind="lstm", n_inputs=2, n_outputs=2, hidden_sizes=(3,)), seed=0)
    counts = model_efficiency(model, torch.zeros(5, 4, 2))
    macs, acs = _lstm_hand_count(2, 3, 2, 4)
    assert counts.counts() == (acs, macs)
    recorded = efficiency_metrics(counts)
    assert recorded["ops_steps"] == 4
    assert recorded["energy_pj.float32_45nm"] == pytest.approx(0.9 * acs + 4.6 * macs)
    assert recorded["energy_pj.int32_45nm"] == pytest.approx(0.1 * acs + 3.2 * macs)
    assert "synaptic_ops" not in recorded  # no spikes, no synaptic operations


def test_spiking_model_records_its_synaptic_operations():
    cfg = RSNNConfig(n_inputs=2, n_outputs=2, layers=(LayerConfig(size=3, neuron=NeuronConfig(b0=0.01)),))
    model = RSNN(cfg, seed=0)
    with torch.no_grad():  # every neuron spikes at every step: each spike reaches all its nonzero synapses
        model.layers[0].input.bias.fill_(10.0)
    x = torch.zeros(2, 5, 2)
    recorded = efficiency_metrics(model_efficiency(model, x))
    recurrent = int((model.layers[0].effective_recurrent_weight() != 0).sum())
    readout = int((model.readout.input.weight != 0).sum())
    # zero input costs nothing; recurrent ops use the previous step's spikes (4 of the 5 steps, zero initial state)
    assert recorded["synaptic_ops"] == pytest.approx(4 * recurrent + 5 * readout)


def test_comparison_gives_energy_multiples_of_the_first_run():
    x = torch.zeros(1, 10, 4)
    rnn = model_efficiency(ClassicalRNN(ClassicalConfig(kind="rnn", n_inputs=4, n_outputs=2, hidden_sizes=(8,))), x)
    lstm = model_efficiency(ClassicalRNN(ClassicalConfig(kind="lstm", n_inputs=4, n_outputs=2, hidden_sizes=(8,))), x)
    table = format_comparison([RunEfficiency("1 rnn", 0.5, rnn), RunEfficiency("2 lstm", None, lstm)])
    lines = table.splitlines()
    assert lines[0].split()[:5] == ["run", "test", "acc", "params", "ACs/step"]
    lstm_row = lines[3].split()
    ratio = (0.9 * lstm.acs + 4.6 * lstm.macs) / (0.9 * rnn.acs + 4.6 * rnn.macs)
    assert float(lstm_row[7]) == pytest.approx(ratio, rel=1e-2) and ratio > 3
    assert lines[2].split()[7] == "1"
    with pytest.raises(ConfigError, match="one length"):
        format_comparison([RunEfficiency("a", None, rnn), RunEfficiency("b", None, model_efficiency(
            ClassicalRNN(ClassicalConfig(kind="rnn", n_inputs=4, n_outputs=2)), torch.zeros(1, 3, 4)))])
    assert "int32_45nm nJ" in format_comparison([RunEfficiency("a", None, rnn)], (FLOAT32_45NM, INT32_45NM))
