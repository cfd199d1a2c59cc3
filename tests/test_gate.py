"""The gate against design §2 and §9: arithmetic, warn tier, incomplete scans, ignores, baseline."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from random import Random

import pytest
from conftest import TODAY, make_finding, make_policy, make_result
from hypothesis import given, settings
from hypothesis import strategies as st

from scangate.baseline import Baseline, BaselineEntry
from scangate.errors import ExitStatus
from scangate.gate import (
    BaselineState,
    Decision,
    Evaluation,
    Verdict,
    combine,
    evaluate,
)
from scangate.model import Finding, ScanResult, ScanStatus, Severity
from scangate.policy import GateSettings, IgnoreRule

# N is info ("no severity"): `I` would read as a one.
C, H, M, L, N = (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW, Severity.INFO)


def findings_of(*severities: Severity) -> list[Finding]:
    """One finding per severity given, each with its own URL (so its own fingerprint)."""
    return [make_finding(i, severity=s) for i, s in enumerate(severities)]


def run(
    findings: Sequence[Finding] = (),
    *,
    result: ScanResult | None = None,
    ignore: tuple[IgnoreRule, ...] = (),
    baseline: Baseline | None = None,
    today: date = TODAY,
    **gate: object,
) -> Evaluation:
    """Evaluate `findings` (or `result`) under a policy with the given gate settings."""
    policy = make_policy(GateSettings(**gate), ignore)  # type: ignore[arg-type]
    return evaluate(result or make_result(list(findings)), policy, baseline, today)


def decisions(evaluation: Evaluation) -> list[tuple[Severity, Decision]]:
    """(severity, decision) per judgement, in the evaluation's order."""
    return [(j.finding.severity, j.decision) for j in evaluation.judgements]


def vaddy_alerts(count: int, project: str = "proj-1") -> list[Finding]:
    """What the VAddy provider yields for `alert_count` = count (design §9 "Count-only")."""
    return [
        Finding.create(
            provider="vaddy",
            rule_id="vaddy-alert",
            title=f"VAddy alert {n} (details in the VAddy console)",
            severity=Severity.HIGH,
            url="https://console.vaddy.net/scan/77",
            fingerprint=f"vaddy:{project}:{n}",
        )
        for n in range(1, count + 1)
    ]


# --- Gate arithmetic (design §9) -------------------------------------------------------------


def test_fail_on_high_with_high_budget_allows_two_highs() -> None:
    evaluation = run(findings_of(H, H), fail_on=H, max={H: 2})
    assert evaluation.verdict is Verdict.PASSED
    assert evaluation.exit_status is ExitStatus.PASSED
    assert decisions(evaluation) == [(H, Decision.WITHIN_BUDGET)] * 2


def test_fail_on_high_with_high_budget_fails_on_a_third_high() -> None:
    evaluation = run(findings_of(H, H, H), fail_on=H, max={H: 2})
    assert evaluation.verdict is Verdict.FAILED
    assert evaluation.exit_status is ExitStatus.GATE_FAILED
    assert decisions(evaluation) == [(H, Decision.FAILING)] * 3
    assert any("max.high = 2" in reason for reason in evaluation.reasons)


def test_fail_on_high_with_high_budget_allows_no_critical() -> None:
    evaluation = run(findings_of(H, C, H), fail_on=H, max={H: 2})
    assert evaluation.verdict is Verdict.FAILED
    assert decisions(evaluation) == [
        (C, Decision.FAILING),
        (H, Decision.WITHIN_BUDGET),
        (H, Decision.WITHIN_BUDGET),
    ]
    assert any("critical" in reason and "fail_on: high" in reason for reason in evaluation.reasons)


@pytest.mark.parametrize(
    ("count", "verdict"), [(4, Verdict.PASSED), (5, Verdict.PASSED), (6, Verdict.FAILED)]
)
def test_budgets_are_inclusive(count: int, verdict: Verdict) -> None:
    evaluation = run(findings_of(*[M] * count), fail_on=H, max={M: 5})
    assert evaluation.verdict is verdict


def test_budget_counts_its_exact_severity_only() -> None:
    # Lows and infos do not eat into the medium budget, and a medium does not eat into the low one.
    evaluation = run(findings_of(M, L, L, L, N, N), fail_on=H, max={M: 1, L: 3})
    assert evaluation.verdict is Verdict.PASSED
    evaluation = run(findings_of(M, M, L), fail_on=H, max={M: 1, L: 3})
    assert evaluation.verdict is Verdict.FAILED
    assert [d for s, d in decisions(evaluation) if s is L] == [Decision.WITHIN_BUDGET]


def test_budgeted_severity_below_fail_on_still_fails_above_its_budget() -> None:
    evaluation = run(findings_of(L, L, L), fail_on=H, max={L: 2})
    assert evaluation.verdict is Verdict.FAILED
    assert evaluation.reasons == ("3 low findings exceed max.low = 2",)


