"""Datasets held in memory as tensors: ``Dataset(x, y, classes)``.

``x`` is float32 ``(N, C, H, W)`` in ``[0, 1]``, ``y`` int64 ``(N,)``. Batches
are slices by index. Loaders: ``mnist``, ``fashion_mnist``, ``cifar10`` (files
found by the lookup order in ``vaecore.data.locate``: ``root=``, then
``$VAECORE_DATA_DIR``, then the repository's ``data/``, then a download),
``digits`` (ships with scikit-learn), ``shapes`` and ``dsprites`` (generated).
Transforms: binarisation, a train/validation split, padding to 32x32.
"""
from vaecore.data.cifar import CIFAR10_CLASSES, cifar10
from vaecore.data.dataset import Dataset
from vaecore.data.dsprites import Sprites, dsprites, render_sprites
from vaecore.data.sklearn_digits import digits
from vaecore.data.errors import CorruptDataError, DataNotFoundError
from vaecore.data.locate import ENV_VAR
from vaecore.data.idx_datasets import fashion_mnist, mnist
from vaecore.data.shape_images import SHAPE_CLASSES, shapes
from vaecore.data.transforms import (Split, binarize_dynamic, binarize_static,
                                     binarize_threshold, pad_to_32, train_val_split)

__all__ = ["Dataset", "DataNotFoundError", "CorruptDataError", "ENV_VAR",
           "mnist", "fashion_mnist", "cifar10", "CIFAR10_CLASSES", "digits",
           "shapes", "SHAPE_CLASSES", "dsprites", "render_sprites", "Sprites", "Split",
           "binarize_dynamic", "binarize_threshold", "binarize_static", "train_val_split",
           "pad_to_32"]
