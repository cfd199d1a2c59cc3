"""The shared HTTP client: headers, timeouts, retries, rate limits, size caps, redirects, secrets.

Most tests fake the network with `responses`; redirects and dropped connections use tiny real
HTTP servers on 127.0.0.1 ("localhost" names the second host of a cross-host redirect).
"""

from __future__ import annotations

import logging
import random
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
import responses
from responses import matchers

from scangate import __version__
from scangate import http as http_module
from scangate.errors import (
    AmbiguousStartError,
    ExitStatus,
    ProviderAuthError,
    ProviderBusyError,
    ProviderError,
    ProviderRateLimitError,
    ProviderUnavailableError,
    UnexpectedResponseError,
)
from scangate.http import (
    DEFAULT_TIMEOUT,
    Connection,
    HttpClient,
    HttpContract,
    Refusal,
    RefusalHook,
    RefusalKind,
)
from scangate.http_retry import POOL_SIZE
from scangate.providers.paging import PAGE_WORKERS
from scangate.ratelimit import parse_retry_after, rate_wait
from scangate.redact import REDACTED, Redactor

BASE = "https://api.scanner.test/v1"
KEY = "sk_live_4f3e2d1c0b9a8877"
NOW = 1_766_311_200.0
"""2025-12-21T10:00:00Z on the fake wall clock."""


class Fake:
    """A fake wall clock and the sleeps a client asked for."""

    def __init__(self) -> None:
        self.now = NOW
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake() -> Fake:
    """The fake clock and sleep."""
    return Fake()


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    """Every request must be registered, and every registered response used."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


def client(
    fake: Fake,
    base_url: str = BASE,
    *,
    headers: dict[str, str] | None = None,
    renew: Callable[[], bool] | None = None,
    refusal: RefusalHook | None = None,
    time_left: Callable[[], float] | None = None,
    **options: Any,
) -> HttpClient:
    """A client with an API key header (or `headers`, read at each send), no backoff and the
    fake clock; `renew` and `refusal` are the provider's hooks (`HttpContract`)."""
    options.setdefault("backoff", 0)
    sent = {"X-API-Key": KEY} if headers is None else headers
    contract = HttpContract(
        provider="scanner",
        credential_hint="SCANNER_API_KEY",
        authorize=lambda method, url: sent,
        renew=renew,
        refusal=refusal,
    )
    connection = Connection(
        base_url=base_url, redactor=Redactor([KEY]), clock=fake.clock, sleep=fake.sleep, **options
    )
    return HttpClient(connection, contract, time_left=time_left)


# Headers and timeouts.


def test_every_call_carries_user_agent_key_and_timeout(
    mock: responses.RequestsMock, fake: Fake
) -> None:
    headers = matchers.header_matcher(
        {"User-Agent": f"scangate/{__version__}", "Accept": "application/json", "X-API-Key": KEY}
    )
    mock.get(f"{BASE}/scans", json=[], match=[headers])
    mock.post(f"{BASE}/scans", json={"id": "s1"}, status=201, match=[headers])
    mock.delete(f"{BASE}/scans/s1", status=204, match=[headers])
    http = client(fake)
    assert http.json("GET", "scans") == []
    assert http.json("POST", "/scans", json_body={"target": "x"}, creates=True) == {"id": "s1"}
    assert http.request("DELETE", "scans/s1").status_code == 204
    # `responses` keeps the keyword arguments `requests` passed to the adapter.
    sent = [getattr(call.request, "req_kwargs", {}) for call in mock.calls]
    assert [kwargs.get("timeout") for kwargs in sent] == [DEFAULT_TIMEOUT] * 3


def test_an_absolute_url_must_stay_on_the_base_host(fake: Fake) -> None:
    http = client(fake)
    assert http.url(f"{BASE}/scans?page=2") == f"{BASE}/scans?page=2"
    with pytest.raises(UnexpectedResponseError, match="another host"):
        http.url("https://evil.test/v1/scans")


# Retries.


def test_idempotent_calls_retry_5xx(mock: responses.RequestsMock, fake: Fake) -> None:
    get = mock.get(f"{BASE}/scans/1", status=503, json={"detail": "busy"})
    with pytest.raises(ProviderError) as err:
        client(fake, retries=2).json("GET", "scans/1")
    assert get.call_count == 3
    assert "HTTP 503" in err.value.message and "busy" in err.value.message
    assert err.value.exit_status == ExitStatus.PROVIDER_ERROR


def test_idempotent_calls_recover_after_transient_5xx(
    mock: responses.RequestsMock, fake: Fake
) -> None:
    mock.get(f"{BASE}/scans/1", status=502)
    mock.get(f"{BASE}/scans/1", status=504)
    mock.get(f"{BASE}/scans/1", json={"status": "running"})
    assert client(fake).json("GET", "scans/1") == {"status": "running"}
    assert len(mock.calls) == 3


