"""VAddy Web API v2: runcheck before start, one scan per project, results as counts only.

Facts come from `providers/vaddy.md` (the "fact sheet"); section names are cited in comments.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests

from scangate.errors import (
    AmbiguousStartError,
    ExitStatus,
    ProviderBusyError,
    ProviderError,
    UnexpectedResponseError,
)
from scangate.http import Connection, json_body
from scangate.model import CountSummary, Finding, ScanId, ScanResult, ScanStatus
from scangate.model.scans import ScanProgress, ScanRef
from scangate.model.settings import ProviderSettings
from scangate.providers import _wire as wire
from scangate.providers.interface import (
    Capabilities,
    CredentialSpec,
    Provider,
    ScanHistory,
    StartAttempt,
    duration_between,
)
from scangate.providers.paging import PageGuard, shortfall
from scangate.text import one_line

logger = logging.getLogger(__name__)

USER = "VADDY_USER"
AUTH_KEY = "VADDY_AUTH_KEY"
API_KEY_HEADER = "X-API-KEY"
"""The key travels only in this header, never in a URL or a form (design §9 "Credentials")."""

SCAN_TYPES = (
    *("SQLI", "BLIND_SQLI", "XSS", "XSS_STORE", "RFI", "COMMAND_INJECTION", "PATH_TRAV"),
    *("HEADER_INJECTION", "XXE", "DESERIALIZATION", "SSRF", "PRIVATE_FILE", "CSRF"),
    *("MAIL_HEADER", "CLICK_JACKING", "BUFFER_OVERFLOW", "SESSION_FIXATION", "ACCESS_CTL", "EVAL"),
)
"""The documented `scan_type` codes (fact sheet "POST /v2/scan — start")."""
PLAN_SCAN_TYPES = (
    "Starter: SQLI, XSS, XSS_STORE; Professional adds RFI, COMMAND_INJECTION, PATH_TRAV; "
    "Enterprise adds up to PRIVATE_FILE; Advanced allows all"
)
RULE_ID = "vaddy-alert"
"""The rule of every count-only finding (design §9 "Count-only providers (VAddy)")."""
MAX_ALERT_FINDINGS = 10_000
"""Most findings made from one `alert_count` (memory, against an absurd count); the count is
always reported in full, and a count above this makes the result incomplete."""
CRAWL_PAGE = 30
"""Crawl search answers at most 30 items a page (fact sheet "GET /v2/crawl")."""
RUNCHECK = "runcheck"
"""`ScanRef.extra` key of a handle on "the scan runcheck reports", which has no id."""

# VAddy documents the causes of its 400s but not their texts; these match the texts quoted in
# the fact sheet ("Emulator notes", go-vaddy README) and plausible variants of them.
_BUSY = re.compile(r"previous scan|not finished|already running|is running", re.IGNORECASE)
_ALREADY_ENDED = re.compile(r"already (been )?finished|already (been )?cancel", re.IGNORECASE)
_NO_CRAWL = re.compile(r"no crawl|crawling data|crawl data", re.IGNORECASE)
_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+-]{0,30}(?:/[A-Za-z0-9_+-]{1,30}){0,2}")
"""The shape of an IANA time zone name (`UTC`, `Asia/Tokyo`, `America/Argentina/Salta`)."""
_STATUSES = {
    "scanning": ScanStatus.RUNNING,
    "finish": ScanStatus.COMPLETED,
    "canceled": ScanStatus.CANCELLED,
    "cancelled": ScanStatus.CANCELLED,
}
"""Documented: `scanning`, `finish`, `canceled` (one "l"); `cancelled` is a lenient spelling."""


class VAddyBusyError(ProviderBusyError):
    """VAddy refused to start because the project already has a scan running (exit 4).

    A busy target is an incomplete scan, not a provider failure (design §9 "Faults"). VAddy
    runs one scan per project (fact sheet "Basics", Concurrency): under `if_running: wait`
    the runner queues the start until the project is free, as it does for a plan's limits.
    """

    exit_status = ExitStatus.SCAN_INCOMPLETE


class VAddyProvider(Provider, registered="vaddy"):
    """The VAddy adapter (`POST /scan`, `GET /scan/result`, `GET /scan/runcheck`, `GET /crawl`)."""

    DEFAULT_BASE_URL: ClassVar[str] = "https://api.vaddy.net/v2"
    api_version: ClassVar[str] = "v2"
    credentials: ClassVar[tuple[CredentialSpec, ...]] = (
        CredentialSpec.pair(
            USER, AUTH_KEY, "VAddy login ID and WebAPI auth key (console, WebAPI page)"
        ),
    )
    options_schema: ClassVar[Mapping[str, Any]] = Provider.schema_of(
        {
            "crawl_id": {
                "type": "integer",
                "minimum": 1,
                "description": "the crawl to scan with (Proxy Crawling page); default: the latest",
            },
            "crawl_label": {
                "type": "string",
                "minLength": 1,
                "description": "scan with the newest recorded crawl carrying this label",
            },
            "project_number": {
                "type": "integer",
                "minimum": 1,
                "description": "the project's number in the console URL (not project_id); "
                "lets scangate time its polls by the project's past scans",
            },
            "scan_type": {
                "type": "array",
                "items": {"enum": list(SCAN_TYPES), "title": "VAddy scan type"},
                "minItems": 1,
                "uniqueItems": True,
                "description": "checks to run; default: every check of the plan",
            },
        },
        # One way to pick the crawl: an id and a label could disagree.
        not_together=("crawl_id", "crawl_label"),
    )

    capabilities: ClassVar[Capabilities] = Capabilities(
        progress=False,
        eta=False,
        cancel=True,
        runcheck=True,
        attach=False,
        per_finding_detail=False,
        rate_limit_headers=False,
    )
    secret_headers: ClassVar[tuple[str, ...]] = (API_KEY_HEADER,)

    def __init__(
        self, *, settings: ProviderSettings, env: Mapping[str, str], connection: Connection
    ) -> None:
        """Create a new `VAddyProvider`; see `Provider.__init__`.

        Every call carries `user` (a form field or query parameter) and the auth key in the
        `X-API-KEY` header, which VAddy accepts since 2022-03-22 (fact sheet "Basics").
        """
        super().__init__(settings=settings, env=env, connection=connection)
        self._user = env.get(USER, "").strip()
        self._key = env.get(AUTH_KEY, "").strip()
        self.redact.add(self._key)
        crawl_id = self.options.get("crawl_id")
        self._crawl_id = str(crawl_id) if crawl_id is not None else ""
        self._finished: dict[str, Mapping[str, Any]] = {}
        """Finished scans' result bodies by scan id: the last poll already holds the counts."""

    def credential_hint(self) -> str:
        """See `Provider.credential_hint`."""
        return f"{USER} + {AUTH_KEY} (login ID and the key of the WebAPI page)"

    def authorize(self, method: str, url: str) -> Mapping[str, str]:
        """See `Provider.authorize`: the auth key, in its header only."""
        return {API_KEY_HEADER: self._key}

    @staticmethod
    def error_detail(response: requests.Response, body: Any) -> str:
        """VAddy's error text: `{"error_message": ...}`; a 401 has no body (fact sheet)."""
        message = wire.text(body.get("error_message")) if isinstance(body, Mapping) else ""
        return message or wire.body_start(response)

    # Requests (fact sheet "Basics": POST form-encoded, GET with a query string).

    def _get(self, path: str, params: Mapping[str, str]) -> Mapping[str, Any]:
        """GET `path` with `user` + `params`; a 400's `error_message` becomes a diagnosis."""
        query = {"user": self._user, **params}
        body = self.http.json("GET", path, params=query, accept_status=(400,))
        return self._object(body, f"GET /{path}", params)

    def _post(self, form: Mapping[str, str], *, creates: bool = False) -> Mapping[str, Any]:
        """POST the `/scan` form with `user`; a lost or unreadable start answer is ambiguous."""
        response = self.http.request(
            "POST",
            "scan",
            data={"user": self._user, **form},
            creates=creates,
            idempotent=not creates,
            accept_status=(400,),
        )
        body = json_body(response)
        if response.status_code == 400:
            message = self.error_detail(response, body) or "(no error_message)"
            raise self._refusal(message, form)
        if creates and not isinstance(body, Mapping):
            raise AmbiguousStartError("VAddy's start answer was not a JSON object")
        return self._object(body, "POST /scan", form)

    def _object(self, body: Any, where: str, sent: Mapping[str, str]) -> Mapping[str, Any]:
        if not isinstance(body, Mapping):
            raise UnexpectedResponseError(f"VAddy {where}: the answer is not a JSON object")
        if body.get("error_message") is not None:
            raise self._refusal(wire.text(body.get("error_message"), "(empty error_message)"), sent)
        return body

    def _refusal(self, message: str, sent: Mapping[str, str]) -> ProviderError:
        """Turn a 400 `error_message` into a diagnosis (fact sheet, each endpoint's 400 list)."""
        said = one_line(self.redact(message), 200)
        project = sent.get("project_id", "")
        if _BUSY.search(said):
            return VAddyBusyError(
                f"VAddy refused to start: a scan is already running on project {project} ({said})",
                hint="VAddy runs one scan per project; set scan.if_running: wait, or cancel "
                "the running scan in the VAddy console",
                queue=f"project {project} to be free",
                usage="a scan is running on it",
                per_target=True,
                start_refused=True,
            )
        if re.search(r"crawl", said, re.IGNORECASE):
            return self._crawl_refusal(said, project)
        if re.search(r"scan.?type", said, re.IGNORECASE):
            return ProviderError(
                f"VAddy refused scan_type {sent.get('scan_type', '')} ({said})",
                hint=f"check provider.options.scan_type against the plan ({PLAN_SCAN_TYPES})",
            )
        if re.search(r"scan.?id", said, re.IGNORECASE):
            return ProviderError(f"VAddy does not know scan {sent.get('scan_id', '')} ({said})")
        if re.search(r"project|fqdn", said, re.IGNORECASE):
            return ProviderError(
                f"VAddy does not know project {project} ({said})",
                hint="scan.target must be the VAddy project ID shown on the Server page "
                "(e.g. 6eb1f9fcbdb6a5a), and the key must belong to a user of that project",
            )
        return ProviderError(f"VAddy refused the request: {said}")

    def _crawl_refusal(self, said: str, project: str) -> ProviderError:
        if _NO_CRAWL.search(said):
            return ProviderError(
                f"VAddy project {project} has no crawl data to scan with ({said})",
                hint="record a crawl for the project in the VAddy console (Proxy Crawling)",
            )
        return ProviderError(
            f"VAddy does not know crawl {self._crawl_id or '(latest)'} of project {project} "
            f"({said})",
            hint="check provider.options.crawl_id or crawl_label on the Proxy Crawling page",
        )

    # Before starting (fact sheet "GET /v2/crawl", "GET /v2/scan/runcheck").

    def preflight(self, target: str) -> None:
        """Resolve `crawl_label` to a crawl id through the crawl search."""
        label = self.options.get("crawl_label")
        if isinstance(label, str) and label:
            self._crawl_id = self._crawl_by_label(target, label)

    def _crawl_by_label(self, project: str, label: str) -> str:
        """The id of the newest crawl labelled exactly `label`, else of the newest partial match.

        The search matches labels partially and sorts newest first; go-vaddy takes the first
        item (fact sheet "Official client behaviour: go-vaddy", "Crawl handling").
        """
        first: Mapping[str, Any] | None = None
        guard = PageGuard(self.display_name, "crawl search", CRAWL_PAGE)
        page = 0
        while True:
            page += 1
            params = {"project_id": project, "search_label": label, "page": str(page)}
            body = self._get("crawl", {**params, "sort": "desc"})
            items = [i for i in wire.objects(body.get("items")) if wire.text(i.get("id"))]
            total = wire.integer(body.get("total"))
            guard.page(tuple(wire.text(i.get("id")) for i in items), total=total)
            first = first or (items[0] if items else None)
            exact = next((i for i in items if wire.text(i.get("label")) == label), None)
            if exact is not None:
                return wire.text(exact.get("id"))
            # The end: a short page, or the announced `total` read (fact sheet "GET /v2/crawl").
            if len(items) < CRAWL_PAGE or (total is not None and page * CRAWL_PAGE >= total):
                break
        if first is None:
            raise ProviderError(
                f"VAddy project {project} has no recorded crawl labelled {label!r}",
                hint="check provider.options.crawl_label on the Proxy Crawling page",
            )
        shown = one_line(wire.text(first.get("label")), 80)
        logger.warning(
            "VAddy: no crawl labelled exactly %r; using the newest match %r", label, shown
        )
        return wire.text(first.get("id"))

    def find_running(self, target: str) -> ScanRef | None:
        """See `Provider.find_running`: runcheck says whether the project is busy.

        VAddy gives no id for the running scan, so the handle polls runcheck until it is free.
        """
        running = self._runcheck(target)
        if running <= 0:
            return None
        return ScanRef(
            scan_id=ScanId(f"(unnamed: VAddy runcheck reports running_process {running})"),
            target=target,
            extra={RUNCHECK: str(running)},
        )

    def _runcheck(self, project: str) -> int:
        body = self._get("scan/runcheck", {"project_id": project})
        running = wire.integer(body.get("running_process"))
        if running is None:
            raise UnexpectedResponseError("VAddy runcheck answer has no running_process number")
        return running

    # One scan (fact sheet "POST /v2/scan — start", "GET /v2/scan/result").

    def start(self, attempt: StartAttempt) -> ScanRef:
        """See `Provider.start`: `action=start`, sent once (`creates`)."""
        form = {"action": "start", "project_id": attempt.target}
        if self._crawl_id:
            form["crawl_id"] = self._crawl_id
        if self.options.get("scan_type"):
            form["scan_type"] = ",".join(str(code) for code in self.options["scan_type"])
        body = self._post(form, creates=True)
        scan_id = wire.text(body.get("scan_id"))
        if not scan_id:
            # go-vaddy: "StartScan Error: No Scan ID found." A scan may exist all the same.
            raise AmbiguousStartError("VAddy accepted the start but named no scan_id")
        return ScanRef(
            scan_id=ScanId(scan_id),
            target=attempt.target,
            created_at=datetime.now(UTC),
        )

    def find_started(self, attempt: StartAttempt) -> ScanRef | None:
        """See `Provider.find_started`: a free project proves no scan was started.

        A busy project means the lost start probably worked, but VAddy's API cannot name the
        scan (runcheck gives only a count), so nothing else is started and the run fails.
        """
        if self._runcheck(attempt.target) <= 0:
            return None
        raise ProviderError(
            f"VAddy: the start answer was lost and a scan is now running on project "
            f"{attempt.target}, but VAddy's API cannot say which one",
            hint="see the project's scans in the VAddy console; cancel it there or let it "
            "finish, then run scangate again",
        )

    def poll(self, scan: ScanRef) -> ScanProgress:
        """See `Provider.poll`: `scan/result` (or runcheck, for another's unnamed scan)."""
        if RUNCHECK in scan.extra:
            return self._poll_runcheck(scan)
        body = self._get("scan/result", {"scan_id": scan.scan_id})
        raw = wire.text(body.get("status")).lower()
        if not raw:
            raise UnexpectedResponseError(f"VAddy scan {scan.scan_id}: the answer has no status")
        status = _STATUSES.get(raw)
        if status is None:
            # go-vaddy keeps polling on any other word; `scan.timeout` bounds the wait.
            logger.warning("VAddy scan status %r unknown; still waiting", one_line(raw, 40))
            return ScanProgress(status=ScanStatus.RUNNING, raw_status=raw)
        if status is ScanStatus.COMPLETED:
            self._finished[scan.scan_id] = body
            return ScanProgress(status=status, raw_status=raw, completeness=_complete(body)[0])
        if status is ScanStatus.CANCELLED:
            # `canceled` covers a cancel and an abnormal end alike (fact sheet "scan/result").
            why = "VAddy reports the scan canceled (cancelled, or ended abnormally)"
            return ScanProgress(status=status, raw_status=raw, completeness=0, message=why)
        return ScanProgress(status=status, raw_status=raw)

    def _poll_runcheck(self, scan: ScanRef) -> ScanProgress:
        running = self._runcheck(scan.target)
        raw = f"running_process {running}"
        if running > 0:
            return ScanProgress(status=ScanStatus.RUNNING, raw_status=raw)
        return ScanProgress(status=ScanStatus.COMPLETED, raw_status=raw, message="project free")

    def expected_duration(self, target: str) -> ScanHistory | None:
        """See `Provider.expected_duration`: the project's last 20 finished scans.

        `scan/results/list` takes the console's numeric `project_number`, not the `project_id`
        that is `scan.target` (fact sheet "Other v2 endpoints"); without the option there is
        no history. `Cancel` items are left out: a cancelled scan says nothing of how long a
        whole one takes.
        """
        number = self.options.get("project_number")
        if not isinstance(number, int) or isinstance(number, bool):
            return None
        body = self._get("scan/results/list", {"project_number": str(number)})
        durations = []
        for item in wire.objects(body.get("items")):
            if wire.text(item.get("status")).lower() != "complete":
                continue
            zone = _zone(item.get("time_zone"))
            seconds = duration_between(
                _time(item.get("start_time"), zone), _time(item.get("end_time"), zone)
            )
            if seconds is not None:
                durations.append(seconds)
        return ScanHistory(tuple(durations), source=f"VAddy project number {number}")

    # Results: counts only (fact sheet "Severity / findings", design §9 "Count-only providers").

    def fetch(self, scan: ScanRef, progress: ScanProgress) -> ScanResult:
        """See `Provider.fetch`: `alert_count` findings of `unrated_severity`, at the console."""
        if progress.status is not ScanStatus.COMPLETED:
            # No result to read: VAddy names no console page for the scan either.
            return self.result(scan, progress, started_at=scan.created_at, console_url="")
        body = self._finished.pop(scan.scan_id, None)
        if body is None:
            body = self._get("scan/result", {"scan_id": scan.scan_id})
            if wire.text(body.get("status")).lower() != "finish":
                raise UnexpectedResponseError(f"VAddy scan {scan.scan_id} has no finished result")
        return self._finished_result(scan, body)

    def _finished_result(self, scan: ScanRef, body: Mapping[str, Any]) -> ScanResult:
        alerts = wire.integer(body.get("alert_count"))
        if alerts is None or alerts < 0:
            # Without the count there is nothing to gate on: fail, never pass silently.
            raise UnexpectedResponseError(f"VAddy scan {scan.scan_id}: no usable alert_count")
        complete, message = _complete(body)
        console = _console_url(body.get("scan_result_url"))
        summary = CountSummary(
            alert_count=alerts,
            scan_count=max(0, wire.integer(body.get("scan_count")) or 0),
            checks=tuple(wire.text(c) for c in wire.items(body.get("scan_list")) if wire.text(c)),
            console_url=console,
        )
        zone = _zone(body.get("timezone"))
        findings = self._alerts(scan.target, summary)
        short = shortfall(self.display_name, [("alerts", alerts, len(findings))])
        ended = ScanProgress(
            status=ScanStatus.COMPLETED, raw_status="finish", completeness=complete, message=message
        )
        return self.result(
            scan,
            ended,
            findings=findings,
            started_at=_time(body.get("start_time"), zone) or scan.created_at,
            finished_at=_time(body.get("end_time"), zone),
            details=self._details(body, complete),
            shortfall=f"{short} (scangate makes at most {MAX_ALERT_FINDINGS})" if short else "",
            count_summary=summary,
            console_url=console,
        )

    def _alerts(self, project: str, summary: CountSummary) -> tuple[Finding, ...]:
        """One finding per alert; fingerprints `vaddy:<project_id>:<n>` compare counts.

        Their identity holds nothing of one scan: the title numbers the alert, the location is
        the project (no URL: the console link, which names the scan, is `console_url`).
        """
        made = min(summary.alert_count, MAX_ALERT_FINDINGS)
        if made < summary.alert_count:
            logger.warning(
                "VAddy reports %d alerts; findings made for the first %d only (incomplete)",
                summary.alert_count,
                made,
            )
        checks = ", ".join(summary.checks) or "(not listed)"
        where = summary.console_url or "the VAddy console"
        description = (
            f"VAddy found {summary.alert_count} vulnerability alert(s) on project {project} "
            f"but its API reports only the count, not what or where they are. Checks run: "
            f"{checks}. The details are in the VAddy console: {where}"
        )
        return tuple(
            Finding.create(
                provider=self.name,
                rule_id=RULE_ID,
                title=f"VAddy alert {n} (details in the VAddy console)",
                severity=self.settings.unrated_severity,
                fingerprint=f"vaddy:{project}:{n}",
                description=description,
                remediation="Open the scan result in the VAddy console for each alert's page, "
                "parameter and remedy.",
                console_url=summary.console_url,
            )
            for n in range(1, made + 1)
        )

    def _details(self, body: Mapping[str, Any], complete: int) -> dict[str, str]:
        details = {
            key: wire.text(body.get(key))
            for key in ("project_id", "scan_count", "alert_count", "crawl_id", "crawl_label")
        }
        details["complete"] = f"{complete}%"
        if self.options.get("scan_type"):
            details["scan_type"] = ",".join(str(code) for code in self.options["scan_type"])
        return {key: value for key, value in details.items() if value}

    def cancel(self, scan: ScanRef, progress: ScanProgress | None) -> None:
        """See `Provider.cancel`: `action=cancel`; a scan that already ended is left alone."""
        if RUNCHECK in scan.extra:
            return  # somebody else's scan, with no id to cancel it by
        if progress is not None and progress.status in _ENDED:
            return
        try:
            self._post({"action": "cancel", "scan_id": scan.scan_id})
        except ProviderError as exc:
            if not _ALREADY_ENDED.search(exc.message):
                raise
            logger.info("VAddy scan %s had already ended: %s", scan.scan_id, exc.message)


