"""The IDX file format of MNIST and Fashion-MNIST: read (checked) and write.

An IDX file is a 4-byte magic number ``0x0000TTNN`` (``TT = 0x08``: unsigned
bytes; ``NN``: number of dimensions), then each dimension as a big-endian
uint32, then the values in row-major order. Image files have magic ``0x803``
(N, rows, cols), label files ``0x801`` (N,). Files may be gzip-compressed; a
file is treated as gzip when it starts with the gzip header bytes.

Reading checks the structure: gzip integrity (CRC and length), the magic
number, and that the declared dimensions match the number of bytes; any
failure raises ``CorruptDataError``. ``load_idx`` also returns the sha256 of
the decompressed bytes, which identifies the content even when a copy was
recompressed (its gzip bytes and md5 then differ while the data are identical).
"""
from __future__ import annotations

import gzip
import hashlib
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from vaecore.data.errors import CorruptDataError

__all__ = ["IMAGES_MAGIC", "LABELS_MAGIC", "read_idx", "load_idx", "parse_idx", "write_idx"]

IMAGES_MAGIC = 0x803
LABELS_MAGIC = 0x801
_GZIP_HEADER = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped if it is gzip-compressed."""
    raw = path.read_bytes()
    if not raw.startswith(_GZIP_HEADER):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise CorruptDataError(f"{path}: damaged gzip data ({err})") from err


def parse_idx(data: bytes, source="IDX data") -> np.ndarray:
    """Decode IDX bytes to a read-only uint8 array shaped as its header declares."""
    if len(data) < 4 or data[:3] != b"\x00\x00\x08":
        raise CorruptDataError(f"{source}: not an IDX file of unsigned bytes "
                               f"(first bytes {data[:4].hex() or 'missing'}, "
                               f"expected 000008 then the number of dimensions)")
    ndim = data[3]
    start = 4 + 4 * ndim
    if len(data) < start:
        raise CorruptDataError(f"{source}: truncated header ({len(data)} bytes, "
                               f"{start} needed for {ndim} dimensions)")
    dims = struct.unpack(f">{ndim}I", data[4:start])
    if len(data) - start != math.prod(dims):
        raise CorruptDataError(f"{source}: header declares shape {dims}, i.e. "
                               f"{math.prod(dims)} bytes of data, but the file holds "
                               f"{len(data) - start} (truncated or padded)")
    return np.frombuffer(data, np.uint8, offset=start).reshape(dims)


def _checked_bytes(path: Path, magic: int | None) -> bytes:
    """The decompressed bytes, after checking the magic number if one is given."""
    data = _read_bytes(path)
    found = int.from_bytes(data[:4], "big")
    if magic is not None and len(data) >= 4 and found != magic:
        raise CorruptDataError(f"{path}: wrong IDX magic number 0x{found:x}, "
                               f"expected 0x{magic:x} "
                               f"({'images' if magic == IMAGES_MAGIC else 'labels'})")
    return data


def read_idx(path, magic: int | None = None) -> np.ndarray:
    """Read an IDX file (``.gz`` or not); if ``magic`` is given, require that magic number.

    Returns a read-only uint8 array of the shape declared in the file.
    Raises ``CorruptDataError`` naming the file and what was wrong.
    """
    path = Path(path)
    return parse_idx(_checked_bytes(path, magic), path)


def load_idx(path, magic: int | None = None) -> tuple[np.ndarray, str]:
    """``read_idx``, plus the sha256 (hex) of the decompressed bytes, which names the content."""
    path = Path(path)
    data = _checked_bytes(path, magic)
    return parse_idx(data, path), hashlib.sha256(data).hexdigest()


def write_idx(path, array) -> Path:
    """Write a uint8 array as an IDX file, gzip-compressed if ``path`` ends in ``.gz``."""
    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8 or not 1 <= array.ndim <= 255:
        raise ValueError(f"write_idx: expected a uint8 array with 1 to 255 dimensions, "
                         f"got {array.dtype} with shape {array.shape}")
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.tobytes()
    path = Path(path)
    path.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)
    return path
