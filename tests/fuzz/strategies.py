"""Hostile-data strategies shared by the fuzz tests: text, JSON leaves, mutated payloads, bodies.

A hostile or broken provider can send anything: wrong types, missing keys, huge strings, control
characters, lone surrogates, bytes that are not UTF-8, absurd numbers and deeply nested JSON.
These strategies start from a recorded, valid payload and damage it a little (most leaves stay
intact, so the parser still reaches its deep code paths) or a lot.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

SCALE = float(os.environ.get("SCANGATE_FUZZ_SCALE", "1"))
"""Multiplies every test's example count (CI runs the default 1; raise it to fuzz longer)."""
HUGE = 100_000
"""Characters in a huge string."""
DEEP = 10_000
"""Nesting levels of a deeply nested JSON document (CPython's decoder gives up near 1,000)."""
DEEP_MARKER = "__scangate_fuzz_deep_nesting__"
"""A string leaf that `encode_json` replaces by a nested JSON document, after serializing."""

SUPPRESSED = [
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.filter_too_much,
    HealthCheck.large_base_example,
    HealthCheck.function_scoped_fixture,
]
"""Huge strings and big payloads are the point here, not a sign of a slow strategy."""


def fuzz_settings(examples: int) -> settings:
    """Bounded settings for one fuzz test: `examples` (times `SCALE`), no deadline, no database.

    A failure prints its reproduction blob (`@reproduce_failure`), so it can be replayed exactly
    without a shared example database.
    """
    return settings(
        max_examples=max(1, round(examples * SCALE)),
        deadline=None,
        database=None,
        print_blob=True,
        suppress_health_check=SUPPRESSED,
    )


# -- text --------------------------------------------------------------------------------------

PIECES = (
    "<script>alert(1)</script>",
    "<!-- x -->",
    "]]>",
    "&amp;&#0;&#xD800;",
    "\x00",
    "\x07\x08\x0b\x0c\x1b[31m\x7f",
    "\r",
    "\r\n::error::pwned\n",
    "::add-mask::x",
    "##[error]x",
    "\ud800",
    "\udfff",
    "\ud83d",
    "\ufffe\uffff",
    "\u202e\u2066",
    "\u200b",
    "\u0085\u2028\u2029",
    "%0A%25",
    "${{ secrets.X }}",
    "| col | `code` *b* _i_ [l](javascript:x) ![i](x)",
    "javascript:alert(1)",
    "https://user:pa55@evil.example:99999/a b/../%ZZ?x=<y>#z",
    "http://[::1",
    "../../etc/passwd",
    "\U0001f600",
    "é",
    " ",
    "\t",
    "NaN",
    "None",
    "null",
)
"""Fragments that have broken parsers and renderers: markup, controls, surrogates, bad URLs."""

ANY_CHAR = st.characters(codec=None, exclude_categories=())
"""Every code point, control characters and lone surrogates included."""


def _huge(piece: str) -> str:
    return (piece * (HUGE // len(piece) + 1))[:HUGE]


HUGE_TEXT = st.sampled_from(("A", "é", *PIECES)).map(_huge)
"""100,000 characters of one fragment, repeated."""

TEXT = st.one_of(
    st.text(ANY_CHAR, max_size=40),
    st.lists(st.sampled_from(PIECES), min_size=1, max_size=6).map("".join),
    HUGE_TEXT,
)
"""Hostile text of every size."""

SHORT_TEXT = st.one_of(
    st.text(ANY_CHAR, max_size=20),
    st.lists(st.sampled_from(PIECES), min_size=1, max_size=3).map("".join),
)
"""Hostile text without the huge strings (dictionary keys, one-line fields)."""


# -- JSON leaves -------------------------------------------------------------------------------

SPECIAL_INTS = (0, 1, -1, 100, 101, 2**31, -(2**31), 2**63, -(2**63), 10**20, 10**308)
HUGE_INTS = (10**309, -(10**309), 10**4000)
"""Beyond a float (`float()` raises OverflowError) and near the 4,300-digit `int()` limit."""
SPECIAL_FLOATS = (
    math.nan,
    math.inf,
    -math.inf,
    -0.0,
    5e-324,
    1e308,
    -1e308,
    0.5,
    99.99,
    100.000001,
    10.000001,
    -0.1,
)
NUMBER_TEXTS = (
    "0",
    "-5",
    " 42 ",
    "1e309",
    "-1e309",
    "NaN",
    "Infinity",
    "0x10",
    "1_000",
    "١٢",
    "²",
    "9" * 400,
    "9" * 5000,
)
"""Numbers as strings, the way a lenient provider (NCP) might send them, or worse."""
TIME_TEXTS = (
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00Z",
    "0001-01-01",
    "0000-00-00 00:00:00",
    "0001-01-01 00:00:00",
    "9999-12-31 23:59:59",
    "00:00:00 01/01/0001",
    "23:59:59 31/12/9999",
    "1970-01-01T00:00:00Z",
    "2026-02-30T10:00:00Z",
    "99999999999999",
    "253402300800",
    "0.000001",
)
"""Timestamps at and past the edges of `datetime`, in the shapes providers use."""

NUMBER = st.one_of(
    st.integers(),
    st.sampled_from(SPECIAL_INTS + HUGE_INTS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(SPECIAL_FLOATS),
)
SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    NUMBER,
    TEXT,
    st.sampled_from(NUMBER_TEXTS + TIME_TEXTS),
)
"""Any JSON scalar, hostile (NaN and Infinity included: Python's decoder accepts them)."""
KEYS = st.one_of(SHORT_TEXT, st.sampled_from(("", "0", "1", "10", "²", "9" * 5000, "__proto__")))
JSON = st.recursive(
    SCALAR,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=3)),
    max_leaves=6,
)
"""Any JSON value, hostile scalars in small lists and objects."""


