import pytest
import torch

from vaecore.conv import (ConvDecoder, ConvEncoder, GridDecoder, GridEncoder, GridGaussianDecoder,
                          GridGaussianEncoder, feature_size)
from vaecore.elbo import negative_elbo
from vaecore.vae import VAE

SHAPES = [(1, 28, 28), (1, 32, 32), (3, 32, 32)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("latent_dim", [1, 2, 20])
def test_shapes(shape, latent_dim):
    encoder = ConvEncoder(shape, latent_dim, channels=(8, 16), hidden=32)
    decoder = ConvDecoder(latent_dim, shape, channels=(16, 8), hidden=32)
    mu, logvar = encoder(torch.rand(3, *shape))
    assert mu.shape == logvar.shape == (3, latent_dim)
    assert decoder(mu).shape == (3, *shape)


def test_default_channels_and_learned_var():
    encoder = ConvEncoder((1, 28, 28), 2)
    decoder = ConvDecoder(2, (1, 28, 28), learned_var=True)
    mean, logvar = decoder(encoder(torch.rand(2, 1, 28, 28))[0])
    assert mean.shape == logvar.shape == (2, 1, 28, 28)
    assert encoder.body[0].out_channels == 32 and encoder.body[2].out_channels == 64
    assert decoder.body[-2].in_channels == 64 and decoder.to_x.in_channels == 32


def test_each_stride_two_layer_halves_the_image():
    assert feature_size((1, 28, 28), 2) == (7, 7)
    assert feature_size((3, 32, 64), 3) == (4, 8)
    encoder = ConvEncoder((1, 32, 32), 2, channels=(4, 8, 16), hidden=8)
    assert encoder(torch.rand(2, 1, 32, 32))[0].shape == (2, 2)


def test_sides_not_divisible_raise():
    with pytest.raises(ValueError, match="divisible by 4"):
        ConvEncoder((1, 30, 30), 2)
    with pytest.raises(ValueError, match="divisible by 8"):
        ConvDecoder(2, (1, 28, 28), channels=(16, 8, 4))
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        ConvEncoder((784,), 2)


def test_bad_input_raises():
    encoder, decoder = ConvEncoder((1, 28, 28), 5), ConvDecoder(5, (1, 28, 28))
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        encoder(torch.rand(2, 784))
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        encoder(torch.rand(2, 3, 28, 28))
    with pytest.raises(ValueError, match=r"\(B, 5\)"):
        decoder(torch.randn(2, 4))


@pytest.mark.parametrize("latent_dim", [-1, 0, 2.5, None])
def test_bad_latent_dim_is_refused_by_name(latent_dim):
    with pytest.raises(ValueError, match=r"latent_dim: expected a positive integer"):
        ConvEncoder((1, 28, 28), latent_dim)
    with pytest.raises(ValueError, match=r"latent_dim: expected a positive integer"):
        ConvDecoder(latent_dim, (1, 28, 28))


def test_other_dtype_is_named():
    encoder = ConvEncoder((1, 8, 8), 3, channels=(2, 4), hidden=8)
    decoder = ConvDecoder(3, (1, 8, 8), channels=(4, 2), hidden=8)
    with pytest.raises(ValueError, match=r"x: expected torch.float32.*got torch.float64"):
        encoder(torch.rand(2, 1, 8, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"z: expected torch.float32.*got torch.float64"):
        decoder(torch.randn(2, 3, dtype=torch.float64))


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_grid_nets_map_an_image_to_a_quarter_size_grid_and_back(shape):
    torch.manual_seed(0)
    encoder, decoder = GridEncoder(shape, 5, hidden=8), GridDecoder(5, 2 * shape[0], hidden=8)
    x = torch.rand(3, *shape)
    grid = encoder(x)
    assert grid.shape == (3, 5, shape[1] // 4, shape[2] // 4) == (3, 5, *encoder.grid)
    assert decoder(grid).shape == (3, 2 * shape[0], *shape[1:])
    # the residual blocks start near the identity path, and a change of one input pixel
    # reaches only nearby grid cells (a receptive field, not a dense layer)
    x2 = x.clone()
    x2[:, :, 0, 0] += 1
    changed = (encoder(x2) - grid).abs().amax(dim=(0, 1)) > 0
    assert changed[0, 0] and not changed[-1, -1]


def test_the_gaussian_grid_vae_is_a_vae_with_a_flat_latent():
    torch.manual_seed(0)
    encoder = GridGaussianEncoder((1, 28, 28), 3, hidden=8)
    decoder = GridGaussianDecoder(3, (1, 28, 28), hidden=8)
    assert encoder.latent_dim == decoder.latent_dim == 3 * 7 * 7
    vae = VAE(encoder, decoder)
    x = torch.rand(4, 1, 28, 28).bernoulli()
    terms = negative_elbo(vae, x)
    assert terms.kl.shape == (4,) and torch.isfinite(terms.loss)
    mu, logvar = encoder(x)
    grid_mu = encoder.net(x).chunk(2, dim=1)[0]
    assert torch.equal(mu, grid_mu.flatten(1))  # channel, row, column order
    # z reshaped the same way: decoding the flat means is decoding the grid
    assert torch.equal(decoder(mu), decoder.net(grid_mu))
    two = GridGaussianDecoder(3, (3, 32, 32), hidden=8, params_per_channel=2)
    mean, log_scale = two(torch.zeros(2, 3 * 8 * 8))
    assert mean.shape == log_scale.shape == (2, 3, 32, 32)


def test_grid_nets_refuse_bad_shapes_by_name():
    with pytest.raises(ValueError, match="divisible by 4"):
        GridEncoder((1, 30, 30), 4)
    with pytest.raises(ValueError, match=r"x: expected shape \(B, 1, 28, 28\)"):
        GridEncoder((1, 28, 28), 4, hidden=8)(torch.zeros(2, 1, 32, 32))
    with pytest.raises(ValueError, match=r"z: expected a grid \(B, 4, h, w\)"):
        GridDecoder(4, 1, hidden=8)(torch.zeros(2, 3, 7, 7))
    with pytest.raises(ValueError, match=r"z: expected shape \(B, 98\)"):
        GridGaussianDecoder(2, (1, 28, 28), hidden=8)(torch.zeros(2, 97))
    with pytest.raises(ValueError, match="params_per_channel"):
        GridGaussianDecoder(2, (1, 28, 28), params_per_channel=3)
