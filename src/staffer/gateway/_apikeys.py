"""Checking the API keys of the OpenAI-compatible endpoint, with a lookup cache.

A key is ``sk-staffer-`` and 43 random URL-safe characters (`staffer.store.new_api_key`).
The store keeps only its SHA-256, so a leaked database holds no usable key; the raw key
is shown once, when it is created.

Every request on ``/v1`` presents a key, so lookups are cached in memory by the key
itself (it is hashed only to ask the store; other processes cannot read the gateway's
memory, see `make_undumpable`). An entry is trusted for `ApiKeyCache.ttl` seconds and
then checked against the store again, which bounds how long a key revoked elsewhere
(``staffer keys revoke`` runs in another process) keeps working. Unknown keys are
remembered too (a bounded set), so a client retrying with a bad key does not reach the
database on every request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from staffer.store import API_KEY_PREFIX, Store, hash_api_key

DEFAULT_TTL = 5.0
MAX_UNKNOWN = 4096


@dataclass(slots=True, frozen=True)
class KeyOwner:
    """Who a valid key belongs to."""

    key_id: str
    user: str


class ApiKeyCache:
    """Resolves raw keys to their owner through the store, caching by key.

    A valid key is looked up again after `ttl` seconds, so revocation takes effect
    within `ttl` even when it happened in another process; `forget` drops entries at
    once (for a revocation made through this process).
    """

    def __init__(self, *, ttl: float = DEFAULT_TTL, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self._clock = clock
        self._valid: dict[str, tuple[KeyOwner, float]] = {}  # key -> (owner, checked at)
        self._unknown: set[str] = set()  # keys the store did not know

    async def owner(self, store: Store, key: str) -> KeyOwner | None:
        """The owner of `key`, or None if it is not a valid, active key."""
        cached = self._valid.get(key)
        if cached is not None and self._clock() - cached[1] < self.ttl:
            return cached[0]
        if key in self._unknown or not key.startswith(API_KEY_PREFIX):
            return None
        record = await store.lookup_api_key(hash_api_key(key))
        if record is None:
            self._valid.pop(key, None)
            if len(self._unknown) >= MAX_UNKNOWN:
                self._unknown.clear()
            self._unknown.add(key)
            return None
        owner = KeyOwner(record.id, record.user)
        self._valid[key] = (owner, self._clock())
        return owner

    def forget(self, key_id: str | None = None) -> None:
        """Drop the cached entries of `key_id` (every entry when None)."""
        if key_id is None:
            self._valid.clear()
            return
        for key, (owner, _) in list(self._valid.items()):
            if owner.key_id == key_id:
                del self._valid[key]
