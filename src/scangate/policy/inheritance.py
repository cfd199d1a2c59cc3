"""`extends:`: policy files merged child over base, and the rule that a child may only tighten.

Merging: mappings merge key by key (the child's value wins), `ignore` lists add up (the base's
entries first), any other value is replaced whole (`reports.formats` is the child's list). Each
merged value remembers the file and line that wrote it (`Merged.origins`), so problems and
`scangate validate` can name them, and each relative path remembers the directory it is
relative to (`Merged.dirs`).

Tightening: `loosenings(base, child)` compares what the base chain settles (`Floor`, defaults
included: a base silent on `fail_on` fails on `high`) with the child's effective settings. Each
rule keeps one promise: on the same findings, the child fails at least what the base fails
(ignore entries aside, which `allow_ignores` and `require_ignore_expiry` govern).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scangate.model import Severity
from scangate.model.settings import MATCH_KEYS, Floor, GateSettings, KeyPath, Origin, SourceMap
from scangate.policy.composer import Document
from scangate.policy.problems import PolicyProblem, format_key_path, show

PATH_KEYS: tuple[KeyPath, ...] = (("baseline",), ("reports", "dir"), ("provider", "verify_tls"))
"""Keys whose relative paths are relative to the file that wrote them."""


@dataclass(frozen=True)
class Layer:
    """One file of an `extends:` chain."""

    path: Path
    """As opened (relative paths in it are resolved against its directory)."""
    document: Document
    shown: Path
    """The path for messages: the loaded file as given, a base as `org/base.yml` rather than
    `ci/../org/base.yml` (only shown so: a symlinked directory makes `..` mean elsewhere)."""


@dataclass(frozen=True)
class Merged:
    """Policy files merged child over base, remembering which file wrote each part."""

    data: dict[str, Any]
    origins: dict[KeyPath, Origin]
    """The file (as shown) and line that wrote each key path of `data`."""
    value_lines: dict[KeyPath, int]
    key_lines: dict[KeyPath, int]
    texts: dict[KeyPath, str]
    dirs: dict[KeyPath, Path]
    """For each of `PATH_KEYS` set, the directory of the file that wrote it."""
    ignore_sources: tuple[tuple[Path, int], ...] = ()
    """Per merged `ignore` index: the file (as shown) and the index in that file's own list."""
    files: tuple[Path, ...] = field(default=())
    """The files merged, base first, as shown."""

    @classmethod
    def of(cls, layer: Layer) -> Merged:
        """A chain of one file."""
        return cls(data={}, origins={}, value_lines={}, key_lines={}, texts={}, dirs={}).over(layer)

    def over(self, layer: Layer) -> Merged:
        """`layer` merged over this: its mappings merge in, its `ignore` entries follow ours."""
        document = layer.document
        shift = len(self.ignore_sources)

        def moved(path: KeyPath) -> KeyPath:
            if len(path) > 1 and path[0] == "ignore" and isinstance(path[1], int):
                return ("ignore", path[1] + shift, *path[2:])
            return path

        written = [p for p in _paths(document.data) if p]
        # A value other than a mapping replaces the base's whole, so what the base wrote below
        # it is gone; `ignore` entries never replace any (they follow the base's).
        replaced = [p for p in written if p[0] != "ignore" and not _is_mapping(document.data, p)]

        def kept(mapping: Mapping[KeyPath, Any]) -> dict[KeyPath, Any]:
            return {p: v for p, v in mapping.items() if not any(_below(p, r) for r in replaced)}

        origins = kept(self.origins)
        value_lines, key_lines, texts = (
            kept(m) for m in (self.value_lines, self.key_lines, self.texts)
        )
        where = document.source_map
        for path in written:
            if path == ("ignore",) and path in origins:
                continue  # the list is the base's; the entries below it are this file's
            origins[moved(path)] = Origin(layer.shown, where.key_line(path))
        for source, target in ((where.value_lines, value_lines), (where.key_lines, key_lines)):
            target.update({moved(p): line for p, line in source.items() if p})
        texts.update({moved(p): text for p, text in document.texts.items()})
        dirs = dict(self.dirs)
        dirs.update({key: layer.path.parent for key in PATH_KEYS if key in written})
        own = document.data.get("ignore") or []
        sources = self.ignore_sources + tuple((layer.shown, i) for i in range(len(own)))
        return Merged(
            data=merge(self.data, document.data),
            origins=origins,
            value_lines=value_lines,
            key_lines=key_lines,
            texts=texts,
            dirs=dirs,
            ignore_sources=sources,
            files=(*self.files, layer.shown),
        )

    def document(self) -> Document:
        """The merged policy as one document (its lines mix files: see `locate`)."""
        data = {key: value for key, value in self.data.items() if key != "extends"}
        return Document(data, SourceMap(self.value_lines, self.key_lines), self.texts)

    def local(self, path: KeyPath) -> KeyPath:
        """`path` as the file that wrote it numbers its `ignore` entries."""
        if len(path) > 1 and path[0] == "ignore" and isinstance(path[1], int):
            if path[1] < len(self.ignore_sources):
                return ("ignore", self.ignore_sources[path[1]][1], *path[2:])
        return path

    def locate(self, path: KeyPath, problem: PolicyProblem, child: Layer) -> PolicyProblem:
        """A problem of the merged document, moved to the file that wrote `path`.

        A missing key is the loaded file's to add (or its base's): it is named there.
        """
        origin = self.origins.get(path)
        if origin is not None and origin.file is not None:
            local = format_key_path(self.local(path))
            return PolicyProblem(problem.line, local, problem.message, str(origin.file))
        line = child.document.source_map.mapping_line(path[:-1]) if path else 1
        bases = ", ".join(str(f) for f in self.files[:-1])
        message = f"{problem.message}, in this file or the base it extends ({bases})"
        return PolicyProblem(line, problem.path, message, str(child.shown))


