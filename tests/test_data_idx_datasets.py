"""Tests for vaecore.data.idx_datasets (mnist, fashion_mnist) on small synthetic IDX files.

Synthetic files pass the content check only once ``trust`` has put their sha256s
in the dataset's table (the documented way to load other IDX files).
"""
import gzip
import hashlib
import os
import socket
import urllib.error

import numpy as np
import pytest
import torch

import vaecore.data.download as download_module
import vaecore.data.locate as locate_module
import vaecore.data.idx_datasets as mnist_module
from vaecore.data import CorruptDataError, DataNotFoundError, fashion_mnist, mnist
from vaecore.data.idx import write_idx
from vaecore.data.locate import ENV_VAR

NAMES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
         "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


def write_set(folder, seed=0, sizes=(6, 4)):
    """Write a tiny MNIST-format set; return {split: (images, labels)}."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, n in zip(("train", "test"), sizes):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        write_idx(folder / NAMES[split][0], images)
        write_idx(folder / NAMES[split][1], labels)
        arrays[split] = images, labels
    return arrays


def trust(monkeypatch, folder, source="MNIST"):
    """Accept the IDX files in ``folder`` as ``source``'s: put their sha256s in its table."""
    table = getattr(mnist_module, source)
    found = {name: hashlib.sha256(gzip.decompress((folder / name).read_bytes())).hexdigest()
             for pair in NAMES.values() for name in pair if (folder / name).exists()}
    monkeypatch.setattr(mnist_module, source,
                        table._replace(sha256s={**table.sha256s, **found}))


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No env var, no repo data/, a temporary home, and no network."""
    def _offline(url, timeout):
        raise urllib.error.URLError(socket.gaierror(-3, "Temporary failure in name resolution"))
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(locate_module, "_repo_data_dir", lambda: None)
    monkeypatch.setattr(download_module, "_fetch", _offline)
    monkeypatch.setattr(download_module, "_RETRY_DELAY_S", 0.0)


@pytest.mark.parametrize("split", ["train", "test"])
def test_values_shapes_dtypes(tmp_path, monkeypatch, split):
    images, labels = write_set(tmp_path / "mnist")[split]
    trust(monkeypatch, tmp_path / "mnist")
    ds = mnist(split, root=tmp_path)
    assert ds.x.dtype == torch.float32 and ds.x.shape == (len(labels), 1, 28, 28)
    assert ds.y.dtype == torch.int64 and ds.classes == tuple("0123456789")
    torch.testing.assert_close(ds.x[:, 0], torch.from_numpy(images).float() / 255)
    torch.testing.assert_close(ds.y, torch.from_numpy(labels).long())


def test_fashion_folder_and_class_names(tmp_path, monkeypatch):
    images, labels = write_set(tmp_path / "fashion-mnist", seed=1)["test"]
    trust(monkeypatch, tmp_path / "fashion-mnist", "FASHION_MNIST")
    ds = fashion_mnist("test", root=tmp_path)
    torch.testing.assert_close(ds.y, torch.from_numpy(labels).long())
    assert ds.classes[0] == "T-shirt/top" and ds.classes[9] == "Ankle boot"
    with pytest.raises(DataNotFoundError, match=r"(?s)^MNIST: file .*DIR/mnist/"):
        mnist("test", root=tmp_path)  # MNIST files are elsewhere


def test_lookup_order_root_env_repo(tmp_path, monkeypatch):
    sets = {k: write_set(tmp_path / k / "mnist", seed=i)
            for i, k in enumerate(("root", "env", "repo"))}
    monkeypatch.setattr(locate_module, "_repo_data_dir", lambda: tmp_path / "repo")
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env"))
    labels = {k: torch.from_numpy(v["test"][1]).long() for k, v in sets.items()}
    trust(monkeypatch, tmp_path / "root" / "mnist")
    torch.testing.assert_close(mnist("test", root=tmp_path / "root").y, labels["root"])
    trust(monkeypatch, tmp_path / "env" / "mnist")
    torch.testing.assert_close(mnist("test").y, labels["env"])
    monkeypatch.delenv(ENV_VAR)
    trust(monkeypatch, tmp_path / "repo" / "mnist")
    torch.testing.assert_close(mnist("test").y, labels["repo"])


def test_cache_decodes_once_and_is_not_shared(tmp_path, monkeypatch):
    write_set(tmp_path / "mnist", seed=2)
    trust(monkeypatch, tmp_path / "mnist")
    mnist_module._decode.cache_clear()
    first = mnist("train", root=tmp_path)
    first.x.fill_(7.0)
    second = mnist("train", root=tmp_path)
    assert mnist_module._decode.cache_info().hits == 1
    assert second.x.max() <= 1.0 and second.x.data_ptr() != first.x.data_ptr()


def test_changed_file_is_decoded_again(tmp_path, monkeypatch):
    write_set(tmp_path / "mnist", seed=3)
    trust(monkeypatch, tmp_path / "mnist")
    old = mnist("test", root=tmp_path).y
    _, labels = write_set(tmp_path / "mnist", seed=4)["test"]
    trust(monkeypatch, tmp_path / "mnist")
    path = tmp_path / "mnist" / NAMES["test"][1]
    os.utime(path, ns=(1, 1))
    new = mnist("test", root=tmp_path).y
    torch.testing.assert_close(new, torch.from_numpy(labels).long())
    assert not torch.equal(old, new)


def test_missing_offline_names_places_and_fix(tmp_path):
    with pytest.raises(DataNotFoundError) as info:
        mnist(root=tmp_path / "nowhere")
    message = str(info.value)
    assert str(tmp_path / "nowhere" / "mnist" / "train-images-idx3-ubyte.gz") in message
    assert "name resolution" in message and ENV_VAR in message
    assert all(name in message for pair in NAMES.values() for name in pair)
    assert not (tmp_path / "nowhere").exists()


def test_download_from_mirror_with_md5(tmp_path, monkeypatch):
    monkeypatch.setattr(download_module, "_fetch", _file_fetch)
    sets = write_set(tmp_path / "server")
    md5s = {name: hashlib.md5((tmp_path / "server" / name).read_bytes()).hexdigest()
            for pair in NAMES.values() for name in pair}
    sizes = {name: (tmp_path / "server" / name).stat().st_size for name in md5s}
    mirror = (tmp_path / "server").as_uri() + "/"
    trust(monkeypatch, tmp_path / "server")
    monkeypatch.setattr(mnist_module, "MNIST", mnist_module.MNIST._replace(
        mirrors=("https://dead.invalid/", mirror), md5s=md5s, sizes=sizes))
    ds = mnist("train", root=tmp_path / "dl")
    torch.testing.assert_close(ds.y, torch.from_numpy(sets["train"][1]).long())
    assert sorted(p.name for p in (tmp_path / "dl" / "mnist").iterdir()) == sorted(NAMES["train"])


def _file_fetch(url, timeout):
    """Serve file:// URLs with urllib; refuse anything else (no network in tests)."""
    if not url.startswith("file:"):
        raise urllib.error.URLError(socket.gaierror(-3, "offline in tests"))
    return download_module.urllib.request.urlopen(url, timeout=timeout)


