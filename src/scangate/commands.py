"""The subcommands behind `scangate.cli`: each takes parsed arguments and returns an exit status.

The handlers only: the shared context is `session`, building providers `wiring`, reporting
`reporting`, and the state file (the `start`/`wait` hand-over, and the scan `cleanup` cancels
after a killed job) `state`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from scangate.baseline import Baseline
from scangate.ci import Failure, publish_start, section
from scangate.credentials import describe
from scangate.errors import Error, ExitStatus, ProviderError, ResultsError, UsageError
from scangate.model import OnTimeout, Policy, ScanId, ScanRef, ScanResult, ScanStatus
from scangate.providers import PROVIDER_NAMES, provider_class
from scangate.reporting import final_status, gate_and_report
from scangate.runner import Runner, Stop, signal_guard, stoppable
from scangate.session import Context
from scangate.state import Recorded, ScanState, load_state, read_state
from scangate.wiring import build_provider, build_runner, command_policy, provider_type, sandboxed


def _format_seconds(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


def _drive(
    runner: Runner,
    policy: Policy,
    context: Context,
    scan_id: str | None,
    report_only: bool,
    state: ScanState,
) -> int:
    """Start (or attach to `scan_id`), wait, fetch, gate and report, whatever happens.

    `state` records the scan as soon as it exists, before the wait, and settles it once the
    result is fetched or the stop cancelled or kept it: a runner that kills the job in between
    leaves it for `scangate cleanup` to cancel (issue 18).
    """
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
                context.scan_id = scan.scan_id
                state.owned(scan)
                with section(f"waiting for scan {scan.scan_id}", context.env, context.stdout):
                    progress = runner.wait(scan)
                result = runner.fetch(scan, progress)
                state.settled()
        except Stop as exc:
            stop = exc
        except ProviderError as exc:
            if runner.scan is None:
                raise
            failure = exc
        if stop is not None:
            remote = runner.stop_remote()
            _settle_after_stop(runner, state)
            if runner.scan is None:
                said = _stopped_without_scan(stop, remote, runner)
                context.console.line(said)
                context.failure = _stop_failure(stop, said, runner)
                return int(stop.exit_status)
            context.console.line(f"{stop.why}; {remote}")
            result = runner.partial(stop.status, stop.why)
        elif failure is not None:
            # Not settled: the scan may run on, and the job's cleanup step may cancel it.
            result = _kept_after_failure(runner, failure, context)
        outcome = gate_and_report([result], policy, context, interrupted=stop.why if stop else "")
        context.published = True
        if late:
            stop = stop or late[0]
    if stop is not None:
        return int(stop.exit_status)
    if failure is not None:
        return ExitStatus.PASSED if report_only else int(failure.exit_status)
    return final_status(outcome, report_only)


def _settle_after_stop(runner: Runner, state: ScanState) -> None:
    """After `stop_remote`: settled, unless its cancel failed (cleanup may try once more).

    A scan that only the stopped start made (`stop_remote` found it) is recorded here first.
    """
    if runner.scan is None:
        return
    if runner.cancel_failed:
        if state.scan is None:
            state.owned(runner.scan)
        return
    state.settled(runner.scan)


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
    # The report says the scan did not complete; the error says why and what to do about it.
    context.failure = Failure(
        int(failure.exit_status),
        "provider error",
        failure.message,
        failure.hint or f"check the provider's status, then resume the scan ({state})",
        scan_id,
        resumable=True,
    )
    return runner.partial(status, why)


def _stop_failure(stop: Stop, said: str, runner: Runner) -> Failure:
    """The CI surfaces' account of a stop that made no report (`said`: the log line)."""
    scan_id = runner.scan.scan_id if runner.scan is not None else ""
    resumable = bool(scan_id) and runner.policy.scan.on_timeout is OnTimeout.KEEP
    kind = "interrupted" if stop.status is ScanStatus.INTERRUPTED else "scan did not complete"
    if stop.status is ScanStatus.INTERRUPTED:
        fix = (
            "rerun the job" if scan_id else "the job was stopped before any scan existed; rerun it"
        )
    elif runner.queue.since is not None:
        fix = (
            "raise scan.timeout to cover the wait, or run fewer jobs at once on this provider "
            "account (a bigger plan removes the wait)"
        )
    else:
        fix = "raise scan.timeout in the policy (it runs from the start of scangate)"
    return Failure(int(stop.exit_status), kind, said, fix, scan_id, resumable)


