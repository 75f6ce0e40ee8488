"""Tests of the QTDB ECG loader, the level-crossing encoder and the data-folder lookup."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from hrsnn.cli import main
from hrsnn.errors import ConfigError, DataFormatError, DataNotFoundError
from hrsnn.tasks import QTDB_CLASSES, TASK_LOADERS, encode_ecg_level_crossing, load_qtdb, resolve_data_dir
from hrsnn.tasks import base as tasks_base
from hrsnn.tasks.base import nonfinite_reason

TRAIN_COUNTS = (100530, 49485, 46503, 35776, 242792, 263147)  # srnn.md §4.1, one-hot sums over train


def _shared_data_dir() -> Path:
    """The shared data folder holding both QTDB files, or skip the test."""
    try:
        root = resolve_data_dir(None)
    except DataNotFoundError:
        pytest.skip("shared data folder not found")
    if not ((root / "qtdb" / "QTDB_train.mat").is_file() and (root / "qtdb" / "QTDB_test.mat").is_file()):
        pytest.skip(f"QTDB files not found under {root}")
    return root


def _write_synthetic_qtdb(root: Path, *, with_test: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Write tiny QTDB-format files (5 train records, 2 test records, 7 steps) and return train (x, y)."""
    rng = np.random.default_rng(3)
    (root / "qtdb").mkdir(parents=True)
    out = None
    for name, n in (("train", 5), ("test", 2)):
        if name == "test" and not with_test:
            continue
        x = rng.integers(0, 2, size=(n, 7, 4)).astype(np.int16)
        x[:, -1, 0] = -1
        labels = rng.integers(0, 6, size=(n, 7))
        y = np.eye(6, dtype=np.uint8)[labels]
        y[:, 0, :] = 0  # an unlabelled step in every record
        scipy.io.savemat(root / "qtdb" / f"QTDB_{name}.mat", {"x": x, "y": y})
        if name == "train":
            out = (x, y)
    assert out is not None
    return out


# ---------------------------------------------------------------------------------------------- real data


def test_qtdb_shapes_dtypes_and_values():
    splits = load_qtdb(_shared_data_dir())
    assert splits.train.n_samples + splits.val.n_samples == 618
    assert splits.test.n_samples == 141
    for ds in (splits.train, splits.val, splits.test):
        assert ds.x.shape[1:] == (1301, 4)
        assert ds.y.shape == ds.x.shape[:2]
        assert ds.x.dtype == torch.float32 and ds.y.dtype == torch.long
        assert ds.per_step and ds.n_classes == 6
    assert splits.info["classes"] == QTDB_CLASSES == ("P", "PQ", "QR", "RS", "ST", "TP")
    # val size = floor(0.1 * 618 + 1/2) = 62
    assert splits.val.n_samples == 62
    # values kept as in the file: {0, 1} spikes and the -1 end marker in channel 0 at t = 1300
    x = torch.cat([splits.train.x, splits.val.x, splits.test.x])
    assert set(torch.unique(x).tolist()) == {-1.0, 0.0, 1.0}
    negative = torch.nonzero(x == -1)
    assert torch.all(negative[:, 1] == 1300) and torch.all(negative[:, 2] == 0)
    assert torch.all(x[:, 1300, 0] == -1)


def test_qtdb_label_counts_match_spec():
    root = _shared_data_dir()
    raw = scipy.io.loadmat(root / "qtdb" / "QTDB_train.mat")
    onehot = raw["y"].astype(np.int64)
    assert tuple(onehot.sum(axis=(0, 1)).tolist()) == TRAIN_COUNTS
    splits = load_qtdb(root)
    labels = torch.cat([splits.train.y, splits.val.y]).flatten()
    counts = torch.bincount(labels, minlength=6).tolist()
    unlabelled = int((onehot.sum(axis=-1) == 0).sum())
    assert unlabelled > 0
    # argmax sends all-zero rows to class 0; every other row to its one-hot class
    expected = list(TRAIN_COUNTS)
    expected[0] += unlabelled
    assert counts == expected


def test_qtdb_val_is_disjoint_part_of_train_file():
    root = _shared_data_dir()
    raw_x = scipy.io.loadmat(root / "qtdb" / "QTDB_train.mat")["x"].astype(np.float32)
    splits = load_qtdb(root, val_fraction=0.1, seed=4)
    train_idx, val_idx = splits.info["train_indices"], splits.info["val_indices"]
    assert not set(train_idx) & set(val_idx)
    assert sorted(train_idx + val_idx) == list(range(618))
    assert np.array_equal(splits.val.x.numpy(), raw_x[list(val_idx)])
    assert np.array_equal(splits.train.x.numpy(), raw_x[list(train_idx)])
    raw_test = scipy.io.loadmat(root / "qtdb" / "QTDB_test.mat")["x"].astype(np.float32)
    assert np.array_equal(splits.test.x.numpy(), raw_test)


