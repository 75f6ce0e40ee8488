"""Objectives, the trainer (TBPTT, selection, checkpoint/resume) and evaluation."""

from __future__ import annotations

import math

import pytest
import torch
from _helpers import toy_sequences

from hrsnn.errors import ConfigError
from hrsnn.network import RSNN, LayerConfig, NeuronConfig, ReadoutConfig, RSNNConfig, RSNNOutput, RSNNState
from hrsnn.neurons import ALIFState
from hrsnn.objectives import make_objective
from hrsnn.training import TrainConfig, Trainer, evaluate


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
    with pytest.raises(ConfigError, match="train.eps"):
        TrainConfig(eps=0.0)
    with pytest.raises(ConfigError, match="train.tau_lr_mult.tau_x"):
        TrainConfig(tau_lr_mult={"tau_x": 2.0})


def test_optimizer_groups_scale_tau_learning_rates():
    """An ALIF readout's τ_m and τ_adp form the "tau_out" group (the authors' ECG script: output τ at lr × 2)."""
    model = _model(readout="alif")
    config = TrainConfig(lr=0.01, tau_lr_mult={"tau_m": 2.0, "tau_adp": 5.0, "tau_out": 7.0})
    groups = {g["name"]: g for g in Trainer(model, config).optimizer.param_groups}
    assert {name: g["lr"] for name, g in groups.items()} == pytest.approx(
        {"weights": 0.01, "tau_m": 0.02, "tau_adp": 0.05, "tau_out": 0.07}
    )
    assert {g["eps"] for g in groups.values()} == {1e-8}
    assert {g["eps"] for g in Trainer(model, TrainConfig(eps=1e-5)).optimizer.param_groups} == {1e-5}
    readout_taus = [model.readout.tau_m.theta, model.readout.tau_adp.theta]
    assert [id(p) for p in groups["tau_out"]["params"]] == [id(p) for p in readout_taus]
    assert not {id(p) for p in readout_taus} & {id(p) for g in ("tau_m", "tau_adp") for p in groups[g]["params"]}


def test_training_reduces_loss_on_toy_task():
    data = toy_sequences()
    model = _model()
    obj = make_objective("mean_readout_ce")
    before = evaluate(model, data, obj)["loss"]
    trainer = Trainer(model, TrainConfig(epochs=8, batch_size=16, loss="mean_readout_ce", lr=0.02, progress=False))
    trainer.fit(data, toy_sequences(seed=1))
    after = evaluate(model, data, obj)
    assert after["loss"] < 0.7 * before
    assert after["accuracy"] > 0.85


def _params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_tbptt_with_window_covering_the_sequence_equals_full_bptt():
    data = toy_sequences(n=16)
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
    data = toy_sequences(n=8, per_step=True)
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
    data, val = toy_sequences(), toy_sequences(seed=1)
    model = _model()
    cfg = TrainConfig(epochs=4, batch_size=16, loss="mean_readout_ce", lr=0.02, progress=False)
    result = Trainer(model, cfg).fit(data, val)
    best = max(h["val_accuracy"] for h in result.history)
    assert result.best_val["accuracy"] == best
    assert evaluate(model, val, cfg.objective())["accuracy"] == pytest.approx(best)


def test_empty_validation_split_is_rejected():
    data = toy_sequences()
    empty = data.subset([])
    with pytest.raises(ConfigError, match="data.val"):
        Trainer(_model(), TrainConfig(epochs=1, progress=False)).fit(data, empty)


def test_resume_reproduces_uninterrupted_run(tmp_path):
    data, val = toy_sequences(), toy_sequences(seed=1)
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
    data = toy_sequences(n=6, t=10)
    metrics = evaluate(model, data, make_objective("spike_count_ce"))
    out = model(data.x)
    hidden = float(out.layer_spikes[0].detach().sum())
    outs = float(out.output_spikes.detach().sum())
    assert metrics["rate_layer0"] == pytest.approx(hidden / (6 * 10 * 16))
    assert metrics["firing_rate"] == pytest.approx((hidden + outs) / (6 * 10 * 18))


# --- reported loss, evaluation mode, truncated BPTT of sequence objectives, ALIF readout, clipping, schedules ---


def _lr_of(model: RSNN, config: TrainConfig) -> dict[int, float]:
    """Learning rate of every trainable parameter by its family, from the config (not from the optimiser)."""
    return {
        id(p): config.lr * (1.0 if family == "weights" else config.tau_lr_mult.get(family, 1.0))
        for family, params in model.parameter_families().items()
        for p in params
    }


