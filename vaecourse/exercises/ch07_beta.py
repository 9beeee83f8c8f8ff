"""Checks for the exercises of chapter 07 (β, rate and distortion).

Each check runs the student's function and the reference on random float64
inputs from a fixed seed and on edge cases. Before the generic diagnosis it
tries the usual mistakes of the chapter (a mean over pixels, a mean over
latent dimensions, β on the wrong term, a schedule that overshoots or starts
one epoch late) and names the one that matches. (The effective β of a loss
written with other weights and reductions is an exercise of chapter 05.)
"""
from __future__ import annotations

import math

import torch

from ..chapters.ch07_beta import linear_warmup
from ._answers import call, check_number, measured
from ._check import CheckResult, known_mistakes, run_cases
from ._submission import exercise, rng

__all__ = ["check_beta_negative_elbo", "check_linear_warmup", "check_one_nat_noise",
           "check_target_rate"]


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


# Exercise: the noise that costs one nat (derive)
#: Mean number of exactly black pixels (grey level 0) per MNIST test image, over all
#: 10,000; a test recomputes it from the data.
BLACK_PER_IMAGE = 632.8781


def _sigma_for(nats: float, pixels: float, density: float = 1 / math.sqrt(2 * math.pi)) -> float:
    """σ with pixels · (−log(1 − σ·density)) = nats: p̃(0) = σ φ(0) for small σ."""
    return (1 - math.exp(-nats / pixels)) / density


@exercise()
def check_one_nat_noise(one_nat_noise) -> CheckResult:
    """Check ``one_nat_noise()``: the noise σ at which an ideal model of the noisy images pays
    one nat per clean test image on the black pixels alone, by Equation
    (noisy-pixel-probability) at x = 0: n̄ · (−log(1 − σ/√(2π))) = 1, with n̄ the mean number
    of black pixels per test image. About 0.00396, one 8-bit grey level.

    Answers within 0.5 % pass. The slips named: every pixel counted, φ(0) left out,
    and one bit instead of one nat.
    """
    want = _sigma_for(1.0, BLACK_PER_IMAGE)
    return check_number("one_nat_noise", one_nat_noise, want, rtol=5e-3, mistakes=[
        (_sigma_for(1.0, 784), "you counted every pixel of the image: the cost asked for is "
         "that of the black pixels, n̄ per image on average, computed from the test images."),
        (_sigma_for(1.0, BLACK_PER_IMAGE, density=1.0), "with x = 0, (noisy-pixel-probability) "
         "is σ(φ(0) − φ(1/σ)) + 1 − Φ(1/σ) ≈ σ φ(0) = σ/√(2π), not σ."),
        (_sigma_for(math.log(2), BLACK_PER_IMAGE), "that σ costs one bit (log 2 nats); the "
         "question asks for one nat."),
    ])  # not named: the count of the first 1,000 images (1.4 % off), within 0.5 % of 1/255


# Exercise: a model at a chosen rate (experiment)
TRAIN_IMAGES, TEST_IMAGES = 10_000, 2_000
RATE_RANGE = (4.0, 6.0)   # nats per image


def _mnist(split: str, n: int) -> torch.Tensor:
    from vaecore import data  # imported on use: the other checks of the chapter need no data
    return data.mnist(split).x[:n]


@exercise()
def check_target_rate(train_at_target_rate) -> CheckResult:
    """Check ``train_at_target_rate(train_x)``: returns a VAE with the chapter's network (MLP
    784-400-20, Bernoulli decoder), trained on ``train_x``, the first 10,000 MNIST training
    images (grey levels, to be binarized dynamically).

    The check measures the rate R (mean KL) on the first 2,000 test images, binarized once
    with seed 1, one z per image with seed 2: it must lie between 4 and 6 nats per image.
    Two epochs at β = 1 give about 12.6 nats, at β = 2 about 7.4, at β = 4 about 3.2.
    """
    from vaecore.data import binarize_dynamic
    from vaecore.elbo import negative_elbo
    name = "target_rate"
    model, failed = call(name, train_at_target_rate, _mnist("train", TRAIN_IMAGES))
    if failed is not None:
        return failed
    kind = getattr(getattr(model, "likelihood", None), "name", None)
    if not (hasattr(model, "encode") and kind):
        return measured(name, False, f"your function returned a {type(model).__name__}",
                        "type", "Return the trained VAE.")
    x = binarize_dynamic(_mnist("test", TEST_IMAGES), generator=torch.Generator().manual_seed(1))
    model.eval()
    with torch.no_grad():
        latent = model.encode(x[:2]).mu.shape[-1]
        terms = negative_elbo(model, x, generator=torch.Generator().manual_seed(2))
    if kind != "bernoulli" or latent != 20:
        return measured(name, False, f"your model has a {kind} decoder and a {latent}-dimensional "
                        "code", "model", "Keep the chapter's network (20 latent dimensions, "
                        "Bernoulli decoder): the exercise moves the rate with β alone.")
    rate, distortion = terms.kl.mean().item(), -terms.log_likelihood.mean().item()
    what = (f"rate R {rate:.2f}, distortion D {distortion:.2f} nats per image on "
            f"{TEST_IMAGES:,} test images")
    low, high = RATE_RANGE
    if not math.isfinite(rate + distortion):
        return measured(name, False, what, "nan", "Not finite: did training diverge?")
    if rate > high:
        return measured(name, False, what, "beta", f"The rate must be at most {high:.0f} nats: "
                        "raise β, the price of a nat of rate in D + βR (rate-distortion).")
    return measured(name, rate >= low, what, "beta", f"The rate must be at least {low:.0f} "
                    "nats: lower β, so that a nat of rate costs less distortion.")
