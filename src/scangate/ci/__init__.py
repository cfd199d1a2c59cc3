"""CI-system integration: detect the runner, write its outputs, keep its log safe.

Under GitHub Actions (`GITHUB_ACTIONS=true`) a run writes step outputs, the step summary and
annotations; under GitLab CI (`GITLAB_CI=true`) a dotenv report with the same outputs and
collapsible log sections. Anywhere else the log stays plain.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

from scangate.ci import github, gitlab
from scangate.errors import OutputError
from scangate.formats import Report, formatter
from scangate.model import Severity

OUTPUT_NAMES = (
    "verdict",
    "scan-id",
    *Severity.names(),
    "ignored",
    "false-positives",
    "baselined",
    "new",
    "escalated",
    "sarif-file",
    "junit-file",
    "summary-file",
    "results-file",
    "reports-dir",
)
"""Every output, in order: `action.yml` declares these, the GitLab dotenv report carries them."""
VERDICTS = ("passed", "failed", "incomplete", "error", "interrupted")
"""Every value of the `verdict` output. `passed`, `failed` and `incomplete` are the gate's (a
report was made); `incomplete` also when `scan.timeout` ran out before any scan existed (exit
4); `error` when scangate stopped on an error (exit 2 or 3) with no verdict to give;
`interrupted` when SIGINT or SIGTERM cut the run short (exit 130 or 143), report or not."""
_TALLIES = {
    "ignored": "ignored",
    "false-positives": "false_positive",
    "baselined": "baselined",
    "new": "new",
    "escalated": "escalated",
}
"""Outputs summing one `SeverityCounts` field over every severity and scan."""
_BASELINE_TALLIES = frozenset({"baselined", "new", "escalated"})
"""Empty without a baseline: there is nothing to be new or escalated against."""
_FILE_OUTPUTS = {
    "sarif-file": "sarif",
    "junit-file": "junit",
    "summary-file": "markdown",
    "results-file": "json",
}


def shown_path(path: Path, cwd: Path | None = None) -> str:
    """`path` as later steps should use it: relative to the working directory when inside it.

    A Docker action runs in `/github/workspace`, which is the runner's checkout on the host
    (formats.md §4.3): only a relative path means the same file in the container and outside.
    """
    base = (cwd or Path.cwd()).resolve()
    try:
        return path.resolve().relative_to(base).as_posix()
    except ValueError:
        return path.as_posix()


def outputs(report: Report, written: Sequence[Path], cwd: Path | None = None) -> dict[str, str]:
    """The outputs of a run, by name (`OUTPUT_NAMES`); a report not written is an empty string.

    Per-severity numbers count the findings the gate counted (not ignored, baselined or marked
    false positive by the provider), summed over merged scans: the numbers the verdict rests on.
    `ignored` (by the policy's `ignore:`) and `false-positives` (marked by the provider) are
    told apart; `baselined`, `new` and `escalated` are empty unless a baseline was given.
    `scan-id` lists every scan's id, separated by spaces, after a merge.
    """
    # An interrupted run exits 130/143 whatever the gate found so far (design.md §3).
    values = {"verdict": "interrupted" if report.interrupted else report.verdict.value}
    ids = dict.fromkeys(evaluation.result.scan_id for evaluation in report.evaluations)
    values["scan-id"] = " ".join(ids)
    for severity in sorted(Severity, reverse=True):
        counted = sum(
            e.counts[severity].counted for e in report.evaluations if severity in e.counts
        )
        values[severity.label] = str(counted)
    has_baseline = any(e.has_baseline for e in report.evaluations)
    for output, field in _TALLIES.items():
        total = sum(getattr(c, field) for e in report.evaluations for c in e.counts.values())
        shown = has_baseline or output not in _BASELINE_TALLIES
        values[output] = str(total) if shown else ""
    by_name = {path.name: path for path in written}
    for output, format_name in _FILE_OUTPUTS.items():
        path = by_name.get(formatter(format_name).filename)
        values[output] = shown_path(path, cwd) if path is not None else ""
    values["reports-dir"] = shown_path(written[0].parent, cwd) if written else ""
    return values


def dotenv_path(written: Sequence[Path]) -> Path:
    """Where the GitLab dotenv report goes: the reports directory (the working directory when
    no report was written)."""
    directory = written[0].parent if written else Path()
    return directory / gitlab.DOTENV_NAME


def publish(
    report: Report, written: Sequence[Path], env: Mapping[str, str], stdout: TextIO
) -> None:
    """Hand the outcome to the CI system we run under (outputs, summary, annotations)."""
    if github.is_github(env):
        github.publish(report, outputs(report, written), env, stdout)
    elif gitlab.is_gitlab(env):
        gitlab.write_dotenv(dotenv_path(written), outputs(report, written), stdout)


def publish_start(scan_id: str, reports_dir: Path, env: Mapping[str, str], stdout: TextIO) -> None:
    """Hand the id of a scan `scangate start` started to the CI system: the `scan-id` output.

    On GitLab the dotenv report carries `SCANGATE_SCAN_ID`, the variable `scangate wait` reads,
    so a later job resumes the same scan with no extra wiring.
    """
    values = {"scan-id": scan_id}
    if github.is_github(env):
        github.write_outputs(env, values)
    elif gitlab.is_gitlab(env):
        gitlab.write_dotenv(reports_dir / gitlab.DOTENV_NAME, values, stdout)


@dataclass(frozen=True)
class Failure:
    """A run that ends on an error, a timeout or a signal: what its CI surfaces say of it."""

    exit_status: int
    kind: str
    """What went wrong, for the annotation's title: `credentials error`, `interrupted`..."""
    cause: str
    fix: str
    scan_id: str = ""
    """The scan this run started or attached to, if any."""
    resumable: bool = False
    """True when that scan may still run, so `scangate wait --scan-id` can pick it up."""

    @property
    def verdict(self) -> str:
        """The `verdict` output of a run that made no report (see `VERDICTS`)."""
        if self.exit_status in (130, 143):
            return "interrupted"
        return "incomplete" if self.exit_status == 4 else "error"

    @property
    def heading(self) -> str:
        """The step summary's and the log section's heading: `scangate: <heading>`."""
        if self.verdict == "error":
            return "error"
        return "interrupted" if self.verdict == "interrupted" else "scan did not complete"

    def redacted(self, redact: Callable[[str], str]) -> Failure:
        """This failure with every secret the run knows removed from its texts."""
        return replace(self, cause=redact(self.cause), fix=redact(self.fix))


def failure_outputs(failure: Failure) -> dict[str, str]:
    """Every output (`OUTPUT_NAMES`) of a run with no report: the verdict and scan id set, the
    others empty (there are no counts and no files to point at)."""
    values = dict.fromkeys(OUTPUT_NAMES, "")
    values["verdict"] = failure.verdict
    values["scan-id"] = failure.scan_id
    return values


def publish_failure(
    failure: Failure,
    env: Mapping[str, str],
    stdout: TextIO,
    *,
    reports_dir: Path | None,
    redact: Callable[[str], str],
    warn: Callable[[str], None],
    reported: bool = False,
) -> None:
    """Hand a failed run to the CI system: the error (cause and fix) and, with no report, the
    outputs.

    `reported` says a report was made and published (`publish`): its outputs and summary stand,
    and only the error is added, so a run never writes two sets of outputs. The dotenv report
    goes into `reports_dir`, the working directory when no policy loaded. A CI file that cannot
    be written is only warned about: the original error and its exit status stay.
    """
    shown = failure.redacted(redact)
    steps: list[Callable[[], object]] = []
    if github.is_github(env):
        args = (shown.cause, shown.fix, shown.scan_id, shown.resumable)
        annotation = github.failure_annotation(shown.kind, *args)
        summary = github.failure_summary(shown.heading, *args)
        steps.append(lambda: _print(stdout, annotation.command()))
        steps.append(lambda: github.append_summary(env, summary))
        if not reported:
            steps.append(lambda: github.write_outputs(env, failure_outputs(shown)))
    elif gitlab.is_gitlab(env):
        title = f"scangate: {shown.heading}"
        steps.append(lambda: gitlab.print_section(stdout, title, _failure_lines(shown)))
        if not reported:
            dotenv = (reports_dir or Path()) / gitlab.DOTENV_NAME
            steps.append(lambda: gitlab.write_dotenv(dotenv, failure_outputs(shown), stdout))
    for step in steps:  # each on its own: one file that cannot be written spoils no other
        try:
            step()
        except OutputError as exc:
            warn(f"warning: {exc.message}; the exit status stays {failure.exit_status}")


def _print(stdout: TextIO, line: str) -> None:
    stdout.write(line + "\n")
    stdout.flush()


def _failure_lines(failure: Failure) -> list[str]:
    """The log lines of a failure: the cause, the fix, and the scan with how to resume it."""
    lines = [*failure.cause.splitlines(), f"fix: {failure.fix}"]
    if failure.scan_id:
        lines.append(f"scan: {failure.scan_id}")
        if failure.resumable:
            lines.append(f"resume with `{github.resume_command(failure.scan_id)}`")
    return lines


@contextmanager
def section(title: str, env: Mapping[str, str], stdout: TextIO) -> Iterator[None]:
    """Wrap the lines written inside the block in a collapsible log section, where supported."""
    if github.is_github(env):
        with github.group(stdout, title):
            yield
    elif gitlab.is_gitlab(env):
        with gitlab.section(stdout, title):
            yield
    else:
        yield
