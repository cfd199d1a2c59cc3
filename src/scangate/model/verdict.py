"""What the gate answers: a decision per finding, a verdict per scan, and the counts behind them.

`scangate.gate` computes these; formatters and CI surfaces only read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import Enum

from scangate.errors import ExitStatus
from scangate.model.baseline import BaselineEntry
from scangate.model.findings import Finding, ScanResult, ScanStatus, Severity
from scangate.model.settings import GateSettings, IgnoreRule


class Decision(str, Enum):
    """What the gate did with one finding."""

    FAILING = "failing"
    """Counted, and breaks the gate."""
    DEFERRED = "deferred"
    """Counted, and would fail: the gate is enforced only from gate.enforce_from"""
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
    {
        Decision.FAILING,
        Decision.DEFERRED,
        Decision.WITHIN_BUDGET,
        Decision.WARNING,
        Decision.BELOW_THRESHOLD,
    }
)


def in_days(days: int) -> str:
    """`today`, `in 1 day` or `in 44 days`: how far ahead a date is, for reasons and warnings."""
    if days == 0:
        return "today"
    return "in 1 day" if days == 1 else f"in {days} days"


def enforced_from(starts: date, days: int) -> str:
    """`enforced from 2027-01-15 (in 44 days)`: the words every report uses for a deferral."""
    return f"enforced from {starts} ({in_days(days)})"


class BaselineState(str, Enum):
    """A finding's standing against the baseline."""

    NEW = "new"
    """No baseline entry was left for it: its fingerprint is not in the baseline, or each of
    the entries with its fingerprint went to another finding."""
    UNCHANGED = "unchanged"
    """Paired with a baseline entry of its fingerprint at least as severe: accepted."""
    ESCALATED = "escalated"
    """Paired with a baseline entry of its fingerprint that is less severe: not accepted, the
    gate treats it as new (`new_only` counts it)."""


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
    baseline_entry: BaselineEntry | None = None
    """The baseline entry it was paired with (`unchanged` or `escalated`)."""

    @property
    def baseline_text(self) -> str:
        """The standing against the baseline in words (`new`, `unchanged`, `escalated from
        low`), for reports; empty without a baseline."""
        state, entry = self.baseline_state, self.baseline_entry
        if state is None:
            return ""
        if state is not BaselineState.ESCALATED or entry is None:
            return state.value
        if not entry.severity_recorded:
            return "escalated from a baseline entry without a severity (read as info)"
        return f"escalated from {entry.severity.label}"


@dataclass(frozen=True)
class SeverityCounts:
    """How many findings of one severity ended in each state."""

    found: int = 0
    counted: int = 0
    failing: int = 0
    ignored: int = 0
    """Suppressed by a live `ignore:` entry of the policy."""
    false_positive: int = 0
    """Marked a false positive by the provider."""
    baselined: int = 0
    new: int = 0
    """Not in the baseline (or beyond the number of its entries with that fingerprint)."""
    escalated: int = 0
    """In the baseline, but more severe than its entry there."""
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
    expiring_ignores: tuple[IgnoreRule, ...] = ()
    """Live entries whose `expires` is at most `gate.warn_before` days after today: they stop
    applying soon, and the findings they hold back will count."""
    fixed: tuple[BaselineEntry, ...] = ()
    """Baseline entries absent from this result."""
    has_baseline: bool = False
    today: date | None = None
    """The UTC day the gate judged as (ignore expiry, enforcement), when known."""
    enforce_from: date | None = None
    """`gate.enforce_from` as the policy set it (None: always enforced)."""
    deferred_days: int | None = None
    """Days until `enforce_from` while it is still ahead (at least 1), else None: the gate is
    enforced today. Only while it is set are findings `Decision.DEFERRED` instead of failing."""

    @property
    def exit_status(self) -> ExitStatus:
        """The exit code of this evaluation alone."""
        return self.verdict.exit_status

    @property
    def enforcement_text(self) -> str:
        """`enforced from 2027-01-15 (in 44 days)` while enforcement is ahead, else empty."""
        if self.enforce_from is None or self.deferred_days is None:
            return ""
        return enforced_from(self.enforce_from, self.deferred_days)

    def expires_in(self, entry: IgnoreRule) -> str:
        """`in 5 days` (or `today`) for an entry of `expiring_ignores`; empty without a date."""
        if entry.expires is None or self.today is None:
            return ""
        return in_days((entry.expires - self.today).days)


_NEVER_FINISHED = frozenset(
    {ScanStatus.PENDING, ScanStatus.RUNNING, ScanStatus.TIMED_OUT, ScanStatus.INTERRUPTED}
)


def incomplete_fails(result: ScanResult, gate: GateSettings) -> bool:
    """True when `result` is incomplete in a way that gives exit 4 (when no finding fails first).

    `fail_on_incomplete` covers scans the provider ended failed, cancelled or partial (design
    §2), and results with fewer findings than the provider announced (`ScanResult.shortfall`);
    a scan scangate gave up on (timeout, signal) or never saw finish always counts (design §3,
    §5: "On timeout ... exit 4").
    """
    if result.complete:
        return False
    return gate.fail_on_incomplete or result.status in _NEVER_FINISHED
