"""`gl-dast-report.json` in the schema version the GitLab instance ingests (issue 18).

Every bundled sandbox scenario is run once through the real CLI (`scangate run`, default
version), then its saved results are re-gated (`scangate gate`) into each other version; every
report must validate against GitLab's own copy of the schema it declares (tests/schemas/). The
version follows `CI_SERVER_VERSION` under `GITLAB_CI=true`, a policy value wins, a bad policy
value is a usage error, and a `CI_SERVER_VERSION` scangate cannot read only warns.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import SCHEMAS
from jsonschema import Draft7Validator

from e2e.support import (
    CliRun,
    assert_sane_stderr,
    cli_env,
    run_cli,
    run_scenario,
    sandbox,
    write_policy,
)
from scangate.model.settings import GITLAB_SCHEMA_VERSIONS
from scangate.registry import PROVIDER_NAMES
from scangate.sandbox import sandbox_env, scenarios_for

pytestmark = pytest.mark.slow

SCHEMA_FILES = {
    "15.0.7": "gitlab-dast-report-format-15.0.7.json",
    "15.1.4": "gitlab-dast-report-format-15.1.4.json",
    "15.2.1": "gitlab-dast-report-format.json",
}
SHORT_TIMEOUT = {"slow": "6s"}
"""`slow` scans for ten minutes: it is reported as the timeout it ends in."""


def validator(version: str) -> Draft7Validator:
    schema = json.loads((SCHEMAS / SCHEMA_FILES[version]).read_text("utf-8"))
    return Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER)


VALIDATORS = {version: validator(version) for version in GITLAB_SCHEMA_VERSIONS}


def assert_declares_and_validates(document: Any, version: str) -> None:
    assert document["version"] == version
    assert f"/v{version}/" in document["schema"]
    errors = sorted(VALIDATORS[version].iter_errors(document), key=lambda e: list(e.path))
    assert not errors, f"{version} {list(errors[0].absolute_path)}: {errors[0].message}"


def regate(directory: Path, results: Path, version: str, env: dict[str, str]) -> CliRun:
    """`scangate gate` of saved results under a policy asking for `version`."""
    directory.mkdir()
    policy = {
        "version": 1,
        "provider": {"name": "cyberorigen"},
        "scan": {"target": "https://staging.example.com"},
        "reports": {"dir": "reports", "formats": ["gitlab-dast"], "gitlab_schema_version": version},
    }
    (directory / ".scangate.yml").write_text(yaml.safe_dump(policy), encoding="utf-8")
    return run_cli(["gate", "--results", str(results), "--report-only"], cwd=directory, env=env)


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
def test_every_bundled_scenario_validates_in_each_version(provider: str, tmp_path: Path) -> None:
    def one(scenario: str) -> tuple[str, CliRun, list[tuple[str, CliRun]]]:
        directory = tmp_path / scenario
        directory.mkdir()
        timeout = SHORT_TIMEOUT.get(scenario, "60s")
        run, _ = run_scenario(directory, provider, scenario, scan={"timeout": timeout})
        if not (run.out_dir / "gl-dast-report.json").exists():
            return scenario, run, []
        saved = run.out_dir / "scangate.json"
        others = [
            v for v in GITLAB_SCHEMA_VERSIONS if v != run.parsed("gl-dast-report.json")["version"]
        ]
        env = cli_env({})
        return scenario, run, [(v, regate(directory / v, saved, v, env)) for v in others]

    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(one, scenarios_for(provider)))
    reported = 0
    for scenario, run, regated in outcomes:
        assert_sane_stderr(run.stderr)
        if not regated:
            # Only a provider error before there is a result writes no report (exit 3).
            assert run.exit == 3, f"{scenario}: {run.exit} {run.stderr}"
            continue
        reported += 1
        assert_declares_and_validates(run.parsed("gl-dast-report.json"), "15.2.1")
        assert sorted(v for v, _ in regated) == ["15.0.7", "15.1.4"], scenario
        for version, again in regated:
            assert again.exit == 0, f"{scenario} {version}: {again.stderr}"
            assert_declares_and_validates(again.parsed("gl-dast-report.json"), version)
            # The same vulnerabilities in every version: only `version` and `schema` differ.
            before = run.parsed("gl-dast-report.json")["vulnerabilities"]
            assert again.parsed("gl-dast-report.json")["vulnerabilities"] == before
    assert reported >= len(outcomes) - 2, "most scenarios end in a report"


@pytest.mark.parametrize(
    ("server", "version"),
    [("16.11.3-ee", "15.0.7"), ("17.2.1", "15.1.4"), ("17.5.0-ee", "15.2.1")],
)
def test_under_gitlab_ci_the_version_follows_ci_server_version(
    server: str, version: str, tmp_path: Path
) -> None:
    env = {"GITLAB_CI": "true", "CI_SERVER_VERSION": server}
    run, _ = run_scenario(tmp_path, "cystack", "findings", env=env)
    assert run.exit == 1, run.stderr
    assert_sane_stderr(run.stderr)
    assert "CI_SERVER_VERSION" not in run.stderr, "a version GitLab set and scangate reads"
    assert_declares_and_validates(run.parsed("gl-dast-report.json"), version)
    # The dotenv report GitLab reads is still written beside it.
    assert (run.out_dir / "scangate.env").exists()


def test_an_explicit_policy_value_wins_over_ci_server_version(tmp_path: Path) -> None:
    env = {"GITLAB_CI": "true", "CI_SERVER_VERSION": "16.11.3-ee"}
    extra = {"reports": {"dir": "reports", "gitlab_schema_version": "15.1.4"}}
    run, _ = run_scenario(tmp_path, "cystack", "clean", env=env, extra=extra)
    assert run.exit == 0, run.stderr
    assert_declares_and_validates(run.parsed("gl-dast-report.json"), "15.1.4")


def test_an_unreadable_ci_server_version_warns_and_writes_the_default(tmp_path: Path) -> None:
    env = {"GITLAB_CI": "true", "CI_SERVER_VERSION": "nightly"}
    run, _ = run_scenario(tmp_path, "cystack", "clean", env=env)
    assert run.exit == 0, run.stderr
    assert "warning: CI_SERVER_VERSION 'nightly' is not a GitLab version" in run.stderr
    assert_declares_and_validates(run.parsed("gl-dast-report.json"), "15.2.1")


def test_a_bad_policy_value_is_exit_2_naming_the_key_and_the_allowed_values(
    tmp_path: Path,
) -> None:
    with sandbox("cystack", "clean") as server:
        extra = {"reports": {"dir": "reports", "gitlab_schema_version": "15.3.0"}}
        write_policy(tmp_path, "cystack", server.base_url, extra=extra)
        run = run_cli(["run"], cwd=tmp_path, env=cli_env(sandbox_env("cystack", "clean")))
    assert run.exit == 2, run.stderr
    assert "reports.gitlab_schema_version" in run.stderr
    assert "expected one of 15.0.7, 15.1.4, 15.2.1" in run.stderr
    assert server.log.entries() == [], "a bad policy sends no request"
    assert not run.out_dir.exists()
