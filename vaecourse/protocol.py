"""The MNIST protocol that chapters 5, 6, 7 and 11 call "the same protocol", written once.

- **Split**: :func:`mnist_split`: the 60,000 training images, of which a
  random 5,000 (``data.train_val_split`` with seed ``SPLIT_SEED`` = 0: the
  first 5,000 of a seed-0 permutation, kept in dataset order) are held out
  for validation and the other 55,000 are trained on. (The 32×32 runs of
  chapter 9 hold out a different random 5,000; their module and records say so.)
- **Test binarization**: :func:`test_images`: the 10,000 test images,
  binarized once by one Bernoulli draw with the grey levels as probabilities
  (seed ``TEST_SEED`` = 1), then kept fixed; every reported MNIST test number
  uses these same bits. One fixed stochastic draw is what the literature calls
  static binarization; it is our own draw, not the widely shared file of
  Larochelle and Murray (2011), and training binarizes dynamically (a new draw
  per batch).
- **Noisy test set** (chapter 7's robustness test): :func:`noisy_test_images`,
  the grey test images with white noise of std ``NOISE_STD`` = 0.1 added,
  then binarized (:func:`noisy_binarize`, seed ``NOISY_TEST_SEED`` = 6).
- **Test ELBO**: :func:`evaluate_elbo`: the mean of every field of the loss
  over a test set, one sample of z per image from a generator seeded with
  ``EVAL_SEED`` = 2, in batches of ``batch_size``; nats per image.

:func:`mnist_recipe` makes a :class:`vaecourse.recipe.Recipe` of this protocol.
"""
from __future__ import annotations

import math
from functools import partial

import torch

from vaecore import data
from vaecore.elbo import negative_elbo
from vaecore.latent import active_units, encode_dataset

from .recipe import Recipe

__all__ = ["SPLIT_SEED", "N_VAL", "TEST_SEED", "EVAL_SEED", "NOISE_STD", "NOISY_TEST_SEED",
           "mnist_split", "mnist_train_all", "test_images", "noisy_binarize", "noisy_test_images",
           "evaluate_elbo", "evaluate_test", "mnist_recipe"]

SPLIT_SEED, N_VAL = 0, 5000
TEST_SEED = 1  # the one fixed binarization of the test set used for every reported number
EVAL_SEED = 2  # the samples of z behind every reported test ELBO
NOISE_STD = 0.1  # standard deviation of the white noise, in grey levels (pixel range [0, 1])
NOISY_TEST_SEED = 6  # the one noisy binarization of the test set


def mnist_split() -> data.Split:
    """``Split(train, val)``: 55,000 and 5,000 MNIST training images in [0, 1], ``(N, 1, 28, 28)``.

    The validation images are a random 5,000 (seed 0), not the last 5,000.
    """
    return data.train_val_split(data.mnist("train").x, n_val=N_VAL, seed=SPLIT_SEED)


def mnist_train_all() -> tuple[torch.Tensor, None]:
    """All 60,000 training images and no validation set (the likelihood benchmark's protocol)."""
    return data.mnist("train").x, None


def test_images(binarize: bool = True) -> torch.Tensor:
    """The 10,000 test images ``(10000, 1, 28, 28)``, one fixed Bernoulli draw with seed 1 (or grey levels).

    The fixed draw is static binarization in the literature's sense (not a threshold).
    """
    x = data.mnist("test").x
    return data.binarize_dynamic(x, torch.Generator().manual_seed(TEST_SEED)) if binarize else x


def noisy_binarize(x: torch.Tensor, generator=None, *,
                   std: float = NOISE_STD) -> torch.Tensor:
    r"""White-noise augmentation, then dynamic binarization.

    .. math::
        \tilde x = \operatorname{clip}(x + \sigma \epsilon, 0, 1), \quad
        \epsilon \sim \mathcal N(0, I), \qquad x_{\text{bin}} \sim \mathrm{Bernoulli}(\tilde x)

    ``x``: grey levels in ``[0, 1]``, any shape; returns 0/1 of the same shape.
    """
    eps = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return data.binarize_dynamic((x + std * eps).clamp(0, 1), generator)


