"""The CyberSec Pro adapter against `responses`: both shapes, auth, pacing and every failure.

Payloads in `tests/assets/cybersecpro/` are the shapes printed in `providers/cybersecpro.md`:
`*_documented.json` from the published reference, `*_implementation.json` from the source.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
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
    ProviderBusyError,
    ProviderError,
    ProviderRateLimitError,
    ProviderUnavailableError,
    UnexpectedResponseError,
)
from scangate.model import ScanId, ScanStatus, Severity
from scangate.policy import check_options, load_policy
from scangate.providers import provider_class
from scangate.providers.cybersecpro import PLANS, CyberSecProProvider
from scangate.providers.interface import ScanProgress, ScanRef, StartAttempt
from scangate.providers.paging import PagingError

from . import rig

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "cybersecpro"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policies" / "cybersecpro.yml"
BASE = CyberSecProProvider.DEFAULT_BASE_URL
KEY = "csp_" + "0123456789abcdef" * 4
EMAIL = "ci@example.com"
PASSWORD = "correct horse battery staple"
HINT = "CYBERSECPRO_API_KEY, or CYBERSECPRO_EMAIL + CYBERSECPRO_PASSWORD"
NOW = datetime(2026, 1, 15, 14, 35, 0, tzinfo=UTC).timestamp()
TARGET = "https://Example.com/"
SCAN = ScanRef(scan_id=ScanId("scan_a1b2c3d4"), target=TARGET)
DETAIL = f"{BASE}/scans/scan_a1b2c3d4"
RESULT = f"{BASE}/scan/scan_a1b2c3d4/result"
LIST_QUERY = {"page": "1", "per_page": "100", "sort": "created_at", "order": "desc"}
DONE = ScanProgress(status=ScanStatus.COMPLETED, raw_status="completed")


def asset(name: str) -> Any:
    """A recorded payload (a fresh copy, so a test may change it)."""
    path = ASSETS / name
    assert path.is_file(), f"missing test asset {path}"
    return copy.deepcopy(json.loads(path.read_text(encoding="utf-8")))


def jwt(name: str, *, life: float = 3600, kind: str = "access", iat: float = NOW) -> str:
    """An unsigned JWT-shaped token with `iat`/`exp` claims; `name` makes it unique."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    claims = {"sub": name, "iat": int(iat), "exp": int(iat + life), "token_type": kind}
    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl{name}"


ACCESS_1, ACCESS_2, ACCESS_3 = jwt("one"), jwt("two"), jwt("three")
REFRESH = jwt("refresh", life=30 * 86400, kind="refresh")


