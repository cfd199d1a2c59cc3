"""Saved `scangate.json` files, damaged: `load_results` gives results or a `ResultsError`.

`scangate gate --results` reads files that passed through artifact storage and people's
hands; a damaged one must be refused with a diagnosis (exit 2), never with a traceback.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import hostile_finding, make_finding, make_report, make_result
from hypothesis import given
from hypothesis import strategies as st

from scangate.errors import ResultsError
from scangate.formats.json import JsonFormatter
from scangate.model import CountSummary, ScanResult
from scangate.results import load_results

from .strategies import DEPTHS, encode_json, fuzz_settings, mutated

EXAMPLES = 60


def _saved() -> Any:
    """A valid document: one scan with ordinary and hostile findings and a count summary."""
    findings = [make_finding(1), make_finding(2), hostile_finding(3)]
    result = make_result(findings, count_summary=CountSummary(alert_count=2, checks=("XSS",)))
    return json.loads(JsonFormatter().render(make_report(result=result)))


SAVED = _saved()


@fuzz_settings(EXAMPLES)
@given(
    document=mutated(SAVED),
    depth=st.sampled_from(DEPTHS),
    ascii_only=st.booleans(),
)
def test_damaged_results_load_or_raise_results_error(
    document: Any, depth: int, ascii_only: bool, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Whatever the damage, the loader answers with results or a `ResultsError`."""
    path = tmp_path_factory.mktemp("saved") / "scangate.json"
    path.write_bytes(encode_json(document, ascii_only=ascii_only, depth=depth, shape="list"))
    try:
        loaded = load_results(path)
    except ResultsError as exc:
        assert str(path) in exc.message
        return
    assert all(isinstance(result, ScanResult) for result in loaded)
