"""MNIST and Fashion-MNIST: 28x28 greyscale images in the IDX format.

Both come as four files (train/test images and labels), found by the lookup
order of ``vaecore.data.locate`` or downloaded from the canonical mirrors with
an md5 check. Decoded arrays are cached in memory per file, so calling
``mnist()`` twice in a notebook decodes once; each call returns new tensors,
so modifying them never changes the cache.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from vaecore.data.dataset import Dataset, from_uint8
from vaecore.data.errors import CorruptDataError
from vaecore.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx
from vaecore.data.locate import RemoteFile, file_key, locate

__all__ = ["IdxSource", "MNIST", "FASHION_MNIST", "SPLIT_FILES", "mnist", "fashion_mnist"]

SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


class IdxSource(NamedTuple):
    """Where an IDX dataset lives: title, folder names, mirrors, md5 per file, class names."""

    title: str
    dirs: tuple[str, ...]
    mirrors: tuple[str, ...]
    md5s: dict
    classes: tuple[str, ...]


MNIST = IdxSource(
    "MNIST", ("mnist", "MNIST/raw"),
    ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
    {"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
     "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
     "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
     "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"},
    tuple("0123456789"))

FASHION_MNIST = IdxSource(
    "Fashion-MNIST", ("fashion-mnist", "FashionMNIST/raw"),
    ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    {"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
     "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
     "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
     "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"},
    ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
     "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"))


@functools.lru_cache(maxsize=8)
def _decode(images_key: tuple, labels_key: tuple, n_classes: int):
    """Read and cross-check one split: uint8 images (N, 1, 28, 28), labels (N,), read-only."""
    images = read_idx(images_key[0], IMAGES_MAGIC)
    labels = read_idx(labels_key[0], LABELS_MAGIC)
    if images.shape[1:] != (28, 28):
        raise CorruptDataError(f"{images_key[0]}: images of shape {images.shape[1:]}, "
                               f"expected (28, 28)")
    if len(images) != len(labels):
        raise CorruptDataError(f"{images_key[0]} holds {len(images)} images but "
                               f"{labels_key[0]} holds {len(labels)} labels")
    if labels.size and labels.max() >= n_classes:
        raise CorruptDataError(f"{labels_key[0]}: label {labels.max()} found, "
                               f"expected labels 0..{n_classes - 1}")
    return images[:, np.newaxis], labels


def load_idx_dataset(source: IdxSource, split: str, root=None, download=True) -> Dataset:
    """Locate (or download) and decode one split of an IDX dataset."""
    if not isinstance(split, str) or split not in SPLIT_FILES:
        raise ValueError(f"{source.title}: split must be 'train' or 'test', got {split!r}")
    expected = [name for pair in SPLIT_FILES.values() for name in pair]
    paths = [locate(source.title,
                    RemoteFile(name, source.md5s[name], tuple(m + name for m in source.mirrors)),
                    source.dirs, root, download, expected)
             for name in SPLIT_FILES[split]]
    images, labels = _decode(file_key(paths[0]), file_key(paths[1]), len(source.classes))
    return from_uint8(images, labels, source.classes)


def mnist(split: str = "train", root=None, download: bool = True) -> Dataset:
    """MNIST handwritten digits (LeCun et al., 1998).

    Returns a ``Dataset``: ``x`` float32 (N, 1, 28, 28) in [0, 1] (pixel / 255),
    ``y`` int64 (N,) the digit, ``classes`` ``('0', ..., '9')``; N = 60000
    (``split="train"``) or 10000 (``"test"``). Files are looked up in ``root``,
    ``$VAECORE_DATA_DIR``, the repository's ``data/``, then downloaded unless
    ``download=False`` (see ``vaecore.data.locate``). Raises ``DataNotFoundError``
    or ``CorruptDataError``; ``ValueError`` for an unknown split.
    """
    return load_idx_dataset(MNIST, split, root, download)


def fashion_mnist(split: str = "train", root=None, download: bool = True) -> Dataset:
    """Fashion-MNIST: 28x28 greyscale photos of clothing in 10 classes (Xiao et al., 2017).

    Returns a ``Dataset``: ``x`` float32 (N, 1, 28, 28) in [0, 1], ``y`` int64 (N,),
    ``classes`` the 10 names (``'T-shirt/top'``, ..., ``'Ankle boot'``);
    N = 60000 (train) or 10000 (test). Lookup, download and errors as for ``mnist``.
    """
    return load_idx_dataset(FASHION_MNIST, split, root, download)
