"""CyStack Platform: targets looked up by address, scans by `Location`, findings one by one.

Facts come from `providers/cystack.md` (the "fact sheet"); section names are cited in comments.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qs, quote, urlsplit

import requests

from scangate.errors import AmbiguousStartError, ProviderError, UnexpectedResponseError
from scangate.http import HttpClient
from scangate.model import Finding, ScanId, ScanResult, ScanStatus, Severity
from scangate.policy import ProviderSettings
from scangate.providers.interface import (
    Capabilities,
    CredentialSpec,
    Provider,
    ScanProgress,
    ScanRef,
    StartAttempt,
)
from scangate.providers.paging import PageGuard, shortfall
from scangate.text import one_line

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

API_KEY = "CYSTACK_API_KEY"
DEFAULT_PROFILE = 1
"""design §9 "Targets and defaults": no documented default exists; users should set theirs."""
DETAIL_WORKERS = 6
"""Vulnerability details fetched at once; below `requests`' pool of 10 connections per host."""
PAGE_SIZE = 10
"""Results per page, fixed (fact sheet "Pagination")."""
START_SKEW = 300.0
"""Seconds of clock difference allowed when matching a scan to a start attempt."""
LIST_TIME = "%H:%M:%S %d/%m/%Y"
"""`start_time` in scan lists, e.g. `13:58:01 20/11/2017` (fact sheet "GET /scans — list")."""
LIVE = ("Queued", "Running")
"""Statuses of a scan that is still going to scan (fact sheet "Scan status model")."""
ENDING = "Stopping"

_UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.I)
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_CVE = re.compile(r"\bCVE-\d{4}-\d{4,}\b", re.I)
_CWE = re.compile(r"\bCWE-(\d{1,5})\b", re.I)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_MESSAGE_DEPTH = 20
"""Levels of a DRF error body read for its message (see `_messages`)."""
_SEVERITIES = {
    "high": Severity.HIGH,
    "medium": Severity.MEDIUM,
    "low": Severity.LOW,
    "information": Severity.INFO,
}
"""The documented scale; CyStack has no critical (fact sheet "Severity scale")."""


@dataclass(frozen=True)
class Target:
    """A CyStack target: its UUID and, when known, its address."""

    id: str
    address: str = ""


