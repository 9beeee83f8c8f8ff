r"""A share of successes with its Wilson or cluster-bootstrap confidence interval, and two tests.

Counting how many generated images a classifier recognises gives a share; a share
measured on ``n`` images needs an interval. The Wilson score interval keeps
its stated coverage far better than the textbook :math:`\hat p \pm
z\sqrt{\hat p(1-\hat p)/n}`, which collapses to a point at 0 % and 100 %.
Both assume ``n`` independent trials; when trials share their sources (mixes
built from the same images), :func:`cluster_bootstrap_interval` resamples the
sources instead.

Two shares are compared with a test, not by whether their intervals overlap
(two 95 % intervals can overlap while the difference is significant at 5 %):
:func:`two_proportion_test` when the two shares count different trials,
:func:`mcnemar_test` when both count the *same* trials (the same images, the
same draws of z), from the trials on which the two disagree.
"""
from __future__ import annotations

import math
from numbers import Integral, Real
from statistics import NormalDist
from typing import NamedTuple, Sequence

import torch

__all__ = ["Proportion", "wilson_interval", "cluster_bootstrap_interval", "Test",
           "two_proportion_test", "mcnemar_test"]


class Proportion(NamedTuple):
    """``k`` successes out of ``n``; ``share = k / n`` and its interval ``[low, high]``."""
    share: float
    low: float
    high: float
    k: int
    n: int


class Test(NamedTuple):
    """A two-sided test of equal shares: ``difference`` = share A − share B, its ``statistic``, ``p_value``."""
    difference: float
    statistic: float
    p_value: float


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


def cluster_bootstrap_interval(successes: torch.Tensor,
                               clusters: torch.Tensor | Sequence[torch.Tensor],
                               n_resamples: int = 2000, confidence: float = 0.95,
                               generator: torch.Generator | None = None) -> Proportion:
    r"""The share of successes with a percentile interval that resamples whole clusters.

    .. math::
        \hat p^{*}_b = \frac{\sum_i w^{*}_{b,i}\, y_i}{\sum_i w^{*}_{b,i}}, \qquad
        w^{*}_{b,i} = \prod_{f} m^{*}_{b,f}\big(c_f(i)\big)

    Equation (cluster-bootstrap): in resample :math:`b`, each factor :math:`f` draws
    its clusters with replacement, as many as it has; :math:`m^{*}_{b,f}(c)` is how
    often cluster :math:`c` was drawn, and trial :math:`i` counts once per draw of
    each of its clusters. One factor is the ordinary cluster bootstrap; with
    several crossed factors (each trial pairs one item of every factor, such as
    an image of a horse and one of a bird) each factor is resampled independently.
    The interval is the percentile interval of the :math:`\hat p^{*}_b`; it covers
    the variation from sampling the clusters.

    Args:
        successes: ``(n,)`` 0/1 or bool, one entry per trial, ``n >= 1``.
        clusters: ``(n,)`` integer labels, or a sequence of them, one per crossed factor.
        n_resamples: the number of bootstrap resamples, ``>= 1``.
        confidence: the coverage, in ``(0, 1)``; the interval runs from the
            :math:`(1-\text{confidence})/2` to the :math:`(1+\text{confidence})/2` quantile.
        generator: optional ``torch.Generator`` for the resampling.

    Returns:
        :class:`Proportion` ``(share, low, high, k, n)``, ``share = k / n`` over all trials.
    """
    y = torch.as_tensor(successes).flatten()
    if not bool(((y == 0) | (y == 1)).all()) or len(y) < 1:
        raise ValueError("successes: expected a non-empty tensor of 0/1 or bool values")
    factors = [clusters] if torch.is_tensor(clusters) else list(clusters)
    if not factors or any(torch.as_tensor(c).shape != y.shape for c in factors):
        raise ValueError(f"clusters: expected one or more labels of shape {tuple(y.shape)}")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, Integral) or n_resamples < 1:
        raise ValueError(f"n_resamples: expected an integer >= 1, got {n_resamples!r}")
    _check(0, 1, confidence)
    weights = torch.ones(n_resamples, len(y), dtype=torch.float64)
    for labels in factors:
        index = torch.unique(torch.as_tensor(labels), return_inverse=True)[1]   # 0..K-1
        K = int(index.max()) + 1
        drawn = torch.randint(K, (n_resamples, K), generator=generator)
        counts = torch.zeros(n_resamples, K, dtype=torch.float64).scatter_add_(
            1, drawn, torch.ones(n_resamples, K, dtype=torch.float64))        # m*_{b,f}(c)
        weights *= counts[:, index]                                            # w*_{b,i}
    total = weights.sum(1)
    # $\hat p^*_b$; a resample with no trial left (only possible for sparse crossings) is dropped
    shares = (weights @ y.double())[total > 0] / total[total > 0]
    low, high = torch.quantile(shares, torch.tensor([(1 - confidence) / 2, (1 + confidence) / 2],
                                                    dtype=torch.float64)).tolist()
    k, n = int(y.sum()), len(y)
    return Proportion(k / n, low, high, k, n)


