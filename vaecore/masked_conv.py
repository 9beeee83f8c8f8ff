r"""Masked convolutions and a small PixelCNN stack (van den Oord et al., 2016).

An autoregressive model orders the pixels of an :math:`H \times W` grid in
raster order (row by row, left to right), :math:`i = rW + c`, and factorises

.. math::
    p(x) = \prod_{i=1}^{HW} p(x_i \mid x_{<i})

(van den Oord, Kalchbrenner and Kavukcuoglu, 2016, Pixel Recurrent Neural
Networks, Eq. 1). A convolution computes every conditional in one pass if its
kernel sees only earlier pixels: the kernel of :class:`MaskedConv2d` is
multiplied by a mask that is 1 on the rows above the centre and, on the
centre row, left of the centre; mask ``"A"`` zeroes the centre, mask ``"B"``
keeps it. Exactly: the output of a type-A layer at pixel :math:`i` depends
only on inputs at pixels :math:`j < i`; of a type-B layer, at :math:`j \le i`.
All channels of a pixel are one unit (no order among colour channels), which
is what binary images and embedded discrete codes need.

:class:`PixelCNN` stacks one type-A layer (``first_kernel``) with
``n_layers`` residual type-B layers (3 × 3) and a 1 × 1 head, so its output at
pixel :math:`i` depends on inputs at :math:`j < i` only: the logits of
:math:`p(x_i \mid x_{<i})`. Like the original PixelCNN it has a blind spot
(some pixels above and to the right are never seen); the conditionals stay
exact, only less informed. An optional conditioning vector ``cond``
``(B, cond_dim)`` is mapped by one linear layer per masked layer to a
per-channel bias added to that layer's output (global conditioning, van den
Oord et al., 2016, Conditional Image Generation with PixelCNN Decoders, Eq. 4).

Parameters, with :math:`C_\text{in}` inputs, :math:`c` = ``channels``,
:math:`L` = ``n_layers``, :math:`k` = ``first_kernel``,
:math:`C_\text{out}` outputs and :math:`d` = ``cond_dim``
(:func:`pixelcnn_n_parameters`; masked weights are stored, so counted):

.. math::
    N = (C_\text{in} k^2 + 1)\,c + L\,(9c + 1)\,c + (c + 1)\,C_\text{out}
        + [d > 0]\,(L + 1)(d + 1)\,c .

A forward pass costs about :math:`HW c\,(C_\text{in} k^2 + 9Lc + C_\text{out})`
multiply-adds per example and pass (28 × 28, :math:`k = 7`: 0.03 G for
:math:`c = 32`, :math:`L = 4`; 0.15 G for :math:`c = 64`, :math:`L = 5`);
a training step costs about three passes.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vaecore._checks import check_positive_int, check_tensor

__all__ = ["causal_mask", "MaskedConv2d", "PixelCNN", "pixelcnn_n_parameters"]


def causal_mask(kernel_size: int, mask_type: str) -> torch.Tensor:
    """The ``(k, k)`` mask: 1 above the centre row and left of the centre; the centre 1 for ``"B"``."""
    if mask_type not in ("A", "B"):
        raise ValueError(f"mask_type: expected 'A' or 'B', got {mask_type!r}")
    k = check_positive_int("kernel_size", kernel_size)
    if k % 2 == 0:
        raise ValueError(f"kernel_size: expected an odd size (a centre pixel), got {k}")
    mask = torch.ones(k, k)
    mask[k // 2, k // 2 + (mask_type == "B"):] = 0
    mask[k // 2 + 1:] = 0
    return mask


class MaskedConv2d(nn.Conv2d):
    """A same-size ``Conv2d`` (odd kernel, stride 1) whose kernel is multiplied by :func:`causal_mask`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, mask_type: str):
        mask = causal_mask(kernel_size, mask_type)
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.mask_type = mask_type
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the masked convolution of ``x`` ``(B, C_in, H, W)``: ``(B, C_out, H, W)``."""
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


def pixelcnn_n_parameters(in_channels: int, out_channels: int, channels: int, n_layers: int,
                          first_kernel: int = 7, cond_dim: int = 0) -> int:
    """The number of parameters of :class:`PixelCNN` with these sizes (the formula above)."""
    c, d = channels, cond_dim
    n = (in_channels * first_kernel ** 2 + 1) * c + n_layers * (9 * c + 1) * c
    return n + (c + 1) * out_channels + ((n_layers + 1) * (d + 1) * c if d else 0)


class PixelCNN(nn.Module):
    r"""x ``(B, in_channels, H, W)`` [, cond ``(B, cond_dim)``] → logits ``(B, out_channels, H, W)``.

    ``first``: type-A ``first_kernel`` convolution; ``layers``: ``n_layers``
    residual blocks :math:`h \leftarrow h + \mathrm{conv_B}(\mathrm{ReLU}(h))`;
    ``to_out``: ReLU and a 1 × 1 convolution. With ``cond_dim > 0``,
    ``to_bias[l](cond)`` is added to the output of masked layer ``l``.
    The logits at pixel :math:`i` depend on ``x`` at pixels :math:`j < i` only.
    """

    def __init__(self, in_channels: int, out_channels: int, channels: int = 64,
                 n_layers: int = 5, first_kernel: int = 7, cond_dim: int = 0):
        super().__init__()
        self.in_channels = check_positive_int("in_channels", in_channels)
        check_positive_int("n_layers", n_layers)
        self.cond_dim = cond_dim
        if cond_dim:
            check_positive_int("cond_dim", cond_dim)
        self.first = MaskedConv2d(in_channels, channels, first_kernel, "A")
        self.layers = nn.ModuleList(MaskedConv2d(channels, channels, 3, "B")
                                    for _ in range(n_layers))
        self.to_out = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, out_channels, 1))
        self.to_bias = nn.ModuleList(nn.Linear(cond_dim, channels)
                                     for _ in range(n_layers + 1)) if cond_dim else None

    def _bias(self, l: int, cond):
        return 0.0 if cond is None else self.to_bias[l](cond)[:, :, None, None]

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Return the logits ``(B, out_channels, H, W)`` of every conditional in one pass."""
        check_tensor("x", x, ndim=4)
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x: expected {self.in_channels} channels (B, C, H, W), "
                             f"got shape {tuple(x.shape)}")
        if (cond is None) != (self.to_bias is None):
            expected = "a (B, cond_dim) tensor" if self.cond_dim else "None"
            raise ValueError(f"cond: expected {expected} for cond_dim={self.cond_dim}")
        if cond is not None:
            check_tensor("cond", cond, ndim=2)
        h = self.first(x) + self._bias(0, cond)
        for l, layer in enumerate(self.layers, start=1):
            h = h + layer(torch.relu(h)) + self._bias(l, cond)
        return self.to_out(h)
