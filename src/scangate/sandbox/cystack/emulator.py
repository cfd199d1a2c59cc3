"""The CyStack API emulator, faithful to `providers/cystack.md` (cited as [FS] below)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar
from urllib.parse import urlencode

from scangate.sandbox.clock import Clock
from scangate.sandbox.cystack.data import (
    PREFIX,
    PROFILES,
    SANDBOX_API_KEY,
    SEVERITIES,
    STATUSES,
    STOPPING_SECONDS,
    TARGETS,
    Planted,
    ScanRecord,
    Target,
    plant,
)
from scangate.sandbox.cystack.drf import check_scan, detail_error, field_errors, ordered, search
from scangate.sandbox.options import EmulatorOptions
from scangate.sandbox.runtime import Emulator
from scangate.sandbox.scenario import Scenario
from scangate.sandbox.wire import BadRequest, Rejected, Request, Response, Route, Router, respond

PAGE_SIZE = 10
"""[FS] "Pagination": fixed 10 results per page."""
OPTIONS = frozenset({"page_size", "stopping", "extra_targets", "loop_next", "vanished", "history"})
"""Keys a scenario's `options.cystack` block may set."""
_SEVERITY_RANK = {name: rank for rank, name in enumerate(reversed(SEVERITIES))}


HISTORY_TARGET = "https://staging.example.com"
"""The address whose past scans `history` seeds by default (the e2e tests' `scan.target`)."""


