"""The image's install, replayed without Docker: the Dockerfile's COPY and pip steps into a venv.

No Docker engine runs here, so the test reads the Dockerfile and does what its build would do:
send the context through `.dockerignore`, carry out each COPY into a scratch root, and run each
`python -m pip` command of its RUN steps in a new, isolated venv. The venv sees neither this
checkout's sources nor the base interpreter's packages; a `.pth` line lends it the site-packages
of the interpreter running the tests (the one `make tools` installed the test dependencies into,
a venv or not), whose `pip`, `setuptools` and the package's dependencies then serve offline: pip
runs with `--no-index` (the requirements are already satisfied, so nothing is downloaded) and
the wheel build with `--no-build-isolation` (the lent setuptools builds it, as the isolated build
environment would after downloading setuptools). A plain `.pth` line adds a folder to `sys.path`
without running the `.pth` files inside it, so this checkout's editable install stays out of the
venv. Then `scangate run --sandbox` runs from the venv, with the example policy.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shlex
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from ci import ROOT, instructions

DOCKERFILE = ROOT / "Dockerfile"
HEAVY = (
    "requests",
    "urllib3",
    "yaml",
    "jsonschema",
    "sarif_om",
    "scangate.commands",
    "scangate.policy",
    "scangate.formats",
    "scangate.ci",
    "scangate.sandbox",
)
"""Modules `scangate --version` and `--help` must not import (start-up time, issue 8)."""


def _ignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """`.dockerignore` as (is exception, regex), in file order (the last match wins)."""
    patterns = []
    for raw in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        cleaned = os.path.normpath(line.lstrip("!").strip("/"))
        patterns.append((negate, re.compile(_glob_regex(cleaned))))
    return patterns


def _glob_regex(pattern: str) -> str:
    """Docker's pattern language: Go's `filepath.Match` plus `**` for any number of folders."""
    parts = re.split(r"(\*\*/?|\*|\?)", pattern)
    table = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
    return "".join(table.get(part, re.escape(part)) for part in parts)


def _excluded(relative: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether Docker leaves `relative` out of the context: a pattern may match it or a parent."""
    parts = relative.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for negate, regex in patterns:
        if any(regex.fullmatch(candidate) for candidate in candidates):
            excluded = not negate
    return excluded


def build_context(target: Path) -> Path:
    """Copy the repository into `target` as `docker build` would send it, and return `target`."""
    patterns = _ignore_patterns()
    exceptions = [regex.pattern for negate, regex in patterns if negate]
    for directory, folders, files in os.walk(ROOT):
        here = Path(directory).relative_to(ROOT)
        for folder in list(folders):
            relative = (here / folder).as_posix()
            # Descend into an excluded folder only if an exception pattern may reach inside it.
            if _excluded(relative, patterns) and not any(
                e.startswith(re.escape(relative)) for e in exceptions
            ):
                folders.remove(folder)
        for name in files:
            relative = (here / name).as_posix()
            if not _excluded(relative, patterns):
                (target / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / relative, target / relative)
    return target


def _copy(arguments: str, context: Path, root: Path) -> None:
    """Carry out one COPY: sources from the context (or, with --from, the scratch root)."""
    words = shlex.split(arguments)
    source_base = context
    if words[0].startswith("--from="):
        source_base, words = root, words[1:]
    *sources, destination = words
    target = root / destination.lstrip("/")
    for source in sources:
        path = source_base / source.lstrip("/")
        if path.is_dir():
            shutil.copytree(path, target, dirs_exist_ok=True)
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / path.name)


def _pip(command: list[str], root: Path, python: Path) -> list[str]:
    """A `python -m pip ...` line of the Dockerfile, made to run here and offline."""
    subcommand = command[3]
    offline = ["--no-index"] + (["--no-build-isolation"] if subcommand == "wheel" else [])
    args: list[str] = []
    for word in command[4:]:
        if word.startswith("/"):
            matches = sorted(glob.glob(str(root / word.lstrip("/"))))
            args += matches or [str(root / word.lstrip("/"))]
        else:
            args.append(word)
    return [str(python), "-m", "pip", subcommand, *offline, *args]


