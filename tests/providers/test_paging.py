"""The paging guard and the shortfall diagnosis every adapter shares."""

from __future__ import annotations

import pytest
from conftest import make_finding

from scangate.errors import ExitStatus
from scangate.model import Severity
from scangate.providers import paging
from scangate.providers.paging import PAGE_MARGIN, PageGuard, PagingError, by_severity, shortfall


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
