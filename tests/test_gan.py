"""vaecore.gan: the GAN losses against their definitions, the networks' shapes."""
import pytest
import torch

from vaecore.gan import (GAN, Discriminator, Generator, discriminator_loss,
                         generator_loss_minimax, generator_loss_nonsaturating)


def logits():
    g = torch.Generator().manual_seed(0)
    return (torch.randn(6, generator=g, dtype=torch.float64) * 3,
            torch.randn(6, generator=g, dtype=torch.float64) * 3)


def test_discriminator_loss_is_minus_log_d_real_minus_log_one_minus_d_fake():
    real, fake = logits()
    expected = -torch.log(torch.sigmoid(real)) - torch.log(1 - torch.sigmoid(fake))
    torch.testing.assert_close(discriminator_loss(real, fake), expected)
    smoothed = -(0.9 * torch.log(torch.sigmoid(real)) + 0.1 * torch.log(1 - torch.sigmoid(real))) \
        - torch.log(1 - torch.sigmoid(fake))
    torch.testing.assert_close(discriminator_loss(real, fake, real_label=0.9), smoothed)


def test_generator_losses():
    _, fake = logits()
    d = torch.sigmoid(fake)
    torch.testing.assert_close(generator_loss_minimax(fake), torch.log(1 - d))
    torch.testing.assert_close(generator_loss_nonsaturating(fake), -torch.log(d))
    # both push D(G(z)) up: their gradients in the logit have the same sign
    assert (torch.func.grad(lambda l: generator_loss_minimax(l).sum())(fake) < 0).all()
    assert (torch.func.grad(lambda l: generator_loss_nonsaturating(l).sum())(fake) < 0).all()


def test_networks_shapes_and_sampling():
    torch.manual_seed(0)
    gan = GAN(Generator(10, (16, 32), (1, 8, 8)), Discriminator((32, 16), (1, 8, 8))).eval()
    x = gan.sample(5, generator=torch.Generator().manual_seed(1))
    assert x.shape == (5, 1, 8, 8) and ((x > 0) & (x < 1)).all()
    assert gan.discriminator(x).shape == (5,)
    torch.testing.assert_close(x, gan.sample(5, generator=torch.Generator().manual_seed(1)))
    with pytest.raises(ValueError, match="n"):
        gan.sample(0)
