"""Chapter 13's exercise checks: the references pass, typical mistakes get the right hint."""
from __future__ import annotations

import math
from functools import partial

from vaecore import data
from vaecore.elbo import negative_elbo
from vaecore.kl_control import free_bits_loss
from vaecore.train import fit
from vaecourse.exercises.ch13_posterior_collapse import (check_cyclical_beta,
                                                         check_nat_per_coordinate,
                                                         check_sigma_for_rate,
                                                         small_collapse_vae)


def cyclical_beta(step, total_steps, cycles, ratio):
    period = total_steps / cycles
    return min(1.0, (step % math.ceil(period)) / period / ratio)


def test_cyclical_beta_passes_and_names_the_usual_slips():
    assert check_cyclical_beta(cyclical_beta).passed
    no_reset = check_cyclical_beta(lambda t, T, M, R: min(1.0, t / (R * T / M)))
    assert not no_reset.passed and no_reset.hint == "reset"
    no_ratio = check_cyclical_beta(lambda t, T, M, R: (t % math.ceil(T / M)) / (T / M))
    assert not no_ratio.passed and no_ratio.hint == "ratio"
    ahead = check_cyclical_beta(lambda t, T, M, R: cyclical_beta(t + 1, T, M, R))
    assert not ahead.passed and ahead.hint == "step"


def _sigma(delta, factor=2.0):
    """The root below 1 of s - log s = 1 + factor * delta, by bisection (no scipy)."""
    low, high = 1e-300, 1.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if mid - 1 - math.log(mid) > factor * delta else (low, mid)
    return math.sqrt(low)


def test_sigma_for_rate_passes_and_names_the_usual_slips():
    assert check_sigma_for_rate(_sigma).passed
    variance = check_sigma_for_rate(lambda d: _sigma(d) ** 2)
    assert not variance.passed and variance.hint == "variance"
    half = check_sigma_for_rate(lambda d: _sigma(d, factor=1.0))
    assert not half.passed and half.hint == "half"
    above = check_sigma_for_rate(lambda d: 1 / _sigma(d))
    assert not above.passed and above.hint == "branch"


def _free_bits(x, seed):
    model = small_collapse_vae(seed)
    fit(model, partial(free_bits_loss, free_nats=1.5), x, epochs=2, batch_size=64, lr=3e-3,
        transform=data.binarize_dynamic, progress=False, seed=seed)
    return model


def _plain(x, seed):
    model = small_collapse_vae(seed)
    fit(model, negative_elbo, x, epochs=2, batch_size=64, lr=3e-3,
        transform=data.binarize_dynamic, progress=False, seed=seed)
    return model


def test_nat_per_coordinate_passes_with_free_bits_and_not_with_the_plain_elbo():
    result = check_nat_per_coordinate(_free_bits)
    assert result.passed, result.message
    plain = check_nat_per_coordinate(_plain)
    assert not plain.passed and plain.hint == "rate"
    assert check_nat_per_coordinate(lambda x, seed: "model").hint == "type"
