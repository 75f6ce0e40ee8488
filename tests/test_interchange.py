"""NIR export / import (hrsnn.interchange): exact round trips, the documented mapping, refusals, peers, CLI."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import math
import subprocess
import sys
import warnings

import nir
import numpy as np
import pytest
import torch

from hrsnn.errors import ConfigError, DataFormatError, DataNotFoundError
from hrsnn.interchange import add_parser, from_nir, load_nir, save_nir, to_nir
from hrsnn.network import RSNN, RSNNConfig, load_model, save_model
from hrsnn.pruning.base import set_mask, shrink_layer

HAS_NIRTORCH = importlib.util.find_spec("nirtorch") is not None  # both peers' NIR importers run on nirtorch
HAS_SNNTORCH = HAS_NIRTORCH and importlib.util.find_spec("snntorch") is not None
HAS_NORSE = HAS_NIRTORCH and importlib.util.find_spec("norse") is not None


@pytest.fixture(autouse=True)
def _no_grad():
    with torch.no_grad():
        yield


def _layer(size: int, kind: str, *, recurrent: bool = True, **neuron: object) -> dict:
    tau = {"dist": "uniform", "low": 2.0, "high": 30.0}
    return {
        "size": size,
        "recurrent": recurrent,
        "neuron": {"kind": kind, "tau_m": tau, **neuron},
        "connectivity": {"kind": "erdos_renyi", "p": 0.5},
    }


def _model(layers: list[dict], *, seed: int = 0, dtype: torch.dtype = torch.float64, **extra: object) -> RSNN:
    """A network with trained-looking parameters: nonzero biases and input weights strong enough to spike."""
    cfg = RSNNConfig.from_dict({"n_inputs": 3, "n_outputs": 2, "layers": layers, **extra})
    model = RSNN(cfg, seed=seed).to(dtype)
    g = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or name.endswith("bias_rec"):
                p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.05)
            elif name.endswith("input.weight"):
                p.mul_(3.0)
    return model


def _inputs(dtype: torch.dtype = torch.float64, t: int = 60, scale: float = 1.0) -> torch.Tensor:
    return torch.rand(3, t, 3, generator=torch.Generator().manual_seed(7), dtype=dtype) * scale


def _through_file(graph: nir.NIRGraph, tmp_path) -> nir.NIRGraph:
    path = tmp_path / "net.nir"
    nir.write(path, graph)
    return nir.read(path)


def _export(model: RSNN, **options: object) -> nir.NIRGraph:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return to_nir(model, **options)


def _assert_same_network(a: RSNN, b: RSNN) -> None:
    assert b.config == a.config
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert sa[key].dtype == sb[key].dtype, key
        assert torch.equal(sa[key], sb[key]), key
    x = _inputs(sa["readout.input.weight"].dtype)
    oa = a(x, generator=torch.Generator().manual_seed(3))
    ob = b(x, generator=torch.Generator().manual_seed(3))
    assert torch.equal(oa.readout, ob.readout)
    for sa_, sb_ in zip(oa.layer_spikes, ob.layer_spikes, strict=True):
        assert 0 < float(sa_.mean()) < 1  # the comparison sees spiking activity
        assert torch.equal(sa_, sb_)
    if oa.output_spikes is not None:
        assert torch.equal(oa.output_spikes, ob.output_spikes)


# ------------------------------------------------------------------------------------------------ round trips


def _pruned() -> RSNN:
    model = _model([_layer(10, "lif_hard")])
    mask = model.layers[0].mask.clone()
    mask[:, :4] = False  # prune every synapse from neurons 0-3
    weight = model.layers[0].weight_rec.detach().clone()
    weight[mask.nonzero()[0].tolist()] = 0.0  # a synapse whose weight is exactly 0 stays in the mask
    set_mask(model, 0, mask, weight)
    return shrink_layer(model, 0, torch.arange(10) != 7)


ROUND_TRIPS = {
    "lif_hard": lambda: _model([_layer(8, "lif_hard", hard_threshold=0.3)]),
    "alif": lambda: _model([_layer(8, "alif", b0=0.05, beta=1.5)]),
    "lif_soft": lambda: _model([_layer(8, "lif", b0=0.1, r_m=2.0)]),
    "pruned": _pruned,
    "multi_layer_alif_readout": lambda: _model(
        [_layer(7, "alif", dt=0.5), _layer(5, "lif", recurrent=False), _layer(6, "lif_hard", hard_threshold=0.2)],
        readout={"kind": "alif", "neuron": {"kind": "alif", "b0": 0.05}},
        state_init="uniform_spike",
        readout_init="uniform_spike",
    ),
    "float32_no_bias": lambda: _model(
        [{**_layer(6, "lif_hard"), "bias": False}, _layer(4, "alif")], dtype=torch.float32
    ),
}


@pytest.mark.parametrize("case", sorted(ROUND_TRIPS))
def test_round_trip_through_an_hdf5_file_is_exact(case, tmp_path):
    model = ROUND_TRIPS[case]()
    back = from_nir(_through_file(_export(model), tmp_path))
    _assert_same_network(model, back)


def test_round_trip_is_exact_for_every_discretisation_step_and_absorbed_gain(tmp_path):
    model = _model([_layer(6, "lif_hard"), _layer(5, "alif", dt=0.5)])
    for options in ({"discretisation": "euler", "dt": 1e-4}, {"dt": 2.5}):
        _assert_same_network(model, from_nir(_through_file(_export(model, **options), tmp_path)))
    # R folded into the weights: the same spikes, the gain stays in the weights on the way back
    model = _model([_layer(6, "lif_hard", hard_threshold=0.3)])
    back = from_nir(_through_file(_export(model, absorb_r=True, discretisation="euler", dt=1e-3), tmp_path))
    x = _inputs()
    assert torch.equal(model(x).layer_spikes[0], back(x).layer_spikes[0])
    torch.testing.assert_close(back(x).readout, model(x).readout, rtol=1e-12, atol=1e-12)
    assert not torch.equal(back.layers[0].input.weight, model.layers[0].input.weight)


def test_save_nir_and_load_nir(tmp_path):
    model = _model([_layer(5, "lif_hard")], dtype=torch.float32)
    save_nir(model, tmp_path / "m.nir")
    _assert_same_network(model, load_nir(tmp_path / "m.nir"))
    with pytest.raises(DataNotFoundError, match="absent.nir"):
        load_nir(tmp_path / "absent.nir")
    (tmp_path / "bad.nir").write_bytes(b"not hdf5")
    with pytest.raises(DataFormatError, match="bad.nir"):
        load_nir(tmp_path / "bad.nir")


def test_an_edited_time_constant_is_used_and_the_stale_raw_parameter_dropped():
    model = _model([_layer(4, "lif_hard")])
    graph = _export(model)
    lif = graph.nodes["layer0_lif"].nodes["lif"]
    lif.tau = lif.tau.copy()
    lif.tau[1] = 12.5
    back = from_nir(graph)
    tau = back.layers[0].tau_m.tau.detach()
    assert float(tau[1]) == pytest.approx(12.5, rel=1e-14)
    assert torch.equal(tau[[0, 2, 3]], model.layers[0].tau_m.tau.detach()[[0, 2, 3]])


# ------------------------------------------------------------------------------------------------ the mapping


def _two_neurons() -> RSNN:
    """Two hidden layers of two neurons with τ set by hand (raw parametrisation: τ = θ exactly)."""
    hard = {"kind": "lif_hard", "hard_threshold": 0.3, "parametrization": "raw"}
    alif = {"kind": "alif", "b0": 0.02, "beta": 1.5, "r_m": 2.0, "dt": 0.5, "parametrization": "raw"}
    cfg = RSNNConfig.from_dict(
        {
            "n_inputs": 1,
            "n_outputs": 1,
            "layers": [{"size": 2, "neuron": hard}, {"size": 2, "recurrent": False, "neuron": alif}],
            "readout": {"neuron": {"parametrization": "raw"}},
        }
    )
    model = RSNN(cfg).double()
    model.layers[0].tau_m.set_tau(torch.tensor([2.0, 10.0]))
    model.layers[1].tau_m.set_tau(torch.tensor([4.0, 8.0]))
    model.layers[1].tau_adp.set_tau(torch.tensor([100.0, 200.0]))
    model.readout.tau_m.set_tau(torch.tensor([5.0]))
    return model


def test_parameter_mapping_by_hand_exact_discretisation():
    graph = _export(_two_neurons(), dt=1.0)
    hard = graph.nodes["layer0_lif"].nodes["lif"]
    # tau = tau_m * dt / dt_hrsnn;  r = 1 / (1 - exp(-dt/tau)):  1/(1 - e^-0.5), 1/(1 - e^-0.1)
    np.testing.assert_array_equal(hard.tau, [2.0, 10.0])
    np.testing.assert_allclose(hard.r, [2.541494082536798, 10.508331944775044], rtol=1e-14)
    np.testing.assert_array_equal(hard.v_threshold, [0.3, 0.3])
    np.testing.assert_array_equal(hard.v_reset, [0.0, 0.0])
    np.testing.assert_array_equal(hard.v_leak, [0.0, 0.0])
    alif = graph.nodes["layer1_lif"]
    assert isinstance(alif, nir.LIF)
    # hrsnn step 0.5, export step 1: every time constant doubles; R = r_m; v_threshold = b0
    np.testing.assert_array_equal(alif.tau, [8.0, 16.0])
    np.testing.assert_array_equal(alif.metadata["hrsnn_tau_adp"], [200.0, 400.0])
    np.testing.assert_array_equal(alif.r, [2.0, 2.0])
    np.testing.assert_array_equal(alif.v_threshold, [0.02, 0.02])
    assert (alif.metadata["hrsnn_kind"], alif.metadata["hrsnn_beta"], alif.metadata["hrsnn_dt"]) == ("alif", 1.5, 0.5)
    assert alif.metadata["hrsnn_reset"] == "subtract_next_step"
    readout = graph.nodes["readout_li"]
    assert isinstance(readout, nir.LI)
    np.testing.assert_array_equal(readout.tau, [5.0])
    np.testing.assert_array_equal(readout.r, [1.0])
    assert (graph.metadata["dt"], graph.metadata["discretisation"]) == (1.0, "exp")


def test_parameter_mapping_by_hand_euler_discretisation():
    graph = _export(_two_neurons(), discretisation="euler", dt=1e-4)
    hard = graph.nodes["layer0_lif"].nodes["lif"]
    # tau = dt / (1 - alpha): 1e-4 / (1 - e^-0.5), 1e-4 / (1 - e^-0.1); R does not depend on the discretisation
    np.testing.assert_allclose(hard.tau, [2.541494082536798e-4, 1.0508331944775044e-3], rtol=1e-14)
    np.testing.assert_allclose(hard.r, [2.541494082536798, 10.508331944775044], rtol=1e-14)
    # ALIF at hrsnn step 0.5: 1e-4 / (1 - e^(-0.5/4)), and tau_adp: 1e-4 / (1 - e^(-0.5/100))
    np.testing.assert_allclose(graph.nodes["layer1_lif"].tau, [8.51041396e-4, 1.65052080e-3], rtol=1e-8)
    np.testing.assert_allclose(graph.nodes["layer1_lif"].metadata["hrsnn_tau_adp"][0], 2.00500417e-2, rtol=1e-8)


def _alpha(tau: np.ndarray, dt: float, discretisation: str) -> np.ndarray:
    return np.exp(-dt / tau) if discretisation == "exp" else 1.0 - dt / tau


def _next(graph: nir.NIRGraph, name: str) -> str:
    (target,) = [b for a, b in graph.edges if a == name]
    return target


def _simulate(graph: nir.NIRGraph, x: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """A reference NIR simulator for the exported layout, written from the module docstring: LIF/LI nodes with
    v_t = α v_{t-1} + (1 - α)(v_leak + R I_t) and a hard reset to v_reset, or the documented hrsnn ALIF node (and
    its β = 0 'lif' case) when the metadata says so. Returns the spikes of each layer and the readout (T, n)."""
    dt, disc = float(graph.metadata["dt"]), str(graph.metadata["discretisation"])
    chain, node = [], "input"  # (projection, population) pairs along the edges
    while not isinstance(graph.nodes[(node := _next(graph, node))], nir.Output):
        chain.append((node, _next(graph, node)))
        node = chain[-1][1]
    state: dict[str, dict[str, np.ndarray]] = {}
    spikes: dict[str, list[np.ndarray]] = {name: [] for _, name in chain}
    for x_t in x:
        h = x_t
        for proj_name, name in chain:
            proj, node, w_rec = graph.nodes[proj_name], graph.nodes[name], None
            if isinstance(node, nir.NIRGraph):
                node, w_rec = node.nodes["lif"], node.nodes["w_rec"].weight
            n = node.tau.size
            st = state.setdefault(name, {"v": np.zeros(n), "s": np.zeros(n), "eta": None})
            current = proj.weight @ h + (proj.bias if isinstance(proj, nir.Affine) else 0.0)
            if w_rec is not None:
                current = current + w_rec @ st["s"]
            alpha = _alpha(node.tau, dt, disc)
            v = alpha * st["v"] + (1 - alpha) * (node.v_leak + node.r * current)
            if isinstance(node, nir.LI):
                st["v"] = h = v
                continue
            meta = node.metadata
            if meta.get("hrsnn_kind", "lif_hard") == "lif_hard":
                s = (v > node.v_threshold).astype(float)
                v = np.where(s > 0, node.v_reset, v)
            else:
                theta = node.v_threshold
                if meta["hrsnn_kind"] == "alif":
                    rho = _alpha(meta["hrsnn_tau_adp"], dt, disc)
                    eta = node.v_threshold if st["eta"] is None else st["eta"]
                    st["eta"] = eta = rho * eta + (1 - rho) * st["s"]
                    theta = node.v_threshold + meta["hrsnn_beta"] * eta
                v = v - theta * st["s"] * meta["hrsnn_dt"]
                s = (v > theta).astype(float)
            st["v"], st["s"], h = v, s, s
            spikes[name].append(s)
    return [np.stack(spikes[name]) for _, name in chain[:-1]], state[chain[-1][1]]["v"]


@pytest.mark.parametrize("discretisation, dt", [("exp", 1.0), ("euler", 1e-4)])
def test_a_simulator_using_the_documented_discretisation_reproduces_hrsnn(discretisation, dt):
    model = _model([_layer(8, "lif_hard", hard_threshold=0.3), _layer(6, "alif", b0=0.05, dt=0.5), _layer(5, "lif")])
    graph = _export(model, discretisation=discretisation, dt=dt)
    x = _inputs()[0]
    out = model(x[None])
    layer_spikes, readout = _simulate(graph, x.numpy())
    for ours, theirs in zip(out.layer_spikes, layer_spikes, strict=True):
        assert 0 < float(ours.mean()) < 1
        np.testing.assert_array_equal(ours[0].numpy(), theirs)
    np.testing.assert_allclose(out.readout[0, -1].detach().numpy(), readout, rtol=1e-10, atol=1e-12)


def test_the_reference_simulator_notices_the_wrong_discretisation():
    model = _model([_layer(8, "lif_hard", hard_threshold=0.3)])
    graph = _export(model)
    graph.metadata["discretisation"] = "euler"  # read exp-written time constants as Euler's
    x = _inputs(scale=0.5)[0]
    assert not np.array_equal(model(x[None]).layer_spikes[0][0].numpy(), _simulate(graph, x.numpy())[0][0])


# ------------------------------------------------------------------------------------------------ ALIF / soft reset


def test_alif_export_warns_that_other_simulators_ignore_the_adaptation():
    model = _model([_layer(4, "alif")])
    with pytest.warns(UserWarning, match=r"layer0: adaptive threshold .*beta=1.8.* soft reset one step late"):
        graph = to_nir(model)
    assert graph.nodes["layer0_lif"].nodes["lif"].metadata["hrsnn_kind"] == "alif"


def test_alif_refuse_raises_naming_the_layer():
    model = _model([_layer(4, "lif_hard"), _layer(3, "alif")])
    with pytest.raises(ConfigError, match=r"alif='refuse'.*layer1 is an ALIF population"):
        to_nir(model, alif="refuse")
    with pytest.raises(ConfigError, match=r"alif='refuse'.*readout is an ALIF"):
        to_nir(_model([_layer(4, "lif_hard")], readout={"kind": "alif"}), alif="refuse")


def test_soft_reset_warns_or_is_refused():
    model = _model([_layer(4, "lif")])
    with pytest.warns(UserWarning, match="layer0: soft reset one step late"):
        to_nir(model)
    with pytest.raises(ConfigError, match=r"soft_reset='refuse'.*layer0 \(lif\)"):
        to_nir(model, soft_reset="refuse")


def test_hard_reset_network_exports_without_warning_unless_its_initial_state_is_random():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        to_nir(_model([_layer(4, "lif_hard")]), alif="refuse", soft_reset="refuse")
    with pytest.warns(UserWarning, match="state_init='uniform'"):
        to_nir(_model([_layer(4, "lif_hard")], state_init="uniform"))


def test_the_custom_alif_node_alone_restores_alif_without_the_graph_config():
    model = _model([_layer(6, "alif", b0=0.05, beta=1.2)])
    graph = _export(model)
    del graph.metadata["hrsnn_config"]  # only the nodes' metadata is left
    back = from_nir(graph, dtype="float64")
    neuron = back.config.layers[0].neuron
    assert (neuron.kind, neuron.beta, neuron.b0) == ("alif", 1.2, 0.05)
    x = _inputs()
    assert torch.equal(back(x).layer_spikes[0], model(x).layer_spikes[0])


@pytest.mark.parametrize(
    "option, value", [("alif", "drop"), ("soft_reset", "x"), ("discretisation", "rk4"), ("dt", 0.0)]
)
def test_bad_export_options_are_refused(option, value):
    with pytest.raises(ConfigError, match=option):
        to_nir(_model([_layer(3, "lif_hard")]), **{option: value})


# ------------------------------------------------------------------------------------------------ other tools' graphs


def _foreign(
    neuron: nir.NIRNode | None = None, *, rec: nir.NIRNode | None = None, readout: nir.NIRNode | None = None
) -> nir.NIRGraph:
    """Input(2) -> fc -> lif (3, optional w_rec loop) -> out_fc -> li (2) -> Output, snnTorch's parameters."""
    g = np.random.default_rng(0)
    dt, beta = 1e-4, np.array([0.9, 0.8, 0.95])
    tau = dt / (1 - beta)
    nodes = {
        "input": nir.Input(np.array([2])),
        "fc": nir.Affine(weight=g.normal(size=(3, 2)), bias=g.normal(size=3) * 0.1),
        "lif": neuron or nir.LIF(tau=tau, r=tau / dt, v_leak=np.zeros(3), v_threshold=np.full(3, 0.5)),
        "out_fc": nir.Affine(weight=g.normal(size=(2, 3)), bias=np.zeros(2)),
        "li": readout or nir.LI(tau=np.full(2, 1e-2), r=np.ones(2), v_leak=np.zeros(2)),
        "output": nir.Output(np.array([2])),
    }
    edges = [("input", "fc"), ("fc", "lif"), ("lif", "out_fc"), ("out_fc", "li"), ("li", "output")]
    if rec is not None:
        nodes["w_rec"] = rec
        edges += [("lif", "w_rec"), ("w_rec", "lif")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={})


