"""Every folder of Python code is a package that an install (the Docker image's `pip install .`) ships."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

from setuptools import find_packages

ROOT = Path(__file__).resolve().parent.parent


def test_every_code_folder_is_found_by_the_install() -> None:
    shipped = set(find_packages(str(ROOT), include=["telemetra*"]))
    folders = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "telemetra").rglob("*.py")}
    assert folders - shipped == set(), "add an __init__.py to these folders"


def test_every_console_file_is_package_data() -> None:
    """The console's pages, styles and scripts ship inside the package: a closed network gets them all."""

    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    console = ROOT / "telemetra" / "console"
    files = [p.relative_to(console).as_posix() for p in (console / "static").rglob("*") if p.is_file()]
    assert files
    missed = [f for f in files if not any(fnmatch.fnmatchcase(f, g) for g in globs["telemetra.console"])]
    assert missed == [], "add these to [tool.setuptools.package-data] in pyproject.toml"
