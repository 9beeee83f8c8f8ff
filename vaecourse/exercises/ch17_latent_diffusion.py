"""Checks for the exercises of chapter 17 (latent diffusion): one step of ancestral sampling,
the KL weight that stands for a decoder noise of one 8-bit level, and a prior fitted to the
autoencoder's latents.

The implement check compares the student's reverse step with the mean and variance of the
one-step posterior :math:`q(x_{t-1} \\mid x_t, \\hat x_0)` (an independent route to the same
value) on random cases, and names the usual slips (the variance β instead of β̃, noise
added at the last step, a missing 1/√α, ᾱ in place of α); the derive check compares a number
with the closed form; the experiment check decodes samples of the student's prior with the
shipped MNIST autoencoder and measures their Fréchet distance to the test images.
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch

from vaecore.diffusion import Schedule, sample
from ._answers import call, check_number, measured, wrong_shape
from ._check import CheckResult
from ._submission import exercise, rng

__all__ = ["check_reverse_step", "check_weight_for_one_level", "check_latent_prior",
           "LATENT_PRIOR_FID", "N_TRAIN_LATENTS", "training_latents"]

#: Agreement asked of the implement check's values (float64 cases).
TOLERANCE = 1e-9
#: The experiment passes at this Fréchet distance or lower (1,000 decoded samples against as
#: many test images, LeNet features; the shipped MNIST autoencoder, seed 0). Measured with the
#: check's draws: latents from N(0, I) give 504.8; a Gaussian with each latent value's own
#: mean and variance, 179.8; one Gaussian with the full covariance of the 196 values, 108.4;
#: a mixture of ten such Gaussians, one per cluster of 20 rounds of k-means, 31.9 (the
#: chapter's solution); of twenty, 23.0.
LATENT_PRIOR_FID = 75.0
#: The training images whose latents the student's prior is fitted to: the first of the split.
N_TRAIN_LATENTS = 10_000
#: Draws (and test images) compared by their distance to the nearest training latent.
N_COPY_PROBE = 200


# Exercise: one step of the reverse chain (implement)
def _reference_step(schedule: Schedule, x_t, i: int, eps, noise):
    """Through the one-step posterior: predict x_0 from eps, then q(x_{i-1} | x_i, x_0)."""
    t = torch.full((len(x_t),), i, dtype=torch.long)
    bar = schedule.alpha_bar[i].item()
    x0 = (x_t - math.sqrt(1 - bar) * eps) / math.sqrt(bar)
    posterior = schedule.posterior(x0, x_t, t)
    return posterior.mean + (posterior.variance.sqrt() * noise if i > 0 else 0)


def _step_cases(seed: int):
    g = rng(seed)
    cases = []
    for schedule, shape in [(Schedule.linear(100), (3, 4, 7, 7)), (Schedule.cosine(20), (5, 2)),
                            (Schedule.linear(10), (2, 1, 4, 4))]:
        for i in (len(schedule) - 1, len(schedule) // 2, 1, 0):
            cases.append((schedule, torch.randn(shape, generator=g, dtype=torch.float64), i,
                          torch.randn(shape, generator=g, dtype=torch.float64),
                          torch.randn(shape, generator=g, dtype=torch.float64)))
    return cases


def _noise_added_at_the_end(answer, mean, noise) -> bool:
    """At i = 0: ``answer`` is the mean plus a nonzero multiple of ``noise``."""
    extra = answer - mean
    c = (extra * noise).sum() / noise.pow(2).sum()
    return bool(c.abs() > 1e-6 and torch.allclose(extra, c * noise, rtol=1e-6, atol=1e-6))


def _slips(schedule: Schedule, x_t, i, eps, noise) -> dict:
    alpha, beta, bar = (float(v[i]) for v in (schedule.alphas, schedule.betas, schedule.alpha_bar))
    mean = (x_t - beta / math.sqrt(1 - bar) * eps) / math.sqrt(alpha)
    tilde = float(schedule.posterior_variance[i])
    last = i == 0
    return {
        "beta-variance": (mean + math.sqrt(beta) * noise if not last else None,
                          "σ² = β_t is the other choice of Ho et al.; the check asks for "
                          "β̃_t = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t), the one-step posterior's."),
        "no-rescale": (x_t - beta / math.sqrt(1 - bar) * eps + (0 if last else
                                                                math.sqrt(tilde) * noise),
                       "the mean is divided by √α_t."),
        "alpha-bar": ((x_t - beta / math.sqrt(1 - bar) * eps) / math.sqrt(bar)
                      + (0 if last else math.sqrt(tilde) * noise),
                      "divide by √α_t, one step's factor, not by √ᾱ_t."),
    }


@exercise(sample)
def check_reverse_step(reverse_step) -> CheckResult:
    """Check ``reverse_step(schedule, x_t, i, eps, noise)``: one step of Algorithm 2 at the
    library's index ``i`` (the paper's :math:`t = i + 1`), from ``x_t`` (the paper's
    :math:`x_t`) to the paper's :math:`x_{t-1}`, with :math:`\\sigma^2` =
    ``schedule.posterior_variance[i]``, the predicted noise ``eps`` and the standard normal
    draw ``noise``, which is not used at ``i`` = 0; on random cases of three schedules in
    float64."""
    name = "reverse_step"
    cases = _step_cases(1701)
    for k, (schedule, x_t, i, eps, noise) in enumerate(cases):
        where = f"(case {k + 1}: {len(schedule)} steps, i = {i}, x_t {tuple(x_t.shape)})"
        answer, failed = call(name, reverse_step, schedule, x_t.clone(), i, eps.clone(),
                              noise.clone())
        if failed is not None:
            return failed
        failed = wrong_shape(name, answer, x_t.shape, where, "x_(i-1) with the shape of x_t")
        if failed is not None:
            return failed
        answer = answer.detach().to(torch.float64)
        want = _reference_step(schedule, x_t, i, eps, noise)
        if torch.allclose(answer, want, rtol=TOLERANCE, atol=TOLERANCE):
            continue
        if i == 0 and _noise_added_at_the_end(answer, want, noise):
            return measured(name, False, f"your last step adds noise {where}",
                            "last-step-noise", "At i = 0 there is no ᾱ_(i−1) (take it as 1: "
                            "β̃_0 = 0): return the mean, without noise.")
        for slip, (wrong, detail) in _slips(schedule, x_t, i, eps, noise).items():
            if wrong is not None and torch.allclose(answer, wrong, rtol=1e-7, atol=1e-7):
                return measured(name, False, f"your step differs {where}", slip, detail)
        if torch.allclose(answer, want, rtol=1e-5, atol=1e-5):
            return measured(name, False, f"your step agrees only to about 6 digits {where}",
                            "precision", "Keep the arithmetic in float64: the schedule's "
                            "tensors and Python floats are; torch.tensor(a_float) is float32.")
        return measured(name, False, f"your step differs {where}", "value",
                        "(x_t − β_i / √(1 − ᾱ_i) · eps) / √α_i + √β̃_i · noise, with the "
                        "schedule's tensors at index i.")
    return measured(name, True, f"the step matches the one-step posterior on {len(cases)} cases")


# Exercise: the weight for a decoder noise of one level (derive)
#: Latent diffusion's pixel range, and the number of 8-bit levels spread over it.
LOW, HIGH, LEVELS = -1.0, 1.0, 256


def _weight_for_one_level_answer() -> float:
    """λ = 2σ² with σ one level of a [-1, 1] image: (HIGH - LOW) / 255."""
    return 2 * ((HIGH - LOW) / (LEVELS - 1)) ** 2


@exercise()
def check_weight_for_one_level(weight_for_one_level) -> CheckResult:
    """Check ``weight_for_one_level()`` → the KL weight λ for which the squared error plus
    λ × KL is the negative ELBO of a Gaussian decoder whose noise has a standard deviation of
    one 8-bit level, for images scaled to [-1, 1]."""
    level = (HIGH - LOW) / (LEVELS - 1)
    return check_number("weight_for_one_level", weight_for_one_level,
                        _weight_for_one_level_answer(), mistakes=[
                            (2 * (1 / 255) ** 2, "that is the weight for images in [0, 1]; "
                             "in [-1, 1] one level is 2/255."),
                            (level ** 2, "the squared error is 1/(2σ²) times the Gaussian's "
                             "exponent, so λ = 2σ², not σ²."),
                            (level, "λ is a variance (2σ²), not a standard deviation."),
                            (2 * level, "λ = 2σ²: square the level."),
                            (2 * (2 / 256) ** 2, "256 levels leave 255 steps between -1 and 1: "
                             "one level is 2/255.")])


# Exercise: a Gaussian prior fitted to the latents (experiment)
@lru_cache(maxsize=1)
def _autoencoder_and_latents() -> tuple[torch.nn.Module, torch.Tensor]:
    """The shipped MNIST autoencoder (seed 0) and one latent draw (seeded) for each of the
    first :data:`N_TRAIN_LATENTS` training images, ``(N, 4, 7, 7)``, unscaled."""
    from vaecourse import zoo
    from vaecourse.chapters.ch17_latent_diffusion import MNIST, NAMES, draw_latents
    model = zoo.load(NAMES["mnist"]["autoencoder"], train_if_missing=False)[0].eval()
    return model, draw_latents(model, MNIST.data.split()[0][:N_TRAIN_LATENTS])


@lru_cache(maxsize=1)
def _held_out_latents() -> torch.Tensor:
    """One latent draw for each of the first :data:`N_COPY_PROBE` test images (seed 1)."""
    from vaecourse.chapters.ch17_latent_diffusion import MNIST, draw_latents
    return draw_latents(_autoencoder_and_latents()[0], MNIST.test()[:N_COPY_PROBE], seed=1)


def _median_nearest(z: torch.Tensor, latents: torch.Tensor) -> float:
    """The median over ``z`` of the distance to the nearest of ``latents``."""
    return torch.cdist(z.flatten(1).double(), latents.flatten(1).double()).min(1).values \
        .median().item()


def training_latents() -> torch.Tensor:
    """The latents the experiment's prior is fitted to (a copy), ``(N_TRAIN_LATENTS, 4, 7, 7)``."""
    return _autoencoder_and_latents()[1].clone()


