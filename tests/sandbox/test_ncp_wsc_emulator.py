"""The NCP WSC emulator over real HTTP, against `providers/ncp-wsc.md`, on a fake clock."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests

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
from scangate.sandbox.ncp_wsc.emulator import (
    NO_WSC_ACCESS_KEY,
    NO_WSC_SECRET_KEY,
    SANDBOX_ACCESS_KEY,
    SANDBOX_SECRET_KEY,
    sign,
)
from scangate.sandbox.ncp_wsc.jobs import STOPPING
from scangate.sandbox.scenario import parse_scenario

FLOW = [
    "URL collection pending",
    "URL collection in progress",
    "URL collection completed",
    "Diagnostics pending",
    "Diagnostics in progress",
    "Diagnostics completed",
]
"""The display strings of codes 12, 13, 14, 2, 3, 4 in order."""
KST_DATE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
SPAN = re.compile(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d~\d{4}/\d\d/\d\d \d\d:\d\d:\d\d")
JOB_BODY = {
    "StartUrl": "https://staging.example.com/",
    "ExcludeUrl": [],
    "VulnItems": ["ALL"],
    "UserAgent": "PC Chrome",
    "Speed": "1",
    "Memo": "scangate-test",
}


def signature(secret: str, method: str, uri: str, timestamp: str, key: str) -> str:
    """The test's own signer (fact sheet "Request signing")."""
    message = f"{method} {uri}\n{timestamp}\n{key}".encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


class Api:
    """A thin client that signs every request at the fake clock's time (plus `skew`)."""

    def __init__(
        self,
        server: EmulatorServer,
        clock: FakeClock,
        key: str = SANDBOX_ACCESS_KEY,
        secret: str = SANDBOX_SECRET_KEY,
    ) -> None:
        self.server, self.clock, self.key, self.secret = server, clock, key, secret
        self.skew = 0.0

    def headers(self, method: str, uri: str) -> dict[str, str]:
        stamp = str(int((self.clock.time() + self.skew) * 1000))
        return {
            "x-ncp-apigw-timestamp": stamp,
            "x-ncp-iam-access-key": self.key,
            "x-ncp-apigw-signature-v2": signature(self.secret, method, uri, stamp, self.key),
            "Content-Type": "application/json",
        }

    def call(
        self, method: str, path: str, query: str = "", body: Any = None, **extra: str
    ) -> requests.Response:
        uri = "/api/v1" + path + (f"?{query}" if query else "")
        headers = {**self.headers(method, uri), **extra}
        return requests.request(
            method, self.server.root_url + uri, json=body, headers=headers, timeout=5
        )

    def create(self, **fields: Any) -> requests.Response:
        return self.call("PUT", "/job", body={**JOB_BODY, **fields})

    def search(
        self, kind: str = "", keyword: str = "", code: Any = None, limit: int = 10, page: int = 1
    ) -> requests.Response:
        body = {
            "searchType": kind,
            "searchKeyword": keyword,
            "statusCode": code,
            "limit": limit,
            "page": page,
        }
        return self.call("POST", "/jobs/search", body=body)

    def job(self, memo: str = "scangate-test", **fields: Any) -> str:
        created = self.create(Memo=memo, **fields)
        assert created.status_code == 200, created.text
        records = self.search("memo", memo).json()["resources"]["record_data"]
        return str(records[0]["instanceNo"])

    def record(self, job: str) -> dict[str, Any]:
        records = self.search(limit=100).json()["resources"]["record_data"]
        return next(r for r in records if r["instanceNo"] == job)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def launch(clock: FakeClock) -> Iterator[Any]:
    servers: list[EmulatorServer] = []

    def factory(scenario: Any = "findings", **options: Any) -> EmulatorServer:
        server = start_sandbox("ncp-wsc", scenario, clock=clock, options=options)
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()
        assert server.errors == []


@pytest.fixture
def api(launch: Any, clock: FakeClock) -> Api:
    return Api(launch(), clock)


