"""The sandbox: local emulators of the providers' APIs, driven by scenarios, on 127.0.0.1.

`scangate run --sandbox [SCENARIO]` starts one in-process, `scangate sandbox` serves one
standalone, and end-to-end tests start one and read its request log.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from scangate import registry
from scangate.sandbox.clock import Clock, FakeClock, SystemClock
from scangate.sandbox.runtime import Emulator, EmulatorServer
from scangate.sandbox.scenario import (
    HOSTILE_TEXT,
    SandboxError,
    Scenario,
    ScenarioError,
    bundled_scenarios,
    load_scenario,
)
from scangate.sandbox.wire import LogEntry, RequestLog

__all__ = [
    "EMULATORS",
    "HOSTILE_TEXT",
    "SCENARIOS",
    "Clock",
    "Emulator",
    "EmulatorServer",
    "FakeClock",
    "LogEntry",
    "RequestLog",
    "SandboxError",
    "Scenario",
    "ScenarioError",
    "SystemClock",
    "emulator_class",
    "load_scenario",
    "make_server",
    "sandbox_env",
    "scenarios_for",
    "start_sandbox",
]


class _Emulators(Mapping[str, type[Emulator]]):
    """The emulators by provider name, as the registry lists them; each imported on first use.

    Keys and membership come from the registry alone, so `provider in EMULATORS` imports no
    emulator, and `scangate run --sandbox` imports only the one it plays.
    """

    def __getitem__(self, provider: str) -> type[Emulator]:
        if provider not in registry.PROVIDER_NAMES:
            raise KeyError(provider)
        return registry.emulator_class(provider)

    def __contains__(self, provider: object) -> bool:
        return provider in registry.PROVIDER_NAMES

    def __iter__(self) -> Iterator[str]:
        return iter(registry.PROVIDER_NAMES)

    def __len__(self) -> int:
        return len(registry.PROVIDER_NAMES)


EMULATORS: Mapping[str, type[Emulator]] = _Emulators()
"""The closed set of emulators, by provider name (no plugin discovery): `scangate.registry`."""

SCENARIOS: tuple[str, ...] = bundled_scenarios()
"""Every bundled scenario name (some are for one provider only: see `scenarios_for`)."""


def emulator_class(provider: str) -> type[Emulator]:
    """The emulator registered for `provider`; `SandboxError` when there is none."""
    try:
        return EMULATORS[provider]
    except KeyError:
        raise SandboxError(
            f"no sandbox emulator for provider {provider!r}",
            hint=f"the sandbox emulates: {', '.join(sorted(EMULATORS))}",
        ) from None


def scenarios_for(provider: str) -> tuple[str, ...]:
    """The bundled scenarios `provider`'s emulator can play."""
    emulator_class(provider)
    return bundled_scenarios(provider)


def make_server(
    provider: str,
    scenario: str | Path | Scenario = "findings",
    port: int = 0,
    *,
    clock: Clock | None = None,
    read_timeout: float | None = None,
    options: Mapping[str, Any] | None = None,
    on_request: Callable[[LogEntry], None] | None = None,
) -> EmulatorServer:
    """Build (without starting) a server for `provider` playing `scenario`.

    `scenario` is a bundled name, a scenario file path or a `Scenario`. `options` are keyword
    arguments for the emulator (e.g. CyberOrigen's `plan`); `read_timeout` enables `timeout`
    faults and `on_request` sees every log entry (see `EmulatorServer`). Raises
    `SandboxError`/`ScenarioError` on bad input.
    """
    cls = emulator_class(provider)
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario, provider=provider)
    extra = dict(options or {})
    try:
        inspect.signature(cls).bind(scenario, clock=clock, **extra)
    except TypeError as exc:
        raise SandboxError(f"bad option for the {provider} emulator: {exc}") from None
    emulator = cls(scenario, clock=clock, **extra)
    return EmulatorServer(emulator, port=port, read_timeout=read_timeout, on_request=on_request)


def start_sandbox(
    provider: str,
    scenario: str | Path | Scenario = "findings",
    port: int = 0,
    **kwargs: Any,
) -> EmulatorServer:
    """Start a sandbox server on 127.0.0.1 (port 0: any free port) and return it, running.

    Keyword arguments are those of `make_server`. Stop it with `.stop()` or use it as a
    context manager; `.base_url` is the provider `base_url` to use, `.log` the request log.
    """
    return make_server(provider, scenario, port, **kwargs).start()


def sandbox_env(provider: str, scenario: str | Path | Scenario | None = None) -> dict[str, str]:
    """The credential variables the sandbox of `provider` accepts.

    For a scenario that exercises login tokens (token expiry), the provider's login
    credentials are returned instead of its API key, when it has both.
    """
    cls = emulator_class(provider)
    if scenario is not None and not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario, provider=provider)
    return cls.sandbox_env(scenario)
