"""Mean ± sd over seeds, and Welch's and the paired t-test, against their textbook formulas."""
from __future__ import annotations

import math

import pytest
from scipy import stats

from vaecore.replicates import compare, summarize


def test_summary_is_mean_and_sample_sd():
    s = summarize([1.0, 2.0, 4.0])
    assert s.mean == pytest.approx(7 / 3) and s.n == 3
    assert s.sd == pytest.approx(math.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2))
    assert str(s) == "2.33 ± 1.53 (n = 3)"


def test_welch_matches_the_welch_satterthwaite_formulas():
    a, b = [10.0, 11.0, 12.5], [9.0, 9.4, 8.1, 9.9]
    va, vb = summarize(a).sd ** 2 / 3, summarize(b).sd ** 2 / 4
    t = (sum(a) / 3 - sum(b) / 4) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / 2 + vb ** 2 / 3)
    c = compare(a, b)
    assert c.t == pytest.approx(t) and c.df == pytest.approx(df)
    assert c.p == pytest.approx(2 * stats.t.sf(abs(t), df))
    assert c.difference == pytest.approx(sum(a) / 3 - sum(b) / 4)


def test_paired_test_is_the_one_sample_test_of_differences():
    a, b = [10.0, 11.0, 12.5], [9.5, 10.1, 12.4]
    d = [x - y for x, y in zip(a, b)]
    s = summarize(d)
    t = s.mean / (s.sd / math.sqrt(3))
    c = compare(a, b, paired=True)
    assert c.t == pytest.approx(t) and c.df == 2 and c.p == pytest.approx(2 * stats.t.sf(abs(t), 2))
    # Pairing removes the seed-to-seed spread that both share, so it is the more sensitive test here.
    assert c.p < compare(a, b).p


@pytest.mark.parametrize("call, match", [
    (lambda: summarize([1.0]), "at least 2"),
    (lambda: summarize([1.0, float("nan")]), "finite"),
    (lambda: summarize("12"), "sequence"),
    (lambda: compare([1.0, 2.0], [1.0, 2.0, 3.0], paired=True), "as many"),
    (lambda: compare([1.0, 1.0], [2.0, 2.0]), "undefined"),
    (lambda: compare([1.0, 2.0], [2.0, 3.0], paired=True), "undefined"),
])
def test_bad_input_is_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call()
