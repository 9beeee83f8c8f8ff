r"""The mutual information gap (MIG) of a code against known factors.

MIG (Chen et al., 2018) compares a code ``z`` ``(N, D)`` (e.g. the posterior
means of ``N`` images) with the factors that generated the images, integer
indices ``(N, K)``. It is computed in the discretised form of Locatello et
al. (2019): each latent is cut into ``bins`` equal-width bins and its plug-in
mutual information with each factor is computed from counts. Everything is
in float64, in nats.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from vaecore._checks import check_positive_int, check_tensor

__all__ = ["MIGResult", "discretize", "entropy", "mutual_information", "mig"]


class MIGResult(NamedTuple):
    """``score`` (scalar in [0, 1]), ``gaps`` ``(K,)``, ``mi`` ``(D, K)``, ``entropy`` ``(K,)``."""
    score: torch.Tensor
    gaps: torch.Tensor
    mi: torch.Tensor
    entropy: torch.Tensor


def _check_pair(z, factors, integer_factors: bool) -> None:
    check_tensor("z", z, ndim=2)
    check_tensor("factors", factors, ndim=2, floating=not integer_factors)
    if integer_factors and (factors.is_floating_point() or (factors < 0).any()):
        raise ValueError(f"factors: expected integer indices >= 0, got {factors.dtype}")
    if len(z) != len(factors) or len(z) < 2:
        raise ValueError(f"z and factors: expected the same number N >= 2 of rows, got "
                         f"{tuple(z.shape)} and {tuple(factors.shape)}")


def discretize(z: torch.Tensor, bins: int = 20) -> torch.Tensor:
    r"""Each column cut into ``bins`` equal-width bins over its ``[min, max]``: int64 ``(N, D)``.

    Bin :math:`\lfloor \text{bins}\,(z - \min) / (\max - \min) \rfloor`, the
    maximum in the last bin; a constant column is all in bin 0.
    """
    check_tensor("z", z, ndim=2)
    check_positive_int("bins", bins)
    low, high = z.double().aminmax(dim=0)
    width = torch.where(high > low, high - low, torch.ones_like(high))
    codes = torch.floor(bins * (z.double() - low) / width).long()
    return codes.clamp_(0, bins - 1)


def _counts(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Joint counts of two int64 ``(N,)`` codes with values from 0: ``(max a + 1, max b + 1)``."""
    na, nb = int(a.max()) + 1, int(b.max()) + 1
    return torch.bincount(a * nb + b, minlength=na * nb).view(na, nb).double()


def entropy(a: torch.Tensor) -> torch.Tensor:
    r"""Plug-in entropy :math:`-\sum_v \hat p(v) \log \hat p(v)` (nats) of an int64 code ``(N,)``."""
    p = torch.bincount(a).double() / len(a)
    p = p[p > 0]
    return -(p * p.log()).sum()


def mutual_information(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    r"""Plug-in mutual information of two int64 codes ``(N,)`` (values from 0), in nats.

    .. math::
        \hat I(a; b) = \sum_{u, v} \hat p(u, v) \log \frac{\hat p(u, v)}{\hat p(u)\,\hat p(v)}

    from the counts. It is biased upward: for independent codes with
    :math:`k_a` and :math:`k_b` values, :math:`2N\hat I` is asymptotically
    :math:`\chi^2` with :math:`(k_a - 1)(k_b - 1)` degrees of freedom (the
    G-test), so :math:`\mathbb E\,\hat I \approx (k_a - 1)(k_b - 1) / (2N)`
    with standard deviation :math:`\sqrt{2 (k_a - 1)(k_b - 1)} / (2N)`.
    """
    p = _counts(a, b) / len(a)
    outer = p.sum(1, keepdim=True) * p.sum(0, keepdim=True)
    nz = p > 0
    return (p[nz] * (p[nz] / outer[nz]).log()).sum()


def mig(z: torch.Tensor, factors: torch.Tensor, bins: int = 20) -> MIGResult:
    r"""The mutual information gap of the code ``z`` for the factors ``factors``.

    .. math::
        \mathrm{MIG} = \frac1K \sum_{k=1}^K \frac{1}{H(v_k)}
        \Big(\hat I(z_{j^{(k)}}; v_k) - \max_{j \ne j^{(k)}} \hat I(z_j; v_k)\Big),
        \qquad j^{(k)} = \arg\max_j \hat I(z_j; v_k)

    (Chen et al., 2018), with :math:`z_j` discretised by :func:`discretize`
    and :math:`\hat I` from :func:`mutual_information`. 1 when each factor
    is held by one latent alone and fully; 0 when the best two latents hold
    a factor equally. For a code independent of the factors every
    :math:`\hat I` is the plug-in bias, about :math:`(\text{bins} - 1)(L_k -
    1)/(2N)` for a factor of :math:`L_k` values, and the gap between two such
    values is of the order of their spread, :math:`\sqrt{2(\text{bins} -
    1)(L_k - 1)}/(2N)`.

    Args:
        z: ``(N, D)`` float, ``D >= 2``. factors: ``(N, K)`` int64 indices, each
            factor taking at least two values.
        bins: number of equal-width bins per latent (20, as Locatello et al.).

    Returns:
        :class:`MIGResult`: ``score``, the ``gaps`` per factor (normalised),
        the matrix ``mi`` ``(D, K)`` in nats and the factors' ``entropy`` ``(K,)``.
    """
    _check_pair(z, factors, integer_factors=True)
    if z.shape[1] < 2:
        raise ValueError(f"z: expected at least 2 latents for a gap, got {z.shape[1]}")
    codes = discretize(z, bins)
    h = torch.stack([entropy(f) for f in factors.T])
    if (h <= 0).any():
        raise ValueError(f"factors: expected every factor to take at least two values, "
                         f"got entropies {h.tolist()}")
    mi = torch.stack([torch.stack([mutual_information(c, f) for f in factors.T]) for c in codes.T])
    top2 = mi.topk(2, dim=0).values
    gaps = (top2[0] - top2[1]) / h
    return MIGResult(gaps.mean(), gaps, mi, h)
