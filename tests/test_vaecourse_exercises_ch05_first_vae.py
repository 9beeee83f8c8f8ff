"""The chapter 05 exercise checks pass the reference solutions and catch typical mistakes."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal

from vaecourse.exercises import ch05_first_vae as exercises


# Exercise: a sum of squared errors is a Gaussian log-likelihood with a fixed variance
def sse_reference(sse, num_pixels, var):
    return -sse / (2 * var) - 0.5 * num_pixels * math.log(2 * math.pi * var)


def test_sse_to_log_prob_reference_passes():
    result = exercises.check_sse_to_log_prob(sse_reference)
    assert result.passed and "✓" in repr(result), result.message


def test_sse_reference_agrees_with_torch_distributions():
    g = torch.Generator().manual_seed(0)
    x, mean = torch.rand(3, 784, generator=g, dtype=torch.float64), torch.rand(
        3, 784, generator=g, dtype=torch.float64)
    want = Normal(mean, math.sqrt(0.3)).log_prob(x).sum(1)
    torch.testing.assert_close(sse_reference(((x - mean) ** 2).sum(1), 784, 0.3), want)


@pytest.mark.parametrize("wrong, hint", [
    (lambda s, d, v: -s / (2 * v), "constant"),                                     # no constant
    (lambda s, d, v: -s / v - 0.5 * d * math.log(2 * math.pi * v), "factor"),      # no ½
    (lambda s, d, v: -s / (2 * math.sqrt(v)) - 0.5 * d * math.log(2 * math.pi * math.sqrt(v)),
     "variance"),                                                                   # σ for σ²
    (lambda s, d, v: -s / 2 - 0.5 * d * math.log(2 * math.pi * v), "variance"),     # forgot /σ²
    (lambda s, d, v: -s / (2 * v) - 0.5 * math.log(2 * math.pi * v), "constant"),   # const once
    (lambda s, d, v: s / (2 * v) + 0.5 * d * math.log(2 * math.pi * v), "sign"),
    (lambda s, d, v: (-s / (2 * v) - 0.5 * d * math.log(2 * math.pi * v)).mean(), "shape"),
])
def test_sse_to_log_prob_wrong_answers_get_the_right_hint(wrong, hint):
    result = exercises.check_sse_to_log_prob(wrong)
    assert not result.passed and result.hint == hint, result.message


def test_sse_constant_once_names_num_pixels():
    result = exercises.check_sse_to_log_prob(
        lambda s, d, v: -s / (2 * v) - 0.5 * math.log(2 * math.pi * v))
    assert "num_pixels" in result.message


# Exercise: the effective β of a training loss
def beta_reference(loss_fn, batch_size):
    log_px = torch.randn(batch_size, dtype=torch.float64, requires_grad=True)
    kl = torch.rand(batch_size, dtype=torch.float64, requires_grad=True)
    g_log_px, g_kl = torch.autograd.grad(loss_fn(log_px, kl), (log_px, kl))
    return (g_kl.sum() / -g_log_px.sum()).item()  # a float is accepted


def test_effective_beta_reference_passes():
    result = exercises.check_effective_beta(beta_reference)
    assert result.passed and "✓" in repr(result), result.message


def test_effective_beta_of_a_pixel_mean_is_784():
    assert math.isclose(beta_reference(lambda lp, kl: (-lp / 784 + kl).mean(), 3), 784)


@pytest.mark.parametrize("wrong, hint", [
    (lambda f, b: 1 / beta_reference(f, b), "inverted"),
    (lambda f, b: -beta_reference(f, b), "sign"),
    (lambda f, b: 1.0, "values"),  # one number: no factor is named (any two differ by one)
    (lambda f, b: torch.full((b,), beta_reference(f, b)), "shape"),
])
def test_effective_beta_wrong_answers_get_the_right_hint(wrong, hint):
    result = exercises.check_effective_beta(wrong)
    assert not result.passed and result.hint == hint, result.message


# Exercise: the training loss with the right reduction
def kl_terms(mu, logvar):
    return 0.5 * (logvar.exp() + mu ** 2 - 1 - logvar)


def bce(x, x_logits):
    """(S, B, pixels): the BCE of each pixel for each of the S codes of each image."""
    return F.binary_cross_entropy_with_logits(x_logits, x.expand_as(x_logits),
                                              reduction="none").flatten(2)


def loss_reference(x, x_logits, mu, logvar):
    return (bce(x, x_logits).sum(2).mean(0) + kl_terms(mu, logvar).sum(1)).mean()


def loss_per_code(x, x_logits, mu, logvar):
    """The loss of each code, then the mean over codes and batch: the same number."""
    return (bce(x, x_logits).sum(2) + kl_terms(mu, logvar).sum(1)).mean()


@pytest.mark.parametrize("solution", [loss_reference, loss_per_code])
def test_negative_elbo_loss_reference_passes(solution):
    result = exercises.check_negative_elbo_loss(solution)
    assert result.passed and "✓" in repr(result), result.message


@pytest.mark.parametrize("wrong, hint, words", [
    (lambda x, l, m, v: F.binary_cross_entropy_with_logits(l, x.expand_as(l))
     + kl_terms(m, v).sum(1).mean(), "reduction", "effective β"),           # the pitfall
    (lambda x, l, m, v: (bce(x, l).sum(2).mean(0) + kl_terms(m, v).mean(1)).mean(), "reduction",
     "latent"),
    (lambda x, l, m, v: F.binary_cross_entropy_with_logits(l, x.expand_as(l), reduction="sum")
     / len(l) + kl_terms(m, v).sum(), "reduction", "summed over the batch"),
    (lambda x, l, m, v: (bce(x, l).sum((0, 2)) + kl_terms(m, v).sum(1)).mean(), "samples",
     "average it"),
    (lambda x, l, m, v: (bce(x, l).sum(2) + kl_terms(m, v).sum(1)).sum(0).mean(), "samples",
     "summed over the S"),
    (lambda x, l, m, v: (bce(x, l).sum(2).mean(0) - kl_terms(m, v).sum(1)).mean(), "sign", "KL"),
    (lambda x, l, m, v: bce(x, l).sum(2).mean(0).mean(), "kl", "missing"),
    (lambda x, l, m, v: bce(x, l).sum(2).mean(0) + kl_terms(m, v).sum(1), "shape",
     "expected shape"),
])
def test_negative_elbo_loss_wrong_answers_get_the_right_hint(wrong, hint, words):
    result = exercises.check_negative_elbo_loss(wrong)
    assert not result.passed and result.hint == hint, result.message
    assert words in result.message


def test_sigma_for_sigma_squared_is_named_where_var_is_not_1():
    """With var = 1, σ = σ²: the first case (var = 1) cannot tell them apart, the second can."""
    result = exercises.check_sse_to_log_prob(
        lambda s, d, v: -s / (2 * math.sqrt(v)) - 0.5 * d * math.log(2 * math.pi * math.sqrt(v)))
    assert result.hint == "variance" and "(case 2 of" in result.message, result.message


def test_a_float32_sse_answer_is_told_precision_not_variance():
    def float32(s, d, v):
        return (-s.float() / (2 * v) - 0.5 * d * math.log(2 * math.pi * v)).float()
    result = exercises.check_sse_to_log_prob(float32)
    assert result.hint == "precision" and "(case 1 of" in result.message, result.message
    assert "σ" not in result.message


def notebook(source: str) -> dict:
    """Run ``source`` as a notebook cell runs it: in a namespace named ``__main__``."""
    namespace = {"__name__": "__main__", "math": math, "torch": torch}
    exec(source, namespace)
    return namespace


def stub(*args):
    raise NotImplementedError("Exercise")


# Exercise: the best decoder that ignores z (derive)
def test_the_code_free_distortion_is_the_training_split_s_pixel_entropy():
    from vaecore import data
    train, _ = data.train_val_split(data.mnist("train").x, n_val=5000, seed=0)
    rho = train.double().mean(0)
    entropy = -(torch.xlogy(rho, rho) + torch.xlogy(1 - rho, 1 - rho)).sum().item()
    assert abs(entropy - exercises.CODE_FREE_NATS) < 1e-3
    assert abs(train.double().mean().item() - exercises.MEAN_GREY) < 1e-5


def test_code_free_distortion_right_answer_passes():
    result = exercises.check_code_free_distortion(notebook("def answer():\n    return 205.95")["answer"])
    assert result.passed, result.message


@pytest.mark.parametrize("value, says", [
    ("205.9476 / math.log(2)", "bits"),
    ("205.9476 / 784", "per pixel"),
    ("-784 * (0.130646 * math.log(0.130646) + 0.869354 * math.log(0.869354))", "one probability"),
    ("-205.95", "negative"),
    ("206.20", "measured"),
])
def test_code_free_distortion_slips_are_named(value, says):
    result = exercises.check_code_free_distortion(notebook(f"def answer():\n    return {value}")["answer"])
    assert not result.passed and result.hint == "derivation" and says in result.message, result.message


# Exercise: buy rate with a smaller variance (experiment)
GAUSSIAN_VAE = """
from vaecore.elbo import negative_elbo
from vaecore.likelihoods import normal
from vaecore.mlp import MLPDecoder, MLPEncoder
from vaecore.train import fit
from vaecore.vae import VAE

