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
