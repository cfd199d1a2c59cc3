"""The decision explained in the log: which findings fail the gate, which would fail it once it
is enforced (`gate.enforce_from`), which warn, and why.

Pure: a `Report` (and the report files written) in, lines of text out. The console prints them
(redacted, workflow commands broken), the same in every CI mode, so that a Jenkins, GitLab or
local user reads in the log what a GitHub user reads in the annotations.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from scangate.formats import Report
from scangate.formats.markdown import MAX_FINDINGS, MarkdownFormatter
from scangate.model import BaselineState, Decision, Evaluation, GateSettings, Judgement
from scangate.model.verdict import in_days
from scangate.text import model_text, one_line

SHOWN = 10
"""Findings listed per tier; the rest are counted and pointed to in the reports."""
TITLE_LIMIT = 120
URL_LIMIT = 120
PARAMETER_LIMIT = 60
TARGET_LIMIT = 80
_URL_TAIL = 40
"""Characters kept from the end of a long URL: the path's last segments tell pages apart."""
WARNED = frozenset({Decision.WARNING, Decision.WITHIN_BUDGET})
"""The warn tier: counted findings that do not fail, but that the CI annotates as warnings
(`warn_on`, and findings within a `max` budget, as `ci/github.py` does)."""
BREAKING = frozenset({Decision.FAILING, Decision.DEFERRED})
"""Decisions a threshold or budget broke: failing, or deferred until `gate.enforce_from`."""
COMPLETE_REPORTS = ("scangate.json", "scangate.sarif", "junit.xml", "gl-dast-report.json")
"""Reports that hold every finding, the one to point to first."""


@dataclass(frozen=True)
class _Tier:
    """The first `SHOWN` findings of one tier, most severe first, and how many it has."""

    top: list[tuple[Evaluation, Judgement]]
    total: int


def decision_lines(report: Report, written: Sequence[Path]) -> list[str]:
    """The failing tier, the deferred tier (what would fail once the gate is enforced), then
    the warn tier, each at most `SHOWN` findings plus a count of the rest and the report file
    that lists them; nothing for an empty tier.

    `written` are the report files written (the first complete one, or `summary.md`, is named
    for the rest). With several scans each finding is prefixed with its scan's target, as
    `reporting.report_reasons` does.
    """
    evaluations = report.evaluations
    failing = _tier(evaluations, frozenset({Decision.FAILING}))
    deferred = _tier(evaluations, frozenset({Decision.DEFERRED}))
    warned = _tier(evaluations, WARNED)
    listing = _Listing(
        gate=report.gate,
        merged=len(evaluations) > 1,
        rest_in=where_listed(written, sum(len(e.judgements) for e in evaluations)),
    )
    lines: list[str] = []
    if failing.total:
        lines.append(f"failing findings ({_heading_count(failing)}):")
        lines += _tier_lines(failing, listing)
    if deferred.total:
        lines.append(
            f"would-fail findings, deferred: {_enforcement(evaluations)} "
            f"({_heading_count(deferred)}):"
        )
        lines += _tier_lines(deferred, listing)
    if warned.total:
        lines.append(f"warned findings, not failing ({_heading_count(warned)}):")
        lines += _tier_lines(warned, listing)
    return lines


def _enforcement(evaluations: Sequence[Evaluation]) -> str:
    """`the gate is enforced from 2027-01-15, in 44 days`, from the scans that defer findings."""
    for evaluation in evaluations:
        starts, days = evaluation.enforce_from, evaluation.deferred_days
        if starts is not None and days is not None:
            return f"the gate is enforced from {starts}, {in_days(days)}"
    return "the gate is not enforced yet"  # pragma: no cover - the gate defers nothing then


@dataclass(frozen=True)
class _Listing:
    """What every line of a tier needs to know besides its finding."""

    gate: GateSettings
    merged: bool
    """Several scans: each finding is prefixed with its scan's target."""
    rest_in: str
    """Where the findings beyond `SHOWN` are listed (`in reports/summary.md`)."""


def _tier(evaluations: Sequence[Evaluation], decisions: frozenset[Decision]) -> _Tier:
    """One pass over every judgement: no sort, as each scan's judgements are already most
    severe first (`Evaluation.judgements`); the scans' first few are merged by severity."""
    per_scan: list[list[tuple[Evaluation, Judgement]]] = []
    total = 0
    for evaluation in evaluations:
        top: list[tuple[Evaluation, Judgement]] = []
        for judgement in evaluation.judgements:
            if judgement.decision in decisions:
                total += 1
                if len(top) < SHOWN:
                    top.append((evaluation, judgement))
        per_scan.append(top)
    merged = heapq.merge(*per_scan, key=lambda pair: -pair[1].finding.severity)
    return _Tier(list(islice(merged, SHOWN)), total)


