"""Chapter 10's exercise checks: the references pass, typical mistakes get the right hint."""
from __future__ import annotations

import math
from statistics import NormalDist

import pytest
import torch

from vaecourse.exercises import ch10_mmd_vae as exercises
from vaecourse.exercises.ch10_mmd_vae import (check_images_needed, check_mmd2_linear_rbf,
                                              check_wilson_interval)
from vaecore.proportions import wilson_interval


def test_checks_are_re_exported():
    assert exercises.check_mmd2_linear_rbf is check_mmd2_linear_rbf
    assert exercises.check_wilson_interval is check_wilson_interval


# Exercise: mmd2_linear_rbf(x, y, bandwidth), the linear-time estimate
def _k(a, b, h, scale=2.0, distance=False):
    d = ((a - b) ** 2).sum(-1)
    return torch.exp(-(d.sqrt() if distance else d) / (scale * h * h))


def _linear(x, y, h, *, scale=2.0, distance=False, cross=1.0, same_index=False,
            sum_over_n=False, root=False):
    x1, x2, y1, y2 = x[0::2], x[1::2], y[0::2], y[1::2]
    k = lambda a, b: _k(a, b, h, scale, distance)  # noqa: E731
    crossed = k(x1, y1) + k(x2, y2) if same_index else k(x1, y2) + k(x2, y1)
    terms = k(x1, x2) + k(y1, y2) - cross * crossed
    value = terms.sum() / len(x) if sum_over_n else terms.mean()
    return value.clamp_min(0).sqrt() if root else value


