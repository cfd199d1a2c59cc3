"""What a provider operation may return: normalized values, checked field by field.

The type hints of `ScanRef`, `ScanProgress` and `ScanResult` promise these types; a parser fed
hostile JSON is exactly where they could be lying, so every field is checked at run time.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime

from scangate.formats.interface import Report
from scangate.formats.json import JsonFormatter
from scangate.gate import combine, evaluate
from scangate.model import EVIDENCE_LIMIT, Finding, ScanResult, ScanStatus, Severity
from scangate.policy import Policy, ProviderSettings, ScanSettings
from scangate.providers import ScanProgress, ScanRef

from .schemas import JsonSchema
from .specs import SENT


def _aware(moment: object) -> bool:
    return moment is None or (isinstance(moment, datetime) and moment.utcoffset() is not None)


def _strings(values: object) -> bool:
    return isinstance(values, tuple) and all(isinstance(v, str) for v in values)


def _string_map(values: object) -> bool:
    return isinstance(values, Mapping) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in values.items()
    )


def _all(kind: type, owner: object, *names: str) -> bool:
    """True when every field `names` of `owner` is a `kind` (the type hints may be lying)."""
    return all(isinstance(getattr(owner, name), kind) for name in names)


def check_ref(ref: ScanRef) -> None:
    """A handle names a scan and holds only strings."""
    assert _all(str, ref, "scan_id", "target", "console_url"), ref
    assert ref.scan_id.strip(), f"no scan id: {ref!r}"
    assert _aware(ref.created_at), ref.created_at
    assert _string_map(ref.extra), ref.extra


def check_progress(progress: ScanProgress) -> None:
    """A poll is one of the normalized states, with numbers in range."""
    assert isinstance(progress.status, ScanStatus)
    assert _all(str, progress, "raw_status", "phase", "message"), progress
    if progress.progress is not None:
        assert math.isfinite(progress.progress) and 0 <= progress.progress <= 100, progress
    if progress.eta_seconds is not None:
        assert math.isfinite(progress.eta_seconds) and progress.eta_seconds >= 0, progress
    assert type(progress.completeness) is int and 0 <= progress.completeness <= 100, progress


TEXT_FIELDS = (
    "fingerprint",
    "rule_id",
    "title",
    "url",
    "method",
    "parameter",
    "request",
    "response",
    "description",
    "remediation",
    "provider_status",
    "console_url",
)


def check_finding(finding: Finding) -> None:
    """Every field has its declared type, the numbers are in range, the evidence is capped."""
    assert _all(str, finding, *TEXT_FIELDS), finding
    assert finding.fingerprint, finding
    assert isinstance(finding.severity, Severity)
    if finding.cvss is not None:
        assert _all(float, finding, "cvss") and 0 <= finding.cvss <= 10, finding.cvss
    assert _strings(finding.cve_ids) and _strings(finding.references)
    assert isinstance(finding.cwe_ids, tuple)
    assert all(type(c) is int and c >= 0 for c in finding.cwe_ids), finding.cwe_ids
    assert type(finding.false_positive) is bool
    for evidence in (finding.request, finding.response):
        assert len(evidence) <= EVIDENCE_LIMIT + 100, len(evidence)


def check_result(result: ScanResult, schema: JsonSchema) -> None:
    """A result is normalized, and its `scangate.json` is valid against the shipped schema."""
    assert isinstance(result.status, ScanStatus)
    assert type(result.completeness) is int and 0 <= result.completeness <= 100
    assert _aware(result.started_at) and _aware(result.finished_at)
    assert _all(str, result, "provider", "scanner", "scan_id", "target", "console_url", "message")
    assert _string_map(result.details), result.details
    for finding in result.findings:
        check_finding(finding)
    summary = result.count_summary
    if summary is not None:
        assert type(summary.alert_count) is int and summary.alert_count >= 0
        assert type(summary.scan_count) is int and summary.scan_count >= 0
        assert _strings(summary.checks) and isinstance(summary.console_url, str)
    errors = schema.errors(json.loads(JsonFormatter().render(_report(result))))
    assert not errors, errors[:5]


def _report(result: ScanResult) -> Report:
    """`result` through the gate under a default policy, as `scangate run` would report it."""
    policy = Policy(
        provider=ProviderSettings(name=result.provider), scan=ScanSettings(target=result.target)
    )
    evaluation = evaluate(result, policy, None, SENT.date())
    return Report(evaluations=(evaluation,), verdict=combine([evaluation]))


def check_outcome(outcome: object, schema: JsonSchema) -> None:
    """What a provider operation may return, normalized: nothing else at all."""
    if isinstance(outcome, ScanRef):
        check_ref(outcome)
    elif isinstance(outcome, ScanProgress):
        check_progress(outcome)
    elif isinstance(outcome, ScanResult):
        check_result(outcome, schema)
    elif isinstance(outcome, frozenset):
        assert all(isinstance(i, str) and i for i in outcome), outcome
    else:
        assert outcome is None, f"unexpected outcome {outcome!r}"
