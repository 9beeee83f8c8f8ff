"""vaecore.latent_diffusion and the grid denoiser: the maps into and out of the space, the
frozen autoencoder, the loss, and the whole sampler against an exact denoiser."""
import pytest
import torch

from test_diffusion import oracle
from vaecore import diffusion
from vaecore.diffusion import GridDenoiser, Schedule
from vaecore.kl_autoencoder import KLAutoencoder
from vaecore.latent_diffusion import SpaceDiffusion, diffusion_loss


def test_the_grid_denoiser_keeps_the_shape_and_patches_lose_nothing():
    torch.manual_seed(0)
    plain, patched = GridDenoiser(4, hidden=16, blocks=2), GridDenoiser(1, hidden=16, blocks=2,
                                                                        patch=4)
    t = torch.tensor([0, 99])
    assert plain(torch.randn(2, 4, 7, 7), t).shape == (2, 4, 7, 7)
    x = torch.randn(2, 1, 28, 28)
    assert patched(x, t).shape == x.shape
    # the patched network sees a 7 × 7 grid of 16 values: its first convolution's input
    assert patched.inp.in_channels == 16 and plain.inp.in_channels == 4
    # the patched network is the plain one on the 16 channels of the stacked patches
    # (pixel (i, j) of patch (a, b) is channel 4 i + j at position (a, b)), unstacked after
    stacked = torch.nn.functional.pixel_unshuffle(x, 4)
    assert stacked[0, 4 * 1 + 2, 3, 5] == x[0, 0, 4 * 3 + 1, 4 * 5 + 2]
    on_grid = GridDenoiser(16, hidden=16, blocks=2)
    on_grid.load_state_dict(patched.state_dict())
    torch.testing.assert_close(patched(x, t),
                               torch.nn.functional.pixel_shuffle(on_grid(stacked, t), 4))
    # the step matters
    same = torch.randn(1, 4, 7, 7).expand(2, 4, 7, 7)
    out = plain(same, torch.tensor([3, 80]))
    assert not torch.allclose(out[0], out[1])


def test_the_grid_denoiser_checks_its_input():
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\) with H and W multiples of 4"):
        GridDenoiser(1, hidden=8, blocks=1, patch=4)(torch.zeros(1, 1, 30, 28), torch.tensor([0]))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        GridDenoiser(3, hidden=8, blocks=1)(torch.zeros(1, 1, 8, 8), torch.tensor([0]))
    with pytest.raises(ValueError, match="patch"):
        GridDenoiser(1, patch=0)


def _latent_model(scale=1.0):
    torch.manual_seed(0)
    ae = KLAutoencoder(1, 2, width=8)
    return SpaceDiffusion(GridDenoiser(2, hidden=8, blocks=1), Schedule.linear(10), (2, 7, 7),
                          ae, scale=scale)


def test_pixel_space_is_the_images_mapped_to_minus_one_one_and_back():
    model = SpaceDiffusion(GridDenoiser(1, hidden=8, blocks=1, patch=4), Schedule.linear(10),
                           (1, 28, 28), scale=2.0, shift=0.5)
    x = torch.rand(3, 1, 28, 28)
    y = model.to_space(x)
    torch.testing.assert_close(y, 2 * x - 1)
    torch.testing.assert_close(model.from_space(y), x)
    assert model.sample(2).shape == (2, 1, 28, 28)


def test_latent_space_is_a_scaled_draw_of_the_frozen_encoder_and_decodes_back():
    model = _latent_model(scale=0.5)
    x = torch.rand(4, 1, 28, 28)
    g = torch.Generator().manual_seed(1)
    y = model.to_space(x, torch.Generator().manual_seed(1))
    z = model.autoencoder.encode(x).rsample(generator=g)
    torch.testing.assert_close(y, 0.5 * z)
    torch.testing.assert_close(model.from_space(y), model.autoencoder.decode(z))
    assert model.sample(3, steps=4).shape == (3, 1, 28, 28)
    # the loss trains the denoiser only, and the autoencoder stays in evaluation mode
    assert not model.autoencoder.training
    model.train()
    assert not model.autoencoder.training and model.denoiser.training
    diffusion_loss(model, x).loss.backward()
    assert all(p.grad is None for p in model.autoencoder.parameters())
    assert model.denoiser.inp.weight.grad.abs().sum() > 0
    # the scale factor is saved with the weights
    other = _latent_model()
    other.load_state_dict(model.state_dict())
    assert other.scale.item() == 0.5


