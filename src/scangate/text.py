"""Sanitizers for untrusted provider text (design §4, §9 "Untrusted text")."""

from __future__ import annotations

import re

# XML 1.0 allows TAB, LF, CR, U+0020-U+D7FF, U+E000-U+FFFD and U+10000-U+10FFFF only.
_XML_FORBIDDEN = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~&])")
_WORKFLOW_COMMAND = re.compile(r"^(\s*)(::|##\[)", re.MULTILINE)


def xml_safe(text: str) -> str:
    """Drop every character XML 1.0 forbids (control characters, lone surrogates, U+FFFE/F)."""
    return _XML_FORBIDDEN.sub("", text)


def json_safe(text: str) -> str:
    """Replace lone surrogates (which cannot be encoded as UTF-8) with U+FFFD."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def markdown_escape(text: str) -> str:
    """Escape `text` for inline Markdown/HTML: no markup, links, tables or raw HTML survive.

    Newlines become spaces, so a value always stays on its table row or list item.
    """
    flat = " ".join(json_safe(xml_safe(text)).split())
    return _MD_SPECIAL.sub(r"\\\1", flat)


def no_workflow_commands(text: str) -> str:
    """Neutralize anything that a CI runner would read as a workflow command in a log line.

    GitHub reads `::command::` at the start of a line and Azure reads `##[command]`; a zero-width
    space after the leading marker stops both, and the text stays readable.
    """
    return _WORKFLOW_COMMAND.sub(lambda m: m.group(1) + m.group(2)[0] + "\u200b" + m.group(2)[1:], text)


def one_line(text: str, limit: int = 200) -> str:
    """Collapse whitespace to one line and cap it at `limit` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
