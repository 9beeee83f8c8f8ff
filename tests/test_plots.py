"""vaecore.plots: image grids drawn pixel for pixel; training curves against whole epochs."""
import io
from types import SimpleNamespace

import torch

from vaecore import plots


def test_image_grid_tiles_images_with_a_white_border():
    x = torch.zeros(3, 1, 2, 2)
    grid = plots.image_grid(x, nrow=2, pad=1)
    assert grid.shape == (2 * 3 + 1, 2 * 3 + 1, 1)
    assert grid[0].eq(1).all() and grid[1:3, 1:3].eq(0).all() and grid[4:6, 4:6].eq(1).all()


def test_show_images_draws_each_pixel_as_a_block_and_keeps_colour_grids_small():
    torch.manual_seed(0)
    x = torch.nn.functional.interpolate(torch.rand(32, 3, 8, 8), size=32, mode="bilinear")
    fig = plots.show_images(x.clamp(0, 1), nrow=16, scale=2.5, title="t")
    image = fig.axes[0].images[0]
    assert image.get_interpolation() == "nearest"
    assert image.get_array().shape == (2 * 33 + 1, 16 * 33 + 1, 3)
    png = io.BytesIO()
    fig.savefig(png, format="png")
    smooth = io.BytesIO()
    image.set_interpolation("antialiased")
    fig.savefig(smooth, format="png")
    assert len(png.getvalue()) < len(smooth.getvalue()) / 2


def test_history_is_plotted_against_whole_epochs():
    """Three epochs are ticked 1, 2, 3 (matplotlib's own choice is 1.0, 1.5, ..., 3.0)."""
    history = SimpleNamespace(train={"loss": [3.0, 2.0, 1.5]}, val={"loss": [2.5, 1.8, 1.6]})
    fig = plots.plot_history(history)
    fig.canvas.draw()  # the tick locations are fixed when the figure is drawn
    (ax,) = fig.axes
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks == [1, 2, 3]
    assert [line.get_label() for line in ax.get_lines()] == ["train", "val"]
