"""Approximation and amortization gaps on the linear-Gaussian model of test_elbo.

There the true posterior is Gaussian and diagonal, so the best member of the
encoder's family is exact: the approximation gap is zero, and the encoder's
whole gap log p(x) - ELBO = KL(q || p(z|x)) is amortization gap, in closed form.
Statistical checks allow 4.5 standard errors, a chance failure of 7e-6 each
(seeds are fixed, so a run is reproducible).
"""
from typing import NamedTuple

import pytest
import torch
from torch.testing import assert_close

from test_elbo import closed_form_elbo, exact_posterior, linear_gaussian, seeded
from vaecore.gaps import Gaps, _learning_rate, elbo_mc, inference_gaps, optimise_posterior
from vaecore.kl import kl_normal_normal

Z_MAX = 4.5


class ClosedFormLoss(NamedTuple):
    loss: torch.Tensor


def closed_form_loss(model, x, generator=None):
    """A deterministic fit loss: minus the closed-form ELBO, batch mean."""
    return ClosedFormLoss(-closed_form_elbo(model, x).mean())


def bad_model():
    model, x, log_px = linear_gaussian(shift=0.3, scale=0.8, extra_logvar=0.4)
    q = model.encode(x)
    encoder_gap = kl_normal_normal(q.mu, q.logvar, *exact_posterior(model, x)).detach()
    return model, x, log_px, encoder_gap


def encoder_elbo_se(model, x, samples, r=4000):
    """The standard error of elbo_mc with ``samples`` draws under the encoder's q, from r single draws."""
    copies = x.repeat(r, 1)
    with torch.no_grad():
        draws = elbo_mc(model, copies, model.encode(copies), 1, seeded(11)).view(r, len(x))
    return draws.std(0) / samples ** 0.5


def test_elbo_mc_is_exact_at_the_posterior_and_unbiased_elsewhere():
    model, x, log_px = linear_gaussian()
    assert_close(elbo_mc(model, x, model.encode(x), 3, seeded(1)), log_px, rtol=0, atol=1e-10)
    model, x, _, _ = bad_model()
    with torch.no_grad():
        estimate = elbo_mc(model, x, model.encode(x), 20_000, seeded(2))
    z = (estimate - closed_form_elbo(model, x)) / encoder_elbo_se(model, x, 20_000)
    assert z.abs().max() < Z_MAX, z


def test_rows_are_optimised_independently_and_reach_the_posterior():
    model, x, _, _ = bad_model()
    whole = optimise_posterior(model, x, 150, lr=0.05, loss_fn=closed_form_loss)
    one = optimise_posterior(model, x[3:4], 150, lr=0.05, loss_fn=closed_form_loss)
    assert_close(one.mu, whole.mu[3:4], rtol=0, atol=1e-12)
    assert_close(one.logvar, whole.logvar[3:4], rtol=0, atol=1e-12)
    mu, logvar = exact_posterior(model, x)
    assert (model.encode(x).mu - mu).abs().max() > 0.3  # the start is far
    assert_close(whole.mu, mu, rtol=0, atol=2e-3)
    assert_close(whole.logvar, logvar, rtol=0, atol=2e-3)
    assert not any(p.grad is not None for p in model.parameters())


def test_svi_closes_the_approximation_gap_and_finds_the_amortization_gap():
    # Measured (seed 3): approximation gaps below 2e-3 nats; amortization gaps 0.53 to 1.99
    # nats, within 0.02 of the closed-form KL, against a standard error of about 0.02-0.04.
    model, x, log_px, encoder_gap = bad_model()
    gaps = inference_gaps(model, x, 100, lr=0.05, samples=20_000, generator=seeded(3))
    assert isinstance(gaps, Gaps) and all(t.shape == (5,) for t in gaps)
    assert_close(gaps.log_px, log_px, rtol=0, atol=2e-3)  # IS from q*, nearly exact
    assert gaps.approximation.abs().max() < 3e-3
    z = (gaps.amortization - encoder_gap) / encoder_elbo_se(model, x, 20_000)
    assert z.abs().max() < Z_MAX, z
    assert_close(gaps.approximation + gaps.amortization, gaps.log_px - gaps.elbo_encoder)