def _adam_first_step(model: RSNN, loss: torch.Tensor, config: TrainConfig) -> list[torch.Tensor]:
    """Parameters after one Adam step, by hand: g ← clip(g) + λθ, θ ← θ − lr·g/(|g| + 1e-8) (bias-corrected m, v)."""
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params)
    if config.grad_clip is not None:
        norm = math.sqrt(sum(float(g.pow(2).sum()) for g in grads))
        grads = tuple(g * min(1.0, config.grad_clip / (norm + 1e-6)) for g in grads)
    lrs = _lr_of(model, config)
    out = []
    for p, g in zip(params, grads, strict=True):
        g = g + config.weight_decay * p.detach()
        out.append(p.detach() - lrs[id(p)] * g / (g.abs() + 1e-8))
    return out


def _trainable(model: RSNN) -> list[torch.Tensor]:
    return [p.detach() for p in model.parameters() if p.requires_grad]


def test_evaluate_restores_the_callers_mode():
    model, data = _model(), toy_sequences(n=8)
    model.eval()
    evaluate(model, data, make_objective("mean_readout_ce"))
    assert not model.training and not any(m.training for m in model.modules())
    model.train()
    evaluate(model, data, make_objective("mean_readout_ce"))
    assert model.training


@pytest.mark.parametrize(
    ("loss", "time_mean"),
    [("sum_softmax_ce", False), ("mean_readout_ce", False), ("per_step_nll", False), ("per_step_nll", True)],
)
def test_reported_tbptt_loss_is_the_full_sequence_loss(loss, time_mean):
    """With tbptt=6 over 20 steps (4 chunks) the reported train loss equals the loss of the whole sequence. The
    learning rate is tiny, so every chunk runs with the initial weights up to ~1e-11 and an untouched copy of the
    model gives the full-sequence loss of the same forward pass."""
    data = toy_sequences(n=8, per_step=loss == "per_step_nll")
    config = TrainConfig(batch_size=8, loss=loss, skip_steps=3, time_mean=time_mean, tbptt=6, lr=1e-12)
    with torch.no_grad():
        out = _model(seed=2)(data.x)
    obj = config.objective()
    if loss == "per_step_nll":
        expected = float(obj.chunk_loss(out, data.y, 0, 20))
    else:
        expected = float(obj.loss(obj.accumulate(out, 0, None), data.y))
    reported, *_ = Trainer(_model(seed=2), config).train_batch(data.x, data.y)
    assert reported == pytest.approx(expected, rel=1e-5)


