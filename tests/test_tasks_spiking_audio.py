"""SHD / SSC: the SRNN spike binning by hand, the lazy HDF5 source and its cache, the loaders and their errors.

Every file is generated here in the Zenke-lab layout (``spikes/times`` vlen float, ``spikes/units`` vlen uint16,
``labels`` uint16, ``extra/keys`` and ``extra/speaker``); nothing touches the network.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from hrsnn.errors import ConfigError, DataFormatError, DataNotFoundError
from hrsnn.network import RSNN, LayerConfig, NeuronConfig, ReadoutConfig, RSNNConfig
from hrsnn.tasks.base import LazySequenceDataset
from hrsnn.tasks.spiking_audio import (
    SHD_FILES,
    SRNN_BINNING,
    SSC_FILES,
    SpikeBinning,
    SpikeH5Source,
    load_shd,
    load_ssc,
)
from hrsnn.training import TrainConfig, Trainer

Sample = tuple[list[float], list[int]]
BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "shd_loading.py"

# One sample whose frame is worked out by hand below: (time s, unit) pairs.
HAND_SPIKES: list[tuple[float, int]] = [
    (-0.1, 1),  # srnn: step 0 (t <= 0), column 5 - 1 = 4.   floor: dropped (t < 0)
    (0.0, 2),  # srnn: step 0, column 3.                     floor: step 0, column 2
    (0.25, 1),  # srnn: step 1 (exactly on the edge 1*dt).    floor: step 1, column 1
    (0.2, 1),  # srnn: step 1, column 4 (repeated below).    floor: step 0, column 1
    (0.2, 1),
    (0.15, 1),
    (0.26, 4),  # srnn: step 2, column 1.                     floor: step 1, column 4
    (0.75, 3),  # srnn: step 3 (the last edge), column 2.     floor: step 3, column 3
    (0.76, 1),  # srnn: after the window, dropped.           floor: step 3, column 1
    (0.1, 0),  # srnn: unit 0, dropped.                      floor: step 0, column 0
]
HAND = SpikeBinning(dt=0.25, n_steps=4, n_channels=5)


def _hand_sample() -> tuple[np.ndarray, np.ndarray]:
    times, units = zip(*HAND_SPIKES, strict=True)
    return np.array(times), np.array(units, dtype=np.uint16)


def _frame(entries: dict[tuple[int, int], float], steps: int = 4, channels: int = 5) -> np.ndarray:
    out = np.zeros((steps, channels), dtype=np.float32)
    for (step, col), value in entries.items():
        out[step, col] = value
    return out


SRNN_BINARY = _frame({(0, 4): 1, (0, 3): 1, (1, 4): 1, (2, 1): 1, (3, 2): 1})
SRNN_COUNTS = _frame({(0, 4): 1, (0, 3): 1, (1, 4): 4, (2, 1): 1, (3, 2): 1})
FLOOR_COUNTS = _frame({(0, 0): 1, (0, 1): 3, (0, 2): 1, (1, 1): 1, (1, 4): 1, (3, 1): 1, (3, 3): 1})


def write_spike_file(
    path: Path,
    samples: list[Sample],
    labels: list[int],
    *,
    times_dtype: type = np.float32,
    keys: tuple[str, ...] | None = None,
) -> Path:
    """An HDF5 file in the Zenke-lab layout."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        spikes = f.create_group("spikes")
        times = spikes.create_dataset("times", (len(samples),), dtype=h5py.vlen_dtype(np.dtype(times_dtype)))
        units = spikes.create_dataset("units", (len(samples),), dtype=h5py.vlen_dtype(np.dtype(np.uint16)))
        for i, (t, u) in enumerate(samples):
            times[i] = np.asarray(t, dtype=times_dtype)
            units[i] = np.asarray(u, dtype=np.uint16)
        f.create_dataset("labels", data=np.asarray(labels, dtype=np.uint16))
        extra = f.create_group("extra")
        if keys is not None:
            extra.create_dataset("keys", data=np.array([k.encode() for k in keys]))
        extra.create_dataset("speaker", data=np.zeros(len(samples), dtype=np.uint16))
    return path


def random_samples(rng: np.random.Generator, n: int, spikes: int = 300) -> list[Sample]:
    out = []
    for _ in range(n):
        k = int(rng.integers(0, spikes))
        out.append((list(rng.uniform(-0.05, 1.2, k)), list(rng.integers(0, 700, k))))
    return out


