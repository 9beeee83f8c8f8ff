r"""Chapter 12 (``chapters/12_disentanglement.ipynb``): β-VAE and β-TCVAE on dSprites, and the seed.

Data: :func:`vaecore.data.dsprites` with its defaults, every combination of
3 shapes × 6 scales × 10 orientations × 16 × 16 positions once (46,080
binary images of 32 × 32), generated, not downloaded. As in the studies it
repeats (Higgins et al. 2017; Chen et al. 2018; Locatello et al. 2019), the
models train on all of it and are scored on it: disentanglement asks how the
code of the data set relates to the factors that made it, not how the model
generalises.

Every model is an MLP VAE 1024-256-256-10 with a Bernoulli decoder (665,108
parameters), trained by ``fit`` with Adam 1e-3, batch 256 (180 steps an
epoch, no last batch), 30 epochs; two objectives × three weights
(:data:`BETAS`), five seeds each (another initialisation and data order):

- ``dsprites-mlp-bernoulli-z10-beta{2,4,8}-e30``: β-VAE, the β-weighted
  negative ELBO with the analytic KL (``partial(negative_elbo, beta=β)``);
- ``dsprites-mlp-bernoulli-tcvae-z10-beta{2,4,8}-e30``: β-TCVAE,
  :func:`vaecore.total_correlation.beta_tcvae_loss` with weight β on the
  total correlation alone (minibatch-weighted sampling, α = γ = 1).

Each record holds :func:`evaluate_disentanglement` for every seed: the ELBO
terms, active units, the KL split with the data set's exact aggregate
posterior, MIG (per factor too) and DCI.
"""
from __future__ import annotations

import math
from functools import lru_cache, partial

import torch

from vaecore.data import Sprites, dsprites
from vaecore.dci import dci
from vaecore.elbo import negative_elbo
from vaecore.latent import active_units, encode_dataset
from vaecore.mig import mig
from vaecore.mlp import MLPDecoder, MLPEncoder
from vaecore.seeding import local_seed
from vaecore.total_correlation import beta_tcvae_loss, kl_decomposition_dataset
from vaecore.vae import VAE

from ..protocol import evaluate_elbo
from ..recipe import Recipe, checkpoint_name

__all__ = ["LATENT_DIM", "HIDDEN", "EPOCHS", "BATCH_SIZE", "BETAS", "METHODS", "SEEDS",
           "DCI_TRAIN", "DCI_TEST", "EVAL_SEED", "KL_SAMPLES", "sprites", "sprites_vae",
           "model_name", "SETTINGS", "disentanglement_scores", "evaluate_disentanglement",
           "RECIPES"]

LATENT_DIM = 10
HIDDEN = (256, 256)
EPOCHS = 30
BATCH_SIZE = 256
BETAS = (2.0, 4.0, 8.0)
#: The two objectives, by the name the chapter gives them.
METHODS = ("β-VAE", "β-TCVAE")
#: Every setting is trained with these seeds (0 is the shipped run).
SEEDS = (0, 1, 2, 3, 4)
#: DCI's regressions are fitted on DCI_TRAIN images and scored on DCI_TEST others,
#: drawn once with EVAL_SEED; the KL split uses KL_SAMPLES draws.
DCI_TRAIN, DCI_TEST = 10_000, 5_000
EVAL_SEED = 0
KL_SAMPLES = 1_000


@lru_cache(maxsize=1)
def sprites() -> Sprites:
    """The data set, generated once per process (:func:`vaecore.data.dsprites`)."""
    return dsprites()


def sprites_vae(seed: int = 0) -> VAE:
    """A freshly initialised (seeded) MLP VAE 1024-256-256-10 with a Bernoulli decoder."""
    with local_seed(seed):
        return VAE(MLPEncoder((1, 32, 32), LATENT_DIM, hidden=HIDDEN),
                   MLPDecoder(LATENT_DIM, (1, 32, 32), hidden=HIDDEN))


def model_name(method: str, beta: float) -> str:
    """The checkpoint name of ``method`` (one of :data:`METHODS`) at weight ``beta``."""
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    variants = ("tcvae",) if method == "β-TCVAE" else ()
    return checkpoint_name("dsprites", "mlp", "bernoulli", *variants, z=LATENT_DIM, beta=beta,
                           epochs=EPOCHS)


