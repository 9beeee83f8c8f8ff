"""book/_ext/offline_mathjax.py: the book's MathJax comes from the installed, pinned copy,
and a build without it stops with an error that says what to do, never using a CDN."""
from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from sphinx.errors import ExtensionError

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("offline_mathjax", ROOT / "book/_ext/offline_mathjax.py")
ext = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ext)


def fake_app(tmp_path, mathjax_path=ext.MATHJAX_PATH, fmt="html"):
    return SimpleNamespace(config=SimpleNamespace(mathjax_path=mathjax_path),
                           builder=SimpleNamespace(format=fmt), outdir=str(tmp_path))


@pytest.fixture
def copy_of_mathjax(tmp_path) -> Path:
    """The installed subset, copied with the installed layout."""
    root = tmp_path / "mathjax"
    for name, path in ext.subset(ext.installed_root()).items():
        where = root / ("LICENSE" if name == "LICENSE" else f"es5/{name}")
        where.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, where)
    return root


def test_the_book_config_points_mathjax_at_the_local_copy_and_loads_the_extension():
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["sphinx"]
    assert config["config"]["mathjax_path"] == ext.MATHJAX_PATH == "mathjax/tex-chtml.js"
    assert config["local_extensions"]["offline_mathjax"] == "book/_ext"
    pinned = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    assert ext.PIN in pinned


def test_the_installed_copy_is_the_pinned_one():
    files = ext.checked_subset(ext.installed_root())
    assert {"tex-chtml.js", "LICENSE", "output/chtml/fonts/woff-v2/MathJax_Main-Regular.woff",
            "input/tex/extensions/boldsymbol.js"} <= set(files)
    assert len(files) == 60
    assert b'VERSION="3.2.2"' in files["tex-chtml.js"].read_bytes()


def test_a_copy_is_checked_file_by_file(copy_of_mathjax):
    assert ext.digest(ext.checked_subset(copy_of_mathjax)) == ext.SUBSET_SHA256
    font = copy_of_mathjax / "es5/output/chtml/fonts/woff-v2/MathJax_Zero.woff"
    font.write_bytes(font.read_bytes() + b"\0")
    with pytest.raises(ExtensionError, match="not the pinned django-static-mathjax==3.2.2.1"):
        ext.checked_subset(copy_of_mathjax)


def test_a_missing_file_stops_the_build_and_says_what_to_do(copy_of_mathjax):
    (copy_of_mathjax / "es5" / "tex-chtml.js").unlink()
    with pytest.raises(ExtensionError, match=r"lacks \['tex-chtml.js'\].*make install"):
        ext.checked_subset(copy_of_mathjax)


def test_no_mathjax_installed_stops_the_build_and_says_what_to_do(monkeypatch):
    monkeypatch.setattr(ext, "DISTRIBUTION", "no-such-distribution-installed")
    with pytest.raises(ExtensionError, match="make install.*never from a CDN"):
        ext.installed_root()


@pytest.mark.parametrize("path", ["https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js",
                                  "//cdn.example.org/tex-chtml.js", "mathjax/tex-svg.js"])
def test_a_mathjax_path_other_than_the_local_copy_stops_the_build(tmp_path, path):
    with pytest.raises(ExtensionError, match="never loads MathJax from a CDN"):
        ext.check(fake_app(tmp_path, mathjax_path=path))
    ext.check(fake_app(tmp_path, mathjax_path=path, fmt="latex"))  # only HTML loads MathJax


def test_the_subset_lands_in_static_after_a_build_and_not_after_a_failed_one(tmp_path):
    ext.check(fake_app(tmp_path))
    ext.copy(fake_app(tmp_path / "failed"), RuntimeError("the build failed"))
    assert not (tmp_path / "failed").exists()
    ext.copy(fake_app(tmp_path), None)
    served = tmp_path / "_static" / "mathjax"
    files = ext.subset(ext.installed_root())
    assert sorted(p.relative_to(served).as_posix() for p in served.rglob("*") if p.is_file()) \
        == sorted(files)
    assert (served / "tex-chtml.js").read_bytes() == files["tex-chtml.js"].read_bytes()
