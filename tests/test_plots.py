"""vaecore.plots: image grids drawn pixel for pixel."""
import io

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
