"""API keys in every `Store`: created by hash, listed, looked up, revoked."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

from staffer.gateway._apikeys import ApiKeyCache
from staffer.store import (
    API_KEY_PREFIX,
    SQLiteStore,
    Store,
    hash_api_key,
    new_api_key,
    shown_prefix,
)

StoreFactory = Callable[[], Store]


async def add_key(store: Store, user: str, name: str = "") -> tuple[str, str]:
    key = new_api_key()
    record = await store.create_api_key(
        user=user, key_hash=hash_api_key(key), prefix=shown_prefix(key), name=name
    )
    return key, record.id


def test_key_format() -> None:
    keys = {new_api_key() for _ in range(50)}
    assert len(keys) == 50
    for key in keys:
        assert key.startswith(API_KEY_PREFIX)
        assert len(key) == len(API_KEY_PREFIX) + 43
        assert len(hash_api_key(key)) == 64
        assert shown_prefix(key) == key[: len(API_KEY_PREFIX) + 4]


async def test_create_lookup_and_list(store: Store) -> None:
    before = time.time()
    key, key_id = await add_key(store, "alice", "laptop")
    found = await store.lookup_api_key(hash_api_key(key))
    assert found is not None
    assert (found.id, found.user, found.name, found.prefix) == (
        key_id,
        "alice",
        "laptop",
        shown_prefix(key),
    )
    assert before <= found.created_at <= time.time() + 1
    assert found.active
    assert found.revoked_at is None
    assert await store.lookup_api_key(hash_api_key(key + "x")) is None
    assert await store.lookup_api_key(key) is None, "the raw key is not a lookup key"

    _, bob_id = await add_key(store, "bob")
    assert [k.id for k in await store.list_api_keys()] == [key_id, bob_id]
    assert [k.id for k in await store.list_api_keys(user="bob")] == [bob_id]
    assert await store.list_api_keys(user="carol") == []


async def test_revoke(store: Store) -> None:
    key, key_id = await add_key(store, "alice")
    revoked = await store.revoke_api_key(key_id)
    assert revoked is not None
    assert not revoked.active
    assert revoked.revoked_at is not None
    assert await store.lookup_api_key(hash_api_key(key)) is None
    again = await store.revoke_api_key(key_id)
    assert again is not None
    assert again.revoked_at == revoked.revoked_at, "revoking twice keeps the first time"
    assert await store.revoke_api_key("nope") is None
    (listed,) = await store.list_api_keys()
    assert listed.revoked_at == revoked.revoked_at


async def test_keys_survive_reopening(store_factory: StoreFactory) -> None:
    async with store_factory() as store:
        key, key_id = await add_key(store, "alice")
    async with store_factory() as store:
        found = await store.lookup_api_key(hash_api_key(key))
        assert found is not None
        assert found.id == key_id


async def test_sqlite_keeps_only_the_hash(tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    path = tmp_path / "s.db"
    async with SQLiteStore(path) as store:
        key, _ = await add_key(store, "alice")
    rows = sqlite3.connect(path).execute("SELECT * FROM api_keys").fetchall()
    assert len(rows) == 1
    assert key not in repr(rows)
    assert hash_api_key(key) in rows[0]
    files = [Path(str(path) + suffix) for suffix in ("", "-wal")]
    contents = [f.read_bytes() for f in files if f.exists()]
    assert contents
    assert not any(key.encode() in c for c in contents)


async def test_cache_rechecks_after_ttl(store: Store) -> None:
    now = [0.0]
    cache = ApiKeyCache(ttl=5.0, clock=lambda: now[0])
    key, key_id = await add_key(store, "alice")
    owner = await cache.owner(store, key)
    assert owner is not None
    assert (owner.user, owner.key_id) == ("alice", key_id)
    await store.revoke_api_key(key_id)
    now[0] = 4.9
    assert await cache.owner(store, key) == owner, "still cached within the ttl"
    now[0] = 5.1
    assert await cache.owner(store, key) is None, "checked again after the ttl"
    assert await cache.owner(store, "not-even-a-staffer-key") is None


async def test_cache_forget_takes_effect_at_once(store: Store) -> None:
    cache = ApiKeyCache(ttl=3600)
    key, key_id = await add_key(store, "alice")
    assert await cache.owner(store, key) is not None
    await store.revoke_api_key(key_id)
    cache.forget(key_id)
    assert await cache.owner(store, key) is None
    # an unknown key is remembered; a key created later is a different key
    later, _ = await add_key(store, "alice")
    assert await cache.owner(store, later) is not None
