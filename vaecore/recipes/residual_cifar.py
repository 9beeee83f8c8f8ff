r"""Recipes of chapter 8 (residual VAEs on natural images): CIFAR-10 birds and horses.

Data: the CIFAR-10 images of the classes ``bird`` and ``horse``
(:func:`vaecore.data.cifar10`), 32×32 RGB in ``[0, 1]``: 10,000 training images
split into 9,000 for training and 1,000 for validation (seed 0), and the 2,000
test images for the reported metrics.

- ``cifar-bh-resnet-beta0.01`` and ``cifar-bh-resnet-beta1``: the residual
  VAE of :mod:`vaecore.resnet` (channels (16, 32, 64), latent 64) with a
  Bernoulli (BCE-with-logits) decoder, trained on the β-weighted negative
  ELBO with β = 0.01 and β = 1; Adam 1e-3 with linear learning-rate decay
  towards 0 (:func:`vaecore.train.linear_decay` over the run's epochs, so the
  last epoch runs at 1/epochs of the base rate).
- ``cifar-bh-conv-beta1``: the plain convolutional VAE of :mod:`vaecore.conv`
  of about the same number of parameters, β = 1, same schedule.
- ``cifar-bh-classifier``: a small CNN, bird (0) versus horse (1), the judge of
  the latent-arithmetic experiment.

Every VAE is evaluated with the full ELBO (β = 1) on the test images, one
sample of z per image with a fixed seed; ``test_bits_per_dim`` is minus the
ELBO divided by :math:`3 \cdot 32 \cdot 32 \cdot \ln 2`. With grey levels the
Bernoulli term is a continuous cross-entropy, not a normalised density, so
these numbers compare models under one objective; they are not log-likelihoods
of the images.
"""
from __future__ import annotations

import math
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from .. import data
from ..classify import classifier_loss
from ..conv import ConvDecoder, ConvEncoder
from ..elbo import negative_elbo
from ..resnet import ResNetDecoder, ResNetEncoder
from ..train import fit, linear_decay
from ..vae import VAE
from ..zoo import Recipe

__all__ = ["CLASSES", "SHAPE", "LATENT_DIM", "RESNET_CHANNELS", "CONV_CHANNELS", "CONV_HIDDEN",
           "EPOCHS", "CLASSIFIER_EPOCHS", "splits", "test_set", "resnet_vae", "conv_vae",
           "BirdHorseClassifier", "classifier_loss", "class_probabilities", "bits_per_dim",
           "evaluate_vae", "RECIPES"]

CLASSES = ("bird", "horse")
SHAPE = (3, 32, 32)
LATENT_DIM = 64
RESNET_CHANNELS = (16, 32, 64)
CONV_CHANNELS = (32, 64)
CONV_HIDDEN = 40
EPOCHS = 15
CLASSIFIER_EPOCHS = 8
N_VAL = 1000


def splits() -> tuple[data.Dataset, data.Dataset]:
    """(train 9,000, validation 1,000) bird and horse training images (seed 0)."""
    full = data.cifar10("train", classes=CLASSES)
    train, val = data.train_val_split((full.x, full.y), n_val=N_VAL, seed=0)
    return (data.Dataset(*train, full.classes), data.Dataset(*val, full.classes))


def test_set() -> data.Dataset:
    """The 2,000 bird and horse test images (bird 0, horse 1)."""
    return data.cifar10("test", classes=CLASSES)


def bits_per_dim(nats: torch.Tensor | float, n_dims: int = 3 * 32 * 32):
    r"""Nats per image to bits per dimension, ``nats / (n_dims · ln 2)``.

    Equation (cifar-bits-per-dim).
    """
    return nats / (n_dims * math.log(2))


def resnet_vae(seed: int = 0) -> VAE:
    """The residual VAE: ResNetEncoder/Decoder, channels (16, 32, 64), latent 64, Bernoulli."""
    torch.manual_seed(seed)
    return VAE(ResNetEncoder(SHAPE, LATENT_DIM, channels=RESNET_CHANNELS),
               ResNetDecoder(LATENT_DIM, SHAPE, channels=RESNET_CHANNELS[::-1]))


def conv_vae(seed: int = 0) -> VAE:
    """The plain baseline: ConvEncoder/Decoder, channels (32, 64), hidden 40, latent 64."""
    torch.manual_seed(seed)
    return VAE(ConvEncoder(SHAPE, LATENT_DIM, channels=CONV_CHANNELS, hidden=CONV_HIDDEN),
               ConvDecoder(LATENT_DIM, SHAPE, channels=CONV_CHANNELS[::-1], hidden=CONV_HIDDEN))


