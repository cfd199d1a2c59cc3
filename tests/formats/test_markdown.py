"""Tests for the `summary.md` report: exact layout, escaping of hostile text, the 1 MiB cap."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest
from conftest import (
    HOSTILE,
    TODAY,
    hostile_finding,
    make_finding,
    make_policy,
    make_report,
    make_result,
)

from formats.deferred import deferred_findings, deferred_report
from formats.width import details_text, table_cells, wide_cells
from scangate.baseline import Baseline, BaselineEntry
from scangate.formats.interface import Report
from scangate.formats.markdown import MAX_BYTES, MarkdownFormatter
from scangate.gate import combine, evaluate
from scangate.model import CountSummary, Finding, ScanResult, ScanStatus, Severity
from scangate.policy import GateSettings, IgnoreRule
from scangate.text import markdown_escape

SAMPLES = ["count-only", "empty", "hostile", "incomplete", "many", "mixed", "one"]

GOLDEN = r"""## scangate: FAILED — counted findings break the gate (exit code 1)

CyberOrigen scan scan\_1 of app\.example\.com.

### Why the gate decided

- 1 high finding\(s\) at or above fail\_on\: high

### Findings by severity

| Severity | Found | Counted | Failing | Ignored (policy) | False positive (provider) | Baselined | New | Escalated | Fixed |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|
| critical | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0 |
| high | 1 | 1 | 1 | 0 | 0 | 0 | 0 | 0 | 0 |
| medium | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 1 |
| low | 1 | 0 | 0 | 1 | 0 | 0 | 1 | 0 | 0 |
| info | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0 |
| **Total** | **2** | **1** | **1** | **1** | **0** | **0** | **1** | **0** | **1** |

### Worst findings

