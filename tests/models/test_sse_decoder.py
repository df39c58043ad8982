"""The SSE decoder: byte-level splitting, comments, multi-line data, flush."""

from __future__ import annotations

from staffer.models._sse import SSEDecoder, SSEEvent


def feed_all(*chunks: bytes) -> list[SSEEvent]:
    decoder = SSEDecoder()
    out: list[SSEEvent] = []
    for chunk in chunks:
        out.extend(decoder.feed(chunk))
    out.extend(decoder.flush())
    return out


def test_events_split_across_arbitrary_chunk_boundaries() -> None:
    stream = b'event: a\ndata: {"x": 1}\n\ndata: {"y": 2}\n\n'
    whole = feed_all(stream)
    assert whole == [SSEEvent("a", b'{"x": 1}'), SSEEvent("", b'{"y": 2}')]
    for cut in range(1, len(stream)):
        assert feed_all(stream[:cut], stream[cut:]) == whole
    assert feed_all(*[bytes([b]) for b in stream]) == whole


def test_crlf_comments_and_multiline_data() -> None:
    stream = b": keep-alive\r\n\r\ndata:no-space\r\n\r\ndata: one\r\ndata: two\r\n\r\n"
    assert feed_all(stream) == [SSEEvent("", b"no-space"), SSEEvent("", b"one\ntwo")]


def test_flush_dispatches_an_unterminated_event() -> None:
    assert feed_all(b"data: [DONE]") == [SSEEvent("", b"[DONE]")]
    assert feed_all(b"data: last\n") == [SSEEvent("", b"last")]


def test_blank_lines_without_data_dispatch_nothing() -> None:
    assert feed_all(b"\n\n\nevent: ping\n\n") == []


def test_the_decoder_counts_what_it_dispatched() -> None:
    decoder = SSEDecoder()
    assert len(decoder.feed(b"data: 1\n\ndata: 2\n\ndata: 3")) == 2
    assert decoder.count == 2
    assert decoder.feed(b"\n\n: comment\n\n") == [SSEEvent("", b"3")]
    assert decoder.flush() == []
    assert decoder.count == 3
