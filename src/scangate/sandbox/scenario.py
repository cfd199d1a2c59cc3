"""Sandbox scenarios: provider-neutral scripts of how a scan unfolds, loaded from YAML."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar, overload

import yaml

from scangate.errors import UsageError

T = TypeVar("T")

SEVERITIES = ("critical", "high", "medium", "low", "info")
FINAL_STATES = ("completed", "failed", "cancelled")
FINDING_STATUSES = ("open", "in_progress", "resolved", "false_positive")
FAULT_TARGETS = ("poll", "start", "findings", "auth", "list", "cancel", "any")
"""Request categories a fault can target; emulators tag each route with one of them."""
FAULT_KINDS = ("5xx", "429", "drop", "malformed", "timeout", "token-expiry", "401")
HOSTILE_TEXT = (
    "<script>alert(1)</script> ]]> & \x00\x01\x08\x0b\x1f\ud800 \ufffe "
    "\n::error::pwned\n::add-mask::x\n##[error]x | col | [link](javascript:x) *bold* `code` "
    "%0A%25 ${{ secrets.X }} \u202e\U0001f600"
)
"""Text a hostile provider could send: markup, control characters, a lone surrogate, CI
workflow commands, Markdown, template syntax and a bidi override."""

_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
_KEYS = frozenset(
    "name description extends providers duration final completeness findings generate hostile"
    " faults token_lifetime options target_version version_after previous_version".split()
)
_FINDING_KEYS = frozenset(
    "title rule severity url method param cvss cve cwe description remediation evidence status"
    " tool".split()
)
_FAULT_KEYS = frozenset("on kind after count retry_after status processed".split())
_GENERATE_KEYS = frozenset({"count", "severity", "first"})


class SandboxError(UsageError, ValueError):
    """A sandbox cannot be set up: unknown provider or scenario (exit 2)."""


class ScenarioError(SandboxError):
    """A scenario file is missing or malformed; the message names the scenario and the key."""


@dataclass(frozen=True, kw_only=True)
class ScenarioFinding:
    """One finding a scenario plants, in provider-neutral terms; emulators map it to wire JSON."""

    title: str
    severity: str
    """One of `SEVERITIES`; emulators translate it into their own scale."""
    rule: str = ""
    url: str = ""
    method: str = "GET"
    param: str = ""
    cvss: float | None = None
    cve: tuple[str, ...] = ()
    cwe: tuple[int, ...] = ()
    description: str = ""
    remediation: str = ""
    request: str = ""
    """Request evidence."""
    response: str = ""
    """Response evidence."""
    status: str = "open"
    """One of `FINDING_STATUSES` (`false_positive` marks a provider-side false positive)."""
    tool: str = ""
    """The scanner component that found it, where the provider reports one."""


@dataclass(frozen=True, kw_only=True)
class Fault:
    """A failure injected into the requests of one category.

    The first `after` matching requests pass; the next `count` get the fault.
    """

    on: str
    """A `FAULT_TARGETS` category."""
    kind: str
    """A `FAULT_KINDS` member."""
    after: int = 0
    count: int = 1
    retry_after: float = 1.0
    """Seconds in the `Retry-After` header of a `429`."""
    status: int = 503
    """The HTTP status of a `5xx` fault."""
    processed: bool = True
    """For `drop` and `timeout`: whether the emulator acts on the request before
    the answer is lost (a lost answer to a processed start leaves a scan behind)."""

    def targets(self, category: str) -> bool:
        """True when requests of `category` count toward this fault."""
        return self.on in ("any", category)


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """How a sandbox scan unfolds: timing, final state, findings and injected faults."""

    name: str
    description: str = ""
    duration: float = 3.0
    """Real seconds from creation until the scan reaches `final`."""
    final: str = "completed"
    """One of `FINAL_STATES`."""
    completeness: int = 100
    """Percent of the scan that ran by the end (partial and stopped scans stay below 100)."""
    findings: tuple[ScenarioFinding, ...] = ()
    """The findings, already expanded by `generate` and made hostile by `hostile`."""
    hostile: bool = False
    faults: tuple[Fault, ...] = ()
    token_lifetime: float | None = None
    """Seconds a login token lives, for providers that issue tokens (None: the real lifetime)."""
    providers: tuple[str, ...] = ()
    """Emulators this scenario is meant for; empty means every one."""
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Provider-specific knobs, by provider name, validated by that provider's emulator."""
    target_version: str = ""
    """What the emulator's target version page (`/_target/...`) serves, for `scan.expect`;
    empty: the page answers 404."""
    version_after: float = 0.0
    """Real seconds from server start before `target_version` appears (a late rollout); until
    then the page serves `previous_version`."""
    previous_version: str = "previous-build"
    source: str = ""
    """Where the scenario was loaded from."""

    def supports(self, provider: str) -> bool:
        """True when the scenario may run on `provider`'s emulator."""
        return not self.providers or provider in self.providers

    def options_for(self, provider: str) -> Mapping[str, Any]:
        """The `options` block for `provider` (empty when none)."""
        return self.options.get(provider, MappingProxyType({}))

    @property
    def uses_tokens(self) -> bool:
        """True when the scenario exercises login tokens (expiry), so token credentials suit it."""
        return self.token_lifetime is not None or any(f.kind == "token-expiry" for f in self.faults)


