"""Every bug the fuzzers found, replayed deterministically so that none can come back unnoticed.

Each provider case serves the recorded payloads with one hostile change through the same fake
API as the fuzz tests; each formatter case renders one hostile report.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from scangate.errors import ProviderError, UnexpectedResponseError
from scangate.formats import formatter
from scangate.formats.interface import Report
from scangate.gate import combine, evaluate
from scangate.model import Finding, ScanResult, ScanStatus, Severity
from scangate.policy import Policy, ProviderSettings, ScanSettings
from scangate.providers import ScanProgress

from .checks import check_outcome
from .fake_api import FakeApi, Reply
from .schemas import JsonSchema, XmlSchemas
from .specs import SPECS, jwt, outcome_of
from .strategies import deep_json

JSON = {"Content-Type": "application/json"}


def changed(provider: str, route: str, change: Callable[[Any], None], answer: int = 0) -> Any:
    """A copy of a route's recorded answer after `change` (which edits it in place)."""
    body = copy.deepcopy(SPECS[provider].route(route).answers[answer])
    change(body)
    return body


def serve(
    provider: str,
    op: str,
    bodies: dict[str, Any],
    *,
    env: int = 0,
    headers: dict[str, str] | None = None,
    status: int = 200,
    calls: int = 1,
) -> tuple[list[object], list[float]]:
    """Run `op` `calls` times; each route answers its body in `bodies`, else its recording.

    Returns what each call returned (or the `ProviderError` it raised) and the client's sleeps.
    """
    spec = SPECS[provider]
    credentials = spec.envs[env]
    drawn = {}
    for name in spec.routes_of(op, credentials):
        body = bodies.get(name, spec.route(name).answers[0])
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        drawn[name] = [Reply(status if name in bodies else 200, {**JSON, **(headers or {})}, raw)]
    instance, http, clock = spec.build(credentials)
    with FakeApi(http.base_url, spec.routes, drawn).serving():
        outcomes = [outcome_of(lambda: spec.ops[op][0](instance, None)) for _ in range(calls)]
    return outcomes, clock.sleeps


def _set(**values: Any) -> Callable[[Any], None]:
    return lambda body: body.update(values)


# -- providers ---------------------------------------------------------------------------------


def test_cystack_times_past_the_datetime_range_are_unknown(
    scangate_json_schema: JsonSchema,
) -> None:
    """`start_time: 1e300` raised OverflowError, `10**400` too (in `math.isfinite`)."""
    detail = changed("cystack", "scan", _set(start_time=1e300, stop_time=10**400))
    (result,), _ = serve("cystack", "fetch", {"scan": detail})
    assert isinstance(result, ScanResult)
    assert (result.started_at, result.finished_at) == (None, None)
    check_outcome(result, scangate_json_schema)


def test_cystack_list_time_at_year_one_with_an_offset_is_unknown() -> None:
    """`0001-01-01T00:00:00+14:00` is before year 1 in UTC: `astimezone` raised OverflowError."""

    def early(body: Any) -> None:
        body["results"][0]["start_time"] = "0001-01-01T00:00:00+14:00"

    (ref,), _ = serve("cystack", "find_running", {"scans": changed("cystack", "scans", early)})
    assert ref is not None and getattr(ref, "created_at", "") is None


def test_cystack_error_body_nested_past_the_recursion_limit_is_read() -> None:
    """`_messages` recursed once per level of a DRF error body: RecursionError at 800."""
    (error,), _ = serve("cystack", "poll", {"scan": deep_json(800).encode()}, status=400)
    assert isinstance(error, ProviderError) and "HTTP 400" in error.message


def test_cystack_target_address_with_a_lone_surrogate_is_looked_up_sanitized() -> None:
    """`"address": "\\ud800"` went back as the scan lookup's `q`: UnicodeEncodeError in requests."""
    target = changed("cystack", "target", _set(address="\ud800"))
    (outcome,), _ = serve("cystack", "find_running_by_id", {"target": target, "scans": b""})
    assert not isinstance(outcome, UnicodeError)
    assert outcome is None or isinstance(outcome, ProviderError)


def test_cybersecpro_cvss_beyond_a_float_is_no_score() -> None:
    """`float(10**400)` raised OverflowError; the severity word still decides."""

    def huge(body: Any) -> None:
        body["vulnerabilities"][0]["cvss"] = 10**400

    (result,), _ = serve("cybersecpro", "fetch", {"result": changed("cybersecpro", "result", huge)})
    assert isinstance(result, ScanResult)
    assert [(f.cvss, f.severity) for f in result.findings] == [(None, Severity.CRITICAL)]


