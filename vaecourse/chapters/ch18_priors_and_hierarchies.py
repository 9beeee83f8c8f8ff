r"""Chapter 18 (``chapters/18_priors_and_hierarchies.ipynb``): better priors and deeper hierarchies.

On chapter 11's protocol (dynamically binarized MNIST, Bernoulli decoder, the
importance-sampled test NLL of :mod:`vaecore.nll`):

- **learned priors** on the reference MLP 784-400-20 of chapter 5, trained as the
  reference (negative ELBO, the 55,000 images of the split, Adam 1e-3, batches of
  128, 30 epochs), so that the prior is the only difference, beside chapter 11's
  flow prior: a mixture of :data:`COMPONENTS` Gaussians
  (:class:`vaecore.priors.MixturePrior`) and the VampPrior with as many pseudo-inputs
  (:class:`vaecore.priors.VampPrior`);
- **two stochastic layers** (:class:`vaecore.hierarchical.LadderVAE`, top-down
  inference) of Burda et al.'s two-layer sizes (784-200-200, z1 = 100, 100-100,
  z2 = 50), trained for the same 30 epochs with the ELBO and with IWAE (k = 5),
  beside chapter 11's one-layer VAE and IWAE, each with two posteriors of z1: the
  residual form whose correction depends on x only (its top layer collapses) and the
  combined form whose correction also depends on z2;
- **chapter 11's best model with a second stochastic layer**: its 500-500 MLP below
  z1 (z1 = 100, 200-200, z2 = 50), its flow prior on z2, its IWAE objective (k = 5),
  all 60,000 training images and its 50 epochs with the learning rate decayed linearly
  to 1/20;
- **chapter 11's best model trained twice as long** (:data:`LONGER_EPOCHS`, the same
  schedule stretched over them): what more epochs give, measured.
"""
from __future__ import annotations

import dataclasses
from functools import partial

import torch

from vaecore.flows import FlowPrior
from vaecore.hierarchical import LadderVAE, ladder_iwae_loss, ladder_loss
from vaecore.latent import active_units, encode_dataset
from vaecore.mlp import MLPDecoder, MLPEncoder
from vaecore.priors import MixturePrior, VampPrior, elbo_surgery
from vaecore.seeding import local_seed
from vaecore.train import linear_decay
from vaecore.vae import VAE

from ..protocol import EVAL_SEED, mnist_recipe, mnist_train_all, test_images
from ..recipe import checkpoint_name
from . import ch11_evaluation
from .ch05_first_vae import REFERENCE

__all__ = ["COMPONENTS", "EPOCHS", "LONGER_EPOCHS", "NAMES", "REFERENCE", "PRIORS", "DEPTH",
           "COLLAPSE", "PUBLISHED", "SPLIT_DRAWS", "prior_vae", "ladder_vae", "best_ladder", "ladder_units",
           "marginal_split", "RECIPES"]

COMPONENTS = 500  # mixture components and pseudo-inputs (Tomczak and Welling's K for MNIST)
EPOCHS = 30  # chapter 11's reference schedule
SPLIT_DRAWS = 10_000  # draws of the aggregate posterior behind each stored KL split
LADDER = {"latent_dims": (100, 50), "hidden": ((200, 200), (100, 100))}  # Burda et al.'s sizes
#: Chapter 11's best model with a second stochastic layer: its 500-500 MLP below z1, its
#: flow prior (8 coupling layers, hidden 128) on z2, its objective, data and schedule.
BEST = {"latent_dims": (100, 50), "hidden": ((500, 500), (200, 200))}
#: Chapter 11's best model trained twice as long, its learning rate decayed over the longer run.
LONGER_EPOCHS = 100

#: The chapter's checkpoints, by role.
NAMES = {"mog": checkpoint_name("mnist", "mlp", "bernoulli", f"mog{COMPONENTS}", z=20,
                                epochs=EPOCHS),
         "vamp": checkpoint_name("mnist", "mlp", "bernoulli", f"vamp{COMPONENTS}", z=20,
                                 epochs=EPOCHS),
         "ladder": checkpoint_name("mnist", "ladder", "bernoulli", "combined", z=(100, 50),
                                   epochs=EPOCHS),
         "ladder_iwae": checkpoint_name("mnist", "ladder", "bernoulli", "combined", "iwae-k5",
                                        z=(100, 50), epochs=EPOCHS),
         "ladder_x": checkpoint_name("mnist", "ladder", "bernoulli", z=(100, 50), epochs=EPOCHS),
         "ladder_x_iwae": checkpoint_name("mnist", "ladder", "bernoulli", "iwae-k5", z=(100, 50),
                                          epochs=EPOCHS),
         "best": checkpoint_name("mnist", "ladder500", "bernoulli", "combined", "flow", "iwae-k5",
                                 z=(100, 50), epochs=ch11_evaluation.BEST_EPOCHS),
         "longer": checkpoint_name("mnist", "mlp2", "bernoulli", "flow", "iwae-k5", z=50,
                                   epochs=LONGER_EPOCHS)}