#: ``(method, β, checkpoint name)`` of the six settings, β-VAE first.
SETTINGS = tuple((method, beta, model_name(method, beta)) for method in METHODS for beta in BETAS)


def _data():
    return sprites().x, None


def disentanglement_scores(mu: torch.Tensor, generator: torch.Generator) -> dict:
    """MIG (and each factor's gap) and DCI of a code ``mu`` ``(46,080, D)`` of the data set.

    MIG from all images, 20 bins; DCI's regressions fitted on :data:`DCI_TRAIN`
    images and scored on :data:`DCI_TEST` others, drawn with ``generator``.
    """
    data = sprites()
    gaps = mig(mu, data.factors)
    order = torch.randperm(len(data.x), generator=generator)
    fit_rows, test_rows = order[:DCI_TRAIN], order[DCI_TRAIN:DCI_TRAIN + DCI_TEST]
    factors = data.factors.double()
    scores = dci(mu[fit_rows].double(), factors[fit_rows],
                 mu[test_rows].double(), factors[test_rows])
    return {"mig": float(gaps.score),
            **{f"mig_{f}": float(v) for f, v in zip(data.names, gaps.gaps)},
            "dci_disentanglement": float(scores.disentanglement),
            "dci_completeness": float(scores.completeness),
            "dci_informativeness": float(scores.informativeness)}


@torch.no_grad()
def evaluate_disentanglement(model) -> dict:
    """What the record keeps of one trained model, on the whole data set.

    - ``log_likelihood``, ``kl``: the ELBO's terms (nats per image; one draw of
      z per image, seed :data:`EVAL_SEED`); ``active_units`` (posterior-mean
      variance above 0.01);
    - ``index_code_mi``, ``total_correlation``, ``dimwise_kl``: the split of
      the average KL with the exact aggregate posterior of the 46,080 images
      (:func:`kl_decomposition_dataset`, :data:`KL_SAMPLES` draws);
    - :func:`disentanglement_scores` of the posterior means: ``mig`` and
      ``mig_<factor>``, ``dci_disentanglement``, ``dci_completeness`` and
      ``dci_informativeness`` (the mean :math:`R^2` of the factors' linear
      regressions, higher is better).

    One generator, seeded with :data:`EVAL_SEED`, draws z, the KL split's
    samples and DCI's split, in that order.
    """
    model.eval()
    data = sprites()
    g = torch.Generator().manual_seed(EVAL_SEED)
    elbo = evaluate_elbo(model, data.x, loss_fn=negative_elbo, generator=g)
    codes = encode_dataset(model, data.x)
    split = kl_decomposition_dataset(*codes, KL_SAMPLES, generator=g)
    metrics = {"log_likelihood": elbo["test_log_likelihood"], "kl": elbo["test_kl"],
               "active_units": float(active_units(codes.mu).sum()),
               **{k: t.mean().item() for k, t in split._asdict().items()},
               **disentanglement_scores(codes.mu, g)}
    if not all(math.isfinite(v) for v in metrics.values()):
        raise ValueError(f"non-finite metrics: {metrics}")
    return metrics


def _recipe(method: str, beta: float) -> Recipe:
    if method == "β-VAE":
        loss, objective = partial(negative_elbo, beta=beta), f"β-weighted negative ELBO, β = {beta:g}"
    else:
        loss = partial(beta_tcvae_loss, beta=beta)
        objective = (f"β-TCVAE: negative ELBO with weight {beta:g} on the total correlation "
                     f"(minibatch-weighted sampling)")
    return Recipe(build=sprites_vae, loss=loss, data=_data, epochs=EPOCHS,
                  evaluate=evaluate_disentanglement,
                  summary=f"dSprites 32×32 (all 46,080 images), MLP 1024-256-256-10, Bernoulli "
                          f"decoder, {objective}, Adam 1e-3, batch {BATCH_SIZE}, {EPOCHS} epochs",
                  fit_options={"lr": 1e-3, "batch_size": BATCH_SIZE})


RECIPES = {name: _recipe(method, beta) for method, beta, name in SETTINGS}
