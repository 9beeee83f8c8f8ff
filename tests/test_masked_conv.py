"""Tests for vaecore.masked_conv: causality read off the autograd Jacobian, and the parameter count.

Pixels are numbered in raster order, i = r * W + c. ``_dependence(f)[i, j]``
is the summed |d out_i / d in_j| over channels and over a few random inputs,
in float64: exactly zero where the mask cuts every path from pixel j to i.
"""
import pytest
import torch
from torch.autograd.functional import jacobian

from vaecore.masked_conv import MaskedConv2d, PixelCNN, causal_mask, pixelcnn_n_parameters

H, W = 4, 5
N = H * W


def _randomise(module, seed=0):
    torch.manual_seed(seed)
    module.double()
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0.0, 0.5)
    return module


def _dependence(f, in_channels, n_inputs=3):
    """``(N, N)``: entry (i, j) > 0 iff the output at pixel i moves with the input at pixel j."""
    total = torch.zeros(N, N, dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    for _ in range(n_inputs):
        x = torch.randn(1, in_channels, H, W, generator=g, dtype=torch.float64)
        jac = jacobian(f, x)  # (1, C_out, H, W, 1, C_in, H, W)
        total += jac.abs().sum((0, 1, 4, 5)).reshape(N, N)
    return total


def _neighbours_seen(dep):
    """The pixel to the left and the one above are seen wherever they exist."""
    for i in range(N):
        r, c = divmod(i, W)
        if c > 0:
            assert dep[i, i - 1] > 0, i
        if r > 0:
            assert dep[i, i - W] > 0, i


def test_the_masks():
    assert causal_mask(3, "A").tolist() == [[1, 1, 1], [1, 0, 0], [0, 0, 0]]
    assert causal_mask(3, "B").tolist() == [[1, 1, 1], [1, 1, 0], [0, 0, 0]]
    assert causal_mask(1, "A").tolist() == [[0]] and causal_mask(1, "B").tolist() == [[1]]


def test_type_a_sees_only_earlier_pixels():
    conv = _randomise(MaskedConv2d(2, 3, 5, "A"))
    dep = _dependence(conv, 2)
    # output at i has zero gradient with respect to inputs at every pixel j >= i
    assert (dep.triu(0) == 0).all()
    _neighbours_seen(dep)


def test_type_b_sees_earlier_pixels_and_itself():
    conv = _randomise(MaskedConv2d(2, 3, 3, "B"))
    dep = _dependence(conv, 2)
    # zero gradient with respect to inputs at j > i; nonzero at j = i
    assert (dep.triu(1) == 0).all()
    assert (dep.diagonal() > 0).all()
    _neighbours_seen(dep)


@pytest.mark.parametrize("cond_dim", [0, 3])
def test_the_stack_sees_only_earlier_pixels(cond_dim):
    net = _randomise(PixelCNN(2, 3, channels=8, n_layers=3, first_kernel=3, cond_dim=cond_dim))
    cond = torch.randn(1, cond_dim, dtype=torch.float64) if cond_dim else None
    dep = _dependence(lambda x: net(x, cond), 2)
    assert (dep.triu(0) == 0).all()
    _neighbours_seen(dep)
    # stacking reaches further than one 3x3 layer (one row up, one column right), two of each;
    # the blind spot: three columns right, two rows up, is out of reach
    assert dep[2 * W + 0, 0 * W + 2] > 0 and dep[2 * W + 0, 0 * W + 3] == 0


def test_a_type_b_first_layer_would_leak_the_pixel_itself():
    net = _randomise(PixelCNN(1, 1, channels=4, n_layers=1, first_kernel=3))
    net.first.mask.copy_(causal_mask(3, "B"))
    assert (_dependence(net, 1).diagonal() > 0).all()  # the check above can fail


def test_conditioning_moves_the_output():
    net = _randomise(PixelCNN(1, 2, channels=4, n_layers=2, first_kernel=3, cond_dim=2))
    x = torch.rand(1, 1, H, W, dtype=torch.float64)
    a = net(x, torch.zeros(1, 2, dtype=torch.float64))
    b = net(x, torch.ones(1, 2, dtype=torch.float64))
    assert a.shape == (1, 2, H, W) and (a - b).abs().amin() > 0  # every pixel, the first too


@pytest.mark.parametrize("sizes", [(1, 1, 64, 5, 7, 32), (1, 1, 32, 4, 7, 16), (16, 8, 8, 2, 3, 0),
                                   (32, 512, 64, 5, 5, 0)])
def test_parameter_count_formula(sizes):
    net = PixelCNN(*sizes[:5], cond_dim=sizes[5])
    assert sum(p.numel() for p in net.parameters()) == pixelcnn_n_parameters(*sizes)


def test_parameter_counts_by_hand():
    # (49 + 1) 32 + 4 (9 * 32 + 1) 32 + (32 + 1) + 5 (32 + 1) 32 = 1600 + 36992 + 33 + 5280
    assert pixelcnn_n_parameters(1, 1, 32, 4, 7, cond_dim=32) == 43_905
    # (49 + 1) 64 + 5 (9 * 64 + 1) 64 + (64 + 1) + 6 (32 + 1) 64 = 3200 + 184640 + 65 + 12672
    assert pixelcnn_n_parameters(1, 1, 64, 5, 7, cond_dim=32) == 200_577


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="mask_type: expected 'A' or 'B'"):
        MaskedConv2d(1, 1, 3, "C")
    with pytest.raises(ValueError, match="odd size"):
        MaskedConv2d(1, 1, 4, "A")
    net = PixelCNN(2, 2, channels=4, n_layers=1, first_kernel=3, cond_dim=3)
    with pytest.raises(ValueError, match="expected 2 channels"):
        net(torch.zeros(1, 1, 3, 3), torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"cond: expected a \(B, cond_dim\) tensor"):
        net(torch.zeros(1, 2, 3, 3))
    with pytest.raises(ValueError, match="expected 4 dimensions"):
        net(torch.zeros(2, 3, 3), torch.zeros(1, 3))
