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


def test_paired_comparison_by_hand() -> None:
    from hrsnn.stats import paired_comparison

    # A better by 1, 2, 3, 4, 5 (higher is better): mean 3, s = sqrt(2.5), t_{0.975,4} = 2.7764451
    c = paired_comparison([2.0, 4.0, 6.0, 8.0, 10.0], [1.0, 2.0, 3.0, 4.0, 5.0], higher_is_better=True)
    half = 2.7764451051977987 * math.sqrt(2.5) / math.sqrt(5)
    assert c.diff == 3.0 and c.n == 5
    assert c.ci_low == pytest.approx(3.0 - half, rel=1e-9) and c.ci_high == pytest.approx(3.0 + half, rel=1e-9)
    assert (c.wins, c.losses) == (5, 0)
    assert c.sign_p == pytest.approx(2 / 32)  # 2 * P[Bin(5, 1/2) <= 0]
    assert c.wilcoxon_p == pytest.approx(2 / 32)  # exact: all ranks positive, 1 of 32 sign patterns each side
    assert c.verdict() == "A better"


def test_paired_comparison_lower_is_better_flips_sign() -> None:
    from hrsnn.stats import paired_comparison

    c = paired_comparison([0.2, 0.3, 0.25], [0.1, 0.1, 0.1], higher_is_better=False)
    assert c.diff == pytest.approx(-0.15) and (c.wins, c.losses) == (0, 3)
    assert c.sign_p == pytest.approx(0.25)  # 2 * P[Bin(3, 1/2) <= 0]


def test_paired_comparison_no_difference_and_single_pair() -> None:
    from hrsnn.stats import paired_comparison

    same = paired_comparison([1.0, 2.0], [1.0, 2.0], higher_is_better=True)
    assert same.diff == 0.0 and same.sign_p == 1.0 and same.wilcoxon_p == 1.0 and not same.significant
    one = paired_comparison([1.0], [0.0], higher_is_better=True)
    assert one.ci_low == -math.inf and one.verdict() == "no difference shown"
    with pytest.raises(ConfigError, match="pair"):
        paired_comparison([1.0, 2.0], [1.0], higher_is_better=True)
