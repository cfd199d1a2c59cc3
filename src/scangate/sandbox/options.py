"""An emulator's settings: a keyword argument, else the scenario's `options` block, checked.

Every emulator takes the same route (design: keyword arguments override the scenario's
`options.<provider>` block), so the reading and the messages live here once; each emulator
says which keys it knows and what each must be.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from scangate.sandbox.scenario import Scenario, ScenarioError

T = TypeVar("T")


class EmulatorOptions:
    """A scenario's `options.<provider>` block, with errors naming the scenario and the key."""

    def __init__(self, scenario: Scenario, provider: str, allowed: frozenset[str]) -> None:
        """Read `provider`'s block of `scenario`; a key outside `allowed` is a `ScenarioError`."""
        self.scenario, self.provider = scenario, provider
        self.block: Mapping[str, Any] = scenario.options_for(provider)
        for key in self.block:
            if key not in allowed:
                error = self.error(key, "unknown key")
                error.hint = f"allowed keys: {', '.join(sorted(allowed))}"
                raise error

    def error(self, key: str, problem: str) -> ScenarioError:
        """A `ScenarioError` about `options.<provider>.<key>`."""
        return ScenarioError(
            f"scenario {self.scenario.name!r}: options.{self.provider}.{key}: {problem}"
        )

    def get(self, key: str, given: Any = None, default: Any = None) -> Any:
        """`given` (a keyword argument) unless None, else the block's `key`, else `default`."""
        return given if given is not None else self.block.get(key, default)

    def count(self, key: str, value: Any, *, low: int = 0, problem: str = "") -> int:
        """`value`, an integer >= `low` (a boolean is not one)."""
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise self.error(key, problem or f"expected an integer >= {low}")
        return value

    def seconds(self, key: str, value: Any) -> float:
        """`value`, a number of seconds >= 0."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise self.error(key, "expected seconds (>= 0)")
        return float(value)

    def positive(
        self, key: str, value: Any, *, problem: str = "must be a positive number"
    ) -> float:
        """`value`, a number > 0."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise self.error(key, problem)
        return float(value)

    def choice(self, key: str, value: Any, allowed: tuple[T, ...]) -> T:
        """`value`, one of `allowed` (a boolean is none of them)."""
        if isinstance(value, bool) or value not in allowed:
            raise self.error(key, f"{value!r} is not one of {', '.join(map(str, allowed))}")
        return allowed[allowed.index(value)]

    def flag(self, key: str, value: Any) -> bool:
        """`value`, true or false (None reads as false)."""
        if value is not None and not isinstance(value, bool):
            raise self.error(key, "expected true or false")
        return bool(value)
