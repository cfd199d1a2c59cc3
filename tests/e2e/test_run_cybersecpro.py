"""End to end: the real CLI against the CyberSec Pro emulator over HTTP on 127.0.0.1.

Every scenario plays in both of the emulator's shapes (the published reference's and the
implementation's). The runs of the scenario matrix are independent processes that spend their
time waiting, so they run side by side; the assertions are one test per run.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from e2e.support import (
    JWT,
    REPORT_FILES,
    VERDICTS,
    CliRun,
    assert_sane_stderr,
    cli_env,
    decisions,
    run_cli,
    run_example,
    run_scenario,
    run_with_history,
    sandbox,
    signal_while_waiting,
    write_policy,
    write_scenario,
)
from scangate.sandbox import EmulatorServer, sandbox_env, scenarios_for

pytestmark = pytest.mark.slow

PROVIDER = "cybersecpro"
SHAPES = ("documented", "implementation")
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
    "trial-plan": 1,
    "result-error": 3,
}
"""Every bundled scenario but `slow` (used for signals and timeouts below)."""
EXTRA_SCENARIOS: dict[str, dict[str, Any]] = {
    # The bundled token-expiry fault hits the third poll, which a short scan polled without
    # progress may never send; here the second poll's token is revoked.
    "token-revoked": {
        "extends": "token-expiry",
        "faults": [{"on": "poll", "after": 1, "kind": "token-expiry"}],
    },
    # The start's answer is lost after the scan was created.
    "lost-start": {"extends": "findings", "faults": [{"on": "start", "kind": "drop"}]},
    # Truncated JSON with status 200 on the second poll and on the result: `flaky`'s malformed
    # poll is its sixth poll request, which a short scan polled without progress never sends.
    "malformed": {
        "extends": "findings",
        "faults": [
            {"on": "poll", "after": 1, "kind": "malformed"},
            {"on": "findings", "kind": "malformed"},
        ],
    },
}


@dataclass(frozen=True)
class Job:
    """One CLI run of the matrix."""

    scenario: str
    shape: str
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        debug = "-debug" if self.env else ""
        return f"{self.scenario}-{self.shape}{debug}"


@dataclass
class Played:
    """A finished job: the CLI run, the stopped server and the credentials it used."""

    run: CliRun
    server: EmulatorServer
    credentials: Mapping[str, str]


def _jobs() -> list[Job]:
    names = [*EXPECTED, *EXTRA_SCENARIOS]
    jobs = [Job(name, shape) for name in names for shape in SHAPES]
    debug = {"SCANGATE_DEBUG": "true"}
    jobs += [Job("token-revoked", shape, debug) for shape in SHAPES]
    jobs.append(Job("flaky", "implementation", debug))
    # The longest first (the trial plan's, a minute), so that the others run meanwhile.
    return sorted(jobs, key=lambda job: job.scenario != "trial-plan")


def _play(root: Path, job: Job, scenarios: Path) -> Played:
    extra = scenarios / f"{job.scenario}.yml"
    ref = str(extra) if extra.is_file() else job.scenario
    directory = root / job.key
    directory.mkdir()
    credentials = sandbox_env(PROVIDER, ref)
    with sandbox(PROVIDER, ref, options={"shape": job.shape}) as server:
        # 120 s: on the trial plan the documented headers hold the second poll to the next
        # minute (the runner keeps 5 of the 10 requests in reserve).
        write_policy(directory, PROVIDER, server.base_url, scan={"timeout": "120s"})
        run = run_cli(["run"], cwd=directory, env=cli_env(credentials, **job.env), timeout=150.0)
    return Played(run, server, credentials)


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Played]:
    """Every job, played side by side (they wait on scan time, not on the CPU)."""
    root = tmp_path_factory.mktemp("matrix")
    scenarios = root / "scenarios"
    scenarios.mkdir()
    for name, content in EXTRA_SCENARIOS.items():
        write_scenario(scenarios, name, content)
    jobs = _jobs()
    with ThreadPoolExecutor(max_workers=8) as pool:
        played = list(pool.map(lambda job: _play(root, job, scenarios), jobs))
    return {job.key: result for job, result in zip(jobs, played, strict=True)}


def _assert_no_secrets(played: Played) -> None:
    text = played.run.everything()
    for name, value in played.credentials.items():
        if name != "CYBERSECPRO_EMAIL":  # an identifier, not a secret (design §9)
            assert value not in text, name
    assert not JWT.search(text)  # runtime tokens never show either


def test_the_matrix_covers_every_bundled_scenario() -> None:
    assert set(EXPECTED) == set(scenarios_for(PROVIDER)) - {"slow"}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_every_scenario_gives_its_exit_code_and_reports(
    matrix: dict[str, Played], scenario: str, shape: str
) -> None:
    played = matrix[f"{scenario}-{shape}"]
    run, server = played.run, played.server
    assert run.exit == EXPECTED[scenario], run.stderr
    assert_sane_stderr(run.stderr)
    _assert_no_secrets(played)
    for name in REPORT_FILES:
        assert (run.out_dir / name).is_file(), name
    assert server.log.count(category="start") == 1
    assert server.log.count(category="cancel") == 0
    if run.exit in VERDICTS:
        assert run.results()["verdict"] == VERDICTS[run.exit]


@pytest.mark.parametrize("shape", SHAPES)
def test_the_trial_plan_logs_in_and_never_gets_a_429(matrix: dict[str, Played], shape: str) -> None:
    played = matrix[f"trial-plan-{shape}"]
    server = played.server
    assert set(played.credentials) == {"CYBERSECPRO_EMAIL", "CYBERSECPRO_PASSWORD"}
    assert server.log.count(status=429) == 0
    assert server.log.count(path=r".*/auth/login") == 1
    times = [entry.time for entry in server.log]
    assert max(sum(1 for t in times if start <= t < start + 60) for start in times) <= 10


@pytest.mark.parametrize("shape", SHAPES)
def test_an_http_200_error_body_on_the_result_exits_3(
    matrix: dict[str, Played], shape: str
) -> None:
    run = matrix[f"result-error-{shape}"].run
    assert "(HTTP 200): Failed to load scan result: execution record missing" in run.stderr
    assert run.results()["scans"][0]["findings"] == []


@pytest.mark.parametrize("shape", SHAPES)
def test_faults_do_not_change_the_verdict(matrix: dict[str, Played], shape: str) -> None:
    calm, flaky = matrix[f"findings-{shape}"], matrix[f"flaky-{shape}"]
    malformed = matrix[f"malformed-{shape}"]
    assert flaky.server.log.count(fault="5xx") >= 2 and flaky.server.log.count(fault="drop") == 1
    assert malformed.server.log.count(fault="malformed") == 2

    flaky_decisions, calm_decisions = decisions(flaky.run.results()), decisions(calm.run.results())
    assert flaky_decisions == calm_decisions == decisions(malformed.run.results())
    assert len(calm_decisions) == 6
    assert flaky.run.exit == malformed.run.exit == calm.run.exit == 1


@pytest.mark.parametrize("shape", SHAPES)
def test_a_token_revoked_mid_scan_is_renewed_without_losing_the_scan(
    matrix: dict[str, Played], shape: str
) -> None:
    played = matrix[f"token-revoked-{shape}"]
    run, log = played.run, played.server.log
    assert run.exit == 1, run.stderr
    assert log.count(fault="token-expiry") == 1 and log.count(status=401) == 1
    assert log.count(category="start") == 1
    assert run.results()["scans"][0]["scan_id"]
    if shape == "implementation":  # the refresh token renews it
        assert log.count(path=r".*/auth/refresh") == 1 and log.count(path=r".*/auth/login") == 1
    else:  # the documented login has no refresh token: log in again
        assert log.count(path=r".*/auth/login") == 2


@pytest.mark.parametrize(
    "key",
    [
        "token-revoked-documented-debug",
        "token-revoked-implementation-debug",
        "flaky-implementation-debug",
    ],
)
def test_no_secret_is_printed_even_with_debug(matrix: dict[str, Played], key: str) -> None:
    played = matrix[key]
    assert played.run.exit == 1, played.run.stderr
    _assert_no_secrets(played)


@pytest.mark.parametrize("shape", SHAPES)
def test_a_lost_start_answer_finds_the_scan_instead_of_starting_another(
    matrix: dict[str, Played], shape: str
) -> None:
    played = matrix[f"lost-start-{shape}"]
    assert played.run.exit == 1, played.run.stderr
    assert played.server.log.count(category="start") == 1
    assert "looking for the scan it may have created" in played.run.stderr
    assert "found scan" in played.run.stderr


# Signals and timeouts, on the ten-minute `slow` scenario.


@contextmanager
def _slow(shape: str) -> Iterator[EmulatorServer]:
    with sandbox(PROVIDER, "slow", options={"shape": shape}) as server:
        yield server


def _signal_while_waiting(
    tmp_path: Path, shape: str, sig: signal.Signals
) -> tuple[CliRun, EmulatorServer, float]:
    """`support.signal_while_waiting` in the emulator's `shape`, signalling at the first poll."""
    return signal_while_waiting(
        tmp_path,
        PROVIDER,
        sig,
        options={"shape": shape},
        ready=lambda server: server.log.count(category="poll") >= 1,
    )


