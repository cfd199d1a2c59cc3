"""Keep one comment current in a pull request's (or merge request's) thread, found by its marker.

GitHub issue comments and GitLab merge-request notes work alike: list the thread page by page,
find the comment whose body starts with our marker, edit it, or else post it once. What
differs (paths, headers, the edit method, what a refusal means) is one `Thread`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from scangate.errors import Error
from scangate.http import Connection, HttpClient, HttpContract, json_body
from scangate.redact import Redactor

MAX_PAGES = 50
"""Pages of 100 comments read before giving up (5,000 comments): past that, posting would risk a
second comment every run, so the run warns instead."""
TIMEOUT = (10.0, 20.0)
"""(connect, read) seconds per request: a comment is not worth holding the job for long."""
RETRIES = 2
"""Retries of a read (GET) on a connection error, a 429 or a 5xx; an edit or a post is never
sent twice (`HttpClient`), so a lost answer cannot make a duplicate comment."""


class CommentError(Error):
    """The comment could not be made or updated. Only ever a warning: the gate stands."""


@dataclass(frozen=True, kw_only=True)
class Thread:
    """One pull request's comment thread on one forge, and how to talk to it."""

    forge: str
    """`GitHub` or `GitLab`, for messages."""
    what: str
    """`pull request #12`, `merge request !7`: the thread in messages."""
    api_url: str
    list_path: str
    list_params: Mapping[str, str] = field(default_factory=dict)
    """Query parameters of every page of the list besides `per_page=100` (GitLab's order)."""
    create_path: str
    item_path: str
    """One comment, with `{id}` where its id goes."""
    edit_method: str
    """`PATCH` on GitHub, `PUT` on GitLab."""
    auth_header: str
    auth_prefix: str = ""
    """Before the token in `auth_header` (`Bearer `)."""
    token: str = field(repr=False)
    """The raw token: registered with the run's redactor before any request."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Headers every request carries besides the token (API version, media type)."""
    max_chars: int
    denied_hint: str
    """What to do about a 401 or 403: the permission or token scope to give."""
    not_found_hint: str
    """What to do about a 404 (on GitHub, also a token without access to a private repo)."""
    run_url: str = ""
    """The CI run this comment reports on, linked from the body."""


@dataclass(frozen=True)
class Skip:
    """No thread to comment on (not a pull-request run): `message` says why, as an info line."""

    message: str


@dataclass(frozen=True)
class Outcome:
    """What `sync` did: `created`, `updated` or `unchanged`, and the comment's id."""

    action: str
    comment_id: int


def client_for(thread: Thread, redactor: Redactor, sleep: Callable[[float], None]) -> HttpClient:
    """An `HttpClient` for `thread` through the project's HTTP layer (timeouts, GET-only retries,
    redaction, secret headers never forwarded on a redirect)."""
    redactor.add(thread.token)
    contract = HttpContract(
        provider=thread.forge,
        credential_hint=thread.denied_hint,
        secret_headers=(thread.auth_header,),
        authorize=lambda method, url: {thread.auth_header: thread.auth_prefix + thread.token},
    )
    connection = Connection(
        base_url=thread.api_url,
        redactor=redactor,
        timeout=TIMEOUT,
        retries=RETRIES,
        backoff=0.5,
        backoff_max=10.0,
        sleep=sleep,
    )
    return HttpClient(connection, contract)


def sync(thread: Thread, client: HttpClient, marker: str, body: str) -> Outcome:
    """Make the comment starting with `marker` read `body`: edit it, or post it once.

    Pages are read until ours turns up, and every page before a post, so an existing comment
    is never missed and duplicated. Raises
    `CommentError` on any refusal or failure (its message names what to do).
    """
    existing = _find(thread, client, marker)
    if existing is not None:
        comment_id, old_body = existing
        if old_body == body:
            return Outcome("unchanged", comment_id)
        path = thread.item_path.format(id=comment_id)
        _send(thread, client, thread.edit_method, path, {"body": body})
        return Outcome("updated", comment_id)
    created = _send(thread, client, "POST", thread.create_path, {"body": body})
    return Outcome("created", _comment_id(created) or 0)


