"""DSSE envelopes of in-toto statements: reading them and their pre-authentication encoding.

`scangate verify` reads three shapes of file (issue 19): a bare in-toto Statement, a DSSE
envelope (https://github.com/secure-systems-lab/dsse/blob/master/envelope.md) and a
Sigstore bundle holding one under `dsseEnvelope` (what GitHub's `actions/attest` writes).
Everything here treats the file as untrusted: any surprise is an `AttestationError` (exit 2)
naming what is wrong.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from scangate.errors import Error

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
"""The DSSE payload type of an in-toto Statement.

https://github.com/in-toto/attestation/blob/main/spec/v1/envelope.md
"""


class AttestationError(Error):
    """A statement, envelope or bundle that is malformed, unreadable or unsigned (exit 2)."""


@dataclass(frozen=True)
class Signature:
    """One DSSE signature: the raw signature bytes and the (unauthenticated) key id."""

    sig: bytes
    keyid: str


@dataclass(frozen=True)
class Envelope:
    """What a file held: the statement's bytes and, for an envelope, its signatures.

    `signed` is False for a bare statement (no envelope at all); an envelope may still have
    an empty `signatures` list.
    """

    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]
    signed: bool
    shape: str
    """`statement`, `DSSE envelope` or `Sigstore bundle`: for the diagnostics."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """The DSSE v1 pre-authentication encoding: what is signed.

    https://github.com/secure-systems-lab/dsse/blob/master/protocol.md


    `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths in ASCII decimal bytes.
    """
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def b64decode(text: object, what: str) -> bytes:
    """Decode standard or URL-safe base64 (DSSE allows both), strictly; raise on anything else."""
    if not isinstance(text, str):
        raise AttestationError(f"{what} is not a base64 string but {_kind(text)}")
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError:
        raise AttestationError(f"{what} is not base64: it holds non-ASCII characters") from None
    if b"-" in raw or b"_" in raw:
        raw = raw.replace(b"-", b"+").replace(b"_", b"/")
    raw += b"=" * (-len(raw) % 4)  # unpadded base64 is common in URL-safe encodings
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AttestationError(f"{what} is not valid base64: {exc}") from None


def parse(data: bytes) -> Envelope:
    """Read a bare statement, a DSSE envelope or a Sigstore bundle from the bytes of a file."""
    document = load_json(data, "the file")
    if not isinstance(document, dict):
        raise AttestationError(
            f"the file holds {_kind(document)}, not a statement, DSSE envelope or Sigstore bundle"
        )
    if "dsseEnvelope" in document:
        return _envelope(document["dsseEnvelope"], "Sigstore bundle")
    if "payload" in document or "payloadType" in document or "signatures" in document:
        return _envelope(document, "DSSE envelope")
    if "_type" in document:
        return Envelope(INTOTO_PAYLOAD_TYPE, data, (), signed=False, shape="statement")
    raise AttestationError(
        "the file is not an in-toto statement, DSSE envelope or Sigstore bundle",
        hint="give the scangate.intoto.json a run wrote, or the envelope/bundle signing made",
    )


def load_json(data: bytes, what: str) -> Any:
    """Parse JSON from untrusted bytes (UTF-8, no duplicate keys); raise `AttestationError`."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AttestationError(
            f"{what} is not UTF-8 text: {exc.reason} at byte {exc.start}"
        ) from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise AttestationError(f"{what} is not JSON: {exc}") from None
    except ValueError as exc:  # an integer of more than 4,300 digits (CPython's int limit)
        raise AttestationError(f"{what} holds a number scangate cannot read: {exc}") from None
    except RecursionError:
        raise AttestationError(f"{what} nests JSON too deeply") from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Two `verdict` keys would let two readers see two verdicts: refuse the ambiguity.
    made: dict[str, Any] = {}
    for key, value in pairs:
        if key in made:
            raise AttestationError(f"the JSON has the key {key!r} twice")
        made[key] = value
    return made


def _no_constant(name: str) -> Any:
    raise AttestationError(f"the JSON holds {name}, which is not JSON")


def _envelope(value: object, shape: str) -> Envelope:
    if not isinstance(value, dict):
        raise AttestationError(f"the {shape}'s envelope is {_kind(value)}, not an object")
    payload_type = value.get("payloadType")
    if not isinstance(payload_type, str):
        raise AttestationError(f"the {shape} has no payloadType string")
    if payload_type != INTOTO_PAYLOAD_TYPE:
        raise AttestationError(
            f"the {shape}'s payloadType is {payload_type!r}, not {INTOTO_PAYLOAD_TYPE!r}"
        )
    payload = b64decode(value.get("payload"), f"the {shape}'s payload")
    signatures = value.get("signatures", [])
    if not isinstance(signatures, list):
        raise AttestationError(f"the {shape}'s signatures is {_kind(signatures)}, not a list")
    parsed = []
    for index, each in enumerate(signatures):
        where = f"the {shape}'s signature {index + 1}"
        if not isinstance(each, dict):
            raise AttestationError(f"{where} is {_kind(each)}, not an object")
        keyid = each.get("keyid", "")
        if not isinstance(keyid, str):
            raise AttestationError(f"{where} has a keyid that is {_kind(keyid)}, not a string")
        parsed.append(Signature(b64decode(each.get("sig"), f"{where}'s sig"), keyid))
    return Envelope(payload_type, payload, tuple(parsed), signed=True, shape=shape)


def _kind(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)
