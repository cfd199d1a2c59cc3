"""SARIF 2.1.0 for GitHub code scanning, built on the sarif-om object model (design §4, §9)."""

from __future__ import annotations

import codecs
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sarif_om import (
    ArtifactLocation,
    Conversion,
    Invocation,
    Location,
    Message,
    MultiformatMessageString,
    Notification,
    PhysicalLocation,
    Region,
    ReportingConfiguration,
    ReportingDescriptor,
    Result,
    Run,
    RunAutomationDetails,
    SarifLog,
    Suppression,
    Tool,
    ToolComponent,
)

from scangate.formats.interface import Formatter, Report
from scangate.formats.sarif_json import Explicit, bag, dumps, dumps_streamed, gc_paused
from scangate.formats.sarif_locations import (
    anchor_uri,
    cap,
    dast_uri,
    display,
    http_uri,
    short_hash,
    slug,
    target_slug,
    web_request,
    web_response,
)
from scangate.model import (
    BaselineState,
    Decision,
    Evaluation,
    Finding,
    Judgement,
    ScanStatus,
    Severity,
)
from scangate.text import json_safe, markdown_escape, one_line

__all__ = ["SarifFormatter", "dumps", "rule_id"]  # `dumps` lives in sarif_json

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"

# GitHub's upload limits (formats.md §1.2). The Multitool's GH1004 still checks older, lower
# numbers (1,000 results, 5 runs); formats.md §1.2 says to treat GitHub's table as authoritative.
MAX_RESULTS_PER_RUN = 25_000
MAX_RUNS = 20
MAX_GZIP_BYTES = 10_000_000
"""10 MB gzipped, read as decimal megabytes to stay on the safe side."""
MAX_RAW_BYTES = 256 * 1024 * 1024
"""upload-sarif reads the file into one Node.js string, which fails near 512 MB (§1.2)."""
MAX_DESCRIPTION = 1024
"""GitHub's cap on `shortDescription`/`fullDescription` text (formats.md §1.3)."""
MAX_HELP = 8192
"""GitHub documents no cap on rule help; this one bounds each rule's share of the file."""
MAX_CWE_TAGS = 9
"""GitHub keeps 10 tags per rule (§1.2): `security` plus at most nine CWE tags."""

SRCROOT = "%SRCROOT%"
"""`uriBaseId` of every location: the repository root, to which GitHub resolves them (§1.7)."""
FINGERPRINT_KEY = "scangate/v1"

# formats.md §1.4: GitHub's security-severity bands and result levels; info has no score.
_SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "2.0",
}
_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_WORDS = re.compile(r"[\W_]+")


class SarifFormatter(Formatter):
    """Renders a `Report` as one SARIF log with one run per evaluation (`scangate.sarif`)."""

    name = "sarif"
    filename = "scangate.sarif"

    def __init__(
        self,
        *,
        max_results_per_run: int = MAX_RESULTS_PER_RUN,
        max_runs: int = MAX_RUNS,
        max_gzip_bytes: int = MAX_GZIP_BYTES,
        max_raw_bytes: int = MAX_RAW_BYTES,
    ) -> None:
        """Create a new `SarifFormatter`; the limits default to GitHub's (formats.md §1.2)."""
        self.max_results_per_run = max_results_per_run
        self.max_runs = max_runs
        self.max_gzip_bytes = max_gzip_bytes
        self.max_raw_bytes = max_raw_bytes

    def chunks(self, report: Report) -> Iterator[str]:
        """See `Formatter.chunks`. Trims evidence, then the least severe results, to fit.

        Whether the file fits is known only once all of it is serialized, so it is serialized
        into memory first, gzipped as it comes (GitHub's limit is on the gzipped size, which
        this measures): a tenth of the text's size is held, never the text nor the log's whole
        object tree (results are built as they are serialized). Then it is given back in pieces.
        """
        plan = self._plan(report)
        while True:
            with gc_paused():
                packed = _Packed.of(_pieces(plan))
            excess = self._excess(packed)
            if excess <= 1.0 or not (plan.evidence or any(plan.keep)):
                yield from packed.texts()
                return
            plan = plan.shrink(excess)

    def log(self, report: Report) -> Any:
        """The sarif-om `SarifLog` that `render` starts from, before any trimming for size."""
        return _log(self._plan(report))

    def _plan(self, report: Report) -> _Plan:
        evaluations = report.evaluations[: self.max_runs]
        return _Plan(
            report=report,
            evaluations=evaluations,
            run_ids=_automation_ids(evaluations),
            keep=tuple(min(len(e.judgements), self.max_results_per_run) for e in evaluations),
            evidence=True,
            limits=self,
        )

    def _excess(self, packed: _Packed) -> float:
        """How many times too big the file is for GitHub (≤ 1.0 when it fits)."""
        if packed.raw <= self.max_gzip_bytes - 1024:
            return packed.raw / self.max_raw_bytes
        return max(len(packed.gzip) / self.max_gzip_bytes, packed.raw / self.max_raw_bytes)


