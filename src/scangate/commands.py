"""The subcommands behind `scangate.cli`: each takes parsed arguments and returns an exit status."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from scangate import __version__
from scangate.baseline import Baseline, load_baseline
from scangate.ci import publish, publish_start, section
from scangate.ci.github import add_mask, is_github
from scangate.credentials import describe, secrets_of, select_credentials
from scangate.errors import (
    Error,
    ExitStatus,
    PolicyError,
    ProviderError,
    ResultsError,
    UsageError,
)
from scangate.formats import Report
from scangate.gate import Evaluation, combine, evaluate
from scangate.http import HttpClient
from scangate.model import ScanId, ScanResult, ScanStatus
from scangate.output import Console, summary_line, write_reports
from scangate.policy import Policy, check_options, find_policy, load_policy, with_overrides
from scangate.polling import PollPolicy, PollSchedule
from scangate.providers import PROVIDER_NAMES, Provider, ScanRef, provider_class
from scangate.redact import Redactor
from scangate.runner import HERD_SPREAD, Runner, Stop, signal_guard, stoppable

STATE_FILE = "scangate-state.json"
"""Written by `scangate start` in the reports directory; read by `scangate wait`."""


@dataclass
class Context:
    """What every command shares: environment, console, redaction, clocks."""

    env: Mapping[str, str]
    console: Console
    redactor: Redactor
    debug: bool
    process_start: float
    stdout: TextIO = field(default_factory=lambda: sys.stdout)

    @classmethod
    def create(cls, *, debug: bool, process_start: float) -> Context:
        """Build the context of one process run."""
        env = dict(os.environ)
        redactor = Redactor()
        context = cls(env, Console(redactor), redactor, debug, process_start)
        _route_logging(context.console, debug)
        if is_github(env):
            redactor.on_add(lambda value: add_mask(context.stdout, value))
        return context

    def traceback(self) -> None:
        """Print the current exception's traceback, redacted (only under --debug)."""
        self.console.line(traceback.format_exc())


class _ConsoleHandler(logging.Handler):
    """Sends the package's log records through the `Console` (redacted, no workflow commands)."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.console.line(f"{record.levelname.lower()}: {record.getMessage()}")
        except Exception:  # noqa: BLE001 - logging must never break the run
            self.handleError(record)


def _route_logging(console: Console, debug: bool) -> None:
    """Providers log warnings with `logging`; they must reach the user through the console."""
    logger = logging.getLogger("scangate")
    logger.handlers[:] = [_ConsoleHandler(console)]
    logger.setLevel(logging.DEBUG if debug else logging.WARNING)
    logger.propagate = False


def _policy(args: argparse.Namespace, context: Context) -> Policy:
    policy = load_policy(find_policy(args.policy, context.env, Path()))
    out_dir = getattr(args, "out_dir", None)
    return with_overrides(policy, out_dir=Path(out_dir) if out_dir else None)


def _provider_type(policy: Policy) -> type[Provider]:
    name = policy.provider.name
    try:
        cls = provider_class(name)
    except KeyError:
        raise PolicyError(
            f"provider.name: {name!r} is not available in scangate {__version__}",
            hint=f"available: {', '.join(available_providers())}",
        ) from None
    check_options(policy, cls.options_schema)
    if policy.scan.if_running.value == "attach" and not cls.capabilities.attach:
        raise PolicyError(
            f"{policy.source}: scan.if_running: {cls.display_name} cannot attach to a running scan",
            hint="use if_running: wait or fail",
        )
    return cls


def available_providers() -> list[str]:
    """Provider names that this build implements."""
    names = []
    for name in PROVIDER_NAMES:
        try:
            provider_class(name)
        except KeyError:
            continue
        names.append(name)
    return names


@contextmanager
def _sandbox(policy: Policy, scenario: str | None) -> Iterator[tuple[Policy, Mapping[str, str]]]:
    """Yield the policy and credentials to use: the real ones, or the bundled emulator's."""
    if scenario is None:
        yield policy, {}
        return
    from scangate.sandbox import sandbox_env, start_sandbox

    try:
        server = start_sandbox(policy.provider.name, scenario)
    except Error:
        raise
    except (KeyError, ValueError, OSError) as exc:
        raise UsageError(f"cannot start the {policy.provider.name} sandbox: {exc}") from None
    try:
        settings = replace(policy.provider, base_url=server.base_url, verify_tls=True)
        yield replace(policy, provider=settings), sandbox_env(policy.provider.name, scenario)
    finally:
        server.stop()


