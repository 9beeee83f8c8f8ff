"""CIFAR-10: 32x32 colour images in 10 classes, optionally a subset of classes.

Accepted files, searched root by root in the order of ``vaecore.data.locate``
(in ``<root>/cifar10/`` and ``<root>/``): the extracted official folder
``cifar-10-batches-py/``, the official ``cifar-10-python.tar.gz``, then
``<root>/cifar10/*.npz`` (the first in sorted order). If none is found the
official archive is downloaded (size- and md5-checked). Official files are
read only when their md5s are the official ones, and unpickled without the
power to run code; an ``.npz`` is read without pickle and checked for its
keys, shapes, dtypes, label range and counts (see ``vaecore.data.cifar_files``).
Decoded splits are cached in memory per file; each call returns new tensors.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from vaecore.data.cifar_files import (ARCHIVE, CIFAR10_CLASSES, OFFICIAL_MD5, read_npz,
                                      read_official)
from vaecore.data.dataset import Dataset, from_uint8
from vaecore.data.errors import DataNotFoundError
from vaecore.data.locate import (RemoteFile, download_or_fail, file_key, find_first,
                                 search_roots)

__all__ = ["CIFAR10_CLASSES", "CIFAR10_REMOTE", "find_cifar10", "cifar10"]

CIFAR10_REMOTE = RemoteFile(ARCHIVE, OFFICIAL_MD5[ARCHIVE], 170498071,
                            ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",))
_SUBDIR = "cifar10"
_OFFICIAL = ("cifar-10-batches-py", ARCHIVE)


def find_cifar10(root=None) -> tuple[Path | None, list]:
    """The first CIFAR-10 source on disk (or ``None``) and every place looked at."""
    looked = []
    for folder in search_roots(root):
        path, paths = find_first(_OFFICIAL, (_SUBDIR,), [folder])
        looked += paths
        if path is not None:
            return path, looked
        looked.append(folder / _SUBDIR / "*.npz")
        npz = sorted((folder / _SUBDIR).glob("*.npz"))
        if npz:
            return npz[0], looked
    return None, looked


@functools.lru_cache(maxsize=4)
def _decode(key: tuple, split: str):
    """uint8 images (n, 3, 32, 32) and int64 labels (n,) of one split, read-only."""
    path = Path(key[0])
    reader = read_npz if path.suffix == ".npz" else read_official
    images, labels = reader(path, split)
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def _check_classes(classes) -> tuple[str, ...] | None:
    """``None`` or a tuple of distinct CIFAR-10 class names, else ``ValueError``."""
    if classes is None:
        return None
    if isinstance(classes, str) or not all(isinstance(c, str) for c in classes):
        raise ValueError(f"classes: expected a tuple of class names such as "
                         f"('bird', 'horse'), got {classes!r}")
    classes = tuple(classes)
    unknown = [c for c in classes if c not in CIFAR10_CLASSES]
    if not classes or unknown or len(set(classes)) != len(classes):
        raise ValueError(f"classes: expected distinct names from {CIFAR10_CLASSES}, "
                         f"got {classes!r}")
    return classes


def _select(images, labels, classes, source, split: str) -> Dataset:
    """Keep the requested classes, relabelled 0..k-1 in the order given."""
    names = classes or CIFAR10_CLASSES
    wanted = [CIFAR10_CLASSES.index(c) for c in names]
    present = set(np.unique(labels).tolist())
    missing = [CIFAR10_CLASSES[i] for i in wanted if i not in present]
    if missing:
        has = tuple(CIFAR10_CLASSES[i] for i in sorted(present))
        raise DataNotFoundError(
            f"CIFAR-10: the {split} split in {source} has no images of {missing}; it has "
            f"only {has}. Ask for classes among those, e.g. classes={has!r}, or provide "
            f"the official {CIFAR10_REMOTE.name} (see data/README.md).")
    if classes is None:
        return from_uint8(images, labels, names)
    relabel = np.full(len(CIFAR10_CLASSES), -1)
    relabel[wanted] = np.arange(len(wanted))
    keep = np.isin(labels, wanted)
    return from_uint8(images[keep], relabel[labels[keep]], names)


def cifar10(split: str = "train", classes=None, root=None, download: bool = True) -> Dataset:
    """CIFAR-10 (Krizhevsky, 2009), all classes or the subset ``classes``.

    Returns a ``Dataset``: ``x`` float32 (N, 3, 32, 32) RGB in [0, 1], ``y`` int64
    (N,), ``classes`` the names. With ``classes=("bird", "horse")`` only those
    images are kept and ``y`` is relabelled 0..len(classes)-1 in the order given;
    with ``None``, ``y`` is the CIFAR-10 class id (0 airplane ... 9 truck). N is
    5000 per class (train) or 1000 (test) with the official files. Raises
    ``ValueError`` for an unknown split or class name, ``DataNotFoundError`` if
    no file is found and none can be downloaded, or if the file found lacks a
    requested class (the message names the classes it has), ``CorruptDataError``
    for a damaged file or an official file whose md5 is not the official one.
    """
    if not isinstance(split, str) or split not in ("train", "test"):
        raise ValueError(f"CIFAR-10: split must be 'train' or 'test', got {split!r}")
    classes = _check_classes(classes)
    path, looked = find_cifar10(root)
    if path is None:
        path = download_or_fail(
            "CIFAR-10", CIFAR10_REMOTE, _SUBDIR, root, download, looked,
            (f"{CIFAR10_REMOTE.name} (or its extracted cifar-10-batches-py/)",))
    images, labels = _decode(file_key(path), split)
    return _select(images, labels, classes, path, split)
