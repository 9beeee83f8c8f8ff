"""Tests for vaecore.data.cifar on tiny synthetic archives in both layouts.

Synthetic official-layout files are read only once ``trust`` has put their md5s
in ``OFFICIAL_MD5`` (the documented way; the real table holds the official md5s).
"""
import gzip
import hashlib
import io
import os
import pickle
import re
import shlex
import socket
import tarfile
import urllib.error

import numpy as np
import pytest
import torch

import vaecore.data.cifar as cifar_module
import vaecore.data.cifar_files as cifar_files
import vaecore.data.download as download_module
import vaecore.data.locate as locate_module
from vaecore.data import CIFAR10_CLASSES, CorruptDataError, DataNotFoundError, cifar10
from vaecore.data.cifar_files import BATCHES
from vaecore.data.locate import ENV_VAR


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    def _offline(url, timeout):
        raise urllib.error.URLError(socket.gaierror(-3, "Temporary failure in name resolution"))
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(locate_module, "_repo_data_dir", lambda: None)
    monkeypatch.setattr(download_module, "_fetch", _offline)
    monkeypatch.setattr(download_module, "_RETRY_DELAY_S", 0.0)


def write_official(folder, seed=0):
    """``cifar-10-batches-py/`` with official-style pickles; return {split: (images, labels)}."""
    rng = np.random.default_rng(seed)
    batches = folder / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    arrays = {}
    for split, names in BATCHES.items():
        parts = []
        for name in names:
            data = rng.integers(0, 256, (10, 3072), dtype=np.uint8)
            labels = rng.permutation(10).tolist()  # every class in every batch
            (batches / name).write_bytes(pickle.dumps(
                {b"batch_label": name.encode(), b"data": data, b"labels": labels}, protocol=2))
            parts.append((data, labels))
        arrays[split] = (np.concatenate([d for d, _ in parts]).reshape(-1, 3, 32, 32),
                         np.concatenate([lab for _, lab in parts]))
    return batches, arrays


def trust(monkeypatch, *paths):
    """Accept these synthetic files (or the files in these folders) as the official ones."""
    for path in paths:
        for file in (sorted(path.iterdir()) if path.is_dir() else [path]):
            monkeypatch.setitem(cifar_files.OFFICIAL_MD5, file.name,
                                hashlib.md5(file.read_bytes()).hexdigest())


