"""Numerical guards of the trainer: a NaN/inf loss, gradient, parameter or validation output never trains on."""

from __future__ import annotations

import math

import pytest
import torch
from _helpers import toy_sequences

from hrsnn.errors import ConfigError, NonFiniteError
from hrsnn.network import RSNN, LayerConfig, NeuronConfig, RSNNConfig
from hrsnn.training import TrainConfig, Trainer, read_checkpoint_progress


def _model() -> RSNN:
    cfg = RSNNConfig(n_inputs=2, n_outputs=2, layers=(LayerConfig(size=12, neuron=NeuronConfig(b0=0.05)),))
    return RSNN(cfg, seed=0)


def _trainer(tmp_path=None, **train) -> Trainer:
    config = TrainConfig(**{"epochs": 3, "batch_size": 16, "progress": False, **train})
    return Trainer(_model(), config, checkpoint_path=None if tmp_path is None else tmp_path / "ckpt.safetensors")


def _inject_inf_gradient(trainer: Trainer, batches: set[int]) -> None:
    """Make the gradient of the input weight infinite in the given batches (1-based, within every epoch)."""
    weight = trainer.model.layers[0].input.weight

    def hook(grad: torch.Tensor) -> torch.Tensor:
        return grad * math.inf if trainer._batch in batches else grad

    weight.register_hook(hook)


def test_nan_parameter_stops_training_at_the_first_loss():
    trainer = _trainer()
    with torch.no_grad():
        trainer.model.readout.input.bias[1] = math.nan
    with pytest.raises(NonFiniteError, match=r"non-finite loss \(nan\) at epoch 1, batch 1; training stopped"):
        trainer.fit(toy_sequences(48, 12), toy_sequences(48, 12, seed=1))
    assert trainer.history == []


def test_infinite_gradient_stops_before_the_step_and_names_the_parameter():
    trainer = _trainer()
    _inject_inf_gradient(trainer, {2})
    before = {}

    def remember(_):
        if trainer._batch == 2:
            before.update({k: v.detach().clone() for k, v in trainer.model.state_dict().items()})

    trainer.model.layers[0].input.weight.register_hook(lambda g: remember(g))
    with pytest.raises(NonFiniteError, match=r"non-finite gradient of layers\.0\.input\.weight \(0 NaN, \d+ inf\)"):
        trainer.fit(toy_sequences(48, 12), toy_sequences(48, 12, seed=1))
    # the bad batch took no optimiser step: the parameters are those before it
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_skip_mode_drops_only_the_bad_batch_and_counts_it():
    trainer = _trainer(on_nonfinite="skip", epochs=2)
    _inject_inf_gradient(trainer, {2})
    result = trainer.fit(toy_sequences(48, 12), toy_sequences(48, 12, seed=1))
    assert [h["skipped_batches"] for h in result.history] == [1, 1]
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    # the loss average covers the 2 kept batches of 16 samples, not the dropped one
    assert math.isfinite(result.history[0]["train_loss"])


def test_skip_mode_stops_when_a_whole_epoch_is_non_finite():
    trainer = _trainer(on_nonfinite="skip")
    _inject_inf_gradient(trainer, {1, 2, 3})
    with pytest.raises(NonFiniteError, match=r"every batch of epoch 1 \(3\) met a non-finite"):
        trainer.fit(toy_sequences(48, 12), toy_sequences(48, 12, seed=1))


@pytest.mark.filterwarnings("ignore:Seems like `optimizer.step\\(\\)` has been overridden")
def test_a_parameter_made_non_finite_by_the_step_always_stops(tmp_path, monkeypatch):
    trainer = _trainer(tmp_path, on_nonfinite="skip")
    step = trainer.optimizer.step

    def poisoned_step() -> None:
        step()
        if trainer.epoch == 1 and trainer._batch == 2:
            with torch.no_grad():
                trainer.model.readout.input.bias[0] = math.inf

    monkeypatch.setattr(trainer.optimizer, "step", poisoned_step)
    with pytest.raises(NonFiniteError, match=r"parameter readout\.input\.bias became non-finite \(0 NaN, 1 inf\)"):
        trainer.fit(toy_sequences(48, 12), toy_sequences(48, 12, seed=1))
    # the checkpoint of the last good epoch is kept, and it is finite
    assert read_checkpoint_progress(tmp_path / "ckpt.safetensors").epoch == 1


def test_non_finite_validation_loss_stops(monkeypatch):
    import hrsnn.training as training

    real = training.evaluate

    def bad_val(*args, **kwargs):
        return {**real(*args, **kwargs), "loss": math.inf}

    monkeypatch.setattr(training, "evaluate", bad_val)
    with pytest.raises(NonFiniteError, match=r"non-finite validation loss \(inf\) after epoch 1"):
        _trainer().fit(toy_sequences(48, 12), toy_sequences(48, 12, seed=1))


def test_on_nonfinite_is_validated():
    with pytest.raises(ConfigError, match="train.on_nonfinite='ignore'"):
        TrainConfig(on_nonfinite="ignore")  # type: ignore[arg-type]
