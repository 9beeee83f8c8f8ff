"""Figures the chapters share: image grids and training curves.

Every function builds a ``matplotlib.figure.Figure`` directly (not through
pyplot), returns it and shows nothing: a notebook displays the returned figure
once, and nothing is left open behind it.
"""
from __future__ import annotations

from typing import Sequence

import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ._checks import check_tensor

__all__ = ["image_grid", "show_images", "plot_history"]

TITLES = {"loss": "loss (negative ELBO)", "log_likelihood": "log-likelihood log p(x | z)",
          "reconstruction": "reconstruction log p(x | z)",
          "kl": "KL(q(z | x) || p(z))"}


def image_grid(x: torch.Tensor, nrow: int = 8, pad: int = 1) -> torch.Tensor:
    """Tile images ``x`` of shape (N, C, H, W) into one (H', W', C) array in [0, 1]."""
    check_tensor("x", x, ndim=4)
    n, c, h, w = x.shape
    ncol = -(-n // nrow)
    grid = torch.ones(c, ncol * (h + pad) + pad, nrow * (w + pad) + pad)
    for i in range(n):
        r, k = divmod(i, nrow)
        top, left = pad + r * (h + pad), pad + k * (w + pad)
        grid[:, top:top + h, left:left + w] = x[i].detach().float().clamp(0, 1)
    return grid.permute(1, 2, 0)


def show_images(x: torch.Tensor, nrow: int = 8, title: str | None = None,
                scale: float = 2.0) -> Figure:
    """A figure of the images ``x`` (N, C, H, W) with values in [0, 1], ``nrow`` per row.

    ``scale`` is the number of screen pixels (at 100 dpi) per image pixel.
    """
    grid = image_grid(x, nrow=min(nrow, len(x)))
    h, w = grid.shape[:2]
    fig = Figure(figsize=(scale * w / 100, scale * h / 100 + (0.3 if title else 0)))
    ax = fig.add_axes((0, 0, 1, 1 if not title else 1 - 0.3 / fig.get_figheight()))
    # Each image pixel drawn as a solid block: no smoothing between pixels, which blurs
    # small images and makes the PNG of a colour grid three times as large.
    if grid.shape[2] == 1:
        ax.imshow(grid[..., 0].numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(grid.numpy(), interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def plot_history(history, keys: Sequence[str] = ("loss",), ylabel: str = "nats per image",
                 title: str | None = None) -> Figure:
    """Training (solid) and validation (dashed) curves of ``keys`` against epoch."""
    fig = Figure(figsize=(4.2 * len(keys), 3.2), layout="constrained")
    axes = fig.subplots(1, len(keys), squeeze=False)[0]
    for ax, key in zip(axes, keys):
        for split, style in (("train", "-o"), ("val", "--s")):
            values = getattr(history, split).get(key)
            if values:
                ax.plot(range(1, len(values) + 1), values, style, ms=3, label=split)
        ax.set_xlabel("epoch")
        # matplotlib's own ticks, whole epochs only (three epochs: no "1.5")
        ax.xaxis.set_major_locator(MaxNLocator("auto", steps=[1, 2, 2.5, 5, 10], integer=True))
        ax.set_ylabel(ylabel)
        name = TITLES.get(key, key)
        ax.set_title(name if title is None else f"{title}: {name}", fontsize=10)
        ax.legend()
    return fig
