"""NCP WSC jobs for the emulator: the state machine, search records and reports.

Facts from `providers/ncp-wsc.md` (cited as [FS]) "searchJobs", "Status strings", "getJobs",
"getReport" and "Emulator notes".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from scangate.sandbox.scenario import ScenarioFinding

KST = timezone(timedelta(hours=9))
"""INFERRED [FS]: dates carry no zone; the sandbox writes Korea time, as NCP's console shows."""

PHASES = ((12, 0.10), (13, 0.25), (14, 0.05), (2, 0.10), (3, 0.50))
"""(statusCode, share of the scenario's duration): crawl pending, crawling, crawled, diagnosis
pending, diagnosing; order INFERRED [FS] "Emulator notes"."""
TEXT = {
    12: "URL collection pending",
    13: "URL collection in progress",
    14: "URL collection completed",
    2: "Diagnostics pending",
    3: "Diagnostics in progress",
    4: "Diagnostics completed",
    5: "Diagnostics failed",
    15: "URL collection failed",
    91: "Diagnostics canceled",
    92: "Stopping",
    93: "Job stopped",
}
"""Display strings; only "Diagnostics completed" is verbatim, the rest INFERRED [FS]."""
BUTTONS = {4: "report", 91: "cancel", 93: "terminate", 5: "cause", 15: "cause"}
"""`result_button` per code; running jobs show none (INFERRED [FS] "getJobs")."""
CANCELLABLE = (12, 2)
STOPPABLE = (13, 3)
STOPPING = 1.0
"""Seconds a stopped job spends in 92 ("stopping") before 93 ("briefly" [FS])."""
RISK = {"critical": "High", "high": "High", "medium": "Medium", "low": "Low", "info": "Low"}
"""[FS] "Severity scale": High, Medium, Low only."""
USER_AGENTS = {
    "Android": "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/120.0 Mobile",
    "iPhone": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15",
    "PC Chrome": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0",
    "PC IE": "Mozilla/5.0 (Windows NT 10.0; Trident/7.0; rv:11.0) like Gecko",
}
"""[FS] "createJob" `UserAgent` choices, and what a report's `User_Agent` says for each."""
SPEEDS = ("1", "2", "3")


def kst(moment: float) -> str:
    """`YYYY-MM-DD hh:mm:ss` in Korea time."""
    return datetime.fromtimestamp(moment, KST).strftime("%Y-%m-%d %H:%M:%S")


def _span(start: float, end: float) -> str:
    """`YYYY/MM/DD hh:mm:ss~YYYY/MM/DD hh:mm:ss` ([FS] `Crawl_Time`, `Scan_Time`)."""
    shape = "%Y/%m/%d %H:%M:%S"
    first = datetime.fromtimestamp(start, KST).strftime(shape)
    return f"{first}~{datetime.fromtimestamp(end, KST).strftime(shape)}"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else url


@dataclass(frozen=True)
class JobState:
    """Where a job is at one moment."""

    code: int
    elapsed: float
    """Seconds since creation, frozen once the job ends."""
    progress: int | None
    """Diagnosis percent while diagnosing (and where a failed or stopped job stopped)."""
    ended: bool


