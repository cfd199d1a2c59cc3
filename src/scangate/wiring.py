"""From a policy to a working provider: the policy file, the adapter class, its HTTP client,
the sandbox it may point at, and the runner that drives it."""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from scangate.credentials import secrets_of, select_credentials
from scangate.errors import Error, PolicyError, UsageError
from scangate.http import Connection
from scangate.policy import Policy, check_options, find_policy, load_policy, with_overrides
from scangate.polling import PollPolicy, PollSchedule
from scangate.providers import Provider, provider_class
from scangate.runner import HERD_SPREAD, Runner
from scangate.session import Context


def command_policy(args: argparse.Namespace, context: Context) -> Policy:
    """The policy a command runs under: found, loaded, and `--out-dir` / `--comment` applied."""
    policy = load_policy(find_policy(args.policy, context.env, Path()))
    out_dir = getattr(args, "out_dir", None)
    # `--comment` turns the comment on; without it, the policy's `reports.comment` holds.
    comment = True if getattr(args, "comment", None) else None
    return with_overrides(policy, out_dir=Path(out_dir) if out_dir else None, comment=comment)


def provider_type(policy: Policy) -> type[Provider]:
    """The adapter class the policy names, its options and `if_running` checked against it."""
    # `load_policy` accepted only a registered name (the schema's enum is the registry's).
    cls = provider_class(policy.provider.name)
    check_options(policy, cls.options_schema)
    if policy.scan.if_running.value == "attach" and not cls.capabilities.attach:
        raise PolicyError(
            f"{policy.source}: scan.if_running: {cls.display_name} cannot attach to a running scan",
            hint="use if_running: wait or fail",
        )
    return cls


@contextmanager
def sandboxed(policy: Policy, scenario: str | None) -> Iterator[tuple[Policy, Mapping[str, str]]]:
    """Yield the policy and credentials to use: the real ones, or the bundled emulator's."""
    if scenario is None:
        yield policy, {}
        return
    from scangate.sandbox import sandbox_env, start_sandbox

    try:
        server = start_sandbox(policy.provider.name, scenario)
    except Error:
        raise
    except (KeyError, ValueError, OSError) as exc:
        raise UsageError(f"cannot start the {policy.provider.name} sandbox: {exc}") from None
    try:
        settings = replace(policy.provider, base_url=server.base_url, verify_tls=True)
        yield replace(policy, provider=settings), sandbox_env(policy.provider.name, scenario)
    finally:
        server.stop()


def build_provider(
    cls: type[Provider], policy: Policy, context: Context, env: Mapping[str, str]
) -> Provider:
    """The adapter with its credentials (registered for redaction) and its HTTP client."""
    credentials = select_credentials(cls, env)
    for secret in secrets_of(cls, credentials):
        context.redactor.add(secret)
    if policy.provider.verify_tls is False:
        context.console.line(
            "WARNING: TLS certificate verification is OFF (provider.verify_tls: false); "
            "anyone on the network path can read the credentials"
        )
    connection = Connection(
        base_url=policy.provider.base_url or cls.DEFAULT_BASE_URL,
        redactor=context.redactor,
        verify=policy.provider.verify_tls,
    )
    return cls(settings=policy.provider, env=credentials, connection=connection)


def build_runner(provider: Provider, policy: Policy, context: Context) -> Runner:
    """The runner for one scan, its deadline counted from process start."""
    return Runner(
        provider=provider,
        policy=policy,
        log=context.console.line,
        deadline=context.process_start + policy.scan.timeout,
        schedule=lambda: PollSchedule(PollPolicy(), wall_clock=provider.now),
        # Matrix jobs sharing one account start together; spread their first requests.
        herd_spread=HERD_SPREAD if context.env.get("CI", "").lower() in ("true", "1") else 0.0,
    )