def is_ours(comment: Any, marker: str) -> bool:
    """True for a comment scangate wrote under `marker`: its body starts with the marker line.

    A reply quoting our comment starts with `>`, so it is not taken for ours; GitLab's system
    notes ("added 1 commit") never are.
    """
    if not isinstance(comment, Mapping) or comment.get("system") is True:
        return False
    body = comment.get("body")
    return isinstance(body, str) and body.lstrip().startswith(marker)


def _find(thread: Thread, client: HttpClient, marker: str) -> tuple[int, str] | None:
    """The first (oldest) of our comments in the thread, with its body; None when there is none."""
    for page in _pages(thread, client):
        for comment in page:
            if is_ours(comment, marker):
                comment_id = _comment_id(comment)
                if comment_id is not None:
                    return comment_id, str(comment["body"])
    return None


def _pages(thread: Thread, client: HttpClient) -> Iterator[list[Any]]:
    """Every page of the thread's comments, following the `Link: rel="next"` header (GitHub and
    GitLab) or GitLab's `X-Next-Page`."""
    path: str | None = thread.list_path
    params: dict[str, Any] | None = {**thread.list_params, "per_page": 100}
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        if path is None:
            return
        response = _request(thread, client, "GET", path, params=params)
        page = json_body(response)
        if not isinstance(page, list):
            raise CommentError(
                f"{thread.forge} answered the comment list of {thread.what} with something "
                "that is not a list",
                hint="check the API URL; the gate is unchanged",
            )
        yield page
        seen.add(response.url)
        path, params = _next_page(response, thread)
        if path is not None and path in seen:
            return  # a server pointing back at a page read already: the list is done
    raise CommentError(
        f"{thread.what} has more than {MAX_PAGES * 100} comments; not commenting, so that no "
        "second scangate comment is posted",
        hint="the verdict is in the job log and the reports; the gate is unchanged",
    )


def _next_page(response: requests.Response, thread: Thread) -> tuple[str | None, Any]:
    """The next page: its URL from `Link` (absolute; `HttpClient.url` refuses one on another
    host, where the token must not go), else the list with GitLab's `X-Next-Page`; or none."""
    following = response.links.get("next", {}).get("url")
    if following:
        return following, None
    page = response.headers.get("X-Next-Page", "").strip()
    if page.isdigit():
        return thread.list_path, {**thread.list_params, "per_page": 100, "page": int(page)}
    return None, None


def _send(
    thread: Thread, client: HttpClient, method: str, path: str, payload: Mapping[str, str]
) -> Any:
    response = _request(thread, client, method, path, json_body=dict(payload))
    return json_body(response)


_REFUSALS = (401, 403, 404)


def _request(
    thread: Thread, client: HttpClient, method: str, path: str, **options: Any
) -> requests.Response:
    """One request; a refusal or a failure becomes a `CommentError` naming the fix."""
    try:
        response = client.request(
            method, path, headers=dict(thread.headers), accept_status=_REFUSALS, **options
        )
    except Error as exc:  # the HTTP layer's diagnosis: connection, timeout, 5xx after retries
        raise CommentError(
            f"cannot comment on {thread.what}: {exc.message}",
            hint="the gate is unchanged",
        ) from None
    status = response.status_code
    where = f"HTTP {status} on {method} {urlsplit(response.url).path}"
    if status in (401, 403):
        raise CommentError(f"{thread.forge} refused the comment ({where})", hint=thread.denied_hint)
    if status == 404:
        raise CommentError(
            f"{thread.forge} does not know {thread.what} ({where})", hint=thread.not_found_hint
        )
    return response


def _comment_id(comment: Any) -> int | None:
    value = comment.get("id") if isinstance(comment, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value