@pytest.mark.parametrize(("idempotent", "calls"), [(None, 1), (True, 5)])
def test_post_is_retried_only_when_declared_idempotent(
    mock: responses.RequestsMock, fake: Fake, idempotent: bool | None, calls: int
) -> None:
    post = mock.post(f"{BASE}/jobs/search", status=500)
    with pytest.raises(ProviderError):
        client(fake).json("POST", "jobs/search", json_body={}, idempotent=idempotent)
    assert post.call_count == calls


@pytest.mark.parametrize(
    ("status", "headers", "error"),
    [
        (500, {"Retry-After": "1"}, AmbiguousStartError),
        (502, {}, AmbiguousStartError),
        (503, {}, AmbiguousStartError),
        (400, {"Retry-After": "1"}, ProviderError),
        (429, {}, ProviderRateLimitError),
    ],
)
def test_a_creating_request_is_never_retried_after_sending(
    mock: responses.RequestsMock,
    fake: Fake,
    status: int,
    headers: dict[str, str],
    error: type[ProviderError],
) -> None:
    post = mock.post(f"{BASE}/scans", status=status, headers=headers)
    with pytest.raises(ProviderError) as err:
        client(fake).json("POST", "scans", json_body={}, creates=True, idempotent=True)
    assert type(err.value) is error
    assert post.call_count == 1


@pytest.mark.parametrize("status", [429, 503])
def test_a_start_refused_with_retry_after_is_definite_and_sent_again_by_urllib3(
    mock: responses.RequestsMock, fake: Fake, status: int
) -> None:
    # 429, or 503 with Retry-After, says that nothing was done (RFC 6585, RFC 9110): urllib3's
    # own retries may send a start again; without a deadline it ends a definite error.
    post = mock.post(f"{BASE}/scans", status=status, headers={"Retry-After": "1"})
    with pytest.raises(ProviderError) as err:
        client(fake, retries=2).json("POST", "scans", json_body={}, creates=True)
    assert post.call_count == 3
    assert not isinstance(err.value, AmbiguousStartError)
    expected = ProviderRateLimitError if status == 429 else ProviderUnavailableError
    assert type(err.value) is expected


def test_malformed_json_is_retried_like_a_5xx(mock: responses.RequestsMock, fake: Fake) -> None:
    mock.get(f"{BASE}/scans/1", body="<html>gateway</html>")
    mock.get(f"{BASE}/scans/1", body='{"status": "runn')
    mock.get(f"{BASE}/scans/1", json={"status": "running"})
    http = client(fake, backoff=0.5)
    assert http.json("GET", "scans/1") == {"status": "running"}
    assert fake.sleeps == [0.5, 1.0]


def test_malformed_json_after_retries_is_unexpected(
    mock: responses.RequestsMock, fake: Fake
) -> None:
    get = mock.get(f"{BASE}/scans/1", body="not json")
    with pytest.raises(UnexpectedResponseError, match="malformed JSON") as err:
        client(fake, retries=3).json("GET", "scans/1")
    assert get.call_count == 4
    assert err.value.exit_status == ExitStatus.PROVIDER_ERROR


def test_malformed_json_answering_a_start_is_ambiguous(
    mock: responses.RequestsMock, fake: Fake
) -> None:
    post = mock.post(f"{BASE}/scans", body="<html>proxy</html>", status=201)
    with pytest.raises(AmbiguousStartError):
        client(fake).json("POST", "scans", json_body={}, creates=True)
    assert post.call_count == 1


# Rate limits.


def test_retry_after_seconds_holds_back_the_next_request(
    mock: responses.RequestsMock, fake: Fake
) -> None:
    limited = mock.get(f"{BASE}/scans/1", status=429, headers={"Retry-After": "120"})
    http = client(fake)
    with pytest.raises(ProviderRateLimitError) as err:
        http.json("GET", "scans/1")
    # A Retry-After beyond backoff_max is handed back, not slept out inside urllib3.
    assert limited.call_count == 1
    assert err.value.exit_status == ExitStatus.PROVIDER_ERROR
    assert fake.sleeps == []
    mock.replace(responses.GET, f"{BASE}/scans/1", json={"ok": True})
    assert http.json("GET", "scans/1") == {"ok": True}
    assert fake.sleeps == [120.0]
    assert http.json("GET", "scans/1") == {"ok": True}
    assert fake.sleeps == [120.0]  # once it has passed, nothing is held back


def test_a_short_retry_after_is_retried_inside_the_call(
    mock: responses.RequestsMock, fake: Fake
) -> None:
    limited = mock.get(f"{BASE}/scans/1", status=429, headers={"Retry-After": "0"})
    http = client(fake)
    with pytest.raises(ProviderRateLimitError):
        http.json("GET", "scans/1")
    assert limited.call_count == 5


