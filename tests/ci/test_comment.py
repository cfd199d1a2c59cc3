"""The sticky PR / MR comment against fakes of GitHub's and GitLab's REST endpoints (`responses`).

Each fake keeps its comments between runs, pages its list as the real API does (GitHub: `Link`;
GitLab: `X-Next-Page`), and records every request, so a test sees what two runs leave behind.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from conftest import make_finding, make_policy, make_report
from ports import closed_port

from scangate.ci import comment_thread
from scangate.ci.comment import marker, publish_comment
from scangate.ci.comment_github import github_thread
from scangate.ci.comment_gitlab import gitlab_thread
from scangate.formats.interface import Report
from scangate.model import Policy, ScanSettings
from scangate.output import Console
from scangate.redact import Redactor

TOKEN = "plain-secret-value-4711"
"""Not shaped like any known token, so only its registration with the redactor can hide it."""
GH_API = "https://api.github.test"
GL_API = "https://gitlab.test/api/v4"
GH_LIST = re.compile(re.escape(f"{GH_API}/repos/acme/shop/issues/12/comments") + r"(\?.*)?$")
GH_ITEM = re.compile(re.escape(f"{GH_API}/repos/acme/shop/issues/comments/") + r"(\d+)$")
GL_LIST = re.compile(re.escape(f"{GL_API}/projects/77/merge_requests/5/notes") + r"(\?.*)?$")
GL_ITEM = re.compile(re.escape(f"{GL_API}/projects/77/merge_requests/5/notes/") + r"(\d+)$")


@dataclass
class Forge:
    """An in-memory comment thread behind `responses`, paged like the real one."""

    rsps: responses.RequestsMock
    kind: str
    """`github` or `gitlab`."""
    comments: list[dict[str, Any]] = field(default_factory=list)
    next_id: int = 1000

    def __post_init__(self) -> None:
        listing, item = (GH_LIST, GH_ITEM) if self.kind == "github" else (GL_LIST, GL_ITEM)
        self.rsps.add_callback(responses.GET, listing, callback=self._list)
        self.rsps.add_callback(responses.POST, listing, callback=self._create)
        edit = responses.PATCH if self.kind == "github" else responses.PUT
        self.rsps.add_callback(edit, item, callback=self._edit)

    def seed(self, *bodies: str, **extra: Any) -> list[int]:
        ids = []
        for text in bodies:
            self.next_id += 1
            self.comments.append({"id": self.next_id, "body": text, **extra})
            ids.append(self.next_id)
        return ids

    def calls(self, method: str) -> list[Any]:
        return [c for c in self.rsps.calls if c.request.method == method]

    def ours(self, mark: str) -> list[dict[str, Any]]:
        return [c for c in self.comments if c["body"].startswith(mark)]

    def _list(self, request: Any) -> tuple[int, dict[str, str], str]:
        query = parse_qs(urlsplit(request.url).query)
        per_page = int(query.get("per_page", ["20"])[0])
        page = int(query.get("page", ["1"])[0])
        chunk = self.comments[(page - 1) * per_page : page * per_page]
        headers: dict[str, str] = {}
        if page * per_page < len(self.comments):
            if self.kind == "github":
                base = request.url.split("?")[0]
                headers["Link"] = f'<{base}?per_page={per_page}&page={page + 1}>; rel="next"'
            else:
                headers["X-Next-Page"] = str(page + 1)
        elif self.kind == "gitlab":
            headers["X-Next-Page"] = ""
        return 200, headers, json.dumps(chunk)

    def _create(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.seed(json.loads(request.body)["body"])
        return 201, {}, json.dumps(self.comments[-1])

    def _edit(self, request: Any) -> tuple[int, dict[str, str], str]:
        comment_id = int(request.url.rsplit("/", 1)[1])
        [found] = [c for c in self.comments if c["id"] == comment_id]
        found["body"] = json.loads(request.body)["body"]
        return 200, {}, json.dumps(found)


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    """No request left unanswered goes out, and none carries the token outside its header."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps
    for call in rsps.calls:
        request = call.request
        assert TOKEN not in (request.url or "")
        payload = request.body or b""
        assert TOKEN.encode() not in (payload if isinstance(payload, bytes) else payload.encode())


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    return replace(make_policy(), source=tmp_path / "scangate.yml")


