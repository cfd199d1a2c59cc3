"""The domain, as every provider, the gate and every formatter share it.

`findings` holds what providers normalize (findings, scan results); the modules beside it hold the
other domain types. Formatters import from this package only.
"""

from __future__ import annotations

from scangate.model.findings import (
    EVIDENCE_LIMIT,
    CountSummary,
    Finding,
    QueueStats,
    ScanId,
    ScanResult,
    ScanStatus,
    Severity,
    cap_evidence,
)

__all__ = [
    "CountSummary",
    "EVIDENCE_LIMIT",
    "Finding",
    "QueueStats",
    "ScanId",
    "ScanResult",
    "ScanStatus",
    "Severity",
    "cap_evidence",
]
