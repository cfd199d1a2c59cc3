"""CI-system integration: detect the runner, write its outputs, keep its log safe."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from scangate.formats import Report


def publish(
    report: Report, written: Sequence[Path], env: Mapping[str, str], stdout: TextIO
) -> None:
    """Hand the outcome to the CI system we run under (outputs, summary, annotations)."""
    return None


@contextmanager
def section(title: str, env: Mapping[str, str], stdout: TextIO) -> Iterator[None]:
    """Wrap the lines written inside the block in a collapsible log section, where supported."""
    yield
