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

:func:`variance_components` asks the wider question of a grid of settings
(two factors, e.g. method and a weight, each setting trained with the same
number of seeds): how much of the spread of a metric over all runs comes from
each factor, from their interaction, and from the seed.
"""
from __future__ import annotations

import math
from numbers import Real
from typing import NamedTuple, Sequence

from scipy import stats

__all__ = ["Replicates", "Comparison", "VarianceComponent", "summarize", "compare",
           "variance_components"]


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


class VarianceComponent(NamedTuple):
    r"""One row of a two-way analysis of variance: its sum of squares, share of the total, F and p.

    ``share`` is :math:`\eta^2 = SS / SS_{\text{total}}`; the residual row
    (the seed) has ``f`` and ``p`` NaN.
    """
    source: str
    ss: float
    df: int
    share: float
    f: float
    p: float


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


def variance_components(values, names: tuple[str, str] = ("A", "B"), residual: str = "seed",
                        *, blocked: bool = False) -> tuple[VarianceComponent, ...]:
    r"""Two-way analysis of variance with replicates: what moves a metric, and by how much.

    ``values[i][j][k]`` is run ``k`` of the setting with level ``i`` of the
    first factor and level ``j`` of the second (a balanced grid: every
    setting has the same ``n >= 2`` runs). With :math:`\bar y_{ij\cdot}` the
    setting means, :math:`\bar y_{i\cdot\cdot}` and :math:`\bar y_{\cdot j\cdot}`
    the factors' level means and :math:`\bar y` the grand mean, the total sum
    of squares splits exactly in four:

    .. math::
        \sum_{ijk} (y_{ijk} - \bar y)^2
        = \underbrace{bn \sum_i (\bar y_{i\cdot\cdot} - \bar y)^2}_{\text{first factor}}
        + \underbrace{an \sum_j (\bar y_{\cdot j\cdot} - \bar y)^2}_{\text{second}}
        + \underbrace{n \sum_{ij} (\bar y_{ij\cdot} - \bar y_{i\cdot\cdot}
          - \bar y_{\cdot j\cdot} + \bar y)^2}_{\text{interaction}}
        + \underbrace{\sum_{ijk} (y_{ijk} - \bar y_{ij\cdot})^2}_{\text{residual (seed)}}

    with :math:`(a - 1), (b - 1), (a - 1)(b - 1)` and :math:`ab(n - 1)`
    degrees of freedom. Each effect's F is its mean square over the
    residual's, and ``p`` the F distribution's upper tail (the usual test,
    which assumes normal, equal-variance runs).

    ``blocked=True`` is for runs that share their seed across settings (run
    ``k`` of every setting starts from the same weights and sees the same
    batches): the seed is then a block, and the residual splits into the
    seed's effect shared by all settings, :math:`ab \sum_k (\bar y_{\cdot\cdot k}
    - \bar y)^2` with :math:`n - 1` degrees of freedom, and the rest, the seed ×
    setting interaction with :math:`(ab - 1)(n - 1)`, against which every
    effect (the seed's too) is then tested (a randomised complete block design).

    Returns:
        four :class:`VarianceComponent` rows: ``names[0]``, ``names[1]``,
        ``"<names[0]> × <names[1]>"`` and ``residual``; with ``blocked``, five:
        the last two ``"<residual>, shared by all settings"`` and
        ``"<residual> × setting"``.
    """
    rows = [[_values(f"values[{i}][{j}]", runs, 2) for j, runs in enumerate(row)]
            for i, row in enumerate(values)]
    a, b = len(rows), len(rows[0]) if rows else 0
    if a < 2 or b < 2 or any(len(row) != b for row in rows):
        raise ValueError(f"values: expected a grid of at least 2 x 2 settings, every row as long, "
                         f"got rows of lengths {[len(row) for row in rows]}")
    n = len(rows[0][0])
    if any(len(runs) != n for row in rows for runs in row):
        raise ValueError(f"values: expected the same number of runs in every setting (a balanced "
                         f"grid), got {[[len(runs) for runs in row] for row in rows]}")
    cell = [[math.fsum(runs) / n for runs in row] for row in rows]
    grand = math.fsum(map(math.fsum, cell)) / (a * b)
    first = [math.fsum(row) / b for row in cell]
    second = [math.fsum(cell[i][j] for i in range(a)) / a for j in range(b)]
    ss = (b * n * math.fsum((m - grand) ** 2 for m in first),
          a * n * math.fsum((m - grand) ** 2 for m in second),
          n * math.fsum((cell[i][j] - first[i] - second[j] + grand) ** 2
                        for i in range(a) for j in range(b)),
          math.fsum((y - cell[i][j]) ** 2 for i in range(a) for j in range(b) for y in rows[i][j]))
    df = (a - 1, b - 1, (a - 1) * (b - 1), a * b * (n - 1))
    total = math.fsum(ss)
    if total == 0:
        raise ValueError("values: every run is equal; there is no variance to split")
    sources = [names[0], names[1], f"{names[0]} × {names[1]}"]
    effects, effect_df = list(ss[:3]), list(df[:3])
    error_ss, error_df, error_name = ss[3], df[3], residual
    if blocked:
        seed_means = [math.fsum(rows[i][j][k] for i in range(a) for j in range(b)) / (a * b)
                      for k in range(n)]
        shared = a * b * math.fsum((m - grand) ** 2 for m in seed_means)
        sources.append(f"{residual}, shared by all settings")
        effects.append(shared)
        effect_df.append(n - 1)
        error_ss, error_df = max(ss[3] - shared, 0.0), (a * b - 1) * (n - 1)
        error_name = f"{residual} × setting"
    error = error_ss / error_df
    out = []
    for source, s_, d in zip(sources, effects, effect_df):
        f = (s_ / d) / error if error > 0 else math.inf
        out.append(VarianceComponent(source, s_, d, s_ / total, f,
                                     float(stats.f.sf(f, d, error_df))))
    out.append(VarianceComponent(error_name, error_ss, error_df, error_ss / total, math.nan,
                                 math.nan))
    return tuple(out)
