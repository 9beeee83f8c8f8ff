"""Checks for the exercises of chapter 11 (evaluation): the effective sample size, an affine flow,
the gap of log-normal weights, and a better proposal than the encoder.

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

from vaecore.importance import effective_sample_size, log_mean_exp
from ._answers import call, check_number, measured
from ._check import CheckResult, known_mistakes, run_cases
from ._submission import exercise, rng

__all__ = ["check_effective_sample_size", "check_affine_flow_log_prob", "check_lognormal_gap",
           "check_better_proposal"]


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


# Exercise: the gap of log-normal weights (derive)
GAP_SIGMA, GAP_K = 2.0, 100   # the sd of log w (nats) and the number of samples


def _lognormal_gap(sigma: float, k: int) -> float:
    """(iwae-asymptotic) for log w ~ N(m, σ²): Var[w / p(x)] = e^{σ²} − 1."""
    return math.expm1(sigma ** 2) / (2 * k)


@exercise()
def check_lognormal_gap(lognormal_gap) -> CheckResult:
    """Check ``lognormal_gap()``: the gap log p(x) − L_k of Equation (iwae-asymptotic) for
    log-weights that are Gaussian with standard deviation σ = 2 nats, at k = 100 samples:
    (e^{σ²} − 1)/(2k) = 0.268 nats. Answers within 0.5 % pass.

    The slips named: the variance of log w in place of that of w / p(x), the k = 1 gap σ²/2,
    e^σ for e^{σ²}, E[(w/p)²] without the − 1, and the 2 of the denominator left out.
    """
    s, k = GAP_SIGMA, GAP_K
    return check_number("lognormal_gap", lognormal_gap, _lognormal_gap(s, k), rtol=5e-3, mistakes=[
        (s ** 2 / (2 * k), "σ²/(2k) uses the variance of log w; (iwae-asymptotic) needs the "
         "variance of w / p(x), the relative variance of the weights themselves."),
        (s ** 2 / 2, "σ²/2 is the gap of one sample (k = 1), the ELBO's; the question asks for "
         "k = 100 samples."),
        (math.expm1(s) / (2 * k), "for log w ~ N(m, σ²), E[w^r] = e^{rm + r²σ²/2}: the relative "
         "variance involves e^{σ²}, not e^σ."),
        (math.exp(s ** 2) / (2 * k), "E[(w/p)²] = e^{σ²} is the second moment; the variance "
         "subtracts (E[w/p])² = 1."),
        (math.expm1(s ** 2) / k, "the 2 of the denominator is missing: t − 1 − log t ≈ (t − 1)²/2."),
    ])


# Exercise: a proposal better than the encoder (experiment)
PROPOSAL_MODEL = "mnist-mlp-bernoulli-z20-e30"
PROPOSAL_IMAGES, PROPOSAL_K, PROPOSAL_GAIN = 50, 100, 0.9   # test images, samples, nats to gain


def _estimate(model, x, mu, logvar, eps) -> torch.Tensor:
    """The k-sample estimate of log p(x) with the proposal N(mu, diag e^logvar), per image (B,)."""
    from vaecore.likelihoods import log_prob_normal
    k = len(eps)
    z = (mu + torch.exp(0.5 * logvar) * eps).flatten(0, 1)
    x_rep = x.expand(k, *x.shape).flatten(0, 1)
    log_w = (model.log_likelihood(x_rep, z) + model.prior.log_prob(z)
             - log_prob_normal(z, mu.repeat(k, 1), logvar.repeat(k, 1)))
    return log_mean_exp(log_w.view(k, len(x)))


@exercise()
def check_better_proposal(better_proposal) -> CheckResult:
    """Check ``better_proposal(model, x)``: given the chapter's reference model (MLP
    784-400-20, Bernoulli decoder, standard normal prior) and the first 50 binarized test
    images, return ``(mu, logvar)``, each ``(50, 20)``: a diagonal Gaussian proposal for
    each image.

    The check draws k = 100 samples of each image's proposal and of the encoder's (the same
    standard normal noise for both) and computes the two importance-sampling estimates of
    log p(x). Averaged over the 50 images, yours must be at least 0.9 nats higher. Each
    estimate is a lower bound on log p(x) in expectation, whatever the proposal, so a higher
    one is closer to the truth. The encoder's variances widened by a common factor gain at
    most about half a nat.
    """
    from vaecourse import zoo
    from vaecourse.protocol import test_images
    name = "better_proposal"
    model, _ = zoo.load(PROPOSAL_MODEL)
    model.eval()
    x = test_images()[:PROPOSAL_IMAGES]
    answer, failed = call(name, better_proposal, model, x.clone())
    if failed is not None:
        return failed
    shape = (PROPOSAL_IMAGES, model.encode(x[:1]).mu.shape[-1])
    try:
        mu, logvar = (torch.as_tensor(v).detach().float() for v in answer)
    except (TypeError, ValueError, RuntimeError):
        return measured(name, False, f"your function returned a {type(answer).__name__}", "type",
                        "Return the pair (mu, logvar) of the proposal.")
    if mu.shape != shape or logvar.shape != shape:
        return measured(name, False, f"your proposal has shapes {tuple(mu.shape)} and "
                        f"{tuple(logvar.shape)}", "shape", f"Return mu and logvar of shape {shape}: "
                        "one diagonal Gaussian per image.")
    if not (torch.isfinite(mu).all() and torch.isfinite(logvar).all()):
        return measured(name, False, "your proposal is not finite", "nan")
    eps = torch.randn(PROPOSAL_K, *shape, generator=rng(1111))
    with torch.no_grad():
        encoder = _estimate(model, x, *model.encode(x), eps).mean().item()
        yours = _estimate(model, x, mu, logvar, eps).mean().item()
    what = (f"k = {PROPOSAL_K} estimate of log p(x), mean over {PROPOSAL_IMAGES} test images: "
            f"{yours:.2f} nats with your proposal, {encoder:.2f} with the encoder "
            f"({yours - encoder:+.2f})")
    if not math.isfinite(yours):
        return measured(name, False, what, "nan", "Some weights are not finite.")
    return measured(name, yours - encoder >= PROPOSAL_GAIN, what, "proposal",
                    f"Yours must be at least {PROPOSAL_GAIN} nats higher. The encoder is one "
                    "network for all images, trained for the ELBO; a proposal for these 50 "
                    "images alone can do better than any fixed change of it.")
