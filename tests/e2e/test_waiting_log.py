"""End to end: what the real CLI says while it waits (issue 17, item 6).

Every line about a scan names it and says how long the wait has taken, how much of
`scan.timeout` is left and what it cost; a rate-limit wait says who limits and for how long.
One run lasts past a heartbeat in real time (the emulators' clocks do not make the CLI's
sleeps shorter); the 30-second cadence over long and rate-limited waits is checked on a virtual
clock in `tests/test_runner.py`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests

from e2e.support import (
    TARGETS,
    assert_sane_stderr,
    cli_env,
    run_beside_a_running_scan,
    run_scenario,
    run_timed_lines,
    sandbox,
    scangate,
    write_policy,
    write_scenario,
)
from scangate.sandbox import sandbox_env

pytestmark = pytest.mark.slow

TIMEOUT = 120
"""`scan.timeout` of these runs, in seconds."""
PROGRESS_LINE = re.compile(
    r"^scangate: scan (?P<id>\S+) (?P<status>pending|running|completed)\b(?P<said>.*?)"
    r" · (?P<elapsed>\S+) elapsed, (?P<left>\S+) of scan\.timeout left"
    r" · (?P<polls>\d+) polls?, (?P<requests>\d+) requests?$"
)
"""`scan 1234 running (scanning) 42% · ETA 3m · 6m10s elapsed, 1m50s of scan.timeout left ·
14 polls, 31 requests` (the provider's words between the status and the timing)."""


def seconds(clock: str) -> int:
    """`45s`, `1m50s` → seconds (the runs here are shorter than an hour)."""
    found = re.fullmatch(r"(?:(\d+)m)?(\d+)s", clock)
    assert found, clock
    return int(found.group(1) or 0) * 60 + int(found.group(2))


def progress_lines(stderr: str) -> list[re.Match[str]]:
    """The wait's lines about our own scan, parsed."""
    return [m for line in stderr.splitlines() if (m := PROGRESS_LINE.match(line))]


def test_every_wait_line_shows_elapsed_time_budget_left_progress_and_requests(
    tmp_path: Path,
) -> None:
    run, server = run_scenario(tmp_path, "cyberorigen", "clean", scan={"timeout": f"{TIMEOUT}s"})
    assert run.exit == 0, run.stderr
    assert_sane_stderr(run.stderr)
    lines = progress_lines(run.stderr)
    scan_id = run.results()["scans"][0]["scan_id"]
    assert [m["id"] for m in lines] == [scan_id] * len(lines)
    assert lines[0]["status"] != "completed" and lines[-1]["status"] == "completed"
    # CyberOrigen gives a percentage and an estimate: both are on the line.
    assert re.search(r" \d+(\.\d)?% · .*ETA \d+s", lines[0]["said"]), lines[0].group(0)
    for line in lines:
        elapsed, left = seconds(line["elapsed"]), seconds(line["left"])
        # The budget counts from the process start, the elapsed time from the wait's.
        assert 0 <= elapsed <= run.seconds + 1
        assert TIMEOUT - run.seconds - 1 <= left <= TIMEOUT - elapsed
    assert seconds(lines[-1]["elapsed"]) >= seconds(lines[0]["elapsed"])
    # The requests spent so far: every request the emulator saw before the last line.
    polls = [int(m["polls"]) for m in lines]
    requests = [int(m["requests"]) for m in lines]
    assert polls == sorted(polls) and requests == sorted(requests)
    assert all(r > p for p, r in zip(polls, requests, strict=True))  # the start counts too
    assert requests[-1] <= len(server.log)


@pytest.mark.parametrize(
    ("provider", "display"), [("cyberorigen", "CyberOrigen"), ("cybersecpro", "CyberSec Pro")]
)
def test_a_retry_after_wait_says_who_limits_how_long_and_the_budget_left(
    tmp_path: Path, provider: str, display: str
) -> None:
    throttled = write_scenario(
        tmp_path,
        "throttled",
        {
            "extends": "findings",
            "faults": [{"on": "poll", "after": 1, "count": 1, "kind": 429, "retry_after": 3}],
        },
    )
    run, server = run_scenario(tmp_path, provider, throttled)
    assert run.exit == 1, run.stderr
    assert_sane_stderr(run.stderr)
    assert [e.status for e in server.log.find(category="poll")].count(429) == 1
    said = [line for line in run.stderr.splitlines() if "rate limited by" in line]
    assert len(said) == 1, run.stderr
    found = re.fullmatch(
        rf"scangate: rate limited by {display}, waiting (\d+)s \(Retry-After; HTTP 429[^)]*\), "
        r"(\d+)s of scan\.timeout left",
        said[0],
    )
    assert found, said[0]
    assert 2 <= int(found.group(1)) <= 3
    assert 0 < int(found.group(2)) <= 60
    # Said during the wait: after the first status line, before the scan's end.
    lines = run.stderr.splitlines()
    first = next(i for i, line in enumerate(lines) if PROGRESS_LINE.match(line))
    done = next(i for i, line in enumerate(lines) if " completed " in line)
    assert first < lines.index(said[0]) < done


def _another_clients_scan(base_url: str) -> str:
    """Start a scan of the policy's target as another client would; return its id."""
    answer = requests.post(
        f"{base_url}/scans",
        json={"target": TARGETS["cyberorigen"], "authorized": True, "scan_type": "quick"},
        headers={"X-API-Key": sandbox_env("cyberorigen")["CYBERORIGEN_API_KEY"]},
        timeout=5,
    )
    answer.raise_for_status()
    return str(answer.json()["id"])


def test_waiting_for_a_named_scan_of_another_client_never_reads_as_ours(tmp_path: Path) -> None:
    run, server, theirs = run_beside_a_running_scan(
        tmp_path, "cyberorigen", "clean", "wait", _another_clients_scan
    )
    assert run.exit == 0, run.stderr
    target = TARGETS["cyberorigen"]
    lines = [line.removeprefix("scangate: ") for line in run.stderr.splitlines()]
    ours = run.results()["scans"][0]["scan_id"]
    assert ours != theirs and server.log.count(category="start") == 2  # theirs, then ours
    started = lines.index(f"started CyberOrigen scan {ours}")
    before = lines[:started]
    assert before[0] == (
        f"CyberOrigen target {target} busy with scan {theirs} (not ours); "
        "waiting for it to end before starting ours"
    )
    assert before[-1].startswith(f"{target} free after ")
    # Their end is said as the target coming free, naming their word for it.
    assert before[-1].endswith(" (the other scan ended: completed); starting our scan")
    assert all(line.startswith("other client's scan ") for line in before[1:-1]), before
    assert not any("completed" in line for line in before[:-1])
    assert not any(ours in line for line in before)
    assert all(theirs not in line for line in lines[started:])
    assert progress_lines(run.stderr)[-1]["status"] == "completed"


def timed_stderr(
    tmp_path: Path, provider: str, scenario: str
) -> tuple[int, list[tuple[float, str]]]:
    """Run `scangate run` on `scenario`; return its exit and each stderr line with the seconds
    since the start at which it arrived."""
    with sandbox(provider, scenario) as server:
        write_policy(tmp_path, provider, server.base_url, scan={"timeout": f"{TIMEOUT}s"})
        return run_timed_lines(
            scangate("run"), cwd=tmp_path, env=cli_env(sandbox_env(provider, scenario)), timeout=30
        )


def test_a_status_only_scan_gets_a_heartbeat_within_30_seconds_with_elapsed_and_budget(
    tmp_path: Path,
) -> None:
    # VAddy says only "scanning" until the end: past the first line, only heartbeats speak.
    long = write_scenario(tmp_path, "long", {"extends": "clean", "duration": 34})
    code, lines = timed_stderr(tmp_path, "vaddy", long)
    assert code == 0, lines
    waiting = [(t, PROGRESS_LINE.match(line)) for t, line in lines]
    timed = [(t, m) for t, m in waiting if m is not None]
    assert [m["status"] for _, m in timed][-1] == "completed"
    beats = [(t, m) for t, m in timed if m["status"] == "running"]
    assert len(beats) >= 2, lines
    for (before, _), (after, _) in zip(timed, timed[1:], strict=False):
        assert after - before <= 30 + 2, lines  # 2 s for the poll's request and the pipe
    (first_at, first), (beat_at, beat) = beats[0], beats[1]
    assert beat["said"] == first["said"] == " (scanning)"  # nothing changed: a heartbeat
    elapsed = seconds(beat["elapsed"])
    assert 28 <= elapsed <= 32 and abs((beat_at - first_at) - elapsed) <= 2
    assert abs(seconds(beat["left"]) - (TIMEOUT - beat_at)) <= 2
    assert int(beat["requests"]) >= int(beat["polls"]) >= int(first["polls"])
