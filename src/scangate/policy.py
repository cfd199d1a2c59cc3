"""The policy file (`.scangate.yml`): loading, validation and the frozen settings it yields.

Precedence, for every setting that has more than one source, is written down once, here:

    command-line flag  >  SCANGATE_* environment variable  >  policy file  >  built-in default

The policy file itself is found the same way: `--policy` > `SCANGATE_POLICY` > `./.scangate.yml`
(`find_policy`). Flags and variables reach a loaded policy through `with_overrides`; paths they
give are relative to the working directory, while relative paths written in the policy
(`reports.dir`, `baseline`, a `verify_tls` CA bundle) are relative to the policy file's directory
(design §9 "Paths"). `reports.sarif_anchor` is a repository-relative path and is kept as written.

Every problem names the file, the 0-based key path and the line (`ignore[2].expires: not a date:
'2027-13-01' (expected YYYY-MM-DD) (line 31)`); all problems are reported at once, sorted by line.
Secret-looking keys and values are refused and never echoed (design §9 "Policy errors").
"""

from __future__ import annotations

import difflib
import fnmatch
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from enum import Enum
from functools import cache
from importlib import resources
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import jsonschema
import yaml

from scangate.errors import PolicyError, UsageError
from scangate.model import Finding, Severity

ALL_FORMATS: tuple[str, ...] = ("sarif", "junit", "gitlab-dast", "json", "markdown")
"""Every report format, in the order they are written."""

POLICY_VERSION = 1
"""The only `version:` this scangate reads."""

DEFAULT_POLICY_FILE = ".scangate.yml"
"""Looked up in the working directory when neither `--policy` nor `SCANGATE_POLICY` is given."""

POLICY_ENV = "SCANGATE_POLICY"
"""The environment variable naming the policy file."""

MATCH_KEYS: tuple[str, ...] = ("rule", "title", "cve", "cwe", "url", "param", "fingerprint")
"""The keys of an `ignore` entry that select findings; an entry needs at least one."""

MAX_POLICY_BYTES = 1024 * 1024
"""A policy file larger than this is refused (it is surely not a policy)."""

_MAX_NODES = 100_000
"""Values built from one YAML document, counting alias expansions (stops "billion laughs")."""

_POLICY_HINT = "`scangate schema` prints every key; `scangate validate` checks a policy offline"

KeyPath = tuple[str | int, ...]
"""A path into the policy document: mapping keys and 0-based list indices."""


class IfRunning(str, Enum):
    """What to do when a scan is already running for the target."""

    WAIT = "wait"
    ATTACH = "attach"
    FAIL = "fail"


class OnTimeout(str, Enum):
    """What to do with the remote scan on timeout, SIGINT or SIGTERM."""

    CANCEL = "cancel"
    KEEP = "keep"


@dataclass(frozen=True)
class SourceMap:
    """Where each value and key of a policy document was written (1-based lines)."""

    value_lines: Mapping[KeyPath, int] = field(default_factory=dict)
    key_lines: Mapping[KeyPath, int] = field(default_factory=dict)

    def line(self, path: KeyPath) -> int:
        """The line of the value at `path`, else of its nearest recorded ancestor."""
        for end in range(len(path), -1, -1):
            line = self.value_lines.get(path[:end])
            if line is not None:
                return line
        return 1

    def key_line(self, path: KeyPath) -> int:
        """The line of the key ending `path` (for unknown and duplicate keys)."""
        return self.key_lines.get(path) or self.line(path)

    def mapping_line(self, path: KeyPath) -> int:
        """The line that introduces the mapping at `path` (`scan:`), for a key missing in it."""
        return self.key_lines.get(path) or self.line(path)


@dataclass(frozen=True, kw_only=True)
class ProviderSettings:
    """`provider:` — which scanner to drive and how."""

    name: str
    base_url: str | None = None
    """Overrides the provider's `DEFAULT_BASE_URL` (self-hosted, proxy, sandbox)."""
    options: Mapping[str, Any] = field(default_factory=dict)
    unrated_severity: Severity = Severity.HIGH
    verify_tls: bool | str = True
    """True, False (loudly warned) or a CA bundle path."""