def test_snntorch_style_graph_imports_as_a_hard_reset_layer():
    w_rec = np.arange(9.0).reshape(3, 3) / 10 - 0.4
    graph = _foreign(rec=nir.Affine(weight=w_rec, bias=np.array([0.1, -0.2, 0.3])))
    model = from_nir(graph, dt=1e-4, discretisation="euler", dtype="float64")
    layer = model.layers[0]
    assert (layer.config.neuron.kind, layer.config.neuron.hard_threshold, layer.config.recurrent) == (
        "lif_hard",
        0.5,
        True,
    )
    np.testing.assert_allclose(layer.tau_m.decay().detach().numpy(), [0.9, 0.8, 0.95], rtol=1e-12)
    # R (1 - α) = (τ/dt)(dt/τ) = 1: the weights arrive unchanged
    np.testing.assert_array_equal(layer.input.weight.detach().numpy(), graph.nodes["fc"].weight)
    np.testing.assert_array_equal(layer.weight_rec.detach().numpy(), np.where(w_rec != 0, w_rec, 0))
    np.testing.assert_array_equal(layer.mask.numpy(), w_rec != 0)
    np.testing.assert_array_equal(layer.bias_rec.detach().numpy(), [0.1, -0.2, 0.3])
    # the LI readout: tau 1e-2 at dt 1e-4 under Euler is α = 0.99
    np.testing.assert_allclose(model.readout.tau_m.decay().detach().numpy(), [0.99, 0.99], rtol=1e-12)


