"""Tests of the real-world series tasks: CSV files written here (known answers), the Santa Fe laser and sunspots."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hrsnn.errors import ConfigError, DataFormatError, DataNotFoundError
from hrsnn.tasks.series import (
    load_csv_series,
    load_santafe_laser,
    load_sunspots,
    read_csv_series,
    sunspots_series,
)


def _csv(tmp_path, text: str, name: str = "series.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


# ------------------------------------------------------------------------------------------------ CSV


def test_csv_normalises_with_the_training_part_only(tmp_path):
    # 10 rows: train 1..6, val 7, 8, test 1000, 2000 (val and test fractions 0.2 → 2 rows each)
    values = [1, 2, 3, 4, 5, 6, 7, 8, 1000, 2000]
    path = _csv(tmp_path, "day,price\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values)))
    splits = load_csv_series(path, "price", window=1, stride=1, val_fraction=0.2, test_fraction=0.2)
    mean, std = 3.5, math.sqrt(17.5 / 6)  # of 1..6
    assert splits.info["scaler"]["mean"] == pytest.approx((mean,))
    assert splits.info["scaler"]["std"] == pytest.approx((std,))
    assert splits.info["segments"] == {"train": (0, 6), "val": (6, 8), "test": (8, 10)}
    # one-step targets: the standardised next value
    assert splits.train.y[:, 0, 0].tolist() == pytest.approx([(v - mean) / std for v in (2, 3, 4, 5, 6)])
    assert splits.val.y[0, 0, 0].item() == pytest.approx((8 - mean) / std)
    assert splits.test.y[0, 0, 0].item() == pytest.approx((2000 - mean) / std, rel=1e-6)
    # rate inputs are unit values of the training range: 1 → 0, 6 → 1, 7 and 1000 clipped at 1
    assert splits.train.x[:, 0, 0].tolist() == pytest.approx([0, 0.2, 0.4, 0.6, 0.8])
    assert splits.val.x[0, 0, 0].item() == 1.0 and splits.test.x[0, 0, 0].item() == 1.0


def test_csv_multi_step_targets_and_chronology(tmp_path):
    values = np.arange(100, dtype=float) ** 1.5
    path = _csv(tmp_path, "v\n" + "".join(f"{v}\n" for v in values))
    splits = load_csv_series(path, 0, window=4, horizon=3, multi_output=True, stride=2)
    mean, std = splits.info["scaler"]["mean"][0], splits.info["scaler"]["std"][0]
    assert mean == pytest.approx(values[:70].mean()) and std == pytest.approx(values[:70].std())
    z = (values - mean) / std
    assert splits.train.y.shape[1:] == (4, 3)
    # window 1 of train starts at 2: step t predicts z[2+t+1], z[2+t+2], z[2+t+3]
    for t in range(4):
        assert splits.train.y[1, t].tolist() == pytest.approx(z[3 + t : 6 + t].tolist(), rel=1e-6)
    # val and test windows start inside their own parts (after the 70 training rows), in time order
    assert splits.info["segments"] == {"train": (0, 70), "val": (70, 80), "test": (80, 100)}
    assert splits.val.n_samples == 2 and splits.test.n_samples == 7  # starts 70, 72 and 80, 82, ..., 92
    assert splits.val.y[0, 0].tolist() == pytest.approx(z[71:74].tolist(), rel=1e-6)
    assert splits.test.y[-1, -1].tolist() == pytest.approx(z[96:99].tolist(), rel=1e-6)
    assert float(splits.val.y.min()) > float(splits.train.y.max())  # increasing series: later is larger


def test_csv_time_column_reorders_newest_first_files(tmp_path):
    path = _csv(
        tmp_path,
        "Date,Close,Volume\n2024-01-05,14,1\n2024-01-04,13,1\n\n2024-01-03,12,1\n2024-01-02,11,1\n2024-01-01,10,1\n",
    )
    values, times, reordered = read_csv_series(path, ["Close", "Volume"], time_column="Date")
    assert reordered and times == ("2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05")
    assert values.tolist() == [[10, 1], [11, 1], [12, 1], [13, 1], [14, 1]]
    values, times, reordered = read_csv_series(path, "Close")
    assert not reordered and times is None and values[:, 0].tolist() == [14, 13, 12, 11, 10]


def test_csv_segment_times(tmp_path):
    path = _csv(tmp_path, "t,x\n" + "".join(f"{2000 + i},{(i * 7) % 11}\n" for i in range(20)))
    splits = load_csv_series(path, "x", time_column="t", window=3)
    assert splits.info["segment_times"] == {
        "train": ("2000", "2013"),
        "val": ("2014", "2015"),
        "test": ("2016", "2019"),
    }


@pytest.mark.parametrize(
    ("text", "kwargs", "message"),
    [
        ("a,b\n1,2\n3,x\n", {"column": "b"}, "column 'b', line 3: 'x' is not a number"),
        ("a,b\n1,2\n3,\n", {"column": "b"}, "column 'b', line 3: empty"),
        ("a,b\n1,2\n3\n", {"column": "b"}, "column 'b', line 3: empty"),
        ("a,b\n1,2\n3,nan\n", {"column": "b"}, "column 'b', line 3: nan is not finite"),
        ("a,b\n1,2\n\n3,inf\n", {"column": 1}, "column 'b', line 4: inf is not finite"),
        ("a,b\n", {"column": "a"}, "has a header but no data rows"),
        ("", {"column": "a"}, "is empty (no header row)"),
        ("t,b\n1,2\n1,3\n", {"column": "b", "time_column": "t"}, "lines 2 and 3 have the same time '1'"),
        ("t,b\n1,2\nmonday,3\n", {"column": "b", "time_column": "t"}, "line 3: 'monday' is not a number"),
        ("t,b\n1,2\n2024-01-01,3\n", {"column": "b", "time_column": "t"}, "mixes values that cannot be ordered"),
    ],
)
def test_csv_bad_rows_name_file_column_and_line(tmp_path, text, kwargs, message):
    path = _csv(tmp_path, text)
    with pytest.raises(DataFormatError) as info:
        read_csv_series(path, **kwargs)
    assert str(path) in str(info.value) and message in str(info.value), str(info.value)


def test_csv_bad_path_and_column(tmp_path):
    with pytest.raises(DataNotFoundError, match="nope.csv"):
        load_csv_series(tmp_path / "nope.csv", "x")
    path = _csv(tmp_path, "a,b\n1,2\n")
    with pytest.raises(ConfigError, match=r"header: \['a', 'b'\]") as info:
        read_csv_series(path, "price")
    assert info.value.field == "column"
    with pytest.raises(ConfigError) as info:
        read_csv_series(path, "a", time_column=5)
    assert info.value.field == "time_column"


def test_csv_window_too_long_for_the_training_part(tmp_path):
    path = _csv(tmp_path, "x\n" + "".join(f"{i % 5}\n" for i in range(30)))
    with pytest.raises(ConfigError) as info:
        load_csv_series(path, "x", window=50)
    assert info.value.field == "window"


# ------------------------------------------------------------------------------------------------ shipped series


def test_santafe_laser_segments_and_first_target():
    splits = load_santafe_laser(window=100)
    assert splits.info["segments"] == {"train": (0, 7065), "val": (7065, 8074), "test": (8074, 10093)}
    mean, std = splits.info["scaler"]["mean"][0], splits.info["scaler"]["std"][0]
    # the series starts 86, 141, 95, ...: the first target is the standardised second sample
    assert splits.train.y[0, 0, 0].item() == pytest.approx((141 - mean) / std, rel=1e-6)
    assert splits.train.y[0, 1, 0].item() == pytest.approx((95 - mean) / std, rel=1e-6)
    # inputs are the unit values of the same steps: x_t reads sample t, y_t is sample t + 1
    low, high = splits.info["scaler"]["low"][0], splits.info["scaler"]["high"][0]
    for t, sample in enumerate((86, 141, 95)):
        assert splits.train.x[0, t, 0].item() == pytest.approx(((sample - mean) / std - low) / (high - low), rel=1e-6)


def test_sunspots_yearly_and_monthly():
    yearly, years = sunspots_series("yearly")
    assert yearly.shape == (309, 1) and years[0] == "1700" and years[-1] == "2008"
    assert yearly[:3, 0].tolist() == [5.0, 11.0, 16.0]
    monthly, months = sunspots_series("monthly")
    assert monthly.shape == (3126, 1) and months[0] == "1749-01" and months[-1] == "2009-06"
    assert monthly[:3, 0].tolist() == [58.0, 62.6, 70.0]
    assert monthly[12, 0] == 73.3 and months[12] == "1750-01" and monthly[-1, 0] == 2.6
    splits = load_sunspots()
    assert splits.info["segment_times"] == {
        "train": ("1700", "1915"),
        "val": ("1916", "1946"),
        "test": ("1947", "2008"),
    }
    assert splits.train.x.shape[1:] == (20, 1)
    with pytest.raises(ConfigError) as info:
        sunspots_series("daily")
    assert info.value.field == "resolution"
