"""Credentials: read only from the environment, checked before any network call (design §9)."""

from __future__ import annotations

from collections.abc import Mapping

from scangate.errors import CredentialsError
from scangate.providers.interface import CredentialSpec, Provider


def describe(provider: type[Provider]) -> str:
    """Name the accepted credential variables: `A`, or `B` + `C`."""
    return ", or ".join(" + ".join(spec.variables) for spec in provider.credentials)


def select_credentials(provider: type[Provider], env: Mapping[str, str]) -> dict[str, str]:
    """Return the first complete credential set in `env` for `provider`.

    Raise `CredentialsError` (exit 2) naming every accepted variable when none is complete,
    and naming the empty ones when they are set but empty.
    """
    for spec in provider.credentials:
        if all(env.get(name, "").strip() for name in spec.variables):
            return {name: env[name].strip() for name in spec.variables}
    empty = sorted(
        name
        for spec in provider.credentials
        for name in spec.variables
        if name in env and not env[name].strip()
    )
    notes = [f"{', '.join(empty)} set but empty"] if empty else []
    # A set that is half there (`VADDY_USER` without `VADDY_AUTH_KEY`) names what it lacks.
    for spec in provider.credentials:
        given = [name for name in spec.variables if env.get(name, "").strip()]
        missing = [name for name in spec.variables if name not in env]
        if given and missing:
            notes.append(f"{', '.join(given)} set but {', '.join(missing)} not")
    detail = f" ({'; '.join(notes)})" if notes else ""
    raise CredentialsError(
        f"{provider.name}: no credentials in the environment{detail}",
        hint=f"set {describe(provider)} (credentials are read only from the environment), "
        "or try the bundled emulator with `scangate run --sandbox`",
    )


def secrets_of(provider: type[Provider], credentials: Mapping[str, str]) -> list[str]:
    """The values among `credentials` that are secrets (to redact and mask)."""
    secret_names: set[str] = set()
    spec: CredentialSpec
    for spec in provider.credentials:
        secret_names |= spec.secret
    return [value for name, value in credentials.items() if name in secret_names]
