r"""Recipes of chapter 09 (VAE against GAN, measured with FID on MNIST features).

Data: MNIST padded to 32×32 (:func:`vaecore.data.pad_to_32`), grey levels in
``[0, 1]`` (not binarized: the GAN and the VAE see the same images); the
55,000/5,000 train/validation split of :mod:`vaecore.recipes._mnist` and the
10,000 test images.

- ``mnist32-lenet``: a LeNet-5-sized classifier (:class:`LeNet`), the feature
  extractor: its 84 penultimate activations are the features of "FID with
  MNIST features". Cross-entropy, Adam 1e-3, batch 128, 3 epochs.
- ``mnist32-mlp-vae-z100``: MLP VAE 1024-256-128-100 / 100-128-256-1024 with a
  Bernoulli decoder on grey levels (the binary cross-entropy of report 003),
  negative ELBO, Adam 1e-3, batch 128, 20 epochs.
- ``mnist32-mlp-gan-z100``: an MLP GAN of matched size: the generator has the
  VAE decoder's layers (100-128-256-1024) plus BatchNorm and a sigmoid output, the discriminator
  1024-256-128-1 (LeakyReLU 0.2). Non-saturating generator loss, Adam 2e-4
  with betas (0.5, 0.999), batch 100, 20 epochs, trained by :func:`train_gan`.
- ``mnist32-mlp-gan-z100-smooth``: the same GAN with one-sided label
  smoothing (real label 0.9), the "noise in the target label" of report 003,
  10 epochs (the others 20, to keep the training budget).

Every model records, after each epoch, the FID (MNIST features) of
``N_FID = 2,000`` generated images against the first 2,000 test images in
``history.val["fid"]`` (:class:`FIDCallback`).
"""
from __future__ import annotations

import time
from functools import lru_cache
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .. import data
from ..classify import classifier_loss
from ..checkpoint import save_checkpoint
from ..elbo import negative_elbo
from ..metrics import fid
from ..mlp import MLPDecoder, MLPEncoder
from ..train import History, fit
from ..vae import VAE
from ..zoo import Recipe

__all__ = ["LATENT_DIM", "N_FID", "LeNet", "splits32", "classifier_loss", "features",
           "Generator", "Discriminator", "GAN", "mlp_vae32", "mlp_gan", "GANTerms",
           "discriminator_loss", "generator_loss_minimax", "generator_loss_nonsaturating",
           "gan_step", "train_gan", "FIDCallback", "fid_against_test", "RECIPES"]

LATENT_DIM, N_FID = 100, 2000
G_HIDDEN, D_HIDDEN = (128, 256), (256, 128)
CLASSIFIER_EPOCHS, VAE_EPOCHS, GAN_EPOCHS, SMOOTH_EPOCHS = 3, 20, 20, 10


@lru_cache(maxsize=1)
def splits32() -> tuple[data.Dataset, data.Dataset, data.Dataset]:
    """(train 55,000, validation 5,000, test 10,000) MNIST datasets padded to 32×32."""
    full = data.pad_to_32(data.mnist("train"))
    order = torch.randperm(len(full.x), generator=torch.Generator().manual_seed(0))
    train_idx, val_idx = order[:-5000], order[-5000:]
    train = full._replace(x=full.x[train_idx], y=full.y[train_idx])
    val = full._replace(x=full.x[val_idx], y=full.y[val_idx])
    return train, val, data.pad_to_32(data.mnist("test"))


# --- the feature extractor -----------------------------------------------------

