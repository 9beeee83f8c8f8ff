"""Tests for vaecore.pixelcnn: one-pass likelihoods against slow sequential references.

The references compute each conditional p(x_i | x_<i) from an input whose
pixels i, i+1, ... are replaced by noise, one pass per pixel; on grids small
enough to enumerate, the probabilities of all images (or code grids) sum to 1,
and the frequencies of the pixel-by-pixel sampler match them.
"""
import itertools

import pytest
import torch

from vaecore.elbo import log_likelihood_is, negative_elbo
from vaecore.mlp import MLPEncoder
from vaecore.pixelcnn import (AutoregressiveParams, PixelCNNCodePrior, PixelCNNDecoder,
                              autoregressive_bernoulli)
from vaecore.vae import VAE

F64 = torch.float64


def _randomise(module, seed=0, std=0.4, dtype=F64):
    torch.manual_seed(seed)
    module.to(dtype)
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0.0, std)
    return module


def _assert_frequencies(freq, p, n):
    """Every outcome's frequency within 5 binomial standard deviations (and a count of 2) of p."""
    assert ((freq - p).abs() <= 5 * (p * (1 - p) / n).sqrt() + 2 / n).all(), (freq - p).abs().max()


def _decoder(shape=(1, 3, 4), latent_dim=2, dtype=F64, std=0.4):
    return _randomise(PixelCNNDecoder(latent_dim, shape, channels=8, n_layers=2, first_kernel=3),
                      std=std, dtype=dtype)


def _all_binary_images(shape, dtype=F64):
    n = shape[0] * shape[1] * shape[2]
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=dtype).view(-1, *shape)


def test_decoder_log_prob_is_the_sum_of_sequential_conditionals():
    decoder = _decoder()
    g = torch.Generator().manual_seed(1)
    x = torch.bernoulli(torch.full((5, 1, 3, 4), 0.5, dtype=F64), generator=g)
    z = torch.randn(5, 2, generator=g, dtype=F64)
    expected = torch.zeros(5, dtype=F64)
    for i in range(12):
        r, c = divmod(i, 4)
        seen = x.clone().view(5, -1)
        # noise where the net may not look
        seen[:, i:] = torch.rand(5, 12 - i, generator=g, dtype=F64)
        logit = decoder.logits(seen.view_as(x), z)[:, 0, r, c]
        expected += torch.distributions.Bernoulli(logits=logit).log_prob(x[:, 0, r, c])
    got = autoregressive_bernoulli.log_prob(x, decoder(z))
    assert got.shape == (5,)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_decoder_probabilities_of_all_images_sum_to_one():
    decoder = _decoder(shape=(1, 2, 3))
    x = _all_binary_images((1, 2, 3))  # 64 images
    for z in torch.randn(3, 1, 2, dtype=F64):
        log_p = autoregressive_bernoulli.log_prob(x, decoder(z.expand(len(x), 2)))
        torch.testing.assert_close(torch.logsumexp(log_p, 0), torch.tensor(0.0, dtype=F64))


def test_decoder_sampler_matches_the_probabilities_and_its_seed():
    # float32: float64 convolutions are several times slower
    decoder = _decoder(shape=(1, 2, 2), dtype=torch.float32, std=0.3)
    n = 10_000
    z = torch.tensor([[0.3, -1.0]]).expand(n, 2)
    params = decoder(z)
    x = autoregressive_bernoulli.sample(params, torch.Generator().manual_seed(3))
    assert x.shape == (n, 1, 2, 2) and set(x.unique().tolist()) <= {0.0, 1.0}
    index = (x.view(n, 4) * torch.tensor([8.0, 4.0, 2.0, 1.0])).sum(1).long()
    freq = torch.bincount(index, minlength=16).float() / n
    p = autoregressive_bernoulli.log_prob(_all_binary_images((1, 2, 2), torch.float32),
                                          decoder(z[:16])).exp()
    assert p.min() > 0.01 and p.max() > 0.1  # every image drawn often enough; far from uniform
    _assert_frequencies(freq, p, n)
    small = decoder(z[:50])
    same = autoregressive_bernoulli.sample(small, torch.Generator().manual_seed(4))
    again = autoregressive_bernoulli.sample(small, torch.Generator().manual_seed(4))
    torch.testing.assert_close(again, same, rtol=0, atol=0)
    assert not torch.equal(autoregressive_bernoulli.sample(small, torch.Generator().manual_seed(5)),
                           same)
    mean = autoregressive_bernoulli.mean(small)
    assert mean.shape == (50, 1, 2, 2) and ((mean > 0) & (mean < 1)).all()


