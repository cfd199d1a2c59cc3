"""`extends:`: merging a base policy, the tighten-only rules, the base's say over ignore entries,
flags over an extended policy, and where `scangate validate` says each value came from."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from conftest import make_finding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scangate.cli import main
from scangate.errors import ExitStatus, PolicyError, UsageError
from scangate.gate import Decision, evaluate
from scangate.model import ScanResult, ScanStatus, Severity
from scangate.policy import InvalidPolicyError, effective_settings, load_policy, with_overrides

ROOT = Path(__file__).resolve().parents[1]
ORG = ROOT / "examples" / "policies" / "org"
CHILD_HEAD = (
    "extends: ../org/base.yml\nprovider:\n  name: cyberorigen\nscan:\n  target: https://x.example\n"
)
"""Lines 1-5 of most children (in ci/), extending org/base.yml."""


def _write(root: Path, base: str, child: str) -> Path:
    (root / "org").mkdir(exist_ok=True)
    (root / "ci").mkdir(exist_ok=True)
    (root / "org" / "base.yml").write_text(base, encoding="utf-8")
    (root / "ci" / ".scangate.yml").write_text(child, encoding="utf-8")
    return root / "ci" / ".scangate.yml"


def _refused(root: Path, base: str, child: str) -> str:
    with pytest.raises(PolicyError) as caught:
        load_policy(_write(root, base, child))
    assert caught.value.exit_status == ExitStatus.USAGE_ERROR
    return caught.value.message


# --- each loosening is one problem naming the key, the base's value and file -----------------

LOOSENINGS = [
    # (id, base body, child extra lines, key, base value text, the child's value)
    (
        "fail_on",
        "gate:\n  fail_on: medium\n",
        "gate:\n  fail_on: high\n",
        "gate.fail_on",
        "medium",
        "high",
    ),
    (
        "fail_on-none",
        "gate:\n  fail_on: low\n",
        "gate:\n  fail_on: none\n",
        "gate.fail_on",
        "low",
        "none",
    ),
    (
        "fail_on-default",
        "scan:\n  timeout: 1h\n",
        "gate:\n  fail_on: critical\n",
        "gate.fail_on",
        "high (the default",
        "critical",
    ),
    (
        "warn_on",
        "gate:\n  warn_on: low\n",
        "gate:\n  warn_on: medium\n",
        "gate.warn_on",
        "low",
        "medium",
    ),
    (
        "budget-grows",
        "gate:\n  max: {low: 3}\n",
        "gate:\n  max: {low: 4}\n",
        "gate.max.low",
        "3",
        "4",
    ),
    (
        "budget-added",
        "gate:\n  fail_on: medium\n",
        "gate:\n  max: {high: 2}\n",
        "gate.max.high",
        "fail_on: medium",
        "2",
    ),
    (
        "new_only",
        "gate:\n  new_only: false\n",
        "gate:\n  new_only: true\n",
        "gate.new_only",
        "false",
        "true",
    ),
    (
        "incomplete",
        "gate:\n  fail_on_incomplete: true\n",
        "gate:\n  fail_on_incomplete: false\n",
        "gate.fail_on_incomplete",
        "true",
        "false",
    ),
    (
        "enforce-later",
        "gate:\n  enforce_from: 2027-01-01\n",
        "gate:\n  enforce_from: 2027-02-01\n",
        "gate.enforce_from",
        "2027-01-01",
        "2027-02-01",
    ),
    (
        "enforce-new",
        "gate:\n  fail_on: high\n",
        "gate:\n  enforce_from: 2027-02-01\n",
        "gate.enforce_from",
        "none (enforced now)",
        "2027-02-01",
    ),
    (
        "warn_before",
        "gate:\n  warn_before: 30\n",
        "gate:\n  warn_before: 7\n",
        "gate.warn_before",
        "30",
        "7",
    ),
    ("timeout", "scan:\n  timeout: 30m\n", "scan:\n  timeout: 2h\n", "scan.timeout", "30m", "2h"),
    (
        "formats",
        "reports:\n  formats: [sarif, json]\n",
        "reports:\n  formats: [json]\n",
        "reports.formats",
        "[sarif, json]",
        "[json]",
    ),
    (
        "comment",
        "reports:\n  comment: true\n",
        "reports:\n  comment: false\n",
        "reports.comment",
        "true",
        "false",
    ),
    (
        "verify_tls",
        "provider:\n  verify_tls: true\n",
        "verify",
        "provider.verify_tls",
        "True",
        "false",
    ),
    (
        "unrated",
        "provider:\n  unrated_severity: high\n",
        "unrated",
        "provider.unrated_severity",
        "high",
        "low",
    ),
    (
        "expect",
        "scan:\n  expect: {url: /version, contains: abc}\n",
        "scan:\n  expect: {contains: xyz}\n",
        "scan.expect",
        "{'url': '/version'",
        "{'url': '/version', 'contains': 'xyz'}",
    ),
    (
        "allow_ignores",
        "allow_ignores: false\n",
        "allow_ignores: true\n",
        "allow_ignores",
        "false",
        "true",
    ),
    (
        "require_expiry",
        "require_ignore_expiry: true\n",
        "require_ignore_expiry: false\n",
        "require_ignore_expiry",
        "true",
        "false",
    ),
    (
        "baseline",
        "gate:\n  new_only: true\n",
        "baseline: mine.json\n",
        "baseline",
        "none",
        "mine.json",
    ),
]


def _child(extra: str) -> str:
    if extra == "verify":
        return CHILD_HEAD.replace(
            "  name: cyberorigen\n", "  name: cyberorigen\n  verify_tls: false\n"
        )
    if extra == "unrated":
        return CHILD_HEAD.replace(
            "  name: cyberorigen\n", "  name: cyberorigen\n  unrated_severity: low\n"
        )
    if extra.startswith("scan:"):
        return CHILD_HEAD + extra.removeprefix("scan:\n")
    return CHILD_HEAD + extra


@pytest.mark.parametrize(
    ("case", "base", "extra", "key", "base_value", "value"),
    LOOSENINGS,
    ids=[c[0] for c in LOOSENINGS],
)
def test_each_loosening_is_refused_naming_key_base_value_and_file(
    tmp_path: Path, case: str, base: str, extra: str, key: str, base_value: str, value: str
) -> None:
    message = _refused(tmp_path, "version: 1\n" + base, _child(extra))
    lines = [line for line in message.splitlines() if line.startswith("ci/") or "/ci/" in line]
    assert len(lines) == 1, message
    assert f"{key}: {base_value}" in lines[0], message
    assert "org/base.yml" in lines[0] and "may only tighten it" in lines[0], message
    assert value in lines[0].rsplit("not set ", 1)[-1], message


def test_the_message_reads_as_the_issue_says(tmp_path: Path) -> None:
    os.chdir(tmp_path)
    base = "version: 1\ngate:\n  fail_on: medium\n"
    _write(Path(), base, CHILD_HEAD + "gate:\n  fail_on: high\n")
    with pytest.raises(InvalidPolicyError) as caught:
        load_policy(Path("ci/.scangate.yml"))
    assert caught.value.message == (
        "ci/.scangate.yml: gate.fail_on: medium in org/base.yml (line 3); ci/.scangate.yml may "
        "only tighten it (to medium or lower), not set high (line 7)"
    )


TIGHTENINGS = [
    ("gate:\n  fail_on: medium\n", "gate:\n  fail_on: low\n"),
    ("gate:\n  fail_on: none\n", "gate:\n  fail_on: critical\n"),
    ("gate:\n  max: {low: 3}\n", "gate:\n  max: {low: 1}\n"),
    ("gate:\n  fail_on: medium\n", "gate:\n  max: {high: 0}\n"),
    ("gate:\n  fail_on: high\n", "gate:\n  max: {medium: 4}\n"),
    ("gate:\n  new_only: true\n", "gate:\n  new_only: true\n"),
    ("gate:\n  enforce_from: 2027-02-01\n", "gate:\n  enforce_from: 2027-01-01\n"),
    ("scan:\n  timeout: 1h\n", "scan:\n  timeout: 10m\n"),
    ("reports:\n  formats: [json]\n", "reports:\n  formats: [json, sarif]\n"),
    ("reports:\n  comment: false\n", "reports:\n  comment: true\n"),
    ("allow_ignores: true\n", "allow_ignores: false\n"),
    ("gate:\n  new_only: false\n", "baseline: mine.json\n"),
]


@pytest.mark.parametrize(("base", "extra"), TIGHTENINGS)
def test_each_tightening_is_accepted(tmp_path: Path, base: str, extra: str) -> None:
    policy = load_policy(_write(tmp_path, "version: 1\n" + base, _child(extra)))
    assert policy.bases == (tmp_path / "ci" / "../org/base.yml",)


def test_mappings_merge_ignore_lists_add_and_paths_stay_with_their_file(tmp_path: Path) -> None:
    base = (
        "version: 1\nbaseline: known.json\nprovider:\n  verify_tls: ca.pem\n"
        "gate:\n  fail_on: medium\n  max: {low: 3}\n"
        "ignore:\n  - rule: org\n    reason: org accepts\n"
    )
    child = CHILD_HEAD + (
        "reports:\n  dir: out\ngate:\n  warn_on: low\nignore:\n  - rule: mine\n    reason: ours\n"
    )
    policy = load_policy(_write(tmp_path, base, child))
    assert policy.gate.fail_on is Severity.MEDIUM and policy.gate.warn_on is Severity.LOW
    assert policy.gate.max == {Severity.LOW: 3}
    assert policy.baseline == tmp_path / "ci" / "../org" / "known.json"
    assert policy.provider.verify_tls == str(tmp_path / "ci" / "../org" / "ca.pem")
    assert policy.reports.dir == tmp_path / "ci" / "out"
    assert [(r.rule, r.index, r.source_index) for r in policy.ignore] == [
        ("org", 0, 0),
        ("mine", 1, 0),
    ]
    assert [Path(str(r.source)).name for r in policy.ignore] == ["base.yml", ".scangate.yml"]


def test_a_chain_of_three_merges_and_each_link_only_tightens(tmp_path: Path) -> None:
    (tmp_path / "team").mkdir()
    (tmp_path / "team" / "team.yml").write_text(
        "extends: ../org/base.yml\ngate:\n  fail_on: low\n", encoding="utf-8"
    )
    child = CHILD_HEAD.replace("../org/base.yml", "../team/team.yml")
    path = _write(tmp_path, "version: 1\ngate:\n  fail_on: medium\n", child)
    assert load_policy(path).gate.fail_on is Severity.LOW
    assert len(load_policy(path).bases) == 2
    path.write_text(child + "gate:\n  fail_on: medium\n", encoding="utf-8")
    message = _refused(tmp_path, "version: 1\ngate:\n  fail_on: medium\n", path.read_text())
    assert "low in " in message and "team/team.yml (line 3)" in message


def test_a_cycle_is_refused_naming_the_files(tmp_path: Path) -> None:
    message = _refused(tmp_path, "extends: ../ci/.scangate.yml\nversion: 1\n", CHILD_HEAD)
    assert "cycle" in message and "org/base.yml" in message and ".scangate.yml" in message


def test_a_chain_deeper_than_the_limit_is_refused(tmp_path: Path) -> None:
    for n in range(10):
        (tmp_path / f"p{n}.yml").write_text(f"extends: p{n + 1}.yml\n", encoding="utf-8")
    (tmp_path / "p10.yml").write_text("version: 1\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="more than 8 base policies"):
        load_policy(tmp_path / "p0.yml")


@pytest.mark.parametrize(
    "url", ["https://github.com/org/policy/base.yml", "git@github.com:org/policy.git"]
)
def test_a_url_is_refused_with_what_to_do(tmp_path: Path, url: str) -> None:
    path = _write(tmp_path, "version: 1\n", CHILD_HEAD.replace("../org/base.yml", url))
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert "is a URL" in caught.value.message and "extends" in caught.value.message
    assert "check the policy repository out" in caught.value.hint


def test_a_missing_base_file_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, "version: 1\n", CHILD_HEAD.replace("base.yml", "nope.yml"))
    with pytest.raises(PolicyError, match=r"org/nope.yml does not exist \(line 1\)"):
        load_policy(path)


def test_a_problem_in_the_base_names_the_base_file_and_line(tmp_path: Path) -> None:
    message = _refused(tmp_path, "version: 1\ngate:\n  fail_on: severe\n", CHILD_HEAD)
    assert "org/base.yml: gate.fail_on: unknown severity 'severe'" in message
    assert "(line 3)" in message


def test_a_key_missing_from_the_whole_chain_is_named_in_the_child(tmp_path: Path) -> None:
    child = CHILD_HEAD.replace("scan:\n  target: https://x.example\n", "")
    message = _refused(tmp_path, "version: 1\n", child)
    assert "missing required key 'scan'" in message and "org/base.yml" in message


def test_the_base_need_not_name_provider_or_target_but_the_merge_must(tmp_path: Path) -> None:
    policy = load_policy(_write(tmp_path, "gate:\n  fail_on: low\n", "version: 1\n" + CHILD_HEAD))
    assert policy.scan.target == "https://x.example"


# --- the base's say over ignore entries -------------------------------------------------------

CHILD_IGNORE = CHILD_HEAD + "ignore:\n  - rule: sqli\n    reason: not reachable\n"


def test_allow_ignores_false_refuses_each_child_entry_naming_it(tmp_path: Path) -> None:
    base = "version: 1\nallow_ignores: false\nignore:\n  - rule: org\n    reason: org's own\n"
    message = _refused(tmp_path, base, CHILD_IGNORE)
    assert "ignore[0]: entry (rule 'sqli') refused: allow_ignores: false in " in message
    assert "org/base.yml (line 2)" in message and "(line 7)" in message


def test_the_base_s_own_ignore_entries_apply(tmp_path: Path) -> None:
    base = "version: 1\nallow_ignores: false\nignore:\n  - rule: org\n    reason: org's own\n"
    policy = load_policy(_write(tmp_path, base, CHILD_HEAD))
    assert [rule.rule for rule in policy.ignore] == ["org"]


def test_require_ignore_expiry_needs_expires_on_child_entries(tmp_path: Path) -> None:
    base = "version: 1\nrequire_ignore_expiry: true\n"
    message = _refused(tmp_path, base, CHILD_IGNORE)
    assert "ignore[0]: entry (rule 'sqli') needs expires" in message
    dated = CHILD_IGNORE + "    expires: 2030-01-01\n"
    assert load_policy(_write(tmp_path, base, dated)).ignore[0].expires == date(2030, 1, 1)


# --- flags obey the same rules ----------------------------------------------------------------


def test_flags_over_an_extended_policy_may_only_tighten(tmp_path: Path) -> None:
    base = "version: 1\ngate:\n  fail_on: medium\nscan:\n  timeout: 30m\n"
    policy = load_policy(_write(tmp_path, base, CHILD_HEAD))
    with pytest.raises(UsageError) as caught:
        with_overrides(policy, fail_on="none")
    assert caught.value.message.startswith("--fail-on none: gate.fail_on is medium in ")
    assert "org/base.yml (line 3)" in caught.value.message
    with pytest.raises(UsageError, match="SCANGATE_TIMEOUT 2h: scan.timeout is 30m"):
        with_overrides(policy, timeout="2h", given_by={"timeout": "SCANGATE_TIMEOUT"})
    with pytest.raises(UsageError, match="--new-only true: gate.new_only"):
        with_overrides(policy, new_only=True)
    with pytest.raises(UsageError, match="--format json: reports.formats"):
        with_overrides(policy, formats=["json"])
    tighter = with_overrides(policy, fail_on="low", timeout="10m", formats=["json", *ALL])
    assert tighter.gate.fail_on is Severity.LOW
    assert effective_settings(tighter)["origins"]["gate.fail_on"] == "--fail-on"


ALL = ["sarif", "junit", "gitlab-dast", "markdown"]


def test_flags_over_a_standalone_policy_stay_free(tmp_path: Path) -> None:
    path = tmp_path / "p.yml"
    path.write_text(CHILD_HEAD.replace("extends: ../org/base.yml", "version: 1"), "utf-8")
    assert with_overrides(load_policy(path), fail_on="none").gate.fail_on is None


# --- validate: the effective policy and where each value came from ---------------------------


def test_validate_prints_origins_in_json_and_a_listing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(
        tmp_path, "version: 1\ngate:\n  fail_on: medium\n", CHILD_HEAD + "gate:\n  warn_on: low\n"
    )
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "--policy", "ci/.scangate.yml"]) == ExitStatus.PASSED
    out, err = capsys.readouterr()
    settings = json.loads(out)
    assert settings["gate"]["fail_on"] == "medium"
    assert settings["origins"]["gate.fail_on"] == "org/base.yml:3"
    assert settings["origins"]["gate.warn_on"] == "ci/.scangate.yml:7"
    assert settings["origins"]["gate.new_only"] == "default"
    assert settings["extends"] == ["ci/../org/base.yml"]
    assert "gate.fail_on: org/base.yml:3" in err and "extends: ci/.scangate.yml ->" in err


# --- the examples -----------------------------------------------------------------------------


def test_the_org_examples_validate_and_the_child_runs_in_the_sandbox(tmp_path: Path) -> None:
    base = load_policy(ORG / "repo.yml")
    assert base.floor is not None and base.floor.gate.fail_on is Severity.MEDIUM
    shutil.copytree(ORG, tmp_path / "org")
    done = subprocess.run(
        [sys.executable, "-m", "scangate", "run", "--policy", "org/repo.yml", "--sandbox"],
        cwd=tmp_path,
        env={**os.environ, "CI": "true"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    log = done.stdout + done.stderr
    assert "expired" not in log and "matched no finding" not in log, log
    assert done.returncode == ExitStatus.GATE_FAILED, log  # as repo.yml's header says
    # The verdict depends on the base as much as on repo.yml: the statement digests both.
    statement = json.loads((tmp_path / "scangate-reports" / "scangate.intoto.json").read_text())
    policy = statement["predicate"]["policy"]
    assert policy["path"] == "org/repo.yml"
    digest = hashlib.sha256((ORG / "base.yml").read_bytes()).hexdigest()
    assert policy["bases"] == [{"path": "org/base.yml", "digest": {"sha256": digest}}]


# --- property: the child never fails less than the base -------------------------------------

THRESHOLDS = st.sampled_from(["critical", "high", "medium", "low", "info", "none"])
BUDGETS = st.dictionaries(st.sampled_from(Severity.names()), st.integers(0, 3), max_size=3)


def _gate_yaml(fail_on: str, budgets: dict[str, int], new_only: bool) -> str:
    text = f"gate:\n  fail_on: {fail_on}\n  new_only: {str(new_only).lower()}\n"
    if budgets:
        text += "  max: {" + ", ".join(f"{k}: {v}" for k, v in budgets.items()) + "}\n"
    return text


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    base_gate=st.tuples(THRESHOLDS, BUDGETS, st.booleans()),
    child_gate=st.tuples(THRESHOLDS, BUDGETS, st.booleans()),
    allow_ignores=st.booleans(),
    child_ignores=st.lists(st.integers(0, 6), max_size=2),
    findings=st.lists(st.integers(0, 40), max_size=12),
)
def test_the_child_fails_at_least_what_the_base_fails(
    tmp_path: Path,
    base_gate: tuple[str, dict[str, int], bool],
    child_gate: tuple[str, dict[str, int], bool],
    allow_ignores: bool,
    child_ignores: list[int],
    findings: list[int],
) -> None:
    base_text = f"version: 1\nallow_ignores: {str(allow_ignores).lower()}\n" + _gate_yaml(
        *base_gate
    )
    base_text += "ignore:\n  - rule: rule-6\n    reason: org accepts\n"
    child_text = CHILD_HEAD + _gate_yaml(*child_gate)
    if child_ignores:
        child_text += "ignore:\n" + "".join(
            f"  - rule: rule-{n}\n    reason: ours\n" for n in child_ignores
        )
    path = _write(tmp_path, base_text, child_text)
    try:
        child = load_policy(path)
    except PolicyError:
        return  # refused: nothing loosened runs
    assert allow_ignores or not child_ignores
    (tmp_path / "alone.yml").write_text(
        base_text + "provider:\n  name: cyberorigen\nscan:\n  target: https://x.example\n",
        encoding="utf-8",
    )
    base = load_policy(tmp_path / "alone.yml")
    today = date(2026, 1, 1)
    scan = [make_finding(n) for n in findings]
    local = [rule for rule in child.ignore if rule.source_index is not None and rule.index > 0]
    # The child's own ignore entries are the sanctioned exception: compare on the rest.
    kept = [f for f in scan if not any(rule.matches(f) for rule in local)]

    def failing(policy_findings: list[object], policy: object) -> set[str]:
        result = ScanResult(
            provider="cyberorigen",
            scanner="cyberorigen",
            scan_id="s",
            target="https://x.example",
            status=ScanStatus.COMPLETED,
            findings=tuple(policy_findings),  # type: ignore[arg-type]
        )
        evaluation = evaluate(result, policy, None, today)  # type: ignore[arg-type]
        return {
            j.finding.fingerprint for j in evaluation.judgements if j.decision is Decision.FAILING
        }

    assert failing(list(kept), child) >= failing(list(kept), base)
    if not allow_ignores:
        assert failing(list(scan), child) >= failing(list(scan), base)


def test_run_time_messages_name_an_extended_policys_ignore_entry_by_its_own_file(
    tmp_path: Path,
) -> None:
    base = "version: 1\nignore:\n  - rule: org-accepted\n    reason: org risk\n"
    child = CHILD_HEAD + "ignore:\n  - rule: local\n    reason: local risk\n"
    policy = load_policy(_write(tmp_path, base, child))
    result = ScanResult(
        provider="cyberorigen",
        scanner="CyberOrigen",
        scan_id="s1",
        target="https://x.example",
        status=ScanStatus.COMPLETED,
        findings=(make_finding(1, severity=Severity.HIGH, rule_id="local"),),
    )
    (judgement,) = evaluate(result, policy, None, date(2026, 12, 1)).judgements
    assert judgement.decision is Decision.IGNORED
    # `ignore[1]` counts the merged list (the base's entry first); the file says `ignore[0]`.
    assert judgement.reason.startswith("ignored by ignore[1] (")
    assert judgement.reason.endswith("ci/.scangate.yml ignore[0]): local risk")
    unused = evaluate(result, policy, None, date(2026, 12, 1)).unused_ignores
    (entry,) = unused
    assert entry.label.startswith("ignore[0] (")
    assert entry.label.endswith("org/base.yml ignore[0])")