@pytest.mark.parametrize(
    ("shape", "sig", "code"),
    [
        ("documented", signal.SIGTERM, 143),
        ("implementation", signal.SIGTERM, 143),
        ("documented", signal.SIGINT, 130),
    ],
    ids=["SIGTERM-documented", "SIGTERM-implementation", "SIGINT-documented"],
)
def test_a_signal_cancels_the_scan_and_writes_partial_reports(
    tmp_path: Path, shape: str, sig: signal.Signals, code: int
) -> None:
    run, server, seconds = _signal_while_waiting(tmp_path, shape, sig)
    assert run.exit == code, run.stderr
    assert seconds < 5.0
    cancels = server.log.find(category="cancel")
    assert len(cancels) == 1 and cancels[0].status == 200
    assert server.log.count(category="start") == 1
    results = run.results()
    assert results["scans"][0]["status"] == "interrupted"
    assert results["interrupted"]
    assert_sane_stderr(run.stderr)


@pytest.mark.parametrize("shape", SHAPES)
def test_timeout_cancels_the_scan_and_exits_4(tmp_path: Path, shape: str) -> None:
    with _slow(shape) as server:
        write_policy(tmp_path, PROVIDER, server.base_url, scan={"timeout": "3s"})
        run = run_cli(["run"], cwd=tmp_path, env=cli_env(sandbox_env(PROVIDER)))
    assert run.exit == 4, run.stderr
    assert run.seconds < 3 + 5
    cancels = server.log.find(category="cancel")
    assert len(cancels) == 1 and cancels[0].status == 200
    assert run.results()["scans"][0]["status"] == "timed_out"
    assert "scan.timeout of 3s reached" in run.stderr


