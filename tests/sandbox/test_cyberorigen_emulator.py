"""The CyberOrigen emulator over real HTTP, against `providers/cyberorigen.md`, on a fake clock."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from scangate.providers import PROVIDER_NAMES
from scangate.sandbox import (
    EMULATORS,
    HOSTILE_TEXT,
    EmulatorServer,
    FakeClock,
    SandboxError,
    ScenarioError,
    load_scenario,
    sandbox_env,
    scenarios_for,
    start_sandbox,
)
from scangate.sandbox.cyberorigen.auth import (
    READ_ONLY_API_KEY,
    SANDBOX_API_KEY,
    SANDBOX_PASSWORD,
    SANDBOX_USERNAME,
)
from scangate.sandbox.cyberorigen.scans import PHASES, ScanRecord
from scangate.sandbox.scenario import parse_scenario

ISO_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
START = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
"""FakeClock's wall time at zero."""
FINDING_KEYS = {
    "id",
    "title",
    "severity",
    "cvss_score",
    "status",
    "tool",
    "affected_component",
    "description",
    "remediation",
    "cve_ids",
    "detected_at",
}


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

    def start(self, target: str = "staging.example.com", **fields: Any) -> requests.Response:
        return self.call("POST", "/scans", json={"target": target, "authorized": True, **fields})

    def scan_id(self, target: str = "staging.example.com") -> str:
        response = self.start(target)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def launch(clock: FakeClock) -> Iterator[Any]:
    servers: list[EmulatorServer] = []

    def factory(scenario: Any = "findings", **options: Any) -> EmulatorServer:
        server = start_sandbox("cyberorigen", scenario, clock=clock, options=options)
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()
        assert server.errors == []


@pytest.fixture
def api(launch: Any) -> Api:
    return Api(launch())


def login(server: EmulatorServer) -> str:
    response = requests.post(
        server.base_url + "/auth/token",
        data={"username": SANDBOX_USERNAME, "password": SANDBOX_PASSWORD},
        timeout=5,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error(response: requests.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"detail", "error_code"}
    assert body["error_code"] == code and isinstance(body["detail"], str) and body["detail"]


# -- authentication ----------------------------------------------------------------------------


def test_token_login_is_form_encoded_and_returns_an_hour_long_bearer_jwt(launch: Any) -> None:
    server = launch()

    response = requests.post(
        server.base_url + "/auth/token",
        data={"username": SANDBOX_USERNAME, "password": SANDBOX_PASSWORD, "mfa_code": "123456"},
        timeout=5,
    )

    body = response.json()
    assert response.status_code == 200
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert re.fullmatch(r"eyJ[\w-]+\.[\w-]+\.[\w-]+", body["access_token"])
    assert Api(server, bearer(body["access_token"])).get("/scans").status_code == 200


def test_token_login_rejects_json_missing_fields_and_wrong_passwords(launch: Any) -> None:
    url = launch().base_url + "/auth/token"
    good = {"username": SANDBOX_USERNAME, "password": SANDBOX_PASSWORD}

    assert_error(requests.post(url, json=good, timeout=5), 422, "VALIDATION_ERROR")
    assert_error(
        requests.post(url, data={"username": SANDBOX_USERNAME}, timeout=5), 422, "VALIDATION_ERROR"
    )
    wrong = requests.post(url, data={**good, "password": "nope"}, timeout=5)
    assert_error(wrong, 401, "INVALID_CREDENTIALS")


def test_tokens_expire_and_refresh_only_while_still_valid(launch: Any, clock: FakeClock) -> None:
    server = launch()
    token = login(server)
    clock.advance(3500)

    refreshed = requests.post(server.base_url + "/auth/refresh", headers=bearer(token), timeout=5)
    new_token = refreshed.json()["access_token"]
    clock.advance(200)  # the first token is now 3700 s old, the refreshed one 200 s

    assert refreshed.status_code == 200 and new_token != token
    assert_error(Api(server, bearer(token)).get("/scans"), 401, "TOKEN_EXPIRED")
    late = requests.post(server.base_url + "/auth/refresh", headers=bearer(token), timeout=5)
    assert_error(late, 401, "TOKEN_EXPIRED")
    assert Api(server, bearer(new_token)).get("/scans").status_code == 200


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "NOT_AUTHENTICATED"),
        ({"X-API-Key": "co_wrong"}, "INVALID_API_KEY"),
        ({"Authorization": "Bearer eyJnot.a.token"}, "INVALID_TOKEN"),
        ({"Authorization": f"Basic {SANDBOX_API_KEY}"}, "NOT_AUTHENTICATED"),
    ],
)
def test_missing_or_bad_credentials_get_401(
    launch: Any, headers: dict[str, str], code: str
) -> None:
    response = requests.get(launch().base_url + "/scans", headers=headers, timeout=5)

    assert_error(response, 401, code)
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_api_key_without_write_scans_cannot_start_or_cancel(launch: Any) -> None:
    server = launch()
    scan_id = Api(server).scan_id()
    read_only = Api(server, {"X-API-Key": READ_ONLY_API_KEY})

    assert_error(read_only.start(), 403, "INSUFFICIENT_PERMISSIONS")
    assert_error(read_only.call("DELETE", f"/scans/{scan_id}"), 403, "INSUFFICIENT_PERMISSIONS")
    assert read_only.get(f"/scans/{scan_id}").status_code == 200
    assert read_only.get(f"/scans/{scan_id}/findings").status_code == 200


