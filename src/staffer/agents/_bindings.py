"""Which agent serves a conversation: the first ``[[bindings]]`` entry that matches."""

from __future__ import annotations

from fnmatch import fnmatchcase

from staffer.config import DEFAULT_AGENT, Binding, Config


def _matches(pattern: str, value: str | None) -> bool:
    # An empty field matches anything; a set one needs a value that fits it.
    return not pattern or (value is not None and fnmatchcase(value, pattern))


def binding_matches(
    binding: Binding, *, channel: str, account: str | None = None, conversation: str | None = None
) -> bool:
    """True when every field `binding` sets matches (exact name or glob with * and ?)."""
    return (
        _matches(binding.channel, channel)
        and _matches(binding.account, account)
        and _matches(binding.conversation, conversation)
    )


def resolve_binding(
    config: Config,
    *,
    channel: str,
    account: str | None = None,
    conversation: str | None = None,
) -> str:
    """The name of the agent for a conversation on `channel` ("web", "api", "telegram", …),
    from `account` about `conversation`: the first matching binding's, else ``main``."""
    for binding in config.agents.bindings:
        if binding_matches(binding, channel=channel, account=account, conversation=conversation):
            return binding.agent
    return DEFAULT_AGENT
