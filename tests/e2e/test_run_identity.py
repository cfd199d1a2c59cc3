"""End to end: stable identities and clean text in every report, for every provider (issue 13).

Two runs of the same scenario are two scans with fresh ids; every identity a CI system tracks
findings by (fingerprints, SARIF rule ids, locations and partial fingerprints, GitLab
identifiers and locations, JUnit names) must be the same in both. The hostile scenario's
control and bidi characters must reach no report file.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.support import REPORT_FILES, CliRun, run_scenario, write_scenario
from scangate.providers import PROVIDER_NAMES

pytestmark = pytest.mark.slow

FORBIDDEN = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
"""NUL and the other C0/C1 controls (TAB, LF and CR aside), DEL, bidi controls, surrogates."""
ESCAPED = re.compile(
    r"\\u(000[0-8bcef]|001[0-9a-f]|007f|00[89][0-9a-f]|061c|200[ef]|202[a-e]|206[6-9]"
    r"|d[89a-f][0-9a-f]{2})",
    re.IGNORECASE,
)
"""The same characters written as JSON escapes (`\\u0000`): they come back when parsed."""


def _identities(run: CliRun) -> dict[str, list[Any]]:
    """Every identity a CI system keys findings on, from each report of one run."""
    scan = run.results()["scans"][0]
    sarif = run.parsed("scangate.sarif")["runs"][0]
    gitlab = run.parsed("gl-dast-report.json")["vulnerabilities"]
    junit = ET.fromstring(run.report("junit.xml"))
    return {
        "fingerprints": sorted(f["fingerprint"] for f in scan["findings"]),
        "sarif": sorted(
            (
                r["ruleId"],
                json.dumps(r["locations"], sort_keys=True),
                json.dumps(r["partialFingerprints"], sort_keys=True),
            )
            for r in sarif["results"]
        ),
        "sarif_rules": sorted(rule["id"] for rule in sarif["tool"]["driver"]["rules"]),
        "gitlab": sorted(
            (
                json.dumps(v["identifiers"], sort_keys=True),
                json.dumps(v["location"], sort_keys=True),
            )
            for v in gitlab
        ),
        "gitlab_ids": sorted(v["id"] for v in gitlab),
        "junit": sorted((c.get("classname"), c.get("name")) for c in junit.iter("testcase")),
    }


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
def test_two_scans_give_the_same_identities_in_every_report(tmp_path: Path, provider: str) -> None:
    runs = []
    for n in (1, 2):
        (tmp_path / str(n)).mkdir()
        run, _ = run_scenario(tmp_path / str(n), provider, "findings")
        assert run.exit == 1, run.stderr
        runs.append(run)
    first, second = (_identities(run) for run in runs)
    ids = [run.results()["scans"][0]["scan_id"] for run in runs]
    assert ids[0] != ids[1]  # two scans: what stays the same is not the scan
    assert first == second
    assert first["fingerprints"] and first["junit"]
    flat = json.dumps(first)
    assert ids[0] not in flat and ids[0].replace("-", "") not in flat


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _xml_strings(root: ET.Element) -> Iterator[str]:
    for element in root.iter():
        yield from (element.text or "", element.tail or "")
        yield from element.attrib.values()


def _report_strings(run: CliRun, name: str) -> Iterator[str]:
    text = run.report(name)
    yield text
    if name.endswith(".json") or name.endswith(".sarif"):
        yield from _strings(json.loads(text))
    elif name.endswith(".xml"):
        yield from _xml_strings(ET.fromstring(text))


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
def test_the_hostile_scenario_leaves_no_control_character_in_any_report(
    tmp_path: Path, provider: str
) -> None:
    run, _ = run_scenario(tmp_path, provider, "hostile")
    assert run.exit == 1, run.stderr
    for name in REPORT_FILES:
        text = run.report(name)
        assert not ESCAPED.search(text), (name, ESCAPED.search(text))
        for value in _report_strings(run, name):
            found = FORBIDDEN.search(value)
            assert found is None, (name, found, value[:200])
    # The hostile text itself arrived (markup and all), minus what was dropped.
    assert "<script>alert(1)</script>" in run.report("scangate.json")


TWINS = [
    {
        "title": "Reflected XSS in order lookup",
        "rule": "xss-reflected",
        "severity": severity,
        "url": f"https://staging.example.com/orders/{n}?id={n}",
        "param": "id",
    }
    for n, severity in ((1001, "high"), (2002, "high"))
]
"""Two findings of one fingerprint and severity: numeric path segments and query values
normalize away, so only an occurrence number tells them apart where identities must differ."""


@pytest.mark.parametrize("provider", ["cyberorigen", "cystack"])
def test_findings_sharing_a_fingerprint_stay_two_findings_everywhere(
    tmp_path: Path, provider: str
) -> None:
    scenario = write_scenario(
        tmp_path, "twins", {"description": "twins", "duration": 2, "findings": TWINS}
    )
    run, _ = run_scenario(tmp_path, provider, scenario)
    assert run.exit == 1, run.stderr
    scan = run.results()["scans"][0]
    assert len(scan["findings"]) == 2 and len({f["fingerprint"] for f in scan["findings"]}) == 1
    counts = scan["gate"]["counts"]
    assert (counts["high"]["found"], counts["high"]["failing"]) == (2, 2)
    identities = _identities(run)
    assert len(set(identities["sarif"])) == 2  # partialFingerprints `<fp>:1`, `<fp>:2`
    assert len(set(identities["gitlab"])) == 2 and len(identities["gitlab_ids"]) == 2
    cases = [case for case in identities["junit"] if case[0] != "dast.scan"]
    assert len(set(cases)) == 2
