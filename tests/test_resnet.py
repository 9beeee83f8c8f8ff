import pytest
import torch
from torch import nn

from vaecore.resnet import ResidualBlock, ResNetDecoder, ResNetEncoder


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def test_block_is_x_plus_conv_bn_relu_conv_bn():
    torch.manual_seed(0)
    block = ResidualBlock(4).eval()
    conv1, bn1, relu, conv2, bn2 = block.residual
    assert isinstance(relu, nn.ReLU) and isinstance(bn1, nn.BatchNorm2d) and isinstance(bn2, nn.BatchNorm2d)
    x = torch.randn(2, 4, 8, 8)
    torch.testing.assert_close(block(x), x + bn2(conv2(relu(bn1(conv1(x))))))


def test_block_with_zero_residual_is_the_identity():
    # No ReLU after the sum: negative inputs pass through unchanged.
    block = ResidualBlock(3)
    nn.init.zeros_(block.residual[-1].weight)
    x = torch.randn(2, 3, 4, 4)
    assert (x < 0).any()
    torch.testing.assert_close(block(x), x)


@pytest.mark.parametrize("shape", [(1, 32, 32), (3, 32, 32)])
@pytest.mark.parametrize("latent_dim", [1, 2, 20])
def test_shapes(shape, latent_dim):
    encoder = ResNetEncoder(shape, latent_dim, channels=(4, 8, 8))
    decoder = ResNetDecoder(latent_dim, shape, channels=(8, 8, 4))
    mu, logvar = encoder(torch.rand(2, *shape))
    assert mu.shape == logvar.shape == (2, latent_dim)
    assert decoder(mu).shape == (2, *shape)


def test_defaults_are_modest_and_upsample_by_nearest():
    encoder, decoder = ResNetEncoder((3, 32, 32), 64), ResNetDecoder(64)
    assert decoder.out_shape == (3, 32, 32)
    assert n_params(encoder) + n_params(decoder) < 1_500_000
    ups = [m for m in decoder.modules() if isinstance(m, nn.Upsample)]
    assert len(ups) == 3 and all(u.mode == "nearest" and u.scale_factor == 2 for u in ups)
    assert sum(isinstance(m, ResidualBlock) for m in encoder.modules()) == 3
    assert decoder(torch.randn(2, 64)).shape == (2, 3, 32, 32)


def test_28x28_is_rejected_with_default_channels():
    with pytest.raises(ValueError, match="divisible by 8"):
        ResNetEncoder((1, 28, 28), 2)
    assert ResNetEncoder((1, 28, 28), 2, channels=(4, 8))(torch.rand(1, 1, 28, 28))[0].shape == (1, 2)


def test_batchnorm_train_and_eval():
    torch.manual_seed(0)
    encoder = ResNetEncoder((3, 16, 16), 2, channels=(4, 8))
    x = torch.rand(4, 3, 16, 16)
    running = encoder.body[0][1].running_mean.clone()
    mu_train = encoder(x)[0]
    assert not torch.equal(running, encoder.body[0][1].running_mean)  # stats updated
    # In train mode an example's output depends on its batch companions.
    assert not torch.allclose(encoder(x[:2])[0], mu_train[:2])
    encoder.eval()
    running = encoder.body[0][1].running_mean.clone()
    mu_eval = encoder(x)[0]
    torch.testing.assert_close(encoder(x[:2])[0], mu_eval[:2])
    assert torch.equal(encoder(x)[0], mu_eval)
    assert torch.equal(running, encoder.body[0][1].running_mean)  # frozen in eval


def test_bad_input_raises():
    encoder, decoder = ResNetEncoder((3, 32, 32), 8), ResNetDecoder(8)
    with pytest.raises(ValueError, match=r"\(B, 3, 32, 32\)"):
        encoder(torch.rand(2, 1, 32, 32))
    with pytest.raises(ValueError, match=r"\(B, 8\)"):
        decoder(torch.randn(2, 3))


@pytest.mark.parametrize("latent_dim", [-1, 0, 2.5])
def test_bad_latent_dim_is_refused_by_name(latent_dim):
    with pytest.raises(ValueError, match=r"latent_dim: expected a positive integer"):
        ResNetEncoder((3, 32, 32), latent_dim)
    with pytest.raises(ValueError, match=r"latent_dim: expected a positive integer"):
        ResNetDecoder(latent_dim, (3, 32, 32))


def test_other_dtype_is_named():
    encoder = ResNetEncoder((1, 8, 8), 3, channels=(2, 4, 4))
    decoder = ResNetDecoder(3, (1, 8, 8), channels=(4, 4, 2))
    with pytest.raises(ValueError, match=r"x: expected torch.float32.*got torch.float64"):
        encoder(torch.rand(2, 1, 8, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"z: expected torch.float32.*got torch.float64"):
        decoder(torch.randn(2, 3, dtype=torch.float64))
