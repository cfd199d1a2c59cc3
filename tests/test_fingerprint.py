"""Fingerprints (design §4): stable across runs and volatile URL parts, sensitive to the rest."""

from __future__ import annotations

import re

import pytest
from conftest import make_finding
from hypothesis import given, settings
from hypothesis import strategies as st

from scangate.fingerprint import compute_fingerprint, normalize_url

HEX32 = re.compile(r"^[0-9a-f]{32}$")
BASE = ("cyberorigen", "sql_injection", "GET", "https://app.example.com/api/items", "q")


def fp(
    url: str = BASE[3],
    *,
    provider: str = BASE[0],
    rule: str = BASE[1],
    method: str = BASE[2],
    parameter: str = BASE[4],
) -> str:
    """The fingerprint of the base finding with some parts changed."""
    return compute_fingerprint(provider, rule, method, url, parameter)


def test_fingerprint_is_32_lower_hex_and_repeatable() -> None:
    assert HEX32.match(fp())
    assert fp() == fp()
    assert make_finding(3).fingerprint == make_finding(3).fingerprint


def test_finding_create_uses_the_same_fingerprint() -> None:
    finding = make_finding(0, url="https://app.example.com/x", method="get", parameter="id")
    assert finding.fingerprint == compute_fingerprint(
        "cyberorigen", finding.rule_id, "GET", "https://app.example.com/x", "id"
    )


# --- Stable across volatile parts ------------------------------------------------------------


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("https://app.example.com/a", "HTTPS://APP.Example.Com/a"),
        ("https://app.example.com/a", "https://app.example.com:443/a"),
        ("http://app.example.com/a", "http://app.example.com:80/a"),
        ("https://app.example.com/a", "https://app.example.com/a/"),
        ("https://app.example.com", "https://app.example.com/"),
        ("https://app.example.com/a", "https://app.example.com/a#section"),
        ("https://app.example.com/a", "https://user:pw@app.example.com/a"),
        ("https://app.example.com/items/1", "https://app.example.com/items/98765"),
        (
            "https://app.example.com/u/5f3c2a1b-1234-4abc-8def-0123456789ab/edit",
            "https://app.example.com/u/04ba1b24-dc45-47e6-81eb-f1348a6fbb9b/edit",
        ),
        (
            "https://app.example.com/u/5f3c2a1b12344abc8def0123456789ab",
            "https://app.example.com/u/5F3C2A1B-1234-4ABC-8DEF-0123456789AB",
        ),
        # MD5, SHA-1 and SHA-256 hashes.
        ("https://x.test/f/d41d8cd98f00b204e9800998ecf8427e", "https://x.test/f/0"),
        (
            "https://x.test/f/da39a3ee5e6b4b0d3255bfef95601890afd80709",
            "https://x.test/f/"
            + "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ),
        # Opaque tokens (session ids, base64 values, cache-busting bundle names).
        ("https://x.test/s/sess_8f3kd92jf83hd72hf8e3", "https://x.test/s/sess_Zk29dj38Dk2l0aQ7xB"),
        ("https://x.test/a/dGhpcyBpcyBhIHRlc3Q0MTIz==", "https://x.test/a/42"),
        (
            "https://x.test/main.3f9a8b7c6d5e4f3a2b1c.js",
            "https://x.test/main.9e8d7c6b5a4f3e2d1c0b.js",
        ),
        # Query values never matter, nor the order or repetition of names.
        ("https://x.test/s?q=1&page=2", "https://x.test/s?q=abc&page=99"),
        ("https://x.test/s?q=1&page=2", "https://x.test/s?page=2&q=1"),
        ("https://x.test/s?q=1&q=2", "https://x.test/s?q=3"),
        ("https://x.test/s?q", "https://x.test/s?q="),
        ("https://x.test/s?q=1&page=2", "https://x.test/s?page&q=https://evil.test/?a=b"),
        # A bare host is a host, even when a query value holds a full URL.
        ("app.example.com/p?next=https://x.test/", "app.example.com/p?next=/home"),
        ("app.example.com/p", "APP.example.com/p/"),
    ],
)
def test_stable_across_volatile_parts(one: str, other: str) -> None:
    assert fp(one) == fp(other)


def test_stable_across_method_case_and_provider_case() -> None:
    assert fp(method="get") == fp(method="GET") == fp(method=" Get ")
    assert fp(provider="CyberOrigen") == fp(provider="cyberorigen")
    assert fp(rule=" sql_injection ") == fp()


# --- Sensitive to everything else ------------------------------------------------------------


