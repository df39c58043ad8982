"""A minimal OpenAI-compatible upstream for gateway benchmarks: fixed latency, SSE streaming.

Raw asyncio HTTP/1.1 with keep-alive (uvloop when available), so it stays far from
being the bottleneck at a thousand requests per second on one core.

- ``POST /v1/chat/completions`` streamed: after ``--latency-ms``, the role chunk and the
  first content chunk, then one content chunk every ``--gap-ms`` (``--chunks`` in all),
  a finish chunk, a usage chunk when ``stream_options.include_usage`` is true, and
  ``data: [DONE]``. Every SSE event is its own HTTP chunk, written when it is due.
- Not streamed: the whole answer when its last chunk would have been sent
  (``latency + (chunks - 1) * gap``), so both modes take the same time. Chunk ``i`` is
  due at ``latency + i * gap`` after the request: each sleep's overshoot (0.1-0.2 ms
  under load) must not add up over the chunks, or a stream would end later than the
  same answer not streamed.
- ``GET /v1/models`` lists ``mock``; ``GET /health`` answers ``ok``.

    python -m bench.mock_upstream --port 9000 [--latency-ms 20] [--chunks 10] [--gap-ms 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

MODEL_LIST = (
    b'{"object":"list","data":[{"id":"mock","object":"model","created":0,"owned_by":"bench"}]}'
)


class Upstream:
    def __init__(self, latency: float, chunks: int, gap: float) -> None:
        self.latency = latency
        self.chunks = chunks
        self.gap = gap
        self.texts = [f"word{i} " for i in range(chunks)]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.split(b"\r\n")
                method, path, _ = lines[0].split(b" ", 2)
                length = 0
                for line in lines[1:]:
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                body = await reader.readexactly(length) if length else b""
                if method == b"POST" and path.endswith(b"/chat/completions"):
                    await self.chat(body, writer)
                elif path.endswith(b"/models"):
                    _respond(writer, 200, MODEL_LIST)
                else:
                    _respond(writer, 200 if path == b"/health" else 404, b'"ok"')
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def chat(self, raw: bytes, writer: asyncio.StreamWriter) -> None:
        request = json.loads(raw)
        model = json.dumps(request.get("model", "mock"))
        usage = {
            "prompt_tokens": 10,
            "completion_tokens": self.chunks,
            "total_tokens": 10 + self.chunks,
        }
        if not request.get("stream"):
            await asyncio.sleep(self.latency + (self.chunks - 1) * self.gap)
            answer = {
                "id": "chatcmpl-mock",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": request.get("model", "mock"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "".join(self.texts)},
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            }
            _respond(writer, 200, json.dumps(answer).encode())
            return
        options = request.get("stream_options") or {}
        head = (
            f'data: {{"id":"chatcmpl-mock","object":"chat.completion.chunk","created":'
            f'{int(time.time())},"model":{model},"choices":[{{"index":0,"delta":'
        )
        loop = asyncio.get_running_loop()
        first = loop.time() + self.latency
        await asyncio.sleep(self.latency)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        _chunk(writer, head + '{"role":"assistant","content":""},"finish_reason":null}]}\n\n')
        for i, text in enumerate(self.texts):
            if i:
                await writer.drain()
                await asyncio.sleep(max(0.0, first + i * self.gap - loop.time()))
            _chunk(writer, head + f'{{"content":"{text}"}},"finish_reason":null}}]}}\n\n')
        _chunk(writer, head + '{},"finish_reason":"stop"}]}\n\n')
        if options.get("include_usage"):
            tail = head[: head.index('"choices"')]
            _chunk(writer, tail + f'"choices":[],"usage":{json.dumps(usage)}}}\n\n')
        _chunk(writer, "data: [DONE]\n\n")
        writer.write(b"0\r\n\r\n")


def _chunk(writer: asyncio.StreamWriter, event: str) -> None:
    data = event.encode()
    writer.write(b"%x\r\n%s\r\n" % (len(data), data))


def _respond(writer: asyncio.StreamWriter, status: int, body: bytes) -> None:
    reason = b"OK" if status == 200 else b"Not Found"
    writer.write(
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
        % (status, reason, len(body), body)
    )


async def serve(port: int, upstream: Upstream) -> None:
    server = await asyncio.start_server(upstream.handle, "127.0.0.1", port, backlog=4096)
    print(f"mock upstream on http://127.0.0.1:{port}/v1", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--chunks", type=int, default=10)
    parser.add_argument("--gap-ms", type=float, default=1.0)
    args = parser.parse_args()
    upstream = Upstream(args.latency_ms / 1000, args.chunks, args.gap_ms / 1000)
    try:
        import uvloop

        uvloop.run(serve(args.port, upstream))
    except ImportError:  # pragma: no cover
        asyncio.run(serve(args.port, upstream))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