def two_proportion_test(k_a: int, n_a: int, k_b: int, n_b: int) -> Test:
    r"""Two-sided z-test of equal success rates from two independent samples.

    .. math::
        z = \frac{\hat p_A - \hat p_B}{\sqrt{\bar p(1-\bar p)\left(\frac1{n_A}
        + \frac1{n_B}\right)}}, \qquad \bar p = \frac{k_A + k_B}{n_A + n_B}

    Equation (two-proportion-z): the pooled z statistic; :math:`z^2` is Pearson's
    :math:`\chi^2` of the 2×2 table without continuity correction. Use it only
    when the two shares count different, independent trials; for the same trials
    use :func:`mcnemar_test`.

    Returns:
        :class:`Test` ``(difference, statistic = z, p_value)``; ``p_value = 1`` when
        every trial succeeded or every trial failed.
    """
    _check(k_a, n_a, 0.5)
    _check(k_b, n_b, 0.5)
    pooled = (k_a + k_b) / (n_a + n_b)
    difference = k_a / n_a - k_b / n_b
    variance = pooled * (1 - pooled) * (1 / n_a + 1 / n_b)
    if variance == 0:
        return Test(difference, 0.0, 1.0)
    z = difference / math.sqrt(variance)
    return Test(difference, z, min(1.0, 2 * NormalDist().cdf(-abs(z))))


def mcnemar_test(a: torch.Tensor, b: torch.Tensor) -> Test:
    r"""McNemar's exact test: do two 0/1 outcomes of the *same* trials succeed equally often?

    Only the discordant trials inform the difference: :math:`n_{10}`, where A
    succeeds and B fails, and :math:`n_{01}`, the reverse. Under equal rates each
    discordant trial is a fair coin, so

    .. math::
        p = \min\Big(1,\; 2\,\Pr\big[\mathrm{Bin}(n_{10} + n_{01}, \tfrac12)
        \le \min(n_{10}, n_{01})\big]\Big)

    Equation (mcnemar-exact), computed exactly with integers.

    Args:
        a, b: ``(n,)`` 0/1 or bool outcomes of the same ``n >= 1`` trials.

    Returns:
        :class:`Test` ``(difference = share A − share B, statistic = n10 − n01, p_value)``.
    """
    a, b = torch.as_tensor(a).flatten(), torch.as_tensor(b).flatten()
    for name, v in (("a", a), ("b", b)):
        if len(v) < 1 or not bool(((v == 0) | (v == 1)).all()):
            raise ValueError(f"{name}: expected a non-empty tensor of 0/1 or bool "
                             "values")
    if a.shape != b.shape:
        raise ValueError(f"a and b: expected outcomes of the same trials, got shapes "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    a, b = a.bool(), b.bool()
    n10, n01 = int((a & ~b).sum()), int((~a & b).sum())
    m = n10 + n01
    tail = sum(math.comb(m, i) for i in range(min(n10, n01) + 1))
    p_value = min(1.0, 2 * tail / 2 ** m) if m else 1.0
    return Test((n10 - n01) / len(a), float(n10 - n01), p_value)
