r"""Residual encoder and decoder for 32x32 colour images.

A residual block computes :math:`\mathrm{out} = x + f(x)` with
:math:`f = \mathrm{BN} \circ \mathrm{conv}_{3\times3} \circ \mathrm{ReLU}
\circ \mathrm{BN} \circ \mathrm{conv}_{3\times3}`: the skip connection
jumps over the pair of convolutions (two BatchNorms, one non-linearity).
No ReLU follows the sum, so the skip path is an exact identity and a block
initialised with ``f = 0`` is the identity map; the non-linearities between
blocks come from the down- and up-sampling stages.

The encoder downsamples with stride-2 convolutions, the decoder upsamples
with ``nn.Upsample(scale_factor=2, mode="nearest")`` followed by a
convolution. With ``len(channels)`` stages the image sides must be divisible
by ``2 ** len(channels)`` (by 8 for the defaults: 32x32 works, 28x28 does
not). The decoder returns logits. Both nets contain BatchNorm: call
``model.eval()`` before evaluating or sampling, ``model.train()`` to train.
"""
from __future__ import annotations

import torch
from torch import nn

from vaecore.conv import feature_size
from vaecore._checks import check_event_shape, check_latent, check_positive_int

__all__ = ["ResidualBlock", "ResNetEncoder", "ResNetDecoder"]


def conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding 1 and no bias (a BatchNorm follows it)."""
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)


def conv_bn_relu(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    """``conv3x3 → BatchNorm → ReLU``: one down-sampling (stride 2) or plain stage."""
    return nn.Sequential(conv3x3(c_in, c_out, stride), nn.BatchNorm2d(c_out), nn.ReLU())


class ResidualBlock(nn.Module):
    """``x + f(x)`` on ``(B, channels, H, W)``; shape unchanged.

    ``f = conv3x3 → BatchNorm → ReLU → conv3x3 → BatchNorm`` (the ``residual``
    attribute); no ReLU after the sum (see the module docstring).
    Equation (residual-block).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.residual = nn.Sequential(
            conv3x3(channels, channels), nn.BatchNorm2d(channels), nn.ReLU(),
            conv3x3(channels, channels), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x + f(x)``, the same shape as ``x``."""
        return x + self.residual(x)


class ResNetEncoder(nn.Module):
    """x ``(B, C, H, W)`` → ``(mu, logvar)``, each ``(B, latent_dim)``.

    ``body``: for each entry ``c`` of ``channels`` a stride-2
    ``conv3x3 → BatchNorm → ReLU`` to ``c`` channels followed by a
    ``ResidualBlock(c)``; then flatten. The heads ``to_mu`` and ``to_logvar``
    are linear. For ``(3, 32, 32)`` and the default channels the features are
    ``128 x 4 x 4``.
    """

    def __init__(self, in_shape, latent_dim: int, channels=(32, 64, 128)):
        super().__init__()
        self.in_shape = tuple(in_shape)
        self.latent_dim = latent_dim = check_positive_int("latent_dim", latent_dim)
        height, width = feature_size(self.in_shape, len(channels))
        layers: list[nn.Module] = []
        for c_in, c_out in zip((self.in_shape[0], *channels[:-1]), channels):
            layers += [conv_bn_relu(c_in, c_out, stride=2), ResidualBlock(c_out)]
        self.body = nn.Sequential(*layers, nn.Flatten())
        n_features = channels[-1] * height * width
        self.to_mu = nn.Linear(n_features, latent_dim)
        self.to_logvar = nn.Linear(n_features, latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(mu, logvar)``, each ``(B, latent_dim)``."""
        h = self.body(check_event_shape("x", x, self.in_shape, self.to_mu.weight.dtype))
        return self.to_mu(h), self.to_logvar(h)


class ResNetDecoder(nn.Module):
    """z ``(B, latent_dim)`` → x_logits ``(B, C, H, W)``.

    ``body``: ``Linear → ReLU`` to ``channels[0]`` maps of size
    ``(H, W) / 2**len(channels)`` and a ``ResidualBlock(channels[0])``; then,
    between consecutive entries of ``channels``, ``Upsample(x2) → conv3x3 →
    BatchNorm → ReLU → ResidualBlock``. The head ``to_x`` is a last
    ``Upsample(x2) → conv3x3`` to the image channels, giving logits.
    """

    def __init__(self, latent_dim: int, out_shape=(3, 32, 32), channels=(128, 64, 32)):
        super().__init__()
        self.latent_dim = latent_dim = check_positive_int("latent_dim", latent_dim)
        self.out_shape = tuple(out_shape)
        height, width = feature_size(self.out_shape, len(channels))
        layers: list[nn.Module] = [
            nn.Linear(latent_dim, channels[0] * height * width), nn.ReLU(),
            nn.Unflatten(1, (channels[0], height, width)), ResidualBlock(channels[0])]
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"),
                       conv_bn_relu(c_in, c_out), ResidualBlock(c_out)]
        self.body = nn.Sequential(*layers)
        self.to_x = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                  nn.Conv2d(channels[-1], self.out_shape[0], 3, padding=1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Return x_logits ``(B, C, H, W)`` (unclamped)."""
        z = check_latent(z, self.latent_dim, dtype=self.to_x[1].weight.dtype)
        return self.to_x(self.body(z))
