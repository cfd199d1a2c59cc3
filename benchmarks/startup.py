"""Benchmark start-up: `scangate --version` (and `--help`) against `python3 -c pass`.

Run `python benchmarks/startup.py [--runs N]`. It times N runs (default 40) of each command,
alternating them so that a busy machine slows both alike, and prints the medians and their
ratio. `scangate` is the console script installed next to this Python (what the image's
ENTRYPOINT runs), or `python -m scangate` when there is none. It exits 1 when the median ratio
for `--version` is above 3 (issue 8: "`scangate --version` and `--help` import nothing heavy").

The baseline is the same interpreter with the same `site` start-up, so the ratio measures what
scangate itself adds: the argparse parser and `scangate.cli`, nothing of the commands.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

MAX_RATIO = 3.0


def scangate_command() -> list[str]:
    """The console script next to this interpreter, else `python -m scangate`."""
    script = Path(sys.executable).parent / "scangate"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "scangate"]


def _time(command: list[str]) -> float:
    began = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - began


def measure(commands: dict[str, list[str]], runs: int) -> dict[str, float]:
    """The median seconds of each command over `runs` interleaved runs (after one warm-up)."""
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for command in commands.values():
        _time(command)
    for _ in range(runs):
        for name, command in commands.items():
            samples[name].append(_time(command))
    return {name: statistics.median(values) for name, values in samples.items()}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print a Markdown table, return 1 if the target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args(argv)
    scangate = scangate_command()
    commands = {
        "python3 -c pass": [sys.executable, "-c", "pass"],
        "scangate --version": [*scangate, "--version"],
        "scangate --help": [*scangate, "--help"],
    }
    medians = measure(commands, args.runs)
    base = medians["python3 -c pass"]
    print(f"Start-up, median of {args.runs} runs ({' '.join(scangate)}):\n")
    print("| command | median (ms) | ratio |")
    print("|---|---:|---:|")
    for name, seconds in medians.items():
        print(f"| `{name}` | {seconds * 1000:.1f} | {seconds / base:.2f}x |")
    ratio = medians["scangate --version"] / base
    if ratio > MAX_RATIO:
        print(f"\nFAILED: `scangate --version` takes {ratio:.2f}x; the target is {MAX_RATIO:g}x.")
        return 1
    print(f"\n`scangate --version` median ratio: {ratio:.2f}x (target at most {MAX_RATIO:g}x).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
