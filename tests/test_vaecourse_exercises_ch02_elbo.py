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


# Exercise: the importance-weighted bound from log-weights
@pytest.mark.parametrize("solution", [iwae_reference, iwae_max_shift])
def test_iwae_from_log_weights_reference_passes(solution):
    result = exercises.check_iwae_from_log_weights(solution)
    assert result.passed and "✓" in repr(result), result.message


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
