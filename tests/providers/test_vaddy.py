"""The VAddy adapter against `responses`: request shapes, runcheck, counts-only results, errors.

Payloads in `tests/assets/vaddy/` are the shapes printed in `providers/vaddy.md` and the seed.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from http.client import RemoteDisconnected
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jsonschema
import pytest
import requests
import responses
from responses import matchers
from urllib3.exceptions import ProtocolError

from scangate import __version__
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
from scangate.providers.paging import PagingError
from scangate.providers.vaddy import (
    MAX_ALERT_FINDINGS,
    RUNCHECK,
    SCAN_TYPES,
    VAddyBusyError,
    VAddyProvider,
)

from . import rig

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "vaddy"
BASE = VAddyProvider.DEFAULT_BASE_URL
USER = "ci-user@example.com"
KEY = "vaddy-key-4f0c9e2b7a1d58c3e6"
HINT = "VADDY_USER + VADDY_AUTH_KEY"
PROJECT = "6eb1f9fcbdb6a5a"
SCAN_ID = "1-837b5f9f-e088-4af5-9491-67f7ce8035a4"
CONSOLE = f"https://console.vaddy.net/scan_status/1/{SCAN_ID}"
SCAN = ScanRef(scan_id=ScanId(SCAN_ID), target=PROJECT)
FINISHED = ScanProgress(status=ScanStatus.COMPLETED, raw_status="finish")


def asset(name: str) -> Any:
    """A recorded payload (a fresh copy, so a test may change it)."""
    path = ASSETS / name
    assert path.is_file(), f"missing test asset {path}"
    return copy.deepcopy(json.loads(path.read_text(encoding="utf-8")))


class Rig(rig.Rig):
    """The VAddy adapter, built through the registry, on a fixed clock."""

    def __init__(self, options: dict[str, Any] | None = None, **settings: Any) -> None:
        env = {"VADDY_USER": USER, "VADDY_AUTH_KEY": KEY}
        super().__init__("vaddy", env, options, now=1_700_000_000.0, **settings)


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    """Every request registered and used; afterwards, no request carried the key in its URL."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps
    for call in rsps.calls:
        request = call.request
        assert KEY not in (request.url or "")
        assert "auth_key" not in (request.url or "")
        body = request.body or ""
        text = body.decode() if isinstance(body, bytes) else body
        assert KEY not in text and "auth_key" not in text
        assert request.headers["X-API-KEY"] == KEY


@pytest.fixture
def rig() -> Rig:
    return Rig()


def query(**params: str) -> Any:
    """The exact query string: `user` plus `params`, nothing else."""
    return matchers.query_param_matcher({"user": USER, **params}, strict_match=True)


def form(**fields: str) -> Any:
    """The exact form body: `user` plus `fields`, nothing else."""
    return matchers.urlencoded_params_matcher({"user": USER, **fields})


def key_header() -> Any:
    return matchers.header_matcher(
        {"X-API-KEY": KEY, "User-Agent": f"scangate/{__version__}", "Accept": "application/json"}
    )


def attempt() -> StartAttempt:
    sent = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
    return StartAttempt(target=PROJECT, marker="scangate-0123", sent_at=sent)


# Declarations.


def test_registry_names_this_class_with_its_documented_facts() -> None:
    cls = provider_class("vaddy")
    assert cls is VAddyProvider
    assert cls.DEFAULT_BASE_URL == "https://api.vaddy.net/v2"
    assert [spec.variables for spec in cls.credentials] == [("VADDY_USER", "VADDY_AUTH_KEY")]
    assert [spec.secret for spec in cls.credentials] == [{"VADDY_AUTH_KEY"}]
    caps = cls.capabilities
    assert (caps.progress, caps.eta, caps.cancel, caps.runcheck) == (False, False, True, True)
    assert (caps.attach, caps.per_finding_detail, caps.rate_limit_headers) == (False, False, False)
    assert VAddyProvider.secret_headers == ("X-API-KEY",)


