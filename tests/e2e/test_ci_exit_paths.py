"""Every way out of a run under a CI system writes its CI surfaces (issue 17, item 2).

Under GitHub Actions an error (exit 2, 3), a timeout (4) and a signal (143) each leave one
`::error` annotation naming the cause and the fix, a `scangate: …` step-summary section, and
every output, with `verdict` saying what happened; under GitLab CI the same error in an expanded
log section and the dotenv report. No secret is ever in any of them. Each case runs the real
CLI against the sandbox (or a closed local port).
"""

from __future__ import annotations

import re
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from ci import Command, commands_in, parse_dotenv, parse_output_file, sections_in
from ports import closed_port

from e2e.support import (
    CliRun,
    cli_env,
    run_cli,
    run_scenario,
    sandbox,
    scangate,
    signal_while_waiting,
    write_policy,
    write_scenario,
)
from scangate.ci import OUTPUT_NAMES
from scangate.sandbox import sandbox_env

pytestmark = pytest.mark.slow

PLANTED = "planted-secret-Zq81vX03kP"
"""A credential in the job's environment: it must never reach a CI surface."""


@dataclass
class GitHubRun:
    """A run under GitHub Actions and what it left for the runner."""

    run: CliRun
    output_file: Path
    summary_file: Path

    @property
    def errors(self) -> list[Command]:
        """The `::error` annotations on stdout, as the runner parses them."""
        return [c for c in commands_in(self.run.stdout) if c.name == "error"]

    @property
    def summary(self) -> str:
        return self.summary_file.read_text(encoding="utf-8")

    @property
    def raw_outputs(self) -> str:
        return self.output_file.read_text(encoding="utf-8")

    @property
    def outputs(self) -> dict[str, str]:
        """The outputs, each written exactly once (a second set would shadow the first)."""
        written = re.findall(r"^([a-z-]+)(?:<<|=)", self.raw_outputs, re.MULTILINE)
        assert sorted(written) == sorted(OUTPUT_NAMES), written
        return parse_output_file(self.raw_outputs)

    def everything(self) -> str:
        """What a later step or a reader of the log could see; `::add-mask::` lines, the one
        place a secret is printed (to have the runner hide it), left out."""
        stdout = [line for line in self.run.stdout.splitlines() if "::add-mask::" not in line]
        parts = [*stdout, self.run.stderr, self.raw_outputs, self.summary]
        if self.run.out_dir.exists():
            parts += [p.read_text("utf-8", errors="replace") for p in self.run.out_dir.iterdir()]
        return "\n".join(parts)


def github_env(tmp_path: Path, credentials: Mapping[str, str]) -> dict[str, str]:
    return cli_env(
        credentials,
        GITHUB_ACTIONS="true",
        GITHUB_OUTPUT=str(tmp_path / "github_output"),
        GITHUB_STEP_SUMMARY=str(tmp_path / "step_summary.md"),
    )


def github_run(tmp_path: Path, args: list[str], credentials: Mapping[str, str]) -> GitHubRun:
    run = run_cli(args, cwd=tmp_path, env=github_env(tmp_path, credentials))
    return GitHubRun(run, tmp_path / "github_output", tmp_path / "step_summary.md")


def github_scenario(
    tmp_path: Path, provider: str, scenario: str, **policy: Any
) -> tuple[GitHubRun, Any]:
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_OUTPUT": str(tmp_path / "github_output"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "step_summary.md"),
        "SCANGATE_PLANTED_TOKEN": PLANTED,
    }
    run, server = run_scenario(tmp_path, provider, scenario, env=env, **policy)
    return GitHubRun(run, tmp_path / "github_output", tmp_path / "step_summary.md"), server


def assert_error_surfaces(
    gh: GitHubRun, *, exit_status: int, verdict: str, kind: str, cause: str, fix: str
) -> Command:
    """One error annotation titled with the kind, naming cause and fix; the same in the
    summary; every output present, the verdict set and the counts and files empty."""
    assert gh.run.exit == exit_status, gh.run.stderr
    [error] = gh.errors
    assert error.properties["title"] == f"scangate: {kind}"
    assert cause in error.message
    [fix_line] = [line for line in error.message.splitlines() if line.startswith("fix: ")]
    assert fix in fix_line
    hints = re.findall(r"^scangate:   hint: (.+)$", gh.run.stderr, re.MULTILINE)
    if hints:  # the error's own hint is the fix, word for word
        assert fix_line == f"fix: {hints[-1]}"
    heading = {"error": "error", "incomplete": "scan did not complete"}.get(verdict, verdict)
    assert f"## scangate: {heading}" in gh.summary
    assert "**Cause:**" in gh.summary
    assert "**Fix:**" in gh.summary
    outputs = gh.outputs
    assert outputs["verdict"] == verdict
    assert all(outputs[name] == "" for name in OUTPUT_NAMES if name not in ("verdict", "scan-id"))
    return error