def assert_gateway(response: requests.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"errorCode", "message", "details"}
    assert error["errorCode"] == code and isinstance(error["errorCode"], str)
    assert error["message"] and isinstance(error["details"], str)


def assert_service(response: requests.Response, status: int, code: int) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"errorCode", "message"} and error["message"]
    assert error["errorCode"] == code  # a number, not a string


# -- signing -----------------------------------------------------------------------------------


def test_sign_matches_an_independently_computed_vector() -> None:
    # openssl dgst -sha256 -hmac SECRET -binary | base64 over the message.
    value = sign(
        "ncpSecretKeyExample0123456789abcdefghij",
        "GET",
        "/api/v1/jobs?limit=10&page=1",
        "1700000000000",
        "ncpAccessKeyExample01",
    )
    assert value == "9Vbr5SZ7boJImaVYbujiV8rrJ0ahyq5nWv91jXttcXQ="


def test_signed_requests_pass_and_the_log_hides_the_credentials(api: Api) -> None:
    response = api.search()

    assert response.status_code == 200
    assert response.json() == {
        "returnCode": "0",
        "returnDesc": "Request Success",
        "returnMessage": "Success",
        "resources": {
            "total_cnt": 0,
            "total_page_cnt": 0,
            "current_start_page": 1,
            "current_end_page": 1,
            "record_data": [],
        },
    }
    (entry,) = api.server.log.entries()
    assert entry.category == "poll" and entry.authenticated
    assert entry.headers["x-ncp-apigw-signature-v2"] == "<redacted>"
    assert entry.headers["x-ncp-iam-access-key"] == "<redacted>"


@pytest.mark.parametrize(
    "tamper",
    ["wrong-secret", "unknown-key", "no-signature", "text-timestamp", "other-method", "other-path"],
)
def test_anything_but_an_exact_signature_gets_the_gateway_401(
    api: Api, launch: Any, clock: FakeClock, tamper: str
) -> None:
    uri = "/api/v1/jobs/search"
    headers = api.headers("POST", uri)
    if tamper == "wrong-secret":
        headers = Api(api.server, clock, secret="not-the-secret").headers("POST", uri)
    elif tamper == "unknown-key":
        headers = Api(api.server, clock, key="ncp_iam_unknown").headers("POST", uri)
    elif tamper == "no-signature":
        del headers["x-ncp-apigw-signature-v2"]
    elif tamper == "text-timestamp":
        headers["x-ncp-apigw-timestamp"] = "yesterday"
    elif tamper == "other-method":
        headers = api.headers("GET", uri)
    else:
        headers = api.headers("POST", "/api/v1/jobs")
    body = {"searchType": "", "searchKeyword": "", "statusCode": None, "limit": 1, "page": 1}

    response = requests.post(api.server.root_url + uri, json=body, headers=headers, timeout=5)

    assert_gateway(response, 401, "200")
    assert response.json()["error"]["message"] == "Authentication Failed"
    assert "WWW-Authenticate" not in response.headers


def test_the_query_string_is_part_of_the_signature(api: Api) -> None:
    good = api.call("GET", "/jobs", query="limit=5&page=1")
    headers = api.headers("GET", "/api/v1/jobs")  # signed without the query
    bad = requests.get(
        api.server.root_url + "/api/v1/jobs?limit=5&page=1", headers=headers, timeout=5
    )

    assert good.status_code == 200, good.text
    assert_gateway(bad, 401, "200")


@pytest.mark.parametrize(("skew", "status"), [(299, 200), (-299, 200), (301, 401), (-301, 401)])
def test_timestamps_more_than_five_minutes_off_are_refused(
    api: Api, skew: float, status: int
) -> None:
    api.skew = skew

    assert api.search().status_code == status


@pytest.mark.parametrize(("setting", "status"), [(None, 401), (200, 200)])
def test_a_key_without_wsc_permission_gets_169201(
    launch: Any, clock: FakeClock, setting: int | None, status: int
) -> None:
    server = launch(service_error_status=setting) if setting else launch()
    denied = Api(server, clock, NO_WSC_ACCESS_KEY, NO_WSC_SECRET_KEY).search()

    assert_service(denied, status, 169201)
    assert denied.json()["error"]["message"] == "Auth Check Error"