def shd_files(root: Path, n_train: int = 40, n_test: int = 12, seed: int = 0) -> Path:
    """``root/shd/shd_{train,test}.h5`` with labels cycling over the 20 classes."""
    rng = np.random.default_rng(seed)
    keys = tuple(f"digit-{c}" for c in range(20))
    for name, n in (("shd_train.h5", n_train), ("shd_test.h5", n_test)):
        write_spike_file(root / "shd" / name, random_samples(rng, n), [i % 20 for i in range(n)], keys=keys)
    return root


# -- binning -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_srnn_binning_by_hand(dtype):
    times, units = _hand_sample()
    np.testing.assert_array_equal(HAND.dense(times.astype(dtype), units), SRNN_BINARY)
    counts = SpikeBinning(dt=0.25, n_steps=4, n_channels=5, binary=False)
    np.testing.assert_array_equal(counts.dense(times.astype(dtype), units), SRNN_COUNTS)


def test_floor_identity_counts_binning_by_hand():
    times, units = _hand_sample()
    rule = SpikeBinning(dt=0.25, n_steps=4, n_channels=5, time_rule="floor", channel_rule="identity", binary=False)
    np.testing.assert_array_equal(rule.dense(times, units), FLOOR_COUNTS)
    binary = SpikeBinning(dt=0.25, n_steps=4, n_channels=5, time_rule="floor", channel_rule="identity")
    np.testing.assert_array_equal(binary.dense(times, units), np.minimum(FLOOR_COUNTS, 1))


def test_srnn_edges_compare_in_the_precision_of_the_file():
    # float32(3 * 0.004) lies above the double 3 * 0.004: the authors' `times <= i*dt` (float32 compare) keeps a
    # spike at exactly that float32 time in step 3; a float64 compare would push it to step 4.
    edge = np.float32(3 * 4e-3)
    assert float(edge) > 3 * 4e-3
    times = np.array([edge, np.nextafter(edge, np.float32(1)), np.float32(249 * 4e-3)], dtype=np.float32)
    times = np.append(times, np.nextafter(times[-1], np.float32(2)))
    units = np.array([10, 20, 30, 40], dtype=np.uint16)
    frame = SRNN_BINNING.dense(times, units)
    assert frame.shape == (250, 700)
    assert np.argwhere(frame).tolist() == [[3, 690], [4, 680], [249, 670]]  # the last spike is after the window
    half = np.float16(4e-3)  # float16(0.004) > 0.004 as well
    assert float(half) > 4e-3
    frame16 = SRNN_BINNING.dense(np.array([half, np.nextafter(half, np.float16(1))]), np.array([1, 2]))
    assert np.argwhere(frame16).tolist() == [[1, 699], [2, 698]]


def _authors_loop(times: np.ndarray, units: np.ndarray, dt: float, n: int) -> np.ndarray:
    """The spec's SHD/generate_dataset.py procedure, step by step: take the spikes with t <= i*dt, drop them."""
    frame = []
    for i in range(n):
        take = np.argwhere(times <= i * dt).flatten()
        vals = units[take]
        vals = vals[vals > 0]
        row = np.zeros(700)
        row[700 - vals.astype(np.int64)] = 1
        times, units = np.delete(times, take), np.delete(units, take)
        frame.append(row)
    return np.array(frame, dtype=np.float32)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_srnn_rule_matches_the_authors_loop(dtype):
    rng = np.random.default_rng(3)
    on_edges = np.arange(-5, 260) * 4e-3  # many spikes exactly on (rounded) edges, before 0 and after the window
    times = np.concatenate([rng.choice(on_edges, 3000), rng.uniform(-0.1, 1.1, 3000)]).astype(dtype)
    units = rng.integers(0, 700, times.size).astype(np.uint16)
    np.testing.assert_array_equal(SRNN_BINNING.dense(times, units), _authors_loop(times, units, 4e-3, 250))


def test_binning_options_and_spikes_are_checked():
    with pytest.raises(ConfigError, match=r"binning.dt=0"):
        SpikeBinning(dt=0)
    with pytest.raises(ConfigError, match=r"binning.n_steps"):
        SpikeBinning(n_steps=0)
    with pytest.raises(ConfigError, match=r"binning.time_rule='ceil'"):
        SpikeBinning(time_rule="ceil")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"binning.channel_rule"):
        SpikeBinning(channel_rule="reversed")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"binning.binary=1"):
        SpikeBinning(binary=1)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"times=nan: must be finite; 1 NaN/inf, the first at spike 1"):
        SRNN_BINNING.dense(np.array([0.1, np.nan]), np.array([1, 2]))
    with pytest.raises(ConfigError, match=r"units=700: must lie in \[0, 700\)"):
        SRNN_BINNING.dense(np.array([0.1, 0.2]), np.array([1, 700]))
    with pytest.raises(ConfigError, match=r"units='1 units': needs one unit per spike time \(2\)"):
        SRNN_BINNING.dense(np.array([0.1, 0.2]), np.array([1]))


