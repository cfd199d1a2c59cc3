"""CyberOrigen accounts: plans, API keys with permissions and expiring login tokens.

Facts from `providers/cyberorigen.md` (cited as [FS]) "Authentication", "Rate limits" and
"Scan quotas / concurrency per plan".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from scangate.sandbox.clock import Clock
from scangate.sandbox.wire import BadRequest, Rejected, Request, Response, respond

PERMISSIONS = frozenset(
    {"read:scans", "write:scans", "read:findings", "write:findings", "read:grc", "write:grc"}
)
SANDBOX_API_KEY = "co_sandbox_7f3a9c1e5b2d8f4a6c0e9b3d7a1f5c2e"
"""Full-permission API key of the sandbox account (not a secret: it opens only the sandbox)."""
READ_ONLY_API_KEY = "co_sandbox_ro_2b6e0a4c8f1d5b9e3a7c"
"""A sandbox key without `write:scans`, for permission tests."""
SANDBOX_USERNAME = "ci@sandbox.scangate.invalid"
SANDBOX_PASSWORD = "sandbox-password"
TOKEN_LIFETIME = 3600.0
"""[FS] "Authentication": `expires_in` 3600."""


@dataclass(frozen=True)
class Plan:
    """One plan's limits."""

    name: str
    requests_per_hour: int
    concurrent: int | None
    """Concurrent scans; None is unlimited."""
    monthly: int | None
    """Scans per month; None is unlimited."""
    api_keys: bool
    """API keys exist on Professional and Enterprise only ([FS] "API keys")."""


PLANS = {
    "startup": Plan("startup", 100, 1, 25, api_keys=False),
    "professional": Plan("professional", 500, 3, 150, api_keys=True),
    # Enterprise limits are "custom"; the sandbox picks a generous number.
    "enterprise": Plan("enterprise", 10_000, None, None, api_keys=True),
}


def error_response(status: int, detail: str, code: str) -> Response:
    """Every error is `{"detail", "error_code"}` ([FS] "Error format")."""
    return respond(status, {"detail": detail, "error_code": code})


def reject(status: int, detail: str, code: str) -> Rejected:
    """A `Rejected` carrying an error response."""
    return Rejected(error_response(status, detail, code))


def _unauthorized(detail: str, code: str) -> Rejected:
    # INFERRED [FS]: FastAPI's 401 with the documented error shape.
    response = error_response(401, detail, code).with_headers({"WWW-Authenticate": "Bearer"})
    return Rejected(response)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def bearer(request: Request) -> str | None:
    """The token of an `Authorization: Bearer` header, or None."""
    scheme, _, token = (request.header("Authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class Accounts:
    """The sandbox account: who may call what, and the login tokens it has issued."""

    def __init__(
        self,
        *,
        plan: Plan,
        clock: Clock,
        token_lifetime: float = TOKEN_LIFETIME,
        api_keys: Mapping[str, frozenset[str]] | None = None,
    ) -> None:
        """Create new `Accounts` on `plan`; `api_keys` maps keys to permissions."""
        self.plan = plan
        self.clock = clock
        self.token_lifetime = token_lifetime
        self.api_keys = dict(
            api_keys
            or {
                SANDBOX_API_KEY: PERMISSIONS,
                READ_ONLY_API_KEY: frozenset({"read:scans", "read:findings"}),
            }
        )
        self._tokens: dict[str, float] = {}
        """Token to the clock's `monotonic()` when it expires."""
        self._signing_key = secrets.token_bytes(32)

    def authorize(self, request: Request, permission: str) -> None:
        """Raise `Rejected` unless `request` carries credentials with `permission`."""
        key = request.header("X-API-Key")
        if key is not None:
            self._check_key(key, permission)
            return
        token = bearer(request)
        if token is None:
            raise _unauthorized("Not authenticated", "NOT_AUTHENTICATED")
        self._check_token(token)

    def login(self, request: Request) -> Response:
        """`POST /auth/token`: form-encoded username and password only (OAuth2 password style)."""
        try:
            form = request.form()
        except BadRequest as exc:  # JSON gets FastAPI's 422 ([FS] "Emulator notes")
            raise reject(422, f"Send a form-encoded body: {exc}", "VALIDATION_ERROR") from None
        if not form.get("username") or not form.get("password"):
            raise reject(422, "username and password are required", "VALIDATION_ERROR")
        if (form["username"], form["password"]) != (SANDBOX_USERNAME, SANDBOX_PASSWORD):
            raise _unauthorized("Incorrect username or password", "INVALID_CREDENTIALS")
        return self._issue(form["username"])

    def refresh(self, request: Request) -> Response:
        """`POST /auth/refresh`: "refresh before expiration", so only a valid token qualifies."""
        token = bearer(request)
        if token is None:
            raise _unauthorized("Not authenticated", "NOT_AUTHENTICATED")
        self._check_token(token)
        return self._issue("sandbox")

    def expire(self, request: Request) -> bool:
        """Expire every login token if `request` used one; False for API-key requests."""
        if bearer(request) is None or request.header("X-API-Key") is not None:
            return False
        now = self.clock.monotonic()
        for token, expires in self._tokens.items():
            self._tokens[token] = min(expires, now)
        return True

    def _check_key(self, key: str, permission: str) -> None:
        permissions = self.api_keys.get(key)
        if permissions is None:
            raise _unauthorized("Invalid API key", "INVALID_API_KEY")
        if not self.plan.api_keys:
            raise reject(
                403, "API keys require the Professional or Enterprise plan", "PLAN_UPGRADE_REQUIRED"
            )
        if permission not in permissions:
            raise reject(
                403, f"API key lacks the {permission} permission", "INSUFFICIENT_PERMISSIONS"
            )

    def _check_token(self, token: str) -> None:
        expires = self._tokens.get(token)
        if expires is None:
            raise _unauthorized("Could not validate credentials", "INVALID_TOKEN")
        if expires <= self.clock.monotonic():
            raise _unauthorized("Token has expired", "TOKEN_EXPIRED")

    def _issue(self, subject: str) -> Response:
        """A fresh JWT-shaped token (`eyJ...`), so clients' redaction sees a realistic value."""
        lifetime = self.token_lifetime
        claims = {
            "sub": subject,
            "exp": math.ceil(self.clock.time() + lifetime),
            "jti": secrets.token_hex(8),
        }
        header = _b64(b'{"alg":"HS256","typ":"JWT"}')
        signing_input = f"{header}.{_b64(json.dumps(claims).encode())}"
        signature = hmac.new(self._signing_key, signing_input.encode(), hashlib.sha256).digest()
        token = f"{signing_input}.{_b64(signature)}"
        self._tokens[token] = self.clock.monotonic() + lifetime
        body = {"access_token": token, "token_type": "bearer", "expires_in": math.ceil(lifetime)}
        return respond(200, body)
