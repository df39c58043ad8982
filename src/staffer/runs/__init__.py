"""Durable runs: the executor that claims queued runs from the store and runs them.

See docs/design/durable-runs.md. The store holds the queue, the leases and each run's
step journal; any number of executors (the `staffer start` process, `staffer worker`
processes) share it, and a run cut off by a crash resumes on the next one to claim it.
"""

from staffer.runs._executor import Executor, Publish

__all__ = ["Executor", "Publish"]
