"""Single-writer lock of a registry directory (POSIX ``fcntl`` advisory lock).

Writers (register, promote, rollback, recover) hold the lock for the whole
read-modify-write of the metadata; readers never lock: every file they read is
replaced by atomic rename, so they see either the old or the new complete file.
The kernel drops the lock when its holder dies, even by ``kill -9``.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from tsforge.errors import TsforgeError


class RegistryLockedError(TsforgeError):
    """Another process kept the registry's writer lock longer than the timeout."""


class WriterLock:
    """Exclusive lock on ``path``, waited for up to ``timeout`` seconds."""

    def __init__(self, path: str | Path, timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._fd: int | None = None

    def __enter__(self) -> WriterLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise RegistryLockedError(
                        f"registry lock {self.path} is held by another writer for more than "
                        f"{self.timeout:g} s; wait for it to finish (a crashed writer releases "
                        "the lock automatically)"
                    ) from None
                time.sleep(0.01)
        self._fd = fd
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
