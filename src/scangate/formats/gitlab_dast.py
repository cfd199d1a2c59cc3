"""The `gl-dast-report.json` report: GitLab's DAST security report, schema 15.0.7, 15.1.4 or
15.2.1 (design §4; `reports.gitlab_schema_version`, default `choose_schema_version`).

Facts from formats.md §3: GitLab ingests only declared, vendored versions (15.2.1 is the newest);
times are UTC `YYYY-MM-DDTHH:MM:SS` with no zone; `identifiers[0]` is the primary identifier
and, with the location's `path:method:param`, decides how GitLab tracks a vulnerability across
pipelines; `name` ≤ 255 and `solution` ≤ 7,000 characters; URLs must match `^(https?|ftp)://`.

Every finding becomes a vulnerability, including those the gate ignored, baselined or saw marked
false positive: GitLab has no suppression field, and leaving a finding out would make GitLab
mark a still-present vulnerability "no longer detected". The gate's decision and reason are in
each vulnerability's description; provider false positives also carry GitLab's
`flagged-as-likely-false-positive` flag. Dismissal stays a GitLab triage decision.

GitLab renders `description` and `solution` as Markdown, so provider text there is escaped
(`text.markdown_escape`, per paragraph). No string holds a lone surrogate (it would not encode)
or a control character: finding text is clean from the model (`text.model_text`), and the few
strings that do not come from it (the fingerprint, messages, the tool version) go through
`_sanitize`.
The facts go in the description rather than `details`: each `details` entry is checked against
a 13-way `oneOf`, which makes a large report several times slower to validate.

Schema versions. GitLab ingests a report only if it knows the declared version's MODEL.REVISION
(formats.md §3.1; https://docs.gitlab.com/user/application_security/detect/security_report_validation),
and self-managed instances lag, so the version is chosen per instance. The three official
schemas (GitLab's copies, `gitlabhq/gitlabhq` `lib/gitlab/ci/parsers/security/validators/
schemas/<version>/dast-report-format.json`, vendored under tests/schemas/) differ only where
scangate writes nothing: 15.1.x adds the `code-flows` detail type, 15.2.x adds `file-location`
columns and `scan.observability`. `scan.analyzer` and `scan.scanner` are required by all three.
So every version gets the same document but for `version` and `schema`; the tests check that
each key written is one the chosen version declares.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from scangate.fingerprint import normalize_path
from scangate.formats.interface import Formatter, Report
from scangate.model import Evaluation, Finding, Judgement, ScanResult, ScanStatus, Severity
from scangate.model.settings import GITLAB_SCHEMA_VERSIONS
from scangate.text import json_safe, markdown_escape, one_line, xml_safe

SCHEMA_VERSION = GITLAB_SCHEMA_VERSIONS[-1]
"""The default: the newest version scangate writes (15.2.1)."""
SCHEMA_URL_TEMPLATE = (
    "https://gitlab.com/gitlab-org/security-products/security-report-schemas/-/raw/"
    "v{version}/dist/dast-report-format.json"
)
SCHEMA_URL = SCHEMA_URL_TEMPLATE.format(version=SCHEMA_VERSION)

INGESTED_SINCE: tuple[tuple[tuple[int, int], str], ...] = (
    ((17, 4), "15.2.1"),
    ((17, 0), "15.1.4"),
    ((15, 4), "15.0.7"),
)
"""The newest schema each GitLab release ingests, newest release first: (MAJOR, MINOR) from
which on, version. A release ingests a report whose MODEL.REVISION it vendors, validating an
unknown ADDITION against the newest one it has (GitLab's `schema_validator.rb`; docs above).

- 15.2: in GitLab's Gemfile since `gitlab-security_report_schemas 0.1.2.min15.0.0.max15.2.0`
  (released 2024-08-15, the day 17.3 shipped), so from 17.4; GitLab 17.1 refuses 15.2.1 and
  lists 15.0.0-15.0.7 and 15.1.0-15.1.2 (https://gitlab.com/gitlab-org/gitlab/-/issues/497405).
- 15.1: added in 17.0 ("Since 17.0 we use schema 15.1.0", the same issue; merge request
  https://gitlab.com/gitlab-org/gitlab/-/merge_requests/149589); 16.x does not ingest it
  (https://gitlab.com/gitlab-org/security-products/analyzers/secrets/-/merge_requests/299 pins
  GitLab's own analyzer to 15.0.7 for 16.x).
- 15.0: `schema_validator.rb` of 16.x lists 15.0.0-15.0.6 (`VERSIONS_TO_REMOVE_IN_17_0`), that
  of early 15.x only 14.0.0-14.1.3; 15.0.0 was released for GitLab 15.4
  (https://gitlab.com/gitlab-org/gitlab/-/issues/361288). Older releases ingest none of ours.
"""
_GITLAB_RELEASE = re.compile(r"^(\d+)\.(\d+)(?:\.\d+)?(?:[-+][0-9A-Za-z.+-]*)?$")
"""`CI_SERVER_VERSION` as GitLab sets it: `17.4.2`, `17.4.2-ee`, `18.1.0-pre`."""
ANALYZER_URL = "https://github.com/scangate/scangate"
ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, ANALYZER_URL)
"""Vulnerability ids are `uuid5(ID_NAMESPACE, "<fingerprint>#<occurrence>")`: stable per run."""

SEVERITIES = {
    Severity.INFO: "Info",
    Severity.LOW: "Low",
    Severity.MEDIUM: "Medium",
    Severity.HIGH: "High",
    Severity.CRITICAL: "Critical",
}
"""GitLab's severity enum is case-sensitive (formats.md §3.2)."""

_WEB_URL = re.compile(r"^https?://[^\s/?#]+\S*$", re.IGNORECASE)
_REQUEST_LINE = re.compile(r"^[A-Z]+ \S+ HTTP/\d(?:\.\d)?$")
_STATUS_LINE = re.compile(r"^HTTP/\d(?:\.\d)?\s+(\d{3})(?:\s+(.*))?$")
_UNSAFE = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""What `_sanitize` changes (XML 1.0's forbidden set, which includes lone surrogates)."""
_CVE = re.compile(r"^CVE-\d{4}-\d{4,}$")
_FATAL = frozenset(
    {ScanStatus.FAILED, ScanStatus.CANCELLED, ScanStatus.TIMED_OUT, ScanStatus.INTERRUPTED}
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAME_LIMIT = 255
_SOLUTION_LIMIT = 7000
_TEXT_LIMIT = 65_536
_MAX_IDENTIFIERS = 20
"""GitLab stores at most 20 identifiers per vulnerability (formats.md §3.3)."""
_MAX_LINKS = 20


class GitLabDastFormatter(Formatter):
    """Renders a `Report` as a GitLab DAST security report (`artifacts:reports:dast`)."""

    name = "gitlab-dast"
    filename = "gl-dast-report.json"

    def chunks(self, report: Report) -> Iterator[str]:
        """See `Formatter.chunks`: the head and scan, then one piece per vulnerability."""
        version = report_schema_version(report)
        schema = SCHEMA_URL_TEMPLATE.format(version=version)
        head = {"version": version, "schema": schema, "scan": _scan(report)}
        # The same bytes as `json.dumps(document)` of the whole document: the head without its
        # closing brace, then the list json would write (`[a, b]`), then the brace.
        yield f"{_ENCODE(head)[:-1]}, {_ENCODE('vulnerabilities')}: ["
        separator = ""
        for vulnerability in _vulnerabilities(report.evaluations):
            yield separator + _ENCODE(vulnerability)
            separator = ", "
        yield "]}\n"


_ENCODE = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode
"""No `indent`: json's C encoder only runs without it (several times faster at 10,000)."""


@dataclass(frozen=True)
class SchemaChoice:
    """The schema version a report is written with, and the warning to print about it, if any."""

    version: str
    warning: str = ""


def report_schema_version(report: Report) -> str:
    """The version `report` asks for (`Report.gitlab_schema_version`), checked."""
    version = report.gitlab_schema_version
    if version not in GITLAB_SCHEMA_VERSIONS:
        allowed = ", ".join(GITLAB_SCHEMA_VERSIONS)
        raise ValueError(f"unknown GitLab report schema version {version!r} (one of {allowed})")
    return version


def choose_schema_version(setting: str | None, env: Mapping[str, str]) -> SchemaChoice:
    """The version to write: the policy's `reports.gitlab_schema_version` if set, else the newest
    the GitLab instance running the job ingests (`CI_SERVER_VERSION`, a predefined variable:
    https://docs.gitlab.com/ci/variables/predefined_variables/), else `SCHEMA_VERSION`.

    A `CI_SERVER_VERSION` that is not a GitLab version is GitLab's or the runner's doing, not the
    user's: it warns and keeps the default rather than failing the scan.
    """
    if setting is not None:
        return SchemaChoice(setting)
    server = env.get("CI_SERVER_VERSION", "").strip()
    if not server:
        return SchemaChoice(SCHEMA_VERSION)
    release = gitlab_release(server)
    shown = repr(server[:64])
    if release is None:
        return SchemaChoice(
            SCHEMA_VERSION,
            f"warning: CI_SERVER_VERSION {shown} is not a GitLab version (MAJOR.MINOR.PATCH); "
            f"gl-dast-report.json declares schema {SCHEMA_VERSION} "
            "(set reports.gitlab_schema_version to choose)",
        )
    for since, version in INGESTED_SINCE:
        if release >= since:
            return SchemaChoice(version)
    oldest = GITLAB_SCHEMA_VERSIONS[0]
    return SchemaChoice(
        oldest,
        f"warning: GitLab {shown} ingests no DAST report of schema 15 (GitLab 15.4 and later "
        f"do); gl-dast-report.json declares the oldest scangate writes, {oldest}",
    )


def gitlab_release(text: str) -> tuple[int, int] | None:
    """(MAJOR, MINOR) of a GitLab version such as `17.4.2-ee`, or None if `text` is not one."""
    match = _GITLAB_RELEASE.match(text)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _sanitize(value: Any) -> Any:
    """Make every string storable: `json_safe`, then drop control characters (`xml_safe`).

    Lone surrogates would not encode as UTF-8, and GitLab keeps report text in PostgreSQL,
    whose text type cannot hold NUL; no other control character means anything on a web page.
    """
    if isinstance(value, str):
        return xml_safe(json_safe(value)) if _UNSAFE.search(value) else value
    if isinstance(value, dict):
        return {_sanitize(k): _sanitize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_sanitize(v) for v in value]
    return value


def _utc(moment: datetime) -> datetime:
    """`moment` in UTC; a naive time is taken to be UTC already."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def gitlab_time(moment: datetime | None) -> str:
    """UTC `YYYY-MM-DDTHH:MM:SS`, no zone or fraction (formats.md §3.2); None gives the epoch."""
    # Not `strftime("%Y")`: it leaves years before 1000 unpadded (`999-01-01`), which the
    # schema's four-digit year pattern refuses; `isoformat` always writes four digits.
    return _utc(moment or _EPOCH).replace(tzinfo=None, microsecond=0).isoformat()


def _cap(text: str, limit: int) -> str:
    """Cap text to `limit` characters in all, the last few saying how much was cut."""
    if len(text) <= limit:
        return text
    keep = limit - 64  # room for the note below, whatever the number in it
    return text[:keep] + f"\n[... {len(text) - keep} more characters cut by scangate]"


def _web_url(text: str) -> str | None:
    """`text` as an http(s) URL that GitLab's `^(https?|ftp)://.+` accepts, else None.

    That pattern is case-sensitive and a scheme is not (RFC 3986 §3.1): `HTTP://x` is given
    back as `http://x`.
    """
    if not _WEB_URL.match(text):
        return None
    scheme, _, rest = text.partition(":")
    return f"{scheme.lower()}:{rest}"


def _scan(report: Report) -> dict[str, Any]:
    results = [e.result for e in report.evaluations]
    start, end = _span(results)
    return {
        "analyzer": {
            "id": "scangate",
            "name": "scangate",
            "url": ANALYZER_URL,
            "version": _sanitize(report.tool_version) or "unknown",
            "vendor": {"name": "scangate"},
        },
        "scanner": _scanner(results),
        "type": "dast",
        "start_time": gitlab_time(start),
        "end_time": gitlab_time(end),
        "status": "success" if _succeeded(report) else "failure",
        # Messages quote the gate's reasons and the interruption, which are not model text.
        "messages": _sanitize(_messages(report)),
        "scanned_resources": _scanned_resources(results),
    }


def _span(results: list[ScanResult]) -> tuple[datetime | None, datetime | None]:
    """Earliest start and latest finish over all scans (either end stands in for the other)."""
    starts = [_utc(m) for r in results if (m := r.started_at or r.finished_at) is not None]
    ends = [_utc(m) for r in results if (m := r.finished_at or r.started_at) is not None]
    return (min(starts) if starts else None, max(ends) if ends else None)


def _scanner_name(result: ScanResult) -> str:
    """The scanner's name as written, else the provider's: the schema wants non-empty names,
    and a name of only spaces or control characters is none."""
    return one_line(_sanitize(result.scanner)) or result.provider


def _scanner_version(results: list[ScanResult]) -> str:
    """`ScanResult.scanner_version` (`API v1` when the provider names no engine version); the
    schema needs a non-empty one, so `unknown` when a results file of an older scangate has
    none. Merged results of several versions list them all."""
    versions = sorted({one_line(_sanitize(r.scanner_version)) for r in results} - {""})
    return one_line(" + ".join(versions), _NAME_LIMIT) or "unknown"


def _succeeded(report: Report) -> bool:
    """Failure when scangate was interrupted or any scan did not complete (or none exists)."""
    results = [e.result for e in report.evaluations]
    return bool(results) and not report.interrupted and all(r.complete for r in results)


def _scanner(results: list[ScanResult]) -> dict[str, Any]:
    """The provider's scanner; merged results from several providers list them all."""
    providers = sorted({r.provider for r in results}) or ["scangate"]
    names = sorted({_scanner_name(r) for r in results}) or ["scangate"]
    return {
        "id": one_line("+".join(providers), _NAME_LIMIT),
        "name": one_line(" + ".join(names), _NAME_LIMIT),
        "version": _scanner_version(results),
        "vendor": {"name": one_line(" + ".join(names), _NAME_LIMIT)},
    }


def _messages(report: Report) -> list[dict[str, str]]:
    """What the person reading the pipeline should know: partial scans, counts-only, verdict."""
    messages = []
    if report.interrupted:
        text = f"scangate was interrupted ({report.interrupted}): this report is partial"
        messages.append({"level": "fatal", "value": one_line(text, 2048)})
    for evaluation in report.evaluations:
        messages.extend(_scan_messages(evaluation))
    if not report.evaluations:
        messages.append({"level": "fatal", "value": "no scan result was given to the gate"})
    return messages


def _scan_messages(evaluation: Evaluation) -> list[dict[str, str]]:
    result = evaluation.result
    label = f"{result.scanner} scan {result.scan_id} of {result.target}"
    messages = []
    if not result.complete:
        why = result.message or result.status.value
        if result.completeness < 100:
            why += f" ({result.completeness}% of its checks ran)"
        level = "fatal" if result.status in _FATAL else "warn"
        messages.append({"level": level, "value": f"{label} did not complete: {why}"})
    note = _count_only_note(result)
    if note:
        messages.append({"level": "info", "value": note})
    reasons = "; ".join(evaluation.reasons)
    verdict = f"scangate gate verdict for {label}: {evaluation.verdict.value} ({reasons})"
    messages.append({"level": "info", "value": one_line(verdict, 4096)})
    return [{"level": m["level"], "value": one_line(m["value"], 4096)} for m in messages]


def _scanned_resources(results: list[ScanResult]) -> list[dict[str, str]]:
    """The target and every finding URL (http(s) only), de-duplicated and sorted.

    Count-only findings point at the provider's console, not the target, so they are left out.
    """
    pairs = {("GET", r.target) for r in results if _web_url(r.target)}
    for result in results:
        if result.count_summary is not None:
            continue
        for f in result.findings:
            if _web_url(f.url):
                pairs.add((location_method(f), f.url))
    return [{"method": method, "url": url, "type": "url"} for method, url in sorted(pairs)]


def _vulnerabilities(evaluations: Iterable[Evaluation]) -> Iterable[dict[str, Any]]:
    """One per finding of every scan, in the gate's canonical order."""
    seen: Counter[str] = Counter()
    for evaluation in evaluations:
        for judgement in evaluation.judgements:
            fingerprint = judgement.finding.fingerprint
            occurrence = seen[fingerprint]
            seen[fingerprint] += 1
            # uuid5 encodes its name as strict UTF-8; a lone surrogate is written as its escape.
            name = f"{fingerprint}#{occurrence}".encode("utf-8", "backslashreplace").decode()
            vuln_id = uuid.uuid5(ID_NAMESPACE, name)
            if _UNSAFE.search(fingerprint):
                judgement = _clean_fingerprint(judgement)
            yield _vulnerability(str(vuln_id), judgement, evaluation.result, occurrence)


def _clean_fingerprint(judgement: Judgement) -> Judgement:
    """`judgement` with its finding's fingerprint sanitized: the only text of a finding that
    does not pass `text.model_text` (a results file may carry any). Every other string a
    vulnerability is made of is model text, or the gate's reason through `markdown_escape`."""
    finding = replace(judgement.finding, fingerprint=_sanitize(judgement.finding.fingerprint))
    return replace(judgement, finding=finding)


def _vulnerability(
    vuln_id: str, judgement: Judgement, result: ScanResult, occurrence: int = 0
) -> dict[str, Any]:
    finding = judgement.finding
    response = _response(finding.response)  # parsed once: the description and evidence use it
    vulnerability: dict[str, Any] = {
        "id": vuln_id,
        "name": one_line(finding.title or finding.rule_id, _NAME_LIMIT) or "DAST finding",
        "description": _description(judgement, result, response),
        "severity": SEVERITIES[finding.severity],
        "solution": _cap(_markdown(finding.remediation), _SOLUTION_LIMIT),
        "identifiers": _identifiers(finding, result),
        "location": _location(finding, result, occurrence),
        "links": _links(finding, result),
        "evidence": _evidence(finding, result, response),
    }
    if finding.false_positive:
        status = f" ({finding.provider_status})" if finding.provider_status else ""
        description = one_line(f"{result.scanner} marked this a false positive{status}", 1024)
        vulnerability["flags"] = [
            {
                "type": "flagged-as-likely-false-positive",
                "origin": _scanner_name(result),
                "description": description,
            }
        ]
    # `location` is required even when empty: a finding may name no URL, method or parameter
    # (CyStack's `urls: ["None"]` on a target without an address).
    return {
        key: value
        for key, value in vulnerability.items()
        if value not in ("", [], {}) or key == "location"
    }


_CACHED_LENGTH = 8192
"""Texts up to this long are escaped once per render and remembered: descriptions, solutions
and most facts repeat from finding to finding (one per rule, scan or decision), and escaping
them is most of the time a vulnerability takes. Longer ones are rare and not worth keeping."""


def _markdown(text: str) -> str:
    """Provider text as inert Markdown, keeping its paragraphs."""
    return _markdown_cached(text) if len(text) <= _CACHED_LENGTH else _markdown_uncached(text)


def _markdown_uncached(text: str) -> str:
    paragraphs = (markdown_escape(p) for p in re.split(r"\n\s*\n", text))
    return "\n\n".join(p for p in paragraphs if p)


_markdown_cached = lru_cache(maxsize=1024)(_markdown_uncached)
"""At most 1,024 texts of at most `_CACHED_LENGTH` characters: a bounded few megabytes."""


def _fact(value: str) -> str:
    """A value of the description's list: one line, escaped (see `_CACHED_LENGTH`)."""
    return _fact_cached(value) if len(value) <= _CACHED_LENGTH else _fact_uncached(value)


def _fact_uncached(value: str) -> str:
    return markdown_escape(one_line(value, 2048))


_fact_cached = lru_cache(maxsize=4096)(_fact_uncached)


def _where(finding: Finding, result: ScanResult) -> str:
    """`GET https://...`; empty for count-only findings, whose URL is only the console."""
    if result.count_summary is not None:
        return ""
    return " ".join(part for part in (finding.method, finding.url) if part)


def _description(judgement: Judgement, result: ScanResult, response: dict[str, Any] | None) -> str:
    """The provider's description, then what scangate knows and decided, as a list."""
    finding = judgement.finding
    where = _where(finding, result)
    facts = [
        ("Found at", where + (f" (parameter {finding.parameter})" if finding.parameter else "")),
        ("Gate decision", f"{judgement.decision.value}: {judgement.reason}"),
        ("Fingerprint", finding.fingerprint),
        ("Provider status", finding.provider_status),
        ("CVSS score", "" if finding.cvss is None else f"{finding.cvss:.1f}"),
        ("Baseline", judgement.baseline_text),
        ("Scan", f"{result.scanner} scan {result.scan_id} of {result.target}"),
        ("Count-only provider", _count_only_note(result)),
    ]
    lines = [f"- {key}: {_fact(value)}" for key, value in facts if value]
    scangate = "scangate:\n" + "\n".join(lines)
    parts = [_cap(_markdown(finding.description), _TEXT_LIMIT), scangate]
    if finding.response and response is None:
        # GitLab's response object needs a status line; show unparsed evidence as an indented
        # code block, which no line of it can leave (each line is indented).
        code = "\n".join("    " + line for line in _cap(finding.response, _TEXT_LIMIT).splitlines())
        parts.append(f"Response evidence (as the provider gave it):\n\n{code}")
    return "\n\n".join(part for part in parts if part)


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


def _identifiers(finding: Finding, result: ScanResult) -> list[dict[str, str]]:
    """The scanner's rule first (GitLab's primary identifier), then CWE and CVE entries."""
    rule = one_line(finding.rule_id, _NAME_LIMIT) or "unknown"
    primary = {
        "type": f"{result.provider}_rule",
        "name": one_line(finding.title, _NAME_LIMIT) or rule,
        "value": rule,
    }
    cwes = [_cwe_identifier(cwe) for cwe in finding.cwe_ids]
    cves = [_cve_identifier(cve) for cve in finding.cve_ids]
    return [i for i in (primary, *cwes, *cves) if i["value"]][:_MAX_IDENTIFIERS]


def _cwe_identifier(cwe: int) -> dict[str, str]:
    return {
        "type": "cwe",
        "name": f"CWE-{cwe}",
        "value": str(cwe),
        "url": f"https://cwe.mitre.org/data/definitions/{cwe}.html",
    }


def _cve_identifier(cve: str) -> dict[str, str]:
    """A CVE identifier; only a well-formed id gets an NVD link."""
    value = one_line(cve, _NAME_LIMIT)
    identifier = {"type": "cve", "name": value, "value": value}
    if _CVE.match(value):
        identifier["url"] = f"https://nvd.nist.gov/vuln/detail/{value}"
    return identifier


def _location(finding: Finding, result: ScanResult, occurrence: int = 0) -> dict[str, str]:
    """`hostname` = scheme://host[:port]; `method` per `location_method`; `path` is normalized
    like the fingerprint.

    GitLab tracks DAST findings by `path:method:param` plus the primary identifier
    (formats.md §3.3), so volatile path segments become `{id}`, as in `scangate.fingerprint`
    (the real URL is in the evidence). A URL without a scheme (CyberSec Pro's findings sit at
    the bare target host, `staging.example.com`) is a host and a path: its hostname is the
    host as given, as no scheme was said. Count-only alerts (VAddy) all share one rule and one
    console URL, and GitLab would fold them into one vulnerability; their `param` is the
    alert's fingerprint (`vaddy:<project>:<n>`, design §9) to keep them apart; they have no
    method (VAddy's API names no request, providers/vaddy.md). Findings that share a
    fingerprint in one scan (`/orders/1001` and `/orders/2002`) would fold as well: the second
    and later ones (`occurrence` 1, 2... in the gate's canonical order) get ` (#2)`, ` (#3)`...
    after the parameter.
    """
    param = finding.fingerprint if result.count_summary is not None else finding.parameter
    if occurrence:
        param = f"{one_line(param, 1000)} (#{occurrence + 1})".lstrip()
    location = {
        "method": "" if result.count_summary is not None else location_method(finding),
        "param": one_line(param, 1024),
        **_host_and_path(finding.url),
    }
    return {key: value for key, value in location.items() if value}


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_BARE_HOST = re.compile(r"^[^\s/:?#@\\]+(?::\d+)?(?:[/?#]|$)")
"""`host[:port]` and maybe a path, query or fragment: not `javascript:x`, not `/path`."""


def location_method(finding: Finding) -> str:
    """The finding's HTTP method: the provider's field, else the method of the request line
    that starts its evidence, else `GET` for a finding at a URL.

    CyberOrigen and CyStack name no method (docs/providers/cyberorigen.md "findings",
    docs/providers/cystack.md "vulnerabilities/{id}"); CyberSec Pro gives the request only
    inside its `evidence` text, which the adapter keeps as response evidence
    (docs/providers/cybersecpro.md "Result").
    A finding at a URL whose method nobody names is placed at `GET`, the request that fetches
    a URL, as `scanned_resources` does: GitLab needs a method to track it by.
    """
    method = one_line(_sanitize(finding.method))
    if method:
        return method
    for evidence in (finding.request, finding.response):
        start = evidence.lstrip().partition("\n")[0].strip()
        if _REQUEST_LINE.match(start):
            return start.partition(" ")[0]
    return "GET" if finding.url else ""


def _host_and_path(url: str) -> dict[str, str]:
    """`hostname` and normalized `path` of `url`; a bare host (no scheme) keeps no scheme."""
    if not url:
        return {}
    absolute = bool(_SCHEME.match(url))
    bare = not absolute and bool(_BARE_HOST.match(url))
    try:
        # A bare host parses as a path alone unless it is marked as the authority with `//`.
        parts = urlsplit("//" + url if bare else url)
    except ValueError:
        return {}
    # The user-info part of a URL (`user:password@`) never reaches the report.
    host = parts.netloc.rpartition("@")[2] if absolute or bare else ""
    hostname = f"{parts.scheme}://{host}" if absolute and host else host
    return {
        "hostname": one_line(hostname, 2048),
        "path": one_line(normalize_path(parts.path), 2048),
    }


def _links(finding: Finding, result: ScanResult) -> list[dict[str, str]]:
    links = [{"url": url} for url in map(_web_url, finding.references) if url]
    console = _web_url(finding.console_url or result.console_url)
    if console:
        links.append({"name": f"{result.scanner} console", "url": console})
    return links[:_MAX_LINKS]


def _evidence(
    finding: Finding, result: ScanResult, response: dict[str, Any] | None
) -> dict[str, Any]:
    """Summary plus the request/response, parsed into GitLab's structure where they parse."""
    where = _where(finding, result)
    summary = f"{finding.title} at {where}" if where else finding.title
    evidence: dict[str, Any] = {"summary": one_line(summary, 1024)}
    request = _request(finding)
    if request:
        evidence["request"] = request
    if response:
        evidence["response"] = response
    return evidence


def _split_message(text: str) -> tuple[str, list[dict[str, str]], str]:
    """Split raw HTTP evidence into (start line, headers, body), leniently."""
    normal = text.replace("\r\n", "\n")
    head, _, body = normal.partition("\n\n")
    start, *header_lines = head.split("\n")
    headers = []
    for line in header_lines:
        name, sep, value = line.partition(":")
        if sep and name.strip():
            headers.append({"name": name.strip()[:256], "value": value.strip()[:4096]})
    return start.strip(), headers, body


def _request(finding: Finding) -> dict[str, Any] | None:
    """GitLab's request object (it needs a method and a URL); unparsed evidence is the body."""
    if not finding.url or not finding.method:
        return None
    request: dict[str, Any] = {"headers": [], "method": finding.method, "url": finding.url}
    start, headers, body = _split_message(finding.request)
    if _REQUEST_LINE.match(start):
        request["headers"] = headers
        if body:
            request["body"] = body
    elif finding.request:
        request["body"] = finding.request
    return request


def _response(text: str) -> dict[str, Any] | None:
    """The response, when its evidence starts with an HTTP status line; else None."""
    start, headers, body = _split_message(text)
    match = _STATUS_LINE.match(start)
    if not text or match is None:
        return None
    response: dict[str, Any] = {
        "headers": headers,
        "reason_phrase": (match.group(2) or "").strip(),
        "status_code": int(match.group(1)),
    }
    if body:
        response["body"] = body
    return response
