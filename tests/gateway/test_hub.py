"""The event hub: backlog and live events, reconnects, memory bounds."""

from __future__ import annotations

import asyncio

from staffer.gateway._hub import EventHub


async def _take(sub, n: int) -> list[dict]:
    out = []
    async for event in sub:
        out.append(event)
        if len(out) == n:
            break
    return out


async def test_backlog_then_live_without_duplicates() -> None:
    hub = EventHub()
    start = hub.last_seq()
    hub.publish("s", "r", {"type": "a"})
    sub = hub.follow("s", start)
    hub.publish("s", "r", {"type": "b"})
    events = await asyncio.wait_for(_take(sub, 2), 1)
    assert [e["type"] for e in events] == ["a", "b"]
    assert events[0]["seq"] < events[1]["seq"]
    await sub.aclose()


async def test_reconnect_after_a_seq_gets_only_newer_events() -> None:
    hub = EventHub()
    first = hub.publish("s", "r", {"type": "a"})
    hub.publish("s", "r", {"type": "b"})
    sub = hub.follow("s", first["seq"])
    [event] = await asyncio.wait_for(_take(sub, 1), 1)
    assert event["type"] == "b"
    await sub.aclose()


async def test_idle_yields_none_for_keepalives() -> None:
    hub = EventHub()
    sub = hub.follow("s", 0, idle=0.01)
    assert await anext(sub) is None
    await sub.aclose()


async def test_sessions_are_forgotten_when_their_run_ends_and_nobody_follows() -> None:
    hub = EventHub()
    sub = hub.follow("s", 0)
    hub.publish("s", "r", {"type": "run_finished"})
    hub.release("s")
    assert hub.sessions_buffered() == 1  # still followed
    await sub.aclose()
    assert hub.sessions_buffered() == 0
    hub.publish("t", "r", {"type": "run_finished"})
    hub.release("t")
    assert hub.sessions_buffered() == 0


async def test_a_finished_sessions_buffer_lingers_then_is_dropped() -> None:
    hub = EventHub(linger=0.05)
    hub.publish("s", "r1", {"type": "run_finished"})
    hub.publish("t", "r2", {"type": "run_finished"})
    hub.publish("t", "r3", {"type": "run_started"})  # t's next run began meanwhile
    assert hub.sessions_buffered() == 2  # a reconnecting client can still catch up
    await asyncio.sleep(0.1)
    assert hub.sessions_buffered() == 1  # s is dropped, t is live
    backlog = hub.follow("t", 0)
    assert (await anext(backlog))["run_id"] == "r2"
    await backlog.aclose()


async def test_closing_an_unread_subscription_unsubscribes() -> None:
    hub = EventHub()
    sub = hub.follow("s", 0)
    hub.release("s")
    await sub.aclose()
    assert hub.sessions_buffered() == 0


async def test_a_stalled_subscriber_is_cut_off(monkeypatch) -> None:
    import staffer.gateway._hub as hub_module

    monkeypatch.setattr(hub_module, "MAX_BEHIND", 5)
    hub = EventHub()
    slow = hub.follow("s", hub.last_seq())
    for i in range(20):
        hub.publish("s", "r", {"type": "x", "i": i})
    received = [e async for e in slow]
    assert len(received) < 20  # ended, not grown without bound