| # | Severity | Decision | Finding | Request | Parameter | Fingerprint |
|---|---|---|---|---|---|---|
| 1 | high | failing | [Reflected XSS in \<q\>](https://console.example.com/f/1) | GET https\://app\.example\.com/search?q=1 | q | fp\-xss |
| 2 | low | ignored (`ignore[0]`), new | [Missing X\-Frame\-Options](https://app.example.com/legacy/admin) | https\://app\.example\.com/legacy/admin |  | fp\-click |

### Warnings

- Warning: `ignore[1]` expired on 2026-01-01 and no longer applies: old
- Warning: `ignore[2]` matched no finding (expires 2027-03-01): never matched

### Scan health

- Provider: CyberOrigen (cyberorigen)
- Status: completed; 100% of the scan ran
- Time: 2026-11-22T10:00:00Z to 2026-11-22T10:12:30Z
- Console: [open in CyberOrigen](https://console.example.com/scans/1)
- Details: scan\_type\: quick
"""  # noqa: E501


def golden_report() -> Report:
    """A small report touching every section: baseline, ignored, expired and unused ignores."""
    xss = Finding.create(
        provider="cyberorigen",
        rule_id="xss",
        title="Reflected XSS in <q>",
        severity=Severity.HIGH,
        url="https://app.example.com/search?q=1",
        method="get",
        parameter="q",
        fingerprint="fp-xss",
        console_url="https://console.example.com/f/1",
    )
    click = Finding.create(
        provider="cyberorigen",
        rule_id="click_jacking",
        title="Missing X-Frame-Options",
        severity=Severity.LOW,
        url="https://app.example.com/legacy/admin",
        fingerprint="fp-click",
        console_url="javascript:alert(1)",
    )
    result = ScanResult(
        provider="cyberorigen",
        scanner="CyberOrigen",
        scan_id="scan_1",
        target="app.example.com",
        status=ScanStatus.COMPLETED,
        started_at=datetime(2026, 11, 22, 10, 0, tzinfo=UTC),
        finished_at=datetime(2026, 11, 22, 10, 12, 30, tzinfo=UTC),
        findings=(click, xss),
        console_url="https://console.example.com/scans/1",
        details={"scan_type": "quick"},
    )
    ignores = (
        IgnoreRule(index=0, rule="click_jacking", reason="legacy admin (SEC-12)"),
        IgnoreRule(index=1, rule="sqli", reason="old", expires=date(2026, 1, 1)),
        IgnoreRule(
            index=2, cwe=79, url="https://x/*", reason="never matched", expires=date(2027, 3, 1)
        ),
    )
    baseline = Baseline.from_entries(
        [
            BaselineEntry(fingerprint="fp-xss", rule_id="xss", severity=Severity.HIGH),
            BaselineEntry(fingerprint="fp-gone", rule_id="sqli", severity=Severity.MEDIUM),
        ]
    )
    return make_report(result=result, ignore=ignores, baseline=baseline)


def render(report: Report, **options: int) -> str:
    """Render `report` as Markdown."""
    return MarkdownFormatter(**options).render(report)


def table_rows(text: str, heading: str) -> list[str]:
    """The body rows of the table under `heading`."""
    section = text.split(heading + "\n\n", 1)[1].split("\n\n", 1)[0]
    return section.splitlines()[2:]


OWN_TAGS = re.compile(r"^(<details><summary>[^<>]*</summary>|</details>)$", re.MULTILINE)
"""The only HTML scangate writes: the block of full values under the findings table."""


def without_own_tags(text: str) -> str:
    """`text` without scangate's own `<details>` lines (each a whole line of its own)."""
    return OWN_TAGS.sub("", text)


def unescaped_pipes(line: str) -> int:
    """How many `|` in `line` are table delimiters (not backslash-escaped)."""
    return len(re.findall(r"(?<!\\)\|", line.replace("\\\\", "")))


def test_golden_summary() -> None:
    assert render(golden_report()) == GOLDEN


@pytest.mark.parametrize("name", SAMPLES)
def test_every_sample_starts_with_the_verdict_and_fits(
    name: str, reports: dict[str, Report]
) -> None:
    report = reports[name]
    text = render(report)
    verdict = report.verdict.value.upper()
    assert text.splitlines()[0].startswith(f"## scangate: {verdict} — ")
    assert len(text.encode("utf-8")) <= MAX_BYTES
    assert text.endswith("\n") and not text.endswith("\n\n")


def test_hostile_text_cannot_inject_markup_links_or_workflow_commands(
    reports: dict[str, Report],
) -> None:
    text = render(reports["hostile"])
    for line in text.splitlines():
        assert not re.match(r"\s*(::|##\[)", line), line
    assert not re.search(r"(?<!\\)[<>]", without_own_tags(text)) and "\\<script\\>" in text
    assert "](javascript" not in text and "(javascript:x)" not in text
    assert "\ud800" not in text and "\x00" not in text and "\u202e" not in text
    text.encode("utf-8")
    targets = re.findall(r"\]\(([^)]*)\)", text)
    assert targets and all(t.startswith(("http://", "https://")) for t in targets)
    assert all(re.fullmatch(r"[A-Za-z0-9%/:;=?@&+,!~#._\-\[\]]+", t) for t in targets)
    for row in table_rows(text, "### Worst findings"):
        assert unescaped_pipes(row) == 8, row  # seven cells: `|` stays inside its cell


def test_hostile_scan_level_text_is_escaped() -> None:
    result = replace(
        make_result([make_finding(1)], message=HOSTILE, scan_id="id|" + HOSTILE),
        scanner="<b>Evil</b>",
        console_url="javascript:alert(1)",
        details={"phase": "[x](https://evil)"},
        count_summary=CountSummary(
            alert_count=1, checks=(HOSTILE,), console_url="data:text/html,x"
        ),
    )
    report = replace(make_report(result=result), interrupted="SIG\n::error::x")
    text = render(report)
    for line in text.splitlines():
        assert not re.match(r"\s*(::|##\[)", line), line
    assert not re.search(r"(?<!\\)[<>]", without_own_tags(text)) and "\\<b\\>Evil\\</b\\>" in text
    health = text.split("### Scan health")[1]
    assert "](" not in health  # neither the scan console nor the count-only link is http(s)
    assert "- Details: phase\\: \\[x\\]\\(https\\://evil\\)" in text
    assert "the provider's console" in text


def test_only_http_links_are_made() -> None:
    finding = make_finding(3, console_url="data:text/html,<script>x</script>", url="ftp://h/x")
    text = render(make_report([finding]))
    assert "](" not in table_rows(text, "### Worst findings")[0]
    fallback = make_finding(3, console_url="javascript:x", url="http://h/a (b)|c")
    row = table_rows(render(make_report([fallback])), "### Worst findings")[0]
    assert "](http://h/a%20%28b%29%7Cc)" in row


def test_at_most_fifty_findings_with_a_note(reports: dict[str, Report]) -> None:
    text = render(reports["many"])
    rows = table_rows(text, "### Worst findings")
    assert len(rows) == 50
    assert all(row.split(" | ")[1:3] == ["critical", "failing"] for row in rows)
    assert [row.split(" | ")[0] for row in rows] == [f"| {n}" for n in range(1, 51)]
    assert "Showing the 50 most severe of 10000 findings; all are in the full reports." in text
    assert "1 MiB" not in text


@pytest.fixture(scope="module")
def huge() -> Report:
    """10,000 hostile findings whose titles are 40 times the hostile text."""
    return make_report([replace(hostile_finding(i), title=HOSTILE * 40) for i in range(10_000)])


def test_huge_hostile_report_stays_within_one_mib(huge: Report) -> None:
    text = render(huge, max_findings=100_000)
    size = len(text.encode("utf-8"))
    assert MAX_BYTES - 64 * 1024 < size <= MAX_BYTES  # trimmed, but not needlessly
    shown = len(table_rows(text, "### Worst findings"))
    assert 50 < shown < 10_000
    assert f"Showing the {shown} most severe of 10000 findings" in text
    assert "The list was cut to stay within GitHub's 1 MiB step-summary limit." in text
    assert text.endswith(
        "\n- Console: [open in CyberOrigen](https://console.example.com/scans/scan_abc123)\n"
    )


def test_default_huge_report_is_small(huge: Report) -> None:
    text = render(huge)
    assert len(table_rows(text, "### Worst findings")) == 50
    assert len(text.encode("utf-8")) < 256 * 1024


def test_hard_cap_cuts_at_a_line_and_says_so() -> None:
    report = make_report([make_finding(i) for i in range(40)])
    text = render(report, max_bytes=800)
    assert len(text.encode("utf-8")) <= 800
    assert text.endswith(
        "\n\n_The summary was cut here to stay within GitHub's 1 MiB step-summary limit; "
        "see the full reports._\n"
    )
    assert text.startswith("## scangate: FAILED")


def test_baseline_columns_only_with_a_baseline() -> None:
    without = render(make_report([make_finding(1)]))
    head = "| Severity | Found | Counted | Failing | Ignored (policy) | False positive (provider) |"
    assert head + "\n" in without
    baseline = Baseline.from_findings([make_finding(1)])
    with_baseline = render(make_report([make_finding(1)], baseline=baseline))
    assert head + " Baselined | New | Escalated | Fixed |\n" in with_baseline


def test_new_only_baselined_findings_are_shown_as_such() -> None:
    baseline = Baseline.from_findings([make_finding(3)])
    report = make_report(
        [make_finding(3), make_finding(8)], baseline=baseline, gate=GateSettings(new_only=True)
    )
    rows = table_rows(render(report), "### Worst findings")
    assert [row.split(" | ")[2] for row in rows] == ["failing, new", "baselined"]
    assert "| high | 2 | 1 | 1 | 0 | 0 | 1 | 1 | 0 | 0 |" in render(report)


def test_escalated_findings_and_false_positives_are_shown_as_such() -> None:
    low = make_finding(3, severity=Severity.LOW)
    high = replace(low, severity=Severity.HIGH, title="Stored XSS")  # same fingerprint
    flagged = make_finding(5, severity=Severity.HIGH, false_positive=True)
    report = make_report(
        [high, flagged],
        baseline=Baseline.from_findings([low]),
        gate=GateSettings(new_only=True),
    )
    text = render(report)
    rows = table_rows(text, "### Worst findings")
    assert [row.split(" | ")[2] for row in rows] == [
        "failing, escalated from low",
        "false positive, new",
    ]
    # found, counted, failing, ignored, false positive, baselined, new, escalated, fixed
    assert "| high | 2 | 1 | 1 | 0 | 1 | 0 | 1 | 1 | 0 |" in text
    why = "1 finding(s) escalated: more severe than their baseline entry, so not accepted by it"
    assert "- " + markdown_escape(why) in text


def test_count_only_note(reports: dict[str, Report]) -> None:
    text = render(reports["count-only"])
    assert (
        "- Count only: VAddy reports 1 alert(s) without per-finding detail; scan count 120; "
        "checks run: SQL Injection, XSS. Each alert's details are in "
        "[the console](https://console.example.com/scans/scan_abc123)."
    ) in text


def test_incomplete_scan_health(reports: dict[str, Report]) -> None:
    text = render(reports["incomplete"])
    assert text.startswith("## scangate: INCOMPLETE — the scan did not complete (exit code 4)\n")
    assert "- scan did not complete\\: scanner crashed\n" in text
    assert "- Status: failed; 100% of the scan ran\n" in text
    assert "- Message: scanner crashed\n" in text


def test_interrupted_is_said_up_front() -> None:
    result = make_result([], status=ScanStatus.INTERRUPTED, completeness=40)
    report = replace(make_report(result=result), interrupted="SIGTERM")
    lines = render(report).splitlines()
    assert lines[0] == "## scangate: INCOMPLETE — scangate was interrupted"
    assert lines[2] == (
        "**Interrupted** (SIGTERM): scangate was stopped before the scan finished; "
        "these reports are partial."
    )


def test_empty_report_says_no_findings(reports: dict[str, Report]) -> None:
    text = render(reports["empty"])
    assert "### Worst findings\n\nNo findings.\n" in text
    assert "| **Total** | **0** | **0** | **0** | **0** |" in text


def merged_report() -> Report:
    """Two scans of one policy: one fails, one passes."""
    policy = make_policy()
    first = evaluate(make_result([make_finding(4)], scan_id="scan_a"), policy, None, TODAY)
    second = evaluate(
        make_result([make_finding(1), make_finding(6)], scan_id="scan_b", target="https://b"),
        policy,
        None,
        TODAY,
    )
    return replace(make_report([]), evaluations=(first, second), verdict=combine([first, second]))


def test_merged_report_has_totals_and_a_section_per_scan() -> None:
    text = render(merged_report())
    assert text.startswith("## scangate: FAILED")
    assert "\n\nMerged from 2 scans: 1 failed, 1 passed.\n\n" in text
    assert "| **Total** | **3** | **3** | **1** | **0** |" in text  # summed over both scans
    rows = table_rows(text, "### Worst findings (all scans)")
    assert [row.split(" | ")[:4] for row in rows] == [
        ["| 1", "1", "critical", "failing"],
        ["| 2", "2", "low", "below threshold"],
        ["| 2", "3", "low", "below threshold"],
    ]
    first = text.index("### Scan 1 of 2: FAILED\n\nCyberOrigen scan scan\\_a of ")
    second = text.index("### Scan 2 of 2: PASSED\n\nCyberOrigen scan scan\\_b of https\\://b.")
    assert first < second
    assert (
        "### Why the gate decided\n\n"
        "- Scan 1 of 2: FAILED\n"
        "  - 1 critical finding\\(s\\) at or above fail\\_on\\: high\n"
        "- Scan 2 of 2: PASSED\n"
        "  - no counted finding breaks the gate \\(fail\\_on\\: high\\)\n\n"
        "### Findings by severity (all scans)"
    ) in text
    assert text.count("#### Findings by severity") == 2
    assert text.count("#### Scan health") == 2


def test_output_is_deterministic(reports: dict[str, Report]) -> None:
    assert render(reports["mixed"]) == render(reports["mixed"])
    shuffled = make_report(list(reversed([make_finding(i) for i in range(30)])))
    assert render(shuffled) == render(make_report([make_finding(i) for i in range(30)]))


def test_registry_names() -> None:
    assert (MarkdownFormatter.name, MarkdownFormatter.filename) == ("markdown", "summary.md")


def long_value_report() -> Report:
    """Findings whose every table value is long: title, URL, parameter, fingerprint, baseline."""
    long = [
        make_finding(
            n,
            title="Blind SQL injection through the order search form " * 4 + str(n),
            url="https://app.example.com/" + "segment/" * 40 + f"{n}?filter=" + "x" * 120,
            parameter="filter[customer][address][street][name][first]" * 2,
        )
        for n in range(3)
    ]
    hostile = [hostile_finding(3)]
    unrecorded = BaselineEntry(
        fingerprint=long[1].fingerprint, rule_id=long[1].rule_id, severity_recorded=False
    )
    return make_report(
        [*long, *hostile],
        gate=GateSettings(fail_on=Severity.CRITICAL, new_only=True),
        ignore=(IgnoreRule(index=12, rule=long[1].rule_id, reason="accepted (SEC-4)"),),
        baseline=Baseline.from_entries([unrecorded]),
    )


@pytest.mark.parametrize("name", [*SAMPLES, "long values"])
def test_every_table_fits_githubs_column(name: str, reports: dict[str, Report]) -> None:
    """Rendered as GitHub does, no table cell outside `<details>` is over 80 characters."""
    report = long_value_report() if name == "long values" else reports[name]
    text = render(report)
    assert not wide_cells(text), wide_cells(text)[:3]
    assert table_cells(text), "the check looked at a table"


def test_shortened_values_are_in_full_in_the_details_block() -> None:
    report = long_value_report()
    text = render(report)
    rows = table_rows(text, "### Worst findings")
    folded = details_text(text)
    assert text.count("<details><summary>") == 1 and "\n</details>" in text
    judgements = report.evaluations[0].judgements
    ranked = sorted(judgements, key=lambda j: -j.finding.severity)
    assert len(rows) == len(ranked)
    for judgement in judgements:
        finding = judgement.finding
        short = finding.fingerprint[:12] + "…"
        assert any(f"| {short} |" in row for row in rows)
        (row,) = (row for row in rows if f"| {short} |" in row)
        number = row.split(" | ")[0].removeprefix("| ")
        item = next(line for line in folded.splitlines() if line.startswith(f"#{number}: "))
        for value in (finding.title, finding.url, finding.parameter, finding.fingerprint):
            assert " ".join(value.split()) in item, (number, value[:40])
        assert judgement.baseline_text in item
    assert "escalated from a baseline entry without a severity (read as info)" in folded


def test_short_rows_need_no_details_block() -> None:
    assert "<details>" not in render(golden_report())


# --- dated enforcement and expiring ignores (issue 20) ----------------------------------------

DEFERRED_HEAD = r"""## scangate: PASSED — 2 counted findings would fail from 2027-01-05; the gate is not enforced yet (exit code 0)

CyberOrigen scan scan\_abc123 of https\://app\.example\.com.

### Why the gate decided

- 2 findings would fail the gate; it is enforced from 2027\-01\-05 \(in 44 days\)
- would fail\: 2 high finding\(s\) at or above fail\_on\: high

### Would fail from 2027-01-05

The gate is enforced from 2027-01-05 (in 44 days). Until then these findings are reported but do not fail the job; from that day they do. They are marked _would fail_ in the findings table.

- **high** [SQL Injection in search](https://console.example.com/findings/1) — GET https\://app\.example\.com/api/items/1?q=1\&page=2
- **high** [Reflected XSS](https://console.example.com/findings/2) — POST https\://app\.example\.com/api/items/2?q=1\&page=2

### Findings by severity
"""  # noqa: E501


def test_deferred_findings_have_their_own_heading_and_decision_label() -> None:
    text = render(deferred_report())
    assert text.startswith(DEFERRED_HEAD)
    rows = [line for line in text.splitlines() if line.startswith("| ") and "would fail" in line]
    assert [row.split(" | ")[1:3] for row in rows] == [["high", "would fail"]] * 2
    assert (
        "### Warnings\n\n- Warning: `ignore[0]` expires on 2026-11-27 (in 5 days): "
        r"accepted until SEC\-12 ships" in text
    )


def test_once_enforced_there_is_no_would_fail_heading() -> None:
    text = render(deferred_report(enforce_from=None))
    assert text.startswith("## scangate: FAILED — counted findings break the gate (exit code 1)")
    assert "Would fail" not in text and "would fail" not in text


def test_an_incomplete_scan_with_deferred_findings_keeps_its_headline() -> None:
    gate = deferred_report().gate
    result = make_result(deferred_findings(), status=ScanStatus.TIMED_OUT, completeness=50)
    text = render(make_report(result=result, gate=gate))
    assert text.startswith("## scangate: INCOMPLETE — the scan did not complete (exit code 4)")
    assert "### Would fail from 2027-01-05" in text


def test_hostile_text_in_the_would_fail_list_stays_inert() -> None:
    gate = GateSettings(fail_on=Severity.INFO, enforce_from=date(2027, 1, 5))
    text = render(make_report([hostile_finding(n) for n in range(3)], gate=gate))
    block = text[text.index("### Would fail from") : text.index("### Findings by severity")]
    assert block.count("\n- ") == 3
    for line in block.splitlines():
        assert not re.match(r"\s*(::|##\[)", line), line
    assert not re.search(r"(?<!\\)[<>]", without_own_tags(block)) and "\\<script\\>" in block
    assert "](javascript" not in block and "\u202e" not in block and "\x00" not in block
