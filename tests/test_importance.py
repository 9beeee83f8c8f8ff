"""log_mean_exp and the effective sample size, against direct float64 formulas."""
import math

import pytest
import torch

from vaecore.elbo import iwae_bound
from vaecore.importance import effective_sample_size, log_mean_exp


def log_weights(k=50, batch=4, seed=0, scale=3.0, offset=0.0):
    g = torch.Generator().manual_seed(seed)
    return offset + scale * torch.randn(k, batch, generator=g, dtype=torch.float64)


def test_log_mean_exp_matches_the_direct_formula():
    log_w = log_weights()
    torch.testing.assert_close(log_mean_exp(log_w), torch.log(torch.exp(log_w).mean(0)))


def test_log_mean_exp_is_finite_far_from_zero_and_shifts_with_the_weights():
    log_w = log_weights()
    for offset in (-1000.0, 800.0):
        value = log_mean_exp(log_w + offset)
        assert torch.isfinite(value).all()
        torch.testing.assert_close(value, log_mean_exp(log_w) + offset)
    assert not torch.isfinite(torch.log(torch.exp(log_w - 1000).mean(0))).all()  # why it matters


def test_log_mean_exp_lies_between_the_mean_and_the_max():
    log_w = log_weights()
    value = log_mean_exp(log_w)
    assert (value >= log_w.mean(0)).all() and (value <= log_w.max(0).values).all()


def test_log_mean_exp_is_what_iwae_bound_computes():
    # same samples (same seed) through both routes: iwae_bound's log-sum-exp is this one
    from test_elbo import linear_gaussian, seeded
    model, x, _ = linear_gaussian(shift=0.2, extra_logvar=0.3)
    from vaecore.elbo import _log_weights
    post = model.encode(x)
    log_w = _log_weights(model, x, post, post.rsample((7,), generator=seeded(3)))
    torch.testing.assert_close(log_mean_exp(log_w), iwae_bound(model, x, 7, generator=seeded(3)))


def test_ess_matches_the_direct_formula_and_is_scale_free():
    log_w = log_weights(scale=1.0)
    w = torch.exp(log_w)
    torch.testing.assert_close(effective_sample_size(log_w), w.sum(0) ** 2 / (w ** 2).sum(0))
    torch.testing.assert_close(effective_sample_size(log_w - 900), effective_sample_size(log_w))


def test_ess_limits():
    k = 40
    torch.testing.assert_close(effective_sample_size(torch.full((k, 3), -500.0)),
                               torch.full((3,), float(k)), rtol=1e-5, atol=0)
    one = torch.full((k, 2), -1e4, dtype=torch.float64)
    one[5] = 0.0
    torch.testing.assert_close(effective_sample_size(one), torch.ones(2, dtype=torch.float64))
    ess = effective_sample_size(log_weights(k=k, scale=2.0))
    assert ((ess >= 1) & (ess <= k)).all()


def test_ess_of_two_weights():
    # weights 1 and a: ESS = (1 + a)^2 / (1 + a^2)
    a = torch.tensor([0.5, 2.0, 10.0], dtype=torch.float64)
    log_w = torch.stack([torch.zeros(3, dtype=torch.float64), a.log()])
    torch.testing.assert_close(effective_sample_size(log_w), (1 + a) ** 2 / (1 + a ** 2))


@pytest.mark.parametrize("fn", [log_mean_exp, effective_sample_size])
def test_bad_input_raises(fn):
    with pytest.raises(ValueError, match="2 dimensions"):
        fn(torch.zeros(5))
    with pytest.raises(ValueError, match="at least one sample"):
        fn(torch.zeros(0, 3))
    with pytest.raises(ValueError, match="NaN"):
        fn(torch.tensor([[0.0], [math.nan]]))
    with pytest.raises(ValueError, match="floating-point"):
        fn(torch.zeros(2, 2, dtype=torch.long))
