"""Checks for the exercises of chapter 02 (the evidence lower bound)."""
from __future__ import annotations

import math

import torch

from vaecore.importance import log_mean_exp
from vaecore.likelihoods import log_prob_normal
from ._answers import call, check_number, measured
from ._check import CheckResult, _fail, run_cases
from ._submission import _code_names, _functions, exercise, rng

__all__ = ["check_iwae_from_log_weights", "check_log_normal", "check_wider_q_gap",
           "check_mean_field_fit"]


def _iwae_from_log_weights(log_w: torch.Tensor) -> torch.Tensor:
    """Reference: ``logsumexp`` over the k samples (dim 0) minus ``log k``, shape ``(B,)``."""
    return torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])


def _run(name: str, student, reference, cases, explain=None, per_example_sum=True,
         **diag) -> CheckResult:
    """:func:`run_cases`; ``per_example_sum``: the reference sums over the event
    dimensions of its first argument (so a mean there is named a reduction mistake)."""
    return run_cases(name, student, reference, cases, explain=explain,
                     event_size="auto" if per_example_sum else None, **diag)


def _explain_iwae(args, got, want):
    (log_w,) = args
    if not isinstance(got, torch.Tensor) or got.shape != want.shape:
        return None
    got = got.detach().double()
    k = log_w.shape[0]
    if not torch.isfinite(got).all():
        return ("nan", "exp() of log-weights near -1000 underflows to 0 (near +800 it overflows "
                "to inf): subtract the largest log-weight before exponentiating and add it "
                "back after the log, as in Equation (logsumexp).")
    if k > 1 and torch.allclose(got, log_w.mean(0), rtol=1e-6, atol=1e-8):
        return ("jensen", "you averaged the log-weights: that estimates the ELBO (the k = 1 "
                "bound), not the log of the average weight. Average the weights themselves, "
                "shifted by the largest log-weight (Equation (logsumexp)).")
    if k > 1 and torch.isfinite(got).all() and torch.allclose(
            got - want, torch.full_like(want, math.log(k)), rtol=1e-6, atol=1e-8):
        return ("constant", f"off by log k = {math.log(k):.6g}: the bound averages the k "
                "weights, so subtract log k after the log of their sum.")
    return None


# What the exercise asks the student to write: the shift by the largest log-weight.
_LOG_SUM_EXP = frozenset({"logsumexp", "logaddexp", "logcumsumexp", "log_mean_exp"})


def _uses_logsumexp(fn) -> str | None:
    """The name of a log-sum-exp routine that ``fn`` (or a notebook function it calls) uses."""
    seen, todo = set(), _functions(fn)
    while todo:
        f = todo.pop()
        if id(f) in seen:
            continue
        seen.add(id(f))
        names = _code_names(f.__code__)
        found = sorted(names & _LOG_SUM_EXP)
        if found:
            return found[0]
        todo += [g for n in names for g in _functions(f.__globals__.get(n))
                 if g.__module__ == f.__module__]
    return None


@exercise(log_mean_exp)
def check_iwae_from_log_weights(iwae_from_log_weights) -> CheckResult:
    """Check ``iwae_from_log_weights(log_w)``: log-weights ``(k, B)`` → the bound ``(B,)``,
    with the shift of Equation (logsumexp) written out (no ``torch.logsumexp``).

    Cases: moderate random log-weights, log-weights near -1000 and +800 (a
    plain ``log(mean(exp(.)))`` underflows or overflows there), k = 1, and one
    weight dominating all the others. A correct answer that calls a
    log-sum-exp routine is refused: writing the shift is the exercise.
    """
    g = rng(3)
    moderate = torch.randn(7, 4, generator=g, dtype=torch.float64) * 3 - 5
    tiny = torch.randn(50, 3, generator=g, dtype=torch.float64) * 10 - 1000
    huge = torch.randn(20, 3, generator=g, dtype=torch.float64) * 10 + 800
    single = torch.randn(1, 5, generator=g, dtype=torch.float64) * 4
    dominated = torch.tensor([[0.0, -3.0], [-1e4, -3.0], [-2e4, -3.0]], dtype=torch.float64)
    cases = [(moderate,), (tiny,), (huge,), (single,), (dominated,)]
    result = _run("iwae_from_log_weights", iwae_from_log_weights, _iwae_from_log_weights,
                  cases, explain=_explain_iwae, per_example_sum=False, rtol=1e-9, atol=1e-9)
    routine = _uses_logsumexp(iwae_from_log_weights)
    if result.passed and routine:
        return _fail("iwae_from_log_weights", "logsumexp", f"the values are right, but your "
                     f"function calls {routine}, which does the part this exercise asks you to "
                     "write: take the largest log-weight a* per example, exponentiate "
                     "log w − a*, and add a* back after the log (Equation (logsumexp)).")
    return result


