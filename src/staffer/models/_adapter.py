"""What the HTTP adapters share: choosing the transport, opening the event stream, closing."""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator

import httpx

from staffer.models._http import (
    Endpoint,
    make_client,
    request_timeout,
    stream_events,
    stream_transport_events,
)
from staffer.models._sse import SSEEvent
from staffer.models._transport import ConnectionPool, Target, proxied
from staffer.models._types import Model


class HTTPAdapter(Model):
    """Base of the adapters that POST a JSON body and read server-sent events back.

    Calls go through Staffer's own HTTP/1.1 transport, or through httpx when the
    adapter was given an httpx client or a proxy is configured (`_use_httpx`).
    Subclasses set the attributes below in their constructor.
    """

    _url: str
    _headers: dict[str, str]
    _endpoint: Endpoint
    connect_timeout: float
    _client: httpx.AsyncClient | None
    _owns_client: bool
    _use_httpx: bool
    _pool: ConnectionPool | None
    _target: Target | None

    def _connect(self, url: str, client: httpx.AsyncClient | None, connect_timeout: float) -> None:
        """Set up the transport for `url`; call it from the subclass's constructor."""
        self._url = url
        self.connect_timeout = connect_timeout
        self._client = client
        self._owns_client = client is None
        # Our own transport, unless the caller brought an httpx client or the process
        # has a proxy configured (which httpx honours, as it always did).
        self._use_httpx = client is not None or proxied(os.environ)
        self._pool = None
        self._target = None

    def _events(self, body: bytes) -> AsyncGenerator[list[SSEEvent], None]:
        if not self._use_httpx:
            if self._pool is None:
                self._target = Target.parse(self._url)
                self._pool = ConnectionPool()
            assert self._target is not None
            return stream_transport_events(
                self._pool,
                self._target,
                self._headers,
                body,
                self._endpoint,
                self.connect_timeout,
            )
        if self._client is None:
            self._client = make_client()
        http_request = self._client.build_request(
            "POST",
            self._url,
            headers=self._headers,
            content=body,
            timeout=request_timeout(self._endpoint.timeout, self.connect_timeout),
        )
        return stream_events(self._client, http_request, self._endpoint)

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None
        if self._client is not None and self._owns_client:
            await self._client.aclose()
            self._client = None
