"""End to end: the real CLI against the VAddy emulator over HTTP on 127.0.0.1."""

from __future__ import annotations

import re
import signal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from e2e.support import (
    REPORT_FILES,
    TARGETS,
    VERDICTS,
    CliRun,
    assert_sane_stderr,
    cli_env,
    run_cli,
    run_example,
    run_scenario,
    run_with_history,
    signal_while_waiting,
    write_policy,
    write_scenario,
)
from scangate.sandbox import EmulatorServer, LogEntry, sandbox_env
from scangate.sandbox.vaddy.emulator import VAddyEmulator

pytestmark = pytest.mark.slow

PROVIDER = "vaddy"
PROJECT = TARGETS[PROVIDER]
EXPECTED = {
    "clean": 0,
    "findings": 1,
    "critical": 1,
    "flaky": 1,
    "rate-limited": 1,
    "hostile": 1,
    "token-expiry": 1,  # no tokens on VAddy: the fault does not apply, `findings` plays
    "failed": 4,
    "cancelled": 4,
    "partial": 4,
    "busy-project": 0,  # if_running: wait (the default), then a clean scan
}
ALERTS = {
    "findings": 5,
    "critical": 2,
    "flaky": 5,
    "rate-limited": 5,
    "hostile": 5,
    "token-expiry": 5,
}
"""`alert_count` per scenario: its findings minus those marked false positives."""


def _form(entry: LogEntry) -> dict[str, list[str]]:
    return parse_qs(entry.body.decode("utf-8"), keep_blank_values=True)


def actions(server: EmulatorServer, action: str) -> list[LogEntry]:
    """The `POST /scan` requests with `action` (start and cancel share that route)."""
    return [e for e in server.log.find("POST", "/v2/scan") if _form(e).get("action") == [action]]


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_every_scenario_gives_its_exit_code_and_reports(tmp_path: Path, scenario: str) -> None:
    run, server = run_scenario(tmp_path, PROVIDER, scenario)
    assert run.exit == EXPECTED[scenario], run.stderr
    assert_sane_stderr(run.stderr)
    for name in REPORT_FILES:
        assert (run.out_dir / name).is_file(), name
    assert len(actions(server, "start")) == 1
    assert actions(server, "cancel") == []
    results = run.results()
    assert results["verdict"] == VERDICTS[run.exit]
    scan = results["scans"][0]
    assert len(scan["findings"]) == ALERTS.get(scenario, 0)
    assert {f["fingerprint"] for f in scan["findings"]} == {
        f"vaddy:{PROJECT}:{n}" for n in range(1, ALERTS.get(scenario, 0) + 1)
    }
    if scan["status"] == "completed":
        _assert_count_only_reports(run, scan["count_summary"])
    _assert_key_only_in_the_header(server)
    _assert_runcheck_before_the_one_start(server, busy=scenario == "busy-project")
    for value in sandbox_env(PROVIDER).values():
        assert value not in run.everything()
    assert server.errors == []


def _assert_count_only_reports(run: CliRun, summary: dict[str, Any]) -> None:
    """Every report says that VAddy gives counts only and that the details are in its console."""
    assert summary["console_url"].startswith("https://console.vaddy.net/scan_status/1/")
    assert "SQL Injection" in summary["checks"]
    assert "details live in the VAddy console" in run.report("junit.xml")
    assert "details live in the VAddy console" in run.report("gl-dast-report.json")
    count = summary["alert_count"]
    assert f"VAddy reports only an alert count ({count})" in run.report("scangate.sarif")
    assert "console" in run.report("summary.md")


def _assert_runcheck_before_the_one_start(server: EmulatorServer, *, busy: bool) -> None:
    """Runcheck first (polled until free when `busy`), then one start, then no more runcheck."""
    paths = [entry.path for entry in server.log.entries()]
    first_start = paths.index("/v2/scan")
    assert paths[:first_start] == ["/v2/scan/runcheck"] * first_start
    assert first_start >= 2 if busy else first_start == 1
    assert "/v2/scan/runcheck" not in paths[first_start:]


def _assert_key_only_in_the_header(server: EmulatorServer) -> None:
    """Every request: the key in `X-API-KEY`, never in a query or form; POSTs form-encoded."""
    key = sandbox_env(PROVIDER)["VADDY_AUTH_KEY"].encode()
    for entry in server.log.entries():
        assert entry.authenticated and "X-API-KEY" in entry.header_names
        assert "auth_key" not in entry.query and b"auth_key" not in entry.body
        assert key not in entry.body
    start = actions(server, "start")[0]
    assert start.headers["content-type"] == "application/x-www-form-urlencoded"
    assert _form(start) == {
        "user": [sandbox_env(PROVIDER)["VADDY_USER"]],
        "action": ["start"],
        "project_id": [PROJECT],
    }