def test_qtdb_split_reproducible_with_seed():
    root = _shared_data_dir()
    a = load_qtdb(root, seed=7)
    b = load_qtdb(root, seed=7)
    c = load_qtdb(root, seed=8)
    assert a.info["val_indices"] == b.info["val_indices"]
    assert torch.equal(a.val.x, b.val.x) and torch.equal(a.train.y, b.train.y)
    assert a.info["val_indices"] != c.info["val_indices"]


def test_qtdb_val_fraction_zero_gives_empty_val():
    splits = load_qtdb(_shared_data_dir(), val_fraction=0.0)
    assert splits.train.n_samples == 618
    assert splits.val.x.shape == (0, 1301, 4)
    assert list(splits.val.batches(8, shuffle=False)) == []


def test_hrsnn_data_env_var_honoured_with_real_data(monkeypatch, tmp_path):
    root = _shared_data_dir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HRSNN_DATA", str(root))
    assert load_qtdb().test.n_samples == 141


# ----------------------------------------------------------------------------------------- synthetic data


def test_load_qtdb_synthetic_labels_by_hand(tmp_path):
    x, y = _write_synthetic_qtdb(tmp_path)
    splits = load_qtdb(tmp_path, val_fraction=0.2, seed=0)
    # val = floor(0.2 * 5 + 1/2) = 1 record
    assert splits.val.n_samples == 1 and splits.train.n_samples == 4
    idx = list(splits.info["train_indices"])
    expected = np.zeros(y.shape[:2], dtype=np.int64)
    for n in range(y.shape[0]):
        for t in range(y.shape[1]):
            hot = [k for k in range(6) if y[n, t, k] == 1]
            expected[n, t] = hot[0] if hot else 0  # all-zero row -> class 0
    assert np.array_equal(splits.train.y.numpy(), expected[idx])
    assert np.array_equal(splits.train.x.numpy(), x[idx].astype(np.float32))
    assert splits.train.x[0, -1, 0].item() == -1.0


def test_load_qtdb_empty_dir_raises_naming_file(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"QTDB_train\.mat") as err:
        load_qtdb(tmp_path)
    assert "HRSNN_DATA" in str(err.value) and "data_dir" in str(err.value)


def test_load_qtdb_missing_test_file_named(tmp_path):
    _write_synthetic_qtdb(tmp_path, with_test=False)
    with pytest.raises(DataNotFoundError, match=r"QTDB_test\.mat"):
        load_qtdb(tmp_path)


def test_load_qtdb_env_var_honoured(monkeypatch, tmp_path):
    data = tmp_path / "data"
    _write_synthetic_qtdb(data)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HRSNN_DATA", str(data))
    assert load_qtdb().test.n_samples == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("HRSNN_DATA", str(empty))
    with pytest.raises(DataNotFoundError, match="QTDB_train"):
        load_qtdb()


def test_load_qtdb_bad_arguments(tmp_path):
    _write_synthetic_qtdb(tmp_path)
    for bad in (1.0, -0.1, True, "0.1"):
        with pytest.raises(ConfigError) as err:
            load_qtdb(tmp_path, val_fraction=bad)
        assert err.value.field == "val_fraction"
    with pytest.raises(ConfigError) as err:
        load_qtdb(tmp_path, seed=-1)
    assert err.value.field == "seed"


def test_task_loaders_mapping():
    assert TASK_LOADERS["ecg"] is load_qtdb
    with pytest.raises(TypeError):
        TASK_LOADERS["other"] = load_qtdb  # type: ignore[index]


# ------------------------------------------------------------------------------------------ data lookup


def test_resolve_data_dir_explicit(tmp_path):
    assert resolve_data_dir(tmp_path) == tmp_path.resolve()
    assert resolve_data_dir(str(tmp_path)) == tmp_path.resolve()
    with pytest.raises(DataNotFoundError, match="missing"):
        resolve_data_dir(tmp_path / "missing")
    with pytest.raises(ConfigError) as err:
        resolve_data_dir("")
    assert err.value.field == "data_dir"


def test_resolve_data_dir_env_is_authoritative(monkeypatch, tmp_path):
    monkeypatch.setenv("HRSNN_DATA", str(tmp_path))
    assert resolve_data_dir(None) == tmp_path.resolve()
    monkeypatch.setenv("HRSNN_DATA", str(tmp_path / "nope"))
    with pytest.raises(DataNotFoundError, match="HRSNN_DATA"):
        resolve_data_dir(None)


