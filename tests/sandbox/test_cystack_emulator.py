"""The CyStack emulator over real HTTP, against `providers/cystack.md`, on a fake clock."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import yaml

from scangate.http import Connection
from scangate.model import ScanStatus, Severity
from scangate.policy import ProviderSettings
from scangate.providers.cystack import CyStackProvider
from scangate.providers.interface import StartAttempt
from scangate.redact import Redactor
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
from scangate.sandbox.cystack.data import SANDBOX_API_KEY, STOPPING_SECONDS, TARGETS
from scangate.sandbox.cystack.emulator import CyStackEmulator
from scangate.sandbox.scenario import parse_scenario

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "cystack"
START = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
"""FakeClock's wall time at zero."""
STAGING = "5b1e7c2a-8d4f-4e6a-9c3b-1f2e3d4c5b6a"
"""The seeded target `https://staging.example.com` (the e2e target)."""
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def asset(name: str) -> Any:
    return json.loads((ASSETS / name).read_text(encoding="utf-8"))


class Api:
    """A thin client: the sandbox base URL plus the bearer key on every call."""

    def __init__(self, server: EmulatorServer, key: str | None = SANDBOX_API_KEY) -> None:
        self.server = server
        self.session = requests.Session()
        if key is not None:
            self.session.headers["Authorization"] = f"Bearer {key}"

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, self.server.base_url + path, timeout=5, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("GET", path, **kwargs)

    def start(self, **fields: Any) -> requests.Response:
        return self.call("POST", "/scans", json={"target": STAGING, "profile": 1, **fields})

    def scan_id(self, **fields: Any) -> str:
        response = self.start(**fields)
        assert response.status_code == 201, response.text
        return response.headers["Location"].rsplit("/", 1)[1]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def launch(clock: FakeClock) -> Iterator[Any]:
    servers: list[EmulatorServer] = []

    def factory(scenario: Any = "findings", **options: Any) -> EmulatorServer:
        server = start_sandbox("cystack", scenario, clock=clock, options=options)
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()
        assert server.errors == []


@pytest.fixture
def api(launch: Any) -> Api:
    return Api(launch())


def assert_detail(response: requests.Response, status: int, detail: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"detail": detail}


# -- authentication ([FS] "Basics", "Errors") ------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "detail"),
    [
        (None, "Authentication credentials were not provided."),
        ("wrong-key", "Invalid token."),
    ],
)
def test_every_route_needs_the_bearer_key(launch: Any, key: str | None, detail: str) -> None:
    server = launch()
    for path in ("/targets", "/scans", f"/targets/{STAGING}", "/vulnerabilities"):
        response = Api(server, key).get(path)
        assert_detail(response, 401, detail)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert server.log.count(category="start") == 0


def test_basic_auth_with_the_key_is_refused(launch: Any) -> None:
    server = launch()
    response = requests.get(
        server.base_url + "/scans", headers={"Authorization": f"Basic {SANDBOX_API_KEY}"}, timeout=5
    )
    assert_detail(response, 401, "Invalid token.")


def test_sandbox_env_opens_the_sandbox(launch: Any) -> None:
    env = sandbox_env("cystack")
    assert env == {"CYSTACK_API_KEY": SANDBOX_API_KEY}
    assert sandbox_env("cystack", "token-expiry") == env  # a static key: no login set
    assert Api(launch(), env["CYSTACK_API_KEY"]).get("/targets").ok


# -- targets and pagination ([FS] "GET /targets", "Pagination") ------------------------------------


def test_targets_are_paged_ten_at_a_time_with_absolute_links(api: Api) -> None:
    first = api.get("/targets").json()
    second = api.get("/targets", params={"page": 2}).json()

    assert first["count"] == second["count"] == len(TARGETS) == 18
    assert len(first["results"]) == 10 and len(second["results"]) == 8
    assert first["previous"] is None and second["next"] is None
    nxt = urlsplit(first["next"])
    assert (nxt.scheme, nxt.netloc, nxt.path) == (
        "http",
        f"127.0.0.1:{api.server.port}",
        "/v1/targets",
    )
    assert parse_qs(nxt.query) == {"page": ["2"]}
    assert second["previous"] == f"{api.server.base_url}/targets"  # DRF drops page=1
    doc_item = asset("targets.json")["results"][0]
    assert first["results"][0] == doc_item  # the doc's own target, verbatim
    assert {r["id"] for r in first["results"]}.isdisjoint(r["id"] for r in second["results"])


