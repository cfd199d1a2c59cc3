"""YAML with line numbers: a policy document as plain data, and where each part was written.

Building from composed nodes (rather than `yaml.safe_load`) keeps each value's line, catches
duplicate keys (PyYAML silently keeps the last) and keeps timestamps as written, so that only
ISO `YYYY-MM-DD` passes as a date (PyYAML also reads `2027-3-1`). YAML errors quote only
PyYAML's problem and context, never the source line, which may hold a secret.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scangate.errors import PolicyError
from scangate.model.settings import KeyPath, SourceMap
from scangate.policy.problems import POLICY_HINT, PolicyProblem, problem_at
from scangate.secrets import redact_secret_values

_MAX_NODES = 100_000
"""Values built from one YAML document, counting alias expansions (stops "billion laughs")."""

_YAML = "tag:yaml.org,2002:"
_SCALAR_TAGS = frozenset(_YAML + t for t in ("null", "bool", "int", "float", "str"))
_TIMESTAMP_TAG = _YAML + "timestamp"


class _YamlProblem(Exception):
    """A YAML-level problem at a node, reported as `file:line:column`."""

    def __init__(self, node: yaml.Node, message: str) -> None:
        super().__init__(message)
        self.mark = node.start_mark


@dataclass
class Document:
    """A policy document as plain data, with where each part was written."""

    data: Any
    source_map: SourceMap
    texts: Mapping[KeyPath, str]
    """Every scalar as written, before YAML 1.1 typing (`0123` is the number 83)."""
    problems: list[PolicyProblem] = field(default_factory=list)
    """Problems found while building (duplicate keys)."""


class _Builder:
    """Turns composed YAML nodes into plain data, recording lines and duplicate keys."""

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
                self.problems.append(problem_at(path + (key,), text, line))
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
    return PolicyError(redact_secret_values(text), hint="fix the YAML syntax at that position")


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


def compose(text: str, source: Path | str) -> Document:
    """Parse `text` into a `Document`; YAML problems raise `PolicyError` with line:column."""
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
        raise PolicyError(f"{source}: the policy file is empty (line 1)", hint=POLICY_HINT)
    return document


def _build_document(text: str) -> Document | None:
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
    return Document(data, source_map, builder.texts, builder.problems)
