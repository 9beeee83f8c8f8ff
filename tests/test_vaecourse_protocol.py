"""The shared MNIST protocol: the split, the fixed test binarization, the test ELBO."""
from __future__ import annotations

import os

import pytest
import torch

from vaecore import data
from vaecourse import protocol, zoo

needs_mnist = pytest.mark.skipif(not os.environ.get("VAECORE_DATA_DIR"), reason="needs MNIST")


@needs_mnist
def test_the_split_is_a_random_5000_with_seed_0_not_the_last_5000():
    train, val = protocol.mnist_split()
    x = data.mnist("train").x
    assert train.shape == (55_000, 1, 28, 28) and val.shape == (5_000, 1, 28, 28)
    order = torch.randperm(60_000, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(val, x[order[:5000].sort().values], rtol=0, atol=0)
    assert not torch.equal(val, x[-5000:])


@needs_mnist
def test_the_test_images_are_binarized_once_with_a_fixed_seed():
    a, b = protocol.test_images(), protocol.test_images()
    assert torch.equal(a, b) and set(a.unique().tolist()) == {0.0, 1.0}


@needs_mnist
def test_a_shipped_test_metric_is_reproduced_by_the_protocol():
    """The 10-epoch MLP's recorded test ELBO, recomputed through the protocol's functions."""
    name = "mnist-mlp-bernoulli-z20-e10"
    model, _ = zoo.load(name, train_if_missing=False)
    metrics = protocol.evaluate_elbo(model, protocol.test_images())
    recorded = zoo.record(name)["metrics"]
    for key in ("test_loss", "test_log_likelihood", "test_kl"):
        assert metrics[key] == pytest.approx(recorded[key], abs=1e-4)


def test_evaluate_elbo_weights_scalars_by_batch_size_and_sums_per_example_fields():
    from typing import NamedTuple

    class Terms(NamedTuple):
        loss: torch.Tensor
        per_example: torch.Tensor

    def loss_fn(model, xb, generator=None):
        return Terms(xb.mean(), xb.flatten(1).sum(1))

    x = torch.arange(5.0).view(5, 1)
    metrics = protocol.evaluate_elbo(torch.nn.Identity(), x, loss_fn, batch_size=2)
    assert metrics == pytest.approx({"test_loss": 2.0, "test_per_example": 2.0})
