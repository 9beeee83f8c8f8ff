r"""Where the ELBO loses: the approximation gap and the amortization gap (Cremer, Li & Duvenaud 2018).

The encoder's bound is below :math:`\log p(x)` by the KL from its
:math:`q_\phi(z \mid x)` to the true posterior, Equation (elbo-likelihood-gap).
Let :math:`q^*` be the best member of the same Gaussian family for this one
:math:`x`, found by stochastic variational inference (SVI) from the encoder's
output. Then

.. math::
    \log p(x) - \mathrm{ELBO}(q_\phi)
    = \underbrace{\log p(x) - \mathrm{ELBO}(q^*)}_{\text{approximation gap}}
    + \underbrace{\mathrm{ELBO}(q^*) - \mathrm{ELBO}(q_\phi)}_{\text{amortization gap}}:

the first is the price of the family, the second that of one network
answering for every :math:`x`.

Reduction rule: one value per example, shape ``(B,)``, summed over event
dimensions; nothing here averages over the batch.
"""
from __future__ import annotations

import math
from numbers import Real
from typing import NamedTuple

import torch
from torch import nn

from vaecore._checks import check_batch, check_latent, check_positive_int, check_same_shape
from vaecore.elbo import _log_weights, log_likelihood_is
from vaecore.gradients import negative_elbo_stl
from vaecore.posterior import Posterior
from vaecore.vae import VAE

__all__ = ["Gaps", "with_posterior", "elbo_mc", "optimise_posterior", "inference_gaps"]


class Gaps(NamedTuple):
    r"""Per-example ``(B,)`` terms; ``approximation + amortization = log_px - elbo_encoder``.

    ``log_px`` :math:`\log p(x)`; ``elbo_encoder`` the ELBO of the encoder's
    :math:`q`; ``elbo_optimised`` that of :math:`q^*`; ``approximation``
    :math:`\log p(x) - \mathrm{ELBO}(q^*)`; ``amortization``
    :math:`\mathrm{ELBO}(q^*) - \mathrm{ELBO}(q_\phi)`.
    """
    log_px: torch.Tensor
    elbo_encoder: torch.Tensor
    elbo_optimised: torch.Tensor
    approximation: torch.Tensor
    amortization: torch.Tensor


class _FixedEncoder(nn.Module):
    """An encoder without parameters that returns the given ``(mu, logvar)``, each ``(B, D)``."""

    def __init__(self, posterior: Posterior):
        super().__init__()
        self.posterior, self.latent_dim = posterior, posterior.mu.shape[-1]

    def forward(self, x: torch.Tensor) -> Posterior:
        if x.shape[0] != self.posterior.mu.shape[0]:
            raise ValueError(f"x: expected {self.posterior.mu.shape[0]} examples, one per "
                             f"posterior, got {x.shape[0]}")
        return self.posterior


def with_posterior(model, posterior: Posterior) -> VAE:
    r"""``model``'s decoder, likelihood and prior, with :math:`q(z \mid x_b)` = ``posterior`` row ``b``.

    The encoder is replaced by the fixed parameters ``posterior`` ``(B, D)``
    (no copy: the decoder and prior are shared), so every loss and bound of
    the library can be computed, and differentiated, for free per-example
    parameters :math:`(\mu_b, \log\sigma_b^2)` instead of the encoder's output.
    Tested through :func:`optimise_posterior` and
    :func:`vaecore.gradient_snr.posterior_gradient_draws`, whose gradients equal
    those of an affine encoder's bias.
    """
    check_latent(posterior.mu, model.latent_dim, "posterior.mu")
    check_same_shape(mu=posterior.mu, logvar=posterior.logvar)
    return VAE(_FixedEncoder(posterior), model.decoder, model.likelihood, model.prior)


