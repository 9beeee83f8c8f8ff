"""The checks of chapter 09's exercises pass the reference and name typical mistakes."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vaecourse.exercises import ch09_vae_vs_gan as exercises
from vaecore.metrics import frechet_distance


def test_checks_are_reexported():
    assert callable(exercises.check_frechet_distance)
    assert callable(exercises.check_discriminator_loss)
    assert callable(exercises.check_generator_loss_nonsaturating)


def _eigh_root(a):
    w, v = torch.linalg.eigh(a)
    return (v * w.clamp(min=0).sqrt()) @ v.T


def _fid(mu1, s1, mu2, s2, mean_power=2, root=True, factor=2.0):
    r1 = _eigh_root(s1)
    cross = _eigh_root(r1 @ s2 @ r1).trace() if root else (s1 @ s2).trace()
    mean = (mu1 - mu2).norm() ** mean_power
    return mean + s1.trace() + s2.trace() - factor * cross


def test_frechet_distance_correct_answer_passes():
    result = exercises.check_frechet_distance(_fid)
    assert result.passed and "✓" in repr(result), result.message


def test_frechet_distance_refuses_the_library_s_function():
    assert exercises.check_frechet_distance(frechet_distance).hint == "library"


@pytest.mark.parametrize("wrong, hint, words", [
    (lambda *a: _fid(*a, mean_power=1), "mean", "squared norm"),
    (lambda *a: _fid(*a, root=False), "sqrtm", "square root is missing"),
    (lambda m1, s1, m2, s2: ((m1 - m2) ** 2).sum() + s1.trace() + s2.trace()
     - 2 * (s1 @ s2).clamp(min=0).sqrt().trace(), "sqrtm", "each entry"),
    (lambda *a: _fid(*a, factor=1.0), "values", "max abs error"),
    (lambda *a: -_fid(*a), "sign", "sign"),
])
def test_frechet_distance_wrong_answers_get_the_right_hint(wrong, hint, words):
    result = exercises.check_frechet_distance(wrong)
    assert not result.passed and result.hint == hint, result.message
    assert words in result.message


def _d_loss(r, f):
    return F.softplus(-r) + F.softplus(f)


@pytest.mark.parametrize("solution", [
    _d_loss,
    lambda r, f: (F.binary_cross_entropy_with_logits(r, torch.ones_like(r), reduction="none")
                  + F.binary_cross_entropy_with_logits(f, torch.zeros_like(f), reduction="none")),
])
def test_discriminator_loss_correct_answers_pass(solution):
    assert exercises.check_discriminator_loss(solution).passed


@pytest.mark.parametrize("wrong, hint, words", [
    (lambda r, f: -torch.log(torch.sigmoid(r)) - torch.log(1 - torch.sigmoid(f)), "nan", "logsigmoid"),
    (lambda r, f: _d_loss(f, r), "labels", "other way round"),
    (lambda r, f: -_d_loss(r, f), "sign", "sign"),
    (lambda r, f: _d_loss(r, f).mean(), "shape", "shape"),
    (lambda r, f: 0.5 * _d_loss(r, f), "factor", "half"),
])
def test_discriminator_loss_wrong_answers_get_the_right_hint(wrong, hint, words):
    result = exercises.check_discriminator_loss(wrong)
    assert not result.passed and result.hint == hint, result.message
    assert words in result.message


def test_generator_loss_nonsaturating_correct_answer_passes():
    assert exercises.check_generator_loss_nonsaturating(lambda f: F.softplus(-f)).passed
    assert exercises.check_generator_loss_nonsaturating(lambda f: -F.logsigmoid(f)).passed


@pytest.mark.parametrize("wrong, hint, words", [
    (lambda f: -F.softplus(f), "minimax", "minimax"),
    (lambda f: -torch.log(torch.sigmoid(f)), "nan", "logsigmoid"),
    (lambda f: F.softplus(f), "values", "max abs error"),
    (lambda f: F.softplus(-f).sum(), "shape", "shape"),
])
def test_generator_loss_nonsaturating_wrong_answers_get_the_right_hint(wrong, hint, words):
    result = exercises.check_generator_loss_nonsaturating(wrong)
    assert not result.passed and result.hint == hint, result.message
    assert words in result.message


# Exercise: the mean term of FID between two samples of one distribution (derive)
def test_the_feature_trace_is_that_of_the_test_images():
    from vaecourse.chapters import ch09_vae_vs_gan as vg
    judge, _ = vg._judge()
    features = vg.features(judge, vg.splits32()[2].x)
    assert abs(torch.cov(features.T).trace().item() - exercises.FEATURE_TRACE) < 1e-3


def test_fid_mean_term_right_answer_passes():
    assert exercises.check_fid_mean_term(lambda: 2 * 486.69 / 1000).passed
    assert exercises.check_fid_mean_term(lambda: 0.97).passed   # worked out to two digits


@pytest.mark.parametrize("value, says", [
    (486.69 / 1000, "twice the variance"),
    (2 * 486.69 / 1000 * 0.9, "negatively correlated"),
])
def test_fid_mean_term_slips_are_named(value, says):
    result = exercises.check_fid_mean_term(lambda: value)
    assert not result.passed and result.hint == "derivation" and says in result.message, result.message


@pytest.mark.parametrize("value", [2.242, 84 / 1000])   # the whole FID; one per feature
def test_fid_mean_term_other_answers_get_no_misleading_hint(value):
    result = exercises.check_fid_mean_term(lambda: value)
    assert not result.passed and result.hint == "values", result.message


# Exercise: better samples from the same VAE (experiment)
def _aggregate_gaussian(vae, train_x, generator):
    """A full-covariance Gaussian fitted to one posterior draw per training image."""
    with torch.no_grad():
        mu, logvar = vae.encode(train_x)
    codes = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=generator)
    root = torch.linalg.cholesky(torch.cov(codes.T))
    return codes.mean(0) + torch.randn(2000, codes.shape[1], generator=generator) @ root.T


def test_better_sampler_a_gaussian_fitted_to_the_codes_passes():
    result = exercises.check_better_sampler(_aggregate_gaussian)
    assert result.passed, result.message


@pytest.mark.parametrize("wrong, hint", [
    (lambda vae, x, g: 0.8 * torch.randn(2000, 100, generator=g), "fid"),       # a lower temperature
    (lambda vae, x, g: torch.randn(2000, 100, generator=g), "fid"),             # the prior itself
    (lambda vae, x, g: vae.encode(x[:2000]).mu.detach(), "copies"),             # reconstructions
    (lambda vae, x, g: torch.randn(2000, 20, generator=g), "shape"),
    (lambda vae, x, g: "codes", "type"),
])
def test_better_sampler_wrong_answers_get_their_hint(wrong, hint):
    result = exercises.check_better_sampler(wrong)
    assert not result.passed and result.hint == hint, result.message


def test_the_new_checks_report_an_unfinished_stub():
    def todo(*args):
        raise NotImplementedError("Exercise 4")

    for check in (exercises.check_fid_mean_term, exercises.check_better_sampler):
        result = check(todo)
        assert not result.passed and result.hint == "todo" and "✗" in result.message
