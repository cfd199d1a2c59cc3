"""Reading paged lists to the provider's own end, and telling a short result from a whole one.

Every adapter reads a paged list until the provider says it is over (a null `next`, the last
announced page, the announced total, an empty page). No fixed number of pages ends a read: a
cap that stops early hides whatever lies beyond it. A server that would keep a reader busy
forever (a `next` seen before, a page equal to the one before, far more pages than it
announced) ends the read with a `PagingError` naming the cause, never a quietly short list.

Once the first page has said how long a list is, `read_pages` reads the pages it announced a
few at a time (`PAGE_WORKERS`), within the provider's request budget (`RateRoom`), and hands
them over in page order, so the loop checks above see the same pages in the same order.

`shortfall` then compares what a provider announced (totals, per-severity or per-category
counts) with what was fetched; a result that falls short is incomplete (`ScanResult.shortfall`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Generator, Hashable, Iterable, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from typing import NoReturn, TypeVar

from scangate.errors import UnexpectedResponseError
from scangate.model import Finding, Severity
from scangate.polling import PollPolicy
from scangate.providers import _wire as wire
from scangate.ratelimit import RateLimitState
from scangate.text import one_line

P = TypeVar("P")

PAGE_MARGIN = 5
"""Pages tolerated beyond the count a provider announced (it may grow while a scan runs)."""
UNANNOUNCED_PAGES = 10_000
"""Most pages of any list, and of one that announces neither a total nor a page count: far
beyond any real list (a million items at 100 a page), reached only by a server that never
ends or keeps announcing more."""
SHORTFALL_PARTS = 5
"""Disagreeing counts named in one shortfall; the rest are summed up."""
PAGE_WORKERS = 4
"""Pages of one list read at once: enough to hide a provider's latency (20 ms a page is 20 s
over a thousand pages, one after another), few enough to be a polite client; within
`http_retry.POOL_SIZE`, so that every worker keeps its own connection."""
RATE_RESERVE = PollPolicy.rate_reserve
"""`X-RateLimit-Remaining` requests the concurrent reads leave to the poller and the cancel
(the same reserve the poll schedule keeps)."""


class PagingError(UnexpectedResponseError):
    """A paged list does not end: the provider repeats pages or pages past what it announced."""


@dataclass
class PageGuard:
    """Counts the pages of one paged read and raises `PagingError` when they loop.

    Call `page` once per page read, with a signature of its items (ids, or the items
    themselves as a hashable value), the total or page count the page announced, and the link
    it came from (DRF's `next`), when there is one.
    """

    provider: str
    """Display name, for the diagnosis (`CyberOrigen`)."""
    what: str
    """The list being read, for the diagnosis (`scans/scan_1/findings`)."""
    per_page: int
    pages: int = 0
    """Pages read so far."""
    _previous: Hashable | None = None
    _links: set[str] = field(default_factory=set)

    def page(
        self,
        signature: Hashable,
        *,
        total: int | None = None,
        pages: int | None = None,
        link: str | None = None,
    ) -> None:
        """Count one page; raise `PagingError` when it proves the list will not end."""
        self.pages += 1
        if link is not None:
            if link in self._links:
                self.fail(f"`next` leads back to a page already read ({one_line(link, 200)})")
            self._links.add(link)
        if self.pages > 1 and signature == self._previous:
            self.fail(f"page {self.pages} repeats page {self.pages - 1}")
        self._previous = signature
        announced = self.announced(total, pages)
        if announced is None:
            if self.pages > UNANNOUNCED_PAGES:
                self.fail(f"{self.pages} pages read and no end announced")
        elif self.pages > min(announced + PAGE_MARGIN, UNANNOUNCED_PAGES):
            self.fail(f"{self.pages} pages read, far more than the {announced} it announced")

    def announced(self, total: int | None, pages: int | None) -> int | None:
        """The page count a page announced: `pages`, or what `total` takes (the larger)."""
        counts = [n for n in (pages,) if n is not None and n >= 0]
        if total is not None and total >= 0:
            counts.append(math.ceil(total / max(1, self.per_page)))
        return max(counts) if counts else None

    def repeated(self) -> NoReturn:
        """Raise for a page that brought only items read before (a server ignoring `page`)."""
        self.fail(f"page {self.pages} lists only items already read")

    def fail(self, cause: str) -> NoReturn:
        """Raise the `PagingError` for this read, naming `cause`."""
        raise PagingError(
            f"{self.provider} {self.what}: the list does not end ({cause})",
            hint="the provider's paging is broken; scangate stops rather than gate on part of "
            "the list. Try again later, or report it to the provider",
        )


def shortfall(
    provider: str, counts: Iterable[tuple[str, int | None, int]], *, unreadable: int = 0
) -> str:
    """One line naming every count `provider` announced that the fetched items fall short of.

    `counts` holds (what, announced, fetched) triples, `what` a plural noun phrase (`findings`,
    `high findings`); an announced count of None was not announced. Fetching more than
    announced is no shortfall (providers may leave triaged items out of their counts);
    fetching fewer is. `unreadable` items were fetched but could not be used. Empty when
    nothing falls short.
    """
    parts = [
        f"{provider} announced {announced} {what} but {fetched} were fetched"
        for what, announced, fetched in counts
        if announced is not None and fetched < announced
    ]
    if len(parts) > SHORTFALL_PARTS:
        parts[SHORTFALL_PARTS:] = [f"{len(parts) - SHORTFALL_PARTS} more counts fall short"]
    if unreadable:
        parts.append(f"{unreadable} of the findings {provider} listed could not be read")
    return "; ".join(parts)


def by_severity(
    announced: Mapping[Severity, int | None], findings: Iterable[Finding]
) -> list[tuple[str, int | None, int]]:
    """(what, announced, fetched) triples for `shortfall` from per-severity counts.

    Each compares the findings of a severity *or above*: a finding the provider rates higher
    than it counted is no loss, one it rates lower (or one missing) is. A level is named only
    when more is missing there than at the levels above it. A severity the provider does not
    count adds nothing to the announced side, so it can only make the check laxer.
    """
    fetched = Counter(finding.severity for finding in findings)
    counts: list[tuple[str, int | None, int]] = []
    claimed = seen = missing = 0
    for severity in sorted(Severity, reverse=True):
        number = announced.get(severity)
        claimed += number or 0
        seen += fetched[severity]
        if number is None or claimed - seen <= missing:
            continue  # nothing more is missing at this level than at the one above
        missing = claimed - seen
        what = (
            f"{severity.label} findings"
            if severity is max(Severity)
            else f"findings of {severity.label} severity or above"
        )
        counts.append((what, claimed, seen))
    return counts


def last_page(
    page: int, size: int, read: int, total: int | None, pages: int | None, page_size: int
) -> bool:
    """True once a non-empty page `page` of `size` items ends its list, `read` items read.

    Every announced end must be reached (the `total` read and the last of `pages` read);
    a list that announces neither ends with a page shorter than `page_size`.
    """
    if total is None and pages is None:
        return size < page_size
    return (total is None or read >= total) and (pages is None or page >= pages)


@dataclass(frozen=True)
class RateRoom:
    """Whether one more page request may go out beside those running, within the budget.

    One more goes out while `X-RateLimit-Remaining` leaves the running ones and `reserve`
    untouched, and no `Retry-After` holds; otherwise pages are read one at a time (see
    `wire.ordered_map`) and the HTTP client's own waiting (for `Retry-After` or the window's
    reset) paces them, so a short budget costs at most one refused request, never a burst.
    """

    rate: Callable[[], RateLimitState]
    """A consistent copy of what the provider last said (`HttpClient.rate_state`)."""
    clock: Callable[[], float]
    """Wall-clock epoch seconds (the client's clock), for `Retry-After`."""
    reserve: int = RATE_RESERVE

    def __call__(self, running: int) -> bool:
        """True when a request may start beside `running` ones."""
        state = self.rate()
        if state.held_for(self.clock()) > 0:
            return False
        if state.remaining is None:
            return True  # a provider without the headers: `PAGE_WORKERS` is the only bound
        reserve = self.reserve
        if state.limit:
            # As the poll schedule does: a 10-a-window plan cannot keep 5 back.
            reserve = min(reserve, max(1, state.limit // 5))
        return state.remaining - running > reserve


def read_pages(
    fetch: Callable[[int], P],
    announced: Callable[[P], int | None],
    *,
    workers: int = PAGE_WORKERS,
    admit: Callable[[int], bool] | None = None,
) -> Generator[tuple[int, P], None, None]:
    """(page number, page) from page 1 on, in order, for as long as the caller asks.

    Page 1 is read alone; the pages it `announced` (a count of pages, None when unknown) are
    then read up to `workers` at a time, `admit` permitting (a `RateRoom`), and the pages past
    them one at a time, as a list that grew while it was read needs. The caller ends the read
    (the list's end, a `PageGuard` failure) by closing the iterator or leaving its loop: at
    most a window of pages read ahead is wasted.
    """
    first = fetch(1)
    yield 1, first
    last = min(announced(first) or 1, UNANNOUNCED_PAGES + PAGE_MARGIN + 1)
    if last > 1:
        window = wire.ordered_map(fetch, range(2, last + 1), workers, admit=admit)
        with closing(window):
            yield from zip(range(2, last + 1), window, strict=False)
    page = max(last, 1)
    while True:
        page += 1
        yield page, fetch(page)