def assert_no_secret(text: str, *secrets: str) -> None:
    for secret in (PLANTED, *secrets):
        assert secret not in text


def unescaped_markdown(text: str) -> str:
    """The summary's text with Markdown backslash escapes undone (what a reader sees)."""
    return re.sub(r"\\(.)", r"\1", text)


def stuck_vaddy(tmp_path: Path) -> str:
    """A VAddy project kept busy by another scan for ten minutes: ours never starts."""
    return write_scenario(
        tmp_path, "stuck", {"extends": "busy-project", "options": {"vaddy": {"busy_for": 600}}}
    )


# -- GitHub Actions -------------------------------------------------------------------------------


def test_missing_credential_exits_2_with_annotation_summary_and_outputs(tmp_path: Path) -> None:
    # VAddy needs VADDY_USER beside VADDY_AUTH_KEY: the key alone is planted, and never shown.
    write_policy(tmp_path, "vaddy", "http://127.0.0.1:9/v2")
    gh = github_run(tmp_path, ["run"], {"VADDY_AUTH_KEY": PLANTED})
    error = assert_error_surfaces(
        gh,
        exit_status=2,
        verdict="error",
        kind="credentials error",
        cause="vaddy: ",
        fix="set VADDY_",
    )
    assert "VADDY_USER" in error.message
    assert "VADDY_USER" in unescaped_markdown(gh.summary)
    assert gh.outputs["scan-id"] == ""
    assert_no_secret(gh.everything())


def test_policy_typo_exits_2_naming_the_key_in_every_surface(tmp_path: Path) -> None:
    policy = write_policy(tmp_path, "cyberorigen", "http://127.0.0.1:9/api")
    data = yaml.safe_load(policy.read_text(encoding="utf-8"))
    data["gate"] = {"fail_onn": "high"}
    policy.write_text(yaml.safe_dump(data), encoding="utf-8")
    gh = github_run(tmp_path, ["run"], {"CYBERORIGEN_API_KEY": PLANTED})
    error = assert_error_surfaces(
        gh,
        exit_status=2,
        verdict="error",
        kind="policy error",
        cause="gate.fail_onn: unknown key 'fail_onn' (did you mean 'fail_on'?",
        fix="`scangate validate` checks a policy offline",
    )
    assert error.message.startswith(".scangate.yml: ")
    assert "fail_onn" in unescaped_markdown(gh.summary)
    assert_no_secret(gh.everything())


def test_closed_port_exits_3_with_the_provider_error_and_its_fix(tmp_path: Path) -> None:
    with closed_port() as port:
        write_policy(tmp_path, "cyberorigen", f"http://127.0.0.1:{port}/api")
        gh = github_run(tmp_path, ["run"], {"CYBERORIGEN_API_KEY": PLANTED})
    error = assert_error_surfaces(
        gh,
        exit_status=3,
        verdict="error",
        kind="provider error",
        cause=f"127.0.0.1:{port}",
        fix="provider.base_url",
    )
    assert "scangate: provider error" in error.properties["title"]
    assert f"127.0.0.1:{port}" in unescaped_markdown(gh.summary)
    assert_no_secret(gh.everything())


def test_timeout_while_queued_exits_4_incomplete_with_no_scan_id(tmp_path: Path) -> None:
    gh, server = github_scenario(tmp_path, "vaddy", stuck_vaddy(tmp_path), scan={"timeout": "3s"})
    assert server.log.count(category="start") == 0
    error = assert_error_surfaces(
        gh,
        exit_status=4,
        verdict="incomplete",
        kind="scan did not complete",
        cause="scan.timeout of 3s reached",
        fix="raise scan.timeout",
    )
    assert "scan.timeout of 3s reached before any scan was started" in error.message
    assert gh.outputs["scan-id"] == ""
    assert "scan.timeout of 3s reached" in unescaped_markdown(gh.summary)
    assert_no_secret(gh.everything(), *sandbox_env("vaddy").values())


