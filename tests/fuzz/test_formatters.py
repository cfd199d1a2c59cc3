"""Every formatter under hostile findings: each report stays schema-valid, encodable and inert.

Hypothesis builds `ScanResult`s from arbitrary text (control characters, lone surrogates, huge
strings, URLs of any shape), every severity, status and completeness, CVE/CWE lists and count
summaries, evaluates them through the real gate under random settings, ignores and baselines,
and renders them with all five formatters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import fields, is_dataclass, replace
from datetime import UTC, date, datetime, timedelta, timezone
from enum import Enum
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scangate.baseline import Baseline, BaselineEntry
from scangate.formats import formatter
from scangate.formats.interface import Report
from scangate.formats.markdown import MAX_BYTES
from scangate.gate import combine, evaluate
from scangate.model import CountSummary, Finding, ScanResult, ScanStatus, Severity
from scangate.policy import GateSettings, IgnoreRule, Policy, ProviderSettings, ScanSettings
from scangate.providers import PROVIDER_NAMES
from scangate.results import load_results
from scangate.text import json_safe

from .schemas import JsonSchema, XmlSchemas
from .strategies import SHORT_TEXT, TEXT, fuzz_settings

EXAMPLES = 60
"""Reports per formatter."""
WORKFLOW_COMMAND = re.compile(r"^\s*(::|##\[)")
"""What a CI runner reads as a workflow command at the start of a log line."""

# -- findings and results ----------------------------------------------------------------------

URLS = st.one_of(
    st.sampled_from(
        (
            "",
            "https://app.example.com/api/items/123?q=1&page=2#frag",
            "HTTP://APP.EXAMPLE.COM:80/a/../b/./c/",
            "https://user:pa55@app.example.com:8443/p%20a%20t%20h/<x>?a=<b>",
            "https://[::1]:8080/x",
            "http://[::1",
            "https://app.example.com:99999/",
            "https://例え.jp/パス?キー=値",
            "http://host/%ZZ%00/..%2F..%2F",
            "javascript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "mailto:a@b.c",
            "ftp://files.example.com/x",
            "//host/only",
            "app.example.com/no-scheme",
            "https://",
            "https:// space.example.com/ x",
            "https://app.example.com/" + "a/" * 500,
        )
    ),
    st.builds(lambda text: "https://app.example.com/" + text, TEXT),
    TEXT,
)
"""URLs of every shape a provider has sent, or could."""
EVIDENCE = st.one_of(
    TEXT,
    st.builds(
        lambda body: f"GET /x?q=1 HTTP/1.1\nHost: a\nCookie: s=1\nX-Api-Key: k\n\n{body}", TEXT
    ),
    st.builds(lambda text: f"HTTP/1.1 500 {text}\r\nSet-Cookie: s=1\r\n\r\n{text}", SHORT_TEXT),
    st.builds(lambda name: f"POST / HTTP/1.1\n{name}: v\n\n", SHORT_TEXT),
)
"""Request/response evidence: raw text, or HTTP messages with hostile parts."""
CVES = st.one_of(st.sampled_from(("CVE-2024-1234", "cve-2021-44228", "CVE-0-0")), SHORT_TEXT)
DATETIMES = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.sampled_from(
        (UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12, minutes=-30)))
    ),
)
"""Aware times across `datetime`'s whole range (a day kept free at each end for the offsets)."""


@st.composite
def findings(draw: st.DrawFn, provider: str) -> Finding:
    """One finding as a provider builds it (`Finding.create`), every text field hostile."""
    fingerprint = draw(st.one_of(st.none(), st.none(), SHORT_TEXT.filter(bool)))
    return Finding.create(
        provider=provider,
        rule_id=draw(st.one_of(st.sampled_from(("sql_injection", "xss", "")), TEXT)),
        title=draw(TEXT),
        severity=draw(st.sampled_from(Severity)),
        url=draw(URLS),
        method=draw(st.one_of(st.sampled_from(("GET", "post", "", " PUT ")), SHORT_TEXT)),
        parameter=draw(st.one_of(st.just(""), TEXT)),
        fingerprint=fingerprint,
        cvss=draw(st.one_of(st.none(), st.floats(0, 10))),
        cve_ids=tuple(draw(st.lists(CVES, max_size=3))),
        cwe_ids=tuple(draw(st.lists(st.integers(0, 10**6), max_size=12))),
        request=draw(EVIDENCE),
        response=draw(EVIDENCE),
        description=draw(TEXT),
        remediation=draw(TEXT),
        references=tuple(draw(st.lists(URLS, max_size=3))),
        provider_status=draw(st.one_of(st.just(""), SHORT_TEXT)),
        false_positive=draw(st.booleans()),
        console_url=draw(URLS),
    )


COUNT_SUMMARIES = st.builds(
    CountSummary,
    alert_count=st.integers(0, 10**12),
    scan_count=st.integers(0, 10**12),
    checks=st.lists(SHORT_TEXT, max_size=4).map(tuple),
    console_url=URLS,
)


@st.composite
def results(draw: st.DrawFn) -> ScanResult:
    """A scan result in any state, with a few findings (some repeated) or a count summary."""
    provider = draw(st.sampled_from(PROVIDER_NAMES))
    found = draw(st.lists(findings(provider), max_size=5))
    repeats = draw(st.lists(st.sampled_from(found), max_size=3)) if found else []
    found += repeats  # exact duplicates: same fingerprint, same case name
    return ScanResult(
        provider=provider,
        scanner=draw(st.one_of(st.sampled_from(("CyberOrigen", "VAddy", "")), TEXT)),
        scan_id=draw(st.one_of(st.just("scan_abc123"), TEXT)),
        target=draw(URLS),
        status=draw(st.sampled_from(ScanStatus)),
        completeness=draw(st.integers(0, 100)),
        started_at=draw(st.one_of(st.none(), DATETIMES)),
        finished_at=draw(st.one_of(st.none(), DATETIMES)),
        findings=tuple(found),
        count_summary=draw(st.one_of(st.none(), COUNT_SUMMARIES)),
        console_url=draw(URLS),
        message=draw(st.one_of(st.just(""), TEXT)),
        details=draw(st.dictionaries(SHORT_TEXT, TEXT, max_size=3)),
    )


# -- the gate around them ----------------------------------------------------------------------

SEVERITY_OR_NONE = st.one_of(st.none(), st.sampled_from(Severity))
GATES = st.builds(
    GateSettings,
    fail_on=SEVERITY_OR_NONE,
    max=st.dictionaries(st.sampled_from(Severity), st.integers(0, 5), max_size=3),
    warn_on=SEVERITY_OR_NONE,
    new_only=st.booleans(),
    fail_on_incomplete=st.booleans(),
)
DATES = st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1))


@st.composite
def ignores(draw: st.DrawFn, pool: list[Finding]) -> tuple[IgnoreRule, ...]:
    """Ignore entries: some copy match keys from real findings (so they apply), some never do."""
    rules = []
    for index in range(draw(st.integers(0, 4))):
        source = draw(st.sampled_from(pool)) if pool else None
        keys: dict[str, Any] = {}
        if source is not None and draw(st.booleans()):
            keys["rule"] = source.rule_id
        elif draw(st.booleans()):
            keys["title"] = draw(st.sampled_from(("*", "*SQL*", "[!a]*"))) + draw(SHORT_TEXT)
        if source is not None and draw(st.booleans()):
            keys["fingerprint"] = source.fingerprint
        if not keys or draw(st.booleans()):
            keys["url"] = draw(st.sampled_from(("https://*", "*", "*/api/*")))
        if source is not None and source.cwe_ids and draw(st.booleans()):
            keys["cwe"] = source.cwe_ids[0]
        if source is not None and source.cve_ids and draw(st.booleans()):
            keys["cve"] = source.cve_ids[0]
        if source is not None and draw(st.booleans()):
            keys["param"] = source.parameter
        reason = draw(TEXT.filter(str.strip))
        expires = draw(st.one_of(st.none(), DATES))
        rules.append(IgnoreRule(index=index, reason=reason, expires=expires, **keys))
    return tuple(rules)


@st.composite
def baselines(draw: st.DrawFn, pool: list[Finding]) -> Baseline | None:
    """No baseline, or one holding some of the findings plus hostile entries now fixed."""
    if draw(st.booleans()):
        return None
    known = draw(st.lists(st.sampled_from(pool), max_size=len(pool))) if pool else []
    gone = draw(
        st.lists(
            st.builds(
                BaselineEntry,
                fingerprint=SHORT_TEXT.filter(bool),
                rule_id=TEXT,
                title=TEXT,
                severity=st.sampled_from(Severity),
                url=URLS,
            ),
            max_size=3,
        )
    )
    return Baseline.from_entries([*Baseline.from_findings(known).entries, *gone])


@st.composite
def reports(draw: st.DrawFn) -> tuple[Report, tuple[ScanResult, ...]]:
    """A report over one to three scans (a merged matrix), and the results it was made from."""
    scans = tuple(draw(st.lists(results(), min_size=1, max_size=3)))
    pool = [f for scan in scans for f in scan.findings]
    policy = Policy(
        provider=ProviderSettings(name=scans[0].provider),
        scan=ScanSettings(target="https://app.example.com"),
        gate=draw(GATES),
        ignore=draw(ignores(pool)),
    )
    baseline = draw(baselines(pool))
    today = draw(DATES)
    evaluations = tuple(evaluate(scan, policy, baseline, today) for scan in scans)
    report = Report(
        evaluations=evaluations,
        verdict=combine(evaluations),
        gate=policy.gate,
        tool_version="0.1.0",
        sarif_anchor=draw(
            st.one_of(st.none(), st.sampled_from(("openapi.yaml", "../../etc/passwd")), TEXT)
        ),
        interrupted=draw(st.one_of(st.just(""), st.just("SIGTERM"), TEXT)),
    )
    return report, scans


