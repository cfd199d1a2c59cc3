"""The emulator runtime: routing, request parsing, fault injection, the request log, lifecycle."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
import requests

from scangate.sandbox.clock import FakeClock, SystemClock
from scangate.sandbox.runtime import (
    REDACTED,
    BadRequest,
    Emulator,
    EmulatorServer,
    FaultInjector,
    LogEntry,
    Request,
    Response,
    Router,
    respond,
)
from scangate.sandbox.scenario import Fault, Scenario


class EchoEmulator(Emulator):
    """A minimal provider: items to poll, a create call, a crashing route, its own error shape."""

    provider: ClassVar[str] = "echo"
    prefix: ClassVar[str] = "/v9"
    SANDBOX_ENV: ClassVar[dict[str, str]] = {"ECHO_KEY": "k"}

    def __init__(self, scenario: Scenario, *, clock: Any = None) -> None:
        self.handled: list[str] = []
        self.expired = 0
        super().__init__(scenario, clock=clock)

    def register(self, router: Router) -> None:
        router.add("GET", r"/v9/items/(?P<item>[^/]+)", self._item, "poll")
        router.add("POST", r"/v9/items", self._create, "start")
        router.add("GET", r"/v9/boom", self._boom, "findings")

    def error(self, status: int, detail: str, code: str) -> Response:
        return respond(status, {"error": {"code": code, "message": detail}})

    def expire_credentials(self, request: Request) -> bool:
        if request.header("Authorization") is None:
            return False
        self.expired += 1
        return True

    def _item(self, request: Request) -> Response:
        self.handled.append(request.params["item"])
        return respond(200, {"item": request.params["item"], "padding": "x" * 40})

    def _create(self, request: Request) -> Response:
        self.handled.append("create")
        return respond(201, {"created": request.json()})

    def _boom(self, request: Request) -> Response:
        raise RuntimeError("emulator bug")


def serve(*faults: Fault, read_timeout: float | None = None) -> EmulatorServer:
    scenario = Scenario(name="test", faults=faults)
    return EmulatorServer(EchoEmulator(scenario), read_timeout=read_timeout).start()


@pytest.fixture
def make_server() -> Iterator[Any]:
    started: list[EmulatorServer] = []

    def factory(*faults: Fault, read_timeout: float | None = None) -> EmulatorServer:
        server = serve(*faults, read_timeout=read_timeout)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


def emulator_of(server: EmulatorServer) -> EchoEmulator:
    assert isinstance(server.emulator, EchoEmulator)
    return server.emulator


# -- routing and request parsing --------------------------------------------------------------


def test_router_first_registered_route_wins_and_reports_404_or_405() -> None:
    router = Router()
    ok = respond(200, {})
    router.add("GET", r"/scans/quota", lambda r: ok, "quota")
    router.add("GET", r"/scans/(?P<id>[^/]+)", lambda r: ok, "poll")

    quota = router.resolve("GET", "/scans/quota")
    scan = router.resolve("get", "/scans/scan_1")

    assert not isinstance(quota, int) and quota[0].category == "quota" and quota[1] == {}
    assert not isinstance(scan, int) and scan[1] == {"id": "scan_1"}
    assert router.resolve("DELETE", "/scans/scan_1") == 405
    assert router.resolve("GET", "/scans/scan_1/extra") == 404


def test_request_parses_json_and_form_bodies_and_refuses_the_wrong_type() -> None:
    as_json = Request(
        method="POST",
        path="/",
        headers={"content-type": "application/json; charset=utf-8"},
        body=b'{"a": 1}',
    )
    as_form = Request(
        method="POST",
        path="/",
        headers={"content-type": "application/x-www-form-urlencoded"},
        body=b"username=a%40b&password=&x=1&x=2",
    )

    assert as_json.json() == {"a": 1}
    assert as_form.form() == {"username": "a@b", "password": "", "x": "1"}
    with pytest.raises(BadRequest, match="expected a form"):
        as_json.form()
    with pytest.raises(BadRequest, match="expected application/json"):
        as_form.json()
    broken = Request(method="POST", path="/", headers=as_json.headers, body=b'{"a": ')
    with pytest.raises(BadRequest, match="not valid JSON"):
        broken.json()


def test_request_query_helpers_validate_and_convert() -> None:
    request = Request(
        method="GET",
        path="/",
        query={
            "page": ("2",),
            "size": ("x",),
            "big": ("101",),
            "s": ("high",),
            "d": ("2026-01-02",),
        },
    )

    assert request.int_arg("page", 1, low=1) == 2
    assert request.int_arg("missing", 7) == 7
    assert request.choice_arg("s", ("high", "low")) == "high"
    assert request.date_arg("d") == 1767312000.0  # 2026-01-02T00:00:00Z
    with pytest.raises(BadRequest, match="size: not a valid integer"):
        request.int_arg("size", 1)
    with pytest.raises(BadRequest, match="big: must be between 1 and 100"):
        request.int_arg("big", 1, low=1, high=100)
    with pytest.raises(BadRequest, match="s: must be one of low"):
        request.choice_arg("s", ("low",))


def test_response_with_headers_keeps_headers_already_set() -> None:
    response = respond(429, {"x": 1}, {"Retry-After": "5"})

    merged = response.with_headers({"retry-after": "1", "X-Extra": "y"})

    assert merged.header("Retry-After") == "5"
    assert merged.header("x-extra") == "y"
    assert merged.header("Content-Type") == "application/json"


def test_respond_escapes_lone_surrogates_into_valid_json() -> None:
    response = respond(200, {"title": "a\ud800b\x00"})

    assert json.loads(response.body) == {"title": "a\ud800b\x00"}


# -- fault injection ---------------------------------------------------------------------------


def test_fault_injector_counts_only_its_category_and_hits_its_window() -> None:
    burst = Fault(on="poll", kind="5xx", after=1, count=2)
    anywhere = Fault(on="any", kind="drop", after=4, count=1)
    injector = FaultInjector((burst, anywhere))

    seen = [injector.next(category) for category in ("start", "poll", "poll", "poll", "poll")]

    # start(any #1), poll #1 passes, polls #2-#3 hit the burst, poll #4 passes (any #5 hits).
    assert seen == [None, None, burst, burst, anywhere]
    assert injector.next("poll") is None


def test_5xx_fault_hits_exactly_the_targeted_requests(make_server: Any) -> None:
    server = make_server(Fault(on="poll", kind="5xx", after=1, count=2, status=502))

    created = requests.post(server.base_url + "/items", json={"n": 1}, timeout=5)
    statuses = [
        requests.get(f"{server.base_url}/items/{n}", timeout=5).status_code for n in range(4)
    ]

    assert created.status_code == 201
    assert statuses == [200, 502, 502, 200]
    assert emulator_of(server).handled == ["create", "0", "3"]
    faulted = server.log.find(fault="5xx")
    assert [e.path for e in faulted] == ["/v9/items/1", "/v9/items/2"]
    assert all(e.status == 502 for e in faulted)


def test_429_fault_answers_in_the_providers_shape_with_retry_after(make_server: Any) -> None:
    server = make_server(Fault(on="poll", kind="429", retry_after=2.5))

    response = requests.get(server.base_url + "/items/a", timeout=5)

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"  # rounded up, never an early retry
    assert response.json() == {
        "error": {"code": "RATE_LIMIT_EXCEEDED", "message": "Rate limit exceeded"}
    }


def test_drop_fault_closes_the_connection_after_the_handler_ran(make_server: Any) -> None:
    server = make_server(Fault(on="start", kind="drop"))

    with pytest.raises(requests.ConnectionError):
        requests.post(server.base_url + "/items", json={"n": 1}, timeout=5)
    again = requests.post(server.base_url + "/items", json={"n": 2}, timeout=5)

    assert emulator_of(server).handled == ["create", "create"]  # the lost answer's scan exists
    assert again.status_code == 201
    assert [(e.status, e.fault) for e in server.log] == [(None, "drop"), (201, None)]


def test_unprocessed_drop_never_reaches_the_handler(make_server: Any) -> None:
    server = make_server(Fault(on="start", kind="drop", processed=False))

    with pytest.raises(requests.ConnectionError):
        requests.post(server.base_url + "/items", json={}, timeout=5)

    assert emulator_of(server).handled == []


def test_malformed_fault_sends_a_truncated_body_with_200(make_server: Any) -> None:
    server = make_server(Fault(on="poll", kind="malformed", after=1))

    good = requests.get(server.base_url + "/items/a", timeout=5)
    bad = requests.get(server.base_url + "/items/a", timeout=5)

    assert bad.status_code == 200
    assert bad.headers["Content-Type"] == "application/json"
    assert good.content.startswith(bad.content) and len(bad.content) < len(good.content)
    with pytest.raises(ValueError):
        bad.json()


def test_timeout_fault_is_skipped_without_a_known_client_read_timeout(make_server: Any) -> None:
    server = make_server(Fault(on="poll", kind="timeout"))

    response = requests.get(server.base_url + "/items/a", timeout=5)

    assert response.status_code == 200
    assert server.log.entries()[0].fault is None


def test_timeout_fault_outlasts_the_client_read_timeout(make_server: Any) -> None:
    server = make_server(Fault(on="poll", kind="timeout"), read_timeout=0.2)

    with pytest.raises(requests.ReadTimeout):
        requests.get(server.base_url + "/items/a", timeout=(5, 0.2))
    server.stop()  # interrupts the hang

    assert server.log.entries()[0].fault == "timeout"
    assert server.log.entries()[0].status is None


def test_token_expiry_fault_applies_only_to_token_requests(make_server: Any) -> None:
    server = make_server(Fault(on="poll", kind="token-expiry", count=2))

    with_key = requests.get(server.base_url + "/items/a", headers={"X-API-Key": "k"}, timeout=5)
    with_token = requests.get(
        server.base_url + "/items/b", headers={"Authorization": "Bearer t"}, timeout=5
    )

    assert with_key.status_code == 200
    assert with_token.status_code == 401
    assert with_token.json()["error"]["code"] == "TOKEN_EXPIRED"
    assert emulator_of(server).expired == 1
    assert [e.fault for e in server.log] == [None, "token-expiry"]


def test_401_fault_rejects_credentials(make_server: Any) -> None:
    server = make_server(Fault(on="any", kind="401"))

    response = requests.get(server.base_url + "/nowhere", timeout=5)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert server.log.entries()[0].category == "unrouted"


# -- the log, errors and quiet -----------------------------------------------------------------


def test_log_records_requests_with_secrets_masked(make_server: Any) -> None:
    server = make_server()

    requests.get(
        server.base_url + "/items/a?auth_key=s3cret&page=2",
        headers={"X-API-Key": "s3cret", "Authorization": "Bearer s3cret", "User-Agent": "t/1"},
        timeout=5,
    )
    requests.post(server.base_url + "/items", json={"target": "x"}, timeout=5)
    requests.delete(server.base_url + "/items/a", timeout=5)

    first, second, third = server.log.entries()
    assert first.authenticated and not second.authenticated
    assert first.headers["x-api-key"] == REDACTED and first.headers["authorization"] == REDACTED
    assert first.headers["user-agent"] == "t/1" and "X-API-Key" in first.header_names
    assert first.query == {"auth_key": (REDACTED,), "page": ("2",)}
    assert "s3cret" not in repr(server.log.entries())
    assert second.json() == {"target": "x"} and second.category == "start"
    assert third.status == 405
    assert server.log.count("GET", r"/v9/items/[^/]+") == 1
    assert server.log.count(category="start", status=201) == 1
    assert server.log.count() == len(server.log) == 3


def test_handler_crash_answers_500_records_the_traceback_and_stays_quiet(
    make_server: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    server = make_server(Fault(on="poll", kind="drop"))

    crashed = requests.get(server.base_url + "/boom", timeout=5)
    with pytest.raises(requests.ConnectionError):
        requests.get(server.base_url + "/items/a", timeout=5)
    missing = requests.get(server.base_url + "/nowhere", timeout=5)
    server.stop()

    assert crashed.status_code == 500
    assert crashed.json()["error"]["code"] == "INTERNAL_ERROR"
    assert len(server.errors) == 1 and "emulator bug" in server.errors[0]
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_unparseable_body_is_a_400_in_the_providers_shape(make_server: Any) -> None:
    server = make_server()

    response = requests.post(server.base_url + "/items", data={"a": "1"}, timeout=5)

    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "BAD_REQUEST",
        "message": "expected application/json, got application/x-www-form-urlencoded",
    }
    assert server.errors == []


def test_oversized_body_is_refused(make_server: Any) -> None:
    server = make_server()

    response = requests.post(
        server.base_url + "/items",
        data=b"x" * ((1 << 20) + 1),
        headers={"Content-Type": "application/json"},
        timeout=5,
    )

    assert response.status_code == 413
    assert emulator_of(server).handled == []


# -- lifecycle ---------------------------------------------------------------------------------


def test_on_request_sees_every_entry_and_cannot_break_answers() -> None:
    seen: list[str] = []

    def access_log(entry: LogEntry) -> None:
        seen.append(f"{entry.method} {entry.path} {entry.status}")
        if entry.status == 404:
            raise RuntimeError("broken access log")

    with EmulatorServer(EchoEmulator(Scenario(name="t")), on_request=access_log) as server:
        found = requests.get(server.base_url + "/items/a", timeout=5)
        missing = requests.get(server.base_url + "/nowhere", timeout=5)

    assert (found.status_code, missing.status_code) == (200, 404)
    assert seen == ["GET /v9/items/a 200", "GET /v9/nowhere 404"]
    assert len(server.errors) == 1 and "broken access log" in server.errors[0]


def test_port_zero_binds_distinct_free_ports_on_loopback(make_server: Any) -> None:
    one, two = make_server(), make_server()

    assert one.port != two.port and one.port > 0
    assert one.base_url == f"http://127.0.0.1:{one.port}/v9"
    assert one.root_url == f"http://127.0.0.1:{one.port}"


def test_stop_closes_kept_alive_connections_and_ends_every_thread() -> None:
    server = serve()
    session = requests.Session()
    assert session.get(server.base_url + "/items/a", timeout=5).status_code == 200
    port = server.port

    server.stop()
    server.stop()  # idempotent

    names = {t.name for t in threading.enumerate() if t.is_alive()}
    assert "sandbox-connection" not in names and "sandbox-echo" not in names
    with pytest.raises(requests.ConnectionError):
        session.get(f"http://127.0.0.1:{port}/v9/items/a", timeout=5)
    with pytest.raises(RuntimeError):
        _ = server.base_url


def test_context_manager_starts_and_stops() -> None:
    with EmulatorServer(EchoEmulator(Scenario(name="t"))) as server:
        url = server.base_url
        assert requests.get(url + "/items/a", timeout=5).status_code == 200
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/items/a", timeout=5)


def test_log_time_comes_from_the_emulator_clock() -> None:
    clock = FakeClock()
    with EmulatorServer(EchoEmulator(Scenario(name="t"), clock=clock)) as server:
        requests.get(server.base_url + "/items/a", timeout=5)
        clock.advance(42)
        requests.get(server.base_url + "/items/b", timeout=5)

    first, second = server.log.entries()
    assert second.time - first.time == 42


def test_clocks() -> None:
    fake, real = FakeClock(start=100.0), SystemClock()
    before = fake.monotonic()

    fake.advance(2.5)

    assert fake.monotonic() - before == 2.5 and fake.time() == 102.5
    assert real.monotonic() <= real.monotonic()
    assert abs(real.time() - time.time()) < 60