def test_retry_after_http_date_holds_back_the_next_request(
    mock: responses.RequestsMock, fake: Fake
) -> None:
    when = format_datetime(datetime.fromtimestamp(NOW + 90, UTC), usegmt=True)
    mock.get(f"{BASE}/a", status=503, headers={"Retry-After": when})
    mock.get(f"{BASE}/b", json={})
    http = client(fake, retries=0)
    with pytest.raises(ProviderError):
        http.json("GET", "a")
    http.json("GET", "b")
    assert fake.sleeps == [pytest.approx(90.0)]


def test_parse_retry_after_rejects_garbage() -> None:
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after("-5", NOW) == NOW


@pytest.mark.parametrize(
    ("reset", "expected"), [(str(int(NOW) + 600), NOW + 600), ("45", NOW + 45)]
)
def test_rate_limit_headers_are_recorded(
    mock: responses.RequestsMock, fake: Fake, reset: str, expected: float
) -> None:
    headers = {"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "7", "X-RateLimit-Reset": reset}
    mock.get(f"{BASE}/scans", json=[], headers=headers)
    http = client(fake)
    http.json("GET", "scans")
    assert (http.rate.limit, http.rate.remaining, http.rate.reset_at) == (100, 7, expected)


# "Not processed" answers within the run's deadline (issue 14: a plan limit is a queue).


class Draws(random.Random):
    """A jitter source that records each (low, high) asked for and answers the ceiling."""

    def __init__(self) -> None:
        super().__init__(0)
        self.asked: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.asked.append((a, b))
        return b


def deadline_client(fake: Fake, seconds: float = 600.0, **options: Any) -> HttpClient:
    """A client whose run ends `seconds` after now on the fake clock."""
    end = fake.now + seconds
    return client(fake, time_left=lambda: end - fake.now, **options)


def test_a_start_answered_429_is_sent_again_once_the_wait_is_over(
    mock: responses.RequestsMock, fake: Fake
) -> None:
    # Retry-After 40 is beyond urllib3's cap (30 s): the client waits it out itself.
    refused = mock.post(f"{BASE}/scans", status=429, headers={"Retry-After": "40"})
    started = mock.post(f"{BASE}/scans", status=201, json={"id": "s1"})
    http = deadline_client(fake)
    assert http.json("POST", "scans", json_body={}, creates=True) == {"id": "s1"}
    assert (refused.call_count, started.call_count) == (1, 1)
    assert fake.sleeps == [40.0]
    assert (http.stats.limited, http.stats.resent, http.stats.waited) == (1, 1, 40.0)


def test_a_start_answered_503_with_retry_after_is_sent_again(
    mock: responses.RequestsMock, fake: Fake
) -> None:
    refused = mock.post(f"{BASE}/scans", status=503, headers={"Retry-After": "45"})
    started = mock.post(f"{BASE}/scans", status=201, json={"id": "s1"})
    assert deadline_client(fake).json("POST", "scans", json_body={}, creates=True) == {"id": "s1"}
    assert (refused.call_count, started.call_count) == (1, 1)
    assert fake.sleeps == [45.0]


def test_a_start_answered_503_without_retry_after_is_ambiguous_and_sent_once(
    mock: responses.RequestsMock, fake: Fake
) -> None:
    post = mock.post(f"{BASE}/scans", status=503)
    with pytest.raises(AmbiguousStartError):
        deadline_client(fake).json("POST", "scans", json_body={}, creates=True)
    assert post.call_count == 1
    assert fake.sleeps == []


def test_retry_after_comes_before_x_ratelimit_reset(
    mock: responses.RequestsMock, fake: Fake
) -> None:
    headers = {
        "Retry-After": "35",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(int(NOW) + 300),
    }
    mock.post(f"{BASE}/scans", status=429, headers=headers)
    mock.post(f"{BASE}/scans", status=201, json={"id": "s1"})
    deadline_client(fake).json("POST", "scans", json_body={}, creates=True)
    assert fake.sleeps == [35.0]


def test_x_ratelimit_reset_is_waited_for_without_retry_after(
    mock: responses.RequestsMock, fake: Fake
) -> None:
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW) + 50)}
    mock.post(f"{BASE}/scans", status=429, headers=headers)
    mock.post(f"{BASE}/scans", status=201, json={"id": "s1"})
    draws = Draws()
    deadline_client(fake, rng=draws).json("POST", "scans", json_body={}, creates=True)
    assert fake.sleeps == [51.0]  # until the reset, plus a second of margin
    assert draws.asked == []


def test_a_reset_is_not_waited_for_while_requests_remain(
    mock: responses.RequestsMock, fake: Fake
) -> None:
    # With requests left in the window, the 429 is not about the window: back off instead.
    headers = {"X-RateLimit-Remaining": "12", "X-RateLimit-Reset": str(int(NOW) + 3000)}
    mock.post(f"{BASE}/scans", status=429, headers=headers)
    mock.post(f"{BASE}/scans", status=201, json={"id": "s1"})
    draws = Draws()
    deadline_client(fake, backoff=1.5, rng=draws).json("POST", "scans", json_body={}, creates=True)
    assert draws.asked == [(0.0, 1.5)]
    assert fake.sleeps == [1.5]


