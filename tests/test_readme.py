"""README.md tells the truth: its commands run as pasted, its flags and policy keys exist.

Every fenced block of the README is classified here. Shell blocks (`sh`, `bash`, `shell`,
`console`) are split into command lines; each one is either run through the real CLI in a
temporary copy of the files it needs (`examples/`, a `.scangate.yml`), with `CI=true`, stdin
closed and the emulators on 127.0.0.1, or listed in `NOT_RUNNABLE` with the test that covers
it instead. A README command in neither list fails until it is classified. YAML blocks are
policies (validated by `scangate validate`), sandbox scenarios (served by `scangate sandbox`)
or workflows (checked in `tests/ci/test_examples.py`); output samples (untagged, `text`) are
not run, except the policy error sample, which `scangate validate` must reproduce.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT

README = ROOT / "README.md"
SHELL_BLOCKS = frozenset({"sh", "bash", "shell", "console"})
OUTPUT_BLOCKS = frozenset({"", "text"})
REPORTS = ("scangate.sarif", "junit.xml", "gl-dast-report.json", "scangate.json", "summary.md")
QUICK_START_POLICY = ROOT / "examples" / "policies" / "cyberorigen.yml"
"""The `./.scangate.yml` the README's quick start reads (the CyberOrigen example)."""


@dataclass(frozen=True)
class Expect:
    """What the README states or implies about a command it shows."""

    exit: int
    files: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    why: str = ""


RUNNABLE: dict[str, Expect] = {
    "scangate run --policy examples/policies/cyberorigen.yml --sandbox": Expect(
        0,
        tuple(f"scangate-reports/{name}" for name in REPORTS),
        why="'try it, no account'; the example policy says exit 0 (passed with warnings)",
    ),
    "scangate validate": Expect(0, why="'check ./.scangate.yml, print the effective settings'"),
    "scangate run": Expect(
        0,
        tuple(f"scangate-reports/{name}" for name in REPORTS),
        # The quick start's API key is a placeholder: the run goes to the emulator the README's
        # next paragraph offers (`--sandbox`, here through its environment variable).
        env={"SCANGATE_SANDBOX": "findings"},
        why="'start, wait, gate, write scangate-reports/'",
    ),
    "scangate gate --policy examples/policies/cyberorigen.yml "
    "--results examples/results/cyberorigen-findings.json "
    "--results examples/results/vaddy-findings.json": Expect(
        0,
        tuple(f"scangate-reports/{name}" for name in REPORTS),
        why="'re-gates them ... and merges them'; the CyberOrigen example fails only on critical",
    ),
}
"""README commands run here, by their words (comments dropped, `&&` parts apart)."""

NOT_RUNNABLE: dict[str, str] = {
    "pip install .": "installs into the test's own environment; the clean-clone install is "
    "tests/ci/test_image_install.py and .ci/run",
    "make test": "it is this suite",
    "make lint": "the linters, run by .ci/run and CI on the whole tree, not a scangate behaviour",
    "make bench": "benchmarks are not run in tests (benchmarks/README.md); each script checks its "
    "own targets",
    "export CYBERORIGEN_API_KEY=...": "a placeholder credential; the quick start's `scangate run` "
    "is run above against the emulator instead",
    "docker build -t scangate .": "no Docker engine here; the Dockerfile is linted by hadolint "
    "and the image's install is rehearsed in tests/ci/test_examples.py and "
    "tests/ci/test_image_install.py",
    'docker run --rm -v "$PWD:/work" -w /work -e CYBERORIGEN_API_KEY scangate run': "no Docker "
    "engine or account here; the image's entrypoint and user are checked in "
    "tests/ci/test_examples.py",
    "scangate verify scangate.intoto.json --subject ghcr.io/acme/shop@sha256:"
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef --max-age 7d "
    "--key scangate.pub": "needs the signed statement of a real build and its public key; verify "
    "runs through the CLI on signed envelopes and bundles, for the pass and every refusal, in "
    "tests/test_verify.py, and on a run's own statement in tests/e2e/test_attestation.py",
}
"""README commands that cannot run here, each with where it is verified instead."""


@dataclass(frozen=True)
class Block:
    """One fenced block of the README."""

    info: str
    line: int
    text: str


@cache
def readme_text() -> str:
    return README.read_text(encoding="utf-8")


