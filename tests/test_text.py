"""Sanitizers for untrusted provider text (design §4, §9 "Untrusted text")."""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET

import cmarkgfm  # type: ignore[import-untyped]
import pytest
from cmarkgfm.cmark import Options  # type: ignore[import-untyped]
from conftest import HOSTILE
from hypothesis import example, given, settings
from hypothesis import strategies as st

from scangate.text import (
    SLUG_LIMIT,
    json_safe,
    markdown_escape,
    model_text,
    no_workflow_commands,
    one_line,
    rule_slug,
    xml_safe,
)

PROPERTY = settings(max_examples=300, deadline=None)

any_text = st.text(st.characters(exclude_categories=()))
"""Every code point, lone surrogates included (a broken provider can send them)."""


def tricky(alphabet: str) -> st.SearchStrategy[str]:
    """Text mixing `alphabet` (the characters that matter) with anything at all."""
    return st.text(st.one_of(st.sampled_from(alphabet), st.characters(exclude_categories=())))


# --- xml_safe --------------------------------------------------------------------------------


def xml_allowed(char: str) -> bool:
    """The XML 1.0 `Char` production (https://www.w3.org/TR/xml/#charsets)."""
    cp = ord(char)
    return (
        cp in (0x9, 0xA, 0xD)
        or 0x20 <= cp <= 0xD7FF
        or 0xE000 <= cp <= 0xFFFD
        or 0x10000 <= cp <= 0x10FFFF
    )


@PROPERTY
@given(tricky("\x00\x08\x0b\x0c\x1f\ud800\udfff\ufffe\uffff\t\n\r<>&]]>"))
def test_xml_safe_removes_exactly_the_forbidden_characters(text: str) -> None:
    assert xml_safe(text) == "".join(c for c in text if xml_allowed(c))


@PROPERTY
@given(tricky("\x00\x01\x0b\ud83d\ude00\ufffe\r\n\t<&>'\"]]>"))
def test_xml_safe_text_always_parses_inside_an_element(text: str) -> None:
    safe = xml_safe(text)
    element = ET.Element("testcase", {"name": safe})
    element.text = safe
    parsed = ET.fromstring(ET.tostring(element, encoding="utf-8"))
    assert parsed.get("name") == safe
    # XML parsers turn CR and CRLF in character data into LF (XML 1.0 §2.11).
    assert (parsed.text or "") == safe.replace("\r\n", "\n").replace("\r", "\n")


def test_unsanitized_hostile_text_would_break_the_xml() -> None:
    # The control case: without xml_safe, ElementTree writes XML nobody can read back.
    element = ET.Element("x")
    element.text = HOSTILE.replace("\ud800", "")
    with pytest.raises(ET.ParseError):
        ET.fromstring(ET.tostring(element, encoding="utf-8"))


def test_xml_safe_keeps_allowed_whitespace_and_astral_characters() -> None:
    assert xml_safe("a\tb\nc\rd \U0001f600 \ufffd") == "a\tb\nc\rd \U0001f600 \ufffd"
    assert xml_safe("\x00\x0b\x0c\x7f\x80") == "\x7f\x80"  # C1 controls are allowed in XML 1.0


# --- json_safe -------------------------------------------------------------------------------


@PROPERTY
@given(any_text)
def test_json_safe_output_is_utf8_encodable_and_round_trips(text: str) -> None:
    safe = json_safe(text)
    encoded = json.dumps({"t": safe}, ensure_ascii=False).encode("utf-8")
    assert json.loads(encoded)["t"] == safe
    assert len(safe) == len(text)
    # Only lone surrogates change, each into U+FFFD.
    for before, after in zip(text, safe, strict=True):
        assert after == ("\ufffd" if 0xD800 <= ord(before) <= 0xDFFF else before)


def test_json_safe_replaces_each_half_of_a_split_surrogate_pair() -> None:
    assert json_safe("a\ud83d\ude00b") == "a\ufffd\ufffdb"
    assert json_safe("a\U0001f600b") == "a\U0001f600b"


# --- markdown_escape -------------------------------------------------------------------------

MAILTO = re.compile(r'<a href="mailto:([^"]*)">([^<]*)</a>')


def render(markdown: str) -> str:
    """GitHub's own Markdown engine (cmark-gfm with its extensions), raw HTML kept visible."""
    return str(
        cmarkgfm.github_flavored_markdown_to_html(markdown, options=Options.CMARK_OPT_UNSAFE)
    )


