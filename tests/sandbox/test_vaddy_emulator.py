"""The VAddy emulator over real HTTP, against `providers/vaddy.md`, on a fake clock."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import requests

from scangate.sandbox import (
    EMULATORS,
    HOSTILE_TEXT,
    EmulatorServer,
    FakeClock,
    ScenarioError,
    load_scenario,
    sandbox_env,
    scenarios_for,
    start_sandbox,
)
from scangate.sandbox.runtime import REDACTED
from scangate.sandbox.scenario import parse_scenario
from scangate.sandbox.vaddy.emulator import (
    ALREADY_FINISHED,
    BAD_SCAN_TYPE,
    BUSY,
    NO_CRAWL,
    SANDBOX_AUTH_KEY,
    SANDBOX_USER,
    UNKNOWN_PROJECT,
    UNKNOWN_SCAN,
    VAddyEmulator,
)

PROJECT = "vaddy-project-1"
VADDY_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000")
SCAN_ID = re.compile(r"1-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
FINISH_KEYS = {
    "status",
    "project_id",
    "scan_id",
    "scan_count",
    "alert_count",
    "timezone",
    "start_time",
    "end_time",
    "scan_result_url",
    "complete",
    "crawl_id",
    "crawl_label",
    "scan_list",
}


class Api:
    """A thin client: `user` on every call and the key in `X-API-KEY`, as scangate sends them."""

    def __init__(self, server: EmulatorServer, key: str = SANDBOX_AUTH_KEY) -> None:
        self.server = server
        self.session = requests.Session()
        self.session.headers["X-API-KEY"] = key

    def get(self, path: str, **params: Any) -> requests.Response:
        params.setdefault("user", SANDBOX_USER)
        return self.session.get(self.server.base_url + path, params=params, timeout=5)

    def post(self, path: str, **fields: Any) -> requests.Response:
        fields.setdefault("user", SANDBOX_USER)
        return self.session.post(self.server.base_url + path, data=fields, timeout=5)

    def start(self, **fields: Any) -> requests.Response:
        return self.post("/scan", **{"action": "start", "project_id": PROJECT, **fields})

    def scan_id(self, **fields: Any) -> str:
        response = self.start(**fields)
        assert response.status_code == 200, response.text
        assert set(response.json()) == {"scan_id"}
        return str(response.json()["scan_id"])

    def result(self, scan_id: str) -> dict[str, Any]:
        response = self.get("/scan/result", scan_id=scan_id)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def running(self, project: str = PROJECT) -> int:
        response = self.get("/scan/runcheck", project_id=project)
        assert response.status_code == 200, response.text
        return int(response.json()["running_process"])


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def launch(clock: FakeClock) -> Iterator[Any]:
    servers: list[EmulatorServer] = []

    def factory(scenario: Any = "findings", **options: Any) -> EmulatorServer:
        server = start_sandbox("vaddy", scenario, clock=clock, options=options)
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()
        assert server.errors == []


@pytest.fixture
def api(launch: Any) -> Api:
    return Api(launch())


def assert_error(response: requests.Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"error_message": message}


# -- the scan state machine ([FS] "GET /v2/scan/result") ---------------------------------------


def test_a_scan_is_scanning_then_finishes_with_counts_only(api: Api, clock: FakeClock) -> None:
    scan_id = api.scan_id()
    assert SCAN_ID.fullmatch(scan_id)
    assert api.result(scan_id) == {"status": "scanning"}
    clock.advance(3)

    body = api.result(scan_id)

    assert set(body) == FINISH_KEYS
    assert (body["status"], body["project_id"], body["scan_id"]) == ("finish", PROJECT, scan_id)
    # `findings` plants six findings, one a false positive: VAddy counts the other five.
    assert (body["alert_count"], body["complete"], body["timezone"]) == (5, 100, "UTC")
    assert body["scan_result_url"] == f"https://console.vaddy.net/scan_status/1/{scan_id}"
    assert (body["crawl_id"], body["crawl_label"]) == (30, "user edit scenario label")
    assert "SQL Injection" in body["scan_list"] and "XSS" in body["scan_list"]
    assert body["scan_count"] == 11 * len(body["scan_list"])
    assert VADDY_TIME.fullmatch(body["start_time"]) and VADDY_TIME.fullmatch(body["end_time"])
    assert body["start_time"] == "2026-01-15T10:00:00+0000"
    assert body["end_time"] == "2026-01-15T10:00:03+0000"


def test_one_scan_per_project_and_runcheck_follows_it(api: Api, clock: FakeClock) -> None:
    assert api.running() == 0
    api.scan_id()

    assert api.running() == 1
    assert_error(api.start(), 400, BUSY)
    clock.advance(3)
    assert api.running() == 0
    assert api.start().status_code == 200


def test_every_new_scan_gets_a_new_id(api: Api, clock: FakeClock) -> None:
    first = api.scan_id()
    clock.advance(3)
    assert api.scan_id() != first


@pytest.mark.parametrize(
    ("scenario", "status", "complete", "alerts"),
    [
        ("clean", "finish", 100, 0),
        ("critical", "finish", 100, 2),
        ("partial", "finish", 80, 0),
        ("failed", "canceled", None, None),
        ("cancelled", "canceled", None, None),
    ],
)
def test_scenarios_end_in_vaddy_states(
    launch: Any, clock: FakeClock, scenario: str, status: str, complete: int, alerts: int
) -> None:
    api = Api(launch(scenario))
    scan_id = api.scan_id()
    clock.advance(load_scenario(scenario).duration)

    body = api.result(scan_id)

    assert body["status"] == status
    assert body.get("complete") == complete and body.get("alert_count") == alerts
    if status == "canceled":
        assert body == {"status": "canceled"}  # one "l", and nothing else ([FS])


def test_a_partial_scan_counts_fewer_requests(launch: Any, clock: FakeClock) -> None:
    api = Api(launch("partial"))
    scan_id = api.scan_id(scan_type="SQLI,XSS")
    clock.advance(2)
    body = api.result(scan_id)
    assert (body["complete"], body["scan_count"]) == (80, 22 * 80 // 100)


# -- cancel ([FS] "POST /v2/scan — cancel") ------------------------------------------------------


def test_cancel_a_running_scan_then_it_reads_canceled(api: Api, clock: FakeClock) -> None:
    scan_id = api.scan_id()
    clock.advance(1)

    response = api.post("/scan", action="cancel", scan_id=scan_id)

    assert response.status_code == 200 and response.json() == {"scan_id": scan_id}
    assert api.result(scan_id) == {"status": "canceled"}
    assert api.running() == 0
    assert_error(api.post("/scan", action="cancel", scan_id=scan_id), 400, ALREADY_FINISHED)


def test_cancel_after_finish_or_of_an_unknown_scan_is_refused(api: Api, clock: FakeClock) -> None:
    scan_id = api.scan_id()
    clock.advance(3)
    assert_error(api.post("/scan", action="cancel", scan_id=scan_id), 400, ALREADY_FINISHED)
    assert_error(api.post("/scan", action="cancel", scan_id="1-nope"), 400, UNKNOWN_SCAN)
    assert api.post("/scan", action="stop", scan_id=scan_id).status_code == 400


def test_result_of_an_unknown_scan_is_a_400(api: Api) -> None:
    assert_error(api.get("/scan/result", scan_id="1-nope"), 400, UNKNOWN_SCAN)
    assert_error(api.get("/scan/result"), 400, UNKNOWN_SCAN)


# -- start options and refusals ([FS] "POST /v2/scan — start", "Emulator notes") ----------------


def test_empty_go_vaddy_fields_are_ignored(api: Api, clock: FakeClock) -> None:
    # go-vaddy sends every field, empty when unset ([FS] "Official client behaviour").
    scan_id = api.scan_id(fqdn="", verification_code="", scan_type="", crawl_id="")
    clock.advance(3)
    body = api.result(scan_id)
    assert body["crawl_id"] == 30 and len(body["scan_list"]) == 19


def test_crawl_id_and_scan_types_choose_what_runs(api: Api, clock: FakeClock) -> None:
    scan_id = api.scan_id(crawl_id="28", scan_type="SQLI,XSS_STORE,CSRF")
    clock.advance(3)
    body = api.result(scan_id)
    assert (body["crawl_id"], body["crawl_label"]) == (28, "all-data")
    assert body["scan_list"] == ["SQL Injection", "Stored XSS", "CSRF"]


def test_start_refusals(api: Api) -> None:
    assert_error(api.start(project_id="nope"), 400, UNKNOWN_PROJECT)
    assert_error(api.start(project_id="vaddy-project-nocrawl"), 400, NO_CRAWL)
    assert_error(api.start(crawl_id="999"), 400, "This crawl_id does not exist.")
    assert_error(api.start(scan_type="SQLI,NOPE"), 400, BAD_SCAN_TYPE)
    assert api.running() == 0


def test_the_plan_limits_the_scan_types(launch: Any) -> None:
    api = Api(launch("clean", plan="starter"))
    assert_error(api.start(scan_type="SQLI,EVAL"), 400, BAD_SCAN_TYPE)
    assert api.start(scan_type="SQLI,XSS,XSS_STORE").status_code == 200


# -- credentials ([FS] "Basics", "Emulator notes") ---------------------------------------------


def test_the_key_works_as_header_or_as_auth_key(launch: Any) -> None:
    server = launch()
    as_param = Api(server, key="")
    assert as_param.get("/scan/runcheck", project_id=PROJECT, auth_key=SANDBOX_AUTH_KEY).ok
    assert Api(server).get("/scan/runcheck", project_id=PROJECT).ok


@pytest.mark.parametrize(
    ("key", "user"),
    [("wrong-key", SANDBOX_USER), (SANDBOX_AUTH_KEY, "someone-else"), ("", SANDBOX_USER)],
)
def test_a_wrong_user_or_key_gets_401_with_a_small_json_body(
    launch: Any, key: str, user: str
) -> None:
    api = Api(launch(), key=key)
    assert_error(api.get("/scan/runcheck", project_id=PROJECT, user=user), 401, "Unauthorized")
    assert_error(
        api.post("/scan", action="start", project_id=PROJECT, user=user), 401, "Unauthorized"
    )


def test_the_request_log_never_holds_the_key(launch: Any) -> None:
    server = launch()
    Api(server).get("/scan/runcheck", project_id=PROJECT)
    Api(server, key="").get("/scan/runcheck", project_id=PROJECT, auth_key=SANDBOX_AUTH_KEY)
    first, second = server.log.entries()
    assert first.headers["x-api-key"] == REDACTED and first.authenticated
    assert second.query["auth_key"] == (REDACTED,)


def test_sandbox_env_opens_the_sandbox(launch: Any) -> None:
    env = sandbox_env("vaddy")
    assert env == {"VADDY_USER": SANDBOX_USER, "VADDY_AUTH_KEY": SANDBOX_AUTH_KEY}
    assert sandbox_env("vaddy", "token-expiry") == env  # no tokens: the key is all there is
    assert Api(launch(), key=env["VADDY_AUTH_KEY"]).running() == 0


# -- busy-project ----------------------------------------------------------------------------------


def test_busy_project_is_held_by_another_scan_for_three_seconds(
    launch: Any, clock: FakeClock
) -> None:
    server = launch("busy-project")
    api = Api(server)

    assert api.running() == 1
    assert_error(api.start(), 400, BUSY)
    clock.advance(3)
    assert api.running() == 0
    ours = api.scan_id()

    assert server.log.count(category="start") == 2  # the refused one and ours: none other
    clock.advance(2)
    listed = api.get("/scan/results/list", project_number="1").json()["items"]
    assert [item["scan_id"] for item in listed][0] == ours and len(listed) == 2


def test_busy_for_can_be_set_directly(launch: Any, clock: FakeClock) -> None:
    api = Api(launch("clean", busy_for=10))
    clock.advance(9)
    assert api.running() == 1
    clock.advance(1)
    assert api.running() == 0


# -- lists and crawls ([FS] "GET /v2/crawl", "Other v2 endpoints") ------------------------------


def test_crawl_search_matches_labels_partially_newest_first(api: Api) -> None:
    everything = api.get("/crawl", project_id=PROJECT).json()
    found = api.get("/crawl", project_id=PROJECT, search_label="DATA").json()
    oldest_first = api.get("/crawl", project_id=PROJECT, sort="asc").json()

    assert (everything["total"], everything["page"], everything["limit"]) == (4, 1, 30)
    assert [item["id"] for item in everything["items"]] == [30, 29, 28, 27]
    assert everything["items"][-1]["label"] is None
    assert set(everything["items"][0]) == {"id", "label", "start", "end"}
    assert VADDY_TIME.fullmatch(everything["items"][0]["start"])
    assert [(i["id"], i["label"]) for i in found["items"]] == [(28, "all-data")]
    assert [item["id"] for item in oldest_first["items"]] == [27, 28, 29, 30]


def test_crawl_search_without_hits_or_for_an_unknown_project(api: Api) -> None:
    empty = api.get("/crawl", project_id=PROJECT, search_label="nothing").json()
    assert empty == {"total": 0, "page": 1, "limit": 30, "items": []}
    assert api.get("/crawl", project_id=PROJECT, page="2").json()["items"] == []
    assert_error(api.get("/crawl", project_id="nope"), 400, UNKNOWN_PROJECT)
    assert api.get("/crawl", project_id=PROJECT, sort="up").status_code == 400


def test_results_list_gives_finished_scans_newest_first(api: Api, clock: FakeClock) -> None:
    done = api.scan_id()
    clock.advance(3)
    stopped = api.scan_id()
    api.post("/scan", action="cancel", scan_id=stopped)
    clock.advance(1)
    running = api.scan_id()

    body = api.get("/scan/results/list", project_number="1").json()

    assert (body["project_number"], body["page"], body["limit"]) == (1, 1, 20)
    items = body["items"]
    assert [item["scan_id"] for item in items] == [stopped, done]
    assert running not in str(items)
    assert (items[0]["status"], items[0]["alert_count"], items[0]["complete"]) == (
        "Cancel",
        None,
        None,
    )
    assert (items[1]["status"], items[1]["alert_count"], items[1]["complete"]) == (
        "Complete",
        5,
        100,
    )
    assert_error(
        api.get("/scan/results/list", project_number=PROJECT), 400, "not match the Project Number"
    )


def test_crawl_delete(api: Api) -> None:
    assert api.post("/crawl/delete", project_number="1", crawl_id="29").json() == {"message": "ok"}
    assert_error(
        api.post("/crawl/delete", project_number="1", crawl_id="29"), 404, "crawl_id not found."
    )
    assert_error(
        api.post("/crawl/delete", project_number="9", crawl_id="28"), 400, "not match project"
    )
    assert [i["id"] for i in api.get("/crawl", project_id=PROJECT).json()["items"]] == [30, 28, 27]


# -- HTTP, categories, faults ---------------------------------------------------------------------


def test_routes_are_categorised_for_fault_injection_and_counting(
    launch: Any, clock: FakeClock
) -> None:
    server = launch()
    api = Api(server)
    api.get("/scan/runcheck", project_id=PROJECT)
    scan_id = api.scan_id()
    api.result(scan_id)
    api.post("/scan", action="cancel", scan_id=scan_id)
    api.get("/scan/results/list", project_number="1")
    api.get("/crawl", project_id=PROJECT)

    categories = [(entry.path, entry.category) for entry in server.log.entries()]

    assert categories == [
        ("/v2/scan/runcheck", "list"),
        ("/v2/scan", "start"),
        ("/v2/scan/result", "poll"),
        ("/v2/scan", "cancel"),  # one route, categorized by its `action` ([FS]: POST /scan)
        ("/v2/scan/results/list", "findings"),
        ("/v2/crawl", "list"),
    ]


def test_errors_are_error_message_objects(api: Api) -> None:
    assert_error(api.get("/nothing"), 404, "Not Found")
    assert_error(api.get("/scan"), 405, "Method Not Allowed")
    response = api.session.post(api.server.base_url + "/scan", json={"action": "start"}, timeout=5)
    assert response.status_code == 400 and "expected a form" in response.json()["error_message"]


def test_flaky_faults_answer_in_vaddy_shape(launch: Any) -> None:
    api = Api(launch("flaky"))
    scan_id = api.scan_id()
    response = api.get("/scan/result", scan_id=scan_id)
    assert_error(response, 503, "Service temporarily unavailable")


def test_very_fast_polling_is_tolerated(api: Api) -> None:
    # The GitHub Action polls back to back ([FS] "GitHub Action"); no rate limit applies.
    scan_id = api.scan_id()
    statuses = {api.get("/scan/result", scan_id=scan_id).status_code for _ in range(100)}
    assert statuses == {200}


def test_hostile_scenario_serves_hostile_text_as_valid_json(launch: Any, clock: FakeClock) -> None:
    api = Api(launch("hostile"))
    scan_id = api.scan_id()
    clock.advance(3)

    body = api.result(scan_id)

    assert HOSTILE_TEXT in body["scan_list"]
    assert body["crawl_label"].endswith(HOSTILE_TEXT)
    assert body["scan_result_url"].startswith("https://console.vaddy.net/scan_status/1/")
    assert HOSTILE_TEXT in body["scan_result_url"]


# -- registry and options -------------------------------------------------------------------------


def test_registry_and_scenarios() -> None:
    assert EMULATORS["vaddy"] is VAddyEmulator
    mine = set(scenarios_for("vaddy"))
    assert {"busy-project", "partial", "clean", "findings", "slow", "token-expiry"} <= mine
    assert not {"busy-project", "partial"} & set(scenarios_for("cyberorigen"))
    for name in mine:
        VAddyEmulator(load_scenario(name, provider="vaddy"), clock=FakeClock())


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"plan": "gold"}, "'gold' is not one of"),
        ({"busy_for": -1}, "busy_for: expected seconds"),
        ({"busy_for": True}, "busy_for: expected seconds"),
    ],
)
def test_bad_options_are_scenario_errors(options: dict[str, Any], words: str) -> None:
    with pytest.raises(ScenarioError, match=words):
        start_sandbox("vaddy", "clean", options=options)


def test_unknown_scenario_options_are_refused(tmp_path: Any) -> None:
    path = tmp_path / "odd.yml"
    path.write_text("extends: clean\noptions: {vaddy: {colour: red}}\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"options\.vaddy\.colour: unknown key"):
        start_sandbox("vaddy", str(path))


# -- seeded history (scenario option `history`, issue 16) --------------------------------------


def seeded(provider: str, history: Any) -> Any:
    return parse_scenario({"options": {provider: {"history": history}}}, name="history")


def seconds_between(start: str, end: str) -> float:
    pattern = "%Y-%m-%dT%H:%M:%S%z"
    return (datetime.strptime(end, pattern) - datetime.strptime(start, pattern)).total_seconds()


def test_history_seeds_finished_scans_in_the_results_list(launch: Any) -> None:
    history = [{"duration": 1800}, {"duration": 120, "status": "cancelled"}, {"duration": 1700}]
    api = Api(launch(seeded("vaddy", history)))
    body = api.get("/scan/results/list", project_number="1").json()
    items = body["items"]
    assert [item["status"] for item in items] == ["Complete", "Cancel", "Complete"]
    assert [seconds_between(i["start_time"], i["end_time"]) for i in items] == [1800, 120, 1700]
    assert all(VADDY_TIME.fullmatch(i["end_time"]) for i in items)
    # Newest first, and all of them ended before the emulator started.
    ends = [item["end_time"] for item in items]
    assert ends == sorted(ends, reverse=True)
    assert api.running() == 0
    # A new scan still starts on the project and goes on top of the list when it ends.
    assert api.scan_id()


@pytest.mark.parametrize(
    "history",
    [
        {"duration": 5},
        [{"duration": 0}],
        [{"duration": "long"}],
        [{"took": 5}],
        [{"duration": 5, "status": "odd"}],
    ],
)
def test_a_malformed_history_option_is_a_scenario_error(launch: Any, history: Any) -> None:
    with pytest.raises(ScenarioError, match="options.vaddy.history"):
        launch(seeded("vaddy", history))