def test_target_search_filter_keeps_the_query_in_links(api: Api, launch: Any) -> None:
    server = launch(page_size=2)
    body = Api(server).get("/targets", params={"q": "staging.example.com"}).json()

    assert body["count"] == 3
    assert {r["address"] for r in body["results"]} <= {
        "https://staging.example.com",
        "http://staging.example.com",
        "https://staging.example.com/admin",
    }
    assert parse_qs(urlsplit(body["next"]).query) == {"q": ["staging.example.com"], "page": ["2"]}
    both = api.get("/targets", params={"q": "https, admin"}).json()
    assert [r["address"] for r in both["results"]] == ["https://staging.example.com/admin"]


def test_duplicate_addresses_exist_to_make_a_lookup_ambiguous(api: Api) -> None:
    shop = api.get("/targets", params={"q": "shop.example.com"}).json()["results"]
    assert [r["address"] for r in shop] == ["https://shop.example.com"] * 2
    assert len({r["id"] for r in shop}) == 2


def test_ordering_and_invalid_pages(api: Api) -> None:
    pages = [api.get("/targets", params={"ordering": "-target", "page": n}) for n in (1, 2)]
    addresses = [r["address"] for p in pages for r in p.json()["results"]]
    assert addresses == sorted((t.address for t in TARGETS), reverse=True)
    assert api.get("/targets", params={"ordering": "nonsense"}).status_code == 200
    for bad in ("3", "0", "x"):
        assert_detail(api.get("/targets", params={"page": bad}), 404, "Invalid page.")


def test_target_detail_and_no_target_creation(api: Api) -> None:
    assert api.get(f"/targets/{STAGING}").json()["address"] == "https://staging.example.com"
    assert_detail(api.get("/targets/00000000-0000-4000-8000-000000000000"), 404, "Not found.")
    refused = api.call("POST", "/targets", json={"address": "https://new.example.com"})
    assert_detail(refused, 403, "You do not have permission to perform this action.")
    assert_detail(api.call("PATCH", "/targets"), 405, 'Method "PATCH" not allowed.')


# -- creating scans ([FS] "POST /scans") -------------------------------------------------------


def test_create_answers_201_with_the_location(api: Api) -> None:
    response = api.start(
        description="nightly", notification=[29], advances={"headers": {"X-Env": "ci"}}
    )

    assert response.status_code == 201
    location = response.headers["Location"]
    assert re.fullmatch(r"/v1/scans/" + UUID.pattern, location)
    body = api.get(location.removeprefix("/v1")).json()
    assert "id" not in body
    assert body["status"] == "Queued" and body["profile"] == "Full Audit"
    assert body["description"] == "nightly" and body["noti_href"] == ["/v1/notifications/29"]
    assert body["start_time"] == int(START.timestamp()) and body["stop_time"] is None
    assert body["target"] == {
        "ip": "203.0.113.10",
        "os": "Unknown",
        "id": STAGING,
        "address": "https://staging.example.com",
    }


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, {"target": ["This field is required."], "profile": ["This field is required."]}),
        (
            {"target": STAGING, "profile": 9},
            {"profile": ['Invalid pk "9" - object does not exist.']},
        ),
        (
            {"target": STAGING, "profile": "1"},
            {"profile": ["Incorrect type. Expected pk value, received str."]},
        ),
        (
            {"target": "nope", "profile": 1},
            {"target": ['Invalid pk "nope" - object does not exist.']},
        ),
        (
            {"target": STAGING, "profile": 1, "notification": [7]},
            {"notification": ['Invalid pk "7" - object does not exist.']},
        ),
        (
            {
                "target": STAGING,
                "profile": 1,
                "advances": {"authentication": {"authentication_method": "ntlm"}},
            },
            {"advances": ["authentication_method: must be one of form, cookie, basic."]},
        ),
        (["target"], {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}),
    ],
)
def test_create_validates_the_body_drf_style(api: Api, body: Any, errors: dict[str, Any]) -> None:
    response = api.call("POST", "/scans", json=body)

    assert response.status_code == 400 and response.json() == errors
    assert api.get("/scans").json()["count"] == 0


def test_create_refuses_a_body_that_is_not_json(api: Api) -> None:
    response = api.call("POST", "/scans", data="target=x")
    assert response.status_code == 400 and "detail" in response.json()


# -- the state machine ([FS] "Scan status model", "Emulator notes") --------------------------------


