r"""Keeping the latent code in use: KL schedules, free bits and a committed rate.

A VAE whose decoder can model :math:`x` well without :math:`z` (e.g. a
:class:`vaecore.pixelcnn.PixelCNNDecoder`) may settle where
:math:`q(z \mid x) = p(z)` for every :math:`x`: the KL term is 0 and the code
carries nothing (posterior collapse). The remedies here change the objective
or the posterior family, never the trainer; each is a ``fit`` loss or an
encoder:

- a KL weight :math:`\beta_t` of the training step :math:`t`: a linear
  warm-up (:func:`linear_warmup_weight`) or cyclical annealing (Fu et al.,
  2019; :func:`cyclical_weight`), trained by :class:`ScheduledELBO`;
- free bits (Kingma et al., 2016): below :math:`\lambda` nats a latent
  dimension's batch-mean KL costs nothing (:func:`free_bits_loss`);
- a committed rate (the δ-VAE of Razavi et al., 2019, with a standard normal
  prior): bounding every posterior standard deviation by
  :math:`\sigma_\mathrm{max} < 1` makes the KL at least :math:`\delta` per
  dimension for every input (:class:`CommittedRateEncoder`,
  :func:`committed_rate`).

Steps count from 0 (:math:`t` steps already taken). Reduction rule: per-example
fields are ``(B,)``; only ``loss`` averages over the batch.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch
from torch import nn

from vaecore._checks import check_positive_int
from vaecore.elbo import negative_elbo
from vaecore.latent import kl_per_dimension
from vaecore.priors import StdNormalPrior

__all__ = ["linear_warmup_weight", "cyclical_weight", "ScheduledTerms", "ScheduledELBO",
           "FreeBitsTerms", "free_bits_loss", "committed_rate", "CommittedRateEncoder"]


def _check_step(step) -> int:
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"step: expected an integer >= 0 (steps already taken), got {step!r}")
    return step


def linear_warmup_weight(step: int, warmup_steps: int) -> float:
    r"""The KL weight of a linear warm-up after ``step`` training steps.

    .. math::
        \beta_t = \min\Big(1, \frac{t}{T_\mathrm{w}}\Big)

    Equation (warmup-steps): :math:`t` steps taken, :math:`T_\mathrm{w}` =
    ``warmup_steps``. 0 at the first step, 1 from step :math:`T_\mathrm{w}` on.
    """
    return min(1.0, _check_step(step) / check_positive_int("warmup_steps", warmup_steps))


def cyclical_weight(step: int, total_steps: int, cycles: int = 4, ratio: float = 0.5) -> float:
    r"""The KL weight of cyclical annealing (Fu et al., 2019) after ``step`` steps.

    The run's :math:`T` steps are cut into :math:`M` cycles of
    :math:`T/M` steps; in each, β rises linearly from 0 over the first
    fraction :math:`R` of the cycle and then stays at 1:

    .. math::
        \omega_t = \frac{t \bmod \lceil T/M \rceil}{T/M}, \qquad
        \beta_t = \min\Big(1, \frac{\omega_t}{R}\Big)

    Equation (cyclical). :math:`M` = ``cycles``, :math:`R` = ``ratio`` in
    (0, 1]; Fu et al. use :math:`M = 4`, :math:`R = 0.5`. With :math:`M = 1`
    it is a linear warm-up over :math:`RT` steps.
    """
    total = check_positive_int("total_steps", total_steps)
    cycles = check_positive_int("cycles", cycles)
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio <= 1:
        raise ValueError(f"ratio: expected a number in (0, 1], got {ratio!r}")
    period = total / cycles
    omega = (_check_step(step) % math.ceil(period)) / period
    return min(1.0, omega / ratio)


class ScheduledTerms(NamedTuple):
    """``negative_elbo``'s fields and ``beta`` (scalar), the KL weight the batch was trained with."""
    loss: torch.Tensor
    log_likelihood: torch.Tensor
    kl: torch.Tensor
    beta: torch.Tensor


class ScheduledELBO:
    r"""``negative_elbo`` whose KL weight follows a schedule of the training step, for ``fit``.

    ``weight(t)`` gives β after ``t`` steps (e.g.
    ``partial(cyclical_weight, total_steps=T)``). Each call on a model in
    training mode is one step: it uses ``weight(self.step)`` and then counts
    the step; calls in eval mode (validation) use β = 1, the ELBO itself, and
    count nothing. ``start(epochs_done)`` sets the step to
    ``epochs_done * steps_per_epoch`` for a run that resumes (``fit``'s
    epochs have ``ceil(N / batch_size)`` steps).
    """

    def __init__(self, weight: Callable[[int], float], steps_per_epoch: int):
        self.weight = weight
        self.steps_per_epoch = check_positive_int("steps_per_epoch", steps_per_epoch)
        self.step = 0

    def __call__(self, model, x: torch.Tensor, generator=None) -> ScheduledTerms:
        beta = float(self.weight(self.step)) if model.training else 1.0
        if not 0 <= beta < math.inf:
            raise ValueError(f"weight({self.step}): expected a finite weight >= 0, got {beta}")
        terms = negative_elbo(model, x, beta=beta, generator=generator)
        if model.training:
            self.step += 1
        return ScheduledTerms(*terms, beta=torch.tensor(beta))

    def start(self, epochs_done: int) -> None:
        """Continue the schedule after ``epochs_done`` complete epochs."""
        self.step = _check_step(epochs_done) * self.steps_per_epoch


