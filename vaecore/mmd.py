r"""Maximum mean discrepancy (MMD) and the InfoVAE objective built on it.

Kernels take two sample sets ``x`` of shape ``(N, D)`` and ``y`` of shape
``(M, D)`` and return the ``(N, M)`` Gram matrix; ``mmd2`` returns one scalar
for the two whole sets. ``info_vae_loss`` follows the reduction rule: its
per-example terms have shape ``(B,)`` (summed over event dimensions) and only
``loss`` averages over the batch.
"""
from __future__ import annotations

import warnings
from numbers import Real
from typing import Callable, NamedTuple

import torch

from vaecore._checks import check_tensor
from vaecore.elbo import kl_term
from vaecore.posterior import Posterior

__all__ = ["rbf_kernel", "imq_kernel", "mmd2", "InfoVAETerms", "info_vae_loss"]


def _check_samples(x, y) -> None:
    check_tensor("x", x, ndim=2)
    check_tensor("y", y, ndim=2)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y: expected the same dimension D, got shapes "
                         f"{tuple(x.shape)} and {tuple(y.shape)}")


def _positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not value > 0:
        raise ValueError(f"{name}: expected a positive number, got {value!r}")
    return float(value)


#: Elements of one block of the broadcast difference in :func:`_sq_dists` (4 MiB of
#: float32): a block stays in cache, which makes the distances of 2,000 × 2,000 codes
#: several times faster than one ``(N, M, D)`` tensor, with the same values bit for bit
#: (``benchmarks/kernels.py``).
_BLOCK_ELEMENTS = 1 << 20