def test_unbudgeted_severity_at_fail_on_fails_on_one_finding() -> None:
    evaluation = run(findings_of(M, L), fail_on=M)
    assert decisions(evaluation) == [(M, Decision.FAILING), (L, Decision.BELOW_THRESHOLD)]
    assert evaluation.verdict is Verdict.FAILED


def test_fail_on_none_never_fails_on_severity() -> None:
    evaluation = run(findings_of(C, H, M), fail_on=None)
    assert evaluation.verdict is Verdict.PASSED
    assert {d for _, d in decisions(evaluation)} == {Decision.BELOW_THRESHOLD}


def test_fail_on_none_keeps_budgets() -> None:
    evaluation = run(findings_of(C, M), fail_on=None, max={C: 0})
    assert evaluation.verdict is Verdict.FAILED
    assert decisions(evaluation) == [(C, Decision.FAILING), (M, Decision.BELOW_THRESHOLD)]


def test_no_findings_passes() -> None:
    evaluation = run([])
    assert evaluation.verdict is Verdict.PASSED
    assert evaluation.judgements == ()
    assert evaluation.reasons[0].startswith("no counted finding breaks the gate")


def test_judgements_are_most_severe_first() -> None:
    evaluation = run(findings_of(L, C, N, M, H), fail_on=None)
    assert [s for s, _ in decisions(evaluation)] == [C, H, M, L, N]


# --- Warn tier -------------------------------------------------------------------------------


def test_warn_tier_annotates_and_never_fails() -> None:
    evaluation = run(findings_of(H, M, L, N), fail_on=C, warn_on=M)
    assert evaluation.verdict is Verdict.PASSED
    assert decisions(evaluation) == [
        (H, Decision.WARNING),
        (M, Decision.WARNING),
        (L, Decision.BELOW_THRESHOLD),
        (N, Decision.BELOW_THRESHOLD),
    ]
    assert all(d.counted for _, d in decisions(evaluation))


def test_warn_tier_does_not_soften_fail_on() -> None:
    evaluation = run(findings_of(C, M), fail_on=C, warn_on=M)
    assert decisions(evaluation) == [(C, Decision.FAILING), (M, Decision.WARNING)]
    assert evaluation.verdict is Verdict.FAILED


# --- Incomplete scans ------------------------------------------------------------------------


@pytest.mark.parametrize("fail_on_incomplete", [True, False])
def test_failing_findings_exit_1_even_when_incomplete(fail_on_incomplete: bool) -> None:
    result = make_result(findings_of(C), status=ScanStatus.FAILED, message="scanner crashed")
    evaluation = run(result=result, fail_on=H, fail_on_incomplete=fail_on_incomplete)
    assert evaluation.verdict is Verdict.FAILED
    assert evaluation.exit_status == 1
    assert any("scanner crashed" in reason for reason in evaluation.reasons)


@pytest.mark.parametrize(
    ("status", "completeness"),
    [(ScanStatus.FAILED, 100), (ScanStatus.CANCELLED, 100), (ScanStatus.COMPLETED, 80)],
)
def test_incomplete_with_passing_findings_exits_4(status: ScanStatus, completeness: int) -> None:
    result = make_result(findings_of(L), status=status, completeness=completeness)
    evaluation = run(result=result, fail_on=H, fail_on_incomplete=True)
    assert evaluation.verdict is Verdict.INCOMPLETE
    assert evaluation.exit_status == 4


def test_partial_scan_reason_names_its_coverage() -> None:
    result = make_result([], completeness=80)
    (reason,) = run(result=result).reasons
    assert reason == "scan did not complete: scan covered 80% of its checks"


@pytest.mark.parametrize(
    ("status", "completeness"),
    [(ScanStatus.FAILED, 100), (ScanStatus.CANCELLED, 100), (ScanStatus.COMPLETED, 99)],
)
def test_incomplete_passes_without_fail_on_incomplete(
    status: ScanStatus, completeness: int
) -> None:
    result = make_result(findings_of(L), status=status, completeness=completeness)
    evaluation = run(result=result, fail_on=H, fail_on_incomplete=False)
    assert evaluation.verdict is Verdict.PASSED
    assert evaluation.exit_status == 0
    assert any("fail_on_incomplete is false" in reason for reason in evaluation.reasons)


@pytest.mark.parametrize("status", [ScanStatus.TIMED_OUT, ScanStatus.INTERRUPTED])
def test_a_scan_scangate_gave_up_on_is_incomplete_regardless(status: ScanStatus) -> None:
    # Design §5: on timeout scangate exits 4; fail_on_incomplete covers what the provider ended
    # failed, cancelled or partial (design §2), not a scan nobody saw finish.
    result = make_result([], status=status)
    assert run(result=result, fail_on_incomplete=False).verdict is Verdict.INCOMPLETE


