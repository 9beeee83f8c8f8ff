"""Tests for vaecore.data.idx: the IDX reader checks structure, the writer round-trips."""
import gzip
import struct

import numpy as np
import pytest

from vaecore.data.errors import CorruptDataError
from vaecore.data.idx import IMAGES_MAGIC, LABELS_MAGIC, parse_idx, read_idx, write_idx


def _idx_bytes(array: np.ndarray) -> bytes:
    """IDX bytes written by hand from the format's definition (independent of write_idx)."""
    header = struct.pack(">I", 0x800 + array.ndim) + b"".join(
        struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)


@pytest.mark.parametrize("compress", [True, False])
def test_read_hand_written_file(tmp_path, images, compress):
    data = _idx_bytes(images)
    path = tmp_path / ("img.gz" if compress else "img")
    path.write_bytes(gzip.compress(data) if compress else data)
    out = read_idx(path, IMAGES_MAGIC)
    assert out.dtype == np.uint8 and out.shape == (5, 28, 28)
    np.testing.assert_array_equal(out, images)


def test_labels_file_and_read_only(tmp_path):
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    path = tmp_path / "lab.gz"
    path.write_bytes(gzip.compress(_idx_bytes(labels)))
    out = read_idx(path, LABELS_MAGIC)
    np.testing.assert_array_equal(out, labels)
    assert not out.flags.writeable


def test_write_round_trip_and_format(tmp_path, images):
    path = write_idx(tmp_path / "img.gz", images)
    assert gzip.decompress(path.read_bytes()) == _idx_bytes(images)
    np.testing.assert_array_equal(read_idx(path), images)
    raw = write_idx(tmp_path / "img", images)
    assert raw.read_bytes() == _idx_bytes(images)


def test_truncated_data_is_corrupt(tmp_path, images):
    path = tmp_path / "img.gz"
    path.write_bytes(gzip.compress(_idx_bytes(images)[:-10]))
    with pytest.raises(CorruptDataError, match=r"img\.gz.*\(5, 28, 28\).*3910"):
        read_idx(path, IMAGES_MAGIC)


def test_padded_data_is_corrupt(images):
    with pytest.raises(CorruptDataError, match="truncated or padded"):
        parse_idx(_idx_bytes(images) + b"\x00", "x")


def test_truncated_header_is_corrupt():
    with pytest.raises(CorruptDataError, match="truncated header"):
        parse_idx(b"\x00\x00\x08\x03\x00\x00", "x")


def test_wrong_magic_is_corrupt(tmp_path, images):
    path = write_idx(tmp_path / "img.gz", images)
    with pytest.raises(CorruptDataError, match=r"wrong IDX magic number 0x803, expected 0x801"):
        read_idx(path, LABELS_MAGIC)


def test_not_idx_at_all_is_corrupt(tmp_path):
    path = tmp_path / "page.gz"
    path.write_bytes(gzip.compress(b"<html>404 Not Found</html>"))
    with pytest.raises(CorruptDataError, match="not an IDX file"):
        read_idx(path)


def test_bad_gzip_is_corrupt(tmp_path, images):
    good = gzip.compress(_idx_bytes(images))
    cut = tmp_path / "cut.gz"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(CorruptDataError, match=r"cut\.gz: damaged gzip"):
        read_idx(cut)
    flipped = bytearray(good)
    flipped[-8] ^= 0xFF  # the CRC32 of the uncompressed data
    bad_crc = tmp_path / "crc.gz"
    bad_crc.write_bytes(bytes(flipped))
    with pytest.raises(CorruptDataError, match="damaged gzip"):
        read_idx(bad_crc)


def test_write_rejects_non_uint8(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        write_idx(tmp_path / "x", np.zeros((2, 2), dtype=np.float32))
