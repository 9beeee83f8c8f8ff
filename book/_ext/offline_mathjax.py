"""MathJax 3 served from the built book, so equations typeset offline; never from a CDN.

``make install`` installs MathJax 3.2.2 from PyPI: ``django-static-mathjax`` in
``requirements.txt``, a packaging of MathJax's own ``es5`` build (Apache 2.0). At the start
of an HTML build this extension checks that ``mathjax_path`` (``_config.yml``) names the
local copy, ``mathjax/tex-chtml.js`` under ``_static/``, and that the installed files of the
subset the book uses are there and are the ones pinned here (:data:`SUBSET_SHA256`). When
the build has written the pages, it copies that subset into ``_static/mathjax/``:

- ``tex-chtml.js``: TeX input (with the AMS environments, ``\\newcommand``, the macros of
  ``mathjax3_config``) and HTML output, in one file;
- ``output/chtml/fonts/woff-v2/``: the fonts that output uses;
- ``input/tex/extensions/``: the TeX packages it loads when a page first uses one of
  their macros (``\\boldsymbol``, ``\\cancel``, ``\\mathclap``, ...);
- ``LICENSE``.

Anything else (a missing package, other files, a CDN address in ``mathjax_path``) stops the
build with an error that says what to do: the book never falls back to the network.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import shutil
from pathlib import Path

from sphinx.errors import ExtensionError

DISTRIBUTION = "django-static-mathjax"
PIN = "django-static-mathjax==3.2.2.1"
MATHJAX_PATH = "mathjax/tex-chtml.js"
#: sha256 of the lines ``"<path> <sha256 of the file>\n"`` of the subset, sorted by path.
SUBSET_SHA256 = "8963a2358b86ac3ebda157f6128b2796c545c6e22cfcd7af3aeca486fd1eef82"
FOLDERS = ("es5/output/chtml/fonts/woff-v2", "es5/input/tex/extensions")
FIX = f"run `make install` (or `.venv/bin/python -m pip install {PIN}`, as requirements.txt pins it)"


def installed_root() -> Path:
    """The folder of the installed MathJax (its ``es5/`` and ``LICENSE``)."""
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise ExtensionError(f"MathJax is not installed ({DISTRIBUTION} is missing): {FIX}. "
                             "The book serves MathJax from its own build, never from a CDN.")
    return Path(dist.locate_file("mathjax/static/mathjax"))


def subset(root: Path) -> dict[str, Path]:
    """``{path under _static/mathjax/: installed file}`` of the files the book serves."""
    files = {"tex-chtml.js": root / "es5" / "tex-chtml.js", "LICENSE": root / "LICENSE"}
    for folder in FOLDERS:
        for path in sorted((root / folder).glob("*")) if (root / folder).is_dir() else []:
            files[str(path.relative_to(root / "es5").as_posix())] = path
    return files


def digest(files: dict[str, Path]) -> str:
    lines = "".join(f"{name} {hashlib.sha256(path.read_bytes()).hexdigest()}\n"
                    for name, path in sorted(files.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def checked_subset(root: Path) -> dict[str, Path]:
    """The subset under ``root``; raises a clear error when a file is missing or differs."""
    files = subset(root)
    missing = [name for name, path in files.items() if not path.is_file()]
    if missing or len(files) < 3:
        raise ExtensionError(f"MathJax under {root} lacks {missing or list(FOLDERS)}: {FIX}.")
    if digest(files) != SUBSET_SHA256:
        raise ExtensionError(f"MathJax under {root} is not the pinned {PIN} (its files' sha256 "
                             f"differ from book/_ext/offline_mathjax.py): {FIX}.")
    return files


def check(app) -> None:
    if app.builder.format != "html":
        return
    path = app.config.mathjax_path
    if path != MATHJAX_PATH:
        raise ExtensionError(f"mathjax_path is {path!r}; set it to {MATHJAX_PATH!r} (the copy "
                             "served from _static/) under sphinx.config in _config.yml: the book "
                             "never loads MathJax from a CDN.")
    checked_subset(installed_root())


def copy(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    files = checked_subset(installed_root())
    out = Path(app.outdir) / "_static" / "mathjax"
    for name, path in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, out / name)


def setup(app):
    app.connect("builder-inited", check)
    app.connect("build-finished", copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