def _build_provider(
    cls: type[Provider], policy: Policy, context: Context, env: Mapping[str, str]
) -> Provider:
    credentials = select_credentials(cls, env)
    for secret in secrets_of(cls, credentials):
        context.redactor.add(secret)
    if policy.provider.verify_tls is False:
        context.console.line(
            "WARNING: TLS certificate verification is OFF (provider.verify_tls: false); "
            "anyone on the network path can read the credentials"
        )
    quirks: dict[str, Any] = {
        key: getattr(cls, key) for key in ("secret_headers", "error_detail") if hasattr(cls, key)
    }
    http = HttpClient(
        provider=cls.name,
        base_url=policy.provider.base_url or cls.DEFAULT_BASE_URL,
        redactor=context.redactor,
        credential_hint=describe(cls),
        verify=policy.provider.verify_tls,
        **quirks,
    )
    return cls(settings=policy.provider, env=credentials, http=http)


def _evaluate_all(
    results: list[ScanResult], policy: Policy, context: Context
) -> tuple[Evaluation, ...]:
    baseline: Baseline | None = None
    if policy.baseline is not None:
        baseline = load_baseline(policy.baseline)
        if baseline.unrated:
            context.console.line(
                f"warning: {policy.baseline}: {baseline.unrated} baseline entries have no "
                "severity; they are read as info, so any more severe finding with their "
                "fingerprint counts as escalated (rewrite the baseline with `scangate baseline`)"
            )
    today = datetime.now(timezone.utc).date()
    return tuple(evaluate(result, policy, baseline, today) for result in results)


def _report(
    results: list[ScanResult], policy: Policy, context: Context, interrupted: str = ""
) -> Report:
    evaluations = _evaluate_all(results, policy, context)
    report = Report(
        evaluations=evaluations,
        verdict=combine(evaluations),
        gate=policy.gate,
        tool_version=__version__,
        sarif_anchor=policy.reports.sarif_anchor,
        interrupted=interrupted,
    )
    written = write_reports(report, policy.reports.formats, policy.reports.dir)
    publish(report, written, context.env, context.stdout)
    for evaluation in evaluations:
        for entry in evaluation.expired_ignores:
            context.console.line(f"warning: ignore[{entry.index}] expired on {entry.expires}")
        for entry in evaluation.unused_ignores:
            context.console.line(f"warning: ignore[{entry.index}] matched no finding")
    for reason in report_reasons(evaluations):
        context.console.line(f"  - {reason}")
    context.console.line(summary_line(report))
    if written:
        context.console.line(f"reports written to {policy.reports.dir}")
    return report


def report_reasons(evaluations: tuple[Evaluation, ...]) -> list[str]:
    """Every evaluation's reasons, prefixed with the scan when there are several."""
    many = len(evaluations) > 1
    return [
        (f"{e.result.target}: " if many else "") + reason
        for e in evaluations
        for reason in e.reasons
    ]


def _final_status(report: Report, report_only: bool) -> int:
    if report_only:
        return ExitStatus.PASSED
    return int(report.verdict.exit_status)


def _runner(provider: Provider, policy: Policy, context: Context) -> Runner:
    return Runner(
        provider=provider,
        policy=policy,
        log=context.console.line,
        deadline=context.process_start + policy.scan.timeout,
        schedule=lambda: PollSchedule(PollPolicy(), wall_clock=provider.http.clock),
        # Matrix jobs sharing one account start together; spread their first requests.
        herd_spread=HERD_SPREAD if context.env.get("CI", "").lower() in ("true", "1") else 0.0,
    )


