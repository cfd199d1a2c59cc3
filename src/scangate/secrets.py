"""Every shape of secret scangate knows, and the one marker that replaces a secret in any output.

A leaf module (standard library only), so the policy loader, the runtime `Redactor`, the domain's
evidence capping and the SARIF formatter all recognize the same shapes and write the same marker
(docs/design.md §6, §9 "Policy errors"; docs/formats.md §1.8 item 5).
"""

from __future__ import annotations

import re

REDACTED = "[redacted by scangate]"
"""What replaces a secret in logs, errors and reports: says what happened and who did it."""

SECRET_KEY_WORDS: tuple[str, ...] = ("password", "passwd", "secret", "token", "apikey", "authkey")
"""Words that make a key a credential's name, once case and punctuation are dropped."""

CREDENTIAL_HEADERS: tuple[str, ...] = (
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-auth-token",
)
"""HTTP headers whose values are credentials, in evidence quoted from the scanned app."""

JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*")
"""A JWT: three base64url segments; its JSON header always encodes to `eyJ`."""

BEARER_TOKEN = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9\-._~+/]+=*")
"""`Bearer <token>` in running text; group 1 is the scheme, kept so the text still reads."""

CYBERSECPRO_API_KEY = re.compile(r"\bcsp_[A-Za-z0-9]{16,}")
"""CyberSec Pro keys are `csp_` + 64 hex (docs/providers/cybersecpro.md "API keys"); be generous."""

URL_WITH_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@")
"""`scheme://user:password@`."""

AUTHORIZATION_VALUE = re.compile(
    r"(?i)^\s*(?:authorization:\s*)?(?:bearer|basic)\s+(?=\S*\d)\S{8,}\s*$"
)
"""A whole `Authorization` header value; the token must hold a digit so that prose such as
"Basic authentication page" (an ignore reason) is not mistaken for one."""

SECRET_VALUES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a JWT", JWT),
    ("a CyberSec Pro API key", CYBERSECPRO_API_KEY),
    ("a URL with a password", URL_WITH_PASSWORD),
    ("an Authorization header value", AUTHORIZATION_VALUE),
)
"""The values that are secrets whatever key holds them, with what to call each."""

_CREDENTIAL_HEADER_LINE = re.compile(
    r"^([ \t]*(?:" + "|".join(map(re.escape, CREDENTIAL_HEADERS)) + r")[ \t]*:).*$",
    re.IGNORECASE | re.MULTILINE,
)


def is_secret_key(key: str) -> bool:
    """True for a key named like a credential (`api_key`, `clientSecret`, `X-Auth-Token`).

    A key naming a form *field* is exempt: CyStack's `advances.authentication.password_field`
    holds the login form's input name, not a password (docs/providers/cystack.md,
    `advances.authentication`).
    """
    normal = re.sub(r"[^a-z0-9]", "", key.lower())
    if normal.endswith("field"):
        return False
    return any(word in normal for word in SECRET_KEY_WORDS)


def secret_kind(value: str) -> str | None:
    """What kind of secret `value` looks like (`a JWT`), or None."""
    for kind, pattern in SECRET_VALUES:
        if pattern.search(value):
            return kind
    return None


def redact_secret_values(text: str) -> str:
    """Replace every part of `text` shaped like one of `SECRET_VALUES` (a last line of defence)."""
    for _, pattern in SECRET_VALUES:
        text = pattern.sub(REDACTED, text)
    return text


def redact_tokens(text: str) -> str:
    """Replace bearer tokens and JWTs in `text`, keeping the `Bearer ` that introduces a token."""
    text = BEARER_TOKEN.sub(lambda m: m.group(1) + REDACTED, text)
    return JWT.sub(REDACTED, text)


def redact_credential_headers(text: str) -> str:
    """Blank the value of every credential header line in quoted HTTP evidence.

    The header's name, indentation and colon stay as written; only header *lines* match, so a
    body that merely mentions `Cookie:` mid-line is kept.
    """
    return _CREDENTIAL_HEADER_LINE.sub(lambda m: f"{m[1]} {REDACTED}", text)
