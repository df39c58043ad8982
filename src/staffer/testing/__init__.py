"""Test tooling shipped with Staffer: fakes that speak real wire formats."""

from staffer.testing.model_server import ScriptedModelServer

__all__ = ["ScriptedModelServer"]
