"""The provider contract: what every scanner adapter implements, and what it declares.

An adapter declares what its HTTP client needs (credential headers or signatures, the secret
headers, its error format, refusals, what a 401 means) through the hooks below; `Provider`
builds the client from them (`http_contract`), so no adapter touches the client's settings.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, TypeVar

import requests

from scangate import registry
from scangate.errors import ProviderError
from scangate.http import Connection, HttpClient, HttpContract, Refusal, default_detail
from scangate.model import CountSummary, Finding, ProviderSettings, ScanId, ScanResult, ScanStatus
from scangate.model import ScanProgress as ScanProgress  # a domain type, re-exported for adapters
from scangate.model import ScanRef as ScanRef  # a domain type, re-exported for adapters
from scangate.ratelimit import RateLimitState, RateStats

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class Capabilities:
    """What a provider's API can do; the runner and `scangate providers` read these."""

    progress: bool = False
    """Status polls report a percentage."""
    eta: bool = False
    """Status polls (or the start answer) report an estimated duration or time left."""
    cancel: bool = True
    runcheck: bool = False
    """A dedicated "is a scan running for this target" call exists (VAddy)."""
    attach: bool = True
    """A running scan found for the target can be attached to (`if_running: attach`)."""
    per_finding_detail: bool = True
    """False for count-only providers (VAddy)."""
    rate_limit_headers: bool = False
    """Responses carry `X-RateLimit-*` headers."""


@dataclass(frozen=True, kw_only=True)
class CredentialSpec:
    """One accepted set of credential variables; a provider may accept several alternatives."""

    variables: tuple[str, ...]
    secret: frozenset[str]
    """The variables in `variables` whose values are secrets (redacted and masked)."""
    description: str

    @classmethod
    def key(cls, variable: str, description: str) -> CredentialSpec:
        """One secret variable (an API key)."""
        return cls(variables=(variable,), secret=frozenset({variable}), description=description)

    @classmethod
    def pair(cls, user: str, secret: str, description: str) -> CredentialSpec:
        """A user or key id (not secret) and its secret (a password, a secret key)."""
        return cls(variables=(user, secret), secret=frozenset({secret}), description=description)


@dataclass(frozen=True, kw_only=True)
class StartAttempt:
    """What the runner knows about a start request before sending it.

    It lets `Provider.find_started` recognise the scan an ambiguous start may have created.
    """

    target: str
    marker: str
    """A unique run id the provider may attach to the scan (NCP `Memo`)."""
    sent_at: datetime
    """UTC wall time just before the request was sent."""
    known_ids: frozenset[str] = frozenset()
    """Scans for the target that existed before the attempt."""


@dataclass(frozen=True)
class ScanHistory:
    """How long a target's past finished scans took: the poll schedule's first estimate.

    `durations` are seconds, newest first, of scans that ran to their end (cancelled ones left
    out where the provider tells them apart); the schedule takes their median and drops odd
    ones (`scangate.polling.typical_duration`). `source` names where they came from, for logs.
    """

    durations: tuple[float, ...]
    source: str = ""


def duration_between(start: datetime | None, end: datetime | None) -> float | None:
    """Seconds from `start` to `end`; None when either is missing or the end is not after it."""
    if start is None or end is None:
        return None
    seconds = (end - start).total_seconds()
    return seconds if seconds > 0 else None


