"""End to end: the sticky pull-request comment of the real CLI (issue 20, `reports.comment`).

`scangate run --sandbox` (the bundled CyberOrigen emulator, scenario `findings`, which fails a
`fail_on: high` gate with exit 1) as a GitHub Actions step of a pull request, against a fake of
GitHub's REST API that this module serves on 127.0.0.1 (a threaded `http.server`, port 0):

- `GET /repos/{o}/{r}/issues/{n}/comments` pages like GitHub: `per_page` is honoured up to
  GitHub's maximum of 100 (default 30), `page` picks the page, and every page but the last has
  an absolute `Link: <...>; rel="next"`. scangate asks `per_page=100`, so the pagination test
  seeds 100 other comments to put ours on page 2: the fake does not page smaller than asked,
  which would test a server GitHub is not;
- `POST` on the same path creates a comment (201 with its id);
- `PATCH /repos/{o}/{r}/issues/comments/{id}` edits one;
- every request is recorded (method, path with query, headers, body), and `deny` makes it
  answer 403 to everything, as GitHub does for a read-only fork token.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from e2e.support import CliRun, assert_sane_stderr, cli_env, run_cli

pytestmark = pytest.mark.slow

TOKEN = "ghs-fake-e2e-canary-7c1d93b0aa"
"""A distinctive fake token: only its registration with the redactor can keep it out of logs."""
REPO = "acme/shop"
PR = 12
LIST_PATH = f"/repos/{REPO}/issues/{PR}/comments"
ITEM_PATH = re.compile(rf"/repos/{re.escape(REPO)}/issues/comments/(\d+)")
TARGET = "https://staging.example.com"
FAILED = "❌ scangate: failed"
EXIT_WITHOUT_COMMENT = 1
"""The exit of the `findings` scenario under `fail_on: high`, checked without the comment."""

POLICY = """\
version: 1
provider:
  name: cyberorigen
scan:
  target: {target}
  timeout: 60s
gate:
  fail_on: high
reports:
  dir: reports
  comment: {comment}
"""


Answer = tuple[int, dict[str, str], Any]
"""What the fake answers: the status, headers besides the content's, and the JSON payload."""


@dataclass(frozen=True)
class Request:
    """One request the fake received."""

    method: str
    path: str
    """With the query string."""
    headers: dict[str, str]
    body: str

    @property
    def route(self) -> str:
        return urlsplit(self.path).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.path).query)


@dataclass
class FakeGitHub:
    """One pull request's conversation comments, kept between runs, and the requests seen."""

    base_url: str = ""
    comments: list[dict[str, Any]] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    deny: bool = False
    next_id: int = 5000
    lock: threading.Lock = field(default_factory=threading.Lock)

    def seed(self, body: str) -> int:
        with self.lock:
            self.next_id += 1
            self.comments.append({"id": self.next_id, "body": body, "user": {"login": "dev"}})
            return self.next_id

    def seen(self, method: str) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.method == method]

    def handle(self, method: str, path: str, headers: dict[str, str], body: str) -> Answer:
        """(status, extra headers, JSON payload) for one request."""
        with self.lock:
            self.requests.append(Request(method, path, headers, body))
            if self.deny:
                return 403, {}, {"message": "Resource not accessible by integration"}
            route = urlsplit(path).path
            if route == LIST_PATH and method == "GET":
                return self._list(parse_qs(urlsplit(path).query))
            if route == LIST_PATH and method == "POST":
                self.next_id += 1
                made = {"id": self.next_id, "body": json.loads(body)["body"]}
                self.comments.append(made)
                return 201, {}, made
            item = ITEM_PATH.fullmatch(route)
            if item and method == "PATCH":
                found = [c for c in self.comments if c["id"] == int(item.group(1))]
                if not found:
                    return 404, {}, {"message": "Not Found"}
                found[0]["body"] = json.loads(body)["body"]
                return 200, {}, found[0]
            return 404, {}, {"message": "Not Found"}

    def _list(self, query: dict[str, list[str]]) -> Answer:
        per_page = min(int(query.get("per_page", ["30"])[0]), 100)
        page = int(query.get("page", ["1"])[0])
        chunk = self.comments[(page - 1) * per_page : page * per_page]
        headers: dict[str, str] = {}
        if page * per_page < len(self.comments):
            following = f"{self.base_url}{LIST_PATH}?per_page={per_page}&page={page + 1}"
            headers["Link"] = f'<{following}>; rel="next"'
        return 200, headers, chunk


