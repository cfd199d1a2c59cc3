"""Findings and scan results, as every provider normalizes them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum, IntEnum
from typing import NewType

from scangate.secrets import redact_credential_headers
from scangate.text import model_text, rule_slug

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
        # A table, not `self.name.lower()`: every report asks for it several times per finding,
        # and an enum's `name` is a descriptor lookup (about 1 s of a 100,000-finding run).
        return _LABELS[self]

    @classmethod
    def parse(cls, value: str) -> Severity:
        """Parse a severity name, case-insensitively, accepting providers' spellings.

        Raises `ValueError` for anything else.
        """
        member = _BY_NAME.get(value.strip().lower())
        if member is None:
            raise ValueError(f"unknown severity {value!r}")
        return member

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """All labels, most severe first."""
        return tuple(s.label for s in sorted(cls, reverse=True))


_LABELS: tuple[str, ...] = tuple(member.name.lower() for member in sorted(Severity))
"""`Severity.label` by value (INFO = 0 ... CRITICAL = 4)."""
_BY_NAME: dict[str, Severity] = {
    **{member.name.lower(): member for member in Severity},
    # Providers' spellings.
    "information": Severity.INFO,
    "informational": Severity.INFO,
    "note": Severity.INFO,
    "moderate": Severity.MEDIUM,
}


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


def cap_evidence(text: str, limit: int = EVIDENCE_LIMIT) -> str:
    """Redact credential headers of the scanned app, then cap to `limit` characters.

    Scanners quote whole requests and responses; session cookies and tokens of the target must
    not reach SARIF, JUnit or an artifact (docs/formats.md §1.8 item 5).
    """
    text = redact_credential_headers(text)
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[... {len(text) - limit} more characters cut by scangate]"


def _clean(
    obj: object,
    lines: tuple[str, ...],
    texts: tuple[str, ...] = (),
    lists: tuple[str, ...] = (),
) -> None:
    """Run `model_text` over the named fields of a frozen dataclass, in place (see `Finding`)."""
    for name in lines:
        value = getattr(obj, name)
        clean = model_text(value)
        if clean is not value:
            object.__setattr__(obj, name, clean)
    for name in texts:
        value = getattr(obj, name)
        clean = model_text(value, multiline=True)
        if clean is not value:
            object.__setattr__(obj, name, clean)
    for name in lists:
        values = getattr(obj, name)
        cleaned = tuple(model_text(v) for v in values)
        if cleaned != values:
            object.__setattr__(obj, name, cleaned)


_FINDING_LINES = (
    "rule_id",
    "title",
    "url",
    "method",
    "parameter",
    "provider_status",
    "console_url",
)
"""Not the fingerprint: scangate makes it (a digest, or VAddy's `vaddy:<project_id>:<n>`)."""
_FINDING_TEXTS = ("request", "response", "description", "remediation")
_FINDING_LISTS = ("cve_ids", "references")


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One normalized finding. Build it with `Finding.create`, which fingerprints it.

    Text enters the model sanitized, once, here (`text.model_text`): no field holds a NUL, any
    other C0/C1 control, a bidi control or a lone surrogate, so no report can show one. The
    one-line fields (ids, title, URL, method, parameter, status, references) hold no line
    break either; evidence, description and remediation keep TAB, LF and CR.
    """

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

    def __post_init__(self) -> None:
        """Sanitize every text field (see the class docstring)."""
        _clean(self, _FINDING_LINES, _FINDING_TEXTS, _FINDING_LISTS)

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

        Text is sanitized first (`text.model_text`), so the fingerprint is that of what the
        reports show. Without a `rule_id` (a provider that has no rule or check id) the rule
        id is `text.rule_slug(title)` and the fingerprint is computed over the title, as it
        always was. Evidence is capped; the method is upper-cased. `details` are the remaining
        fields.
        """
        from scangate.fingerprint import compute_fingerprint

        rule_id, title = model_text(rule_id), model_text(title)
        url, parameter = model_text(url), model_text(parameter)
        method = model_text(method).strip().upper()
        if fingerprint is None:
            fingerprint = compute_fingerprint(provider, rule_id or title, method, url, parameter)
        for key in ("request", "response"):
            value = details.get(key)
            if isinstance(value, str):
                details[key] = cap_evidence(model_text(value, multiline=True))
        return cls(
            fingerprint=fingerprint,
            rule_id=rule_id or rule_slug(title),
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

    def __post_init__(self) -> None:
        """Sanitize the provider's text, as `Finding` does."""
        _clean(self, ("console_url",), lists=("checks",))


@dataclass(frozen=True, kw_only=True)
class QueueStats:
    """How long a run waited for its turn on the provider: plan limits shared by matrix jobs."""

    queued_seconds: float = 0.0
    """From the first start the plan refused for now (a scan slot, a start allowance) to the
    start it took; 0 when the first start went through."""
    throttled_seconds: float = 0.0
    """Spent waiting out rate limits (HTTP 429, 503 with `Retry-After`), over the whole run."""
    retries: int = 0
    """Requests sent again after a "not now" answer (rate limits and queued starts)."""
    rate_limited: int = 0
    """HTTP 429 answers received."""
    reason: str = ""
    """What the start waited for (`a free scan slot (3 of 3 in use)`); empty when nothing."""

    @property
    def waited(self) -> bool:
        """True when the run lost any time to the plan's limits."""
        return bool(self.queued_seconds or self.throttled_seconds or self.retries)


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
    """Why the scan is not complete, in one line (empty when it is); `shortfall` is added to it."""
    details: Mapping[str, str] = field(default_factory=dict)
    """Provider facts worth reporting (plan, scan type, phase...), as display strings."""
    shortfall: str = ""
    """Why the findings are not all the provider announced, in one line naming the numbers
    (`CyberOrigen announced 100000 findings but 99900 were fetched`); empty when they agree.
    A result with a shortfall is not complete."""
    queue: QueueStats | None = None
    """What the plan's limits cost this run (None: not recorded, e.g. older results files)."""
    scanner_version: str = ""
    """The scanner's version, as GitLab (`scan.scanner.version`) and SARIF (`driver.version`)
    show it. The rule: the engine's own version when the provider's API reports one (`2.15.0`);
    otherwise the version of the provider API scangate read the results through, spelled
    `API v1`, so nobody takes it for the engine's. Empty when not recorded (results files of
    older scangate versions); the reports then fall back to `unknown`."""

    def __post_init__(self) -> None:
        """Sanitize the provider's text, as `Finding` does (details: keys and values)."""
        lines = (
            "provider",
            "scanner",
            "scanner_version",
            "scan_id",
            "target",
            "console_url",
            "message",
            "shortfall",
        )
        _clean(self, lines)
        if self.shortfall and self.shortfall not in self.message:
            # Every report that says why a scan is incomplete shows the message.
            joined = f"{self.message}; {self.shortfall}" if self.message else self.shortfall
            object.__setattr__(self, "message", joined)
        details = {model_text(k): model_text(v) for k, v in self.details.items()}
        if details != self.details:
            object.__setattr__(self, "details", details)

    @property
    def complete(self) -> bool:
        """True when the scan finished normally, covered everything and nothing is missing."""
        return (
            self.status is ScanStatus.COMPLETED and self.completeness >= 100 and not self.shortfall
        )