def fenced_blocks(text: str) -> list[Block]:
    """Every ``` block, with its info string and the line of its opening fence."""
    blocks: list[Block] = []
    info: str | None = None
    start, body = 0, list[str]()
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("```"):
            if info is None:
                info, start, body = line[3:].strip(), number, []
            else:
                blocks.append(Block(info, start, "\n".join(body) + "\n"))
                info = None
        elif info is not None:
            body.append(line)
    assert info is None, f"README.md: the block opened at line {start} is never closed"
    return blocks


def blocks_of(*infos: str) -> list[Block]:
    return [block for block in fenced_blocks(readme_text()) if block.info in infos]


def command_lines(block: Block) -> list[str]:
    """The commands of a shell block: `$ ` lines of a console block, else every line."""
    lines = block.text.splitlines()
    if block.info == "console":
        lines = [line[2:] for line in lines if line.startswith("$ ")]
    commands = []
    for line in lines:
        words = shlex.split(line, comments=True)
        commands += [" ".join(map(_quoted, part)) for part in _and_parts(words) if part]
    return commands


def _and_parts(words: list[str]) -> Iterator[list[str]]:
    part: list[str] = []
    for word in words:
        if word == "&&":
            yield part
            part = []
        else:
            part.append(word)
    yield part


def _quoted(word: str) -> str:
    # Words are compared as the README spells them; only words with spaces or `$` had quotes.
    return f'"{word}"' if re.search(r"[\s$]", word) else word


def readme_commands() -> list[str]:
    return [command for block in blocks_of(*SHELL_BLOCKS) for command in command_lines(block)]


def fresh_checkout(tmp_path: Path) -> Path:
    """A working directory with what the README's commands read: examples/ and .scangate.yml."""
    work = tmp_path / "work"
    shutil.copytree(ROOT / "examples", work / "examples")
    shutil.copyfile(QUICK_START_POLICY, work / ".scangate.yml")
    return work


