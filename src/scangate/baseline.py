"""Baselines: the fingerprints of findings accepted as already known."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scangate.errors import ResultsError
from scangate.model import Finding, Severity

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
        """Serialize deterministically."""
        body = {
            "scangate_baseline": BASELINE_VERSION,
            "findings": [
                {
                    "fingerprint": e.fingerprint,
                    "rule_id": e.rule_id,
                    "title": e.title,
                    "severity": e.severity.label,
                    "url": e.url,
                }
                for e in self.entries
            ],
        }
        return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


def load_baseline(path: Path) -> Baseline:
    """Read a baseline file written by `scangate baseline`."""
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsError(
            f"{path}: baseline file not found",
            hint="create one with `scangate baseline --results scangate.json -o FILE`, "
            "or remove `baseline:` from the policy",
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultsError(f"{path}: not a readable baseline file ({exc})") from None
    if not isinstance(data, dict) or data.get("scangate_baseline") != BASELINE_VERSION:
        raise ResultsError(
            f"{path}: not a scangate baseline (expected \"scangate_baseline\": {BASELINE_VERSION})",
            hint="write baselines with `scangate baseline`",
        )
    entries = []
    for i, raw in enumerate(data.get("findings") or []):
        if not isinstance(raw, dict) or not isinstance(raw.get("fingerprint"), str):
            raise ResultsError(f"{path}: findings[{i}] has no fingerprint")
        try:
            severity = Severity.parse(str(raw.get("severity", "info")))
        except ValueError:
            raise ResultsError(f"{path}: findings[{i}].severity is not a severity") from None
        entries.append(
            BaselineEntry(
                fingerprint=raw["fingerprint"],
                rule_id=str(raw.get("rule_id", "")),
                title=str(raw.get("title", "")),
                severity=severity,
                url=str(raw.get("url", "")),
            )
        )
    return Baseline.from_entries(entries)
