"""Reading a policy file: finding it, parsing it, and building the settings it yields."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

from scangate.errors import PolicyError
from scangate.model import Severity
from scangate.model.settings import (
    ALL_FORMATS,
    ExpectSettings,
    Floor,
    GateSettings,
    IfRunning,
    IgnoreRule,
    KeyPath,
    OnTimeout,
    Policy,
    ProviderSettings,
    ReportSettings,
    ScanSettings,
)
from scangate.policy.chain import read_chain
from scangate.policy.checks import (
    located_problems,
    parse_duration,
    parse_threshold,
    parse_wait,
    policy_problems,
)
from scangate.policy.composer import Document, compose
from scangate.policy.inheritance import (
    Layer,
    Merged,
    ignore_problems,
    loosening_problem,
    loosenings,
)
from scangate.policy.problems import InvalidPolicyError, PolicyProblem

POLICY_VERSION = 1
"""The only `version:` this scangate reads."""

DEFAULT_POLICY_FILE = ".scangate.yml"
"""Looked up in the working directory when neither `--policy` nor `SCANGATE_POLICY` is given."""

POLICY_ENV = "SCANGATE_POLICY"
"""The environment variable naming the policy file."""

MAX_POLICY_BYTES = 1024 * 1024
"""A policy file larger than this is refused (it is surely not a policy)."""


def _severity(value: object, default: Severity) -> Severity:
    return Severity.parse(value) if isinstance(value, str) else default


def _threshold(value: object, default: Severity | None) -> Severity | None:
    return parse_threshold(value) if isinstance(value, str) else default


def _relative_to(base: Path, value: object) -> Path | None:
    return base / value if isinstance(value, str) else None


def _provider(raw: dict[str, Any], base: Path) -> ProviderSettings:
    verify = raw.get("verify_tls", True)
    return ProviderSettings(
        name=raw["name"],
        base_url=raw.get("base_url"),
        options=raw.get("options", {}),
        unrated_severity=_severity(raw.get("unrated_severity"), Severity.HIGH),
        verify_tls=str(base / verify) if isinstance(verify, str) else bool(verify),
    )


def _scan(raw: dict[str, Any], target: str) -> ScanSettings:
    timeout = raw.get("timeout")
    return ScanSettings(
        target=target.strip(),
        timeout=parse_duration(timeout) if timeout is not None else ScanSettings.timeout,
        if_running=IfRunning(raw.get("if_running", IfRunning.WAIT.value)),
        on_timeout=OnTimeout(raw.get("on_timeout", OnTimeout.CANCEL.value)),
        expect=_expect(raw.get("expect")),
    )


def _expect(raw: object) -> ExpectSettings | None:
    if not isinstance(raw, dict):
        return None
    wait = raw.get("wait")
    return ExpectSettings(
        url=raw["url"].strip(),
        contains=raw["contains"],
        wait=parse_wait(wait) if wait is not None else 0.0,
    )


def _gate(raw: dict[str, Any]) -> GateSettings:
    budgets = raw.get("max", {})
    return GateSettings(
        fail_on=_threshold(raw.get("fail_on"), Severity.HIGH),
        max={Severity.parse(name): int(count) for name, count in budgets.items()},
        warn_on=_threshold(raw.get("warn_on"), None),
        new_only=raw.get("new_only", False),
        fail_on_incomplete=raw.get("fail_on_incomplete", True),
        enforce_from=_date(raw.get("enforce_from")),
        warn_before=raw.get("warn_before", GateSettings.warn_before),
    )


def _cwe(value: object) -> int | None:
    if value is None:
        return None
    return int(str(value).upper().removeprefix("CWE-"))


def _date(value: object) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else None


def _ignore(index: int, raw: dict[str, Any], merged: Merged, extended: bool) -> IgnoreRule:
    source, source_index = merged.ignore_sources[index] if extended else (None, None)
    return IgnoreRule(
        source=source,
        source_index=source_index,
        index=index,
        reason=raw["reason"].strip(),
        rule=raw.get("rule"),
        title=raw.get("title"),
        cve=raw.get("cve"),
        cwe=_cwe(raw.get("cwe")),
        url=raw.get("url"),
        param=raw.get("param"),
        fingerprint=raw.get("fingerprint"),
        expires=_date(raw.get("expires")),
    )


def _reports(raw: dict[str, Any], base: Path) -> ReportSettings:
    chosen = raw.get("formats", ALL_FORMATS)
    directory = _relative_to(base, raw.get("dir"))
    return ReportSettings(
        dir=directory or ReportSettings.dir,
        formats=tuple(f for f in ALL_FORMATS if f in chosen),
        sarif_anchor=raw.get("sarif_anchor"),
        # The schema's enum admitted only a version scangate writes; absent is None, chosen
        # at report time from the GitLab instance (`formats.gitlab_dast.choose_schema_version`).
        gitlab_schema_version=raw.get("gitlab_schema_version"),
        comment=raw.get("comment", False),
    )


def _target_text(document: Document) -> str:
    """`scan.target` as written: a VAddy project_id like `0123` must not become the number 83."""
    target = document.data["scan"]["target"]
    return target if isinstance(target, str) else document.texts[("scan", "target")]


def _policy(document: Document, source: Path, merged: Merged, extended: bool = False) -> Policy:
    """Build the settings from a (merged) document that has no problems."""
    data: dict[str, Any] = document.data

    def directory(key: KeyPath) -> Path:
        # Relative paths are relative to the file that wrote them (a base's baseline is the
        # base's), not to the policy being loaded.
        return merged.dirs.get(key, source.parent)

    entries = data.get("ignore", [])
    return Policy(
        provider=_provider(data["provider"], directory(("provider", "verify_tls"))),
        scan=_scan(data["scan"], _target_text(document)),
        gate=_gate(data.get("gate", {})),
        ignore=tuple(_ignore(i, entry, merged, extended) for i, entry in enumerate(entries)),
        baseline=_relative_to(directory(("baseline",)), data.get("baseline")),
        reports=_reports(data.get("reports", {}), directory(("reports", "dir"))),
        source=source,
        source_map=document.source_map,
        allow_ignores=data.get("allow_ignores", True),
        require_ignore_expiry=data.get("require_ignore_expiry", False),
        origins=merged.origins,
    )


def _floor(merged: Merged) -> Floor:
    """What the files merged so far settle, defaults included (they are checked fragments)."""
    data = merged.data
    provider, scan = data.get("provider", {}), data.get("scan", {})
    reports = data.get("reports", {})
    verify = provider.get("verify_tls", True)
    if isinstance(verify, str):
        verify = str(merged.dirs[("provider", "verify_tls")] / verify)
    timeout = scan.get("timeout")
    baseline = data.get("baseline")
    return Floor(
        files=merged.files[::-1],
        gate=_gate(data.get("gate", {})),
        timeout=parse_duration(timeout) if timeout is not None else ScanSettings.timeout,
        formats=tuple(f for f in ALL_FORMATS if f in reports.get("formats", ALL_FORMATS)),
        comment=reports.get("comment", False),
        verify_tls=verify,
        unrated_severity=_severity(provider.get("unrated_severity"), Severity.HIGH),
        baseline=merged.dirs[("baseline",)] / baseline if isinstance(baseline, str) else None,
        expect=scan.get("expect"),
        allow_ignores=data.get("allow_ignores", True),
        require_ignore_expiry=data.get("require_ignore_expiry", False),
        origins=dict(merged.origins),
    )


def _extended(child: Layer) -> Policy:
    """The policy `child` makes over the bases it extends: merged, each link tightening only."""
    layers = read_chain(child.path, child.document, _read_text)[::-1]
    merged = Merged.of(layers[0])
    problems: list[PolicyProblem] = []
    floor = _floor(merged)
    for layer in layers[1:]:
        floor = _floor(merged)
        problems += ignore_problems(floor, layer)
        merged = merged.over(layer)
        for loose in loosenings(floor, _floor(merged)):
            origin = merged.origins.get(loose.key)
            line = origin.line if origin is not None else 1
            problems.append(loosening_problem(loose, floor, layer.shown, line))
    document = merged.document()
    problems += [merged.locate(path, found, child) for path, found in located_problems(document)]
    if problems:
        raise InvalidPolicyError(child.shown, problems)
    policy = _policy(document, child.path, merged, extended=True)
    return replace(policy, bases=tuple(layer.path for layer in layers[-2::-1]), floor=floor)


def parse_policy(text: str, source: Path) -> Policy:
    """Parse and validate the policy `text` read from `source`; raise `PolicyError` if invalid.

    Relative paths in the policy are resolved against `source`'s directory (those in a base
    it `extends:` against the base's).
    """
    document = compose(text, source)
    layer = Layer(source, document, source)
    if isinstance(document.data, dict) and "extends" in document.data:
        return _extended(layer)
    problems = policy_problems(document)
    if problems:
        raise InvalidPolicyError(source, problems)
    return _policy(document, source, Merged.of(layer))


def _read_text(path: Path) -> str:
    """The text of the policy file at `path`: at most `MAX_POLICY_BYTES`, UTF-8."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_POLICY_BYTES + 1)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise PolicyError(f"{path}: cannot read the policy file: {reason}") from None
    if len(raw) > MAX_POLICY_BYTES:
        raise PolicyError(f"{path}: the policy file is larger than {MAX_POLICY_BYTES} bytes")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise PolicyError(f"{path}: the policy file is not UTF-8 (byte {error.start})") from None


def load_policy(path: Path) -> Policy:
    """Read, parse and validate the policy file at `path` (and the bases it extends)."""
    return parse_policy(_read_text(path), path)


def find_policy(explicit: str | None, env: Mapping[str, str], cwd: Path) -> Path:
    """The policy file to use: `--policy` > `SCANGATE_POLICY` > `./.scangate.yml`.

    Relative names are taken from `cwd`; pass `Path()` to get paths as the user wrote them
    (`ci/scan.yml`), which read best in error messages. Raises `PolicyError` when the chosen
    file does not exist, naming where the name came from.
    """
    candidates = ((explicit, "--policy"), (env.get(POLICY_ENV), POLICY_ENV))
    for name, origin in candidates:
        if name:
            path = cwd / name
            if not path.is_file():
                what = "is not a file" if path.exists() else "does not exist"
                raise PolicyError(f"policy file {path} (from {origin}) {what}")
            return path
    path = cwd / DEFAULT_POLICY_FILE
    if not path.is_file():
        raise PolicyError(
            f"no policy file: {path} does not exist",
            hint=f"write {DEFAULT_POLICY_FILE}, or pass --policy FILE or set {POLICY_ENV}",
        )
    return path