@pytest.fixture
def github_env(tmp_path: Path) -> dict[str, str]:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 12}}), encoding="utf-8")
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_REPOSITORY": "acme/shop",
        "GITHUB_TOKEN": TOKEN,
        "GITHUB_API_URL": GH_API,
        "GITHUB_SERVER_URL": "https://github.test",
        "GITHUB_RUN_ID": "4242",
    }


@pytest.fixture
def gitlab_env() -> dict[str, str]:
    return {
        "GITLAB_CI": "true",
        "CI_API_V4_URL": GL_API,
        "CI_PROJECT_ID": "77",
        "CI_MERGE_REQUEST_IID": "5",
        "GITLAB_TOKEN": TOKEN,
        "CI_JOB_URL": "https://gitlab.test/acme/shop/-/jobs/99",
    }


@dataclass
class Run:
    """One `publish_comment` call's console output and the sleeps its retries asked for."""

    lines: list[str]
    sleeps: list[float]


def run(
    report: Report,
    policy: Policy,
    env: dict[str, str],
    tmp_path: Path,
    redactor: Redactor | None = None,
) -> Run:
    stream = io.StringIO()
    sleeps: list[float] = []
    publish_comment(
        report,
        policy,
        env,
        Console(redactor or Redactor(), stream),
        sleep=sleeps.append,
        cwd=tmp_path,
    )
    return Run(stream.getvalue().splitlines(), sleeps)


FAILING = make_report([make_finding(4), make_finding(3)])
PASSING = make_report([make_finding(1)])


# --- GitHub -----------------------------------------------------------------------------------


def test_the_first_run_creates_the_comment_and_the_next_updates_it(
    mock: responses.RequestsMock, policy: Policy, github_env: dict[str, str], tmp_path: Path
) -> None:
    forge = Forge(mock, "github")
    first = run(FAILING, policy, github_env, tmp_path)
    mark = marker(policy, tmp_path)
    [made] = forge.ours(mark)
    assert "❌ scangate: failed" in made["body"]
    assert "https://github.test/acme/shop/actions/runs/4242" in made["body"]
    assert first.lines == [
        f"scangate: reports.comment: created the comment on pull request #12 "
        f"(GitHub id {made['id']})"
    ]
    second = run(PASSING, policy, github_env, tmp_path)
    [kept] = forge.ours(mark)
    assert kept["id"] == made["id"] and "✅ scangate: passed" in kept["body"]
    assert len(forge.calls("POST")) == 1 and len(forge.calls("PATCH")) == 1
    assert second.lines[0].startswith("scangate: reports.comment: updated the comment")
    for call in mock.calls:
        headers = call.request.headers
        assert headers["Authorization"] == f"Bearer {TOKEN}"
        assert headers["Accept"] == "application/vnd.github+json"
        assert headers["X-GitHub-Api-Version"] == "2022-11-28"


def test_an_unchanged_body_is_not_sent_again(
    mock: responses.RequestsMock, policy: Policy, github_env: dict[str, str], tmp_path: Path
) -> None:
    forge = Forge(mock, "github")
    run(FAILING, policy, github_env, tmp_path)
    again = run(FAILING, policy, github_env, tmp_path)
    assert again.lines == [
        "scangate: reports.comment: the comment on pull request #12 is up to date"
    ]
    assert len(forge.calls("PATCH")) == 0 and len(forge.calls("POST")) == 1


def test_another_policys_comment_and_a_quote_of_ours_are_left_alone(
    mock: responses.RequestsMock, policy: Policy, github_env: dict[str, str], tmp_path: Path
) -> None:
    forge = Forge(mock, "github")
    other = replace(policy, source=tmp_path / "api.yml")
    other_mark, mark = marker(other, tmp_path), marker(policy, tmp_path)
    assert other_mark != mark
    theirs = f"{other_mark}\n### other job"
    quote = f"> {mark}\n> ### ❌ scangate: failed\n\nwhy does this fail?"
    forge.seed(theirs, quote)
    run(FAILING, policy, github_env, tmp_path)
    assert [c["body"] for c in forge.comments[:2]] == [theirs, quote]
    assert len(forge.ours(mark)) == 1 and len(forge.calls("PATCH")) == 0


