"""Every provider's response parsing under hostile answers: only a `ProviderError` may escape.

Each provider runs its real code path (its real `HttpClient`; `responses` instead of the
network) while a fake API answers every route it reads with a recorded payload that Hypothesis
has damaged: wrong types, missing keys, huge strings, control characters, lone surrogates,
non-UTF-8 bytes, absurd numbers, deep nesting, error statuses with hostile error bodies.
Whatever comes back must be normalized (`check_outcome`), and a `ScanResult` must give a
`scangate.json` valid against the shipped schema; anything raised must be a `ProviderError`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from scangate.errors import ProviderError
from scangate.providers import ScanProgress

from .checks import check_outcome
from .fake_api import HEADER_TEXT, FakeApi, Reply, replies
from .schemas import JsonSchema
from .specs import PROGRESSES, SPECS, Spec, outcome_of
from .strategies import DEEP, deep_json, fuzz_settings

EXAMPLES = 45
"""Examples per (provider, operation): 38 operations, so about 1,700 fuzzed exchanges."""
MAX_SLEEP = 2**63 / 1e9
"""The longest wait `time.sleep` accepts (seconds); beyond it, it raises OverflowError."""
CASES = [(name, op) for name, spec in SPECS.items() for op in spec.ops]
CASE_IDS = [f"{name}-{op}" for name, op in CASES]
JSON = {"Content-Type": "application/json"}


# -- running one operation ---------------------------------------------------------------------


def run_op(
    spec: Spec,
    op: str,
    env: Mapping[str, str],
    drawn: Mapping[str, list[Reply]],
    state: ScanProgress | None,
) -> object:
    """Run `op` against the fake API serving `drawn`; a `ProviderError` is returned, not raised."""
    provider, http, _ = spec.build(env)
    with FakeApi(http.base_url, spec.routes, drawn).serving() as api:
        try:
            outcome = spec.ops[op][0](provider, state)
        except ProviderError as exc:
            assert exc.message.strip(), "an error without a message"
            outcome = exc
    assert not api.unrouted, f"requests the fake API does not serve: {api.unrouted}"
    return outcome


# -- the properties ----------------------------------------------------------------------------


@pytest.mark.parametrize(("provider", "op"), CASES, ids=CASE_IDS)
@fuzz_settings(EXAMPLES)
@given(data=st.data())
def test_hostile_answers_give_normalized_values_or_a_provider_error(
    provider: str, op: str, data: st.DataObject, scangate_json_schema: JsonSchema
) -> None:
    """Every answer the operation reads is fuzzed; nothing but a `ProviderError` escapes."""
    spec = SPECS[provider]
    env = data.draw(st.sampled_from(spec.envs), label="credentials")
    drawn = {
        name: data.draw(st.lists(replies(spec.route(name)), min_size=1, max_size=2), label=name)
        for name in spec.routes_of(op, env)
    }
    state = data.draw(st.sampled_from((None, *PROGRESSES)), label="state to fetch in")
    outcome = run_op(spec, op, env, drawn, state)
    event(f"outcome: {type(outcome).__name__}")  # see --hypothesis-show-statistics
    if not isinstance(outcome, ProviderError):
        check_outcome(outcome, scangate_json_schema)


@pytest.mark.parametrize(("provider", "op"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("depth", [800, DEEP])
@pytest.mark.parametrize("status", [200, 400])
def test_deeply_nested_answers_are_a_provider_error(
    provider: str, op: str, depth: int, status: int, scangate_json_schema: JsonSchema
) -> None:
    """JSON nested past what a decoder or a recursive walker can take is just a bad answer.

    Every route answers `[[[...]]]` (a login `{"a": {"a": ...}}`): at 800 levels the decoder
    copes and any recursive walk of the body must not (RecursionError); at 10,000 the decoder
    itself gives up. Either way only a `ProviderError` may come out.
    """
    spec = SPECS[provider]
    env = spec.envs[-1]
    drawn = {
        name: [Reply(status, JSON, deep_json(depth, _shape(spec, name)).encode())]
        for name in spec.routes_of(op, env)
    }
    outcome = run_op(spec, op, env, drawn, None)
    if not isinstance(outcome, ProviderError):
        check_outcome(outcome, scangate_json_schema)


def _shape(spec: Spec, route: str) -> str:
    """Logins answer nested objects (where a token would be), the rest nested arrays."""
    return "object" if route in spec.login_routes else "list"


RATE_VALUES = st.one_of(
    st.sampled_from(
        (
            "0",
            "1",
            "-1",
            "30",
            "1.5",
            "1e309",
            "-1e309",
            "NaN",
            "inf",
            "9" * 30,
            "1768471260",
            "Thu, 15 Jan 2026 10:01:00 GMT",
            "Mon, 01 Jan 0001 00:00:00 +1400",
            "Fri, 31 Dec 9999 23:59:59 -1400",
            "",
        )
    ),
    HEADER_TEXT,
)
"""`Retry-After` and `X-RateLimit-*` values: seconds, Unix times, HTTP dates, and neither."""
RATE_HEADERS = ("Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


@pytest.mark.parametrize("provider", list(SPECS))
@fuzz_settings(EXAMPLES)
@given(data=st.data())
def test_hostile_rate_limit_headers_never_break_or_stall_the_client(
    provider: str, data: st.DataObject, scangate_json_schema: JsonSchema
) -> None:
    """Rate-limit headers are read leniently, and no wait they cause is endless.

    Two polls: the first answer's headers govern how long the second request is held back.
    Status 200 only: with a 429 or 503, `responses` emulates urllib3's retries itself and
    raises where the real stack would have wrapped the error.
    """
    spec = SPECS[provider]
    name = spec.ops["poll"][1][0]
    headers = {header: data.draw(RATE_VALUES, label=header) for header in RATE_HEADERS}
    body = json.dumps(spec.route(name).answers[0]).encode()
    drawn = {name: [Reply(200, headers, body), Reply(200, {}, body)]}
    provider_, http, clock = spec.build(spec.envs[0])
    with FakeApi(http.base_url, spec.routes, drawn).serving():
        outcomes = [outcome_of(lambda: spec.ops["poll"][0](provider_, None)) for _ in range(2)]
    for outcome in outcomes:
        if not isinstance(outcome, ProviderError):
            check_outcome(outcome, scangate_json_schema)
    assert all(math.isfinite(s) and 0 <= s < MAX_SLEEP for s in clock.sleeps), clock.sleeps
