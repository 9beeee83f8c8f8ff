"""Checks for the exercises of chapter 01 (a VAE in a minute)."""
from __future__ import annotations

import torch

from vaecore.likelihoods import log_prob_bernoulli
from vaecore.units import bits_per_dim as _bits_per_dim
from ._check import CheckResult, run_cases

__all__ = ["check_bits_per_dim", "check_log_prob_bernoulli"]


def check_bits_per_dim(bits_per_dim) -> CheckResult:
    """Check ``bits_per_dim(nats, num_dims)``: nats per image → bits per dimension."""
    g = torch.Generator().manual_seed(1)
    cases = [(torch.rand(5, generator=g, dtype=torch.float64) * 200 + 50, 784),
             (torch.rand(3, generator=g, dtype=torch.float64) * 5000, 3072),
             (torch.tensor([0.0, 1.0], dtype=torch.float64), 1)]
    return run_cases("bits_per_dim", bits_per_dim, _bits_per_dim, cases,
                     event_size=lambda args: args[1] if args[1] > 1 else None)


def check_log_prob_bernoulli(log_prob) -> CheckResult:
    """Check ``log_prob(x, x_logits)``: per-example Bernoulli log-likelihood, shape (B,)."""
    g = torch.Generator().manual_seed(2)
    x = torch.rand(4, 1, 28, 28, generator=g, dtype=torch.float64).round()
    x_logits = torch.randn(4, 1, 28, 28, generator=g, dtype=torch.float64) * 3
    grey = torch.rand(3, 8, generator=g, dtype=torch.float64)  # [0, 1]-valued pixels
    extreme = torch.tensor([[60.0, -60.0, 0.0]], dtype=torch.float64)
    cases = [(x, x_logits), (grey, torch.randn(3, 8, generator=g, dtype=torch.float64)),
             (torch.tensor([[1.0, 0.0, 1.0]], dtype=torch.float64), extreme)]
    return run_cases("log_prob_bernoulli", log_prob, log_prob_bernoulli, cases)
