"""Shared validators of hrsnn._validate: seeds and the memory estimate of a network."""

from __future__ import annotations

import numpy as np
import pytest

from hrsnn._validate import (
    check_memory,
    check_run_seed,
    check_seed,
    memory_limit,
    rsnn_memory_bytes,
    rsnn_tensor_shapes,
)
from hrsnn.connectivity import ConnectivitySpec
from hrsnn.errors import ConfigError
from hrsnn.network import RSNN, LayerConfig, NeuronConfig, ReadoutConfig, RSNNConfig


@pytest.mark.parametrize("seed", [0, 7, 2**64 - 1, np.int64(5), np.uint64(2**64 - 1)])
def test_check_seed_accepts_the_generator_range(seed):
    out = check_seed("seed", seed)
    assert type(out) is int and out == int(seed)


@pytest.mark.parametrize("seed", [-1, -(2**63), 2**64, 1.0, True, "3", None])
def test_check_seed_rejects_values_torch_would_alias_or_refuse(seed):
    with pytest.raises(ConfigError) as err:
        check_seed("train.seed", seed)
    assert err.value.field == "train.seed" and "[0, 2**64)" in str(err.value)


def _configs() -> list[RSNNConfig]:
    dense = ConnectivitySpec(kind="dense")
    return [
        RSNNConfig(n_inputs=3, n_outputs=2, layers=(LayerConfig(size=5, connectivity=dense),)),
        RSNNConfig(
            n_inputs=2,
            n_outputs=3,
            layers=(
                LayerConfig(size=6, neuron=NeuronConfig(kind="lif_hard"), bias=False),
                LayerConfig(size=4, recurrent=False, neuron=NeuronConfig(kind="lif")),
            ),
            readout=ReadoutConfig(kind="alif"),
        ),
        RSNNConfig(
            n_inputs=1,
            n_outputs=1,
            layers=(LayerConfig(size=3),),
            readout=ReadoutConfig(neuron=NeuronConfig(kind="lif")),
        ),
        RSNNConfig(
            n_inputs=1,
            n_outputs=2,
            layers=(LayerConfig(size=3, recurrent=False, bias=False),),
            readout=ReadoutConfig(kind="alif", neuron=NeuronConfig(kind="lif")),
        ),
    ]


@pytest.mark.parametrize("config", _configs())
def test_tensor_shapes_match_a_built_network(config):
    built = {name: tuple(t.shape) for name, t in RSNN(config).state_dict().items()}
    assert rsnn_tensor_shapes(config) == built


def test_memory_estimate_by_hand():
    # 3 inputs -> 5 ALIF neurons (dense recurrent, biases) -> 2 integrator outputs:
    # float32: input 5·3 + 5, τ_m 5, τ_adp 5, W_rec 25, b_rec 5, readout 2·5 + 2, τ_out 2 = 74 values = 296 bytes;
    # bool mask 25 bytes.
    assert rsnn_memory_bytes(_configs()[0]) == 296 + 25
    big = RSNNConfig(n_inputs=1, n_outputs=1, layers=(LayerConfig(size=10**6),))
    assert rsnn_memory_bytes(big) > 5 * 10**12  # 4 + 1 bytes per recurrent synapse, never built here


def test_memory_limit_from_environment(monkeypatch):
    monkeypatch.setenv("HRSNN_MAX_BYTES", "123456")
    assert memory_limit() == (123456, "allowed by HRSNN_MAX_BYTES")
    monkeypatch.delenv("HRSNN_MAX_BYTES")
    limit = memory_limit()
    assert limit is None or limit[0] > 2**20
    for bad in ("lots", "0", "-5", "1.5"):
        monkeypatch.setenv("HRSNN_MAX_BYTES", bad)
        with pytest.raises(ConfigError) as err:
            memory_limit()
        assert err.value.field == "HRSNN_MAX_BYTES"


def test_check_memory_names_field_and_gib(monkeypatch):
    monkeypatch.setenv("HRSNN_MAX_BYTES", str(2**30))
    check_memory("--size", 100, 2**30, "the network")
    with pytest.raises(ConfigError) as err:
        check_memory("--size", 100, 3 * 2**29, "the network")
    message = str(err.value)
    assert err.value.field == "--size" and err.value.value == 100
    assert "1.5 GiB" in message and "1 GiB" in message and "HRSNN_MAX_BYTES" in message and "\n" not in message


def test_network_too_large_for_memory_is_refused_before_building(monkeypatch):
    monkeypatch.setenv("HRSNN_MAX_BYTES", str(10**6))
    config = RSNNConfig(n_inputs=2, n_outputs=1, layers=(LayerConfig(size=8), LayerConfig(size=1000)))
    with pytest.raises(ConfigError) as err:
        RSNN(config)
    assert err.value.field == "model.layers[1].size" and err.value.value == 1000
    assert "GiB" in str(err.value)


@pytest.mark.parametrize("bad", [-1, 2**63, 1.5, True, "3"])
def test_experiment_seeds_must_fit_the_run_store(bad):
    from hrsnn.experiments.lnp import LNPExperimentConfig
    from hrsnn.experiments.runner import ExperimentConfig

    with pytest.raises(ConfigError, match=r"seed"):
        ExperimentConfig.from_dict({"seed": bad})
    with pytest.raises(ConfigError, match=r"seeds\[1\]"):
        LNPExperimentConfig.from_dict({"seeds": [0, bad]})
    assert check_run_seed("seed", 2**63 - 1) == 2**63 - 1
