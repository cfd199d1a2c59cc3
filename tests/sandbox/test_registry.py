"""The sandbox's emulators come from `scangate.registry`, one sub-package per provider."""

from __future__ import annotations

import subprocess
import sys

import pytest

from scangate import registry
from scangate.sandbox import (
    EMULATORS,
    SCENARIOS,
    SandboxError,
    emulator_class,
    load_scenario,
)


def test_the_emulators_are_the_registered_providers_in_order() -> None:
    assert tuple(EMULATORS) == registry.PROVIDER_NAMES
    assert len(EMULATORS) == len(registry.PROVIDERS)
    assert "acme" not in EMULATORS
    with pytest.raises(KeyError):
        EMULATORS["acme"]


@pytest.mark.parametrize("entry", registry.PROVIDERS, ids=lambda entry: entry.name)
def test_each_emulator_lives_in_its_provider_sub_package(entry: registry.ProviderEntry) -> None:
    cls = emulator_class(entry.name)

    assert cls is EMULATORS[entry.name] is registry.emulator_class(entry.name)
    assert cls.provider == entry.name
    package = entry.name.replace("-", "_")
    assert cls.__module__ == f"scangate.sandbox.{package}.emulator"
    assert entry.emulator == f"{cls.__module__}:{cls.__name__}"


def test_an_unknown_provider_is_a_sandbox_error_naming_the_emulated_ones() -> None:
    with pytest.raises(SandboxError) as caught:
        emulator_class("acme")

    assert caught.value.hint == f"the sandbox emulates: {', '.join(sorted(EMULATORS))}"


def test_membership_imports_no_emulator() -> None:
    code = (
        "import sys\n"
        "from scangate.sandbox import EMULATORS\n"
        "assert 'vaddy' in EMULATORS and sorted(EMULATORS)\n"
        "loaded = [m for m in sys.modules if m.endswith('.emulator')]\n"
        "assert not loaded, loaded\n"
        "EMULATORS['vaddy']\n"
        "assert [m for m in sys.modules if m.endswith('.emulator')] == "
        "['scangate.sandbox.vaddy.emulator']\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", SCENARIOS)
def test_bundled_scenarios_name_only_registered_providers(name: str) -> None:
    scenario = load_scenario(name)

    assert set(scenario.providers) <= set(registry.PROVIDER_NAMES)
    assert set(scenario.options) <= set(registry.PROVIDER_NAMES)
