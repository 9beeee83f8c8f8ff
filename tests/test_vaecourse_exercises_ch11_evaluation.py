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


# Exercise: the gap of log-normal weights (derive)
def _answer(value: float):
    return lambda: value


def test_lognormal_gap_right_answer_passes():
    assert exercises.check_lognormal_gap(_answer(math.expm1(4.0) / 200)).passed
    assert exercises.check_lognormal_gap(_answer(0.268)).passed   # worked out to three digits


@pytest.mark.parametrize("value, says", [
    (4.0 / 200, "variance of log w"),
    (2.0, "one sample"),
    (math.expm1(2.0) / 200, "not e^σ"),
    (math.exp(4.0) / 200, "subtracts"),
    (math.expm1(4.0) / 100, "the 2 of the denominator"),
])
def test_lognormal_gap_slips_are_named(value, says):
    result = exercises.check_lognormal_gap(_answer(value))
    assert not result.passed and result.hint == "derivation" and says in result.message, result.message


def test_lognormal_gap_a_guess_gets_no_misleading_hint():
    result = exercises.check_lognormal_gap(_answer(0.1))
    assert not result.passed and result.hint == "values", result.message


# Exercise: a better proposal than the encoder (experiment)
def _refined(model, x, steps=60, k=10):
    """Each image's Gaussian climbed on its own k-sample bound, from the encoder's."""
    from vaecore.importance import log_mean_exp
    from vaecore.likelihoods import log_prob_normal
    g = torch.Generator().manual_seed(0)
    mu, logvar = (v.detach().clone().requires_grad_() for v in model.encode(x))
    optimiser = torch.optim.Adam([mu, logvar], lr=0.05)
    for _ in range(steps):
        z = (mu + torch.exp(0.5 * logvar) * torch.randn(k, *mu.shape, generator=g)).flatten(0, 1)
        log_w = (model.log_likelihood(x.expand(k, *x.shape).flatten(0, 1), z) + model.prior.log_prob(z)
                 - log_prob_normal(z, mu.repeat(k, 1), logvar.repeat(k, 1))).view(k, len(x))
        optimiser.zero_grad()
        (-log_mean_exp(log_w).sum()).backward()
        optimiser.step()
    return mu.detach(), logvar.detach()


def test_better_proposal_refined_per_image_passes():
    result = exercises.check_better_proposal(_refined)
    assert result.passed, result.message


@pytest.mark.parametrize("scale", [1.0, 1.2, 1.5])
def test_better_proposal_a_widened_encoder_is_not_enough(scale):
    def widened(model, x):
        posterior = model.encode(x)
        return posterior.mu, posterior.logvar + 2 * math.log(scale)

    result = exercises.check_better_proposal(widened)
    assert not result.passed and result.hint == "proposal", result.message


@pytest.mark.parametrize("wrong, hint", [
    (lambda model, x: model.encode(x).mu, "type"),
    (lambda model, x: (torch.zeros(50, 20), torch.zeros(50)), "shape"),
    (lambda model, x: None, "type"),
    (lambda model, x: (torch.zeros(50, 20), torch.full((50, 20), float("nan"))), "nan"),
])
def test_better_proposal_malformed_answers_get_their_hint(wrong, hint):
    result = exercises.check_better_proposal(wrong)
    assert not result.passed and result.hint == hint, result.message


def test_the_new_checks_report_an_unfinished_stub():
    def todo(*args):
        raise NotImplementedError("Exercise 3")

    for check in (exercises.check_lognormal_gap, exercises.check_better_proposal):
        result = check(todo)
        assert not result.passed and result.hint == "todo" and "✗" in result.message
