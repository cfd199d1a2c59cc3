"""The `junit.xml` report: one test suite per scan, one test case per finding (design §4).

The document validates against `junit-jenkins.xsd` and, but for one element, `junit-ant.xsd`
(formats.md §2.1): `testsuites` > `testsuite` (with `package` and `id`) > `properties`,
`testcase`*, `system-out`, `system-err`; each test case holds at most one of `failure`, `error`
or `skipped`. The one element the Ant XSD does not allow is a test case's own `system-out`,
which is the only `system-out` GitLab reads (formats.md §2.3): GitLab, Jenkins and Azure
DevOps are the consumers, and they read it, so the findings' details go there.

Mapping (formats.md §2.5):

- gate-breaking findings (`Decision.FAILING`) are `failure`s: a one-line `message`, and the
  details in the element text, which starts with the same summary line because GitLab shows
  only the text (formats.md §2.3);
- ignored, false-positive and baselined findings are `skipped`, with the reason;
- counted findings that pass (warning, within budget, below threshold) are passing cases; their
  reasons are also in the suite's `system-out`, one line each (Jenkins shows it on the suite
  page, GitLab does not read it);
- findings deferred until `gate.enforce_from` are passing cases too, never `failure`s (Jenkins
  marks a build with failures unstable whatever the exit code): their `system-out` says they
  would fail from that day;
- every skipped and passing case carries the finding's details (URL, method, parameter,
  description, evidence...) in its own `system-out`, which GitLab shows with the case. A
  failure's details are its element text already, which every consumer shows, so a failing
  case has no `system-out` (the details would count twice against GitLab's 30 MB);
- every suite starts with one scan-health case, so no report is ever empty (Jenkins errors
  with "None of the test reports contained any result", formats.md §2.2). It is an `error` when
  scangate was interrupted, or when the scan did not complete and `fail_on_incomplete` is set.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from scangate.formats.interface import Formatter, Report
from scangate.model import (
    BaselineState,
    Decision,
    Evaluation,
    Finding,
    Judgement,
    ScanResult,
    incomplete_fails,
)
from scangate.text import one_line, xml_safe

_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
_MESSAGE_LIMIT = 300
_NAME_LIMIT = 200
_FIELD_LIMIT = 8192
"""Free-text fields (description, remediation) are capped to this many characters each."""
_TEXT_LIMIT = 32_768
"""A failure's whole text is capped to this many characters."""
_LOG_LIMIT = 1_000_000
"""The suite `system-out` is capped to this many characters."""
DETAIL_BUDGET = 20_000_000
"""UTF-8 bytes of failure details per document. GitLab rejects JUnit files over 30 MB
(formats.md §2.3); past this budget, failures keep only their summary and fingerprint."""
OUTPUT_BUDGET = 5_000_000
"""UTF-8 bytes of the other cases' `system-out` details per document, apart from the failures'
budget so that warnings never crowd out a failure's details; past it, a case's `system-out`
keeps only its summary and fingerprint."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SKIPPED = frozenset({Decision.IGNORED, Decision.FALSE_POSITIVE, Decision.BASELINED})
_NOT_CLASS_CHARS = re.compile(r"[^A-Za-z0-9_-]+")
HEALTH_CLASSNAME = "dast.scan"
"""The `classname` of every suite's scan-health and verdict case."""


class JUnitFormatter(Formatter):
    """Renders a `Report` as JUnit XML for GitLab, Jenkins and Azure DevOps."""

    name = "junit"
    filename = "junit.xml"

    def chunks(self, report: Report) -> Iterator[str]:
        """See `Formatter.chunks`: suite openings, then test cases a batch at a time.

        The bytes are those of `ET.indent` and `ET.tostring` over the whole tree: each piece
        is indented at its depth and given the tail the whole-tree indent would give it.
        """
        yield _DECLARATION + "<testsuites>" + _INDENT[1]
        if not report.evaluations:
            suite = _no_results_suite(report)
            ET.indent(suite, level=1)
            suite.tail = _INDENT[0]
            yield ET.tostring(suite, encoding="unicode")
        state = _State()
        for index, evaluation in enumerate(report.evaluations):
            last = index == len(report.evaluations) - 1
            yield from _suite(index, evaluation, report, state)
            yield _INDENT[0] if last else _INDENT[1]
        yield "</testsuites>\n"


