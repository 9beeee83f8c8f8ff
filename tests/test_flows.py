import math

import pytest
import torch
from torch.autograd.functional import jacobian

from vaecore.elbo import iwae_bound, negative_elbo
from vaecore.flows import AffineCoupling, FlowPrior
from vaecore.kl import kl_normal_std_normal
from vaecore.likelihoods import log_prob_normal, log_prob_std_normal
from vaecore.mlp import MLPDecoder, MLPEncoder
from vaecore.vae import VAE

F64 = torch.float64


def random_flow(dim, seed=0, std=0.3, **kwargs):
    """A float64 flow with every parameter drawn at random (not the identity)."""
    torch.manual_seed(seed)
    flow = FlowPrior(dim, hidden=16, **kwargs).double()
    with torch.no_grad():
        for p in flow.parameters():
            p.normal_(0.0, std)
    return flow


@pytest.mark.parametrize("dim", [2, 3, 5])
def test_inverse_undoes_forward(dim):
    flow = random_flow(dim)
    z = torch.randn(64, dim, dtype=F64) * 2
    eps, log_det = flow(z)
    back, log_det_inv = flow.inverse(eps)
    torch.testing.assert_close(back, z, atol=1e-10, rtol=0)
    torch.testing.assert_close(log_det_inv, -log_det, atol=1e-10, rtol=0)
    assert not torch.allclose(eps, z, atol=1e-2)  # the flow really moved z


@pytest.mark.parametrize("dim", [2, 3, 5])
def test_log_det_matches_autograd_jacobian(dim):
    flow = random_flow(dim, seed=dim)
    z = torch.randn(6, dim, dtype=F64)
    log_det = flow(z).log_det
    for b in range(z.shape[0]):
        jac = jacobian(lambda v: flow(v[None]).out[0], z[b])
        sign, expected = torch.linalg.slogdet(jac)
        assert sign > 0
        torch.testing.assert_close(log_det[b], expected)
    assert log_det.abs().max() > 0.1


def test_coupling_layer_keeps_masked_dims_and_inverts():
    torch.manual_seed(0)
    layer = AffineCoupling(torch.tensor([1.0, 0.0, 1.0]), hidden=8).double()
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_(0.0, 0.5)
    z = torch.randn(10, 3, dtype=F64)
    y, log_det = layer(z)
    torch.testing.assert_close(y[:, [0, 2]], z[:, [0, 2]])
    assert (log_det.abs() < 1).all()  # one free dimension, |s| < 1
    torch.testing.assert_close(layer.inverse(y).out, z, atol=1e-10, rtol=0)


def test_density_integrates_to_one_on_a_grid():
    flow = random_flow(2, seed=1, std=0.2)
    grid = torch.linspace(-8, 8, 401, dtype=F64)
    z = torch.cartesian_prod(grid, grid)
    with torch.no_grad():
        density = flow.log_prob(z).exp().view(401, 401)
    mass = torch.trapezoid(torch.trapezoid(density, grid, dim=1), grid)
    assert abs(mass.item() - 1) < 1e-4
    assert (density - log_prob_std_normal(z).exp().view(401, 401)).abs().max() > 1e-2


@pytest.mark.parametrize("dim", [2, 3])
def test_importance_weights_under_std_normal_average_to_one(dim):
    flow = random_flow(dim, seed=2, std=0.2)
    z = torch.randn(200_000, dim, generator=torch.Generator().manual_seed(0), dtype=F64)
    with torch.no_grad():
        weights = (flow.log_prob(z) - log_prob_std_normal(z)).exp()
    assert abs(weights.mean().item() - 1) < 0.02
    assert weights.std() > 0.05


def test_samples_have_the_moments_of_the_density():
    flow = random_flow(2, seed=3)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        z = flow.sample(200_000, generator=gen)
        proposal = 2 * torch.randn(200_000, 2, generator=gen, dtype=F64)
        log_q = log_prob_normal(proposal, torch.zeros_like(proposal), math.log(4.0))
        w = (flow.log_prob(proposal) - log_q).exp()
    w = w / w.sum()
    mean_is = (w[:, None] * proposal).sum(0)
    second_is = (w[:, None, None] * proposal[:, :, None] * proposal[:, None, :]).sum(0)
    torch.testing.assert_close(z.mean(0), mean_is, atol=0.03, rtol=0)
    torch.testing.assert_close(z.T @ z / len(z), second_is, atol=0.06, rtol=0.03)
    assert (mean_is.abs() > 0.1).any()  # the density is not the standard normal