def test_baseline_entries_are_not_fixed_by_an_incomplete_scan() -> None:
    baseline = Baseline.from_findings(findings_of(H, M))
    failed = run(result=make_result([], status=ScanStatus.FAILED), baseline=baseline)
    assert failed.fixed == ()
    assert sum(c.fixed for c in failed.counts.values()) == 0
    complete = run([], baseline=baseline)
    assert {e.fingerprint for e in complete.fixed} == baseline.fingerprints


# --- Count-only providers (VAddy) ------------------------------------------------------------


def test_vaddy_baseline_compares_counts() -> None:
    baseline = Baseline.from_findings(vaddy_alerts(2))
    evaluation = run(vaddy_alerts(3), baseline=baseline, fail_on=H, new_only=True)
    assert evaluation.verdict is Verdict.FAILED
    failing = [j for j in evaluation.judgements if j.decision is Decision.FAILING]
    assert [j.finding.fingerprint for j in failing] == ["vaddy:proj-1:3"]
    assert evaluation.counts[H].new == 1
    assert evaluation.counts[H].baselined == 2
    assert evaluation.counts[H].failing == 1


def test_vaddy_fewer_alerts_than_baseline_pass_and_report_fixed() -> None:
    baseline = Baseline.from_findings(vaddy_alerts(3))
    evaluation = run(vaddy_alerts(1), baseline=baseline, fail_on=H, new_only=True)
    assert evaluation.verdict is Verdict.PASSED
    assert sorted(e.fingerprint for e in evaluation.fixed) == ["vaddy:proj-1:2", "vaddy:proj-1:3"]
    assert evaluation.counts[H].fixed == 2


def test_vaddy_without_new_only_counts_every_alert() -> None:
    baseline = Baseline.from_findings(vaddy_alerts(2))
    evaluation = run(vaddy_alerts(3), baseline=baseline, fail_on=H, max={H: 2})
    assert evaluation.verdict is Verdict.FAILED
    assert [j.baseline_state for j in evaluation.judgements].count(BaselineState.NEW) == 1


# --- Escalation against the baseline ---------------------------------------------------------


def order_xss(severity: Severity, title: str, order: int) -> Finding:
    """The measured case of issue 13: one rule and parameter, numeric segments normalized."""
    return Finding.create(
        provider="cyberorigen",
        rule_id="xss",
        title=title,
        severity=severity,
        url=f"https://shop.example.com/orders/{order}?id={order}",
        method="GET",
        parameter="id",
    )


LOOKUP = order_xss(L, "Reflected XSS in order lookup", 1001)
ADMIN_NOTES = order_xss(H, "Stored XSS in order admin notes", 2002)


def test_a_baselined_low_does_not_let_a_high_with_its_fingerprint_pass() -> None:
    assert LOOKUP.fingerprint == ADMIN_NOTES.fingerprint
    baseline = Baseline.from_findings([LOOKUP])
    evaluation = run([ADMIN_NOTES], baseline=baseline, fail_on=H, new_only=True)
    assert evaluation.verdict is Verdict.FAILED
    (judgement,) = evaluation.judgements
    assert judgement.decision is Decision.FAILING
    assert judgement.baseline_state is BaselineState.ESCALATED
    assert judgement.baseline_entry == baseline.entries[0]
    assert judgement.baseline_text == "escalated from low"
    assert judgement.reason == (
        "high is at or above fail_on: high; "
        "escalated since baseline: high is more severe than its baseline entry (low)"
    )
    assert (evaluation.counts[H].escalated, evaluation.counts[H].new) == (1, 0)
    assert evaluation.counts[H].baselined == 0
    assert evaluation.fixed == ()  # the entry's finding is still there, only worse
    assert evaluation.reasons == (
        "1 high finding(s) at or above fail_on: high",
        "1 finding(s) escalated: more severe than their baseline entry, so not accepted by it",
    )


@pytest.mark.parametrize("severity", [L, N])
def test_a_finding_no_more_severe_than_its_entry_stays_baselined(severity: Severity) -> None:
    baseline = Baseline.from_findings([LOOKUP])
    finding = order_xss(severity, "Reflected XSS in order lookup", 3003)
    evaluation = run([finding], baseline=baseline, fail_on=N, new_only=True)
    (judgement,) = evaluation.judgements
    assert judgement.decision is Decision.BASELINED
    assert judgement.baseline_state is BaselineState.UNCHANGED
    assert evaluation.verdict is Verdict.PASSED


def test_escalated_findings_are_reported_without_new_only_too() -> None:
    evaluation = run([ADMIN_NOTES], baseline=Baseline.from_findings([LOOKUP]), fail_on=C)
    (judgement,) = evaluation.judgements
    assert judgement.decision is Decision.BELOW_THRESHOLD
    assert judgement.baseline_state is BaselineState.ESCALATED
    assert "escalated since baseline" in judgement.reason
    assert evaluation.counts[H].escalated == 1


