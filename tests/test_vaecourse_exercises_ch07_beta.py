"""Chapter 07's exercise checks: the references pass, typical mistakes get the right hint."""
from __future__ import annotations

import math

import pytest
import torch

from vaecourse.exercises import ch07_beta as exercises
from vaecore.elbo import negative_elbo
from vaecourse.exercises.ch07_beta import check_beta_negative_elbo, check_linear_warmup
from vaecourse.chapters.ch07_beta import linear_warmup
from vaecourse.chapters.ch05_first_vae import mlp_vae


def test_checks_are_re_exported():
    assert exercises.check_beta_negative_elbo is check_beta_negative_elbo
    assert exercises.check_linear_warmup is check_linear_warmup


# Exercise: beta_negative_elbo(log_px, kl, beta)
def _reference(log_px, kl, beta):
    return -(log_px.flatten(1).sum(1) - beta * kl.sum(1)).mean()


def test_the_reference_is_the_library_negative_elbo():
    """The check's formula is `negative_elbo(..., beta).loss` computed from its terms."""
    model = mlp_vae(latent_dim=3, hidden=(8,)).double()
    x = torch.bernoulli(torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(0),
                                   dtype=torch.float64))
    for beta in (0.1, 1.0, 10.0):
        terms = negative_elbo(model, x, beta=beta, generator=torch.Generator().manual_seed(1))
        out = model(x, generator=torch.Generator().manual_seed(1))
        log_px = -torch.nn.functional.binary_cross_entropy_with_logits(
            out.x_params, x, reduction="none")
        kl = 0.5 * (out.mu ** 2 + out.logvar.exp() - 1 - out.logvar)
        torch.testing.assert_close(_reference(log_px, kl, beta), terms.loss)


@pytest.mark.parametrize("ok", [
    _reference,
    lambda lp, kl, b: (-lp.sum(dim=(1, 2, 3)) + b * kl.sum(-1)).mean(),
    lambda lp, kl, b: -(lp.flatten(1).sum(1).mean() - b * kl.sum(1).mean()),
])
def test_beta_negative_elbo_references_pass(ok):
    result = check_beta_negative_elbo(ok)
    assert result.passed and "✓" in repr(result), result.message


@pytest.mark.parametrize("wrong, hint", [
    (lambda lp, kl, b: -(lp.flatten(1).mean(1) - b * kl.sum(1)).mean(), "reduction"),
    (lambda lp, kl, b: -(lp.flatten(1).sum(1) - b * kl.mean(1)).mean(), "reduction"),
    (lambda lp, kl, b: -(lp.flatten(1).sum(1) - b * kl.sum(1)).sum(), "reduction"),
    (lambda lp, kl, b: -(b * lp.flatten(1).sum(1) - kl.sum(1)).mean(), "beta"),
    (lambda lp, kl, b: -(lp.flatten(1).sum(1) - kl.sum(1)).mean(), "beta"),
    (lambda lp, kl, b: (lp.flatten(1).sum(1) - b * kl.sum(1)).mean(), "sign"),
    (lambda lp, kl, b: -(lp.flatten(1).sum(1) - b * kl.sum(1)), "shape"),
    (lambda lp, kl, b: -(lp.sum(1).sum(1).sum(1) - b * kl.sum()).mean(), "reduction"),
    (lambda lp, kl, b: -lp.flatten(1).sum(1).mean(), "kl"),
    # a scalar: any two differ by a factor, so none is named
    (lambda lp, kl, b: -2 * (lp.flatten(1).sum(1) - b * kl.sum(1)).mean(), "values"),
])
def test_beta_negative_elbo_wrong_answers_get_the_right_hint(wrong, hint):
    result = check_beta_negative_elbo(wrong)
    assert not result.passed and result.hint == hint, result.message


# Exercise: linear_warmup(epochs_done, warmup_epochs)
def test_linear_warmup_refuses_the_library_s_function():
    assert check_linear_warmup(linear_warmup).hint == "library"


@pytest.mark.parametrize("ok", [
    lambda e, n: min(1.0, e / n),
    lambda e, n: torch.tensor(e / n).clamp(max=1.0),
])
def test_linear_warmup_references_pass(ok):
    result = check_linear_warmup(ok)
    assert result.passed, result.message


