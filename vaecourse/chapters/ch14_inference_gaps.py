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

import math
import time
from functools import partial

import torch

from vaecore._checks import check_batch
from vaecore.elbo import log_likelihood_is, negative_elbo
from vaecore.flow_posterior import flow_elbo, log_likelihood_flow_is, optimise_flow_posterior
from vaecore.gaps import elbo_mc, optimise_posterior, with_posterior
from vaecore.gradients import iwae_dreg_loss, negative_elbo_stl
from vaecore.mlp import MLPDecoder, MLPEncoder
from vaecore.seeding import local_seed
from vaecore.vae import VAE

from ..protocol import mnist_recipe, test_images
from ..recipe import checkpoint_name
from .ch05_first_vae import REFERENCE
from .ch11_evaluation import NAMES as CH11_NAMES

__all__ = ["LATENT_DIM", "DECODER_HIDDEN", "WIDTHS", "LENGTHS", "IWAE_K", "SEEDED_WIDTHS",
           "gap_vae", "grid_name", "GRID", "ESTIMATORS", "RECIPES", "GAP_IMAGES", "ELBO_SAMPLES",
           "SVI_STEPS", "SVI_LR", "SVI_LR_FINAL", "FLOW_STEPS", "FLOW_LR", "FLOW_LR_FINAL",
           "FLOW_LAYERS", "FLOW_SAMPLES", "GAP_K", "GAP_BATCH", "GAP_SEED", "measure_gaps"]

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


# --- the gaps, measured on the first GAP_IMAGES test images --------------------------------

#: Test images (the first of the fixed binarized test set) and the settings of the measurement.
GAP_IMAGES = 1000
ELBO_SAMPLES = 100
SVI_STEPS, SVI_LR, SVI_LR_FINAL = 500, 1e-2, 1e-4
FLOW_STEPS, FLOW_LR, FLOW_LR_FINAL, FLOW_LAYERS, FLOW_SAMPLES = 500, 3e-3, 1e-4, 2, 4
GAP_K = 1000
GAP_BATCH = 500
GAP_SEED = 0


def _mean_sd_se(values: torch.Tensor) -> dict:
    values = values.double()
    sd = values.std().item()
    return {"mean": values.mean().item(), "sd": sd, "se": sd / math.sqrt(len(values))}


