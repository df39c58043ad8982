"""The PostgreSQL schema and its migrations, versioned in a ``schema_version`` table.

`MIGRATIONS[i]` takes a database from version ``i`` to ``i + 1`` and mirrors the
SQLite migration of the same number (``_schema.py``), so both backends report the
same version for the same tables. Append a migration to both; never edit a
released one.

Differences from SQLite, each for a reason: ``n`` identity columns stand in for
SQLite's ``rowid`` (a stable tie-break for equal timestamps); ``user`` is quoted
because it is a reserved word; ``tool_calls`` is ``json`` rather than ``jsonb``
because ``jsonb`` rejects ``\\u0000`` and rewrites the text; cost is ``BIGINT``
(a call over $2.14 exceeds a 32-bit count of nano-dollars).
"""

from __future__ import annotations

from typing import Any

from staffer.errors import StoreError
from staffer.store._schema import SCHEMA_VERSION as SQLITE_SCHEMA_VERSION

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # v1: sessions, runs, messages, tool calls
    (
        """CREATE TABLE sessions (
            id          TEXT PRIMARY KEY,
            n           BIGINT GENERATED ALWAYS AS IDENTITY,
            title       TEXT NOT NULL DEFAULT '',
            agent       TEXT NOT NULL,
            created_at  DOUBLE PRECISION NOT NULL,
            updated_at  DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX sessions_by_updated ON sessions (updated_at, n)",
        """CREATE TABLE runs (
            id                   TEXT PRIMARY KEY,
            n                    BIGINT GENERATED ALWAYS AS IDENTITY,
            session_id           TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
            status               TEXT NOT NULL,
            model                TEXT,
            created_at           DOUBLE PRECISION NOT NULL,
            finished_at          DOUBLE PRECISION,
            error                TEXT,
            input_tokens         INTEGER NOT NULL DEFAULT 0,
            output_tokens        INTEGER NOT NULL DEFAULT 0,
            cached_input_tokens  INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX runs_by_session ON runs (session_id, created_at, n)",
        "CREATE INDEX runs_unfinished ON runs (created_at, n) "
        "WHERE status IN ('queued', 'running', 'waiting')",
        """CREATE TABLE messages (
            session_id    TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
            seq           INTEGER NOT NULL,
            run_id        TEXT REFERENCES runs (id) ON DELETE SET NULL,
            role          TEXT NOT NULL,
            content       TEXT NOT NULL,
            tool_calls    JSON,
            tool_call_id  TEXT,
            name          TEXT,
            is_error      INTEGER NOT NULL DEFAULT 0,
            created_at    DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (session_id, seq)
        )""",
        "CREATE INDEX messages_by_run ON messages (run_id)",
        """CREATE TABLE tool_calls (
            id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            run_id       TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            session_id   TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
            call_id      TEXT NOT NULL,
            name         TEXT NOT NULL,
            arguments    TEXT NOT NULL,
            result       TEXT,
            error        TEXT,
            duration_ms  DOUBLE PRECISION NOT NULL,
            created_at   DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX tool_calls_by_session ON tool_calls (session_id, created_at, id)",
        "CREATE INDEX tool_calls_by_run ON tool_calls (run_id)",
    ),
    # v2: model_calls, one row per router attempt (see _schema.py).
    (
        """CREATE TABLE model_calls (
            id                   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            request_id           TEXT NOT NULL,
            alias                TEXT NOT NULL,
            deployment           TEXT NOT NULL,
            attempt              INTEGER NOT NULL,
            ok                   INTEGER NOT NULL,
            error                TEXT,
            status               INTEGER,
            input_tokens         INTEGER NOT NULL DEFAULT 0,
            output_tokens        INTEGER NOT NULL DEFAULT 0,
            cached_input_tokens  INTEGER NOT NULL DEFAULT 0,
            cost_nano_usd        BIGINT,
            price_unknown        INTEGER NOT NULL DEFAULT 0,
            ttft                 DOUBLE PRECISION,
            duration             DOUBLE PRECISION NOT NULL,
            agent                TEXT,
            session_id           TEXT,
            "user"               TEXT,
            channel              TEXT,
            created_at           DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX model_calls_by_created ON model_calls (created_at)",
        "CREATE INDEX model_calls_by_session ON model_calls (session_id, created_at)",
    ),
    # v3: api_keys for the OpenAI-compatible endpoint; only the SHA-256 of a key.
    (
        """CREATE TABLE api_keys (
            id          TEXT PRIMARY KEY,
            n           BIGINT GENERATED ALWAYS AS IDENTITY,
            key_hash    TEXT NOT NULL UNIQUE,
            prefix      TEXT NOT NULL,
            "user"      TEXT NOT NULL,
            name        TEXT NOT NULL DEFAULT '',
            created_at  DOUBLE PRECISION NOT NULL,
            revoked_at  DOUBLE PRECISION
        )""",
        'CREATE INDEX api_keys_by_user ON api_keys ("user", created_at, n)',
    ),
    # v4: durable runs, compaction, many agents (see _schema.py).
    (
        "ALTER TABLE runs ADD COLUMN input TEXT",
        "ALTER TABLE runs ADD COLUMN owner TEXT",
        "ALTER TABLE runs ADD COLUMN lease_until DOUBLE PRECISION",
        "ALTER TABLE runs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE runs ADD COLUMN parent_run_id TEXT REFERENCES runs (id) ON DELETE SET NULL",
        "ALTER TABLE runs ADD COLUMN agent TEXT",
        "ALTER TABLE runs ADD COLUMN idempotency_key TEXT",
        "ALTER TABLE runs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0",
        "CREATE UNIQUE INDEX runs_one_active_per_session ON runs (session_id) "
        "WHERE status IN ('running', 'waiting')",
        "CREATE INDEX runs_queued ON runs (created_at, n) WHERE status = 'queued'",
        "CREATE INDEX runs_by_parent ON runs (parent_run_id) WHERE parent_run_id IS NOT NULL",
        "CREATE UNIQUE INDEX runs_by_key ON runs (idempotency_key) "
        "WHERE idempotency_key IS NOT NULL",
        """CREATE TABLE run_steps (
            run_id           TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            step_no          INTEGER NOT NULL,
            kind             TEXT NOT NULL,
            call_id          TEXT,
            status           TEXT NOT NULL,
            idempotency_key  TEXT,
            attempt          INTEGER NOT NULL DEFAULT 1,
            created_at       DOUBLE PRECISION NOT NULL,
            finished_at      DOUBLE PRECISION,
            PRIMARY KEY (run_id, step_no)
        )""",
        """CREATE TABLE executors (
            id            TEXT PRIMARY KEY,
            kind          TEXT NOT NULL,
            host          TEXT NOT NULL,
            pid           INTEGER NOT NULL,
            started_at    DOUBLE PRECISION NOT NULL,
            heartbeat_at  DOUBLE PRECISION NOT NULL
        )""",
        """CREATE TABLE compactions (
            id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            session_id     TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
            run_id         TEXT REFERENCES runs (id) ON DELETE SET NULL,
            upto_seq       INTEGER NOT NULL,
            summary        TEXT NOT NULL,
            model          TEXT,
            tokens_before  INTEGER NOT NULL DEFAULT 0,
            tokens_after   INTEGER NOT NULL DEFAULT 0,
            created_at     DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX compactions_by_session ON compactions (session_id, upto_seq)",
        """CREATE TABLE blackboard (
            team        TEXT NOT NULL,
            key         TEXT NOT NULL,
            value       TEXT NOT NULL,
            written_by  TEXT NOT NULL,
            run_id      TEXT,
            version     INTEGER NOT NULL DEFAULT 1,
            updated_at  DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (team, key)
        )""",
    ),
    # v5: fewer index writes per journaled step (see _schema.py).
    (
        "DROP INDEX messages_by_run",
        "DROP INDEX tool_calls_by_run",
    ),
)

SCHEMA_VERSION = len(MIGRATIONS)
assert SCHEMA_VERSION == SQLITE_SCHEMA_VERSION, "add the migration to both backends"

# Serializes migrations between processes opening the same new database.
_MIGRATION_LOCK = 0x57AFFE2  # an arbitrary constant key for pg_advisory_xact_lock

_CREATE_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"


async def schema_version(conn: Any) -> int:
    """The version recorded in the database's current schema (0 when new)."""
    exists = await conn.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
    if not exists:
        return 0
    version = await conn.fetchval("SELECT max(version) FROM schema_version")
    return int(version or 0)


async def migrate(conn: Any, where: str) -> None:
    """Bring the schema up to `SCHEMA_VERSION`, all steps in one transaction.

    Postgres DDL is transactional, so a failed migration leaves nothing behind. An
    advisory lock (taken before reading the version again) keeps two processes
    from migrating the same database at once. `conn` is an asyncpg connection.
    """
    if await schema_version(conn) == SCHEMA_VERSION:
        return
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await conn.execute(_CREATE_VERSION_TABLE)
        current = await schema_version(conn)
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"the database at {where} has schema version {current} but this Staffer "
                f"only knows up to {SCHEMA_VERSION}; it was written by a newer Staffer. "
                "Upgrade Staffer (or point it at another database)."
            )
        for version in range(current, SCHEMA_VERSION):
            for statement in MIGRATIONS[version]:
                await conn.execute(statement)
        await conn.execute("DELETE FROM schema_version")
        await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", SCHEMA_VERSION)
