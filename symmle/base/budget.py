"""Time budgets for symbolic steps.

SymPy has no cancellation API, and a thread cannot be killed, so a budget is
enforced with ``SIGALRM`` (``setitimer``): the handler raises
:class:`~symmle.base.errors.DerivationTimeout` inside the running step.  SymPy is
pure Python, so the interrupt lands within milliseconds.  Budgets nest: an
inner step never outlives the step that contains it.  Where no alarm is
available (Windows, or a call from a thread other than the main one) the step
runs unbounded and :func:`enforced` reports that so callers can warn.
A time-out that :func:`attempt` absorbs (the caller falls back to another
strategy) is seen by :func:`watch_timeouts`, so that a result cut short by
its budget can be told from a complete one (the cache of derivations never
keeps the former).
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from symmle.base.errors import DerivationTimeout, SpecError

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_TIMEOUT",
    "budget",
    "attempt",
    "enforced",
    "check_timeout",
    "watch_timeouts",
]

#: Default budget, in seconds, for one symbolic step.
DEFAULT_TIMEOUT = 20.0
#: Largest budget accepted (about 11.6 days); the interval timer cannot hold an unbounded one.
MAX_TIMEOUT = 1e6


def check_timeout(seconds: object) -> float:
    """A user's time budget as a float, or :class:`SpecError` naming the problem.

    Examples
    --------
    >>> check_timeout("2.5")
    2.5
    >>> check_timeout(float("nan"))
    Traceback (most recent call last):
        ...
    symmle.SpecError: timeout must be a number of seconds in (0, 1e+06] (got nan)
    """
    try:
        value = float(seconds)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        value = math.nan
    if not 0 < value <= MAX_TIMEOUT:  # also refuses nan
        raise SpecError(f"timeout must be a number of seconds in (0, {MAX_TIMEOUT:g}] (got {seconds})")
    return value


T = TypeVar("T")


@dataclass
class _Frame:
    step: str
    seconds: float
    deadline: float


_frames: list[_Frame] = []
#: the lists of :func:`watch_timeouts` blocks now running, innermost last
_watchers: list[list[str]] = []


def enforced() -> bool:
    """Whether budgets can interrupt work in the calling thread."""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


def _on_alarm(signum: int, frame: object) -> None:
    now = time.monotonic()
    expired = [f for f in _frames if f.deadline <= now + 1e-3]
    # The outermost expired frame is the one to report: everything inside it
    # is abandoned too.
    victim = expired[0] if expired else _frames[-1]
    raise DerivationTimeout(victim.step, victim.seconds)


def _arm() -> None:
    if not _frames:
        signal.setitimer(signal.ITIMER_REAL, 0)
        return
    remaining = min(f.deadline for f in _frames) - time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, max(remaining, 1e-3))


@contextmanager
def budget(step: str, seconds: float | None) -> Iterator[None]:
    """Run the body under a time budget.

    Parameters
    ----------
    step : str
        Name of the step, used in the :class:`DerivationTimeout` message.
    seconds : float or None
        Budget in seconds; ``None`` or a non-positive value means unbounded.

    Raises
    ------
    DerivationTimeout
        When the body (or an enclosing budget) runs out of time.
    """
    if seconds is not None and not seconds <= MAX_TIMEOUT:  # inf, nan, or beyond the timer
        check_timeout(seconds)
    if seconds is None or seconds <= 0 or not enforced():
        yield
        return
    previous = signal.getsignal(signal.SIGALRM)
    if not _frames:
        signal.signal(signal.SIGALRM, _on_alarm)
    frame = _Frame(step, float(seconds), time.monotonic() + float(seconds))
    _frames.append(frame)
    _arm()
    try:
        yield
    finally:
        _frames.remove(frame)
        _arm()
        if not _frames:
            signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)


def attempt(step: str, seconds: float | None, fn: Callable[[], T]) -> tuple[T | None, bool]:
    """Run ``fn`` under its own budget; return ``(result, timed_out)``.

    Only this step's own time-out is absorbed (so the caller can fall back
    to another strategy); the time-out of an enclosing step propagates.
    """
    try:
        with budget(step, seconds):
            return fn(), False
    except DerivationTimeout as exc:
        if exc.step == step and not any(f.deadline <= time.monotonic() for f in _frames):
            for seen in _watchers:
                seen.append(step)
            return None, True
        raise


@contextmanager
def watch_timeouts() -> Iterator[list[str]]:
    """Collect the steps whose time-outs :func:`attempt` absorbed while the body runs.

    Yields
    ------
    list of str
        Filled in as the body runs: the name of each step that ran out of
        time and fell back (empty if none did).

    Examples
    --------
    >>> import time
    >>> with watch_timeouts() as seen:
    ...     attempt("a slow step", 0.01, lambda: time.sleep(0.5))
    (None, True)
    >>> seen
    ['a slow step']
    """
    seen: list[str] = []
    _watchers.append(seen)
    try:
        yield seen
    finally:
        _watchers.remove(seen)