def noisy_test_images() -> torch.Tensor:
    """The 10,000 test images with noise of std ``NOISE_STD``, binarized once (seed ``NOISY_TEST_SEED``)."""
    return noisy_binarize(data.mnist("test").x, torch.Generator().manual_seed(NOISY_TEST_SEED))


@torch.no_grad()
def evaluate_elbo(model, x: torch.Tensor, loss_fn=negative_elbo, *, batch_size: int = 1000,
                  seed: int = EVAL_SEED, generator: torch.Generator | None = None) -> dict:
    """``{"test_<field>": mean}`` for every field of ``loss_fn(model, xb, generator=g)`` over ``x``.

    Eval mode; one sample of z per image from ``generator`` (default: a new
    one seeded with ``seed``), batches of ``batch_size`` taken in order. A
    scalar field (the batch-mean ``loss``) counts once per image of its batch,
    a ``(B,)`` field is summed; both are divided by ``len(x)``.
    """
    model.eval()
    g = torch.Generator().manual_seed(seed) if generator is None else generator
    sums: dict[str, float] = {}
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size]
        for key, value in loss_fn(model, xb, generator=g)._asdict().items():
            total = value.item() * len(xb) if value.dim() == 0 else value.sum().item()
            sums[key] = sums.get(key, 0.0) + total
    return {f"test_{k}": v / len(x) for k, v in sums.items()}


@torch.no_grad()
def evaluate_test(model, *, loss_fn=negative_elbo, binarize: bool = True, units=None) -> dict:
    """The recorded test metrics of a recipe of this protocol.

    :func:`evaluate_elbo` of ``loss_fn`` on :func:`test_images`; the number of
    active units (posterior-mean variance over the test images above 0.01,
    :func:`vaecore.latent.active_units`) as ``test_active_units``; the mean
    squared error per pixel of the decoder's mean at z = μ(x)
    against the grey-level test images (comparable across likelihoods) as
    ``test_mse_grey``; and for binarized recipes, the ELBO fields on
    :func:`noisy_test_images` as ``test_noisy_<field>``. A model without one
    ``encode`` (a hierarchy) passes ``units(model, x) -> dict`` to count its
    active units instead.
    """
    x = test_images(binarize)
    metrics = evaluate_elbo(model, x, loss_fn=loss_fn)
    if units is None:
        metrics["test_active_units"] = float(active_units(encode_dataset(model.eval(), x).mu).sum())
    else:
        metrics.update(units(model.eval(), x))
    grey = test_images(binarize=False)
    metrics["test_mse_grey"] = math.fsum(
        ((model.reconstruct(x[i:i + 1000]) - grey[i:i + 1000]) ** 2).sum().item()
        for i in range(0, len(x), 1000)) / grey.numel()
    if binarize:
        noisy = evaluate_elbo(model, noisy_test_images(), loss_fn=loss_fn)
        metrics.update({f"test_noisy_{k[len('test_'):]}": v for k, v in noisy.items()})
    return metrics


def mnist_recipe(build, *, summary: str, epochs: int, loss=negative_elbo, binarize: bool = True,
                 eval_loss=None, split=mnist_split, lr: float = 1e-3,
                 batch_size: int = 128, callbacks=(), units=None, **fit_options) -> Recipe:
    """A recipe of this protocol: ``build()`` trained by ``fit`` on ``split()``, tested by ``eval_loss``.

    With ``binarize`` every training batch is binarized afresh (dynamic
    binarization) and the test set is :func:`test_images`; otherwise both are
    grey levels. The recorded test metrics are :func:`evaluate_elbo` of
    ``eval_loss`` (default: the training ``loss``) and the active units
    (``units``: see :func:`evaluate_test`).
    """
    return Recipe(build=build, loss=loss, data=split, epochs=epochs, summary=summary,
                  callbacks=tuple(callbacks),
                  evaluate=partial(evaluate_test, loss_fn=eval_loss or loss, binarize=binarize,
                                   units=units),
                  fit_options={"lr": lr, "batch_size": batch_size,
                               "transform": data.binarize_dynamic if binarize else None,
                               **fit_options})
