"""Input validation shared by the public functions: clear ``ValueError``s.

Every public function in vaecore checks what it is given and says what it
expected, so a wrong shape or dtype fails at the call, not three layers down.
"""
from __future__ import annotations

import math
from numbers import Integral, Real

import torch

__all__ = ["check_tensor", "check_same_shape", "check_positive_int", "check_broadcastable",
           "check_event_shape", "check_latent", "check_dtype", "check_batch",
           "check_unit_interval", "all_finite"]


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
    """Raise ``ValueError`` unless ``value`` is an integer ≥ 1 (``numpy`` ints too); return an int."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        got = (f"a tensor of shape {tuple(value.shape)}" if isinstance(value, torch.Tensor)
               else repr(value))
        raise ValueError(f"{name}: expected a positive integer, got {got}")
    return int(value)


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


def check_event_shape(name: str, x, shape: tuple[int, ...],
                      dtype: torch.dtype | None = None) -> torch.Tensor:
    """Raise ``ValueError`` unless ``x`` is a float tensor ``(B, *shape)`` (of ``dtype``, if given)."""
    check_tensor(name, x)
    if x.dim() != len(shape) + 1 or tuple(x.shape[1:]) != tuple(shape):
        raise ValueError(f"{name}: expected shape (B, {', '.join(map(str, shape))}), "
                         f"got {tuple(x.shape)}")
    return check_dtype(name, x, dtype)


def check_latent(z, latent_dim: int, name: str = "z",
                 dtype: torch.dtype | None = None) -> torch.Tensor:
    """Raise ``ValueError`` unless ``z`` is a float tensor ``(B, latent_dim)`` (of ``dtype``, if given)."""
    return check_event_shape(name, z, (latent_dim,), dtype)


def _autocast_enabled() -> bool:
    try:
        return torch.is_autocast_enabled("cpu") or torch.is_autocast_enabled("cuda")
    except TypeError:  # torch < 2.4 takes no device type
        return torch.is_autocast_enabled()


def check_dtype(name: str, x: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    """Raise ``ValueError`` if ``x`` enters a model whose parameters have another ``dtype``.

    ``dtype=None`` checks nothing; under ``torch.autocast``, which casts every
    float dtype but float64, those may mix.
    """
    if dtype is not None and x.dtype != dtype and not (
            _autocast_enabled() and torch.float64 not in (x.dtype, dtype)):
        raise ValueError(f"{name}: expected {dtype}, the dtype of the model's parameters, got "
                         f"{x.dtype}; convert one to the other: {name}.to({dtype}) or "
                         f"model.to({x.dtype})")
    return x


def check_batch(name: str, x, hint: str = "", *, allow_empty: bool = False) -> torch.Tensor:
    """Raise ``ValueError`` unless ``x`` is a float tensor ``(B, ...)`` with ``B >= 1``.

    A tuple or list (e.g. ``(x, y)`` from a labelled data set) is named as
    such, with ``hint`` added; ``allow_empty`` accepts ``B = 0``.
    """
    if isinstance(x, (tuple, list)):
        raise ValueError(f"{name}: expected a tensor of examples (B, ...), got a "
                         f"{type(x).__name__} of {len(x)} (did you pass (x, y)?){hint}")
    check_tensor(name, x, min_dim=2)
    if x.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name}: expected at least one example, got an empty batch "
                         f"of shape {tuple(x.shape)}")
    return x


def check_unit_interval(name: str, x: torch.Tensor) -> None:
    """Raise ``ValueError`` unless Bernoulli targets ``x`` lie in ``[0, 1]`` (grey levels allowed).

    One fused min/max pass over ``x``; the message suggests the usual rescaling.
    """
    if x.numel() == 0:
        return
    low, high = torch.stack(torch.aminmax(x)).tolist()
    if low >= 0 and high <= 1:
        return
    if math.isnan(low) or math.isnan(high):
        raise ValueError(f"{name}: expected Bernoulli targets in [0, 1], got NaN values")
    if low >= 0 and high <= 255:
        hint = "scale images to [0, 1] (x / 255)"
    elif low >= -1 and high <= 1:
        hint = "map data in [-1, 1] to [0, 1] ((x + 1) / 2)"
    else:
        hint = "rescale the data to [0, 1], or use a Gaussian likelihood (normal) for real values"
    raise ValueError(f"{name}: expected Bernoulli targets in [0, 1], got values in "
                     f"[{low:.4g}, {high:.4g}]; {hint}")


def all_finite(t: torch.Tensor) -> bool:
    """True when no entry of ``t`` is NaN or infinite: one sum, cheaper than ``isfinite().all()``.

    A sum of finite entries that overflows also reads as not finite; callers
    use this only to choose between a fast formula and a slower exact one.
    """
    return math.isfinite(t.sum().item())


def check_code_grid(codes, grid: tuple[int, ...], n_codes: int) -> torch.Tensor:
    """Raise ``ValueError`` unless ``codes`` is a long tensor ``(B, *grid)`` of values in
    ``0 .. n_codes - 1`` (the code grids of a VQ model); return it."""
    check_tensor("codes", codes, ndim=1 + len(grid), floating=False)
    if tuple(codes.shape[1:]) != tuple(grid) or codes.dtype != torch.long:
        raise ValueError(f"codes: expected a long tensor (B, {', '.join(map(str, grid))}),"
                         f" got {codes.dtype} of shape {tuple(codes.shape)}")
    if codes.numel() and (codes.min() < 0 or codes.max() >= n_codes):
        raise ValueError(f"codes: expected values in 0..{n_codes - 1}, got "
                         f"{codes.min().item()}..{codes.max().item()}")
    return codes
