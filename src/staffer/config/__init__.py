"""Configuration: typed settings, the config file and the home folder."""

from staffer.config._docs import MODEL_HELP, render_config_docs, render_config_template
from staffer.config._home import WORKSPACE_FILES, Home, init_home
from staffer.config._load import check_config, load_config
from staffer.config._model import AgentConfig, Config, GatewayConfig, ModelConfig

__all__ = [
    "MODEL_HELP",
    "WORKSPACE_FILES",
    "AgentConfig",
    "Config",
    "GatewayConfig",
    "Home",
    "ModelConfig",
    "check_config",
    "init_home",
    "load_config",
    "render_config_docs",
    "render_config_template",
]
