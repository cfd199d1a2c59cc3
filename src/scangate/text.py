"""Sanitizers for untrusted provider text (design §4, §9 "Untrusted text")."""

from __future__ import annotations

import re

# XML 1.0 allows TAB, LF, CR, U+0020-U+D7FF, U+E000-U+FFFD and U+10000-U+10FFFF only.
_XML_FORBIDDEN = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# `:` stops GFM's extended autolinks (`https://...`, `mailto:`), `$` GitHub's inline math; the
# rest are CommonMark's inline, block-start, table and HTML markers. All are ASCII punctuation,
# so a backslash makes each a literal (CommonMark "Backslash escapes").
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~&:$])")
_WORKFLOW_COMMAND = re.compile(r"^(\s*)(::|##\[)")


def xml_safe(text: str) -> str:
    """Drop every character XML 1.0 forbids (control characters, lone surrogates, U+FFFE/F)."""
    return _XML_FORBIDDEN.sub("", text)


def json_safe(text: str) -> str:
    """Replace lone surrogates (which cannot be encoded as UTF-8) with U+FFFD."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def markdown_escape(text: str) -> str:
    """Escape `text` for inline Markdown/HTML: no markup, links, tables or raw HTML survive.

    Newlines become spaces, so a value always stays on its table row or list item. A bare e-mail
    address still becomes a `mailto:` link on GitHub (its autolinker ignores escapes); its text
    is the address itself, so it cannot disguise where it points.
    """
    flat = " ".join(json_safe(xml_safe(text)).split())
    return _MD_SPECIAL.sub(r"\\\1", flat)


def no_workflow_commands(text: str) -> str:
    """Neutralize anything that a CI runner would read as a workflow command in a log line.

    GitHub reads `::command::` at the start of a line (after leading whitespace) and the legacy
    `##[command]` syntax; a zero-width space after the first marker character stops both, and the
    text stays readable. Every line boundary counts (`\\r` alone too: the runner's line reader
    splits on it), so lines are split the way `str.splitlines` does, the broadest definition.
    """
    return "".join(_WORKFLOW_COMMAND.sub(_break_marker, line) for line in text.splitlines(True))


def _break_marker(match: re.Match[str]) -> str:
    marker = match.group(2)
    return match.group(1) + marker[0] + "\u200b" + marker[1:]


def one_line(text: str, limit: int = 200) -> str:
    """Collapse whitespace to one line and cap it at `limit` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
