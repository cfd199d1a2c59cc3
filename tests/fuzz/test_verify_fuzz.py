"""`scangate verify` on hostile files: nothing passes but a valid, matching, fresh, passing verdict.

The deploy gate reads a file that travelled through artifact storage, registries and other
people's jobs. Whatever it holds (random bytes, random JSON, a signed envelope with bytes of its
payload, signature or key id flipped, fields changed), `verify` must never exit 0 unless an
independent oracle agrees the file is a statement it should accept; and it must never crash
(an exit status other than 0, 1 or 2 is an internal error).
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given
from hypothesis import strategies as st

from scangate.cli import main
from scangate.dsse import pae

from .strategies import JSON, RAW_BODIES, TEXT, encode_json, fuzz_settings, mutated

EXAMPLES = 60
NAME = "ghcr.io/acme/shop"
DIGEST = "a" * 64
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://github.com/scangate/scangate/attestation/dast-verdict/v1"
FLAGS = ("--subject", f"{NAME}@sha256:{DIGEST}", "--max-age", "7d")
SEVERITIES = ("critical", "high", "medium", "low", "info")

KEY = ed25519.Ed25519PrivateKey.generate()
"""The signing key (one per session: key generation is the slow part)."""
PUBLIC = KEY.public_key()


def _statement() -> dict[str, Any]:
    finished = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {"name": "other", "digest": {"sha256": "b" * 64}},
            {"name": NAME, "digest": {"sha256": DIGEST, "sha512": "c" * 128}},
        ],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "scanner": {"name": "scangate", "version": "0.1.0"},
            "verdict": "passed",
            "counts": {"critical": 0, "high": 0, "medium": 1, "low": 0, "info": 4},
            "scans": [],
            "policy": {"path": "scangate.yml", "digest": {"sha256": "d" * 64}},
            "started_at": finished,
            "finished_at": finished,
        },
    }


PAYLOAD = json.dumps(_statement()).encode()
"""The signed statement: the only payload a signed file may carry and pass."""


def _envelope() -> dict[str, Any]:
    sig = KEY.sign(pae(PAYLOAD_TYPE, PAYLOAD))
    return {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(PAYLOAD).decode(),
        "signatures": [{"keyid": "k1", "sig": base64.b64encode(sig).decode()}],
    }


@contextlib.contextmanager
def _files() -> Iterator[tuple[Path, Path]]:
    with tempfile.TemporaryDirectory() as directory:
        key = Path(directory) / "key.pub"
        key.write_bytes(
            PUBLIC.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        yield Path(directory) / "statement.json", key


def _verify(data: bytes, *, signed: bool) -> int:
    """`scangate verify` on `data` (with the trusted key when `signed`), through `cli.main`."""
    with _files() as (path, key):
        path.write_bytes(data)
        argv = ["verify", str(path), *FLAGS] + (["--key", str(key)] if signed else [])
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main(argv)
    assert status in (0, 1, 2), (status, err.getvalue())  # 3 would be an internal error
    if status == 0:
        assert out.getvalue().endswith("verify: passed\n")
    else:
        assert "verify: passed" not in out.getvalue()
    return status


# -- the oracles: written from the interface, not from verify.py ---------------------------------


def _b64(text: object) -> bytes | None:
    if not isinstance(text, str):
        return None
    try:
        raw = text.encode("ascii").replace(b"-", b"+").replace(b"_", b"/")
        return base64.b64decode(raw + b"=" * (-len(raw) % 4), validate=True)
    except (ValueError, UnicodeEncodeError):
        return None


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def acceptable_statement(document: object) -> bool:
    """True when `document` is a statement verify may pass for `FLAGS`."""
    if not isinstance(document, dict):
        return False
    if document.get("_type") != STATEMENT_TYPE or document.get("predicateType") != PREDICATE_TYPE:
        return False
    subjects = document.get("subject")
    if not isinstance(subjects, list) or not any(
        isinstance(s, dict)
        and s.get("name") == NAME
        and isinstance(s.get("digest"), dict)
        and str(s["digest"].get("sha256", "")).lower() == DIGEST
        for s in subjects
    ):
        return False
    predicate = document.get("predicate")
    if not isinstance(predicate, dict) or predicate.get("verdict") != "passed":
        return False
    counts = predicate.get("counts")
    if not isinstance(counts, dict) or not all(_count(counts.get(s)) for s in SEVERITIES):
        return False
    finished = predicate.get("finished_at")
    if not isinstance(finished, str):
        return False
    try:
        when = datetime.fromisoformat(finished.replace("Z", "+00:00"))
    except ValueError:
        return False
    now = datetime.now(UTC)
    return when.tzinfo is not None and now - timedelta(days=7) <= when <= now + timedelta(minutes=5)


def acceptable_signed(data: bytes) -> bool:
    """True when `data` is an envelope (or bundle) carrying `PAYLOAD` with a valid signature."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return False
    if isinstance(document, dict) and "dsseEnvelope" in document:
        document = document["dsseEnvelope"]
    if not isinstance(document, dict) or document.get("payloadType") != PAYLOAD_TYPE:
        return False
    if _b64(document.get("payload")) != PAYLOAD:
        return False
    signatures = document.get("signatures")
    for each in signatures if isinstance(signatures, list) else []:
        sig = _b64(each.get("sig")) if isinstance(each, dict) else None
        if sig is None:
            continue
        try:
            PUBLIC.verify(sig, pae(PAYLOAD_TYPE, PAYLOAD))
        except InvalidSignature:
            continue
        return True
    return False


