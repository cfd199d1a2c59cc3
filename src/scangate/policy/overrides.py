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
    GateSettings,
    IgnoreRule,
    KeyPath,
    Policy,
    ProviderSettings,
    ReportSettings,
    ScanSettings,
)
from scangate.policy.checks import parse_duration, parse_threshold
from scangate.policy.loading import POLICY_VERSION
from scangate.policy.problems import InvalidPolicyError
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
        raise InvalidPolicyError(policy.source or "policy", [problem for _, problem in found])


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
) -> Policy:
    """Apply flag / `SCANGATE_*` values over the policy (None: not given, keep the policy's).

    The caller resolves flag over variable; paths stay relative to the working directory.
    `timeout` is a duration (`30m`, seconds) and `fail_on` a threshold name (`high`, `none`).
    Raises `UsageError` for a bad value.
    """
    try:
        scan = _scan_overrides(policy.scan, target, timeout)
        gate = _gate_overrides(policy.gate, fail_on, new_only)
        reports = _report_overrides(policy.reports, out_dir, formats)
    except ValueError as error:
        raise UsageError(str(error)) from None
    provider = policy.provider if base_url is None else replace(policy.provider, base_url=base_url)
    return replace(
        policy,
        provider=provider,
        scan=scan,
        gate=gate,
        reports=reports,
        baseline=policy.baseline if baseline is None else baseline,
    )


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
    }


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
    return {"index": rule.index, **keys, "reason": rule.reason, "expires": expires}
