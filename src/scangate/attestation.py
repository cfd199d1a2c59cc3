"""The verdict as an in-toto Statement v1 (`scangate.intoto.json`), and what it is about.

Every run that makes a report (`run`, `wait`, `gate`) writes one beside the reports, whatever
`reports.formats` says, for a later job to sign (`actions/attest`, `cosign attest`) and a deploy
job to check (`scangate verify`). The predicate is scangate's own type, with a JSON Schema shipped
in the package (`schemas/intoto-statement.json`): the in-toto test-result predicate has no field
for the provider, scan ids, per-severity counts, the policy digest or the scan times.

The subject is the gated artifact: `--subject NAME@sha256:HEX` (or `SCANGATE_SUBJECT`), else the
commit the CI system built (`gitCommit`), else the scanned target URL, whose digest (sha256 of the
URL text) names the URL only and binds no artifact.

Pure but for `policy_digest`, which reads the policy file.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from scangate.errors import UsageError
from scangate.formats import Report
from scangate.model import ScanResult, Severity

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://github.com/scangate/scangate/attestation/dast-verdict/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
"""The DSSE `payloadType` of an in-toto Statement."""
STATEMENT_FILENAME = "scangate.intoto.json"

_HEX_LENGTHS = {"sha256": (64,), "sha512": (128,), "gitCommit": (40, 64)}
"""The digest algorithms a subject may name, and their lengths in hex digits."""
_HEX = re.compile(r"[0-9a-f]+")
_SUBJECT_HINT = (
    "give the artifact as NAME@sha256:HEX (64 hex digits), e.g. "
    "ghcr.io/org/app@sha256:<digest of the image>, or NAME@gitCommit:SHA"
)


@dataclass(frozen=True)
class Subject:
    """One in-toto ResourceDescriptor: a name and its digest by algorithm."""

    name: str
    digest: Mapping[str, str]

    def to_json(self) -> dict[str, Any]:
        """The subject entry of the statement."""
        return {"name": self.name, "digest": dict(self.digest)}


def parse_subject(value: str) -> Subject:
    """Parse `NAME@ALG:HEX` (`ALG`: sha256, sha512 or gitCommit); a `UsageError` otherwise.

    The name is everything before the last `@`, so an image reference
    (`ghcr.io/org/app@sha256:…`) is read whole as it is written.
    """
    name, at, digest = value.strip().rpartition("@")
    alg, colon, hex_digest = digest.partition(":")
    if not at or not name or not colon:
        raise UsageError(f"--subject {value!r} is not NAME@sha256:HEX", hint=_SUBJECT_HINT)
    if alg not in _HEX_LENGTHS:
        raise UsageError(
            f"--subject {value!r}: unknown digest algorithm {alg!r} "
            f"(use {', '.join(_HEX_LENGTHS)})",
            hint=_SUBJECT_HINT,
        )
    lengths = _HEX_LENGTHS[alg]
    if len(hex_digest) not in lengths or not _HEX.fullmatch(hex_digest):
        raise UsageError(
            f"--subject {value!r}: a {alg} digest is "
            f"{' or '.join(map(str, lengths))} lower-case hex digits",
            hint=_SUBJECT_HINT,
        )
    return Subject(name, {alg: hex_digest})


_CI_COMMITS = (
    ("GITHUB_SHA", None),
    ("CI_COMMIT_SHA", "CI_PROJECT_URL"),
    ("GIT_COMMIT", "GIT_URL"),
)
"""Where GitHub Actions, GitLab CI and Jenkins (Git plugin) name the commit and repository."""


def ci_subject(env: Mapping[str, str]) -> Subject | None:
    """The commit the CI system is building, as a `gitCommit` subject; None outside CI.

    The name is the repository's URL, any credentials in it removed (Jenkins' `GIT_URL` may be
    `https://user:token@host/…`). A commit that is not a hex SHA-1/SHA-256 is not used.
    """
    for sha_var, url_var in _CI_COMMITS:
        sha = env.get(sha_var, "").strip().lower()
        if len(sha) not in _HEX_LENGTHS["gitCommit"] or not _HEX.fullmatch(sha):
            continue
        if url_var is None:
            server = env.get("GITHUB_SERVER_URL", "").strip() or "https://github.com"
            repository = env.get("GITHUB_REPOSITORY", "").strip()
            name = f"{server.rstrip('/')}/{repository}" if repository else server
        else:
            name = env.get(url_var, "").strip() or sha_var
        return Subject(_without_credentials(name), {"gitCommit": sha})
    return None


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def target_subjects(results: Sequence[ScanResult]) -> list[Subject]:
    """The scanned targets (each once, in order), digest the sha256 of the URL text.

    The fallback when neither `--subject` nor a CI commit names the artifact: it says what was
    scanned, not which build was deployed there.
    """
    targets = dict.fromkeys(result.target for result in results)
    return [
        Subject(target, {"sha256": hashlib.sha256(target.encode("utf-8")).hexdigest()})
        for target in targets
    ]


def resolve_subjects(
    given: Subject | None, env: Mapping[str, str], results: Sequence[ScanResult]
) -> list[Subject]:
    """The statement's subjects: the one given, else the CI commit, else the targets."""
    if given is not None:
        return [given]
    commit = ci_subject(env)
    if commit is not None:
        return [commit]
    return target_subjects(results)


