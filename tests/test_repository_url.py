"""One repository, one release: the book's buttons, the chapters' Colab cells and the
checkpoint download all name ``repository.url`` of ``_config.yml`` (its one place;
``tools/set_repository_url.py`` writes every copy), and the Colab cells install the
release whose tag the checkpoints are downloaded from (``v`` + ``vaecore.__version__``).
The built book's buttons are checked in ``tests/test_book_build.py``."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

import vaecore
import vaecourse
from vaecourse import store

ROOT = Path(__file__).resolve().parents[1]
URL = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["repository"]["url"]
RELEASE = f"v{vaecore.__version__}"
NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb")) + sorted((ROOT / "exercises").glob("*.ipynb"))
INSTALL = re.compile(r'"git\+([^"@\s]+)(?:@([^"\s]+))?"')


def colab_install(path: Path) -> tuple[str, str]:
    """(URL, git reference, "" for the default branch) that the notebook's first cell installs."""
    source = "".join(json.loads(path.read_text(encoding="utf-8"))["cells"][0]["source"])
    (found,) = INSTALL.findall(source)
    return found


def test_checkpoints_download_from_the_book_s_repository_at_this_release():
    assert vaecourse.REPOSITORY_URL == URL
    assert vaecourse.CHECKPOINT_REF == RELEASE
    assert store.url("NAME.pt") == f"{URL}/raw/{RELEASE}/checkpoints/NAME.pt"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_colab_cell_installs_from_the_book_s_repository(path):
    url, _ = colab_install(path)
    assert url == URL, f"run `python tools/set_repository_url.py {URL}`"


def test_the_colab_cells_install_the_release_the_checkpoints_come_from():
    refs = {f"{p.parent.name}/{p.name}": colab_install(p)[1] for p in NOTEBOOKS}
    wrong = {name: ref for name, ref in refs.items() if ref != RELEASE}
    assert not wrong, (f"these Colab cells do not install {RELEASE}, the tag the checkpoints "
                       f"come from: {wrong}; run `python tools/set_repository_url.py`")