def test_approximation_gap_shrinks_with_steps_and_amortization_starts_at_zero():
    model, x, _, encoder_gap = bad_model()
    runs = [inference_gaps(model, x, steps, lr=0.1, samples=2000, k=200, generator=seeded(4))
            for steps in (0, 10, 30)]
    assert (runs[0].amortization == 0).all()  # the same q and the same draws
    assert (runs[0].approximation > 0.4).all()
    for before, after in zip(runs, runs[1:]):
        assert (after.approximation < before.approximation).all()
        assert (after.amortization > before.amortization).all()
    assert (runs[-1].amortization > 0.5 * encoder_gap).all()


def test_an_exact_encoder_leaves_no_gap():
    # Adam ends within about lr of the optimum even from it (it normalises tiny gradients), so
    # the gaps are zero up to that jitter: measured below 6e-4 nats with lr = 0.01.
    model, x, log_px = linear_gaussian()
    gaps = inference_gaps(model, x, 50, lr=0.01, samples=1000, k=1000, generator=seeded(6))
    assert_close(gaps.log_px, log_px, rtol=0, atol=2e-3)
    assert gaps.approximation.abs().max() < 2e-3 and gaps.amortization.abs().max() < 2e-3
    still = inference_gaps(model, x, 0, samples=3, k=3, generator=seeded(6))
    assert (still.approximation.abs() < 1e-10).all() and (still.amortization == 0).all()


def test_bad_arguments_raise():
    model, x, _ = linear_gaussian()
    for steps in (-1, 2.0, True):
        with pytest.raises(ValueError, match="steps: expected an integer >= 0"):
            optimise_posterior(model, x, steps)
    with pytest.raises(ValueError, match="lr: expected a positive, finite learning rate"):
        optimise_posterior(model, x, 3, lr=0.0)
    with pytest.raises(ValueError, match="samples: expected a positive integer"):
        elbo_mc(model, x, model.encode(x), 0)
    with pytest.raises(ValueError, match="did you pass"):
        inference_gaps(model, (x, torch.arange(5)), 3)


def test_a_falling_learning_rate_ends_closer_to_the_posterior():
    """With noisy (one-sample STL) gradients Adam hovers about lr from the optimum; decay shrinks it."""
    model, x, _, _ = bad_model()
    mu, _ = exact_posterior(model, x)
    constant = optimise_posterior(model, x, 400, lr=0.05, generator=seeded(11))
    falling = optimise_posterior(model, x, 400, lr=0.05, lr_final=5e-4, generator=seeded(11))
    error = {name: (q.mu - mu).abs().max().item() for name, q in
             (("constant", constant), ("falling", falling))}
    assert error["falling"] < error["constant"] / 3, error
    with pytest.raises(ValueError, match="lr_final"):
        optimise_posterior(model, x, 1, lr_final=0.0)


def test_the_learning_rate_falls_geometrically_from_lr_to_lr_final():
    rates = [_learning_rate(0.1, 1e-3, step, 5) for step in range(5)]
    assert rates[0] == 0.1 and rates[-1] == pytest.approx(1e-3)
    assert rates[2] == pytest.approx((0.1 * 1e-3) ** 0.5)  # the middle step: geometric mean
    assert all(a / b == pytest.approx(rates[0] / rates[1]) for a, b in zip(rates, rates[1:]))
    assert _learning_rate(0.1, None, 3, 5) == 0.1 and _learning_rate(0.1, 1e-3, 0, 1) == 0.1
    model, x, _, _ = bad_model()
    for bad in (True, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="lr_final"):
            optimise_posterior(model, x, 1, lr_final=bad)
