"""Token login for the providers that take a user and password: when to log in or refresh.

CyberOrigen and CyberSec Pro both issue an access token that lives about an hour. A token is
refreshed a little before it expires (`REFRESH_MARGIN`, at most a tenth of its life), renewed
once on a 401, and a refresh that fails falls back to a fresh login. The requests themselves
are each adapter's (form or JSON, where the refresh token travels); this module only decides.

Pages are read a few at a time (`paging.read_pages`), so every decision is taken under one
lock: a token about to expire is refreshed once, not once per thread, and threads whose
requests all met a 401 with the same token renew it once and resend with the new one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

import requests

from scangate.errors import ProviderAuthError, ProviderError
from scangate.http import HttpClient
from scangate.providers.interface import CredentialSpec

logger = logging.getLogger(__name__)

REFRESH_MARGIN = 300.0
"""Refresh a token this many seconds (at most a tenth of its life) before it expires."""
DEFAULT_TOKEN_LIFE = 3600.0
"""A token's life when the answer does not say (both vendors document 1 hour)."""


class TokenLogin:
    """The access token of one account, logged in and refreshed as needed.

    `login()` and `refresh()` send the vendor's requests and hand the answer to `adopt`.
    With `refresh_token` the refresh needs a refresh token (CyberSec Pro); without it the
    refresh is sent with the current, still valid access token (CyberOrigen).
    """

    def __init__(
        self,
        vendor: str,
        clock: Callable[[], float],
        *,
        login: Callable[[], None],
        refresh: Callable[[], None],
        refresh_token: bool,
    ) -> None:
        """Create a login for `vendor` (its display name, for the log) on `clock`."""
        self.vendor = vendor
        self._clock = clock
        self._login = login
        self._refresh = refresh
        self._by_refresh_token = refresh_token
        self.access = ""
        self.refresh_token = ""
        self.expires_at = 0.0
        self.lifetime = DEFAULT_TOKEN_LIFE
        # Reentrant: `login()` and `refresh()` hand their answer to `adopt` while it is held.
        self._lock = threading.RLock()
        self._sent = threading.local()
        """`token`: the access token this thread last sent (see `renew`)."""

    def headers(self) -> Mapping[str, str]:
        """`Authorization: Bearer <token>` once logged in (the scheme is case-insensitive,
        RFC 7235, though CyberOrigen's answer says `bearer`)."""
        with self._lock:
            access = self.access
        self._sent.token = access
        return {"Authorization": f"Bearer {access}"} if access else {}

    def adopt(
        self, access: str, lifetime: float, refresh: str = "", *, now: float | None = None
    ) -> None:
        """Take the token of a login or refresh answer (already registered as a secret),
        received at `now` (default: the clock's now).

        A refresh answer without a refresh token keeps the old one.
        """
        with self._lock:
            self.access = access
            self.lifetime = lifetime
            self.expires_at = (self._clock() if now is None else now) + lifetime
            if refresh:
                self.refresh_token = refresh

    def ensure(self) -> None:
        """Make sure a usable token is held before a request.

        Threads arriving while another logs in or refreshes wait for it and use its token.
        """
        with self._lock:
            now = self._clock()
            if not self.access or (not self._by_refresh_token and now >= self.expires_at):
                self._login()
            elif now >= self.expires_at - min(REFRESH_MARGIN, self.lifetime / 10):
                self.refresh_or_login(now)

    def renew(self) -> bool:
        """`HttpContract.renew`: after a 401, refresh the token (or log in again); resend.

        When another thread has renewed the token since this one sent its request, the
        request is only resent, with the new token: one 401 wave costs one renewal.
        """
        with self._lock:
            sent = getattr(self._sent, "token", None)
            if sent is not None and self.access and sent != self.access:
                return True
            self.refresh_or_login(self._clock())
            return True

    def refresh_or_login(self, now: float) -> None:
        """Refresh when that is possible, else (or when the refresh fails) log in again."""
        with self._lock:
            if not self._can_refresh(now):
                self._login()
                return
            try:
                self._refresh()
            except ProviderError as exc:
                logger.info(
                    "%s token refresh failed (%s); logging in again", self.vendor, exc.message
                )
                self.refresh_token = ""
                self._login()

    def _can_refresh(self, now: float) -> bool:
        if self._by_refresh_token:
            return bool(self.refresh_token)
        return bool(self.access) and now < self.expires_at


def login_refused(http: HttpClient, response: requests.Response, vendor: str, hint: str) -> None:
    """Raise `ProviderAuthError` for a login `response` that is not a success."""
    if not response.ok:
        raise ProviderAuthError(
            f"{vendor} login failed: {http.status_error(response).message}", hint=hint
        )


def key_or_login(
    key: str, user: str, password: str, *, key_is: str, login_is: str
) -> tuple[CredentialSpec, ...]:
    """The credentials of a login provider: an API key (preferred), or a user and password."""
    return (CredentialSpec.key(key, key_is), CredentialSpec.pair(user, password, login_is))
