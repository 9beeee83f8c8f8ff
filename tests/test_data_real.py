"""Checks on the real datasets, run only where $VAECORE_DATA_DIR holds them.

Counts and statistics are the published ones (see data/README.md).
"""
import os
from pathlib import Path

import pytest
import torch

from vaecore.data import CorruptDataError, cifar10, fashion_mnist, mnist

ROOT = os.environ.get("VAECORE_DATA_DIR")


def _has(*parts):
    return ROOT is not None and (Path(ROOT).joinpath(*parts)).exists()


needs_mnist = pytest.mark.skipif(not _has("mnist", "train-images-idx3-ubyte.gz"),
                                 reason="MNIST not in $VAECORE_DATA_DIR")
needs_fashion = pytest.mark.skipif(not _has("fashion-mnist", "t10k-images-idx3-ubyte.gz"),
                                   reason="Fashion-MNIST not in $VAECORE_DATA_DIR")
needs_cifar = pytest.mark.skipif(not _has("cifar10"), reason="CIFAR-10 not in $VAECORE_DATA_DIR")


@needs_mnist
def test_mnist_counts():
    train, test = mnist("train", download=False), mnist("test", download=False)
    assert train.x.shape == (60000, 1, 28, 28) and test.x.shape == (10000, 1, 28, 28)
    assert torch.bincount(train.y).tolist() == [5923, 6742, 5958, 6131, 5842,
                                                5421, 5918, 6265, 5851, 5949]
    assert torch.bincount(test.y).tolist() == [980, 1135, 1032, 1010, 982,
                                               892, 958, 1028, 974, 1009]
    assert train.x.min() == 0 and train.x.max() == 1


@needs_fashion
def test_fashion_mnist_counts_and_mean():
    train, test = fashion_mnist("train", download=False), fashion_mnist("test", download=False)
    assert train.x.shape == (60000, 1, 28, 28) and test.x.shape == (10000, 1, 28, 28)
    assert torch.bincount(train.y).tolist() == [6000] * 10
    assert torch.bincount(test.y).tolist() == [1000] * 10
    assert abs(train.x.mean().item() - 0.2860) < 5e-4
    assert abs(test.x.mean().item() - 0.2868) < 5e-4


@needs_fashion
def test_fashion_files_in_an_mnist_folder_are_refused(tmp_path):
    (tmp_path / "mnist").mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (tmp_path / "mnist" / name).symlink_to(Path(ROOT, "fashion-mnist", name))
    with pytest.raises(CorruptDataError, match=r"expected MNIST's t10k-images-idx3-ubyte.gz "
                                               r".*content of Fashion-MNIST's t10k-images"):
        mnist("test", root=tmp_path, download=False)


@needs_cifar
def test_cifar10_bird_horse():
    ds = cifar10("test", classes=("bird", "horse"), download=False)
    assert ds.x.shape == (2000, 3, 32, 32) and ds.classes == ("bird", "horse")
    assert torch.bincount(ds.y).tolist() == [1000, 1000]
    assert 0.3 < ds.x.mean().item() < 0.6
    train = cifar10("train", classes=("bird", "horse"), download=False)
    assert torch.bincount(train.y).tolist() == [5000, 5000]