def _policy(args: argparse.Namespace, context: Context) -> Policy:
    """The command's policy; its reports directory is noted for a failure's CI files."""
    policy = command_policy(args, context)
    context.reports_dir = policy.reports.dir
    return policy


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
    cls = provider_type(policy)
    with sandboxed(policy, args.sandbox) as (effective, sandbox_credentials):
        if args.sandbox is not None:
            context.console.line(
                f"sandbox: {cls.display_name} emulator, scenario {args.sandbox!r}, "
                f"at {effective.provider.base_url}"
            )
        env = sandbox_credentials or context.env
        provider = build_provider(cls, effective, context, env)
        runner = build_runner(provider, effective, context)
        state = ScanState(effective, "run", context.console.line, sandbox=args.sandbox is not None)
        return _drive(runner, effective, context, None, args.report_only, state)


def start(args: argparse.Namespace, context: Context) -> int:
    """`scangate start`: start one scan (honouring if_running) and record its id."""
    policy = _policy(args, context)
    cls = provider_type(policy)
    provider = build_provider(cls, policy, context, context.env)
    runner = build_runner(provider, policy, context)
    state = ScanState(policy, "start", context.console.line)
    with signal_guard():
        try:
            with stoppable(runner.deadline, "scan.timeout reached while starting"):
                scan = runner.start()
                context.scan_id = scan.scan_id
                state.owned(scan)
        except Stop as stop:
            remote = runner.stop_remote()
            _settle_after_stop(runner, state)
            said = f"{stop.why}; {remote}"
            if runner.scan is None:
                said = _stopped_without_scan(stop, remote, runner)
            context.console.line(said)
            context.failure = _stop_failure(stop, said, runner)
            return int(stop.exit_status)
    publish_start(scan.scan_id, policy.reports.dir, context.env, context.stdout)
    context.stdout.write(f"{scan.scan_id}\n")
    # Handed over to a later `scangate wait`, which reads the id whether settled or not: the
    # cleanup after this job must not cancel the scan the next job is to wait for.
    state.settled()
    return ExitStatus.PASSED


def wait(args: argparse.Namespace, context: Context) -> int:
    """`scangate wait`: the second half of `run`, for an existing scan id."""
    policy = _policy(args, context)
    cls = provider_type(policy)
    scan_id = args.scan_id or read_state(policy)
    provider = build_provider(cls, policy, context, context.env)
    runner = build_runner(provider, policy, context)
    runner.scan = ScanRef(scan_id=ScanId(scan_id), target=policy.scan.target)
    context.scan_id = scan_id
    state = ScanState(policy, "wait", context.console.line)
    return _drive(runner, policy, context, scan_id, args.report_only, state)


