"""The conformance harness: the faults, one case per provider, each the real CLI vs its emulator.

Every case is one `scangate run` subprocess with its own emulator and directory. The runs are
independent and mostly wait on the emulators' clocks, so the session fixture starts every
selected case at once on a small thread pool and each test only collects its own outcome.
"""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest
import yaml
from e2e.support import (
    JWT,
    REPORT_FILES,
    CliRun,
    cli_env,
    run_cli,
    scangate,
    validate_reports,
    write_policy,
)
from ports import closed_port

from scangate.http import DEFAULT_TIMEOUT
from scangate.providers import PROVIDER_NAMES, provider_class
from scangate.sandbox import EMULATORS, EmulatorServer, sandbox_env, start_sandbox

WORKERS = 6
"""CLI subprocesses at once: they sleep on emulator time, so 2 cores carry six easily."""
READ_TIMEOUT = DEFAULT_TIMEOUT[1]
"""The CLI's read timeout; a `timeout` fault hangs one second longer than this."""


@dataclass(frozen=True, kw_only=True)
class FaultSpec:
    """How one fault is provoked, and the exit status it must give."""

    name: str
    exit: int
    scenario: str = "findings"
    """The bundled scenario the fault is injected into."""
    faults: tuple[Mapping[str, Any], ...] = ()
    """Scenario faults; `after` counts from the provider's first request of that category
    after the start (NCP, for one, searches its jobs with the poll call before starting)."""
    duration: float | None = None
    """Seconds the scan takes, when not the scenario's own."""
    lookups: bool = True
    """Let a provider's own lookups inside its start pass (see `START_LOOKUPS`)."""
    timeout: str | None = None
    """`scan.timeout`, when the fault needs a short one."""
    signal: signal.Signals | None = None
    """Sent once the CLI says it started the scan, or with `at_start` once the start request
    reaches the emulator (the CLI is then still inside the provider's `start`)."""
    at_start: bool = False
    read_timeout: bool = False
    """Let `timeout` faults hang past the CLI's read timeout."""
    refused: bool = False
    """Point `base_url` at a closed port instead of the emulator."""
    credentials: str = "sandbox"
    """`sandbox` (the emulator's default set), `login` (token providers) or `wrong`."""
    providers: frozenset[str] | None = None
    """The providers the fault applies to (None: every one)."""
    debug: bool = True
    """Also run the case with `SCANGATE_DEBUG=true` (token providers then log in)."""
    seconds: float = 8.0
    """A rough duration, to start the longest cases first."""


def _login_providers() -> frozenset[str]:
    """Providers whose emulator issues login tokens."""
    return frozenset(p for p in PROVIDER_NAMES if EMULATORS[p].SANDBOX_LOGIN_ENV is not None)


def _fetching_providers() -> frozenset[str]:
    """Providers that fetch results with requests of their own after the scan ends."""
    return frozenset(p for p in PROVIDER_NAMES if provider_class(p).capabilities.per_finding_detail)