@dataclass(frozen=True, kw_only=True)
class ScanSettings:
    """`scan:` — what to scan and how long to wait."""

    target: str
    timeout: float = 3600.0
    """Seconds from process start covering start, wait and fetch (minimum 1)."""
    if_running: IfRunning = IfRunning.WAIT
    on_timeout: OnTimeout = OnTimeout.CANCEL


@dataclass(frozen=True, kw_only=True)
class GateSettings:
    """`gate:` — when the job fails."""

    fail_on: Severity | None = Severity.HIGH
    """Any counted finding at or above this fails; None (`none`) disables."""
    max: Mapping[Severity, int] = field(default_factory=dict)
    """Inclusive per-severity budgets; a severity with a budget fails only above it."""
    warn_on: Severity | None = None
    new_only: bool = False
    fail_on_incomplete: bool = True


@dataclass(frozen=True, kw_only=True)
class IgnoreRule:
    """One `ignore:` entry. Its match keys are combined with AND (design §9)."""

    index: int
    """Position in the policy's `ignore` list (0-based), for `ignore[i]` in reasons."""
    reason: str
    rule: str | None = None
    title: str | None = None
    cve: str | None = None
    cwe: int | None = None
    url: str | None = None
    param: str | None = None
    fingerprint: str | None = None
    expires: date | None = None
    """The entry applies through this whole day (UTC) and stops applying after it."""

    def matches(self, finding: Finding) -> bool:
        """True when every key this entry sets matches `finding` (expiry is not considered)."""
        checks = (
            self.rule is None or self.rule == finding.rule_id,
            self.title is None or fnmatch.fnmatchcase(finding.title, self.title),
            self.cve is None or self.cve.upper() in (c.upper() for c in finding.cve_ids),
            self.cwe is None or self.cwe in finding.cwe_ids,
            self.url is None or fnmatch.fnmatchcase(finding.url, self.url),
            self.param is None or self.param == finding.parameter,
            self.fingerprint is None or self.fingerprint == finding.fingerprint,
        )
        return all(checks)

    def expired(self, today: date) -> bool:
        """True when `today` (UTC) is after the expiry day."""
        return self.expires is not None and today > self.expires


@dataclass(frozen=True, kw_only=True)
class ReportSettings:
    """`reports:` — where and what to write."""

    dir: Path = Path("scangate-reports")
    formats: tuple[str, ...] = ALL_FORMATS
    sarif_anchor: str | None = None
    """Repository-relative file every SARIF result is anchored to, instead of `dast/<host>/...`."""


@dataclass(frozen=True, kw_only=True)
class Policy:
    """The whole, validated policy. Build it with `load_policy`."""

    provider: ProviderSettings
    scan: ScanSettings
    gate: GateSettings = field(default_factory=GateSettings)
    ignore: tuple[IgnoreRule, ...] = ()
    baseline: Path | None = None
    reports: ReportSettings = field(default_factory=ReportSettings)
    source: Path | None = None
    """The file this policy was read from, if any."""
    source_map: SourceMap = field(default_factory=SourceMap, compare=False, repr=False)
    """Lines of the policy's keys, so later checks (`check_options`) can name them."""


# --- problems and errors -----------------------------------------------------------------


@dataclass(frozen=True, order=True)
class PolicyProblem:
    """One thing wrong with a policy: where it is and what is wrong (never a secret value)."""

    line: int
    path: str
    """The formatted key path (`ignore[2].expires`); empty for the document itself."""
    message: str

    def render(self, source: Path | str) -> str:
        """`<file>: <key path>: <message> (line N)`."""
        where = f"{self.path}: " if self.path else ""
        return f"{source}: {where}{self.message} (line {self.line})"


class InvalidPolicyError(PolicyError):
    """The policy file has one or more problems; `problems` lists them sorted by line."""

    def __init__(self, source: Path | str, problems: Iterable[PolicyProblem]) -> None:
        """Create a new `InvalidPolicyError` for `source` from its `problems`."""
        self.problems = tuple(sorted(set(problems)))
        lines = [p.render(source) for p in self.problems]
        if len(lines) > 1:
            lines.insert(0, f"{source}: {len(lines)} problems in the policy")
        super().__init__(redact("\n".join(lines)), hint=_POLICY_HINT)