_INDENT = ("\n", "\n  ", "\n    ")
"""What `ET.indent` puts before an element at depth 0, 1 and 2."""
_BATCH = 500
"""Test cases serialized per `ET.tostring` call: one call per case would cost more than the
serializing; a batch of them is a few hundred kilobytes held at a time."""
_WRAPPER = "_"


def _serialize(elements: list[ET.Element]) -> str:
    """`elements` (children of a suite, tails set) as ElementTree writes them, in one call.

    They are serialized inside a wrapper element whose tags are then cut off: ElementTree
    writes `<_>`, the children, `</_>`, and nothing else of the wrapper (it has no attributes).
    """
    wrapper = ET.Element(_WRAPPER)
    wrapper.extend(elements)
    text = ET.tostring(wrapper, encoding="unicode")
    return text[len(_WRAPPER) + 2 : -(len(_WRAPPER) + 3)]


def _start_tag(element: ET.Element) -> str:
    """The start tag of a childless `element` as ElementTree writes it (attributes escaped),
    followed by the indentation of its first child."""
    element.text = _INDENT[2]
    text = ET.tostring(element, encoding="unicode")
    return text[: -len(f"</{element.tag}>")]


def _child(element: ET.Element, tail: str = _INDENT[2]) -> ET.Element:
    """`element`, a child of a suite, indented as the whole-tree `ET.indent` would."""
    ET.indent(element, level=2)
    element.tail = tail
    return element


@dataclass
class _State:
    """What must hold across the whole document: unique case keys and the detail budget."""

    used: set[tuple[str, str]] = field(default_factory=set)
    next_suffix: dict[tuple[str, str], int] = field(default_factory=dict)
    budget: int = DETAIL_BUDGET
    output_budget: int = OUTPUT_BUDGET

    def claim(self, classname: str, name: str, fingerprint: str) -> str:
        """Return a name unique with `classname` in this document, disambiguating if needed.

        GitLab keeps only the first case per `classname`+`name` (formats.md §2.3), so a
        colliding name gets the fingerprint (when there is one), then a counter, appended.
        """
        candidate = name
        if (classname, candidate) in self.used and fingerprint:
            candidate = f"{name} (fingerprint {_clean_line(fingerprint, 40)})"
        base = (classname, candidate)
        counter = self.next_suffix.get(base, 2)
        while (classname, candidate) in self.used:
            candidate = f"{base[1]} #{counter}"
            counter += 1
        if counter != 2:  # only collisions are remembered: 100,000 entries of 2 cost ~10 MB
            self.next_suffix[base] = counter
        self.used.add((classname, candidate))
        return candidate

    def spend(self, text: str) -> bool:
        """Take `text`'s size from the budget; False (and nothing taken) when it does not fit."""
        size = len(text.encode("utf-8"))
        if size > self.budget:
            return False
        self.budget -= size
        return True

    def spend_output(self, text: str) -> bool:
        """`spend`, from the budget of the other cases' `system-out`."""
        size = len(text.encode("utf-8"))
        if size > self.output_budget:
            return False
        self.output_budget -= size
        return True


@dataclass
class _SuiteLog:
    """The suite's `system-out` lines and its per-outcome counts."""

    lines: list[str] = field(default_factory=list)
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    trimmed: int = 0
    trimmed_output: int = 0