START_LOOKUPS = {"ncp-wsc": 1}
"""Poll-category requests a provider's `start` makes after creating the scan: NCP's createJob
answer carries no job id (providers/ncp-wsc.md "createJob", INFERRED), so its start finds the
new job by memo with the status search. Poll faults skip these to hit the status polls."""
TOKEN_PROVIDERS = _login_providers()
FETCHING_PROVIDERS = _fetching_providers()
_POLL = "poll"
FAULTS: dict[str, FaultSpec] = {
    spec.name: spec
    for spec in (
        FaultSpec(name="none", exit=1, debug=False, seconds=6),
        FaultSpec(name="connection-refused", exit=3, refused=True, seconds=9),
        FaultSpec(name="dropped-connection", exit=1, faults=({"on": _POLL, "kind": "drop"},)),
        FaultSpec(
            name="read-timeout",
            exit=1,
            faults=({"on": _POLL, "kind": "timeout"},),
            read_timeout=True,
            debug=False,
            seconds=40,
        ),
        FaultSpec(
            name="5xx-burst", exit=1, faults=({"on": _POLL, "kind": "5xx", "count": 3},), seconds=9
        ),
        FaultSpec(
            name="poll-outage",
            exit=4,
            scenario="slow",
            faults=({"on": _POLL, "kind": "5xx", "count": 1000},),
            # Long enough for the first poll to fail after all its retries (7 s of backoff).
            timeout="15s",
            seconds=17,
        ),
        FaultSpec(
            name="results-outage",
            exit=3,
            faults=({"on": "findings", "kind": "5xx", "count": 1000, "status": 502},),
            providers=FETCHING_PROVIDERS,
            seconds=13,
        ),
        FaultSpec(
            name="rate-limited",
            exit=1,
            faults=({"on": _POLL, "kind": "429", "count": 2, "retry_after": 2},),
            debug=False,
            seconds=10,
        ),
        FaultSpec(name="malformed-json", exit=1, faults=({"on": _POLL, "kind": "malformed"},)),
        FaultSpec(
            name="malformed-results",
            exit=3,
            faults=({"on": "findings", "kind": "malformed", "count": 1000},),
            providers=FETCHING_PROVIDERS,
            seconds=13,
        ),
        FaultSpec(
            name="lookup-outage",
            exit=3,
            # Every search fails from the start on, the lookup of the new job included.
            faults=({"on": _POLL, "kind": "5xx", "count": 1000},),
            lookups=False,
            providers=frozenset(START_LOOKUPS),
            debug=False,
            seconds=12,
        ),
        FaultSpec(name="bad-credentials", exit=3, scenario="clean", credentials="wrong", seconds=3),
        FaultSpec(
            name="unauthorized",
            exit=3,
            scenario="clean",
            faults=({"on": "any", "kind": "401", "count": 1000},),
            seconds=3,
        ),
        FaultSpec(
            name="token-expiry",
            exit=1,
            faults=({"on": _POLL, "kind": "token-expiry"},),
            credentials="login",
            providers=TOKEN_PROVIDERS,
        ),
        FaultSpec(name="scan-failed", exit=4, scenario="failed", seconds=6),
        FaultSpec(name="scan-cancelled", exit=4, scenario="cancelled", seconds=6),
        FaultSpec(name="scan-timeout", exit=4, scenario="slow", timeout="4s", seconds=6),
        FaultSpec(
            name="sigint", exit=130, scenario="slow", signal=signal.SIGINT, debug=False, seconds=5
        ),
        FaultSpec(name="sigterm", exit=143, scenario="slow", signal=signal.SIGTERM, seconds=5),
        FaultSpec(
            name="sigterm-at-start",
            exit=143,
            scenario="slow",
            # The scan is made, its answer withheld: the CLI waits inside the provider's start.
            faults=({"on": "start", "kind": "timeout"},),
            read_timeout=True,
            signal=signal.SIGTERM,
            at_start=True,
            seconds=5,
        ),
    )
}
"""Every fault of the suite, by name."""


@dataclass(frozen=True, order=True)
class Case:
    """One provider under one fault, with or without `SCANGATE_DEBUG`."""

    provider: str
    fault: str
    debug: bool = False

    @property
    def spec(self) -> FaultSpec:
        """The fault's specification."""
        return FAULTS[self.fault]

    def __str__(self) -> str:
        """A test-id-like name (`vaddy-drop-debug`)."""
        return f"{self.provider}-{self.fault}" + ("-debug" if self.debug else "")


def cases(fault: str) -> list[Any]:
    """Pytest parameters for `fault`: every provider it applies to, plain and debugging."""
    spec = FAULTS[fault]
    providers = [p for p in PROVIDER_NAMES if spec.providers is None or p in spec.providers]
    every = [Case(p, fault) for p in providers]
    if spec.debug:
        every += [Case(p, fault, debug=True) for p in providers]
    return [pytest.param(case, id=str(case)) for case in every]


@dataclass
class Outcome:
    """What one case produced: the CLI run, the emulator (its log stays readable) and more."""

    case: Case
    run: CliRun
    server: EmulatorServer | None
    """None when the CLI was pointed at a closed port."""
    credentials: Mapping[str, str]
    signal_to_exit: float | None = None
    """Seconds from the signal to the exit, for signal cases."""
    closed_port: int | None = None
    offsets: Mapping[str, int] = field(default_factory=dict)
    """Requests per category the provider sends before its start (added to every `after`)."""

    @property
    def log_server(self) -> EmulatorServer:
        """The emulator (for cases that have one)."""
        assert self.server is not None, "this case ran without an emulator"
        return self.server

    def count(self, category: str) -> int:
        """Requests of `category` the emulator saw (0 without an emulator)."""
        return 0 if self.server is None else self.server.log.count(category=category)

    def after_start(self, category: str) -> list[Any]:
        """Log entries of `category` from the first start on."""
        entries = self.log_server.log.entries()
        first = next((n for n, e in enumerate(entries) if e.category == "start"), len(entries))
        return [e for e in entries[first:] if e.category == category]