def _handler(fake: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8") if length else ""
            headers = dict(self.headers.items())
            status, extra, payload = fake.handle(self.command, self.path, headers, body)
            data = json.dumps(payload).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _answer

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
            pass

    return Handler


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    """The fake GitHub API on 127.0.0.1, stopped and its thread joined after the test."""
    fake = FakeGitHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="fake-github", daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        assert not thread.is_alive()


def github_env(
    tmp_path: Path, fake: FakeGitHub, *, run_id: str = "1001", token: bool = True
) -> dict[str, str]:
    """A pull-request step of GitHub Actions whose API is `fake`; every file it names is in
    `tmp_path`."""
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"action": "synchronize", "pull_request": {"number": PR}}))
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_API_URL": fake.base_url,
        "GITHUB_SERVER_URL": "https://github.test",
        "GITHUB_RUN_ID": run_id,
        "GITHUB_STEP_SUMMARY": str(tmp_path / "step-summary.md"),
        "GITHUB_OUTPUT": str(tmp_path / "github-output.txt"),
    }
    if token:
        env["GITHUB_TOKEN"] = TOKEN
    return env


def write_policy(tmp_path: Path, name: str = ".scangate.yml", *, comment: bool = False) -> Path:
    path = tmp_path / name
    text = POLICY.format(target=TARGET, comment="true" if comment else "false")
    path.write_text(text, encoding="utf-8")
    return path


def expected_marker(policy: Path, cwd: Path) -> str:
    """The marker as documented: SHA-256 of the policy path relative to the working directory,
    a NUL and the target; its first 16 hex digits in `<!-- scangate:comment:... -->`."""
    source = policy.resolve().relative_to(cwd.resolve()).as_posix()
    digest = hashlib.sha256(f"{source}\0{TARGET}".encode()).hexdigest()[:16]
    return f"<!-- scangate:comment:{digest} -->"


def gate(tmp_path: Path, policy: Path, env: dict[str, str], *flags: str) -> CliRun:
    """`scangate run --policy policy --sandbox [flags]`, checked for leaks of the token."""
    args = ["run", "--policy", str(policy), "--sandbox", *flags]
    run = run_cli(args, cwd=tmp_path, env=cli_env({}, **env))
    assert_sane_stderr(run.stderr)
    assert_token_nowhere(run, tmp_path)
    return run


def assert_token_nowhere(run: CliRun, tmp_path: Path) -> None:
    """The token is in neither stream nor any file the run could write (reports, step summary,
    outputs, state): every file under `tmp_path`.

    The one exception is the one place design §9 allows a secret on stdout: a single
    `::add-mask::` line, which the runner consumes to mask the token in the log.
    """
    shown = [line for line in run.stdout.splitlines() if TOKEN in line]
    assert shown in ([], [f"::add-mask::{TOKEN}"])
    assert TOKEN not in run.stderr
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.parent.name == "reports" for p in files)
    for path in files:
        assert TOKEN not in path.read_text("utf-8", errors="replace"), path


def assert_token_only_in_authorization(fake: FakeGitHub) -> None:
    """Each request carries the token as `Authorization: Bearer`, and nowhere else."""
    for request in fake.requests:
        assert request.headers.get("Authorization") == f"Bearer {TOKEN}"
        assert request.headers.get("Accept") == "application/vnd.github+json"
        assert request.headers.get("X-GitHub-Api-Version") == "2022-11-28"
        others = {k: v for k, v in request.headers.items() if k != "Authorization"}
        assert TOKEN not in request.path + request.body + json.dumps(others)


def comment_lines(run: CliRun) -> list[str]:
    return [line for line in run.stderr.splitlines() if "reports.comment" in line]


