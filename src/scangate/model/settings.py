"""The settings a policy yields: frozen, validated values every part of scangate reads.

`scangate.policy` builds them from a policy file (and flags); the gate, the runner, providers
and formatters only read them, so they live in the domain beside the findings.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import Enum
from pathlib import Path
from typing import Any

from scangate.model.findings import Finding, Severity

ALL_FORMATS: tuple[str, ...] = ("sarif", "junit", "gitlab-dast", "json", "markdown")
"""Every report format, in the order they are written."""

GITLAB_SCHEMA_VERSIONS: tuple[str, ...] = ("15.0.7", "15.1.4", "15.2.1")
"""The GitLab DAST report schema versions scangate can write, oldest first (`reports.
gitlab_schema_version`; docs/formats.md §3). The newest is the default."""

MATCH_KEYS: tuple[str, ...] = ("rule", "title", "cve", "cwe", "url", "param", "fingerprint")
"""The keys of an `ignore` entry that select findings; an entry needs at least one."""

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
class ExpectSettings:
    """`scan.expect` — what the target must serve before a scan starts (`scangate.expect`)."""

    url: str
    """Relative to `scan.target`, or absolute on the same host."""
    contains: str
    """The value the response must contain, as written: `${NAME}` references are expanded
    from the environment at run time, never by a shell."""
    wait: float = 0.0
    """Seconds to keep trying (a deploy still rolling out); 0: one try."""


@dataclass(frozen=True, kw_only=True)
class ScanSettings:
    """`scan:` — what to scan and how long to wait."""

    target: str
    timeout: float = 3600.0
    """Seconds from process start covering start, wait and fetch (minimum 1)."""
    if_running: IfRunning = IfRunning.WAIT
    on_timeout: OnTimeout = OnTimeout.CANCEL
    expect: ExpectSettings | None = None
    """Checked before any provider request; None: no check."""


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
    enforce_from: date | None = None
    """The first day (UTC) the gate fails; before it, failures are reported as warnings."""
    warn_before: int = 14
    """Days ahead of an `ignore` entry's expiry (and of `enforce_from`) to warn from."""


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
    source: Path | None = None
    """The policy file that wrote this entry, when the policy extends a base (`extends:`)."""
    source_index: int | None = None
    """Its position in that file's own `ignore` list (`index` counts the merged list)."""

    @property
    def label(self) -> str:
        """`ignore[2]`, or `ignore[2] (ci/.scangate.yml ignore[0])` for an entry of a policy
        that extends a base: `index` counts the merged list, which no single file shows."""
        if self.source is None or self.source_index is None:
            return f"ignore[{self.index}]"
        return f"ignore[{self.index}] ({self.source.as_posix()} ignore[{self.source_index}])"

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
    gitlab_schema_version: str | None = None
    """One of `GITLAB_SCHEMA_VERSIONS`; None when the policy does not say, and the version is
    chosen when the report is written, from the GitLab instance's `CI_SERVER_VERSION`."""
    comment: bool = False
    """Keep one pull-request / merge-request comment current with the verdict."""


@dataclass(frozen=True)
class Origin:
    """Where an effective value came from: a file and line, a flag or variable, or the default."""

    file: Path | None = None
    line: int = 0
    option: str | None = None
    """The flag (`--fail-on`) or variable (`SCANGATE_FAIL_ON`) that set it."""

    def __str__(self) -> str:
        """`org/base.yml:4`, `--fail-on`, or `default`."""
        if self.option is not None:
            return self.option
        if self.file is not None:
            return f"{self.file}:{self.line}"
        return "default"


@dataclass(frozen=True, kw_only=True)
class Floor:
    """What a base policy chain settles: the files extending it and the flags may only tighten it.

    Built from the merged base chain with the built-in defaults for what it leaves out (a base
    that does not mention `fail_on` fails on `high`), so it says what the base alone would do.
    """

    files: tuple[Path, ...]
    """The base chain, nearest first."""
    gate: GateSettings
    timeout: float
    formats: tuple[str, ...]
    comment: bool
    verify_tls: bool | str
    unrated_severity: Severity
    baseline: Path | None
    expect: Mapping[str, Any] | None
    """`scan.expect` as written (compared, never run)."""
    allow_ignores: bool
    require_ignore_expiry: bool
    origins: Mapping[KeyPath, Origin] = field(default_factory=dict, compare=False, repr=False)
    """Where the chain wrote each value; a path missing here is a default."""


@dataclass(frozen=True, kw_only=True)
class Policy:
    """The whole, validated policy. Build it with `scangate.policy.load_policy`."""

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
    allow_ignores: bool = True
    """False: files extending this policy may not add `ignore` entries (its own still apply)."""
    require_ignore_expiry: bool = False
    """True: every `ignore` entry of a file extending this policy needs `expires`."""
    bases: tuple[Path, ...] = ()
    """The files this policy extends (`extends:`), nearest first; the verdict depends on all."""
    floor: Floor | None = field(default=None, compare=False, repr=False)
    """What the base chain settles, which flags may only tighten; None without `extends`."""
    origins: Mapping[KeyPath, Origin] = field(default_factory=dict, compare=False, repr=False)
    """Where each value written in a file (or set by a flag) came from, by policy key path."""