# -- createJob ---------------------------------------------------------------------------------


def test_create_answers_the_wrapper_and_lists_a_pending_job(api: Api) -> None:
    created = api.create()
    records = api.search("memo", "scangate-test").json()["resources"]["record_data"]

    assert created.status_code == 200
    assert created.json() == {
        "returnCode": "0",
        "returnDesc": "Request Success",
        "returnMessage": "Success",
        "resources": None,
    }
    (item,) = records
    assert re.fullmatch(r"\d{10}", item["instanceNo"])
    assert KST_DATE.fullmatch(item["start_date"]) and item["start_date"] == "2026-01-15 19:00:00"
    assert item["end_date"] is None and item["progress"] is None
    assert (item["status"], item["result_button"], item["rescan_button"]) == (
        "URL collection pending",
        "",
        "impossible",
    )
    assert (item["crawl_cnt"], item["scan_cnt"]) == ("0", "0")  # string-typed numbers
    assert (item["start_url"], item["memo"], item["slave_data"]) == (
        "https://staging.example.com/",
        "scangate-test",
        None,
    )


def test_create_can_name_the_new_instance(launch: Any, clock: FakeClock) -> None:
    api = Api(launch(create_returns_id=True), clock)

    number = api.create().json()["resources"]["instanceNo"]

    assert api.record(number)["memo"] == "scangate-test"


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"StartUrl": None}, "StartUrl"),
        ({"StartUrl": "staging.example.com"}, "StartUrl"),
        ({"VulnItems": []}, "VulnItems"),
        ({"VulnItems": "ALL"}, "VulnItems"),
        ({"UserAgent": "Firefox"}, "UserAgent"),
        ({"Speed": 1}, "Speed"),
        ({"Speed": "4"}, "Speed"),
        ({"ExcludeUrl": "https://x/"}, "ExcludeUrl"),
        ({"Headers": {"X-Count": 1}}, "Headers"),
        ({"Memo": 7}, "Memo"),
        ({"MasterInstanceNo": 1234567890}, "MasterInstanceNo"),
    ],
)
def test_create_validates_the_body(api: Api, fields: dict[str, Any], words: str) -> None:
    response = api.create(**fields)

    assert_gateway(response, 400, "100")
    assert words in response.json()["error"]["details"]
    assert api.search().json()["resources"]["total_cnt"] == 0


def test_create_refuses_a_body_that_is_no_object(api: Api) -> None:
    assert_gateway(api.call("PUT", "/job", body=["StartUrl"]), 400, "100")


def test_an_unreachable_start_url_is_service_error_160353(api: Api) -> None:
    response = api.create(StartUrl="https://app.invalid/")

    assert_service(response, 400, 160353)
    assert response.json()["error"]["message"] == "URL Connection Error"


def test_rediagnosis_needs_a_completed_master_job(api: Api, clock: FakeClock) -> None:
    master = api.job(memo="first")

    early = api.create(MasterInstanceNo=master)
    clock.advance(3)
    later = api.create(MasterInstanceNo=master, Memo="second")

    assert_service(early, 400, 901)
    assert_service(api.create(MasterInstanceNo="1"), 400, 901)
    assert later.status_code == 200
    assert api.search("memo", "second").json()["resources"]["total_cnt"] == 1


# -- the state machine -------------------------------------------------------------------------


