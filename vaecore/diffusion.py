r"""Denoising diffusion (Ho, Jain and Abbeel, 2020): forward process, loss and sampler.

The forward process adds Gaussian noise in :math:`T` steps with variances
:math:`\beta_1, \dots, \beta_T`. Here steps are indexed from 0: ``t = 0`` is the
first noisy step, and :math:`\bar\alpha_t = \prod_{s \le t} (1 - \beta_s)`
(``Schedule.alpha_bar[t]``). Its marginal has a closed form (paper, Eq. 4):

.. math::
    q(x_t \mid x_0) = \mathcal N\bigl(\sqrt{\bar\alpha_t}\, x_0,\; (1 - \bar\alpha_t) I\bigr),

so :math:`x_t = \sqrt{\bar\alpha_t} x_0 + \sqrt{1 - \bar\alpha_t}\, \varepsilon`
(:func:`q_sample`). A network :math:`\varepsilon_\theta(x_t, t)` learns to predict the
noise with the paper's simplified loss (Eq. 14, :func:`noise_prediction_loss`):

.. math::
    L_\text{simple} = \mathbb E_{t, x_0, \varepsilon}
        \lVert \varepsilon - \varepsilon_\theta(x_t, t) \rVert^2 .

The posterior of one step given :math:`x_0` is Gaussian (Eq. 6-7,
:meth:`Schedule.posterior`):
:math:`q(x_{t-1} \mid x_t, x_0) = \mathcal N(\tilde\mu_t, \tilde\beta_t I)` with
:math:`\tilde\beta_t = \beta_t (1 - \bar\alpha_{t-1}) / (1 - \bar\alpha_t)`.
Ancestral sampling (Algorithm 2, :func:`sample`) runs the reverse chain from
:math:`x_T \sim \mathcal N(0, I)`:

.. math::
    x_{t-1} = \frac{1}{\sqrt{\alpha_t}} \Bigl(x_t - \frac{\beta_t}{\sqrt{1 - \bar\alpha_t}}
        \varepsilon_\theta(x_t, t)\Bigr) + \sigma_t \xi, \qquad \xi \sim \mathcal N(0, I),

with :math:`\sigma_t^2 = \tilde\beta_t` (or :math:`\beta_t`; the paper found both
similar) and no noise at the last step. Sampling with fewer steps than training
(Nichol and Dhariwal, 2021, Section 4) keeps a subsequence :math:`S` of the steps and
uses the schedule they imply, :math:`\beta'_i = 1 - \bar\alpha_{S_i} / \bar\alpha_{S_{i-1}}`,
with the network still told the original step :math:`S_i` (:meth:`Schedule.respaced`).

Reduction rule: :func:`noise_prediction_loss` returns one value per example, ``(B,)``,
summed over the example's dimensions; nothing here averages over the batch.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch

from ._checks import check_positive_int, check_tensor
from .denoisers import GridDenoiser, MLPDenoiser, TimeEmbedding

__all__ = ["Schedule", "q_sample", "noise_prediction_loss", "sample", "TimeEmbedding",
           "MLPDenoiser", "GridDenoiser", "latent_scale"]

#: ``denoiser(x_t, t)`` with ``t`` an integer tensor of shape ``(B,)``: the predicted noise.
Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class Posterior(NamedTuple):
    """:math:`q(x_{t-1} \\mid x_t, x_0)`: mean and variance (the variance per example)."""
    mean: torch.Tensor
    variance: torch.Tensor


class Schedule:
    """Noise variances ``betas`` (shape ``(T,)``, each in (0, 1)) and what follows from them.

    ``timesteps[i]`` is the step of the network's training schedule that step ``i`` of
    this schedule stands for: ``arange(T)`` for a training schedule, a subsequence for
    one made by :meth:`respaced`.
    """

    def __init__(self, betas: torch.Tensor, timesteps: torch.Tensor | None = None):
        betas = torch.as_tensor(betas, dtype=torch.float64)
        check_tensor("betas", betas, ndim=1)
        if len(betas) == 0 or not bool(((betas > 0) & (betas < 1)).all()):
            raise ValueError("betas must be a non-empty 1-d tensor with every value in (0, 1)")
        self.betas = betas
        self.alphas = 1 - betas
        self.alpha_bar = torch.cumprod(self.alphas, 0)
        self.alpha_bar_prev = torch.cat([betas.new_ones(1), self.alpha_bar[:-1]])
        # beta tilde: the variance of q(x_{t-1} | x_t, x_0); 0 at the first step.
        self.posterior_variance = betas * (1 - self.alpha_bar_prev) / (1 - self.alpha_bar)
        self.timesteps = (torch.arange(len(betas)) if timesteps is None
                          else torch.as_tensor(timesteps, dtype=torch.long))
        if self.timesteps.shape != betas.shape:
            raise ValueError(f"timesteps must have one entry per beta ({len(betas)}), "
                             f"got shape {tuple(self.timesteps.shape)}")

    def __len__(self) -> int:
        return len(self.betas)

    @classmethod
    def linear(cls, steps: int = 1000, beta_start: float = 1e-4,
               beta_end: float = 0.02) -> "Schedule":
        """Ho et al.'s schedule: ``steps`` variances evenly spaced from ``beta_start`` to
        ``beta_end`` (the paper: 1000 steps, 1e-4 to 0.02). With fewer steps the ends are
        scaled by ``1000 / steps`` so that the chain still ends near pure noise (the
        scaling of Nichol and Dhariwal's code)."""
        steps = check_positive_int("steps", steps)
        scale = 1000 / steps
        return cls(torch.linspace(beta_start * scale, min(beta_end * scale, 0.999), steps,
                                  dtype=torch.float64))

    @classmethod
    def cosine(cls, steps: int = 1000, offset: float = 0.008) -> "Schedule":
        """Nichol and Dhariwal's cosine schedule (Eq. 17): :math:`\\bar\\alpha_t` follows
        :math:`\\cos^2` of the step, each beta clipped at 0.999."""
        steps = check_positive_int("steps", steps)
        s = torch.arange(steps + 1, dtype=torch.float64) / steps
        f = torch.cos((s + offset) / (1 + offset) * math.pi / 2) ** 2
        return cls((1 - f[1:] / f[:-1]).clamp(max=0.999))

    def respaced(self, steps: int) -> "Schedule":
        """A schedule of ``steps`` steps, evenly spread over this one's, with the same
        :math:`\\bar\\alpha` at the steps it keeps (always the last)."""
        steps = check_positive_int("steps", steps)
        if steps > len(self):
            raise ValueError(f"cannot respace {len(self)} steps into {steps}")
        # evenly spread, counted back from the last step so that it is always kept
        keep = (len(self) - 1 - torch.linspace(0, len(self) - 1, steps)).round().long().unique()
        bar = self.alpha_bar[keep]
        betas = 1 - bar / torch.cat([bar.new_ones(1), bar[:-1]])
        return Schedule(betas, self.timesteps[keep])

    def _at(self, values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """``values[t]`` shaped to broadcast against ``like`` (B, ...)."""
        return values.to(like.device)[t].to(like.dtype).view(-1, *([1] * (like.dim() - 1)))

    def posterior(self, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor) -> Posterior:
        """Mean and variance of :math:`q(x_{t-1} \\mid x_t, x_0)` (paper, Eq. 7)."""
        bar, bar_prev = self._at(self.alpha_bar, t, xt), self._at(self.alpha_bar_prev, t, xt)
        beta, alpha = self._at(self.betas, t, xt), self._at(self.alphas, t, xt)
        mean = (bar_prev.sqrt() * beta / (1 - bar)) * x0 + (alpha.sqrt() * (1 - bar_prev)
                                                            / (1 - bar)) * xt
        return Posterior(mean, self._at(self.posterior_variance, t, xt))


def _check_steps(schedule: Schedule, t: torch.Tensor, batch: int) -> torch.Tensor:
    t = torch.as_tensor(t)
    if t.dtype not in (torch.int64, torch.int32) or t.shape != (batch,):
        raise ValueError(f"t must be an integer tensor of shape ({batch},), got "
                         f"{t.dtype} {tuple(t.shape)}")
    if bool(((t < 0) | (t >= len(schedule))).any()):
        raise ValueError(f"t must lie in [0, {len(schedule) - 1}]")
    return t.long()


def q_sample(schedule: Schedule, x0: torch.Tensor, t: torch.Tensor,
             noise: torch.Tensor) -> torch.Tensor:
    """:math:`x_t = \\sqrt{\\bar\\alpha_t} x_0 + \\sqrt{1 - \\bar\\alpha_t}\\,\\varepsilon`,
    Equation (ldm-marginal)."""
    check_tensor("x0", x0)
    if noise.shape != x0.shape:
        raise ValueError(f"noise has shape {tuple(noise.shape)}, x0 {tuple(x0.shape)}")
    t = _check_steps(schedule, t, len(x0))
    bar = schedule._at(schedule.alpha_bar, t, x0)
    return bar.sqrt() * x0 + (1 - bar).sqrt() * noise


def noise_prediction_loss(denoiser: Denoiser, schedule: Schedule, x0: torch.Tensor, *,
                          generator: torch.Generator | None = None) -> torch.Tensor:
    """:math:`\\lVert \\varepsilon - \\varepsilon_\\theta(x_t, t) \\rVert^2` per example,
    ``(B,)``, with ``t`` uniform over the schedule's steps and fresh noise: Equation
    (ldm-loss)."""
    check_tensor("x0", x0)
    t = torch.randint(len(schedule), (len(x0),), generator=generator, device=x0.device)
    noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
    predicted = denoiser(q_sample(schedule, x0, t, noise), schedule.timesteps.to(x0.device)[t])
    if predicted.shape != x0.shape:
        raise ValueError(f"the denoiser returned shape {tuple(predicted.shape)} for inputs of "
                         f"shape {tuple(x0.shape)}; it must predict the noise, the same shape")
    return (predicted - noise).pow(2).flatten(1).sum(1)


@torch.no_grad()
def sample(denoiser: Denoiser, schedule: Schedule, shape: tuple[int, ...], *,
           generator: torch.Generator | None = None, variance: str = "posterior",
           dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu",
           clip: tuple[float, float] | None = None) -> torch.Tensor:
    """Ancestral sampling (Algorithm 2; Equation (ldm-reverse)) of ``shape`` from
    :math:`x_T \\sim \\mathcal N(0, I)`.

    ``variance`` is ``"posterior"`` (:math:`\\sigma_t^2 = \\tilde\\beta_t`) or ``"beta"``
    (:math:`\\sigma_t^2 = \\beta_t`); the last step adds no noise. A :meth:`respaced`
    schedule samples with fewer steps; the denoiser is told each step's original index.

    ``clip=(low, high)``: at each step the estimate of :math:`x_0` implied by the predicted
    noise, :math:`\\hat x_0 = (x_t - \\sqrt{1 - \\bar\\alpha_t}\\,\\varepsilon_\\theta) /
    \\sqrt{\\bar\\alpha_t}`, is clamped to ``[low, high]`` and the step's mean is the
    one-step posterior's, :math:`\\tilde\\mu_t(x_t, \\hat x_0)` (Equation (ldm-posterior)),
    as Ho et al.'s code does for images in [-1, 1] (``clip_denoised``); unclamped, that mean
    is Algorithm 2's, so the two agree. The last step then returns the clamped
    :math:`\\hat x_0`.
    """
    if variance not in ("posterior", "beta"):
        raise ValueError(f"variance must be 'posterior' or 'beta', got {variance!r}")
    if clip is not None and not (len(clip) == 2 and clip[0] < clip[1]):
        raise ValueError(f"clip must be (low, high) with low < high, got {clip!r}")
    sigma2 = schedule.posterior_variance if variance == "posterior" else schedule.betas
    x = torch.randn(shape, generator=generator, dtype=dtype, device=device)
    for i in reversed(range(len(schedule))):
        t = torch.full((shape[0],), i, dtype=torch.long, device=device)
        eps = denoiser(x, schedule.timesteps.to(device)[t])
        alpha, beta = float(schedule.alphas[i]), float(schedule.betas[i])
        if clip is None:
            x = (x - beta / math.sqrt(1 - float(schedule.alpha_bar[i])) * eps) / math.sqrt(alpha)
        else:
            bar = float(schedule.alpha_bar[i])
            x0 = ((x - math.sqrt(1 - bar) * eps) / math.sqrt(bar)).clamp(*clip)
            # at the last step the posterior mean is x0 itself (alpha_bar_prev = 1)
            x = x0 if i == 0 else schedule.posterior(x0, x, t).mean.to(dtype)
        if i > 0:
            x = x + math.sqrt(float(sigma2[i])) * torch.randn(
                shape, generator=generator, dtype=dtype, device=device)
    return x


def latent_scale(z: torch.Tensor) -> float:
    """The factor that gives latents ``z`` unit variance, ``1 / std(z)`` over all entries.

    Latent diffusion (Rombach et al., 2022) multiplies a KL-regularised autoencoder's
    latents by such a factor, estimated once on training latents, before training the
    diffusion model on them, and divides by it before decoding.
    """
    check_tensor("z", z)
    sd = float(z.detach().double().std())
    if not math.isfinite(sd) or sd == 0:
        raise ValueError(f"the latents' standard deviation is {sd}: cannot rescale")
    return 1.0 / sd
