"""Digest every report of every bundled sandbox scenario, to show a refactor changed no byte.

    python tools/report_digests.py > before.txt     # on the old commit
    python tools/report_digests.py > after.txt      # on the new one
    diff before.txt after.txt                       # empty: the reports are byte-identical

Each provider plays each bundled scenario it supports through the real CLI (`scangate run
--sandbox`), with its example policy. What differs between two runs of the same code is
replaced before hashing: scan ids (the emulators mint new ones), wall-clock timestamps and
durations, and the per-run start marker. Everything else is hashed as written. Scenarios that
only wait (`slow`) are left out to keep the run short.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIP = frozenset({"slow"})
_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?"
    r"|\b\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC\b"
    r"|\d{4}/\d{2}/\d{2} \d{2}(?:\\?:\d{2}){2}"  # NCP's `crawl_time`, also Markdown-escaped
)
_DURATION = re.compile(
    r'(time="|"duration_seconds": |"queued_seconds": |"throttled_seconds": |took )[0-9.]+'
)
_MARKER = re.compile(r"scangate\\{0,2}-[0-9a-f]{8,32}")


def _cases() -> list[tuple[str, str]]:
    from scangate.registry import PROVIDER_NAMES
    from scangate.sandbox import scenarios_for

    return [
        (provider, scenario)
        for provider in PROVIDER_NAMES
        for scenario in scenarios_for(provider)
        if scenario not in SKIP
    ]


def _spellings(scan_id: str) -> list[str]:
    """The id as written, Markdown-escaped (summary, GitLab descriptions) and that JSON-escaped."""
    escaped = re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~&:$])", r"\\\1", scan_id)
    return [scan_id, escaped, escaped.replace("\\", "\\\\")]


def _normalize(text: str, scan_ids: list[str]) -> str:
    for scan_id in sorted(scan_ids, key=len, reverse=True):
        for spelling in sorted(_spellings(scan_id), key=len, reverse=True):
            text = text.replace(spelling, "SCAN-ID")
    text = _TIME.sub("TIME", text)
    text = _DURATION.sub(r"\1N", text)
    return _MARKER.sub("MARKER", text)


def _run(case: tuple[str, str]) -> list[str]:
    provider, scenario = case
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "out"
        policy = ROOT / "examples" / "policies" / f"{provider}.yml"
        done = subprocess.run(
            [sys.executable, "-m", "scangate", "run", "--policy", str(policy)]
            + ["--sandbox", scenario, "--out-dir", str(out)],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=scratch,
            check=False,
        )
        rows = [f"{provider} {scenario} exit {done.returncode}"]
        results = out / "scangate.json"
        scan_ids = []
        if results.is_file():
            data = json.loads(results.read_text(encoding="utf-8"))
            scan_ids = [scan["scan_id"] for scan in data.get("scans", []) if scan.get("scan_id")]
        for path in sorted(out.iterdir()) if out.is_dir() else []:
            text = _normalize(path.read_text(encoding="utf-8"), scan_ids)
            digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
            rows.append(f"{provider} {scenario} {path.name} {digest}")
        return rows


def main() -> int:
    """Print one line per (provider, scenario, report file) with the normalized digest."""
    with ThreadPoolExecutor(4) as pool:
        for rows in pool.map(_run, _cases()):
            print("\n".join(rows), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
