"""Input validation shared by the public functions: clear ``ValueError``s.

Every public function in vaecore checks what it is given and says what it
expected, so a wrong shape or dtype fails at the call, not three layers down.
"""
from __future__ import annotations

from numbers import Real

import torch

__all__ = ["check_tensor", "check_same_shape", "check_positive_int", "check_broadcastable",
           "check_event_shape", "check_latent"]


def check_tensor(name: str, t, *, min_dim: int = 1, ndim: int | None = None,
                 floating: bool = True) -> torch.Tensor:
    """Raise ``ValueError`` unless ``t`` is a tensor of the expected kind.

    ``ndim`` asks for an exact number of dimensions, ``min_dim`` for at least
    that many (a batch dimension first); ``floating`` asks for a float dtype.
    Returns ``t`` so calls can be chained.
    """
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
    if ndim is not None and t.dim() != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {tuple(t.shape)}")
    if t.dim() < min_dim:
        raise ValueError(f"{name}: expected at least {min_dim} dimension(s) "
                         f"(batch first), got shape {tuple(t.shape)}")
    if floating and not t.is_floating_point():
        raise ValueError(f"{name}: expected a floating-point tensor, got {t.dtype}")
    return t


def check_same_shape(**tensors: torch.Tensor) -> None:
    """Raise ``ValueError`` unless all the named tensors have one shape."""
    shapes = {k: tuple(v.shape) for k, v in tensors.items()}
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{k} {s}" for k, s in shapes.items())
        raise ValueError(f"expected tensors of the same shape, got {listed}")


def check_positive_int(name: str, value) -> int:
    """Raise ``ValueError`` unless ``value`` is an int ≥ 1; return it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return value


def check_broadcastable(name: str, value, like: torch.Tensor) -> torch.Tensor:
    """Return ``value`` (a tensor, or a real number) as a tensor that broadcasts to ``like``."""
    if isinstance(value, Real) and not isinstance(value, bool):
        return torch.tensor(float(value), dtype=like.dtype, device=like.device)
    check_tensor(name, value, min_dim=0)
    try:
        shape = torch.broadcast_shapes(value.shape, like.shape)
    except RuntimeError:
        shape = None
    if shape != like.shape:
        raise ValueError(f"{name}: expected a float or a tensor broadcastable to "
                         f"{tuple(like.shape)}, got shape {tuple(value.shape)}")
    return value


def check_event_shape(name: str, x, shape: tuple[int, ...]) -> torch.Tensor:
    """Raise ``ValueError`` unless ``x`` is a float tensor ``(B, *shape)``."""
    check_tensor(name, x)
    if x.dim() != len(shape) + 1 or tuple(x.shape[1:]) != tuple(shape):
        raise ValueError(f"{name}: expected shape (B, {', '.join(map(str, shape))}), "
                         f"got {tuple(x.shape)}")
    return x


def check_latent(z, latent_dim: int, name: str = "z") -> torch.Tensor:
    """Raise ``ValueError`` unless ``z`` is a float tensor ``(B, latent_dim)``."""
    return check_event_shape(name, z, (latent_dim,))
