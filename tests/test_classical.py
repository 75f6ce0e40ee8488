"""Classical baselines (hrsnn.classical): the PyTorch cell equations, training through the common trainer, TBPTT,
saving and loading."""

from __future__ import annotations

import json
import math

import pytest
import torch
from _helpers import toy_sequences

from hrsnn.classical import ClassicalConfig, ClassicalRNN, ClassicalState, LayerState
from hrsnn.errors import ConfigError, DataFormatError
from hrsnn.io import load_tensors, save_tensors
from hrsnn.models import SequenceModel, build_model, detach_state, load_model, save_model
from hrsnn.network import RSNN, LayerConfig, RSNNConfig
from hrsnn.objectives import make_objective
from hrsnn.training import TrainConfig, Trainer, evaluate


def _sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def _set(model: ClassicalRNN, values: dict[str, list]) -> None:
    with torch.no_grad():
        for name, value in values.items():
            model.get_parameter(name).copy_(torch.tensor(value))


def test_lstm_scalar_known_answer():
    """One input, one hidden unit, one output: the LSTM equations written out with math."""
    model = ClassicalRNN(ClassicalConfig("lstm", 1, 1, (1,)))
    w_ih, w_hh, b_ih, b_hh = [0.5, -0.3, 0.8, 0.2], [0.1, 0.4, -0.6, 0.3], [0.0, 1.0, 0.1, 0.0], [0.2, 0.0, 0.0, -0.1]
    _set(
        model,
        {
            "layers.0.weight_ih_l0": [[w] for w in w_ih],
            "layers.0.weight_hh_l0": [[w] for w in w_hh],
            "layers.0.bias_ih_l0": b_ih,
            "layers.0.bias_hh_l0": b_hh,
            "readout.weight": [[2.0]],
            "readout.bias": [-0.5],
        },
    )
    xs = [1.0, -0.5, 2.0]
    h, c, expected = 0.3, -0.2, []
    for x in xs:
        pre = [w_ih[k] * x + b_ih[k] + w_hh[k] * h + b_hh[k] for k in range(4)]
        i, f, g, o = _sigmoid(pre[0]), _sigmoid(pre[1]), math.tanh(pre[2]), _sigmoid(pre[3])
        c = f * c + i * g
        h = o * math.tanh(c)
        expected.append(2.0 * h - 0.5)
    state = ClassicalState((LayerState(torch.tensor([[0.3]]), torch.tensor([[-0.2]])),))
    out = model(torch.tensor(xs).reshape(1, 3, 1), state)
    torch.testing.assert_close(out.readout.flatten(), torch.tensor(expected))
    torch.testing.assert_close(out.state.layers[0].h, torch.tensor([[h]]))
    torch.testing.assert_close(out.state.layers[0].c, torch.tensor([[c]]))
    assert out.layer_spikes == () and out.output_spikes is None


def test_gru_scalar_known_answer():
    model = ClassicalRNN(ClassicalConfig("gru", 1, 1, (1,)))
    w_ih, w_hh, b_ih, b_hh = [0.7, -0.4, 0.9], [0.2, 0.5, -0.8], [0.1, 0.0, -0.2], [0.0, 0.3, 0.4]
    _set(
        model,
        {
            "layers.0.weight_ih_l0": [[w] for w in w_ih],
            "layers.0.weight_hh_l0": [[w] for w in w_hh],
            "layers.0.bias_ih_l0": b_ih,
            "layers.0.bias_hh_l0": b_hh,
            "readout.weight": [[-1.5]],
            "readout.bias": [0.25],
        },
    )
    xs = [0.5, 1.5, -1.0]
    h, expected = 0.0, []
    for x in xs:
        r = _sigmoid(w_ih[0] * x + b_ih[0] + w_hh[0] * h + b_hh[0])
        z = _sigmoid(w_ih[1] * x + b_ih[1] + w_hh[1] * h + b_hh[1])
        n = math.tanh(w_ih[2] * x + b_ih[2] + r * (w_hh[2] * h + b_hh[2]))  # r gates the recurrent term only
        h = (1 - z) * n + z * h
        expected.append(-1.5 * h + 0.25)
    out = model(torch.tensor(xs).reshape(1, 3, 1))  # default: the zero state
    torch.testing.assert_close(out.readout.flatten(), torch.tensor(expected))
    assert out.state.layers[0].c is None


