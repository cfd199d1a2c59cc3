"""The CyberOrigen API emulator, faithful to `providers/cyberorigen.md` (cited as [FS] below)."""

from __future__ import annotations

import math
import secrets
from collections.abc import Mapping
from typing import Any, ClassVar

from scangate.sandbox.clock import Clock, SystemClock
from scangate.sandbox.cyberorigen.auth import (
    PLANS,
    SANDBOX_API_KEY,
    SANDBOX_PASSWORD,
    SANDBOX_USERNAME,
    TOKEN_LIFETIME,
    Accounts,
    error_response,
    reject,
)
from scangate.sandbox.cyberorigen.scans import (
    ACTIVE,
    STATUSES,
    ScanRecord,
    create_problem,
    host_of,
    iso,
    next_month,
    pages,
)
from scangate.sandbox.options import EmulatorOptions
from scangate.sandbox.runtime import Emulator
from scangate.sandbox.scenario import FINDING_STATUSES, SEVERITIES, Scenario
from scangate.sandbox.wire import (
    BadRequest,
    Handler,
    Rejected,
    Request,
    Response,
    Route,
    Router,
    respond,
)

RATE_WINDOW = 3600.0
"""[FS] "Rate limits": the headers describe the hourly window (INFERRED there)."""
OPTIONS = frozenset(
    {
        "plan",
        "used_this_month",
        "token_lifetime",
        "rate_limit",
        "unlisted",
        "ignore_page",
        "latency",
    }
)
"""Keys a scenario's `options.cyberorigen` block may set."""


