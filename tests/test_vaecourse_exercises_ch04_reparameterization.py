"""Chapter 04's exercise checks: the references pass, typical mistakes get the right hint."""
from __future__ import annotations

import pytest
import torch

from vaecourse.exercises import ch04_reparameterization as exercises
from vaecourse.exercises.ch04_reparameterization import check_reparameterize, check_score_function_grad
from vaecore.reparam import reparameterize as library_reparameterize


def _eps(mu, generator):
    return torch.randn(mu.shape, generator=generator, dtype=mu.dtype)


# Exercise: reparameterize(mu, logvar, generator)
def test_checks_are_re_exported():
    assert exercises.check_reparameterize is check_reparameterize
    assert exercises.check_score_function_grad is check_score_function_grad


def _reparameterize(mu, logvar, g):
    return mu + torch.exp(0.5 * logvar) * _eps(mu, g)


@pytest.mark.parametrize("ok", [
    _reparameterize,
    lambda mu, logvar, g: mu + torch.exp(logvar).sqrt() * _eps(mu, g),
    # another way of drawing eps (a different stream) must pass too: the check is statistical
    lambda mu, logvar, g: mu + torch.exp(0.5 * logvar) * torch.empty_like(mu).normal_(generator=g),
    lambda mu, logvar, g: mu - torch.exp(0.5 * logvar) * _eps(mu, g),  # -eps is N(0, 1) too
])
def test_reparameterize_references_pass(ok):
    result = check_reparameterize(ok)
    assert result.passed and "✓" in repr(result), result.message


def test_reparameterize_result_is_deterministic():
    first = check_reparameterize(_reparameterize)
    assert repr(first) == repr(check_reparameterize(_reparameterize))


def test_reparameterize_refuses_the_library_s_function():
    """Chapter 4 imports it under the exercise's name: an answer cell that failed leaves it."""
    result = check_reparameterize(library_reparameterize)
    assert result.hint == "library" and "vaecore.reparam.reparameterize" in result.message


@pytest.mark.parametrize("wrong, hint", [
    (lambda mu, logvar, g: mu + logvar * _eps(mu, g), "logvar"),                # logvar as std
    (lambda mu, logvar, g: mu + torch.exp(logvar) * _eps(mu, g), "factor"),     # missing ½
    (lambda mu, logvar, g: torch.normal(mu, torch.exp(0.5 * logvar), generator=g), "gradient"),
    (lambda mu, logvar, g: torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).sample(),
     "generator"),
    (lambda mu, logvar, g: mu.detach() + torch.exp(0.5 * logvar) * _eps(mu, g), "gradient"),
    (lambda mu, logvar, g: mu + torch.exp(0.5 * logvar).detach() * _eps(mu, g), "gradient"),
    (lambda mu, logvar, g: mu + torch.exp(0.5 * logvar) * torch.randn_like(mu), "generator"),
    (lambda mu, logvar, g: torch.exp(0.5 * logvar) * _eps(mu, g), "mean"),        # forgot mu
    (lambda mu, logvar, g: mu + 0.5 * torch.exp(logvar) * _eps(mu, g), "variance"),
    (lambda mu, logvar, g: (mu + torch.exp(0.5 * logvar) * _eps(mu, g)).float(), "dtype"),
    (lambda mu, logvar, g: (mu + torch.exp(0.5 * logvar) * _eps(mu, g)).mean(0), "shape"),
    (lambda mu, logvar, g: mu + torch.sqrt(logvar) * _eps(mu, g), "nan"),
])
def test_reparameterize_wrong_answers_get_the_right_hint(wrong, hint):
    result = check_reparameterize(wrong)
    assert not result.passed and result.hint == hint, result.message


def test_reparameterize_stub_and_exception():
    def stub(mu, logvar, g):
        raise NotImplementedError
    assert check_reparameterize(stub).hint == "todo"
    result = check_reparameterize(lambda mu, logvar, g: mu + undefined)  # noqa: F821
    assert result.hint == "error" and "NameError" in result.message


# Exercise: score_function_grad(f_values, z, logits), with a leave-one-out baseline
def _score(b, logits):
    return b - torch.sigmoid(logits)


def _loo(f):
    return (f.sum() - f) / (len(f) - 1)


def test_score_function_grad_reference_passes():
    def ok(f_values, b, logits):
        return ((f_values - _loo(f_values))[:, None] * _score(b, logits)).mean(0)
    result = check_score_function_grad(ok)
    assert result.passed and "✓" in repr(result), result.message