def format_key_path(path: Iterable[str | int]) -> str:
    """Render a key path as users write it: `ignore[2].expires`, `gate.max.medium`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z0-9_-]+", part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text


def _show(value: object, limit: int = 60) -> str:
    """A short, quoted rendering of a user's value for an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- secrets (design §9 "Policy errors", §6) --------------------------------------------------

_SECRET_KEY_WORDS = ("password", "passwd", "secret", "token", "apikey", "authkey")

_SECRET_VALUES: tuple[tuple[str, re.Pattern[str]], ...] = (
    # A JWT is three base64url segments; its JSON header always encodes to `eyJ`.
    ("a JWT", re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*")),
    # CyberSec Pro keys are `csp_` + 64 hex (cybersecpro.md "API keys"); be generous.
    ("a CyberSec Pro API key", re.compile(r"\bcsp_[A-Za-z0-9]{16,}")),
    ("a URL with a password", re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@")),
    # A whole `Authorization` header value; the token must hold a digit so that prose such as
    # "Basic authentication page" in an ignore reason is not mistaken for one.
    (
        "an Authorization header value",
        re.compile(r"(?i)^\s*(?:authorization:\s*)?(?:bearer|basic)\s+(?=\S*\d)\S{8,}\s*$"),
    ),
)

_CREDENTIAL_VARIABLES = {
    "cystack": "CYSTACK_API_KEY",
    "cybersecpro": "CYBERSECPRO_API_KEY, or CYBERSECPRO_EMAIL + CYBERSECPRO_PASSWORD",
    "vaddy": "VADDY_USER + VADDY_AUTH_KEY",
    "cyberorigen": "CYBERORIGEN_API_KEY, or CYBERORIGEN_USERNAME + CYBERORIGEN_PASSWORD",
    "ncp-wsc": "NCP_ACCESS_KEY + NCP_SECRET_KEY",
}
"""Credential variables per provider (design §1), named in the refusal of a literal secret."""


def is_secret_key(key: str) -> bool:
    """True for a key named like a credential (`api_key`, `clientSecret`, `X-Auth-Token`).

    A key naming a form *field* is exempt: CyStack's `advances.authentication.password_field`
    holds the login form's input name, not a password (cystack.md, `advances.authentication`).
    """
    normal = re.sub(r"[^a-z0-9]", "", key.lower())
    if normal.endswith("field"):
        return False
    return any(word in normal for word in _SECRET_KEY_WORDS)


def secret_kind(value: str) -> str | None:
    """What kind of secret `value` looks like (`a JWT`), or None."""
    for kind, pattern in _SECRET_VALUES:
        if pattern.search(value):
            return kind
    return None


def redact(text: str) -> str:
    """Replace every secret-shaped part of `text` with `<redacted>` (a last line of defence)."""
    for _, pattern in _SECRET_VALUES:
        text = pattern.sub("<redacted>", text)
    return text


def _secret_problems(data: object, source_map: SourceMap) -> list[tuple[KeyPath, PolicyProblem]]:
    """Find secret-named keys and secret-shaped strings anywhere in the document."""
    provider = data.get("provider") if isinstance(data, dict) else None
    name = provider.get("name") if isinstance(provider, dict) else None
    where = _CREDENTIAL_VARIABLES.get(name) if isinstance(name, str) else None
    variables = f"set {where} in the environment" if where else "see `scangate providers`"
    advice = f"secrets never go in the policy ({variables})"
    found: list[tuple[KeyPath, PolicyProblem]] = []
    for path, key, value in _walk(data, ()):
        if key is not None and is_secret_key(key):
            message = f"named like a secret; {advice}"
            found.append((path, _problem(path, message, source_map.key_line(path))))
        elif isinstance(value, str) and (kind := secret_kind(value)):
            message = f"value looks like {kind}; {advice}"
            found.append((path, _problem(path, message, source_map.line(path))))
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


def _problem(path: KeyPath, message: str, line: int) -> PolicyProblem:
    return PolicyProblem(line=line, path=format_key_path(path), message=message)


# --- YAML with line numbers -------------------------------------------------------------

_YAML = "tag:yaml.org,2002:"
_SCALAR_TAGS = frozenset(_YAML + t for t in ("null", "bool", "int", "float", "str"))
_TIMESTAMP_TAG = _YAML + "timestamp"


class _YamlProblem(Exception):
    """A YAML-level problem at a node, reported as `file:line:column`."""

    def __init__(self, node: yaml.Node, message: str) -> None:
        super().__init__(message)
        self.mark = node.start_mark


@dataclass
class _Document:
    """A policy document as plain data, with where each part was written."""

    data: Any
    source_map: SourceMap
    texts: Mapping[KeyPath, str]
    """Every scalar as written, before YAML 1.1 typing (`0123` is the number 83)."""
    problems: list[PolicyProblem] = field(default_factory=list)


class _Builder:
    """Turns composed YAML nodes into plain data, recording lines and duplicate keys.

    Building from nodes (rather than `yaml.safe_load`) keeps each value's line, catches
    duplicate keys (PyYAML silently keeps the last) and keeps timestamps as written, so
    that only ISO `YYYY-MM-DD` passes as a date (PyYAML also reads `2027-3-1`).
    """

    def __init__(self, loader: yaml.SafeLoader) -> None:
        """Create a new `_Builder` constructing scalars with `loader`."""
        self.loader = loader
        self.value_lines: dict[KeyPath, int] = {}
        self.key_lines: dict[KeyPath, int] = {}
        self.texts: dict[KeyPath, str] = {}
        self.problems: list[PolicyProblem] = []
        self.active: set[int] = set()
        self.count = 0

    def build(self, node: yaml.Node, path: KeyPath) -> Any:
        """Return the plain value of `node`, found at `path`."""
        self.count += 1
        if self.count > _MAX_NODES:
            raise _YamlProblem(node, f"more than {_MAX_NODES} values (alias expansion?)")
        if id(node) in self.active:
            raise _YamlProblem(node, "recursive alias")
        self.value_lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.ScalarNode):
            self.texts[path] = str(node.value)
            return self._scalar(node)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            return self._sequence(node, path)
        finally:
            self.active.discard(id(node))

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        if node.tag == _TIMESTAMP_TAG:
            return node.value
        _check_tag(node, _SCALAR_TAGS)
        return self.loader.construct_object(node)

    def _sequence(self, node: yaml.Node, path: KeyPath) -> list[Any]:
        _check_tag(node, {_YAML + "seq"})
        return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]

    def _mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[str, Any]:
        _check_tag(node, {_YAML + "map"})
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self._key(key_node)
            line = key_node.start_mark.line + 1
            if key in result:
                text = f"duplicate key {key!r} (first at line {self.key_lines[path + (key,)]})"
                self.problems.append(_problem(path + (key,), text, line))
                continue
            self.key_lines[path + (key,)] = line
            result[key] = self.build(value_node, path + (key,))
        return result

    def _key(self, node: yaml.Node) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise _YamlProblem(node, "a key must be plain text, not a list or mapping")
        if node.tag == _YAML + "merge":
            raise _YamlProblem(node, "merge keys (<<) are not supported in a policy")
        # The key as written: `on`/`no`/`1` stay text rather than YAML 1.1 booleans or numbers.
        return str(node.value)


