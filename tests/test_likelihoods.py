"""Tests for vaecore.likelihoods: oracles from torch.distributions in float64, sampling, errors."""
import math

import pytest
import torch
from torch.distributions import Bernoulli, Independent, Normal

from vaecore.likelihoods import (Likelihood, bernoulli, log_prob_bernoulli, log_prob_normal,
                                 log_prob_std_normal, normal)

SHAPES = [(5, 3), (4, 2, 3, 3)]


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _randn(shape, g):
    return torch.randn(shape, generator=g, dtype=torch.float64)


def _normal_oracle(x, mean, logvar):
    scale = torch.exp(0.5 * torch.as_tensor(logvar, dtype=x.dtype)).expand(x.shape)
    return Independent(Normal(mean, scale), x.dim() - 1).log_prob(x)


@pytest.mark.parametrize("shape", SHAPES)
def test_log_prob_bernoulli_matches_torch(shape):
    g = _gen(1)
    x_logits = 3 * _randn(shape, g)
    x = torch.bernoulli(torch.full(shape, 0.5, dtype=torch.float64), generator=g)
    expected = Independent(Bernoulli(logits=x_logits), len(shape) - 1).log_prob(x)
    out = log_prob_bernoulli(x, x_logits)
    assert out.shape == (shape[0],)
    torch.testing.assert_close(out, expected)


def test_log_prob_bernoulli_continuous_targets_and_extremes():
    g = _gen(2)
    x = torch.rand((4, 6), generator=g, dtype=torch.float64)  # grey levels in [0, 1]
    x_logits = 2 * _randn((4, 6), g)
    rho = torch.sigmoid(x_logits)
    expected = (x * torch.log(rho) + (1 - x) * torch.log1p(-rho)).sum(1)
    torch.testing.assert_close(log_prob_bernoulli(x, x_logits), expected)
    x_bin = torch.tensor([[1.0, 0.0]])
    out = log_prob_bernoulli(x_bin, torch.tensor([[-100.0, 100.0]]))
    assert torch.isfinite(out).all() and abs(out.item() + 200.0) < 1e-3


@pytest.mark.parametrize("shape", SHAPES)
def test_log_prob_normal_matches_torch(shape):
    g = _gen(3)
    x, mean, logvar = _randn(shape, g), _randn(shape, g), _randn(shape, g)
    out = log_prob_normal(x, mean, logvar)
    assert out.shape == (shape[0],)
    torch.testing.assert_close(out, _normal_oracle(x, mean, logvar))
    torch.testing.assert_close(log_prob_normal(x, mean, -1.5), _normal_oracle(x, mean, -1.5))
    shared = _randn(shape[1:], g)  # one variance per dimension, shared by the batch
    torch.testing.assert_close(log_prob_normal(x, mean, shared),
                               _normal_oracle(x, mean, shared.expand(shape)))


def test_unit_variance_is_half_squared_error_plus_constant():
    g = _gen(4)
    x, mean = _randn((3, 7), g), _randn((3, 7), g)
    expected = -0.5 * ((x - mean) ** 2).sum(1) - 7 / 2 * math.log(2 * math.pi)
    torch.testing.assert_close(log_prob_normal(x, mean, 0.0), expected)


@pytest.mark.parametrize("shape", [(6, 4), (2, 3, 2)])
def test_log_prob_std_normal_matches_torch(shape):
    z = _randn(shape, _gen(5))
    torch.testing.assert_close(log_prob_std_normal(z), _normal_oracle(z, torch.zeros_like(z), 0.0))


