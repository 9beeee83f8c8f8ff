"""The checks of chapter 06's exercises pass the reference and name typical mistakes."""
from __future__ import annotations

import math

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


def notebook(source: str) -> dict:
    """Run ``source`` as a notebook cell runs it: in a namespace named ``__main__``."""
    namespace = {"__name__": "__main__", "math": math, "torch": torch}
    exec(source, namespace)
    return namespace


@pytest.mark.parametrize("check, source", [
    ("check_slerp", "from vaecore.latent import slerp as lib\n"
                    "def answer(z0, z1, t):\n    return lib(z0, z1, t)"),
    ("check_posterior_mean_variance", "from vaecore import latent\n"
                                      "def answer(mu):\n    return latent.posterior_mean_variance(mu)"),
    ("check_kl_per_dimension", "from vaecore.latent import kl_per_dimension\n"
                               "def answer(mu, logvar):\n    return kl_per_dimension(mu, logvar)"),
])
def test_the_library_s_function_wrapped_in_a_notebook_function_is_refused(check, source):
    result = getattr(exercises, check)(notebook(source)["answer"])
    assert not result.passed and result.hint == "library", result.message


# Exercise: how far slerp swings out (derive)
def test_slerp_midpoint_norm_closed_form_passes():
    source = ("def answer(r0, r1, omega):\n"
              "    return math.sqrt(r0 ** 2 + r1 ** 2 + 2 * r0 * r1 * math.cos(omega)) / (2 * math.cos(omega / 2))")
    result = exercises.check_slerp_midpoint_norm(notebook(source)["answer"])
    assert result.passed, result.message


def test_slerp_midpoint_norm_of_the_chapter_s_codes_is_far_outside():
    assert exercises._slerp_midpoint(0.44, 1.12, math.radians(173)) > 5


@pytest.mark.parametrize("body, says", [
    ("math.sqrt(r0 ** 2 + r1 ** 2 + 2 * r0 * r1 * math.cos(omega)) / 2", "straight line"),
    ("(r0 + r1) / 2", "equal norm"),
    ("math.sqrt(r0 ** 2 + r1 ** 2 + 2 * r0 * r1 * math.cos(omega)) / (4 * math.cos(omega / 2))", "sum"),
])
def test_slerp_midpoint_norm_slips_are_named(body, says):
    result = exercises.check_slerp_midpoint_norm(notebook(f"def answer(r0, r1, omega):\n    return {body}")["answer"])
    assert not result.passed and result.hint == "derivation" and says in result.message, result.message


def test_slerp_midpoint_norm_measured_with_the_library_s_slerp_is_refused():
    source = ("from vaecore.latent import slerp\n"
              "def answer(r0, r1, omega):\n"
              "    z0 = torch.tensor([[r0, 0.0]], dtype=torch.float64)\n"
              "    z1 = torch.tensor([[r1 * math.cos(omega), r1 * math.sin(omega)]], dtype=torch.float64)\n"
              "    return slerp(z0, z1, 0.5).norm().item()")
    result = exercises.check_slerp_midpoint_norm(notebook(source)["answer"])
    assert not result.passed and result.hint == "library", result.message


# Exercise: a projection that keeps the classes apart (experiment)
FISHER = """
def answer(mu, labels):
    mu = mu.double()
    within = torch.zeros(mu.shape[1], mu.shape[1], dtype=torch.float64)
    between = torch.zeros_like(within)
    for c in labels.unique():
        members = mu[labels == c]
        within += (members - members.mean(0)).T @ (members - members.mean(0))
        shift = (members.mean(0) - mu.mean(0))[:, None]
        between += len(members) * shift @ shift.T
    L_inv = torch.linalg.inv(torch.linalg.cholesky(within))
    return L_inv.T @ torch.linalg.eigh(L_inv @ between @ L_inv.T).eigenvectors[:, -2:]
"""
PCA = """
def answer(mu, labels):
    centred = mu.double() - mu.double().mean(0)
    return torch.linalg.eigh(centred.T @ centred).eigenvectors[:, -2:]
"""


def test_separating_projection_fisher_directions_pass():
    result = exercises.check_separating_projection(notebook(FISHER)["answer"])
    assert result.passed and "45" in result.message, result.message


def test_separating_projection_pca_is_told_to_use_the_labels():
    result = exercises.check_separating_projection(notebook(PCA)["answer"])
    assert not result.passed and result.hint == "separation" and "labels" in result.message, result.message


@pytest.mark.parametrize("body, hint", [("torch.ones(2, 20)", "shape"), ("torch.ones(20, 2)", "rank")])
def test_separating_projection_malformed_matrices_are_named(body, hint):
    result = exercises.check_separating_projection(notebook(f"def answer(mu, labels):\n    return {body}")["answer"])
    assert not result.passed and result.hint == hint, result.message


def test_every_check_reports_an_unfinished_stub():
    for check in (exercises.check_slerp, exercises.check_posterior_mean_variance,
                  exercises.check_kl_per_dimension, exercises.check_slerp_midpoint_norm,
                  exercises.check_separating_projection):
        result = check(notebook("def answer(*args):\n    raise NotImplementedError('x')")["answer"])
        assert not result.passed and result.hint == "todo" and "✗" in result.message
