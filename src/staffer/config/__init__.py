"""Configuration: typed settings, the config file and the home folder."""

from staffer.config._agents import DEFAULT_AGENT, AgentProfile, AgentsConfig, Binding
from staffer.config._docs import MODEL_HELP, render_config_docs, render_config_template
from staffer.config._home import WORKSPACE_FILES, Home, init_home, init_workspace
from staffer.config._load import check_config, load_config
from staffer.config._model import (
    AgentConfig,
    Config,
    GatewayConfig,
    ModelConfig,
    RunsConfig,
    StoreConfig,
)

__all__ = [
    "DEFAULT_AGENT",
    "MODEL_HELP",
    "WORKSPACE_FILES",
    "AgentConfig",
    "AgentProfile",
    "AgentsConfig",
    "Binding",
    "Config",
    "GatewayConfig",
    "Home",
    "ModelConfig",
    "RunsConfig",
    "StoreConfig",
    "check_config",
    "init_home",
    "init_workspace",
    "load_config",
    "render_config_docs",
    "render_config_template",
]