def test_a_job_crawls_then_diagnoses_then_completes(api: Api, clock: FakeClock) -> None:
    job = api.job()
    samples = []
    for _ in range(32):
        samples.append(api.record(job))
        clock.advance(0.1)

    statuses = [s["status"] for s in samples]
    assert list(dict.fromkeys(statuses)) == FLOW
    progress = [s["progress"] for s in samples if s["status"] == "Diagnostics in progress"]
    assert progress == sorted(progress) and progress[-1] < 100 and len(set(progress)) > 3
    assert all(s["progress"] is None for s in samples if s["status"] != FLOW[4])
    crawled = [int(s["crawl_cnt"]) for s in samples]
    assert crawled == sorted(crawled) and crawled[0] == 0 and crawled[-1] == 16
    done = samples[-1]
    assert (done["result_button"], done["rescan_button"], done["scan_cnt"]) == (
        "report",
        "possible",
        "5",  # the scenario's six findings less its false positive
    )
    assert done["end_date"] == "2026-01-15 19:00:03"


@pytest.mark.parametrize(
    ("advance", "code"), [(0.0, 12), (0.5, 13), (1.1, 14), (1.3, 2), (2.0, 3), (3.0, 4)]
)
def test_status_code_filters_find_the_job_in_its_state(
    api: Api, clock: FakeClock, advance: float, code: int
) -> None:
    job = api.job()
    clock.advance(advance)

    hits = {
        c: [r["instanceNo"] for r in api.search(code=c).json()["resources"]["record_data"]]
        for c in (12, 13, 14, 2, 3, 4, 5, 15, 91, 92, 93)
    }

    assert {c for c, ids in hits.items() if ids} == {code}
    assert hits[code] == [job]
    assert api.search(code=str(code)).json()["resources"]["total_cnt"] == 1  # lenient


@pytest.mark.parametrize(
    ("scenario", "text", "button", "progress"),
    [("failed", "Diagnostics failed", "cause", 40), ("cancelled", "Job stopped", "terminate", 30)],
)
def test_incomplete_scenarios_end_in_their_state(
    launch: Any, clock: FakeClock, scenario: str, text: str, button: str, progress: int
) -> None:
    api = Api(launch(scenario), clock)
    job = api.job()
    clock.advance(3)
    ending = api.record(job)["status"]
    clock.advance(STOPPING)

    item = api.record(job)
    assert ending == ("Stopping" if scenario == "cancelled" else text)
    assert (item["status"], item["result_button"], item["progress"]) == (text, button, progress)
    assert item["end_date"] is not None and item["scan_cnt"] == "0"
    assert bool(item["result_desc"]) is (scenario == "failed")
    assert_service(api.call("GET", f"/jobs/{job}/report"), 400, 901)


# -- search and paging -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"searchType": "title"}, "searchType"),
        ({"searchKeyword": None}, "searchKeyword"),
        ({"statusCode": "done"}, "statusCode"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"page": -1}, "page"),
    ],
)
def test_search_validates_its_body(api: Api, change: dict[str, Any], words: str) -> None:
    body = {"searchType": "", "searchKeyword": "", "statusCode": None, "limit": 1, "page": 1}

    response = api.call("POST", "/jobs/search", body={**body, **change})

    assert_gateway(response, 400, "100")
    assert words in response.json()["error"]["details"]


def test_search_requires_every_key(api: Api) -> None:
    response = api.call("POST", "/jobs/search", body={"searchType": "", "limit": 1, "page": 1})

    assert_gateway(response, 400, "100")
    assert response.json()["error"]["details"] == "searchKeyword, statusCode: required"


def test_search_by_url_memo_or_everything_newest_first(api: Api, clock: FakeClock) -> None:
    old = api.job(memo="run-a", StartUrl="https://old.example.com/app")
    clock.advance(1)
    new = api.job(memo="run-b", StartUrl="https://NEW.example.com/")

    def ids(kind: str, keyword: str) -> list[str]:
        records = api.search(kind, keyword).json()["resources"]["record_data"]
        return [r["instanceNo"] for r in records]

    assert ids("", "ignored") == [new, old]
    assert ids("url", "new.example.com") == [new]
    assert ids("url", "example.com") == [new, old]
    assert ids("memo", "run-a") == [old] and ids("memo", "run") == [new, old]
    assert ids("memo", "run-c") == []


