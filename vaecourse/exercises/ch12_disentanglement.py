"""Checks for the exercises of chapter 12 (disentanglement): the MWS estimate of the total
correlation, the MIG of a code with a duplicated coordinate, and a code made independent.

The implement check compares the student's estimate with the library's on random
posteriors and names the chapter's usual slips (a sign, a dropped −log M, the own
sample left out, marginals that are not mixtures); the derive check names a slip only
when the answer equals it; the experiment check trains nothing itself: it measures the
model the student's function returns.
"""
from __future__ import annotations

import math

import torch

from vaecore.total_correlation import (kl_decomposition_dataset, kl_decomposition_mc,
                                       log_aggregate_posterior, log_density_matrix)
from ._answers import check_number, measured, trained_vae
from ._check import CheckResult, known_mistakes, run_cases
from ._submission import exercise, rng

__all__ = ["check_mws_total_correlation", "check_mig_with_a_copy", "check_independent_code",
           "position_subset", "small_vae", "TC_MAX", "LOG_LIKELIHOOD_MIN", "ACTIVE_MIN"]


# Exercise: the minibatch-weighted estimate of the total correlation (implement)
def _log_normal(z):
    return -0.5 * (math.log(2 * math.pi) + z ** 2).sum(1)


def _mws_reference(z, mu, logvar):
    return kl_decomposition_mc(z, mu, logvar, _log_normal(z)).total_correlation


def _variant(z, mu, logvar, *, joint_log_m=True, dims_log_m=True, own=True, mixture_dims=True,
             sign=1.0):
    """The estimate and the chapter's likely slips on it."""
    log_q = log_density_matrix(z, mu, logvar)                       # (M, M, D)
    m = len(z)
    if not own:                                                      # leave-one-out mixture
        log_q = log_q.masked_fill(torch.eye(m, dtype=torch.bool)[:, :, None], -math.inf)
    count = m if own else m - 1
    joint = torch.logsumexp(log_q.sum(2), 1) - (math.log(count) if joint_log_m else 0.0)
    if mixture_dims:
        dims = torch.logsumexp(log_q, 1) - (math.log(count) if dims_log_m else 0.0)
    else:                                                            # each z_id under its own q
        dims = torch.diagonal(log_density_matrix(z, mu, logvar)).T
    return sign * (joint - dims.sum(1))


_MWS_MISTAKES = [
    ("sign", lambda z, mu, lv: _variant(z, mu, lv, sign=-1.0),
     "the sign is flipped: the total correlation is log q̂(z_i) minus the sum of the "
     "log q̂(z_id), joint minus marginals (it is ≥ 0 in expectation)."),
    ("log M", lambda z, mu, lv: _variant(z, mu, lv, joint_log_m=False, dims_log_m=False),
     "the −log M of the mixture average is missing: each log q̂ is a log-sum-exp minus "
     "log M, and the D marginals do not cancel the joint's one term."),
    ("log M", lambda z, mu, lv: _variant(z, mu, lv, dims_log_m=False),
     "the marginals' log q̂(z_id) miss their −log M (the joint has it)."),
    ("own", lambda z, mu, lv: _variant(z, mu, lv, own=False),
     "you left the example's own posterior out of the mixture: MWS averages over all M "
     "members of the batch, j = i included."),
    ("marginals", lambda z, mu, lv: _variant(z, mu, lv, mixture_dims=False),
     "each marginal q̂(z_id) is a mixture over the batch too, log-sum-exp over j of "
     "q(z_id | x_j) minus log M, not the example's own q(z_id | x_i)."),
]


def _close(got, want) -> bool:
    return (isinstance(got, torch.Tensor) and got.shape == want.shape
            and torch.allclose(got.detach().double(), want, rtol=1e-7, atol=1e-9))


@exercise(kl_decomposition_mc, log_aggregate_posterior, kl_decomposition_dataset)
def check_mws_total_correlation(mws_total_correlation) -> CheckResult:
    """Check ``mws_total_correlation(z, mu, logvar)``: ``(M,)``, Equation (mws-estimate)'s
    per-example total correlation ``log q̂(z_i) − Σ_d log q̂(z_id)``, no log N constant."""
    g = rng(12)

    def batch(m, d, scale=1.0):
        mu = scale * torch.randn(m, d, generator=g, dtype=torch.float64)
        logvar = 0.5 * torch.randn(m, d, generator=g, dtype=torch.float64) - 1.0
        z = mu + (0.5 * logvar).exp() * torch.randn(m, d, generator=g, dtype=torch.float64)
        return z, mu, logvar

    cases = [batch(16, 3), batch(32, 5), batch(8, 2, scale=3.0), batch(64, 10, scale=0.3),
             batch(2, 4), batch(5, 1)]
    return run_cases("mws_total_correlation", mws_total_correlation, _mws_reference, cases,
                     event_size=None, explain=known_mistakes(_MWS_MISTAKES, _close),
                     rtol=1e-7, atol=1e-9)


