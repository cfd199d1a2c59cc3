"""The policy file (`.scangate.yml`): loading, validation and the frozen settings it yields.

Precedence, for every setting that has more than one source, is written down once, here:

    command-line flag  >  SCANGATE_* environment variable  >  policy file  >  built-in default

The policy file itself is found the same way: `--policy` > `SCANGATE_POLICY` > `./.scangate.yml`
(`find_policy`). Flags and variables reach a loaded policy through `with_overrides`; paths they
give are relative to the working directory, while relative paths written in the policy
(`reports.dir`, `baseline`, a `verify_tls` CA bundle) are relative to the policy file's directory
(design §9 "Paths"). `reports.sarif_anchor` is a repository-relative path and is kept as written.
`reports.gitlab_schema_version` has no flag or variable: when the policy leaves it out, the GitLab
instance's own `CI_SERVER_VERSION` chooses it (`formats.gitlab_dast.choose_schema_version`).

Every problem names the file, the 0-based key path and the line (`ignore[2].expires: not a date:
'2027-13-01' (expected YYYY-MM-DD) (line 31)`); all problems are reported at once, sorted by line.
Secret-looking keys and values are refused and never echoed (design §9 "Policy errors").

One module per concern: `composer` (YAML with line numbers), `schema` (the JSON Schema and its
errors in users' words), `checks` (secrets and what the schema cannot say), `loading` (files to
settings), `overrides` (options, flags, effective settings). The settings types themselves are
domain types (`scangate.model.settings`), re-exported here.
"""

from __future__ import annotations

from scangate.model.settings import (
    ALL_FORMATS,
    GITLAB_SCHEMA_VERSIONS,
    MATCH_KEYS,
    GateSettings,
    IfRunning,
    IgnoreRule,
    KeyPath,
    OnTimeout,
    Policy,
    ProviderSettings,
    ReportSettings,
    ScanSettings,
    SourceMap,
)
from scangate.policy.checks import parse_duration, parse_threshold, parse_wait
from scangate.policy.loading import (
    DEFAULT_POLICY_FILE,
    MAX_POLICY_BYTES,
    POLICY_ENV,
    POLICY_VERSION,
    find_policy,
    load_policy,
    parse_policy,
)
from scangate.policy.overrides import check_options, effective_settings, with_overrides
from scangate.policy.problems import InvalidPolicyError, PolicyProblem, format_key_path
from scangate.policy.schema import policy_schema

__all__ = [
    "ALL_FORMATS",
    "DEFAULT_POLICY_FILE",
    "GITLAB_SCHEMA_VERSIONS",
    "MATCH_KEYS",
    "MAX_POLICY_BYTES",
    "POLICY_ENV",
    "POLICY_VERSION",
    "GateSettings",
    "IfRunning",
    "IgnoreRule",
    "InvalidPolicyError",
    "KeyPath",
    "OnTimeout",
    "Policy",
    "PolicyProblem",
    "ProviderSettings",
    "ReportSettings",
    "ScanSettings",
    "SourceMap",
    "check_options",
    "effective_settings",
    "find_policy",
    "format_key_path",
    "load_policy",
    "parse_duration",
    "parse_policy",
    "parse_threshold",
    "parse_wait",
    "policy_schema",
    "with_overrides",
]
