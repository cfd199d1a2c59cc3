"""Secret redaction: every credential and runtime token is replaced before anything is printed."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from scangate.secrets import CREDENTIAL_HEADERS, REDACTED, is_secret_key, redact_tokens

__all__ = ["REDACTED", "Redactor", "is_secret_name", "masked_headers", "masked_url"]

_SECRET_NAME_WORDS = ("auth", "signature", "credential", "session", "cookie", "apikey", "key")
"""Besides `secrets.is_secret_key`'s words: names whose values sign or open a session. Too
broad on purpose: a debug line that hides an `access_key` id loses nothing that matters."""
_IDENTIFIER_PARAMS = ("user", "username", "email", "login")
"""Query parameters naming the account (VAddy's `user`): not secret, but not printed without
need (design §6 "Credentials")."""

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


def is_secret_name(name: str) -> bool:
    """True for a query parameter or header named like a credential (`api_key`, `sig`, `auth`)."""
    normal = re.sub(r"[^a-z0-9]", "", name.lower())
    if normal in ("sig", "pwd", "pass"):
        return True
    return is_secret_key(name) or any(word in normal for word in _SECRET_NAME_WORDS)


def masked_url(url: str) -> str:
    """`url` with the values of secret-named (and account-naming) query parameters and any
    password replaced.

    The marker stays readable (not percent-encoded): the line is for a person.
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = "&".join(f"{quote(k)}={REDACTED if _hidden_param(k) else quote(v)}" for k, v in pairs)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _hidden_param(name: str) -> bool:
    return is_secret_name(name) or name.lower() in _IDENTIFIER_PARAMS


def masked_headers(headers: Mapping[str, str], secret_headers: Iterable[str]) -> dict[str, str]:
    """The headers a provider adds, for a debug line: each secret one's value replaced.

    Secret are the provider's own (`HttpContract.secret_headers`), the usual credential
    headers, and any named like a credential (`X-NCP-APIGW-SIGNATURE-V2`).
    """
    secret = {name.lower() for name in secret_headers} | set(CREDENTIAL_HEADERS)
    return {
        name: REDACTED if name.lower() in secret or is_secret_name(name) else value
        for name, value in headers.items()
    }
