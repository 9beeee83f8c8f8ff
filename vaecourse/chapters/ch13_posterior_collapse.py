r"""Chapter 13 (``chapters/13_posterior_collapse.ipynb``): posterior collapse and its remedies.

Every model is the same VAE on the protocol of :mod:`vaecourse.protocol`
(dynamically binarized MNIST, 55,000 training images, Adam 1e-3, batch 128):
an MLP encoder 784-400-32 and a PixelCNN decoder (:func:`collapse_vae`:
one 7 × 7 type-A masked convolution and six residual 3 × 3 type-B layers of
16 channels, z entering every layer as a bias), trained for
:data:`EPOCHS` epochs (:data:`STEPS_PER_EPOCH` steps each) with one of five
objectives (:data:`SETTINGS`), three seeds each:

- ``mnist-pixelcnn-bernoulli-z32-e4``: the negative ELBO;
- ``mnist-pixelcnn-bernoulli-warmup-z32-e4``: β rising linearly from 0 to 1
  over the first half of the steps (:func:`vaecore.kl_control.linear_warmup_weight`);
- ``mnist-pixelcnn-bernoulli-cyclical-z32-e4``: cyclical annealing, four
  cycles, β rising over the first half of each
  (:func:`vaecore.kl_control.cyclical_weight`);
- ``mnist-pixelcnn-bernoulli-freebits-z32-e4``: free bits, λ = 0.25 nats per
  latent dimension (:func:`vaecore.kl_control.free_bits_loss`);
- ``mnist-pixelcnn-bernoulli-delta-z32-e4``: the negative ELBO with the
  posterior std bounded by σ_max = 0.55, a committed rate of 0.249 nats per
  dimension (:class:`vaecore.kl_control.CommittedRateEncoder`).

A stronger decoder (:data:`LARGE_SETTINGS`: 32 channels, twelve residual
layers, 126,337 parameters) is trained with the negative ELBO alone:
``mnist-pixelcnn-bernoulli-large-z32-e4``.

Each record holds :func:`evaluate_collapse` for every seed: the test ELBO's
terms, an importance-sampled log-likelihood, active units, the mutual
information I(x; z) of the test set's code, and what z tells about x
(a swap test and a linear probe of the digit).
"""
from __future__ import annotations

import math
from dataclasses import replace
from functools import partial

import torch

from vaecore import data
from vaecore.classify import linear_probe_accuracy
from vaecore.elbo import negative_elbo
from vaecore.kl_control import (CommittedRateEncoder, ScheduledELBO, committed_rate,
                                cyclical_weight, free_bits_loss, linear_warmup_weight)
from vaecore.latent import active_units, encode_dataset
from vaecore.mlp import MLPEncoder
from vaecore.nll import estimate_nll
from vaecore.pixelcnn import PixelCNNDecoder, autoregressive_bernoulli
from vaecore.seeding import local_seed
from vaecore.total_correlation import kl_decomposition_dataset
from vaecore.vae import VAE

from ..protocol import N_VAL, evaluate_elbo, mnist_recipe, test_images
from ..recipe import checkpoint_name

__all__ = ["LATENT_DIM", "CHANNELS", "N_LAYERS", "FIRST_KERNEL", "EPOCHS", "BATCH_SIZE",
           "STEPS_PER_EPOCH", "FREE_NATS", "SIGMA_MAX", "CYCLES", "SEEDS", "IS_IMAGES", "IS_K",
           "MI_SAMPLES", "EVAL_SEED", "LARGE_CHANNELS", "LARGE_LAYERS", "collapse_vae",
           "SETTINGS", "LARGE_SETTINGS", "swap_gap", "evaluate_collapse", "RECIPES"]

LATENT_DIM = 32
CHANNELS, N_LAYERS, FIRST_KERNEL = 16, 6, 7
#: The stronger decoder's width and depth (:data:`LARGE_SETTINGS`).
LARGE_CHANNELS, LARGE_LAYERS = 32, 12
EPOCHS = 4
BATCH_SIZE = 128
#: ``fit``'s steps per epoch on the 55,000 training images (the last batch has 88).
STEPS_PER_EPOCH = math.ceil((60_000 - N_VAL) / BATCH_SIZE)
FREE_NATS = 0.25
SIGMA_MAX = 0.55
CYCLES = 4
SEEDS = (0, 1, 2)
#: The importance-sampled log-likelihood uses the first IS_IMAGES test images and IS_K samples.
IS_IMAGES, IS_K = 2_000, 20
MI_SAMPLES = 1_000
EVAL_SEED = 0


