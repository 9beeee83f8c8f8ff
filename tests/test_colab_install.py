"""A chapter runs top to bottom where vaecore is not installed: its first cell installs it.

This is the Colab path, tested as far as it can be offline: a fresh virtual
environment that sees this environment's third-party packages (torch,
matplotlib, ...) but not vaecore, with ``VAECORE_SOURCE`` pointing the first
cell's ``pip install`` at this checkout instead of the repository URL.

Every chapter's first cell is the same (the last test checks it), so one chapter stands
for all: chapter 3, the cheapest that reads a data set
(MNIST) and loads no checkpoint. Chapter 1 took 51 s here, most of it its live training,
which nbval runs anyway.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = ROOT / "chapters" / "03_kl_closed_forms.ipynb"

RUN = """
import sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=600, kernel_name="python3", record_timing=False,
               resources={"metadata": {"path": sys.argv[2]}}).execute()
nbformat.write(nb, sys.argv[1])
"""


def skip_for_install(folder: str, names: list[str]) -> set[str]:
    """Leave out what pip does not need: hidden and build folders, the top-level data/,
    and the checkpoints' weights, which chapter 1 never loads (copying and packing
    them took most of this test's time)."""
    top_level, weights = Path(folder) == ROOT, Path(folder) == ROOT / "checkpoints"
    return {n for n in names if n.startswith(".") or n in ("__pycache__", "build", "_build")
            or n.endswith(".egg-info") or (top_level and n in ("data", "student"))
            or (weights and n.endswith(".pt"))}


def text_outputs(nb) -> list[str]:
    return ["".join(o.get("text") or o.get("data", {}).get("text/plain", ""))
            for c in nb.cells if c.cell_type == "code" for o in c.outputs
            if o.output_type != "display_data" or "image/png" in o.get("data", {})]


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("VAECORE_DATA_DIR"), reason="needs MNIST offline")
def test_first_cell_installs_vaecore_and_the_chapter_reproduces(tmp_path):
    venv = tmp_path / "venv"
    # Without a pip of its own (ensurepip took 6 to 10 s): the first cell's `python -m pip`
    # is this environment's, found with the other third-party packages, and installs into
    # the fresh environment, the interpreter that runs it.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # Third-party packages come from this environment; vaecore (an editable
    # install, activated only by a .pth processed in its own site dir) does not.
    Path(site, "course_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = tmp_path / "chapters"
    work.mkdir()
    # pip builds in the source tree, so install from a copy of the checkout.
    source = tmp_path / "checkout"
    shutil.copytree(ROOT, source, ignore=skip_for_install)
    env = {**os.environ, "VAECORE_SOURCE": str(source), "PIP_NO_BUILD_ISOLATION": "0",
           "PYTHONNOUSERSITE": "1"}
    env.pop("PYTHONPATH", None)
    probe = [python, "-c", "import importlib.util; print(importlib.util.find_spec('vaecore'))"]
    assert subprocess.run(probe, capture_output=True, text=True, cwd=work,
                          env=env).stdout.strip() == "None"
    notebook = work / CHAPTER.name
    notebook.write_bytes(CHAPTER.read_bytes())
    subprocess.run([python, "-c", RUN, str(notebook), str(work)], check=True, env=env,
                   cwd=work, timeout=900)
    installed = subprocess.run(probe, capture_output=True, text=True, cwd=work, env=env).stdout
    assert site in installed, installed  # now installed into the fresh environment
    fresh, committed = nbformat.read(notebook, as_version=4), nbformat.read(CHAPTER, as_version=4)
    assert text_outputs(fresh) == text_outputs(committed)


def test_every_chapter_s_first_cell_is_the_one_tested_above():
    first = {path.name: nbformat.read(path, as_version=4).cells[0].source
             for path in sorted((ROOT / "chapters").glob("*.ipynb"))}
    differ = [name for name, source in first.items() if source != first[CHAPTER.name]]
    assert not differ, f"these chapters install vaecore differently: {differ}"
