"""Following `extends:` from a policy file to its bases: local files only, no cycle, bounded.

Each file is checked on its own as a policy fragment (`checks.policy_problems(fragment=True)`)
before its base is read, so a problem is named in the file that has it. The chain is never
fetched: a URL is refused with what to do instead (check the policy repository out).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from scangate.errors import PolicyError
from scangate.policy.checks import policy_problems
from scangate.policy.composer import Document, compose
from scangate.policy.inheritance import Layer
from scangate.policy.problems import InvalidPolicyError
from scangate.secrets import redact_secret_values

MAX_DEPTH = 8
"""Bases above a policy at most: an organisation's layers are few; more is surely a mistake."""

_URL = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*://|[^/\s:@]+@[^/\s:]+:)")
"""`https://…`, `ssh://…`, `file://…`, and scp-like `git@host:org/repo`."""

_FETCH_HINT = (
    "scangate fetches no policy over the network: check the policy repository out in the job "
    "(e.g. a second actions/checkout, or a git clone before scangate runs) and give the path of "
    "its base file relative to this policy, e.g. `extends: ../org-policy/base.yml`"
)


def read_chain(child: Path, document: Document, read: Callable[[Path], str]) -> list[Layer]:
    """`child` and every base it extends, child first, each checked as a policy fragment.

    `read` returns a file's text or raises `PolicyError` (size, encoding, I/O).
    """
    layers = [Layer(child, document, child)]
    seen = {_identity(child): layers[0]}
    while True:
        layer = layers[-1]
        problems = policy_problems(layer.document, fragment=True)
        if problems:
            raise InvalidPolicyError(layer.shown, problems)
        value = layer.document.data.get("extends")
        if value is None:
            return layers
        base = _base_path(layer, value)
        if _identity(base) in seen:
            cycle = [str(item.shown) for item in layers] + [os.path.normpath(base)]
            raise PolicyError(
                f"{layer.shown}: extends: a cycle of policies: {' -> '.join(cycle)} "
                f"(line {_line(layer)})",
                hint="a base policy must not extend, directly or not, a policy extending it",
            )
        if len(layers) > MAX_DEPTH:
            raise PolicyError(
                f"{layers[0].shown}: extends: more than {MAX_DEPTH} base policies "
                f"({' -> '.join(str(item.shown) for item in layers)} -> ...)",
                hint="flatten the chain: an organisation base and a team base are usually enough",
            )
        shown = Path(os.path.normpath(base))
        next_layer = Layer(base, compose(read(base), shown), shown)
        seen[_identity(base)] = next_layer
        layers.append(next_layer)


def _identity(path: Path) -> str:
    # The file itself, however it is reached (`a/../b.yml`, a symlink): what a cycle repeats.
    return os.path.realpath(path)


def _line(layer: Layer) -> int:
    return layer.document.source_map.line(("extends",))


def _base_path(layer: Layer, value: str) -> Path:
    """The base file `extends: value` names, relative to `layer`'s directory; it must exist."""
    if _URL.match(value.strip()):
        said = redact_secret_values(f"{value!r}")
        raise PolicyError(
            f"{layer.shown}: extends: {said} is a URL, not a file (line {_line(layer)})",
            hint=_FETCH_HINT,
        )
    base = layer.path.parent / value
    if not base.is_file():
        what = "is not a file" if base.exists() else "does not exist"
        shown = Path(os.path.normpath(base))
        raise PolicyError(
            f"{layer.shown}: extends: the base policy {shown} {what} (line {_line(layer)})",
            hint=f"the path is relative to {layer.shown}'s directory; {_FETCH_HINT}",
        )
    return base