def test_icons_variant_is_other_parameters():
    binning = SpikeBinning(dt=1e-2, n_steps=100)
    frame = binning.dense(np.array([0.0, 0.01, 0.015, 0.99, 0.995]), np.array([1, 1, 1, 699, 699]))
    assert frame.shape == (100, 700)
    assert np.argwhere(frame).tolist() == [[0, 699], [1, 699], [2, 699], [99, 1]]


# -- the lazy source --------------------------------------------------------------------------------------------


def _hand_file(path: Path, **kwargs) -> Path:
    times, units = _hand_sample()
    other = ([0.5, 0.0], [2, 2])  # step 2 and step 0, column 3
    return write_spike_file(path, [(list(times), list(units)), other, ([], [])], [1, 0, 1], **kwargs)


def test_source_loads_frames_in_the_order_asked_with_repeats(tmp_path):
    src = SpikeH5Source(_hand_file(tmp_path / "s.h5", times_dtype=np.float32), HAND, n_classes=2)
    assert (len(src), src.n_steps, src.n_channels) == (3, 4, 5)
    np.testing.assert_array_equal(src.labels, [1, 0, 1])
    x = src.load(np.array([1, 0, 2, 0]))
    assert x.dtype == torch.float32 and x.shape == (4, 4, 5)
    other = _frame({(2, 3): 1, (0, 3): 1})
    for row, want in enumerate((other, SRNN_BINARY, np.zeros((4, 5)), SRNN_BINARY)):
        np.testing.assert_array_equal(x[row].numpy(), want)
    assert src.load(np.zeros(0, dtype=np.int64)).shape == (0, 4, 5)
    with pytest.raises(ConfigError, match=r"indices=\(0, 3\): must lie in \[0, 3\)"):
        src.load([0, 3])


def test_source_pickles_without_handles_and_reopens(tmp_path):
    src = SpikeH5Source(_hand_file(tmp_path / "s.h5"), HAND)
    first = src.load([0, 1])  # opens the file in this process
    clone = pickle.loads(pickle.dumps(src))
    assert clone._opened is None
    torch.testing.assert_close(clone.load([0, 1]), first)


def _load_in_child(src: SpikeH5Source, queue) -> None:
    x = src.load([0, 1])
    queue.put((os.getpid(), src._opened[0] if src._opened else None, float(x.sum())))


def test_a_forked_process_opens_its_own_file_handle(tmp_path):
    src = SpikeH5Source(_hand_file(tmp_path / "s.h5"), HAND)
    total = float(src.load([0, 1]).sum())  # the parent's handle, inherited by the fork
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_load_in_child, args=(src, queue))  # forked: src is inherited, not pickled
    child.start()
    pid, opened_by, child_total = queue.get(timeout=30)
    child.join(timeout=30)
    assert opened_by == pid != os.getpid()
    assert child_total == total


def test_lazy_batches_with_worker_processes_equal_in_process_batches(tmp_path):
    root = shd_files(tmp_path, n_train=24, n_test=4)
    src = SpikeH5Source(root / "shd" / "shd_train.h5", SpikeBinning(dt=0.05, n_steps=20), n_classes=20)
    src.load([0])  # an open handle in the parent: forked workers must reopen the file
    serial = LazySequenceDataset.from_source(src, src.labels, "t", n_classes=20)
    parallel = LazySequenceDataset.from_source(src, src.labels, "t", n_classes=20, workers=2)
    a = list(serial.batches(5, shuffle=True, generator=torch.Generator().manual_seed(1)))
    b = list(parallel.batches(5, shuffle=True, generator=torch.Generator().manual_seed(1)))
    assert len(a) == len(b) == 5
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        torch.testing.assert_close(xa, xb)
        torch.testing.assert_close(ya, yb)