def answer(train_x):
    torch.manual_seed(0)
    model = VAE(MLPEncoder((1, 28, 28), 20), MLPDecoder(20, (1, 28, 28)),
                likelihood=normal(logvar=math.log({var})))
    fit(model, negative_elbo, train_x, epochs={epochs}, progress=False)
    return model
"""


def test_gaussian_vae_reference_passes():
    result = exercises.check_gaussian_vae(notebook(GAUSSIAN_VAE.format(var=0.1, epochs=2))["answer"])
    assert result.passed and "σ² = 0.1" in result.message, result.message


def returning(model):
    """A notebook function that returns ``model`` whatever it is given."""
    namespace = notebook("def answer(train_x):\n    return MODEL")
    namespace["MODEL"] = model
    return namespace["answer"]


def untrained(var: float, mu_scale: float = 1.0):
    """An untrained fixed-variance Gaussian VAE; ``mu_scale`` blows its codes up (a high rate)."""
    from vaecore.likelihoods import normal
    from vaecore.mlp import MLPDecoder, MLPEncoder
    from vaecore.vae import VAE
    torch.manual_seed(0)
    model = VAE(MLPEncoder((1, 28, 28), 20), MLPDecoder(20, (1, 28, 28)),
                likelihood=normal(logvar=math.log(var)))
    with torch.no_grad():
        model.encoder.to_mu.weight.mul_(mu_scale)
    return model


@pytest.mark.parametrize("var, mu_scale, says", [(1.0, 1.0, "Lower σ²"), (1e-3, 100.0, "Raise σ²")])
def test_gaussian_vae_with_the_wrong_rate_is_told_which_way(var, mu_scale, says):
    result = exercises.check_gaussian_vae(returning(untrained(var, mu_scale)))
    assert not result.passed and result.hint == "variance" and says in result.message, result.message


def test_gaussian_vae_with_another_likelihood_is_refused():
    from vaecourse.chapters.ch05_first_vae import mlp_vae
    result = exercises.check_gaussian_vae(returning(mlp_vae(20, seed=0)))      # Bernoulli
    assert not result.passed and result.hint == "likelihood", result.message


def test_every_check_reports_an_unfinished_stub():
    for check in (exercises.check_sse_to_log_prob, exercises.check_effective_beta,
                  exercises.check_negative_elbo_loss, exercises.check_code_free_distortion,
                  exercises.check_gaussian_vae):
        result = check(notebook("def answer(*args):\n    raise NotImplementedError('x')")["answer"])
        assert not result.passed and result.hint == "todo" and "✗" in result.message