def test_scan_is_queued_then_running_then_stopped_with_its_vulnerabilities(
    api: Api, clock: FakeClock
) -> None:
    scan_id = api.scan_id()
    clock.advance(0.05)  # sample between the state changes, never on them
    samples = []
    for _ in range(32):
        samples.append(api.get(f"/scans/{scan_id}").json())
        clock.advance(0.1)

    statuses = [s["status"] for s in samples]
    assert statuses[:3] == ["Queued"] * 3
    assert set(statuses[3:30]) == {"Running"} and set(statuses[30:]) == {"Stopped"}
    assert all(s["vuln_href"] == [] and s["stop_time"] is None for s in samples[:30])
    done = samples[-1]
    assert done["stop_time"] == int(START.timestamp()) + 3
    assert len(done["vuln_href"]) == len(load_scenario("findings").findings)
    assert all(re.fullmatch(r"/v1/vulnerabilities/" + UUID.pattern, h) for h in done["vuln_href"])


def test_scan_list_has_no_ids_string_times_and_a_status_filter(api: Api, clock: FakeClock) -> None:
    first = api.scan_id()
    clock.advance(5)
    second = api.scan_id()

    items = api.get("/scans").json()["results"]
    assert [i["href"] for i in items] == [f"/v1/scans/{second}", f"/v1/scans/{first}"]
    assert all("id" not in i for i in items)
    assert items[1]["start_time"] == "10:00:00 15/01/2026" and items[1]["vulnerabilities"] == 6
    assert set(items[0]) == set(asset("scans_list.json")["results"][0])
    assert [
        i["href"] for i in api.get("/scans", params={"status": "Queued"}).json()["results"]
    ] == [f"/v1/scans/{second}"]
    oldest = api.get("/scans", params={"ordering": "start_time"}).json()["results"]
    assert oldest[0]["href"] == f"/v1/scans/{first}"
    invalid = api.get("/scans", params={"status": "Done"})
    assert invalid.status_code == 400 and "status" in invalid.json()
    assert api.get("/scans", params={"q": "cystack.net"}).json()["count"] == 0


def test_scan_list_pages(api: Api) -> None:
    for _ in range(12):
        api.scan_id()
    first = api.get("/scans").json()
    assert first["count"] == 12 and len(first["results"]) == 10
    assert len(api.get("/scans", params={"page": 2}).json()["results"]) == 2


def test_stop_is_a_get_that_stops_at_once_with_what_was_found(api: Api, clock: FakeClock) -> None:
    scan_id = api.scan_id()
    clock.advance(1.5)  # halfway: 3 of the 6 findings planted by now

    stopped = api.get(f"/scans/{scan_id}/stop").json()
    clock.advance(10)

    assert stopped["status"] == "Stopped" and stopped["stop_time"] == int(START.timestamp()) + 1
    later = api.get(f"/scans/{scan_id}").json()
    assert later == stopped and len(later["vuln_href"]) == 3
    assert api.get(f"/scans/{scan_id}/stop").json() == later  # unchanged once stopped
    assert api.server.log.count(category="cancel") == 2


@pytest.mark.parametrize("scenario", ["cancelled", "failed"])
def test_a_scan_stopped_on_cystacks_side_shows_stopping_first(
    launch: Any, clock: FakeClock, scenario: str
) -> None:
    api = Api(launch(scenario))
    scan_id = api.scan_id()
    clock.advance(3.0)
    stopping = api.get(f"/scans/{scan_id}").json()
    clock.advance(STOPPING_SECONDS)
    stopped = api.get(f"/scans/{scan_id}").json()

    assert stopping["status"] == "Stopping" and stopping["vuln_href"] == []
    assert stopped["status"] == "Stopped" and len(stopped["vuln_href"]) == 1
    assert stopped["stop_time"] == int(START.timestamp() + 3.0 + STOPPING_SECONDS)


def test_delete_answers_204_then_404(api: Api, clock: FakeClock) -> None:
    scan_id = api.scan_id()
    clock.advance(3)
    vuln = api.get(f"/scans/{scan_id}").json()["vuln_href"][0].removeprefix("/v1")

    response = api.call("DELETE", f"/scans/{scan_id}")

    assert response.status_code == 204 and response.content == b""
    assert_detail(api.get(f"/scans/{scan_id}"), 404, "Not found.")
    assert_detail(api.get(vuln), 404, "Not found.")


# -- vulnerabilities ([FS] "GET /vulnerabilities/{vuln_id}") ---------------------------------------


