"""Scanner providers, behind one interface; `scangate.registry` names them (no plugin discovery)."""

from __future__ import annotations

from scangate.providers.interface import (
    Capabilities,
    CredentialSpec,
    Provider,
    ScanProgress,
    ScanRef,
    StartAttempt,
)
from scangate.registry import PROVIDER_NAMES, adapter_class

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


def provider_class(name: str) -> type[Provider]:
    """Return the adapter class registered as `name`; `KeyError` for an unknown name."""
    return adapter_class(name)
