"""The CyberSec Pro API emulator, faithful to `providers/cybersecpro.md` (cited as [FS] below).

Its published reference [S0] and its implementation [R] disagree, so the emulator speaks either:
`shape: documented` (the default, as [FS] "Emulator notes" asks) or `shape: implementation`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

from scangate.sandbox.clock import Clock, SystemClock
from scangate.sandbox.cybersecpro.auth import (
    PLANS,
    SANDBOX_API_KEY,
    SANDBOX_EMAIL,
    SANDBOX_PASSWORD,
    Accounts,
    Plan,
    error_response,
    reject,
)
from scangate.sandbox.cybersecpro.limits import PlanLimiter, StartLimits
from scangate.sandbox.cybersecpro.scans import ACTIVE, ScanRecord, find_tool
from scangate.sandbox.options import EmulatorOptions
from scangate.sandbox.runtime import Emulator
from scangate.sandbox.scenario import Fault, Scenario
from scangate.sandbox.wire import BadRequest, Rejected, Request, Response, Route, Router, respond

SHAPES = ("documented", "implementation")
OPTIONS = frozenset(
    {
        *("shape", "plan", "token_lifetime", "result_error", "minute", "daily_scans"),
        *("unlisted", "history"),
    }
)
"""Keys a scenario's `options.cybersecpro` block may set (`unlisted: N`: see `_unlist`)."""
DEFAULT_PLAN = "professional"
"""API keys need the professional or enterprise plan [FS "Basics"]; the sandbox hands out one."""
IMPLEMENTATION_RETRY_AFTER = 60
"""[R `global_rate_limit.rs`]: `Retry-After: 60` whatever the wait."""
_PUBLIC = ("auth",)
"""Route categories that need no credentials (login and refresh are public [S0])."""