def test_on_timeout_keep_leaves_the_scan_running_and_says_how_to_resume(tmp_path: Path) -> None:
    with _slow("documented") as server:
        write_policy(
            tmp_path, PROVIDER, server.base_url, scan={"timeout": "2s", "on_timeout": "keep"}
        )
        run = run_cli(["run"], cwd=tmp_path, env=cli_env(sandbox_env(PROVIDER)))
    assert run.exit == 4
    assert server.log.count(category="cancel") == 0
    assert "scangate wait --scan-id" in run.stderr


# A scan already running for the target.


def _running_scan(base_url: str) -> str:
    key = sandbox_env(PROVIDER)["CYBERSECPRO_API_KEY"]
    answer = requests.post(
        f"{base_url}/scans/create",
        json={"target": "staging.example.com", "tool": "nuclei"},
        headers={"X-API-Key": key},
        timeout=5,
    )
    answer.raise_for_status()
    body = answer.json()
    return str(body.get("scan_id") or body["id"])


@pytest.mark.parametrize("shape", SHAPES)
def test_if_running_fail_exits_4_naming_the_scan_and_starts_nothing(
    tmp_path: Path, shape: str
) -> None:
    with _slow(shape) as server:
        busy = _running_scan(server.base_url)
        write_policy(tmp_path, PROVIDER, server.base_url, scan={"if_running": "fail"})
        run = run_cli(["run"], cwd=tmp_path, env=cli_env(sandbox_env(PROVIDER)))
    assert run.exit == 4
    assert busy in run.stderr
    assert server.log.count(category="start") == 1  # only the busy scan made above