class LeNet(nn.Module):
    """x ``(B, 1, 32, 32)`` → logits ``(B, 10)``; ``features(x)`` gives the 84 penultimate activations.

    LeNet-5's shape: ``Conv(6, 5×5) → ReLU → MaxPool(2) → Conv(16, 5×5) → ReLU →
    MaxPool(2) → Linear(120) → ReLU → Linear(84) → ReLU → Linear(10)``.
    """

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU())
        self.head = nn.Linear(84, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate activations ``(B, 84)``."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


@torch.no_grad()
def features(classifier: LeNet, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Penultimate features ``(N, 84)`` of images ``(N, 1, 32, 32)`` in ``[0, 1]``, float64."""
    was_training = classifier.training
    classifier.eval()
    out = torch.cat([classifier.features(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    classifier.train(was_training)
    return out.double()


def _build_classifier(seed: int = 0) -> LeNet:
    torch.manual_seed(seed)
    return LeNet()


def _train_classifier(model, checkpoint=None, history=None):
    train, val, _ = splits32()
    remaining = CLASSIFIER_EPOCHS - (len(history) if history else 0)
    return fit(model, classifier_loss, (train.x, train.y), val=(val.x, val.y),
               epochs=max(remaining, 1), seed=0, checkpoint=checkpoint, history=history)


@torch.no_grad()
def _evaluate_classifier(model) -> dict:
    test = splits32()[2]
    logits = torch.cat([model(test.x[i:i + 1000]) for i in range(0, len(test.x), 1000)])
    return {"test_accuracy": (logits.argmax(1) == test.y).float().mean().item(),
            "test_nll": F.cross_entropy(logits, test.y).item()}


@lru_cache(maxsize=1)
def _judge():
    from .. import zoo
    model, _ = zoo.load("mnist32-lenet", train_if_missing=False)
    real = features(model, splits32()[2].x[:N_FID])
    return model, real


# --- the two generative models -------------------------------------------------

def mlp_vae32(seed: int = 0) -> VAE:
    """A seeded MLP VAE for 1×32×32 images: 1024-256-128-100 encoder, 100-128-256-1024 Bernoulli decoder."""
    torch.manual_seed(seed)
    return VAE(MLPEncoder((1, 32, 32), LATENT_DIM, hidden=D_HIDDEN),
               MLPDecoder(LATENT_DIM, (1, 32, 32), hidden=G_HIDDEN))


class Generator(nn.Module):
    """z ``(B, 100)`` → images ``(B, 1, 32, 32)`` in ``(0, 1)``.

    The VAE decoder's layers, 100-128-256-1024, with ``BatchNorm1d`` after each
    hidden linear layer (without it this small MLP GAN collapses: the
    discriminator wins within two epochs), then a sigmoid.
    """

    def __init__(self, latent_dim: int = LATENT_DIM, hidden=G_HIDDEN):
        super().__init__()
        self.latent_dim = latent_dim
        sizes, layers = [latent_dim, *hidden], []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(n_in, n_out), nn.BatchNorm1d(n_out), nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.Linear(sizes[-1], 1024), nn.Unflatten(1, (1, 32, 32)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(z))


class Discriminator(nn.Module):
    """x ``(B, 1, 32, 32)`` → logit ``(B,)`` of "x is real"; LeakyReLU(0.2) hidden layers."""

    def __init__(self, hidden=D_HIDDEN):
        super().__init__()
        sizes, layers = [1024, *hidden], [nn.Flatten()]
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(n_in, n_out), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*layers, nn.Linear(sizes[-1], 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


class GAN(nn.Module):
    """A generator and a discriminator in one module (one state_dict, one checkpoint)."""

    def __init__(self, latent_dim: int = LATENT_DIM):
        super().__init__()
        self.latent_dim = latent_dim
        self.generator, self.discriminator = Generator(latent_dim), Discriminator()

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` images ``(n, 1, 32, 32)`` from :math:`z \\sim \\mathcal N(0, I)`."""
        return self.generator(torch.randn(n, self.latent_dim, generator=generator))


def mlp_gan(seed: int = 0) -> GAN:
    """A seeded MLP GAN: generator 100-128-256-1024 (BatchNorm), discriminator 1024-256-128-1."""
    torch.manual_seed(seed)
    return GAN()


# --- the GAN objective and its training loop --------------------------------

def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor,
                       real_label: float = 1.0) -> torch.Tensor:
    r"""Per-example discriminator loss ``(B,)``: :math:`-\log D(x) - \log(1 - D(G(z)))`.

    Binary cross-entropy from logits (``D = sigmoid(logit)``), target
    ``real_label`` for the real image (1, or 0.9 with one-sided label
    smoothing) and 0 for the fake one. Equation (gan-d-loss).
    """
    real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_label),
                                              reduction="none")
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits),
                                              reduction="none")
    return real + fake


def generator_loss_minimax(fake_logits: torch.Tensor) -> torch.Tensor:
    r"""Per-example minimax generator loss ``(B,)``: :math:`\log(1 - D(G(z))) = -\mathrm{softplus}(\ell)`."""
    return -F.softplus(fake_logits)


def generator_loss_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    r"""Per-example non-saturating generator loss ``(B,)``: :math:`-\log D(G(z)) = \mathrm{softplus}(-\ell)`."""
    return F.softplus(-fake_logits)


class GANTerms(NamedTuple):
    """One step's per-example terms ``(B,)``: the two losses and D's probabilities."""
    d_loss: torch.Tensor
    g_loss: torch.Tensor
    d_real: torch.Tensor
    d_fake: torch.Tensor


