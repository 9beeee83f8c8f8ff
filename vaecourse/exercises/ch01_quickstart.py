"""Checks for the exercises of chapter 01 (a VAE in a minute)."""
from __future__ import annotations

import torch

from vaecore.likelihoods import log_prob_bernoulli
from vaecore.units import bits_per_dim as _bits_per_dim
from ._check import CheckResult, run_cases
from ._submission import exercise, rng

__all__ = ["check_bits_per_dim", "check_log_prob_bernoulli"]

_FROM_LOGITS = ("compute log ρ and log(1 − ρ) from the logits, log ρ = logsigmoid(l) and "
                "log(1 − ρ) = logsigmoid(−l): at l = ±60, ρ = sigmoid(l) rounds to 1 or 0, "
                "so log ρ or log(1 − ρ) computed from ρ is log 0 (or whatever a clamp or an "
                "added ε makes of it).")


@exercise(_bits_per_dim)
def check_bits_per_dim(bits_per_dim) -> CheckResult:
    """Check ``bits_per_dim(nats, num_dims)``: nats per image → bits per dimension."""
    g = rng(1)
    cases = [(torch.rand(5, generator=g, dtype=torch.float64) * 200 + 50, 784),
             (torch.rand(3, generator=g, dtype=torch.float64) * 5000, 3072),
             (torch.tensor([0.0, 1.0], dtype=torch.float64), 1)]
    return run_cases("bits_per_dim", bits_per_dim, _bits_per_dim, cases,
                     event_size=lambda args: args[1] if args[1] > 1 else None)


def _explain_extreme(args, got, want):
    """Name a result that is wrong only where the logits are large."""
    x, x_logits = args
    if (x_logits.abs().max() >= 30 and isinstance(got, torch.Tensor)
            and got.shape == want.shape and torch.isfinite(got).all()):
        return "stability", "the values are wrong where the logits are large: " + _FROM_LOGITS
    return None


@exercise(log_prob_bernoulli)
def check_log_prob_bernoulli(log_prob) -> CheckResult:
    """Check ``log_prob(x, x_logits)``: per-example Bernoulli log-likelihood, shape (B,).

    The last case puts logits of ±60 on pixels that agree with them and on
    pixels that contradict them (x = 0 with a logit of +60): there a log taken
    of ρ = sigmoid(logit) is log 0, and a clamp or an ε gives a wrong value.
    """
    g = rng(2)
    x = torch.rand(4, 1, 28, 28, generator=g, dtype=torch.float64).round()
    x_logits = torch.randn(4, 1, 28, 28, generator=g, dtype=torch.float64) * 3
    grey = torch.rand(3, 8, generator=g, dtype=torch.float64)  # [0, 1]-valued pixels
    extreme = torch.tensor([[60.0, -60.0, 0.0, 60.0, -60.0, 30.0]], dtype=torch.float64)
    cases = [(x, x_logits), (grey, torch.randn(3, 8, generator=g, dtype=torch.float64)),
             (torch.tensor([[1.0, 0.0, 1.0, 0.0, 1.0, 0.0]], dtype=torch.float64), extreme)]
    return run_cases("log_prob_bernoulli", log_prob, log_prob_bernoulli, cases,
                     explain=_explain_extreme, nan="the result has NaN or inf where the "
                     "reference is finite: " + _FROM_LOGITS)
