"""One distribution, two packages, no weights inside: the wheel stays small."""
from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_no_weights_inside_the_packages():
    for package in ("vaecore", "vaecourse"):
        assert not [p for p in (ROOT / package).rglob("*") if p.suffix in (".pt", ".pth", ".bin")]


def test_pyproject_ships_both_packages_and_no_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["packages"]["find"]["include"] == ["vaecore*", "vaecourse*"]
    assert "package-data" not in config


@pytest.mark.slow
def test_the_wheel_is_under_one_megabyte(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                    "--no-build-isolation", "-q", "-w", str(tmp_path)], check=True, cwd=tmp_path)
    (wheel,) = tmp_path.glob("vaecore-*.whl")
    assert wheel.stat().st_size < 2**20
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("vaecourse/zoo.py") for n in names)
    assert not [n for n in names if n.endswith(".pt")]
