"""The checks of chapter 03's exercises pass the reference and name typical mistakes."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Independent, Normal, kl_divergence

from vaecourse.exercises import ch03_kl_closed_forms as exercises


def _normal_terms(mu_q, logvar_q, mu_p, logvar_p, mean_sign=1.0):
    """Per-dimension terms of Equation (kl-normal-normal), written from variances."""
    var_q, var_p = logvar_q.exp(), logvar_p.exp()
    return 0.5 * (logvar_p - logvar_q + (var_q + mean_sign * (mu_q - mu_p) ** 2) / var_p - 1)


def _bernoulli_terms(q_logits, p_logits):
    """Per-dimension terms of Equation (kl-bernoulli), stably from logits."""
    rho_q = torch.sigmoid(q_logits)
    return (rho_q * (F.logsigmoid(q_logits) - F.logsigmoid(p_logits))
            + (1 - rho_q) * (F.logsigmoid(-q_logits) - F.logsigmoid(-p_logits)))


def _naive_bernoulli(q_logits, p_logits):
    """From probabilities: log(1 − ρ) is log 0 once sigmoid rounds to 1."""
    rho_q, rho_p = torch.sigmoid(q_logits), torch.sigmoid(p_logits)
    return (rho_q * torch.log(rho_q / rho_p)
            + (1 - rho_q) * torch.log((1 - rho_q) / (1 - rho_p))).sum(1)


def test_checks_are_reexported():
    assert callable(exercises.check_kl_normal_normal)
    assert callable(exercises.check_kl_bernoulli)


# Exercise: the general diagonal Gaussian KL
@pytest.mark.parametrize("solution", [
    lambda mq, lq, mp, lp: _normal_terms(mq, lq, mp, lp).sum(1),
    lambda mq, lq, mp, lp: kl_divergence(Independent(Normal(mq, (0.5 * lq).exp()), 1),
                                         Independent(Normal(mp, (0.5 * lp).exp()), 1)),
])
def test_kl_normal_normal_correct_answers_pass(solution):
    result = exercises.check_kl_normal_normal(solution)
    assert result.passed and "✓" in repr(result), result.message


@pytest.mark.parametrize("wrong, hint, words", [
    (lambda mq, lq, mp, lp: _normal_terms(mq, lq, mp, lp, mean_sign=-1.0).sum(1),
     "values", "mean term has the wrong sign"),                       # report 003's slip
    (lambda mq, lq, mp, lp: 2 * _normal_terms(mq, lq, mp, lp).sum(1), "factor", "½"),
    (lambda mq, lq, mp, lp: _normal_terms(mq, lq, mp, lp).mean(1), "reduction", "mean"),
    (lambda mq, lq, mp, lp: -_normal_terms(mq, lq, mp, lp).sum(1), "sign", "sign"),
    (lambda mq, lq, mp, lp: _normal_terms(mp, lp, mq, lq).sum(1), "values", "KL(p || q)"),
    (lambda mq, lq, mp, lp: _normal_terms(mq, lq, mp, lp).sum(), "shape", "shape"),
    (lambda mq, lq, mp, lp: _normal_terms(mq, lq, mp, lp), "shape", "Sum over"),
])
def test_kl_normal_normal_wrong_answers_get_the_right_hint(wrong, hint, words):
    result = exercises.check_kl_normal_normal(wrong)
    assert not result.passed and result.hint == hint, result.message
    assert words in result.message


def test_kl_normal_normal_other_value_errors_keep_the_generic_hint():
    def off(mq, lq, mp, lp):  # drops the log-variance ratio: no named slip
        return (0.5 * ((lq.exp() + (mq - mp) ** 2) / lp.exp() - 1)).sum(1)
    result = exercises.check_kl_normal_normal(off)
    assert not result.passed and result.hint == "values"
    assert "max abs error" in result.message


# Exercise: the Bernoulli KL from logits
@pytest.mark.parametrize("solution", [
    lambda q, p: _bernoulli_terms(q, p).sum(1),
    lambda q, p: kl_divergence(Independent(Bernoulli(logits=q), 1), Independent(Bernoulli(logits=p), 1)),
])
def test_kl_bernoulli_correct_answers_pass(solution):
    result = exercises.check_kl_bernoulli(solution)
    assert result.passed, result.message


@pytest.mark.parametrize("wrong, hint, words", [
    (lambda q, p: -_bernoulli_terms(q, p).sum(1), "sign", "sign"),
    (lambda q, p: _bernoulli_terms(q, p).mean(1), "reduction", "mean"),
    (_naive_bernoulli, "nan", "logsigmoid"),
    (lambda q, p: _bernoulli_terms(p, q).sum(1), "values", "KL(p || q)"),
    (lambda q, p: _bernoulli_terms(q, p).sum(), "shape", "shape"),
])
def test_kl_bernoulli_wrong_answers_get_the_right_hint(wrong, hint, words):
    result = exercises.check_kl_bernoulli(wrong)
    assert not result.passed and result.hint == hint, result.message
    assert words in result.message


def test_kl_bernoulli_naive_form_fails_only_at_the_extreme_case():
    result = exercises.check_kl_bernoulli(_naive_bernoulli)
    assert "(case 3 of 3)" in result.message


def test_the_checks_include_the_known_constants():
    one = torch.ones(1, 1, dtype=torch.float64)
    # A function right only at the two known constants must still fail on random inputs.
    def constants_only(mq, lq, mp, lp):
        return 0.5 * (lq.exp() + mq ** 2 - 1 - lq).sum(1)  # ignores the prior's parameters
    assert not exercises.check_kl_normal_normal(constants_only).passed
    assert abs(constants_only(2 * one, 0 * one, 0 * one, 0 * one).item() - 2.0) < 1e-12
    assert abs(constants_only(0 * one, 2 * one, 0 * one, 0 * one).item()
               - (math.e ** 2 - 3) / 2) < 1e-12


def notebook(source: str) -> dict:
    """Run ``source`` as a notebook cell runs it: in a namespace named ``__main__``."""
    namespace = {"__name__": "__main__", "math": math, "torch": torch}
    exec(source, namespace)
    return namespace


@pytest.mark.parametrize("check, source", [
    ("check_kl_normal_normal", "from vaecore.kl import kl_normal_normal\n"
                               "def answer(a, b, c, d):\n    return kl_normal_normal(a, b, c, d)"),
    ("check_kl_bernoulli", "from vaecore import kl\n"
                           "def answer(q, p):\n    return kl.kl_bernoulli(q, p)"),
])
def test_the_library_s_function_wrapped_in_a_notebook_function_is_refused(check, source):
    result = getattr(exercises, check)(notebook(source)["answer"])
    assert not result.passed and result.hint == "library", result.message


# Exercise: a biased coin against the fair one (derive)
def test_kl_biased_coin_right_answer_passes():
    answer = notebook("def answer():\n    return 0.9 * math.log(1.8) + 0.1 * math.log(0.2)")["answer"]
    assert exercises.check_kl_biased_coin(answer).passed


@pytest.mark.parametrize("value, says", [
    ("(0.9 * math.log(1.8) + 0.1 * math.log(0.2)) / math.log(2)", "bits"),
    ("-0.9 * math.log(0.9) - 0.1 * math.log(0.1)", "entropy H(0.9)"),
    ("math.log(2)", "cross-entropy"),
    ("0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)", "KL(B(½) || B(0.9))"),
])
def test_kl_biased_coin_slips_are_named(value, says):
    result = exercises.check_kl_biased_coin(notebook(f"def answer():\n    return {value}")["answer"])
    assert not result.passed and result.hint == "derivation" and says in result.message, result.message


# Exercise: descend in log σ² (experiment)
FIT = """
from vaecore.kl import kl_normal_normal as kl_gauss
def answer(mu_p, logvar_p):
    mu = torch.zeros_like(mu_p, requires_grad=True)
    logvar = torch.full_like(logvar_p, 2 * math.log(0.01), requires_grad=True)
    optimizer = torch.optim.Adam([mu, logvar], lr=0.1)
    for step in range({steps}):
        optimizer.zero_grad()
        kl_gauss(mu, logvar, mu_p, logvar_p).sum().backward()
        optimizer.step()
    return mu.detach(), logvar.detach()
"""


def test_fit_q_in_log_variance_passes():
    result = exercises.check_fit_q(notebook(FIT.format(steps=300))["answer"])
    assert result.passed, result.message


def test_fit_q_stopped_early_is_undertrained():
    result = exercises.check_fit_q(notebook(FIT.format(steps=10))["answer"])
    assert not result.passed and result.hint == "undertrained", result.message


def test_fit_q_in_sigma_that_leaves_the_valid_range_is_named():
    sigma = """
def answer(mu_p, logvar_p):
    mu = torch.zeros_like(mu_p)
    sigma = torch.full_like(mu_p, 0.01) - 0.1        # one step too far: σ < 0
    return mu, 2 * torch.log(sigma)
"""
    result = exercises.check_fit_q(notebook(sigma)["answer"])
    assert not result.passed and result.hint == "nan" and "log σ²" in result.message, result.message
