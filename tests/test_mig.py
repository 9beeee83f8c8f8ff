"""Tests for vaecore.mig: the plug-in information and MIG on codes with known answers."""
import math

import pytest
import torch

from _factor_codes import LEVELS, N, aligned, factors, independent, rotated_code  # noqa: F401

from vaecore.mig import discretize, entropy, mig, mutual_information

BINS = 20


# --- the information pieces -------------------------------------------------

def test_discretize_equal_width_bins():
    z = torch.tensor([[0.0, 5.0], [0.5, 5.0], [0.99, 5.0], [1.0, 5.0]], dtype=torch.float64)
    assert discretize(z, bins=4).tolist() == [[0, 0], [2, 0], [3, 0], [3, 0]]


def test_entropy_and_mutual_information_by_hand():
    a = torch.tensor([0, 0, 1, 1])
    assert entropy(a).item() == pytest.approx(math.log(2))
    assert mutual_information(a, a).item() == pytest.approx(math.log(2))
    assert mutual_information(a, torch.tensor([0, 1, 0, 1])).item() == pytest.approx(0, abs=1e-15)
    b = torch.tensor([0, 0, 0, 1])  # I = H(b) - H(b | a) = H(1/4) - H(1/2) / 2
    h = lambda p: -p * math.log(p) - (1 - p) * math.log(1 - p)
    assert mutual_information(a, b).item() == pytest.approx(h(0.25) - h(0.5) / 2)


def test_plug_in_mutual_information_bias_is_as_stated():
    """For independent codes E[2N I] = (ka - 1)(kb - 1), the G-test's degrees of freedom."""
    g, n, ka, kb, repeats = torch.Generator().manual_seed(1), 400, 5, 4, 400
    g_stat = torch.stack([2 * n * mutual_information(torch.randint(ka, (n,), generator=g),
                                                     torch.randint(kb, (n,), generator=g))
                          for _ in range(repeats)])
    dof = (ka - 1) * (kb - 1)
    assert abs(g_stat.mean().item() - dof) < 4 * math.sqrt(2 * dof / repeats)
    assert g_stat.var().item() == pytest.approx(2 * dof, rel=0.3)


# --- MIG ----------------------------------------------------------------------

def test_mig_of_an_aligned_copy_is_one(factors, aligned):
    result = mig(aligned, factors, bins=BINS)
    assert result.score.item() == pytest.approx(1.0, abs=1e-12)
    assert torch.allclose(result.mi.diagonal(), result.entropy)   # each latent holds its factor
    assert result.mi.fill_diagonal_(0).abs().max() < 1e-12          # and nothing of the others
    assert torch.allclose(result.entropy, torch.tensor(LEVELS, dtype=torch.float64).log())


def test_mig_of_an_independent_code_is_zero_within_the_stated_bias(factors, independent):
    result = mig(independent, factors, bins=BINS)
    dof = torch.tensor([(BINS - 1) * (k - 1) for k in LEVELS], dtype=torch.float64)
    bias, sd = dof / (2 * N), (2 * dof).sqrt() / (2 * N)
    top = result.mi.max(0).values
    assert ((top > 0.5 * bias) & (top < bias + 4 * sd)).all()  # the bias, not information
    assert (result.gaps < 4 * sd / result.entropy).all()
    assert 0 <= result.score.item() < 4e-4


def test_mig_of_a_rotated_copy_is_strictly_lower(factors, aligned):
    aligned_score = mig(aligned, factors, bins=BINS).score.item()
    result = mig(rotated_code(aligned), factors, bins=BINS)
    assert result.gaps[:3].tolist() == pytest.approx([1.0, 1.0, 1.0])  # untouched factors
    assert (result.gaps[3:] < 0.5).all()  # each position now spread over two latents
    assert result.score.item() < aligned_score - 0.2
    assert mig(rotated_code(aligned, 45.0), factors).gaps[3:].max() < 0.02  # shared equally


def test_mig_checks_its_arguments(factors, aligned):
    with pytest.raises(ValueError, match="integer"):
        mig(aligned, aligned)
    with pytest.raises(ValueError, match=">= 0"):
        mig(aligned, factors - 1)
    with pytest.raises(ValueError, match="two values"):
        mig(aligned, torch.zeros_like(factors))
    with pytest.raises(ValueError, match="same number"):
        mig(aligned[:10], factors)
