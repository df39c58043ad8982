"""Text generated from the settings registry: the model help, the reference and the template.

The registry is the field metadata of the dataclasses in `_model.py`. Everything a user reads
about settings — `docs/configuration.md`, the commented `config.toml` written by `staffer init`
and `staffer config docs` — is rendered here from it, so the three cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import textwrap
import types
import typing
from collections.abc import Iterator

from staffer.config._model import (
    AgentSettings,
    AliasSettings,
    BindingSettings,
    Config,
    DeploymentSettings,
    RouterSettings,
    SplitSettings,
    TierRuleSettings,
    TierSettings,
)

#: How to connect a model. Shown by `staffer start` when no model is configured, in the
#: gateway's `no_model` error, in the web UI and (as comments) in the config.toml template.
MODEL_HELP = """\
To connect a model, set it in the [model] section of config.toml in your
Staffer home (`staffer config path` prints where), then restart Staffer.
API keys are read from environment variables, never from the file.

    name = "ollama:llama3.1"                 # Ollama on this machine, no key
    name = "openai:gpt-4o-mini"              # key in OPENAI_API_KEY
    name = "anthropic:claude-sonnet-4-5"     # key in ANTHROPIC_API_KEY
    name = "openrouter:openai/gpt-4o-mini"   # key in OPENROUTER_API_KEY
    name = "groq:llama-3.1-8b-instant"       # key in GROQ_API_KEY
    name = "gemini:gemini-2.0-flash"         # key in GEMINI_API_KEY

vLLM, llama.cpp server, LM Studio or any other OpenAI-compatible server:
"openai:" plus the model id the server knows, and the server's base URL
(a local server needs no key; api_key_env names the variable if it does):

    name = "openai:qwen2.5-7b-instruct"
    base_url = "http://127.0.0.1:8000/v1"    # vLLM; llama.cpp :8080, LM Studio :1234
    api_key_env = "MY_SERVER_KEY"            # optional
"""

_TYPE_NAMES = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    tuple: "array of strings",
    dict: "table",
}

#: the named tables (routing, then agents), in file order (see `iter_table_settings`)
TABLE_SECTIONS: tuple[tuple[str, type], ...] = (
    ("router", RouterSettings),
    ("deployments.NAME", DeploymentSettings),
    ("aliases.NAME", AliasSettings),
    ("splits.NAME", SplitSettings),
    ("tiers", TierSettings),
    ("[tiers.rules]", TierRuleSettings),
    ("agents.NAME", AgentSettings),
    ("[bindings]", BindingSettings),
)

#: A value of each setting type, for messages and the template's examples.
EXAMPLES = {str: '"text"', int: "8765", float: "60.0", bool: "true", tuple: '["a", "b"]'}


@dataclasses.dataclass(frozen=True, slots=True)
class Setting:
    """One entry of the settings registry: where it lives, its type, default and help."""

    section: str
    key: str
    type: type
    default: object
    help: str
    optional: bool = False  # may be left unset (None), e.g. an unknown price

    @property
    def name(self) -> str:
        """The dotted name used in error messages, e.g. ``gateway.port``."""
        return f"{self.section}.{self.key}"

    @property
    def type_name(self) -> str:
        """The TOML-facing type name: string, integer, number or boolean."""
        return _TYPE_NAMES[self.type]


def iter_sections() -> Iterator[tuple[str, type]]:
    """Yield `(section name, section dataclass)` for every plain table of the config file
    (the routing tables are in `TABLE_SECTIONS`)."""
    hints = typing.get_type_hints(Config)
    for f in dataclasses.fields(Config):
        if not f.metadata.get("tables"):
            yield f.name, hints[f.name]


def _base_type(hint: object) -> tuple[type, bool]:
    """`float | None` → (float, True); `tuple[str, ...]` → (tuple, False)."""
    if isinstance(hint, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _base_type(args[0])[0], True
    origin = typing.get_origin(hint)
    return (origin if isinstance(origin, type) else typing.cast(type, hint)), False


def settings_of(section: str, cls: type) -> Iterator[Setting]:
    """Yield the settings of one section dataclass, named under `section`."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kind, optional = _base_type(hints[f.name])
        yield Setting(section, f.name, kind, f.default, str(f.metadata["help"]), optional)