class CyberSecProEmulator(Emulator):
    """CyberSec Pro's scan API: login and keys, plan limits, a timed scan, two result shapes."""

    provider: ClassVar[str] = "cybersecpro"
    prefix: ClassVar[str] = "/api/v1"
    SANDBOX_ENV: ClassVar[Mapping[str, str]] = {"CYBERSECPRO_API_KEY": SANDBOX_API_KEY}
    SANDBOX_LOGIN_ENV: ClassVar[Mapping[str, str] | None] = {
        "CYBERSECPRO_EMAIL": SANDBOX_EMAIL,
        "CYBERSECPRO_PASSWORD": SANDBOX_PASSWORD,
    }

    def __init__(
        self,
        scenario: Scenario,
        *,
        clock: Clock | None = None,
        shape: str | None = None,
        plan: str | None = None,
        token_lifetime: float | None = None,
        result_error: str | None = None,
        minute: float | None = None,
        daily_scans: int | None = None,
    ) -> None:
        """Create a new `CyberSecProEmulator` playing `scenario`.

        Keyword arguments override the scenario's `options.cybersecpro` block: `shape`
        (`documented` or `implementation`), `plan` (`trial`, `starter`, `professional` (default)
        or `enterprise`), `token_lifetime` (seconds an access JWT lives; else the scenario's
        `token_lifetime`, else 1 hour) and `result_error` (the result endpoint then answers
        HTTP 200 `{"error": result_error}`, as the implementation does for some failures).

        `minute` (seconds, default 60) shortens the emulator's minute for every per-minute limit
        (the plan's requests and burst refill, 5 starts, 5 login attempts, the implementation's
        `Retry-After: 60`), keeping each count per minute: many jobs on one account can then be
        tested in seconds at the plan's ratios. `daily_scans` replaces the plan's daily scan
        limit (the trial's 3). Scenario option only: `history: [{duration: 1800}, {duration:
        60, status: cancelled}, ...]` seeds ended scans of `staging.example.com` (or an entry's
        `target`), newest first, one ending each hour before the emulator started.
        """
        options = EmulatorOptions(scenario, self.provider, OPTIONS)
        self.unlisted = options.count("unlisted", options.get("unlisted", default=0))
        self.shape = options.choice("shape", options.get("shape", shape, SHAPES[0]), SHAPES)
        self.plan: Plan = PLANS[
            options.choice("plan", options.get("plan", plan, DEFAULT_PLAN), tuple(PLANS))
        ]
        lifetime = options.get("token_lifetime", token_lifetime, scenario.token_lifetime)
        if lifetime is not None:
            lifetime = options.positive(
                "token_lifetime", lifetime, problem="must be a positive number of seconds"
            )
        self.result_error = options.get("result_error", result_error)
        self.minute = options.positive("minute", options.get("minute", minute, 60.0))
        daily = options.get("daily_scans", daily_scans)
        if daily is not None:
            daily = int(options.positive("daily_scans", daily))
        base_clock = clock or SystemClock()
        self.accounts = Accounts(
            plan=self.plan,
            clock=base_clock,
            documented=self.documented,
            minute=self.minute,
            **({"token_lifetime": lifetime} if lifetime else {}),
        )
        self.limiter = PlanLimiter(self.plan, base_clock, window=self.minute)
        self.starts = StartLimits(self.plan, base_clock, window=self.minute, daily=daily)
        self._scans: dict[str, ScanRecord] = {}
        super().__init__(scenario, clock=base_clock)
        for index, entry in enumerate(_past_scans(options)):
            self._seed_past(index, *entry)

    def _seed_past(self, index: int, seconds: float, final: str, target: str) -> None:
        """A scan of `target` that ran `seconds` and ended `index + 1` hours ago."""
        ago = 3600.0 * (index + 1) + seconds
        scan = ScanRecord.create(
            documented=self.documented,
            target=target,
            tool="nuclei",
            parameters={},
            times=(self.clock.monotonic() - ago, self.clock.time() - ago),
            duration=seconds,
            final=(final, 100 if final == "completed" else 0),
            findings=(),
            owner=(self.accounts.user_id, self.accounts.org_id),
        )
        self._scans[scan.id] = scan

    @property
    def documented(self) -> bool:
        """True in the published reference's shape, False in the implementation's."""
        return self.shape == "documented"

    @classmethod
    def sandbox_env(cls, scenario: Scenario | None = None) -> dict[str, str]:
        """The API key, or the login when the scenario uses tokens or a plan without API access."""
        plan = scenario.options_for(cls.provider).get("plan") if scenario else None
        if isinstance(plan, str) and plan in PLANS and not PLANS[plan].api_access:
            return dict(cls.SANDBOX_LOGIN_ENV or {})
        return super().sandbox_env(scenario)

    # -- routing --------------------------------------------------------------------------

    def register(self, router: Router) -> None:
        """See `Emulator.register` ([FS] "Scan endpoints"; `create` before `{id}`)."""
        v, scan = self.prefix, r"(?P<scan_id>[^/]+)"
        router.add("POST", f"{v}/auth/login", self.accounts.login, "auth")
        router.add("POST", f"{v}/auth/refresh", self.accounts.refresh, "auth")
        router.add("POST", f"{v}/scans/create", self._create, "start")
        router.add("GET", f"{v}/scans", self._list, "list")
        router.add("POST", f"{v}/scans", self._create, "start")  # same handler [R]
        router.add("GET", f"{v}/scans/{scan}", self._detail, "poll")
        router.add("GET", f"{v}/scans/{scan}/status", self._status, "poll")
        router.add("GET", f"{v}/scan/{scan}/result", self._result, "findings")
        router.add("POST", f"{v}/scans/{scan}/cancel", self._cancel, "cancel")
        router.add("POST", f"{v}/scan/{scan}/stop", self._cancel, "cancel")

    def dispatch(self, route: Route, request: Request) -> Response:
        """Count the request against the plan, check the credentials, then run the handler."""
        with self.lock:
            try:
                wait = self.limiter.admit()
                if wait is not None:
                    # [R] always says 60 s, whatever the wait; the documented limits say when.
                    flat = IMPLEMENTATION_RETRY_AFTER * self.minute / 60.0
                    return self.rate_limited(flat if not self.documented else wait)
                if route.category not in _PUBLIC:
                    self.accounts.authorize(request)
                return route.handler(request)
            except Rejected as rejected:
                return rejected.response
            except BadRequest as exc:
                return self.error(400, str(exc), "BAD_REQUEST")

    def finalize(self, request: Request, response: Response) -> Response:
        """Documented shape: `X-RateLimit-*` on every response [S0]; the implementation has none."""
        if not self.documented:
            return response
        with self.lock:
            return response.with_headers(self.limiter.headers())

    def error(self, status: int, detail: str, code: str) -> Response:
        """`{"error": ...}`; only the rate limiter adds a `code` ([FS] "Error format")."""
        return error_response(status, detail, code if code == "RATE_LIMITED" else None)

    def rate_limited(self, retry_after: float) -> Response:
        """[R]'s 429: `Retry-After`, and the wait in the body too."""
        seconds = math.ceil(retry_after)
        body = {
            "error": "Too many requests. Please slow down.",
            "code": "RATE_LIMITED",
            "retry_after_seconds": seconds,
        }
        headers = {"Retry-After": str(seconds)}
        if self.documented:
            reset = math.ceil(self.clock.time() + retry_after)
            headers.update({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)})
        return respond(429, body, headers)

    def expire_credentials(self, request: Request) -> bool:
        """Expire the access JWTs when `request` used one (the `token-expiry` fault)."""
        with self.lock:
            return self.accounts.expire(request)

    def fault_response(self, fault: Fault, request: Request) -> Response | None:
        """A 401 fault reads as the auth middleware's answer ([FS] "Auth failures")."""
        if fault.kind == "token-expiry" and not self.expire_credentials(request):
            return None
        if fault.kind in ("token-expiry", "401"):
            return error_response(401, "Invalid or expired token")
        return super().fault_response(fault, request)

    # -- scans ([FS] "Scan endpoints") --------------------------------------------------------

    def _create(self, request: Request) -> Response:
        body = request.json()
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        target = body.get("target")
        if not isinstance(target, str) or not 1 <= len(target.strip()) <= 500:
            raise reject(400, "Valid target required")
        wanted = body.get("tool") or body.get("tool_id")
        if not isinstance(wanted, str) or not wanted.strip():
            raise reject(400, "Tool name or ID required")
        tool = find_tool(wanted)
        if tool is None:
            raise reject(404, f"Tool not found: {wanted}")
        parameters = body.get("parameters", {})
        if not isinstance(parameters, dict):
            raise reject(400, "parameters must be an object")  # wording INFERRED
        refusal = self.starts.refusal()
        if refusal is not None:
            raise reject(429, refusal)
        scan = self._new_scan(target.strip(), tool, parameters)
        answer = scan.created_documented() if self.documented else scan.created_implementation()
        return respond(201, answer)

    def _new_scan(self, target: str, tool: str, parameters: Mapping[str, Any]) -> ScanRecord:
        # NOTE: every tool takes the scenario's duration in the sandbox.
        scan = ScanRecord.create(
            documented=self.documented,
            target=target,
            tool=tool,
            parameters=parameters,
            times=(self.clock.monotonic(), self.clock.time()),
            duration=self.scenario.duration,
            final=(self.scenario.final, self.scenario.completeness),
            findings=self.scenario.findings,
            owner=(self.accounts.user_id, self.accounts.org_id),
        )
        self._scans[scan.id] = scan
        return scan

    def _scan(self, request: Request) -> ScanRecord:
        scan = self._scans.get(request.params["scan_id"])
        if scan is None:
            raise reject(404, "Scan not found")
        return scan

    def _detail(self, request: Request) -> Response:
        return respond(200, {"scan": self._scan(request).detail(self.clock.monotonic())})

    def _status(self, request: Request) -> Response:
        scan = self._scans.get(request.params["scan_id"])
        if scan is None:
            # [R] answers an unknown id with HTTP 200 and an error body.
            return respond(200 if not self.documented else 404, {"error": "Scan not found"})
        status, _ = scan.state(self.clock.monotonic())
        return respond(200, {"scan_id": scan.id, "status": status})

    def _result(self, request: Request) -> Response:
        scan, now = self._scan(request), self.clock.monotonic()
        if self.result_error:
            return respond(200, {"error": self.result_error})
        body = scan.result_documented(now) if self.documented else scan.result_implementation(now)
        return respond(200, _unlist(body, self.unlisted))

    def _cancel(self, request: Request) -> Response:
        scan = self._scans.get(request.params["scan_id"])
        now = self.clock.monotonic()
        if scan is None or scan.state(now)[0] not in ACTIVE:
            raise reject(404, "Scan not found or already completed")
        scan.cancel(now)
        return respond(200, {"message": "Scan cancelled"})

    def _list(self, request: Request) -> Response:
        """Both pagination shapes [FS "List"], newest first unless the doc's `order=asc`."""
        page = request.int_arg("page", 1, low=1)
        default = 25 if self.documented else 20
        per_page = request.int_arg("per_page", default, low=1, high=100)
        now = self.clock.monotonic()
        scans = sorted(self._scans.values(), key=lambda s: s.created, reverse=True)
        if self.documented:
            request.choice_arg("sort", ("created_at",))
            if request.choice_arg("order", ("asc", "desc")) == "asc":
                scans.reverse()
        else:
            # [R] filters by `status` and ignores `sort`/`order`.
            wanted = request.arg("status")
            scans = [s for s in scans if wanted is None or s.state(now)[0] == wanted]
        items = [s.list_item(now) for s in scans[(page - 1) * per_page : page * per_page]]
        if not self.documented:
            body = {"scans": items, "total": len(scans), "page": page, "per_page": per_page}
            return respond(200, body)
        pages = math.ceil(len(scans) / per_page)
        pagination = {"page": page, "per_page": per_page, "total": len(scans), "total_pages": pages}
        return respond(200, {"data": items, "pagination": pagination})


def _past_scans(options: EmulatorOptions) -> list[tuple[float, str, str]]:
    """The scenario's `history` as (seconds, end state, target), newest first."""
    entries = options.get("history", default=[])
    if not isinstance(entries, list):
        raise options.error("history", "expected a list of {duration, status, target}")
    past = []
    for entry in entries:
        if not isinstance(entry, dict) or set(entry) - {"duration", "status", "target"}:
            raise options.error("history", "each entry is {duration: seconds, status, target}")
        seconds = options.positive("history", entry.get("duration"))
        final = options.choice(
            "history", entry.get("status", "completed"), ("completed", "failed", "cancelled")
        )
        past.append((seconds, final, str(entry.get("target", "staging.example.com"))))
    return past


def _unlist(body: dict[str, Any], count: int) -> dict[str, Any]:
    """The scenario option `unlisted: N`: a broken result listing N fewer vulnerabilities than
    its counts (`findings` [S0], the tool `summary` [R]) say."""
    execution = body.get("execution_result")
    holder = execution["findings"] if isinstance(execution, dict) else body
    listed = holder.get("vulnerabilities")
    if count and isinstance(listed, list):
        holder["vulnerabilities"] = listed[: max(0, len(listed) - count)]
    return body
