"""End to end: `scangate cleanup` plays the CI post step after the runner killed the main step.

The GitHub runner SIGKILLs a container that outlives its SIGINT/SIGTERM grace (docs/formats.md
§4.6), and a lost runner never signals at all: the main step's own cancel never runs. The post
step (`post-entrypoint`, `post-if: cancelled() || failure()`) runs `scangate cleanup` with the
same environment on the same workspace; it must cancel the recorded scan exactly once, and do
nothing when the main step finished with its scan (issue 18).
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from e2e.support import (
    CliRun,
    assert_sane_stderr,
    cli_env,
    polled_after_start,
    run_cli,
    sandbox,
    scangate,
    start_cli,
    write_policy,
    write_scenario,
)
from scangate.sandbox import EmulatorServer, sandbox_env

pytestmark = pytest.mark.slow

PROVIDERS = ("cyberorigen", "vaddy", "ncp-wsc", "cybersecpro", "cystack")
STATE = "reports/scangate-state.json"


def _job_env(tmp_path: Path, provider: str, scenario: str) -> dict[str, str]:
    """The environment both steps of the GitHub action get: the same credentials and files."""
    files = tmp_path.parent / f"{tmp_path.name}-file_commands"
    files.mkdir(exist_ok=True)
    output, summary = files / "set_output", files / "step_summary"
    output.touch()
    summary.touch()
    return cli_env(
        sandbox_env(provider, scenario),
        GITHUB_ACTIONS="true",
        CI="true",
        GITHUB_WORKSPACE=str(tmp_path),
        GITHUB_OUTPUT=str(output),
        GITHUB_STEP_SUMMARY=str(summary),
    )


def _state(tmp_path: Path) -> dict[str, Any]:
    state: dict[str, Any] = json.loads((tmp_path / STATE).read_text(encoding="utf-8"))
    return state


def _killed_main_step(tmp_path: Path, server: EmulatorServer, env: dict[str, str]) -> None:
    """`scangate run`, SIGKILLed once its scan was started, recorded and polled (no handler
    can run). NCP's start searches for the job it made, so a poll alone may precede the start's
    return; the state file is what the post step reads."""
    process = start_cli(scangate("run"), cwd=tmp_path, env=env)
    began = time.monotonic()
    try:
        while not (polled_after_start(server) and (tmp_path / STATE).exists()):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() - began < 30, "the scan never started"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL


def _cleanup(tmp_path: Path, env: dict[str, str]) -> CliRun:
    run = run_cli(["cleanup"], cwd=tmp_path, env=env)
    assert_sane_stderr(run.stderr)
    return run


def _cleanup_sending_nothing(tmp_path: Path, env: dict[str, str], server: Any) -> CliRun:
    """`scangate cleanup` that exits 0 having sent the emulator no request at all."""
    requests = len(server.log.entries())
    run = _cleanup(tmp_path, env)
    assert run.exit == 0, run.stderr
    assert len(server.log.entries()) == requests
    return run


@pytest.mark.parametrize("provider", PROVIDERS)
def test_post_step_cancels_the_scan_of_a_killed_main_step_exactly_once(
    tmp_path: Path, provider: str
) -> None:
    with sandbox(provider, "slow") as server:
        write_policy(tmp_path, provider, server.base_url)
        env = _job_env(tmp_path, provider, "slow")
        _killed_main_step(tmp_path, server, env)
        assert server.log.count(category="cancel") == 0  # SIGKILL: the main step cancelled nothing
        state = _state(tmp_path)
        assert (state["command"], state["settled"], state["provider"]) == ("run", False, provider)
        first = _cleanup(tmp_path, env)
        assert first.exit == 0, first.stderr
        cancels = server.log.find(category="cancel")
        assert len(cancels) == 1, [(e.method, e.path, e.status) for e in cancels]
        assert cancels[0].status is not None and cancels[0].status < 400
        assert state["scan_id"] in first.stderr
        assert _state(tmp_path)["settled"] is True
        # Idempotent: a second post step (or a rerun) sends nothing at all.
        second = _cleanup_sending_nothing(tmp_path, env, server)
        assert "nothing to clean up" in second.stderr


@pytest.mark.parametrize("provider", ("cyberorigen", "vaddy", "ncp-wsc"))
def test_post_step_after_a_main_step_that_finished_sends_no_request(
    tmp_path: Path, provider: str
) -> None:
    with sandbox(provider, "findings") as server:
        write_policy(tmp_path, provider, server.base_url)
        env = _job_env(tmp_path, provider, "findings")
        main = run_cli(["run"], cwd=tmp_path, env=env)
        assert main.exit == 1, main.stderr  # the gate failed: `failure()` runs the post step
        assert _state(tmp_path)["settled"] is True
        post = _cleanup_sending_nothing(tmp_path, env, server)
        assert "nothing to clean up" in post.stderr
        assert server.log.count(category="cancel") == 0


@pytest.mark.parametrize("provider", ("cyberorigen", "vaddy", "ncp-wsc"))
def test_post_step_after_start_leaves_the_scan_to_the_later_wait(
    tmp_path: Path, provider: str
) -> None:
    with sandbox(provider, "slow") as server:
        write_policy(tmp_path, provider, server.base_url)
        env = _job_env(tmp_path, provider, "slow")
        started = run_cli(["start"], cwd=tmp_path, env=env)
        assert started.exit == 0, started.stderr
        state = _state(tmp_path)
        assert (state["command"], state["settled"]) == ("start", True)
        post = _cleanup_sending_nothing(tmp_path, env, server)
        assert "handed over to `scangate wait`" in post.stderr
        assert state["scan_id"] in started.stdout.splitlines()
        assert server.log.count(category="cancel") == 0


def test_post_step_with_on_timeout_keep_only_says_the_scan_is_kept(tmp_path: Path) -> None:
    with sandbox("cyberorigen", "slow") as server:
        write_policy(tmp_path, "cyberorigen", server.base_url, scan={"on_timeout": "keep"})
        env = _job_env(tmp_path, "cyberorigen", "slow")
        _killed_main_step(tmp_path, server, env)
        scan_id = _state(tmp_path)["scan_id"]
        post = _cleanup_sending_nothing(tmp_path, env, server)
        assert f"scan {scan_id} left running (on_timeout: keep)" in post.stderr
        assert f"scangate wait --scan-id {scan_id}" in post.stderr
        assert _state(tmp_path)["settled"] is True


def test_a_failed_cancel_exits_3_and_stays_for_a_retry(tmp_path: Path) -> None:
    scenario = write_scenario(
        tmp_path,
        "stuck",
        {"extends": "slow", "faults": [{"on": "cancel", "count": 100, "kind": "401"}]},
    )
    with sandbox("cyberorigen", scenario) as server:
        write_policy(tmp_path, "cyberorigen", server.base_url)
        env = _job_env(tmp_path, "cyberorigen", scenario)
        _killed_main_step(tmp_path, server, env)
        post = _cleanup(tmp_path, env)
        assert post.exit == 3, post.stderr
        assert "could not cancel" in post.stderr
        assert server.log.count(category="cancel") >= 1
        assert _state(tmp_path)["settled"] is False  # a rerun of the cleanup tries again
        # The post step's annotation names the failure; the main step's outputs stay its own.
        assert "::error" in post.stdout
        assert Path(env["GITHUB_OUTPUT"]).read_text(encoding="utf-8") == ""


def test_a_scan_that_ended_meanwhile_is_not_cancelled(tmp_path: Path) -> None:
    """Killed between the scan's end and the fetch: CyberOrigen's DELETE would delete the
    finished scan (docs/providers/cyberorigen.md), so cleanup polls first and leaves it."""
    scenario = write_scenario(tmp_path, "short", {"extends": "findings", "duration": 1})
    with sandbox("cyberorigen", scenario) as server:
        write_policy(tmp_path, "cyberorigen", server.base_url)
        env = _job_env(tmp_path, "cyberorigen", scenario)
        started = run_cli(["start"], cwd=tmp_path, env=env)
        assert started.exit == 0, started.stderr
        state = _state(tmp_path)
        # As a `run` killed after its last poll leaves it.
        state |= {"command": "run", "settled": False}
        (tmp_path / STATE).write_text(json.dumps(state), encoding="utf-8")
        time.sleep(2.0)
        post = _cleanup(tmp_path, env)
        assert post.exit == 0, post.stderr
        assert "had already ended" in post.stderr
        assert server.log.count(category="cancel") == 0
        assert _state(tmp_path)["settled"] is True


def test_nothing_recorded_sends_no_request(tmp_path: Path) -> None:
    with sandbox("cyberorigen", "slow") as server:
        write_policy(tmp_path, "cyberorigen", server.base_url)
        post = _cleanup(tmp_path, _job_env(tmp_path, "cyberorigen", "slow"))
        assert post.exit == 0, post.stderr
        assert "nothing to clean up (no scan recorded)" in post.stderr
        assert server.log.entries() == []
