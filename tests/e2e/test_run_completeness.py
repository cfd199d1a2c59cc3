"""End to end: complete results through the real CLI and the emulators (issue 13).

Every page is read however many there are; a list that falls short of what the provider
announced makes the run incomplete (exit 4, or 1 when the findings fail anyway), naming both
numbers in every report; a list that does not end is a provider error (exit 3).
"""

from __future__ import annotations

import json
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from e2e.support import (
    CliRun,
    cli_env,
    run_cli,
    run_scenario,
    sandbox,
    write_policy,
    write_scenario,
)
from scangate.sandbox import LogEntry, sandbox_env
from scangate.sandbox.ncp_wsc.emulator import CROWD_MEMO, CROWD_TARGET

pytestmark = pytest.mark.slow

LAST = {
    "title": "SQL Injection on the last page",
    "rule": "sql-injection",
    "severity": "high",
    "url": "https://staging.example.com/last?q=1",
    "param": "q",
}
"""The only finding that breaks `fail_on: high`; it comes after every generated one."""
JSON_AND_SUMMARY = {"reports": {"dir": "reports", "formats": ["json", "markdown"]}}
"""The big scans write only these two: every finding is in scangate.json, and the other
formats take seconds more per 20,000 findings without telling anything new here."""


def _scenario(tmp_path: Path, name: str, **body: Any) -> str:
    return write_scenario(tmp_path, name, {"description": name, **body})


def _big(tmp_path: Path, count: int, options: dict[str, Any]) -> str:
    generate = {"count": count, "severity": "low", "first": True}
    return _scenario(
        tmp_path, "many-pages", duration=2, generate=generate, findings=[LAST], options=options
    )


def _assert_every_finding_counted(run: CliRun, lows: int) -> dict[str, Any]:
    assert run.exit == 1, run.stderr
    scan = run.results()["scans"][0]
    assert len(scan["findings"]) == lows + 1
    assert scan["status"] == "completed" and scan["shortfall"] == ""
    failing = [f for f in scan["findings"] if f["gate"]["decision"] == "failing"]
    assert [f["title"] for f in failing] == [LAST["title"]]
    counts = scan["gate"]["counts"]
    assert (counts["high"]["found"], counts["high"]["failing"]) == (1, 1)
    assert counts["low"]["found"] == counts["low"]["counted"] == lows
    assert f"{lows + 1} counted" in run.stderr
    return dict(scan)


def test_cyberorigen_reads_all_201_pages_of_findings(tmp_path: Path) -> None:
    """20,050 lows and, on page 201, the one high: the adapter once stopped after 200 pages."""
    scenario = _big(tmp_path, 20_050, {"cyberorigen": {"rate_limit": 100_000}})
    run, server = run_scenario(tmp_path, "cyberorigen", scenario, extra=JSON_AND_SUMMARY)
    _assert_every_finding_counted(run, 20_050)
    assert server.log.count(category="findings") == 201


def test_cystack_pages_past_a_thousand_targets_and_fetches_every_detail(tmp_path: Path) -> None:
    """The target is on page 101 of the lookup (the adapter once stopped after 100), and the
    scan's 1,006 vulnerabilities are all fetched, the high one last."""
    scenario = _big(tmp_path, 1005, {"cystack": {"extra_targets": 1005}})
    run, server = run_scenario(tmp_path, "cystack", scenario, extra=JSON_AND_SUMMARY)
    _assert_every_finding_counted(run, 1005)
    assert server.log.count("GET", r"/v1/targets") == 101
    assert server.log.count(category="findings") == 1006


def test_vaddy_pages_past_twenty_pages_of_crawls(tmp_path: Path) -> None:
    """The crawl labelled exactly `release` is on page 24 (the adapter once stopped at 20)."""
    scenario = _scenario(
        tmp_path, "crawls", extends="findings", options={"vaddy": {"crawl_history": 700}}
    )
    run, server = run_scenario(
        tmp_path, "vaddy", scenario, options={"crawl_label": "release"}, extra=JSON_AND_SUMMARY
    )
    assert run.exit == 1, run.stderr
    assert server.log.count("GET", r"/v2/crawl") == 24
    (start,) = server.log.find(category="start")
    assert parse_qs(start.body.decode())["crawl_id"] == ["1"]