def test_n_baselined_findings_never_hide_n_plus_one() -> None:
    known = [order_xss(M, "XSS", n) for n in (1, 2)]
    baseline = Baseline.from_findings(known)
    evaluation = run(
        [order_xss(M, "XSS", n) for n in (1, 2, 3)], baseline=baseline, fail_on=M, new_only=True
    )
    assert [j.decision for j in evaluation.judgements].count(Decision.BASELINED) == 2
    (extra,) = [j for j in evaluation.judgements if j.decision is Decision.FAILING]
    assert extra.baseline_state is BaselineState.NEW
    assert extra.reason.endswith(
        "new since baseline (the baseline accepts 2 finding(s) with this fingerprint, "
        "all paired with others)"
    )
    assert evaluation.counts[M].new == 1


def test_pairing_accepts_as_many_findings_as_the_entries_cover() -> None:
    # Entries high and low; findings critical and high. Pairing the critical with the high entry
    # would leave the high finding escalated too: the high finding takes the high entry instead,
    # and only the critical is escalated (from the low entry that is left).
    baseline = Baseline.from_findings([order_xss(H, "XSS", 1), order_xss(L, "XSS", 2)])
    evaluation = run(
        [order_xss(C, "XSS", 3), order_xss(H, "XSS", 4)],
        baseline=baseline,
        fail_on=H,
        new_only=True,
    )
    states = [(j.finding.severity, j.baseline_state, j.decision) for j in evaluation.judgements]
    assert states == [
        (C, BaselineState.ESCALATED, Decision.FAILING),
        (H, BaselineState.UNCHANGED, Decision.BASELINED),
    ]
    assert evaluation.judgements[0].baseline_text == "escalated from low"
    assert evaluation.fixed == ()


def test_entries_left_after_pairing_are_fixed() -> None:
    baseline = Baseline.from_findings([order_xss(H, "XSS", 1), order_xss(L, "XSS", 2)])
    evaluation = run([order_xss(M, "XSS", 3)], baseline=baseline, new_only=True)
    assert [j.baseline_state for j in evaluation.judgements] == [BaselineState.UNCHANGED]
    assert [e.severity for e in evaluation.fixed] == [L]
    assert evaluation.counts[L].fixed == 1


def test_an_entry_without_severity_accepts_only_info() -> None:
    unrated = BaselineEntry(fingerprint=LOOKUP.fingerprint, severity_recorded=False)
    baseline = Baseline.from_entries([unrated])
    info = run([order_xss(N, "XSS", 7)], baseline=baseline, fail_on=N, new_only=True)
    assert [j.decision for j in info.judgements] == [Decision.BASELINED]
    low = run([LOOKUP], baseline=baseline, fail_on=L, new_only=True)
    (judgement,) = low.judgements
    assert judgement.decision is Decision.FAILING
    assert judgement.reason.endswith(
        "escalated since baseline: low is more severe than its baseline entry "
        "(no severity recorded, read as info)"
    )


def test_an_escalated_false_positive_stays_uncounted() -> None:
    flagged = dataclasses.replace(ADMIN_NOTES, false_positive=True)
    evaluation = run([flagged], baseline=Baseline.from_findings([LOOKUP]), new_only=True)
    (judgement,) = evaluation.judgements
    assert judgement.decision is Decision.FALSE_POSITIVE
    assert judgement.baseline_state is BaselineState.ESCALATED
    assert evaluation.verdict is Verdict.PASSED
    assert not any("escalated" in reason for reason in evaluation.reasons)


# --- Ignores (design §9) ---------------------------------------------------------------------


def ignore(index: int = 0, reason: str = "accepted risk (SEC-12)", **keys: object) -> IgnoreRule:
    """One `ignore[index]` entry."""
    return IgnoreRule(index=index, reason=reason, **keys)  # type: ignore[arg-type]


def legacy(n: int, rule: str = "click_jacking", path: str = "/legacy/admin/x") -> Finding:
    """A high finding at `path` with `rule`."""
    return make_finding(n, severity=H, rule_id=rule, url=f"https://staging.example.com{path}")


def test_ignore_keys_are_combined_with_and() -> None:
    entry = ignore(rule="click_jacking", url="https://staging.example.com/legacy/*")
    both = legacy(1)
    rule_only = legacy(2, path="/app/x")
    url_only = legacy(3, rule="xss")
    evaluation = run([both, rule_only, url_only], ignore=(entry,), fail_on=H)
    by_url = {(j.finding.rule_id, j.finding.url): j.decision for j in evaluation.judgements}
    assert by_url == {
        ("click_jacking", both.url): Decision.IGNORED,
        ("click_jacking", rule_only.url): Decision.FAILING,
        ("xss", url_only.url): Decision.FAILING,
    }


def test_url_glob_star_crosses_slashes() -> None:
    deep = legacy(1, path="/legacy/a/b/c/d?x=1")
    entry = ignore(url="https://staging.example.com/legacy/*")
    evaluation = run([deep], ignore=(entry,))
    assert decisions(evaluation) == [(H, Decision.IGNORED)]