def _cell_loop(model: ClassicalRNN, x: torch.Tensor, state: ClassicalState) -> tuple[torch.Tensor, ClassicalState]:
    """The PyTorch equations of each kind, step by step, from the model's parameters."""
    kind = model.config.kind
    h_seq = x
    final = []
    for i, st in enumerate(state.layers):
        p = {name.split(".")[-1]: v for name, v in model.layers[i].named_parameters()}
        h, c = st.h, st.c
        outs = []
        for x_t in h_seq.unbind(1):
            gi = x_t @ p["weight_ih_l0"].T + p["bias_ih_l0"]
            gh = h @ p["weight_hh_l0"].T + p["bias_hh_l0"]
            if kind == "lstm":
                i_g, f_g, g_g, o_g = (gi + gh).chunk(4, -1)
                c = torch.sigmoid(f_g) * c + torch.sigmoid(i_g) * torch.tanh(g_g)
                h = torch.sigmoid(o_g) * torch.tanh(c)
            elif kind == "gru":
                ir, iz, inn = gi.chunk(3, -1)
                hr, hz, hn = gh.chunk(3, -1)
                r, z = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
                h = (1 - z) * torch.tanh(inn + r * hn) + z * h
            else:
                h = torch.tanh(gi + gh)
            outs.append(h)
        h_seq = torch.stack(outs, 1)
        final.append(LayerState(h, c))
    readout = h_seq @ model.readout.weight.T + model.readout.bias
    return readout, ClassicalState(tuple(final))


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_two_layer_forward_equals_the_cell_equations(kind):
    model = ClassicalRNN(ClassicalConfig(kind, 3, 4, (5, 2)), seed=3).double()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 7, 3, generator=g, dtype=torch.float64)
    start = ClassicalState(
        tuple(
            LayerState(torch.randn(2, n, generator=g, dtype=torch.float64),
                       torch.randn(2, n, generator=g, dtype=torch.float64) if kind == "lstm" else None)
            for n in (5, 2)
        )
    )  # fmt: skip
    out = model(x, start)
    readout, final = _cell_loop(model, x, start)
    torch.testing.assert_close(out.readout, readout)
    for got, want in zip(out.state.layers, final.layers, strict=True):
        torch.testing.assert_close(got.h, want.h)
        if kind == "lstm":
            torch.testing.assert_close(got.c, want.c)
    # a sequence split in two, the state carried over, gives the same readout
    first = model(x[:, :3], start)
    second = model(x[:, 3:], first.state)
    torch.testing.assert_close(torch.cat([first.readout, second.readout], 1), out.readout)


def test_init_is_pytorch_default_range_and_seeded():
    model = ClassicalRNN(ClassicalConfig("lstm", 3, 2, (16, 4)), seed=5)
    for prefix, bound in {"layers.0.": 1 / 4, "layers.1.": 1 / 2, "readout.": 1 / 2}.items():
        values = torch.cat([p.detach().flatten() for n, p in model.named_parameters() if n.startswith(prefix)])
        assert 0.8 * bound < float(values.abs().max()) <= bound, prefix
    again, other = ClassicalRNN(model.config, seed=5), ClassicalRNN(model.config, seed=6)
    for (name, a), b, c in zip(model.state_dict().items(), again.state_dict().values(), other.state_dict().values(),
                               strict=True):  # fmt: skip
        assert torch.equal(a, b) and not torch.equal(a, c), name


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match=r"model.hidden_sizes\[1\]=0"):
        ClassicalConfig("gru", 2, 2, (4, 0))
    with pytest.raises(ConfigError, match="model.hidden_sizes=()"):
        ClassicalConfig("gru", 2, 2, ())
    with pytest.raises(ConfigError, match="model.kind='transformer'"):
        ClassicalConfig("transformer", 2, 2)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="model.hidden_sizes"):
        ClassicalConfig.from_dict({"kind": "lstm", "n_inputs": 1, "n_outputs": 1, "hidden_sizes": 8})
    with pytest.raises(ConfigError, match=r"input=\(2, 5, 3\)"):
        ClassicalRNN(ClassicalConfig("rnn", 2, 2, (4,)))(torch.zeros(2, 5, 3))


