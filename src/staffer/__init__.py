"""Staffer: a self-hosted runtime that turns an LLM into an AI employee."""

__version__ = "0.1.0"
__all__ = ["__version__"]
