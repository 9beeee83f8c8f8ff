"""Find a dataset file on disk, or download it: one lookup order for every dataset.

Lookup order (the first match wins):

1. the ``root=`` folder passed to the loader;
2. the folder named by the environment variable ``VAECORE_DATA_DIR``;
3. the repository's ``data/`` folder (next to the ``vaecore`` package), if it exists;
4. the download folder (below), where an earlier download was kept;
5. a download from the dataset's canonical mirrors.

In each folder ``<root>/<name>/<file>`` is tried, then ``<root>/<file>``
(e.g. ``<root>/mnist/train-images-idx3-ubyte.gz``); an uncompressed copy
(the name without ``.gz``) is accepted too. Files that belong together (the
images and labels of a split, see ``locate_together``) are all taken from the
first folder that holds any of them, never combined across folders. Downloads
go to ``root`` if given, else ``$VAECORE_DATA_DIR``, else the repository's
``data/``, else ``~/.cache/vaecore``; they are checked by size and md5. Files
found on disk are checked by their content when decoded (see the loaders).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from vaecore.data.download import DownloadError, download_file
from vaecore.data.errors import DataNotFoundError

__all__ = ["ENV_VAR", "RemoteFile", "check_root", "search_roots", "download_dir",
           "file_key", "candidate_paths", "find_first", "not_found_message",
           "download_or_fail", "locate", "locate_together"]

ENV_VAR = "VAECORE_DATA_DIR"


class RemoteFile(NamedTuple):
    """A file of a dataset: its canonical name, md5, size in bytes and download URLs."""

    name: str
    md5: str
    size: int
    urls: tuple[str, ...]


def _repo_data_dir() -> Path | None:
    """The repository's ``data/`` folder, or ``None`` when there is none (installed package)."""
    folder = Path(__file__).resolve().parents[2] / "data"
    return folder if folder.is_dir() else None


def check_root(root) -> None:
    """Raise ``ValueError`` unless ``root`` is ``None``, a string or a path."""
    if root is not None and not isinstance(root, (str, os.PathLike)):
        raise ValueError(f"root: expected None, a str or a path, got {type(root).__name__}")


def search_roots(root=None) -> list[Path]:
    """Folders to search, in order: ``root``, ``$VAECORE_DATA_DIR``, repository ``data/``,
    then the download folder (``~/.cache/vaecore`` when none of those exists, so that an
    installed package finds what it downloaded before instead of downloading it again)."""
    check_root(root)
    env = os.environ.get(ENV_VAR)
    found = [Path(root).expanduser() if root is not None else None,
             Path(env).expanduser() if env else None, _repo_data_dir(), download_dir(root)]
    roots = []
    for folder in found:
        if folder is not None and folder not in roots:
            roots.append(folder)
    return roots


def download_dir(root=None) -> Path:
    """Download folder: ``root``, ``$VAECORE_DATA_DIR``, repo ``data/``, ``~/.cache/vaecore``."""
    env = os.environ.get(ENV_VAR)
    for folder in (root, env or None, _repo_data_dir()):
        if folder is not None:
            return Path(folder).expanduser()
    return Path.home() / ".cache" / "vaecore"


def file_key(path) -> tuple:
    """An in-memory cache key for a file: resolved path, modification time, size."""
    path = Path(path)
    info = path.stat()
    return str(path.resolve()), info.st_mtime_ns, info.st_size


def candidate_paths(names, dirs, roots) -> list[Path]:
    """``<root>/<dir>/<name>`` for each dir, then ``<root>/<name>``, root by root."""
    return [folder / sub / name for folder in roots
            for sub in (*dirs, "") for name in names]


def find_first(names, dirs, roots) -> tuple[Path | None, list[Path]]:
    """Return the first existing candidate path (or ``None``) and every path looked at."""
    looked = candidate_paths(names, dirs, roots)
    return next((p for p in looked if p.exists()), None), looked


