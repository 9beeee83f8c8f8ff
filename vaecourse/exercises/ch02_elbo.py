"""Checks for the exercises of chapter 02 (the evidence lower bound)."""
from __future__ import annotations

import math

import torch

from vaecore.importance import log_mean_exp
from vaecore.likelihoods import log_prob_normal
from ._check import CheckResult, run_cases
from ._submission import exercise, rng

__all__ = ["check_iwae_from_log_weights", "check_log_normal"]


def _iwae_from_log_weights(log_w: torch.Tensor) -> torch.Tensor:
    """Reference: ``logsumexp`` over the k samples (dim 0) minus ``log k``, shape ``(B,)``."""
    return torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])


def _run(name: str, student, reference, cases, explain=None, per_example_sum=True,
         **diag) -> CheckResult:
    """:func:`run_cases`; ``per_example_sum``: the reference sums over the event
    dimensions of its first argument (so a mean there is named a reduction mistake)."""
    return run_cases(name, student, reference, cases, explain=explain,
                     event_size="auto" if per_example_sum else None, **diag)


def _explain_iwae(args, got, want):
    (log_w,) = args
    if not isinstance(got, torch.Tensor) or got.shape != want.shape:
        return None
    got = got.detach().double()
    k = log_w.shape[0]
    if not torch.isfinite(got).all():
        return ("nan", "exp() of log-weights near -1000 underflows to 0 (near +800 it overflows "
                "to inf): subtract the largest log-weight before exponentiating, i.e. use "
                "torch.logsumexp.")
    if k > 1 and torch.allclose(got, log_w.mean(0), rtol=1e-6, atol=1e-8):
        return ("jensen", "you averaged the log-weights: that estimates the ELBO (the k = 1 "
                "bound), not the log of the average weight. Take logsumexp over the samples.")
    if k > 1 and torch.isfinite(got).all() and torch.allclose(
            got - want, torch.full_like(want, math.log(k)), rtol=1e-6, atol=1e-8):
        return ("constant", f"off by log k = {math.log(k):.6g}: the bound averages the k "
                "weights, so subtract log k after the logsumexp.")
    return None


@exercise(log_mean_exp)
def check_iwae_from_log_weights(iwae_from_log_weights) -> CheckResult:
    """Check ``iwae_from_log_weights(log_w)``: log-weights ``(k, B)`` → the bound ``(B,)``.

    Cases: moderate random log-weights, log-weights near -1000 and +800 (a
    plain ``log(mean(exp(.)))`` underflows or overflows there), k = 1, and one
    weight dominating all the others.
    """
    g = rng(3)
    moderate = torch.randn(7, 4, generator=g, dtype=torch.float64) * 3 - 5
    tiny = torch.randn(50, 3, generator=g, dtype=torch.float64) * 10 - 1000
    huge = torch.randn(20, 3, generator=g, dtype=torch.float64) * 10 + 800
    single = torch.randn(1, 5, generator=g, dtype=torch.float64) * 4
    dominated = torch.tensor([[0.0, -3.0], [-1e4, -3.0], [-2e4, -3.0]], dtype=torch.float64)
    cases = [(moderate,), (tiny,), (huge,), (single,), (dominated,)]
    return _run("iwae_from_log_weights", iwae_from_log_weights, _iwae_from_log_weights,
                cases, explain=_explain_iwae, per_example_sum=False, rtol=1e-9, atol=1e-9)


@exercise(log_prob_normal)
def check_log_normal(log_normal) -> CheckResult:
    """Check ``log_normal(x, mean, logvar)``: diagonal Gaussian log-density, shape ``(B,)``.

    ``x``, ``mean`` and ``logvar`` share one shape ``(B, ...)``; the result is
    summed over every dimension but the first.
    """
    g = rng(4)

    def draw(*shape, scale=1.0):
        return torch.randn(*shape, generator=g, dtype=torch.float64) * scale

    cases = [(draw(4, 6, scale=2), draw(4, 6), draw(4, 6)),
             (draw(3, 1, 5, 5), draw(3, 1, 5, 5), draw(3, 1, 5, 5, scale=2)),
             (draw(2, 3), draw(2, 3), torch.full((2, 3), -8.0, dtype=torch.float64)),
             (draw(5, 1), torch.zeros(5, 1, dtype=torch.float64),
              torch.zeros(5, 1, dtype=torch.float64))]
    return _run("log_normal", log_normal, log_prob_normal, cases, rtol=1e-9, atol=1e-9)