# Exercise: the MIG of a code with a copied coordinate (derive)
@exercise()
def check_mig_with_a_copy(mig_with_a_copy) -> CheckResult:
    """Check ``mig_with_a_copy()``: the MIG of the code (shape, scale, orientation, pos_x,
    pos_y, pos_x), the five factor indices of dSprites with pos_x written twice, binned as
    the chapter bins codes (20 equal bins per coordinate). Every factor but pos_x has a gap
    of H(v_k) / H(v_k) = 1; pos_x's two coordinates carry the same information, a gap of 0:
    the mean is 4/5.
    """
    return check_number("mig_with_a_copy", mig_with_a_copy, 0.8, rtol=1e-3, mistakes=[
        (1.0, "the copy is not free: pos_x's gap is the difference between its best and its "
         "second-best coordinate, and both carry all of its information."),
        (0.0, "only pos_x has two coordinates that know it; the other factors' gaps are "
         "unchanged by the copy."),
        (5 / 6, "MIG averages over the K = 5 factors, not over the 6 coordinates."),
    ])


# Exercise: a code made independent (experiment)
#: The exercise's subset: squares at orientation 0, all six scales, 16 × 16 positions.
SUBSET_SIZE = 1536
#: A passing model: total correlation below TC_MAX nats, log-likelihood above
#: LOG_LIKELIHOOD_MIN nats per image, at least ACTIVE_MIN active units.
TC_MAX, LOG_LIKELIHOOD_MIN, ACTIVE_MIN = 1.0, -70.0, 2
LATENT = 4


def position_subset() -> torch.Tensor:
    """The 1,536 images of the exercise: squares at orientation 0, every scale and position."""
    from vaecore.data import dsprites
    sprites = dsprites()
    keep = (sprites.factors[:, 0] == 0) & (sprites.factors[:, 2] == 0)
    return sprites.x[keep]


def small_vae(seed: int = 0):
    """The exercise's network: MLP 1024-128-4, Bernoulli decoder, seeded."""
    from vaecore.mlp import MLPDecoder, MLPEncoder
    from vaecore.seeding import local_seed
    from vaecore.vae import VAE
    with local_seed(seed):
        return VAE(MLPEncoder((1, 32, 32), LATENT, hidden=(128,)),
                   MLPDecoder(LATENT, (1, 32, 32), hidden=(128,)))


@exercise()
def check_independent_code(train_independent) -> CheckResult:
    """Check ``train_independent(x, seed)``: returns ``small_vae(seed)`` trained on ``x``, the
    1,536 images of :func:`position_subset`, in a few seconds.

    The check calls it with two seeds and measures, for each model, on the 1,536 images:
    the total correlation of its code with the exact aggregate posterior
    (:func:`vaecore.total_correlation.kl_decomposition_dataset`, 1,000 draws), the mean
    log-likelihood (one z per image) and the active units. Each must have a total
    correlation below 1 nat, a log-likelihood above −70 nats and at least 2 active units.
    Four epochs of the subset (each image 4 times) with the plain negative ELBO give a
    total correlation of about 3 nats and a log-likelihood near −37; with β-TCVAE at
    β = 8 (Adam 3e-3, batch 128), 0.3 to 0.65 nats and −57 to −65 over eight seeds (the
    check's two included).
    """
    from vaecore.elbo import negative_elbo
    from vaecore.latent import active_units, encode_dataset
    name = "independent_code"
    x = position_subset()
    g = rng(1212)
    seeds = [int(torch.randint(1000, (1,), generator=g)) for _ in range(2)]
    reports = []
    for seed in seeds:
        model, failed = trained_vae(name, train_independent, x, seed, latent_dim=LATENT,
                                    builder="small_vae(seed)")
        if failed is not None:
            return failed
        model.eval()
        with torch.no_grad():
            codes = encode_dataset(model, x)
            tc = kl_decomposition_dataset(*codes, 1000, generator=torch.Generator()
                                          .manual_seed(seed)).total_correlation.mean().item()
            ll = negative_elbo(model, x, generator=torch.Generator().manual_seed(seed)) \
                .log_likelihood.mean().item()
            active = int(active_units(codes.mu).sum())
        what = (f"seed {seed}: total correlation {tc:.2f} nats, log-likelihood {ll:.1f} nats "
                f"per image, {active} active units")
        reports.append(what)
        if not math.isfinite(tc + ll):
            return measured(name, False, what, "nan", "Not finite: did training diverge?")
        if active < ACTIVE_MIN or ll < LOG_LIKELIHOOD_MIN:
            return measured(name, False, what, "collapse", "The code must still describe the "
                            f"images: at least {ACTIVE_MIN} active units and a log-likelihood "
                            f"above {LOG_LIKELIHOOD_MIN:.0f} nats. A smaller weight, or a "
                            "weight on the total correlation alone, keeps more of it.")
        if tc >= TC_MAX:
            return measured(name, False, what, "tc", f"The total correlation must be below "
                            f"{TC_MAX:.0f} nat: penalise it (beta-tcvae) more strongly.")
    return measured(name, True, "; ".join(reports))