def test_sample_dtype_shape_and_generator():
    flow = random_flow(3)
    a = flow.sample(5, generator=torch.Generator().manual_seed(1))
    b = flow.sample(5, generator=torch.Generator().manual_seed(1))
    assert a.shape == (5, 3) and a.dtype == F64 and torch.equal(a, b)


def test_at_init_the_flow_is_the_standard_normal():
    flow = FlowPrior(4).double()
    z = torch.randn(50, 4, dtype=F64) * 3
    torch.testing.assert_close(flow.log_prob(z), log_prob_std_normal(z))
    eps = torch.randn(7, 4, generator=torch.Generator().manual_seed(5), dtype=F64)
    torch.testing.assert_close(flow.sample(7, generator=torch.Generator().manual_seed(5)), eps)


def test_kl_at_init_matches_closed_form_in_expectation():
    flow = FlowPrior(3).double()
    gen = torch.Generator().manual_seed(0)
    mu = torch.tensor([[0.5, -1.0, 0.0], [0.0, 0.3, 2.0]], dtype=F64)
    logvar = torch.tensor([[-1.0, 0.5, 0.0], [0.2, -0.5, -2.0]], dtype=F64)
    n = 50_000
    mu_n, logvar_n = mu.repeat(n, 1), logvar.repeat(n, 1)
    z = mu_n + torch.exp(0.5 * logvar_n) * torch.randn(mu_n.shape, generator=gen, dtype=F64)
    with torch.no_grad():
        estimate = flow.kl_mc(mu_n, logvar_n, z).view(n, 2).mean(0)
    torch.testing.assert_close(estimate, kl_normal_std_normal(mu, logvar), atol=0.03, rtol=0)


def test_kl_is_log_q_minus_log_p_per_sample():
    flow = random_flow(3)
    mu, logvar, z = (torch.randn(8, 3, dtype=F64) for _ in range(3))
    expected = log_prob_normal(z, mu, logvar) - flow.log_prob(z)
    torch.testing.assert_close(flow.kl_mc(mu, logvar, z), expected)


def test_inside_a_vae_gradients_reach_the_flow():
    torch.manual_seed(0)
    x = torch.randint(0, 2, (16, 6)).double()
    model = VAE(MLPEncoder((6,), 2, hidden=(8,)), MLPDecoder(2, (6,), hidden=(8,)),
                prior=FlowPrior(2, n_layers=2, hidden=8)).double()
    terms = negative_elbo(model, x)
    bound = iwae_bound(model, x, k=4)
    assert torch.isfinite(terms.loss) and torch.isfinite(bound).all()
    (terms.loss - bound.mean()).backward()
    last = model.prior.layers[0].net[-1].weight.grad
    assert last is not None and last.abs().sum() > 0


def test_bad_input_raises():
    flow = FlowPrior(2)
    with pytest.raises(ValueError, match="latent_dim"):
        FlowPrior(1)
    with pytest.raises(ValueError, match="latent_dim"):
        FlowPrior(2.0)
    with pytest.raises(ValueError, match="n_layers"):
        FlowPrior(2, n_layers=0)
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        flow.log_prob(torch.randn(4, 3))
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        flow.log_prob(torch.randn(4))
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        flow.inverse(torch.randn(4, 2, 1))
    with pytest.raises(ValueError, match="same shape"):
        flow.kl_mc(torch.randn(4, 2), torch.randn(3, 2), torch.randn(4, 2))
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        flow.kl_mc(torch.randn(4, 2), torch.randn(4, 2), torch.randn(4, 3))
    with pytest.raises(ValueError, match="n"):
        flow.sample(0)


def test_kl_is_the_deprecated_name_of_kl_mc():
    flow = FlowPrior(2)
    mu, logvar, z = torch.randn(4, 2), torch.randn(4, 2), torch.randn(4, 2)
    with pytest.warns(DeprecationWarning, match="kl_mc"):
        old = flow.kl(mu, logvar, z)
    torch.testing.assert_close(old, flow.kl_mc(mu, logvar, z))
