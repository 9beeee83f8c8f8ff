"""Chapter 09's recipes: the models, the GAN losses and the two-optimizer loop."""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from vaecourse.zoo import RECIPES
from vaecourse.chapters import ch09_vae_vs_gan as vg

NAMES = {"mnist32-lenet-classifier-e3", "mnist32-mlp-bernoulli-z100-e20", "mnist32-mlp-gan-z100-e20",
         "mnist32-mlp-gan-smooth-z100-e20"}


def test_recipes_are_registered_and_builds_are_seeded():
    assert NAMES <= set(RECIPES)
    for name in NAMES:
        a, b = RECIPES[name].build(), RECIPES[name].build()
        for (k, v), (_, w) in zip(a.state_dict().items(), b.state_dict().items()):
            assert torch.equal(v, w), (name, k)


def test_shapes_and_matched_sizes():
    x = torch.rand(5, 1, 32, 32)
    assert vg.LeNet()(x).shape == (5, 10) and vg.LeNet().features(x).shape == (5, 84)
    gan, vae = vg.mlp_gan(), vg.mlp_vae32()
    assert gan.discriminator(x).shape == (5,)
    images = gan.generator(torch.randn(5, vg.LATENT_DIM))
    assert images.shape == (5, 1, 32, 32) and ((images > 0) & (images < 1)).all()
    n_g = sum(p.numel() for p in gan.generator.parameters())
    n_dec = sum(p.numel() for p in vae.decoder.parameters())
    assert n_g - n_dec == 2 * (128 + 256)  # the same layers plus BatchNorm's scale and shift


def test_gan_losses_from_logits_match_binary_cross_entropy():
    g = torch.Generator().manual_seed(0)
    r, f = torch.randn(50, generator=g, dtype=torch.float64) * 5, torch.randn(50, generator=g, dtype=torch.float64) * 5
    want = (F.binary_cross_entropy(torch.sigmoid(r), torch.ones_like(r), reduction="none")
            + F.binary_cross_entropy(torch.sigmoid(f), torch.zeros_like(f), reduction="none"))
    torch.testing.assert_close(vg.discriminator_loss(r, f), want)
    smooth = vg.discriminator_loss(r, f, real_label=0.9)
    torch.testing.assert_close(smooth, F.binary_cross_entropy_with_logits(r, torch.full_like(r, 0.9), reduction="none")
                               + F.softplus(f))
    torch.testing.assert_close(vg.generator_loss_minimax(f), torch.log(1 - torch.sigmoid(f)))
    torch.testing.assert_close(vg.generator_loss_nonsaturating(f), -torch.log(torch.sigmoid(f)))
    extreme = torch.tensor([-1000.0, 1000.0])
    assert torch.isfinite(vg.discriminator_loss(extreme, extreme)).all()
    assert torch.isfinite(vg.generator_loss_nonsaturating(extreme)).all()


def test_minimax_gradient_vanishes_where_nonsaturating_does_not():
    logit = torch.tensor([-10.0], requires_grad=True)  # D(G(z)) ≈ 4.5e-5
    (g_mm,) = torch.autograd.grad(vg.generator_loss_minimax(logit).sum(), logit)
    (g_ns,) = torch.autograd.grad(vg.generator_loss_nonsaturating(logit).sum(), logit)
    assert abs(g_mm.item()) < 1e-4 and abs(g_ns.item()) > 0.99


def test_gan_step_moves_each_network_with_its_own_optimizer_only():
    gan = vg.mlp_gan()
    opt_d = torch.optim.SGD(gan.discriminator.parameters(), 0.1)
    opt_g = torch.optim.SGD(gan.generator.parameters(), 0.0)  # G frozen: D's update is visible alone
    before = copy.deepcopy(gan.state_dict())
    terms = vg.gan_step(gan, torch.rand(8, 1, 32, 32), opt_d, opt_g)
    after = gan.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before
               if k.startswith("generator") and "running" not in k and "num_batches" not in k)
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("discriminator"))
    assert all(t.shape == (8,) for t in terms)
    opt_d = torch.optim.SGD(gan.discriminator.parameters(), 0.0)
    opt_g = torch.optim.SGD(gan.generator.parameters(), 0.1)
    before = copy.deepcopy(gan.state_dict())
    vg.gan_step(gan, torch.rand(8, 1, 32, 32), opt_d, opt_g)
    after = gan.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("discriminator"))
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("generator.net.0"))


def test_train_gan_records_history_calls_callbacks_and_resumes(tmp_path):
    x = torch.rand(60, 1, 32, 32)
    calls = []
    gan = vg.mlp_gan()
    history = vg.train_gan(gan, x, epochs=2, batch_size=20, callbacks=[lambda e, h: calls.append(e)],
                           checkpoint=tmp_path / "gan.pt")
    assert len(history) == 2 and calls == [1, 2] and (tmp_path / "gan.pt").is_file()
    assert set(history.train) == {"d_loss", "g_loss", "d_real", "d_fake"}
    assert all(0 < v < 1 for v in history.train["d_fake"])
    more = vg.train_gan(gan, x, epochs=1, batch_size=20, history=history)
    assert len(more) == 3 and len(history) == 2


def test_train_gan_is_reproducible():
    x = torch.rand(40, 1, 32, 32)
    a, b = vg.mlp_gan(), vg.mlp_gan()
    ha = vg.train_gan(a, x, epochs=1, batch_size=20)
    hb = vg.train_gan(b, x, epochs=1, batch_size=20)
    assert ha.train == hb.train


def test_grey_share_counts_values_strictly_inside_the_grey_band():
    x = torch.tensor([0.0, 0.2, 0.21, 0.5, 0.79, 0.8, 1.0, 0.1])
    assert vg.grey_share(x) == 3 / 8
