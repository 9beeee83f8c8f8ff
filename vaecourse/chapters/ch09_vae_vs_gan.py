r"""Chapter 9 (``chapters/09_vae_vs_gan.ipynb``): VAE against GAN, measured with FID on MNIST features.

Data: MNIST padded to 32×32 (:func:`vaecore.data.pad_to_32`), grey levels in
``[0, 1]`` (not binarized: the GAN and the VAE see the same images), and the
10,000 test images. The 60,000 training images are split by :func:`splits32`
into 55,000 for training and 5,000 for validation: the *last* 5,000 of a
seed-0 permutation, in permutation order. This is **not** the split of
:func:`vaecourse.protocol.mnist_split` (which holds out the *first* 5,000 of
the same permutation, so the two validation sets share no image); the
checkpoints below were trained on it, and their records say so.

- ``mnist32-lenet-classifier-e3``: a LeNet-5-sized classifier
  (:class:`vaecore.classify.LeNet`), the feature extractor: its 84
  penultimate activations are the features of "FID with MNIST features".
  Cross-entropy, Adam 1e-3, batch 128, 3 epochs.
- ``mnist32-mlp-bernoulli-z100-e20``: MLP VAE 1024-256-128-100 /
  100-128-256-1024 with a Bernoulli decoder on grey levels, negative ELBO,
  Adam 1e-3, batch 128, 20 epochs.
- ``mnist32-mlp-gan-z100-e20``: an MLP GAN of matched size
  (:mod:`vaecore.gan`): the generator has the VAE decoder's layers plus
  BatchNorm and a sigmoid output, the discriminator 1024-256-128-1 (LeakyReLU
  0.2). Non-saturating generator loss, Adam 2e-4 with betas (0.5, 0.999),
  batch 100, 20 epochs, trained by :func:`train_gan`.
- ``mnist32-mlp-gan-smooth-z100-e20``: the same GAN with one-sided label
  smoothing (real label 0.9), trained to the same 20 epochs.

Every model records, after each epoch, the FID (MNIST features) of
``N_FID = 2,000`` generated images against the first 2,000 test images in
``history.val["fid"]`` (:class:`FIDCallback`), and at the end, for every
training seed, the FIDs at n = 2,000 and 10,000 and :func:`sample_statistics`
(sharpness, precision and recall, the spread of the digits).
"""
from __future__ import annotations

import time
from functools import lru_cache, partial
from typing import NamedTuple

import torch
import torch.nn.functional as F

from vaecore import data
from vaecore.checkpoint import save_checkpoint
from vaecore.classify import LeNet, classifier_loss, features
from vaecore.elbo import negative_elbo
from vaecore.gan import (GAN, Discriminator, Generator, discriminator_loss,
                         generator_loss_minimax, generator_loss_nonsaturating)
from vaecore.metrics import fid, precision_recall
from vaecore.mlp import MLPDecoder, MLPEncoder
from vaecore.seeding import local_seed
from vaecore.train import History
from vaecore.vae import VAE

from .. import store
from ..protocol import evaluate_elbo
from ..recipe import Recipe, checkpoint_name

__all__ = ["LATENT_DIM", "N_FID", "NAMES", "splits32", "features", "mlp_vae32", "mlp_gan",
           "discriminator_loss", "generator_loss_minimax", "generator_loss_nonsaturating",
           "GANTerms", "gan_step", "train_gan", "fit_gan", "FIDCallback", "fid_against_test",
           "grey_share", "sample_statistics", "SAMPLE_STATS_SEED",
           "RECIPES"]

LATENT_DIM, N_FID = 100, 2000
SAMPLE_STATS_SEED = 11   # the samples of sample_statistics, as the chapter draws them
G_HIDDEN, D_HIDDEN = (128, 256), (256, 128)
CLASSIFIER_EPOCHS, VAE_EPOCHS, GAN_EPOCHS = 3, 20, 20

