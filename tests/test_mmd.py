"""Tests for vaecore.mmd: kernels, MMD² estimators against the Gaussian closed form, InfoVAE."""
import math
from typing import NamedTuple

import pytest
import torch
from torch import nn

from vaecore.kl import kl_normal_std_normal
from vaecore.likelihoods import log_prob_bernoulli
from vaecore.mmd import InfoVAETerms, imq_kernel, info_vae_loss, mmd2, rbf_kernel

KERNELS = [rbf_kernel, imq_kernel]


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _randn(shape, g):
    return torch.randn(shape, generator=g, dtype=torch.float64)


def _population_mmd2(shift, dim, h2):
    """Exact MMD² between N(0, I) and N(shift, I) in ``dim`` dimensions, RBF kernel with h²."""
    c = (1 + 2 / h2) ** (-dim / 2)  # E k(x, x') for two independent draws of one of them
    return 2 * c * (1 - math.exp(-shift ** 2 / (2 * (2 + h2)))), c


# --- kernels ---------------------------------------------------------------

@pytest.mark.parametrize("kernel", KERNELS)
def test_kernel_symmetric_unit_diagonal_psd(kernel):
    x = 2 * _randn((30, 3), _gen(1))
    k = kernel(x, x)
    assert k.shape == (30, 30)
    torch.testing.assert_close(k, k.T)
    torch.testing.assert_close(k.diagonal(), torch.ones(30, dtype=torch.float64))
    assert torch.linalg.eigvalsh(k).min() >= -1e-10


@pytest.mark.parametrize("kernel", KERNELS)
def test_kernel_in_blocks_equals_one_broadcast_with_its_gradient(kernel, monkeypatch):
    """Blocks of rows (a block smaller than one row, several rows, all of x) give the
    Gram matrix of one (N, M, D) broadcast bit for bit, and the same gradients."""
    x, y = _randn((37, 5), _gen(2)).requires_grad_(), _randn((23, 5), _gen(3)).requires_grad_()
    d2 = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    h2 = 4.0  # the bandwidth 2 squares exactly
    want = torch.exp(-d2 / (2 * h2)) if kernel is rbf_kernel else h2 * 2 / (h2 * 2 + d2)
    want_grads = torch.autograd.grad(want.sum(), (x, y))
    for elements in (1, 23 * 5 * 4, 1 << 19):
        monkeypatch.setattr("vaecore.mmd._BLOCK_ELEMENTS", elements)
        got = kernel(x, y, 2.0) if kernel is rbf_kernel else kernel(x, y, 2 * h2)
        assert torch.equal(got, want), elements
        for g, w in zip(torch.autograd.grad(got.sum(), (x, y)), want_grads):
            torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12)


def test_kernel_values_and_defaults():
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    d2 = torch.tensor([[2.0], [1.0]], dtype=torch.float64)
    torch.testing.assert_close(rbf_kernel(x, y), torch.exp(-d2 / (2 * 2)))  # default h² = D = 2
    torch.testing.assert_close(rbf_kernel(x, y, bandwidth=0.5), torch.exp(-d2 / (2 * 0.25)))
    torch.testing.assert_close(imq_kernel(x, y), 4.0 / (4.0 + d2))  # default C = 2D = 4
    torch.testing.assert_close(imq_kernel(x, y, scale=1.0), 1.0 / (1.0 + d2))
    g = _gen(2)
    a, b = _randn((5, 7), g), _randn((4, 7), g)
    torch.testing.assert_close(rbf_kernel(a, b), rbf_kernel(a, b, bandwidth=math.sqrt(7)))
    torch.testing.assert_close(imq_kernel(a, b), imq_kernel(a, b, scale=14.0))


# --- MMD² estimators -------------------------------------------------------

def test_mmd2_by_hand():
    x = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    y = torch.tensor([[0.0], [2.0], [3.0]], dtype=torch.float64)
    k = lambda a, b: a @ b.T  # linear kernel: biased MMD² = ||mean x - mean y||²
    torch.testing.assert_close(mmd2(x, y, kernel=k, unbiased=False),
                               torch.tensor((0.5 - 5 / 3) ** 2, dtype=torch.float64))
    kxx, kyy = (0 * 1) * 2 / 2, (0 * 2 + 0 * 3 + 2 * 3) * 2 / 6
    unbiased = kxx + kyy - 2 * (x @ y.T).mean()
    torch.testing.assert_close(mmd2(x, y, kernel=k), unbiased)


def test_mmd2_large_sample_matches_population_value():
    g = _gen(3)
    x, y = _randn((1500, 2), g), _randn((1500, 2), g) + torch.tensor([1.5, 0.0], dtype=torch.float64)
    exact, _ = _population_mmd2(1.5, 2, h2=2.0)  # 0.245; the estimate's sd here is about 0.011
    assert abs(mmd2(x, y).item() - exact) < 0.05
    assert abs(mmd2(x, _randn((1500, 2), g)).item()) < 0.005  # same distribution


