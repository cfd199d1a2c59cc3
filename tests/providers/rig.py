"""One provider rig for every adapter test: built through the registry, as a run wires it.

The adapter class comes from `scangate.registry` and its HTTP client from the same `Connection`
the CLI gives it (`scangate.wiring.build_provider`), with a fake wall clock, recorded sleeps and
no backoff; the tests answer its requests with `responses`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scangate.http import Connection, HttpClient
from scangate.model import ProviderSettings
from scangate.providers.interface import Provider
from scangate.redact import Redactor
from scangate.registry import adapter_class


class Clock:
    """A wall clock that moves only when a test says so (or, if asked, when the client sleeps)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Rig:
    """The provider registered as `name`, on a real `HttpClient` with a fake clock and sleep."""

    def __init__(
        self,
        name: str,
        env: Mapping[str, str],
        options: Mapping[str, Any] | None = None,
        *,
        now: float,
        sleep_advances: bool = False,
        **settings: Any,
    ) -> None:
        """Build provider `name` with credentials `env` and `provider.options` `options`.

        The clock reads `now`; with `sleep_advances` every sleep moves it on. `settings` are
        more `ProviderSettings` fields (`unrated_severity`, ...).
        """
        self.clock = Clock(now)
        self.sleeps: list[float] = []
        self.registered: list[str] = []
        self.redactor = Redactor()
        self.redactor.on_add(self.registered.append)
        self._sleep_advances = sleep_advances
        cls = adapter_class(name)
        connection = Connection(
            base_url=cls.DEFAULT_BASE_URL,
            redactor=self.redactor,
            backoff=0,
            sleep=self.sleep,
            clock=self.clock,
        )
        provider_settings = ProviderSettings(name=name, options=dict(options or {}), **settings)
        self.provider: Provider = cls(
            settings=provider_settings, env=dict(env), connection=connection
        )

    @property
    def http(self) -> HttpClient:
        """The provider's client (its rate state and counters, for assertions)."""
        return self.provider.http

    def sleep(self, seconds: float) -> None:
        """The client's sleep: recorded, and the clock moved when `sleep_advances`."""
        self.sleeps.append(seconds)
        if self._sleep_advances:
            self.clock.now += seconds
