r"""The discretized logistic: a likelihood of 8-bit images, in probabilities, not densities.

An 8-bit pixel takes one of 256 levels; scaled to ``[0, 1]`` the level
:math:`k` is :math:`x = k / 255`. The decoder gives each sub-pixel a mean
:math:`\mu` and a log-scale :math:`\log s` of a logistic distribution, and
level :math:`k` receives the logistic mass of its bin of width
:math:`\Delta = 1/255` centred on :math:`x`; the edge levels 0 and 255 take the
tails (Salimans et al., 2017, PixelCNN++; Kingma et al., 2016, IAF):

.. math::
    P(x \mid \mu, s) = \begin{cases}
      \sigma\big(\tfrac{x + \Delta/2 - \mu}{s}\big) & x = 0 \\
      \sigma\big(\tfrac{x + \Delta/2 - \mu}{s}\big) - \sigma\big(\tfrac{x - \Delta/2 - \mu}{s}\big)
        & 0 < x < 1 \\
      1 - \sigma\big(\tfrac{x - \Delta/2 - \mu}{s}\big) & x = 1
    \end{cases}

Equation (discretized-logistic). The 256 probabilities sum to 1, so
:math:`-\log_2 P(x)` summed over an image is a code length in bits, and minus
the ELBO divided by :math:`D_x \ln 2` is an upper bound on the negative
log-likelihood in bits per dimension, the unit of the literature
(:func:`vaecore.units.bits_per_dim`).

Reduction rule: :func:`log_prob_discretized_logistic` returns ``(B,)``, summed
over the event dimensions (channels, pixels); nothing here averages over the
batch. The decoder returns the pair ``(mean, log_scale)`` (see
:class:`MeanLogScaleDecoder`), unclamped.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vaecore._checks import check_broadcastable, check_same_shape, check_tensor
from vaecore.likelihoods import Likelihood

__all__ = ["N_LEVELS", "GRID_TOL", "log_prob_discretized_logistic", "discretized_logistic",
           "MeanLogScaleDecoder"]

N_LEVELS = 256
#: How far, in levels, a value may lie from k/255 and still count as level k (float rounding).
GRID_TOL = 1e-3
_TOP = N_LEVELS - 1
_LOG_TOP = math.log(_TOP)


def _levels(x: torch.Tensor) -> torch.Tensor:
    """The level ``k`` (0..255, float) of each value of ``x``; ``ValueError`` off the grid."""
    scaled = x * _TOP
    k = scaled.round()
    low, high, off = torch.stack([scaled.amin(), scaled.amax(), (scaled - k).abs().amax()]).tolist()
    if math.isnan(low + high + off):
        raise ValueError("x: expected 8-bit levels k/255 in [0, 1], got NaN values")
    if low < -GRID_TOL or high > _TOP + GRID_TOL:
        low, high = low / _TOP, high / _TOP
        hint = ("scale 8-bit images to [0, 1] (x / 255)" if low >= 0 and 2 <= high <= _TOP
                else "map the data to [0, 1]")
        raise ValueError(f"x: expected 8-bit levels k/255 in [0, 1], got values in "
                         f"[{low:.4g}, {high:.4g}]; {hint}")
    if off > GRID_TOL:
        raise ValueError(f"x: expected 8-bit levels k/255 (k = 0..255), got values up to "
                         f"{off:.3g} levels off that grid; quantise them "
                         "((x * 255).round() / 255), or use a density "
                         "(vaecore.likelihoods.normal) for continuous data")
    return k.clamp(0, _TOP)


def _log1mexp(log_d: torch.Tensor) -> torch.Tensor:
    r""":math:`\log(1 - e^{-d})` for :math:`d = e^{\log d} > 0`, accurate for every :math:`d`.

    ``expm1`` where :math:`d \le \ln 2`, ``log1p`` above (Mächler, 2012), and
    :math:`\log d - d/2` where :math:`d` is so small that it might underflow
    (the next term, :math:`d^2/24`, is below float64's rounding there).
    Each branch sees only arguments where it is finite, so gradients are too.
    """
    tiny, large = log_d < -20.0, log_d > math.log(math.log(2))
    d_tiny = torch.exp(log_d.clamp(max=-20.0))
    d_mid = torch.exp(log_d.clamp(-20.0, math.log(math.log(2))))
    d_large = torch.exp(log_d.clamp(math.log(math.log(2)), 10.0))  # e^{-e^10} is 0 already
    return torch.where(tiny, log_d - d_tiny / 2,
                       torch.where(large, torch.log1p(-torch.exp(-d_large)),
                                   torch.log(-torch.expm1(-d_mid))))


def log_prob_discretized_logistic(x: torch.Tensor, mean: torch.Tensor,
                                  log_scale) -> torch.Tensor:
    r"""Discretized logistic log-probability of 8-bit images, summed over event dimensions.

    The bin of :math:`x` has the standardised edges :math:`a = (x + \Delta/2 - \mu)/s`
    and :math:`b = (x - \Delta/2 - \mu)/s`, with :math:`a - b = \Delta / s`;
    the identity :math:`\sigma(a) - \sigma(b) = \sigma(a)\,\sigma(-b)\,(1 - e^{-(a-b)})`
    turns the log of the difference of CDFs into a sum of three stable terms:

    .. math::
        \log P(x \mid \mu, s) = \underbrace{\log\sigma(a)}_{0 \text{ if } x = 1}
        + \underbrace{\log\sigma(-b)}_{0 \text{ if } x = 0}
        + \underbrace{\log\big(1 - e^{-\Delta/s}\big)}_{0 \text{ at the edges}}

    with :math:`\log\sigma(t) = -\operatorname{softplus}(-t)`
    (Equation (discretized-logistic-stable)). No difference of
    two nearly equal numbers is formed, so far tails and tiny bins
    (:math:`s \gg \Delta`) keep their precision without a density
    approximation, and the edge levels 0 and 255 take the whole tails.

    Args:
        x: images ``(B, ...)``, float, on the grid :math:`k/255`,
            :math:`k = 0, \dots, 255`, up to :data:`GRID_TOL` levels (else
            ``ValueError``: scale 8-bit images by 1/255; quantise other data).
        mean: :math:`\mu`, same shape as ``x``; any real value.
        log_scale: :math:`\log s`, a tensor broadcastable to ``x`` or a
            float; unclamped (finite results for :math:`|\log s| \lesssim 80`
            in float32).

    Returns:
        ``(B,)``: :math:`\log P(x \mid \mu, s)` per example in nats, summed over all
        non-batch dimensions (maximised), in the promoted dtype of the inputs.
    """
    check_tensor("x", x, min_dim=2)
    check_tensor("mean", mean, min_dim=2)
    check_same_shape(x=x, mean=mean)
    log_scale = check_broadcastable("log_scale", log_scale, x)
    dtype = torch.promote_types(torch.promote_types(x.dtype, mean.dtype),
                                log_scale.dtype)
    k = _levels(x.to(dtype))
    mean, log_scale = mean.to(dtype), log_scale.to(dtype)
    inv_scale = torch.exp(-log_scale)
    # $a = (x + \Delta/2 - \mu) / s$, $b = (x - \Delta/2 - \mu) / s$; each edge is
    # computed as $(k \pm 1/2)/255$, so neighbouring levels share it bit for bit and
    # the masses add to 1
    a, b = ((k + 0.5) / _TOP - mean) * inv_scale, ((k - 0.5) / _TOP - mean) * inv_scale
    bottom, top = k == 0, k == _TOP
    # $\log P = \log\sigma(a) + \log\sigma(-b) + \log(1 - e^{-\Delta/s})$, the edges
    # dropping terms
    log_p = (torch.where(top, 0.0, -F.softplus(-a))
             + torch.where(bottom, 0.0, -F.softplus(b))
             + torch.where(bottom | top, 0.0, _log1mexp(-log_scale - _LOG_TOP)))
    return log_p.flatten(1).sum(1)


def _unpack(params) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean, log_scale)`` from the decoder output, the log-scale as a tensor."""
    if not (isinstance(params, (tuple, list)) and len(params) == 2):
        raise ValueError("discretized logistic: expected decoder output (mean, log_scale), "
                         f"got {type(params).__name__}")
    mean, log_scale = params
    check_tensor("mean", mean, min_dim=2)
    return mean, check_broadcastable("log_scale", log_scale, mean)


def _log_prob(x: torch.Tensor, params) -> torch.Tensor:
    return log_prob_discretized_logistic(x, *_unpack(params))


def _mean(params) -> torch.Tensor:
    r""":math:`E[x \mid z] = \frac1{255} \sum_{k=1}^{255} P(x \ge k/255) = \frac1{255}
    \sum_{k=1}^{255} \sigma\big(\tfrac{\mu - (k - 1/2)/255}{s}\big)`, same shape as the mean."""
    mean, log_scale = _unpack(params)
    inv_scale = torch.exp(-log_scale)
    total = torch.zeros_like(mean)
    for k in range(1, N_LEVELS):  # one pass per level: memory stays that of one image batch
        total += torch.sigmoid((mean - (k - 0.5) / _TOP) * inv_scale)
    return total / _TOP


def _sample(params, generator=None) -> torch.Tensor:
    r"""Draw :math:`y = \mu + s \log\frac{u}{1 - u}`, :math:`u \sim U(0, 1)`; round it to a level."""
    mean, log_scale = _unpack(params)
    u = torch.rand(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
    y = mean + torch.exp(log_scale) * torch.logit(u)
    return (y * _TOP).round().clamp(0, _TOP) / _TOP


#: The :class:`~vaecore.likelihoods.Likelihood` of a decoder returning ``(mean, log_scale)``.
discretized_logistic = Likelihood("discretized_logistic", _log_prob, _mean, _sample)


class MeanLogScaleDecoder(nn.Module):
    """z ``(B, latent_dim)`` → ``(mean, log_scale)``, each ``(B, C, H, W)``.

    Wraps a decoder whose output has ``2 C`` channels (``decoder.out_shape``
    is ``(2 C, H, W)``): the first ``C`` are the means, the last ``C`` the
    log-scales of :data:`discretized_logistic`, one pair per sub-pixel. Its
    own ``out_shape`` is ``(C, H, W)``, the shape of an image.
    """

    def __init__(self, decoder: nn.Module):
        super().__init__()
        channels, *size = decoder.out_shape
        if channels % 2:
            raise ValueError(f"decoder: expected an even number of output channels "
                             f"(means, then log-scales), got out_shape {tuple(decoder.out_shape)}")
        self.decoder = decoder
        self.latent_dim, self.out_shape = decoder.latent_dim, (channels // 2, *size)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(mean, log_scale)``, each ``(B, *out_shape)``, unclamped."""
        mean, log_scale = self.decoder(z).chunk(2, dim=1)
        return mean, log_scale