def test_bernoulli_likelihood_bundle():
    g = _gen(6)
    x_logits = _randn((4, 1, 3, 3), g)
    x = torch.bernoulli(torch.sigmoid(x_logits), generator=g)
    assert isinstance(bernoulli, Likelihood) and bernoulli.name == "bernoulli"
    torch.testing.assert_close(bernoulli.log_prob(x, x_logits), log_prob_bernoulli(x, x_logits))
    torch.testing.assert_close(bernoulli.mean(x_logits), torch.sigmoid(x_logits))
    draw = bernoulli.sample(x_logits, _gen(0))
    assert draw.shape == x_logits.shape and set(draw.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(draw, bernoulli.sample(x_logits, generator=_gen(0)))


def test_bernoulli_sample_mean_converges():
    x_logits = torch.tensor([[-2.0, 0.0, 1.0, 3.0]], dtype=torch.float64).expand(20_000, 4)
    draws = bernoulli.sample(x_logits, _gen(7))
    rho = torch.sigmoid(x_logits[0])
    se = (rho * (1 - rho) / 20_000).sqrt()
    assert ((draws.mean(0) - rho).abs() < 5 * se).all()


def test_fixed_variance_normal():
    g = _gen(8)
    x, mean = _randn((5, 3), g), _randn((5, 3), g)
    lik = normal(0.0)
    torch.testing.assert_close(lik.log_prob(x, mean), _normal_oracle(x, mean, 0.0))
    torch.testing.assert_close(normal(-2.0).log_prob(x, mean), _normal_oracle(x, mean, -2.0))
    assert lik.mean(mean) is mean
    assert lik.sample(mean, _gen(0)).shape == mean.shape
    many = mean[:1].expand(40_000, 3)
    draws = normal(math.log(4.0)).sample(many, _gen(9))
    torch.testing.assert_close(draws.mean(0), mean[0], atol=0.05, rtol=0)
    torch.testing.assert_close(draws.var(0), torch.full((3,), 4.0, dtype=torch.float64), atol=0.15, rtol=0)


def test_learned_variance_normal():
    g = _gen(10)
    x, mean, logvar = _randn((5, 2, 2), g), _randn((5, 2, 2), g), _randn((5, 2, 2), g)
    lik = normal()
    torch.testing.assert_close(lik.log_prob(x, (mean, logvar)), _normal_oracle(x, mean, logvar))
    assert lik.mean((mean, logvar)) is mean
    torch.testing.assert_close(lik.sample((mean, logvar), _gen(0)),
                               lik.sample((mean, logvar), generator=_gen(0)))
    many_mean = torch.tensor([[1.0, -2.0]], dtype=torch.float64).expand(40_000, 2)
    many_logvar = torch.tensor([[0.0, math.log(0.25)]], dtype=torch.float64).expand(40_000, 2)
    draws = lik.sample((many_mean, many_logvar), _gen(11))
    torch.testing.assert_close(draws.mean(0), many_mean[0], atol=0.03, rtol=0)
    torch.testing.assert_close(draws.var(0), torch.tensor([1.0, 0.25], dtype=torch.float64),
                               atol=0.04, rtol=0)


def test_errors():
    x = torch.zeros(4, 3)
    with pytest.raises(ValueError, match="same shape"):
        log_prob_bernoulli(x, torch.zeros(4, 2))
    with pytest.raises(ValueError, match="same shape"):
        log_prob_bernoulli(torch.zeros(4, 1, 2, 2), torch.zeros(4, 4))
    with pytest.raises(ValueError, match="floating-point"):
        log_prob_bernoulli(torch.zeros(4, 3, dtype=torch.uint8), x)
    with pytest.raises(ValueError, match="torch.Tensor"):
        log_prob_bernoulli(x, 0.0)
    with pytest.raises(ValueError, match="same shape"):
        log_prob_normal(x, torch.zeros(3, 3), 0.0)
    with pytest.raises(ValueError, match="broadcastable"):
        log_prob_normal(x, x, torch.zeros(2))
    with pytest.raises(ValueError, match="at least 2"):
        log_prob_std_normal(torch.zeros(4))
    with pytest.raises(ValueError, match="float or None"):
        normal("0.0")
    with pytest.raises(ValueError, match=r"\(mean, logvar\)"):
        normal().log_prob(x, x)


# --- Hardening: ranges, extreme parameters -------------------------------------------------

INF = math.inf


def test_log_prob_bernoulli_fast_path_is_the_plain_bce():
    """Ordinary inputs take the formula the chapters print, bit for bit."""
    g = _gen(20)
    for dtype in (torch.float32, torch.float64):
        x = torch.rand((8, 1, 5, 5), generator=g).to(dtype)
        x_logits = (5 * torch.randn((8, 1, 5, 5), generator=g)).to(dtype)
        bce = torch.nn.functional.binary_cross_entropy_with_logits(x_logits, x, reduction="none")
        assert torch.equal(log_prob_bernoulli(x, x_logits), -bce.flatten(1).sum(1))


@pytest.mark.parametrize("scale, shift, hint", [(255.0, 0.0, r"x / 255"),
                                                (2.0, -1.0, r"\(x \+ 1\) / 2"),
                                                (1000.0, -500.0, "rescale the data")])
def test_log_prob_bernoulli_refuses_targets_outside_unit_interval(scale, shift, hint):
    x = torch.rand((4, 1, 3, 3), generator=_gen(21)) * scale + shift
    with pytest.raises(ValueError, match=r"x: expected Bernoulli targets in \[0, 1\], got "
                                         r"values in \[-?[0-9.]+, [0-9.]+\]; .*" + hint):
        log_prob_bernoulli(x, torch.zeros_like(x))
    with pytest.raises(ValueError, match=r"expected Bernoulli targets in \[0, 1\]"):
        bernoulli.log_prob(x, torch.zeros_like(x))
    nan_x = torch.tensor([[0.0, math.nan]])
    with pytest.raises(ValueError, match="got NaN"):
        log_prob_bernoulli(nan_x, torch.zeros_like(nan_x))
    edges = torch.tensor([[0.0, 1.0, 0.25]])  # the ends of [0, 1] and grey levels stay allowed
    assert torch.isfinite(log_prob_bernoulli(edges, torch.zeros_like(edges))).all()
    empty = torch.zeros(0, 3)
    assert log_prob_bernoulli(empty, empty).shape == (0,)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("x, logit, expected", [(1.0, INF, 0.0), (0.0, INF, -INF), (1.0, -INF, -INF),
                                                (0.0, -INF, 0.0), (0.5, INF, -INF), (0.5, -INF, -INF)])
def test_log_prob_bernoulli_limit_at_an_infinite_logit(x, logit, expected, dtype):
    """An infinite logit makes one outcome sure: log p is 0 for it, -inf for anything else."""
    out = log_prob_bernoulli(torch.tensor([[x]], dtype=dtype), torch.tensor([[logit]], dtype=dtype))
    assert out.item() == expected


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_log_prob_bernoulli_infinite_logits_next_to_finite_ones(dtype):
    # A sure, correctly predicted pixel adds exactly 0 next to ordinary ones; row 2 is untouched.
    x = torch.tensor([[1.0, 0.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]], dtype=dtype)
    x_logits = torch.tensor([[INF, -INF, 2.0, 0.7], [1.0, -2.0, 0.5, 3.0]], dtype=dtype)
    x_logits.requires_grad_(True)
    out = log_prob_bernoulli(x, x_logits)
    expected = torch.cat([log_prob_bernoulli(x[:1, 2:], x_logits[:1, 2:]),
                          log_prob_bernoulli(x[1:], x_logits[1:])])
    torch.testing.assert_close(out, expected)
    out.sum().backward()
    assert torch.isfinite(x_logits.grad).all() and (x_logits.grad[0, :2] == 0).all()


def _log_prob_normal_reference(x, mean, logvar):
    """Per-example log-density with every term in float64 logs (exact to rounding)."""
    total = 0.0
    for xi, mi, lv in zip(x, mean, logvar):
        d = abs(xi - mi)
        sq = 0.0 if d == 0 else math.exp(2 * math.log(d) - lv)
        total += -0.5 * (math.log(2 * math.pi) + lv + sq)
    return total


# (dtype, logvar, x, mean): exp(-logvar) or (x - mean)^2 overflows alone; 0 * inf gave NaN.
EXTREME_NORMAL = [(torch.float32, -200.0, [0.5, 1e-30, 2e-40], [0.5, 0.0, 0.0]),
                  (torch.float32, -89.0, [-1.0, 1e-22, 3e-20], [-1.0, 0.0, 0.0]),
                  (torch.float32, 100.0, [0.0, 2e20, 1e30], [0.0, 0.0, 0.0]),
                  (torch.float64, -800.0, [0.5, 1e-300, 5e-320], [0.5, 0.0, 0.0])]


@pytest.mark.parametrize("dtype, logvar, x, mean", EXTREME_NORMAL)
def test_log_prob_normal_finite_at_extreme_logvar(dtype, logvar, x, mean):
    xt, mt = torch.tensor([x], dtype=dtype), torch.tensor([mean], dtype=dtype)
    lv = torch.full_like(xt, logvar).requires_grad_(True)
    out = log_prob_normal(xt, mt, lv)
    ref = _log_prob_normal_reference(xt[0].tolist(), mt[0].tolist(), [logvar] * 3)
    assert math.isfinite(ref) and torch.isfinite(out).all(), out
    rtol = 1e-4 if dtype == torch.float32 else 1e-12
    assert abs(out.item() - ref) <= rtol * abs(ref), (out.item(), ref)
    torch.testing.assert_close(log_prob_normal(xt, mt, logvar), out.detach())  # float logvar too
    out.sum().backward()
    assert torch.isfinite(lv.grad).all()
    assert lv.grad[0, 0].item() == -0.5  # x = mean: d/dlogvar of -(log 2pi + logvar)/2


def test_log_prob_normal_zero_variance_limit_at_the_mean():
    """x = mean, logvar = -200 in float32: the log-density is -(log 2pi - 200)/2 per dimension."""
    x = torch.zeros(2, 4)
    out = log_prob_normal(x, x, -200.0)
    torch.testing.assert_close(out, torch.full((2,), -2.0 * (math.log(2 * math.pi) - 200.0)))
