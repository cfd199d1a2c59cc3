"""The gate: a pure function from (result, policy, baseline, today) to a decision per finding."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import Enum

from scangate.baseline import Baseline, BaselineEntry
from scangate.errors import ExitStatus
from scangate.model import Finding, ScanResult, Severity
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


def _suppression(
    finding: Finding, ignores: Iterable[IgnoreRule], today: date
) -> tuple[IgnoreRule | None, IgnoreRule | None]:
    """Return (the live entry that matches, else None; the first expired entry that matches)."""
    expired: IgnoreRule | None = None
    for entry in ignores:
        if entry.matches(finding):
            if not entry.expired(today):
                return entry, expired
            expired = expired or entry
    return None, expired


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
    threshold = gate.fail_on.label if gate.fail_on is not None else "none"
    return Decision.BELOW_THRESHOLD, f"{label} is below fail_on: {threshold}"


def evaluate(
    result: ScanResult, policy: Policy, baseline: Baseline | None, today: date
) -> Evaluation:
    """Decide every finding of `result` and the verdict, without side effects.

    `today` is the current UTC date; ignore entries apply through their `expires` day.
    """
    gate = policy.gate
    known = baseline.fingerprints if baseline is not None else frozenset()
    findings = sorted(result.findings, key=_sort_key)

    # First pass: everything but the threshold, which needs the per-severity counts.
    staged: list[tuple[Finding, Decision | None, str, int | None, BaselineState | None]] = []
    used: set[int] = set()
    expired_hit: set[int] = set()
    counted: Counter[Severity] = Counter()
    for finding in findings:
        state = None
        if baseline is not None:
            new = finding.fingerprint not in known
            state = BaselineState.NEW if new else BaselineState.UNCHANGED
        live, expired = _suppression(finding, policy.ignore, today)
        if expired is not None:
            expired_hit.add(expired.index)
        if finding.false_positive:
            status = f" ({finding.provider_status})" if finding.provider_status else ""
            reason = f"marked false positive by the provider{status}"
            staged.append((finding, Decision.FALSE_POSITIVE, reason, None, state))
        elif live is not None:
            used.add(live.index)
            reason = f"ignored by ignore[{live.index}]: {live.reason}"
            staged.append((finding, Decision.IGNORED, reason, live.index, state))
        elif gate.new_only and state is BaselineState.UNCHANGED:
            staged.append((finding, Decision.BASELINED, "in baseline", None, state))
        else:
            note = ""
            if expired is not None:
                note = f"; ignore[{expired.index}] expired on {expired.expires}"
            counted[finding.severity] += 1
            staged.append((finding, None, note, expired.index if expired else None, state))

    judgements = []
    for finding, decision, reason, index, state in staged:
        if decision is None:
            decision, why = _counted_decision(finding, gate, counted)
            reason = why + reason
            if state is BaselineState.NEW:
                reason += "; new since baseline"
        judgements.append(Judgement(finding, decision, reason, index, state))

    fixed = ()
    if baseline is not None:
        present = {f.fingerprint for f in findings}
        fixed = tuple(e for e in baseline.entries if e.fingerprint not in present)
    verdict, reasons = _verdict(result, gate, judgements)
    return Evaluation(
        result=result,
        judgements=tuple(judgements),
        verdict=verdict,
        reasons=reasons,
        counts=_counts(judgements, fixed),
        expired_ignores=tuple(
            e for e in policy.ignore if e.expired(today) or e.index in expired_hit
        ),
        unused_ignores=tuple(
            e for e in policy.ignore if not e.expired(today) and e.index not in used
        ),
        fixed=fixed,
        has_baseline=baseline is not None,
    )


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
    incomplete = not result.complete
    if incomplete:
        why = result.message or f"scan {result.status.value}"
        if result.status.value == "completed":
            why = f"scan covered {result.completeness}% of its checks"
        suffix = "" if gate.fail_on_incomplete else " (fail_on_incomplete is false)"
        reasons.append(f"scan did not complete: {why}{suffix}")
    if failing:
        return Verdict.FAILED, tuple(reasons)
    if incomplete and gate.fail_on_incomplete:
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
    return {
        s: SeverityCounts(**tally[s]) for s in sorted(Severity, reverse=True)
    }


def combine(evaluations: Iterable[Evaluation]) -> Verdict:
    """One verdict for several scans (matrix jobs): failed > incomplete > passed."""
    verdicts = {e.verdict for e in evaluations}
    for verdict in (Verdict.FAILED, Verdict.INCOMPLETE):
        if verdict in verdicts:
            return verdict
    return Verdict.PASSED
