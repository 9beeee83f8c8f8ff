import pytest
import torch

from vaecore.conv import ConvDecoder, ConvEncoder, feature_size

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
