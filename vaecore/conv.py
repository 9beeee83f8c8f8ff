"""Convolutional encoders and decoders.

:class:`ConvEncoder` and :class:`ConvDecoder`: stride-2 convolutions, no skips,
between an image and a flat latent vector.

Each stride-2 convolution (kernel 4, padding 1) halves the height and width;
each stride-2 transposed convolution doubles them. With ``len(channels)``
such layers the image sides must be divisible by ``2 ** len(channels)`` (by 4
for the defaults, so ``(C, 28, 28)`` and ``(C, 32, 32)`` both work).
The decoder returns logits or distribution parameters, never clamped
probabilities.

:class:`GridEncoder` and :class:`GridDecoder`: the nets of van den Oord et al.
(2017), small: an image ↔ a grid of vectors a quarter of its height and width
(two stride-2 convolutions, a 3×3 convolution and residual blocks). They serve
models whose latent is such a grid: the VQ-VAE (:mod:`vaecore.vq_vae`) and, through
:class:`GridGaussianEncoder` and :class:`GridGaussianDecoder`, a Gaussian VAE with
a grid latent that the flat interface of :class:`vaecore.vae.VAE` can hold.
"""
from __future__ import annotations

import torch
from torch import nn

from vaecore._checks import (check_dtype, check_event_shape, check_latent, check_positive_int,
                             check_tensor)

__all__ = ["ConvEncoder", "ConvDecoder", "feature_size", "ResidualBlock", "GridEncoder",
           "GridDecoder", "GridGaussianEncoder", "GridGaussianDecoder"]


def feature_size(shape, n_halvings: int) -> tuple[int, int]:
    """Height and width after ``n_halvings`` stride-2 layers; ``ValueError`` if not exact."""
    if len(shape) != 3:
        raise ValueError(f"expected an image shape (C, H, W), got {tuple(shape)}")
    _, height, width = shape
    factor = 2 ** n_halvings
    if height % factor or width % factor:
        raise ValueError(f"expected height and width divisible by {factor} "
                         f"({n_halvings} stride-2 layers), got {height}x{width}")
    return height // factor, width // factor


