"""Checks for the exercises of chapter 10 (MMD-VAE): a linear-time MMD² estimate, the Wilson interval, two
shares, and a two-sample test designed for one alternative.

Each check runs the student's function and the library's reference on fixed
inputs (random float64 samples from a fixed seed, edge cases) and, when they
differ, first tries the chapter's usual mistakes (the quadratic-time estimator, a
kernel without its factor 2, the Wald interval, a hard-coded 1.96, ...) and
names the one that matches; otherwise it falls back to the generic diagnosis.
"""
from __future__ import annotations

import math
from functools import partial
from statistics import NormalDist

import torch

from vaecore.mmd import mmd2, rbf_kernel
from vaecore.proportions import two_proportion_test, wilson_interval
from ._answers import call, measured
from ._check import CheckResult, known_mistakes, run_cases
from ._submission import exercise, rng

__all__ = ["check_mmd2_linear_rbf", "check_wilson_interval", "check_images_needed", "images_needed",
           "check_square_test"]


def _fail(name: str, hint: str, detail: str, case: int, n: int) -> CheckResult:
    return CheckResult(False, hint, f"✗ {name}: not yet. Hint ({hint}): {detail} "
                                    f"(case {case} of {n})")


def _as_tensor(value):
    if isinstance(value, torch.Tensor):
        return value
    try:
        return torch.tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        return value


def _close(got, want) -> bool:
    return (isinstance(got, torch.Tensor) and got.shape == want.shape
            and torch.allclose(got.detach().double(), want, rtol=1e-7, atol=1e-10))


def _run(name, student, reference, cases, mistakes) -> CheckResult:
    """Compare on each case; name a known mistake when one matches, else diagnose."""
    return run_cases(name, lambda *args: _as_tensor(student(*args)), reference, cases,
                     event_size=None, explain=known_mistakes(mistakes, _close),
                     rtol=1e-7, atol=1e-10)


# Exercise: the linear-time MMD² estimate with an RBF kernel
def _row_kernel(a, b, h, scale=2.0, power=2):
    """The RBF kernel of matching rows, k(a_i, b_i): (N/2,) values, no Gram matrix."""
    d = ((a - b) ** 2).sum(-1)
    return torch.exp(-(d.sqrt() if power == 1 else d) / (scale * h ** 2))


def _linear(x, y, h, *, pairing="crossed", cross=1.0, scale=2.0, power=2, divisor=None,
            root=False):
    """The linear-time estimate and the chapter's likely slips on it."""
    def k(a, b):
        return _row_kernel(a, b, h, scale, power)
    if pairing == "overlapping":            # (1, 2), (2, 3), (3, 4), ...: N − 1 pairs
        x1, x2, y1, y2 = x[:-1], x[1:], y[:-1], y[1:]
    else:
        x1, x2, y1, y2 = x[0::2], x[1::2], y[0::2], y[1::2]
    if pairing == "same-index":             # x_{2i−1} with y_{2i−1}, x_{2i} with y_{2i}
        terms = k(x1, x2) + k(y1, y2) - cross * (k(x1, y1) + k(x2, y2))
    else:
        terms = k(x1, x2) + k(y1, y2) - cross * (k(x1, y2) + k(x2, y1))
    value = terms.mean() if divisor is None else terms.sum() / divisor(len(x))
    return value.clamp_min(0).sqrt() if root else value


def _mmd2_linear_reference(x, y, h):
    return _linear(x, y, h)


