"""CyberSec Pro accounts: plans, `csp_` API keys and HS256 access and refresh JWTs.

Facts from `providers/cybersecpro.md` (cited as [FS]) "Basics", "Authentication" and
"Rate limits"; [S0] is the published reference, [R] the implementation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import secrets
import uuid
from collections import deque
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any

from scangate.sandbox.clock import Clock
from scangate.sandbox.wire import BadRequest, Rejected, Request, Response, respond

SANDBOX_API_KEY = "csp_" + "5ca48452c0682424" * 4
"""The sandbox account's key, `csp_` + 64 hex [FS "Basics"] (not a secret: it opens only the
sandbox)."""
SANDBOX_EMAIL = "ci@sandbox.scangate.invalid"
SANDBOX_PASSWORD = "sandbox-password"
ACCESS_LIFETIME = 3600.0
"""[FS "Token lifetime"]: access JWTs live 1 hour."""
REFRESH_LIFETIME = 30 * 86400.0
"""[FS "Token lifetime"]: refresh JWTs live 30 days."""
LOGIN_ATTEMPTS = 5
"""Login attempts allowed per minute per client [FS "POST /api/v1/auth/login"]."""


@dataclass(frozen=True)
class Plan:
    """One plan's limits [FS "Rate limits"]."""

    name: str
    per_minute: int
    """Documented requests per minute [S0]."""
    burst: int
    """Documented burst [S0]; INFERRED to be a token bucket of this size."""
    api_access: bool
    """[R `plan.rs`]: the `api_access` feature (API keys) is on professional and enterprise only."""
    daily_scans: int | None
    """[R]: only the trial's 3 scans a day are checked when a scan is created."""


PLANS = {
    "trial": Plan("trial", 10, 5, api_access=False, daily_scans=3),
    "starter": Plan("starter", 30, 15, api_access=False, daily_scans=None),
    "professional": Plan("professional", 60, 30, api_access=True, daily_scans=None),
    "enterprise": Plan("enterprise", 300, 100, api_access=True, daily_scans=None),
}


def error_response(status: int, message: str, code: str | None = None) -> Response:
    """`{"error": message}`, with `code` where the implementation adds one [FS "Error format"]."""
    body: dict[str, Any] = {"error": message}
    if code:
        body["code"] = code
    return respond(status, body)


def reject(status: int, message: str, code: str | None = None) -> Rejected:
    """A `Rejected` carrying an error response."""
    return Rejected(error_response(status, message, code))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _cookie(request: Request, name: str) -> str | None:
    try:
        jar = SimpleCookie(request.header("Cookie") or "")
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None and morsel.value else None


