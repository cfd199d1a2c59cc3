"""The gate: a pure function from (result, policy, baseline, today) to a decision per finding."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import Enum

from scangate.baseline import Baseline, BaselineEntry
from scangate.errors import ExitStatus
from scangate.model import Finding, ScanResult, ScanStatus, Severity
from scangate.policy import GateSettings, IgnoreRule, Policy


class Decision(str, Enum):
    """What the gate did with one finding."""

    FAILING = "failing"
    """Counted, and breaks the gate."""
    WITHIN_BUDGET = "within_budget"
    """Counted, within its severity's `max` budget."""
    WARNING = "warning"
    """Counted, in the `warn_on` tier: annotated, never fails."""
    BELOW_THRESHOLD = "below_threshold"
    """Counted, below every threshold."""
    IGNORED = "ignored"
    """Matched a live `ignore` entry."""
    FALSE_POSITIVE = "false_positive"
    """The provider marked it a false positive."""
    BASELINED = "baselined"
    """In the baseline, and the gate counts new findings only."""

    @property
    def counted(self) -> bool:
        """True for the decisions that count toward the verdict."""
        return self in _COUNTED


_COUNTED = frozenset(
    {Decision.FAILING, Decision.WITHIN_BUDGET, Decision.WARNING, Decision.BELOW_THRESHOLD}
)


class BaselineState(str, Enum):
    """A finding's standing against the baseline (SARIF `baselineState` values)."""

    NEW = "new"
    UNCHANGED = "unchanged"


class Verdict(str, Enum):
    """The gate's overall answer."""

    PASSED = "passed"
    FAILED = "failed"
    INCOMPLETE = "incomplete"

    @property
    def exit_status(self) -> ExitStatus:
        """The exit code this verdict maps to."""
        return {
            Verdict.PASSED: ExitStatus.PASSED,
            Verdict.FAILED: ExitStatus.GATE_FAILED,
            Verdict.INCOMPLETE: ExitStatus.SCAN_INCOMPLETE,
        }[self]


@dataclass(frozen=True)
class Judgement:
    """The gate's decision on one finding, and why."""

    finding: Finding
    decision: Decision
    reason: str
    ignore_index: int | None = None
    """The `ignore[i]` entry that suppressed it (or that expired for it)."""
    baseline_state: BaselineState | None = None
    """Set only when a baseline was given."""


@dataclass(frozen=True)
class SeverityCounts:
    """How many findings of one severity ended in each state."""

    found: int = 0
    counted: int = 0
    failing: int = 0
    ignored: int = 0
    baselined: int = 0
    new: int = 0
    fixed: int = 0


@dataclass(frozen=True)
class Evaluation:
    """The gate's full answer for one scan result."""

    result: ScanResult
    judgements: tuple[Judgement, ...]
    """One per finding, most severe first, in a canonical order."""
    verdict: Verdict
    reasons: tuple[str, ...]
    """Why the gate decided as it did, one line each."""
    counts: Mapping[Severity, SeverityCounts]
    """Per severity, every severity present (zeros included)."""
    expired_ignores: tuple[IgnoreRule, ...] = ()
    unused_ignores: tuple[IgnoreRule, ...] = ()
    """Live entries that matched no finding."""
    fixed: tuple[BaselineEntry, ...] = ()
    """Baseline entries absent from this result."""
    has_baseline: bool = False

    @property
    def exit_status(self) -> ExitStatus:
        """The exit code of this evaluation alone."""
        return self.verdict.exit_status


def _sort_key(finding: Finding) -> tuple[int, str, str, str, str, str, str]:
    return (
        -finding.severity,
        finding.rule_id,
        finding.url,
        finding.method,
        finding.parameter,
        finding.fingerprint,
        repr(finding),
    )


@dataclass(frozen=True)
class _Staged:
    """A finding after the first pass: decided, or `decision=None` for counted ones."""

    finding: Finding
    decision: Decision | None
    reason: str
    ignore_index: int | None
    state: BaselineState | None
    used: frozenset[int]
    """Indices of the live ignore entries that match this finding (the first one applies)."""