_PIECE = 1 << 20
"""Bytes of text given back per piece by `_Packed.texts`."""


@dataclass(frozen=True)
class _Packed:
    """A serialized file held gzipped: its size in UTF-8 bytes, and the gzip stream."""

    raw: int
    gzip: bytes

    @classmethod
    def of(cls, pieces: Iterable[str]) -> _Packed:
        """Encode and gzip `pieces` as one stream (zlib's default level, as GitHub measures)."""
        gzip = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: the gzip container
        raw, out = 0, []
        for piece in pieces:
            data = piece.encode("utf-8")
            raw += len(data)
            out.append(gzip.compress(data))
        out.append(gzip.flush())
        return cls(raw=raw, gzip=b"".join(out))

    def texts(self) -> Iterator[str]:
        """The text back, about `_PIECE` bytes at a time (a character is never split)."""
        gunzip = zlib.decompressobj(31)
        decoder = codecs.getincrementaldecoder("utf-8")()
        data = self.gzip
        while data:
            yield decoder.decode(gunzip.decompress(data, _PIECE))
            data = gunzip.unconsumed_tail
        yield decoder.decode(gunzip.flush(), final=True)


@dataclass(frozen=True)
class _Plan:
    """What to put in the log: how many judgements of each run, with or without evidence."""

    report: Report
    evaluations: tuple[Evaluation, ...]
    run_ids: tuple[str, ...]
    keep: tuple[int, ...]
    evidence: bool
    limits: SarifFormatter

    def shrink(self, excess: float) -> _Plan:
        """The next smaller plan: drop evidence first, then the least severe results of each run."""
        if self.evidence:
            return replace(self, evidence=False)
        return replace(self, keep=tuple(int(k / excess * 0.95) for k in self.keep))

    def trimmed(self, index: int) -> dict[str, Any] | None:
        """What was left out of run `index` and why, or None when nothing was."""
        judgements = self.evaluations[index].judgements
        kept = self.keep[index]
        if kept == len(judgements) and self.evidence:
            return None
        why = []
        if len(judgements) > self.limits.max_results_per_run:
            why.append(
                f"GitHub code scanning accepts at most {self.limits.max_results_per_run:,} "
                "results per run"
            )
        if kept < min(len(judgements), self.limits.max_results_per_run) or not self.evidence:
            why.append(
                f"the file must stay under {self.limits.max_gzip_bytes:,} bytes gzipped "
                f"and {self.limits.max_raw_bytes:,} bytes uncompressed"
            )
        dropped = Counter(j.finding.severity for j in judgements[kept:])
        return {
            "resultsTotal": len(judgements),
            "resultsKept": kept,
            "droppedBySeverity": {s.label: dropped[s] for s in sorted(dropped, reverse=True)},
            "evidenceDropped": not self.evidence,
            "why": why,
        }


# -- the log and its runs ------------------------------------------------------------------------


def _log(plan: _Plan) -> Any:
    """The whole log as sarif-om objects (what `SarifFormatter.log` gives)."""
    runs = []
    for index in range(len(plan.evaluations)):
        run, results = _run(plan, index)
        run.results = list(results)
        runs.append(run)
    return _log_object(plan, runs)


