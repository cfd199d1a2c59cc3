"""CyStack sandbox data: seeded targets and profiles, the timed scan record, vulnerability JSON.

Facts from `providers/cystack.md` (cited as [FS]); INFERRED choices are marked as such there.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from scangate.sandbox.scenario import ScenarioFinding

SANDBOX_API_KEY = "cystack-sandbox-5e1f0a9c7b3d2e8f4a6c"
"""The sandbox account's API key (not a secret: it opens only the sandbox)."""
PREFIX = "/v1"
STATUSES = ("Stopped", "Running", "Stopping", "Queued")
"""The documented `status` filter values [FS] "GET /scans — list"."""
SEVERITIES = ("High", "Medium", "Low", "Information")
QUEUED_SHARE = 0.1
"""Share of a sandbox scan's duration spent `Queued` ("a few seconds" [FS] "Emulator notes")."""
STOPPING_SECONDS = 5.0
"""How long a scan stopped on CyStack's side shows `Stopping`: long enough for a client polling
every 2-5 s to see it, which is how it tells a stopped scan from a finished one."""
PROFILES = {
    1: "Full Audit",
    2: "Quick Scan",
    3: "High Risk Vulnerabilities",
    4: "Cross-site Scripting",
    5: "SQL Injection",
}
"""Profile id -> the name responses show; no endpoint lists profiles (INFERRED [FS])."""
NOTIFICATIONS = frozenset({29, 30})
"""Recipient ids that exist (29 is the doc's `/v1/notifications/29`)."""
AUTH_METHODS = ("form", "cookie", "basic")
_SCENARIO_SEVERITY = {
    "critical": "High",  # CyStack has no critical [FS] "Severity scale"
    "high": "High",
    "medium": "Medium",
    "low": "Low",
    "info": "Information",
}
LIST_TIME = "%H:%M:%S %d/%m/%Y"


@dataclass(frozen=True)
class Target:
    """One seeded target; targets cannot be created through the API [FS] "Basics"."""

    id: str
    address: str
    verification: int = 1
    ip: str = "203.0.113.10"
    os: str = "Unknown"

    def item(self) -> dict[str, Any]:
        """The `GET /targets` item [FS] "GET /targets"."""
        return {
            "verification": self.verification,
            "href": f"{PREFIX}/targets/{self.id}",
            "id": self.id,
            "address": self.address,
        }

    def brief(self) -> dict[str, Any]:
        """The `target` object inside a scan."""
        return {"ip": self.ip, "os": self.os, "id": self.id, "address": self.address}


def _seed_targets() -> tuple[Target, ...]:
    fixed = (
        Target("599fc347-3e46-4163-8a1d-444bd1928a85", "https://cystack.net", 0, "42.112.22.134"),
        Target("5b1e7c2a-8d4f-4e6a-9c3b-1f2e3d4c5b6a", "https://staging.example.com"),
        Target("6c2f8d3b-9e5a-4f7b-8d4c-2a3b4c5d6e7f", "http://staging.example.com"),
        Target("7d3a9e4c-0f6b-4a8c-9e5d-3b4c5d6e7f80", "https://staging.example.com/admin"),
        # The same address twice: a lookup by address is ambiguous, a UUID is not.
        Target("8e4b0f5d-1a7c-4b9d-8f6e-4c5d6e7f8091", "https://shop.example.com"),
        Target("9f5c1a6e-2b8d-4c0e-9a7f-5d6e7f8091a2", "https://shop.example.com", 0),
    )
    # Enough more that `GET /targets` takes two pages of 10.
    apps = tuple(
        Target(f"a0000000-0000-4000-8000-{n:012d}", f"https://app-{n:02d}.example.com")
        for n in range(1, 13)
    )
    return fixed + apps


TARGETS: tuple[Target, ...] = _seed_targets()


def list_time(epoch: float) -> str:
    """A list's `start_time`: `HH:MM:SS DD/MM/YYYY` [FS] "GET /scans — list" (UTC here)."""
    return datetime.fromtimestamp(epoch, UTC).strftime(LIST_TIME)


def vulnerability_json(
    finding: ScenarioFinding, scan_id: str, target: Target
) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    """A scenario finding as a `GET /vulnerabilities/{id}` body, and its traffic by id.

    CyStack has no method, CVSS, CWE or CVE fields; CWE and CVE become `references` entries, as
    the doc's own example lists RFC, MDN, OWASP and vulndb pages there.
    """
    vuln_id = str(uuid.uuid4())
    traffic: dict[str, dict[str, str]] = {}
    if finding.request or finding.response:
        traffic_id = secrets.token_hex(12)  # 24 hex: Mongo-style [FS] "Basics"
        traffic[traffic_id] = {
            "id": traffic_id,
            "request": finding.request,
            "response": finding.response,
        }
    body = {
        "traffic_hrefs": [f"{PREFIX}/vulnerabilities/{vuln_id}/traffics/{t}" for t in traffic],
        "description": finding.description,
        "scan": {"target": {"id": target.id, "address": target.address}, "id": scan_id},
        "severity": _SCENARIO_SEVERITY[finding.severity],
        "solution": finding.remediation,
        "plugin_name": finding.rule or _slug(finding.title),
        "false_positive": finding.status == "false_positive",
        "references": _references(finding),
        "urls": [finding.url] if finding.url else ["None"],  # the doc's literal `["None"]`
        "var": finding.param,
        "attributes": {},
        "id": vuln_id,
        "name": finding.title,
    }
    return body, traffic


