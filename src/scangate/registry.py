"""The one place that names the providers: adapter, emulator and credentials of each.

A leaf module (it imports nothing of scangate's at import time), so that the policy loader, the
CLI's start-up path and the tests can all read the provider list without importing `requests`
or any adapter. Everything else that needs the list derives it from here: the policy schema's
`provider.name` enum, the credential hints, the sandbox's emulators and `scangate providers`.
Adding a provider means adding one `ProviderEntry` below (CONTRIBUTING.md lists the other files).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scangate.providers.interface import Provider
    from scangate.sandbox.runtime import Emulator


@dataclass(frozen=True, kw_only=True)
class ProviderEntry:
    """One registered provider: where its code lives and which variables carry its secrets."""

    name: str
    """The `provider.name` a policy uses (design §1)."""
    display_name: str
    """The product's name, as reports and messages show it."""
    adapter: str
    """`module:Class` of the adapter (a `Provider` subclass)."""
    emulator: str
    """`module:Class` of the sandbox emulator (an `Emulator` subclass)."""
    credential_variables: str
    """The environment variables of its credentials, as a message names them."""


PROVIDERS: tuple[ProviderEntry, ...] = (
    ProviderEntry(
        name="cystack",
        display_name="CyStack",
        adapter="scangate.providers.cystack:CyStackProvider",
        emulator="scangate.sandbox.cystack.emulator:CyStackEmulator",
        credential_variables="CYSTACK_API_KEY",
    ),
    ProviderEntry(
        name="cybersecpro",
        display_name="CyberSec Pro",
        adapter="scangate.providers.cybersecpro:CyberSecProProvider",
        emulator="scangate.sandbox.cybersecpro.emulator:CyberSecProEmulator",
        credential_variables="CYBERSECPRO_API_KEY, or CYBERSECPRO_EMAIL + CYBERSECPRO_PASSWORD",
    ),
    ProviderEntry(
        name="vaddy",
        display_name="VAddy",
        adapter="scangate.providers.vaddy:VAddyProvider",
        emulator="scangate.sandbox.vaddy.emulator:VAddyEmulator",
        credential_variables="VADDY_USER + VADDY_AUTH_KEY",
    ),
    ProviderEntry(
        name="cyberorigen",
        display_name="CyberOrigen",
        adapter="scangate.providers.cyberorigen:CyberOrigenProvider",
        emulator="scangate.sandbox.cyberorigen.emulator:CyberOrigenEmulator",
        credential_variables="CYBERORIGEN_API_KEY, or CYBERORIGEN_USERNAME + CYBERORIGEN_PASSWORD",
    ),
    ProviderEntry(
        name="ncp-wsc",
        display_name="NAVER Cloud Web Security Checker",
        adapter="scangate.providers.ncp_wsc:NcpWscProvider",
        emulator="scangate.sandbox.ncp_wsc.emulator:NcpWscEmulator",
        credential_variables="NCP_ACCESS_KEY + NCP_SECRET_KEY",
    ),
)
"""Every provider, in the order `scangate providers` lists them."""

PROVIDER_NAMES: tuple[str, ...] = tuple(entry.name for entry in PROVIDERS)
"""Every provider name a policy may use."""

_BY_NAME = {entry.name: entry for entry in PROVIDERS}


def entry(name: str) -> ProviderEntry:
    """The entry registered as `name`; `KeyError` for an unknown name."""
    return _BY_NAME[name]


def _load(reference: str) -> Any:
    module_name, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def adapter_class(name: str) -> type[Provider]:
    """The adapter class of `name`, imported now; `KeyError` for an unknown name."""
    cls: type[Provider] = _load(entry(name).adapter)
    return cls


def emulator_class(name: str) -> type[Emulator]:
    """The emulator class of `name`, imported now; `KeyError` for an unknown name."""
    cls: type[Emulator] = _load(entry(name).emulator)
    return cls