def bundled_scenarios(provider: str | None = None) -> tuple[str, ...]:
    """Names of the bundled scenarios, sorted; only those `provider` supports when given."""
    names = sorted(
        entry.name[: -len(".yml")]
        for entry in _bundled_dir().iterdir()
        if entry.name.endswith(".yml")
    )
    if provider is None:
        return tuple(names)
    return tuple(name for name in names if load_scenario(name).supports(provider))


def load_scenario(ref: str | Path, *, provider: str | None = None) -> Scenario:
    """Load a bundled scenario by name, or a scenario file by path.

    A `str` containing a path separator or ending in `.yml`/`.yaml` is a path. When `provider`
    is given, a scenario restricted to other providers is refused. Raises `ScenarioError`.
    """
    if isinstance(ref, Path) or "/" in ref or "\\" in ref or ref.endswith((".yml", ".yaml")):
        path = Path(ref)
        data = _read_file(path, path.stem)
        scenario = parse_scenario(data, name=path.stem, source=str(path))
    else:
        scenario = parse_scenario(_read_bundled(ref), name=ref, source=f"bundled:{ref}")
    if provider is not None and not scenario.supports(provider):
        raise ScenarioError(
            f"scenario {scenario.name!r} is for {', '.join(scenario.providers)} only",
            hint=f"pick one of: {', '.join(bundled_scenarios(provider))}",
        )
    return scenario


def parse_scenario(data: object, *, name: str, source: str = "") -> Scenario:
    """Build a `Scenario` from parsed YAML, resolving `extends`; raises `ScenarioError`."""
    root = _Fields(data, name, "")
    fields = _Fields(_resolve_extends(root.data, name, seen=(name,)), name, "", _KEYS)
    findings = tuple(_finding(item) for item in fields.children("findings", _FINDING_KEYS))
    generated, first = _generate(fields)
    findings = generated + findings if first else findings + generated
    hostile = fields.flag("hostile", False)
    return Scenario(
        name=fields.text("name", name),
        description=fields.text("description"),
        duration=_seconds(fields, "duration", 3.0),
        final=fields.choice("final", FINAL_STATES, "completed"),
        completeness=fields.integer("completeness", 100, low=0, high=100),
        findings=tuple(_make_hostile(f) for f in findings) if hostile else findings,
        hostile=hostile,
        faults=tuple(_fault(item) for item in fields.children("faults", _FAULT_KEYS)),
        token_lifetime=_seconds(fields, "token_lifetime", None),
        providers=tuple(fields.strings("providers")),
        options=_options(fields.child("options")),
        target_version=fields.text("target_version"),
        version_after=_delay(fields, "version_after"),
        previous_version=fields.text("previous_version", "previous-build"),
        source=source,
    )


def _bundled_dir() -> Any:
    return resources.files("scangate.sandbox") / "scenarios"


def _read_bundled(name: str) -> object:
    entry = _bundled_dir() / f"{name}.yml"
    if not _NAME.fullmatch(name) or not entry.is_file():
        raise ScenarioError(
            f"unknown sandbox scenario {name!r}",
            hint=f"pick one of: {', '.join(bundled_scenarios())}, or give a scenario file path",
        )
    return _parse_yaml(entry.read_text(encoding="utf-8"), name)


def _read_file(path: Path, name: str) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"scenario {name!r}: cannot read {path}: {exc.strerror}") from None
    return _parse_yaml(text, name)


def _parse_yaml(text: str, name: str) -> object:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ScenarioError(f"scenario {name!r}: invalid YAML{where}") from None


