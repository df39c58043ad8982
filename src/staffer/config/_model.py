"""The typed configuration. Each field's metadata is the settings registry:
`help` is shown by `staffer config check` and written into docs/configuration.md.

Only the CLI reads files and the environment; everything else receives a `Config`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

from staffer.config._agents import AgentsConfig
from staffer.router._traffic import SplitConfig, TrafficConfig
from staffer.router._types import BreakerConfig, DeploymentConfig, RouterConfig, Timeouts

_T = TypeVar("_T")


def _setting(default: _T, help: str) -> _T:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    host: str = _setting(
        "127.0.0.1",
        "Address the gateway binds. A non-loopback address is refused unless auth is on.",
    )
    port: int = _setting(8765, "TCP port of the gateway (web UI and API).")
    max_body_bytes: int = _setting(
        1_048_576, "Largest request body accepted; larger bodies get 413."
    )
    auth: bool = _setting(
        True,
        "Require the bearer token on every route except /healthz. Never turn off on a network.",
    )


@dataclass(frozen=True, slots=True)
class ModelConfig:
    name: str = _setting(
        "",
        'Model as "provider:model", e.g. "openai:gpt-4o-mini" (any OpenAI-compatible server) or '
        '"anthropic:claude-sonnet-4-5". '
        "Empty: no model yet, Staffer starts and explains how to add one.",
    )
    base_url: str = _setting(
        "",
        "Base URL of the provider's API, e.g. http://127.0.0.1:11434/v1 for Ollama. "
        "Empty: the provider's public endpoint.",
    )
    api_key_env: str = _setting(
        "",
        "Name of the environment variable that holds the API key (the key itself never goes in "
        "this file). Empty: OPENAI_API_KEY or ANTHROPIC_API_KEY by provider; "
        "local servers need none.",
    )
    timeout: float = _setting(120.0, "Seconds a model call may take in total before it fails.")
    max_tokens: int = _setting(4096, "Most tokens the model may write in one answer.")


#: What `agent.busy` may be: a message sent during a run is queued, steers it, or is refused.
BUSY_MODES = ("queue", "steer", "reject")


@dataclass(frozen=True, slots=True)
class AgentConfig:
    max_iterations: int = _setting(
        20, "Most model calls in one turn before the run stops with an explanation."
    )
    repeat_limit: int = _setting(
        3, "The same tool with the same arguments this many times in a row stops the run."
    )
    tool_timeout: float = _setting(60.0, "Seconds one tool call may take before it is cancelled.")
    max_tool_output_chars: int = _setting(
        16_000, "Longest tool result sent to the model; longer results are cut with a note."
    )
    workspace_file_max_chars: int = _setting(
        4_000,
        "Longest workspace file (AGENTS.md, SOUL.md …) put into the context; "
        "longer ones are cut with a notice.",
    )
    history_max_messages: int = _setting(200, "Most past messages of a session sent to the model.")
    busy: str = _setting(
        "queue",
        'What a message sent while a run is active does: "queue" (it runs after the active '
        'run), "steer" (it is added to the active run before its next model call) or '
        '"reject" (409 run_active).',
    )
    stuck_after: float = _setting(
        300.0,
        "Seconds a run may go without any event (text, tool call, usage) before it is stopped "
        "as stuck and fails; 0 turns the watchdog off. Keep it above tool_timeout.",
    )
    max_queued: int = _setting(
        10,
        "Most messages waiting per session (queued or steering); more get 429 queue_full.",
    )
    # context compaction (staffer.agent._compact)
    compact_at: float = _setting(
        0.8,
        "Share of the context window (above 0, at most 1) at which older turns are "
        "summarized into one message before the next model call.",
    )
    context_window: int = _setting(
        128_000,
        "Tokens the model accepts, when its deployments do not say (their context_window "
        "wins; for an alias, the smallest).",
    )
    compaction_model: str = _setting(
        "",
        "Alias or deployment that writes the summaries (with a plain [model], a model id at "
        "the same provider). Empty: the agent's own model.",
    )
    keep_recent_messages: int = _setting(
        8, "Most recent messages never summarized; the current turn is always kept too."
    )
    budget_usd_per_day: float | None = _setting(
        None,
        "Most the agent may spend on model calls in any 24 hours (from the price table); a "
        "run that reaches it stops before its next model call. Unset: no limit.",
    )


# --- routing: [router], [deployments.NAME] and [aliases.NAME] -----------------------
# These tables are read into the settings classes below (the registry: types, defaults
# and help for the docs), then turned into one `RouterConfig`: `Config.router`.

_DEP = DeploymentConfig("", "", "")
_TIMEOUTS = Timeouts()
_BREAKER = BreakerConfig()


@dataclass(frozen=True, slots=True)
class RouterSettings:
    """Routing defaults and the service-level objectives goodput is measured against."""

    default_alias: str = _setting(
        "",
        "Alias (or deployment) used when a request names no model. Empty: model.name when it "
        "names an alias or deployment, else the [model] deployment, else the first alias.",
    )
    slo_ttft: float | None = _setting(
        None, "Target seconds to the first token; a slower request does not count as goodput."
    )
    slo_tpot: float | None = _setting(None, "Target seconds per output token after the first.")
    slo_total: float | None = _setting(None, "Target seconds for a whole request.")
    cache_ttl: float = _setting(
        0.0,
        "Seconds a complete answer stays in the exact-match response cache; 0 turns it off. "
        'A request opts out with metadata {"cache": "no"}.',
    )
    cache_max_entries: int = _setting(
        1000, "Most answers the cache keeps; the least recently used go first."
    )


@dataclass(frozen=True, slots=True)
class DeploymentSettings:
    """One model at one endpoint, with its key (by variable name), prices and limits."""

    provider: str = _setting(
        "",
        "Required. Who serves it: openai, anthropic, openrouter, groq, gemini, ollama, vllm, "
        "llamacpp or lmstudio (any OpenAI-compatible server is openai plus base_url).",
    )
    model: str = _setting("", "Required. The model id the provider knows, e.g. gpt-4o-mini.")
    base_url: str = _setting("", "Base URL of the API. Empty: the provider's public endpoint.")
    api_key_env: str = _setting(
        "",
        "Environment variable holding the key. Empty: the provider's usual one; local servers "
        "need none. A deployment whose key is missing is disabled, the others keep serving.",
    )
    price_input: float | None = _setting(None, "USD per 1M input tokens. Unset: unknown.")
    price_output: float | None = _setting(None, "USD per 1M output tokens. Unset: unknown.")
    price_cached_input: float | None = _setting(
        None, "USD per 1M cached input tokens. Unset: unknown."
    )
    context_window: int | None = _setting(
        None, "Tokens the model accepts; a context-length error falls back to a larger one."
    )
    capabilities: tuple[str, ...] = _setting(
        tuple(sorted(_DEP.capabilities)),
        'What it supports, from "tools", "vision" and "json"; requests with tools only go to '
        'deployments with "tools".',
    )
    max_retries: int = _setting(
        _DEP.max_retries, "Retries here on 429, 5xx, dropped connections before falling back."
    )
    weight: float = _setting(_DEP.weight, "Share of first picks under the weighted strategy.")
    retry_backoff: float = _setting(
        _DEP.retry_backoff,
        "Seconds of the first retry's backoff; doubles each retry, with full jitter.",
    )
    retry_max_wait: float = _setting(
        _DEP.retry_max_wait,
        "Longest wait before a retry; a longer Retry-After falls back to the next deployment.",
    )
    timeout_connect: float = _setting(_TIMEOUTS.connect, "Seconds to open the connection.")
    timeout_ttft: float = _setting(
        _TIMEOUTS.ttft, "Seconds to the first token; a stall falls back to the next deployment."
    )
    timeout_idle: float = _setting(_TIMEOUTS.idle, "Longest gap in seconds between chunks.")
    timeout_total: float = _setting(_TIMEOUTS.total, "Seconds one call may take in total.")
    breaker_failures: int = _setting(
        _BREAKER.failures, "Consecutive failures that open the circuit breaker."
    )
    breaker_failure_rate: float = _setting(
        _BREAKER.failure_rate,
        "Failure rate (0-1) within breaker_window that opens the breaker.",
    )
    breaker_window: float = _setting(_BREAKER.window, "Seconds of history for the failure rate.")
    breaker_min_requests: int = _setting(
        _BREAKER.min_requests, "Outcomes needed in the window before the rate counts."
    )
    breaker_cooldown: float = _setting(
        _BREAKER.cooldown,
        "Seconds an open breaker skips the deployment before one probe request is let through.",
    )


@dataclass(frozen=True, slots=True)
class AliasSettings:
    """What agents and API callers ask for: deployments in order and a routing strategy."""

    deployments: tuple[str, ...] = _setting(
        (), "Required. Deployment names, in fallback order for the priority strategy."
    )
    strategy: str = _setting(
        "priority",
        "priority (in order), weighted (by weight), latency (fastest time to first token and "
        "per token), cost (cheapest by price) or least_busy (fewest requests in flight).",
    )


_SPLIT = SplitConfig("", "", "canary", "", "")


@dataclass(frozen=True, slots=True)
class SplitSettings:
    """A traffic split over one alias for a safe rollout (see "Traffic splits")."""

    alias: str = _setting(
        "",
        "Required. The alias the split decides for; created with [stable, candidate] if no "
        "[aliases.NAME] has that name, else its other deployments stay as fallback.",
    )
    kind: str = _setting("", "Required. canary, blue_green or champion_challenger.")
    stable: str = _setting("", "Required. The deployment serving today (blue; the champion).")
    candidate: str = _setting(
        "", "Required. The deployment being rolled out (green; the challenger)."
    )
    percent: float = _setting(
        _SPLIT.percent,
        "Share of requests (0-100) that try the candidate first (canary, champion_challenger).",
    )
    shadow: bool = _setting(
        _SPLIT.shadow,
        "champion_challenger only: the champion answers every request and the challenger gets "
        "a copy in the background, its answer only logged for the report.",
    )
    active: str = _setting(
        _SPLIT.active, "blue_green: the arm serving at start, stable or candidate."
    )
    max_error_rate: float | None = _setting(
        None, "canary: roll back when the candidate's error rate (0-1) goes above this."
    )
    max_p95_latency: float | None = _setting(
        None, "canary: roll back when the candidate's p95 latency in seconds goes above this."
    )
    min_requests: int = _setting(
        _SPLIT.min_requests, "canary: candidate attempts needed before the thresholds apply."
    )
    window: int = _setting(
        _SPLIT.window, "canary: the candidate's most recent attempts the thresholds look at."
    )
    shadow_concurrency: int = _setting(
        _SPLIT.shadow_concurrency,
        "Most shadow copies in flight at once; more are skipped and counted.",
    )


@dataclass(frozen=True, slots=True)
class TierSettings:
    """Tiering: requests that name no model (or `alias`) go to the alias of their tier."""

    economy: str = _setting("", "Alias (or deployment) of the economy tier.")
    mid: str = _setting("", "Alias (or deployment) of the mid tier.")
    premium: str = _setting("", "Alias (or deployment) of the premium tier.")
    default: str = _setting("mid", "Tier of a request no rule matches: economy, mid or premium.")
    alias: str = _setting(
        "auto", "The model name that asks for tiering; a request naming no model is tiered too."
    )
    spend_limit_usd: float | None = _setting(
        None,
        "Spend (USD since the gateway started) at which every request goes to economy; "
        "from spend_threshold of it, requests go one tier down. Unset: no downgrade.",
    )
    spend_threshold: float = _setting(
        0.8, "Share (0-1) of spend_limit_usd from which requests go one tier down."
    )


@dataclass(frozen=True, slots=True)
class TierRuleSettings:
    """One rule, in order; the first whose every set condition holds gives the tier."""

    tier: str = _setting("", "Required. economy, mid or premium.")
    min_chars: int | None = _setting(None, "At least this many characters in the messages.")
    max_chars: int | None = _setting(None, "At most this many characters in the messages.")
    tools: bool | None = _setting(None, "true: only requests offering tools; false: only without.")
    keywords: tuple[str, ...] = _setting(
        (), "Any of these words in the last user message (case-insensitive)."
    )
    # An inline table in TOML; the default is None, never a shared dict.
    metadata: dict[str, str] | None = _setting(  # noqa: RUF009
        None, 'Caller metadata that must all match, e.g. {user = "boss"} or {agent = "triage"}.'
    )


# --- many agents: [agents.NAME] and [[bindings]] ----------------------------------------
# Read into the settings classes below, then into one `AgentsConfig`: `Config.agents`.


@dataclass(frozen=True, slots=True)
class AgentSettings:
    """One agent besides the default `main` (which [agents.main] may also describe)."""

    description: str = _setting(
        "", "One line saying what the agent is for; other agents and the API see it."
    )
    model: str = _setting(
        "", "Alias or deployment the agent calls. Empty: the gateway's default model."
    )
    workspace: str = _setting(
        "",
        "The agent's folder (relative paths are inside the home). "
        "Empty: agents/NAME/workspace in the home; main keeps the home's workspace.",
    )
    tools: tuple[str, ...] = _setting(
        (),
        'Allow-list of tool names, e.g. ["read_file", "list_dir"]. Empty: every built-in '
        "tool. With a team, the blackboard tools are added unless the list names one of them.",
    )
    team: str = _setting(
        "",
        "Name of the blackboard the agent shares with the agents of the same team "
        "(blackboard_read and blackboard_write). Empty: no blackboard.",
    )
    max_iterations: int | None = _setting(None, "Overrides agent.max_iterations.")
    repeat_limit: int | None = _setting(None, "Overrides agent.repeat_limit.")
    tool_timeout: float | None = _setting(None, "Overrides agent.tool_timeout.")
    max_tool_output_chars: int | None = _setting(None, "Overrides agent.max_tool_output_chars.")
    workspace_file_max_chars: int | None = _setting(
        None, "Overrides agent.workspace_file_max_chars."
    )
    history_max_messages: int | None = _setting(None, "Overrides agent.history_max_messages.")
    budget_usd_per_day: float | None = _setting(None, "Overrides agent.budget_usd_per_day.")


@dataclass(frozen=True, slots=True)
class BindingSettings:
    """A route to an agent: the first binding whose set fields all match wins, else main."""

    agent: str = _setting("", "Required. The agent: main or an [agents.NAME] name.")
    channel: str = _setting(
        "", 'Where the message came from: "web", "api", "telegram", … (a glob, like all three).'
    )
    account: str = _setting("", "The sender's account on that channel, e.g. a user id.")
    conversation: str = _setting("", "The conversation (chat, thread or session) id.")


@dataclass(frozen=True, slots=True)
class StoreConfig:
    url: str = _setting(
        "",
        "Database URL. Empty: the SQLite file state/staffer.db in the home folder. "
        "postgresql://USER:PASSWORD@HOST:5432/DB lets `staffer gateway` and `staffer worker` "
        "processes on several machines share sessions and runs (pip install 'staffer[postgres]').",
    )
    url_env: str = _setting(
        "",
        "Name of an environment variable holding the database URL; wins over url "
        "(keeps a password out of this file).",
    )


@dataclass(frozen=True, slots=True)
class RunsConfig:
    lease_seconds: float = _setting(
        15.0,
        "Seconds a process holds a run between heartbeats before others may take it over. "
        "A dead worker's runs resume elsewhere after about this long (at once on its own host).",
    )
    heartbeat_every: float = _setting(
        2.0, "Seconds between a process's heartbeats; also how often it checks for cancels."
    )
    max_concurrent: int = _setting(64, "Most runs one process executes at once.")
    max_attempts: int = _setting(
        5,
        "Executions of one run (the first plus resumes after crashes) before it is failed, "
        "so a run that crashes its process cannot loop forever.",
    )
    delegate_max_depth: int = _setting(
        2, "How deep delegations may nest (an agent delegating to one that delegates …)."
    )
    delegate_timeout: float = _setting(
        600.0, "Seconds a foreground delegation waits for the other agent's answer."
    )
    delegate_max_parallel: int = _setting(
        4, "Most delegations of one run working at once (background ones count until done)."
    )


@dataclass(frozen=True, slots=True)
class Config:
    gateway: GatewayConfig = field(default_factory=GatewayConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    runs: RunsConfig = field(default_factory=RunsConfig)
    #: built from [router], [deployments.NAME] and [aliases.NAME]; not a settings table
    router: RouterConfig = field(default_factory=RouterConfig, metadata={"tables": True})
    #: built from [splits.NAME], [tiers] and the cache keys of [router]
    traffic: TrafficConfig = field(default_factory=TrafficConfig, metadata={"tables": True})
    #: built from [agents.NAME] and [[bindings]]; always has the agent "main"
    agents: AgentsConfig = field(default_factory=AgentsConfig, metadata={"tables": True})
