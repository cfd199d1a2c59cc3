"""The policy JSON Schema, and its errors translated into what a user reads.

The shipped `schemas/policy.json` leaves `provider.name`'s enum empty: the names are the
registry's (`scangate.registry`), filled in when the schema is loaded, so that `scangate schema`,
validation and the registry can never disagree. Each translator turns one kind of
`jsonschema` error into located messages naming the key path and line.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

import jsonschema

from scangate.model.settings import KeyPath, SourceMap
from scangate.policy.problems import Found, problem_at, show, type_name
from scangate.registry import PROVIDER_NAMES


@cache
def _schema_text() -> str:
    return resources.files("scangate").joinpath("schemas/policy.json").read_text("utf-8")


def policy_schema() -> dict[str, Any]:
    """The policy JSON Schema (draft 2020-12) shipped in the package (`scangate schema`).

    A fresh copy on each call, with the registry's provider names as `provider.name`'s enum.
    """
    schema: dict[str, Any] = json.loads(_schema_text())
    schema["properties"]["provider"]["properties"]["name"]["enum"] = list(PROVIDER_NAMES)
    return schema


@cache
def policy_validator() -> jsonschema.Draft202012Validator:
    """A validator of the policy schema (checked once against the meta-schema)."""
    schema = policy_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    return jsonschema.Draft202012Validator(schema, format_checker=checker)


@cache
def fragment_validator() -> jsonschema.Draft202012Validator:
    """A validator of one file of an `extends:` chain: the schema without `required` on the
    mappings that merge, since a base may settle only the gate and a child only the target;
    the merged result is checked against the whole schema. Ignore entries are not merged (the
    lists add up), so each keeps its own `required`."""
    schema = policy_schema()
    schema.pop("required")
    properties = schema["properties"]
    expect = properties["scan"]["properties"]["expect"]
    for section in (properties["provider"], properties["scan"], expect):
        section.pop("required")
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    return jsonschema.Draft202012Validator(schema, format_checker=checker)


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
    message = f"expected {expected}, got {type_name(error.instance)}"
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
    return [(path, f"unknown {title} {show(error.instance)} (expected one of {allowed})", line)]


def _on_const(error: jsonschema.ValidationError, where: SourceMap) -> list[_Located]:
    path = tuple(error.absolute_path)
    expected = json.dumps(_expected(error))
    message = f"unsupported {_title(error)} {show(error.instance)} (expected {expected})"
    return [(path, message, where.line(path))]


def _on_pattern(error: jsonschema.ValidationError, where: SourceMap) -> list[_Located]:
    path = tuple(error.absolute_path)
    title = _title(error)
    message = f"not a {title}: {show(error.instance)}{_expected_hint(error)}"
    return [(path, message, where.line(path))]


def _on_minimum(error: jsonschema.ValidationError, where: SourceMap) -> list[_Located]:
    path = tuple(error.absolute_path)
    least = _expected(error)
    if _title(error) == "duration":
        message = f"must be at least 1s, got {show(error.instance)}"
    else:
        message = f"must be at least {least}, got {show(error.instance)}"
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
            return [(at, f"{show(item)} is listed more than once", where.line(at))]
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


def schema_problems(
    validator: jsonschema.protocols.Validator, data: Any, where: SourceMap, base: KeyPath = ()
) -> list[Found]:
    """Validate `data` (found at `base`) and translate every error into a located problem."""
    found: list[Found] = []
    for error in validator.iter_errors(data):
        error.path.extendleft(reversed(base))
        translate = _TRANSLATORS.get(str(error.validator), _on_other)
        for path, message, line in translate(error, where):
            found.append((path, problem_at(path, message, line)))
    return found
