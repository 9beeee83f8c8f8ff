"""Checks for the exercises of chapter 13 (posterior collapse): the cyclical KL weight, the
posterior std of a committed rate, and a code with a floor in every coordinate.

The implement check compares the student's schedule with the library's at every step of
several runs and names the usual slips (no reset between cycles, the ratio ignored, the
period rounded the other way); the derive check compares the student's σ_max with the
root of the committed-rate equation on several rates; the experiment check trains nothing
itself: it measures the model the student's function returns.
"""
from __future__ import annotations

import math

import torch

from vaecore.kl_control import committed_rate, cyclical_weight
from ._answers import call, measured, trained_vae
from ._check import CheckResult, known_mistakes, run_cases
from ._submission import exercise, rng

__all__ = ["check_cyclical_beta", "check_sigma_for_rate", "check_nat_per_coordinate",
           "subset", "small_collapse_vae", "SUBSET_SIZE", "LATENT", "KL_MIN_PER_DIM",
           "ELBO_LOSS_MAX"]


# Exercise: the cyclical KL weight (implement)
def _schedule(fn, total, cycles, ratio):
    return torch.tensor([float(fn(t, total, cycles, ratio)) for t in range(total + 3)],
                        dtype=torch.float64)


def _no_reset(t, total, cycles, ratio):
    return min(1.0, t / (ratio * total / cycles))


def _ratio_ignored(t, total, cycles, ratio):
    period = total / cycles
    return (t % math.ceil(period)) / period


def _floor_period(t, total, cycles, ratio):
    period = total / cycles
    return min(1.0, (t % max(1, math.floor(period))) / period / ratio)


def _one_based(t, total, cycles, ratio):
    return cyclical_weight(t + 1, total, cycles, ratio)


_CYCLICAL_MISTAKES = [
    ("reset", lambda *a: _schedule(_no_reset, *a),
     "β never falls back to 0: each cycle starts again from 0, τ = (t mod ⌈T/M⌉) / (T/M)."),
    ("ratio", lambda *a: _schedule(_ratio_ignored, *a),
     "β rises over the whole cycle: it reaches 1 after the fraction R of the cycle, "
     "β = min(1, τ / R)."),
    ("period", lambda *a: _schedule(_floor_period, *a),
     "the cycle's length in steps is rounded down: the chapter's equation takes t modulo "
     "⌈T/M⌉ (and divides by T/M)."),
    ("step", lambda *a: _schedule(_one_based, *a),
     "the schedule is one step ahead: t counts the steps already taken, 0 at the first "
     "step, where β = 0."),
]


def _close(got, want) -> bool:
    return (isinstance(got, torch.Tensor) and got.shape == want.shape
            and torch.allclose(got.detach().double(), want, rtol=1e-9, atol=1e-12))


@exercise(cyclical_weight)
def check_cyclical_beta(cyclical_beta) -> CheckResult:
    """Check ``cyclical_beta(step, total_steps, cycles, ratio)`` at every step of several runs
    (and three steps past their end) against Equation (cyclical)."""
    cases = [(12, 3, 0.5), (10, 3, 0.5), (1720, 4, 0.5), (9, 1, 1.0), (20, 4, 0.25),
             (7, 7, 0.5), (100, 3, 0.8)]

    def student(total, cycles, ratio):
        return _schedule(cyclical_beta, total, cycles, ratio)

    def reference(total, cycles, ratio):
        return _schedule(cyclical_weight, total, cycles, ratio)

    return run_cases("cyclical_beta", student, reference, cases, event_size=None,
                     explain=known_mistakes(_CYCLICAL_MISTAKES, _close), rtol=1e-9, atol=1e-12)


# Exercise: the posterior std of a committed rate (derive)
def _sigma_max(delta: float) -> float:
    """The root σ in (0, 1) of ½(σ² − 1 − log σ²) = δ, by bisection on the variance."""
    low, high = 1e-300, 1.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        if 0.5 * (mid - 1 - math.log(mid)) > delta:
            low = mid
        else:
            high = mid
    return math.sqrt(0.5 * (low + high))


def _sigma_variants(delta: float) -> dict:
    s = _sigma_max(delta) ** 2
    return {"variance": s, "half": _sigma_max(delta / 2), "double": _sigma_max(2 * delta)}


@exercise(committed_rate)
def check_sigma_for_rate(sigma_for_rate) -> CheckResult:
    """Check ``sigma_for_rate(delta)``: the σ_max < 1 whose committed rate, Equation
    (committed-rate), is ``delta`` nats per dimension, on several rates."""
    deltas = [0.249087, 0.01, 0.1, 0.5, 1.0, 2.0, 5.0]
    name = "sigma_for_rate"
    for i, delta in enumerate(deltas):
        got, failed = call(name, sigma_for_rate, delta)
        if failed is not None:
            return failed
        try:
            got = float(got)
        except (TypeError, ValueError):
            return measured(name, False, f"your function returned {type(got).__name__}",
                            "type", "Return a number: the standard deviation σ_max.")
        want = _sigma_max(delta)
        where = f"(case {i + 1} of {len(deltas)}: δ = {delta:g})"
        if math.isclose(got, want, rel_tol=1e-6):
            continue
        if got >= 1:
            return measured(name, False, f"σ_max = {got:.6g} {where}", "branch",
                            "s − log s = 1 + 2δ has two roots, one on each side of 1; the "
                            "committed rate needs the one below 1 (σ_max < 1: the principal "
                            "branch W₀ of Lambert's function).")
        for slip, value in _sigma_variants(delta).items():
            if math.isclose(got, value, rel_tol=1e-6):
                detail = {"variance": "this is σ_max², the variance: return its square root.",
                          "half": "the KL has a factor ½: ½(s − 1 − log s) = δ, so "
                                  "s − log s = 1 + 2δ.",
                          "double": "the factor ½ is applied twice: s − log s = 1 + 2δ."}[slip]
                return measured(name, False, f"σ_max = {got:.6g} {where}", slip, detail)
        return measured(name, False, f"σ_max = {got:.6g}, expected {want:.6g} {where}",
                        "value", "Solve ½(σ² − 1 − log σ²) = δ for σ² < 1.")
    return measured(name, True, f"σ_max matches on {len(deltas)} rates, "
                                f"e.g. δ = 1 nat → σ_max = {_sigma_max(1.0):.4f}")


