"""Progress of long work: a tqdm bar on a terminal, one line per finished stage elsewhere.

The library is quiet by default; the command line turns progress on with
:func:`enable` (``--no-progress`` turns it off).  Training loops, backtests and
exports wrap their loops in :func:`track` and their steps in :func:`stage`, so
every long piece of work shows itself the same way: a live bar when stderr is a
terminal, and a single ``done`` line per finished stage in a log file or CI run.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

_enabled = False


def enable(on: bool = True) -> None:
    """Turn progress output on (the command line does) or off (the library default)."""
    global _enabled
    _enabled = bool(on)


def enabled() -> bool:
    """True when progress output is on."""
    return _enabled


def on_terminal() -> bool:
    """True when stderr is an interactive terminal (bars), False for logs and pipes (lines)."""
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def _line(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class _Lines:
    """An iterable that prints one summary line when its loop ends (off a terminal)."""

    def __init__(self, iterable: Iterable[Any], desc: str, unit: str) -> None:
        self._it, self._desc, self._unit = iterable, desc, unit
        self._n, self._post, self._done = 0, "", False
        self._t0 = time.perf_counter()

    def __iter__(self) -> Iterator[Any]:
        for item in self._it:
            self._n += 1  # counted when handed out: a loop left by ``break`` after its
            yield item    # work (the trainer's step budget) still counts that item
        self.close()

    def set_postfix(self, **values: Any) -> None:
        """Keep the last values (loss, ...) for the summary line, like ``tqdm.set_postfix``."""
        self._post = ", ".join(f"{k} {v}" for k, v in values.items())

    def close(self) -> None:
        """Print the summary line once."""
        if self._done:
            return
        self._done = True
        seconds = time.perf_counter() - self._t0
        post = f" ({self._post})" if self._post else ""
        _line(f"{self._desc}: {self._n} {self._unit}{'s' * (self._n != 1)} in {seconds:.1f} s"
              + post)


def track(iterable: Iterable[Any], desc: str, unit: str = "step", *, force: bool = False,
          total: int | None = None) -> Any:
    """``iterable`` with progress when on (or ``force``): a tqdm bar on a terminal, else one
    line when the loop ends.  Callers that may leave the loop early call ``.close()``."""
    if not (force or _enabled):
        return iterable
    if not on_terminal():
        return _Lines(iterable, desc, unit)
    try:
        from tqdm import tqdm
    except ImportError:
        return _Lines(iterable, desc, unit)
    return tqdm(iterable, desc=desc, unit=unit, total=total, leave=False, dynamic_ncols=True,
                mininterval=0.5)


@contextmanager
def stage(desc: str) -> Iterator[None]:
    """Time one stage of work and print ``desc: done in N s`` when it ends (when on)."""
    t0 = time.perf_counter()
    yield
    if _enabled:
        _line(f"{desc}: done in {time.perf_counter() - t0:.1f} s")
