"""The SQLite schema and its migrations, versioned with ``PRAGMA user_version``.

`MIGRATIONS[i]` takes a database from version ``i`` to ``i + 1``. A later issue
adds a migration by appending a tuple of statements; never edit a released one.
"""

from __future__ import annotations

import sqlite3

from staffer.errors import StoreError

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # v1: sessions, runs, messages, tool calls
    (
        """CREATE TABLE sessions (
            id          TEXT PRIMARY KEY,
            title       TEXT NOT NULL DEFAULT '',
            agent       TEXT NOT NULL,
            created_at  REAL NOT NULL,
            updated_at  REAL NOT NULL
        )""",
        "CREATE INDEX sessions_by_updated ON sessions (updated_at)",
        """CREATE TABLE runs (
            id                   TEXT PRIMARY KEY,
            session_id           TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
            status               TEXT NOT NULL,
            model                TEXT,
            created_at           REAL NOT NULL,
            finished_at          REAL,
            error                TEXT,
            input_tokens         INTEGER NOT NULL DEFAULT 0,
            output_tokens        INTEGER NOT NULL DEFAULT 0,
            cached_input_tokens  INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX runs_by_session ON runs (session_id, created_at)",
        # tool_calls holds a JSON array (never pickle); NULL when there are none.
        """CREATE TABLE messages (
            session_id    TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
            seq           INTEGER NOT NULL,
            run_id        TEXT REFERENCES runs (id) ON DELETE SET NULL,
            role          TEXT NOT NULL,
            content       TEXT NOT NULL,
            tool_calls    TEXT,
            tool_call_id  TEXT,
            name          TEXT,
            is_error      INTEGER NOT NULL DEFAULT 0,
            created_at    REAL NOT NULL,
            PRIMARY KEY (session_id, seq)
        )""",
        "CREATE INDEX messages_by_run ON messages (run_id)",
        """CREATE TABLE tool_calls (
            id           INTEGER PRIMARY KEY,
            run_id       TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            session_id   TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
            call_id      TEXT NOT NULL,
            name         TEXT NOT NULL,
            arguments    TEXT NOT NULL,
            result       TEXT,
            error        TEXT,
            duration_ms  REAL NOT NULL,
            created_at   REAL NOT NULL
        )""",
        "CREATE INDEX tool_calls_by_session ON tool_calls (session_id, created_at)",
        "CREATE INDEX tool_calls_by_run ON tool_calls (run_id)",
    ),
    # v2: model_calls, one row per router attempt with its usage, cost and latency.
    # Cost is integer nano-dollars so sums stay exact; NULL when a price was unknown.
    # session_id has no foreign key: API callers have no session, and accounting
    # outlives a deleted conversation.
    (
        """CREATE TABLE model_calls (
            id                   INTEGER PRIMARY KEY,
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
            cost_nano_usd        INTEGER,
            price_unknown        INTEGER NOT NULL DEFAULT 0,
            ttft                 REAL,
            duration             REAL NOT NULL,
            agent                TEXT,
            session_id           TEXT,
            user                 TEXT,
            channel              TEXT,
            created_at           REAL NOT NULL
        )""",
        "CREATE INDEX model_calls_by_created ON model_calls (created_at)",
        "CREATE INDEX model_calls_by_session ON model_calls (session_id, created_at)",
    ),
    # v3: api_keys for the OpenAI-compatible endpoint. Only the SHA-256 of a key is
    # kept; `prefix` is its first characters, for telling keys apart in a list.
    (
        """CREATE TABLE api_keys (
            id          TEXT PRIMARY KEY,
            key_hash    TEXT NOT NULL UNIQUE,
            prefix      TEXT NOT NULL,
            user        TEXT NOT NULL,
            name        TEXT NOT NULL DEFAULT '',
            created_at  REAL NOT NULL,
            revoked_at  REAL
        )""",
        "CREATE INDEX api_keys_by_user ON api_keys (user, created_at)",
    ),
    # v4: durable runs (docs/design/durable-runs.md), compaction, many agents.
    # runs: `input` is a queued run's user message (stored in the history when the
    # run is claimed); `owner`/`lease_until` say which process executes it and until
    # when its lease holds; `attempt` counts executions (a resume is attempt > 1).
    # The partial unique index makes the session a lane: one active run at a time.
    # run_steps is the journal: one row per model or tool step, written in the same
    # transaction as the step's messages; `started` rows mark side-effecting tools.
    (
        "ALTER TABLE runs ADD COLUMN input TEXT",
        "ALTER TABLE runs ADD COLUMN owner TEXT",
        "ALTER TABLE runs ADD COLUMN lease_until REAL",
        "ALTER TABLE runs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE runs ADD COLUMN parent_run_id TEXT REFERENCES runs (id) ON DELETE SET NULL",
        "ALTER TABLE runs ADD COLUMN agent TEXT",
        "ALTER TABLE runs ADD COLUMN idempotency_key TEXT",
        "ALTER TABLE runs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0",
        "CREATE UNIQUE INDEX runs_one_active_per_session ON runs (session_id) "
        "WHERE status IN ('running', 'waiting')",
        "CREATE INDEX runs_queued ON runs (created_at) WHERE status = 'queued'",
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
            created_at       REAL NOT NULL,
            finished_at      REAL,
            PRIMARY KEY (run_id, step_no)
        ) WITHOUT ROWID""",
        """CREATE TABLE executors (
            id            TEXT PRIMARY KEY,
            kind          TEXT NOT NULL,
            host          TEXT NOT NULL,
            pid           INTEGER NOT NULL,
            started_at    REAL NOT NULL,
            heartbeat_at  REAL NOT NULL
        )""",
        # compactions: older turns summarized; the messages stay in `messages`.
        """CREATE TABLE compactions (
            id             INTEGER PRIMARY KEY,
            session_id     TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
            run_id         TEXT REFERENCES runs (id) ON DELETE SET NULL,
            upto_seq       INTEGER NOT NULL,
            summary        TEXT NOT NULL,
            model          TEXT,
            tokens_before  INTEGER NOT NULL DEFAULT 0,
            tokens_after   INTEGER NOT NULL DEFAULT 0,
            created_at     REAL NOT NULL
        )""",
        "CREATE INDEX compactions_by_session ON compactions (session_id, upto_seq)",
        # blackboard: a team's shared key -> value notes, with who wrote them and when.
        """CREATE TABLE blackboard (
            team        TEXT NOT NULL,
            key         TEXT NOT NULL,
            value       TEXT NOT NULL,
            written_by  TEXT NOT NULL,
            run_id      TEXT,
            version     INTEGER NOT NULL DEFAULT 1,
            updated_at  REAL NOT NULL,
            PRIMARY KEY (team, key)
        )""",
    ),
    # v5: fewer pages written per journaled step (bench.runs). Nothing reads messages or
    # tool calls by run; these indexes only kept the write of every step busier. (Were runs
    # ever deleted, SQLite would scan for their child rows; runs are never deleted.)
    (
        "DROP INDEX messages_by_run",
        "DROP INDEX tool_calls_by_run",
    ),
)

SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    """The version recorded in the database file (0 for a new, empty file)."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    return int(version)


def migrate(conn: sqlite3.Connection, path: object) -> None:
    """Bring the schema up to `SCHEMA_VERSION`, each step in its own transaction.

    The version is read again under the write lock so two processes opening the
    same new file do not both run a migration. `conn` must be in autocommit mode
    (``isolation_level=None``).
    """
    if schema_version(conn) == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = schema_version(conn)
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"{path} has schema version {current} but this Staffer only knows up to "
                f"{SCHEMA_VERSION}; it was written by a newer Staffer. Upgrade Staffer "
                "(or point it at another database file)."
            )
        for version in range(current, SCHEMA_VERSION):
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
        # PRAGMA does not take parameters; the value is our own integer.
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
