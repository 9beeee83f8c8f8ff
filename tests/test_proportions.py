"""Tests for vaecore.proportions: the Wilson interval against scipy, its properties, bad input;
the cluster bootstrap against the binomial case and correlated clusters."""
import math

import numpy as np
import pytest
import torch
from scipy.stats import binomtest

from vaecore.proportions import (Proportion, cluster_bootstrap_interval, mcnemar_test,
                                 two_proportion_test, wilson_interval)


@pytest.mark.parametrize("k, n", [(0, 1), (1, 1), (0, 16), (15, 16), (18, 25), (720, 1000),
                                  (999, 1000), (3, 7), (500, 1000)])
@pytest.mark.parametrize("confidence", [0.8, 0.95, 0.99])
def test_matches_scipy(k, n, confidence):
    want = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    got = wilson_interval(k, n, confidence)
    assert isinstance(got, Proportion) and (got.k, got.n) == (k, n)
    assert math.isclose(got.share, k / n)
    assert math.isclose(got.low, want.low, abs_tol=1e-12)
    assert math.isclose(got.high, want.high, abs_tol=1e-12)


def test_by_hand_and_ordering():
    # k = n/2: the interval is centred on 1/2 with half-width z sqrt(1/(4n) + z²/(4n²)) / (1 + z²/n)
    n, z = 100, 1.959963984540054
    half = z * math.sqrt(0.25 / n + z * z / (4 * n * n)) / (1 + z * z / n)
    got = wilson_interval(50, 100)
    assert math.isclose(got.low, 0.5 - half) and math.isclose(got.high, 0.5 + half)
    for k in range(0, 21):
        p = wilson_interval(k, 20)
        assert 0 <= p.low <= p.share <= p.high <= 1
    assert wilson_interval(0, 20).low == 0 and wilson_interval(20, 20).high == 1
    assert wilson_interval(0, 20).high > 0 and wilson_interval(20, 20).low < 1  # never a point


def test_wider_with_higher_confidence_and_narrower_with_more_trials():
    a, b = wilson_interval(30, 40, 0.9), wilson_interval(30, 40, 0.99)
    assert b.low < a.low and b.high > a.high
    small, large = wilson_interval(72, 100), wilson_interval(720, 1000)
    assert large.high - large.low < small.high - small.low


def test_coverage_close_to_nominal():
    """Over many binomial draws the 95 % interval contains the true p about 95 % of the time."""
    rng = np.random.default_rng(0)
    p, n = 0.8, 200
    ks = rng.binomial(n, p, size=4000)
    covered = np.mean([wilson_interval(int(k), n).low <= p <= wilson_interval(int(k), n).high
                       for k in ks])
    assert 0.93 < covered < 0.97


@pytest.mark.parametrize("k, n, confidence", [(-1, 10, 0.95), (11, 10, 0.95), (0, 0, 0.95),
                                               (1.5, 10, 0.95), (True, 10, 0.95),
                                               (1, 10, 1.0), (1, 10, 0.0), (1, 10, "0.95")])
def test_bad_input_is_a_clear_error(k, n, confidence):
    with pytest.raises(ValueError):
        wilson_interval(k, n, confidence)


# --- cluster_bootstrap_interval -------------------------------------------------------------


def test_bootstrap_with_clusters_of_one_agrees_with_wilson():
    """Independent trials, one per cluster: the percentile interval is about the binomial one."""
    y = torch.zeros(400)
    y[:120] = 1                                               # 30 % of 400
    got = cluster_bootstrap_interval(y, torch.arange(400),
                                     generator=torch.Generator().manual_seed(0))
    want = wilson_interval(120, 400)
    assert (got.share, got.k, got.n) == (0.3, 120, 400)
    assert abs(got.low - want.low) < 0.01 and abs(got.high - want.high) < 0.01
    assert 0.85 < (got.high - got.low) / (want.high - want.low) < 1.15


def test_bootstrap_is_wider_when_clusters_are_correlated():
    """20 clusters of 20 trials that all succeed or all fail: about 20 trials' worth, not 400."""
    clusters = torch.arange(400) // 20
    y = (clusters < 6).float()                                # 6 of 20 clusters succeed: 30 %
    got = cluster_bootstrap_interval(y, clusters, generator=torch.Generator().manual_seed(0))
    binomial = wilson_interval(120, 400)
    assert got.share == 0.3
    assert (got.high - got.low) > 3 * (binomial.high - binomial.low)
    # the resampled share is (clusters drawn that succeed) / 20: a binomial(20, 0.3) / 20
    assert 0.05 <= got.low <= 0.15 and 0.45 <= got.high <= 0.55