def test_the_target_is_part_of_the_marker(policy: Policy, tmp_path: Path) -> None:
    elsewhere = replace(policy, scan=ScanSettings(target="https://staging.example.com"))
    assert marker(policy, tmp_path) != marker(elsewhere, tmp_path)
    relative = replace(policy, source=Path("scangate.yml"))
    assert marker(relative, Path.cwd()) == marker(policy, tmp_path)
    assert re.fullmatch(r"<!-- scangate:comment:[0-9a-f]{16} -->", marker(policy))


def test_our_comment_on_page_two_of_three_is_found_and_updated(
    mock: responses.RequestsMock, policy: Policy, github_env: dict[str, str], tmp_path: Path
) -> None:
    forge = Forge(mock, "github")
    mark = marker(policy, tmp_path)
    forge.seed(*[f"comment {i}" for i in range(150)])
    [ours] = forge.seed(f"{mark}\nold verdict")
    forge.seed(*[f"comment {i}" for i in range(100)])
    run(FAILING, policy, github_env, tmp_path)
    pages = [parse_qs(urlsplit(c.request.url).query).get("page", ["1"]) for c in forge.calls("GET")]
    assert pages == [["1"], ["2"]]  # found on page 2: page 3 is not needed
    assert [c["id"] for c in forge.ours(mark)] == [ours]
    assert "old verdict" not in forge.ours(mark)[0]["body"]
    assert len(forge.calls("POST")) == 0


def test_every_page_is_read_before_a_comment_is_created(
    mock: responses.RequestsMock, policy: Policy, github_env: dict[str, str], tmp_path: Path
) -> None:
    forge = Forge(mock, "github")
    forge.seed(*[f"comment {i}" for i in range(250)])
    run(FAILING, policy, github_env, tmp_path)
    assert len(forge.calls("GET")) == 3 and len(forge.calls("POST")) == 1


def test_a_next_page_on_another_host_is_not_followed(
    mock: responses.RequestsMock, policy: Policy, github_env: dict[str, str], tmp_path: Path
) -> None:
    mock.get(GH_LIST, json=[], headers={"Link": '<https://evil.test/steal?page=2>; rel="next"'})
    result = run(FAILING, policy, github_env, tmp_path)
    assert len(mock.calls) == 1
    [line] = result.lines
    assert line.startswith(
        "scangate: warning: reports.comment: cannot comment on pull request #12: "
        "GitHub pointed to another host (evil.test)"
    )


@pytest.mark.parametrize("status", [403, 404])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_refusal_is_one_warning_naming_the_permission(
    mock: responses.RequestsMock,
    policy: Policy,
    github_env: dict[str, str],
    tmp_path: Path,
    status: int,
    method: str,
) -> None:
    said = {"message": f"Resource not accessible by integration ({TOKEN})"}
    if method == "GET":
        mock.get(GH_LIST, status=status, json=said)
    else:
        mock.get(GH_LIST, json=[])
        mock.post(GH_LIST, status=status, json=said)
    result = run(FAILING, policy, github_env, tmp_path)
    [line] = result.lines
    assert line.startswith("scangate: warning: reports.comment: GitHub ")
    assert f"HTTP {status} on {method} /repos/acme/shop/issues/12/comments" in line
    assert "`permissions: pull-requests: write`" in line and "the gate is unchanged" in line
    assert TOKEN not in line
    assert len(mock.calls) == (1 if method == "GET" else 2)


def test_without_a_token_it_warns_and_sends_nothing(
    mock: responses.RequestsMock, policy: Policy, github_env: dict[str, str], tmp_path: Path
) -> None:
    del github_env["GITHUB_TOKEN"]
    result = run(FAILING, policy, github_env, tmp_path)
    assert result.lines == [
        "scangate: warning: reports.comment: no GITHUB_TOKEN; give the job "
        "`permissions: pull-requests: write` and pass `GITHUB_TOKEN`"
    ]
    assert len(mock.calls) == 0


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("push", {"ref": "refs/heads/main"}),
        ("issue_comment", {"issue": {"number": 3}}),
        ("pull_request", {"pull_request": {"number": "12"}}),
    ],
)
def test_a_run_that_is_not_on_a_pull_request_sends_nothing(
    mock: responses.RequestsMock,
    policy: Policy,
    github_env: dict[str, str],
    tmp_path: Path,
    event: str,
    payload: dict[str, Any],
) -> None:
    Path(github_env["GITHUB_EVENT_PATH"]).write_text(json.dumps(payload), encoding="utf-8")
    github_env["GITHUB_EVENT_NAME"] = event
    [line] = run(FAILING, policy, github_env, tmp_path).lines
    assert line.startswith("scangate: reports.comment: no pull request to comment on")
    assert len(mock.calls) == 0


