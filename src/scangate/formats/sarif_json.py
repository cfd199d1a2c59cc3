"""Serializing a sarif-om object tree as JSON, fast, the way `jschema_to_python` would."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import attr
from sarif_om import PropertyBag, SarifLog

_NO_DEFAULT = object()
_Field = tuple[str, str, object]
_TABLES: dict[type, tuple[frozenset[str], tuple[_Field, ...]]] = {}
_LEADING = {"$schema": 0, "version": 1}
"""`$schema` and `version` open the file, as in every SARIF example; all else keeps attrs order."""


def _field_table(cls: type) -> tuple[frozenset[str], tuple[_Field, ...]]:
    """(python names, [(python name, JSON name, default)]) of a sarif-om class, computed once."""
    fields = []
    for field in attr.fields(cls):
        default: object = field.default
        if isinstance(default, attr.Factory):  # type: ignore[arg-type]
            default = default.factory()  # type: ignore[attr-defined]
        elif default is attr.NOTHING:
            default = _NO_DEFAULT
        fields.append((field.name, field.metadata.get("schema_property_name", field.name), default))
    if cls is SarifLog:
        fields.sort(key=lambda f: _LEADING.get(f[1], 2))
    return frozenset(f[0] for f in fields), tuple(fields)


class Explicit(str):
    """A value written even where it equals its field's default.

    A result without `level` takes its rule's default level (SARIF §3.27.10), so a result of
    an `error` rule that is only a `warning` (a finding deferred until `gate.enforce_from`)
    must say `warning`, which sarif-om's default would otherwise leave out.
    """

    __slots__ = ()


def _encode(obj: object) -> object:
    """`json` hook: a sarif-om object as a dict of its non-default fields, by schema name."""
    cls = type(obj)
    table = _TABLES.get(cls)
    if table is None:
        if not attr.has(cls):
            return str(obj)  # what jschema_to_python does with anything else
        table = _TABLES[cls] = _field_table(cls)
    names, fields = table
    values = obj.__dict__
    out = {}
    for name, key, default in fields:
        value = values[name]
        # Most defaults are None: an identity test then decides, without calling attrs' __eq__.
        if value is None if default is None else (value is default or value == default):
            if not isinstance(value, Explicit):
                continue
        out[key] = value
    if len(values) > len(names):  # extra properties set on a bag (or `suppression.status`)
        out.update({k: v for k, v in values.items() if k not in names})
    return out


_ENCODER = json.JSONEncoder(
    default=_encode, ensure_ascii=False, separators=(",", ":"), check_circular=False
)


def dumps(log: object) -> str:
    """Serialize a sarif-om object tree as compact JSON.

    Parsed, the output equals `jschema_to_python.to_json.to_json(log)`: same schema names,
    fields equal to their attrs default left out, extra attributes kept. It runs on the C
    encoder with one dict per object, instead of deep-copying every subtree.
    """
    return _ENCODER.encode(log)


def dumps_streamed(obj: object, key: str, items: Iterable[Iterable[str]]) -> Iterator[str]:
    """`dumps(obj)` in pieces, with the list under JSON key `key` given by `items`.

    Each item of `items` is the pieces of one list element (an object `dumps`ed, or another
    `dumps_streamed`), so a list of 25,000 results is never one string, and its elements can
    be built only as they are written. The bytes are those `dumps` writes for `obj` holding
    the list: compact JSON composes, member by member. `obj`'s own value under `key` must
    differ from its default (an empty list does), or the key would be left out.
    """
    members = _encode(obj)
    if not isinstance(members, dict) or key not in members:
        raise ValueError(f"{type(obj).__name__} has no {key!r} member to stream")
    separator = "{"
    for name, value in members.items():
        yield separator + _ENCODER.encode(name) + ":"
        separator = ","
        if name != key:
            yield _ENCODER.encode(value)
            continue
        comma = "["
        for item in items:
            yield comma
            yield from item
            comma = ","
        yield "]" if comma == "," else "[]"
    yield "}"


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a log is built and serialized.

    A log is a tree of up to 25,000 results with about 15 objects each and no cycles; the
    collector's repeated passes over it only cost time (about half of `render` on 25,000
    results), and reference counting frees it all the same.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def bag(tags: Sequence[str] | None = None, **values: object) -> Any:
    """A `PropertyBag`: `tags` plus arbitrary properties (SARIF §3.8), None values left out."""
    properties = PropertyBag(tags=list(tags) if tags else None)
    vars(properties).update({k: v for k, v in values.items() if v is not None})
    return properties
