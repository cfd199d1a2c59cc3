"""The CyberOrigen adapter against `responses`: request shapes, auth, paging and every failure.

Payloads in `tests/assets/cyberorigen/` are the shapes printed in `providers/cyberorigen.md`.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.client import RemoteDisconnected
from pathlib import Path
from typing import Any

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
from scangate.http import Connection
from scangate.model import ScanId, ScanStatus, Severity
from scangate.model.settings import ProviderSettings
from scangate.providers import provider_class
from scangate.providers._login import TokenLogin
from scangate.providers._wire import normalize_host
from scangate.providers.cyberorigen import CyberOrigenProvider
from scangate.providers.interface import ScanProgress, ScanRef, StartAttempt
from scangate.providers.paging import PAGE_MARGIN, PAGE_WORKERS, PagingError
from scangate.redact import Redactor
from scangate.sandbox import EmulatorServer, FakeClock, sandbox_env, start_sandbox
from scangate.sandbox.scenario import parse_scenario

from . import rig

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "cyberorigen"
BASE = CyberOrigenProvider.DEFAULT_BASE_URL
KEY = "co_live_9f8e7d6c5b4a39281706"
USER = "ci@example.com"
PASSWORD = "correct horse battery staple"
TOKEN_1 = "opaque-token-one-0123456789"
TOKEN_2 = "opaque-token-two-9876543210"
TOKEN_3 = "opaque-token-three-55555555"
HINT = "CYBERORIGEN_API_KEY or CYBERORIGEN_USERNAME + CYBERORIGEN_PASSWORD"
NOW = datetime(2025, 12, 21, 10, 11, 0, tzinfo=UTC).timestamp()
"""The fake wall clock: ten minutes after the recorded scan started (10:01:00Z)."""
TARGET = "https://Staging.Example.com/"
SCAN = ScanRef(scan_id=ScanId("scan_abc123"), target=TARGET)


def asset(name: str) -> Any:
    """A recorded payload (a fresh copy, so a test may change it)."""
    path = ASSETS / name
    assert path.is_file(), f"missing test asset {path}"
    return copy.deepcopy(json.loads(path.read_text(encoding="utf-8")))


class Rig(rig.Rig):
    """The CyberOrigen adapter, built through the registry, on the fake clock."""

    def __init__(self, env: dict[str, str], options: dict[str, Any] | None = None) -> None:
        super().__init__("cyberorigen", env, options, now=NOW)


def _page_workers_ended(timeout: float = 10.0) -> None:
    """Wait for the page readers a test left running (`_wire.ordered_map` drops, but does not
    wait for, calls in flight when its reader stops): on a loaded machine they could otherwise
    send their last request into the next test's mock and be counted there."""
    for thread in threading.enumerate():
        if thread.name.startswith("scangate-fetch-"):
            thread.join(timeout)
            assert not thread.is_alive(), f"{thread.name} still running after {timeout:g} s"


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    """Every request must be registered, and every registered response used."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps
        _page_workers_ended()


@pytest.fixture
def keyed() -> Rig:
    """A provider using `CYBERORIGEN_API_KEY`."""
    return Rig({"CYBERORIGEN_API_KEY": KEY})


@pytest.fixture
def login() -> Rig:
    """A provider using `CYBERORIGEN_USERNAME` + `CYBERORIGEN_PASSWORD`."""
    return Rig({"CYBERORIGEN_USERNAME": USER, "CYBERORIGEN_PASSWORD": PASSWORD})


def key_headers() -> Any:
    return matchers.header_matcher({"X-API-Key": KEY, "User-Agent": f"scangate/{__version__}"})


def bearer(token: str) -> Any:
    return matchers.header_matcher({"Authorization": f"Bearer {token}"})


def page_query(page: int, **filters: str) -> Any:
    return matchers.query_param_matcher({**filters, "page": str(page), "per_page": "100"})


def token_body(token: str, expires_in: int = 3600) -> dict[str, Any]:
    body: dict[str, Any] = asset("token.json")
    body.update(access_token=token, expires_in=expires_in)
    return body


def add_login(mock: responses.RequestsMock, token: str = TOKEN_1) -> None:
    form = matchers.urlencoded_params_matcher({"username": USER, "password": PASSWORD})
    mock.post(f"{BASE}/auth/token", json=token_body(token), match=[form])


def scan_item(scan_id: str, created_at: str, **fields: Any) -> dict[str, Any]:
    item: dict[str, Any] = asset("scans_list.json")["items"][0]
    item.update({"id": scan_id, "created_at": created_at, "target": "staging.example.com"})
    item.update(fields)
    return item


def listing(*items: dict[str, Any]) -> dict[str, Any]:
    return {"items": list(items), "total": len(items), "page": 1, "per_page": 100, "pages": 1}


# Declarations.


def test_registry_names_this_class_with_its_documented_facts() -> None:
    cls = provider_class("cyberorigen")
    assert cls is CyberOrigenProvider
    assert cls.DEFAULT_BASE_URL == "https://backend.cyberorigen.com/api/v1"
    assert [spec.variables for spec in cls.credentials] == [
        ("CYBERORIGEN_API_KEY",),
        ("CYBERORIGEN_USERNAME", "CYBERORIGEN_PASSWORD"),
    ]
    assert [spec.secret for spec in cls.credentials] == [
        {"CYBERORIGEN_API_KEY"},
        {"CYBERORIGEN_PASSWORD"},
    ]
    caps = cls.capabilities
    assert (caps.progress, caps.eta, caps.cancel, caps.attach) == (True, True, True, True)
    assert (caps.rate_limit_headers, caps.per_finding_detail, caps.runcheck) == (True, True, False)


@pytest.mark.parametrize(
    ("options", "valid"),
    [
        ({}, True),
        ({"scan_type": "quick", "ports": "1-1000", "frameworks": ["soc2", "pci-dss"]}, True),
        ({"scan_type": "compliance"}, True),
        ({"scan_type": "deep"}, False),
        ({"ports": 80}, False),
        ({"frameworks": "soc2"}, False),
        ({"profile": 1}, False),
    ],
)
def test_options_schema(options: dict[str, Any], valid: bool) -> None:
    schema = CyberOrigenProvider.options_schema
    jsonschema.Draft202012Validator.check_schema(schema)
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(options))
    assert (not errors) is valid
    assert schema["properties"]["scan_type"]["default"] == "full"


@pytest.mark.parametrize(
    ("target", "host"),
    [
        ("https://Staging.Example.com/", "staging.example.com"),
        ("staging.example.com", "staging.example.com"),
        ("http://staging.example.com:8080/app?x=1", "staging.example.com"),
        ("STAGING.example.com.", "staging.example.com"),
        ("staging.example.com/page", "staging.example.com"),
        ("192.168.1.1", "192.168.1.1"),
        ("10.0.0.0/24", "10.0.0.0/24"),
    ],
)
def test_normalize_host(target: str, host: str) -> None:
    assert normalize_host(target) == host


# Request shapes with an API key.


def test_api_key_and_user_agent_on_every_call(mock: responses.RequestsMock, keyed: Rig) -> None:
    mock.get(f"{BASE}/scans/quota", json=asset("quota.json"), match=[key_headers()])
    mock.get(f"{BASE}/scans/scan_abc123", json=asset("scan_running.json"), match=[key_headers()])
    keyed.provider.preflight(TARGET)
    keyed.provider.poll(SCAN)
    assert all("Authorization" not in call.request.headers for call in mock.calls)
    assert KEY in keyed.registered


def test_start_sends_the_documented_body_with_options(
    mock: responses.RequestsMock, keyed: Rig
) -> None:
    rig = Rig(
        {"CYBERORIGEN_API_KEY": KEY},
        {"scan_type": "quick", "ports": "1-1000", "frameworks": ["soc2", "pci-dss"]},
    )
    body = {
        "target": TARGET,
        "scan_type": "quick",
        "ports": "1-1000",
        "frameworks": ["soc2", "pci-dss"],
        "authorized": True,
    }
    mock.post(
        f"{BASE}/scans",
        json=asset("scan_created.json"),
        status=201,
        match=[key_headers(), matchers.json_params_matcher(body, strict_match=True)],
    )
    ref = rig.provider.start(attempt())
    assert ref.scan_id == "scan_xyz789"
    assert ref.target == TARGET
    assert ref.created_at == datetime(2025, 12, 21, 14, 0, tzinfo=UTC)
    assert ref.extra["estimated_duration"] == "2700"


def test_start_defaults_to_a_full_scan(mock: responses.RequestsMock, keyed: Rig) -> None:
    body = {"target": TARGET, "scan_type": "full", "authorized": True}
    mock.post(
        f"{BASE}/scans",
        json=asset("scan_created.json"),
        status=201,
        match=[matchers.json_params_matcher(body, strict_match=True)],
    )
    assert keyed.provider.start(attempt()).scan_id == "scan_xyz789"


def attempt(known: frozenset[str] = frozenset()) -> StartAttempt:
    sent = datetime(2025, 12, 21, 14, 0, 0, tzinfo=UTC)
    return StartAttempt(target=TARGET, marker="scangate-0123", sent_at=sent, known_ids=known)


# Ambiguous starts: never retried, then looked up.


@pytest.mark.parametrize(
    "reply",
    [
        {
            "body": requests.exceptions.ConnectionError(
                ProtocolError("Connection aborted.", RemoteDisconnected("closed without response"))
            )
        },
        {"body": requests.exceptions.ReadTimeout("read timed out")},
        {"status": 502, "json": {"detail": "Bad gateway"}},
        {"status": 201, "body": "<html>proxy page</html>"},
        {"status": 201, "json": {"status": "pending"}},
    ],
    ids=["dropped", "read-timeout", "502", "not-json", "no-id"],
)
def test_ambiguous_start_is_sent_exactly_once(
    mock: responses.RequestsMock, keyed: Rig, reply: dict[str, Any]
) -> None:
    post = mock.post(f"{BASE}/scans", **reply)
    with pytest.raises(AmbiguousStartError) as err:
        keyed.provider.start(attempt())
    assert post.call_count == 1
    assert err.value.exit_status == ExitStatus.PROVIDER_ERROR


def test_refused_start_with_a_url_target_explains_the_target_format(
    mock: responses.RequestsMock, keyed: Rig
) -> None:
    detail = {"detail": "Invalid target format", "error_code": "VALIDATION_ERROR"}
    post = mock.post(f"{BASE}/scans", status=422, json=detail)
    with pytest.raises(ProviderError) as err:
        keyed.provider.start(attempt())
    assert type(err.value) is ProviderError
    assert "Invalid target format (VALIDATION_ERROR)" in err.value.message
    assert "domain, IP or CIDR" in err.value.diagnostics()
    assert post.call_count == 1


def test_start_refused_for_the_concurrency_limit_is_a_rate_limit(
    mock: responses.RequestsMock, keyed: Rig
) -> None:
    detail = {"detail": "Concurrent scan limit reached", "error_code": "CONCURRENT_SCAN_LIMIT"}
    post = mock.post(f"{BASE}/scans", status=429, json=detail)
    with pytest.raises(ProviderRateLimitError) as err:
        keyed.provider.start(attempt())
    assert "CONCURRENT_SCAN_LIMIT" in err.value.message
    assert post.call_count == 1


def test_find_started_picks_the_new_scan_of_the_same_host(
    mock: responses.RequestsMock, keyed: Rig
) -> None:
    items = [
        scan_item("scan_known", "2025-12-21T13:59:00Z"),  # existed before the attempt
        scan_item("scan_old", "2025-12-21T13:00:00Z"),  # before the skew allowance
        scan_item("scan_other", "2025-12-21T14:00:01Z", target="other.example.com"),
        scan_item("scan_quick", "2025-12-21T14:00:01Z", scan_type="quick"),
        scan_item("scan_later", "2025-12-21T14:00:40Z"),
        scan_item("scan_ours", "2025-12-21T14:00:02Z", target="STAGING.example.com"),
    ]
    query = page_query(1, target="staging.example.com", from_date="2025-12-21T13:55:00Z")
    mock.get(f"{BASE}/scans", json=listing(*items), match=[query])
    found = keyed.provider.find_started(attempt(frozenset({"scan_known"})))
    assert found is not None
    assert (found.scan_id, found.target) == ("scan_ours", TARGET)


def test_find_started_returns_none_when_no_scan_was_created(
    mock: responses.RequestsMock, keyed: Rig
) -> None:
    known = scan_item("scan_known", "2025-12-21T14:00:05Z")
    mock.get(f"{BASE}/scans", json=listing(known))
    assert keyed.provider.find_started(attempt(frozenset({"scan_known"}))) is None


def test_find_started_raises_when_the_lookup_fails(
    mock: responses.RequestsMock, keyed: Rig
) -> None:
    listing_call = mock.get(f"{BASE}/scans", status=503, json={"detail": "down"})
    with pytest.raises(ProviderError) as err:
        keyed.provider.find_started(attempt())
    assert err.value.exit_status == ExitStatus.PROVIDER_ERROR
    assert listing_call.call_count == 5


def test_known_scans_lists_the_last_hour_of_the_host_across_pages(
    mock: responses.RequestsMock, keyed: Rig
) -> None:
    first = [scan_item(f"scan_{n:03}", "2025-12-21T10:00:00Z") for n in range(100)]
    second = [scan_item("scan_100", "2025-12-21T10:05:00Z", target="other.example.com")]
    filters = {"target": "staging.example.com", "from_date": "2025-12-21T09:11:00Z"}
    mock.get(
        f"{BASE}/scans",
        json={"items": first, "total": 101, "page": 1, "per_page": 100, "pages": 2},
        match=[page_query(1, **filters)],
    )
    mock.get(
        f"{BASE}/scans",
        json={"items": second, "total": 101, "page": 2, "per_page": 100, "pages": 2},
        match=[page_query(2, **filters)],
    )
    known = keyed.provider.known_scans(TARGET)
    assert known == {f"scan_{n:03}" for n in range(100)}


# Running scans and quota.


def test_find_running_checks_pending_then_running_by_normalized_host(
    mock: responses.RequestsMock, keyed: Rig
) -> None:
    host = "staging.example.com"
    mock.get(f"{BASE}/scans", json=listing(), match=[page_query(1, target=host, status="pending")])
    running = [
        scan_item("scan_elsewhere", "2025-12-21T09:00:00Z", target="staging.example.org"),
        scan_item("scan_busy", "2025-12-21T09:30:00Z", target="https://staging.example.com/app"),
    ]
    mock.get(
        f"{BASE}/scans",
        json=listing(*running),
        match=[page_query(1, target=host, status="running")],
    )
    found = keyed.provider.find_running(TARGET)
    assert found is not None and found.scan_id == "scan_busy"


def test_find_running_none(mock: responses.RequestsMock, keyed: Rig) -> None:
    mock.get(
        f"{BASE}/scans",
        json=listing(),
        match=[page_query(1, target="10.0.0.0/24", status="pending")],
    )
    mock.get(
        f"{BASE}/scans",
        json=listing(),
        match=[page_query(1, target="10.0.0.0/24", status="running")],
    )
    assert keyed.provider.find_running("10.0.0.0/24") is None


def test_preflight_passes_with_quota_left(mock: responses.RequestsMock, keyed: Rig) -> None:
    mock.get(f"{BASE}/scans/quota", json=asset("quota.json"))
    keyed.provider.preflight(TARGET)


def test_preflight_refuses_an_exhausted_monthly_quota(
    mock: responses.RequestsMock, keyed: Rig
) -> None:
    quota = asset("quota.json")
    quota.update(used_this_month=150, remaining=0)
    mock.get(f"{BASE}/scans/quota", json=quota)
    with pytest.raises(ProviderRateLimitError) as err:
        keyed.provider.preflight(TARGET)
    message = err.value.message
    assert "monthly scan quota exhausted" in message
    assert "plan professional allows 150 scans" in message
    assert "2026-01-01T00:00:00Z" in message
    assert err.value.exit_status == ExitStatus.PROVIDER_ERROR


@pytest.mark.parametrize("status", [403, 404])
def test_preflight_proceeds_without_a_quota_route(
    mock: responses.RequestsMock, keyed: Rig, status: int
) -> None:
    mock.get(f"{BASE}/scans/quota", status=status, json={"detail": "Not found"})
    keyed.provider.preflight(TARGET)


# Polling.


def test_poll_running_with_eta_from_the_estimated_duration(
    mock: responses.RequestsMock, keyed: Rig
) -> None:
    mock.get(f"{BASE}/scans/scan_abc123", json=asset("scan_running.json"))
    scan = ScanRef(
        scan_id=ScanId("scan_abc123"), target=TARGET, extra={"estimated_duration": "2700"}
    )
    progress = keyed.provider.poll(scan)
    assert progress.status is ScanStatus.RUNNING
    assert (progress.raw_status, progress.progress) == ("running", 45.0)
    assert progress.phase == "vulnerability_scanning"
    assert progress.eta_seconds == pytest.approx(2700 - 600)


def test_poll_without_an_estimate_gives_no_eta_but_the_progress(
    mock: responses.RequestsMock, keyed: Rig
) -> None:
    # The schedule extrapolates the percentage itself; an ETA made up from it would be trusted
    # as the provider's own estimate.
    mock.get(f"{BASE}/scans/scan_abc123", json=asset("scan_running.json"))
    progress = keyed.provider.poll(SCAN)
    assert progress.eta_seconds is None
    assert progress.progress == 45.0


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"status": "pending", "progress": 0}, ScanStatus.PENDING, ""),
        ({"status": "completed", "progress": 100}, ScanStatus.COMPLETED, ""),
        ({"status": "failed", "error": "nmap crashed"}, ScanStatus.FAILED, "nmap crashed"),
        ({"status": "failed"}, ScanStatus.FAILED, "failed in phase vulnerability_scanning"),
        ({"status": "cancelled"}, ScanStatus.CANCELLED, ""),
        ({"status": "rebooting"}, ScanStatus.RUNNING, ""),
    ],
)
def test_poll_maps_every_status(
    mock: responses.RequestsMock,
    keyed: Rig,
    fields: dict[str, Any],
    status: ScanStatus,
    message: str,
) -> None:
    body = asset("scan_running.json")
    body.update(fields)
    mock.get(f"{BASE}/scans/scan_abc123", json=body)
    progress = keyed.provider.poll(SCAN)
    assert progress.status is status
    assert message in progress.message and bool(message) == bool(progress.message)
    if status.terminal:
        assert progress.eta_seconds is None


# Fetching findings.


def finding(n: int, **fields: Any) -> dict[str, Any]:
    item: dict[str, Any] = asset("findings.json")["items"][0]
    item.update(id=f"finding_{n}", affected_component=f"https://example.com/p{n}")
    item.update(fields)
    return item


def test_fetch_pages_through_all_findings(mock: responses.RequestsMock, keyed: Rig) -> None:
    mock.get(f"{BASE}/scans/scan_abc123", json=asset("scan_completed.json"))
    pages = [range(0, 100), range(100, 200), range(200, 237)]
    for number, ids in enumerate(pages, start=1):
        mock.get(
            f"{BASE}/scans/scan_abc123/findings",
            json={"items": [finding(n) for n in ids], "total": 237},
            match=[page_query(number), key_headers()],
        )
    done = ScanProgress(status=ScanStatus.COMPLETED, raw_status="completed", progress=100)
    result = keyed.provider.fetch(SCAN, done)
    assert len(result.findings) == 237
    assert len({f.fingerprint for f in result.findings}) == 237
    assert (result.provider, result.scanner, result.scan_id) == (
        "cyberorigen",
        "CyberOrigen",
        "scan_abc123",
    )
    assert result.status is ScanStatus.COMPLETED and result.complete
    # No answer names the engine's version: the API's (fact sheet, base URL /api/v1).
    assert result.scanner_version == "API v1"
    assert result.started_at == datetime(2025, 12, 21, 10, 1, tzinfo=UTC)
    assert result.finished_at == datetime(2025, 12, 21, 10, 45, tzinfo=UTC)
    assert result.details["scan_type"] == "full"
    assert result.details["critical_count"] == "1"
    assert result.details["findings_reported"] == "237"


def test_fetch_maps_each_finding_field(mock: responses.RequestsMock, keyed: Rig) -> None:
    mock.get(f"{BASE}/scans/scan_abc123", json=asset("scan_completed.json"))
    fp = finding(2, title="Reflected XSS", severity="Medium", status="false_positive")
    mock.get(f"{BASE}/scans/scan_abc123/findings", json={"items": [finding(1), fp], "total": 2})
    done = ScanProgress(status=ScanStatus.COMPLETED, raw_status="completed")
    first, second = keyed.provider.fetch(SCAN, done).findings
    # CyberOrigen has no rule id: a slug of the title, never the title's own text.
    assert (first.rule_id, first.title) == (
        "sql-injection-in-login-form",
        "SQL Injection in Login Form",
    )
    assert first.severity is Severity.CRITICAL
    assert first.url == "https://example.com/p1"
    assert (first.cvss, first.cve_ids) == (9.8, ("CVE-2024-1234",))
    assert (first.provider_status, first.false_positive) == ("open", False)
    assert (first.description, first.remediation) == ("...", "...")
    assert second.severity is Severity.MEDIUM
    assert (second.provider_status, second.false_positive) == ("false_positive", True)


def test_fetch_skips_malformed_findings_with_a_warning(
    mock: responses.RequestsMock, keyed: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    mock.get(f"{BASE}/scans/scan_abc123", json=asset("scan_completed.json"))
    items = [
        finding(1),
        "not an object",
        finding(2, title=""),
        finding(3, severity="catastrophic", cvss_score=None),
        finding(4, severity=None, cvss_score=7.5),
        finding(5, cvss_score="n/a", cve_ids="CVE-1"),
    ]
    mock.get(f"{BASE}/scans/scan_abc123/findings", json={"items": items, "total": 6})
    done = ScanProgress(status=ScanStatus.COMPLETED, raw_status="completed")
    with caplog.at_level(logging.WARNING, logger="scangate.providers.cyberorigen"):
        result = keyed.provider.fetch(SCAN, done)
    assert [f.url.rsplit("/", 1)[1] for f in result.findings] == ["p1", "p4", "p5"]
    assert result.findings[1].severity is Severity.HIGH  # from its CVSS score
    assert (result.findings[2].cvss, result.findings[2].cve_ids) == (None, ())
    assert result.details["findings_skipped"] == "3"
    assert len([r for r in caplog.records if "skipped" in r.getMessage()]) == 3


def _two_pages(mock: responses.RequestsMock, second: list[Any], total: int = 500) -> None:
    mock.get(f"{BASE}/scans/scan_abc123", json=asset("scan_completed.json"))
    first = [finding(n) for n in range(100)]
    for number, items in ((1, first), (2, second)):
        mock.get(
            f"{BASE}/scans/scan_abc123/findings",
            json={"items": items, "total": total},
            match=[page_query(number)],
        )


def test_an_empty_page_short_of_the_total_ends_the_list_as_incomplete(
    mock: responses.RequestsMock, keyed: Rig
) -> None:
    _two_pages(mock, [])
    done = ScanProgress(status=ScanStatus.COMPLETED, raw_status="completed")
    result = keyed.provider.fetch(SCAN, done)
    # Pages 3-5 are read ahead at once (unregistered here: they fail), and never looked at.
    pages = [call.request.params["page"] for call in mock.calls[1:]]  # type: ignore[attr-defined]
    assert len(result.findings) == 100 and pages[0] == "1" and "2" in pages
    assert len(pages) <= 2 + 2 * PAGE_WORKERS
    assert not result.complete
    assert result.shortfall == "CyberOrigen announced 500 findings but 100 were fetched"
    assert result.shortfall in result.message


@pytest.mark.parametrize("again", ["same", "shuffled"])
def test_a_server_ignoring_the_page_is_a_provider_error(
    mock: responses.RequestsMock, keyed: Rig, again: str
) -> None:
    repeat = [finding(n) for n in range(100)]
    _two_pages(mock, repeat if again == "same" else repeat[::-1])
    done = ScanProgress(status=ScanStatus.COMPLETED, raw_status="completed")
    with pytest.raises(PagingError) as err:
        keyed.provider.fetch(SCAN, done)
    assert err.value.exit_status == ExitStatus.PROVIDER_ERROR
    cause = "page 2 repeats page 1" if again == "same" else "page 2 lists only items already read"
    assert err.value.message == (
        f"CyberOrigen scans/scan_abc123/findings: the list does not end ({cause})"
    )


def test_pages_adding_one_new_item_each_end_far_past_the_announced_pages(
    mock: responses.RequestsMock, keyed: Rig
) -> None:
    """A server drifting by one item a page never reaches its `total` of 250: the guard stops it
    after the 3 pages that total takes plus `PAGE_MARGIN`, as a provider error."""
    mock.get(f"{BASE}/scans/scan_abc123", json=asset("scan_completed.json"))

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        page = int(request.params["page"])
        items = [finding(n) for n in range(99)] + [finding(1000 + page)]
        return 200, {}, json.dumps({"items": items, "total": 250})

    mock.add_callback(responses.GET, f"{BASE}/scans/scan_abc123/findings", callback=answer)
    done = ScanProgress(status=ScanStatus.COMPLETED, raw_status="completed")
    with pytest.raises(PagingError, match=r"9 pages read, far more than the 3 it announced"):
        keyed.provider.fetch(SCAN, done)
    assert len(mock.calls) == 1 + 3 + PAGE_MARGIN + 1


def test_a_list_announcing_nothing_is_read_to_its_short_page(
    mock: responses.RequestsMock, keyed: Rig
) -> None:
    """A bare array has no total: pages are read until one is short, however many there are."""
    mock.get(f"{BASE}/scans/scan_abc123", json=asset("scan_completed.json"))

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        page = int(request.params["page"])
        size = 100 if page < 30 else 7
        return 200, {}, json.dumps([finding(page * 1000 + n) for n in range(size)])

    mock.add_callback(responses.GET, f"{BASE}/scans/scan_abc123/findings", callback=answer)
    done = ScanProgress(status=ScanStatus.COMPLETED, raw_status="completed")
    result = keyed.provider.fetch(SCAN, done)
    assert len(result.findings) == 29 * 100 + 7 and len(mock.calls) == 31


def test_fetch_of_a_cancelled_scan_keeps_what_it_can(
    mock: responses.RequestsMock, keyed: Rig
) -> None:
    mock.get(f"{BASE}/scans/scan_abc123", status=404, json=asset("error_not_found.json"))
    cancelled = ScanProgress(
        status=ScanStatus.CANCELLED, raw_status="cancelled", completeness=40, message="cancelled"
    )
    result = keyed.provider.fetch(SCAN, cancelled)
    assert (result.status, result.completeness, result.findings) == (
        ScanStatus.CANCELLED,
        40,
        (),
    )
    assert not result.complete


def test_fetch_of_a_completed_scan_fails_loudly(mock: responses.RequestsMock, keyed: Rig) -> None:
    mock.get(f"{BASE}/scans/scan_abc123", json=asset("scan_completed.json"))
    mock.get(f"{BASE}/scans/scan_abc123/findings", json={"unexpected": True})
    done = ScanProgress(status=ScanStatus.COMPLETED, raw_status="completed")
    with pytest.raises(UnexpectedResponseError):
        keyed.provider.fetch(SCAN, done)


# Cancel.


def test_cancel_deletes_a_running_scan(mock: responses.RequestsMock, keyed: Rig) -> None:
    delete = mock.delete(
        f"{BASE}/scans/scan_abc123", json=asset("cancelled.json"), match=[key_headers()]
    )
    running = ScanProgress(status=ScanStatus.RUNNING, raw_status="running")
    keyed.provider.cancel(SCAN, running)
    keyed.provider.cancel(SCAN, None)
    assert delete.call_count == 2


def test_cancel_of_a_vanished_scan_is_fine(mock: responses.RequestsMock, keyed: Rig) -> None:
    mock.delete(f"{BASE}/scans/scan_abc123", status=404, json=asset("error_not_found.json"))
    keyed.provider.cancel(SCAN, None)


@pytest.mark.parametrize("status", [ScanStatus.COMPLETED, ScanStatus.FAILED, ScanStatus.CANCELLED])
def test_cancel_never_deletes_a_finished_scan(
    mock: responses.RequestsMock, keyed: Rig, status: ScanStatus
) -> None:
    keyed.provider.cancel(SCAN, ScanProgress(status=status, raw_status=status.value))
    assert len(mock.calls) == 0


# Login, refresh and renewal on 401.


def test_login_posts_a_form_and_redacts_the_token_at_once(
    mock: responses.RequestsMock, login: Rig
) -> None:
    add_login(mock)

    def quota(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        # By the time the token is first used, the redactor already knows it.
        assert TOKEN_1 in login.registered
        return 200, {}, json.dumps(asset("quota.json"))

    mock.add_callback(responses.GET, f"{BASE}/scans/quota", callback=quota, match=[bearer(TOKEN_1)])
    login.provider.preflight(TARGET)
    token_call = mock.calls[0].request
    assert token_call.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert "X-API-Key" not in mock.calls[1].request.headers
    assert PASSWORD in login.registered
    assert login.redactor(f"token {TOKEN_1}") == "token [redacted by scangate]"


def test_token_is_refreshed_shortly_before_it_expires(
    mock: responses.RequestsMock, login: Rig
) -> None:
    add_login(mock)
    mock.get(f"{BASE}/scans/scan_abc123", json=asset("scan_running.json"), match=[bearer(TOKEN_1)])
    mock.post(f"{BASE}/auth/refresh", json=token_body(TOKEN_2), match=[bearer(TOKEN_1)])
    mock.get(f"{BASE}/scans/scan_abc123", json=asset("scan_running.json"), match=[bearer(TOKEN_2)])
    login.provider.poll(SCAN)
    login.clock.now += 3600 - 120
    login.provider.poll(SCAN)
    assert TOKEN_2 in login.registered
    assert [c.request.method for c in mock.calls] == ["POST", "GET", "POST", "GET"]


def test_an_expired_token_means_a_new_login(mock: responses.RequestsMock, login: Rig) -> None:
    add_login(mock, TOKEN_1)
    mock.get(f"{BASE}/scans/scan_abc123", json=asset("scan_running.json"), match=[bearer(TOKEN_1)])
    add_login(mock, TOKEN_2)
    mock.get(f"{BASE}/scans/scan_abc123", json=asset("scan_running.json"), match=[bearer(TOKEN_2)])
    login.provider.poll(SCAN)
    login.clock.now += 7200
    login.provider.poll(SCAN)
    assert [str(c.request.url).split("/api/v1/")[1] for c in mock.calls] == [
        "auth/token",
        "scans/scan_abc123",
        "auth/token",
        "scans/scan_abc123",
    ]


def test_a_401_refreshes_once_and_retries(mock: responses.RequestsMock, login: Rig) -> None:
    add_login(mock)
    mock.get(
        f"{BASE}/scans/scan_abc123",
        status=401,
        json={"detail": "Token revoked"},
        match=[bearer(TOKEN_1)],
    )
    mock.post(f"{BASE}/auth/refresh", json=token_body(TOKEN_2), match=[bearer(TOKEN_1)])
    mock.get(f"{BASE}/scans/scan_abc123", json=asset("scan_running.json"), match=[bearer(TOKEN_2)])
    assert login.provider.poll(SCAN).status is ScanStatus.RUNNING
    assert len(mock.calls) == 4


def test_a_401_logs_in_again_when_the_refresh_fails(
    mock: responses.RequestsMock, login: Rig
) -> None:
    add_login(mock, TOKEN_1)
    mock.get(
        f"{BASE}/scans/scan_abc123", status=401, json={"detail": "Expired"}, match=[bearer(TOKEN_1)]
    )
    mock.post(f"{BASE}/auth/refresh", status=401, json={"detail": "Expired"})
    add_login(mock, TOKEN_3)
    mock.get(f"{BASE}/scans/scan_abc123", json=asset("scan_running.json"), match=[bearer(TOKEN_3)])
    assert login.provider.poll(SCAN).status is ScanStatus.RUNNING
    assert len(mock.calls) == 5


def test_a_401_after_renewal_is_a_clear_auth_error(
    mock: responses.RequestsMock, login: Rig
) -> None:
    add_login(mock)
    denied = {"detail": "Account disabled", "error_code": "ACCOUNT_DISABLED"}
    first = mock.get(f"{BASE}/scans/scan_abc123", status=401, json=denied, match=[bearer(TOKEN_1)])
    mock.post(f"{BASE}/auth/refresh", json=token_body(TOKEN_2))
    second = mock.get(f"{BASE}/scans/scan_abc123", status=401, json=denied, match=[bearer(TOKEN_2)])
    with pytest.raises(ProviderAuthError) as err:
        login.provider.poll(SCAN)
    assert (first.call_count, second.call_count) == (1, 1)
    assert "Account disabled (ACCOUNT_DISABLED)" in err.value.message
    assert "CYBERORIGEN_USERNAME + CYBERORIGEN_PASSWORD" in err.value.diagnostics()
    assert err.value.exit_status == ExitStatus.PROVIDER_ERROR


@pytest.mark.parametrize(
    ("status", "detail", "hint"),
    [
        (
            401,
            {"detail": "Incorrect username or password", "error_code": "INVALID_CREDENTIALS"},
            "CYBERORIGEN_PASSWORD",
        ),
        (422, {"detail": "MFA code required", "error_code": "MFA_REQUIRED"}, "CYBERORIGEN_API_KEY"),
    ],
)
def test_failed_login_is_an_auth_error(
    mock: responses.RequestsMock, login: Rig, status: int, detail: dict[str, str], hint: str
) -> None:
    token = mock.post(f"{BASE}/auth/token", status=status, json=detail)
    with pytest.raises(ProviderAuthError) as err:
        login.provider.poll(SCAN)
    assert token.call_count == 1  # a retried bad password would count towards a lockout
    assert detail["detail"] in err.value.message
    assert hint in err.value.diagnostics()
    assert PASSWORD not in err.value.diagnostics()
    assert err.value.exit_status == ExitStatus.PROVIDER_ERROR


def test_a_token_answer_without_a_token_is_unexpected(
    mock: responses.RequestsMock, login: Rig
) -> None:
    mock.post(f"{BASE}/auth/token", json={"token_type": "bearer"})
    with pytest.raises(UnexpectedResponseError):
        login.provider.poll(SCAN)


def test_a_401_with_an_api_key_is_not_retried(mock: responses.RequestsMock, keyed: Rig) -> None:
    echo = {"detail": f"Invalid API key {KEY}", "error_code": "INVALID_API_KEY"}
    get = mock.get(f"{BASE}/scans/scan_abc123", status=401, json=echo)
    with pytest.raises(ProviderAuthError) as err:
        keyed.provider.poll(SCAN)
    assert get.call_count == 1
    assert "CYBERORIGEN_API_KEY" in err.value.diagnostics()
    assert KEY not in err.value.diagnostics()
    assert "Invalid API key [redacted by scangate] (INVALID_API_KEY)" in err.value.message


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
        (
            {"status": 401, "json": {"detail": "Not authenticated"}},
            ProviderAuthError,
            1,
            "rejected the credentials",
        ),
        (
            {"status": 403, "json": {"detail": "Missing read:scans", "error_code": "FORBIDDEN"}},
            ProviderAuthError,
            1,
            "Missing read:scans (FORBIDDEN)",
        ),
        (
            {"status": 404, "json": asset("error_not_found.json")},
            ProviderError,
            1,
            "Scan not found (NOT_FOUND)",
        ),
        (
            {
                "status": 429,
                "json": asset("error_rate_limited.json"),
                "headers": {"Retry-After": "30"},
            },
            ProviderRateLimitError,
            5,
            "Rate limit exceeded (RATE_LIMIT_EXCEEDED)",
        ),
        ({"status": 500, "json": {"detail": "Internal error"}}, ProviderError, 5, "HTTP 500"),
        ({"status": 200, "body": "{not json"}, UnexpectedResponseError, 5, "malformed JSON"),
    ],
    ids=["connection", "read-timeout", "401", "403", "404", "429", "500", "malformed"],
)
def test_poll_failures_map_to_errors_and_exit_codes(
    mock: responses.RequestsMock,
    keyed: Rig,
    reply: dict[str, Any],
    error: type[ProviderError],
    calls: int,
    words: str,
) -> None:
    get = mock.get(f"{BASE}/scans/scan_abc123", **reply)
    with pytest.raises(ProviderError) as err:
        keyed.provider.poll(SCAN)
    assert type(err.value) is error
    assert int(err.value.exit_status) == int(ExitStatus.PROVIDER_ERROR) == 3
    assert get.call_count == calls
    assert words in err.value.message


def test_429_holds_back_the_next_request(mock: responses.RequestsMock, keyed: Rig) -> None:
    mock.get(
        f"{BASE}/scans/scan_abc123",
        status=429,
        json=asset("error_rate_limited.json"),
        headers={
            "Retry-After": "30",
            "X-RateLimit-Limit": "500",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(int(NOW) + 900),
        },
    )
    with pytest.raises(ProviderRateLimitError):
        keyed.provider.poll(SCAN)
    assert (keyed.http.rate.limit, keyed.http.rate.remaining) == (500, 0)
    assert keyed.http.rate.reset_at == int(NOW) + 900
    mock.replace(responses.GET, f"{BASE}/scans/scan_abc123", json=asset("scan_running.json"))
    keyed.provider.poll(SCAN)
    assert keyed.sleeps == [30.0]


def test_error_detail_reads_fastapi_validation_lists() -> None:
    response = requests.Response()
    response._content = b"{}"
    body = {"detail": [{"loc": ["body", "authorized"], "msg": "field required"}]}
    assert CyberOrigenProvider.error_detail(response, body) == "body.authorized: field required"
    response._content = b"<html>Bad Gateway</html>"
    assert CyberOrigenProvider.error_detail(response, None) == "<html>Bad Gateway</html>"


# Concurrent paging against the emulator over real HTTP (`paging.read_pages`).


@pytest.fixture
def sandbox() -> Iterator[Any]:
    """Start CyberOrigen emulators on a shared fake clock; each is stopped, crash-free, after."""
    servers: list[EmulatorServer] = []
    clock = FakeClock()

    def launch(generate: int, **options: Any) -> tuple[EmulatorServer, CyberOrigenProvider]:
        scenario = parse_scenario(
            {"generate": generate, "duration": 2, "options": {"cyberorigen": options}}, name="big"
        )
        server = start_sandbox("cyberorigen", scenario, clock=clock)
        servers.append(server)
        # The client's wall clock and sleep are the emulator's: a wait for the hourly window
        # passes at once, and the emulator sees the hour go by.
        connection = Connection(
            base_url=server.base_url,
            redactor=Redactor(),
            backoff=0,
            clock=clock.time,
            sleep=clock.advance,
        )
        provider = CyberOrigenProvider(
            settings=ProviderSettings(name="cyberorigen"),
            env=sandbox_env("cyberorigen"),
            connection=connection,
        )
        return server, provider

    launch.clock = clock  # type: ignore[attr-defined]
    yield launch
    for server in servers:
        server.stop()
        assert server.errors == []


def finished_scan(sandbox: Any, server: EmulatorServer) -> ScanRef:
    """A scan started straight on the emulator and run to its end on the fake clock."""
    started = requests.post(
        server.base_url + "/scans",
        json={"target": "staging.example.com", "authorized": True},
        headers={"X-API-Key": sandbox_env("cyberorigen")["CYBERORIGEN_API_KEY"]},
        timeout=5,
    )
    assert started.status_code == 201, started.text
    sandbox.clock.advance(3)
    return ScanRef(scan_id=ScanId(started.json()["id"]), target="staging.example.com")


def most_at_once(entries: list[Any]) -> int:
    """The most requests the emulator was serving at one moment (from real-time spans)."""
    edges = sorted([(e.span[0], 1) for e in entries] + [(e.span[1], -1) for e in entries])
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


DONE = ScanProgress(status=ScanStatus.COMPLETED, raw_status="completed")


def test_pages_are_read_a_few_at_once_and_every_finding_once_in_page_order(
    sandbox: Any,
) -> None:
    server, provider = sandbox(1250, plan="enterprise", latency=0.05)
    scan = finished_scan(sandbox, server)

    result = provider.fetch(scan, DONE)

    # The emulator's own order, page by page.
    listed = [
        item["affected_component"]
        for page in range(1, 14)
        for item in requests.get(
            f"{server.base_url}/scans/{scan.scan_id}/findings",
            params={"page": page, "per_page": 100},
            headers={"X-API-Key": sandbox_env("cyberorigen")["CYBERORIGEN_API_KEY"]},
            timeout=5,
        ).json()["items"]
    ]
    assert [finding.url for finding in result.findings] == listed and len(listed) == 1250
    assert result.complete and result.details["findings_reported"] == "1250"
    reads = server.log.find("GET", r".*/findings")[:13]
    assert sorted(int(e.query["page"][0]) for e in reads) == list(range(1, 14))
    # Served at once on the emulator's side, never more than the pool.
    assert 1 < most_at_once(reads) <= PAGE_WORKERS
    assert most_at_once(reads[:1] + reads[1:]) == most_at_once(reads)
    assert reads[0].query["page"] == ("1",) and reads[0].span[1] <= min(
        e.span[0] for e in reads[1:]
    )  # page 1 alone first: it tells how many pages there are


def test_a_server_ignoring_the_page_is_caught_while_pages_are_read_at_once(
    sandbox: Any,
) -> None:
    server, provider = sandbox(700, plan="enterprise", ignore_page=True)
    scan = finished_scan(sandbox, server)

    with pytest.raises(PagingError, match=r"page 2 repeats page 1"):
        provider.fetch(scan, DONE)
    time.sleep(0.2)  # pages already handed to the pool are answered, no others are sent
    assert server.log.count("GET", r".*/findings") <= 1 + 2 * PAGE_WORKERS


def test_concurrent_pages_stay_within_the_hourly_budget_without_a_429(sandbox: Any) -> None:
    """30 requests an hour; the read needs 27 (start, scan, 25 pages): all fit, none refused."""
    server, provider = sandbox(2500, rate_limit=30, latency=0.02)
    scan = finished_scan(sandbox, server)

    result = provider.fetch(scan, DONE)

    assert len(result.findings) == 2500 and result.complete
    assert server.log.count(status=429) == 0 and len(server.log) <= 30
    assert most_at_once(server.log.find("GET", r".*/findings")) > 1


def test_a_budget_shorter_than_the_list_waits_for_the_window_one_request_at_a_time(
    sandbox: Any,
) -> None:
    """12 requests an hour for 30 pages: the pool shrinks to one request as the budget runs
    low; the one refusal an hour gets is waited out (Retry-After) and nothing else is refused."""
    server, provider = sandbox(3000, rate_limit=12)
    provider.http.watch(time_left=lambda: 10 * 3600.0)
    scan = finished_scan(sandbox, server)

    result = provider.fetch(scan, DONE)

    assert len(result.findings) == 3000 and result.complete
    # The emulator's hourly windows, on its clock (which the client's waits move): each opens
    # with the first request after the last one closed. None serves more than 12.
    windows: list[list[Any]] = []
    for entry in server.log:
        if not windows or entry.time - windows[-1][0].time >= 3600:
            windows.append([])
        windows[-1].append(entry)
    served = [sum(1 for e in window if e.status != 429) for window in windows]
    assert sum(served) == 2 + 30 and max(served) <= 12
    # At most the one refusal that tells an exhausted window's reset, per window.
    assert [sum(1 for e in window if e.status == 429) for window in windows][:-1] == [1] * (
        len(windows) - 1
    )
    assert len(windows) == math.ceil(32 / 12)


def test_an_expiring_token_is_refreshed_once_by_threads_reading_at_once() -> None:
    clock = rig.Clock(NOW)
    calls: list[str] = []
    tokens = iter([TOKEN_2, TOKEN_3, "four", "five"])

    def refresh() -> None:
        calls.append("refresh")
        time.sleep(0.05)  # a slow answer: every other thread arrives meanwhile
        login.adopt(next(tokens), 3600.0)

    login = TokenLogin(
        "CyberOrigen", clock, login=lambda: None, refresh=refresh, refresh_token=False
    )
    login.adopt(TOKEN_1, 3600.0)
    clock.now += 3600 - 60  # inside the refresh margin
    threads = [threading.Thread(target=login.ensure) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert calls == ["refresh"] and login.access == TOKEN_2

    # A wave of 401s on the same token: the first thread renews, the others resend.
    def refused_then_renew() -> None:
        assert login.headers() == {"Authorization": f"Bearer {TOKEN_2}"}
        barrier.wait(5)
        assert login.renew()

    barrier = threading.Barrier(4)
    threads = [threading.Thread(target=refused_then_renew) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert calls == ["refresh", "refresh"] and login.access == TOKEN_3
