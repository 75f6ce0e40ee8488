"""Tests of the CIFAR-10 loader: tiny pickle batches written here in the real format (the Python 2 protocol-2
pickle of the originals, assembled opcode by opcode, and ``pickle.dump`` of the same dict), the restricted
unpickler, and the encodings (known answers)."""

from __future__ import annotations

import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from hrsnn.errors import ConfigError, DataFormatError, DataNotFoundError
from hrsnn.tasks.cifar import CIFAR10_FILES, RateFrameSource, load_cifar10, read_cifar_batch


def _string(raw: bytes) -> bytes:
    """A Python 2 ``str`` in a protocol-2 pickle: SHORT_BINSTRING (< 256 bytes) or BINSTRING."""
    if len(raw) < 256:
        return b"U" + bytes([len(raw)]) + raw
    return b"T" + struct.pack("<i", len(raw)) + raw


def _py2_batch(data: np.ndarray, labels: list[int]) -> bytes:
    """The bytes cPickle.dump(protocol=2) of Python 2 / numpy 1 writes for {'data': array, 'labels': list}."""
    n, width = data.shape
    array = (
        b"cnumpy.core.multiarray\n_reconstruct\n"
        + b"cnumpy\nndarray\n"
        + b"K\x00\x85"  # (0,)
        + _string(b"b")
        + b"\x87R"  # _reconstruct(ndarray, (0,), 'b')
        + b"(K\x01"  # state: (1, shape, dtype, fortran, bytes)
        + b"M"
        + struct.pack("<H", n)
        + b"M"
        + struct.pack("<H", width)
        + b"\x86"
        + b"cnumpy\ndtype\n"
        + _string(b"u1")
        + b"K\x00K\x01\x87R"  # dtype('u1', 0, 1)
        + b"(K\x03"
        + _string(b"|")
        + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"  # dtype state (3, '|', None, None, None, -1, -1, 0)
        + b"\x89"
        + _string(data.tobytes())
        + b"tb"
    )
    items = _string(b"labels") + b"](" + b"".join(b"K" + bytes([v]) for v in labels) + b"e"
    return b"\x80\x02}(" + _string(b"data") + array + items + b"u."


def _batch(n: int, seed: int) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3072), dtype=np.uint8), [int(v) for v in rng.integers(0, 10, n)]


def _write_cifar(root: Path, per_batch: int = 6, n_test: int = 10) -> dict[str, tuple[np.ndarray, list[int]]]:
    """``root/cifar10/cifar-10-batches-py/``: five training batches (Python 2 bytes) and a test batch
    (``pickle.dump`` protocol 2 of a dict with bytes keys, as numpy 2 writes it)."""
    folder = root / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {f"data_batch_{i}": _batch(per_batch, i) for i in range(1, 6)}
    batches["test_batch"] = _batch(n_test, 9)
    for name, (data, labels) in batches.items():
        if name == "test_batch":
            with (folder / name).open("wb") as handle:
                record = {b"batch_label": b"testing batch 1 of 1", b"labels": labels, b"data": data}
                pickle.dump(record, handle, protocol=2)
        else:
            (folder / name).write_bytes(_py2_batch(data, labels))
    return batches


