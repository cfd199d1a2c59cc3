"""Writing what a run produced: the report files and the user-facing log lines."""

from __future__ import annotations

import os
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

from scangate.errors import OutputError
from scangate.formats import Report, formatter
from scangate.formats.sarif_json import gc_paused
from scangate.model import BaselineState, Decision, Severity
from scangate.redact import Redactor
from scangate.text import no_workflow_commands, xml_safe


class Console:
    """Diagnostics to stderr: every line redacted and stripped of workflow commands."""

    def __init__(self, redactor: Redactor, stream: TextIO | None = None) -> None:
        """Create a new `Console` writing to `stream` (stderr by default)."""
        self.redact = redactor
        self.stream = stream or sys.stderr

    def line(self, text: str) -> None:
        """Write one line (or several) of diagnostics."""
        for part in self.redact(text).splitlines() or [""]:
            # xml_safe drops control characters: ESC could forge GitLab section markers or hide
            # text with terminal escapes.
            self.stream.write(no_workflow_commands(f"scangate: {xml_safe(part)}") + "\n")
        self.stream.flush()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_BUFFER = 1 << 20
"""Bytes buffered before a write(2): few system calls, and a bounded amount held."""


def _write_atomically(path: Path, chunks: Iterator[str]) -> None:
    """Write `chunks` to a temporary file beside `path`, then rename it over `path`.

    The pieces are written as they come, so no whole document is ever held; a reader of `path`
    sees the old file or the complete new one, never a partial one (the rename is atomic).
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    # mkstemp creates 0600; reports are artifacts other CI users (uploaders, later jobs) read.
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n", buffering=_BUFFER) as handle:
            handle.writelines(chunks)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_reports(report: Report, formats: Iterable[str], out_dir: Path) -> list[Path]:
    """Render each format and write it into `out_dir`, streamed; return the paths written."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cannot create the reports directory {out_dir}: {exc.strerror}"
        ) from None
    written = []
    for name in formats:
        fmt = formatter(name)
        path = out_dir / fmt.filename
        try:
            # The pieces make no reference cycles, and with 100,000 findings alive each of the
            # collector's full passes over the heap costs about a second: refcounting suffices.
            with gc_paused():
                _write_atomically(path, fmt.chunks(report))
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror}") from None
        written.append(path)
    return written


def write_text(path: Path, text: str) -> Path:
    """Write `text` to `path` atomically (the reports directory is made first); return `path`.

    For the files that are not one of `reports.formats`, such as the verdict statement.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(path, iter([text]))
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror}") from None
    return path


def summary_line(report: Report) -> str:
    """One line: the verdict and what was counted, ignored, marked false positive and baselined.

    With a baseline it also says how many findings are new and how many escalated (in the
    baseline, but more severe than their entry there); before `gate.enforce_from`, how many
    are deferred (would fail) until that day.
    """
    judgements = [j for e in report.evaluations for j in e.judgements]
    counted = [j for j in judgements if j.decision.counted]
    by_severity = ", ".join(
        f"{n} {s.label}"
        for s in sorted(Severity, reverse=True)
        if (n := sum(1 for j in counted if j.finding.severity is s))
    )
    decisions = Counter(j.decision for j in judgements)
    false_positives = decisions[Decision.FALSE_POSITIVE]
    counted_text = f"{len(counted)} counted" + (f" ({by_severity})" if by_severity else "")
    parts = [
        counted_text,
        f"{decisions[Decision.FAILING]} failing",
        *_deferred(report, decisions[Decision.DEFERRED]),
        f"{decisions[Decision.IGNORED]} ignored",
        f"{false_positives} false positive{'' if false_positives == 1 else 's'}",
        f"{decisions[Decision.BASELINED]} baselined",
    ]
    if any(e.has_baseline for e in report.evaluations):
        states = Counter(j.baseline_state for j in judgements)
        parts += [
            f"{states[BaselineState.NEW]} new",
            f"{states[BaselineState.ESCALATED]} escalated",
        ]
    return f"{report.verdict.value.upper()}: {', '.join(parts)}"


def _deferred(report: Report, count: int) -> list[str]:
    """`2 deferred until 2027-01-15` while the gate is not enforced yet, else nothing."""
    starts = next((e.enforce_from for e in report.evaluations if e.deferred_days is not None), None)
    return [f"{count} deferred until {starts}"] if starts is not None else []
