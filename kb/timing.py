"""Where the time of one call goes: named stages, timed only while a benchmark records them.

    with record() as times:        # eval/bench_breakdown.py
        kb.ask(question)
    times  # {"embed": 0.012, "dense": 0.004, ...} seconds, exclusive

`with stage("dense"):` in the core costs one context-variable read when nothing
records, so the stages stay in place in production. Times are exclusive: a stage
entered inside another pauses the outer one, so the stages of a call add up to
at most its wall time and none is counted twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from time import perf_counter


class StageTimes(dict[str, float]):
    """Seconds per stage name, exclusive of nested stages, for one recording."""

    def __init__(self) -> None:
        super().__init__()
        self._open: list[str] = []
        self._since = 0.0

    def _enter(self, name: str) -> None:
        now = perf_counter()
        if self._open:
            self[self._open[-1]] = self.get(self._open[-1], 0.0) + now - self._since
        self._open.append(name)
        self._since = now

    def _leave(self) -> None:
        now = perf_counter()
        name = self._open.pop()
        self[name] = self.get(name, 0.0) + now - self._since
        self._since = now


_recording: ContextVar[StageTimes | None] = ContextVar("kb_stage_times", default=None)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Count the time inside the block towards `name` while a `record()` is open; otherwise do nothing."""
    times = _recording.get()
    if times is None:
        yield
        return
    times._enter(name)
    try:
        yield
    finally:
        times._leave()


@contextmanager
def record() -> Iterator[StageTimes]:
    """Record the stages entered inside the block (this thread or task and what it awaits)."""
    times = StageTimes()
    token = _recording.set(times)
    try:
        yield times
    finally:
        _recording.reset(token)