@exercise(log_prob_normal)
def check_log_normal(log_normal) -> CheckResult:
    """Check ``log_normal(x, mean, logvar)``: diagonal Gaussian log-density, shape ``(B,)``.

    ``x``, ``mean`` and ``logvar`` share one shape ``(B, ...)``; the result is
    summed over every dimension but the first.
    """
    g = rng(4)

    def draw(*shape, scale=1.0):
        return torch.randn(*shape, generator=g, dtype=torch.float64) * scale

    cases = [(draw(4, 6, scale=2), draw(4, 6), draw(4, 6)),
             (draw(3, 1, 5, 5), draw(3, 1, 5, 5), draw(3, 1, 5, 5, scale=2)),
             (draw(2, 3), draw(2, 3), torch.full((2, 3), -8.0, dtype=torch.float64)),
             (draw(5, 1), torch.zeros(5, 1, dtype=torch.float64),
              torch.zeros(5, 1, dtype=torch.float64))]
    return _run("log_normal", log_normal, log_prob_normal, cases, rtol=1e-9, atol=1e-9)


def _gap_moved(d: int, shift: float, dlogvar: float) -> float:
    """KL(q || p(z | x)) for q = the posterior moved by ``shift`` sds and ``dlogvar``, d dims."""
    return 0.5 * d * (math.exp(dlogvar) + shift ** 2 - 1 - dlogvar)


@exercise()
def check_wider_q_gap(wider_q_gap) -> CheckResult:
    """Check ``wider_q_gap()``: log p(x) − ELBO of the chapter's "wider q" (d = 3, mean moved
    by half a posterior sd, variance e times the posterior's), from Equation (kl-normal-normal).

    The slips named: one dimension instead of the sum over three, the mean term
    or the variance term left out, the narrower encoder's value, the shift
    entering unsquared.
    """
    return check_number("wider_q_gap", wider_q_gap, _gap_moved(3, 0.5, 1.0), unit=" nats",
                        mistakes=[
        (_gap_moved(1, 0.5, 1.0), "that is one latent dimension: the KL of a diagonal "
         "Gaussian sums over the d = 3 dimensions (kl-sum-over-dims)."),
        (_gap_moved(3, 0.0, 1.0), "the mean term is missing: a mean moved by t posterior "
         "standard deviations adds t²/2 per dimension."),
        (_gap_moved(3, 0.5, 0.0), "the variance term is missing: a variance e^Δ times the "
         "posterior's adds (e^Δ − 1 − Δ)/2 per dimension."),
        (_gap_moved(3, 0.5, -1.0), "that is the narrower q (variance e⁻¹ times); the wider "
         "one has e¹ times the posterior variance."),
        (1.5 * (math.e + 0.5 - 2), "the shift enters squared: (μ_q − μ_p)²/σ_p² = t² with "
         "t = 0.5, not t."),
    ])


def _linear_gaussian(seed: int, n: int = 8, d: int = 2, points: int = 5, s2: float = 0.5):
    """A linear-Gaussian model (lg-model) with random, non-orthogonal columns, and data from it."""
    g = rng(seed)
    W = torch.randn(n, d, generator=g, dtype=torch.float64)
    b = torch.randn(n, generator=g, dtype=torch.float64)
    z = torch.randn(points, d, generator=g, dtype=torch.float64)
    x = z @ W.T + b + math.sqrt(s2) * torch.randn(points, n, generator=g, dtype=torch.float64)
    return x, W, b, s2


