"""Matrix jobs sharing one account: a plan limit is a queue, not a failure (issue 14).

Each test serves one emulator in this process and runs several `scangate run` subprocesses
against it at once, as the jobs of a CI matrix share one provider account. CyberSec Pro's
per-minute limits run on a shortened minute (emulator option `minute`), keeping every count per
minute, so that the plan's ratios hold and a test takes seconds instead of minutes.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from e2e.support import CliRun, cli_env, run_cli, write_policy
from scangate.sandbox import EmulatorServer, Scenario, load_scenario, sandbox_env, start_sandbox

pytestmark = pytest.mark.slow

CLEAN = load_scenario("clean")


def scenario(duration: float) -> Scenario:
    """The clean scenario (the gate passes) with scans of `duration` seconds."""
    return Scenario(name="matrix", duration=duration, final="completed", findings=CLEAN.findings)


def matrix(
    tmp_path: Path,
    server: EmulatorServer,
    provider: str,
    targets: list[str],
    *,
    credentials: Mapping[str, str],
    scan: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    timeout: float = 120.0,
) -> list[CliRun]:
    """Run one `scangate run` per target, all at once, against `server`."""

    def job(number: int, target: str) -> CliRun:
        directory = tmp_path / f"job-{number}"
        directory.mkdir()
        write_policy(
            directory,
            provider,
            server.base_url,
            scan={"target": target, **(scan or {})},
            options=options,
        )
        # CI=true: the jobs spread their first requests as they do in a CI matrix.
        return run_cli(["run"], cwd=directory, env=cli_env(credentials, CI="true"), timeout=timeout)

    with ThreadPoolExecutor(len(targets)) as pool:
        return list(pool.map(job, range(len(targets)), targets))


def created(server: EmulatorServer) -> int:
    """Scans the emulator created (start requests it answered 200 or 201)."""
    return sum(1 for e in server.log.find(category="start") if e.status in (200, 201))


def refused(server: EmulatorServer, status: int = 429) -> int:
    """Start requests the emulator refused with `status`."""
    return server.log.count(category="start", status=status)


def queue_of(run: CliRun) -> dict[str, Any]:
    """The `queue` block of the job's `scangate.json`."""
    stats: dict[str, Any] = run.results()["scans"][0]["queue"]
    return stats


def diagnose(runs: list[CliRun]) -> str:
    return "\n\n".join(f"job {n}: exit {r.exit}\n{r.stderr}" for n, r in enumerate(runs))


def test_six_jobs_on_a_professional_plan_queue_for_its_three_slots_and_all_pass(
    tmp_path: Path,
) -> None:
    # CyberOrigen Professional runs 3 scans at once (providers/cyberorigen.md, "Scan quotas").
    targets = [f"app{n}.example.com" for n in range(6)]
    with start_sandbox("cyberorigen", scenario(3.0), options={"plan": "professional"}) as server:
        runs = matrix(
            tmp_path,
            server,
            "cyberorigen",
            targets,
            credentials=sandbox_env("cyberorigen"),
            scan={"timeout": "2m"},
        )
    assert [r.exit for r in runs] == [0] * 6, diagnose(runs)
    assert created(server) == 6
    assert refused(server) >= 3  # three jobs found every slot taken, at least once
    scans = {r.results()["scans"][0]["scan_id"] for r in runs}
    assert len(scans) == 6
    queued = [r for r in runs if queue_of(r)["queued_seconds"] > 0]
    assert len(queued) >= 3
    for run in queued:
        assert queue_of(run)["reason"] == "a free scan slot (3 of 3 in use)"
        assert queue_of(run)["retries"] >= 1
        assert "waiting for a free scan slot: 3 of 3 in use, " in run.stderr
        assert "of budget left" in run.stderr
        assert "exit 3" not in run.stderr and "error:" not in run.stderr
    # The saved results round-trip through `scangate gate`, queue statistics included.
    merged = tmp_path / "merged"
    merged.mkdir()
    write_policy(merged, "cyberorigen", "http://127.0.0.1:9/api/v1")  # gate: no network
    files = [str(r.out_dir / "scangate.json") for r in runs]
    gate = run_cli(["gate", *(f"--results={f}" for f in files)], cwd=merged, env=cli_env({}))
    assert gate.exit == 0, gate.stderr
    again = {s["scan_id"]: s["queue"] for s in gate.results()["scans"]}
    assert again == {r.results()["scans"][0]["scan_id"]: queue_of(r) for r in runs}


def test_eight_jobs_over_the_five_starts_a_minute_limit_all_pass(tmp_path: Path) -> None:
    # CyberSec Pro refuses more than 5 starts per 60 s per user (providers/cybersecpro.md,
    # "Create"); the emulator's minute is 4 s here, so 8 jobs need two of them.
    targets = [f"app{n}.example.com" for n in range(8)]
    options = {"plan": "professional", "minute": 4.0}
    with start_sandbox("cybersecpro", scenario(1.0), options=options) as server:
        runs = matrix(
            tmp_path,
            server,
            "cybersecpro",
            targets,
            credentials=sandbox_env("cybersecpro"),
            scan={"timeout": "2m"},
        )
    assert [r.exit for r in runs] == [0] * 8, diagnose(runs)
    assert created(server) == 8
    refusals = [e for e in server.log.find(category="start") if e.status == 429]
    assert len(refusals) >= 3
    queued = [r for r in runs if queue_of(r)["queued_seconds"] > 0]
    assert len(queued) >= 3
    for run in queued:
        assert "waiting for a scan start (5 a minute per user): 5 of 5 starts" in run.stderr
    assert all(r.seconds < 60 for r in runs)