@pytest.mark.parametrize(
    "changed",
    [
        {"provider": "cystack"},
        {"rule": "xss_reflected"},
        {"rule": "SQL_Injection"},
        {"method": "POST"},
        {"parameter": "id"},
        {"parameter": ""},
        {"url": "https://app.example.com/api/orders"},
        {"url": "https://app.example.com/api/items/edit"},
        {"url": "https://app.example.com/api"},
        {"url": "http://app.example.com/api/items"},
        {"url": "https://app.example.com:8443/api/items"},
        {"url": "https://other.example.com/api/items"},
        {"url": "https://app.example.com/api/items?q=1"},
        {"url": "https://app.example.com/API/items"},
    ],
)
def test_sensitive_to_non_volatile_changes(changed: dict[str, str]) -> None:
    assert fp(**changed) != fp()


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("https://x.test/s?q=1", "https://x.test/s?page=1"),
        (
            "https://x.test/docs/upgrade-guide-from-v1-to-v2",
            "https://x.test/docs/upgrade-guide-from-v2-to-v3",
        ),
        ("https://x.test/api/getUserByIdV2Handler", "https://x.test/api/getUserByIdV3Handler"),
        ("https://x.test/v1/users", "https://x.test/v2/users"),
        ("https://x.test:8080/", "https://x.test:8081/"),
        ("http://[::1]:8080/", "http://[::1:8080]/"),
        ("https://x.test/a/b", "https://x.test/a%2Fb"),
    ],
)
def test_distinguishes_urls_that_differ_in_non_volatile_parts(one: str, other: str) -> None:
    assert fp(one) != fp(other)


def test_no_collision_through_the_field_separator() -> None:
    # Hostile provider text: `rule | method` must not be able to impersonate another split.
    assert fp(rule="a|B", method="C") != fp(rule="a", method="B|C")
    assert fp(rule="a\\", method="B") != fp(rule="a", method="\\B")
    assert fp(url="https://x.test/a", parameter="p|q") != fp(
        url="https://x.test/a|p", parameter="q"
    )


# --- Normalized form -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "normal"),
    [
        (
            "HTTPS://App.Example.com:443/items/42/?b=2&a=1#top",
            "https://app.example.com/items/{id}?a&b",
        ),
        ("http://Example.com:8080", "http://example.com:8080/"),
        ("http://[::1]:8080/x", "http://[::1]:8080/x"),
        ("app.example.com/p?r=https://x", "app.example.com/p?r"),
        ("", ""),
    ],
)
def test_normalize_url(url: str, normal: str) -> None:
    assert normalize_url(url) == normal


# --- Properties ------------------------------------------------------------------------------

segment = st.text(st.sampled_from("abcdefgh-_"), min_size=1, max_size=8)
"""A readable, non-volatile path segment."""
volatile = st.one_of(
    st.integers(0, 10**12).map(str),
    st.uuids().map(str),
    st.uuids().map(lambda u: u.hex.upper()),
    st.binary(min_size=16, max_size=32).map(bytes.hex),
)
param_names = st.lists(st.sampled_from(["q", "page", "id", "sort", "x-y"]), unique=True)


@st.composite
def url_variants(draw: st.DrawFn) -> tuple[str, str]:
    """Two spellings of the same endpoint: case, default port, ids, query values and order."""
    scheme = draw(st.sampled_from(["http", "https"]))
    host = draw(st.sampled_from(["app.example.com", "x.test", "127.0.0.1"]))
    shape = draw(st.lists(st.sampled_from(["word", "id"]), max_size=5))
    words = [draw(segment) for _ in shape]
    names = draw(param_names)

    def spell() -> str:
        port = {"http": ":80", "https": ":443"}[scheme] if draw(st.booleans()) else ""
        parts = [
            w if kind == "word" else draw(volatile) for w, kind in zip(words, shape, strict=True)
        ]
        order = draw(st.permutations(names))
        query = "&".join(
            f"{n}={draw(st.text(st.sampled_from('ab1=/:%'), max_size=6))}" for n in order
        )
        scheme_cased = draw(st.sampled_from([scheme, scheme.upper()]))
        host_cased = draw(st.sampled_from([host, host.upper(), host.title()]))
        trail = draw(st.sampled_from(["", "/"]))
        path = "/" + "/".join(parts) + trail if parts else trail
        return f"{scheme_cased}://{host_cased}{port}{path}" + (f"?{query}" if query else "")

    return spell(), spell()


@settings(max_examples=200, deadline=None)
@given(url_variants())
def test_spellings_of_one_endpoint_share_a_fingerprint(urls: tuple[str, str]) -> None:
    one, other = urls
    assert fp(one) == fp(other)
    assert normalize_url(normalize_url(one)) == normalize_url(one)


@settings(max_examples=300, deadline=None)
@given(
    st.text(),
    st.text(),
    st.text(),
    st.text(st.characters(exclude_categories=())),
    st.text(st.characters(exclude_categories=())),
)
def test_garbage_never_raises(
    provider: str, rule: str, method: str, url: str, parameter: str
) -> None:
    assert HEX32.match(compute_fingerprint(provider, rule, method, url, parameter))
    assert isinstance(normalize_url(url), str)


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from("htps:/[]@?#&=%.:0123456789abcXYZ-_ \t\\")))
def test_url_shaped_garbage_never_raises(url: str) -> None:
    assert HEX32.match(fp(url))
