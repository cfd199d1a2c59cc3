"""Dated enforcement (`gate.enforce_from`) and expiring ignore entries (`gate.warn_before`),
issue 20: before the day what would fail is deferred and the gate passes; from it, it fails."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from pathlib import Path

import pytest
from conftest import TODAY, make_finding, make_policy, make_result
from hypothesis import given
from hypothesis import strategies as st
from test_gate import PROPERTY, Scenario, findings_strategy, gate_strategy, ignores_strategy

from scangate.baseline import Baseline
from scangate.errors import ExitStatus, PolicyError
from scangate.gate import Decision, Evaluation, Verdict, evaluate
from scangate.model import Finding, ScanResult, ScanStatus, Severity
from scangate.policy import GateSettings, IgnoreRule, parse_policy
from scangate.reporting import expiring_lines

C, H, M, L = Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW
AHEAD = TODAY + timedelta(days=44)


def run(
    findings: list[Finding],
    *,
    result: ScanResult | None = None,
    ignore: tuple[IgnoreRule, ...] = (),
    today: date = TODAY,
    **gate: object,
) -> Evaluation:
    policy = make_policy(GateSettings(**gate), ignore)  # type: ignore[arg-type]
    return evaluate(result or make_result(findings), policy, None, today)


def by_decision(evaluation: Evaluation, decision: Decision) -> list[Finding]:
    return [j.finding for j in evaluation.judgements if j.decision is decision]


def highs(count: int) -> list[Finding]:
    return [make_finding(n, severity=H) for n in range(count)]


# --- deferral ----------------------------------------------------------------------------------


def test_before_enforce_from_what_would_fail_is_deferred_and_the_gate_passes() -> None:
    findings = [*highs(2), make_finding(9, severity=L)]
    evaluation = run(findings, fail_on=H, enforce_from=AHEAD)
    assert evaluation.verdict is Verdict.PASSED
    assert evaluation.exit_status is ExitStatus.PASSED
    assert sorted(by_decision(evaluation, Decision.DEFERRED), key=repr) == sorted(
        findings[:2], key=repr
    )
    assert by_decision(evaluation, Decision.FAILING) == []
    assert evaluation.reasons == (
        "2 findings would fail the gate; it is enforced from 2027-01-05 (in 44 days)",
        "would fail: 2 high finding(s) at or above fail_on: high",
    )
    assert (evaluation.enforce_from, evaluation.deferred_days) == (AHEAD, 44)
    assert evaluation.enforcement_text == "enforced from 2027-01-05 (in 44 days)"
    deferred = next(j for j in evaluation.judgements if j.decision is Decision.DEFERRED)
    assert deferred.reason == (
        "high is at or above fail_on: high; would fail: the gate is enforced from 2027-01-05 "
        "(in 44 days)"
    )
    # Deferred findings are counted: they are what the verdict would rest on.
    assert Decision.DEFERRED.counted
    assert evaluation.counts[H].counted == 2 and evaluation.counts[H].failing == 0


@pytest.mark.parametrize("today", [AHEAD, AHEAD + timedelta(days=1)])
def test_on_and_after_enforce_from_the_same_findings_fail(today: date) -> None:
    findings = [*highs(2), make_finding(9, severity=L)]
    before = run(findings, fail_on=H, enforce_from=AHEAD)
    after = run(findings, fail_on=H, enforce_from=AHEAD, today=today)
    assert after.verdict is Verdict.FAILED and after.exit_status is ExitStatus.GATE_FAILED
    assert by_decision(after, Decision.FAILING) == by_decision(before, Decision.DEFERRED)
    assert by_decision(after, Decision.DEFERRED) == []
    assert after.deferred_days is None and after.enforcement_text == ""
    assert after.reasons == ("2 high finding(s) at or above fail_on: high",)


def test_one_day_ahead_says_in_one_day() -> None:
    evaluation = run(highs(1), fail_on=H, enforce_from=TODAY + timedelta(days=1))
    assert evaluation.reasons[0] == (
        "1 finding would fail the gate; it is enforced from 2026-11-23 (in 1 day)"
    )


def test_what_would_exceed_a_budget_is_deferred_and_what_fits_it_is_not() -> None:
    findings = [*highs(3), *(make_finding(n, severity=M) for n in (20, 21))]
    gate = {"fail_on": C, "max": {H: 2, M: 2}}
    deferred = run(findings, enforce_from=AHEAD, **gate)  # type: ignore[arg-type]
    enforced = run(findings, **gate)  # type: ignore[arg-type]
    assert deferred.verdict is Verdict.PASSED and enforced.verdict is Verdict.FAILED
    assert by_decision(deferred, Decision.DEFERRED) == by_decision(enforced, Decision.FAILING)
    assert len(by_decision(deferred, Decision.DEFERRED)) == 3
    assert by_decision(deferred, Decision.WITHIN_BUDGET) == by_decision(
        enforced, Decision.WITHIN_BUDGET
    )
    assert "would fail: 3 high findings exceed max.high = 2" in deferred.reasons


def test_an_incomplete_scan_is_still_exit_4_before_enforce_from() -> None:
    # A broken scan is not a finding: deferring findings never makes it pass silently.
    for status in (ScanStatus.TIMED_OUT, ScanStatus.FAILED):
        result = make_result(highs(2), status=status, completeness=40)
        evaluation = run([], result=result, fail_on=H, enforce_from=AHEAD)
        assert evaluation.verdict is Verdict.INCOMPLETE, status
        assert evaluation.exit_status is ExitStatus.SCAN_INCOMPLETE
        assert len(by_decision(evaluation, Decision.DEFERRED)) == 2
        assert evaluation.reasons[0].startswith("2 findings would fail the gate")
        assert evaluation.reasons[-1].startswith("scan did not complete")


def test_a_partial_scan_without_fail_on_incomplete_passes_with_its_deferred_findings() -> None:
    result = make_result(highs(1), status=ScanStatus.FAILED, completeness=40)
    evaluation = run([], result=result, fail_on=H, enforce_from=AHEAD, fail_on_incomplete=False)
    assert evaluation.verdict is Verdict.PASSED
    assert len(by_decision(evaluation, Decision.DEFERRED)) == 1


@pytest.mark.parametrize(
    ("days", "warn_before", "said"),
    [(14, 14, True), (1, 14, True), (15, 14, False), (44, 14, False), (3, 0, False)],
)
def test_nothing_deferred_says_when_enforcement_starts_only_within_warn_before(
    days: int, warn_before: int, said: bool
) -> None:
    evaluation = run(
        [make_finding(1, severity=L)],
        fail_on=H,
        enforce_from=TODAY + timedelta(days=days),
        warn_before=warn_before,
    )
    assert evaluation.verdict is Verdict.PASSED
    assert evaluation.reasons[0] == "no counted finding breaks the gate (fail_on: high)"
    starts = TODAY + timedelta(days=days)
    when = "in 1 day" if days == 1 else f"in {days} days"
    line = f"the gate is enforced from {starts} ({when}); nothing counted would fail it"
    assert (line in evaluation.reasons) is said
    assert evaluation.deferred_days == days


def test_without_enforce_from_nothing_changes() -> None:
    evaluation = run(highs(1), fail_on=H)
    assert evaluation.verdict is Verdict.FAILED
    assert (evaluation.enforce_from, evaluation.deferred_days) == (None, None)
    assert evaluation.enforcement_text == ""


# --- expiring ignore entries -------------------------------------------------------------------


def entry(index: int, days: int | None) -> IgnoreRule:
    expires = None if days is None else TODAY + timedelta(days=days)
    return IgnoreRule(index=index, reason=f"reason {index}", rule="rule-x", expires=expires)


def test_entries_expiring_within_warn_before_are_listed_with_the_days_left() -> None:
    ignores = (
        entry(0, None),  # never expires
        entry(1, -1),  # expired yesterday
        entry(2, 0),  # last day today
        entry(3, 5),
        entry(4, 14),  # the edge: warned
        entry(5, 15),  # beyond warn_before
    )
    evaluation = run([make_finding(1, severity=L)], ignore=ignores)
    assert [e.index for e in evaluation.expiring_ignores] == [2, 3, 4]
    assert [evaluation.expires_in(e) for e in evaluation.expiring_ignores] == [
        "today",
        "in 5 days",
        "in 14 days",
    ]
    # The other lists are as they were: an expiring entry is still live (and here unused).
    assert [e.index for e in evaluation.expired_ignores] == [1]
    assert [e.index for e in evaluation.unused_ignores] == [0, 2, 3, 4, 5]


def test_warn_before_sets_the_horizon() -> None:
    ignores = (entry(0, 0), entry(1, 1), entry(2, 30))
    assert [e.index for e in run([], ignore=ignores, warn_before=0).expiring_ignores] == [0]
    assert [e.index for e in run([], ignore=ignores, warn_before=30).expiring_ignores] == [0, 1, 2]


def test_an_expiring_entry_still_ignores_its_finding() -> None:
    finding = make_finding(1, severity=H, rule_id="rule-x")
    evaluation = run([finding], ignore=(entry(0, 3),), fail_on=H)
    assert evaluation.verdict is Verdict.PASSED
    assert by_decision(evaluation, Decision.IGNORED) == [finding]
    assert evaluation.expiring_ignores == (entry(0, 3),)


# --- the property ------------------------------------------------------------------------------


@st.composite
def complete_scenario(draw: st.DrawFn) -> Scenario:
    """A complete result, a random gate (fail_on, budgets, warn_on, new_only), ignores and an
    optional baseline."""
    findings = draw(findings_strategy)
    result = make_result(findings)
    baseline = None
    if draw(st.booleans()):
        known = draw(st.lists(st.sampled_from(findings))) if findings else []
        baseline = Baseline.from_findings(known + draw(findings_strategy))
    return result, draw(gate_strategy), draw(ignores_strategy()), baseline


def _judge(s: Scenario, today: date, **changes: object) -> Evaluation:
    result, gate, ignores, baseline = s
    changed = dataclasses.replace(gate, **changes)  # type: ignore[arg-type]
    return evaluate(result, make_policy(changed, ignores), baseline, today)


def _decided(evaluation: Evaluation, decision: Decision) -> list[tuple[Finding, str]]:
    """The findings with `decision`, with their baseline standing (equal findings differ by it)."""
    return [(j.finding, j.baseline_text) for j in evaluation.judgements if j.decision is decision]


@PROPERTY
@given(complete_scenario(), st.integers(1, 400), st.integers(0, 400))
def test_before_enforce_from_exit_0_and_the_deferred_are_exactly_the_later_failing(
    s: Scenario, ahead: int, later: int
) -> None:
    starts = TODAY + timedelta(days=ahead)
    before = _judge(s, TODAY, enforce_from=starts)
    on_or_after = _judge(s, starts + timedelta(days=later), enforce_from=starts)
    never_deferred = _judge(s, TODAY, enforce_from=None)
    assert before.exit_status is ExitStatus.PASSED
    assert _decided(before, Decision.FAILING) == []
    deferred = _decided(before, Decision.DEFERRED)
    assert deferred == _decided(never_deferred, Decision.FAILING)
    # Ignore entries may expire between the two days, so compare what they left alone: the
    # policy's ignores without expiry dates are the same on both days.
    result, gate, ignores, baseline = s
    timeless = tuple(dataclasses.replace(e, expires=None) for e in ignores)
    fixed: Scenario = (result, gate, timeless, baseline)
    assert _decided(_judge(fixed, TODAY, enforce_from=starts), Decision.DEFERRED) == _decided(
        _judge(fixed, starts + timedelta(days=later), enforce_from=starts), Decision.FAILING
    )
    assert on_or_after.deferred_days is None
    assert _decided(on_or_after, Decision.DEFERRED) == []
    # Every other decision is untouched by the date.
    for a, b in zip(before.judgements, never_deferred.judgements, strict=True):
        assert a.finding == b.finding
        if b.decision is not Decision.FAILING:
            assert a.decision is b.decision


# --- the policy --------------------------------------------------------------------------------


POLICY = (
    "version: 1\nprovider:\n  name: cyberorigen\nscan:\n  target: https://staging.example.com\n"
)


def test_the_policy_rejects_a_date_that_does_not_exist_naming_key_and_line() -> None:
    text = POLICY + "gate:\n  fail_on: high\n  enforce_from: 2027-13-01\n"
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, Path("ci/.scangate.yml"))
    message = caught.value.diagnostics()
    assert (
        "ci/.scangate.yml: gate.enforce_from: not a date: '2027-13-01' (expected YYYY-MM-DD) "
        "(line 8)" in message
    )
    assert caught.value.exit_status is ExitStatus.USAGE_ERROR


def test_the_policy_reads_an_unquoted_yaml_date() -> None:
    text = POLICY + "gate:\n  enforce_from: 2027-01-15\n  warn_before: 30\n"
    gate = parse_policy(text, Path("p.yml")).gate
    assert (gate.enforce_from, gate.warn_before) == (date(2027, 1, 15), 30)


def test_the_log_warns_once_per_expiring_entry_across_merged_scans() -> None:
    ignores = (entry(0, 5), entry(1, 0), entry(2, 20))
    policy = make_policy(GateSettings(), ignores)
    first, second = (
        evaluate(make_result([], scan_id=scan_id), policy, None, TODAY) for scan_id in ("a", "b")
    )
    assert expiring_lines((first, second)) == [
        "warning: ignore[0] expires on 2026-11-27 (in 5 days): reason 0",
        "warning: ignore[1] expires on 2026-11-22 (today): reason 1",
    ]