def _clean(text: str, limit: int = _FIELD_LIMIT) -> str:
    """Untrusted multi-line text: XML-forbidden characters dropped, newlines normalized, capped.

    ElementTree escapes markup but not a bare CR in element text, which a parser would fold.
    """
    safe = xml_safe(text).replace("\r\n", "\n").replace("\r", "\n")
    if len(safe) <= limit:
        return safe
    return safe[:limit] + f"\n[... {len(safe) - limit} more characters cut by scangate]"


def _clean_line(text: str, limit: int = _MESSAGE_LIMIT) -> str:
    """Untrusted one-line text (attribute values, names): one line, capped."""
    return one_line(xml_safe(text), limit)


def _timestamp(moment: datetime | None) -> str:
    """UTC without a timezone suffix, as the Ant XSD requires; a naive time is taken as UTC."""
    moment = moment or _EPOCH
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    # Not `strftime("%Y")`: it leaves years before 1000 unpadded (`999-01-01`), which the Ant
    # XSD's timestamp pattern refuses; `isoformat` always writes four digits.
    return moment.astimezone(UTC).replace(tzinfo=None, microsecond=0).isoformat()


def _duration(result: ScanResult) -> str:
    """Seconds from start to finish with at most three decimals (Surefire `time` pattern)."""
    if result.started_at is None or result.finished_at is None:
        return "0"
    seconds = (result.finished_at - result.started_at).total_seconds()
    return f"{max(seconds, 0.0):.3f}"


def _host(target: str) -> str:
    """The target's host name for `testsuite@hostname` (non-empty: the Ant XSD requires it)."""
    try:
        # A bare host (`staging.example.com`, a CyberOrigen target) parses as a path alone.
        host = urlsplit(target).hostname or urlsplit("//" + target).hostname
    except ValueError:
        host = None
    return _clean_line(host or "", 255) or "localhost"


def _slug(text: str) -> str:
    """A `classname` segment: dots would add Jenkins package levels, so only [A-Za-z0-9_-]."""
    return _NOT_CLASS_CHARS.sub("_", xml_safe(text)).strip("_")[:80] or "unnamed"


def _suite(index: int, evaluation: Evaluation, report: Report, state: _State) -> Iterator[str]:
    """One `testsuite` for one scan: properties, the health case, one case per finding."""
    result = evaluation.result
    suite = _suite_element(index, result)
    log = _SuiteLog(lines=_log_header(evaluation, report))
    # The counts are attributes of the start tag, written before any case: count them first.
    decisions = [j.decision for j in evaluation.judgements]
    counted = (
        decisions.count(Decision.FAILING),
        int(_health_problem(result, report) is not None),
        sum(1 for d in decisions if d in _SKIPPED),
    )
    failures, errors, skipped = counted
    _set_counts(suite, tests=len(decisions) + 1, failures=failures, errors=errors, skipped=skipped)
    yield _start_tag(suite)
    properties = ET.Element("properties")
    _add_properties(properties, _properties(evaluation, report))
    batch = [_child(properties), _child(_health_case(evaluation, report, state, log))]
    for judgement in evaluation.judgements:
        batch.append(_child(_finding_case(judgement, evaluation, state, log)))
        if len(batch) >= _BATCH:
            yield _serialize(batch)
            batch = []
    if log.trimmed:
        log.lines.append(
            f"{log.trimmed} failure(s) carry only their summary: the {DETAIL_BUDGET:,}-byte "
            "detail budget of junit.xml was spent (GitLab's limit is 30 MB per file); "
            "scangate.json and scangate.sarif hold every detail."
        )
    if log.trimmed_output:
        log.lines.append(
            f"{log.trimmed_output} passing or skipped case(s) carry only their summary in "
            f"system-out: the {OUTPUT_BUDGET:,}-byte budget for them was spent; "
            "scangate.json and scangate.sarif hold every detail."
        )
    if (log.failures, log.errors, log.skipped) != counted:
        # The start tag is written: a case mapping that disagrees with the count is a bug.
        raise AssertionError(f"junit counts {counted} do not match the cases written")
    batch.extend(_child(e) for e in _log_elements(log))
    batch[-1].tail = _INDENT[1]
    yield _serialize(batch)
    yield "</testsuite>"


