"""The aggregate-posterior estimator of chapter 6 (vaecourse.chapters.ch06_latent_space)."""
import math

import torch

from vaecore.kl import kl_normal_std_normal
from vaecourse.chapters.ch06_latent_space import kl_decomposition, log_mixture


def _std_normal(z):
    return torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1)


def test_log_mixture_equals_torch_mixture():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(30, 3, generator=g, dtype=torch.float64), \
        0.5 * torch.randn(30, 3, generator=g, dtype=torch.float64)
    z = torch.randn(7, 3, generator=g, dtype=torch.float64)
    direct = torch.distributions.Normal(mu, (0.5 * logvar).exp()).log_prob(z[:, None]).sum(2)
    torch.testing.assert_close(log_mixture(z, mu, logvar, chunk=3),
                               torch.logsumexp(direct, 1) - math.log(30))


def test_terms_add_up_and_vanish_when_q_is_the_prior():
    g = torch.Generator().manual_seed(1)
    mu, logvar = torch.randn(400, 2, generator=g), torch.randn(400, 2, generator=g).clamp(-2, 0)
    terms = kl_decomposition(mu, logvar, _std_normal, torch.Generator().manual_seed(2))
    closed = kl_normal_std_normal(mu.double(), logvar.double()).mean().item()
    assert abs(terms.total[0] - closed) < 4 * terms.total[1]
    assert abs(terms.mutual_information[0] + terms.kl_aggregate_prior[0] - terms.total[0]) < 1e-9
    assert terms.mutual_information[0] <= math.log(400)
    # every q(z | x_n) is the prior: both terms are exactly 0
    zero = kl_decomposition(torch.zeros(50, 2), torch.zeros(50, 2), _std_normal,
                            torch.Generator().manual_seed(3))
    # log p(z) is evaluated in the dtype of mu (float32 here): agreement to float32 precision
    assert abs(zero.mutual_information[0]) < 1e-9 and abs(zero.kl_aggregate_prior[0]) < 1e-6
