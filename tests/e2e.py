"""End-to-end helpers: a sandbox in the test process, the real CLI in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from scangate.sandbox import EmulatorServer, sandbox_env, start_sandbox

REPORT_FILES = ("scangate.sarif", "junit.xml", "gl-dast-report.json", "scangate.json", "summary.md")
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

    def results(self) -> Any:
        """The parsed `scangate.json`."""
        return json.loads(self.report("scangate.json"))

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


def _polled_after_start(server: EmulatorServer) -> bool:
    """True once the scan exists and a status poll followed it (a search before the start, as
    NCP makes, does not count)."""
    starts = server.log.find(category="start")
    return bool(starts) and any(
        e.category == "poll" and e.time >= starts[0].time for e in server.log.entries()
    )


def signal_while_waiting(
    tmp_path: Path, provider: str, sig: signal.Signals, **policy: Any
) -> tuple[CliRun, EmulatorServer, float]:
    """Start `scangate run` on a slow scan, send `sig` once it waits; return run, server, seconds
    from the signal to the exit."""
    with sandbox(provider, "slow") as server:
        write_policy(tmp_path, provider, server.base_url, **policy)
        process = subprocess.Popen(
            scangate("run"),
            cwd=tmp_path,
            env=cli_env(sandbox_env(provider, "slow")),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        began = time.monotonic()
        try:
            while not _polled_after_start(server):
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
