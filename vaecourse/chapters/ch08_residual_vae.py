r"""Chapter 8 (``chapters/08_residual_vae.ipynb``): residual VAEs on natural images.

Data: the CIFAR-10 images of the classes ``bird`` and ``horse``
(:func:`vaecore.data.cifar10`), 32×32 RGB in ``[0, 1]``: 10,000 training images
split into 9,000 for training and a random 1,000 for validation (seed 0), and
the 2,000 test images for the reported metrics.

- ``cifar-bh-resnet-bernoulli-z64-beta0.01-e15`` and
  ``cifar-bh-resnet-bernoulli-z64-e15``: the residual VAE of
  :mod:`vaecore.resnet` (channels (16, 32, 64), latent 64) with a Bernoulli
  (BCE-with-logits) decoder, trained on the β-weighted negative ELBO with
  β = 0.01 and β = 1; Adam 1e-3 with linear learning-rate decay towards 0
  (:func:`vaecore.train.linear_decay` over the run's epochs, so the last
  epoch runs at 1/epochs of the base rate).
- ``cifar-bh-resnet-dlogistic-z64-e15``: the same residual VAE, β = 1, whose
  decoder outputs a mean and a log-scale per sub-pixel (its last convolution has
  6 channels, :class:`vaecore.discretized_logistic.MeanLogScaleDecoder`) for the
  discretized logistic over the 256 levels
  (:data:`vaecore.discretized_logistic.discretized_logistic`); same data,
  optimizer, schedule and epochs as its Bernoulli twin.
- ``cifar-bh-conv-bernoulli-z64-e15``: the plain convolutional VAE of
  :mod:`vaecore.conv` of about the same number of parameters, β = 1.
- ``cifar-bh-cnn-classifier-e8``: a small CNN, bird (0) versus horse (1),
  the judge of the latent-arithmetic experiment.

Every VAE is evaluated with the full ELBO (β = 1) on the test images by
:func:`vaecourse.protocol.evaluate_elbo` in batches of 500, one sample of z
per image with a fixed seed; ``test_bits_per_dim`` is minus the ELBO in bits
per dimension (:func:`vaecore.units.bits_per_dim`, :math:`D_x = 3 \cdot 32 \cdot 32`).
With grey levels the Bernoulli term is a continuous cross-entropy, not a
normalised density, so the Bernoulli recipes' numbers compare models under one
objective; they are not log-likelihoods of the images. The discretized
logistic assigns probabilities to the 256 levels (the images are uint8 / 255,
exactly on that grid), so its ``test_bits_per_dim`` is a true discrete
negative ELBO: an upper bound on :math:`-\log_2 P(x) / D_x`, the bits/dim of the
literature (on these JPEG-decoded images, not the original CIFAR-10 pixels).
"""
from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F

from vaecore import data
from vaecore.classify import ConvClassifier, class_probabilities, classifier_loss
from vaecore.conv import ConvDecoder, ConvEncoder
from vaecore.discretized_logistic import MeanLogScaleDecoder, discretized_logistic
from vaecore.elbo import negative_elbo
from vaecore.resnet import ResNetDecoder, ResNetEncoder
from vaecore.seeding import local_seed
from vaecore.train import linear_decay
from vaecore.units import bits_per_dim
from vaecore.vae import VAE

from ..protocol import evaluate_elbo
from ..recipe import Recipe, checkpoint_name

__all__ = ["CLASSES", "SHAPE", "N_DIMS", "LATENT_DIM", "RESNET_CHANNELS", "CONV_CHANNELS",
           "CONV_HIDDEN", "EPOCHS", "CLASSIFIER_EPOCHS", "NAMES", "splits", "test_set",
           "resnet_vae", "resnet_dlogistic_vae", "conv_vae", "bird_horse_classifier",
           "class_probabilities", "bits_per_dim", "evaluate_vae", "RECIPES"]

CLASSES = ("bird", "horse")
SHAPE = (3, 32, 32)
N_DIMS = 3 * 32 * 32
LATENT_DIM = 64
RESNET_CHANNELS = (16, 32, 64)
CONV_CHANNELS = (32, 64)
CONV_HIDDEN = 40
EPOCHS = 15
CLASSIFIER_EPOCHS = 8
N_VAL = 1000


def _vae_name(net: str, beta: float, kind: str = "bernoulli") -> str:
    return checkpoint_name("cifar-bh", net, kind, z=LATENT_DIM, beta=beta, epochs=EPOCHS)


#: The chapter's checkpoints, by role.
NAMES = {"residual, β = 0.01": _vae_name("resnet", 0.01),
         "residual, β = 1": _vae_name("resnet", 1.0),
         "residual, discretized logistic": _vae_name("resnet", 1.0, "dlogistic"),
         "plain conv, β = 1": _vae_name("conv", 1.0),
         "classifier": checkpoint_name("cifar-bh", "cnn", "classifier",
                                       epochs=CLASSIFIER_EPOCHS)}


def splits() -> tuple[data.Dataset, data.Dataset]:
    """(train 9,000, validation 1,000) bird and horse training images (seed 0)."""
    full = data.cifar10("train", classes=CLASSES)
    train, val = data.train_val_split((full.x, full.y), n_val=N_VAL, seed=0)
    return (data.Dataset(*train, full.classes), data.Dataset(*val, full.classes))


