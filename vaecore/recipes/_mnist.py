"""Shared pieces of the MNIST recipes: the splits, the training call, the test metrics.

Protocol: the 60,000 training images split into 55,000 for training and the
last-shuffled 5,000 (seed 0) for validation; the 10,000 test images for the
reported metrics. With ``binarize=True`` every batch is binarized afresh
(dynamic binarization) and the test set once with a fixed seed.
"""
from __future__ import annotations

from functools import partial

import torch

from .. import data
from ..elbo import negative_elbo
from ..train import fit
from ..zoo import Recipe

TEST_SEED = 1  # the one fixed binarization of the test set used for every reported number


def splits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train 55,000, validation 5,000, test 10,000) MNIST images in [0, 1]."""
    train, val = data.train_val_split(data.mnist("train").x, n_val=5000, seed=0)
    return train, val, data.mnist("test").x


def test_images(binarize: bool = True) -> torch.Tensor:
    """The test images as every recipe evaluates them."""
    x = data.mnist("test").x
    return data.binarize_dynamic(x, torch.Generator().manual_seed(TEST_SEED)) if binarize else x


@torch.no_grad()
def evaluate(model, x: torch.Tensor, loss_fn=negative_elbo, batch_size: int = 1000) -> dict:
    """Mean of every term of ``loss_fn`` over ``x`` (one z sample per image, fixed seed)."""
    model.eval()
    g = torch.Generator().manual_seed(2)
    sums: dict[str, float] = {}
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size]
        for key, value in loss_fn(model, xb, generator=g)._asdict().items():
            total = value.item() * len(xb) if value.dim() == 0 else value.sum().item()
            sums[key] = sums.get(key, 0.0) + total
    return {f"test_{k}": v / len(x) for k, v in sums.items()}


def vae_recipe(build, *, summary: str, epochs: int, loss_fn=negative_elbo,
               binarize: bool = True, lr: float = 1e-3, batch_size: int = 128,
               all_training_images: bool = False, eval_loss_fn=None,
               **fit_kwargs) -> Recipe:
    """A recipe that trains ``build()`` on MNIST with ``fit`` and reports test metrics.

    ``all_training_images=True`` trains on all 60,000 training images with no
    validation split (the likelihood benchmark's protocol); ``eval_loss_fn``
    (default ``loss_fn``) gives the reported test metrics.
    """
    def train(model, checkpoint=None, history=None):
        if all_training_images:
            x_train, x_val = data.mnist("train").x, None
        else:
            x_train, x_val, _ = splits()
        remaining = epochs - (len(history) if history else 0)
        return fit(model, loss_fn, x_train, val=x_val, epochs=max(remaining, 1), lr=lr,
                   batch_size=batch_size, seed=0, checkpoint=checkpoint, history=history,
                   transform=data.binarize_dynamic if binarize else None, **fit_kwargs)

    return Recipe(build=build, train=train, summary=summary,
                  evaluate=partial(_evaluate_test, loss_fn=eval_loss_fn or loss_fn,
                                   binarize=binarize))


def _evaluate_test(model, *, loss_fn, binarize: bool) -> dict:
    return evaluate(model, test_images(binarize), loss_fn=loss_fn)
