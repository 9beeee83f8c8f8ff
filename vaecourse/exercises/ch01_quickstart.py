"""Checks for the exercises of chapter 01 (a VAE in a minute)."""
from __future__ import annotations

import math

import torch

from vaecore.likelihoods import log_prob_bernoulli
from vaecore.units import bits_per_dim as _bits_per_dim
from ._answers import call, check_number, measured
from ._check import CheckResult, run_cases
from ._submission import exercise, rng

__all__ = ["check_bits_per_dim", "check_log_prob_bernoulli", "check_coin_flip_nats",
           "check_two_dim_vae"]

D_X = 784  # pixels of an MNIST image

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


@exercise()
def check_coin_flip_nats(coin_flip_nats) -> CheckResult:
    """Check ``coin_flip_nats()``: -log p(x) of a binary 28 × 28 image under ρ = ½ everywhere.

    Every pixel has probability ½ whatever its value, so the answer is
    ``784 · log 2`` nats; the slips named are bits instead of nats, one pixel
    instead of the image, and bits per dimension.
    """
    return check_number("coin_flip_nats", coin_flip_nats, D_X * math.log(2), unit=" nats",
                        mistakes=[
        (D_X, "that is the answer in bits (log₂ 2 = 1 per pixel): the question asks for "
              "nats, natural logarithms, as the loss of the chapter prints them."),
        (math.log(2), "that is one pixel: the image's log-likelihood sums over its 784 pixels."),
        (1.0, "that is bits per dimension: the question asks for nats per image."),
        (-D_X * math.log(2), "that is log p(x); the question asks for the negative "
                             "log-likelihood, which is positive."),
    ])


TRAIN_IMAGES, TEST_IMAGES, MAX_NATS = 10_000, 2_000, 188.0


def _mnist(split: str, n: int):
    from vaecore import data  # imported on use: the other checks of the chapter need no data
    return data.mnist(split).x[:n]


@exercise()
def check_two_dim_vae(train_two_dim_vae) -> CheckResult:
    """Check ``train_two_dim_vae(train_x)``: returns a VAE with a 2-dimensional code,
    trained on ``train_x`` (the first 10,000 MNIST training images, grey levels).

    The check calls it, then measures the negative ELBO on the first 2,000 test
    images (binarized once with seed 1, one z per image with seed 2): it must be
    a 2-dimensional code and at most 188 nats per image (two epochs of the
    chapter's settings reach 179 to 186 over seeds; one epoch 189 to 200).
    """
    from vaecore.data import binarize_dynamic
    from vaecore.elbo import negative_elbo
    name = "two_dim_vae"
    model, failed = call(name, train_two_dim_vae, _mnist("train", TRAIN_IMAGES))
    if failed is not None:
        return failed
    if not (hasattr(model, "encode") and hasattr(model, "decode")):
        return measured(name, False, f"your function returned a {type(model).__name__}",
                        "type", "Return the trained VAE.")
    x = binarize_dynamic(_mnist("test", TEST_IMAGES), generator=torch.Generator().manual_seed(1))
    model.eval()
    with torch.no_grad():
        latent = model.encode(x[:2]).mu.shape[-1]
        if latent != 2:
            return measured(name, False, f"the code of your model has {latent} dimensions",
                            "latent", "The exercise asks for a 2-dimensional code "
                            "(latent_dim=2 in the encoder and the decoder).")
        terms = negative_elbo(model, x, generator=torch.Generator().manual_seed(2))
    loss, kl = terms.loss.item(), terms.kl.mean().item()
    what = (f"test negative ELBO {loss:.2f} nats per image (reconstruction "
            f"{-terms.log_likelihood.mean().item():.2f} + KL {kl:.2f}), {TEST_IMAGES:,} test "
            "images")
    if not math.isfinite(loss):
        return measured(name, False, what, "nan", "The loss is not finite: did training diverge?")
    return measured(name, loss <= MAX_NATS, what, "undertrained",
                    f"A 2-dimensional code reaches {MAX_NATS:.0f} nats or less after two epochs "
                    "over the 10,000 images at the chapter's settings (Adam, learning rate 1e-3, "
                    "batches of 128, dynamic binarization): train longer, or check the "
                    "learning rate and the binarization.")
