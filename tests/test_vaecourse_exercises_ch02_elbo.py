"""The chapter 02 exercise checks pass the reference solutions and catch typical mistakes."""
from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal

from vaecourse.exercises import ch02_elbo as exercises


def iwae_reference(log_w):
    return torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])


def iwae_max_shift(log_w):
    m = log_w.max(dim=0).values
    return m + torch.log(torch.exp(log_w - m).mean(0))


def log_normal_reference(x, mean, logvar):
    return Normal(mean, torch.exp(0.5 * logvar)).log_prob(x).flatten(1).sum(1)


def log_sum_exp(log_w):
    return torch.logsumexp(log_w, 0)


def iwae_through_a_helper(log_w):
    return log_sum_exp(log_w) - math.log(log_w.shape[0])


# Exercise: the importance-weighted bound from log-weights
def test_iwae_from_log_weights_reference_passes():
    result = exercises.check_iwae_from_log_weights(iwae_max_shift)
    assert result.passed and "✓" in repr(result), result.message


@pytest.mark.parametrize("borrowed", [iwae_reference, iwae_through_a_helper])
def test_iwae_from_log_weights_refuses_a_right_answer_from_torch_logsumexp(borrowed):
    """The exercise is the shift of (logsumexp): a correct value from torch.logsumexp fails."""
    result = exercises.check_iwae_from_log_weights(borrowed)
    assert not result.passed and result.hint == "logsumexp", result.message
    assert "logsumexp" in result.message and "largest log-weight" in result.message


@pytest.mark.parametrize("wrong, hint", [
    (lambda log_w: log_w.mean(0), "jensen"),                                  # the ELBO
    (lambda log_w: torch.logsumexp(log_w, 0), "constant"),                     # forgot -log k
    (lambda log_w: torch.log(torch.exp(log_w).mean(0)), "nan"),               # no max shift
    (lambda log_w: torch.logsumexp(log_w, 1) - math.log(log_w.shape[1]), "shape"),
    (lambda log_w: -(torch.logsumexp(log_w, 0) - math.log(log_w.shape[0])), "sign"),
    (lambda log_w: torch.logsumexp(log_w, 0).mean(), "shape"),
])
def test_iwae_from_log_weights_wrong_answers_get_the_right_hint(wrong, hint):
    result = exercises.check_iwae_from_log_weights(wrong)
    assert not result.passed and result.hint == hint, result.message


def test_iwae_forgetting_log_k_names_log_k():
    result = exercises.check_iwae_from_log_weights(lambda log_w: torch.logsumexp(log_w, 0))
    assert "log k" in result.message


def test_iwae_stub_is_todo():
    def stub(log_w):
        raise NotImplementedError
    assert exercises.check_iwae_from_log_weights(stub).hint == "todo"


# Exercise: the diagonal Gaussian log-density
def test_log_normal_reference_passes():
    result = exercises.check_log_normal(log_normal_reference)
    assert result.passed and "✓" in repr(result), result.message


def _quad(x, mean, logvar):
    return ((x - mean) ** 2 * torch.exp(-logvar))


@pytest.mark.parametrize("wrong, hint", [
    # missing the 1/2 log 2 pi per dimension
    (lambda x, m, lv: (-0.5 * (lv + _quad(x, m, lv))).flatten(1).sum(1), "constant"),
    (lambda x, m, lv: (0.5 * (math.log(2 * math.pi) + lv + _quad(x, m, lv))).flatten(1).sum(1),
     "sign"),
    (lambda x, m, lv: (-0.5 * (math.log(2 * math.pi) + lv + _quad(x, m, lv))).flatten(1).mean(1),
     "reduction"),
    (lambda x, m, lv: (-(math.log(2 * math.pi) + lv + _quad(x, m, lv))).flatten(1).sum(1),
     "factor"),
    # the standard deviation where the variance is due
    (lambda x, m, lv: (-0.5 * (math.log(2 * math.pi) + lv + (x - m) ** 2 * torch.exp(-0.5 * lv))
                       ).flatten(1).sum(1), "values"),
    (lambda x, m, lv: (-0.5 * (math.log(2 * math.pi) + lv + _quad(x, m, lv))).sum(), "shape"),
])
def test_log_normal_wrong_answers_get_the_right_hint(wrong, hint):
    result = exercises.check_log_normal(wrong)
    assert not result.passed and result.hint == hint, result.message


