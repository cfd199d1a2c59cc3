"""Conformance: every provider through every fault, the real CLI against its emulator.

Each case (see `harness.FAULTS`) must give the right exit code, one diagnosis line naming the
cause, no traceback, exactly one scan started (none where nothing may start), the remote scan
cancelled where design §5 says so, reports whenever there is a result, and no secret anywhere:
stdout, stderr, reports, and `SCANGATE_DEBUG=true` output.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from e2e.support import decisions

from scangate.providers import PROVIDER_NAMES, provider_class
from scangate.sandbox import EMULATORS

from .harness import (
    FAULTS,
    FETCHING_PROVIDERS,
    TOKEN_PROVIDERS,
    Conformance,
    Outcome,
    assert_no_reports,
    assert_no_secrets,
    assert_reports,
    assert_sane,
    cases,
    error_line,
)

pytestmark = pytest.mark.slow

TRANSIENT = {
    "dropped-connection": "drop",
    "read-timeout": "timeout",
    "5xx-burst": "5xx",
    "malformed-json": "malformed",
    "rate-limited": "429",
    "token-expiry": "token-expiry",
}
"""Faults the CLI must ride out, and the fault kind the emulator logs for each."""


def check(outcome: Outcome) -> None:
    """What every case must satisfy: its exit code, no traceback, no secret."""
    assert outcome.run.exit == outcome.case.spec.exit, outcome.run.stderr
    assert_sane(outcome)
    assert_no_secrets(outcome)


def scan_id(results: dict[str, Any]) -> str:
    """The id of the one scan in `scangate.json`."""
    return str(results["scans"][0]["scan_id"])


# -- the suite covers what it claims -----------------------------------------------------------


def test_every_registered_provider_has_an_emulator() -> None:
    assert sorted(EMULATORS) == sorted(PROVIDER_NAMES)


def test_token_faults_run_on_exactly_the_providers_that_log_in() -> None:
    login = {
        name
        for name in PROVIDER_NAMES
        for spec in provider_class(name).credentials
        if any(variable.endswith("_PASSWORD") for variable in spec.variables)
    }
    assert TOKEN_PROVIDERS == login
    assert len(login) == 2  # CyberSec Pro and CyberOrigen (design §1)


def test_results_faults_run_on_exactly_the_providers_that_fetch_results(
    conformance: Conformance,
) -> None:
    for provider in PROVIDER_NAMES:
        fetched = conformance.reference(provider).after_start("findings")
        assert bool(fetched) == (provider in FETCHING_PROVIDERS), provider


@pytest.mark.parametrize("case", cases("none"))
def test_the_fault_free_reference_run_fails_the_gate_on_its_findings(outcome: Outcome) -> None:
    check(outcome)
    results = assert_reports(outcome, "completed")
    assert results["verdict"] == "failed"
    assert outcome.count("start") == 1 and outcome.count("cancel") == 0
    assert "scangate: error:" not in outcome.run.stderr


# -- the provider cannot be reached or refuses the credentials: nothing starts -------------------


@pytest.mark.parametrize("case", cases("connection-refused"))
def test_connection_refused_exits_3_before_any_scan(outcome: Outcome) -> None:
    check(outcome)
    assert f"cannot reach 127.0.0.1:{outcome.closed_port}" in error_line(outcome)
    assert_no_reports(outcome)


@pytest.mark.parametrize("case", cases("bad-credentials") + cases("unauthorized"))
def test_rejected_credentials_exit_3_naming_the_variables_and_start_nothing(
    outcome: Outcome,
) -> None:
    check(outcome)
    assert "rejected the credentials" in error_line(outcome)
    for variable in outcome.credentials:
        assert variable in outcome.run.stderr
    assert outcome.count("start") == 0
    assert outcome.log_server.log.count(status=401) >= 1
    assert_no_reports(outcome)


# -- transient faults while the scan runs: ridden out, same verdict ------------------------------


@pytest.mark.parametrize("case", [p for fault in TRANSIENT for p in cases(fault)])
def test_a_transient_fault_while_polling_keeps_the_verdict(
    outcome: Outcome, conformance: Conformance
) -> None:
    check(outcome)
    kind = TRANSIENT[outcome.case.fault]
    assert any(e.fault == kind for e in outcome.after_start("poll")), "the fault never fired"
    assert outcome.count("start") == 1 and outcome.count("cancel") == 0
    assert "scangate: error:" not in outcome.run.stderr
    results = assert_reports(outcome, "completed")
    reference = conformance.reference(outcome.case.provider).run.results()
    assert results["verdict"] == reference["verdict"] == "failed"
    assert decisions(results) == decisions(reference)


@pytest.mark.parametrize("case", cases("rate-limited"))
def test_retry_after_holds_back_the_next_request(outcome: Outcome) -> None:
    entries = outcome.log_server.log.entries()
    limited = [n for n, e in enumerate(entries) if e.fault == "429"]
    assert len(limited) == 2
    for n in limited:
        assert entries[n + 1].time - entries[n].time >= 1.95  # Retry-After: 2


@pytest.mark.parametrize("case", cases("token-expiry"))
def test_an_expired_token_is_renewed_once_and_the_poll_repeated(outcome: Outcome) -> None:
    entries = outcome.log_server.log.entries()
    expired = next(n for n, e in enumerate(entries) if e.fault == "token-expiry")
    renewal = [e for e in entries[expired + 1 :] if e.category == "auth"]
    # CyberOrigen tries its refresh call first, which an expired token cannot use; then logs in.
    assert [e.status for e in renewal if e.status == 200] == [200]
    following = next(e for e in entries[expired + 1 :] if e.category != "auth")
    assert (following.path, following.status) == (entries[expired].path, 200)


# -- faults that outlast the retries: the scan is kept, never lost -------------------------------


@pytest.mark.parametrize("case", cases("poll-outage"))
def test_a_poll_outage_keeps_tracking_the_scan_until_the_timeout_cancels_it(
    outcome: Outcome,
) -> None:
    check(outcome)
    run = outcome.run
    results = assert_reports(outcome, "timed_out")
    assert any(e.fault == "5xx" for e in outcome.after_start("poll"))
    assert f"still tracking {scan_id(results)}" in run.stderr
    assert "HTTP 503" in run.stderr
    assert f"scan.timeout of 15s reached; cancelled scan {scan_id(results)}" in run.stderr
    assert outcome.count("start") == 1 and outcome.count("cancel") == 1
    assert run.seconds < 15 + 5


@pytest.mark.parametrize("case", cases("results-outage") + cases("malformed-results"))
def test_results_that_cannot_be_fetched_exit_3_with_the_scan_id_to_resume(
    outcome: Outcome,
) -> None:
    check(outcome)
    cause = "HTTP 502" if outcome.case.fault == "results-outage" else "malformed JSON"
    assert cause in error_line(outcome)
    assert all(e.fault is not None for e in outcome.after_start("findings"))
    results = assert_reports(outcome, "failed")
    assert results["verdict"] == "incomplete"
    made, stderr = scan_id(results), outcome.run.stderr
    assert f"scan {made} ended (" in stderr
    assert f"results could not be fetched; resume with `scangate wait --scan-id {made}`" in stderr
    assert outcome.count("start") == 1 and outcome.count("cancel") == 0


@pytest.mark.parametrize("case", cases("lookup-outage"))
def test_a_job_that_cannot_be_looked_up_after_its_start_is_named_by_its_memo(
    outcome: Outcome,
) -> None:
    check(outcome)
    line = error_line(outcome)
    memo = line.split("looking it up by memo ", 1)[1].split()[0]
    assert memo.startswith("scangate-") and "HTTP 503" in line
    assert "not starting another" in line
    assert f"look for memo {memo} in the WSC console" in outcome.run.stderr
    assert outcome.count("start") == 1
    assert_no_reports(outcome)


# -- the scan ends badly on the provider's side --------------------------------------------------


ENDINGS_ALIKE = {"cystack", "vaddy"}
"""Providers whose API tells no failure from a cancellation: CyStack ends both `Stopped`
(providers/cystack.md "Scan status model"), VAddy both `canceled`
(providers/vaddy.md "GET /v2/scan/result")."""


@pytest.mark.parametrize("case", cases("scan-failed") + cases("scan-cancelled"))
def test_a_scan_that_fails_or_is_cancelled_remotely_exits_4(outcome: Outcome) -> None:
    check(outcome)
    status = "failed" if outcome.case.fault == "scan-failed" else "cancelled"
    if outcome.case.provider in ENDINGS_ALIKE:
        status = "cancelled"
    results = assert_reports(outcome, status)
    assert results["verdict"] == "incomplete"
    assert re.search(rf"^scangate: scan \S+ {status}\b", outcome.run.stderr, re.M)
    assert "scangate:   - scan did not complete: " in outcome.run.stderr
    assert outcome.count("start") == 1 and outcome.count("cancel") == 0


# -- scangate stops the scan: timeout and signals ------------------------------------------------


@pytest.mark.parametrize("case", cases("scan-timeout"))
def test_a_scan_longer_than_the_timeout_is_cancelled_and_exits_4(outcome: Outcome) -> None:
    check(outcome)
    run = outcome.run
    results = assert_reports(outcome, "timed_out")
    assert "scan.timeout of 4s reached" in run.stderr
    assert f"cancelled scan {scan_id(results)}" in run.stderr
    assert outcome.count("start") == 1 and outcome.count("cancel") == 1
    assert run.seconds < 4 + 5


UNIDENTIFIABLE_STARTS = {"vaddy"}
"""Providers that cannot name a scan whose start answer was lost: VAddy's runcheck gives only a
count and its results list only finished scans (providers/vaddy.md "GET /v2/scan/runcheck",
"Other v2 endpoints")."""


@pytest.mark.parametrize("case", cases("sigint") + cases("sigterm"))
def test_a_signal_while_waiting_cancels_the_scan_and_writes_interrupted_reports(
    outcome: Outcome,
) -> None:
    check(outcome)
    assert outcome.signal_to_exit is not None and outcome.signal_to_exit < 5.0
    name = "SIGINT" if outcome.case.fault == "sigint" else "SIGTERM"
    assert f"interrupted by {name}; cancelled scan " in outcome.run.stderr
    results = assert_reports(outcome, "interrupted")
    assert results["interrupted"]
    assert f"cancelled scan {scan_id(results)}" in outcome.run.stderr
    assert outcome.count("start") == 1 and outcome.count("cancel") == 1


@pytest.mark.parametrize("case", cases("sigterm-at-start"))
def test_a_signal_before_the_start_answer_finds_and_cancels_the_new_scan(
    outcome: Outcome,
) -> None:
    check(outcome)
    assert outcome.signal_to_exit is not None and outcome.signal_to_exit < 5.0
    assert outcome.log_server.log.count(category="start", fault="timeout") == 1
    stderr = outcome.run.stderr
    if outcome.case.provider in UNIDENTIFIABLE_STARTS:
        assert "interrupted by SIGTERM while starting; could not cancel" in stderr
        assert outcome.count("cancel") == 0
        assert_no_reports(outcome)
        return
    results = assert_reports(outcome, "interrupted")
    made = scan_id(results)
    assert f"the interrupted start request created scan {made}; cancelled scan {made}" in stderr
    assert outcome.count("start") == 1 and outcome.count("cancel") == 1


def test_every_fault_is_exercised() -> None:
    exercised = {
        "none",
        "connection-refused",
        "bad-credentials",
        "unauthorized",
        *TRANSIENT,
        "poll-outage",
        "results-outage",
        "malformed-results",
        "scan-failed",
        "scan-cancelled",
        "scan-timeout",
        "sigint",
        "sigterm",
        "sigterm-at-start",
        "lookup-outage",
    }
    assert exercised == set(FAULTS)