def iter_settings() -> Iterator[Setting]:
    """Yield every setting of the plain sections in file order."""
    for section, cls in iter_sections():
        yield from settings_of(section, cls)


def iter_table_settings() -> Iterator[Setting]:
    """Yield every setting of [router], [deployments.NAME] and [aliases.NAME]."""
    for section, cls in TABLE_SECTIONS:
        yield from settings_of(section, cls)


def toml_value(value: object) -> str:
    """Format a default the way it is written in TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return f"{value:_}" if isinstance(value, int) and value >= 10_000 else str(value)


_DOCS_INTRO = """\
# Configuration

<!-- Generated by `staffer config docs` from src/staffer/config/_model.py. Do not edit by hand. -->

Staffer keeps everything in its home folder: `~/.staffer`, or the folder named by the
`STAFFER_HOME` environment variable.

| file | what it is |
|---|---|
| `config.toml` | the settings below; `staffer init` writes it with every setting commented out |
| `token` | the access token for the web UI, the API and `staffer chat` (mode 0600) |
| `staffer.db` | sessions, runs and the rest of the store (SQLite) |
| `workspace/` | the agent's folder: `AGENTS.md`, `SOUL.md`, `USER.md`, `TOOLS.md`, `MEMORY.md`, … |

`staffer config path` prints where the file is, `staffer config check` validates it, and a
missing file means every default. An unknown key, a wrong type or an out-of-range value stops
Staffer with the key, the problem and the fix. API keys never go into this file: name the
environment variable that holds the key with `model.api_key_env`.

## Connecting a model

`model.name` is `"provider:model"`. The key is read from the provider's environment variable
(or the one `model.api_key_env` names); local servers need none.

| provider | example `name` | key variable |
|---|---|---|
| Ollama on this machine | `"ollama:llama3.1"` | – |
| OpenAI | `"openai:gpt-4o-mini"` | `OPENAI_API_KEY` |
| Anthropic | `"anthropic:claude-sonnet-4-5"` | `ANTHROPIC_API_KEY` |
| OpenRouter | `"openrouter:openai/gpt-4o-mini"` | `OPENROUTER_API_KEY` |
| Groq | `"groq:llama-3.1-8b-instant"` | `GROQ_API_KEY` |
| Gemini (OpenAI-compatible endpoint) | `"gemini:gemini-2.0-flash"` | `GEMINI_API_KEY` |

Ollama on this machine:

```toml
[model]
name = "ollama:llama3.1"
```

Anthropic, with `export ANTHROPIC_API_KEY=...` in the shell that runs `staffer start`:

```toml
[model]
name = "anthropic:claude-sonnet-4-5"
```

vLLM, llama.cpp server (`:8080`), LM Studio (`:1234`) or any other OpenAI-compatible server:
`openai:` plus the model id the server knows, and its base URL:

```toml
[model]
name = "openai:qwen2.5-7b-instruct"
base_url = "http://127.0.0.1:8000/v1"
api_key_env = "MY_SERVER_KEY"   # only if the server wants a key
```

## Settings
"""


#: the routing example shown in the docs and (commented out) in the config.toml template
ROUTING_EXAMPLE = """\
[deployments.mini]
provider = "openai"
model = "gpt-4o-mini"
price_input = 0.15
price_output = 0.60
price_cached_input = 0.075
context_window = 128000

[deployments.claude]
provider = "anthropic"
model = "claude-sonnet-4-5"
price_input = 3.0
price_output = 15.0
context_window = 200000
capabilities = ["tools", "vision"]

[deployments.local]
provider = "ollama"
model = "llama3.1"
price_input = 0
price_output = 0
max_retries = 0
timeout_ttft = 20

[aliases.smart]
deployments = ["claude", "mini"]

[aliases.cheap]
deployments = ["local", "mini"]
strategy = "cost"

[router]
default_alias = "smart"
slo_ttft = 2.0
"""

_ROUTING_INTRO = """
## Routing across deployments

