"""The VAddy Web API v2 emulator, faithful to `providers/vaddy.md` (cited as [FS] below)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import ClassVar

from scangate.sandbox.clock import Clock, SystemClock
from scangate.sandbox.options import EmulatorOptions
from scangate.sandbox.runtime import Emulator
from scangate.sandbox.scenario import Scenario
from scangate.sandbox.vaddy.scans import (
    PLANS,
    Crawl,
    Project,
    VAddyScan,
    default_projects,
)
from scangate.sandbox.wire import BadRequest, Handler, Request, Response, Route, Router, respond

SANDBOX_USER = "sandbox-vaddy-user"
SANDBOX_AUTH_KEY = "vaddy-sandbox-auth-key-5e0c7b1d9a34f862"
OPTIONS = frozenset({"busy_for", "plan", "crawl_history", "ignore_page", "history"})
"""Keys a scenario's `options.vaddy` block may set."""
RESULTS_LIMIT = 20
"""`GET /scan/results/list` gives the last 20 finished scans ([FS] "Other v2 endpoints")."""
CRAWL_LIMIT = 30
"""`GET /crawl` gives at most 30 crawls a page ([FS] "GET /v2/crawl")."""

# Error texts. Quoted ones come from [FS] "Emulator notes" and the v2 documents; the others are
# INFERRED in the same style, since VAddy documents only their causes.
BUSY = "can not start scan because it has not finished previous scan."
NO_CRAWL = "no crawling data."
BAD_SCAN_TYPE = "Invalid scan type selected"
ALREADY_FINISHED = "can not cancel because the scan process has already been finished."
UNKNOWN_SCAN = "This scan_id does not exist."
UNKNOWN_PROJECT = "This project_id does not exist."
UNKNOWN_CRAWL = "This crawl_id does not exist."  # INFERRED
UNKNOWN_NUMBER = "not match the Project Number"
BAD_ACTION = "action must be start or cancel."  # INFERRED

Fields = dict[str, str]


