"""The scenario: what the scripted model says, how fast, and how it fails.

A scenario is plain data (a dict, or a JSON/TOML file). `parse_scenario` checks
it once and turns it into frozen dataclasses, so the request path never
re-validates anything. Every error names the bad key by its path, such as
``scripts[0].steps[1].tool_calls[0]: missing 'name'``.
"""

from __future__ import annotations

import json
import random
import re
import tomllib
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, cast

from staffer.errors import ConfigError
from staffer.models import FinishReason

FaultKind = Literal[
    "400",
    "401",
    "404",
    "429",
    "500",
    "502",
    "503",
    "504",
    "529",
    "context_length",
    "stall",
    "stall_mid",
    "drop",
    "malformed",
]

#: faults answered with an HTTP error status before any reply is produced
STATUS_FAULTS: Final = frozenset(
    {"400", "401", "404", "429", "500", "502", "503", "504", "529", "context_length"}
)
_FAULT_KINDS: Final = (*sorted(STATUS_FAULTS), "stall", "stall_mid", "drop", "malformed")

# Provider spellings are accepted so a script can be written in either dialect.
_FINISH_ALIASES: Final[dict[str, FinishReason]] = {
    "stop": "stop",
    "end_turn": "stop",
    "tool_calls": "tool_calls",
    "tool_use": "tool_calls",
    "length": "length",
    "max_tokens": "length",
    "content_filter": "content_filter",
    "refusal": "content_filter",
}


class ScenarioError(ConfigError):
    """A scenario is malformed; the message names the offending key by its path."""


@dataclass(frozen=True, slots=True)
class ScriptedToolCall:
    """A tool call the model will make. `arguments` is a dict or raw (maybe invalid) JSON text."""

    name: str
    arguments: Mapping[str, Any] | str
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """One assistant turn: text and/or tool calls, with optional usage and finish overrides."""

    text: str = ""
    tool_calls: tuple[ScriptedToolCall, ...] = ()
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_input_tokens: int = 0
    finish: FinishReason | None = None


@dataclass(frozen=True, slots=True)
class Script:
    """Steps used when `match` (a case-insensitive regex) is found in the last user message."""

    match: str
    pattern: re.Pattern[str]
    steps: tuple[Step, ...]

    def step_for(self, assistant_turns: int) -> Step:
        """The step answering a conversation with `assistant_turns` replies since the user spoke."""
        return self.steps[min(assistant_turns, len(self.steps) - 1)]


@dataclass(frozen=True, slots=True)
class Fault:
    """One failure to inject into one request."""

    kind: FaultKind
    retry_after: float | None = 1.0
    seconds: float = 30.0
    after_chunks: int = 1


@dataclass(frozen=True, slots=True)
class FaultRate:
    """Random faults: each request fails with probability `rate`, drawing from `kinds`."""

    rate: float
    kinds: tuple[Fault, ...]
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class Scenario:
    """A validated scenario. Build one with `parse_scenario` or `load_scenario`."""

    scripts: tuple[Script, ...]
    faults: tuple[Fault, ...] = ()
    fault_rate: FaultRate | None = None
    ttft_ms: float = 0.0
    inter_chunk_ms: float = 0.0
    chunk_chars: int = 16
    models: tuple[str, ...] = ("scripted",)

    def script_for(self, last_user: str) -> Script | None:
        """The first script whose pattern matches `last_user`, or None."""
        for script in self.scripts:
            if script.pattern.search(last_user):
                return script
        return None


class FaultQueue:
    """Hands out the scenario's faults, one per request: the scripted ones first, then random."""

    __slots__ = ("_queue", "_random", "_rate")

    def __init__(self, scenario: Scenario) -> None:
        self._queue = deque(scenario.faults)
        self._rate = scenario.fault_rate
        seed = self._rate.seed if self._rate else None
        self._random = random.Random(seed)

    def next(self) -> Fault | None:
        """The fault for the next request, or None to answer normally."""
        if self._queue:
            return self._queue.popleft()
        rate = self._rate
        if rate is None or self._random.random() >= rate.rate:
            return None
        return self._random.choice(rate.kinds)


