"""Checks for the exercises of chapter 03 (KL divergences in closed form).

Beyond the generic diagnosis of :func:`~vaecourse.exercises._check.diagnose`
(shape, sign, reduction, factor ½, NaN), a check here recognises the slips
the chapter discusses and names them: the mean term of the Gaussian KL
entering with a minus sign (the sign error of source report 003), and the two
arguments of a KL swapped (``KL(p || q)`` computed instead of ``KL(q || p)``).
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from vaecore.kl import kl_bernoulli, kl_normal_normal
from ._answers import call, check_number, measured
from ._check import CheckResult, _fail, run_cases
from ._submission import exercise, rng

__all__ = ["check_kl_normal_normal", "check_kl_bernoulli", "check_kl_biased_coin",
           "check_fit_q"]

F64 = torch.float64


def _mean_term_subtracted(mu_q, logvar_q, mu_p, logvar_p):
    """Equation (kl-normal-normal) with ``-(mu_q - mu_p)**2``: the slip the checks name."""
    kl = 0.5 * (logvar_p - logvar_q + (torch.exp(logvar_q) - (mu_q - mu_p) ** 2)
                * torch.exp(-logvar_p) - 1)
    return kl.flatten(1).sum(1)


def _swapped_normal(mu_q, logvar_q, mu_p, logvar_p):
    return kl_normal_normal(mu_p, logvar_p, mu_q, logvar_q)


def _swapped_bernoulli(q_logits, p_logits):
    return kl_bernoulli(p_logits, q_logits)


def _same_as(student: Callable, slip: Callable, cases) -> bool:
    """Whether ``student`` reproduces ``slip`` on every case (errors and NaN count as no)."""
    for args in cases:
        try:
            got = student(*args)
            if not isinstance(got, torch.Tensor):
                return False
            want = slip(*args)
            if got.shape != want.shape or not torch.allclose(got.double(), want.double(),
                                                              rtol=1e-5, atol=1e-6):
                return False
        except Exception:  # noqa: BLE001 - any failure means "not this slip"
            return False
    return True


def _name_the_slip(result: CheckResult, name: str, student: Callable, cases,
                   slips) -> CheckResult:
    """Replace a generic "values" diagnosis by the known slip ``student`` reproduces, if any."""
    if result.passed or result.hint != "values":
        return result
    where = result.message[result.message.rfind(" (case"):] if " (case" in result.message else ""
    for slip, detail in slips:
        if _same_as(student, slip, cases):
            return _fail(name, "values", detail + where)
    return result


def _normal_cases():
    g = rng(3)
    def randn(*shape, scale=1.0):
        return scale * torch.randn(*shape, generator=g, dtype=F64)
    zeros, one = torch.zeros(2, 3, dtype=F64), torch.ones(1, 1, dtype=F64)
    mu, logvar = randn(2, 3), randn(2, 3)
    return [
        (randn(6, 5, scale=1.5), randn(6, 5), randn(6, 5), randn(6, 5)),
        (randn(4, 3), randn(4, 3, scale=3.0), randn(4, 3, scale=2.0), randn(4, 3, scale=3.0)),
        (mu, logvar, mu.clone(), logvar.clone()),          # q = p: the KL is 0
        (2 * one, 0 * one, 0 * one, 0 * one),              # KL(N(2, 1) || N(0, 1)) = 2
        (zeros, zeros + 2.0, zeros, zeros),                # KL(N(0, e²) || N(0, 1)) = (e² − 3)/2
    ]


@exercise(kl_normal_normal)
def check_kl_normal_normal(kl_fn) -> CheckResult:
    """Check ``kl_fn(mu_q, logvar_q, mu_p, logvar_p)``: diagonal Gaussian KL, shape (B,).

    All four arguments have shape ``(B, D)``; the result is summed over ``D``.
    """
    name = "kl_normal_normal"
    cases = _normal_cases()
    result = run_cases(name, kl_fn, kl_normal_normal, cases)
    return _name_the_slip(result, name, kl_fn, cases[:2], [
        (_mean_term_subtracted, "the mean term has the wrong sign: (μ_q − μ_p)² adds to σ_q² "
         "(it comes from E_q[(z − μ_p)²] = σ_q² + (μ_q − μ_p)²), so the KL grows as the means "
         "move apart."),
        (_swapped_normal, "you computed KL(p || q): the expectation is under q, the first "
         "distribution, so log σ_p² − log σ_q² and σ_q²/σ_p² appear, not the reverse."),
    ])


def _bernoulli_cases():
    g = rng(4)
    extreme_q = torch.tensor([[40.0, -40.0, 0.0, 25.0]], dtype=F64)
    extreme_p = torch.tensor([[1.0, 2.0, -40.0, -3.0]], dtype=F64)
    return [
        (3 * torch.randn(5, 7, generator=g, dtype=F64), 3 * torch.randn(5, 7, generator=g, dtype=F64)),
        (2 * torch.randn(3, 4, generator=g, dtype=F64), torch.zeros(3, 4, dtype=F64)),  # B(1/2)
        (extreme_q, extreme_p),
    ]


@exercise(kl_bernoulli)
def check_kl_bernoulli(kl_fn) -> CheckResult:
    """Check ``kl_fn(q_logits, p_logits)``: factorised Bernoulli KL from logits, shape (B,).

    Both arguments have shape ``(B, D)``; the result is summed over ``D`` and
    must stay finite for logits as large as ±40.
    """
    name = "kl_bernoulli"
    cases = _bernoulli_cases()
    result = run_cases(name, kl_fn, kl_bernoulli, cases, nan=(
        "the result has NaN or inf where the reference is finite: at logits of ±40, "
        "ρ = sigmoid(logit) rounds to 1 or 0 and the log of 1 − ρ or ρ is log 0. Work with "
        "log ρ = logsigmoid(logit) and log(1 − ρ) = logsigmoid(−logit)."))
    return _name_the_slip(result, name, kl_fn, cases[:2], [
        (_swapped_bernoulli, "you computed KL(p || q): the weights ρ_q and 1 − ρ_q come from "
         "q, the first argument."),
    ])



def _kl_bern(a: float, b: float) -> float:
    return a * math.log(a / b) + (1 - a) * math.log((1 - a) / (1 - b))


def _entropy(a: float) -> float:
    return -a * math.log(a) - (1 - a) * math.log(1 - a)


@exercise()
def check_kl_biased_coin(kl_biased_coin) -> CheckResult:
    """Check ``kl_biased_coin()``: KL(B(0.9) || B(½)) in nats, by Equation (kl-bernoulli-uniform).

    The slips named: the answer in bits, the entropy or the cross-entropy
    instead of the KL, and the arguments swapped, KL(B(½) || B(0.9)).
    """
    want = _kl_bern(0.9, 0.5)
    return check_number("kl_biased_coin", kl_biased_coin, want, unit=" nats", mistakes=[
        (want / math.log(2), "that is in bits (log base 2): the course measures in nats."),
        (_entropy(0.9), "that is the entropy H(0.9); the KL to the fair coin is log 2 − H(ρ) "
         "(kl-bernoulli-uniform)."),
        (math.log(2), "that is the cross-entropy H(q, B(½)) = log 2, the same for every q; the "
         "KL subtracts the entropy from it."),
        (_kl_bern(0.5, 0.9), "you computed KL(B(½) || B(0.9)): the expectation is under the "
         "first distribution, q = B(0.9)."),
    ])


# The chapter's target p of its Monte-Carlo section (Gaussian vs Gaussian).
MU_P = (0.5, 0.5, -1.0, 1.0)
LOGVAR_P = (0.5, -0.5, 1.0, 0.0)
KL_TOLERANCE = 1e-3


def _targets():
    g = rng(8)
    chapter = (torch.tensor([MU_P], dtype=F64), torch.tensor([LOGVAR_P], dtype=F64))
    drawn = (torch.randn(1, 4, generator=g, dtype=F64),
             torch.rand(1, 4, generator=g, dtype=F64) * 4 - 3)   # log σ_p² in [−3, 1]
    return [chapter, drawn]


@exercise()
def check_fit_q(fit_q) -> CheckResult:
    """Check ``fit_q(mu_p, logvar_p)`` → ``(mu, logvar)``, shape ``(1, D)`` each: q fitted to
    p = N(mu_p, diag exp(logvar_p)) by gradient descent on KL(q || p), from mu = 0, σ = 0.01.

    The check calls it for the chapter's p and for a p it draws (log σ_p² between
    −3 and 1) and measures KL(q || p) of the result with the closed form: it must
    be below 0.001 nats for both.
    """
    name, values = "fit_q", []
    for i, (mu_p, logvar_p) in enumerate(_targets(), 1):
        answer, failed = call(name, fit_q, mu_p.clone(), logvar_p.clone())
        if failed is not None:
            return failed
        if not (isinstance(answer, (tuple, list)) and len(answer) == 2 and all(
                isinstance(t, torch.Tensor) and t.shape == mu_p.shape for t in answer)):
            return measured(name, False, "your function did not return two tensors of shape "
                            f"{tuple(mu_p.shape)}", "shape", "Return (mu, logvar) of the fitted q.")
        mu, logvar = (t.detach().double() for t in answer)
        value = kl_normal_normal(mu, logvar, mu_p, logvar_p).item()
        values.append(value)
        what = f"KL(q || p) = {value:.3g} nats for target {i} of 2"
        if not math.isfinite(value):
            return measured(name, False, what, "nan", "The fit left the valid range (σ ≤ 0, or "
                            "a variance that overflowed): descend in log σ², where every value "
                            "is a valid variance, or lower the learning rate.")
        if value > KL_TOLERANCE:
            return measured(name, False, what, "undertrained", f"It must fall below "
                            f"{KL_TOLERANCE} nats: more steps, or a learning rate that suits "
                            "log σ² (the gradient in log σ² is at most ½ in size near σ = 0.01).")
    return measured(name, True, f"KL(q || p) = {values[0]:.2g} and {values[1]:.2g} nats for the "
                    f"two targets, below {KL_TOLERANCE}")