def test_unbiased_estimator_is_unbiased_and_biased_one_is_not():
    g, n, repeats, dim, shift = _gen(4), 8, 2000, 2, 1.0
    exact, c = _population_mmd2(shift, dim, h2=dim)
    offset = torch.tensor([shift, 0.0], dtype=torch.float64)
    u, b, u_same = [], [], []
    for _ in range(repeats):
        x, y, y0 = _randn((n, dim), g), _randn((n, dim), g) + offset, _randn((n, dim), g)
        u.append(mmd2(x, y).item())
        b.append(mmd2(x, y, unbiased=False).item())
        u_same.append(mmd2(x, y0).item())
    u, b, u_same = (torch.tensor(v, dtype=torch.float64) for v in (u, b, u_same))
    se = u.std() / math.sqrt(repeats)
    assert abs(u.mean().item() - exact) < 4 * se
    assert abs(u_same.mean().item()) < 4 * u_same.std() / math.sqrt(repeats)
    bias = (2 / n) * (1 - c)  # the diagonal terms k(x_i, x_i) = 1 that the V-statistic keeps
    assert bias > 10 * se
    assert abs(b.mean().item() - (exact + bias)) < 4 * b.std() / math.sqrt(repeats)


def test_mmd2_errors():
    x = torch.zeros(4, 3)
    with pytest.raises(ValueError, match="same dimension"):
        mmd2(x, torch.zeros(4, 2))
    with pytest.raises(ValueError, match="2 dimensions"):
        mmd2(torch.zeros(4), torch.zeros(4))
    with pytest.raises(ValueError, match="at least 2 samples"):
        mmd2(torch.zeros(1, 3), x)
    with pytest.raises(ValueError, match="positive number"):
        rbf_kernel(x, x, bandwidth=-1.0)
    with pytest.raises(ValueError, match="positive number"):
        imq_kernel(x, x, scale=0.0)
    with pytest.raises(ValueError, match="floating-point"):
        rbf_kernel(torch.zeros(4, 3, dtype=torch.long), x)


# --- InfoVAE with a stand-in model (only the contract methods) ------------

class _Posterior(NamedTuple):
    mu: torch.Tensor
    logvar: torch.Tensor


class _Prior:
    latent_dim = 2

    def sample(self, n, generator=None):
        return torch.randn(n, self.latent_dim, generator=generator, dtype=torch.float64)

    def kl(self, mu, logvar, z):
        return kl_normal_std_normal(mu, logvar)


class _TinyVAE(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.to_mu, self.to_logvar = nn.Linear(6, 2).double(), nn.Linear(6, 2).double()
        self.to_logits = nn.Linear(2, 6).double()
        self.prior = _Prior()

    def encode(self, x):
        return _Posterior(self.to_mu(x), self.to_logvar(x))

    def log_likelihood(self, x, z):
        return log_prob_bernoulli(x, self.to_logits(z))


def _batch():
    return torch.bernoulli(torch.full((16, 6), 0.4, dtype=torch.float64), generator=_gen(5))


def test_info_vae_alpha0_lambda1_is_plain_negative_elbo():
    model, x = _TinyVAE(), _batch()
    terms = info_vae_loss(model, x, alpha=0.0, lam=1.0, generator=_gen(6))
    assert isinstance(terms, InfoVAETerms)
    mu, logvar = model.encode(x)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=_gen(6), dtype=torch.float64)
    rec = log_prob_bernoulli(x, model.to_logits(z))
    kl = 0.5 * (torch.exp(logvar) + mu ** 2 - 1 - logvar).sum(1)
    torch.testing.assert_close(terms.log_likelihood, rec)
    torch.testing.assert_close(terms.kl, kl)
    torch.testing.assert_close(terms.loss, (kl - rec).mean())
    assert terms.log_likelihood.shape == terms.kl.shape == (16,) and terms.mmd.dim() == 0


@pytest.mark.parametrize("alpha,lam", [(1.0, 2.0), (0.5, 3.0), (1.0, 1000.0)])
def test_info_vae_weights(alpha, lam):
    model, x = _TinyVAE(), _batch()
    terms = info_vae_loss(model, x, alpha=alpha, lam=lam, kernel=imq_kernel, generator=_gen(7))
    g = _gen(7)
    mu, logvar = model.encode(x)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=g, dtype=torch.float64)
    z_prior = torch.randn(mu.shape, generator=g, dtype=torch.float64)
    mmd = mmd2(z, z_prior, kernel=imq_kernel)
    torch.testing.assert_close(terms.mmd, mmd)
    expected = (-terms.log_likelihood + (1 - alpha) * terms.kl).mean() + (alpha + lam - 1) * mmd
    torch.testing.assert_close(terms.loss, expected)


def test_info_vae_mmd_term_trains_the_encoder():
    model, x = _TinyVAE(), _batch()
    info_vae_loss(model, x, generator=_gen(8)).mmd.backward()
    assert model.to_mu.weight.grad.abs().sum() > 0
    assert model.to_logits.weight.grad is None


def test_info_vae_rejects_negative_weights():
    model, x = _TinyVAE(), _batch()
    with pytest.raises(ValueError, match="MMD weight"):
        info_vae_loss(model, x, alpha=0.0, lam=1e-3)
    with pytest.raises(ValueError, match="KL weight"):
        info_vae_loss(model, x, alpha=1.5, lam=1.0)
    with pytest.raises(ValueError, match="real number"):
        info_vae_loss(model, x, alpha=0.0, lam="1")
    terms = info_vae_loss(model, x, alpha=0.0, lam=1e-3, allow_negative=True, generator=_gen(9))
    assert torch.isfinite(terms.loss)
