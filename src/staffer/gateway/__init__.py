"""The gateway: the ASGI app that serves the API, the event stream and the web UI."""

from staffer.gateway._app import create_app
from staffer.gateway._serve import BackgroundGateway, serve

__all__ = ["BackgroundGateway", "create_app", "serve"]
