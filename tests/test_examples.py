"""The example configs in examples/: each parses, equals its preset (so it cannot drift from it), documents only real
fields in its commented-out lines, and runs."""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import tomllib
from pathlib import Path

import pytest

from hrsnn.cli import main
from hrsnn.config import from_dict, read_config_file
from hrsnn.connectivity import ConnectivitySpec
from hrsnn.experiments.lnp import TASKS, LNPExperimentConfig
from hrsnn.experiments.lnp_sweep import LNPSweepConfig
from hrsnn.experiments.runner import ExperimentConfig, TaskConfig
from hrsnn.experiments.store import RunStore
from hrsnn.network import LayerConfig, NeuronConfig, ReadoutConfig, RSNNConfig
from hrsnn.pruning import LNPConfig
from hrsnn.tasks import TASK_LOADERS
from hrsnn.training import TrainConfig

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TRAIN_EXAMPLES = {"digits": EXAMPLES / "digits.toml", "ecg": EXAMPLES / "ecg.toml"}
_COMMENTED = re.compile(r"^# ((?:[A-Za-z_]\w* = .*)|(?:\[[\w.]+\]))$")


def _network(config: ExperimentConfig) -> RSNNConfig:
    return RSNNConfig.from_dict({**config.model, "n_inputs": 1, "n_outputs": 1})


def _uncommented(path: Path) -> dict:
    """The file with every commented-out field and table line (``# key = value``, ``# [table]``) switched on."""
    lines = [_COMMENTED.sub(r"\1", line.split("  #")[0].rstrip()) for line in path.read_text("utf-8").splitlines()]
    return tomllib.loads("\n".join(lines))


@pytest.mark.parametrize("task", sorted(TRAIN_EXAMPLES))
def test_train_example_is_its_preset_in_full(task):
    data = read_config_file(TRAIN_EXAMPLES[task])
    preset = ExperimentConfig.from_dict({"task": {"name": task}})
    for config in (ExperimentConfig.from_dict(data), from_dict(ExperimentConfig, data, "config")):  # merged, alone
        assert (config.name, config.seed, config.threads) == (preset.name, preset.seed, preset.threads)
        assert config.task == preset.task and config.train == preset.train
        assert _network(config) == _network(preset)


@pytest.mark.parametrize("task", sorted(TRAIN_EXAMPLES))
def test_train_example_commented_fields_are_real(task):
    config = ExperimentConfig.from_dict(_uncommented(TRAIN_EXAMPLES[task]))
    options = set(inspect.signature(TASK_LOADERS[task]).parameters)
    assert set(config.task.options) <= options and len(config.task.options) > 1
    network = _network(config)
    assert config.threads == 1 and config.train.grad_clip == 1.0 and config.train.tbptt is not None
    assert network.state_init_scale == 0.01 and network.layers[0].connectivity.spectral_radius == 1.0


def test_lnp_example_is_the_default_experiment():
    config = LNPExperimentConfig.from_dict(read_config_file(EXAMPLES / "lnp.toml"))
    default = LNPExperimentConfig()
    assert config.lnp_config() == default.lnp_config()
    assert dataclasses.replace(config, lnp=default.lnp) == default
    on = LNPExperimentConfig.from_dict(_uncommented(EXAMPLES / "lnp.toml"))
    assert (on.lnp_config().k_max, on.lnp_config().keep_fraction) == (100, 0.95)
    assert set(on.task_options) == {"lorenz", "digits"} and on.readout["filter_tau"] == 20.0
    for task, options in on.task_options.items():
        assert set(options) - {"present_steps"} <= set(inspect.signature(TASKS[task].load).parameters)


def test_digits_example_runs(tmp_path, capsys):
    store = tmp_path / "runs.sqlite"
    small = [
        "--set",
        "train.epochs=1",
        "--set",
        "task.options.test_fraction=0.85",
        "--set",
        "task.options.val_fraction=0.05",
    ]
    code = main(
        ["--store", str(store), "train", "--config", str(TRAIN_EXAMPLES["digits"]), *small, "--json", "--quiet"]
    )
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and result["epochs_run"] == 1
    record = RunStore(store).get_run(result["run_id"])
    assert record.name == "digits-srnn" and record.status == "completed"
    assert record.config["model"]["layers"][0]["size"] == 128 and record.config["task"]["options"]["window"] == 8


def _fields(*classes: type) -> set[str]:
    return {f.name for cls in classes for f in dataclasses.fields(cls)} - {
        "n_inputs",
        "n_outputs",
        "model",
        "experiment",
    }


TRAIN_CLASSES = (ExperimentConfig, TaskConfig, RSNNConfig, LayerConfig, NeuronConfig, ConnectivitySpec, TrainConfig)


def test_every_field_is_documented_and_in_the_examples():
    docs = (EXAMPLES.parent / "docs" / "config.md").read_text("utf-8")
    missing = {
        n
        for n in _fields(*TRAIN_CLASSES, ReadoutConfig, LNPExperimentConfig, LNPConfig, LNPSweepConfig)
        if f"`{n}`" not in docs
    }
    assert not missing
    for path in (*TRAIN_EXAMPLES.values(), EXAMPLES / "lnp.toml"):
        text = path.read_text("utf-8")
        classes = (LNPExperimentConfig,) if path.name == "lnp.toml" else TRAIN_CLASSES
        assert not {
            n
            for n in _fields(*classes)
            if not re.search(rf"^(# )?({n} = |\[\[?([\w.]+\.)?{n}[\].])|# {n}:", text, re.M)
        }, path.name