@pytest.mark.parametrize("binary", [True, False])
def test_cache_gives_the_same_frames_and_is_reused(tmp_path, monkeypatch, binary):
    path = write_spike_file(tmp_path / "d.h5", random_samples(np.random.default_rng(5), 30), [0] * 30)
    binning = SpikeBinning(dt=0.01, n_steps=100, binary=binary)
    plain = SpikeH5Source(path, binning)
    cached = SpikeH5Source(path, binning, cache_dir=tmp_path / "cache")
    idx = np.array([29, 3, 3, 0, 17])
    torch.testing.assert_close(cached.load(idx), plain.load(idx))
    assert not binary or float(plain.load(idx).max()) == 1.0
    assert binary or float(plain.load(idx).max()) > 1.0  # counts mode really counts
    folders = list((tmp_path / "cache").iterdir())
    assert folders == [cached.cache_path]  # no temporary folder left behind
    expected = {"meta.json", "offsets.npy", "events.bin"} | (set() if binary else {"counts.bin"})
    assert {p.name for p in cached.cache_path.iterdir()} == expected

    def no_rebuild(*args, **kwargs):
        raise AssertionError("the cache was rebuilt")

    monkeypatch.setattr(SpikeH5Source, "_write_cache", no_rebuild)
    again = SpikeH5Source(path, binning, cache_dir=tmp_path / "cache")
    assert again.cache_path == cached.cache_path
    torch.testing.assert_close(pickle.loads(pickle.dumps(again)).load(idx), plain.load(idx))


def test_cache_is_keyed_by_binning_and_file(tmp_path):
    path = write_spike_file(tmp_path / "d.h5", random_samples(np.random.default_rng(6), 10), [0] * 10)
    cache = tmp_path / "cache"
    a = SpikeH5Source(path, SpikeBinning(dt=0.01, n_steps=100), cache_dir=cache)
    other = SpikeBinning(dt=0.02, n_steps=50, channel_rule="identity")
    b = SpikeH5Source(path, other, cache_dir=cache)
    assert a.cache_path != b.cache_path
    torch.testing.assert_close(b.load(np.arange(10)), SpikeH5Source(path, other).load(np.arange(10)))
    # the same path rewritten with other spikes: a new cache, not the stale one
    write_spike_file(path, random_samples(np.random.default_rng(7), 10), [0] * 10)
    c = SpikeH5Source(path, SpikeBinning(dt=0.01, n_steps=100), cache_dir=cache)
    assert c.cache_path != a.cache_path
    torch.testing.assert_close(c.load(np.arange(10)), SpikeH5Source(path, c.binning).load(np.arange(10)))


def test_interrupted_cache_build_leaves_nothing(tmp_path, monkeypatch):
    path = write_spike_file(tmp_path / "d.h5", random_samples(np.random.default_rng(8), 5), [0] * 5)

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        SpikeH5Source(path, SRNN_BINNING, cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []
    monkeypatch.undo()
    src = SpikeH5Source(path, SRNN_BINNING, cache_dir=tmp_path / "cache")
    torch.testing.assert_close(src.load(np.arange(5)), SpikeH5Source(path).load(np.arange(5)))


# -- errors --------------------------------------------------------------------------------------------------------


def test_missing_files_name_the_paths_and_the_fetch_command(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"shd_train.h5.*hrsnn data fetch shd"):
        load_shd(data_dir=tmp_path)
    write_spike_file(tmp_path / "ssc" / "ssc_train.h5", [([0.1], [1])], [0])
    with pytest.raises(DataNotFoundError, match=r"ssc_valid.h5"):
        load_ssc(data_dir=tmp_path)
    with pytest.raises(DataNotFoundError, match=r"nope.h5"):
        SpikeH5Source(tmp_path / "nope.h5")


def test_unreadable_files_are_named(tmp_path):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"this is not HDF5" * 100)
    with pytest.raises(DataFormatError, match=r"junk.h5.*is not a readable HDF5 file"):
        SpikeH5Source(junk)
    full = write_spike_file(tmp_path / "full.h5", random_samples(np.random.default_rng(0), 20), [0] * 20)
    cut = tmp_path / "cut.h5"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(DataFormatError, match=r"cut.h5.*(truncated)"):
        SpikeH5Source(cut).load(np.arange(20))