def test_search_pages_with_ten_page_blocks(api: Api, clock: FakeClock) -> None:
    for n in range(25):
        api.create(Memo=f"job-{n}")
        clock.advance(0.01)

    page = api.search(limit=2, page=12).json()["resources"]
    last = api.search(limit=2, page=13).json()["resources"]

    assert (page["total_cnt"], page["total_page_cnt"]) == (25, 13)
    assert (page["current_start_page"], page["current_end_page"]) == (11, 13)
    assert [r["memo"] for r in page["record_data"]] == ["job-2", "job-1"]
    assert [r["memo"] for r in last["record_data"]] == ["job-0"]
    assert api.search(limit=2, page=3).json()["resources"]["current_end_page"] == 10


def test_get_jobs_defaults_to_twenty_a_page(api: Api) -> None:
    for n in range(25):
        api.create(Memo=f"job-{n}")

    first = api.call("GET", "/jobs").json()["resources"]
    second = api.call("GET", "/jobs", query="limit=20&page=2").json()["resources"]

    assert len(first["record_data"]) == 20 and len(second["record_data"]) == 5
    assert first["total_page_cnt"] == 2
    assert_gateway(api.call("GET", "/jobs", query="limit=x"), 400, "100")


# -- cancel and stop ---------------------------------------------------------------------------


def test_cancel_a_pending_job_freezes_it_as_cancelled(api: Api, clock: FakeClock) -> None:
    job = api.job()

    stop = api.call("PATCH", f"/jobs/{job}/stop")
    cancel = api.call("PATCH", f"/jobs/{job}/cancel")
    clock.advance(60)
    again = api.call("PATCH", f"/jobs/{job}/cancel")

    assert_service(stop, 400, 901)  # stopJob is for jobs in progress
    assert cancel.status_code == 200 and cancel.json()["resources"] is None
    item = api.record(job)
    assert (item["status"], item["result_button"]) == ("Diagnostics canceled", "cancel")
    assert api.search(code=91).json()["resources"]["total_cnt"] == 1
    assert_service(again, 400, 901)


def test_stop_a_running_job_passes_through_stopping(api: Api, clock: FakeClock) -> None:
    job = api.job()
    clock.advance(2.0)  # diagnosing

    cancel = api.call("PATCH", f"/jobs/{job}/cancel")
    stop = api.call("PATCH", f"/jobs/{job}/stop")
    stopping = api.record(job)
    clock.advance(STOPPING)
    stopped = api.record(job)
    clock.advance(60)

    assert_service(cancel, 400, 901)  # cancelJob is for jobs not started
    assert stop.status_code == 200 and stop.json()["resources"] is None
    assert stopping["status"] == "Stopping" and stopping["end_date"] is None
    assert (stopped["status"], stopped["result_button"]) == ("Job stopped", "terminate")
    assert 0 < stopped["progress"] < 100 and api.record(job) == stopped


@pytest.mark.parametrize("action", ["cancel", "stop", "report"])
def test_an_unknown_job_is_901(api: Api, action: str) -> None:
    method = "GET" if action == "report" else "PATCH"

    assert_service(api.call(method, f"/jobs/9999999999/{action}"), 400, 901)


# -- reports -----------------------------------------------------------------------------------


