"""Reading CyberSec Pro's answers: scan lists, details and results in either documented shape.

Its published reference [S0] and its implementation [R] disagree on several answers (fact sheet
`providers/cybersecpro.md`), so every reader here accepts both shapes.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import requests

from scangate.errors import UnexpectedResponseError
from scangate.model import Finding, ScanRef, Severity
from scangate.providers import _wire as wire
from scangate.providers._login import DEFAULT_TOKEN_LIFE
from scangate.providers.paging import by_severity, last_page
from scangate.text import one_line

logger = logging.getLogger("scangate.providers.cybersecpro")

LIST_SIZE = 100
"""The implementation's maximum `per_page` (fact sheet "List")."""
URL_KEYS = ("url", "matched_at", "matched-at", "location", "endpoint", "host")
"""Where a tool's finding may name its location; neither documented shape has one."""
RULE_KEYS = ("template_id", "template-id", "rule", "check")
_TOOL_LISTS = ("vulnerabilities", "findings")
"""Lists of the implementation's tool-parser object that hold findings (fact sheet "Result")."""
_INVENTORY = ("services", "subdomains", "directories")
"""Lists of the tool-parser object that are inventory, counted but not findings."""


def token_lifetime(token: str, now: float) -> float:
    """Seconds an access JWT lives, from its `exp` (and `iat`) claims; 1 hour if unreadable.

    The claims are read without checking the signature: only the server can, and it only
    decides when to refresh. `exp - iat` is used when both exist, so clock skew does not count.
    """
    try:
        segment = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (IndexError, ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        return DEFAULT_TOKEN_LIFE
    if not isinstance(claims, Mapping):
        return DEFAULT_TOKEN_LIFE
    exp, iat = wire.number(claims.get("exp")), wire.number(claims.get("iat"))
    life = (exp - iat) if exp is not None and iat is not None else (exp - now if exp else None)
    return life if life is not None and 0 < life <= 30 * 86400 else DEFAULT_TOKEN_LIFE


def scan_object(body: Any) -> Mapping[str, Any]:
    """The scan of a detail answer: `{"scan": {...}}` [R], or the object itself."""
    scan = body.get("scan") if isinstance(body, Mapping) else None
    if isinstance(scan, Mapping):
        return scan
    if isinstance(body, Mapping) and ("status" in body or "id" in body):
        return body
    raise UnexpectedResponseError("CyberSec Pro's scan detail has no scan object")


def result_parts(body: Any) -> tuple[list[Any], Mapping[str, Any], dict[str, str]]:
    """(finding items, announced counts, notes) of a result answer in either shape.

    Doc: `vulnerabilities[]` next to `findings` counts. Impl: `execution_result.findings`, the
    tool parser's object with `summary`, `vulnerabilities[]`, `findings[]` and inventory lists.
    """
    if not isinstance(body, Mapping):
        raise UnexpectedResponseError("CyberSec Pro's scan result is not a JSON object")
    execution = body.get("execution_result")
    tool: Any = execution.get("findings") if isinstance(execution, Mapping) else None
    top = body.get("findings")
    if tool is None and isinstance(top, Mapping) and any(k in top for k in _TOOL_LISTS):
        tool = top  # a tool object where the documented counts would be
    if not any(key in body for key in ("vulnerabilities", "execution_result", "findings", "scan")):
        raise UnexpectedResponseError("CyberSec Pro's scan result has no findings of any shape")
    items = wire.items(body.get("vulnerabilities")) + (top if isinstance(top, list) else [])
    if isinstance(tool, Mapping):
        items += [item for key in _TOOL_LISTS for item in wire.items(tool.get(key))]
    elif isinstance(tool, list):
        items += tool
    counts = tool.get("summary") if isinstance(tool, Mapping) else top
    notes = {"result_shape": "documented" if "vulnerabilities" in body else "implementation"}
    if isinstance(tool, Mapping):
        notes.update({key: str(len(wire.items(tool[key]))) for key in _INVENTORY if key in tool})
    return items, counts if isinstance(counts, Mapping) else {}, notes


def announced(
    counts: Mapping[str, Any], findings: list[Finding]
) -> list[tuple[str, int | None, int]]:
    """(what, announced, fetched) for `shortfall`: the result's counts, `total` and one per
    severity (doc `findings` counts, impl tool `summary`; fact sheet "Result": "counts must
    equal the vulnerability list")."""
    levels = {s: wire.integer(counts.get(s.label)) for s in Severity}
    total = ("findings", wire.integer(counts.get("total")), len(findings))
    return [total, *by_severity(levels, findings)]


def list_page(body: Any) -> tuple[list[Mapping[str, Any]], int | None, int | None]:
    """(scans, total, pages) of one list page in either shape (fact sheet "List").

    Doc: `{"data": [...], "pagination": {page, per_page, total, total_pages}}`; impl:
    `{"scans": [...], "total", "page", "per_page"}`; a bare array is one whole page.
    """
    total = pages = None
    if isinstance(body, list):
        items: Any = body
        pages = 1
    elif isinstance(body, Mapping) and isinstance(body.get("data"), list):
        items = body["data"]
        pagination = body.get("pagination")
        if isinstance(pagination, Mapping):
            total = wire.integer(pagination.get("total"))
            pages = wire.integer(pagination.get("total_pages"))
    elif isinstance(body, Mapping) and isinstance(body.get("scans"), list):
        items, total = body["scans"], wire.integer(body.get("total"))
    else:
        raise UnexpectedResponseError("CyberSec Pro's scan list has neither data nor scans")
    return [item for item in items if isinstance(item, Mapping)], total, pages


def list_ended(
    page: int, items: list[Any], read: int, total: int | None, pages: int | None
) -> bool:
    if not items:
        return True
    if total is None and pages is None:
        return len(items) < LIST_SIZE
    return last_page(page, len(items), read, total, pages, LIST_SIZE)


def older(items: list[Mapping[str, Any]], since: datetime | None) -> bool:
    """True when the page reaches a scan created before `since` (the list is newest first)."""
    if since is None:
        return False
    created = [moment for item in items if (moment := wire.iso_time(item.get("created_at")))]
    return bool(created) and min(created) < since


def scan_details(detail: Mapping[str, Any], scan: ScanRef) -> dict[str, str]:
    summary = detail.get("findings_summary")
    found = {
        "tool": wire.text(detail.get("tool_name")) or scan.extra.get("tool", ""),
        "duration": wire.text(detail.get("duration")),
        "open_ports": wire.text(summary.get("open_ports")) if isinstance(summary, Mapping) else "",
    }
    return {key: value for key, value in found.items() if value}


def failure(detail: Mapping[str, Any]) -> str:
    for key in ("error_log", "error", "message"):
        text = wire.text(detail.get(key))
        if text:
            return one_line(text, 300)
    return "CyberSec Pro reported the scan failed"


def finding_label(raw: Mapping[str, Any]) -> str:
    return one_line(wire.text(raw.get("id"), "(no id)"), 80)


def cves(raw: Mapping[str, Any]) -> tuple[str, ...]:
    """`cve` as one id [S0] or a list; `cve_ids` too."""
    found: list[str] = []
    for key in ("cve", "cve_id", "cve_ids"):
        value = raw.get(key)
        values = value if isinstance(value, list) else [value]
        found += [text for text in (wire.text(item) for item in values) if text]
    return tuple(dict.fromkeys(found))


def finding(raw: Any, scan: ScanRef, unrated: Severity) -> Finding | None:
    """Map one finding of either shape; None (with a warning) when it has no title."""
    if not isinstance(raw, Mapping):
        logger.warning("CyberSec Pro finding skipped: not an object")
        return None
    title = wire.text(raw.get("title")) or wire.text(raw.get("name"))
    if not title:
        logger.warning("CyberSec Pro finding %s skipped: no title", finding_label(raw))
        return None
    cvss = wire.cvss(raw.get("cvss") if raw.get("cvss") is not None else raw.get("cvss_score"))
    # Without a template or check id `Finding.create` makes the rule id from the title.
    rule = next((wire.text(raw.get(key)) for key in RULE_KEYS if wire.text(raw.get(key))), "")
    return Finding.create(
        provider="cybersecpro",
        rule_id=rule,
        title=title,
        severity=_severity(raw, cvss, title, unrated),
        url=next((wire.text(raw.get(k)) for k in URL_KEYS if wire.text(raw.get(k))), scan.target),
        method=wire.text(raw.get("method")),
        parameter=wire.text(raw.get("parameter")) or wire.text(raw.get("param")),
        cvss=cvss,
        cve_ids=cves(raw),
        description=wire.text(raw.get("description")),
        remediation=wire.text(raw.get("remediation")),
        response=wire.text(raw.get("evidence")),
        console_url=scan.console_url,
    )


def _severity(
    raw: Mapping[str, Any], cvss: float | None, title: str, unrated: Severity
) -> Severity:
    """The finding's severity; from CVSS when unknown, else the policy's unrated severity."""
    word = wire.text(raw.get("severity")).lower()
    if word == "none":
        return Severity.INFO
    try:
        return Severity.parse(word)
    except ValueError:
        pass
    if cvss is not None:
        return wire.cvss_severity(cvss)
    fallback = unrated
    logger.warning(
        "CyberSec Pro finding %r has no usable severity; counted as %s",
        one_line(title, 80),
        fallback.label,
    )
    return fallback


def utf8_json(response: requests.Response) -> Any:
    """The body as UTF-8 JSON; None when empty or not that."""
    try:
        return json.loads(response.content.decode("utf-8")) if response.content else None
    except (UnicodeDecodeError, ValueError, RecursionError):  # nested past the decoder's limit
        return None
