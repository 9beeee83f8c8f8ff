"""Which code produced a record: the package version, the git commit, and whether the tree was clean.

:func:`code_version` is written into every checkpoint record and every seed's
entry, so that a number in the book can be traced to the exact source that
produced it. :func:`require_clean` refuses, before any training starts, to
write a record into the checkout's ``checkpoints/`` from a tree with
uncommitted changes: such a record would name a commit that did not produce it.
Files under ``checkpoints/`` (what training writes) do not count as changes.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

from vaecore import __version__

__all__ = ["ROOT", "code_version", "require_clean", "AT_IMPORT"]

#: The checkout this package was imported from (meaningful for a clone or an editable install).
ROOT = Path(__file__).resolve().parents[1]


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True,
                              timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def code_version() -> dict:
    """``{"vaecore", "commit", "clean"}``; commit and clean are None outside a git checkout.

    ``clean`` is False when tracked files differ from the commit or untracked,
    non-ignored files exist, anywhere except under ``checkpoints/``.
    """
    commit = _git("rev-parse", "HEAD")
    if commit is None:
        return {"vaecore": __version__, "commit": None, "clean": None}
    changes = _git("status", "--porcelain", "--untracked-files=normal", "--", ".",
                   ":(exclude)checkpoints")
    return {"vaecore": __version__, "commit": commit.strip(),
            "clean": None if changes is None else changes.strip() == ""}


#: The code version when this module was first imported, i.e. when the process loaded its code.
AT_IMPORT = code_version()


def require_clean(what: str) -> dict:
    """The code version, or RuntimeError when the checkout has uncommitted changes.

    Also refused: a checkout whose commit changed since this process imported
    its code (:data:`AT_IMPORT`), since the running code is then the old commit's.
    ``what`` names the record about to be written, for the message.
    """
    version = code_version()
    if version["commit"] != AT_IMPORT["commit"]:
        raise RuntimeError(
            f"refusing to write {what}: the checkout moved from commit "
            f"{str(AT_IMPORT['commit'])[:12]} to {str(version['commit'])[:12]} while this process "
            "ran its code; start a new process")
    if version["clean"] is False:
        raise RuntimeError(
            f"refusing to write {what} from a modified tree: commit the changes first (git status "
            f"lists them), so that the record's commit {version['commit'][:12]} is the code that "
            "produced it")
    return version