def assert_renders_as_plain_text(text: str) -> None:
    """The escaped text renders as one paragraph holding exactly the original characters."""
    escaped = markdown_escape(text)
    assert "\n" not in escaped and "\r" not in escaped
    expected = " ".join(xml_safe(text).split())
    rendered = render(escaped)
    if not expected:
        assert rendered == ""
        return
    assert rendered.startswith("<p>") and rendered.endswith("</p>\n"), rendered
    inner = rendered[3:-5]
    # A bare e-mail address stays a mailto: link (GitHub's autolinker ignores escapes); its
    # visible text is the address it points to, so it cannot disguise its target.
    for href, label in MAILTO.findall(inner):
        # `a@b.c` and GFM's `mailto:a@b.c` autolinks both show exactly where they point.
        assert html.unescape(label) in (html.unescape(href), "mailto:" + html.unescape(href))
    inner = MAILTO.sub(lambda m: m.group(2), inner)
    assert "<" not in inner, rendered  # no tag: no link, emphasis, code, image or raw HTML
    assert html.unescape(inner) == expected


@pytest.mark.parametrize(
    "text",
    [
        HOSTILE,
        "[click](javascript:alert(1)) ![img](https://x.test/a.png) <https://x.test>",
        "https://evil.test/login and www.evil.test and http://x.test:8080/a?b=c",
        "<img src=x onerror=alert(1)> <!-- c --> &lt;b&gt; &#x3C;",
        "# heading",
        "> quote",
        "- item",
        "1. item",
        "    indented code",
        "```fence``` ~~~tilde~~~ `code`",
        "*em* _em_ **strong** __strong__ ~~strike~~",
        "| a | b |",
        "line one\nline two\r\n===\n---",
        "trailing backslash \\",
        "$x^2$ and $$y$$",
        "text with :emoji: and a footnote[^1]",
        "contact admin@example.com",
    ],
)
def test_markdown_escape_examples(text: str) -> None:
    assert_renders_as_plain_text(text)


@settings(max_examples=500, deadline=None)
@given(tricky("\\`*_{}[]()#+-.!|<>~&:$@=\"'%/;^ \n\r\twh1"))
def test_markdown_escape_leaves_no_live_markup(text: str) -> None:
    assert_renders_as_plain_text(text)


def tokens(*vocabulary: str) -> st.SearchStrategy[str]:
    """Text assembled from `vocabulary`, so that the syntax it can form is actually formed."""
    return st.lists(st.sampled_from(vocabulary), max_size=12).map("".join)


MARKDOWN_TOKENS = tokens(
    "[", "](", ")", "![", "<", ">", "</", "a", "http", "https://", "://", "www.", "mailto:",
    "a.b", "evil.test", "/", ".", "@", "*", "**", "_", "`", "~~", "&", "&#", "amp;", "#", "1.",
    "-", "+", "!", "|", "\\", "$", "^", ":", "=", " ", "    ", "\n", "\r\n", "\t", "x",
)  # fmt: skip


@PROPERTY
@given(MARKDOWN_TOKENS)
@example(text="mailto:@www.a")
def test_markdown_escape_leaves_no_markup_from_syntax_tokens(text: str) -> None:
    assert_renders_as_plain_text(text)


# --- no_workflow_commands --------------------------------------------------------------------

COMMAND_LINE = re.compile(r"^\s*(::|##\[)")


def assert_no_command_line(text: str) -> None:
    """No line of `text`, however lines are split, starts (after blanks) like a command."""
    for line in text.splitlines():
        assert not COMMAND_LINE.match(line), repr(line)


@pytest.mark.parametrize(
    "text",
    [
        "::error::pwned",
        "  ::add-mask::x",
        "\t##[error]x",
        "ok\n::warning file=a::x",
        "ok\r::set-output name=x::y",  # a lone CR ends a line for the runner's reader
        "ok\r\n::stop-commands::tok",
        "ok\u2028::group::x",
        "ok\x85::debug::x",
        "ok\n \n ::endgroup::",
        "::::",
        HOSTILE,
    ],
)
def test_workflow_commands_are_neutralized(text: str) -> None:
    safe = no_workflow_commands(text)
    assert_no_command_line(safe)
    assert safe.replace("\u200b", "") == text.replace("\u200b", "")


COMMAND_TOKENS = tokens(
    "::", "##[", ":", "#", "[", "error", "::add-mask::", "x", " ", "\t", "\u3000",
    "\n", "\r", "\r\n", "\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\u200b",
)  # fmt: skip


@PROPERTY
@given(st.one_of(COMMAND_TOKENS, tricky(":#[\n\r \t\u2028\x0b\x0c\x1c\x85")))
def test_no_output_line_starts_a_workflow_command(text: str) -> None:
    safe = no_workflow_commands(text)
    assert_no_command_line(safe)
    # Only zero-width spaces are added: the text stays readable and nothing else changes.
    assert safe.replace("\u200b", "") == text.replace("\u200b", "")


def test_markers_not_at_a_line_start_are_left_alone() -> None:
    text = "see ::error:: and ##[x] mid-line"
    assert no_workflow_commands(text) == text


# --- one_line --------------------------------------------------------------------------------


@PROPERTY
@given(any_text, st.integers(1, 300))
def test_one_line_is_one_capped_line(text: str, limit: int) -> None:
    line = one_line(text, limit)
    assert len(line) <= limit
    assert line.splitlines() in ([], [line])
    flat = " ".join(text.split())
    assert line == flat or (line.endswith("…") and flat.startswith(line[:-1]))


