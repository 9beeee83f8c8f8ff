"""Tests for vaecore.vq_vae: the loss by hand and the straight-through gradient by autograd,
both likelihoods, when the EMA codebook moves, decoding codes, dead-code restarts."""
import pytest
import torch

from vaecore.data import binarize_dynamic
from vaecore.discretized_logistic import discretized_logistic
from vaecore.likelihoods import bernoulli, normal
from vaecore.vq import codebook_usage, nearest_codes
from vaecore.vq_vae import VQVAE, DeadCodeRestarts, vq_vae_loss

F64 = torch.float64


def _vqvae(likelihood=bernoulli, shape=(1, 28, 28), ema_decay=0.99):
    torch.manual_seed(0)
    return VQVAE(shape, n_codes=6, code_dim=3, hidden=8, ema_decay=ema_decay,
                 likelihood=likelihood).double()


def test_the_vq_vae_loss_is_the_papers_three_terms_by_hand():
    model = _vqvae(ema_decay=None)
    x = torch.rand(5, 1, 28, 28, dtype=F64).bernoulli()
    terms = vq_vae_loss(model, x, commitment=0.5)
    z_e = model.encode(x)
    codes = nearest_codes(z_e, model.quantizer.codebook)
    e_c = model.quantizer.codebook[codes].movedim(-1, 1)
    logits = model.decoder(e_c)
    log_lik = torch.distributions.Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
    sq = (z_e - e_c).pow(2).flatten(1).sum(1)
    torch.testing.assert_close(terms.log_likelihood, log_lik)
    torch.testing.assert_close(terms.codebook_loss, sq)
    torch.testing.assert_close(terms.commitment_loss, sq)
    torch.testing.assert_close(terms.loss, (-log_lik + 1.5 * sq).mean())
    # straight through: the encoder's gradient is the decoder's gradient at z_q plus the
    # commitment term's, by autograd on an explicit copy
    terms.loss.backward()
    grad_encoder = model.encoder.net[-1].bias.grad.clone()
    model.zero_grad()
    z_e = model.encode(x)
    z_q = e_c.detach().requires_grad_(True)
    log_lik = torch.distributions.Bernoulli(logits=model.decoder(z_q)).log_prob(x)
    (g_zq,) = torch.autograd.grad(-log_lik.flatten(1).sum(1).mean(), z_q)
    direct = (g_zq + 0.5 * 2 * (z_e - e_c.detach()) / len(x)).sum(dim=(0, 2, 3))
    torch.testing.assert_close(grad_encoder, direct)


def test_the_discretized_logistic_vq_vae_gives_a_mean_and_a_log_scale_per_sub_pixel():
    model = _vqvae(discretized_logistic, (3, 32, 32))
    x = torch.randint(0, 256, (2, 3, 32, 32), dtype=F64) / 255
    out = model(x)
    mean, log_scale = out.x_params
    assert mean.shape == log_scale.shape == x.shape and out.quantized.codes.shape == (2, 8, 8)
    assert vq_vae_loss(model, x).log_likelihood.shape == (2,)
    with pytest.raises(ValueError, match="likelihood: expected vaecore.likelihoods.bernoulli"):
        VQVAE((1, 28, 28), 4, 2, likelihood=normal(0.0))


def test_only_a_training_forward_moves_an_ema_codebook():
    model = _vqvae()
    x = torch.rand(4, 1, 28, 28, dtype=F64).bernoulli()
    before = model.quantizer.codebook.clone()
    model.eval()
    model(x), model.codes(x), model.reconstruct(x)
    assert torch.equal(model.quantizer.codebook, before)
    model.train()
    model.codes(x), model.reconstruct(x)  # encoding alone never updates
    assert torch.equal(model.quantizer.codebook, before)
    model(x)
    assert not torch.equal(model.quantizer.codebook, before)


def test_decoding_codes_is_decoding_their_codebook_vectors():
    model = _vqvae().eval()
    codes = torch.randint(0, 6, (3, 7, 7))
    vectors = model.quantizer.codebook[codes].movedim(-1, 1)
    assert torch.equal(model.decode_codes(codes), model.decode(vectors))
    x = torch.rand(3, 1, 28, 28, dtype=F64).bernoulli()
    assert torch.equal(model.reconstruct(x), torch.sigmoid(model.decode_codes(model.codes(x))))
    with pytest.raises(ValueError, match=r"codes: expected values in 0..5, got 6..6"):
        model.decode_codes(torch.full((1, 7, 7), 6))
    with pytest.raises(ValueError, match=r"codes: expected a long tensor \(B, 7, 7\)"):
        model.decode_codes(torch.zeros(1, 8, 8, dtype=torch.long))


def test_dead_code_restarts_revive_the_unused_codes_but_not_after_the_last_epoch():
    model = _vqvae()
    images = torch.rand(50, 1, 28, 28, dtype=F64)
    with torch.no_grad():
        model.quantizer.codebook[:] = 100.0  # every code far away: only code 0 is chosen
        model.quantizer.codebook[0] = 0.0
    restarts = DeadCodeRestarts(model, images, epochs=2, transform=binarize_dynamic, seed=3)
    restarts(2, None)  # the last epoch: nothing happens
    assert restarts.restarted == {} and (model.quantizer.codebook[1:] == 100).all()
    restarts(1, None)
    assert restarts.restarted == {1: 5}
    x = binarize_dynamic(images, torch.Generator().manual_seed(3 * 100_003 + 1))
    z_e = model.encode(x).movedim(1, -1).reshape(-1, 3)
    restarted = model.quantizer.codebook[1:]
    assert all((z_e == code).all(1).any() for code in restarted)  # each is an encoder output
    assert (codebook_usage(model.codes(x), 6).counts[1:] > 0).all()  # and is used now


def test_dead_code_restarts_refuse_bad_arguments_by_name():
    model = _vqvae()
    with pytest.raises(ValueError, match=r"images: expected shape \(B, 1, 28, 28\)"):
        DeadCodeRestarts(model, torch.zeros(3, 1, 32, 32, dtype=F64), epochs=2)
    with pytest.raises(ValueError, match="at least one image"):
        DeadCodeRestarts(model, torch.zeros(0, 1, 28, 28, dtype=F64), epochs=2)
    with pytest.raises(ValueError, match="seed: expected an integer >= 0"):
        DeadCodeRestarts(model, torch.zeros(3, 1, 28, 28, dtype=F64), epochs=2, seed=-1)
    with pytest.raises(ValueError, match="epochs"):
        DeadCodeRestarts(model, torch.zeros(3, 1, 28, 28, dtype=F64), epochs=0)


def test_an_ema_codebook_refuses_to_train_in_several_processes(monkeypatch):
    from vaecore import distributed
    model = _vqvae()
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    with pytest.raises(RuntimeError, match="an EMA codebook"):
        model(torch.rand(2, 1, 28, 28, dtype=F64).bernoulli())
    model.eval()
    model(torch.rand(2, 1, 28, 28, dtype=F64).bernoulli())  # evaluation is fine
