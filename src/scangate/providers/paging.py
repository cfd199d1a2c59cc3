"""Reading paged lists to the provider's own end, and telling a short result from a whole one.

Every adapter reads a paged list until the provider says it is over (a null `next`, the last
announced page, the announced total, an empty page). No fixed number of pages ends a read: a
cap that stops early hides whatever lies beyond it. A server that would keep a reader busy
forever (a `next` seen before, a page equal to the one before, far more pages than it
announced) ends the read with a `PagingError` naming the cause, never a quietly short list.

`shortfall` then compares what a provider announced (totals, per-severity or per-category
counts) with what was fetched; a result that falls short is incomplete (`ScanResult.shortfall`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import NoReturn

from scangate.errors import UnexpectedResponseError
from scangate.model import Finding, Severity
from scangate.text import one_line

PAGE_MARGIN = 5
"""Pages tolerated beyond the count a provider announced (it may grow while a scan runs)."""
UNANNOUNCED_PAGES = 10_000
"""Most pages of any list, and of one that announces neither a total nor a page count: far
beyond any real list (a million items at 100 a page), reached only by a server that never
ends or keeps announcing more."""
SHORTFALL_PARTS = 5
"""Disagreeing counts named in one shortfall; the rest are summed up."""


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
