r"""PixelCNN models: a decoder :math:`p(x \mid z)` for binary images and a prior over code grids.

Both compute every conditional of :math:`p(x) = \prod_i p(x_i \mid x_{<i})`
(raster order) in one pass of a :class:`vaecore.masked_conv.PixelCNN`, and
sample pixel by pixel, one pass per pixel (:func:`sample_raster`).

- :class:`PixelCNNDecoder` is an autoregressive Bernoulli decoder
  conditioned on :math:`z`:
  :math:`\log p(x \mid z) = \sum_i \log \mathrm{Bern}(x_i;\, \sigma(\ell_i(x_{<i}, z)))`.
  It sees the pixels :math:`x_{<i}`, so it can model an image well without
  :math:`z`, and a VAE with it may leave :math:`z` unused (posterior
  collapse). Its forward pass returns :class:`AutoregressiveParams`, which
  :data:`autoregressive_bernoulli`, a :class:`~vaecore.likelihoods.Likelihood`,
  reads: ``VAE(encoder, PixelCNNDecoder(...), likelihood=autoregressive_bernoulli)``.
- :class:`PixelCNNCodePrior` is a categorical model of a grid of discrete
  codes ``(B, H, W)`` in ``{0, …, K-1}`` (the prior of a VQ-VAE, van den
  Oord et al., 2017): :math:`\log p(c) = \sum_i \log \mathrm{softmax}(\ell_i(c_{<i}))_{c_i}`.

Reduction rule: ``log_prob`` returns ``(B,)``, summed over the pixels; nothing
here averages over the batch.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from vaecore._checks import check_code_grid, check_event_shape, check_latent, check_positive_int
from vaecore.likelihoods import Likelihood, log_prob_bernoulli
from vaecore.masked_conv import PixelCNN

__all__ = ["sample_raster", "AutoregressiveParams", "PixelCNNDecoder",
           "autoregressive_bernoulli", "PixelCNNCodePrior"]


def sample_raster(logits_fn: Callable, x: torch.Tensor, draw: Callable) -> torch.Tensor:
    """Fill ``x`` (``(..., H, W)``, modified in place and returned) pixel by pixel in raster order.

    For each pixel ``(r, c)``: ``logits = logits_fn(x)`` (``(..., H, W)``), then
    ``x[..., r, c] = draw(logits[..., r, c])``. Correct when the logits at a
    pixel depend only on earlier pixels; costs ``H * W`` calls of ``logits_fn``.
    """
    height, width = x.shape[-2:]
    with torch.no_grad():
        for r in range(height):
            for c in range(width):
                x[..., r, c] = draw(logits_fn(x)[..., r, c])
    return x


class AutoregressiveParams(NamedTuple):
    """What :class:`PixelCNNDecoder` returns: the decoder itself and ``z`` ``(B, D)``."""
    decoder: nn.Module
    z: torch.Tensor


class PixelCNNDecoder(nn.Module):
    """z ``(B, latent_dim)`` → :class:`AutoregressiveParams` of a PixelCNN Bernoulli p(x|z).

    ``net`` is a :class:`~vaecore.masked_conv.PixelCNN` with ``C`` input and
    output channels and ``cond_dim = latent_dim``: ``z`` enters every masked
    layer as a per-channel bias. ``logits(x, z)`` returns the logits
    ``(B, *out_shape)`` of every :math:`p(x_i = 1 \\mid x_{<i}, z)` in one pass.
    The defaults on ``(1, 28, 28)`` with ``latent_dim = 32`` have 43,905
    parameters and cost 0.03 G multiply-adds per image and pass.
    """

    def __init__(self, latent_dim: int, out_shape=(1, 28, 28), channels: int = 32,
                 n_layers: int = 4, first_kernel: int = 7):
        super().__init__()
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        self.out_shape = tuple(out_shape)
        if len(self.out_shape) != 3:
            raise ValueError(f"out_shape: expected (C, H, W), got {self.out_shape}")
        n_channels = self.out_shape[0]
        self.net = PixelCNN(n_channels, n_channels, channels, n_layers, first_kernel,
                            cond_dim=latent_dim)

    def forward(self, z: torch.Tensor) -> AutoregressiveParams:
        """Return ``AutoregressiveParams(self, z)``: the likelihood runs the net on ``x``."""
        return AutoregressiveParams(self, check_latent(z, self.latent_dim,
                                                       dtype=self.net.first.weight.dtype))

    def logits(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The logits ``(B, *out_shape)``; the one at pixel i sees ``x`` at pixels before i only."""
        return self.net(check_event_shape("x", x, self.out_shape, self.net.first.weight.dtype), z)