def test_a_gain_other_than_one_is_folded_into_the_incoming_weights():
    tau = np.array([2e-3, 4e-3, 5e-3])  # Norse-style: r = 1, Euler at dt = 1e-3 gives the gain dt/tau
    lif = nir.LIF(tau=tau, r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3))
    graph = _foreign(lif, rec=nir.Linear(weight=np.ones((3, 3))))
    model = from_nir(graph, dt=1e-3, discretisation="euler", dtype="float64")
    gain = np.array([0.5, 0.25, 0.2])
    layer = model.layers[0]
    np.testing.assert_allclose(layer.input.weight.detach().numpy(), graph.nodes["fc"].weight * gain[:, None])
    np.testing.assert_allclose(layer.input.bias.detach().numpy(), graph.nodes["fc"].bias * gain)
    np.testing.assert_allclose(layer.weight_rec.detach().numpy(), np.ones((3, 3)) * gain[:, None])
    np.testing.assert_array_equal(layer.bias_rec.detach().numpy(), np.zeros(3))


def _lif(**fields: object) -> nir.LIF:
    base = {"tau": np.full(3, 1e-3), "r": np.full(3, 10.0), "v_leak": np.zeros(3), "v_threshold": np.ones(3)}
    return nir.LIF(**{**base, **fields})