A *deployment* is one model at one endpoint, with its key (by variable name), prices,
context window, capabilities, retry limit, timeouts and circuit breaker. An *alias* (`smart`,
`cheap`, …) is what agents and API callers ask for: deployments in order plus a strategy.
With deployments configured, the gateway's model is the router, and `model.name` may name an
alias or a deployment; a `"provider:model"` there joins as one more deployment, called
`model`. Without deployments, `[model]` is used directly (no retries, no fallback).

```toml
{example}```

Retryable failures (429, 500/502/503/504, connect errors, timeouts, unreadable streams) are
retried on the same deployment with exponential backoff and jitter, never sooner than the
provider's Retry-After, up to `max_retries`; then the next deployment is tried. A rejected
key (401/403), an unknown model (404) or a billing refusal (402) goes straight to the next
deployment; a context-length error only to one with a larger `context_window`; any other 400
is the request's fault and is returned at once. A stall before the first token
(`timeout_ttft`) falls back at once. Once text has reached the caller nothing is retried:
a failure then ends the answer with an error.

A deployment's breaker opens after `breaker_failures` failures in a row, or a failure rate
above `breaker_failure_rate` within `breaker_window` seconds; an open deployment is skipped
without a network call, and after `breaker_cooldown` seconds one probe request decides
whether it closes again. Every retry, fallback and breaker transition is logged on
`staffer.router` with its cause, deployment, attempt and latency.
"""


#: the traffic example shown in the docs (see docs/routing.md for the whole story)
TRAFFIC_EXAMPLE = """\
[router]
cache_ttl = 300          # seconds; 0 (the default) turns the response cache off

[splits.smart-rollout]
alias = "smart"
kind = "canary"          # or "blue_green", "champion_challenger"
stable = "claude"
candidate = "mini"
percent = 10
max_error_rate = 0.05
max_p95_latency = 8.0
min_requests = 50

[tiers]
economy = "cheap"
mid = "smart"
premium = "smart"

[[tiers.rules]]
tier = "premium"
metadata = { user = "boss" }

[[tiers.rules]]
tier = "economy"
max_chars = 2000
tools = false
"""

_TRAFFIC_INTRO = """
## Traffic splits, tiers and the cache

A *split* takes over one alias for a safe rollout: a **canary** sends `percent` of requests
to the candidate first (the stable deployment is its fallback) and rolls back to 0 % when the
candidate's error rate or p95 latency breaks a threshold; **blue_green** sends everything to
the active arm and flips over the API; **champion_challenger** gives the challenger a share,
or with `shadow = true` sends it a copy of each request in the background and keeps both
answers for a side-by-side report. *Tiers* send requests that name no model (or `"auto"`)
to an economy, mid or premium alias by rules, and move them down as spend nears
`spend_limit_usd`. `POST /api/router/reload` (or SIGHUP) re-reads the routing tables
without dropping requests in flight. See docs/routing.md.

```toml
{example}```
"""


#: the many-agents example shown in the docs
AGENTS_EXAMPLE = """\
[agents.main]
description = "Talks with you and hands out the work"
team = "research"

[agents.scout]
description = "Finds and summarizes sources"
model = "cheap"                       # an alias or deployment; empty: the default model
tools = ["read_file", "write_file", "list_dir"]
team = "research"
max_iterations = 40

[agents.ops]
description = "Runs commands on this machine"
workspace = "/srv/ops-workspace"
tool_timeout = 120

[[bindings]]
agent = "ops"
channel = "telegram"
account = "alice"

[[bindings]]
agent = "scout"
channel = "api"
conversation = "research-*"
"""

_AGENTS_INTRO = """
## Many agents