#: The chapter's checkpoints, by role.
NAMES = {"judge": checkpoint_name("mnist32", "lenet", "classifier", epochs=CLASSIFIER_EPOCHS),
         "vae": checkpoint_name("mnist32", "mlp", "bernoulli", z=LATENT_DIM, epochs=VAE_EPOCHS),
         "gan": checkpoint_name("mnist32", "mlp", "gan", z=LATENT_DIM, epochs=GAN_EPOCHS),
         "gan-smooth": checkpoint_name("mnist32", "mlp", "gan", "smooth", z=LATENT_DIM,
                                       epochs=GAN_EPOCHS)}


@lru_cache(maxsize=1)
def splits32() -> tuple[data.Dataset, data.Dataset, data.Dataset]:
    """(train 55,000, validation 5,000, test 10,000) MNIST datasets padded to 32×32.

    Validation: the last 5,000 of a seed-0 permutation of the training
    images, in permutation order (see the module's docstring).
    """
    full = data.pad_to_32(data.mnist("train"))
    order = torch.randperm(len(full.x), generator=torch.Generator().manual_seed(0))
    train_idx, val_idx = order[:-5000], order[-5000:]
    train = full._replace(x=full.x[train_idx], y=full.y[train_idx])
    val = full._replace(x=full.x[val_idx], y=full.y[val_idx])
    return train, val, data.pad_to_32(data.mnist("test"))


def lenet(seed: int = 0) -> LeNet:
    """A seeded :class:`vaecore.classify.LeNet`."""
    with local_seed(seed):
        return LeNet()


@torch.no_grad()
def _evaluate_classifier(model) -> dict:
    test = splits32()[2]
    logits = torch.cat([model(test.x[i:i + 1000]) for i in range(0, len(test.x), 1000)])
    return {"test_accuracy": (logits.argmax(1) == test.y).float().mean().item(),
            "test_nll": F.cross_entropy(logits, test.y).item()}


@lru_cache(maxsize=1)
def _judge():
    model = lenet()
    store.load_weights(NAMES["judge"], model)
    model.eval()
    real = features(model, splits32()[2].x[:N_FID])
    return model, real


# --- the two generative models -------------------------------------------------

def mlp_vae32(seed: int = 0) -> VAE:
    """A seeded MLP VAE for 1×32×32 images: 1024-256-128-100 encoder, 100-128-256-1024 Bernoulli decoder."""
    with local_seed(seed):
        return VAE(MLPEncoder((1, 32, 32), LATENT_DIM, hidden=D_HIDDEN),
                   MLPDecoder(LATENT_DIM, (1, 32, 32), hidden=G_HIDDEN))


def mlp_gan(seed: int = 0) -> GAN:
    """A seeded MLP GAN: generator 100-128-256-1024 (BatchNorm), discriminator 1024-256-128-1."""
    with local_seed(seed):
        return GAN(Generator(LATENT_DIM, G_HIDDEN), Discriminator(D_HIDDEN))


# --- the GAN's training loop (the lesson of this chapter) ------------------------

class GANTerms(NamedTuple):
    """One step's per-example terms ``(B,)``: the two losses and D's probabilities."""
    d_loss: torch.Tensor
    g_loss: torch.Tensor
    d_real: torch.Tensor
    d_fake: torch.Tensor


def gan_step(gan: GAN, x: torch.Tensor, opt_d, opt_g, *,
             g_loss_fn=generator_loss_nonsaturating,
             real_label: float = 1.0) -> GANTerms:
    """One alternating update: the discriminator on real + fake, then the generator."""
    z = torch.randn(len(x), gan.latent_dim)
    fake = gan.generator(z)
    # 1. discriminator: real images towards `real_label`, fakes towards 0
    #    (G is held fixed)
    real_logits, fake_logits = gan.discriminator(x), gan.discriminator(fake.detach())
    d_loss = discriminator_loss(real_logits, fake_logits, real_label)
    opt_d.zero_grad(set_to_none=True)
    d_loss.mean().backward()
    opt_d.step()
    # 2. generator: through the updated D; only G's optimizer steps
    fake_logits = gan.discriminator(fake)
    g_loss = g_loss_fn(fake_logits)
    opt_g.zero_grad(set_to_none=True)
    g_loss.mean().backward()
    opt_g.step()
    d_real, d_fake = torch.sigmoid(real_logits), torch.sigmoid(fake_logits)
    return GANTerms(d_loss.detach(), g_loss.detach(), d_real.detach(), d_fake.detach())


