"""Play the CI runners: run the container's command with the environment each runner gives it.

GitHub: `action.yml` is read the way the runner reads it (inputs with their defaults, `runs.env`
expressions, `INPUT_*` variables, `runs.entrypoint` + `runs.args`), and the command runs in a
workspace with `GITHUB_ACTIONS`, `GITHUB_OUTPUT` and `GITHUB_STEP_SUMMARY` set (docs/formats.md
§4.2-§4.4). GitLab: the jobs of `examples/gitlab/.gitlab-ci.yml` run their `script` lines with
their `variables` and GitLab's own (`GITLAB_CI`, `CI_PROJECT_DIR`). Both against the sandbox.
"""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from ci import (
    ROOT,
    base_env,
    commands_in,
    instructions,
    parse_dotenv,
    parse_output_file,
    scangate_shim,
    sections_in,
)
from scangate import __version__
from scangate.sandbox import sandbox_env, start_sandbox

pytestmark = pytest.mark.slow

ACTION = ROOT / "action.yml"
DOCKERFILE = ROOT / "Dockerfile"
BRANDING_COLORS = {"white", "black", "yellow", "blue", "green", "orange", "red", "purple"}
"""GitHub's allowed `branding.color` values (docs/formats.md §4.1, metadata syntax docs)."""
GITLAB_CI = ROOT / "examples" / "gitlab" / ".gitlab-ci.yml"
COUNTED = {"failing", "within_budget", "warning", "below_threshold"}
POLICY = """\
version: 1
provider:
  name: cyberorigen
scan:
  target: staging.example.com
  timeout: 60s
gate:
  fail_on: high
  max: {medium: 5}
  warn_on: low
ignore:
  - title: "Nothing is called this*"
    reason: "matches no finding (SEC-7)"
  - rule: server-banner
    reason: "accepted until the proxy rewrite (SEC-9)"
    expires: 2020-01-01
"""
MANY = "extends: hostile\ngenerate: 40\nduration: 1\n"
"""More failing and warned findings than GitHub annotates, every text field hostile."""
_EXPRESSION = re.compile(r"\$\{\{\s*inputs\.([A-Za-z0-9_-]+)\s*\}\}")


@dataclass
class Step:
    """What one step (or job) left behind."""

    exit: int
    stdout: str
    stderr: str
    workspace: Path
    outputs: dict[str, str]
    summary: str

    def results(self, relative: str) -> Any:
        """A `scangate.json` in the workspace, parsed."""
        return json.loads((self.workspace / relative).read_text(encoding="utf-8"))


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A checkout with a policy and a hostile scenario, and a `scangate` on PATH."""
    root = tmp_path / "workspace"
    root.mkdir()
    (root / ".scangate.yml").write_text(POLICY, encoding="utf-8")
    (root / "many.yml").write_text(MANY, encoding="utf-8")
    scangate_shim(tmp_path / "bin")
    return root


def _evaluate(expression: str, inputs: dict[str, str]) -> str:
    """Evaluate a `runs.env` value; only `${{ inputs.<name> }}` references are expected."""
    match = _EXPRESSION.fullmatch(expression.strip())
    assert match is not None, f"runs.env value is not a plain input reference: {expression!r}"
    return inputs[match.group(1)]


def _action() -> Any:
    return yaml.safe_load(ACTION.read_text(encoding="utf-8"))


def post_entrypoint(bin_dir: Path) -> Path:
    """The image's post entrypoint, made here from the Dockerfile line that makes it."""
    target = _action()["runs"]["post-entrypoint"]
    for keyword, arguments in instructions(DOCKERFILE):
        for part in arguments.split("&&") if keyword == "RUN" else ():
            words = shlex.split(part)
            if words[:1] == ["printf"] and words[2:] == [">", target]:
                made = subprocess.run(["printf", words[1]], capture_output=True, check=True)
                script = bin_dir / Path(target).name
                script.write_bytes(made.stdout)
                script.chmod(0o755)
                assert f"chmod 0755 {target}" in arguments
                return script
    raise AssertionError(f"the Dockerfile makes no {target}")