Every home has the agent `main`, built from `[agent]`. Each `[agents.NAME]` table adds one
more, with its own workspace (`agents/NAME/workspace` in the home, created with the same
files as the home's), model (an alias or deployment of the routing tables), tool allow-list
and limits; the `[agent]` limits apply where it sets none. `[agents.main]` describes `main`
the same way (it keeps the home's workspace).

Agents with the same `team` share a *blackboard*: key → value notes that they read and
write with the `blackboard_read` and `blackboard_write` tools, each entry with who wrote it,
when, and a version. A write may name the version it read (`expected_version`) and is then
refused if someone wrote in between, so two agents never both claim the same task. The
tools are only given to agents with a team.

*Bindings* pick the agent of a new conversation: the first `[[bindings]]` entry whose set
fields all match (exact names or globs with `*` and `?`) wins, and a conversation no
binding matches goes to `main`. A session created over the API may also name its agent
(`POST /api/sessions` with `{{"agent": "scout"}}`); `GET /api/agents` lists them.

```toml
{example}```
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _default_cell(s: Setting) -> str:
    if s.default is None:
        return "unset"
    if s.default in ("", ()) and s.help.startswith("Required."):
        return "required"
    return f"`{toml_value(s.default)}`"


def render_config_docs() -> str:
    """Render the Markdown configuration reference (the content of docs/configuration.md)."""
    parts = [_DOCS_INTRO]
    for section, cls in iter_sections():
        parts.append(f"\n### `[{section}]`\n")
        doc = (cls.__doc__ or "").strip()
        if doc and not doc.startswith(cls.__name__ + "("):
            parts.append(f"\n{doc}\n")
        parts.append("\n| key | type | default | description |\n|---|---|---|---|\n")
        for s in iter_settings():
            if s.section == section:
                default = toml_value(s.default)
                parts.append(f"| `{s.key}` | {s.type_name} | `{default}` | {_cell(s.help)} |\n")
    parts.append(_ROUTING_INTRO.format(example=ROUTING_EXAMPLE))
    for section, cls in TABLE_SECTIONS:
        if section == "splits.NAME":
            parts.append(_TRAFFIC_INTRO.format(example=TRAFFIC_EXAMPLE))
        if section == "agents.NAME":
            parts.append(_AGENTS_INTRO.format(example=AGENTS_EXAMPLE))
        parts.append(f"\n### `[{section}]`\n")
        parts.append(f"\n{(cls.__doc__ or '').strip()}\n")
        parts.append("\n| key | type | default | description |\n|---|---|---|---|\n")
        for s in settings_of(section, cls):
            parts.append(f"| `{s.key}` | {s.type_name} | {_default_cell(s)} | {_cell(s.help)} |\n")
    return "".join(parts)


def _comment(text: str, width: int = 88) -> list[str]:
    return textwrap.wrap(text, width, initial_indent="# ", subsequent_indent="# ")


def render_config_template() -> str:
    """Render the commented config.toml that `staffer init` writes.

    Section headers are live and every key is commented out with its help and default, so the
    file loads as all defaults and uncommenting a line is the whole edit.
    """
    lines = [
        "# Staffer configuration. Every setting is listed with its default, commented out:",
        "# uncomment a line to change it. Reference: `staffer config docs` or",
        "# docs/configuration.md. Check your edits with `staffer config check`.",
    ]
    for section, _cls in iter_sections():
        lines.append("")
        lines.append(f"[{section}]")
        if section == "model":
            # After the header, so uncommenting an example line lands in [model].
            lines.extend(f"# {line}".rstrip() for line in MODEL_HELP.splitlines())
            lines.append("")
        for s in iter_settings():
            if s.section == section:
                lines.extend(_comment(s.help))
                if s.default is None:  # unset: TOML cannot spell it, so show an example
                    lines.append(f"# e.g. {s.key} = {EXAMPLES[s.type]}")
                else:
                    lines.append(f"# {s.key} = {toml_value(s.default)}")
                lines.append("")
        if lines[-1] == "":
            lines.pop()
    lines.append("")
    lines.extend(
        _comment(
            "Routing (optional): deployments behind aliases, with retries, fallback and circuit "
            "breakers. With deployments set, model.name may name an alias. Every key is in "
            'docs/configuration.md, "Routing across deployments". For example:'
        )
    )
    lines.append("#")
    lines.extend(f"#   {line}".rstrip() for line in ROUTING_EXAMPLE.splitlines())
    return "\n".join(lines) + "\n"