def elbo_mc(model, x: torch.Tensor, posterior: Posterior, samples: int,
            generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Monte-Carlo ELBO of a given posterior: the mean of ``samples`` log-weights.

    .. math::
        \widehat{\mathrm{ELBO}}(x) = \frac1S \sum_{s=1}^S
        \log p(x, z_s) - \log q(z_s \mid x), \qquad z_s \sim q(z \mid x)

    Equation (elbo), every term at the samples (so any prior works); exact for
    every draw when :math:`q` is the true posterior. ``posterior`` is a
    :class:`~vaecore.posterior.Posterior` ``(B, D)``, e.g. ``model.encode(x)``.
    Differentiable; wrap in ``torch.no_grad()`` to evaluate.

    Returns:
        ``(B,)``: the estimate per example (maximised), summed over event dimensions.
    """
    check_batch("x", x)
    check_positive_int("samples", samples)
    z = posterior.rsample((samples,), generator=generator)
    return _log_weights(model, x, posterior, z).mean(0)


def optimise_posterior(model, x: torch.Tensor, steps: int, lr: float = 1e-2,
                       loss_fn=negative_elbo_stl,
                       generator: torch.Generator | None = None, *,
                       lr_final: float | None = None) -> Posterior:
    r"""Per-example Gaussian posteriors by SVI, started at the encoder's output.

    .. math::
        (\mu_b, \log\sigma^2_b) \leftarrow \mathrm{Adam}\Big(\nabla \sum_b
        \ell(x_b; \mu_b, \log\sigma^2_b)\Big), \quad \text{``steps'' times}

    One Adam optimiser over the ``(B, D)`` tensors ``mu`` and ``logvar`` of the
    whole batch; since Adam acts entry by entry and each image's loss depends
    only on its own row, every image is optimised as if alone. ``loss_fn`` is
    a ``fit`` loss (default :func:`vaecore.gradients.negative_elbo_stl`: one
    sample per step, and a gradient that vanishes at the true posterior),
    called on :func:`with_posterior`. The model's parameters
    are not changed and their ``.grad`` not touched. With a constant ``lr``,
    Adam ends within about ``lr`` of the optimum in each entry (it normalises
    even tiny noisy gradients): lower ``lr`` for a closer answer, or pass
    ``lr_final`` to let the rate fall geometrically from ``lr`` to ``lr_final``
    over the steps. Tested on a linear-Gaussian model, where the optimum is
    the exact posterior.

    Args:
        model: a VAE; x: data ``(B, ...)``; steps: Adam steps, an int ``>= 0``;
        lr: Adam's learning rate, ``> 0``; generator: for the samples of z;
        lr_final: the last step's rate (default: ``lr`` throughout; a single step uses ``lr``).

    Returns:
        ``Posterior(mu, logvar)``, each ``(B, D)``, detached.
    """
    check_batch("x", x)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps: expected an integer >= 0, got {steps!r}")
    _check_lr(lr, lr_final)
    with torch.no_grad():
        start = model.encode(x)
    mu, logvar = (t.detach().clone().requires_grad_() for t in start)
    optimiser = torch.optim.Adam([mu, logvar], lr=lr)
    for step in range(steps):
        optimiser.param_groups[0]["lr"] = _learning_rate(lr, lr_final, step, steps)
        loss = loss_fn(with_posterior(model, Posterior(mu, logvar)), x, generator=generator).loss
        # $\sum_b \ell(x_b)$: B times the batch mean, so each row gets its own image's gradient
        mu.grad, logvar.grad = torch.autograd.grad(len(x) * loss, [mu, logvar])
        optimiser.step()
    return Posterior(mu.detach(), logvar.detach())


def _check_lr(lr, lr_final) -> None:
    for name, value in (("lr", lr), ("lr_final", lr if lr_final is None else lr_final)):
        if isinstance(value, bool) or not isinstance(value, Real) or not 0 < value < math.inf:
            raise ValueError(f"{name}: expected a positive, finite learning rate, got {value!r}")


def _learning_rate(lr: float, lr_final: float | None, step: int, steps: int) -> float:
    """Step ``step``'s rate: ``lr``, or geometric from ``lr`` (first step) to ``lr_final`` (last).

    With a single step there is no last step apart from the first: it uses ``lr``.
    """
    if lr_final is None or steps < 2:
        return lr
    return lr * (lr_final / lr) ** (step / (steps - 1))


def inference_gaps(model, x: torch.Tensor, steps: int, lr: float = 1e-2, *,
                   samples: int = 100, k: int = 1000,
                   generator: torch.Generator | None = None,
                   lr_final: float | None = None) -> Gaps:
    r"""Split :math:`\log p(x) - \mathrm{ELBO}(q_\phi)` into approximation and amortization gaps.

    :math:`q^*` = :func:`optimise_posterior` (``steps``, ``lr``, ``lr_final``); both ELBOs
    by :func:`elbo_mc` with ``samples`` draws; :math:`\log p(x)` by
    :func:`vaecore.elbo.log_likelihood_is` with ``k`` draws from :math:`q^*`, a
    better proposal than the encoder's. The two ELBOs use the same draws of
    :math:`\epsilon` (common random numbers: ``steps = 0`` gives an
    amortization gap of exactly zero). All three are Monte-Carlo estimates:
    a gap may come out slightly negative when it is near zero. The train/eval
    mode is left as it is: call ``model.eval()`` first. Tested on a
    linear-Gaussian model, where :math:`q^*` is the exact posterior: the
    approximation gap goes to zero with ``steps`` and the amortization gap
    to the closed-form KL from the encoder's :math:`q` to the posterior.

    Returns:
        :class:`Gaps`, each field ``(B,)``.
    """
    check_batch("x", x, hint="; pass the images alone: inference_gaps(model, x, steps)")
    if generator is None:  # one generator of our own, seeded from the global stream
        seed = int(torch.randint(2 ** 62, ()).item())
        generator = torch.Generator(x.device).manual_seed(seed)
    optimised = optimise_posterior(model, x, steps, lr, generator=generator, lr_final=lr_final)
    with torch.no_grad():
        state = generator.get_state()
        elbo_encoder = elbo_mc(model, x, model.encode(x), samples, generator)
        generator.set_state(state)  # the same eps for both ELBOs: their difference has less noise
        elbo_optimised = elbo_mc(model, x, optimised, samples, generator)
        log_px = log_likelihood_is(with_posterior(model, optimised), x, k, generator=generator,
                                   batch_size=len(x))
    return Gaps(log_px, elbo_encoder, elbo_optimised, log_px - elbo_optimised,
                elbo_optimised - elbo_encoder)
