"""Tests for the policy loader: good policies, every kind of bad one, and where errors point."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import jsonschema
import pytest
from conftest import make_finding

from scangate.errors import ExitStatus, PolicyError, UsageError
from scangate.model import Severity
from scangate.policy import (
    ALL_FORMATS,
    GITLAB_SCHEMA_VERSIONS,
    MATCH_KEYS,
    IfRunning,
    InvalidPolicyError,
    OnTimeout,
    check_options,
    effective_settings,
    find_policy,
    load_policy,
    parse_duration,
    parse_policy,
    policy_schema,
    with_overrides,
)
from scangate.providers import PROVIDER_NAMES

ASSETS = Path(__file__).parent / "assets" / "policies"
DESIGN_EXAMPLE = ASSETS / "design.yml"
"""The policy of design.md §2, verbatim."""

JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpM"
CSP_KEY = "csp_" + "0123456789abcdef" * 4
URL_PASSWORD = "s3cr3t-Pa55"
BEARER = "Bearer 9f8e7d6c5b4a39281706"


def _yaml(*lines: str) -> str:
    return "\n".join(lines) + "\n"


HEAD = ("version: 1", "provider:", "  name: cyberorigen")
"""Lines 1-3 of most cases."""
SCAN = ("scan:", "  target: https://staging.example.com")
"""Lines 4-5 of most cases."""
MINIMAL = _yaml(*HEAD, *SCAN)

BAD_POLICIES: list[tuple[str, str, str, int]] = [
    # (case id, policy text, key path named in the error ("" = the document), line)
    ("yaml-syntax", _yaml(*HEAD, "   bad: indent", *SCAN), "", 4),
    ("yaml-tab", _yaml("version: 1", "provider:", "\tname: cyberorigen"), "", 3),
    ("yaml-unclosed-flow", _yaml(*HEAD, "scan: [a", "gate: {}"), "", 5),
    ("yaml-two-documents", _yaml(*HEAD, *SCAN, "---", "version: 1"), "", 6),
    ("yaml-undefined-alias", _yaml(*HEAD, "scan:", "  target: *nowhere"), "", 5),
    ("yaml-unknown-tag", _yaml(*HEAD, "scan:", "  target: !Ref Target"), "", 5),
    ("yaml-merge-key", _yaml(*HEAD, "s: &s {target: x}", "scan:", "  <<: *s"), "", 6),
    ("empty-file", "", "", 1),
    ("only-comments", "# nothing here\n\n", "", 1),
    ("not-a-mapping", _yaml("- version: 1", "- provider: cyberorigen"), "", 1),
    ("scalar-document", "just some text\n", "", 1),
    ("unknown-top-level-key", _yaml(*HEAD, *SCAN, "colour: red"), "colour", 6),
    ("unknown-nested-key", _yaml(*HEAD, "scan:", "  targt: https://x.example"), "scan.targt", 5),
    (
        "unknown-ignore-key",
        _yaml(*HEAD, *SCAN, "ignore:", "  - rule: x", "    reson: y"),
        "ignore[0].reson",
        8,
    ),
    ("missing-version", _yaml(*HEAD[1:], *SCAN), "version", 1),
    ("wrong-version", _yaml("version: 2", *HEAD[1:], *SCAN), "version", 1),
    ("version-as-text", _yaml('version: "1"', *HEAD[1:], *SCAN), "version", 1),
    ("missing-provider", _yaml("version: 1", *SCAN), "provider", 1),
    (
        "missing-provider-name",
        _yaml("version: 1", "provider:", "  base_url: https://x.example/api", *SCAN),
        "provider.name",
        2,
    ),
    (
        "unknown-provider",
        _yaml("version: 1", "provider:", "  name: cyberorigin", *SCAN),
        "provider.name",
        3,
    ),
    ("provider-not-mapping", _yaml("version: 1", "provider: cyberorigen", *SCAN), "provider", 2),
    ("options-not-mapping", _yaml(*HEAD, "  options: [quick]", *SCAN), "provider.options", 4),
    (
        "base-url-not-http",
        _yaml(*HEAD, "  base_url: ftp://files.example.com", *SCAN),
        "provider.base_url",
        4,
    ),
    ("verify-tls-number", _yaml(*HEAD, "  verify_tls: 0", *SCAN), "provider.verify_tls", 4),
    (
        "verify-tls-quoted-bool",
        _yaml(*HEAD, '  verify_tls: "false"', *SCAN),
        "provider.verify_tls",
        4,
    ),
    (
        "unrated-severity-none",
        _yaml(*HEAD, "  unrated_severity: none", *SCAN),
        "provider.unrated_severity",
        4,
    ),
    ("missing-scan", _yaml(*HEAD), "scan", 1),
    ("missing-target", _yaml(*HEAD, "scan:", "  timeout: 60m"), "scan.target", 4),
    ("empty-target", _yaml(*HEAD, "scan:", '  target: ""'), "scan.target", 5),
    ("blank-target", _yaml(*HEAD, "scan:", '  target: "   "'), "scan.target", 5),
    ("target-no-value", _yaml(*HEAD, "scan:", "  target:", "  timeout: 60m"), "scan.target", 5),
    (
        "target-is-list",
        _yaml(*HEAD, "scan:", "  target:", "    - a.example", "    - b.example"),
        "scan.target",
        6,
    ),
    ("bad-duration", _yaml(*HEAD, *SCAN, "  timeout: 5 minutes"), "scan.timeout", 6),
    ("duration-unit", _yaml(*HEAD, *SCAN, "  timeout: 500ms"), "scan.timeout", 6),
    ("duration-below-1s", _yaml(*HEAD, *SCAN, "  timeout: 0.5s"), "scan.timeout", 6),
    ("duration-zero-seconds", _yaml(*HEAD, *SCAN, "  timeout: 0"), "scan.timeout", 6),
    ("duration-not-finite", _yaml(*HEAD, *SCAN, "  timeout: .inf"), "scan.timeout", 6),
    ("duration-bool", _yaml(*HEAD, *SCAN, "  timeout: yes"), "scan.timeout", 6),
    ("bad-if-running", _yaml(*HEAD, *SCAN, "  if_running: sometimes"), "scan.if_running", 6),
    (
        "expect-other-host",
        _yaml(*HEAD, *SCAN, "  expect:", "    url: https://prod.example.com/v", "    contains: x"),
        "scan.expect.url",
        7,
    ),
    (
        "expect-not-ci-variable",
        _yaml(*HEAD, *SCAN, "  expect:", "    url: /version", "    contains: ${HOME}"),
        "scan.expect.contains",
        8,
    ),
    (
        "expect-secret-variable",
        _yaml(*HEAD, *SCAN, "  expect:", "    url: /v", "    contains: ${GITHUB_TOKEN}"),
        "scan.expect.contains",
        8,
    ),
    (
        "expect-unclosed-reference",
        _yaml(*HEAD, *SCAN, "  expect:", "    url: /v", "    contains: ${GITHUB_SHA"),
        "scan.expect.contains",
        8,
    ),
    (
        "expect-bad-wait",
        _yaml(*HEAD, *SCAN, "  expect:", "    url: /v", "    contains: a", "    wait: 5 min"),
        "scan.expect.wait",
        9,
    ),
    (
        "expect-missing-contains",
        _yaml(*HEAD, *SCAN, "  expect:", "    url: /version"),
        "scan.expect.contains",
        6,
    ),
    (
        "expect-relative-without-base",
        _yaml(
            "version: 1",
            "provider:",
            "  name: vaddy",
            "scan:",
            "  target: vaddy-project-1",
            "  expect:",
            "    url: /version",
            "    contains: a",
        ),
        "scan.expect.url",
        7,
    ),
    ("bad-on-timeout", _yaml(*HEAD, *SCAN, "  on_timeout: abandon"), "scan.on_timeout", 6),
    ("gate-not-mapping", _yaml(*HEAD, *SCAN, "gate: high"), "gate", 6),
    ("unknown-severity", _yaml(*HEAD, *SCAN, "gate:", "  fail_on: hgih"), "gate.fail_on", 7),
    ("empty-severity", _yaml(*HEAD, *SCAN, "gate:", "  warn_on:"), "gate.warn_on", 7),
    ("severity-wrong-case", _yaml(*HEAD, *SCAN, "gate:", "  fail_on: High"), "gate.fail_on", 7),
    (
        "bad-max-key",
        _yaml(*HEAD, *SCAN, "gate:", "  max:", "    medium: 5", "    mediun: 3"),
        "gate.max.mediun",
        9,
    ),
    ("bad-max-negative", _yaml(*HEAD, *SCAN, "gate:", "  max: {medium: -1}"), "gate.max.medium", 7),
    ("bad-max-text", _yaml(*HEAD, *SCAN, "gate:", "  max:", "    low: lots"), "gate.max.low", 8),
    ("bad-max-bool", _yaml(*HEAD, *SCAN, "gate:", "  max:", "    low: yes"), "gate.max.low", 8),
    ("max-not-mapping", _yaml(*HEAD, *SCAN, "gate:", "  max: [medium]"), "gate.max", 7),
    (
        "new-only-not-bool",
        _yaml(*HEAD, *SCAN, "gate:", "  new_only: sometimes"),
        "gate.new_only",
        7,
    ),
    ("baseline-not-text", _yaml(*HEAD, *SCAN, "baseline: [a.json]"), "baseline", 6),
    ("ignore-not-list", _yaml(*HEAD, *SCAN, "ignore:", "  rule: x", "  reason: y"), "ignore", 7),
    (
        "ignore-entry-not-mapping",
        _yaml(*HEAD, *SCAN, "ignore:", "  - click_jacking"),
        "ignore[0]",
        7,
    ),
    (
        "ignore-without-reason",
        _yaml(*HEAD, *SCAN, "ignore:", "  - rule: x", "  - rule: y"),
        "ignore[1].reason",
        8,
    ),
    (
        "ignore-only-reason",
        _yaml(*HEAD, *SCAN, "ignore:", "  - rule: x", "    reason: a", "  - reason: b"),
        "ignore[1]",
        9,
    ),
    (
        "ignore-blank-reason",
        _yaml(*HEAD, *SCAN, "ignore:", "  - rule: x", '    reason: "  "'),
        "ignore[0].reason",
        8,
    ),
    (
        "ignore-empty-rule",
        _yaml(*HEAD, *SCAN, "ignore:", '  - rule: ""', "    reason: r"),
        "ignore[0].rule",
        7,
    ),
    (
        "bad-date",
        _yaml(*HEAD, *SCAN, "ignore:", "  - rule: x", "    reason: r", "    expires: 2027-13-01"),
        "ignore[0].expires",
        9,
    ),
    (
        "non-iso-date",
        _yaml(*HEAD, *SCAN, "ignore:", "  - rule: x", "    reason: r", "    expires: 2027-3-1"),
        "ignore[0].expires",
        9,
    ),
    (
        "date-with-time",
        _yaml(
            *HEAD,
            *SCAN,
            "ignore:",
            "  - rule: x",
            "    reason: r",
            "    expires: 2027-03-01 10:00:00",
        ),
        "ignore[0].expires",
        9,
    ),
    (
        "date-as-words",
        _yaml(*HEAD, *SCAN, "ignore:", "  - rule: x", "    reason: r", "    expires: next year"),
        "ignore[0].expires",
        9,
    ),
    (
        "bad-cve",
        _yaml(*HEAD, *SCAN, "ignore:", "  - cve: 2024-1234", "    reason: r"),
        "ignore[0].cve",
        7,
    ),
    (
        "bad-cwe",
        _yaml(*HEAD, *SCAN, "ignore:", "  - cwe: XSS", "    reason: r"),
        "ignore[0].cwe",
        7,
    ),
    ("cwe-zero", _yaml(*HEAD, *SCAN, "ignore:", "  - cwe: 0", "    reason: r"), "ignore[0].cwe", 7),
    ("reports-not-mapping", _yaml(*HEAD, *SCAN, "reports: out"), "reports", 6),
    (
        "unknown-format",
        _yaml(*HEAD, *SCAN, "reports:", "  formats: [sarif, pdf]"),
        "reports.formats[1]",
        7,
    ),
    (
        "duplicate-format",
        _yaml(*HEAD, *SCAN, "reports:", "  formats:", "    - json", "    - json"),
        "reports.formats[1]",
        9,
    ),
    ("empty-report-dir", _yaml(*HEAD, *SCAN, "reports:", '  dir: ""'), "reports.dir", 7),
    (
        "absolute-sarif-anchor",
        _yaml(*HEAD, *SCAN, "reports:", "  sarif_anchor: /etc/openapi.yaml"),
        "reports.sarif_anchor",
        7,
    ),
    (
        "escaping-sarif-anchor",
        _yaml(*HEAD, *SCAN, "reports:", "  sarif_anchor: docs/../../openapi.yaml"),
        "reports.sarif_anchor",
        7,
    ),
    (
        "backslash-sarif-anchor",
        _yaml(*HEAD, *SCAN, "reports:", "  sarif_anchor: docs\\openapi.yaml"),
        "reports.sarif_anchor",
        7,
    ),
    (
        "unknown-gitlab-schema-version",
        _yaml(*HEAD, *SCAN, "reports:", "  gitlab_schema_version: 15.3.0"),
        "reports.gitlab_schema_version",
        7,
    ),
    (
        "gitlab-schema-version-read-as-a-number",
        _yaml(*HEAD, *SCAN, "reports:", "  gitlab_schema_version: 15.2"),
        "reports.gitlab_schema_version",
        7,
    ),
    ("duplicate-top-level-key", _yaml(*HEAD, *SCAN, "version: 1"), "version", 6),
    (
        "duplicate-nested-key",
        _yaml(*HEAD, *SCAN, "  target: https://other.example"),
        "scan.target",
        6,
    ),
    # Secrets: refused wherever they are, and never echoed (see SECRETS).
    ("secret-key-api-key", _yaml(*HEAD, "  api_key: k3y-value-1", *SCAN), "provider.api_key", 4),
    (
        "secret-key-password-in-options",
        _yaml(*HEAD, "  options:", "    login:", "      password: hunter2", *SCAN),
        "provider.options.login.password",
        6,
    ),
    (
        "secret-key-token-camel",
        _yaml(*HEAD, "  options: {accessToken: t0k3n-value}", *SCAN),
        "provider.options.accessToken",
        4,
    ),
    (
        "secret-key-auth-key",
        _yaml(*HEAD, "  options:", "    Auth-Key: vaddy-auth-k3y", *SCAN),
        "provider.options.Auth-Key",
        5,
    ),
    (
        "secret-key-client-secret",
        _yaml(*HEAD, *SCAN, "  client_secret: sh-s3cret"),
        "scan.client_secret",
        6,
    ),
    (
        "jwt-value",
        _yaml(*HEAD, "  options:", "    headers:", f"      X-Session: {JWT}", *SCAN),
        "provider.options.headers.X-Session",
        6,
    ),
    (
        "jwt-in-list",
        _yaml(*HEAD, *SCAN, "ignore:", f"  - rule: {JWT}", "    reason: r"),
        "ignore[0].rule",
        7,
    ),
    (
        "csp-key-value",
        _yaml(*HEAD, f"  options: {{key: {CSP_KEY}}}", *SCAN),
        "provider.options.key",
        4,
    ),
    (
        "url-with-credentials",
        _yaml(*HEAD, f"  base_url: https://admin:{URL_PASSWORD}@backend.example.com/api/v1", *SCAN),
        "provider.base_url",
        4,
    ),
    (
        "target-with-credentials",
        _yaml(*HEAD, "scan:", f"  target: https://qa:{URL_PASSWORD}@staging.example.com"),
        "scan.target",
        5,
    ),
    (
        "authorization-header",
        _yaml(
            "version: 1",
            "provider:",
            "  name: ncp-wsc",
            "  options:",
            "    Headers:",
            f"      Authorization: {BEARER}",
            *SCAN,
        ),
        "provider.options.Headers.Authorization",
        6,
    ),
]
"""Malformed policies: (case id, text, expected key path, expected line). Reused by CLI tests."""

SECRETS: dict[str, str] = {
    "secret-key-api-key": "k3y-value-1",
    "secret-key-password-in-options": "hunter2",
    "secret-key-token-camel": "t0k3n-value",
    "secret-key-auth-key": "vaddy-auth-k3y",
    "secret-key-client-secret": "sh-s3cret",
    "jwt-value": JWT,
    "jwt-in-list": JWT,
    "csp-key-value": CSP_KEY,
    "url-with-credentials": URL_PASSWORD,
    "target-with-credentials": URL_PASSWORD,
    "authorization-header": BEARER.split()[1],
}
"""The secret each secret case holds; it must never appear in the error."""

SOURCE = Path("ci/.scangate.yml")


def _error(text: str, source: Path = SOURCE) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, source)
    return caught.value


def _points_at(message: str, source: Path, path: str, line: int) -> bool:
    """True when one line of `message` names `source`, `path` and `line` in the house format."""
    if path:
        form = rf"{re.escape(str(source))}: {re.escape(path)}: .+ \(line {line}\)"
    else:  # the document itself, or a YAML syntax error (`file:line:column: problem`)
        form = rf"{re.escape(str(source))}(: .+ \(line {line}\)|:{line}:\d+: .+)"
    return any(re.fullmatch(form, text) for text in message.splitlines())


# --- malformed policies --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "path", "line"), [case[1:] for case in BAD_POLICIES], ids=[c[0] for c in BAD_POLICIES]
)
def test_bad_policy_names_key_path_and_line(text: str, path: str, line: int) -> None:
    error = _error(text)
    assert _points_at(str(error), SOURCE, path, line), str(error)
    assert error.exit_status == ExitStatus.USAGE_ERROR


@pytest.mark.parametrize(("case", "secret"), sorted(SECRETS.items()))
def test_secret_is_refused_and_never_echoed(case: str, secret: str) -> None:
    text = next(c[1] for c in BAD_POLICIES if c[0] == case)
    assert secret in text
    error = _error(text)
    assert secret not in str(error)
    assert secret not in error.diagnostics()
    assert "secrets never go in the policy" in str(error)


def test_every_case_id_is_unique_and_secrets_refer_to_cases() -> None:
    ids = [case[0] for case in BAD_POLICIES]
    assert len(ids) == len(set(ids)) >= 25
    assert set(SECRETS) <= set(ids)


def test_secret_in_a_yaml_syntax_error_is_not_quoted() -> None:
    # PyYAML's str(error) quotes the offending source line; ours must not.
    text = _yaml(*HEAD, f'  options: {{header: "{JWT}', *SCAN)
    error = _error(text)
    assert JWT not in error.diagnostics()
    assert re.match(rf"{re.escape(str(SOURCE))}:\d+:\d+: ", str(error))


def test_secret_key_names_the_providers_variables() -> None:
    error = _error(_yaml("version: 1", "provider:", "  name: vaddy", "  auth_key: abc123", *SCAN))
    assert "VADDY_USER + VADDY_AUTH_KEY" in str(error)
    assert "abc123" not in str(error)


def test_secret_key_is_not_also_reported_as_unknown() -> None:
    error = _error(_yaml(*HEAD, "  password: hunter2", *SCAN))
    assert isinstance(error, InvalidPolicyError)
    assert [p.path for p in error.problems] == ["provider.password"]


def test_form_field_names_are_not_secrets() -> None:
    # CyStack's login options name the form's inputs
    # (docs/providers/cystack.md `advances.authentication`).
    text = _yaml(
        "version: 1",
        "provider:",
        "  name: cystack",
        "  options:",
        "    advances:",
        "      authentication: {password_field: pwd, username_field: user}",
        *SCAN,
    )
    policy = parse_policy(text, SOURCE)
    login = policy.provider.options["advances"]["authentication"]
    assert login == {"password_field": "pwd", "username_field": "user"}


def test_prose_about_basic_authentication_is_not_a_secret() -> None:
    text = _yaml(*HEAD, *SCAN, "ignore:", "  - rule: x", "    reason: Basic authentication page")
    assert parse_policy(text, SOURCE).ignore[0].reason == "Basic authentication page"


# --- message quality -----------------------------------------------------------------------


def _message(text: str) -> str:
    return str(_error(text))


def test_unknown_key_lists_allowed_keys_and_a_guess() -> None:
    message = _message(_yaml(*HEAD, "scan:", "  targt: https://x.example"))
    assert "unknown key 'targt' (did you mean 'target'?" in message
    assert "allowed keys: target, timeout, if_running, on_timeout" in message


def test_unknown_severity_lists_allowed_values() -> None:
    message = _message(_yaml(*HEAD, *SCAN, "gate:", "  fail_on: hgih"))
    expected = "unknown severity 'hgih' (expected one of critical, high, medium, low, info, none)"
    assert f"gate.fail_on: {expected} (line 7)" in message


def test_enum_message_lists_values() -> None:
    message = _message(_yaml(*HEAD, *SCAN, "  if_running: sometimes"))
    assert "'sometimes' (expected one of wait, attach, fail)" in message


def test_missing_key_says_what_to_add() -> None:
    message = _message(_yaml(*HEAD[1:], *SCAN))
    assert "version: missing required key 'version' (add `version: 1`) (line 1)" in message


def test_ignore_without_match_key_lists_match_keys() -> None:
    message = _message(_yaml(*HEAD, *SCAN, "ignore:", "  - reason: accepted"))
    assert f"ignore[0]: needs at least one of the keys {', '.join(MATCH_KEYS)} (line 7)" in message


def test_bad_date_says_not_a_date() -> None:
    text = _yaml(*HEAD, *SCAN, "ignore:", "  - rule: x", "    reason: r", "    expires: 2027-02-30")
    assert "ignore[0].expires: not a date: '2027-02-30' (expected YYYY-MM-DD) (line 9)" in (
        _message(text)
    )


def test_yaml_boolean_trap_is_explained() -> None:
    message = _message(_yaml(*HEAD, *SCAN, "ignore:", "  - param: no", "    reason: r"))
    assert "ignore[0].param: expected text, got true/false (quote it" in message


def test_duration_messages() -> None:
    assert "must be at least 1s, got '0.5s'" in _message(_yaml(*HEAD, *SCAN, "  timeout: 0.5s"))
    assert "not a duration: '5 minutes' (expected e.g. 30s, 60m, 2h, 600)" in _message(
        _yaml(*HEAD, *SCAN, "  timeout: 5 minutes")
    )


def test_duplicate_key_names_the_first_occurrence() -> None:
    message = _message(_yaml(*HEAD, *SCAN, "  timeout: 5m", "  timeout: 10m"))
    assert "scan.timeout: duplicate key 'timeout' (first at line 6) (line 7)" in message


def test_all_problems_are_reported_sorted_by_line() -> None:
    text = _yaml(
        "version: 1",
        "provider:",
        "  name: cyberorigin",
        "scan:",
        "  target: https://x.example",
        "  timeout: forever",
        "gate:",
        "  fail_on: hgih",
        "reports:",
        "  formats: [pdf]",
    )
    error = _error(text)
    assert isinstance(error, InvalidPolicyError)
    assert [(p.path, p.line) for p in error.problems] == [
        ("provider.name", 3),
        ("scan.timeout", 6),
        ("gate.fail_on", 8),
        ("reports.formats[0]", 10),
    ]
    lines = str(error).splitlines()
    assert lines[0] == f"{SOURCE}: 4 problems in the policy"
    assert len(lines) == 5


def test_keys_that_need_quoting_are_quoted_in_the_path() -> None:
    message = _message(_yaml(*HEAD, "  options:", "    a.b: {api key: x}", *SCAN))
    assert 'provider.options["a.b"]["api key"]: named like a secret' in message


def test_single_problem_is_one_line_with_a_hint() -> None:
    error = _error(_yaml(*HEAD, *SCAN, "colour: red"))
    assert "\n" not in str(error)
    assert "scangate schema" in error.diagnostics()


# --- alias bombs and other hostile YAML ----------------------------------------------------


def test_alias_expansion_bomb_is_refused() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for n in range(1, 7):
        prev, name = chr(ord("a") + n - 1), chr(ord("a") + n)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    message = _message(_yaml(*lines))
    assert "alias expansion" in message


def test_recursive_alias_is_refused() -> None:
    assert "recursive alias" in _message(_yaml(*HEAD, "scan: &s {target: x, more: *s}"))


def test_deep_nesting_is_refused() -> None:
    assert "nested too deeply" in _message("a: " + "[" * 1000 + "]" * 1000 + "\n")


# --- good policies -------------------------------------------------------------------------


def test_design_example_loads_with_its_values() -> None:
    policy = load_policy(DESIGN_EXAMPLE)
    base = DESIGN_EXAMPLE.parent
    assert policy.source == DESIGN_EXAMPLE
    assert policy.provider.name == "cyberorigen"
    assert policy.provider.base_url == "https://backend.cyberorigen.com/api/v1"
    assert policy.provider.options == {"scan_type": "quick", "ports": "1-1000"}
    assert policy.provider.unrated_severity is Severity.HIGH
    assert policy.provider.verify_tls is True
    assert policy.scan.target == "https://staging.example.com"
    assert policy.scan.timeout == 3600.0
    assert policy.scan.if_running is IfRunning.WAIT
    assert policy.scan.on_timeout is OnTimeout.CANCEL
    assert policy.gate.fail_on is Severity.HIGH
    assert policy.gate.max == {Severity.MEDIUM: 5, Severity.LOW: 20}
    assert policy.gate.warn_on is Severity.MEDIUM
    assert (policy.gate.new_only, policy.gate.fail_on_incomplete) == (False, True)
    assert policy.baseline == base / ".scangate-baseline.json"
    (rule,) = policy.ignore
    assert (rule.index, rule.rule, rule.url) == (
        0,
        "click_jacking",
        "https://staging.example.com/legacy/*",
    )
    assert rule.reason == "legacy admin, accepted until rewrite (SEC-12)"
    assert rule.expires == date(2027, 3, 1)
    assert policy.reports.dir == base / "scangate-reports"
    assert policy.reports.formats == ALL_FORMATS
    assert policy.reports.sarif_anchor == "openapi.yaml"


def test_minimal_policy_gets_the_defaults() -> None:
    policy = parse_policy(MINIMAL, SOURCE)
    assert policy.provider.base_url is None
    assert policy.provider.options == {}
    assert policy.provider.unrated_severity is Severity.HIGH
    assert policy.provider.verify_tls is True
    assert policy.scan.timeout == 3600.0
    assert policy.scan.if_running is IfRunning.WAIT
    assert policy.scan.on_timeout is OnTimeout.CANCEL
    assert policy.gate.fail_on is Severity.HIGH
    assert policy.gate.max == {}
    assert policy.gate.warn_on is None
    assert (policy.gate.new_only, policy.gate.fail_on_incomplete) == (False, True)
    assert policy.ignore == ()
    assert policy.baseline is None
    # The default directory is not written in the policy, so it is relative to the working
    # directory, like --out-dir (design §9 "Paths" covers paths *inside* the policy).
    assert policy.reports.dir == Path("scangate-reports")
    assert policy.reports.formats == ALL_FORMATS
    assert policy.reports.sarif_anchor is None
    # Unset: the version is chosen when the report is written, from CI_SERVER_VERSION.
    assert policy.reports.gitlab_schema_version is None


@pytest.mark.parametrize(
    ("written", "seconds"),
    [("30s", 30.0), ("60m", 3600.0), ("2h", 7200.0), ("1.5m", 90.0), ("90", 90.0), ("1", 1.0),
     ("1s", 1.0), ("600", 600.0), ("2.5", 2.5)],
)  # fmt: skip
def test_durations(written: str, seconds: float) -> None:
    policy = parse_policy(_yaml(*HEAD, *SCAN, f"  timeout: {written}"), SOURCE)
    assert policy.scan.timeout == seconds


@pytest.mark.parametrize("value", ["0", "0s", "0.9s", "abc", "1d", "-5", ""])
def test_parse_duration_rejects(value: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


def test_relative_paths_are_relative_to_the_policy_file(tmp_path: Path) -> None:
    policy_file = tmp_path / "ci" / "scan.yml"
    policy_file.parent.mkdir()
    policy_file.write_text(
        _yaml(
            *HEAD,
            "  verify_tls: certs/ca.pem",
            *SCAN,
            "baseline: ../baselines/app.json",
            "reports: {dir: out, sarif_anchor: api/openapi.yaml}",
        )
    )
    policy = load_policy(policy_file)
    assert policy.reports.dir == tmp_path / "ci" / "out"
    assert policy.baseline == tmp_path / "ci" / ".." / "baselines" / "app.json"
    assert policy.provider.verify_tls == str(tmp_path / "ci" / "certs" / "ca.pem")
    # SARIF needs a repository-relative URI, so the anchor is kept as written.
    assert policy.reports.sarif_anchor == "api/openapi.yaml"


def test_absolute_paths_stay_absolute(tmp_path: Path) -> None:
    text = _yaml(*HEAD, *SCAN, f"baseline: {tmp_path / 'b.json'}", f"reports: {{dir: {tmp_path}}}")
    policy = parse_policy(text, Path("elsewhere/.scangate.yml"))
    assert policy.baseline == tmp_path / "b.json"
    assert policy.reports.dir == tmp_path


def test_thresholds_none_disable() -> None:
    policy = parse_policy(_yaml(*HEAD, *SCAN, "gate: {fail_on: none, warn_on: none}"), SOURCE)
    assert policy.gate.fail_on is None
    assert policy.gate.warn_on is None


def test_ignore_keys_are_typed() -> None:
    text = _yaml(
        *HEAD,
        *SCAN,
        "ignore:",
        "  - {cwe: CWE-79, reason: a}",
        "  - {cwe: 89, cve: cve-2024-1234, reason: b, expires: '2027-01-31'}",
        "  - {title: 'Missing * header', param: q, fingerprint: 'vaddy:42:1', reason: '  c  '}",
    )
    first, second, third = parse_policy(text, SOURCE).ignore
    assert first.cwe == 79
    assert (second.cwe, second.cve, second.expires) == (89, "cve-2024-1234", date(2027, 1, 31))
    assert (third.title, third.param, third.fingerprint) == ("Missing * header", "q", "vaddy:42:1")
    assert third.reason == "c"
    assert [rule.index for rule in (first, second, third)] == [0, 1, 2]


def test_loaded_ignore_matches_findings() -> None:
    text = _yaml(*HEAD, *SCAN, "ignore:", "  - {cwe: CWE-89, url: '*/items/*', reason: r}")
    (rule,) = parse_policy(text, SOURCE).ignore
    assert rule.matches(make_finding(1))  # odd n: CWE-89, /api/items/1
    assert not rule.matches(make_finding(2))  # even n: no CWE


def test_vaddy_project_id_stays_as_written() -> None:
    # YAML 1.1 reads 0123 as octal 83; a VAddy project_id must stay "0123".
    for written, expected in (("0123", "0123"), ("12345", "12345"), ("'007'", "007")):
        text = _yaml("version: 1", "provider: {name: vaddy}", "scan:", f"  target: {written}")
        assert parse_policy(text, SOURCE).scan.target == expected


def test_formats_subset_in_canonical_order() -> None:
    text = _yaml(*HEAD, *SCAN, "reports: {formats: [markdown, sarif]}")
    assert parse_policy(text, SOURCE).reports.formats == ("sarif", "markdown")


def test_verify_tls_false() -> None:
    text = _yaml(*HEAD, "  verify_tls: false", *SCAN)
    assert parse_policy(text, SOURCE).provider.verify_tls is False


def test_keys_are_taken_as_written() -> None:
    # `on`/`no` keys stay text in provider options (YAML 1.1 would make them booleans).
    text = _yaml(*HEAD, "  options: {on: 1, no: [a]}", *SCAN)
    assert parse_policy(text, SOURCE).provider.options == {"on": 1, "no": ["a"]}


# --- loading files -------------------------------------------------------------------------


def test_load_policy_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yml"
    with pytest.raises(PolicyError, match=re.escape(f"{missing}: cannot read")):
        load_policy(missing)
    latin = tmp_path / "latin.yml"
    latin.write_bytes(MINIMAL.encode() + "# caf\xe9\n".encode("latin-1"))
    with pytest.raises(PolicyError, match="not UTF-8"):
        load_policy(latin)
    huge = tmp_path / "huge.yml"
    huge.write_text(MINIMAL + "#" * (1024 * 1024))
    with pytest.raises(PolicyError, match="larger than"):
        load_policy(huge)


def test_load_policy_accepts_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "bom.yml"
    path.write_bytes(b"\xef\xbb\xbf" + MINIMAL.encode())
    assert load_policy(path).provider.name == "cyberorigen"


def test_errors_name_the_file_as_given(tmp_path: Path) -> None:
    path = tmp_path / "p.yml"
    path.write_text(_yaml(*HEAD, *SCAN, "colour: red"))
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert str(caught.value).startswith(f"{path}: colour: unknown key 'colour'")


# --- find_policy ---------------------------------------------------------------------------


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(MINIMAL)
    return path


def test_find_policy_precedence(tmp_path: Path) -> None:
    default = _touch(tmp_path / ".scangate.yml")
    from_env = _touch(tmp_path / "env.yml")
    from_flag = _touch(tmp_path / "flag.yml")
    env = {"SCANGATE_POLICY": "env.yml"}
    assert find_policy("flag.yml", env, tmp_path) == from_flag
    assert find_policy(None, env, tmp_path) == from_env
    assert find_policy(None, {}, tmp_path) == default
    assert find_policy(None, {"SCANGATE_POLICY": ""}, tmp_path) == default
    assert find_policy(str(from_flag), {}, tmp_path / "elsewhere") == from_flag


def test_find_policy_keeps_relative_names_relative(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _touch(tmp_path / ".scangate.yml")
    _touch(tmp_path / "ci" / "scan.yml")
    assert find_policy(None, {}, Path()) == Path(".scangate.yml")
    assert find_policy("ci/scan.yml", {}, Path()) == Path("ci/scan.yml")


def test_find_policy_explicit_file_must_exist(tmp_path: Path) -> None:
    _touch(tmp_path / ".scangate.yml")
    with pytest.raises(PolicyError, match=r"flag\.yml \(from --policy\) does not exist"):
        find_policy("flag.yml", {}, tmp_path)
    with pytest.raises(PolicyError, match=r"env\.yml \(from SCANGATE_POLICY\) does not exist"):
        find_policy(None, {"SCANGATE_POLICY": "env.yml"}, tmp_path)
    with pytest.raises(PolicyError, match="is not a file"):
        find_policy(".", {}, tmp_path)


def test_find_policy_without_any_policy(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"no policy file: .*\.scangate\.yml does not exist") as e:
        find_policy(None, {}, tmp_path)
    assert "--policy" in e.value.diagnostics()
    assert "SCANGATE_POLICY" in e.value.diagnostics()


# --- overrides and effective settings ------------------------------------------------------


def test_overrides_win_over_the_policy() -> None:
    policy = load_policy(DESIGN_EXAMPLE)
    changed = with_overrides(
        policy,
        out_dir=Path("out"),
        formats=["json", "sarif"],
        target="https://other.example",
        timeout="2h",
        base_url="http://127.0.0.1:8080/api/v1",
        baseline=Path("base.json"),
        fail_on="none",
        new_only=True,
    )
    assert changed.reports.dir == Path("out")
    assert changed.reports.formats == ("sarif", "json")
    assert changed.scan.target == "https://other.example"
    assert changed.scan.timeout == 7200.0
    assert changed.provider.base_url == "http://127.0.0.1:8080/api/v1"
    assert changed.baseline == Path("base.json")
    assert changed.gate.fail_on is None
    assert changed.gate.new_only is True
    assert changed.gate.max == policy.gate.max
    assert changed.reports.sarif_anchor == policy.reports.sarif_anchor


def test_no_overrides_keep_the_policy() -> None:
    policy = load_policy(DESIGN_EXAMPLE)
    assert with_overrides(policy) == policy


@pytest.mark.parametrize(
    "overrides",
    [{"timeout": "0s"}, {"fail_on": "hgih"}, {"formats": ["pdf"]}, {"target": "  "}],
)
def test_bad_overrides_are_usage_errors(overrides: dict[str, object]) -> None:
    with pytest.raises(UsageError):
        with_overrides(load_policy(DESIGN_EXAMPLE), **overrides)  # type: ignore[arg-type]


@pytest.mark.parametrize("version", GITLAB_SCHEMA_VERSIONS)
def test_gitlab_schema_version_is_read_and_shown(version: str) -> None:
    text = _yaml(*HEAD, *SCAN, "reports:", f"  gitlab_schema_version: {version}")
    policy = parse_policy(text, SOURCE)
    assert policy.reports.gitlab_schema_version == version
    assert effective_settings(policy)["reports"]["gitlab_schema_version"] == version


def test_an_unknown_gitlab_schema_version_lists_the_allowed_ones() -> None:
    error = _error(_yaml(*HEAD, *SCAN, "reports:", "  gitlab_schema_version: 14.1.2"))
    assert error.exit_status == ExitStatus.USAGE_ERROR
    message = str(error)
    assert "reports.gitlab_schema_version" in message
    assert "'14.1.2'" in message
    assert "expected one of 15.0.7, 15.1.4, 15.2.1" in message


def test_the_schema_offers_exactly_the_gitlab_versions_scangate_writes() -> None:
    reports = policy_schema()["properties"]["reports"]["properties"]
    assert tuple(reports["gitlab_schema_version"]["enum"]) == GITLAB_SCHEMA_VERSIONS


def test_effective_settings_are_json_and_complete() -> None:
    settings = effective_settings(load_policy(DESIGN_EXAMPLE))
    assert json.loads(json.dumps(settings)) == settings
    assert settings["scan"]["timeout_seconds"] == 3600.0
    assert settings["gate"] == {
        "fail_on": "high",
        "max": {"medium": 5, "low": 20},
        "warn_on": "medium",
        "new_only": False,
        "fail_on_incomplete": True,
        "enforce_from": None,
        "warn_before_days": 14,
    }
    assert settings["ignore"][0]["expires"] == "2027-03-01"
    assert settings["reports"]["formats"] == list(ALL_FORMATS)
    assert settings["reports"]["gitlab_schema_version"] is None
    assert settings["reports"]["comment"] is False
    assert settings["provider"]["options"] == {"scan_type": "quick", "ports": "1-1000"}
    assert settings["baseline"] == str(DESIGN_EXAMPLE.parent / ".scangate-baseline.json")


# --- the schema ----------------------------------------------------------------------------


def test_schema_is_valid_draft_2020_12() -> None:
    schema = policy_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_schema_enums_match_the_code() -> None:
    schema = policy_schema()
    props = schema["properties"]
    assert tuple(props["provider"]["properties"]["name"]["enum"]) == PROVIDER_NAMES
    assert tuple(props["reports"]["properties"]["formats"]["items"]["enum"]) == ALL_FORMATS
    assert tuple(schema["$defs"]["severity"]["enum"]) == Severity.names()
    assert tuple(schema["$defs"]["threshold"]["enum"]) == (*Severity.names(), "none")
    assert props["scan"]["properties"]["if_running"]["enum"] == [m.value for m in IfRunning]
    assert props["scan"]["properties"]["on_timeout"]["enum"] == [m.value for m in OnTimeout]
    match_keys = [option["required"][0] for option in schema["$defs"]["ignore"]["anyOf"]]
    assert tuple(match_keys) == MATCH_KEYS


def test_schema_accepts_the_design_example_as_an_editor_sees_it() -> None:
    # yaml-language-server reads `expires: 2027-03-01` as text (YAML 1.2).
    import yaml

    data = yaml.safe_load(DESIGN_EXAMPLE.read_text())
    data["ignore"][0]["expires"] = data["ignore"][0]["expires"].isoformat()
    jsonschema.Draft202012Validator(policy_schema()).validate(data)


def test_policy_schema_returns_a_fresh_copy() -> None:
    policy_schema()["title"] = "changed"
    assert policy_schema()["title"] == "scangate policy"


# --- provider options ----------------------------------------------------------------------

OPTIONS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "scan_type": {"title": "scan type", "enum": ["quick", "full"]},
        "ports": {"type": "string"},
    },
}


def test_check_options_names_paths_and_lines() -> None:
    text = _yaml(*HEAD, "  options:", "    scan_type: deep", "    portz: '1-10'", *SCAN)
    policy = parse_policy(text, SOURCE)
    with pytest.raises(PolicyError) as caught:
        check_options(policy, OPTIONS_SCHEMA)
    message = str(caught.value)
    assert _points_at(message, SOURCE, "provider.options.scan_type", 5)
    assert "unknown scan type 'deep' (expected one of quick, full)" in message
    assert _points_at(message, SOURCE, "provider.options.portz", 6)


def test_check_options_accepts_valid_options() -> None:
    policy = load_policy(DESIGN_EXAMPLE)
    check_options(policy, OPTIONS_SCHEMA)


# --- scan.expect ---------------------------------------------------------------------------


def test_expect_is_read_as_written_and_expanded_only_at_run_time() -> None:
    text = _yaml(
        *HEAD,
        *SCAN,
        "  expect:",
        "    url: /version",
        "    contains: ${GITHUB_SHA}",
        "    wait: 5m",
    )
    policy = parse_policy(text, SOURCE)
    expect = policy.scan.expect
    assert expect is not None
    assert (expect.url, expect.contains, expect.wait) == ("/version", "${GITHUB_SHA}", 300.0)
    shown = effective_settings(policy)["scan"]["expect"]
    assert shown == {
        "url": "https://staging.example.com/version",
        "contains": "${GITHUB_SHA}",
        "variables": ["GITHUB_SHA"],
        "wait_seconds": 300.0,
    }


@pytest.mark.parametrize("wait", ["0", "0s", "0m"])
def test_expect_wait_zero_is_one_try(wait: str) -> None:
    lines = ("  expect:", "    url: https://staging.example.com:8443/v", "    contains: a")
    policy = parse_policy(_yaml(*HEAD, *SCAN, *lines, f"    wait: {wait}"), SOURCE)
    assert policy.scan.expect is not None and policy.scan.expect.wait == 0.0


def test_no_expect_by_default() -> None:
    policy = parse_policy(MINIMAL, SOURCE)
    assert policy.scan.expect is None
    assert effective_settings(policy)["scan"]["expect"] is None