#: The one-layer models of the prior comparison (chapter 5's reference MLP, 30 epochs), by prior.
PRIORS = {"N(0, I)": REFERENCE, "flow (RealNVP)": ch11_evaluation.NAMES["flow"],
          f"mixture of {COMPONENTS}": NAMES["mog"], f"VampPrior, K = {COMPONENTS}": NAMES["vamp"]}
#: One and two stochastic layers, each trained with the ELBO and with IWAE (k = 5), 30 epochs.
DEPTH = {"one layer, ELBO": REFERENCE, "one layer, IWAE": ch11_evaluation.NAMES["iwae"],
         "two layers, ELBO": NAMES["ladder"], "two layers, IWAE": NAMES["ladder_iwae"]}
#: The two-layer models by the posterior of z1: the correction from x alone, or from x and z2.
COLLAPSE = {"x only, ELBO": NAMES["ladder_x"], "x only, IWAE": NAMES["ladder_x_iwae"],
            "x and z2, ELBO": NAMES["ladder"], "x and z2, IWAE": NAMES["ladder_iwae"]}


_BURDA = ("dynamically binarized, 60,000 training images, tanh MLPs, batches of 20, 3,280 "
          "passes, k = 5000")
#: Published results of deeper models beside the chapter's, each with its protocol.
PUBLISHED = (
    ch11_evaluation.Published("VAE, 2 stochastic layers (100, 50), MLPs 200-200 and 100-100",
                              85.33, "burda2016importance", "Table 1", _BURDA),
    ch11_evaluation.Published("IWAE k = 5, same network", 83.89, "burda2016importance",
                              "Table 1", _BURDA),
    ch11_evaluation.Published("IWAE k = 50, same network", 82.90, "burda2016importance",
                              "Table 1", _BURDA),
    ch11_evaluation.Published("ladder VAE (Sønderby et al.), as listed by Kingma et al.", 81.74,
                              "kingma2016improved", "Table 1", "dynamically binarized; trained "
                              "and evaluated by Sønderby et al.'s own protocol (batch "
                              "normalisation, KL warm-up), not restated there"),
    ch11_evaluation.Published("convolutional VAE, one 32-d layer, IAF posterior", 79.10,
                              "kingma2016improved", "Table 1 and Appendix B", "dynamically "
                              "binarized, importance sampling with 128 samples"),
)


def prior_vae(prior: str, latent_dim: int = 20, hidden=(400,), components: int = COMPONENTS,
              seed: int = 0) -> VAE:
    """Chapter 5's reference MLP VAE (same initial nets at a seed) with a ``"mog"`` or ``"vamp"`` prior."""
    if prior not in ("mog", "vamp"):
        raise ValueError(f"prior: expected 'mog' or 'vamp', got {prior!r}")
    with local_seed(seed):
        encoder = MLPEncoder((1, 28, 28), latent_dim, hidden=hidden)
        decoder = MLPDecoder(latent_dim, (1, 28, 28), hidden=hidden)
        learned = (MixturePrior(latent_dim, components) if prior == "mog"
                   else VampPrior(encoder, components))
        return VAE(encoder, decoder, prior=learned)


def ladder_vae(combine: str = "combined", seed: int = 0, **sizes) -> LadderVAE:
    """A freshly initialised (seeded) two-layer ladder VAE of Burda et al.'s sizes (or ``sizes``)."""
    with local_seed(seed):
        return LadderVAE((1, 28, 28), **{**LADDER, **sizes}, combine=combine)


def best_ladder(seed: int = 0) -> LadderVAE:
    """The two-layer version of chapter 11's best model (:data:`BEST`, combined correction, seeded)."""
    with local_seed(seed):
        prior = FlowPrior(BEST["latent_dims"][1], n_layers=8, hidden=128)
        return LadderVAE((1, 28, 28), **BEST, prior=prior, combine="combined")


@torch.no_grad()
def ladder_units(model: LadderVAE, x: torch.Tensor, *, samples: int = 10,
                 batch_size: int = 1000) -> dict:
    """Active units of each layer on ``x`` (Burda et al.'s 0.01 threshold) and their sum.

    The posterior means come from :meth:`vaecore.hierarchical.LadderVAE.posterior_means`
    with ``samples`` draws of z2 per image, from a generator seeded with the protocol's
    ``EVAL_SEED``.
    """
    g = torch.Generator().manual_seed(EVAL_SEED)
    parts = [model.posterior_means(x[i:i + batch_size], samples, generator=g)
             for i in range(0, len(x), batch_size)]
    z1 = float(active_units(torch.cat([p[0] for p in parts])).sum())
    z2 = float(active_units(torch.cat([p[1] for p in parts])).sum())
    return {"test_active_units": z1 + z2, "test_active_units_z1": z1, "test_active_units_z2": z2}