def _heading_count(tier: _Tier) -> str:
    if tier.total == 1:
        return "1"
    if tier.total <= SHOWN:
        return f"{tier.total}, most severe first"
    return f"{tier.total:,}; the {SHOWN} most severe first"


def _tier_lines(tier: _Tier, listing: _Listing) -> Iterator[str]:
    for number, (evaluation, judgement) in enumerate(tier.top, start=1):
        scan = f"{_clean(evaluation.result.target, TARGET_LIMIT)}: " if listing.merged else ""
        yield f"  {number}. {scan}{finding_text(judgement, evaluation, listing.gate)}"
    rest = tier.total - len(tier.top)
    if rest:
        yield f"  … and {rest:,} more {listing.rest_in}"


def finding_text(judgement: Judgement, evaluation: Evaluation, gate: GateSettings) -> str:
    """One finding on one line: severity, title, method and URL, parameter, and why it is in
    its tier (`high ≥ fail_on high`, a budget, plus what the baseline or an expired ignore
    entry changed)."""
    finding = judgement.finding
    parts = [finding.severity.label, _clean(finding.title, TITLE_LIMIT) or "(untitled)"]
    request = " ".join(p for p in (_clean(finding.method, 16), _short_url(finding.url)) if p)
    if request:
        parts.append(request)
    if finding.parameter:
        parts.append(f"parameter {_clean(finding.parameter, PARAMETER_LIMIT)}")
    parts.append(why(judgement, evaluation, gate))
    return " · ".join(parts)


def why(judgement: Judgement, evaluation: Evaluation, gate: GateSettings) -> str:
    """Why a counted finding fails or warns under `gate`, naming the threshold or budget
    concretely; the same rules, in the same order, as `gate._counted_decision`."""
    severity = judgement.finding.severity
    label = severity.label
    counted = evaluation.counts[severity].counted
    if severity in gate.max:
        budget = gate.max[severity]
        if judgement.decision in BREAKING:
            text = f"{counted} {label} counted, over budget max.{label}: {budget}"
        else:
            text = f"within budget max.{label}: {budget} ({counted} counted)"
    elif judgement.decision in BREAKING and gate.fail_on is not None:
        text = f"{label} ≥ fail_on {gate.fail_on.label}"
    elif gate.warn_on is not None:
        text = f"{label} ≥ warn_on {gate.warn_on.label}"
    else:  # pragma: no cover - the gate decides nothing else for these two tiers
        text = judgement.reason
    return text + "".join(_notes(judgement, evaluation))


def _notes(judgement: Judgement, evaluation: Evaluation) -> Iterator[str]:
    """What made this finding count that a reader might not expect: an expired ignore entry,
    its standing against the baseline."""
    if judgement.ignore_index is not None:
        expired = {e.index: e for e in evaluation.expired_ignores}.get(judgement.ignore_index)
        when = f" on {expired.expires}" if expired is not None else ""
        yield f"; ignore[{judgement.ignore_index}] expired{when}"
    if judgement.baseline_state is BaselineState.ESCALATED:
        yield f"; {_clean(judgement.baseline_text, 100)}"
    elif judgement.baseline_state is BaselineState.NEW:
        yield "; new since baseline"


def where_listed(written: Sequence[Path], findings: int) -> str:
    """`in reports/summary.md`, and the report holding every finding when the summary (which
    lists the `MAX_FINDINGS` worst) cannot hold them all; a hint when nothing was written."""
    by_name = {path.name: path for path in written}
    summary = by_name.get(MarkdownFormatter.filename)
    complete = next((by_name[n] for n in COMPLETE_REPORTS if n in by_name), None)
    if summary is not None and (complete is None or findings <= MAX_FINDINGS):
        return f"in {summary}"
    if summary is not None and complete is not None:
        return f"in {summary} (the {MAX_FINDINGS} worst), all in {complete}"
    if complete is not None:
        return f"in {complete}"
    return "(no report was written: add a format to reports.formats to see them)"


def _clean(text: str, limit: int) -> str:
    """Untrusted text as one printable line of at most `limit` characters (with `…`)."""
    return one_line(model_text(text), limit)


def _short_url(url: str) -> str:
    """A URL on one line within `URL_LIMIT`: its start (host, path) and end, `…` between."""
    flat = _clean(url, len(url) + 1)
    if len(flat) <= URL_LIMIT:
        return flat
    head = URL_LIMIT - _URL_TAIL - 1
    return flat[:head] + "…" + flat[-_URL_TAIL:]