def credentials_for(case: Case) -> dict[str, str]:
    """The emulator's credentials for `case`: its login set for token cases and debug runs,
    and with every secret replaced for `wrong`."""
    emulator = EMULATORS[case.provider]
    login = emulator.SANDBOX_LOGIN_ENV
    use_login = login is not None and (case.spec.credentials == "login" or case.debug)
    credentials = dict(login) if use_login and login else sandbox_env(case.provider)
    if case.spec.credentials == "wrong":
        # The same shape (a `csp_` key stays a `csp_` key), another value.
        secret = secret_names(case.provider)
        credentials = {
            k: (v[: len(v) // 2] + "0wr0ng" * 8)[: len(v)] if k in secret else v
            for k, v in credentials.items()
        }
    return credentials


def secret_names(provider: str) -> frozenset[str]:
    """The credential variables whose values are secrets, per the provider's `CredentialSpec`s."""
    return frozenset().union(*(spec.secret for spec in provider_class(provider).credentials))


def _scenario(case: Case, directory: Path, offsets: Mapping[str, int]) -> str:
    """The scenario to play: the bundled one, or a file extending it with the case's faults."""
    spec = case.spec
    if not spec.faults and spec.duration is None:
        return spec.scenario
    skip = dict(offsets)
    if spec.lookups:
        skip[_POLL] = skip.get(_POLL, 0) + START_LOOKUPS.get(case.provider, 0)
    faults = [{**f, "after": f.get("after", 0) + skip.get(f["on"], 0)} for f in spec.faults]
    scenario: dict[str, Any] = {"extends": spec.scenario, "faults": faults}
    if spec.duration is not None:
        scenario["duration"] = spec.duration
    path = directory / "scenario.yml"
    path.write_text(yaml.safe_dump(scenario), "utf-8")
    return str(path)


def _started(server: EmulatorServer) -> bool:
    return server.log.count(category="start") > 0


class _Reader(threading.Thread):
    """Drains one pipe of a subprocess, so the test can watch its lines as they come."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.lines: list[str] = []

    def run(self) -> None:
        for line in self.stream:
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)


def _signal_run(
    directory: Path, server: EmulatorServer, env: Mapping[str, str], spec: FaultSpec
) -> tuple[CliRun, float]:
    """Run the CLI and send the case's signal when it is due; return the run and the seconds
    from the signal to the exit."""
    assert spec.signal is not None
    began = time.monotonic()
    process = subprocess.Popen(
        scangate("run"),
        cwd=directory,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    out, err = _Reader(process.stdout), _Reader(process.stderr)
    out.start()
    err.start()

    def due() -> bool:
        if spec.at_start:
            return _started(server)
        return any(line.startswith("scangate: started ") for line in err.lines)

    try:
        while not due() and process.poll() is None:
            assert time.monotonic() - began < 60, "the CLI never started a scan"
            time.sleep(0.02)
        process.send_signal(spec.signal)
        signalled = time.monotonic()
        process.wait(timeout=60)
        seconds = time.monotonic() - signalled
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    out.join(5)
    err.join(5)
    run = CliRun(process.returncode, out.text, err.text, directory / "reports", seconds)
    return run, seconds


def run_case(case: Case, directory: Path, offsets: Mapping[str, int]) -> Outcome:
    """Run one case to completion in `directory`."""
    spec = case.spec
    credentials = credentials_for(case)
    env = cli_env(credentials, **({"SCANGATE_DEBUG": "true"} if case.debug else {}))
    scan = {"timeout": spec.timeout} if spec.timeout else {}
    if spec.refused:
        with closed_port() as port:
            base_url = f"http://127.0.0.1:{port}{EMULATORS[case.provider].prefix}"
            write_policy(directory, case.provider, base_url, scan=scan)
            run = run_cli(["run"], cwd=directory, env=env)
        return Outcome(case, run, None, credentials, closed_port=port)
    server = start_sandbox(
        case.provider,
        _scenario(case, directory, offsets),
        read_timeout=READ_TIMEOUT if spec.read_timeout else None,
    )
    seconds: float | None = None
    try:
        write_policy(directory, case.provider, server.base_url, scan=scan)
        if spec.signal is not None:
            run, seconds = _signal_run(directory, server, env, spec)
        else:
            run = run_cli(["run"], cwd=directory, env=env, timeout=120)
    finally:
        server.stop()
    return Outcome(case, run, server, credentials, seconds, offsets=offsets)


def _offsets(reference: Outcome) -> dict[str, int]:
    """Requests per category before the first start in a fault-free run."""
    counts: dict[str, int] = {}
    for entry in reference.log_server.log.entries():
        if entry.category == "start":
            break
        counts[entry.category] = counts.get(entry.category, 0) + 1
    return counts


class Conformance:
    """Runs cases on a thread pool: every provider's fault-free reference first, then the
    longest cases first. Fault cases read their reference's request counts (always already
    running by then, as the pool takes work in order)."""

    def __init__(self, directory: Path) -> None:
        """Create a new, idle `Conformance` pool; each case gets a directory under `directory`."""
        self._directory = directory
        self._executor = ThreadPoolExecutor(WORKERS, thread_name_prefix="conformance")
        self._futures: dict[Case, Future[Outcome]] = {}
        self._lock = threading.Lock()

    def submit_all(self, wanted: list[Case]) -> None:
        """Queue the references of every provider in `wanted`, then `wanted`, longest first."""
        providers = sorted({case.provider for case in wanted}, key=PROVIDER_NAMES.index)
        for provider in providers:
            self._submit(Case(provider, "none"))
        for case in sorted(wanted, key=lambda c: (-c.spec.seconds, c)):
            self._submit(case)

    def _submit(self, case: Case) -> Future[Outcome]:
        with self._lock:
            if case not in self._futures:
                self._futures[case] = self._executor.submit(self._run, case)
            return self._futures[case]

    def outcome(self, case: Case) -> Outcome:
        """The outcome of `case` (queued now if it was not selected up front)."""
        if case.fault != "none":
            self._submit(Case(case.provider, "none"))
        return self._submit(case).result()

    def reference(self, provider: str) -> Outcome:
        """`provider`'s fault-free run of the same scenario (`findings`)."""
        return self.outcome(Case(provider, "none"))

    def _run(self, case: Case) -> Outcome:
        offsets = {} if case.fault == "none" else _offsets(self.reference(case.provider))
        directory = self._directory / str(case)
        directory.mkdir()
        outcome = run_case(case, directory, offsets)
        # Kept next to the reports, for whoever has to read a failure from CI artifacts.
        (directory / "stderr.txt").write_text(outcome.run.stderr, "utf-8")
        (directory / "stdout.txt").write_text(outcome.run.stdout, "utf-8")
        return outcome

    def close(self) -> None:
        """Drop what has not started and wait for what has."""
        self._executor.shutdown(wait=True, cancel_futures=True)


# -- assertions shared by the tests -----------------------------------------------------------


def assert_no_secrets(outcome: Outcome) -> None:
    """No secret credential value and nothing JWT-shaped in stdout, stderr or any report."""
    text = outcome.run.everything()
    for name in secret_names(outcome.case.provider):
        value = outcome.credentials.get(name)
        if value:
            assert value not in text, f"{name} leaked"
    leaked = JWT.search(text)
    assert leaked is None, f"a token leaked: {leaked.group(0)[:12]}..."


def assert_sane(outcome: Outcome) -> None:
    """No traceback (except under debug), no workflow command, no emulator crash."""
    run = outcome.run
    if not outcome.case.debug:
        assert "Traceback" not in run.stderr + run.stdout, run.stderr
    assert not re.search(r"^\s*(::|##\[)", run.stderr + run.stdout, re.MULTILINE)
    if outcome.server is not None:
        assert outcome.server.errors == []


def error_line(outcome: Outcome) -> str:
    """The one `scangate: error:` line of stderr (it must be exactly one)."""
    lines = [x for x in outcome.run.stderr.splitlines() if x.startswith("scangate: error:")]
    assert len(lines) == 1, outcome.run.stderr
    return lines[0]


def assert_no_reports(outcome: Outcome) -> None:
    """Nothing was written: there was no scan, so there is no result to report."""
    assert not any((outcome.run.out_dir / name).exists() for name in REPORT_FILES)


def assert_reports(outcome: Outcome, status: str) -> dict[str, Any]:
    """Every report exists and validates; the scan is recorded with `status`. Returns the JSON."""
    run = outcome.run
    for name in REPORT_FILES:
        assert (run.out_dir / name).is_file(), name
    validate_reports(run)
    results = run.results()
    assert len(results["scans"]) == 1
    assert results["scans"][0]["status"] == status
    return dict(results)
