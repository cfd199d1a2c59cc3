"""End to end: the real CLI against the CyStack emulator over HTTP on 127.0.0.1.

The bundled scenarios run once per module, four at a time (each is a CLI subprocess that mostly
sleeps between polls), and several tests read the same runs.
"""

from __future__ import annotations

import itertools
import re
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from e2e.support import (
    REPORT_FILES,
    VERDICTS,
    CliRun,
    assert_sane_stderr,
    cli_env,
    decisions,
    run_beside_a_running_scan,
    run_example,
    run_scenario,
    run_with_history,
    sandbox,
    scangate,
    signal_while_waiting,
    write_policy,
    write_scenario,
)
from scangate.sandbox import EmulatorServer, LogEntry, sandbox_env

pytestmark = pytest.mark.slow

PROVIDER = "cystack"
STAGING_ID = "5b1e7c2a-8d4f-4e6a-9c3b-1f2e3d4c5b6a"
"""The emulator's seeded target `https://staging.example.com`."""
EXPECTED = {
    "clean": 0,
    "findings": 1,
    "critical": 1,
    "flaky": 1,
    "rate-limited": 1,
    "hostile": 1,
    "token-expiry": 1,  # a static API key: the fault does not apply, the verdict is `findings`'
    "failed": 4,  # CyStack has no failed status: the scan is seen Stopping, then Stopped
    "cancelled": 4,
    "many-findings": 1,
}
DEBUG = frozenset({"flaky", "failed", "hostile", "many-findings"})
"""Scenarios run with SCANGATE_DEBUG=true, for the secret canary."""
Runs = dict[str, tuple[CliRun, EmulatorServer]]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """Every scenario of `EXPECTED`, run once through `scangate run`."""

    def one(scenario: str) -> tuple[str, tuple[CliRun, EmulatorServer]]:
        env = {"SCANGATE_DEBUG": "true"} if scenario in DEBUG else None
        return scenario, run_scenario(
            tmp_path_factory.mktemp(scenario), PROVIDER, scenario, env=env
        )

    with ThreadPoolExecutor(4) as pool:
        return dict(pool.map(one, sorted(EXPECTED)))


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_every_scenario_gives_its_exit_code_and_reports(runs: Runs, scenario: str) -> None:
    run, server = runs[scenario]
    assert run.exit == EXPECTED[scenario], run.stderr
    assert_sane_stderr(run.stderr)
    for name in REPORT_FILES:
        assert (run.out_dir / name).is_file(), name
    assert server.log.count(category="start") == 1
    assert server.log.count(category="cancel") == 0
    results = run.results()
    assert results["verdict"] == VERDICTS[run.exit]


def test_a_scan_stopped_on_cystacks_side_is_reported_cancelled(runs: Runs) -> None:
    for scenario in ("failed", "cancelled"):
        run, _ = runs[scenario]
        scan = run.results()["scans"][0]
        assert scan["status"] == "cancelled"
        assert "was stopped by someone (it was seen Stopping)" in run.stderr
        assert len(scan["findings"]) == 1  # what the scan found before it was stopped


def test_the_false_positive_is_shown_and_not_counted(runs: Runs) -> None:
    run, _ = runs["findings"]
    findings = run.results()["scans"][0]["findings"]
    flagged = [f for f in findings if f["gate"]["decision"] == "false_positive"]
    assert [f["title"] for f in flagged] == ["Outdated jQuery library"]
    assert (
        flagged[0]["gate"]["reason"]
        == "marked false positive by the provider (false_positive: true)"
    )
    for report in ("junit.xml", "scangate.sarif"):
        assert "marked false positive by the provider (false_positive: true)" in run.report(report)


def test_250_findings_are_all_fetched_one_detail_each(runs: Runs) -> None:
    run, server = runs["many-findings"]
    details = server.log.find("GET", r"/v1/vulnerabilities/[^/]+", category="findings")
    assert len(details) == 250 and len({d.path for d in details}) == 250
    assert all(d.status == 200 for d in details)
    findings = run.results()["scans"][0]["findings"]
    # Generated findings share 13 rules and one path shape, hence fewer fingerprints than URLs.
    assert len(findings) == 250 and len({f["url"] for f in findings}) == 250


