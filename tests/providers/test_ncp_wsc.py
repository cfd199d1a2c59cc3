"""The NCP WSC adapter against `responses`: signing, request shapes, states, reports, errors.

Payloads in `tests/assets/ncp-wsc/` are the shapes printed in `providers/ncp-wsc.md`. The
signatures below were computed independently, with `openssl dgst -sha256 -hmac SECRET -binary |
base64` over `"METHOD URI\\nTIMESTAMP\\nACCESSKEY"`.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from http.client import RemoteDisconnected
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests
import responses
from responses import matchers
from urllib3.exceptions import ProtocolError

from scangate.errors import (
    AmbiguousStartError,
    ExitStatus,
    ProviderAuthError,
    ProviderError,
    ProviderRateLimitError,
    ProviderUnavailableError,
    UnexpectedResponseError,
)
from scangate.model import ScanId, ScanStatus, Severity
from scangate.providers import provider_class
from scangate.providers.interface import ScanProgress, ScanRef, StartAttempt
from scangate.providers.ncp_wsc import NcpWscProvider
from scangate.providers.ncp_wsc_codes import ApiCallFailError, same_url, signature
from scangate.providers.ncp_wsc_report import split_url
from scangate.providers.paging import PagingError

from . import rig

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "ncp-wsc"
BASE = NcpWscProvider.DEFAULT_BASE_URL
ACCESS = "ncpAccessKeyExample01"
SECRET = "ncpSecretKeyExample0123456789abcdefghij"
NOW = 1_768_471_200.0
"""The fake wall clock (2026-01-15 10:00:00Z): every request carries timestamp 1768471200000."""
STAMP = "1768471200000"
SIGNED = {
    "PUT /api/v1/job": "q/t4pjy2vA8DvQvnMARXNs1LiJ59pDWszdOEB48QDRU=",
    "POST /api/v1/jobs/search": "1ArnCn83GbIEXMZ8twu0jFZBAmJPYmkaM4P8AAp0Fvc=",
    "GET /api/v1/jobs?limit=50&page=1": "CdKbM8wFzZqyl//IiX7UhYR130kcf/vD+w1618N5/io=",
    "GET /api/v1/jobs?limit=50&page=2": "difZLklBLdrI75fx8DTVyjyt40lpO/w0mwRMBvpEFNo=",
    "PATCH /api/v1/jobs/1234567890/cancel": "z26OeoBiYLeec30J8ZaMfcZdWYsPIWG8lXtXzFKN+BQ=",
    "PATCH /api/v1/jobs/1234567890/stop": "k1gMso8B2ar8DlGTUgOL/DLAKbxsv9nLP3VGhw/QZ64=",
    "GET /api/v1/jobs/1234567890/report": "y5WOJgIx0VttuyTDc50jNKxqhOQKj7nlcfDe8KWZziA=",
}
"""openssl-computed signatures at `STAMP` with `ACCESS`/`SECRET`."""
TARGET = "https://staging.example.com/"
MEMO = "scangate-0123456789abcdef"
JOB = "1234567890"
SCAN = ScanRef(scan_id=ScanId(JOB), target=TARGET, extra={"memo": MEMO})
SEARCH = f"{BASE}/jobs/search"
CREDENTIALS = "NCP_ACCESS_KEY + NCP_SECRET_KEY"


def asset(name: str) -> Any:
    """A recorded payload (a fresh copy, so a test may change it)."""
    path = ASSETS / name
    assert path.is_file(), f"missing test asset {path}"
    return copy.deepcopy(json.loads(path.read_text(encoding="utf-8")))


class Rig(rig.Rig):
    """The WSC adapter, built through the registry, on the fake clock."""

    def __init__(self, options: dict[str, Any] | None = None, secret: str = SECRET) -> None:
        env = {"NCP_ACCESS_KEY": ACCESS, "NCP_SECRET_KEY": secret}
        super().__init__("ncp-wsc", env, options, now=NOW)


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    """Every request must be registered, and every registered response used."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


@pytest.fixture
def rig() -> Rig:
    return Rig()


def signed(request_line: str) -> Any:
    """The four headers of a request signed at `STAMP` (fact sheet "Request signing")."""
    return matchers.header_matcher(
        {
            "x-ncp-apigw-timestamp": STAMP,
            "x-ncp-iam-access-key": ACCESS,
            "x-ncp-apigw-signature-v2": SIGNED[request_line],
            "Content-Type": "application/json",
        }
    )


def record(
    status: str = "Diagnostics in progress",
    *,
    job: str = JOB,
    memo: str = MEMO,
    start_url: str = TARGET,
    **fields: Any,
) -> dict[str, Any]:
    item: dict[str, Any] = asset("search.json")["resources"]["record_data"][0]
    item.update(instanceNo=job, status=status, memo=memo, start_url=start_url, end_date=None)
    item.update(progress=None, result_button="", rescan_button="impossible")
    item.update(fields)
    return item