def train_gan(gan: GAN, x: torch.Tensor, *, epochs: int, batch_size: int = 100,
              lr: float = 2e-4, betas=(0.5, 0.999),
              g_loss_fn=generator_loss_nonsaturating, real_label: float = 1.0,
              seed: int = 0, callbacks=(), history=None, checkpoint=None) -> History:
    """Train ``gan`` on images ``x`` ``(N, 1, 32, 32)`` with two Adam optimizers for
    ``epochs`` more epochs.

    Each epoch shuffles ``x`` (seed ``seed + epochs done``), runs
    :func:`gan_step` on every batch and records the epoch means of the four
    :class:`GANTerms` in ``history.train``; then calls ``cb(epoch, history)``
    for each callback and saves ``checkpoint`` (a path) if given. Pass the
    ``history`` of an interrupted run to continue it.
    """
    history = History() if history is None else History.from_dict(history.to_dict())
    opt_d = torch.optim.Adam(gan.discriminator.parameters(), lr, betas=betas)
    opt_g = torch.optim.Adam(gan.generator.parameters(), lr, betas=betas)
    done = len(history)
    torch.manual_seed(seed + done)
    shuffle = torch.Generator().manual_seed(seed + done)
    gan.train()
    for epoch in range(done + 1, done + epochs + 1):
        start, sums = time.perf_counter(), {}
        history.lr.append(lr)
        order = torch.randperm(len(x), generator=shuffle)
        for i in range(0, len(x), batch_size):
            terms = gan_step(gan, x[order[i:i + batch_size]], opt_d, opt_g,
                             g_loss_fn=g_loss_fn, real_label=real_label)
            for name, value in terms._asdict().items():
                sums[name] = sums.get(name, 0.0) + value.double().sum().item()
        for name, total in sums.items():
            history.train.setdefault(name, []).append(total / len(x))
        history.epoch_time.append(time.perf_counter() - start)
        for cb in callbacks:
            cb(epoch, history)
        if checkpoint is not None:
            save_checkpoint(checkpoint, gan,
                            config={"lr": lr, "batch_size": batch_size},
                            metrics={"train": history.last("train")}, history=history)
    return history


def fit_gan(gan: GAN, g_loss_fn, train, *, epochs: int, val=None, seed: int = 0,
            progress: bool = True, **options) -> History:
    """:func:`train_gan` with ``fit``'s signature, so a recipe can name it as its trainer.

    ``epochs`` is the run's total, as for ``fit`` (``train_gan`` takes the
    epochs still to run). ``val`` and ``progress`` are accepted and unused (the
    GAN's held-out measure is the FID callback).
    """
    remaining = epochs - len(options.get("history") or ())
    if remaining <= 0:
        return options["history"]
    return train_gan(gan, train, epochs=remaining, g_loss_fn=g_loss_fn, seed=seed, **options)


# --- FID during training -----------------------------------------------------------

