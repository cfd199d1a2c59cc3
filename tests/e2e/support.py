"""The one helper of the end-to-end tests: a sandbox in the test process, the real CLI in a
subprocess, and what the tests read from a run (reports, verdicts, schema checks).

Used by every file in `tests/e2e/`, by the conformance harness and by `tests/test_cli.py`.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import xmlschema
import yaml
from conftest import ROOT, SCHEMAS
from formats.junit_xsd import junit_errors, junit_schemas
from jsonschema import Draft4Validator, Draft7Validator, Draft202012Validator

from scangate.results import results_schema
from scangate.sandbox import EmulatorServer, sandbox_env, start_sandbox

REPORT_FILES = ("scangate.sarif", "junit.xml", "gl-dast-report.json", "scangate.json", "summary.md")
EXAMPLE_POLICIES = ROOT / "examples" / "policies"
"""The shipped example policy of each provider (`<name>.yml`)."""
VERDICTS = {0: "passed", 1: "failed", 4: "incomplete"}
"""The `verdict` of `scangate.json` for each exit status that has one."""
JWT = re.compile(r"eyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]{5,}")
"""Anything shaped like a runtime token (CyberSec Pro and CyberOrigen issue JWTs)."""
TARGETS = {
    "cyberorigen": "staging.example.com",
    "cystack": "https://staging.example.com",
    "cybersecpro": "staging.example.com",
    "vaddy": "vaddy-project-1",
    "ncp-wsc": "https://staging.example.com/",
}
"""A `scan.target` each provider's emulator accepts."""


@dataclass
class CliRun:
    """The outcome of one CLI subprocess."""

    exit: int
    stdout: str
    stderr: str
    out_dir: Path
    seconds: float

    def report(self, name: str) -> str:
        """The text of one report file."""
        return (self.out_dir / name).read_text(encoding="utf-8")

    def parsed(self, name: str) -> Any:
        """The parsed JSON of one report file (`scangate.sarif`, `gl-dast-report.json`, ...)."""
        return json.loads(self.report(name))

    def results(self) -> Any:
        """The parsed `scangate.json`."""
        return self.parsed("scangate.json")

    def everything(self) -> str:
        """stdout, stderr and every file written, as one text (for secret canaries)."""
        parts = [self.stdout, self.stderr]
        if self.out_dir.exists():
            parts += [p.read_text("utf-8", errors="replace") for p in self.out_dir.iterdir()]
        return "\n".join(parts)


