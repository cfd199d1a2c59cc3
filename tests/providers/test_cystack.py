"""The CyStack adapter against `responses`: request shapes, target lookup, paging, every failure.

Payloads in `tests/assets/cystack/` are the shapes printed in `providers/cystack.md`.
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
import re
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
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
from scangate.gate import Decision, evaluate
from scangate.model import ScanId, ScanStatus, Severity
from scangate.policy import Policy, ProviderSettings, ScanSettings
from scangate.providers import provider_class
from scangate.providers._wire import parallel_map
from scangate.providers.cystack import DETAIL_WORKERS, CyStackProvider
from scangate.providers.cystack_wire import address_key, parse_time
from scangate.providers.interface import ScanProgress, ScanRef, StartAttempt
from scangate.providers.paging import PagingError

from . import rig

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "cystack"
BASE = CyStackProvider.DEFAULT_BASE_URL
KEY = "cs_live_8d7c6b5a4f3e2d1c0b9a"
UA = f"scangate/{__version__}"
TARGET = "https://staging.example.com"
TARGET_ID = "5b1e7c2a-8d4f-4e6a-9c3b-1f2e3d4c5b6a"
OTHER_ID = "6c2f8d3b-9e5a-4f7b-8d4c-2a3b4c5d6e7f"
SCAN_ID = "65fa9150-fbca-49ce-bac6-586e58cd36f5"
SCAN = ScanRef(scan_id=ScanId(SCAN_ID), target=TARGET)
SENT = datetime(2026, 1, 15, 10, 0, 0, tzinfo=UTC)
MARKER = "scangate-0123456789abcdef"
DONE = ScanProgress(status=ScanStatus.COMPLETED, raw_status="Stopped")


def asset(name: str) -> Any:
    """A recorded payload (a fresh copy, so a test may change it)."""
    path = ASSETS / name
    assert path.is_file(), f"missing test asset {path}"
    return copy.deepcopy(json.loads(path.read_text(encoding="utf-8")))


class Rig(rig.Rig):
    """The CyStack adapter, built through the registry, a minute after `SENT`."""

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__("cystack", {"CYSTACK_API_KEY": KEY}, options, now=SENT.timestamp() + 60)


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    """Every request must be registered, and every registered response used."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


@pytest.fixture
def rig() -> Rig:
    return Rig()


def auth() -> Any:
    return matchers.header_matcher({"Authorization": f"Bearer {KEY}", "User-Agent": UA})


def query(**params: str) -> Any:
    return matchers.query_param_matcher(params, strict_match=True)


def page(results: list[dict[str, Any]], count: int | None = None, nxt: str | None = None) -> Any:
    return {
        "count": len(results) if count is None else count,
        "next": nxt,
        "previous": None,
        "results": results,
    }


def target(target_id: str, address: str) -> dict[str, Any]:
    item: dict[str, Any] = asset("targets.json")["results"][0]
    item.update(id=target_id, address=address, href=f"/v1/targets/{target_id}")
    return item


def add_lookup(mock: responses.RequestsMock, *items: dict[str, Any]) -> Any:
    """`GET /targets?q=staging.example.com&page=1` answering `items` (the e2e target by default)."""
    found = list(items) or [target(TARGET_ID, TARGET)]
    return mock.get(
        f"{BASE}/targets",
        json=page(found),
        match=[auth(), query(q="staging.example.com", page="1")],
    )


def scan_item(
    scan_id: str, status: str, target_id: str = TARGET_ID, **fields: Any
) -> dict[str, Any]:
    item: dict[str, Any] = asset("scans_list.json")["results"][0]
    item.update(status=status, href=f"/v1/scans/{scan_id}")
    item["target"].update(id=target_id, address=TARGET)
    item.update(fields)
    return item


def add_scans(
    mock: responses.RequestsMock, status: str, *items: dict[str, Any], **params: str
) -> Any:
    return mock.get(
        f"{BASE}/scans",
        json=page(list(items)),
        match=[auth(), query(q="staging.example.com", status=status, page="1", **params)],
    )