@torch.no_grad()
def evaluate_vae(model, x: torch.Tensor, batch_size: int = 500, seed: int = 2) -> dict:
    """Test ELBO terms (β = 1) in nats per image and bits per dimension, eval mode."""
    model.eval()
    g = torch.Generator().manual_seed(seed)
    rec, kl = [], []
    for i in range(0, len(x), batch_size):
        out = negative_elbo(model, x[i:i + batch_size], beta=1.0, generator=g)
        rec.append(out.reconstruction)
        kl.append(out.kl)
    rec, kl = torch.cat(rec).mean().item(), torch.cat(kl).mean().item()
    elbo = rec - kl
    return {"test_reconstruction": rec, "test_kl": kl, "test_elbo": elbo,
            "test_bits_per_dim": bits_per_dim(-elbo), "n_test": len(x)}


def _vae_train(model, checkpoint=None, history=None, *, beta: float, epochs: int):
    train, val = splits()
    remaining = epochs - (len(history) if history else 0)
    return fit(model, partial(negative_elbo, beta=beta), train.x, val=val.x,
               epochs=max(remaining, 1), lr=1e-3, batch_size=128, seed=0,
               lr_schedule=linear_decay(epochs), checkpoint=checkpoint, history=history)


def _vae_recipe(build, beta: float, what: str, epochs: int = EPOCHS) -> Recipe:
    return Recipe(
        build=build, train=partial(_vae_train, beta=beta, epochs=epochs),
        evaluate=lambda model: evaluate_vae(model, test_set().x),
        summary=f"CIFAR-10 birds+horses 32×32 (9,000 train), {what}, latent {LATENT_DIM}, "
                f"BCE-with-logits + {beta:g}·KL, Adam 1e-3 decayed linearly (last epoch at 1/15 of it), batch 128, "
                f"{epochs} epochs")


# --- the judge --------------------------------------------------------------

class BirdHorseClassifier(nn.Module):
    """x ``(B, 3, 32, 32)`` → logits ``(B, 2)`` (bird, horse).

    Three ``Conv2d(3×3) → ReLU → MaxPool(2)`` stages (16, 32, 32 channels),
    then ``Linear(64) → ReLU → Linear(2)``.
    """

    def __init__(self):
        super().__init__()
        layers, c_in = [], 3
        for c in (16, 32, 32):
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            c_in = c
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Sequential(nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the class logits ``(B, 2)``."""
        return self.head(self.features(x))


def _random_flip(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability ½ (data augmentation)."""
    flip = torch.rand(len(x), generator=g) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)


@torch.no_grad()
def class_probabilities(classifier, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Softmax probabilities ``(N, 2)`` (bird, horse) of the images ``x`` ``(N, 3, 32, 32)``."""
    classifier.eval()
    return torch.cat([classifier(x[i:i + batch_size]).softmax(1)
                      for i in range(0, len(x), batch_size)])


def _build_classifier(seed: int = 0) -> BirdHorseClassifier:
    torch.manual_seed(seed)
    return BirdHorseClassifier()


def _train_classifier(model, checkpoint=None, history=None, epochs: int = CLASSIFIER_EPOCHS):
    train, val = splits()
    remaining = epochs - (len(history) if history else 0)
    return fit(model, classifier_loss, (train.x, train.y), val=(val.x, val.y),
               epochs=max(remaining, 1), seed=0, transform=_random_flip,
               lr_schedule=linear_decay(epochs), checkpoint=checkpoint, history=history)


@torch.no_grad()
def _evaluate_classifier(model) -> dict:
    test = test_set()
    probs = class_probabilities(model, test.x)
    return {"test_accuracy": (probs.argmax(1) == test.y).float().mean().item(),
            "test_nll": F.nll_loss(probs.log(), test.y).item(), "n_test": len(test.y)}


RECIPES = {
    "cifar-bh-resnet-beta0.01": _vae_recipe(
        resnet_vae, 0.01, "residual VAE (ResNet channels 16-32-64)"),
    "cifar-bh-resnet-beta1": _vae_recipe(
        resnet_vae, 1.0, "residual VAE (ResNet channels 16-32-64)"),
    "cifar-bh-conv-beta1": _vae_recipe(
        conv_vae, 1.0, f"plain conv VAE (channels 32-64, hidden {CONV_HIDDEN})"),
    "cifar-bh-classifier": Recipe(
        build=_build_classifier, train=_train_classifier, evaluate=_evaluate_classifier,
        summary=f"CIFAR-10 birds vs horses 32×32 (9,000 train, random flips), CNN "
                f"conv16-conv32-conv32-64-2, cross-entropy, Adam 1e-3 linearly decayed, "
                f"batch 128, {CLASSIFIER_EPOCHS} epochs"),
}
