"""Checks for the exercises of chapter 11 (evaluation): the effective sample size, an affine flow.

Each check runs the student's function and a reference on fixed inputs
(random float64 log-weights or latents from a fixed seed, plus edge cases far
from zero) and, when they differ, first tries the chapter's usual mistakes
(exponentiating log-weights of -800 directly, normalised weights used twice,
the ESS as a fraction of k; the log-determinant with the wrong sign or left
out) and names the one that matches; otherwise it falls back to the generic
diagnosis.
"""
from __future__ import annotations

import math

import torch
from torch.distributions import Normal

from vaecore.importance import effective_sample_size
from ._check import CheckResult, known_mistakes, run_cases
from ._submission import exercise, rng

__all__ = ["check_effective_sample_size", "check_affine_flow_log_prob"]


def _close(got, want) -> bool:
    return (isinstance(got, torch.Tensor) and got.shape == want.shape
            and bool(torch.isfinite(got).all())
            and torch.allclose(got.detach().double(), want, rtol=1e-6, atol=1e-9))


def _log_weights(seed: int, k: int, batch: int, scale: float, offset: float) -> torch.Tensor:
    g = rng(seed)
    return offset + scale * torch.randn(k, batch, generator=g, dtype=torch.float64)


# Exercise: effective_sample_size(log_w)
def _ess_direct(log_w):
    w = torch.exp(log_w)
    return w.sum(0) ** 2 / (w ** 2).sum(0)


def _ess_fraction(log_w):
    return effective_sample_size(log_w) / log_w.shape[0]


def _ess_inverse_k(log_w):
    w = torch.softmax(log_w, dim=0)
    return 1 / (w ** 2).mean(0)


_ESS_MISTAKES = [
    ("fraction", _ess_fraction,
     "you returned ESS / k, a fraction; the exercise asks for a number of samples in [1, k]."),
    ("normalisation", _ess_inverse_k,
     "with normalised weights w̄ (summing to 1) the ESS is 1 / Σ w̄², a sum, not a mean."),
]


@exercise(effective_sample_size)
def check_effective_sample_size(student) -> CheckResult:
    """Check ``student(log_w)``: (k, B) log-weights → (B,) effective sample sizes, Equation (ess)."""
    cases = [(_log_weights(0, 20, 3, 1.0, 0.0),), (_log_weights(1, 500, 4, 2.5, 0.0),),
             (_log_weights(2, 50, 5, 3.0, -800.0),), (_log_weights(3, 50, 2, 1.0, 750.0),),
             (torch.full((7, 2), -300.0, dtype=torch.float64),)]
    mistakes = _ESS_MISTAKES + [
        ("overflow", _ess_direct,
         "exp(log_w) underflows to 0 (or overflows to inf) for log-weights near ±800: "
         "subtract the largest log-weight first, or stay in log space with logsumexp.")]

    def explain(args, got, want):
        if isinstance(got, torch.Tensor) and not torch.isfinite(got).all():
            return mistakes[-1][0], mistakes[-1][2]
        return known_mistakes(mistakes, _close)(args, got, want)

    return run_cases("effective_sample_size", student, effective_sample_size, cases,
                     event_size=None, explain=explain, rtol=1e-6, atol=1e-9)


# Exercise: affine_flow_log_prob(z, log_scale, shift)
def _affine_reference(z, log_scale, shift):
    return Normal(shift, torch.exp(log_scale)).log_prob(z).sum(-1)


def _base_term(z, log_scale, shift):
    eps = (z - shift) * torch.exp(-log_scale)
    return (-0.5 * eps ** 2 - 0.5 * math.log(2 * math.pi)).sum(-1)


_AFFINE_MISTAKES = [
    ("log-det", lambda z, s, t: _base_term(z, s, t) + s.expand_as(z).sum(-1),
     "the log-determinant has the wrong sign: z = t + e^s·ε stretches space by e^s, so the "
     "density is divided by it: log p(z) = log N(ε) − Σ s."),
    ("log-det", _base_term,
     "the log-determinant is missing: log N(f(z)) alone is not a density of z (it does not "
     "integrate to 1 unless the map preserves volume)."),
    ("inverse", lambda z, s, t: (Normal(0.0, 1.0).log_prob(t + torch.exp(s) * z)
                                 - s.expand_as(z)).sum(-1),
     "you applied the forward map t + e^s·z to z; the density needs the inverse, "
     "ε = (z − t)·e^(−s)."),
]


@exercise()
def check_affine_flow_log_prob(student) -> CheckResult:
    """Check ``student(z, log_scale, shift)``: (B, D) latents → (B,) log-densities of the affine flow."""
    g = rng(4)
    cases = []
    for batch, dim, spread in ((6, 3, 1.0), (4, 5, 2.0), (3, 2, 0.3)):
        z = spread * torch.randn(batch, dim, generator=g, dtype=torch.float64)
        log_scale = 0.7 * torch.randn(dim, generator=g, dtype=torch.float64)
        cases.append((z, log_scale, torch.randn(dim, generator=g, dtype=torch.float64)))
    zeros = torch.zeros(3, dtype=torch.float64)  # the identity map: the standard normal
    cases.append((torch.randn(4, 3, generator=g, dtype=torch.float64), zeros, zeros))
    return run_cases("affine_flow_log_prob", student, _affine_reference, cases,
                     event_size="auto", explain=known_mistakes(_AFFINE_MISTAKES, _close),
                     rtol=1e-7, atol=1e-9)