class _Refused(Exception):
    """Raised by a handler to answer with `response` at once."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def _error(status: int, message: str) -> _Refused:
    return _Refused(respond(status, {"error_message": message}))


class VAddyEmulator(Emulator):
    """VAddy's v2 scan API: one scan per project, runcheck, crawl search, counts-only results."""

    provider: ClassVar[str] = "vaddy"
    prefix: ClassVar[str] = "/v2"
    SANDBOX_ENV: ClassVar[Mapping[str, str]] = {
        "VADDY_USER": SANDBOX_USER,
        "VADDY_AUTH_KEY": SANDBOX_AUTH_KEY,
    }

    def __init__(
        self,
        scenario: Scenario,
        *,
        clock: Clock | None = None,
        busy_for: float | None = None,
        plan: str | None = None,
    ) -> None:
        """Create a new `VAddyEmulator` playing `scenario`.

        Keyword arguments override the scenario's `options.vaddy` block: `busy_for` (seconds
        another client's scan keeps `vaddy-project-1` busy from the start) and `plan`
        (`starter`, `professional`, `enterprise` or `advanced` (default): the scan types
        allowed). Projects: `vaddy-project-1` (number 1, crawls 27-30) and
        `vaddy-project-nocrawl` (number 2, no crawl). The scenario option `crawl_history: N`
        gives `vaddy-project-1` N more crawls labelled `release candidate <n>` and, oldest of
        all (id 1), one labelled `release`: a label search for `release` finds it last.
        `ignore_page: true` makes the crawl search answer page 1 to every page (a broken
        server whose list never ends). `history: [{duration: 1800}, {duration: 60, status:
        cancelled}, ...]` seeds finished scans of `vaddy-project-1` (number 1), newest first,
        one ending each hour before the emulator started: `scan/results/list` lists them.
        """
        options = EmulatorOptions(scenario, self.provider, OPTIONS)
        self.plan = options.choice("plan", options.get("plan", plan, "advanced"), tuple(PLANS))
        busy = options.seconds("busy_for", options.get("busy_for", busy_for, 0))
        history = options.count("crawl_history", options.get("crawl_history", default=0))
        self.ignore_page = options.flag("ignore_page", options.get("ignore_page", default=False))
        clock = clock or SystemClock()
        self.projects: dict[str, Project] = default_projects(clock.time(), history)
        self.scans: dict[str, VAddyScan] = {}
        super().__init__(scenario, clock=clock)
        if busy > 0:
            self._occupy(self.projects["vaddy-project-1"], busy)
        for index, (seconds, final) in enumerate(past_scans(options)):
            self._seed_past(self.projects["vaddy-project-1"], index, seconds, final)

    def _seed_past(self, project: Project, index: int, seconds: float, final: str) -> None:
        """A scan of `project` that ran `seconds` and ended `index + 1` hours ago."""
        crawl = project.latest_crawl()
        assert crawl is not None
        ago = 3600.0 * (index + 1) + seconds
        scan = VAddyScan(
            id=f"{project.number}-{uuid.uuid4()}",
            project=project,
            crawl=crawl,
            checks=PLANS[self.plan],
            created=self.clock.monotonic() - ago - index,  # newest first by `created`
            created_at=self.clock.time() - ago,
            duration=seconds,
            final=final,
            completeness=100,
            alerts=0,
        )
        self.scans[scan.id] = scan

    def _occupy(self, project: Project, seconds: float) -> None:
        """Start another client's clean scan on `project` (the `busy-project` scenario)."""
        crawl = project.latest_crawl()
        assert crawl is not None
        scan = VAddyScan(
            id=f"{project.number}-{uuid.uuid4()}",
            project=project,
            crawl=crawl,
            checks=PLANS[self.plan],
            created=self.clock.monotonic(),
            created_at=self.clock.time(),
            duration=seconds,
            final="completed",
            completeness=100,
            alerts=0,
        )
        self.scans[scan.id] = scan

    # -- routing ([FS] "Endpoints (v2)") ----------------------------------------------------

    def register(self, router: Router) -> None:
        """See `Emulator.register`.

        NOTE: start and cancel share `POST /scan` ([FS] "POST /v2/scan — start/cancel") and a
        route has one category, so both are logged as `start`; tell them apart by the form's
        `action`. `scan/result` is both the status poll and the result (`poll`); the finished
        scans list stands in for `findings`.
        """
        v = self.prefix
        router.add("POST", f"{v}/scan", self._guard(self._scan_action), _start_or_cancel)
        router.add("GET", f"{v}/scan/result", self._guard(self._result), "poll")
        router.add("GET", f"{v}/scan/runcheck", self._guard(self._runcheck), "list")
        router.add("GET", f"{v}/scan/results/list", self._guard(self._results_list), "findings")
        router.add("GET", f"{v}/crawl", self._guard(self._crawl_search), "list")
        router.add("POST", f"{v}/crawl/delete", self._guard(self._crawl_delete), "other")

    def dispatch(self, route: Route, request: Request) -> Response:
        """Run the handler; refusals and malformed input answer `{"error_message"}`."""
        with self.lock:
            try:
                return route.handler(request)
            except _Refused as refused:
                return refused.response
            except BadRequest as exc:
                return self.error(400, str(exc), "BAD_REQUEST")

    def error(self, status: int, detail: str, code: str) -> Response:
        """Every error is `{"error_message": ...}` ([FS] each endpoint's 400)."""
        return respond(status, {"error_message": detail})

    def _guard(self, handler: Callable[[Fields], Response]) -> Handler:
        """Read the form (POST) or query (GET) and check `user` + key before `handler`."""

        def guarded(request: Request) -> Response:
            fields = _fields(request)
            _authorize(request, fields)
            return handler(fields)

        return guarded

    # -- scans ([FS] "POST /v2/scan", "GET /v2/scan/result", "GET /v2/scan/runcheck") --------

    def _scan_action(self, fields: Fields) -> Response:
        action = fields.get("action", "")
        if action == "start":
            return self._start(fields)
        if action == "cancel":
            return self._cancel(fields)
        raise _error(400, BAD_ACTION)

    def _start(self, fields: Fields) -> Response:
        project = self._project(fields)
        now = self.clock.monotonic()
        if self._running(project, now):
            raise _error(400, BUSY)  # one scan at a time per project ([FS] "Basics")
        crawl = _crawl_for(project, fields.get("crawl_id", ""))
        checks = self._checks(fields.get("scan_type", ""))
        scan = VAddyScan.create(
            project, crawl, checks, self.scenario, created=now, created_at=self.clock.time()
        )
        self.scans[scan.id] = scan
        return respond(200, {"scan_id": scan.id})

    def _checks(self, scan_type: str) -> tuple[str, ...]:
        """The requested codes, all in the plan; omitted or empty: every check of the plan."""
        allowed = PLANS[self.plan]
        if not scan_type.strip():  # go-vaddy sends `scan_type=` when unset ([FS] go-vaddy)
            return allowed
        codes = tuple(code.strip() for code in scan_type.split(","))
        if not all(code in allowed for code in codes):
            raise _error(400, BAD_SCAN_TYPE)
        return tuple(dict.fromkeys(codes))

    def _cancel(self, fields: Fields) -> Response:
        scan = self._scan(fields)
        now = self.clock.monotonic()
        if scan.status(now) != "scanning":
            raise _error(400, ALREADY_FINISHED)
        scan.cancel(now)
        return respond(200, {"scan_id": scan.id})

    def _result(self, fields: Fields) -> Response:
        return respond(200, self._scan(fields).result(self.clock.monotonic()))

    def _runcheck(self, fields: Fields) -> Response:
        project = self._project(fields)
        return respond(200, {"running_process": self._running(project, self.clock.monotonic())})

    def _running(self, project: Project, now: float) -> int:
        return sum(
            scan.project is project and scan.status(now) == "scanning"
            for scan in self.scans.values()
        )

    def _project(self, fields: Fields) -> Project:
        project = self.projects.get(fields.get("project_id", ""))
        if project is None:
            raise _error(400, UNKNOWN_PROJECT)
        return project

    def _scan(self, fields: Fields) -> VAddyScan:
        scan = self.scans.get(fields.get("scan_id", ""))
        if scan is None:
            raise _error(400, UNKNOWN_SCAN)
        return scan

    # -- lists and crawls ([FS] "GET /v2/crawl", "Other v2 endpoints") -------------------------

    def _results_list(self, fields: Fields) -> Response:
        project = self._numbered(fields)
        now = self.clock.monotonic()
        done = [
            scan
            for scan in sorted(self.scans.values(), key=lambda s: s.created, reverse=True)
            if scan.project is project and scan.status(now) != "scanning"
        ]
        items = [scan.list_item(now) for scan in done[:RESULTS_LIMIT]]
        body = {"project_number": project.number, "page": 1, "limit": RESULTS_LIMIT}
        return respond(200, {**body, "items": items})

    def _crawl_search(self, fields: Fields) -> Response:
        project = self._project(fields)
        page = 1 if self.ignore_page else _int_field(fields, "page", 1)
        sort = fields.get("sort") or "desc"
        if sort not in ("asc", "desc"):
            raise BadRequest("sort must be asc or desc")
        # INFERRED: the partial match ignores case.
        word = (fields.get("search_label") or "").lower()
        hits = [crawl for crawl in project.crawls if word in (crawl.label or "").lower()]
        hits.sort(key=lambda crawl: crawl.id, reverse=sort == "desc")
        items = [crawl.item() for crawl in hits[(page - 1) * CRAWL_LIMIT : page * CRAWL_LIMIT]]
        return respond(
            200, {"total": len(hits), "page": page, "limit": CRAWL_LIMIT, "items": items}
        )

    def _crawl_delete(self, fields: Fields) -> Response:
        project = self._numbered(fields, error=lambda: _error(400, "not match project"))
        crawl = project.crawl(_int_field(fields, "crawl_id", 0))
        if crawl is None:
            raise _error(404, "crawl_id not found.")
        project.crawls.remove(crawl)
        return respond(200, {"message": "ok"})

    def _numbered(
        self, fields: Fields, error: Callable[[], _Refused] = lambda: _error(400, UNKNOWN_NUMBER)
    ) -> Project:
        """The project named by `project_number` (the console URL's number, not `project_id`)."""
        raw = fields.get("project_number", "")
        number = int(raw) if raw.isdigit() else -1
        found = next((p for p in self.projects.values() if p.number == number), None)
        if found is None:
            raise error()
        return found