def write_archive(path, batches):
    """A reproducible ``cifar-10-python.tar.gz`` (fixed mtimes) of the files in ``batches``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for file in sorted(batches.iterdir()):
            info = tarfile.TarInfo(f"cifar-10-batches-py/{file.name}")
            info.size, info.mtime = file.stat().st_size, 0
            tar.addfile(info, io.BytesIO(file.read_bytes()))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(buffer.getvalue(), mtime=0))
    return path


def write_npz(path, seed=0, train_ids=(2, 7), n=3):
    """A bird/horse-only train split and an all-class test split, images (n, 32, 32, 3)."""
    rng = np.random.default_rng(seed)
    y_train = np.repeat(np.array(train_ids, dtype=np.uint8), n)
    y_test = np.repeat(np.arange(10, dtype=np.uint8), n)
    arrays = dict(x_train=rng.integers(0, 256, (len(y_train), 32, 32, 3), dtype=np.uint8),
                  y_train=y_train, y_test=y_test, class_names=np.array(CIFAR10_CLASSES),
                  x_test=rng.integers(0, 256, (len(y_test), 32, 32, 3), dtype=np.uint8))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return arrays


def test_extracted_folder_channel_order_and_labels(tmp_path, monkeypatch):
    batches, arrays = write_official(tmp_path)
    trust(monkeypatch, batches)
    ds = cifar10("train", root=tmp_path)
    images, labels = arrays["train"]
    assert ds.x.shape == (50, 3, 32, 32) and ds.x.dtype == torch.float32
    torch.testing.assert_close(ds.x, torch.from_numpy(images).float() / 255)
    torch.testing.assert_close(ds.y, torch.from_numpy(labels).long())
    assert ds.classes == CIFAR10_CLASSES


def test_tar_gz_equals_extracted_folder(tmp_path, monkeypatch):
    batches, arrays = write_official(tmp_path / "src")
    (tmp_path / "data" / "cifar10").mkdir(parents=True)
    with tarfile.open(tmp_path / "data" / "cifar10" / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(batches, arcname="cifar-10-batches-py")
    trust(monkeypatch, batches, tmp_path / "data" / "cifar10" / "cifar-10-python.tar.gz")
    ds = cifar10("test", root=tmp_path / "data")
    torch.testing.assert_close(ds.y, torch.from_numpy(arrays["test"][1]).long())
    torch.testing.assert_close(ds.x, torch.from_numpy(arrays["test"][0]).float() / 255)


def test_npz_channel_order_and_class_subset(tmp_path):
    arrays = write_npz(tmp_path / "cifar10" / "subset.npz")
    ds = cifar10("train", classes=("horse", "bird"), root=tmp_path)
    assert ds.classes == ("horse", "bird")
    torch.testing.assert_close(ds.y, torch.tensor([1, 1, 1, 0, 0, 0]))  # bird=2 first in file
    expected = torch.from_numpy(arrays["x_train"]).permute(0, 3, 1, 2).float() / 255
    torch.testing.assert_close(ds.x, expected)


def test_subset_of_full_test_split(tmp_path):
    arrays = write_npz(tmp_path / "cifar10" / "subset.npz", seed=1)
    ds = cifar10("test", classes=("truck", "airplane"), root=tmp_path)
    keep = np.isin(arrays["y_test"], [9, 0])
    torch.testing.assert_close(ds.y, torch.tensor([1, 1, 1, 0, 0, 0]))
    torch.testing.assert_close(ds.x * 255, torch.from_numpy(
        arrays["x_test"][keep]).permute(0, 3, 1, 2).float())


def test_npz_lacking_a_class_names_what_it_has(tmp_path):
    write_npz(tmp_path / "cifar10" / "subset.npz")
    with pytest.raises(DataNotFoundError, match=r"no images of \['cat'\].*\('bird', 'horse'\)"):
        cifar10("train", classes=("bird", "cat"), root=tmp_path)
    with pytest.raises(DataNotFoundError, match=r"only \('bird', 'horse'\)"):
        cifar10("train", root=tmp_path)


def test_official_files_win_over_npz_in_a_folder(tmp_path, monkeypatch):
    write_npz(tmp_path / "cifar10" / "subset.npz")
    batches, arrays = write_official(tmp_path / "cifar10")
    trust(monkeypatch, batches)
    ds = cifar10("test", root=tmp_path)
    torch.testing.assert_close(ds.y, torch.from_numpy(arrays["test"][1]).long())


@pytest.mark.parametrize("classes", ["bird", ("bird", "dragon"), ("bird", "bird"), (), (2, 7)])
def test_bad_classes(tmp_path, classes):
    with pytest.raises(ValueError, match="classes"):
        cifar10("train", classes=classes, root=tmp_path)


def test_unknown_split(tmp_path):
    with pytest.raises(ValueError, match="split"):
        cifar10("valid", root=tmp_path)


def test_missing_offline(tmp_path):
    with pytest.raises(DataNotFoundError) as info:
        cifar10(root=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "cifar10" / "cifar-10-python.tar.gz") in message
    assert str(tmp_path / "cifar10" / "*.npz") in message and "name resolution" in message


def test_damaged_tar_and_pickle_and_npz(tmp_path):
    cifar_module._decode.cache_clear()
    (tmp_path / "a" / "cifar10").mkdir(parents=True)
    (tmp_path / "a" / "cifar10" / "cifar-10-python.tar.gz").write_bytes(b"\x1f\x8bjunk")
    with pytest.raises(CorruptDataError, match="cifar-10-python.tar.gz"):
        cifar10(root=tmp_path / "a")
    batches, _ = write_official(tmp_path / "b")
    (batches / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(CorruptDataError, match="test_batch"):
        cifar10("test", root=tmp_path / "b")
    (tmp_path / "c" / "cifar10").mkdir(parents=True)
    np.savez(tmp_path / "c" / "cifar10" / "bad.npz", x_test=np.zeros((2, 32, 32, 3), np.uint8))
    with pytest.raises(CorruptDataError, match=r"missing"):
        cifar10("test", root=tmp_path / "c")


def test_npz_needing_pickle_is_refused(tmp_path):
    path = tmp_path / "cifar10" / "objects.npz"
    path.parent.mkdir()
    np.savez(path, x_test=np.zeros((1, 32, 32, 3), np.uint8), y_test=np.zeros(1, np.uint8),
             class_names=np.array(list(CIFAR10_CLASSES), dtype=object))
    with pytest.raises(CorruptDataError, match="objects.npz"):
        cifar10("test", root=tmp_path)


class _RunsCode:
    """A pickle that, when loaded by plain ``pickle``, runs a shell command."""

    def __init__(self, marker):
        self.command = f"touch {shlex.quote(str(marker))}"

    def __reduce__(self):
        return os.system, (self.command,)


def _plant(batches, marker, name="test_batch"):
    """Replace one batch by a pickle whose loading would create ``marker``."""
    (batches / name).write_bytes(pickle.dumps(
        {b"data": _RunsCode(marker), b"labels": [0]}, protocol=2))
    return batches / name


def test_planted_pickle_is_refused_by_its_md5_and_never_run(tmp_path):
    batches, _ = write_official(tmp_path / "data")
    marker = tmp_path / "code-ran"
    _plant(batches, marker)
    with pytest.raises(CorruptDataError) as info:
        cifar10("test", root=tmp_path / "data")
    assert not marker.exists(), "the planted pickle ran its code"
    assert re.search(r"cifar-10-batches-py:test_batch: md5 [0-9a-f]{32}, expected "
                     r"40351d587109b95175f43aff81a1287e", str(info.value))


def test_planted_pickle_passing_the_md5_is_refused_by_the_unpickler(tmp_path, monkeypatch):
    batches, _ = write_official(tmp_path / "data")
    marker = tmp_path / "code-ran"
    _plant(batches, marker)
    trust(monkeypatch, batches)  # as if the checksum table itself had been tampered with
    with pytest.raises(CorruptDataError) as info:
        cifar10("test", root=tmp_path / "data")
    assert not marker.exists(), "the planted pickle ran its code"
    assert re.search(r"test_batch: .*global (posix|os)\.system, which is refused",
                     str(info.value))


def test_planted_pickle_in_the_archive_is_never_run(tmp_path, monkeypatch):
    batches, _ = write_official(tmp_path / "src")
    marker = tmp_path / "code-ran"
    _plant(batches, marker)
    archive = write_archive(tmp_path / "data" / "cifar10" / "cifar-10-python.tar.gz", batches)
    with pytest.raises(CorruptDataError) as info:
        cifar10("test", root=tmp_path / "data")
    assert not marker.exists(), "the planted pickle ran its code"
    assert re.search(r"cifar-10-python.tar.gz: md5 .*expected c58f30108f718f92721af3b95e74349a",
                     str(info.value))
    trust(monkeypatch, archive)  # the archive passes; its test_batch still does not
    with pytest.raises(CorruptDataError, match=r"tar.gz:test_batch: md5"):
        cifar10("test", root=tmp_path / "data")
    assert not marker.exists(), "the planted pickle ran its code"


@pytest.mark.parametrize("blob, names", [
    (b"cnumpy.core.multiarray\nno_such_function\n)R.", "numpy.core.multiarray.no_such_function"),
    (b"cvaecore_no_such_module\nThing\n)R.", "vaecore_no_such_module.Thing"),
])
def test_pickle_naming_a_missing_global_is_a_clear_error(tmp_path, monkeypatch, blob, names):
    batches, _ = write_official(tmp_path)
    (batches / "test_batch").write_bytes(blob)
    trust(monkeypatch, batches)
    with pytest.raises(CorruptDataError, match=rf"cifar-10-batches-py:test_batch: .*global "
                                               rf"{names}, which is refused.*expected a pickled"):
        cifar10("test", root=tmp_path)


def test_python2_numpy1_style_batches_load(tmp_path, monkeypatch):
    """Official batches name ``numpy.core.multiarray`` (numpy 1), not ``numpy._core``."""
    batches, arrays = write_official(tmp_path)
    blob = (batches / "test_batch").read_bytes()
    (batches / "test_batch").write_bytes(blob.replace(b"numpy._core.", b"numpy.core."))
    trust(monkeypatch, batches)
    ds = cifar10("test", root=tmp_path)
    torch.testing.assert_close(ds.x, torch.from_numpy(arrays["test"][0]).float() / 255)


def _archive_with_trusted_members(tmp_path, monkeypatch):
    batches, arrays = write_official(tmp_path / "src")
    archive = write_archive(tmp_path / "data" / "cifar10" / "cifar-10-python.tar.gz", batches)
    trust(monkeypatch, batches, archive)
    return archive, arrays


@pytest.mark.parametrize("fraction", [i / 16 for i in range(16)] + [1.0])
def test_flipped_byte_in_archive_is_refused(tmp_path, monkeypatch, fraction):
    archive, arrays = _archive_with_trusted_members(tmp_path, monkeypatch)
    data = bytearray(archive.read_bytes())
    where = min(int(fraction * len(data)), len(data) - 1)
    data[where] ^= 0x10
    archive.write_bytes(bytes(data))
    with pytest.raises(CorruptDataError, match="cifar-10-python.tar.gz"):
        cifar10("test", root=tmp_path / "data")


@pytest.mark.parametrize("where", [-8, -5, -1])  # the gzip trailer: CRC-32, then the length
def test_gzip_trailer_is_checked_even_if_the_md5_is_trusted(tmp_path, monkeypatch, where):
    archive, _ = _archive_with_trusted_members(tmp_path, monkeypatch)
    data = bytearray(archive.read_bytes())
    data[where] ^= 0x01
    archive.write_bytes(bytes(data))
    trust(monkeypatch, archive)  # the md5 passes; only reading to the end can catch it
    with pytest.raises(CorruptDataError, match=r"cifar-10-python.tar.gz: damaged tar.gz"):
        cifar10("test", root=tmp_path / "data")


def test_npz_with_more_images_per_class_than_cifar_has_is_refused(tmp_path):
    path = tmp_path / "cifar10" / "inflated.npz"
    path.parent.mkdir()
    y = np.zeros(1001, np.uint8)
    np.savez(path, x_test=np.zeros((1001, 32, 32, 3), np.uint8), y_test=y,
             class_names=np.array(CIFAR10_CLASSES))
    with pytest.raises(CorruptDataError, match=r"inflated.npz: \[1001, 0, .*between 1 and 1000"):
        cifar10("test", classes=("airplane",), root=tmp_path)


def test_download_is_https_and_size_capped():
    assert cifar_module.CIFAR10_REMOTE.urls[0].startswith("https://")
    assert cifar_module.CIFAR10_REMOTE.size == 170498071
