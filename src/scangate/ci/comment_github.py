"""The GitHub side of the sticky comment: which pull request, which token, which endpoints.

REST endpoints (API version 2022-11-28, https://docs.github.com/en/rest/issues/comments): a pull
request's conversation comments are its issue's comments, so `GET /repos/{owner}/{repo}/issues/
{n}/comments` lists them ("List issue comments", paginated with the `Link` header,
https://docs.github.com/en/rest/using-the-rest-api/using-pagination-in-the-rest-api), `POST`
on the same path creates one, and `PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}`
edits one ("Update an issue comment").
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scangate.ci.comment_body import GITHUB_MAX_CHARS
from scangate.ci.comment_thread import CommentError, Skip, Thread

DEFAULT_API_URL = "https://api.github.com"
DEFAULT_SERVER_URL = "https://github.com"
PR_EVENTS = ("pull_request", "pull_request_target")
"""Events whose payload carries `pull_request.number`."""
NO_TOKEN_HINT = "give the job `permissions: pull-requests: write` and pass `GITHUB_TOKEN`"
DENIED_HINT = (
    "give the job `permissions: pull-requests: write` (a pull request from a fork gets a "
    "read-only GITHUB_TOKEN); the gate is unchanged"
)
NOT_FOUND_HINT = (
    "check that GITHUB_TOKEN can see the repository (`permissions: pull-requests: write`); "
    "the gate is unchanged"
)
_REPOSITORY = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
"""`owner/name` as GitHub allows them: nothing that could change the API path."""


def github_thread(env: Mapping[str, str]) -> Thread | Skip:
    """The pull request this run belongs to, or `Skip` when there is none.

    Raises `CommentError` when it is a pull request but the token or the event is missing.
    """
    event = env.get("GITHUB_EVENT_NAME", "")
    if event not in (*PR_EVENTS, "issue_comment"):
        return Skip(f"no pull request to comment on (event {event or 'unknown'})")
    number = pull_request_number(event, _payload(env))
    if number is None:
        return Skip("no pull request to comment on (the comment is on an issue)")
    repository = env.get("GITHUB_REPOSITORY", "")
    if not _REPOSITORY.fullmatch(repository) or ".." in repository:
        raise CommentError(
            f"GITHUB_REPOSITORY is {repository!r}, not owner/name",
            hint="run inside GitHub Actions, which sets it; the gate is unchanged",
        )
    token = env.get("GITHUB_TOKEN", "").strip()
    if not token:
        raise CommentError("no GITHUB_TOKEN", hint=NO_TOKEN_HINT)
    base = f"repos/{repository}/issues"
    return Thread(
        forge="GitHub",
        what=f"pull request #{number}",
        api_url=env.get("GITHUB_API_URL") or DEFAULT_API_URL,
        list_path=f"{base}/{number}/comments",
        create_path=f"{base}/{number}/comments",
        item_path=f"{base}/comments/{{id}}",
        edit_method="PATCH",
        auth_header="Authorization",
        auth_prefix="Bearer ",
        token=token,
        headers={"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"},
        max_chars=GITHUB_MAX_CHARS,
        denied_hint=DENIED_HINT,
        not_found_hint=NOT_FOUND_HINT,
        run_url=run_url(env, repository),
    )


def pull_request_number(event: str, payload: Any) -> int | None:
    """The pull request's number in an event payload, or None when the event is not about one.

    `pull_request` and `pull_request_target` carry `pull_request.number`; an `issue_comment`
    event is about a pull request only when its `issue` has a `pull_request` key.
    """
    if not isinstance(payload, Mapping):
        return None
    if event in PR_EVENTS:
        holder = payload.get("pull_request")
    elif event == "issue_comment":
        holder = payload.get("issue")
        if not isinstance(holder, Mapping) or not holder.get("pull_request"):
            return None
    else:
        return None
    number = holder.get("number") if isinstance(holder, Mapping) else None
    if isinstance(number, bool) or not isinstance(number, int) or number <= 0:
        return None
    return number


def run_url(env: Mapping[str, str], repository: str) -> str:
    """`GITHUB_SERVER_URL/owner/name/actions/runs/GITHUB_RUN_ID`, or empty without a run id."""
    run_id = env.get("GITHUB_RUN_ID", "")
    if not run_id.isdigit():
        return ""
    server = (env.get("GITHUB_SERVER_URL") or DEFAULT_SERVER_URL).rstrip("/")
    return f"{server}/{repository}/actions/runs/{run_id}"


def _payload(env: Mapping[str, str]) -> Any:
    """The event payload the runner wrote to `GITHUB_EVENT_PATH`."""
    where = env.get("GITHUB_EVENT_PATH", "")
    if not where:
        raise CommentError(
            "GITHUB_EVENT_PATH is not set, so the pull request is unknown",
            hint="run inside GitHub Actions, which sets it; the gate is unchanged",
        )
    try:
        return json.loads(Path(where).read_text(encoding="utf-8"))
    except OSError as exc:
        problem = exc.strerror or type(exc).__name__
    except (ValueError, RecursionError):
        problem = "not JSON"
    raise CommentError(
        f"cannot read the event file {where}: {problem}",
        hint="the runner writes it; rerun the job; the gate is unchanged",
    )