def _prior(n_codes=3, grid=(2, 2), dtype=F64):
    return _randomise(PixelCNNCodePrior(n_codes, grid, embed_dim=4, channels=8, n_layers=2,
                                        first_kernel=3), std=0.6, dtype=dtype)


def test_prior_log_prob_is_the_sum_of_sequential_conditionals():
    prior = _prior(n_codes=5, grid=(3, 3))
    g = torch.Generator().manual_seed(2)
    codes = torch.randint(0, 5, (6, 3, 3), generator=g)
    expected = torch.zeros(6, dtype=F64)
    for i in range(9):
        r, c = divmod(i, 3)
        seen = codes.clone().view(6, -1)
        seen[:, i:] = torch.randint(0, 5, (6, 9 - i), generator=g)
        logits = prior.logits(seen.view_as(codes))[:, :, r, c]
        expected += torch.distributions.Categorical(logits=logits).log_prob(codes[:, r, c])
    torch.testing.assert_close(prior.log_prob(codes), expected, rtol=1e-12, atol=1e-12)


def test_prior_probabilities_sum_to_one_and_the_sampler_matches_them():
    grids = torch.tensor(list(itertools.product(range(3), repeat=4))).view(81, 2, 2)
    torch.testing.assert_close(_prior().log_prob(grids).exp().sum(), torch.tensor(1.0, dtype=F64))
    prior = _prior(dtype=torch.float32)  # float64 convs are slow
    p = prior.log_prob(grids).exp()
    n = 10_000
    codes = prior.sample(n, torch.Generator().manual_seed(6))
    assert codes.shape == (n, 2, 2) and codes.dtype == torch.long
    assert codes.min() >= 0 and codes.max() <= 2
    freq = torch.bincount((codes.view(n, 4) * torch.tensor([27, 9, 3, 1])).sum(1),
                          minlength=81).float() / n
    _assert_frequencies(freq, p, n)
    torch.testing.assert_close(prior.sample(7, torch.Generator().manual_seed(8)),
                               prior.sample(7, torch.Generator().manual_seed(8)), rtol=0, atol=0)


def test_a_vae_with_the_pixelcnn_decoder_trains_and_evaluates():
    torch.manual_seed(0)
    model = VAE(MLPEncoder((1, 6, 6), 3, hidden=(16,)),
                PixelCNNDecoder(3, (1, 6, 6), channels=8, n_layers=2, first_kernel=3),
                likelihood=autoregressive_bernoulli)
    x = torch.bernoulli(torch.full((8, 1, 6, 6), 0.3))
    terms = negative_elbo(model, x)
    terms.loss.backward()
    assert terms.log_likelihood.shape == terms.kl.shape == (8,)
    assert model.decoder.net.first.weight.grad.abs().sum() > 0
    assert model.decoder.net.to_bias[0].weight.grad.abs().sum() > 0  # z reaches the decoder
    assert model.encoder.to_mu.weight.grad.abs().sum() > 0
    assert log_likelihood_is(model, x[:2], k=4).shape == (2,)
    samples = model.sample(3, generator=torch.Generator().manual_seed(0), mean=False)
    assert samples.shape == (3, 1, 6, 6) and set(samples.unique().tolist()) <= {0.0, 1.0}


def test_bad_inputs_are_refused():
    decoder = PixelCNNDecoder(2, (1, 4, 4), channels=4, n_layers=1, first_kernel=3)
    with pytest.raises(ValueError, match=r"expected shape \(B, 2\)"):
        decoder(torch.zeros(3, 5))
    params = decoder(torch.zeros(3, 2))
    assert isinstance(params, AutoregressiveParams)
    with pytest.raises(ValueError, match=r"x: expected shape \(B, 1, 4, 4\)"):
        autoregressive_bernoulli.log_prob(torch.zeros(3, 1, 5, 5), params)
    with pytest.raises(ValueError, match=r"out_shape: expected \(C, H, W\)"):
        PixelCNNDecoder(2, (4, 4))
    prior = PixelCNNCodePrior(4, (2, 2), embed_dim=2, channels=4, n_layers=1, first_kernel=3)
    with pytest.raises(ValueError, match=r"codes: expected a long tensor \(B, 2, 2\)"):
        prior.log_prob(torch.zeros(3, 2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"codes: expected values in 0..3, got 0..4"):
        prior.log_prob(torch.tensor([[[0, 4], [1, 2]]]))
    with pytest.raises(ValueError, match="positive integer"):
        prior.sample(0)


def test_the_default_mnist_decoder_has_the_documented_size():
    decoder = PixelCNNDecoder(32)
    assert sum(p.numel() for p in decoder.parameters()) == 43_905