def test_provider_error_after_the_scan_exists_exits_3_with_scan_id(tmp_path: Path) -> None:
    # The result endpoint answers an error once the scan ended: the report is made (fail
    # closed), and the error is added to it, not a second set of outputs.
    gh, server = github_scenario(tmp_path, "cybersecpro", "result-error")
    assert gh.run.exit == 3, gh.run.stderr
    outputs = gh.outputs  # asserts each output was written exactly once
    scan_id = outputs["scan-id"]
    assert scan_id
    assert outputs["verdict"] == "incomplete"  # the report's: no findings could be gated
    assert outputs["summary-file"] == "reports/summary.md"
    provider_errors = [e for e in gh.errors if e.properties["title"] == "scangate: provider error"]
    [error] = provider_errors
    assert "execution record missing" in error.message
    assert "fix: " in error.message
    assert f"scangate wait --scan-id {scan_id}" in error.message
    summary = gh.summary
    assert summary.count("## scangate: error") == 1
    assert f"`scangate wait --scan-id {scan_id}`" in summary
    assert summary.index("## scangate: error") > 0  # after the report's own summary
    assert_no_secret(gh.everything(), *sandbox_env("cybersecpro", "result-error").values())


def test_sigterm_while_queued_exits_143_interrupted(tmp_path: Path) -> None:
    scenario = stuck_vaddy(tmp_path)
    env = github_env(tmp_path, {**sandbox_env("vaddy"), "SCANGATE_PLANTED_TOKEN": PLANTED})
    run, _, _ = signal_while_waiting(
        tmp_path,
        "vaddy",
        signal.SIGTERM,
        scenario=scenario,
        ready=lambda server: server.log.count(path="/v2/scan/runcheck") >= 2,  # queued
        env=env,
        scan={"timeout": "60s"},
    )
    gh = GitHubRun(run, tmp_path / "github_output", tmp_path / "step_summary.md")
    assert_error_surfaces(
        gh,
        exit_status=143,
        verdict="interrupted",
        kind="interrupted",
        cause="interrupted by SIGTERM",
        fix="the job was stopped before any scan existed",
    )
    assert_no_secret(gh.everything(), *sandbox_env("vaddy").values())


def test_unwritable_output_file_warns_and_keeps_the_exit_status(tmp_path: Path) -> None:
    write_policy(tmp_path, "cyberorigen", "http://127.0.0.1:9/api")
    env = github_env(tmp_path, {})
    (tmp_path / "github_output").mkdir()  # a directory: appending to it fails
    run = run_cli(["run"], cwd=tmp_path, env=env)
    assert run.exit == 2, run.stderr
    assert "no credentials" in run.stderr  # the original error is still told
    assert "warning: cannot write GITHUB_OUTPUT" in run.stderr
    assert "the exit status stays 2" in run.stderr
    assert [c.name for c in commands_in(run.stdout)] == ["error"]
    assert "## scangate: error" in (tmp_path / "step_summary.md").read_text(encoding="utf-8")


# -- GitLab CI ------------------------------------------------------------------------------------


def gitlab_run(tmp_path: Path, credentials: Mapping[str, str]) -> CliRun:
    """`scangate run` as a GitLab job; the log read as bytes, so that the section markers'
    CR survives (text mode would turn it into a line break)."""
    env = cli_env({**credentials, "SCANGATE_PLANTED_TOKEN": PLANTED}, GITLAB_CI="true")
    done = subprocess.run(
        scangate("run"), cwd=tmp_path, env=env, capture_output=True, timeout=90, check=False
    )
    stdout, stderr = (stream.decode("utf-8") for stream in (done.stdout, done.stderr))
    return CliRun(done.returncode, stdout, stderr, tmp_path / "reports", 0.0)


def section_text(log: str, title: str) -> str:
    """The lines between the start and end markers of the section headed `title`."""
    [start] = [s for s in sections_in(log) if s.kind == "start" and s.header == title]
    assert not start.collapsed  # an error is shown open
    body = log.split(start.header + "\n", 1)[1]
    return body.split("section_end:", 1)[0]


