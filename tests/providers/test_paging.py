"""The paging guard and the shortfall diagnosis every adapter shares."""

from __future__ import annotations

import threading
import time

import pytest
from conftest import make_finding

from scangate.errors import ExitStatus
from scangate.model import Severity
from scangate.providers import _wire as wire
from scangate.providers import paging
from scangate.providers.paging import PAGE_MARGIN, PageGuard, PagingError, by_severity, shortfall
from scangate.ratelimit import RateLimitState

NOW = 1_766_311_200.0


def guard() -> PageGuard:
    return PageGuard("CyberOrigen", "scans/s1/findings", 100)


def test_pages_within_what_was_announced_pass() -> None:
    pages = guard()
    for n in range(3 + PAGE_MARGIN):
        pages.page(("page", n), total=250)
    assert pages.pages == 3 + PAGE_MARGIN


def test_far_more_pages_than_announced_is_a_provider_error() -> None:
    pages = guard()
    for n in range(2 + PAGE_MARGIN):
        pages.page(("page", n), pages=2)
    with pytest.raises(PagingError) as err:
        pages.page(("page", "one more"), pages=2)
    assert err.value.exit_status == ExitStatus.PROVIDER_ERROR
    assert err.value.message == (
        "CyberOrigen scans/s1/findings: the list does not end "
        f"({3 + PAGE_MARGIN} pages read, far more than the 2 it announced)"
    )
    assert "stops rather than gate on part of the list" in err.value.diagnostics()


def test_a_page_equal_to_the_one_before_is_a_loop() -> None:
    pages = guard()
    pages.page(("a", "b"))
    with pytest.raises(PagingError, match=r"\(page 2 repeats page 1\)"):
        pages.page(("a", "b"))


def test_a_next_seen_before_is_a_loop() -> None:
    pages = PageGuard("CyStack", "targets", 10)
    pages.page(("a",), link="https://api/targets?page=2")
    pages.page(("b",), link="https://api/targets?page=3")
    with pytest.raises(PagingError, match=r"`next` leads back to a page already read"):
        pages.page(("c",), link="https://api/targets?page=2")


def test_a_list_announcing_nothing_ends_only_at_a_generous_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(paging, "UNANNOUNCED_PAGES", 50)
    pages = guard()
    for n in range(50):
        pages.page(n)
    with pytest.raises(PagingError, match=r"51 pages read and no end announced"):
        pages.page(50)


def test_shortfall_names_both_numbers_and_only_what_falls_short() -> None:
    counts = [("findings", 100_000, 99_900), ("high findings", 3, 5), ("low findings", None, 0)]
    assert shortfall("CyberOrigen", counts) == (
        "CyberOrigen announced 100000 findings but 99900 were fetched"
    )
    assert shortfall("CyberOrigen", [("findings", 2, 2)]) == ""
    assert shortfall("CyStack", [("vulnerabilities", 3, 3)], unreadable=1) == (
        "1 of the findings CyStack listed could not be read"
    )


def test_shortfall_sums_up_past_a_few_counts() -> None:
    counts = [(f"findings in category {n}", 2, 1) for n in range(8)]
    text = shortfall("NCP", counts)
    assert text.count("announced") == paging.SHORTFALL_PARTS
    assert text.endswith("; 3 more counts fall short")


def test_severity_counts_compare_this_severity_or_above() -> None:
    findings = [make_finding(0, severity=Severity.CRITICAL), make_finding(1, severity=Severity.LOW)]
    announced = {Severity.CRITICAL: 0, Severity.HIGH: 1, Severity.MEDIUM: 0, Severity.LOW: 1}
    # The high counted is fetched as critical: nothing is missing at any level.
    assert shortfall("X", by_severity(announced, findings)) == ""
    # A high fetched as low is missing at "high or above" (and no more below it).
    findings = [make_finding(1, severity=Severity.LOW), make_finding(2, severity=Severity.LOW)]
    assert shortfall("X", by_severity(announced, findings)) == (
        "X announced 1 findings of high severity or above but 0 were fetched"
    )


# Reading pages a few at a time (`_wire.ordered_map`, `paging.read_pages`, `paging.RateRoom`).


