"""Tests for vaecore.dci: the lasso and DCI on codes with known answers."""
import math

import pytest
import torch

from _factor_codes import N, aligned, factors, independent, rotated_code  # noqa: F401

from vaecore.dci import _weighted_specificity, dci, lasso




def test_lasso_soft_thresholds_an_orthonormal_design_and_matches_least_squares_at_zero():
    g = torch.Generator().manual_seed(2)
    x = torch.linalg.qr(torch.randn(500, 4, generator=g, dtype=torch.float64)).Q * math.sqrt(500)
    y = x @ torch.tensor([[1.0], [-0.5], [0.05], [0.0]], dtype=torch.float64)
    expected = torch.tensor([[0.9], [-0.4], [0.0], [0.0]], dtype=torch.float64)
    assert torch.allclose(lasso(x, y, 0.1), expected, atol=1e-10)
    x2 = torch.randn(300, 3, generator=g, dtype=torch.float64)
    y2 = torch.randn(300, 2, generator=g, dtype=torch.float64)
    assert torch.allclose(lasso(x2, y2, 0.0, sweeps=500), torch.linalg.lstsq(x2, y2).solution,
                          atol=1e-9)


def test_disentanglement_and_completeness_of_an_importance_matrix_by_hand():
    importance = torch.tensor([[1.0, 0, 0], [0, 1, 1], [0, 0, 0]], dtype=torch.float64)
    # latent 0 serves one factor, latent 1 two equally, latent 2 none: weights 1/3, 2/3, 0
    expected = 1 / 3 + 2 / 3 * (1 - math.log(2) / math.log(3))
    assert _weighted_specificity(importance).item() == pytest.approx(expected)
    assert _weighted_specificity(importance.T).item() == pytest.approx(1.0)  # one latent each
    assert _weighted_specificity(torch.zeros(3, 2, dtype=torch.float64)).item() == 0


def test_dci_of_an_aligned_copy_is_at_the_maximum(aligned, independent):
    z = torch.cat([aligned, independent[:, :3]], 1)  # three latents carry nothing
    result = dci(z, aligned)
    assert result.disentanglement.item() == pytest.approx(1.0, abs=1e-9)
    assert result.completeness.item() == pytest.approx(1.0, abs=1e-9)
    lam = 4 / math.sqrt(N)  # the lasso shrinks each weight by lambda: R^2 = 1 - lambda^2
    assert result.informativeness.item() == pytest.approx(1 - lam ** 2, abs=1e-6)
    assert (result.importance[5:] == 0).all()


def test_dci_of_an_independent_code_is_zero(aligned, independent):
    """With lambda = 4 / sqrt(N) every weight is 0 but with probability <= 2 D K Phi(-4) = 0.25%."""
    train, test = torch.randperm(N, generator=torch.Generator().manual_seed(3)).chunk(2)
    result = dci(independent[train], aligned[train], independent[test], aligned[test])
    assert (result.importance == 0).all()
    assert result.disentanglement.item() == 0 and result.completeness.item() == 0
    assert abs(result.informativeness.item()) < 1e-3  # predicting the training mean: R^2 ~ -1/N


def test_dci_of_a_rotated_copy_is_strictly_lower(aligned):
    result = dci(rotated_code(aligned), aligned)
    assert result.disentanglement.item() < 0.9 and result.completeness.item() < 0.9
    assert result.informativeness.item() > 0.99  # a linear code: still fully predictive
    # the two position latents split their weight cos 30 : sin 30 between the two factors
    p = result.importance[3:5, 3:5] / result.importance[3:5, 3:5].sum(1, keepdim=True)
    assert p.max(1).values.tolist() == pytest.approx([math.cos(math.radians(30)) / (
        math.cos(math.radians(30)) + math.sin(math.radians(30)))] * 2, abs=0.01)


def test_dci_checks_its_arguments(aligned):
    with pytest.raises(ValueError, match="both or neither"):
        dci(aligned, aligned, z_test=aligned)
    with pytest.raises(ValueError, match="constant"):
        dci(aligned, torch.cat([aligned[:, :2], torch.ones(N, 1, dtype=torch.float64)], 1))
    with pytest.raises(ValueError, match="lam"):
        dci(aligned, aligned, lam=-1.0)
