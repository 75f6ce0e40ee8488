"""Real-world time series as prediction tasks: the Santa Fe laser, sunspot numbers, and any column of a CSV file.

Every loader feeds its series through the pipeline of :mod:`hrsnn.tasks.chaotic` (steps 2–5 there): a
chronological train/val/test split, a scaler fitted on the training segment only, the input encoding
(:class:`~hrsnn.tasks.chaotic.SeriesEncoding`) and per-segment windows (:class:`~hrsnn.tasks.chaotic.WindowSpec`,
one-step or multi-step targets). Score predictions with :func:`~hrsnn.tasks.chaotic.nrmse` and
:func:`~hrsnn.tasks.chaotic.valid_time`.

- **Santa Fe laser** (Weigend & Gershenfeld 1993, data set A): 10,093 intensity samples of a far-infrared laser in
  a chaotic state, shipped with ``reservoirpy``.
- **Sunspots**: yearly sunspot numbers 1700–2008 (309 values) and monthly means 1749-01 to 2009-06 (3,126
  values), both shipped with ``statsmodels`` (NOAA NGDC, public domain).
- **CSV**: one or more numeric columns of a user file (e.g. daily closing prices, as the LNP paper's stock series),
  optionally ordered by a time column.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from hrsnn.errors import ConfigError, DataFormatError, DataNotFoundError
from hrsnn.tasks.chaotic import RegressionSplits, SeriesEncoding, WindowSpec, _build_splits

__all__ = [
    "SUNSPOT_RESOLUTIONS",
    "load_csv_series",
    "load_santafe_laser",
    "load_sunspots",
    "read_csv_series",
    "santafe_laser_series",
    "sunspots_series",
]

SUNSPOT_RESOLUTIONS: tuple[str, ...] = ("yearly", "monthly")
"""Accepted values of ``resolution`` in :func:`load_sunspots`."""


def _pipeline(
    name: str,
    series: np.ndarray,
    times: Sequence[str] | None,
    *,
    window: int,
    horizon: int,
    stride: int | None,
    multi_output: bool,
    encoding: str,
    spikes: bool,
    n_fields: int,
    field_width: float | None,
    max_probability: float,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    info: dict[str, Any],
) -> RegressionSplits:
    """Steps 2–5 of :mod:`hrsnn.tasks.chaotic` on a ``(L, d)`` series; with ``times`` (one label per row),
    ``info["segment_times"]`` holds the first and last label of each chronological segment."""
    splits = _build_splits(
        name,
        series,
        spec=WindowSpec(window=window, horizon=horizon, stride=stride, multi_output=multi_output),
        encoding=SeriesEncoding(
            kind=encoding, spikes=spikes, n_fields=n_fields, field_width=field_width, max_probability=max_probability
        ),
        components=None,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        info={**info, "length": int(series.shape[0])},
    )
    if times is None:
        return splits
    segment_times = {
        part: (times[start], times[stop - 1]) if stop > start else None
        for part, (start, stop) in splits.info["segments"].items()
    }
    return RegressionSplits(splits.train, splits.val, splits.test, {**splits.info, "segment_times": segment_times})


# ------------------------------------------------------------------------------------------------ Santa Fe laser


def santafe_laser_series() -> np.ndarray:
    """The Santa Fe laser series that ``reservoirpy.datasets.santafe_laser()`` returns, as float64 ``(10093, 1)``.

    Read from the ``santafe_laser.npy`` file that reservoirpy ships (without importing reservoirpy, whose loader
    leaves the file open).

    Raises:
        DataNotFoundError: the file is not in this reservoirpy installation.
    """
    from importlib.resources import files

    resource = files("reservoirpy.datasets") / "santafe_laser.npy"
    if not resource.is_file():
        raise DataNotFoundError(
            f"the Santa Fe laser file is not in this reservoirpy installation ({resource}); reinstall reservoirpy"
        )
    with resource.open("rb") as handle:
        return np.asarray(np.load(handle), dtype=np.float64).reshape(-1, 1)


def load_santafe_laser(
    *,
    window: int = 100,
    horizon: int = 1,
    stride: int | None = None,
    multi_output: bool = False,
    encoding: str = "rate",
    spikes: bool = False,
    n_fields: int = 20,
    field_width: float | None = None,
    max_probability: float = 1.0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> RegressionSplits:
    """Santa Fe laser prediction task: 10,093 samples, 70/10/20 chronological split (train 7065, val 1009,
    test 2019 samples), as :func:`hrsnn.tasks.chaotic.load_lorenz`.

    Args:
        window, horizon, stride, multi_output: see :class:`~hrsnn.tasks.chaotic.WindowSpec`.
        encoding, spikes, n_fields, field_width, max_probability: see :class:`~hrsnn.tasks.chaotic.SeriesEncoding`.
        val_fraction, test_fraction: fractions of the series for validation and test (chronological).
        seed: seeds the Bernoulli spikes.

    Returns:
        :class:`~hrsnn.tasks.chaotic.RegressionSplits` named ``santafe_laser/train`` etc.

    Raises:
        ConfigError: naming the bad argument.
    """
    return _pipeline(
        "santafe_laser",
        santafe_laser_series(),
        None,
        window=window,
        horizon=horizon,
        stride=stride,
        multi_output=multi_output,
        encoding=encoding,
        spikes=spikes,
        n_fields=n_fields,
        field_width=field_width,
        max_probability=max_probability,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        info={"source": "reservoirpy.datasets.santafe_laser() (Santa Fe competition data set A)"},
    )


# ------------------------------------------------------------------------------------------------ sunspots


def _monthly_sunspots() -> tuple[np.ndarray, tuple[str, ...]]:
    """Parse statsmodels' ``sunspots/src/sunspots_monthly.dat``: rows ``<year> <up to 12 monthly means>``."""
    from importlib.resources import files

    resource = files("statsmodels.datasets.sunspots") / "src" / "sunspots_monthly.dat"
    if not resource.is_file():
        raise DataNotFoundError(
            f"the monthly sunspot file is not in this statsmodels installation ({resource}); use "
            "resolution='yearly' or reinstall statsmodels"
        )
    values: list[float] = []
    times: list[str] = []
    for line_no, line in enumerate(resource.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields or not (len(fields[0]) == 4 and fields[0].isdigit()):
            continue  # title, column header, rules, notes
        year, months = int(fields[0]), fields[1:]
        if times and (len(values) % 12 or year != int(times[-1][:4]) + 1):
            raise DataFormatError(
                "statsmodels monthly sunspots",
                str(resource),
                f"line {line_no}: year {year} is out of sequence or follows a partial year",
            )
        if not 1 <= len(months) <= 12:
            raise DataFormatError(
                "statsmodels monthly sunspots", str(resource), f"line {line_no}: {len(months)} months"
            )
        values.extend(float(v) for v in months)
        times.extend(f"{year}-{m:02d}" for m in range(1, len(months) + 1))
    return np.asarray(values, dtype=np.float64).reshape(-1, 1), tuple(times)


def sunspots_series(resolution: str = "yearly") -> tuple[np.ndarray, tuple[str, ...]]:
    """Sunspot numbers shipped with statsmodels, and the time of each value.

    Args:
        resolution: ``"yearly"`` (1700–2008, 309 values, ``statsmodels.datasets.sunspots.load_pandas()``) or
            ``"monthly"`` (monthly means 1749-01 to 2009-06, 3,126 values, the ``src/sunspots_monthly.dat`` file
            that statsmodels ships with the same data set; February 1824 is interpolated there).

    Returns:
        ``(values, times)``: float64 ``(L, 1)`` and labels ``"1700"`` or ``"1749-01"``.

    Raises:
        ConfigError: naming ``resolution``.
    """
    if resolution == "yearly":
        from statsmodels.datasets import sunspots

        frame = sunspots.load_pandas().data
        years = tuple(str(int(y)) for y in frame["YEAR"])
        return frame["SUNACTIVITY"].to_numpy(dtype=np.float64).reshape(-1, 1), years
    if resolution == "monthly":
        return _monthly_sunspots()
    raise ConfigError("resolution", resolution, f"must be one of {SUNSPOT_RESOLUTIONS}")


def load_sunspots(
    *,
    resolution: str = "yearly",
    window: int = 20,
    horizon: int = 1,
    stride: int | None = None,
    multi_output: bool = False,
    encoding: str = "rate",
    spikes: bool = False,
    n_fields: int = 20,
    field_width: float | None = None,
    max_probability: float = 1.0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> RegressionSplits:
    """Sunspot-number prediction task (:func:`sunspots_series`), as :func:`hrsnn.tasks.chaotic.load_lorenz`.

    The yearly series is short (309 values: train 216, val 31, test 62 with the defaults), hence the default
    window of 20 steps (about two solar cycles).

    Args:
        resolution: ``"yearly"`` or ``"monthly"``.
        window, horizon, stride, multi_output: see :class:`~hrsnn.tasks.chaotic.WindowSpec`.
        encoding, spikes, n_fields, field_width, max_probability: see :class:`~hrsnn.tasks.chaotic.SeriesEncoding`.
        val_fraction, test_fraction: fractions of the series for validation and test (chronological).
        seed: seeds the Bernoulli spikes.

    Returns:
        :class:`~hrsnn.tasks.chaotic.RegressionSplits` named ``sunspots/train`` etc.; ``info["segment_times"]``
        gives the first and last year (month) of each segment.

    Raises:
        ConfigError: naming the bad argument.
    """
    values, times = sunspots_series(resolution)
    return _pipeline(
        "sunspots",
        values,
        times,
        window=window,
        horizon=horizon,
        stride=stride,
        multi_output=multi_output,
        encoding=encoding,
        spikes=spikes,
        n_fields=n_fields,
        field_width=field_width,
        max_probability=max_probability,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        info={"source": f"statsmodels sunspots ({resolution}, NOAA NGDC)", "resolution": resolution},
    )


# ------------------------------------------------------------------------------------------------ CSV files


_CSV = "CSV file"


def _parse_time(text: str) -> float | datetime:
    """A number, or an ISO 8601 date/time (``datetime.fromisoformat``)."""
    try:
        return float(text)
    except ValueError:
        return datetime.fromisoformat(text)


def _position(path: Path, names: list[str], field: str, key: str | int) -> int:
    """0-based position of the column ``key`` (a header name or a position)."""
    if isinstance(key, int) and not isinstance(key, bool) and 0 <= key < len(names):
        return key
    if isinstance(key, str) and key in names:
        return names.index(key)
    raise ConfigError(field, key, f"is not a column of {path} (header: {names})")


def _number(path: Path, name: str, line: int, text: str) -> float:
    """The finite number written in one cell."""
    try:
        value = float(text)
    except ValueError:
        shown = "empty" if not text else f"{text!r} is not a number"
        raise DataFormatError(_CSV, str(path), f"column {name!r}, line {line}: {shown}") from None
    if not math.isfinite(value):
        raise DataFormatError(_CSV, str(path), f"column {name!r}, line {line}: {text} is not finite")
    return value


def _time_order(path: Path, name: str, times: list[tuple[float | datetime, str, int]]) -> list[int]:
    """Row positions in increasing time; equal times are an error."""
    try:
        order = sorted(range(len(times)), key=lambda i: times[i][0])
    except TypeError:
        raise DataFormatError(
            _CSV,
            str(path),
            f"time column {name!r} mixes values that cannot be ordered (numbers and dates, or dates "
            "with and without a time zone)",
        ) from None
    for a, b in pairwise(order):
        if times[a][0] == times[b][0]:
            raise DataFormatError(
                _CSV,
                str(path),
                f"time column {name!r}: lines {times[a][2]} and {times[b][2]} have the same time {times[a][1]!r}",
            )
    return order


def read_csv_series(
    path: str | os.PathLike[str],
    column: str | int | Sequence[str | int],
    *,
    time_column: str | int | None = None,
    delimiter: str = ",",
) -> tuple[np.ndarray, tuple[str, ...] | None, bool]:
    """Read numeric columns of a CSV file with a header row.

    Blank lines are skipped. Every other row must hold a finite number in each selected column. With
    ``time_column`` the rows are put in increasing time order (numbers, or ISO 8601 dates such as
    ``2024-01-31``); equal times are an error.

    Args:
        path: the file.
        column: a column name, a 0-based column position, or a sequence of them (a multivariate series).
        time_column: the name or position of a column ordering the rows, or None to keep the file's order.
        delimiter: the field separator.

    Returns:
        ``(values, times, reordered)``: float64 ``(L, d)`` in time order; the time labels as written (None without
        ``time_column``); whether the rows had to be reordered.

    Raises:
        DataNotFoundError: naming a missing file.
        DataFormatError: naming the file, column and line of a value that is missing, not a number or not finite,
            of a bad or repeated time; or a file without a header or data rows, or not UTF-8 text.
        ConfigError: naming ``column`` or ``time_column`` when the header has no such column.
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"CSV file {str(path)!r} not found (tried {path.absolute()})")
    keys = [column] if isinstance(column, str | int) else list(column)
    if not keys:
        raise ConfigError("column", column, "must be a column name or position, or a non-empty sequence of them")
    rows: list[list[float]] = []
    times: list[tuple[float | datetime, str, int]] = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            names = [h.strip() for h in next(reader, [])]
            if not names:
                raise DataFormatError(_CSV, str(path), "is empty (no header row)")
            picked = [_position(path, names, "column", key) for key in keys]
            time_pos = None if time_column is None else _position(path, names, "time_column", time_column)
            for record in reader:
                if not any(cell.strip() for cell in record):
                    continue
                cells = [cell.strip() for cell in record] + [""] * (len(names) - len(record))
                rows.append([_number(path, names[pos], reader.line_num, cells[pos]) for pos in picked])
                if time_pos is not None:
                    try:
                        times.append((_parse_time(cells[time_pos]), cells[time_pos], reader.line_num))
                    except ValueError:
                        raise DataFormatError(
                            _CSV,
                            str(path),
                            f"time column {names[time_pos]!r}, line {reader.line_num}: "
                            f"{cells[time_pos]!r} is not a number or an ISO 8601 date",
                        ) from None
    except UnicodeDecodeError as exc:
        raise DataFormatError(_CSV, str(path), f"is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except csv.Error as exc:
        raise DataFormatError(_CSV, str(path), f"is not valid CSV: {exc}") from exc
    if not rows:
        raise DataFormatError(_CSV, str(path), "has a header but no data rows")
    values = np.asarray(rows, dtype=np.float64)
    if time_pos is None:
        return values, None, False
    order = _time_order(path, names[time_pos], times)
    return values[order], tuple(times[i][1] for i in order), order != list(range(len(order)))


def load_csv_series(
    path: str | os.PathLike[str],
    column: str | int | Sequence[str | int],
    *,
    time_column: str | int | None = None,
    delimiter: str = ",",
    window: int = 50,
    horizon: int = 1,
    stride: int | None = None,
    multi_output: bool = False,
    encoding: str = "rate",
    spikes: bool = False,
    n_fields: int = 20,
    field_width: float | None = None,
    max_probability: float = 1.0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> RegressionSplits:
    """Prediction task on columns of a CSV file (:func:`read_csv_series`), as :func:`hrsnn.tasks.chaotic.load_lorenz`.

    One-step targets by default; ``horizon = h`` predicts the value ``h`` steps ahead, and ``multi_output`` all of
    the next ``h`` values (:class:`~hrsnn.tasks.chaotic.WindowSpec`). The split is chronological (train, then
    val, then test), and the scaler is fitted on the training segment only, so values of val/test outside the
    training range are clipped in the input encoding (targets stay unclipped standardised values).

    Args:
        path, column, time_column, delimiter: see :func:`read_csv_series`.
        window, horizon, stride, multi_output: see :class:`~hrsnn.tasks.chaotic.WindowSpec`.
        encoding, spikes, n_fields, field_width, max_probability: see :class:`~hrsnn.tasks.chaotic.SeriesEncoding`.
        val_fraction, test_fraction: fractions of the rows for validation and test (chronological).
        seed: seeds the Bernoulli spikes.

    Returns:
        :class:`~hrsnn.tasks.chaotic.RegressionSplits` named ``csv/train`` etc.; ``info`` holds the file, columns,
        whether rows were reordered by ``time_column``, and each segment's first and last time.

    Raises:
        DataNotFoundError, DataFormatError: see :func:`read_csv_series`.
        ConfigError: naming the bad argument (``window`` when the training segment is too short for it).
    """
    values, times, reordered = read_csv_series(path, column, time_column=time_column, delimiter=delimiter)
    return _pipeline(
        "csv",
        values,
        times,
        window=window,
        horizon=horizon,
        stride=stride,
        multi_output=multi_output,
        encoding=encoding,
        spikes=spikes,
        n_fields=n_fields,
        field_width=field_width,
        max_probability=max_probability,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        info={
            "source": str(Path(path).absolute()),
            "columns": tuple(column) if not isinstance(column, str | int) else (column,),
            "time_column": time_column,
            "reordered_by_time": reordered,
        },
    )
