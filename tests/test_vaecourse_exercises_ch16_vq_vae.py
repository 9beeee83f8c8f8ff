"""Chapter 16's exercise checks: the references pass, typical mistakes get the right hint."""
from __future__ import annotations

import math

import torch

from vaecourse.exercises import ch16_vq_vae as E


def _nearest(z_e, codebook, pick=torch.argmin):
    distances = (z_e.movedim(1, -1).unsqueeze(-2) - codebook).pow(2).sum(-1)
    return codebook[pick(distances, -1)].movedim(-1, 1)


def _straight_through(z_e, codebook):
    return z_e + (_nearest(z_e, codebook) - z_e).detach()


def test_straight_through_passes_and_names_the_usual_slips():
    assert E.check_straight_through(_straight_through).passed
    assert E.check_straight_through(  # float32 arithmetic passes too
        lambda z, c: _straight_through(z.float(), c.float())).passed
    slips = {
        "no-gradient": lambda z, c: _nearest(z.detach(), c.detach()),
        "identity": lambda z, c: z,
        "farthest": lambda z, c: z + (_nearest(z, c, torch.argmax) - z).detach(),
        "codebook-gradient": lambda z, c: z + _nearest(z, c) - z.detach(),
        "gradient": lambda z, c: 2 * z - z.detach() + (_nearest(z, c) - z).detach(),
        "shape": lambda z, c: _straight_through(z, c).flatten(1),
        "value": lambda z, c: _straight_through(z, c) + 0.1,
    }
    for hint, slip in slips.items():
        result = E.check_straight_through(slip)
        assert not result.passed and result.hint == hint, (hint, result)


def test_the_best_iid_length_is_the_numerical_optimum():
    for codes, k in E._code_cases(7):
        # a dead code's best probability is 0, which gradient descent only approaches
        assert math.isclose(E._numerical_iid(codes, k), E.best_iid_nats(codes, k),
                            rel_tol=1e-4)


def _iid(codes, k):
    p = torch.bincount(codes.flatten(), minlength=k).double() / codes.numel()
    return -(torch.special.xlogy(p, p).sum() * codes[0].numel()).item()


def test_best_iid_code_length_passes_and_names_the_usual_slips():
    assert E.check_best_iid_code_length(_iid).passed
    assert E.check_best_iid_code_length(lambda c, k: torch.tensor(_iid(c, k))).passed
    slips = {"bits": lambda c, k: _iid(c, k) / math.log(2),
             "uniform": lambda c, k: c[0].numel() * math.log(k),
             "per-position": lambda c, k: _iid(c, k) / c[0].numel(),
             "perplexity": lambda c, k: math.exp(_iid(c, k) / c[0].numel()),
             "value": lambda c, k: _iid(c, k) + 1.0,
             "type": lambda c, k: "many", "type ": lambda c, k: True}
    for hint, slip in slips.items():
        result = E.check_best_iid_code_length(slip)
        assert not result.passed and result.hint == hint.strip(), (hint, result)


def _position(train, k, smoothing=0.5):
    counts = torch.nn.functional.one_hot(train, k).double().sum(0) + smoothing
    return counts.log() - counts.sum(-1, keepdim=True).log()


def test_position_prior_passes_the_reference_and_names_the_failures():
    assert E.check_position_prior(_position).passed

    def iid(train, k):  # one distribution for every position
        counts = torch.bincount(train.flatten(), minlength=k).double() + 0.5
        return (counts.log() - counts.sum().log()).expand(*train.shape[1:], k)
    failures = {"nats": iid,  # the best prior that ignores positions is not enough
                "zero": lambda train, k: _position(train, k, smoothing=0.0),
                "normalised": lambda train, k: _position(train, k) - 0.1,
                "range": lambda train, k: -_position(train, k),
                "shape": lambda train, k: _position(train, k)[:, :, :-1]}
    for hint, wrong in failures.items():
        result = E.check_position_prior(wrong)
        assert not result.passed and result.hint == hint, (hint, result)
