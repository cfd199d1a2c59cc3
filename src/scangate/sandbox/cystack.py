"""The CyStack API emulator, faithful to `providers/cystack.md` (cited as [FS] below)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar
from urllib.parse import urlencode

from scangate.sandbox.clock import Clock
from scangate.sandbox.cystack_data import (
    AUTH_METHODS,
    NOTIFICATIONS,
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
from scangate.sandbox.runtime import Emulator
from scangate.sandbox.scenario import Scenario, ScenarioError
from scangate.sandbox.wire import BadRequest, Request, Response, Route, Router, respond

PAGE_SIZE = 10
"""[FS] "Pagination": fixed 10 results per page."""
OPTIONS = frozenset({"page_size", "stopping", "extra_targets", "loop_next", "vanished"})
"""Keys a scenario's `options.cystack` block may set."""
_SEVERITY_RANK = {name: rank for rank, name in enumerate(reversed(SEVERITIES))}


class Rejected(Exception):
    """Carries an error response out of a handler's helpers."""

    def __init__(self, response: Response) -> None:
        """Create a new `Rejected` answering with `response`."""
        super().__init__(response.status)
        self.response = response


def detail_error(status: int, detail: str) -> Rejected:
    """DRF's `{"detail": ...}` error (INFERRED [FS] "Errors")."""
    return Rejected(respond(status, {"detail": detail}))


