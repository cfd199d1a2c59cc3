"""VAddy sandbox projects, crawls and scans: the timed state machine and its wire JSON."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from scangate.sandbox.scenario import HOSTILE_TEXT, Scenario

CHECK_NAMES = {
    "SQLI": "SQL Injection",
    "BLIND_SQLI": "Blind SQL Injection",
    "XSS": "XSS",
    "XSS_STORE": "Stored XSS",
    "RFI": "Remote File Inclusion",
    "COMMAND_INJECTION": "Command Injection",
    "PATH_TRAV": "Directory Traversal",
    "HEADER_INJECTION": "HTTP Header Injection",
    "XXE": "XXE",
    "DESERIALIZATION": "Insecure Deserialization",
    "SSRF": "SSRF",
    "PRIVATE_FILE": "Private File Exposure",
    "CSRF": "CSRF",
    "MAIL_HEADER": "Mail Header Injection",
    "CLICK_JACKING": "Clickjacking",
    "BUFFER_OVERFLOW": "Buffer Overflow",
    "SESSION_FIXATION": "Session Fixation",
    "ACCESS_CTL": "Access Control",
    "EVAL": "Code Injection (eval)",
}
"""`scan_type` code -> the check name in `scan_list`. The codes are documented; the names are
INFERRED except `XSS` and `SQL Injection`, the fact sheet's example ("Severity / findings")."""
_CODES = tuple(CHECK_NAMES)
_STARTER = ("SQLI", "XSS", "XSS_STORE")
_PROFESSIONAL = (*_STARTER, "RFI", "COMMAND_INJECTION", "PATH_TRAV")
PLANS = {
    "starter": _STARTER,
    "professional": _PROFESSIONAL,
    "enterprise": _CODES[: _CODES.index("PRIVATE_FILE") + 1],
    "advanced": _CODES,
}
"""The scan types each plan may run (fact sheet "POST /v2/scan — start": Starter `SQLI, XSS,
XSS_STORE`; Professional adds `RFI, COMMAND_INJECTION, PATH_TRAV`; Enterprise "adds up to
`PRIVATE_FILE`", read as every code listed before it; Advanced allows all)."""
REQUESTS_PER_CHECK = 11
"""`scan_count` per check run: the fact sheet's example has 22 requests for 2 checks."""
CONSOLE = "https://console.vaddy.net/scan_status"
"""Where `scan_result_url` points (fact sheet "scan/result" example)."""