def test_corrupt_download_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(download_module, "_fetch", _file_fetch)
    write_set(tmp_path / "server")
    mirror = (tmp_path / "server").as_uri() + "/"
    monkeypatch.setattr(mnist_module, "MNIST", mnist_module.MNIST._replace(mirrors=(mirror,)))
    with pytest.raises(CorruptDataError, match="md5"):
        mnist("test", root=tmp_path / "dl")  # the real md5s cannot match synthetic files
    assert not (tmp_path / "dl").exists()


def test_corrupt_local_file_is_reported_not_replaced(tmp_path):
    write_set(tmp_path / "mnist")
    (tmp_path / "mnist" / NAMES["test"][0]).write_bytes(b"\x1f\x8b truncated")
    with pytest.raises(CorruptDataError, match="t10k-images-idx3-ubyte.gz"):
        mnist("test", root=tmp_path)


@pytest.mark.parametrize("labels, images, match", [
    (np.array([0, 10], np.uint8), np.zeros((2, 28, 28), np.uint8), "label 10"),
    (np.array([0, 1, 2], np.uint8), np.zeros((2, 28, 28), np.uint8), "2 images but"),
    (np.array([0, 1], np.uint8), np.zeros((2, 27, 28), np.uint8), r"\(27, 28\)"),
])
def test_inconsistent_files_are_corrupt(tmp_path, monkeypatch, labels, images, match):
    (tmp_path / "mnist").mkdir()
    write_idx(tmp_path / "mnist" / NAMES["test"][0], images)
    write_idx(tmp_path / "mnist" / NAMES["test"][1], labels)
    trust(monkeypatch, tmp_path / "mnist")
    with pytest.raises(CorruptDataError, match=match):
        mnist("test", root=tmp_path)


