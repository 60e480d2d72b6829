"""Per-partition checkpoints: the sensors' state together with the offset it belongs to.

A checkpoint of partition ``p`` says "after every message before ``offset`` of
``p``, the sensors read from ``p`` were in this state, under these model
versions".  It is written atomically (temporary file, fsync, rename) *before*
the same offset is committed to Kafka, so a worker that takes the partition over
(after a rebalance, a crash or a scale-out) loads it, seeks to ``offset`` and
continues exactly where the state stands: forecasts after the checkpoint are
produced again (same keys: deduplicable), none are missing.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tsforge.errors import ArtifactError
from tsforge.io_utils import atomic_write_bytes, npz_bytes


@dataclass
class Checkpoint:
    """What :meth:`CheckpointStore.load` returns for one partition."""

    partition: int
    offset: int
    sensors: dict[str, tuple[str, dict[str, np.ndarray]]]  # name -> (version, state)
    saved_at: float


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

    def save(self, partition: int, offset: int,
             sensors: dict[str, tuple[str, dict[str, np.ndarray]]]) -> Path:
        """Write partition ``partition``'s checkpoint at ``offset`` atomically."""
        names = sorted(sensors)
        meta = {"partition": int(partition), "offset": int(offset), "saved_at": time.time(),
                "sensors": names, "versions": [sensors[n][0] for n in names]}
        arrays: dict[str, np.ndarray] = {"__meta__": np.array(json.dumps(meta))}
        for i, name in enumerate(names):
            for key, value in sensors[name][1].items():
                arrays[f"s{i}/{key}"] = np.asarray(value)
        path = self.path(partition)
        atomic_write_bytes(path, npz_bytes(arrays))
        return path

    def load(self, partition: int) -> Checkpoint | None:
        """The partition's checkpoint, or None when there is none yet."""
        path = self.path(partition)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as npz:
                meta = json.loads(str(npz["__meta__"]))
                arrays = {k: npz[k] for k in npz.files if k != "__meta__"}
        except (OSError, ValueError, KeyError) as exc:
            raise ArtifactError(
                f"checkpoint {path} cannot be read ({exc}); delete it to restart partition "
                f"{partition} from the committed Kafka offset with fresh state") from exc
        sensors: dict[str, tuple[str, dict[str, np.ndarray]]] = {}
        for i, (name, version) in enumerate(zip(meta["sensors"], meta["versions"])):
            prefix = f"s{i}/"
            state = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
            sensors[name] = (version, state)
        return Checkpoint(int(meta["partition"]), int(meta["offset"]), sensors,
                          float(meta["saved_at"]))
