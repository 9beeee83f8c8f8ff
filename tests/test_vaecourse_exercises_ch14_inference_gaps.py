"""Chapter 14's exercise checks: the references pass, typical mistakes get the right hint."""
from __future__ import annotations

import math

import pytest
import torch

from vaecore.posterior import Posterior
from vaecourse.exercises.ch14_inference_gaps import (check_equicorrelated_gap, check_refine,
                                                     check_stl_loss)


def _loss(model, x, generator):
    q = model.encode(x)
    z = q.rsample(generator=generator)
    log_q = Posterior(q.mu.detach(), q.logvar.detach()).log_prob(z)
    return -(model.log_likelihood(x, z) + model.prior.log_prob(z) - log_q).mean()


def _standard(model, x, generator):
    q = model.encode(x)
    z = q.rsample(generator=generator)
    return -(model.log_likelihood(x, z) + model.prior.log_prob(z) - q.log_prob(z)).mean()


def _frozen(model, x, generator):
    q = model.encode(x)
    z = q.rsample(generator=generator).detach()
    log_q = Posterior(q.mu.detach(), q.logvar.detach()).log_prob(z)
    return -(model.log_likelihood(x, z) + model.prior.log_prob(z) - log_q).mean()


def _detached_z_only(model, x, generator):
    q = model.encode(x)
    z = q.rsample(generator=generator).detach()
    return -(model.log_likelihood(x, z) + model.prior.log_prob(z) - q.log_prob(z)).mean()


def _summed(model, x, generator):
    q = model.encode(x)
    z = q.rsample(generator=generator)
    log_q = Posterior(q.mu.detach(), q.logvar.detach()).log_prob(z)
    return -(model.log_likelihood(x, z) + model.prior.log_prob(z) - log_q).sum()


def test_stl_loss_passes_and_names_the_usual_slips():
    assert check_stl_loss(_loss).passed
    for slip, hint in ((_standard, "score"), (_frozen, "path"), (_detached_z_only, "path"),
                       (_summed, "value")):
        result = check_stl_loss(slip)
        assert not result.passed and result.hint == hint, result


def _closed_form(rho, dim):
    det = (1 - rho) ** (dim - 1) * (1 + (dim - 1) * rho)
    diagonal = (1 + (dim - 2) * rho) / ((1 - rho) * (1 + (dim - 1) * rho))
    return 0.5 * (dim * math.log(diagonal) + math.log(det))


def test_equicorrelated_gap_passes_and_names_the_usual_slips():
    assert check_equicorrelated_gap(_closed_form).passed
    two_d = check_equicorrelated_gap(lambda r, d: -0.5 * math.log1p(-r * r))
    assert not two_d.passed and two_d.hint == "two-d"
    doubled = check_equicorrelated_gap(lambda r, d: 2 * _closed_form(r, d))
    assert not doubled.passed and doubled.hint == "half"
    forward = check_equicorrelated_gap(
        lambda r, d: -0.5 * math.log((1 - r) ** (d - 1) * (1 + (d - 1) * r)))
    assert not forward.passed and forward.hint == "forward"


def _refine(model, x, steps=150):
    with torch.no_grad():
        q = model.encode(x)
    mu, logvar = q.mu.clone().requires_grad_(), q.logvar.clone().requires_grad_()
    optimiser = torch.optim.Adam([mu, logvar], lr=0.05)
    g = torch.Generator().manual_seed(0)
    for t in range(steps):
        optimiser.param_groups[0]["lr"] = 0.05 * 0.02 ** (t / (steps - 1))
        z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=g)
        log_q = Posterior(mu.detach(), logvar.detach()).log_prob(z)
        loss = -(model.log_likelihood(x, z) + model.prior.log_prob(z) - log_q).sum()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return mu.detach(), logvar.detach()


@pytest.mark.slow
def test_refine_passes_and_rejects_the_encoder_and_a_changed_model():
    assert check_refine(_refine).passed
    encoder = check_refine(lambda m, x: tuple(m.encode(x)))
    assert not encoder.passed and encoder.hint == "gain"

    def retrained(model, x):
        with torch.no_grad():
            next(model.decoder.parameters()).add_(0.01)
        return tuple(model.encode(x))

    changed = check_refine(retrained)
    assert not changed.passed and changed.hint == "weights"
    shape = check_refine(lambda m, x: m.encode(x).mu)
    assert not shape.passed and shape.hint == "shape"