def test_title_glob_star_crosses_slashes() -> None:
    finding = make_finding(1, severity=H, title="Path traversal in /a/b/c")
    assert decisions(run([finding], ignore=(ignore(title="Path traversal*c"),))) == [
        (H, Decision.IGNORED)
    ]
    assert decisions(run([finding], ignore=(ignore(title="path traversal*"),))) == [
        (H, Decision.FAILING)
    ]


@pytest.mark.parametrize("cve", ["cve-2024-1234", "CVE-2024-1234", "Cve-2024-1234"])
def test_cve_matches_case_insensitively(cve: str) -> None:
    finding = make_finding(0, severity=C, cve_ids=("CVE-2024-1234",))
    assert decisions(run([finding], ignore=(ignore(cve=cve),))) == [(C, Decision.IGNORED)]


def test_cve_cwe_param_and_fingerprint_keys() -> None:
    target = make_finding(1, severity=C, cve_ids=("CVE-2023-9",), cwe_ids=(79,), parameter="q")
    other = make_finding(2, severity=C, cve_ids=("CVE-2023-8",), cwe_ids=(89,), parameter="id")
    for entry in (
        ignore(cve="CVE-2023-9"),
        ignore(cwe=79),
        ignore(param="q"),
        ignore(fingerprint=target.fingerprint),
    ):
        evaluation = run([target, other], ignore=(entry,))
        ignored = [j.finding for j in evaluation.judgements if j.decision is Decision.IGNORED]
        assert ignored == [target], entry


def test_ignore_reason_names_the_entry_and_its_reason() -> None:
    entries = (ignore(0, rule="nothing-matches"), ignore(1, "legacy admin (SEC-12)", rule="r1"))
    evaluation = run([make_finding(1, rule_id="r1", severity=C)], ignore=entries)
    (judgement,) = evaluation.judgements
    assert judgement.decision is Decision.IGNORED
    assert judgement.ignore_index == 1
    assert "ignore[1]" in judgement.reason
    assert "legacy admin (SEC-12)" in judgement.reason


def test_ignore_applies_through_its_whole_expiry_day() -> None:
    entry = ignore(rule="r1", expires=TODAY)
    evaluation = run([make_finding(1, rule_id="r1", severity=C)], ignore=(entry,))
    assert decisions(evaluation) == [(C, Decision.IGNORED)]
    assert evaluation.expired_ignores == ()
    assert evaluation.verdict is Verdict.PASSED


def test_expired_ignore_is_reported_and_its_finding_counted() -> None:
    entry = ignore(rule="r1", reason="until the rewrite", expires=TODAY - timedelta(days=1))
    evaluation = run([make_finding(1, rule_id="r1", severity=C)], ignore=(entry,), fail_on=H)
    (judgement,) = evaluation.judgements
    assert judgement.decision is Decision.FAILING
    assert judgement.ignore_index == 0
    assert "ignore[0] expired" in judgement.reason
    assert evaluation.expired_ignores == (entry,)
    assert evaluation.unused_ignores == ()
    assert evaluation.verdict is Verdict.FAILED


def test_expired_entry_that_matches_nothing_is_still_reported_as_expired() -> None:
    entry = ignore(rule="gone", expires=date(2020, 1, 1))
    evaluation = run(findings_of(L), ignore=(entry,))
    assert evaluation.expired_ignores == (entry,)
    assert evaluation.unused_ignores == ()


def test_unused_entries_are_reported() -> None:
    used, unused = ignore(0, rule="r1"), ignore(1, rule="no-such-rule")
    evaluation = run([make_finding(1, rule_id="r1")], ignore=(used, unused))
    assert evaluation.unused_ignores == (unused,)


def test_an_entry_shadowed_by_an_earlier_one_still_matched_a_finding() -> None:
    first, second = ignore(0, rule="r1"), ignore(1, cwe=79)
    finding = make_finding(1, rule_id="r1", cwe_ids=(79,), severity=C)
    evaluation = run([finding], ignore=(first, second))
    assert evaluation.judgements[0].ignore_index == 0
    assert evaluation.unused_ignores == ()


def test_false_positives_are_never_counted() -> None:
    fp = make_finding(1, severity=C, false_positive=True, provider_status="false_positive")
    evaluation = run([fp], fail_on=N, max={C: 0}, warn_on=N)
    (judgement,) = evaluation.judgements
    assert judgement.decision is Decision.FALSE_POSITIVE
    assert not judgement.decision.counted
    assert "false_positive" in judgement.reason
    assert evaluation.verdict is Verdict.PASSED
    assert evaluation.counts[C].counted == 0
    assert evaluation.counts[C].failing == 0


def test_false_positives_are_counted_apart_from_ignored_findings() -> None:
    fp = make_finding(1, severity=H, rule_id="r1", false_positive=True)
    suppressed = make_finding(2, severity=H, rule_id="r2")
    evaluation = run([fp, suppressed], ignore=(ignore(rule="r2"),))
    assert (evaluation.counts[H].false_positive, evaluation.counts[H].ignored) == (1, 1)
    assert evaluation.counts[H].counted == 0


