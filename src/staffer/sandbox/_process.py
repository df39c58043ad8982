"""`run_command`: one shell command in its own process group, with a deadline and an output cap.

The command runs as ``/bin/sh -c`` in a new session, so its process group holds
the shell and everything it starts. When the shell exits, times out or the
caller is cancelled, the whole group is ended (SIGTERM, then SIGKILL after a
short grace): a command cannot leave background processes running, and a child
that keeps the output pipe open (``sleep 100 &``) cannot make us wait for it.

Output is read from a pipe we own, all the way to the end, so the child never
blocks on a full pipe; only the first and last part are kept, bounding memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from staffer.errors import ToolError

# After the group is ended, how long to wait for the pipe to report EOF. Only a
# process that left the group (setsid) can still hold it open by then.
_EOF_GRACE = 1.0
_READ_SIZE = 65536


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a command did.

    `exit_code` is the shell's exit status, negative for a signal (``-9`` for
    SIGKILL). `output` is stdout and stderr interleaved as written; when
    `truncated`, its middle is replaced by a marker saying how much was left out.
    """

    exit_code: int
    output: str
    truncated: bool
    timed_out: bool
    duration_ms: int


class _OutputBuffer:
    """Keeps the first and the last bytes of a stream and counts the rest."""

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max(max_chars, 0)
        # A UTF-8 character is at most 4 bytes, so this many bytes always
        # decode to at least `max_chars` characters.
        self._cap = 4 * self.max_chars
        self._head = bytearray()
        self._tail = bytearray()
        self.total = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = self._cap - len(self._head)
        if room > 0:
            self._head += data[:room]
            data = data[room:]
        if data:
            self._tail += data
            if len(self._tail) > self._cap:
                del self._tail[: len(self._tail) - self._cap]

    def text(self) -> tuple[str, bool]:
        """The output as text, and whether part of it was left out."""
        if self.total == len(self._head) + len(self._tail):
            whole = bytes(self._head + self._tail).decode("utf-8", errors="replace")
            if len(whole) <= self.max_chars:
                return whole, False
            first = last = whole
        else:
            first = self._head.decode("utf-8", errors="replace")
            last = self._tail.decode("utf-8", errors="replace")
        keep_tail = self.max_chars // 2
        keep_head = self.max_chars - keep_tail
        marker = f"\n[... output truncated: {self.total} bytes in total ...]\n"
        return first[:keep_head] + marker + (last[-keep_tail:] if keep_tail else ""), True


def _signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to the group; False when no process is left in it."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


async def _end_group(
    pgid: int, grace: float, settled: tuple[asyncio.Future[None], asyncio.Task[int]]
) -> None:
    """SIGTERM the group, wait up to `grace` for it to settle, then SIGKILL what is left.

    "Settled" is the shell reaped and the pipe closed by every writer. Polling
    the group itself would not do: orphans dead as zombies still count as
    members until PID 1 reaps them, and in a container it may never do so.
    """
    if not _signal_group(pgid, signal.SIGTERM):
        return
    await asyncio.wait(settled, timeout=grace)
    _signal_group(pgid, signal.SIGKILL)


async def _wait_for(aw: asyncio.Future[None] | asyncio.Task[int], seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(aw), seconds)


async def run_command(
    command: str,
    *,
    cwd: Path,
    timeout: float,  # noqa: ASYNC109 - the deadline is ours to enforce: it ends the group
    max_output_chars: int,
    env: Mapping[str, str],
    kill_grace: float = 1.0,
) -> CommandResult:
    """Run `command` with ``/bin/sh -c`` in `cwd` and collect its combined output.

    `env` is the complete environment (build it with `minimal_env`); stdin is
    ``/dev/null``. After `timeout` seconds the process group is ended and the
    result says `timed_out`. Cancelling the awaiting task kills the group too.
    A non-zero exit is a normal result; only failing to start raises
    (`ToolError`).
    """
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    read_fd, write_fd = os.pipe()
    try:
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            command,
            cwd=cwd,
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=write_fd,
            stderr=write_fd,
            start_new_session=True,
        )
    except OSError as exc:
        os.close(read_fd)
        raise ToolError(f"could not start /bin/sh in {cwd}: {exc.strerror or exc}") from exc
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)

    buffer = _OutputBuffer(max_output_chars)
    eof: asyncio.Future[None] = loop.create_future()
    pgid = proc.pid  # the session leader's pid is the group id
    timed_out = False

    def readable() -> None:
        try:
            data = os.read(read_fd, _READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if data:
            buffer.feed(data)
        else:  # every writer has closed the pipe
            loop.remove_reader(read_fd)
            if not eof.done():
                eof.set_result(None)

    # Read with add_reader, not connect_read_pipe: uvloop's pipe transport closes the
    # descriptor twice (MagicStack/uvloop#763), which closed other connections' sockets
    # when the number had been reused in between.
    os.set_blocking(read_fd, False)
    loop.add_reader(read_fd, readable)
    try:
        exited = asyncio.ensure_future(proc.wait())
        try:
            await asyncio.wait_for(asyncio.shield(exited), timeout)
        except TimeoutError:
            timed_out = True
        await _end_group(pgid, kill_grace, (eof, exited))
        await _wait_for(exited, _EOF_GRACE)
        await _wait_for(eof, _EOF_GRACE)
    except BaseException:
        # Cancelled (or something broke): nothing of the command may outlive us.
        _signal_group(pgid, signal.SIGKILL)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), _EOF_GRACE)
        raise
    finally:
        loop.remove_reader(read_fd)
        os.close(read_fd)

    output, truncated = buffer.text()
    return CommandResult(
        exit_code=proc.returncode if proc.returncode is not None else -signal.SIGKILL,
        output=output,
        truncated=truncated,
        timed_out=timed_out,
        duration_ms=round((time.monotonic() - started) * 1000),
    )
