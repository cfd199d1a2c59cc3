"""Reading CyStack's answers: DRF pages and errors, hrefs, times, vulnerability details.

Facts come from `providers/cystack.md` (the "fact sheet"); section names are cited in comments.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from scangate.errors import UnexpectedResponseError
from scangate.model import Severity
from scangate.providers import _wire as wire
from scangate.providers.paging import PageGuard
from scangate.text import one_line

LIST_TIME = "%H:%M:%S %d/%m/%Y"
"""`start_time` in scan lists, e.g. `13:58:01 20/11/2017` (fact sheet "GET /scans — list")."""
LIVE = ("Queued", "Running")
"""Statuses of a scan that is still going to scan (fact sheet "Scan status model")."""

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_MESSAGE_DEPTH = 20
"""Levels of a DRF error body read for its message (see `messages`)."""
_SEVERITIES = {
    "high": Severity.HIGH,
    "medium": Severity.MEDIUM,
    "low": Severity.LOW,
    "information": Severity.INFO,
}
"""The documented scale; CyStack has no critical (fact sheet "Severity scale")."""


def _int_text(value: Any) -> int | None:
    """An integer written as one (`"3"`, `3`); `"3.5"` and `True` are none."""
    if isinstance(value, bool):
        return None
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def address_key(address: str) -> tuple[str, str, int | None, str, str]:
    """What makes two target addresses the same: case of scheme and host, a default port and
    a trailing `/` aside, they must be equal (`https://A.com:443/` equals `https://a.com`)."""
    text = address.strip()
    try:
        parts = urlsplit(text if "://" in text else "//" + text)
        port = parts.port
    except ValueError:
        return ("", text.lower(), None, "", "")
    scheme = parts.scheme.lower()
    if port is not None and _DEFAULT_PORTS.get(scheme) == port:
        port = None
    return (scheme, (parts.hostname or "").lower(), port, parts.path.rstrip("/"), parts.query)


def describe_target(item: Mapping[str, Any]) -> str:
    address = one_line(wire.text(item.get("address"), "(no address)"), 120)
    return f"{address} ({wire.text(item.get('id'))})"


def page_parts(body: Any, path: str) -> tuple[list[Mapping[str, Any]], int | None, Any]:
    """Split a DRF page into (objects, count, next); a bare array is accepted too."""
    if isinstance(body, list):
        return [item for item in body if isinstance(item, Mapping)], None, None
    if isinstance(body, Mapping) and isinstance(body.get("results"), list):
        results = [item for item in body["results"] if isinstance(item, Mapping)]
        return results, _int_text(body.get("count")), body.get("next")
    raise UnexpectedResponseError(f"cystack {path}: the answer has no `results` list")


def next_page(following: Any, page: int, guard: PageGuard) -> int | None:
    """The page number `next` names; None at the end (a null `next`).

    A `next` naming no page after `page` would read the same pages again: `PagingError`.
    """
    if not isinstance(following, str) or not following:
        return None
    values = parse_qs(urlsplit(following).query).get("page", [""])
    number = _int_text(values[0])
    if number is None or number <= page:
        guard.fail(f"`next` does not lead past page {page}: {one_line(following, 200)}")
    return number


def item_key(item: Mapping[str, Any]) -> str:
    return (
        wire.text(item.get("id"))
        or wire.text(item.get("href"))
        or repr(sorted(item.items(), key=str))
    )


def href_id(item: Mapping[str, Any]) -> str:
    """A scan list item's id: it has none, only `href` (fact sheet "GET /scans — list")."""
    return id_in(wire.text(item.get("href")), "scans") or wire.text(item.get("id"))


def target_id(item: Mapping[str, Any]) -> str:
    return wire.text(wire.mapping(item.get("target")).get("id"))


def id_in(href: str, collection: str) -> str:
    """The id in `/v1/<collection>/<id>` (or a full URL of it); '' when there is none."""
    parts = [part for part in urlsplit(href.strip()).path.split("/") if part]
    if len(parts) >= 2 and parts[-2] == collection and _ID.fullmatch(parts[-1]):
        return parts[-1]
    return ""


