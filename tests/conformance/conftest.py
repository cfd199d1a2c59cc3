"""Fixtures of the conformance suite: a pool that runs every selected case at once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .harness import Case, Conformance, Outcome


@pytest.fixture(scope="session")
def conformance(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Conformance]:
    """The pool, with every selected case already queued."""
    pool = Conformance(tmp_path_factory.mktemp("conformance"))
    wanted: list[Case] = []
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        case = callspec.params.get("case") if callspec is not None else None
        if isinstance(case, Case):
            wanted.append(case)
    pool.submit_all(wanted)
    yield pool
    pool.close()


@pytest.fixture
def outcome(case: Case, conformance: Conformance) -> Outcome:
    """The outcome of this test's case."""
    return conformance.outcome(case)
