"""The settings reference is generated from the registry and committed; they must agree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from staffer.config import MODEL_HELP, render_config_docs, render_config_template
from staffer.config._docs import iter_settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_committed_docs_match_the_registry() -> None:
    assert DOCS.read_text(encoding="utf-8") == render_config_docs(), (
        "docs/configuration.md is stale: run `staffer config docs > docs/configuration.md`"
    )


def test_every_setting_is_documented_and_in_the_template() -> None:
    docs, template = render_config_docs(), render_config_template()
    for setting in iter_settings():
        assert f"| `{setting.key}` | {setting.type_name} |" in docs
        unset = setting.default is None  # shown as an example: TOML has no "unset"
        assert f"\n# {'e.g. ' if unset else ''}{setting.key} = " in template
        assert setting.help.split()[0] in template


def test_model_help_names_every_way_to_connect_a_model() -> None:
    for name in ("vllm", "ollama", "llama.cpp", "lm studio", "openrouter", "groq", "gemini"):
        assert name in MODEL_HELP.lower()
    assert "anthropic:" in MODEL_HELP
    assert "api_key_env" in MODEL_HELP
    assert "base_url" in MODEL_HELP
    assert MODEL_HELP in render_config_template().replace("\n# ", "\n").replace("\n#\n", "\n\n")


EXAMPLES = sorted(set(re.findall(r'name = "([^"]+)"', MODEL_HELP + render_config_docs())))


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_model_name_is_valid(name: str) -> None:
    from staffer.models import parse_model_name

    parse_model_name(name)  # raises ConfigError if the models package disagrees
