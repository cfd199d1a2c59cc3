"""`scangate verify` through the real CLI: signed, expiring verdicts bound to a subject."""

from __future__ import annotations

import base64
import copy
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.hashes import SHA256

from scangate.cli import main
from scangate.dsse import pae

DIGEST = "a" * 64
NAME = "ghcr.io/acme/shop"
SUBJECT = f"{NAME}@sha256:{DIGEST}"
PAYLOAD_TYPE = "application/vnd.in-toto+json"


def rfc3339(when: datetime) -> str:
    """UTC RFC 3339 with Z, as scangate writes `finished_at`."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_statement(
    *,
    verdict: str = "passed",
    counts: dict[str, int] | None = None,
    age: timedelta = timedelta(hours=1),
    subject: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A statement of the shared interface: scangate's dast-verdict/v1 predicate."""
    finished = datetime.now(UTC) - age
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": subject or [{"name": NAME, "digest": {"sha256": DIGEST}}],
        "predicateType": "https://github.com/scangate/scangate/attestation/dast-verdict/v1",
        "predicate": {
            "scanner": {"name": "scangate", "version": "0.1.0"},
            "verdict": verdict,
            "counts": counts or {"critical": 0, "high": 0, "medium": 2, "low": 3, "info": 7},
            "scans": [
                {
                    "provider": "zap",
                    "scanner": "ZAP",
                    "scanner_version": "2.15.0",
                    "scan_id": "scan-1",
                    "target": "https://staging.example.test/",
                    "status": "completed",
                    "started_at": rfc3339(finished - timedelta(minutes=20)),
                    "finished_at": rfc3339(finished - timedelta(minutes=1)),
                }
            ],
            "policy": {"path": "scangate.yml", "digest": {"sha256": "b" * 64}},
            "started_at": rfc3339(finished - timedelta(minutes=20)),
            "finished_at": rfc3339(finished),
        },
    }


@dataclass
class Signer:
    """A key pair generated in the test, signing DSSE PAEs as a real signer does."""

    kind: str
    sign: Callable[[bytes], bytes]
    public_pem: bytes


def ecdsa_signer(*, raw: bool = False) -> Signer:
    """ECDSA P-256 over SHA-256: a DER signature, or raw r||s (`raw`) as KMS/Web crypto give."""
    key = ec.generate_private_key(ec.SECP256R1())

    def sign(message: bytes) -> bytes:
        der = key.sign(message, ec.ECDSA(SHA256()))
        if not raw:
            return der
        r, s = decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    return Signer("ecdsa-raw" if raw else "ecdsa", sign, _pem(key.public_key()))


def ed25519_signer() -> Signer:
    """An Ed25519 key."""
    key = ed25519.Ed25519PrivateKey.generate()
    return Signer("ed25519", key.sign, _pem(key.public_key()))


def _pem(public: ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey) -> bytes:
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def envelope(statement: dict[str, Any] | bytes, signer: Signer | None) -> dict[str, Any]:
    """A DSSE envelope of `statement`, signed over the PAE by `signer` (no signature: None)."""
    payload = statement if isinstance(statement, bytes) else json.dumps(statement).encode()
    signatures = []
    if signer is not None:
        sig = signer.sign(pae(PAYLOAD_TYPE, payload))
        signatures.append({"keyid": signer.kind, "sig": base64.b64encode(sig).decode()})
    return {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode(),
        "signatures": signatures,
    }


def bundle(dsse: dict[str, Any]) -> dict[str, Any]:
    """A Sigstore bundle as actions/attest writes it (verification material is not checked)."""
    return {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"publicKey": {"hint": "test"}},
        "dsseEnvelope": dsse,
    }


@dataclass
class Outcome:
    """A finished `scangate verify` run."""

    status: int
    out: str
    err: str


@pytest.fixture
def verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Callable[..., Outcome]:
    """Run `scangate verify` through `cli.main` on a document (written to a file) and flags."""

    def run(document: object, *flags: str, key: Signer | None = None) -> Outcome:
        path = tmp_path / "statement.json"
        if isinstance(document, bytes):
            path.write_bytes(document)
        else:
            path.write_text(json.dumps(document))
        argv = ["verify", str(path), *flags]
        if key is not None:
            key_path = tmp_path / f"{key.kind}.pub"
            key_path.write_bytes(key.public_pem)
            argv += ["--key", str(key_path)]
        capsys.readouterr()
        status = main(argv)
        captured = capsys.readouterr()
        return Outcome(status, captured.out, captured.err)

    return run


