"""Checks for the exercises of chapter 08 (residual VAEs on natural images)."""
from __future__ import annotations

import math

import torch

from vaecore.kl import kl_normal_std_normal
from vaecore.likelihoods import log_prob_bernoulli
from vaecore.resnet import ResidualBlock
from vaecore.units import bits_per_dim
from ._answers import call, check_number, measured
from ._check import CheckResult, _fail, diagnose, run_cases
from ._submission import exercise, rng

__all__ = ["check_residual_block", "check_elbo_bits_per_dim", "check_one_level_scale",
           "check_pixel_logistic"]


def _library_block(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    """:class:`vaecore.resnet.ResidualBlock` in training mode with conv weights ``w1``, ``w2``."""
    block = ResidualBlock(x.shape[1]).to(x.dtype).train()
    with torch.no_grad():
        block.residual[0].weight.copy_(w1)
        block.residual[3].weight.copy_(w2)
    return block(x)


def _block_cases(dtype=torch.float64):
    g = rng(8)
    cases = []
    for b, c, h in ((4, 3, 6), (2, 5, 4), (8, 2, 8)):
        x = torch.randn(b, c, h, h, generator=g, dtype=dtype)
        w1 = torch.randn(c, c, 3, 3, generator=g, dtype=dtype) / (3 * math.sqrt(c))
        w2 = torch.randn(c, c, 3, 3, generator=g, dtype=dtype) / (3 * math.sqrt(c))
        cases.append((x, w1, w2))
    return cases


@exercise(ResidualBlock)
def check_residual_block(residual_block) -> CheckResult:
    """Check ``residual_block(x, w1, w2)``: ``x + BN(conv(ReLU(BN(conv(x, w1))), w2))``.

    BatchNorm in training mode (batch statistics, biased variance, eps 1e-5, no
    affine parameters), 3×3 convolutions with padding 1 and no bias. Checks the
    output (shape and values), the gradient with respect to ``x``, and that a
    zero second convolution gives the identity map.
    """
    name = "residual_block"
    for i, (x, w1, w2) in enumerate(_block_cases()):
        x_ref = x.clone().requires_grad_(True)
        want = _library_block(x_ref, w1, w2)
        x_stu = x.clone().requires_grad_(True)
        try:
            got = residual_block(x_stu, w1, w2)
        except NotImplementedError:
            return CheckResult(False, "todo", f"✗ {name}: not implemented yet.")
        except Exception as exc:  # report, don't hide, what the student's code raised
            return _fail(name, "error", f"your function raised {type(exc).__name__}: {exc}")
        where = f" (case {i + 1} of 3)"
        if isinstance(got, torch.Tensor) and got.shape == want.shape:
            g, w = got.detach(), want.detach()
            if not torch.allclose(g, w, rtol=1e-5, atol=1e-6):
                if torch.allclose(g, torch.relu(w), rtol=1e-5, atol=1e-6):
                    return _fail(name, "relu", "there is a ReLU after the sum: the skip path "
                                 "must stay an exact identity (no non-linearity after x + f(x))."
                                 + where)
                if torch.allclose(g, w - x, rtol=1e-5, atol=1e-6):
                    return _fail(name, "skip", "the output is f(x) alone: add the input x "
                                 "(the skip connection)." + where)
        bad = diagnose(name, got, want, rtol=1e-5, atol=1e-6)
        if bad is not None:
            return bad._replace(message=bad.message + where)
        r = torch.randn(want.shape, generator=rng(i), dtype=x.dtype)
        (want * r).sum().backward()
        if not got.requires_grad:
            return _fail(name, "gradient", "the output does not depend differentiably on x: "
                         "use torch operations only (no .detach(), no numpy)." + where)
        (got * r).sum().backward()
        bad = diagnose(name + " gradient", x_stu.grad, x_ref.grad, rtol=1e-5, atol=1e-6)
        if bad is not None:
            return bad._replace(hint="gradient", message=bad.message + where)
    x, w1, w2 = _block_cases()[0]
    with torch.no_grad():
        got = residual_block(x, w1, torch.zeros_like(w2))
    bad = diagnose(name + " with w2 = 0", got, x)
    if bad is not None:
        return bad._replace(hint="identity", message=bad.message + " With a zero second "
                            "convolution the block must return x unchanged.")
    return CheckResult(True, "", f"✓ {name}: output, gradient and the identity at zero "
                                 f"residual agree with vaecore.resnet.ResidualBlock on 3 cases.")


def _elbo_bits_per_dim(x, x_logits, mu, logvar) -> torch.Tensor:
    elbo = log_prob_bernoulli(x, x_logits) - kl_normal_std_normal(mu, logvar)
    return bits_per_dim(-elbo, x[0].numel())


@exercise()
def check_elbo_bits_per_dim(elbo_bits_per_dim) -> CheckResult:
    """Check ``elbo_bits_per_dim(x, x_logits, mu, logvar)``: -ELBO in bits/dim, ``(B,)``."""
    g = rng(9)
    f64 = torch.float64

    def case(b, shape, d):
        return (torch.rand(b, *shape, generator=g, dtype=f64),
                torch.randn(b, *shape, generator=g, dtype=f64) * 2,
                torch.randn(b, d, generator=g, dtype=f64),
                torch.randn(b, d, generator=g, dtype=f64) * 0.5 - 1)

    cases = [case(4, (3, 32, 32), 64), case(3, (1, 28, 28), 20), case(2, (3, 4, 4), 5)]
    return run_cases("elbo_bits_per_dim", elbo_bits_per_dim, _elbo_bits_per_dim, cases, nan=(
        "the result has NaN or inf where the reference is finite: compute the reconstruction "
        "term from the logits (binary_cross_entropy_with_logits, or logsigmoid), not as the "
        "log of sigmoid(logits), which rounds to 0 or 1 for large logits."))


# Exercise: the bits of a discretized logistic one level wide (derive)
def _bits(p: float) -> float:
    return -math.log2(p)


@exercise()
def check_one_level_scale(one_level_bits) -> CheckResult:
    """Check ``one_level_bits()``: the bits that a discretized logistic with a scale of one
    level (s = 1/255), its mean exactly on the true level, spends on an interior level:
    −log2(σ(1/2) − σ(−1/2)) = −log2 tanh(1/4) ≈ 2.0296 bits.

    The slips named: the answer in nats, and the density at the bin's centre times the bin's
    width (exactly 2 bits) in place of the bin's mass.
    """
    p = math.tanh(0.25)   # σ(1/2) − σ(−1/2)
    return check_number("one_level_bits", one_level_bits, _bits(p), unit=" bits", mistakes=[
        (-math.log(p), "that is the cost in nats; the question asks for bits (divide by ln 2)."),
        (2.0, "the density at the bin's centre, 1/(4s), times the bin's width Δ = s is an "
         "approximation, 1/4; the probability of the level is the logistic's mass over its "
         "bin, a difference of two sigmoids at the bin's edges."),
    ])


# Exercise: a discretized logistic without a network (experiment)
#: Bits per dimension to beat on the 2,000 test images; 8 bits is the uniform model over the
#: 256 levels; mean 1/2 with a scale matched to the pixels' spread gives 7.971.
PIXEL_BITS = 7.95


def _cifar_x(split: str) -> torch.Tensor:
    from vaecourse.chapters import ch08_residual_vae as rc  # on use: the other checks need no data
    return rc.splits()[0].x if split == "train" else rc.test_set().x


def _as_channels(value):
    t = torch.as_tensor(value, dtype=torch.float64) if not isinstance(value, torch.Tensor) \
        else value.detach().double()
    return t.reshape(1, 3, 1, 1) if t.numel() == 3 else None


@exercise()
def check_pixel_logistic(fit_pixel_logistic) -> CheckResult:
    """Check ``fit_pixel_logistic(train_x)``: returns ``(mean, log_scale)``, three numbers each
    (one per colour channel), chosen from the 9,000 training images ``train_x``, of a
    discretized logistic that every sub-pixel of a channel shares (no network, no z).

    The check scores the 2,000 test images with :func:`log_prob_discretized_logistic` and
    passes when they cost at most 7.95 bits per dimension (the uniform model over the 256
    levels costs 8; mean 1/2 with a scale matched to the pixels' spread, 7.971).
    """
    from vaecore.discretized_logistic import log_prob_discretized_logistic
    name = "pixel_logistic"
    params, failed = call(name, fit_pixel_logistic, _cifar_x("train"))
    if failed is not None:
        return failed
    if not (isinstance(params, (tuple, list)) and len(params) == 2):
        return measured(name, False, f"your function returned a {type(params).__name__}", "type",
                        "Return a pair (mean, log_scale).")
    try:
        mean, log_scale = (_as_channels(v) for v in params)
    except (TypeError, ValueError, RuntimeError):
        mean = log_scale = None
    if mean is None or log_scale is None:
        return measured(name, False, "your mean or log_scale is not three numbers", "type",
                        "Return one mean and one log-scale per colour channel, shape (3,).")
    x = _cifar_x("test").double()
    with torch.no_grad():
        log_p = log_prob_discretized_logistic(x, mean.expand_as(x), log_scale)
    bits = (-log_p.mean() / (x[0].numel() * math.log(2))).item()
    what = f"{bits:.4f} bits/dim on the {len(x):,} test images"
    if not math.isfinite(bits):
        return measured(name, False, what, "nan", "Not finite: is the log-scale finite?")
    return measured(name, bits <= PIXEL_BITS, what, "fit", f"Beat {PIXEL_BITS} bits/dim: place "
                    "each channel's logistic where that channel's training pixels lie, and match "
                    "its scale to their spread (a logistic of scale s has standard deviation "
                    "s·π/√3).")