@torch.no_grad()
def marginal_split(model, draws: int = SPLIT_DRAWS) -> dict:
    """The mean KL term of ``model`` on the 10,000 test images, split by ``vaecore.priors.elbo_surgery``.

    The aggregate posterior is the mixture of the test images' posteriors; ``draws``
    draws of it from a generator seeded with the protocol's ``EVAL_SEED``. Returns the
    means and standard errors (over draws) of the mutual information and of
    KL(q(z) || p(z)), and ``draws``.
    """
    posteriors = encode_dataset(model.eval(), test_images())
    split = elbo_surgery(*posteriors, model.prior, samples=draws,
                         generator=torch.Generator().manual_seed(EVAL_SEED))
    out = {"draws": draws}
    for key, values in split._asdict().items():
        values = values.double()
        out[key], out[f"{key}_se"] = values.mean().item(), (values.std() / draws ** 0.5).item()
    return out


_DATA = "55,000 training images, a random 5,000 held out, seed 0"
_LADDER = "two-layer ladder VAE (784-200-200, z1 = 100, 100-100, z2 = 50, top-down inference"
_COMBINED = f"{_LADDER}, the correction of z1's posterior from x and z2)"
_X_ONLY = f"{_LADDER}, the correction of z1's posterior from x alone)"
RECIPES = {
    NAMES["mog"]: mnist_recipe(
        partial(prior_vae, "mog"), epochs=EPOCHS,
        summary=f"MNIST (dynamically binarized; {_DATA}), MLP 784-400-20, Bernoulli decoder, "
                f"a learned mixture of {COMPONENTS} diagonal Gaussians as prior, negative ELBO "
                f"(single-sample KL), Adam 1e-3, batch 128, {EPOCHS} epochs"),
    NAMES["vamp"]: mnist_recipe(
        partial(prior_vae, "vamp"), epochs=EPOCHS,
        summary=f"MNIST (dynamically binarized; {_DATA}), MLP 784-400-20, Bernoulli decoder, "
                f"VampPrior with {COMPONENTS} pseudo-inputs, negative ELBO (single-sample KL), "
                f"Adam 1e-3, batch 128, {EPOCHS} epochs"),
}
for _combine, _role, _about in (("combined", "ladder", _COMBINED),
                                ("residual", "ladder_x", _X_ONLY)):
    RECIPES[NAMES[_role]] = mnist_recipe(
        partial(ladder_vae, _combine), epochs=EPOCHS, loss=ladder_loss, units=ladder_units,
        summary=f"MNIST (dynamically binarized; {_DATA}), {_about}, Bernoulli decoder, "
                f"negative two-layer ELBO, Adam 1e-3, batch 128, {EPOCHS} epochs")
    RECIPES[NAMES[f"{_role}_iwae"]] = mnist_recipe(
        partial(ladder_vae, _combine), epochs=EPOCHS, loss=partial(ladder_iwae_loss, k=5),
        eval_loss=ladder_loss, units=ladder_units,
        summary=f"MNIST (dynamically binarized; {_DATA}), {_about}, Bernoulli decoder, "
                f"IWAE objective k = 5, Adam 1e-3, batch 128, {EPOCHS} epochs")
RECIPES[NAMES["best"]] = mnist_recipe(
    best_ladder, epochs=ch11_evaluation.BEST_EPOCHS, loss=partial(ladder_iwae_loss, k=5),
    eval_loss=ladder_loss, units=ladder_units, split=mnist_train_all,
    lr_schedule=linear_decay(ch11_evaluation.BEST_EPOCHS, final=0.05),
    summary="MNIST (dynamically binarized, all 60,000 training images), two-layer ladder VAE "
            "(784-500-500, z1 = 100, 200-200, z2 = 50, top-down inference, the correction of "
            "z1's posterior from x and z2), Bernoulli decoder, RealNVP flow prior on z2 (8 "
            "coupling layers, hidden 128), IWAE objective k = 5, Adam 1e-3 decayed linearly to "
            f"1/20, batch 128, {ch11_evaluation.BEST_EPOCHS} epochs")
_CH11_BEST = ch11_evaluation.RECIPES[ch11_evaluation.NAMES["best"]]
RECIPES[NAMES["longer"]] = dataclasses.replace(
    _CH11_BEST, epochs=LONGER_EPOCHS,
    fit_options={**_CH11_BEST.fit_options,
                 "lr_schedule": linear_decay(LONGER_EPOCHS, final=0.05)},
    summary="MNIST (dynamically binarized, all 60,000 training images), MLP 784-500-500-50, "
            "Bernoulli decoder, RealNVP flow prior (8 coupling layers, hidden 128), IWAE "
            "objective k = 5, Adam 1e-3 decayed linearly to 1/20, batch 128, "
            f"{LONGER_EPOCHS} epochs (chapter 11's best model, twice as long)")