class _HeldClock:
    """The emulator's clock, standing still until `release`: the crowd of NCP jobs stays in
    one state however long the CLI takes to page through it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._origin = time.monotonic()
        self._released: float | None = None

    def release(self) -> None:
        with self._lock:
            if self._released is None:
                self._released = time.monotonic()

    def monotonic(self) -> float:
        with self._lock:
            held = self._released is None
            return self._origin if held else self._origin + time.monotonic() - self._released

    def time(self) -> float:
        return time.time()


def test_ncp_finds_the_running_job_on_page_102_of_the_search(tmp_path: Path) -> None:
    """5,050 other jobs of the host are newer than the target's running job: the search for it
    takes 102 pages of 50 (the adapter once stopped after 100 and started a second, billed
    job). Attached, its findings gate the run."""
    clock = _HeldClock()

    def release_on_first_poll(entry: LogEntry) -> None:
        if entry.category == "poll" and b'"searchType": "memo"' in entry.body:
            clock.release()  # the CLI attached and polls the job by its memo

    scenario = _scenario(
        tmp_path, "crowd", extends="findings", duration=2, options={"ncp-wsc": {"crowd": 5050}}
    )
    with sandbox("ncp-wsc", scenario, clock=clock, on_request=release_on_first_poll) as server:
        write_policy(
            tmp_path,
            "ncp-wsc",
            server.base_url,
            scan={"if_running": "attach", "target": CROWD_TARGET},
        )
        run = run_cli(["run"], cwd=tmp_path, env=cli_env(sandbox_env("ncp-wsc")))
    assert run.exit == 1, run.stderr
    assert server.log.count(category="start") == 0
    searches = [json.loads(e.body) for e in server.log.find(category="poll")]
    crawl_pending = [
        s["page"] for s in searches if s["searchType"] == "url" and s["statusCode"] == 12
    ]
    assert max(crawl_pending) == 102
    job = next(j for j in server.emulator.jobs.values() if j.memo == CROWD_MEMO)
    scan = run.results()["scans"][0]
    assert scan["scan_id"] == job.instance_no and scan["shortfall"] == ""
    assert len(scan["findings"]) == 5  # WSC drops the provider-side false positive
    assert scan["gate"]["counts"]["high"]["failing"] == 1


# -- announced counts the fetched findings fall short of -----------------------------------------

SHORT = {
    "cyberorigen": (
        {"unlisted": 2},
        "CyberOrigen announced 6 findings but 4 were fetched; CyberOrigen announced 2 findings "
        "of high severity or above but 1 were fetched",
    ),
    "cystack": ({"vanished": 1}, "CyStack announced 6 vulnerabilities but 5 were fetched"),
    "ncp-wsc": (
        {"unlisted": 1},
        "NAVER Cloud Web Security Checker announced 5 findings but 4 were fetched; "
        "NAVER Cloud Web Security Checker announced 5 findings of low severity or above but 4 "
        "were fetched; NAVER Cloud Web Security Checker announced 1 findings in category "
        "'server-banner' but 0 were fetched",
    ),
    "cybersecpro": (
        {"unlisted": 1},
        "CyberSec Pro announced 6 findings but 5 were fetched; CyberSec Pro announced 2 findings "
        "of high severity or above but 1 were fetched",
    ),
}
"""Per provider: the emulator's broken-server option and the diagnosis it must produce."""


