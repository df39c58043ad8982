"""Warm-turn overhead: one tool call and an answer, through Staffer vs direct model calls.

A zero-latency scripted model serves both paths in the same run. The direct path
makes the two streaming Chat Completions calls a turn needs (with the same bodies
Staffer sent) over a keep-alive connection; the Staffer path posts a message to a
gateway running in its own process (`staffer start`, pinned to core 0) and reads
the event stream to `run_finished`. The overhead is the difference.

    python -m bench.turn_overhead [--turns 300] [--warmup 30]
"""

from __future__ import annotations

import argparse
import json
import time

import httpx

from bench._harness import free_port, gateway_process, pin_to, staffer_home, summary, token_of
from staffer.testing.model_server import ScriptedModelServer

SCENARIO = {
    "scripts": [
        {
            "match": "",
            "steps": [
                {"tool_calls": [{"name": "list_dir", "arguments": {"path": "."}}]},
                {"text": "Your workspace has the usual files."},
            ],
        }
    ]
}
TARGET_P50_MS = 15.0


def staffer_turn(client: httpx.Client) -> float:
    session_id = client.post("/api/sessions").json()["id"]
    started = time.perf_counter()
    with client.stream(
        "POST",
        f"/api/sessions/{session_id}/messages?stream=true",
        json={"text": "What is in my workspace?"},
    ) as response:
        for line in response.iter_lines():
            if line.startswith("event: run_finished"):
                break
    return (time.perf_counter() - started) * 1000


def direct_turn(client: httpx.Client, url: str, bodies: list[dict[str, object]]) -> float:
    started = time.perf_counter()
    for body in bodies:
        with client.stream("POST", url, json=body) as response:
            for _ in response.iter_lines():
                pass
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    args = parser.parse_args()
    pin_to(1)

    with ScriptedModelServer(SCENARIO) as server:
        config = f'[model]\nname = "openai:scripted"\nbase_url = "{server.openai_base_url}"\n'
        with staffer_home(config) as home:
            port = free_port()
            with gateway_process(home, port, cpu=0):
                headers = {"authorization": f"Bearer {token_of(home)}"}
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as client:
                    for _ in range(args.warmup):
                        staffer_turn(client)
                    n_before = len(server.requests)
                    staffer_turn(client)
                    bodies = [r.body for r in server.requests[n_before:]]
                    staffer_ms = [staffer_turn(client) for _ in range(args.turns)]

        first_prompt = bodies[0]
        prompt_chars = len(json.dumps(first_prompt["messages"])) + len(
            json.dumps(first_prompt.get("tools", []))
        )
        with httpx.Client() as client:
            url = f"{server.openai_base_url}/chat/completions"
            for _ in range(args.warmup):
                direct_turn(client, url, bodies)
            direct_ms = [direct_turn(client, url, bodies) for _ in range(args.turns)]

    s, d = summary(staffer_ms), summary(direct_ms)
    overhead_p50 = s["p50"] - d["p50"]
    overhead_p99 = s["p99"] - d["p99"]
    print(f"warm turn (1 tool call + answer), {args.turns} turns, zero-latency scripted model")
    print(f"  direct model calls   p50 {d['p50']:7.2f} ms   p99 {d['p99']:7.2f} ms")
    print(f"  through Staffer      p50 {s['p50']:7.2f} ms   p99 {s['p99']:7.2f} ms")
    verdict = "met" if overhead_p50 < TARGET_P50_MS else "MISSED"
    print(f"  overhead             p50 {overhead_p50:7.2f} ms   p99 {overhead_p99:7.2f} ms")
    print(f"  target: overhead p50 < {TARGET_P50_MS:g} ms: {verdict}")
    print(f"  ratio Staffer/direct p50 {s['p50'] / d['p50']:.2f}x")
    n_tools = len(first_prompt.get("tools", []))
    print(f"  context sent on the first call: {prompt_chars} characters")
    print(f"    (~{prompt_chars // 4} tokens at 4 characters a token), {n_tools} tool schemas")


if __name__ == "__main__":
    main()
