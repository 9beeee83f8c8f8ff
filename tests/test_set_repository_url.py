"""tools/set_repository_url.py: a fork's URL everywhere it is used, and nothing else changed.

Run on a temporary copy of the files it rewrites: the URL reaches every copy, the
chapters' Colab cells install the release tag of ``vaecore.__version__`` from it, the
chapters differ from the originals in their first cell's source only, and setting the
original URL back restores every file byte for byte.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
FORK = "https://example.org/teacher/vae-course-fall"
RELEASE = "v" + __import__("vaecore").__version__  # the tag the Colab cells install


def load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = load("set_repository_url", ROOT / "tools" / "set_repository_url.py")
COLAB_CELL = load("chapter_guards", ROOT / "tests" / "test_chapters.py").COLAB_CELL


@pytest.fixture
def course(tmp_path) -> Path:
    """The files the tool reads and writes, copied."""
    for name in ("_config.yml", "CITATION.cff", "book/cite.md", "vaecourse/__init__.py",
                 "vaecore/__init__.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / name, tmp_path / name)
    for folder in ("chapters", "exercises"):  # the chapters and their student edition
        shutil.copytree(ROOT / folder, tmp_path / folder,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return tmp_path


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_fork_url_reaches_every_copy_and_nothing_else_changes(course):
    before = snapshot(course)
    old = tool.current_url(course)
    changed = tool.set_repository_url(FORK, course)
    chapters = sorted((course / "chapters").glob("*.ipynb"))
    chapters += sorted((course / "exercises").glob("*.ipynb"))
    assert len(changed) == len(chapters) + 4
    config = yaml.safe_load((course / "_config.yml").read_text(encoding="utf-8"))
    assert config["repository"]["url"] == FORK
    config_text = (course / "_config.yml").read_text(encoding="utf-8")
    assert config_text == before["_config.yml"].decode().replace(f"url: {old}", f"url: {FORK}")
    cff = yaml.safe_load((course / "CITATION.cff").read_text(encoding="utf-8"))
    assert cff["repository-code"] == FORK
    assert FORK in (course / "book" / "cite.md").read_text(encoding="utf-8")
    constant = (course / "vaecourse" / "__init__.py").read_text(encoding="utf-8")
    assert f'REPOSITORY_URL = "{FORK}"' in constant
    assert constant == before["vaecourse/__init__.py"].decode().replace(old, FORK)
    for path in chapters:
        new = json.loads(path.read_text(encoding="utf-8"))
        orig = json.loads(before[f"{path.parent.name}/{path.name}"])
        assert "".join(new["cells"][0]["source"]) == COLAB_CELL.format(url=f"{FORK}@{RELEASE}")
        new["cells"][0]["source"] = orig["cells"][0]["source"]
        assert new == orig, f"{path.name}: more than the first cell's source changed"
    for name, content in snapshot(course).items():
        assert old.encode() not in content, f"{name} still names {old}"


def test_setting_the_url_back_restores_every_file_byte_for_byte(course):
    old = tool.current_url(course)
    tool.set_repository_url(old, course)  # the Colab cells install this release
    before = snapshot(course)
    tool.set_repository_url(FORK + "/", course)  # a trailing slash is dropped
    assert tool.current_url(course) == FORK
    tool.set_repository_url(old, course)
    assert snapshot(course) == before
    assert tool.set_repository_url(old, course) == []  # already set: nothing to write


@pytest.mark.parametrize("url", ["github.com/you/fork", "https://x.org/a b", 'https://x.org/"a"',
                                 "https://x.org/fork@v1.0"])
def test_refuses_what_is_not_a_plain_url_and_writes_nothing(course, url):
    before = snapshot(course)
    with pytest.raises(ValueError):
        tool.set_repository_url(url, course)
    assert snapshot(course) == before


def test_a_chapter_out_of_step_stops_the_tool_before_it_writes(course):
    path = sorted((course / "chapters").glob("*.ipynb"))[-1]
    nb = json.loads(path.read_text(encoding="utf-8"))
    nb["cells"][0]["source"] = ["print('no install line')\n"]
    path.write_text(tool.notebook_text(nb), encoding="utf-8")
    before = snapshot(course)
    with pytest.raises(ValueError, match=path.name):
        tool.set_repository_url(FORK, course)
    assert snapshot(course) == before


def test_the_url_appears_only_in_files_the_tool_rewrites():
    url = tool.current_url(ROOT).encode()
    skip = {".git", ".venv", "_build", "student", "data", "build", "__pycache__"}
    rewritten = {"_config.yml", "CITATION.cff", os.path.join("book", "cite.md"),
                 os.path.join("vaecourse", "__init__.py")}
    found = set()
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in skip and not d.endswith(".egg-info")
                   and not d.startswith(".")]
        for name in files:
            path = Path(folder, name)
            if url in path.read_bytes():
                found.add(str(path.relative_to(ROOT)))
    notebooks = {f for f in found if f.startswith(("chapters", "exercises"))
                 and f.endswith(".ipynb")}
    assert found - notebooks == rewritten


def test_the_download_url_constant_is_the_book_s_repository_url():
    import vaecourse
    assert vaecourse.REPOSITORY_URL == tool.current_url(ROOT)


def test_the_student_edition_stays_the_edition_of_the_rewritten_chapters(course):
    edition = load("student_edition", ROOT / "tools" / "student_edition.py")
    tool.set_repository_url(FORK, course)
    for chapter in sorted((course / "chapters").glob("*.ipynb")):
        regenerated = edition.student_notebook(nbformat.read(chapter, as_version=4))
        committed = nbformat.read(course / "exercises" / chapter.name, as_version=4)
        assert regenerated == committed, chapter.name


def test_after_a_version_bump_the_tool_moves_the_colab_cells_to_the_new_tag(course):
    url = tool.current_url(course)
    init = course / "vaecore" / "__init__.py"
    init.write_text(init.read_text(encoding="utf-8").replace(
        f'__version__ = "{RELEASE[1:]}"', '__version__ = "9.8.7"'), encoding="utf-8")
    assert tool.release_ref(course) == "v9.8.7"
    assert tool.main(["--root", str(course)]) == 0  # no URL: the one in _config.yml
    assert tool.current_url(course) == url
    for path in sorted(course.glob("*/*.ipynb")):
        first = "".join(json.loads(path.read_text(encoding="utf-8"))["cells"][0]["source"])
        assert first == COLAB_CELL.format(url=f"{url}@v9.8.7"), path.name
    assert tool.set_repository_url(None, course) == []  # already there: nothing to write
