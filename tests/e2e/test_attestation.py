"""End to end: every run that reports writes `scangate.intoto.json`, valid and true (issue 19).

Through the real CLI against each provider's emulator: the statement validates against its
shipped schema for every bundled scenario, says what `scangate.json` says (verdict, counted
findings, scans), and its subject is the `--subject` given, the CI commit, or the target.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from e2e.support import CliRun, cli_env, run_cli, run_scenario, sandbox, write_policy
from scangate.attestation import PREDICATE_TYPE, STATEMENT_FILENAME, statement_schema
from scangate.providers import PROVIDER_NAMES
from scangate.sandbox import sandbox_env, scenarios_for

pytestmark = pytest.mark.slow

SHORT_TIMEOUT = {"slow": "15s"}
"""`slow` scans for ten minutes: it ends in the timeout's report."""
DIGEST = "5e" * 32
SHA = "89abcdef0123456789abcdef0123456789abcdef"
SEVERITIES = ("critical", "high", "medium", "low", "info")


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(statement_schema())


def statement_of(run: CliRun) -> Any:
    """The parsed statement of `run`, checked against the shipped schema."""
    document = run.parsed(STATEMENT_FILENAME)
    errors = sorted(_validator().iter_errors(document), key=str)
    assert not errors, f"{errors[0].json_path}: {errors[0].message}"
    return document


def assert_says_what_the_results_say(run: CliRun, document: Any) -> None:
    """Verdict, counted findings and scans as in `scangate.json` of the same run."""
    results = run.results()
    predicate = document["predicate"]
    expected = "incomplete" if results["interrupted"] else results["verdict"]
    assert predicate["verdict"] == expected
    counted = {
        s: sum(scan["gate"]["counts"][s]["counted"] for scan in results["scans"])
        for s in SEVERITIES
    }
    assert predicate["counts"] == counted
    keys = ("provider", "scan_id", "target", "status", "started_at", "finished_at")
    assert [{k: scan[k] for k in keys} for scan in predicate["scans"]] == [
        {k: _second(scan[k]) if k.endswith("_at") else scan[k] for k in keys}
        for scan in results["scans"]
    ]


def _second(moment: str | None) -> str | None:
    """`scangate.json` keeps fractions of a second; the statement is to the second."""
    if moment is None:
        return None
    return moment.split(".")[0].removesuffix("Z") + "Z"


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
def test_every_bundled_scenario_writes_a_valid_statement(provider: str, tmp_path: Path) -> None:
    def one(scenario: str) -> tuple[str, CliRun]:
        directory = tmp_path / scenario
        directory.mkdir()
        timeout = SHORT_TIMEOUT.get(scenario, "60s")
        run, _ = run_scenario(
            directory,
            provider,
            scenario,
            args=("--subject", f"registry.example.com/app@sha256:{DIGEST}"),
            scan={"timeout": timeout},
        )
        return scenario, run

    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(one, scenarios_for(provider)))
    attested = 0
    for scenario, run in outcomes:
        statement = run.out_dir / STATEMENT_FILENAME
        if not (run.out_dir / "scangate.json").exists():
            # Only a provider error before there is a result makes no report (exit 3).
            assert run.exit == 3, f"{scenario}: {run.exit} {run.stderr}"
            assert not statement.exists(), scenario
            continue
        attested += 1
        document = statement_of(run)
        assert document["predicateType"] == PREDICATE_TYPE
        assert document["subject"] == [
            {"name": "registry.example.com/app", "digest": {"sha256": DIGEST}}
        ], scenario
        assert_says_what_the_results_say(run, document)
        assert (
            f"verdict statement (in-toto) written to {statement.relative_to(run.out_dir.parent)}"
            in run.stderr
        )
    assert attested >= 3