GOOD = ("--subject", SUBJECT, "--max-age", "7d")


@pytest.mark.parametrize(
    "make_signer", [ecdsa_signer, ed25519_signer, lambda: ecdsa_signer(raw=True)]
)
@pytest.mark.parametrize("wrap", ["envelope", "bundle"])
def test_verify_passes_fresh_signed_passing_verdict(
    verify: Callable[..., Outcome], make_signer: Callable[[], Signer], wrap: str
) -> None:
    signer = make_signer()
    dsse = envelope(make_statement(), signer)
    outcome = verify(dsse if wrap == "envelope" else bundle(dsse), *GOOD, key=signer)
    assert outcome.status == 0, outcome
    assert "signature: ok" in outcome.out
    assert f"subject: ok, {SUBJECT}" in outcome.out
    assert "verdict: ok, passed" in outcome.out
    assert "age: ok, 1h old" in outcome.out
    assert outcome.out.endswith("verify: passed\n")


def test_bare_statement_without_key_says_signature_not_checked(
    verify: Callable[..., Outcome],
) -> None:
    outcome = verify(make_statement(), *GOOD)
    assert outcome.status == 0, outcome
    assert "signature: not checked (no --key)" in outcome.out


def test_git_commit_subject_matches_by_digest_only(verify: Callable[..., Outcome]) -> None:
    sha = "0123456789abcdef0123456789abcdef01234567"
    subject = [{"name": "https://github.com/acme/shop", "digest": {"gitCommit": sha}}]
    assert verify(make_statement(subject=subject), "--subject", f"@gitCommit:{sha}").status == 0
    wrong = verify(make_statement(subject=subject), "--subject", f"@gitCommit:{'1' * 40}")
    assert wrong.status == 1


def failed_lines(outcome: Outcome) -> list[str]:
    """The check lines of a refusal that are not `ok` or `not checked`."""
    return [
        line
        for line in outcome.out.splitlines()
        if ": ok" not in line and "not checked" not in line
    ]


def test_refuses_wrong_subject(verify: Callable[..., Outcome]) -> None:
    signer = ed25519_signer()
    other = f"{NAME}@sha256:{'c' * 64}"
    outcome = verify(envelope(make_statement(), signer), "--subject", other, key=signer)
    assert outcome.status == 1
    assert failed_lines(outcome) == [
        f"subject: the statement is for {NAME}@sha256:{DIGEST}, not {other}"
    ]
    # The same digest under another name is another artifact.
    renamed = verify(make_statement(), "--subject", f"ghcr.io/evil/shop@sha256:{DIGEST}")
    assert renamed.status == 1


@pytest.mark.parametrize("verdict", ["failed", "incomplete"])
def test_refuses_a_verdict_that_did_not_pass(verify: Callable[..., Outcome], verdict: str) -> None:
    signer = ecdsa_signer()
    outcome = verify(envelope(make_statement(verdict=verdict), signer), *GOOD, key=signer)
    assert outcome.status == 1
    [line] = failed_lines(outcome)
    assert line.startswith("verdict: ")
    assert "passed" not in outcome.out


def test_per_severity_limits_replace_the_verdict(verify: Callable[..., Outcome]) -> None:
    counts = {"critical": 0, "high": 2, "medium": 5, "low": 0, "info": 0}
    failed = make_statement(verdict="failed", counts=counts)
    assert verify(failed, *GOOD, "--max-critical", "0", "--max-high", "2").status == 0
    outcome = verify(failed, *GOOD, "--max-high", "1", "--max-medium", "4")
    assert outcome.status == 1
    assert failed_lines(outcome) == [
        "verdict: over the limits: 2 high > --max-high 1, 5 medium > --max-medium 4"
    ]
    # No limit makes an incomplete scan pass: it counted nothing reliably.
    incomplete = make_statement(verdict="incomplete", counts=dict.fromkeys(counts, 0))
    assert verify(incomplete, *GOOD, "--max-critical", "5").status == 1


