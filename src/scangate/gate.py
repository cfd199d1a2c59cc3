"""The gate: a pure function from (result, policy, baseline, today) to a decision per finding."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from itertools import groupby

from scangate.baseline import Baseline
from scangate.model import (
    BaselineEntry,
    BaselineState,
    Decision,
    Evaluation,
    Finding,
    GateSettings,
    IgnoreRule,
    Judgement,
    Policy,
    ScanResult,
    ScanStatus,
    Severity,
    SeverityCounts,
    Verdict,
    incomplete_fails,
)
from scangate.model.verdict import enforced_from

# The result types live in the domain (`scangate.model.verdict`) so formatters need not import
# the gate; they stay importable from here.
__all__ = [
    "BaselineState",
    "Decision",
    "Evaluation",
    "Judgement",
    "SeverityCounts",
    "Verdict",
    "combine",
    "evaluate",
    "incomplete_fails",
]


def _sort_key(finding: Finding) -> tuple[int, str, str, str, str, str]:
    return (
        -finding.severity,
        finding.rule_id,
        finding.url,
        finding.method,
        finding.parameter,
        finding.fingerprint,
    )


def _in_order(findings: Iterable[Finding]) -> list[Finding]:
    """`findings` sorted by `_sort_key`, ties (equal in all of it) broken by their `repr`.

    The same total order as sorting by the key and the `repr` together, but the `repr` of a
    finding (all of its fields, evidence included) is only made for the rare findings that tie:
    at 100,000 findings it took a quarter of the gate's time.
    """
    ordered: list[Finding] = []
    for _, tied in groupby(sorted(findings, key=_sort_key), key=_sort_key):
        group = list(tied)
        ordered.extend(sorted(group, key=repr) if len(group) > 1 else group)
    return ordered


@dataclass(frozen=True)
class _Pairing:
    """A finding's standing against the baseline, and the entry it was paired with."""

    state: BaselineState
    entry: BaselineEntry | None = None
    entries: int = 0
    """How many baseline entries have the finding's fingerprint."""

    def note(self, finding: Finding) -> str:
        """What the reason of a counted finding says about the baseline."""
        if self.state is BaselineState.ESCALATED and self.entry is not None:
            was = self.entry.severity.label
            if not self.entry.severity_recorded:
                was = "no severity recorded, read as info"
            return (
                f"; escalated since baseline: {finding.severity.label} is more severe than "
                f"its baseline entry ({was})"
            )
        if self.state is BaselineState.NEW and self.entries:
            return (
                f"; new since baseline (the baseline accepts {self.entries} finding(s) with "
                "this fingerprint, all paired with others)"
            )
        return "; new since baseline" if self.state is BaselineState.NEW else ""


def _take_covering(free: list[BaselineEntry], finding: Finding) -> BaselineEntry | None:
    """Remove and return the most severe of `free` if it is at least as severe as `finding`."""
    if free and free[0].severity >= finding.severity:
        return free.pop(0)
    return None


def _pair_group(
    findings: Sequence[Finding], entries: Sequence[BaselineEntry]
) -> tuple[list[_Pairing], list[BaselineEntry]]:
    """Pair one fingerprint's findings with its baseline entries, both most severe first.

    First as many findings as possible get an entry at least as severe (unchanged); taking the
    most severe entry left is optimal, because an entry that covers a finding covers every later,
    less severe one. The findings left over take the remaining entries, most severe first, as
    escalated; any beyond those are new. Returns the pairings and the entries left (fixed).
    """
    free = list(entries)
    covered = [_take_covering(free, finding) for finding in findings]
    pairings = []
    for entry in covered:
        if entry is not None:
            pairings.append(_Pairing(BaselineState.UNCHANGED, entry, len(entries)))
        elif free:
            pairings.append(_Pairing(BaselineState.ESCALATED, free.pop(0), len(entries)))
        else:
            pairings.append(_Pairing(BaselineState.NEW, None, len(entries)))
    return pairings, free


def _pair(
    findings: Sequence[Finding], baseline: Baseline
) -> tuple[list[_Pairing], tuple[BaselineEntry, ...]]:
    """Pair `findings` (in canonical order) with `baseline`; return the pairings, in the same
    order, and the baseline entries no finding took."""
    positions: dict[str, list[int]] = {}
    for position, finding in enumerate(findings):
        positions.setdefault(finding.fingerprint, []).append(position)
    pairings = [_Pairing(BaselineState.NEW)] * len(findings)
    left: list[BaselineEntry] = []
    for fingerprint, entries in baseline.by_fingerprint().items():
        indices = positions.get(fingerprint, [])
        paired, free = _pair_group([findings[i] for i in indices], entries)
        for index, pairing in zip(indices, paired, strict=True):
            pairings[index] = pairing
        left += free
    return pairings, tuple(left)