def _check_tag(node: yaml.Node, allowed: Iterable[str]) -> None:
    if node.tag not in allowed:
        raise _YamlProblem(node, f"unsupported YAML tag {node.tag!r} (plain YAML only)")


def _yaml_error(source: Path | str, line: int, column: int, message: str) -> PolicyError:
    text = f"{source}:{line}:{column}: {message}"
    return PolicyError(redact(text), hint="fix the YAML syntax at that position")


def _marked_message(error: yaml.MarkedYAMLError) -> str:
    # Only `problem` and `context`: `str(error)` quotes the source line, which may hold a secret.
    problem = error.problem or "invalid YAML"
    if not error.context:
        return problem
    if problem.startswith("but "):  # "expected a single document in the stream, but found ..."
        return f"{error.context}, {problem}"
    if error.context_mark is None:
        return f"{problem} ({error.context})"
    where = f"line {error.context_mark.line + 1}, column {error.context_mark.column + 1}"
    return f"{problem} ({error.context} at {where})"


def _compose(text: str, source: Path | str) -> _Document:
    """Parse `text` into a `_Document`; YAML problems raise `PolicyError` with line:column."""
    try:
        document = _build_document(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise _yaml_error(source, line, column, _marked_message(error)) from None
    except _YamlProblem as problem:
        line, column = problem.mark.line + 1, problem.mark.column + 1
        raise _yaml_error(source, line, column, str(problem)) from None
    except yaml.reader.ReaderError as error:
        line = text.count("\n", 0, error.position) + 1
        column = error.position - (text.rfind("\n", 0, error.position) + 1) + 1
        message = f"character U+{error.character:04X} is not allowed in YAML"
        raise _yaml_error(source, line, column, message) from None
    except RecursionError:
        raise _yaml_error(source, 1, 1, "the YAML is nested too deeply") from None
    if document is None or document.data is None:
        raise PolicyError(f"{source}: the policy file is empty (line 1)", hint=_POLICY_HINT)
    return document


def _build_document(text: str) -> _Document | None:
    """Compose the single YAML document in `text` and build it; None when there is none."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        builder = _Builder(loader)
        data = builder.build(node, ())
    finally:
        loader.dispose()
    source_map = SourceMap(value_lines=builder.value_lines, key_lines=builder.key_lines)
    return _Document(data, source_map, builder.texts, builder.problems)


# --- JSON Schema -------------------------------------------------------------------------


@cache
def _schema_text() -> str:
    return resources.files("scangate").joinpath("schemas/policy.json").read_text("utf-8")


def policy_schema() -> dict[str, Any]:
    """The policy JSON Schema (draft 2020-12) shipped in the package (`scangate schema`)."""
    schema: dict[str, Any] = json.loads(_schema_text())
    return schema


@cache
def _validator() -> jsonschema.Draft202012Validator:
    schema = policy_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    return jsonschema.Draft202012Validator(schema, format_checker=checker)


def _type_name(value: object) -> str:
    names: list[tuple[type | tuple[type, ...], str]] = [
        (bool, "true/false"),
        (dict, "a mapping"),
        (list, "a list"),
        (str, "text"),
        (int, "an integer"),
        (float, "a number"),
    ]
    for kind, name in names:
        if isinstance(value, kind):
            return name
    return "an empty value" if value is None else type(value).__name__


_JSON_TYPES = {
    "object": "a mapping",
    "array": "a list",
    "string": "text",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true/false",
    "null": "an empty value",
}


def _title(error: jsonschema.ValidationError) -> str:
    schema = error.schema if isinstance(error.schema, dict) else {}
    return str(schema.get("title", "value"))


def _expected_hint(error: jsonschema.ValidationError) -> str:
    schema = error.schema if isinstance(error.schema, dict) else {}
    if schema.get("format") == "date":
        return " (expected YYYY-MM-DD)"
    examples = schema.get("examples")
    if isinstance(examples, list) and examples and not isinstance(examples[0], dict):
        return " (expected e.g. " + ", ".join(str(e) for e in examples) + ")"
    return ""


_Located = tuple[KeyPath, str, int]
"""A translated schema error: key path, message, line."""


def _expected(error: jsonschema.ValidationError) -> Any:
    """The failed keyword's value in the schema (`["wait", "attach", "fail"]` for an enum)."""
    value: Any = error.validator_value
    return value


def _on_type(error: jsonschema.ValidationError, where: SourceMap) -> list[_Located]:
    path = tuple(error.absolute_path)
    wanted = _expected(error)
    kinds = [wanted] if isinstance(wanted, str) else list(wanted)
    expected = " or ".join(_JSON_TYPES.get(k, k) for k in kinds)
    message = f"expected {expected}, got {_type_name(error.instance)}"
    if isinstance(error.instance, bool) and "string" in kinds:
        message += " (quote it: YAML reads yes, no, on, off, true and false as booleans)"
    return [(path, message, where.line(path))]


def _on_enum(error: jsonschema.ValidationError, where: SourceMap) -> list[_Located]:
    path = tuple(error.absolute_path)
    line = where.line(path)
    if "propertyNames" in error.relative_schema_path:
        path, line = path + (str(error.instance),), where.key_line(path + (str(error.instance),))
    allowed = ", ".join(str(v) for v in _expected(error))
    title = _title(error)
    if error.instance is None:
        return [(path, f"no {title} given (expected one of {allowed})", line)]
    return [(path, f"unknown {title} {_show(error.instance)} (expected one of {allowed})", line)]


def _on_const(error: jsonschema.ValidationError, where: SourceMap) -> list[_Located]:
    path = tuple(error.absolute_path)
    expected = json.dumps(_expected(error))
    message = f"unsupported {_title(error)} {_show(error.instance)} (expected {expected})"
    return [(path, message, where.line(path))]


def _on_pattern(error: jsonschema.ValidationError, where: SourceMap) -> list[_Located]:
    path = tuple(error.absolute_path)
    title = _title(error)
    message = f"not a {title}: {_show(error.instance)}{_expected_hint(error)}"
    return [(path, message, where.line(path))]


def _on_minimum(error: jsonschema.ValidationError, where: SourceMap) -> list[_Located]:
    path = tuple(error.absolute_path)
    least = _expected(error)
    if _title(error) == "duration":
        message = f"must be at least 1s, got {_show(error.instance)}"
    else:
        message = f"must be at least {least}, got {_show(error.instance)}"
    return [(path, message, where.line(path))]


def _on_min_length(error: jsonschema.ValidationError, where: SourceMap) -> list[_Located]:
    path = tuple(error.absolute_path)
    return [(path, "must not be empty", where.line(path))]


def _on_unique(error: jsonschema.ValidationError, where: SourceMap) -> list[_Located]:
    path = tuple(error.absolute_path)
    items = list(error.instance) if isinstance(error.instance, list) else []
    for index, item in enumerate(items):
        if item in items[:index]:
            at = path + (index,)
            return [(at, f"{_show(item)} is listed more than once", where.line(at))]
    return [(path, "has duplicate items", where.line(path))]


def _on_required(error: jsonschema.ValidationError, where: SourceMap) -> list[_Located]:
    path = tuple(error.absolute_path)
    instance = error.instance if isinstance(error.instance, dict) else {}
    properties = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
    found: list[_Located] = []
    for key in _expected(error):
        if key in instance:
            continue
        message = f"missing required key {key!r}"
        const = properties.get(key, {}).get("const")
        if const is not None:
            message += f" (add `{key}: {json.dumps(const)}`)"
        found.append((path + (key,), message, where.mapping_line(path)))
    return found


def _on_additional(error: jsonschema.ValidationError, where: SourceMap) -> list[_Located]:
    path = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    allowed = list(schema.get("properties", {}))
    instance = error.instance if isinstance(error.instance, dict) else {}
    found: list[_Located] = []
    for key in instance:
        if key in allowed:
            continue
        close = difflib.get_close_matches(key, allowed, n=1)
        guess = f"did you mean {close[0]!r}? " if close else ""
        message = f"unknown key {key!r} ({guess}allowed keys: {', '.join(allowed)})"
        found.append((path + (key,), message, where.key_line(path + (key,))))
    return found


def _on_any_of(error: jsonschema.ValidationError, where: SourceMap) -> list[_Located]:
    path = tuple(error.absolute_path)
    options = _expected(error)
    keys = [k for o in options for k in o.get("required", [])] if isinstance(options, list) else []
    if keys and all(set(o) == {"required"} for o in options):
        message = f"needs at least one of the keys {', '.join(keys)}"
        return [(path, message, where.mapping_line(path))]
    return _on_other(error, where)


def _on_not(error: jsonschema.ValidationError, where: SourceMap) -> list[_Located]:
    path = tuple(error.absolute_path)
    rule = _expected(error)
    keys = rule.get("required", []) if isinstance(rule, dict) else []
    if len(keys) > 1 and set(rule) == {"required"}:
        # `not: {required: [a, b]}` is how an options schema says "a or b, not both".
        return [(path, f"set only one of {', '.join(keys)}", where.mapping_line(path))]
    return _on_other(error, where)


def _on_other(error: jsonschema.ValidationError, where: SourceMap) -> list[_Located]:
    path = tuple(error.absolute_path)
    return [(path, error.message, where.line(path))]


_TRANSLATORS: dict[str, Callable[[jsonschema.ValidationError, SourceMap], list[_Located]]] = {
    "type": _on_type,
    "enum": _on_enum,
    "const": _on_const,
    "pattern": _on_pattern,
    "format": _on_pattern,
    "minimum": _on_minimum,
    "minLength": _on_min_length,
    "uniqueItems": _on_unique,
    "required": _on_required,
    "additionalProperties": _on_additional,
    "anyOf": _on_any_of,
    "not": _on_not,
}


def _schema_problems(
    validator: jsonschema.protocols.Validator, data: Any, where: SourceMap, base: KeyPath = ()
) -> list[tuple[KeyPath, PolicyProblem]]:
    """Validate `data` (found at `base`) and translate every error into a located problem."""
    found: list[tuple[KeyPath, PolicyProblem]] = []
    for error in validator.iter_errors(data):
        error.path.extendleft(reversed(base))
        translate = _TRANSLATORS.get(str(error.validator), _on_other)
        for path, message, line in translate(error, where):
            found.append((path, _problem(path, message, line)))
    return found


# --- checks the schema cannot express ---------------------------------------------------

_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smh]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600}