# --- model_text ------------------------------------------------------------------------------

UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
    "\ud800-\udfff\ufffe\uffff\u2028\u2029]"
)
"""What single-line model text never holds."""
MULTILINE_UNSAFE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e"
    "\u2066-\u2069\ud800-\udfff\ufffe\uffff]"
)
"""What multi-line model text never holds: it keeps TAB, LF, CR, U+2028 and U+2029."""
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"


@PROPERTY
@given(tricky("\x00\x01\t\n\r\x0b\x85\x9f\x7f\u202e\u2066\u200f\ud800\u2028 a"))
def test_model_text_holds_no_control_bidi_or_surrogate(text: str) -> None:
    line = model_text(text)
    assert not UNSAFE.search(line)
    assert model_text(line) == line  # idempotent: sanitizing twice changes nothing
    line.encode("utf-8")
    multi = model_text(text, multiline=True)
    assert not MULTILINE_UNSAFE.search(multi)
    assert model_text(multi, multiline=True) == multi
    multi.encode("utf-8")


@PROPERTY
@given(st.text(st.characters(blacklist_categories=("Cc", "Cs", "Cf", "Zl", "Zp"))))
def test_model_text_leaves_ordinary_text_alone(text: str) -> None:
    assert model_text(text) is text
    assert model_text(text, multiline=True) is text


def _reference_multiline(text: str) -> str:
    """`model_text(text, multiline=True)`, one character at a time, as the docstring says."""
    out = []
    for char in text:
        if char in "\t\n\r\u2028\u2029":
            out.append(char)
        elif char in "\x0b\x0c\x85":
            out.append("\n")
        elif "\ud800" <= char <= "\udfff":
            out.append("\ufffd")
        elif not UNSAFE.match(char):
            out.append(char)
    return "".join(out)


@PROPERTY
@given(tricky("\x00\x01\t\n\r\x0b\x0c\x85\x9f\x7f\u202e\u2066\u200f\ud800\u2028\u2029 a"))
def test_multiline_model_text_matches_the_per_character_rule(text: str) -> None:
    # Multi-line text has a search pattern of its own (evidence is full of line breaks, which
    # the single-line pattern stops at): it must change exactly what the rule says.
    assert model_text(text, multiline=True) == _reference_multiline(text)


def test_evidence_with_only_line_breaks_is_returned_as_it_is() -> None:
    evidence = "GET / HTTP/1.1\r\nHost: app\r\n\r\n\tbody\u2028end"
    assert model_text(evidence, multiline=True) is evidence


def test_model_text_examples() -> None:
    assert model_text("a\x00b\x1fc\x7fd\x9fe") == "abcde"
    assert model_text("x" + BIDI + "y") == "xy"
    assert model_text("title\nmore\tand\r\x85end") == "title more and  end"
    assert model_text("lone \ud800 half") == "lone \ufffd half"
    assert model_text("GET /\r\nHost: x\x00\x0b\x0c\x85tail", multiline=True) == (
        "GET /\r\nHost: x\n\n\ntail"
    )
    assert model_text(HOSTILE).count("\ufffd") == 1
    assert "<script>alert(1)</script>" in model_text(HOSTILE)


# --- rule_slug -------------------------------------------------------------------------------

SLUG = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")


@PROPERTY
@given(any_text)
def test_rule_slug_is_short_safe_and_stable(title: str) -> None:
    slug = rule_slug(title)
    assert SLUG.fullmatch(slug) and len(slug) <= SLUG_LIMIT
    assert slug.isascii()
    assert rule_slug(title) == slug
    # The normalized title decides: case, spacing and control characters do not.
    assert rule_slug(" " + title.upper() + "\x00 ") == rule_slug(title.upper())


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("SQL Injection in Login Form", "sql-injection-in-login-form"),
        ("  sql   INJECTION in login form\u202e", "sql-injection-in-login-form"),
        ("XSS", "xss"),
    ],
)
def test_a_title_of_plain_words_is_its_own_slug(title: str, slug: str) -> None:
    assert rule_slug(title) == slug


def test_a_title_that_loses_something_gets_a_hash_and_stays_distinct() -> None:
    plain, dashed = rule_slug("a b"), rule_slug("a-b")
    assert plain == "a-b" and re.fullmatch(r"a-b-[0-9a-f]{8}", dashed)
    hostile = rule_slug(HOSTILE)
    assert re.fullmatch(r"[a-z0-9-]+-[0-9a-f]{8}", hostile) and len(hostile) <= SLUG_LIMIT
    assert re.fullmatch(r"title-[0-9a-f]{8}", rule_slug("日本語の脆弱性"))
    long = "word " * 40
    assert SLUG_LIMIT - 4 <= len(rule_slug(long)) <= SLUG_LIMIT  # cut short, the hash kept
    assert rule_slug(long) != rule_slug(long + "more")
    assert rule_slug("Injección SQL").startswith("injeccion-sql-")
