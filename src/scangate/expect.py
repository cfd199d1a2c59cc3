"""`scan.expect`: before any scan starts, check that the target serves the build being gated.

The policy names a URL on the target (relative to `scan.target`, or absolute on the same host)
and a value its response must contain, usually `${GITHUB_SHA}`. scangate expands the `${NAME}`
references itself, from `SCANGATE_*` and CI variables only (never through a shell), sends GET
through the project's HTTP layer (timeouts, retries, redaction), and tries again every few
seconds within `scan.expect.wait`, for a deploy still rolling out. A mismatch at the end starts
no scan and sends no request to the provider: exit 4 (`TargetMismatchError`).
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

from scangate.errors import ProviderError, ScanIncompleteError, UsageError
from scangate.http import Connection, HttpClient, HttpContract
from scangate.model.settings import ExpectSettings
from scangate.redact import Redactor
from scangate.secrets import is_secret_key
from scangate.text import model_text, one_line

VARIABLE_PREFIXES: tuple[str, ...] = (
    "SCANGATE_",
    "GITHUB_",
    "CI_",
    "GIT_",
    "BUILD_",
    "CIRCLE_",
    "BITBUCKET_",
)
"""Where a `${NAME}` of `contains` may come from: scangate's own variables and those CI systems
set for a build (GitHub Actions `GITHUB_SHA`, GitLab `CI_COMMIT_SHA`, Jenkins `GIT_COMMIT` and
`BUILD_TAG`, Azure Pipelines `BUILD_SOURCEVERSION`, CircleCI `CIRCLE_SHA1`, Bitbucket
`BITBUCKET_COMMIT`). Anything else (`HOME`, `AWS_SECRET_ACCESS_KEY`) is refused: the value is
printed in the log, so it must be something a build id is made of. Names that look like a
credential (`GITHUB_TOKEN`, `CI_JOB_TOKEN`) are refused even with an allowed prefix."""

RETRY_EVERY = 3.0
"""Seconds between two tries of the expect URL within `scan.expect.wait`."""
EXCERPT_LIMIT = 80
"""Most characters of the response quoted in a mismatch line."""
SANDBOX_TARGET_PREFIX = "/_target"
"""Path on an emulator under which it plays the scanned target's pages (its version page)."""
_VERSION_KEYS = ("version", "commit", "sha", "git_sha", "revision", "build", "digest", "image")
"""JSON keys whose value a version page most likely means (quoted first in a mismatch)."""

