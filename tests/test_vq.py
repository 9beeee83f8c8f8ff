"""Tests for vaecore.vq: nearest codes against brute force, gradients by autograd, the EMA
codebook against cluster means, usage statistics at their extremes, dead-code restarts."""
import math

import pytest
import torch

from vaecore.vq import VectorQuantizer, codebook_usage, nearest_codes, quantize, vq_loss

F64 = torch.float64


def _data(shape=(4, 3, 5, 6), n_codes=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g, dtype=F64),
            torch.randn(n_codes, shape[1], generator=g, dtype=F64))


@pytest.mark.parametrize("shape", [(10, 3), (4, 3, 5, 6), (2, 3, 2, 2, 2)])
def test_nearest_codes_match_brute_force(shape):
    z_e, codebook = _data(shape)
    codes = nearest_codes(z_e, codebook)
    assert codes.shape == (shape[0], *shape[2:]) and codes.dtype == torch.long
    vectors = z_e.movedim(1, -1)  # (B, ..., D)
    distances = torch.stack([((vectors - e) ** 2).sum(-1) for e in codebook], -1)
    assert torch.equal(codes, distances.argmin(-1))
    out = quantize(z_e, codebook)
    # the values are the codes, up to the rounding of z_e + (e_c - z_e)
    torch.testing.assert_close(out.z_q, codebook[codes].movedim(-1, 1), rtol=0, atol=1e-15)


def test_straight_through_gradient_reaches_the_encoder_unchanged():
    z_e, codebook = _data()
    z_e.requires_grad_()
    out = quantize(z_e, codebook)
    weights = torch.randn_like(z_e)
    downstream = (weights * out.z_q).sum() + out.z_q.pow(3).sum()
    grad_z_e, grad_z_q = torch.autograd.grad(downstream, [z_e, out.z_q])
    assert torch.equal(grad_z_e, grad_z_q)
    torch.testing.assert_close(grad_z_q, weights + 3 * out.z_q.detach() ** 2)


def test_codebook_term_moves_only_the_codebook_and_commitment_only_the_encoder():
    z_e, codebook = _data()
    z_e.requires_grad_()
    codebook.requires_grad_()
    out = quantize(z_e, codebook)
    g_e, g_c = torch.autograd.grad(out.codebook_loss.sum(), [z_e, codebook], allow_unused=True,
                                   materialize_grads=True)
    assert (g_e == 0).all()
    # d/de_k sum_j |z_j - e_k|^2 over the vectors j assigned to k = 2 sum_j (e_k - z_j)
    vectors, codes = z_e.detach().movedim(1, -1).reshape(-1, 3), out.codes.flatten()
    expected = torch.stack([2 * (codebook.detach()[k] - vectors[codes == k]).sum(0)
                            for k in range(7)])
    torch.testing.assert_close(g_c, expected)
    assert (g_c.abs().sum(1) > 0).sum() >= 5  # most codes are in use and move
    g_e, g_c = torch.autograd.grad(out.commitment_loss.sum(), [z_e, codebook], allow_unused=True,
                                   materialize_grads=True)
    assert (g_c == 0).all()
    torch.testing.assert_close(g_e, 2 * (z_e - out.z_q).detach())
    # the weighted sum, with the loss terms per example
    assert out.codebook_loss.shape == out.commitment_loss.shape == (4,)
    torch.testing.assert_close(vq_loss(out, commitment=0.25),
                               out.codebook_loss + 0.25 * out.commitment_loss)
    torch.testing.assert_close(out.commitment_loss, ((z_e - out.z_q) ** 2).sum((1, 2, 3)))


def test_ema_codebook_converges_to_the_cluster_means():
    g = torch.Generator().manual_seed(1)
    centres = torch.tensor([[4.0, 0.0], [-4.0, 0.0], [0.0, 4.0], [0.0, -4.0]], dtype=F64)
    labels = torch.arange(400) % 4
    z_e = centres[labels] + 0.5 * torch.randn(400, 2, generator=g, dtype=F64)
    means = torch.stack([z_e[labels == k].mean(0) for k in range(4)])
    vq = VectorQuantizer(4, 2, ema_decay=0.9).double()
    vq.codebook.copy_(centres + torch.tensor([1.5, -1.0], dtype=F64))  # off the clusters
    vq.ema_sum.copy_(vq.codebook)
    for _ in range(200):
        vq(z_e)
    torch.testing.assert_close(vq.codebook, means, atol=1e-4, rtol=0)
    assert (vq.codebook - centres).abs().max() > 1e-3  # the sample means, not the centres
    vq.eval()
    before = vq.codebook.clone()
    vq(z_e + 10)
    assert torch.equal(vq.codebook, before)  # evaluation mode leaves the codebook alone


