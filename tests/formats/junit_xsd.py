"""Checking `junit.xml` against both vendored XSDs, given the one element Ant's does not allow.

GitLab reads `system-out` only from a test case (formats.md §2.3), and scangate puts each
passing or skipped finding's details there; the strict Ant XSD allows no `system-out` in a
test case (§2.1). So a document is checked against the Jenkins XSD as written, and against the
Ant XSD with the test cases' `system-out` taken out: every other rule of Ant's still holds.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import xmlschema

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"


def junit_schemas() -> dict[str, xmlschema.XMLSchema]:
    """Both JUnit XSDs by name (`ant`, `jenkins`)."""
    return {
        name: xmlschema.XMLSchema(str(SCHEMAS / f"junit-{name}.xsd")) for name in ANT_AND_JENKINS
    }


ANT_AND_JENKINS = ("ant", "jenkins")


def without_case_output(xml: str) -> str:
    """`xml` without the test cases' `system-out` (the suites' own stay)."""
    root = ET.fromstring(xml)
    for case in root.iter("testcase"):
        for output in case.findall("system-out"):
            case.remove(output)
    return ET.tostring(root, encoding="unicode")


def junit_errors(xml: str, schemas: dict[str, xmlschema.XMLSchema]) -> Iterator[str]:
    """Every problem of `xml`: against `schemas["jenkins"]` as written, against
    `schemas["ant"]` but for the test cases' `system-out`."""
    for name, schema in schemas.items():
        checked = without_case_output(xml) if name == "ant" else xml
        for error in schema.iter_errors(checked):
            yield f"junit-{name}.xsd: {str(error)[:600]}"