class ConvEncoder(nn.Module):
    """x ``(B, C, H, W)`` → ``(mu, logvar)``, each ``(B, latent_dim)``.

    ``body``: for each entry of ``channels`` a ``Conv2d(kernel 4, stride 2,
    padding 1) → ReLU``, then flatten and ``Linear(hidden) → ReLU``; the heads
    ``to_mu`` and ``to_logvar`` are linear.
    """

    def __init__(self, in_shape, latent_dim: int, channels=(32, 64), hidden: int = 256):
        super().__init__()
        self.in_shape = tuple(in_shape)
        self.latent_dim = latent_dim = check_positive_int("latent_dim", latent_dim)
        height, width = feature_size(self.in_shape, len(channels))
        layers: list[nn.Module] = []
        for c_in, c_out in zip((self.in_shape[0], *channels[:-1]), channels):
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU()]
        layers += [nn.Flatten(), nn.Linear(channels[-1] * height * width, hidden), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.to_mu = nn.Linear(hidden, latent_dim)
        self.to_logvar = nn.Linear(hidden, latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(mu, logvar)``, each ``(B, latent_dim)``."""
        h = self.body(check_event_shape("x", x, self.in_shape, self.to_mu.weight.dtype))
        return self.to_mu(h), self.to_logvar(h)


class ConvDecoder(nn.Module):
    """z ``(B, latent_dim)`` → parameters of p(x|z), shaped ``(B, C, H, W)``.

    ``body``: ``Linear(hidden) → ReLU → Linear → ReLU``, reshaped to
    ``channels[0]`` feature maps of size ``(H, W) / 2**len(channels)``, then a
    ``ConvTranspose2d(kernel 4, stride 2, padding 1) → ReLU`` between
    consecutive entries of ``channels``. The head ``to_x`` is the last
    transposed convolution, giving logits (Bernoulli) or the mean (Gaussian);
    with ``learned_var=True`` a twin head ``to_logvar`` gives a per-pixel
    log-variance and the decoder returns ``(mean, logvar)``.
    """

    def __init__(self, latent_dim: int, out_shape, channels=(64, 32), hidden: int = 256,
                 learned_var: bool = False):
        super().__init__()
        self.latent_dim = latent_dim = check_positive_int("latent_dim", latent_dim)
        self.out_shape = tuple(out_shape)
        self.learned_var = learned_var
        height, width = feature_size(self.out_shape, len(channels))
        layers: list[nn.Module] = [
            nn.Linear(latent_dim, hidden), nn.ReLU(),
            nn.Linear(hidden, channels[0] * height * width), nn.ReLU(),
            nn.Unflatten(1, (channels[0], height, width))]
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        n_channels = self.out_shape[0]
        self.to_x = nn.ConvTranspose2d(channels[-1], n_channels, 4, stride=2, padding=1)
        self.to_logvar = (nn.ConvTranspose2d(channels[-1], n_channels, 4, stride=2, padding=1)
                          if learned_var else None)

    def forward(self, z: torch.Tensor):
        """Return x_logits (or the mean) ``(B, C, H, W)``; ``(mean, logvar)`` if learned_var."""
        h = self.body(check_latent(z, self.latent_dim, dtype=self.to_x.weight.dtype))
        if self.to_logvar is None:
            return self.to_x(h)
        return self.to_x(h), self.to_logvar(h)


class ResidualBlock(nn.Module):
    """``x + Conv1x1(ReLU(Conv3x3(ReLU(x))))``, ``channels`` in and out, ``hidden`` between
    (van den Oord et al., 2017, Section 4.1)."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        channels = check_positive_int("channels", channels)
        hidden = check_positive_int("hidden", hidden)
        self.net = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, hidden, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(hidden, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


def _grid_size(in_shape) -> tuple[int, int]:
    return feature_size(tuple(in_shape), 2)


def _check_nets(hidden, n_res) -> tuple[int, int]:
    hidden = check_positive_int("hidden", hidden)
    if hidden < 2:
        raise ValueError(f"hidden: expected at least 2 channels, got {hidden}")
    if isinstance(n_res, bool) or not isinstance(n_res, int) or n_res < 0:
        raise ValueError(f"n_res: expected an integer >= 0 (residual blocks), got {n_res!r}")
    return hidden, n_res


class GridEncoder(nn.Module):
    """Images ``(B, *in_shape)`` → a grid ``(B, out_channels, H/4, W/4)``.

    ``Conv(4, stride 2) → ReLU → Conv(4, stride 2) → ReLU → Conv(3)``, ``n_res``
    :class:`ResidualBlock` (``hidden // 2`` channels inside), ``ReLU → Conv(1)`` to
    ``out_channels``; ``hidden // 2`` then ``hidden`` channels. ``H`` and ``W`` must be
    divisible by 4 (28 → 7, 32 → 8).
    """

    def __init__(self, in_shape, out_channels: int, hidden: int = 32, n_res: int = 2):
        super().__init__()
        self.in_shape = tuple(in_shape)
        self.grid = _grid_size(self.in_shape)
        self.out_channels = check_positive_int("out_channels", out_channels)
        hidden, n_res = _check_nets(hidden, n_res)
        self.net = nn.Sequential(
            nn.Conv2d(self.in_shape[0], hidden // 2, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(hidden // 2, hidden, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, padding=1),
            *(ResidualBlock(hidden, hidden // 2) for _ in range(n_res)),
            nn.ReLU(), nn.Conv2d(hidden, out_channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the grid ``(B, out_channels, H/4, W/4)``."""
        return self.net(check_event_shape("x", x, self.in_shape, self.net[0].weight.dtype))


class GridDecoder(nn.Module):
    """A grid ``(B, in_channels, h, w)`` → ``(B, out_channels, 4h, 4w)``, the mirror of
    :class:`GridEncoder`: ``Conv(3)``, ``n_res`` :class:`ResidualBlock`, ``ReLU →
    ConvTranspose(4, stride 2) → ReLU → ConvTranspose(4, stride 2)``. The output is
    unbounded (logits, means, log-scales)."""

    def __init__(self, in_channels: int, out_channels: int, hidden: int = 32, n_res: int = 2):
        super().__init__()
        self.in_channels = check_positive_int("in_channels", in_channels)
        self.out_channels = check_positive_int("out_channels", out_channels)
        hidden, n_res = _check_nets(hidden, n_res)
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 3, padding=1),
            *(ResidualBlock(hidden, hidden // 2) for _ in range(n_res)), nn.ReLU(),
            nn.ConvTranspose2d(hidden, hidden // 2, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(hidden // 2, out_channels, 4, stride=2, padding=1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Return ``(B, out_channels, 4h, 4w)``."""
        check_tensor("z", z, ndim=4)
        if z.shape[1] != self.in_channels:
            raise ValueError(f"z: expected a grid (B, {self.in_channels}, h, w), "
                             f"got {tuple(z.shape)}")
        return self.net(check_dtype("z", z, self.net[0].weight.dtype))


class GridGaussianEncoder(nn.Module):
    r"""Images → ``(mu, logvar)`` of a Gaussian over a grid latent, flattened to
    ``(B, latent_dim)`` with ``latent_dim = latent_channels · H/4 · W/4`` (a
    :class:`GridEncoder` with ``2 · latent_channels`` outputs: means, then log-variances)."""

    def __init__(self, in_shape, latent_channels: int, hidden: int = 32, n_res: int = 2):
        super().__init__()
        self.latent_channels = check_positive_int("latent_channels", latent_channels)
        self.net = GridEncoder(in_shape, 2 * latent_channels, hidden, n_res)
        height, width = self.net.grid
        self.latent_dim = latent_channels * height * width

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(mu, logvar)``, each ``(B, latent_dim)`` (channel, row, column order)."""
        mu, logvar = self.net(x).chunk(2, dim=1)
        return mu.flatten(1), logvar.flatten(1)


class GridGaussianDecoder(nn.Module):
    """``z`` ``(B, latent_dim)`` → parameters of ``p(x | z)`` ``(B, *out_shape)``: ``z``
    reshaped to ``(latent_channels, H/4, W/4)``, then a :class:`GridDecoder` to
    ``out_shape[0]`` channels (``params_per_channel = 2``: ``(mean, log_scale)`` of
    :data:`vaecore.discretized_logistic.discretized_logistic`, ``out_shape[0]`` each)."""

    def __init__(self, latent_channels: int, out_shape, hidden: int = 32, n_res: int = 2,
                 params_per_channel: int = 1):
        super().__init__()
        self.out_shape = tuple(out_shape)
        self.grid = _grid_size(self.out_shape)
        self.latent_channels = check_positive_int("latent_channels", latent_channels)
        if params_per_channel not in (1, 2):
            raise ValueError(f"params_per_channel: expected 1 (logits or means) or 2 "
                             f"(mean, log_scale), got {params_per_channel!r}")
        self.params_per_channel = params_per_channel
        self.latent_dim = latent_channels * self.grid[0] * self.grid[1]
        self.net = GridDecoder(latent_channels, params_per_channel * self.out_shape[0], hidden,
                               n_res)

    def forward(self, z: torch.Tensor):
        """Return logits ``(B, *out_shape)``, or ``(mean, log_scale)`` with two params."""
        z = check_latent(z, self.latent_dim, dtype=self.net.net[0].weight.dtype)
        out = self.net(z.view(len(z), self.latent_channels, *self.grid))
        return out if self.params_per_channel == 1 else tuple(out.chunk(2, dim=1))
