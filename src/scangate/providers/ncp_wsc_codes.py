"""NAVER Cloud WSC on the wire: request signing, the response envelope, error and status codes.

Facts come from `providers/ncp-wsc.md` (the "fact sheet"); section names are cited in comments.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from scangate.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderRateLimitError,
    ProviderUnavailableError,
    UnexpectedResponseError,
)
from scangate.model import ScanStatus
from scangate.providers import _wire as wire
from scangate.text import one_line

ACCESS_KEY = "NCP_ACCESS_KEY"


SECRET_KEY = "NCP_SECRET_KEY"


CREDENTIALS = f"{ACCESS_KEY} + {SECRET_KEY}"


PAGE_LIMIT = 50
"""`limit` of every search; the documented example uses 10 and no maximum is published."""


KST = timezone(timedelta(hours=9))
"""INFERRED: `start_date`/`end_date` carry no zone; NCP is a Korean service and its console
shows Korea Standard Time."""


@dataclass(frozen=True)
class _Code:
    """One documented `statusCode` (fact sheet "searchJobs")."""

    status: ScanStatus
    phase: str
    text: str
    """The English display string, INFERRED except "Diagnostics completed"."""


CODES: Mapping[int, _Code] = {
    12: _Code(ScanStatus.PENDING, "crawl pending", "URL collection pending"),
    13: _Code(ScanStatus.RUNNING, "crawling", "URL collection in progress"),
    14: _Code(ScanStatus.RUNNING, "crawl completed", "URL collection completed"),
    2: _Code(ScanStatus.RUNNING, "diagnosis pending", "Diagnostics pending"),
    3: _Code(ScanStatus.RUNNING, "diagnosing", "Diagnostics in progress"),
    4: _Code(ScanStatus.COMPLETED, "diagnosis completed", "Diagnostics completed"),
    5: _Code(ScanStatus.FAILED, "diagnosis failed", "Diagnostics failed"),
    15: _Code(ScanStatus.FAILED, "crawl failed", "URL collection failed"),
    91: _Code(ScanStatus.CANCELLED, "cancelled", "Diagnostics canceled"),
    # Stopping is as good as stopped for a gate: the job will not complete (fact sheet
    # "cancelJob / stopJob").
    92: _Code(ScanStatus.CANCELLED, "stopping", "Stopping"),
    93: _Code(ScanStatus.CANCELLED, "stopped", "Job stopped"),
}


FLOW = (12, 13, 14, 2, 3, 4)
"""The normal order: crawl pending, crawling, crawled, diagnosis pending, diagnosing, done
(INFERRED in the fact sheet "Emulator notes" from `Crawl_Time` preceding `Scan_Time`)."""


ENDINGS = (5, 15, 91, 92, 93)
"""The codes a job ends in other than 4 (fact sheet "searchJobs": terminal 4, 5, 15, 91, 93)."""


ACTIVE = (12, 13, 14, 2, 3)


PENDING_CODES = (12, 14, 2)
"""cancelJob applies to jobs not started (12, 2); 14 is the moment between crawl and diagnosis."""


RUNNING_CODES = (13, 3)
"""stopJob applies to jobs in progress."""


BUTTON_HINTS = {"report": 4, "cancel": 91, "terminate": 93, "cause": 5}
"""`result_button` values and the code each suggests (fact sheet "getJobs")."""


TEXT_HINTS = {code.text.lower(): number for number, code in CODES.items()}


TEXT_HINTS.update({"diagnostics cancelled": 91, "job stopping": 92})


GATEWAY: Mapping[str, tuple[type[ProviderError], str, str]] = {
    "100": (ProviderError, "refused the request as malformed", ""),
    "200": (ProviderAuthError, "rejected the credentials", f"check {CREDENTIALS}"),
    "210": (
        ProviderAuthError,
        "denied permission",
        f"the Sub Account of {ACCESS_KEY} needs permission for Web Security Checker",
    ),
    "300": (ProviderError, "has no such API", "check provider.base_url (it ends in /api/v1)"),
    "400": (ProviderRateLimitError, "quota exceeded", "wait for the API quota to reset"),
    "410": (ProviderRateLimitError, "throttled the request", "lower the request rate"),
    "420": (ProviderRateLimitError, "rate-limited the request", "lower the request rate"),
    "430": (ProviderError, "refused a request body as too large", ""),
    "500": (ProviderUnavailableError, "endpoint error", "NCP may be down; try again later"),
    "510": (ProviderUnavailableError, "endpoint timeout", "NCP may be down; try again later"),
    "900": (ProviderUnavailableError, "unexpected gateway error", "try again later"),
}
"""API Gateway `errorCode`s (fact sheet "Errors" 1), mostly strings on the wire."""


SERVICE: Mapping[str, tuple[type[ProviderError], str, str]] = {
    "901": (
        ProviderError,
        "API call failed (temporary, or an unknown job id)",
        "try again later; if it persists, check the job id in the WSC console",
    ),
    "169201": (
        ProviderAuthError,
        "auth check error: no permission for Web Security Checker",
        f"give the Sub Account of {ACCESS_KEY} WSC permissions; check {CREDENTIALS}",
    ),
    "169202": (
        ProviderAuthError,
        "user check error: account verification failed",
        f"check that WSC is subscribed in the NCP console and {CREDENTIALS} belong to it",
    ),
    "160331": (
        ProviderError,
        "action URL check error",
        "the login action URL configured for the target must not contain http/https",
    ),
    "160332": (
        ProviderError,
        "parameter check error: disallowed characters in the ID/PW parameters",
        "fix the login ID/PW parameters configured for the target",
    ),
    "160351": (
        ProviderError,
        "the login to the target failed",
        "supply a session cookie in provider.options.headers instead",
    ),
    "160353": (
        ProviderError,
        "cannot connect to the start URL",
        "WSC only diagnoses servers created on NCP and reachable from it; check scan.target",
    ),
}
"""Service `errorCode`s (fact sheet "Errors" 2), numbers on the wire; the public list is cut."""


class ApiCallFailError(ProviderError):
    """Service error 901 "API Call Fail": temporary, or a job id unknown or in the wrong state."""


def signature(secret: str, method: str, uri: str, timestamp: str, access_key: str) -> str:
    """The `x-ncp-apigw-signature-v2` value (fact sheet "Request signing").

    Base64(HMAC-SHA256(key = secret, msg = "METHOD URI\\nTIMESTAMP\\nACCESSKEY")), where `uri` is
    the path from `/api/v1` including the query string.
    """
    message = f"{method.upper()} {uri}\n{timestamp}\n{access_key}"
    digest = hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


MALFORMED = object()


def parse(response: requests.Response) -> Any:
    """The JSON body, None when empty, `MALFORMED` when unreadable."""
    if not response.content:
        return None
    try:
        return response.json()
    except (ValueError, RecursionError):  # RecursionError: nested past the decoder's limit
        return MALFORMED


def error_of(body: Any) -> tuple[str, str, str] | None:
    """(code, message, details) of an error body; None for a success.

    Gateway: `{"error": {"errorCode": "200", "message", "details"}}`; service: the same with a
    numeric code; a wrapper whose `returnCode` is not 0 counts too (fact sheet "Errors").
    """
    if not isinstance(body, Mapping):
        return None
    error = body.get("error")
    if isinstance(error, Mapping):
        code = code_text(error.get("errorCode")) or "?"
        return code, wire.text(error.get("message")), wire.text(error.get("details"))
    code = code_text(body.get("returnCode"))
    if code and code != "0":
        message = wire.text(body.get("returnMessage")) or wire.text(body.get("returnDesc"))
        return code, message, ""
    return None


def status_code(status: int) -> tuple[str, str, str] | None:
    """A gateway code for an error status without an NCP error body (a proxy's 401 page)."""
    if status == 401:
        return "200", "Authentication Failed", ""
    if status == 403:
        return "210", "Permission Denied", ""
    return None


def payload(body: Any) -> Any:
    """The success payload: `resources`, or `resource` for getReport (fact sheet)."""
    if body is None:
        return None
    if not isinstance(body, Mapping):
        raise UnexpectedResponseError("ncp-wsc answered with JSON that is not an object")
    if "resources" in body:
        return body["resources"]
    return body.get("resource")


def records(payload: Any, page: int) -> tuple[list[Mapping[str, Any]], int | None]:
    """The `record_data` of a getJobs/searchJobs answer and its page count (None: unknown)."""
    if payload is None:
        return [], 0
    if isinstance(payload, list):
        return [r for r in payload if isinstance(r, Mapping)], page
    if not isinstance(payload, Mapping):
        raise UnexpectedResponseError("NCP WSC job list is not an object")
    data = payload.get("record_data")
    if data is None:
        data = []
    if not isinstance(data, list):
        raise UnexpectedResponseError("NCP WSC job list has no `record_data` list")
    records = [r for r in data if isinstance(r, Mapping)]
    pages = wire.integer(payload.get("total_page_cnt"))
    if pages is None:
        total = wire.integer(payload.get("total_cnt"))
        pages = math.ceil(total / PAGE_LIMIT) if total is not None else None
    return records, pages


def page_signature(records: list[Mapping[str, Any]]) -> tuple[str, ...]:
    """What tells one page of jobs from another, for `PageGuard`."""
    return tuple(job_id(record) or repr(record) for record in records)


def new_id(payload: Any) -> str:
    """The new job's `instanceNo`, when the createJob answer carries it (INFERRED)."""
    if isinstance(payload, list) and payload:
        payload = payload[0]
    if isinstance(payload, Mapping):
        return job_id(payload)
    text = code_text(payload)
    return text if text.isdigit() else ""


def job_id(record: Mapping[str, Any]) -> str:
    for key in ("instanceNo", "instance_no", "InstanceNo"):
        text = code_text(record.get(key))
        if text:
            return text
    return ""


def hint(record: Mapping[str, Any]) -> int | None:
    """The code a record's display string or `result_button` suggests, if any."""
    text = " ".join(wire.text(record.get("status")).lower().split())
    if text in TEXT_HINTS:
        return TEXT_HINTS[text]
    return BUTTON_HINTS.get(wire.text(record.get("result_button")).lower())


def candidates(last: int | None, hint: int | None) -> list[int]:
    """Codes to search for, likeliest first: the hint, what follows `last`, then the rest."""
    order: list[int] = [] if hint is None else [hint]
    if last in FLOW:
        order += [*FLOW[FLOW.index(last) + 1 :], *ENDINGS]
    order += [*FLOW, *ENDINGS]
    return [code for n, code in enumerate(order) if code != last and code not in order[:n]]


def ending(code: int, record: Mapping[str, Any]) -> str:
    reason = one_line(wire.text(record.get("result_desc")), 300)
    what = {
        5: "the diagnosis failed",
        15: "the URL collection (crawl) failed",
        91: "the job was cancelled",
        92: "the job is being stopped",
        93: "the job was stopped",
    }[code]
    return f"NCP WSC: {what} (statusCode {code})" + (f": {reason}" if reason else "")


def clock_skew(response: requests.Response, now: float) -> float | None:
    """Seconds the gateway's `Date` is ahead of our clock; None without a usable header."""
    try:
        date = parsedate_to_datetime(response.headers.get("Date", ""))
    except (TypeError, ValueError, IndexError):
        return None
    if date.tzinfo is None:
        return None
    return date.timestamp() - now


def same_url(left: str, right: str) -> bool:
    """True when two start URLs name the same page (case of scheme/host, default port, `/`)."""
    return _url_key(left) == _url_key(right)


def _url_key(url: str) -> str:
    text = url.strip()
    try:
        parts = urlsplit(text if "://" in text else "//" + text)
        port = parts.port
    except ValueError:
        return text.lower()
    scheme = (parts.scheme or "http").lower()
    default = {"http": 80, "https": 443}.get(scheme)
    netloc = (parts.hostname or "") + (f":{port}" if port and port != default else "")
    query = f"?{parts.query}" if parts.query else ""
    return f"{scheme}://{netloc}{parts.path.rstrip('/') or '/'}{query}"


def kst(value: Any) -> datetime | None:
    """`"YYYY-MM-DD hh:mm:ss"` (Korea time, INFERRED) as an aware UTC datetime."""
    text = wire.text(value)
    if not text:
        return None
    for shape in ("%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S"):
        try:
            moment = datetime.strptime(text, shape)
        except ValueError:
            continue
        try:
            return moment.replace(tzinfo=KST).astimezone(UTC)
        except OverflowError:
            return None  # 0001-01-01 in Korea is still year 0 in UTC
    return None


def code_text(value: Any) -> str:
    """A code or id as text, `901` and `"901"` and `901.0` alike (string-typed numbers)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return wire.text(value)