@dataclass(frozen=True)
class _Staged:
    """A finding after the first pass: decided, or `decision=None` for counted ones."""

    finding: Finding
    decision: Decision | None
    reason: str
    ignore_index: int | None
    pairing: _Pairing | None
    used: frozenset[int]
    """Indices of the live ignore entries that match this finding (the first one applies)."""


def _stage(finding: Finding, policy: Policy, pairing: _Pairing | None, today: date) -> _Staged:
    """Decide everything but the thresholds, which need the per-severity counts.

    `pairing` is the finding's standing against the baseline, or None without a baseline.
    """
    hits = [entry for entry in policy.ignore if entry.matches(finding)]
    live = [entry for entry in hits if not entry.expired(today)]
    expired = next((entry for entry in hits if entry.expired(today)), None)
    used = frozenset(entry.index for entry in live)
    if finding.false_positive:
        status = f" ({finding.provider_status})" if finding.provider_status else ""
        reason = f"marked false positive by the provider{status}"
        return _Staged(finding, Decision.FALSE_POSITIVE, reason, None, pairing, used)
    if live:
        reason = f"ignored by {live[0].label}: {live[0].reason}"
        return _Staged(finding, Decision.IGNORED, reason, live[0].index, pairing, used)
    accepted = pairing is not None and pairing.state is BaselineState.UNCHANGED
    if policy.gate.new_only and accepted:
        return _Staged(finding, Decision.BASELINED, "in baseline", None, pairing, used)
    if expired is None:
        return _Staged(finding, None, "", None, pairing, used)
    note = f"; {expired.label} expired on {expired.expires} ({expired.reason})"
    return _Staged(finding, None, note, expired.index, pairing, used)


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


@dataclass(frozen=True)
class _Enforcement:
    """`gate.enforce_from` as of today: `days` until it while it is ahead, else None."""

    starts: date | None
    days: int | None

    @classmethod
    def of(cls, gate: GateSettings, today: date) -> _Enforcement:
        """The enforcement of `gate` on `today` (enforced on `enforce_from` itself)."""
        starts = gate.enforce_from
        if starts is None or today >= starts:
            return cls(starts, None)
        return cls(starts, (starts - today).days)

    @property
    def text(self) -> str:
        """`enforced from 2027-01-15 (in 44 days)`; empty once it is enforced."""
        if self.starts is None or self.days is None:
            return ""
        return enforced_from(self.starts, self.days)


def _judge(
    staged: _Staged, gate: GateSettings, counted: Counter[Severity], enforcement: _Enforcement
) -> Judgement:
    decision, reason = staged.decision, staged.reason
    pairing = staged.pairing
    if decision is None:
        decision, why = _counted_decision(staged.finding, gate, counted)
        reason = why + reason
        if pairing is not None:
            reason += pairing.note(staged.finding)
        # Deferral changes the decision only, after every rule ran as on the day of
        # enforcement: what is deferred today is exactly what fails from that day.
        if decision is Decision.FAILING and enforcement.days is not None:
            decision = Decision.DEFERRED
            reason += f"; would fail: the gate is {enforcement.text}"
    state = pairing.state if pairing is not None else None
    entry = pairing.entry if pairing is not None else None
    return Judgement(staged.finding, decision, reason, staged.ignore_index, state, entry)


def evaluate(
    result: ScanResult, policy: Policy, baseline: Baseline | None, today: date
) -> Evaluation:
    """Decide every finding of `result` and the verdict, without side effects.

    `today` is the current UTC date; ignore entries apply through their `expires` day.
    Each finding is paired with at most one baseline entry of its fingerprint (`_pair_group`):
    `unchanged` when the entry is at least as severe, else `escalated`; `new` when no entry is
    left. Only `unchanged` findings are baselined under `new_only`. Entries no finding took are
    reported as fixed only when the scan completed (a failed or partial scan proves nothing
    about what it did not reach).

    Before `gate.enforce_from` every finding that would be failing is `deferred` instead and
    the verdict passes, unless the scan is incomplete: a broken scan is not a finding, so it
    still gives exit 4. From that day the same findings are failing.
    """
    findings = _in_order(result.findings)
    pairings: list[_Pairing | None] = [None] * len(findings)
    left: tuple[BaselineEntry, ...] = ()
    if baseline is not None:
        paired, left = _pair(findings, baseline)
        pairings = list(paired)
    staged = [_stage(f, policy, p, today) for f, p in zip(findings, pairings, strict=True)]
    counted = Counter(s.finding.severity for s in staged if s.decision is None)
    enforcement = _Enforcement.of(policy.gate, today)
    judgements = [_judge(s, policy.gate, counted, enforcement) for s in staged]
    fixed = left if result.complete else ()
    used = frozenset().union(*(s.used for s in staged))
    verdict, reasons = _verdict(result, policy.gate, judgements, enforcement)
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
        expiring_ignores=_expiring(policy, today),
        fixed=fixed,
        has_baseline=baseline is not None,
        today=today,
        enforce_from=enforcement.starts,
        deferred_days=enforcement.days,
    )