def listing(*records: dict[str, Any], pages: int = 1, total: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = asset("search.json")
    body["resources"].update(
        total_cnt=len(records) if total is None else total,
        total_page_cnt=pages,
        record_data=list(records),
    )
    return body


def add_search(
    mock: responses.RequestsMock,
    kind: str,
    keyword: str,
    code: int | None,
    *records: dict[str, Any],
    page: int = 1,
    pages: int = 1,
) -> Any:
    body = {"searchType": kind, "searchKeyword": keyword, "statusCode": code, "limit": 50}
    return mock.post(
        SEARCH,
        json=listing(*records, pages=pages),
        match=[
            signed("POST /api/v1/jobs/search"),
            matchers.json_params_matcher({**body, "page": page}, strict_match=True),
        ],
    )


def attempt(known: frozenset[str] = frozenset()) -> StartAttempt:
    sent = datetime(2026, 1, 15, 10, 0, 0, tzinfo=UTC)
    return StartAttempt(target=TARGET, marker=MEMO, sent_at=sent, known_ids=known)


def progress(status: ScanStatus, **fields: Any) -> ScanProgress:
    return ScanProgress(status=status, raw_status=status.value, **fields)


# Declarations.


def test_registry_names_this_class_with_its_documented_facts() -> None:
    cls = provider_class("ncp-wsc")
    assert cls is NcpWscProvider
    assert cls.DEFAULT_BASE_URL == "https://wsc.apigw.ntruss.com/api/v1"
    assert [spec.variables for spec in cls.credentials] == [("NCP_ACCESS_KEY", "NCP_SECRET_KEY")]
    assert [spec.secret for spec in cls.credentials] == [{"NCP_SECRET_KEY"}]
    caps = cls.capabilities
    assert (caps.progress, caps.eta, caps.cancel, caps.attach) == (True, False, True, True)
    assert (caps.rate_limit_headers, caps.per_finding_detail, caps.runcheck) == (False, True, False)
    assert {h.lower() for h in NcpWscProvider.secret_headers} == {
        "x-ncp-apigw-signature-v2",
        "x-ncp-iam-access-key",
    }


@pytest.mark.parametrize(
    ("options", "valid"),
    [
        ({}, True),
        (
            {
                "vuln_items": ["XSS", "SQL Injection"],
                "user_agent": "iPhone",
                "speed": 3,
                "exclude_urls": ["https://staging.example.com/logout"],
                "headers": {"Accept-Language": "ko-KR"},
                "master_instance_no": "1234567890",
            },
            True,
        ),
        ({"speed": "2", "master_instance_no": 42}, True),
        ({"speed": 4}, False),
        ({"user_agent": "Firefox"}, False),
        ({"vuln_items": []}, False),
        ({"vuln_items": "ALL"}, False),
        ({"headers": {"X-Count": 1}}, False),
        ({"master_instance_no": "job-1"}, False),
        ({"memo": "mine"}, False),
    ],
)
def test_options_schema(options: dict[str, Any], valid: bool) -> None:
    schema = NcpWscProvider.options_schema
    jsonschema.Draft202012Validator.check_schema(schema)
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(options))
    assert (not errors) is valid
    props = schema["properties"]
    assert props["vuln_items"]["default"] == ["ALL"]
    assert (props["user_agent"]["default"], props["speed"]["default"]) == ("PC Chrome", "1")


# Signing (fact sheet "Request signing").


def test_signature_matches_an_independently_computed_vector_with_a_query() -> None:
    value = signature(SECRET, "GET", "/api/v1/jobs?limit=10&page=1", "1700000000000", ACCESS)
    assert value == "9Vbr5SZ7boJImaVYbujiV8rrJ0ahyq5nWv91jXttcXQ="


def test_signature_covers_method_uri_timestamp_and_key() -> None:
    base = signature(SECRET, "PUT", "/api/v1/job", STAMP, ACCESS)
    assert base == SIGNED["PUT /api/v1/job"]
    variants = [
        signature(SECRET, "POST", "/api/v1/job", STAMP, ACCESS),
        signature(SECRET, "PUT", "/api/v1/jobs", STAMP, ACCESS),
        signature(SECRET, "PUT", "/api/v1/job", "1768471200001", ACCESS),
        signature(SECRET, "PUT", "/api/v1/job", STAMP, ACCESS + "x"),
        signature(SECRET + "x", "PUT", "/api/v1/job", STAMP, ACCESS),
    ]
    assert base not in variants and len(set(variants)) == len(variants)


