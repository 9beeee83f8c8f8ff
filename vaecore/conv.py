"""Plain convolutional encoder and decoder (stride-2 convolutions, no skips).

Each stride-2 convolution (kernel 4, padding 1) halves the height and width;
each stride-2 transposed convolution doubles them. With ``len(channels)``
such layers the image sides must be divisible by ``2 ** len(channels)`` (by 4
for the defaults, so ``(C, 28, 28)`` and ``(C, 32, 32)`` both work).
The decoder returns logits or distribution parameters, never clamped
probabilities.
"""
from __future__ import annotations

import torch
from torch import nn

from vaecore._checks import check_event_shape, check_latent, check_positive_int

__all__ = ["ConvEncoder", "ConvDecoder", "feature_size"]


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