# -- mutations of a valid payload --------------------------------------------------------------

RATES = (0, 0, 3, 10, 25, 60)
"""Percent chance that a node is replaced (half that to delete an object member)."""


def _variants(value: Any) -> st.SearchStrategy[Any]:
    """Replacements for one node: anything hostile, or a damaged copy of the same kind."""
    same: list[st.SearchStrategy[Any]] = [
        JSON,
        st.sampled_from(NUMBER_TEXTS + TIME_TEXTS),
        st.sampled_from(SPECIAL_FLOATS + SPECIAL_INTS + HUGE_INTS),
        st.just(DEEP_MARKER),
    ]
    if isinstance(value, str):
        same += [
            TEXT,
            TEXT.map(lambda extra: value + extra),
            TEXT.map(lambda extra: extra + value),
            st.just(value.upper()),
            st.just(f"  {value}  "),
        ]
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        same += [
            st.just(str(value)),
            st.just(-value),
        ]
    elif isinstance(value, dict):
        same += [st.just({}), st.just([value]), st.just(list(value.values()))]
    elif isinstance(value, list):
        same += [st.just([]), st.just(value * 3), st.just(dict(enumerate(value)))]
    return st.one_of(same)


def _walk(draw: Callable[[st.SearchStrategy[Any]], Any], value: Any, rate: int) -> Any:
    """Copy `value`, replacing each node with `rate` percent chance (members: drop, add)."""
    if rate and draw(st.integers(0, 99)) < rate:
        return draw(_variants(value))
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if rate and draw(st.integers(0, 199)) < rate:
                continue  # a missing key
            out[key] = _walk(draw, item, rate)
        if rate and draw(st.integers(0, 299)) < rate:
            out[draw(KEYS)] = draw(JSON)
        return out
    if isinstance(value, list):
        items = [_walk(draw, item, rate) for item in value]
        if rate and draw(st.integers(0, 299)) < rate:
            items += draw(st.lists(JSON, max_size=3))
        return items
    return value


@st.composite
def mutated(draw: st.DrawFn, template: Any) -> Any:
    """`template` with some nodes replaced by hostile values or removed (sometimes none)."""
    rate = draw(st.sampled_from(RATES))
    return _walk(draw, template, rate)


# -- bodies ------------------------------------------------------------------------------------

DEPTHS = (3, 50, 400, 800, DEEP)
"""Nesting depths: harmless, enough to break a recursive walker, enough to break the decoder."""


def deep_json(depth: int, shape: str = "list") -> str:
    """A JSON document `depth` levels deep: `[[[...]]]` or `{"a": {"a": ... 0}}`."""
    if shape == "list":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "0" + "}" * depth


def encode_json(value: Any, *, ascii_only: bool, depth: int, shape: str) -> bytes:
    """Serialize `value` like a server would; `DEEP_MARKER` leaves become nested documents.

    With `ascii_only`, lone surrogates travel as `\\ud800` escapes (valid JSON); without it they
    are written raw (`surrogatepass`), which makes the body invalid UTF-8.
    """
    text = json.dumps(value, ensure_ascii=ascii_only)
    text = text.replace(json.dumps(DEEP_MARKER), deep_json(depth, shape))
    return text.encode("utf-8", "surrogatepass")


RAW_BODIES = st.one_of(
    st.sampled_from(
        (
            b"",
            b"null",
            b"[]",
            b"{}",
            b"0",
            b'"text"',
            b"NaN",
            b"-Infinity",
            b"1" * 5000,
            b'{"status": "\xff\xfe"}',
            b"\xff\xfe\x00\x00garbage",
            b"\xef\xbb\xbf{}",
            b"<html><body><h1>502 Bad Gateway</h1></body></html>",
            b'{"unterminated": "',
            b"{'single': 'quotes'}",
        )
    ),
    st.binary(max_size=64),
    st.sampled_from(DEPTHS).map(lambda depth: deep_json(depth).encode()),
    st.sampled_from(DEPTHS).map(lambda depth: deep_json(depth, "object").encode()),
)
"""Bodies that are not the JSON a parser hopes for."""


@st.composite
def json_body(draw: st.DrawFn, template: Any) -> bytes:
    """A response body: mostly a mutated `template`, sometimes not JSON (or not UTF-8) at all."""
    if draw(st.integers(0, 19)) == 0:
        return draw(RAW_BODIES)
    value = draw(mutated(template))
    text = encode_json(
        value,
        ascii_only=draw(st.integers(0, 4)) > 0,
        depth=draw(st.sampled_from(DEPTHS)),
        shape=draw(st.sampled_from(("list", "object"))),
    )
    cut = draw(st.integers(0, 39))
    if cut == 0 and len(text) > 1:
        return text[: draw(st.integers(1, len(text) - 1))]  # a truncated answer
    if cut == 1:
        return text.decode("utf-8", "surrogatepass").encode("utf-16", "surrogatepass")
    if cut == 2:
        return text.decode("utf-8", "surrogatepass").encode("latin-1", "replace")
    return text
