"""Reading saved `scangate.json` results back into `ScanResult`s, for `scangate gate --results`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from scangate.errors import ResultsError
from scangate.formats.json import RESULTS_VERSION
from scangate.model import CountSummary, Finding, QueueStats, ScanResult, ScanStatus, Severity
from scangate.text import one_line

_HINT = (
    "pass a scangate.json written by `scangate run` or `scangate gate` of this scangate "
    "version, unedited"
)


def results_schema() -> dict[str, Any]:
    """Return the JSON Schema of `scangate.json`, as shipped inside the package."""
    text = resources.files("scangate").joinpath("schemas/results.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(results_schema())


def load_results(path: Path) -> tuple[ScanResult, ...]:
    """Read, validate and rebuild the scan results saved in the `scangate.json` at `path`.

    Raises `ResultsError` naming the file (and the JSON path of the first problem) when the
    file is missing, unreadable, not JSON, of another version or not valid against the schema.
    """
    data = _read(path)
    _check_version(path, data)
    error = best_match(_validator().iter_errors(data))
    if error is not None:
        raise ResultsError(f"{path}: {error.json_path}: {one_line(error.message, 300)}", hint=_HINT)
    try:
        return tuple(_scan_result(raw, f"$.scans[{i}]") for i, raw in enumerate(data["scans"]))
    except ValueError as exc:
        raise ResultsError(f"{path}: {exc}", hint=_HINT) from None


def load_all(paths: Sequence[Path]) -> tuple[ScanResult, ...]:
    """Load every results file of `paths`, in order, refusing a scan given twice.

    A scan is known by its provider and scan id. Read twice (the same file named twice, or a
    file merged by `scangate gate` next to one of its parts) its findings would count twice,
    so that is a `ResultsError` naming both files.
    """
    files: dict[Path, Path] = {}
    seen: dict[tuple[str, str], Path] = {}
    results: list[ScanResult] = []
    for path in paths:
        identity = _identity(path)
        if identity in files:
            raise ResultsError(_same_file(files[identity], path), hint=_TWICE_HINT)
        files[identity] = path
        for result in load_results(path):
            key = (result.provider, result.scan_id)
            if key in seen:
                raise ResultsError(_twice(result, seen[key], path), hint=_TWICE_HINT)
            seen[key] = path
            results.append(result)
    return tuple(results)


def _twice(result: ScanResult, earlier: Path, path: Path) -> str:
    scan = f"{one_line(result.provider, 40)} scan {one_line(json.dumps(result.scan_id), 80)}"
    where = f"twice in {path}" if earlier == path else f"in both {earlier} and {path}"
    return f"{scan} is given {where}: its findings would be counted twice"


_TWICE_HINT = (
    "pass each scan's scangate.json once; a scangate.json written by `scangate gate` already "
    "holds every scan it merged"
)


def _identity(path: Path) -> Path:
    """The file `path` names, so that `a.json`, `./a.json` and a symlink to it compare equal."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop: load_results names the problem
        return path.absolute()


def _same_file(first: Path, second: Path) -> str:
    named = f"{first} is given twice" if first == second else f"{first} and {second} are one file"
    return f"{named}: its scans would be counted twice"


def _reject_constant(name: str) -> NoReturn:
    # Python's json accepts NaN and Infinity, which are not JSON and slip past `minimum`.
    raise ValueError(f"{name} is not valid JSON")


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultsError(
            f"{path}: results file not found",
            hint="--results takes the scangate.json from the reports directory of a scan job",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: cannot read results file ({exc})", hint=_HINT) from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise ResultsError(f"{path}: not a JSON file ({exc})", hint=_HINT) from None


def _check_version(path: Path, data: Any) -> None:
    """Name the version problem before the schema would report a bare `const` mismatch."""
    if not isinstance(data, dict) or "scangate_results" not in data:
        hint = _HINT
        if isinstance(data, dict) and "scangate_baseline" in data:
            hint = "this is a baseline file: name it in the policy's `baseline:` instead"
        raise ResultsError(
            f'{path}: not a scangate results file (no "scangate_results")', hint=hint
        )
    version = data["scangate_results"]
    if version == RESULTS_VERSION and not isinstance(version, bool):
        return
    newer = isinstance(version, int) and not isinstance(version, bool) and version > RESULTS_VERSION
    raise ResultsError(
        f"{path}: unsupported results version {one_line(json.dumps(version), 40)} "
        f"(this scangate reads version {RESULTS_VERSION})",
        hint="upgrade scangate to the version that wrote this file" if newer else _HINT,
    )


def _timestamp(value: str | None, where: str) -> datetime | None:
    if value is None:
        return None
    try:
        # The schema requires the `Z` suffix; spelled `+00:00`, it reads the same on any Python.
        return datetime.fromisoformat(value[:-1] + "+00:00").astimezone(UTC)
    except ValueError:
        raise ValueError(f"{where}: {value!r} is not a valid date and time") from None


def _scan_result(raw: dict[str, Any], where: str) -> ScanResult:
    summary = raw["count_summary"]
    return ScanResult(
        provider=raw["provider"],
        scanner=raw["scanner"],
        scan_id=raw["scan_id"],
        target=raw["target"],
        status=ScanStatus(raw["status"]),
        completeness=int(raw["completeness"]),
        started_at=_timestamp(raw["started_at"], f"{where}.started_at"),
        finished_at=_timestamp(raw["finished_at"], f"{where}.finished_at"),
        findings=tuple(_finding(f) for f in raw["findings"]),
        count_summary=None if summary is None else _count_summary(summary),
        console_url=raw["console_url"],
        message=raw["message"],
        details=dict(raw["details"]),
        # Files written before the completeness checks have no `shortfall`.
        shortfall=raw.get("shortfall", ""),
        queue=_queue(raw["queue"]) if "queue" in raw else None,
        # Files written before the scanner version was recorded have none: reports say unknown.
        scanner_version=raw.get("scanner_version", ""),
    )


def _queue(raw: dict[str, Any]) -> QueueStats:
    return QueueStats(
        queued_seconds=float(raw["queued_seconds"]),
        throttled_seconds=float(raw["throttled_seconds"]),
        retries=int(raw["retries"]),
        rate_limited=int(raw["rate_limited"]),
        reason=raw["reason"],
    )


def _count_summary(raw: dict[str, Any]) -> CountSummary:
    return CountSummary(
        alert_count=int(raw["alert_count"]),
        scan_count=int(raw["scan_count"]),
        checks=tuple(raw["checks"]),
        console_url=raw["console_url"],
    )


def _finding(raw: dict[str, Any]) -> Finding:
    # Finding(...) rather than Finding.create: the saved fingerprint and evidence are kept as-is.
    cvss = raw["cvss"]
    return Finding(
        fingerprint=raw["fingerprint"],
        rule_id=raw["rule_id"],
        title=raw["title"],
        severity=Severity.parse(raw["severity"]),
        url=raw["url"],
        method=raw["method"],
        parameter=raw["parameter"],
        cvss=None if cvss is None else float(cvss),
        cve_ids=tuple(raw["cve_ids"]),
        cwe_ids=tuple(int(c) for c in raw["cwe_ids"]),
        request=raw["request"],
        response=raw["response"],
        description=raw["description"],
        remediation=raw["remediation"],
        references=tuple(raw["references"]),
        provider_status=raw["provider_status"],
        false_positive=raw["false_positive"],
        console_url=raw["console_url"],
    )
