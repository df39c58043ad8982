"""A small synchronous client for the gateway's HTTP API (docs/http-api.md), for `staffer chat`.

httpx errors and error answers are translated here, at the boundary, into `GatewayError`s
that say what went wrong and what to do, with the exit code the command should use.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

Event = dict[str, Any]


class GatewayError(Exception):
    """The gateway could not be used: `message`, an optional `fix` and the exit code to use."""

    def __init__(self, message: str, *, fix: str | None = None, exit_code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.exit_code = exit_code


class GatewayUnreachable(GatewayError):
    """Nothing answers at the gateway's URL."""


def iter_sse(lines: Iterable[str]) -> Iterator[Event]:
    """Decode server-sent events from text lines into their JSON payloads.

    Comment lines (``: ping``) are skipped; several ``data:`` lines join with a newline; the
    ``event:`` name fills in ``type`` if the payload has none.
    """
    name, data = "", list[str]()
    for line in lines:
        if not line:
            if data:
                payload = json.loads("\n".join(data))
                if isinstance(payload, dict):
                    payload.setdefault("type", name)
                    yield payload
            name, data = "", []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)


class GatewayClient:
    """Talks to one gateway with one token; use as a context manager."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        token_file: Path,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._token_file = token_file
        # No read timeout: a long tool call may keep the stream quiet between pings.
        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(10.0, read=None),
            transport=transport,
        )

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def status(self) -> Event:
        """``GET /api/status``: version, model and workspace."""
        return self._json("GET", "/api/status")

    def create_session(self, title: str | None = None) -> str:
        """``POST /api/sessions``; return the new session's id."""
        body = {"title": title} if title else {}
        return str(self._json("POST", "/api/sessions", json=body)["id"])

    def cancel(self, session_id: str) -> Event:
        """``POST /api/sessions/{id}/cancel``: stop the active run, drop queued messages."""
        return self._json("POST", f"/api/sessions/{session_id}/cancel")

    def send(self, session_id: str, text: str) -> Iterator[Event]:
        """Post a message and yield the run's events until ``run_finished``."""
        path = f"/api/sessions/{session_id}/messages"
        with (
            _translate_errors(self.url),
            self._http.stream(
                "POST", path, params={"stream": "true"}, json={"text": text}
            ) as response,
        ):
            if response.status_code >= 400:
                response.read()
                raise self._error(response)
            for event in iter_sse(response.iter_lines()):
                yield event
                if event.get("type") == "run_finished":
                    return
        raise GatewayError(
            f"the gateway at {self.url} ended the stream before the run finished",
            fix=f"see the run in the web UI or with `staffer chat --session {session_id}`",
        )

    def _json(self, method: str, path: str, **kwargs: Any) -> Event:
        with _translate_errors(self.url):
            response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise self._error(response)
        data = response.json()
        if not isinstance(data, dict):
            raise GatewayError(f"unexpected answer from {self.url}{path}: {response.text[:200]}")
        return data

    def _error(self, response: httpx.Response) -> GatewayError:
        try:
            error = response.json()["error"]
            code, message, fix = error.get("code"), str(error["message"]), error.get("fix")
        except (ValueError, KeyError, TypeError, AttributeError):
            code, message, fix = None, response.text[:200] or response.reason_phrase, None
        status = response.status_code
        if status == 401:
            return GatewayError(
                f"the gateway rejected the token in {self._token_file}",
                fix="use the same STAFFER_HOME as `staffer start`, or restart the gateway "
                "if the token changed",
            )
        if code == "no_model":
            return GatewayError(message, fix=fix)
        if code == "not_found" and "/api/sessions/" in str(response.request.url):
            return GatewayError(message, fix="leave out --session to start a new session")
        if status == 409:
            return GatewayError(
                message, fix=fix or "wait for the active run to finish", exit_code=1
            )
        return GatewayError(f"the gateway answered {status} {code or ''}: {message}", fix=fix)


@contextlib.contextmanager
def _translate_errors(url: str) -> Iterator[None]:
    """Turn httpx transport errors into `GatewayError`s naming the URL."""
    try:
        yield
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise GatewayUnreachable(
            f"cannot reach the gateway at {url} — is `staffer start` running?",
            fix="start it with `staffer start`, or pass --url",
        ) from exc
    except httpx.TransportError as exc:
        raise GatewayError(f"lost the connection to the gateway at {url}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise GatewayError(f"the gateway at {url} sent invalid JSON: {exc}") from exc
