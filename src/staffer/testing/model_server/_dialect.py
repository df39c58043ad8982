"""The interface each wire format implements: read a request, write a reply or an error."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from staffer.testing.model_server._reply import Prompt, Reply

#: one SSE event as bytes, and whether it carries content (text or argument chunk)
Frame = tuple[bytes, bool]


class Dialect(Protocol):
    """One provider's wire format (OpenAI Chat Completions or Anthropic Messages)."""

    #: response header carrying the request id (``x-request-id`` or ``request-id``)
    request_id_header: bytes

    def read_prompt(self, body: Mapping[str, Any]) -> Prompt:
        """Extract what the script needs from a request body; raises ValueError if malformed."""

    def wants_stream(self, body: Mapping[str, Any]) -> bool:
        """Whether the request asked for a streamed answer."""

    def new_call_id(self) -> str:
        """A fresh tool call id in this provider's style."""

    def stream(self, reply: Reply, body: Mapping[str, Any]) -> list[Frame]:
        """The reply as SSE events, in order."""

    def message(self, reply: Reply, body: Mapping[str, Any]) -> bytes:
        """The reply as one non-streamed JSON body."""

    def malformed_frame(self) -> bytes:
        """An SSE event whose data is not valid JSON."""

    def error(self, kind: str, message: str | None = None) -> tuple[int, bytes]:
        """Status and JSON body for an error `kind` (a status fault kind such as "429")."""

    def models(self, names: tuple[str, ...]) -> bytes:
        """The JSON body of ``GET /v1/models``."""
