"""Tests for vaecore.data.download: mirrors, size cap, md5 check, atomic write, retries,
leftovers; a local HTTP server on 127.0.0.1 at most, never the network."""
import hashlib
import http.server
import io
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
from pathlib import Path

import pytest

import vaecore.data.download as download_module
from vaecore.data.download import DownloadError, download_file
from vaecore.data.errors import CorruptDataError

PAYLOAD = b"some dataset bytes " * 1000
MD5 = hashlib.md5(PAYLOAD).hexdigest()
SIZE = len(PAYLOAD)


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
    dest = download_file([server], tmp_path / "out" / "f.gz", MD5, SIZE)
    assert dest.read_bytes() == PAYLOAD
    assert sorted(p.name for p in dest.parent.iterdir()) == ["f.gz"]


def test_md5_mismatch_raises_and_writes_nothing(tmp_path, server, monkeypatch):
    monkeypatch.undo()
    out = tmp_path / "out"
    with pytest.raises(CorruptDataError, match=r"md5 .*expected 0{32}"):
        download_file([server], out / "f.gz", "0" * 32, SIZE)
    assert not out.exists()


def test_offline_lists_each_mirror(tmp_path):
    with pytest.raises(DownloadError) as info:
        download_file(["https://a.invalid/f", "https://b.invalid/f"], tmp_path / "f", MD5, SIZE)
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
    dest = download_file(["https://dead/f", "https://live/f"], tmp_path / "f", MD5, SIZE,
                         attempts=2)
    assert dest.read_bytes() == PAYLOAD
    assert calls == ["https://dead/f", "https://dead/f", "https://live/f", "https://live/f"]


def test_http_404_is_not_retried(tmp_path, monkeypatch):
    calls = []

    def _missing(url, timeout):
        calls.append(url)
        raise urllib.error.HTTPError(url, 404, "Not Found", None, None)

    monkeypatch.setattr(download_module, "_fetch", _missing)
    with pytest.raises(DownloadError, match="404"):
        download_file(["https://x/f"], tmp_path / "f", MD5, SIZE, attempts=3)
    assert calls == ["https://x/f"]


def test_interrupted_download_leaves_no_partial_file(tmp_path, monkeypatch):
    class _Broken(io.BytesIO):
        def read(self, size=-1):
            if self.tell() > 0:
                raise ConnectionResetError("connection reset by peer")
            return super().read(100)

    monkeypatch.setattr(download_module, "_fetch", lambda url, timeout: _Broken(PAYLOAD))
    with pytest.raises(DownloadError, match="connection reset"):
        download_file(["https://x/f"], tmp_path / "out" / "f", MD5, SIZE, attempts=2)
    assert not (tmp_path / "out").exists()


# --- A local HTTP server on 127.0.0.1 (never an external host) --------------------------

REAL_FETCH = download_module._fetch
PORTAL = b"<html><body>Please log in to the hotel Wi-Fi</body></html>"


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.routes[path] = (body, announced length or None, pause event or None)``.

    With a pause event, half the body is sent, then the handler waits for the event.
    """

    def do_GET(self):
        if self.path not in self.server.routes:
            self.send_error(404)
            return
        body, length, pause = self.server.routes[self.path]
        self.send_response(200)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        try:
            if pause is not None:
                self.wfile.write(body[:len(body) // 2])
                self.wfile.flush()
                pause.wait(10)
                body = body[len(body) // 2:]
            self.wfile.write(body)
        except OSError:  # the client hung up (as it should, on an oversized body)
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server(monkeypatch):
    """``(routes, base_url)`` of a threaded HTTP server on 127.0.0.1, with the real fetcher."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setattr(download_module, "_fetch", REAL_FETCH)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.routes = {}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.routes, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def fetch(urls, dest, md5=MD5, size=SIZE, **kwargs):
    """``download_file`` with this module's payload checksum and size."""
    return download_file(urls, dest, md5, size, **kwargs)


def test_wrong_body_on_first_mirror_falls_through_to_second(tmp_path, http_server):
    routes, base = http_server
    routes["/portal/f.gz"] = (PORTAL, len(PORTAL), None)
    routes["/good/f.gz"] = (PAYLOAD, SIZE, None)
    dest = fetch([f"{base}/portal/f.gz", f"{base}/good/f.gz"], tmp_path / "out" / "f.gz")
    assert dest.read_bytes() == PAYLOAD
    assert sorted(p.name for p in dest.parent.iterdir()) == ["f.gz"]