def _suite_element(index: int, result: ScanResult) -> ET.Element:
    return ET.Element(
        "testsuite",
        name=_clean_line(f"{result.scanner} DAST scan of {result.target}") or "DAST scan",
        package=f"dast.{_slug(result.provider)}",
        id=str(index),
        time=_duration(result),
        timestamp=_timestamp(result.started_at or result.finished_at),
        hostname=_host(result.target),
    )


def _set_counts(suite: ET.Element, *, tests: int, failures: int, errors: int, skipped: int) -> None:
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("skipped", str(skipped))


def _log_elements(log: _SuiteLog) -> tuple[ET.Element, ET.Element]:
    """The trailing `system-out` and `system-err` the Ant XSD requires."""
    out = ET.Element("system-out")
    out.text = _clean("\n".join(log.lines) + "\n", _LOG_LIMIT)
    err = ET.Element("system-err")
    err.text = ""
    return out, err


def _add_properties(element: ET.Element, properties: Iterable[tuple[str, str]]) -> None:
    """Fill the `properties` element, which comes first and is required by the Ant XSD (may be
    empty)."""
    for name, value in properties:
        ET.SubElement(element, "property", name=name, value=_clean_line(value, 2048))


def _properties(evaluation: Evaluation, report: Report) -> list[tuple[str, str]]:
    result = evaluation.result
    pairs = [
        ("scangate.version", report.tool_version),
        ("provider", result.provider),
        ("scanner", result.scanner),
        ("scan_id", result.scan_id),
        ("target", result.target),
        ("status", result.status.value),
        ("completeness", f"{result.completeness}%"),
        ("verdict", evaluation.verdict.value),
        ("console_url", result.console_url),
        ("enforce_from", str(evaluation.enforce_from or "")),
    ]
    summary = result.count_summary
    if summary is not None:
        pairs += [
            ("alert_count", str(summary.alert_count)),
            ("scan_count", str(summary.scan_count)),
            ("checks", ", ".join(summary.checks)),
        ]
    if report.interrupted:
        pairs.append(("interrupted", report.interrupted))
    return [(name, value) for name, value in pairs if value]


def _log_header(evaluation: Evaluation, report: Report) -> list[str]:
    """The suite's `system-out` opening: what was scanned and why the gate decided."""
    result = evaluation.result
    lines = [
        f"scangate {report.tool_version}: {result.scanner} scan {result.scan_id} "
        f"of {result.target}",
        f"Scan status: {_scan_state(result)}",
        f"Verdict: {evaluation.verdict.value}",
        *(f"- {reason}" for reason in evaluation.reasons),
    ]
    count_only = _count_only_note(result)
    if count_only:
        lines.append(count_only)
    if report.interrupted:
        lines.append(f"scangate was interrupted ({report.interrupted}): this report is partial.")
    return lines


def _scan_state(result: ScanResult) -> str:
    """`completed`, `completed, 80% of its checks ran`, `failed: scanner crashed`..."""
    state = result.status.value
    if result.completeness < 100:
        state += f", {result.completeness}% of its checks ran"
    return f"{state}: {result.message}" if result.message else state


def _count_only_note(result: ScanResult) -> str:
    """Plain words for count-only providers (VAddy): the API gives counts, not details."""
    summary = result.count_summary
    if summary is None:
        return ""
    console = summary.console_url or result.console_url or "(no console URL given)"
    checks = ", ".join(summary.checks) or "(not listed)"
    return (
        f"{result.scanner} reports only how many alerts it found, not what they are: "
        f"{summary.alert_count} alert(s) over {summary.scan_count} scan request(s). "
        f"Checks run: {checks}. The details live in the {result.scanner} console: {console}"
    )