_MMD_MISTAKES = [
    ("quadratic", lambda x, y, h: mmd2(x, y, kernel=partial(rbf_kernel, bandwidth=h), unbiased=True),
     "this is the quadratic-time unbiased estimate (mmd2-unbiased), over all pairs. The "
     "exercise's estimate uses only the N/2 disjoint pairs (x_1, x_2), (x_3, x_4), ... and "
     "the matching pairs of y."),
    ("quadratic", lambda x, y, h: mmd2(x, y, kernel=partial(rbf_kernel, bandwidth=h), unbiased=False),
     "this is the biased quadratic-time estimate (mmd2-biased). The exercise's estimate uses "
     "only the N/2 disjoint pairs (x_1, x_2), (x_3, x_4), ... and the matching pairs of y."),
    ("pairing", partial(_linear, pairing="same-index"),
     "the cross terms pair points of the same index, k(x_{2i−1}, y_{2i−1}) and k(x_{2i}, y_{2i}); "
     "the estimate crosses them: k(x_{2i−1}, y_{2i}) and k(x_{2i}, y_{2i−1})."),
    ("pairing", partial(_linear, pairing="overlapping"),
     "the pairs overlap ((x_1, x_2), (x_2, x_3), ...): take N/2 disjoint pairs, the 1st point "
     "with the 2nd, the 3rd with the 4th, and so on."),
    ("normalisation", partial(_linear, divisor=lambda n: n),
     "you divide the sum of the N/2 pair terms by N: the estimate is their mean, 2/N times the sum."),
    ("bandwidth", partial(_linear, scale=1.0),
     "the kernel is exp(−‖x − y‖² / h²): the RBF kernel (rbf-kernel) divides by 2h²."),
    ("bandwidth", lambda x, y, h: _linear(x, y, math.sqrt(h)),
     "the kernel divides by 2h, not by 2h²: h is a length, the bandwidth of the distance."),
    ("distance", partial(_linear, power=1),
     "the kernel uses the distance ‖x − y‖; it takes the squared distance ‖x − y‖²."),
    ("sign", partial(_linear, cross=-1.0),
     "the two cross terms enter with a minus sign: k(x, x') + k(y, y') − k(x, y') − k(x', y)."),
    ("square", partial(_linear, root=True),
     "this is a square root of the estimate; the function returns the estimate of MMD² itself."),
]


@exercise(mmd2, rbf_kernel)
def check_mmd2_linear_rbf(mmd2_linear_rbf) -> CheckResult:
    """Check ``mmd2_linear_rbf(x, y, bandwidth)``: a scalar, the linear-time estimate with the RBF kernel."""
    g = rng(10)

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    x = randn(40, 3)
    cases = [(x, randn(40, 3), 1.7), (x, randn(40, 3) + 1.0, 1.7), (randn(30, 3), randn(30, 3), 0.8),
             (randn(24, 8), 1.5 * randn(24, 8), math.sqrt(8)), (randn(6, 1), randn(6, 1) + 0.5, 1.0),
             (randn(2, 2), randn(2, 2), 2.0)]
    return _run("mmd2_linear_rbf", mmd2_linear_rbf, _mmd2_linear_reference, cases, _MMD_MISTAKES)


# Exercise: the Wilson interval
def _pair(fn, k, n, confidence):
    low, high = fn(k, n, confidence)
    return torch.tensor([float(low), float(high)], dtype=torch.float64)


def _wilson_reference(k, n, confidence):
    return _pair(lambda *a: wilson_interval(*a)[1:3], k, n, confidence)


def _z(confidence):
    return NormalDist().inv_cdf((1 + confidence) / 2)


def _wilson_variant(k, n, confidence, *, z=None, shift=True, denominator=True, extra=True):
    z = _z(confidence) if z is None else z
    p = k / n
    centre = p + (z * z / (2 * n) if shift else 0.0)
    half = z * math.sqrt(p * (1 - p) / n + (z * z / (4 * n * n) if extra else 0.0))
    d = 1 + z * z / n if denominator else 1.0
    return torch.tensor([(centre - half) / d, (centre + half) / d], dtype=torch.float64)


def _wald(k, n, confidence):
    p, z = k / n, _z(confidence)
    half = z * math.sqrt(p * (1 - p) / n)
    return torch.tensor([p - half, p + half], dtype=torch.float64)


