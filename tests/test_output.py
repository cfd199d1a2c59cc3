"""Writing reports: every format, atomically, readable by the CI user that uploads them."""

from __future__ import annotations

import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import TODAY, make_finding, make_report

from scangate.errors import OutputError
from scangate.model import Severity
from scangate.output import summary_line, write_reports
from scangate.policy import ALL_FORMATS, GateSettings


def test_every_format_is_written_with_the_umask_permissions(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        written = write_reports(make_report([make_finding(4)]), ALL_FORMATS, tmp_path / "out")
    finally:
        os.umask(previous)
    assert sorted(p.name for p in written) == sorted(
        ["scangate.sarif", "junit.xml", "gl-dast-report.json", "scangate.json", "summary.md"]
    )
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]


def test_an_unwritable_directory_is_an_output_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(OutputError, match="cannot create the reports directory"):
        write_reports(make_report([]), ["json"], blocker / "out")


def test_summary_line_counts_what_the_gate_counted() -> None:
    line = summary_line(make_report([make_finding(4), make_finding(3)]))
    assert line.startswith("FAILED: 2 counted (1 critical, 1 high), 2 failing")


def test_summary_line_says_how_many_are_deferred_and_until_when() -> None:
    gate = GateSettings(fail_on=Severity.HIGH, enforce_from=TODAY + timedelta(days=10))
    line = summary_line(make_report([make_finding(4), make_finding(3)], gate=gate))
    assert line.startswith(
        "PASSED: 2 counted (1 critical, 1 high), 0 failing, 2 deferred until 2026-12-02, 0 ignored"
    )
    enforced = summary_line(make_report([make_finding(4)], gate=GateSettings(enforce_from=TODAY)))
    assert enforced.startswith("FAILED: 1 counted (1 critical), 1 failing, 0 ignored")