def test_cybersecpro_token_with_deeply_nested_claims_gets_the_default_lifetime() -> None:
    """The JWT's claims were decoded without catching RecursionError."""
    token = jwt(deep_json(10_000, "object").encode())
    (progress,), _ = serve("cybersecpro", "poll", {"login": {"access_token": token}}, env=1)
    assert isinstance(progress, ScanProgress) and progress.status is ScanStatus.COMPLETED


def test_cybersecpro_reported_plan_of_one_request_a_minute_paces_without_crashing() -> None:
    """`X-RateLimit-Limit: 1` leaves no room for the spare request: IndexError in the pacer."""
    outcomes, _ = serve("cybersecpro", "poll", {}, headers={"X-RateLimit-Limit": "1"}, calls=3)
    assert all(isinstance(o, ScanProgress) for o in outcomes), outcomes


def test_cybersecpro_rate_limit_reset_years_away_holds_one_window() -> None:
    """`X-RateLimit-Reset` far in the future made the pacer wait until then (years)."""
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(10**15)}
    outcomes, sleeps = serve("cybersecpro", "poll", {}, headers=headers, calls=2)
    assert all(isinstance(o, ScanProgress) for o in outcomes), outcomes
    assert sleeps and max(sleeps) <= 61.0


def test_cyberorigen_progress_and_cvss_are_clamped(scangate_json_schema: JsonSchema) -> None:
    """`progress: -45` gave -45 % and a negative completeness; `cvss_score: 55` broke the
    schema's 0..10; `10**400` raised OverflowError."""
    failed = changed("cyberorigen", "scan", _set(status="failed", progress=-45))
    (progress,), _ = serve("cyberorigen", "poll", {"scan": failed})
    assert isinstance(progress, ScanProgress)
    assert (progress.progress, progress.completeness) == (0.0, 0)

    def scores(body: Any) -> None:
        # One page (the fake answers every page alike; a repeated page is a paging error).
        items = [
            dict(body["items"][0], id=f"f{n}", cvss_score=s)
            for n, s in enumerate((55, -3, 10**400))
        ]
        body.update(items=items, total=len(items))

    findings = changed("cyberorigen", "findings", scores)
    (result,), _ = serve("cyberorigen", "fetch", {"findings": findings})
    assert isinstance(result, ScanResult)
    assert [f.cvss for f in result.findings] == [10.0, 0.0, None]
    check_outcome(result, scangate_json_schema)


def test_cyberorigen_validation_error_with_a_numeric_loc_is_a_provider_error() -> None:
    """FastAPI's `detail[].loc` was iterated whatever it was: TypeError on `5`."""
    body = {"detail": [{"loc": 5, "msg": "bad target"}, {"loc": ["body", 7], "msg": "x"}]}
    (error,), _ = serve("cyberorigen", "start", {"create": body}, status=422)
    assert isinstance(error, ProviderError)
    assert "bad target; body.7: x" in error.message


def test_vaddy_hostile_time_zone_name_is_utc() -> None:
    """`ZoneInfo("a/a/a/...")` recursed past the limit looking the key up."""
    body = changed("vaddy", "result", _set(timezone="a/" * 300 + "x"))
    (result,), _ = serve("vaddy", "fetch", {"result": body})
    assert isinstance(result, ScanResult)
    assert result.started_at == datetime(2014, 6, 12, 11, 11, 11, tzinfo=UTC)


def test_vaddy_alert_count_beyond_a_float_is_unusable() -> None:
    """`float(10**400)` raised OverflowError; without a count the gate must not pass."""
    body = changed("vaddy", "result", _set(alert_count=10**400))
    (error,), _ = serve("vaddy", "fetch", {"result": body})
    assert isinstance(error, UnexpectedResponseError)


def test_ncp_finding_keys_that_are_no_ascii_numbers_are_not_findings() -> None:
    """`"²".isdigit()` is true but `int("²")` fails, and so does `int()` past 4,300 digits."""

    def keys(body: Any) -> None:
        xss = body["resource"]["Details"]["XSS"]
        for n, key in enumerate(("²", "9" * 5000, "10")):
            xss[key] = dict(xss["0"], vuln_key=f"key-{n}")

    (result,), _ = serve("ncp-wsc", "fetch", {"report": changed("ncp-wsc", "report", keys)})
    assert isinstance(result, ScanResult)
    assert len(result.findings) == 3  # "0", "10" and the 5,000-digit key, in that order


