"""Plugin code misbehaving during a run: what becomes a result and what ends the run.

- ``SystemExit``, and a ``KeyboardInterrupt`` that plugin code raises itself, are results
  (``error``) like any exception: an op calling ``sys.exit(0)`` in its forward must not end
  ``opgraph check`` with exit 0 and no report.
- A real Ctrl-C (SIGINT while `interrupts_watched`) ends the run; the results so far are
  reported, marked incomplete.
- `time_limit` bounds one op's checks (``--timeout``): `OpTimeout` ends that op's checks.

Signals can only be handled in the main thread; elsewhere, and outside `interrupts_watched`
(the pytest plugin), every KeyboardInterrupt counts as real and there is no time limit.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

_watch = {"on": False, "interrupted": False}  # set only by the main thread's handler


class OpTimeout(BaseException):
    """One op's checks took longer than the run's time limit."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"took longer than {seconds:g} s")
        self.seconds = seconds


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def interrupts_watched() -> Iterator[None]:
    """Inside, a SIGINT is remembered before it raises KeyboardInterrupt, so `ends_run` can
    tell it from a KeyboardInterrupt raised by plugin code."""
    if not _in_main_thread():
        yield  # no handler of ours: every interrupt is taken as real
        return

    def on_sigint(signum: int, frame: Any) -> None:
        _watch["interrupted"] = True
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    _watch.update(on=True, interrupted=False)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _watch.update(on=False, interrupted=False)


def ends_run(exc: BaseException) -> bool:
    """Whether ``exc`` must propagate (a real Ctrl-C, the op's time limit) instead of
    becoming an ``error`` result."""
    if isinstance(exc, OpTimeout):
        return True
    return isinstance(exc, KeyboardInterrupt) and (not _watch["on"] or _watch["interrupted"])


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise `OpTimeout` in the block once ``seconds`` have passed (None: no limit)."""
    if not seconds or not _in_main_thread():
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise OpTimeout(seconds)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
