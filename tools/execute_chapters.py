"""Re-execute chapter notebooks in place, so their committed outputs are fresh.

    python tools/execute_chapters.py chapters/*.ipynb [--check]

Each notebook runs top to bottom in a kernel of this environment, in its own
folder, with one thread (the chapters' setup cell also sets it), exactly as
``pytest --nbval`` will re-run it. ``--check`` executes twice without writing
and reports any cell whose text output differs between the two runs. Every
path must be an existing ``.ipynb`` file (checked before anything runs), and
each notebook is replaced atomically, so an interrupted run never leaves half
a chapter.
"""
from __future__ import annotations

import argparse
import configparser
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def execute(path: Path, timeout: int = 600) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}},
                            record_timing=False, store_widget_state=False)
    client.execute()
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = coalesce_streams(cell.outputs)
    return nb


def coalesce_streams(outputs: list) -> list:
    """``outputs`` with each run of consecutive prints to one stream joined into one output.

    The kernel flushes a stream whenever it likes, so one cell's printed table may be
    saved as several outputs, split at a different row on every run; the book would show
    one box per piece. nbval compares streams joined in the same way.
    """
    joined: list = []
    for output in outputs:
        previous = joined[-1] if joined else None
        if (output.get("output_type") == "stream" and previous is not None
                and previous.get("output_type") == "stream"
                and previous.get("name") == output.get("name")):
            previous["text"] = "".join(previous["text"]) + "".join(output["text"])
        else:
            joined.append(output)
    return joined


def write_atomic(nb, path: Path) -> None:
    """Write ``nb`` over ``path`` through a temporary file renamed only once it is complete."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.chmod(tmp, path.stat().st_mode & 0o777)  # keep the chapter's permissions
            nbformat.write(nb, f)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


SANITIZE = Path(__file__).resolve().parents[1] / "nbval_sanitize.cfg"


def sanitizers() -> list[tuple[re.Pattern, str]]:
    """The regex replacements nbval applies (nbval_sanitize.cfg): volatile output only."""
    config = configparser.ConfigParser()
    config.read(SANITIZE)
    return [(re.compile(config[s]["regex"]), config[s]["replace"]) for s in config.sections()]


def text_outputs(nb) -> list[str]:
    """Each code cell's text output, streams joined (the kernel may split them anywhere),
    with the same volatile parts (timings) masked as nbval masks them."""
    out = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        texts = ["".join(o.get("text") or o.get("data", {}).get("text/plain", ""))
                 for o in cell.get("outputs", [])]
        text = "".join(texts)
        for pattern, replacement in sanitizers():
            text = pattern.sub(replacement, text)
        out.append(text)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="run twice, compare, write nothing")
    args = parser.parse_args(argv)
    wrong = [str(p) for p in args.notebooks if not p.is_file() or p.suffix != ".ipynb"]
    if wrong:
        parser.error(f"expected existing .ipynb files, got {', '.join(wrong)}")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("PYTHONHASHSEED", "0")
    status = 0
    for path in args.notebooks:
        start = time.perf_counter()
        nb = execute(path)
        seconds = time.perf_counter() - start
        if args.check:
            again = text_outputs(execute(path))
            same = text_outputs(nb) == again
            status |= not same
            print(f"{path}: {seconds:.1f} s, {'deterministic' if same else 'OUTPUT DIFFERS'}")
        else:
            write_atomic(nb, path)
            print(f"{path}: executed in {seconds:.1f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
