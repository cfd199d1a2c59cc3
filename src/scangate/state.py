"""The scan state file, `scangate-state.json` in the reports directory.

`run`, `start` and `wait` record the scan they own as soon as it exists (before waiting) with
`settled: false`, and rewrite it `settled: true` once they no longer own it: the scan ended and
its result was fetched, scangate cancelled or deliberately kept it, or `start` handed it over to
a later `wait`. `scangate wait` reads the id `start` recorded; `scangate cleanup` (the GitHub
action's post step, GitLab's `after_script`, Jenkins' `post { aborted }`) cancels a scan left
unsettled by a main step the runner killed (issue 18).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from scangate.errors import UsageError
from scangate.model import Policy, ScanRef

STATE_FILE = "scangate-state.json"
"""Written by `run`, `start` and `wait` in the reports directory; read by `wait` and `cleanup`."""

Command = Literal["run", "start", "wait"]
COMMANDS: tuple[Command, ...] = ("run", "start", "wait")


@dataclass(frozen=True)
class Recorded:
    """A scan as the state file records it."""

    provider: str
    scan_id: str
    target: str
    started_at: str
    command: Command
    settled: bool
    sandbox: bool = False
    """The scan ran on the in-process emulator of `--sandbox`, which ended with its command."""


@dataclass
class ScanState:
    """The state file of one command: `owned` once the scan exists, `settled` when let go.

    Writing never stops the command: a reports directory that cannot be written costs only the
    post step's cleanup, so it is a warning (`warn`), and the scan goes on.
    """

    policy: Policy
    command: Command
    warn: Callable[[str], None]
    sandbox: bool = False
    scan: ScanRef | None = None
    started_at: str = field(default="")
    warned: bool = False

    def owned(self, scan: ScanRef) -> None:
        """Record `scan` as owned by this command (not settled): cleanup would cancel it."""
        self.scan = scan
        self.started_at = datetime.now(UTC).isoformat()
        self._write(settled=False)

    def settled(self, scan: ScanRef | None = None) -> None:
        """Record that this command no longer owns its scan (`scan`: when first known now)."""
        if scan is not None and (self.scan is None or self.scan.scan_id != scan.scan_id):
            self.scan = scan
            self.started_at = datetime.now(UTC).isoformat()
        if self.scan is not None:
            self._write(settled=True)

    def _write(self, *, settled: bool) -> None:
        assert self.scan is not None
        state: dict[str, Any] = {
            "provider": self.policy.provider.name,
            "scan_id": self.scan.scan_id,
            "target": self.scan.target,
            "started_at": self.started_at,
            "command": self.command,
            "settled": settled,
        }
        if self.sandbox:
            state["sandbox"] = True
        directory = self.policy.reports.dir
        path = directory / STATE_FILE
        temporary = directory / f".{STATE_FILE}.{os.getpid()}.tmp"
        try:
            directory.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
            # A rename is atomic: a runner killing the process mid-write (SIGKILL) leaves the
            # previous state or the new one, never half a file for the post step to misread.
            temporary.replace(path)
        except OSError as exc:
            if not self.warned:
                self.warned = True
                self.warn(
                    f"warning: cannot record scan {self.scan.scan_id} in {path} "
                    f"({exc.strerror or exc}); the scan goes on, but `scangate cleanup` will "
                    "not find it if this job is killed"
                )
            try:
                temporary.unlink(missing_ok=True)
            except OSError:
                pass


def load_state(policy: Policy) -> Recorded | None:
    """The recorded scan of this policy's reports directory; None when nothing is recorded."""
    path = policy.reports.dir / STATE_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(state, dict):
            raise ValueError("not a JSON object")
        # Written before issue 18 by `start` only, with no `command` or `settled`: a hand-over.
        command = state.get("command", "start")
        if command not in COMMANDS:
            raise ValueError(f"unknown command {command!r}")
        fields = ("provider", "scan_id", "target")
        values = [state.get(name) for name in fields]
        if not all(isinstance(value, str) and value for value in values):
            raise ValueError("provider, scan_id or target missing")
        return Recorded(
            provider=state["provider"],
            scan_id=state["scan_id"],
            target=state["target"],
            started_at=str(state.get("started_at", "")),
            command=command,
            settled=state.get("settled", True) is not False,
            sandbox=state.get("sandbox") is True,
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: unreadable scan state ({exc})") from None


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
