"""The scripted model server in a process of its own, without request recording.

    python -m bench._scripted SCENARIO.json

Prints ``{"url": OPENAI_BASE_URL}`` once listening and serves until its stdin closes.
"""

from __future__ import annotations

import json
import sys

from staffer.testing.model_server import ScriptedModelServer


def main() -> None:
    with ScriptedModelServer(sys.argv[1], record_requests=False) as server:
        sys.stdout.write(json.dumps({"url": server.openai_base_url}) + "\n")
        sys.stdout.flush()
        sys.stdin.read()


if __name__ == "__main__":
    main()