def started_by(detail: Mapping[str, Any], marker: str, since: float) -> bool:
    """True for the scan an attempt with `marker` created (see `find_started`)."""
    description = wire.text(detail.get("description"))
    if marker in description:
        return True
    if "scangate-" in description:
        return False  # another scangate run's scan
    started = parse_time(detail.get("start_time"))
    if started is None:
        return wire.text(detail.get("status")) in LIVE  # a queued scan may not have started yet
    return started.timestamp() >= since


def severity_of(word: str) -> Severity | None:
    """The documented words, then other spellings (`Critical`) rather than losing a finding."""
    if word.lower() in _SEVERITIES:
        return _SEVERITIES[word.lower()]
    try:
        return Severity.parse(word)
    except ValueError:
        return None


def scan_details(body: Mapping[str, Any]) -> dict[str, str]:
    target = wire.mapping(body.get("target"))
    details = {
        "profile": wire.text(body.get("profile")),
        "target_id": wire.text(target.get("id")),
        "target_address": wire.text(target.get("address")),
        "target_ip": wire.text(target.get("ip")),
    }
    return {key: value for key, value in details.items() if value}


def references(value: Any) -> list[tuple[str, str]]:
    """`references` as (title, url) pairs (fact sheet: `[{url, title}]`)."""
    pairs = []
    for item in wire.items(value):
        if isinstance(item, Mapping):
            pairs.append((wire.text(item.get("title")), wire.text(item.get("url"))))
        elif wire.text(item):
            pairs.append(("", wire.text(item)))
    return pairs


def ids_in(
    pattern: re.Pattern[str], references: list[tuple[str, str]], norm: Callable[[str], str]
) -> tuple[str, ...]:
    """CVE or CWE ids named by the references' titles or URLs.

    No such field is documented; a reference such as `{"title": "CWE-79", ...}` is the only
    place CyStack could carry one, so it is read from there when present.
    """
    found: dict[str, None] = {}
    for title, url in references:
        for match in pattern.finditer(f"{title} {url}"):
            found[norm(match.group(match.lastindex or 0))] = None
    return tuple(found)


def description_of(raw: Mapping[str, Any], urls: Iterable[str]) -> str:
    # S1 splits `long_description` out of S0's single `description` (fact sheet "detail").
    parts = [wire.text(raw.get("description")), wire.text(raw.get("long_description"))]
    listed = list(urls)
    if len(listed) > 1:
        parts.append("Affected URLs:\n" + "\n".join(listed))
    return "\n\n".join(dict.fromkeys(part for part in parts if part))


def parse_time(value: Any) -> datetime | None:
    """A CyStack time as an aware UTC datetime; None if unusable.

    Scan details give Unix seconds and scan lists `HH:MM:SS DD/MM/YYYY` (fact sheet "GET
    /scans/{scan_id}"); the list's time zone is not documented and is read as UTC.
    """
    if isinstance(value, bool):
        return None
    number = value if isinstance(value, (int, float)) else _number_text(value)
    if number is not None:
        try:
            return datetime.fromtimestamp(number, UTC) if number > 0 else None
        except (OverflowError, OSError, ValueError):
            return None  # infinite, or past the years a `datetime` can hold
    text = wire.text(value)
    try:
        listed = datetime.strptime(text.replace("Z", "+00:00"), LIST_TIME)
    except ValueError:
        return wire.iso_time(text, zulu="Z")
    return listed.replace(tzinfo=UTC)


def _number_text(value: Any) -> float | None:
    text = wire.text(value)
    try:
        return float(text) if text and text.replace(".", "", 1).isdigit() else None
    except ValueError:
        return None


def messages(value: Any, depth: int = 0) -> str:
    """DRF error values: a string, a list of strings, or nested field errors.

    Nesting deeper than `_MESSAGE_DEPTH` is not read: a hostile body could nest past
    Python's recursion limit, and no real error message is that deep.
    """
    if depth > _MESSAGE_DEPTH:
        return ""
    if isinstance(value, list):
        return " ".join(text for text in (messages(v, depth + 1) for v in value) if text)
    if isinstance(value, Mapping):
        return "; ".join(f"{key}: {messages(item, depth + 1)}" for key, item in value.items())
    return wire.text(value)
