"""Known answers for hrsnn.stats."""

import math

import pytest

from hrsnn.errors import ConfigError
from hrsnn.stats import Estimate


def test_estimate_by_hand() -> None:
    # values 1, 2, 3, 6: mean 3, sample variance (4 + 1 + 0 + 9) / 3 = 14/3, SEM = sqrt(14/3 / 4)
    e = Estimate.of([1.0, 2.0, 3.0, 6.0])
    assert e.mean == 3.0
    assert e.sem == pytest.approx(math.sqrt(14.0 / 12.0), rel=1e-15)
    assert e.n == 4


def test_estimate_single_value_has_no_sem() -> None:
    e = Estimate.of([0.5])
    assert e.mean == 0.5 and math.isnan(e.sem) and e.n == 1


@pytest.mark.parametrize("values", [[], [1.0, math.nan]])
def test_estimate_rejects_bad_values(values: list[float]) -> None:
    with pytest.raises(ConfigError, match="values"):
        Estimate.of(values)
