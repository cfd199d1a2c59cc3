"""After loading: provider options checked against the adapter's schema, flag and variable
overrides, and the effective settings `scangate validate` prints."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema

from scangate.errors import UsageError
from scangate.expect import resolve_url, variables
from scangate.model.settings import (
    ALL_FORMATS,
    MATCH_KEYS,
    Floor,
    GateSettings,
    IgnoreRule,
    KeyPath,
    Origin,
    Policy,
    ProviderSettings,
    ReportSettings,
    ScanSettings,
)
from scangate.policy.checks import parse_duration, parse_threshold
from scangate.policy.inheritance import base_origin, loosenings
from scangate.policy.loading import POLICY_VERSION
from scangate.policy.problems import InvalidPolicyError, PolicyProblem, format_key_path
from scangate.policy.schema import schema_problems


def check_options(policy: Policy, schema: Mapping[str, Any]) -> None:
    """Validate `provider.options` against a provider's options JSON Schema (draft 2020-12).

    Problems name `provider.options...` key paths and the policy's lines, as `load_policy` does.
    """
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    base: KeyPath = ("provider", "options")
    found = schema_problems(validator, dict(policy.provider.options), policy.source_map, base)
    if found:
        raise InvalidPolicyError(policy.source or "policy", [_in_file(policy, *f) for f in found])


def _in_file(policy: Policy, path: KeyPath, problem: PolicyProblem) -> PolicyProblem:
    """`problem` named in the file that wrote `path` (a base may set provider options)."""
    for end in range(len(path), 0, -1):
        origin = policy.origins.get(path[:end])
        if origin is not None and origin.file is not None and policy.bases:
            return replace(problem, source=str(origin.file))
    return problem


def with_overrides(
    policy: Policy,
    *,
    out_dir: Path | None = None,
    formats: Sequence[str] | None = None,
    target: str | None = None,
    timeout: str | float | None = None,
    base_url: str | None = None,
    baseline: Path | None = None,
    fail_on: str | None = None,
    new_only: bool | None = None,
    comment: bool | None = None,
    given_by: Mapping[str, str] | None = None,
) -> Policy:
    """Apply flag / `SCANGATE_*` values over the policy (None: not given, keep the policy's).

    The caller resolves flag over variable; paths stay relative to the working directory.
    `timeout` is a duration (`30m`, seconds) and `fail_on` a threshold name (`high`, `none`).
    `given_by` names where each given value came from (`{"fail_on": "SCANGATE_FAIL_ON"}`;
    default: its flag, `--fail-on`), for `scangate validate` and for errors.
    Over a policy that `extends:` a base, a value may only tighten what the base settles, as a
    file extending it may (else `--fail-on none` would undo the organisation's policy).
    Raises `UsageError` for a bad value or a loosening.
    """
    try:
        scan = _scan_overrides(policy.scan, target, timeout)
        gate = _gate_overrides(policy.gate, fail_on, new_only)
        reports = _report_overrides(policy.reports, out_dir, formats)
        if comment is not None:
            reports = replace(reports, comment=comment)
    except ValueError as error:
        raise UsageError(str(error)) from None
    provider = policy.provider if base_url is None else replace(policy.provider, base_url=base_url)
    given = {
        "out_dir": out_dir,
        "formats": formats,
        "target": target,
        "timeout": timeout,
        "base_url": base_url,
        "baseline": baseline,
        "fail_on": fail_on,
        "new_only": new_only,
        "comment": comment,
    }
    options = {
        name: (given_by or {}).get(name, _FLAGS[name])
        for name, value in given.items()
        if value is not None
    }
    overridden = replace(
        policy,
        provider=provider,
        scan=scan,
        gate=gate,
        reports=reports,
        baseline=policy.baseline if baseline is None else baseline,
        origins={
            **policy.origins,
            **{_KEYS[name]: Origin(option=option) for name, option in options.items()},
        },
    )
    if policy.floor is not None:
        _check_tightens(overridden, policy.floor, options, given)
    return overridden


_FLAGS = {
    "out_dir": "--out-dir",
    "formats": "--format",
    "target": "--target",
    "timeout": "--timeout",
    "base_url": "--base-url",
    "baseline": "--baseline",
    "fail_on": "--fail-on",
    "new_only": "--new-only",
    "comment": "--comment",
}
"""Each override's flag, named when the caller does not say where a value came from."""

_KEYS: dict[str, KeyPath] = {
    "out_dir": ("reports", "dir"),
    "formats": ("reports", "formats"),
    "target": ("scan", "target"),
    "timeout": ("scan", "timeout"),
    "base_url": ("provider", "base_url"),
    "baseline": ("baseline",),
    "fail_on": ("gate", "fail_on"),
    "new_only": ("gate", "new_only"),
    "comment": ("reports", "comment"),
}
"""The policy key each override sets."""


def _check_tightens(
    policy: Policy, floor: Floor, options: Mapping[str, str], given: Mapping[str, object]
) -> None:
    """Refuse overrides that loosen what `floor` (the base chain) settles, naming each."""
    view = replace(
        floor,
        gate=policy.gate,
        timeout=policy.scan.timeout,
        formats=policy.reports.formats,
        baseline=policy.baseline,
    )
    lines = []
    for loose in loosenings(floor, view):
        # The option that set the key, else every option given (a rule reading two keys:
        # `--new-only` over a baseline the base did not set).
        names = [n for n in options if _KEYS[n] == loose.key] or list(options)
        said = ", ".join(f"{options[n]} {_shown(given[n])}" for n in names)
        lines.append(
            f"{said}: {format_key_path(loose.key)} is {loose.base_value} "
            f"{base_origin(floor, loose.base_key)}, which {policy.source} extends; an option may "
            f"only tighten it ({loose.tighten}), not set {loose.value}"
        )
    if lines:
        raise UsageError(
            "\n".join(lines),
            hint="drop the option, or change the base policy in its repository",
        )


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def _scan_overrides(
    scan: ScanSettings, target: str | None, timeout: str | float | None
) -> ScanSettings:
    if target is not None and not target.strip():
        raise ValueError("the scan target must not be empty")
    return replace(
        scan,
        target=scan.target if target is None else target.strip(),
        timeout=scan.timeout if timeout is None else parse_duration(timeout),
    )


def _gate_overrides(gate: GateSettings, fail_on: str | None, new_only: bool | None) -> GateSettings:
    return replace(
        gate,
        fail_on=gate.fail_on if fail_on is None else parse_threshold(fail_on),
        new_only=gate.new_only if new_only is None else new_only,
    )


def _report_overrides(
    reports: ReportSettings, out_dir: Path | None, formats: Sequence[str] | None
) -> ReportSettings:
    if formats is not None:
        unknown = [f for f in formats if f not in ALL_FORMATS]
        if unknown:
            allowed = ", ".join(ALL_FORMATS)
            raise ValueError(f"unknown report format {unknown[0]!r} (expected one of {allowed})")
    return replace(
        reports,
        dir=reports.dir if out_dir is None else out_dir,
        formats=reports.formats
        if formats is None
        else tuple(f for f in ALL_FORMATS if f in formats),
    )


def effective_settings(policy: Policy) -> dict[str, Any]:
    """Every effective setting as JSON-able data, for `scangate validate` to print.

    `provider.base_url` is None when the provider's default applies (the provider knows it).
    """
    return {
        "source": str(policy.source) if policy.source else None,
        "extends": [str(path) for path in policy.bases],
        "version": POLICY_VERSION,
        "provider": _provider_settings(policy.provider),
        "scan": {
            "target": policy.scan.target,
            "timeout_seconds": policy.scan.timeout,
            "if_running": policy.scan.if_running.value,
            "on_timeout": policy.scan.on_timeout.value,
            "expect": _expect_settings(policy),
        },
        "gate": _gate_settings(policy.gate),
        "baseline": str(policy.baseline) if policy.baseline else None,
        "ignore": [_ignore_settings(rule) for rule in policy.ignore],
        "reports": {
            "dir": str(policy.reports.dir),
            "formats": list(policy.reports.formats),
            "sarif_anchor": policy.reports.sarif_anchor,
            # None: chosen from CI_SERVER_VERSION when the report is written (the policy does
            # not know which GitLab will ingest it).
            "gitlab_schema_version": policy.reports.gitlab_schema_version,
            "comment": policy.reports.comment,
        },
        "allow_ignores": policy.allow_ignores,
        "require_ignore_expiry": policy.require_ignore_expiry,
        "origins": origins(policy),
    }


_SETTINGS: tuple[KeyPath, ...] = (
    ("provider", "name"),
    ("provider", "base_url"),
    ("provider", "unrated_severity"),
    ("provider", "verify_tls"),
    ("scan", "target"),
    ("scan", "timeout"),
    ("scan", "if_running"),
    ("scan", "on_timeout"),
    ("scan", "expect"),
    ("gate", "fail_on"),
    ("gate", "warn_on"),
    ("gate", "new_only"),
    ("gate", "fail_on_incomplete"),
    ("gate", "enforce_from"),
    ("gate", "warn_before"),
    ("baseline",),
    ("reports", "dir"),
    ("reports", "formats"),
    ("reports", "sarif_anchor"),
    ("reports", "gitlab_schema_version"),
    ("reports", "comment"),
    ("allow_ignores",),
    ("require_ignore_expiry",),
)
"""The settings `origins` always lists; budgets, options and ignore entries are listed as set."""


def origins(policy: Policy) -> dict[str, str]:
    """Where each setting came from, by policy key path: `org/base.yml:4`, `--fail-on`,
    `SCANGATE_FAIL_ON`, or `default` (a built-in default)."""
    found = policy.origins
    keys = list(_SETTINGS)
    keys += [("gate", "max", severity.label) for severity in sorted(policy.gate.max, reverse=True)]
    keys += [("provider", "options", str(name)) for name in policy.provider.options]
    keys += [("ignore", rule.index) for rule in policy.ignore]
    return {format_key_path(key): str(found.get(key, Origin())) for key in keys}


def _expect_settings(policy: Policy) -> dict[str, Any] | None:
    """`scan.expect` as checked at run time: the resolved URL, the template as written (it is
    expanded from the job's environment only when a run starts) and the variables it reads."""
    expect = policy.scan.expect
    if expect is None:
        return None
    return {
        "url": resolve_url(expect.url, policy.scan.target),
        "contains": expect.contains,
        "variables": list(variables(expect.contains)),
        "wait_seconds": expect.wait,
    }


def _provider_settings(provider: ProviderSettings) -> dict[str, Any]:
    return {
        "name": provider.name,
        "base_url": provider.base_url,
        "options": json.loads(json.dumps(dict(provider.options), default=str)),
        "unrated_severity": provider.unrated_severity.label,
        "verify_tls": provider.verify_tls,
    }


def _gate_settings(gate: GateSettings) -> dict[str, Any]:
    budgets = sorted(gate.max.items(), reverse=True)
    return {
        "fail_on": gate.fail_on.label if gate.fail_on is not None else "none",
        "max": {severity.label: count for severity, count in budgets},
        "warn_on": gate.warn_on.label if gate.warn_on is not None else "none",
        "new_only": gate.new_only,
        "fail_on_incomplete": gate.fail_on_incomplete,
        "enforce_from": gate.enforce_from.isoformat() if gate.enforce_from else None,
        "warn_before_days": gate.warn_before,
    }


def _ignore_settings(rule: IgnoreRule) -> dict[str, Any]:
    keys = {key: getattr(rule, key) for key in MATCH_KEYS if getattr(rule, key) is not None}
    expires = rule.expires.isoformat() if rule.expires else None
    shown = {"index": rule.index, **keys, "reason": rule.reason, "expires": expires}
    if rule.source is not None:
        # `index` counts the merged list (as reports say `ignore[3]`); this is the file's own.
        shown["file"] = {"path": str(rule.source), "index": rule.source_index}
    return shown
