"""`scangate.expect`: the `${NAME}` expansion, the same-host rule, the quoted excerpt, and the
check's tries against a real emulator on 127.0.0.1 (its target page), on a fake clock."""

from __future__ import annotations

import pytest

from scangate.errors import ExitStatus, UsageError
from scangate.expect import (
    ExpectCheck,
    TargetMismatchError,
    excerpt,
    expand,
    resolve_url,
    sandbox_route,
    target_base,
    template_problem,
    url_problem,
)
from scangate.model.settings import ExpectSettings
from scangate.redact import Redactor
from scangate.sandbox import load_scenario, start_sandbox
from scangate.sandbox.scenario import parse_scenario

SHA = "3f2c9e1d0b7a4c5e8f6a1b2c3d4e5f6a7b8c9d0e"

# --- expansion -----------------------------------------------------------------------------


def test_expand_reads_only_the_named_variables_and_never_a_shell() -> None:
    env = {"GITHUB_SHA": SHA, "SCANGATE_IMAGE": "sha256:ab", "HOME": "/root"}
    assert expand("${GITHUB_SHA}", env) == SHA
    assert expand("img ${SCANGATE_IMAGE} of ${GITHUB_SHA}", env) == f"img sha256:ab of {SHA}"
    # `$NAME`, `$(cmd)` and backticks are text, not expansions.
    assert expand("$GITHUB_SHA $(id) `id`", env) == "$GITHUB_SHA $(id) `id`"


@pytest.mark.parametrize(
    ("env", "said"),
    [({}, "${CI_COMMIT_SHA} is not set"), ({"CI_COMMIT_SHA": "  "}, "${CI_COMMIT_SHA} is empty")],
)
def test_unset_or_empty_variable_is_a_usage_error_naming_it(env: dict[str, str], said: str) -> None:
    with pytest.raises(UsageError) as caught:
        expand("${CI_COMMIT_SHA}", env)
    assert said in str(caught.value)
    assert caught.value.exit_status == ExitStatus.USAGE_ERROR


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("${HOME}", "not a CI or SCANGATE_ variable"),
        ("${AWS_SECRET_ACCESS_KEY}", "not a CI or SCANGATE_ variable"),
        ("${GITHUB_TOKEN}", "named like a secret"),
        ("${CI_JOB_TOKEN}", "named like a secret"),
        ("${SCANGATE_API_KEY}", "named like a secret"),
        ("${GITHUB_SHA", "unclosed"),
        ("${GITHUB SHA}", "not a variable reference"),
        ("${}", "not a variable reference"),
        ("", "must not be empty"),
    ],
)
def test_template_problems(text: str, said: str) -> None:
    problem = template_problem(text)
    assert problem is not None and said in problem


@pytest.mark.parametrize(
    "text", ["${GITHUB_SHA}", "${GIT_COMMIT}", "${BUILD_SOURCEVERSION}", "v1 ${CIRCLE_SHA1}", "x"]
)
def test_allowed_templates(text: str) -> None:
    assert template_problem(text) is None


# --- the same-host rule ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "target", "resolved"),
    [
        ("/version", "https://staging.example.com", "https://staging.example.com/version"),
        ("/version", "https://staging.example.com/app/", "https://staging.example.com/version"),
        ("version", "https://staging.example.com/app/", "https://staging.example.com/app/version"),
        ("/version", "staging.example.com", "https://staging.example.com/version"),
        ("https://STAGING.example.com:8443/v", "https://staging.example.com", None),
        ("https://x.example/v", "vaddy-project-1", None),
    ],
)
def test_urls_on_the_target_are_accepted(url: str, target: str, resolved: str | None) -> None:
    assert url_problem(url, target) is None
    assert resolve_url(url, target) == (resolved or url)


@pytest.mark.parametrize(
    ("url", "target", "said"),
    [
        ("https://prod.example.com/version", "https://staging.example.com", "another host"),
        ("https://staging.example.com.evil.test/v", "staging.example.com", "another host"),
        ("ftp://staging.example.com/v", "https://staging.example.com", "not an http(s) URL"),
        ("https://u:p@staging.example.com/v", "https://staging.example.com", "credentials"),
        ("/version", "vaddy-project-1", "needs scan.target to be a URL or host"),
    ],
)
def test_urls_off_the_target_are_refused(url: str, target: str, said: str) -> None:
    problem = url_problem(url, target)
    assert problem is not None and said in problem


