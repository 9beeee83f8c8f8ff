"""MNIST and Fashion-MNIST: 28x28 greyscale images in the IDX format.

Both come as four files (train/test images and labels), found by the lookup
order of ``vaecore.data.locate`` (both files of a split from one folder) or
downloaded from https mirrors with a size and md5 check. Every file loaded is
checked against the sha256 of its decompressed bytes in the dataset's table
(``IdxSource.sha256s``), which survives recompression but refuses any other
content, e.g. Fashion-MNIST files in an MNIST folder. To load other IDX files
(tests do, with tiny synthetic sets), replace the table's entry, e.g.
``MNIST._replace(sha256s=...)`` assigned to this module's ``MNIST``, rather
than skipping the check. Decoded arrays are cached in memory per file, so
calling ``mnist()`` twice in a notebook decodes once; each call returns new
tensors, so modifying them never changes the cache.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from vaecore.data.dataset import Dataset, from_uint8
from vaecore.data.errors import CorruptDataError
from vaecore.data.idx import IMAGES_MAGIC, LABELS_MAGIC, load_idx
from vaecore.data.locate import RemoteFile, file_key, locate_together

__all__ = ["IdxSource", "MNIST", "FASHION_MNIST", "SPLIT_FILES", "mnist", "fashion_mnist"]

SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


class IdxSource(NamedTuple):
    """An IDX dataset: title, folder names, https mirrors, per-file tables, class names.

    ``md5s`` and ``sizes`` are those of the canonical ``.gz`` files (checked on
    download); ``sha256s`` are those of the decompressed bytes (checked on
    every load, so a recompressed copy of the same data passes).
    """

    title: str
    dirs: tuple[str, ...]
    mirrors: tuple[str, ...]
    md5s: dict
    sizes: dict
    sha256s: dict
    classes: tuple[str, ...]


MNIST = IdxSource(
    "MNIST", ("mnist", "MNIST/raw"),
    ("https://ossci-datasets.s3.amazonaws.com/mnist/",
     "https://storage.googleapis.com/cvdf-datasets/mnist/"),
    {"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
     "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
     "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
     "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"},
    {"train-images-idx3-ubyte.gz": 9912422, "train-labels-idx1-ubyte.gz": 28881,
     "t10k-images-idx3-ubyte.gz": 1648877, "t10k-labels-idx1-ubyte.gz": 4542},
    {"train-images-idx3-ubyte.gz":
         "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
     "train-labels-idx1-ubyte.gz":
         "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
     "t10k-images-idx3-ubyte.gz":
         "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
     "t10k-labels-idx1-ubyte.gz":
         "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"},
    tuple("0123456789"))

FASHION_MNIST = IdxSource(
    "Fashion-MNIST", ("fashion-mnist", "FashionMNIST/raw"),
    ("https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
     "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"),
    {"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
     "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
     "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
     "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"},
    {"train-images-idx3-ubyte.gz": 26421880, "train-labels-idx1-ubyte.gz": 29515,
     "t10k-images-idx3-ubyte.gz": 4422102, "t10k-labels-idx1-ubyte.gz": 5148},
    {"train-images-idx3-ubyte.gz":
         "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
     "train-labels-idx1-ubyte.gz":
         "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
     "t10k-images-idx3-ubyte.gz":
         "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
     "t10k-labels-idx1-ubyte.gz":
         "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"},
    ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
     "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"))


@functools.lru_cache(maxsize=8)
def _decode(images_key: tuple, labels_key: tuple, n_classes: int):
    """Read and cross-check one split: images (N, 1, 28, 28), labels (N,), their sha256s.

    The arrays are uint8 and read-only; the sha256s are of the decompressed files.
    """
    images, images_sha256 = load_idx(images_key[0], IMAGES_MAGIC)
    labels, labels_sha256 = load_idx(labels_key[0], LABELS_MAGIC)
    if images.shape[1:] != (28, 28):
        raise CorruptDataError(f"{images_key[0]}: images of shape {images.shape[1:]}, "
                               f"expected (28, 28)")
    if len(images) != len(labels):
        raise CorruptDataError(f"{images_key[0]} holds {len(images)} images but "
                               f"{labels_key[0]} holds {len(labels)} labels")
    if labels.size and labels.max() >= n_classes:
        raise CorruptDataError(f"{labels_key[0]}: label {labels.max()} found, "
                               f"expected labels 0..{n_classes - 1}")
    return images[:, np.newaxis], labels, (images_sha256, labels_sha256)


def _identify(sha256: str) -> str:
    """Which known file has this content, e.g. "Fashion-MNIST's train-images-idx3-ubyte.gz"."""
    for source in (MNIST, FASHION_MNIST):
        for name, known in source.sha256s.items():
            if known == sha256:
                return f"{source.title}'s {name}"
    return "no known file"


def _check_content(source: IdxSource, name: str, path, sha256: str) -> None:
    """Raise ``CorruptDataError`` unless ``path`` (decompressed) has ``source.sha256s[name]``."""
    expected = source.sha256s[name]
    if sha256 != expected:
        raise CorruptDataError(
            f"{path}: expected {source.title}'s {name} (sha256 of the decompressed "
            f"bytes {expected}), found the content of {_identify(sha256)} (sha256 "
            f"{sha256}). Replace it with the {source.title} file (see data/README.md).")


def load_idx_dataset(source: IdxSource, split: str, root=None, download=True) -> Dataset:
    """Locate (or download) and decode one split of an IDX dataset, both files from one folder."""
    if not isinstance(split, str) or split not in SPLIT_FILES:
        raise ValueError(f"{source.title}: split must be 'train' or 'test', got {split!r}")
    expected = [name for pair in SPLIT_FILES.values() for name in pair]
    names = SPLIT_FILES[split]
    remotes = [RemoteFile(name, source.md5s[name], source.sizes[name],
                          tuple(m + name for m in source.mirrors)) for name in names]
    paths = locate_together(source.title, remotes, source.dirs, root, download, expected)
    images, labels, digests = _decode(file_key(paths[0]), file_key(paths[1]),
                                      len(source.classes))
    for name, path, sha256 in zip(names, paths, digests):
        _check_content(source, name, path, sha256)
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