def test_report_has_the_documented_shape_and_odd_typing(api: Api, clock: FakeClock) -> None:
    job = api.job()
    assert_service(api.call("GET", f"/jobs/{job}/report"), 400, 901)
    clock.advance(3)

    body = api.call("GET", f"/jobs/{job}/report").json()

    assert "resources" not in body and body["returnCode"] == "0"
    report = body["resource"]
    assert SPAN.fullmatch(report["Crawl_Time"]) and SPAN.fullmatch(report["Scan_Time"])
    assert KST_DATE.fullmatch(report["report_date"])
    assert report["Memo"] == "scangate-test" and report["User_Agent"].startswith("Mozilla/5.0")
    assert report["Scanned_Domain_List"] == ["https://staging.example.com"]
    assert report["Classify_byRisk_Level"] == {"Total": 5, "High": 1, "Medium": 2, "Low": 2}
    details = report["Details"]
    assert (
        set(details)
        == set(report["Recommendation"])
        == set(report["Classify_byRisk_Vulnerability"])
    )
    assert "vulnerable-js-library" not in details  # the provider-side false positive
    assert details["server-banner"]["RiskLevel"] == "Low"  # info has no WSC level
    sqli = details["sql-injection"]
    assert sqli["RiskLevel"] == "High" and sqli["Vuln_Desc"]
    item = sqli["0"]
    assert item["URL"] == "[GET]&nbsp;&nbsp;https://staging.example.com/search?q=widgets"
    assert item["Title"] == "SQL Injection in search parameter #1" and item["newline"] == "true"
    assert item["vuln_key"] == "https://staging.example.com_sql-injection_0"
    assert item["VulnParam"] == "q" and isinstance(item["Response_Data"], list)
    assert item["Reference"] == "https://cwe.mitre.org/data/definitions/89.html"
    keys = [i["vuln_key"] for d in details.values() for k, i in d.items() if k.isdigit()]
    assert len(keys) == len(set(keys)) == 5


def test_critical_becomes_high_and_one_rule_at_two_levels_is_two_categories(
    launch: Any, clock: FakeClock
) -> None:
    scenario = parse_scenario(
        {
            "duration": 2,
            "findings": [
                {"title": "A", "rule": "xss", "severity": "critical", "url": "https://x/a"},
                {"title": "B", "rule": "xss", "severity": "low", "url": "https://x/b"},
                {"title": "C", "rule": "xss", "severity": "high", "url": "https://x/c"},
            ],
        },
        name="levels",
    )
    api = Api(launch(scenario), clock)
    job = api.job()
    clock.advance(2)

    details = api.call("GET", f"/jobs/{job}/report").json()["resource"]["Details"]

    assert {name: block["RiskLevel"] for name, block in details.items()} == {
        "xss (High)": "High",
        "xss (Low)": "Low",
    }
    assert sorted(k for k in details["xss (High)"] if k.isdigit()) == ["0", "1"]


def test_hostile_reports_are_valid_json_with_the_hostile_text(
    launch: Any, clock: FakeClock
) -> None:
    api = Api(launch("hostile"), clock)
    job = api.job()
    clock.advance(3)

    details = api.call("GET", f"/jobs/{job}/report").json()["resource"]["Details"]

    items = [i for d in details.values() for k, i in d.items() if k.isdigit()]
    assert items and all(HOSTILE_TEXT in item["URL"] for item in items)


# -- errors, faults and options ----------------------------------------------------------------


def test_unknown_routes_are_gateway_404s(api: Api) -> None:
    assert_gateway(api.call("GET", "/nothing"), 404, "300")
    assert_gateway(api.call("GET", "/jobs/search"), 404, "300")


def test_rate_limited_scenario_throttles_searches_with_retry_after(
    launch: Any, clock: FakeClock
) -> None:
    api = Api(launch("rate-limited"), clock)

    polls = [api.search() for _ in range(4)]

    assert [p.status_code for p in polls] == [200, 429, 429, 200]
    assert_gateway(polls[1], 429, "420")
    assert polls[1].headers["Retry-After"] == "2"


def test_flaky_scenario_fails_only_the_targeted_requests(launch: Any, clock: FakeClock) -> None:
    server = launch("flaky")
    api = Api(server, clock)

    def poll() -> int | None:
        try:
            return api.search().status_code
        except requests.ConnectionError:
            return None

    outcomes = [poll() for _ in range(7)]

    assert outcomes == [503, 503, 200, None, 200, 200, 200]
    assert server.log.count(fault="malformed") == 1
    job = api.job()
    clock.advance(5)
    assert_gateway(api.call("GET", f"/jobs/{job}/report"), 502, "500")
    assert api.call("GET", f"/jobs/{job}/report").status_code == 200