def test_without_headers_the_backoff_is_exponential_with_full_jitter(
    mock: responses.RequestsMock, fake: Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_module, "MAX_RESENDS", 3)
    refused = mock.post(f"{BASE}/scans", status=429, json={"error": "slow down"})
    draws = Draws()
    http = deadline_client(fake, backoff=2.0, backoff_max=20.0, rng=draws)
    with pytest.raises(ProviderRateLimitError):
        http.json("POST", "scans", json_body={}, creates=True)
    # Uniform from 0 up to base x 2^n, capped: jobs refused together come back apart.
    assert draws.asked == [(0.0, 2.0), (0.0, 4.0), (0.0, 8.0)]
    assert fake.sleeps == [2.0, 4.0, 8.0]
    assert refused.call_count == 4


def test_full_jitter_draws_from_zero_up(mock: responses.RequestsMock, fake: Fake) -> None:
    mock.post(f"{BASE}/scans", status=429)
    mock.post(f"{BASE}/scans", status=201, json={"id": "s1"})
    draws = random.Random(7)
    http = deadline_client(fake, backoff=16.0, rng=draws)
    http.json("POST", "scans", json_body={}, creates=True)
    assert 0.0 <= fake.sleeps[0] < 16.0
    assert fake.sleeps[0] == pytest.approx(random.Random(7).uniform(0.0, 16.0))


def test_a_wait_past_the_deadline_is_not_waited(mock: responses.RequestsMock, fake: Fake) -> None:
    post = mock.post(f"{BASE}/scans", status=429, headers={"Retry-After": "120"})
    with pytest.raises(ProviderBusyError) as err:
        deadline_client(fake, seconds=60).json("POST", "scans", json_body={}, creates=True)
    assert post.call_count == 1
    assert fake.sleeps == []
    assert err.value.retry_after == 120.0
    assert err.value.start_refused  # definite: the start may be sent again later
    assert "past what is left of scan.timeout" in err.value.message


def test_a_backoff_is_cut_at_the_deadline(mock: responses.RequestsMock, fake: Fake) -> None:
    post = mock.post(f"{BASE}/scans", status=429)
    http = deadline_client(fake, seconds=10, backoff=4.0, rng=Draws())
    with pytest.raises(ProviderBusyError):
        http.json("POST", "scans", json_body={}, creates=True)
    assert fake.sleeps == [4.0, 6.0]  # 4, then 8 cut to the 6 s left; at the deadline, no more
    assert post.call_count == 3


def test_a_hold_past_the_deadline_sends_nothing(mock: responses.RequestsMock, fake: Fake) -> None:
    mock.get(f"{BASE}/scans/1", status=429, headers={"Retry-After": "900"})
    http = client(fake)
    with pytest.raises(ProviderRateLimitError):
        http.json("GET", "scans/1")
    end = fake.now + 300
    http.watch(time_left=lambda: end - fake.now)
    with pytest.raises(ProviderBusyError) as err:
        http.json("GET", "scans/2")  # not registered: it must not be sent
    assert err.value.retry_after == pytest.approx(900.0)
    assert fake.sleeps == []


def test_a_long_wait_is_told_in_slices(mock: responses.RequestsMock, fake: Fake) -> None:
    mock.post(f"{BASE}/scans", status=429, headers={"Retry-After": "60"})
    mock.post(f"{BASE}/scans", status=201, json={"id": "s1"})
    told: list[tuple[float, str]] = []
    http = deadline_client(fake)
    http.watch(time_left=http.time_left, on_wait=lambda left, why: told.append((left, why)))
    http.json("POST", "scans", json_body={}, creates=True)
    # Slices of WAIT_SLICE: a listener that prints at most every 25 s (the runner's
    # `_rate_line`) is asked often enough that its lines come no more than 30 s apart.
    assert fake.sleeps == [5.0] * 12
    assert [left for left, _ in told] == [60.0 - 5 * n for n in range(12)]
    assert told[0][1] == "Retry-After; HTTP 429 on POST /v1/scans"


def busy_reading(kind: RefusalKind) -> Any:
    def read(response: requests.Response, body: Any) -> Refusal | None:
        if isinstance(body, dict) and body.get("error_code") == "LIMIT":
            return Refusal(kind=kind, queue="a free scan slot", usage="3 of 3 in use", hint="h")
        return None

    return read


def test_a_plan_limit_that_clears_is_not_resent_but_handed_to_the_queue(
    mock: responses.RequestsMock, fake: Fake
) -> None:
    post = mock.post(f"{BASE}/scans", status=429, json={"detail": "full", "error_code": "LIMIT"})
    http = deadline_client(fake, refusal=busy_reading(RefusalKind.BUSY))
    with pytest.raises(ProviderBusyError) as err:
        http.json("POST", "scans", json_body={}, creates=True)
    assert post.call_count == 1
    assert (err.value.queue, err.value.usage, err.value.start_refused) == (
        "a free scan slot",
        "3 of 3 in use",
        True,
    )
    assert fake.sleeps == []


