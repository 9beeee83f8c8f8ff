"""Tests for vaecore.discretized_logistic: probabilities of 256 levels against references.

References: the logistic CDF of ``torch.distributions`` (Uniform pushed
through the inverse sigmoid and an affine map) in float64, 60-digit
``mpmath`` where float64 differences of CDFs lose their digits (far tails,
tiny bins), and Monte-Carlo frequencies of discretized logistic draws.
"""
import math

import pytest
import torch
from torch.distributions import AffineTransform, SigmoidTransform, TransformedDistribution, Uniform

from vaecore.discretized_logistic import (GRID_TOL, N_LEVELS, MeanLogScaleDecoder,
                                          discretized_logistic, log_prob_discretized_logistic)
from vaecore.elbo import negative_elbo
from vaecore.likelihoods import Likelihood
from vaecore.resnet import ResNetDecoder, ResNetEncoder
from vaecore.vae import VAE

LEVELS = torch.arange(N_LEVELS, dtype=torch.float64) / 255
#: (mean, log_scale) pairs from ordinary to extreme: a mean on a bin edge (0.3 = 76.5/255) or
#: far outside [0, 1], scales far below one bin (e^-30) and far above the range (e^30).
PARAMS = [(mu, ls) for mu in (-100.0, -1.0, 0.0, 0.3, 0.5, 1 / 255, 1.0, 2.0, 100.0)
          for ls in (-30.0, -10.0, -5.0, -2.0, 0.0, 5.0, 30.0)]


def _all_levels(mean: float, log_scale: float, dtype=torch.float64):
    """log P of each of the 256 levels, ``(256,)``: one example of one sub-pixel per level."""
    x = LEVELS.to(dtype).view(N_LEVELS, 1)
    return log_prob_discretized_logistic(x, torch.full_like(x, mean), torch.full_like(x, log_scale))


def _logistic(mean, log_scale):
    """The continuous logistic of torch.distributions: mean + s * logit(U)."""
    return TransformedDistribution(Uniform(torch.zeros_like(mean), torch.ones_like(mean)),
                                   [SigmoidTransform().inv,
                                    AffineTransform(mean, torch.exp(log_scale))])


@pytest.mark.parametrize("dtype, atol", [(torch.float64, 1e-13), (torch.float32, 1e-6)])
def test_the_256_probabilities_sum_to_one(dtype, atol):
    for mean, log_scale in PARAMS:
        log_p = _all_levels(mean, log_scale, dtype)
        assert torch.isfinite(log_p).all() and (log_p <= 0).all(), (mean, log_scale)
        assert abs(torch.logsumexp(log_p, 0).item()) < atol, (mean, log_scale)