def _first(ds, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    return next(ds.batches(n, shuffle=False))


# ------------------------------------------------------------------------------------------------ reading


def test_read_cifar_batch_python2_format(tmp_path):
    data, labels = _batch(3, 0)
    path = tmp_path / "data_batch_1"
    path.write_bytes(_py2_batch(data, labels))
    got, got_labels = read_cifar_batch(path)
    assert got.dtype == np.uint8 and np.array_equal(got, data)
    assert got_labels.tolist() == labels


def test_read_cifar_batch_refuses_code(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": Evil(), b"labels": [0]}, protocol=2))
    with pytest.raises(DataFormatError, match=r"refers to (posix|os|nt)\.system, which is refused") as info:
        read_cifar_batch(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert not marker.exists()


def test_read_cifar_batch_errors(tmp_path):
    data, labels = _batch(2, 0)
    good = pickle.dumps({b"data": data, b"labels": labels}, protocol=2)
    cases = {
        "cut": (good[: len(good) // 2], "truncated"),
        "empty": (b"", "is truncated (the pickle ends early)"),
        "text": (b"not a pickle at all", "cannot be unpickled"),
        "list": (pickle.dumps([1, 2], protocol=2), "holds a list, not a dict"),
        "keys": (pickle.dumps({b"data": data}, protocol=2), "lacks the keys ['labels']"),
        "shape": (pickle.dumps({b"data": data[:, :100], b"labels": labels}, protocol=2), "(2, 100)"),
        "float": (pickle.dumps({b"data": data.astype(np.float32), b"labels": labels}, protocol=2), "float32"),
        "count": (pickle.dumps({b"data": data, b"labels": [1]}, protocol=2), "has 1 labels for 2 images"),
        "range": (pickle.dumps({b"data": data, b"labels": [1, 10]}, protocol=2), "labels in [1, 10]"),
    }
    for name, (raw, reason) in cases.items():
        path = tmp_path / name
        path.write_bytes(raw)
        with pytest.raises(DataFormatError) as info:
            read_cifar_batch(path)
        assert str(path) in str(info.value) and reason in str(info.value), (name, str(info.value))


# ------------------------------------------------------------------------------------------------ encodings


def test_rate_frames_are_bernoulli_draws_seeded_per_sample():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (5, 7), dtype=np.uint8)
    source = RateFrameSource(pixels, 30, gain=0.8, seed=11)
    x = source.load(np.array([3, 1]))
    assert x.shape == (2, 30, 7) and x.dtype == torch.float32
    # by hand: sample i fires where U < 0.8 v/255, U from default_rng([seed, i]) drawn (T, D)
    for row, i in enumerate((3, 1)):
        draws = np.random.default_rng([11, i]).random((30, 7))
        p = np.minimum(0.8 * pixels[i].astype(np.float32) / np.float32(255), 1.0)
        assert np.array_equal(x[row].numpy(), (draws < p).astype(np.float32))
    # the same sample gets the same spikes whatever batch it is in
    assert torch.equal(source.load(np.array([1]))[0], x[1])


def test_rate_frames_extremes_and_gain_clipping():
    pixels = np.array([[0, 255, 128]], dtype=np.uint8)
    x = RateFrameSource(pixels, 400, gain=1.0).load(np.array([0]))[0]
    assert x[:, 0].sum() == 0 and x[:, 1].sum() == 400
    assert abs(float(x[:, 2].mean()) - 128 / 255) < 5 * (0.25 / 400) ** 0.5
    assert RateFrameSource(pixels, 50, gain=2.0).load(np.array([0]))[0, :, 2].sum() == 50  # p = min(2·0.502, 1)
    with pytest.raises(ConfigError, match="gain"):
        RateFrameSource(pixels, 5, gain=0.0)


def test_load_cifar10_row_and_pixel_layouts(tmp_path):
    batches = _write_cifar(tmp_path)
    data, labels = batches["test_batch"]
    rows = load_cifar10(data_dir=tmp_path, encoding="row")
    assert (rows.test.n_steps, rows.test.n_channels) == (32, 96)
    x, y = _first(rows.test, 10)
    assert y.tolist() == labels
    img = data[4].astype(np.float64) / 255.0  # red plane, green plane, blue plane
    for r, c, k in [(0, 0, 0), (5, 17, 1), (31, 31, 2), (12, 3, 2)]:
        assert x[4, r, 3 * c + k].item() == pytest.approx(img[k * 1024 + r * 32 + c], abs=1e-7)
    pixels = load_cifar10(data_dir=tmp_path, encoding="pixel")
    assert (pixels.test.n_steps, pixels.test.n_channels) == (1024, 3)
    x, _ = _first(pixels.test, 10)
    for t in (0, 333, 1023):
        want = [img[t], img[1024 + t], img[2048 + t]]
        assert x[4, t].tolist() == pytest.approx(want, abs=1e-7)


def test_load_cifar10_rate_split_and_sources(tmp_path):
    batches = _write_cifar(tmp_path, per_batch=10)
    splits = load_cifar10(data_dir=tmp_path, n_steps=20, seed=4, val_fraction=0.2)
    assert (splits.train.n_steps, splits.train.n_channels, splits.n_classes) == (20, 3072, 10)
    train_idx, val_idx = splits.train.index.tolist(), splits.val.index.tolist()
    assert len(val_idx) == 10 and sorted(train_idx + val_idx) == list(range(50))  # from the 5 training batches
    train_labels = [v for i in range(1, 6) for v in batches[f"data_batch_{i}"][1]]
    assert splits.val.y.tolist() == [train_labels[i] for i in val_idx]
    assert splits.test.index.tolist() == list(range(10)) and splits.test.y.tolist() == batches["test_batch"][1]
    # validation sample j is training image val_idx[j]: its spikes come from default_rng([seed, position])
    x, _ = _first(splits.val, 2)
    image = batches[f"data_batch_{val_idx[1] // 10 + 1}"][0][val_idx[1] % 10]
    draws = np.random.default_rng([4, val_idx[1]]).random((20, 3072))
    assert np.array_equal(x[1].numpy(), (draws < image.astype(np.float32) / np.float32(255)).astype(np.float32))
    assert splits.info["encoding"] == "rate" and splits.info["n_steps"] == 20


def test_load_cifar10_n_limit_and_hrsnn_data(tmp_path, monkeypatch):
    _write_cifar(tmp_path)
    monkeypatch.setenv("HRSNN_DATA", str(tmp_path))
    splits = load_cifar10(encoding="pixel", n_limit=8, val_fraction=0.25)
    assert splits.train.n_samples + splits.val.n_samples == 8 and splits.test.n_samples == 8


def test_load_cifar10_missing_folder_and_batch(tmp_path):
    with pytest.raises(DataNotFoundError, match="hrsnn data fetch cifar10") as info:
        load_cifar10(data_dir=tmp_path)
    assert str(tmp_path / "cifar10" / "cifar-10-batches-py") in str(info.value)
    _write_cifar(tmp_path)
    (tmp_path / "cifar10" / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DataNotFoundError, match="CIFAR-10 batch 'data_batch_3' not found"):
        load_cifar10(data_dir=tmp_path)


def test_load_cifar10_bad_arguments(tmp_path):
    _write_cifar(tmp_path)
    for kwargs, field in [({"encoding": "gray"}, "encoding"), ({"n_steps": 0}, "n_steps"), ({"gain": -1}, "gain")]:
        with pytest.raises(ConfigError) as info:
            load_cifar10(data_dir=tmp_path, **kwargs)
        assert info.value.field == field


def test_cifar10_files_entry():
    (remote,) = CIFAR10_FILES.files
    assert remote.name == "cifar-10-batches-py" and remote.unpack == "untar"
    assert remote.checksum == "md5:c58f30108f718f92721af3b95e74349a"
    assert remote.url == "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


def test_rate_source_is_picklable_for_workers():
    source = RateFrameSource(np.arange(12, dtype=np.uint8).reshape(2, 6) * 20, 7, gain=0.5, seed=3)
    again = pickle.loads(pickle.dumps(source))
    assert torch.equal(again.load(np.array([1, 0])), source.load(np.array([1, 0])))