def _resolve_extends(data: dict[str, Any], name: str, seen: tuple[str, ...]) -> dict[str, Any]:
    """Merge `data` over the bundled scenario it `extends` (top-level keys are replaced)."""
    base_name = data.get("extends")
    if base_name is None:
        return data
    if not isinstance(base_name, str):
        raise ScenarioError(f"scenario {name!r}: extends: expected a scenario name")
    if base_name in seen:
        raise ScenarioError(f"scenario {name!r}: extends: cycle through {base_name!r}")
    base = _Fields(_read_bundled(base_name), base_name, "").data
    base = _resolve_extends(base, base_name, (*seen, base_name))
    inherited = {k: v for k, v in base.items() if k not in ("name", "description", "extends")}
    return {**inherited, **{k: v for k, v in data.items() if k != "extends"}}


class _Fields:
    """One mapping of a scenario file, read with errors naming the scenario and the key path."""

    def __init__(
        self, data: object, scenario: str, path: str, allowed: frozenset[str] | None = None
    ) -> None:
        self.scenario, self.path = scenario, path
        if not isinstance(data, dict):
            raise self.error("", "expected a mapping")
        # YAML 1.1 (PyYAML) reads a bare `on:` key as the boolean true; a fault's `on` is meant.
        self.data: dict[str, Any] = {"on" if k is True else str(k): v for k, v in data.items()}
        for key in self.data:
            if allowed is not None and key not in allowed:
                error = self.error(key, "unknown key")
                error.hint = f"allowed keys: {', '.join(sorted(allowed))}"
                raise error

    def error(self, key: str, problem: str) -> ScenarioError:
        """A `ScenarioError` about `key` (the mapping itself when empty)."""
        where = ".".join(part for part in (self.path, key) if part) or "(root)"
        return ScenarioError(f"scenario {self.scenario!r}: {where}: {problem}")

    def _typed(self, key: str, kind: type[T], default: T) -> T:
        value = self.data.get(key, default)
        # bool is an int subclass; a `true` where a number belongs is a mistake.
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise self.error(key, f"expected {kind.__name__}")
        return value

    def text(self, key: str, default: str = "") -> str:
        """A string."""
        return self._typed(key, str, default)

    def flag(self, key: str, default: bool) -> bool:
        """A boolean."""
        return self._typed(key, bool, default)

    def integer(self, key: str, default: int, low: int, high: int | None = None) -> int:
        """An integer in [`low`, `high`]."""
        value = self._typed(key, int, default)
        if value < low or (high is not None and value > high):
            raise self.error(
                key, f"must be between {low} and {high}" if high else f"must be >= {low}"
            )
        return value

    def number(self, key: str, default: float | None) -> float | None:
        """An int or float, as a float."""
        value = self.data.get(key, default)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise self.error(key, "expected a number")
        return None if value is None else float(value)

    def choice(self, key: str, allowed: tuple[str, ...], default: str | None = None) -> str:
        """One of `allowed`; required when there is no `default`."""
        value = self.data.get(key, default)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # YAML reads `kind: 429` as a number
        if value is None:
            raise self.error(key, "required")
        if value not in allowed:
            raise self.error(key, f"{value!r} is not one of {', '.join(allowed)}")
        return str(value)

    def strings(self, key: str) -> list[str]:
        """A list of strings (a single string or number counts as a one-item list)."""
        value = self.data.get(key, [])
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
            raise self.error(key, "expected a list of strings")
        return [str(v) for v in value]

    def child(self, key: str, allowed: frozenset[str] | None = None) -> _Fields:
        """A nested mapping (empty when absent)."""
        return _Fields(self.data.get(key, {}), self.scenario, self._join(key), allowed)

    def children(self, key: str, allowed: frozenset[str]) -> list[_Fields]:
        """A list of mappings."""
        value = self.data.get(key, [])
        if not isinstance(value, list):
            raise self.error(key, "expected a list")
        return [
            _Fields(item, self.scenario, f"{self._join(key)}[{n}]", allowed)
            for n, item in enumerate(value)
        ]

    def _join(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key


@overload
def _seconds(fields: _Fields, key: str, default: float) -> float: ...


@overload
def _seconds(fields: _Fields, key: str, default: None) -> float | None: ...


def _seconds(fields: _Fields, key: str, default: float | None) -> float | None:
    value = fields.number(key, default)
    if (value is None and default is not None) or (value is not None and value <= 0):
        raise fields.error(key, "must be a positive number of seconds")
    return value


def _delay(fields: _Fields, key: str) -> float:
    """A number of seconds >= 0 (0 by default)."""
    value = fields.number(key, 0.0)
    if value is None or value < 0:
        raise fields.error(key, "must be a number of seconds >= 0")
    return value


def _options(fields: _Fields) -> Mapping[str, Mapping[str, Any]]:
    """`options: {provider: {...}}`, read-only; each emulator validates its own block."""
    return MappingProxyType(
        {provider: MappingProxyType(fields.child(provider).data) for provider in fields.data}
    )


def _finding(fields: _Fields) -> ScenarioFinding:
    evidence = fields.child("evidence", frozenset({"request", "response"}))
    if not fields.text("title"):
        raise fields.error("title", "required")
    return ScenarioFinding(
        title=fields.text("title"),
        severity=fields.choice("severity", SEVERITIES),
        rule=fields.text("rule"),
        url=fields.text("url"),
        method=fields.text("method", "GET").upper(),
        param=fields.text("param"),
        cvss=fields.number("cvss", None),
        cve=tuple(fields.strings("cve")),
        cwe=_cwe(fields),
        description=fields.text("description"),
        remediation=fields.text("remediation"),
        request=evidence.text("request"),
        response=evidence.text("response"),
        status=fields.choice("status", FINDING_STATUSES, "open"),
        tool=fields.text("tool"),
    )


def _cwe(fields: _Fields) -> tuple[int, ...]:
    ids = []
    for item in fields.strings("cwe"):
        digits = item.upper().removeprefix("CWE-")
        if not digits.isdigit():
            raise fields.error("cwe", f"{item!r} is not a CWE id")
        ids.append(int(digits))
    return tuple(ids)


def _fault(fields: _Fields) -> Fault:
    retry_after = fields.number("retry_after", 1.0)
    if retry_after is None or retry_after < 0:
        raise fields.error("retry_after", "must not be negative")
    status = fields.integer("status", 503, low=0)
    if not 500 <= status <= 599:
        raise fields.error("status", "a 5xx fault needs a 5xx status")
    return Fault(
        on=fields.choice("on", FAULT_TARGETS),
        kind=fields.choice("kind", FAULT_KINDS),
        after=fields.integer("after", 0, low=0),
        count=fields.integer("count", 1, low=1),
        retry_after=retry_after,
        status=status,
        processed=fields.flag("processed", True),
    )


def _generate(fields: _Fields) -> tuple[tuple[ScenarioFinding, ...], bool]:
    """The `generate` findings, and whether they come before the listed ones.

    `generate: N` adds N synthetic findings of every severity after the listed ones;
    `generate: {count: N, severity: low, first: true}` gives them one severity and puts them
    first (so that a listed finding can be the last one, on the last page).
    """
    if not isinstance(fields.data.get("generate"), dict):
        return _generated(fields.integer("generate", 0, low=0)), False
    spec = fields.child("generate", _GENERATE_KEYS)
    count = spec.integer("count", 0, low=0)
    severity = spec.data.get("severity")
    chosen = None if severity is None else spec.choice("severity", SEVERITIES)
    return _generated(count, chosen), spec.flag("first", False)


def _generated(count: int, severity: str | None = None) -> tuple[ScenarioFinding, ...]:
    """`count` synthetic findings (for pagination and size tests), of `severity` or of each."""
    return tuple(
        ScenarioFinding(
            title=f"Generated finding {n}",
            severity=severity or SEVERITIES[n % len(SEVERITIES)],
            rule=f"generated-{n % 13}",
            url=f"https://app.example.com/generated/{n}?id={n}",
            param="id",
            description=f"Synthetic finding number {n}.",
            remediation="None; this finding is generated by the sandbox.",
        )
        for n in range(1, count + 1)
    )


def _make_hostile(finding: ScenarioFinding) -> ScenarioFinding:
    """Weave `HOSTILE_TEXT` into every free-text field (severity and status stay valid)."""
    separator = "&q=" if "?" in finding.url else "?q="
    return replace(
        finding,
        title=f"{finding.title} {HOSTILE_TEXT}",
        rule=f"{finding.rule}{HOSTILE_TEXT}",
        url=f"{finding.url}{separator}{HOSTILE_TEXT}",
        param=f"{finding.param}{HOSTILE_TEXT}",
        description=f"{HOSTILE_TEXT}\n{finding.description}",
        remediation=f"{finding.remediation}\n{HOSTILE_TEXT}",
        request=f"{finding.request}\n{HOSTILE_TEXT}",
        response=f"{finding.response}\n{HOSTILE_TEXT}",
        tool=f"{finding.tool}{HOSTILE_TEXT}",
    )
