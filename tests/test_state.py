"""The state file (`scangate-state.json`): written as soon as the scan exists, before the wait;
settled on every way the command lets go of its scan; never in the way of a run (issue 18).

The real CLI against the sandbox emulators on 127.0.0.1 (tests/e2e/support.py).
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from e2e.support import (
    REPORT_FILES,
    cli_env,
    polled_after_start,
    run_cli,
    run_scenario,
    sandbox,
    scangate,
    start_cli,
    write_policy,
)

from scangate.sandbox import sandbox_env

pytestmark = pytest.mark.slow

STATE = Path("reports") / "scangate-state.json"


def _state(root: Path) -> dict[str, Any]:
    state: dict[str, Any] = json.loads((root / STATE).read_text(encoding="utf-8"))
    return state


def test_the_scan_is_recorded_unsettled_before_the_wait_and_settled_by_the_cancel(
    tmp_path: Path,
) -> None:
    with sandbox("cyberorigen", "slow") as server:
        write_policy(tmp_path, "cyberorigen", server.base_url)
        env = cli_env(sandbox_env("cyberorigen", "slow"))
        process = start_cli(scangate("run"), cwd=tmp_path, env=env)
        began = time.monotonic()
        try:
            while not polled_after_start(server):
                assert process.poll() is None, process.communicate()
                assert time.monotonic() - began < 30, "the scan never started"
                time.sleep(0.05)
            # Waiting: the scan runs on (600 s), and the file already names it, not settled.
            waiting = _state(tmp_path)
            assert process.poll() is None
            assert not (tmp_path / "reports" / "scangate.json").exists()
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 143, stderr
    assert set(waiting) == {"provider", "scan_id", "target", "started_at", "command", "settled"}
    assert waiting["provider"] == "cyberorigen"
    assert waiting["target"] == "staging.example.com"
    assert (waiting["command"], waiting["settled"]) == ("run", False)
    assert server.log.count(category="cancel") == 1
    settled = _state(tmp_path)
    # scangate cancelled it itself: nothing left for a cleanup step.
    assert settled == {**waiting, "settled": True}


def test_a_run_that_ends_settles_its_scan(tmp_path: Path) -> None:
    run, _ = run_scenario(tmp_path, "vaddy", "findings")
    assert run.exit == 1, run.stderr
    state = _state(tmp_path)
    assert (state["command"], state["settled"]) == ("run", True)
    assert state["scan_id"] == run.results()["scans"][0]["scan_id"]


@pytest.mark.parametrize(("on_timeout", "cancels"), [("cancel", 1), ("keep", 0)])
def test_a_timeout_settles_the_scan_it_cancelled_or_kept(
    tmp_path: Path, on_timeout: str, cancels: int
) -> None:
    run, server = run_scenario(
        tmp_path, "ncp-wsc", "slow", scan={"timeout": "3s", "on_timeout": on_timeout}
    )
    assert run.exit == 4, run.stderr
    assert server.log.count(category="cancel") == cancels
    assert _state(tmp_path)["settled"] is True


def test_start_hands_over_and_wait_takes_the_scan_over(tmp_path: Path) -> None:
    with sandbox("cyberorigen", "clean") as server:
        write_policy(tmp_path, "cyberorigen", server.base_url)
        env = cli_env(sandbox_env("cyberorigen", "clean"))
        started = run_cli(["start"], cwd=tmp_path, env=env)
        assert started.exit == 0, started.stderr
        handed = _state(tmp_path)
        assert (handed["command"], handed["settled"]) == ("start", True)
        waited = run_cli(["wait"], cwd=tmp_path, env=env)
    assert waited.exit == 0, waited.stderr
    state = _state(tmp_path)
    assert (state["command"], state["settled"]) == ("wait", True)
    assert state["scan_id"] == handed["scan_id"] == waited.results()["scans"][0]["scan_id"]


def test_an_unwritable_state_file_is_a_warning_and_the_run_goes_on(tmp_path: Path) -> None:
    # A directory where the file should be: no rename can replace it, even as root.
    (tmp_path / STATE).mkdir(parents=True)
    run, server = run_scenario(tmp_path, "cyberorigen", "findings")
    assert run.exit == 1, run.stderr
    assert run.stderr.count("warning: cannot record scan") == 1
    assert "`scangate cleanup` will not find it" in run.stderr
    for name in REPORT_FILES:
        assert (run.out_dir / name).is_file(), name
    assert server.log.count(category="start") == 1
    assert not [p for p in (tmp_path / "reports").iterdir() if p.name.endswith(".tmp")]


def test_a_state_file_from_before_cleanup_is_a_hand_over(tmp_path: Path) -> None:
    """`start` of 0.1.0 wrote no `command` or `settled`: cleanup leaves that scan alone."""
    with sandbox("cyberorigen", "slow") as server:
        write_policy(tmp_path, "cyberorigen", server.base_url)
        (tmp_path / "reports").mkdir()
        old = {"provider": "cyberorigen", "scan_id": "scan_1", "target": "staging.example.com"}
        (tmp_path / STATE).write_text(json.dumps(old), encoding="utf-8")
        post = run_cli(["cleanup"], cwd=tmp_path, env=cli_env(sandbox_env("cyberorigen")))
    assert post.exit == 0, post.stderr
    assert "nothing to clean up (scan scan_1 was handed over to `scangate wait`)" in post.stderr
    assert server.log.entries() == []


def test_an_unreadable_state_file_is_a_usage_error(tmp_path: Path) -> None:
    write_policy(tmp_path, "cyberorigen", "http://127.0.0.1:9")
    (tmp_path / "reports").mkdir()
    (tmp_path / STATE).write_text("{not json", encoding="utf-8")
    post = run_cli(["cleanup"], cwd=tmp_path, env=cli_env({}))
    assert post.exit == 2
    assert "unreadable scan state" in post.stderr