def test_gitlab_policy_typo_writes_the_dotenv_in_the_working_directory(tmp_path: Path) -> None:
    # The policy did not load, so it names no reports directory.
    policy = write_policy(tmp_path, "cyberorigen", "http://127.0.0.1:9/api")
    policy.write_text(policy.read_text(encoding="utf-8") + "scna: {}\n", encoding="utf-8")
    run = gitlab_run(tmp_path, {"CYBERORIGEN_API_KEY": PLANTED})
    assert run.exit == 2, run.stderr
    text = section_text(run.stdout, "scangate: error")
    assert "scna" in text
    assert "fix: " in text
    assert parse_dotenv((tmp_path / "scangate.env").read_text(encoding="utf-8")) == {
        "SCANGATE_VERDICT": "error"
    }
    assert not (tmp_path / "reports").exists()
    assert_no_secret(run.everything() + (tmp_path / "scangate.env").read_text(encoding="utf-8"))


def test_gitlab_closed_port_writes_the_dotenv_in_the_reports_directory(tmp_path: Path) -> None:
    with closed_port() as port:
        write_policy(tmp_path, "cyberorigen", f"http://127.0.0.1:{port}/api")
        run = gitlab_run(tmp_path, {"CYBERORIGEN_API_KEY": PLANTED})
    assert run.exit == 3, run.stderr
    text = section_text(run.stdout, "scangate: error")
    assert f"127.0.0.1:{port}" in text
    assert re.search(r"^fix: .*provider\.base_url", text, re.MULTILINE)
    dotenv = parse_dotenv((run.out_dir / "scangate.env").read_text(encoding="utf-8"))
    assert dotenv == {"SCANGATE_VERDICT": "error"}
    assert_no_secret(run.everything())


def test_gitlab_timeout_while_queued_writes_incomplete(tmp_path: Path) -> None:
    scenario = stuck_vaddy(tmp_path)
    with sandbox("vaddy", scenario) as server:
        write_policy(tmp_path, "vaddy", server.base_url, scan={"timeout": "3s"})
        run = gitlab_run(tmp_path, sandbox_env("vaddy"))
    assert run.exit == 4, run.stderr
    text = section_text(run.stdout, "scangate: scan did not complete")
    assert "scan.timeout of 3s reached" in text
    assert "fix: raise scan.timeout" in text
    dotenv = parse_dotenv((run.out_dir / "scangate.env").read_text(encoding="utf-8"))
    assert dotenv == {"SCANGATE_VERDICT": "incomplete"}
    assert_no_secret(run.everything(), *sandbox_env("vaddy").values())


def test_sigterm_while_waiting_reports_once_with_verdict_interrupted(tmp_path: Path) -> None:
    # The scan exists: the partial report is made and published, its verdict `interrupted`
    # (exit 143 whatever the gate found so far), and no second set of outputs is written.
    env = github_env(tmp_path, sandbox_env("cyberorigen", "slow"))
    run, _, _ = signal_while_waiting(tmp_path, "cyberorigen", signal.SIGTERM, env=env)
    gh = GitHubRun(run, tmp_path / "github_output", tmp_path / "step_summary.md")
    assert run.exit == 143, run.stderr
    outputs = gh.outputs
    assert outputs["verdict"] == "interrupted"
    assert outputs["scan-id"]
    assert outputs["summary-file"] == "reports/summary.md"
    assert gh.summary.count("**Interrupted**") == 1
    [error] = gh.errors  # the report's own: the scan did not complete, and what to do
    assert error.properties["title"] == "scangate: scan did not complete"
    assert "interrupted by SIGTERM" in error.message
    resume = f"`scangate wait --scan-id {outputs['scan-id']}`"
    assert f"fix: rerun the job; a scan that is still running resumes with {resume}" in (
        error.message
    )
    assert_no_secret(gh.everything(), *sandbox_env("cyberorigen", "slow").values())


def test_start_timing_out_while_queued_exits_4_incomplete(tmp_path: Path) -> None:
    # `scangate start` is the first half of `run`: the same stop writes the same surfaces.
    with sandbox("vaddy", stuck_vaddy(tmp_path)) as server:
        write_policy(tmp_path, "vaddy", server.base_url, scan={"timeout": "3s"})
        gh = github_run(tmp_path, ["start"], sandbox_env("vaddy"))
    assert server.log.count(category="start") == 0
    assert_error_surfaces(
        gh,
        exit_status=4,
        verdict="incomplete",
        kind="scan did not complete",
        cause="scan.timeout reached while starting",
        fix="raise scan.timeout",
    )
    assert gh.outputs["scan-id"] == ""
    assert_no_secret(gh.everything(), *sandbox_env("vaddy").values())
