"""Tests for vaecore.data.download: md5 check, atomic write, retries; never the network."""
import hashlib
import io
import socket
import urllib.error

import pytest

import vaecore.data.download as download_module
from vaecore.data.download import DownloadError, download_file
from vaecore.data.errors import CorruptDataError

PAYLOAD = b"some dataset bytes " * 1000
MD5 = hashlib.md5(PAYLOAD).hexdigest()


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Every test starts offline and without retry delays."""
    def _offline(url, timeout):
        raise urllib.error.URLError(socket.gaierror(-3, "Temporary failure in name resolution"))
    monkeypatch.setattr(download_module, "_fetch", _offline)
    monkeypatch.setattr(download_module, "_RETRY_DELAY_S", 0.0)


@pytest.fixture
def server(tmp_path):
    """A file served by a ``file://`` URL (urllib's real fetcher, no network)."""
    (tmp_path / "server").mkdir()
    (tmp_path / "server" / "f.gz").write_bytes(PAYLOAD)
    return (tmp_path / "server" / "f.gz").as_uri()


def test_good_download_from_file_url(tmp_path, server, monkeypatch):
    monkeypatch.undo()  # the real urllib fetcher, on a file:// URL
    dest = download_file([server], tmp_path / "out" / "f.gz", MD5)
    assert dest.read_bytes() == PAYLOAD
    assert sorted(p.name for p in dest.parent.iterdir()) == ["f.gz"]


def test_md5_mismatch_raises_and_writes_nothing(tmp_path, server, monkeypatch):
    monkeypatch.undo()
    out = tmp_path / "out"
    with pytest.raises(CorruptDataError, match=r"md5 .*expected 0{32}"):
        download_file([server], out / "f.gz", "0" * 32)
    assert list(out.iterdir()) == []


def test_offline_lists_each_mirror(tmp_path):
    with pytest.raises(DownloadError) as info:
        download_file(["https://a.invalid/f", "https://b.invalid/f"], tmp_path / "f", MD5)
    assert "a.invalid" in str(info.value) and "b.invalid" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_second_mirror_and_retry(tmp_path, monkeypatch):
    calls = []

    def _flaky(url, timeout):
        calls.append(url)
        if url.startswith("https://dead") or len(calls) == 3:
            raise urllib.error.URLError("timed out")
        return io.BytesIO(PAYLOAD)

    monkeypatch.setattr(download_module, "_fetch", _flaky)
    dest = download_file(["https://dead/f", "https://live/f"], tmp_path / "f", MD5, attempts=2)
    assert dest.read_bytes() == PAYLOAD
    assert calls == ["https://dead/f", "https://dead/f", "https://live/f", "https://live/f"]


def test_http_404_is_not_retried(tmp_path, monkeypatch):
    calls = []

    def _missing(url, timeout):
        calls.append(url)
        raise urllib.error.HTTPError(url, 404, "Not Found", None, None)

    monkeypatch.setattr(download_module, "_fetch", _missing)
    with pytest.raises(DownloadError, match="404"):
        download_file(["https://x/f"], tmp_path / "f", MD5, attempts=3)
    assert calls == ["https://x/f"]


def test_interrupted_download_leaves_no_partial_file(tmp_path, monkeypatch):
    class _Broken(io.BytesIO):
        def read(self, size=-1):
            if self.tell() > 0:
                raise ConnectionResetError("connection reset by peer")
            return super().read(100)

    monkeypatch.setattr(download_module, "_fetch", lambda url, timeout: _Broken(PAYLOAD))
    with pytest.raises(DownloadError, match="connection reset"):
        download_file(["https://x/f"], tmp_path / "out" / "f", MD5, attempts=2)
    assert list((tmp_path / "out").iterdir()) == []
