"""The course's reference model: the MLP VAE of the official PyTorch example.

784-400-20 with a Bernoulli decoder on dynamically binarized MNIST, Adam
1e-3, batch 128, 30 epochs. Chapters 5 (training), 6 (latent space) and 7
(β = 1 of the sweep) share it.
"""
from __future__ import annotations

import torch

from ..mlp import MLPDecoder, MLPEncoder
from ..vae import VAE
from ._mnist import vae_recipe


def mlp_vae(latent_dim: int = 20, hidden=(400,), seed: int = 0) -> VAE:
    """A freshly initialised (seeded) MLP VAE with a Bernoulli decoder for 1×28×28 images."""
    torch.manual_seed(seed)
    return VAE(MLPEncoder((1, 28, 28), latent_dim, hidden=hidden),
               MLPDecoder(latent_dim, (1, 28, 28), hidden=hidden))


RECIPES = {
    "mnist-mlp-bernoulli": vae_recipe(
        mlp_vae, epochs=30,
        summary="MNIST (dynamically binarized), MLP 784-400-20, Bernoulli decoder, "
                "negative ELBO, Adam 1e-3, batch 128, 30 epochs"),
}