def _references(finding: ScenarioFinding) -> list[dict[str, str]]:
    cwes = [
        {"url": f"https://cwe.mitre.org/data/definitions/{n}.html", "title": f"CWE-{n}"}
        for n in finding.cwe
    ]
    cves = [{"url": f"https://nvd.nist.gov/vuln/detail/{c}", "title": c} for c in finding.cve]
    return cwes + cves


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_") or "finding"


@dataclass
class Planted:
    """A vulnerability on one scan: seconds after creation it is found, and its JSON."""

    offset: float
    body: dict[str, Any]
    traffic: Mapping[str, Mapping[str, str]]


@dataclass
class ScanRecord:
    """One scan: `Queued`, `Running`, then `Stopped` (via `Stopping` unless it finished).

    Time is the emulator clock's `monotonic()`; the state is computed from the elapsed time
    whenever it is asked for [FS] "Emulator notes".
    """

    id: str
    target: Target
    profile: str
    description: str
    notification: tuple[int, ...]
    created: float
    """Clock `monotonic()` at creation."""
    created_at: float
    """Wall-clock Unix time at creation."""
    duration: float
    final: str
    """The scenario's end: `completed` finishes; `failed`/`cancelled` are stopped on CyStack's
    side (it has no failed status [FS] "Scan status model"), so they pass through `Stopping`."""
    stopping: float
    vulnerabilities: tuple[Planted, ...] = ()
    stopped_after: float | None = None
    """Elapsed seconds when `GET /scans/{id}/stop` stopped it."""

    def end(self) -> float:
        """Elapsed seconds at which the scan reads `Stopped`."""
        if self.stopped_after is not None:
            return self.stopped_after
        return self.duration + (0.0 if self.final == "completed" else self.stopping)

    def status(self, now: float) -> str:
        """The status at clock time `now`."""
        elapsed = now - self.created
        if elapsed >= self.end():
            return "Stopped"
        if elapsed < self.duration * QUEUED_SHARE:
            return "Queued"
        return "Running" if elapsed < self.duration else "Stopping"

    def stop(self, now: float) -> None:
        """`GET /scans/{id}/stop`: a `Queued` or `Running` scan stops at once."""
        if self.status(now) in ("Queued", "Running"):
            self.stopped_after = now - self.created

    def found(self, now: float) -> list[Planted]:
        """The vulnerabilities listed: none until `Stopped` [FS] "Emulator notes"."""
        if self.status(now) != "Stopped":
            return []
        reached = min(self.end(), self.duration)
        return [v for v in self.vulnerabilities if v.offset <= reached]

    def summary(self, now: float) -> dict[str, Any]:
        """A `GET /scans` item: no `id`, a string `start_time` [FS] "GET /scans — list"."""
        return {
            "status": self.status(now),
            "profile": self.profile,
            "vulnerabilities": len(self.found(now)),
            "start_time": list_time(self.created_at),
            "href": f"{PREFIX}/scans/{self.id}",
            "target": self.target.brief(),
        }

    def detail(self, now: float) -> dict[str, Any]:
        """`GET /scans/{id}`: epoch times, `vuln_href`, no `id` [FS] "GET /scans/{scan_id}"."""
        stopped = self.status(now) == "Stopped"
        return {
            "status": self.status(now),
            "profile": self.profile,
            "description": self.description or "None",  # the doc's literal "None"
            "noti_href": [f"{PREFIX}/notifications/{n}" for n in self.notification],
            "start_time": int(self.created_at),
            "stop_time": int(self.created_at + self.end()) if stopped else None,
            "vuln_href": [f"{PREFIX}/vulnerabilities/{v.body['id']}" for v in self.found(now)],
            "target": self.target.brief(),
        }


def plant(
    findings: tuple[ScenarioFinding, ...], scan_id: str, target: Target, duration: float
) -> tuple[Planted, ...]:
    """Spread `findings` evenly over the running time of a scan of `duration` seconds."""
    start, span = duration * QUEUED_SHARE, duration * (1 - QUEUED_SHARE)
    planted = []
    for n, finding in enumerate(findings):
        body, traffic = vulnerability_json(finding, scan_id, target)
        planted.append(Planted(start + span * (n + 1) / (len(findings) + 1), body, traffic))
    return tuple(planted)