def _format_seconds(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


def _drive(
    runner: Runner, policy: Policy, context: Context, scan_id: str | None, report_only: bool
) -> int:
    """Start (or attach to `scan_id`), wait, fetch, gate and report, whatever happens."""
    timeout_text = f"scan.timeout of {_format_seconds(policy.scan.timeout)} reached"
    with signal_guard() as late:
        stop: Stop | None = None
        failure: ProviderError | None = None
        try:
            with stoppable(runner.deadline, timeout_text):
                if scan_id is None:
                    scan = runner.start()
                else:
                    scan = runner.provider.attach(scan_id, policy.scan.target)
                    runner.scan = scan
                with section(f"waiting for scan {scan.scan_id}", context.env, context.stdout):
                    progress = runner.wait(scan)
                result = runner.fetch(scan, progress)
        except Stop as exc:
            stop = exc
        except ProviderError as exc:
            if runner.scan is None:
                raise
            failure = exc
        if stop is not None:
            remote = runner.stop_remote()
            if runner.scan is None:
                context.console.line(_stopped_without_scan(stop, remote, runner))
                return int(stop.exit_status)
            context.console.line(f"{stop.why}; {remote}")
            result = runner.partial(stop.status, stop.why)
        elif failure is not None:
            result = _kept_after_failure(runner, failure, context)
        report = _report([result], policy, context, interrupted=stop.why if stop else "")
        if late:
            stop = stop or late[0]
    if stop is not None:
        return int(stop.exit_status)
    if failure is not None:
        return ExitStatus.PASSED if report_only else int(failure.exit_status)
    return _final_status(report, report_only)


def _kept_after_failure(runner: Runner, failure: ProviderError, context: Context) -> ScanResult:
    """After a provider error once the scan exists: say so, how to resume, and what to report.

    A scan that ended but whose results could not be fetched is reported failed (fail closed:
    it has no findings to gate), with the cause, not as "may still be running".
    """
    assert runner.scan is not None
    scan_id = runner.scan.scan_id
    context.console.line(f"error: {failure.diagnostics()}")
    last = runner.last
    status, why = (last.status if last else ScanStatus.RUNNING), failure.message
    state = "may still be running"
    if last is not None and last.status.terminal:
        state = f"ended ({last.raw_status}) but its results could not be fetched"
        why = f"results could not be fetched: {failure.message}"
        if status is ScanStatus.COMPLETED:
            status = ScanStatus.FAILED
    context.console.line(f"scan {scan_id} {state}; resume with `scangate wait --scan-id {scan_id}`")
    return runner.partial(status, why)


def _stopped_without_scan(stop: Stop, remote: str, runner: Runner) -> str:
    """The line for a stop that leaves no scan (`remote`: what the interrupted start did).

    A start queued behind the plan's limits says what it waited for and how long (issue 14).
    """
    if remote:
        return f"{stop.why} while starting; {remote}"
    if runner.queue.since is not None:
        return (
            f"{stop.why} while waiting for {runner.queue.reason} on "
            f"{runner.provider.display_name} ({runner.queue_note()}); no scan was started"
        )
    return f"{stop.why} before any scan was started"


def run(args: argparse.Namespace, context: Context) -> int:
    """`scangate run`: start → wait → fetch → gate → reports."""
    policy = _policy(args, context)
    cls = _provider_type(policy)
    with _sandbox(policy, args.sandbox) as (effective, sandbox_credentials):
        if args.sandbox is not None:
            context.console.line(
                f"sandbox: {cls.display_name} emulator, scenario {args.sandbox!r}, "
                f"at {effective.provider.base_url}"
            )
        env = sandbox_credentials or context.env
        provider = _build_provider(cls, effective, context, env)
        runner = _runner(provider, effective, context)
        return _drive(runner, effective, context, None, args.report_only)


def start(args: argparse.Namespace, context: Context) -> int:
    """`scangate start`: start one scan (honouring if_running) and record its id."""
    policy = _policy(args, context)
    cls = _provider_type(policy)
    provider = _build_provider(cls, policy, context, context.env)
    runner = _runner(provider, policy, context)
    with signal_guard():
        try:
            with stoppable(runner.deadline, "scan.timeout reached while starting"):
                scan = runner.start()
        except Stop as stop:
            remote = runner.stop_remote()
            if runner.scan is None:
                context.console.line(_stopped_without_scan(stop, remote, runner))
            else:
                context.console.line(f"{stop.why}; {remote}")
            return int(stop.exit_status)
    _write_state(policy, scan)
    publish_start(scan.scan_id, policy.reports.dir, context.env, context.stdout)
    context.stdout.write(f"{scan.scan_id}\n")
    return ExitStatus.PASSED


def _write_state(policy: Policy, scan: ScanRef) -> None:
    policy.reports.dir.mkdir(parents=True, exist_ok=True)
    state = {
        "provider": policy.provider.name,
        "scan_id": scan.scan_id,
        "target": scan.target,
        "started_at": datetime.now(timezone.utc).isoformat(),
    }
    (policy.reports.dir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")


def _read_state(policy: Policy) -> str:
    path = policy.reports.dir / STATE_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        scan_id = state["scan_id"]
        if state.get("provider") != policy.provider.name or not isinstance(scan_id, str):
            raise ValueError("recorded for another provider")
    except FileNotFoundError:
        raise UsageError(
            "no --scan-id given and no scan recorded by `scangate start`",
            hint=f"pass --scan-id (or SCANGATE_SCAN_ID); `scangate start` records it in {path}",
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{path}: unreadable scan state ({exc})") from None
    return scan_id


def wait(args: argparse.Namespace, context: Context) -> int:
    """`scangate wait`: the second half of `run`, for an existing scan id."""
    policy = _policy(args, context)
    cls = _provider_type(policy)
    scan_id = args.scan_id or _read_state(policy)
    provider = _build_provider(cls, policy, context, context.env)
    runner = _runner(provider, policy, context)
    runner.scan = ScanRef(scan_id=ScanId(scan_id), target=policy.scan.target)
    return _drive(runner, policy, context, scan_id, args.report_only)


def gate(args: argparse.Namespace, context: Context) -> int:
    """`scangate gate`: re-gate saved results, merging several into one verdict."""
    from scangate.results import load_all

    policy = _policy(args, context)
    results = list(load_all([Path(name) for name in args.results]))
    if not results:
        raise ResultsError("the results files hold no scan")
    report = _report(results, policy, context)
    return _final_status(report, args.report_only)


def baseline(args: argparse.Namespace, context: Context) -> int:
    """`scangate baseline`: write the fingerprint and severity of every current finding.

    Several results merge into their union (`Baseline.from_results`).
    """
    from scangate.results import load_all

    known = Baseline.from_results(load_all([Path(name) for name in args.results]))
    output = Path(args.output)
    try:
        output.write_text(known.to_json(), encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror}") from None
    context.console.line(
        f"baseline of {len(known.entries)} findings "
        f"({len(known.fingerprints)} fingerprints) written to {output}"
    )
    return ExitStatus.PASSED


def validate(args: argparse.Namespace, context: Context) -> int:
    """`scangate validate`: check the policy (no network) and print the effective settings."""
    from scangate.policy import effective_settings

    policy = _policy(args, context)
    cls = _provider_type(policy)
    settings: dict[str, Any] = effective_settings(policy)
    settings["provider"]["base_url"] = policy.provider.base_url or cls.DEFAULT_BASE_URL
    settings["provider"]["credentials"] = describe(cls)
    context.stdout.write(json.dumps(settings, indent=2, default=str) + "\n")
    context.console.line(f"{policy.source}: policy is valid")
    return ExitStatus.PASSED


def providers(args: argparse.Namespace, context: Context) -> int:
    """`scangate providers`: list providers, their options, credentials and capabilities."""
    for name in PROVIDER_NAMES:
        try:
            cls = provider_class(name)
        except KeyError:
            context.stdout.write(f"{name}\n  not available in this version\n\n")
            continue
        caps = [k for k, v in vars(cls.capabilities).items() if v]
        options = ", ".join(sorted(cls.options_schema.get("properties", {}))) or "none"
        context.stdout.write(
            f"{name} ({cls.display_name})\n"
            f"  base_url:     {cls.DEFAULT_BASE_URL}\n"
            f"  credentials:  {describe(cls)}\n"
            f"  options:      {options}\n"
            f"  capabilities: {', '.join(caps)}\n\n"
        )
    return ExitStatus.PASSED


def sandbox(args: argparse.Namespace, context: Context) -> int:
    """`scangate sandbox`: serve one emulator on 127.0.0.1 until interrupted."""
    from scangate.sandbox import EMULATORS, sandbox_env, start_sandbox

    if args.provider not in EMULATORS:
        raise UsageError(
            f"no emulator for provider {args.provider!r}",
            hint=f"available: {', '.join(sorted(EMULATORS))}",
        )
    try:
        server = start_sandbox(args.provider, args.scenario, port=args.port)
    except Error:
        raise
    except (ValueError, OSError) as exc:
        raise UsageError(f"cannot start the sandbox: {exc}") from None
    context.stdout.write(
        f"serving {args.provider} scenario {args.scenario!r} at {server.base_url}\n"
    )
    for key, value in sandbox_env(args.provider, args.scenario).items():
        context.stdout.write(f"  {key}={value}\n")
    context.stdout.flush()
    try:
        with signal_guard() as late:
            while not late:
                time.sleep(0.2)
    finally:
        server.stop()
    return ExitStatus.PASSED


def schema(args: argparse.Namespace, context: Context) -> int:
    """`scangate schema`: print the policy JSON Schema."""
    from scangate.policy import policy_schema

    context.stdout.write(json.dumps(policy_schema(), indent=2) + "\n")
    return ExitStatus.PASSED


__all__ = ["Context", "Error"]
