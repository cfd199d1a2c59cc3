"""SARIF helpers for where a result points and what it carries: repository-relative DAST URIs,
run slugs, the web request/response evidence (credential headers blanked), and provider text
made safe for GitHub to display."""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from sarif_om import ArtifactContent, WebRequest, WebResponse

from scangate.fingerprint import normalize_path
from scangate.model import Finding
from scangate.secrets import redact_credential_headers
from scangate.text import json_safe, xml_safe

_SLUG_JUNK = re.compile(r"[^a-z0-9._-]+")
_HTTP_URI = re.compile(r"https?://[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
_REQUEST_LINE = re.compile(r"([A-Z]+) (\S+) (HTTP)/(\d(?:\.\d)?)")
_STATUS_LINE = re.compile(r"(HTTP)/(\d(?:\.\d)?) (\d{3})(?: (.*))?")


# -- locations -----------------------------------------------------------------------------------


def dast_uri(url: str, target: str) -> str:
    """`dast/<host>[_<port>]/<path>`: relative, percent-encoded, no query, `index` for `/`.

    GitHub rejects absolute http(s) URIs (formats.md §0, §1.8); volatile path segments become
    `{id}` as in the fingerprint, so the path is stable across scans.
    """
    host, path = _host_and_path(url) or _host_and_path(target) or (target_slug(target), "")
    segments = [_path_segment(s) for s in path.split("/") if s]
    return "/".join(["dast", _segment(host), *(segments or ["index"])])


@lru_cache(maxsize=4096)
def _path_segment(raw: str) -> str:
    """A URL path segment as in the fingerprint (volatile ones become `{id}`), encoded."""
    return _segment(normalize_path(raw).lstrip("/"))


def _host_and_path(url: str) -> tuple[str, str] | None:
    text = json_safe(url.strip())
    if "://" not in text:
        return None
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    suffix = f"_{port}" if port is not None and port != default else ""
    return parts.hostname + suffix, parts.path


def _segment(raw: str) -> str:
    """One percent-encoded path segment; `.` and `..` are encoded so no path can climb out."""
    text = quote(unquote(json_safe(raw)), safe="-._~")
    return text.replace(".", "%2E") if text in (".", "..") else text


def anchor_uri(anchor: str) -> str:
    """`reports.sarif_anchor` as a repository-relative URI."""
    parts = [p for p in anchor.replace("\\", "/").split("/") if p not in ("", ".")]
    return "/".join(_segment(p) for p in parts) or "index"


def target_slug(target: str) -> str:
    """A readable, bounded slug of a scan target (host and path, or the bare value)."""
    found = _host_and_path(target)
    text = f"{found[0]}{found[1]}" if found else target
    readable = slug(text)
    if len(readable) > 80 or not readable:
        readable = f"{readable[:70]}-{short_hash(target)}".lstrip("-")
    return readable


def slug(text: str) -> str:
    """`text` lowercased, with runs of anything but `a-z0-9._-` as one `-`."""
    return _SLUG_JUNK.sub("-", json_safe(text).lower()).strip("-.")


def short_hash(text: str) -> str:
    """Eight hex digits of the SHA-256 of `text`: tells colliding slugs apart."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def http_uri(text: str) -> str | None:
    """`text` if it is a plain http(s) URL that is a valid URI, else None (no `javascript:`)."""
    text = text.strip()
    return text if _HTTP_URI.fullmatch(text) else None


def display(text: str) -> str:
    """Provider text shown by GitHub: JSON-safe, without the control characters that garble it."""
    return xml_safe(json_safe(text))


def cap(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, an ellipsis marking the cut."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rstrip("\\")  # never end on a dangling Markdown escape
    return cut + "…"


# -- web evidence ---------------------------------------------------------------------------------


def web_request(finding: Finding, evidence: bool) -> Any:
    """SARIF §3.46 `webRequest`: target and method, plus the parsed request when kept."""
    if not (finding.method or finding.request):
        return None  # a bare URL (VAddy's console link) is no request
    # Finding text passed `text.model_text` (no lone surrogate): no `json_safe` needed here.
    method = finding.method or None
    request = WebRequest(target=finding.url or None, method=method)
    if not evidence or not finding.request:
        return request
    first, headers, body = _parse_http(finding.request)
    match = _REQUEST_LINE.fullmatch(first) if headers is not None else None
    if match is None:
        request.body = ArtifactContent(text=_redact(finding.request))
        return request
    request.method = request.method or match[1]
    request.protocol, request.version = match[3], match[4]
    request.headers = headers or None
    request.body = ArtifactContent(text=body) if body else None
    return request


def web_response(finding: Finding) -> Any:
    """SARIF §3.47 `webResponse`, parsed from the raw response evidence when it is HTTP."""
    if not finding.response:
        return None
    first, headers, body = _parse_http(finding.response)
    match = _STATUS_LINE.fullmatch(first) if headers is not None else None
    if match is None:
        return WebResponse(body=ArtifactContent(text=_redact(finding.response)))
    return WebResponse(
        protocol=match[1],
        version=match[2],
        status_code=int(match[3]),
        reason_phrase=match[4] or None,
        headers=headers or None,
        body=ArtifactContent(text=body) if body else None,
    )


def _parse_http(raw: str) -> tuple[str, dict[str, str] | None, str]:
    """(start line, headers or None if this is not an HTTP message, body), secrets redacted.

    `raw` is model text (`text.model_text`), which always encodes: nothing to sanitize again.
    """
    head, _, body = _redact(raw).replace("\r\n", "\n").partition("\n\n")
    first, *lines = head.split("\n")
    headers: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not name or " " in name:
            return first, None, body
        key, value = name, value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return first.strip(), headers, body


def _redact(text: str) -> str:
    """Blank credential headers in evidence (design §6; formats.md §1.8 item 5)."""
    return redact_credential_headers(text)
