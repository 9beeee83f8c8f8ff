r"""Units of log-likelihoods: nats per image to bits per dimension.

A log-likelihood summed over an image's pixels, in nats, grows with the image
size; dividing by the number of dimensions and by :math:`\ln 2` gives bits per
dimension, the unit in which image models of different sizes are compared.
"""
from __future__ import annotations

import math

import torch

from vaecore._checks import check_positive_int

__all__ = ["bits_per_dim"]


def bits_per_dim(nats: torch.Tensor | float, n_dims: int):
    r"""Nats per image to bits per dimension: :math:`\mathrm{bpd} = \dfrac{\text{nats}}{D_x \ln 2}`.

    Equation (cifar-bits-per-dim), where :math:`D_x` is ``n_dims``, the number
    of dimensions of one image (``3 * 32 * 32`` for a CIFAR-10 image, ``784``
    for MNIST). ``nats`` is a float or a tensor of any shape (e.g. ``(B,)``,
    one value per image); the result has its type and shape. The sign is
    kept: pass a negative log-likelihood (minus the ELBO) to get the bits a
    code would spend.
    """
    check_positive_int("n_dims", n_dims)
    return nats / (n_dims * math.log(2))
