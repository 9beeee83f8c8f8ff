r"""Chapter 14 (``chapters/14_inference_gaps.ipynb``): where the ELBO loses, and better gradients.

Every model is chapter 5's MLP VAE on the protocol of :mod:`vaecourse.protocol`
(dynamically binarized MNIST, 55,000 training images, Adam 1e-3, batch 128,
latent size 20, decoder 20-400-784, Bernoulli likelihood) with one change:

- **the grid** (:data:`GRID`): the encoder's hidden width
  :data:`WIDTHS` = 100, 400, 1000 crossed with :data:`LENGTHS` = 3, 10, 30
  epochs, negative ELBO. Width 400 is chapter 5's model
  (``mnist-mlp-bernoulli-z20-e10`` and the reference
  ``mnist-mlp-bernoulli-z20-e30`` are its 10- and 30-epoch points); the
  others are named ``mnist-mlp-bernoulli-enc<width>-z20-e<epochs>``.
  Three seeds at 30 epochs for widths 100 and 1000.
- **the gradient estimators** (:data:`ESTIMATORS`), three seeds each, beside
  the reference (the standard reparameterization gradient of the ELBO) and
  chapter 11's ``mnist-mlp-bernoulli-iwae-k5-z20-e30`` (the standard IWAE
  gradient, k = 5): ``mnist-mlp-bernoulli-stl-z20-e30``, the ELBO with the
  "sticking the landing" gradient (:func:`vaecore.gradients.negative_elbo_stl`),
  and ``mnist-mlp-bernoulli-iwae-k5-dreg-z20-e30``, the IWAE bound with the
  doubly reparameterized gradient (:func:`vaecore.gradients.iwae_dreg_loss`).

Every recipe records chapter 5's test metrics (the plain negative ELBO).
"""
from __future__ import annotations

from functools import partial

from vaecore.elbo import negative_elbo
from vaecore.gradients import iwae_dreg_loss, negative_elbo_stl
from vaecore.mlp import MLPDecoder, MLPEncoder
from vaecore.seeding import local_seed
from vaecore.vae import VAE

from ..protocol import mnist_recipe
from ..recipe import checkpoint_name
from .ch05_first_vae import REFERENCE
from .ch11_evaluation import NAMES as CH11_NAMES

__all__ = ["LATENT_DIM", "DECODER_HIDDEN", "WIDTHS", "LENGTHS", "IWAE_K", "SEEDED_WIDTHS",
           "gap_vae", "grid_name", "GRID", "ESTIMATORS", "RECIPES"]

LATENT_DIM = 20
DECODER_HIDDEN = 400
#: The encoder's hidden widths and the training lengths (epochs) of the grid.
WIDTHS = (100, 400, 1000)
LENGTHS = (3, 10, 30)
#: The widths trained with three seeds (at the longest length).
SEEDED_WIDTHS = (100, 1000)
IWAE_K = 5


def gap_vae(encoder_hidden: int = DECODER_HIDDEN, seed: int = 0) -> VAE:
    """A seeded MLP VAE: encoder 784-``encoder_hidden``-20, decoder 20-400-784, Bernoulli.

    With ``encoder_hidden = 400`` it is chapter 5's ``mlp_vae`` (the same
    weights for the same seed).
    """
    with local_seed(seed):
        return VAE(MLPEncoder((1, 28, 28), LATENT_DIM, hidden=(encoder_hidden,)),
                   MLPDecoder(LATENT_DIM, (1, 28, 28), hidden=(DECODER_HIDDEN,)))


def grid_name(width: int, epochs: int) -> str:
    """The checkpoint of the grid point (encoder width, epochs); width 400 is chapter 5's model."""
    variants = () if width == DECODER_HIDDEN else (f"enc{width}",)
    return checkpoint_name("mnist", "mlp", "bernoulli", *variants, z=LATENT_DIM, epochs=epochs)


#: ``{(width, epochs): checkpoint name}`` of the grid.
GRID = {(w, e): grid_name(w, e) for w in WIDTHS for e in LENGTHS}

#: ``(label, checkpoint name)`` of the four estimators, the standard ones first.
ESTIMATORS = (
    ("ELBO, standard gradient", REFERENCE),
    ("ELBO, sticking the landing", checkpoint_name("mnist", "mlp", "bernoulli", "stl",
                                                   z=LATENT_DIM, epochs=30)),
    (f"IWAE k = {IWAE_K}, standard gradient", CH11_NAMES["iwae"]),
    (f"IWAE k = {IWAE_K}, DReG", checkpoint_name("mnist", "mlp", "bernoulli", f"iwae-k{IWAE_K}",
                                                 "dreg", z=LATENT_DIM, epochs=30)),
)

_DATA = "55,000 training images, a random 5,000 held out, seed 0"


def _summary(width: int, objective: str, epochs: int) -> str:
    return (f"MNIST (dynamically binarized; {_DATA}), MLP encoder 784-{width}-{LATENT_DIM}, "
            f"decoder {LATENT_DIM}-{DECODER_HIDDEN}-784, Bernoulli decoder, {objective}, "
            f"Adam 1e-3, batch 128, {epochs} epochs")


#: The chapter's new recipes (the grid's width-400 points and the standard estimators are
#: chapters 5 and 11's). Every one records the test metrics of the plain negative ELBO.
RECIPES = {
    **{name: mnist_recipe(partial(gap_vae, width), epochs=epochs,
                          summary=_summary(width, "negative ELBO", epochs))
       for (width, epochs), name in GRID.items() if width != DECODER_HIDDEN or epochs == 3},
    ESTIMATORS[1][1]: mnist_recipe(
        gap_vae, epochs=30, loss=negative_elbo_stl, eval_loss=negative_elbo,
        summary=_summary(DECODER_HIDDEN, "negative ELBO with the sticking-the-landing gradient",
                         30)),
    ESTIMATORS[3][1]: mnist_recipe(
        gap_vae, epochs=30, loss=partial(iwae_dreg_loss, k=IWAE_K), eval_loss=negative_elbo,
        summary=_summary(DECODER_HIDDEN, f"IWAE objective k = {IWAE_K} with the doubly "
                                         f"reparameterized (DReG) encoder gradient", 30)),
}