class Recorder:
    """A fake page fetch: each call waits until released, and how many ran at once is kept."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.started: list[int] = []
        self.fail_at = fail_at

    def __call__(self, page: int) -> int:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.started.append(page)
        # Later pages end first: the caller must still get them in order.
        time.sleep(0.002 * ((7 * page) % 5))
        with self.lock:
            self.running -= 1
        if page == self.fail_at:
            raise PagingError(f"page {page} broke")
        return page * 10


def test_ordered_map_yields_in_input_order_with_at_most_workers_running() -> None:
    fetch = Recorder()
    assert list(wire.ordered_map(fetch, range(40), 4)) == [n * 10 for n in range(40)]
    assert 1 < fetch.most <= 4
    assert sorted(fetch.started) == list(range(40))


def test_ordered_map_reads_at_most_its_window_ahead_of_the_caller() -> None:
    """What the caller has not taken yet is bounded: a thousand pages are never held at once."""
    fetch = Recorder()
    window = wire.ordered_map(fetch, range(1000), 4, ahead=6)
    assert next(window) == 0
    time.sleep(0.1)  # the workers run on as far as the window lets them
    assert len(fetch.started) <= 1 + 6
    window.close()
    time.sleep(0.05)
    assert len(fetch.started) <= 1 + 6  # closed: nothing more is handed out


def test_ordered_map_raises_an_error_in_its_turn_and_starts_nothing_after_it() -> None:
    fetch = Recorder(fail_at=5)
    window = wire.ordered_map(fetch, range(100), 3)
    # What came before the error is handed over first.
    assert [next(window) for _ in range(5)] == [0, 10, 20, 30, 40]
    with pytest.raises(PagingError, match="page 5 broke"):
        next(window)
    assert max(fetch.started) < 5 + 2 * 3 + 1


def test_ordered_map_runs_one_at_a_time_while_admit_refuses() -> None:
    fetch = Recorder()
    asked: list[int] = []

    def admit(running: int) -> bool:
        asked.append(running)
        return False

    assert list(wire.ordered_map(fetch, range(12), 4, admit=admit)) == [n * 10 for n in range(12)]
    assert fetch.most == 1 and asked and set(asked) == {1}


def test_read_pages_reads_page_one_then_the_announced_pages_at_once_then_one_at_a_time() -> None:
    fetch = Recorder()
    pages = paging.read_pages(fetch, lambda first: 9, workers=3)
    got = [next(pages) for _ in range(12)]
    pages.close()
    assert got == [(n, n * 10) for n in range(1, 13)]
    assert fetch.started[0] == 1 and 1 < fetch.most <= 3
    # Past the announced 9 pages, no page is read before the caller asks for it.
    assert sorted(fetch.started) == list(range(1, 13))


def test_read_pages_of_a_single_page_list_reads_no_other_page() -> None:
    fetch = Recorder()
    pages = paging.read_pages(fetch, lambda first: 1)
    assert next(pages) == (1, 10)
    pages.close()
    assert fetch.started == [1]


def rate(remaining: int | None, limit: int | None = 500, hold: float = 0.0) -> RateLimitState:
    return RateLimitState(limit=limit, remaining=remaining, reset_at=None, hold_until=hold)


@pytest.mark.parametrize(
    ("state", "running", "admitted"),
    [
        (rate(None), 3, True),  # no headers: only the pool bounds the reads
        (rate(10), 4, True),  # 10 left: 4 running + this one + the reserve of 5 fit
        (rate(10), 5, False),
        (rate(6), 1, False),  # short: one at a time, the client's waiting paces it
        (rate(100, hold=NOW + 5), 1, False),  # a Retry-After hold: one at a time
        (rate(4, limit=10), 1, True),  # a 10-a-window plan keeps 2 back, not 5
        (rate(3, limit=10), 1, False),
    ],
)
def test_rate_room_leaves_the_running_requests_and_the_reserve_untouched(
    state: RateLimitState, running: int, admitted: bool
) -> None:
    room = paging.RateRoom(lambda: state, lambda: NOW)
    assert room(running) is admitted
    assert paging.RATE_RESERVE == 5