def test_set() -> data.Dataset:
    """The 2,000 bird and horse test images (bird 0, horse 1)."""
    return data.cifar10("test", classes=CLASSES)


def resnet_vae(seed: int = 0) -> VAE:
    """The residual VAE: ResNetEncoder/Decoder, channels (16, 32, 64), latent 64, Bernoulli."""
    with local_seed(seed):
        return VAE(ResNetEncoder(SHAPE, LATENT_DIM, channels=RESNET_CHANNELS),
                   ResNetDecoder(LATENT_DIM, SHAPE, channels=RESNET_CHANNELS[::-1]))


def resnet_dlogistic_vae(seed: int = 0) -> VAE:
    """The residual VAE with a (mean, log-scale) per sub-pixel: discretized logistic (seeded)."""
    with local_seed(seed):
        decoder = ResNetDecoder(LATENT_DIM, (2 * SHAPE[0], *SHAPE[1:]),
                                channels=RESNET_CHANNELS[::-1])
        return VAE(ResNetEncoder(SHAPE, LATENT_DIM, channels=RESNET_CHANNELS),
                   MeanLogScaleDecoder(decoder), likelihood=discretized_logistic)


def conv_vae(seed: int = 0) -> VAE:
    """The plain baseline: ConvEncoder/Decoder, channels (32, 64), hidden 40, latent 64."""
    with local_seed(seed):
        return VAE(ConvEncoder(SHAPE, LATENT_DIM, channels=CONV_CHANNELS, hidden=CONV_HIDDEN),
                   ConvDecoder(LATENT_DIM, SHAPE, channels=CONV_CHANNELS[::-1],
                               hidden=CONV_HIDDEN))


def evaluate_vae(model, x: torch.Tensor, batch_size: int = 500) -> dict:
    """Test ELBO terms (β = 1) in nats per image and bits per dimension, eval mode."""
    m = evaluate_elbo(model, x, partial(negative_elbo, beta=1.0), batch_size=batch_size)
    elbo = m["test_log_likelihood"] - m["test_kl"]
    return {"test_log_likelihood": m["test_log_likelihood"], "test_kl": m["test_kl"],
            "test_elbo": elbo, "test_bits_per_dim": bits_per_dim(-elbo, N_DIMS),
            "n_test": len(x)}


def _vae_data():
    train, val = splits()
    return train.x, val.x


def _vae_recipe(build, beta: float, what: str, log_lik: str = "BCE-with-logits") -> Recipe:
    return Recipe(
        build=build, loss=partial(negative_elbo, beta=beta), data=_vae_data, epochs=EPOCHS,
        fit_options={"lr": 1e-3, "batch_size": 128, "lr_schedule": linear_decay(EPOCHS)},
        evaluate=lambda model: evaluate_vae(model, test_set().x),
        summary=f"CIFAR-10 birds+horses 32×32 (9,000 train, a random 1,000 held out), {what}, "
                f"latent {LATENT_DIM}, {log_lik} + {beta:g}·KL, Adam 1e-3 decayed "
                f"linearly (last epoch at 1/15 of it), batch 128, {EPOCHS} epochs")


# --- the judge --------------------------------------------------------------

def bird_horse_classifier(seed: int = 0) -> ConvClassifier:
    """x ``(B, 3, 32, 32)`` → logits ``(B, 2)`` (bird, horse): conv 16-32-32, head 64 (seeded)."""
    with local_seed(seed):
        return ConvClassifier(SHAPE, 2, channels=(16, 32, 32), hidden=64)


def _random_flip(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability ½ (data augmentation)."""
    flip = torch.rand(len(x), generator=g) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)


def _classifier_data():
    train, val = splits()
    return (train.x, train.y), (val.x, val.y)


@torch.no_grad()
def _evaluate_classifier(model) -> dict:
    test = test_set()
    probs = class_probabilities(model, test.x, batch_size=500)
    return {"test_accuracy": (probs.argmax(1) == test.y).float().mean().item(),
            "test_nll": F.nll_loss(probs.log(), test.y).item(), "n_test": len(test.y)}


_RES = "residual VAE (ResNet channels 16-32-64)"
RECIPES = {
    NAMES["residual, β = 0.01"]: _vae_recipe(resnet_vae, 0.01, _RES),
    NAMES["residual, β = 1"]: _vae_recipe(resnet_vae, 1.0, _RES),
    NAMES["residual, discretized logistic"]: _vae_recipe(
        resnet_dlogistic_vae, 1.0, _RES, "discretized-logistic NLL over 256 levels"),
    NAMES["plain conv, β = 1"]: _vae_recipe(
        conv_vae, 1.0, f"plain conv VAE (channels 32-64, hidden {CONV_HIDDEN})"),
    NAMES["classifier"]: Recipe(
        build=bird_horse_classifier, loss=classifier_loss, data=_classifier_data,
        epochs=CLASSIFIER_EPOCHS, evaluate=_evaluate_classifier,
        fit_options={"transform": _random_flip, "lr_schedule": linear_decay(CLASSIFIER_EPOCHS)},
        summary=f"CIFAR-10 birds vs horses 32×32 (9,000 train, random flips), CNN "
                f"conv16-conv32-conv32-64-2, cross-entropy, Adam 1e-3 linearly decayed, "
                f"batch 128, {CLASSIFIER_EPOCHS} epochs"),
}
