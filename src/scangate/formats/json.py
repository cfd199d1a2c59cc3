"""The `scangate.json` results document: every scan result plus the gate's decisions on it.

The document is versioned (`"scangate_results": 1`) and described by the JSON Schema shipped in
`scangate/schemas/results.json`. It carries everything needed to rebuild each `ScanResult`
exactly, so `scangate gate --results` can re-gate and merge saved results (`scangate.results`).

The keys of dated enforcement and of expiring ignore entries (issue 20) are written only when
they say something: `gate.enforce_from` and each scan's `deferred_days` when the policy sets
`enforce_from`, `expiring_ignores` when an entry runs out soon. Without them the document is
the one earlier versions wrote and read.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from scangate.formats.interface import Formatter, Report
from scangate.model import (
    BaselineEntry,
    CountSummary,
    Evaluation,
    Finding,
    GateSettings,
    IgnoreRule,
    Judgement,
    QueueStats,
    ScanResult,
    Severity,
    SeverityCounts,
)
from scangate.text import json_safe

RESULTS_VERSION = 1
"""The value of `scangate_results`; bumped on any change that old readers would misread."""


class JsonFormatter(Formatter):
    """Renders a `Report` as the `scangate.json` results document."""

    name = "json"
    filename = "scangate.json"

    def chunks(self, report: Report) -> Iterator[str]:
        """See `Formatter.chunks`: the head, then each scan with one finding per line.

        No `indent`: machines read this file (`scangate gate --results`), and json's C encoder
        only runs without it. A finding per line keeps the file greppable and diffable.
        """
        head = {
            "scangate_results": RESULTS_VERSION,
            "tool": {"name": "scangate", "version": report.tool_version},
            "verdict": report.verdict.value,
            "interrupted": report.interrupted,
            "gate": _gate_settings(report.gate),
        }
        # No sort_keys: the fixed order above reads better, and every mapping in the document is
        # built in a fixed order or sorted, so the output is deterministic all the same.
        yield _open(head, "scans")
        for index, evaluation in enumerate(report.evaluations):
            yield from _scan(evaluation, last=index == len(report.evaluations) - 1)
        yield "]}\n"


_ENCODE = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode
"""One encoder for every piece; `check_circular` off as the pieces are fresh trees."""


def _open(mapping: dict[str, Any], key: str) -> str:
    """`mapping` encoded with its closing brace replaced by `, "key": [`, to stream a list.

    `mapping` is never empty, so dropping the encoder's final `}` leaves valid JSON to extend.
    """
    return f"{_ENCODE(_sanitize(mapping))[:-1]}, {_ENCODE(key)}: [\n"


def _sanitize(value: Any) -> Any:
    """Apply `json_safe` to every string, key or value, so the text always encodes as UTF-8.

    Only for the small parts of the document: findings are sanitized by the model already
    (`text.model_text`), and `_finding` treats the two strings that are not (see there).
    """
    if isinstance(value, str):
        return json_safe(value)
    if isinstance(value, dict):
        return {json_safe(k): _sanitize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_sanitize(v) for v in value]
    return value


def iso_utc(moment: datetime | None) -> str | None:
    """ISO-8601 in UTC with a `Z` suffix; a naive datetime is taken to be UTC already."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _gate_settings(gate: GateSettings) -> dict[str, Any]:
    return {
        "fail_on": gate.fail_on.label if gate.fail_on is not None else None,
        "max": {s.label: gate.max[s] for s in sorted(gate.max, reverse=True)},
        "warn_on": gate.warn_on.label if gate.warn_on is not None else None,
        "new_only": gate.new_only,
        "fail_on_incomplete": gate.fail_on_incomplete,
        **(
            {"enforce_from": gate.enforce_from.isoformat()} if gate.enforce_from is not None else {}
        ),
    }


def _scan(evaluation: Evaluation, *, last: bool) -> Iterator[str]:
    """One scan object: its fields, its findings one per line, then the gate's evaluation."""
    result = evaluation.result
    yield _open(_result_fields(result), "findings")
    separator = ""
    for finding, judgement in _pair(result, evaluation.judgements):
        yield separator + _ENCODE(_finding(finding, judgement))
        separator = ",\n"
    end = "\n" if separator else ""  # after the last finding's line, if there is one
    gate = _ENCODE(_sanitize(_evaluation(evaluation)))
    yield f"{end}], {_ENCODE('gate')}: {gate}}}{'' if last else ','}\n"


def _result_fields(result: ScanResult) -> dict[str, Any]:
    fields = {
        "provider": result.provider,
        "scanner": result.scanner,
        "scanner_version": result.scanner_version,
        "scan_id": result.scan_id,
        "target": result.target,
        "status": result.status.value,
        "completeness": result.completeness,
        "started_at": iso_utc(result.started_at),
        "finished_at": iso_utc(result.finished_at),
        "console_url": result.console_url,
        "message": result.message,
        "shortfall": result.shortfall,
        "details": {k: result.details[k] for k in sorted(result.details)},
        "count_summary": _count_summary(result.count_summary),
    }
    if result.queue is not None:
        fields["queue"] = _queue(result.queue)
    return fields


