"""vaecore.units: bits per dimension."""
import math

import pytest
import torch

from vaecore.units import bits_per_dim


def test_one_bit_per_dimension_is_d_ln2_nats():
    assert bits_per_dim(784 * math.log(2), 784) == pytest.approx(1.0)
    x = torch.tensor([0.0, 3072 * math.log(2) * 2.5])
    torch.testing.assert_close(bits_per_dim(x, 3 * 32 * 32), torch.tensor([0.0, 2.5]))


def test_n_dims_must_be_a_positive_integer():
    with pytest.raises(ValueError, match="n_dims"):
        bits_per_dim(1.0, 0)