def replay_build(context: Path, root: Path, python: Path) -> list[list[str]]:
    """Do the Dockerfile's COPY and pip steps, in order; return the pip commands run."""
    ran = []
    for keyword, arguments in instructions(DOCKERFILE):
        if keyword == "COPY":
            _copy(arguments, context, root)
        elif keyword == "RUN":
            for part in arguments.split("&&"):
                words = shlex.split(part)
                if words[:3] == ["python", "-m", "pip"]:
                    command = _pip(words, root, python)
                    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
                    assert done.returncode == 0, done.stdout + done.stderr
                    ran.append(command)
    return ran


def isolated_venv(venv: Path) -> Path:
    """A venv without pip or system packages, lent the running interpreter's site-packages.

    Returns its Python. The lent folders come after the venv's own site-packages, so what the
    replayed `pip install` puts in the venv is what imports.
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    own = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        env=_env(),
        check=True,
    ).stdout.strip()
    lent = dict.fromkeys(
        [
            sysconfig.get_paths()["purelib"],
            sysconfig.get_paths()["platlib"],
            *site.getsitepackages(),
        ]
    )
    (Path(own) / "_scangate_test_dependencies.pth").write_text(
        "".join(f"{folder}\n" for folder in lent if Path(folder).is_dir()), encoding="utf-8"
    )
    return python


def _env() -> dict[str, str]:
    """PATH and HOME only: no PYTHONPATH that could reach this checkout's sources."""
    return {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}


@pytest.mark.slow
def test_the_package_installed_as_the_image_does_runs_the_sandbox(tmp_path: Path) -> None:
    context = build_context(tmp_path / "context")
    assert not list(context.rglob("__pycache__")) and not list(context.rglob("*.egg-info"))
    python = isolated_venv(tmp_path / "venv")
    venv = tmp_path / "venv"
    ran = replay_build(context, tmp_path / "root", python)
    assert [command[3] for command in ran] == ["wheel", "install"]
    located = subprocess.run(
        [str(python), "-c", "import scangate; print(scangate.__file__)"],
        capture_output=True,
        text=True,
        env=_env(),
        check=True,
    )
    assert Path(located.stdout.strip()).is_relative_to(venv)  # not this checkout's src/
    scangate = venv / "bin" / "scangate"
    version = subprocess.run([str(scangate), "--version"], capture_output=True, text=True)
    assert version.stdout.startswith("scangate ")
    policy = ROOT / "examples" / "policies" / "cyberorigen.yml"
    run = subprocess.run(
        [str(scangate), "run", "--policy", str(policy), "--sandbox", "clean", "--out-dir", "out"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    results = json.loads((tmp_path / "out" / "scangate.json").read_text(encoding="utf-8"))
    assert results["verdict"] == "passed"
    assert {p.name for p in (tmp_path / "out").iterdir()} >= {
        "scangate.sarif",
        "junit.xml",
        "gl-dast-report.json",
        "scangate.json",
        "summary.md",
    }


def test_dockerignore_keeps_everything_the_dockerfile_copies_and_nothing_else() -> None:
    patterns = _ignore_patterns()
    for path in ("pyproject.toml", "README.md", "src/scangate/cli.py", "src/scangate/py.typed"):
        assert not _excluded(path, patterns), path
    for path in (
        ".git/config",
        ".env",
        "tests/conftest.py",
        "node_modules/x/index.js",
        "src/scangate/__pycache__/cli.cpython-311.pyc",
        "src/scangate.egg-info/PKG-INFO",
        "scangate-reports/scangate.json",
    ):
        assert _excluded(path, patterns), path


@pytest.mark.parametrize("flag", ["--version", "--help"])
def test_start_up_imports_nothing_heavy(flag: str) -> None:
    code = (
        "import sys\n"
        "from scangate.cli import main\n"
        "try:\n"
        f"    main([{flag!r}])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(' '.join(sorted(sys.modules)), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "usage: scangate" in done.stdout or done.stdout.startswith("scangate ")
    loaded = set(done.stderr.split())
    assert "scangate.cli" in loaded
    heavy = {m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY)}
    assert heavy == set()
