"""A remote scan as the runner and the poller see it: a handle on it, and one status poll."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from scangate.model.findings import ScanId, ScanStatus


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