def test_a_comment_on_a_pull_request_names_it_by_its_issue(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"issue": {"number": 8, "pull_request": {"url": "x"}}}))
    env = {
        "GITHUB_EVENT_NAME": "issue_comment",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_REPOSITORY": "acme/shop",
        "GITHUB_TOKEN": TOKEN,
    }
    thread = github_thread(env)
    assert not isinstance(thread, comment_thread.Skip)
    assert thread.list_path == "repos/acme/shop/issues/8/comments"
    assert thread.api_url == "https://api.github.com"
    assert TOKEN not in repr(thread)


def test_an_unreadable_event_file_is_one_warning(
    mock: responses.RequestsMock, policy: Policy, github_env: dict[str, str], tmp_path: Path
) -> None:
    Path(github_env["GITHUB_EVENT_PATH"]).write_text("{not json", encoding="utf-8")
    [line] = run(FAILING, policy, github_env, tmp_path).lines
    assert "cannot read the event file" in line and "not JSON" in line
    assert len(mock.calls) == 0


def test_a_server_error_is_retried_for_reads_only_and_never_shows_the_token(
    mock: responses.RequestsMock,
    policy: Policy,
    github_env: dict[str, str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    echo = {"message": f"upstream broke while reading token {TOKEN}"}
    mock.get(GH_LIST, status=502, json=echo)
    with caplog.at_level(logging.DEBUG, logger="scangate"):
        result = run(FAILING, policy, github_env, tmp_path)
    assert len(mock.calls) == comment_thread.RETRIES + 1
    [line] = result.lines
    assert line.startswith(
        "scangate: warning: reports.comment: cannot comment on pull request #12: GitHub"
    )
    assert TOKEN not in "\n".join(result.lines) + caplog.text


def test_a_failed_create_is_not_sent_twice(
    mock: responses.RequestsMock, policy: Policy, github_env: dict[str, str], tmp_path: Path
) -> None:
    mock.get(GH_LIST, json=[])
    mock.post(GH_LIST, status=502, json={"message": f"echo {TOKEN}"})
    [line] = run(FAILING, policy, github_env, tmp_path).lines
    assert len([c for c in mock.calls if c.request.method == "POST"]) == 1
    assert "HTTP 502" in line and TOKEN not in line


def test_a_refused_connection_is_one_warning(
    policy: Policy, github_env: dict[str, str], tmp_path: Path
) -> None:
    with closed_port() as port:
        github_env["GITHUB_API_URL"] = f"http://127.0.0.1:{port}"
        [line] = run(FAILING, policy, github_env, tmp_path).lines
    assert line.startswith(
        "scangate: warning: reports.comment: cannot comment on pull request #12: GitHub"
    )
    assert "refused" in line and TOKEN not in line


def test_the_token_is_registered_with_the_runs_redactor(
    mock: responses.RequestsMock, policy: Policy, github_env: dict[str, str], tmp_path: Path
) -> None:
    Forge(mock, "github")
    redactor = Redactor()
    run(FAILING, policy, github_env, tmp_path, redactor)
    assert TOKEN not in redactor(f"later text with {TOKEN}")


def test_an_unexpected_error_is_a_warning_not_a_crash(
    mock: responses.RequestsMock, policy: Policy, github_env: dict[str, str], tmp_path: Path
) -> None:
    def broken(request: requests.PreparedRequest) -> Any:
        raise RuntimeError(f"boom {TOKEN}")

    mock.add_callback(responses.GET, GH_LIST, callback=broken)
    [line] = run(FAILING, policy, github_env, tmp_path).lines
    assert line.startswith("scangate: warning: reports.comment:") and TOKEN not in line


# --- GitLab -----------------------------------------------------------------------------------


def test_gitlab_creates_then_updates_one_note(
    mock: responses.RequestsMock, policy: Policy, gitlab_env: dict[str, str], tmp_path: Path
) -> None:
    forge = Forge(mock, "gitlab")
    mark = marker(policy, tmp_path)
    forge.seed(f"{mark} mentioned in a system note", system=True)
    first = run(FAILING, policy, gitlab_env, tmp_path)
    second = run(PASSING, policy, gitlab_env, tmp_path)
    made = [c for c in forge.ours(mark) if not c.get("system")]
    assert len(made) == 1 and "✅ scangate: passed" in made[0]["body"]
    assert "https://gitlab.test/acme/shop/-/jobs/99" in made[0]["body"]
    assert first.lines[0].startswith(
        "scangate: reports.comment: created the comment on merge request !5"
    )
    assert second.lines[0].startswith("scangate: reports.comment: updated the comment")
    assert len(forge.calls("POST")) == 1 and len(forge.calls("PUT")) == 1
    for call in mock.calls:
        assert call.request.headers["PRIVATE-TOKEN"] == TOKEN
        assert "JOB-TOKEN" not in call.request.headers
    query = parse_qs(urlsplit(forge.calls("GET")[0].request.url).query)
    assert query == {"order_by": ["created_at"], "sort": ["asc"], "per_page": ["100"]}


def test_gitlab_follows_x_next_page_to_our_note(
    mock: responses.RequestsMock, policy: Policy, gitlab_env: dict[str, str], tmp_path: Path
) -> None:
    forge = Forge(mock, "gitlab")
    mark = marker(policy, tmp_path)
    forge.seed(*[f"note {i}" for i in range(120)])
    [ours] = forge.seed(f"{mark}\nold")
    forge.seed(*[f"note {i}" for i in range(100)])
    run(FAILING, policy, gitlab_env, tmp_path)
    assert len(forge.calls("GET")) == 2 and len(forge.calls("POST")) == 0
    assert [c["id"] for c in forge.ours(mark)] == [ours]


@pytest.mark.parametrize("status", [401, 403])
def test_a_job_token_refused_names_gitlab_token_with_api_scope(
    mock: responses.RequestsMock,
    policy: Policy,
    gitlab_env: dict[str, str],
    tmp_path: Path,
    status: int,
) -> None:
    del gitlab_env["GITLAB_TOKEN"]
    gitlab_env["CI_JOB_TOKEN"] = TOKEN
    mock.get(GL_LIST, status=status, json={"message": "403 Forbidden"})
    [line] = run(FAILING, policy, gitlab_env, tmp_path).lines
    assert mock.calls[0].request.headers["JOB-TOKEN"] == TOKEN
    assert "CI_JOB_TOKEN may not write merge request notes" in line
    assert "GITLAB_TOKEN" in line and "`api` scope" in line and "Reporter" in line
    assert TOKEN not in line


def test_gitlab_without_any_token_warns_and_sends_nothing(
    mock: responses.RequestsMock, policy: Policy, gitlab_env: dict[str, str], tmp_path: Path
) -> None:
    del gitlab_env["GITLAB_TOKEN"]
    [line] = run(FAILING, policy, gitlab_env, tmp_path).lines
    assert line.startswith("scangate: warning: reports.comment: no GITLAB_TOKEN")
    assert "`api` scope" in line and len(mock.calls) == 0


def test_a_branch_pipeline_has_no_merge_request_to_comment_on(
    mock: responses.RequestsMock, policy: Policy, gitlab_env: dict[str, str], tmp_path: Path
) -> None:
    del gitlab_env["CI_MERGE_REQUEST_IID"]
    [line] = run(FAILING, policy, gitlab_env, tmp_path).lines
    assert line == (
        "scangate: reports.comment: no merge request to comment on (not a merge request pipeline)"
    )
    assert len(mock.calls) == 0
    assert isinstance(gitlab_thread(gitlab_env), comment_thread.Skip)


def test_outside_ci_there_is_nothing_to_comment_on(
    mock: responses.RequestsMock, policy: Policy, tmp_path: Path
) -> None:
    [line] = run(FAILING, policy, {}, tmp_path).lines
    assert "no pull request to comment on" in line and len(mock.calls) == 0