@pytest.mark.parametrize("status", [429, 403])
def test_a_plan_limit_that_never_clears_is_an_immediate_error(
    mock: responses.RequestsMock, fake: Fake, status: int
) -> None:
    post = mock.post(f"{BASE}/scans", status=status, json={"detail": "used", "error_code": "LIMIT"})
    http = deadline_client(fake, refusal=busy_reading(RefusalKind.FINAL))
    with pytest.raises(ProviderError) as err:
        http.json("POST", "scans", json_body={}, creates=True)
    assert type(err.value) is ProviderRateLimitError  # not a credentials problem, not a queue
    assert err.value.hint == "h"
    assert post.call_count == 1
    assert fake.sleeps == []


def test_a_get_answered_429_is_sent_again_after_urllib3s_retries(
    mock: responses.RequestsMock, fake: Fake
) -> None:
    limited = mock.get(f"{BASE}/scans/1", status=429, headers={"Retry-After": "90"})
    done = mock.get(f"{BASE}/scans/1", json={"status": "running"})
    assert deadline_client(fake).json("GET", "scans/1") == {"status": "running"}
    assert (limited.call_count, done.call_count) == (1, 1)
    assert fake.sleeps == [90.0]


def test_urllib3_waits_out_a_short_429_through_the_client(
    servers: list[Recorder], fake: Fake
) -> None:
    # On real sockets urllib3 resends by itself; its wait follows `rate_wait`, on our clock.
    replies = iter([429, 429, 200])
    server = serve(servers, lambda handler: answer(handler, next(replies)))
    draws = Draws()
    http = deadline_client(
        fake, base_url=f"http://127.0.0.1:{server.port}/v1", backoff=0.25, rng=draws
    )
    assert http.json("GET", "scans/1") == {}
    assert len(server.seen) == 3
    assert draws.asked == [(0.0, 0.25), (0.0, 0.5)]
    assert fake.sleeps == [0.25, 0.5]
    assert (http.stats.limited, http.stats.resent) == (2, 2)


def test_rate_wait_picks_retry_after_then_reset_then_jitter() -> None:
    draws = Draws()
    pick = partial(rate_wait, now=NOW, attempt=2, base=1.0, cap=30.0, rng=draws)
    reset = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW) + 20)}
    assert pick({"Retry-After": "7", **reset}) == (7.0, "Retry-After")
    assert pick(reset) == (21.0, "X-RateLimit-Reset")
    assert pick({"X-RateLimit-Reset": "20"}) == (21.0, "X-RateLimit-Reset")  # seconds from now
    stale = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW) - 5)}
    assert pick(stale) == (4.0, "backoff")
    assert pick({}) == (4.0, "backoff")
    assert draws.asked == [(0.0, 4.0), (0.0, 4.0)]


# Size cap.


def test_a_body_over_the_cap_is_refused(mock: responses.RequestsMock, fake: Fake) -> None:
    mock.get(f"{BASE}/small", body=b"[" + b"1," * 510 + b"1]")  # 1,023 bytes
    mock.get(f"{BASE}/big", body=b" " * 1025 + b"[]")
    http = client(fake, max_body=1024)
    assert len(http.json("GET", "small")) == 511
    with pytest.raises(UnexpectedResponseError, match="over 1,024 bytes"):
        http.request("GET", "big")


# Renewing credentials on 401.


def test_a_401_renews_once_and_resends(mock: responses.RequestsMock, fake: Fake) -> None:
    headers = {"X-API-Key": KEY}
    renewals: list[int] = []

    def renew() -> bool:
        renewals.append(1)
        headers["Authorization"] = "Bearer fresh-token-123456"
        return True

    http = client(fake, headers=headers, renew=renew)
    mock.post(f"{BASE}/scans", status=401)
    created = mock.post(
        f"{BASE}/scans",
        json={"id": "s1"},
        match=[matchers.header_matcher({"Authorization": "Bearer fresh-token-123456"})],
    )
    assert http.json("POST", "scans", json_body={}, creates=True) == {"id": "s1"}
    assert (len(renewals), created.call_count) == (1, 1)


def test_a_second_401_is_an_auth_error(mock: responses.RequestsMock, fake: Fake) -> None:
    http = client(fake, renew=lambda: True)
    denied = mock.get(f"{BASE}/scans", status=401, json={"detail": "nope"})
    with pytest.raises(ProviderAuthError) as err:
        http.json("GET", "scans")
    assert denied.call_count == 2
    assert "SCANNER_API_KEY" in err.value.diagnostics()