def test_a_401_fault_is_the_gateway_authentication_failure(launch: Any, clock: FakeClock) -> None:
    scenario = parse_scenario(
        {"extends": "clean", "faults": [{"on": "poll", "kind": "401"}]}, name="denied"
    )
    api = Api(launch(scenario), clock)

    denied, fine = api.search(), api.search()

    assert_gateway(denied, 401, "200")
    assert "WWW-Authenticate" not in denied.headers and fine.status_code == 200


def test_token_expiry_does_not_apply_without_tokens(launch: Any, clock: FakeClock) -> None:
    server = launch("token-expiry")
    api = Api(server, clock)

    assert [api.search().status_code for _ in range(5)] == [200] * 5
    assert server.log.count(fault="token-expiry") == 0


def test_throttle_option_answers_410_within_a_second(launch: Any, clock: FakeClock) -> None:
    api = Api(launch(throttle=2), clock)

    first, second, third = api.search(), api.search(), api.search()
    clock.advance(1.0)
    fourth = api.search()

    assert (first.status_code, second.status_code, fourth.status_code) == (200, 200, 200)
    assert_gateway(third, 429, "410")
    assert third.headers["Retry-After"] == "1"


@pytest.mark.parametrize(
    ("scenario", "status"), [("findings", 400), ("ncp-wsc-legacy-errors", 200)]
)
def test_api_call_fail_hits_every_nth_search(
    launch: Any, clock: FakeClock, scenario: str, status: int
) -> None:
    server = launch(scenario) if status == 200 else launch(scenario, api_call_fail=3)
    api = Api(server, clock)

    answers = [api.search() for _ in range(6)]

    assert [a.status_code for a in answers] == [200, 200, status, 200, 200, status]
    assert_service(answers[2], status, 901)


def test_lost_create_scenario_creates_the_job_and_drops_the_answer(
    launch: Any, clock: FakeClock
) -> None:
    server = launch("ncp-wsc-lost-create")
    api = Api(server, clock)

    with pytest.raises(requests.ConnectionError):
        api.create()
    second = api.create(Memo="again")

    assert api.search("memo", "scangate-test").json()["resources"]["total_cnt"] == 1
    assert second.status_code == 200
    assert server.log.count(category="start", fault="drop") == 1


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"plan": "gold"}, "options.ncp-wsc.plan: unknown key"),
        ({"service_error_status": 500}, "500 is not one of 400, 200"),
        ({"create_returns_id": "yes"}, "expected true or false"),
        ({"throttle": 0}, "expected an integer >= 1"),
        ({"api_call_fail": 1}, "expected an integer >= 2"),
    ],
)
def test_bad_scenario_options_are_scenario_errors(
    launch: Any, options: dict[str, Any], words: str
) -> None:
    scenario = parse_scenario({"options": {"ncp-wsc": options}}, name="bad")
    with pytest.raises(ScenarioError, match=re.escape(words)):
        launch(scenario)


def test_scenario_options_configure_the_emulator(
    launch: Any, clock: FakeClock, tmp_path: Any
) -> None:
    path = tmp_path / "ids.yml"
    path.write_text("extends: clean\noptions: {ncp-wsc: {create_returns_id: true}}\n")
    api = Api(launch(path), clock)

    assert api.create().json()["resources"]["instanceNo"]


def test_bundled_scenarios_and_credentials() -> None:
    names = scenarios_for("ncp-wsc")
    assert {"ncp-wsc-lost-create", "ncp-wsc-legacy-errors", "findings", "token-expiry"} <= set(
        names
    )
    assert "ncp-wsc-lost-create" not in scenarios_for("cyberorigen")
    for name in ("ncp-wsc-lost-create", "ncp-wsc-legacy-errors"):
        scenario = load_scenario(name)
        assert scenario.providers == ("ncp-wsc",) and scenario.description
    assert sandbox_env("ncp-wsc") == {
        "NCP_ACCESS_KEY": SANDBOX_ACCESS_KEY,
        "NCP_SECRET_KEY": SANDBOX_SECRET_KEY,
    }
    assert sandbox_env("ncp-wsc", "token-expiry") == sandbox_env("ncp-wsc")