def test_both_model_kinds_satisfy_the_trainer_protocol():
    rsnn = RSNN(RSNNConfig(n_inputs=2, n_outputs=2, layers=(LayerConfig(size=4),)))
    for model in (rsnn, ClassicalRNN(ClassicalConfig("lstm", 2, 2, (4,)))):
        assert isinstance(model, SequenceModel)
    assert ClassicalRNN(ClassicalConfig("gru", 2, 2, (4,))).parameter_families().keys() == {"weights"}



def test_evaluate_reports_no_firing_rates_and_argmax_accuracy_by_hand():
    model = ClassicalRNN(ClassicalConfig("lstm", 2, 2, (6,)), seed=1)
    data = toy_sequences(n=10)
    objective = make_objective("mean_readout_ce")
    metrics = evaluate(model, data, objective, batch_size=4)
    assert set(metrics) == {"loss", "accuracy"}
    with torch.no_grad():
        logits = model(data.x).readout.mean(1)
    assert metrics["accuracy"] == pytest.approx(float((logits.argmax(-1) == data.y).float().mean()))
    assert metrics["loss"] == pytest.approx(float(torch.nn.functional.cross_entropy(logits, data.y)), rel=1e-6)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_trains_on_a_toy_task_well_below_chance(kind):
    torch.manual_seed(0)
    model = ClassicalRNN(ClassicalConfig(kind, 2, 2, (8,)), seed=0)
    config = TrainConfig(epochs=12, batch_size=16, lr=0.02, loss="mean_readout_ce", progress=False)
    result = Trainer(model, config).fit(toy_sequences(n=96), toy_sequences(n=48, seed=1))
    assert result.history[0]["train_loss"] > 0.6  # chance is ln 2 = 0.693
    assert result.history[-1]["train_loss"] < 0.2 and result.best_val["accuracy"] >= 0.95
    assert "train_firing_rate" not in result.history[-1] and "val_firing_rate" not in result.history[-1]


def test_tbptt_window_covering_the_sequence_equals_full_bptt():
    data = toy_sequences(n=16, t=12, per_step=True)
    results = []
    for tbptt in (None, 12, 50):
        model = ClassicalRNN(ClassicalConfig("lstm", 2, 2, (5,)), seed=2)
        trainer = Trainer(model, TrainConfig(batch_size=16, loss="per_step_nll", tbptt=tbptt, progress=False))
        loss = trainer.train_batch(data.x, data.y).loss
        results.append((loss, model.state_dict()))
    for loss, state in results[1:]:
        assert loss == results[0][0]
        assert all(torch.equal(state[k], v) for k, v in results[0][1].items())


def test_tbptt_detaches_the_lstm_cell_state_between_windows():
    """Windows of 4 steps: each update uses the gradient of its own window's loss only, from the detached (h, c)
    the previous window ended in (the trainer's updates, redone by hand)."""
    data = toy_sequences(n=8, t=12, per_step=True)
    model = ClassicalRNN(ClassicalConfig("lstm", 2, 2, (5,)), seed=4)
    reference = ClassicalRNN(model.config, seed=4)
    config = TrainConfig(batch_size=8, loss="per_step_nll", tbptt=4, lr=0.05, progress=False)
    reported = Trainer(model, config).train_batch(data.x, data.y).loss
    opt = torch.optim.Adam(reference.parameters(), lr=0.05)
    state, total = reference.initial_state(8), 0.0
    for t0 in (0, 4, 8):
        out = reference(data.x[:, t0 : t0 + 4], state)
        loss = torch.nn.functional.cross_entropy(out.readout.transpose(1, 2), data.y[:, t0 : t0 + 4], reduction="none")
        loss = loss.mean(0).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += float(loss.detach())
        state = ClassicalState(tuple(LayerState(s.h.detach(), s.c.detach()) for s in out.state.layers))
    assert reported == pytest.approx(total, rel=1e-6)
    for name, value in reference.state_dict().items():
        torch.testing.assert_close(model.state_dict()[name], value, msg=name)