def test_score_function_grad_centred_and_rescaled_passes():
    """f_s − c_s = S/(S − 1)·(f_s − mean f): the same estimate, written another way."""
    def ok(f_values, b, logits):
        s = len(f_values)
        return (s / (s - 1) * (f_values - f_values.mean())[:, None] * _score(b, logits)).mean(0)
    assert check_score_function_grad(ok).passed


def test_score_function_grad_autograd_surrogate_passes():
    def ok(f_values, b, logits):
        logits = logits.detach().requires_grad_()
        log_p = -torch.nn.functional.binary_cross_entropy_with_logits(
            logits.expand_as(b), b, reduction="none").sum(1)
        ((f_values - _loo(f_values)) * log_p).mean().backward()
        return logits.grad
    assert check_score_function_grad(ok).passed


@pytest.mark.parametrize("wrong, hint", [
    (lambda f, b, t: ((f - _loo(f))[:, None] * (torch.sigmoid(t) - b)).mean(0), "sign"),
    (lambda f, b, t: ((f - _loo(f))[:, None] * _score(b, t)).sum(0), "reduction"),
    (lambda f, b, t: (f - _loo(f))[:, None] * _score(b, t), "shape"),
    (lambda f, b, t: ((f - f.mean())[:, None] * _score(b, t)).mean(0), "baseline"),
    (lambda f, b, t: (f[:, None] * _score(b, t)).mean(0), "baseline"),
    (lambda f, b, t: ((f + _loo(f))[:, None] * _score(b, t)).mean(0), "baseline"),
    (lambda f, b, t: ((f - _loo(f))[:, None] * (torch.sigmoid(t) * torch.sigmoid(-t))).mean(0),
     "score"),
])
def test_score_function_grad_wrong_answers_get_the_right_hint(wrong, hint):
    result = check_score_function_grad(wrong)
    assert not result.passed and result.hint == hint, result.message


def test_score_function_grad_with_the_score_s_constant_term_left_out_passes():
    """The weights f_s − c_s sum to zero over the samples, so −sigmoid(ℓ) cancels: z alone
    gives the same estimate (a property of this baseline, not a mistake)."""
    assert check_score_function_grad(lambda f, b, t: ((f - _loo(f))[:, None] * b).mean(0)).passed


def test_score_function_grad_with_the_batch_mean_as_baseline_is_told_to_leave_one_out():
    result = check_score_function_grad(
        lambda f, b, t: ((f - f.mean())[:, None] * _score(b, t)).mean(0))
    assert "Leave sample s out" in result.message


def notebook(source: str) -> dict:
    """Run ``source`` as a notebook cell runs it: in a namespace named ``__main__``."""
    namespace = {"__name__": "__main__", "torch": torch}
    exec(source, namespace)
    return namespace


def test_the_library_s_reparameterize_wrapped_in_a_notebook_function_is_refused():
    source = ("from vaecore.reparam import reparameterize\n"
              "def answer(mu, logvar, generator):\n    return reparameterize(mu, logvar, generator)")
    result = check_reparameterize(notebook(source)["answer"])
    assert not result.passed and result.hint == "library", result.message


# Exercise: the variance of REINFORCE for z² (derive)
def test_score_variance_right_answer_passes():
    assert exercises.check_score_variance(notebook("def answer():\n    return 18.5625")["answer"]).passed


@pytest.mark.parametrize("value, says", [("19.5625", "second moment"), ("4.0", "pathwise")])
def test_score_variance_slips_are_named(value, says):
    result = exercises.check_score_variance(notebook(f"def answer():\n    return {value}")["answer"])
    assert not result.passed and result.hint == "derivation" and says in result.message, result.message


# Exercise: a baseline that halves the variance (experiment)
def test_a_measured_baseline_passes():
    search = """
def answer():
    eps = torch.randn(100_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    f = (1.5 + eps) ** 2
    cs = torch.linspace(0, 10, 101, dtype=torch.float64)
    return cs[torch.stack([((f - c) * eps).var() for c in cs]).argmin()].item()
"""
    result = exercises.check_shifted_square_baseline(notebook(search)["answer"])
    assert result.passed and "ratio 0.4" in result.message, result.message


@pytest.mark.parametrize("c, says", [("3.25", "E[f]"), ("0.0", "at most half"), ("9.0", "at most half")])
def test_a_baseline_that_does_not_halve_the_variance_fails(c, says):
    result = exercises.check_shifted_square_baseline(notebook(f"def answer():\n    return {c}")["answer"])
    assert not result.passed and result.hint == "baseline" and says in result.message, result.message
