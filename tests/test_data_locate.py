"""Tests for vaecore.data.locate: lookup order, download destination, not-found errors."""
import socket
import urllib.error

import pytest

import vaecore.data.download as download_module
import vaecore.data.locate as locate_module
from vaecore.data.errors import DataNotFoundError
from vaecore.data.locate import (ENV_VAR, RemoteFile, download_dir, locate,
                                 search_roots)

REMOTE = RemoteFile("thing.bin.gz", "0" * 32, 1, ("https://example.invalid/thing.bin.gz",))


def _offline(url, timeout):
    raise urllib.error.URLError(socket.gaierror(-3, "Temporary failure in name resolution"))


@pytest.fixture
def places(tmp_path, monkeypatch):
    """Three separate folders standing for root=, $VAECORE_DATA_DIR and the repo data/."""
    folders = {k: tmp_path / k for k in ("root", "env", "repo", "home")}
    for folder in folders.values():
        folder.mkdir()
    monkeypatch.setenv(ENV_VAR, str(folders["env"]))
    monkeypatch.setenv("HOME", str(folders["home"]))
    monkeypatch.setattr(locate_module, "_repo_data_dir", lambda: folders["repo"])
    monkeypatch.setattr(download_module, "_fetch", _offline)
    return folders


def _put(folder, name="thing.bin.gz", sub="things"):
    path = folder / sub / name if sub else folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_search_roots_order(places, monkeypatch):
    assert search_roots(places["root"]) == [places["root"], places["env"], places["repo"]]
    monkeypatch.delenv(ENV_VAR)
    assert search_roots() == [places["repo"]]
    monkeypatch.setattr(locate_module, "_repo_data_dir", lambda: None)
    assert search_roots() == [places["home"] / ".cache" / "vaecore"]


def test_an_earlier_download_to_the_cache_is_found_offline(places, monkeypatch):
    """An installed package (no data/, no $VAECORE_DATA_DIR) finds what it downloaded."""
    monkeypatch.delenv(ENV_VAR)
    monkeypatch.setattr(locate_module, "_repo_data_dir", lambda: None)
    cached = _put(places["home"] / ".cache" / "vaecore")
    assert locate("Things", REMOTE, ("things",)) == cached  # _fetch is offline: no download


def test_explicit_root_wins_over_env_over_repo(places, monkeypatch):
    in_repo, in_env, in_root = (_put(places[k]) for k in ("repo", "env", "root"))
    assert locate("Things", REMOTE, ("things",), root=places["root"]) == in_root
    assert locate("Things", REMOTE, ("things",)) == in_env
    monkeypatch.delenv(ENV_VAR)
    assert locate("Things", REMOTE, ("things",)) == in_repo


def test_subfolder_then_folder_then_uncompressed(places):
    flat_raw = _put(places["root"], "thing.bin", sub=None)
    assert locate("Things", REMOTE, ("things",), root=places["root"]) == flat_raw
    flat = _put(places["root"], sub=None)
    assert locate("Things", REMOTE, ("things",), root=places["root"]) == flat
    nested = _put(places["root"])
    assert locate("Things", REMOTE, ("things",), root=places["root"]) == nested


def test_second_folder_name_is_searched(places):
    other = _put(places["env"], sub="Things/raw")
    assert locate("Things", REMOTE, ("things", "Things/raw")) == other


def test_download_dir_order(places, monkeypatch):
    assert download_dir(places["root"]) == places["root"]
    assert download_dir() == places["env"]
    monkeypatch.delenv(ENV_VAR)
    assert download_dir() == places["repo"]
    monkeypatch.setattr(locate_module, "_repo_data_dir", lambda: None)
    assert download_dir() == places["home"] / ".cache" / "vaecore"


def test_not_found_offline_lists_every_place(places):
    with pytest.raises(DataNotFoundError) as info:
        locate("Things", REMOTE, ("things",), root=places["root"],
               expected=("thing.bin.gz", "other.bin.gz"))
    message = str(info.value)
    for key in ("root", "env", "repo"):
        for path in (places[key] / "things" / "thing.bin.gz", places[key] / "thing.bin"):
            assert f"  - {path}\n" in message
    assert "Things" in message and "name resolution" in message
    assert ENV_VAR in message and "root=" in message and "other.bin.gz" in message
    assert list(places["root"].rglob("*")) == []  # no partial file, not even a folder


def test_download_false_does_not_fetch(places, monkeypatch):
    def _fail(url, timeout):
        raise AssertionError("fetched although download=False")
    monkeypatch.setattr(download_module, "_fetch", _fail)
    with pytest.raises(DataNotFoundError, match=r"download=False"):
        locate("Things", REMOTE, ("things",), download=False)
    assert isinstance(DataNotFoundError("x"), FileNotFoundError)


@pytest.mark.parametrize("kwargs, match", [({"root": 3}, "root"),
                                           ({"download": "yes"}, "download")])
def test_bad_arguments(places, kwargs, match):
    with pytest.raises(ValueError, match=match):
        locate("Things", REMOTE, ("things",), **kwargs)
