"""Baselines: the fingerprints of findings accepted as already known."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scangate.errors import ResultsError
from scangate.model import Finding, Severity
from scangate.text import json_safe

BASELINE_VERSION = 1


@dataclass(frozen=True, kw_only=True)
class BaselineEntry:
    """One known finding, kept with enough detail to report it as fixed."""

    fingerprint: str
    rule_id: str = ""
    title: str = ""
    severity: Severity = Severity.INFO
    url: str = ""


@dataclass(frozen=True)
class Baseline:
    """A set of baseline entries keyed by fingerprint (duplicates collapse)."""

    entries: tuple[BaselineEntry, ...]

    @classmethod
    def from_entries(cls, entries: Iterable[BaselineEntry]) -> Baseline:
        """Build a baseline, keeping the first entry per fingerprint, sorted by fingerprint."""
        unique: dict[str, BaselineEntry] = {}
        for entry in entries:
            unique.setdefault(entry.fingerprint, entry)
        return cls(tuple(unique[key] for key in sorted(unique)))

    @classmethod
    def from_findings(cls, findings: Iterable[Finding]) -> Baseline:
        """Build the baseline that accepts every one of `findings`."""
        return cls.from_entries(
            BaselineEntry(
                fingerprint=f.fingerprint,
                rule_id=f.rule_id,
                title=f.title,
                severity=f.severity,
                url=f.url,
            )
            for f in findings
        )

    @property
    def fingerprints(self) -> frozenset[str]:
        """Every fingerprint in the baseline."""
        return frozenset(e.fingerprint for e in self.entries)

    def to_json(self) -> str:
        """Serialize deterministically, as UTF-8-encodable text (lone surrogates become U+FFFD)."""
        body = {
            "scangate_baseline": BASELINE_VERSION,
            "findings": [
                {
                    "fingerprint": json_safe(e.fingerprint),
                    "rule_id": json_safe(e.rule_id),
                    "title": json_safe(e.title),
                    "severity": e.severity.label,
                    "url": json_safe(e.url),
                }
                for e in self.entries
            ],
        }
        return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


_HINT = "write baselines with `scangate baseline --results scangate.json -o FILE`"


def load_baseline(path: Path) -> Baseline:
    """Read a baseline file written by `scangate baseline` (`ResultsError` if it is not one)."""
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsError(
            f"{path}: baseline file not found",
            hint="create one with `scangate baseline --results scangate.json -o FILE`, "
            "or remove `baseline:` from the policy",
        ) from None
    except (OSError, UnicodeDecodeError, RecursionError, json.JSONDecodeError) as exc:
        raise ResultsError(f"{path}: not a readable baseline file ({exc})", hint=_HINT) from None
    findings = _check_header(path, data)
    return Baseline.from_entries(_entry(path, i, raw) for i, raw in enumerate(findings))


def _check_header(path: Path, data: Any) -> list[Any]:
    """Check the version marker and return the `findings` list."""
    if not isinstance(data, dict) or "scangate_baseline" not in data:
        hint = _HINT
        if isinstance(data, dict) and "scangate_results" in data:
            hint = "this is a results file: " + _HINT
        raise ResultsError(f'{path}: not a scangate baseline (no "scangate_baseline")', hint=hint)
    version = data["scangate_baseline"]
    # `True == 1` in Python: insist on a real integer.
    if type(version) is not int or version != BASELINE_VERSION:
        raise ResultsError(
            f"{path}: unsupported baseline version {json.dumps(version)} "
            f"(this scangate reads version {BASELINE_VERSION})",
            hint=_HINT,
        )
    findings = data.get("findings")
    if not isinstance(findings, list):
        raise ResultsError(f'{path}: "findings" must be a list of findings', hint=_HINT)
    return findings


def _entry(path: Path, i: int, raw: Any) -> BaselineEntry:
    """Parse `findings[i]`."""
    if not isinstance(raw, dict):
        raise ResultsError(f"{path}: findings[{i}] is not an object", hint=_HINT)
    fingerprint = raw.get("fingerprint")
    if not isinstance(fingerprint, str) or not fingerprint:
        raise ResultsError(f"{path}: findings[{i}] has no fingerprint", hint=_HINT)
    try:
        severity = Severity.parse(str(raw.get("severity", "info")))
    except ValueError:
        raise ResultsError(f"{path}: findings[{i}].severity is not a severity") from None
    return BaselineEntry(
        fingerprint=fingerprint,
        rule_id=str(raw.get("rule_id", "")),
        title=str(raw.get("title", "")),
        severity=severity,
        url=str(raw.get("url", "")),
    )
