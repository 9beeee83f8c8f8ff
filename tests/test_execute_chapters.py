"""tools/execute_chapters.py: paths checked before anything runs, chapters replaced atomically."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("execute_chapters",
                                              ROOT / "tools" / "execute_chapters.py")
execute_chapters = importlib.util.module_from_spec(spec)
spec.loader.exec_module(execute_chapters)


@pytest.fixture
def chapter(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")])
    path = tmp_path / "01_chapter.ipynb"
    nbformat.write(nb, path)
    path.chmod(0o664)
    return path


def executed(path, timeout=600):
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    return nb


def test_every_path_is_checked_before_anything_runs(chapter, monkeypatch, capsys):
    monkeypatch.setattr(execute_chapters, "execute", lambda *a, **k: pytest.fail("it ran"))
    for wrong in (chapter.parent / "02_missing.ipynb", chapter.parent):
        with pytest.raises(SystemExit) as exit_:
            execute_chapters.main([str(chapter), str(wrong)])
        assert exit_.value.code == 2
        assert f"expected existing .ipynb files, got {wrong}" in capsys.readouterr().err


def test_the_executed_notebook_replaces_the_chapter_keeping_its_mode(chapter, monkeypatch):
    monkeypatch.setattr(execute_chapters, "execute", executed)
    assert execute_chapters.main([str(chapter)]) == 0
    assert nbformat.read(chapter, as_version=4).cells[0].outputs[0].text == "1\n"
    assert chapter.stat().st_mode & 0o777 == 0o664
    assert [p.name for p in chapter.parent.iterdir()] == [chapter.name]


def test_a_write_that_dies_halfway_leaves_the_chapter_intact(chapter, monkeypatch):
    before = chapter.read_bytes()

    def dies_halfway(nb, fp, **kwargs):
        if isinstance(fp, (str, Path)):
            Path(fp).write_text('{"cells": [')
        else:
            fp.write('{"cells": [')
        raise OSError("killed while writing")

    monkeypatch.setattr(execute_chapters, "execute", executed)
    monkeypatch.setattr(execute_chapters.nbformat, "write", dies_halfway)
    with pytest.raises(OSError, match="killed while writing"):
        execute_chapters.main([str(chapter)])
    assert chapter.read_bytes() == before
    assert [p.name for p in chapter.parent.iterdir()] == [chapter.name]


def test_consecutive_prints_to_one_stream_are_saved_as_one_output():
    from nbformat.v4 import new_output
    outputs = [new_output("stream", name="stdout", text="a\n"),
               new_output("stream", name="stdout", text=["b\n", "c\n"]),
               new_output("stream", name="stderr", text="warning\n"),
               new_output("stream", name="stdout", text="d\n"),
               new_output("execute_result", data={"text/plain": "1"}, execution_count=1),
               new_output("stream", name="stdout", text="e\n")]
    joined = execute_chapters.coalesce_streams(outputs)
    assert [(o["output_type"], o.get("name"), o.get("text")) for o in joined] == [
        ("stream", "stdout", "a\nb\nc\n"), ("stream", "stderr", "warning\n"),
        ("stream", "stdout", "d\n"), ("execute_result", None, None), ("stream", "stdout", "e\n")]