def _sq_dists(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``(N, M)`` squared Euclidean distances, exact (0 on a shared diagonal).

    Each distance is the sum of squared differences (no ``|x|² + |y|² - 2x·y``
    cancellation), computed for blocks of rows of ``x`` at a time.
    """
    rows = max(1, _BLOCK_ELEMENTS // max(1, y.shape[0] * y.shape[1]))
    blocks = [((block[:, None, :] - y[None, :, :]) ** 2).sum(-1) for block in x.split(rows)]
    return blocks[0] if len(blocks) == 1 else torch.cat(blocks)


def rbf_kernel(x: torch.Tensor, y: torch.Tensor, bandwidth: float | None = None) -> torch.Tensor:
    r"""Gaussian (RBF) kernel Gram matrix.

    .. math::
        k(x, y) = \exp\Big(-\frac{\lVert x - y\rVert^2}{2h^2}\Big)

    Equation (rbf-kernel). Default bandwidth: :math:`h^2 = D`, the latent
    dimension. For two independent draws from the prior :math:`\mathcal N(0, I)`,
    :math:`\mathbb E\lVert x - y\rVert^2 = 2D`, so the exponent is about 1 at
    typical distances: the kernel neither saturates nor goes flat as ``D``
    grows. (Zhao et al.'s reference code uses
    :math:`\exp(-\lVert x-y\rVert^2 / D^2)`, which agrees with this default at
    :math:`D = 2`.)

    Args:
        x: ``(N, D)``. y: ``(M, D)``.
        bandwidth: :math:`h > 0`; ``None`` means :math:`h = \sqrt D`.

    Returns:
        ``(N, M)``: :math:`k(x_i, y_j)`.
    """
    _check_samples(x, y)
    h2 = x.shape[1] if bandwidth is None else _positive("bandwidth", bandwidth) ** 2
    return torch.exp(-_sq_dists(x, y) / (2 * h2))


def imq_kernel(x: torch.Tensor, y: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    r"""Inverse multiquadratics kernel Gram matrix (Tolstikhin et al., WAE).

    .. math::
        k(x, y) = \frac{C}{C + \lVert x - y\rVert^2}

    Equation (imq-kernel). Default :math:`C = 2D`, the WAE choice for a
    :math:`\mathcal N(0, I)` prior (:math:`C = 2D\sigma^2` with :math:`\sigma^2 = 1`).
    Its heavy tails keep gradients alive for far-apart samples.

    Args:
        x: ``(N, D)``. y: ``(M, D)``.
        scale: :math:`C > 0`; ``None`` means :math:`C = 2D`.

    Returns:
        ``(N, M)``: :math:`k(x_i, y_j)`.
    """
    _check_samples(x, y)
    c = 2.0 * x.shape[1] if scale is None else _positive("scale", scale)
    return c / (c + _sq_dists(x, y))


def mmd2(x: torch.Tensor, y: torch.Tensor, kernel: Callable = rbf_kernel,
         unbiased: bool = True) -> torch.Tensor:
    r"""Squared maximum mean discrepancy between the samples ``x`` and ``y``.

    Biased (V-statistic), Equation (mmd2-biased):

    .. math::
        \widehat{\mathrm{MMD}}{}^2_b = \frac1{N^2}\sum_{i,i'} k(x_i, x_{i'})
        + \frac1{M^2}\sum_{j,j'} k(y_j, y_{j'}) - \frac2{NM}\sum_{i,j} k(x_i, y_j)

    Unbiased (U-statistic, diagonal terms dropped), Equation (mmd2-unbiased):

    .. math::
        \widehat{\mathrm{MMD}}{}^2_u = \frac1{N(N-1)}\sum_{i \ne i'} k(x_i, x_{i'})
        + \frac1{M(M-1)}\sum_{j \ne j'} k(y_j, y_{j'}) - \frac2{NM}\sum_{i,j} k(x_i, y_j)

    The biased one is :math:`\ge 0` but too large on average; the unbiased one
    has the right mean and can be slightly negative.

    Args:
        x: ``(N, D)``. y: ``(M, D)``; ``N, M >= 2`` when ``unbiased``.
        kernel: a callable ``(x, y) -> (N, M)`` Gram matrix, e.g. ``rbf_kernel``.
        unbiased: choose the U-statistic (default) or the V-statistic.

    Returns:
        A scalar tensor: the estimate of :math:`\mathrm{MMD}^2` for the two sets.
    """
    _check_samples(x, y)
    if unbiased and min(len(x), len(y)) < 2:
        raise ValueError(f"unbiased MMD: expected at least 2 samples in x and in y, "
                         f"got {len(x)} and {len(y)}")
    return _within(kernel(x, x), unbiased) + _within(kernel(y, y), unbiased) - 2 * kernel(x, y).mean()


def _within(k: torch.Tensor, unbiased: bool) -> torch.Tensor:
    if not unbiased:
        return k.mean()
    n = k.shape[0]
    return (k.sum() - k.diagonal().sum()) / (n * (n - 1))


class InfoVAETerms(NamedTuple):
    """``loss``: scalar to minimise; ``log_likelihood``: ``(B,)`` log p(x|z)
    (maximised); ``kl``: ``(B,)`` KL(q(z|x) || p(z)); ``mmd``: scalar MMD².

    ``reconstruction`` is the former name of ``log_likelihood``, a deprecated
    alias for one release."""
    loss: torch.Tensor
    log_likelihood: torch.Tensor
    kl: torch.Tensor
    mmd: torch.Tensor

    @property
    def reconstruction(self) -> torch.Tensor:
        """Deprecated alias of ``log_likelihood``."""
        warnings.warn("InfoVAETerms.reconstruction is deprecated: use InfoVAETerms.log_likelihood",
                      DeprecationWarning, stacklevel=2)
        return self.log_likelihood


def _check_weights(alpha, lam, allow_negative: bool) -> None:
    for name, value in (("alpha", alpha), ("lam", lam)):
        if isinstance(value, bool) or not isinstance(value, Real):
            raise ValueError(f"{name}: expected a real number, got {value!r}")
    if allow_negative:
        return
    if 1 - alpha < 0:
        raise ValueError(f"KL weight 1 - alpha = {1 - alpha} is negative (alpha={alpha}); "
                         "pass allow_negative=True if this is intended")
    if alpha + lam - 1 < 0:
        raise ValueError(f"MMD weight alpha + lam - 1 = {alpha + lam - 1} is negative "
                         f"(alpha={alpha}, lam={lam}): the objective would push q(z) away "
                         "from the prior; pass allow_negative=True if this is intended")


def info_vae_loss(model, x: torch.Tensor, *, alpha: float = 1.0, lam: float = 1000.0,
                  kernel: Callable = rbf_kernel,
                  generator: torch.Generator | None = None,
                  allow_negative: bool = False) -> InfoVAETerms:
    r"""The InfoVAE family objective (Zhao et al., 2017), to minimise.

    .. math::
        \mathcal J = \frac1B\sum_{b=1}^B\Big[-\log p(x_b \mid z_b)
        + (1-\alpha)\,\mathrm{KL}\big(q(z \mid x_b) \,\|\, p(z)\big)\Big]
        + (\alpha + \lambda - 1)\,\widehat{\mathrm{MMD}}{}^2\big(q(z), p(z)\big)

    Equation (info-vae). :math:`z_b` is one reparameterised draw from
    :math:`q(z \mid x_b)`; the unbiased MMD² compares the batch's ``B`` codes
    with ``B`` draws from the prior (drawn after ``z``, from the same
    ``generator``). Special cases: :math:`\alpha = 0, \lambda = 1` is the plain
    VAE (negative ELBO); :math:`\alpha = 1, \lambda > 0` is the MMD-VAE (no KL
    term). The defaults :math:`\alpha = 1, \lambda = 1000` give an MMD-VAE
    whose MMD² weight is 1000: as ``log_likelihood`` is summed over pixels
    (hundreds of nats), :math:`\lambda` must be large for the MMD² (order
    :math:`10^{-2}`) to matter.

    Both weights must be non-negative: a negative :math:`\alpha + \lambda - 1`
    (e.g. :math:`\alpha = 0` with a small :math:`\lambda`) rewards pushing the
    aggregate posterior away from the prior. Either raises ``ValueError``
    unless ``allow_negative=True``.

    Args:
        model: has ``encode(x) -> (mu, logvar)``, ``log_likelihood(x, z) -> (B,)``,
            and ``prior`` with ``sample(n, generator=None) -> (n, D)`` and
            ``kl(mu, logvar, z) -> (B,)`` (or ``kl_mc``, see :func:`vaecore.elbo.kl_term`).
        x: a batch, shape ``(B, ...)``, ``B >= 2``.
        alpha, lam: the InfoVAE weights :math:`\alpha` and :math:`\lambda`.
        kernel: Gram-matrix callable for the MMD, e.g. ``rbf_kernel``, ``imq_kernel``.

    Returns:
        :class:`InfoVAETerms`: ``loss`` (scalar, batch mean + MMD term),
        ``log_likelihood`` and ``kl`` (``(B,)``, summed over event dimensions),
        ``mmd`` (scalar).
    """
    _check_weights(alpha, lam, allow_negative)
    posterior = Posterior(*model.encode(x))
    z = posterior.rsample(generator=generator)
    log_likelihood = model.log_likelihood(x, z)
    kl = kl_term(model.prior, *posterior, z)
    mmd = mmd2(z, model.prior.sample(z.shape[0], generator=generator), kernel=kernel)
    loss = (-log_likelihood + (1 - alpha) * kl).mean() + (alpha + lam - 1) * mmd
    return InfoVAETerms(loss, log_likelihood, kl, mmd)