def test_refuses_expired_and_future_verdicts(verify: Callable[..., Outcome]) -> None:
    outcome = verify(make_statement(age=timedelta(days=8, hours=2)), *GOOD)
    assert outcome.status == 1
    assert failed_lines(outcome) == ["age: the verdict is 8d 2h old, older than --max-age 7d"]
    assert (
        verify(make_statement(age=timedelta(minutes=90)), *GOOD[:2], "--max-age", "1h").status == 1
    )
    future = verify(make_statement(age=-timedelta(days=1)), *GOOD)
    assert future.status == 1
    assert failed_lines(future)[0].startswith("age: the verdict was made in the future")


def test_every_failed_check_has_its_line(verify: Callable[..., Outcome]) -> None:
    signer, other = ecdsa_signer(), ed25519_signer()
    statement = make_statement(verdict="failed", age=timedelta(days=30))
    outcome = verify(
        envelope(statement, other),
        "--subject",
        f"x@sha256:{'d' * 64}",
        "--max-age",
        "7d",
        key=signer,
    )
    assert outcome.status == 1
    assert [line.split(":")[0] for line in failed_lines(outcome)] == [
        "signature",
        "subject",
        "verdict",
        "age",
    ]


@pytest.mark.parametrize("make_signer", [ecdsa_signer, ed25519_signer])
def test_refuses_signature_by_another_key(
    verify: Callable[..., Outcome], make_signer: Callable[[], Signer]
) -> None:
    signed_by, trusted = make_signer(), make_signer()
    outcome = verify(envelope(make_statement(), signed_by), *GOOD, key=trusted)
    assert outcome.status == 1
    [line] = failed_lines(outcome)
    assert line.startswith("signature: none of the 1 signature(s) verifies with ")


def test_refuses_predicate_tampered_after_signing(verify: Callable[..., Outcome]) -> None:
    signer = ecdsa_signer()
    signed = envelope(make_statement(verdict="failed"), signer)
    tampered = make_statement(verdict="passed")
    tampered["predicate"]["finished_at"] = json.loads(base64.b64decode(signed["payload"]))[
        "predicate"
    ]["finished_at"]
    forged = dict(signed, payload=base64.b64encode(json.dumps(tampered).encode()).decode())
    outcome = verify(forged, *GOOD, key=signer)
    assert outcome.status == 1
    assert [line.split(":")[0] for line in failed_lines(outcome)] == ["signature"]
    # The payloadType is signed too (PAE): changing it is refused before any check.
    retyped = dict(signed, payloadType="application/json")
    assert verify(retyped, *GOOD, key=signer).status == 2


def test_unsigned_input_is_refused_when_a_key_is_given(verify: Callable[..., Outcome]) -> None:
    signer = ed25519_signer()
    bare = verify(make_statement(), *GOOD, key=signer)
    assert bare.status == 2
    assert "bare statement" in bare.err
    empty = verify(bundle(envelope(make_statement(), None)), *GOOD, key=signer)
    assert empty.status == 2
    assert "has no signatures" in empty.err
    assert "verify: passed" not in bare.out + empty.out


@pytest.mark.parametrize(
    ("document", "diagnosis"),
    [
        (b"", "is not JSON"),
        (b"\xff\xfe garbage", "not UTF-8"),
        (b"[1, 2]", "holds a list"),
        (b'{"hello": "world"}', "not an in-toto statement"),
        (b'{"payloadType": "application/vnd.in-toto+json", "payload": "%%%"}', "not valid base64"),
        (b'{"_type": "https://in-toto.io/Statement/v0.1"}', "_type is"),
        (b'{"_type": "a", "_type": "https://in-toto.io/Statement/v1"}', "twice"),
        (b'{"_type": NaN}', "NaN"),
        (b"[" * 100_000, "nests JSON too deeply"),
        (b"1" * 5000, "a number scangate cannot read"),
        (b'{"_type": "https://in-toto.io/Statement/v1", "n": ' + b"9" * 5000 + b"}", "number"),
    ],
)
def test_garbage_input_is_exit_2_with_a_diagnosis(
    verify: Callable[..., Outcome], document: bytes, diagnosis: str
) -> None:
    outcome = verify(document, *GOOD)
    assert outcome.status == 2
    assert diagnosis in outcome.err
    assert "verify: passed" not in outcome.out


