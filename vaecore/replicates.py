r"""Training runs repeated over seeds: mean ± standard deviation, and a test of a difference.

One training run of A against one run of B says little: a different
initialisation and data order moves a test metric by an amount that only
repeated runs reveal. :func:`summarize` reports ``n`` runs as mean ± sample
standard deviation (``ddof = 1``, the seed-to-seed spread, not a standard
error), and :func:`compare` tests whether two recipes differ:

- ``paired=False``: Welch's t-test (unequal variances) on the two sets of runs;
- ``paired=True``: the t-test on per-seed differences, for designs where run
  ``i`` of A and run ``i`` of B share something that moves both (the same
  seed's initialisation and data order).

These intervals are over training seeds. The standard error over test images
of one run (e.g. a paired SE over the same 10,000 images) is a different
quantity: it says how precisely one model was measured, not how much
retraining would change it. Where a difference is claimed, report both.
"""
from __future__ import annotations

import math
from numbers import Real
from typing import NamedTuple, Sequence

from scipy import stats

__all__ = ["Replicates", "Comparison", "summarize", "compare"]


class Replicates(NamedTuple):
    """``n`` runs' ``values``: their ``mean`` and sample standard deviation ``sd`` (ddof 1)."""
    mean: float
    sd: float
    n: int
    values: tuple[float, ...]

    def __str__(self) -> str:
        return f"{self.mean:.2f} ± {self.sd:.2f} (n = {self.n})"


class Comparison(NamedTuple):
    """``a - b``: mean ``difference``, the ``t`` statistic, its degrees of freedom ``df`` and two-sided ``p``."""
    difference: float
    t: float
    df: float
    p: float
    test: str


def _values(name: str, values: Sequence[Real], minimum: int) -> tuple[float, ...]:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise ValueError(f"{name}: expected a sequence of numbers, got {type(values).__name__}")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, Real) or not math.isfinite(v):
            raise ValueError(f"{name}: expected finite numbers, got {v!r}")
        out.append(float(v))
    if len(out) < minimum:
        raise ValueError(f"{name}: expected at least {minimum} runs, got {len(out)}")
    return tuple(out)


def summarize(values: Sequence[Real]) -> Replicates:
    """Mean ± sample standard deviation of at least two runs' values."""
    v = _values("values", values, 2)
    mean = math.fsum(v) / len(v)
    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in v) / (len(v) - 1))
    return Replicates(mean, sd, len(v), v)


def compare(a: Sequence[Real], b: Sequence[Real], *, paired: bool = False) -> Comparison:
    """Test ``mean(a) - mean(b) = 0``: Welch's t-test, or the paired t-test (same length, run i with run i).

    With no spread at all (every run equal) the test is undefined: ValueError.
    """
    a, b = _values("a", a, 2), _values("b", b, 2)
    if paired:
        if len(a) != len(b):
            raise ValueError(f"paired: expected as many runs in a as in b, got {len(a)} and {len(b)}")
        d = summarize([x - y for x, y in zip(a, b)])
        if d.sd == 0:
            raise ValueError("paired: every difference is equal; the t-test is undefined")
        res = stats.ttest_rel(a, b)
        return Comparison(d.mean, float(res.statistic), len(a) - 1.0, float(res.pvalue),
                          "paired t-test over seeds")
    sa, sb = summarize(a), summarize(b)
    va, vb = sa.sd ** 2 / sa.n, sb.sd ** 2 / sb.n
    if va + vb == 0:
        raise ValueError("every run of a and of b is equal; the t-test is undefined")
    df = (va + vb) ** 2 / (va ** 2 / (sa.n - 1) + vb ** 2 / (sb.n - 1))
    res = stats.ttest_ind(a, b, equal_var=False)
    return Comparison(sa.mean - sb.mean, float(res.statistic), df, float(res.pvalue),
                      "Welch's t-test over seeds")