def _linear_loop(x, y, h):
    """Written with a Python loop over the pairs, as a student might."""
    total = 0.0
    for i in range(0, len(x), 2):
        k = lambda a, b: math.exp(-float(((a - b) ** 2).sum()) / (2 * h * h))  # noqa: E731
        total += k(x[i], x[i + 1]) + k(y[i], y[i + 1]) - k(x[i], y[i + 1]) - k(x[i + 1], y[i])
    return total / (len(x) // 2)


def _quadratic(x, y, h):
    """The chapter's unbiased estimate (mmd2-unbiased), written out in the notebook."""
    def k(a, b):
        return torch.exp(-((a[:, None] - b[None]) ** 2).sum(-1) / (2 * h * h))
    def within(m):
        n = len(m)
        return (m.sum() - m.trace()) / (n * (n - 1))
    return within(k(x, x)) + within(k(y, y)) - 2 * k(x, y).mean()


@pytest.mark.parametrize("ok", [_linear, _linear_loop])
def test_mmd2_linear_references_pass(ok):
    result = check_mmd2_linear_rbf(ok)
    assert result.passed and "✓" in repr(result), result.message


@pytest.mark.parametrize("wrong, hint", [
    (_quadratic, "quadratic"),               # the chapter's estimator, not the exercise's
    (lambda x, y, h: _linear(x, y, h, same_index=True), "pairing"),
    (lambda x, y, h: _linear(x, y, h, sum_over_n=True), "normalisation"),
    (lambda x, y, h: _linear(x, y, h, scale=1.0), "bandwidth"),
    (lambda x, y, h: _linear(x, y, math.sqrt(h)), "bandwidth"),
    (lambda x, y, h: _linear(x, y, h, distance=True), "distance"),
    (lambda x, y, h: _linear(x, y, h, cross=-1.0), "sign"),
    (lambda x, y, h: _linear(x, y, h, root=True), "square"),
    (lambda x, y, h: 3 * _linear(x, y, h), "values"),  # a scalar: no factor is named
    (lambda x, y, h: torch.stack([_linear(x, y, h)] * 2), "shape"),
])
def test_mmd2_linear_wrong_answers_get_the_right_hint(wrong, hint):
    result = check_mmd2_linear_rbf(wrong)
    assert not result.passed and result.hint == hint, result.message


def notebook(source: str) -> dict:
    """Run ``source`` as a notebook cell runs it: in a namespace named ``__main__``."""
    namespace = {"__name__": "__main__", "math": math, "torch": torch}
    exec(source, namespace)
    return namespace


def test_mmd2_linear_refuses_the_library_wrapped_in_a_notebook_function():
    source = ("from functools import partial\nfrom vaecore.mmd import mmd2, rbf_kernel\n"
              "def answer(x, y, h):\n    return mmd2(x, y, partial(rbf_kernel, bandwidth=h))")
    result = check_mmd2_linear_rbf(notebook(source)["answer"])
    assert not result.passed and result.hint == "library", result.message


# Exercise: wilson(k, n, confidence) -> (low, high)
def _wilson(k, n, confidence=0.95, *, z=None, shift=True, denominator=True, extra=True):
    z = NormalDist().inv_cdf((1 + confidence) / 2) if z is None else z
    p = k / n
    centre = p + (z * z / (2 * n) if shift else 0)
    half = z * math.sqrt(p * (1 - p) / n + (z * z / (4 * n * n) if extra else 0))
    d = 1 + z * z / n if denominator else 1
    return (centre - half) / d, (centre + half) / d


def _wald(k, n, confidence=0.95):
    p, z = k / n, NormalDist().inv_cdf((1 + confidence) / 2)
    half = z * math.sqrt(p * (1 - p) / n)
    return p - half, p + half


def test_wilson_refuses_an_answer_that_calls_the_library():
    assert check_wilson_interval(lambda k, n, c: wilson_interval(k, n, c)[1:3]).hint == "library"


@pytest.mark.parametrize("ok", [
    _wilson,
    lambda k, n, c: torch.tensor(_wilson(k, n, c)),  # a tensor instead of a tuple is fine
])
def test_wilson_references_pass(ok):
    result = check_wilson_interval(ok)
    assert result.passed, result.message


@pytest.mark.parametrize("wrong, hint", [
    (_wald, "wald"),
    (lambda k, n, c: tuple(min(max(v, 0.0), 1.0) for v in _wald(k, n, c)), "wald"),
    (lambda k, n, c: _wilson(k, n, c, z=1.96), "quantile"),
    (lambda k, n, c: _wilson(k, n, c, z=NormalDist().inv_cdf(c)), "quantile"),
    (lambda k, n, c: _wilson(k, n, c, denominator=False), "denominator"),
    (lambda k, n, c: _wilson(k, n, c, shift=False), "centre"),
    (lambda k, n, c: _wilson(k, n, c, extra=False), "variance"),
    (lambda k, n, c: _wilson(k, n, c)[::-1], "values"),
])
def test_wilson_wrong_answers_get_the_right_hint(wrong, hint):
    result = check_wilson_interval(wrong)
    assert not result.passed and result.hint == hint, result.message


def test_stubs_and_exceptions_are_reported():
    def stub(*args):
        raise NotImplementedError
    for check in (check_mmd2_linear_rbf, check_wilson_interval):
        assert check(stub).hint == "todo"
    assert check_wilson_interval(lambda k, n, c: undefined).hint == "error"  # noqa: F821
    assert check_mmd2_linear_rbf(lambda x, y, h: None).hint in ("type", "error")


# Exercise: images_needed(p_a, p_b) -> (n_disjoint, n_test)
def _needed(p_a, p_b, *, pooled=True, rule="both"):
    z_crit = NormalDist().inv_cdf(0.975)
    disjoint = test = None
    for n in range(10, 100_001, 10):
        k_a, k_b = round(p_a * n), round(p_b * n)
        a, b = _wilson(k_a, n), _wilson(k_b, n)
        if disjoint is None and (a[1] < b[0] or b[1] < a[0]):
            disjoint = n
        pa, pb = k_a / n, k_b / n
        if pooled:
            p = (k_a + k_b) / (2 * n)
            se = math.sqrt(p * (1 - p) * 2 / n)
        else:
            se = math.sqrt(pa * (1 - pa) / n + pb * (1 - pb) / n)
        if test is None and abs(pa - pb) > z_crit * se:
            test = n
        if disjoint and test:
            return (disjoint, disjoint) if rule == "intervals twice" else (disjoint, test)


def test_images_needed_reference_halves_the_images_for_72_against_80():
    n_disjoint, n_test = exercises.images_needed(0.72, 0.80)
    assert (n_disjoint, n_test) == (450, 220)


def test_images_needed_right_answer_passes_and_the_library_is_refused():
    assert check_images_needed(_needed).passed
    assert check_images_needed(exercises.images_needed).hint == "library"
    assert check_images_needed(lambda a, b: exercises.images_needed(a, b)).hint == "library"


@pytest.mark.parametrize("wrong, hint", [
    (lambda a, b: _needed(a, b)[::-1], "order"),
    (lambda a, b: _needed(a, b, rule="intervals twice"), "rule"),
    (lambda a, b: (1, 2), "values"),
    (lambda a, b: None, "type"),
])
def test_images_needed_wrong_answers_get_the_right_hint(wrong, hint):
    result = check_images_needed(wrong)
    assert not result.passed and result.hint == hint, result.message


def test_images_needed_reports_unfinished_and_raising_answers():
    def todo(p_a, p_b):
        raise NotImplementedError("Exercise 3")

    assert check_images_needed(todo).hint == "todo"
    assert check_images_needed(lambda a, b: 1 / 0).hint == "error"


# Exercise: a test that sees the square (experiment)
def _permutation_p(x, y, kernel, n_perm, g):
    """The chapter's permutation test of the unbiased MMD², written out as a student would."""
    pooled, n = torch.cat([x, y]), len(x)
    k = kernel(pooled, pooled).fill_diagonal_(0)
    orders = [torch.arange(2 * n)] + [torch.randperm(2 * n, generator=g) for _ in range(n_perm)]
    a = torch.stack([o < n for o in orders]).to(k.dtype)
    b = 1 - a
    stats = (((a @ k) * a).sum(1) + ((b @ k) * b).sum(1)) / (n * (n - 1)) - 2 * ((a @ k) * b).sum(1) / n ** 2
    return ((stats[1:] >= stats[0]).sum().item() + 1) / len(stats)


def _rbf(h):
    return lambda a, b: torch.exp(-torch.cdist(a, b) ** 2 / (2 * h * h))


def _outside(a, b):
    fa, fb = ((v.abs().max(1).values > math.sqrt(3)).double() for v in (a, b))
    return fa[:, None] * fb[None, :]


def test_square_test_a_kernel_on_the_square_s_outside_passes():
    g = torch.Generator().manual_seed(0)
    result = exercises.check_square_test(lambda x, y: _permutation_p(x, y, _outside, 200, g))
    assert result.passed and "power" in result.message, result.message


def test_square_test_the_best_rbf_bandwidth_is_told_it_lacks_power():
    g = torch.Generator().manual_seed(0)
    result = exercises.check_square_test(lambda x, y: _permutation_p(x, y, _rbf(0.5), 200, g))
    assert not result.passed and result.hint == "power", result.message


def test_square_test_a_bandwidth_chosen_on_the_tested_data_is_told_it_loses_its_level():
    g = torch.Generator().manual_seed(0)

    def smallest_p(x, y):
        return min(_permutation_p(x, y, _rbf(h), 100, g) for h in (0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.4, 2.0))

    result = exercises.check_square_test(smallest_p)
    assert not result.passed and result.hint == "level", result.message
    assert exercises.check_square_test(lambda x, y: 0.01).hint == "level"


@pytest.mark.parametrize("wrong", [lambda x, y: "small", lambda x, y: 0.0, lambda x, y: 2.0])
def test_square_test_what_is_no_p_value_is_refused(wrong):
    result = exercises.check_square_test(wrong)
    assert not result.passed and result.hint == "type", result.message


def test_square_test_reports_an_unfinished_stub():
    def todo(x, y):
        raise NotImplementedError("Exercise 4")

    result = exercises.check_square_test(todo)
    assert not result.passed and result.hint == "todo" and "✗" in result.message
