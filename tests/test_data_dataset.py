"""Tests for vaecore.data.dataset: the Dataset tuple and its uint8 constructor."""
import numpy as np
import torch

from vaecore.data.dataset import Dataset, from_uint8


def test_from_uint8_scales_and_copies():
    images = np.array([0, 51, 255], dtype=np.uint8).reshape(3, 1, 1, 1)
    labels = np.array([2, 0, 1], dtype=np.uint8)
    ds = from_uint8(images, labels, ("a", "b", "c"))
    torch.testing.assert_close(ds.x.flatten(), torch.tensor([0.0, 0.2, 1.0]))
    assert ds.x.dtype == torch.float32 and ds.y.dtype == torch.int64
    ds.y[0] = 9
    assert labels[0] == 2 and ds.classes == ("a", "b", "c")


def test_unpacks_and_short_repr():
    ds = Dataset(torch.zeros(5, 1, 2, 2), torch.zeros(5, dtype=torch.int64), tuple("abcdef"))
    x, y, classes = ds
    assert x is ds.x and y is ds.y and len(classes) == 6
    assert repr(ds) == ("Dataset(x=torch.float32 (5, 1, 2, 2), y=torch.int64 (5,), "
                        "classes=('a', 'b', '...', 'f'))")