def test_layout_problems_are_named(tmp_path):
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("spikes/times", (2,), dtype=h5py.vlen_dtype(np.dtype(np.float32)))
        f.create_dataset("spikes/units", (2,), dtype=h5py.vlen_dtype(np.dtype(np.uint16)))
    with pytest.raises(DataFormatError, match=r"f.h5.*has no dataset 'labels'"):
        SpikeH5Source(path)
    with h5py.File(path, "a") as f:
        f.create_dataset("labels", data=np.zeros(3, dtype=np.uint16))
    with pytest.raises(DataFormatError, match=r"datasets differ in length: \{'spikes/times': 2, 'spikes/units': 2, "):
        SpikeH5Source(path)
    with h5py.File(path, "w") as f:
        f.create_dataset("spikes/times", (1,), dtype=h5py.vlen_dtype(np.dtype(np.int32)))
        f.create_dataset("spikes/units", (1,), dtype=h5py.vlen_dtype(np.dtype(np.uint16)))
        f.create_dataset("labels", data=np.zeros(1, dtype=np.uint16))
    with pytest.raises(DataFormatError, match=r"'spikes/times' has dtype .*expected variable-length float arrays"):
        SpikeH5Source(path)


def test_labels_out_of_range_are_named(tmp_path):
    root = shd_files(tmp_path)
    write_spike_file(root / "shd" / "shd_test.h5", [([0.1], [1])] * 3, [0, 20, 21])
    with pytest.raises(DataFormatError, match=r"SHD test file=.*label 20 at sample 1 is outside \[0, 20\) \(2 such"):
        load_shd(data_dir=root)


def test_bad_samples_are_named_when_loaded_or_cached(tmp_path):
    samples: list[Sample] = [([0.1, 0.2], [1, 2]), ([0.1, float("nan")], [1, 2]), ([0.3], [5, 6]), ([0.4], [700])]
    path = write_spike_file(tmp_path / "bad.h5", samples, [0, 0, 0, 0])
    src = SpikeH5Source(path)
    assert float(src.load([0]).sum()) == 2.0  # good samples still load
    with pytest.raises(DataFormatError, match=r"bad.h5.*sample 1: spikes/times = nan must be finite"):
        src.load([0, 1])
    with pytest.raises(DataFormatError, match=r"sample 2: spikes/units = '2 units' needs one unit per spike time"):
        src.load([2])
    with pytest.raises(DataFormatError, match=r"sample 3: spikes/units = 700 must lie in \[0, 700\)"):
        src.load([3])
    with pytest.raises(DataFormatError, match=r"sample 1: spikes/times = nan"):
        SpikeH5Source(path, cache_dir=tmp_path / "cache")


# -- loaders -------------------------------------------------------------------------------------------------------


def _check_shd(splits, root: Path) -> None:
    assert (splits.train.name, splits.val.name, splits.test.name) == ("shd/train", "shd/val", "shd/test")
    assert (splits.n_classes, splits.n_channels, splits.train.n_steps) == (20, 700, 250)
    assert (splits.train.n_samples, splits.val.n_samples, splits.test.n_samples) == (36, 4, 12)
    info = splits.info
    assert info["train_file"] == str((root / "shd" / "shd_train.h5").absolute())
    assert info["classes"][:2] == ("digit-0", "digit-1")
    assert info["binning"] == SRNN_BINNING.to_dict()
    train, val = set(info["train_indices"]), set(info["val_indices"])
    assert not train & val and train | val == set(range(40))
    # stratified: 4 of 40 over 20 classes of 2 members each go to 4 different classes
    assert len({i % 20 for i in val}) == 4
    np.testing.assert_array_equal(splits.val.index.numpy(), sorted(val))
    np.testing.assert_array_equal(splits.val.y.numpy(), [i % 20 for i in sorted(val)])
    assert splits.test.index.tolist() == list(range(12))
    with h5py.File(root / "shd" / "shd_train.h5") as f:
        i = sorted(val)[0]
        expected = SRNN_BINNING.dense(f["spikes/times"][i], f["spikes/units"][i])
    x, y = next(splits.val.batches(2, shuffle=False))
    np.testing.assert_array_equal(x[0].numpy(), expected)
    assert int(y[0]) == i % 20


def test_load_shd_from_data_dir_and_from_env(tmp_path, monkeypatch):
    root = shd_files(tmp_path / "data")
    _check_shd(load_shd(data_dir=root, val_fraction=0.1, seed=3), root)
    monkeypatch.setenv("HRSNN_DATA", str(root))
    from_env = load_shd(val_fraction=0.1, seed=3)
    _check_shd(from_env, root)
    seeds = {load_shd(data_dir=root, seed=s).info["val_indices"] for s in range(4)}
    assert len(seeds) > 1  # the seed picks the members
    with pytest.raises(ConfigError, match="val_fraction=1.0"):
        load_shd(data_dir=root, val_fraction=1.0)
    with pytest.raises(ConfigError, match="workers=-1"):
        load_shd(data_dir=root, workers=-1)