@pytest.mark.parametrize("shape", SHAPES)
def test_if_running_attach_gates_the_running_scan(tmp_path: Path, shape: str) -> None:
    with sandbox(PROVIDER, "findings", options={"shape": shape}) as server:
        busy = _running_scan(server.base_url)
        write_policy(tmp_path, PROVIDER, server.base_url, scan={"if_running": "attach"})
        run = run_cli(["run"], cwd=tmp_path, env=cli_env(sandbox_env(PROVIDER)))
    assert run.exit == 1, run.stderr
    assert server.log.count(category="start") == 1
    assert run.results()["scans"][0]["scan_id"] == busy


# Credentials.


def test_missing_credentials_exit_2_before_any_request(tmp_path: Path) -> None:
    credentials = {"CYBERSECPRO_API_KEY": " ", "CYBERSECPRO_EMAIL": "ci@example.com"}
    run, server = run_scenario(tmp_path, PROVIDER, "clean", credentials=credentials)
    assert run.exit == 2
    assert "CYBERSECPRO_API_KEY" in run.stderr and "CYBERSECPRO_PASSWORD" in run.stderr
    assert len(server.log) == 0
    assert_sane_stderr(run.stderr)


@pytest.mark.parametrize(
    ("scenario", "credentials", "named", "requests_sent"),
    [
        ("clean", {"CYBERSECPRO_API_KEY": "csp_" + "0" * 64}, "CYBERSECPRO_API_KEY", 1),
        (
            "clean",
            {"CYBERSECPRO_EMAIL": "ci@sandbox.scangate.invalid", "CYBERSECPRO_PASSWORD": "nope"},
            "CYBERSECPRO_PASSWORD",
            1,  # one login attempt, never repeated
        ),
        ("trial-plan", sandbox_env(PROVIDER), "professional or enterprise plan", 1),
    ],
    ids=["wrong-key", "wrong-password", "key-on-trial"],
)
def test_rejected_credentials_exit_3_with_what_to_do(
    tmp_path: Path,
    scenario: str,
    credentials: dict[str, str],
    named: str,
    requests_sent: int,
) -> None:
    run, server = run_scenario(tmp_path, PROVIDER, scenario, credentials=credentials)
    assert run.exit == 3, run.stderr
    assert named in run.stderr
    assert len(server.log) == requests_sent and server.log.count(category="start") == 0
    for value in credentials.values():
        assert value == "ci@sandbox.scangate.invalid" or value not in run.stderr
    assert_sane_stderr(run.stderr)


def test_sandbox_flag_runs_the_example_policy_with_no_account(tmp_path: Path) -> None:
    run = run_example(tmp_path, PROVIDER)
    assert run.exit == 0, run.stderr
    assert run.results()["verdict"] == "passed"
    assert "CyberSec Pro emulator" in run.stderr


# -- the target's past scans time the polls (issue 16) -----------------------------------------


def test_seeded_history_times_the_polls_end_to_end(tmp_path: Path) -> None:
    run, server = run_with_history(tmp_path, PROVIDER, (6, 6, 7, 5, 6))
    assert run.exit == 0, run.stderr
    assert "timing polls by 5 past scans of the target" in run.stdout + run.stderr
    assert "they took about 6s" in run.stdout + run.stderr
    # The history came from the listing `find_running` made: no request more on the plan.
    assert server.log.count(category="list") == 1
