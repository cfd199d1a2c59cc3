"""Secret redaction: every credential and runtime token is replaced before anything is printed."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from scangate.secrets import REDACTED, redact_tokens

__all__ = ["REDACTED", "Redactor"]

_MIN_SECRET = 4
"""Shorter values would redact ordinary words; providers' secrets are far longer."""


class Redactor:
    """Holds the secret values of one run and removes them from any text.

    Besides the exact values it knows, it also removes anything shaped like a bearer token or a
    JWT (`scangate.secrets`), so a token the provider invents at run time is hidden even before
    it is registered.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        """Create a new `Redactor` knowing `secrets`."""
        self._lock = threading.Lock()
        self._secrets: list[str] = []
        self._listeners: list[Callable[[str], None]] = []
        for secret in secrets:
            self.add(secret)

    def on_add(self, listener: Callable[[str], None]) -> None:
        """Call `listener(value)` for every secret registered from now on (and those known)."""
        with self._lock:
            known = list(self._secrets)
            self._listeners.append(listener)
        for value in known:
            listener(value)

    def add(self, secret: str) -> None:
        """Register a secret value (ignored when empty or too short to be one)."""
        value = secret.strip()
        if len(value) < _MIN_SECRET:
            return
        with self._lock:
            if value in self._secrets:
                return
            self._secrets.append(value)
            # Longest first, so a secret that contains another is replaced whole.
            self._secrets.sort(key=len, reverse=True)
            listeners = list(self._listeners)
        for listener in listeners:
            listener(value)

    def __call__(self, text: str) -> str:
        """Return `text` with every known secret and token-shaped value replaced."""
        with self._lock:
            secrets = list(self._secrets)
        for secret in secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return redact_tokens(text)