class Rig(rig.Rig):
    """The CyberSec Pro adapter, built through the registry; the clock moves when it sleeps."""

    def __init__(
        self,
        env: dict[str, str],
        options: dict[str, Any] | None = None,
        unrated: Severity = Severity.HIGH,
    ) -> None:
        super().__init__(
            "cybersecpro", env, options, now=NOW, sleep_advances=True, unrated_severity=unrated
        )


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    """Every request must be registered, and every registered response used."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


@pytest.fixture
def keyed() -> Rig:
    """A provider using `CYBERSECPRO_API_KEY` (assumed professional plan)."""
    return Rig({"CYBERSECPRO_API_KEY": KEY})


@pytest.fixture
def login() -> Rig:
    """A provider using `CYBERSECPRO_EMAIL` + `CYBERSECPRO_PASSWORD` on a roomy plan."""
    return Rig(
        {"CYBERSECPRO_EMAIL": EMAIL, "CYBERSECPRO_PASSWORD": PASSWORD}, {"plan": "enterprise"}
    )


def key_headers() -> Any:
    return matchers.header_matcher({"X-API-Key": KEY, "User-Agent": f"scangate/{__version__}"})


def bearer(token: str) -> Any:
    return matchers.header_matcher({"Authorization": f"Bearer {token}"})


def login_body(*, documented: bool, access: str = ACCESS_1) -> dict[str, Any]:
    if documented:
        return {**asset("login_documented.json"), "access_token": access}
    return {**asset("login_implementation.json"), "access_token": access, "refresh_token": REFRESH}


def add_login(
    mock: responses.RequestsMock, *, documented: bool = False, access: str = ACCESS_1
) -> Any:
    body = matchers.json_params_matcher({"email": EMAIL, "password": PASSWORD}, strict_match=True)
    return mock.post(
        f"{BASE}/auth/login", json=login_body(documented=documented, access=access), match=[body]
    )


def detail(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = asset("scan_detail.json")
    body["scan"].update(fields)
    return body


def attempt(known: frozenset[str] = frozenset()) -> StartAttempt:
    sent = datetime(2026, 1, 15, 14, 30, 0, tzinfo=UTC)
    return StartAttempt(target=TARGET, marker="scangate-0123", sent_at=sent, known_ids=known)


def impl_list(*items: dict[str, Any]) -> dict[str, Any]:
    return {"scans": list(items), "total": len(items), "page": 1, "per_page": 100}


def item(scan_id: str, created_at: str, **fields: Any) -> dict[str, Any]:
    return {"id": scan_id, "target": "example.com", "status": "completed", **fields} | {
        "created_at": created_at
    }


# Declarations.


def test_registry_names_this_class_with_its_documented_facts() -> None:
    cls = provider_class("cybersecpro")
    assert cls is CyberSecProProvider
    assert cls.DEFAULT_BASE_URL == "https://api.cyber-sec-pro.com/api/v1"
    assert [spec.variables for spec in cls.credentials] == [
        ("CYBERSECPRO_API_KEY",),
        ("CYBERSECPRO_EMAIL", "CYBERSECPRO_PASSWORD"),
    ]
    assert [spec.secret for spec in cls.credentials] == [
        {"CYBERSECPRO_API_KEY"},
        {"CYBERSECPRO_PASSWORD"},
    ]
    caps = cls.capabilities
    assert (caps.progress, caps.eta, caps.cancel, caps.attach) == (False, False, True, True)
    assert caps.rate_limit_headers and caps.per_finding_detail and not caps.runcheck
    assert {"Authorization", "X-API-Key", "Cookie"} <= set(cls.secret_headers)


@pytest.mark.parametrize(
    ("options", "valid"),
    [
        ({}, True),
        (
            {
                "tool": "nmap",
                "parameters": {"ports": "1-10000", "timing": "-T4"},
                "plan": "trial",
                "key_header": "bearer",
                "agent_id": "agent-eu-1",
                "project_id": 42,
            },
            True,
        ),
        ({"tool": ""}, False),
        ({"parameters": "-sV"}, False),
        ({"plan": "gold"}, False),
        ({"key_header": "cookie"}, False),
        ({"project_id": 0}, False),
        ({"scan_type": "custom"}, False),
    ],
)
def test_options_schema(options: dict[str, Any], valid: bool) -> None:
    schema = CyberSecProProvider.options_schema
    jsonschema.Draft202012Validator.check_schema(schema)
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(options))
    assert (not errors) is valid
    assert schema["properties"]["tool"]["default"] == "nuclei"  # design §9


def test_the_example_policy_sets_every_option_and_passes_the_policy_checks() -> None:
    policy = load_policy(EXAMPLE)
    check_options(policy, CyberSecProProvider.options_schema)  # raises on a problem
    documented = set(CyberSecProProvider.options_schema["properties"])
    text = EXAMPLE.read_text(encoding="utf-8")
    assert policy.provider.name == "cybersecpro"
    assert all(f"{name}:" in text for name in documented)


# Request shapes with an API key.


def test_api_key_and_user_agent_on_every_call(mock: responses.RequestsMock, keyed: Rig) -> None:
    mock.get(f"{BASE}/scans", json=impl_list(), match=[key_headers()])
    mock.get(DETAIL, json=detail(), match=[key_headers()])
    keyed.provider.find_running(TARGET)
    keyed.provider.poll(SCAN)
    assert all("Authorization" not in call.request.headers for call in mock.calls)
    assert KEY in keyed.registered


def test_api_key_as_bearer_token(mock: responses.RequestsMock) -> None:
    rig = Rig({"CYBERSECPRO_API_KEY": KEY}, {"key_header": "bearer"})
    mock.get(DETAIL, json=detail(), match=[bearer(KEY)])
    rig.provider.poll(SCAN)
    assert "X-API-Key" not in mock.calls[0].request.headers


def test_start_sends_target_tool_and_parameters_with_the_documented_defaults(
    mock: responses.RequestsMock, keyed: Rig
) -> None:
    body = {"target": TARGET, "tool": "nuclei", "parameters": {}}
    mock.post(
        f"{BASE}/scans/create",
        json=asset("create_documented.json"),
        status=201,
        match=[key_headers(), matchers.json_params_matcher(body, strict_match=True)],
    )
    ref = keyed.provider.start(attempt())
    assert (ref.scan_id, ref.target) == ("scan_a1b2c3d4", TARGET)
    assert ref.created_at == datetime(2026, 1, 15, 14, 30, tzinfo=UTC)
    assert ref.extra == {"tool": "nmap"}


def test_start_sends_every_option(mock: responses.RequestsMock) -> None:
    options = {
        "tool": "nmap",
        "parameters": {"scan_type": "-sV -sC -O", "ports": "1-10000"},
        "agent_id": "agent-eu-1",
        "project_id": 42,
    }
    rig = Rig({"CYBERSECPRO_API_KEY": KEY}, options)
    body = {"target": TARGET, **options}
    mock.post(
        f"{BASE}/scans/create",
        json=asset("create_implementation.json"),
        status=201,
        match=[matchers.json_params_matcher(body, strict_match=True)],
    )
    assert rig.provider.start(attempt()).scan_id == "5f0c9a7e-2b1d-4c3e-8f6a-9d0e1b2c3a4f"


@pytest.mark.parametrize(
    ("answer", "scan_id"),
    [
        ({"id": "scan_1", "status": "created"}, "scan_1"),
        ({"scan_id": "scan_2", "status": "running"}, "scan_2"),
        ({"status": "pending", "scan": {"id": "scan_3"}}, "scan_3"),
        ({"scan_id": "scan_4", "id": "other"}, "scan_4"),
    ],
    ids=["doc-id", "impl-scan_id", "nested", "scan_id-first"],
)
def test_start_accepts_every_id_shape(
    mock: responses.RequestsMock, keyed: Rig, answer: dict[str, Any], scan_id: str
) -> None:
    mock.post(f"{BASE}/scans/create", json=answer, status=201)
    assert keyed.provider.start(attempt()).scan_id == scan_id


# Ambiguous and refused starts: never retried.


@pytest.mark.parametrize(
    "reply",
    [
        {
            "body": requests.exceptions.ConnectionError(
                ProtocolError("Connection aborted.", RemoteDisconnected("closed without response"))
            )
        },
        {"body": requests.exceptions.ReadTimeout("read timed out")},
        {"status": 502, "json": {"error": "Bad gateway"}},
        {"status": 201, "body": "<html>proxy page</html>"},
        {"status": 201, "json": {"success": True, "status": "running"}},
        {"status": 201, "json": ["scan_1"]},
    ],
    ids=["dropped", "read-timeout", "502", "not-json", "no-id", "not-an-object"],
)
def test_ambiguous_start_is_sent_exactly_once(
    mock: responses.RequestsMock, keyed: Rig, reply: dict[str, Any]
) -> None:
    post = mock.post(f"{BASE}/scans/create", **reply)
    with pytest.raises(AmbiguousStartError) as err:
        keyed.provider.start(attempt())
    assert post.call_count == 1
    assert err.value.exit_status == ExitStatus.PROVIDER_ERROR


@pytest.mark.parametrize(
    ("status", "body", "error", "hint"),
    [
        (
            429,
            {"error": "Too many scan requests"},
            ProviderBusyError,  # a queue for the runner (issue 14), not a failure
            "5 scan starts a minute",
        ),
        (429, {"error": "Daily scan limit reached"}, ProviderRateLimitError, "3 scans a day"),
        (402, {"error": "Plan upgrade required. Need professional plan."}, ProviderError, "plan"),
        (404, {"error": "Tool not found: zapp"}, ProviderError, "provider.options.tool"),
        (400, {"error": "Valid target required"}, ProviderError, "scan.target"),
        (200, {"error": "Failed to create scan: disk full"}, ProviderError, ""),
        (201, {"success": False, "message": "Agent offline"}, ProviderError, ""),
    ],
    ids=["per-minute", "daily", "402", "tool", "target", "200-error", "success-false"],
)
def test_a_refused_start_is_a_clear_error_and_never_retried(
    mock: responses.RequestsMock,
    keyed: Rig,
    status: int,
    body: dict[str, Any],
    error: type[ProviderError],
    hint: str,
) -> None:
    post = mock.post(f"{BASE}/scans/create", status=status, json=body)
    with pytest.raises(ProviderError) as err:
        keyed.provider.start(attempt())
    assert type(err.value) is error
    assert post.call_count == 1
    said = str(body.get("error") or body.get("message"))
    assert said in err.value.message
    assert hint in err.value.diagnostics()
    assert err.value.exit_status == ExitStatus.PROVIDER_ERROR


# Looking scans up: the list of scans, newest first, in either list shape, to its end.


def test_find_running_reads_every_page_of_the_list(
    mock: responses.RequestsMock, keyed: Rig
) -> None:
    """The running scan is on page 3 of 3 (the adapter once read only the first page)."""

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        page = int(request.params["page"])
        items = [item(f"scan_{page}_{n}", "2026-01-15T14:00:00") for n in range(100)]
        if page == 3:
            items = [item("scan_live", "2026-01-01T00:00:00", status="running")]
        return 200, {}, json.dumps({"scans": items, "total": 201, "page": page, "per_page": 100})

    mock.add_callback(responses.GET, f"{BASE}/scans", callback=answer)
    found = keyed.provider.find_running("example.com")
    assert found is not None and found.scan_id == "scan_live"
    assert len(mock.calls) == 3


def test_a_list_ignoring_the_page_is_a_provider_error(
    mock: responses.RequestsMock, keyed: Rig
) -> None:
    items = [item(f"scan_{n}", "2026-01-15T14:00:00") for n in range(100)]
    mock.get(f"{BASE}/scans", json={"scans": items, "total": 500, "page": 1, "per_page": 100})
    with pytest.raises(PagingError, match=r"scans: the list does not end \(page 2 repeats"):
        keyed.provider.find_running("example.com")


def test_find_started_reads_only_as_far_back_as_the_attempt(
    mock: responses.RequestsMock, keyed: Rig
) -> None:
    """Newest first: the page reaching scans older than the attempt is the last one read."""
    older = [item(f"scan_{n}", "2026-01-01T00:00:00") for n in range(100)]
    mock.get(f"{BASE}/scans", json={"scans": older, "total": 900, "page": 1, "per_page": 100})
    assert keyed.provider.find_started(attempt()) is None
    assert len(mock.calls) == 1


@pytest.mark.parametrize("shape", ["documented", "implementation"])
def test_find_running_reads_both_list_shapes(
    mock: responses.RequestsMock, keyed: Rig, shape: str
) -> None:
    answer = asset(f"list_{shape}.json")
    mock.get(f"{BASE}/scans", json=answer, match=[matchers.query_param_matcher(LIST_QUERY)])
    found = keyed.provider.find_running("EXAMPLE.com")
    listed = (answer.get("data") or answer.get("scans"))[0]
    assert found is not None and found.scan_id == listed["id"]
    assert found.created_at == datetime(2026, 1, 15, 14, 30, tzinfo=UTC)


def test_find_running_matches_the_host_and_an_active_status(
    mock: responses.RequestsMock, keyed: Rig
) -> None:
    items = [
        item("scan_done", "2026-01-15T14:00:00", status="completed"),
        item("scan_other", "2026-01-15T14:01:00", status="running", target="example.org"),
        item("scan_pending", "2026-01-15T14:02:00", status=None, target="https://EXAMPLE.com/x"),
    ]
    mock.get(f"{BASE}/scans", json=impl_list(*items))
    found = keyed.provider.find_running(TARGET)
    assert found is not None and found.scan_id == "scan_pending"  # a null status is pending


def test_known_scans_reuses_the_listing_find_running_just_made(
    mock: responses.RequestsMock, keyed: Rig
) -> None:
    items = [
        item("scan_a", "2026-01-15T14:00:00"),
        item("scan_b", "2026-01-15T14:01:00", target="example.org"),
    ]
    listing = mock.get(f"{BASE}/scans", json=impl_list(*items))
    assert keyed.provider.find_running(TARGET) is None
    assert keyed.provider.known_scans(TARGET) == {"scan_a"}
    assert listing.call_count == 1
    keyed.clock.now += 60  # stale, and used up anyway: a second call lists again
    assert keyed.provider.known_scans(TARGET) == {"scan_a"}
    assert listing.call_count == 2


def test_find_started_picks_the_first_new_scan_of_the_host(
    mock: responses.RequestsMock, keyed: Rig
) -> None:
    items = [
        item("scan_later", "2026-01-15T14:30:40Z"),
        item("scan_ours", "2026-01-15T14:30:01"),  # naive timestamps are UTC
        item("scan_known", "2026-01-15T14:29:59"),
        item("scan_old", "2026-01-15T14:20:00"),
        item("scan_other", "2026-01-15T14:30:00", target="example.org"),
    ]
    mock.get(f"{BASE}/scans", json=impl_list(*items))
    found = keyed.provider.find_started(attempt(frozenset({"scan_known"})))
    assert found is not None and (found.scan_id, found.target) == ("scan_ours", TARGET)


def test_find_started_returns_none_when_no_scan_was_created(
    mock: responses.RequestsMock, keyed: Rig
) -> None:
    answer = {"data": [item("scan_known", "2026-01-15T14:30:05Z")], "pagination": {"total": 1}}
    mock.get(f"{BASE}/scans", json=answer)
    assert keyed.provider.find_started(attempt(frozenset({"scan_known"}))) is None


def test_find_started_raises_when_the_lookup_fails(
    mock: responses.RequestsMock, keyed: Rig
) -> None:
    listing = mock.get(f"{BASE}/scans", status=503, json={"error": "down"})
    with pytest.raises(ProviderError) as err:
        keyed.provider.find_started(attempt())
    assert err.value.exit_status == ExitStatus.PROVIDER_ERROR
    assert listing.call_count == 5


def test_a_list_without_items_is_unexpected(mock: responses.RequestsMock, keyed: Rig) -> None:
    mock.get(f"{BASE}/scans", json={"items": []})
    with pytest.raises(UnexpectedResponseError):
        keyed.provider.find_running(TARGET)


# Polling.


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"status": "created"}, ScanStatus.PENDING, ""),
        ({"status": "pending"}, ScanStatus.PENDING, ""),
        ({"status": None}, ScanStatus.PENDING, ""),
        ({"status": "running"}, ScanStatus.RUNNING, ""),
        ({"status": "completed"}, ScanStatus.COMPLETED, ""),
        ({"status": "failed", "error_log": "nuclei: exit 1"}, ScanStatus.FAILED, "nuclei: exit 1"),
        ({"status": "failed"}, ScanStatus.FAILED, "reported the scan failed"),
        ({"status": "cancelled"}, ScanStatus.CANCELLED, ""),
        ({"status": "Rebooting"}, ScanStatus.RUNNING, ""),
    ],
)
def test_poll_maps_every_status(
    mock: responses.RequestsMock,
    keyed: Rig,
    fields: dict[str, Any],
    status: ScanStatus,
    message: str,
) -> None:
    mock.get(DETAIL, json=detail(**fields))
    progress = keyed.provider.poll(SCAN)
    assert progress.status is status
    assert message in progress.message and bool(message) == bool(progress.message)
    assert progress.completeness == (
        0 if status in (ScanStatus.FAILED, ScanStatus.CANCELLED) else 100
    )
    assert progress.progress is None and progress.eta_seconds is None


def test_poll_accepts_an_unwrapped_detail(mock: responses.RequestsMock, keyed: Rig) -> None:
    mock.get(DETAIL, json=detail()["scan"])
    assert keyed.provider.poll(SCAN).status is ScanStatus.COMPLETED


def test_an_http_200_error_body_is_an_error(mock: responses.RequestsMock, keyed: Rig) -> None:
    mock.get(DETAIL, json=asset("error_not_found.json"))
    with pytest.raises(ProviderError) as err:
        keyed.provider.poll(SCAN)
    assert type(err.value) is ProviderError
    assert "with an error (HTTP 200): Scan not found" in err.value.message
    assert err.value.exit_status == ExitStatus.PROVIDER_ERROR


def test_a_detail_without_a_scan_is_unexpected(mock: responses.RequestsMock, keyed: Rig) -> None:
    mock.get(DETAIL, json={"message": "ok"})
    with pytest.raises(UnexpectedResponseError):
        keyed.provider.poll(SCAN)


# Results in both shapes.


def fetch(
    rig: Rig, mock: responses.RequestsMock, result: Any, progress: ScanProgress = DONE
) -> Any:
    mock.get(DETAIL, json=detail())
    mock.get(RESULT, json=result, match=[key_headers()])
    rig.provider.poll(SCAN)
    return rig.provider.fetch(SCAN, progress)


def test_fetch_maps_the_documented_vulnerabilities(
    mock: responses.RequestsMock, keyed: Rig
) -> None:
    result = fetch(keyed, mock, asset("result_documented.json"))
    (finding,) = result.findings
    # No template or check id: the rule id is a slug of the title.
    assert (finding.rule_id, finding.title) == (
        "apache-request-smuggling",
        "Apache Request Smuggling",
    )
    assert finding.severity is Severity.CRITICAL
    assert (finding.cvss, finding.cve_ids) == (9.8, ("CVE-2023-25690",))
    assert finding.response == "HTTP/1.1 smuggling..."
    assert finding.remediation == "Upgrade Apache to 2.4.58+"
    assert finding.url == TARGET  # neither shape names a location: the scan target
    assert (result.provider, result.scanner, result.scan_id) == (
        "cybersecpro",
        "CyberSec Pro",
        "scan_a1b2c3d4",
    )
    assert result.status is ScanStatus.COMPLETED and result.complete
    assert result.started_at == datetime(2026, 1, 15, 14, 30, tzinfo=UTC)
    assert result.finished_at == datetime(2026, 1, 15, 14, 32, 4, tzinfo=UTC)
    assert result.details["result_shape"] == "documented"
    assert (result.details["findings_reported"], result.details["open_ports"]) == ("1", "4")
    assert result.details["duration"] == "2m 4s"


def test_fetch_maps_the_implementations_tool_findings(
    mock: responses.RequestsMock, keyed: Rig
) -> None:
    result = fetch(keyed, mock, asset("result_implementation.json"))
    assert [(f.title, f.severity) for f in result.findings] == [
        ("Exposed .git directory", Severity.HIGH),
        ("Missing HSTS header", Severity.MEDIUM),
        ("Cookie without HttpOnly", Severity.LOW),
    ]
    assert result.findings[0].description == "/.git/config is readable"
    assert result.details["result_shape"] == "implementation"
    assert (result.details["services"], result.details["subdomains"]) == ("2", "1")
    assert result.details["findings_reported"] == "3"
    assert len({f.fingerprint for f in result.findings}) == 3


def test_counts_above_the_list_make_the_result_incomplete(
    mock: responses.RequestsMock, keyed: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    body = asset("result_documented.json")
    body["findings"].update(total=12, high=3)
    with caplog.at_level(logging.WARNING, logger="scangate.providers.cybersecpro"):
        result = fetch(keyed, mock, body)
    assert len(result.findings) == 1 and result.details["findings_reported"] == "12"
    assert not result.complete
    assert result.shortfall == (
        "CyberSec Pro announced 12 findings but 1 were fetched; "
        "CyberSec Pro announced 4 findings of high severity or above but 1 were fetched"
    )
    assert result.shortfall in caplog.text


def test_a_finding_rated_above_its_count_is_no_shortfall(
    mock: responses.RequestsMock, keyed: Rig
) -> None:
    """Counts compare "this severity or above": a critical counted as high loses nothing."""
    body = asset("result_documented.json")
    body["findings"].update(critical=0, high=1)
    result = fetch(keyed, mock, body)
    assert result.findings[0].severity is Severity.CRITICAL
    assert result.complete and result.shortfall == ""


def vulnerability(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = asset("result_documented.json")["vulnerabilities"][0]
    return {**base, **fields}


def test_fetch_reads_every_finding_leniently(
    mock: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    rig = Rig({"CYBERSECPRO_API_KEY": KEY}, unrated=Severity.MEDIUM)
    items = [
        vulnerability(title="Scored", severity="urgent", cvss=7.5),
        vulnerability(title="Zero", severity=None, cvss=0),
        vulnerability(title="None word", severity="None", cvss=None),
        vulnerability(title="Unrated", severity=None, cvss=None),
        vulnerability(title="Too high", cvss=11, cve=["CVE-1", "CVE-2"]),
        vulnerability(title="Too low", cvss=-3, cve=None, cve_ids=["CVE-3"]),
        vulnerability(title="Located", url="https://example.com/a?x=1", template_id="git-config"),
        vulnerability(title=""),
        "not an object",
    ]
    body = {"scan_id": "scan_a1b2c3d4", "findings": {"total": 9}, "vulnerabilities": items}
    with caplog.at_level(logging.WARNING, logger="scangate.providers.cybersecpro"):
        result = fetch(rig, mock, body)
    found = {f.title: f for f in result.findings}
    assert found["Scored"].severity is Severity.HIGH  # CVSS 7.5
    assert found["Zero"].severity is Severity.INFO
    assert found["None word"].severity is Severity.INFO
    assert found["Unrated"].severity is Severity.MEDIUM  # provider.unrated_severity
    assert (found["Too high"].cvss, found["Too high"].cve_ids) == (10.0, ("CVE-1", "CVE-2"))
    assert (found["Too low"].cvss, found["Too low"].cve_ids) == (0.0, ("CVE-3",))
    assert (found["Located"].url, found["Located"].rule_id) == (
        "https://example.com/a?x=1",
        "git-config",
    )
    assert result.details["findings_skipped"] == "2" and len(result.findings) == 7
    assert "'Unrated' has no usable severity; counted as medium" in caplog.text


def test_a_result_with_an_error_body_fails_a_completed_scan(
    mock: responses.RequestsMock, keyed: Rig
) -> None:
    with pytest.raises(ProviderError) as err:
        fetch(keyed, mock, {"error": "Failed to load result"})
    assert "(HTTP 200): Failed to load result" in err.value.message


def test_a_result_of_no_known_shape_is_unexpected(mock: responses.RequestsMock, keyed: Rig) -> None:
    with pytest.raises(UnexpectedResponseError):
        fetch(keyed, mock, {"report": "html"})


def test_a_failed_scan_keeps_its_partial_findings_and_its_reason(
    mock: responses.RequestsMock, keyed: Rig
) -> None:
    mock.get(DETAIL, json=detail(status="failed", error_log="nuclei crashed", completed_at=None))
    mock.get(RESULT, json=asset("result_documented.json"))
    progress = keyed.provider.poll(SCAN)
    result = keyed.provider.fetch(SCAN, progress)
    assert (result.status, result.completeness, len(result.findings)) == (
        ScanStatus.FAILED,
        0,
        1,
    )
    assert result.message == "nuclei crashed" and not result.complete
    assert result.scanner_version == "API v1"  # the tool's version is in no answer


def test_a_cancelled_scan_without_a_result_still_gives_a_result(
    mock: responses.RequestsMock, keyed: Rig
) -> None:
    mock.get(RESULT, status=404, json=asset("error_not_found.json"))
    cancelled = ScanProgress(status=ScanStatus.CANCELLED, raw_status="cancelled", completeness=0)
    result = keyed.provider.fetch(SCAN, cancelled)
    assert (result.status, result.findings, result.started_at) == (ScanStatus.CANCELLED, (), None)


# Cancel.


def test_cancel_posts_to_the_cancel_route(mock: responses.RequestsMock, keyed: Rig) -> None:
    post = mock.post(f"{DETAIL}/cancel", json={"message": "Scan cancelled"}, match=[key_headers()])
    keyed.provider.cancel(SCAN, ScanProgress(status=ScanStatus.RUNNING, raw_status="running"))
    keyed.provider.cancel(SCAN, None)
    assert post.call_count == 2


def test_cancel_of_an_ended_scan_is_fine(mock: responses.RequestsMock, keyed: Rig) -> None:
    body = {"error": "Scan not found or already completed"}
    mock.post(f"{DETAIL}/cancel", status=404, json=body)
    keyed.provider.cancel(SCAN, None)


@pytest.mark.parametrize("status", [ScanStatus.COMPLETED, ScanStatus.FAILED, ScanStatus.CANCELLED])
def test_cancel_sends_nothing_for_a_finished_scan(
    mock: responses.RequestsMock, keyed: Rig, status: ScanStatus
) -> None:
    keyed.provider.cancel(SCAN, ScanProgress(status=status, raw_status=status.value))
    assert len(mock.calls) == 0


def test_cancel_refused_in_an_http_200_body_is_an_error(
    mock: responses.RequestsMock, keyed: Rig
) -> None:
    mock.post(f"{DETAIL}/cancel", json={"error": "Agent unreachable"})
    with pytest.raises(ProviderError, match="refused to cancel scan scan_a1b2c3d4: Agent"):
        keyed.provider.cancel(SCAN, None)


def test_cancel_never_waits_for_the_budget(mock: responses.RequestsMock) -> None:
    rig = Rig({"CYBERSECPRO_API_KEY": KEY}, {"plan": "trial"})
    mock.get(DETAIL, json=detail(status="running"))
    mock.post(f"{DETAIL}/cancel", json={"message": "Scan cancelled"})
    for _ in range(5):
        rig.provider.poll(SCAN)  # the trial's burst is used up: polls had to wait
    waited = len(rig.sleeps)
    rig.http.rate.hold_until = rig.clock.now + 60  # a `Retry-After: 60` is running too
    rig.provider.cancel(SCAN, None)
    assert waited > 0 and len(rig.sleeps) == waited
    assert rig.http.rate.hold_until == rig.clock.now + 60  # still applies to what follows


# Login, refresh and renewal on 401.


def test_login_posts_json_and_redacts_the_tokens_before_their_first_use(
    mock: responses.RequestsMock, login: Rig
) -> None:
    add_login(mock)

    def poll(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        assert ACCESS_1 in login.registered and REFRESH in login.registered
        return 200, {}, json.dumps(detail())

    mock.add_callback(responses.GET, DETAIL, callback=poll, match=[bearer(ACCESS_1)])
    login.provider.poll(SCAN)
    assert mock.calls[0].request.headers["Content-Type"] == "application/json"
    assert "X-API-Key" not in mock.calls[1].request.headers
    assert PASSWORD in login.registered
    assert login.redactor(f"token {ACCESS_1}") == "token [redacted by scangate]"


def test_the_implementation_login_is_refreshed_with_the_refresh_token_before_expiry(
    mock: responses.RequestsMock, login: Rig
) -> None:
    add_login(mock)
    mock.get(DETAIL, json=detail(), match=[bearer(ACCESS_1)])
    refresh = mock.post(
        f"{BASE}/auth/refresh", json={"access_token": ACCESS_2}, match=[bearer(REFRESH)]
    )
    mock.get(DETAIL, json=detail(), match=[bearer(ACCESS_2)])
    mock.post(f"{BASE}/auth/refresh", json={"access_token": ACCESS_3}, match=[bearer(REFRESH)])
    mock.get(DETAIL, json=detail(), match=[bearer(ACCESS_3)])
    login.provider.poll(SCAN)
    login.clock.now += 3600 - 200  # inside the last tenth of the hour
    login.provider.poll(SCAN)
    login.clock.now += 3600 - 200  # the refresh answer has no refresh token: the first is kept
    login.provider.poll(SCAN)
    assert refresh.call_count == 1 and ACCESS_3 in login.registered


def test_the_documented_login_has_no_refresh_token_so_it_logs_in_again(
    mock: responses.RequestsMock, login: Rig
) -> None:
    add_login(mock, documented=True, access=ACCESS_1)
    mock.get(DETAIL, json=detail(), match=[bearer(ACCESS_1)])
    add_login(mock, documented=True, access=ACCESS_2)
    mock.get(DETAIL, json=detail(), match=[bearer(ACCESS_2)])
    login.provider.poll(SCAN)
    login.clock.now += 3600 - 200
    login.provider.poll(SCAN)
    assert [str(c.request.url).rsplit("/api/v1/", 1)[1] for c in mock.calls] == [
        "auth/login",
        "scans/scan_a1b2c3d4",
        "auth/login",
        "scans/scan_a1b2c3d4",
    ]


def test_the_token_life_comes_from_its_exp_claim(mock: responses.RequestsMock, login: Rig) -> None:
    short = jwt("short", life=600)
    add_login(mock, documented=True, access=short)
    mock.get(DETAIL, json=detail(), match=[bearer(short)])
    mock.get(DETAIL, json=detail(), match=[bearer(short)])
    add_login(mock, documented=True, access=ACCESS_2)
    mock.get(DETAIL, json=detail(), match=[bearer(ACCESS_2)])
    login.provider.poll(SCAN)
    login.clock.now += 500  # 100 s left of 600: still more than a tenth
    login.provider.poll(SCAN)
    login.clock.now += 50  # 50 s left: renewed first
    login.provider.poll(SCAN)
    assert len(mock.calls) == 5


def test_a_401_refreshes_once_and_resends(mock: responses.RequestsMock, login: Rig) -> None:
    add_login(mock)
    expired = {"error": "Invalid or expired token"}
    mock.get(DETAIL, status=401, json=expired, match=[bearer(ACCESS_1)])
    mock.post(f"{BASE}/auth/refresh", json={"access_token": ACCESS_2}, match=[bearer(REFRESH)])
    mock.get(DETAIL, json=detail(status="running"), match=[bearer(ACCESS_2)])
    assert login.provider.poll(SCAN).status is ScanStatus.RUNNING
    assert len(mock.calls) == 4


def test_a_401_logs_in_again_when_the_refresh_token_is_refused(
    mock: responses.RequestsMock, login: Rig
) -> None:
    add_login(mock, access=ACCESS_1)
    mock.get(DETAIL, status=401, json={"error": "Invalid or expired token"})
    mock.post(f"{BASE}/auth/refresh", status=401, json={"error": "Invalid refresh token"})
    add_login(mock, access=ACCESS_3)
    mock.get(DETAIL, json=detail(), match=[bearer(ACCESS_3)])
    assert login.provider.poll(SCAN).status is ScanStatus.COMPLETED
    assert len(mock.calls) == 5


def test_a_401_after_renewal_is_a_clear_auth_error(
    mock: responses.RequestsMock, login: Rig
) -> None:
    add_login(mock)
    denied = {"error": "Invalid or expired token"}
    first = mock.get(DETAIL, status=401, json=denied, match=[bearer(ACCESS_1)])
    mock.post(f"{BASE}/auth/refresh", json={"access_token": ACCESS_2})
    second = mock.get(DETAIL, status=401, json=denied, match=[bearer(ACCESS_2)])
    with pytest.raises(ProviderAuthError) as err:
        login.provider.poll(SCAN)
    assert (first.call_count, second.call_count) == (1, 1)
    assert "Invalid or expired token" in err.value.message
    assert "CYBERSECPRO_EMAIL + CYBERSECPRO_PASSWORD" in err.value.diagnostics()
    assert err.value.exit_status == ExitStatus.PROVIDER_ERROR


@pytest.mark.parametrize(
    ("status", "body", "error", "words", "hint"),
    [
        (401, {"error": "Invalid email or password"}, ProviderAuthError, "Invalid email", PASSWORD),
        (200, asset("login_mfa.json"), ProviderAuthError, "MFA code", "CYBERSECPRO_API_KEY"),
        (200, {"error": "Email not verified"}, ProviderAuthError, "Email not verified", "EMAIL"),
        (429, {"error": "Too many login attempts"}, ProviderRateLimitError, "Too many login", ""),
    ],
    ids=["401", "mfa", "200-error", "429"],
)
def test_a_failed_login_is_sent_once_and_explained(
    mock: responses.RequestsMock,
    login: Rig,
    status: int,
    body: dict[str, Any],
    error: type[ProviderError],
    words: str,
    hint: str,
) -> None:
    post = mock.post(f"{BASE}/auth/login", status=status, json=body)
    with pytest.raises(ProviderError) as err:
        login.provider.poll(SCAN)
    assert type(err.value) is error
    assert post.call_count == 1  # a retried password counts towards the lockout
    assert words in err.value.message
    assert hint.replace(PASSWORD, "CYBERSECPRO_PASSWORD") in err.value.diagnostics()
    assert PASSWORD not in err.value.diagnostics()
    assert err.value.exit_status == ExitStatus.PROVIDER_ERROR


def test_a_401_with_an_api_key_is_not_retried(mock: responses.RequestsMock, keyed: Rig) -> None:
    get = mock.get(DETAIL, status=401, json={"error": f"Invalid API key {KEY}"})
    with pytest.raises(ProviderAuthError) as err:
        keyed.provider.poll(SCAN)
    assert get.call_count == 1
    assert "CYBERSECPRO_API_KEY" in err.value.diagnostics()
    assert KEY not in err.value.diagnostics()
    assert "Invalid API key [redacted by scangate]" in err.value.message


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
            {"status": 401, "json": {"error": "Authentication required"}},
            ProviderAuthError,
            1,
            "rejected",
        ),
        (
            {"status": 403, "json": {"error": "Access denied"}},
            ProviderAuthError,
            1,
            "Access denied",
        ),
        (
            {"status": 404, "json": asset("error_not_found.json")},
            ProviderError,
            1,
            "Scan not found",
        ),
        (
            {
                "status": 429,
                "json": asset("error_rate_limited.json"),
                "headers": {"Retry-After": "30"},
            },
            ProviderRateLimitError,
            5,
            "Please slow down. (RATE_LIMITED)",
        ),
        ({"status": 500, "json": {"error": "Internal"}}, ProviderError, 5, "HTTP 500"),
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
    get = mock.get(DETAIL, **reply)
    with pytest.raises(ProviderError) as err:
        keyed.provider.poll(SCAN)
    assert type(err.value) is error
    assert int(err.value.exit_status) == int(ExitStatus.PROVIDER_ERROR) == 3
    assert get.call_count == calls
    assert words in err.value.message


def test_error_detail_reads_error_and_code() -> None:
    response = requests.Response()
    response._content = b"<html>Bad Gateway</html>"
    read = CyberSecProProvider.error_detail
    assert read(response, asset("error_rate_limited.json")) == (
        "Too many requests. Please slow down. (RATE_LIMITED)"
    )
    assert read(response, {"message": "MFA code required"}) == "MFA code required"
    assert read(response, None) == "<html>Bad Gateway</html>"


# Pacing within the plan's budget (fact sheet "Rate limits").


def test_429_with_rate_limit_headers_holds_back_the_next_request(
    mock: responses.RequestsMock, keyed: Rig
) -> None:
    headers = {
        "Retry-After": "30",
        "X-RateLimit-Limit": "60",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(int(NOW) + 30),
    }
    mock.get(DETAIL, status=429, json=asset("error_rate_limited.json"), headers=headers)
    with pytest.raises(ProviderRateLimitError):
        keyed.provider.poll(SCAN)
    assert (keyed.http.rate.limit, keyed.http.rate.remaining) == (60, 0)
    mock.replace(responses.GET, DETAIL, json=detail())
    keyed.provider.poll(SCAN)
    assert keyed.sleeps == [31.0]  # until the window resets, plus a second of margin


def test_the_trial_plan_is_paced_to_its_burst_and_its_minute(
    mock: responses.RequestsMock,
) -> None:
    rig = Rig({"CYBERSECPRO_API_KEY": KEY}, {"plan": "trial"})
    mock.get(DETAIL, json=detail(status="running"))
    sent: list[float] = []
    for _ in range(20):
        rig.provider.poll(SCAN)
        sent.append(rig.clock.now - NOW)
    # Never more than 9 (10 less the spare) in any 61 s, and never faster than the token bucket
    # allows: 4 at once (a burst of 5 less the spare), then 10 a minute.
    assert sent[:4] == [0.0] * 4 and sent[4] > 0
    assert max(sum(1 for t in sent if start <= t < start + 61) for start in sent) <= 9
    for i, first in enumerate(sent):
        for j in range(i, len(sent)):
            assert j - i + 1 <= 4 + (sent[j] - first) * 10 / 60 + 1e-9
    assert sent[-1] > 120  # 20 requests take more than two minutes


def test_low_remaining_waits_for_the_window_to_reset(mock: responses.RequestsMock) -> None:
    rig = Rig({"CYBERSECPRO_API_KEY": KEY}, {"plan": "enterprise"})
    headers = {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "1"}
    headers["X-RateLimit-Reset"] = str(int(NOW) + 40)
    mock.get(DETAIL, json=detail(), headers=headers)
    rig.provider.poll(SCAN)
    rig.provider.poll(SCAN)
    assert rig.sleeps == [41.0]


@pytest.mark.parametrize(
    ("options", "limit", "plan"),
    [
        ({}, "10", "trial"),  # assumed professional, told trial
        ({}, "300", "enterprise"),  # assumed professional, told enterprise
        ({"plan": "starter"}, "10", "trial"),  # configured starter, told smaller
        ({"plan": "starter"}, "300", "starter"),  # configured: never raised
    ],
)
def test_the_servers_rate_limit_header_corrects_the_plan(
    mock: responses.RequestsMock, options: dict[str, Any], limit: str, plan: str
) -> None:
    rig = Rig({"CYBERSECPRO_API_KEY": KEY}, options)
    mock.get(DETAIL, json=detail(), headers={"X-RateLimit-Limit": limit})
    rig.provider.poll(SCAN)
    rig.provider.poll(SCAN)
    assert rig.provider.pacer.plan == PLANS[plan]


def test_a_login_without_a_plan_assumes_the_trial_budget() -> None:
    rig = Rig({"CYBERSECPRO_EMAIL": EMAIL, "CYBERSECPRO_PASSWORD": PASSWORD})
    assert rig.provider.pacer.plan == PLANS["trial"]
    assert Rig({"CYBERSECPRO_API_KEY": KEY}).provider.pacer.plan == PLANS["professional"]


def test_a_402_anywhere_explains_the_plan(mock: responses.RequestsMock, keyed: Rig) -> None:
    body = {"error": "Plan upgrade required. Need professional plan."}
    get = mock.get(f"{BASE}/scans", status=402, json=body)
    with pytest.raises(ProviderError) as err:
        keyed.provider.find_running(TARGET)
    assert get.call_count == 1
    assert "Plan upgrade required" in err.value.message
    assert "CYBERSECPRO_EMAIL + CYBERSECPRO_PASSWORD" in err.value.hint
    assert err.value.exit_status == ExitStatus.PROVIDER_ERROR


# History (fact sheet "List", "Detail"), issue 16.


@pytest.mark.parametrize("shape", ["documented", "implementation"])
def test_the_history_is_one_list_request_of_the_hosts_completed_scans(
    mock: responses.RequestsMock, keyed: Rig, shape: str
) -> None:
    items = [
        item("a", "2026-01-15T13:00:00", duration_seconds=1800.0),
        item(
            "b",
            "2026-01-15T12:00:00",
            started_at="2026-01-15T12:00:00",
            completed_at="2026-01-15T12:29:00",
        ),
        item("c", "2026-01-15T11:00:00", status="cancelled", duration_seconds=60.0),
        item("d", "2026-01-15T10:00:00", status="failed", duration_seconds=5.0),
        item("e", "2026-01-15T09:00:00", target="example.org", duration_seconds=99.0),
        # Odd entries are skipped: no times, an end before the start, unparsable, negative.
        item("f", "2026-01-15T08:00:00", duration_seconds=None),
        item(
            "g",
            "2026-01-15T07:00:00",
            started_at="2026-01-15T07:30:00",
            completed_at="2026-01-15T07:00:00",
        ),
        item("h", "2026-01-15T06:00:00", started_at="soon", completed_at="later"),
        item("i", "2026-01-15T05:00:00", duration_seconds=-4),
    ]
    if shape == "documented":
        body: dict[str, Any] = {
            "data": items,
            "pagination": {"page": 1, "per_page": 100, "total": len(items), "total_pages": 1},
        }
    else:
        body = impl_list(*items)
    mock.get(
        f"{BASE}/scans", json=body, match=[matchers.query_param_matcher(LIST_QUERY), key_headers()]
    )
    history = keyed.provider.expected_duration(TARGET)
    assert history is not None and history.durations == (1800.0, 1740.0)
    assert len(mock.calls) == 1


def test_the_history_reuses_the_listing_find_running_made(
    mock: responses.RequestsMock, keyed: Rig
) -> None:
    # On the Trial plan every request counts (10 a minute): the history costs none more.
    mock.get(
        f"{BASE}/scans", json=impl_list(item("a", "2026-01-15T13:00:00", duration_seconds=900))
    )
    assert keyed.provider.find_running(TARGET) is None
    keyed.provider.known_scans(TARGET)
    history = keyed.provider.expected_duration(TARGET)
    assert history is not None and history.durations == (900.0,)
    assert len(mock.calls) == 1


def test_a_failing_history_request_is_a_provider_error(
    mock: responses.RequestsMock, keyed: Rig
) -> None:
    mock.get(f"{BASE}/scans", status=404, json={"error": "Not found"})
    with pytest.raises(ProviderError):
        keyed.provider.expected_duration(TARGET)
