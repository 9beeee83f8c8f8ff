"""Checkpoints found like datasets: directory, $VAECORE_CHECKPOINT_DIR, the checkout, a verified download.

Downloads are served from 127.0.0.1 by a server in a thread: a good file, a
file whose sha256 is not the record's, and a truncated body (the server
announces the full length and closes early). Nothing here reaches the network.
"""
from __future__ import annotations

import http.server
import json
import threading
from functools import partial
from pathlib import Path

import pytest
import torch

from vaecore import fetch
from vaecore.checkpoint import file_sha256, save_checkpoint
from vaecourse import store

NAME = "tiny-lin-classifier-e1"


def tiny_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Linear(3, 2)


def write_checkpoint(folder: Path, seed: int = 0) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{NAME}.pt"
    save_checkpoint(path, tiny_model(seed), config={}, metrics={"test_reconstruction": -1.5})
    info = {"name": NAME, "file": path.name, "bytes": path.stat().st_size,
            "sha256": file_sha256(path), "command": "", "summary": "", "epochs": 1,
            "train_wall_time_s": 0.0, "threads": 1, "machine": "", "torch": "", "vaecore": "",
            "metrics": {"test_reconstruction": -1.5}}
    (folder / f"{NAME}.json").write_text(json.dumps(info))
    return info


class Handler(http.server.SimpleHTTPRequestHandler):
    truncate: set = set()

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = Path(self.directory) / self.path.lstrip("/")
        if self.path.lstrip("/") in self.truncate and path.is_file():
            body = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])  # then the connection closes
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture
def served(tmp_path, monkeypatch):
    """(folder served at the download URL, the user cache); no local checkpoints anywhere."""
    remote, cache = tmp_path / "remote", tmp_path / "cache"
    remote.mkdir()
    Handler.truncate = set()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             partial(Handler, directory=str(remote)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    monkeypatch.setattr(store, "url", lambda filename: f"http://127.0.0.1:{port}/{filename}")
    monkeypatch.setattr(store, "CHECKOUT_DIR", tmp_path / "no-checkout")
    monkeypatch.delenv(store.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    yield remote, store.cache_dir()
    server.shutdown()
    thread.join()


def test_a_good_download_is_verified_cached_and_loaded(served):
    remote, cache = served
    info = write_checkpoint(remote)
    model = tiny_model(seed=1)
    ckpt = store.load_weights(NAME, model)
    assert torch.equal(model.weight, tiny_model(0).weight)
    assert ckpt.metrics == {"test_log_likelihood": -1.5}  # the current name of an old field
    assert file_sha256(cache / f"{NAME}.pt") == info["sha256"]
    assert store.record(NAME)["metrics"] == {"test_log_likelihood": -1.5}
    (remote / f"{NAME}.pt").unlink()  # from now on the cache answers
    store.load_weights(NAME, tiny_model())


def test_a_download_with_the_wrong_sha256_is_refused_and_not_kept(served):
    remote, cache = served
    info = write_checkpoint(remote)
    write_checkpoint(remote / "other", seed=5)
    (remote / "other" / f"{NAME}.pt").replace(remote / f"{NAME}.pt")  # same size, other bytes
    assert file_sha256(remote / f"{NAME}.pt") != info["sha256"]
    with pytest.raises(ValueError, match=rf"does not match its record.*sha256 {info['sha256']}"):
        store.load_weights(NAME, tiny_model())
    assert not (cache / f"{NAME}.pt").exists() and not list(cache.glob(".*.part"))


def test_a_truncated_download_is_refused_and_not_kept(served):
    remote, cache = served
    write_checkpoint(remote)
    Handler.truncate = {f"{NAME}.pt"}
    with pytest.raises(ValueError, match="does not match its record.*truncated"):
        store.load_weights(NAME, tiny_model())
    assert not (cache / f"{NAME}.pt").exists() and not list(cache.glob(".*.part"))


def test_a_file_on_disk_is_verified_too(served, tmp_path):
    info = write_checkpoint(tmp_path / "local")
    with open(tmp_path / "local" / f"{NAME}.pt", "ab") as f:
        f.write(b"x")
    with pytest.raises(ValueError, match=f"{info['bytes'] + 1} bytes, expected {info['bytes']}"):
        store.load_weights(NAME, tiny_model(), tmp_path / "local")


def test_nothing_anywhere_is_checkpoint_missing(served):
    with pytest.raises(store.CheckpointMissing, match="download"):
        store.weights_path(NAME)
    with pytest.raises(store.CheckpointMissing):
        store.weights_path(NAME, directory=served[0])  # an explicit folder: no download


def test_lookup_order_directory_then_environment_then_checkout(served, tmp_path, monkeypatch):
    for folder, seed in (("explicit", 1), ("env", 2), ("checkout", 3)):
        write_checkpoint(tmp_path / folder, seed)
    monkeypatch.setattr(store, "CHECKOUT_DIR", tmp_path / "checkout")

    def loaded(**kwargs):
        model = tiny_model(9)
        store.load_weights(NAME, model, **kwargs)
        return model.weight

    assert torch.equal(loaded(), tiny_model(3).weight)
    monkeypatch.setenv(store.ENV_VAR, str(tmp_path / "env"))
    assert torch.equal(loaded(), tiny_model(2).weight)
    assert torch.equal(loaded(directory=tmp_path / "explicit"), tiny_model(1).weight)


def test_fetch_refuses_an_oversized_body(served):
    remote, cache = served
    (remote / "f.bin").write_bytes(b"x" * 100)
    with pytest.raises(fetch.FileMismatchError, match="101\\+ bytes, expected 10|expected 10"):
        fetch.download(store.url("f.bin"), cache / "f.bin", size=10)
    assert not (cache / "f.bin").exists()
    assert fetch.download(store.url("f.bin"), cache / "f.bin", size=100).read_bytes() == b"x" * 100


def test_the_download_url_is_the_repository_s():
    from vaecourse import CHECKPOINT_REF, REPOSITORY_URL
    assert store.url("a.pt") == f"{REPOSITORY_URL}/raw/{CHECKPOINT_REF}/checkpoints/a.pt"


def test_the_cache_is_kept_per_release(served):
    from vaecourse import CHECKPOINT_REF, __version__
    assert CHECKPOINT_REF == f"v{__version__}" and store.cache_dir().name == CHECKPOINT_REF


@pytest.mark.parametrize("name", ["../evil", "a/b", "..", ""])
def test_a_name_that_is_not_a_plain_file_name_is_refused_before_any_download(served, name):
    remote, cache = served
    with pytest.raises(ValueError, match="plain file name"):
        store.weights_path(name)
    assert not cache.exists() or not any(cache.parent.parent.rglob("*.json"))


def test_a_record_whose_file_leaves_the_folder_is_refused(served):
    remote, cache = served
    info = write_checkpoint(remote)
    (remote / f"{NAME}.json").write_text(json.dumps({**info, "file": "../escaped.pt"}))
    with pytest.raises(store.CheckpointMissing, match="plain file name"):
        store.weights_path(NAME)
    assert not list(cache.parent.rglob("escaped.pt")) and not (cache / f"{NAME}.json").exists()


def test_a_downloaded_page_that_is_not_a_record_is_not_kept(served):
    remote, cache = served
    (remote / f"{NAME}.json").write_text("<html>captive portal</html>")
    with pytest.raises(store.CheckpointMissing, match="not a readable record"):
        store.record(NAME)
    assert not (cache / f"{NAME}.json").exists() and not list(cache.glob(".*"))
