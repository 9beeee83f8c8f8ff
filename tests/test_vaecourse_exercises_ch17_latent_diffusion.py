"""Chapter 17's exercise checks: the references pass, typical mistakes get the right hint."""
from __future__ import annotations

import math

import torch

from vaecore.diffusion import Schedule
from vaecourse.exercises import ch17_latent_diffusion as E


def _step(schedule, x_t, i, eps, noise):
    alpha, beta, bar = schedule.alphas[i].item(), schedule.betas[i].item(), \
        schedule.alpha_bar[i].item()
    mean = (x_t - beta / math.sqrt(1 - bar) * eps) / math.sqrt(alpha)
    if i == 0:
        return mean
    return mean + schedule.posterior_variance[i].sqrt().item() * noise


def test_the_reference_route_agrees_with_algorithm_2():
    """The check's reference goes through the one-step posterior; Algorithm 2's formula is
    another route to the same value."""
    for case in E._step_cases(3):
        torch.testing.assert_close(E._reference_step(*case), _step(*case), rtol=1e-12,
                                   atol=1e-12)


def test_reverse_step_passes_and_names_the_usual_slips():
    assert E.check_reverse_step(_step).passed
    assert E.check_reverse_step(  # float32 arithmetic is named as such
        lambda s, x, i, e, n: _step(s, x.float(), i, e.float(), n.float())).hint == "precision"

    def with_beta(s, x, i, e, n):
        return _step(s, x, i, e, n) + (0 if i == 0 else (s.betas[i].sqrt()
                                                          - s.posterior_variance[i].sqrt()) * n)

    def noisy_last(s, x, i, e, n):  # beta-tilde by hand: alpha_bar[i - 1] wraps at i = 0
        bar_prev = s.alpha_bar[i - 1]
        tilde = s.betas[i] * (1 - bar_prev) / (1 - s.alpha_bar[i])
        mean = _step(s, x, i, e, n) - (0 if i == 0 else s.posterior_variance[i].sqrt() * n)
        return mean + tilde.sqrt() * n

    def unscaled(s, x, i, e, n):
        mean = x - s.betas[i] / (1 - s.alpha_bar[i]).sqrt() * e
        return mean + (0 if i == 0 else s.posterior_variance[i].sqrt() * n)

    def bar(s, x, i, e, n):
        return unscaled(s, x, i, e, n) + (x - s.betas[i] / (1 - s.alpha_bar[i]).sqrt() * e) * (
            1 / s.alpha_bar[i].sqrt() - 1)

    slips = {"beta-variance": with_beta, "last-step-noise": noisy_last, "no-rescale": unscaled,
             "alpha-bar": bar, "shape": lambda s, x, i, e, n: _step(s, x, i, e, n).flatten(),
             "value": lambda s, x, i, e, n: _step(s, x, i, e, n) - e}
    for hint, slip in slips.items():
        result = E.check_reverse_step(slip)
        assert not result.passed and result.hint == hint, (hint, result)


def test_weight_for_one_level_passes_and_names_the_usual_slips():
    level = 2 / 255
    assert E.check_weight_for_one_level(lambda: 2 * level ** 2).passed
    assert math.isclose(E._weight_for_one_level_answer(), 1.2302960e-4, rel_tol=1e-6)
    for wrong in (2 / 255 ** 2, level ** 2, level, 2 * level, 2 * (2 / 256) ** 2):
        result = E.check_weight_for_one_level(lambda: wrong)
        assert not result.passed and result.hint == "derivation", (wrong, result)
    assert E.check_weight_for_one_level(lambda: 1e-6).hint == "values"


def _gaussian(latents):
    """One Gaussian with the latents' mean and full covariance, drawn with the generator."""
    flat = latents.flatten(1).double()
    mean = flat.mean(0)
    factor = torch.linalg.cholesky(torch.cov(flat.T) + 1e-6 * torch.eye(flat.shape[1]))

    def draw(n, generator):
        eps = torch.randn(n, flat.shape[1], generator=generator, dtype=torch.float64)
        return (mean + eps @ factor.T).float().view(n, *latents.shape[1:])
    return draw


def _mixture(latents, k=10):
    """k-means (20 rounds), then one full-covariance Gaussian per cluster, weighted by size."""
    flat = latents.flatten(1).double()
    centres = flat[torch.randperm(len(flat), generator=torch.Generator().manual_seed(0))[:k]]
    for _ in range(20):
        assign = torch.cdist(flat, centres).argmin(1)
        centres = torch.stack([flat[assign == j].mean(0) for j in range(k)])
    factors = [torch.linalg.cholesky(torch.cov(flat[assign == j].T)
                                     + 1e-4 * torch.eye(flat.shape[1])) for j in range(k)]
    weights = torch.bincount(assign, minlength=k).double()

    def draw(n, generator):
        which = torch.multinomial(weights, n, replacement=True, generator=generator)
        eps = torch.randn(n, flat.shape[1], generator=generator, dtype=torch.float64)
        z = torch.stack([centres[j] + factors[j] @ e for j, e in zip(which, eps)])
        return z.float().view(n, *latents.shape[1:])
    return draw


def test_latent_prior_passes_a_mixture_and_not_one_gaussian():
    assert E.check_latent_prior(_mixture).passed
    failures = {"fid": _gaussian,  # the full covariance, one Gaussian: 107.5
                "copies": lambda z: lambda n, g: z[torch.randint(len(z), (n,), generator=g)],
                "type": lambda z: 3,
                "shape": lambda z: lambda n, g: torch.zeros(n, 196),
                "nan": lambda z: lambda n, g: torch.full((n, 4, 7, 7), float("nan"))}
    for hint, wrong in failures.items():
        result = E.check_latent_prior(wrong)
        assert not result.passed and result.hint == hint, (hint, result)
    assert E.training_latents().shape == (E.N_TRAIN_LATENTS, 4, 7, 7)
