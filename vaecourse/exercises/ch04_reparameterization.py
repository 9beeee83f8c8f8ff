"""Checks for the exercises of chapter 04 (gradients through samples).

``check_reparameterize`` is statistical: it draws many samples with a fixed
seed and compares their mean, their variance and the pathwise gradients of
the sample mean of z² with the exact values, with tolerances of several
standard errors (the reference passes with a wide margin, the typical mistakes
miss by many standard errors). ``check_score_function_grad`` is exact: the
estimate is a deterministic function of the samples it is given.
"""
from __future__ import annotations

import math

import torch

from vaecore.reparam import reparameterize as _library_reparameterize
from ._answers import call, check_number, measured
from ._check import CheckResult, run_cases
from ._submission import exercise, rng

__all__ = ["check_reparameterize", "check_score_function_grad", "check_score_variance",
           "check_shifted_square_baseline"]

_MU = (-1.0, 0.0, 2.0, 0.5)
_LOGVAR = (0.4, 1.5, -1.0, -3.0)  # none is 0, so the mistakes give distinct variances
_N = 20_000       # samples per column
_Z_TOL = 5.0      # tolerance on means and gradients, in standard errors
_VAR_RTOL = 0.06  # relative tolerance on variances (their standard error is about 1 %)


def _fail(hint: str, detail: str, name: str = "reparameterize") -> CheckResult:
    return CheckResult(False, hint, f"✗ {name}: not yet. Hint ({hint}): {detail}")


def _close_rel(a: torch.Tensor, b: torch.Tensor, rtol: float) -> bool:
    return bool(((a / b) - 1).abs().max() < rtol)


def _variance_hint(var: torch.Tensor, logvar: torch.Tensor) -> CheckResult:
    """Name the usual confusion behind a wrong variance."""
    if _close_rel(var, logvar ** 2, _VAR_RTOL):
        return _fail("logvar", "the spread of z is |logvar|: you used logvar as the standard "
                     "deviation. logvar is log σ²; σ = exp(½·logvar).")
    if _close_rel(var, torch.exp(2 * logvar), _VAR_RTOL):
        return _fail("factor", "the variance of z is exp(logvar)² instead of exp(logvar): "
                     "you used exp(logvar) as σ. That is the variance σ²; the factor ½ is "
                     "missing: σ = exp(½·logvar).")
    return _fail("variance", f"the sample variances {[round(v, 3) for v in var.tolist()]} "
                 f"differ from exp(logvar) = {[round(v, 3) for v in torch.exp(logvar).tolist()]}.")


def _draw(reparameterize, mu, logvar, seed):
    return reparameterize(mu.expand(_N, len(_MU)), logvar.expand(_N, len(_MU)),
                          rng(seed))


def _check_sample(z, z_again, mu, logvar) -> CheckResult | None:
    """Type, shape, reproducibility, mean and variance of the samples ``z``."""
    if not isinstance(z, torch.Tensor):
        return _fail("type", f"expected a torch.Tensor, got {type(z).__name__}.")
    if z.shape != (_N, len(_MU)):
        return _fail("shape", f"expected shape {(_N, len(_MU))} (the shape of mu), got "
                     f"{tuple(z.shape)}: one draw per entry, nothing reduced.")
    if z.dtype != torch.float64:
        return _fail("dtype", f"mu is float64 but z is {z.dtype}: draw eps with dtype=mu.dtype.")
    zd = z.detach()
    if not torch.isfinite(zd).all():
        return _fail("nan", "z has NaN or inf: σ = exp(½·logvar) is finite for every logvar.")
    if not torch.equal(zd, z_again.detach()):
        return _fail("generator", "two calls with identically seeded generators gave different "
                     "z: draw eps with torch.randn(mu.shape, generator=generator, dtype=mu.dtype).")
    se = zd.std(0) / math.sqrt(_N)
    if ((zd.mean(0) - mu) / se).abs().max() > _Z_TOL:
        return _fail("mean", f"the sample means {[round(m, 3) for m in zd.mean(0).tolist()]} "
                     f"are not mu = {list(_MU)}: z = mu + σ·eps.")
    if not _close_rel(zd.var(0), torch.exp(logvar), _VAR_RTOL):
        return _variance_hint(zd.var(0), logvar)
    return None


