"""``python -m staffer.testing.model_server``: serve a scenario until Ctrl-C (or SIGTERM)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from staffer.testing.model_server._scenario import ScenarioError
from staffer.testing.model_server._server import ScriptedModelServer


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, start the server, print its base URLs and wait for a signal."""
    parser = argparse.ArgumentParser(
        prog="python -m staffer.testing.model_server",
        description="Serve scripted OpenAI- and Anthropic-compatible model replies on loopback.",
    )
    parser.add_argument("--scenario", help="scenario file (.json or .toml); default: reply 'OK'")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks one)")
    args = parser.parse_args(argv)

    try:
        server = ScriptedModelServer(args.scenario, host=args.host, port=args.port)
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        server.start()
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"Scripted model server listening on {server.url}", flush=True)
    print(f"  OpenAI base URL:    {server.openai_base_url}", flush=True)
    print(f"  Anthropic base URL: {server.anthropic_base_url}", flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