def test_false_positive_stays_uncounted_under_an_expired_ignore() -> None:
    fp = make_finding(1, severity=C, rule_id="r1", false_positive=True)
    entry = ignore(rule="r1", expires=date(2020, 1, 1))
    assert run([fp], ignore=(entry,)).verdict is Verdict.PASSED


# --- Counts ----------------------------------------------------------------------------------


def test_counts_by_severity() -> None:
    # Three criticals: one baselined, one ignored, one new and failing. Two highs within a budget
    # of 2, one new. One medium false positive. One baseline entry (low) that is gone.
    crit_known, crit_ignored, crit_new = (make_finding(n, severity=C) for n in (10, 11, 12))
    high_known, high_new = make_finding(20, severity=H), make_finding(21, severity=H)
    medium_fp = make_finding(30, severity=M, false_positive=True)
    low_gone = make_finding(40, severity=L)
    baseline = Baseline.from_findings([crit_known, high_known, low_gone])
    evaluation = run(
        [crit_known, crit_ignored, crit_new, high_known, high_new, medium_fp],
        ignore=(ignore(fingerprint=crit_ignored.fingerprint),),
        baseline=baseline,
        fail_on=H,
        max={H: 2},
        new_only=True,
    )
    counts = {s: dataclasses.astuple(c) for s, c in evaluation.counts.items()}
    # (found, counted, failing, ignored, false_positive, baselined, new, escalated, fixed)
    assert counts == {
        C: (3, 1, 1, 1, 0, 1, 2, 0, 0),
        H: (2, 1, 0, 0, 0, 1, 1, 0, 0),
        M: (1, 0, 0, 0, 1, 0, 1, 0, 0),
        L: (0, 0, 0, 0, 0, 0, 0, 0, 1),
        N: (0, 0, 0, 0, 0, 0, 0, 0, 0),
    }
    assert list(evaluation.counts) == [C, H, M, L, N]
    assert evaluation.verdict is Verdict.FAILED
    assert evaluation.has_baseline


def test_without_baseline_no_baseline_state() -> None:
    evaluation = run(findings_of(H, L))
    assert {j.baseline_state for j in evaluation.judgements} == {None}
    assert not evaluation.has_baseline
    assert sum(c.new for c in evaluation.counts.values()) == 0


def test_combine_prefers_failed_then_incomplete() -> None:
    failed = run(findings_of(C))
    incomplete = run(result=make_result([], status=ScanStatus.CANCELLED))
    passed = run([])
    assert combine([passed, incomplete, failed]) is Verdict.FAILED
    assert combine([passed, incomplete]) is Verdict.INCOMPLETE
    assert combine([passed, passed]) is Verdict.PASSED
    assert combine([]) is Verdict.PASSED


# --- Properties ------------------------------------------------------------------------------

RULES = ("r0", "r1", "r2")
PATHS = ("/a", "/a/b", "/legacy/x", "/legacy/y/z")
ORDER: tuple[Severity | None, ...] = (N, L, M, H, C, None)
"""fail_on values from the strictest to the most lenient (`none` disables)."""

POOL = tuple(
    Finding.create(
        provider="cyberorigen",
        rule_id=rule,
        title=f"Title {rule}",
        severity=severity,
        url=f"https://app.example.com{path}",
        parameter=param,
        false_positive=false_positive,
        cve_ids=cve,
    )
    for severity in Severity
    for rule in RULES
    for path in PATHS
    for param in ("", "q")
    for false_positive in (False, False, False, True)  # one in four is a false positive
    for cve in ((), ("CVE-2024-1",))
)
"""Findings the properties draw from (built once: fingerprinting is not what they test)."""

findings_strategy = st.lists(st.sampled_from(POOL), max_size=25)


@st.composite
def ignore_strategy(draw: st.DrawFn, index: int) -> IgnoreRule:
    """An `ignore[index]` entry with at least one key."""
    keys = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "rule": st.sampled_from(RULES),
                "url": st.sampled_from(("*/legacy/*", "https://app.example.com/a*", "*")),
                "cve": st.sampled_from(("cve-2024-1", "CVE-2099-2")),
                "param": st.sampled_from(("q", "")),
            },
        ).filter(bool)
    )
    expires = draw(st.none() | st.integers(-3, 3).map(lambda d: TODAY + timedelta(days=d)))
    return IgnoreRule(index=index, reason=f"reason {index}", expires=expires, **keys)  # type: ignore[arg-type]


@st.composite
def ignores_strategy(draw: st.DrawFn) -> tuple[IgnoreRule, ...]:
    """A policy's `ignore:` list, indices in order."""
    count = draw(st.integers(0, 4))
    return tuple(draw(ignore_strategy(i)) for i in range(count))