@pytest.mark.parametrize("wrong, hint", [
    (lambda e, n: e / n, "clip"),
    (lambda e, n: min(1.0, (e + 1) / n), "off-by-one"),
    (lambda e, n: min(1.0, e / max(n - 1, 1)), "off-by-one"),
    (lambda e, n: min(1, e // n), "integer"),
    (lambda e, n: min(1.0, 2 * e / n), "values"),
])
def test_linear_warmup_wrong_answers_get_the_right_hint(wrong, hint):
    result = check_linear_warmup(wrong)
    assert not result.passed and result.hint == hint, result.message


def test_stubs_and_exceptions_are_reported():
    def stub(*args):
        raise NotImplementedError
    for check in (check_beta_negative_elbo, check_linear_warmup):
        assert check(stub).hint == "todo"
    assert check_linear_warmup(lambda e, n: e / undefined).hint == "error"  # noqa: F821


def notebook(source: str) -> dict:
    """Run ``source`` as a notebook cell runs it: in a namespace named ``__main__``."""
    namespace = {"__name__": "__main__", "math": math, "torch": torch}
    exec(source, namespace)
    return namespace


def test_the_library_s_warm_up_wrapped_in_a_notebook_function_is_refused():
    source = ("from vaecourse.chapters import ch07_beta\n"
              "def answer(e, n):\n    return ch07_beta.linear_warmup(e, n)")
    result = check_linear_warmup(notebook(source)["answer"])
    assert not result.passed and result.hint == "library", result.message


# Exercise: the noise that costs one nat (derive)
def test_the_black_pixel_counts_are_those_of_the_test_set():
    from vaecore import data
    black = (data.mnist("test").x == 0).flatten(1).sum(1).double()
    assert abs(black.mean().item() - exercises.BLACK_PER_IMAGE) < 1e-3


def test_one_nat_noise_right_answer_passes():
    source = "def answer():\n    return math.sqrt(2 * math.pi) * (1 - math.exp(-1 / 632.88))"
    result = exercises.check_one_nat_noise(notebook(source)["answer"])
    assert result.passed, result.message


@pytest.mark.parametrize("value", ["1 / 255", "math.sqrt(2 * math.pi) * (1 - math.exp(-1 / 641.609))"])
def test_one_nat_noise_guesses_and_a_partial_count_get_no_misleading_hint(value):
    result = exercises.check_one_nat_noise(notebook(f"def answer():\n    return {value}")["answer"])
    assert not result.passed and result.hint == "values", result.message


@pytest.mark.parametrize("value, says", [
    ("math.sqrt(2 * math.pi) * (1 - math.exp(-1 / 784))", "every pixel"),
    ("1 - math.exp(-1 / 632.88)", "φ(0)"),
    ("math.sqrt(2 * math.pi) * (1 - math.exp(-math.log(2) / 632.88))", "one bit"),
])
def test_one_nat_noise_slips_are_named(value, says):
    result = exercises.check_one_nat_noise(notebook(f"def answer():\n    return {value}")["answer"])
    assert not result.passed and result.hint == "derivation" and says in result.message, result.message


# Exercise: a model at a chosen rate (experiment)
TARGET = """
import functools
from vaecore import data
from vaecore.elbo import negative_elbo
from vaecore.train import fit
from vaecourse.chapters.ch05_first_vae import mlp_vae

def answer(train_x):
    model = mlp_vae(20, seed=0)
    fit(model, functools.partial(negative_elbo, beta=3.0), train_x, epochs=2,
        transform=data.binarize_dynamic, progress=False)
    return model
"""


def returning(model):
    """A notebook function that returns ``model`` whatever it is given."""
    namespace = notebook("def answer(train_x):\n    return MODEL")
    namespace["MODEL"] = model
    return namespace["answer"]


def test_target_rate_reference_passes():
    result = exercises.check_target_rate(notebook(TARGET)["answer"])
    assert result.passed, result.message


@pytest.mark.parametrize("mu_scale, says", [(1.0, "lower β"), (50.0, "raise β")])
def test_target_rate_outside_the_range_is_told_which_way(mu_scale, says):
    model = mlp_vae(20, seed=0)                       # untrained: a small rate
    with torch.no_grad():
        model.encoder.to_mu.weight.mul_(mu_scale)     # codes far from the prior: a large rate
    result = exercises.check_target_rate(returning(model))
    assert not result.passed and result.hint == "beta" and says in result.message, result.message


def test_target_rate_with_another_network_is_refused():
    result = exercises.check_target_rate(returning(mlp_vae(2, seed=0)))
    assert not result.passed and result.hint == "model", result.message


def test_the_new_checks_report_an_unfinished_stub():
    for check in (exercises.check_one_nat_noise, exercises.check_target_rate):
        result = check(notebook("def answer(*args):\n    raise NotImplementedError('x')")["answer"])
        assert not result.passed and result.hint == "todo" and "✗" in result.message
