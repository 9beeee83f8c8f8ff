"""Tests for vaecore.data.sklearn_digits: the 8x8 scikit-learn digits."""
import pytest
import torch
from sklearn.datasets import load_digits

from vaecore.data import digits


def test_all_matches_sklearn_scaled():
    ds = digits("all")
    bunch = load_digits()
    assert ds.x.shape == (1797, 1, 8, 8) and ds.x.dtype == torch.float32
    torch.testing.assert_close(ds.x[:, 0], torch.from_numpy(bunch.images / 16).float())
    torch.testing.assert_close(ds.y, torch.from_numpy(bunch.target).long())
    assert ds.x.min() == 0 and ds.x.max() == 1 and ds.classes == tuple("0123456789")


def test_train_test_partition_all_and_are_stratified():
    train, test, full = digits("train"), digits("test"), digits("all")
    assert len(train.y) + len(test.y) == len(full.y) and len(test.y) == 355
    counts = torch.bincount(test.y, minlength=10)
    assert counts.min() >= 34 and counts.max() <= 36
    both = torch.cat([train.x, test.x]).flatten(1)
    assert torch.unique(both, dim=0).shape[0] == torch.unique(full.x.flatten(1), dim=0).shape[0]


def test_deterministic_and_not_shared():
    first = digits("test")
    first.x.zero_()
    second = digits("test")
    assert second.x.max() == 1.0
    torch.testing.assert_close(second.y, digits("test").y)


@pytest.mark.parametrize("split", ["val", "", None])
def test_unknown_split(split):
    with pytest.raises(ValueError, match="split"):
        digits(split)
