"""Reading the gateway's server-sent events in tests."""

from __future__ import annotations

import json
from typing import Any

import httpx


def read_events(response: httpx.Response) -> list[dict[str, Any]]:
    """Parse a finished or live SSE response into event dicts (stops at its end)."""
    events: list[dict[str, Any]] = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            events.append(json.loads(line[6:]))
    return events


def stream_turn(client: httpx.Client, session_id: str, text: str) -> list[dict[str, Any]]:
    with client.stream(
        "POST", f"/api/sessions/{session_id}/messages?stream=true", json={"text": text}
    ) as response:
        assert response.status_code == 202, response.read()
        return read_events(response)


def by_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == kind]
