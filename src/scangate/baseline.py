"""Baselines: the findings accepted as already known, by fingerprint and severity."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path
from typing import Any

from scangate.errors import ResultsError
from scangate.model import BaselineEntry, Finding, ScanResult, Severity
from scangate.text import json_safe

BASELINE_VERSION = 1

__all__ = ["BASELINE_VERSION", "Baseline", "BaselineEntry", "load_baseline"]


def _entry_key(entry: BaselineEntry) -> tuple[str, int, str, str, str, bool]:
    """Canonical order: by fingerprint, then most severe first."""
    return (
        entry.fingerprint,
        -entry.severity,
        entry.rule_id,
        entry.title,
        entry.url,
        not entry.severity_recorded,
    )


@dataclass(frozen=True)
class Baseline:
    """The findings accepted as known: one entry per finding, so a fingerprint may repeat.

    Each entry accepts one finding with its fingerprint that is at most as severe as the entry
    (`scangate.gate` pairs findings and entries): a baseline of two findings with one
    fingerprint never accepts a third, nor a finding more severe than both.
    """

    entries: tuple[BaselineEntry, ...]
    """In canonical order (`from_entries`)."""

    @classmethod
    def from_entries(cls, entries: Iterable[BaselineEntry]) -> Baseline:
        """Build a baseline of every one of `entries`, repeats included, in canonical order."""
        return cls(tuple(sorted(entries, key=_entry_key)))

    @classmethod
    def from_findings(cls, findings: Iterable[Finding]) -> Baseline:
        """Build the baseline that accepts every one of `findings` (one entry each)."""
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

    @classmethod
    def from_results(cls, results: Iterable[ScanResult]) -> Baseline:
        """The union (`union`) of the baselines of each scan's findings."""
        merged = cls(())
        for result in results:
            merged = merged.union(cls.from_findings(result.findings))
        return merged

    def union(self, other: Baseline) -> Baseline:
        """The smallest baseline that accepts whatever `self` or `other` accepts.

        Per fingerprint, its i-th entry is the more severe of the i-th entries of the two (most
        severe first): two scans of one target each holding one finding F give one entry for F,
        not two, and a baseline united with itself is unchanged.
        """
        mine, theirs = self.by_fingerprint(), other.by_fingerprint()
        entries: list[BaselineEntry] = []
        for fingerprint in mine.keys() | theirs.keys():
            pairs = zip_longest(mine.get(fingerprint, ()), theirs.get(fingerprint, ()))
            entries += (min((e for e in pair if e is not None), key=_entry_key) for pair in pairs)
        return Baseline.from_entries(entries)

    def by_fingerprint(self) -> dict[str, tuple[BaselineEntry, ...]]:
        """Each fingerprint's entries, most severe first."""
        groups: dict[str, list[BaselineEntry]] = {}
        for entry in self.entries:
            groups.setdefault(entry.fingerprint, []).append(entry)
        return {key: tuple(group) for key, group in groups.items()}

    @property
    def fingerprints(self) -> frozenset[str]:
        """Every fingerprint in the baseline."""
        return frozenset(e.fingerprint for e in self.entries)

    @property
    def unrated(self) -> int:
        """How many entries were read without a severity (and are taken as `info`)."""
        return sum(not e.severity_recorded for e in self.entries)

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
    # No severity (a file from before severities were compared, or written by hand): the
    # lowest, so the entry hides no finding more severe than `info` (fail closed).
    recorded = "severity" in raw
    try:
        severity = Severity.parse(str(raw["severity"])) if recorded else Severity.INFO
    except ValueError:
        raise ResultsError(f"{path}: findings[{i}].severity is not a severity") from None
    return BaselineEntry(
        fingerprint=fingerprint,
        rule_id=str(raw.get("rule_id", "")),
        title=str(raw.get("title", "")),
        severity=severity,
        url=str(raw.get("url", "")),
        severity_recorded=recorded,
    )