def _baseline_state(finding: Finding, known: frozenset[str] | None) -> BaselineState | None:
    if known is None:
        return None
    return BaselineState.UNCHANGED if finding.fingerprint in known else BaselineState.NEW


def _stage(finding: Finding, policy: Policy, known: frozenset[str] | None, today: date) -> _Staged:
    """Decide everything but the thresholds, which need the per-severity counts.

    `known` holds the baseline's fingerprints, or is None without a baseline.
    """
    state = _baseline_state(finding, known)
    hits = [entry for entry in policy.ignore if entry.matches(finding)]
    live = [entry for entry in hits if not entry.expired(today)]
    expired = next((entry for entry in hits if entry.expired(today)), None)
    used = frozenset(entry.index for entry in live)
    if finding.false_positive:
        status = f" ({finding.provider_status})" if finding.provider_status else ""
        reason = f"marked false positive by the provider{status}"
        return _Staged(finding, Decision.FALSE_POSITIVE, reason, None, state, used)
    if live:
        reason = f"ignored by ignore[{live[0].index}]: {live[0].reason}"
        return _Staged(finding, Decision.IGNORED, reason, live[0].index, state, used)
    if policy.gate.new_only and state is BaselineState.UNCHANGED:
        return _Staged(finding, Decision.BASELINED, "in baseline", None, state, used)
    if expired is None:
        return _Staged(finding, None, "", None, state, used)
    note = f"; ignore[{expired.index}] expired on {expired.expires} ({expired.reason})"
    return _Staged(finding, None, note, expired.index, state, used)


def _counted_decision(
    finding: Finding, gate: GateSettings, severity_counts: Counter[Severity]
) -> tuple[Decision, str]:
    severity = finding.severity
    label = severity.label
    if severity in gate.max:
        budget = gate.max[severity]
        count = severity_counts[severity]
        if count > budget:
            return Decision.FAILING, f"{count} {label} findings exceed max.{label} = {budget}"
        return Decision.WITHIN_BUDGET, f"within max.{label} = {budget} ({count} counted)"
    if gate.fail_on is not None and severity >= gate.fail_on:
        return Decision.FAILING, f"{label} is at or above fail_on: {gate.fail_on.label}"
    if gate.warn_on is not None and severity >= gate.warn_on:
        return Decision.WARNING, f"{label} is at or above warn_on: {gate.warn_on.label}"
    if gate.fail_on is None:
        return Decision.BELOW_THRESHOLD, f"not gated (fail_on: none, no max.{label} budget)"
    return Decision.BELOW_THRESHOLD, f"{label} is below fail_on: {gate.fail_on.label}"


def _judge(staged: _Staged, gate: GateSettings, counted: Counter[Severity]) -> Judgement:
    decision, reason = staged.decision, staged.reason
    if decision is None:
        decision, why = _counted_decision(staged.finding, gate, counted)
        reason = why + reason
        if staged.state is BaselineState.NEW:
            reason += "; new since baseline"
    return Judgement(staged.finding, decision, reason, staged.ignore_index, staged.state)


def evaluate(
    result: ScanResult, policy: Policy, baseline: Baseline | None, today: date
) -> Evaluation:
    """Decide every finding of `result` and the verdict, without side effects.

    `today` is the current UTC date; ignore entries apply through their `expires` day.
    Baseline entries absent from the result are reported as fixed only when the scan completed
    (a failed or partial scan proves nothing about what it did not reach).
    """
    findings = sorted(result.findings, key=_sort_key)
    known = baseline.fingerprints if baseline is not None else None
    staged = [_stage(finding, policy, known, today) for finding in findings]
    counted = Counter(s.finding.severity for s in staged if s.decision is None)
    judgements = [_judge(s, policy.gate, counted) for s in staged]
    fixed: tuple[BaselineEntry, ...] = ()
    if baseline is not None and result.complete:
        present = {f.fingerprint for f in findings}
        fixed = tuple(e for e in baseline.entries if e.fingerprint not in present)
    used = frozenset().union(*(s.used for s in staged))
    verdict, reasons = _verdict(result, policy.gate, judgements)
    return Evaluation(
        result=result,
        judgements=tuple(judgements),
        verdict=verdict,
        reasons=reasons,
        counts=_counts(judgements, fixed),
        expired_ignores=tuple(e for e in policy.ignore if e.expired(today)),
        unused_ignores=tuple(
            e for e in policy.ignore if not e.expired(today) and e.index not in used
        ),
        fixed=fixed,
        has_baseline=baseline is not None,
    )


