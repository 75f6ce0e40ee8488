r"""Small statistics used to report measurements honestly: estimates with their standard error, paired tests.

:class:`Estimate` of values :math:`x_1..x_n`: mean :math:`\bar x`, standard error
:math:`\mathrm{SEM} = s/\sqrt n` with the sample standard deviation :math:`s` (ddof 1; SEM = nan for n = 1).

:func:`paired_comparison` of A and B over paired seeds: differences :math:`d_k = \pm(a_k - b_k)` oriented so that
d > 0 means A is better; mean :math:`\bar d`, the two-sided :math:`(1-\alpha)` Student-t interval
:math:`\bar d \pm t_{1-\alpha/2,\,n-1}\, s_d/\sqrt n`, the exact two-sided sign test
:math:`p = \min(1, 2\,P[\mathrm{Bin}(n', 1/2) \le \min(w, l)])` over the n' nonzero differences with w wins and
l losses, and the two-sided Wilcoxon signed-rank p-value (scipy; exact for small n, 1.0 when every d is 0).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import scipy.stats

from hrsnn.errors import ConfigError

__all__ = ["Estimate", "PairedComparison", "paired_comparison"]


class Estimate(NamedTuple):
    """A measured quantity: mean over n independent repeats and its standard error (nan when n = 1)."""

    mean: float
    sem: float
    n: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Estimate:
        """:math:`\\bar x` and :math:`s/\\sqrt n` of finite ``values`` (at least one)."""
        xs = [float(v) for v in values]
        if not xs:
            raise ConfigError("values", xs, "need at least one value")
        bad = [v for v in xs if not math.isfinite(v)]
        if bad:
            raise ConfigError("values", bad[0], "must be finite")
        n = len(xs)
        mean = math.fsum(xs) / n
        if n == 1:
            return cls(mean, math.nan, 1)
        var = math.fsum((v - mean) ** 2 for v in xs) / (n - 1)
        return cls(mean, math.sqrt(var / n), n)


class PairedComparison(NamedTuple):
    """A vs B over paired seeds (module docstring); ``diff`` > 0 means A is better."""

    n: int
    diff: float
    ci_low: float
    ci_high: float
    wins: int
    losses: int
    sign_p: float
    wilcoxon_p: float

    @property
    def significant(self) -> bool:
        """Whether the confidence interval excludes 0."""
        return self.ci_low > 0.0 or self.ci_high < 0.0

    def verdict(self) -> str:
        """"A better", "B better" (the interval excludes 0) or "no difference shown"."""
        if self.ci_low > 0.0:
            return "A better"
        if self.ci_high < 0.0:
            return "B better"
        return "no difference shown"


def paired_comparison(
    a: Sequence[float], b: Sequence[float], *, higher_is_better: bool, confidence: float = 0.95
) -> PairedComparison:
    """Compare paired measurements ``a[k]`` and ``b[k]`` (same seed k); see the module docstring.

    With one pair the interval is (−inf, inf) and both p-values are 1.
    """
    xs, ys = [float(v) for v in a], [float(v) for v in b]
    if len(xs) != len(ys) or not xs:
        raise ConfigError("b", len(ys), f"must pair with a ({len(xs)} values, at least one)")
    if not all(math.isfinite(v) for v in xs + ys):
        raise ConfigError("values", next(v for v in xs + ys if not math.isfinite(v)), "must be finite")
    if not 0.0 < confidence < 1.0:
        raise ConfigError("confidence", confidence, "must lie in (0, 1)")
    sign = 1.0 if higher_is_better else -1.0
    d = [sign * (x - y) for x, y in zip(xs, ys, strict=True)]
    est = Estimate.of(d)
    wins, losses = sum(v > 0 for v in d), sum(v < 0 for v in d)
    if est.n == 1:
        return PairedComparison(1, est.mean, -math.inf, math.inf, wins, losses, 1.0, 1.0)
    half = float(scipy.stats.t.ppf(0.5 + confidence / 2.0, est.n - 1)) * est.sem
    nonzero = wins + losses
    sign_p = 1.0 if nonzero == 0 else min(1.0, 2.0 * float(scipy.stats.binom.cdf(min(wins, losses), nonzero, 0.5)))
    wilcoxon_p = 1.0 if nonzero == 0 else float(scipy.stats.wilcoxon(d).pvalue)
    return PairedComparison(est.n, est.mean, est.mean - half, est.mean + half, wins, losses, sign_p, wilcoxon_p)
