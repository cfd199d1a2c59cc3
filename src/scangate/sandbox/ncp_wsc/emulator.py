"""The NAVER Cloud Web Security Checker API emulator, faithful to `providers/ncp-wsc.md` ([FS])."""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import secrets
from collections import deque
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit

from scangate.sandbox.clock import Clock
from scangate.sandbox.ncp_wsc.jobs import CANCELLABLE, STOPPABLE, Job, create_problem
from scangate.sandbox.options import EmulatorOptions
from scangate.sandbox.runtime import Emulator
from scangate.sandbox.scenario import Fault, Scenario
from scangate.sandbox.wire import BadRequest, Rejected, Request, Response, Route, Router, respond

SANDBOX_ACCESS_KEY = "ncp_iam_BPAMKR1SandboxKey01"
"""The sandbox Sub Account's access key (an identifier, not a secret)."""
SANDBOX_SECRET_KEY = "ncp_iam_BPKMKR1SandboxSecretOpensOnlyTheSandbox"
"""Its secret key (not a secret either: it opens only the sandbox)."""
NO_WSC_ACCESS_KEY = "ncp_iam_BPAMKR1NoWscPermission"
"""A valid key pair whose Sub Account lacks WSC permissions (service error 169201)."""
NO_WSC_SECRET_KEY = "ncp_iam_BPKMKR1NoWscPermissionSecret00000000"
SKEW = 300.0
"""[FS] "Request signing": a timestamp more than 5 minutes from server time is refused."""
AUTH_DETAILS = "Invalid authentication information."
"""INFERRED [FS] "Errors" 1: bad signature, stale timestamp and unknown key all look alike."""
GATEWAY = {
    400: ("100", "Bad Request Exception"),
    401: ("200", "Authentication Failed"),
    403: ("210", "Permission Denied"),
    404: ("300", "Not Found Exception"),
    413: ("430", "Request Entity Too Large"),
    429: ("420", "Rate Limited"),
    500: ("900", "Unexpected Error"),
    503: ("500", "Endpoint Error"),
    504: ("510", "Endpoint Timeout"),
}
"""[FS] "Errors" 1: HTTP status → gateway `errorCode` (a string on the wire) and message."""
GATEWAY_CODES = {
    "100": "Bad Request Exception",
    "200": "Authentication Failed",
    "210": "Permission Denied",
    "300": "Not Found Exception",
    "400": "Quota Exceeded",
    "410": "Throttle Limited",
    "420": "Rate Limited",
    "430": "Request Entity Too Large",
    "500": "Endpoint Error",
    "510": "Endpoint Timeout",
    "900": "Unexpected Error",
}
SEARCH_KEYS = ("searchType", "searchKeyword", "statusCode", "limit", "page")
"""[FS] "searchJobs": every key is required."""
MAX_LIMIT = 100
"""INFERRED: no maximum `limit` is published."""
OPTIONS = frozenset(
    {
        "service_error_status",
        "create_returns_id",
        "throttle",
        "api_call_fail",
        "crowd",
        "unlisted",
        "ignore_page",
    }
)
"""Keys a scenario's `options.ncp-wsc` block may set."""
CROWD_TARGET = "https://staging.example.com/"
"""The start URL of the job `crowd` seeds, oldest of all (memo `CROWD_MEMO`)."""
CROWD_MEMO = "sandbox-crowd-target"


def sign(secret: str, method: str, uri: str, timestamp: str, access_key: str) -> str:
    """The expected `x-ncp-apigw-signature-v2` ([FS] "Request signing")."""
    message = "\n".join((f"{method} {uri}", timestamp, access_key)).encode("utf-8")
    return base64.b64encode(
        hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()
    ).decode()


def wrapper(payload: Any, key: str = "resources") -> dict[str, Any]:
    """The success wrapper; getReport says `resource`, the others `resources` ([FS])."""
    return {
        "returnCode": "0",
        "returnDesc": "Request Success",
        "returnMessage": "Success",
        key: payload,
    }


