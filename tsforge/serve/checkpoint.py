"""Per-partition checkpoints: the sensors' state together with the offset it belongs to.

A checkpoint of partition ``p`` says "after every message before ``offset`` of
``p``, the sensors read from ``p`` were in this state, under these model
versions".  It is written atomically (temporary file, fsync, rename) *before*
the same offset is committed to Kafka, so a worker that takes the partition over
(after a rebalance, a crash or a scale-out) loads it, seeks to ``offset`` and
continues exactly where the state stands: forecasts after the checkpoint are
produced again (same keys: deduplicable), none are missing.

Two generations are kept: ``p<N>.npz`` and the one before it, ``p<N>.prev.npz``.
A file that cannot be read (truncated, empty, garbage, or content the engine
refuses) is *quarantined*, renamed to ``p<N>.npz.corrupt-<UTC time>`` and kept
for inspection, and the previous generation is used instead: the partition then
resumes from that older offset and replays the readings since, so the forecasts
it repeats are the same numbers under the same ids.  Only when no generation can
be read does the partition restart with fresh sensor state (see
:meth:`CheckpointStore.recover`).  A file that exists but cannot be *opened*
(permissions, I/O error) is an error of the service, not of the file: it raises.
"""

from __future__ import annotations

import io
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tsforge.errors import ArtifactError
from tsforge.io_utils import atomic_write_bytes, npz_bytes

log = logging.getLogger("tsforge.serve")


@dataclass
class Checkpoint:
    """What :meth:`CheckpointStore.load` returns for one partition.

    ``extra`` holds the worker's own per-partition bookkeeping (JSON), e.g. each
    sensor's last timestamp; ``path`` is the file it was read from.
    """

    partition: int
    offset: int
    sensors: dict[str, tuple[str, dict[str, np.ndarray]]]  # name -> (version, state)
    saved_at: float
    extra: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


class CheckpointStore:
    """Checkpoint files under ``root/<group_id>/<topic>/p<partition>.npz`` (no pickles).

    ``root`` must be storage every worker of the group can read (a shared volume
    when workers run on several hosts).
    """

    def __init__(self, root: str | Path, *, topic: str, group_id: str) -> None:
        self.root = Path(root)
        self.topic = topic
        self.group_id = group_id

    def path(self, partition: int) -> Path:
        return self.root / self.group_id / self.topic / f"p{int(partition)}.npz"

    def previous_path(self, partition: int) -> Path:
        return self.path(partition).with_suffix(".prev.npz")

    def save(self, partition: int, offset: int,
             sensors: dict[str, tuple[str, dict[str, np.ndarray]]],
             extra: dict[str, Any] | None = None) -> Path:
        """Write partition ``partition``'s checkpoint at ``offset`` atomically.

        The checkpoint it replaces becomes the previous generation.
        """
        names = sorted(sensors)
        meta = {"partition": int(partition), "offset": int(offset), "saved_at": time.time(),
                "sensors": names, "versions": [sensors[n][0] for n in names],
                "extra": extra or {}}
        arrays: dict[str, np.ndarray] = {"__meta__": np.array(json.dumps(meta))}
        for i, name in enumerate(names):
            for key, value in sensors[name][1].items():
                arrays[f"s{i}/{key}"] = np.asarray(value)
        path = self.path(partition)
        fresh = path.with_suffix(".new.npz")
        atomic_write_bytes(fresh, npz_bytes(arrays))  # complete on disk before any rename
        if path.exists():
            os.replace(path, self.previous_path(partition))
        os.replace(fresh, path)  # a crash between the renames leaves the previous one
        return path

    def load(self, partition: int) -> Checkpoint | None:
        """The partition's newest checkpoint, or None when there is none yet.

        Raises :class:`~tsforge.errors.ArtifactError` when it cannot be read
        (:meth:`recover` quarantines instead).
        """
        path = self.path(partition)
        if not path.exists():
            return None
        try:
            return _parse(path.read_bytes(), path)
        except OSError as exc:
            raise ArtifactError(f"checkpoint {path} cannot be opened ({exc})") from exc
        except Exception as exc:  # any parse failure means the file is damaged
            raise ArtifactError(f"checkpoint {path} cannot be read ({exc})") from exc

    def recover(self, partition: int,
                apply: Callable[[Checkpoint], None] = lambda c: None
                ) -> tuple[Checkpoint | None, list[Path]]:
        """The newest generation that reads and that ``apply`` accepts, and the files
        quarantined on the way.

        ``apply`` loads the checkpoint into the engine and raises if the content
        does not fit; such a file is quarantined like an unreadable one.  Returns
        ``(None, quarantined)`` when no generation is usable (``quarantined`` is
        empty when there simply was no checkpoint).
        """
        quarantined: list[Path] = []
        for path in (self.path(partition), self.previous_path(partition)):
            if not path.exists():
                continue
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise ArtifactError(f"checkpoint {path} cannot be opened ({exc}); check the "
                                    "permissions and the volume of [checkpoint] path") from exc
            try:
                ckpt = _parse(data, path)
                apply(ckpt)
            except Exception as exc:  # damaged file or content the engine refuses
                quarantined.append(self.quarantine(path, exc))
                continue
            return ckpt, quarantined
        return None, quarantined

    def quarantine(self, path: Path, reason: BaseException | str) -> Path:
        """Rename an unusable checkpoint aside (kept for inspection) and log it."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target = path.with_name(f"{path.name}.corrupt-{stamp}")
        n = 1
        while target.exists():
            n += 1
            target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
        os.replace(path, target)
        log.warning("checkpoint unreadable; quarantined", extra={"fields": {
            "path": str(path), "moved_to": str(target),
            "reason": f"{type(reason).__name__}: {reason}"[:300]
            if isinstance(reason, BaseException) else reason}})
        return target


def _parse(data: bytes, path: Path) -> Checkpoint:
    """A checkpoint from the bytes of its file; raises on anything malformed."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        meta = json.loads(str(npz["__meta__"]))
        arrays = {k: npz[k] for k in npz.files if k != "__meta__"}
    names, versions = meta["sensors"], meta["versions"]
    if not (isinstance(names, list) and isinstance(versions, list)
            and len(names) == len(versions)):
        raise ValueError("sensor and version lists do not match")
    offset = int(meta["offset"])
    if offset < 0:
        raise ValueError(f"negative offset {offset}")
    sensors: dict[str, tuple[str, dict[str, np.ndarray]]] = {}
    for i, (name, version) in enumerate(zip(names, versions)):
        prefix = f"s{i}/"
        state = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
        sensors[str(name)] = (str(version), state)
    extra = meta.get("extra", {})
    if not isinstance(extra, dict):
        raise ValueError("'extra' is not an object")
    return Checkpoint(int(meta["partition"]), offset, sensors, float(meta["saved_at"]),
                      extra, path)
