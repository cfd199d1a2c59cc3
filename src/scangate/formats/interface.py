"""The formatter contract: a pure function from a `Report` to the text of one file."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field

from scangate.model import Evaluation, GateSettings, Verdict
from scangate.model.settings import GITLAB_SCHEMA_VERSIONS


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
    gitlab_schema_version: str = GITLAB_SCHEMA_VERSIONS[-1]
    """The schema `gl-dast-report.json` declares (`gitlab_dast.choose_schema_version`)."""


class Formatter(ABC):
    """Renders a `Report` as the text of one report file, in pieces. Never does I/O."""

    name: str
    """Registry name, as in `reports.formats` (`gitlab-dast`)."""
    filename: str
    """File name inside the reports directory (`gl-dast-report.json`)."""

    @abstractmethod
    def chunks(self, report: Report) -> Iterator[str]:
        """Yield the file's text in pieces (one per vulnerability, test case, result...).

        Joined, the pieces are the whole file, deterministic for the same `report`. A writer
        that writes them as they come holds one piece at a time, not the document: at 100,000
        findings the document is hundreds of megabytes (issue 16).
        """

    def render(self, report: Report) -> str:
        """Return the whole file's text (the pieces of `chunks`, joined)."""
        return "".join(self.chunks(report))