def _two_stage_recurrent_readout() -> nir.NIRGraph:
    nodes = {
        "input": nir.Input(np.array([2])),
        "fc": nir.Linear(weight=np.ones((3, 2))),
        "lif": _lif(),
        "fc2": nir.Linear(weight=np.ones((3, 3))),
        "lif2": _lif(),
        "w": nir.Linear(weight=np.ones((3, 3))),
        "output": nir.Output(np.array([3])),
    }
    edges = [("input", "fc"), ("fc", "lif"), ("lif", "fc2"), ("fc2", "lif2"), ("lif2", "w"), ("w", "lif2")]
    return nir.NIRGraph(nodes=nodes, edges=[*edges, ("lif2", "output")], metadata={})


BAD_GRAPHS = {
    "cuba": (
        lambda: _foreign(
            nir.CubaLIF(
                tau_syn=np.ones(3), tau_mem=np.ones(3), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3)
            )
        ),
        r"node 'lif'=.*CubaLIF.*synaptic current",
    ),
    "if": (lambda: _foreign(nir.IF(r=np.ones(3), v_threshold=np.ones(3))), r"node 'lif'=.*'IF'.*leak"),
    "v_reset": (lambda: _foreign(_lif(v_reset=np.full(3, 0.2))), r"node 'lif'=.*v_reset=0.2.*needs 0"),
    "v_leak": (lambda: _foreign(_lif(v_leak=np.array([0.0, 0.1, 0.0]))), r"node 'lif'=.*v_leak=0.1"),
    "thresholds": (lambda: _foreign(_lif(v_threshold=np.array([1.0, 2.0, 1.0]))), r"node 'lif'=.*one value"),
    "tau_below_dt": (lambda: _foreign(_lif(tau=np.full(3, 1e-5))), r"node 'lif'=.*tau=1e-05.*> dt=0.0001"),
    "no_readout": (
        lambda: nir.NIRGraph(
            nodes={
                "input": nir.Input(np.array([2])),
                "fc": nir.Linear(weight=np.ones((3, 2))),
                "lif": _lif(),
                "w": nir.Linear(weight=np.ones((3, 3))),
                "output": nir.Output(np.array([3])),
            },
            edges=[("input", "fc"), ("fc", "lif"), ("lif", "w"), ("w", "lif"), ("lif", "output")],
            metadata={},
        ),
        r"graph=.*1 population.*spiking layers and then a readout",
    ),
    "recurrent_readout": (
        lambda: _two_stage_recurrent_readout(),
        r"node 'lif2'=.*readout .the last population. is feed-forward",
    ),
    "li_hidden": (lambda: _foreign(nir.LI(tau=np.ones(3), r=np.ones(3), v_leak=np.zeros(3))), r"node 'lif'=.*LI"),
    "scale_projection": (
        lambda: _foreign(readout=nir.Scale(scale=np.ones(2))),
        r"node 'li'=.*Scale.*LIF .spiking layer. or LI",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_GRAPHS))