class CyStackEmulator(Emulator):
    """CyStack's API: fixed targets, profiles, a timed scan state machine, vulnerabilities."""

    provider: ClassVar[str] = "cystack"
    prefix: ClassVar[str] = PREFIX
    SANDBOX_ENV: ClassVar[Mapping[str, str]] = {"CYSTACK_API_KEY": SANDBOX_API_KEY}

    def __init__(
        self,
        scenario: Scenario,
        *,
        clock: Clock | None = None,
        page_size: int | None = None,
        stopping: float | None = None,
        api_keys: Iterable[str] | None = None,
    ) -> None:
        """Create a new `CyStackEmulator` playing `scenario`.

        Keyword arguments override the scenario's `options.cystack` block: `page_size` (10, as
        documented), `stopping` (seconds a scan stopped on CyStack's side reads `Stopping`) and
        `api_keys` (the accepted keys; the sandbox key by default). Scenario options only:
        `extra_targets: N` lists N more targets under `https://staging.example.com/extra/`
        before the seeded ones (a lookup then pages past them), `loop_next: true` makes the
        last page's `next` lead back to the first, and `vanished: N` makes the details of
        each scan's last N vulnerabilities answer 404. `history: [{duration: 1800}, ...]`
        seeds `Stopped` scans of `https://staging.example.com` (or an entry's `target`
        address), newest first, one ending each hour before the emulator started.
        """
        options = EmulatorOptions(scenario, self.provider, OPTIONS)
        self.page_size = options.count(
            "page_size",
            options.get("page_size", page_size, PAGE_SIZE),
            low=1,
            problem="expected a positive integer",
        )
        self.stopping = options.seconds(
            "stopping", options.get("stopping", stopping, STOPPING_SECONDS)
        )
        self.api_keys = frozenset(api_keys or (SANDBOX_API_KEY,))
        extra = options.count("extra_targets", options.get("extra_targets", default=0))
        self.loop_next = options.get("loop_next", default=False) is True
        self.vanished = options.count("vanished", options.get("vanished", default=0))
        self.target_list = _extra_targets(extra) + TARGETS
        self.targets = {target.id: target for target in self.target_list}
        self._gone: set[str] = set()
        self._scans: dict[str, ScanRecord] = {}
        self._vulns: dict[str, tuple[ScanRecord, Planted]] = {}
        super().__init__(scenario, clock=clock)
        for index, (seconds, address) in enumerate(self._past_scans(options)):
            self._seed_past(index, seconds, address)

    def _past_scans(self, options: EmulatorOptions) -> list[tuple[float, str]]:
        """The scenario's `history` as (seconds, target address), newest first."""
        entries = options.get("history", default=[])
        if not isinstance(entries, list):
            raise options.error("history", "expected a list of {duration, target}")
        past = []
        for entry in entries:
            if not isinstance(entry, dict) or set(entry) - {"duration", "target"}:
                raise options.error("history", "each entry is {duration: seconds, target: ...}")
            address = entry.get("target", HISTORY_TARGET)
            if not any(target.address == address for target in self.target_list):
                raise options.error("history", f"no seeded target has the address {address!r}")
            past.append((options.positive("history", entry.get("duration")), address))
        return past

    def _seed_past(self, index: int, seconds: float, address: str) -> None:
        """A scan of the first target at `address` that ran `seconds`, `index + 1` hours ago."""
        target = next(t for t in self.target_list if t.address == address)
        ago = 3600.0 * (index + 1) + seconds
        scan = ScanRecord(
            id=str(uuid.uuid4()),
            target=target,
            profile=PROFILES[1],
            description="",
            notification=(),
            created=self.clock.monotonic() - ago,
            created_at=self.clock.time() - ago,
            duration=seconds,
            final="completed",
            stopping=self.stopping,
        )
        self._scans[scan.id] = scan

    # -- routing --------------------------------------------------------------------------

    def register(self, router: Router) -> None:
        """See `Emulator.register`."""
        v, scan, vuln = PREFIX, r"(?P<scan_id>[^/]+)", r"(?P<vuln_id>[^/]+)"
        router.add("GET", f"{v}/targets", self._targets, "list")
        router.add("POST", f"{v}/targets", self._no_target_creation, "other")
        router.add("GET", f"{v}/targets/(?P<target_id>[^/]+)", self._target, "target")
        router.add("GET", f"{v}/scans", self._list, "list")
        router.add("POST", f"{v}/scans", self._create, "start")
        router.add("GET", f"{v}/scans/{scan}", self._get, "poll")
        router.add("DELETE", f"{v}/scans/{scan}", self._delete, "delete")
        router.add("GET", f"{v}/scans/{scan}/stop", self._stop, "cancel")  # a GET [FS]
        router.add("GET", f"{v}/vulnerabilities", self._vuln_list, "list")
        router.add("GET", f"{v}/vulnerabilities/{vuln}", self._vuln, "findings")
        router.add("PUT", f"{v}/vulnerabilities/{vuln}", self._vuln_update, "update")
        router.add(
            "GET",
            f"{v}/vulnerabilities/{vuln}/traffics/(?P<traffic_id>[^/]+)",
            self._traffic,
            "traffic",
        )

    def dispatch(self, route: Route, request: Request) -> Response:
        """Check the bearer key, then run the handler (DRF shapes for every refusal)."""
        with self.lock:
            try:
                self._authorize(request)
                return route.handler(request)
            except Rejected as rejected:
                return rejected.response
            except BadRequest as exc:
                return self.error(400, str(exc), "BAD_REQUEST")

    def error(self, status: int, detail: str, code: str) -> Response:
        """DRF's `{"detail": ...}` (INFERRED [FS] "Errors"); `code` has no place in it."""
        return respond(status, {"detail": detail})

    def route_error(self, status: int, request: Request) -> Response:
        """DRF's words for a wrong method (405) and an unknown path (404)."""
        if status == 405:
            return self.error(405, f'Method "{request.method}" not allowed.', "")
        return self.error(404, "Not found.", "")

    def rate_limited(self, retry_after: float) -> Response:
        """DRF's throttle answer (INFERRED [FS] "Errors"), with `Retry-After`."""
        seconds = max(0, math.ceil(retry_after))
        detail = f"Request was throttled. Expected available in {seconds} seconds."
        return respond(429, {"detail": detail}, {"Retry-After": str(seconds)})

    def _authorize(self, request: Request) -> None:
        """Every request needs `Authorization: Bearer <key>` [FS] "Basics"."""
        scheme, _, key = (request.header("Authorization") or "").strip().partition(" ")
        if not scheme:
            raise self._unauthorized("Authentication credentials were not provided.")
        if scheme.lower() != "bearer" or key.strip() not in self.api_keys:
            raise self._unauthorized("Invalid token.")

    def _unauthorized(self, detail: str) -> Rejected:
        response = respond(401, {"detail": detail}, {"WWW-Authenticate": 'Bearer realm="api"'})
        return Rejected(response)

    # -- targets ([FS] "GET /targets") ----------------------------------------------------

    def _targets(self, request: Request) -> Response:
        items = [t for t in self.target_list if search(request, (t.address,))]
        keys: dict[str, Callable[[Target], Any]] = {
            "target": lambda t: t.address,
            "verification": lambda t: t.verification,
        }
        return self._page(request, [t.item() for t in ordered(request, items, keys)])

    def _target(self, request: Request) -> Response:
        target = self.targets.get(request.params["target_id"])
        if target is None:
            raise detail_error(404, "Not found.")
        return respond(200, target.item())

    def _no_target_creation(self, request: Request) -> Response:
        # Targets cannot be created through the API [FS] "Basics" (status INFERRED).
        raise detail_error(403, "You do not have permission to perform this action.")

    # -- scans ([FS] "POST /scans", "GET /scans", "GET /scans/{scan_id}") -----------------

    def _create(self, request: Request) -> Response:
        body = request.json()
        if not isinstance(body, dict):
            kind = type(body).__name__
            raise field_errors(
                {"non_field_errors": [f"Invalid data. Expected a dictionary, but got {kind}."]}
            )
        target, profile, notification = check_scan(body, self.targets)
        scan_id = str(uuid.uuid4())
        now = self.clock.monotonic()
        scan = ScanRecord(
            id=scan_id,
            target=target,
            profile=PROFILES[profile],
            description=str(body.get("description") or ""),
            notification=notification,
            created=now,
            created_at=self.clock.time(),
            duration=self.scenario.duration,
            final=self.scenario.final,
            stopping=self.stopping,
            vulnerabilities=plant(self.scenario.findings, scan_id, target, self.scenario.duration),
        )
        self._scans[scan_id] = scan
        for planted in scan.vulnerabilities:
            self._vulns[planted.body["id"]] = (scan, planted)
        gone = scan.vulnerabilities[len(scan.vulnerabilities) - self.vanished :]
        self._gone.update(planted.body["id"] for planted in gone if self.vanished)
        # 201 with the scan URL in `Location`; the body is INFERRED (the scan object).
        return respond(201, scan.detail(now), {"Location": f"{PREFIX}/scans/{scan_id}"})

    def _scan(self, request: Request) -> ScanRecord:
        scan = self._scans.get(request.params["scan_id"])
        if scan is None:
            raise detail_error(404, "Not found.")
        return scan

    def _get(self, request: Request) -> Response:
        return respond(200, self._scan(request).detail(self.clock.monotonic()))

    def _stop(self, request: Request) -> Response:
        # Returns the scan with `Stopped` at once, as the doc's example does [FS] "stop".
        scan, now = self._scan(request), self.clock.monotonic()
        scan.stop(now)
        return respond(200, scan.detail(now))

    def _delete(self, request: Request) -> Response:
        scan = self._scan(request)
        del self._scans[scan.id]
        for planted in scan.vulnerabilities:
            self._vulns.pop(planted.body["id"], None)
        return Response(204)  # later GETs answer 404 [FS] "DELETE /scans/{scan_id}"

    def _list(self, request: Request) -> Response:
        now = self.clock.monotonic()
        status = request.arg("status")
        if status is not None and status not in STATUSES:
            raise field_errors(
                {
                    "status": [
                        f"Select a valid choice. {status} is not one of the available choices."
                    ]
                }
            )
        scans = [
            scan
            for scan in sorted(self._scans.values(), key=lambda s: s.created, reverse=True)
            if status in (None, scan.status(now)) and search(request, (scan.target.address,))
        ]
        keys: dict[str, Callable[[ScanRecord], Any]] = {
            "target": lambda s: s.target.address,
            "start_time": lambda s: s.created_at,
            "vulnerabilities": lambda s: len(s.found(now)),
        }
        return self._page(request, [s.summary(now) for s in ordered(request, scans, keys)])

    # -- vulnerabilities ([FS] "GET /vulnerabilities", "GET|PUT /vulnerabilities/{id}") -----

    def _visible(self, vuln_id: str) -> Planted:
        """A vulnerability its scan lists by now; 404 otherwise."""
        entry = self._vulns.get(vuln_id)
        now = self.clock.monotonic()
        if entry is None or vuln_id in self._gone or entry[1] not in entry[0].found(now):
            raise detail_error(404, "Not found.")
        return entry[1]

    def _vuln(self, request: Request) -> Response:
        return respond(200, self._visible(request.params["vuln_id"]).body)

    def _vuln_update(self, request: Request) -> Response:
        planted = self._visible(request.params["vuln_id"])
        body = request.json()
        value = body.get("false_positive") if isinstance(body, dict) else None
        if not isinstance(value, bool):
            raise field_errors({"false_positive": ["Must be a valid boolean."]})
        planted.body["false_positive"] = value
        return respond(200, planted.body)

    def _traffic(self, request: Request) -> Response:
        # Shape INFERRED [FS] "GET /vulnerabilities/{vid}/traffics/{tid}".
        traffic = self._visible(request.params["vuln_id"]).traffic.get(request.params["traffic_id"])
        if traffic is None:
            raise detail_error(404, "Not found.")
        return respond(200, dict(traffic))

    def _vuln_list(self, request: Request) -> Response:
        now = self.clock.monotonic()
        severity = request.arg("sev")
        if severity is not None and severity not in SEVERITIES:
            raise field_errors(
                {"sev": [f"Select a valid choice. {severity} is not one of the available choices."]}
            )
        bodies = [
            planted.body
            for scan in self._scans.values()
            for planted in scan.found(now)
            if severity in (None, planted.body["severity"])
            and search(request, (planted.body["name"], scan.target.address))
        ]
        keys: dict[str, Callable[[dict[str, Any]], Any]] = {
            "severity": lambda b: _SEVERITY_RANK[b["severity"]],
            "target": lambda b: b["scan"]["target"]["address"],
            "false_positive": lambda b: b["false_positive"],
            "name": lambda b: b["name"],
        }
        return self._page(request, [_vuln_item(b) for b in ordered(request, bodies, keys)])

    # -- pagination ([FS] "Pagination") ---------------------------------------------------

    def _page(self, request: Request, items: list[dict[str, Any]]) -> Response:
        """One DRF page: `count/next/previous/results`, absolute links, 404 past the end."""
        last = max(1, math.ceil(len(items) / self.page_size))
        try:
            page = int(request.arg("page") or "1")
        except ValueError:
            page = 0
        if not 1 <= page <= last:
            raise detail_error(404, "Invalid page.")  # INFERRED DRF default
        following = page + 1 if page < last else (1 if self.loop_next else None)
        body = {
            "count": len(items),
            "next": self._link(request, following) if following is not None else None,
            "previous": self._link(request, page - 1) if page > 1 else None,
            "results": items[(page - 1) * self.page_size : page * self.page_size],
        }
        return respond(200, body)

    def _link(self, request: Request, page: int) -> str:
        """An absolute page URL, the request's other parameters kept (DRF drops `page=1`)."""
        query = {key: list(values) for key, values in request.query.items() if key != "page"}
        if page > 1:
            query["page"] = [str(page)]
        host = request.header("Host") or "127.0.0.1"
        encoded = urlencode(query, doseq=True)
        return f"http://{host}{request.path}" + (f"?{encoded}" if encoded else "")


def _vuln_item(body: Mapping[str, Any]) -> dict[str, Any]:
    """A `GET /vulnerabilities` item [FS]."""
    return {
        "false_positive": body["false_positive"],
        "severity": body["severity"],
        "name": body["name"],
        "href": f"{PREFIX}/vulnerabilities/{body['id']}",
        "id": body["id"],
        "target": body["scan"]["target"]["address"],
    }


def _extra_targets(count: int) -> tuple[Target, ...]:
    return tuple(
        Target(f"c0000000-0000-4000-8000-{n:012d}", f"https://staging.example.com/extra/{n}")
        for n in range(1, count + 1)
    )
