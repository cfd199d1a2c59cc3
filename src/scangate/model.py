"""The domain: findings and scan results, as every provider normalizes them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum, IntEnum
from typing import NewType

ScanId = NewType("ScanId", str)
"""A provider's identifier for one scan (or VAddy scan, NCP job)."""

EVIDENCE_LIMIT = 4096
"""Request/response evidence is capped to this many characters per finding."""


class Severity(IntEnum):
    """Normalized severity, ordered so that `a >= b` means "at least as severe"."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        """The lower-case name used in policies and reports (`high`)."""
        return self.name.lower()

    @classmethod
    def parse(cls, value: str) -> Severity:
        """Parse a severity name, case-insensitively, accepting providers' spellings.

        Raises `ValueError` for anything else.
        """
        key = value.strip().lower()
        aliases = {
            "information": "info",
            "informational": "info",
            "note": "info",
            "moderate": "medium",
        }
        key = aliases.get(key, key)
        for member in cls:
            if member.label == key:
                return member
        raise ValueError(f"unknown severity {value!r}")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """All labels, most severe first."""
        return tuple(s.label for s in sorted(cls, reverse=True))


class ScanStatus(str, Enum):
    """Normalized scan state, across providers."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    """scangate gave up waiting (scan.timeout)."""
    INTERRUPTED = "interrupted"
    """scangate was stopped by SIGINT/SIGTERM while waiting."""

    @property
    def terminal(self) -> bool:
        """True once the scan will not change any more (from scangate's point of view)."""
        return self not in (ScanStatus.PENDING, ScanStatus.RUNNING)


_CREDENTIAL_HEADER = re.compile(
    r"^((?:proxy-)?authorization|cookie|set-cookie|x-api-key|x-auth-token)[ \t]*:.*$",
    re.IGNORECASE | re.MULTILINE,
)


def cap_evidence(text: str, limit: int = EVIDENCE_LIMIT) -> str:
    """Redact credential headers of the scanned app, then cap to `limit` characters.

    Scanners quote whole requests and responses; session cookies and tokens of the target must
    not reach SARIF, JUnit or an artifact (anchors.md (d) 7; formats.md §1.8 item 5).
    """
    text = _CREDENTIAL_HEADER.sub(r"\1: [redacted by scangate]", text)
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[... {len(text) - limit} more characters cut by scangate]"


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One normalized finding. Build it with `Finding.create`, which fingerprints it."""

    fingerprint: str
    """Stable identity across runs (see `scangate.fingerprint`)."""
    rule_id: str
    """The provider's rule/check/plugin name (CyStack `plugin_name`, NCP category, ...)."""
    title: str
    severity: Severity
    url: str = ""
    method: str = ""
    parameter: str = ""
    cvss: float | None = None
    cve_ids: tuple[str, ...] = ()
    cwe_ids: tuple[int, ...] = ()
    request: str = ""
    """Request evidence, capped to `EVIDENCE_LIMIT`."""
    response: str = ""
    """Response evidence, capped to `EVIDENCE_LIMIT`."""
    description: str = ""
    remediation: str = ""
    references: tuple[str, ...] = ()
    provider_status: str = ""
    """The provider's own triage state (`open`, `false_positive`, ...), verbatim."""
    false_positive: bool = False
    """The provider marked this finding a false positive; the gate never counts it."""
    console_url: str = ""
    """Where the finding can be seen in the provider's UI."""

    @classmethod
    def create(
        cls,
        *,
        provider: str,
        rule_id: str,
        title: str,
        severity: Severity,
        url: str = "",
        method: str = "",
        parameter: str = "",
        fingerprint: str | None = None,
        **details: object,
    ) -> Finding:
        """Create a `Finding`, computing its fingerprint unless one is given.

        Evidence is capped; the method is upper-cased. `details` are the remaining fields.
        """
        from scangate.fingerprint import compute_fingerprint

        method = method.strip().upper()
        if fingerprint is None:
            fingerprint = compute_fingerprint(provider, rule_id or title, method, url, parameter)
        for key in ("request", "response"):
            value = details.get(key)
            if isinstance(value, str):
                details[key] = cap_evidence(value)
        return cls(
            fingerprint=fingerprint,
            rule_id=rule_id or title,
            title=title or rule_id,
            severity=severity,
            url=url,
            method=method,
            parameter=parameter,
            **details,  # type: ignore[arg-type]
        )


@dataclass(frozen=True, kw_only=True)
class CountSummary:
    """What a count-only provider (VAddy) tells instead of per-finding detail."""

    alert_count: int
    scan_count: int = 0
    """How many requests/checks the scanner ran."""
    checks: tuple[str, ...] = ()
    """The checks (VAddy `scan_list`) that were run."""
    console_url: str = ""


@dataclass(frozen=True, kw_only=True)
class ScanResult:
    """The outcome of one scan, whatever state it ended in."""

    provider: str
    """Registry name of the provider (`cyberorigen`)."""
    scanner: str
    """Display name of the scanning product (`CyberOrigen`), the SARIF driver."""
    scan_id: str
    target: str
    status: ScanStatus
    completeness: int = 100
    """Percent of the scan that ran (VAddy `complete`); below 100 is a partial scan."""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    findings: tuple[Finding, ...] = ()
    count_summary: CountSummary | None = None
    console_url: str = ""
    message: str = ""
    """Why the scan is not complete, in one line (empty when it is)."""
    details: Mapping[str, str] = field(default_factory=dict)
    """Provider facts worth reporting (plan, scan type, phase...), as display strings."""

    @property
    def complete(self) -> bool:
        """True when the scan finished normally and covered everything."""
        return self.status is ScanStatus.COMPLETED and self.completeness >= 100
