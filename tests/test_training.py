"""Objectives, the trainer (TBPTT, selection, checkpoint/resume) and evaluation."""

from __future__ import annotations

import math

import pytest
import torch

from hrsnn.errors import ConfigError
from hrsnn.network import RSNN, LayerConfig, NeuronConfig, ReadoutConfig, RSNNConfig, RSNNOutput
from hrsnn.objectives import make_objective
from hrsnn.tasks.base import SequenceDataset
from hrsnn.training import TrainConfig, Trainer, evaluate


def _toy(n=64, t=20, seed=0, per_step=False) -> SequenceDataset:
    """Class = which of two channels carries a high spike rate."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    rates = torch.full((n, t, 2), 0.05)
    rates[torch.arange(n), :, y] = 0.6
    x = (torch.rand(n, t, 2, generator=g) < rates).float()
    if per_step:
        return SequenceDataset(x, y[:, None].expand(n, t).clone(), 2, "toy")
    return SequenceDataset(x, y, 2, "toy")


def _model(seed=0, readout="integrator") -> RSNN:
    cfg = RSNNConfig(
        n_inputs=2,
        n_outputs=2,
        layers=(LayerConfig(size=16, neuron=NeuronConfig(b0=0.05)),),
        readout=ReadoutConfig(kind=readout, neuron=NeuronConfig(b0=0.05)),
    )
    return RSNN(cfg, seed=seed)


def _fake_output(readout: torch.Tensor, spikes: torch.Tensor | None = None) -> RSNNOutput:
    return RSNNOutput(readout, (), spikes, None, None, None)  # type: ignore[arg-type]


def test_per_step_nll_sums_over_time_after_skip_by_hand():
    u = torch.tensor([[[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])  # (B=1, T=3, C=2)
    y = torch.tensor([[0, 1, 0]])
    obj = make_objective("per_step_nll", skip=1)
    expected = math.log(1 + math.e**-1) + math.log(2)  # steps 1 and 2
    assert float(obj.chunk_loss(_fake_output(u), y, 0, 3)) == pytest.approx(expected)
    # a chunk starting at global step 1 holds both valid steps; one starting at 0 with length 1 holds none
    assert float(obj.chunk_loss(_fake_output(u[:, 1:]), y[:, 1:], 1, 3)) == pytest.approx(expected)
    assert obj.chunk_loss(_fake_output(u[:, :1]), y[:, :1], 0, 3) is None
    mean = make_objective("per_step_nll", skip=1, time_mean=True)
    assert float(mean.chunk_loss(_fake_output(u), y, 0, 3)) == pytest.approx(expected / 2)


def test_sum_softmax_ce_applies_log_softmax_to_summed_probabilities():
    u = torch.tensor([[[2.0, 0.0], [0.0, 0.0]]])
    obj = make_objective("sum_softmax_ce")
    run = obj.accumulate(_fake_output(u), 0, None)
    p0 = math.exp(2) / (math.exp(2) + 1) + 0.5
    p1 = 1 / (math.exp(2) + 1) + 0.5
    expected = -math.log(math.exp(p0) / (math.exp(p0) + math.exp(p1)))
    assert float(obj.loss(run, torch.tensor([0]))) == pytest.approx(expected)


def test_mean_readout_and_spike_count_objectives_by_hand():
    u = torch.tensor([[[1.0, 0.0], [3.0, 0.0], [5.0, 2.0]]])
    obj = make_objective("mean_readout_ce", skip=1)
    run = obj.accumulate(_fake_output(u), 0, None)
    assert run.count == 2
    torch.testing.assert_close(obj.logits(run), torch.tensor([[4.0, 1.0]]))
    spikes = torch.tensor([[[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]])
    obj = make_objective("spike_count_ce")
    run = obj.accumulate(_fake_output(u, spikes), 0, None)
    torch.testing.assert_close(obj.logits(run), torch.tensor([[2.0, 2.0]]))
    with pytest.raises(ConfigError, match="alif"):
        obj.accumulate(_fake_output(u), 0, None)


def test_unknown_objective_and_bad_train_fields_are_named():
    with pytest.raises(ConfigError, match="train.loss='mse'"):
        make_objective("mse")
    with pytest.raises(ConfigError, match="train.lr"):
        TrainConfig(lr=-1.0)
    with pytest.raises(ConfigError, match="train.tbptt"):
        TrainConfig(tbptt=0)
    with pytest.raises(ConfigError, match="train.tau_lr_mult.tau_x"):
        TrainConfig(tau_lr_mult={"tau_x": 2.0})


def test_optimizer_groups_scale_tau_learning_rates():
    trainer = Trainer(_model(readout="alif"), TrainConfig(lr=0.01, tau_lr_mult={"tau_m": 2.0, "tau_adp": 5.0}))
    lrs = {g["name"]: g["lr"] for g in trainer.optimizer.param_groups}
    assert lrs == pytest.approx({"weights": 0.01, "tau_m": 0.02, "tau_adp": 0.05})


def test_training_reduces_loss_on_toy_task():
    data = _toy()
    model = _model()
    obj = make_objective("mean_readout_ce")
    before = evaluate(model, data, obj)["loss"]
    trainer = Trainer(model, TrainConfig(epochs=8, batch_size=16, loss="mean_readout_ce", lr=0.02, progress=False))
    trainer.fit(data, _toy(seed=1))
    after = evaluate(model, data, obj)
    assert after["loss"] < 0.7 * before
    assert after["accuracy"] > 0.85


def _params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_tbptt_with_window_covering_the_sequence_equals_full_bptt():
    data = _toy(n=16)
    runs = []
    for tbptt in (None, 20, 50):
        model = _model(seed=4)
        cfg = TrainConfig(epochs=1, batch_size=16, loss="sum_softmax_ce", tbptt=tbptt, progress=False)
        Trainer(model, cfg).train_epoch(data)
        runs.append(_params(model))
    torch.testing.assert_close(runs[1], runs[0], rtol=0, atol=0)
    torch.testing.assert_close(runs[2], runs[0], rtol=0, atol=0)


def test_tbptt_truncates_and_per_step_first_window_gradient_is_exact():
    """With per-step losses, the first window's update equals full BPTT of the first window's loss terms."""
    data = _toy(n=8, per_step=True)
    model_t = _model(seed=4)
    trainer = Trainer(model_t, TrainConfig(epochs=1, batch_size=8, loss="per_step_nll", tbptt=5, progress=False))
    x, y = data.x, data.y
    state = model_t.initial_state(8)
    out = model_t(x[:, :5], state)
    first = trainer.objective.chunk_loss(out, y[:, :5], 0, 20)
    g_trunc = torch.autograd.grad(first, model_t.layers[0].input.weight)[0]
    full = _model(seed=4)
    out_full = full(x)
    losses = torch.nn.functional.cross_entropy(out_full.readout[:, :5].transpose(1, 2), y[:, :5], reduction="none")
    g_full = torch.autograd.grad(losses.mean(0).sum(), full.layers[0].input.weight)[0]
    torch.testing.assert_close(g_trunc, g_full)
    # and a full truncated epoch differs from full BPTT (the truncation really happens)
    a, b = _model(seed=4), _model(seed=4)
    Trainer(a, TrainConfig(epochs=1, batch_size=8, loss="per_step_nll", tbptt=5, progress=False)).train_epoch(data)
    Trainer(b, TrainConfig(epochs=1, batch_size=8, loss="per_step_nll", progress=False)).train_epoch(data)
    assert not torch.equal(_params(a), _params(b))


def test_selection_uses_validation_and_restores_best_epoch():
    data, val = _toy(), _toy(seed=1)
    model = _model()
    cfg = TrainConfig(epochs=4, batch_size=16, loss="mean_readout_ce", lr=0.02, progress=False)
    result = Trainer(model, cfg).fit(data, val)
    best = max(h["val_accuracy"] for h in result.history)
    assert result.best_val["accuracy"] == best
    assert evaluate(model, val, cfg.objective())["accuracy"] == pytest.approx(best)


def test_empty_validation_split_is_rejected():
    data = _toy()
    empty = data.subset([])
    with pytest.raises(ConfigError, match="data.val"):
        Trainer(_model(), TrainConfig(epochs=1, progress=False)).fit(data, empty)


def test_resume_reproduces_uninterrupted_run(tmp_path):
    data, val = _toy(), _toy(seed=1)
    cfg = TrainConfig(
        epochs=3, batch_size=16, loss="mean_readout_ce", scheduler="step", step_size=1, progress=False, seed=7
    )
    straight = _model(seed=1)
    Trainer(straight, cfg).fit(data, val)
    ckpt = tmp_path / "ck.safetensors"
    killed = _model(seed=1)
    Trainer(killed, TrainConfig(**{**cfg.__dict__, "epochs": 2}), checkpoint_path=ckpt).fit(data, val)
    resumed_model = _model(seed=99)  # different init: everything must come from the checkpoint
    resumed = Trainer(resumed_model, cfg, checkpoint_path=ckpt)
    result = resumed.fit(data, val, resume=True)
    assert len(result.history) == 3
    torch.testing.assert_close(_params(resumed_model), _params(straight), rtol=0, atol=0)
    assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(0.01 * 0.5**3)


def test_evaluate_firing_rates_by_hand():
    model = _model(readout="alif")
    data = _toy(n=6, t=10)
    metrics = evaluate(model, data, make_objective("spike_count_ce"))
    out = model(data.x)
    hidden = float(out.layer_spikes[0].detach().sum())
    outs = float(out.output_spikes.detach().sum())
    assert metrics["rate_layer0"] == pytest.approx(hidden / (6 * 10 * 16))
    assert metrics["firing_rate"] == pytest.approx((hidden + outs) / (6 * 10 * 18))
