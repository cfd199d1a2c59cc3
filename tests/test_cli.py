"""The command line: offline commands through `main([...])` and the real executable."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cmarkgfm  # type: ignore[import-untyped]
import pytest
from ci import commands_in, parse_dotenv, parse_output_file
from conftest import make_finding, make_report, make_result
from e2e.support import cli_env, run_cli
from test_policy import BAD_POLICIES, MINIMAL, SECRETS

from scangate import __version__
from scangate.cli import main
from scangate.errors import ExitStatus
from scangate.formats.json import JsonFormatter
from scangate.model import ScanStatus, Severity
from scangate.results import load_results


def _policy(tmp_path: Path, text: str = MINIMAL) -> Path:
    path = tmp_path / ".scangate.yml"
    path.write_text(text, encoding="utf-8")
    return path


def _results(tmp_path: Path, name: str, findings: list[int], **result: object) -> Path:
    report = make_report(result=make_result([make_finding(i) for i in findings], **result))  # type: ignore[arg-type]
    path = tmp_path / name
    path.write_text(JsonFormatter().render(report), encoding="utf-8")
    return path


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


# Malformed policies: exit 2, the key path and line, no traceback, no secret.

_CLI_CASES = BAD_POLICIES[::3]  # a third of the corpus through the real executable (30 cases)


@pytest.mark.parametrize(
    ("case", "text", "path", "line"), _CLI_CASES, ids=[c[0] for c in _CLI_CASES]
)
def test_a_malformed_policy_exits_2_naming_key_path_and_line(
    tmp_path: Path, case: str, text: str, path: str, line: int
) -> None:
    _policy(tmp_path, text)
    run = run_cli(["validate"], cwd=tmp_path, env=cli_env({}))
    assert run.exit == ExitStatus.USAGE_ERROR, run.stderr
    assert "Traceback" not in run.stderr
    assert ".scangate.yml" in run.stderr
    if path:
        assert path in run.stderr
        assert f"line {line}" in run.stderr
    else:  # a YAML error (file:line:column) or the document itself (line N)
        assert f".scangate.yml:{line}:" in run.stderr or f"(line {line})" in run.stderr
    if case in SECRETS:
        assert SECRETS[case] not in run.stderr + run.stdout
    assert run.stdout == ""


@pytest.mark.parametrize(
    ("case", "text", "path", "line"), BAD_POLICIES, ids=[c[0] for c in BAD_POLICIES]
)
def test_every_malformed_policy_exits_2_in_process(
    in_tmp: Path, capsys: pytest.CaptureFixture[str], case: str, text: str, path: str, line: int
) -> None:
    _policy(in_tmp, text)
    assert main(["validate"]) == ExitStatus.USAGE_ERROR
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if path:
        assert path in err and f"line {line}" in err
    else:
        assert f":{line}:" in err or f"(line {line})" in err


def test_validate_prints_the_effective_settings(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _policy(in_tmp)
    assert main(["validate"]) == ExitStatus.PASSED
    settings = json.loads(capsys.readouterr().out)
    assert settings["provider"]["base_url"] == "https://backend.cyberorigen.com/api/v1"
    assert settings["gate"]["fail_on"] == "high"
    assert "CYBERORIGEN_API_KEY" in settings["provider"]["credentials"]


def test_validate_checks_provider_options_with_their_line(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _policy(
        in_tmp,
        MINIMAL.replace("  name: cyberorigen", "  name: cyberorigen\n  options: {scan_type: huge}"),
    )
    assert main(["validate"]) == ExitStatus.USAGE_ERROR
    err = capsys.readouterr().err
    assert "provider.options.scan_type" in err and "(line 4)" in err


def test_no_policy_anywhere_is_a_usage_error(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate"]) == ExitStatus.USAGE_ERROR
    assert ".scangate.yml" in capsys.readouterr().err


def test_the_policy_env_variable_is_read(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (in_tmp / "ci").mkdir()
    _policy(in_tmp / "ci")
    monkeypatch.setenv("SCANGATE_POLICY", "ci/.scangate.yml")
    assert main(["validate"]) == ExitStatus.PASSED


def test_schema_prints_the_policy_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == ExitStatus.PASSED
    schema = json.loads(capsys.readouterr().out)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert {"version", "provider", "scan"} <= set(schema["required"])


def test_providers_lists_credentials_and_capabilities(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["providers"]) == ExitStatus.PASSED
    out = capsys.readouterr().out
    assert "cyberorigen (CyberOrigen)" in out
    assert "CYBERORIGEN_API_KEY, or CYBERORIGEN_USERNAME + CYBERORIGEN_PASSWORD" in out
    assert "scan_type" in out


# `scangate gate` and `scangate baseline`.


def test_gate_regates_saved_results_under_the_current_policy(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = _results(in_tmp, "a.json", [4])  # one critical
    _policy(in_tmp)
    assert main(["gate", "--results", str(saved)]) == ExitStatus.GATE_FAILED
    _policy(in_tmp, MINIMAL + "gate: {fail_on: none}\n")
    assert main(["gate", "--results", str(saved)]) == ExitStatus.PASSED
    assert (in_tmp / "scangate-reports" / "scangate.sarif").is_file()


def test_gate_merges_matrix_results_into_one_verdict_and_multi_run_sarif(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clean = _results(in_tmp, "a.json", [0], scan_id="scan_a", target="https://a.example.com")
    failing = _results(in_tmp, "b.json", [4], scan_id="scan_b", target="https://b.example.com")
    _policy(in_tmp, MINIMAL + "gate: {fail_on: critical}\n")
    assert main(["gate", "--results", str(clean), "--results", str(failing)]) == 1
    sarif = json.loads((in_tmp / "scangate-reports" / "scangate.sarif").read_text())
    ids = [run["automationDetails"]["id"] for run in sarif["runs"]]
    assert len(ids) == 2 and len(set(ids)) == 2
    merged = load_results(in_tmp / "scangate-reports" / "scangate.json")
    assert [r.scan_id for r in merged] == ["scan_a", "scan_b"]


def test_gate_on_an_incomplete_scan_exits_4_and_report_only_exits_0(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = _results(in_tmp, "a.json", [0], status=ScanStatus.FAILED, message="scanner crashed")
    _policy(in_tmp)
    assert main(["gate", "--results", str(saved)]) == ExitStatus.SCAN_INCOMPLETE
    assert "scanner crashed" in capsys.readouterr().err
    assert main(["gate", "--results", str(saved), "--report-only"]) == ExitStatus.PASSED


def test_report_only_from_the_environment_and_strict_booleans(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = _results(in_tmp, "a.json", [4])
    _policy(in_tmp)
    monkeypatch.setenv("SCANGATE_REPORT_ONLY", "true")
    assert main(["gate", "--results", str(saved)]) == ExitStatus.PASSED
    monkeypatch.setenv("SCANGATE_REPORT_ONLY", "maybe")
    assert main(["gate", "--results", str(saved)]) == ExitStatus.USAGE_ERROR
    assert "SCANGATE_REPORT_ONLY" in capsys.readouterr().err


def test_out_dir_flag_overrides_the_policy(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = _results(in_tmp, "a.json", [0])
    _policy(in_tmp, MINIMAL + "reports: {dir: from-policy}\n")
    main(["gate", "--results", str(saved), "--out-dir", "from-flag"])
    assert (in_tmp / "from-flag" / "summary.md").is_file()
    assert not (in_tmp / "from-policy").exists()


def _subject(directory: Path) -> object:
    statement = json.loads((directory / "scangate-reports" / "scangate.intoto.json").read_text())
    return statement["subject"]


def test_gate_attests_the_subject_given_by_flag_or_environment_even_without_formats(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = _results(in_tmp, "a.json", [0])
    _policy(in_tmp, MINIMAL + "reports: {formats: []}\n")
    digest = "0f" * 32
    monkeypatch.setenv("SCANGATE_SUBJECT", f"env/app@sha256:{digest}")
    assert main(["gate", "--results", str(saved)]) == ExitStatus.PASSED
    assert sorted(p.name for p in (in_tmp / "scangate-reports").iterdir()) == [
        "scangate.intoto.json"
    ]
    assert _subject(in_tmp) == [{"name": "env/app", "digest": {"sha256": digest}}]
    flag = ["--subject", f"flag/app@sha256:{digest}"]
    assert main(["gate", "--results", str(saved), *flag]) == ExitStatus.PASSED
    assert _subject(in_tmp) == [{"name": "flag/app", "digest": {"sha256": digest}}]
    assert "verdict statement (in-toto) written to" in capsys.readouterr().err


def test_a_bad_subject_exits_2_before_anything_is_written(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = _results(in_tmp, "a.json", [0])
    _policy(in_tmp)
    monkeypatch.setenv("SCANGATE_SUBJECT", "app:latest")
    assert main(["gate", "--results", str(saved)]) == ExitStatus.USAGE_ERROR
    err = capsys.readouterr().err
    assert "--subject 'app:latest' is not NAME@sha256:HEX" in err
    assert "hint: give the artifact as NAME@sha256:HEX" in err
    assert not (in_tmp / "scangate-reports").exists()


def test_baseline_then_new_only_passes_known_findings(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = _results(in_tmp, "a.json", [3, 4])
    assert main(["baseline", "--results", str(saved), "-o", "base.json"]) == ExitStatus.PASSED
    _policy(in_tmp, MINIMAL + "baseline: base.json\ngate: {new_only: true}\n")
    assert main(["gate", "--results", str(saved)]) == ExitStatus.PASSED
    newer = _results(in_tmp, "b.json", [3, 4, 9])  # 9 is a new critical
    assert main(["gate", "--results", str(newer)]) == ExitStatus.GATE_FAILED


def test_unreadable_results_exit_2_with_the_file_named(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (in_tmp / "bad.json").write_text("{not json")
    _policy(in_tmp)
    assert main(["gate", "--results", "bad.json"]) == ExitStatus.USAGE_ERROR
    err = capsys.readouterr().err
    assert "bad.json" in err and "Traceback" not in err


def test_wait_without_a_scan_id_or_state_is_a_usage_error(
    in_tmp: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _policy(in_tmp)
    monkeypatch.setenv("CYBERORIGEN_API_KEY", "k-0123456789")
    assert main(["wait"]) == ExitStatus.USAGE_ERROR
    assert "--scan-id" in capsys.readouterr().err


# The executable itself.


def test_version_and_help_document_exit_codes_and_environment() -> None:
    version = subprocess.run(
        [sys.executable, "-m", "scangate", "--version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.strip() == f"scangate {__version__}"
    helped = subprocess.run(
        [sys.executable, "-m", "scangate", "run", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    for word in ("SCANGATE_POLICY", "SCANGATE_OUT_DIR", "SCANGATE_REPORT_ONLY", "SCANGATE_SANDBOX"):
        assert word in helped.stdout
    for command in ("run", "wait", "gate"):
        shown = subprocess.run(
            [sys.executable, "-m", "scangate", command, "--help"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert "--subject NAME@sha256:HEX" in shown.stdout and "SCANGATE_SUBJECT" in shown.stdout
    top = subprocess.run(
        [sys.executable, "-m", "scangate", "--help"], capture_output=True, text=True, check=True
    )
    assert "143  terminated by SIGTERM" in top.stdout
    assert "verify" in top.stdout


def test_no_command_prints_usage_and_exits_2() -> None:
    assert main([]) == ExitStatus.USAGE_ERROR


def test_an_unknown_sandbox_scenario_is_a_usage_error(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _policy(in_tmp)
    assert main(["run", "--sandbox", "no-such-scenario"]) == ExitStatus.USAGE_ERROR
    assert "no-such-scenario" in capsys.readouterr().err


def test_severity_labels_are_what_policies_use() -> None:
    assert Severity.names() == ("critical", "high", "medium", "low", "info")


def test_mutually_exclusive_provider_options_are_named_plainly(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _policy(
        in_tmp,
        "version: 1\nprovider:\n  name: vaddy\n  options: {crawl_id: 12, crawl_label: nightly}\n"
        "scan:\n  target: vaddy-project-1\n",
    )
    assert main(["validate"]) == ExitStatus.USAGE_ERROR
    err = capsys.readouterr().err
    assert "provider.options: set only one of crawl_id, crawl_label (line 4)" in err


def test_the_example_results_regate_and_merge(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    examples = sorted((Path(__file__).parent.parent / "examples" / "results").glob("*.json"))
    assert len(examples) >= 3
    _policy(in_tmp, MINIMAL + "gate: {fail_on: none}\n")
    args = [word for path in examples for word in ("--results", str(path))]
    assert main(["gate", *args]) == ExitStatus.PASSED
    merged = load_results(in_tmp / "scangate-reports" / "scangate.json")
    assert {r.provider for r in merged} == {"cyberorigen", "cystack", "vaddy"}


# Options and help as a new user reads them (issue 17 items 4, 5 and 7).


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_is_accepted_before_or_after_the_command(tmp_path: Path, where: str) -> None:
    _policy(tmp_path)
    args = ["--debug", "validate"] if where == "before" else ["validate", "--debug"]
    run = run_cli(args, cwd=tmp_path, env=cli_env({}))
    assert run.exit == ExitStatus.PASSED, run.stderr
    assert "unrecognized arguments" not in run.stderr


def test_scangate_debug_is_parsed_as_strictly_as_every_boolean(tmp_path: Path) -> None:
    _policy(tmp_path)
    refused = run_cli(["validate"], cwd=tmp_path, env=cli_env({}, SCANGATE_DEBUG="maybe"))
    assert refused.exit == ExitStatus.USAGE_ERROR
    assert "SCANGATE_DEBUG='maybe' is not a boolean" in refused.stderr
    accepted = run_cli(["validate"], cwd=tmp_path, env=cli_env({}, SCANGATE_DEBUG="true"))
    assert accepted.exit == ExitStatus.PASSED, accepted.stderr


def test_sandbox_help_lists_every_provider_and_its_scenarios(tmp_path: Path) -> None:
    from scangate.sandbox import EMULATORS, scenarios_for

    run = run_cli(["sandbox", "--help"], cwd=tmp_path, env=cli_env({}))
    assert run.exit == ExitStatus.PASSED, run.stderr
    listed = {
        line.split(":")[0].strip(): line.split(":", 1)[1]
        for line in run.stdout.splitlines()
        if line.startswith("  ") and ":" in line and not line.strip().startswith("-")
    }
    assert set(EMULATORS) <= set(listed)
    for provider in EMULATORS:
        assert [s.strip() for s in listed[provider].split(",")] == list(scenarios_for(provider))


def test_results_options_say_they_repeat(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("gate", "baseline"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        out = " ".join(capsys.readouterr().out.split())
        assert "repeat to merge" in out, command
    with pytest.raises(SystemExit):
        main(["baseline", "--help"])
    assert "the baseline file to write" in " ".join(capsys.readouterr().out.split())


def test_start_does_not_offer_report_only(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["start", "--report-only"])
    assert exited.value.code == ExitStatus.USAGE_ERROR
    assert "unrecognized arguments: --report-only" in capsys.readouterr().err


def test_half_a_credential_set_names_the_missing_variable(tmp_path: Path) -> None:
    _policy(tmp_path, MINIMAL.replace("cyberorigen", "vaddy"))
    run = run_cli(["start"], cwd=tmp_path, env=cli_env({"VADDY_USER": "alice"}))
    assert run.exit == ExitStatus.USAGE_ERROR, run.stderr
    assert "VADDY_USER set but VADDY_AUTH_KEY not" in run.stderr
    # The sandbox hint names the command that takes --sandbox (`start` refuses it).
    assert "scangate run --sandbox" in run.stderr


# Every way out under a CI system writes its surfaces (issue 17); tests/e2e/test_ci_exit_paths.py
# covers the runs against the sandbox.


def _github(monkeypatch: pytest.MonkeyPatch, directory: Path) -> tuple[Path, Path]:
    output, summary = directory / "github_output", directory / "step_summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    return output, summary


def test_a_gate_that_fails_publishes_its_report_once_and_no_error(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    output, summary = _github(monkeypatch, in_tmp)
    saved = _results(in_tmp, "a.json", [4])
    _policy(in_tmp)
    assert main(["gate", "--results", str(saved)]) == ExitStatus.GATE_FAILED
    written = output.read_text(encoding="utf-8")
    assert written.count("verdict<<") == 1
    assert parse_output_file(written)["verdict"] == "failed"
    assert "scangate: error" not in summary.read_text(encoding="utf-8")
    titles = [c.properties.get("title", "") for c in commands_in(capsys.readouterr().out)]
    assert not any(title.startswith("scangate: results") for title in titles)


def test_an_unreadable_results_file_is_an_error_in_every_surface(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    output, summary = _github(monkeypatch, in_tmp)
    _policy(in_tmp)
    assert main(["gate", "--results", "missing.json"]) == ExitStatus.USAGE_ERROR
    [error] = [c for c in commands_in(capsys.readouterr().out) if c.name == "error"]
    assert error.properties["title"] == "scangate: results error"
    assert "missing.json" in error.message and "\nfix: " in error.message
    assert parse_output_file(output.read_text(encoding="utf-8"))["verdict"] == "error"
    shown = cmarkgfm.github_flavored_markdown_to_html(summary.read_text(encoding="utf-8"))
    assert "<strong>Cause:</strong> missing.json: results file not found" in shown


def test_a_refused_debug_variable_is_an_error_in_every_surface(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    output, _ = _github(monkeypatch, in_tmp)
    monkeypatch.setenv("SCANGATE_DEBUG", "maybe")
    assert main(["validate"]) == ExitStatus.USAGE_ERROR
    [error] = commands_in(capsys.readouterr().out)
    assert error.properties["title"] == "scangate: error"
    assert "SCANGATE_DEBUG='maybe' is not a boolean\nfix: use true or false" == error.message
    assert parse_output_file(output.read_text(encoding="utf-8"))["verdict"] == "error"


def test_gitlab_dotenv_of_an_error_goes_to_the_policys_reports_dir(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GITLAB_CI", "true")
    _policy(in_tmp, MINIMAL + "reports: {dir: out}\n")
    assert main(["gate", "--results", "missing.json"]) == ExitStatus.USAGE_ERROR
    assert parse_dotenv((in_tmp / "out" / "scangate.env").read_text(encoding="utf-8")) == {
        "SCANGATE_VERDICT": "error"
    }
    assert not (in_tmp / "scangate.env").exists()


# `scangate cleanup` (the CI post step; the runs against emulators are tests/e2e/test_cleanup.py).


def _recorded(tmp_path: Path, **state: object) -> Path:
    reports = tmp_path / "scangate-reports"
    reports.mkdir(exist_ok=True)
    recorded = {
        "provider": "cyberorigen",
        "scan_id": "scan_1",
        "target": "staging.example.com",
        "started_at": "2026-01-01T00:00:00+00:00",
        "command": "run",
        "settled": False,
        **state,
    }
    path = reports / "scangate-state.json"
    path.write_text(json.dumps(recorded), encoding="utf-8")
    return path


def test_cleanup_help_says_when_it_sends_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["cleanup", "--help"])
    helped = " ".join(capsys.readouterr().out.split())
    assert "SCANGATE_POLICY" in helped and "SCANGATE_OUT_DIR" in helped
    assert "Sends no request when no scan is recorded" in helped
    assert "--report-only" not in helped and "--sandbox" not in helped


def test_cleanup_without_credentials_is_exit_2_and_keeps_the_scan(
    in_tmp: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _policy(in_tmp)
    monkeypatch.delenv("CYBERORIGEN_API_KEY", raising=False)
    state = _recorded(in_tmp)
    assert main(["cleanup"]) == ExitStatus.USAGE_ERROR
    assert "CYBERORIGEN_API_KEY" in capsys.readouterr().err
    assert json.loads(state.read_text(encoding="utf-8"))["settled"] is False  # for a retry


def test_cleanup_of_another_providers_scan_is_exit_2(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _policy(in_tmp)
    _recorded(in_tmp, provider="vaddy")
    assert main(["cleanup"]) == ExitStatus.USAGE_ERROR
    assert "recorded for provider 'vaddy'" in capsys.readouterr().err


def test_cleanup_of_a_sandbox_scan_sends_nothing_and_settles_it(
    in_tmp: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The emulator of `--sandbox` lived in the killed process; no real provider is asked.
    _policy(in_tmp)
    monkeypatch.delenv("CYBERORIGEN_API_KEY", raising=False)
    state = _recorded(in_tmp, sandbox=True)
    assert main(["cleanup"]) == ExitStatus.PASSED
    assert "sandbox scan scan_1 ended with its emulator" in capsys.readouterr().err
    assert json.loads(state.read_text(encoding="utf-8"))["settled"] is True