def write_policy(
    directory: Path,
    provider: str,
    base_url: str,
    *,
    scan: Mapping[str, Any] | None = None,
    gate: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a policy for `provider` pointing at `base_url`; return its path."""
    policy: dict[str, Any] = {
        "version": 1,
        "provider": {"name": provider, "base_url": base_url, "options": dict(options or {})},
        "scan": {"target": TARGETS[provider], "timeout": "60s", **(scan or {})},
        "gate": {"fail_on": "high", **(gate or {})},
        "reports": {"dir": "reports"},
        **(extra or {}),
    }
    path = directory / ".scangate.yml"
    path.write_text(yaml.safe_dump(policy, sort_keys=False), encoding="utf-8")
    return path


def write_scenario(directory: Path, name: str, scenario: Mapping[str, Any]) -> str:
    """Write a scenario file `<name>.yml` (it may `extends` a bundled one); return its path."""
    path = directory / f"{name}.yml"
    path.write_text(yaml.safe_dump(dict(scenario)), encoding="utf-8")
    return str(path)


def cli_env(credentials: Mapping[str, str], **extra: str) -> dict[str, str]:
    """A scrubbed environment for the CLI: PATH, Python's own settings, and `credentials`."""
    keep = ("PATH", "HOME", "LANG", "PYTHONPATH", "SYSTEMROOT", "TMPDIR")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(credentials)
    env.update(extra)
    return env


def scangate(*args: str) -> list[str]:
    """The command line that runs the installed package's CLI."""
    return [sys.executable, "-m", "scangate", *args]


def run_cli(args: list[str], *, cwd: Path, env: Mapping[str, str], timeout: float = 90.0) -> CliRun:
    """Run the CLI to completion."""
    began = time.monotonic()
    done = subprocess.run(
        scangate(*args),
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return CliRun(
        done.returncode, done.stdout, done.stderr, cwd / "reports", time.monotonic() - began
    )


@contextmanager
def sandbox(provider: str, scenario: str, **kwargs: Any) -> Iterator[EmulatorServer]:
    """A running emulator in this process (its request log stays readable)."""
    server = start_sandbox(provider, scenario, **kwargs)
    try:
        yield server
    finally:
        server.stop()


def run_with_history(
    tmp_path: Path, provider: str, durations: tuple[int, ...], **policy: Any
) -> tuple[CliRun, EmulatorServer]:
    """`scangate run` on a clean scan of 6 s whose target's past scans took `durations` seconds
    (the emulator's `history` option); `policy` goes to `write_policy`."""
    history = [{"duration": d} for d in durations]
    scenario = write_scenario(
        tmp_path,
        "history",
        {"extends": "clean", "duration": 6, "options": {provider: {"history": history}}},
    )
    return run_scenario(tmp_path, provider, scenario, **policy)


def run_scenario(
    tmp_path: Path,
    provider: str,
    scenario: str,
    *,
    credentials: Mapping[str, str] | None = None,
    args: tuple[str, ...] = (),
    env: Mapping[str, str] | None = None,
    **policy: Any,
) -> tuple[CliRun, EmulatorServer]:
    """Serve `scenario`, run `scangate run` against it, return the run and the stopped server."""
    with sandbox(provider, scenario) as server:
        write_policy(tmp_path, provider, server.base_url, **policy)
        creds = sandbox_env(provider, scenario) if credentials is None else credentials
        run = run_cli(["run", *args], cwd=tmp_path, env=cli_env(creds, **(env or {})))
    return run, server


def run_example(tmp_path: Path, provider: str) -> CliRun:
    """`scangate run --sandbox clean` on the shipped example policy of `provider`: no account."""
    policy = EXAMPLE_POLICIES / f"{provider}.yml"
    return run_cli(
        ["run", "--policy", str(policy), "--sandbox", "clean", "--out-dir", "reports"],
        cwd=tmp_path,
        env=cli_env({}),
    )


def run_beside_a_running_scan(
    tmp_path: Path, provider: str, scenario: str, if_running: str, start: Callable[[str], str]
) -> tuple[CliRun, EmulatorServer, str]:
    """`scangate run` with `scan.if_running: if_running` while another client's scan of the same
    target runs; `start(base_url)` starts that scan and returns its id."""
    with sandbox(provider, scenario) as server:
        busy = start(server.base_url)
        write_policy(tmp_path, provider, server.base_url, scan={"if_running": if_running})
        run = run_cli(["run"], cwd=tmp_path, env=cli_env(sandbox_env(provider)))
    return run, server, busy


def polled_after_start(server: EmulatorServer) -> bool:
    """True once the scan exists and a status poll followed it (a search before the start, as
    NCP makes, does not count)."""
    starts = server.log.find(category="start")
    return bool(starts) and any(
        e.category == "poll" and e.time >= starts[0].time for e in server.log.entries()
    )


def start_cli(
    args: list[str], *, cwd: Path, env: Mapping[str, str], stdout: int = subprocess.PIPE
) -> subprocess.Popen[str]:
    """Start the CLI as a CI job would (stdin closed, text streams) without waiting for it."""
    return subprocess.Popen(
        args,
        cwd=cwd,
        env=env,
        stdout=stdout,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def run_timed_lines(
    args: list[str], *, cwd: Path, env: Mapping[str, str], timeout: float
) -> tuple[int, list[tuple[float, str]]]:
    """Run the CLI; its exit status and each stderr line with the seconds since the start at
    which it arrived (read as it comes, so a silence in the log is a gap in the times)."""
    began = time.monotonic()
    process = start_cli(args, cwd=cwd, env=env, stdout=subprocess.DEVNULL)
    assert process.stderr is not None
    try:
        lines = [(time.monotonic() - began, line.rstrip("\n")) for line in process.stderr]
        return process.wait(timeout=timeout), lines
    finally:
        if process.poll() is None:
            process.kill()


def signal_while_waiting(
    tmp_path: Path,
    provider: str,
    sig: signal.Signals,
    *,
    scenario: str = "slow",
    ready: Callable[[EmulatorServer], bool] = polled_after_start,
    options: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    **policy: Any,
) -> tuple[CliRun, EmulatorServer, float]:
    """Start `scangate run` on `scenario` (a slow scan), send `sig` once `ready(server)` holds;
    return the run, the server and the seconds from the signal to the exit.

    `options` are the emulator's (CyberSec Pro's `shape`); `env` is the CLI's environment
    (default: the sandbox's credentials); `policy` goes to `write_policy`.
    """
    with sandbox(provider, scenario, options=options) as server:
        write_policy(tmp_path, provider, server.base_url, **policy)
        if env is None:
            env = cli_env(sandbox_env(provider, scenario))
        process = start_cli(scangate("run"), cwd=tmp_path, env=env)
        began = time.monotonic()
        try:
            while not ready(server):
                assert process.poll() is None, process.communicate()
                assert time.monotonic() - began < 30, "the scan never started"
                time.sleep(0.05)
            process.send_signal(sig)
            signalled = time.monotonic()
            stdout, stderr = process.communicate(timeout=30)
            seconds = time.monotonic() - signalled
        finally:
            if process.poll() is None:
                process.kill()
    run = CliRun(process.returncode, stdout, stderr, tmp_path / "reports", seconds)
    return run, server, seconds


# -- what the tests read from a run ---------------------------------------------------------------


def assert_sane_stderr(stderr: str) -> None:
    """No traceback, and no line that a CI runner would take for a workflow command."""
    assert "Traceback" not in stderr
    assert not re.search(r"^\s*::", stderr, re.MULTILINE)


def decisions(results: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(fingerprint, gate decision) of every finding of the one scan, sorted."""
    return sorted(
        (f["fingerprint"], f["gate"]["decision"]) for f in results["scans"][0]["findings"]
    )


def validate_reports(run: CliRun) -> None:
    """Each report against its official schema: scangate.json against the shipped one, SARIF
    2.1.0, GitLab DAST and both JUnit XSDs (vendored in tests/schemas)."""
    validators = _validators()
    validators["json"].validate(run.results())
    validators["sarif"].validate(run.parsed("scangate.sarif"))
    validators["gitlab"].validate(run.parsed("gl-dast-report.json"))
    # The Ant XSD allows no test case `system-out`, where GitLab reads a finding's details.
    errors = list(junit_errors(run.report("junit.xml"), _junit_schemas()))
    assert not errors, errors[0]


@cache
def _validators() -> dict[str, Any]:
    def schema(name: str) -> Any:
        return json.loads((SCHEMAS / name).read_text("utf-8"))

    return {
        "json": Draft202012Validator(results_schema()),
        "sarif": Draft4Validator(schema("sarif-2.1.0.json")),
        "gitlab": Draft7Validator(schema("gitlab-dast-report-format.json")),
    }


@cache
def _junit_schemas() -> dict[str, xmlschema.XMLSchema]:
    return junit_schemas()
