"""Checks beyond the schema: literal secrets, durations, thresholds, blank text, the SARIF anchor.

Secret-looking keys and values are refused and never echoed (design §9 "Policy errors"); a
problem below a refused secret is dropped, so the secret's neighbourhood is not described.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath, PureWindowsPath

from scangate import registry
from scangate.expect import template_problem, url_problem
from scangate.model import Severity
from scangate.model.settings import KeyPath, SourceMap
from scangate.policy.composer import Document
from scangate.policy.problems import Found, PolicyProblem, problem_at, show, type_name
from scangate.policy.schema import (
    fragment_validator,
    policy_schema,
    policy_validator,
    schema_problems,
)
from scangate.secrets import is_secret_key, secret_kind

_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smh]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600}


def parse_duration(value: str | float) -> float:
    """Seconds in a duration: `30s`, `60m`, `2h` or plain seconds; at least 1 second.

    Raises `ValueError` with a message fit for the user.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {show(value)}")
    if isinstance(value, str):
        match = _DURATION.fullmatch(value.strip())
        if not match:
            raise ValueError(f"not a duration: {show(value)} (expected e.g. 30s, 60m, 2h, 600)")
        seconds = float(match[1]) * _UNIT_SECONDS[match[2]]
    else:
        seconds = float(value)
    if not math.isfinite(seconds):
        raise ValueError(f"not a finite duration: {show(value)}")
    if seconds < 1:
        raise ValueError(f"must be at least 1s, got {show(value)}")
    return seconds


def parse_wait(value: str | float) -> float:
    """`scan.expect.wait`: 0 (one try) or a duration of at least 1 second (`parse_duration`)."""
    if isinstance(value, str) and (match := _DURATION.fullmatch(value.strip())):
        if float(match[1]) == 0:
            return 0.0
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0:
        return 0.0
    return parse_duration(value)


def parse_threshold(value: str) -> Severity | None:
    """A `fail_on`/`warn_on` value: a severity name, or `none` (None: disabled).

    Raises `ValueError` for anything else.
    """
    if value == "none":
        return None
    if value not in Severity.names():
        allowed = ", ".join((*Severity.names(), "none"))
        raise ValueError(f"unknown severity {show(value)} (expected one of {allowed})")
    return Severity.parse(value)


def policy_problems(document: Document, *, fragment: bool = False) -> list[PolicyProblem]:
    """Every problem of `document`: duplicate keys, secrets, schema, semantics.

    `fragment`: `document` is one file of an `extends:` chain, so keys the merged policy must
    have (`version`, `provider.name`, `scan.target`) may be missing from it.
    """
    return document.problems + [problem for _, problem in located_problems(document, fragment)]


def located_problems(document: Document, fragment: bool = False) -> list[Found]:
    """`policy_problems` but duplicate keys, each with the raw key path it is about."""
    where = document.source_map
    if not isinstance(document.data, dict):
        allowed = ", ".join(policy_schema()["properties"])
        message = (
            f"the policy must be a mapping of keys ({allowed}), got {type_name(document.data)}"
        )
        return [((), PolicyProblem(line=where.line(()), path="", message=message))]
    secrets = _secret_problems(document.data, where)
    hidden = [path for path, _ in secrets]
    validator = fragment_validator() if fragment else policy_validator()
    others = schema_problems(validator, document.data, where)
    others += _semantic_problems(document.data, where)
    return secrets + [(path, problem) for path, problem in others if not _covered(path, hidden)]


def _covered(path: KeyPath, secrets: Sequence[KeyPath]) -> bool:
    """True when `path` is at or below a path already refused as a secret."""
    return any(path[: len(s)] == s for s in secrets)


# --- secrets (design §9 "Policy errors", §6) --------------------------------------------------


def _credential_advice(data: dict[str, object]) -> str:
    """Where the named provider's credentials go instead (its variables, from the registry)."""
    provider = data.get("provider")
    name = provider.get("name") if isinstance(provider, dict) else None
    if isinstance(name, str) and name in registry.PROVIDER_NAMES:
        variables = f"set {registry.entry(name).credential_variables} in the environment"
    else:
        variables = "see `scangate providers`"
    return f"secrets never go in the policy ({variables})"


