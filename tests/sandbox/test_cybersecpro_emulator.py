"""The CyberSec Pro emulator over real HTTP on a fake clock, against `providers/cybersecpro.md`.

The last section drives the real adapter and runner against it on the same fake clock: a
ten-minute scan on the trial plan in seconds, and tokens that expire mid-scan.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from scangate.errors import ProviderError
from scangate.http import Connection
from scangate.model import ScanStatus
from scangate.policy import Policy, ProviderSettings, ScanSettings
from scangate.polling import PollPolicy, PollSchedule
from scangate.providers.cybersecpro import CyberSecProProvider
from scangate.redact import Redactor
from scangate.runner import Runner
from scangate.sandbox import (
    HOSTILE_TEXT,
    EmulatorServer,
    FakeClock,
    ScenarioError,
    load_scenario,
    sandbox_env,
    scenarios_for,
    start_sandbox,
)
from scangate.sandbox.cybersecpro.auth import SANDBOX_API_KEY, SANDBOX_EMAIL, SANDBOX_PASSWORD
from scangate.sandbox.cybersecpro.emulator import CyberSecProEmulator
from scangate.sandbox.scenario import parse_scenario

SHAPES = ("documented", "implementation")
NAIVE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")
LOGIN = {"email": SANDBOX_EMAIL, "password": SANDBOX_PASSWORD}


class Api:
    """A thin client: the sandbox base URL plus credentials on every call."""

    def __init__(self, server: EmulatorServer, headers: dict[str, str] | None = None) -> None:
        self.server = server
        self.session = requests.Session()
        self.session.headers.update(headers or {"X-API-Key": SANDBOX_API_KEY})

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, self.server.base_url + path, timeout=5, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("GET", path, **kwargs)

    def create(self, target: str = "staging.example.com", **fields: Any) -> requests.Response:
        body = {"target": target, "tool": "nuclei", "parameters": {}, **fields}
        return self.call("POST", "/scans/create", json=body)

    def scan_id(self, target: str = "staging.example.com") -> str:
        response = self.create(target)
        assert response.status_code == 201, response.text
        body = response.json()
        return str(body.get("scan_id") or body["id"])


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def launch(clock: FakeClock) -> Iterator[Any]:
    servers: list[EmulatorServer] = []

    def factory(scenario: Any = "findings", **options: Any) -> EmulatorServer:
        server = start_sandbox("cybersecpro", scenario, clock=clock, options=options)
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()
        assert server.errors == []


def login(server: EmulatorServer) -> dict[str, Any]:
    response = requests.post(server.base_url + "/auth/login", json=LOGIN, timeout=5)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def claims(token: str) -> dict[str, Any]:
    segment = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=="))
    return decoded


def assert_error(response: requests.Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == message


# -- authentication ----------------------------------------------------------------------------


def test_documented_login_answers_an_access_token_only(launch: Any) -> None:
    body = login(launch(shape="documented"))

    assert set(body) == {"access_token", "token_type"} and body["token_type"] == "Bearer"
    access = claims(body["access_token"])
    assert access["token_type"] == "access" and access["exp"] - access["iat"] == 3600


def test_implementation_login_adds_a_30_day_refresh_token(launch: Any) -> None:
    body = login(launch(shape="implementation"))

    assert set(body) == {"message", "user", "access_token", "refresh_token"}
    refresh = claims(body["refresh_token"])
    assert refresh["token_type"] == "refresh" and refresh["exp"] - refresh["iat"] == 30 * 86400
    assert {"sub", "org", "role", "fresh", "jti"} <= set(refresh)


def test_login_refuses_bad_input_wrong_passwords_and_a_sixth_attempt(launch: Any) -> None:
    url = launch().base_url + "/auth/login"

    assert_error(
        requests.post(url, json={"email": SANDBOX_EMAIL}, timeout=5),
        400,
        "Email and password required",
    )
    attempts = [requests.post(url, json={**LOGIN, "password": "nope"}, timeout=5) for _ in range(5)]
    sixth = requests.post(url, json=LOGIN, timeout=5)

    assert {a.status_code for a in attempts} == {401}
    assert attempts[0].json() == {"error": "Invalid email or password"}
    assert_error(sixth, 429, "Too many login attempts")


def test_refresh_issues_a_new_access_token_and_checks_token_types(
    launch: Any, clock: FakeClock
) -> None:
    server = launch(shape="implementation")
    tokens = login(server)
    url = server.base_url + "/auth/refresh"
    clock.advance(3601)

    refreshed = requests.post(url, headers=bearer(tokens["refresh_token"]), timeout=5)
    wrong_type = requests.post(url, headers=bearer(tokens["access_token"]), timeout=5)
    cookie = requests.post(
        url, cookies={"refresh_token_cookie": tokens["refresh_token"]}, timeout=5
    )

    assert refreshed.status_code == 200 and set(refreshed.json()) == {"access_token"}
    assert claims(refreshed.json()["access_token"])["fresh"] is False
    assert Api(server, bearer(refreshed.json()["access_token"])).get("/scans").ok
    assert_error(
        Api(server, bearer(tokens["access_token"])).get("/scans"), 401, "Invalid or expired token"
    )
    assert_error(wrong_type, 401, "Invalid refresh token")  # that access token expired
    assert cookie.status_code == 200
    assert_error(requests.post(url, timeout=5), 401, "Refresh token required")


def test_a_refresh_token_is_no_access_token(launch: Any) -> None:
    server = launch(shape="implementation")
    tokens = login(server)

    refused = Api(server, bearer(tokens["refresh_token"])).get("/scans")
    fresh = requests.post(
        server.base_url + "/auth/refresh", headers=bearer(tokens["access_token"]), timeout=5
    )

    assert_error(refused, 401, "Access token required")
    assert_error(fresh, 401, "Invalid token type")


@pytest.mark.parametrize(
    ("headers", "cookies", "status", "message"),
    [
        ({}, {}, 401, "Authentication required"),
        ({"X-API-Key": "csp_" + "0" * 64}, {}, 401, "Invalid API key"),
        ({"Authorization": "Bearer csp_" + "0" * 64}, {}, 401, "Invalid API key"),
        ({"Authorization": "Bearer eyJnot.a.token"}, {}, 401, "Invalid or expired token"),
        ({"Authorization": f"Bearer {SANDBOX_API_KEY}"}, {}, 200, ""),
        ({}, {"access_token_cookie": "eyJnot.a.token"}, 401, "Invalid or expired token"),
    ],
)
def test_protected_routes_check_keys_and_tokens(
    launch: Any, headers: dict[str, str], cookies: dict[str, str], status: int, message: str
) -> None:
    response = requests.get(
        launch().base_url + "/scans", headers=headers, cookies=cookies, timeout=5
    )

    assert response.status_code == status
    if message:
        assert response.json() == {"error": message}


def test_tokens_in_the_query_string_are_ignored(launch: Any) -> None:
    server = launch()
    token = login(server)["access_token"]

    response = requests.get(server.base_url + "/scans", params={"token": token}, timeout=5)

    assert_error(response, 401, "Authentication required")


def test_the_trial_plan_has_no_api_access_but_allows_login(launch: Any) -> None:
    server = launch(plan="trial")

    refused = Api(server).get("/scans")

    assert_error(refused, 402, "Plan upgrade required. Need professional plan.")
    assert Api(server, bearer(login(server)["access_token"])).get("/scans").ok


# -- creating scans ----------------------------------------------------------------------------


def test_documented_create_answers_created_with_a_short_id(launch: Any) -> None:
    response = Api(launch(shape="documented")).create("example.com", tool="Nuclei")

    body = response.json()
    assert response.status_code == 201
    assert set(body) == {"id", "status", "target", "tool", "created_at"}
    assert re.fullmatch(r"scan_[0-9a-f]{8}", body["id"]) and body["status"] == "created"
    assert (body["target"], body["tool"]) == ("example.com", "nuclei")
    assert body["created_at"] == "2026-01-15T10:00:00Z"


def test_implementation_create_answers_running_with_a_uuid(launch: Any) -> None:
    api = Api(launch(shape="implementation"))

    body = api.create(" example.com ").json()
    via_alias = api.call("POST", "/scans", json={"target": "b.example.com", "tool_id": "nmap"})

    uuid.UUID(body["scan_id"])
    assert body["success"] is True and body["status"] == "running"
    assert body["scan"] == {
        "id": body["scan_id"],
        "tool": "nuclei",
        "target": "example.com",
        "status": "running",
    }
    assert via_alias.status_code == 201 and via_alias.json()["scan"]["tool"] == "nmap"


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"tool": "nuclei"}, 400, "Valid target required"),
        ({"target": "  ", "tool": "nuclei"}, 400, "Valid target required"),
        ({"target": "x" * 501, "tool": "nuclei"}, 400, "Valid target required"),
        ({"target": "a.example.com"}, 400, "Tool name or ID required"),
        ({"target": "a.example.com", "tool": "zapp"}, 404, "Tool not found: zapp"),
        ({"target": "a.example.com", "tool": "nmap", "parameters": "-sV"}, 400, ""),
        (["target"], 400, ""),
    ],
)
def test_create_validates_the_body(launch: Any, body: Any, status: int, message: str) -> None:
    api = Api(launch())

    response = api.call("POST", "/scans/create", json=body)

    assert response.status_code == status and "error" in response.json()
    assert message in response.json()["error"]
    assert api.get("/scans").json()["pagination"]["total"] == 0


def test_six_starts_in_a_minute_are_refused_and_the_trial_allows_three_a_day(
    launch: Any, clock: FakeClock
) -> None:
    api = Api(launch())
    codes = [api.create(f"t{n}.example.com").status_code for n in range(6)]
    clock.advance(60)
    trial = launch(plan="trial")
    trial_api = Api(trial, bearer(login(trial)["access_token"]))
    daily = []
    for n in range(4):
        daily.append(trial_api.create(f"d{n}.example.com"))
        clock.advance(61)

    assert codes == [201] * 5 + [429]
    assert api.create("late.example.com").status_code == 201
    assert [r.status_code for r in daily] == [201, 201, 201, 429]
    assert daily[3].json() == {"error": "Daily scan limit reached"}


# -- the state machine -------------------------------------------------------------------------


def test_documented_scans_go_pending_running_completed(launch: Any, clock: FakeClock) -> None:
    api = Api(launch(shape="documented"))
    scan_id = api.scan_id()
    statuses = []
    for _ in range(32):
        statuses.append(api.get(f"/scans/{scan_id}").json()["scan"]["status"])
        clock.advance(0.1)

    first_running, first_done = statuses.index("running"), statuses.index("completed")
    assert set(statuses[:first_running]) == {"pending"} and first_running > 0
    assert set(statuses[first_running:first_done]) == {"running"}
    assert set(statuses[first_done:]) == {"completed"}


def test_implementation_scans_run_at_once(launch: Any, clock: FakeClock) -> None:
    api = Api(launch(shape="implementation"))
    scan_id = api.scan_id()

    first = api.get(f"/scans/{scan_id}").json()["scan"]
    clock.advance(3)
    done = api.get(f"/scans/{scan_id}").json()["scan"]

    assert first["status"] == "running" and first["started_at"] == "2026-01-15T10:00:00"
    assert done["status"] == "completed" and done["completed_at"] == "2026-01-15T10:00:03"


@pytest.mark.parametrize("shape", SHAPES)
def test_detail_is_wrapped_in_scan_with_zoneless_times_and_counts(
    launch: Any, clock: FakeClock, shape: str
) -> None:
    api = Api(launch(shape=shape))
    scan_id = api.scan_id()
    clock.advance(3)

    scan = api.get(f"/scans/{scan_id}").json()["scan"]

    assert {"id", "organization_id", "user_id", "tool_id", "target", "parameters"} <= set(scan)
    assert {"duration", "duration_seconds", "findings_summary", "output", "error_log"} <= set(scan)
    assert all(NAIVE.fullmatch(scan[key]) for key in ("created_at", "started_at", "completed_at"))
    planted = [f.severity for f in load_scenario("findings").findings]
    summary = scan["findings_summary"]
    assert summary["total"] == len(planted) and "info" not in summary
    assert all(summary[s] == planted.count(s) for s in ("critical", "high", "medium", "low"))
    assert (scan["duration"], scan["duration_seconds"]) == ("0m 3s", 3.0)


@pytest.mark.parametrize("shape", SHAPES)
def test_status_route_and_its_unknown_id_answer(launch: Any, shape: str) -> None:
    api = Api(launch(shape=shape))
    scan_id = api.scan_id()

    known = api.get(f"/scans/{scan_id}/status").json()
    unknown = api.get("/scans/nope/status")

    assert set(known) == {"scan_id", "status"} and known["scan_id"] == scan_id
    # The implementation answers an unknown id with HTTP 200 and an error body.
    assert unknown.status_code == (404 if shape == "documented" else 200)
    assert unknown.json() == {"error": "Scan not found"}


def test_failed_and_cancelled_scenarios_end_in_their_state(launch: Any, clock: FakeClock) -> None:
    failed = Api(launch("failed"))
    cancelled = Api(launch("cancelled"))
    failed_id, cancelled_id = failed.scan_id(), cancelled.scan_id()
    clock.advance(10)

    failed_scan = failed.get(f"/scans/{failed_id}").json()["scan"]
    cancelled_scan = cancelled.get(f"/scans/{cancelled_id}").json()["scan"]

    assert failed_scan["status"] == "failed" and "40%" in failed_scan["error_log"]
    assert cancelled_scan["status"] == "cancelled" and cancelled_scan["error_log"] is None


@pytest.mark.parametrize("route", ["/scans/{}/cancel", "/scan/{}/stop"])
def test_cancel_freezes_a_running_scan_and_refuses_an_ended_one(
    launch: Any, clock: FakeClock, route: str
) -> None:
    api = Api(launch())
    scan_id = api.scan_id()
    clock.advance(1.5)

    cancelled = api.call("POST", route.format(scan_id))
    frozen = api.get(f"/scans/{scan_id}").json()["scan"]
    clock.advance(60)
    again = api.call("POST", route.format(scan_id))

    assert cancelled.json() == {"message": "Scan cancelled"}
    assert api.get(f"/scans/{scan_id}").json()["scan"] == frozen
    assert frozen["status"] == "cancelled" and frozen["findings_summary"]["total"] < 6
    assert_error(again, 404, "Scan not found or already completed")
    assert_error(api.call("POST", route.format("nope")), 404, "Scan not found or already completed")


# -- results -----------------------------------------------------------------------------------


def test_documented_result_counts_equal_its_vulnerability_list(
    launch: Any, clock: FakeClock
) -> None:
    api = Api(launch(shape="documented"))
    scan_id = api.scan_id()
    clock.advance(3)

    body = api.get(f"/scan/{scan_id}/result").json()

    planted = load_scenario("findings").findings
    assert set(body) == {"scan_id", "status", "duration_ms", "findings", "vulnerabilities"}
    assert (body["status"], body["duration_ms"]) == ("completed", 3000)
    assert body["findings"]["total"] == len(body["vulnerabilities"]) == len(planted)
    for severity in ("critical", "high", "medium", "low", "info"):
        assert body["findings"][severity] == sum(f.severity == severity for f in planted)
    keys = {"id", "title", "cve", "cvss", "severity", "evidence", "remediation"}
    assert all(set(v) == keys for v in body["vulnerabilities"])
    first = body["vulnerabilities"][0]
    assert first["id"] == "vuln_001" and first["title"] == planted[0].title
    assert first["cvss"] == planted[0].cvss and "GET /search" in first["evidence"]
    jquery = next(v for v in body["vulnerabilities"] if "jQuery" in v["title"])
    assert jquery["cve"] == "CVE-2020-11022"


def test_implementation_result_wraps_the_tool_parser_object(launch: Any, clock: FakeClock) -> None:
    api = Api(launch(shape="implementation"))
    scan_id = api.scan_id()
    clock.advance(3)

    body = api.get(f"/scan/{scan_id}/result").json()

    assert set(body) == {"scan", "execution_result"}
    assert body["scan"]["tool_name"] == "Nuclei" and body["scan"]["status"] == "completed"
    findings = body["execution_result"]["findings"]
    assert findings["summary"]["total"] == len(findings["vulnerabilities"]) == 6
    assert all(set(v) == {"severity", "title", "description"} for v in findings["vulnerabilities"])


def test_findings_appear_while_the_scan_runs(launch: Any, clock: FakeClock) -> None:
    api = Api(launch())
    scan_id = api.scan_id()
    totals = []
    for _ in range(4):
        totals.append(len(api.get(f"/scan/{scan_id}/result").json()["vulnerabilities"]))
        clock.advance(1.0)

    assert totals[0] < totals[1] < totals[2] <= totals[3] == 6


def test_result_error_option_answers_http_200_with_an_error(launch: Any) -> None:
    server = launch("result-error")
    api = Api(server)
    scan_id = api.scan_id()

    response = api.get(f"/scan/{scan_id}/result")

    assert response.status_code == 200
    assert response.json() == {"error": "Failed to load scan result: execution record missing"}
    assert_error(api.get("/scan/nope/result"), 404, "Scan not found")


def test_hostile_scenario_serves_hostile_text_as_valid_json(launch: Any, clock: FakeClock) -> None:
    api = Api(launch("hostile"))
    scan_id = api.scan_id()
    clock.advance(3)

    items = api.get(f"/scan/{scan_id}/result").json()["vulnerabilities"]

    assert items and all(HOSTILE_TEXT in item["title"] for item in items)


# -- lists -------------------------------------------------------------------------------------


def test_documented_list_pages_newest_first(launch: Any, clock: FakeClock) -> None:
    api = Api(launch(shape="documented", plan="enterprise"))
    ids = []
    for n in range(5):
        ids.append(api.scan_id(f"t{n}.example.com"))
        clock.advance(1)

    first = api.get("/scans", params={"per_page": 2}).json()
    oldest = api.get("/scans", params={"per_page": 2, "order": "asc"}).json()

    assert first["pagination"] == {"page": 1, "per_page": 2, "total": 5, "total_pages": 3}
    assert [i["id"] for i in first["data"]] == ids[::-1][:2]
    assert [i["id"] for i in oldest["data"]] == ids[:2]
    assert api.get("/scans").json()["pagination"]["per_page"] == 25
    assert api.get("/scans", params={"per_page": 101}).status_code == 400


def test_implementation_list_filters_by_status_and_ignores_order(
    launch: Any, clock: FakeClock
) -> None:
    api = Api(launch(shape="implementation", plan="enterprise"))
    old = api.scan_id("old.example.com")
    clock.advance(3600)
    new = api.scan_id("new.example.com")

    body = api.get("/scans", params={"order": "asc"}).json()

    assert set(body) == {"scans", "total", "page", "per_page"} and body["per_page"] == 20
    assert [i["id"] for i in body["scans"]] == [new, old]
    assert body["scans"][0]["tool_name"] == "Nuclei"
    running = api.get("/scans", params={"status": "running"}).json()["scans"]
    assert [i["id"] for i in running] == [new]


# -- rate limits -------------------------------------------------------------------------------


def test_documented_shape_sends_rate_limit_headers_on_every_answer(launch: Any) -> None:
    api = Api(launch(shape="documented"))

    answers = [api.get("/scans"), api.get("/scans/nope"), api.call("PUT", "/scans")]

    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["59", "58", "58"]
    for answer in answers:
        assert answer.headers["X-RateLimit-Limit"] == "60"
        assert int(answer.headers["X-RateLimit-Reset"]) == 1_768_471_200 + 60
    assert_error(answers[2], 405, "Method Not Allowed")


def test_implementation_shape_sends_no_rate_limit_headers(launch: Any) -> None:
    response = Api(launch(shape="implementation")).get("/scans")

    assert not [name for name in response.headers if name.lower().startswith("x-ratelimit")]


@pytest.mark.parametrize(("shape", "retry_after"), [("documented", 6), ("implementation", 60)])
def test_the_trial_burst_is_five_requests(
    launch: Any, clock: FakeClock, shape: str, retry_after: int
) -> None:
    server = launch(shape=shape, plan="trial")
    api = Api(server, bearer(login(server)["access_token"]))

    answers = [api.get("/scans") for _ in range(5)]  # the login was the first of five
    clock.advance(6)
    after_refill = api.get("/scans")

    assert [a.status_code for a in answers] == [200] * 4 + [429]
    assert answers[4].json() == {
        "error": "Too many requests. Please slow down.",
        "code": "RATE_LIMITED",
        "retry_after_seconds": retry_after,
    }
    assert answers[4].headers["Retry-After"] == str(retry_after)
    assert after_refill.status_code == 200


def test_the_trial_window_allows_ten_requests_a_minute(launch: Any, clock: FakeClock) -> None:
    server = launch(shape="documented", plan="trial")
    api = Api(server, bearer(login(server)["access_token"]))
    answers = []
    for _ in range(10):
        clock.advance(5)
        answers.append(api.get("/scans"))
    clock.advance(10)  # the window began with the login, 60 s ago
    next_window = api.get("/scans")

    assert [a.status_code for a in answers] == [200] * 9 + [429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers[:9]] == [
        str(n) for n in range(8, -1, -1)
    ]
    assert answers[9].headers["Retry-After"] == "10"
    assert next_window.status_code == 200 and next_window.headers["X-RateLimit-Remaining"] == "9"


def test_a_shortened_minute_keeps_every_per_minute_count(launch: Any, clock: FakeClock) -> None:
    # minute: 6 s is a tenth of a minute: 10 requests, 5 logins and 5 starts per 6 s, the
    # burst of 5 refilled at 10 per 6 s, and waits and resets told in real seconds.
    attempts = launch(minute=6.0)  # professional: a burst of 30, so the login limit shows
    url = attempts.base_url + "/auth/login"
    logins = [requests.post(url, json=LOGIN, timeout=5) for _ in range(5)]
    sixth = requests.post(url, json=LOGIN, timeout=5)
    assert [r.status_code for r in logins] == [200] * 5
    assert_error(sixth, 429, "Too many login attempts")
    clock.advance(6)
    assert login(attempts)["access_token"]

    server = launch(shape="documented", plan="trial", minute=6.0)
    token = login(server)["access_token"]
    api = Api(server, bearer(token))
    answers = []
    for _ in range(9):
        clock.advance(0.5)
        answers.append(api.get("/scans"))
    # The window began with the login: 1 + 9 requests fill it; the next waits for its end.
    refused = api.get("/scans")
    assert [a.status_code for a in answers] == [200] * 9
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "2"  # 6 s window, 4.5 s of it gone
    assert int(refused.headers["X-RateLimit-Reset"]) <= clock.time() + 2
    clock.advance(2)
    assert api.get("/scans").status_code == 200


def test_a_shortened_minute_times_the_starts_limit_and_the_implementations_retry_after(
    launch: Any, clock: FakeClock
) -> None:
    server = launch(shape="implementation", minute=4.0)
    api = Api(server)
    codes = [api.create(f"t{n}.example.com").status_code for n in range(6)]
    assert codes == [201] * 5 + [429]
    clock.advance(4)
    assert api.create("late.example.com").status_code == 201
    trial = launch(shape="implementation", plan="trial", minute=4.0)
    burst = [requests.post(trial.base_url + "/auth/login", json=LOGIN, timeout=5) for _ in range(6)]
    assert burst[5].status_code == 429
    assert burst[5].headers["Retry-After"] == "4"  # [R]'s flat 60 s, on a 4-second minute


def test_daily_scans_replaces_the_trial_plans_three(launch: Any, clock: FakeClock) -> None:
    server = launch(plan="trial", minute=1.0, daily_scans=4)
    codes = []
    for n in range(5):
        clock.advance(1.0)
        api = Api(server, bearer(login(server)["access_token"]))
        codes.append(api.create(f"d{n}.example.com").status_code)
    assert codes == [201] * 4 + [429]


def test_rate_limited_scenario_sends_the_429_shape(launch: Any) -> None:
    api = Api(launch("rate-limited"))
    scan_id = api.scan_id()

    polls = [api.get(f"/scans/{scan_id}") for _ in range(4)]

    assert [p.status_code for p in polls] == [200, 429, 429, 200]
    assert polls[1].headers["Retry-After"] == "2"
    assert polls[1].json()["code"] == "RATE_LIMITED"


# -- faults, options, registry -----------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
def test_token_expiry_expires_access_tokens_mid_scan(launch: Any, shape: str) -> None:
    server = launch("token-expiry", shape=shape)
    tokens = login(server)
    api = Api(server, bearer(tokens["access_token"]))
    scan_id = api.scan_id()

    statuses = [api.get(f"/scans/{scan_id}").status_code for _ in range(4)]

    assert statuses == [200, 401, 401, 401]  # the second poll expires the token
    assert server.log.count(fault="token-expiry") == 1
    if shape == "implementation":  # the refresh token outlives the access token
        url = server.base_url + "/auth/refresh"
        new = requests.post(url, headers=bearer(tokens["refresh_token"]), timeout=5).json()
        assert Api(server, bearer(new["access_token"])).get(f"/scans/{scan_id}").ok


def test_token_expiry_does_not_touch_api_keys(launch: Any) -> None:
    server = launch("token-expiry")
    api = Api(server)
    scan_id = api.scan_id()

    assert [api.get(f"/scans/{scan_id}").status_code for _ in range(4)] == [200] * 4
    assert server.log.count(fault="token-expiry") == 0


def test_scenario_options_choose_shape_plan_and_token_lifetime(launch: Any, tmp_path: Any) -> None:
    path = tmp_path / "impl.yml"
    path.write_text(
        "extends: clean\noptions: {cybersecpro: {shape: implementation, plan: starter,"
        " token_lifetime: 60}}\n",
        encoding="utf-8",
    )
    server = launch(path)
    emulator = server.emulator
    assert isinstance(emulator, CyberSecProEmulator)

    body = login(server)

    assert emulator.shape == "implementation" and emulator.plan.name == "starter"
    assert "refresh_token" in body
    access = claims(body["access_token"])
    assert access["exp"] - access["iat"] == 60


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"tier": "gold"}, "options.cybersecpro.tier: unknown key"),
        ({"shape": "doc"}, "'doc' is not one of documented, implementation"),
        ({"plan": "gold"}, "'gold' is not one of trial"),
        ({"token_lifetime": -1}, "positive number of seconds"),
        ({"minute": 0}, "options.cybersecpro.minute: must be a positive number"),
        ({"daily_scans": "ten"}, "options.cybersecpro.daily_scans: must be a positive number"),
    ],
)
def test_bad_scenario_options_are_scenario_errors(
    launch: Any, options: dict[str, Any], words: str
) -> None:
    with pytest.raises(ScenarioError, match=re.escape(words)):
        launch(parse_scenario({"options": {"cybersecpro": options}}, name="bad"))


def test_sandbox_env_gives_the_key_or_the_login_the_scenario_needs() -> None:
    assert sandbox_env("cybersecpro") == {"CYBERSECPRO_API_KEY": SANDBOX_API_KEY}
    assert sandbox_env("cybersecpro", "findings") == sandbox_env("cybersecpro")
    login_env = {"CYBERSECPRO_EMAIL": SANDBOX_EMAIL, "CYBERSECPRO_PASSWORD": SANDBOX_PASSWORD}
    assert sandbox_env("cybersecpro", "token-expiry") == login_env
    assert sandbox_env("cybersecpro", "trial-plan") == login_env  # no API access on trial


def test_every_bundled_scenario_plays_in_both_shapes() -> None:
    names = scenarios_for("cybersecpro")
    assert {"clean", "findings", "slow", "token-expiry", "trial-plan", "result-error"} <= set(names)
    for name in names:
        for shape in SHAPES:
            CyberSecProEmulator(
                load_scenario(name, provider="cybersecpro"), clock=FakeClock(), shape=shape
            )
    with pytest.raises(ScenarioError, match="is for cybersecpro only"):
        load_scenario("trial-plan", provider="cyberorigen")


# -- the adapter and the runner against the emulator, on one fake clock ------------------------


class Simulation:
    """`scangate run`'s runner, the real adapter and the emulator sharing a fake clock."""

    def __init__(
        self,
        clock: FakeClock,
        server: EmulatorServer,
        *,
        env: dict[str, str],
        options: dict[str, Any],
    ) -> None:
        self.server = server
        self.lines: list[str] = []
        # No retries: a 429 must show as one, not be absorbed by the HTTP layer.
        connection = Connection(
            base_url=server.base_url,
            redactor=Redactor(),
            retries=0,
            backoff=0,
            clock=clock.time,
            sleep=clock.advance,
        )
        settings = ProviderSettings(name="cybersecpro", base_url=server.base_url, options=options)
        provider = CyberSecProProvider(settings=settings, env=env, connection=connection)
        policy = Policy(provider=settings, scan=ScanSettings(target="staging.example.com"))
        self.runner = Runner(
            provider=provider,
            policy=policy,
            log=self.lines.append,
            deadline=clock.monotonic() + 3600,
            schedule=lambda: PollSchedule(PollPolicy(), wall_clock=connection.clock),
            monotonic=clock.monotonic,
            sleep=clock.advance,
        )

    def run(self) -> ScanStatus:
        scan = self.runner.start()
        progress = self.runner.wait(scan)
        return self.runner.fetch(scan, progress).status

    def busiest_minute(self) -> int:
        times = [entry.time for entry in self.server.log]
        return max(sum(1 for t in times if start <= t < start + 60) for start in times)