def field_errors(errors: Mapping[str, list[str]]) -> Rejected:
    """DRF's 400: field -> list of messages (INFERRED [FS] "Errors")."""
    return Rejected(respond(400, dict(errors)))


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
        each scan's last N vulnerabilities answer 404.
        """
        options = _options(scenario)
        self.page_size = _positive_int(_pick(page_size, options, "page_size", PAGE_SIZE), scenario)
        self.stopping = _seconds(_pick(stopping, options, "stopping", STOPPING_SECONDS), scenario)
        self.api_keys = frozenset(api_keys or (SANDBOX_API_KEY,))
        extra = _count(options.get("extra_targets", 0), scenario, "extra_targets")
        self.loop_next = options.get("loop_next", False) is True
        self.vanished = _count(options.get("vanished", 0), scenario, "vanished")
        self.target_list = _extra_targets(extra) + TARGETS
        self.targets = {target.id: target for target in self.target_list}
        self._gone: set[str] = set()
        self._scans: dict[str, ScanRecord] = {}
        self._vulns: dict[str, tuple[ScanRecord, Planted]] = {}
        super().__init__(scenario, clock=clock)

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
        items = [t for t in self.target_list if _search(request, (t.address,))]
        keys: dict[str, Callable[[Target], Any]] = {
            "target": lambda t: t.address,
            "verification": lambda t: t.verification,
        }
        return self._page(request, [t.item() for t in _ordered(request, items, keys)])

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
        target, profile, notification = self._validate(body)
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

    def _validate(self, body: Mapping[str, Any]) -> tuple[Target, int, tuple[int, ...]]:
        """DRF-style checks of a `POST /scans` body; every problem at once (INFERRED [FS])."""
        errors: dict[str, list[str]] = {}
        target = self._check_target(body.get("target"), errors)
        profile = _check_pk(body, "profile", PROFILES, errors, required=True)
        notification = _check_notification(body.get("notification", []), errors)
        if not isinstance(body.get("description", ""), str):
            errors["description"] = ["Not a valid string."]
        _check_advances(body.get("advances", {}), errors)
        if errors or target is None or profile is None:
            raise field_errors(errors)
        return target, profile, notification

    def _check_target(self, value: Any, errors: dict[str, list[str]]) -> Target | None:
        if value is None:
            errors["target"] = ["This field is required."]
            return None
        target = self.targets.get(str(value)) if isinstance(value, str) else None
        if target is None:
            errors["target"] = [f'Invalid pk "{value}" - object does not exist.']
        return target

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
            if status in (None, scan.status(now)) and _search(request, (scan.target.address,))
        ]
        keys: dict[str, Callable[[ScanRecord], Any]] = {
            "target": lambda s: s.target.address,
            "start_time": lambda s: s.created_at,
            "vulnerabilities": lambda s: len(s.found(now)),
        }
        return self._page(request, [s.summary(now) for s in _ordered(request, scans, keys)])

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
            and _search(request, (planted.body["name"], scan.target.address))
        ]
        keys: dict[str, Callable[[dict[str, Any]], Any]] = {
            "severity": lambda b: _SEVERITY_RANK[b["severity"]],
            "target": lambda b: b["scan"]["target"]["address"],
            "false_positive": lambda b: b["false_positive"],
            "name": lambda b: b["name"],
        }
        return self._page(request, [_vuln_item(b) for b in _ordered(request, bodies, keys)])

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


def _search(request: Request, fields: tuple[str, ...]) -> bool:
    """DRF `SearchFilter`: every term of `q` (split on spaces and commas) in some field."""
    terms = (request.arg("q") or "").replace(",", " ").split()
    return all(any(term.lower() in text.lower() for text in fields) for term in terms)


def _ordered(
    request: Request, items: list[Any], keys: Mapping[str, Callable[[Any], Any]]
) -> list[Any]:
    """DRF `OrderingFilter`: a comma list, `-` for descending; unknown fields are ignored."""
    fields = [f.strip() for f in (request.arg("ordering") or "").split(",") if f.strip()]
    for name in reversed(fields):  # stable sorts, least significant first
        key = keys.get(name.lstrip("-"))
        if key is not None:
            items = sorted(items, key=key, reverse=name.startswith("-"))
    return items


def _check_pk(
    body: Mapping[str, Any],
    name: str,
    known: Mapping[int, Any],
    errors: dict[str, list[str]],
    *,
    required: bool,
) -> int | None:
    """A primary-key field such as `profile` (unknown id -> 400 [FS] "Emulator notes")."""
    value = body.get(name)
    if value is None:
        if required:
            errors[name] = ["This field is required."]
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        errors[name] = [f"Incorrect type. Expected pk value, received {type(value).__name__}."]
        return None
    if value not in known:
        errors[name] = [f'Invalid pk "{value}" - object does not exist.']
        return None
    return value


def _check_notification(value: Any, errors: dict[str, list[str]]) -> tuple[int, ...]:
    if not isinstance(value, list):
        errors["notification"] = [
            f'Expected a list of items but got type "{type(value).__name__}".'
        ]
        return ()
    problems = [
        f'Invalid pk "{item}" - object does not exist.'
        for item in value
        if isinstance(item, bool) or not isinstance(item, int) or item not in NOTIFICATIONS
    ]
    if problems:
        errors["notification"] = problems
    return tuple(value)


def _check_advances(value: Any, errors: dict[str, list[str]]) -> None:
    """`advances.headers` (strings) and `advances.authentication` [FS] "POST /scans"."""
    if not isinstance(value, dict):
        errors["advances"] = ["Expected a dictionary of items."]
        return
    headers = value.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        errors["advances"] = ["headers: Expected a dictionary of strings."]
    auth = value.get("authentication")
    if auth is not None and (
        not isinstance(auth, dict) or auth.get("authentication_method") not in AUTH_METHODS
    ):
        errors["advances"] = [f"authentication_method: must be one of {', '.join(AUTH_METHODS)}."]


def _options(scenario: Scenario) -> Mapping[str, Any]:
    options = scenario.options_for("cystack")
    for key in options:
        if key not in OPTIONS:
            raise ScenarioError(
                f"scenario {scenario.name!r}: options.cystack.{key}: unknown key",
                hint=f"allowed keys: {', '.join(sorted(OPTIONS))}",
            )
    return options


def _extra_targets(count: int) -> tuple[Target, ...]:
    return tuple(
        Target(f"c0000000-0000-4000-8000-{n:012d}", f"https://staging.example.com/extra/{n}")
        for n in range(1, count + 1)
    )


def _count(value: Any, scenario: Scenario, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ScenarioError(
            f"scenario {scenario.name!r}: options.cystack.{key}: expected an integer >= 0"
        )
    return value


def _positive_int(value: Any, scenario: Scenario) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ScenarioError(
            f"scenario {scenario.name!r}: options.cystack.page_size: expected a positive integer"
        )
    return value


def _seconds(value: Any, scenario: Scenario) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ScenarioError(
            f"scenario {scenario.name!r}: options.cystack.stopping: expected seconds (>= 0)"
        )
    return float(value)


def _pick(explicit: Any, options: Mapping[str, Any], key: str, default: Any) -> Any:
    """A constructor argument, else the scenario option, else the default."""
    return explicit if explicit is not None else options.get(key, default)
