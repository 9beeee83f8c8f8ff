"""Checks for the exercises of chapter 05 (training a VAE, and the choices that matter)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from vaecore.kl import kl_normal_std_normal
from ._answers import call, check_number, measured
from ._check import CheckResult, known_mistakes, run_cases
from ._submission import exercise, rng

__all__ = ["check_sse_to_log_prob", "check_effective_beta", "check_negative_elbo_loss",
           "check_code_free_distortion", "check_gaussian_vae"]

F64 = torch.float64


def _run(name, student, reference, cases, explain=None, event_size=None, **diag) -> CheckResult:
    """:func:`run_cases` with an explicit ``event_size`` (None: no reduction hint)."""
    return run_cases(name, student, reference, cases, event_size=event_size, explain=explain,
                     **diag)


def _close(got, alt) -> bool:
    return (isinstance(got, torch.Tensor) and got.shape == alt.shape
            and torch.allclose(got.double(), alt.double(), rtol=1e-6, atol=1e-8))


# Exercise: a sum of squared errors is a Gaussian log-likelihood with a fixed variance
def _sse_to_log_prob(sse: torch.Tensor, num_pixels: int, var: float) -> torch.Tensor:
    return -sse / (2 * var) - 0.5 * num_pixels * math.log(2 * math.pi * var)


def _sse_mistake(scale, var_of, constant_times_d=True):
    """A wrong ``sse_to_log_prob``: ``-sse·scale(var) - (d or 1)/2·log(2π var_of(var))``."""
    def wrong(sse, d, var):
        const = 0.5 * (d if constant_times_d else 1) * math.log(2 * math.pi * var_of(var))
        return -sse * scale(var) - const
    return wrong


# Each is named only where it differs from the reference: with var = 1, σ and σ² are equal.
_SSE_MISTAKES = [
    ("factor", _sse_mistake(lambda v: 1 / v, lambda v: v),
     "the squared error needs the factor 1/(2σ²), not 1/σ²."),
    ("variance", _sse_mistake(lambda v: 1 / (2 * math.sqrt(v)), math.sqrt),
     "`var` is the variance σ², not the standard deviation σ."),
    ("variance", _sse_mistake(lambda v: 0.5, lambda v: v),
     "divide the squared error by the variance σ²."),
    ("constant", _sse_mistake(lambda v: 1 / (2 * v), lambda v: v, constant_times_d=False),
     "the normalising constant ½·log(2πσ²) is paid once per pixel: multiply it by num_pixels."),
]


@exercise()
def check_sse_to_log_prob(sse_to_log_prob) -> CheckResult:
    """Check ``sse_to_log_prob(sse, num_pixels, var)``: per-image squared errors ``(B,)``
    → :math:`\\log \\mathcal N(x; \\mu, \\sigma^2 I)` ``(B,)``."""
    g = rng(5)
    cases = [(torch.rand(6, generator=g, dtype=F64) * 60, 784, 1.0),
             (torch.rand(4, generator=g, dtype=F64) * 60, 784, 0.5),
             (torch.rand(3, generator=g, dtype=F64) * 10, 784, 0.01),
             (torch.rand(5, generator=g, dtype=F64) * 900, 3072, 4.0),
             (torch.zeros(2, dtype=F64), 10, 1.0 / (2 * math.pi))]
    return _run("sse_to_log_prob", sse_to_log_prob, _sse_to_log_prob, cases,
                explain=known_mistakes(_SSE_MISTAKES, _close), rtol=1e-9, atol=1e-9)


# Exercise: the effective β of a training loss
def _effective_beta(loss_fn, batch_size: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(6)
    log_px = (-100 * torch.rand(batch_size, generator=g, dtype=F64)).requires_grad_()
    kl = (20 * torch.rand(batch_size, generator=g, dtype=F64)).requires_grad_()
    grad_log_px, grad_kl = torch.autograd.grad(loss_fn(log_px, kl), (log_px, kl))
    return grad_kl.sum() / (-grad_log_px).sum()


def _explain_beta(args, got, want):
    one = torch.tensor(1.0, dtype=F64)
    if (isinstance(got, torch.Tensor) and got.dim() == 0
            and not torch.isclose(want * want, one, rtol=1e-6)  # 1/β = β when β = 1
            and torch.isclose(got.double() * want, one, rtol=1e-6)):
        return ("inverted", "you returned 1/β: β multiplies the KL, so it is "
                "(∂loss/∂KL) / (∂loss/∂(−log p(x|z))).")
    return None


_LOSSES = [  # (loss written as in code found in the wild, batch size)
    (lambda log_px, kl: (-log_px + kl).mean(), 8),                 # the ELBO: β = 1
    (lambda log_px, kl: (-log_px / 784 + kl).mean(), 16),          # BCE mean over pixels
    (lambda log_px, kl: (-log_px + 4.0 * kl).mean(), 4),           # a β-VAE
    (lambda log_px, kl: (-log_px).sum() + kl.mean(), 128),         # recon summed over batch
    (lambda log_px, kl: (-2 * log_px / 784 + kl).mean(), 32),      # MSE mean, σ² = 1 model
]


@exercise()
def check_effective_beta(effective_beta) -> CheckResult:
    """Check ``effective_beta(loss_fn, batch_size)``: the β of a loss written as a function
    ``loss_fn(log_px, kl)`` of per-example terms ``(B,)``; a float or a 0-d tensor."""
    return _run("effective_beta", effective_beta, _effective_beta, _LOSSES,
                explain=_explain_beta, rtol=1e-6, atol=1e-9)


# Exercise: the training loss with the right reduction, from S codes per image
def _bce(x, x_logits) -> torch.Tensor:
    """Per-pixel BCE of S decoded codes per image: ``(S, B, pixels)``."""
    return F.binary_cross_entropy_with_logits(x_logits, x.expand_as(x_logits),
                                              reduction="none").flatten(2)


def _negative_elbo_loss(x, x_logits, mu, logvar) -> torch.Tensor:
    log_px = -_bce(x, x_logits).sum(2)                          # (S, B): summed over pixels
    return (-log_px.mean(0) + kl_normal_std_normal(mu, logvar)).mean()


def _explain_loss(args, got, want):
    x, x_logits, mu, logvar = args
    bce, num_samples = _bce(x, x_logits), x_logits.shape[0]
    kl = 0.5 * (logvar.exp() + mu ** 2 - 1 - logvar)
    rec = bce.sum(2).mean(0)                                    # (B,)
    mistakes = [
        (bce.mean(2).mean(0) + kl.sum(1), "reduction", "you averaged the reconstruction over "
         "the pixels while summing the KL: that trains with an effective β equal to the number "
         "of pixels. Sum over pixels, then average over the codes and the batch."),
        (rec + kl.mean(1), "reduction", "you averaged the KL over the latent dimensions: sum "
         "it, as the reconstruction is summed over pixels."),
        (bce.mean(2).mean(0) + kl.mean(1), "reduction", "sum both terms over their event "
         "dimensions (pixels, latent dimensions); only the codes and the batch are averaged."),
        (bce.sum(2).sum(0) + kl.sum(1), "samples", f"the reconstruction is summed over the "
         f"S = {num_samples} codes of each image: average it. Each code gives one estimate of "
         "E_q[log p(x | z)]; the KL, in closed form, is counted once."),
        (bce.sum(2).sum(0) + num_samples * kl.sum(1), "samples", f"the loss is summed over "
         f"the S = {num_samples} codes of each image: average it over them. Each code gives "
         "one estimate of the same expectation."),
        (rec.mean() + kl.sum(), "reduction", "the KL is summed over the batch: "
         "average it over the batch, like the reconstruction."),
        ((rec + kl.sum(1)) * len(x), "reduction", "the loss is summed over the batch: "
         "average it, so that the step size does not depend on the batch size."),
        (rec - kl.sum(1), "sign", "the KL is added to the negative ELBO, not subtracted."),
        (rec, "kl", "the KL term is missing."),
    ]
    for alt, hint, detail in mistakes:  # named only where it differs from the reference
        if _close(got, alt.mean()) and not _close(want, alt.mean()):
            return hint, detail
    return None


@exercise()
def check_negative_elbo_loss(negative_elbo_loss) -> CheckResult:
    """Check ``negative_elbo_loss(x, x_logits, mu, logvar)``: the scalar training loss from
    S codes per image, ``x_logits`` of shape ``(S, B, ...)`` (per-example sums over pixels
    and latent dimensions, means over the S codes and over the batch)."""
    g = rng(7)

    def case(s, b, shape, d, binary=True):
        x = torch.rand(b, *shape, generator=g, dtype=F64)
        x = x.round() if binary else x
        return (x, 2 * torch.randn(s, b, *shape, generator=g, dtype=F64),
                torch.randn(b, d, generator=g, dtype=F64),
                torch.randn(b, d, generator=g, dtype=F64) - 1)

    cases = [case(4, 16, (1, 28, 28), 20), case(3, 5, (1, 4, 4), 3, binary=False),
             case(2, 1, (7,), 2), case(1, 6, (1, 5, 5), 4)]
    return _run("negative_elbo_loss", negative_elbo_loss, _negative_elbo_loss, cases,
                explain=_explain_loss, rtol=1e-9, atol=1e-9)


# Exercise: the best decoder that ignores z (derive)
#: Σ_i H(x̄_i): the pixel entropies of the mean grey level x̄ of the 55,000 training images
#: of the chapter's split (``train_val_split(mnist("train").x, n_val=5000, seed=0)``), in
#: nats; a test recomputes it from the data.
CODE_FREE_NATS = 205.9476
#: The same mean image's overall grey level, one probability for every pixel.
MEAN_GREY = 0.130646
D_X = 784


def _bernoulli_entropy(p: float) -> float:
    return -p * math.log(p) - (1 - p) * math.log(1 - p)


@exercise()
def check_code_free_distortion(code_free_distortion) -> CheckResult:
    """Check ``code_free_distortion()``: the smallest expected distortion, in nats per image,
    of a Bernoulli decoder that gives every image the same pixel probabilities, on the
    dynamically binarized training images: Σ_i H(x̄_i), about 205.95.

    Answers within 0.1 % pass (the means of all 60,000 training images give the same
    to that precision). The slips named: bits, one pixel's share, one probability for
    every pixel, the sign, and the trained model's measured value.
    """
    want = CODE_FREE_NATS
    one_rho = D_X * _bernoulli_entropy(MEAN_GREY)
    return check_number("code_free_distortion", code_free_distortion, want, unit=" nats",
                        mistakes=[
        (want / math.log(2), "that is in bits (log base 2): the chapter measures in nats."),
        (want / D_X, "that is per pixel: the distortion of an image sums over its 784 pixels."),
        (one_rho, "that is one probability for every pixel (the overall mean grey level): "
         "each pixel has its own mean x̄_i, and the best decoder without z uses it."),
        (-want, "that is log p(x | z), a negative number; the distortion is its negative."),
        (206.20, "that is the trained pixel-mean model's measured test distortion; the "
         "question asks for the smallest distortion any decoder ignoring z can reach, "
         "computed from the training images."),
    ])


# Exercise: buy rate with a smaller variance (experiment)
TRAIN_IMAGES, TEST_IMAGES = 10_000, 2_000
RATE_RANGE = (20.0, 35.0)   # nats per image: about the Bernoulli model's 26.8
MAX_MSE = 0.03              # squared error per pixel of the decoder mean at z = mu(x)


def _mnist(split: str, n: int) -> torch.Tensor:
    from vaecore import data  # imported on use: the other checks of the chapter need no data
    return data.mnist(split).x[:n]


@exercise()
def check_gaussian_vae(train_gaussian_vae) -> CheckResult:
    """Check ``train_gaussian_vae(train_x)``: returns a VAE with a fixed-variance Gaussian
    decoder (``normal(logvar=...)``), trained on ``train_x``, the first 10,000 MNIST
    training images (grey levels).

    The check measures on the first 2,000 test images (grey levels, one z per image
    with seed 2): the rate, mean KL, must be between 20 and 35 nats per image, and the
    squared error per pixel of the decoder mean at z = μ(x) below 0.03. Two epochs at
    σ² = 1 give about 3 nats; at σ² = 0.1, about 26.
    """
    from vaecore.elbo import negative_elbo
    name = "gaussian_vae"
    model, failed = call(name, train_gaussian_vae, _mnist("train", TRAIN_IMAGES))
    if failed is not None:
        return failed
    kind = getattr(getattr(model, "likelihood", None), "name", None)
    if not (hasattr(model, "encode") and hasattr(model, "reconstruct") and kind):
        return measured(name, False, f"your function returned a {type(model).__name__}",
                        "type", "Return the trained VAE.")
    if not kind.startswith("normal(logvar="):
        return measured(name, False, f"your model's likelihood is {kind}", "likelihood",
                        "The exercise asks for a Gaussian with a fixed variance: "
                        "likelihood=normal(logvar=math.log(var)), and a decoder that outputs "
                        "the mean only.")
    x = _mnist("test", TEST_IMAGES)
    model.eval()
    with torch.no_grad():
        terms = negative_elbo(model, x, generator=torch.Generator().manual_seed(2))
        mse = ((model.reconstruct(x) - x) ** 2).mean().item()
    rate, var = terms.kl.mean().item(), math.exp(float(kind[len("normal(logvar="):-1]))
    what = (f"rate {rate:.2f} nats per image, squared error {mse:.4f} per pixel, with "
            f"σ² = {var:.3g}, on {TEST_IMAGES:,} test images")
    low, high = RATE_RANGE
    if not (math.isfinite(rate) and math.isfinite(mse)):
        return measured(name, False, what, "nan", "Not finite: did training diverge?")
    if rate < low:
        return measured(name, False, what, "variance", f"The rate must be at least {low:.0f} "
                        "nats: a large σ² claims noise as large as the pixels, so a nat of "
                        "code saves too few nats of distortion. Lower σ²: the squared error is "
                        "weighted by 1/(2σ²) (fixed-variance-log-lik).")
    if rate > high:
        return measured(name, False, what, "variance", f"The rate must be at most {high:.0f} "
                        "nats: with so small a σ² every squared error costs many nats and the "
                        "code grows. Raise σ² a little.")
    return measured(name, mse < MAX_MSE, what, "undertrained",
                    f"The squared error must be below {MAX_MSE} per pixel: train longer (two "
                    "epochs at the chapter's settings reach it).")