@pytest.mark.parametrize("how", ["reauth-off", "accepted", "not-renewed"])
def test_a_401_without_renewal_is_not_resent(
    mock: responses.RequestsMock, fake: Fake, how: str
) -> None:
    called: list[int] = []

    def renew() -> bool:
        called.append(1)
        return False

    http = client(fake, renew=renew)
    denied = mock.get(f"{BASE}/scans", status=401, json={"detail": "nope"})
    if how == "accepted":
        assert http.request("GET", "scans", accept_status=(401,)).status_code == 401
    else:
        with pytest.raises(ProviderAuthError):
            http.request("GET", "scans", reauth=how != "reauth-off")
    assert denied.call_count == 1
    assert len(called) == (1 if how == "not-renewed" else 0)


# Secrets never reach an error message.


def test_secrets_in_error_bodies_are_redacted(mock: responses.RequestsMock, fake: Fake) -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXZhbHVl"
    body = {"detail": f"key {KEY} and token {jwt} and Authorization: Bearer abc.def-ghi"}
    mock.get(f"{BASE}/scans", status=400, json=body)
    with pytest.raises(ProviderError) as err:
        client(fake).json("GET", "scans")
    text = err.value.diagnostics()
    assert KEY not in text and jwt not in text and "abc.def-ghi" not in text
    assert text.count(REDACTED) == 3


def test_secrets_in_transport_errors_are_redacted(mock: responses.RequestsMock, fake: Fake) -> None:
    mock.get(f"{BASE}/scans", body=requests.exceptions.InvalidHeader(f"bad header {KEY}"))
    with pytest.raises(ProviderUnavailableError) as err:
        client(fake).json("GET", "scans")
    assert KEY not in err.value.diagnostics()
    assert REDACTED in err.value.message


def test_a_token_registered_later_is_redacted_too(fake: Fake) -> None:
    http = client(fake)
    seen: list[str] = []
    http.redact.on_add(seen.append)
    http.redact.add("runtime-token-0123456789")
    assert seen == [KEY, "runtime-token-0123456789"]
    assert http.redact("x runtime-token-0123456789 y") == f"x {REDACTED} y"


# Real sockets on 127.0.0.1: redirects and connections that fail.