def test_faults_do_not_change_the_verdict(runs: Runs) -> None:
    (calm, _), (flaky, server) = runs["findings"], runs["flaky"]
    assert server.log.count(fault="5xx") >= 2 and server.log.count(fault="drop") == 1
    assert server.log.count(fault="malformed") == 1

    assert flaky.exit == calm.exit == 1
    assert decisions(flaky.results()) == decisions(calm.results())


def test_no_secret_is_ever_printed_or_written(runs: Runs) -> None:
    key = sandbox_env(PROVIDER)["CYSTACK_API_KEY"]
    for scenario, (run, _) in runs.items():
        assert key not in run.everything(), scenario


@pytest.mark.parametrize(
    ("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"]
)
def test_a_signal_stops_the_scan_and_writes_partial_reports(
    tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    run, server, seconds = signal_while_waiting(tmp_path, PROVIDER, sig)
    assert run.exit == code, run.stderr
    assert seconds < 5.0
    stops = server.log.find("GET", r"/v1/scans/[^/]+/stop")
    assert len(stops) == 1 and stops[0].category == "cancel" and stops[0].status == 200
    assert server.log.count(category="start") == 1
    results = run.results()
    assert results["scans"][0]["status"] == "interrupted"
    assert results["interrupted"]
    assert_sane_stderr(run.stderr)


def test_sigterm_during_the_detail_fetch_exits_at_once(tmp_path: Path) -> None:
    released = threading.Event()
    details = itertools.count(1)

    def latency(entry: LogEntry) -> None:
        if entry.category == "findings":
            # The 10th detail hangs (until the test ends); the others take 50 ms.
            released.wait(60 if next(details) == 10 else 0.05)

    with sandbox(PROVIDER, "many-findings", on_request=latency) as server:
        write_policy(tmp_path, PROVIDER, server.base_url)
        process = subprocess.Popen(
            scangate("run"),
            cwd=tmp_path,
            env=cli_env(sandbox_env(PROVIDER)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            began = time.monotonic()
            while server.log.count(category="findings") < 20:
                assert process.poll() is None and time.monotonic() - began < 30
                time.sleep(0.05)
            process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            _, stderr = process.communicate(timeout=30)
            seconds = time.monotonic() - signalled
        finally:
            released.set()
            if process.poll() is None:
                process.kill()
    # Fetch threads are daemons: the hung one does not hold the process past the 5 s budget.
    assert process.returncode == 143, stderr
    assert seconds < 5.0
    assert server.log.count(category="findings") < 250
    assert_sane_stderr(stderr)


def test_timeout_stops_the_scan_and_exits_4(tmp_path: Path) -> None:
    run, server = run_scenario(tmp_path, PROVIDER, "slow", scan={"timeout": "3s"})
    assert run.exit == 4, run.stderr
    assert run.seconds < 3 + 5
    assert server.log.count("GET", r"/v1/scans/[^/]+/stop", category="cancel") == 1
    assert server.log.count(category="start") == 1
    assert run.results()["scans"][0]["status"] == "timed_out"
    assert "scan.timeout of 3s reached" in run.stderr


def test_on_timeout_keep_leaves_the_scan_running_and_says_how_to_resume(tmp_path: Path) -> None:
    run, server = run_scenario(
        tmp_path, PROVIDER, "slow", scan={"timeout": "2s", "on_timeout": "keep"}
    )
    assert run.exit == 4
    assert server.log.count(category="cancel") == 0
    assert "scangate wait --scan-id" in run.stderr


def _running_scan(base_url: str) -> str:
    key = sandbox_env(PROVIDER)["CYSTACK_API_KEY"]
    answer = requests.post(
        f"{base_url}/scans",
        json={"target": STAGING_ID, "profile": 2},
        headers={"Authorization": f"Bearer {key}"},
        timeout=5,
    )
    assert answer.status_code == 201, answer.text
    return answer.headers["Location"].rsplit("/", 1)[1]


def test_if_running_fail_exits_4_naming_the_scan_and_starts_nothing(tmp_path: Path) -> None:
    run, server, busy = run_beside_a_running_scan(tmp_path, PROVIDER, "slow", "fail", _running_scan)
    assert run.exit == 4
    assert busy in run.stderr
    assert server.log.count(category="start") == 1  # only the busy scan made above


def test_if_running_attach_gates_the_running_scan(tmp_path: Path) -> None:
    run, server, busy = run_beside_a_running_scan(
        tmp_path, PROVIDER, "findings", "attach", _running_scan
    )
    assert run.exit == 1, run.stderr
    assert server.log.count(category="start") == 1
    assert run.results()["scans"][0]["scan_id"] == busy


def test_a_lost_start_answer_finds_the_scan_by_its_marker(tmp_path: Path) -> None:
    scenario = write_scenario(
        tmp_path,
        "lost-start",
        {"extends": "findings", "faults": [{"on": "start", "count": 1, "kind": "drop"}]},
    )
    run, server = run_scenario(tmp_path, PROVIDER, scenario)
    assert run.exit == 1, run.stderr
    assert server.log.count(category="start") == 1
    assert "looking for the scan it may have created" in run.stderr
    assert "found scan" in run.stderr


@pytest.mark.parametrize(
    ("target", "words"),
    [
        (
            "staging.example.com",
            "no target has the address staging.example.com; close matches: "
            f"https://staging.example.com ({STAGING_ID})",
        ),
        ("https://shop.example.com", "2 targets have the address https://shop.example.com"),
        ("00000000-0000-4000-8000-000000000000", "no target with id"),
    ],
    ids=["none", "several", "unknown-uuid"],
)
def test_an_unresolvable_target_exits_3_before_starting(
    tmp_path: Path, target: str, words: str
) -> None:
    run, server = run_scenario(tmp_path, PROVIDER, "clean", scan={"target": target})
    assert run.exit == 3, run.stderr
    assert words in run.stderr
    assert server.log.count(category="start") == 0
    assert_sane_stderr(run.stderr)


def test_a_target_uuid_and_every_option_run_a_scan(tmp_path: Path) -> None:
    options = {
        "profile": 3,
        "description": "nightly gate",
        "notification": [29],
        "headers": {"X-Env": "ci"},
    }
    run, server = run_scenario(
        tmp_path, PROVIDER, "clean", scan={"target": STAGING_ID}, options=options
    )
    assert run.exit == 0, run.stderr
    (start,) = server.log.find(category="start")
    body = start.json()
    assert (body["target"], body["profile"], body["notification"]) == (STAGING_ID, 3, [29])
    assert re.fullmatch(r"nightly gate \(scangate-[0-9a-f]{16}\)", body["description"])
    assert body["advances"] == {"headers": {"X-Env": "ci"}}
    assert run.results()["scans"][0]["details"]["profile"] == "High Risk Vulnerabilities"


def test_missing_credentials_exit_2_before_any_request(tmp_path: Path) -> None:
    run, server = run_scenario(tmp_path, PROVIDER, "clean", credentials={"CYSTACK_API_KEY": " "})
    assert run.exit == 2
    assert "CYSTACK_API_KEY" in run.stderr
    assert len(server.log) == 0
    assert_sane_stderr(run.stderr)


def test_rejected_credentials_exit_3_naming_the_variable(tmp_path: Path) -> None:
    run, server = run_scenario(
        tmp_path, PROVIDER, "clean", credentials={"CYSTACK_API_KEY": "wrong-key-123"}
    )
    assert run.exit == 3
    assert "CYSTACK_API_KEY" in run.stderr and "Invalid token." in run.stderr
    assert "wrong-key-123" not in run.everything()
    assert server.log.count(category="start") == 0
    assert_sane_stderr(run.stderr)


def test_sandbox_flag_needs_no_account(tmp_path: Path) -> None:
    run = run_example(tmp_path, PROVIDER)
    assert run.exit == 0, run.stderr
    assert run.results()["verdict"] == "passed"


# -- the target's past scans time the polls (issue 16) -----------------------------------------


def test_seeded_history_times_the_polls_end_to_end(tmp_path: Path) -> None:
    run, server = run_with_history(tmp_path, PROVIDER, (6, 6, 7, 5, 6))
    assert run.exit == 0, run.stderr
    # Only the three newest stopped scans are read (each detail is one request).
    assert "timing polls by 3 past scans of the target" in run.stdout + run.stderr
    assert "they took about 6s" in run.stdout + run.stderr
    # One list page, then the details of the three newest stopped scans.
    assert server.log.count(category="list") >= 2
