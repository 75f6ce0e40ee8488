"""Loading a saved model checks its stored config against its tensors before building; RSNN seeds are checked."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import safetensors.torch
import torch

from hrsnn.cli import main
from hrsnn.errors import ConfigError, DataFormatError, DataNotFoundError
from hrsnn.network import MODEL_FORMAT, RSNN, LayerConfig, RSNNConfig, load_model, save_model


def _model() -> RSNN:
    return RSNN(RSNNConfig(n_inputs=3, n_outputs=2, layers=(LayerConfig(size=4),)), seed=1)


def _write(path: Path, tensors: dict[str, torch.Tensor], config: object, *, raw: str | None = None) -> Path:
    """A model file with these tensors and this stored config (``raw`` replaces the config's JSON text)."""
    text = raw if raw is not None else json.dumps(config)
    safetensors.torch.save_file(tensors, str(path), metadata={"format": MODEL_FORMAT, "config": text})
    return path


def _parts() -> tuple[dict[str, torch.Tensor], dict]:
    model = _model()
    return {k: v.contiguous() for k, v in model.state_dict().items()}, model.config.to_dict()


def test_round_trip_still_exact(tmp_path):
    model = _model()
    save_model(model, tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors")
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor)


def test_config_claiming_huge_layer_fails_on_shapes_without_allocating(tmp_path):
    tensors, config = _parts()
    config["layers"][0]["size"] = 10**7  # would need ~450 TB if the network were built
    path = _write(tmp_path / "crafted.safetensors", tensors, config)
    with pytest.raises(DataFormatError) as err:
        load_model(path)
    message = str(err.value)
    assert str(path) in message and "\n" not in message
    assert "layers.0.input.weight" in message and "(10000000, 3)" in message and "(4, 3)" in message


def _drop(tensors: dict, name: str) -> dict:
    return {k: v for k, v in tensors.items() if k != name}


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda t: _drop(t, "layers.0.mask"), "missing tensor(s) ['layers.0.mask']"),
        (lambda t: {**t, "layers.0.extra": torch.zeros(2)}, "unexpected tensor(s) ['layers.0.extra']"),
        (lambda t: {**t, "readout.input.bias": torch.zeros(3)}, "readout.input.bias has shape (3,)"),
    ],
)
def test_tensors_that_do_not_match_the_config_are_named(tmp_path, edit, expected):
    tensors, config = _parts()
    path = _write(tmp_path / "m.safetensors", edit(tensors), config)
    with pytest.raises(DataFormatError) as err:
        load_model(path)
    assert expected in str(err.value) and str(path) in str(err.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("{not json", "stored config is not valid JSON"),
        ("[1, 2]", "stored config is invalid"),
        ('{"n_inputs": 3, "n_outputs": 2, "layers": [{"size": -4}]}', "stored config is invalid"),
    ],
)
def test_bad_stored_config_is_named(tmp_path, raw, expected):
    tensors, _ = _parts()
    path = _write(tmp_path / "m.safetensors", tensors, None, raw=raw)
    with pytest.raises(DataFormatError) as err:
        load_model(path)
    assert expected in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_files_that_are_not_hrsnn_models(tmp_path):
    plain = tmp_path / "plain.safetensors"
    safetensors.torch.save_file({"w": torch.zeros(2)}, str(plain))
    no_config = tmp_path / "no_config.safetensors"
    safetensors.torch.save_file({"w": torch.zeros(2)}, str(no_config), metadata={"format": MODEL_FORMAT})
    noise = tmp_path / "noise.safetensors"
    noise.write_bytes(os.urandom(4096))
    for path, expected in (
        (plain, "is not an hrsnn model"),
        (no_config, "has no stored config"),
        (noise, "safetensors"),
    ):
        with pytest.raises(ConfigError) as err:
            load_model(path)
        assert str(path) in str(err.value) and expected in str(err.value)
    with pytest.raises(DataNotFoundError, match="absent.safetensors"):
        load_model(tmp_path / "absent.safetensors")
    with pytest.raises(ConfigError, match="is a directory"):
        load_model(tmp_path)


def test_cli_reports_a_mismatched_model_in_one_line(tmp_path, capsys):
    tensors, config = _parts()
    config["layers"][0]["size"] = 10**7
    path = _write(tmp_path / "crafted.safetensors", tensors, config)
    assert main(["lyapunov", "--model", str(path), "--steps", "5", "--top", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and "layers.0.input.weight" in err


@pytest.mark.parametrize("seed", [-1, 2**64, 0.5, True])
def test_rsnn_seed_outside_generator_range_is_refused(seed):
    with pytest.raises(ConfigError) as err:
        RSNN(RSNNConfig(n_inputs=1, n_outputs=1, layers=(LayerConfig(size=2),)), seed=seed)
    assert err.value.field == "seed"


def test_rsnn_seed_range_ends_are_distinct_networks():
    config = RSNNConfig(n_inputs=1, n_outputs=1, layers=(LayerConfig(size=3),))
    low, high = RSNN(config, seed=0), RSNN(config, seed=2**64 - 1)
    assert not torch.equal(low.layers[0].input.weight, high.layers[0].input.weight)