def bearer(request: Request) -> str | None:
    """The token of an `Authorization: Bearer` header, or None."""
    scheme, _, token = (request.header("Authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


@dataclass
class _Token:
    kind: str
    """`access` or `refresh` (the JWT's `token_type` claim)."""
    expires: float
    """The clock's `monotonic()` when it expires."""


class Accounts:
    """The sandbox account: its plan, its API key and the tokens it has issued."""

    def __init__(
        self,
        *,
        plan: Plan,
        clock: Clock,
        documented: bool,
        token_lifetime: float = ACCESS_LIFETIME,
        minute: float = 60.0,
    ) -> None:
        """Create new `Accounts` on `plan`.

        `documented` selects the published login answer (no refresh token) over the
        implementation's; `token_lifetime` is the access JWT's life in seconds; `minute` is the
        window of the login-attempts limit, in seconds (see `limits`).
        """
        self.plan = plan
        self.clock = clock
        self.documented = documented
        self.token_lifetime = token_lifetime
        self.minute = minute
        self.user_id = str(uuid.uuid4())
        self.org_id = str(uuid.uuid4())
        self._tokens: dict[str, _Token] = {}
        self._attempts: deque[float] = deque()
        self._signing_key = secrets.token_bytes(32)

    def authorize(self, request: Request) -> None:
        """Raise `Rejected` unless `request` carries a valid API key or access JWT.

        [FS "Auth failures on protected routes"]; tokens in the query string are ignored.
        """
        key = request.header("X-API-Key")
        token = bearer(request) or _cookie(request, "access_token_cookie")
        if key is not None or (token or "").startswith("csp_"):
            self._check_key(key if key is not None else token or "")
            return
        if token is None:
            raise reject(401, "Authentication required")
        found = self._tokens.get(token)
        if found is None or found.expires <= self.clock.monotonic():
            raise reject(401, "Invalid or expired token")
        if found.kind != "access":
            raise reject(401, "Access token required")

    def _check_key(self, key: str) -> None:
        # The answers to a bad key and to a plan without `api_access` are INFERRED [FS "Basics"].
        if not hmac.compare_digest(key.strip(), SANDBOX_API_KEY):
            raise reject(401, "Invalid API key")
        if not self.plan.api_access:
            raise reject(402, "Plan upgrade required. Need professional plan.")

    def login(self, request: Request) -> Response:
        """`POST /auth/login` with `{"email", "password", "mfa_code"?}`."""
        body = request.json()
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        email, password = body.get("email"), body.get("password")
        if not isinstance(email, str) or not isinstance(password, str) or not email:
            raise reject(400, "Email and password required")  # wording INFERRED
        now = self.clock.monotonic()
        while self._attempts and self._attempts[0] <= now - self.minute:
            self._attempts.popleft()
        if len(self._attempts) >= LOGIN_ATTEMPTS:
            raise reject(429, "Too many login attempts")
        self._attempts.append(now)
        if (email, password) != (SANDBOX_EMAIL, SANDBOX_PASSWORD):
            raise reject(401, "Invalid email or password")
        access, refresh = self._issue("access"), self._issue("refresh")
        if self.documented:
            return respond(200, {"access_token": access, "token_type": "Bearer"})
        user = {"id": self.user_id, "email": email, "role": "admin", "organization_id": self.org_id}
        answer = {
            "message": "Login successful",
            "user": user,
            "access_token": access,
            "refresh_token": refresh,
        }
        return respond(200, answer)

    def refresh(self, request: Request) -> Response:
        """`POST /auth/refresh`: the refresh JWT as Bearer token or cookie; no new refresh token."""
        token = bearer(request) or _cookie(request, "refresh_token_cookie")
        if token is None:
            raise reject(401, "Refresh token required")
        found = self._tokens.get(token)
        if found is None or found.expires <= self.clock.monotonic():
            raise reject(401, "Invalid refresh token")
        if found.kind != "refresh":
            raise reject(401, "Invalid token type")
        return respond(200, {"access_token": self._issue("access", fresh=False)})

    def expire(self, request: Request) -> bool:
        """Expire every access token if `request` used one (refresh tokens stay valid)."""
        token = bearer(request) or _cookie(request, "access_token_cookie")
        found = self._tokens.get(token or "")
        if found is None or found.kind != "access" or request.header("X-API-Key") is not None:
            return False
        now = self.clock.monotonic()
        for item in self._tokens.values():
            if item.kind == "access":
                item.expires = min(item.expires, now)
        return True

    def _issue(self, kind: str, *, fresh: bool = True) -> str:
        """An HS256 JWT with the implementation's claims [FS "Token lifetime"]."""
        lifetime = self.token_lifetime if kind == "access" else REFRESH_LIFETIME
        issued = self.clock.time()
        claims: dict[str, Any] = {
            "sub": self.user_id,
            "org": self.org_id,
            "role": "admin",
            "iat": math.floor(issued),
            "exp": math.floor(issued + lifetime),
            "token_type": kind,
            "fresh": fresh,
        }
        if kind == "refresh":
            claims["jti"] = str(uuid.uuid4())
        header = _b64(b'{"alg":"HS256","typ":"JWT"}')
        signing_input = f"{header}.{_b64(json.dumps(claims).encode())}"
        signature = hmac.new(self._signing_key, signing_input.encode(), hashlib.sha256).digest()
        token = f"{signing_input}.{_b64(signature)}"
        self._tokens[token] = _Token(kind, self.clock.monotonic() + lifetime)
        return token