def _pieces(plan: _Plan) -> Iterator[str]:
    """The text of `dumps(_log(plan)) + "\n"`, in pieces: each result is built, serialized and
    let go in turn."""
    runs = (
        dumps_streamed(run, "results", ((dumps(r),) for r in results))
        for run, results in (_run(plan, i) for i in range(len(plan.evaluations)))
    )
    yield from dumps_streamed(_log_object(plan, []), "runs", runs)
    yield "\n"


def _log_object(plan: _Plan, runs: list[Any]) -> Any:
    report = plan.report
    dropped_runs = len(report.evaluations) - len(plan.evaluations)
    properties = bag(
        verdict=report.verdict.value,
        interrupted=json_safe(report.interrupted) or None,
        runsDropped=dropped_runs or None,
    )
    return SarifLog(runs=runs, version=SARIF_VERSION, schema_uri=SCHEMA_URI, properties=properties)


def _run(plan: _Plan, index: int) -> tuple[Any, Iterator[Any]]:
    """Run `index` with an empty `results` list, and its results, built as they are taken."""
    evaluation = plan.evaluations[index]
    result = evaluation.result
    judgements = evaluation.judgements[: plan.keep[index]]
    rules, rule_index = _rules(judgements)
    trimmed = plan.trimmed(index)
    last = index == len(plan.evaluations) - 1
    dropped_runs = len(plan.report.evaluations) - len(plan.evaluations) if last else 0
    # Only the last run says that runs were left out: GitHub rejects more than 20 (§1.2).
    driver = ToolComponent(
        name=display(one_line(result.scanner or result.provider)),
        # A free string (SARIF §3.19.13), `API v1` when the provider names no engine version.
        version=display(one_line(result.scanner_version)) or None,
        rules=rules,
    )
    scangate = ToolComponent(name="scangate", version=plan.report.tool_version)
    run = Run(
        tool=Tool(driver=driver),
        automation_details=RunAutomationDetails(id=plan.run_ids[index]),
        conversion=Conversion(tool=Tool(driver=scangate)),
        invocations=[_invocation(plan.report, evaluation, trimmed, dropped_runs)],
        original_uri_base_ids={SRCROOT: ArtifactLocation(description=Message(text=_SRCROOT_TEXT))},
        results=[],
        properties=_run_properties(plan.report, evaluation, trimmed),
    )
    return run, _results(plan, evaluation, judgements, rule_index)


_SRCROOT_TEXT = (
    "The repository root. scangate writes DAST findings under the pseudo-directory dast/ "
    "(host, then URL path), or at reports.sarif_anchor when it is set."
)


def _automation_ids(evaluations: Sequence[Evaluation]) -> tuple[str, ...]:
    """Distinct `scangate/<provider>/<target-slug>/` ids; GitHub's category is before the last `/`.

    Categories must differ between runs of one file (formats.md §1.6); colliding slugs get a
    hash of target and scan id, so the id does not depend on the order of the matrix jobs.
    """
    bases = [
        f"scangate/{slug(e.result.provider)}/{target_slug(e.result.target)}" for e in evaluations
    ]
    counts = Counter(bases)
    ids: list[str] = []
    for base, evaluation in zip(bases, evaluations, strict=True):
        if counts[base] > 1:
            base += "-" + short_hash(evaluation.result.target + "\0" + evaluation.result.scan_id)
        candidate, n = base, 1
        while candidate + "/" in ids:  # the same scan merged twice
            n += 1
            candidate = f"{base}-{n}"
        ids.append(candidate + "/")
    return tuple(ids)


def _invocation(
    report: Report, evaluation: Evaluation, trimmed: dict[str, Any] | None, dropped_runs: int
) -> Any:
    """The run's invocation: whether the scan succeeded, and why not (GitHub's tool status)."""
    result = evaluation.result
    notes = _notes(report, evaluation, trimmed, dropped_runs)
    return Invocation(
        execution_successful=result.complete and not report.interrupted,
        start_time_utc=_utc(result.started_at),
        end_time_utc=_utc(result.finished_at),
        tool_execution_notifications=[
            Notification(message=Message(text=display(text)), level=level) for level, text in notes
        ]
        or None,
    )