def test_a_connection_dropped_mid_body_falls_through_to_the_next_mirror(tmp_path, monkeypatch):
    """http.client's IncompleteRead (a chunked body cut short) is not an OSError."""
    import http.client
    import io

    class Cut(io.BytesIO):
        headers = {}

        def read(self, n=-1):
            if self.tell():
                raise http.client.IncompleteRead(b"", SIZE)
            return super().read(min(n, SIZE // 2))

    monkeypatch.setattr(download_module, "_fetch", lambda url, timeout: (
        Cut(PAYLOAD) if "cut" in url else io.BytesIO(PAYLOAD)))
    dest = fetch(["https://cut.invalid/f.gz", "https://good.invalid/f.gz"], tmp_path / "f.gz")
    assert dest.read_bytes() == PAYLOAD
    assert sorted(p.name for p in dest.parent.iterdir()) == ["f.gz"]


def test_same_size_wrong_md5_falls_through(tmp_path, http_server):
    routes, base = http_server
    routes["/stale/f.gz"] = (PAYLOAD[::-1], SIZE, None)
    routes["/good/f.gz"] = (PAYLOAD, SIZE, None)
    assert fetch([f"{base}/stale/f.gz", f"{base}/good/f.gz"],
                 tmp_path / "f.gz").read_bytes() == PAYLOAD


@pytest.mark.parametrize("announce", [True, False])
def test_oversized_body_is_refused_after_at_most_size_bytes(tmp_path, http_server,
                                                            monkeypatch, announce):
    routes, base = http_server
    huge = PAYLOAD * 50
    routes["/huge/f.gz"] = (huge, len(huge) if announce else None, None)
    read = []

    def _counting_fetch(url, timeout):
        response = REAL_FETCH(url, timeout)
        original = response.read
        response.read = lambda n=-1: read.append(len(chunk := original(n))) or chunk
        return response

    monkeypatch.setattr(download_module, "_fetch", _counting_fetch)
    with pytest.raises(CorruptDataError) as info:
        fetch([f"{base}/huge/f.gz"], tmp_path / "out" / "f.gz")
    assert sum(read) <= SIZE + 1
    assert f"more than the expected {SIZE} bytes" in str(info.value)
    assert not (tmp_path / "out").exists()


def test_all_mirrors_fail_lists_each_and_leaves_no_folder(tmp_path, http_server):
    routes, base = http_server
    routes["/portal/f.gz"] = (PORTAL, len(PORTAL), None)
    urls = [f"{base}/missing/f.gz", f"{base}/portal/f.gz"]
    with pytest.raises(CorruptDataError) as info:
        fetch(urls, tmp_path / "new" / "sub" / "f.gz")
    message = str(info.value)
    assert f"{urls[0]}: HTTPError: HTTP Error 404" in message
    assert f"{urls[1]}: {len(PORTAL)} bytes, expected {SIZE}" in message
    assert list(tmp_path.iterdir()) == []


def test_unreachable_mirrors_leave_no_folder(tmp_path):
    with pytest.raises(DownloadError, match="a.invalid"):
        fetch(["https://a.invalid/f"], tmp_path / "new" / "f")
    assert list(tmp_path.iterdir()) == []


def test_stale_part_files_are_removed_fresh_ones_kept(tmp_path, http_server):
    routes, base = http_server
    routes["/good/f.gz"] = (PAYLOAD, SIZE, None)
    stale, fresh = tmp_path / ".f.gz.killed01.part", tmp_path / ".f.gz.running.part"
    other = tmp_path / ".g.gz.killed02.part"
    for part in (stale, fresh, other):
        part.write_bytes(b"half a download")
    hour_ago = time.time() - 3600
    os.utime(stale, (hour_ago, hour_ago))
    os.utime(other, (hour_ago, hour_ago))
    fetch([f"{base}/good/f.gz"], tmp_path / "f.gz")
    assert not stale.exists(), "a stale .part was left behind"
    assert fresh.exists() and other.exists()  # maybe another process's live download


_KILLED_DOWNLOAD = """
import sys
from vaecore.data.download import download_file
download_file([sys.argv[1]], sys.argv[2], sys.argv[3], int(sys.argv[4]))
"""


def test_sigkill_leftover_is_cleaned_by_the_next_download(tmp_path, http_server):
    routes, base = http_server
    big = PAYLOAD * 160  # 3 MB: the first 1 MB chunk reaches the .part before the pause
    big_md5 = hashlib.md5(big).hexdigest()
    pause = threading.Event()
    routes["/slow/f.gz"] = (big, len(big), pause)
    routes["/good/f.gz"] = (big, len(big), None)
    dest = tmp_path / "data" / "f.gz"
    repo = Path(download_module.__file__).resolve().parents[2]
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_DOWNLOAD, f"{base}/slow/f.gz", str(dest), big_md5,
         str(len(big))], env={**os.environ, "PYTHONPATH": str(repo)})
    try:
        deadline = time.time() + 60
        while (time.time() < deadline and child.poll() is None
               and not any(p.stat().st_size for p in (tmp_path / "data").glob(".f.gz.*"))):
            time.sleep(0.05)
    finally:
        child.kill()  # SIGKILL: no cleanup handler runs
        child.wait()
        pause.set()
    leftovers = list((tmp_path / "data").glob(".f.gz.*.part"))
    assert len(leftovers) == 1 and not dest.exists()
    an_hour_ago = time.time() - 3600
    os.utime(leftovers[0], (an_hour_ago, an_hour_ago))  # as if the next run came later
    fetch([f"{base}/good/f.gz"], dest, big_md5, len(big))
    assert sorted(p.name for p in dest.parent.iterdir()) == ["f.gz"]