def _health_case(
    evaluation: Evaluation, report: Report, state: _State, log: _SuiteLog
) -> ET.Element:
    """The scan-health and verdict case: passes, or errors when the results cannot be trusted."""
    result = evaluation.result
    name = state.claim(
        HEALTH_CLASSNAME,
        _clean_line(
            f"scan health and verdict: {result.provider} scan of {result.target}", _NAME_LIMIT
        ),
        "",  # no scan id: names stay the same from one pipeline to the next
    )
    case = ET.Element("testcase", name=name, classname=HEALTH_CLASSNAME, time=_duration(result))
    problem = _health_problem(result, report)
    if problem is None:
        return case
    kind, message = problem
    error = ET.SubElement(case, "error", message=_clean_line(message), type=kind)
    error.text = _clean("\n".join([message, *log.lines]), _LOG_LIMIT)
    log.errors += 1
    return case


def _health_problem(result: ScanResult, report: Report) -> tuple[str, str] | None:
    """(error type, one-line message) when the scan's results are partial, else None."""
    if report.interrupted:
        return (
            "interrupted",
            f"scangate was interrupted ({report.interrupted}): results are partial",
        )
    if incomplete_fails(result, report.gate):
        return "scan-incomplete", f"scan did not complete: {_scan_state(result)}"
    return None


def _classname(finding: Finding) -> str:
    return f"dast.{finding.severity.label}.{_slug(finding.rule_id)}"


def _case_name(finding: Finding, result: ScanResult) -> str:
    """`<METHOD> <path> [<param>]`; a count-only finding has no request, so its title."""
    if result.count_summary is not None or not finding.url:
        return _clean_line(finding.title or finding.rule_id, _NAME_LIMIT) or "finding"
    try:
        path = urlsplit(finding.url).path or "/"
    except ValueError:
        path = finding.url
    param = f" [{finding.parameter}]" if finding.parameter else ""
    return _clean_line(f"{finding.method} {path}{param}", _NAME_LIMIT) or "finding"


def _summary(judgement: Judgement) -> str:
    """One line: `High: SQL Injection at GET https://...` (formats.md §2.5), and
    `(escalated from low)` for a finding more severe than its baseline entry."""
    finding = judgement.finding
    where = " ".join(part for part in (finding.method, finding.url) if part)
    label = finding.severity.label.capitalize()
    text = f"{label}: {finding.title} at {where}" if where else f"{label}: {finding.title}"
    if judgement.baseline_state is BaselineState.ESCALATED:
        text += f" ({judgement.baseline_text})"
    return _clean_line(text)


def _finding_case(
    judgement: Judgement, evaluation: Evaluation, state: _State, log: _SuiteLog
) -> ET.Element:
    result = evaluation.result
    finding = judgement.finding
    classname = _classname(finding)
    name = state.claim(classname, _case_name(finding, result), finding.fingerprint)
    case = ET.Element("testcase", name=name, classname=classname, time="0")
    summary = _summary(judgement)
    if judgement.decision is Decision.FAILING:
        failure = ET.SubElement(case, "failure", message=summary, type=finding.severity.label)
        failure.text = _failure_text(judgement, result, summary, state, log)
        log.failures += 1
    elif judgement.decision in _SKIPPED:
        skipped = ET.SubElement(case, "skipped", message=_clean_line(judgement.reason))
        skipped.text = _skipped_text(judgement, result, summary)
        log.skipped += 1
        ET.SubElement(case, "system-out").text = _case_output(
            judgement, evaluation, summary, state, log
        )
    else:
        reason = _clean_line(judgement.reason)
        log.lines.append(f"{judgement.decision.value}: {classname} {name}: {reason}")
        ET.SubElement(case, "system-out").text = _case_output(
            judgement, evaluation, summary, state, log
        )
    return case


