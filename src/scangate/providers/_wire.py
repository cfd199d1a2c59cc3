"""The vendor toolkit: reading untrusted JSON leniently, the same way in every adapter.

A vendor's answer is data from outside: a field may be missing, null, of another type, huge or
hostile. These getters never raise on such a value; they give a default, and the adapter decides
what a missing value means (design §1: "per-item problems are data"). One fix here (an
`OverflowError`, a time past year 9999) reaches every adapter at once.
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests

from scangate.http import BODY_IN_ERRORS
from scangate.model import Severity

T = TypeVar("T")
R = TypeVar("R")

# Scalars.


def text(value: Any, default: str = "") -> str:
    """A scalar as stripped text; anything else (None, objects, lists) as `default`."""
    if isinstance(value, bool) or value is None or isinstance(value, (Mapping, list)):
        return default
    return str(value).strip() or default


def number(value: Any) -> float | None:
    """A finite number (`7`, `"7.5"`); None for anything else, booleans included."""
    if isinstance(value, bool):
        return None
    try:
        result = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer beyond a float
        return None
    return result if math.isfinite(result) else None


def integer(value: Any) -> int | None:
    """`number` cut to an integer (`"7.9"` is 7)."""
    result = number(value)
    return int(result) if result is not None else None


def clamped(value: Any, low: float, high: float) -> float | None:
    """`number` held within `low`..`high` (a report never shows 250 % done or CVSS 11)."""
    result = number(value)
    return None if result is None else min(high, max(low, result))


def percent(value: Any) -> float | None:
    """A progress percentage clamped to 0..100."""
    return clamped(value, 0.0, 100.0)


def cvss(value: Any) -> float | None:
    """A CVSS score clamped to its range 0..10."""
    return clamped(value, 0.0, 10.0)


def cvss_severity(score: float) -> Severity:
    """The CVSS v3 qualitative band of `score` (FIRST CVSS v3.1 specification, section 5)."""
    bands = ((9.0, Severity.CRITICAL), (7.0, Severity.HIGH), (4.0, Severity.MEDIUM))
    default = Severity.LOW if score > 0 else Severity.INFO
    return next((sev for floor, sev in bands if score >= floor), default)


# Containers.


def mapping(value: Any) -> Mapping[str, Any]:
    """An object, or an empty one."""
    return value if isinstance(value, Mapping) else {}


def items(value: Any) -> list[Any]:
    """A list, or an empty one."""
    return value if isinstance(value, list) else []


def objects(value: Any) -> list[Mapping[str, Any]]:
    """The objects of a list (anything else in it is dropped)."""
    return [item for item in items(value) if isinstance(item, Mapping)]


def strings(value: Any) -> tuple[str, ...]:
    """The non-empty texts of a list."""
    return tuple(found for found in (text(item) for item in items(value)) if found)


def first_text(body: Mapping[str, Any], keys: Sequence[str]) -> str:
    """The first non-empty text among `keys` of `body`."""
    return next((found for found in (text(body.get(key)) for key in keys) if found), "")


# Times.


def iso_time(value: Any, *, zone: tzinfo = UTC, zulu: str = "Zz") -> datetime | None:
    """An ISO-8601 time (`2025-12-21T10:00:00Z`) as an aware UTC datetime; None if unusable.

    A time without an offset is in `zone`; the characters of `zulu` mean UTC.
    """
    found = text(value)
    if not found:
        return None
    for letter in zulu:
        found = found.replace(letter, "+00:00")
    try:
        parsed = datetime.fromisoformat(found)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        return None  # year 1 or 9999 with an offset that leaves the range


def iso(moment: datetime) -> str:
    """`moment` as `2025-12-21T10:00:00Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# Hosts.


def url_host(target: str) -> str:
    """The host a URL or address names (`https://a.example.com/x` gives `a.example.com`), else
    the text itself: a search keyword that finds the target and its near misses."""
    found = target.strip()
    try:
        host = urlsplit(found if "://" in found else "//" + found).hostname
    except ValueError:
        host = None
    return host or found


def normalize_host(target: str) -> str:
    """The host a target names, for comparing targets (design §9 "Targets and defaults").

    `https://Example.com:443/x` and `example.com` give `example.com`; IPs stay as they are;
    a CIDR keeps its prefix length (`10.0.0.0/24`).
    """
    found = target.strip().lower()
    url = found
    if "://" not in found:
        head, _, rest = found.partition("/")
        if rest.isdigit():
            return found
        url = "//" + head
    try:
        host = urlsplit(url).hostname
    except ValueError:
        host = None
    return (host or found).rstrip(".")


# Error bodies (each adapter's `error_detail`).


def body_start(response: requests.Response) -> str:
    """The start of a response body, for an error without a readable message."""
    return response.text[:BODY_IN_ERRORS].strip()


def with_code(message: str, code: str) -> str:
    """`message (code)`, or whichever of the two there is."""
    if message and code:
        return f"{message} ({code})"
    return message or code


# Threads.


def parallel_map(fn: Callable[[T], R], inputs: Sequence[T], workers: int) -> list[R]:
    """`[fn(item) for item in inputs]`, `workers` at a time, in order; the first error is raised.

    Daemon threads rather than `concurrent.futures`: its workers are joined at interpreter exit,
    so one hung request would hold the process past the 5-second exit budget after SIGTERM
    (design §5). The main thread waits in short joins, so signals still reach it.
    """
    results: list[Any] = [None] * len(inputs)
    tasks: queue.SimpleQueue[int] = queue.SimpleQueue()
    for index in range(len(inputs)):
        tasks.put(index)
    errors: list[BaseException] = []

    def work() -> None:
        while not errors:
            try:
                index = tasks.get_nowait()
            except queue.Empty:
                return
            try:
                results[index] = fn(inputs[index])
            except BaseException as exc:  # handed to the caller below, whatever it is
                errors.append(exc)

    threads = [
        threading.Thread(target=work, name=f"scangate-fetch-{n}", daemon=True)
        for n in range(max(1, min(workers, len(inputs))))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.25)
    if errors:
        raise errors[0]
    return results


WAKE = 0.25
"""Longest single wait of the main thread for a worker (seconds): signals are handled between."""


def ordered_map(
    fn: Callable[[T], R],
    inputs: Iterable[T],
    workers: int,
    *,
    admit: Callable[[int], bool] | None = None,
    ahead: int | None = None,
) -> Generator[R, None, None]:
    """`fn(item)` for each of `inputs`, `workers` at a time, yielded lazily in input order.

    Unlike `parallel_map` it holds no more than `ahead` results (default twice `workers`)
    beyond the one the caller is at, counting the calls running: a list of a thousand pages is
    read in a bounded window, not kept whole. Before each call `admit(running)` says whether
    one more may start beside `running` calls (a request budget running short); none running
    always may, so a refusing `admit` means one at a time, never a stall.

    An error is raised when its turn comes (what came before it is yielded first), and no new
    call starts after it. Closing the iterator (the caller stops or raises) stops handing out
    work; calls still running end in their daemon threads and their results are dropped.
    Daemon threads and short waits for the reasons `parallel_map` gives.
    """
    limit = max(1, workers)
    window = max(limit, ahead if ahead is not None else 2 * limit)
    source = iter(inputs)
    done: dict[int, tuple[bool, Any]] = {}
    """Index to (succeeded, result or error), until yielded."""
    state = {"next": 0, "running": 0, "wanted": 0, "over": False}
    """`next` index to hand out, calls `running`, index the caller `wanted` next, and `over`:
    no more work is handed out (inputs exhausted, an error, or the caller gone)."""
    ready = threading.Condition()

    def claim() -> tuple[int, T] | None:
        """The next index and item this worker may call, waiting for room; None: stop."""
        with ready:
            while not state["over"]:
                full = state["next"] - state["wanted"] >= window
                refused = state["running"] > 0 and (
                    state["running"] >= limit or (admit is not None and not admit(state["running"]))
                )
                if full or refused:
                    ready.wait(WAKE)  # woken when a call ends or the caller takes a result
                    continue
                try:
                    item = next(source)
                except StopIteration:
                    state["over"] = True
                    ready.notify_all()
                    return None
                index = state["next"]
                state["next"] += 1
                state["running"] += 1
                return index, item
            return None

    def work() -> None:
        while (claimed := claim()) is not None:
            index, item = claimed
            try:
                outcome: tuple[bool, Any] = (True, fn(item))
            except BaseException as exc:  # handed to the caller in its turn, whatever it is
                outcome = (False, exc)
            with ready:
                done[index] = outcome
                state["running"] -= 1
                state["over"] = state["over"] or not outcome[0]
                ready.notify_all()

    threads = [
        threading.Thread(target=work, name=f"scangate-fetch-{n}", daemon=True) for n in range(limit)
    ]
    for thread in threads:
        thread.start()
    try:
        while True:
            with ready:
                while state["wanted"] not in done:
                    if state["over"] and state["wanted"] >= state["next"]:
                        return  # every call handed out has been yielded
                    ready.wait(WAKE)
                succeeded, value = done.pop(state["wanted"])
                state["wanted"] += 1
                ready.notify_all()
            if not succeeded:
                raise value
            yield value
    finally:
        with ready:
            state["over"] = True
            ready.notify_all()
