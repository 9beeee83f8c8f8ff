r"""Vector quantisation (van den Oord, Vinyals and Kavukcuoglu, 2017, VQ-VAE).

An encoder output :math:`z_e` of shape ``(B, D, ...)`` holds one
:math:`D`-vector per position (``(B, D)``: one position; ``(B, D, H, W)``: a
grid). Each is replaced by its nearest entry of a codebook
:math:`e \in \mathbb R^{K \times D}` (paper, Eq. 1-2):

.. math::
    c = \arg\min_k \lVert z_e - e_k \rVert_2, \qquad z_q = e_c .

The argmin has no gradient; the straight-through estimator copies the
gradient at :math:`z_q` to :math:`z_e`, written
:math:`z_q = z_e + \mathrm{sg}[e_c - z_e]` (value :math:`e_c`, Jacobian the
identity). The codebook learns from the codebook term, the encoder is kept
near its codes by the commitment term with weight ``commitment``
(the paper's :math:`\beta = 0.25`, renamed so as not to collide with the
β of the β-VAE; paper, Eq. 3):

.. math::
    L = -\log p(x \mid z_q) + \lVert \mathrm{sg}[z_e] - e_c \rVert_2^2
        + \text{commitment}\, \lVert z_e - \mathrm{sg}[e_c] \rVert_2^2 .

Alternatively the codebook follows exponential moving averages of the
vectors assigned to it (:class:`VectorQuantizer` with ``ema_decay``; paper,
Appendix A.1). Codebook health: :func:`codebook_usage` gives the counts, the
perplexity and the dead codes; :meth:`VectorQuantizer.restart_dead_codes`
re-initialises dead codes from encoder outputs.

The whole model: :class:`VQVAE` (the encoder and decoder of
:class:`vaecore.conv.GridEncoder` and :class:`vaecore.conv.GridDecoder`, a
:class:`VectorQuantizer` between them) and its loss :func:`vq_vae_loss`;
:class:`DeadCodeRestarts` is the remedy as a ``fit`` callback.

Reduction rule: the loss terms are ``(B,)``, summed over positions and the
:math:`D` dimensions (Sonnet's mean squared error divides them by ``D`` times
the number of positions); nothing here averages over the batch.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from vaecore._checks import check_positive_int, check_tensor
from vaecore.conv import GridDecoder, GridEncoder
from vaecore.likelihoods import Likelihood, bernoulli

__all__ = ["Quantized", "nearest_codes", "quantize", "vq_loss", "CodebookUsage",
           "codebook_usage", "VectorQuantizer", "VQVAE", "VQOutput", "VQTerms", "vq_vae_loss",
           "DeadCodeRestarts"]


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
    codebook term of :func:`vq_loss`. ``ema_decay = \gamma`` in ``(0, 1)``
    (the paper: 0.99): the codebook is a buffer, and each ``forward`` in
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
        """Quantise ``z_e`` ``(B, code_dim, ...)``; in training mode with EMA, update the codebook first."""
        if self.ema_decay is not None and self.training:
            self.ema_update(z_e)
        return quantize(z_e, self.codebook)

    @torch.no_grad()
    def ema_update(self, z_e: torch.Tensor) -> None:
        r"""One EMA step on a batch (paper, Appendix A.1; Sonnet's ``VectorQuantizerEMA``).

        With :math:`n_k` vectors of the batch assigned to code :math:`k`,
        summing to :math:`s_k`, and :math:`\gamma` = ``ema_decay``:

        .. math::
            N_k \leftarrow \gamma N_k + (1 - \gamma) n_k, \quad
            m_k \leftarrow \gamma m_k + (1 - \gamma) s_k, \quad
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
        gamma = self.ema_decay
        # $N_k \leftarrow \gamma N_k + (1 - \gamma) n_k$, $m_k \leftarrow \gamma m_k + (1 - \gamma) s_k$
        self.ema_count.mul_(gamma).add_(one_hot.sum(0), alpha=1 - gamma)
        self.ema_sum.mul_(gamma).add_(one_hot.T @ flat, alpha=1 - gamma)
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


class VQOutput(NamedTuple):
    """One pass x → z_e → z_q → p(x | z_q): the decoder's parameters and the :class:`Quantized`."""
    x_params: object
    quantized: Quantized


class VQVAE(nn.Module):
    r"""A VQ-VAE: images ``(B, *in_shape)`` → a grid of ``code_dim`` vectors a quarter of
    their height and width → their nearest of ``n_codes`` codes → ``p(x | z_q)``.

    ``likelihood``: :data:`vaecore.likelihoods.bernoulli` (binary images; the decoder
    gives one logit per pixel) or
    :data:`vaecore.discretized_logistic.discretized_logistic` (8-bit levels; the
    decoder gives ``(mean, log_scale)`` per sub-pixel). ``ema_decay``: the codebook
    update of :class:`VectorQuantizer` (None: learned by the codebook term).
    """

    def __init__(self, in_shape, n_codes: int, code_dim: int, hidden: int = 32, n_res: int = 2,
                 ema_decay: float | None = 0.99, likelihood: Likelihood = bernoulli):
        super().__init__()
        if not isinstance(likelihood, Likelihood) or likelihood.name not in (
                "bernoulli", "discretized_logistic"):
            raise ValueError("likelihood: expected vaecore.likelihoods.bernoulli or "
                             "vaecore.discretized_logistic.discretized_logistic, got "
                             f"{getattr(likelihood, 'name', type(likelihood).__name__)}")
        self.in_shape, self.likelihood = tuple(in_shape), likelihood
        self.n_params = 2 if likelihood.name == "discretized_logistic" else 1
        self.encoder = GridEncoder(self.in_shape, code_dim, hidden, n_res)
        self.grid = self.encoder.grid
        self.quantizer = VectorQuantizer(n_codes, code_dim, ema_decay)
        self.decoder = GridDecoder(code_dim, self.n_params * self.in_shape[0], hidden, n_res)

    @property
    def n_codes(self) -> int:
        return self.quantizer.n_codes

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's output :math:`z_e` ``(B, code_dim, H/4, W/4)``."""
        return self.encoder(x)

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """The nearest codes of ``x``'s grid, ``(B, H/4, W/4)`` long (no gradient, no EMA step)."""
        with torch.no_grad():
            return nearest_codes(self.encode(x), self.quantizer.codebook)

    def decode(self, z_q: torch.Tensor):
        r"""The parameters of :math:`p(x \mid z_q)` for a grid ``(B, code_dim, H/4, W/4)``."""
        out = self.decoder(z_q)
        return out if self.n_params == 1 else tuple(out.chunk(2, dim=1))

    def decode_codes(self, codes: torch.Tensor):
        r"""The parameters of :math:`p(x \mid c)` for code grids ``(B, H/4, W/4)`` (long)."""
        check_tensor("codes", codes, ndim=3, floating=False)
        if tuple(codes.shape[1:]) != self.grid or codes.dtype != torch.long:
            raise ValueError(f"codes: expected a long tensor (B, {self.grid[0]}, {self.grid[1]}), "
                             f"got {codes.dtype} of shape {tuple(codes.shape)}")
        if codes.numel() and (codes.min() < 0 or codes.max() >= self.n_codes):
            raise ValueError(f"codes: expected values in 0..{self.n_codes - 1}, got "
                             f"{codes.min().item()}..{codes.max().item()}")
        return self.decode(self.quantizer.codebook[codes].movedim(-1, 1))

    def forward(self, x: torch.Tensor) -> VQOutput:
        """Encode, quantise (an EMA step in training mode), decode."""
        quantized = self.quantizer(self.encode(x))
        return VQOutput(self.decode(quantized.z_q), quantized)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        r""":math:`E[x \mid c(x)]`, same shape as ``x`` (no gradient, no EMA step)."""
        with torch.no_grad():
            return self.likelihood.mean(self.decode_codes(self.codes(x)))


class VQTerms(NamedTuple):
    r"""``loss`` (scalar, minimised); ``log_likelihood`` :math:`\log p(x \mid z_q)`,
    ``codebook_loss`` and ``commitment_loss``, each ``(B,)``."""
    loss: torch.Tensor
    log_likelihood: torch.Tensor
    codebook_loss: torch.Tensor
    commitment_loss: torch.Tensor


def vq_vae_loss(model: VQVAE, x: torch.Tensor, commitment: float = 0.25,
                generator: torch.Generator | None = None) -> VQTerms:
    r"""The VQ-VAE objective (paper, Eq. 3), batch mean; a ``fit`` loss (nothing is sampled).

    :math:`-\log p(x \mid z_q) + \lVert \mathrm{sg}[z_e] - e_c \rVert^2
    + \text{commitment}\, \lVert z_e - \mathrm{sg}[e_c] \rVert^2`
    (:func:`vq_loss`). With an EMA codebook the middle term has no gradient and is a
    measurement only.
    """
    out = model(x)
    log_likelihood = model.likelihood.log_prob(x, out.x_params)
    loss = -log_likelihood + vq_loss(out.quantized, commitment)
    return VQTerms(loss.mean(), log_likelihood, out.quantized.codebook_loss,
                   out.quantized.commitment_loss)


class DeadCodeRestarts:
    """A ``fit`` callback: after each of the first ``epochs - 1`` epochs, the codes that no
    position of ``images`` uses are moved onto encoder outputs of those images
    (:meth:`VectorQuantizer.restart_dead_codes`).

    ``images``: a fixed sample of training images (passed through ``transform``
    with a generator seeded by ``seed`` and the epoch). ``restarted[epoch]`` is the
    number restarted after that epoch (none after the last, where a restart could not
    be trained). A run resumed after an interruption does not repeat the restart of
    the epoch it resumes from.
    """

    def __init__(self, model: VQVAE, images: torch.Tensor, epochs: int, transform=None,
                 seed: int = 0, batch_size: int = 1000):
        self.model, self.images, self.transform = model, images, transform
        self.epochs = check_positive_int("epochs", epochs)
        self.seed, self.batch_size = seed, check_positive_int("batch_size", batch_size)
        self.restarted: dict[int, int] = {}

    def __call__(self, epoch: int, history) -> None:
        if epoch < self.epochs:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            x = self.images if self.transform is None else self.transform(self.images, generator)
            device = self.model.quantizer.codebook.device
            with torch.no_grad():
                z_e = torch.cat([self.model.encode(x[i:i + self.batch_size].to(device))
                                 for i in range(0, len(x), self.batch_size)])
            usage = codebook_usage(nearest_codes(z_e, self.model.quantizer.codebook),
                                   self.model.n_codes)
            self.restarted[epoch] = self.model.quantizer.restart_dead_codes(z_e, usage.dead,
                                                                            generator)