def test_the_loss_is_the_squared_error_of_the_noise_in_the_space():
    """In pixel space, images all equal to 0.7 are the point 0.4 of the space: the exact
    denoiser of that point predicts the noise exactly (loss 0), a zero prediction leaves
    |noise|², whose mean is the number of dimensions."""
    train = Schedule.linear(100)
    x = torch.full((4000, 1, 2, 2), 0.7, dtype=torch.float64)
    exact = SpaceDiffusion(oracle(train, 0.4, 0.0), train, (1, 2, 2), scale=2.0, shift=0.5)
    terms = diffusion_loss(exact, x, torch.Generator().manual_seed(3))
    assert terms.noise_error.shape == (4000,) and terms.noise_error.max().item() < 1e-9
    zero = SpaceDiffusion(lambda y, t: torch.zeros_like(y), train, (1, 2, 2), scale=2.0,
                          shift=0.5)
    terms = diffusion_loss(zero, x, torch.Generator().manual_seed(3))
    assert terms.loss.item() == pytest.approx(4.0, rel=0.05)
    assert terms.loss.item() == pytest.approx(terms.noise_error.mean().item())


def test_sampling_with_the_exact_denoiser_gives_the_data_back_through_the_maps():
    """Pixels x = 0.7: the space holds 2x - 1 = 0.4, and the sampler with beta-tilde and the
    exact noise predictor of that point gives it back exactly (Ho et al., Section 3.2), mapped
    back to 0.7. Pixels x ~ N(0.7, 0.1²): the mean comes back; beta-tilde under-disperses data
    between a point and N(0, I) (tests/test_diffusion.py), so the spread comes back below 0.1."""
    train = Schedule.linear(100)
    g = torch.Generator().manual_seed(4)
    point = SpaceDiffusion(oracle(train, 0.4, 0.0), train, (1, 2, 2), scale=2.0, shift=0.5)
    assert point.sample(100, generator=g).sub(0.7).abs().max().item() < 1e-5
    spread = SpaceDiffusion(oracle(train, 0.4, 0.04), train, (1, 2, 2), scale=2.0, shift=0.5)
    x = spread.sample(10_000, generator=g)
    assert x.mean().item() == pytest.approx(0.7, abs=0.005)
    assert 0.07 < x.std().item() < 0.1


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="scale must be a finite number > 0"):
        _latent_model(scale=0.0)
    with pytest.raises(ValueError, match="scale must be a finite number > 0"):
        _latent_model().set_scale(float("nan"))
    with pytest.raises(ValueError, match=r"space_shape: expected \(C, H, W\)"):
        SpaceDiffusion(GridDenoiser(2), Schedule.linear(10), (2, 7))
    with pytest.raises(ValueError, match="schedule: expected a vaecore.diffusion.Schedule"):
        SpaceDiffusion(GridDenoiser(2), None, (2, 7, 7))
    with pytest.raises(ValueError, match=r"map to \(2, 8, 8\), not the space \(2, 7, 7\)"):
        _latent_model().to_space(torch.rand(1, 1, 32, 32))
    with pytest.raises(ValueError, match="2 latent channels, the space 3"):
        SpaceDiffusion(GridDenoiser(3), Schedule.linear(10), (3, 7, 7), KLAutoencoder(1, 2, 8))
    with pytest.raises(ValueError, match="autoencoder: expected a KLAutoencoder"):
        SpaceDiffusion(GridDenoiser(2), Schedule.linear(10), (2, 7, 7), torch.nn.Identity())
    with pytest.raises(ValueError, match="shift must be a finite number"):
        SpaceDiffusion(GridDenoiser(1), Schedule.linear(10), (1, 8, 8), shift=float("inf"))
    with pytest.raises(ValueError, match="n must be a positive int"):
        _latent_model().sample(0)