def _elbo_closed_form(x, W, b, s2, mu, logvar):
    """Equation (lg-elbo) for q = N(mu, diag exp(logvar)), any W: shape (B,)."""
    n = x.shape[1]
    sq = ((x - mu @ W.T - b) ** 2).sum(1) + (torch.exp(logvar) * (W ** 2).sum(0)).sum(1)
    return (-0.5 * n * math.log(2 * math.pi * s2) - sq / (2 * s2)
            - 0.5 * (torch.exp(logvar) + mu ** 2 - 1 - logvar).sum(1))


TOLERANCE_NATS = 0.01


@exercise()
def check_mean_field_fit(fit_diagonal_q) -> CheckResult:
    """Check ``fit_diagonal_q(x, W, b, s2)`` → ``(mu, logvar)``, each ``(B, d)``: a diagonal
    Gaussian q for each row of ``x`` under the linear-Gaussian model (lg-model) with decoder
    weights ``W`` ``(n, d)``, bias ``b`` ``(n,)`` and variance ``s2``, fitted by the student.

    The check draws a model whose columns are not orthogonal (so no diagonal q
    reaches the posterior), calls the function, and measures the gap
    log p(x) − ELBO of the returned q with Equation (lg-elbo): it must be within
    0.01 nats of the smallest gap a diagonal q can reach, Equation (mean-field-gap).
    """
    name = "mean_field_fit"
    x, W, b, s2 = _linear_gaussian(7)
    d = W.shape[1]
    answer, failed = call(name, fit_diagonal_q, x.clone(), W.clone(), b.clone(), s2)
    if failed is not None:
        return failed
    if not (isinstance(answer, (tuple, list)) and len(answer) == 2
            and all(isinstance(t, torch.Tensor) and t.shape == (len(x), d) for t in answer)):
        return measured(name, False, "your function did not return two tensors of shape "
                        f"{(len(x), d)}", "shape", "Return (mu, logvar), one row per data point.")
    mu, logvar = (t.detach().double() for t in answer)
    precision = torch.eye(d, dtype=torch.float64) + W.T @ W / s2          # Λ
    best = 0.5 * (torch.log(torch.diagonal(precision)).sum() - torch.logdet(precision))
    log_px = torch.distributions.MultivariateNormal(
        b, W @ W.T + s2 * torch.eye(len(b), dtype=torch.float64)).log_prob(x)
    excess = (log_px - _elbo_closed_form(x, W, b, s2, mu, logvar) - best).max().item()
    what = (f"the largest gap log p(x) − ELBO over the {len(x)} points is {excess:.4f} nats above "
            f"the smallest a diagonal q reaches ({best.item():.4f} nats)")
    if not math.isfinite(excess):
        return measured(name, False, "the gap is not finite", "nan",
                        "Your mu or logvar hold NaN or inf: lower the learning rate.")
    if excess <= TOLERANCE_NATS:
        return measured(name, True, what)
    marginal = torch.log(torch.diagonal(torch.linalg.inv(precision))).expand_as(logvar)
    if torch.allclose(logvar, marginal, atol=1e-3):
        return measured(name, False, what, "variance", "Your variances are the posterior's "
                        "marginal variances Σ_jj: the ELBO's best diagonal q is narrower, with "
                        "variances 1/Λ_jj (the conditional variances).")
    if torch.allclose(logvar, torch.zeros_like(logvar), atol=1e-6):
        return measured(name, False, what, "variance", "Your log-variances are all 0, the "
                        "prior's: do the gradients reach logvar (z = mu + exp(½·logvar)·eps)?")
    return measured(name, False, what, "undertrained", f"It must be within {TOLERANCE_NATS} "
                    "nats: more steps, more samples of z per step, or a smaller learning rate "
                    "at the end.")