def past_scans(options: EmulatorOptions) -> list[tuple[float, str]]:
    """The scenario's `history` entries as (seconds, `completed` | `cancelled`), newest first."""
    entries = options.get("history", default=[])
    if not isinstance(entries, list):
        raise options.error("history", "expected a list of {duration, status}")
    past = []
    for entry in entries:
        if not isinstance(entry, dict) or set(entry) - {"duration", "status"}:
            raise options.error("history", "each entry is {duration: seconds, status: ...}")
        seconds = options.positive("history", entry.get("duration"))
        status = options.choice(
            "history", entry.get("status", "completed"), ("completed", "cancelled")
        )
        past.append((seconds, status))
    return past


def _fields(request: Request) -> Fields:
    """POST form fields or GET query parameters (first value of each)."""
    if request.method == "POST":
        return request.form()
    return {key: values[0] for key, values in request.query.items() if values}


def _authorize(request: Request, fields: Fields) -> None:
    """`user` plus the key, as `auth_key` or header `X-API-KEY` ([FS] "Basics").

    A wrong pair answers 401 with a small JSON body ([FS] "Emulator notes", INFERRED).
    """
    key = request.header("X-API-KEY") or fields.get("auth_key", "")
    if fields.get("user") != SANDBOX_USER or key != SANDBOX_AUTH_KEY:
        raise _error(401, "Unauthorized")


def _crawl_for(project: Project, raw: str) -> Crawl:
    """The crawl to scan with: `crawl_id`, or the newest; an empty value counts as absent."""
    if not project.crawls:
        raise _error(400, NO_CRAWL)
    if not raw.strip():
        crawl = project.latest_crawl()
        assert crawl is not None
        return crawl
    found = project.crawl(int(raw)) if raw.strip().isdigit() else None
    if found is None:
        raise _error(400, UNKNOWN_CRAWL)
    return found


def _int_field(fields: Fields, name: str, default: int) -> int:
    raw = fields.get(name) or ""
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise BadRequest(f"{name} must be a positive number")
    return int(raw)


def _start_or_cancel(request: Request) -> str:
    """`POST /v2/scan` starts or cancels, by its `action` field ([FS] "POST /v2/scan")."""
    try:
        action = request.form().get("action", "")
    except ValueError:
        action = ""
    return "cancel" if action == "cancel" else "start"
