"""Codes with a known disentanglement score, on the dSprites factor grid, for the metric tests.

The factors are the grid's indices (3 x 6 x 10 x 16 x 16, every combination
once), so they are exactly independent of each other. Known answers: a copy
of the factors scores the maximum, a code independent of them scores 0
within the stated bias, a rotated copy scores strictly less.
"""
from __future__ import annotations

import math

import pytest
import torch

LEVELS = (3, 6, 10, 16, 16)
N = math.prod(LEVELS)


def factor_grid() -> torch.Tensor:
    """The factor indices ``(N, 5)``, int64."""
    return torch.cartesian_prod(*(torch.arange(k) for k in LEVELS))


def aligned_code(factors: torch.Tensor) -> torch.Tensor:
    """The factors themselves, scaled to [0, 1]: one latent per factor, float64."""
    return factors.double() / torch.tensor([k - 1.0 for k in LEVELS], dtype=torch.float64)


def independent_code(latents: int = 8, seed: int = 0) -> torch.Tensor:
    """Standard normal noise ``(N, latents)``, independent of the factors."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(N, latents, generator=g, dtype=torch.float64)


def rotated_code(aligned: torch.Tensor, degrees: float = 30.0) -> torch.Tensor:
    """The aligned code with the two position latents turned in their plane."""
    a = math.radians(degrees)
    turn = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]],
                        dtype=torch.float64)
    z = aligned.clone()
    z[:, 3:5] = aligned[:, 3:5] @ turn.T
    return z


# fixtures, imported by the test modules that use them
@pytest.fixture(scope="module")
def factors():
    return factor_grid()


@pytest.fixture(scope="module")
def aligned(factors):
    return aligned_code(factors)


@pytest.fixture(scope="module")
def independent():
    return independent_code()