def test_resolve_data_dir_relative_to_cwd(monkeypatch, tmp_path):
    monkeypatch.delenv("HRSNN_DATA", raising=False)
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "project").mkdir()
    monkeypatch.chdir(tmp_path / "project")
    assert resolve_data_dir(None) == (tmp_path / "shared" / "data").resolve()


def test_resolve_data_dir_relative_to_repo_root(monkeypatch, tmp_path):
    monkeypatch.delenv("HRSNN_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    base_file = Path(tasks_base.__file__).resolve()
    assert base_file.parts[-3:] == ("hrsnn", "tasks", "base.py")
    repo_candidate = (base_file.parents[3] / ".." / "shared" / "data").resolve()
    if repo_candidate.is_dir():
        assert resolve_data_dir(None) == repo_candidate
    else:
        with pytest.raises(DataNotFoundError) as err:
            resolve_data_dir(None)
        assert str(repo_candidate) in str(err.value)
        assert str((tmp_path / ".." / "shared" / "data").resolve()) in str(err.value)


# -------------------------------------------------------------------------------------------- encoding


def test_level_crossing_polynomials_by_hand():
    # Savitzky-Golay of order 3 reproduces polynomials of degree <= 3 exactly, so s = x here.
    t = np.arange(10, dtype=np.float64)
    signal = np.stack([0.05 * t, -0.02 * t, -0.04 * t, 0.01 * t**2], axis=1)
    out = encode_ecg_level_crossing(signal)
    assert out.shape == (10, 8) and out.dtype == np.float32
    ones = np.ones(10, dtype=np.float32)
    ones[-1] = 0.0  # last step: no successor
    zeros = np.zeros(10, dtype=np.float32)
    # lead 0: s[i+1]-s[i] = 0.05 >= 0.03 -> up everywhere but the last step
    assert np.array_equal(out[:, 0], ones) and np.array_equal(out[:, 1], zeros)
    # lead 1: |diff| = 0.02 < 0.03 -> silent
    assert np.array_equal(out[:, 2], zeros) and np.array_equal(out[:, 3], zeros)
    # lead 2: s[i]-s[i+1] = 0.04 >= 0.03 -> down
    assert np.array_equal(out[:, 4], zeros) and np.array_equal(out[:, 5], ones)
    # lead 3: diff = 0.01 (2i + 1) >= 0.03  <=>  i >= 1
    up3 = np.array([0, 1, 1, 1, 1, 1, 1, 1, 1, 0], dtype=np.float32)
    assert np.array_equal(out[:, 6], up3) and np.array_equal(out[:, 7], zeros)


def test_level_crossing_smoothing_by_hand():
    # An impulse of 0.7 at t = 5; interior SG(5, 3) weights are (-3, 12, 17, 12, -3) / 35, and the edge fits
    # see only zeros, so s = 0.02 * (0, 0, 0, -3, 12, 17, 12, -3, 0, 0, 0).
    signal = np.zeros((11, 1))
    signal[5, 0] = 0.7
    s = 0.02 * np.array([0, 0, 0, -3, 12, 17, 12, -3, 0, 0, 0], dtype=np.float64)
    diff = s[1:] - s[:-1]  # (0, 0, -.06, .30, .10, -.10, -.30, .06, 0, 0)
    up = np.append(diff >= 0.03, False).astype(np.float32)
    down = np.append(-diff >= 0.03, False).astype(np.float32)
    assert np.flatnonzero(up).tolist() == [3, 4, 7]
    assert np.flatnonzero(down).tolist() == [2, 5, 6]
    out = encode_ecg_level_crossing(signal)
    assert np.array_equal(out[:, 0], up) and np.array_equal(out[:, 1], down)
    # a higher threshold keeps only the steep crossings
    strict = encode_ecg_level_crossing(signal, threshold=0.2)
    assert np.flatnonzero(strict[:, 0]).tolist() == [3] and np.flatnonzero(strict[:, 1]).tolist() == [6]


def test_level_crossing_validation():
    good = np.zeros((10, 2))
    cases = [
        ({"signal": np.zeros(10)}, "signal"),
        ({"signal": np.zeros((3, 2))}, "signal"),
        ({"signal": np.full((10, 1), np.nan)}, "signal"),
        ({"signal": good, "threshold": 0.0}, "threshold"),
        ({"signal": good, "threshold": True}, "threshold"),
        ({"signal": good, "window": 4}, "window"),
        ({"signal": good, "window": 3, "order": 3}, "window"),
        ({"signal": good, "order": -1}, "order"),
    ]
    for kwargs, field in cases:
        with pytest.raises(ConfigError) as err:
            encode_ecg_level_crossing(**kwargs)
        assert err.value.field == field
    bad = np.zeros((10, 2))
    bad[3, 1] = -np.inf
    with pytest.raises(ConfigError, match=r"signal=\(10, 2\): holds 1 non-finite value .* -inf at step 3, lead 1"):
        encode_ecg_level_crossing(bad)


def test_non_finite_check_reads_big_endian_arrays():
    x = np.zeros((2, 3, 1), dtype=">f8")
    x[1, 2, 0] = np.nan
    assert nonfinite_reason(x, ("sample", "step", "channel")).endswith("nan at sample 1, step 2, channel 0")


# ------------------------------------------------------------------------------------ malformed files


def _write_qtdb_with_inf(root: Path) -> Path:
    """Synthetic QTDB files whose training x (float) holds inf at sample 3, step 4, channel 2 and NaN later."""
    _write_synthetic_qtdb(root)
    path = root / "qtdb" / "QTDB_train.mat"
    mat = scipy.io.loadmat(path)
    x = mat["x"].astype(np.float64)
    x[3, 4, 2] = np.inf
    x[4, 6, 0] = np.nan
    scipy.io.savemat(path, {"x": x, "y": mat["y"]})
    return path


def test_non_finite_input_in_file_is_named(tmp_path):
    path = _write_qtdb_with_inf(tmp_path)
    with pytest.raises(DataFormatError) as err:
        load_qtdb(tmp_path)
    message = str(err.value)
    assert str(path) in message and "\n" not in message
    assert "2 non-finite values" in message and "inf at sample 3, step 4, channel 2" in message


def test_non_finite_one_hot_labels_are_named(tmp_path):
    _write_synthetic_qtdb(tmp_path)
    path = tmp_path / "qtdb" / "QTDB_test.mat"
    mat = scipy.io.loadmat(path)
    y = mat["y"].astype(np.float32)
    y[1, 2, 5] = np.nan
    scipy.io.savemat(path, {"x": mat["x"], "y": y})
    with pytest.raises(DataFormatError, match=r"QTDB_test\.mat.*y holds 1 non-finite value.*nan at sample 1, step 2"):
        load_qtdb(tmp_path)


def _corrupt(path: Path, kind: str) -> None:
    data = path.read_bytes()
    if kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "random":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes())
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "no_y":
        scipy.io.savemat(path, {"x": scipy.io.loadmat(path)["x"]})
    elif kind == "text_x":
        scipy.io.savemat(path, {"x": np.array(["abc", "def"]), "y": scipy.io.loadmat(path)["y"]})
    elif kind == "short_x":
        mat = scipy.io.loadmat(path)
        scipy.io.savemat(path, {"x": mat["x"][:, :, :3], "y": mat["y"]})


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("truncated", "is not a readable MATLAB .mat file"),
        ("random", "is not a readable MATLAB .mat file"),
        ("empty", "is not a readable MATLAB .mat file"),
        ("no_y", "has no variable y"),
        ("text_x", "variable x must be numeric"),
        ("short_x", "variable x has shape (5, 7, 3)"),
    ],
)
def test_malformed_qtdb_file_one_line_naming_it(tmp_path, kind, expected):
    _write_synthetic_qtdb(tmp_path)
    path = tmp_path / "qtdb" / "QTDB_train.mat"
    _corrupt(path, kind)
    with pytest.raises(DataFormatError) as err:
        load_qtdb(tmp_path)
    message = str(err.value)
    assert str(path) in message and expected in message and "\n" not in message


def _train_ecg(tmp_path: Path, data: Path) -> list[str]:
    return ["--store", str(tmp_path / "s.sqlite"), "train", "--task", "ecg", "--data-dir", str(data), "--quiet"]


@pytest.mark.parametrize("kind", ["inf", "random"])
def test_cli_bad_qtdb_file_exits_2_with_one_line(tmp_path, capsys, kind):
    data = tmp_path / "data"
    if kind == "inf":
        path = _write_qtdb_with_inf(data)
    else:
        _write_synthetic_qtdb(data)
        path = data / "qtdb" / "QTDB_train.mat"
        _corrupt(path, "random")
    assert main(_train_ecg(tmp_path, data)) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and str(path) in captured.err
    if kind == "inf":
        assert "sample 3, step 4, channel 2" in captured.err


def test_cli_missing_qtdb_names_the_option_and_variable(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    for folder in (empty, tmp_path / "absent"):
        assert main(_train_ecg(tmp_path, folder)) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--data-dir" in err and "$HRSNN_DATA" in err and str(folder) in err