def _queue(stats: QueueStats) -> dict[str, Any]:
    """What the plan's limits cost the run (issue 14): teams see when they need a bigger plan."""
    return {
        "queued_seconds": stats.queued_seconds,
        "throttled_seconds": stats.throttled_seconds,
        "retries": stats.retries,
        "rate_limited": stats.rate_limited,
        "reason": stats.reason,
    }


def _count_summary(summary: CountSummary | None) -> dict[str, Any] | None:
    if summary is None:
        return None
    return {
        "alert_count": summary.alert_count,
        "scan_count": summary.scan_count,
        "checks": list(summary.checks),
        "console_url": summary.console_url,
    }


def _pair(
    result: ScanResult, judgements: tuple[Judgement, ...]
) -> Iterator[tuple[Finding, Judgement | None]]:
    """Yield each finding in the result's own order with its judgement.

    Judgements are sorted by the gate, findings keep the provider's order (the round trip must
    rebuild the result exactly), so they are matched by value; equal findings get equal
    decisions from the gate, so which of them takes which judgement does not matter.
    """
    pending: dict[Finding, list[Judgement]] = {}
    for judgement in reversed(judgements):
        pending.setdefault(judgement.finding, []).append(judgement)
    for finding in result.findings:
        queue = pending.get(finding)
        yield finding, (queue.pop() if queue else None)


def _finding(finding: Finding, judgement: Judgement | None) -> dict[str, Any]:
    cvss = finding.cvss
    # Every text field passed `text.model_text` when the finding was made, but the fingerprint
    # (scangate's own, or a results file's) and the gate's reason (which quotes the policy).
    return {
        "fingerprint": json_safe(finding.fingerprint),
        "rule_id": finding.rule_id,
        "title": finding.title,
        "severity": finding.severity.label,
        "url": finding.url,
        "method": finding.method,
        "parameter": finding.parameter,
        # JSON has no NaN or infinity; a provider sending one has sent no score.
        "cvss": cvss if cvss is not None and math.isfinite(cvss) else None,
        "cve_ids": list(finding.cve_ids),
        "cwe_ids": list(finding.cwe_ids),
        "request": finding.request,
        "response": finding.response,
        "description": finding.description,
        "remediation": finding.remediation,
        "references": list(finding.references),
        "provider_status": finding.provider_status,
        "false_positive": finding.false_positive,
        "console_url": finding.console_url,
        "gate": _judgement(judgement),
    }


def _judgement(judgement: Judgement | None) -> dict[str, Any] | None:
    if judgement is None:
        return None
    state, entry = judgement.baseline_state, judgement.baseline_entry
    return {
        "decision": judgement.decision.value,
        "reason": json_safe(judgement.reason),
        "ignore_index": judgement.ignore_index,
        "baseline_state": state.value if state is not None else None,
        "baseline_severity": entry.severity.label if entry is not None else None,
    }


def _evaluation(evaluation: Evaluation) -> dict[str, Any]:
    document: dict[str, Any] = {
        "verdict": evaluation.verdict.value,
        "reasons": list(evaluation.reasons),
        "has_baseline": evaluation.has_baseline,
        "counts": _counts(evaluation.counts),
        "expired_ignores": [_ignore(e) for e in evaluation.expired_ignores],
        "unused_ignores": [_ignore(e) for e in evaluation.unused_ignores],
        "fixed": [_baseline_entry(e) for e in evaluation.fixed],
    }
    if evaluation.expiring_ignores:
        document["expiring_ignores"] = [_ignore(e) for e in evaluation.expiring_ignores]
    if evaluation.enforce_from is not None:
        # null once the gate is enforced: the findings above fail, none is deferred.
        document["deferred_days"] = evaluation.deferred_days
    return document


def _counts(counts: Mapping[Severity, SeverityCounts]) -> dict[str, dict[str, int]]:
    empty = SeverityCounts()
    return {s.label: asdict(counts.get(s, empty)) for s in sorted(Severity, reverse=True)}


def _ignore(entry: IgnoreRule) -> dict[str, Any]:
    keys = ("rule", "title", "cve", "cwe", "url", "param", "fingerprint")
    return {
        "index": entry.index,
        "reason": entry.reason,
        "expires": entry.expires.isoformat() if entry.expires is not None else None,
        "match": {k: getattr(entry, k) for k in keys if getattr(entry, k) is not None},
    }


def _baseline_entry(entry: BaselineEntry) -> dict[str, Any]:
    return {
        "fingerprint": entry.fingerprint,
        "rule_id": entry.rule_id,
        "title": entry.title,
        "severity": entry.severity.label,
        "url": entry.url,
    }