def test_ema_with_one_step_is_the_laplace_smoothed_mean():
    z_e = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 10.0]], dtype=F64)
    vq = VectorQuantizer(3, 2, ema_decay=0.5, eps=0.1).double()
    vq.codebook.copy_(torch.tensor([[2.0, 0.0], [0.0, 9.0], [-50.0, -50.0]], dtype=F64))
    vq.ema_sum.copy_(vq.codebook)
    vq.ema_update(z_e)
    # N = 0.5 * 1 + 0.5 * (2, 1, 0) = (1.5, 1, 0.5); n = 3; N~ = (N + 0.1) / 3.3 * 3
    # m = 0.5 * e + 0.5 * s = ((3, 0), (0, 9.5), (-25, -25))
    smoothed = (torch.tensor([1.5, 1.0, 0.5], dtype=F64) + 0.1) / 3.3 * 3
    expected = torch.tensor([[3.0, 0.0], [0.0, 9.5], [-25.0, -25.0]], dtype=F64) / smoothed[:, None]
    torch.testing.assert_close(vq.codebook, expected)


def test_perplexity_is_k_for_uniform_use_and_one_for_a_single_code():
    uniform = codebook_usage(torch.arange(12).repeat(5), 12)
    assert uniform.counts.tolist() == [5] * 12 and not uniform.dead.any()
    assert math.isclose(uniform.perplexity, 12.0, rel_tol=1e-12)
    single = codebook_usage(torch.full((3, 4), 2), 6)
    assert math.isclose(single.perplexity, 1.0) and single.dead.tolist() == [1, 1, 0, 1, 1, 1]
    two_to_one = codebook_usage(torch.tensor([0, 0, 1]), 3)  # p = (2/3, 1/3, 0)
    entropy = -(2 / 3) * math.log(2 / 3) - (1 / 3) * math.log(1 / 3)
    assert math.isclose(two_to_one.perplexity, math.exp(entropy), rel_tol=1e-12)


@pytest.mark.parametrize("ema_decay", [None, 0.99])
def test_restarting_dead_codes_revives_them(ema_decay):
    torch.manual_seed(0)
    vq = VectorQuantizer(8, 2, ema_decay=ema_decay).double()
    g = torch.Generator().manual_seed(2)
    z_e = torch.randn(256, 2, generator=g, dtype=F64) * 3
    with torch.no_grad():
        vq.codebook[:] = 100.0  # all codes far away and equal: only code 0 is ever chosen
        vq.codebook[0] = 0.0
    vq.eval()
    usage = codebook_usage(vq(z_e).codes, 8)
    assert usage.dead.sum() == 7 and math.isclose(usage.perplexity, 1.0)
    assert vq.restart_dead_codes(z_e, usage.dead, generator=g) == 7
    restarted = vq.codebook[1:]
    # each restarted code is one of the encoder outputs, no two the same
    assert all((z_e == code).all(1).any() for code in restarted)
    assert len(restarted.unique(dim=0)) == 7
    after = codebook_usage(vq(z_e).codes, 8)
    assert not after.dead.any() and after.perplexity > 4
    if ema_decay is not None:
        assert torch.equal(vq.ema_sum[1:], restarted) and (vq.ema_count[1:] == 1).all()


def test_a_learned_codebook_is_a_parameter_and_an_ema_codebook_a_buffer():
    learned, ema = VectorQuantizer(5, 3), VectorQuantizer(5, 3, ema_decay=0.99)
    assert [n for n, _ in learned.named_parameters()] == ["codebook"]
    assert list(ema.parameters()) == []
    assert set(ema.state_dict()) == {"codebook", "ema_count", "ema_sum"}
    assert (learned.codebook.abs() <= 1 / 5).all()


def test_bad_inputs_are_refused():
    z_e, codebook = _data()
    with pytest.raises(ValueError, match=r"code dimension D = 4"):
        nearest_codes(z_e, torch.zeros(7, 4, dtype=F64))
    with pytest.raises(ValueError, match="commitment: expected a real number >= 0"):
        vq_loss(quantize(z_e, codebook), commitment=-0.25)
    with pytest.raises(ValueError, match=r"codes: expected values in 0..2, got 0..3"):
        codebook_usage(torch.tensor([0, 3]), 3)
    with pytest.raises(ValueError, match="ema_decay: expected None or a number in"):
        VectorQuantizer(4, 3, ema_decay=1.0)
    with pytest.raises(ValueError, match=r"dead: expected a bool tensor \(4,\)"):
        VectorQuantizer(4, 3).restart_dead_codes(z_e.float(), torch.tensor([0, 1]))

