"""The per-example IAF posterior: its density, and what SVI with it reaches on a tractable model.

The tractable model is linear-Gaussian, p(z) = N(0, I), p(x|z) = N(Wz + b, s2 I), with W's
columns not orthogonal, so the posterior N(m, S), S = (I + W^T W / s2)^-1, is correlated.
The best diagonal Gaussian in reverse KL has precision diag(S^-1) and mean m, and its gap
KL(q || p(z|x)) = (sum_i log (S^-1)_ii - log det S^-1) / 2 is known in closed form.
"""
import math

import pytest
import torch
from torch.distributions import MultivariateNormal
from torch.testing import assert_close

from test_elbo import AffineEncoder, LinearDecoder
from vaecore.flow_posterior import (FlowPosterior, _made_masks, flow_elbo,
                                    log_likelihood_flow_is, optimise_flow_posterior)
from vaecore.likelihoods import normal
from vaecore.posterior import Posterior
from vaecore.vae import VAE

N, D, S2 = 5, 3, 0.3


def seeded(seed):
    return torch.Generator().manual_seed(seed)


def random_flow(batch=4, dim=D, n_layers=3, seed=0, scale=0.4):
    """A flow with every weight drawn at random (a new flow is the identity)."""
    g = seeded(seed)
    base = Posterior(torch.randn(batch, dim, generator=g, dtype=torch.float64),
                     0.3 * torch.randn(batch, dim, generator=g, dtype=torch.float64))
    flow = FlowPosterior(base, n_layers)
    with torch.no_grad():
        for p in flow.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
        flow.mu.copy_(base.mu)
        flow.logvar.copy_(base.logvar)
    return flow


def flow_map(flow, b, z0):
    """The flow's map z0 -> z_L for example b alone (z0 ``(D,)``; the other rows zero)."""
    z = torch.zeros(1, *flow.mu.shape, dtype=z0.dtype)
    z = z.index_put((torch.tensor([0]), torch.tensor([b])), z0[None])
    return flow.transform(z)[0][0, b]


def test_log_density_is_the_base_minus_the_log_determinant_of_the_jacobian():
    flow = random_flow()
    z0 = torch.randn(4, D, generator=seeded(1), dtype=torch.float64)
    _, log_det = flow.transform(z0[None])
    for b in range(4):
        jac = torch.autograd.functional.jacobian(lambda v: flow_map(flow, b, v), z0[b])
        assert_close(torch.linalg.slogdet(jac).logabsdet, log_det[0, b])
    # one step alone is triangular: output i depends on inputs before i only
    one = torch.autograd.functional.jacobian(lambda v: flow._step(0, v[None, None].expand(
        1, 4, D))[0][0, 0], z0[0])
    assert torch.equal(one.triu(1), torch.zeros_like(one))
    assert (one.tril(-1).abs() > 0).any()
    z, log_q = flow.rsample_and_log_prob(3, seeded(2))
    z0 = flow.base.rsample((3,), generator=seeded(2))
    assert_close(z, flow.transform(z0)[0])
    assert_close(log_q, flow.base.log_prob(z0) - flow.transform(z0)[1])


@pytest.mark.parametrize("dim, hidden", [(1, 3), (2, 1), (3, 7), (5, 13)])
def test_made_masks_connect_each_output_to_every_earlier_input_and_no_other(dim, hidden):
    for reverse in (False, True):
        to_hidden, to_out, direct = _made_masks(dim, hidden, reverse)
        order = torch.arange(dim).flip(0) if reverse else torch.arange(dim)
        rank = torch.empty(dim, dtype=torch.long)
        rank[order] = torch.arange(dim)  # position of each coordinate in the layer's order
        earlier = (rank[:, None] < rank[None, :]).float()  # [j, i]: input j before output i
        assert torch.equal(direct, earlier)
        assert torch.equal(((to_hidden @ to_out) > 0).float(), earlier * ((to_hidden @ to_out) > 0))
        assert torch.equal(((to_hidden @ to_out) > 0).float() + direct > 0, earlier > 0)


def test_the_order_is_reversed_from_one_step_to_the_next():
    flow = random_flow(n_layers=2)
    z0 = torch.randn(D, dtype=torch.float64)
    for layer, part in ((0, torch.triu), (1, torch.tril)):
        jac = torch.autograd.functional.jacobian(lambda v: flow._step(layer, v[None, None].expand(
            1, 4, D))[0][0, 0], z0)
        assert torch.equal(part(jac, 1 if layer == 0 else -1), torch.zeros_like(jac))


