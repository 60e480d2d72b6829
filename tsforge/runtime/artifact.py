"""Load and verify an exported ONNX artifact (numpy and onnxruntime only)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tsforge.errors import ArtifactError, MissingDependencyError

SUPPORTED_FORMATS = (1,)


@dataclass
class _Exported:
    """What every exported model states in its manifest: horizon and input channels."""

    path: Path
    meta: dict[str, Any]

    @property
    def horizon(self) -> int:
        return int(self.meta["horizon"])

    @property
    def n_channels(self) -> int:
        return int(self.meta["n_channels"])


@dataclass
class Artifact(_Exported):
    """A verified ONNX streaming step with its metadata."""

    session: Any

    @property
    def state_shape(self) -> tuple[int, ...]:
        return tuple(self.meta["state_shape"])

    def initial_state(self) -> np.ndarray:
        """State of a sensor that has not been seen yet (zeros)."""
        return np.zeros(self.state_shape, dtype=np.float32)

    def exported_state(self) -> np.ndarray:
        """State the model had for the exported sensor at export time."""
        if "stream_state" in self.meta:
            return np.asarray(self.meta["stream_state"], dtype=np.float32)
        return self.initial_state()


def session_options(threads: int = 1) -> Any:
    """onnxruntime options tuned for per-step latency: one thread, no spinning, full graph opts."""
    ort = _ort()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            "the streaming runtime needs onnxruntime: pip install onnxruntime"
        ) from exc
    return onnxruntime


def load_artifact(path: str | Path, *, verify: bool = True, threads: int = 1) -> Artifact:
    """Load ``model.onnx`` and its manifest ``model.json``, checking integrity first.

    Raises :class:`~tsforge.errors.ArtifactError` naming the file and the remedy
    when the file is missing, truncated, tampered with (checksum mismatch) or of
    an unknown format.
    """
    path = Path(path)
    if path.is_dir():
        candidates = sorted(path.glob("*.onnx"))
        if len(candidates) != 1:
            raise ArtifactError(
                f"{path} must contain exactly one .onnx file, found {len(candidates)}"
            )
        path = candidates[0]
    if not path.exists():
        raise ArtifactError(f"model file {path} does not exist; export one with `tsforge export`")
    manifest_path = path.with_suffix(".json")
    data = path.read_bytes()
    if manifest_path.exists():
        try:
            meta = json.loads(manifest_path.read_text())
        except json.JSONDecodeError as exc:
            raise ArtifactError(
                f"manifest {manifest_path} is not valid JSON ({exc}); re-export the model"
            ) from exc
        digest = hashlib.sha256(data).hexdigest()
        if verify and digest != meta.get("sha256"):
            raise ArtifactError(
                f"checksum mismatch for {path}: the file is truncated or was modified after "
                f"export (expected {str(meta.get('sha256'))[:12]}…, got {digest[:12]}…). "
                "Copy the artifact again or re-export it."
            )
    elif verify:
        raise ArtifactError(
            f"manifest {manifest_path} is missing, so {path} cannot be verified; copy it "
            "together with the .onnx file, or load with verify=False at your own risk"
        )
    else:
        meta = None
    ort = _ort()
    try:
        session = ort.InferenceSession(data, sess_options=session_options(threads),
                                       providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ArtifactError(f"onnxruntime cannot load {path}: {exc}") from exc
    if meta is None:
        embedded = session.get_modelmeta().custom_metadata_map.get("tsforge")
        if embedded is None:
            raise ArtifactError(f"{path} carries no tsforge metadata; was it exported by tsforge?")
        meta = json.loads(embedded)
    if meta.get("format_version") not in SUPPORTED_FORMATS:
        raise ArtifactError(
            f"{path} has artifact format {meta.get('format_version')}, this runtime reads "
            f"{SUPPORTED_FORMATS}; upgrade tsforge on this machine"
        )
    return Artifact(path=path, meta=meta, session=session)


AGGREGATE_MANIFEST = "aggregate.json"


@dataclass
class AggregateArtifact(_Exported):
    """An exported ``auto``: the experts' verified ONNX steps and the aggregate manifest
    (written by :func:`tsforge.export.aggregate.export_aggregate`)."""

    experts: list[Artifact]

    @property
    def families(self) -> list[str]:
        return [e["family"] for e in self.meta["experts"]]


def is_aggregate(path: str | Path) -> bool:
    """True when ``path`` is a folder holding an exported aggregate."""
    return (Path(path) / AGGREGATE_MANIFEST).is_file()


def load_aggregate(path: str | Path, *, verify: bool = True, threads: int = 1
                   ) -> AggregateArtifact:
    """Load an aggregate folder: its manifest, then every expert (checksums checked)."""
    root = Path(path)
    manifest = root / AGGREGATE_MANIFEST
    try:
        meta = json.loads(manifest.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"aggregate manifest {manifest} cannot be read ({exc}); export "
                            "it again with `tsforge export DATA --model auto`") from exc
    if meta.get("format") != "tsforge-aggregate" or meta.get("format_version") != 1:
        raise ArtifactError(f"{manifest} has format {meta.get('format')!r} "
                            f"v{meta.get('format_version')}; this runtime reads "
                            "tsforge-aggregate v1: upgrade tsforge here")
    experts = []
    for e in meta["experts"]:
        folder = root / e["dir"]
        if verify and (folder / "model.json").is_file() and \
                hashlib.sha256((folder / "model.json").read_bytes()).hexdigest() != \
                e["manifest_sha256"]:
            raise ArtifactError(f"expert manifest {folder / 'model.json'} was modified after "
                                "export (SHA-256 mismatch); export the aggregate again")
        art = load_artifact(folder / "model.onnx", verify=verify, threads=threads)
        if verify and art.meta.get("sha256") != e["sha256"]:
            raise ArtifactError(f"expert {folder} is not the one {manifest} was exported with; "
                                "copy the whole aggregate folder again")
        experts.append(art)
    return AggregateArtifact(root, meta, experts)


def load_model(path: str | Path, *, threads: int = 1) -> Artifact | AggregateArtifact:
    """An exported aggregate (its folder or ``aggregate.json``) or a single ONNX
    artifact, verified."""
    if Path(path).name == AGGREGATE_MANIFEST:
        path = Path(path).parent
    if is_aggregate(path):
        return load_aggregate(path, threads=threads)
    return load_artifact(path, threads=threads)