def parse_duration(value: str | float) -> float:
    """Seconds in a duration: `30s`, `60m`, `2h` or plain seconds; at least 1 second.

    Raises `ValueError` with a message fit for the user.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {_show(value)}")
    if isinstance(value, str):
        match = _DURATION.fullmatch(value.strip())
        if not match:
            raise ValueError(f"not a duration: {_show(value)} (expected e.g. 30s, 60m, 2h, 600)")
        seconds = float(match[1]) * _UNIT_SECONDS[match[2]]
    else:
        seconds = float(value)
    if not math.isfinite(seconds):
        raise ValueError(f"not a finite duration: {_show(value)}")
    if seconds < 1:
        raise ValueError(f"must be at least 1s, got {_show(value)}")
    return seconds


def parse_threshold(value: str) -> Severity | None:
    """A `fail_on`/`warn_on` value: a severity name, or `none` (None: disabled).

    Raises `ValueError` for anything else.
    """
    if value == "none":
        return None
    if value not in Severity.names():
        allowed = ", ".join((*Severity.names(), "none"))
        raise ValueError(f"unknown severity {_show(value)} (expected one of {allowed})")
    return Severity.parse(value)


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


def _semantic_problems(data: object, where: SourceMap) -> list[tuple[KeyPath, PolicyProblem]]:
    """Checks beyond the schema: duration bounds, blank text, the SARIF anchor."""
    found: list[tuple[KeyPath, PolicyProblem]] = []

    def add(path: KeyPath, message: str) -> None:
        found.append((path, _problem(path, message, where.line(path))))

    timeout = _get(data, ("scan", "timeout"))
    if isinstance(timeout, (str, int, float)) and not isinstance(timeout, bool):
        try:
            parse_duration(timeout)
        except ValueError as error:
            add(("scan", "timeout"), str(error))
    target = _get(data, ("scan", "target"))
    if isinstance(target, str) and target and not target.strip():
        add(("scan", "target"), "must not be blank")
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


def _covered(path: KeyPath, secrets: Sequence[KeyPath]) -> bool:
    """True when `path` is at or below a path already refused as a secret."""
    return any(path[: len(s)] == s for s in secrets)


def _problems(document: _Document) -> list[PolicyProblem]:
    """Every problem of `document`: duplicate keys, secrets, schema, semantics."""
    where = document.source_map
    if not isinstance(document.data, dict):
        allowed = ", ".join(policy_schema()["properties"])
        message = (
            f"the policy must be a mapping of keys ({allowed}), got {_type_name(document.data)}"
        )
        return [PolicyProblem(line=where.line(()), path="", message=message)]
    secrets = _secret_problems(document.data, where)
    hidden = [path for path, _ in secrets]
    others = _schema_problems(_validator(), document.data, where)
    others += _semantic_problems(document.data, where)
    kept = [problem for path, problem in others if not _covered(path, hidden)]
    return document.problems + [problem for _, problem in secrets] + kept


# --- building the settings ---------------------------------------------------------------


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
    )


def _gate(raw: dict[str, Any]) -> GateSettings:
    budgets = raw.get("max", {})
    return GateSettings(
        fail_on=_threshold(raw.get("fail_on"), Severity.HIGH),
        max={Severity.parse(name): int(count) for name, count in budgets.items()},
        warn_on=_threshold(raw.get("warn_on"), None),
        new_only=raw.get("new_only", False),
        fail_on_incomplete=raw.get("fail_on_incomplete", True),
    )


def _cwe(value: object) -> int | None:
    if value is None:
        return None
    return int(str(value).upper().removeprefix("CWE-"))


def _ignore(index: int, raw: dict[str, Any]) -> IgnoreRule:
    expires = raw.get("expires")
    return IgnoreRule(
        index=index,
        reason=raw["reason"].strip(),
        rule=raw.get("rule"),
        title=raw.get("title"),
        cve=raw.get("cve"),
        cwe=_cwe(raw.get("cwe")),
        url=raw.get("url"),
        param=raw.get("param"),
        fingerprint=raw.get("fingerprint"),
        expires=date.fromisoformat(expires) if expires is not None else None,
    )


def _reports(raw: dict[str, Any], base: Path) -> ReportSettings:
    chosen = raw.get("formats", ALL_FORMATS)
    directory = _relative_to(base, raw.get("dir"))
    return ReportSettings(
        dir=directory or ReportSettings.dir,
        formats=tuple(f for f in ALL_FORMATS if f in chosen),
        sarif_anchor=raw.get("sarif_anchor"),
    )


def _target_text(document: _Document) -> str:
    """`scan.target` as written: a VAddy project_id like `0123` must not become the number 83."""
    target = document.data["scan"]["target"]
    return target if isinstance(target, str) else document.texts[("scan", "target")]


def _policy(document: _Document, source: Path) -> Policy:
    """Build the settings from a document that has no problems."""
    data: dict[str, Any] = document.data
    base = source.parent
    return Policy(
        provider=_provider(data["provider"], base),
        scan=_scan(data["scan"], _target_text(document)),
        gate=_gate(data.get("gate", {})),
        ignore=tuple(_ignore(i, entry) for i, entry in enumerate(data.get("ignore", []))),
        baseline=_relative_to(base, data.get("baseline")),
        reports=_reports(data.get("reports", {}), base),
        source=source,
        source_map=document.source_map,
    )


# --- public entry points -----------------------------------------------------------------


def parse_policy(text: str, source: Path) -> Policy:
    """Parse and validate the policy `text` read from `source`; raise `PolicyError` if invalid.

    Relative paths in the policy are resolved against `source`'s directory.
    """
    document = _compose(text, source)
    problems = _problems(document)
    if problems:
        raise InvalidPolicyError(source, problems)
    return _policy(document, source)


def load_policy(path: Path) -> Policy:
    """Read, parse and validate the policy file at `path`."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_POLICY_BYTES + 1)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise PolicyError(f"{path}: cannot read the policy file: {reason}") from None
    if len(raw) > MAX_POLICY_BYTES:
        raise PolicyError(f"{path}: the policy file is larger than {MAX_POLICY_BYTES} bytes")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise PolicyError(f"{path}: the policy file is not UTF-8 (byte {error.start})") from None
    return parse_policy(text, path)


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


def check_options(policy: Policy, schema: Mapping[str, Any]) -> None:
    """Validate `provider.options` against a provider's options JSON Schema (draft 2020-12).

    Problems name `provider.options...` key paths and the policy's lines, as `load_policy` does.
    """
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    base: KeyPath = ("provider", "options")
    found = _schema_problems(validator, dict(policy.provider.options), policy.source_map, base)
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
        },
        "gate": _gate_settings(policy.gate),
        "baseline": str(policy.baseline) if policy.baseline else None,
        "ignore": [_ignore_settings(rule) for rule in policy.ignore],
        "reports": {
            "dir": str(policy.reports.dir),
            "formats": list(policy.reports.formats),
            "sarif_anchor": policy.reports.sarif_anchor,
        },
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
    }


def _ignore_settings(rule: IgnoreRule) -> dict[str, Any]:
    keys = {key: getattr(rule, key) for key in MATCH_KEYS if getattr(rule, key) is not None}
    expires = rule.expires.isoformat() if rule.expires else None
    return {"index": rule.index, **keys, "reason": rule.reason, "expires": expires}