def collapse_vae(seed: int = 0, committed: bool = False, large: bool = False) -> VAE:
    """A seeded VAE: MLP encoder 784-400-32, PixelCNN decoder (16 channels, 6 layers, 7 × 7 first).

    With ``committed`` the encoder is wrapped in a
    :class:`~vaecore.kl_control.CommittedRateEncoder` with ``sigma_max`` =
    :data:`SIGMA_MAX` (the same weights otherwise). With ``large`` the
    decoder has :data:`LARGE_CHANNELS` channels and :data:`LARGE_LAYERS` layers.
    """
    with local_seed(seed):
        encoder = MLPEncoder((1, 28, 28), LATENT_DIM, hidden=(400,))
        channels, n_layers = (LARGE_CHANNELS, LARGE_LAYERS) if large else (CHANNELS, N_LAYERS)
        decoder = PixelCNNDecoder(LATENT_DIM, (1, 28, 28), channels=channels, n_layers=n_layers,
                                  first_kernel=FIRST_KERNEL)
    if committed:
        encoder = CommittedRateEncoder(encoder, SIGMA_MAX)
    return VAE(encoder, decoder, likelihood=autoregressive_bernoulli)


def _name(*variants: str) -> str:
    return checkpoint_name("mnist", "pixelcnn", "bernoulli", *variants, z=LATENT_DIM,
                           epochs=EPOCHS)


