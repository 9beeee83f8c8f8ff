"""Small transforms of whole datasets held as tensors.

Binarisation turns grey levels into the binary pixels a Bernoulli likelihood
models: *dynamic* binarisation draws a fresh Bernoulli sample with
``p = x`` (usually once per epoch); *static* binarisation, in the literature's
sense, is one such draw made once and then kept fixed (``binarize_dynamic``
with a seeded generator, called once); *thresholding* sets every pixel above
a threshold to 1, which is neither. A deterministic train/validation split,
and zero padding of 28x28 images to 32x32 (for architectures that halve the
size several times).
"""
from __future__ import annotations

import numbers
import warnings
from typing import NamedTuple

import torch
import torch.nn.functional as F

from vaecore._checks import check_positive_int, check_tensor
from vaecore.data.dataset import Dataset

__all__ = ["Split", "binarize_dynamic", "binarize_threshold", "binarize_static", "train_val_split", "pad_to_32"]


class Split(NamedTuple):
    """The two parts of a split, each of the same kind as the data split."""

    train: object
    val: object


def _check_unit_interval(x: torch.Tensor) -> None:
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"x: expected values in [0, 1], got the range "
                         f"[{x.min().item():.3g}, {x.max().item():.3g}]")


def binarize_dynamic(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A Bernoulli sample with the grey levels as probabilities: ``x_bin ~ Bernoulli(x)``.

    ``x``: float tensor of any shape with values in [0, 1]. Returns a tensor of
    the same shape and dtype holding 0s and 1s, with ``E[x_bin] = x``; pass a
    seeded ``generator`` for a reproducible draw.
    """
    check_tensor("x", x)
    _check_unit_interval(x)
    return torch.bernoulli(x, generator=generator)


def binarize_threshold(x: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """``1`` where ``x > threshold``, else ``0``; same shape and dtype as ``x``.

    Deterministic thresholding. It is not the "static binarization" of the
    literature, which is one fixed Bernoulli draw (see ``binarize_dynamic``).
    """
    check_tensor("x", x)
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
        raise ValueError(f"threshold: expected a number, got {threshold!r}")
    return (x > threshold).to(x.dtype)


def binarize_static(x: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Deprecated alias of :func:`binarize_threshold` (it thresholds); removed in 0.3.0.

    The old name was misleading: static binarization in the literature is one
    fixed Bernoulli draw, not a threshold. Warns with ``DeprecationWarning``.
    """
    warnings.warn("binarize_static is deprecated and will be removed in 0.3.0: it thresholds, "
                  "so it is now called binarize_threshold (static binarization in the "
                  "literature is one fixed Bernoulli draw: binarize_dynamic with a seeded "
                  "generator, made once)", DeprecationWarning, stacklevel=2)
    return binarize_threshold(x, threshold)


def _tensors(data) -> list:
    """The tensors that a split slices together."""
    if isinstance(data, Dataset):
        return [data.x, data.y]
    if isinstance(data, torch.Tensor):
        return [data]
    return list(data) if isinstance(data, tuple) else []


def _length(data) -> int:
    """Number of examples of a Tensor, a Dataset or a tuple of tensors, all of one length."""
    tensors = _tensors(data)
    if not tensors or not all(isinstance(t, torch.Tensor) and t.dim() >= 1 for t in tensors):
        raise ValueError(f"data: expected a Dataset, a tensor or a tuple of tensors, "
                         f"got {type(data).__name__}")
    lengths = {len(t) for t in tensors}
    if len(lengths) != 1:
        raise ValueError(f"data: expected tensors with one number of examples, got {lengths}")
    return lengths.pop()


def _take(data, index: torch.Tensor):
    if isinstance(data, Dataset):
        return Dataset(data.x[index], data.y[index], data.classes)
    if isinstance(data, torch.Tensor):
        return data[index]
    return tuple(t[index] for t in data)


def train_val_split(data, n_val: int, seed: int = 0) -> Split:
    """Split off ``n_val`` random examples for validation, the same ones for the same seed.

    ``data``: a ``Dataset``, a tensor (examples along dimension 0) or a tuple of
    tensors sliced together. Returns ``Split(train, val)`` of the same kind,
    disjoint, together holding every example once, each in dataset order.
    Raises ``ValueError`` unless 1 <= n_val < number of examples.
    """
    n = _length(data)
    check_positive_int("n_val", n_val)
    if n_val >= n:
        raise ValueError(f"n_val: expected fewer than the {n} examples, got {n_val}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed: expected an int, got {seed!r}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val, train = order[:n_val].sort().values, order[n_val:].sort().values
    return Split(_take(data, train), _take(data, val))


def pad_to_32(x):
    """Zero-pad images (N, C, H, W) to (N, C, 32, 32), equally on both sides.

    28x28 MNIST images get 2 pixels on each side. Also accepts a ``Dataset``
    and returns one with padded ``x``. Raises ``ValueError`` unless ``x`` is
    4-dimensional with H, W <= 32 and 32 - H, 32 - W even.
    """
    if isinstance(x, Dataset):
        return x._replace(x=pad_to_32(x.x))
    check_tensor("x", x, ndim=4, floating=False)
    h, w = x.shape[-2:]
    if h > 32 or w > 32 or (32 - h) % 2 or (32 - w) % 2:
        raise ValueError(f"x: expected images of at most 32x32 with an even difference "
                         f"to 32 (e.g. 28x28), got {h}x{w}")
    ph, pw = (32 - h) // 2, (32 - w) // 2
    return F.pad(x, (pw, pw, ph, ph))