def notebook(source: str) -> dict:
    """Run ``source`` as a notebook cell runs it: in a namespace named ``__main__``."""
    namespace = {"__name__": "__main__", "math": math, "torch": torch}
    exec(source, namespace)
    return namespace


@pytest.mark.parametrize("check, source", [
    ("check_iwae_from_log_weights", "from vaecore.importance import log_mean_exp\n"
                                    "def answer(log_w):\n    return log_mean_exp(log_w)"),
    ("check_log_normal", "from vaecore.likelihoods import log_prob_normal\n"
                         "def answer(x, m, lv):\n    return log_prob_normal(x, m, lv)"),
])
def test_the_library_s_function_wrapped_in_a_notebook_function_is_refused(check, source):
    result = getattr(exercises, check)(notebook(source)["answer"])
    assert not result.passed and result.hint == "library", result.message


# Exercise: the gap of the wider encoder (derive)
def test_wider_q_gap_right_answer_passes():
    answer = notebook("def answer():\n    return 1.5 * (0.25 + math.e - 2)")["answer"]
    assert exercises.check_wider_q_gap(answer).passed


@pytest.mark.parametrize("value, says", [
    ("0.5 * (0.25 + math.e - 2)", "d = 3"), ("1.5 * (math.e - 2)", "mean term"),
    ("1.5 * 0.25", "variance term"), ("1.5 * (0.25 + math.exp(-1))", "narrower"),
    ("1.5 * (0.5 + math.e - 2)", "squared"),
])
def test_wider_q_gap_slips_are_named(value, says):
    result = exercises.check_wider_q_gap(notebook(f"def answer():\n    return {value}")["answer"])
    assert not result.passed and result.hint == "derivation" and says in result.message, result.message


# Exercise: the best diagonal q from noisy gradients (experiment)
SVI = """
def answer(x, W, b, s2):
    mu = torch.zeros(x.shape[0], W.shape[1], dtype=x.dtype, requires_grad=True)
    logvar = torch.zeros_like(mu, requires_grad=True)
    optimizer = torch.optim.Adam([mu, logvar], lr=0.05)
    decay = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / 1000)
    g = torch.Generator().manual_seed(0)
    for step in range(1000):
        z = mu + torch.exp(0.5 * logvar) * torch.randn(32, *mu.shape, generator=g, dtype=x.dtype)
        log_lik = -0.5 * ((x - z @ W.T - b) ** 2 / s2 + math.log(2 * math.pi * s2)).sum(-1)
        kl = 0.5 * (torch.exp(logvar) + mu ** 2 - 1 - logvar).sum(-1)
        loss = -(log_lik.mean(0) - kl).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        decay.step()
    return mu.detach(), logvar.detach()
"""

EXACT = """
def answer(x, W, b, s2):
    cov = torch.linalg.inv(torch.eye(W.shape[1], dtype=x.dtype) + W.T @ W / s2)
    mu = (x - b) @ W @ cov / s2
    return mu, {logvar}
"""


def test_mean_field_fit_by_stochastic_gradients_passes():
    result = exercises.check_mean_field_fit(notebook(SVI)["answer"])
    assert result.passed, result.message


def test_mean_field_fit_with_the_conditional_variances_passes():
    """The exact answer, 1/Λ_jj, is a correct answer too: the check measures the gap."""
    logvar = "(-torch.log(torch.diagonal(torch.linalg.inv(cov)))).expand_as(mu)"
    assert exercises.check_mean_field_fit(notebook(EXACT.format(logvar=logvar))["answer"]).passed


@pytest.mark.parametrize("logvar, says", [
    ("torch.log(torch.diagonal(cov)).expand_as(mu)", "marginal variances"),
    ("torch.zeros_like(mu)", "do the gradients reach logvar"),
    ("torch.full_like(mu, -1.0)", "more steps"),
])
def test_mean_field_fit_wrong_variances_get_their_hint(logvar, says):
    result = exercises.check_mean_field_fit(notebook(EXACT.format(logvar=logvar))["answer"])
    assert not result.passed and says in result.message, result.message


def test_mean_field_fit_wrong_shapes_are_named():
    result = exercises.check_mean_field_fit(notebook("def answer(x, W, b, s2):\n    return x")["answer"])
    assert not result.passed and result.hint == "shape"
