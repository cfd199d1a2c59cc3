"""CyberSec Pro scan records: the timed state machine and its wire JSON in both shapes.

Facts from `providers/cybersecpro.md` (cited as [FS]): "Create", "Detail", "Result" and
"Status values". [S0] is the published reference, [R] the implementation.
"""

from __future__ import annotations

import secrets
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from scangate.sandbox.scenario import ScenarioFinding

TOOLS = {
    "nuclei": "Nuclei",
    "nmap": "Nmap",
    "nikto": "Nikto",
    "sqlmap": "SQLMap",
    "zap": "OWASP ZAP",
    "subfinder": "Subfinder",
    "gobuster": "Gobuster",
    "wpscan": "WPScan",
}
"""Tool id to name. INFERRED catalogue: [S0] shows `nmap`, design §9 defaults to `nuclei`."""
TOOL_IDS = {name: str(uuid.uuid5(uuid.NAMESPACE_URL, f"cybersecpro:{name}")) for name in TOOLS}
ACTIVE = ("pending", "running")
PENDING_SHARE = 0.1
"""Documented shape: share of the duration a scan stays `created`/`pending` before running.
The implementation starts a scan at once [FS "Create"]."""
SEVERITIES = ("critical", "high", "medium", "low")
"""Severities the implementation counts; it has no `info` but adds `open_ports` [FS]."""


def iso_z(epoch: float) -> str:
    """`2026-01-15T14:30:00Z`, the published examples' form [S0]."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def naive(epoch: float) -> str:
    """`2026-01-15T14:30:00`: the implementation's timestamps carry no zone [FS "Detail"]."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def find_tool(name: str) -> str | None:
    """The tool id for a tool id, name or business name (case-insensitive) [FS "Create"]."""
    wanted = name.strip().lower()
    for tool, label in TOOLS.items():
        if wanted in (tool, label.lower(), TOOL_IDS[tool]):
            return tool
    return None


@dataclass(frozen=True)
class Planted:
    """A finding on one scan and the seconds after creation it is detected."""

    offset: float
    finding: ScenarioFinding


