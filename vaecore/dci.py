r"""Disentanglement, completeness and informativeness (DCI) of a code against known factors.

DCI (Eastwood and Williams, 2018) compares a code ``z`` ``(N, D)`` with the
factors' values ``(N, K)`` through an importance matrix. Here the
importances are the absolute weights of an L1-regularised linear regression
(lasso) of each standardised factor on the standardised code, one of the two
regressors of the paper (the other, random forests, and the gradient boosted
trees of Locatello et al. (2019) need a library this one does not use). A
linear regressor credits only what a latent holds linearly: a factor
encoded along a curve (an angle on a circle, a category) is under-credited
and lowers informativeness, where trees would credit it; MIG
(:mod:`vaecore.mig`) has no such limit. Everything is in float64.
"""
from __future__ import annotations

import math
from numbers import Real
from typing import NamedTuple

import torch

from vaecore.mig import _check_pair

__all__ = ["DCIResult", "lasso", "dci"]


class DCIResult(NamedTuple):
    """Three scalars in [0, 1] (informativeness, an R², may dip below 0), ``importance``, ``r2``."""
    disentanglement: torch.Tensor
    completeness: torch.Tensor
    informativeness: torch.Tensor
    importance: torch.Tensor
    r2: torch.Tensor


def _standardize(t: torch.Tensor, mean: torch.Tensor, sd: torch.Tensor) -> torch.Tensor:
    return (t.double() - mean) / sd


def lasso(x: torch.Tensor, y: torch.Tensor, lam: float, sweeps: int = 200) -> torch.Tensor:
    r"""L1-regularised least squares by coordinate descent, for each column of ``y``: ``(D, K)``.

    .. math::
        \hat w_{\cdot k} = \arg\min_w \frac{1}{2N}\lVert y_{\cdot k} - x w \rVert^2
        + \lambda \lVert w \rVert_1

    Coordinate update, with :math:`G = x^\top x / N` and :math:`c = x^\top y / N`:
    :math:`w_j \leftarrow S_\lambda\big(c_j - \sum_{l \ne j} G_{jl} w_l\big) / G_{jj}`,
    :math:`S_\lambda(t) = \operatorname{sign}(t) \max(|t| - \lambda, 0)`, for
    at most ``sweeps`` passes over the coordinates, fewer once a pass moves
    no weight by more than :math:`10^{-12}` (no intercept: centre ``x`` and
    ``y`` first). :math:`w = 0` is the solution exactly when
    :math:`\max_j |c_{jk}| \le \lambda` (the optimality condition at 0).
    """
    n = len(x)
    gram, cross = x.T @ x / n, x.T @ y / n
    w = torch.zeros_like(cross)
    diag = gram.diagonal().clamp_min(1e-12)
    for _ in range(sweeps):
        before = w.clone()
        for j in range(len(w)):
            partial = cross[j] - gram[j] @ w + gram[j, j] * w[j]
            w[j] = torch.sign(partial) * (partial.abs() - lam).clamp_min(0) / diag[j]
        if (w - before).abs().max() < 1e-12:
            break
    return w


def _one_minus_entropy(p: torch.Tensor, base: int) -> torch.Tensor:
    """``1 - H(p) / log(base)`` along the last dimension of the distributions ``p``."""
    h = -torch.where(p > 0, p * p.clamp_min(1e-300).log(), torch.zeros_like(p)).sum(-1)
    return 1 - h / math.log(base)


def _weighted_specificity(importance: torch.Tensor) -> torch.Tensor:
    r""":math:`\sum_i \rho_i (1 - H_K(P_{i\cdot}))` over the rows of ``importance``; 0 if all 0."""
    total = importance.sum()
    if total == 0:
        return total
    rows = importance.sum(1, keepdim=True)
    p = importance / rows.clamp_min(1e-300)
    return (rows[:, 0] / total * _one_minus_entropy(p, importance.shape[1])).sum()