def test_every_request_is_signed_for_its_own_uri_and_time(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    add_search(mock, "memo", MEMO, None, record())
    add_search(mock, "memo", MEMO, 3, record())
    mock.patch(
        f"{BASE}/jobs/{JOB}/stop",
        json=asset("success_null.json"),
        match=[signed("PATCH /api/v1/jobs/1234567890/stop")],
    )
    later = "1768471260000"
    mock.get(
        f"{BASE}/jobs",
        json=listing(record()),
        match=[
            matchers.header_matcher(
                {
                    "x-ncp-apigw-timestamp": later,
                    "x-ncp-apigw-signature-v2": signature(
                        SECRET, "GET", "/api/v1/jobs?limit=50&page=1", later, ACCESS
                    ),
                }
            ),
            matchers.query_string_matcher("limit=50&page=1"),
        ],
    )
    rig.provider.poll(SCAN)
    rig.provider.cancel(SCAN, None)
    rig.clock.now += 60
    rig.provider.attach(JOB, TARGET)
    assert SECRET in rig.registered
    for call in mock.calls:
        assert (
            SECRET not in str(call.request.headers) and "Authorization" not in call.request.headers
        )


# Starting (fact sheet "createJob").


def test_start_sends_the_documented_defaults_and_the_memo(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    body = {
        "StartUrl": TARGET,
        "ExcludeUrl": [],
        "VulnItems": ["ALL"],
        "UserAgent": "PC Chrome",
        "Speed": "1",
        "Memo": MEMO,
    }
    put = mock.put(
        f"{BASE}/job",
        json={**asset("success_null.json"), "resources": {"instanceNo": 1234567890}},
        match=[signed("PUT /api/v1/job"), matchers.json_params_matcher(body, strict_match=True)],
    )
    ref = rig.provider.start(attempt())
    assert (ref.scan_id, ref.target, ref.extra["memo"]) == (JOB, TARGET, MEMO)
    assert put.call_count == 1


def test_start_sends_every_option_with_string_speed(mock: responses.RequestsMock) -> None:
    rig = Rig(
        {
            "vuln_items": ["XSS", "SQL Injection"],
            "user_agent": "Android",
            "speed": 2,
            "exclude_urls": ["https://staging.example.com/logout"],
            "headers": {"Accept-Language": "ko-KR"},
            "master_instance_no": 987654321,
        }
    )
    body = {
        "StartUrl": TARGET,
        "ExcludeUrl": ["https://staging.example.com/logout"],
        "VulnItems": ["XSS", "SQL Injection"],
        "UserAgent": "Android",
        "Speed": "2",
        "Memo": MEMO,
        "Headers": {"Accept-Language": "ko-KR"},
        "MasterInstanceNo": "987654321",
    }
    mock.put(
        f"{BASE}/job",
        json={**asset("success_null.json"), "resources": [{"instanceNo": "1234567890"}]},
        match=[matchers.json_params_matcher(body, strict_match=True)],
    )
    assert rig.provider.start(attempt()).scan_id == JOB


def test_start_finds_the_job_by_memo_when_the_answer_names_none(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    put = mock.put(f"{BASE}/job", json=asset("success_null.json"))
    other = record(job="1111111111", memo=MEMO + "-other")
    add_search(mock, "memo", MEMO, None, other, record(start_date="2026-01-15 19:00:01"))
    ref = rig.provider.start(attempt())
    assert (ref.scan_id, ref.extra["memo"]) == (JOB, MEMO)
    assert ref.created_at == datetime(2026, 1, 15, 10, 0, 1, tzinfo=UTC)  # KST - 9 h
    assert put.call_count == 1


def test_start_never_sends_a_second_create_when_the_job_stays_invisible(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    put = mock.put(f"{BASE}/job", json=asset("success_null.json"))
    searches = [add_search(mock, "memo", MEMO, None) for _ in range(3)]
    with pytest.raises(ProviderError) as err:
        rig.provider.start(attempt())
    assert type(err.value) is ProviderError  # not ambiguous: the runner must not start again
    assert "billed" in err.value.message and MEMO in err.value.diagnostics()
    assert put.call_count == 1 and all(s.call_count == 1 for s in searches)
    assert rig.sleeps == [2.0, 2.0]


@pytest.mark.parametrize(
    "reply",
    [
        {
            "body": requests.exceptions.ConnectionError(
                ProtocolError("Connection aborted.", RemoteDisconnected("closed without response"))
            )
        },
        {"body": requests.exceptions.ReadTimeout("read timed out")},
        {"status": 502, "json": {"error": {"errorCode": "500", "message": "Endpoint Error"}}},
        {"status": 200, "body": "<html>proxy page</html>"},
        {"status": 200, "json": asset("error_901.json")},
        {"status": 400, "json": {"error": {"errorCode": "901", "message": "API Call Fail"}}},
    ],
    ids=["dropped", "read-timeout", "502", "not-json", "901-http-200", "901-http-400"],
)
def test_ambiguous_create_is_sent_exactly_once(
    mock: responses.RequestsMock, rig: Rig, reply: dict[str, Any]
) -> None:
    put = mock.put(f"{BASE}/job", **reply)
    with pytest.raises(AmbiguousStartError) as err:
        rig.provider.start(attempt())
    assert put.call_count == 1
    assert err.value.exit_status == ExitStatus.PROVIDER_ERROR


@pytest.mark.parametrize(
    ("status", "body", "error", "words"),
    [
        (
            400,
            {"error": {"errorCode": 160353, "message": "URL Connection Error"}},
            ProviderError,
            "servers created on NCP",
        ),
        (
            200,
            {"error": {"errorCode": "160353", "message": "URL Connection Error"}},
            ProviderError,
            "scan.target",
        ),
        (
            400,
            {"error": {"errorCode": "100", "message": "Bad Request Exception"}},
            ProviderError,
            "",
        ),
        (
            429,
            {"error": {"errorCode": "410", "message": "Throttle Limited"}},
            ProviderRateLimitError,
            "",
        ),
        (401, asset("error_gateway_401.json"), ProviderAuthError, CREDENTIALS),
        (
            401,
            {"error": {"errorCode": 169201, "message": "Auth Check Error"}},
            ProviderAuthError,
            "WSC permissions",
        ),
    ],
    ids=["160353", "160353-http-200", "bad-request", "throttled", "401", "169201"],
)
def test_refused_create_is_a_clear_error_and_not_retried(
    mock: responses.RequestsMock,
    rig: Rig,
    status: int,
    body: dict[str, Any],
    error: type[ProviderError],
    words: str,
) -> None:
    put = mock.put(f"{BASE}/job", status=status, json=body)
    with pytest.raises(ProviderError) as err:
        rig.provider.start(attempt())
    assert type(err.value) is error
    assert words in err.value.diagnostics()
    assert put.call_count == 1


def test_find_started_matches_the_exact_memo(mock: responses.RequestsMock, rig: Rig) -> None:
    longer = record(job="2222222222", memo=MEMO + "x")
    add_search(mock, "memo", MEMO, None, longer, record())
    found = rig.provider.find_started(attempt())
    assert found is not None and (found.scan_id, found.target) == (JOB, TARGET)


def test_find_started_returns_none_after_searching_a_while(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    searches = [add_search(mock, "memo", MEMO, None) for _ in range(3)]
    assert rig.provider.find_started(attempt()) is None
    assert [s.call_count for s in searches] == [1, 1, 1]
    assert rig.sleeps == [2.0, 2.0]


def test_find_started_raises_when_the_lookup_fails(mock: responses.RequestsMock, rig: Rig) -> None:
    search = mock.post(SEARCH, status=503, json={"error": {"errorCode": "500", "message": "x"}})
    with pytest.raises(ProviderError) as err:
        rig.provider.find_started(attempt())
    assert err.value.exit_status == ExitStatus.PROVIDER_ERROR
    assert search.call_count == 5


def test_search_pages_until_the_job_is_found(mock: responses.RequestsMock, rig: Rig) -> None:
    others = [record(job=f"90000000{n:02}", memo=MEMO) for n in range(50)]
    add_search(mock, "memo", MEMO, None, *others, pages=3)
    add_search(mock, "memo", MEMO, None, record(), page=2, pages=3)
    assert rig.provider.find_started(attempt(frozenset(r["instanceNo"] for r in others)))


def test_the_search_has_no_page_cap(mock: responses.RequestsMock, rig: Rig) -> None:
    """A running job of the target on page 130 of 130 is found."""

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        number = json.loads(request.body)["page"]
        records = [
            record(job=f"7{number:04}{n:02}", start_url=f"{TARGET}other/{n}") for n in range(50)
        ]
        if number == 130:
            records[-1] = record()
        return 200, {}, json.dumps(listing(*records, pages=130, total=6500))

    mock.add_callback(responses.POST, SEARCH, callback=answer)
    found = rig.provider.find_running(TARGET)
    assert found is not None and found.scan_id == JOB
    assert len(mock.calls) == 130


def test_a_search_ignoring_the_page_is_a_provider_error(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    others = [record(job=f"90000000{n:02}", memo=MEMO) for n in range(50)]
    add_search(mock, "memo", MEMO, None, *others, pages=3)
    add_search(mock, "memo", MEMO, None, *others, page=2, pages=3)
    with pytest.raises(PagingError) as err:
        rig.provider.find_started(attempt(frozenset(r["instanceNo"] for r in others)))
    assert err.value.exit_status == ExitStatus.PROVIDER_ERROR
    assert "job search: the list does not end (page 2 repeats page 1)" in err.value.message


# Running jobs (fact sheet "searchJobs": records carry no numeric state).


def test_find_running_searches_each_active_state_for_the_same_start_url(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    host = "staging.example.com"
    add_search(
        mock, "url", host, 12, record(job="1", start_url="https://staging.example.com/admin")
    )
    add_search(mock, "url", host, 13, record(start_url="HTTPS://Staging.Example.com:443"))
    found = rig.provider.find_running(TARGET)
    assert found is not None and found.scan_id == JOB and found.extra["memo"] == MEMO
    add_search(mock, "memo", MEMO, 13, record("URL collection in progress"))
    assert rig.provider.poll(found).phase == "crawling"  # the state found is asked first


def test_find_running_none(mock: responses.RequestsMock, rig: Rig) -> None:
    for code in (12, 13, 14, 2, 3):
        add_search(mock, "url", "staging.example.com", code)
    assert rig.provider.find_running(TARGET) is None


# Polling.


def test_first_poll_reads_the_record_then_confirms_its_status_code(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    add_search(mock, "memo", MEMO, None, record(progress="45"))
    add_search(mock, "memo", MEMO, 3, record(progress="46"))
    add_search(mock, "memo", MEMO, 3, record(progress=47))
    first = rig.provider.poll(SCAN)
    second = rig.provider.poll(SCAN)
    assert (first.status, first.raw_status, first.phase) == (
        ScanStatus.RUNNING,
        "3 Diagnostics in progress",
        "diagnosing",
    )
    assert (first.progress, second.progress) == (46.0, 47.0)
    assert len(mock.calls) == 3  # the second poll asks about the known state only


def test_a_change_of_state_is_found_through_the_hint(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    add_search(mock, "memo", MEMO, None, record("URL collection pending"))
    add_search(mock, "memo", MEMO, 12, record("URL collection pending"))
    add_search(mock, "memo", MEMO, 12)
    done = record("Diagnostics completed", result_button="report", end_date="2026-01-15 19:10:00")
    add_search(mock, "memo", MEMO, None, done)
    add_search(mock, "memo", MEMO, 4, done)
    assert rig.provider.poll(SCAN).status is ScanStatus.PENDING
    finished = rig.provider.poll(SCAN)
    assert (finished.status, finished.completeness, finished.progress) == (
        ScanStatus.COMPLETED,
        100,
        None,
    )


def test_localised_status_strings_are_resolved_by_status_code(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    korean = record("URL 수집 중")
    add_search(mock, "memo", MEMO, None, korean)
    add_search(mock, "memo", MEMO, 12)
    add_search(mock, "memo", MEMO, 13, korean)
    add_search(mock, "memo", MEMO, 13, korean)
    polled = rig.provider.poll(SCAN)
    assert (polled.status, polled.raw_status) == (ScanStatus.RUNNING, "13 URL 수집 중")
    rig.provider.poll(SCAN)


def test_an_undocumented_state_keeps_waiting_without_probing_again(
    mock: responses.RequestsMock, rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    odd = record("Archived")
    add_search(mock, "memo", MEMO, None, odd)
    for code in (12, 13, 14, 2, 3, 4, 5, 15, 91, 92, 93):
        add_search(mock, "memo", MEMO, code)
    add_search(mock, "memo", MEMO, None, odd)
    with caplog.at_level(logging.WARNING, logger="scangate.providers.ncp_wsc"):
        first = rig.provider.poll(SCAN)
        second = rig.provider.poll(SCAN)
    assert first.status is second.status is ScanStatus.RUNNING
    assert first.raw_status == "Archived"
    assert len(mock.calls) == 13
    assert "undocumented" in caplog.text


def test_a_job_that_disappears_is_an_unexpected_response(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    add_search(mock, "memo", MEMO, None)
    with pytest.raises(UnexpectedResponseError, match="no longer lists job 1234567890"):
        rig.provider.poll(SCAN)


@pytest.mark.parametrize(
    ("code", "text", "button", "status", "words", "completeness"),
    [
        (5, "Diagnostics failed", "cause", ScanStatus.FAILED, "diagnosis failed", 40),
        (15, "URL collection failed", "cause", ScanStatus.FAILED, "crawl) failed", 0),
        (91, "Diagnostics canceled", "cancel", ScanStatus.CANCELLED, "cancelled", 40),
        (92, "Stopping", "", ScanStatus.CANCELLED, "being stopped", 40),
        (93, "Job stopped", "terminate", ScanStatus.CANCELLED, "stopped", 40),
    ],
)
def test_every_ending_state(
    mock: responses.RequestsMock,
    rig: Rig,
    code: int,
    text: str,
    button: str,
    status: ScanStatus,
    words: str,
    completeness: int,
) -> None:
    ended = record(text, result_button=button, progress="40", result_desc="Target unreachable")
    add_search(mock, "memo", MEMO, None, ended)
    add_search(mock, "memo", MEMO, code, ended)
    polled = rig.provider.poll(SCAN)
    assert polled.status is status and polled.status.terminal
    assert words in polled.message and "Target unreachable" in polled.message
    assert polled.completeness == completeness
    assert polled.progress is None


@pytest.mark.parametrize(
    ("raw", "value"), [("150", 100.0), ("-3", 0.0), ("n/a", None), (True, None)]
)
def test_progress_is_clamped_and_lenient(
    mock: responses.RequestsMock, rig: Rig, raw: Any, value: float | None
) -> None:
    add_search(mock, "memo", MEMO, None, record(progress=raw))
    add_search(mock, "memo", MEMO, 3, record(progress=raw))
    assert rig.provider.poll(SCAN).progress == value


def test_poll_without_memo_searches_by_host(mock: responses.RequestsMock, rig: Rig) -> None:
    bare = ScanRef(scan_id=ScanId(JOB), target="https://Staging.example.com/app")
    add_search(mock, "url", "staging.example.com", None, record(job="1"), record())
    add_search(mock, "url", "staging.example.com", 3, record())
    assert rig.provider.poll(bare).status is ScanStatus.RUNNING


# Attaching (`scangate wait --scan-id`) through getJobs.


def test_attach_pages_through_get_jobs_with_a_signed_query(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    first = [record(job=f"77777777{n:02}", memo="") for n in range(50)]
    mock.get(
        f"{BASE}/jobs",
        json=listing(*first, pages=2),
        match=[
            signed("GET /api/v1/jobs?limit=50&page=1"),
            matchers.query_string_matcher("limit=50&page=1"),
        ],
    )
    mock.get(
        f"{BASE}/jobs",
        json=listing(record(), pages=2),
        match=[
            signed("GET /api/v1/jobs?limit=50&page=2"),
            matchers.query_string_matcher("limit=50&page=2"),
        ],
    )
    ref = rig.provider.attach(JOB, TARGET)
    assert (ref.scan_id, ref.extra["memo"]) == (JOB, MEMO)


def test_attach_to_an_unknown_job_says_so(mock: responses.RequestsMock, rig: Rig) -> None:
    mock.get(f"{BASE}/jobs", json=listing(record(job="1")))
    with pytest.raises(ProviderError, match="lists no job 1234567890"):
        rig.provider.attach(JOB, TARGET)


# Reports (fact sheet "getReport").


def test_fetch_maps_the_documented_report(mock: responses.RequestsMock, rig: Rig) -> None:
    ended = record(
        "Diagnostics completed",
        result_button="report",
        start_date="2024-07-09 15:37:04",
        end_date="2024-07-09 15:39:54",
        crawl_cnt="12",
        scan_cnt="1",
    )
    add_search(mock, "memo", MEMO, None, ended)
    add_search(mock, "memo", MEMO, 4, ended)
    mock.get(
        f"{BASE}/jobs/{JOB}/report",
        json=asset("report.json"),
        match=[signed("GET /api/v1/jobs/1234567890/report")],
    )
    done = rig.provider.poll(SCAN)
    result = rig.provider.fetch(SCAN, done)
    (finding,) = result.findings
    assert (result.provider, result.scanner, result.scan_id) == (
        "ncp-wsc",
        "NAVER Cloud Web Security Checker",
        JOB,
    )
    assert result.complete and result.status is ScanStatus.COMPLETED
    assert result.scanner_version == "API v1"  # the report names no engine version
    assert result.started_at == datetime(2024, 7, 9, 6, 37, 4, tzinfo=UTC)
    assert result.finished_at == datetime(2024, 7, 9, 6, 39, 54, tzinfo=UTC)
    assert (finding.rule_id, finding.title, finding.severity) == ("XSS", "XSS #1", Severity.LOW)
    assert (finding.method, finding.url) == ("GET", "http://your-domain/....(omitted)")
    assert finding.response == "Allow: POST,OPTIONS,HEAD,GET"
    assert finding.request == "GET http://your-domain/....(omitted)"
    assert finding.remediation.startswith("The value entered from the user is in the predictable")
    assert finding.description.startswith("Cross-site scripting (XSS)")
    assert "- The value entered from the user is in the correct range" in finding.description
    assert finding.description.endswith("WSC vuln_key: http://your-domain_XSS_0")
    assert result.details["reported_total"] == "1" and result.details["findings_parsed"] == "1"
    assert result.details["urls_crawled"] == "12"
    assert result.details["scan_time"] == "2024/07/08 13:12:27~2024/07/08 13:15:10"


def rich_report() -> dict[str, Any]:
    """A report with every oddity: plural key, string counts, stray keys, bad categories."""
    sqli = {
        "RiskLevel": "High",
        "Vuln_Desc": "SQL injection lets an attacker run queries.",
        "Vuln_Desc2": "",
        "10": {"Title": "SQL Injection #11", "vuln_key": "d_SQLi_10", "URL": "/eleventh"},
        "2": {
            "Title": "SQL Injection #3",
            "vuln_key": "d_SQLi_2",
            "URL": "[POST]&nbsp;&nbsp;https://staging.example.com/login?next=/a&amp;b=1",
            "Request_Header": "POST /login?next=/a&b=1 HTTP/1.1\nHost: staging.example.com",
            "Referer": "https://staging.example.com/",
            "Request_Body": "user=admin&pass=x",
            "newline": "false",
            "VulnParam": "user",
            "VulnSTR": "' OR '1'='1",
            "Response_Data": ["HTTP/1.1 500 Internal Server Error", "", "SQL syntax error"],
            "Description": "Boolean-based blind.",
            "Reference": "https://owasp.org/a\nhttps://cwe.mitre.org/data/definitions/89.html",
        },
        "0": {"Title": "SQL Injection #1", "vuln_key": "d_SQLi_0", "URL": "[get] http://x/p?id=1"},
        "1": {"Title": "SQL Injection #1 again", "vuln_key": "d_SQLi_0", "URL": "[GET] http://x/q"},
        "3": "not an object",
        "x4": {"Title": "not numbered", "vuln_key": "d_SQLi_x", "URL": "[GET] http://x/x"},
    }
    cookie = {"RiskLevel": "Severe", "0": {"Title": "C #1"}, "1": {"Title": "C #2"}}
    return {
        "returnCode": 0,
        "resources": {
            "Classify_byRisk_Level": {"Total": "6", "High": "4", "Medium": "0", "Low": "2"},
            "Details": {"SQL Injection": sqli, "Cookie": cookie, "Broken": ["x"]},
            "Recommendation": {"SQL Injection": "Use bound parameters."},
        },
    }


def test_fetch_walks_numbered_keys_only_and_keeps_going_past_bad_items(
    mock: responses.RequestsMock, rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    mock.get(f"{BASE}/jobs/{JOB}/report", json=rich_report())
    with caplog.at_level(logging.WARNING, logger="scangate.providers.ncp_wsc"):
        result = rig.provider.fetch(SCAN, progress(ScanStatus.COMPLETED))
    titles = [f.title for f in result.findings]
    assert titles == ["SQL Injection #1", "SQL Injection #3", "SQL Injection #11"]
    assert {f.severity for f in result.findings} == {Severity.HIGH}
    assert {f.rule_id for f in result.findings} == {"SQL Injection"}
    first, third, eleventh = result.findings
    assert (first.method, first.url) == ("GET", "http://x/p?id=1")
    assert (eleventh.method, eleventh.url) == ("", "/eleventh")
    assert (third.method, third.url) == ("POST", "https://staging.example.com/login?next=/a&b=1")
    assert third.parameter == "user"
    assert third.request == (
        "POST /login?next=/a&b=1 HTTP/1.1\nHost: staging.example.com\n"
        "Referer: https://staging.example.com/\n\nuser=admin&pass=x\n\n"
        "WSC payload in user: ' OR '1'='1"
    )
    assert third.response == "HTTP/1.1 500 Internal Server Error\n\nSQL syntax error"
    assert third.references == (
        "https://owasp.org/a",
        "https://cwe.mitre.org/data/definitions/89.html",
    )
    assert third.remediation == "Use bound parameters."
    assert "Boolean-based blind." in third.description
    assert result.details["findings_skipped"] == "3"  # two unrated, one not an object
    assert result.details["reported_total"] == "6"
    assert "Severe" in caplog.text and "Broken" in caplog.text


def test_fetch_without_details_is_an_empty_report(mock: responses.RequestsMock, rig: Rig) -> None:
    report = asset("report.json")
    del report["resource"]["Details"]
    resource = report["resource"]
    resource["Classify_byRisk_Level"] = {"Total": 0, "High": 0, "Medium": 0, "Low": 0}
    resource["Classify_byRisk_Vulnerability"] = {}
    mock.get(f"{BASE}/jobs/{JOB}/report", json=report)
    result = rig.provider.fetch(SCAN, progress(ScanStatus.COMPLETED))
    assert result.findings == () and result.complete


def test_a_report_listing_fewer_findings_than_it_counts_is_incomplete(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    """The sample report counts one Low XSS; without `Details` none is listed."""
    report = asset("report.json")
    del report["resource"]["Details"]
    mock.get(f"{BASE}/jobs/{JOB}/report", json=report)
    result = rig.provider.fetch(SCAN, progress(ScanStatus.COMPLETED))
    assert result.findings == () and not result.complete
    name = "NAVER Cloud Web Security Checker"
    assert result.shortfall == (
        f"{name} announced 1 findings but 0 were fetched; "
        f"{name} announced 1 findings of low severity or above but 0 were fetched; "
        f"{name} announced 1 findings in category 'XSS' but 0 were fetched"
    )


def test_the_job_search_count_is_checked_too(mock: responses.RequestsMock, rig: Rig) -> None:
    """`scan_cnt` of the job's search record is an announced count as well."""
    add_search(mock, "memo", MEMO, None, record("Diagnostics completed", scan_cnt="3"))
    add_search(mock, "memo", MEMO, 4, record("Diagnostics completed", scan_cnt="3"))
    mock.get(f"{BASE}/jobs/{JOB}/report", json=asset("report.json"))
    done = rig.provider.poll(SCAN)
    result = rig.provider.fetch(SCAN, done)
    assert len(result.findings) == 1
    assert result.shortfall.startswith(
        "NAVER Cloud Web Security Checker announced 3 findings but 1 were fetched"
    )


@pytest.mark.parametrize(
    "body",
    [
        {"returnCode": "0", "resource": {"Details": "none"}},
        {"returnCode": "0", "resource": None},
        {"returnCode": "0", "resource": ["not", "an", "object"]},
    ],
)
def test_fetch_of_an_unusable_report_fails_loudly(
    mock: responses.RequestsMock, rig: Rig, body: dict[str, Any]
) -> None:
    mock.get(f"{BASE}/jobs/{JOB}/report", json=body)
    with pytest.raises(UnexpectedResponseError):
        rig.provider.fetch(SCAN, progress(ScanStatus.COMPLETED))


def test_fetch_of_a_report_refused_with_901_retries_then_fails(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    get = mock.get(f"{BASE}/jobs/{JOB}/report", json=asset("error_901.json"))
    with pytest.raises(ApiCallFailError) as err:
        rig.provider.fetch(SCAN, progress(ScanStatus.COMPLETED))
    assert get.call_count == 5
    assert "errorCode 901" in err.value.message
    assert err.value.exit_status == ExitStatus.PROVIDER_ERROR


@pytest.mark.parametrize("status", [ScanStatus.FAILED, ScanStatus.CANCELLED])
def test_fetch_of_an_unfinished_job_asks_for_no_report(
    mock: responses.RequestsMock, rig: Rig, status: ScanStatus
) -> None:
    ended = progress(status, completeness=40, message="NCP WSC: the job was stopped")
    result = rig.provider.fetch(SCAN, ended)
    assert (result.status, result.completeness, result.findings) == (status, 40, ())
    assert result.message == "NCP WSC: the job was stopped" and not result.complete
    assert len(mock.calls) == 0


# Cancelling (fact sheet "cancelJob / stopJob").


def learn(mock: responses.RequestsMock, rig: Rig, code: int, text: str) -> ScanProgress:
    add_search(mock, "memo", MEMO, None, record(text))
    add_search(mock, "memo", MEMO, code, record(text))
    return rig.provider.poll(SCAN)


def test_a_pending_job_is_cancelled(mock: responses.RequestsMock, rig: Rig) -> None:
    last = learn(mock, rig, 12, "URL collection pending")
    cancel = mock.patch(
        f"{BASE}/jobs/{JOB}/cancel",
        json=asset("success_null.json"),
        match=[signed("PATCH /api/v1/jobs/1234567890/cancel")],
    )
    rig.provider.cancel(SCAN, last)
    assert cancel.call_count == 1


def test_a_running_job_is_stopped(mock: responses.RequestsMock, rig: Rig) -> None:
    last = learn(mock, rig, 3, "Diagnostics in progress")
    stop = mock.patch(
        f"{BASE}/jobs/{JOB}/stop",
        json=asset("success_null.json"),
        match=[signed("PATCH /api/v1/jobs/1234567890/stop")],
    )
    rig.provider.cancel(SCAN, last)
    assert stop.call_count == 1


@pytest.mark.parametrize("status", [200, 400])
def test_a_job_that_started_meanwhile_is_stopped_after_a_refused_cancel(
    mock: responses.RequestsMock, rig: Rig, status: int
) -> None:
    last = learn(mock, rig, 12, "URL collection pending")
    cancel = mock.patch(f"{BASE}/jobs/{JOB}/cancel", status=status, json=asset("error_901.json"))
    stop = mock.patch(f"{BASE}/jobs/{JOB}/stop", json=asset("success_null.json"))
    rig.provider.cancel(SCAN, last)
    assert (cancel.call_count, stop.call_count) == (1, 1)


def test_cancel_before_any_poll_tries_cancel_then_stop_and_reports_failure(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    mock.patch(f"{BASE}/jobs/{JOB}/cancel", status=400, json=asset("error_901.json"))
    mock.patch(f"{BASE}/jobs/{JOB}/stop", status=400, json=asset("error_901.json"))
    with pytest.raises(ApiCallFailError):
        rig.provider.cancel(SCAN, None)
    assert [c.request.url.rsplit("/", 1)[1] for c in mock.calls] == ["cancel", "stop"]


def test_cancel_does_not_fall_back_on_other_errors(mock: responses.RequestsMock, rig: Rig) -> None:
    mock.patch(f"{BASE}/jobs/{JOB}/cancel", status=401, json=asset("error_gateway_401.json"))
    with pytest.raises(ProviderAuthError):
        rig.provider.cancel(SCAN, None)


@pytest.mark.parametrize(
    ("code", "text"), [(4, "Diagnostics completed"), (92, "Stopping"), (93, "Job stopped")]
)
def test_cancel_leaves_an_ended_job_alone(
    mock: responses.RequestsMock, rig: Rig, code: int, text: str
) -> None:
    last = learn(mock, rig, code, text)
    rig.provider.cancel(SCAN, last)
    rig.provider.cancel(SCAN, None)
    assert len(mock.calls) == 2  # the two searches of the poll only


# Errors: decided by the body, not the status (fact sheet "Errors").


@pytest.mark.parametrize(
    ("reply", "error", "calls", "words"),
    [
        (
            {"body": requests.exceptions.ConnectionError("reset")},
            ProviderUnavailableError,
            1,
            "cannot reach",
        ),
        (
            {"body": requests.exceptions.ReadTimeout("slow")},
            ProviderUnavailableError,
            1,
            "ReadTimeout",
        ),
        (
            {"status": 401, "json": asset("error_gateway_401.json")},
            ProviderAuthError,
            1,
            "Authentication Failed (Invalid authentication information.)",
        ),
        (
            {"status": 200, "json": asset("error_gateway_401.json")},
            ProviderAuthError,
            1,
            "rejected the credentials",
        ),
        (
            {"status": 401, "body": "<html>401 Authorization Required</html>"},
            ProviderAuthError,
            1,
            "rejected the credentials",
        ),
        (
            {
                "status": 401,
                "json": {"error": {"errorCode": "210", "message": "Permission Denied"}},
            },
            ProviderAuthError,
            1,
            "denied permission",
        ),
        (
            {"status": 403, "body": ""},
            ProviderAuthError,
            1,
            "denied permission",
        ),
        (
            {
                "status": 404,
                "json": {"error": {"errorCode": "300", "message": "Not Found Exception"}},
            },
            ProviderError,
            1,
            "has no such API",
        ),
        (
            {
                "status": 429,
                "json": {"error": {"errorCode": "420", "message": "Rate Limited"}},
                "headers": {"Retry-After": "30"},
            },
            ProviderRateLimitError,
            5,
            "errorCode 420: Rate Limited",
        ),
        (
            {"status": 503, "json": {"error": {"errorCode": "500", "message": "Endpoint Error"}}},
            ProviderError,
            5,
            "errorCode 500: Endpoint Error",
        ),
        ({"status": 200, "body": "{not json"}, UnexpectedResponseError, 5, "malformed JSON"),
        ({"status": 200, "json": [1, 2]}, UnexpectedResponseError, 1, "not an object"),
        ({"status": 200, "json": asset("error_901.json")}, ApiCallFailError, 5, "errorCode 901"),
        (
            {"status": 400, "json": {"error": {"errorCode": "901", "message": "API Call Fail"}}},
            ApiCallFailError,
            5,
            "API Call Fail",
        ),
        (
            {
                "status": 401,
                "json": {"error": {"errorCode": 169201, "message": "Auth Check Error"}},
            },
            ProviderAuthError,
            1,
            "no permission for Web Security Checker",
        ),
        (
            {
                "status": 200,
                "json": {"error": {"errorCode": 169202, "message": "User Check Error"}},
            },
            ProviderAuthError,
            1,
            "account verification failed",
        ),
        (
            {
                "status": 400,
                "json": {"error": {"errorCode": 160331, "message": "ActionURL Check Error"}},
            },
            ProviderError,
            1,
            "action URL check error",
        ),
        (
            {
                "status": 400,
                "json": {"error": {"errorCode": 160332, "message": "Param Check Error"}},
            },
            ProviderError,
            1,
            "disallowed characters",
        ),
        (
            {
                "status": 400,
                "json": {"error": {"errorCode": 160351, "message": "Login_Check_Fail"}},
            },
            ProviderError,
            1,
            "login to the target failed",
        ),
        (
            {"status": 200, "json": {"error": {"errorCode": 123456, "message": "Brand new"}}},
            ProviderError,
            1,
            "errorCode 123456",
        ),
        (
            {"status": 200, "json": {"returnCode": "77", "returnMessage": "Failure"}},
            ProviderError,
            1,
            "errorCode 77",
        ),
        ({"status": 400, "body": "<html>Bad Request</html>"}, ProviderError, 1, "HTTP 400"),
    ],
    ids=[
        "connection",
        "read-timeout",
        "401",
        "401-in-http-200",
        "401-not-json",
        "210",
        "403-empty",
        "404",
        "429",
        "503",
        "malformed",
        "not-an-object",
        "901-http-200",
        "901-http-400-string",
        "169201",
        "169202",
        "160331",
        "160332",
        "160351",
        "unknown-code",
        "return-code",
        "400-not-json",
    ],
)
def test_poll_failures_map_to_errors_and_exit_codes(
    mock: responses.RequestsMock,
    rig: Rig,
    reply: dict[str, Any],
    error: type[ProviderError],
    calls: int,
    words: str,
) -> None:
    search = mock.post(SEARCH, **reply)
    with pytest.raises(ProviderError) as err:
        rig.provider.poll(SCAN)
    assert type(err.value) is error
    assert int(err.value.exit_status) == int(ExitStatus.PROVIDER_ERROR) == 3
    assert search.call_count == calls
    assert words in err.value.diagnostics()


def test_a_rejected_signature_is_never_retried_and_names_the_variables(
    mock: responses.RequestsMock,
) -> None:
    rig = Rig(secret="a-wrong-secret-value-1234")
    echo = {
        "error": {
            "errorCode": "200",
            "message": "Authentication Failed",
            "details": "a-wrong-secret-value-1234",
        }
    }
    search = mock.post(SEARCH, status=401, json=echo)
    with pytest.raises(ProviderAuthError) as err:
        rig.provider.find_running(TARGET)
    assert search.call_count == 1
    assert "check NCP_ACCESS_KEY + NCP_SECRET_KEY" in err.value.diagnostics()
    assert "a-wrong-secret-value-1234" not in err.value.diagnostics()
    assert "Authentication Failed ([redacted by scangate])" in err.value.message


@pytest.mark.parametrize(("offset", "side"), [(600, "behind"), (-400, "ahead of")])
def test_a_401_from_clock_skew_says_so(
    mock: responses.RequestsMock, rig: Rig, offset: int, side: str
) -> None:
    date = format_datetime(datetime.fromtimestamp(NOW + offset, UTC), usegmt=True)
    mock.post(SEARCH, status=401, json=asset("error_gateway_401.json"), headers={"Date": date})
    with pytest.raises(ProviderAuthError) as err:
        rig.provider.poll(SCAN)
    assert f"clock is {abs(offset)} s {side} the NCP gateway's" in err.value.message
    assert "synchronise the clock" in err.value.diagnostics()


def test_a_401_with_a_close_clock_blames_the_credentials(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    date = format_datetime(datetime.fromtimestamp(NOW + 5, UTC), usegmt=True)
    mock.post(SEARCH, status=401, json=asset("error_gateway_401.json"), headers={"Date": date})
    with pytest.raises(ProviderAuthError) as err:
        rig.provider.poll(SCAN)
    assert "rejected the credentials" in err.value.message
    assert "clock is" not in err.value.message
    assert CREDENTIALS in err.value.diagnostics()


def test_a_901_search_is_retried_and_then_succeeds(mock: responses.RequestsMock, rig: Rig) -> None:
    mock.post(SEARCH, json=asset("error_901.json"))
    add_search(mock, "url", "staging.example.com", 12)
    for code in (13, 14, 2, 3):
        add_search(mock, "url", "staging.example.com", code)
    assert rig.provider.find_running(TARGET) is None
    assert len(rig.sleeps) == 1


def test_error_detail_formats_both_error_shapes() -> None:
    response = requests.Response()
    response._content = b"<html>Bad Gateway</html>"
    gateway = {"error": {"errorCode": "410", "message": "Throttle Limited", "details": "slow down"}}
    service = {"error": {"errorCode": 901.0, "message": "API Call Fail"}}
    assert NcpWscProvider.error_detail(response, gateway) == (
        "errorCode 410: Throttle Limited (slow down)"
    )
    assert NcpWscProvider.error_detail(response, service) == "errorCode 901: API Call Fail"
    assert NcpWscProvider.error_detail(response, None) == "<html>Bad Gateway</html>"


# Helpers.


@pytest.mark.parametrize(
    ("raw", "method", "url"),
    [
        ("[GET]&nbsp;&nbsp;http://your-domain/a?b=1", "GET", "http://your-domain/a?b=1"),
        ("[post] https://x/y", "POST", "https://x/y"),
        ("  [PUT]\u00a0https://x/z&amp;w ", "PUT", "https://x/z&w"),
        ("https://x/plain", "", "https://x/plain"),
        ("", "", ""),
    ],
)
def test_split_url(raw: str, method: str, url: str) -> None:
    assert split_url(raw) == (method, url)


@pytest.mark.parametrize(
    ("left", "right", "same"),
    [
        ("https://Staging.Example.com/", "https://staging.example.com", True),
        ("https://staging.example.com:443/app/", "https://staging.example.com/app", True),
        ("http://staging.example.com/", "https://staging.example.com/", False),
        ("https://staging.example.com/app", "https://staging.example.com/", False),
        ("https://staging.example.com/?a=1", "https://staging.example.com/", False),
    ],
)
def test_same_url(left: str, right: str, same: bool) -> None:
    assert same_url(left, right) is same
