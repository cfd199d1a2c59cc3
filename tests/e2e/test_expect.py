"""`scan.expect` through the real CLI against the sandbox: the emulator's own root plays the
target, and its version page (`/_target/version`, the scenario's `target_version`) says which
build it serves. No request leaves 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

from e2e.support import cli_env, run_cli, sandbox, write_policy, write_scenario
from scangate.sandbox import EmulatorServer, sandbox_env

PROVIDER = "cyberorigen"
SHA = "3f2c9e1d0b7a4c5e8f6a1b2c3d4e5f6a7b8c9d0e"


def _run(
    tmp_path: Path, scenario: dict[str, object], expect: dict[str, object], **env: str
) -> tuple[int, str, EmulatorServer]:
    name = write_scenario(tmp_path, "expect", {"extends": "clean", "duration": 1, **scenario})
    with sandbox(PROVIDER, name) as server:
        scan = {"target": server.root_url + "/", "expect": expect}
        write_policy(tmp_path, PROVIDER, server.base_url, scan=scan)
        run = run_cli(["run"], cwd=tmp_path, env=cli_env(sandbox_env(PROVIDER), **env))
    return run.exit, run.stderr + run.stdout, server


def _paths(server: EmulatorServer) -> list[str]:
    return [entry.path for entry in server.log]


def test_hit_starts_the_scan(tmp_path: Path) -> None:
    code, output, server = _run(
        tmp_path,
        {"target_version": SHA},
        {"url": "/_target/version", "contains": "${GITHUB_SHA}"},
        GITHUB_SHA=SHA,
    )
    assert code == 0, output
    assert f"the target serves {SHA} (from /_target/version)" in output
    paths = _paths(server)
    assert paths[0] == "/_target/version"
    assert any(not p.startswith("/_target/") for p in paths[1:])
    assert "started" in output


def test_miss_exits_4_and_sends_nothing_to_the_provider(tmp_path: Path) -> None:
    code, output, server = _run(
        tmp_path,
        {"target_version": "0000000deadbeef"},
        {"url": "/_target/version", "contains": "${GITHUB_SHA}"},
        GITHUB_SHA=SHA,
    )
    assert code == 4, output
    assert f'the target serves "0000000deadbeef" (from /_target/version), not {SHA}' in output
    assert "no scan was started" in output
    assert _paths(server) == ["/_target/version"]


def test_late_rollout_starts_once_within_the_wait(tmp_path: Path) -> None:
    code, output, server = _run(
        tmp_path,
        {"target_version": SHA, "version_after": 4, "previous_version": "old-build-1"},
        {"url": "/_target/version", "contains": "${CI_COMMIT_SHA}", "wait": "30s"},
        CI_COMMIT_SHA=SHA,
    )
    assert code == 0, output
    assert 'the target serves "old-build-1" (from /_target/version), not' in output
    assert "trying again in 3 s" in output
    paths = _paths(server)
    tries = [p for p in paths if p.startswith("/_target/")]
    assert len(tries) >= 2
    # Every version-page request comes before the first request to the provider API.
    first_api = next(i for i, p in enumerate(paths) if not p.startswith("/_target/"))
    assert all(p.startswith("/_target/") for p in paths[:first_api])
    assert len(tries) == first_api
    starts = [e for e in server.log if e.method == "POST"]
    assert len(starts) == 1, [(e.method, e.path) for e in server.log]


def test_unknown_variable_is_a_usage_error(tmp_path: Path) -> None:
    code, output, server = _run(
        tmp_path,
        {"target_version": SHA},
        {"url": "/_target/version", "contains": "${SCANGATE_IMAGE_DIGEST}"},
    )
    assert code == 2, output
    assert "${SCANGATE_IMAGE_DIGEST} is not set" in output
    assert _paths(server) == []


def test_miss_after_the_wait_on_a_failing_page(tmp_path: Path) -> None:
    code, output, server = _run(
        tmp_path,
        {},
        {"url": "/_target/version", "contains": SHA, "wait": "2s"},
    )
    assert code == 4, output
    assert "the expect URL /_target/version answered HTTP 404" in output
    assert all(p.startswith("/_target/") for p in _paths(server))


def test_sandbox_answers_for_a_target_on_another_host(tmp_path: Path) -> None:
    """`run --sandbox`: the expect request for https://staging.example.com/version goes to the
    in-process emulator's target page, never to the network."""
    scenario = write_scenario(tmp_path, "rolled", {"extends": "clean", "target_version": SHA})
    scan = {"expect": {"url": "/version", "contains": "build ${GITHUB_SHA}"}}
    write_policy(tmp_path, PROVIDER, "https://api.invalid", scan=scan)
    env = cli_env({}, GITHUB_SHA=SHA)
    miss = run_cli(["run", "--sandbox", scenario], cwd=tmp_path, env=env)
    assert miss.exit == 4, miss.stderr
    assert "goes to the emulator (http://127.0.0.1:" in miss.stderr
    assert f"/_target/version), not build {SHA}" not in miss.stderr
    assert f'the target serves "{SHA}" (from /version), not build {SHA}' in miss.stderr
    scan = {"expect": {"url": "https://staging.example.com/version", "contains": SHA}}
    write_policy(tmp_path, PROVIDER, "https://api.invalid", scan=scan)
    hit = run_cli(["run", "--sandbox", scenario], cwd=tmp_path, env=env)
    assert hit.exit == 0, hit.stderr
    assert f"the target serves {SHA} (from /version)" in hit.stderr