def dci(z: torch.Tensor, factors: torch.Tensor, z_test: torch.Tensor | None = None,
        factors_test: torch.Tensor | None = None, *, lam: float | None = None) -> DCIResult:
    r"""Disentanglement, completeness and informativeness (Eastwood and Williams, 2018).

    From the importance :math:`R_{ij} = |\hat w_{ij}|` of latent :math:`i` for
    factor :math:`j` (:func:`lasso` on standardised ``z`` and ``factors``):

    .. math::
        D = \sum_i \rho_i \big(1 - H_K(P_{i\cdot})\big), \quad
        P_{ij} = \frac{R_{ij}}{\sum_k R_{ik}}, \quad
        \rho_i = \frac{\sum_j R_{ij}}{\sum_{ij} R_{ij}}

    .. math::
        C = \sum_j \tilde\rho_j \big(1 - H_D(\tilde P_{\cdot j})\big), \quad
        \tilde P_{ij} = \frac{R_{ij}}{\sum_i R_{ij}}, \quad
        \tilde\rho_j = \frac{\sum_i R_{ij}}{\sum_{ij} R_{ij}}

    with entropies :math:`H_K` and :math:`H_D` in base :math:`K` (factors) and
    :math:`D` (latents), so both lie in [0, 1]; completeness is weighted by
    the factors' importance as disentanglement is by the latents' (as
    Locatello et al.'s disentanglement_lib does); an all-zero importance
    scores 0.
    Informativeness is the mean over factors of the regression's
    :math:`R^2 = 1 - \text{MSE} / \text{variance}` on the test set (on the
    training set if none is given), higher is better; the paper reports
    an error instead, which is :math:`\sqrt{1 - R^2}` in these terms.

    The default :math:`\lambda = 4/\sqrt N` makes an independent code score
    0: with standardised, independent variables each :math:`\sqrt N\,c_{ij}`
    is about standard normal, and all weights are exactly 0 unless some
    :math:`|c_{ij}| > \lambda`, which has probability at most
    :math:`2DK\,\Phi(-4) \approx 6.3 \times 10^{-5}\,DK`.

    Args:
        z: ``(N, D)``, ``D >= 2``; factors: ``(N, K)`` float values (or
            indices as floats), ``K >= 2``, none constant.
        z_test, factors_test: a held-out pair for informativeness, or ``None``.
        lam: the lasso's :math:`\lambda`; ``None`` means :math:`4/\sqrt N`.

    Returns:
        :class:`DCIResult`: the three scores, ``importance`` ``(D, K)`` and ``r2`` ``(K,)``.
    """
    _check_pair(z, factors, integer_factors=False)
    if min(z.shape[1], factors.shape[1]) < 2:
        raise ValueError(f"expected at least 2 latents and 2 factors, got {z.shape[1]} "
                         f"and {factors.shape[1]}")
    if (z_test is None) != (factors_test is None):
        raise ValueError("z_test and factors_test: pass both or neither")
    if z_test is None:
        z_test, factors_test = z, factors
    _check_pair(z_test, factors_test, integer_factors=False)
    if lam is None:
        lam = 4 / math.sqrt(len(z))
    if isinstance(lam, bool) or not isinstance(lam, Real) or not lam >= 0:
        raise ValueError(f"lam: expected a real number >= 0, got {lam!r}")
    (z_mean, z_sd), (f_mean, f_sd) = ((t.double().mean(0), t.double().std(0)) for t in (z, factors))
    if (f_sd == 0).any():
        raise ValueError("factors: expected no constant factor")
    z_sd = torch.where(z_sd > 0, z_sd, torch.ones_like(z_sd))
    w = lasso(_standardize(z, z_mean, z_sd), _standardize(factors, f_mean, f_sd), float(lam))
    residual = _standardize(factors_test, f_mean, f_sd) - _standardize(z_test, z_mean, z_sd) @ w
    r2 = 1 - residual.pow(2).mean(0) / _standardize(factors_test, f_mean, f_sd).var(0, correction=0)
    importance = w.abs()
    return DCIResult(_weighted_specificity(importance), _weighted_specificity(importance.T),
                     r2.mean(), importance, r2)

