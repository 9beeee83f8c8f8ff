"""The checks of chapter 06's exercises pass the reference and name typical mistakes."""
from __future__ import annotations

import pytest
import torch

from vaecourse.exercises import ch06_latent_space as exercises


def _slerp(z0, z1, t):
    """A reference written independently: angle from the normalised vectors, linear fallback."""
    u0 = z0 / z0.norm(dim=1, keepdim=True)
    u1 = z1 / z1.norm(dim=1, keepdim=True)
    omega = torch.acos((u0 * u1).sum(1).clamp(-1, 1))[:, None]
    s = torch.sin(omega)
    linear = (1 - t) * z0 + t * z1
    curved = (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / s.clamp_min(1e-300)
    return torch.where(s < 1e-7, linear, curved)


def _slerp_no_fallback(z0, z1, t):
    omega = torch.acos((z0 * z1).sum(1, keepdim=True) / (z0.norm(dim=1, keepdim=True)
                                                         * z1.norm(dim=1, keepdim=True)))
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


def _slerp_angle_unnormalised(z0, z1, t):
    omega = torch.acos(torch.tanh((z0 * z1).sum(1, keepdim=True)))  # forgot to divide by the norms
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


def test_checks_are_reexported():
    assert callable(exercises.check_slerp)
    assert callable(exercises.check_posterior_mean_variance)
    assert callable(exercises.check_kl_per_dimension)


# Exercise: spherical interpolation
def test_slerp_reference_passes():
    assert exercises.check_slerp(_slerp).passed


@pytest.mark.parametrize("wrong, hint", [
    (lambda z0, z1, t: (1 - t) * z0 + t * z1, "values"),            # linear, not spherical
    (lambda z0, z1, t: _slerp(z0, z1, 1 - t), "values"),            # t runs backwards
    (_slerp_no_fallback, "nan"),                                     # 0/0 for parallel codes
    (_slerp_angle_unnormalised, "values"),
    (lambda z0, z1, t: _slerp(z0, z1, t).sum(1), "shape"),
])
def test_slerp_wrong_answers_get_the_right_hint(wrong, hint):
    result = exercises.check_slerp(wrong)
    assert not result.passed and result.hint == hint, result.message


# Exercise: the activity of each latent dimension
def test_posterior_mean_variance_reference_passes():
    assert exercises.check_posterior_mean_variance(lambda mu: ((mu - mu.mean(0)) ** 2).mean(0)).passed


@pytest.mark.parametrize("wrong, hint, says", [
    (lambda mu: mu.var(0), "factor", "N − 1"),                       # unbiased: divisor N − 1
    (lambda mu: mu.var(1, unbiased=False), "shape", "expected shape"),  # over dimensions
    (lambda mu: (mu ** 2).mean(0), "values", "differ"),              # not centred
    (lambda mu: mu.std(0, unbiased=False), "values", "differ"),       # std, not variance
])
def test_posterior_mean_variance_wrong_answers_get_the_right_hint(wrong, hint, says):
    result = exercises.check_posterior_mean_variance(wrong)
    assert not result.passed and result.hint == hint and says in result.message, result.message


# Exercise: the KL of each latent dimension
def _kl_terms(mu, logvar):
    var = logvar.exp()
    return 0.5 * (var + mu ** 2 - 1 - torch.log(var))


def test_kl_per_dimension_reference_passes():
    assert exercises.check_kl_per_dimension(_kl_terms).passed


@pytest.mark.parametrize("wrong, hint", [
    (lambda mu, lv: 2 * _kl_terms(mu, lv), "factor"),                      # the ½ forgotten
    (lambda mu, lv: _kl_terms(mu, lv).sum(1), "shape"),                    # summed over j
    (lambda mu, lv: 0.5 * (lv.exp() + mu ** 2 - 1 + lv), "values"),        # wrong sign of log σ²
    (lambda mu, lv: 0.5 * (lv.exp() + mu ** 2 - lv), "constant"),          # the −1 forgotten
])
def test_kl_per_dimension_wrong_answers_get_the_right_hint(wrong, hint):
    result = exercises.check_kl_per_dimension(wrong)
    assert not result.passed and result.hint == hint, result.message