def _secret_problems(data: dict[str, object], source_map: SourceMap) -> list[Found]:
    """Find secret-named keys and secret-shaped strings anywhere in the document."""
    advice = _credential_advice(data)
    found: list[Found] = []
    for path, key, value in _walk(data, ()):
        if key is not None and is_secret_key(key):
            message = f"named like a secret; {advice}"
            found.append((path, problem_at(path, message, source_map.key_line(path))))
        elif isinstance(value, str) and (kind := secret_kind(value)):
            message = f"value looks like {kind}; {advice}"
            found.append((path, problem_at(path, message, source_map.line(path))))
    return found


def _walk(value: object, path: KeyPath) -> Iterable[tuple[KeyPath, str | None, object]]:
    """Yield `(path, key or None, value)` for every value below `value`."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield path + (key,), key, item
            if not is_secret_key(key):
                yield from _walk(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield path + (index,), None, item
            yield from _walk(item, path + (index,))


# --- semantics -----------------------------------------------------------------------------


def _anchor_problem(anchor: str) -> str | None:
    """Why `anchor` is not a usable repository-relative path, or None."""
    if "\\" in anchor:
        return "use forward slashes in a repository-relative path"
    if PurePosixPath(anchor).is_absolute() or PureWindowsPath(anchor).drive:
        return "must be a repository-relative path, not an absolute one"
    if ".." in PurePosixPath(anchor).parts:
        return "must stay inside the repository (no '..')"
    return None


def _get(data: object, path: KeyPath) -> object:
    for part in path:
        if isinstance(part, str) and isinstance(data, dict):
            data = data.get(part)
        elif isinstance(part, int) and isinstance(data, list) and part < len(data):
            data = data[part]
        else:
            return None
    return data


def _expect_problems(data: object, where: SourceMap) -> list[Found]:
    """`scan.expect`: a usable wait, a same-host URL and a template of allowed variables."""
    found: list[Found] = []

    def add(path: KeyPath, message: str) -> None:
        found.append((path, problem_at(path, message, where.line(path))))

    wait = _get(data, ("scan", "expect", "wait"))
    if isinstance(wait, (str, int, float)) and not isinstance(wait, bool):
        try:
            parse_wait(wait)
        except ValueError as error:
            add(("scan", "expect", "wait"), str(error))
    target = _get(data, ("scan", "target"))
    url = _get(data, ("scan", "expect", "url"))
    if isinstance(url, str) and url.strip() and isinstance(target, (str, int)):
        if why := url_problem(url.strip(), str(target)):
            add(("scan", "expect", "url"), why)
    contains = _get(data, ("scan", "expect", "contains"))
    if isinstance(contains, str) and contains and (why := template_problem(contains)):
        add(("scan", "expect", "contains"), why)
    return found


def _semantic_problems(data: object, where: SourceMap) -> list[Found]:
    """Checks beyond the schema: duration bounds, blank text, the SARIF anchor."""
    found: list[Found] = []

    def add(path: KeyPath, message: str) -> None:
        found.append((path, problem_at(path, message, where.line(path))))

    timeout = _get(data, ("scan", "timeout"))
    if isinstance(timeout, (str, int, float)) and not isinstance(timeout, bool):
        try:
            parse_duration(timeout)
        except ValueError as error:
            add(("scan", "timeout"), str(error))
    target = _get(data, ("scan", "target"))
    if isinstance(target, str) and target and not target.strip():
        add(("scan", "target"), "must not be blank")
    found += _expect_problems(data, where)
    verify = _get(data, ("provider", "verify_tls"))
    if isinstance(verify, str) and verify.strip().lower() in ("true", "false", "yes", "no"):
        add(("provider", "verify_tls"), f"write true or false without quotes, not {verify!r}")
    anchor = _get(data, ("reports", "sarif_anchor"))
    if isinstance(anchor, str) and anchor and (why := _anchor_problem(anchor)):
        add(("reports", "sarif_anchor"), why)
    entries = _get(data, ("ignore",))
    for index, entry in enumerate(entries if isinstance(entries, list) else []):
        reason = entry.get("reason") if isinstance(entry, dict) else None
        if isinstance(reason, str) and reason and not reason.strip():
            add(("ignore", index, "reason"), "must not be blank")
    return found
