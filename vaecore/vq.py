r"""Vector quantisation (van den Oord, Vinyals and Kavukcuoglu, 2017, VQ-VAE).

An encoder output :math:`z_e` of shape ``(B, D, ...)`` holds one
:math:`D`-vector per position (``(B, D)``: one position; ``(B, D, H, W)``: a
grid). Each is replaced by its nearest entry of a codebook
:math:`e \in \mathbb R^{K \times D}` (paper, Eq. 1-2; Equation (vq-nearest)):

.. math::
    c = \arg\min_k \lVert z_e - e_k \rVert_2, \qquad z_q = e_c .

The argmin has no gradient; the straight-through estimator copies the
gradient at :math:`z_q` to :math:`z_e`, written
:math:`z_q = z_e + \mathrm{sg}[e_c - z_e]` (value :math:`e_c`, Jacobian the
identity; Equation (vq-straight-through)). The codebook learns from the codebook term, the encoder is kept
near its codes by the commitment term with weight ``commitment``
(the paper's :math:`\beta = 0.25`, renamed so as not to collide with the
β of the β-VAE; paper, Eq. 3; Equation (vq-loss)):

.. math::
    L = -\log p(x \mid z_q) + \lVert \mathrm{sg}[z_e] - e_c \rVert_2^2
        + \text{commitment}\, \lVert z_e - \mathrm{sg}[e_c] \rVert_2^2 .

Alternatively the codebook follows exponential moving averages of the
vectors assigned to it (:class:`VectorQuantizer` with ``ema_decay``; paper,
Appendix A.1; Equation (vq-ema)). Codebook health: :func:`codebook_usage` gives the counts, the
perplexity and the dead codes; :meth:`VectorQuantizer.restart_dead_codes`
re-initialises dead codes from encoder outputs.

The whole model, its loss and the restarts as a ``fit`` callback are in
:mod:`vaecore.vq_vae`.

Reduction rule: the loss terms are ``(B,)``, summed over positions and the
:math:`D` dimensions (Sonnet's mean squared error divides them by ``D`` times
the number of positions); nothing here averages over the batch.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from vaecore import distributed
from vaecore._checks import check_positive_int, check_tensor

__all__ = ["Quantized", "nearest_codes", "quantize", "vq_loss", "CodebookUsage",
           "codebook_usage", "VectorQuantizer"]


class Quantized(NamedTuple):
    """``z_q`` like ``z_e`` (straight-through), ``codes`` ``(B, ...)`` long, and the two loss terms ``(B,)``."""
    z_q: torch.Tensor
    codes: torch.Tensor
    codebook_loss: torch.Tensor
    commitment_loss: torch.Tensor


def _flat(z_e: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """The vectors of ``z_e`` ``(B, D, ...)`` as rows ``(N, D)``; checks both inputs."""
    check_tensor("z_e", z_e, min_dim=2)
    check_tensor("codebook", codebook, ndim=2)
    if z_e.shape[1] != codebook.shape[1]:
        raise ValueError(f"z_e: expected the code dimension D = {codebook.shape[1]} of the "
                         f"codebook {tuple(codebook.shape)} at dim 1, got shape {tuple(z_e.shape)}")
    return z_e.movedim(1, -1).reshape(-1, z_e.shape[1])


def nearest_codes(z_e: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    r""":math:`c = \arg\min_k \lVert z_e - e_k \rVert^2` at each position: ``(B, ...)`` long.

    Computed as :math:`\lVert e_k \rVert^2 - 2\, z_e \cdot e_k` (the term
    :math:`\lVert z_e \rVert^2` is the same for every :math:`k`); ties go to
    the lowest index. ``codebook`` is ``(K, D)``; ``z_e`` is ``(B, D, ...)``.
    """
    flat = _flat(z_e, codebook)
    scores = codebook.pow(2).sum(1) - 2 * flat @ codebook.T
    return scores.argmin(1).view(z_e.shape[0], *z_e.shape[2:])


def quantize(z_e: torch.Tensor, codebook: torch.Tensor) -> Quantized:
    r"""Quantise ``z_e`` ``(B, D, ...)`` to its nearest codes; return :class:`Quantized`.

    ``z_q`` :math:`= z_e + \mathrm{sg}[e_c - z_e]`: the values of
    :math:`e_c` (up to rounding), the gradient of :math:`z_e`. ``codebook_loss``
    :math:`= \lVert \mathrm{sg}[z_e] - e_c \rVert^2` reaches only the codebook,
    ``commitment_loss`` :math:`= \lVert z_e - \mathrm{sg}[e_c] \rVert^2` only
    the encoder; both ``(B,)``, summed over positions and dimensions.
    """
    codes = nearest_codes(z_e, codebook)
    e_c = codebook[codes].movedim(-1, 1)  # (B, D, ...), like z_e
    codebook_loss = (z_e.detach() - e_c).pow(2).flatten(1).sum(1)
    commitment_loss = (z_e - e_c.detach()).pow(2).flatten(1).sum(1)
    return Quantized(z_e + (e_c - z_e).detach(), codes, codebook_loss, commitment_loss)


def vq_loss(quantized: Quantized, commitment: float = 0.25) -> torch.Tensor:
    r"""The two vector-quantisation terms of the paper's Eq. 3, ``(B,)`` (minimised).

    :math:`\lVert \mathrm{sg}[z_e] - e_c \rVert^2 + \text{commitment}\,\lVert z_e - \mathrm{sg}[e_c] \rVert^2`;
    add :math:`-\log p(x \mid z_q)` and average over the batch for the training
    loss. With an EMA codebook (a buffer, no gradient) the first term is a
    measurement only.
    """
    if isinstance(commitment, bool) or not isinstance(commitment, (int, float)) or commitment < 0:
        raise ValueError(f"commitment: expected a real number >= 0, got {commitment!r}")
    return quantized.codebook_loss + commitment * quantized.commitment_loss


class CodebookUsage(NamedTuple):
    """``counts`` ``(K,)``, ``perplexity`` :math:`e^{H(p)}` (a float in ``[1, K]``), ``dead`` ``(K,)`` bool."""
    counts: torch.Tensor
    perplexity: float
    dead: torch.Tensor


def codebook_usage(codes: torch.Tensor, n_codes: int) -> CodebookUsage:
    r"""How often each of the ``n_codes`` codes is used in ``codes`` (any shape, long).

    With :math:`p_k = n_k / \sum_j n_j`, the perplexity
    :math:`\exp\big(-\sum_k p_k \log p_k\big)` (:math:`0 \log 0 = 0`) is the
    number of equally used codes with the same entropy: :math:`K` for uniform
    use, 1 for a single code. A code is dead when its count is 0.
    """
    n_codes = check_positive_int("n_codes", n_codes)
    check_tensor("codes", codes, min_dim=0, floating=False)
    if codes.numel() == 0:
        raise ValueError("codes: expected at least one code, got an empty tensor")
    if codes.min() < 0 or codes.max() >= n_codes:
        raise ValueError(f"codes: expected values in 0..{n_codes - 1}, got "
                         f"{codes.min().item()}..{codes.max().item()}")
    counts = torch.bincount(codes.flatten(), minlength=n_codes)
    p = counts.double() / counts.sum()
    entropy = -torch.special.xlogy(p, p).sum().item()
    return CodebookUsage(counts, math.exp(entropy), counts == 0)


class VectorQuantizer(nn.Module):
    r"""A codebook ``(n_codes, code_dim)`` and its quantisation: ``forward(z_e) -> Quantized``.

    ``ema_decay=None``: the codebook is a parameter, learned through the
    codebook term of :func:`vq_loss`. ``ema_decay`` :math:`= \eta` in ``(0, 1)`` (the paper's
    :math:`\gamma`, 0.99): the codebook is a buffer, and each ``forward`` in
    training mode calls :meth:`ema_update`. Initial codes are uniform in
    :math:`(-1/K, 1/K)`.
    """

    def __init__(self, n_codes: int, code_dim: int, ema_decay: float | None = None,
                 eps: float = 1e-5):
        super().__init__()
        self.n_codes = check_positive_int("n_codes", n_codes)
        self.code_dim = check_positive_int("code_dim", code_dim)
        if ema_decay is not None and not 0 < ema_decay < 1:
            raise ValueError(f"ema_decay: expected None or a number in (0, 1), got {ema_decay!r}")
        self.ema_decay, self.eps = ema_decay, eps
        codebook = torch.empty(n_codes, code_dim).uniform_(-1 / n_codes, 1 / n_codes)
        if ema_decay is None:
            self.codebook = nn.Parameter(codebook)
        else:
            self.register_buffer("codebook", codebook)
            self.register_buffer("ema_count", torch.ones(n_codes))
            self.register_buffer("ema_sum", codebook.clone())

    def forward(self, z_e: torch.Tensor) -> Quantized:
        """Quantise ``z_e`` ``(B, code_dim, ...)``; in training mode with EMA, update the codebook first.

        An EMA codebook trains in one process only: under ``torchrun``,
        ``DistributedDataParallel`` would broadcast rank 0's buffers at every step, so
        the averages would follow rank 0's share of each batch (``RuntimeError``).
        """
        if self.ema_decay is not None and self.training:
            if distributed.world_size() > 1:
                raise RuntimeError("VectorQuantizer: an EMA codebook (ema_decay) averages one "
                                   "process's outputs only; train it in one process, or learn "
                                   "the codebook by its loss term (ema_decay=None)")
            self.ema_update(z_e)
        return quantize(z_e, self.codebook)

    @torch.no_grad()
    def ema_update(self, z_e: torch.Tensor) -> None:
        r"""One EMA step on a batch (paper, Appendix A.1; Sonnet's ``VectorQuantizerEMA``).

        With :math:`n_k` vectors of the batch assigned to code :math:`k`,
        summing to :math:`s_k`, and :math:`\eta` = ``ema_decay`` (Equation (vq-ema); the
        paper writes :math:`\gamma`):

        .. math::
            N_k \leftarrow \eta N_k + (1 - \eta) n_k, \quad
            m_k \leftarrow \eta m_k + (1 - \eta) s_k, \quad
            e_k = m_k / \tilde N_k,

        with the Laplace-smoothed counts
        :math:`\tilde N_k = \frac{N_k + \epsilon}{n + K \epsilon}\, n`,
        :math:`n = \sum_k N_k` (:math:`\epsilon` = ``eps``), which keep an
        unused code from dividing by zero. On a fixed batch the codes converge
        to the means of the vectors assigned to them.
        """
        flat = _flat(z_e.detach(), self.codebook).to(self.codebook.dtype)
        one_hot = nn.functional.one_hot(nearest_codes(z_e, self.codebook).flatten(),
                                        self.n_codes).to(flat.dtype)
        eta = self.ema_decay
        # $N_k \leftarrow \eta N_k + (1 - \eta) n_k$, $m_k \leftarrow \eta m_k + (1 - \eta) s_k$
        self.ema_count.mul_(eta).add_(one_hot.sum(0), alpha=1 - eta)
        self.ema_sum.mul_(eta).add_(one_hot.T @ flat, alpha=1 - eta)
        # Laplace smoothing: $\tilde N_k = (N_k + \epsilon) / (n + K\epsilon) \cdot n$, $n = \sum_k N_k$
        n = self.ema_count.sum()
        smoothed = (self.ema_count + self.eps) / (n + self.n_codes * self.eps) * n
        # $e_k = m_k / \tilde N_k$
        self.codebook.copy_(self.ema_sum / smoothed[:, None])

    @torch.no_grad()
    def restart_dead_codes(self, z_e: torch.Tensor, dead: torch.Tensor,
                           generator: torch.Generator | None = None) -> int:
        """Move each dead code (``dead`` ``(K,)`` bool) onto an encoder output drawn from ``z_e``.

        The outputs are drawn without replacement while there are enough;
        an EMA codebook restarts their averages too (count 1, sum the code).
        Returns the number of codes restarted.
        """
        flat = _flat(z_e.detach(), self.codebook)
        check_tensor("dead", dead, ndim=1, floating=False)
        if dead.dtype != torch.bool or len(dead) != self.n_codes:
            raise ValueError(f"dead: expected a bool tensor ({self.n_codes},), "
                             f"got {dead.dtype} of shape {tuple(dead.shape)}")
        index = dead.nonzero().squeeze(1)
        n_dead = len(index)
        if n_dead <= len(flat):
            rows = torch.randperm(len(flat), generator=generator)[:n_dead]
        else:
            rows = torch.randint(len(flat), (n_dead,), generator=generator)
        self.codebook[index] = flat[rows.to(flat.device)].to(self.codebook.dtype)
        if self.ema_decay is not None:
            self.ema_count[index] = 1.0
            self.ema_sum[index] = self.codebook[index]
        return n_dead

