"""Scanner providers, behind one interface and a closed registry (no plugin discovery)."""

from __future__ import annotations

import importlib

from scangate.providers.interface import (
    Capabilities,
    CredentialSpec,
    Provider,
    ScanProgress,
    ScanRef,
    StartAttempt,
)

__all__ = [
    "PROVIDER_NAMES",
    "Capabilities",
    "CredentialSpec",
    "Provider",
    "ScanProgress",
    "ScanRef",
    "StartAttempt",
    "provider_class",
]

PROVIDER_NAMES: tuple[str, ...] = ("cystack", "cybersecpro", "vaddy", "cyberorigen", "ncp-wsc")
"""Every provider name a policy may use (design §1)."""


_REGISTRY: dict[str, tuple[str, str]] = {
    "cystack": ("scangate.providers.cystack", "CyStackProvider"),
    "cybersecpro": ("scangate.providers.cybersecpro", "CyberSecProProvider"),
    "vaddy": ("scangate.providers.vaddy", "VAddyProvider"),
    "cyberorigen": ("scangate.providers.cyberorigen", "CyberOrigenProvider"),
    "ncp-wsc": ("scangate.providers.ncp_wsc", "NcpWscProvider"),
}
"""Provider name -> (module, class); modules are imported only when that provider is used."""


def provider_class(name: str) -> type[Provider]:
    """Return the adapter class registered as `name`; `KeyError` for an unknown name."""
    module_name, class_name = _REGISTRY[name]
    module = importlib.import_module(module_name)
    cls: type[Provider] = getattr(module, class_name)
    return cls