def _case_output(
    judgement: Judgement, evaluation: Evaluation, summary: str, state: _State, log: _SuiteLog
) -> str:
    """A passing or skipped case's `system-out`: the summary, the gate's decision, then the
    details a failure's text holds; within the document's budget for them."""
    result = evaluation.result
    decision = f"Decision: {judgement.decision.value}"
    if judgement.decision is Decision.DEFERRED:
        decision += f" (would fail the gate, which is {evaluation.enforcement_text})"
    lines = [summary, decision, *_facts(judgement, result), *_sections(judgement.finding)]
    text = _clean("\n".join(lines), _TEXT_LIMIT)
    if state.spend_output(text):
        return text
    log.trimmed_output += 1
    fingerprint = f"Fingerprint: {judgement.finding.fingerprint}"
    return _clean(f"{summary}\n{decision}\n{fingerprint}\n(details trimmed)")


def _skipped_text(judgement: Judgement, result: ScanResult, summary: str) -> str:
    lines = [
        summary,
        _clean_line(judgement.reason),
        f"Fingerprint: {judgement.finding.fingerprint}",
    ]
    if judgement.baseline_text:
        lines.append(f"Baseline: {judgement.baseline_text}")
    note = _count_only_note(result)
    return _clean("\n".join([*lines, note] if note else lines))


def _failure_text(
    judgement: Judgement, result: ScanResult, summary: str, state: _State, log: _SuiteLog
) -> str:
    """The details, summary first (GitLab shows only this text); within the document budget."""
    lines = [summary, *_facts(judgement, result), *_sections(judgement.finding)]
    text = _clean("\n".join(lines), _TEXT_LIMIT)
    if state.spend(text):
        return text
    log.trimmed += 1
    return _clean(f"{summary}\nFingerprint: {judgement.finding.fingerprint}\n(details trimmed)")


def _facts(judgement: Judgement, result: ScanResult) -> list[str]:
    """`Key: value` lines, each capped to one line; empty values are left out."""
    f = judgement.finding
    pairs = [
        ("Gate", judgement.reason),
        ("Rule", f.rule_id),
        ("URL", f.url),
        ("Method", f.method),
        ("Parameter", f.parameter),
        ("CWE", ", ".join(f"CWE-{cwe}" for cwe in f.cwe_ids)),
        ("CVE", ", ".join(f.cve_ids)),
        ("CVSS", "" if f.cvss is None else f"{f.cvss:.1f}"),
        ("Fingerprint", f.fingerprint),
        ("Baseline", judgement.baseline_text),
        ("Provider status", f.provider_status),
        ("Console", f.console_url or result.console_url),
        ("Count-only provider", _count_only_note(result)),
    ]
    return [f"{key}: {_clean_line(value, 2048)}" for key, value in pairs if value]


def _sections(finding: Finding) -> list[str]:
    """Multi-line blocks (description, remediation, references, evidence), each capped."""
    blocks = [
        ("Description", finding.description),
        ("Remediation", finding.remediation),
        ("References", "\n".join(f"- {ref}" for ref in finding.references)),
        ("Request", finding.request),
        ("Response", finding.response),
    ]
    return [f"\n{title}:\n{_clean(body)}" for title, body in blocks if body]


def _no_results_suite(report: Report) -> ET.Element:
    """A report without any scan result still carries one case, an error saying so."""
    suite = ET.Element(
        "testsuite",
        name="scangate",
        package="dast",
        id="0",
        time="0",
        timestamp=_timestamp(None),
        hostname="localhost",
    )
    _add_properties(ET.SubElement(suite, "properties"), [("scangate.version", report.tool_version)])
    case = ET.SubElement(
        suite, "testcase", name="scan results", classname=HEALTH_CLASSNAME, time="0"
    )
    why = f"scangate was interrupted ({report.interrupted})" if report.interrupted else ""
    message = _clean_line(why or "no scan result was given to the gate")
    ET.SubElement(case, "error", message=message, type="no-results").text = message
    _set_counts(suite, tests=1, failures=0, errors=1, skipped=0)
    suite.extend(_log_elements(_SuiteLog(lines=[message], errors=1)))
    return suite
