"""The command line: `main(argv) -> int`. Heavy modules are imported only by the commands."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from scangate import __version__
from scangate.errors import (
    CredentialsError,
    Error,
    ExitStatus,
    OutputError,
    PolicyError,
    ProviderAuthError,
    ProviderError,
    ResultsError,
    ScanIncompleteError,
    UsageError,
)

if TYPE_CHECKING:
    from scangate.ci import Failure
    from scangate.session import Context

PROCESS_START = time.monotonic()
"""`scan.timeout` runs from process start (design §9 "Timeout")."""

EXIT_CODES = """\
exit codes:
  0    passed (or --report-only)
  1    gate failed: findings exceed the policy's thresholds
  2    usage, policy or credentials error
  3    provider error (credentials rejected, API error after retries, unexpected payload)
  4    scan did not complete (timeout, failed, cancelled, partial with fail_on_incomplete)
  130  interrupted by SIGINT
  143  terminated by SIGTERM
"""

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_flag(name: str) -> bool:
    """Read a boolean `SCANGATE_*` variable strictly; garbage is a usage error."""
    value = os.environ.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise Error(f"{name}={value!r} is not a boolean", hint="use true or false")


def _env_help(text: str, env: str) -> str:
    return f"{text} (env: {env})"


def _add_debug_option(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    # Accepted before and after the command (`scangate --debug run`, `scangate run --debug`).
    # On a command it defaults to SUPPRESS: absent there, it leaves the top-level value alone.
    parser.add_argument(
        "--debug",
        action="store_true",
        default=None if top else argparse.SUPPRESS,
        help=_env_help(
            "show tracebacks and log every HTTP request and response line (secrets redacted)",
            "SCANGATE_DEBUG",
        ),
    )


class _SandboxHelp(argparse.Action):
    """`scangate sandbox --help`, listing every emulator and its bundled scenarios.

    The list is made only when help is asked for: reading the scenarios imports the sandbox,
    which `scangate --help` and every other command must not pay for (benchmarks/startup.py).
    """

    def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show this help message and exit")

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        from scangate.sandbox import EMULATORS, scenarios_for

        lines = ["providers and their bundled scenarios:"]
        lines += [f"  {name}: {', '.join(scenarios_for(name))}" for name in sorted(EMULATORS)]
        lines.append("SCENARIO may also be the path of a scenario file of your own.")
        parser.epilog = "\n".join(lines)
        parser.print_help()
        parser.exit()


def _add_policy_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policy",
        default=os.environ.get("SCANGATE_POLICY"),
        help=_env_help("policy file (default: ./.scangate.yml)", "SCANGATE_POLICY"),
    )


def _add_report_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out-dir",
        default=os.environ.get("SCANGATE_OUT_DIR"),
        help=_env_help("reports directory, overriding reports.dir", "SCANGATE_OUT_DIR"),
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        default=None,
        help=_env_help(
            "write every report and exit 0 whatever the verdict (GitLab ingests security "
            "reports only from jobs that succeed; gate in a later job)",
            "SCANGATE_REPORT_ONLY",
        ),
    )
    parser.add_argument(
        "--comment",
        action="store_true",
        default=None,
        help="keep one pull-request / merge-request comment current with the verdict "
        "(as reports.comment: true; needs GITHUB_TOKEN or GITLAB_TOKEN)",
    )


def _add_subject_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--subject",
        default=os.environ.get("SCANGATE_SUBJECT") or None,
        metavar="NAME@sha256:HEX",
        help=_env_help(
            "the artifact the verdict statement (scangate.intoto.json) is about, e.g. an image "
            "digest (default: the CI commit, else the scanned target URL)",
            "SCANGATE_SUBJECT",
        ),
    )


def _add_sandbox_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sandbox",
        nargs="?",
        const="findings",
        default=os.environ.get("SCANGATE_SANDBOX") or None,
        metavar="SCENARIO",
        help=_env_help(
            "run against the bundled emulator of the policy's provider on 127.0.0.1 "
            "(no account, no quota); SCENARIO defaults to 'findings'",
            "SCANGATE_SANDBOX",
        ),
    )


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser (the only long function here, as house style allows)."""
    parser = argparse.ArgumentParser(
        prog="scangate",
        description="Gate a CI/CD pipeline on a commercial web-vulnerability (DAST) scan.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"scangate {__version__}")
    _add_debug_option(parser, top=True)
    # Commands without --report-only never report only; the others read None as "not given".
    parser.set_defaults(report_only=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser("run", help="start a scan, wait, gate and write reports")
    _add_policy_options(run)
    _add_report_options(run)
    _add_subject_option(run)
    _add_sandbox_option(run)

    start = commands.add_parser("start", help="start a scan and print its id (first half of run)")
    _add_policy_options(start)
    # No --report-only: `start` gates nothing, so there is no verdict to set aside.
    start.add_argument(
        "--out-dir",
        default=os.environ.get("SCANGATE_OUT_DIR"),
        help=_env_help(
            "reports directory, overriding reports.dir (where the scan id is recorded)",
            "SCANGATE_OUT_DIR",
        ),
    )

    wait = commands.add_parser("wait", help="wait for a started scan, gate it, write reports")
    _add_policy_options(wait)
    _add_report_options(wait)
    _add_subject_option(wait)
    wait.add_argument(
        "--scan-id",
        default=os.environ.get("SCANGATE_SCAN_ID"),
        help=_env_help(
            "the scan to wait for (default: the one `scangate start` recorded in the reports "
            "directory)",
            "SCANGATE_SCAN_ID",
        ),
    )

    cleanup = commands.add_parser(
        "cleanup",
        help="cancel the scan a killed run, start or wait left running (a CI post step)",
        description=(
            "Cancel the scan recorded in the reports directory's scangate-state.json when the "
            "command that started it was killed before it finished (a cancelled or lost CI "
            "job), following scan.on_timeout (keep: the scan is only reported kept). Sends no "
            "request when no scan is recorded or the command finished with it. Run it from "
            "the GitHub action's post step, GitLab's after_script or Jenkins' post { aborted }."
        ),
    )
    _add_policy_options(cleanup)
    cleanup.add_argument(
        "--out-dir",
        default=os.environ.get("SCANGATE_OUT_DIR"),
        help=_env_help(
            "reports directory, overriding reports.dir (where the scan is recorded)",
            "SCANGATE_OUT_DIR",
        ),
    )

    gate = commands.add_parser("gate", help="re-gate saved scangate.json results (merges several)")
    _add_policy_options(gate)
    _add_report_options(gate)
    _add_subject_option(gate)
    gate.add_argument(
        "--results",
        action="append",
        required=True,
        metavar="FILE",
        help="a scangate.json file; repeat to merge the scans of several",
    )

    baseline = commands.add_parser("baseline", help="write a baseline of the current findings")
    baseline.add_argument(
        "--results",
        action="append",
        required=True,
        metavar="FILE",
        help="a scangate.json file whose findings are accepted; repeat to merge several",
    )
    baseline.add_argument(
        "-o", "--output", required=True, metavar="FILE", help="the baseline file to write"
    )

    validate = commands.add_parser("validate", help="check the policy, print effective settings")
    _add_policy_options(validate)

    providers = commands.add_parser(
        "providers", help="list providers, options, credentials, capabilities"
    )

    sandbox = commands.add_parser(
        "sandbox",
        help="serve a provider emulator on 127.0.0.1",
        add_help=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sandbox.add_argument("-h", "--help", action=_SandboxHelp)
    sandbox.add_argument("--provider", required=True, help="the provider to emulate")
    sandbox.add_argument(
        "--scenario",
        default="findings",
        help="a bundled scenario (listed below) or a scenario file (default: findings)",
    )
    sandbox.add_argument(
        "--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)"
    )

    schema = commands.add_parser("schema", help="print the policy JSON Schema")

    verify = commands.add_parser(
        "verify",
        help="check a (signed) verdict statement before a deployment",
        description=(
            "Check scangate.intoto.json, a DSSE envelope or a Sigstore bundle holding it: its "
            "signature (--key), subject, verdict and age. Exit 0 only when every check holds."
        ),
    )
    from scangate import verify as verify_command

    verify_command.add_arguments(verify)
    every = (run, start, wait, cleanup, gate, baseline, validate, providers, sandbox, schema)
    for command in (*every, verify):
        _add_debug_option(command)
    return parser


def _report_only(args: argparse.Namespace) -> bool:
    if args.report_only is None:
        return env_flag("SCANGATE_REPORT_ONLY")
    return bool(args.report_only)


def _dispatch(args: argparse.Namespace, context: Context) -> int:
    if args.command == "verify":
        from scangate import verify

        return int(verify.run(args, context))
    if getattr(args, "subject", None):
        from scangate.attestation import parse_subject

        # Refused before any scan starts: a bad --subject spends no quota.
        context.subject = parse_subject(args.subject)
    from scangate import commands

    handlers = {
        "run": commands.run,
        "start": commands.start,
        "wait": commands.wait,
        "cleanup": commands.cleanup,
        "gate": commands.gate,
        "baseline": commands.baseline,
        "validate": commands.validate,
        "providers": commands.providers,
        "sandbox": commands.sandbox,
        "schema": commands.schema,
    }
    return int(handlers[args.command](args, context))


_KINDS: tuple[tuple[type[Error], str], ...] = (
    (CredentialsError, "credentials error"),
    (PolicyError, "policy error"),
    (ResultsError, "results error"),
    (OutputError, "output error"),
    (ProviderAuthError, "credentials rejected"),
    (ProviderError, "provider error"),
    (ScanIncompleteError, "scan did not complete"),
    (UsageError, "usage error"),
)
"""The annotation title's kind of each error class (the first one it is an instance of)."""
_GENERIC_FIX = {
    ExitStatus.USAGE_ERROR: "correct the command line, policy or environment named above",
    ExitStatus.PROVIDER_ERROR: (
        "check the provider's status and the credentials, then rerun; --debug logs every HTTP "
        "exchange (secrets redacted)"
    ),
    ExitStatus.SCAN_INCOMPLETE: "raise scan.timeout, or rerun once the provider is free",
}
"""The fix named for an error that carries no hint of its own."""


def _error_kind(exc: Error) -> str:
    from scangate.dsse import AttestationError  # only `verify` raises it: not at start-up

    kinds = ((AttestationError, "attestation error"), *_KINDS)
    return next((kind for cls, kind in kinds if isinstance(exc, cls)), "error")


def _error_failure(exc: Error, context: Context) -> Failure:
    """What the CI surfaces say of an `Error` that ended the run."""
    from scangate.ci import Failure

    fix = exc.hint or _GENERIC_FIX.get(exc.exit_status, "see the message above")
    scan_id = context.scan_id
    # A scan that exists can be waited for again (`wait` also fetches one that has ended).
    return Failure(int(exc.exit_status), _error_kind(exc), exc.message, fix, scan_id, bool(scan_id))


def _publish_failure(context: Context, failure: Failure) -> None:
    """Hand `failure` to the CI system (annotation, summary, outputs), never raising."""
    from scangate.ci import publish_failure

    try:
        publish_failure(
            failure,
            context.env,
            context.stdout,
            reports_dir=context.reports_dir,
            redact=context.redactor,
            warn=context.console.line,
            reported=context.published,
        )
    except Exception as exc:  # noqa: BLE001 - the CI files must not hide the run's own error
        context.console.line(f"warning: the CI outputs were not written: {type(exc).__name__}")


def _failed(context: Context, exc: Error) -> int:
    context.console.line(f"error: {exc.diagnostics()}")
    if context.debug:
        context.traceback()
    _publish_failure(context, _error_failure(exc, context))
    return int(exc.exit_status)


def _interrupted(context: Context) -> int:
    from scangate.ci import Failure

    context.console.line("interrupted")
    scan_id = context.scan_id
    fix = "rerun the job" if not scan_id else "rerun the job, or resume the scan"
    failure = Failure(
        ExitStatus.INTERRUPTED, "interrupted", "interrupted by SIGINT", fix, scan_id, bool(scan_id)
    )
    _publish_failure(context, failure)
    return ExitStatus.INTERRUPTED


def _crashed(context: Context, exc: Exception) -> int:
    from scangate.ci import Failure

    context.console.line(f"internal error: {type(exc).__name__}: {exc}")
    fix = "this is a bug in scangate; rerun with --debug and report it"
    context.console.line(fix)
    if context.debug:
        context.traceback()
    cause = f"internal error: {type(exc).__name__}: {exc}"
    failure = Failure(ExitStatus.PROVIDER_ERROR, "internal error", cause, fix, context.scan_id)
    _publish_failure(context, failure)
    return ExitStatus.PROVIDER_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    """Run scangate with `argv` (default: `sys.argv[1:]`) and return the exit status.

    Every way out under a CI system (an error, a timeout, a signal) leaves its CI surfaces
    written: the annotation and summary naming the cause and the fix, and the outputs.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    refused: Error | None = None
    try:
        debug = bool(args.debug) if args.debug is not None else env_flag("SCANGATE_DEBUG")
    except Error as exc:  # `SCANGATE_DEBUG=maybe` is refused as SCANGATE_REPORT_ONLY is
        debug, refused = False, exc
    if args.command is None:
        parser.print_help(sys.stderr)
        return ExitStatus.USAGE_ERROR
    from scangate.session import Context

    context = Context.create(debug=debug, process_start=PROCESS_START)
    if refused is not None:
        return _failed(context, refused)
    try:
        args.report_only = _report_only(args)
        status = _dispatch(args, context)
    except Error as exc:
        return _failed(context, exc)
    except KeyboardInterrupt:
        return _interrupted(context)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback by default
        return _crashed(context, exc)
    if context.failure is not None:
        _publish_failure(context, context.failure)
    return status