class CyStackProvider(Provider):
    """The CyStack adapter (`/targets`, `POST /scans`, `/scans/{id}`, `/vulnerabilities/{id}`)."""

    name: ClassVar[str] = "cystack"
    display_name: ClassVar[str] = "CyStack"
    DEFAULT_BASE_URL: ClassVar[str] = "https://api.cystack.io/v1"
    credentials: ClassVar[tuple[CredentialSpec, ...]] = (
        CredentialSpec(
            variables=(API_KEY,),
            secret=frozenset({API_KEY}),
            description="API key, created in the web UI at https://cystack.io/apikeys",
        ),
    )
    options_schema: ClassVar[Mapping[str, Any]] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "profile": {
                "type": "integer",
                "minimum": 1,
                "default": DEFAULT_PROFILE,
                "description": "scan profile id from the CyStack web UI (no API lists them)",
            },
            "description": {"type": "string", "description": "shown with the scan in CyStack"},
            "notification": {
                "type": "array",
                "items": {"type": "integer", "minimum": 1},
                "uniqueItems": True,
                "description": "ids of the notification recipients to tell",
            },
            "headers": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "extra HTTP headers the scanner sends (advances.headers)",
            },
        },
        "additionalProperties": False,
    }
    capabilities: ClassVar[Capabilities] = Capabilities(
        progress=False, eta=False, cancel=True, attach=True, rate_limit_headers=False
    )
    secret_headers: ClassVar[tuple[str, ...]] = ("Authorization",)
    """Headers the runner's `HttpClient` must never send to another host."""

    def __init__(
        self, *, settings: ProviderSettings, env: Mapping[str, str], http: HttpClient
    ) -> None:
        """Create a new `CyStackProvider`; see `Provider.__init__`.

        Every call carries `Authorization: Bearer <CYSTACK_API_KEY>` (fact sheet "Basics").
        """
        super().__init__(settings=settings, env=env, http=http)
        key = env.get(API_KEY, "").strip()
        http.redact.add(key)
        http.default_headers["Authorization"] = f"Bearer {key}"
        http.credential_hint = f"{API_KEY} (create one at https://cystack.io/apikeys)"
        self._targets: dict[str, Target] = {}
        self._stop_sent: set[str] = set()
        self._stopping_seen: set[str] = set()

    @staticmethod
    def error_detail(response: requests.Response, body: Any) -> str:
        """Return DRF's error text: `detail`, or `field: message` pairs (fact sheet "Errors")."""
        if isinstance(body, Mapping):
            if "detail" in body:
                return _messages(body["detail"])
            parts = []
            for key, value in body.items():
                text = _messages(value)
                prefix = "" if key == "non_field_errors" else f"{key}: "
                parts.append(prefix + text if text else "")
            return "; ".join(part for part in parts if part)
        if isinstance(body, list):
            return _messages(body)
        return response.text[:300].strip()

    # Targets (fact sheet "GET /targets"): they cannot be created through the API.

    def preflight(self, target: str) -> None:
        """Resolve `scan.target` to a CyStack target before anything else (design §9)."""
        self._resolve(target)

    def _resolve(self, target: str) -> Target:
        key = target.strip()
        if key not in self._targets:
            found = self._by_id(key) if _UUID.fullmatch(key) else self._by_address(key)
            self._targets[key] = found
            logger.info("CyStack target %s is %s", one_line(key, 200), found.id)
        return self._targets[key]

    def _by_id(self, target_id: str) -> Target:
        # The detail route exists only as each list item's `href`; its shape is INFERRED to be
        # the list item's, so only a 404 is taken as an answer and anything odd is tolerated.
        response = self.http.request(
            "GET", f"targets/{quote(target_id, safe='')}", accept_status=(404, 405)
        )
        if response.status_code == 404:
            raise ProviderError(
                f"cystack: no target with id {target_id} for this API key",
                hint="copy the target id from the CyStack web UI, or set scan.target to its "
                "address; targets cannot be created through the API",
            )
        body = _json_or_none(response) if response.ok else None
        address = _text(body.get("address")) if isinstance(body, Mapping) else ""
        return Target(target_id, address)

    def _by_address(self, address: str) -> Target:
        """The one target whose address equals `address` (see `address_key`), from every page."""
        wanted = address_key(address)
        items = self._paged("targets", {"q": _search_term(address)})
        exact = [item for item in items if address_key(_text(item.get("address"))) == wanted]
        by_id = {_text(item.get("id")): item for item in exact if _text(item.get("id"))}
        if len(by_id) == 1:
            ((target_id, item),) = by_id.items()
            return Target(target_id, _text(item.get("address")))
        if by_id:
            raise ProviderError(
                f"cystack: {len(by_id)} targets have the address {one_line(address, 200)}: "
                + ", ".join(one_line(i, 80) for i in sorted(by_id)),
                hint="set scan.target to the UUID of the one to scan",
            )
        close = [_describe_target(item) for item in items][:10]
        raise ProviderError(
            f"cystack: no target has the address {one_line(address, 200)}"
            + (f"; close matches: {', '.join(close)}" if close else ""),
            hint="set scan.target to a target's exact address or its UUID; targets are added "
            "in the CyStack web UI (the API cannot create them)",
        )

    # Lists (fact sheet "Pagination"): DRF pages of 10, `next` is an absolute URL.

    def _paged(
        self, path: str, params: Mapping[str, str], *, first_page_only: bool = False
    ) -> list[Mapping[str, Any]]:
        """Every object of a paged list, following `next` by its `page` number on `base_url`.

        `next` is never requested itself: the documented example points at another host
        (`cystack.io`, not `api.cystack.io`). Paging reads to DRF's own end, a null `next` or
        an empty page (fact sheet "Pagination"); an item seen on an earlier page is not listed
        twice. A `next` that does not lead past the page read, a page repeating the one before
        or bringing only items already read, or far more pages than `count` announces raises
        `PagingError` (exit 3). `first_page_only` reads the first page alone.
        """
        items: list[Mapping[str, Any]] = []
        seen: set[str] = set()
        guard = PageGuard(self.display_name, path, PAGE_SIZE)
        page: int | None = 1
        while page is not None:
            body = self.http.json("GET", path, params={**params, "page": page})
            results, count, following = _page_parts(body, path)
            link = following if isinstance(following, str) and following else None
            guard.page(tuple(_item_key(item) for item in results), total=count, link=link)
            fresh = [item for item in results if _item_key(item) not in seen]
            if results and not fresh:
                guard.repeated()
            seen.update(_item_key(item) for item in fresh)
            items.extend(fresh)
            if not results or first_page_only:
                break
            page = _next_page(following, page, guard)
        return items

    def _scans(
        self, target: Target, filters: Mapping[str, str], *, first_page_only: bool = False
    ) -> list[Mapping[str, Any]]:
        """List items of `target`'s scans (`GET /scans`, filtered by `q` and `status`)."""
        params = dict(filters)
        if target.address:
            params["q"] = _search_term(target.address)
        items = self._paged("scans", params, first_page_only=first_page_only)
        return [item for item in items if _target_id(item) == target.id and _href_id(item)]

    # Looking scans up.

    def find_running(self, target: str) -> ScanRef | None:
        """See `Provider.find_running`: a `Queued` or `Running` scan of the resolved target."""
        resolved = self._resolve(target)
        for status in LIVE:
            items = self._scans(resolved, {"status": status})
            if items:
                return self._ref(_href_id(items[0]), target, resolved, items[0].get("start_time"))
        return None

    def known_scans(self, target: str) -> frozenset[str]:
        """See `Provider.known_scans`: the target's `Queued`, `Running` and `Stopping` scans."""
        resolved = self._resolve(target)
        return frozenset(
            _href_id(item)
            for status in (*LIVE, ENDING)
            for item in self._scans(resolved, {"status": status})
        )

    def find_started(self, attempt: StartAttempt) -> ScanRef | None:
        """See `Provider.find_started`.

        Candidates are the target's live scans and its newest page of stopped ones that were not
        there before; the detail of each tells whether it carries this attempt's marker in its
        `description`, or else was started since the attempt and carries no other run's marker.
        """
        resolved = self._resolve(attempt.target)
        since = attempt.sent_at.timestamp() - START_SKEW
        candidates = [
            *(
                item
                for status in (*LIVE, ENDING)
                for item in self._scans(resolved, {"status": status})
            ),
            # Newest first: a scan created seconds ago is on the first page (the stopped scans
            # of a target's history are not all read for it).
            *self._scans(
                resolved, {"status": "Stopped", "ordering": "-start_time"}, first_page_only=True
            ),
        ]
        for item in candidates:
            scan_id = _href_id(item)
            if scan_id in attempt.known_ids:
                continue
            detail = self._scan(scan_id)
            if _started_by(detail, attempt.marker, since):
                return self._ref(scan_id, attempt.target, resolved, detail.get("start_time"))
        return None

    def _ref(self, scan_id: str, target: str, resolved: Target, started: Any) -> ScanRef:
        extra = {"target_id": resolved.id, "address": resolved.address}
        return ScanRef(
            scan_id=ScanId(scan_id),
            target=target,
            created_at=parse_time(started),
            extra={key: value for key, value in extra.items() if value},
        )

    # One scan (fact sheet "POST /scans", "GET /scans/{scan_id}", "GET /scans/{scan_id}/stop").

    def start(self, attempt: StartAttempt) -> ScanRef:
        """See `Provider.start`: `POST /scans`; the scan id is the `Location` header's."""
        resolved = self._resolve(attempt.target)
        try:
            response = self.http.request(
                "POST", "scans", json_body=self._start_body(resolved, attempt), creates=True
            )
        except ProviderError as exc:
            if type(exc) is ProviderError and "profile" in exc.message:
                raise ProviderError(
                    exc.message,
                    hint="set provider.options.profile to a profile id of your CyStack account "
                    f"(the default {DEFAULT_PROFILE} may not exist there)",
                ) from None
            raise
        # The body is not documented (INFERRED): only `Location` names the scan.
        scan_id = _id_in(response.headers.get("Location", ""), "scans")
        if not scan_id:
            raise AmbiguousStartError("cystack accepted the start but sent no usable Location")
        return self._ref(scan_id, attempt.target, resolved, None)

    def _start_body(self, target: Target, attempt: StartAttempt) -> dict[str, Any]:
        # The marker in `description` lets `find_started` recognise this scan after a lost answer.
        description = str(self.options.get("description", "")).strip()
        body: dict[str, Any] = {
            "target": target.id,
            "profile": int(self.options.get("profile", DEFAULT_PROFILE)),
            "description": f"{description} ({attempt.marker})" if description else attempt.marker,
        }
        if "notification" in self.options:
            body["notification"] = [int(n) for n in self.options["notification"]]
        if self.options.get("headers"):
            body["advances"] = {
                "headers": {str(k): str(v) for k, v in self.options["headers"].items()}
            }
        return body

    def _scan(self, scan_id: str) -> Mapping[str, Any]:
        body = self.http.json("GET", f"scans/{quote(scan_id, safe='')}")
        if not isinstance(body, Mapping):
            raise UnexpectedResponseError(f"cystack scan {scan_id}: the answer is no object")
        return body

    def poll(self, scan: ScanRef) -> ScanProgress:
        """See `Provider.poll`.

        `Stopped` ends both a finished and a stopped scan (fact sheet "Scan status model"); it
        counts as cancelled only when scangate asked for the stop or saw the scan `Stopping`.
        """
        raw = _text(self._scan(scan.scan_id).get("status"))
        if raw == ENDING:
            self._stopping_seen.add(scan.scan_id)
        if raw == "Stopped":
            return self._stopped(scan.scan_id)
        if raw not in (*LIVE, ENDING):
            # An unknown word is not an end; `scan.timeout` bounds the wait.
            logger.warning("CyStack scan status %r unknown; still waiting", one_line(raw, 40))
        pending = raw == "Queued"
        return ScanProgress(
            status=ScanStatus.PENDING if pending else ScanStatus.RUNNING,
            raw_status=raw,
            phase="stopping" if raw == ENDING else "",
        )

    def _stopped(self, scan_id: str) -> ScanProgress:
        if scan_id not in self._stop_sent and scan_id not in self._stopping_seen:
            return ScanProgress(status=ScanStatus.COMPLETED, raw_status="Stopped")
        who = "scangate" if scan_id in self._stop_sent else "someone (it was seen Stopping)"
        return ScanProgress(
            status=ScanStatus.CANCELLED,
            raw_status="Stopped",
            completeness=0,  # CyStack reports no progress: how much ran is unknown
            message=f"CyStack scan {scan_id} was stopped by {who} before it finished",
        )

    def cancel(self, scan: ScanRef, progress: ScanProgress | None) -> None:
        """See `Provider.cancel`: `GET /scans/{id}/stop` (a GET, fact sheet S1)."""
        if progress is not None and progress.raw_status == "Stopped":
            return
        self._stop_sent.add(scan.scan_id)
        # Stopping a scan that no longer runs may answer 400 (INFERRED); a vanished one 404.
        self.http.request(
            "GET", f"scans/{quote(scan.scan_id, safe='')}/stop", accept_status=(400, 404, 409)
        )

    # Results (fact sheet "GET /vulnerabilities/{vuln_id}").

    def fetch(self, scan: ScanRef, progress: ScanProgress) -> ScanResult:
        """See `Provider.fetch`: every `vuln_href` of the scan, fetched in parallel."""
        detail: Mapping[str, Any] = {}
        findings: list[Finding] = []
        notes: dict[str, str] = {}
        short = ""
        try:
            detail = self._scan(scan.scan_id)
            findings, notes, short = self._findings(detail, scan)
        except ProviderError as exc:
            if progress.status is ScanStatus.COMPLETED:
                raise
            logger.warning("CyStack scan %s: partial results only (%s)", scan.scan_id, exc)
        return ScanResult(
            provider=self.name,
            scanner=self.display_name,
            scan_id=scan.scan_id,
            target=scan.target,
            status=progress.status,
            completeness=progress.completeness,
            started_at=parse_time(detail.get("start_time")),
            finished_at=parse_time(detail.get("stop_time")),
            findings=tuple(findings),
            console_url=scan.console_url,
            message=progress.message,
            details={**_scan_details(detail), **notes},
            shortfall=short,
        )

    def _findings(
        self, detail: Mapping[str, Any], scan: ScanRef
    ) -> tuple[list[Finding], dict[str, str], str]:
        """The findings, notes for the report, and how they fall short of the listed ones."""
        hrefs = detail.get("vuln_href")
        if not isinstance(hrefs, list):
            raise UnexpectedResponseError(f"cystack scan {scan.scan_id}: no vuln_href list")
        listed = [_id_in(_text(href), "vulnerabilities") for href in hrefs]
        ids = list(dict.fromkeys(listed))
        wanted = [i for i in ids if i]
        bodies = parallel_map(self._vulnerability, wanted, DETAIL_WORKERS)
        address = _text(_mapping(detail.get("target")).get("address")) or _text(
            scan.extra.get("address")
        )
        findings = [f for f in (self._finding(body, address) for body in bodies) if f is not None]
        notes = {"vulnerabilities_reported": str(len(hrefs)), "details_fetched": str(len(bodies))}
        if len(findings) < len(hrefs):
            notes["findings_skipped"] = str(len(hrefs) - len(findings))
        # Every listed vulnerability must become a finding: one that vanished (404) or cannot be
        # read is a finding the gate did not see, and the result is incomplete.
        fetched = sum(body is not None for body in bodies)
        unusable = fetched - len(findings) + listed.count("")
        short = shortfall(
            self.display_name, [("vulnerabilities", len(wanted), fetched)], unreadable=unusable
        )
        if short:
            logger.warning("CyStack scan %s: %s", scan.scan_id, short)
        return findings, notes, short

    def _vulnerability(self, vuln_id: str) -> Any:
        """One detail; None when it vanished (404). Retried by the `HttpClient` like any GET."""
        path = f"vulnerabilities/{quote(vuln_id, safe='')}"
        response = self.http.request("GET", path, accept_status=(404,))
        if response.status_code == 404:
            logger.warning("CyStack vulnerability %s is gone (404); skipped", vuln_id)
            return None
        try:
            return json.loads(response.content.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            # A malformed body is retried like a 5xx (design §9 "Faults"), then exit 3.
            return self.http.json("GET", path)

    def _finding(self, raw: Any, address: str) -> Finding | None:
        """Map one vulnerability; None (with a warning) when it has no name or severity."""
        if not isinstance(raw, Mapping):
            if raw is not None:
                logger.warning("CyStack vulnerability skipped: not an object")
            return None
        name = _text(raw.get("name"))
        severity = _severity(_text(raw.get("severity")))
        if not name or severity is None:
            logger.warning(
                "CyStack vulnerability %s skipped: no usable %s",
                one_line(_text(raw.get("id"), "(no id)"), 80),
                "name" if not name else "severity",
            )
            return None
        urls = sorted({u for u in map(_text, _list(raw.get("urls"))) if u and u != "None"})
        references = _references(raw.get("references"))
        false_positive = raw.get("false_positive") is True
        return Finding.create(
            provider=self.name,
            # Without a plugin name `Finding.create` makes the rule id from the name.
            rule_id=_text(raw.get("plugin_name")),
            title=name,
            severity=severity,
            # `urls` may be `["None"]` (fact sheet): the whole target is affected then.
            url=urls[0] if urls else address,
            parameter=_text(raw.get("var")),
            cve_ids=_ids(_CVE, references, str.upper),
            cwe_ids=tuple(int(n) for n in _ids(_CWE, references, str)),
            description=_description(raw, urls),
            remediation=_text(raw.get("solution")),
            references=tuple(url for _, url in references if url),
            provider_status="false_positive: true" if false_positive else "",
            false_positive=false_positive,
        )


# Threads.


def parallel_map(fn: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """`[fn(item) for item in items]`, `workers` at a time, in order; the first error is raised.

    Daemon threads rather than `concurrent.futures`: its workers are joined at interpreter exit,
    so one hung request would hold the process past the 5-second exit budget after SIGTERM
    (design §5). The main thread waits in short joins, so signals still reach it.
    """
    results: list[Any] = [None] * len(items)
    tasks: queue.SimpleQueue[int] = queue.SimpleQueue()
    for index in range(len(items)):
        tasks.put(index)
    errors: list[BaseException] = []

    def work() -> None:
        while not errors:
            try:
                index = tasks.get_nowait()
            except queue.Empty:
                return
            try:
                results[index] = fn(items[index])
            except BaseException as exc:  # handed to the caller below, whatever it is
                errors.append(exc)

    threads = [
        threading.Thread(target=work, name=f"scangate-fetch-{n}", daemon=True)
        for n in range(max(1, min(workers, len(items))))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.25)
    if errors:
        raise errors[0]
    return results


# Wire helpers.


def address_key(address: str) -> tuple[str, str, int | None, str, str]:
    """What makes two target addresses the same: case of scheme and host, a default port and
    a trailing `/` aside, they must be equal (`https://A.com:443/` equals `https://a.com`)."""
    text = address.strip()
    try:
        parts = urlsplit(text if "://" in text else "//" + text)
        port = parts.port
    except ValueError:
        return ("", text.lower(), None, "", "")
    scheme = parts.scheme.lower()
    if port is not None and _DEFAULT_PORTS.get(scheme) == port:
        port = None
    return (scheme, (parts.hostname or "").lower(), port, parts.path.rstrip("/"), parts.query)


def _search_term(address: str) -> str:
    """The `q` that finds `address`: its host, so that near misses come back as suggestions."""
    text = address.strip()
    try:
        host = urlsplit(text if "://" in text else "//" + text).hostname
    except ValueError:
        host = None
    return host or text


def _describe_target(item: Mapping[str, Any]) -> str:
    return f"{one_line(_text(item.get('address'), '(no address)'), 120)} ({_text(item.get('id'))})"


def _page_parts(body: Any, path: str) -> tuple[list[Mapping[str, Any]], int | None, Any]:
    """Split a DRF page into (objects, count, next); a bare array is accepted too."""
    if isinstance(body, list):
        return [item for item in body if isinstance(item, Mapping)], None, None
    if isinstance(body, Mapping) and isinstance(body.get("results"), list):
        results = [item for item in body["results"] if isinstance(item, Mapping)]
        return results, _integer(body.get("count")), body.get("next")
    raise UnexpectedResponseError(f"cystack {path}: the answer has no `results` list")


def _next_page(following: Any, page: int, guard: PageGuard) -> int | None:
    """The page number `next` names; None at the end (a null `next`).

    A `next` naming no page after `page` would read the same pages again: `PagingError`.
    """
    if not isinstance(following, str) or not following:
        return None
    values = parse_qs(urlsplit(following).query).get("page", [""])
    number = _integer(values[0])
    if number is None or number <= page:
        guard.fail(f"`next` does not lead past page {page}: {one_line(following, 200)}")
    return number


def _item_key(item: Mapping[str, Any]) -> str:
    return _text(item.get("id")) or _text(item.get("href")) or repr(sorted(item.items(), key=str))


def _href_id(item: Mapping[str, Any]) -> str:
    """A scan list item's id: it has none, only `href` (fact sheet "GET /scans — list")."""
    return _id_in(_text(item.get("href")), "scans") or _text(item.get("id"))


def _target_id(item: Mapping[str, Any]) -> str:
    return _text(_mapping(item.get("target")).get("id"))


def _id_in(href: str, collection: str) -> str:
    """The id in `/v1/<collection>/<id>` (or a full URL of it); '' when there is none."""
    parts = [part for part in urlsplit(href.strip()).path.split("/") if part]
    if len(parts) >= 2 and parts[-2] == collection and _ID.fullmatch(parts[-1]):
        return parts[-1]
    return ""


def _started_by(detail: Mapping[str, Any], marker: str, since: float) -> bool:
    """True for the scan an attempt with `marker` created (see `find_started`)."""
    description = _text(detail.get("description"))
    if marker in description:
        return True
    if "scangate-" in description:
        return False  # another scangate run's scan
    started = parse_time(detail.get("start_time"))
    if started is None:
        return _text(detail.get("status")) in LIVE  # a queued scan may not have started yet
    return started.timestamp() >= since


def _severity(word: str) -> Severity | None:
    """The documented words, then other spellings (`Critical`) rather than losing a finding."""
    if word.lower() in _SEVERITIES:
        return _SEVERITIES[word.lower()]
    try:
        return Severity.parse(word)
    except ValueError:
        return None


def _scan_details(body: Mapping[str, Any]) -> dict[str, str]:
    target = _mapping(body.get("target"))
    details = {
        "profile": _text(body.get("profile")),
        "target_id": _text(target.get("id")),
        "target_address": _text(target.get("address")),
        "target_ip": _text(target.get("ip")),
    }
    return {key: value for key, value in details.items() if value}


def _references(value: Any) -> list[tuple[str, str]]:
    """`references` as (title, url) pairs (fact sheet: `[{url, title}]`)."""
    pairs = []
    for item in _list(value):
        if isinstance(item, Mapping):
            pairs.append((_text(item.get("title")), _text(item.get("url"))))
        elif _text(item):
            pairs.append(("", _text(item)))
    return pairs


def _ids(
    pattern: re.Pattern[str], references: list[tuple[str, str]], norm: Callable[[str], str]
) -> tuple[str, ...]:
    """CVE or CWE ids named by the references' titles or URLs.

    No such field is documented; a reference such as `{"title": "CWE-79", ...}` is the only
    place CyStack could carry one, so it is read from there when present.
    """
    found: dict[str, None] = {}
    for title, url in references:
        for match in pattern.finditer(f"{title} {url}"):
            found[norm(match.group(match.lastindex or 0))] = None
    return tuple(found)


def _description(raw: Mapping[str, Any], urls: Iterable[str]) -> str:
    # S1 splits `long_description` out of S0's single `description` (fact sheet "detail").
    parts = [_text(raw.get("description")), _text(raw.get("long_description"))]
    listed = list(urls)
    if len(listed) > 1:
        parts.append("Affected URLs:\n" + "\n".join(listed))
    return "\n\n".join(dict.fromkeys(part for part in parts if part))


def parse_time(value: Any) -> datetime | None:
    """A CyStack time as an aware UTC datetime; None if unusable.

    Scan details give Unix seconds and scan lists `HH:MM:SS DD/MM/YYYY` (fact sheet "GET
    /scans/{scan_id}"); the list's time zone is not documented and is read as UTC.
    """
    if isinstance(value, bool):
        return None
    number = value if isinstance(value, (int, float)) else _number_text(value)
    if number is not None:
        try:
            return datetime.fromtimestamp(number, timezone.utc) if number > 0 else None
        except (OverflowError, OSError, ValueError):
            return None  # infinite, or past the years a `datetime` can hold
    text = _text(value)
    for parse in (lambda t: datetime.strptime(t, LIST_TIME), datetime.fromisoformat):
        try:
            moment = parse(text.replace("Z", "+00:00"))
        except ValueError:
            continue
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        try:
            return moment.astimezone(timezone.utc)
        except OverflowError:
            return None  # year 1 or 9999 with an offset that leaves the range
    return None


def _number_text(value: Any) -> float | None:
    text = _text(value)
    try:
        return float(text) if text and text.replace(".", "", 1).isdigit() else None
    except ValueError:
        return None


def _messages(value: Any, depth: int = 0) -> str:
    """DRF error values: a string, a list of strings, or nested field errors.

    Nesting deeper than `_MESSAGE_DEPTH` is not read: a hostile body could nest past
    Python's recursion limit, and no real error message is that deep.
    """
    if depth > _MESSAGE_DEPTH:
        return ""
    if isinstance(value, list):
        return " ".join(text for text in (_messages(v, depth + 1) for v in value) if text)
    if isinstance(value, Mapping):
        return "; ".join(f"{key}: {_messages(item, depth + 1)}" for key, item in value.items())
    return _text(value)


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except (ValueError, RecursionError):  # RecursionError: nested past the decoder's limit
        return None


def _text(value: Any, default: str = "") -> str:
    """A scalar as stripped text; anything else (None, objects, lists) as `default`."""
    if isinstance(value, bool) or value is None or isinstance(value, (Mapping, list)):
        return default
    return str(value).strip() or default


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