def test_the_first_run_creates_the_comment_and_later_runs_update_it(
    tmp_path: Path, github: FakeGitHub
) -> None:
    policy = write_policy(tmp_path)
    plain = gate(tmp_path, policy, github_env(tmp_path, github))
    assert plain.exit == EXIT_WITHOUT_COMMENT, plain.stderr
    assert github.requests == [] and comment_lines(plain) == []

    first = gate(tmp_path, policy, github_env(tmp_path, github, run_id="1001"), "--comment")
    assert first.exit == plain.exit, first.stderr
    assert [r.method for r in github.requests] == ["GET", "POST"]
    listed, [posted] = github.requests[0], github.seen("POST")
    assert listed.route == LIST_PATH and listed.query["per_page"] == ["100"]
    assert posted.route == LIST_PATH
    body = json.loads(posted.body)["body"]
    assert body.startswith("<!-- scangate:comment:")
    assert body.splitlines()[0] == expected_marker(policy, tmp_path)
    assert FAILED in body
    assert f"https://github.test/{REPO}/actions/runs/1001" in body
    [made] = github.comments
    # Masked for the runner before anything else could print it (design §9).
    assert f"::add-mask::{TOKEN}" in first.stdout.splitlines()
    assert comment_lines(first) == [
        f"scangate: reports.comment: created the comment on pull request #{PR} "
        f"(GitHub id {made['id']})"
    ]

    # A new CI run (a new run id, so a new link in the body): the comment is edited in place.
    second = gate(tmp_path, policy, github_env(tmp_path, github, run_id="1002"), "--comment")
    assert second.exit == plain.exit, second.stderr
    assert [r.method for r in github.requests[2:]] == ["GET", "PATCH"]
    assert len(github.seen("POST")) == 1
    [patched] = github.seen("PATCH")
    assert patched.route == f"/repos/{REPO}/issues/comments/{made['id']}"
    [kept] = github.comments
    assert kept["id"] == made["id"]
    assert kept["body"].splitlines()[0] == expected_marker(policy, tmp_path)
    assert "/actions/runs/1002" in kept["body"] and FAILED in kept["body"]
    assert comment_lines(second) == [
        f"scangate: reports.comment: updated the comment on pull request #{PR} "
        f"(GitHub id {made['id']})"
    ]

    # The same run again: nothing to change, so nothing is sent but the read.
    again = gate(tmp_path, policy, github_env(tmp_path, github, run_id="1002"), "--comment")
    assert again.exit == plain.exit, again.stderr
    assert [r.method for r in github.requests[4:]] == ["GET"]
    assert comment_lines(again) == [
        f"scangate: reports.comment: the comment on pull request #{PR} is up to date"
    ]
    assert_token_only_in_authorization(github)


def test_ours_on_page_two_is_updated_and_another_policys_comment_is_left_alone(
    tmp_path: Path, github: FakeGitHub
) -> None:
    # `reports.comment: true` in the policy this time, no `--comment`.
    policy = write_policy(tmp_path, comment=True)
    other_marker = expected_marker(write_policy(tmp_path, "other.yml"), tmp_path)
    ours_marker = expected_marker(policy, tmp_path)
    assert other_marker != ours_marker
    other_body = f"{other_marker}\n### ✅ scangate: passed\n\nanother policy's verdict\n"
    other = github.seed(other_body)
    for n in range(99):
        github.seed(f"human comment {n}")
    ours = github.seed(f"{ours_marker}\n### ✅ scangate: passed\n\nstale\n")
    for n in range(3):
        github.seed(f"later comment {n}")

    run = gate(tmp_path, policy, github_env(tmp_path, github))
    assert run.exit == EXIT_WITHOUT_COMMENT, run.stderr
    assert [r.method for r in github.requests] == ["GET", "GET", "PATCH"]
    first_page, second_page, patched = github.requests
    assert first_page.query == {"per_page": ["100"]}
    assert second_page.route == LIST_PATH and second_page.query["page"] == ["2"]
    assert patched.route == f"/repos/{REPO}/issues/comments/{ours}"
    assert github.seen("POST") == []
    by_id = {c["id"]: c["body"] for c in github.comments}
    assert len(by_id) == 104
    assert by_id[other] == other_body
    assert by_id[ours].startswith(ours_marker) and FAILED in by_id[ours]
    assert comment_lines(run) == [
        f"scangate: reports.comment: updated the comment on pull request #{PR} (GitHub id {ours})"
    ]
    assert_token_only_in_authorization(github)


def test_a_refusal_is_one_warning_naming_the_permission_and_the_exit_is_unchanged(
    tmp_path: Path, github: FakeGitHub
) -> None:
    github.deny = True
    policy = write_policy(tmp_path)
    run = gate(tmp_path, policy, github_env(tmp_path, github), "--comment")
    assert run.exit == EXIT_WITHOUT_COMMENT, run.stderr
    [warning] = [line for line in run.stderr.splitlines() if "warning: reports.comment" in line]
    assert "pull-requests: write" in warning and "HTTP 403" in warning
    assert comment_lines(run) == [warning]
    # A refusal is not retried, and nothing is posted after a refused read.
    assert [r.method for r in github.requests] == ["GET"]
    assert github.comments == []
    assert_token_only_in_authorization(github)


def test_without_a_token_one_warning_and_no_request(tmp_path: Path, github: FakeGitHub) -> None:
    policy = write_policy(tmp_path)
    run = gate(tmp_path, policy, github_env(tmp_path, github, token=False), "--comment")
    assert run.exit == EXIT_WITHOUT_COMMENT, run.stderr
    [warning] = comment_lines(run)
    assert "warning: reports.comment: no GITHUB_TOKEN" in warning
    assert "pull-requests: write" in warning
    assert github.requests == []