class NcpWscEmulator(Emulator):
    """WSC's job API: HMAC-signed requests, a timed job state machine, search and reports."""

    provider: ClassVar[str] = "ncp-wsc"
    prefix: ClassVar[str] = "/api/v1"
    SANDBOX_ENV: ClassVar[Mapping[str, str]] = {
        "NCP_ACCESS_KEY": SANDBOX_ACCESS_KEY,
        "NCP_SECRET_KEY": SANDBOX_SECRET_KEY,
    }

    def __init__(
        self,
        scenario: Scenario,
        *,
        clock: Clock | None = None,
        service_error_status: int | None = None,
        create_returns_id: bool | None = None,
        throttle: int | None = None,
        api_call_fail: int | None = None,
    ) -> None:
        """Create a new `NcpWscEmulator` playing `scenario`.

        Keyword arguments override the scenario's `options.ncp-wsc` block:
        `service_error_status` (400, the current English page, or 200, the older pages),
        `create_returns_id` (whether the createJob answer names the new `instanceNo`; INFERRED,
        off by default), `throttle` (requests per second before a 429 errorCode 410) and
        `api_call_fail` (every Nth search answers service error 901). Scenario options only:
        `crowd: N` seeds, before any client call, a job for `CROWD_TARGET` playing the
        scenario and then N jobs of other pages of its host without findings, all in step (a
        search for the target's running job then pages past N others); `unlisted: N` leaves
        the last N findings out of a report's `Details` while its counts include them.
        """
        options = EmulatorOptions(scenario, self.provider, OPTIONS)
        status = options.get("service_error_status", service_error_status)
        self.service_error_status = (
            400 if status is None else options.choice("service_error_status", status, (400, 200))
        )
        self.create_returns_id = options.flag(
            "create_returns_id", options.get("create_returns_id", create_returns_id)
        )
        self.throttle = _limit(options, "throttle", throttle, low=1)
        self.api_call_fail = _limit(options, "api_call_fail", api_call_fail, low=2)
        crowd = _limit(options, "crowd", None, low=0) or 0
        self.unlisted = _limit(options, "unlisted", None, low=0) or 0
        # `ignore_page: true`: the job search answers page 1 to every page (a list that never
        # ends), for the adapter's loop guard.
        self.ignore_page = options.flag("ignore_page", options.get("ignore_page", default=False))
        self.keys: dict[str, tuple[str, bool]] = {
            SANDBOX_ACCESS_KEY: (SANDBOX_SECRET_KEY, True),
            NO_WSC_ACCESS_KEY: (NO_WSC_SECRET_KEY, False),
        }
        """Access key → (secret key, may use WSC)."""
        self.jobs: dict[str, Job] = {}
        self.searches = 0
        self._next_id = 1_000_000_000 + secrets.randbelow(8_000_000_000)
        self._recent: deque[float] = deque()
        super().__init__(scenario, clock=clock)
        if crowd:
            self._seed_crowd(crowd)

    def _seed_crowd(self, count: int) -> None:
        """The `crowd` option: the target's job first (the oldest), then `count` others."""
        body = {"VulnItems": ["ALL"], "UserAgent": "PC Chrome", "Speed": "1"}
        self._new_job({**body, "StartUrl": CROWD_TARGET, "Memo": CROWD_MEMO})
        for n in range(1, count + 1):
            url = f"{CROWD_TARGET}crowd/{n}"
            job = self._new_job({**body, "StartUrl": url, "Memo": f"sandbox-crowd-{n}"})
            job.findings = ()

    # -- routing -----------------------------------------------------------------------------

    def register(self, router: Router) -> None:
        """See `Emulator.register` ([FS] "Endpoints")."""
        v, job = self.prefix, r"(?P<job>[^/]+)"
        router.add("PUT", f"{v}/job", self._create, "start")
        router.add("GET", f"{v}/jobs", self._list, "list")
        # searchJobs is how a job's state is read, so it is the poll.
        router.add("POST", f"{v}/jobs/search", self._search, "poll")
        router.add("PATCH", f"{v}/jobs/{job}/cancel", self._cancel, "cancel")
        router.add("PATCH", f"{v}/jobs/{job}/stop", self._stop, "cancel")
        router.add("GET", f"{v}/jobs/{job}/report", self._report, "findings")

    def dispatch(self, route: Route, request: Request) -> Response:
        """Check the signature and the throttle, then run the handler."""
        with self.lock:
            try:
                self._authenticate(request)
                self._throttle()
                return route.handler(request)
            except Rejected as rejected:
                return rejected.response
            except BadRequest as exc:
                return self.error(400, str(exc), "BAD_REQUEST")

    def error(self, status: int, detail: str, code: str) -> Response:
        """A gateway error `{"error": {"errorCode", "message", "details"}}` ([FS] "Errors" 1).

        `code` is used when it is a gateway code (`"410"`); otherwise the status decides.
        """
        if code in GATEWAY_CODES:
            gateway, message = code, GATEWAY_CODES[code]
        else:
            default = ("500", "Endpoint Error") if status >= 500 else ("900", "Unexpected Error")
            gateway, message = GATEWAY.get(status, default)
        body = {"error": {"errorCode": gateway, "message": message, "details": detail}}
        return respond(status, body)

    def service_error(self, code: int, message: str) -> Rejected:
        """A service error (numeric `errorCode`), HTTP 400/401 or 200 ([FS] "Errors" 2)."""
        status = 200 if self.service_error_status == 200 else (401 if code == 169201 else 400)
        return Rejected(respond(status, {"error": {"errorCode": code, "message": message}}))

    def route_error(self, status: int, request: Request) -> Response:
        """The gateway knows resources by method and path: anything else is not found."""
        return self.error(404, f"{request.method} {request.path}", "300")

    def fault_response(self, fault: Fault, request: Request) -> Response | None:
        """A `401` fault is the gateway's authentication failure (no `WWW-Authenticate`)."""
        if fault.kind == "401":
            return self.error(401, AUTH_DETAILS, "200")
        return super().fault_response(fault, request)

    # -- authentication and throttling --------------------------------------------------------

    def _authenticate(self, request: Request) -> None:
        """Verify the signature exactly: method, path + query, ms timestamp, access key."""
        timestamp = request.header("x-ncp-apigw-timestamp") or ""
        key = request.header("x-ncp-iam-access-key") or ""
        given = request.header("x-ncp-apigw-signature-v2") or ""
        entry = self.keys.get(key)
        if entry is None or not timestamp.isdigit() or not given:
            raise Rejected(self.error(401, AUTH_DETAILS, "200"))
        if abs(int(timestamp) / 1000 - self.clock.time()) > SKEW:
            raise Rejected(self.error(401, AUTH_DETAILS, "200"))
        secret, permitted = entry
        expected = sign(secret, request.method, _uri(request), timestamp, key)
        if not hmac.compare_digest(expected.encode(), given.encode()):
            raise Rejected(self.error(401, AUTH_DETAILS, "200"))
        if not permitted:
            raise self.service_error(169201, "Auth Check Error")

    def _throttle(self) -> None:
        if self.throttle is None:
            return
        now = self.clock.monotonic()
        while self._recent and self._recent[0] <= now - 1.0:
            self._recent.popleft()
        if len(self._recent) >= self.throttle:
            response = self.error(429, "Too many requests per second", "410")
            raise Rejected(response.with_headers({"Retry-After": "1"}))
        self._recent.append(now)

    # -- jobs ([FS] "createJob", "getJobs", "searchJobs", "cancelJob / stopJob") --------------

    def _create(self, request: Request) -> Response:
        body = request.json()
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        problem = create_problem(body)
        if problem:
            raise BadRequest(problem)
        if (urlsplit(body["StartUrl"]).hostname or "").endswith(".invalid"):
            raise self.service_error(160353, "URL Connection Error")
        master = body.get("MasterInstanceNo")
        if master is not None and self._code(self.jobs.get(master)) != 4:
            raise self.service_error(901, "API Call Fail")  # re-diagnosis of a completed job only
        job = self._new_job(body)
        return respond(
            200, wrapper({"instanceNo": job.instance_no} if self.create_returns_id else None)
        )

    def _new_job(self, body: Mapping[str, Any]) -> Job:
        self._next_id += 1
        job = Job(
            instance_no=str(self._next_id),
            start_url=body["StartUrl"],
            memo=body.get("Memo", ""),
            request=dict(body),
            created=self.clock.monotonic(),
            created_at=self.clock.time(),
            duration=self.scenario.duration,
            final=self.scenario.final,
            completeness=self.scenario.completeness,
            findings=self.scenario.findings,
        )
        self.jobs[job.instance_no] = job
        return job

    def _code(self, job: Job | None) -> int | None:
        return None if job is None else job.state(self.clock.monotonic()).code

    def _list(self, request: Request) -> Response:
        limit = request.int_arg("limit", 20, low=1, high=MAX_LIMIT)  # fin docs' defaults
        page = request.int_arg("page", 1, low=1)
        return respond(200, wrapper(self._page(self._matching("", "", None), limit, page)))

    def _search(self, request: Request) -> Response:
        self.searches += 1
        if self.api_call_fail and self.searches % self.api_call_fail == 0:
            raise self.service_error(901, "API Call Fail")
        body = request.json()
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        missing = [key for key in SEARCH_KEYS if key not in body]
        if missing:
            raise BadRequest(f"{', '.join(missing)}: required")
        kind, keyword = body["searchType"], body["searchKeyword"]
        if kind not in ("url", "memo", "") or not isinstance(keyword, str):
            raise BadRequest('searchType: "url", "memo" or ""; searchKeyword: a string')
        code = _status_code(body["statusCode"])
        limit = _positive(body["limit"], "limit", MAX_LIMIT)
        page = 1 if self.ignore_page else _positive(body["page"], "page", None)
        return respond(200, wrapper(self._page(self._matching(kind, keyword, code), limit, page)))

    def _matching(self, kind: str, keyword: str, code: int | None) -> list[Job]:
        """Jobs newest first (INFERRED [FS]); `url` and `memo` match substrings."""
        now = self.clock.monotonic()
        jobs = sorted(self.jobs.values(), key=lambda j: (j.created, j.instance_no), reverse=True)
        if kind == "url":
            jobs = [j for j in jobs if keyword.lower() in j.start_url.lower()]
        elif kind == "memo":
            jobs = [j for j in jobs if keyword in j.memo]
        return [j for j in jobs if code is None or j.state(now).code == code]

    def _page(self, jobs: list[Job], limit: int, page: int) -> dict[str, Any]:
        """One page, with the UI pager's block of 10 pages ([FS] "getJobs")."""
        now = self.clock.monotonic()
        pages = math.ceil(len(jobs) / limit)
        block = (page - 1) // 10 * 10 + 1
        return {
            "total_cnt": len(jobs),
            "total_page_cnt": pages,
            "current_start_page": block,
            "current_end_page": max(block, min(block + 9, pages)),
            "record_data": [j.record(now) for j in jobs[(page - 1) * limit : page * limit]],
        }

    def _job(self, request: Request) -> Job:
        job = self.jobs.get(request.params["job"])
        if job is None:
            raise self.service_error(901, "API Call Fail")  # [FS]: invalid id
        return job

    def _cancel(self, request: Request) -> Response:
        job = self._job(request)
        state = job.state(self.clock.monotonic())
        if state.code not in CANCELLABLE:
            raise self.service_error(901, "API Call Fail")  # INFERRED [FS]: wrong state
        job.cancelled_at = state.elapsed
        return respond(200, wrapper(None))

    def _stop(self, request: Request) -> Response:
        job = self._job(request)
        state = job.state(self.clock.monotonic())
        if state.code not in STOPPABLE:
            raise self.service_error(901, "API Call Fail")  # INFERRED [FS]: wrong state
        job.stopped_at = state.elapsed
        return respond(200, wrapper(None))

    def _report(self, request: Request) -> Response:
        job = self._job(request)
        now = self.clock.monotonic()
        if job.state(now).code != 4:
            raise self.service_error(901, "API Call Fail")  # INFERRED [FS]: unfinished job
        return respond(200, wrapper(job.report(now, self.unlisted), key="resource"))


def _uri(request: Request) -> str:
    """The signed URI: path plus query string.

    NOTE: `Request` keeps the parsed query only; it is re-encoded in the order received, which
    is exact for the plain `limit`/`page` values getJobs takes.
    """
    pairs = [(name, value) for name, values in request.query.items() for value in values]
    return request.path + (f"?{urlencode(pairs)}" if pairs else "")


def _status_code(value: Any) -> int | None:
    """`statusCode`: null or an integer (a string of digits is taken leniently)."""
    if value is None:
        return None
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise BadRequest("statusCode: null or a status code number")


def _positive(value: Any, name: str, high: int | None) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise BadRequest(f"{name}: a positive integer")
    if high is not None and value > high:
        raise BadRequest(f"{name}: at most {high}")
    return value


def _limit(options: EmulatorOptions, key: str, given: int | None, low: int) -> int | None:
    """An optional count setting: None (no limit) unless given or set."""
    value = options.get(key, given)
    return None if value is None else options.count(key, value, low=low)
