"""Stable finding fingerprints: one value shared by SARIF, JUnit, baselines, ignores and JSON.

A fingerprint is the first 32 hex digits of SHA-256 over
`provider | rule | METHOD | normalized URL | parameter` (a `\\` or `|` inside a field is
backslash-escaped), where the URL is normalized so that re-running the same scan gives the same
value:

- scheme and host are lower-cased, default ports (80 for http, 443 for https) dropped;
- path segments that are volatile become `{id}`: all digits, UUIDs, hex strings of 16+
  characters (hashes, session ids) and opaque tokens (a run of 16+ letters and digits holding
  at least two digits, as in `sess_8f3kd92jf83hd72hf8e3` or a base64 value); readable names
  such as `upgrade-guide-from-v1-to-v2` or `getUserByIdV2Handler` are kept;
- the query keeps its parameter names, sorted and de-duplicated, and drops every value;
- the fragment, user info and a trailing `/` are dropped; an empty path is `/`.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from urllib.parse import unquote, urlsplit

_UUID = re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$", re.I)
_HEX = re.compile(r"^[0-9a-f]{16,}$", re.I)
_DIGITS = re.compile(r"^\d+$")
_TOKEN = re.compile(r"^[A-Za-z0-9_\-=.~+]+$")
_TOKEN_RUN = re.compile(r"[A-Za-z0-9]{16,}")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_DEFAULT_PORTS = {"http": 80, "https": 443}


@lru_cache(maxsize=4096)
def _is_volatile(segment: str) -> bool:
    # Cached: a scan's URLs share most of their segments (`api`, `v1`, a resource name), and a
    # 100,000-finding scan would otherwise run these patterns over each of them every time.
    if _DIGITS.match(segment) or _UUID.match(segment) or _HEX.match(segment):
        return True
    # An opaque token (session id, signed key, cache-busting hash) holds a long run mixing
    # letters and several digits; words joined by `-`/`_` (a slug, even with a version) do not.
    if not _TOKEN.match(segment):
        return False
    return any(
        len(re.findall(r"\d", run)) >= 2 and re.search(r"[A-Za-z]", run)
        for run in _TOKEN_RUN.findall(segment)
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
        # Only a leading `scheme://` makes it absolute: `host/path?next=https://x` is a bare host.
        parts = urlsplit(text if _SCHEME.match(text) else "//" + text, scheme="")
        port = parts.port
    except ValueError:
        return text
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    # `hostname` drops an IPv6 literal's brackets; keep them so the port stays unambiguous.
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and _DEFAULT_PORTS.get(scheme) != port:
        netloc = f"{netloc}:{port}"
    names = sorted({pair.split("=", 1)[0] for pair in parts.query.split("&") if pair})
    query = ("?" + "&".join(names)) if names else ""
    prefix = f"{scheme}://" if scheme else ""
    return f"{prefix}{netloc}{normalize_path(parts.path)}{query}"


def compute_fingerprint(provider: str, rule: str, method: str, url: str, parameter: str) -> str:
    """Return the fingerprint of one finding (32 lower-case hex digits)."""
    fields = (provider.lower(), rule.strip(), method.strip().upper(), normalize_url(url), parameter)
    key = "|".join(_escape_separator(f) for f in fields)
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _escape_separator(field: str) -> str:
    # Without this, rule `a|B` + method `C` and rule `a` + method `B|C` would collide. Fields
    # holding neither `\` nor `|` (nearly all) are unchanged, and so are their fingerprints.
    return field.replace("\\", "\\\\").replace("|", "\\|")