def vulnerabilities(api: Api, clock: FakeClock) -> list[dict[str, Any]]:
    scan_id = api.scan_id()
    clock.advance(3)
    hrefs = api.get(f"/scans/{scan_id}").json()["vuln_href"]
    return [api.get(href.removeprefix("/v1")).json() for href in hrefs]


def test_vulnerability_detail_has_the_documented_shape(api: Api, clock: FakeClock) -> None:
    found = vulnerabilities(api, clock)
    by_name = {v["name"]: v for v in found}

    assert all(set(v) == set(asset("vulnerability.json")) for v in found)
    sqli = by_name["SQL Injection in search parameter"]
    assert (sqli["severity"], sqli["plugin_name"], sqli["var"]) == ("High", "sql-injection", "q")
    assert sqli["urls"] == ["https://staging.example.com/search?q=widgets"]
    assert sqli["references"] == [
        {"url": "https://cwe.mitre.org/data/definitions/89.html", "title": "CWE-89"}
    ]
    assert sqli["solution"] == "Use parameterized queries for every database access."
    assert sqli["scan"]["target"] == {"id": STAGING, "address": "https://staging.example.com"}
    assert by_name["Server version disclosed"]["severity"] == "Information"
    assert by_name["Outdated jQuery library"]["false_positive"] is True
    assert {v["severity"] for v in found} <= {"High", "Medium", "Low", "Information"}
    traffic = api.get(sqli["traffic_hrefs"][0].removeprefix("/v1")).json()
    assert re.fullmatch(r"[0-9a-f]{24}", traffic["id"]) and "SQL syntax" in traffic["response"]


def test_critical_maps_to_high_because_cystack_has_no_critical(
    launch: Any, clock: FakeClock
) -> None:
    found = vulnerabilities(Api(launch("critical")), clock)
    assert [v["severity"] for v in found] == ["High", "High"]
    assert {
        "url": "https://nvd.nist.gov/vuln/detail/CVE-2021-44228",
        "title": "CVE-2021-44228",
    } in found[0]["references"]


def test_vulnerability_false_positive_can_be_updated(api: Api, clock: FakeClock) -> None:
    vuln = vulnerabilities(api, clock)[0]
    path = f"/vulnerabilities/{vuln['id']}"

    updated = api.call("PUT", path, json={"false_positive": True})

    assert updated.status_code == 200 and updated.json()["false_positive"] is True
    assert api.get(path).json()["false_positive"] is True
    assert api.call("PUT", path, json={"false_positive": "yes"}).status_code == 400


def test_vulnerability_list_filters_by_severity_and_search(api: Api, clock: FakeClock) -> None:
    vulnerabilities(api, clock)
    body = api.get("/vulnerabilities", params={"sev": "Medium"}).json()

    assert body["count"] == 2
    assert set(body["results"][0]) == set(asset("vulnerabilities_list.json")["results"][0])
    assert api.get("/vulnerabilities", params={"q": "jquery"}).json()["count"] == 1
    assert api.get("/vulnerabilities", params={"sev": "Critical"}).status_code == 400
    ranked = [
        r["severity"]
        for r in api.get("/vulnerabilities", params={"ordering": "-severity"}).json()["results"]
    ]
    assert ranked[0] == "High" and ranked[-1] == "Information"


def test_many_findings_lists_250_vulnerabilities(launch: Any, clock: FakeClock) -> None:
    api = Api(launch("many-findings"))
    scan_id = api.scan_id()
    clock.advance(3)

    hrefs = api.get(f"/scans/{scan_id}").json()["vuln_href"]
    listing = api.get("/vulnerabilities", params={"page": 25}).json()

    assert len(set(hrefs)) == 250
    assert listing["count"] == 250 and len(listing["results"]) == 10 and listing["next"] is None
    assert_detail(api.get("/vulnerabilities", params={"page": 26}), 404, "Invalid page.")


def test_hostile_text_is_served_as_valid_json(launch: Any, clock: FakeClock) -> None:
    found = vulnerabilities(Api(launch("hostile")), clock)
    assert found and all(HOSTILE_TEXT in v["name"] and HOSTILE_TEXT in v["urls"][0] for v in found)


# -- faults and options ------------------------------------------------------------------------