def _check_gradient(z, mu, logvar) -> CheckResult | None:
    """Pathwise gradient of the sample mean of z² against its exact expectation."""
    no_grad = ("no gradient reaches {}: z was drawn, not computed from mu and logvar "
               "(torch.normal, .sample() and detach() cut the graph). Compute z = mu + σ·eps "
               "with eps drawn from N(0, 1).")
    if not z.requires_grad:
        return _fail("gradient", no_grad.format("mu or logvar"))
    (z ** 2).mean(0).sum().backward()
    zd, sigma2 = z.detach(), torch.exp(logvar.detach())
    for name, grad, want, per_sample in (
            ("mu", mu.grad, 2 * mu.detach(), 2 * zd),                          # d/dmu E[z²] = 2 mu
            ("logvar", logvar.grad, sigma2, zd * (zd - mu.detach()))):         # d/dlogvar = σ²
        if grad is None or not grad.abs().gt(0).any():
            return _fail("gradient", no_grad.format(name))
        se = per_sample.std(0) / math.sqrt(_N)
        if ((grad - want) / se).abs().max() > _Z_TOL:
            return _fail("gradient", f"the gradient of mean(z²) with respect to {name} is "
                         f"{[round(g, 3) for g in grad.tolist()]}, expected about "
                         f"{[round(w, 3) for w in want.tolist()]}.")
    return None


@exercise(_library_reparameterize)
def check_reparameterize(reparameterize) -> CheckResult:
    """Check ``reparameterize(mu, logvar, generator)``: z ~ N(mu, exp(logvar)), differentiably.

    Draws 20,000 samples for each of four (mu, logvar) pairs with a fixed seed
    and checks shape, dtype, reproducibility with the generator, the sample
    mean and variance, and the pathwise gradients of mean(z²) with respect to
    mu (≈ 2 mu) and logvar (≈ exp(logvar)).
    """
    mu = torch.tensor(_MU, dtype=torch.float64, requires_grad=True)
    logvar = torch.tensor(_LOGVAR, dtype=torch.float64, requires_grad=True)
    try:
        z = _draw(reparameterize, mu, logvar, seed=4)
        with torch.no_grad():
            z_again = _draw(reparameterize, mu, logvar, seed=4)
    except NotImplementedError:
        return CheckResult(False, "todo", "✗ reparameterize: not implemented yet.")
    except Exception as exc:  # report, don't hide, what the student's code raised
        return _fail("error", f"your function raised {type(exc).__name__}: {exc}")
    bad = _check_sample(z, z_again, mu.detach(), logvar.detach())
    if bad is None:
        bad = _check_gradient(z, mu, logvar)
    if bad is not None:  # a failed CheckResult is falsy: test for None, not truth
        return bad
    return CheckResult(True, "", f"✓ reparameterize: mean, variance and gradients agree on "
                       f"{len(_MU)} × {_N:,} samples.")


def _leave_one_out(f_values):
    """c_s of Equation (score-function-baseline): the mean of f over the other S − 1 samples."""
    return (f_values.sum() - f_values) / (f_values.shape[0] - 1)


def _score_function_grad(f_values, z, logits):
    return ((f_values - _leave_one_out(f_values))[:, None] * (z - torch.sigmoid(logits))).mean(0)


_WRONG_GRADS = (  # (hint, message, wrong formula) checked when the answer differs
    ("baseline", "the baseline includes the current sample: the mean of all S values of f "
     "contains f(z_s), so it is not independent of z_s, and the estimate comes out (S − 1)/S "
     "times the unbiased one. Leave sample s out of its own baseline.",
     lambda f, z, ell: ((f - f.mean())[:, None] * (z - torch.sigmoid(ell))).mean(0)),
    ("baseline", "no baseline is subtracted: use (f(z_s) − c_s)·score, with c_s the mean of f "
     "over the other samples.",
     lambda f, z, ell: (f[:, None] * (z - torch.sigmoid(ell))).mean(0)),
    ("baseline", "the baseline is added: subtract it, (f(z_s) − c_s)·score.",
     lambda f, z, ell: ((f + _leave_one_out(f))[:, None] * (z - torch.sigmoid(ell))).mean(0)),
)
_CANCELLED = ("score", "your estimate is 0 for every logit. With this baseline the weights "
              "f(z_s) − c_s sum to zero over the samples, so a factor that is the same for every "
              "sample cancels: the score must depend on the bits, d log q(z)/dℓ = z − sigmoid(ℓ) "
              "(not the derivative of the probability, sigmoid(ℓ)(1 − sigmoid(ℓ))).")


