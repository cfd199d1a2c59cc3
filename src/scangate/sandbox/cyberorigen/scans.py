"""CyberOrigen scan records: the timed state machine and its wire JSON.

The wire shapes are those of docs/providers/cyberorigen.md.
"""

from __future__ import annotations

import math
import secrets
from bisect import bisect_right
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from scangate.sandbox.scenario import SEVERITIES, ScenarioFinding

PHASES = (
    "discovery",
    "enumeration",
    "vulnerability_scanning",
    "web_analysis",
    "cloud_analysis",
    "threat_intelligence",
    "correlation",
    "ai_analysis",
    "remediation_planning",
    "reporting",
)
"""The ten phase names of the fact sheet's scan detail; a finished scan reports `complete`."""
TOOLS = ("subfinder", "nmap", "nuclei", "zap", "prowler", "otx", "correlator", "llm", "planner")
"""`current_tool` by phase (the last serves `reporting` too); only `nuclei` is documented."""
SCAN_TYPES = ("quick", "full", "compliance")
STATUSES = ("pending", "running", "completed", "failed", "cancelled")
ACTIVE = ("pending", "running")
PENDING_SHARE = 0.1
"""Share of a sandbox scan's duration spent `pending` before it starts running."""


def iso(epoch: float) -> str:
    """ISO-8601 UTC with a `Z`, to the second, as the fact sheet's examples."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def next_month(epoch: float) -> float:
    """The first instant of the month after `epoch`, UTC (the quota's `resets_at`)."""
    moment = datetime.fromtimestamp(epoch, UTC)
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return datetime(year, month, 1, tzinfo=UTC).timestamp()


def host_of(target: str) -> str:
    """The host of a domain, IP, CIDR or URL, lower-case (for the list's `target` filter)."""
    value = target.strip().lower()
    return urlsplit(value if "://" in value else "//" + value).hostname or value


def create_problem(body: Mapping[str, Any]) -> str:
    """What is wrong with a `POST /scans` body, FastAPI-style (`field: problem`), or ''."""
    target = body.get("target")
    if not isinstance(target, str) or not target.strip():
        return "target: field required (a domain, IP, CIDR or URL)"
    if body.get("scan_type", "full") not in SCAN_TYPES:
        return f"scan_type: must be one of {', '.join(SCAN_TYPES)}"
    frameworks = body.get("frameworks", [])
    if not isinstance(frameworks, list) or not all(isinstance(f, str) for f in frameworks):
        return "frameworks: must be a list of strings"
    if not isinstance(body.get("ports", ""), str):
        return "ports: must be a string such as 1-1000"
    if "authorized" not in body:
        return "authorized: field required"
    if not isinstance(body["authorized"], bool):
        return "authorized: must be a boolean"
    return ""


def finding_json(finding: ScenarioFinding, finding_id: str) -> dict[str, Any]:
    """A scenario finding in CyberOrigen's shape, without `detected_at` (`Planted` adds it).

    CyberOrigen has no rule, method, parameter, CWE or evidence fields; those are dropped.
    """
    return {
        "id": finding_id,
        "title": finding.title,
        "severity": finding.severity,
        "cvss_score": finding.cvss,
        "status": finding.status,
        "tool": finding.tool or "nuclei",
        "affected_component": finding.url,
        "description": finding.description,
        "remediation": finding.remediation,
        "cve_ids": list(finding.cve),
    }


@dataclass(frozen=True)
class Planted:
    """A finding on one scan: seconds after creation it is detected, and its wire JSON."""

    offset: float
    finding: ScenarioFinding
    finding_id: str
    detected_at: float
    """Epoch seconds."""

    @cached_property
    def body(self) -> Mapping[str, Any]:
        """The wire JSON, `detected_at` included; made when first served, then shared and
        never changed. Made in the start request, a 100,000-finding scan's would take a second
        there (benchmarks/endtoend.py), where a real API answers at once. Everything it is made
        of is fixed at planting, so two threads making it at once make the same one."""
        return {**finding_json(self.finding, self.finding_id), "detected_at": iso(self.detected_at)}


@dataclass(frozen=True)
class ScanState:
    """Where a scan is at one moment."""

    status: str
    elapsed: float
    """Seconds since creation, frozen once the scan ends."""
    progress: int
    phase: int | None
    """Index into `PHASES`; None while pending, `len(PHASES)` once complete."""

    @property
    def phase_name(self) -> str | None:
        """The wire `phase`: a `PHASES` name, `complete`, or None while pending."""
        if self.phase is None:
            return None
        return "complete" if self.phase >= len(PHASES) else PHASES[self.phase]

    @property
    def current_tool(self) -> str | None:
        """The tool of the running phase; None unless running."""
        if self.status != "running" or self.phase is None:
            return None
        return TOOLS[min(self.phase, len(TOOLS) - 1)]


@dataclass
class ScanRecord:
    """One scan: pending, then running through the phases, then its final state.

    Time is the emulator clock's `monotonic()`; nothing runs in the background, the state is
    computed from the elapsed time whenever it is asked for.
    """

    id: str
    target: str
    scan_type: str
    created: float
    """Clock `monotonic()` at creation."""
    created_at: float
    """Wall-clock Unix time at creation."""
    duration: float
    final: str
    """The state reached after `duration`: `completed`, `failed` or `cancelled`."""
    completeness: int
    """Progress percent a `failed`/`cancelled` final state stops at."""
    findings: tuple[Planted, ...]
    stopped: float | None = None
    """Elapsed seconds when a `DELETE` cancelled it."""

    @classmethod
    def create(
        cls,
        *,
        target: str,
        scan_type: str,
        created: float,
        created_at: float,
        duration: float,
        final: str,
        completeness: int,
        findings: tuple[ScenarioFinding, ...],
    ) -> ScanRecord:
        """Create a new scan whose `findings` are detected evenly over its running time."""
        start, span = duration * PENDING_SHARE, duration * (1 - PENDING_SHARE)
        offsets = [start + span * (n + 1) / (len(findings) + 1) for n in range(len(findings))]
        planted = tuple(
            Planted(offset, finding, f"finding_{secrets.token_hex(6)}", created_at + offset)
            for offset, finding in zip(offsets, findings, strict=True)
        )
        return cls(
            f"scan_{secrets.token_hex(6)}",
            target,
            scan_type,
            created,
            created_at,
            duration,
            final,
            completeness,
            planted,
        )

    @property
    def pending(self) -> float:
        """Seconds spent pending."""
        return self.duration * PENDING_SHARE

    def state(self, now: float) -> ScanState:
        """The state at clock time `now`."""
        elapsed = min(now - self.created, self.duration)
        if self.stopped is not None:
            elapsed, status = min(elapsed, self.stopped), "cancelled"
        elif elapsed >= self.duration:
            status = self.final
        else:
            status = "pending" if elapsed < self.pending else "running"
        if status == "completed":
            return ScanState(status, elapsed, 100, len(PHASES))
        if elapsed < self.pending:
            return ScanState(status, elapsed, 0, None)
        reach = 100 if self.final == "completed" else self.completeness
        share = (elapsed - self.pending) / (self.duration - self.pending)
        progress = min(99, int(reach * share))
        return ScanState(status, elapsed, progress, min(len(PHASES) - 1, progress // 10))

    def cancel(self, now: float) -> None:
        """Stop the scan at clock time `now` (it then reads `cancelled`)."""
        self.stopped = now - self.created

    def found(self, now: float) -> list[Mapping[str, Any]]:
        """The findings detected by `now`, in detection order, with `detected_at`.

        Planted in detection order, so the detected ones are a prefix: found by bisection,
        which keeps a page of a 20,000-finding scan cheap.
        """
        return [planted.body for planted in self.findings[: self.detected(now)]]

    def detected(self, now: float) -> int:
        """How many findings are detected by `now` (they are a prefix of `findings`)."""
        elapsed = self.state(now).elapsed
        return bisect_right(self.findings, elapsed, key=lambda planted: planted.offset)

    def bodies(self, start: int, stop: int) -> list[Mapping[str, Any]]:
        """The wire JSON of findings `start` to `stop` (a page), without listing the rest."""
        return [planted.body for planted in self.findings[start:stop]]

    def summary(self, now: float) -> dict[str, Any]:
        """A list item (the fact sheet's `GET /scans` item fields)."""
        state = self.state(now)
        detected = self.findings[: self.detected(now)]
        counts = Counter(planted.finding.severity for planted in detected)
        ended = state.status not in ACTIVE
        return {
            "id": self.id,
            "target": self.target,
            "scan_type": self.scan_type,
            "status": state.status,
            "progress": state.progress,
            "phase": state.phase_name,
            "created_at": iso(self.created_at),
            "completed_at": iso(self.created_at + state.elapsed) if ended else None,
            "vulnerabilities_found": sum(counts.values()),
            **{f"{severity}_count": counts[severity] for severity in SEVERITIES[:4]},
        }

    def detail(self, now: float) -> dict[str, Any]:
        """The scan detail (`GET /scans/{id}`): the summary plus tool, start and phase lists."""
        state = self.state(now)
        done = PHASES[: state.phase] if state.phase is not None else ()
        return {
            **self.summary(now),
            "current_tool": state.current_tool,
            "started_at": iso(self.created_at + self.pending) if state.phase is not None else None,
            "phases_completed": list(done),
            "phases_remaining": list(PHASES[len(done) :]),
        }


def pages(total: int, per_page: int) -> int:
    """Number of pages for `total` items (0 when there are none)."""
    return math.ceil(total / per_page)
