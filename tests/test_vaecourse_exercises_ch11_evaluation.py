"""Chapter 11's exercise checks: the references pass, typical mistakes get the right hint."""
from __future__ import annotations

import math

import pytest
import torch

from vaecourse.exercises import ch11_evaluation as exercises
from vaecourse.exercises.ch11_evaluation import check_affine_flow_log_prob, check_effective_sample_size


def test_checks_are_re_exported():
    assert exercises.check_effective_sample_size is check_effective_sample_size
    assert exercises.check_affine_flow_log_prob is check_affine_flow_log_prob


# Exercise: effective_sample_size(log_w)
def ess_logspace(log_w):
    return torch.exp(2 * torch.logsumexp(log_w, 0) - torch.logsumexp(2 * log_w, 0))


def ess_softmax(log_w):
    w = torch.softmax(log_w, dim=0)
    return 1 / (w ** 2).sum(0)


@pytest.mark.parametrize("ok", [ess_logspace, ess_softmax])
def test_correct_ess_passes(ok):
    result = check_effective_sample_size(ok)
    assert result.passed and result.message.startswith("✓")


def ess_direct(log_w):
    w = torch.exp(log_w)
    return w.sum(0) ** 2 / (w ** 2).sum(0)


@pytest.mark.parametrize("wrong, hint", [
    (ess_direct, "overflow"),
    (lambda log_w: ess_softmax(log_w) / log_w.shape[0], "fraction"),
    (lambda log_w: 1 / (torch.softmax(log_w, 0) ** 2).mean(0), "normalisation"),
    (lambda log_w: torch.full(log_w.shape[1:], float(log_w.shape[0]), dtype=log_w.dtype),
     "values"),
    (lambda log_w: ess_softmax(log_w).mean(), "shape"),
])
def test_ess_mistakes_get_their_hint(wrong, hint):
    result = check_effective_sample_size(wrong)
    assert not result.passed and result.hint == hint, result.message


def test_ess_not_implemented_and_errors_are_reported():
    def todo(log_w):
        raise NotImplementedError
    assert check_effective_sample_size(todo).hint == "todo"
    assert check_effective_sample_size(lambda log_w: log_w.foo).hint == "error"


# Exercise: affine_flow_log_prob(z, log_scale, shift)
def affine_ok(z, log_scale, shift):
    eps = (z - shift) * torch.exp(-log_scale)
    return (-0.5 * eps ** 2 - 0.5 * math.log(2 * math.pi) - log_scale).sum(-1)


def affine_base(z, log_scale, shift):
    eps = (z - shift) * torch.exp(-log_scale)
    return (-0.5 * eps ** 2 - 0.5 * math.log(2 * math.pi)).sum(-1)


def test_correct_affine_flow_passes():
    assert check_affine_flow_log_prob(affine_ok).passed


@pytest.mark.parametrize("wrong, hint", [
    (lambda z, s, t: affine_base(z, s, t) + s.expand_as(z).sum(-1), "log-det"),
    (affine_base, "log-det"),
    (lambda z, s, t: (-0.5 * (t + torch.exp(s) * z) ** 2 - 0.5 * math.log(2 * math.pi)
                      - s).sum(-1), "inverse"),
    (lambda z, s, t: affine_ok(z, s, t) / z.shape[-1], "reduction"),
    (lambda z, s, t: affine_ok(z, s, t) + 0.5 * math.log(2 * math.pi) * z.shape[-1], "constant"),
    (lambda z, s, t: -affine_ok(z, s, t), "sign"),
])
def test_affine_flow_mistakes_get_their_hint(wrong, hint):
    result = check_affine_flow_log_prob(wrong)
    assert not result.passed and result.hint == hint, result.message
