"""Chapter 12's exercise checks: the references pass, typical mistakes get the right hint."""
from __future__ import annotations

import math
from functools import partial

import pytest
import torch

from vaecore.elbo import negative_elbo
from vaecore.total_correlation import beta_tcvae_loss, kl_decomposition_mc
from vaecore.train import fit
from vaecourse.exercises import ch12_disentanglement as exercises
from vaecourse.exercises.ch12_disentanglement import (check_independent_code,
                                                      check_mig_with_a_copy,
                                                      check_mws_total_correlation)


# Exercise: mws_total_correlation(z, mu, logvar)
def _matrix(z, mu, logvar):
    """log q(z_i,d | x_j), written out as a student might: (M, M, D)."""
    return -0.5 * (math.log(2 * math.pi) + logvar[None]
                   + (z[:, None] - mu[None]) ** 2 / logvar[None].exp())


def _mws(z, mu, logvar):
    log_q, m = _matrix(z, mu, logvar), len(z)
    return (torch.logsumexp(log_q.sum(2), 1) - math.log(m)
            - (torch.logsumexp(log_q, 1) - math.log(m)).sum(1))


def _mws_loop(z, mu, logvar):
    """One example at a time, with torch.distributions."""
    from torch.distributions import Normal
    out = []
    for i in range(len(z)):
        per_dim = Normal(mu, (0.5 * logvar).exp()).log_prob(z[i])      # (M, D) over j
        joint = torch.logsumexp(per_dim.sum(1), 0) - math.log(len(z))
        dims = torch.logsumexp(per_dim, 0) - math.log(len(z))
        out.append(joint - dims.sum())
    return torch.stack(out)


def _no_log_m(z, mu, logvar):
    log_q = _matrix(z, mu, logvar)
    return torch.logsumexp(log_q.sum(2), 1) - torch.logsumexp(log_q, 1).sum(1)


def _flipped(z, mu, logvar):
    return -_mws(z, mu, logvar)


def _leave_one_out(z, mu, logvar):
    log_q, m = _matrix(z, mu, logvar), len(z)
    log_q = log_q.masked_fill(torch.eye(m, dtype=torch.bool)[:, :, None], -math.inf)
    return (torch.logsumexp(log_q.sum(2), 1) - math.log(m - 1)
            - (torch.logsumexp(log_q, 1) - math.log(m - 1)).sum(1))


def _own_marginals(z, mu, logvar):
    log_q, m = _matrix(z, mu, logvar), len(z)
    own = torch.diagonal(log_q).T                                       # (M, D)
    return torch.logsumexp(log_q.sum(2), 1) - math.log(m) - own.sum(1)


def _batch_mean(z, mu, logvar):
    return _mws(z, mu, logvar).mean()


def test_checks_are_re_exported():
    assert exercises.check_mws_total_correlation is check_mws_total_correlation


def test_the_reference_is_the_library_estimate():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(2, 12, 3, generator=g, dtype=torch.float64)
    z = mu + (0.5 * logvar).exp() * torch.randn(12, 3, generator=g, dtype=torch.float64)
    prior = -0.5 * (math.log(2 * math.pi) + z ** 2).sum(1)
    assert torch.allclose(_mws(z, mu, logvar),
                          kl_decomposition_mc(z, mu, logvar, prior).total_correlation)


@pytest.mark.parametrize("ok", [_mws, _mws_loop])
def test_mws_references_pass(ok):
    result = check_mws_total_correlation(ok)
    assert result.passed and "✓" in repr(result), result.message


@pytest.mark.parametrize("wrong, hint", [(_no_log_m, "log M"), (_flipped, "sign"),
                                         (_leave_one_out, "own"), (_own_marginals, "marginals"),
                                         (_batch_mean, "shape")])
def test_mws_mistakes_get_their_hint(wrong, hint):
    result = check_mws_total_correlation(wrong)
    assert not result.passed and result.hint == hint, result.message


def test_the_library_answer_is_refused():
    result = check_mws_total_correlation(
        lambda z, mu, lv: kl_decomposition_mc(z, mu, lv, torch.zeros(len(z))).total_correlation)
    assert not result.passed and result.hint == "library", result.message


# Exercise: mig_with_a_copy()
def test_mig_with_a_copy_is_what_the_library_measures():
    """The expected 0.8 is the library's MIG of that code (an independent route to the number)."""
    from vaecore.data import dsprites
    from vaecore.mig import mig
    factors = dsprites().factors
    code = torch.cat([factors, factors[:, 3:4]], 1).double()
    assert mig(code, factors).score.item() == pytest.approx(0.8, abs=1e-12)
    assert check_mig_with_a_copy(lambda: 4 / 5).passed


@pytest.mark.parametrize("answer, hint", [(1.0, "derivation"), (0.0, "derivation"),
                                          (5 / 6, "derivation"), (0.5, "values")])
def test_mig_with_a_copy_slips(answer, hint):
    result = check_mig_with_a_copy(lambda: answer)
    assert not result.passed and result.hint == hint, result.message
    assert "0.8" not in result.message  # the expected value is never printed


# Exercise: train_independent(x, seed)
def _independent(x, seed):
    model = exercises.small_vae(seed)
    fit(model, partial(beta_tcvae_loss, beta=8.0), x.repeat(4, 1, 1, 1), epochs=4,
        batch_size=128, lr=3e-3, progress=False, seed=seed)
    return model


def _plain(x, seed):
    model = exercises.small_vae(seed)
    fit(model, negative_elbo, x.repeat(4, 1, 1, 1), epochs=4, batch_size=128, lr=3e-3,
        progress=False, seed=seed)
    return model


def _collapsed(x, seed):
    model = exercises.small_vae(seed)
    fit(model, partial(negative_elbo, beta=200.0), x.repeat(4, 1, 1, 1), epochs=4,
        batch_size=128, lr=3e-3, progress=False, seed=seed)
    return model


def test_the_independent_code_reference_passes_and_the_plain_elbo_does_not():
    assert check_independent_code(_independent).passed
    result = check_independent_code(_plain)
    assert not result.passed and result.hint == "tc", result.message
    result = check_independent_code(_collapsed)
    assert not result.passed and result.hint == "collapse", result.message


def test_the_independent_code_check_reports_a_stub_and_a_wrong_return():
    def stub(x, seed):
        raise NotImplementedError

    assert check_independent_code(stub).hint == "todo"
    assert check_independent_code(lambda x, seed: None).hint == "type"
    assert len(exercises.position_subset()) == exercises.SUBSET_SIZE