_ENDED = (ScanStatus.COMPLETED, ScanStatus.FAILED, ScanStatus.CANCELLED)


def _complete(body: Mapping[str, Any]) -> tuple[int, str]:
    """`complete` (0-100) and why the scan is partial, or '' when it is whole.

    Below 100 the scan hit its time limit (fact sheet "scan/result"); a missing value is
    treated as partial: a gate must not pass on coverage nobody reported.
    """
    value = wire.number(body.get("complete"))
    if value is None:
        return 0, "VAddy did not report how much of the scan ran (no `complete`)"
    complete = int(min(100.0, max(0.0, value)))
    if complete >= 100:
        return 100, ""
    return complete, f"VAddy ran {complete}% of the planned checks (the scan hit its time limit)"


def _console_url(value: Any) -> str:
    """`scan_result_url` when it is an http(s) URL; anything else is no link to follow."""
    url = wire.text(value)
    if re.match(r"https?://", url, re.IGNORECASE):
        return url
    if url:
        logger.warning("VAddy scan_result_url is not an http(s) URL; left out")
    return ""


def _zone(value: Any) -> tzinfo:
    """The result's `timezone` (documented: `UTC`); UTC when missing or unknown.

    Only names shaped like IANA keys reach `ZoneInfo`: it looks any key up as a resource path,
    and a hostile one (`a/a/a/...`, hundreds deep) exhausts the recursion limit there.
    """
    name = wire.text(value, "UTC")
    if not _ZONE_NAME.fullmatch(name):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return UTC


def _time(value: Any, zone: tzinfo) -> datetime | None:
    """`2014-06-12T11:11:11+0000` as an aware UTC datetime (in `zone` without an offset)."""
    return wire.iso_time(value, zone=zone, zulu="Z")