def merge(base: Any, child: Any, path: KeyPath = ()) -> Any:
    """`child` merged over `base`: mappings key by key, `ignore` lists concatenated."""
    if isinstance(base, dict) and isinstance(child, dict):
        merged = dict(base)
        for key, value in child.items():
            merged[key] = merge(base[key], value, (*path, key)) if key in base else value
        return merged
    if path == ("ignore",) and isinstance(base, list) and isinstance(child, list):
        return base + child
    return child


def _paths(value: Any, path: KeyPath = ()) -> Iterable[KeyPath]:
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))


def _is_mapping(data: Any, path: KeyPath) -> bool:
    for part in path:
        data = data[part]
    return isinstance(data, dict)


def _below(path: KeyPath, top: KeyPath) -> bool:
    return len(path) > len(top) and path[: len(top)] == top


# --- tighten only ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Loosening:
    """One way a child loosens its base: `key` moves `base_value` away from `tighten`."""

    key: KeyPath
    """The child's key that loosens."""
    base_key: KeyPath
    """The base's key it loosens (`gate.fail_on` for a budget added under it)."""
    base_value: str
    tighten: str
    """Which way the child may go (`to medium or lower`)."""
    value: str


def base_origin(floor: Floor, key: KeyPath) -> str:
    """`in org/base.yml (line 4)`, or that the value is the default the base leaves in place."""
    origin = floor.origins.get(key)
    if origin is not None and origin.file is not None:
        return f"in {origin.file} (line {origin.line})"
    return f"(the default; {floor.files[0]} does not set it)"


def _threshold(value: Severity | None) -> str:
    return value.label if value is not None else "none"


def _threshold_rule(key: KeyPath, base: Severity | None, child: Severity | None) -> list[Loosening]:
    # `none` is the loosest threshold: it fails (or warns of) nothing.
    if base is None or (child is not None and child <= base):
        return []
    return [Loosening(key, key, base.label, f"to {base.label} or lower", _threshold(child))]


def _budget_rules(base: GateSettings, child: GateSettings) -> list[Loosening]:
    found: list[Loosening] = []
    for severity, budget in sorted(child.max.items(), reverse=True):
        key: KeyPath = ("gate", "max", severity.label)
        if severity in base.max:
            if budget > base.max[severity]:
                limit = base.max[severity]
                found.append(Loosening(key, key, str(limit), f"to {limit} or less", str(budget)))
        elif base.fail_on is not None and severity >= base.fail_on and budget > 0:
            # A budget makes its severity fail only above it: over a fail_on that already fails
            # every such finding, any budget but 0 lets some through.
            said = f"fail_on: {base.fail_on.label}, which fails any {severity.label} finding,"
            tighten = f"a max.{severity.label} of 0 at most"
            found.append(Loosening(key, ("gate", "fail_on"), said, tighten, str(budget)))
    return found


def _flag(key: KeyPath, loose: bool, base: bool, child: bool, keep: str) -> list[Loosening]:
    text = {True: "true", False: "false"}
    return [Loosening(key, key, text[base], keep, text[child])] if loose else []


def _gate_rules(base: GateSettings, child: GateSettings) -> list[Loosening]:
    found = _threshold_rule(("gate", "fail_on"), base.fail_on, child.fail_on)
    found += _threshold_rule(("gate", "warn_on"), base.warn_on, child.warn_on)
    found += _budget_rules(base, child)
    found += _flag(
        ("gate", "new_only"),
        child.new_only and not base.new_only,
        base.new_only,
        child.new_only,
        "keep it false: the baseline would hide findings",
    )
    found += _flag(
        ("gate", "fail_on_incomplete"),
        base.fail_on_incomplete and not child.fail_on_incomplete,
        base.fail_on_incomplete,
        child.fail_on_incomplete,
        "keep it true",
    )
    key: KeyPath = ("gate", "enforce_from")
    if child.enforce_from is not None and (
        base.enforce_from is None or child.enforce_from > base.enforce_from
    ):
        # No date in the base means enforced now: any date defers failures to it.
        said = base.enforce_from.isoformat() if base.enforce_from else "none (enforced now)"
        tighten = f"to {said} or earlier" if base.enforce_from else "leave it unset"
        found.append(Loosening(key, key, said, tighten, child.enforce_from.isoformat()))
    if child.warn_before < base.warn_before:
        days = base.warn_before
        key = ("gate", "warn_before")
        found.append(Loosening(key, key, str(days), f"{days} days or more", str(child.warn_before)))
    return found