@dataclass
class ScanRecord:
    """One scan: pending (documented shape only), running, then its final state.

    Time is the emulator clock's `monotonic()`; the state is computed when asked for.
    """

    id: str
    target: str
    tool: str
    parameters: Mapping[str, Any]
    created: float
    """Clock `monotonic()` at creation."""
    created_at: float
    """Wall-clock Unix time at creation."""
    duration: float
    final: str
    completeness: int
    findings: tuple[Planted, ...]
    pending: float
    """Seconds spent pending before running."""
    owner: tuple[str, str]
    """(user id, organization id)."""
    stopped: float | None = None
    """Elapsed seconds when it was cancelled."""

    @classmethod
    def create(
        cls,
        *,
        documented: bool,
        target: str,
        tool: str,
        parameters: Mapping[str, Any],
        times: tuple[float, float],
        duration: float,
        final: tuple[str, int],
        findings: tuple[ScenarioFinding, ...],
        owner: tuple[str, str],
    ) -> ScanRecord:
        """A new scan; `times` is (monotonic, wall) now, `final` the end state and its percent.

        Ids are `scan_<8 hex>` in the published examples [S0] and UUIDs in the implementation.
        Findings are detected evenly over the running time.
        """
        pending = duration * PENDING_SHARE if documented else 0.0
        span = duration - pending
        planted = tuple(
            Planted(pending + span * (n + 1) / (len(findings) + 1), finding)
            for n, finding in enumerate(findings)
        )
        scan_id = f"scan_{secrets.token_hex(4)}" if documented else str(uuid.uuid4())
        return cls(
            scan_id,
            target,
            tool,
            parameters,
            times[0],
            times[1],
            duration,
            final[0],
            final[1],
            planted,
            pending,
            owner,
        )

    def state(self, now: float) -> tuple[str, float]:
        """(status, elapsed seconds, frozen once the scan ended) at clock time `now`."""
        elapsed = min(now - self.created, self.duration)
        if self.stopped is not None:
            return "cancelled", min(elapsed, self.stopped)
        if elapsed >= self.duration:
            return self.final, elapsed
        return ("pending" if elapsed < self.pending else "running"), elapsed

    def cancel(self, now: float) -> None:
        """Stop the scan at clock time `now`."""
        self.stopped = now - self.created

    def found(self, now: float) -> list[ScenarioFinding]:
        """The findings detected by `now`, in detection order."""
        _, elapsed = self.state(now)
        return [p.finding for p in self.findings if p.offset <= elapsed]

    def summary(self, now: float) -> dict[str, int]:
        """`findings_summary` [R]: counts without `info`, plus `open_ports`."""
        found = self.found(now)
        counts = Counter(f.severity for f in found)
        return {"total": len(found), **{s: counts[s] for s in SEVERITIES}, "open_ports": 0}

    def list_item(self, now: float) -> dict[str, Any]:
        """A list entry: the detail fields without the bulky ones, plus `tool_name` [R]."""
        status, elapsed = self.state(now)
        ended = status not in ACTIVE
        return {
            "id": self.id,
            "organization_id": self.owner[1],
            "user_id": self.owner[0],
            "tool_id": TOOL_IDS[self.tool],
            "tool_name": TOOLS[self.tool],
            "target": self.target,
            "parameters": dict(self.parameters),
            "status": status,
            "started_at": naive(self.created_at + self.pending) if status != "pending" else None,
            "completed_at": naive(self.created_at + elapsed) if ended else None,
            "created_at": naive(self.created_at),
            "duration": f"{int(elapsed) // 60}m {int(elapsed) % 60}s" if ended else None,
            "duration_seconds": round(elapsed, 1) if ended else None,
            "findings_summary": self.summary(now),
        }

    def detail(self, now: float) -> dict[str, Any]:
        """`GET /scans/{id}`'s `scan` object [FS "Detail"] (same in both shapes)."""
        item = self.list_item(now)
        del item["tool_name"]
        return {
            **item,
            "findings": self.tool_findings(now),
            "output": self.output(now),
            "error_log": self.error_log(now),
        }

    def tool_findings(self, now: float) -> dict[str, Any]:
        """The implementation's tool-parser object: `summary` and `vulnerabilities[]` [R]."""
        vulnerabilities = [
            {"severity": f.severity, "title": f.title, "description": f.description}
            for f in self.found(now)
        ]
        summary = {k: v for k, v in self.summary(now).items() if k != "open_ports"}
        return {"summary": summary, "vulnerabilities": vulnerabilities}

    def output(self, now: float) -> str:
        """Raw tool output, one line per finding."""
        lines = [f"[{self.tool}] scanning {self.target}"]
        lines += [f"[{f.severity}] {f.title}" for f in self.found(now)]
        return "\n".join(lines)

    def error_log(self, now: float) -> str | None:
        """The tool's error for a failed scan, else None [FS "Status values"]."""
        status, _ = self.state(now)
        if status != "failed":
            return None
        return f"{self.tool} exited with status 1 after {self.completeness}% of the scan"

    def created_documented(self) -> dict[str, Any]:
        """The published create answer [S0]."""
        return {
            "id": self.id,
            "status": "created",
            "target": self.target,
            "tool": self.tool,
            "created_at": iso_z(self.created_at),
        }

    def created_implementation(self) -> dict[str, Any]:
        """The implementation's create answer: already running [FS "Create"]."""
        return {
            "success": True,
            "message": "Scan started",
            "scan_id": self.id,
            "command": f"{self.tool} {self.target}",
            "status": "running",
            "execution_mode": "local",
            "engine": "rust-axum",
            "scan": {"id": self.id, "tool": self.tool, "target": self.target, "status": "running"},
        }

    def result_documented(self, now: float) -> dict[str, Any]:
        """`GET /scan/{id}/result` as published [S0]: counts equal the vulnerability list."""
        status, elapsed = self.state(now)
        found = self.found(now)
        counts = Counter(f.severity for f in found)
        return {
            "scan_id": self.id,
            "status": status,
            "duration_ms": round(elapsed * 1000),
            "findings": {"total": len(found), **{s: counts[s] for s in (*SEVERITIES, "info")}},
            "vulnerabilities": [_vulnerability(n, f) for n, f in enumerate(found, start=1)],
        }

    def result_implementation(self, now: float) -> dict[str, Any]:
        """`GET /scan/{id}/result` as implemented [R `stub_handlers.rs`]."""
        status, _ = self.state(now)
        output = self.output(now)
        scan = {
            "id": self.id,
            "status": status,
            "output": output,
            "target": self.target,
            "tool_name": TOOLS[self.tool],
            "command": f"{self.tool} {self.target}",
            "error_log": self.error_log(now),
        }
        execution = {"status": status, "output": output, "findings": self.tool_findings(now)}
        return {"scan": scan, "execution_result": execution}


def _vulnerability(number: int, finding: ScenarioFinding) -> dict[str, Any]:
    """One documented `vulnerabilities[]` item; the scenario's URL has no field there [S0]."""
    evidence = "\n\n".join(part for part in (finding.request, finding.response) if part)
    return {
        "id": f"vuln_{number:03}",
        "title": finding.title,
        "cve": finding.cve[0] if finding.cve else None,
        "cvss": finding.cvss,
        "severity": finding.severity,
        "evidence": evidence or finding.description,
        "remediation": finding.remediation,
    }
