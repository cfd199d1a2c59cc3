"""Fixtures of the fuzz tests: every report schema, parsed once per session."""

from __future__ import annotations

import pytest
from conftest import SCHEMAS
from jsonschema import Draft4Validator, Draft7Validator, Draft202012Validator

from scangate.results import results_schema

from .schemas import JsonSchema, XmlSchemas, load_json


@pytest.fixture(scope="session")
def scangate_json_schema() -> JsonSchema:
    """The shipped `scangate.json` schema (draft 2020-12)."""
    return JsonSchema("scangate.json", Draft202012Validator(results_schema()))


@pytest.fixture(scope="session")
def sarif_schema() -> JsonSchema:
    """The OASIS SARIF 2.1.0 schema (draft-04), with format checks."""
    schema = load_json(SCHEMAS / "sarif-2.1.0.json")
    return JsonSchema(
        "sarif-2.1.0", Draft4Validator(schema, format_checker=Draft4Validator.FORMAT_CHECKER)
    )


@pytest.fixture(scope="session")
def gitlab_schema() -> JsonSchema:
    """GitLab's DAST report schema 15.2.1 (draft-07), with format checks."""
    schema = load_json(SCHEMAS / "gitlab-dast-report-format.json")
    checker = Draft7Validator.FORMAT_CHECKER
    return JsonSchema("gitlab-dast-15.2.1", Draft7Validator(schema, format_checker=checker))


@pytest.fixture(scope="session")
def junit_schemas() -> XmlSchemas:
    """Both JUnit schemas: Ant's strict one and the Jenkins xUnit one."""
    return XmlSchemas(SCHEMAS)