@pytest.mark.parametrize(
    ("options", "valid"),
    [
        ({}, True),
        ({"crawl_id": 30, "scan_type": ["SQLI", "XSS"]}, True),
        ({"crawl_label": "login flow"}, True),
        ({"scan_type": list(SCAN_TYPES)}, True),
        ({"crawl_id": 30, "crawl_label": "login flow"}, False),
        ({"crawl_id": "30"}, False),
        ({"crawl_id": 0}, False),
        ({"crawl_label": ""}, False),
        ({"scan_type": []}, False),
        ({"scan_type": ["SQLI", "SQLI"]}, False),
        ({"scan_type": ["SQL Injection"]}, False),
        ({"scan_type": "SQLI,XSS"}, False),
        ({"fqdn": "www.example.com"}, False),
        ({"project_number": 123}, True),
        ({"project_number": "123"}, False),
        ({"project_number": 0}, False),
    ],
)
def test_options_schema(options: dict[str, Any], valid: bool) -> None:
    schema = VAddyProvider.options_schema
    jsonschema.Draft202012Validator.check_schema(schema)
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(options))
    assert (not errors) is valid


def test_the_key_is_redacted_and_sent_only_as_a_header(rig: Rig) -> None:
    assert KEY in rig.registered
    # The credential headers the client adds to every request (`HttpContract.authorize`).
    assert rig.http.contract.authorize("GET", f"{BASE}/scan/result") == {"X-API-KEY": KEY}
    assert "VADDY_AUTH_KEY" in rig.http.contract.credential_hint


# Runcheck and if_running (fact sheet "GET /v2/scan/runcheck").


def test_find_running_is_none_on_a_free_project(mock: responses.RequestsMock, rig: Rig) -> None:
    mock.get(
        f"{BASE}/scan/runcheck",
        json=asset("runcheck_free.json"),
        match=[query(project_id=PROJECT), key_header()],
    )
    assert rig.provider.find_running(PROJECT) is None


