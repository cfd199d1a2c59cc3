"""The sticky comment's body as GitHub renders it (cmarkgfm): verdict, counts, lists, safety."""

from __future__ import annotations

import re
from dataclasses import replace
from html.parser import HTMLParser

import pytest
from conftest import HOSTILE, hostile_finding, make_finding, make_report, make_result
from formats.width import github_html
from hypothesis import given, settings
from hypothesis import strategies as st

from scangate.baseline import Baseline
from scangate.ci.comment_body import (
    GITHUB_MAX_CHARS,
    SECTIONS,
    code,
    comment_body,
    listed,
    safe_text,
)
from scangate.ci.github import clean
from scangate.formats.interface import Report
from scangate.model import Decision, ScanStatus, Severity

MARKER = "<!-- scangate:comment:0123456789abcdef -->"
RUN = "https://github.com/acme/shop/actions/runs/42"
MORE = re.compile(r"… and (\d+) more failing findings not shown here")


class _Html(HTMLParser):
    """Every tag (with its attributes) and the text outside `<code>` and inside it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.codes: list[str] = []
        self._in_code = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "code":
            self._in_code = True
            self.codes.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "code":
            self._in_code = False

    def handle_data(self, data: str) -> None:
        if self._in_code:
            self.codes[-1] += data
        else:
            self.text.append(data)

    def handle_comment(self, data: str) -> None:
        self.tags.append(("!--", {"text": data}))


def rendered(markdown: str) -> _Html:
    parser = _Html()
    parser.feed(github_html(markdown))
    parser.close()
    return parser


def body(report: Report, **options: object) -> str:
    return comment_body(report, marker=MARKER, run_url=RUN, **options)  # type: ignore[arg-type]


def failing_count(report: Report) -> int:
    return sum(
        1 for e in report.evaluations for j in e.judgements if j.decision is Decision.FAILING
    )


# --- what it says -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("report", "headline"),
    [
        (make_report([make_finding(4)]), "❌ scangate: failed"),
        (make_report([make_finding(1)]), "✅ scangate: passed"),
        (
            make_report(result=make_result([], status=ScanStatus.FAILED, message="crashed")),
            "⚠️ scangate: scan incomplete",
        ),
        (make_report([make_finding(4)], interrupted="SIGTERM"), "⏹️ scangate: interrupted"),
    ],
)
def test_the_marker_comes_first_then_the_verdict(report: Report, headline: str) -> None:
    text = body(report)
    first, second = text.splitlines()[:2]
    assert first == MARKER
    assert second.startswith(f"### {headline}")
    # The marker stays hidden: GitHub renders it as an HTML comment, not text.
    assert ("!--", {"text": MARKER[4:-3]}) in rendered(text).tags


def test_the_counts_are_the_gate_counts_per_severity() -> None:
    report = make_report([make_finding(i) for i in range(23)])
    [evaluation] = report.evaluations
    text = body(report)
    for severity in Severity:
        counts = evaluation.counts[severity]
        assert f"| {severity.label} | {counts.counted} | {counts.failing} |" in text


def test_against_a_baseline_it_says_new_escalated_and_fixed() -> None:
    findings = [make_finding(i) for i in range(6)]
    gone = make_finding(99)
    weaker = replace(findings[4], severity=Severity.LOW)  # critical now
    baseline = Baseline.from_findings([weaker, *findings[1:3], gone])
    text = body(make_report(findings, baseline=baseline))
    assert "Against the baseline: **3 new**, **1 escalated**, 1 fixed" in text
    assert "Against the baseline" not in body(make_report(findings))


def test_the_run_and_the_reports_are_linked() -> None:
    html = rendered(body(make_report([make_finding(4)]), reports_dir="out/reports"))
    assert [attrs["href"] for tag, attrs in html.tags if tag == "a"] == [RUN]
    assert "out/reports" in html.codes


def test_a_run_url_that_is_not_http_is_not_linked() -> None:
    text = comment_body(make_report([make_finding(4)]), marker=MARKER, run_url="javascript:x()")
    assert "<a" not in github_html(text)


# --- nothing dropped silently -----------------------------------------------------------------


def test_ten_thousand_findings_fit_githubs_limit_and_say_how_many_are_not_shown() -> None:
    report = make_report([make_finding(i) for i in range(10_000)])
    text = body(report)
    assert len(text) <= GITHUB_MAX_CHARS
    listed_items = len(re.findall(r"^- \*\*(Critical|High)\*\*", text, re.MULTILINE))
    [more] = MORE.findall(text)
    assert listed_items + int(more) == failing_count(report) == 4000
    assert "#### Failing findings (4000)" in text


@settings(max_examples=40, deadline=None)
@given(count=st.integers(0, 120), limit=st.integers(2_500, 40_000))
def test_any_limit_is_kept_and_every_failing_finding_is_listed_or_counted(
    count: int, limit: int
) -> None:
    report = make_report([make_finding(i) for i in range(count)])
    text = body(report, limit=limit)
    assert len(text.encode("utf-16-le")) // 2 <= limit
    assert text.startswith(MARKER + "\n")
    shown = len(re.findall(r"^- \*\*(Critical|High)\*\*", text, re.MULTILINE))
    more = sum(int(n) for n in MORE.findall(text))
    assert shown + more == failing_count(report)


def test_listed_says_how_many_it_left_out() -> None:
    lines = listed("Things", ["a", "b", "c"], 1, "things")
    assert lines[1:] == [
        "#### Things (3)",
        "",
        "- a",
        "- … and 2 more things not shown here: see the reports",
    ]
    assert listed("Things", [], 5, "things") == []


def test_a_new_section_is_one_function_on_listed() -> None:
    """How the lead adds "Would fail from" / "Expiring ignores": a function, added to SECTIONS."""

    def expiring(report: Report, shown: int) -> list[str]:
        return listed("Expiring ignores", ["ignore[0] expires 2026-12-01"], shown, "entries")

    text = comment_body(
        make_report([make_finding(4)]), marker=MARKER, sections=(*SECTIONS, expiring)
    )
    assert "#### Expiring ignores (1)\n\n- ignore[0] expires 2026-12-01\n" in text


# --- untrusted text ---------------------------------------------------------------------------

_ALLOWED_TAGS = {"h3", "h4", "p", "table", "thead", "tbody", "tr", "th", "td", "ul", "li"}
_ALLOWED_TAGS |= {"strong", "code", "a", "sub", "!--"}


def test_hostile_findings_add_no_markup_link_or_mention() -> None:
    mentions = "@octocat @all ping #1 and !2 "
    findings = [hostile_finding(i) for i in range(6)]
    findings += [make_finding(4, title=mentions + HOSTILE, parameter="`` ` @x")]
    report = make_report(findings)
    html = rendered(body(report, subject="policy @team/x.yml"))
    assert {tag for tag, _ in html.tags} <= _ALLOWED_TAGS
    assert [attrs["href"] for tag, attrs in html.tags if tag == "a"] == [RUN]
    prose = "".join(html.text)
    assert re.search(r"[@#!](?!\u200b)", prose.replace("scangate", "")) is None
    assert "@\u200boctocat" in prose and "@\u200bteam" in prose
    # Every finding's URL came through whole, as a code span, not as a link.
    assert any("<script>alert(1)</script>" in c for c in html.codes)


@settings(max_examples=200, deadline=None)
@given(text=st.text(min_size=1))
def test_a_code_span_shows_any_text_literally(text: str) -> None:
    shown = clean(text, 300)
    if not shown:
        return
    html = rendered(f"x {code(text)} y")
    assert html.codes == [shown]
    assert {tag for tag, _ in html.tags} == {"p", "code"}


@settings(max_examples=200, deadline=None)
@given(text=st.text(min_size=1))
def test_safe_text_is_plain_text_with_mentions_and_references_broken(text: str) -> None:
    html = rendered(f"x {safe_text(text)} y")
    assert {tag for tag, _ in html.tags} <= {"p"}
    expected = re.sub("[@#!]", lambda m: m.group() + "\u200b", clean(text, 300))
    assert "".join(html.text).strip() == f"x {expected} y".strip()


def test_before_enforce_from_the_comment_lists_what_would_fail_and_when() -> None:
    from formats.deferred import ENFORCE_FROM, EXPIRES, deferred_report

    text = body(deferred_report())
    assert text.splitlines()[1] == (
        f"### ✅ scangate: passed, but 2 would fail once the gate is enforced from {ENFORCE_FROM} "
        "(in 44 days)"
    )
    section = text.split(f"Would fail: the gate is enforced from {ENFORCE_FROM} (in 44 days)")[1]
    assert "SQL Injection in search" in section and "Reflected XSS" in section
    assert "Failing findings" not in text
    assert f"expires on {EXPIRES} (in 5 days): accepted until SEC\\-12 ships" in text


def test_once_enforced_the_same_findings_are_failing_and_nothing_would_fail() -> None:
    from formats.deferred import deferred_report

    text = body(deferred_report(enforce_from=None))
    assert "### ❌ scangate: failed" in text
    failing = text.split("Failing findings")[1]
    assert "SQL Injection in search" in failing and "Reflected XSS" in failing
    assert "Would fail" not in text