def _notes(
    report: Report, evaluation: Evaluation, trimmed: dict[str, Any] | None, dropped_runs: int
) -> list[tuple[str, str]]:
    """(level, text) of each thing a reader of this run must know about its completeness."""
    result = evaluation.result
    notes = []
    if result.status is not ScanStatus.COMPLETED or result.completeness < 100:
        why = result.message or f"the scan ended as {result.status.value}"
        if result.status is ScanStatus.COMPLETED:
            why = f"the scan covered {result.completeness}% of its checks"
        notes.append(("error", f"The scan did not complete: {one_line(why)}. Results are partial."))
    if result.shortfall and result.status is ScanStatus.COMPLETED:  # else in the message
        text = f"The results are incomplete: {one_line(result.shortfall, 500)}."
        notes.append(("error", text))
    if report.interrupted:
        why = one_line(report.interrupted)
        notes.append(("error", f"scangate was interrupted ({why}); this report is partial."))
    if result.count_summary is not None:
        count = result.count_summary.alert_count
        notes.append(("note", f"{result.scanner} reports only an alert count ({count})."))
    if trimmed is not None:
        notes.append(("warning", _trim_text(trimmed) + ". Every finding is in scangate.json."))
    if dropped_runs:
        notes.append(("warning", f"{dropped_runs}{_RUNS_DROPPED}"))
    return notes


_RUNS_DROPPED = (
    f" more scans were left out of this file: GitHub accepts at most {MAX_RUNS} runs per SARIF"
    " file. Every scan is in scangate.json."
)


def _trim_text(trimmed: dict[str, Any]) -> str:
    kept, total = trimmed["resultsKept"], trimmed["resultsTotal"]
    dropped = ", ".join(f"{n:,} {label}" for label, n in trimmed["droppedBySeverity"].items())
    text = f"scangate kept the {kept:,} most severe of {total:,} results"
    if dropped:
        text += f" (left out: {dropped})"
    if trimmed["evidenceDropped"]:
        text += " and dropped the request/response evidence"
    return text + " because " + " and ".join(trimmed["why"])


def _run_properties(report: Report, evaluation: Evaluation, trimmed: dict[str, Any] | None) -> Any:
    result = evaluation.result
    counts = {s.label: asdict(c) for s, c in evaluation.counts.items()}
    return bag(
        provider=result.provider,
        scanId=result.scan_id,
        target=result.target,
        status=result.status.value,
        completeness=result.completeness,
        consoleUrl=result.console_url or None,
        verdict=evaluation.verdict.value,
        reasons=[json_safe(r) for r in evaluation.reasons],
        counts=counts,
        baseline=evaluation.has_baseline,
        fixedSinceBaseline=len(evaluation.fixed) if evaluation.has_baseline else None,
        enforceFrom=str(evaluation.enforce_from) if evaluation.enforce_from is not None else None,
        deferredDays=evaluation.deferred_days,
        interrupted=json_safe(report.interrupted) or None,
        trimmed=trimmed,
    )