def test_a_busy_project_is_waited_on_through_runcheck(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    mock.get(
        f"{BASE}/scan/runcheck", json=asset("runcheck_busy.json"), match=[query(project_id=PROJECT)]
    )
    running = rig.provider.find_running(PROJECT)
    assert running is not None and running.extra[RUNCHECK] == "1"
    assert "running_process 1" in running.scan_id and running.target == PROJECT

    busy = rig.provider.poll(running)
    mock.replace(responses.GET, f"{BASE}/scan/runcheck", json=asset("runcheck_free.json"))
    free = rig.provider.poll(running)

    assert (busy.status, busy.raw_status) == (ScanStatus.RUNNING, "running_process 1")
    assert (free.status, free.raw_status) == (ScanStatus.COMPLETED, "running_process 0")
    # Never `scan/result`: VAddy gives the other scan no id.
    assert [call.request.path_url.split("?")[0] for call in mock.calls] == ["/v2/scan/runcheck"] * 3


def test_another_clients_scan_is_never_cancelled(rig: Rig) -> None:
    running = ScanRef(scan_id=ScanId("(unnamed)"), target=PROJECT, extra={RUNCHECK: "1"})
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rig.provider.cancel(running, None)
        assert len(rsps.calls) == 0


def test_runcheck_without_running_process_is_unexpected(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    mock.get(f"{BASE}/scan/runcheck", json={"running": True})
    with pytest.raises(UnexpectedResponseError, match="running_process"):
        rig.provider.find_running(PROJECT)


# Start (fact sheet "POST /v2/scan — start").


def test_start_posts_the_documented_form(mock: responses.RequestsMock, rig: Rig) -> None:
    post = mock.post(
        f"{BASE}/scan",
        json=asset("start.json"),
        match=[
            form(action="start", project_id=PROJECT),
            key_header(),
            matchers.header_matcher({"Content-Type": "application/x-www-form-urlencoded"}),
        ],
    )
    ref = rig.provider.start(attempt())
    assert (ref.scan_id, ref.target) == (SCAN_ID, PROJECT)
    assert ref.created_at is not None and ref.created_at.tzinfo is not None
    assert post.call_count == 1


def test_start_sends_crawl_id_and_the_scan_types_as_a_comma_list(
    mock: responses.RequestsMock,
) -> None:
    rig = Rig({"crawl_id": 30, "scan_type": ["SQLI", "XSS", "CSRF"]})
    fields = {"action": "start", "project_id": PROJECT, "crawl_id": "30"}
    mock.post(
        f"{BASE}/scan",
        json=asset("start.json"),
        match=[form(**fields, scan_type="SQLI,XSS,CSRF")],
    )
    assert rig.provider.start(attempt()).scan_id == SCAN_ID


def test_crawl_label_resolves_to_the_exact_label_before_starting(
    mock: responses.RequestsMock,
) -> None:
    rig = Rig({"crawl_label": "all-data"})
    search = query(project_id=PROJECT, search_label="all-data", page="1", sort="desc")
    mock.get(f"{BASE}/crawl", json=asset("crawl_search.json"), match=[search, key_header()])
    mock.post(
        f"{BASE}/scan",
        json=asset("start.json"),
        match=[form(action="start", project_id=PROJECT, crawl_id="2")],
    )
    rig.provider.preflight(PROJECT)
    rig.provider.start(attempt())


def test_crawl_label_without_an_exact_match_takes_the_newest_partial_one(
    mock: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    rig = Rig({"crawl_label": "all"})
    mock.get(f"{BASE}/crawl", json=asset("crawl_search.json"))
    mock.post(f"{BASE}/scan", json=asset("start.json"), match=[form(**start_fields("31"))])
    with caplog.at_level(logging.WARNING):
        rig.provider.preflight(PROJECT)
    rig.provider.start(attempt())
    assert "'all-data-v2'" in caplog.text


def start_fields(crawl_id: str) -> dict[str, str]:
    return {"action": "start", "project_id": PROJECT, "crawl_id": crawl_id}


def test_crawl_label_pages_until_the_exact_match(mock: responses.RequestsMock) -> None:
    rig = Rig({"crawl_label": "run"})
    first = [{"id": 100 - n, "label": f"run {n}"} for n in range(30)]
    for page, items in ((1, first), (2, [{"id": 5, "label": "run"}])):
        mock.get(
            f"{BASE}/crawl",
            json={"total": 31, "page": page, "limit": 30, "items": items},
            match=[query(project_id=PROJECT, search_label="run", page=str(page), sort="desc")],
        )
    mock.post(f"{BASE}/scan", json=asset("start.json"), match=[form(**start_fields("5"))])
    rig.provider.preflight(PROJECT)
    rig.provider.start(attempt())


def test_crawl_label_search_has_no_page_cap(mock: responses.RequestsMock) -> None:
    """The exact label on page 40 is found (the adapter once stopped after 20 pages)."""
    rig = Rig({"crawl_label": "run"})

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        page = int(request.params["page"])
        items = [{"id": 10_000 - page * 30 - n, "label": f"run {page}.{n}"} for n in range(30)]
        if page == 40:
            items[-1] = {"id": 5, "label": "run"}
        return 200, {}, json.dumps({"total": 1200, "page": page, "limit": 30, "items": items})

    mock.add_callback(responses.GET, f"{BASE}/crawl", callback=answer)
    mock.post(f"{BASE}/scan", json=asset("start.json"), match=[form(**start_fields("5"))])
    rig.provider.preflight(PROJECT)
    rig.provider.start(attempt())
    assert len(mock.calls) == 41


def test_a_crawl_search_ignoring_the_page_is_a_provider_error(
    mock: responses.RequestsMock,
) -> None:
    items = [{"id": 100 - n, "label": f"run {n}"} for n in range(30)]
    mock.get(f"{BASE}/crawl", json={"total": 90, "page": 1, "limit": 30, "items": items})
    with pytest.raises(PagingError, match=r"crawl search: the list does not end \(page 2 repeats"):
        Rig({"crawl_label": "run"}).provider.preflight(PROJECT)


def test_an_unknown_crawl_label_is_a_clear_error(mock: responses.RequestsMock) -> None:
    mock.get(f"{BASE}/crawl", json=asset("crawl_empty.json"))
    with pytest.raises(ProviderError) as err:
        Rig({"crawl_label": "nightly"}).provider.preflight(PROJECT)
    assert "no recorded crawl labelled 'nightly'" in err.value.message
    assert "crawl_label" in err.value.diagnostics()


def test_preflight_without_a_label_sends_nothing(mock: responses.RequestsMock, rig: Rig) -> None:
    rig.provider.preflight(PROJECT)
    assert len(mock.calls) == 0


# Start refusals: 400 {"error_message"} mapped to diagnoses (fact sheet "start" 400 causes).


@pytest.mark.parametrize(
    ("payload", "error", "exit_status", "words", "hint"),
    [
        ("error_busy.json", VAddyBusyError, 4, "already running on project", "if_running"),
        ("error_no_crawl.json", ProviderError, 3, "has no crawl data", "Proxy Crawling"),
        ("error_scan_type.json", ProviderError, 3, "refused scan_type SQLI,EVAL", "Starter"),
        ("error_project.json", ProviderError, 3, "does not know project", "Server page"),
        ({"error_message": "This crawl_id does not exist."}, ProviderError, 3, "crawl 30", ""),
        ({"error_message": "quota"}, ProviderError, 3, "refused the request: quota", ""),
    ],
    ids=["busy", "no-crawl", "scan-type", "project", "crawl-id", "other"],
)
def test_start_refusals_are_diagnosed(
    mock: responses.RequestsMock,
    payload: str | dict[str, str],
    error: type[ProviderError],
    exit_status: int,
    words: str,
    hint: str,
) -> None:
    rig = Rig({"crawl_id": 30, "scan_type": ["SQLI", "EVAL"]})
    body = asset(payload) if isinstance(payload, str) else payload
    post = mock.post(f"{BASE}/scan", status=400, json=body)
    with pytest.raises(ProviderError) as err:
        rig.provider.start(attempt())
    assert type(err.value) is error
    assert int(err.value.exit_status) == exit_status
    assert words in err.value.message and body["error_message"] in err.value.message
    assert hint in err.value.diagnostics()
    assert post.call_count == 1


@pytest.mark.parametrize(
    "reply",
    [
        {
            "body": requests.exceptions.ConnectionError(
                ProtocolError("Connection aborted.", RemoteDisconnected("closed without response"))
            )
        },
        {"body": requests.exceptions.ReadTimeout("read timed out")},
        {"status": 502, "json": {"error_message": "Bad gateway"}},
        {"status": 200, "body": "<html>proxy page</html>"},
        {"status": 200, "json": {"message": "started"}},
    ],
    ids=["dropped", "read-timeout", "502", "not-json", "no-scan-id"],
)
def test_ambiguous_start_is_sent_exactly_once(
    mock: responses.RequestsMock, rig: Rig, reply: dict[str, Any]
) -> None:
    post = mock.post(f"{BASE}/scan", **reply)
    with pytest.raises(AmbiguousStartError) as err:
        rig.provider.start(attempt())
    assert post.call_count == 1
    assert err.value.exit_status == ExitStatus.PROVIDER_ERROR


def test_find_started_on_a_free_project_proves_no_scan_was_made(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    mock.get(f"{BASE}/scan/runcheck", json=asset("runcheck_free.json"))
    assert rig.provider.find_started(attempt()) is None


def test_find_started_on_a_busy_project_stops_without_a_second_start(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    mock.get(f"{BASE}/scan/runcheck", json=asset("runcheck_busy.json"))
    with pytest.raises(ProviderError) as err:
        rig.provider.find_started(attempt())
    assert err.value.exit_status == ExitStatus.PROVIDER_ERROR
    assert f"running on project {PROJECT}" in err.value.message
    assert "VAddy console" in err.value.diagnostics()


# Polling (fact sheet "GET /v2/scan/result").


@pytest.mark.parametrize(
    ("body", "status", "completeness", "message"),
    [
        (asset("result_scanning.json"), ScanStatus.RUNNING, 100, ""),
        (asset("result_canceled.json"), ScanStatus.CANCELLED, 0, "canceled"),
        ({"status": "cancelled"}, ScanStatus.CANCELLED, 0, "ended abnormally"),
        (asset("result_finish.json"), ScanStatus.COMPLETED, 100, ""),
        ({**asset("result_finish.json"), "complete": 80}, ScanStatus.COMPLETED, 80, ""),
        ({**asset("result_finish.json"), "complete": 140}, ScanStatus.COMPLETED, 100, ""),
        ({"status": "queued"}, ScanStatus.RUNNING, 100, ""),
    ],
    ids=["scanning", "canceled", "cancelled", "finish", "partial", "clamped", "unknown"],
)
def test_poll_maps_every_status(
    mock: responses.RequestsMock,
    rig: Rig,
    body: dict[str, Any],
    status: ScanStatus,
    completeness: int,
    message: str,
) -> None:
    mock.get(f"{BASE}/scan/result", json=body, match=[query(scan_id=SCAN_ID), key_header()])
    progress = rig.provider.poll(SCAN)
    assert progress.status is status
    assert progress.completeness == completeness
    assert message in progress.message and bool(message) == bool(progress.message)
    assert progress.progress is None and progress.eta_seconds is None


def test_an_unknown_status_is_logged_and_waited_on(
    mock: responses.RequestsMock, rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    mock.get(f"{BASE}/scan/result", json={"status": "paused"})
    with caplog.at_level(logging.WARNING):
        assert rig.provider.poll(SCAN).status is ScanStatus.RUNNING
    assert "'paused' unknown" in caplog.text


@pytest.mark.parametrize("reply", [{"status": 400, "json": {}}, {"json": {"state": "finish"}}])
def test_an_answer_without_a_status_is_unexpected(
    mock: responses.RequestsMock, rig: Rig, reply: dict[str, Any]
) -> None:
    mock.get(f"{BASE}/scan/result", **reply)
    with pytest.raises(UnexpectedResponseError, match="has no status"):
        rig.provider.poll(SCAN)


def test_poll_of_an_unknown_scan_id_is_diagnosed(mock: responses.RequestsMock, rig: Rig) -> None:
    get = mock.get(f"{BASE}/scan/result", status=400, json=asset("error_scan_id.json"))
    with pytest.raises(ProviderError) as err:
        rig.provider.poll(SCAN)
    assert f"does not know scan {SCAN_ID}" in err.value.message
    assert err.value.exit_status == ExitStatus.PROVIDER_ERROR
    assert get.call_count == 1  # a 400 is an answer, not a transient failure


def test_an_error_message_in_a_200_answer_is_a_refusal(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    mock.get(f"{BASE}/scan/runcheck", json=asset("error_project.json"))
    with pytest.raises(ProviderError, match=f"does not know project {PROJECT}"):
        rig.provider.find_running(PROJECT)


# Results: counts only (design §9 "Count-only providers (VAddy)").


def finish(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = asset("result_finish.json")
    body.update(fields)
    return body


def poll_then_fetch(mock: responses.RequestsMock, rig: Rig, body: dict[str, Any]) -> Any:
    """Poll a finished scan once, then fetch it: the fetch needs no second request."""
    mock.get(f"{BASE}/scan/result", json=body, match=[query(scan_id=SCAN_ID)])
    progress = rig.provider.poll(SCAN)
    return rig.provider.fetch(SCAN, progress)


def test_alert_count_becomes_that_many_unrated_findings_at_the_console(
    mock: responses.RequestsMock,
) -> None:
    rig = Rig(unrated_severity=Severity.MEDIUM)
    result = poll_then_fetch(mock, rig, finish(alert_count=3, project_id=PROJECT))
    assert len(mock.calls) == 1
    assert [f.fingerprint for f in result.findings] == [f"vaddy:{PROJECT}:{n}" for n in (1, 2, 3)]
    for finding in result.findings:
        assert finding.rule_id == "vaddy-alert"
        assert finding.severity is Severity.MEDIUM
        assert finding.console_url == CONSOLE
        # The console URL names the scan: as the location it would churn every pipeline.
        assert finding.url == ""
        assert "details in the VAddy console" in finding.title
        assert "only the count" in finding.description and CONSOLE in finding.description
    # Nothing of this scan (not even the count, which changes) is in the title.
    assert result.findings[0].title == "VAddy alert 1 (details in the VAddy console)"
    assert result.complete


def test_the_count_summary_carries_the_checks_and_the_console(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    result = poll_then_fetch(mock, rig, finish())
    summary = result.count_summary
    assert summary is not None
    assert (summary.alert_count, summary.scan_count) == (1, 22)
    assert summary.checks == ("XSS", "SQL Injection")
    assert summary.console_url == result.console_url == CONSOLE
    assert (result.provider, result.scanner, result.scan_id) == ("vaddy", "VAddy", SCAN_ID)
    assert result.status is ScanStatus.COMPLETED and result.complete
    assert result.findings[0].severity is Severity.HIGH  # the default unrated_severity
    assert result.started_at == datetime(2014, 6, 12, 11, 11, 11, tzinfo=UTC)
    assert result.finished_at == datetime(2014, 6, 12, 11, 41, 11, tzinfo=UTC)
    assert result.details["crawl_label"] == "user edit scenario label"
    assert (result.details["crawl_id"], result.details["complete"]) == ("30", "100%")


def test_a_clean_scan_has_no_findings_but_a_summary(mock: responses.RequestsMock, rig: Rig) -> None:
    result = poll_then_fetch(mock, rig, finish(alert_count=0))
    assert result.findings == () and result.complete
    assert result.count_summary is not None and result.count_summary.alert_count == 0


def test_a_partial_scan_is_incomplete(mock: responses.RequestsMock, rig: Rig) -> None:
    result = poll_then_fetch(mock, rig, finish(alert_count=0, complete=80))
    assert result.status is ScanStatus.COMPLETED and not result.complete
    assert result.completeness == 80
    assert "80% of the planned checks" in result.message


def test_a_result_without_complete_fails_closed(mock: responses.RequestsMock, rig: Rig) -> None:
    body = finish()
    del body["complete"]
    result = poll_then_fetch(mock, rig, body)
    assert result.completeness == 0 and not result.complete
    assert "no `complete`" in result.message


@pytest.mark.parametrize("value", [None, "many", -1, True])
def test_a_result_without_a_usable_alert_count_is_an_error(
    mock: responses.RequestsMock, rig: Rig, value: Any
) -> None:
    with pytest.raises(UnexpectedResponseError, match="alert_count"):
        poll_then_fetch(mock, rig, finish(alert_count=value))


def test_a_huge_alert_count_is_capped_but_reported_in_full(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    result = poll_then_fetch(mock, rig, finish(alert_count=MAX_ALERT_FINDINGS + 5))
    assert len(result.findings) == MAX_ALERT_FINDINGS
    assert result.count_summary.alert_count == MAX_ALERT_FINDINGS + 5
    # Alerts without a finding are alerts the gate did not count: the result is incomplete.
    assert not result.complete
    assert result.shortfall == (
        f"VAddy announced {MAX_ALERT_FINDINGS + 5} alerts but {MAX_ALERT_FINDINGS} were fetched "
        f"(scangate makes at most {MAX_ALERT_FINDINGS})"
    )


def test_a_console_url_that_is_not_http_is_left_out(mock: responses.RequestsMock, rig: Rig) -> None:
    result = poll_then_fetch(mock, rig, finish(scan_result_url="javascript:alert(1)"))
    assert result.console_url == "" and result.findings[0].url == ""
    assert result.count_summary.console_url == ""


def test_times_without_an_offset_use_the_result_timezone(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    body = finish(timezone="Asia/Tokyo", start_time="2014-06-12T20:11:11", end_time="garbage")
    result = poll_then_fetch(mock, rig, body)
    assert result.started_at == datetime(2014, 6, 12, 11, 11, 11, tzinfo=UTC)
    assert result.finished_at is None


def test_fetch_without_a_previous_poll_reads_the_result(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    mock.get(f"{BASE}/scan/result", json=finish(alert_count=2), match=[query(scan_id=SCAN_ID)])
    assert len(rig.provider.fetch(SCAN, FINISHED).findings) == 2


def test_fetch_of_a_scan_that_is_not_finished_is_an_error(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    mock.get(f"{BASE}/scan/result", json=asset("result_scanning.json"))
    with pytest.raises(UnexpectedResponseError, match="no finished result"):
        rig.provider.fetch(SCAN, FINISHED)


def test_fetch_of_a_canceled_scan_needs_no_request(mock: responses.RequestsMock, rig: Rig) -> None:
    mock.get(f"{BASE}/scan/result", json=asset("result_canceled.json"))
    result = rig.provider.fetch(SCAN, rig.provider.poll(SCAN))
    assert len(mock.calls) == 1
    assert result.status is ScanStatus.CANCELLED and not result.complete
    assert result.findings == () and result.count_summary is None
    assert "canceled" in result.message
    assert result.scanner_version == "API v2"  # the Web API v2 the adapter speaks


# Cancel (fact sheet "POST /v2/scan — cancel").


def test_cancel_posts_the_documented_form(mock: responses.RequestsMock, rig: Rig) -> None:
    post = mock.post(
        f"{BASE}/scan",
        json={"scan_id": SCAN_ID},
        match=[form(action="cancel", scan_id=SCAN_ID), key_header()],
    )
    rig.provider.cancel(SCAN, ScanProgress(status=ScanStatus.RUNNING, raw_status="scanning"))
    assert post.call_count == 1


def test_cancel_of_a_scan_that_already_finished_is_fine(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    mock.post(f"{BASE}/scan", status=400, json=asset("error_already_finished.json"))
    rig.provider.cancel(SCAN, None)


def test_cancel_of_an_unknown_scan_is_an_error(mock: responses.RequestsMock, rig: Rig) -> None:
    mock.post(f"{BASE}/scan", status=400, json=asset("error_scan_id.json"))
    with pytest.raises(ProviderError, match="does not know scan"):
        rig.provider.cancel(SCAN, None)


@pytest.mark.parametrize("status", [ScanStatus.COMPLETED, ScanStatus.CANCELLED])
def test_cancel_leaves_an_ended_scan_alone(rig: Rig, status: ScanStatus) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rig.provider.cancel(SCAN, ScanProgress(status=status, raw_status=status.value))
        assert len(rsps.calls) == 0


# Every failure of an ordinary call, mapped to its error class and exit code.


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
        ({"status": 401, "body": ""}, ProviderAuthError, 1, "rejected the credentials (HTTP 401"),
        ({"status": 403, "body": "Forbidden"}, ProviderAuthError, 1, "refused access"),
        ({"status": 404, "body": "<html>Not Found</html>"}, ProviderError, 1, "HTTP 404"),
        (
            {"status": 429, "body": "slow down", "headers": {"Retry-After": "30"}},
            ProviderRateLimitError,
            5,
            "rate limit exceeded",
        ),
        ({"status": 500, "body": "Internal error"}, ProviderError, 5, "HTTP 500"),
        ({"status": 200, "body": "{not json"}, UnexpectedResponseError, 5, "malformed JSON"),
        ({"status": 200, "json": ["scanning"]}, UnexpectedResponseError, 1, "not a JSON object"),
    ],
    ids=["connection", "read-timeout", "401", "403", "404", "429", "500", "malformed", "array"],
)
def test_poll_failures_map_to_errors_and_exit_codes(
    mock: responses.RequestsMock,
    rig: Rig,
    reply: dict[str, Any],
    error: type[ProviderError],
    calls: int,
    words: str,
) -> None:
    get = mock.get(f"{BASE}/scan/result", **reply)
    with pytest.raises(ProviderError) as err:
        rig.provider.poll(SCAN)
    assert type(err.value) is error
    assert int(err.value.exit_status) == int(ExitStatus.PROVIDER_ERROR) == 3
    assert get.call_count == calls
    assert words in err.value.message


def test_a_401_without_a_body_names_the_credential_variables(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    post = mock.post(f"{BASE}/scan", status=401, body="")
    with pytest.raises(ProviderAuthError) as err:
        rig.provider.start(attempt())
    assert "VADDY_USER + VADDY_AUTH_KEY" in err.value.diagnostics()
    assert err.value.message.endswith("(HTTP 401 on POST /v2/scan)")
    assert post.call_count == 1


def test_vaddy_words_that_echo_the_key_are_redacted(mock: responses.RequestsMock, rig: Rig) -> None:
    mock.post(f"{BASE}/scan", status=400, json={"error_message": f"bad auth_key {KEY}"})
    with pytest.raises(ProviderError) as err:
        rig.provider.start(attempt())
    assert KEY not in err.value.diagnostics() and "[redacted by scangate]" in err.value.message


def test_a_retried_poll_sends_the_same_request(mock: responses.RequestsMock, rig: Rig) -> None:
    mock.get(f"{BASE}/scan/result", status=503, body="busy")
    mock.get(f"{BASE}/scan/result", json=asset("result_scanning.json"))
    assert rig.provider.poll(SCAN).status is ScanStatus.RUNNING
    queries = [parse_qs(str(call.request.url).split("?", 1)[1]) for call in mock.calls]
    assert queries == [{"user": [USER], "scan_id": [SCAN_ID]}] * 2


def test_error_detail_reads_error_message_or_the_text() -> None:
    response = requests.Response()
    response._content = b""
    assert VAddyProvider.error_detail(response, {"error_message": "no crawling data."}) == (
        "no crawling data."
    )
    assert VAddyProvider.error_detail(response, None) == ""
    response._content = b"<html>Bad Gateway</html>"
    assert VAddyProvider.error_detail(response, {"detail": 1}) == "<html>Bad Gateway</html>"


# History (fact sheet "Other v2 endpoints": `GET /v2/scan/results/list`), issue 16.


def listed(status: str, start: Any, end: Any, zone: Any = "UTC") -> dict[str, Any]:
    """One `scan/results/list` item."""
    return {
        "scan_id": "1-x",
        "status": status,
        "scan_count": 22 if status == "Complete" else None,
        "alert_count": 0 if status == "Complete" else None,
        "complete": 100 if status == "Complete" else None,
        "crawl_id": 30,
        "crawl_label": None,
        "time_zone": zone,
        "start_time": start,
        "end_time": end,
        "scan_result_url": CONSOLE,
    }


def test_without_project_number_there_is_no_history_and_no_request(rig: Rig) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        assert rig.provider.expected_duration(PROJECT) is None
        assert len(rsps.calls) == 0


def test_the_history_is_the_complete_scans_of_the_numbered_project(
    mock: responses.RequestsMock,
) -> None:
    rig = Rig({"project_number": 123})
    items = [
        listed("Complete", "2026-01-15T10:00:00+0000", "2026-01-15T10:30:00+0000"),
        listed("Cancel", "2026-01-14T10:00:00+0000", "2026-01-14T10:02:00+0000"),
        listed("Complete", "2026-01-13T10:00:00+0000", "2026-01-13T10:29:00+0000"),
        # Odd entries are skipped, never fatal.
        listed("Complete", "yesterday", "2026-01-12T10:29:00+0000"),
        listed("Complete", "2026-01-11T10:30:00+0000", "2026-01-11T10:00:00+0000"),
        listed("Complete", None, None),
        listed("Complete", "2026-01-10T10:00:00", "2026-01-10T10:31:00", zone="Asia/Tokyo"),
        "not an item",
    ]
    mock.get(
        f"{BASE}/scan/results/list",
        json={"project_number": 123, "page": 1, "limit": 20, "items": items},
        match=[query(project_number="123"), key_header()],
    )
    history = rig.provider.expected_duration(PROJECT)
    assert history is not None
    assert history.durations == (1800.0, 1740.0, 1860.0)
    # The `mock` fixture checks the key went in the header only, never the URL or a body.


def test_a_wrong_project_number_is_an_error_the_runner_logs(
    mock: responses.RequestsMock,
) -> None:
    rig = Rig({"project_number": 9})
    mock.get(
        f"{BASE}/scan/results/list",
        status=400,
        json={"error_message": "not match the Project Number"},
    )
    with pytest.raises(ProviderError, match="Project Number"):
        rig.provider.expected_duration(PROJECT)


def test_an_empty_or_shapeless_list_is_an_empty_history(mock: responses.RequestsMock) -> None:
    rig = Rig({"project_number": 123})
    mock.get(f"{BASE}/scan/results/list", json={"items": None})
    history = rig.provider.expected_duration(PROJECT)
    assert history is not None and history.durations == ()
