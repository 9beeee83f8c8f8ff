r"""The VQ-VAE of van den Oord, Vinyals and Kavukcuoglu (2017): model, loss, dead-code restarts.

:class:`VQVAE` puts a :class:`vaecore.vq.VectorQuantizer` between the encoder and the
decoder of :class:`vaecore.conv.GridEncoder` and :class:`vaecore.conv.GridDecoder`:
an image becomes a grid of ``code_dim`` vectors a quarter of its height and width,
each replaced by its nearest code (Equation (vq-nearest)), then decoded.
:func:`vq_vae_loss` is the paper's Eq. 3 (Equation (vq-loss)): minus the decoder's
log-likelihood plus :func:`vaecore.vq.vq_loss`. :class:`DeadCodeRestarts` is the remedy
for codes no encoder output uses, as a ``fit`` callback.

Reduction rule: the terms are ``(B,)``, summed over positions, dimensions and pixels;
only the ``loss`` of :func:`vq_vae_loss` is a batch mean.
"""
from __future__ import annotations

import numbers
from typing import NamedTuple

import torch
from torch import nn

from vaecore._checks import check_code_grid, check_event_shape, check_positive_int
from vaecore.conv import GridDecoder, GridEncoder
from vaecore.likelihoods import Likelihood, bernoulli
from vaecore.vq import Quantized, VectorQuantizer, codebook_usage, nearest_codes, vq_loss

__all__ = ["VQVAE", "VQOutput", "VQTerms", "vq_vae_loss", "DeadCodeRestarts"]


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
        check_code_grid(codes, self.grid, self.n_codes)
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
    r"""The VQ-VAE objective (paper, Eq. 3; Equation (vq-loss)), batch mean; a ``fit`` loss
    (nothing is sampled).

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
    (:meth:`vaecore.vq.VectorQuantizer.restart_dead_codes`).

    ``images``: a fixed sample of training images ``(N, *model.in_shape)``, passed
    through ``transform`` with a generator seeded by ``seed`` and the epoch.
    ``restarted[epoch]`` is the number restarted after that epoch; none after the last,
    where a restarted code could not be trained. ``fit`` saves an epoch before it calls
    the callbacks, so a run resumed after an interruption does not repeat the restart of
    the epoch it resumes from.
    """

    def __init__(self, model: VQVAE, images: torch.Tensor, epochs: int, transform=None,
                 seed: int = 0, batch_size: int = 1000):
        check_event_shape("images", images, model.in_shape)
        if len(images) == 0:
            raise ValueError("images: expected at least one image to take encoder outputs from")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"seed: expected an integer >= 0, got {seed!r}")
        self.model, self.images, self.transform = model, images, transform
        self.epochs = check_positive_int("epochs", epochs)
        self.seed, self.batch_size = int(seed), check_positive_int("batch_size", batch_size)
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