gate_strategy = st.builds(
    GateSettings,
    fail_on=st.sampled_from(ORDER),
    max=st.dictionaries(st.sampled_from(Severity), st.integers(0, 4), max_size=3),
    warn_on=st.sampled_from(ORDER),
    new_only=st.booleans(),
    fail_on_incomplete=st.booleans(),
)

status_strategy = st.sampled_from(
    ((ScanStatus.COMPLETED, 100),) * 3 + ((ScanStatus.COMPLETED, 70), (ScanStatus.FAILED, 100))
)


Scenario = tuple[ScanResult, GateSettings, tuple[IgnoreRule, ...], Baseline | None]
"""A result, its gate settings, the ignore list and the baseline (or None)."""


@st.composite
def scenario(draw: st.DrawFn) -> Scenario:
    """A random result, gate, ignore list and (maybe) baseline drawn from the result's findings."""
    findings = draw(findings_strategy)
    status, completeness = draw(status_strategy)
    result = make_result(findings, status=status, completeness=completeness)
    baseline = None
    if draw(st.booleans()):
        known = draw(st.lists(st.sampled_from(findings))) if findings else []
        baseline = Baseline.from_findings(known + draw(findings_strategy))
    return result, draw(gate_strategy), draw(ignores_strategy()), baseline


PROPERTY = settings(max_examples=200, deadline=None)


def judge(s: Scenario, **changes: object) -> Evaluation:
    """Evaluate a scenario, with some of its gate settings changed."""
    result, gate, ignores, baseline = s
    changed = dataclasses.replace(gate, **changes)  # type: ignore[arg-type]
    return evaluate(result, make_policy(changed, ignores), baseline, TODAY)


def failing(evaluation: Evaluation) -> list[Finding]:
    """The findings the evaluation marks FAILING."""
    return [j.finding for j in evaluation.judgements if j.decision is Decision.FAILING]


def assert_no_new_failures(before: Evaluation, after: Evaluation) -> None:
    """Every finding failing `after` already failed `before`, and the verdict is no worse."""
    assert [j.finding for j in before.judgements] == [j.finding for j in after.judgements]
    for old, new in zip(before.judgements, after.judgements, strict=True):
        if new.decision is Decision.FAILING:
            assert old.decision is Decision.FAILING, (old, new)
    if before.verdict is not Verdict.FAILED:
        assert after.verdict is not Verdict.FAILED


@PROPERTY
@given(scenario(), st.data())
def test_raising_fail_on_never_adds_failures(s: Scenario, data: st.DataObject) -> None:
    low = ORDER.index(s[1].fail_on)
    higher = data.draw(st.sampled_from(ORDER[low:]))
    assert_no_new_failures(judge(s), judge(s, fail_on=higher))


@PROPERTY
@given(scenario(), st.data())
def test_raising_a_budget_never_adds_failures(s: Scenario, data: st.DataObject) -> None:
    budgets: Mapping[Severity, int] = s[1].max
    severity = data.draw(st.sampled_from(sorted(budgets)) if budgets else st.nothing())
    raised = {**budgets, severity: budgets[severity] + data.draw(st.integers(1, 5))}
    assert_no_new_failures(judge(s), judge(s, max=raised))


@PROPERTY
@given(scenario(), st.data())
def test_adding_an_ignore_never_adds_failures(s: Scenario, data: st.DataObject) -> None:
    result, gate, ignores, baseline = s
    before = judge(s)
    appended = ignores + (data.draw(ignore_strategy(len(ignores))),)
    assert_no_new_failures(before, judge((result, gate, appended, baseline)))
    # Put first, it renumbers every other entry; still no new failure.
    first = data.draw(ignore_strategy(0))
    renumbered = (first,) + tuple(dataclasses.replace(e, index=e.index + 1) for e in ignores)
    assert_no_new_failures(before, judge((result, gate, renumbered, baseline)))


@PROPERTY
@given(scenario(), st.randoms(use_true_random=False))
def test_finding_order_never_matters(s: Scenario, rng: Random) -> None:
    result, gate, ignores, baseline = s
    shuffled = list(result.findings)
    rng.shuffle(shuffled)
    reordered = dataclasses.replace(result, findings=tuple(shuffled))
    before, after = judge(s), judge((reordered, gate, ignores, baseline))
    assert dataclasses.replace(after, result=result) == before


def test_findings_equal_in_every_sort_field_are_ordered_by_their_whole_value() -> None:
    # Ties on severity, rule, URL, method, parameter and fingerprint are broken by the repr,
    # only for the findings that tie: the order must stay total whatever the input order.
    base = order_xss(H, "Stored XSS", 7)
    twins = [dataclasses.replace(base, description=text) for text in ("b", "c", "a")]
    other = order_xss(M, "Reflected XSS", 8)
    first = run([twins[0], other, twins[1], twins[2]])
    second = run([twins[2], twins[1], other, twins[0]])
    expected = [*sorted(twins, key=repr), other]
    assert [j.finding for j in first.judgements] == expected
    assert [j.finding for j in second.judgements] == expected


