"""vaecore.kl_autoencoder: shapes, the loss against torch.distributions, PSNR, and the
KL weight doing what latent diffusion chooses it for."""
import functools
import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from vaecore.kl_autoencoder import KLAutoencoder, kl_autoencoder_loss, psnr
from vaecore.train import fit


def test_the_latents_are_a_grid_four_times_smaller():
    torch.manual_seed(0)
    model = KLAutoencoder(channels=3, latent_channels=4, width=8)
    x = torch.rand(2, 3, 32, 32)
    q = model.encode(x)
    assert q.mu.shape == q.logvar.shape == (2, 4, 8, 8)
    assert model.decode(q.mu).shape == x.shape == model.reconstruct(x).shape
    with pytest.raises(ValueError, match="divisible by 4"):
        model.encode(torch.rand(2, 3, 30, 32))
    with pytest.raises(ValueError, match=r"expected images \(B, 3, H, W\)"):
        model.encode(torch.rand(2, 1, 32, 32))


def test_the_loss_is_a_squared_error_plus_the_weighted_kl():
    """With kl_weight = 1 the loss is the negative ELBO of a Gaussian decoder of variance
    1/2, up to the constant D/2 log(pi): checked with torch.distributions."""
    torch.manual_seed(1)
    model = KLAutoencoder(channels=1, latent_channels=2, width=8).double()
    x = torch.rand(3, 1, 16, 16, dtype=torch.float64)
    terms = kl_autoencoder_loss(model, x, kl_weight=1.0, generator=torch.Generator().manual_seed(2))
    q = model.encode(x)
    z = q.rsample(generator=torch.Generator().manual_seed(2))
    log_lik = Normal(model.decode(z), math.sqrt(0.5)).log_prob(x).flatten(1).sum(1)
    kl = kl_divergence(Normal(q.mu, (0.5 * q.logvar).exp()), Normal(0.0, 1.0)).flatten(1).sum(1)
    torch.testing.assert_close(terms.kl, kl)
    d = x[0].numel()
    torch.testing.assert_close(terms.reconstruction, -log_lik - d / 2 * math.log(math.pi))
    torch.testing.assert_close(terms.loss, (terms.reconstruction + terms.kl).mean())
    small = kl_autoencoder_loss(model, x, kl_weight=1e-6,
                                generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(small.loss, (small.reconstruction + 1e-6 * small.kl).mean())
    for bad in (-1.0, float("nan"), True, "1"):
        with pytest.raises(ValueError, match="kl_weight must be a finite number >= 0"):
            kl_autoencoder_loss(model, x, kl_weight=bad)


def test_psnr():
    x = torch.zeros(2, 1, 4, 4)
    assert psnr(x, x + 0.1).tolist() == pytest.approx([20.0, 20.0])
    assert psnr(x, x + 25.5, peak=255.0).tolist() == pytest.approx([20.0, 20.0])
    assert math.isinf(psnr(x, x)[0].item())
    with pytest.raises(ValueError, match="reconstruction has shape"):
        psnr(x, x[:, :, :2])


def test_a_larger_kl_weight_buys_a_lower_rate_with_a_worse_reconstruction():
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(256, 1, 1, 1, generator=g) * torch.ones(1, 1, 8, 8)).clamp(0, 1)
    x = x + 0.05 * torch.randn(256, 1, 8, 8, generator=g)  # images with one grey level each
    results = {}
    for weight in (1e-6, 1.0):
        torch.manual_seed(0)
        model = KLAutoencoder(channels=1, latent_channels=1, width=8)
        history = fit(model, functools.partial(kl_autoencoder_loss, kl_weight=weight), x,
                      epochs=15, batch_size=64, lr=3e-3, progress=False)
        results[weight] = history.train["kl"][-1], history.train["reconstruction"][-1]
    (rate_small, error_small), (rate_large, error_large) = results[1e-6], results[1.0]
    assert rate_large < rate_small / 2 and error_large > error_small