def test_each_bin_is_a_difference_of_torch_logistic_cdfs():
    g = torch.Generator().manual_seed(0)
    k = torch.randint(0, N_LEVELS, (4000,), generator=g).to(torch.float64)
    k[:400], k[400:800] = 0, 255  # plenty of edge bins
    mean = -0.5 + 2 * torch.rand(4000, generator=g, dtype=torch.float64)
    log_scale = -7 + 8 * torch.rand(4000, generator=g, dtype=torch.float64)
    cdf = _logistic(mean, log_scale).cdf
    upper = torch.where(k == 255, 1.0, cdf(((k + 0.5) / 255).clamp(max=1.0)))
    lower = torch.where(k == 0, 0.0, cdf(((k - 0.5) / 255).clamp(min=0.0)))
    expected = upper - lower
    log_p = log_prob_discretized_logistic((k / 255).view(-1, 1), mean.view(-1, 1),
                                          log_scale.view(-1, 1))
    torch.testing.assert_close(log_p.exp(), expected, rtol=1e-9, atol=1e-14)
    resolved = expected > 1e-6  # where the float64 difference still holds its digits
    torch.testing.assert_close(log_p[resolved], expected[resolved].log(), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("mean", [-3.0, 0.2, 0.6, 2.0])
@pytest.mark.parametrize("log_scale", [-12.0, -8.0, -3.0, 4.0, 12.0, 25.0])
def test_far_tails_and_tiny_bins_match_60_digit_arithmetic(mean, log_scale):
    mp = pytest.importorskip("mpmath").mp
    mp.dps = 60
    levels = [0, 1, 51, 153, 254, 255]
    x = torch.tensor(levels, dtype=torch.float64).view(-1, 1) / 255
    got = log_prob_discretized_logistic(x, torch.full_like(x, mean), torch.full_like(x, log_scale))
    s = mp.exp(mp.mpf(log_scale))

    def cdf(edge, sign):  # sigma(sign * (edge - mean) / s), exact rational edges; +-inf at the ends
        return 1 / (1 + mp.exp(-sign * (edge - mp.mpf(mean)) / s))
    for k, value in zip(levels, got.tolist()):
        upper = mp.inf if k == 255 else mp.mpf(2 * k + 1) / 510
        lower = -mp.inf if k == 0 else mp.mpf(2 * k - 1) / 510
        # F(upper) - F(lower), or, above the mean, S(lower) - S(upper) with S = 1 - F: a
        # difference of two tail masses, each held to 60 digits at any size
        sign = -1 if lower > mean else 1
        expected = float(mp.log(sign * (cdf(upper, sign) - cdf(lower, sign))))
        assert math.isclose(value, expected, rel_tol=1e-9, abs_tol=1e-9), (k, value, expected)


def _frequencies(levels: torch.Tensor) -> torch.Tensor:
    return torch.bincount(levels.long().flatten(), minlength=N_LEVELS).double() / levels.numel()


def _assert_frequencies(freq, log_p, n):
    """Every level's frequency within 5 binomial standard deviations (and a count of 2) of P."""
    p = log_p.exp()
    sd = torch.sqrt(p * (1 - p) / n)
    assert ((freq - p).abs() <= 5 * sd + 2 / n).all(), (freq - p).abs().max()


@pytest.mark.parametrize("mean, log_scale", [(0.4, math.log(0.05)), (-0.02, math.log(0.01)),
                                             (0.97, math.log(0.2)), (0.5, 3.0)])
def test_discretized_logistic_draws_have_these_frequencies(mean, log_scale):
    n = 200_000
    m, ls = torch.tensor(mean, dtype=torch.float64), torch.tensor(log_scale, dtype=torch.float64)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        y = _logistic(m, ls).sample((n,))
    levels = (y * 255).round().clamp(0, 255)
    _assert_frequencies(_frequencies(levels), _all_levels(mean, log_scale), n)
    # the library's own sampler draws from the same distribution
    params = (torch.full((n, 1), mean, dtype=torch.float64),
              torch.full((n, 1), log_scale, dtype=torch.float64))
    x = discretized_logistic.sample(params, torch.Generator().manual_seed(2))
    assert ((x * 255 - (x * 255).round()).abs() < 1e-9).all()
    _assert_frequencies(_frequencies((x * 255).round()), _all_levels(mean, log_scale), n)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gradients_are_finite_at_extreme_parameters(dtype):
    means = torch.tensor([mu for mu, _ in PARAMS], dtype=dtype)
    scales = torch.tensor([ls for _, ls in PARAMS], dtype=dtype)
    for k in (0, 1, 127, 254, 255):
        mean, log_scale = means.clone().requires_grad_(), scales.clone().requires_grad_()
        x = torch.full((len(PARAMS), 1), k / 255, dtype=dtype)
        log_p = log_prob_discretized_logistic(x, mean.view(-1, 1), log_scale.view(-1, 1))
        log_p.sum().backward()
        assert torch.isfinite(log_p).all(), k
        assert torch.isfinite(mean.grad).all() and torch.isfinite(log_scale.grad).all(), k


def test_gradients_match_finite_differences():
    g = torch.Generator().manual_seed(3)
    x = torch.randint(0, N_LEVELS, (3, 2, 4), generator=g).double() / 255
    x[0, 0] = 0.0
    x[1, 1] = 1.0
    mean = (0.5 + 0.5 * torch.randn(3, 2, 4, generator=g, dtype=torch.float64)).requires_grad_()
    log_scale = (-3 + torch.randn(3, 2, 4, generator=g, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda m, s: log_prob_discretized_logistic(x, m, s),
                                    (mean, log_scale))


def test_reduction_sums_event_dimensions_and_a_float_scale_broadcasts():
    g = torch.Generator().manual_seed(4)
    x = torch.randint(0, N_LEVELS, (5, 3, 2, 2), generator=g).float() / 255
    mean = torch.rand(5, 3, 2, 2, generator=g)
    log_scale = torch.randn(5, 3, 2, 2, generator=g) - 3
    out = log_prob_discretized_logistic(x, mean, log_scale)
    one_by_one = log_prob_discretized_logistic(x.reshape(-1, 1), mean.reshape(-1, 1),
                                               log_scale.reshape(-1, 1))
    assert out.shape == (5,)
    torch.testing.assert_close(out, one_by_one.view(5, -1).sum(1))
    torch.testing.assert_close(log_prob_discretized_logistic(x, mean, -2.0),
                               log_prob_discretized_logistic(x, mean, torch.full_like(x, -2.0)))
    per_channel = log_scale[0, :, :1, :1]  # (3, 1, 1): one scale per colour channel
    torch.testing.assert_close(log_prob_discretized_logistic(x, mean, per_channel),
                               log_prob_discretized_logistic(x, mean, per_channel.expand_as(x)))


def test_the_mean_is_the_expectation_over_the_levels():
    for mean, log_scale in [(0.3, -4.0), (-0.1, -2.0), (1.2, -1.0), (0.5, 2.0), (0.61, -9.0)]:
        expected = (LEVELS * _all_levels(mean, log_scale).exp()).sum()
        params = (torch.full((1, 1), mean, dtype=torch.float64),
                  torch.full((1, 1), log_scale, dtype=torch.float64))
        torch.testing.assert_close(discretized_logistic.mean(params).squeeze(), expected)


def test_float32_images_scaled_from_uint8_are_on_the_grid():
    x = (torch.arange(256, dtype=torch.uint8).view(2, 128).float() / 255)
    out = log_prob_discretized_logistic(x, torch.full_like(x, 0.5), torch.zeros_like(x))
    assert torch.isfinite(out).all()
    almost = x + 0.5 * GRID_TOL / 255
    assert torch.isfinite(log_prob_discretized_logistic(almost, x, torch.zeros_like(x))).all()


@pytest.mark.parametrize("x, match", [
    (torch.full((2, 3), 0.5), "levels off that grid; quantise"),  # 127.5/255
    (torch.full((2, 3), 1e-3), "levels off that grid"),
    (torch.full((2, 3), 3.0), r"scale 8-bit images to \[0, 1\] \(x / 255\)"),
    (torch.full((2, 3), -1 / 255), r"map the data to \[0, 1\]"),
    (torch.full((2, 3), 256 / 255), r"map the data to \[0, 1\]"),
    (torch.full((2, 3), math.nan), "NaN"),
])
def test_values_off_the_grid_or_out_of_range_are_refused(x, match):
    with pytest.raises(ValueError, match=match):
        log_prob_discretized_logistic(x, torch.zeros_like(x), torch.zeros_like(x))


def test_wrong_shapes_and_outputs_are_refused():
    x = torch.zeros(4, 3, 2, 2)
    with pytest.raises(ValueError, match="same shape"):
        log_prob_discretized_logistic(x, torch.zeros(4, 3, 2), torch.zeros_like(x))
    with pytest.raises(ValueError, match="log_scale: expected a float or a tensor broadcastable"):
        log_prob_discretized_logistic(x, torch.zeros_like(x), torch.zeros(4, 2, 2, 2))
    with pytest.raises(ValueError, match="at least 2"):
        log_prob_discretized_logistic(torch.zeros(4), torch.zeros(4), torch.zeros(4))
    with pytest.raises(ValueError, match=r"expected decoder output \(mean, log_scale\)"):
        discretized_logistic.log_prob(x, torch.zeros_like(x))
    with pytest.raises(ValueError, match="even number of output channels"):
        MeanLogScaleDecoder(ResNetDecoder(8, (3, 32, 32), channels=(8, 4)))


def test_a_vae_with_a_mean_and_log_scale_decoder_gives_a_discrete_elbo():
    torch.manual_seed(0)
    decoder = MeanLogScaleDecoder(ResNetDecoder(8, (6, 32, 32), channels=(8, 4)))
    assert decoder.out_shape == (3, 32, 32) and decoder.latent_dim == 8
    model = VAE(ResNetEncoder((3, 32, 32), 8, channels=(4, 8)), decoder,
                likelihood=discretized_logistic).eval()
    assert isinstance(discretized_logistic, Likelihood)
    x = torch.randint(0, N_LEVELS, (3, 3, 32, 32)).float() / 255
    mean, log_scale = model.decode(model.encode(x).mu)
    assert mean.shape == log_scale.shape == x.shape
    terms = negative_elbo(model, x, generator=torch.Generator().manual_seed(0))
    assert terms.log_likelihood.shape == (3,) and torch.isfinite(terms.loss)
    # a probability of at most 1 per sub-pixel: log P(x | z) <= 0
    assert (terms.log_likelihood <= 0).all()
    samples = model.sample(2, generator=torch.Generator().manual_seed(1), mean=False)
    assert samples.shape == (2, 3, 32, 32) and torch.equal(samples, (samples * 255).round() / 255)
    means = model.sample(2, generator=torch.Generator().manual_seed(1))
    assert ((means >= 0) & (means <= 1)).all()
