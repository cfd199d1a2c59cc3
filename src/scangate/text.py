"""Sanitizers for untrusted provider text (design §4, §9 "Untrusted text")."""

from __future__ import annotations

import hashlib
import re
import unicodedata

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
    # A function, not the template `r"\\\1"`: templates are expanded per match in Python, three
    # times slower on a URL full of `.`, `-` and `:` (the GitLab report escapes every one).
    return _MD_SPECIAL.sub(_backslashed, flat)


def _backslashed(match: re.Match[str]) -> str:
    return "\\" + match.group()


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


# Unicode bidirectional formatting characters: embeddings and overrides (U+202A-U+202E),
# isolates (U+2066-U+2069) and the implicit marks (U+200E, U+200F, U+061C). They make text read
# differently than it is stored (CVE-2021-42574, "Trojan Source").
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
# Cc is C0 (U+0000-U+001F), DEL and C1 (U+0080-U+009F). U+FFFE/U+FFFF are noncharacters that
# XML forbids. Lone surrogates cannot be encoded as UTF-8.
_MODEL_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}\ufffe\uffff\ud800-\udfff\u2028\u2029]")
# The same set less what multi-line text keeps (TAB, LF, CR, U+2028, U+2029): evidence is full
# of line breaks, and a search that stops at each of them would send nearly every request and
# response through the slow substitution below for nothing to change.
_MULTILINE_UNSAFE = re.compile(
    f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_BIDI}\ufffe\uffff\ud800-\udfff]"
)
_LINE_BREAKS = frozenset("\t\n\r\x0b\x0c\x85\u2028\u2029")
"""Characters that end or indent a line: a space in single-line text, not nothing."""
_KEPT_IN_TEXT = frozenset("\t\n\r\u2028\u2029")
"""What multi-line text (evidence, descriptions) keeps: they mean something there."""
_SURROGATE = re.compile("[\ud800-\udfff]")


def model_text(text: str, *, multiline: bool = False) -> str:
    """Provider text as the model keeps it: no control, bidi or unencodable character.

    NUL and every other C0/C1 control, DEL, the bidi controls (U+202A-U+202E, U+2066-U+2069,
    U+200E, U+200F, U+061C) and U+FFFE/U+FFFF are dropped; a lone surrogate becomes U+FFFD.
    Single-line text (titles, ids, URLs, parameters) gets a space for each line break or TAB;
    `multiline` text (evidence, descriptions) keeps TAB, LF, CR and U+2028/U+2029, and gets
    a LF for VT, FF and NEL. Idempotent; text with nothing to change is returned as it is.
    """
    if multiline:
        if _MULTILINE_UNSAFE.search(text) is None:
            return text
        return _MULTILINE_UNSAFE.sub(_multiline_char, text)
    if _MODEL_UNSAFE.search(text) is None:
        return text
    return _MODEL_UNSAFE.sub(_single_line_char, text)


def _single_line_char(match: re.Match[str]) -> str:
    char = match.group()
    if char in _LINE_BREAKS:
        return " "
    return "\ufffd" if _SURROGATE.match(char) else ""


def _multiline_char(match: re.Match[str]) -> str:
    char = match.group()
    if char in _KEPT_IN_TEXT:
        return char
    if char in _LINE_BREAKS:
        return "\n"
    return "\ufffd" if _SURROGATE.match(char) else ""


SLUG_LIMIT = 64
"""Longest `rule_slug`: GitHub shows rule ids in full, and SARIF's own id check stops at 64."""
_SLUG_WORD = re.compile(r"[a-z0-9]+")


def rule_slug(title: str) -> str:
    """A rule id made from a title, for providers that have none: `[a-z0-9-]`, bounded, stable.

    The title is normalized first (control characters dropped, Unicode compatibility forms
    folded, case folded, whitespace collapsed). Its ASCII words joined by `-` are the slug when
    they say all the title says (`SQL Injection in Login Form` gives
    `sql-injection-in-login-form`); otherwise, or when cut to `SLUG_LIMIT`, 8 hex digits of a
    SHA-256 of the normalized title follow, so that distinct titles keep distinct ids
    (`Cross-Site Scripting (XSS)` gives `cross-site-scripting-xss-` and the hash). A title
    without ASCII letters or digits gives `title-` and the hash.
    """
    normal = " ".join(unicodedata.normalize("NFKC", model_text(title)).casefold().split())
    ascii_form = unicodedata.normalize("NFKD", normal).encode("ascii", "ignore").decode()
    words = _SLUG_WORD.findall(ascii_form)
    slug = "-".join(words)
    if slug and normal == " ".join(words) and len(slug) <= SLUG_LIMIT:
        return slug
    digest = hashlib.sha256(normal.encode("utf-8")).hexdigest()[:8]
    base = slug[: SLUG_LIMIT - len(digest) - 1].rstrip("-") or "title"
    return f"{base}-{digest}"