_TOTAL_STEPS = EPOCHS * STEPS_PER_EPOCH
_warmup = ScheduledELBO(partial(linear_warmup_weight, warmup_steps=_TOTAL_STEPS // 2),
                        STEPS_PER_EPOCH)
_cyclical = ScheduledELBO(partial(cyclical_weight, total_steps=_TOTAL_STEPS, cycles=CYCLES,
                                  ratio=0.5), STEPS_PER_EPOCH)

#: ``(label, checkpoint name, build, training loss, objective in words)`` of the five settings.
SETTINGS = (
    ("ELBO", _name(), collapse_vae, negative_elbo, "negative ELBO"),
    ("KL warm-up", _name("warmup"), collapse_vae, _warmup,
     f"negative ELBO with β rising linearly from 0 to 1 over the first {_TOTAL_STEPS // 2} "
     f"steps (half the run)"),
    ("cyclical", _name("cyclical"), collapse_vae, _cyclical,
     f"negative ELBO with cyclical annealing: {CYCLES} cycles of {_TOTAL_STEPS // CYCLES} "
     f"steps, β rising linearly from 0 to 1 over the first half of each"),
    ("free bits", _name("freebits"), collapse_vae, partial(free_bits_loss, free_nats=FREE_NATS),
     f"negative ELBO with free bits, λ = {FREE_NATS:g} nats per latent dimension"),
    ("δ-VAE", _name("delta"), partial(collapse_vae, committed=True), negative_elbo,
     f"negative ELBO, posterior std bounded by {SIGMA_MAX:g} (committed rate "
     f"{committed_rate(SIGMA_MAX):.3f} nats per dimension)"),
)

#: The stronger decoder, trained with the negative ELBO (the same fields as :data:`SETTINGS`).
LARGE_SETTINGS = (
    ("ELBO, large decoder", _name("large"), partial(collapse_vae, large=True), negative_elbo,
     "negative ELBO"),
)


@torch.no_grad()
def swap_gap(model, x: torch.Tensor, generator: torch.Generator, batch_size: int = 500) -> float:
    r"""Mean of :math:`\log p(x_n \mid z_n) - \log p(x_n \mid z_{n'})` over ``x``, in nats.

    :math:`z_n \sim q(z \mid x_n)`; :math:`n'` is the next image in a random
    cyclic order (``generator``), so each image is scored with its own code and
    with another image's. 0 when the decoder ignores z.
    """
    model.eval()
    post = encode_dataset(model, x)
    z = post.rsample(generator=generator)
    order = torch.randperm(len(x), generator=generator)
    other = torch.empty_like(order)
    other[order] = order.roll(1)
    gaps = [model.log_likelihood(x[i:i + batch_size], z[i:i + batch_size])
            - model.log_likelihood(x[i:i + batch_size], z[other[i:i + batch_size]])
            for i in range(0, len(x), batch_size)]
    return torch.cat(gaps).mean().item()


@torch.no_grad()
def evaluate_collapse(model, *, importance_sampled: bool = True) -> dict:
    """What the record keeps of one trained model, on the fixed binarized test images.

    - ``test_loss``, ``test_log_likelihood``, ``test_kl``: the negative ELBO
      and its terms on all 10,000 test images (one z each), nats per image;
    - ``nll_is``, ``nll_is_se``: :math:`-\\log \\hat p(x)` with :data:`IS_K`
      importance samples on the first :data:`IS_IMAGES` test images (mean and
      standard error over images), ``negative_elbo_is_images``: the negative ELBO there;
    - ``active_units``: posterior-mean variance above 0.01 over the test images;
    - ``mutual_information``: the index-code MI of the 10,000 test codes
      (:func:`vaecore.total_correlation.kl_decomposition_dataset`,
      :data:`MI_SAMPLES` draws), at most log 10,000 = 9.21 nats;
    - ``swap_gap``: :func:`swap_gap` on the first :data:`IS_IMAGES` images;
    - ``probe_accuracy``: a linear probe of the digit from one z ~ q(z|x) per
      image, fitted on the first 5,000 test images and scored on the other 5,000.

    One generator seeded with :data:`EVAL_SEED` draws, in order, the ELBO's
    z, the MI's samples, the swap test's and the probe's z; the IS estimate
    seeds its own (``estimate_nll(seed=EVAL_SEED)``).

    ``importance_sampled=False`` leaves out the three IS entries (four fifths of
    the time with this decoder); the other entries are unchanged, since the IS
    estimate draws from its own generator.
    """
    model.eval()
    x, y = test_images(), data.mnist("test").y
    g = torch.Generator().manual_seed(EVAL_SEED)
    metrics = evaluate_elbo(model, x, loss_fn=negative_elbo, generator=g)
    codes = encode_dataset(model, x)
    split = kl_decomposition_dataset(*codes, MI_SAMPLES, generator=g)
    if importance_sampled:
        nll, _ = estimate_nll(model, x[:IS_IMAGES], IS_K, seed=EVAL_SEED)
        metrics.update({"nll_is": nll.nll, "nll_is_se": nll.nll_se,
                        "negative_elbo_is_images": nll.negative_elbo})
    z = codes.rsample(generator=torch.Generator().manual_seed(EVAL_SEED + 1))
    metrics.update({
        "active_units": float(active_units(codes.mu).sum()),
        "mutual_information": split.index_code_mi.mean().item(),
        "swap_gap": swap_gap(model, x[:IS_IMAGES], g),
        "probe_accuracy": linear_probe_accuracy(z[:5000], y[:5000], z[5000:], y[5000:])})
    if not all(math.isfinite(v) for v in metrics.values()):
        raise ValueError(f"non-finite metrics: {metrics}")
    return metrics


_DATA = "55,000 training images, a random 5,000 held out, seed 0"

#: Every setting is tested by :func:`evaluate_collapse`, whatever it trained with.
RECIPES = {
    name: replace(mnist_recipe(
        build, epochs=EPOCHS, loss=loss, batch_size=BATCH_SIZE,
        summary=f"MNIST (dynamically binarized; {_DATA}), MLP encoder 784-400-{LATENT_DIM}, "
                f"PixelCNN decoder ({channels} channels, 7×7 type-A and {n_layers} residual 3×3 "
                f"type-B masked layers, z as a bias in each), {objective}, Adam 1e-3, batch "
                f"{BATCH_SIZE}, {EPOCHS} epochs"), evaluate=evaluate_collapse)
    for settings, channels, n_layers in ((SETTINGS, CHANNELS, N_LAYERS),
                                         (LARGE_SETTINGS, LARGE_CHANNELS, LARGE_LAYERS))
    for _, name, build, loss, objective in settings}