def test_scan_options_reach_vaddy(tmp_path: Path) -> None:
    options = {"crawl_label": "login", "scan_type": ["SQLI", "XSS"]}
    run, server = run_scenario(tmp_path, PROVIDER, "clean", options=options)
    assert run.exit == 0, run.stderr
    assert server.log.count("GET", "/v2/crawl") == 1
    form = _form(actions(server, "start")[0])
    assert (form["crawl_id"], form["scan_type"]) == (["29"], ["SQLI,XSS"])
    assert run.results()["scans"][0]["count_summary"]["checks"] == ["SQL Injection", "XSS"]


# if_running on a busy project (VAddy runs one scan per project).


def test_if_running_fail_exits_4_and_starts_nothing(tmp_path: Path) -> None:
    run, server = run_scenario(tmp_path, PROVIDER, "busy-project", scan={"if_running": "fail"})
    assert run.exit == 4, run.stderr
    assert f"a scan is already running for {PROJECT}" in run.stderr
    # VAddy cannot attach (its runcheck names no scan), so the hint offers only `wait`.
    assert "hint: wait for it to finish, or set scan.if_running to wait\n" in run.stderr
    assert "attach" not in run.stderr
    assert server.log.count(category="start") == 0
    assert [e.path for e in server.log.entries()] == ["/v2/scan/runcheck"]
    assert_sane_stderr(run.stderr)


def test_timeout_while_waiting_for_a_busy_project_starts_and_cancels_nothing(
    tmp_path: Path,
) -> None:
    busy = write_scenario(
        tmp_path, "stuck", {"extends": "busy-project", "options": {"vaddy": {"busy_for": 600}}}
    )
    run, server = run_scenario(tmp_path, PROVIDER, busy, scan={"timeout": "3s"})
    assert run.exit == 4, run.stderr
    assert server.log.count(category="start") == 0
    assert "before any scan was started" in run.stderr


def test_attach_is_refused_at_validate_time(tmp_path: Path) -> None:
    write_policy(tmp_path, PROVIDER, "http://127.0.0.1:9/v2", scan={"if_running": "attach"})
    run = run_cli(["validate"], cwd=tmp_path, env=cli_env({}))
    assert run.exit == 2
    assert "VAddy cannot attach to a running scan" in run.stderr
    assert "if_running: wait or fail" in run.stderr
    assert_sane_stderr(run.stderr)


# Cancellation: SIGTERM, SIGINT and scan.timeout.


def test_sigterm_cancels_the_scan_and_writes_partial_reports(tmp_path: Path) -> None:
    run, server, seconds = signal_while_waiting(tmp_path, PROVIDER, signal.SIGTERM)
    assert run.exit == 143, run.stderr
    assert seconds < 5.0
    started = actions(server, "start")
    cancelled = actions(server, "cancel")
    assert len(started) == 1 and len(cancelled) == 1
    assert cancelled[0].status == 200
    assert _form(cancelled[0])["scan_id"] == [run.results()["scans"][0]["scan_id"]]
    results = run.results()
    assert results["scans"][0]["status"] == "interrupted"
    assert results["interrupted"]
    assert_sane_stderr(run.stderr)


def test_timeout_cancels_the_scan_and_exits_4(tmp_path: Path) -> None:
    run, server = run_scenario(tmp_path, PROVIDER, "slow", scan={"timeout": "3s"})
    assert run.exit == 4, run.stderr
    assert run.seconds < 3 + 5
    assert len(actions(server, "cancel")) == 1 and len(actions(server, "start")) == 1
    assert run.results()["scans"][0]["status"] == "timed_out"
    assert "scan.timeout of 3s reached" in run.stderr


# Lost start answers: never a duplicate scan.


@pytest.mark.parametrize(("processed", "code", "posts"), [(True, 3, 1), (False, 1, 2)])
def test_a_lost_start_answer_never_makes_a_second_scan(
    tmp_path: Path, processed: bool, code: int, posts: int
) -> None:
    fault = {"on": "start", "count": 1, "kind": "drop", "processed": processed}
    scenario = write_scenario(tmp_path, "lost", {"extends": "findings", "faults": [fault]})
    run, server = run_scenario(tmp_path, PROVIDER, scenario)
    assert run.exit == code, run.stderr
    assert len(actions(server, "start")) == posts
    assert isinstance(server.emulator, VAddyEmulator)
    assert len(server.emulator.scans) == 1
    assert "looking for the scan it may have created" in run.stderr
    assert_sane_stderr(run.stderr)