@PROPERTY
@given(scenario())
def test_a_baseline_applied_twice_equals_once(s: Scenario) -> None:
    # Applying a baseline twice is its union with itself (entries repeated in one file are
    # findings accepted several times, see test_n_baselined_findings_never_hide_n_plus_one).
    result, gate, ignores, baseline = s
    if baseline is None:
        baseline = Baseline.from_findings(result.findings)
    doubled = baseline.union(baseline)
    assert doubled == baseline
    assert judge((result, gate, ignores, doubled)) == judge((result, gate, ignores, baseline))


@PROPERTY
@given(scenario())
def test_a_baseline_of_the_result_reapplied_equals_once(s: Scenario) -> None:
    result, gate, ignores, _ = s
    once = Baseline.from_findings(result.findings)
    twice = Baseline.from_results([result, result])
    evaluation = judge((result, gate, ignores, twice), new_only=True)
    assert evaluation == judge((result, gate, ignores, once), new_only=True)
    # Everything is known, so nothing is new and nothing can fail on findings.
    assert failing(evaluation) == []
    assert all(j.baseline_state is BaselineState.UNCHANGED for j in evaluation.judgements)
    assert evaluation.fixed == ()


@PROPERTY
@given(scenario())
def test_never_passed_with_a_counted_finding_at_fail_on_without_budget(s: Scenario) -> None:
    gate = s[1]
    evaluation = judge(s)
    breaking = [
        j
        for j in evaluation.judgements
        if j.decision.counted
        and gate.fail_on is not None
        and j.finding.severity >= gate.fail_on
        and j.finding.severity not in gate.max
    ]
    if breaking:
        assert evaluation.verdict is Verdict.FAILED
        assert all(j.decision is Decision.FAILING for j in breaking)


@PROPERTY
@given(scenario())
def test_counts_add_up(s: Scenario) -> None:
    evaluation = judge(s)
    for severity, counts in evaluation.counts.items():
        mine = [j for j in evaluation.judgements if j.finding.severity is severity]
        assert counts.found == len(mine)
        assert counts.found == (
            counts.counted + counts.ignored + counts.false_positive + counts.baselined
        )
        assert counts.ignored == sum(j.decision is Decision.IGNORED for j in mine)
        assert counts.false_positive == sum(j.decision is Decision.FALSE_POSITIVE for j in mine)
        assert counts.failing == sum(j.decision is Decision.FAILING for j in mine)
        states = [j.baseline_state for j in mine]
        assert counts.new == states.count(BaselineState.NEW)
        assert counts.escalated == states.count(BaselineState.ESCALATED)
    used = {j.ignore_index for j in evaluation.judgements if j.decision is Decision.IGNORED}
    assert not used & {e.index for e in evaluation.unused_ignores}


@st.composite
def lowered(draw: st.DrawFn, findings: Sequence[Finding]) -> Baseline:
    """A baseline of some of `findings` at a severity drawn at or below their own."""
    picked = draw(st.lists(st.sampled_from(findings))) if findings else []
    return Baseline.from_findings(
        dataclasses.replace(
            f, severity=draw(st.sampled_from([v for v in Severity if v <= f.severity]))
        )
        for f in picked
    )


@PROPERTY
@given(scenario(), st.booleans(), st.data())
def test_adding_a_baseline_never_hides_a_finding_more_severe_than_its_entry(
    s: Scenario, new_only: bool, data: st.DataObject
) -> None:
    result, gate, ignores, drawn = s
    # The scenario's baseline (drawn from the same pool, so with every severity per fingerprint)
    # plus entries of the result's own findings, some less severe than the finding now.
    baseline = (drawn or Baseline(())).union(data.draw(lowered(result.findings)))
    without = judge((result, gate, ignores, None), new_only=new_only)
    evaluation = judge((result, gate, ignores, baseline), new_only=new_only)
    for before, after in zip(without.judgements, evaluation.judgements, strict=True):
        assert before.finding == after.finding
        entry = after.baseline_entry
        if before.decision.counted and not after.decision.counted:
            # Only the baseline can take a counted finding away, and only with an entry of its
            # fingerprint at least as severe.
            assert after.decision is Decision.BASELINED
            assert entry is not None and entry.fingerprint == after.finding.fingerprint
            assert entry.severity >= after.finding.severity
        if after.baseline_state is BaselineState.ESCALATED:
            assert entry is not None and entry.severity < after.finding.severity
            assert after.decision is not Decision.BASELINED
    # No entry is spent twice: per fingerprint, at most as many paired findings as entries.
    paired = Counter(
        j.finding.fingerprint for j in evaluation.judgements if j.baseline_entry is not None
    )
    entries = Counter(e.fingerprint for e in baseline.entries)
    assert all(paired[f] <= entries[f] for f in paired)