_WILSON_MISTAKES = [
    ("wald", _wald, "this is the Wald interval p̂ ± z·sqrt(p̂(1 − p̂)/n), not Wilson's: it "
     "collapses to a point at 0 % and 100 %. Solve |p̂ − p| = z·sqrt(p(1 − p)/n) for p."),
    ("wald", lambda k, n, c: _wald(k, n, c).clamp(0, 1),
     "this is the Wald interval clipped to [0, 1], not Wilson's."),
    ("quantile", lambda k, n, c: _wilson_variant(k, n, c, z=1.96),
     "z is hard-coded to 1.96: it is the (1 + confidence)/2 quantile of N(0, 1) "
     "(statistics.NormalDist().inv_cdf)."),
    ("quantile", lambda k, n, c: _wilson_variant(k, n, c, z=NormalDist().inv_cdf(c)),
     "z is the confidence quantile of N(0, 1); a two-sided interval needs the "
     "(1 + confidence)/2 quantile."),
    ("denominator", partial(_wilson_variant, denominator=False),
     "the centre and the half-width are both divided by 1 + z²/n."),
    ("centre", partial(_wilson_variant, shift=False),
     "the centre is p̂ + z²/(2n) (before dividing by 1 + z²/n), not p̂."),
    ("variance", partial(_wilson_variant, extra=False),
     "under the square root, add z²/(4n²) to p̂(1 − p̂)/n."),
]


@exercise(wilson_interval)
def check_wilson_interval(student_wilson) -> CheckResult:
    """Check ``wilson(k, n, confidence)`` returning ``(low, high)``: Equation (wilson-interval)."""
    cases = [(720, 1000, 0.95), (15, 16, 0.95), (18, 25, 0.95), (0, 16, 0.95), (16, 16, 0.95),
             (11, 16, 0.9), (990, 1000, 0.99), (1, 3, 0.8)]

    def student(k, n, confidence):
        return _pair(student_wilson, k, n, confidence)

    return _run("wilson_interval", student, _wilson_reference, cases, _WILSON_MISTAKES)


# Exercise: intervals that overlap, shares that differ
def images_needed(p_a: float, p_b: float, step: int = 10, limit: int = 1_000_000) -> tuple[int, int]:
    """The reference: the smallest ``n`` in ``step, 2·step, …`` at which two shares p_a, p_b of ``n``
    each (``round(p·n)`` successes) have disjoint 95 % Wilson intervals, and at which the
    two-proportion z-test rejects at 5 % (``|z| > 1.96``, the 0.975 quantile)."""
    z_crit = NormalDist().inv_cdf(0.975)
    disjoint = test = None
    for n in range(step, limit + 1, step):
        k_a, k_b = round(p_a * n), round(p_b * n)
        a, b = wilson_interval(k_a, n), wilson_interval(k_b, n)
        if disjoint is None and (a.high < b.low or b.high < a.low):
            disjoint = n
        if test is None and abs(two_proportion_test(k_a, n, k_b, n).statistic) > z_crit:
            test = n
        if disjoint is not None and test is not None:
            return disjoint, test
    raise ValueError(f"no n up to {limit} separates {p_a} and {p_b}")


_NEEDED_CASES = [(0.72, 0.80), (0.668, 0.69), (0.5, 0.6), (0.9, 0.8)]


@exercise(wilson_interval, two_proportion_test)
def check_images_needed(student_images_needed) -> CheckResult:
    """Check ``images_needed(p_a, p_b)`` returning ``(n_disjoint, n_test)`` (multiples of 10)."""
    name = "images_needed"
    for i, (p_a, p_b) in enumerate(_NEEDED_CASES, 1):
        want = images_needed(p_a, p_b)
        try:
            answer = student_images_needed(p_a, p_b)
        except NotImplementedError:
            return CheckResult(False, "todo", f"✗ {name}: not implemented yet.")
        except Exception as exc:  # report, don't hide, what the student's code raised
            return _fail(name, "error", f"your function raised {type(exc).__name__}: {exc}",
                         i, len(_NEEDED_CASES))
        try:
            got = tuple(int(v) for v in answer)
            if len(got) != 2:
                raise ValueError
        except (TypeError, ValueError):
            return _fail(name, "type", "return a pair of integers (n_disjoint, n_test).",
                         i, len(_NEEDED_CASES))
        if got == want:
            continue
        if got == want[::-1]:
            detail = "the two numbers are swapped: first the intervals, then the test."
            hint = "order"
        elif got[0] == got[1]:
            detail = ("both rules give the same n: the test compares the difference with "
                      "1.96 × the standard error of the *difference*, sqrt(p̄(1 − p̄)(2/n)), "
                      "not with the sum of the two intervals' half-widths.")
            hint = "rule"
        elif got[0] == want[0]:
            detail = ("n_disjoint is right; n_test is not: z uses the pooled share "
                      "p̄ = (k_a + k_b)/(2n) in its standard error, and rejects when |z| > 1.96.")
            hint = "test"
        elif got[1] == want[1]:
            detail = ("n_test is right; n_disjoint is not: the intervals are disjoint when the "
                      "upper end of the lower one is below the lower end of the higher one.")
            hint = "intervals"
        else:
            detail = f"expected {want}, got {got} for p_a = {p_a}, p_b = {p_b}."
            hint = "values"
        return _fail(name, hint, detail, i, len(_NEEDED_CASES))
    return CheckResult(True, "", f"✓ {name}: passed on {len(_NEEDED_CASES)} cases.")