@pytest.mark.parametrize(
    ("change", "diagnosis"),
    [
        (
            lambda s: s.update(predicateType="https://in-toto.io/attestation/test-result/v0.1"),
            "predicateType",
        ),
        (lambda s: s.update(subject=[]), "subject is not a non-empty list"),
        (lambda s: s["predicate"].update(verdict="PASSED"), "verdict is 'PASSED'"),
        (lambda s: s["predicate"]["counts"].update(critical=-1), "counts.critical"),
        (lambda s: s["predicate"]["counts"].update(high=True), "counts.high"),
        (lambda s: s["predicate"]["counts"].pop("info"), "counts.info"),
        (lambda s: s["predicate"].update(finished_at="yesterday"), "finished_at"),
        (lambda s: s["predicate"].update(finished_at="2026-13-45T99:00:00Z"), "not a valid time"),
    ],
)
def test_malformed_statement_is_exit_2(
    verify: Callable[..., Outcome], change: Callable[[dict[str, Any]], object], diagnosis: str
) -> None:
    statement = copy.deepcopy(make_statement())
    change(statement)
    signer = ecdsa_signer()
    for document, key in ((statement, None), (envelope(statement, signer), signer)):
        outcome = verify(document, *GOOD, key=key)
        assert outcome.status == 2, outcome
        assert diagnosis in outcome.err


def test_unusable_key_and_flags_are_usage_errors(
    verify: Callable[..., Outcome], tmp_path: Path
) -> None:
    signer = ecdsa_signer()
    signed = envelope(make_statement(), signer)
    not_pem = tmp_path / "key.pem"
    not_pem.write_text("not a key")
    outcome = verify(signed, *GOOD, "--key", str(not_pem))
    assert outcome.status == 2
    assert "is not a PEM public key" in outcome.err
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    not_pem.write_bytes(_pem(p384))
    assert verify(signed, *GOOD, "--key", str(not_pem)).status == 2
    assert verify(signed, *GOOD, "--key", str(tmp_path / "missing.pem")).status == 2
    with pytest.raises(SystemExit) as exited:
        verify(signed, "--subject", "no-digest", "--max-age", "7d")
    assert exited.value.code == 2
    with pytest.raises(SystemExit) as exited:
        verify(signed, *GOOD[:2], "--max-age", "7 weeks")
    assert exited.value.code == 2


def test_the_installed_command_exits_with_the_gate_status(tmp_path: Path) -> None:
    """`python -m scangate verify` in a child process: the exit status a deploy job sees."""
    signer = ed25519_signer()
    key = tmp_path / "key.pub"
    key.write_bytes(signer.public_pem)
    good, stale = tmp_path / "good.json", tmp_path / "stale.json"
    good.write_text(json.dumps(bundle(envelope(make_statement(), signer))))
    stale.write_text(json.dumps(bundle(envelope(make_statement(age=timedelta(days=9)), signer))))

    def status(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "scangate", "verify", str(path), *GOOD, *extra]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)

    assert status(good, "--key", str(key)).returncode == 0
    refused = status(stale, "--key", str(key))
    assert refused.returncode == 1
    assert "age: the verdict is 9d old, older than --max-age 7d" in refused.stdout
    assert status(good).returncode == 0  # no --key: the signature is not checked, said so
    assert status(tmp_path / "absent.json").returncode == 2


def test_verify_reads_the_statement_a_run_writes(verify: Callable[..., Outcome]) -> None:
    """The writer (`scangate.attestation`) and this reader agree on the interface."""
    from conftest import make_report
    from jsonschema import Draft202012Validator

    from scangate.attestation import parse_subject, statement, statement_schema, statement_text

    subject = parse_subject(SUBJECT)
    now = datetime.now(UTC)
    written = statement(make_report(), [subject], Path("scangate.yml"), {"sha256": "e" * 64}, now)
    signer = ecdsa_signer()
    signed = envelope(statement_text(written).encode(), signer)
    outcome = verify(signed, *GOOD, key=signer)
    assert outcome.status == 0, outcome
    # The statements these tests make are valid against the published schema too.
    validator = Draft202012Validator(statement_schema())
    validator.validate(make_statement())
    validator.validate(written)
