"""`scangate verify`: check a scan verdict statement before a deployment (issue 19).

The deploy job's gate: it reads `scangate.intoto.json` (a bare in-toto Statement v1), a DSSE
envelope of one, or a Sigstore bundle holding that envelope, and checks the signature
(`--key`), the subject (`--subject`), the verdict (`passed`, or per-severity limits) and the
age (`--max-age`). Exit 0 only when every check holds; 1 with one line per failed check; 2 for
input that is malformed, of the wrong type, or unsigned when a key is given.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from scangate.dsse import AttestationError, Envelope, load_json, pae, parse
from scangate.errors import ExitStatus, UsageError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from scangate.session import Context

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://github.com/scangate/scangate/attestation/dast-verdict/v1"
SEVERITIES = ("critical", "high", "medium", "low", "info")
VERDICTS = ("passed", "failed", "incomplete")
CLOCK_SKEW = timedelta(minutes=5)
"""How far in the future a `finished_at` may be (clocks of two CI runners differ)."""

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DIGEST = re.compile(r"[A-Za-z0-9_-]+:[0-9A-Za-z]+")
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")


class SubjectArg:
    """A `--subject NAME@ALG:HEX` (NAME may be empty: match the digest only)."""

    def __init__(self, text: str) -> None:
        """Parse `text`; raise `ValueError` (argparse's usage error) when it is malformed."""
        name, at, digest = text.rpartition("@")
        if not at or not _DIGEST.fullmatch(digest):
            raise ValueError(text)
        algorithm, _, value = digest.partition(":")
        self.name = name
        self.algorithm = algorithm
        self.value = value.lower()

    def __str__(self) -> str:
        """The subject as given (normalised to lower-case hex)."""
        return f"{self.name}@{self.algorithm}:{self.value}"


def _max_age(text: str) -> timedelta:
    match = re.fullmatch(r"(\d{1,9})([smhd])", text.strip())
    if not match:
        raise ValueError(text)
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def _limit(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


def _subject_arg(text: str) -> SubjectArg:
    return SubjectArg(text)


# argparse names a refused value by its type's __name__: "invalid duration (...) value: '3w'".
_subject_arg.__name__ = "subject (NAME@sha256:HEX or @gitCommit:SHA)"
_max_age.__name__ = "duration (like 7d, 12h, 30m, 90s)"
_limit.__name__ = "count (an integer >= 0)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add `verify`'s arguments to its subparser (cheap: no crypto import here)."""
    parser.add_argument(
        "file",
        type=Path,
        help="scangate.intoto.json, a DSSE envelope of it, or a Sigstore bundle holding one",
    )
    parser.add_argument(
        "--key",
        type=Path,
        metavar="PEM",
        help="PEM public key (ECDSA P-256 or Ed25519): the statement must carry its signature",
    )
    parser.add_argument(
        "--subject",
        type=_subject_arg,
        metavar="NAME@ALG:HEX",
        help="the artifact being deployed: NAME@sha256:HEX, or @gitCommit:SHA for a commit",
    )
    parser.add_argument(
        "--max-age",
        type=_max_age,
        metavar="DURATION",
        help="refuse a verdict made longer ago than this (s/m/h/d: 7d, 12h)",
    )
    for severity in SEVERITIES:
        parser.add_argument(
            f"--max-{severity}",
            type=_limit,
            metavar="N",
            help=f"allow at most N {severity} findings (any limit replaces verdict == passed)",
        )


@dataclass(frozen=True)
class Statement:
    """The fields of a statement `verify` checks, validated."""

    subjects: tuple[tuple[str, dict[str, str]], ...]
    verdict: str
    counts: dict[str, int]
    finished_at: datetime


def run(args: argparse.Namespace, context: Context) -> int:
    """Verify the statement `args` name; the exit status."""
    data = _read(args.file, "the statement file")
    envelope = parse(data)
    statement = read_statement(envelope.payload)
    lines: list[str] = []
    failed: list[str] = []

    def report(ok: bool, text: str) -> None:
        lines.append(text)
        if not ok:
            failed.append(text)

    report(*_signature(envelope, args.key))
    report(*_subject(statement, args.subject))
    limits = {s: getattr(args, f"max_{s}") for s in SEVERITIES}
    report(*_verdict(statement, {s: n for s, n in limits.items() if n is not None}))
    report(*_age(statement, args.max_age, datetime.now(UTC)))
    for line in lines:
        context.stdout.write(line + "\n")
    if failed:
        context.console.line(f"verify: refused, {len(failed)} check(s) failed")
        return ExitStatus.GATE_FAILED
    context.stdout.write("verify: passed\n")
    return ExitStatus.PASSED


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def read_statement(payload: bytes) -> Statement:
    """Validate an in-toto Statement v1 with scangate's predicate; raise `AttestationError`."""
    document = load_json(payload, "the statement")
    if not isinstance(document, dict):
        raise AttestationError("the statement is not a JSON object")
    if document.get("_type") != STATEMENT_TYPE:
        raise AttestationError(
            f"the statement's _type is {_show(document.get('_type'))}, not {STATEMENT_TYPE!r}"
        )
    if document.get("predicateType") != PREDICATE_TYPE:
        raise AttestationError(
            f"the statement's predicateType is {_show(document.get('predicateType'))}, "
            f"not scangate's {PREDICATE_TYPE!r}"
        )
    subjects = document.get("subject")
    if not isinstance(subjects, list) or not subjects:
        raise AttestationError("the statement's subject is not a non-empty list")
    parsed: list[tuple[str, dict[str, str]]] = []
    for index, subject in enumerate(subjects):
        where = f"the statement's subject {index + 1}"
        if not isinstance(subject, dict):
            raise AttestationError(f"{where} is not an object")
        name, digest = subject.get("name", ""), subject.get("digest")
        if not isinstance(name, str):
            raise AttestationError(f"{where} has a name that is not a string")
        if (
            not isinstance(digest, dict)
            or not digest
            or not all(isinstance(v, str) for v in digest.values())
        ):
            raise AttestationError(f"{where} has no digest object of strings")
        parsed.append((name, {k: v.lower() for k, v in digest.items()}))
    predicate = document.get("predicate")
    if not isinstance(predicate, dict):
        raise AttestationError("the statement has no predicate object")
    verdict = predicate.get("verdict")
    if verdict not in VERDICTS:
        raise AttestationError(
            f"the predicate's verdict is {_show(verdict)}, not one of {', '.join(VERDICTS)}"
        )
    counts = predicate.get("counts")
    if not isinstance(counts, dict):
        raise AttestationError("the predicate has no counts object")
    for severity in SEVERITIES:
        value = counts.get(severity)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise AttestationError(
                f"the predicate's counts.{severity} is {_show(value)}, not a count"
            )
    finished = _timestamp(predicate.get("finished_at"), "the predicate's finished_at")
    return Statement(tuple(parsed), str(verdict), {s: int(counts[s]) for s in SEVERITIES}, finished)


def _timestamp(value: object, what: str) -> datetime:
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise AttestationError(f"{what} is {_show(value)}, not an RFC 3339 time")
    text = value.upper().replace(" ", "T").replace("Z", "+00:00")
    fraction = re.search(r"\.(\d+)", text)
    if fraction:  # Python parses at most microseconds
        text = text.replace(fraction.group(0), "." + fraction.group(1)[:6].ljust(6, "0"))
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise AttestationError(f"{what} is {_show(value)}, not a valid time") from None


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _signature(envelope: Envelope, key_path: Path | None) -> tuple[bool, str]:
    if key_path is None:
        return True, "signature: not checked (no --key)"
    if not envelope.signed:
        raise AttestationError(
            f"the file is a bare statement, but --key {key_path} requires a signed envelope",
            hint="give the DSSE envelope or Sigstore bundle signing made, not the statement",
        )
    if not envelope.signatures:
        raise AttestationError(f"the {envelope.shape} has no signatures, but --key is given")
    key = load_key(_read(key_path, "the public key"), key_path)
    message = pae(envelope.payload_type, envelope.payload)
    for signature in envelope.signatures:
        if _verifies(key, signature.sig, message):
            keyid = f" (keyid {signature.keyid!r})" if signature.keyid else ""
            return True, f"signature: ok, signed by {key_path}{keyid}"
    count = len(envelope.signatures)
    return False, f"signature: none of the {count} signature(s) verifies with {key_path}"


def load_key(data: bytes, path: Path) -> EllipticCurvePublicKey | Ed25519PublicKey:
    """Load a PEM public key that is ECDSA P-256 or Ed25519; raise `UsageError` otherwise."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, EllipticCurvePublicKey
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise UsageError(
            f"--key {path} is not a PEM public key: {exc}",
            hint="give the public half (-----BEGIN PUBLIC KEY-----) of the signing key",
        ) from None
    if isinstance(key, Ed25519PublicKey):
        return key
    if isinstance(key, EllipticCurvePublicKey) and isinstance(key.curve, SECP256R1):
        return key
    raise UsageError(f"--key {path} is a {type(key).__name__}, not an ECDSA P-256 or Ed25519 key")


def _verifies(key: EllipticCurvePublicKey | Ed25519PublicKey, sig: bytes, message: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ec import ECDSA
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    from cryptography.hazmat.primitives.hashes import SHA256

    candidates = [sig]
    if not isinstance(key, Ed25519PublicKey) and len(sig) == 64:  # raw r||s (IEEE P1363)
        r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
        candidates.insert(0, encode_dss_signature(r, s))
    for candidate in candidates:
        try:
            if isinstance(key, Ed25519PublicKey):
                key.verify(candidate, message)
            else:
                key.verify(candidate, message, ECDSA(SHA256()))
        except (InvalidSignature, ValueError):
            continue
        return True
    return False


def _subject(statement: Statement, wanted: SubjectArg | None) -> tuple[bool, str]:
    if wanted is None:
        return True, "subject: not checked (no --subject)"
    for name, digest in statement.subjects:
        if digest.get(wanted.algorithm) == wanted.value and (
            not wanted.name or name == wanted.name
        ):
            return True, f"subject: ok, {wanted}"
    seen = ", ".join(
        f"{name}@{alg}:{value}"
        for name, digest in statement.subjects
        for alg, value in digest.items()
    )
    return False, f"subject: the statement is for {_clip(seen)}, not {wanted}"


def _clip(text: str) -> str:
    return text if len(text) <= 300 else text[:297] + "..."


def _verdict(statement: Statement, limits: dict[str, int]) -> tuple[bool, str]:
    counts = ", ".join(f"{statement.counts[s]} {s}" for s in SEVERITIES)
    if statement.verdict == "incomplete":  # an incomplete scan counted nothing reliably
        return False, f"verdict: the scan was incomplete ({counts})"
    if not limits:
        if statement.verdict == "passed":
            return True, f"verdict: ok, passed ({counts})"
        return False, f"verdict: {statement.verdict} ({counts})"
    over = [
        f"{statement.counts[s]} {s} > --max-{s} {n}"
        for s, n in limits.items()
        if statement.counts[s] > n
    ]
    if over:
        return False, f"verdict: over the limits: {', '.join(over)}"
    return True, f"verdict: ok, within the limits ({counts})"


def _age(statement: Statement, max_age: timedelta | None, now: datetime) -> tuple[bool, str]:
    age = now - statement.finished_at  # always aware: _RFC3339 requires the offset
    if age < -CLOCK_SKEW:
        return (
            False,
            f"age: the verdict was made in the future ({statement.finished_at.isoformat()})",
        )
    if max_age is None:
        return True, f"age: not checked (no --max-age; made {_duration(age)} ago)"
    if age > max_age:
        return (
            False,
            f"age: the verdict is {_duration(age)} old, older than --max-age {_duration(max_age)}",
        )
    return True, f"age: ok, {_duration(age)} old"


def _duration(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{days}d"] if days else []
    parts += [f"{hours}h"] if hours else []
    parts += [f"{minutes}m"] if minutes and not days else []
    parts += [f"{seconds}s"] if not parts else []
    return " ".join(parts)