def test_target_base() -> None:
    assert target_base("localhost:8080") == "https://localhost:8080"
    assert target_base("5b1e7c2a-8d4f-4e6a-9c3b-1f2e3d4c5b6a") is None


# --- the excerpt -----------------------------------------------------------------------------


def test_excerpt_quotes_the_version_value_of_json() -> None:
    body = '{"status": "ok", "build": {"commit": "abc123", "time": "x"}}'
    assert excerpt(body) == '"abc123"'
    assert excerpt('{"Version": 42}') == '"42"'


def test_excerpt_takes_the_first_line_sanitized_and_capped() -> None:
    body = "\n\n  release \x1b[31mdef456\u202e  \nsecond line\n"
    assert excerpt(body) == '"release [31mdef456"'
    long = excerpt("<html>" + "x" * 500)
    assert len(long) <= 82 and long.endswith('…"')
    assert excerpt("") == "an empty page"


# --- the check against the emulator's target page ----------------------------------------------


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _check(root: str, wait: float, contains: str, fake: FakeTime, lines: list[str]) -> ExpectCheck:
    return ExpectCheck(
        settings=ExpectSettings(url="/_target/version", contains=contains, wait=wait),
        target=root,
        env={"GITHUB_SHA": SHA},
        log=lines.append,
        redactor=Redactor(),
        monotonic=fake.monotonic,
        sleep=fake.sleep,
    )


def test_mismatch_tries_within_the_wait_then_exits_4() -> None:
    scenario = parse_scenario({"target_version": "old123"}, name="t")
    with start_sandbox("cyberorigen", scenario) as server:
        fake, lines = FakeTime(), list[str]()
        with pytest.raises(TargetMismatchError) as caught:
            _check(server.root_url, 10.0, "${GITHUB_SHA}", fake, lines).run()
        tries = [entry.path for entry in server.log]
    assert caught.value.exit_status == ExitStatus.SCAN_INCOMPLETE
    assert f'the target serves "old123" (from /_target/version), not {SHA}' in str(caught.value)
    assert tries == ["/_target/version"] * 5  # at 0, 3, 6, 9 and 10 s
    assert fake.slept == [3.0, 3.0, 3.0, 1.0]
    assert lines[0].endswith("trying again in 3 s, 7s left")


def test_zero_wait_is_one_try_and_a_failing_page_names_its_status() -> None:
    with start_sandbox("cyberorigen", load_scenario("clean")) as server:
        fake, lines = FakeTime(), list[str]()
        with pytest.raises(TargetMismatchError) as caught:
            _check(server.root_url, 0.0, SHA, fake, lines).run()
        assert len(server.log) == 1
    assert "answered HTTP 404" in str(caught.value)
    assert "target is up" in caught.value.hint
    assert fake.slept == [] and lines == []


def test_unreachable_page_is_exit_4_naming_the_cause() -> None:
    with start_sandbox("cyberorigen", load_scenario("clean")) as server:
        root = server.root_url
    fake, lines = FakeTime(), list[str]()
    with pytest.raises(TargetMismatchError) as caught:
        _check(root, 0.0, SHA, fake, lines).run()
    assert "the expect URL /_target/version failed" in str(caught.value)


def test_a_match_returns_the_expanded_value() -> None:
    scenario = parse_scenario({"target_version": SHA}, name="t")
    with start_sandbox("cyberorigen", scenario) as server:
        fake, lines = FakeTime(), list[str]()
        assert _check(server.root_url, 60.0, "${GITHUB_SHA}", fake, lines).run() == SHA
    assert lines == [f"the target serves {SHA} (from /_target/version); starting the scan"]


def test_sandbox_route_only_for_an_emulator_running_here() -> None:
    with start_sandbox("cyberorigen", load_scenario("clean")) as server:
        routed = sandbox_route("https://staging.example.com/version?x=1", server.base_url)
        assert routed == server.root_url + "/_target/version?x=1"
        assert sandbox_route(server.root_url + "/v", server.base_url) is None
        assert sandbox_route("https://staging.example.com/v", "https://api.example.com") is None
        base = server.base_url
    assert sandbox_route("https://staging.example.com/version", base) is None