def vaddy_time(epoch: float) -> str:
    """UTC ISO-8601 with `+0000`, as every VAddy time (fact sheet "scan/result")."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


@dataclass(frozen=True)
class Crawl:
    """One recorded crawl of a project (fact sheet "GET /v2/crawl")."""

    id: int
    label: str | None
    """None for an unlabelled crawl (the documented example has one)."""
    start: float
    """Wall-clock Unix time the recording started."""
    end: float

    def item(self) -> dict[str, Any]:
        """The crawl search item."""
        return {
            "id": self.id,
            "label": self.label,
            "start": vaddy_time(self.start),
            "end": vaddy_time(self.end),
        }


@dataclass
class Project:
    """A VAddy project: its string `project_id`, its console number and its crawls."""

    project_id: str
    number: int
    crawls: list[Crawl] = field(default_factory=list)

    def latest_crawl(self) -> Crawl | None:
        """The newest crawl (highest id), which a start without `crawl_id` uses."""
        return max(self.crawls, key=lambda crawl: crawl.id, default=None)

    def crawl(self, crawl_id: int) -> Crawl | None:
        """The crawl with `crawl_id`, if the project has it."""
        return next((crawl for crawl in self.crawls if crawl.id == crawl_id), None)


def default_projects(now: float, history: int = 0) -> dict[str, Project]:
    """The sandbox's projects: one with four crawls, one with none (for `no crawling data.`).

    `history` more crawls of the first, newer than those four, are labelled `release candidate
    <n>`; with them comes the oldest crawl of all, id 1, labelled `release`.
    """
    day = 86400.0
    crawls = [
        Crawl(27, None, now - 4 * day, now - 4 * day + 300),
        Crawl(28, "all-data", now - 3 * day, now - 3 * day + 1800),
        Crawl(29, "login flow", now - 2 * day, now - 2 * day + 600),
        Crawl(30, "user edit scenario label", now - day, now - day + 900),
    ]
    if history:
        crawls.insert(0, Crawl(1, "release", now - 30 * day, now - 30 * day + 600))
        crawls += [
            Crawl(30 + n, f"release candidate {n}", now - 3600 + n, now - 3000 + n)
            for n in range(1, history + 1)
        ]
    return {
        "vaddy-project-1": Project("vaddy-project-1", 1, crawls),
        "vaddy-project-nocrawl": Project("vaddy-project-nocrawl", 2),
    }


@dataclass
class VAddyScan:
    """One scan: `scanning` for `duration` seconds, then `finish` or `canceled`.

    Time is the emulator clock's `monotonic()`; the state is computed when asked for.
    """

    id: str
    project: Project
    crawl: Crawl
    checks: tuple[str, ...]
    """The `scan_type` codes run."""
    created: float
    created_at: float
    duration: float
    final: str
    """The scenario's final state: `completed` reads `finish`, the others `canceled`."""
    completeness: int
    alerts: int
    hostile: bool = False
    stopped: float | None = None
    """Elapsed seconds when `action=cancel` stopped it."""

    @classmethod
    def create(
        cls,
        project: Project,
        crawl: Crawl,
        checks: tuple[str, ...],
        scenario: Scenario,
        *,
        created: float,
        created_at: float,
    ) -> VAddyScan:
        """A scan playing `scenario`; its alerts are the findings not marked false positives.

        VAddy has no false-positive concept: only what it still counts is an alert.
        """
        alerts = sum(f.status != "false_positive" for f in scenario.findings)
        return cls(
            id=f"{project.number}-{uuid.uuid4()}",
            project=project,
            crawl=crawl,
            checks=checks,
            created=created,
            created_at=created_at,
            duration=scenario.duration,
            final=scenario.final,
            completeness=scenario.completeness,
            alerts=alerts,
            hostile=scenario.hostile,
        )

    def elapsed(self, now: float) -> float:
        """Seconds run by `now`, frozen once the scan ends."""
        elapsed = min(now - self.created, self.duration)
        return elapsed if self.stopped is None else min(elapsed, self.stopped)

    def status(self, now: float) -> str:
        """`scanning`, `finish` or `canceled` (one "l", fact sheet "scan/result")."""
        if self.stopped is not None:
            return "canceled"
        if now - self.created < self.duration:
            return "scanning"
        return "finish" if self.final == "completed" else "canceled"

    def cancel(self, now: float) -> None:
        """Stop the scan at clock time `now`."""
        self.stopped = now - self.created

    @property
    def console_url(self) -> str:
        """`scan_result_url`; a hostile scenario smuggles hostile text into it."""
        url = f"{CONSOLE}/{self.project.number}/{self.id}"
        return f"{url}?note={HOSTILE_TEXT}" if self.hostile else url

    def _scan_count(self) -> int:
        return REQUESTS_PER_CHECK * len(self.checks) * self.completeness // 100

    def result(self, now: float) -> dict[str, Any]:
        """The `GET /scan/result` body: only the status until the scan finishes."""
        status = self.status(now)
        if status != "finish":
            return {"status": status}
        names = [CHECK_NAMES[code] for code in self.checks]
        return {
            "status": "finish",
            "project_id": self.project.project_id,
            "scan_id": self.id,
            "scan_count": self._scan_count(),
            "alert_count": self.alerts,
            "timezone": "UTC",
            "start_time": vaddy_time(self.created_at),
            "end_time": vaddy_time(self.created_at + self.elapsed(now)),
            "scan_result_url": self.console_url,
            "complete": self.completeness,
            "crawl_id": self.crawl.id,
            "crawl_label": self._crawl_label(),
            "scan_list": [*names, HOSTILE_TEXT] if self.hostile else names,
        }

    def _crawl_label(self) -> str | None:
        if self.hostile:
            return (self.crawl.label or "") + HOSTILE_TEXT
        return self.crawl.label

    def list_item(self, now: float) -> dict[str, Any]:
        """An item of `GET /scan/results/list` (finished scans only; a `Cancel` has no counts)."""
        done = self.status(now) == "finish"
        return {
            "scan_id": self.id,
            "status": "Complete" if done else "Cancel",
            "scan_count": self._scan_count() if done else None,
            "alert_count": self.alerts if done else None,
            "complete": self.completeness if done else None,
            "crawl_id": self.crawl.id,
            "crawl_label": self._crawl_label(),
            "time_zone": "UTC",
            "start_time": vaddy_time(self.created_at),
            "end_time": vaddy_time(self.created_at + self.elapsed(now)),
            "scan_result_url": self.console_url,
        }
