"""Readers for the two CIFAR-10 file layouts, each returning checked uint8 arrays.

1. The official python archive ``cifar-10-python.tar.gz`` (or its extracted
   folder ``cifar-10-batches-py/``): pickled batches ``data_batch_1..5`` and
   ``test_batch``, each a dict with ``b"data"`` (n, 3072) uint8 in channel-major
   order and ``b"labels"``. Pickle can run code, so nothing is unpickled unless
   its md5 is the official one in ``OFFICIAL_MD5`` (the archive's, then each
   batch's), and even then only with ``vaecore.data.safe_pickle``, which
   rebuilds numpy arrays and plain data and refuses any other global. The
   archive's gzip stream is read to its end, so its CRC is always checked.
2. A ``.npz`` with arrays ``x_train``, ``y_train``, ``x_test``, ``y_test``
   (images (n, 32, 32, 3) uint8 RGB, labels = class ids) and ``class_names``.
   It has no official checksum; it is read with ``np.load(allow_pickle=False)``
   (so it cannot run code) and checked for its keys, the 10 class names in
   order, shapes, dtypes (uint8 images, integer labels), labels in 0..9, as
   many labels as images, and at most the official count per class (5000 in
   train, 1000 in test).

Both return images (n, 3, 32, 32) and labels (n,) as uint8 arrays, or raise
``CorruptDataError`` naming the file and what was wrong. Tests of synthetic
official-layout files add their md5s to ``OFFICIAL_MD5`` (monkeypatched).
"""
from __future__ import annotations

import gzip
import hashlib
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np

from vaecore.data import safe_pickle
from vaecore.data.errors import CorruptDataError

__all__ = ["CIFAR10_CLASSES", "BATCHES", "ARCHIVE", "OFFICIAL_MD5", "read_official",
           "read_npz"]

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
BATCHES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
ARCHIVE = "cifar-10-python.tar.gz"
# The official md5s (https://www.cs.toronto.edu/~kriz/cifar.html; torchvision checks the same).
OFFICIAL_MD5 = {ARCHIVE: "c58f30108f718f92721af3b95e74349a",
                "data_batch_1": "c99cafc152244af753f735de768cd75f",
                "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
                "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
                "data_batch_4": "634d18415352ddfa80567beed471001a",
                "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
                "test_batch": "40351d587109b95175f43aff81a1287e"}
_PER_CLASS = {"train": 5000, "test": 1000}
_CHUNK = 1 << 20


def _check(images, labels, source) -> None:
    """Raise ``CorruptDataError`` unless images are (n, 3, 32, 32) uint8 with n labels 0..9."""
    if images.dtype != np.uint8 or images.shape[1:] != (3, 32, 32):
        raise CorruptDataError(f"{source}: images {images.dtype} {images.shape}, "
                               f"expected uint8 (n, 3, 32, 32)")
    if labels.shape != (len(images),):
        raise CorruptDataError(f"{source}: {labels.shape} labels for {len(images)} images")
    if labels.size and (labels.min() < 0 or labels.max() >= len(CIFAR10_CLASSES)):
        raise CorruptDataError(f"{source}: labels outside 0..9")


def _verify_md5(name: str, digest, source) -> None:
    """Raise ``CorruptDataError`` unless ``digest`` (a hashlib md5) is ``OFFICIAL_MD5[name]``."""
    expected, got = OFFICIAL_MD5[name], digest.hexdigest()
    if got != expected:
        raise CorruptDataError(
            f"{source}: md5 {got}, expected {expected} (the official {name}), so the "
            f"file is damaged or not the official one. It is not read, since a changed "
            f"pickle could run code; replace it with the official file (see data/README.md).")


def _file_md5(path: Path):
    """The md5 of a file, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)  # the official checksum is an md5
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest


def _from_archive(path: Path, wanted) -> dict:
    """The bytes of the wanted batch files in the (md5-checked) tar.gz, CRC checked."""
    _verify_md5(ARCHIVE, _file_md5(path), path)
    blobs = {}
    try:
        with gzip.open(path, "rb") as stream:
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                for member in tar:
                    name = PurePosixPath(member.name).name
                    if member.isfile() and name in wanted:
                        blobs[name] = tar.extractfile(member).read()
            while stream.read(_CHUNK):  # to the end: gzip checks its CRC and length there
                pass
    except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
        raise CorruptDataError(f"{path}: damaged tar.gz archive ({err})") from err
    return blobs


def _members(path: Path, wanted) -> dict:
    """The bytes of the wanted batch files, from the extracted folder or the tar.gz."""
    if path.is_dir():
        return {name: (path / name).read_bytes() for name in wanted if (path / name).is_file()}
    return _from_archive(path, wanted)


def _unpickle_batch(blob: bytes, name: str, source: str):
    """Check one official batch's md5, then decode it: images (n, 3, 32, 32), labels (n,)."""
    _verify_md5(name, hashlib.md5(blob, usedforsecurity=False), source)
    batch = safe_pickle.loads(blob, source)
    try:
        data = np.asarray(batch[b"data"])
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (TypeError, KeyError, ValueError, IndexError) as err:
        raise CorruptDataError(f"{source}: not a CIFAR-10 batch ({type(err).__name__}: "
                               f"{err}); expected a dict with b'data' and b'labels'") from err
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
    parts = [_unpickle_batch(blobs[name], name, f"{path}:{name}") for name in BATCHES[split]]
    return (np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]))


def _class_names(array) -> tuple[str, ...]:
    return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in array.tolist())


def _load_npz(path, keys) -> list:
    """The arrays ``keys`` of a ``.npz``, loaded without pickle."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            absent = [k for k in keys if k not in archive.files]
            if absent:
                raise CorruptDataError(f"{path}: arrays {absent} are missing "
                                       f"(it has {archive.files})")
            return [archive[k] for k in keys]
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as err:
        if isinstance(err, CorruptDataError):
            raise
        raise CorruptDataError(f"{path}: unreadable npz ({err})") from err


def _check_counts(labels, path, split: str) -> None:
    """At most the official number of images per class (5000 train, 1000 test), at least one."""
    counts = np.bincount(labels, minlength=len(CIFAR10_CLASSES))
    if not counts.sum() or counts.max() > _PER_CLASS[split]:
        raise CorruptDataError(f"{path}: {counts.tolist()} {split} images per class, "
                               f"expected between 1 and {_PER_CLASS[split]} per class")


def read_npz(path, split: str):
    """Read one split from a ``.npz`` holding ``x_<split>``, ``y_<split>``, ``class_names``."""
    x, y, names = _load_npz(path, (f"x_{split}", f"y_{split}", "class_names"))
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
    _check_counts(labels, path, split)
    return images, labels