class Recorder:
    """A loopback HTTP server that records requests and answers with `reply`."""

    def __init__(self, reply: Callable[[BaseHTTPRequestHandler], None]) -> None:
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_one(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                recorder.seen.append((self.command, self.path, dict(self.headers), body))
                reply(self)

            do_GET = do_POST = handle_one

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def answer(handler: BaseHTTPRequestHandler, status: int = 200, **headers: str) -> None:
    handler.send_response(status)
    for name, value in {"Content-Type": "application/json", **headers}.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", "2")
    handler.end_headers()
    handler.wfile.write(b"{}")


def hang_up(handler: BaseHTTPRequestHandler) -> None:
    """Read the request, then close the connection without any answer."""
    handler.close_connection = True


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Recorder]]:
    """Servers started by a test, shut down after it; no proxy may intercept loopback."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    started: list[Recorder] = []
    yield started
    for server in started:
        server.close()


def serve(servers: list[Recorder], reply: Callable[[Any], None]) -> Recorder:
    server = Recorder(reply)
    servers.append(server)
    return server


def redirecting(location: str) -> Callable[[BaseHTTPRequestHandler], None]:
    """A reply that redirects everything but `/v1/landed` to `location`."""

    def reply(handler: BaseHTTPRequestHandler) -> None:
        if handler.path == "/v1/landed":
            answer(handler)
        else:
            answer(handler, 302, Location=location)

    return reply


@pytest.mark.parametrize("other_host", [True, False])
def test_a_redirect_to_another_host_drops_the_secret_headers(
    servers: list[Recorder], fake: Fake, other_host: bool
) -> None:
    if other_host:
        landing = serve(servers, answer)
        start = serve(servers, redirecting(f"http://localhost:{landing.port}/v1/landed"))
    else:
        start = landing = serve(servers, redirecting("/v1/landed"))
    headers = {"X-API-Key": KEY, "Authorization": "Bearer secret-token-0123"}
    http = client(fake, base_url=f"http://127.0.0.1:{start.port}/v1", headers=headers)
    assert http.json("GET", "scans") == {}
    method, path, headers, _ = landing.seen[-1]
    assert (method, path, headers["Host"].split(":")[0]) == (
        "GET",
        "/v1/landed",
        "localhost" if other_host else "127.0.0.1",
    )
    assert headers["User-Agent"] == f"scangate/{__version__}"
    kept = not other_host
    assert ("X-API-Key" in headers, "Authorization" in headers) == (kept, kept)


def test_a_redirect_never_resends_a_body_to_another_host(
    servers: list[Recorder], fake: Fake
) -> None:
    thief = serve(servers, answer)
    start = serve(
        servers, lambda h: answer(h, 307, Location=f"http://localhost:{thief.port}/steal")
    )
    http = client(fake, base_url=f"http://127.0.0.1:{start.port}/v1")
    with pytest.raises(ProviderError, match="another host|redirected with its body"):
        http.json("POST", "auth/token", data={"password": "hunter2-secret"}, idempotent=True)
    assert thief.seen == []
    assert len(start.seen) == 1


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("creates", [False, True])
def test_a_refused_connection_is_unavailable_not_ambiguous(fake: Fake, creates: bool) -> None:
    http = client(fake, base_url=f"http://127.0.0.1:{free_port()}/v1", retries=1)
    with pytest.raises(ProviderUnavailableError) as err:
        http.json("POST" if creates else "GET", "scans", json_body={}, creates=creates)
    assert "cannot reach 127.0.0.1" in err.value.message
    assert err.value.exit_status == ExitStatus.PROVIDER_ERROR


def test_a_start_whose_connection_drops_is_ambiguous_and_sent_once(
    servers: list[Recorder], fake: Fake
) -> None:
    server = serve(servers, hang_up)
    http = client(fake, base_url=f"http://127.0.0.1:{server.port}/v1")
    with pytest.raises(AmbiguousStartError):
        http.json("POST", "scans", json_body={"target": "x"}, creates=True)
    assert [seen[0] for seen in server.seen] == ["POST"]


def test_a_get_whose_connection_drops_is_retried(servers: list[Recorder], fake: Fake) -> None:
    server = serve(servers, hang_up)
    http = client(fake, base_url=f"http://127.0.0.1:{server.port}/v1", retries=2)
    with pytest.raises(ProviderUnavailableError) as err:
        http.json("GET", "scans/1")
    assert len(server.seen) == 3
    assert err.value.message.startswith(
        f"scanner: 127.0.0.1:{server.port} closed the connection without an answer "
        "(RemoteDisconnected) — after 3 attempts in "
    )


def test_a_failed_tls_handshake_on_start_is_unavailable_not_ambiguous(
    mock: responses.RequestsMock, fake: Fake
) -> None:
    post = mock.post(
        f"{BASE}/scans", body=requests.exceptions.SSLError("certificate verify failed")
    )
    with pytest.raises(ProviderUnavailableError) as err:
        client(fake).json("POST", "scans", json_body={}, creates=True)
    assert post.call_count == 1
    assert "provider.verify_tls" in err.value.diagnostics()


def test_retries_urllib3_makes_count_as_requests_sent(servers: list[Recorder], fake: Fake) -> None:
    busy = serve(servers, lambda handler: answer(handler, 503, **{"Retry-After": "0"}))
    http = client(fake, base_url=f"http://127.0.0.1:{busy.port}/v1")
    with pytest.raises(ProviderError):
        http.json("GET", "scans/1")
    assert len(busy.seen) == 5
    assert http.requests_sent == 5


# Page reads from several threads (`providers.paging.read_pages`).


def test_the_connection_pool_holds_every_page_reader(fake: Fake) -> None:
    """Fewer pooled connections than readers: urllib3 discards the extras ("Connection pool is
    full") and opens a new connection for most requests."""
    http = client(fake)
    for session in (http._idempotent, http._once):
        adapter = session.get_adapter(BASE)
        assert isinstance(adapter, requests.adapters.HTTPAdapter)
        assert adapter.poolmanager.connection_pool_kw["maxsize"] >= PAGE_WORKERS
    assert POOL_SIZE >= PAGE_WORKERS


def test_counters_are_exact_under_concurrent_requests(
    mock: responses.RequestsMock, fake: Fake
) -> None:
    mock.get(f"{BASE}/scans", json=[], headers={"X-RateLimit-Remaining": "3"})
    http = client(fake)

    def read() -> None:
        for _ in range(25):
            http.json("GET", "scans")

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert http.requests_sent == 200 and http.rate_state().remaining == 3


def test_an_answer_overtaken_by_a_later_one_gives_no_budget_back(
    mock: responses.RequestsMock, fake: Fake
) -> None:
    """Within one window the count only falls: the older answer (9 left, read after the newer
    one with 8) must not raise it; a new window (another reset) is taken as it says."""
    reset = str(int(NOW) + 3000)
    for remaining, at in (("8", reset), ("9", reset), ("499", str(int(NOW) + 6600))):
        headers = {
            "X-RateLimit-Limit": "500",
            "X-RateLimit-Remaining": remaining,
            "X-RateLimit-Reset": at,
        }
        mock.get(f"{BASE}/scans", json=[], headers=headers)
    http = client(fake)
    http.json("GET", "scans")
    http.json("GET", "scans")
    assert http.rate_state().remaining == 8
    http.json("GET", "scans")
    assert http.rate_state().remaining == 499
    copy = http.rate_state()
    copy.remaining = 0
    assert http.rate.remaining == 499  # a copy: a reader in another thread changes nothing


# --debug: one line per request and per response, with no secret in either.


@pytest.fixture
def debug_lines(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    """The DEBUG lines `scangate.http` logs (the console shows them under --debug only)."""
    caplog.set_level(logging.DEBUG, logger="scangate.http")

    def lines() -> list[str]:
        return [
            r.getMessage()
            for r in caplog.records
            if r.name == "scangate.http" and r.levelno == logging.DEBUG
        ]

    return lines


def test_debug_logs_each_request_and_response_with_secrets_masked(
    mock: responses.RequestsMock, fake: Fake, debug_lines: Callable[[], list[str]]
) -> None:
    signature = "c2lnbmF0dXJlLW9mLXRoaXMtcmVxdWVzdA=="
    mock.get(f"{BASE}/scans", json={"items": [1, 2, 3]})
    http = client(fake, headers={"X-API-Key": KEY, "X-Signature": signature, "X-Trace": "t-1"})
    params = {"api_key": "query-key-9f8e7d6c", "access_token": "tok-5a4b3c2d", "page": 2}
    http.json("GET", "scans", params=params)
    request_line, response_line = debug_lines()
    assert request_line == (
        f"→ GET {BASE}/scans?api_key={REDACTED}&access_token={REDACTED}&page=2 "
        f"[X-API-Key: {REDACTED}, X-Signature: {REDACTED}, X-Trace: t-1]"
    )
    assert response_line.startswith("← 200 OK 20 B in ") and response_line.endswith(" ms")
    for secret in (KEY, signature, "query-key-9f8e7d6c", "tok-5a4b3c2d"):
        assert secret not in request_line + response_line


def test_debug_masks_a_known_secret_wherever_it_is_in_the_url(
    mock: responses.RequestsMock, fake: Fake, debug_lines: Callable[[], list[str]]
) -> None:
    mock.get(f"{BASE}/keys/{KEY}", json={})
    client(fake).json("GET", f"keys/{KEY}", params={"user": "alice@example.com"})
    assert debug_lines()[0] == (
        f"→ GET {BASE}/keys/{REDACTED}?user={REDACTED} [X-API-Key: {REDACTED}]"
    )


def test_debug_says_how_many_retries_an_answer_took(
    servers: list[Recorder], fake: Fake, debug_lines: Callable[[], list[str]]
) -> None:
    calls: list[int] = []

    def flaky(handler: BaseHTTPRequestHandler) -> None:
        calls.append(1)
        answer(handler, 502 if len(calls) == 1 else 200)

    server = serve(servers, flaky)
    client(fake, base_url=f"http://127.0.0.1:{server.port}/v1").json("GET", "scans")
    assert debug_lines()[-1].startswith("← 200 OK 2 B in ")
    assert debug_lines()[-1].endswith(" ms after 1 retry")


def test_nothing_is_logged_for_requests_without_debug(
    mock: responses.RequestsMock, fake: Fake, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="scangate.http")
    mock.get(f"{BASE}/scans", json={})
    client(fake).json("GET", "scans")
    assert [r for r in caplog.records if r.name == "scangate.http"] == []


# Failures without a real socket (mocked transport errors) keep their diagnosis.


@pytest.mark.parametrize(
    ("raised", "said"),
    [
        (
            requests.exceptions.ReadTimeout("slow"),
            "api.scanner.test accepted the connection but sent no answer within 30 s (ReadTimeout)",
        ),
        (
            requests.exceptions.ConnectTimeout("slow"),
            "cannot reach api.scanner.test: no connection within 10 s (connect timeout)",
        ),
        (
            requests.exceptions.SSLError("bad handshake"),
            "TLS with api.scanner.test failed: the TLS handshake failed",
        ),
        (
            requests.exceptions.ConnectionError(ConnectionResetError(104, "reset by peer")),
            "api.scanner.test closed the connection without an answer (ConnectionResetError)",
        ),
        (
            requests.exceptions.ConnectionError("no route"),
            "cannot reach api.scanner.test: the connection failed (ConnectionError)",
        ),
    ],
    ids=["read-timeout", "connect-timeout", "tls", "reset", "other"],
)
def test_a_transport_error_is_named_by_its_type(
    mock: responses.RequestsMock, fake: Fake, raised: Exception, said: str
) -> None:
    mock.get(f"{BASE}/scans", body=raised)
    with pytest.raises(ProviderUnavailableError) as err:
        client(fake).json("GET", "scans")
    assert err.value.message == f"scanner: {said} — after 1 attempt in 0.0 s"


# A wait nobody listens to still reaches the log.


def test_a_rate_limit_wait_without_a_listener_is_logged(
    mock: responses.RequestsMock, fake: Fake, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="scangate.http")
    mock.get(f"{BASE}/scans/1", status=429, headers={"Retry-After": "120"})
    http = client(fake)
    with pytest.raises(ProviderRateLimitError):
        http.json("GET", "scans/1")
    mock.replace(responses.GET, f"{BASE}/scans/1", json={})
    assert http.json("GET", "scans/1") == {}
    assert fake.sleeps == [120.0]
    assert [r.getMessage() for r in caplog.records if r.name == "scangate.http"] == [
        "waiting 2m00s for scanner (Retry-After)"
    ]