@exercise()
def check_latent_prior(latent_prior) -> CheckResult:
    """Check ``latent_prior(latents)`` → ``draw(n, generator)``, a function returning ``n``
    latents ``(n, 4, 7, 7)``: a prior fitted to :func:`training_latents`. It passes when
    1,000 of its draws, decoded by the shipped autoencoder and clamped to [0, 1], lie within
    a Fréchet distance of :data:`LATENT_PRIOR_FID` of as many test images."""
    name = "latent_prior"
    probe = torch.randn(500, 4, 7, 7, generator=torch.Generator().manual_seed(1701))
    _, failed = call(name, latent_prior, probe)
    if failed is not None and failed.hint == "todo":  # said before the latents are computed
        return failed  # (another failure on random latents is judged on the real ones below)
    from vaecourse.chapters.ch16_vq_vae import MNIST, sample_fid
    model, latents = _autoencoder_and_latents()
    draw, failed = call(name, latent_prior, latents.clone())
    if failed is not None:
        return failed
    if not callable(draw):
        return measured(name, False, f"your function returned {type(draw).__name__}", "type",
                        "Return a function draw(n, generator) that returns n latents.")
    z, failed = call(name, draw, 1000, torch.Generator().manual_seed(1702))
    if failed is not None:
        return failed
    if not isinstance(z, torch.Tensor) or tuple(z.shape) != (1000, *latents.shape[1:]):
        got = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
        return measured(name, False, f"draw(1000, generator) returned {got}", "shape",
                        f"Return latents of shape (n, {', '.join(map(str, latents.shape[1:]))}).")
    z = z.detach().cpu().to(latents.dtype)
    if not torch.isfinite(z).all():
        return measured(name, False, "your draws hold NaN or infinite values", "nan",
                        "Check the fitted parameters (a covariance must be positive definite).")
    # Draws of a fitted distribution are no nearer the training latents than new images'
    # latents are; copies of training latents are (distance 0, or the encoder's noise).
    copies = _median_nearest(z[:N_COPY_PROBE], latents)
    if copies < 0.5 * _median_nearest(_held_out_latents(), latents):
        return measured(name, False, "your draws lie much nearer the training latents than "
                        "new images' latents do", "copies", "Fit a distribution to the "
                        "latents and sample from it, rather than replaying them.")
    with torch.no_grad():
        images = model.decode(z).clamp(0, 1)
    value = sample_fid(images, MNIST)
    return measured(name, value <= LATENT_PRIOR_FID,
                    f"1,000 decoded draws lie at a Fréchet distance of {value:.1f} from the test "
                    "images", "fid", f"At most {LATENT_PRIOR_FID:g} is needed: the latent "
                    "values are far from independent, and digits of different classes lie in "
                    "different regions of the latent space.")
