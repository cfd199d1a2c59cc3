"""What every command shares in one process run: environment, console, redaction, clocks.

Building a `Context` also routes the package's `logging` records through the console, so
provider warnings reach the user redacted and stripped of workflow commands.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from scangate.ci import Failure
from scangate.ci.github import add_mask, is_github
from scangate.output import Console
from scangate.redact import Redactor

if TYPE_CHECKING:
    from scangate.attestation import Subject


@dataclass
class Context:
    """What every command shares: environment, console, redaction, clocks."""

    env: Mapping[str, str]
    console: Console
    redactor: Redactor
    debug: bool
    process_start: float
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    # What a run that fails must hand to the CI system (`cli.main`, issue 17):
    reports_dir: Path | None = None
    """The policy's reports directory, once a policy loaded (where the dotenv report goes)."""
    scan_id: str = ""
    """The scan this run started or attached to, once there is one."""
    published: bool = False
    """True once a report's outputs and summary were published: no second set is written."""
    failure: Failure | None = None
    """Set by a command that ends on a timeout, signal or error it handled itself."""
    subject: Subject | None = None
    """The artifact `--subject` named, the subject of the verdict statement (issue 19)."""

    @classmethod
    def create(cls, *, debug: bool, process_start: float) -> Context:
        """Build the context of one process run."""
        env = dict(os.environ)
        redactor = Redactor()
        context = cls(env, Console(redactor), redactor, debug, process_start)
        _route_logging(context.console, debug)
        if is_github(env):
            redactor.on_add(lambda value: add_mask(context.stdout, value))
        return context

    def traceback(self) -> None:
        """Print the current exception's traceback, redacted (only under --debug)."""
        self.console.line(traceback.format_exc())


class _ConsoleHandler(logging.Handler):
    """Sends the package's log records through the `Console` (redacted, no workflow commands)."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.console.line(f"{record.levelname.lower()}: {record.getMessage()}")
        except Exception:  # noqa: BLE001 - logging must never break the run
            self.handleError(record)


def _route_logging(console: Console, debug: bool) -> None:
    """Providers log warnings with `logging`; they must reach the user through the console."""
    logger = logging.getLogger("scangate")
    logger.handlers[:] = [_ConsoleHandler(console)]
    logger.setLevel(logging.DEBUG if debug else logging.WARNING)
    logger.propagate = False