def test_detach_state_cuts_every_tensor_and_keeps_types_and_values():
    model = ClassicalRNN(ClassicalConfig("lstm", 2, 2, (3, 4)))
    state = model(torch.ones(1, 5, 2)).state
    assert state.layers[0].h.requires_grad and state.layers[1].c.requires_grad
    cut = detach_state(state)
    assert type(cut) is ClassicalState and type(cut.layers[0]) is LayerState
    for old, new in zip(state.layers, cut.layers, strict=True):
        assert not new.h.requires_grad and not new.c.requires_grad
        assert torch.equal(old.h, new.h) and torch.equal(old.c, new.c)
    gru = detach_state(ClassicalRNN(ClassicalConfig("gru", 2, 2, (3,)))(torch.ones(1, 2, 2)).state)
    assert gru.layers[0].c is None and not gru.layers[0].h.requires_grad


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_save_load_round_trip_is_exact(tmp_path, kind):
    model = ClassicalRNN(ClassicalConfig(kind, 3, 4, (6, 5), bias=kind != "rnn"), seed=7)
    path = tmp_path / "m.safetensors"
    save_model(model, path, extra={"run_id": 3})
    back = load_model(path)
    assert isinstance(back, ClassicalRNN) and back.config == model.config
    assert back.state_dict().keys() == model.state_dict().keys()
    assert all(torch.equal(back.state_dict()[k], v) for k, v in model.state_dict().items())
    x = torch.randn(2, 9, 3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(back(x).readout, model(x).readout)


def test_load_model_still_loads_an_rsnn(tmp_path):
    rsnn = RSNN(RSNNConfig(n_inputs=2, n_outputs=3, layers=(LayerConfig(size=5),)), seed=1)
    save_model(rsnn, tmp_path / "r.safetensors")
    back = load_model(tmp_path / "r.safetensors")
    assert isinstance(back, RSNN) and back.config == rsnn.config


def _craft(tmp_path, config: dict, tensors: dict) -> str:
    path = tmp_path / "crafted.safetensors"
    save_tensors(path, tensors, {"format": "hrsnn-classical/1", "config": json.dumps(config)})
    return str(path)


def test_a_file_whose_config_does_not_match_its_tensors_is_refused(tmp_path):
    model = ClassicalRNN(ClassicalConfig("gru", 2, 3, (4,)))
    save_model(model, tmp_path / "m.safetensors")
    tensors = load_tensors(tmp_path / "m.safetensors")
    big = {**model.config.to_dict(), "hidden_sizes": [10**6]}  # would need 12 TB if built
    with pytest.raises(DataFormatError, match=r"layers.0.weight_hh_l0 has shape \(12, 4\), the config needs") as err:
        load_model(_craft(tmp_path, big, tensors))
    assert "\n" not in str(err.value)
    lstm = {**model.config.to_dict(), "kind": "lstm"}
    with pytest.raises(DataFormatError, match="weight_ih_l0 has shape"):
        load_model(_craft(tmp_path, lstm, tensors))
    del tensors["readout.bias"]
    with pytest.raises(DataFormatError, match=r"missing tensor\(s\) \['readout.bias'\]"):
        load_model(_craft(tmp_path, model.config.to_dict(), tensors))
    with pytest.raises(DataFormatError, match="stored config is invalid"):
        load_model(_craft(tmp_path, {"kind": "lstm", "n_inputs": 2}, tensors))
    save_tensors(tmp_path / "other.safetensors", tensors, {"format": "something/2"})
    with pytest.raises(DataFormatError, match=r"not an hrsnn model \(format 'something/2'"):
        load_model(tmp_path / "other.safetensors")


def test_build_and_save_refuse_other_kinds(tmp_path):
    with pytest.raises(ConfigError, match="model='dict': must be an RSNNConfig or a ClassicalConfig"):
        build_model({"kind": "lstm"})  # type: ignore[arg-type]
    assert isinstance(build_model(ClassicalConfig("rnn", 1, 1, (2,))), ClassicalRNN)
    with pytest.raises(ConfigError, match="model='Linear': must be an hrsnn RSNN or ClassicalRNN"):
        save_model(torch.nn.Linear(2, 2), tmp_path / "x.safetensors")  # type: ignore[arg-type]
    assert not (tmp_path / "x.safetensors").exists()
