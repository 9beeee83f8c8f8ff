"""KL schedules, free bits and the committed rate (vaecore.kl_control)."""
import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from vaecore.elbo import negative_elbo
from vaecore.kl_control import (CommittedRateEncoder, ScheduledELBO, committed_rate,
                                cyclical_weight, free_bits_loss, linear_warmup_weight)
from vaecore.mlp import MLPDecoder, MLPEncoder
from vaecore.train import fit
from vaecore.vae import VAE


def small_vae(seed=0, latent_dim=3, encoder=None):
    torch.manual_seed(seed)
    enc = encoder or MLPEncoder((1, 4, 4), latent_dim, hidden=(8,))
    return VAE(enc, MLPDecoder(latent_dim, (1, 4, 4), hidden=(8,)))


def binary(n=12, seed=1):
    return torch.bernoulli(torch.rand(n, 1, 4, 4, generator=torch.Generator().manual_seed(seed)))


def test_linear_warmup_weight_rises_then_stays_at_one():
    assert [linear_warmup_weight(t, 4) for t in range(7)] == [0, .25, .5, .75, 1, 1, 1]
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="step"):
            linear_warmup_weight(bad, 4)
    with pytest.raises(ValueError, match="warmup_steps"):
        linear_warmup_weight(0, 0)


def test_cyclical_weight_matches_its_definition():
    # 12 steps, 3 cycles of 4, rising over the first half of each
    got = [cyclical_weight(t, 12, cycles=3, ratio=0.5) for t in range(12)]
    assert got == [0, .5, 1, 1] * 3
    # a period that is not an integer: omega = (t mod ceil(T/M)) / (T/M)
    total, cycles, ratio = 10, 3, 0.5
    for t in range(total):
        omega = (t % 4) / (10 / 3)
        assert cyclical_weight(t, total, cycles, ratio) == pytest.approx(min(1, omega / ratio))
    # one cycle with ratio R is a linear warm-up over R T steps
    assert [cyclical_weight(t, 8, 1, 0.5) for t in range(8)] == \
        [linear_warmup_weight(t, 4) for t in range(8)]
    for bad in (0, 1.5, -0.1, True):
        with pytest.raises(ValueError, match="ratio"):
            cyclical_weight(0, 10, 2, bad)
    with pytest.raises(ValueError, match="cycles"):
        cyclical_weight(0, 10, 0)


def test_scheduled_elbo_is_the_beta_weighted_elbo_and_counts_training_steps_only():
    model, x = small_vae(), binary()
    loss = ScheduledELBO(lambda t: 0.25 * t, steps_per_epoch=3)
    for step in range(3):
        got = loss(model.train(), x, generator=torch.Generator().manual_seed(step))
        want = negative_elbo(model, x, beta=0.25 * step, generator=torch.Generator().manual_seed(step))
        assert got.beta.item() == 0.25 * step and loss.step == step + 1
        torch.testing.assert_close(got.loss, want.loss)
    evaluated = loss(model.eval(), x, generator=torch.Generator().manual_seed(0))
    assert loss.step == 3 and evaluated.beta.item() == 1.0
    torch.testing.assert_close(evaluated.loss, negative_elbo(
        model, x, generator=torch.Generator().manual_seed(0)).loss)
    loss.start(2)
    assert loss.step == 6
    with pytest.raises(ValueError, match="finite weight"):
        ScheduledELBO(lambda t: float("nan"), 3)(model.train(), x)


def test_scheduled_elbo_resumes_the_schedule_in_fit():
    """Two epochs in one run and one epoch + one resumed epoch train with the same weights."""
    x = binary(20)
    weights = []

    def weight(t):
        weights.append(t)
        return min(1.0, t / 5)

    whole = ScheduledELBO(weight, steps_per_epoch=3)  # 20 images, batch 8: 3 steps
    history = fit(small_vae(), whole, x, epochs=2, batch_size=8, progress=False)
    assert weights == list(range(6)) and whole.step == 6
    assert history.train["beta"] == pytest.approx([(0 * 8 + .2 * 8 + .4 * 4) / 20,
                                                   (.6 * 8 + .8 * 8 + 1 * 4) / 20])
    weights.clear()
    resumed = ScheduledELBO(weight, steps_per_epoch=3)
    model = small_vae()
    first = fit(model, resumed, x, epochs=1, batch_size=8, progress=False)
    resumed.start(len(first))
    fit(model, resumed, x, epochs=2, batch_size=8, history=first, progress=False)
    assert weights == list(range(6))


