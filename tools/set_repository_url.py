"""Set the course's repository URL, and every copy of it, for a fork or a release.

    python tools/set_repository_url.py https://github.com/you/your-fork [--root DIR]
    python tools/set_repository_url.py     # the URL as it is; the Colab cells move to the release

The URL has one place: ``repository.url`` in ``_config.yml`` (the book's
repository and Colab buttons read it). Copies taken from it are rewritten here:

- the first cell of every chapter, whose Colab install line is ``git+<url>@v<version>``
  (the release tag of ``vaecore.__version__``, the tag the checkpoints are downloaded
  from), and of its student edition in ``exercises/`` (the same cell);
- ``repository-code`` in ``CITATION.cff``;
- the URL in ``book/cite.md`` (the BibTeX entry);
- ``REPOSITORY_URL`` in ``vaecourse/__init__.py``, where checkpoints are downloaded from.

In a notebook only the first cell's source changes: no other cell, no output,
no metadata, and the file keeps the layout nbformat writes. Comments and the
order of keys in ``_config.yml`` are kept.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
URL_LINE = re.compile(r"^(repository:[ \t]*\n(?:[ \t]+.*\n)*?[ \t]+url:[ \t]*)(\S+)[ \t]*$", re.M)
CFF_LINE = re.compile(r"^repository-code:.*$", re.M)
CONSTANT_LINE = re.compile(r'^REPOSITORY_URL = "[^"]*"$', re.M)
VERSION_LINE = re.compile(r'^__version__ = "([^"]+)"$', re.M)


def current_url(root: Path) -> str:
    return yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))["repository"]["url"]


def release_ref(root: Path) -> str:
    """The git tag of this version, ``v`` + ``vaecore.__version__``: what the Colab cells install."""
    (version,) = VERSION_LINE.findall((root / "vaecore" / "__init__.py").read_text(encoding="utf-8"))
    return f"v{version}"


def notebook_text(nb: dict) -> str:
    """A notebook as nbformat writes it (indent 1, sorted keys, non-ASCII kept)."""
    return json.dumps(nb, indent=1, sort_keys=True, separators=(",", ": "),
                      ensure_ascii=False) + "\n"


def set_config(text: str, new: str) -> str:
    text, count = URL_LINE.subn(lambda m: m.group(1) + new, text, count=1)
    if count != 1:
        raise ValueError("_config.yml: no `url:` line under `repository:`")
    return text


def set_first_cell(text: str, old: str, new: str, ref: str, name: str) -> str:
    """The notebook ``text`` whose first cell installs ``git+new@ref`` where it installed
    ``git+old`` or ``git+old@<any ref>``."""
    nb = json.loads(text)
    if notebook_text(nb) != text:
        raise ValueError(f"{name}: not in nbformat's layout; rewriting it would change "
                         "more than its first cell (re-save it with nbformat first)")
    first = nb["cells"][0]
    source = "".join(first["source"])
    install = re.compile(rf'"git\+{re.escape(old)}(@[^"\s]*)?"')
    if first["cell_type"] != "code" or len(install.findall(source)) != 1:
        raise ValueError(f"{name}: the first cell does not install from git+{old}")
    lines = install.sub(lambda _: f'"git+{new}@{ref}"', source).splitlines(keepends=True)
    first["source"] = lines
    return notebook_text(nb)


def set_citation(text: str, new: str) -> str:
    text, count = CFF_LINE.subn(f'repository-code: "{new}"', text, count=1)
    if count != 1:
        raise ValueError("CITATION.cff: no `repository-code:` line")
    return text


def set_constant(text: str, new: str) -> str:
    text, count = CONSTANT_LINE.subn(f'REPOSITORY_URL = "{new}"', text, count=1)
    if count != 1:
        raise ValueError('vaecourse/__init__.py: no `REPOSITORY_URL = "..."` line')
    return text


def rewrite(path: Path, change) -> bool:
    old_text = path.read_text(encoding="utf-8")
    new_text = change(old_text)
    if new_text != old_text:
        path.write_text(new_text, encoding="utf-8", newline="\n")
    return new_text != old_text


def set_repository_url(new: str | None = None, root: Path = ROOT) -> list[Path]:
    """Write ``new`` (default: the URL as it is) to ``_config.yml`` and its copies under
    ``root``, the Colab cells installing this version's tag; return the changed files."""
    old = current_url(root)
    new = old if new is None else new
    if not re.fullmatch(r"https?://[^\s\"'\\@]+", new):
        raise ValueError(f"expected an http(s) URL without spaces, quotes or @, got {new!r}")
    new, ref = new.rstrip("/"), release_ref(root)
    plan = [(root / "_config.yml", lambda t: set_config(t, new))]
    notebooks = sorted((root / "chapters").glob("*.ipynb")) + sorted((root / "exercises").glob("*.ipynb"))
    for nb in notebooks:
        name = f"{nb.parent.name}/{nb.name}"
        plan.append((nb, lambda t, name=name: set_first_cell(t, old, new, ref, name)))
    plan.append((root / "CITATION.cff", lambda t: set_citation(t, new)))
    plan.append((root / "book" / "cite.md", lambda t: t.replace(old, new)))
    plan.append((root / "vaecourse" / "__init__.py", lambda t: set_constant(t, new)))
    for path, change in plan:  # check everything before writing anything
        change(path.read_text(encoding="utf-8"))
    changed = [path for path, change in plan if rewrite(path, change)]
    if current_url(root) != new:
        raise RuntimeError("_config.yml: repository.url was not set")
    return changed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", default=None,
                        help="the repository's URL, e.g. https://github.com/you/your-fork "
                             "(default: the one in _config.yml, to move the Colab cells to "
                             "this version's tag after a release)")
    parser.add_argument("--root", type=Path, default=ROOT, help="the course's folder")
    args = parser.parse_args(argv)
    try:
        changed = set_repository_url(args.url, args.root)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for path in changed:
        print(f"rewrote {path.relative_to(args.root)}")
    print(f"repository.url = {current_url(args.root)}; the Colab cells install "
          f"@{release_ref(args.root)} ({len(changed)} files changed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
