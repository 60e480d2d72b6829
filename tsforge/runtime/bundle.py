"""Deployment bundles: a self-describing, checksummed folder holding the current and the
previous model version (numpy and onnxruntime only).

Layout (``tsforge export --bundle OUT`` writes it, ``tsforge-edge run OUT`` reads it)::

    OUT/
      bundle.json        index: format, version, current/previous folders, sensor,
                         SHA-256 of every file below, history of versions
      requirements.txt   what the edge box needs (numpy, onnxruntime)
      v0002/             the current version
        model.onnx       streaming step (x, state) -> (forecast, new_state)
                         (model ``auto``: aggregate.json and experts/<k>-<family>/
                         model.onnx instead, see tsforge.export.aggregate)
        model.json       its manifest (config, transforms, state, intervals, parity)
        model.int8.onnx  optional dynamically quantised step, with model.int8.json
        learner.npz      optional online learner state (on-device adaptation)
      v0001/             the previous version, kept for rollback

:func:`commit_version` is the only writer: it writes ``bundle.json`` atomically
after the new folder is complete, then deletes folders that are neither current
nor previous, so a crash leaves the old bundle valid.  :func:`load_bundle`
verifies every listed checksum before anything is loaded.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tsforge._version import __version__
from tsforge.errors import ArtifactError
from tsforge.io_utils import atomic_write_bytes, sha256_file
from tsforge.runtime.artifact import (
    AGGREGATE_MANIFEST,
    AggregateArtifact,
    Artifact,
    is_aggregate,
    load_model,
)

BUNDLE_FORMAT = "tsforge-bundle"
BUNDLE_FORMAT_VERSION = 1
INDEX = "bundle.json"
REQUIREMENTS = "requirements.txt"
EDGE_REQUIREMENTS = ("numpy>=1.24", "onnxruntime>=1.17")


def is_bundle(path: str | Path) -> bool:
    """True when ``path`` is a bundle folder (it holds ``bundle.json``)."""
    return (Path(path) / INDEX).is_file()


def version_dir(version: int) -> str:
    return f"v{version:04d}"


def read_index(root: str | Path) -> dict[str, Any]:
    """The parsed ``bundle.json`` of ``root``, checked for format."""
    path = Path(root) / INDEX
    if not path.is_file():
        raise ArtifactError(f"{root} is not a tsforge bundle: {INDEX} is missing. Export one with "
                            "`tsforge export DATA --bundle OUT`")
    try:
        index = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path} is not valid JSON ({exc}); copy the bundle again") from exc
    if index.get("format") != BUNDLE_FORMAT or \
            index.get("format_version") != BUNDLE_FORMAT_VERSION:
        raise ArtifactError(
            f"{path} has format {index.get('format')!r} v{index.get('format_version')}; this "
            f"runtime reads {BUNDLE_FORMAT} v{BUNDLE_FORMAT_VERSION}: upgrade tsforge here"
        )
    return index


def verify_bundle(root: str | Path) -> dict[str, Any]:
    """Check every file listed in ``bundle.json`` against its SHA-256; return the index.

    Raises :class:`ArtifactError` naming the first missing or modified file.
    """
    root = Path(root)
    index = read_index(root)
    for rel, digest in sorted(index.get("files", {}).items()):
        path = root / rel
        if not path.is_file():
            raise ArtifactError(f"bundle file {path} is missing; copy the whole bundle folder")
        if sha256_file(path) != digest:
            raise ArtifactError(
                f"bundle file {path} was modified after export (SHA-256 mismatch); the bundle "
                "is refused. Copy it again from the export machine or re-export it"
            )
    for key in ("current", "previous"):
        folder = index.get(key)
        files = index.get("files", {})
        if folder and f"{folder}/model.onnx" not in files and \
                f"{folder}/{AGGREGATE_MANIFEST}" not in files:
            raise ArtifactError(f"{INDEX} names {key} version {folder} but lists no "
                                f"{folder}/model.onnx; re-export the bundle")
    return index


@dataclass
class Bundle:
    """A verified bundle: the current artifact, the previous one (if kept) and the index."""

    root: Path
    index: dict[str, Any]
    current: Artifact | AggregateArtifact
    previous: Artifact | AggregateArtifact | None

    @property
    def version(self) -> int:
        return int(self.index["version"])

    def version_entry(self, which: str = "current") -> dict[str, Any]:
        """The index entry of the current or previous version (adaptation map, int8 report)."""
        return self.index["versions"][self.index[which]]

    @property
    def learner_path(self) -> Path | None:
        """The online learner state of the current version, if it can adapt on the device."""
        entry = self.version_entry().get("adaptation")
        return self.root / self.index["current"] / entry["learner"] if entry else None


def load_bundle(root: str | Path, *, threads: int = 1, int8: bool = False) -> Bundle:
    """Verify ``root`` and load its current (and previous) ONNX step.

    ``int8`` loads the dynamically quantised step of the current version; a bundle
    without one raises :class:`ArtifactError` saying how to add it.
    """
    root = Path(root)
    index = verify_bundle(root)
    name = "model.int8.onnx" if int8 else "model.onnx"
    folder = root / index["current"]
    cur = folder if is_aggregate(folder) else folder / name
    if int8 and not (folder / name).is_file():
        raise ArtifactError(f"bundle {root} has no int8 model in {index['current']}; re-export "
                            "with `tsforge export ... --bundle OUT --int8` (an aggregate, "
                            "model auto, has no int8 step)")
    previous = None
    if index.get("previous"):
        prev = root / index["previous"]
        previous = load_model(prev if is_aggregate(prev) else prev / "model.onnx",
                              threads=threads)
    return Bundle(root, index, load_model(cur, threads=threads), previous)


def write_requirements(root: Path) -> None:
    """The minimal requirements of the edge runtime, with the versions used at export."""
    lines = ["# tsforge edge runtime: install with deploy/edge/install.sh or",
             "#   pip install -r requirements.txt && pip install --no-deps tsforge",
             f"# written by tsforge {__version__}", *EDGE_REQUIREMENTS]
    atomic_write_bytes(root / REQUIREMENTS, ("\n".join(lines) + "\n").encode())


def commit_version(root: str | Path, folder: str, entry: dict[str, Any], *,
                   keep_previous: bool = True) -> dict[str, Any]:
    """Make the complete folder ``root/folder`` the current version of the bundle.

    The old current version becomes ``previous`` (when ``keep_previous``); older
    folders are deleted after the new index is on disk.  ``entry`` describes the
    version (model, sensor, source, adaptation map, quantisation report).
    Returns the new index.
    """
    root = Path(root)
    old = read_index(root) if is_bundle(root) else None
    version = int(folder.lstrip("v"))
    previous = old["current"] if (old and keep_previous and old["current"] != folder) else None
    versions = {folder: {**entry, "version": version,
                         "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}}
    if previous:
        versions[previous] = old["versions"][previous]
    if not (root / REQUIREMENTS).is_file():
        write_requirements(root)
    files = {REQUIREMENTS: sha256_file(root / REQUIREMENTS)}
    for name in versions:
        for path in sorted((root / name).rglob("*")):
            if path.is_file():
                files[path.relative_to(root).as_posix()] = sha256_file(path)
    history = ([*old.get("history", []), old["current"]] if old else [])[-20:]
    index = {
        "format": BUNDLE_FORMAT, "format_version": BUNDLE_FORMAT_VERSION,
        "tsforge_version": __version__, "version": version, "current": folder,
        "previous": previous, "model": entry.get("model"), "sensor": entry.get("sensor"),
        "versions": versions, "history": history, "files": files,
        "requirements": list(EDGE_REQUIREMENTS),
    }
    atomic_write_bytes(root / INDEX, json.dumps(index, indent=1).encode())
    for child in root.iterdir():
        if child.is_dir() and child.name.startswith("v") and child.name not in versions:
            shutil.rmtree(child)
    return index


def next_folder(root: str | Path) -> str:
    """Folder name of a new version: one above every version the bundle lists (``v0001`` first)."""
    root = Path(root)
    if not is_bundle(root):
        return version_dir(1)
    index = read_index(root)
    return version_dir(max(int(k.lstrip("v")) for k in index["versions"]) + 1)


def promote_previous(root: str | Path, reason: dict[str, Any]) -> dict[str, Any]:
    """Make the previous version current again (a persisted rollback); return the new index.

    The replaced version stays as ``previous``, so the decision can be undone by
    exporting again.  No file other than ``bundle.json`` changes.
    """
    root = Path(root)
    index = verify_bundle(root)
    if not index.get("previous"):
        raise ArtifactError(f"bundle {root} keeps no previous version to roll back to")
    index["current"], index["previous"] = index["previous"], index["current"]
    index["version"] = int(index["current"].lstrip("v"))
    index["history"] = [*index.get("history", []), index["previous"]][-20:]
    index.setdefault("rollbacks", []).append(
        {**reason, "to": index["current"], "from": index["previous"],
         "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    atomic_write_bytes(root / INDEX, json.dumps(index, indent=1).encode())
    return index