LOGIN_ENV = {"CYBERSECPRO_EMAIL": SANDBOX_EMAIL, "CYBERSECPRO_PASSWORD": SANDBOX_PASSWORD}


@pytest.mark.parametrize("shape", SHAPES)
def test_a_ten_minute_scan_on_the_trial_plan_never_gets_a_429(
    launch: Any, clock: FakeClock, shape: str
) -> None:
    server = launch("slow", shape=shape, plan="trial")
    simulation = Simulation(clock, server, env=LOGIN_ENV, options={"plan": "trial"})

    status = simulation.run()

    assert status is ScanStatus.COMPLETED
    assert clock.monotonic() - 1000 >= 600
    assert server.log.count(status=429) == 0
    assert simulation.busiest_minute() <= 10
    assert server.log.count(category="start") == 1
    assert server.log.count(category="findings") == 1
    assert server.log.count(category="poll") >= 10  # it kept watching all along


def test_the_plan_option_is_what_keeps_a_headerless_scan_in_budget(
    launch: Any, clock: FakeClock
) -> None:
    """The control: told the wrong plan, with no headers to correct it, the client gets 429s."""
    server = launch("slow", shape="implementation", plan="trial")
    simulation = Simulation(clock, server, env=LOGIN_ENV, options={"plan": "enterprise"})

    try:
        simulation.run()
    except ProviderError:
        pass  # a 429 at the wrong moment may also end the run

    assert server.log.count(status=429) >= 1


