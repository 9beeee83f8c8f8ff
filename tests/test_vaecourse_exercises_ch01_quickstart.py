"""Every exercise check passes the reference and catches typical mistakes with the right hint."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vaecourse.exercises import ch01_quickstart as exercises
from vaecourse.exercises import diagnose


def test_diagnose_names_each_kind_of_difference():
    want = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    assert diagnose("f", want.clone(), want) is None
    assert diagnose("f", -want, want).hint == "sign"
    assert diagnose("f", want / 10, want, event_size=10).hint == "reduction"
    assert diagnose("f", want * 10, want, event_size=10).hint == "reduction"
    assert diagnose("f", want.sum(), want).hint == "shape"
    assert diagnose("f", want * 0.5, want).hint == "factor"
    assert diagnose("f", want + 0.9189, want).hint == "constant"
    assert diagnose("f", want + torch.tensor([0.0, 1.0, 0.0]), want).hint == "values"
    assert diagnose("f", want.numpy(), want).hint == "type"
    assert diagnose("f", torch.tensor([1.0, float("nan"), 3.0]), want).hint == "nan"


def test_a_not_implemented_stub_is_reported_as_todo():
    def stub(*args):
        raise NotImplementedError("Exercise 1")
    result = exercises.check_bits_per_dim(stub)
    assert not result.passed and result.hint == "todo"


def test_an_exception_in_student_code_is_reported():
    result = exercises.check_bits_per_dim(lambda nats, d: nats / undefined_name)  # noqa: F821
    assert not result.passed and result.hint == "error" and "NameError" in result.message


# Exercise: bits per dimension (chapter 01)
def test_bits_per_dim_reference_passes():
    result = exercises.check_bits_per_dim(lambda nats, d: nats / (d * math.log(2)))
    assert result.passed and "✓" in repr(result)


@pytest.mark.parametrize("wrong, hint", [
    (lambda nats, d: nats / (d * math.log(10)), "factor"),   # log10 instead of log 2
    (lambda nats, d: nats / math.log(2), "reduction"),       # forgot to divide by D
    (lambda nats, d: -nats / (d * math.log(2)), "sign"),
    (lambda nats, d: (nats / (d * math.log(2))).mean(), "shape"),
])
def test_bits_per_dim_wrong_answers_get_the_right_hint(wrong, hint):
    result = exercises.check_bits_per_dim(wrong)
    assert not result.passed and result.hint == hint, result.message


# Exercise: Bernoulli log-likelihood from logits (chapter 01)
def test_log_prob_bernoulli_reference_passes():
    def ok(x, x_logits):
        return -F.binary_cross_entropy_with_logits(x_logits, x, reduction="none").flatten(1).sum(1)
    assert exercises.check_log_prob_bernoulli(ok).passed


@pytest.mark.parametrize("wrong, hint", [
    (lambda x, l: F.binary_cross_entropy_with_logits(l, x, reduction="none").flatten(1).sum(1),
     "sign"),
    (lambda x, l: -F.binary_cross_entropy_with_logits(l, x, reduction="none").flatten(1).mean(1),
     "reduction"),
    (lambda x, l: -F.binary_cross_entropy_with_logits(l, x, reduction="sum"), "shape"),
    (lambda x, l: (x * torch.log(torch.sigmoid(l))
                   + (1 - x) * torch.log(1 - torch.sigmoid(l))).flatten(1).sum(1), "nan"),
])
def test_log_prob_bernoulli_wrong_answers_get_the_right_hint(wrong, hint):
    result = exercises.check_log_prob_bernoulli(wrong)
    assert not result.passed and result.hint == hint, result.message


def _naive(x, l, log_one_minus):
    rho = torch.sigmoid(l)
    return (x * torch.log(rho) + (1 - x) * log_one_minus(rho)).flatten(1).sum(1)


@pytest.mark.parametrize("wrong, hint, says", [
    # xlogy avoids 0·log 0, but where x = 0 and the logit is +60, log(1 − ρ) is log 0 = −inf
    (lambda x, l: (torch.xlogy(x, torch.sigmoid(l)) + torch.xlogy(1 - x, 1 - torch.sigmoid(l)))
     .flatten(1).sum(1), "nan", "logsigmoid"),
    # a clamp or an ε keeps it finite, but wrong: log(1e-7) = −16 where −60 is due
    (lambda x, l: _naive(x, l, lambda r: torch.log((1 - r).clamp(min=1e-7))), "stability",
     "large"),
    (lambda x, l: _naive(x, l, lambda r: torch.log(1 - r + 1e-12)), "stability", "large"),
])
def test_sigmoid_then_log_is_refused_at_a_contradicted_logit_of_60(wrong, hint, says):
    """x = 0 with a logit of +60: log(1 − sigmoid(60)) is log 0 in floating point."""
    result = exercises.check_log_prob_bernoulli(wrong)
    assert not result.passed and result.hint == hint and says in result.message, result.message


def test_the_nan_hint_of_the_bernoulli_check_names_the_logits():
    result = exercises.check_log_prob_bernoulli(lambda x, l: _naive(x, l, lambda r: torch.log(1 - r)))
    assert result.hint == "nan" and "logsigmoid" in result.message


def notebook(source: str) -> dict:
    """Run ``source`` as a notebook cell runs it: in a namespace named ``__main__``."""
    namespace = {"__name__": "__main__", "math": math, "torch": torch}
    exec(source, namespace)
    return namespace


@pytest.mark.parametrize("check, source", [
    ("check_bits_per_dim", "from vaecore.units import bits_per_dim\n"
                           "def answer(nats, d):\n    return bits_per_dim(nats, d)"),
    ("check_log_prob_bernoulli", "from vaecore.likelihoods import log_prob_bernoulli\n"
                                 "def answer(x, l):\n    return log_prob_bernoulli(x, l)"),
])
def test_the_library_s_function_wrapped_in_a_notebook_function_is_refused(check, source):
    result = getattr(exercises, check)(notebook(source)["answer"])
    assert not result.passed and result.hint == "library", result.message


# Exercise: a coin-flip baseline (derive)
def test_coin_flip_nats_right_answer_passes():
    result = exercises.check_coin_flip_nats(notebook("def answer():\n    return 784 * math.log(2)")["answer"])
    assert result.passed and "543.4" in result.message


@pytest.mark.parametrize("value, says", [
    ("784", "bits"), ("math.log(2)", "one pixel"), ("1.0", "bits per dimension"),
    ("-784 * math.log(2)", "positive"),
])
def test_coin_flip_nats_slips_are_named(value, says):
    result = exercises.check_coin_flip_nats(notebook(f"def answer():\n    return {value}")["answer"])
    assert not result.passed and result.hint == "derivation" and says in result.message, result.message


def test_coin_flip_nats_other_wrong_numbers_reveal_nothing():
    result = exercises.check_coin_flip_nats(notebook("def answer():\n    return 500.0")["answer"])
    assert not result.passed and result.hint == "values" and "543" not in result.message
    assert exercises.check_coin_flip_nats(notebook("def answer():\n    return 'x'")["answer"]).hint == "type"


def test_a_derive_stub_reports_todo():
    stub = notebook("def answer(*args):\n    raise NotImplementedError('Exercise 3')")["answer"]
    assert exercises.check_coin_flip_nats(stub).hint == "todo"
    assert exercises.check_two_dim_vae(stub).hint == "todo"


# Exercise: a two-dimensional code (experiment)
MODEL = """
from vaecore.mlp import MLPDecoder, MLPEncoder
from vaecore.vae import VAE
def answer(train_x):
    torch.manual_seed(0)
    return VAE(MLPEncoder((1, 28, 28), {d}, hidden=(400,)), MLPDecoder({d}, (1, 28, 28), hidden=(400,)))
"""

TRAINED = MODEL.replace("    return VAE(", "    model = VAE(") + """
    from vaecore import data
    from vaecore.elbo import negative_elbo
    from vaecore.train import fit
    fit(model, negative_elbo, train_x, epochs=2, batch_size=128, lr=1e-3,
        transform=data.binarize_dynamic, seed=0, progress=False)
    return model
"""


@pytest.mark.slow  # two epochs of training; the chapter's own solution runs in the unit tests too
def test_two_dim_vae_trained_for_two_epochs_passes():
    result = exercises.check_two_dim_vae(notebook(TRAINED.format(d=2))["answer"])
    assert result.passed and "KL" in result.message, result.message


@pytest.mark.parametrize("d, hint", [(20, "latent"), (2, "undertrained")])
def test_two_dim_vae_wrong_size_or_untrained_model_fails(d, hint):
    result = exercises.check_two_dim_vae(notebook(MODEL.format(d=d))["answer"])
    assert not result.passed and result.hint == hint, result.message