def not_found_message(dataset: str, what: str, looked, reason: str,
                      subdir: str, expected) -> str:
    """Say what is missing, each place looked, why downloading failed, how to fix it."""
    places = "\n".join(f"  - {p}" for p in looked) or "  (no folder to look in)"
    return (f"{dataset}: {what} not found. Looked in:\n{places}\n{reason}\n"
            f"To use {dataset} offline, put the files {', '.join(expected)} "
            f"in a folder DIR/{subdir}/ and set the environment "
            f"variable {ENV_VAR}=DIR, or pass root=DIR (see data/README.md).")


def download_or_fail(dataset: str, remote: RemoteFile, subdir: str, root, download: bool,
                     looked, expected) -> Path:
    """Download ``remote`` to ``download_dir(root)/subdir``, or raise ``DataNotFoundError``.

    ``looked`` (the paths already searched) and ``expected`` (the dataset's file
    names) go into the error message, with the reason the download did not happen.
    """
    if not isinstance(download, bool):
        raise ValueError(f"download: expected True or False, got {download!r}")
    if not download:
        reason = "Downloading is switched off (download=False)."
    else:
        dest = download_dir(root) / subdir / remote.name
        try:
            return download_file(remote.urls, dest, remote.md5, remote.size)
        except DownloadError as err:
            reason = f"Downloading to {dest} failed: {err}"
    raise DataNotFoundError(not_found_message(
        dataset, f"file {remote.name!r}", looked, reason, subdir, expected or (remote.name,)))


def _folders(dirs, roots) -> list[Path]:
    """``<root>/<dir>`` for each dir, then ``<root>``, root by root."""
    return [folder / sub for folder in roots for sub in (*dirs, "")]


def _names(remote: RemoteFile) -> tuple[str, ...]:
    """The canonical name and its uncompressed form (without ``.gz``)."""
    return tuple(dict.fromkeys((remote.name, remote.name.removesuffix(".gz"))))


def _find_in(folder: Path, remote: RemoteFile) -> Path | None:
    return next((folder / n for n in _names(remote) if (folder / n).exists()), None)


def _incomplete_message(dataset: str, folder: Path, found: dict) -> str:
    have = [str(p.name) for p in found.values() if p is not None]
    lack = [name for name, p in found.items() if p is None]
    return (f"{dataset}: {folder} holds {have} but not {lack}. Files that belong "
            f"together (images and their labels) are taken from one folder, never "
            f"combined across folders. Put the missing files in {folder}, or remove "
            f"{have} from it (see data/README.md).")


def locate_together(dataset: str, remotes, dirs, root=None, download: bool = True,
                    expected=()) -> list[Path]:
    """Paths of all ``remotes``, all from the first folder that holds any of them.

    Folders are tried in lookup order; an uncompressed copy of a file is
    accepted. If the first folder holding some of the files lacks others,
    ``DataNotFoundError`` names the folder and what it lacks (files are never
    paired across folders), except when that folder is the download folder:
    then the missing files are downloaded into it. If no folder holds any, all
    are downloaded. ``dirs``, ``download`` and ``expected`` are as for ``locate``.
    """
    looked = []
    for folder in _folders(dirs, search_roots(root)):
        looked += [folder / n for r in remotes for n in _names(r)]
        found = {r.name: _find_in(folder, r) for r in remotes}
        if any(found.values()):
            break
    else:
        found = dict.fromkeys(r.name for r in remotes)
    partial = any(found.values()) and not all(found.values())
    if partial and not (folder == download_dir(root) / dirs[0] and download):
        raise DataNotFoundError(_incomplete_message(dataset, folder, found))
    return [found[r.name] or download_or_fail(dataset, r, dirs[0], root, download, looked,
                                              expected)
            for r in remotes]


def locate(dataset: str, remote: RemoteFile, dirs, root=None, download: bool = True,
           expected=()) -> Path:
    """Return the path of ``remote.name`` on disk, downloading it if it is nowhere.

    ``dirs`` are the dataset's folder names (the first is where a download goes);
    an uncompressed copy (name without ``.gz``) is accepted. ``expected`` lists
    all of the dataset's file names, for the error message. Raises
    ``DataNotFoundError`` if it is not found and cannot be downloaded, and
    ``CorruptDataError`` if a download arrives with the wrong size or md5.
    """
    return locate_together(dataset, [remote], dirs, root, download, expected)[0]
