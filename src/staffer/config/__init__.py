"""Configuration: typed settings, the config file and the home folder."""

from staffer.config._model import AgentConfig, Config, GatewayConfig, ModelConfig

__all__ = ["AgentConfig", "Config", "GatewayConfig", "ModelConfig"]
