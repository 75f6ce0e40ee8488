"""LazySequenceDataset: batches built per batch from a source, identical to the in-memory data set's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hrsnn.errors import ConfigError
from hrsnn.tasks.base import LazySequenceDataset, SequenceDataset, TaskSplits, split_train_val


class ArraySource:
    """Stores uint8 codes; builds x = code / 10 per batch (picklable for worker processes)."""

    def __init__(self, codes: np.ndarray, poison: int | None = None) -> None:
        self.codes = codes
        self.poison = poison

    @property
    def n_steps(self) -> int:
        return self.codes.shape[1]

    @property
    def n_channels(self) -> int:
        return self.codes.shape[2]

    def __len__(self) -> int:
        return self.codes.shape[0]

    def load(self, indices: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(self.codes[indices].astype(np.float32) / 10)
        if self.poison is not None and self.poison in indices.tolist():
            x[list(indices).index(self.poison), 1, 0] = float("nan")
        return x


def _pair(n: int = 23) -> tuple[LazySequenceDataset, SequenceDataset]:
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 10, size=(n, 5, 3), dtype=np.uint8)
    y = torch.as_tensor(rng.integers(0, 4, size=n))
    lazy = LazySequenceDataset.from_source(ArraySource(codes), y, "toy", n_classes=4)
    eager = SequenceDataset(torch.from_numpy(codes.astype(np.float32) / 10), y, 4, "toy")
    return lazy, eager


@pytest.mark.parametrize("workers", [0, 2])
def test_batches_equal_in_memory_batches(workers):
    lazy, eager = _pair()
    lazy = LazySequenceDataset.from_source(lazy.source, lazy.y, "toy", n_classes=4, workers=workers)
    got = list(lazy.batches(6, shuffle=True, generator=torch.Generator().manual_seed(3)))
    want = list(eager.batches(6, shuffle=True, generator=torch.Generator().manual_seed(3)))
    assert [b[0].shape[0] for b in got] == [6, 6, 6, 5]
    for (xg, yg), (xw, yw) in zip(got, want, strict=True):
        assert torch.equal(xg, xw) and torch.equal(yg, yw)


def test_subset_and_split_follow_the_index():
    lazy, eager = _pair()
    sub = lazy.subset([4, 0, 7], name="s")
    assert sub.index.tolist() == [4, 0, 7] and sub.name == "s"
    (x, y), = list(sub.batches(10, shuffle=False))
    assert torch.equal(x, eager.x[[4, 0, 7]]) and torch.equal(y, eager.y[[4, 0, 7]])
    tr_l, va_l = split_train_val(lazy, 0.3, seed=5)
    tr_e, va_e = split_train_val(eager, 0.3, seed=5)
    assert isinstance(tr_l, LazySequenceDataset)
    assert torch.equal(next(tr_l.batches(100, shuffle=False))[0], tr_e.x)
    assert torch.equal(next(va_l.batches(100, shuffle=False))[0], va_e.x)
    splits = TaskSplits(tr_l, va_l, lazy)
    assert splits.n_channels == 3 and splits.n_classes == 4


def test_mixed_kinds_in_splits_are_refused():
    lazy, eager = _pair()
    with pytest.raises(ConfigError, match="splits.val"):
        TaskSplits(lazy, eager, lazy)


def test_a_bad_batch_names_the_sample():
    lazy, _ = _pair()
    bad = LazySequenceDataset.from_source(ArraySource(lazy.source.codes, poison=9), lazy.y, "toy", n_classes=4)
    with pytest.raises(ConfigError, match=r"toy samples.*NaN.*step 1, channel 0"):
        list(bad.batches(5, shuffle=False))


def test_labels_and_index_are_checked():
    lazy, _ = _pair()
    with pytest.raises(ConfigError, match="labels must lie in"):
        LazySequenceDataset.from_source(lazy.source, lazy.y, "toy", n_classes=2)
    with pytest.raises(ConfigError, match="dataset.index"):
        LazySequenceDataset.from_source(lazy.source, lazy.y[:2], "toy", index=[0, 99], n_classes=4)


class FailingSource(ArraySource):
    def load(self, indices: np.ndarray) -> torch.Tensor:
        if 3 in indices.tolist():
            raise ConfigError("toy file", "/data/toy.h5", "sample 3 is truncated")
        return super().load(indices)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_source_error_reaches_the_caller_unchanged_from_workers(workers):
    lazy, _ = _pair()
    bad = LazySequenceDataset.from_source(FailingSource(lazy.source.codes), lazy.y, "toy", n_classes=4, workers=workers)
    with pytest.raises(ConfigError, match=r"^toy file='/data/toy.h5': sample 3 is truncated$") as info:
        list(bad.batches(2, shuffle=False))
    assert info.value.field == "toy file" and info.value.reason == "sample 3 is truncated"
