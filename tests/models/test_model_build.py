"""parse_model_name and build_model: provider strings, base URLs and API keys."""

from __future__ import annotations

import pytest

from staffer.config import ModelConfig
from staffer.errors import ConfigError
from staffer.models import AnthropicModel, OpenAIChatModel, build_model, parse_model_name


def test_parse_model_name_splits_on_the_first_colon() -> None:
    assert parse_model_name("openai:gpt-4o-mini") == ("openai", "gpt-4o-mini")
    assert parse_model_name(" Ollama:llama3.1:8b ") == ("ollama", "llama3.1:8b")
    assert parse_model_name("openrouter:meta-llama/llama-3.3-70b") == (
        "openrouter",
        "meta-llama/llama-3.3-70b",
    )


@pytest.mark.parametrize(
    ("name", "problem", "fix"),
    [
        ("", "no model is set", '"provider:model"'),
        ("   ", "no model is set", '"provider:model"'),
        ("gpt-4o", "does not say which provider", '"openai:gpt-4o"'),
        (":gpt-4o", "does not say which provider", "openai:gpt-4o"),
        ("mistral:large", 'unknown provider "mistral"', "openai:<model>"),
        ("openai:", "names no model", "openai:<model name>"),
    ],
)
def test_parse_model_name_errors_say_problem_and_fix(name: str, problem: str, fix: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_model_name(name)
    assert info.value.key == "model.name"
    assert problem in info.value.problem
    assert fix in (info.value.fix or "")


def test_hosted_providers_read_their_default_key_variable() -> None:
    env = {
        "OPENAI_API_KEY": "sk-o",
        "ANTHROPIC_API_KEY": "sk-a",
        "GROQ_API_KEY": "gk",
        "OPENROUTER_API_KEY": "or",
        "GEMINI_API_KEY": "gm",
    }
    openai = build_model(ModelConfig(name="openai:gpt-4o-mini", timeout=30), env)
    assert isinstance(openai, OpenAIChatModel)
    assert openai.name == "openai:gpt-4o-mini"
    assert openai.base_url == "https://api.openai.com/v1"
    assert openai._headers["authorization"] == "Bearer sk-o"
    anthropic = build_model(ModelConfig(name="anthropic:claude-sonnet-4-5", max_tokens=1000), env)
    assert isinstance(anthropic, AnthropicModel)
    assert (anthropic._headers["x-api-key"], anthropic.max_tokens) == ("sk-a", 1000)
    urls = {
        "groq": ("https://api.groq.com/openai/v1", "gk"),
        "openrouter": ("https://openrouter.ai/api/v1", "or"),
        "gemini": ("https://generativelanguage.googleapis.com/v1beta/openai", "gm"),
    }
    for provider, (url, key) in urls.items():
        model = build_model(ModelConfig(name=f"{provider}:m"), env)
        assert isinstance(model, OpenAIChatModel)
        assert (model.name, model.base_url) == (f"{provider}:m", url)
        assert model._headers["authorization"] == f"Bearer {key}"


@pytest.mark.parametrize(
    ("name", "var"),
    [
        ("openai:gpt-4o", "OPENAI_API_KEY"),
        ("anthropic:claude", "ANTHROPIC_API_KEY"),
        ("groq:llama", "GROQ_API_KEY"),
        ("gemini:flash", "GEMINI_API_KEY"),
        ("openrouter:x", "OPENROUTER_API_KEY"),
    ],
)
def test_missing_key_for_a_hosted_provider_names_the_variable(name: str, var: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_model(ModelConfig(name=name), {"OPENAI_API_KEY": " " if "OPENAI" in var else "k"})
    assert info.value.key == "model.api_key_env"
    assert var in info.value.problem
    assert f"export {var}=" in (info.value.fix or "")


def test_custom_key_variable_is_used_and_required() -> None:
    cfg = ModelConfig(name="openai:m", api_key_env="MY_KEY")
    model = build_model(cfg, {"MY_KEY": "k", "OPENAI_API_KEY": "other"})
    assert isinstance(model, OpenAIChatModel)
    assert model._headers["authorization"] == "Bearer k"
    with pytest.raises(ConfigError, match="MY_KEY is not set"):
        build_model(cfg, {"OPENAI_API_KEY": "other"})


def test_local_servers_need_no_key_and_get_none_leaked() -> None:
    env = {"OPENAI_API_KEY": "sk-secret"}
    ollama = build_model(ModelConfig(name="ollama:llama3.1:8b"), {})
    assert isinstance(ollama, OpenAIChatModel)
    assert ollama.base_url == "http://127.0.0.1:11434/v1"
    assert ollama.model == "llama3.1:8b"
    for url in ("http://127.0.0.1:8000/v1", "http://localhost:1234/v1/", "http://[::1]:8080/v1"):
        model = build_model(ModelConfig(name="openai:local", base_url=url), env)
        assert isinstance(model, OpenAIChatModel)
        assert "authorization" not in model._headers
        assert not model.base_url.endswith("/")
    vllm = build_model(ModelConfig(name="vllm:qwen", base_url="http://10.0.0.5:8000/v1"), env)
    assert "authorization" not in vllm._headers  # type: ignore[attr-defined]


@pytest.mark.parametrize("provider", ["vllm", "llamacpp", "lmstudio"])
def test_servers_without_a_public_endpoint_need_base_url(provider: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_model(ModelConfig(name=f"{provider}:m"), {})
    assert info.value.key == "model.base_url"


def test_bad_base_url_and_timeout() -> None:
    with pytest.raises(ConfigError, match="not an http"):
        build_model(ModelConfig(name="ollama:m", base_url="127.0.0.1:11434"), {})
    with pytest.raises(ConfigError, match="timeout must be positive"):
        build_model(ModelConfig(name="ollama:m", timeout=0), {})


def test_anthropic_base_url_with_v1_suffix_is_tolerated() -> None:
    cfg = ModelConfig(name="anthropic:c", base_url="https://proxy.example/v1/")
    model = build_model(cfg, {"ANTHROPIC_API_KEY": "k"})
    assert isinstance(model, AnthropicModel)
    assert model._url == "https://proxy.example/v1/messages"
