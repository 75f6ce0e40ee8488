"""Parity of hrsnn.metrics with NeuroBench (optional: skipped when ``neurobench`` is not installed).

NeuroBench sees a model through hooks on its ``nn.Linear``/``nn.RNNCellBase`` modules and on activation modules, so
it sees the input and readout projections of an RSNN but not the recurrent weight (applied inside the layer's
time loop): on feed-forward RSNNs every definition that both compute must agree exactly; on recurrent ones
NeuroBench's synaptic operations are ours without the recurrent projection. NeuroBench 2.3.0's connection sparsity
does not leave out self-connections (its issue #81), so it is compared on feed-forward networks only.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

pytest.importorskip("neurobench")
pytest.importorskip("snntorch")  # neurobench's metrics modules import it

from neurobench.metrics.static import ConnectionSparsity, Footprint, ParameterCount
from neurobench.metrics.workload import ActivationSparsity, SynapticOperations
from neurobench.models import NeuroBenchModel, TorchModel

from hrsnn.metrics import classical_macs, measure_efficiency
from hrsnn.network import RSNN, LayerConfig, NeuronConfig, ReadoutConfig, RSNNConfig


def _model(recurrent: bool, readout: str = "integrator") -> RSNN:
    """inputs 5 -> 6 LIF (feed-forward) -> 4 ALIF (recurrent or not) -> readout 3, with pruned weights."""
    config = RSNNConfig(
        n_inputs=5,
        n_outputs=3,
        layers=(
            LayerConfig(size=6, recurrent=False, neuron=NeuronConfig(kind="lif", b0=0.05)),
            LayerConfig(size=4, recurrent=recurrent, neuron=NeuronConfig(b0=0.05)),
        ),
        readout=ReadoutConfig(kind=readout, neuron=NeuronConfig(b0=0.05)),  # type: ignore[arg-type]
    )
    model = RSNN(config, seed=1)
    with torch.no_grad():
        model.layers[0].input.weight[0, :2] = 0.0
        model.layers[1].input.weight[:, 3] = 0.0
        model.readout.input.weight[1] = 0.0
        if recurrent:
            model.layers[1].mask[0, 1:] = False
    return model


def _inputs(binary: bool) -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    x = torch.rand(7, 20, 5, generator=g)
    return (x < 0.4).float() if binary else torch.where(x < 0.6, x, torch.zeros_like(x))


def _neurobench_synops(model: RSNN, x: torch.Tensor) -> dict[str, float]:
    nb = TorchModel(model)
    nb.register_hooks()
    try:
        return SynapticOperations()(nb, nb(x), (x, None))
    finally:
        nb.cleanup_hooks()


def _ours(report) -> dict[str, float]:
    return report.neurobench()["SynapticOperations"]


@pytest.mark.parametrize("readout", ["integrator", "alif"])
@pytest.mark.parametrize("binary", [True, False])
def test_synaptic_operations_match_neurobench_on_feed_forward_rsnn(binary, readout):
    model, x = _model(recurrent=False, readout=readout), _inputs(binary)
    report = measure_efficiency(model, x)
    assert report.binary_input is binary
    theirs, ours = _neurobench_synops(model, x), _ours(report)
    assert ours["Effective_ACs"] > 0 and (ours["Effective_MACs"] > 0) is not binary
    assert ours == pytest.approx(theirs, rel=1e-12)


def test_neurobench_misses_the_recurrent_projection():
    model, x = _model(recurrent=True), _inputs(True)
    report = measure_efficiency(model, x)
    rec = next(p for p in report.projections if p.name == "layers.1.recurrent")
    assert rec.effective_acs > 0
    theirs, ours = _neurobench_synops(model, x), _ours(report)
    assert ours["Effective_ACs"] - rec.effective_acs == pytest.approx(theirs["Effective_ACs"], rel=1e-12)
    assert ours["Dense"] - rec.dense == pytest.approx(theirs["Dense"], rel=1e-12)


def test_static_metrics_match_neurobench():
    feed_forward = _model(recurrent=False)
    report = measure_efficiency(feed_forward, _inputs(True))
    assert ConnectionSparsity()(TorchModel(feed_forward)) == round(report.connection_sparsity, 4)
    for model in (feed_forward, _model(recurrent=True, readout="alif")):  # masks are buffers: in the footprint
        report = measure_efficiency(model, _inputs(True))
        assert ParameterCount()(TorchModel(model)) == report.parameter_count
        assert Footprint()(TorchModel(model)) == report.footprint


class _SpikeProbe(nn.Module):
    """Identity module through which the spikes pass, so NeuroBench's activation hooks see them."""

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        return spikes


class _Probed(NeuroBenchModel):
    """The RSNN with every spiking population's output passed through a probe (NeuroBench's activation layers)."""

    def __init__(self, model: RSNN) -> None:
        super().__init__()
        self.net = nn.Module()
        self.net.rsnn = model
        self.net.probes = nn.ModuleList(_SpikeProbe() for _ in range(len(model.layers) + 1))
        self.add_activation_module(_SpikeProbe)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net.rsnn(x)
        spikes = [*out.layer_spikes] + ([] if out.output_spikes is None else [out.output_spikes])
        for probe, s in zip(self.net.probes, spikes, strict=False):
            probe(s)
        return out.readout

    def __net__(self) -> nn.Module:
        return self.net


@pytest.mark.parametrize("readout", ["integrator", "alif"])
def test_activation_sparsity_matches_neurobench(readout):
    model, x = _model(recurrent=True, readout=readout), _inputs(True)
    report = measure_efficiency(model, x)
    nb = _Probed(model)
    nb.register_hooks()
    try:
        theirs = ActivationSparsity()(nb, nb(x), (x, None))
    finally:
        nb.cleanup_hooks()
    assert 0 < report.activation_sparsity < 1
    assert report.activation_sparsity == pytest.approx(theirs, rel=1e-12)


class _CellNet(nn.Module):
    def __init__(self, cell: nn.Module) -> None:
        super().__init__()
        self.cell = cell


@pytest.mark.parametrize(("kind", "cell"), [("rnn", nn.RNNCell), ("gru", nn.GRUCell), ("lstm", nn.LSTMCell)])
def test_classical_macs_match_neurobench_recurrent_cells(kind, cell):
    n_x, n_h, batch, steps = 3, 5, 4, 6
    net = _CellNet(cell(n_x, n_h))
    nb = TorchModel(net)
    nb.register_hooks()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, steps, n_x, generator=g) + 0.1  # nonzero inputs and states: the dense case
    h, c = torch.rand(batch, n_h, generator=g) + 0.1, torch.rand(batch, n_h, generator=g) + 0.1
    with torch.no_grad():
        for t in range(steps):
            if kind == "lstm":
                h, c = net.cell(x[:, t], (h, c))
            else:
                h = net.cell(x[:, t], h)
    try:
        theirs = SynapticOperations()(nb, h, (x, None))
    finally:
        nb.cleanup_hooks()
    ops = classical_macs(kind, n_x, n_h, 1, steps)
    assert theirs["Effective_MACs"] == ops.layers[0].macs * steps
