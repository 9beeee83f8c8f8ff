"""Tests for vaecore.kl: oracles from torch.distributions in float64, properties, errors."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Independent, Normal, kl_divergence

from vaecore.kl import (entropy_bernoulli, kl_bernoulli, kl_mc, kl_normal_normal,
                        kl_normal_std_normal)
from vaecore.likelihoods import log_prob_normal

SHAPES = [(5, 3), (4, 2, 3, 3)]


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _randn(shape, g):
    return torch.randn(shape, generator=g, dtype=torch.float64)


def _normal(mu, logvar):
    """Independent Normal over all non-batch dims: its KL is summed per example."""
    return Independent(Normal(mu, torch.exp(0.5 * logvar)), mu.dim() - 1)


@pytest.mark.parametrize("shape", SHAPES)
def test_kl_normal_std_normal_matches_torch(shape):
    g = _gen(1)
    mu, logvar = _randn(shape, g), _randn(shape, g)
    expected = kl_divergence(_normal(mu, logvar), _normal(torch.zeros_like(mu), torch.zeros_like(mu)))
    out = kl_normal_std_normal(mu, logvar)
    assert out.shape == (shape[0],)
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("shape", SHAPES)
def test_kl_normal_normal_matches_torch(shape):
    g = _gen(2)
    mu_q, logvar_q, mu_p, logvar_p = (_randn(shape, g) for _ in range(4))
    expected = kl_divergence(_normal(mu_q, logvar_q), _normal(mu_p, logvar_p))
    torch.testing.assert_close(kl_normal_normal(mu_q, logvar_q, mu_p, logvar_p), expected)


def test_kl_normal_normal_broadcasts_prior_and_reduces_to_std_normal():
    g = _gen(3)
    mu, logvar = _randn((6, 4), g), _randn((6, 4), g)
    mu_p, logvar_p = _randn((4,), g), _randn((4,), g)
    expected = kl_divergence(_normal(mu, logvar), _normal(mu_p.expand(6, 4), logvar_p.expand(6, 4)))
    torch.testing.assert_close(kl_normal_normal(mu, logvar, mu_p, logvar_p), expected)
    zeros = torch.zeros(4, dtype=torch.float64)
    torch.testing.assert_close(kl_normal_normal(mu, logvar, zeros, zeros),
                               kl_normal_std_normal(mu, logvar))
    torch.testing.assert_close(kl_normal_normal(mu, logvar, 0.0, 0.0),
                               kl_normal_std_normal(mu, logvar))


def test_kl_known_constants():
    one = torch.ones(1, 1, dtype=torch.float64)
    torch.testing.assert_close(kl_normal_std_normal(2 * one, 0 * one),
                               torch.tensor([2.0], dtype=torch.float64))
    # KL(N(0, e^2) || N(0, 1)) = 0.5 * (e^2 - 1 - 2)
    out = kl_normal_std_normal(0 * one, 2 * one)
    assert abs(out.item() - 0.5 * (math.e ** 2 - 3)) < 1e-12
    assert abs(out.item() - 2.194528) < 1e-6


@pytest.mark.parametrize("shape", SHAPES)
def test_kl_nonnegative_and_zero_at_prior(shape):
    g = _gen(4)
    mu, logvar = 3 * _randn(shape, g), 3 * _randn(shape, g)
    assert (kl_normal_std_normal(mu, logvar) >= 0).all()
    assert (kl_normal_normal(mu, logvar, mu.flip(0), logvar.flip(0)) >= 0).all()
    assert (kl_bernoulli(mu, logvar) >= 0).all()
    zeros = torch.zeros(shape, dtype=torch.float64)
    torch.testing.assert_close(kl_normal_std_normal(zeros, zeros), torch.zeros(shape[0], dtype=torch.float64))
    torch.testing.assert_close(kl_normal_normal(mu, logvar, mu, logvar), torch.zeros(shape[0], dtype=torch.float64))
    torch.testing.assert_close(kl_bernoulli(mu, mu), torch.zeros(shape[0], dtype=torch.float64))


@pytest.mark.parametrize("shape", SHAPES)
def test_kl_bernoulli_matches_torch(shape):
    g = _gen(5)
    q, p = 2 * _randn(shape, g), 2 * _randn(shape, g)
    n_event = len(shape) - 1
    expected = kl_divergence(Independent(Bernoulli(logits=q), n_event), Independent(Bernoulli(logits=p), n_event))
    torch.testing.assert_close(kl_bernoulli(q, p), expected)


def test_kl_bernoulli_broadcast_and_float_prior():
    g = _gen(6)
    q, p = _randn((5, 3), g), _randn((3,), g)
    expected = kl_divergence(Independent(Bernoulli(logits=q), 1),
                             Independent(Bernoulli(logits=p.expand(5, 3)), 1))
    torch.testing.assert_close(kl_bernoulli(q, p), expected)
    torch.testing.assert_close(kl_bernoulli(q, 0.0), kl_bernoulli(q, torch.zeros_like(q)))


@pytest.mark.parametrize("shape", SHAPES)
def test_entropy_bernoulli_matches_torch_and_kl_to_uniform(shape):
    g = _gen(7)
    q = 3 * _randn(shape, g)
    n_event = len(shape) - 1
    expected = Independent(Bernoulli(logits=q), n_event).entropy()
    torch.testing.assert_close(entropy_bernoulli(q), expected)
    d = math.prod(shape[1:])
    torch.testing.assert_close(kl_bernoulli(q, 0.0), math.log(2) * d - entropy_bernoulli(q))
    torch.testing.assert_close(entropy_bernoulli(torch.zeros(shape, dtype=torch.float64)),
                               torch.full((shape[0],), math.log(2) * d, dtype=torch.float64))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bernoulli_extreme_logits_stay_finite(dtype):
    q = torch.tensor([[50.0, -50.0, 50.0, 0.0]], dtype=dtype)
    p = torch.tensor([[-50.0, 50.0, 50.0, 50.0]], dtype=dtype)
    kl, h = kl_bernoulli(q, p), entropy_bernoulli(q)
    assert torch.isfinite(kl).all() and torch.isfinite(h).all()
    # KL(B(1) || B(sigma(-50))) = 50 twice, 0 once, KL(B(1/2) || B(~1)) ~ 25 - log 2
    expected = 50 + 50 + 0 + (0.5 * 50 - math.log(2))
    assert abs(kl.item() - expected) < 1e-3 * expected
    assert abs(h.item() - math.log(2)) < 1e-4


def test_kl_mc_converges_to_closed_form():
    g = _gen(8)
    mu_q, logvar_q = _randn((3, 2), g), 0.5 * _randn((3, 2), g)
    mu_p, logvar_p = _randn((3, 2), g), 0.5 * _randn((3, 2), g)
    closed = kl_normal_normal(mu_q, logvar_q, mu_p, logvar_p)
    errors = []
    for s in (100, 100_000):
        z = mu_q + torch.exp(0.5 * logvar_q) * _randn((s, 3, 2), g)
        log_q = log_prob_normal(z.reshape(-1, 2), mu_q.repeat(s, 1), logvar_q.repeat(s, 1)).reshape(s, 3)
        log_p = log_prob_normal(z.reshape(-1, 2), mu_p.repeat(s, 1), logvar_p.repeat(s, 1)).reshape(s, 3)
        est = kl_mc(log_q, log_p)
        assert est.shape == (3,)
        errors.append((est - closed).abs().max().item())
    assert errors[1] < 0.03
    assert errors[1] < errors[0]


def test_kl_mc_is_the_sample_mean():
    log_q = torch.tensor([[1.0, 2.0], [3.0, 6.0]])
    log_p = torch.tensor([[0.0, 1.0], [1.0, 1.0]])
    torch.testing.assert_close(kl_mc(log_q, log_p), torch.tensor([1.5, 3.0]))


def test_errors():
    x = torch.zeros(4, 3)
    with pytest.raises(ValueError, match="same shape"):
        kl_normal_std_normal(x, torch.zeros(4, 2))
    with pytest.raises(ValueError, match="torch.Tensor"):
        kl_normal_std_normal([[0.0]], x)
    with pytest.raises(ValueError, match="floating-point"):
        kl_normal_std_normal(torch.zeros(4, 3, dtype=torch.long), x)
    with pytest.raises(ValueError, match="at least 2"):
        kl_normal_std_normal(torch.zeros(4), torch.zeros(4))
    with pytest.raises(ValueError, match="broadcastable"):
        kl_normal_normal(x, x, torch.zeros(2), torch.zeros(3))
    with pytest.raises(ValueError, match="broadcastable"):
        kl_normal_normal(x, x, torch.zeros(8, 3), torch.zeros(3))
    with pytest.raises(ValueError, match="broadcastable"):
        kl_bernoulli(x, torch.zeros(4, 2))
    with pytest.raises(ValueError, match="floating-point"):
        kl_bernoulli(x, torch.zeros(4, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="floating-point"):
        entropy_bernoulli(torch.zeros(4, 3, dtype=torch.int32))
    with pytest.raises(ValueError, match="2 dimensions"):
        kl_mc(torch.zeros(4), torch.zeros(4))
    with pytest.raises(ValueError, match="same shape"):
        kl_mc(torch.zeros(4, 2), torch.zeros(4, 3))


# --- Hardening: extreme parameters -----------------------------------------------------------

INF = math.inf


def test_fast_paths_are_the_printed_formulas():
    """Ordinary inputs give exactly the formulas the chapters show, bit for bit."""
    g = _gen(20)
    mu_q, logvar_q, mu_p, logvar_p = (3 * _randn((6, 5), g) for _ in range(4))
    kl = 0.5 * (logvar_p - logvar_q + torch.exp(logvar_q - logvar_p)
                + (mu_q - mu_p) ** 2 * torch.exp(-logvar_p) - 1)
    assert torch.equal(kl_normal_normal(mu_q, logvar_q, mu_p, logvar_p), kl.sum(1))
    q, p = 10 * mu_q, 10 * mu_p
    kl = (torch.sigmoid(q) * (F.logsigmoid(q) - F.logsigmoid(p))
          + torch.sigmoid(-q) * (F.logsigmoid(-q) - F.logsigmoid(-p)))
    assert torch.equal(kl_bernoulli(q, p), kl.sum(1))
    h = -(torch.sigmoid(q) * F.logsigmoid(q) + torch.sigmoid(-q) * F.logsigmoid(-q))
    assert torch.equal(entropy_bernoulli(q), h.sum(1))


def _kl_normal_reference(mu_q, logvar_q, mu_p, logvar_p):
    """Per-coordinate KL summed, each term in float64 logs (d^2 / sigma_p^2 = exp(2 log|d| - logvar_p))."""
    total = 0.0
    for mq, lq, mp, lp in zip(mu_q, logvar_q, mu_p, logvar_p):
        d = abs(mq - mp)
        sq = 0.0 if d == 0 else math.exp(2 * math.log(d) - lp)
        total += 0.5 * (lp - lq + math.exp(lq - lp) + sq - 1)
    return total


# (dtype, mu_q, logvar_q, mu_p, logvar_p): exp(-logvar_p) overflows; 0 * inf gave NaN.
EXTREME_NORMAL = [(torch.float32, [0.0, 0.5], [-200.0, -200.0], [0.0, 0.5], [-200.0, -200.0]),
                  (torch.float32, [0.0, 1e-30], [-150.0, -190.0], [0.0, 0.0], [-100.0, -200.0]),
                  (torch.float32, [0.3, 1e-22], [-120.0, -89.0], [0.3, 0.0], [-90.0, -89.5]),
                  (torch.float64, [0.0, 1e-300], [-900.0, -800.0], [0.0, 0.0], [-800.0, -790.0])]


@pytest.mark.parametrize("dtype, mu_q, logvar_q, mu_p, logvar_p", EXTREME_NORMAL)
def test_kl_normal_normal_finite_at_tiny_logvar(dtype, mu_q, logvar_q, mu_p, logvar_p):
    args = [torch.tensor([v], dtype=dtype) for v in (mu_q, logvar_q, mu_p, logvar_p)]
    for a in args:
        a.requires_grad_(True)
    out = kl_normal_normal(*args)
    ref = _kl_normal_reference(*(a[0].tolist() for a in args))
    assert math.isfinite(ref) and torch.isfinite(out).all(), out
    rtol = 1e-4 if dtype == torch.float32 else 1e-12
    assert abs(out.item() - ref) <= rtol * abs(ref), (out.item(), ref)
    out.sum().backward()
    assert not any(a.grad.isnan().any() for a in args)  # d/dmu = 2 d / sigma_p^2 may overflow
    assert torch.isfinite(args[1].grad).all() and torch.isfinite(args[3].grad).all()


def test_kl_normal_normal_equal_degenerate_gaussians_is_zero():
    mu, logvar = torch.tensor([[0.0, 2.0, -1.0]]), torch.tensor([[-200.0, -300.0, -1000.0]])
    assert kl_normal_normal(mu, logvar, mu, logvar).item() == 0.0
    assert kl_normal_normal(mu, logvar, mu[0], logvar[0]).item() == 0.0  # a shared prior


_P = torch.tensor(0.7, dtype=torch.float64)
# (q logit, p logit, KL): rho_q in {0, 1} leaves -log rho_p or -log(1 - rho_p); a finite q
# against a sure p puts mass where p has none.
BERNOULLI_LIMITS = [(INF, INF, 0.0), (-INF, -INF, 0.0), (INF, 0.7, -F.logsigmoid(_P).item()),
                    (-INF, 0.7, -F.logsigmoid(-_P).item()), (INF, -INF, INF), (-INF, INF, INF),
                    (0.7, INF, INF), (0.7, -INF, INF), (40.0, INF, INF)]


@pytest.mark.parametrize("q_logit, p_logit, expected", BERNOULLI_LIMITS)
def test_kl_bernoulli_limits_at_infinite_logits(q_logit, p_logit, expected):
    q, p = (torch.tensor([[v]], dtype=torch.float64) for v in (q_logit, p_logit))
    assert kl_bernoulli(q, p).item() == pytest.approx(expected, rel=1e-12)
    assert kl_bernoulli(q.float(), p.float()).item() == pytest.approx(expected, rel=1e-6)


def test_kl_bernoulli_sure_q_against_a_float_prior():
    q = torch.tensor([[INF, -INF]], dtype=torch.float64)
    assert kl_bernoulli(q, 0.0).item() == pytest.approx(2 * math.log(2), rel=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_entropy_bernoulli_is_zero_at_infinite_logits(dtype):
    h = entropy_bernoulli(torch.tensor([[INF], [-INF]], dtype=dtype))
    assert torch.equal(h, torch.zeros(2, dtype=dtype))


def test_bernoulli_limits_leave_finite_terms_and_gradients_alone():
    g = _gen(21)
    q, p = 2 * _randn((3, 4), g), 2 * _randn((3, 4), g)
    q_inf = q.clone()
    q_inf[0, 0], q_inf[1, 1] = INF, -INF
    p_inf = p.clone()
    p_inf[0, 0], p_inf[1, 1] = INF, -INF  # same sure outcomes: those terms are 0
    q_inf.requires_grad_(True)
    kl, h = kl_bernoulli(q_inf, p_inf), entropy_bernoulli(q_inf)
    keep = torch.ones(3, 4, dtype=torch.bool)
    keep[0, 0] = keep[1, 1] = False
    q0, p0 = torch.where(keep, q, 0.0), torch.where(keep, p, 0.0)  # the KL of (0, 0) is 0
    torch.testing.assert_close(kl, kl_bernoulli(q0, p0))
    torch.testing.assert_close(h, entropy_bernoulli(q0) - math.log(2) * (~keep).sum(1))
    (kl.sum() + h.sum()).backward()
    assert torch.isfinite(q_inf.grad).all() and (q_inf.grad[~keep] == 0).all()