def step_env(workspace: Path, given: dict[str, str], extra: dict[str, str]) -> dict[str, str]:
    """The container's environment for the action with `with:` = `given`, step `env:` = `extra`."""
    action = _action()
    inputs = {name: str(spec.get("default", "")) for name, spec in action["inputs"].items()}
    unknown = set(given) - set(inputs)
    assert not unknown, f"not inputs of action.yml: {unknown}"
    inputs.update(given)
    files = workspace.parent / "file_commands"
    files.mkdir(exist_ok=True)
    output, summary = files / "set_output", files / "step_summary"
    output.write_text("", encoding="utf-8")
    summary.write_text("", encoding="utf-8")
    env = base_env(workspace.parent / "bin", workspace.parent) | extra
    # ContainerActionHandler: INPUT_<NAME> for every input, then the evaluated runs.env.
    env |= {f"INPUT_{name.replace(' ', '_').upper()}": value for name, value in inputs.items()}
    env |= {key: _evaluate(value, inputs) for key, value in action["runs"]["env"].items()}
    env |= {
        "GITHUB_ACTIONS": "true",
        "CI": "true",
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    return env


def container_argv(workspace: Path, *, post: bool = False) -> list[str]:
    """What the runner runs: the entrypoint, or the post entrypoint, with the same `args`
    (actions/runner ContainerActionHandler.cs: only the entrypoint differs by stage)."""
    runs = _action()["runs"]
    entrypoint = str(post_entrypoint(workspace.parent / "bin")) if post else runs["entrypoint"]
    return [entrypoint, *runs["args"]]


def run_action(
    workspace: Path, *, post: bool = False, extra: dict[str, str] | None = None, **given: str
) -> Step:
    """Run the action's container command as the GitHub runner would, with `with:` = `given`
    (`post`: the post step's container instead; `extra`: the step's `env:`)."""
    env = step_env(workspace, given, extra or {})
    argv = container_argv(workspace, post=post)
    # Bytes, not text: universal newlines would hide a stray CR, which the runner keeps.
    done = subprocess.run(argv, cwd=workspace, env=env, capture_output=True, timeout=120)
    return Step(
        done.returncode,
        done.stdout.decode("utf-8"),
        done.stderr.decode("utf-8"),
        workspace,
        parse_output_file(Path(env["GITHUB_OUTPUT"]).read_text(encoding="utf-8")),
        Path(env["GITHUB_STEP_SUMMARY"]).read_text(encoding="utf-8"),
    )


def _counted(results: Any) -> dict[str, str]:
    tally = Counter(
        f["severity"]
        for scan in results["scans"]
        for f in scan["findings"]
        if f["gate"]["decision"] in COUNTED
    )
    return {s: str(tally[s]) for s in ("critical", "high", "medium", "low", "info")}


def _suppressed(results: Any) -> dict[str, str]:
    """The `ignored` and `false-positives` outputs, told apart; no baseline, so the baseline
    tallies are empty."""
    tally = Counter(f["gate"]["decision"] for scan in results["scans"] for f in scan["findings"])
    return {
        "ignored": str(tally["ignored"]),
        "false-positives": str(tally["false_positive"]),
        "baselined": "",
        "new": "",
        "escalated": "",
    }


def test_github_runner_gets_outputs_summary_annotations_and_exit_1(workspace: Path) -> None:
    step = run_action(workspace, sandbox="many.yml", **{"out-dir": "scangate-reports"})
    assert step.exit == 1, step.stderr
    results = step.results("scangate-reports/scangate.json")
    assert step.outputs == {
        "verdict": "failed",
        "scan-id": results["scans"][0]["scan_id"],
        **_counted(results),
        **_suppressed(results),
        "sarif-file": "scangate-reports/scangate.sarif",
        "junit-file": "scangate-reports/junit.xml",
        "summary-file": "scangate-reports/summary.md",
        "results-file": "scangate-reports/scangate.json",
        "reports-dir": "scangate-reports",
    }
    assert step.summary == (workspace / "scangate-reports" / "summary.md").read_text("utf-8")
    _check_log(step, results["scans"][0]["scan_id"])


def _check_log(step: Step, scan_id: str) -> None:
    """The log as the runner reads it: only scangate's own commands, at most 10 per kind."""
    assert commands_in(step.stderr) == []
    assert "\r" not in step.stdout + step.stderr
    commands = commands_in(step.stdout)
    names = Counter(c.name for c in commands)
    assert set(names) == {"add-mask", "group", "endgroup", "error", "warning", "stop-commands"}
    assert names["error"] == names["warning"] == 10  # both overflow in this scenario
    wait = next(c for c in commands if c.name == "group")
    assert wait.message == f"waiting for scan {scan_id}"
    for command in commands:
        if command.name in ("error", "warning"):
            assert set(command.properties) == {"title"}  # URL findings: no file=
            assert command.message.isprintable() and command.properties["title"].isprintable()
    titles = [c.properties["title"] for c in commands if c.name == "warning"]
    assert titles[:2] == ["scangate: ignore[1] expired", "scangate: ignore[0] unused"]
    assert [c.name for c in commands][-3:] == ["group", "stop-commands", "endgroup"]
    # The sandbox's key is registered as a mask and appears nowhere else.
    key = sandbox_env("cyberorigen")["CYBERORIGEN_API_KEY"]
    masks = [c.message for c in commands if c.name == "add-mask"]
    assert key in masks
    assert step.stdout.count(key) == 1 and key not in step.stderr


def test_github_report_only_then_a_gate_over_two_scans(workspace: Path) -> None:
    clean = run_action(workspace, sandbox="clean", **{"out-dir": "a", "report-only": "true"})
    found = run_action(workspace, sandbox="findings", **{"out-dir": "b", "report-only": "true"})
    assert (clean.exit, clean.outputs["verdict"]) == (0, "passed")
    assert (found.exit, found.outputs["verdict"]) == (0, "failed")  # report-only: exit 0
    merged = run_action(
        workspace,
        command="gate",
        args="--results a/scangate.json\n  --results b/scangate.json",
        **{"out-dir": "merged"},
    )
    assert merged.exit == 1, merged.stderr
    assert merged.outputs["verdict"] == "failed"
    ids = [step.outputs["scan-id"] for step in (clean, found)]
    assert merged.outputs["scan-id"] == " ".join(ids)
    sarif = json.loads((workspace / merged.outputs["sarif-file"]).read_text("utf-8"))
    run_ids = [run["automationDetails"]["id"] for run in sarif["runs"]]
    assert len(run_ids) == 2 and len(set(run_ids)) == 2


def test_github_inputs_are_never_run_as_shell_code(workspace: Path) -> None:
    args = "--results x;touch${IFS}pwned $(touch pwned2) `touch pwned3` *"
    step = run_action(workspace, command="gate", args=args)
    assert step.exit == 2
    assert "unrecognized arguments: $(touch pwned2) `touch pwned3` *" in step.stderr
    assert sorted(p.name for p in workspace.iterdir()) == [".scangate.yml", "many.yml"]


def test_the_action_runs_the_published_image_with_a_post_step_and_branding() -> None:
    action = _action()
    runs = action["runs"]
    # The release tag's own image (release.yml pushes exactly this name), only pulled.
    assert runs["image"] == f"docker://ghcr.io/scangate/scangate:v{__version__}"
    assert runs["post-entrypoint"] == "/usr/local/bin/scangate-post"
    assert runs["post-if"] == "cancelled() || failure()"
    assert "${{" not in runs["post-entrypoint"]
    assert action["branding"]["color"] in BRANDING_COLORS
    assert re.fullmatch(r"[a-z0-9-]+", action["branding"]["icon"])
    release = (ROOT / ".github" / "workflows" / "release.yml").read_text(encoding="utf-8")
    assert (
        "ghcr.io/${GITHUB_REPOSITORY,,}" in release or "ghcr.io/${{ github.repository }}" in release
    )


def test_the_post_step_after_a_main_step_that_finished_sends_nothing(workspace: Path) -> None:
    main = run_action(workspace, sandbox="findings")
    assert main.exit == 1, main.stderr  # a failed gate: `failure()` runs the post step
    post = run_action(workspace, post=True, sandbox="findings")
    assert post.exit == 0, post.stderr
    assert "nothing to clean up" in post.stderr
    # Only the mask of the key it read: no annotation, no summary, no outputs of its own.
    assert {c.name for c in commands_in(post.stdout)} <= {"add-mask"}
    assert post.summary == ""
    assert post.outputs == {}  # the main step's outputs are not the post step's business


def test_the_post_step_cancels_the_scan_of_a_killed_main_step(workspace: Path) -> None:
    """The runner SIGKILLs the main container; the post container cancels the scan once."""
    server = start_sandbox("cyberorigen", "slow")
    try:
        policy = POLICY.replace(
            "  name: cyberorigen\n", f"  name: cyberorigen\n  base_url: {server.base_url}\n"
        )
        (workspace / ".scangate.yml").write_text(policy, encoding="utf-8")
        secrets = sandbox_env("cyberorigen", "slow")
        env = step_env(workspace, {"out-dir": "scan"}, secrets)
        main = subprocess.Popen(
            container_argv(workspace),
            cwd=workspace,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        began = time.monotonic()
        try:
            while not (workspace / "scan" / "scangate-state.json").exists():
                assert main.poll() is None and time.monotonic() - began < 30
                time.sleep(0.05)
            main.send_signal(signal.SIGKILL)  # `exec`: the signal reaches scangate itself
            assert main.wait(timeout=30) == -signal.SIGKILL
        finally:
            if main.poll() is None:
                main.kill()
        assert server.log.count(category="cancel") == 0
        post = run_action(workspace, post=True, extra=secrets, **{"out-dir": "scan"})
        assert post.exit == 0, post.stderr
        assert server.log.count(category="cancel") == 1
        again = run_action(workspace, post=True, extra=secrets, **{"out-dir": "scan"})
        assert again.exit == 0 and "nothing to clean up" in again.stderr
        assert server.log.count(category="cancel") == 1
    finally:
        server.stop()


# --- GitLab -------------------------------------------------------------------------------


def run_job(workspace: Path, job: str, extra: dict[str, str]) -> Step:
    """Run one job of the example pipeline: its `script` lines, with its variables."""
    pipeline = yaml.safe_load(GITLAB_CI.read_text(encoding="utf-8"))
    env = base_env(workspace.parent / "bin", workspace.parent)
    env |= {k: str(v) for k, v in pipeline.get("variables", {}).items()}
    env |= {k: str(v) for k, v in pipeline[job].get("variables", {}).items()}
    env |= {"GITLAB_CI": "true", "CI": "true", "CI_PROJECT_DIR": str(workspace)} | extra
    stdout, stderr, code = "", "", 0
    for line in pipeline[job]["script"]:
        done = subprocess.run(
            ["/bin/sh", "-c", line],
            cwd=workspace,
            env=env,
            capture_output=True,
            timeout=120,
        )
        stdout += done.stdout.decode("utf-8")  # bytes: the section markers carry a CR
        stderr += done.stderr.decode("utf-8")
        code = done.returncode
        if code:
            break
    return Step(code, stdout, stderr, workspace, {}, "")


def test_gitlab_report_job_then_gate_job(workspace: Path) -> None:
    pipeline = yaml.safe_load(GITLAB_CI.read_text(encoding="utf-8"))
    report = run_job(workspace, "dast", {"SCANGATE_SANDBOX": "findings"})
    assert report.exit == 0, report.stderr  # report-only: GitLab ingests reports of green jobs
    start, end = sections_in(report.stdout)
    assert (start.kind, end.kind, start.name, start.collapsed) == ("start", "end", end.name, True)
    assert start.header.startswith("waiting for scan scan_")
    assert commands_in(report.stdout + report.stderr) == []
    reports = pipeline["dast"]["artifacts"]["reports"]
    for path in reports.values():
        assert (workspace / path).is_file(), path
    dotenv = parse_dotenv((workspace / reports["dotenv"]).read_text(encoding="utf-8"))
    results = report.results(dotenv["SCANGATE_RESULTS_FILE"])
    assert dotenv["SCANGATE_VERDICT"] == "failed"
    assert dotenv["SCANGATE_SCAN_ID"] == results["scans"][0]["scan_id"]
    counted = {f"SCANGATE_{s.upper()}": n for s, n in _counted(results).items()}
    assert counted.items() <= dotenv.items()
    # GitLab hands the dotenv variables to the gate job, which enforces the verdict.
    gate = run_job(workspace, "dast-gate", dotenv)
    assert gate.exit == 1, gate.stderr
    assert (workspace / "scangate-gate" / "scangate.sarif").is_file()
