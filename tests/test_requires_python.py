"""`requires-python` tells the truth: the linters target the declared minimum, and the
interpreter running the suite satisfies it (CI runs the oldest supported Python, so a green CI
proves the minimum)."""

from __future__ import annotations

import re
import sys
import tomllib
from typing import Any

from conftest import ROOT


def _pyproject() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as handle:
        return tomllib.load(handle)


def _minimum() -> tuple[int, int]:
    declared = _pyproject()["project"]["requires-python"]
    match = re.fullmatch(r">=\s*(\d+)\.(\d+)", declared)
    assert match, f"requires-python {declared!r} is not a plain lower bound"
    return int(match[1]), int(match[2])


def test_ruff_and_mypy_target_the_declared_minimum() -> None:
    major, minor = _minimum()
    tools = _pyproject()["tool"]
    assert tools["ruff"]["target-version"] == f"py{major}{minor}"
    assert tools["mypy"]["python_version"] == f"{major}.{minor}"


def test_the_running_interpreter_satisfies_requires_python() -> None:
    assert sys.version_info[:2] >= _minimum()


def test_the_image_python_satisfies_requires_python() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    versions = re.findall(r"^FROM python:(\d+)\.(\d+)", dockerfile, re.MULTILINE)
    assert versions
    assert all((int(major), int(minor)) >= _minimum() for major, minor in versions)