def test_startup_plan_has_no_api_keys_but_allows_login(launch: Any) -> None:
    server = launch(plan="startup")

    assert_error(Api(server).get("/scans"), 403, "PLAN_UPGRADE_REQUIRED")
    assert Api(server, bearer(login(server))).get("/scans").status_code == 200


def test_token_expiry_scenario_expires_the_login_token_mid_scan(launch: Any) -> None:
    server = launch("token-expiry")
    api = Api(server, bearer(login(server)))
    scan_id = api.scan_id()

    statuses = [api.get(f"/scans/{scan_id}").status_code for _ in range(4)]
    assert_error(api.get(f"/scans/{scan_id}"), 401, "TOKEN_EXPIRED")
    relogged = Api(server, bearer(login(server)))

    assert statuses == [200, 401, 401, 401]  # the second poll expires it; it stays dead
    assert relogged.get(f"/scans/{scan_id}").status_code == 200
    assert server.log.count(fault="token-expiry") == 1


def test_token_expiry_fault_does_not_touch_api_keys(launch: Any) -> None:
    server = launch("token-expiry")
    api = Api(server)
    scan_id = api.scan_id()

    statuses = [api.get(f"/scans/{scan_id}").status_code for _ in range(4)]

    assert statuses == [200] * 4
    assert server.log.count(fault="token-expiry") == 0


# -- creating scans ----------------------------------------------------------------------------


def test_create_answers_201_pending_with_an_honest_estimate(api: Api) -> None:
    response = api.start("https://staging.example.com", scan_type="quick", ports="1-1000")

    body = response.json()
    assert response.status_code == 201
    assert re.fullmatch(r"scan_[0-9a-f]+", body["id"])
    assert body["status"] == "pending" and body["scan_type"] == "quick"
    assert body["target"] == "https://staging.example.com"
    assert body["created_at"] == "2026-01-15T10:00:00Z"
    assert body["estimated_duration"] == 3  # the `findings` scenario's sandbox seconds
    assert api.start().json()["scan_type"] == "full"  # the documented default


@pytest.mark.parametrize(
    ("body", "status", "code", "detail"),
    [
        ({"target": "a.example.com"}, 422, "VALIDATION_ERROR", "authorized: field required"),
        ({"target": "a.example.com", "authorized": False}, 400, "AUTHORIZATION_REQUIRED", ""),
        ({"target": "a.example.com", "authorized": "yes"}, 422, "VALIDATION_ERROR", "boolean"),
        ({"authorized": True}, 422, "VALIDATION_ERROR", "target: field required"),
        ({"target": "a", "authorized": True, "scan_type": "deep"}, 422, "VALIDATION_ERROR", ""),
        ({"target": "a", "authorized": True, "frameworks": "soc2"}, 422, "VALIDATION_ERROR", ""),
        (["target"], 422, "VALIDATION_ERROR", "JSON object"),
    ],
)
def test_create_validates_the_body(
    api: Api, body: Any, status: int, code: str, detail: str
) -> None:
    response = api.call("POST", "/scans", json=body)

    assert_error(response, status, code)
    assert detail in response.json()["detail"]
    assert api.get("/scans").json()["total"] == 0


