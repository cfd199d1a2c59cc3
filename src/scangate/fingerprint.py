"""Stable finding fingerprints: one value shared by SARIF, JUnit, baselines, ignores and JSON.

A fingerprint is the first 32 hex digits of SHA-256 over
`provider | rule | METHOD | normalized URL | parameter`, where the URL is normalized so that
re-running the same scan gives the same value:

- scheme and host are lower-cased, default ports (80 for http, 443 for https) dropped;
- path segments that are volatile become `{id}`: all digits, UUIDs, hex strings of 16+
  characters (hashes, session ids) and long opaque tokens mixing letters and digits;
- the query keeps its parameter names, sorted and de-duplicated, and drops every value;
- the fragment, user info and a trailing `/` are dropped; an empty path is `/`.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import unquote, urlsplit

_UUID = re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$", re.I)
_HEX = re.compile(r"^[0-9a-f]{16,}$", re.I)
_DIGITS = re.compile(r"^\d+$")
_TOKEN = re.compile(r"^[A-Za-z0-9_\-=.]{24,}$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _is_volatile(segment: str) -> bool:
    if _DIGITS.match(segment) or _UUID.match(segment) or _HEX.match(segment):
        return True
    # A long opaque token (session id, signed key) mixes letters and digits.
    return bool(
        _TOKEN.match(segment)
        and re.search(r"\d", segment)
        and re.search(r"[A-Za-z]", segment)
    )


def normalize_path(path: str) -> str:
    """Normalize a URL path: volatile segments become `{id}`; no trailing slash."""
    segments = [s for s in path.split("/") if s]
    normal = ["{id}" if _is_volatile(unquote(s)) else s for s in segments]
    return "/" + "/".join(normal)


def normalize_url(url: str) -> str:
    """Normalize `url` as the module docstring describes.

    A value that is not an absolute URL (a bare host, a path) is normalized as well as it can
    be and never raises.
    """
    text = url.strip()
    if not text:
        return ""
    try:
        parts = urlsplit(text if "://" in text else "//" + text, scheme="")
        port = parts.port
    except ValueError:
        return text
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    netloc = host
    if port is not None and _DEFAULT_PORTS.get(scheme) != port:
        netloc = f"{host}:{port}"
    names = sorted({pair.split("=", 1)[0] for pair in parts.query.split("&") if pair})
    query = ("?" + "&".join(names)) if names else ""
    prefix = f"{scheme}://" if scheme else ""
    return f"{prefix}{netloc}{normalize_path(parts.path)}{query}"


def compute_fingerprint(provider: str, rule: str, method: str, url: str, parameter: str) -> str:
    """Return the fingerprint of one finding (32 lower-case hex digits)."""
    key = "|".join(
        (provider.lower(), rule.strip(), method.strip().upper(), normalize_url(url), parameter)
    )
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