# -- the strategies ------------------------------------------------------------------------------


def _flip(data: bytes, draw: st.DrawFn) -> bytes:
    if not data:
        return data
    index = draw(st.integers(0, len(data) - 1))
    bit = 1 << draw(st.integers(0, 7))
    return data[:index] + bytes([data[index] ^ bit]) + data[index + 1 :]


@st.composite
def signed_files(draw: st.DrawFn) -> bytes:
    """A signed envelope or bundle, damaged in one of the ways an attacker or a bad copy would."""
    envelope = _envelope()
    how = draw(
        st.sampled_from(
            ("none", "payload", "sig", "keyid", "type", "fields", "resign-fields", "file", "extra")
        )
    )
    if how == "payload":
        envelope["payload"] = base64.b64encode(_flip(PAYLOAD, draw)).decode()
    elif how == "sig":
        sig = base64.b64decode(envelope["signatures"][0]["sig"])
        envelope["signatures"][0]["sig"] = base64.b64encode(_flip(sig, draw)).decode()
    elif how == "keyid":
        envelope["signatures"][0]["keyid"] = draw(JSON)  # unauthenticated: may still pass
    elif how == "type":
        envelope["payloadType"] = draw(st.one_of(TEXT, st.just("application/json")))
    elif how == "fields":  # the statement changed, the signature kept
        changed = draw(st.one_of(mutated(_statement()), targeted()))
        envelope["payload"] = base64.b64encode(json.dumps(changed).encode()).decode()
    elif how == "resign-fields":  # signed by another key: never the trusted one
        other = ed25519.Ed25519PrivateKey.generate()
        payload = json.dumps(draw(mutated(_statement()))).encode()
        envelope["payload"] = base64.b64encode(payload).decode()
        sig = other.sign(pae(PAYLOAD_TYPE, payload))
        envelope["signatures"] = [{"sig": base64.b64encode(sig).decode()}]
    elif how == "extra":
        envelope = draw(mutated(envelope))
    document: Any = envelope
    if draw(st.booleans()):
        document = {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}
        document["dsseEnvelope"] = envelope
    data = json.dumps(document).encode()
    return _flip(data, draw) if how == "file" else data


@st.composite
def statement_files(draw: st.DrawFn) -> bytes:
    """A bare statement, changed a little or a lot, or not a statement at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(RAW_BODIES)
    value = draw(st.one_of(mutated(_statement()), targeted()))
    return encode_json(value, ascii_only=True, depth=3, shape="list")


@st.composite
def targeted(draw: st.DrawFn) -> dict[str, Any]:
    """A well-formed statement with a meaningful change: verdict, subject, counts or age."""
    statement = _statement()
    predicate = statement["predicate"]
    predicate["verdict"] = draw(st.sampled_from(("passed", "failed", "incomplete")))
    if draw(st.booleans()):
        subject = statement["subject"][1]
        subject["name"] = draw(st.sampled_from((NAME, "", NAME + " ", "ghcr.io/acme/other")))
        subject["digest"]["sha256"] = draw(st.sampled_from((DIGEST, DIGEST.upper(), "b" * 64)))
    if draw(st.booleans()):
        severity = draw(st.sampled_from(SEVERITIES))
        predicate["counts"][severity] = draw(st.integers(-2, 10**30))
    if draw(st.booleans()):
        age = timedelta(seconds=draw(st.integers(-10 * 86400, 10 * 86400)))
        predicate["finished_at"] = (datetime.now(UTC) - age).strftime("%Y-%m-%dT%H:%M:%SZ")
    return statement


# -- the tests -----------------------------------------------------------------------------------


def test_the_oracles_accept_the_untouched_files() -> None:
    """The fuzz tests would be empty if their starting files did not pass."""
    signed = json.dumps(_envelope()).encode()
    assert acceptable_signed(signed)
    assert _verify(signed, signed=True) == 0
    bare = json.dumps(_statement()).encode()
    assert acceptable_statement(json.loads(bare))
    assert _verify(bare, signed=False) == 0


@fuzz_settings(EXAMPLES)
@given(data=signed_files())
def test_signed_verify_passes_only_the_signed_payload(data: bytes) -> None:
    if _verify(data, signed=True) == 0:
        assert acceptable_signed(data), data


@fuzz_settings(EXAMPLES)
@given(data=statement_files())
def test_unsigned_verify_passes_only_acceptable_statements(data: bytes) -> None:
    if _verify(data, signed=False) == 0:
        assert acceptable_statement(json.loads(data)), data


@fuzz_settings(EXAMPLES)
@given(
    data=st.one_of(st.binary(max_size=200), RAW_BODIES, JSON.map(lambda v: json.dumps(v).encode()))
)
@pytest.mark.parametrize("signed", [False, True])
def test_random_input_never_passes(data: bytes, signed: bool) -> None:
    assert _verify(data, signed=signed) != 0
