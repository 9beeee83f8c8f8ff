"""Files found like datasets: an explicit folder, an environment variable, a checkout, a download.

Generic machinery for data files that are looked up by name (the course uses
it for its checkpoints): :func:`search_folders` lists the folders to try in
order, :func:`find` returns the first that holds a file, :func:`download`
fetches a URL into a folder atomically and, when a sha256 is given, refuses
bytes that do not match it, and :func:`check_file` compares a file on disk
with an expected size and sha256. Nothing here knows which files exist.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["FileMismatchError", "user_cache_dir", "search_folders", "find", "check_file",
           "download"]

_CHUNK = 1 << 20


class FileMismatchError(ValueError):
    """A file (on disk or downloaded) does not have the expected size or sha256."""


def user_cache_dir(*parts: str) -> Path:
    """``$XDG_CACHE_HOME/vaecore/<parts>``, else ``~/.cache/vaecore/<parts>`` (not created)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "vaecore" / Path(*parts)


def search_folders(directory=None, env_var: str | None = None, checkout=None) -> list[Path]:
    """The folders to search, in order: ``directory`` alone if given; else ``$env_var``, ``checkout``.

    Folders that are named but missing are kept out; an explicit ``directory``
    is returned even when it does not exist yet (it is where a file is written).
    """
    if directory is not None:
        return [Path(directory).expanduser()]
    found = [os.environ.get(env_var) if env_var else None, checkout]
    return [Path(f).expanduser() for f in found if f and Path(f).expanduser().is_dir()]


def find(filename: str, folders) -> Path | None:
    """The first ``folder / filename`` that is a file, or None."""
    for folder in folders:
        if (Path(folder) / filename).is_file():
            return Path(folder) / filename
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_file(path, sha256: str, size: int | None = None) -> None:
    """Raise :class:`FileMismatchError` unless the file at ``path`` has this size and sha256."""
    path = Path(path)
    got_size = path.stat().st_size
    if size is not None and got_size != size:
        raise FileMismatchError(f"{path}: {got_size} bytes, expected {size} (sha256 {sha256})")
    got = _sha256(path)
    if got != sha256:
        raise FileMismatchError(f"{path}: sha256 {got}, expected {sha256} ({got_size} bytes)")


def download(url: str, dest, *, sha256: str | None = None, size: int | None = None,
             timeout: float = 30.0) -> Path:
    """Download ``url`` to ``dest``, atomically; verify ``size`` and ``sha256`` when given.

    The bytes stream into a temporary file next to ``dest`` (at most ``size``
    of them when it is given), which replaces ``dest`` only once it is
    complete and verified: a wrong, truncated or oversized body raises
    :class:`FileMismatchError` and leaves nothing behind. Network errors
    (``urllib.error.URLError``, timeouts) propagate as ``OSError``.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        digest, total = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            limit = None if size is None else size + 1
            while chunk := response.read(_CHUNK if limit is None else min(_CHUNK, limit - total)):
                total += len(chunk)
                digest.update(chunk)
                out.write(chunk)
                if limit is not None and total >= limit:
                    break
    except http.client.IncompleteRead as e:  # the server closed before Content-Length bytes
        Path(tmp).unlink(missing_ok=True)
        raise FileMismatchError(f"{url}: truncated body ({e}); nothing was written to {dest}") from e
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:
        if size is not None and total != size:
            raise FileMismatchError(f"{url}: {total}{'+' if total > size else ''} bytes, "
                                    f"expected {size}; nothing was written to {dest}")
        if sha256 is not None and digest.hexdigest() != sha256:
            raise FileMismatchError(f"{url}: sha256 {digest.hexdigest()}, expected {sha256}; "
                                    f"nothing was written to {dest}")
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest
