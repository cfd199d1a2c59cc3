"""NAVER Cloud WSC reports (`getReport`): findings by category, evidence, and the counts.

Facts come from `providers/ncp-wsc.md` (the "fact sheet"); section names are cited in comments.
"""

from __future__ import annotations

import html
import logging
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from scangate.errors import UnexpectedResponseError
from scangate.model import Finding, ScanRef, Severity
from scangate.providers import _wire as wire
from scangate.providers.paging import by_severity, shortfall
from scangate.text import one_line

logger = logging.getLogger("scangate.providers.ncp_wsc")

DISPLAY_NAME = "NAVER Cloud Web Security Checker"

RISK_LEVELS = ("High", "Medium", "Low")
"""`RiskLevel` values and the levels `Classify_byRisk_Level` counts (fact sheet "getReport")."""


_METHOD_URL = re.compile(r"\s*\[([A-Za-z]+)\]\s*(.*)", re.DOTALL)


def split_url(raw: str) -> tuple[str, str]:
    """`"[GET]&nbsp;&nbsp;http://…"` → `("GET", "http://…")` (fact sheet "getReport").

    The field is HTML text: entities are decoded. Without the `[METHOD]` prefix the method is
    empty and the whole text is the URL.
    """
    text = html.unescape(raw)
    match = _METHOD_URL.fullmatch(text)
    if match is None:
        return "", text.strip()
    return match[1].upper(), match[2].strip()


def request_evidence(item: Mapping[str, Any], method: str, url: str) -> str:
    """Request line and headers, body, then the payload WSC injected (`VulnSTR`)."""
    head = wire.text(item.get("Request_Header"))
    if not head or not re.match(r"[A-Z]+ \S", head):
        line = f"{method} {url}".strip()
        head = f"{line}\n{head}".strip() if line else head
    referer = wire.text(item.get("Referer"))
    if referer and "referer:" not in head.lower():
        head += f"\nReferer: {referer}"
    parts = [head, wire.text(item.get("Request_Body"))]
    payload = wire.text(item.get("VulnSTR"))
    if payload:
        where = wire.text(item.get("VulnParam"))
        parts.append(f"WSC payload{f' in {where}' if where else ''}: {payload}")
    return "\n\n".join(part for part in parts if part)


def description(block: Mapping[str, Any], item: Mapping[str, Any]) -> str:
    parts = [wire.text(block.get(key)) for key in ("Vuln_Desc", "Vuln_Desc2")]
    parts.append(wire.text(item.get("Description")))
    key = wire.text(item.get("vuln_key"))
    if key:
        parts.append(f"WSC vuln_key: {key}")
    return "\n\n".join(dict.fromkeys(part for part in parts if part))


def lines(value: Any) -> str:
    """An array of lines (`Response_Data`) or a string, as text."""
    if isinstance(value, list):
        return "\n".join(line if isinstance(line, str) else "" for line in value).strip()
    return wire.text(value)


def _numbered(key: Any) -> bool:
    """A finding's key in a category (`"0"`, `"1"`): ASCII digits (`"²".isdigit()` is true)."""
    return isinstance(key, str) and key.isascii() and key.isdigit()


def _number_order(key: str) -> tuple[int, str]:
    """Numeric order of a digit string, without `int()` (which refuses over 4,300 digits)."""
    digits = key.lstrip("0")
    return len(digits), digits


def record_details(record: Mapping[str, Any]) -> dict[str, str]:
    names = {"crawl_cnt": "urls_crawled", "scan_cnt": "vulnerabilities_found", "memo": "memo"}
    details = {name: wire.text(record.get(key)) for key, name in names.items()}
    return {key: one_line(value, 200) for key, value in details.items() if value}


def announced(
    resource: Mapping[str, Any],
    record: Mapping[str, Any],
    findings: list[Finding],
    by_category: Counter[str],
) -> list[tuple[str, int | None, int]]:
    """(what, announced, fetched) for `shortfall`: the report's `Classify_byRisk_Level` total
    (or the job's `scan_cnt`, the larger) and levels, and `Classify_byRisk_Vulnerability`
    per category (fact sheet "getReport" counts, "getJobs" `scan_cnt`)."""
    levels = wire.mapping(resource.get("Classify_byRisk_Level"))
    announced = (wire.integer(levels.get("Total")), wire.integer(record.get("scan_cnt")))
    totals = [n for n in announced if n is not None]
    risks = {Severity.parse(level): wire.integer(levels.get(level)) for level in RISK_LEVELS}
    counts = [("findings", max(totals) if totals else None, len(findings))]
    counts += by_severity(risks, findings)
    for category, count in wire.mapping(resource.get("Classify_byRisk_Vulnerability")).items():
        what = f"findings in category {one_line(str(category), 80)!r}"
        counts.append((what, wire.integer(count), by_category[str(category)]))
    return counts


def report_details(resource: Mapping[str, Any], parsed: int) -> dict[str, str]:
    notes = {"findings_parsed": str(parsed)}
    counts = resource.get("Classify_byRisk_Level")
    if isinstance(counts, Mapping):
        for key in ("Total", "High", "Medium", "Low"):
            number = wire.integer(counts.get(key))
            if number is not None:
                notes[f"reported_{key.lower()}"] = str(number)
    for key, name in (("Crawl_Time", "crawl_time"), ("Scan_Time", "scan_time")):
        if wire.text(resource.get(key)):
            notes[name] = one_line(wire.text(resource.get(key)), 100)
    return notes


def read_report(
    resource: Mapping[str, Any], scan: ScanRef, record: Mapping[str, Any]
) -> tuple[list[Finding], dict[str, str], str]:
    """The report's findings, notes, and how they fall short of the counts it announces."""
    details = resource.get("Details")
    if details in (None, "", [], {}):
        details = {}
    if not isinstance(details, Mapping):
        raise UnexpectedResponseError(f"NCP WSC report of job {scan.scan_id}: no `Details`")
    advice = resource.get("Recommendation")
    advice = advice if isinstance(advice, Mapping) else {}
    findings: list[Finding] = []
    seen: set[str] = set()
    skipped = 0
    by_category: Counter[str] = Counter()
    for category, block in details.items():
        found, lost = _category(str(category), block, wire.text(advice.get(category)), scan)
        skipped += lost
        for finding, key in found:
            if key and key in seen:
                continue  # `vuln_key` is unique per vulnerability (fact sheet)
            seen.add(key)
            findings.append(finding)
            by_category[str(category)] += 1
    notes = report_details(resource, len(findings))
    if skipped:
        notes["findings_skipped"] = str(skipped)
    counts = announced(resource, record, findings, by_category)
    short = shortfall(DISPLAY_NAME, counts, unreadable=skipped)
    if short:
        logger.warning("NCP WSC job %s: %s", scan.scan_id, short)
    return findings, notes, short


def _category(
    category: str, block: Any, advice: str, scan: ScanRef
) -> tuple[list[tuple[Finding, str]], int]:
    """Findings of one `Details` category (its numbered keys only) and how many were lost."""
    if not isinstance(block, Mapping):
        logger.warning("NCP WSC category %r skipped: not an object", one_line(category, 60))
        return [], 0
    numbered = sorted((k for k in block if _numbered(k)), key=_number_order)
    items = [block[key] for key in numbered]
    try:
        severity = Severity.parse(wire.text(block.get("RiskLevel")))
    except ValueError:
        logger.warning(
            "NCP WSC category %r skipped: RiskLevel %r unknown",
            one_line(category, 60),
            one_line(wire.text(block.get("RiskLevel")), 20),
        )
        return [], len(items)
    found: list[tuple[Finding, str]] = []
    for item in items:
        if not isinstance(item, Mapping):
            logger.warning("NCP WSC finding in %r skipped: not an object", one_line(category))
            continue
        finding = _finding(category, block, item, severity, advice, scan)
        found.append((finding, wire.text(item.get("vuln_key"))))
    return found, len(items) - len(found)


def _finding(
    category: str,
    block: Mapping[str, Any],
    item: Mapping[str, Any],
    severity: Severity,
    advice: str,
    scan: ScanRef,
) -> Finding:
    method, url = split_url(wire.text(item.get("URL")))
    # The category is the rule (design §9 "Ignores": NCP category).
    return Finding.create(
        provider="ncp-wsc",
        rule_id=category,
        title=wire.text(item.get("Title")) or category,
        severity=severity,
        url=url,
        method=method,
        parameter=wire.text(item.get("VulnParam")),
        request=request_evidence(item, method, url),
        response=lines(item.get("Response_Data")),
        description=description(block, item),
        remediation=advice,
        references=tuple(lines(item.get("Reference")).split()),
        console_url=scan.console_url,
    )