def _utc(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    # Not `strftime("%Y")`: it leaves years before 1000 unpadded (`999-01-01`), which is no
    # RFC 3339 date-time; `isoformat` always writes four digits.
    return moment.replace(tzinfo=None, microsecond=0).isoformat() + "Z"


# -- rules ---------------------------------------------------------------------------------------

_RuleKey = tuple[str, Severity]
_RuleRef = tuple[int, str]
"""A rule's index in `driver.rules` and its id."""


def _rules(judgements: Sequence[Judgement]) -> tuple[list[Any], dict[_RuleKey, _RuleRef]]:
    """One rule per (rule id, severity): GitHub's security-severity is per rule (§1.4)."""
    first: dict[_RuleKey, Finding] = {}
    cwes: dict[_RuleKey, set[int]] = {}
    for judgement in judgements:
        finding = judgement.finding
        key = (finding.rule_id, finding.severity)
        first.setdefault(key, finding)
        cwes.setdefault(key, set()).update(finding.cwe_ids)
    index = {key: (i, rule_id(*key)) for i, key in enumerate(first)}
    return [_rule(first[key], sorted(cwes[key])) for key in first], index


def rule_id(rule: str, severity: Severity) -> str:
    """The stable SARIF rule id of a provider rule at one severity (`sql_injection/high`).

    A rule id that is not a short, plain identifier becomes a slug plus a hash of the original,
    so that distinct provider rules never share an id.
    """
    base = rule if _SAFE_ID.fullmatch(rule) else f"{slug(rule)[:48]}-{short_hash(rule)}"
    return f"{base}/{severity.label}"


def _rule(finding: Finding, cwes: list[int]) -> Any:
    severity = finding.severity
    level = _LEVEL[severity]
    title = _title(finding, MAX_DESCRIPTION)
    description = display(finding.description.strip()) or title
    tags = ["security", *(f"external/cwe/cwe-{n}" for n in cwes[:MAX_CWE_TAGS])]
    name = "".join(w[:1].upper() + w[1:] for w in _WORDS.split(display(finding.rule_id)))
    return ReportingDescriptor(
        id=rule_id(finding.rule_id, severity),
        name=name[:255] or None,
        short_description=MultiformatMessageString(text=title),
        full_description=MultiformatMessageString(text=cap(description, MAX_DESCRIPTION)),
        help=MultiformatMessageString(
            text=cap(_help_text(finding, description), MAX_HELP),
            markdown=cap(_help_markdown(finding, cwes), MAX_HELP),
        ),
        help_uri=next((u for u in map(http_uri, finding.references) if u), None),
        # `warning` is SARIF's default level, which the serializer leaves out (as sarif-om does).
        default_configuration=ReportingConfiguration(level=level) if level != "warning" else None,
        properties=bag(tags, **{"security-severity": _SECURITY_SEVERITY.get(severity)}),
    )


def _title(finding: Finding, limit: int) -> str:
    """The finding's title on one line, never empty (GitHub requires rule descriptions)."""
    text = one_line(display(finding.title), limit) or one_line(display(finding.rule_id), limit)
    return text or "Finding without a title"


def _help_text(finding: Finding, description: str) -> str:
    parts = [description]
    if finding.remediation.strip():
        parts.append("Remediation: " + display(finding.remediation.strip()))
    if finding.references:
        parts.append("References:\n" + "\n".join(f"- {display(r)}" for r in finding.references))
    return "\n\n".join(parts)


def _help_markdown(finding: Finding, cwes: list[int]) -> str:
    """Rule help as Markdown; every provider string is escaped (design §9 "Untrusted text")."""
    heading = f"**{markdown_escape(_title(finding, MAX_DESCRIPTION))}**"
    facts = [finding.severity.label, *(f"CWE-{n}" for n in cwes)]
    parts = [f"{heading} ({', '.join(facts)})"]
    if finding.description.strip():
        parts.append(markdown_escape(finding.description))
    if finding.remediation.strip():
        parts.append("**Remediation:** " + markdown_escape(finding.remediation))
    links = [
        f"- <{u}>" if (u := http_uri(r)) else f"- {markdown_escape(r)}" for r in finding.references
    ]
    if links:
        parts.append("**References**\n\n" + "\n".join(links))
    return "\n\n".join(parts)


# -- results -------------------------------------------------------------------------------------


def _results(
    plan: _Plan,
    evaluation: Evaluation,
    judgements: Iterable[Judgement],
    index: dict[_RuleKey, _RuleRef],
) -> Iterator[Any]:
    seen: Counter[str] = Counter()
    for judgement in judgements:
        finding = judgement.finding
        seen[finding.fingerprint] += 1
        key = (finding.rule_id, finding.severity)
        yield _result(plan, evaluation, judgement, index[key], seen[finding.fingerprint])


def _result(
    plan: _Plan, evaluation: Evaluation, judgement: Judgement, rule: _RuleRef, n: int
) -> Any:
    finding = judgement.finding
    fingerprint = json_safe(finding.fingerprint)
    uri = (
        anchor_uri(plan.report.sarif_anchor)
        if plan.report.sarif_anchor
        else dast_uri(finding.url, evaluation.result.target)
    )
    return Result(
        rule_id=rule[1],
        rule_index=rule[0],
        level=_level(judgement),
        message=Message(text=_message(evaluation, judgement)),
        locations=[
            Location(
                physical_location=PhysicalLocation(
                    artifact_location=ArtifactLocation(uri=uri, uri_base_id=SRCROOT),
                    region=Region(start_line=1),
                )
            )
        ],
        # GitHub keys alerts on primaryLocationLineHash only and cannot compute one for a URL;
        # `:n` numbers repeats as upload-sarif does (formats.md §1.5).
        partial_fingerprints={
            "primaryLocationLineHash": f"{fingerprint}:{n}",
            FINGERPRINT_KEY: fingerprint,
        },
        web_request=web_request(finding, plan.evidence),
        web_response=web_response(finding) if plan.evidence else None,
        suppressions=_suppressions(judgement),
        baseline_state=_baseline_state(judgement) if evaluation.has_baseline else None,
        hosted_viewer_uri=http_uri(finding.console_url),
        properties=_result_properties(judgement, evaluation),
    )


def _level(judgement: Judgement) -> str:
    """The severity's level; a deferred finding is a `warning` whatever its severity, as it
    does not fail the gate yet and GitHub code scanning fails checks on `error` results."""
    if judgement.decision is Decision.DEFERRED:
        return Explicit("warning")
    return _LEVEL[judgement.finding.severity]


def _message(evaluation: Evaluation, judgement: Judgement) -> str:
    """A first sentence that stands alone (GitHub's alert title), then the details (§1.8)."""
    finding = judgement.finding
    title = _title(finding, 200).rstrip(".")
    where = one_line(f"{finding.method} {finding.url}".strip(), 300)
    where = where or one_line(evaluation.result.target, 300)
    text = f"{title} ({finding.severity.label}) at {where}"
    if finding.parameter:
        text += f" in parameter '{one_line(finding.parameter, 100)}'"
    text += f". Gate: {judgement.decision.value.replace('_', ' ')}, {one_line(judgement.reason)}."
    if finding.description.strip():
        text += " " + one_line(finding.description, 500)
    if evaluation.result.count_summary is not None and finding.console_url:
        text += f" Details are in the provider's console: {one_line(finding.console_url, 300)}"
    return display(text)


def _baseline_state(judgement: Judgement) -> str | None:
    """SARIF's `baselineState`: an escalated finding is `updated`, SARIF's state for a result
    matched in the baseline that changed in a way that matters (here, its severity rose); the
    `baseline` property says `escalated`."""
    state = judgement.baseline_state
    if state is None:
        return None
    return _SARIF_BASELINE_STATE[state]


_SARIF_BASELINE_STATE = {
    BaselineState.NEW: "new",
    BaselineState.UNCHANGED: "unchanged",
    BaselineState.ESCALATED: "updated",
}


def _result_properties(judgement: Judgement, evaluation: Evaluation) -> Any:
    finding = judgement.finding
    deferred = judgement.decision is Decision.DEFERRED
    state, entry = judgement.baseline_state, judgement.baseline_entry
    return bag(
        url=finding.url,
        method=finding.method,
        param=finding.parameter,
        decision=judgement.decision.value,
        # The day a deferred finding starts failing the gate.
        failsFrom=str(evaluation.enforce_from) if deferred else None,
        reason=json_safe(judgement.reason),
        severity=finding.severity.label,
        title=finding.title,
        fingerprint=json_safe(finding.fingerprint),
        cvss=finding.cvss,
        cve=list(finding.cve_ids) or None,
        cwe=[f"CWE-{n}" for n in finding.cwe_ids] or None,
        providerStatus=finding.provider_status or None,
        consoleUrl=finding.console_url or None,
        baseline=state.value if state is not None else None,
        baselineSeverity=entry.severity.label if entry is not None else None,
    )


def _suppressions(judgement: Judgement) -> list[Any] | None:
    """Ignored and false-positive findings stay as suppressed results (design §9 "Ignores")."""
    if judgement.decision not in (Decision.IGNORED, Decision.FALSE_POSITIVE):
        return None
    suppression = Suppression(kind="external", justification=display(judgement.reason))
    # sarif-om 1.0.4 predates the final 2.1.0 schema, which renamed `state` to `status`.
    vars(suppression)["status"] = "accepted"
    return [suppression]
