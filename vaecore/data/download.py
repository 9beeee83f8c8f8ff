"""Download one file: mirrors tried in turn, retries, a size cap, md5 check, atomic write.

Each mirror is tried in order. A network error is retried; a mirror that
answers with the wrong bytes (a captive portal's page, a stale copy: wrong size
or wrong md5) is skipped for the next one, and a body longer than the expected
size is cut off and refused, so a bad mirror can never fill the disk. The bytes
stream into a fresh, uniquely named ``.<name>.<random>.part`` file next to
``dest`` and are moved into place with ``os.replace`` only when size and md5
match. Folders are created only when the first bytes arrive and removed again
if every mirror fails, so a failed download leaves nothing behind. A ``.part``
file left by a killed process is never read by a loader, and is removed by the
next download of the same file once it is older than ``_STALE_PART_S``. The
network call is the module-level ``_fetch``, so tests replace it (or serve
files from 127.0.0.1) and never touch the network.
"""
from __future__ import annotations

import glob
import hashlib
import http.client
import os
import socket
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from vaecore.data.errors import CorruptDataError

__all__ = ["DownloadError", "download_file"]

_CHUNK = 1 << 20
_RETRY_DELAY_S = 1.0
_STALE_PART_S = 600.0  # a live download writes far more often than this


class DownloadError(OSError):
    """Every mirror failed for network reasons; the message lists each failure."""


class _WrongBody(Exception):
    """A mirror answered, but not with the expected bytes; the next mirror is tried."""


def _fetch(url: str, timeout: float):
    """Open ``url`` and return a readable binary stream (a context manager)."""
    request = urllib.request.Request(url, headers={"User-Agent": "vaecore"})
    return urllib.request.urlopen(request, timeout=timeout)


def _worth_retrying(err: Exception) -> bool:
    """A missing file (HTTP 4xx) or an unknown host (offline) will not heal by retrying."""
    if isinstance(err, urllib.error.HTTPError):
        return err.code >= 500
    reason = getattr(err, "reason", None)
    return not isinstance(reason, socket.gaierror)


def _remove_stale_parts(dest: Path) -> None:
    """Delete ``.part`` files of ``dest`` not written to for ``_STALE_PART_S`` seconds."""
    pattern = str(dest.parent / f".{glob.escape(dest.name)}.*.part")
    for part in glob.glob(pattern):
        try:
            if time.time() - os.stat(part).st_mtime > _STALE_PART_S:
                os.unlink(part)
        except OSError:  # removed meanwhile, or a read-only folder
            pass


def _make_folder(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return the ones created, deepest first."""
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DownloadError(f"cannot create the folder {folder}: {err}") from err
    return created


def _remove_empty(folders) -> None:
    """Remove the folders (deepest first) while they are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty, or already gone
            return


def _check_length_header(response, url: str, size: int) -> None:
    """Refuse before reading when the server announces more than ``size`` bytes."""
    headers = getattr(response, "headers", None)
    length = headers.get("Content-Length") if headers is not None else None
    if length is not None and length.isdigit() and int(length) > size:
        raise _WrongBody(f"{url}: announces {length} bytes, more than the expected "
                         f"{size} bytes, refused")


def _stream_to_temp(url: str, dest: Path, size: int, timeout: float,
                    created: list) -> tuple[Path, str, int]:
    """Stream at most ``size`` bytes of ``url`` to a new ``.part`` file: (path, md5, n bytes)."""
    with _fetch(url, timeout) as response:
        _check_length_header(response, url, size)
        chunk = response.read(min(_CHUNK, size + 1))
        if not chunk:
            raise _WrongBody(f"{url}: empty body, expected {size} bytes")
        created += _make_folder(dest.parent)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        digest, total = hashlib.md5(usedforsecurity=False), 0  # a checksum, not security
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk:
                    total += len(chunk)
                    if total > size:
                        raise _WrongBody(f"{url}: more than the expected {size} bytes, refused")
                    digest.update(chunk)
                    out.write(chunk)
                    chunk = response.read(min(_CHUNK, size + 1 - total))
        except http.client.HTTPException as err:  # e.g. IncompleteRead: a body cut short
            os.unlink(tmp)
            raise _WrongBody(f"{url}: {type(err).__name__}: {err}") from err
        except BaseException:
            os.unlink(tmp)
            raise
    return Path(tmp), digest.hexdigest(), total


def _from_mirror(url: str, dest: Path, md5: str, size: int, timeout: float,
                 attempts: int, created: list) -> Path:
    """Download ``url`` to ``dest`` (retrying network errors), or raise why not."""
    for attempt in range(1, attempts + 1):
        try:
            tmp, got, total = _stream_to_temp(url, dest, size, timeout, created)
            break
        except (DownloadError, _WrongBody):
            raise
        except (OSError, ValueError) as err:  # URLError, timeouts, bad URLs
            if not _worth_retrying(err) or attempt == attempts:
                raise
            time.sleep(_RETRY_DELAY_S * attempt)
    if (total, got) != (size, md5):
        os.unlink(tmp)
        raise _WrongBody(f"{url}: {total} bytes, expected {size}" if total != size
                         else f"{url}: md5 {got}, expected {md5}")
    os.replace(tmp, dest)
    return dest


def download_file(urls, dest, md5: str, size: int, *, timeout: float = 30.0,
                  attempts: int = 2) -> Path:
    """Download ``dest`` from the first of ``urls`` that gives ``size`` bytes with this md5.

    Each URL is tried up to ``attempts`` times on network errors; a wrong or
    oversized body moves on to the next URL. Returns ``dest``. Raises
    ``CorruptDataError`` if a mirror answered but none with the expected
    bytes, and ``DownloadError`` if no mirror could be reached; both list what
    each URL gave, and nothing (no file, no new folder) is left behind.
    """
    dest = Path(dest)
    _remove_stale_parts(dest)
    failures, created, wrong = [], [], False
    try:
        for url in urls:
            try:
                return _from_mirror(url, dest, md5, size, timeout, attempts, created)
            except _WrongBody as err:
                failures.append(str(err))
                wrong = True
            except DownloadError:
                raise
            except (OSError, ValueError, http.client.HTTPException) as err:
                failures.append(f"{url}: {type(err).__name__}: {err}")
    finally:
        _remove_empty(created)  # after a success the file keeps them
    if wrong:
        raise CorruptDataError(
            f"download of {dest.name} failed: no mirror gave the expected {size} bytes with "
            f"md5 {md5}; nothing was written to {dest}. Mirrors: " + "; ".join(failures))
    raise DownloadError("; ".join(failures) or "no download URL given")