def measure_gaps(model, x: torch.Tensor | None = None, *, seed: int = GAP_SEED,
                 steps: int | None = None) -> dict:
    r"""The gaps of ``model`` on ``x`` (default: the first :data:`GAP_IMAGES` test images).

    For each image: the encoder's :math:`q_\phi`; the best diagonal Gaussian
    :math:`q^*` by SVI from it (:func:`vaecore.gaps.optimise_posterior`,
    :data:`SVI_STEPS` Adam steps, rate falling from :data:`SVI_LR` to
    :data:`SVI_LR_FINAL`, the sticking-the-landing gradient); a per-image IAF
    :math:`q^*_{\text{flow}}` (:func:`vaecore.flow_posterior.optimise_flow_posterior`,
    :data:`FLOW_LAYERS` steps, started at :math:`q^*`, :data:`FLOW_STEPS` Adam
    steps from :data:`FLOW_LR` to :data:`FLOW_LR_FINAL`, :data:`FLOW_SAMPLES`
    draws per step). Their ELBOs by :data:`ELBO_SAMPLES` draws each (the two
    Gaussians with the same draws of :math:`\epsilon`, the flow with its own:
    about 0.01 nats of noise in a mean over 1,000 images); :math:`\log p(x)` the
    larger of two importance-sampling estimates with :data:`GAP_K` draws, one
    from :math:`q^*`, one from :math:`q^*_{\text{flow}}`, as Cremer et al. (2018)
    take the best of their estimates. Each estimate is a stochastic lower bound;
    their maximum is not quite one (it is biased up by at most the estimates'
    noise), so the approximation gap is an estimate, not a bound.

    Images are taken :data:`GAP_BATCH` at a time, and one generator seeded with
    ``seed`` draws everything in a fixed order: the result is reproducible for
    the same images, batch size and code. The model is put in eval mode.

    Returns ``{quantity: {"mean", "sd", "se"}}`` over images, nats per image, for
    ``log_px``, ``elbo_encoder``, ``elbo_gaussian``, ``elbo_flow`` and the gaps
    ``total`` (:math:`\log p - \mathrm{ELBO}(q_\phi)`), ``amortization``
    (:math:`\mathrm{ELBO}(q^*) - \mathrm{ELBO}(q_\phi)`), ``approximation``
    (:math:`\log p - \mathrm{ELBO}(q^*)`), ``flow_gain``
    (:math:`\mathrm{ELBO}(q^*_{\text{flow}}) - \mathrm{ELBO}(q^*)`) and
    ``flow_remaining`` (:math:`\log p - \mathrm{ELBO}(q^*_{\text{flow}})`); plus
    ``n_images``, ``wall_time_s`` and the settings. ``steps`` replaces both
    :data:`SVI_STEPS` and :data:`FLOW_STEPS` (to check convergence).
    """
    model.eval()
    x = test_images()[:GAP_IMAGES] if x is None else check_batch("x", x)
    svi_steps, flow_steps = (SVI_STEPS, FLOW_STEPS) if steps is None else (steps, steps)
    g = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    parts = {key: [] for key in ("log_px", "elbo_encoder", "elbo_gaussian", "elbo_flow")}
    for xb in x.split(GAP_BATCH):
        gaussian = optimise_posterior(model, xb, svi_steps, SVI_LR, generator=g,
                                      lr_final=SVI_LR_FINAL)
        flow = optimise_flow_posterior(model, xb, flow_steps, FLOW_LR, lr_final=FLOW_LR_FINAL,
                                       start=gaussian, n_layers=FLOW_LAYERS,
                                       samples=FLOW_SAMPLES, generator=g)
        with torch.no_grad():
            state = g.get_state()
            parts["elbo_encoder"].append(elbo_mc(model, xb, model.encode(xb), ELBO_SAMPLES, g))
            g.set_state(state)  # the same eps for both Gaussians
            parts["elbo_gaussian"].append(elbo_mc(model, xb, gaussian, ELBO_SAMPLES, g))
            parts["elbo_flow"].append(flow_elbo(model, xb, flow, ELBO_SAMPLES, g))
            from_gaussian = log_likelihood_is(with_posterior(model, gaussian), xb, GAP_K,
                                              chunk=100, generator=g, batch_size=len(xb))
            from_flow = log_likelihood_flow_is(model, xb, flow, GAP_K, chunk=100, generator=g)
            parts["log_px"].append(torch.maximum(from_gaussian, from_flow))
    v = {key: torch.cat(values) for key, values in parts.items()}
    if not all(torch.isfinite(t).all() for t in v.values()):
        raise FloatingPointError("measure_gaps: a non-finite ELBO or log-likelihood")
    quantities = {**v, "total": v["log_px"] - v["elbo_encoder"],
                  "amortization": v["elbo_gaussian"] - v["elbo_encoder"],
                  "approximation": v["log_px"] - v["elbo_gaussian"],
                  "flow_gain": v["elbo_flow"] - v["elbo_gaussian"],
                  "flow_remaining": v["log_px"] - v["elbo_flow"]}
    return {**{key: _mean_sd_se(t) for key, t in quantities.items()},
            "n_images": len(x), "seed": seed, "wall_time_s": round(time.perf_counter() - start, 1),
            "settings": {"svi": [svi_steps, SVI_LR, SVI_LR_FINAL],
                         "flow": [flow_steps, FLOW_LR, FLOW_LR_FINAL, FLOW_LAYERS, FLOW_SAMPLES],
                         "elbo_samples": ELBO_SAMPLES, "k": GAP_K}}
