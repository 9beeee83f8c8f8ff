"""Readers for the two CIFAR-10 file layouts, each returning checked uint8 arrays.

1. The official python archive ``cifar-10-python.tar.gz`` (or its extracted
   folder ``cifar-10-batches-py/``): pickled batches ``data_batch_1..5`` and
   ``test_batch``, each a dict with ``b"data"`` (n, 3072) uint8 in channel-major
   order and ``b"labels"``. These are read with ``pickle`` (``encoding="bytes"``),
   the format's official reader; pickle can run code, so use it only on the
   official files.
2. A ``.npz`` with arrays ``x_train``, ``y_train``, ``x_test``, ``y_test``
   (images (n, 32, 32, 3) uint8 RGB, labels = class ids) and ``class_names``,
   read with ``np.load`` without pickle.

Both return images (n, 3, 32, 32) and labels (n,) as uint8 arrays, or raise
``CorruptDataError`` naming the file and what was wrong.
"""
from __future__ import annotations

import pickle
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np

from vaecore.data.errors import CorruptDataError

__all__ = ["CIFAR10_CLASSES", "BATCHES", "read_official", "read_npz"]

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
BATCHES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}


def _check(images, labels, source) -> None:
    """Raise ``CorruptDataError`` unless images are (n, 3, 32, 32) uint8 with n labels 0..9."""
    if images.dtype != np.uint8 or images.shape[1:] != (3, 32, 32):
        raise CorruptDataError(f"{source}: images {images.dtype} {images.shape}, "
                               f"expected uint8 (n, 3, 32, 32)")
    if labels.shape != (len(images),):
        raise CorruptDataError(f"{source}: {labels.shape} labels for {len(images)} images")
    if labels.size and (labels.min() < 0 or labels.max() >= len(CIFAR10_CLASSES)):
        raise CorruptDataError(f"{source}: labels outside 0..9")


def _members(path: Path, wanted) -> dict:
    """The bytes of the wanted batch files, from the extracted folder or the tar.gz."""
    if path.is_dir():
        return {name: (path / name).read_bytes() for name in wanted if (path / name).is_file()}
    blobs = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                name = PurePosixPath(member.name).name
                if member.isfile() and name in wanted:
                    blobs[name] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
        raise CorruptDataError(f"{path}: damaged tar.gz archive ({err})") from err
    return blobs


def _unpickle_batch(blob: bytes, source: str):
    """Decode one official batch into images (n, 3, 32, 32) and labels (n,)."""
    try:
        batch = pickle.loads(blob, encoding="bytes")
        data = np.asarray(batch[b"data"])
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, TypeError, KeyError, ValueError) as err:
        raise CorruptDataError(f"{source}: not a CIFAR-10 batch ({type(err).__name__}: "
                               f"{err})") from err
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise CorruptDataError(f"{source}: data of shape {data.shape}, expected (n, 3072)")
    images = data.reshape(-1, 3, 32, 32)
    _check(images, labels, source)
    return images, labels


def read_official(path, split: str):
    """Read one split from ``cifar-10-python.tar.gz`` or ``cifar-10-batches-py/``."""
    path = Path(path)
    blobs = _members(path, BATCHES[split])
    missing = [name for name in BATCHES[split] if name not in blobs]
    if missing:
        raise CorruptDataError(f"{path}: batch files {missing} are missing")
    parts = [_unpickle_batch(blobs[name], f"{path}:{name}") for name in BATCHES[split]]
    return (np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]))


def _class_names(array) -> tuple[str, ...]:
    return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in array.tolist())


def read_npz(path, split: str):
    """Read one split from a ``.npz`` holding ``x_<split>``, ``y_<split>``, ``class_names``."""
    keys = (f"x_{split}", f"y_{split}", "class_names")
    try:
        with np.load(path) as archive:
            absent = [k for k in keys if k not in archive.files]
            if absent:
                raise CorruptDataError(f"{path}: arrays {absent} are missing "
                                       f"(it has {archive.files})")
            x, y, names = (archive[k] for k in keys)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as err:
        if isinstance(err, CorruptDataError):
            raise
        raise CorruptDataError(f"{path}: unreadable npz ({err})") from err
    if _class_names(names) != CIFAR10_CLASSES:
        raise CorruptDataError(f"{path}: class_names {_class_names(names)}, "
                               f"expected {CIFAR10_CLASSES}")
    if x.ndim != 4 or x.shape[-1] != 3:
        raise CorruptDataError(f"{path}: x_{split} has shape {x.shape}, expected (n, 32, 32, 3)")
    if y.dtype.kind not in "iu":
        raise CorruptDataError(f"{path}: y_{split} has dtype {y.dtype}, expected integers")
    images = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    labels = y.astype(np.int64)
    _check(images, labels, f"{path}:x_{split}")
    return images, labels
