"""CyStack Platform: targets looked up by address, scans by `Location`, findings one by one.

Facts come from `providers/cystack.md` (the "fact sheet"); section names are cited in comments.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar
from urllib.parse import quote

import requests

from scangate.errors import AmbiguousStartError, ProviderError, UnexpectedResponseError
from scangate.http import Connection, json_body
from scangate.model import Finding, ScanId, ScanResult, ScanStatus
from scangate.model.scans import ScanProgress, ScanRef
from scangate.model.settings import ProviderSettings
from scangate.providers import _wire as wire
from scangate.providers import cystack_wire as answers
from scangate.providers.cystack_wire import LIVE
from scangate.providers.interface import (
    Capabilities,
    CredentialSpec,
    Provider,
    ScanHistory,
    StartAttempt,
    duration_between,
)
from scangate.providers.paging import PageGuard, shortfall
from scangate.text import model_text, one_line

logger = logging.getLogger(__name__)

API_KEY = "CYSTACK_API_KEY"
DEFAULT_PROFILE = 1
"""design §9 "Targets and defaults": no documented default exists; users should set theirs."""
DETAIL_WORKERS = 6
"""Vulnerability details fetched at once; below `requests`' pool of 10 connections per host."""
PAGE_SIZE = 10
"""Results per page, fixed (fact sheet "Pagination")."""
HISTORY_SCANS = 3
"""Past scans whose details are read for their duration (each detail is one request)."""
START_SKEW = 300.0
"""Seconds of clock difference allowed when matching a scan to a start attempt."""
ENDING = "Stopping"

_UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.I)
_CVE = re.compile(r"\bCVE-\d{4}-\d{4,}\b", re.I)
_CWE = re.compile(r"\bCWE-(\d{1,5})\b", re.I)


@dataclass(frozen=True)
class Target:
    """A CyStack target: its UUID and, when known, its address."""

    id: str
    address: str = ""


