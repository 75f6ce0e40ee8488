"""Tests of the sequential-digits loader and of the shared data-set / split machinery in tasks.base."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from hrsnn.errors import ConfigError
from hrsnn.tasks import (
    DIGITS_MODES,
    TASK_LOADERS,
    SequenceDataset,
    TaskSplits,
    digits_permutation,
    load_digits_sequence,
    split_train_val,
)


def _images() -> np.ndarray:
    return load_digits().data.astype(np.float32)  # (1797, 64), values 0..16


def _in_original_order(splits: TaskSplits) -> tuple[torch.Tensor, torch.Tensor]:
    """All x, y of a digits TaskSplits, put back in load_digits() order via the recorded indices."""
    idx = torch.tensor(
        splits.info["train_indices"] + splits.info["val_indices"] + splits.info["test_indices"],
        dtype=torch.long,
    )
    x = torch.cat([splits.train.x, splits.val.x, splits.test.x])
    y = torch.cat([splits.train.y, splits.val.y, splits.test.y])
    order = torch.argsort(idx)
    return x[order], y[order]


# ------------------------------------------------------------------------------------------- digits task


@pytest.mark.parametrize(("mode", "steps", "channels"), [("row", 8, 8), ("pixel", 64, 1), ("window", 64, 4)])
def test_digits_shapes_per_mode(mode, steps, channels):
    splits = load_digits_sequence(mode=mode)
    for ds in (splits.train, splits.val, splits.test):
        assert ds.x.shape[1:] == (steps, channels)
        assert ds.y.shape == (ds.n_samples,) and not ds.per_step
        assert ds.x.dtype == torch.float32 and ds.y.dtype == torch.long
        assert float(ds.x.min()) >= 0.0 and float(ds.x.max()) <= 1.0
    assert splits.train.n_samples + splits.val.n_samples + splits.test.n_samples == 1797
    assert splits.n_classes == 10 and splits.info["mode"] == mode


def test_digits_pixel_mode_is_image_row_major_over_16():
    images = _images()
    x, y = _in_original_order(load_digits_sequence(mode="pixel"))
    # step t = pixel t = image[t // 8, t % 8] / 16
    image = images[17].reshape(8, 8)
    for t in (0, 9, 30, 63):
        assert x[17, t, 0].item() == image[t // 8, t % 8] / 16.0
    assert np.array_equal(x[:, :, 0].numpy(), images / 16.0)
    assert np.array_equal(y.numpy(), load_digits().target)
    assert float(x.max()) == 1.0  # 16 / 16


def test_digits_row_mode_is_image():
    images = _images()
    x, _ = _in_original_order(load_digits_sequence(mode="row"))
    assert np.array_equal(x.numpy(), images.reshape(-1, 8, 8) / 16.0)


def test_digits_window_mode_known_answer():
    x, _ = _in_original_order(load_digits_sequence(mode="window", window=4))
    first = x[0].numpy() * 16.0  # image 0 of load_digits, back in 0..16
    # row 0 of image 0 is (0, 0, 5, 13, 9, 1, 0, 0); row 7 is (0, 0, 6, 13, 10, 0, 0, 0)
    assert first[0].tolist() == [0, 0, 5, 13]
    assert first[2].tolist() == [5, 13, 9, 1]
    assert first[6].tolist() == [0, 0, 0, 0]  # pixels 6, 7 | 8, 9
    assert first[57].tolist() == [0, 6, 13, 10]  # pixels 57..60 (row 7 starts at pixel 56)
    assert first[58].tolist() == [6, 13, 10, 0]
    # s_t = min(t, 64 - 4) = 60 for t >= 60: the final window (pixels 60..63) is reused
    for t in (60, 61, 62, 63):
        assert first[t].tolist() == [10, 0, 0, 0]


def test_digits_window_one_equals_pixel_mode():
    a = load_digits_sequence(mode="window", window=1)
    b = load_digits_sequence(mode="pixel")
    assert torch.equal(a.train.x, b.train.x)


def test_digits_permutation_fixed_and_invertible():
    perm = digits_permutation(5)
    assert sorted(perm.tolist()) == list(range(64))
    assert torch.equal(perm, digits_permutation(5))
    assert not torch.equal(perm, digits_permutation(6))

    plain = load_digits_sequence(mode="pixel", seed=5)
    a = load_digits_sequence(mode="pixel", permute=True, seed=5)
    b = load_digits_sequence(mode="pixel", permute=True, seed=5)
    assert a.info["permutation"] == tuple(perm.tolist())
    assert torch.equal(a.train.x, b.train.x)
    assert a.info["train_indices"] == plain.info["train_indices"]
    # p'[k] = p[perm[k]]; sorting back with argsort(perm) recovers p
    seq = a.train.x[:, :, 0]
    assert torch.equal(seq, plain.train.x[:, perm, 0])
    assert torch.equal(seq[:, torch.argsort(perm)], plain.train.x[:, :, 0])
    assert not torch.equal(seq, plain.train.x[:, :, 0])


def test_digits_permutation_seed_overrides_seed():
    a = load_digits_sequence(mode="pixel", permute=True, seed=0, permutation_seed=9)
    b = load_digits_sequence(mode="pixel", permute=True, seed=1, permutation_seed=9)
    assert a.info["permutation"] == b.info["permutation"] == tuple(digits_permutation(9).tolist())
    assert a.info["train_indices"] != b.info["train_indices"]
    assert load_digits_sequence().info["permutation"] is None


def test_digits_binarize():
    images = _images()
    x, _ = _in_original_order(load_digits_sequence(mode="pixel", binarize=0.5))
    # p -> 1 if v / 16 > 0.5 else 0
    assert np.array_equal(x[:, :, 0].numpy(), (images / 16.0 > 0.5).astype(np.float32))
    assert set(torch.unique(x).tolist()) == {0.0, 1.0}


def test_digits_splits_disjoint_stratified_and_sized_by_hand():
    splits = load_digits_sequence(seed=0)
    tr, va, te = (set(splits.info[f"{p}_indices"]) for p in ("train", "val", "test"))
    assert not (tr & va or tr & te or va & te)
    assert tr | va | te == set(range(1797))
    for ds in (splits.train, splits.val, splits.test):
        assert torch.all(torch.bincount(ds.y, minlength=10) > 0)
    # class sizes (178, 182, 177, 183, 181, 182, 181, 179, 174, 180); test: floor(0.2 * n_c) sums to 355,
    # the 359 - 355 = 4 largest remainders (.8, .8, .6, .6) go to classes 7, 8, 0, 3
    assert torch.bincount(splits.test.y, minlength=10).tolist() == [36, 36, 35, 37, 36, 36, 36, 36, 35, 36]
    # val: fraction 0.15 / 0.8 = 0.1875 of the rest (1438) -> 270; floors sum to 266,
    # +1 for the largest remainders: classes 7 (.8125), 0 and 2 (.625), 1 (.375, lowest index of a tie)
    assert torch.bincount(splits.val.y, minlength=10).tolist() == [27, 28, 27, 27, 27, 27, 27, 27, 26, 27]
    assert (splits.train.n_samples, splits.val.n_samples, splits.test.n_samples) == (1168, 270, 359)


def test_digits_splits_reproducible():
    a = load_digits_sequence(seed=3)
    b = load_digits_sequence(seed=3)
    c = load_digits_sequence(seed=4)
    assert a.info["val_indices"] == b.info["val_indices"] and torch.equal(a.test.x, b.test.x)
    assert a.info["val_indices"] != c.info["val_indices"]


def test_digits_bad_arguments():
    cases = [
        ({"mode": "column"}, "mode"),
        ({"mode": 3}, "mode"),
        ({"window": 0}, "window"),
        ({"window": 65}, "window"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "val_fraction"),
        ({"test_fraction": 1.0}, "test_fraction"),
        ({"binarize": 1.0}, "binarize"),
        ({"seed": -2}, "seed"),
        ({"permute": True, "permutation_seed": 1.5}, "permutation_seed"),
        ({"permute": 1}, "permute"),
    ]
    for kwargs, field in cases:
        with pytest.raises(ConfigError) as err:
            load_digits_sequence(**kwargs)
        assert err.value.field == field
    assert DIGITS_MODES == ("row", "pixel", "window")


def test_task_loaders_digits():
    assert TASK_LOADERS["digits"] is load_digits_sequence
    assert set(TASK_LOADERS) == {"ecg", "digits", "shd", "ssc", "smnist", "psmnist", "cifar10"}


# ------------------------------------------------------------------------------------- SequenceDataset


def _toy(n: int = 6, t: int = 3, c: int = 2, per_step: bool = False) -> SequenceDataset:
    x = torch.arange(n * t * c, dtype=torch.float32).reshape(n, t, c)
    y = torch.arange(n * t).reshape(n, t) % 3 if per_step else torch.arange(n) % 3
    return SequenceDataset(x=x, y=y, n_classes=3, name="toy")


def test_dataset_properties_and_subset():
    ds = _toy()
    assert (ds.n_samples, ds.n_steps, ds.n_channels, ds.per_step, len(ds)) == (6, 3, 2, False, 6)
    assert _toy(per_step=True).per_step
    sub = ds.subset([4, 1])
    assert torch.equal(sub.x, ds.x[[4, 1]]) and sub.y.tolist() == [1, 1] and sub.name == "toy"
    mask = torch.tensor([True, False, True, False, False, False])
    assert ds.subset(mask, name="m").y.tolist() == [0, 2]
    assert ds.subset([]).x.shape == (0, 3, 2)
    assert ds.to("cpu").x.device.type == "cpu"
    for bad in ([6], [-1], [[0, 1]], [0.5]):
        with pytest.raises(ConfigError) as err:
            ds.subset(bad)
        assert err.value.field == "indices"


def test_dataset_validation_names_field():
    x = torch.zeros(4, 3, 2)
    y = torch.zeros(4, dtype=torch.long)
    cases = [
        ({"x": torch.zeros(4, 3), "y": y}, "dataset.x"),
        ({"x": x.double(), "y": y}, "dataset.x"),
        ({"x": np.zeros((4, 3, 2), dtype=np.float32), "y": y}, "dataset.x"),
        ({"x": torch.zeros(4, 0, 2), "y": y}, "dataset.x"),
        ({"x": x, "y": torch.zeros(5, dtype=torch.long)}, "dataset.y"),
        ({"x": x, "y": torch.zeros(4, 2, dtype=torch.long)}, "dataset.y"),
        ({"x": x, "y": y.int()}, "dataset.y"),
        ({"x": x, "y": torch.tensor([0, 1, 2, 3])}, "dataset.y"),  # label 3 with n_classes = 3
        ({"x": x, "y": torch.tensor([0, -1, 2, 1])}, "dataset.y"),
    ]
    for kwargs, field in cases:
        with pytest.raises(ConfigError) as err:
            SequenceDataset(n_classes=3, name="bad", **kwargs)
        assert err.value.field == field
    with pytest.raises(ConfigError) as err:
        SequenceDataset(x=x, y=y, n_classes=0, name="bad")
    assert err.value.field == "dataset.n_classes"


def test_batches_order_and_shuffle():
    ds = _toy(n=7)
    plain = list(ds.batches(3, shuffle=False))
    assert [b[1].tolist() for b in plain] == [[0, 1, 2], [0, 1, 2], [0]]
    assert len(list(ds.batches(3, shuffle=False, drop_last=True))) == 2
    first = list(ds.batches(3, shuffle=True, generator=torch.Generator().manual_seed(1)))
    again = list(ds.batches(3, shuffle=True, generator=torch.Generator().manual_seed(1)))
    order = torch.randperm(7, generator=torch.Generator().manual_seed(1))
    assert torch.equal(torch.cat([b[0] for b in first]), ds.x[order])
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again, strict=True))
    with pytest.raises(ConfigError) as err:
        ds.batches(3, shuffle=True)
    assert err.value.field == "generator"
    for bad in (0, 2.0, True):
        with pytest.raises(ConfigError) as err:
            ds.batches(bad, shuffle=False)
        assert err.value.field == "batch_size"


def test_split_train_val_stratified_by_hand():
    # class sizes (5, 3, 2), f = 0.3: m = floor(3 + 1/2) = 3; floors (1, 0, 0), remainders (.5, .9, .6)
    # -> classes 1 and 2 get the 2 left over: val per class (1, 1, 1)
    y = torch.tensor([0] * 5 + [1] * 3 + [2] * 2)
    ds = SequenceDataset(x=torch.zeros(10, 2, 1), y=y, n_classes=3, name="s")
    train, val = split_train_val(ds, 0.3, seed=0)
    assert torch.bincount(val.y, minlength=3).tolist() == [1, 1, 1]
    assert torch.bincount(train.y, minlength=3).tolist() == [4, 2, 1]
    assert (train.name, val.name) == ("s/train", "s/val")
    # a class never loses its last member: sizes (1, 9), f = 0.5 -> m = floor(5.5) = 5, floors (0, 4);
    # the left-over one ties (.5, .5), class 0 comes first but is capped, so class 1 takes it: val (0, 5)
    y2 = torch.tensor([0] + [1] * 9)
    ds2 = SequenceDataset(x=torch.zeros(10, 2, 1), y=y2, n_classes=2, name="t")
    train2, val2 = split_train_val(ds2, 0.5, seed=1)
    assert torch.bincount(val2.y, minlength=2).tolist() == [0, 5]
    assert torch.bincount(train2.y, minlength=2).tolist() == [1, 4]


def test_split_train_val_per_step_and_edge_cases():
    ds = _toy(n=10, per_step=True)
    train, val = split_train_val(ds, 0.25, seed=2)
    # m = floor(0.25 * 10 + 1/2) = 3
    assert (train.n_samples, val.n_samples) == (7, 3)
    merged = torch.cat([train.x, val.x])[:, 0, 0].tolist()
    assert sorted(merged) == ds.x[:, 0, 0].tolist()
    again, _ = split_train_val(ds, 0.25, seed=2)
    assert torch.equal(train.x, again.x)
    empty_train, empty_val = split_train_val(ds, 0.0, seed=2)
    assert empty_train.n_samples == 10 and empty_val.x.shape == (0, 3, 2)
    one = _toy(n=1, per_step=True)
    assert split_train_val(one, 0.9, seed=0)[0].n_samples == 1  # never takes the last sequence
    for bad in (1.0, -0.5, float("nan"), True):
        with pytest.raises(ConfigError) as err:
            split_train_val(ds, bad, seed=0)
        assert err.value.field == "val_fraction"


def test_task_splits_info_read_only_and_consistency():
    ds = _toy()
    info = {"a": 1}
    splits = TaskSplits(train=ds, val=ds.subset([]), test=ds, info=info)
    info["a"] = 2
    assert splits.info["a"] == 1
    with pytest.raises(TypeError):
        splits.info["b"] = 3  # type: ignore[index]
    with pytest.raises(ConfigError) as err:
        TaskSplits(train=ds, val=ds, test=_toy(c=3))
    assert err.value.field == "splits.test"
    with pytest.raises(ConfigError) as err:
        TaskSplits(train=ds, val=_toy(per_step=True), test=ds)
    assert err.value.field == "splits.val"


def test_dataset_rejects_non_finite_inputs_naming_the_first():
    x = torch.zeros(4, 3, 2)
    x[2, 1, 0] = float("nan")
    x[3, 2, 1] = float("-inf")
    with pytest.raises(ConfigError) as err:
        SequenceDataset(x=x, y=torch.zeros(4, dtype=torch.long), n_classes=1, name="bad")
    assert err.value.field == "dataset.x"
    assert "2 non-finite values (NaN or inf); the first is nan at sample 2, step 1, channel 0" in str(err.value)


def test_digits_loader_rejects_non_finite_pixels(monkeypatch):
    import sklearn.datasets

    bunch = load_digits()
    bunch.data = bunch.data.copy()
    bunch.data[5, 17] = np.inf  # image 5, row 2, column 1
    monkeypatch.setattr(sklearn.datasets, "load_digits", lambda: bunch)
    with pytest.raises(ConfigError, match="1 non-finite value .*inf at sample 5, step 2, channel 1"):
        load_digits_sequence(mode="row")


@pytest.mark.parametrize(("field", "seed"), [("seed", 2**64), ("seed", np.int64(-3)), ("permutation_seed", -1)])
def test_digits_seeds_outside_generator_range(field, seed):
    with pytest.raises(ConfigError) as err:
        load_digits_sequence(permute=True, **{field: seed})
    assert err.value.field == field and "2**64" in str(err.value)