def render(name: str, report: Report) -> str:
    """Render `report` as format `name`; the text must encode as UTF-8 and be deterministic."""
    text = formatter(name).render(report)
    text.encode("utf-8")  # strict: a lone surrogate raises UnicodeEncodeError
    assert formatter(name).render(report) == text, f"{name} is not deterministic"
    return text


# -- the properties ----------------------------------------------------------------------------


@fuzz_settings(EXAMPLES)
@given(case=reports())
def test_sarif_validates_against_the_oasis_schema(
    case: tuple[Report, tuple[ScanResult, ...]], sarif_schema: JsonSchema
) -> None:
    """SARIF 2.1.0 stays valid (draft-04 schema, date-time formats checked) whatever the text."""
    document = json.loads(render("sarif", case[0]))
    errors = sarif_schema.errors(document)
    assert not errors, errors[:5]


@fuzz_settings(EXAMPLES)
@given(case=reports())
def test_junit_validates_against_both_xsds(
    case: tuple[Report, tuple[ScanResult, ...]], junit_schemas: XmlSchemas
) -> None:
    """JUnit XML stays well-formed and valid against the Ant and Jenkins schemas."""
    errors = junit_schemas.errors(render("junit", case[0]))
    assert not errors, errors


@fuzz_settings(EXAMPLES)
@given(case=reports())
def test_gitlab_dast_validates_against_schema_15_2_1(
    case: tuple[Report, tuple[ScanResult, ...]], gitlab_schema: JsonSchema
) -> None:
    """The GitLab DAST report stays valid (draft-07, formats checked) whatever the text."""
    document = json.loads(render("gitlab-dast", case[0]))
    errors = gitlab_schema.errors(document)
    assert not errors, errors[:5]


@fuzz_settings(EXAMPLES)
@given(case=reports())
def test_scangate_json_validates_and_round_trips(
    case: tuple[Report, tuple[ScanResult, ...]],
    scangate_json_schema: JsonSchema,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """`scangate.json` is valid against its shipped schema and `load_results` reads it back.

    The results come back exactly, except that lone surrogates (which UTF-8 cannot carry) come
    back as U+FFFD, as design §9 "Untrusted text" says.
    """
    report, scans = case
    text = render("json", report)
    errors = scangate_json_schema.errors(json.loads(text))
    assert not errors, errors[:5]
    path = tmp_path_factory.mktemp("results") / "scangate.json"
    path.write_text(text, encoding="utf-8")
    assert load_results(path) == tuple(_surrogates_replaced(scan) for scan in scans)


def _surrogates_replaced(value: Any) -> Any:
    """`value` with `json_safe` applied to every string in it (mapping keys in sorted order,
    as `scangate.json` writes them, so keys that become equal keep the same survivor)."""
    if isinstance(value, Enum):
        return value  # `ScanStatus` is a `str` too
    if isinstance(value, str):
        return json_safe(value)
    if isinstance(value, tuple):
        return tuple(_surrogates_replaced(item) for item in value)
    if isinstance(value, Mapping):
        return {json_safe(key): _surrogates_replaced(value[key]) for key in sorted(value)}
    if is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: _surrogates_replaced(getattr(value, f.name)) for f in fields(value)}
        return replace(value, **changes)
    return value


@fuzz_settings(EXAMPLES)
@given(case=reports())
def test_markdown_is_bounded_and_forms_no_workflow_command(
    case: tuple[Report, tuple[ScanResult, ...]],
) -> None:
    """`summary.md` fits GitHub's 1 MiB and no line of it can be read as a workflow command."""
    text = render("markdown", case[0])
    assert len(text.encode("utf-8")) <= MAX_BYTES
    commands = [line for line in text.splitlines() if WORKFLOW_COMMAND.match(line)]
    assert not commands, commands[:3]


@fuzz_settings(5)
@given(
    reason=st.sampled_from(("A", "é", "<b>|</b>", "\n::error::x", "\U0001f600")).map(
        lambda p: p * 600
    ),
    count=st.integers(2500, 3000),
)
def test_markdown_past_one_mebibyte_is_cut_to_fit(reason: str, count: int) -> None:
    """Thousands of unused ignore entries with long reasons would pass 1 MiB: it is cut."""
    result = ScanResult(
        provider="cyberorigen",
        scanner="CyberOrigen",
        scan_id="s",
        target="https://app.example.com",
        status=ScanStatus.COMPLETED,
    )
    policy = Policy(
        provider=ProviderSettings(name="cyberorigen"),
        scan=ScanSettings(target=result.target),
        ignore=tuple(IgnoreRule(index=i, reason=reason, rule="never") for i in range(count)),
    )
    evaluation = evaluate(result, policy, None, date(2026, 1, 1))
    report = Report(evaluations=(evaluation,), verdict=combine([evaluation]))
    text = render("markdown", report)
    assert len(text.encode("utf-8")) <= MAX_BYTES
    assert "1 MiB" in text.splitlines()[-1]
    assert not [line for line in text.splitlines() if WORKFLOW_COMMAND.match(line)]