_REFERENCE = re.compile(r"\$\{([^}]*)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class TargetMismatchError(ScanIncompleteError):
    """The target does not serve the expected build (or its expect URL fails): exit 4."""


def template_problem(text: str) -> str | None:
    """Why `contains` is not a usable template (a bad or disallowed `${NAME}`), or None."""
    if not text:
        return "must not be empty"
    for match in _REFERENCE.finditer(text):
        name = match[1]
        if not _NAME.fullmatch(name):
            return f"{match[0]!r} is not a variable reference (write ${{NAME}})"
        if not name.startswith(VARIABLE_PREFIXES):
            allowed = ", ".join(p + "*" for p in VARIABLE_PREFIXES)
            return f"${{{name}}} is not a CI or SCANGATE_ variable (allowed: {allowed})"
        if is_secret_key(name):
            return f"${{{name}}} is named like a secret; its value would be printed in the log"
    if "${" in _REFERENCE.sub("", text):
        return "has an unclosed ${ (write ${NAME})"
    return None


def variables(text: str) -> tuple[str, ...]:
    """The variable names `text` refers to, in order, each once."""
    return tuple(dict.fromkeys(m[1] for m in _REFERENCE.finditer(text)))


def expand(text: str, env: Mapping[str, str]) -> str:
    """`text` with every `${NAME}` replaced from `env`; an unset or empty one is a `UsageError`.

    Only `${NAME}` is read (no `$NAME`, no defaults, no commands): the text never meets a shell.
    """
    problem = template_problem(text)
    if problem is not None:
        raise UsageError(f"scan.expect.contains: {problem}")
    for name in variables(text):
        if not env.get(name, "").strip():
            state = "empty" if name in env else "not set"
            raise UsageError(
                f"scan.expect.contains: ${{{name}}} is {state}",
                hint=f"set {name} in the job's environment, or change scan.expect.contains",
            )
    return _REFERENCE.sub(lambda m: env[m[1]].strip(), text)


def target_base(target: str) -> str | None:
    """`scan.target` as a URL to resolve a relative expect URL against, or None.

    A URL is used as is; a bare host (`staging.example.com`, `localhost:8080`) becomes
    `https://host/`; anything else (a VAddy project id, a CyStack target UUID) is no base.
    """
    text = target.strip()
    if "://" in text:
        split = urlsplit(text)
        return text if split.scheme in ("http", "https") and split.hostname else None
    host = text.split("/", 1)[0]
    if ("." in host or host.split(":", 1)[0] == "localhost") and " " not in host:
        return "https://" + text
    return None


def url_problem(url: str, target: str) -> str | None:
    """Why `url` is not an expect URL for `target` (another host, no base), or None."""
    base = target_base(target)
    if "://" not in url:
        if base is None:
            return (
                f"a relative URL needs scan.target to be a URL or host, not {target!r}; "
                "give an absolute URL"
            )
        return None
    split = urlsplit(url)
    if split.scheme not in ("http", "https") or not split.hostname:
        return f"not an http(s) URL: {url!r}"
    if split.username or split.password:
        return "must not carry credentials in the URL"
    if base is not None:
        host = urlsplit(base).hostname
        if host is not None and split.hostname.lower() != host.lower():
            return (
                f"is on another host ({split.hostname}) than scan.target ({host}); "
                "scangate checks the server it scans"
            )
    return None


def resolve_url(url: str, target: str) -> str:
    """The absolute expect URL (`url_problem` must have found nothing)."""
    if "://" in url:
        return url
    base = target_base(target) or ""
    if not base.endswith("/") and not url.startswith("/"):
        base += "/"
    return urljoin(base, url) if url.startswith("/") else base + url


def excerpt(body: str, expected: str = "", limit: int = EXCERPT_LIMIT) -> str:
    """A short, sanitized piece of a response for a log line: the JSON value that looks like a
    version (`version`, `commit`, `sha`...), else the first non-blank line; quoted, capped."""
    try:
        parsed: Any = json.loads(body)
    except (ValueError, RecursionError):
        parsed = None
    picked = _version_value(parsed) if isinstance(parsed, dict) else None
    if picked is None:
        lines = [line for line in body.splitlines() if line.strip()]
        picked = lines[0] if lines else ""
    text = one_line(model_text(picked), limit)
    return json.dumps(text, ensure_ascii=False) if text else "an empty page"


def _version_value(data: dict[str, Any], depth: int = 0) -> str | None:
    lowered = {str(k).lower(): v for k, v in data.items()}
    for key in _VERSION_KEYS:
        value = lowered.get(key)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    if depth < 2:
        for value in data.values():
            if isinstance(value, dict) and (found := _version_value(value, depth + 1)):
                return found
    return None


def sandbox_route(url: str, base_url: str | None) -> str | None:
    """Under an in-process sandbox, the emulator URL the expect request goes to instead, or None.

    `scangate run --sandbox` points the provider at an emulator on 127.0.0.1 while `scan.target`
    may stay the real staging host: the expect request must not leave the machine. When the
    provider's `base_url` is a sandbox emulator running in this process, a target on another
    host is answered by that emulator's target pages (`/_target/<path>`, the scenario's
    `target_version`). A target on 127.0.0.1 itself is requested directly.
    """
    runtime = sys.modules.get("scangate.sandbox.runtime")
    if runtime is None or base_url is None:
        return None
    root: str | None = runtime.running_root(base_url)
    if root is None:
        return None
    split = urlsplit(url)
    if split.hostname in ("127.0.0.1", "localhost", "::1"):
        return None
    path = split.path or "/"
    return root + SANDBOX_TARGET_PREFIX + path + (f"?{split.query}" if split.query else "")


@dataclass
class ExpectCheck:
    """One run's check of `scan.expect`: expand, request, compare, try again within the wait."""

    settings: ExpectSettings
    target: str
    env: Mapping[str, str]
    log: Callable[[str], None]
    redactor: Redactor = field(default_factory=Redactor)
    verify: bool | str = True
    time_left: Callable[[], float] | None = None
    """Seconds left of `scan.timeout`: the wait never outlasts it."""
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    sandbox_base_url: str | None = None
    """The provider's `base_url`, to tell an in-process sandbox (`sandbox_route`)."""
    every: float = RETRY_EVERY
    tries: int = 0

    def run(self) -> str:
        """Check until the target serves the value or the wait ends; return the value seen.

        Raises `UsageError` (exit 2) for an unknown or empty variable and a bad URL, and
        `TargetMismatchError` (exit 4) when the target keeps serving something else, or its
        expect URL keeps failing.
        """
        expected = expand(self.settings.contains, self.env)
        problem = url_problem(self.settings.url, self.target)
        if problem is not None:
            raise UsageError(f"scan.expect.url: {problem}")
        url = resolve_url(self.settings.url, self.target)
        sent = sandbox_route(url, self.sandbox_base_url) or url
        if sent != url:
            self.log(f"sandbox: the expect request for {url} goes to the emulator ({sent})")
        shown = self.redactor(one_line(expected, EXCERPT_LIMIT))
        where = urlsplit(self.settings.url).path or self.settings.url
        ends = self.monotonic() + self.settings.wait
        client = self._client(sent)
        while True:
            self.tries += 1
            seen, why = self._try(client, sent, expected)
            if why is None:
                self.log(f"the target serves {shown} (from {where}); starting the scan")
                return expected
            left = ends - self.monotonic()
            if self.time_left is not None:
                left = min(left, self.time_left())
            if left <= 0:
                break
            pause = min(self.every, left)
            self.log(
                f"{why}; trying again in {pause:.0f} s, {_left(left - pause)} left"
                if left - pause >= 1
                else f"{why}; trying again in {pause:.0f} s, last try"
            )
            self.sleep(pause)
        waited = f" ({self.tries} tries)" if self.tries > 1 else ""
        raise TargetMismatchError(
            f"{why}{waited}; no scan was started",
            hint=(
                "deploy the build being gated before scanning it, or raise scan.expect.wait"
                if seen
                else "check that the target is up and scan.expect.url is right"
            ),
        )

    def _client(self, url: str) -> HttpClient:
        split = urlsplit(url)
        connection = Connection(
            base_url=f"{split.scheme}://{split.netloc}",
            redactor=self.redactor,
            verify=self.verify,
            timeout=(5.0, 10.0),
            retries=1,
            backoff=0.2,
            backoff_max=1.0,
        )
        contract = HttpContract(provider="the target", credential_hint="no credentials")
        return HttpClient(connection, contract)

    def _try(self, client: HttpClient, url: str, expected: str) -> tuple[bool, str | None]:
        """(a page was read, why it does not match or None when it does)."""
        where = urlsplit(self.settings.url).path or self.settings.url
        shown = self.redactor(one_line(expected, EXCERPT_LIMIT))
        try:
            response = client.request("GET", url, accept_status=range(300, 600))
        except ProviderError as error:
            return False, self.redactor(f"the expect URL {where} failed: {one_line(str(error))}")
        if response.status_code >= 300:
            return False, f"the expect URL {where} answered HTTP {response.status_code}"
        body = response.content.decode(response.encoding or "utf-8", errors="replace")
        if expected in body:
            return True, None
        seen = self.redactor(excerpt(body, expected))
        return True, f"the target serves {seen} (from {where}), not {shown}"


def _left(seconds: float) -> str:
    """`4m50s`, `45s`: what is left of the wait."""
    whole = max(0, round(seconds))
    minutes, rest = divmod(whole, 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"
