"""End to end: the real CLI against the CyberOrigen emulator over HTTP on 127.0.0.1."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import requests

from e2e.support import (
    JWT,
    REPORT_FILES,
    VERDICTS,
    assert_sane_stderr,
    decisions,
    run_beside_a_running_scan,
    run_example,
    run_scenario,
    signal_while_waiting,
    write_scenario,
)
from scangate.sandbox import sandbox_env

pytestmark = pytest.mark.slow

PROVIDER = "cyberorigen"
EXPECTED = {
    "clean": 0,
    "findings": 1,
    "critical": 1,
    "flaky": 1,
    "rate-limited": 1,
    "hostile": 1,
    "token-expiry": 1,
    "failed": 4,
    "cancelled": 4,
}


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_every_scenario_gives_its_exit_code_and_reports(tmp_path: Path, scenario: str) -> None:
    run, server = run_scenario(tmp_path, PROVIDER, scenario)
    assert run.exit == EXPECTED[scenario], run.stderr
    assert_sane_stderr(run.stderr)
    for name in REPORT_FILES:
        assert (run.out_dir / name).is_file(), name
    assert server.log.count(category="start") == 1
    results = run.results()
    assert results["verdict"] == VERDICTS[run.exit]


def test_faults_do_not_change_the_verdict(tmp_path: Path) -> None:
    (tmp_path / "calm").mkdir()
    (tmp_path / "flaky").mkdir()
    calm, _ = run_scenario(tmp_path / "calm", PROVIDER, "findings")
    flaky, server = run_scenario(tmp_path / "flaky", PROVIDER, "flaky")
    assert server.log.count(fault="5xx") >= 2 and server.log.count(fault="drop") == 1
    assert server.log.count(fault="malformed") == 1

    assert flaky.exit == calm.exit == 1
    assert decisions(flaky.results()) == decisions(calm.results())


@pytest.mark.parametrize(
    ("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"]
)
def test_a_signal_cancels_the_scan_and_writes_partial_reports(
    tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    run, server, seconds = signal_while_waiting(tmp_path, PROVIDER, sig)
    assert run.exit == code, run.stderr
    assert seconds < 5.0
    assert server.log.count(category="cancel") == 1
    assert server.log.count(category="start") == 1
    results = run.results()
    assert results["scans"][0]["status"] == "interrupted"
    assert results["interrupted"]
    assert_sane_stderr(run.stderr)


def test_timeout_cancels_the_scan_and_exits_4(tmp_path: Path) -> None:
    run, server = run_scenario(tmp_path, PROVIDER, "slow", scan={"timeout": "3s"})
    assert run.exit == 4, run.stderr
    assert run.seconds < 3 + 5
    assert server.log.count(category="cancel") == 1
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
    key = sandbox_env(PROVIDER)["CYBERORIGEN_API_KEY"]
    answer = requests.post(
        f"{base_url}/scans",
        json={"target": "staging.example.com", "authorized": True, "scan_type": "quick"},
        headers={"X-API-Key": key},
        timeout=5,
    )
    answer.raise_for_status()
    return str(answer.json()["id"])


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


def test_a_lost_start_answer_finds_the_scan_instead_of_starting_another(tmp_path: Path) -> None:
    scenario = write_scenario(
        tmp_path,
        "lost-start",
        {"extends": "findings", "faults": [{"on": "start", "count": 1, "kind": "drop"}]},
    )
    run, server = run_scenario(tmp_path, PROVIDER, scenario)
    assert run.exit == 1, run.stderr
    assert server.log.count(category="start") == 1
    assert "looking for the scan it may have created" in run.stderr


def test_missing_credentials_exit_2_before_any_request(tmp_path: Path) -> None:
    run, server = run_scenario(
        tmp_path, PROVIDER, "clean", credentials={"CYBERORIGEN_API_KEY": " "}
    )
    assert run.exit == 2
    assert "CYBERORIGEN_API_KEY" in run.stderr and "CYBERORIGEN_USERNAME" in run.stderr
    assert len(server.log) == 0
    assert_sane_stderr(run.stderr)


def test_rejected_credentials_exit_3_naming_the_variables(tmp_path: Path) -> None:
    run, server = run_scenario(
        tmp_path, PROVIDER, "clean", credentials={"CYBERORIGEN_API_KEY": "wrong-key-123"}
    )
    assert run.exit == 3
    assert "CYBERORIGEN_API_KEY" in run.stderr
    assert server.log.count(category="start") == 0
    assert_sane_stderr(run.stderr)


@pytest.mark.parametrize("scenario", ["token-expiry", "flaky", "failed"])
def test_no_secret_is_ever_printed_or_written(tmp_path: Path, scenario: str) -> None:
    credentials = sandbox_env(PROVIDER, scenario)
    secrets = [v for k, v in credentials.items() if "USER" not in k]
    (tmp_path / "plain").mkdir()
    (tmp_path / "debug").mkdir()
    plain, _ = run_scenario(tmp_path / "plain", PROVIDER, scenario)
    debug, _ = run_scenario(tmp_path / "debug", PROVIDER, scenario, env={"SCANGATE_DEBUG": "true"})
    for text in (plain.everything(), debug.everything()):
        for secret in secrets:
            assert secret not in text
        # Runtime tokens (CyberOrigen JWTs) never show either.
        assert not JWT.search(text)


def test_sandbox_flag_needs_no_account(tmp_path: Path) -> None:
    run = run_example(tmp_path, PROVIDER)
    assert run.exit == 0, run.stderr
    assert run.results()["verdict"] == "passed"