def _expiring(policy: Policy, today: date) -> tuple[IgnoreRule, ...]:
    """Live entries that expire within `gate.warn_before` days (today included)."""
    horizon = policy.gate.warn_before
    return tuple(
        entry
        for entry in policy.ignore
        if entry.expires is not None and 0 <= (entry.expires - today).days <= horizon
    )


def _incomplete_reason(result: ScanResult, gate: GateSettings) -> str:
    suffix = "" if incomplete_fails(result, gate) else " (fail_on_incomplete is false)"
    if result.status is not ScanStatus.COMPLETED:
        why = result.message or f"scan {result.status.value}"
    elif result.completeness < 100:
        why = f"scan covered {result.completeness}% of its checks"
        if result.shortfall:
            why += f"; {result.shortfall}"
    else:
        # The scan ended well, but what was fetched is not all it announced.
        return f"results are incomplete: {result.shortfall}{suffix}"
    return f"scan did not complete: {why}{suffix}"


def _verdict(
    result: ScanResult,
    gate: GateSettings,
    judgements: list[Judgement],
    enforcement: _Enforcement,
) -> tuple[Verdict, tuple[str, ...]]:
    failing = _by_severity(judgements, Decision.FAILING)
    deferred = _by_severity(judgements, Decision.DEFERRED)
    reasons = _breaking(failing, gate, "")
    if deferred:
        total = sum(deferred.values())
        noun = "1 finding" if total == 1 else f"{total} findings"
        reasons.append(f"{noun} would fail the gate; it is {enforcement.text}")
        reasons += _breaking(deferred, gate, "would fail: ")
    escalated = sum(
        j.decision.counted and j.baseline_state is BaselineState.ESCALATED for j in judgements
    )
    if escalated:
        reasons.append(
            f"{escalated} finding(s) escalated: more severe than their baseline entry, "
            "so not accepted by it"
        )
    if not result.complete:
        reasons.append(_incomplete_reason(result, gate))
    if failing:
        return Verdict.FAILED, tuple(reasons)
    if incomplete_fails(result, gate):
        return Verdict.INCOMPLETE, tuple(reasons)
    if not deferred:
        threshold = gate.fail_on.label if gate.fail_on is not None else "none"
        reasons.insert(0, f"no counted finding breaks the gate (fail_on: {threshold})")
        # Nothing would fail, but the switch is near: say so while there is time to prepare.
        if enforcement.days is not None and enforcement.days <= gate.warn_before:
            reasons.insert(1, f"the gate is {enforcement.text}; nothing counted would fail it")
    return Verdict.PASSED, tuple(reasons)


def _by_severity(judgements: list[Judgement], decision: Decision) -> Counter[Severity]:
    return Counter(j.finding.severity for j in judgements if j.decision is decision)


def _breaking(counts: Counter[Severity], gate: GateSettings, prefix: str) -> list[str]:
    """One reason per severity of `counts` (failing or deferred findings), most severe first."""
    reasons = []
    for severity in sorted(counts, reverse=True):
        count, label = counts[severity], severity.label
        if severity in gate.max:
            why = f"{count} {label} findings exceed max.{label} = {gate.max[severity]}"
        else:
            threshold = gate.fail_on.label if gate.fail_on is not None else "none"
            why = f"{count} {label} finding(s) at or above fail_on: {threshold}"
        reasons.append(prefix + why)
    return reasons


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
        if j.decision is Decision.IGNORED:
            t["ignored"] += 1
        if j.decision is Decision.FALSE_POSITIVE:
            t["false_positive"] += 1
        if j.decision is Decision.BASELINED:
            t["baselined"] += 1
        if j.baseline_state is BaselineState.NEW:
            t["new"] += 1
        if j.baseline_state is BaselineState.ESCALATED:
            t["escalated"] += 1
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