def policy_digest(path: Path | None) -> dict[str, str]:
    """`{"sha256": HEX}` of the policy file's bytes (of no bytes when there is no file)."""
    data = path.read_bytes() if path is not None else b""
    return {"sha256": hashlib.sha256(data).hexdigest()}


def utc_z(moment: datetime | None) -> str | None:
    """RFC 3339 in UTC with a `Z`, to the second; a naive datetime is taken as UTC already."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def counts(report: Report) -> dict[str, int]:
    """Counted findings by severity, summed over the scans (the run's outputs' numbers)."""
    return {
        severity.label: sum(
            e.counts[severity].counted for e in report.evaluations if severity in e.counts
        )
        for severity in sorted(Severity, reverse=True)
    }


def verdict(report: Report) -> str:
    """The verdict attested: `incomplete` for an interrupted run, whatever was gated so far."""
    return "incomplete" if report.interrupted else report.verdict.value


def _scan(result: ScanResult) -> dict[str, Any]:
    return {
        "provider": result.provider,
        "scanner": result.scanner,
        "scanner_version": result.scanner_version,
        "scan_id": result.scan_id,
        "target": result.target,
        "status": result.status.value,
        "started_at": utc_z(result.started_at),
        "finished_at": utc_z(result.finished_at),
    }


def statement(
    report: Report,
    subjects: Sequence[Subject],
    policy_path: Path | None,
    digest: Mapping[str, str],
    finished_at: datetime,
    bases: Sequence[tuple[Path, Mapping[str, str]]] = (),
) -> dict[str, Any]:
    """The in-toto Statement v1 of `report`'s verdict about `subjects`.

    `digest` is that of the policy file at `policy_path`; `bases` the path and digest of each
    policy it extends (`extends:`, nearest first), on which the verdict depends as much;
    `finished_at` when the verdict was made. `started_at` is the earliest scan start (null
    when no scan says when it started).
    """
    results = [e.result for e in report.evaluations]
    starts = [r.started_at for r in results if r.started_at is not None]
    earliest = min(starts, key=lambda moment: utc_z(moment) or "") if starts else None
    predicate = {
        "scanner": {"name": "scangate", "version": report.tool_version},
        "verdict": verdict(report),
        "counts": counts(report),
        "scans": [_scan(result) for result in results],
        "policy": {
            "path": policy_path.as_posix() if policy_path is not None else "",
            "digest": dict(digest),
            **(
                {"bases": [{"path": p.as_posix(), "digest": dict(d)} for p, d in bases]}
                if bases
                else {}
            ),
        },
        "started_at": utc_z(earliest),
        "finished_at": utc_z(finished_at),
    }
    return {
        "_type": STATEMENT_TYPE,
        "subject": [subject.to_json() for subject in subjects],
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate,
    }


def statement_text(document: Mapping[str, Any]) -> str:
    """The statement as written: indented JSON, keys in order, one trailing newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def statement_schema() -> dict[str, Any]:
    """The JSON Schema of the statement and its predicate, as shipped in the package."""
    text = resources.files("scangate").joinpath("schemas/intoto-statement.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