def test_density_integrates_to_one_by_importance_sampling():
    """E_q[r(z) / q(z)] = 1 for a normalised r with lighter tails than q: checks log q whole."""
    flow = random_flow(batch=2, scale=0.2)
    z, log_q = flow.rsample_and_log_prob(200_000, seeded(2))
    reference = MultivariateNormal(z.detach().mean((0, 1)),
                                   0.25 * torch.eye(D, dtype=torch.float64))
    ratio = torch.exp(reference.log_prob(z) - log_q)
    se = ratio.std(0) / math.sqrt(len(ratio))
    assert ((ratio.mean(0) - 1).abs() < 4.5 * se).all()


def test_a_new_flow_is_its_base_gaussian():
    base = Posterior(torch.randn(3, D, dtype=torch.float64), torch.randn(3, D, dtype=torch.float64))
    z, log_q = FlowPosterior(base).rsample_and_log_prob(5, seeded(3))
    assert_close(z, base.rsample((5,), generator=seeded(3)))
    assert_close(log_q, base.log_prob(z))


def correlated_linear_gaussian():
    g = seeded(4)
    w = torch.randn(N, D, generator=g, dtype=torch.float64)
    b = torch.randn(N, generator=g, dtype=torch.float64)
    precision = torch.eye(D, dtype=torch.float64) + w.T @ w / S2
    cov = torch.linalg.inv(precision)
    enc_weight = cov @ w.T / S2
    # an encoder whose mean is exact and whose variance is the best diagonal one
    encoder = AffineEncoder(enc_weight, -enc_weight @ b, -torch.log(torch.diagonal(precision)))
    model = VAE(encoder, LinearDecoder(w, b), likelihood=normal(math.log(S2)))
    marginal = MultivariateNormal(b, w @ w.T + S2 * torch.eye(N, dtype=torch.float64))
    x = b + torch.randn(4, N, generator=g, dtype=torch.float64) @ marginal.scale_tril.T
    diagonal_gap = 0.5 * (torch.log(torch.diagonal(precision)).sum() - torch.logdet(precision))
    return model, x, marginal.log_prob(x), diagonal_gap


def test_svi_with_the_flow_closes_the_gap_the_diagonal_family_cannot():
    model, x, log_px, diagonal_gap = correlated_linear_gaussian()
    assert diagonal_gap > 0.2
    flow = optimise_flow_posterior(model, x, 600, lr=3e-2, lr_final=1e-4, n_layers=1,
                                   samples=8, generator=seeded(6))
    with torch.no_grad():
        start = flow_elbo(model, x, FlowPosterior(model.encode(x)), 20_000, seeded(7))
        fitted = flow_elbo(model, x, flow, 20_000, seeded(7))
    # the flow starts at the encoder, here the best diagonal Gaussian: its gap is the closed form
    assert_close(log_px - start, diagonal_gap.expand(4), atol=0.02, rtol=0)
    assert (log_px - fitted < 0.1 * diagonal_gap).all()
    # importance sampling with the fitted flow as proposal: close to log p(x)
    estimate = log_likelihood_flow_is(model, x, flow, 2000, chunk=300, generator=seeded(8))
    assert_close(estimate, log_px, atol=0.01, rtol=0)
    assert not any(p.requires_grad for p in flow.parameters())
    assert all(p.grad is None for p in model.parameters())


def test_bad_arguments_raise():
    base = Posterior(torch.zeros(2, D), torch.zeros(2, D))
    with pytest.raises(ValueError, match="n_layers"):
        FlowPosterior(base, n_layers=0)
    with pytest.raises(ValueError, match="logvar"):
        FlowPosterior(Posterior(torch.zeros(2, D), torch.zeros(2, 1)))
    with pytest.raises(ValueError, match="base.mu"):
        FlowPosterior(Posterior(torch.zeros(D), torch.zeros(D)))
    model, x, _, _ = correlated_linear_gaussian()
    with pytest.raises(ValueError, match="one per row of the flow"):
        flow_elbo(model, x, FlowPosterior(Posterior(*(t[:2] for t in model.encode(x)))), 3)
    with pytest.raises(ValueError, match="steps"):
        optimise_flow_posterior(model, x, -1)
    with pytest.raises(ValueError, match="samples"):
        optimise_flow_posterior(model, x, 0, samples=0)
    with pytest.raises(ValueError, match="lr: expected a positive, finite learning rate"):
        optimise_flow_posterior(model, x, 1, lr=0)
    with pytest.raises(ValueError, match="lr_final: expected a positive, finite learning rate"):
        optimise_flow_posterior(model, x, 1, lr_final=-1.0)