def run_cli(
    words: list[str], cwd: Path, extra: Mapping[str, str] = {}
) -> subprocess.CompletedProcess[str]:
    """`scangate WORDS...` in a subprocess, as a CI job would: CI=true, no stdin."""
    assert words[0] == "scangate", words
    env = {**os.environ, "CI": "true", **extra}
    return subprocess.run(
        [sys.executable, "-m", "scangate", *words[1:]],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- the commands ---------------------------------------------------------------------------


def test_every_readme_command_is_classified() -> None:
    commands = set(readme_commands())
    unclassified = commands - RUNNABLE.keys() - NOT_RUNNABLE.keys()
    assert not unclassified, (
        f"README commands neither run nor excused: {sorted(unclassified)}; add each to RUNNABLE "
        "(with the exit code the README implies) or NOT_RUNNABLE (with where it is verified)"
    )
    stale = (RUNNABLE.keys() | NOT_RUNNABLE.keys()) - commands
    assert not stale, f"classified commands the README no longer shows: {sorted(stale)}"


@pytest.mark.parametrize("command", sorted(RUNNABLE))
def test_the_readme_command_runs_as_pasted(command: str, tmp_path: Path) -> None:
    expect = RUNNABLE[command]
    work = fresh_checkout(tmp_path)
    ran = run_cli(shlex.split(command), work, expect.env)
    assert ran.returncode == expect.exit, (
        f"{command!r} exited {ran.returncode}, README implies {expect.exit} ({expect.why})\n"
        f"{ran.stdout}\n{ran.stderr}"
    )
    assert "Traceback" not in ran.stderr
    missing = [name for name in expect.files if not (work / name).is_file()]
    assert not missing, f"{command!r} did not write {missing}"


def test_the_quick_start_commands_run_in_order_in_one_directory(tmp_path: Path) -> None:
    """The quick start block pasted as a whole: validate prints the settings, run reports."""
    (quick_start,) = [block for block in blocks_of("sh") if "scangate validate" in block.text]
    work = fresh_checkout(tmp_path)
    for command in command_lines(quick_start):
        if command in NOT_RUNNABLE:
            continue
        ran = run_cli(shlex.split(command), work, RUNNABLE[command].env)
        assert ran.returncode == RUNNABLE[command].exit, f"{command}: {ran.stderr}"
        if command == "scangate validate":
            settings = json.loads(ran.stdout)
            assert settings["provider"]["name"] == "cyberorigen"
            assert settings["source"] == ".scangate.yml"
    verdict = json.loads((work / "scangate-reports" / "scangate.json").read_text("utf-8"))
    assert verdict["verdict"] == "passed"


def test_every_path_a_readme_command_names_is_in_the_repository() -> None:
    named = {
        word
        for command in readme_commands()
        for word in shlex.split(command)
        if "/" in word
        and not word.startswith(("-", "/", "$", '"'))
        and "://" not in word
        and "@" not in word  # an image reference (`ghcr.io/acme/shop@sha256:...`), not a path
    }
    assert named, "the README's commands name no file: the check lost its subject"
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert not missing, f"README commands name files that do not exist: {missing}"


def test_the_unrunnable_list_names_where_each_is_verified() -> None:
    for command, reason in NOT_RUNNABLE.items():
        for test_file in re.findall(r"tests/[\w/]+\.py", reason):
            assert (ROOT / test_file).is_file(), f"{command!r}: {test_file} does not exist"


# --- the YAML and output blocks -------------------------------------------------------------


def yaml_kind(document: Any) -> str:
    """What a README YAML block is: a policy, a policy fragment, a scenario, a workflow."""
    assert isinstance(document, dict), document
    if "jobs" in document:
        return "workflow"
    if "extends" in document or "findings" in document:
        return "scenario"
    if "version" in document and "provider" in document:
        return "policy"
    if document.keys() <= {"provider", "scan", "gate", "ignore", "reports", "baseline"}:
        return "policy fragment"
    raise AssertionError(f"unclassified README YAML block: keys {sorted(document)}")


def yaml_blocks(kind: str) -> list[Block]:
    return [b for b in blocks_of("yaml", "yml") if yaml_kind(yaml.safe_load(b.text)) == kind]


def test_every_readme_block_has_a_known_kind() -> None:
    known = SHELL_BLOCKS | OUTPUT_BLOCKS | {"yaml", "yml"}
    strange = [(b.line, b.info) for b in fenced_blocks(readme_text()) if b.info not in known]
    assert not strange, f"README blocks of an unchecked kind (line, info): {strange}"
    kinds = {yaml_kind(yaml.safe_load(block.text)) for block in blocks_of("yaml", "yml")}
    assert kinds == {"policy", "policy fragment", "scenario", "workflow"}, kinds


def test_the_readme_policies_validate(tmp_path: Path) -> None:
    blocks = yaml_blocks("policy") + yaml_blocks("policy fragment")
    assert blocks
    for block in blocks:
        text = block.text if "version:" in block.text else "version: 1\n" + block.text
        policy = tmp_path / f"readme-line-{block.line}.yml"
        policy.write_text(text, encoding="utf-8")
        ran = run_cli(["scangate", "validate", "--policy", policy.name], tmp_path)
        assert ran.returncode == 0, f"README line {block.line}: {ran.stderr}"


def test_the_readme_scenarios_are_served_by_the_sandbox(tmp_path: Path) -> None:
    blocks = yaml_blocks("scenario")
    assert blocks
    for block in blocks:
        (provider,) = yaml.safe_load(block.text)["options"]
        scenario = tmp_path / f"readme-line-{block.line}.yml"
        scenario.write_text(block.text, encoding="utf-8")
        first_line = serve_scenario(provider, scenario)
        assert first_line.startswith(f"serving {provider} scenario"), f"line {block.line}"


def serve_scenario(provider: str, scenario: Path) -> str:
    """Start `scangate sandbox` on the scenario, read its first line, then stop it."""
    command = [sys.executable, "-m", "scangate", "sandbox", "--provider", provider]
    with subprocess.Popen(
        [*command, "--scenario", str(scenario)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as server:
        try:
            assert server.stdout is not None
            line = server.stdout.readline()
        finally:
            server.send_signal(signal.SIGTERM)
            _, errors = server.communicate(timeout=30)
    assert line, f"the sandbox refused {scenario.name}: {errors}"
    return line


def test_the_policy_error_sample_is_what_validate_prints(tmp_path: Path) -> None:
    """The README's sample error: a bad `ignore[2].expires` on line 31 of `.scangate.yml`."""
    (sample,) = [b for b in blocks_of("") if "ignore[2].expires" in b.text]
    policy = [
        "version: 1",
        "provider: {name: cyberorigen}",
        "scan: {target: staging.example.com}",
        "ignore:",
        '  - {rule: a, reason: "one"}',
        '  - {rule: b, reason: "two"}',
        "  - rule: c",
        '    reason: "three"',
    ]
    policy += ["# padding"] * (30 - len(policy)) + ["    expires: 2027-3-1"]
    (tmp_path / ".scangate.yml").write_text("\n".join(policy) + "\n", encoding="utf-8")
    ran = run_cli(["scangate", "validate"], tmp_path)
    assert ran.returncode == 2
    assert sample.text.strip() in ran.stderr


# --- flags, help and the policy reference ---------------------------------------------------


@cache
def raw_help(command: str = "") -> str:
    """`scangate [COMMAND] --help` as printed."""
    words = ["scangate", command, "--help"] if command else ["scangate", "--help"]
    ran = run_cli(words, ROOT)
    assert ran.returncode == 0, ran.stderr
    return ran.stdout


def help_text(command: str = "") -> str:
    """The help with argparse's line wrapping undone."""
    return " ".join(raw_help(command).split())


def commands() -> list[str]:
    """The commands `scangate --help` lists (one per line, indented under COMMAND)."""
    listing = raw_help().split("COMMAND\n", 1)[1].split("\noptions:", 1)[0]
    return re.findall(r"^ {4}([a-z]+)\b", listing, re.M)


def help_flags(command: str = "") -> set[str]:
    return set(
        re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", help_text(command).split("exit codes:")[0])
    )


def table_rows(heading: str) -> list[list[str]]:
    """The rows of the first table after `heading`, as lists of cells."""
    text = readme_text().split(heading, 1)[1]
    rows = []
    for line in text.splitlines():
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
        elif rows:
            break
    return rows[2:]


def test_the_readme_lists_every_command_and_only_those() -> None:
    documented = {row[0].strip("`").split()[1] for row in table_rows("## Commands")}
    assert documented == set(commands())


def test_every_flag_of_the_commands_table_is_in_that_commands_help() -> None:
    for row in table_rows("## Commands"):
        command = row[0].strip("`").split()[1]
        for flag in re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", row[0]):
            assert flag in help_flags(command), f"README: `scangate {command} {flag}`"


def test_every_flag_of_the_flags_table_exists_with_its_variable() -> None:
    rows = table_rows("Flags and their environment defaults:")
    assert len(rows) >= 6
    for flag_cell, variable_cell, for_cell in rows:
        flag, variable = flag_cell.strip("`").split()[0], variable_cell.strip("`")
        named = re.findall(r"`(\w+)`", for_cell) or [c for c in commands() if flag in help_flags(c)]
        assert named, f"README documents {flag}, which no command has"
        for command in named:
            assert flag in help_flags(command), f"README: `scangate {command} {flag}`"
            assert f"{flag}" in help_text(command) and f"(env: {variable})" in help_text(command), (
                f"`scangate {command} --help` does not say {flag} reads {variable}"
            )


def test_debug_is_accepted_before_and_after_every_command() -> None:
    assert "--debug" in help_flags()
    for command in commands():
        assert "--debug" in help_flags(command), command


def test_the_quick_start_scenarios_are_what_sandbox_help_lists() -> None:
    """The shared scenarios the README names are every provider's; `sandbox --help` lists them."""
    sentence = readme_text().split("Scenarios: ", 1)[1].split("plus provider-specific", 1)[0]
    shared = set(re.findall(r"`([a-z-]+)`", sentence))
    listed = dict(re.findall(r"^  ([a-z-]+): (.+)$", raw_help("sandbox"), re.M))
    assert len(listed) == 5, raw_help("sandbox")
    for provider, scenarios in listed.items():
        assert shared <= set(scenarios.split(", ")), provider
    specific = set().union(*(s.split(", ") for s in listed.values())) - shared
    for scenario in specific:
        assert f"`{scenario}`" in readme_text(), f"README never names the scenario {scenario}"


def test_every_flag_in_the_help_is_documented_in_the_readme() -> None:
    readme = readme_text()
    for command in ["", *commands()]:
        for flag in help_flags(command) - {"-h", "--help"}:
            assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", readme), (
                f"`scangate {command} {flag}` is not in README.md"
            )


def test_the_report_only_exceptions_are_documented() -> None:
    """README says what --report-only does not turn into 0 (src/scangate/commands.py `_drive`)."""
    section = readme_text().split("### Report-only runs\n", 1)[1].split("\n## ", 1)[0]
    for claim in (
        "still exits 2",
        "*before any scan exists*",
        "still exits 3 and writes no report",
        "still exit 4, 130 and 143",
    ):
        assert claim in section, claim


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_report_only_hides_a_provider_error_only_once_the_scan_exists(tmp_path: Path) -> None:
    """What "Report-only runs" says, through the CLI (src/scangate/commands.py `_drive`)."""
    policy = (ROOT / "examples" / "policies" / "cybersecpro.yml").read_text(encoding="utf-8")
    after = tmp_path / "after"
    after.mkdir()
    (after / "p.yml").write_text(policy, encoding="utf-8")
    # result-error: the scan exists and completes, then its result answers with an error.
    ran = run_cli(
        ["scangate", "run", "--policy", "p.yml", "--sandbox", "result-error", "--report-only"],
        after,
    )
    assert ran.returncode == 0, ran.stderr
    results = json.loads((after / "scangate-reports" / "scangate.json").read_text("utf-8"))
    assert results["verdict"] == "incomplete"
    assert "execution record missing" in results["scans"][0]["message"]

    before = tmp_path / "before"
    before.mkdir()
    closed = re.sub(r"base_url: \S+", f"base_url: http://127.0.0.1:{free_port()}/api/v1", policy)
    (before / "p.yml").write_text(closed, encoding="utf-8")
    key = {"CYBERSECPRO_API_KEY": "csp_" + "a" * 64}
    ran = run_cli(["scangate", "run", "--policy", "p.yml", "--report-only"], before, key)
    assert ran.returncode == 3, ran.stderr
    assert "cannot reach 127.0.0.1" in ran.stderr
    assert sorted(p.name for p in before.iterdir()) == ["p.yml"]


@cache
def policy_schema() -> Any:
    ran = run_cli(["scangate", "schema"], ROOT)
    assert ran.returncode == 0, ran.stderr
    return json.loads(ran.stdout)


def schema_keys(node: Any, schema: Any, prefix: str = "") -> set[str]:
    """Dotted property paths of a schema node (`ignore[]` for the list's items), refs followed."""
    if "$ref" in node:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[1]]
    keys: set[str] = set()
    for name, child in node.get("properties", {}).items():
        keys.add(prefix + name)
        keys |= schema_keys(child, schema, f"{prefix}{name}.")
    if "items" in node and isinstance(node["items"], dict):
        keys |= schema_keys(node["items"], schema, prefix.rstrip(".") + "[].")
    return keys


def reference_block() -> Block:
    (block,) = [b for b in yaml_blocks("policy") if "provider:\n  name: cyberorigen" in b.text]
    return block


def reference_keys(document: Any, prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for name, value in document.items():
        keys.add(prefix + name)
        if isinstance(value, dict) and name != "options" and name != "max":
            keys |= reference_keys(value, f"{prefix}{name}.")
        if isinstance(value, list) and value and isinstance(value[0], dict):
            keys |= reference_keys(value[0], f"{prefix}{name}[].")
    return keys


def test_the_policy_reference_and_the_schema_have_the_same_keys() -> None:
    block = reference_block()
    documented = reference_keys(yaml.safe_load(block.text))
    match_keys = re.search(r"match keys \(ANDed\): ([\w, ]+)", block.text)
    assert match_keys, "the reference no longer lists the ignore match keys"
    documented |= {f"ignore[].{key.strip()}" for key in match_keys.group(1).split(",")}
    # `extends` is shown commented out: a live one would need its base file beside the README.
    documented |= set(re.findall(r"^# (\w+): ", block.text, re.M))
    schema = policy_schema()
    assert documented == schema_keys(schema, schema)


@pytest.mark.parametrize("key", ["provider.name", "scan.if_running", "scan.on_timeout"])
def test_the_policy_reference_lists_every_allowed_value(key: str) -> None:
    section, name = key.split(".")
    line = re.search(rf"^ +{name}: .*# ([\w-]+(?: \| [\w-]+)+)", reference_block().text, re.M)
    assert line, f"the reference lists no values for {key}"
    schema = policy_schema()["properties"][section]["properties"][name]
    assert line.group(1).split(" | ") == schema["enum"]


def readme_provider_section(display_name: str) -> str:
    return readme_text().split(f"### {display_name}\n", 1)[1].split("\n### ", 1)[0]


def test_every_provider_option_is_documented_in_its_readme_section() -> None:
    ran = run_cli(["scangate", "providers"], ROOT)
    assert ran.returncode == 0, ran.stderr
    listed = re.findall(r"^(\S+) \((.+)\)\n(?:  .*\n)*?  options: +(.*)$", ran.stdout, re.M)
    assert len(listed) == 5, ran.stdout
    for _provider, display_name, options in listed:
        section = readme_provider_section(display_name)
        for option in options.split(", "):
            assert f"`{option}`" in section, f"README ### {display_name} omits `{option}`"