def _samples(model, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    x = torch.cat([model.sample(min(1000, n - i), generator=g) for i in range(0, n, 1000)])
    model.train(was_training)
    return x


def fid_against_test(model, n: int = N_FID, seed: int = 123) -> float:
    """FID (LeNet features) of ``n`` samples of ``model`` against the first ``n`` test images."""
    judge, real = _judge()
    if n != N_FID:
        real = features(judge, splits32()[2].x[:n])
    return fid(real, features(judge, _samples(model, n, seed))).item()


class FIDCallback:
    """``cb(epoch, history)``: append :func:`fid_against_test` of ``model`` to ``history.val["fid"]``."""

    def __init__(self, model, n: int = N_FID):
        self.model, self.n = model, n

    def __call__(self, epoch: int, history: History) -> None:
        history.val.setdefault("fid", []).append(fid_against_test(self.model, self.n))


# --- recipes --------------------------------------------------------------------------

def grey_share(x: torch.Tensor) -> float:
    """The share of pixel values strictly between 0.2 and 0.8 (a real digit has few)."""
    return ((x > 0.2) & (x < 0.8)).float().mean().item()


@torch.no_grad()
def sample_statistics(model, n: int = N_FID, seed: int = SAMPLE_STATS_SEED) -> dict:
    """What the chapter measures of ``n`` samples (generator seeded with ``seed``) besides FID.

    ``test_grey_share`` (:func:`grey_share`); ``test_precision`` and
    ``test_recall`` (:func:`vaecore.metrics.precision_recall`, k = 3, LeNet
    features, against the first ``n`` test images); ``test_digit_share_min`` and
    ``test_digit_share_max``, the smallest and largest share of one digit among
    the judge's labels of the samples (0.1 each for a uniform generator).
    """
    judge, real = _judge()
    if n != N_FID:
        real = features(judge, splits32()[2].x[:n])
    x = _samples(model, n, seed)
    precision, recall = precision_recall(real, features(judge, x), k=3)
    shares = torch.bincount(judge(x).argmax(1), minlength=10) / n
    return {"test_grey_share": grey_share(x), "test_precision": precision, "test_recall": recall,
            "test_digit_share_min": shares.min().item(), "test_digit_share_max": shares.max().item()}


def _evaluate_generative(model) -> dict:
    return {"test_fid_2000": fid_against_test(model, N_FID),
            "test_fid_10000": fid_against_test(model, 10_000), **sample_statistics(model)}


def _evaluate_vae(model) -> dict:
    m = evaluate_elbo(model, splits32()[2].x, batch_size=1000)
    return {"test_elbo": -m["test_loss"], **_evaluate_generative(model)}


def _classifier_data():
    train, val, _ = splits32()
    return (train.x, train.y), (val.x, val.y)


def _image_data():
    train, val, _ = splits32()
    return train.x, val.x


_DATA = ("MNIST padded to 32×32, grey levels (55,000 train; validation: the last 5,000 of a "
         "seed-0 permutation, not the split of the other MNIST recipes)")
_GAN = ("MLP GAN, G 100-128-256-1024 (BatchNorm, sigmoid), D 1024-256-128-1 (LeakyReLU 0.2), "
        "non-saturating G loss, Adam 2e-4 betas (0.5, 0.999), batch 100")


def _gan_recipe(real_label: float, epochs: int, what: str) -> Recipe:
    return Recipe(build=mlp_gan, loss=generator_loss_nonsaturating, data=_image_data,
                  epochs=epochs, evaluate=_evaluate_generative, trainer=fit_gan,
                  fit_options={"real_label": real_label}, callbacks=(FIDCallback,),
                  summary=f"{_DATA}, {_GAN}{what}, {epochs} epochs, FID every epoch")


RECIPES = {
    NAMES["judge"]: Recipe(
        build=lenet, loss=classifier_loss, data=_classifier_data, epochs=CLASSIFIER_EPOCHS,
        evaluate=_evaluate_classifier,
        summary=f"{_DATA}, LeNet-5-sized CNN (conv6-conv16-120-84-10), cross-entropy, "
                f"Adam 1e-3, batch 128, {CLASSIFIER_EPOCHS} epochs"),
    NAMES["vae"]: Recipe(
        build=mlp_vae32, loss=negative_elbo, data=_image_data, epochs=VAE_EPOCHS,
        evaluate=_evaluate_vae, fit_options={"lr": 1e-3, "batch_size": 128},
        callbacks=(FIDCallback,),
        summary=f"{_DATA}, MLP VAE 1024-256-128-100 / 100-128-256-1024, Bernoulli decoder "
                f"(cross-entropy on grey levels), negative ELBO, Adam 1e-3, batch 128, "
                f"{VAE_EPOCHS} epochs, FID every epoch"),
    NAMES["gan"]: _gan_recipe(1.0, GAN_EPOCHS, ""),
    NAMES["gan-smooth"]: _gan_recipe(0.9, GAN_EPOCHS,
                                     ", one-sided label smoothing (real label 0.9)"),
}