class CyberOrigenEmulator(Emulator):
    """CyberOrigen's scan API: auth, plans and quotas, a timed scan state machine, findings."""

    provider: ClassVar[str] = "cyberorigen"
    prefix: ClassVar[str] = "/api/v1"
    SANDBOX_ENV: ClassVar[Mapping[str, str]] = {"CYBERORIGEN_API_KEY": SANDBOX_API_KEY}
    SANDBOX_LOGIN_ENV: ClassVar[Mapping[str, str] | None] = {
        "CYBERORIGEN_USERNAME": SANDBOX_USERNAME,
        "CYBERORIGEN_PASSWORD": SANDBOX_PASSWORD,
    }

    def __init__(
        self,
        scenario: Scenario,
        *,
        clock: Clock | None = None,
        plan: str | None = None,
        used_this_month: int | None = None,
        token_lifetime: float | None = None,
        rate_limit: int | None = None,
        api_keys: Mapping[str, frozenset[str]] | None = None,
        latency: float | None = None,
    ) -> None:
        """Create a new `CyberOrigenEmulator` playing `scenario`.

        Keyword arguments override the scenario's `options.cyberorigen` block: `plan`
        (`startup`, `professional` (default) or `enterprise`), `used_this_month` (scans already
        used), `token_lifetime` (seconds), `rate_limit` (requests per hour instead of the
        plan's), `api_keys` (key to permissions) and `latency` (real seconds every answer but
        the health check is held back, as a network far away would: 0.02 makes a thousand pages
        read one after another take 20 s). Two broken servers are scenario options
        only: `unlisted: N` leaves the last N findings off the pages while `total` and the
        scan's counts still include them, and `ignore_page: true` answers page 1 to every page.
        """
        options = EmulatorOptions(scenario, self.provider, OPTIONS)
        self.plan = PLANS[
            options.choice("plan", options.get("plan", plan, "professional"), tuple(PLANS))
        ]
        self.used_this_month = int(options.get("used_this_month", used_this_month, 0))
        lifetime = scenario.token_lifetime or TOKEN_LIFETIME
        self.rate_limit = int(options.get("rate_limit", rate_limit, self.plan.requests_per_hour))
        self.unlisted = options.count("unlisted", options.get("unlisted", default=0))
        self.ignore_page = options.get("ignore_page", default=False) is True
        self.delay = options.seconds("latency", options.get("latency", latency, 0.0))
        self.accounts = Accounts(
            plan=self.plan,
            clock=clock or SystemClock(),
            token_lifetime=float(options.get("token_lifetime", token_lifetime, lifetime)),
            api_keys=api_keys,
        )
        self._scans: dict[str, ScanRecord] = {}
        self._schedules: dict[str, dict[str, Any]] = {}
        self._window_start: float | None = None
        self._window_reset = 0.0
        self._window_used = 0
        super().__init__(scenario, clock=self.accounts.clock)

    # -- routing --------------------------------------------------------------------------

    def register(self, router: Router) -> None:
        """See `Emulator.register`."""
        v, scan = self.prefix, r"(?P<scan_id>[^/]+)"
        router.add("GET", "/api/health", self._health, "health")  # outside /v1 [FS] "Basics"
        router.add("POST", f"{v}/auth/token", self.accounts.login, "auth")
        router.add("POST", f"{v}/auth/refresh", self.accounts.refresh, "auth")
        # NOTE: /scans/quota and /scans/schedules come before /scans/{id}, which would
        # otherwise capture them ([FS] "Emulator notes", route order).
        router.add("GET", f"{v}/scans/quota", self._guard("read:scans", self._quota), "quota")
        for method, permission, handler in (
            ("GET", "read:scans", self._schedule_list),
            ("POST", "write:scans", self._schedule_create),
        ):
            router.add(method, f"{v}/scans/schedules", self._guard(permission, handler), "schedule")
        router.add(
            "DELETE",
            f"{v}/scans/schedules/(?P<schedule_id>[^/]+)",
            self._guard("write:scans", self._schedule_delete),
            "schedule",
        )
        router.add("GET", f"{v}/scans", self._guard("read:scans", self._list), "list")
        router.add("POST", f"{v}/scans", self._guard("write:scans", self._create), "start")
        router.add("GET", f"{v}/scans/{scan}", self._guard("read:scans", self._get), "poll")
        router.add(
            "DELETE", f"{v}/scans/{scan}", self._guard("write:scans", self._delete), "cancel"
        )
        router.add(
            "GET",
            f"{v}/scans/{scan}/findings",
            self._guard("read:findings", self._findings),
            "findings",
        )

    def dispatch(self, route: Route, request: Request) -> Response:
        """Count the request against the hourly limit, then run the handler."""
        with self.lock:
            try:
                if route.category != "health":
                    self._throttle()
                return route.handler(request)
            except Rejected as rejected:
                return rejected.response
            except BadRequest as exc:  # FastAPI answers request validation errors with 422
                return self.error(422, str(exc), "VALIDATION_ERROR")

    def finalize(self, request: Request, response: Response) -> Response:
        """Add `X-RateLimit-*` to every response ([FS] "Rate limits")."""
        with self.lock:
            remaining = max(0, self.rate_limit - self._window_used)
            reset = self._window_reset or self.clock.time() + RATE_WINDOW
        return response.with_headers(
            {
                "X-RateLimit-Limit": str(self.rate_limit),
                "X-RateLimit-Remaining": str(remaining),
                "X-RateLimit-Reset": str(math.ceil(reset)),
            }
        )

    def error(self, status: int, detail: str, code: str) -> Response:
        """Every error is `{"detail", "error_code"}` ([FS] "Error format")."""
        return error_response(status, detail, code)

    def rate_limited(self, retry_after: float) -> Response:
        """A 429 with `Retry-After` and an exhausted `X-RateLimit-Remaining`."""
        reset = math.ceil(self.clock.time() + retry_after)
        return (
            super()
            .rate_limited(retry_after)
            .with_headers({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)})
        )

    def expire_credentials(self, request: Request) -> bool:
        """Expire every login token when `request` used one (the `token-expiry` fault)."""
        with self.lock:
            return self.accounts.expire(request)

    def latency(self, request: Request) -> float:
        """See `Emulator.latency`: the `latency` option on every answer but the health check
        (a liveness probe the sandbox's own start-up may use)."""
        return 0.0 if request.category == "health" else self.delay

    def _throttle(self) -> None:
        now = self.clock.monotonic()
        if self._window_start is None or now - self._window_start >= RATE_WINDOW:
            self._window_start, self._window_used = now, 0
            self._window_reset = self.clock.time() + RATE_WINDOW
        if self._window_used >= self.rate_limit:
            raise Rejected(self.rate_limited(self._window_reset - self.clock.time()))
        self._window_used += 1

    def _guard(self, permission: str, handler: Handler) -> Handler:
        def guarded(request: Request) -> Response:
            self.accounts.authorize(request, permission)
            return handler(request)

        return guarded

    # -- scans ([FS] "Scan endpoints") --------------------------------------------------------

    def _health(self, request: Request) -> Response:
        return respond(
            200, {"status": "healthy", "version": "0.1.0", "timestamp": iso(self.clock.time())}
        )

    def _quota(self, request: Request) -> Response:
        limit = self.plan.monthly
        remaining = None if limit is None else max(0, limit - self.used_this_month)
        body = {
            "plan": self.plan.name,
            "monthly_limit": limit,
            "used_this_month": self.used_this_month,
            "remaining": remaining,
            "resets_at": iso(next_month(self.clock.time())),
        }
        return respond(200, body)

    def _create(self, request: Request) -> Response:
        body = self._json_object(request)
        problem = create_problem(body)
        if problem:
            raise reject(422, problem, "VALIDATION_ERROR")
        if body["authorized"] is not True:
            raise reject(
                400,
                "You must attest that you are authorized to scan this target (authorized: true)",
                "AUTHORIZATION_REQUIRED",
            )
        self._check_limits()
        scan = self._new_scan(body["target"], body.get("scan_type", "full"))
        self.used_this_month += 1
        answer = {
            "id": scan.id,
            "target": scan.target,
            "scan_type": scan.scan_type,
            "status": "pending",
            "created_at": iso(scan.created_at),
            # Honest in sandbox seconds; the real API says 2700 for a 30-60 min full scan.
            "estimated_duration": math.ceil(scan.duration),
        }
        return respond(201, answer)  # status not documented: INFERRED 201 [FS] "POST /scans"

    def _json_object(self, request: Request) -> dict[str, Any]:
        body = request.json()
        if not isinstance(body, dict):
            raise reject(422, "The body must be a JSON object", "VALIDATION_ERROR")
        return body

    def _check_limits(self) -> None:
        """Per-plan concurrency and monthly quota; error codes INFERRED in [FS]."""
        now = self.clock.monotonic()
        active = sum(s.state(now).status in ACTIVE for s in self._scans.values())
        if self.plan.concurrent is not None and active >= self.plan.concurrent:
            raise reject(
                429,
                f"Concurrent scan limit reached ({self.plan.concurrent} on the "
                f"{self.plan.name} plan)",
                "CONCURRENT_SCAN_LIMIT",
            )
        if self.plan.monthly is not None and self.used_this_month >= self.plan.monthly:
            raise reject(
                403,
                f"Monthly scan quota exhausted ({self.plan.monthly} on the {self.plan.name} plan)",
                "QUOTA_EXCEEDED",
            )

    def _new_scan(self, target: str, scan_type: str) -> ScanRecord:
        # NOTE: every scan type takes the scenario's duration in the sandbox (the real ranges,
        # quick 5-10 min, full 30-60, compliance 15-30, would make the sandbox useless in CI).
        scan = ScanRecord.create(
            target=target,
            scan_type=scan_type,
            created=self.clock.monotonic(),
            created_at=self.clock.time(),
            duration=self.scenario.duration,
            final=self.scenario.final,
            completeness=self.scenario.completeness,
            findings=self.scenario.findings,
        )
        self._scans[scan.id] = scan
        return scan

    def _scan(self, request: Request) -> ScanRecord:
        scan = self._scans.get(request.params["scan_id"])
        if scan is None:
            raise reject(404, "Scan not found", "NOT_FOUND")
        return scan

    def _get(self, request: Request) -> Response:
        return respond(200, self._scan(request).detail(self.clock.monotonic()))

    def _delete(self, request: Request) -> Response:
        scan, now = self._scan(request), self.clock.monotonic()
        if scan.state(now).status in ACTIVE:
            scan.cancel(now)
            answer = {
                "id": scan.id,
                "status": "cancelled",
                "message": "Scan cancelled successfully",
            }
            return respond(200, answer)
        # INFERRED [FS] "DELETE": a finished scan is deleted; later GETs answer 404.
        del self._scans[scan.id]
        return Response(204)

    def _list(self, request: Request) -> Response:
        page, per_page = _paging(request)
        status = request.choice_arg("status", STATUSES)
        target = request.arg("target")
        since, until = request.date_arg("from_date"), request.date_arg("to_date")
        now = self.clock.monotonic()
        items = [
            scan.summary(now)
            for scan in sorted(self._scans.values(), key=lambda s: s.created, reverse=True)
            if (since is None or scan.created_at >= since)
            and (until is None or scan.created_at <= until)
            and (target is None or host_of(scan.target) == host_of(target))
        ]
        if status is not None:
            items = [item for item in items if item["status"] == status]
        body = {
            "items": items[(page - 1) * per_page : page * per_page],
            "total": len(items),
            "page": page,
            "per_page": per_page,
            "pages": pages(len(items), per_page),
        }
        return respond(200, body)

    def _findings(self, request: Request) -> Response:
        scan = self._scan(request)
        severity = request.choice_arg("severity", SEVERITIES)
        status = request.choice_arg("status", FINDING_STATUSES)
        page, per_page = _paging(request)
        page = 1 if self.ignore_page else page
        start = (page - 1) * per_page
        now = self.clock.monotonic()
        if severity is None and status is None:
            # Unfiltered (a client reading every finding): count and slice, never list all,
            # so each of a 100,000-finding scan's thousand pages costs one page.
            total = scan.detected(now)
            listed = max(0, total - self.unlisted)
            page_items = scan.bodies(min(start, listed), min(start + per_page, listed))
        else:
            items = [
                finding
                for finding in scan.found(now)
                if severity in (None, finding["severity"]) and status in (None, finding["status"])
            ]
            total = len(items)
            page_items = items[: max(0, total - self.unlisted)][start : start + per_page]
        # Only `items` and `total` are documented; page/per_page are INFERRED [FS] "findings".
        return respond(200, {"items": page_items, "total": total})

    def _schedule_list(self, request: Request) -> Response:
        self._require_schedules()
        return respond(
            200, {"items": list(self._schedules.values()), "total": len(self._schedules)}
        )

    def _schedule_create(self, request: Request) -> Response:
        self._require_schedules()
        body = self._json_object(request)
        if not isinstance(body.get("target"), str) or not body["target"]:
            raise reject(422, "target: field required", "VALIDATION_ERROR")
        schedule = {"id": f"schedule_{secrets.token_hex(6)}", **body}
        schedule["created_at"] = iso(self.clock.time())
        self._schedules[schedule["id"]] = schedule
        return respond(201, schedule)

    def _schedule_delete(self, request: Request) -> Response:
        self._require_schedules()
        if self._schedules.pop(request.params["schedule_id"], None) is None:
            raise reject(404, "Schedule not found", "NOT_FOUND")
        return Response(204)

    def _require_schedules(self) -> None:
        if self.plan.name == "startup":  # [FS] "Schedules (Professional/Enterprise)"
            raise reject(
                403,
                "Scheduled scans require the Professional or Enterprise plan",
                "PLAN_UPGRADE_REQUIRED",
            )


def _paging(request: Request) -> tuple[int, int]:
    """`page` (default 1) and `per_page` (default 20, max 100) ([FS] "list & pagination")."""
    return request.int_arg("page", 1, low=1), request.int_arg("per_page", 20, low=1, high=100)
