r"""A share of successes with its Wilson confidence interval.

Counting how many generated images a classifier recognises gives a share; a share
measured on ``n`` images needs an interval. The Wilson score interval keeps
its stated coverage far better than the textbook :math:`\hat p \pm
z\sqrt{\hat p(1-\hat p)/n}`, which collapses to a point at 0 % and 100 %.
"""
from __future__ import annotations

import math
from numbers import Integral, Real
from statistics import NormalDist
from typing import NamedTuple

__all__ = ["Proportion", "wilson_interval"]


class Proportion(NamedTuple):
    """``k`` successes out of ``n``; ``share = k / n`` and its interval ``[low, high]``."""
    share: float
    low: float
    high: float
    k: int
    n: int


def _check(k, n, confidence) -> None:
    for name, value in (("k", k), ("n", n)):
        if isinstance(value, bool) or not isinstance(value, Integral):
            raise ValueError(f"{name}: expected an integer, got {value!r}")
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"expected 0 <= k <= n and n >= 1, got k={k}, n={n}")
    if isinstance(confidence, bool) or not isinstance(confidence, Real) or not 0 < confidence < 1:
        raise ValueError(f"confidence: expected a number in (0, 1), got {confidence!r}")


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> Proportion:
    r"""The share :math:`\hat p = k/n` with its Wilson score interval.

    .. math::
        \frac{\hat p + \frac{z^2}{2n} \pm z\sqrt{\frac{\hat p(1-\hat p)}{n}
        + \frac{z^2}{4n^2}}}{1 + \frac{z^2}{n}}

    Equation (wilson-interval): the set of :math:`p` whose normal-approximation
    test :math:`|\hat p - p| \le z\sqrt{p(1-p)/n}` does not reject, with
    :math:`z` the :math:`(1+\text{confidence})/2` quantile of
    :math:`\mathcal N(0, 1)` (1.96 for 95 %).

    Args:
        k: the number of successes, an integer in ``[0, n]``.
        n: the number of trials, ``>= 1``.
        confidence: the coverage, in ``(0, 1)``.

    Returns:
        :class:`Proportion` ``(share, low, high, k, n)``; ``0 <= low <= share <= high <= 1``.
    """
    _check(k, n, confidence)
    z = NormalDist().inv_cdf((1 + confidence) / 2)
    p = k / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    denominator = 1 + z * z / n
    low, high = (centre - half) / denominator, (centre + half) / denominator
    return Proportion(p, max(0.0, min(low, p)), min(1.0, max(high, p)), int(k), int(n))
