"""The registry is the one list of providers: every entry has all its parts, and nothing else lists.

Adding a provider means one `ProviderEntry` plus the files these tests ask for (CONTRIBUTING.md):
an adapter, an emulator with scenarios, an example policy, a test file and a README section.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import pytest

from scangate import registry
from scangate.cli import main
from scangate.credentials import describe
from scangate.errors import ExitStatus, PolicyError
from scangate.policy import check_options, load_policy, parse_policy, policy_schema
from scangate.registry import PROVIDER_NAMES
from scangate.sandbox import scenarios_for

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "scangate"

LIST_HOLDERS = {"registry.py"}
"""The files of `src/scangate` allowed to name three or more providers as string literals."""


def _module(name: str) -> str:
    """The adapter's module name (`ncp_wsc`), which names its test file."""
    return registry.entry(name).adapter.partition(":")[0].rpartition(".")[2]


@pytest.mark.parametrize("name", PROVIDER_NAMES)
def test_every_name_has_an_adapter_of_that_name(name: str) -> None:
    adapter = registry.adapter_class(name)
    assert adapter.name == name
    assert adapter.display_name == registry.entry(name).display_name


@pytest.mark.parametrize("name", PROVIDER_NAMES)
def test_every_name_has_an_emulator_and_scenarios_it_plays(name: str) -> None:
    assert registry.emulator_class(name).provider == name
    assert "findings" in scenarios_for(name)


@pytest.mark.parametrize("name", PROVIDER_NAMES)
def test_every_name_has_an_example_policy_that_validates(name: str) -> None:
    policy = load_policy(ROOT / "examples" / "policies" / f"{name}.yml")
    assert policy.provider.name == name
    check_options(policy, registry.adapter_class(name).options_schema)


@pytest.mark.parametrize("name", PROVIDER_NAMES)
def test_every_name_has_a_test_file_and_a_readme_section(name: str) -> None:
    assert (ROOT / "tests" / "providers" / f"test_{_module(name)}.py").is_file()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"\n### {registry.entry(name).display_name}\n" in readme


@pytest.mark.parametrize("name", PROVIDER_NAMES)
def test_credential_hint_names_exactly_the_adapters_variables(name: str) -> None:
    # The registry repeats the adapter's `CredentialSpec`s as text so the policy loader need
    # not import adapters; this keeps the two from drifting apart.
    adapter = registry.adapter_class(name)
    hint = registry.entry(name).credential_variables
    variables = {variable for spec in adapter.credentials for variable in spec.variables}
    assert set(re.findall(r"[A-Z][A-Z0-9_]*", hint)) == variables
    assert hint == describe(adapter)


@pytest.mark.parametrize("name", PROVIDER_NAMES)
def test_a_literal_secret_is_refused_naming_the_registrys_variables(name: str) -> None:
    text = f"version: 1\nprovider:\n  name: {name}\n  api_key: k3y-value-1\nscan:\n  target: x\n"
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, Path("p.yml"))
    assert f"set {registry.entry(name).credential_variables} in the environment" in str(
        caught.value
    )


def test_the_schema_lists_the_registrys_names_and_the_shipped_file_none() -> None:
    schema = policy_schema()
    assert schema["properties"]["provider"]["properties"]["name"]["enum"] == list(PROVIDER_NAMES)
    shipped = json.loads(
        resources.files("scangate").joinpath("schemas/policy.json").read_text("utf-8")
    )
    assert shipped["properties"]["provider"]["properties"]["name"]["enum"] == []


def test_providers_lists_every_registered_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["providers"]) == ExitStatus.PASSED
    out = capsys.readouterr().out
    for entry in registry.PROVIDERS:
        assert f"{entry.name} ({entry.display_name})" in out


def _quoted_names(text: str) -> set[str]:
    return {name for name in PROVIDER_NAMES if re.search(rf"([\"']){re.escape(name)}\1", text)}


def test_only_the_registry_lists_the_providers() -> None:
    holders = {
        str(path.relative_to(SRC))
        for path in sorted(SRC.rglob("*"))
        if path.is_file()
        and path.suffix in {".py", ".json", ".yml", ".yaml", ".toml"}
        and len(_quoted_names(path.read_text(encoding="utf-8", errors="replace"))) >= 3
    }
    assert holders <= LIST_HOLDERS, f"provider lists outside the registry: {sorted(holders)}"