def gan_step(gan: GAN, x: torch.Tensor, opt_d, opt_g, *, g_loss_fn=generator_loss_nonsaturating,
             real_label: float = 1.0) -> GANTerms:
    """One alternating update: the discriminator on real + fake, then the generator."""
    z = torch.randn(len(x), gan.latent_dim)
    fake = gan.generator(z)
    # 1. discriminator: real images towards `real_label`, fakes towards 0 (G is held fixed)
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
    return GANTerms(d_loss.detach(), g_loss.detach(), torch.sigmoid(real_logits).detach(),
                    torch.sigmoid(fake_logits).detach())


def train_gan(gan: GAN, x: torch.Tensor, *, epochs: int, batch_size: int = 100,
              lr: float = 2e-4, betas=(0.5, 0.999), g_loss_fn=generator_loss_nonsaturating,
              real_label: float = 1.0, seed: int = 0, callbacks=(), history=None,
              checkpoint=None) -> History:
    """Train ``gan`` on images ``x`` ``(N, 1, 32, 32)`` with two Adam optimizers.

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
            save_checkpoint(checkpoint, gan, config={"lr": lr, "batch_size": batch_size},
                            metrics={"train": history.last("train")}, history=history)
    return history


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

def _train_vae(model, checkpoint=None, history=None):
    train, val, _ = splits32()
    remaining = VAE_EPOCHS - (len(history) if history else 0)
    return fit(model, negative_elbo, train.x, val=val.x, epochs=max(remaining, 1), lr=1e-3,
               batch_size=128, seed=0, checkpoint=checkpoint, history=history,
               callbacks=[FIDCallback(model)])


def _gan_trainer(real_label: float, epochs: int):
    def train(model, checkpoint=None, history=None):
        remaining = epochs - (len(history) if history else 0)
        return train_gan(model, splits32()[0].x, epochs=max(remaining, 1), real_label=real_label,
                         callbacks=[FIDCallback(model)], history=history, checkpoint=checkpoint)
    return train


def _evaluate_generative(model) -> dict:
    return {"test_fid_2000": fid_against_test(model, N_FID),
            "test_fid_10000": fid_against_test(model, 10_000)}


@torch.no_grad()
def _evaluate_vae(model) -> dict:
    test = splits32()[2].x
    g = torch.Generator().manual_seed(2)
    terms = [negative_elbo(model, test[i:i + 1000], generator=g) for i in range(0, len(test), 1000)]
    return {"test_elbo": -sum(t.loss.item() for t in terms) / len(terms),
            **_evaluate_generative(model)}


_DATA = "MNIST padded to 32×32, grey levels"
_GAN = ("MLP GAN, G 100-128-256-1024 (BatchNorm, sigmoid), D 1024-256-128-1 (LeakyReLU 0.2), "
        "non-saturating G loss, Adam 2e-4 betas (0.5, 0.999), batch 100")

RECIPES = {
    "mnist32-lenet": Recipe(
        build=_build_classifier, train=_train_classifier, evaluate=_evaluate_classifier,
        summary=f"{_DATA}, LeNet-5-sized CNN (conv6-conv16-120-84-10), cross-entropy, "
                f"Adam 1e-3, batch 128, {CLASSIFIER_EPOCHS} epochs"),
    "mnist32-mlp-vae-z100": Recipe(
        build=mlp_vae32, train=_train_vae, evaluate=_evaluate_vae,
        summary=f"{_DATA}, MLP VAE 1024-256-128-100 / 100-128-256-1024, Bernoulli decoder "
                f"(cross-entropy on grey levels), negative ELBO, Adam 1e-3, batch 128, "
                f"{VAE_EPOCHS} epochs, FID every epoch"),
    "mnist32-mlp-gan-z100": Recipe(
        build=mlp_gan, train=_gan_trainer(1.0, GAN_EPOCHS), evaluate=_evaluate_generative,
        summary=f"{_DATA}, {_GAN}, {GAN_EPOCHS} epochs, FID every epoch"),
    "mnist32-mlp-gan-z100-smooth": Recipe(
        build=mlp_gan, train=_gan_trainer(0.9, SMOOTH_EPOCHS), evaluate=_evaluate_generative,
        summary=f"{_DATA}, {_GAN}, one-sided label smoothing (real label 0.9), "
                f"{SMOOTH_EPOCHS} epochs, FID every epoch"),
}
