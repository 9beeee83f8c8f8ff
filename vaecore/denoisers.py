"""The networks that predict the noise of a diffusion model, :math:`\varepsilon_\theta(x_t, t)`.

Both take the noisy input and the integer step ``t`` (shape ``(B,)``), embedded by
:class:`TimeEmbedding`, and return a prediction of the shape of the input:
:class:`MLPDenoiser` for flat vectors, :class:`GridDenoiser` for grids of channels (images,
or the latents of :class:`vaecore.kl_autoencoder.KLAutoencoder`). The loss and the sampler
that use them are in :mod:`vaecore.diffusion`.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ._checks import check_positive_int, check_tensor

__all__ = ["TimeEmbedding", "MLPDenoiser", "GridDenoiser"]


class TimeEmbedding(nn.Module):
    """Sinusoidal embedding of integer steps (Vaswani et al., 2017), ``(B,)`` → ``(B, dim)``."""

    def __init__(self, dim: int, max_period: float = 10_000.0):
        super().__init__()
        self.dim = check_positive_int("dim", dim)
        if dim % 2:
            raise ValueError(f"dim must be even, got {dim}")
        half = dim // 2
        self.register_buffer("frequencies", torch.exp(
            -math.log(max_period) * torch.arange(half, dtype=torch.float32) / half),
            persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angles = t.float()[:, None] * self.frequencies[None]
        return torch.cat([angles.sin(), angles.cos()], dim=1)


class MLPDenoiser(nn.Module):
    """:math:`\\varepsilon_\\theta(x_t, t)` for flat inputs ``(B, dim)``: an MLP on the input
    and the step's sinusoidal embedding, with SiLU activations."""

    def __init__(self, dim: int, hidden: int = 256, layers: int = 3, time_dim: int = 64):
        super().__init__()
        self.dim = check_positive_int("dim", dim)
        check_positive_int("layers", layers)
        self.time = nn.Sequential(TimeEmbedding(time_dim), nn.Linear(time_dim, hidden),
                                  nn.SiLU())
        self.inp = nn.Linear(dim, hidden)
        self.body = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(layers - 1))
        self.out = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        h = nn.functional.silu(self.inp(x.flatten(1)) + self.time(t))
        for layer in self.body:
            h = nn.functional.silu(layer(h))
        return self.out(h).view(shape)


class _TimeBlock(nn.Module):
    """A residual block of two 3 × 3 convolutions with the step's embedding added between them."""

    def __init__(self, hidden: int, time_dim: int):
        super().__init__()
        groups = math.gcd(8, hidden)
        self.norm1 = nn.GroupNorm(groups, hidden)
        self.conv1 = nn.Conv2d(hidden, hidden, 3, padding=1)
        self.time = nn.Linear(time_dim, hidden)
        self.norm2 = nn.GroupNorm(groups, hidden)
        self.conv2 = nn.Conv2d(hidden, hidden, 3, padding=1)

    def forward(self, h: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        r = self.conv1(nn.functional.silu(self.norm1(h))) + self.time(embedding)[:, :, None, None]
        return h + self.conv2(nn.functional.silu(self.norm2(r)))


class GridDenoiser(nn.Module):
    r""":math:`\varepsilon_\theta(x_t, t)` for grids ``(B, channels, H, W)``: a 3 × 3
    convolution to ``hidden`` channels, ``blocks`` residual blocks that each add the step's
    embedding (``time_dim`` values, an even number), then group normalisation, SiLU and a
    3 × 3 convolution back; no downsampling, so every position keeps its resolution.

    With ``patch`` > 1 the input's ``patch`` × ``patch`` blocks of pixels are first stacked
    as channels (``pixel_unshuffle``, a rearrangement that loses nothing) and the output
    unstacked, so the same network runs on a grid ``patch`` times smaller: on 28 × 28
    images with ``patch`` = 4 it sees a 7 × 7 grid of 16 values, as it would see a 7 × 7
    latent grid (the patches of vision transformers and of DiT; Peebles and Xie, 2023).
    H and W must be multiples of ``patch``.
    """

    def __init__(self, channels: int, hidden: int = 64, blocks: int = 4, time_dim: int = 64,
                 patch: int = 1):
        super().__init__()
        self.channels = check_positive_int("channels", channels)
        self.patch = check_positive_int("patch", patch)
        check_positive_int("hidden", hidden)
        check_positive_int("blocks", blocks)
        inner = channels * patch * patch
        self.time = nn.Sequential(TimeEmbedding(time_dim), nn.Linear(time_dim, time_dim),
                                  nn.SiLU())
        self.inp = nn.Conv2d(inner, hidden, 3, padding=1)
        self.blocks = nn.ModuleList(_TimeBlock(hidden, time_dim) for _ in range(blocks))
        self.out = nn.Sequential(nn.GroupNorm(math.gcd(8, hidden), hidden), nn.SiLU(),
                                 nn.Conv2d(hidden, inner, 3, padding=1))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        check_tensor("x", x, ndim=4)
        if x.shape[1] != self.channels or x.shape[2] % self.patch or x.shape[3] % self.patch:
            raise ValueError(f"expected x of shape (B, {self.channels}, H, W) with H and W "
                             f"multiples of {self.patch}, got {tuple(x.shape)}")
        if self.patch > 1:
            x = nn.functional.pixel_unshuffle(x, self.patch)
        embedding, h = self.time(t), self.inp(x)
        for block in self.blocks:
            h = block(h, embedding)
        out = self.out(h)
        return nn.functional.pixel_shuffle(out, self.patch) if self.patch > 1 else out
