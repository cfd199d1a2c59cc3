"""The error tree and the exit codes: every failure a user can see is an `Error`."""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """The process exit codes; part of the interface (design.md §3)."""

    PASSED = 0
    """The scan completed and the gate passed (or `--report-only`)."""
    GATE_FAILED = 1
    """Findings exceed the policy's thresholds."""
    USAGE_ERROR = 2
    """Bad command line, policy file or missing credentials."""
    PROVIDER_ERROR = 3
    """The provider rejected the credentials, failed after retries or sent an unexpected payload."""
    SCAN_INCOMPLETE = 4
    """The scan timed out, failed, was cancelled, or is partial under `fail_on_incomplete`."""
    INTERRUPTED = 130
    """Stopped by SIGINT."""
    TERMINATED = 143
    """Stopped by SIGTERM."""


class Error(Exception):
    """The root of every error scangate reports to a user.

    `str(error)` is a one-line summary naming the cause; `diagnostics()` adds what to do next.
    """

    exit_status: ExitStatus = ExitStatus.USAGE_ERROR

    def __init__(self, message: str, *, hint: str = "") -> None:
        """Create a new `Error` with a one-line `message` and an optional remediation `hint`."""
        super().__init__(message)
        self.message = message
        self.hint = hint

    def diagnostics(self) -> str:
        """Return the message plus the remediation hint, ready for stderr."""
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class UsageError(Error):
    """A bad command line or environment setting."""


class PolicyError(Error):
    """The policy file is missing, malformed or invalid."""


class CredentialsError(Error):
    """Credentials are missing from the environment (no network call was made)."""


class ResultsError(Error):
    """A saved results or baseline file cannot be read."""


class OutputError(Error):
    """A report cannot be written."""

    exit_status = ExitStatus.PROVIDER_ERROR


class ProviderError(Error):
    """The provider failed: an API error after retries, or a payload we cannot use."""

    exit_status = ExitStatus.PROVIDER_ERROR


class ProviderAuthError(ProviderError):
    """The provider rejected the credentials (401/403, failed login)."""


class ProviderUnavailableError(ProviderError):
    """The provider could not be reached (connection error, timeout) after retries."""


class ProviderRateLimitError(ProviderError):
    """The provider kept answering 429 after retries, or a plan quota is exhausted."""


class ProviderBusyError(ProviderRateLimitError):
    """The provider refused a request for now: nothing was processed, and it may pass later.

    A plan's concurrent-scan or start-rate limit, a target with a scan running, or a rate limit
    whose wait outlasts what is left of `scan.timeout`. Before a scan exists the runner queues
    the start on it (waiting within `scan.timeout`); anywhere else it is a rate-limit error.
    """

    def __init__(
        self,
        message: str,
        *,
        hint: str = "",
        queue: str = "a free scan slot",
        usage: str = "",
        retry_after: float | None = None,
        per_target: bool = False,
        start_refused: bool = False,
    ) -> None:
        """Create a new `ProviderBusyError`.

        `queue` names what the start waits for (`a free scan slot`), `usage` says how full it is
        (`3 of 3 in use`), `retry_after` is the wait the provider asked for, when it said, and
        `per_target` marks a refusal because of a scan running for the same target.
        `start_refused` is True when the refused request was the scan start itself, so that it
        provably started nothing and may be sent again (a lookup's refusal proves nothing).
        """
        super().__init__(message, hint=hint)
        self.queue = queue
        self.usage = usage
        self.retry_after = retry_after
        self.per_target = per_target
        self.start_refused = start_refused


class UnexpectedResponseError(ProviderError):
    """The provider answered with a body we cannot parse or that lacks required fields."""


class AmbiguousStartError(ProviderError):
    """The start request was sent but its outcome is unknown (no or unreadable answer).

    The runner must look for the scan this request may have created before anything else.
    """


class ScanIncompleteError(Error):
    """The scan did not complete (timeout, failed, cancelled), or its target is busy."""

    exit_status = ExitStatus.SCAN_INCOMPLETE


class QueueTimeoutError(ScanIncompleteError):
    """`scan.timeout` ran out while the start was still queued behind a plan limit (exit 4)."""