def test_the_ci_commit_is_the_subject_and_the_policy_file_is_digested(tmp_path: Path) -> None:
    github = {
        "GITHUB_SHA": SHA,
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "org/app",
    }
    run, _ = run_scenario(tmp_path, "cystack", "clean", env=github)
    assert run.exit == 0, run.stderr
    document = statement_of(run)
    assert document["subject"] == [
        {"name": "https://github.com/org/app", "digest": {"gitCommit": SHA}}
    ]
    policy = document["predicate"]["policy"]
    assert policy["path"] == ".scangate.yml"
    expected = hashlib.sha256((tmp_path / ".scangate.yml").read_bytes()).hexdigest()
    assert policy["digest"] == {"sha256": expected}
    assert document["predicate"]["verdict"] == "passed"
    assert document["predicate"]["finished_at"] >= document["predicate"]["started_at"]
    # What the deploy job then runs, on the statement as written.
    statement = str(run.out_dir / STATEMENT_FILENAME)
    subject = f"https://github.com/org/app@gitCommit:{SHA}"
    checked = run_cli(
        ["verify", statement, "--subject", subject, "--max-age", "1h"],
        cwd=tmp_path,
        env=cli_env({}),
    )
    assert checked.exit == 0, checked.stdout + checked.stderr
    other = run_cli(
        ["verify", statement, "--subject", f"https://github.com/org/app@gitCommit:{'0' * 40}"],
        cwd=tmp_path,
        env=cli_env({}),
    )
    assert other.exit == 1, other.stdout + other.stderr


def test_without_subject_or_ci_the_target_url_is_the_subject(tmp_path: Path) -> None:
    run, _ = run_scenario(tmp_path, "cystack", "findings")
    assert run.exit == 1, run.stderr
    target = "https://staging.example.com"
    digest = hashlib.sha256(target.encode()).hexdigest()
    assert statement_of(run)["subject"] == [{"name": target, "digest": {"sha256": digest}}]


def test_scangate_subject_env_and_a_bad_subject_refused_before_any_scan(tmp_path: Path) -> None:
    with sandbox("vaddy", "findings") as server:
        write_policy(tmp_path, "vaddy", server.base_url)
        creds = sandbox_env("vaddy", "findings")
        bad = run_cli(["run", "--subject", "app@sha256:nothex"], cwd=tmp_path, env=cli_env(creds))
        assert bad.exit == 2
        assert "error: --subject 'app@sha256:nothex': a sha256 digest is 64" in bad.stderr
        assert not server.log.find(category="start")
        assert not (tmp_path / "reports" / STATEMENT_FILENAME).exists()
        env = cli_env(creds, SCANGATE_SUBJECT=f"app@sha256:{DIGEST}")
        good = run_cli(["run"], cwd=tmp_path, env=env)
    assert good.exit == 1, good.stderr
    assert statement_of(good)["subject"] == [{"name": "app", "digest": {"sha256": DIGEST}}]


def test_gate_attests_the_merged_scans_under_the_policy_it_was_given(tmp_path: Path) -> None:
    runs = []
    for name, scenario in (("a", "findings"), ("b", "clean")):
        (tmp_path / name).mkdir()
        run, _ = run_scenario(tmp_path / name, "cystack", scenario)
        runs.append(run)
    strict = tmp_path / "strict.yml"
    text = (tmp_path / "a" / ".scangate.yml").read_text("utf-8")
    strict.write_text(text.replace("fail_on: high", "fail_on: info"), encoding="utf-8")
    assert strict.read_text("utf-8") != text
    args = [
        "gate",
        "--policy",
        str(strict),
        "--out-dir",
        "reports",
        "--subject",
        f"app@gitCommit:{SHA}",
    ]
    for run in runs:
        args += ["--results", str(run.out_dir / "scangate.json")]
    gated = run_cli(args, cwd=tmp_path, env=cli_env({}))
    assert gated.exit == 1, gated.stderr
    document = statement_of(gated)
    assert document["subject"] == [{"name": "app", "digest": {"gitCommit": SHA}}]
    predicate = document["predicate"]
    assert predicate["policy"]["digest"] == {
        "sha256": hashlib.sha256(strict.read_bytes()).hexdigest()
    }
    assert [s["scan_id"] for s in predicate["scans"]] == [
        r.results()["scans"][0]["scan_id"] for r in runs
    ]
    assert_says_what_the_results_say(gated, document)