def test_ncp_job_without_an_id_is_not_found_by_its_memo() -> None:
    """A record whose memo matched but which had no `instanceNo` became a scan named ''."""

    def anonymous(body: Any) -> None:
        del body["resources"]["record_data"][0]["instanceNo"]

    (found,), _ = serve(
        "ncp-wsc", "find_started", {"search": changed("ncp-wsc", "search", anonymous)}
    )
    assert found is None


def test_ncp_start_date_at_year_one_is_unknown() -> None:
    """0001-01-01 00:00 in Korea is year 0 in UTC: `astimezone` raised OverflowError."""

    def early(body: Any) -> None:
        body["resources"]["record_data"][0]["start_date"] = "0001-01-01 00:00:00"

    (result,), _ = serve("ncp-wsc", "fetch", {"search": changed("ncp-wsc", "search", early)})
    assert isinstance(result, ScanResult) and result.started_at is None


# -- formatters --------------------------------------------------------------------------------


def report_of(finding: Finding, **result: Any) -> Report:
    """A one-finding report through the default gate."""
    scan = ScanResult(
        **{
            "provider": "cystack",
            "scanner": "CyStack",
            "scan_id": "s1",
            "target": "https://app.example.com",
            "status": ScanStatus.COMPLETED,
            "findings": (finding,),
            **result,
        }
    )
    policy = Policy(provider=ProviderSettings(name="cystack"), scan=ScanSettings(target="x"))
    evaluation = evaluate(scan, policy, None, datetime(2026, 1, 1).date())
    return Report(evaluations=(evaluation,), verdict=combine([evaluation]))


def finding(**fields: Any) -> Finding:
    """A finding with hostile `fields`."""
    values = {"provider": "cystack", "rule_id": "xss", "title": "XSS", "severity": Severity.HIGH}
    return Finding.create(**{**values, **fields})


def test_times_before_year_1000_keep_four_digits(
    sarif_schema: JsonSchema, junit_schemas: XmlSchemas, gitlab_schema: JsonSchema
) -> None:
    """`strftime("%Y")` wrote `999-01-01`: invalid SARIF, JUnit (Ant) and GitLab times."""
    early = datetime(999, 1, 1, tzinfo=UTC)
    report = report_of(finding(url="https://a.example/x"), started_at=early, finished_at=early)
    assert not sarif_schema.errors(json.loads(formatter("sarif").render(report)))
    assert not junit_schemas.errors(formatter("junit").render(report))
    assert not gitlab_schema.errors(json.loads(formatter("gitlab-dast").render(report)))
    assert '"start_time": "0999-01-01T00:00:00"' in formatter("gitlab-dast").render(report)


def test_sarif_lone_surrogates_in_method_and_interruption_are_replaced() -> None:
    """`webRequest.method` and the `interrupted` properties were written raw: not UTF-8."""
    report = report_of(finding(method="\ud800", request="x"))
    report = Report(evaluations=report.evaluations, verdict=report.verdict, interrupted="\udfff")
    text = formatter("sarif").render(report)
    assert "\ufffd" in text
    text.encode("utf-8")


def test_gitlab_hostile_names_urls_and_fingerprints_stay_valid(gitlab_schema: JsonSchema) -> None:
    """Upper-case link schemes, a finding without any location, a blank scanner name, a
    control-character method and a lone surrogate in a fingerprint each broke the report."""
    hostile = finding(
        url="https://a.example/x",
        method="\x00",
        references=("HTTP://EXAMPLE.COM/advisory",),
        fingerprint="\ud800",
        false_positive=True,
    )
    for report in (report_of(hostile, scanner=" \x01 "), report_of(finding())):
        document = json.loads(formatter("gitlab-dast").render(report))
        assert not gitlab_schema.errors(document)
    links = [link["url"] for link in document_links(report_of(hostile))]
    assert "http://EXAMPLE.COM/advisory" in links


def document_links(report: Report) -> list[dict[str, str]]:
    """The links of the first vulnerability of `report`'s GitLab rendering."""
    document = json.loads(formatter("gitlab-dast").render(report))
    links: list[dict[str, str]] = document["vulnerabilities"][0]["links"]
    return links