@exercise()
def check_score_function_grad(score_function_grad) -> CheckResult:
    """Check ``score_function_grad(f_values, z, logits)`` → shape ``(K,)``.

    ``z`` holds S ≥ 2 samples ``(S, K)`` of independent Bernoulli(sigmoid(logits))
    bits and ``f_values`` their values ``(S,)``. The estimate is the mean over
    samples of (f(z_s) − c_s)·(z_s − sigmoid(ℓ)), with ℓ the ``logits`` (Equation
    (bernoulli-score)) and c_s the leave-one-out baseline, the mean of f over the
    other S − 1 samples (Equation (score-function-baseline)).
    """
    g = rng(5)

    def case(s, k, offset):
        logits = torch.randn(k, generator=g, dtype=torch.float64) * 1.5
        z = torch.bernoulli(torch.sigmoid(logits).expand(s, k), generator=g)
        f_values = torch.randn(s, generator=g, dtype=torch.float64) + offset
        return f_values, z, logits

    cases = [case(64, 5, 3.0), case(64, 3, -1.0), case(2, 1, 10.0)]
    result = run_cases("score_function_grad", score_function_grad, _score_function_grad,
                       cases, event_size=lambda args: None, batch_size=64)
    if result.hint == "reduction":
        return _fail("reduction", "the values are S times too large (S = 64 samples): "
                     "average over the samples, do not sum.", name="score_function_grad")
    if result.passed or result.hint not in ("values", "factor"):
        return result
    got = score_function_grad(*cases[0])
    if isinstance(got, torch.Tensor) and got.shape == (5,) and got.abs().max() < 1e-9:
        return _fail(*_CANCELLED, name="score_function_grad")
    for hint, detail, wrong in _WRONG_GRADS:
        if isinstance(got, torch.Tensor) and got.shape == (5,) and torch.allclose(
                got.detach().double(), wrong(*cases[0]), rtol=1e-5, atol=1e-8):
            return _fail(hint, detail, name="score_function_grad")
    return result


@exercise()
def check_score_variance(score_variance) -> CheckResult:
    """Check ``score_variance()``: the exact variance of the one-draw score-function estimate
    f(z)·(z − μ)/σ² of d/dμ E[z²], for q = N(0.5, 1).

    With z = μ + ε: E[(μ + ε)⁴ ε²] − (2μ)² = μ⁴ + 18μ² + 15 − 4μ² = 18.5625.
    The slips named: the second moment without subtracting the squared mean,
    and the pathwise estimator's variance.
    """
    mu = 0.5
    second_moment = mu ** 4 + 18 * mu ** 2 + 15
    return check_number("score_variance", score_variance, second_moment - 4 * mu ** 2, mistakes=[
        (second_moment, "that is E[ĝ²], the second moment: the variance subtracts the squared "
         "mean, (d/dμ E[z²])² = (2μ)²."),
        (4.0, "that is the pathwise estimator's variance, Var[2z] = 4σ²; the question asks "
         "for the score function's."),
    ])


SHIFT, MU_Q = 1.0, 0.5   # f(z) = (z + SHIFT)² under q = N(MU_Q, 1)
DRAWS = 200_000


@exercise()
def check_shifted_square_baseline(shifted_square_baseline) -> CheckResult:
    """Check ``shifted_square_baseline()`` → a constant c: with f(z) = (z + 1)² under
    q = N(0.5, 1), the one-draw score-function estimate (f(z) − c)·(z − 0.5) must have at
    most half the variance of the estimate without a baseline (c = 0).

    The check measures both variances on 200,000 draws (seeded). The running average of f
    tends to E[f] = 3.25, which falls short (variance 28 against a target of at most 25.8);
    the variance-minimising constant E[f s²]/E[s²] = 5.25 reaches 24.
    """
    name = "shifted_square_baseline"
    value, failed = call(name, shifted_square_baseline)
    if failed is not None:
        return failed
    try:
        c = float(value)
    except (TypeError, ValueError, RuntimeError):
        return measured(name, False, f"your function returned a {type(value).__name__}", "type",
                        "Return one number, the constant baseline c.")
    eps = torch.randn(DRAWS, generator=rng(9), dtype=torch.float64)
    f = (MU_Q + eps + SHIFT) ** 2
    plain, with_c = (f * eps).var().item(), ((f - c) * eps).var().item()
    what = (f"with c = {c:.4g} the one-draw variance is {with_c:.2f}, without a baseline "
            f"{plain:.2f} (ratio {with_c / plain:.2f}), on {DRAWS:,} draws")
    if with_c <= plain / 2:
        return measured(name, True, what)
    mean_f = f.mean().item()
    if abs(c - mean_f) < 0.1:
        return measured(name, False, what, "baseline", "That c is about E[f], the value a "
                        "running average tracks: not enough here. Measure the variance for "
                        "a range of c and look where it is smallest (optimal-baseline).")
    return measured(name, False, what, "baseline", "It must be at most half: measure the "
                    "variance of (f(z) − c)·score for a range of c and pick one near the lowest.")