_NEVER_FINISHED = frozenset(
    {ScanStatus.PENDING, ScanStatus.RUNNING, ScanStatus.TIMED_OUT, ScanStatus.INTERRUPTED}
)


def incomplete_fails(result: ScanResult, gate: GateSettings) -> bool:
    """True when `result` is incomplete in a way that gives exit 4 (when no finding fails first).

    `fail_on_incomplete` covers scans the provider ended failed, cancelled or partial (design
    §2); a scan scangate gave up on (timeout, signal) or never saw finish always counts
    (design §3, §5: "On timeout ... exit 4").
    """
    if result.complete:
        return False
    return gate.fail_on_incomplete or result.status in _NEVER_FINISHED


def _incomplete_reason(result: ScanResult, gate: GateSettings) -> str:
    why = result.message or f"scan {result.status.value}"
    if result.status is ScanStatus.COMPLETED:
        why = f"scan covered {result.completeness}% of its checks"
    suffix = "" if incomplete_fails(result, gate) else " (fail_on_incomplete is false)"
    return f"scan did not complete: {why}{suffix}"


def _verdict(
    result: ScanResult, gate: GateSettings, judgements: list[Judgement]
) -> tuple[Verdict, tuple[str, ...]]:
    failing: Counter[Severity] = Counter(
        j.finding.severity for j in judgements if j.decision is Decision.FAILING
    )
    reasons = []
    for severity in sorted(failing, reverse=True):
        count, label = failing[severity], severity.label
        if severity in gate.max:
            reasons.append(f"{count} {label} findings exceed max.{label} = {gate.max[severity]}")
        else:
            threshold = gate.fail_on.label if gate.fail_on is not None else "none"
            reasons.append(f"{count} {label} finding(s) at or above fail_on: {threshold}")
    if not result.complete:
        reasons.append(_incomplete_reason(result, gate))
    if failing:
        return Verdict.FAILED, tuple(reasons)
    if incomplete_fails(result, gate):
        return Verdict.INCOMPLETE, tuple(reasons)
    threshold = gate.fail_on.label if gate.fail_on is not None else "none"
    reasons.insert(0, f"no counted finding breaks the gate (fail_on: {threshold})")
    return Verdict.PASSED, tuple(reasons)


def _counts(
    judgements: list[Judgement], fixed: tuple[BaselineEntry, ...]
) -> Mapping[Severity, SeverityCounts]:
    tally: dict[Severity, Counter[str]] = {s: Counter() for s in Severity}
    for j in judgements:
        t = tally[j.finding.severity]
        t["found"] += 1
        if j.decision.counted:
            t["counted"] += 1
        if j.decision is Decision.FAILING:
            t["failing"] += 1
        if j.decision in (Decision.IGNORED, Decision.FALSE_POSITIVE):
            t["ignored"] += 1
        if j.decision is Decision.BASELINED:
            t["baselined"] += 1
        if j.baseline_state is BaselineState.NEW:
            t["new"] += 1
    for entry in fixed:
        tally[entry.severity]["fixed"] += 1
    return {s: SeverityCounts(**tally[s]) for s in sorted(Severity, reverse=True)}


def combine(evaluations: Iterable[Evaluation]) -> Verdict:
    """One verdict for several scans (matrix jobs): failed > incomplete > passed."""
    verdicts = {e.verdict for e in evaluations}
    for verdict in (Verdict.FAILED, Verdict.INCOMPLETE):
        if verdict in verdicts:
            return verdict
    return Verdict.PASSED
