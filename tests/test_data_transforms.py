"""Tests for vaecore.data.transforms: binarisation, splits, padding."""
import pytest
import torch

from vaecore.data import (Dataset, binarize_dynamic, binarize_static, binarize_threshold, pad_to_32,
                          train_val_split)


def test_binarize_dynamic_mean_is_x():
    x = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0], dtype=torch.float64).repeat(20000, 1)
    g = torch.Generator().manual_seed(0)
    sample = binarize_dynamic(x, generator=g)
    assert sample.dtype == torch.float64 and set(sample.unique().tolist()) <= {0.0, 1.0}
    # 20000 draws: standard error of the mean at most 0.5 / sqrt(20000) = 0.0035
    torch.testing.assert_close(sample.mean(0), x[0], atol=0.015, rtol=0)
    again = binarize_dynamic(x, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(again, sample)


def test_binarize_threshold():
    x = torch.tensor([[0.0, 0.3, 0.5, 0.51, 1.0]])
    torch.testing.assert_close(binarize_threshold(x), torch.tensor([[0.0, 0.0, 0.0, 1.0, 1.0]]))
    torch.testing.assert_close(binarize_threshold(x, threshold=0.2),
                               torch.tensor([[0.0, 1.0, 1.0, 1.0, 1.0]]))


def test_binarize_static_is_a_deprecated_alias_of_binarize_threshold():
    x = torch.tensor([[0.0, 0.3, 0.5, 0.51, 1.0]])
    with pytest.warns(DeprecationWarning, match="binarize_threshold"):
        old = binarize_static(x, threshold=0.2)
    torch.testing.assert_close(old, binarize_threshold(x, threshold=0.2))


@pytest.mark.parametrize("bad", [torch.tensor([[0.5, 1.5]]), torch.tensor([[-0.1]]),
                                 torch.tensor([[1, 0]]), [[0.5]]])
def test_binarize_dynamic_rejects(bad):
    with pytest.raises(ValueError, match="x"):
        binarize_dynamic(bad)


def test_binarize_threshold_rejects():
    with pytest.raises(ValueError, match="threshold"):
        binarize_threshold(torch.zeros(2, 2), threshold="0.5")
    with pytest.raises(ValueError, match="x"):
        binarize_threshold(torch.zeros(2, 2, dtype=torch.int64))


def _dataset(n=50):
    return Dataset(torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1),
                   torch.arange(n), ("a",))


def test_split_is_deterministic_disjoint_complete():
    ds = _dataset()
    train, val = train_val_split(ds, 10, seed=3)
    assert isinstance(train, Dataset) and len(val.y) == 10 and len(train.y) == 40
    assert sorted(torch.cat([train.y, val.y]).tolist()) == list(range(50))
    torch.testing.assert_close(train.x.flatten(), train.y.float())  # rows stay together
    assert torch.equal(train_val_split(ds, 10, seed=3).val.y, val.y)
    assert not torch.equal(train_val_split(ds, 10, seed=4).val.y, val.y)
    assert torch.equal(val.y, val.y.sort().values)


def test_split_tensor_and_tuple():
    x, y = torch.randn(20, 3), torch.arange(20)
    train, val = train_val_split((x, y), 5)
    torch.testing.assert_close(val[0], x[val[1]])
    torch.testing.assert_close(train_val_split(x, 5).val, val[0])


@pytest.mark.parametrize("data, n_val", [
    (torch.zeros(10, 2), 0), (torch.zeros(10, 2), 10), (torch.zeros(10, 2), 2.0),
    ((torch.zeros(10), torch.zeros(9)), 2), ([torch.zeros(10)], 2), (torch.tensor(1.0), 1)])
def test_split_rejects(data, n_val):
    with pytest.raises(ValueError):
        train_val_split(data, n_val)


def test_pad_to_32():
    x = torch.rand(3, 1, 28, 28) + 0.1
    out = pad_to_32(x)
    assert out.shape == (3, 1, 32, 32)
    torch.testing.assert_close(out[:, :, 2:30, 2:30], x)
    border = out.clone()
    border[:, :, 2:30, 2:30] = 0
    assert border.abs().sum() == 0
    padded = pad_to_32(Dataset(x, torch.arange(3), ("a",)))
    torch.testing.assert_close(padded.x, out)
    assert torch.equal(padded.y, torch.arange(3))


@pytest.mark.parametrize("x", [torch.zeros(1, 28, 28), torch.zeros(1, 1, 29, 29),
                               torch.zeros(1, 1, 34, 34)])
def test_pad_to_32_rejects(x):
    with pytest.raises(ValueError, match="x"):
        pad_to_32(x)
