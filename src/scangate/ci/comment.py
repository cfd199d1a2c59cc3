"""`reports.comment`: one pull-request / merge-request comment with the verdict, kept current.

Each run finds the comment it made before by a hidden marker (one per policy file and target,
so two policies gating the same pull request keep two comments) and edits it, or posts it once.
The comment is a courtesy: a missing token, a refusal or an outage is one warning line, and
never changes the gate's verdict or the exit status.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from scangate.ci.comment_body import comment_body
from scangate.ci.comment_github import github_thread
from scangate.ci.comment_gitlab import gitlab_thread
from scangate.ci.comment_thread import CommentError, Outcome, Skip, Thread, client_for, sync
from scangate.ci.github import is_github
from scangate.ci.gitlab import is_gitlab
from scangate.formats import Report
from scangate.model import Policy
from scangate.output import Console

PREFIX = "reports.comment"
"""Every line this feature prints starts with the policy key that turned it on."""


def publish_comment(
    report: Report,
    policy: Policy,
    env: Mapping[str, str],
    console: Console,
    *,
    sleep: Callable[[float], None] = time.sleep,
    cwd: Path | None = None,
) -> None:
    """Create or update this policy's comment on the run's pull request (GitHub) or merge
    request (GitLab), and say what was done in one line.

    Never raises and never prints the token: every failure is one `warning:` line naming what
    to do, and the gate stays as it is. Not a pull-request run: one info line, no request.
    `sleep` is the HTTP layer's (retry backoff); `cwd` is where the policy path is relative to.
    """
    try:
        thread = _thread(env)
        if isinstance(thread, Skip):
            console.line(f"{PREFIX}: {thread.message}")
            return
        outcome = _publish(report, policy, thread, console, sleep, cwd)
    except CommentError as exc:
        hint = f"; {exc.hint}" if exc.hint else ""
        console.line(f"warning: {PREFIX}: {exc.message}{hint}")
        return
    except Exception as exc:  # noqa: BLE001 - a comment must never change the gate's outcome
        console.line(
            f"warning: {PREFIX}: the comment failed on an unexpected {type(exc).__name__}; "
            "the gate is unchanged (rerun with --debug and report it)"
        )
        return
    console.line(f"{PREFIX}: {_said(outcome, thread)}")


def marker(policy: Policy, cwd: Path | None = None) -> str:
    """The hidden line that starts this policy's comment: `<!-- scangate:comment:<16 hex> -->`.

    The hex is the start of the SHA-256 of the policy file's path (relative to `cwd` when
    inside it, so the same checkout in another runner directory gives the same marker), a NUL,
    and the scan target: one comment per policy and target.
    """
    source = _policy_path(policy.source, cwd) if policy.source is not None else ""
    digest = hashlib.sha256(f"{source}\0{policy.scan.target}".encode()).hexdigest()[:16]
    return f"<!-- scangate:comment:{digest} -->"


def _thread(env: Mapping[str, str]) -> Thread | Skip:
    if is_github(env):
        return github_thread(env)
    if is_gitlab(env):
        return gitlab_thread(env)
    return Skip("not in GitHub Actions or GitLab CI: no pull request to comment on")


def _publish(
    report: Report,
    policy: Policy,
    thread: Thread,
    console: Console,
    sleep: Callable[[float], None],
    cwd: Path | None,
) -> Outcome:
    client = client_for(thread, console.redact, sleep)
    mark = marker(policy, cwd)
    subject = f"policy {_policy_path(policy.source, cwd)}" if policy.source is not None else ""
    body = comment_body(
        report,
        marker=mark,
        run_url=thread.run_url,
        subject=subject,
        reports_dir=policy.reports.dir.as_posix(),
        limit=thread.max_chars,
    )
    return sync(thread, client, mark, body)


def _policy_path(path: Path, cwd: Path | None) -> str:
    base = (cwd or Path.cwd()).resolve()
    try:
        return path.resolve().relative_to(base).as_posix()
    except ValueError:
        return path.as_posix()


def _said(outcome: Outcome, thread: Thread) -> str:
    if outcome.action == "unchanged":
        return f"the comment on {thread.what} is up to date"
    return f"{outcome.action} the comment on {thread.what} ({thread.forge} id {outcome.comment_id})"
