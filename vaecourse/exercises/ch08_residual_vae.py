"""Checks for the exercises of chapter 08 (residual VAEs on natural images)."""
from __future__ import annotations

import math

import torch

from vaecore.kl import kl_normal_std_normal
from vaecore.likelihoods import log_prob_bernoulli
from vaecore.resnet import ResidualBlock
from vaecore.units import bits_per_dim
from ._check import CheckResult, _fail, diagnose, run_cases
from ._submission import exercise, rng

__all__ = ["check_residual_block", "check_elbo_bits_per_dim"]


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