# Exercise: a floor in every coordinate (experiment)
#: The exercise's images: the first SUBSET_SIZE MNIST training images (grey levels).
SUBSET_SIZE = 1500
LATENT = 8
#: A passing model: every coordinate's mean KL at least KL_MIN_PER_DIM nats on the subset,
#: and a negative ELBO at most ELBO_LOSS_MAX nats above the plain model's of the same seed.
KL_MIN_PER_DIM, ELBO_LOSS_MAX = 0.6, 10.0


def subset() -> torch.Tensor:
    """The exercise's images: the first 1,500 MNIST training images, grey levels."""
    from vaecore import data
    return data.mnist("train").x[:SUBSET_SIZE]


def small_collapse_vae(seed: int = 0):
    """The exercise's network: MLP encoder 784-128-8, a PixelCNN decoder of 8 channels, 3 layers."""
    from vaecore.mlp import MLPEncoder
    from vaecore.pixelcnn import PixelCNNDecoder, autoregressive_bernoulli
    from vaecore.seeding import local_seed
    from vaecore.vae import VAE
    with local_seed(seed):
        return VAE(MLPEncoder((1, 28, 28), LATENT, hidden=(128,)),
                   PixelCNNDecoder(LATENT, (1, 28, 28), channels=8, n_layers=3, first_kernel=5),
                   likelihood=autoregressive_bernoulli)


def _plain(x, seed):
    from vaecore import data
    from vaecore.elbo import negative_elbo
    from vaecore.train import fit
    model = small_collapse_vae(seed)
    fit(model, negative_elbo, x, epochs=2, batch_size=64, lr=3e-3,
        transform=data.binarize_dynamic, progress=False, seed=seed)
    return model


@exercise()
def check_nat_per_coordinate(train_kept_code) -> CheckResult:
    """Check ``train_kept_code(x, seed)``: returns ``small_collapse_vae(seed)`` trained on the
    grey images ``x`` of :func:`subset` (binarize each batch) in a few seconds.

    The check calls it with one seed and measures on one fixed binarization of the
    images: each latent coordinate's mean KL (at least 0.6 nats each) and the negative
    ELBO, which may exceed that of the same network trained with the plain negative ELBO
    (two epochs, batch 64, Adam 3e-3, the same seed) by at most 10 nats.
    """
    from vaecore import data
    from vaecore.elbo import negative_elbo
    from vaecore.latent import encode_dataset, kl_per_dimension
    name = "nat_per_coordinate"
    x = subset()
    seed = int(torch.randint(1000, (1,), generator=rng(1313)))
    model, failed = trained_vae(name, train_kept_code, x, seed, latent_dim=LATENT,
                                builder="small_collapse_vae(seed)")
    if failed is not None:
        return failed
    binary = data.binarize_dynamic(x, torch.Generator().manual_seed(seed))
    scores = []
    for m in (model, _plain(x, seed)):
        m.eval()
        with torch.no_grad():
            codes = encode_dataset(m, binary)
            per_dim = kl_per_dimension(*codes).mean(0)
            loss = negative_elbo(m, binary, generator=torch.Generator().manual_seed(seed)).loss
        scores.append((per_dim, loss.item()))
    (per_dim, loss), (plain_dims, plain_loss) = scores
    what = (f"seed {seed}: KL per coordinate {per_dim.min():.2f} to {per_dim.max():.2f} nats "
            f"(plain ELBO: {plain_dims.min():.2f} to {plain_dims.max():.2f}); negative ELBO "
            f"{loss:.1f} nats (plain: {plain_loss:.1f})")
    if not math.isfinite(loss) or not torch.isfinite(per_dim).all():
        return measured(name, False, what, "nan", "Not finite: did training diverge?")
    if per_dim.min() < KL_MIN_PER_DIM:
        return measured(name, False, what, "rate", f"Every coordinate must keep at least "
                        f"{KL_MIN_PER_DIM} nats: take the KL's pull away below a floor per "
                        f"coordinate (free bits), or commit a rate; a schedule that ends at "
                        f"β = 1 does neither.")
    if loss > plain_loss + ELBO_LOSS_MAX:
        return measured(name, False, what, "cost", f"The bound fell by more than "
                        f"{ELBO_LOSS_MAX:.0f} nats: the floor is too high, or training too short.")
    return measured(name, True, what)
