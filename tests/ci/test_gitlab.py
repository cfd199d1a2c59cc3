"""GitLab CI: collapsible sections and the dotenv report, read as GitLab reads them."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from conftest import HOSTILE, make_finding, make_report

from ci import parse_dotenv, sections_in
from scangate import ci
from scangate.ci import gitlab
from scangate.cli import build_parser
from scangate.errors import OutputError

GITLAB = {"GITLAB_CI": "true", "CI": "true"}


def test_a_section_has_gitlab_markers_around_its_lines_and_a_clean_header() -> None:
    stdout = io.StringIO()
    times = iter([1_700_000_000.7, 1_700_000_042.2])
    with gitlab.section(stdout, "waiting for scan " + HOSTILE, clock=lambda: next(times)):
        stdout.write("status running\n")
    start, end = sections_in(stdout.getvalue())
    assert (start.kind, start.time, start.collapsed) == ("start", 1_700_000_000, True)
    assert (end.kind, end.time, end.name) == ("end", 1_700_000_042, start.name)
    assert start.name.startswith("scangate_waiting_for_scan_")
    # The header is provider text: no ESC or CR survives to forge a marker of its own.
    assert start.header.isprintable() and "\x1b" not in start.header
    assert stdout.getvalue().count("\x1b[0Ksection_") == 2
    assert "status running\n" in stdout.getvalue().split(start.header, 1)[1]


def test_a_section_is_closed_when_the_block_fails() -> None:
    stdout = io.StringIO()
    with pytest.raises(KeyboardInterrupt), ci.section("waiting", GITLAB, stdout):
        raise KeyboardInterrupt
    assert [s.kind for s in sections_in(stdout.getvalue())] == ["start", "end"]


@pytest.mark.parametrize("title", ["", "::", "Scan #1 (ÄÖ)", "x" * 500])
def test_section_names_are_always_valid(title: str) -> None:
    name = gitlab.section_name(title)
    assert name.startswith("scangate")
    assert len(name) <= 70
    assert all(c.isascii() and (c.isalnum() or c in "_.-") for c in name)


def test_the_dotenv_report_carries_the_outputs_gitlab_can_read() -> None:
    values = ci.outputs(make_report([make_finding(i) for i in range(6)]), [])
    text, skipped = gitlab.dotenv_text(values)
    parsed = parse_dotenv(text)
    expected = {gitlab.dotenv_key(name): value for name, value in values.items() if value}
    assert parsed == expected
    assert parsed["SCANGATE_VERDICT"] == "failed"
    assert parsed["SCANGATE_SCAN_ID"] == "scan_abc123"
    assert "SCANGATE_SARIF_FILE" not in parsed  # nothing written: left out, not empty
    assert skipped == []


@pytest.mark.parametrize(
    "value",
    ["a=b", "two\nlines", " padded", "'quoted'", "\x1b[31mred", "lone \ud800"],
)
def test_values_gitlab_would_misread_are_left_out_not_altered(value: str) -> None:
    values = {"verdict": "passed", "scan-id": value}
    text, skipped = gitlab.dotenv_text(values)
    assert parse_dotenv(text) == {"SCANGATE_VERDICT": "passed"}
    assert skipped == ["scan-id"]


def test_the_dotenv_report_stays_under_five_kibibytes() -> None:
    values = {"verdict": "failed", "scan-id": " ".join(f"scan_{i:06d}" for i in range(600))}
    values |= {"high": "3"}
    text, skipped = gitlab.dotenv_text(values)
    assert parse_dotenv(text) == {"SCANGATE_VERDICT": "failed", "SCANGATE_HIGH": "3"}
    assert skipped == ["scan-id"]


def test_publish_under_gitlab_writes_the_dotenv_next_to_the_reports(tmp_path: Path) -> None:
    written = [tmp_path / "reports" / "scangate.sarif", tmp_path / "reports" / "junit.xml"]
    stdout = io.StringIO()
    report = make_report([make_finding(3)])
    ci.publish(report, written, GITLAB, stdout)
    parsed = parse_dotenv((tmp_path / "reports" / "scangate.env").read_text(encoding="utf-8"))
    assert parsed["SCANGATE_VERDICT"] == "failed"
    assert parsed["SCANGATE_HIGH"] == "1"
    assert parsed["SCANGATE_SARIF_FILE"] == ci.shown_path(written[0])
    assert stdout.getvalue() == ""


def test_an_unrepresentable_output_is_named_in_the_log(tmp_path: Path) -> None:
    stdout = io.StringIO()
    gitlab.write_dotenv(tmp_path / "scangate.env", {"scan-id": "a=b"}, stdout)
    assert "scan-id" in stdout.getvalue()
    assert (tmp_path / "scangate.env").read_text(encoding="utf-8") == ""


def test_an_unwritable_dotenv_is_an_output_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("", encoding="utf-8")
    with pytest.raises(OutputError, match="dotenv"):
        gitlab.write_dotenv(tmp_path / "file" / "scangate.env", {"verdict": "x"}, io.StringIO())


def test_github_wins_when_both_runners_claim_the_job(tmp_path: Path) -> None:
    stdout = io.StringIO()
    with ci.section("waiting", GITLAB | {"GITHUB_ACTIONS": "true"}, stdout):
        pass
    assert stdout.getvalue() == "::group::waiting\n::endgroup::\n"


def test_a_started_scan_id_reaches_the_variable_scangate_wait_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ci.publish_start("scan_42", tmp_path / "reports", GITLAB, io.StringIO())
    dotenv = parse_dotenv((tmp_path / "reports" / gitlab.DOTENV_NAME).read_text("utf-8"))
    assert dotenv == {"SCANGATE_SCAN_ID": "scan_42"}
    # GitLab exports the dotenv variables into the next job, where `scangate wait` runs.
    for key, value in dotenv.items():
        monkeypatch.setenv(key, value)
    assert build_parser().parse_args(["wait"]).scan_id == "scan_42"


def publish_gitlab_failure(
    failure: ci.Failure, reports_dir: Path | None, *, reported: bool = False
) -> tuple[str, list[str]]:
    stdout = io.StringIO()
    warnings: list[str] = []
    ci.publish_failure(
        failure,
        GITLAB,
        stdout,
        reports_dir=reports_dir,
        redact=lambda text: text.replace("hunter2-secret", "***"),
        warn=warnings.append,
        reported=reported,
    )
    return stdout.getvalue(), warnings


def test_a_failure_is_an_open_section_and_a_dotenv_in_the_reports_dir(tmp_path: Path) -> None:
    failure = ci.Failure(
        3, "provider error", "refused hunter2-secret\n" + HOSTILE, "check", "s-7", resumable=True
    )
    log, warnings = publish_gitlab_failure(failure, tmp_path / "reports")
    start, end = sections_in(log)
    assert (start.header, start.collapsed, end.name) == ("scangate: error", False, start.name)
    body = log.split(start.header, 1)[1]
    assert "refused ***" in body and "hunter2-secret" not in log
    assert "fix: check\n" in body and "resume with `scangate wait --scan-id s-7`" in body
    assert body.count("\x1b[0Ksection_") == 1  # hostile text forged no marker
    dotenv = parse_dotenv((tmp_path / "reports" / gitlab.DOTENV_NAME).read_text("utf-8"))
    assert dotenv == {"SCANGATE_VERDICT": "error", "SCANGATE_SCAN_ID": "s-7"}
    assert warnings == []


def test_a_failure_before_the_policy_loaded_writes_the_dotenv_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    publish_gitlab_failure(ci.Failure(2, "policy error", "typo", "fix it"), None)
    dotenv = parse_dotenv((tmp_path / gitlab.DOTENV_NAME).read_text("utf-8"))
    assert dotenv == {"SCANGATE_VERDICT": "error"}


def test_a_failure_after_a_report_leaves_its_dotenv_alone(tmp_path: Path) -> None:
    (tmp_path / gitlab.DOTENV_NAME).write_text("SCANGATE_VERDICT=incomplete\n", "utf-8")
    log, _ = publish_gitlab_failure(
        ci.Failure(3, "provider error", "lost", "resume"), tmp_path, reported=True
    )
    assert "scangate: error" in log
    assert (tmp_path / gitlab.DOTENV_NAME).read_text("utf-8") == "SCANGATE_VERDICT=incomplete\n"


def test_an_unwritable_dotenv_after_a_failure_is_a_warning(tmp_path: Path) -> None:
    (tmp_path / gitlab.DOTENV_NAME).mkdir()
    log, warnings = publish_gitlab_failure(ci.Failure(4, "timeout", "late", "wait"), tmp_path)
    assert "scangate: scan did not complete" in log
    [warning] = warnings
    assert "cannot write the dotenv report" in warning
    assert warning.endswith("the exit status stays 4")