def _log_prob(x: torch.Tensor, params: AutoregressiveParams) -> torch.Tensor:
    r""":math:`\log p(x \mid z) = \sum_i \log \mathrm{Bern}(x_i; \sigma(\ell_i))`, ``(B,)``."""
    return log_prob_bernoulli(x, params.decoder.logits(x, params.z))


def _sample(params: AutoregressiveParams, generator=None) -> torch.Tensor:
    """A binary draw ``x ~ p(x | z)``, ``(B, *out_shape)``, pixel by pixel."""
    decoder, z = params
    x = z.new_zeros(len(z), *decoder.out_shape)
    return sample_raster(lambda x_: decoder.logits(x_, z), x,
                         lambda logits: torch.bernoulli(torch.sigmoid(logits), generator=generator))


def _mean(params: AutoregressiveParams) -> torch.Tensor:
    r"""Not :math:`E[x \mid z]`, which has no closed form here: the probabilities
    :math:`p(x_i = 1 \mid x_{<i}, z)` along one draw ``x ~ p(x | z)`` (global generator)."""
    decoder, z = params
    with torch.no_grad():
        return torch.sigmoid(decoder.logits(_sample(params), z))


#: The :class:`~vaecore.likelihoods.Likelihood` of a :class:`PixelCNNDecoder`.
autoregressive_bernoulli = Likelihood("autoregressive_bernoulli", _log_prob, _mean, _sample)


class PixelCNNCodePrior(nn.Module):
    r"""A PixelCNN over grids of ``n_codes`` discrete codes: ``log_prob(codes)`` and ``sample``.

    ``embed`` maps each code to an ``embed_dim`` vector, ``net`` (a
    :class:`~vaecore.masked_conv.PixelCNN`) gives ``n_codes`` logits per grid
    position: ``logits(codes)`` ``(B, n_codes, H, W)``.
    """

    def __init__(self, n_codes: int, grid=(7, 7), embed_dim: int = 32, channels: int = 64,
                 n_layers: int = 5, first_kernel: int = 5):
        super().__init__()
        self.n_codes = check_positive_int("n_codes", n_codes)
        self.grid = tuple(check_positive_int("grid", g) for g in grid)
        self.embed = nn.Embedding(n_codes, check_positive_int("embed_dim", embed_dim))
        self.net = PixelCNN(embed_dim, n_codes, channels, n_layers, first_kernel)

    def logits(self, codes: torch.Tensor) -> torch.Tensor:
        """The logits ``(B, n_codes, H, W)``; the ones at position i see codes before i only."""
        return self.net(self.embed(check_code_grid(codes, self.grid, self.n_codes)).permute(0, 3, 1, 2))

    def log_prob(self, codes: torch.Tensor) -> torch.Tensor:
        r""":math:`\log p(c) = \sum_i \log p(c_i \mid c_{<i})` in nats, ``(B,)`` (maximised)."""
        return -F.cross_entropy(self.logits(codes), codes, reduction="none").flatten(1).sum(1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``n`` code grids ``(n, H, W)`` (long) position by position."""
        codes = torch.zeros(check_positive_int("n", n), *self.grid, dtype=torch.long,
                            device=self.embed.weight.device)
        return sample_raster(self.logits, codes, lambda logits: torch.multinomial(
            torch.softmax(logits, -1), 1, generator=generator).squeeze(-1))
