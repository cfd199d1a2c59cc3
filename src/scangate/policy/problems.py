"""What is wrong with a policy, said the same way everywhere: key path, message, line."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from scangate.errors import PolicyError
from scangate.model.settings import KeyPath
from scangate.secrets import redact_secret_values

POLICY_HINT = "`scangate schema` prints every key; `scangate validate` checks a policy offline"


@dataclass(frozen=True, order=True)
class PolicyProblem:
    """One thing wrong with a policy: where it is and what is wrong (never a secret value)."""

    line: int
    path: str
    """The formatted key path (`ignore[2].expires`); empty for the document itself."""
    message: str
    source: str = ""
    """The file the problem is in, when it is not the policy being loaded (a base it extends)."""

    def render(self, source: Path | str) -> str:
        """`<file>: <key path>: <message> (line N)`; `source` unless the problem names its own."""
        where = f"{self.path}: " if self.path else ""
        return f"{self.source or source}: {where}{self.message} (line {self.line})"


Found = tuple[KeyPath, PolicyProblem]
"""A problem with the raw key path it is about (to drop problems below a refused secret)."""


class InvalidPolicyError(PolicyError):
    """The policy file has one or more problems; `problems` lists them sorted by line."""

    def __init__(self, source: Path | str, problems: Iterable[PolicyProblem]) -> None:
        """Create a new `InvalidPolicyError` for `source` from its `problems`."""
        # By file, then line: a chain's problems read file by file (one file sorts as before).
        self.problems = tuple(
            sorted(set(problems), key=lambda p: (p.source, p.line, p.path, p.message))
        )
        lines = [p.render(source) for p in self.problems]
        if len(lines) > 1:
            lines.insert(0, f"{source}: {len(lines)} problems in the policy")
        super().__init__(redact_secret_values("\n".join(lines)), hint=POLICY_HINT)


def format_key_path(path: Iterable[str | int]) -> str:
    """Render a key path as users write it: `ignore[2].expires`, `gate.max.medium`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z0-9_-]+", part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text


def problem_at(path: KeyPath, message: str, line: int) -> PolicyProblem:
    """The problem `message` about the value at `path`, written at `line`."""
    return PolicyProblem(line=line, path=format_key_path(path), message=message)


def show(value: object, limit: int = 60) -> str:
    """A short, quoted rendering of a user's value for an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def type_name(value: object) -> str:
    """What a user calls the kind of `value`: `a mapping`, `true/false`, `an empty value`."""
    names: list[tuple[type | tuple[type, ...], str]] = [
        (bool, "true/false"),
        (dict, "a mapping"),
        (list, "a list"),
        (str, "text"),
        (int, "an integer"),
        (float, "a number"),
    ]
    for kind, name in names:
        if isinstance(value, kind):
            return name
    return "an empty value" if value is None else type(value).__name__
