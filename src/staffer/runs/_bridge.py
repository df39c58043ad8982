"""`PgBridge`: run events and run control between processes, over PostgreSQL LISTEN/NOTIFY.

With a PostgreSQL store, the process that executes a run (a worker) is often not the
one a client is connected to (a gateway). Workers send every event of their runs on
the ``staffer_events`` channel and gateways put them in their event hubs; gateways
send ``wake`` (a run was queued) and ``cancel`` (stop this run) on ``staffer_control``.
A notification carries at most 8000 bytes, so oversized events have their longest
text fields shortened (the store has the full text; ``truncated`` says so).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from staffer.store._pg_errors import import_driver

logger = logging.getLogger("staffer.runs")

EVENTS = "staffer_events"
CONTROL = "staffer_control"
MAX_PAYLOAD = 7900  # bytes; PostgreSQL refuses notifications of 8000 bytes or more

OnEvent = Callable[[str, str, dict[str, Any]], object]
OnControl = Callable[[str, dict[str, Any]], object]


class PgBridge:
    """One listening and one sending connection; `origin` marks this process's messages."""

    def __init__(
        self,
        dsn: str,
        origin: str,
        *,
        on_event: OnEvent | None = None,
        on_control: OnControl | None = None,
    ) -> None:
        self.dsn = dsn
        self.origin = origin
        self.on_event = on_event
        self.on_control = on_control
        self._outbox: list[tuple[str, str]] = []
        self._ready = asyncio.Event()
        self._send: Any = None
        self._listen: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False

    async def start(self) -> None:
        asyncpg = import_driver()
        self._send = await asyncpg.connect(self.dsn)
        await self._connect_listener()
        self._tasks.append(asyncio.create_task(self._flush_loop(), name="pg-bridge-send"))

    async def aclose(self) -> None:
        self._closing = True
        self._ready.set()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 2.0)
        for conn in (self._listen, self._send):
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()

    # --- sending ---------------------------------------------------------------

    def publish(self, session_id: str, run_id: str, event: dict[str, Any]) -> None:
        """Send one run event to the other processes (batched, in order)."""
        message = {"o": self.origin, "s": session_id, "r": run_id, "e": event}
        self._queue(EVENTS, _fit(message))

    def control(self, kind: str, data: dict[str, Any]) -> None:
        """Send ``wake`` or ``cancel`` (with ``run_id``) to the workers."""
        self._queue(CONTROL, json.dumps({"o": self.origin, "k": kind, **data}))

    def _queue(self, channel: str, payload: str) -> None:
        self._outbox.append((channel, payload))
        self._ready.set()

    async def _flush_loop(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            batch, self._outbox = self._outbox, []
            if batch:
                try:
                    await self._send.executemany("SELECT pg_notify($1, $2)", batch)
                except Exception as exc:
                    logger.warning("could not send %d notifications: %s", len(batch), exc)
                    await self._reconnect_sender()
            if self._closing and not self._outbox:
                return

    async def _reconnect_sender(self) -> None:
        asyncpg = import_driver()
        with contextlib.suppress(Exception):
            await self._send.close()
        while not self._closing:
            try:
                self._send = await asyncpg.connect(self.dsn)
                return
            except Exception as exc:
                logger.warning("reconnecting to PostgreSQL for notifications: %s", exc)
                await asyncio.sleep(1.0)

    # --- receiving ---------------------------------------------------------------

    async def _connect_listener(self) -> None:
        asyncpg = import_driver()
        conn = await asyncpg.connect(self.dsn)
        if self.on_event is not None:
            await conn.add_listener(EVENTS, self._received)
        if self.on_control is not None:
            await conn.add_listener(CONTROL, self._received)
        conn.add_termination_listener(self._lost)
        self._listen = conn

    def _lost(self, _conn: Any) -> None:
        if not self._closing:
            logger.warning("lost the PostgreSQL notification connection; reconnecting")
            self._tasks.append(asyncio.create_task(self._relisten(), name="pg-bridge-listen"))

    async def _relisten(self) -> None:
        while not self._closing:
            try:
                await self._connect_listener()
                return
            except Exception as exc:
                logger.warning("reconnecting to PostgreSQL for notifications: %s", exc)
                await asyncio.sleep(1.0)

    def _received(self, _conn: Any, _pid: int, channel: str, payload: str) -> None:
        try:
            message = json.loads(payload)
        except ValueError:
            logger.warning("ignoring a malformed notification on %s", channel)
            return
        if message.get("o") == self.origin:
            return  # our own
        try:
            if channel == EVENTS and self.on_event is not None:
                self.on_event(message["s"], message["r"], message["e"])
            elif channel == CONTROL and self.on_control is not None:
                self.on_control(message.get("k", ""), message)
        except Exception:
            logger.exception("handling a notification on %s failed", channel)


def _fit(message: dict[str, Any]) -> str:
    """JSON of `message`, with the event's longest strings shortened to fit a notification."""
    payload = json.dumps(message, separators=(",", ":"))
    if len(payload.encode()) <= MAX_PAYLOAD:
        return payload
    event = dict(message["e"])
    texts = sorted(
        (k for k, v in event.items() if isinstance(v, str)), key=lambda k: -len(event[k])
    )
    for key in texts:
        excess = len(payload.encode()) - MAX_PAYLOAD
        keep = max(0, len(event[key]) - excess - 64)
        event[key] = event[key][:keep] + "…"
        event["truncated"] = True
        payload = json.dumps({**message, "e": event}, separators=(",", ":"))
        if len(payload.encode()) <= MAX_PAYLOAD:
            return payload
    stub = {"type": event.get("type", "notice"), "truncated": True}
    return json.dumps({**message, "e": stub}, separators=(",", ":"))
