"""Checks for the exercises of chapter 06 (what the latent space looks like)."""
from __future__ import annotations

import torch

from vaecore.latent import kl_per_dimension, posterior_mean_variance, slerp
from ._check import CheckResult, run_cases
from ._submission import exercise, rng

__all__ = ["check_slerp", "check_posterior_mean_variance", "check_kl_per_dimension"]


@exercise(slerp)
def check_slerp(student_slerp) -> CheckResult:
    """Check ``slerp(z0, z1, t)``: spherical interpolation row by row, ``(B, D)`` in and out."""
    g = rng(6)
    z0, z1 = torch.randn(2, 5, 20, generator=g, dtype=torch.float64)
    short = torch.randn(2, 3, 2, generator=g, dtype=torch.float64) * torch.tensor([[[1.0], [3.0], [0.2]]],
                                                                               dtype=torch.float64)
    line = torch.randn(2, 8, generator=g, dtype=torch.float64)
    cases = [(z0, z1, 0.5), (z0, z1, 0.1), (short[0], short[1], 0.7),
             (z0, z1, 0.0), (z0, z1, 1.0),
             (line, 2.5 * line, 0.3)]  # parallel rows: the linear fallback
    return run_cases("slerp", student_slerp, slerp, cases, event_size=None)


@exercise(posterior_mean_variance)
def check_posterior_mean_variance(student_fn) -> CheckResult:
    """Check ``posterior_mean_variance(mu)``: variance over the N rows (divisor N), shape ``(D,)``."""
    g = rng(7)
    scales = torch.tensor([2.0, 1.0, 0.5, 0.05, 0.001], dtype=torch.float64)
    mu = torch.randn(200, 5, generator=g, dtype=torch.float64) * scales + 3.0
    cases = [(mu,), (torch.randn(7, 3, generator=g, dtype=torch.float64),),
             (torch.tensor([[1.0, -2.0], [3.0, -2.0]], dtype=torch.float64),)]
    result = run_cases("posterior_mean_variance", student_fn, posterior_mean_variance, cases)
    if not result.passed and result.hint == "factor":
        got = student_fn(mu)
        if torch.allclose(got.double(), mu.var(dim=0, unbiased=True)):
            return result._replace(message="✗ posterior_mean_variance: not yet. Hint (factor): "
                                   "you divided by N − 1; the variance of the data's "
                                   "empirical distribution divides by N (unbiased=False).")
    return result


@exercise(kl_per_dimension)
def check_kl_per_dimension(student_fn) -> CheckResult:
    """Check ``kl_per_dimension(mu, logvar)``: the KL terms, shape ``(N, D)``, nothing summed."""
    g = rng(8)
    mu = torch.randn(6, 4, generator=g, dtype=torch.float64) * 2
    logvar = torch.randn(6, 4, generator=g, dtype=torch.float64)
    near_prior = (torch.zeros(2, 3, dtype=torch.float64) + 0.1,
                  torch.zeros(2, 3, dtype=torch.float64) - 0.2)
    cases = [(mu, logvar), near_prior,
             (torch.tensor([[1.5, -0.5]], dtype=torch.float64),
              torch.tensor([[-3.0, 2.0]], dtype=torch.float64))]
    return run_cases("kl_per_dimension", student_fn, kl_per_dimension, cases, event_size=None)