def test_load_shd_with_cache_and_another_binning(tmp_path):
    root = shd_files(tmp_path)
    icons = SpikeBinning(dt=1e-2, n_steps=100)
    plain = load_shd(data_dir=root, binning=icons)
    cached = load_shd(data_dir=root, binning=icons, cache_dir=tmp_path / "cache")
    assert cached.train.n_steps == 100 and cached.info["cache_dir"] == str(tmp_path / "cache")
    assert len(list((tmp_path / "cache").iterdir())) == 2  # one per file
    for a, b in zip(plain.test.batches(5, shuffle=False), cached.test.batches(5, shuffle=False), strict=True):
        torch.testing.assert_close(a[0], b[0])


def test_load_ssc_uses_its_validation_file(tmp_path):
    rng = np.random.default_rng(2)
    for name, n in (("ssc_train.h5", 7), ("ssc_valid.h5", 3), ("ssc_test.h5", 5)):
        write_spike_file(tmp_path / "ssc" / name, random_samples(rng, n), [34 - i for i in range(n)])
    splits = load_ssc(data_dir=tmp_path)
    assert (splits.train.n_samples, splits.val.n_samples, splits.test.n_samples) == (7, 3, 5)
    assert splits.n_classes == 35 and splits.val.name == "ssc/val"
    assert splits.val.y.tolist() == [34, 33, 32]
    assert splits.info["val_file"].endswith("ssc_valid.h5")
    assert splits.info["classes"][0] == "0"  # no extra/keys in these files


def test_dataset_file_tables_point_to_the_zenke_lab_server():
    assert [f.name for f in SHD_FILES.files] == ["shd_train.h5", "shd_test.h5"]
    assert [f.name for f in SSC_FILES.files] == ["ssc_train.h5", "ssc_valid.h5", "ssc_test.h5"]
    for remote in SHD_FILES.files + SSC_FILES.files:
        assert remote.url == f"https://zenkelab.org/datasets/{remote.name}.gz"
        assert remote.checksum == "list:https://zenkelab.org/datasets/md5sums.txt" and remote.unpack == "gunzip"


# -- end to end ------------------------------------------------------------------------------------------------------


def test_a_few_training_epochs_on_a_generated_shd_file(tmp_path):
    rng = np.random.default_rng(0)

    def sample(label: int) -> Sample:
        low = 1 if label == 0 else 600  # class 0 fires in the high columns (700 - u), class 1 in the low ones
        k = 60
        return list(rng.uniform(0.0, 0.4, k)), list(rng.integers(low, low + 99, k))

    for name, n in (("shd_train.h5", 40), ("shd_test.h5", 8)):
        labels = [i % 2 for i in range(n)]
        write_spike_file(tmp_path / "shd" / name, [sample(c) for c in labels], labels)
    splits = load_shd(data_dir=tmp_path, binning=SpikeBinning(dt=0.05, n_steps=10), val_fraction=0.2)
    cfg = RSNNConfig(
        n_inputs=700,
        n_outputs=20,
        layers=(LayerConfig(size=16, neuron=NeuronConfig(b0=0.05)),),
        readout=ReadoutConfig(neuron=NeuronConfig(b0=0.05)),
    )
    trainer = Trainer(RSNN(cfg, seed=0), TrainConfig(epochs=4, batch_size=8, progress=False))
    result = trainer.fit(splits.train, splits.val)
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < losses[0]
    assert result.best_val["accuracy"] == 1.0


def test_loading_benchmark_runs_on_a_small_file(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("hrsnn_bench_shd_loading", BENCHMARK)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.write_shd_like(tmp_path, 30, 100, "float16")
    with h5py.File(tmp_path / "shd" / "shd_train.h5") as f:
        assert f["spikes/times"].shape == (30,) and f["spikes/times"][0].dtype == np.float16
        assert all(80 <= len(t) <= 120 for t in f["spikes/units"][()])
    argv = "--samples 40 --spikes 50 --batch-size 8 --workers 1 --rounds 1 --pass-batches 2 --train-batches 1"
    report = bench.main(argv.split())
    assert report["load 0 workers / training"] > 0
    out = capsys.readouterr().out
    for row in ("0 workers", "1 workers", "cache, 0 workers", "source.load only", "fed by 1 workers"):
        assert row in out