def test_free_bits_loss_against_torch_distributions():
    model, x = small_vae(latent_dim=4), binary()
    g = torch.Generator().manual_seed(3)
    got = free_bits_loss(model, x, free_nats=0.3, generator=g)
    out = model(x, generator=torch.Generator().manual_seed(3))
    per_dim = kl_divergence(Normal(out.mu, (0.5 * out.logvar).exp()), Normal(0.0, 1.0))
    log_px = model.likelihood.log_prob(x, out.x_params)
    want = -log_px.mean() + torch.clamp(per_dim.mean(0), min=0.3).sum()
    torch.testing.assert_close(got.loss, want)
    torch.testing.assert_close(got.kl, per_dim.sum(1))
    # λ = 0 is the negative ELBO
    torch.testing.assert_close(free_bits_loss(model, x, 0.0, torch.Generator().manual_seed(3)).loss,
                               negative_elbo(model, x, generator=torch.Generator().manual_seed(3)).loss)


def test_free_bits_give_no_gradient_to_dimensions_below_lambda():
    """With every dimension below λ the KL adds a constant: the gradient is the likelihood's."""
    model, x = small_vae(latent_dim=4), binary()
    got = free_bits_loss(model, x, free_nats=2.0, generator=torch.Generator().manual_seed(5))
    assert got.loss.item() == pytest.approx(-got.log_likelihood.mean().item() + 4 * 2.0)
    got.loss.backward()
    clamped = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    out = model(x, generator=torch.Generator().manual_seed(5))
    (-model.likelihood.log_prob(x, out.x_params).mean()).backward()
    for a, p in zip(clamped, model.parameters()):
        torch.testing.assert_close(a, p.grad)


def test_free_bits_loss_rejects_bad_input():
    model, x = small_vae(), binary()
    for bad in (-0.1, float("inf"), True, "1"):
        with pytest.raises(ValueError, match="free_nats"):
            free_bits_loss(model, x, bad)


def test_committed_rate_is_the_smallest_kl_of_the_bounded_family():
    sigma_max = 0.55
    delta = committed_rate(sigma_max)
    want = kl_divergence(Normal(torch.tensor(0.0, dtype=torch.float64), sigma_max),
                         Normal(0.0, 1.0)).item()
    assert delta == pytest.approx(want, rel=1e-12)
    sigmas = torch.linspace(1e-3, sigma_max, 200, dtype=torch.float64)
    mus = torch.linspace(-2, 2, 41, dtype=torch.float64)
    kl = kl_divergence(Normal(mus[:, None], sigmas[None, :]), Normal(0.0, 1.0))
    assert kl.min().item() == pytest.approx(delta, rel=1e-9)
    assert committed_rate(0.999) < 1e-5 < delta
    for bad in (0, 1, 1.5, -0.2, True):
        with pytest.raises(ValueError, match="sigma_max"):
            committed_rate(bad)


def test_committed_rate_encoder_keeps_every_posterior_delta_from_the_prior():
    torch.manual_seed(0)
    inner = MLPEncoder((1, 4, 4), 3, hidden=(8,))
    with torch.no_grad():  # push the raw log-variances far both ways
        inner.to_logvar.weight.mul_(100)
    encoder = CommittedRateEncoder(inner, sigma_max=0.5, sigma_min=0.01)
    x = torch.rand(64, 1, 4, 4)
    mu, logvar = encoder(x)
    torch.testing.assert_close(mu, inner(x)[0])
    assert logvar.min() >= 2 * math.log(0.01) - 1e-5 and logvar.max() <= 2 * math.log(0.5) + 1e-5
    kl = 0.5 * (logvar.exp() + mu ** 2 - 1 - logvar)
    assert kl.min().item() >= committed_rate(0.5) - 1e-6
    model = VAE(encoder, MLPDecoder(3, (1, 4, 4), hidden=(8,)))
    assert negative_elbo(model, binary()).kl.min() >= 3 * committed_rate(0.5) - 1e-5
    with pytest.raises(ValueError, match="sigma_min"):
        CommittedRateEncoder(inner, sigma_max=0.5, sigma_min=0.6)