# Credentials.


def test_missing_credentials_exit_2_before_any_request(tmp_path: Path) -> None:
    credentials = {"VADDY_USER": "ci", "VADDY_AUTH_KEY": ""}
    run, server = run_scenario(tmp_path, PROVIDER, "clean", credentials=credentials)
    assert run.exit == 2
    assert "VADDY_AUTH_KEY" in run.stderr and "VADDY_USER" in run.stderr
    assert len(server.log) == 0
    assert_sane_stderr(run.stderr)


def test_rejected_credentials_exit_3_naming_the_variables(tmp_path: Path) -> None:
    creds = {**sandbox_env(PROVIDER), "VADDY_AUTH_KEY": "wrong-key-123456"}
    run, server = run_scenario(tmp_path, PROVIDER, "clean", credentials=creds)
    assert run.exit == 3
    assert "VADDY_USER + VADDY_AUTH_KEY" in run.stderr
    assert "wrong-key-123456" not in run.everything()
    assert server.log.count(category="start") == 0
    assert_sane_stderr(run.stderr)


def test_no_secret_is_printed_even_when_debugging(tmp_path: Path) -> None:
    run, _ = run_scenario(tmp_path, PROVIDER, "flaky", env={"SCANGATE_DEBUG": "true"})
    assert run.exit == 1, run.stderr
    for value in sandbox_env(PROVIDER).values():  # the user is an identifier: not needed either
        assert value not in run.everything()


def test_sandbox_flag_needs_no_account(tmp_path: Path) -> None:
    run = run_example(tmp_path, PROVIDER)
    assert run.exit == 0, run.stderr
    assert run.results()["verdict"] == "passed"


# -- the target's past scans time the polls (issue 16) -----------------------------------------


def test_seeded_history_times_the_polls_end_to_end(tmp_path: Path) -> None:
    run, server = run_with_history(
        tmp_path, PROVIDER, (6, 6, 7, 5, 6), options={"project_number": 1}
    )
    assert run.exit == 0, run.stderr
    assert "timing polls by 5 past scans of the target" in run.stdout + run.stderr
    assert "they took about 6s" in run.stdout + run.stderr
    listed = server.log.find("GET", "/v2/scan/results/list")
    assert len(listed) == 1
    # The key travels in its header only, as on every other VAddy call.
    assert "auth_key" not in listed[0].query and listed[0].authenticated
    polls = server.log.find("GET", "/v2/scan/result")
    # Without history the second poll comes 5 s after the first; with it, near the usual end.
    assert polls[1].time - polls[0].time >= 3


# -- the waiting log: another client's scan is never read as ours (issue 17) --------------------


def test_waiting_for_another_clients_scan_says_it_is_not_ours_before_starting_ours(
    tmp_path: Path,
) -> None:
    run, server = run_scenario(tmp_path, PROVIDER, "busy-project")
    assert run.exit == 0, run.stderr
    lines = [line.removeprefix("scangate: ") for line in run.stderr.splitlines()]
    busy = next(i for i, line in enumerate(lines) if " busy with scan " in line)
    free = next(i for i, line in enumerate(lines) if line.startswith(f"{PROJECT} free after "))
    started = next(i for i, line in enumerate(lines) if line.startswith("started VAddy scan "))
    assert busy < free < started
    assert lines[busy].startswith(f"VAddy target {PROJECT} busy with scan ")
    assert lines[busy].endswith(" (not ours); waiting for it to end before starting ours")
    assert lines[free].endswith(" (the other scan ended: running_process 0); starting our scan")
    # The project was busy for 3 s of the emulator's clock: the wait says about as much.
    waited = re.fullmatch(rf"{PROJECT} free after (\d+)s .*", lines[free])
    assert waited and 2 <= int(waited.group(1)) <= 30
    # Before our start, every line is about the other scan; none says "completed".
    theirs = lines[busy + 1 : free]
    assert theirs and all(line.startswith("other client's scan running (") for line in theirs)
    assert not any("completed" in line for line in lines[:started])
    # Our scan's lines name it, from its first poll to its end.
    scan_id = run.results()["scans"][0]["scan_id"]
    assert lines[started] == f"started VAddy scan {scan_id}"
    ours = [line for line in lines[started + 1 :] if line.startswith(f"scan {scan_id} ")]
    assert ours[-1].startswith(f"scan {scan_id} completed (finish) · ")
    assert server.log.count(category="start") == 1
