"""GitHub Actions: masking, log groups (design §6, §7; formats.md §4.5)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TextIO


def is_github(env: Mapping[str, str]) -> bool:
    """True when running as a GitHub Actions step."""
    return env.get("GITHUB_ACTIONS") == "true"


def escape_data(text: str) -> str:
    """Escape a workflow-command message as `@actions/core` does (`%`, CR, LF)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a workflow-command property value (`%`, CR, LF, `:` and `,`)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def add_mask(stream: TextIO, value: str) -> None:
    """Ask the runner to mask `value` in all later log output.

    `::add-mask::` on stdout is the only place a secret may ever be printed (design §9).
    """
    stream.write(f"::add-mask::{escape_data(value)}\n")
    stream.flush()
