"""Tests for vaecore.proportions: the Wilson interval against scipy, its properties, bad input;
the cluster bootstrap against the binomial case and correlated clusters."""
import math

import numpy as np
import pytest
import torch
from scipy.stats import binomtest

from vaecore.proportions import Proportion, cluster_bootstrap_interval, wilson_interval


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
