"""From configuration to a `Model`: the one place "provider:model" strings are parsed
and API keys are read from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import ip_address
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from staffer.errors import ConfigError
from staffer.models._types import Model
from staffer.models.anthropic import AnthropicModel
from staffer.models.openai import OpenAIChatModel

if TYPE_CHECKING:  # only attributes are read; keeps models independent of config
    from staffer.config import ModelConfig

_EXAMPLE = '"openai:gpt-4o-mini" or "anthropic:claude-sonnet-4-5"'


@dataclass(slots=True, frozen=True)
class _Provider:
    wire: Literal["openai", "anthropic"]
    base_url: str  # "" when the user must say where the server is
    key_env: str | None  # None for local servers, which need no key
    home: str = ""  # where to get a key, for the error message


PROVIDERS: dict[str, _Provider] = {
    "openai": _Provider(
        "openai", "https://api.openai.com/v1", "OPENAI_API_KEY", "platform.openai.com/api-keys"
    ),
    "anthropic": _Provider(
        "anthropic", "https://api.anthropic.com", "ANTHROPIC_API_KEY", "console.anthropic.com"
    ),
    "openrouter": _Provider(
        "openai", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY", "openrouter.ai/keys"
    ),
    "groq": _Provider(
        "openai", "https://api.groq.com/openai/v1", "GROQ_API_KEY", "console.groq.com/keys"
    ),
    "gemini": _Provider(
        "openai",
        "https://generativelanguage.googleapis.com/v1beta/openai",
        "GEMINI_API_KEY",
        "aistudio.google.com/apikey",
    ),
    "ollama": _Provider("openai", "http://127.0.0.1:11434/v1", None),
    "vllm": _Provider("openai", "", None),
    "llamacpp": _Provider("openai", "", None),
    "lmstudio": _Provider("openai", "", None),
}


def parse_model_name(name: str) -> tuple[str, str]:
    """Split ``"provider:model"`` into its parts; ConfigError (key ``model.name``) if it
    is empty, has no provider, or names a provider Staffer does not know.

    Only the first colon separates, so Ollama tags survive: ``ollama:llama3.1:8b``.
    """
    text = name.strip()
    if not text:
        raise ConfigError(
            "no model is set",
            key="model.name",
            fix=f'set model.name to "provider:model", e.g. {_EXAMPLE}',
        )
    provider, sep, model = text.partition(":")
    provider = provider.strip().lower()
    model = model.strip()
    if not sep or not provider:
        raise ConfigError(
            f'"{text}" does not say which provider serves it',
            key="model.name",
            fix=f'write it as "provider:model", e.g. "openai:{text.lstrip(":")}"; '
            f"providers: {', '.join(PROVIDERS)}",
        )
    if provider not in PROVIDERS:
        raise ConfigError(
            f'unknown provider "{provider}" in "{text}"',
            key="model.name",
            fix=f"use one of {', '.join(PROVIDERS)}; for any other OpenAI-compatible server use "
            '"openai:<model>" and set model.base_url',
        )
    if not model:
        raise ConfigError(
            f'"{text}" names no model after the provider',
            key="model.name",
            fix=f'add the model, e.g. "{provider}:<model name>"',
        )
    return provider, model


def is_loopback(url: str) -> bool:
    """True when `url` points at this machine (localhost, 127.0.0.0/8, ::1)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def build_model(cfg: ModelConfig, env: Mapping[str, str]) -> Model:
    """The adapter `cfg` describes, with its key read from `env` (never from the config).

    Hosted providers need a key; local servers (Ollama, vLLM, llama.cpp, LM Studio,
    or ``openai:`` with a loopback base_url) only get one when ``api_key_env`` is set.
    """
    provider, model = parse_model_name(cfg.name)
    spec = PROVIDERS[provider]
    base_url = cfg.base_url.strip() or spec.base_url
    if not base_url:
        raise ConfigError(
            f'provider "{provider}" has no public endpoint, so Staffer needs its address',
            key="model.base_url",
            fix='set model.base_url to the server\'s OpenAI-compatible URL, e.g. "http://127.0.0.1:8000/v1"',
        )
    if urlsplit(base_url).scheme not in ("http", "https"):
        raise ConfigError(
            f'"{base_url}" is not an http(s) URL',
            key="model.base_url",
            fix='write the full URL, e.g. "http://127.0.0.1:11434/v1"',
        )
    if cfg.timeout <= 0:
        raise ConfigError(
            f"timeout must be positive, got {cfg.timeout}",
            key="model.timeout",
            fix="set model.timeout to seconds, e.g. 120",
        )
    key_env = cfg.api_key_env.strip() or None
    local = spec.key_env is None or (provider == "openai" and is_loopback(base_url))
    if key_env is None and not local:
        key_env = spec.key_env
    api_key = env.get(key_env, "").strip() if key_env else ""
    if key_env and not api_key:
        where = f" (get one at {spec.home})" if spec.home and not cfg.api_key_env else ""
        raise ConfigError(
            f"{provider} needs an API key, but the environment variable {key_env} is not set",
            key="model.api_key_env",
            fix=f"export {key_env}=<your key>{where}, or set model.api_key_env to the "
            "variable that holds it",
        )
    timeout = float(cfg.timeout)
    if spec.wire == "anthropic":
        return AnthropicModel(
            model,
            base_url=base_url,
            api_key=api_key or None,
            timeout=timeout,
            max_tokens=cfg.max_tokens,
            api_key_env=key_env,
        )
    return OpenAIChatModel(
        model,
        base_url=base_url,
        api_key=api_key or None,
        timeout=timeout,
        max_tokens=cfg.max_tokens or None,
        provider_name=provider,
        api_key_env=key_env,
    )