DEFAULT_SCENARIO: Final[Mapping[str, Any]] = {"scripts": [{"match": "", "steps": [{"text": "OK"}]}]}


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario from a ``.json`` or ``.toml`` file."""
    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario file {file}: {exc.strerror}") from exc
    try:
        if file.suffix.lower() == ".toml":
            data: Any = tomllib.loads(raw.decode())
        else:
            data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ScenarioError(
            f"{file} is not valid {file.suffix.lstrip('.').upper() or 'JSON'}: {exc}",
            fix="Scenario files are JSON (.json) or TOML (.toml).",
        ) from exc
    return parse_scenario(data)


def parse_scenario(data: Any) -> Scenario:
    """Validate a scenario dict; raises `ScenarioError` naming the bad key."""
    if isinstance(data, Scenario):
        return data
    top = _mapping(data, "scenario")
    _known(
        top,
        "",
        {"ttft_ms", "inter_chunk_ms", "chunk_chars", "scripts", "faults", "fault_rate", "models"},
    )
    chunk_chars = _int(top.get("chunk_chars", 16), "chunk_chars")
    if chunk_chars < 1:
        raise ScenarioError("must be at least 1", key="chunk_chars")
    scripts_raw = top.get("scripts", DEFAULT_SCENARIO["scripts"])
    scripts = tuple(
        _script(item, f"scripts[{i}]") for i, item in enumerate(_list(scripts_raw, "scripts"))
    )
    faults: list[Fault] = []
    for i, item in enumerate(_list(top.get("faults", []), "faults")):
        fault, count = _fault(item, f"faults[{i}]", allow_count=True)
        faults.extend([fault] * count)
    models = tuple(
        _str(m, f"models[{i}]") for i, m in enumerate(_list(top.get("models", []), "models"))
    )
    return Scenario(
        scripts=scripts,
        faults=tuple(faults),
        fault_rate=_fault_rate(top["fault_rate"]) if top.get("fault_rate") is not None else None,
        ttft_ms=_seconds(top.get("ttft_ms", 0), "ttft_ms"),
        inter_chunk_ms=_seconds(top.get("inter_chunk_ms", 0), "inter_chunk_ms"),
        chunk_chars=chunk_chars,
        models=models or ("scripted",),
    )


def _script(data: Any, path: str) -> Script:
    item = _mapping(data, path)
    _known(item, path, {"match", "steps"})
    match = _str(item.get("match", ""), f"{path}.match")
    try:
        pattern = re.compile(match, re.IGNORECASE)
    except re.error as exc:
        raise ScenarioError(f"invalid regular expression: {exc}", key=f"{path}.match") from exc
    if "steps" not in item:
        raise ScenarioError("missing 'steps'", key=path)
    steps = tuple(
        _step(step, f"{path}.steps[{i}]")
        for i, step in enumerate(_list(item["steps"], f"{path}.steps"))
    )
    if not steps:
        raise ScenarioError("needs at least one step", key=f"{path}.steps")
    return Script(match=match, pattern=pattern, steps=steps)


def _step(data: Any, path: str) -> Step:
    item = _mapping(data, path)
    _known(item, path, {"text", "tool_calls", "usage", "finish"})
    calls = tuple(
        _tool_call(call, f"{path}.tool_calls[{i}]")
        for i, call in enumerate(_list(item.get("tool_calls", []), f"{path}.tool_calls"))
    )
    usage = _mapping(item.get("usage", {}), f"{path}.usage")
    _known(usage, f"{path}.usage", {"input_tokens", "output_tokens", "cached_input_tokens"})
    finish_raw = item.get("finish")
    finish: FinishReason | None = None
    if finish_raw is not None:
        finish_name = _str(finish_raw, f"{path}.finish")
        if finish_name not in _FINISH_ALIASES:
            allowed = ", ".join(sorted(_FINISH_ALIASES))
            raise ScenarioError(
                f"unknown finish {finish_name!r} (use one of {allowed})", key=f"{path}.finish"
            )
        finish = _FINISH_ALIASES[finish_name]

    def tokens(name: str) -> int | None:
        return None if usage.get(name) is None else _int(usage[name], f"{path}.usage.{name}")

    return Step(
        text=_str(item.get("text", ""), f"{path}.text"),
        tool_calls=calls,
        input_tokens=tokens("input_tokens"),
        output_tokens=tokens("output_tokens"),
        cached_input_tokens=tokens("cached_input_tokens") or 0,
        finish=finish,
    )


def _tool_call(data: Any, path: str) -> ScriptedToolCall:
    item = _mapping(data, path)
    _known(item, path, {"name", "arguments", "id"})
    if "name" not in item:
        raise ScenarioError("missing 'name'", key=path)
    arguments = item.get("arguments", {})
    if not isinstance(arguments, str | Mapping):
        raise ScenarioError("must be an object or a string", key=f"{path}.arguments")
    call_id = item.get("id")
    return ScriptedToolCall(
        name=_str(item["name"], f"{path}.name"),
        arguments=cast("Mapping[str, Any] | str", arguments),
        id=None if call_id is None else _str(call_id, f"{path}.id"),
    )


def _fault(data: Any, path: str, *, allow_count: bool) -> tuple[Fault, int]:
    item: Mapping[str, Any] = (
        {"kind": data} if isinstance(data, str | int) else _mapping(data, path)
    )
    keys = {"kind", "retry_after", "seconds", "after_chunks"} | (
        {"count"} if allow_count else set()
    )
    _known(item, path, keys)
    if "kind" not in item:
        raise ScenarioError("missing 'kind'", key=path)
    kind = str(item["kind"])
    if kind not in _FAULT_KINDS:
        raise ScenarioError(
            f"unknown fault kind {kind!r} (use one of {', '.join(_FAULT_KINDS)})",
            key=f"{path}.kind",
        )
    retry_after = item.get("retry_after", 1.0)
    count = _int(item.get("count", 1), f"{path}.count")
    if count < 0:
        raise ScenarioError("must not be negative", key=f"{path}.count")
    after_chunks = _int(item.get("after_chunks", 1), f"{path}.after_chunks")
    if after_chunks < 0:
        raise ScenarioError("must not be negative", key=f"{path}.after_chunks")
    fault = Fault(
        kind=cast("FaultKind", kind),
        retry_after=None if retry_after is None else _seconds(retry_after, f"{path}.retry_after"),
        seconds=_seconds(item.get("seconds", 30.0), f"{path}.seconds"),
        after_chunks=after_chunks,
    )
    return fault, count


def _fault_rate(data: Any) -> FaultRate:
    item = _mapping(data, "fault_rate")
    _known(item, "fault_rate", {"rate", "kinds", "seed"})
    rate = _seconds(item.get("rate", 0.0), "fault_rate.rate")
    if rate > 1:
        raise ScenarioError("must be between 0 and 1", key="fault_rate.rate")
    kinds = tuple(
        _fault(kind, f"fault_rate.kinds[{i}]", allow_count=False)[0]
        for i, kind in enumerate(_list(item.get("kinds", ["500"]), "fault_rate.kinds"))
    )
    if not kinds:
        raise ScenarioError("needs at least one fault kind", key="fault_rate.kinds")
    seed = item.get("seed")
    return FaultRate(rate, kinds, None if seed is None else _int(seed, "fault_rate.seed"))


# --- small typed readers ------------------------------------------------------


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ScenarioError(f"must be an object, not {type(value).__name__}", key=path)
    return cast("Mapping[str, Any]", value)


def _list(value: Any, path: str) -> Sequence[Any]:
    if not isinstance(value, list | tuple):
        raise ScenarioError(f"must be a list, not {type(value).__name__}", key=path)
    return cast("Sequence[Any]", value)


def _str(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise ScenarioError(f"must be a string, not {type(value).__name__}", key=path)
    return value


def _int(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScenarioError(f"must be an integer, not {type(value).__name__}", key=path)
    return value


def _seconds(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ScenarioError("must be a non-negative number", key=path)
    return float(value)


def _known(item: Mapping[str, Any], path: str, allowed: set[str]) -> None:
    for key in item:
        if key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            raise ScenarioError(
                f"unknown key {key!r} (expected one of {', '.join(sorted(allowed))})", key=where
            )
