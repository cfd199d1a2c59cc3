"""The domain, as every provider, the gate and every formatter share it.

`findings` holds what providers normalize (findings, scan results); the modules beside it hold the
other domain types. Formatters import from this package only.
"""

from __future__ import annotations

from scangate.model.baseline import BaselineEntry
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
from scangate.model.scans import ScanProgress, ScanRef
from scangate.model.settings import (
    ALL_FORMATS,
    MATCH_KEYS,
    GateSettings,
    IfRunning,
    IgnoreRule,
    OnTimeout,
    Policy,
    ProviderSettings,
    ReportSettings,
    ScanSettings,
)
from scangate.model.verdict import (
    BaselineState,
    Decision,
    Evaluation,
    Judgement,
    SeverityCounts,
    Verdict,
    incomplete_fails,
)

__all__ = [
    "ALL_FORMATS",
    "MATCH_KEYS",
    "GateSettings",
    "IfRunning",
    "IgnoreRule",
    "OnTimeout",
    "Policy",
    "ProviderSettings",
    "ReportSettings",
    "ScanSettings",
    "BaselineEntry",
    "BaselineState",
    "CountSummary",
    "Decision",
    "Evaluation",
    "Judgement",
    "SeverityCounts",
    "Verdict",
    "incomplete_fails",
    "EVIDENCE_LIMIT",
    "Finding",
    "QueueStats",
    "ScanId",
    "ScanProgress",
    "ScanRef",
    "ScanResult",
    "ScanStatus",
    "Severity",
    "cap_evidence",
]
