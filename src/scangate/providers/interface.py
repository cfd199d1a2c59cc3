"""The provider contract: what every scanner adapter implements, and what it declares."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

import requests

from scangate.http import HttpClient, Refusal
from scangate.model import ScanId, ScanResult, ScanStatus
from scangate.policy import ProviderSettings


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


@dataclass(frozen=True, kw_only=True)
class ScanRef:
    """A handle on one remote scan."""

    scan_id: ScanId
    target: str
    console_url: str = ""
    created_at: datetime | None = None
    extra: Mapping[str, str] = field(default_factory=dict)
    """Provider-private facts needed later (e.g. a resolved target id), as strings."""


@dataclass(frozen=True, kw_only=True)
class ScanProgress:
    """One status poll, normalized."""

    status: ScanStatus
    raw_status: str
    """The provider's own word or code, for logs."""
    progress: float | None = None
    """0-100 when the provider reports it."""
    phase: str = ""
    eta_seconds: float | None = None
    """Seconds until the provider expects the scan to finish, when it says."""
    completeness: int = 100
    message: str = ""


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
    credentials: ClassVar[tuple[CredentialSpec, ...]]
    """Accepted credential sets, in order of preference."""
    options_schema: ClassVar[Mapping[str, Any]]
    """JSON Schema (draft 2020-12) for `provider.options`."""
    capabilities: ClassVar[Capabilities]

    def __init__(
        self, *, settings: ProviderSettings, env: Mapping[str, str], http: HttpClient
    ) -> None:
        """Create a new provider from its `settings`, the credential `env` and an `http` client.

        The `env` holds only the variables of one of `credentials` (checked by the caller).
        """
        self.settings = settings
        self.env = env
        self.http = http
        http.refusal = type(self).refusal

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

    def attach(self, scan_id: str, target: str) -> ScanRef:
        """Return a handle on an existing scan by id (`scangate wait --scan-id`)."""
        return ScanRef(scan_id=ScanId(scan_id), target=target)