def test_create_refuses_a_form_body(api: Api) -> None:
    response = api.call("POST", "/scans", data={"target": "a", "authorized": "true"})

    assert_error(response, 422, "VALIDATION_ERROR")


# -- the state machine -------------------------------------------------------------------------


def test_scan_runs_pending_then_through_the_phases_then_completes(
    api: Api, clock: FakeClock
) -> None:
    scan_id = api.scan_id()
    samples = []
    for _ in range(33):
        samples.append(api.get(f"/scans/{scan_id}").json())
        clock.advance(0.1)

    statuses = [s["status"] for s in samples]
    first_running = statuses.index("running")
    first_done = statuses.index("completed")
    assert set(statuses[:first_running]) == {"pending"}
    assert set(statuses[first_running:first_done]) == {"running"}
    assert set(statuses[first_done:]) == {"completed"}
    progress = [s["progress"] for s in samples]
    assert progress == sorted(progress) and progress[0] == 0 and progress[-1] == 100
    running = samples[first_running:first_done]
    for sample in running:
        assert sample["phases_completed"] + sample["phases_remaining"] == list(PHASES)
        assert sample["phase"] == sample["phases_remaining"][0]
        assert sample["current_tool"] and sample["started_at"] == "2026-01-15T10:00:00Z"
        assert 0 <= sample["progress"] < 100 and sample["completed_at"] is None
    assert len({s["phase"] for s in running}) >= 8
    assert len({s["current_tool"] for s in running}) >= 5
    assert samples[0]["phase"] is None and samples[0]["started_at"] is None


def test_completed_scan_carries_phase_complete_and_severity_counts(
    api: Api, clock: FakeClock
) -> None:
    scan_id = api.scan_id()
    clock.advance(3.0)

    body = api.get(f"/scans/{scan_id}").json()

    assert body["status"] == "completed" and body["phase"] == "complete"
    assert body["progress"] == 100 and body["current_tool"] is None
    assert body["completed_at"] == "2026-01-15T10:00:03Z"
    assert body["phases_remaining"] == [] and body["phases_completed"] == list(PHASES)
    expected = [f.severity for f in load_scenario("findings").findings]
    for severity in ("critical", "high", "medium", "low"):
        assert body[f"{severity}_count"] == expected.count(severity)
    assert body["vulnerabilities_found"] == len(expected)


def test_findings_appear_while_the_scan_runs(api: Api, clock: FakeClock) -> None:
    scan_id = api.scan_id()
    totals = []
    for _ in range(4):
        totals.append(api.get(f"/scans/{scan_id}/findings").json()["total"])
        clock.advance(1.0)

    assert totals[0] < totals[1] < totals[2] <= totals[3] == 6