def _assert_every_report_says(run: CliRun, text: str) -> None:
    """The shortfall `text` is in stderr and in each of the five reports."""
    assert text in run.stderr
    scan = run.results()["scans"][0]
    assert scan["shortfall"] == text and text in scan["message"]
    sarif = run.parsed("scangate.sarif")
    notes = sarif["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert any(text in n["message"]["text"] for n in notes)
    assert sarif["runs"][0]["invocations"][0]["executionSuccessful"] is False
    gitlab = run.parsed("gl-dast-report.json")
    assert gitlab["scan"]["status"] == "failure"
    assert any(text in m["value"] for m in gitlab["scan"]["messages"])
    health = ET.fromstring(run.report("junit.xml")).find("testsuite/testcase")
    assert health is not None and health.get("classname") == "dast.scan"
    error = health.find("error")
    assert error is not None and text in (error.get("message") or "") + (error.text or "")
    # Markdown escapes punctuation; the words and numbers read as they are.
    assert text.split(";")[0].split("announced")[1].strip() in run.report("summary.md")


@pytest.mark.parametrize("provider", sorted(SHORT))
def test_fewer_findings_than_announced_exit_4_naming_both_numbers(
    tmp_path: Path, provider: str
) -> None:
    options, text = SHORT[provider]
    scenario = _scenario(tmp_path, "short", extends="findings", options={provider: options})
    run, _ = run_scenario(tmp_path, provider, scenario, gate={"fail_on": "critical"})
    assert run.exit == 4, run.stderr
    assert run.results()["verdict"] == "incomplete"
    _assert_every_report_says(run, text)


def test_a_shortfall_under_failing_findings_exits_1_and_still_says_so(tmp_path: Path) -> None:
    options, text = SHORT["cyberorigen"]
    scenario = _scenario(tmp_path, "short", extends="findings", options={"cyberorigen": options})
    run, _ = run_scenario(tmp_path, "cyberorigen", scenario)
    assert run.exit == 1, run.stderr
    _assert_every_report_says(run, text)


# -- lists that do not end -----------------------------------------------------------------------


def test_cyberorigen_ignoring_the_page_is_a_provider_error(tmp_path: Path) -> None:
    scenario = _scenario(
        tmp_path,
        "loop",
        extends="findings",
        generate=150,
        options={"cyberorigen": {"ignore_page": True}},
    )
    run, server = run_scenario(tmp_path, "cyberorigen", scenario)
    assert run.exit == 3, run.stderr
    assert "the list does not end (page 2 repeats page 1)" in run.stderr
    assert server.log.count(category="findings") == 2


def test_cystack_next_leading_back_is_a_provider_error(tmp_path: Path) -> None:
    scenario = _scenario(
        tmp_path, "loop", extends="findings", options={"cystack": {"loop_next": True}}
    )
    run, server = run_scenario(tmp_path, "cystack", scenario)
    assert run.exit == 3, run.stderr
    assert "CyStack targets: the list does not end (`next` does not lead past page 1" in run.stderr
    assert server.log.count(category="start") == 0


def test_vaddy_crawl_search_that_never_ends_is_a_provider_error(tmp_path: Path) -> None:
    scenario = _scenario(
        tmp_path,
        "loop",
        extends="findings",
        options={"vaddy": {"crawl_history": 700, "ignore_page": True}},
    )
    run, server = run_scenario(tmp_path, "vaddy", scenario, options={"crawl_label": "release"})
    assert run.exit == 3, run.stderr
    assert "crawl search: the list does not end (page 2 repeats page 1)" in run.stderr
    assert server.log.count("GET", r"/v2/crawl") == 2
    assert server.log.count(category="start") == 0


def test_ncp_job_search_that_never_ends_is_a_provider_error(tmp_path: Path) -> None:
    scenario = _scenario(
        tmp_path,
        "loop",
        extends="findings",
        options={"ncp-wsc": {"crowd": 200, "ignore_page": True}},
    )
    with sandbox("ncp-wsc", scenario) as server:
        write_policy(
            tmp_path,
            "ncp-wsc",
            server.base_url,
            scan={"if_running": "attach", "target": CROWD_TARGET},
        )
        run = run_cli(["run"], cwd=tmp_path, env=cli_env(sandbox_env("ncp-wsc")))
    assert run.exit == 3, run.stderr
    assert "job search: the list does not end (page 2 repeats page 1)" in run.stderr
    assert server.log.count(category="start") == 0