def test_ten_jobs_on_the_trial_plan_all_pass_within_a_twelve_minute_timeout(
    tmp_path: Path,
) -> None:
    # The trial plan: 10 requests a minute with bursts of 5, login only (no API keys), at most
    # 5 login attempts a minute (providers/cybersecpro.md, "Rate limits", "Authentication").
    # The emulator's minute is 6 s (1/10 of a minute), so the 12-minute timeout is 72 s on its
    # clock. Its daily limit (3 trial scans) is raised to 10: that limit never clears within a
    # run, and has its own test below.
    minute = 6.0
    targets = [f"app{n}.example.com" for n in range(10)]
    options = {"plan": "trial", "minute": minute, "daily_scans": 10}
    credentials = sandbox_env("cybersecpro", "trial-plan")
    assert "CYBERSECPRO_EMAIL" in credentials and "CYBERSECPRO_API_KEY" not in credentials
    with start_sandbox("cybersecpro", scenario(2.0), options=options) as server:
        runs = matrix(
            tmp_path,
            server,
            "cybersecpro",
            targets,
            credentials=credentials,
            scan={"timeout": "12m"},
        )
    assert [r.exit for r in runs] == [0] * 10, diagnose(runs)
    assert created(server) == 10
    scaled_budget = 12 * minute
    assert max(r.seconds for r in runs) < scaled_budget
    # The jobs did contend: logins over 5 a minute and requests over the budget were refused.
    logins = server.log.find(path="/api/v1/auth/login")
    assert sum(1 for e in logins if e.status == 200) == 10
    assert any(e.status == 429 for e in logins)
    assert sum(queue_of(r)["rate_limited"] for r in runs) > 0


def test_a_timeout_while_still_queued_exits_4_naming_the_queue(tmp_path: Path) -> None:
    slow = scenario(600.0)
    with start_sandbox("cyberorigen", slow, options={"plan": "professional"}) as server:
        # Someone else's three long scans hold every slot of the plan.
        for n in range(3):
            answer = requests.post(
                f"{server.base_url}/scans",
                json={"target": f"other{n}.example.com", "scan_type": "quick", "authorized": True},
                headers={"X-API-Key": _key()},
                timeout=5,
            )
            assert answer.status_code == 201, answer.text
        (run,) = matrix(
            tmp_path,
            server,
            "cyberorigen",
            ["app.example.com"],
            credentials=sandbox_env("cyberorigen"),
            scan={"timeout": "5s"},
        )
    assert run.exit == 4, run.stderr
    assert created(server) == 3  # ours never started
    assert "waiting for a free scan slot: 3 of 3 in use, " in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert "scan.timeout" in last and "waiting for a free scan slot (3 of 3 in use)" in last
    assert "no scan was started" in last
    assert not (run.out_dir / "scangate.json").exists()


def test_a_quota_used_up_while_queued_is_an_immediate_exit_3(tmp_path: Path) -> None:
    # Startup: 1 concurrent scan, 25 a month; 24 are used. One job gets the last scan; the
    # others queue for the slot, then learn that the month's quota is gone: that never clears
    # within a run, so they stop at once instead of waiting out their 2-minute timeout.
    options = {"plan": "startup", "used_this_month": 24}
    credentials = dict(sandbox_env("cyberorigen", "token-expiry"))  # startup has no API keys
    targets = [f"app{n}.example.com" for n in range(3)]
    with start_sandbox("cyberorigen", scenario(3.0), options=options) as server:
        runs = matrix(
            tmp_path,
            server,
            "cyberorigen",
            targets,
            credentials=credentials,
            scan={"timeout": "2m"},
        )
    assert sorted(r.exit for r in runs) == [0, 3, 3], diagnose(runs)
    assert created(server) == 1
    for run in (r for r in runs if r.exit == 3):
        assert "onthly scan quota" in run.stderr
        assert run.seconds < 30
        assert "waiting for" not in run.stderr.splitlines()[-1]


def test_the_trial_plans_daily_limit_is_an_immediate_exit_3(tmp_path: Path) -> None:
    targets = [f"app{n}.example.com" for n in range(4)]
    options = {"plan": "trial", "minute": 6.0}
    credentials = sandbox_env("cybersecpro", "trial-plan")
    with start_sandbox("cybersecpro", scenario(1.0), options=options) as server:
        runs = matrix(
            tmp_path,
            server,
            "cybersecpro",
            targets,
            credentials=credentials,
            scan={"timeout": "5m"},
        )
    assert sorted(r.exit for r in runs) == [0, 0, 0, 3], diagnose(runs)
    (failed,) = [r for r in runs if r.exit == 3]
    assert "Daily scan limit reached" in failed.stderr
    assert "3 scans a day" in failed.stderr
    assert created(server) == 3


def test_vaddy_jobs_on_one_project_take_turns(tmp_path: Path) -> None:
    # VAddy runs one scan per project; a second start is refused with 400 (providers/vaddy.md).
    with start_sandbox("vaddy", scenario(2.0)) as server:
        runs = matrix(
            tmp_path,
            server,
            "vaddy",
            ["vaddy-project-1", "vaddy-project-1"],
            credentials=sandbox_env("vaddy"),
            scan={"timeout": "1m", "if_running": "wait"},
        )
    assert [r.exit for r in runs] == [0, 0], diagnose(runs)
    assert created(server) == 2
    ids = {r.results()["scans"][0]["scan_id"] for r in runs}
    assert len(ids) == 2


def _key() -> str:
    return sandbox_env("cyberorigen")["CYBERORIGEN_API_KEY"]


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy may intercept the emulator's loopback address."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