class CyStackProvider(Provider, registered="cystack"):
    """The CyStack adapter (`/targets`, `POST /scans`, `/scans/{id}`, `/vulnerabilities/{id}`)."""

    DEFAULT_BASE_URL: ClassVar[str] = "https://api.cystack.io/v1"
    api_version: ClassVar[str] = "v1"
    credentials: ClassVar[tuple[CredentialSpec, ...]] = (
        CredentialSpec.key(API_KEY, "API key, created in the web UI at https://cystack.io/apikeys"),
    )
    options_schema: ClassVar[Mapping[str, Any]] = Provider.schema_of(
        {
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
    )

    capabilities: ClassVar[Capabilities] = Capabilities(
        progress=False, eta=False, cancel=True, attach=True, rate_limit_headers=False
    )
    secret_headers: ClassVar[tuple[str, ...]] = ("Authorization",)

    def __init__(
        self, *, settings: ProviderSettings, env: Mapping[str, str], connection: Connection
    ) -> None:
        """Create a new `CyStackProvider`; see `Provider.__init__`."""
        super().__init__(settings=settings, env=env, connection=connection)
        self._key = env.get(API_KEY, "").strip()
        self.redact.add(self._key)
        self._targets: dict[str, Target] = {}
        self._stop_sent: set[str] = set()
        self._stopping_seen: set[str] = set()

    def credential_hint(self) -> str:
        """See `Provider.credential_hint`."""
        return f"{API_KEY} (create one at https://cystack.io/apikeys)"

    def authorize(self, method: str, url: str) -> Mapping[str, str]:
        """Every call carries `Authorization: Bearer <CYSTACK_API_KEY>` (fact sheet "Basics")."""
        return {"Authorization": f"Bearer {self._key}"}

    @staticmethod
    def error_detail(response: requests.Response, body: Any) -> str:
        """Return DRF's error text: `detail`, or `field: message` pairs (fact sheet "Errors")."""
        if isinstance(body, Mapping):
            if "detail" in body:
                return answers.messages(body["detail"])
            parts = []
            for key, value in body.items():
                text = answers.messages(value)
                prefix = "" if key == "non_field_errors" else f"{key}: "
                parts.append(prefix + text if text else "")
            return "; ".join(part for part in parts if part)
        if isinstance(body, list):
            return answers.messages(body)
        return wire.body_start(response)

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
        body = json_body(response) if response.ok else None
        address = wire.text(body.get("address")) if isinstance(body, Mapping) else ""
        # Sanitized as the model's text is: a lone surrogate in it could not be sent back as the
        # `q` of the scan lookup (requests encodes query values as UTF-8).
        return Target(target_id, model_text(address))

    def _by_address(self, address: str) -> Target:
        """The one target whose address equals `address` (see `address_key`), from every page."""
        wanted = answers.address_key(address)
        items = self._paged("targets", {"q": wire.url_host(address)})
        exact = [
            item for item in items if answers.address_key(wire.text(item.get("address"))) == wanted
        ]
        by_id = {wire.text(item.get("id")): item for item in exact if wire.text(item.get("id"))}
        if len(by_id) == 1:
            ((target_id, item),) = by_id.items()
            return Target(target_id, model_text(wire.text(item.get("address"))))
        if by_id:
            raise ProviderError(
                f"cystack: {len(by_id)} targets have the address {one_line(address, 200)}: "
                + ", ".join(one_line(i, 80) for i in sorted(by_id)),
                hint="set scan.target to the UUID of the one to scan",
            )
        close = [answers.describe_target(item) for item in items][:10]
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
            results, count, following = answers.page_parts(body, path)
            link = following if isinstance(following, str) and following else None
            guard.page(tuple(answers.item_key(item) for item in results), total=count, link=link)
            fresh = [item for item in results if answers.item_key(item) not in seen]
            if results and not fresh:
                guard.repeated()
            seen.update(answers.item_key(item) for item in fresh)
            items.extend(fresh)
            if not results or first_page_only:
                break
            page = answers.next_page(following, page, guard)
        return items

    def _scans(
        self, target: Target, filters: Mapping[str, str], *, first_page_only: bool = False
    ) -> list[Mapping[str, Any]]:
        """List items of `target`'s scans (`GET /scans`, filtered by `q` and `status`)."""
        params = dict(filters)
        if target.address:
            params["q"] = wire.url_host(target.address)
        items = self._paged("scans", params, first_page_only=first_page_only)
        return [
            item for item in items if answers.target_id(item) == target.id and answers.href_id(item)
        ]

    # Looking scans up.

    def find_running(self, target: str) -> ScanRef | None:
        """See `Provider.find_running`: a `Queued` or `Running` scan of the resolved target."""
        resolved = self._resolve(target)
        for status in LIVE:
            items = self._scans(resolved, {"status": status})
            if items:
                return self._ref(
                    answers.href_id(items[0]), target, resolved, items[0].get("start_time")
                )
        return None

    def known_scans(self, target: str) -> frozenset[str]:
        """See `Provider.known_scans`: the target's `Queued`, `Running` and `Stopping` scans."""
        resolved = self._resolve(target)
        return frozenset(
            answers.href_id(item)
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
            scan_id = answers.href_id(item)
            if scan_id in attempt.known_ids:
                continue
            detail = self._scan(scan_id)
            if answers.started_by(detail, attempt.marker, since):
                return self._ref(scan_id, attempt.target, resolved, detail.get("start_time"))
        return None

    def expected_duration(self, target: str) -> ScanHistory | None:
        """See `Provider.expected_duration`: the target's newest `Stopped` scans.

        The list gives only a start time (`HH:MM:SS DD/MM/YYYY`); the detail has epoch
        `start_time` and `stop_time` (fact sheet "GET /scans", "GET /scans/{scan_id}"), so
        the details of the newest `HISTORY_SCANS` are read. A user's stop looks like a natural
        finish (fact sheet "Scan status model"): the schedule's median absorbs one such scan.
        """
        resolved = self._resolve(target)
        items = self._scans(
            resolved, {"status": "Stopped", "ordering": "-start_time"}, first_page_only=True
        )
        durations = []
        for item in items[:HISTORY_SCANS]:
            detail = self._scan(answers.href_id(item))
            seconds = duration_between(
                answers.parse_time(detail.get("start_time")),
                answers.parse_time(detail.get("stop_time")),
            )
            if seconds is not None:
                durations.append(seconds)
        return ScanHistory(tuple(durations), source=f"CyStack target {resolved.id}")

    def _ref(self, scan_id: str, target: str, resolved: Target, started: Any) -> ScanRef:
        extra = {"target_id": resolved.id, "address": resolved.address}
        return ScanRef(
            scan_id=ScanId(scan_id),
            target=target,
            created_at=answers.parse_time(started),
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
        scan_id = answers.id_in(response.headers.get("Location", ""), "scans")
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
        raw = wire.text(self._scan(scan.scan_id).get("status"))
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
        read = self.salvage(scan, progress, partial(self._scan, scan.scan_id))
        found = None
        if read is not None:
            found = self.salvage(scan, progress, partial(self._findings, read, scan))
        findings, notes, short = found or self.NOTHING_READ
        detail = read or {}
        return self.result(
            scan,
            progress,
            findings=findings,
            started_at=answers.parse_time(detail.get("start_time")),
            finished_at=answers.parse_time(detail.get("stop_time")),
            details={**answers.scan_details(detail), **notes},
            shortfall=short,
        )

    def _findings(
        self, detail: Mapping[str, Any], scan: ScanRef
    ) -> tuple[list[Finding], dict[str, str], str]:
        """The findings, notes for the report, and how they fall short of the listed ones."""
        hrefs = detail.get("vuln_href")
        if not isinstance(hrefs, list):
            raise UnexpectedResponseError(f"cystack scan {scan.scan_id}: no vuln_href list")
        listed = [answers.id_in(wire.text(href), "vulnerabilities") for href in hrefs]
        ids = list(dict.fromkeys(listed))
        wanted = [i for i in ids if i]
        bodies = wire.parallel_map(self._vulnerability, wanted, DETAIL_WORKERS)
        address = wire.text(wire.mapping(detail.get("target")).get("address")) or wire.text(
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
        name = wire.text(raw.get("name"))
        severity = answers.severity_of(wire.text(raw.get("severity")))
        if not name or severity is None:
            logger.warning(
                "CyStack vulnerability %s skipped: no usable %s",
                one_line(wire.text(raw.get("id"), "(no id)"), 80),
                "name" if not name else "severity",
            )
            return None
        urls = sorted({u for u in map(wire.text, wire.items(raw.get("urls"))) if u and u != "None"})
        references = answers.references(raw.get("references"))
        false_positive = raw.get("false_positive") is True
        return Finding.create(
            provider=self.name,
            # Without a plugin name `Finding.create` makes the rule id from the name.
            rule_id=wire.text(raw.get("plugin_name")),
            title=name,
            severity=severity,
            # `urls` may be `["None"]` (fact sheet): the whole target is affected then.
            url=urls[0] if urls else address,
            parameter=wire.text(raw.get("var")),
            cve_ids=answers.ids_in(_CVE, references, str.upper),
            cwe_ids=tuple(int(n) for n in answers.ids_in(_CWE, references, str)),
            description=answers.description_of(raw, urls),
            remediation=wire.text(raw.get("solution")),
            references=tuple(url for _, url in references if url),
            provider_status="false_positive: true" if false_positive else "",
            false_positive=false_positive,
        )
