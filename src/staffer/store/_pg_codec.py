"""SQL statements and rows to records for `PostgresStore`.

The column lists and most conversions are shared with SQLite (``_codec.py``); this
module adds PostgreSQL's ``$n`` placeholders, the quoting of ``"user"``, and the
escaping that lets text columns hold NUL (`put_text`).
"""

from __future__ import annotations

import re
from typing import Any

from staffer.store import _codec as codec
from staffer.store._base import MessageRecord, RunRecord, SessionRecord, ToolCallRecord


def numbered(columns: str) -> str:
    count = columns.count(",") + 1
    return ", ".join(f"${i}" for i in range(1, count + 1))


MODEL_CALL_COLUMNS = re.sub(r"\buser\b", '"user"', codec.MODEL_CALL_COLUMNS)

INSERT_SESSION = (
    f"INSERT INTO sessions ({codec.SESSION_COLUMNS}) VALUES ({numbered(codec.SESSION_COLUMNS)})"
)
GET_SESSION = f"SELECT {codec.SESSION_COLUMNS} FROM sessions WHERE id = $1"
LIST_SESSIONS = (
    f"SELECT {codec.SESSION_COLUMNS} FROM sessions ORDER BY updated_at DESC, n DESC LIMIT $1"
)
RENAME_SESSION = "UPDATE sessions SET title = $1 WHERE id = $2"
# The row lock this UPDATE takes is what serializes appends to one session; GREATEST
# keeps updated_at from going back when a caller that waited for the lock is older.
TOUCH_SESSION = (
    "UPDATE sessions SET updated_at = GREATEST(updated_at, $1) WHERE id = $2 RETURNING updated_at"
)
LAST_SEQ = "SELECT COALESCE(MAX(seq), 0) FROM messages WHERE session_id = $1"
INSERT_MESSAGE = (
    f"INSERT INTO messages ({codec.MESSAGE_COLUMNS}) VALUES ({numbered(codec.MESSAGE_COLUMNS)})"
)
LIST_MESSAGES = f"SELECT {codec.MESSAGE_COLUMNS} FROM messages WHERE session_id = $1 ORDER BY seq"
INSERT_RUN = f"INSERT INTO runs ({codec.RUN_COLUMNS}) VALUES ({numbered(codec.RUN_COLUMNS)})"
FINISH_RUN = (
    "UPDATE runs SET status = $1, finished_at = $2, error = $3, "
    "input_tokens = $4, output_tokens = $5, cached_input_tokens = $6 WHERE id = $7"
)
GET_RUN = f"SELECT {codec.RUN_COLUMNS} FROM runs WHERE id = $1"
LIST_RUNS = f"SELECT {codec.RUN_COLUMNS} FROM runs WHERE session_id = $1 ORDER BY created_at, n"
INSERT_TOOL_CALL = (
    f"INSERT INTO tool_calls ({codec.TOOL_CALL_COLUMNS}) "
    f"VALUES ({numbered(codec.TOOL_CALL_COLUMNS)})"
)
LIST_TOOL_CALLS = (
    f"SELECT {codec.TOOL_CALL_COLUMNS} FROM tool_calls WHERE session_id = $1 "
    "ORDER BY created_at, id"
)
INSERT_MODEL_CALL = (
    f"INSERT INTO model_calls ({MODEL_CALL_COLUMNS}) VALUES ({numbered(MODEL_CALL_COLUMNS)})"
)
# The grouping column comes from this fixed map, never from the caller's text.
USAGE_COLUMNS: dict[str, str] = {
    "deployment": "deployment",
    "alias": "alias",
    "agent": "agent",
    "session": "session_id",
    "user": '"user"',
    "channel": "channel",
}
# SUM over BIGINT is NUMERIC in Postgres; the casts keep the results Python ints.
SUMMARY = (
    "SELECT {col}, COUNT(*), SUM(1 - ok)::bigint, SUM(input_tokens)::bigint, "
    "SUM(output_tokens)::bigint, SUM(cached_input_tokens)::bigint, "
    "COALESCE(SUM(cost_nano_usd), 0)::bigint, SUM(price_unknown)::bigint "
    "FROM model_calls WHERE created_at >= $1 AND created_at < $2 "
    "GROUP BY {col} ORDER BY 7 DESC, 2 DESC, {col} NULLS FIRST"
)

# PostgreSQL text cannot hold NUL, which tool output and messages may contain. Free
# text is stored with NUL as U+FFFF "0" and U+FFFF itself as U+FFFF "1": reversible,
# and any text without either character (all ordinary text) is stored unchanged.
_ESC = "\uffff"
_UNESCAPE = re.compile(_ESC + "([01])")


def put_text(text: str | None) -> str | None:
    """`text` as stored in a PostgreSQL text column (see `_ESC`)."""
    if text is None or ("\x00" not in text and _ESC not in text):
        return text
    return text.replace(_ESC, _ESC + "1").replace("\x00", _ESC + "0")


def get_text(text: str | None) -> str | None:
    """The inverse of `put_text`."""
    if text is None or _ESC not in text:
        return text
    return _UNESCAPE.sub(lambda m: "\x00" if m[1] == "0" else _ESC, text)


# --- rows ---------------------------------------------------------------------


def session_from_row(row: Any) -> SessionRecord:
    id_, title, agent, created_at, updated_at = row
    return SessionRecord(id_, get_text(title) or "", agent, created_at, updated_at)


def message_params(record: MessageRecord) -> tuple[Any, ...]:
    r = record
    params = codec.message_params(r.session_id, r.seq, r.run_id, r.message, r.created_at)
    return (*params[:4], put_text(params[4]), *params[5:])


def message_from_row(row: Any) -> MessageRecord:
    values = tuple(row)
    return codec.message_from_row((*values[:4], get_text(values[4]), *values[5:]))


def run_from_row(row: Any) -> RunRecord:
    v = tuple(row)
    return codec.run_from_row((*v[:5], get_text(v[5]), *v[6:14], get_text(v[14]), *v[15:]))


def run_params(run: RunRecord) -> tuple[Any, ...]:
    v = codec.run_params(run)
    return (*v[:5], put_text(v[5]), *v[6:14], put_text(v[14]), *v[15:])


def tool_call_params(record: ToolCallRecord) -> tuple[Any, ...]:
    v = codec.tool_call_params(record)
    return (*v[:4], *(put_text(p) for p in v[4:7]), *v[7:])


def tool_call_from_row(row: Any) -> ToolCallRecord:
    values = tuple(row)
    return codec.tool_call_from_row((*values[:4], *(get_text(v) for v in values[4:7]), *values[7:]))
