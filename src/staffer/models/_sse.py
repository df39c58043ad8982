"""A small, incremental Server-Sent Events decoder working on raw bytes.

Both provider adapters stream SSE. Decoding bytes ourselves (instead of going
through text lines) keeps per-chunk work to a split and a few comparisons, and
`json.loads` accepts the resulting `bytes` directly.
"""

from __future__ import annotations

from typing import NamedTuple


class SSEEvent(NamedTuple):
    """One dispatched event: its `event` name ("" when the server sent none) and raw `data`."""

    event: str
    data: bytes


class SSEDecoder:
    """Feed it byte chunks as they arrive; it returns the events each chunk completes.

    Follows the SSE spec where it matters for model APIs: comment lines (``:``)
    are skipped, several ``data:`` lines join with a newline, a blank line
    dispatches, ``\\r\\n`` line ends are accepted, and `flush` dispatches an event
    the server did not terminate before closing the stream.
    """

    __slots__ = ("_buf", "_data", "_event", "count")

    def __init__(self) -> None:
        self._buf = b""
        self._event = ""
        self._data: bytes | None = None
        self.count = 0  # events dispatched so far

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        buf = self._buf + chunk if self._buf else chunk
        lines = buf.split(b"\n")
        self._buf = lines.pop()
        out: list[SSEEvent] = []
        for line in lines:
            # The two lines of a typical event ("data: {...}" and "") take the fast path.
            if line[:6] == b"data: " and line[-1:] != b"\r":
                value = line[6:]
                self._data = value if self._data is None else self._data + b"\n" + value
            elif not line and self._data is not None:
                out.append(SSEEvent(self._event, self._data))
                self._event = ""
                self._data = None
            else:
                self._line(line, out)
        self.count += len(out)
        return out

    def flush(self) -> list[SSEEvent]:
        out: list[SSEEvent] = []
        if self._buf:
            self._line(self._buf, out)
            self._buf = b""
        self._line(b"", out)
        self.count += len(out)
        return out

    def _line(self, line: bytes, out: list[SSEEvent]) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line:
            if self._data is not None:
                out.append(SSEEvent(self._event, self._data))
            self._event = ""
            self._data = None
            return
        if line[0] == 0x3A:  # ":" starts a comment (keep-alives, OpenRouter's "PROCESSING")
            return
        name, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data = value if self._data is None else self._data + b"\n" + value
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        # "id" and "retry" mean nothing to a one-shot model call.