class FreeBitsTerms(NamedTuple):
    """``loss`` (scalar, minimised), ``log_likelihood`` and the unclamped ``kl``, each ``(B,)``."""
    loss: torch.Tensor
    log_likelihood: torch.Tensor
    kl: torch.Tensor


def free_bits_loss(model, x: torch.Tensor, free_nats: float = 0.25,
                   generator: torch.Generator | None = None) -> FreeBitsTerms:
    r"""The negative ELBO with free bits per latent dimension (Kingma et al., 2016).

    .. math::
        \mathcal J_\lambda = -\frac1B \sum_b \log p(x_b \mid z_b)
        + \sum_{j=1}^{D} \max\Big(\lambda,\ \frac1B \sum_b
        \mathrm{KL}\big(q(z_j \mid x_b) \,\|\, p(z_j)\big)\Big)

    Equation (free-bits), with :math:`\lambda` = ``free_nats``. A dimension
    whose batch-mean KL is below :math:`\lambda` adds the constant
    :math:`\lambda` and no gradient, so the encoder is not pushed towards the
    prior there. With every batch-mean KL above :math:`\lambda` it is
    ``negative_elbo``. For the standard normal prior (closed-form KL per
    dimension, :func:`vaecore.latent.kl_per_dimension`).
    """
    if not isinstance(model.prior, StdNormalPrior):
        raise ValueError("free_bits_loss: expected a model with the standard normal prior, got "
                         f"{type(model.prior).__name__}")
    if isinstance(free_nats, bool) or not isinstance(free_nats, (int, float)) \
            or not 0 <= free_nats < math.inf:
        raise ValueError(f"free_nats: expected a finite number >= 0, got {free_nats!r}")
    out = model(x, generator=generator)
    log_likelihood = model.likelihood.log_prob(x, out.x_params)
    kl_dims = kl_per_dimension(out.mu, out.logvar)
    kept = torch.clamp(kl_dims.mean(0), min=free_nats).sum()
    return FreeBitsTerms(kept - log_likelihood.mean(), log_likelihood, kl_dims.sum(1))


def committed_rate(sigma_max: float) -> float:
    r"""δ, the smallest KL per dimension to :math:`\mathcal N(0, 1)` of a Gaussian with std ≤ ``sigma_max``.

    .. math::
        \mathrm{KL}\big(\mathcal N(\mu, \sigma^2) \,\|\, \mathcal N(0, 1)\big)
        = \tfrac12\big(\mu^2 + \sigma^2 - 1 - \log\sigma^2\big)
        \ \ge\ \tfrac12\big(\sigma_\mathrm{max}^2 - 1 - \log\sigma_\mathrm{max}^2\big) = \delta

    Equation (committed-rate): :math:`\mu^2 \ge 0`, and
    :math:`s - 1 - \log s` falls on :math:`(0, 1]`, so for
    :math:`\sigma \le \sigma_\mathrm{max} < 1` it is smallest at
    :math:`\sigma = \sigma_\mathrm{max}`. ``sigma_max`` in (0, 1).
    """
    if isinstance(sigma_max, bool) or not isinstance(sigma_max, (int, float)) \
            or not 0 < sigma_max < 1:
        raise ValueError(f"sigma_max: expected a number in (0, 1), got {sigma_max!r}")
    s = sigma_max ** 2
    return 0.5 * (s - 1 - math.log(s))


class CommittedRateEncoder(nn.Module):
    r"""An encoder whose posterior std is squashed into ``[sigma_min, sigma_max]`` (a δ-VAE).

    Wraps ``encoder`` (x → ``(mu, raw)``): the log-variance is
    :math:`\log\sigma_\mathrm{min}^2 + (\log\sigma_\mathrm{max}^2 -
    \log\sigma_\mathrm{min}^2)\,\mathrm{sigmoid}(\mathrm{raw})`, so with
    :math:`\sigma_\mathrm{max} < 1` every posterior is at least
    :func:`committed_rate` nats per dimension from :math:`\mathcal N(0, I)`,
    whatever the input: the code cannot collapse. The ELBO is unchanged; only
    the posterior family is smaller.
    """

    def __init__(self, encoder: nn.Module, sigma_max: float, sigma_min: float = 1e-3):
        super().__init__()
        committed_rate(sigma_max)  # checks sigma_max
        if isinstance(sigma_min, bool) or not isinstance(sigma_min, (int, float)) \
                or not 0 < sigma_min < sigma_max:
            raise ValueError(f"sigma_min: expected a number in (0, sigma_max = {sigma_max}), "
                             f"got {sigma_min!r}")
        self.encoder = encoder
        self.latent_dim = check_positive_int("encoder.latent_dim", encoder.latent_dim)
        self.sigma_min, self.sigma_max = float(sigma_min), float(sigma_max)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(mu, logvar)``, each ``(B, latent_dim)``, the variance inside the bounds."""
        mu, raw = self.encoder(x)
        low, high = 2 * math.log(self.sigma_min), 2 * math.log(self.sigma_max)
        return mu, low + (high - low) * torch.sigmoid(raw)