def test_graphs_that_do_not_fit_are_refused_naming_the_node(case):
    build, message = BAD_GRAPHS[case]
    with pytest.raises(ConfigError, match=message):
        from_nir(build(), dt=1e-4, discretisation="euler")


def test_a_branching_graph_is_refused_naming_the_node():
    graph = _foreign()
    graph.nodes["extra"] = nir.Affine(weight=np.ones((2, 2)), bias=np.zeros(2))
    graph.edges.append(("input", "extra"))
    with pytest.raises(ConfigError, match=r"node 'input'=.*2 outgoing edges"):
        from_nir(graph, dt=1e-4)


def test_a_foreign_graph_needs_its_step():
    with pytest.raises(ConfigError, match=r"dt=None.*pass the dt"):
        from_nir(_foreign())


# ------------------------------------------------------------------------------------------------ peers


def _without_readout(graph: nir.NIRGraph) -> nir.NIRGraph:
    """The graph cut after the last hidden layer (snnTorch cannot map LI; Norse 1.1 skips LI silently)."""
    last = [k for k in graph.nodes if k.startswith("layer") and k.endswith("_lif")][-1]
    nodes = {k: v for k, v in graph.nodes.items() if not k.startswith("readout") and k != "output"}
    nodes["output"] = nir.Output(np.array([nodes[last].output_type["output"][0]]))
    edges = [e for e in graph.edges if e[1] in nodes and e[0] in nodes] + [(last, "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=dict(graph.metadata))


def _step_through(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Run an imported nirtorch module one step at a time, carrying its state; spikes (B, T, N)."""
    state, out = None, []
    for x_t in x.unbind(1):
        y, state = net(x_t) if state is None else net(x_t, state)
        out.append(y)
    return torch.stack(out, 1).detach()


def _peer_model() -> RSNN:
    """Pruned recurrent hard-reset network, heterogeneous τ, nonzero biases, float32 (the peers' dtype)."""
    model = _model([_layer(12, "lif_hard", hard_threshold=0.5)], dtype=torch.float32, seed=4)
    mask = model.layers[0].mask.clone()
    mask[:, ::3] = False
    return set_mask(model, 0, mask)


@pytest.mark.skipif(not HAS_SNNTORCH, reason="snntorch (with nirtorch) is not installed")
def test_snntorch_reproduces_the_spikes_of_an_euler_export(tmp_path):
    from snntorch.import_nir import import_from_nir

    model = _peer_model()
    graph = _through_file(to_nir(model, discretisation="euler", dt=1e-4), tmp_path)  # snnTorch's fixed step
    with contextlib.redirect_stdout(io.StringIO()):
        net = import_from_nir(_without_readout(graph))
    x = _inputs(torch.float32, t=80, scale=0.5)
    ours = model(x).layer_spikes[0]
    assert 0.02 < float(ours.mean()) < 0.5
    assert torch.equal(_step_through(net, x), ours)
    # the regime is sensitive: read with exp's α the same τ give other spikes
    with contextlib.redirect_stdout(io.StringIO()):
        wrong = import_from_nir(_without_readout(to_nir(model, discretisation="exp", dt=1e-4)))
    assert not torch.equal(_step_through(wrong, x), ours)


@pytest.mark.skipif(not HAS_SNNTORCH, reason="snntorch (with nirtorch) is not installed")
def test_snntorch_export_imports_with_the_same_spikes():
    import snntorch as snn
    from snntorch import utils
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)
    hidden = snn.RLeaky(
        beta=torch.rand(8) * 0.5 + 0.45, all_to_all=True, linear_features=8, reset_mechanism="zero",
        init_hidden=True, reset_delay=False, threshold=0.5,
    )  # fmt: skip
    out = snn.Leaky(
        beta=torch.full((2,), 0.8), threshold=torch.full((2,), 0.5), reset_mechanism="zero", init_hidden=True,
        reset_delay=False, output=True,
    )  # fmt: skip
    net = torch.nn.Sequential(torch.nn.Linear(3, 8), hidden, torch.nn.Linear(8, 2), out)
    with contextlib.redirect_stdout(io.StringIO()):
        graph = export_to_nir(net, torch.zeros(3))
    model = from_nir(graph, dt=1e-4, discretisation="euler")
    x = _inputs(torch.float32, t=50, scale=2.0)
    utils.reset(net)
    h_spikes, o_spikes = [], []
    for x_t in x.unbind(1):
        h = hidden(net[0](x_t))
        o_spikes.append(out(net[2](h))[0])
        h_spikes.append(h)
    result = model(x)
    assert 0 < float(result.layer_spikes[0].mean()) < 1
    assert torch.equal(result.layer_spikes[0], torch.stack(h_spikes, 1).detach())
    assert torch.equal(result.output_spikes, torch.stack(o_spikes, 1).detach())


@pytest.mark.skipif(not HAS_NORSE, reason="norse (with nirtorch) is not installed")
def test_norse_reproduces_the_spikes_of_an_euler_export_with_absorbed_gain(tmp_path):
    import norse.torch as norse

    model = _peer_model()
    graph = _through_file(to_nir(model, discretisation="euler", dt=1e-3, absorb_r=True), tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # norse 1.1 calls nirtorch.load
        net = norse.from_nir(_without_readout(graph), dt=1e-3)
    x = _inputs(torch.float32, t=80, scale=0.5)
    ours = model(x).layer_spikes[0]
    assert 0.02 < float(ours.mean()) < 0.5
    assert torch.equal(_step_through(net, x), ours)


# ------------------------------------------------------------------------------------------------ CLI


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="hrsnn")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.func(args)


def test_cli_export_and_import_round_trip(tmp_path, capsys):
    model = _model([_layer(5, "alif")], dtype=torch.float32)
    save_model(model, tmp_path / "m.safetensors")
    assert _cli("nir", "export", str(tmp_path / "m.safetensors"), str(tmp_path / "m.nir")) == 0
    out, err = capsys.readouterr()
    assert "wrote" in out and "m.nir" in out
    assert err.startswith("hrsnn: warning: NIR cannot express") and "layer0: adaptive threshold" in err
    assert _cli("nir", "import", str(tmp_path / "m.nir"), str(tmp_path / "back.safetensors")) == 0
    assert "alif(5)" in capsys.readouterr().out
    _assert_same_network(model, load_model(tmp_path / "back.safetensors"))


def test_cli_export_refuses_alif_on_request(tmp_path):
    save_model(_model([_layer(5, "alif")], dtype=torch.float32), tmp_path / "m.safetensors")
    with pytest.raises(ConfigError, match="alif='refuse'"):
        _cli("nir", "export", str(tmp_path / "m.safetensors"), str(tmp_path / "m.nir"), "--alif", "refuse")
    assert not (tmp_path / "m.nir").exists()


def test_cli_euler_export_for_snntorch_and_import_with_a_step(tmp_path):
    model = _model([_layer(4, "lif_hard")], dtype=torch.float32)
    save_model(model, tmp_path / "m.safetensors")
    args = ["--discretisation", "euler", "--dt", "1e-4", "--absorb-r"]
    assert _cli("nir", "export", str(tmp_path / "m.safetensors"), str(tmp_path / "m.nir"), *args) == 0
    graph = nir.read(tmp_path / "m.nir")
    assert (float(graph.metadata["dt"]), str(graph.metadata["discretisation"])) == (1e-4, "euler")
    np.testing.assert_array_equal(graph.nodes["layer0_lif"].nodes["lif"].r, np.ones(4))
    assert _cli("nir", "import", str(tmp_path / "m.nir"), str(tmp_path / "b.safetensors")) == 0
    back = load_model(tmp_path / "b.safetensors")
    assert back.config.layers[0].neuron.kind == "lif_hard"
    torch.testing.assert_close(back.layers[0].tau_m.decay(), model.layers[0].tau_m.decay())


def test_registering_the_cli_does_not_import_torch():
    code = (
        "import argparse, sys; from hrsnn.interchange import add_parser; "
        "add_parser(argparse.ArgumentParser().add_subparsers()); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_decay_mapping_matches_hrsnn_alpha():
    """The exported τ gives, under each discretisation, exactly hrsnn's per-step decay (to float64 rounding)."""
    model = _model([_layer(6, "lif_hard")])
    alpha = model.layers[0].tau_m.decay().detach().numpy()
    for disc, dt in (("exp", 1.0), ("exp", 0.25), ("euler", 1e-4)):
        tau = _export(model, discretisation=disc, dt=dt).nodes["layer0_lif"].nodes["lif"].tau
        np.testing.assert_allclose(_alpha(tau, dt, disc), alpha, rtol=1e-14)
    assert math.isclose(float(alpha[0]), math.exp(-1 / float(model.layers[0].tau_m.tau[0])), rel_tol=1e-15)