def cleanup(args: argparse.Namespace, context: Context) -> int:
    """`scangate cleanup`: cancel the scan a killed `run`, `start` or `wait` left unsettled.

    The GitHub action's post step (`post-if: cancelled() || failure()`), GitLab's
    `after_script` and Jenkins' `post { aborted }` run it after the runner killed the main
    step, whose own SIGTERM handling never ran (docs/formats.md §4.6: SIGKILL 10 s after the
    cancel). With nothing recorded, or a settled scan, it sends no request at all.
    """
    policy = _policy(args, context)
    # Nothing here is a report: a failure adds its annotation and summary, never the outputs
    # or dotenv of the main step's verdict.
    context.published = True
    recorded = load_state(policy)
    if recorded is None or recorded.settled:
        why = "no scan recorded" if recorded is None else _settled_why(recorded)
        context.console.line(f"nothing to clean up ({why})")
        return ExitStatus.PASSED
    if recorded.provider != policy.provider.name:
        raise UsageError(
            f"scan {recorded.scan_id} was recorded for provider {recorded.provider!r}, "
            f"but the policy names {policy.provider.name!r}",
            hint="run `scangate cleanup` with the policy and reports directory of the main step",
        )
    scan = ScanRef(scan_id=ScanId(recorded.scan_id), target=recorded.target)
    context.scan_id = scan.scan_id
    state = ScanState(policy, recorded.command, context.console.line, sandbox=recorded.sandbox)
    if recorded.sandbox:
        # The emulator lived in the killed process: its scans ended with it.
        context.console.line(f"sandbox scan {scan.scan_id} ended with its emulator")
        state.settled(scan)
        return ExitStatus.PASSED
    if policy.scan.on_timeout is OnTimeout.KEEP:
        # As the runner does on a stop (`Runner.stop_remote`): kept on purpose, no request.
        context.console.line(
            f"scan {scan.scan_id} left running (on_timeout: keep); resume with "
            f"`scangate wait --scan-id {scan.scan_id}`"
        )
        state.settled(scan)
        return ExitStatus.PASSED
    cls = provider_type(policy)
    provider = build_provider(cls, policy, context, context.env)
    runner = build_runner(provider, policy, context)
    runner.scan = scan
    # The scan's state picks the right call (`Provider.cancel`: NCP's cancelJob or stopJob),
    # and a scan that ended is left alone: CyberOrigen's DELETE would delete a finished scan
    # (docs/providers/cyberorigen.md "DELETE /api/v1/scans/{id}").
    try:
        runner.last = provider.poll(scan)
    except ProviderError as exc:
        context.console.line(f"status of scan {scan.scan_id} unknown ({exc.message})")
    remote = runner.stop_remote()
    context.console.line(f"cleanup after an unfinished `scangate {recorded.command}`: {remote}")
    if runner.cancel_failed:
        context.failure = Failure(
            ExitStatus.PROVIDER_ERROR,
            "cleanup failed",
            remote,
            "cancel the scan in the provider's console, or rerun `scangate cleanup`",
            scan.scan_id,
        )
        return ExitStatus.PROVIDER_ERROR
    state.settled(scan)
    return ExitStatus.PASSED


def _settled_why(recorded: Recorded) -> str:
    if recorded.command == "start":
        return f"scan {recorded.scan_id} was handed over to `scangate wait`"
    return f"scan {recorded.scan_id} was settled by `scangate {recorded.command}`"


def gate(args: argparse.Namespace, context: Context) -> int:
    """`scangate gate`: re-gate saved results, merging several into one verdict."""
    from scangate.results import load_all

    policy = _policy(args, context)
    results = list(load_all([Path(name) for name in args.results]))
    if not results:
        raise ResultsError("the results files hold no scan")
    outcome = gate_and_report(results, policy, context)
    context.published = True
    return final_status(outcome, args.report_only)


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
    cls = provider_type(policy)
    settings: dict[str, Any] = effective_settings(policy)
    settings["provider"]["base_url"] = policy.provider.base_url or cls.DEFAULT_BASE_URL
    settings["provider"]["credentials"] = describe(cls)
    context.stdout.write(json.dumps(settings, indent=2, default=str) + "\n")
    context.console.line(f"{policy.source}: policy is valid")
    if policy.bases:
        chain = " -> ".join(str(path) for path in (policy.source, *policy.bases))
        context.console.line(f"extends: {chain}")
    # Where each value came from, beside the JSON on stdout (which keeps its contract).
    context.console.line("where each setting comes from:")
    for key, origin in settings["origins"].items():
        context.console.line(f"  {key}: {origin}")
    return ExitStatus.PASSED


def providers(args: argparse.Namespace, context: Context) -> int:
    """`scangate providers`: list providers, their options, credentials and capabilities."""
    for name in PROVIDER_NAMES:
        cls = provider_class(name)
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