@pytest.mark.parametrize("shape", SHAPES)
def test_tokens_expiring_during_a_long_scan_are_renewed_before_they_lapse(
    launch: Any, clock: FakeClock, shape: str
) -> None:
    server = launch("slow", shape=shape, token_lifetime=120)
    simulation = Simulation(clock, server, env=LOGIN_ENV, options={"plan": "professional"})

    status = simulation.run()

    assert status is ScanStatus.COMPLETED
    assert server.log.count(status=401) == 0  # renewed before expiry, never after
    assert server.log.count(category="start") == 1
    logins = server.log.count(path=r".*/auth/login")
    refreshes = server.log.count(path=r".*/auth/refresh")
    if shape == "documented":  # no refresh token: a new login each time
        assert logins >= 4 and refreshes == 0
    else:
        assert logins == 1 and refreshes >= 4


@pytest.mark.parametrize("shape", SHAPES)
def test_a_token_revoked_mid_scan_is_renewed_without_losing_the_scan(
    launch: Any, clock: FakeClock, shape: str
) -> None:
    scenario = parse_scenario(
        {"extends": "slow", "faults": [{"on": "poll", "after": 3, "kind": "token-expiry"}]},
        name="revoked",
    )
    server = launch(scenario, shape=shape)
    simulation = Simulation(clock, server, env=LOGIN_ENV, options={"plan": "professional"})

    status = simulation.run()

    assert status is ScanStatus.COMPLETED
    assert server.log.count(fault="token-expiry") == 1
    assert server.log.count(status=401) == 1
    assert server.log.count(category="start") == 1
    renewal = "refresh" if shape == "implementation" else "login"
    assert server.log.count(path=rf".*/auth/{renewal}") == (1 if renewal == "refresh" else 2)
    assert not any("still tracking" in line for line in simulation.lines)


# -- seeded history (scenario option `history`, issue 16) --------------------------------------


@pytest.mark.parametrize("shape", ["documented", "implementation"])
def test_history_seeds_ended_scans_in_the_list(launch: Any, shape: str) -> None:
    history = [{"duration": 1800}, {"duration": 60, "status": "cancelled"}, {"duration": 1700}]
    scenario = parse_scenario(
        {"options": {"cybersecpro": {"history": history, "shape": shape}}}, name="history"
    )
    api = Api(launch(scenario))
    body = api.get("/scans", params={"page": 1, "per_page": 100}).json()
    items = body.get("data") or body.get("scans")
    assert [item["status"] for item in items] == ["completed", "cancelled", "completed"]
    assert [item["duration_seconds"] for item in items] == [1800, 60, 1700]
    assert all(item["target"] == "staging.example.com" for item in items)
    assert all(item["started_at"] and item["completed_at"] for item in items)