def _duration(seconds: float) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _same_file(a: Path | None, b: Path | None) -> bool:
    if a is None or b is None:
        return a is b
    return os.path.normpath(os.path.abspath(a)) == os.path.normpath(os.path.abspath(b))


def _setting_rules(base: Floor, child: Floor) -> list[Loosening]:
    found: list[Loosening] = []
    if child.timeout > base.timeout:
        key: KeyPath = ("scan", "timeout")
        limit = _duration(base.timeout)
        found.append(Loosening(key, key, limit, f"to {limit} or less", _duration(child.timeout)))
    missing = [f for f in base.formats if f not in child.formats]
    if missing:
        key = ("reports", "formats")
        tighten = f"list {', '.join(missing)} too; more formats are fine"
        found.append(Loosening(key, key, _list(base.formats), tighten, _list(child.formats)))
    found += _flag(
        ("reports", "comment"), base.comment and not child.comment, True, False, "keep it true"
    )
    if child.verify_tls is False and base.verify_tls is not False:
        key = ("provider", "verify_tls")
        found.append(Loosening(key, key, show(base.verify_tls), "true or a CA bundle", "false"))
    if child.unrated_severity < base.unrated_severity:
        key = ("provider", "unrated_severity")
        label = base.unrated_severity.label
        tighten = f"to {label} or higher"
        found.append(Loosening(key, key, label, tighten, child.unrated_severity.label))
    if child.gate.new_only and not _same_file(child.baseline, base.baseline):
        # Under new_only the baseline decides what counts: another one could hide any finding.
        key = ("baseline",)
        said = str(base.baseline) if base.baseline else "none"
        tighten = "keep the base's baseline while gate.new_only is true"
        found.append(Loosening(key, key, said, tighten, str(child.baseline)))
    if base.expect is not None and child.expect != base.expect:
        key = ("scan", "expect")
        changed = show(dict(child.expect)) if child.expect is not None else "none"
        found.append(Loosening(key, key, show(dict(base.expect)), "leave it as is", changed))
    found += _flag(
        ("allow_ignores",),
        child.allow_ignores and not base.allow_ignores,
        base.allow_ignores,
        child.allow_ignores,
        "keep it false",
    )
    found += _flag(
        ("require_ignore_expiry",),
        base.require_ignore_expiry and not child.require_ignore_expiry,
        base.require_ignore_expiry,
        child.require_ignore_expiry,
        "keep it true",
    )
    return found


def _list(items: Iterable[str]) -> str:
    return "[" + ", ".join(items) + "]"


def loosenings(base: Floor, child: Floor) -> list[Loosening]:
    """Every way `child`'s effective settings loosen what `base` settles."""
    return _gate_rules(base.gate, child.gate) + _setting_rules(base, child)


def loosening_problem(loose: Loosening, base: Floor, child: Path, line: int) -> PolicyProblem:
    """`gate.fail_on: medium in org/base.yml (line 4); ci/x.yml may only tighten it (to medium
    or lower), not set high (line 7)`."""
    message = (
        f"{loose.base_value} {base_origin(base, loose.base_key)}; {child} may only tighten it "
        f"({loose.tighten}), not set {loose.value}"
    )
    return PolicyProblem(line, format_key_path(loose.key), message, str(child))


# --- the base's say over ignore entries -----------------------------------------------------


def _entry_text(entry: Mapping[str, Any]) -> str:
    keys = [f"{key} {show(entry[key], 40)}" for key in MATCH_KEYS if key in entry]
    return ", ".join(keys) or "entry"


def ignore_problems(base: Floor, layer: Layer) -> list[PolicyProblem]:
    """The entries of `layer`'s own `ignore` list that its base forbids (`allow_ignores`), or
    that lack the expiry it requires (`require_ignore_expiry`). The base's own entries are the
    organisation's accepted risks and always apply."""
    entries = layer.document.data.get("ignore") or []
    found: list[PolicyProblem] = []
    for index, entry in enumerate(entries):
        path: KeyPath = ("ignore", index)
        line = layer.document.source_map.line(path)
        what = _entry_text(entry)
        if not base.allow_ignores:
            message = (
                f"entry ({what}) refused: allow_ignores: false "
                f"{base_origin(base, ('allow_ignores',))} forbids ignore entries in the files "
                "extending it (accept the risk in the base policy, or fix the finding)"
            )
        elif base.require_ignore_expiry and "expires" not in entry:
            message = (
                f"entry ({what}) needs expires: require_ignore_expiry: true "
                f"{base_origin(base, ('require_ignore_expiry',))} requires a date on every "
                "ignore entry of the files extending it"
            )
        else:
            continue
        found.append(PolicyProblem(line, format_key_path(path), message, str(layer.shown)))
    return found