def test_faults_answer_in_drf_shapes(launch: Any, tmp_path: Path) -> None:
    scenario = tmp_path / "faulty.yml"
    faults = [
        {"on": "poll", "kind": "429", "retry_after": 7},
        {"on": "poll", "after": 1, "kind": "5xx", "status": 502},
    ]
    scenario.write_text(yaml.safe_dump({"extends": "findings", "faults": faults}), encoding="utf-8")
    api = Api(launch(str(scenario)))
    scan_id = api.scan_id()

    throttled = api.get(f"/scans/{scan_id}")
    failed = api.get(f"/scans/{scan_id}")

    assert_detail(throttled, 429, "Request was throttled. Expected available in 7 seconds.")
    assert throttled.headers["Retry-After"] == "7"
    assert failed.status_code == 502 and set(failed.json()) == {"detail"}
    assert api.get(f"/scans/{scan_id}").status_code == 200


def test_scenario_options_and_their_errors(launch: Any, tmp_path: Path) -> None:
    scenario = tmp_path / "opts.yml"
    scenario.write_text(
        yaml.safe_dump(
            {"extends": "clean", "options": {"cystack": {"page_size": 4, "stopping": 1}}}
        ),
        encoding="utf-8",
    )
    emulator = CyStackEmulator(load_scenario(scenario), clock=FakeClock())
    assert (emulator.page_size, emulator.stopping) == (4, 1.0)
    for options, problem in (
        ({"colour": "red"}, "unknown key"),
        ({"page_size": 0}, "page_size"),
        ({"stopping": "soon"}, "stopping"),
    ):
        scenario.write_text(
            yaml.safe_dump({"extends": "clean", "options": {"cystack": options}}), encoding="utf-8"
        )
        with pytest.raises(ScenarioError, match=problem):
            CyStackEmulator(load_scenario(scenario), clock=FakeClock())


def test_every_bundled_scenario_plays_including_the_cystack_only_one() -> None:
    names = scenarios_for("cystack")
    assert "many-findings" in names
    for name in names:
        CyStackEmulator(load_scenario(name, provider="cystack"), clock=FakeClock())
    assert "many-findings" not in scenarios_for("cyberorigen")


# -- the real adapter against the emulator, in process -----------------------------------------


def test_the_adapter_runs_a_whole_scan_against_the_emulator(launch: Any, clock: FakeClock) -> None:
    server = launch("findings")
    provider = CyStackProvider(
        settings=ProviderSettings(name="cystack"),
        env=sandbox_env("cystack"),
        connection=Connection(base_url=server.base_url, redactor=Redactor()),
    )
    target = "https://staging.example.com"
    provider.preflight(target)
    assert provider.find_running(target) is None
    attempt = StartAttempt(
        target=target, marker="scangate-feedfacefeedface", sent_at=START, known_ids=frozenset()
    )
    scan = provider.start(attempt)
    assert provider.poll(scan).status is ScanStatus.PENDING
    running = provider.find_running(target)  # its own scan now counts as running
    assert running is not None and running.scan_id == scan.scan_id
    started = provider.find_started(attempt)  # found by its marker
    assert started is not None and started.scan_id == scan.scan_id
    clock.advance(3)
    done = provider.poll(scan)
    result = provider.fetch(scan, done)

    assert done.status is ScanStatus.COMPLETED
    assert len(result.findings) == 6 and sum(f.false_positive for f in result.findings) == 1
    assert max(f.severity for f in result.findings if not f.false_positive) is Severity.HIGH
    assert server.log.count(category="start") == 1
    assert server.log.count(category="findings") == 6


# -- seeded history (scenario option `history`, issue 16) --------------------------------------


def test_history_seeds_stopped_scans_with_epoch_times_in_their_details(launch: Any) -> None:
    scenario = parse_scenario(
        {"options": {"cystack": {"history": [{"duration": 1800}, {"duration": 1750}]}}},
        name="history",
    )
    api = Api(launch(scenario))
    listed = api.get(
        "/scans",
        params={"q": "staging.example.com", "status": "Stopped", "ordering": "-start_time"},
    ).json()["results"]
    assert len(listed) == 2
    details = [api.get(item["href"].removeprefix("/v1")).json() for item in listed]
    assert [d["stop_time"] - d["start_time"] for d in details] == [1800, 1750]
    assert all(d["status"] == "Stopped" for d in details)


def test_history_for_an_unknown_address_is_a_scenario_error(launch: Any) -> None:
    scenario = parse_scenario(
        {"options": {"cystack": {"history": [{"duration": 60, "target": "https://nowhere"}]}}},
        name="bad",
    )
    with pytest.raises(ScenarioError, match="options.cystack.history"):
        launch(scenario)
