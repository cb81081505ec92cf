"""Every folder of Python code is a package that an install (the Docker image's `pip install .`) ships."""

from __future__ import annotations

from pathlib import Path

from setuptools import find_packages

ROOT = Path(__file__).resolve().parent.parent


def test_every_code_folder_is_found_by_the_install() -> None:
    shipped = set(find_packages(str(ROOT), include=["telemetra*"]))
    folders = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "telemetra").rglob("*.py")}
    assert folders - shipped == set(), "add an __init__.py to these folders"
