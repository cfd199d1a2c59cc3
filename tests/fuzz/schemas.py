"""Report schema validators with short `repr`s (Hypothesis prints every argument of a test)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import xmlschema
from formats.junit_xsd import junit_errors
from jsonschema.protocols import Validator


class JsonSchema:
    """A JSON Schema validator with a short `repr` (Hypothesis prints a test's arguments)."""

    def __init__(self, name: str, validator: Validator) -> None:
        self.name = name
        self.validator = validator

    def errors(self, document: Any) -> list[str]:
        """Every problem with `document`, as `path: message` (empty when it is valid)."""
        return [f"{e.json_path}: {e.message[:300]}" for e in self.validator.iter_errors(document)]

    def __repr__(self) -> str:
        return f"JsonSchema({self.name})"


class XmlSchemas:
    """Both JUnit schemas, with a short `repr`."""

    def __init__(self, directory: Path) -> None:
        self.schemas = {
            name: xmlschema.XMLSchema(str(directory / f"junit-{name}.xsd"))
            for name in ("ant", "jenkins")
        }

    def errors(self, xml: str) -> list[str]:
        """The first problem `xml` has against each schema (empty when valid against both);
        the Ant XSD is not asked about the test cases' `system-out` (`formats.junit_xsd`)."""
        found = []
        for name, schema in self.schemas.items():
            error = next(junit_errors(xml, {name: schema}), None)
            if error is not None:
                found.append(error)
        return found

    def __repr__(self) -> str:
        return "XmlSchemas(junit-ant, junit-jenkins)"


def load_json(path: Path) -> Any:
    """A schema file's JSON."""
    return json.loads(path.read_text(encoding="utf-8"))
