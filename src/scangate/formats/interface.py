"""The formatter contract: a pure function from a `Report` to the text of one file."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from scangate.model import Evaluation, GateSettings, Verdict


@dataclass(frozen=True, kw_only=True)
class Report:
    """Everything a formatter may use. One `Evaluation` per scan (several after a merge)."""

    evaluations: tuple[Evaluation, ...]
    verdict: Verdict
    gate: GateSettings = field(default_factory=GateSettings)
    tool_version: str = "0.0.0"
    sarif_anchor: str | None = None
    """Repository file every SARIF result is anchored to, if set."""
    interrupted: str = ""
    """Non-empty when scangate was stopped (`SIGTERM`, timeout): the reports are partial."""


class Formatter(ABC):
    """Renders a `Report` as the full text of one report file. Never does I/O."""

    name: str
    """Registry name, as in `reports.formats` (`gitlab-dast`)."""
    filename: str
    """File name inside the reports directory (`gl-dast-report.json`)."""

    @abstractmethod
    def render(self, report: Report) -> str:
        """Return the whole file's text; deterministic for the same `report`."""