@pytest.mark.parametrize("split", ["val", "TRAIN", None, 0])
def test_unknown_split(tmp_path, split):
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        mnist(split, root=tmp_path)


def test_fashion_files_in_the_mnist_folder_are_refused_naming_both(tmp_path, monkeypatch):
    write_set(tmp_path / "mnist", seed=5)  # stands for Fashion-MNIST's files...
    trust(monkeypatch, tmp_path / "mnist", "FASHION_MNIST")  # ...as Fashion's table knows them
    with pytest.raises(CorruptDataError) as info:
        mnist("test", root=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "mnist" / NAMES["test"][0]) in message
    assert f"expected MNIST's {NAMES['test'][0]}" in message
    assert f"content of Fashion-MNIST's {NAMES['test'][0]}" in message


def test_unknown_content_is_refused(tmp_path):
    write_set(tmp_path / "mnist", seed=6)
    with pytest.raises(CorruptDataError, match=r"content of no known file"):
        mnist("train", root=tmp_path)


def test_images_and_labels_from_different_roots_are_not_paired(tmp_path, monkeypatch):
    """Refusal: the first folder with a file of the split must hold the whole split."""
    for key, drop in (("a", 1), ("b", 0)):
        write_set(tmp_path / key / "mnist", seed=7)
        trust(monkeypatch, tmp_path / key / "mnist")
        (tmp_path / key / "mnist" / NAMES["test"][drop]).unlink()
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "b"))
    with pytest.raises(DataNotFoundError) as info:
        mnist("test", root=tmp_path / "a", download=False)
    message = str(info.value)
    assert str(tmp_path / "a" / "mnist") in message
    assert f"holds ['{NAMES['test'][0]}'] but not ['{NAMES['test'][1]}']" in message


def test_download_completes_a_partial_download_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(download_module, "_fetch", _file_fetch)
    _, labels = write_set(tmp_path / "server", seed=8)["test"]
    trust(monkeypatch, tmp_path / "server")
    (tmp_path / "dl" / "mnist").mkdir(parents=True)
    images_path = tmp_path / "dl" / "mnist" / NAMES["test"][0]
    images_path.write_bytes((tmp_path / "server" / NAMES["test"][0]).read_bytes())
    name = NAMES["test"][1]
    data = (tmp_path / "server" / name).read_bytes()
    monkeypatch.setattr(mnist_module, "MNIST", mnist_module.MNIST._replace(
        mirrors=((tmp_path / "server").as_uri() + "/",),
        md5s={**mnist_module.MNIST.md5s, name: hashlib.md5(data).hexdigest()},
        sizes={**mnist_module.MNIST.sizes, name: len(data)}))
    torch.testing.assert_close(mnist("test", root=tmp_path / "dl").y,
                               torch.from_numpy(labels).long())
    assert sorted(p.name for p in images_path.parent.iterdir()) == sorted(NAMES["test"])


@pytest.mark.parametrize("source", [mnist_module.MNIST, mnist_module.FASHION_MNIST])
def test_mirrors_are_https_only(source):
    assert source.mirrors and all(m.startswith("https://") for m in source.mirrors)
    assert "yann.lecun.com" not in " ".join(source.mirrors)
