"""Download one file: mirrors tried in turn, retries, md5 check, atomic write.

The bytes are streamed into a temporary file in the destination folder while
their md5 is computed; only when the md5 matches is the file moved into place
with ``os.replace``. A failed or corrupt download therefore leaves nothing
behind. The network call is the module-level ``_fetch``, so tests replace it
(or use ``file://`` URLs) and never touch the network.
"""
from __future__ import annotations

import hashlib
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


class DownloadError(OSError):
    """Every mirror failed for network reasons; the message lists each failure."""


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


def _stream_to_temp(url: str, dest: Path, timeout: float) -> tuple[Path, str]:
    """Stream ``url`` into a temporary file next to ``dest``; return (path, md5 hex)."""
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    digest = hashlib.md5(usedforsecurity=False)  # a checksum, not security
    try:
        with os.fdopen(fd, "wb") as out, _fetch(url, timeout) as response:
            while chunk := response.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        os.unlink(tmp)
        raise
    return Path(tmp), digest.hexdigest()


def download_file(urls, dest, md5: str, *, timeout: float = 30.0,
                  attempts: int = 2) -> Path:
    """Download the first working URL of ``urls`` to ``dest`` and check its md5.

    Each URL is tried up to ``attempts`` times. Returns ``dest``. Raises
    ``CorruptDataError`` if a download arrived but its md5 is not ``md5``
    (nothing is written), and ``DownloadError`` listing each URL's error if
    no mirror could be reached.
    """
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DownloadError(f"cannot create the folder {dest.parent}: {err}") from err
    failures = []
    for url in urls:
        for attempt in range(attempts):
            try:
                tmp, got = _stream_to_temp(url, dest, timeout)
            except (OSError, ValueError) as err:  # URLError, timeouts, bad URLs
                failures.append(f"{url}: {type(err).__name__}: {err}")
                if not _worth_retrying(err) or attempt + 1 == attempts:
                    break
                time.sleep(_RETRY_DELAY_S * (attempt + 1))
                continue
            if got != md5:
                os.unlink(tmp)
                raise CorruptDataError(
                    f"download of {url} is corrupt: md5 {got}, expected {md5}; "
                    f"nothing was written to {dest}")
            os.replace(tmp, dest)
            return dest
    raise DownloadError("; ".join(failures) or "no download URL given")