@dataclass
class Job:
    """One WSC job; its state is computed from the emulator clock whenever it is asked for."""

    instance_no: str
    start_url: str
    memo: str
    request: Mapping[str, Any]
    """The createJob body as sent."""
    created: float
    """Clock `monotonic()` at creation."""
    created_at: float
    """Wall-clock Unix time at creation."""
    duration: float
    final: str
    """The scenario's final state: `completed`, `failed` or `cancelled`."""
    completeness: int
    findings: tuple[ScenarioFinding, ...]
    cancelled_at: float | None = None
    """Elapsed seconds when cancelJob was called."""
    stopped_at: float | None = None
    """Elapsed seconds when stopJob was called."""
    _phases: list[tuple[int, float, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        start = 0.0
        for code, share in PHASES:
            self._phases.append((code, start, start + share * self.duration))
            start += share * self.duration

    def state(self, now: float) -> JobState:
        """The state at clock time `now`."""
        elapsed = now - self.created
        if self.cancelled_at is not None:
            return JobState(91, self.cancelled_at, None, True)
        if self.stopped_at is not None:
            return self._stopping(self.stopped_at, elapsed)
        if elapsed >= self.duration:
            return self._final(elapsed)
        code, start, end = next(p for p in self._phases if elapsed < p[2])
        progress = self._progress(elapsed) if code == 3 else None
        return JobState(code, elapsed, progress, False)

    def _final(self, elapsed: float) -> JobState:
        if self.final == "completed":
            return JobState(4, self.duration, None, True)  # `progress` null when done [FS]
        if self.final == "failed":
            return JobState(5, self.duration, self.completeness, True)
        # A job cancelled in the console while diagnosing is stopped: 92, then 93.
        return self._stopping(self.duration, elapsed)

    def _stopping(self, at: float, elapsed: float) -> JobState:
        progress = self._progress(at) if self._code_at(at) == 3 else None
        if elapsed < at + STOPPING:
            return JobState(92, at, progress, False)
        return JobState(93, at, progress, True)

    def _code_at(self, elapsed: float) -> int:
        return next((p[0] for p in self._phases if elapsed < p[2]), 3)

    def _progress(self, elapsed: float) -> int:
        _, start, end = self._phases[-1]
        reach = 100 if self.final == "completed" else self.completeness
        share = min(1.0, max(0.0, (elapsed - start) / (end - start)))
        return min(99, int(reach * share))

    def reported(self) -> list[ScenarioFinding]:
        """What the report lists: WSC has no triage, so provider-side false positives are absent."""
        return [f for f in self.findings if f.status != "false_positive"]

    def record(self, now: float) -> dict[str, Any]:
        """The getJobs/searchJobs `record_data` item, with its odd typing ([FS] "getJobs")."""
        state = self.state(now)
        urls = 10 + len(self.findings)
        crawled = urls if state.code not in (12, 13) else int(urls * self._crawl_share(state))
        found = len(self.reported()) if state.code == 4 else 0
        return {
            "instanceNo": self.instance_no,
            "start_date": kst(self.created_at),
            "end_date": kst(self.created_at + self._end(state)) if state.ended else None,
            "status": TEXT[state.code],
            "progress": state.progress,
            "start_url": self.start_url,
            "crawl_cnt": str(crawled),
            "scan_cnt": str(found),
            "memo": self.memo,
            "result_button": BUTTONS.get(state.code, ""),
            "result_desc": "The target stopped answering during the diagnosis"
            if state.code == 5
            else "",
            "rescan_button": "possible" if state.code == 4 else "impossible",
            "slave_data": None,
        }

    def _crawl_share(self, state: JobState) -> float:
        code, start, end = self._phases[1]
        if state.code == 12:
            return 0.0
        return min(1.0, max(0.0, (state.elapsed - start) / (end - start)))

    def _end(self, state: JobState) -> float:
        return state.elapsed + (STOPPING if state.code == 93 else 0.0)

    def report(self, now: float, unlisted: int = 0) -> dict[str, Any]:
        """The getReport `resource` of a completed job ([FS] "getReport").

        `unlisted` findings (the last ones) are counted but left out of `Details`, as a broken
        report would.
        """
        crawl_end = self._phases[2][2]
        reported = self.reported()
        categories = _categories(reported)
        listed = _categories(reported[: max(0, len(reported) - unlisted)])
        domain = _origin(self.start_url)
        return {
            "report_date": kst(self.created_at + self.duration),
            "Target_Info": self.start_url,
            "Crawl_Time": _span(self.created_at, self.created_at + crawl_end),
            "Scan_Time": _span(
                self.created_at + self._phases[3][1], self.created_at + self.duration
            ),
            "Excluded_Url": list(self.request.get("ExcludeUrl") or []),
            "Login_Info": "",
            "Vulnerability_Category": ", ".join(self.request.get("VulnItems") or []),
            "User_Agent": USER_AGENTS[str(self.request.get("UserAgent"))],
            "Memo": self.memo,
            "Scanned_Domain_List": [domain],
            "Not_Scanned_Domain_List": ["http://www.w3.org"],
            **_counts(categories, domain),
            "Details": {name: group.details(domain) for name, group in listed.items()},
            "Recommendation": {name: group.advice for name, group in listed.items()},
        }


@dataclass
class _Category:
    """The findings of one `Details` category, which share one `RiskLevel`."""

    risk: str
    findings: list[ScenarioFinding] = field(default_factory=list)

    @property
    def advice(self) -> str:
        return next((f.remediation for f in self.findings if f.remediation), "")

    def details(self, domain: str) -> dict[str, Any]:
        first = self.findings[0]
        body: dict[str, Any] = {
            "RiskLevel": self.risk,
            "Vuln_Desc": first.description,
            "Vuln_Desc2": "",
        }
        name = first.rule or first.title
        for number, finding in enumerate(self.findings):
            body[str(number)] = _item(finding, name, number, domain)
            if finding.description == first.description:
                body[str(number)]["Description"] = ""  # already the category's `Vuln_Desc`
        return body


def _categories(findings: list[ScenarioFinding]) -> dict[str, _Category]:
    """Findings grouped by category (rule, else title); a category holds one risk level."""
    groups: dict[tuple[str, str], list[ScenarioFinding]] = defaultdict(list)
    for finding in findings:
        groups[(finding.rule or finding.title, RISK[finding.severity])].append(finding)
    names = [name for name, _ in groups]
    categories: dict[str, _Category] = {}
    for (name, risk), members in groups.items():
        # The same rule at two risk levels becomes two categories, told apart by the level.
        key = name if names.count(name) == 1 else f"{name} ({risk})"
        categories[key] = _Category(risk, members)
    return categories


def _item(finding: ScenarioFinding, category: str, number: int, domain: str) -> dict[str, Any]:
    reference = (
        f"https://cwe.mitre.org/data/definitions/{finding.cwe[0]}.html" if finding.cwe else ""
    )
    return {
        # Readable, numbered in its category, as the service's `"XSS #1"` ([FS] "getReport"); the
        # category key stays the scenario's rule id, which policies' ignores match on.
        "Title": f"{finding.title or category} #{number + 1}",
        "vuln_key": f"{domain}_{category}_{number}",
        # HTML text with entities, as in [FS] "getReport".
        "URL": f"[{finding.method}]&nbsp;&nbsp;{finding.url}",
        "Request_Header": finding.request,
        "Referer": "",
        "Request_Body": "",
        "newline": "true",  # a string boolean, as in the sample
        "VulnParam": finding.param,
        "VulnSTR": "",
        "Response_Data": finding.response.splitlines(),
        "Description": finding.description,
        "Reference": reference,
    }


def _counts(categories: dict[str, _Category], domain: str) -> dict[str, Any]:
    levels = {"Total": 0, "High": 0, "Medium": 0, "Low": 0}
    by_domain: dict[str, dict[str, int]] = {}
    by_vulnerability: dict[str, int] = {}
    for name, group in categories.items():
        levels["Total"] += len(group.findings)
        levels[group.risk] += len(group.findings)
        by_domain[name] = {group.risk: len(group.findings)}
        by_vulnerability[name] = len(group.findings)
    return {
        "Classify_byRisk_Level": levels,
        "Classify_byRisk_Domain": {domain: by_domain} if by_domain else {},
        "Classify_byRisk_Vulnerability": by_vulnerability,
    }


def create_problem(body: Mapping[str, Any]) -> str:
    """What is wrong with a createJob body ([FS] "createJob" required fields and enums), or ''."""
    url = body.get("StartUrl")
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        return "StartUrl: required, an http(s) URL"
    if not urlsplit(url).hostname:
        return "StartUrl: no host"
    items = body.get("VulnItems")
    if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
        return 'VulnItems: required, a list such as ["ALL"]'
    if body.get("UserAgent") not in USER_AGENTS:
        return f"UserAgent: one of {', '.join(USER_AGENTS)}"
    if body.get("Speed") not in SPEEDS:
        return 'Speed: "1", "2" or "3" (a string)'
    return _optional_problem(body)


def _optional_problem(body: Mapping[str, Any]) -> str:
    exclude = body.get("ExcludeUrl", [])
    if not isinstance(exclude, list) or not all(isinstance(u, str) for u in exclude):
        return "ExcludeUrl: a list of URLs"
    headers = body.get("Headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        return "Headers: an object of strings"
    if not isinstance(body.get("Memo", ""), str):
        return "Memo: a string"
    master = body.get("MasterInstanceNo")
    if master is not None and not (isinstance(master, str) and master.isdigit()):
        return "MasterInstanceNo: a job's instanceNo (a string)"
    return ""