# Exercise: a test that sees the square (experiment)
SQUARE_N, SQUARE_REPEATS = 100, 100   # points per sample, fresh pairs of samples per measurement
SQUARE_POWER, SQUARE_ALARMS = 0.8, 10 / 100   # needed share of detections; most false alarms allowed


def _gaussian(n, g):
    return torch.randn(n, 2, generator=g, dtype=torch.float64)


def _square(n, g):
    """Uniform on [−√3, √3]²: mean 0, covariance I, as in the chapter."""
    return (2 * torch.rand(n, 2, generator=g, dtype=torch.float64) - 1) * math.sqrt(3)


def _rejections(test, other, g) -> tuple[int, CheckResult | None]:
    """How many of the fresh pairs (Gaussian, ``other``) the student's test rejects at 5 %."""
    hits = 0
    for _ in range(SQUARE_REPEATS):
        x, y = _gaussian(SQUARE_N, g), other(SQUARE_N, g)
        p, failed = call("square_test", test, x, y)
        if failed is not None:
            return 0, failed
        try:
            p = float(p)
        except (TypeError, ValueError, RuntimeError):
            return 0, measured("square_test", False, f"your test returned a {type(p).__name__}",
                               "type", "Return the p-value, one float in (0, 1].")
        if not 0 < p <= 1:
            return 0, measured("square_test", False, f"your test returned p = {p:g}", "type",
                               "A p-value lies in (0, 1]; a permutation p-value is at least "
                               "1/(number of splits + 1).")
        hits += p <= 0.05
    return hits, None


@exercise()
def check_square_test(square_test) -> CheckResult:
    """Check ``square_test(x, y)``, a p-value for "x and y come from one distribution", given
    100 points in the plane each.

    The check draws 100 fresh pairs of a N(0, I) sample and a sample uniform on the square
    [−√3, √3]² (the power: the test must reject at 5 % in at least 80 of them) and 100 fresh
    pairs of two N(0, I) samples (the level: at most 10 false alarms, where a test at 5 %
    expects 5 and exceeds 10 once in a hundred measurements). The unbiased RBF-MMD² with the chapter's best bandwidth, h = 0.5,
    detects about half of the squares at this sample size.
    """
    name = "square_test"
    g = rng(1010)
    hits, failed = _rejections(square_test, _square, g)
    if failed is not None:
        return failed
    alarms, failed = _rejections(square_test, _gaussian, g)
    if failed is not None:
        return failed
    power, level = hits / SQUARE_REPEATS, alarms / SQUARE_REPEATS
    what = (f"detected {hits} of {SQUARE_REPEATS} squares (power {power:.0%}), "
            f"{alarms} false alarms in {SQUARE_REPEATS} Gaussian pairs")
    if level > SQUARE_ALARMS:
        return measured(name, False, what, "level", "Your test rejects too often when both "
                        "samples come from the same distribution, so its p-values are not "
                        "p-values. A permutation test keeps its level only if the statistic is "
                        "fixed before the data are seen: choosing the kernel or the bandwidth "
                        "by the observed statistic of the same x and y breaks it.")
    return measured(name, power >= SQUARE_POWER, what, "power", "The test must detect at least "
                    f"{SQUARE_POWER:.0%} of them. A kernel sees differences at its own scale: "
                    "where, and at what scale, do a Gaussian and the uniform square differ the "
                    "most? Any statistic works in a permutation test, as long as it is chosen "
                    "before the data are seen.")
