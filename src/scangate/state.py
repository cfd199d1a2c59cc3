"""The scan state file: `scangate start` records the scan it started, `scangate wait` reads it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from scangate.errors import UsageError
from scangate.model import Policy, ScanRef

STATE_FILE = "scangate-state.json"
"""Written by `scangate start` in the reports directory; read by `scangate wait`."""


def write_state(policy: Policy, scan: ScanRef) -> None:
    """Record `scan` in the reports directory for a later `scangate wait`."""
    policy.reports.dir.mkdir(parents=True, exist_ok=True)
    state = {
        "provider": policy.provider.name,
        "scan_id": scan.scan_id,
        "target": scan.target,
        "started_at": datetime.now(UTC).isoformat(),
    }
    (policy.reports.dir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")


def read_state(policy: Policy) -> str:
    """The scan id `scangate start` recorded for this policy's provider."""
    path = policy.reports.dir / STATE_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        scan_id = state["scan_id"]
        if state.get("provider") != policy.provider.name or not isinstance(scan_id, str):
            raise ValueError("recorded for another provider")
    except FileNotFoundError:
        raise UsageError(
            "no --scan-id given and no scan recorded by `scangate start`",
            hint=f"pass --scan-id (or SCANGATE_SCAN_ID); `scangate start` records it in {path}",
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{path}: unreadable scan state ({exc})") from None
    return scan_id
