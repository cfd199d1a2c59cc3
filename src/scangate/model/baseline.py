"""A baseline entry: one finding accepted as already known (`scangate.baseline` loads and saves
baselines of them)."""

from __future__ import annotations

from dataclasses import dataclass

from scangate.model.findings import Severity


@dataclass(frozen=True, kw_only=True)
class BaselineEntry:
    """One known finding, kept with enough detail to report it as fixed."""

    fingerprint: str
    rule_id: str = ""
    title: str = ""
    severity: Severity = Severity.INFO
    """The most severe a finding with this fingerprint may be and still match this entry."""
    url: str = ""
    severity_recorded: bool = True
    """False for an entry read from a file without a severity: it is read as `info`, the
    lowest, so that any more severe finding with its fingerprint counts as escalated."""
