"""The Django REST Framework conventions CyStack's API shows: error bodies, search, ordering
and the field checks of a `POST /scans` body (INFERRED where `providers/cystack.md` ([FS]) says).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from scangate.sandbox.cystack.data import AUTH_METHODS, NOTIFICATIONS, PROFILES, Target
from scangate.sandbox.wire import Rejected, Request, respond


def detail_error(status: int, detail: str) -> Rejected:
    """DRF's `{"detail": ...}` error (INFERRED [FS] "Errors")."""
    return Rejected(respond(status, {"detail": detail}))


def field_errors(errors: Mapping[str, list[str]]) -> Rejected:
    """DRF's 400: field -> list of messages (INFERRED [FS] "Errors")."""
    return Rejected(respond(400, dict(errors)))


def search(request: Request, fields: tuple[str, ...]) -> bool:
    """DRF `SearchFilter`: every term of `q` (split on spaces and commas) in some field."""
    terms = (request.arg("q") or "").replace(",", " ").split()
    return all(any(term.lower() in text.lower() for text in fields) for term in terms)


def ordered(
    request: Request, items: list[Any], keys: Mapping[str, Callable[[Any], Any]]
) -> list[Any]:
    """DRF `OrderingFilter`: a comma list, `-` for descending; unknown fields are ignored."""
    fields = [f.strip() for f in (request.arg("ordering") or "").split(",") if f.strip()]
    for name in reversed(fields):  # stable sorts, least significant first
        key = keys.get(name.lstrip("-"))
        if key is not None:
            items = sorted(items, key=key, reverse=name.startswith("-"))
    return items


def _check_pk(
    body: Mapping[str, Any],
    name: str,
    known: Mapping[int, Any],
    errors: dict[str, list[str]],
    *,
    required: bool,
) -> int | None:
    """A primary-key field such as `profile` (unknown id -> 400 [FS] "Emulator notes")."""
    value = body.get(name)
    if value is None:
        if required:
            errors[name] = ["This field is required."]
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        errors[name] = [f"Incorrect type. Expected pk value, received {type(value).__name__}."]
        return None
    if value not in known:
        errors[name] = [f'Invalid pk "{value}" - object does not exist.']
        return None
    return value


def _check_notification(value: Any, errors: dict[str, list[str]]) -> tuple[int, ...]:
    if not isinstance(value, list):
        errors["notification"] = [
            f'Expected a list of items but got type "{type(value).__name__}".'
        ]
        return ()
    problems = [
        f'Invalid pk "{item}" - object does not exist.'
        for item in value
        if isinstance(item, bool) or not isinstance(item, int) or item not in NOTIFICATIONS
    ]
    if problems:
        errors["notification"] = problems
    return tuple(value)


def _check_advances(value: Any, errors: dict[str, list[str]]) -> None:
    """`advances.headers` (strings) and `advances.authentication` [FS] "POST /scans"."""
    if not isinstance(value, dict):
        errors["advances"] = ["Expected a dictionary of items."]
        return
    headers = value.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        errors["advances"] = ["headers: Expected a dictionary of strings."]
    auth = value.get("authentication")
    if auth is not None and (
        not isinstance(auth, dict) or auth.get("authentication_method") not in AUTH_METHODS
    ):
        errors["advances"] = [f"authentication_method: must be one of {', '.join(AUTH_METHODS)}."]


def check_scan(
    body: Mapping[str, Any], targets: Mapping[str, Target]
) -> tuple[Target, int, tuple[int, ...]]:
    """DRF-style checks of a `POST /scans` body; every problem at once (INFERRED [FS])."""
    errors: dict[str, list[str]] = {}
    target = _check_target(body.get("target"), targets, errors)
    profile = _check_pk(body, "profile", PROFILES, errors, required=True)
    notification = _check_notification(body.get("notification", []), errors)
    if not isinstance(body.get("description", ""), str):
        errors["description"] = ["Not a valid string."]
    _check_advances(body.get("advances", {}), errors)
    if errors or target is None or profile is None:
        raise field_errors(errors)
    return target, profile, notification


def _check_target(
    value: Any, targets: Mapping[str, Target], errors: dict[str, list[str]]
) -> Target | None:
    if value is None:
        errors["target"] = ["This field is required."]
        return None
    target = targets.get(str(value)) if isinstance(value, str) else None
    if target is None:
        errors["target"] = [f'Invalid pk "{value}" - object does not exist.']
    return target