def test_bootstrap_crossed_factors_and_reproducibility():
    """A 30 x 30 grid whose rows differ: resampling rows and columns is wider than cells alone."""
    rows, cols = torch.meshgrid(torch.arange(30), torch.arange(30), indexing="ij")
    rows, cols = rows.flatten(), cols.flatten()
    y = ((rows < 12) | ((cols < 3) & (rows < 20))).float()   # a row effect, a weak column effect
    seed = lambda: torch.Generator().manual_seed(1)            # noqa: E731
    crossed = cluster_bootstrap_interval(y, (rows, cols), generator=seed())
    again = cluster_bootstrap_interval(y, [rows, cols], generator=seed())
    cells = cluster_bootstrap_interval(y, torch.arange(900), generator=seed())
    assert crossed == again
    assert crossed.low <= crossed.share <= crossed.high
    assert crossed.high - crossed.low > 2 * (cells.high - cells.low)


T = torch.tensor


@pytest.mark.parametrize("successes, clusters, kwargs", [
    (T([0.5, 1.0]), T([0, 1]), {}),                   # not 0/1
    (T([0, 1]), T([0, 1, 2]), {}),                    # one label per trial
    (T([]), T([]), {}),                               # no trials
    (T([0, 1]), [], {}),                              # no factor
    (T([0, 1]), T([0, 1]), {"n_resamples": 0}),
    (T([0, 1]), T([0, 1]), {"confidence": 1.0})])
def test_bootstrap_bad_input_is_a_clear_error(successes, clusters, kwargs):
    with pytest.raises(ValueError):
        cluster_bootstrap_interval(successes, clusters, **kwargs)


# --- tests of two shares ----------------------------------------------------------------

@pytest.mark.parametrize("k_a,n_a,k_b,n_b", [(2672, 4000, 2760, 4000), (18, 25, 20, 25),
                                             (15, 16, 11, 16), (5, 40, 30, 70)])
def test_two_proportion_test_is_pearsons_chi2_without_correction(k_a, n_a, k_b, n_b):
    from scipy.stats import chi2_contingency
    ref = chi2_contingency([[k_a, n_a - k_a], [k_b, n_b - k_b]], correction=False)
    t = two_proportion_test(k_a, n_a, k_b, n_b)
    assert t.statistic ** 2 == pytest.approx(ref.statistic, rel=1e-10)
    assert t.p_value == pytest.approx(ref.pvalue, rel=1e-8)
    assert t.difference == pytest.approx(k_a / n_a - k_b / n_b)


def test_two_proportion_test_overlapping_intervals_can_still_differ():
    # 66.8 % against 69.0 % of 4,000: the 95 % Wilson intervals overlap, the test rejects
    a, b = wilson_interval(2672, 4000), wilson_interval(2760, 4000)
    assert a.high > b.low
    t = two_proportion_test(2672, 4000, 2760, 4000)
    assert t.statistic == pytest.approx(-2.10, abs=0.01) and t.p_value < 0.05


def test_two_proportion_test_degenerate_and_bad_input():
    assert two_proportion_test(10, 10, 5, 5) == (0.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="0 <= k <= n"):
        two_proportion_test(11, 10, 5, 5)


def test_mcnemar_matches_an_exact_binomial_test_on_the_discordant_pairs():
    from scipy.stats import binomtest
    g = torch.Generator().manual_seed(0)
    a = torch.rand(500, generator=g) < 0.7
    b = torch.where(torch.rand(500, generator=g) < 0.1, ~a, a)   # flips a tenth of a
    n10, n01 = int((a & ~b).sum()), int((~a & b).sum())
    t = mcnemar_test(a, b)
    assert t.p_value == pytest.approx(binomtest(n10, n10 + n01).pvalue, rel=1e-10)
    assert t.statistic == n10 - n01 and t.difference == pytest.approx((n10 - n01) / 500)


def test_mcnemar_hand_computed_and_edge_cases():
    # 0 against 6 discordant trials: p = 2 / 2^6
    a = torch.tensor([1] * 10 + [0] * 6)
    b = torch.ones(16)
    assert mcnemar_test(a, b).p_value == pytest.approx(2 / 64)
    assert mcnemar_test(a, a).p_value == 1.0                  # no discordant trial
    with pytest.raises(ValueError, match="same trials"):
        mcnemar_test(torch.ones(3), torch.ones(4))
    with pytest.raises(ValueError, match="0/1"):
        mcnemar_test(torch.tensor([0.5]), torch.tensor([1.0]))