class Provider(ABC):
    """A scanner adapter. Subclasses normalize wire JSON into `scangate.model` values.

    Per-item problems are data (skipped or defaulted fields); run-level problems raise a
    `ProviderError` subclass. Nothing downstream sees a provider's JSON.
    """

    name: ClassVar[str]
    """Registry and policy name (`cyberorigen`)."""
    display_name: ClassVar[str]
    """Product name (`CyberOrigen`), the SARIF driver name."""

    DEFAULT_BASE_URL: ClassVar[str]
    api_version: ClassVar[str] = ""
    """The version of the provider's API the adapter speaks (`v1`, as in its base URL); see
    `scanner_version`. Empty: not known (reports say `unknown`)."""
    credentials: ClassVar[tuple[CredentialSpec, ...]]
    """Accepted credential sets, in order of preference."""
    options_schema: ClassVar[Mapping[str, Any]]
    """JSON Schema (draft 2020-12) for `provider.options`."""
    capabilities: ClassVar[Capabilities]
    NOTHING_READ: ClassVar[tuple[list[Finding], dict[str, str], str]] = ([], {}, "")
    """(findings, notes, shortfall) of results that could not be read (see `salvage`)."""
    secret_headers: ClassVar[tuple[str, ...]] = ("Authorization", "X-API-Key")
    """Headers the HTTP client must never send to another host."""

    @staticmethod
    def schema_of(
        properties: Mapping[str, Any], *, not_together: tuple[str, ...] = ()
    ) -> Mapping[str, Any]:
        """The `options_schema` allowing these `properties` only (`not_together`: options that
        exclude each other)."""
        schema: dict[str, Any] = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": dict(properties),
            "additionalProperties": False,
        }
        if not_together:
            schema["not"] = {"required": list(not_together)}
        return schema

    def __init_subclass__(cls, *, registered: str = "", **kwargs: Any) -> None:
        """`class X(Provider, registered="name")` takes its names from `scangate.registry`."""
        super().__init_subclass__(**kwargs)
        if registered:
            cls.name = registered
            cls.display_name = registry.entry(registered).display_name

    def __init__(
        self, *, settings: ProviderSettings, env: Mapping[str, str], connection: Connection
    ) -> None:
        """Create a new provider from its `settings`, the credential `env` and a `connection`.

        The `env` holds only the variables of one of `credentials` (checked by the caller). The
        HTTP client is built here from `http_contract`, whose hooks are read when requests are
        sent: a subclass sets its own state after calling this.
        """
        self.settings = settings
        self.env = env
        self.redact = connection.redactor
        """The run's redactor: a secret learnt at run time (a token) is registered here."""
        self.http = HttpClient(connection, self.http_contract())

    def http_contract(self) -> HttpContract:
        """What the HTTP client needs from this provider, from the hooks below."""
        return HttpContract(
            provider=self.name,
            credential_hint=self.credential_hint(),
            secret_headers=self.secret_headers,
            error_detail=self.error_detail,
            refusal=self.refusal,
            authorize=self.authorize,
            renew=self.renew_credentials,
        )

    def credential_hint(self) -> str:
        """The credential variables a 401/403 diagnosis names (from `env`); default: all sets."""
        return ", or ".join(" + ".join(spec.variables) for spec in self.credentials)

    def authorize(self, method: str, url: str) -> Mapping[str, str]:
        """The credential headers of one request to `url` (without its `params`); default none.

        Asked for every send, so a renewed token or a fresh signature is used.
        """
        return {}

    def renew_credentials(self) -> bool:
        """After a 401: renew expired credentials and return True to send the request once
        more; default False (a 401 is final)."""
        return False

    @staticmethod
    def error_detail(response: requests.Response, body: Any) -> str:
        """The provider's own error text in a failed `response` (`body`: its parsed JSON)."""
        return default_detail(response, body)

    @staticmethod
    def refusal(response: requests.Response, body: Any) -> Refusal | None:
        """Read a refused request: a plan limit that clears by itself (`BUSY`: the start is
        queued), one that will not clear within the run (`FINAL`), or the request rate (`RATE`).

        `body` is the parsed JSON (None when it is not JSON). None means the default reading:
        a 429, or a 503 with `Retry-After`, is the request rate; anything else a plain error.
        """
        return None

    @property
    def options(self) -> Mapping[str, Any]:
        """The policy's `provider.options`."""
        return self.settings.options

    # What the runner asks of the connection (it never reaches into the client).

    def bind_run(
        self, *, time_left: Callable[[], float], on_wait: Callable[[float, str], None]
    ) -> None:
        """Bind every request to the run's deadline; `on_wait` hears of rate-limit waits."""
        self.http.watch(time_left=time_left, on_wait=on_wait)

    def now(self) -> float:
        """The wall clock the provider's answers are read against (epoch seconds)."""
        return self.http.clock()

    def rate_state(self) -> RateLimitState:
        """What the provider last said about its request budget."""
        return self.http.rate

    def rate_stats(self) -> RateStats:
        """What rate limits have cost so far."""
        return self.http.stats

    def requests_sent(self) -> int:
        """Requests sent so far, retries included."""
        return self.http.requests_sent

    def result(
        self,
        scan: ScanRef,
        progress: ScanProgress,
        *,
        findings: tuple[Finding, ...] | list[Finding] = (),
        started_at: datetime | None = None,
        finished_at: datetime | None = None,
        details: Mapping[str, str] | None = None,
        shortfall: str = "",
        count_summary: CountSummary | None = None,
        console_url: str | None = None,
        scanner_version: str = "",
    ) -> ScanResult:
        """The `ScanResult` of `scan`, ended as `progress` says, with what `fetch` read.

        `console_url` defaults to the scan's; `scanner_version` (the engine's version, when
        the provider's answer names it) to `self.scanner_version()`.
        """
        return ScanResult(
            provider=self.name,
            scanner=self.display_name,
            scan_id=scan.scan_id,
            target=scan.target,
            status=progress.status,
            completeness=progress.completeness,
            started_at=started_at,
            finished_at=finished_at,
            findings=tuple(findings),
            count_summary=count_summary,
            console_url=scan.console_url if console_url is None else console_url,
            message=progress.message,
            details=dict(details or {}),
            shortfall=shortfall,
            scanner_version=scanner_version or self.scanner_version(),
        )

    def scanner_version(self) -> str:
        """The version reports give the scanner when the provider names no engine version:
        that of its API (`API v1`), the rule of `ScanResult.scanner_version`.

        No provider's scan or findings answer names the engine's version (fact sheets); an
        adapter that learns it passes it to `result`.
        """
        return f"API {self.api_version}" if self.api_version else ""

    def salvage(self, scan: ScanRef, progress: ScanProgress, read: Callable[[], T]) -> T | None:
        """`read()`; for a scan that did not complete, None when reading fails (logged).

        A failed or cancelled scan still gives what can be read; a completed one must give all.
        """
        try:
            return read()
        except ProviderError as exc:
            if progress.status is ScanStatus.COMPLETED:
                raise
            logging.getLogger(type(self).__module__).warning(
                "%s scan %s: partial results only (%s)", self.display_name, scan.scan_id, exc
            )
            return None

    def preflight(self, target: str) -> None:
        """Check what can be checked before starting (quota, target lookup); default: nothing."""
        return None

    @abstractmethod
    def find_running(self, target: str) -> ScanRef | None:
        """Return a scan already pending or running for `target`, if any."""

    def known_scans(self, target: str) -> frozenset[str]:
        """Ids of the scans for `target` that exist now (recorded before a start attempt)."""
        return frozenset()

    @abstractmethod
    def start(self, attempt: StartAttempt) -> ScanRef:
        """Start one scan. Never retried blindly.

        Raise `AmbiguousStartError` when the request may have reached the provider but its
        answer was lost or unreadable; the runner then calls `find_started`.
        """

    @abstractmethod
    def find_started(self, attempt: StartAttempt) -> ScanRef | None:
        """Find the scan an ambiguous `attempt` created; None when it provably created none.

        Raise `ProviderError` when the lookup itself fails.
        """

    @abstractmethod
    def poll(self, scan: ScanRef) -> ScanProgress:
        """Return the scan's current state."""

    @abstractmethod
    def fetch(self, scan: ScanRef, progress: ScanProgress) -> ScanResult:
        """Return the scan's result, findings included, for the state `progress` it ended in."""

    @abstractmethod
    def cancel(self, scan: ScanRef, progress: ScanProgress | None) -> None:
        """Cancel or stop the remote scan (the right call for its last known state)."""

    def expected_duration(self, target: str) -> ScanHistory | None:
        """The durations of `target`'s past finished scans, from the provider's own lists.

        Optional (default: None, no history). Asked once per scan waited for; a failure is
        logged and the wait goes on without it, so it must not cost more than a request or
        a few (every request counts against a plan's budget).
        """
        return None

    def attach(self, scan_id: str, target: str) -> ScanRef:
        """Return a handle on an existing scan by id (`scangate wait --scan-id`)."""
        return ScanRef(scan_id=ScanId(scan_id), target=target)
