"""Mean ± sd over seeds, and Welch's and the paired t-test, against their textbook formulas."""
from __future__ import annotations

import math

import pytest
from scipy import stats

import numpy as np

from vaecore.replicates import compare, summarize, variance_components


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


def _residual_ss(y, columns):
    """Least squares of y on the given design columns (with an intercept): the residual sum of squares."""
    design = np.column_stack([np.ones(len(y)), *columns])
    fit, *_ = np.linalg.lstsq(design, y, rcond=None)
    return float(((y - design @ fit) ** 2).sum())


def test_variance_components_match_nested_least_squares_fits():
    """Balanced 2 x 3 x 4 grid: each SS is the drop in residual SS of nested regressions (an independent route)."""
    rng = np.random.default_rng(0)
    a, b, n = 2, 3, 4
    effect_a, effect_b = np.array([0.0, 1.0]), np.array([0.0, 0.5, -0.3])
    values = (effect_a[:, None, None] + effect_b[None, :, None]
              + np.array([[0.0, 0.2, 0.0], [0.0, 0.0, 0.4]])[:, :, None]
              + rng.normal(0, 0.5, (a, b, n)))
    i, j, _ = np.meshgrid(range(a), range(b), range(n), indexing="ij")
    y, i, j = values.ravel(), i.ravel(), j.ravel()
    da = [(i == level).astype(float) for level in range(1, a)]
    db = [(j == level).astype(float) for level in range(1, b)]
    dab = [x * z for x in da for z in db]
    ss_total = float(((y - y.mean()) ** 2).sum())
    # balanced: the factors are orthogonal, so the order of the nested fits does not matter
    expected = (ss_total - _residual_ss(y, da), ss_total - _residual_ss(y, db),
                _residual_ss(y, da + db) - _residual_ss(y, da + db + dab),
                _residual_ss(y, da + db + dab))
    rows = variance_components(values.tolist(), names=("method", "beta"))
    assert [r.source for r in rows] == ["method", "beta", "method × beta", "seed"]
    assert [r.df for r in rows] == [1, 2, 2, 18]
    for row, ss in zip(rows, expected):
        assert row.ss == pytest.approx(ss, rel=1e-10)
    assert sum(r.share for r in rows) == pytest.approx(1.0)
    error = rows[3].ss / 18
    for row in rows[:3]:
        assert row.f == pytest.approx(row.ss / row.df / error)
        assert row.p == pytest.approx(stats.f.sf(row.f, row.df, 18))
    assert math.isnan(rows[3].f) and math.isnan(rows[3].p)


def test_blocked_components_match_least_squares_with_seed_dummies():
    """Seed k shared by every setting: its effect is the drop in residual SS from seed dummies."""
    rng = np.random.default_rng(2)
    a, b, n = 2, 3, 5
    values = (np.array([0.0, 0.3])[:, None, None] + np.array([0.0, 1.0, 2.0])[None, :, None]
              + np.linspace(-1, 1, n)[None, None, :] + rng.normal(0, 0.4, (a, b, n)))
    i, j, k = (t.ravel() for t in np.meshgrid(range(a), range(b), range(n), indexing="ij"))
    y = values.ravel()
    da = [(i == level).astype(float) for level in range(1, a)]
    db = [(j == level).astype(float) for level in range(1, b)]
    dab = [x * z for x in da for z in db]
    dk = [(k == level).astype(float) for level in range(1, n)]
    full = _residual_ss(y, da + db + dab + dk)
    shared = _residual_ss(y, da + db + dab) - full
    rows = variance_components(values.tolist(), names=("method", "beta"), blocked=True)
    assert [r.source for r in rows] == ["method", "beta", "method × beta",
                                        "seed, shared by all settings", "seed × setting"]
    assert [r.df for r in rows] == [1, 2, 2, 4, 20]
    assert rows[3].ss == pytest.approx(shared, rel=1e-10)
    assert rows[4].ss == pytest.approx(full, rel=1e-10)
    assert sum(r.share for r in rows) == pytest.approx(1.0)
    assert rows[3].p < 1e-4  # the shared seed effect built in is found
    unblocked = variance_components(values.tolist(), names=("method", "beta"))
    assert [r.ss for r in rows[:3]] == pytest.approx([r.ss for r in unblocked[:3]])
    assert rows[1].f > unblocked[1].f  # the block takes the seeds' shared part out of the error


def test_variance_components_find_an_effect_only_where_there_is_one():
    rng = np.random.default_rng(1)
    strong = (np.array([0.0, 3.0])[:, None, None] + rng.normal(0, 1, (2, 3, 5))).tolist()
    method, beta, both, seed = variance_components(strong)
    assert method.p < 1e-6 and method.share > 0.5
    assert beta.p > 0.001 and both.p > 0.001


@pytest.mark.parametrize("values, match", [
    ([[[1.0, 2.0], [3.0, 4.0]]], "2 x 2"),
    ([[[1.0, 2.0], [3.0, 4.0]], [[1.0, 2.0], [3.0, 4.0, 5.0]]], "same number of runs"),
    ([[[1.0, 1.0], [1.0, 1.0]], [[1.0, 1.0], [1.0, 1.0]]], "no variance"),
    ([[[1.0, float("nan")], [3.0, 4.0]], [[1.0, 2.0], [3.0, 4.0]]], "finite"),
])
def test_variance_components_refuse_bad_grids(values, match):
    with pytest.raises(ValueError, match=match):
        variance_components(values)