def detail(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = asset("scan_detail.json")
    body.update(fields)
    return body


def vuln(vuln_id: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = asset("vulnerability.json")
    body.update(id=vuln_id)
    body.update(fields)
    return body


def attempt(known: frozenset[str] = frozenset()) -> StartAttempt:
    return StartAttempt(target=TARGET, marker=MARKER, sent_at=SENT, known_ids=known)


# Declarations.


def test_registry_names_this_class_with_its_documented_facts() -> None:
    cls = provider_class("cystack")
    assert cls is CyStackProvider
    assert cls.DEFAULT_BASE_URL == "https://api.cystack.io/v1"
    assert [spec.variables for spec in cls.credentials] == [("CYSTACK_API_KEY",)]
    assert [spec.secret for spec in cls.credentials] == [{"CYSTACK_API_KEY"}]
    caps = cls.capabilities
    assert (caps.progress, caps.eta, caps.cancel, caps.attach) == (False, False, True, True)
    assert (caps.per_finding_detail, caps.runcheck, caps.rate_limit_headers) == (True, False, False)
    assert CyStackProvider.secret_headers == ("Authorization",)


@pytest.mark.parametrize(
    ("options", "valid"),
    [
        ({}, True),
        (
            {
                "profile": 5,
                "description": "nightly",
                "notification": [29],
                "headers": {"X-Env": "ci"},
            },
            True,
        ),
        ({"profile": 0}, False),
        ({"profile": "Full Audit"}, False),
        ({"notification": [29, 29]}, False),
        ({"headers": {"X-Retries": 3}}, False),
        ({"scan_type": "full"}, False),
    ],
)
def test_options_schema(options: dict[str, Any], valid: bool) -> None:
    schema = CyStackProvider.options_schema
    jsonschema.Draft202012Validator.check_schema(schema)
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(options))
    assert (not errors) is valid
    assert schema["properties"]["profile"]["default"] == 1


# Target resolution (fact sheet "GET /targets"; design §9 "Targets and defaults").


def test_the_key_is_a_bearer_header_and_registered_for_redaction(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    add_lookup(mock)
    rig.provider.preflight(TARGET)
    assert KEY in rig.registered
    assert mock.calls[0].request.headers["Authorization"] == f"Bearer {KEY}"


def test_an_address_resolves_to_its_exact_match_among_close_ones(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    add_lookup(
        mock,
        target(OTHER_ID, "http://staging.example.com"),
        target("7d3a9e4c-0f6b-4a8c-9e5d-3b4c5d6e7f80", "https://staging.example.com/admin"),
        target(TARGET_ID, "HTTPS://Staging.Example.com:443/"),
    )
    add_scans(mock, "Queued")
    add_scans(mock, "Running")
    rig.provider.preflight(TARGET)
    rig.provider.preflight(TARGET)  # cached: one lookup per run
    assert rig.provider.find_running(TARGET) is None
    assert len(mock.calls) == 3


def test_no_matching_target_lists_the_close_matches(mock: responses.RequestsMock, rig: Rig) -> None:
    add_lookup(mock, target(OTHER_ID, "http://staging.example.com"))
    with pytest.raises(ProviderError) as err:
        rig.provider.preflight(TARGET)
    assert type(err.value) is ProviderError
    assert err.value.exit_status == ExitStatus.PROVIDER_ERROR
    assert "no target has the address https://staging.example.com" in err.value.message
    assert f"close matches: http://staging.example.com ({OTHER_ID})" in err.value.message
    assert "cannot create them" in err.value.diagnostics()


def test_no_target_at_all_says_targets_are_made_in_the_web_ui(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    mock.get(f"{BASE}/targets", json=page([]), match=[query(q="staging.example.com", page="1")])
    with pytest.raises(ProviderError) as err:
        rig.provider.preflight(TARGET)
    assert "close matches" not in err.value.message
    assert "web UI" in err.value.diagnostics() and "UUID" in err.value.diagnostics()


def test_several_targets_with_the_address_ask_for_the_uuid(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    add_lookup(mock, target(TARGET_ID, TARGET), target(OTHER_ID, TARGET + "/"))
    with pytest.raises(ProviderError) as err:
        rig.provider.preflight(TARGET)
    assert f"2 targets have the address {TARGET}: {TARGET_ID}, {OTHER_ID}" in err.value.message
    assert "UUID" in err.value.diagnostics()


def test_the_lookup_reads_every_page_by_number_on_the_base_url(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    first = [
        target(f"a0000000-0000-4000-8000-{n:012d}", f"https://x{n}.staging.example.com")
        for n in range(10)
    ]
    # The doc's own `next` points at cystack.io, not api.cystack.io: only its page is used.
    mock.get(
        f"{BASE}/targets",
        json=page(first, 12, "https://cystack.io/v1/targets?page=2&q=staging.example.com"),
        match=[query(q="staging.example.com", page="1")],
    )
    second = [target(OTHER_ID, "http://staging.example.com"), target(TARGET_ID, TARGET)]
    mock.get(
        f"{BASE}/targets",
        json=page(second, 12),
        match=[auth(), query(q="staging.example.com", page="2")],
    )
    rig.provider.preflight(TARGET)
    assert all(str(call.request.url).startswith(BASE) for call in mock.calls)


@pytest.mark.parametrize(
    "nxt",
    ["https://api.cystack.io/v1/targets?page=1", "https://api.cystack.io/v1/targets?cursor=abc"],
    ids=["backwards", "no-page"],
)
def test_a_next_that_does_not_lead_forward_is_a_provider_error(
    mock: responses.RequestsMock, rig: Rig, nxt: str
) -> None:
    """Reading on would repeat pages, stopping would read part of the list: exit 3."""
    mock.get(
        f"{BASE}/targets", json=page([target(OTHER_ID, "http://staging.example.com")], 50, nxt)
    )
    with pytest.raises(PagingError) as err:
        rig.provider.preflight(TARGET)
    assert err.value.exit_status == ExitStatus.PROVIDER_ERROR
    assert len(mock.calls) == 1
    assert err.value.message == (
        f"CyStack targets: the list does not end (`next` does not lead past page 1: {nxt})"
    )


def test_a_page_that_repeats_the_one_before_is_a_provider_error(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    same = page([target(OTHER_ID, "http://staging.example.com")], 50, f"{BASE}/targets?page=2")
    mock.get(f"{BASE}/targets", json=same, match=[query(q="staging.example.com", page="1")])
    again = page([target(OTHER_ID, "http://staging.example.com")], 50, f"{BASE}/targets?page=3")
    mock.get(f"{BASE}/targets", json=again, match=[query(q="staging.example.com", page="2")])
    with pytest.raises(
        PagingError, match=r"targets: the list does not end \(page 2 repeats page 1\)"
    ):
        rig.provider.preflight(TARGET)
    assert len(mock.calls) == 2


def test_the_lookup_has_no_page_cap(mock: responses.RequestsMock, rig: Rig) -> None:
    """The target on page 150 of 150 is found: no fixed number of pages ends a lookup."""
    count = 1500

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        number = int(request.params["page"])
        items = [
            target(f"b0000000-0000-4000-8000-{n:012d}", f"https://x{n}.staging.example.com")
            for n in range((number - 1) * 10, number * 10)
        ]
        if number == 150:
            items[-1] = target(TARGET_ID, TARGET)
        following = f"{BASE}/targets?page={number + 1}" if number < 150 else None
        return 200, {}, json.dumps(page(items, count, following))

    mock.add_callback(responses.GET, f"{BASE}/targets", callback=answer)
    rig.provider.preflight(TARGET)
    assert len(mock.calls) == 150


def test_a_uuid_target_is_checked_by_id(mock: responses.RequestsMock, rig: Rig) -> None:
    mock.get(f"{BASE}/targets/{TARGET_ID}", json=target(TARGET_ID, TARGET), match=[auth()])
    add_scans(mock, "Queued")
    add_scans(mock, "Running", scan_item(SCAN_ID, "Running"))
    found = rig.provider.find_running(TARGET_ID)
    assert found is not None and found.scan_id == SCAN_ID
    assert found.extra == {"target_id": TARGET_ID, "address": TARGET}


def test_an_unknown_uuid_target_is_a_clear_error(mock: responses.RequestsMock, rig: Rig) -> None:
    mock.get(f"{BASE}/targets/{TARGET_ID}", status=404, json=asset("error_not_found.json"))
    with pytest.raises(ProviderError, match=f"no target with id {TARGET_ID}"):
        rig.provider.preflight(TARGET_ID)


def test_a_uuid_target_without_a_detail_route_is_used_as_given(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    mock.get(
        f"{BASE}/targets/{TARGET_ID}", status=405, json={"detail": 'Method "GET" not allowed.'}
    )
    # Without an address there is no `q`: the status filter alone, compared by target id.
    mock.get(
        f"{BASE}/scans",
        json=page([scan_item(SCAN_ID, "Queued")]),
        match=[query(status="Queued", page="1")],
    )
    found = rig.provider.find_running(TARGET_ID)
    assert found is not None and found.extra == {"target_id": TARGET_ID}


# Running scans (fact sheet "GET /scans — list").


def test_find_running_checks_queued_then_running_scans_of_the_target(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    add_lookup(mock)
    add_scans(mock, "Queued", scan_item("11111111-1111-4111-8111-111111111111", "Queued", OTHER_ID))
    add_scans(mock, "Running", scan_item(SCAN_ID, "Running", start_time="13:58:01 20/11/2017"))
    found = rig.provider.find_running(TARGET)
    assert found is not None
    assert (found.scan_id, found.target) == (SCAN_ID, TARGET)
    assert found.created_at == datetime(2017, 11, 20, 13, 58, 1, tzinfo=UTC)
    assert found.extra["target_id"] == TARGET_ID


def test_known_scans_are_the_targets_live_and_stopping_scans(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    add_lookup(mock)
    add_scans(mock, "Queued", scan_item("q", "Queued"))
    add_scans(mock, "Running", scan_item("r", "Running"), scan_item("x", "Running", OTHER_ID))
    add_scans(mock, "Stopping", scan_item("s", "Stopping"))
    assert rig.provider.known_scans(TARGET) == {"q", "r", "s"}


# Starting (fact sheet "POST /scans").


def test_start_posts_target_id_default_profile_and_marker(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    add_lookup(mock)
    body = {"target": TARGET_ID, "profile": 1, "description": MARKER}
    mock.post(
        f"{BASE}/scans",
        status=201,
        headers={"Location": f"/v1/scans/{SCAN_ID}"},
        match=[auth(), matchers.json_params_matcher(body, strict_match=True)],
    )
    ref = rig.provider.start(attempt())
    assert (ref.scan_id, ref.target) == (SCAN_ID, TARGET)
    assert ref.extra["target_id"] == TARGET_ID


def test_start_sends_every_option(mock: responses.RequestsMock) -> None:
    rig = Rig(
        {
            "profile": 5,
            "description": "nightly",
            "notification": [29, 30],
            "headers": {"X-Env": "ci"},
        }
    )
    add_lookup(mock)
    body = {
        "target": TARGET_ID,
        "profile": 5,
        "description": f"nightly ({MARKER})",
        "notification": [29, 30],
        "advances": {"headers": {"X-Env": "ci"}},
    }
    mock.post(
        f"{BASE}/scans",
        status=201,
        json=detail(status="Queued"),
        headers={"Location": f"https://api.cystack.io/v1/scans/{SCAN_ID}/"},
        match=[matchers.json_params_matcher(body, strict_match=True)],
    )
    assert rig.provider.start(attempt()).scan_id == SCAN_ID


@pytest.mark.parametrize(
    "reply",
    [
        {
            "body": requests.exceptions.ConnectionError(
                ProtocolError("aborted", RemoteDisconnected("closed"))
            )
        },
        {"body": requests.exceptions.ReadTimeout("read timed out")},
        {"status": 502, "json": {"detail": "Bad gateway"}},
        {"status": 201},
        {"status": 201, "headers": {"Location": "/v1/scans/"}},
    ],
    ids=["dropped", "read-timeout", "502", "no-location", "empty-location"],
)
def test_ambiguous_start_is_sent_exactly_once(
    mock: responses.RequestsMock, rig: Rig, reply: dict[str, Any]
) -> None:
    add_lookup(mock)
    post = mock.post(f"{BASE}/scans", **reply)
    with pytest.raises(AmbiguousStartError) as err:
        rig.provider.start(attempt())
    assert post.call_count == 1
    assert err.value.exit_status == ExitStatus.PROVIDER_ERROR


def test_a_refused_profile_explains_the_option(mock: responses.RequestsMock, rig: Rig) -> None:
    add_lookup(mock)
    post = mock.post(f"{BASE}/scans", status=400, json=asset("error_fields.json"))
    with pytest.raises(ProviderError) as err:
        rig.provider.start(attempt())
    assert post.call_count == 1
    assert (
        'target: This field is required.; profile: Invalid pk "9" - object does not exist.'
        in err.value.message
    )
    assert "provider.options.profile" in err.value.diagnostics()


def test_find_started_recognises_the_marker(mock: responses.RequestsMock, rig: Rig) -> None:
    add_lookup(mock)
    add_scans(mock, "Queued", scan_item("known", "Queued"), scan_item("theirs", "Queued"))
    add_scans(mock, "Running", scan_item("ours", "Running"))
    add_scans(mock, "Stopping")
    add_scans(mock, "Stopped", ordering="-start_time")
    other_run = detail(
        status="Queued",
        description="scangate-ffffffffffffffff",
        start_time=int(SENT.timestamp()) + 1,
    )
    mock.get(f"{BASE}/scans/theirs", json=other_run)
    ours = detail(
        status="Running", description=f"nightly ({MARKER})", start_time=int(SENT.timestamp()) + 2
    )
    mock.get(f"{BASE}/scans/ours", json=ours)
    found = rig.provider.find_started(attempt(frozenset({"known"})))
    assert found is not None and found.scan_id == "ours"
    assert found.created_at == datetime.fromtimestamp(SENT.timestamp() + 2, UTC)


def test_find_started_takes_a_new_unmarked_scan_and_skips_old_ones(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    add_lookup(mock)
    add_scans(mock, "Queued")
    add_scans(mock, "Running")
    add_scans(mock, "Stopping")
    add_scans(
        mock,
        "Stopped",
        scan_item("old", "Stopped"),
        scan_item("new", "Stopped"),
        ordering="-start_time",
    )
    mock.get(f"{BASE}/scans/old", json=detail(start_time=int(SENT.timestamp()) - 3600))
    mock.get(f"{BASE}/scans/new", json=detail(start_time=int(SENT.timestamp()) + 5))
    found = rig.provider.find_started(attempt())
    assert found is not None and found.scan_id == "new"


def test_find_started_returns_none_when_nothing_was_created(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    add_lookup(mock)
    add_scans(mock, "Queued", scan_item("known", "Queued"))
    for status in ("Running", "Stopping"):
        add_scans(mock, status)
    add_scans(mock, "Stopped", ordering="-start_time")
    assert rig.provider.find_started(attempt(frozenset({"known"}))) is None


def test_find_started_raises_when_the_lookup_fails(mock: responses.RequestsMock, rig: Rig) -> None:
    add_lookup(mock)
    listing = mock.get(f"{BASE}/scans", status=503, json={"detail": "down"})
    with pytest.raises(ProviderError) as err:
        rig.provider.find_started(attempt())
    assert err.value.exit_status == ExitStatus.PROVIDER_ERROR
    assert listing.call_count == 5


# Polling (fact sheet "Scan status model").


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("Queued", ScanStatus.PENDING),
        ("Running", ScanStatus.RUNNING),
        ("Stopping", ScanStatus.RUNNING),
        ("Stopped", ScanStatus.COMPLETED),
        ("Paused", ScanStatus.RUNNING),
    ],
)
def test_poll_maps_every_status(
    mock: responses.RequestsMock, rig: Rig, raw: str, status: ScanStatus
) -> None:
    mock.get(f"{BASE}/scans/{SCAN_ID}", json=detail(status=raw), match=[auth()])
    progress = rig.provider.poll(SCAN)
    assert (progress.status, progress.raw_status) == (status, raw)
    assert progress.progress is None and progress.eta_seconds is None


def test_stopped_after_stopping_is_a_cancelled_scan(mock: responses.RequestsMock, rig: Rig) -> None:
    mock.get(f"{BASE}/scans/{SCAN_ID}", json=detail(status="Stopping"))
    mock.get(f"{BASE}/scans/{SCAN_ID}", json=detail(status="Stopped"))
    assert rig.provider.poll(SCAN).phase == "stopping"
    ended = rig.provider.poll(SCAN)
    assert ended.status is ScanStatus.CANCELLED and ended.completeness == 0
    assert "stopped by someone" in ended.message


def test_stopped_after_our_stop_is_a_cancelled_scan(mock: responses.RequestsMock, rig: Rig) -> None:
    stop = mock.get(f"{BASE}/scans/{SCAN_ID}/stop", json=detail(status="Stopped"), match=[auth()])
    mock.get(f"{BASE}/scans/{SCAN_ID}", json=detail(status="Stopped"))
    rig.provider.cancel(SCAN, ScanProgress(status=ScanStatus.RUNNING, raw_status="Running"))
    assert stop.call_count == 1
    ended = rig.provider.poll(SCAN)
    assert ended.status is ScanStatus.CANCELLED and "stopped by scangate" in ended.message


# Cancel (fact sheet "GET /scans/{scan_id}/stop").


@pytest.mark.parametrize("status", [200, 400, 404])
def test_cancel_sends_the_stop_get_and_tolerates_a_finished_scan(
    mock: responses.RequestsMock, rig: Rig, status: int
) -> None:
    stop = mock.get(f"{BASE}/scans/{SCAN_ID}/stop", status=status, json=detail())
    rig.provider.cancel(SCAN, None)
    assert stop.call_count == 1 and stop.calls[0].request.method == "GET"


def test_cancel_never_stops_a_stopped_scan(mock: responses.RequestsMock, rig: Rig) -> None:
    rig.provider.cancel(SCAN, DONE)
    assert len(mock.calls) == 0


# Findings (fact sheet "GET /vulnerabilities/{vuln_id}").


def add_detail(mock: responses.RequestsMock, ids: list[str], **fields: Any) -> None:
    hrefs = [f"/v1/vulnerabilities/{i}" for i in ids]
    mock.get(f"{BASE}/scans/{SCAN_ID}", json=detail(vuln_href=hrefs, **fields), match=[auth()])


def test_fetch_maps_every_documented_field(mock: responses.RequestsMock, rig: Rig) -> None:
    add_detail(mock, ["v1", "v2"])
    mock.get(f"{BASE}/vulnerabilities/v1", json=vuln("v1"), match=[auth()])
    xss = vuln(
        "v2",
        name="Cross-site scripting",
        severity="High",
        plugin_name="xss",
        urls=["https://cystack.net/b?q=1", "https://cystack.net/a?q=2"],
        var="q",
        long_description="Reflected into the page.",
        references=[
            {"title": "CWE-79", "url": "https://cwe.mitre.org/data/definitions/79.html"},
            {"title": "CVE-2020-11022", "url": "https://nvd.nist.gov/vuln/detail/CVE-2020-11022"},
        ],
    )
    mock.get(f"{BASE}/vulnerabilities/v2", json=xss)
    result = rig.provider.fetch(SCAN, DONE)
    assert result.scanner_version == "API v1"  # no answer names the engine's version
    click, cross = result.findings
    assert (click.rule_id, click.title, click.severity) == (
        "click_jacking",
        "Click-Jacking vulnerability",
        Severity.MEDIUM,
    )
    assert click.url == "https://cystack.net"  # urls ["None"]: the whole target
    assert click.parameter == "" and click.method == ""
    assert click.remediation == "Configure your web server to include an X-Frame-Options header."
    assert (
        click.references[0] == "http://tools.ietf.org/html/rfc7034" and len(click.references) == 4
    )
    assert (click.false_positive, click.provider_status) == (False, "")
    assert (cross.rule_id, cross.severity, cross.parameter) == ("xss", Severity.HIGH, "q")
    assert cross.url == "https://cystack.net/a?q=2"  # the first of the sorted urls: stable
    assert (
        "https://cystack.net/b?q=1" in cross.description
        and "Reflected into the page." in cross.description
    )
    assert (cross.cwe_ids, cross.cve_ids) == ((79,), ("CVE-2020-11022",))
    assert (result.provider, result.scanner, result.scan_id, result.status) == (
        "cystack",
        "CyStack",
        SCAN_ID,
        ScanStatus.COMPLETED,
    )
    assert result.started_at == datetime.fromtimestamp(1511957637, UTC)
    assert result.finished_at == datetime.fromtimestamp(1511958637, UTC)
    assert result.details["profile"] == "Full Audit"
    assert result.details["vulnerabilities_reported"] == "2"


@pytest.mark.parametrize(
    ("word", "severity"),
    [
        ("High", Severity.HIGH),
        ("Low", Severity.LOW),
        ("Information", Severity.INFO),
        ("Critical", Severity.CRITICAL),
    ],
)
def test_severity_scale(
    mock: responses.RequestsMock, rig: Rig, word: str, severity: Severity
) -> None:
    add_detail(mock, ["v1"])
    mock.get(f"{BASE}/vulnerabilities/v1", json=vuln("v1", severity=word))
    assert rig.provider.fetch(SCAN, DONE).findings[0].severity is severity


def test_false_positives_are_excluded_by_the_gate_with_the_reason(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    add_detail(mock, ["v1", "v2"])
    mock.get(f"{BASE}/vulnerabilities/v1", json=vuln("v1", severity="High", false_positive=True))
    mock.get(f"{BASE}/vulnerabilities/v2", json=vuln("v2", severity="Low", plugin_name="banner"))
    result = rig.provider.fetch(SCAN, DONE)
    policy = Policy(provider=ProviderSettings(name="cystack"), scan=ScanSettings(target=TARGET))
    evaluation = evaluate(result, policy, None, date(2026, 1, 15))
    by_rule = {j.finding.rule_id: j for j in evaluation.judgements}
    flagged = by_rule["click_jacking"]
    assert flagged.decision is Decision.FALSE_POSITIVE
    assert flagged.reason == "marked false positive by the provider (false_positive: true)"
    assert by_rule["banner"].decision is not Decision.FALSE_POSITIVE
    assert evaluation.exit_status == ExitStatus.PASSED  # the high is not counted


def test_250_details_are_fetched_in_parallel_and_in_order(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    ids = [f"{n:08d}-0000-4000-8000-000000000000" for n in range(250)]
    add_detail(mock, ids)
    lock = threading.Lock()
    arrivals = itertools.count()
    active, peak = [0], [0]
    # The first two requests must be in flight together: sequential fetching breaks the barrier.
    meet = threading.Barrier(2, timeout=10)

    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        if next(arrivals) < 2:
            meet.wait()
        with lock:
            active[0] -= 1
        vuln_id = str(request.url).rsplit("/", 1)[1]
        return 200, {}, json.dumps(vuln(vuln_id, urls=[f"https://cystack.net/{vuln_id}"]))

    pattern = re.compile(re.escape(f"{BASE}/vulnerabilities/") + r"[0-9a-f-]{36}")
    details = mock.add_callback(responses.GET, pattern, callback=answer)
    result = rig.provider.fetch(SCAN, DONE)
    assert details.call_count == 250
    assert [f.url.rsplit("/", 1)[1] for f in result.findings] == ids
    assert result.details["details_fetched"] == "250"
    assert 2 <= peak[0] <= DETAIL_WORKERS


def test_a_failing_detail_is_retried_and_a_vanished_one_skipped(
    mock: responses.RequestsMock, rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    add_detail(mock, ["v1", "v2", "v3"])
    mock.get(f"{BASE}/vulnerabilities/v1", status=503, json={"detail": "busy"})
    mock.get(f"{BASE}/vulnerabilities/v1", json=vuln("v1"))
    mock.get(f"{BASE}/vulnerabilities/v2", status=404, json=asset("error_not_found.json"))
    mock.get(f"{BASE}/vulnerabilities/v3", body="{trunc")
    mock.get(f"{BASE}/vulnerabilities/v3", json=vuln("v3", plugin_name="other"))
    with caplog.at_level(logging.WARNING):
        result = rig.provider.fetch(SCAN, DONE)
    assert [f.rule_id for f in result.findings] == ["click_jacking", "other"]
    assert result.details["findings_skipped"] == "1"
    assert "v2 is gone (404)" in caplog.text
    # A listed vulnerability the gate never saw: the result says so and is not complete.
    assert not result.complete
    assert result.shortfall == "CyStack announced 3 vulnerabilities but 2 were fetched"


def test_unusable_vulnerabilities_and_hrefs_are_skipped(
    mock: responses.RequestsMock, rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    hrefs = [
        "/v1/vulnerabilities/v1",
        "/v1/vulnerabilities/v1",
        "https://evil.example/v1/vulnerabilities/v2",
        "/v1/vulnerabilities/../",
        7,
    ]
    mock.get(f"{BASE}/scans/{SCAN_ID}", json=detail(vuln_href=hrefs))
    mock.get(f"{BASE}/vulnerabilities/v1", json=vuln("v1", severity="Severe"))
    mock.get(f"{BASE}/vulnerabilities/v2", json=vuln("v2", name=""))
    with caplog.at_level(logging.WARNING):
        result = rig.provider.fetch(SCAN, DONE)
    assert result.findings == ()
    assert all(str(call.request.url).startswith(BASE) for call in mock.calls)
    assert "no usable severity" in caplog.text and "no usable name" in caplog.text
    assert result.shortfall == "4 of the findings CyStack listed could not be read"
    assert not result.complete


def test_a_detail_failing_after_retries_fails_a_completed_scan(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    add_detail(mock, ["v1"])
    failing = mock.get(f"{BASE}/vulnerabilities/v1", status=500, json={"detail": "boom"})
    with pytest.raises(ProviderError, match="HTTP 500"):
        rig.provider.fetch(SCAN, DONE)
    assert failing.call_count == 5


def test_a_cancelled_scan_keeps_what_it_can(mock: responses.RequestsMock, rig: Rig) -> None:
    mock.get(f"{BASE}/scans/{SCAN_ID}", status=404, json=asset("error_not_found.json"))
    cancelled = ScanProgress(
        status=ScanStatus.CANCELLED, raw_status="Stopped", completeness=0, message="stopped"
    )
    result = rig.provider.fetch(SCAN, cancelled)
    assert (result.status, result.findings, result.message) == (ScanStatus.CANCELLED, (), "stopped")


def test_a_scan_without_vuln_href_is_unexpected(mock: responses.RequestsMock, rig: Rig) -> None:
    body = detail()
    del body["vuln_href"]
    mock.get(f"{BASE}/scans/{SCAN_ID}", json=body)
    with pytest.raises(UnexpectedResponseError, match="no vuln_href"):
        rig.provider.fetch(SCAN, DONE)


def test_parallel_map_raises_the_first_error_and_stops_handing_out_work() -> None:
    seen: list[int] = []

    def work(n: int) -> int:
        seen.append(n)
        if n == 3:
            raise ProviderError("boom")
        return n * 2

    assert parallel_map(work, [1, 2], 4) == [2, 4]
    with pytest.raises(ProviderError, match="boom"):
        parallel_map(work, list(range(100)), 1)
    assert max(seen) == 3


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
            {"status": 401, "json": {"detail": "Invalid token."}},
            ProviderAuthError,
            1,
            "rejected the credentials (HTTP 401 on GET /v1/scans/",
        ),
        (
            {
                "status": 403,
                "json": {"detail": "You do not have permission to perform this action."},
            },
            ProviderAuthError,
            1,
            "You do not have permission",
        ),
        (
            {"status": 404, "json": asset("error_not_found.json")},
            ProviderError,
            1,
            "HTTP 404 on GET /v1/scans/" + SCAN_ID + "): Not found.",
        ),
        (
            {
                "status": 429,
                "json": asset("error_throttled.json"),
                "headers": {"Retry-After": "30"},
            },
            ProviderRateLimitError,
            5,
            "Request was throttled.",
        ),
        (
            {"status": 500, "json": {"detail": "A server error occurred."}},
            ProviderError,
            5,
            "HTTP 500",
        ),
        ({"status": 200, "body": "{not json"}, UnexpectedResponseError, 5, "malformed JSON"),
    ],
    ids=["connection", "read-timeout", "401", "403", "404", "429", "500", "malformed"],
)
def test_poll_failures_map_to_errors_and_exit_codes(
    mock: responses.RequestsMock,
    rig: Rig,
    reply: dict[str, Any],
    error: type[ProviderError],
    calls: int,
    words: str,
) -> None:
    get = mock.get(f"{BASE}/scans/{SCAN_ID}", **reply)
    with pytest.raises(ProviderError) as err:
        rig.provider.poll(SCAN)
    assert type(err.value) is error
    assert int(err.value.exit_status) == int(ExitStatus.PROVIDER_ERROR) == 3
    assert get.call_count == calls
    assert words in err.value.message


def test_a_401_names_the_variable_and_never_echoes_the_key(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    get = mock.get(f"{BASE}/scans/{SCAN_ID}", status=401, json={"detail": f"Invalid token {KEY}."})
    with pytest.raises(ProviderAuthError) as err:
        rig.provider.poll(SCAN)
    assert get.call_count == 1
    assert "CYSTACK_API_KEY" in err.value.diagnostics()
    assert KEY not in err.value.diagnostics()


def test_429_holds_back_the_next_request(mock: responses.RequestsMock, rig: Rig) -> None:
    mock.get(
        f"{BASE}/scans/{SCAN_ID}",
        status=429,
        json=asset("error_throttled.json"),
        headers={"Retry-After": "30"},
    )
    with pytest.raises(ProviderRateLimitError):
        rig.provider.poll(SCAN)
    mock.replace(responses.GET, f"{BASE}/scans/{SCAN_ID}", json=detail(status="Running"))
    rig.provider.poll(SCAN)
    assert rig.sleeps == [30.0]


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"detail": "Not found."}, "Not found."),
        (
            {"target": ["This field is required."], "non_field_errors": ["Bad."]},
            "target: This field is required.; Bad.",
        ),
        ({"advances": {"headers": ["Not a dict."]}}, "advances: headers: Not a dict."),
        (["Invalid data."], "Invalid data."),
        (None, "<html>Bad Gateway</html>"),
    ],
)
def test_error_detail_reads_drf_shapes(body: Any, text: str) -> None:
    response = requests.Response()
    response._content = b"<html>Bad Gateway</html>"
    assert CyStackProvider.error_detail(response, body) == text


# Wire helpers.


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1511957637, datetime(2017, 11, 29, 12, 13, 57, tzinfo=UTC)),
        ("1511957637", datetime(2017, 11, 29, 12, 13, 57, tzinfo=UTC)),
        ("13:58:01 20/11/2017", datetime(2017, 11, 20, 13, 58, 1, tzinfo=UTC)),
        ("2017-11-20T13:58:01Z", datetime(2017, 11, 20, 13, 58, 1, tzinfo=UTC)),
        ("None", None),
        (None, None),
        (True, None),
        (0, None),
        (float("nan"), None),
    ],
)
def test_parse_time_reads_both_documented_formats(value: Any, expected: datetime | None) -> None:
    assert parse_time(value) == expected


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("https://Staging.Example.com", "https://staging.example.com/", True),
        ("https://staging.example.com:443", "https://staging.example.com", True),
        ("http://staging.example.com", "https://staging.example.com", False),
        ("https://staging.example.com/admin", "https://staging.example.com", False),
        ("https://staging.example.com:8443", "https://staging.example.com", False),
        ("staging.example.com", "https://staging.example.com", False),
    ],
)
def test_address_key_ignores_only_case_default_port_and_trailing_slash(
    a: str, b: str, same: bool
) -> None:
    assert (address_key(a) == address_key(b)) is same


# History (fact sheet "GET /scans — list", "GET /scans/{scan_id}"), issue 16.


def test_the_history_reads_the_details_of_the_three_newest_stopped_scans(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    add_lookup(mock)
    add_scans(
        mock,
        "Stopped",
        *(scan_item(f"past-{n}", "Stopped") for n in range(1, 6)),
        ordering="-start_time",
    )
    start = 1_700_000_000
    bodies = {
        "past-1": detail(start_time=start, stop_time=start + 1800),
        "past-2": detail(start_time=str(start), stop_time=str(start + 1750)),
        # An unfinished stop time, or one before the start, is no duration.
        "past-3": detail(start_time=start, stop_time=None),
    }
    for scan_id, body in bodies.items():
        mock.get(f"{BASE}/scans/{scan_id}", json=body, match=[auth()])

    history = rig.provider.expected_duration(TARGET)
    assert history is not None and history.durations == (1800.0, 1750.0)
    # One list page and three details: past-4 and past-5 are never read.
    assert [c.request.path_url.split("?")[0] for c in mock.calls][-4:] == [
        "/v1/scans",
        "/v1/scans/past-1",
        "/v1/scans/past-2",
        "/v1/scans/past-3",
    ]


@pytest.mark.parametrize(
    ("start", "stop"),
    [(1_700_000_000, 1_699_999_000), ("13:58:01 20/11/2017", "soon"), (True, False), (0, 0)],
    ids=["stop-before-start", "unparsable", "booleans", "zero"],
)
def test_odd_times_give_no_duration(
    mock: responses.RequestsMock, rig: Rig, start: Any, stop: Any
) -> None:
    add_lookup(mock)
    add_scans(mock, "Stopped", scan_item("past-1", "Stopped"), ordering="-start_time")
    mock.get(f"{BASE}/scans/past-1", json=detail(start_time=start, stop_time=stop))
    history = rig.provider.expected_duration(TARGET)
    assert history is not None and history.durations == ()


def test_a_target_with_no_stopped_scans_has_an_empty_history(
    mock: responses.RequestsMock, rig: Rig
) -> None:
    add_lookup(mock)
    add_scans(mock, "Stopped", ordering="-start_time")
    history = rig.provider.expected_duration(TARGET)
    assert history is not None and history.durations == ()
