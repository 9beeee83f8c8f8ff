"""Checks for the exercises of chapter 10 (MMD-VAE): the unbiased MMD² and the Wilson interval.

Each check runs the student's function and the library's reference on fixed
inputs (random float64 samples from a fixed seed, edge cases) and, when they
differ, first tries the chapter's usual mistakes (the biased estimator, a
kernel without its factor 2, the Wald interval, a hard-coded 1.96, ...) and
names the one that matches; otherwise it falls back to the generic diagnosis.
"""
from __future__ import annotations

import math
from functools import partial
from statistics import NormalDist

import torch

from vaecore.mmd import mmd2, rbf_kernel
from vaecore.proportions import wilson_interval
from ._check import CheckResult, known_mistakes, run_cases
from ._submission import exercise, rng

__all__ = ["check_mmd2_unbiased_rbf", "check_wilson_interval"]


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


# Exercise: the unbiased MMD² with an RBF kernel
def _mmd2_reference(x, y, h):
    return mmd2(x, y, kernel=partial(rbf_kernel, bandwidth=h), unbiased=True)


def _gram(x, y, h, scale=2.0, power=2):
    d = torch.cdist(x, y) if power == 1 else ((x[:, None] - y[None]) ** 2).sum(-1)
    return torch.exp(-d / (scale * h ** 2))


def _u_mean(k):
    n = len(k)
    return (k.sum() - k.diagonal().sum()) / (n * (n - 1))


def _variant(x, y, h, *, within=_u_mean, cross=2.0, scale=2.0, power=2, root=False):
    kxx, kyy, kxy = (_gram(a, b, h, scale, power) for a, b in ((x, x), (y, y), (x, y)))
    value = within(kxx) + within(kyy) - cross * kxy.mean()
    return value.clamp_min(0).sqrt() if root else value


_MMD_MISTAKES = [
    ("biased", partial(_variant, within=torch.mean),
     "the diagonal terms k(x_i, x_i) = 1 are still in the within-sample averages: that is the "
     "biased V-statistic (mmd2-biased). Drop i = i' and divide by N(N − 1)."),
    ("normalisation", partial(_variant, within=lambda k: (k.sum() - k.diagonal().sum()) / len(k) ** 2),
     "you dropped the diagonal but still divide by N²: there are N(N − 1) pairs i ≠ i'."),
    ("bandwidth", partial(_variant, scale=1.0),
     "the kernel is exp(−‖x − y‖² / h²): the RBF kernel (rbf-kernel) divides by 2h²."),
    ("bandwidth", lambda x, y, h: _variant(x, y, math.sqrt(h)),
     "the kernel divides by 2h, not by 2h²: h is a length, the bandwidth of the distance."),
    ("distance", partial(_variant, power=1),
     "the kernel uses the distance ‖x − y‖; it takes the squared distance ‖x − y‖²."),
    ("cross-term", partial(_variant, cross=1.0),
     "the cross term k(x_i, y_j) enters twice: −2 × its mean."),
    ("sign", partial(_variant, cross=-2.0),
     "the cross term enters with a minus sign: MMD² = E k(x, x') + E k(y, y') − 2 E k(x, y)."),
    ("square", partial(_variant, root=True),
     "this is the MMD; the function returns its square, MMD²."),
]


@exercise(mmd2, rbf_kernel)
def check_mmd2_unbiased_rbf(mmd2_unbiased_rbf) -> CheckResult:
    """Check ``mmd2_unbiased_rbf(x, y, bandwidth)``: a scalar, Equation (mmd2-unbiased) with the RBF kernel."""
    g = rng(10)

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    x = randn(40, 3)
    cases = [(x, randn(50, 3), 1.7), (x, randn(50, 3) + 1.0, 1.7), (x, randn(30, 3), 0.8),
             (randn(25, 8), 1.5 * randn(35, 8), math.sqrt(8)), (randn(6, 1), randn(9, 1), 1.0),
             (randn(2, 2), randn(2, 2), 2.0)]
    return _run("mmd2_unbiased_rbf", mmd2_unbiased_rbf, _mmd2_reference, cases, _MMD_MISTAKES)


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
