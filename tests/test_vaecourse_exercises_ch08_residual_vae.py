"""Chapter 08 exercise checks: the reference passes, typical mistakes get the right hint."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vaecourse.exercises import ch08_residual_vae as exercises


def _bn(h):
    """BatchNorm in training mode without affine parameters (eps 1e-5)."""
    mean = h.mean((0, 2, 3), keepdim=True)
    var = h.var((0, 2, 3), unbiased=False, keepdim=True)
    return (h - mean) / torch.sqrt(var + 1e-5)


def _f(x, w1, w2):
    return _bn(F.conv2d(torch.relu(_bn(F.conv2d(x, w1, padding=1))), w2, padding=1))


def test_residual_block_reference_passes():
    result = exercises.check_residual_block(lambda x, w1, w2: x + _f(x, w1, w2))
    assert result.passed and "✓" in repr(result), result.message


@pytest.mark.parametrize("wrong, hint", [
    (lambda x, w1, w2: torch.relu(x + _f(x, w1, w2)), "relu"),      # ReLU after the sum
    (lambda x, w1, w2: _f(x, w1, w2), "skip"),                      # no skip connection
    (lambda x, w1, w2: (x + _f(x, w1, w2)).flatten(1).sum(1), "shape"),
    (lambda x, w1, w2: (x + _f(x, w1, w2)).detach(), "gradient"),   # no gradient to x
    (lambda x, w1, w2: x.detach() + _f(x, w1, w2), "gradient"),     # skip path cut from autograd
])
def test_residual_block_wrong_answers_get_the_right_hint(wrong, hint):
    result = exercises.check_residual_block(wrong)
    assert not result.passed and result.hint == hint, result.message


def test_residual_block_unbiased_variance_is_caught():
    def wrong(x, w1, w2):
        def bn(h):
            return (h - h.mean((0, 2, 3), keepdim=True)) / torch.sqrt(
                h.var((0, 2, 3), keepdim=True) + 1e-5)
        return x + bn(F.conv2d(torch.relu(bn(F.conv2d(x, w1, padding=1))), w2, padding=1))
    result = exercises.check_residual_block(wrong)
    assert not result.passed and result.hint == "values", result.message


def _nelbo(x, x_logits, mu, logvar):
    rec = -F.binary_cross_entropy_with_logits(x_logits, x, reduction="none").flatten(1).sum(1)
    kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(1)
    return -(rec - kl)


def test_elbo_bits_per_dim_reference_passes():
    result = exercises.check_elbo_bits_per_dim(
        lambda x, l, m, v: _nelbo(x, l, m, v) / (x[0].numel() * math.log(2)))
    assert result.passed, result.message


@pytest.mark.parametrize("wrong, hint", [
    (lambda x, l, m, v: -_nelbo(x, l, m, v) / (x[0].numel() * math.log(2)), "sign"),
    (lambda x, l, m, v: _nelbo(x, l, m, v) / math.log(2), "reduction"),       # forgot D
    (lambda x, l, m, v: _nelbo(x, l, m, v) / (x[0].numel() * math.log(10)), "factor"),
    (lambda x, l, m, v: (_nelbo(x, l, m, v) / (x[0].numel() * math.log(2))).mean(), "shape"),
    (lambda x, l, m, v: (_nelbo(x, l, m, v) - 2 * 0.5 * (m ** 2 + v.exp() - 1 - v).sum(1))
     / (x[0].numel() * math.log(2)), "values"),                                # KL sign flipped
])
def test_elbo_bits_per_dim_wrong_answers_get_the_right_hint(wrong, hint):
    result = exercises.check_elbo_bits_per_dim(wrong)
    assert not result.passed and result.hint == hint, result.message


def notebook(source: str) -> dict:
    """Run ``source`` as a notebook cell runs it: in a namespace named ``__main__``."""
    namespace = {"__name__": "__main__", "math": math, "torch": torch}
    exec(source, namespace)
    return namespace


# Exercise: the bits of a discretized logistic one level wide (derive)
def test_one_level_scale_right_answer_passes():
    source = ("def answer():\n    s = lambda t: 1 / (1 + math.exp(-t))\n"
              "    return -math.log2(s(0.5) - s(-0.5))")
    result = exercises.check_one_level_scale(notebook(source)["answer"])
    assert result.passed, result.message


@pytest.mark.parametrize("value, hint", [
    ("-math.log(math.tanh(0.25))", "derivation"),   # nats
    ("2.0", "derivation"),                          # density times width
    ("8.0", "values"),                              # the uniform model
])
def test_one_level_scale_wrong_answers_get_their_hint(value, hint):
    result = exercises.check_one_level_scale(notebook(f"def answer():\n    return {value}")["answer"])
    assert not result.passed and result.hint == hint, result.message


# Exercise: a discretized logistic without a network (experiment)
MOMENTS = """
def answer(train_x):
    x = train_x.double()
    return x.mean((0, 2, 3)), torch.log(x.std((0, 2, 3)) * math.sqrt(3) / math.pi)
"""


def test_pixel_logistic_reference_passes():
    result = exercises.check_pixel_logistic(notebook(MOMENTS)["answer"])
    assert result.passed and "bits/dim" in result.message, result.message


@pytest.mark.parametrize("source, hint", [
    # mean 1/2, the scale of the pixels' spread: 7.971 bits/dim
    ("def answer(train_x):\n    s = train_x.double().std() * math.sqrt(3) / math.pi\n"
     "    return [0.5] * 3, [math.log(s)] * 3", "fit"),
    ("def answer(train_x):\n    return [0.5] * 3, [0.0] * 3", "fit"),      # far too wide
    ("def answer(train_x):\n    return train_x.mean((0, 2, 3))", "type"),
    ("def answer(train_x):\n    return [0.5] * 2, [0.0] * 2", "type"),
])
def test_pixel_logistic_wrong_answers_get_their_hint(source, hint):
    result = exercises.check_pixel_logistic(notebook(source)["answer"])
    assert not result.passed and result.hint == hint, result.message


def test_the_new_checks_report_an_unfinished_stub():
    for check in (exercises.check_one_level_scale, exercises.check_pixel_logistic):
        result = check(notebook("def answer(*args):\n    raise NotImplementedError('x')")["answer"])
        assert not result.passed and result.hint == "todo" and "✗" in result.message
