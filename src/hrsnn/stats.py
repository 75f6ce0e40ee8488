r"""Small statistics used to report measurements honestly: estimates with their standard error.

:class:`Estimate` of values :math:`x_1..x_n`: mean :math:`\bar x`, standard error
:math:`\mathrm{SEM} = s/\sqrt n` with the sample standard deviation :math:`s` (ddof 1; SEM = nan for n = 1).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import NamedTuple

from hrsnn.errors import ConfigError

__all__ = ["Estimate"]


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