def test_multi_chunk_tbptt_for_sequence_objective_matches_the_truncated_scheme_by_hand():
    """sum_softmax_ce with tbptt=7 over 20 steps: chunks [0, 7), [7, 14), [14, 20); after each chunk one Adam step
    on CE of the running sum Σ softmax(u_t), whose earlier part and the carried state are constants."""
    data = toy_sequences(n=8)
    config = TrainConfig(batch_size=8, loss="sum_softmax_ce", tbptt=7, lr=0.01)
    model = _model(seed=6)
    reported, *_ = Trainer(model, config).train_batch(data.x, data.y)
    ref = _model(seed=6)
    params = [p for p in ref.parameters() if p.requires_grad]
    lrs = _lr_of(ref, config)
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    state, carried = ref.initial_state(8), torch.zeros(8, 2)
    for step, t0 in enumerate((0, 7, 14), start=1):
        out = ref(data.x[:, t0 : t0 + 7], state)
        running = carried + torch.softmax(out.readout, -1).sum(1)
        loss = torch.nn.functional.cross_entropy(running, data.y)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g, m_i, v_i in zip(params, grads, m, v, strict=True):
                m_i.mul_(0.9).add_(0.1 * g)
                v_i.mul_(0.999).add_(0.001 * g * g)
                m_hat, v_hat = m_i / (1 - 0.9**step), v_i / (1 - 0.999**step)
                p.sub_(lrs[id(p)] * m_hat / (v_hat.sqrt() + 1e-8))
        state = RSNNState(
            tuple(ALIFState(*(t.detach() for t in st)) for st in out.state.layers),
            ALIFState(*(t.detach() for t in out.state.readout)),
        )
        carried = running.detach()
    for a, b in zip(_trainable(model), _trainable(ref), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert reported == pytest.approx(float(loss.detach()), rel=1e-6)
    full = _model(seed=6)  # the truncation matters: full BPTT over the same chunks lands elsewhere
    Trainer(full, TrainConfig(batch_size=8, loss="sum_softmax_ce", lr=0.01)).train_batch(data.x, data.y)
    assert not torch.allclose(
        torch.cat([p.flatten() for p in _trainable(full)]), torch.cat([p.flatten() for p in _trainable(model)])
    )


def test_alif_readout_training_step_moves_every_tau_by_its_family_lr():
    """One Adam step with an ALIF readout and spike-count logits: every parameter lands where the by-hand step
    puts it; the first Adam step moves each τ-parameter by lr × its family's multiplier (here 2, 3 and 5)."""
    data = toy_sequences(n=8)
    config = TrainConfig(
        batch_size=8, loss="spike_count_ce", lr=0.01, tau_lr_mult={"tau_m": 2.0, "tau_adp": 3.0, "tau_out": 5.0}
    )
    model, ref = _model(seed=3, readout="alif"), _model(seed=3, readout="alif")
    before = [p.clone() for p in _trainable(model)]
    Trainer(model, config).train_batch(data.x, data.y)
    obj = config.objective()
    expected = _adam_first_step(ref, obj.loss(obj.accumulate(ref(data.x), 0, None), data.y), config)
    for a, b in zip(_trainable(model), expected, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    after = dict(zip([id(p) for p in model.parameters() if p.requires_grad], _trainable(model), strict=True))
    start = dict(zip([id(p) for p in model.parameters() if p.requires_grad], before, strict=True))
    taus = {
        2.0: [model.layers[0].tau_m.theta],
        3.0: [model.layers[0].tau_adp.theta],
        5.0: [model.readout.tau_m.theta, model.readout.tau_adp.theta],
    }
    for mult, thetas in taus.items():
        for theta in thetas:
            moved = (after[id(theta)] - start[id(theta)]).abs()
            assert float(moved.max()) == pytest.approx(0.01 * mult, rel=1e-2)


def test_grad_clip_update_equals_the_hand_step_with_the_clipped_norm():
    """With weight decay the Adam step depends on the scale of the gradient, so clipping is visible: the update
    equals the by-hand step with g·min(1, c/(‖g‖ + 1e-6)) and differs from the unclipped one."""
    data = toy_sequences(n=8)
    config = TrainConfig(batch_size=8, loss="mean_readout_ce", lr=0.01, weight_decay=0.002, grad_clip=0.02)
    model, ref = _model(seed=5), _model(seed=5)
    Trainer(model, config).train_batch(data.x, data.y)
    obj = config.objective()

    def loss() -> torch.Tensor:
        return obj.loss(obj.accumulate(ref(data.x), 0, None), data.y)

    norm = math.sqrt(sum(float(g.pow(2).sum()) for g in torch.autograd.grad(loss(), list(ref.parameters()))))
    assert norm > 4 * config.grad_clip  # clipping is active
    clipped = _adam_first_step(ref, loss(), config)
    unclipped = _adam_first_step(ref, loss(), TrainConfig(**{**config.__dict__, "grad_clip": None}))
    for a, b in zip(_trainable(model), clipped, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    differ = sum(int(((a - b).abs() > 1e-3).sum()) for a, b in zip(clipped, unclipped, strict=True))
    assert differ >= 5  # sign flips of c·g + λθ against g + λθ: a step of 2·lr each


def test_multistep_scheduler_lr_after_milestone_and_resume_is_bit_identical(tmp_path):
    data, val = toy_sequences(n=32), toy_sequences(n=16, seed=1)
    cfg = TrainConfig(
        epochs=3, batch_size=16, loss="mean_readout_ce", scheduler="multistep", milestones=(2,), gamma=0.1,
        progress=False, seed=3,
    )  # fmt: skip
    straight = _model(seed=1)
    straight_trainer = Trainer(straight, cfg)
    straight_trainer.fit(data, val)
    lrs = {g["name"]: g["lr"] for g in straight_trainer.optimizer.param_groups}
    assert lrs == pytest.approx({"weights": 1e-3, "tau_m": 2e-3, "tau_adp": 3e-3, "tau_out": 2e-3})
    ckpt = tmp_path / "ck.safetensors"
    Trainer(_model(seed=1), TrainConfig(**{**cfg.__dict__, "epochs": 1}), checkpoint_path=ckpt).fit(data, val)
    resumed_model = _model(seed=42)
    resumed = Trainer(resumed_model, cfg, checkpoint_path=ckpt)
    resumed.load_checkpoint(ckpt)
    assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(0.01)  # before the milestone
    resumed.fit(data, val, resume=True)
    assert {g["name"]: g["lr"] for g in resumed.optimizer.param_groups} == pytest.approx(lrs)
    for a, b in zip(resumed_model.state_dict().values(), straight.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_train_firing_rate_counts_hidden_and_alif_readout_neurons_by_hand():
    model = _model(seed=1, readout="alif")
    data = toy_sequences(n=6, t=10)
    out = model(data.x)  # zero initial state, as the trainer's; one batch: these are the epoch's spikes
    spikes = float(out.layer_spikes[0].detach().sum() + out.output_spikes.detach().sum())
    trainer = Trainer(model, TrainConfig(batch_size=8, loss="sum_softmax_ce", progress=False))
    metrics = trainer.train_epoch(data)
    assert spikes > 0 and metrics["train_firing_rate"] == pytest.approx(spikes / (6 * 10 * (16 + 2)))
