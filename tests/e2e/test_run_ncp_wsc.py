"""End to end: the real CLI against the NCP WSC emulator over HTTP on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import requests

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
    sandbox,
    signal_while_waiting,
    write_policy,
    write_scenario,
)
from scangate.sandbox import EmulatorServer, load_scenario, sandbox_env
from scangate.sandbox.ncp_wsc.emulator import NO_WSC_ACCESS_KEY, NO_WSC_SECRET_KEY

pytestmark = pytest.mark.slow

PROVIDER = "ncp-wsc"
EXPECTED = {
    "clean": 0,
    "findings": 1,
    "critical": 1,
    "flaky": 1,
    "rate-limited": 1,
    "hostile": 1,
    "token-expiry": 1,  # no tokens at NCP: the fault does not apply, the `findings` verdict stays
    "failed": 4,
    "cancelled": 4,
}
"""The provider-neutral scenarios; the two NCP-only ones have tests of their own below."""
FINDINGS_COUNTS = {"high": (1, 1), "medium": (2, 0), "low": (2, 0)}
"""(counted, failing) per severity for `findings` and its variants: WSC drops the provider-side
false positive and rates the info finding Low."""
SIGNATURE_SHAPE = re.compile(r"[A-Za-z0-9+/]{43}=")
"""A Base64 HMAC-SHA256, the shape of `x-ncp-apigw-signature-v2`."""


def _create_job(server: EmulatorServer, memo: str = "someone-else") -> str:
    """Start a job the way another client would (signed createJob, then a memo search)."""
    env = sandbox_env(PROVIDER)
    key, secret = env["NCP_ACCESS_KEY"], env["NCP_SECRET_KEY"]

    def call(method: str, path: str, body: dict[str, Any]) -> Any:
        uri = "/api/v1" + path
        stamp = str(int(time.time() * 1000))
        message = f"{method} {uri}\n{stamp}\n{key}".encode()
        mac = hmac.new(secret.encode(), message, hashlib.sha256).digest()
        headers = {
            "x-ncp-apigw-timestamp": stamp,
            "x-ncp-iam-access-key": key,
            "x-ncp-apigw-signature-v2": base64.b64encode(mac).decode(),
        }
        answer = requests.request(
            method, server.root_url + uri, json=body, headers=headers, timeout=5
        )
        answer.raise_for_status()
        return answer.json()

    job = {
        "StartUrl": TARGETS[PROVIDER],
        "VulnItems": ["ALL"],
        "UserAgent": "PC Chrome",
        "Speed": "1",
        "Memo": memo,
    }
    call("PUT", "/job", job)
    search = {
        "searchType": "memo",
        "searchKeyword": memo,
        "statusCode": None,
        "limit": 1,
        "page": 1,
    }
    return str(call("POST", "/jobs/search", search)["resources"]["record_data"][0]["instanceNo"])


def _signal_while_waiting(
    tmp_path: Path, sig: signal.Signals, scenario: str, settle: float = 0.0
) -> tuple[CliRun, EmulatorServer, float]:
    """Run `scangate run`, send `sig` once it polls the job it created (and `settle` seconds
    after the create); return the run, the server and the seconds from the signal to the exit.

    The shared helper's default signals at the first poll after the start; here a poll must
    follow the create strictly, `settle` seconds after it.
    """
    return signal_while_waiting(
        tmp_path,
        PROVIDER,
        sig,
        scenario=scenario,
        ready=lambda server: _polled_after_start(server, settle),
    )


def _polled_after_start(server: EmulatorServer, settle: float) -> bool:
    entries = server.log.entries()
    start = next((e for e in entries if e.category == "start"), None)
    if start is None or server.clock.monotonic() - start.time < settle:
        return False
    return any(e.category == "poll" and e.time > start.time for e in entries)


def _cancel_paths(server: EmulatorServer) -> list[tuple[str, int | None]]:
    return [(e.path.rsplit("/", 1)[1], e.status) for e in server.log.find(category="cancel")]


def _assert_findings_verdict(run: CliRun) -> None:
    """The verdict of `findings`: faults and quirks must not change a single decision."""
    assert run.exit == 1, run.stderr
    counts = run.results()["scans"][0]["gate"]["counts"]
    for severity, (counted, failing) in FINDINGS_COUNTS.items():
        assert (counts[severity]["counted"], counts[severity]["failing"]) == (counted, failing)
    assert counts["critical"]["found"] == counts["info"]["found"] == 0


def _assert_complete_run(run: CliRun, server: EmulatorServer) -> None:
    assert_sane_stderr(run.stderr)
    for name in REPORT_FILES:
        assert (run.out_dir / name).is_file(), name
    assert server.log.count(category="start") == 1  # each createJob is billed
    results = run.results()
    assert results["verdict"] == VERDICTS[run.exit]
    assert results["scans"][0]["provider"] == PROVIDER
    # Canary: the secret key and the per-request signatures never show.
    text = run.everything()
    assert sandbox_env(PROVIDER)["NCP_SECRET_KEY"] not in text
    assert not SIGNATURE_SHAPE.search(text)


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_every_scenario_gives_its_exit_code_and_reports(tmp_path: Path, scenario: str) -> None:
    run, server = run_scenario(tmp_path, PROVIDER, scenario)
    assert run.exit == EXPECTED[scenario], run.stderr
    _assert_complete_run(run, server)
    if load_scenario(scenario).findings == load_scenario("findings").findings:
        _assert_findings_verdict(run)


def test_a_lost_create_answer_finds_the_job_by_memo(tmp_path: Path) -> None:
    run, server = run_scenario(tmp_path, PROVIDER, "ncp-wsc-lost-create")
    _assert_findings_verdict(run)
    _assert_complete_run(run, server)
    assert server.log.count(category="start", fault="drop") == 1
    assert "looking for the scan it may have created" in run.stderr
    (memo,) = {e.json()["Memo"] for e in server.log.find(category="start")}
    searches = [e.json() for e in server.log.find(category="poll")]
    lookups = [body for body in searches if body["searchType"] == "memo"]
    assert lookups and all(body["searchKeyword"] == memo for body in lookups)
    assert run.results()["scans"][0]["details"]["memo"] == memo


def test_service_errors_in_http_200_answers_do_not_change_the_verdict(tmp_path: Path) -> None:
    run, server = run_scenario(
        tmp_path, PROVIDER, "ncp-wsc-legacy-errors", env={"SCANGATE_DEBUG": "true"}
    )
    _assert_findings_verdict(run)
    _assert_complete_run(run, server)  # the canary, here with SCANGATE_DEBUG=true
    # Every third search answered errorCode 901, each of them with HTTP 200.
    assert {e.status for e in server.log.find(category="poll")} == {200}
    assert server.log.count(category="poll") >= 3


@pytest.mark.parametrize(
    ("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"]
)
def test_a_signal_cancels_a_pending_job(tmp_path: Path, sig: signal.Signals, code: int) -> None:
    run, server, seconds = _signal_while_waiting(tmp_path, sig, "slow")
    assert run.exit == code, run.stderr
    assert seconds < 5.0
    assert _cancel_paths(server) == [("cancel", 200)]
    assert server.log.count(category="start") == 1
    results = run.results()
    assert results["scans"][0]["status"] == "interrupted" and results["interrupted"]
    assert_sane_stderr(run.stderr)


def _crawling_scenario(tmp_path: Path) -> str:
    """`findings` lasting 30 s: crawl pending for 3 s, then crawling until 10.5 s."""
    return write_scenario(tmp_path, "crawling", {"extends": "findings", "duration": 30})


def test_sigterm_stops_a_running_job(tmp_path: Path) -> None:
    run, server, seconds = _signal_while_waiting(
        tmp_path, signal.SIGTERM, _crawling_scenario(tmp_path), settle=4.0
    )
    assert run.exit == 143, run.stderr
    assert seconds < 5.0
    assert _cancel_paths(server)[-1] == ("stop", 200)
    assert server.log.count(category="start") == 1


def test_timeout_cancels_a_pending_job_and_exits_4(tmp_path: Path) -> None:
    run, server = run_scenario(tmp_path, PROVIDER, "slow", scan={"timeout": "3s"})
    assert run.exit == 4, run.stderr
    assert run.seconds < 3 + 5
    assert _cancel_paths(server) == [("cancel", 200)]
    assert run.results()["scans"][0]["status"] == "timed_out"
    assert "scan.timeout of 3s reached" in run.stderr


def test_timeout_stops_a_running_job(tmp_path: Path) -> None:
    run, server = run_scenario(
        tmp_path, PROVIDER, _crawling_scenario(tmp_path), scan={"timeout": "6s"}
    )
    assert run.exit == 4, run.stderr
    assert run.seconds < 6 + 5
    assert _cancel_paths(server)[-1] == ("stop", 200)


def test_on_timeout_keep_leaves_the_job_running(tmp_path: Path) -> None:
    run, server = run_scenario(
        tmp_path, PROVIDER, "slow", scan={"timeout": "2s", "on_timeout": "keep"}
    )
    assert run.exit == 4
    assert server.log.count(category="cancel") == 0
    assert "scangate wait --scan-id" in run.stderr


def test_if_running_fail_exits_4_naming_the_job_and_starts_nothing(tmp_path: Path) -> None:
    with sandbox(PROVIDER, "slow") as server:
        busy = _create_job(server)
        write_policy(tmp_path, PROVIDER, server.base_url, scan={"if_running": "fail"})
        run = run_cli(["run"], cwd=tmp_path, env=cli_env(sandbox_env(PROVIDER)))
    assert run.exit == 4, run.stderr
    assert busy in run.stderr
    assert server.log.count(category="start") == 1  # only the busy job made above


def test_if_running_attach_gates_the_running_job(tmp_path: Path) -> None:
    with sandbox(PROVIDER, "findings") as server:
        busy = _create_job(server)
        write_policy(tmp_path, PROVIDER, server.base_url, scan={"if_running": "attach"})
        run = run_cli(["run"], cwd=tmp_path, env=cli_env(sandbox_env(PROVIDER)))
    assert run.exit == 1, run.stderr
    assert server.log.count(category="start") == 1
    assert run.results()["scans"][0]["scan_id"] == busy


def test_wait_resumes_a_job_by_id_through_get_jobs(tmp_path: Path) -> None:
    with sandbox(PROVIDER, "findings") as server:
        job = _create_job(server)
        write_policy(tmp_path, PROVIDER, server.base_url)
        run = run_cli(["wait", "--scan-id", job], cwd=tmp_path, env=cli_env(sandbox_env(PROVIDER)))
    assert run.exit == 1, run.stderr
    assert server.log.count(category="list") >= 1  # getJobs, with a signed query string
    assert server.log.count(category="start") == 1
    assert run.results()["scans"][0]["scan_id"] == job


def test_missing_credentials_exit_2_before_any_request(tmp_path: Path) -> None:
    run, server = run_scenario(
        tmp_path, PROVIDER, "clean", credentials={"NCP_ACCESS_KEY": "ncp_iam_x"}
    )
    assert run.exit == 2
    assert "NCP_ACCESS_KEY" in run.stderr and "NCP_SECRET_KEY" in run.stderr
    assert len(server.log) == 0
    assert_sane_stderr(run.stderr)


def test_a_wrong_secret_exits_3_naming_the_variables_and_is_never_retried(tmp_path: Path) -> None:
    credentials = {**sandbox_env(PROVIDER), "NCP_SECRET_KEY": "a-wrong-secret-key-0000"}
    run, server = run_scenario(tmp_path, PROVIDER, "clean", credentials=credentials)
    assert run.exit == 3, run.stderr
    assert "NCP_ACCESS_KEY + NCP_SECRET_KEY" in run.stderr
    assert "a-wrong-secret-key-0000" not in run.stderr
    assert len(server.log) == 1 and server.log.count(status=401) == 1
    assert server.log.count(category="start") == 0
    assert_sane_stderr(run.stderr)


def test_a_key_without_wsc_permission_exits_3_saying_so(tmp_path: Path) -> None:
    credentials = {"NCP_ACCESS_KEY": NO_WSC_ACCESS_KEY, "NCP_SECRET_KEY": NO_WSC_SECRET_KEY}
    run, server = run_scenario(tmp_path, PROVIDER, "clean", credentials=credentials)
    assert run.exit == 3, run.stderr
    assert "no permission for Web Security Checker" in run.stderr
    assert server.log.count(category="start") == 0


def test_an_unreachable_start_url_exits_3_after_one_create(tmp_path: Path) -> None:
    run, server = run_scenario(tmp_path, PROVIDER, "clean", scan={"target": "https://app.invalid/"})
    assert run.exit == 3, run.stderr
    assert "servers created on NCP" in run.stderr
    assert server.log.count(category="start") == 1


def test_sandbox_flag_needs_no_account(tmp_path: Path) -> None:
    run = run_example(tmp_path, PROVIDER)
    assert run.exit == 0, run.stderr
    assert run.results()["verdict"] == "passed"