@pytest.mark.parametrize(
    ("scenario", "status", "progress"), [("failed", "failed", 40), ("cancelled", "cancelled", 30)]
)
def test_incomplete_scenarios_end_in_their_state_at_their_completeness(
    launch: Any, clock: FakeClock, scenario: str, status: str, progress: int
) -> None:
    api = Api(launch(scenario))
    scan_id = api.scan_id()
    clock.advance(10)

    body = api.get(f"/scans/{scan_id}").json()

    assert body["status"] == status and body["progress"] == progress
    assert body["phase"] == PHASES[progress // 10] and body["completed_at"] is not None
    assert api.get(f"/scans/{scan_id}/findings").json()["total"] == 1


def test_delete_cancels_a_running_scan_and_freezes_it(api: Api, clock: FakeClock) -> None:
    scan_id = api.scan_id()
    clock.advance(1.5)

    cancelled = api.call("DELETE", f"/scans/{scan_id}")
    frozen = api.get(f"/scans/{scan_id}").json()
    clock.advance(60)
    later = api.get(f"/scans/{scan_id}").json()

    assert cancelled.status_code == 200
    assert cancelled.json() == {
        "id": scan_id,
        "status": "cancelled",
        "message": "Scan cancelled successfully",
    }
    assert later == frozen and later["status"] == "cancelled" and 0 < later["progress"] < 100
    assert api.get(f"/scans/{scan_id}/findings").json()["total"] < 6


def test_delete_removes_a_finished_scan(api: Api, clock: FakeClock) -> None:
    scan_id = api.scan_id()
    clock.advance(5)

    deleted = api.call("DELETE", f"/scans/{scan_id}")

    assert deleted.status_code == 204 and deleted.content == b""
    assert_error(api.get(f"/scans/{scan_id}"), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/scans/scan_000"), ("GET", "/scans/scan_000/findings"), ("DELETE", "/scans/x")],
)
def test_unknown_scan_is_404(api: Api, method: str, path: str) -> None:
    response = api.call(method, path)

    assert_error(response, 404, "NOT_FOUND")
    assert response.json()["detail"] == "Scan not found"


# -- findings ----------------------------------------------------------------------------------


def test_findings_have_cyberorigens_shape_and_the_scenarios_content(
    api: Api, clock: FakeClock
) -> None:
    scan_id = api.scan_id()
    clock.advance(3)

    body = api.get(f"/scans/{scan_id}/findings").json()

    assert set(body) == {"items", "total"}
    planted = load_scenario("findings").findings
    assert body["total"] == len(body["items"]) == len(planted)
    for item, finding in zip(body["items"], planted, strict=True):
        assert set(item) == FINDING_KEYS
        assert re.fullmatch(r"finding_[0-9a-f]+", item["id"])
        assert item["title"] == finding.title and item["severity"] == finding.severity
        assert item["affected_component"] == finding.url
        assert item["cvss_score"] == finding.cvss and item["cve_ids"] == list(finding.cve)
        assert item["status"] == finding.status
        assert (
            ISO_Z.fullmatch(item["detected_at"]) and item["detected_at"] <= "2026-01-15T10:00:03Z"
        )


def test_findings_filter_by_severity_and_status(api: Api, clock: FakeClock) -> None:
    scan_id = api.scan_id()
    clock.advance(3)
    path = f"/scans/{scan_id}/findings"

    highs = api.get(path, params={"severity": "high"}).json()
    false_positives = api.get(path, params={"status": "false_positive"}).json()
    both = api.get(path, params={"severity": "high", "status": "open"}).json()

    assert highs["total"] == 2 and {i["severity"] for i in highs["items"]} == {"high"}
    assert false_positives["total"] == 1
    assert false_positives["items"][0]["title"] == "Outdated jQuery library"
    assert both["total"] == 1
    assert_error(api.get(path, params={"severity": "urgent"}), 422, "VALIDATION_ERROR")
    assert_error(api.get(path, params={"status": "closed"}), 422, "VALIDATION_ERROR")


def test_findings_paginate_twenty_by_default(launch: Any, clock: FakeClock) -> None:
    api = Api(launch(parse_scenario({"generate": 45, "duration": 2}, name="many")))
    scan_id = api.scan_id()
    clock.advance(2)
    path = f"/scans/{scan_id}/findings"

    pages = [api.get(path, params={"page": n}).json() for n in (1, 2, 3, 4)]
    everything = api.get(path, params={"per_page": 100}).json()

    assert [len(p["items"]) for p in pages] == [20, 20, 5, 0]
    assert {p["total"] for p in pages} == {45}
    ids = [i["id"] for p in pages for i in p["items"]]
    assert len(set(ids)) == 45 and ids == [i["id"] for i in everything["items"]]
    assert_error(api.get(path, params={"per_page": 101}), 422, "VALIDATION_ERROR")
    assert_error(api.get(path, params={"page": 0}), 422, "VALIDATION_ERROR")


def test_unfiltered_findings_pages_are_cut_without_listing_the_whole_scan(
    launch: Any, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A thousand pages of a 100,000-finding scan must not each list all 100,000 (O(n^2)):
    the unfiltered read counts and slices, and agrees with the filtering one."""
    scenario = parse_scenario(
        {"generate": 450, "duration": 2, "options": {"cyberorigen": {"unlisted": 30}}}, name="big"
    )
    api = Api(launch(scenario))
    scan_id = api.scan_id()
    clock.advance(2)
    path = f"/scans/{scan_id}/findings"
    filtered = [
        api.get(path, params={"page": n, "per_page": 100, "status": "open"}).json()
        for n in range(1, 7)
    ]

    def listing_everything(*args: Any) -> Any:
        raise AssertionError("the unfiltered page listed every finding")

    monkeypatch.setattr(ScanRecord, "found", listing_everything)
    pages = [api.get(path, params={"page": n, "per_page": 100}).json() for n in range(1, 7)]

    assert [len(p["items"]) for p in pages] == [100, 100, 100, 100, 20, 0]
    assert {p["total"] for p in pages} == {450}  # `unlisted` keeps counting the hidden 30
    ids = [i["id"] for p in pages for i in p["items"]]
    assert len(set(ids)) == 420
    opened = {i["id"] for p in filtered for i in p["items"]}
    assert opened and opened <= set(ids)


def test_latency_holds_answers_back_outside_the_lock_so_they_overlap(launch: Any) -> None:
    # A second of latency: under a loaded machine the four threads still start within it, so
    # the check below tells "held back outside the lock" from "served one after another".
    server = launch(latency=1.0)
    api = Api(server)
    threads = [threading.Thread(target=api.get, args=("/scans/quota",)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    requests.get(server.root_url + "/api/health", timeout=5)

    quota = server.log.find("GET", r".*/scans/quota")
    assert len(quota) == 4 and all(end - begun >= 1.0 for begun, end in (e.span for e in quota))
    # Served at once, not one after another under the emulator's lock.
    assert max(e.span[0] for e in quota) < min(e.span[1] for e in quota)
    health = server.log.find("GET", "/api/health")[0]
    assert health.span[1] - health.span[0] < 0.2


def test_latency_must_be_seconds(launch: Any) -> None:
    bad = parse_scenario({"options": {"cyberorigen": {"latency": -1}}}, name="bad")
    with pytest.raises(ScenarioError, match="options.cyberorigen.latency: expected seconds"):
        launch(bad)


# -- listing -----------------------------------------------------------------------------------


def test_list_paginates_newest_first(launch: Any, clock: FakeClock) -> None:
    api = Api(launch(plan="enterprise"))
    ids = []
    for n in range(5):
        ids.append(api.scan_id(f"t{n}.example.com"))
        clock.advance(1)

    first = api.get("/scans", params={"per_page": 2}).json()
    last = api.get("/scans", params={"per_page": 2, "page": 3}).json()

    assert (first["total"], first["page"], first["per_page"], first["pages"]) == (5, 1, 2, 3)
    assert [i["id"] for i in first["items"]] == ids[::-1][:2]
    assert [i["id"] for i in last["items"]] == ids[:1]
    assert api.get("/scans").json()["per_page"] == 20
    assert_error(api.get("/scans", params={"per_page": 500}), 422, "VALIDATION_ERROR")


def test_list_filters_by_status_target_and_dates(launch: Any, clock: FakeClock) -> None:
    api = Api(launch(plan="enterprise"))
    old = api.scan_id("https://old.example.com/app")
    clock.advance(3600)
    new = api.scan_id("new.example.com")

    def ids(**params: str) -> list[str]:
        response = api.get("/scans", params=params)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert ids(status="completed") == [old] and ids(status="pending") == [new]
    assert ids(target="old.example.com") == [old]
    assert ids(target="https://NEW.example.com") == [new]
    assert ids(from_date="2026-01-15T10:30:00Z") == [new]
    assert ids(to_date="2026-01-15T10:30:00Z") == [old]
    assert ids(from_date="2026-01-15") == [new, old]
    assert_error(api.get("/scans", params={"status": "done"}), 422, "VALIDATION_ERROR")
    assert_error(api.get("/scans", params={"from_date": "yesterday"}), 422, "VALIDATION_ERROR")


# -- plans: quota, concurrency, schedules -----------------------------------------------------


def test_quota_route_is_not_captured_by_the_scan_route(api: Api) -> None:
    before = api.get("/scans/quota").json()
    api.scan_id()
    after = api.get("/scans/quota").json()

    assert before == {
        "plan": "professional",
        "monthly_limit": 150,
        "used_this_month": 0,
        "remaining": 150,
        "resets_at": "2026-02-01T00:00:00Z",
    }
    assert (after["used_this_month"], after["remaining"]) == (1, 149)


def test_professional_plan_runs_three_scans_at_once(api: Api, clock: FakeClock) -> None:
    running = [api.scan_id(f"t{n}.example.com") for n in range(3)]

    assert_error(api.start("t4.example.com"), 429, "CONCURRENT_SCAN_LIMIT")
    api.call("DELETE", f"/scans/{running[0]}")
    assert api.start("t4.example.com").status_code == 201
    assert_error(api.start("t5.example.com"), 429, "CONCURRENT_SCAN_LIMIT")
    clock.advance(3)
    assert api.start("t5.example.com").status_code == 201


def test_startup_plan_runs_one_scan_at_once(launch: Any) -> None:
    server = launch(plan="startup")
    api = Api(server, bearer(login(server)))

    api.scan_id()

    assert_error(api.start("other.example.com"), 429, "CONCURRENT_SCAN_LIMIT")
    assert api.get("/scans/quota").json()["monthly_limit"] == 25


def test_monthly_quota_is_enforced_and_reported(launch: Any, clock: FakeClock) -> None:
    api = Api(launch(used_this_month=149))

    api.scan_id()
    clock.advance(5)

    assert_error(api.start(), 403, "QUOTA_EXCEEDED")
    quota = api.get("/scans/quota").json()
    assert (quota["used_this_month"], quota["remaining"]) == (150, 0)


def test_scenario_options_configure_the_plan(launch: Any, tmp_path: Any) -> None:
    path = tmp_path / "startup.yml"
    path.write_text("extends: clean\noptions: {cyberorigen: {plan: startup}}\n", encoding="utf-8")
    server = launch(path)

    quota = Api(server, bearer(login(server))).get("/scans/quota").json()

    assert quota["plan"] == "startup"
    bad = parse_scenario({"options": {"cyberorigen": {"tier": "gold"}}}, name="bad")
    with pytest.raises(ScenarioError, match="options.cyberorigen.tier: unknown key"):
        launch(bad)


def test_schedules_routes_are_not_captured_by_the_scan_route(api: Api) -> None:
    created = api.call("POST", "/scans/schedules", json={"target": "a.example.com", "hour": 2})
    listed = api.get("/scans/schedules").json()
    deleted = api.call("DELETE", f"/scans/schedules/{created.json()['id']}")

    assert created.status_code == 201 and created.json()["id"].startswith("schedule_")
    assert listed["total"] == 1 and listed["items"][0]["target"] == "a.example.com"
    assert deleted.status_code == 204
    assert api.get("/scans/schedules").json()["total"] == 0


# -- rate limiting -----------------------------------------------------------------------------


def test_every_response_carries_rate_limit_headers(api: Api) -> None:
    responses = [
        api.get("/scans"),
        api.get("/scans/scan_missing"),
        requests.get(api.server.root_url + "/api/health", timeout=5),
        api.call("PUT", "/scans"),
    ]

    for response in responses:
        assert response.headers["X-RateLimit-Limit"] == "500"
        assert int(response.headers["X-RateLimit-Remaining"]) <= 499
        assert int(response.headers["X-RateLimit-Reset"]) == START.timestamp() + 3600
    assert responses[2].json() == {
        "status": "healthy",
        "version": "0.1.0",
        "timestamp": "2026-01-15T10:00:00Z",
    }


def test_exhausted_hourly_budget_answers_429_until_the_window_resets(
    launch: Any, clock: FakeClock
) -> None:
    api = Api(launch(rate_limit=3))

    remaining = [api.get("/scans").headers["X-RateLimit-Remaining"] for _ in range(3)]
    clock.advance(600)
    limited = api.get("/scans")
    clock.advance(3000)
    recovered = api.get("/scans")

    assert remaining == ["2", "1", "0"]
    assert_error(limited, 429, "RATE_LIMIT_EXCEEDED")
    assert limited.headers["Retry-After"] == "3000"
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert recovered.status_code == 200 and recovered.headers["X-RateLimit-Remaining"] == "2"


def test_plan_sets_the_hourly_limit(launch: Any) -> None:
    response = requests.get(launch(plan="startup").root_url + "/api/health", timeout=5)

    assert response.headers["X-RateLimit-Limit"] == "100"


def test_rate_limited_scenario_sends_429_with_retry_after_on_polls(launch: Any) -> None:
    server = launch("rate-limited")
    api = Api(server)
    scan_id = api.scan_id()

    polls = [api.get(f"/scans/{scan_id}") for _ in range(4)]

    assert [p.status_code for p in polls] == [200, 429, 429, 200]
    assert polls[1].headers["Retry-After"] == "2"
    assert_error(polls[1], 429, "RATE_LIMIT_EXCEEDED")


def test_flaky_scenario_fails_only_the_targeted_requests(launch: Any) -> None:
    server = launch("flaky")
    api = Api(server)
    scan_id = api.scan_id()

    def poll() -> int | None:
        try:
            return api.get(f"/scans/{scan_id}").status_code
        except requests.ConnectionError:
            return None

    outcomes = [poll() for _ in range(7)]

    assert outcomes == [503, 503, 200, None, 200, 200, 200]
    assert server.log.count(fault="malformed") == 1
    assert api.get(f"/scans/{scan_id}/findings").status_code == 502
    assert api.get(f"/scans/{scan_id}/findings").status_code == 200


# -- errors, hostile text, registry ------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/nothing-here", 404, "NOT_FOUND"),
        ("PUT", "/scans", 405, "METHOD_NOT_ALLOWED"),
        ("DELETE", "/scans/quota", 404, "NOT_FOUND"),
        ("GET", "/scans?page=x", 422, "VALIDATION_ERROR"),
        ("DELETE", "/scans/schedules/schedule_x", 404, "NOT_FOUND"),
    ],
)
def test_errors_have_the_detail_and_error_code_shape(
    api: Api, method: str, path: str, status: int, code: str
) -> None:
    assert_error(api.call(method, path), status, code)


def test_hostile_scenario_serves_hostile_text_as_valid_json(launch: Any, clock: FakeClock) -> None:
    api = Api(launch("hostile"))
    scan_id = api.scan_id()
    clock.advance(3)

    items = api.get(f"/scans/{scan_id}/findings").json()["items"]

    assert items and all(HOSTILE_TEXT in item["title"] for item in items)
    assert all(HOSTILE_TEXT in item["affected_component"] for item in items)


def test_registry_is_closed_and_every_emulator_plays_its_scenarios() -> None:
    assert set(EMULATORS) <= set(PROVIDER_NAMES)
    for provider, cls in EMULATORS.items():
        assert cls.provider == provider
        for name in scenarios_for(provider):
            cls(load_scenario(name, provider=provider), clock=FakeClock())


def test_sandbox_env_opens_the_sandbox(launch: Any) -> None:
    server = launch()
    env = sandbox_env("cyberorigen")
    login_env = sandbox_env("cyberorigen", "token-expiry")

    assert env == {"CYBERORIGEN_API_KEY": SANDBOX_API_KEY}
    assert Api(server, {"X-API-Key": env["CYBERORIGEN_API_KEY"]}).get("/scans").ok
    assert set(login_env) == {"CYBERORIGEN_USERNAME", "CYBERORIGEN_PASSWORD"}
    assert sandbox_env("cyberorigen", "findings") == env


def test_unknown_provider_or_option_is_a_sandbox_error() -> None:
    with pytest.raises(SandboxError, match="no sandbox emulator for provider 'acme'") as caught:
        start_sandbox("acme")
    assert "cyberorigen" in caught.value.diagnostics()
    with pytest.raises(SandboxError, match="bad option"):
        start_sandbox("cyberorigen", "clean", options={"colour": "red"})
    with pytest.raises(ScenarioError, match="'gold' is not one of"):
        start_sandbox("cyberorigen", "clean", options={"plan": "gold"})
