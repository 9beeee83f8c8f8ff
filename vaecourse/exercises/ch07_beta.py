"""Checks for the exercises of chapter 07 (β, rate and distortion).

Each check runs the student's function and the reference on random float64
inputs from a fixed seed and on edge cases. Before the generic diagnosis it
tries the usual mistakes of the chapter (a mean over pixels, a mean over
latent dimensions, β on the wrong term, a schedule that overshoots or starts
one epoch late) and names the one that matches. (The effective β of a loss
written with other weights and reductions is an exercise of chapter 05.)
"""
from __future__ import annotations

import torch

from ..chapters.ch07_beta import linear_warmup
from ._check import CheckResult, known_mistakes, run_cases
from ._submission import exercise, rng

__all__ = ["check_beta_negative_elbo", "check_linear_warmup"]


def _fail(name: str, hint: str, detail: str, case: int, n: int) -> CheckResult:
    return CheckResult(False, hint, f"✗ {name}: not yet. Hint ({hint}): {detail} "
                                    f"(case {case} of {n})")


def _close(got, want) -> bool:
    return (isinstance(got, torch.Tensor) and got.shape == want.shape
            and torch.allclose(got.detach().double(), want, rtol=1e-6, atol=1e-8))


def _run(name, student, reference, cases, mistakes, **diag) -> CheckResult:
    """Compare on each case; name a known mistake when one matches, else diagnose."""
    tolerances = {"rtol": 1e-6, "atol": 1e-8, **diag}
    return run_cases(name, student, reference, cases, event_size=None,
                     explain=known_mistakes(mistakes, _close), **tolerances)


# Exercise: the β-weighted negative ELBO from its per-pixel and per-dimension terms
def _beta_negative_elbo(log_px, kl, beta):
    """Equation (beta-elbo), negated and averaged over the batch: a scalar."""
    return -(log_px.flatten(1).sum(1) - beta * kl.sum(1)).mean()


_ELBO_MISTAKES = [
    ("reduction", lambda lp, kl, b: -(lp.flatten(1).mean(1) - b * kl.sum(1)).mean(),
     "you averaged log p(x|z) over the pixels: that divides the reconstruction by the number "
     "of pixels P and gives an effective β of P·β. Sum over the pixels."),
    ("reduction", lambda lp, kl, b: -(lp.flatten(1).sum(1) - b * kl.mean(1)).mean(),
     "you averaged the KL over the latent dimensions: that divides β by their number d. Sum over them."),
    ("reduction", lambda lp, kl, b: -(lp.flatten(1).mean(1) - b * kl.mean(1)).mean(),
     "you averaged both terms over their event dimensions: the effective β becomes P·β/d (d latent dimensions). "
     "Sum over pixels and over latent dimensions; average only over the batch."),
    ("reduction", lambda lp, kl, b: -(lp.flatten(1).sum(1) - b * kl.sum(1)).sum(),
     "the loss is summed over the batch: average it, so that the step size does not "
     "depend on the batch size."),
    ("reduction", lambda lp, kl, b: -lp.flatten(1).sum(1).mean() + b * kl.sum(),
     "the KL is summed over the batch as well: average it over the batch, like the "
     "reconstruction."),
    ("kl", lambda lp, kl, b: -lp.flatten(1).sum(1).mean(),
     "the KL term is missing."),
    ("beta", lambda lp, kl, b: -(b * lp.flatten(1).sum(1) - kl.sum(1)).mean(),
     "β multiplies the reconstruction term; it weights the KL."),
    ("beta", lambda lp, kl, b: -(lp.flatten(1).sum(1) - kl.sum(1)).mean(),
     "β is ignored: the KL must be multiplied by β."),
    ("sign", lambda lp, kl, b: -(lp.flatten(1).sum(1) + b * kl.sum(1)).mean(),
     "the KL enters with the wrong sign: the loss is −log p(x|z) + β·KL."),
    ("sign", lambda lp, kl, b: (lp.flatten(1).sum(1) - b * kl.sum(1)).mean(),
     "this is the β-ELBO itself (maximised); the loss to minimise is its negative."),
]


@exercise()
def check_beta_negative_elbo(beta_negative_elbo) -> CheckResult:
    """Check ``beta_negative_elbo(log_px, kl, beta)``: a scalar, the batch mean of −(Σ log p − β Σ KL)."""
    g = rng(7)
    f64 = {"generator": g, "dtype": torch.float64}
    log_px = -torch.rand(8, 1, 28, 28, **f64) * 0.7   # per-pixel log p(x_i | z) <= 0
    kl = torch.rand(8, 20, **f64) * 2                 # per-dimension KL >= 0
    cases = [(log_px, kl, 1.0), (log_px, kl, 0.1), (log_px, kl, 10.0),
             (-torch.rand(3, 3, 4, 4, **f64), torch.rand(3, 5, **f64), 2.0),  # colour images
             (log_px[:1], kl[:1], 0.5), (log_px, kl, 0.0)]
    return _run("beta_negative_elbo", beta_negative_elbo, _beta_negative_elbo, cases,
                _ELBO_MISTAKES)


# Exercise: the linear warm-up schedule
def _schedule(fn, warmup_epochs: int, last: int):
    return torch.tensor([float(fn(e, warmup_epochs)) for e in range(last + 1)],
                        dtype=torch.float64)


_WARMUP_MISTAKES = [
    ("clip", lambda f, n, last: _schedule(lambda e, m: e / m, n, last),
     "β keeps growing after the warm-up: it must stay at 1 once e >= E_w (min(1, e/E_w))."),
    ("off-by-one", lambda f, n, last: _schedule(lambda e, m: min(1.0, (e + 1) / m), n, last),
     "β starts at 1/E_w: e counts the epochs done before the current one, so the first "
     "epoch (e = 0) has β = 0."),
    ("off-by-one", lambda f, n, last: _schedule(lambda e, m: min(1.0, e / (m - 1)) if m > 1
                                                else 1.0, n, last),
     "β reaches 1 one epoch early: divide by E_w, not E_w − 1."),
    ("integer", lambda f, n, last: _schedule(lambda e, m: min(1, e // m), n, last),
     "β jumps from 0 to 1 at once: e // E_w is integer division; use e / E_w."),
]


@exercise(linear_warmup)
def check_linear_warmup(student_warmup) -> CheckResult:
    """Check ``linear_warmup(epochs_done, warmup_epochs)`` on every epoch of several schedules."""
    cases = [(student_warmup, n, 3 * n + 2) for n in (10, 4, 1, 3)]

    def student(fn, n, last):
        return _schedule(fn, n, last)

    def reference(fn, n, last):
        return _schedule(linear_warmup, n, last)

    return _run("linear_warmup", student, reference, cases, _WARMUP_MISTAKES)
