"""The model registry: immutable versions, stages, promote and rollback (numpy only).

Writers take the directory's single-writer lock, re-read the state, build the new
state and commit it by one atomic rename of ``state.json`` (metadata last: version
files are complete and fsynced in their final directory before the state names them).
Readers take no lock.  See :mod:`tsforge.registry.layout` for the files and
``docs/registry.md`` for the crash-safety argument.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tsforge._version import __version__
from tsforge.errors import ArtifactError, ConfigError
from tsforge.io_utils import atomic_write_bytes, durable_copy, fsync_dir
from tsforge.registry import layout
from tsforge.registry.lock import WriterLock
from tsforge.registry.names import validate_version
from tsforge.registry.sources import ONNX_NAME, WEIGHTS_NAME, describe_sources

_AUTO = re.compile(r"^v(\d+)$")


@dataclass(frozen=True)
class VersionInfo:
    """What the registry knows about one version (``version.json`` plus its stage)."""

    name: str
    stage: str
    family: str
    model: str
    config: dict[str, Any]
    transforms: list[dict[str, Any]]
    data_window: dict[str, Any]
    metrics: dict[str, Any]
    parent: str | None
    created: str
    checksum: str
    files: dict[str, dict[str, Any]]
    path: Path
    has_onnx: bool
    has_weights: bool
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def onnx_path(self) -> Path | None:
        return self.path / ONNX_NAME if self.has_onnx else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path)}


class Registry:
    """A versioned model store in the directory ``root``.

    Parameters
    ----------
    root
        Registry directory; created (with an empty state) when it does not exist.
    create
        False: raise instead of creating a missing registry (read-only commands).
    lock_timeout
        Seconds a writer waits for another writer before giving up.

    Examples
    --------
    >>> reg = Registry("models-registry")                        # doctest: +SKIP
    >>> v = reg.register(onnx="mlp.onnx", metrics={"mae": 0.41})  # doctest: +SKIP
    >>> reg.promote(v.name)                                      # doctest: +SKIP
    >>> artifact = reg.load_artifact()          # verified champion  # doctest: +SKIP
    """

    def __init__(self, root: str | Path, *, create: bool = True,
                 lock_timeout: float = 30.0) -> None:
        self.root = Path(root)
        self.lock_timeout = lock_timeout
        if not (self.root / layout.STATE_FILE).exists():
            if not create and not (self.root / layout.VERSIONS_DIR).exists():
                raise ConfigError(f"no model registry at {self.root}; register a model first "
                                  "(`tsforge models register --root DIR --onnx FILE`) or pass "
                                  "the right --root")
            self._initialise()

    def _initialise(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        with self._lock():
            if (self.root / layout.STATE_FILE).exists():
                return
            versions = self.root / layout.VERSIONS_DIR
            if (self.root / layout.PREV_STATE_FILE).exists() or (
                    versions.exists() and any(versions.iterdir())):
                layout.read_state(self.root)  # raises the corrupt-registry error with the fix
            (versions).mkdir(exist_ok=True)
            layout.write_state(self.root, None, layout.empty_state())
            fsync_dir(self.root)

    @contextmanager
    def _lock(self) -> Iterator[None]:
        with WriterLock(self.root / layout.LOCK_FILE, self.lock_timeout):
            self._clear_staging()
            yield

    def _clear_staging(self) -> None:
        """Remove what a writer that died left behind (we hold the lock, so it is dead).

        That is everything in ``.staging`` and every version directory the state does not
        name: it was renamed into place but its commit never happened, so no reader was
        ever shown it.
        """
        staging = self.root / layout.STAGING_DIR
        versions = self.root / layout.VERSIONS_DIR
        if versions.exists() and (self.root / layout.STATE_FILE).exists():
            committed = self.state()["versions"]
            for entry in versions.iterdir():
                if entry.name not in committed:  # moved out in one rename, then deleted
                    staging.mkdir(exist_ok=True)
                    os.rename(entry, staging / f"orphan.{entry.name}.{uuid.uuid4().hex[:8]}")
        if staging.exists():
            for entry in staging.iterdir():
                shutil.rmtree(entry, ignore_errors=True)

    # ------------------------------------------------------------------ reading
    def state(self) -> dict[str, Any]:
        """The committed state (verified; raises :class:`RegistryCorruptError` if broken)."""
        return layout.read_state(self.root)

    @property
    def champion(self) -> str | None:
        """Name of the version currently served, None before the first promotion."""
        return self.state()["champion"]

    @property
    def previous(self) -> str | None:
        """The version a rollback returns to (the most recent earlier champion)."""
        history = self.state()["history"]
        return history[-1] if history else None

    @property
    def history(self) -> list[str]:
        """Earlier champions, oldest first (rollback pops from the end)."""
        return list(self.state()["history"])

    def show(self, version: str, *, state: dict[str, Any] | None = None) -> VersionInfo:
        """Metadata of ``version`` (its ``version.json`` checked against the state)."""
        state = self.state() if state is None else state
        validate_version(version)
        entry = state["versions"].get(version)
        if entry is None:
            raise ConfigError(
                f"no version '{version}' in registry {self.root}; registered: "
                f"{', '.join(state['versions']) or '(none)'}"
            )
        meta = layout.read_version_meta(self.root, version, entry["meta_sha256"])
        return _info(meta, entry["stage"], layout.version_dir(self.root, version))

    def list(self) -> list[VersionInfo]:
        """Every committed version, oldest first."""
        state = self.state()
        return [self.show(v, state=state) for v in state["versions"]]

    def verify(self, version: str | None = None) -> VersionInfo:
        """Check every file of ``version`` (default: the champion) against its checksum."""
        version = version or self._require_champion()
        info = self.show(version)
        layout.verify_files(self.root, version, {"files": info.files})
        return info

    def load_artifact(self, version: str | None = None, *, threads: int = 1) -> Any:
        """Verify and load ``version``'s ONNX step (default: the champion), torch-free.

        Returns a :class:`tsforge.runtime.Artifact`; raises
        :class:`~tsforge.errors.ArtifactError` for a tampered or truncated file.
        """
        from tsforge.runtime.artifact import load_artifact

        info = self.verify(version)
        if info.onnx_path is None:
            raise ArtifactError(
                f"version '{info.name}' has no ONNX file (weights only); load it with "
                "Registry.load_forecaster in the library, or register an exported model"
            )
        return load_artifact(info.onnx_path, threads=threads)

    def load_forecaster(self, version: str | None = None) -> Any:
        """Verify and load ``version``'s weights as a library forecaster (no pickles)."""
        from tsforge.models.base import load_forecaster

        info = self.verify(version)
        if not info.has_weights:
            raise ArtifactError(f"version '{info.name}' was registered without weights")
        return load_forecaster(info.path / WEIGHTS_NAME)

    def diff(self, a: str, b: str) -> dict[str, dict[str, Any]]:
        """Metrics of two versions side by side: ``{metric: {a, b, delta, ratio}}``."""
        ma, mb = self.show(a).metrics, self.show(b).metrics
        out: dict[str, dict[str, Any]] = {}
        for key in sorted(set(ma) | set(mb)):
            va, vb = ma.get(key), mb.get(key)
            row: dict[str, Any] = {a: va, b: vb}
            if isinstance(va, (int, float)) and isinstance(vb, (int, float)):
                row["delta"] = vb - va
                row["ratio"] = vb / va if va else None
            out[key] = row
        return out

    def events(self) -> list[dict[str, Any]]:
        """The audit log: register/promote/rollback/recover records, oldest first."""
        return layout.read_events(self.root)

    def _require_champion(self) -> str:
        champ = self.champion
        if champ is None:
            raise ConfigError(f"registry {self.root} has no champion yet; promote a version "
                              "with `tsforge models promote VERSION`")
        return champ

    # ------------------------------------------------------------------ writing
    def register(
        self,
        onnx: str | Path | None = None,
        weights: str | Path | None = None,
        *,
        name: str | None = None,
        family: str | None = None,
        metrics: dict[str, Any] | None = None,
        data_window: dict[str, Any] | None = None,
        parent: str | None = "champion",
        notes: str = "",
        extra: dict[str, Any] | None = None,
    ) -> VersionInfo:
        """Add a new immutable version (stage ``candidate``) and return it.

        Parameters
        ----------
        onnx
            An exported ``model.onnx``; its manifest ``model.json`` beside it is required
            and its checksum is checked now.  Config and transform chain come from it.
        weights
            A ``.npz`` written by :meth:`Forecaster.save` (read without pickles).
        name
            Version name (validated); default ``v0001``, ``v0002``, ...
        family, metrics, data_window, notes, extra
            Recorded as given; ``family`` defaults to the model's registry name.
        parent
            Version this one descends from; ``"champion"`` (default) means the current one.
        """
        if onnx is None and weights is None:
            raise ConfigError("register needs an ONNX file (onnx=...) and/or weights (weights=...)")
        sources, desc = describe_sources(onnx, weights)
        _json_ok(metrics, "metrics")
        _json_ok(data_window, "data_window")
        _json_ok(extra, "extra")
        with self._lock():
            state = self.state()
            name = self._next_name(state) if name is None else validate_version(name)
            final = layout.version_dir(self.root, name)
            if name in state["versions"]:
                raise ConfigError(f"version '{name}' already exists; versions are immutable, "
                                  "choose another name")
            if parent == "champion":
                parent = state["champion"]
            elif parent is not None and validate_version(parent) not in state["versions"]:
                raise ConfigError(f"parent version '{parent}' is not registered")
            tag = f"{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
            staging = self.root / layout.STAGING_DIR / tag
            staging.mkdir(parents=True)
            files = {}
            for target, src in sources.items():
                digest = durable_copy(src, staging / target)
                files[target] = {"sha256": digest, "size": (staging / target).stat().st_size}
            meta = {
                "format": layout.FORMAT, "name": name, "family": family or desc["model"],
                "model": desc["model"], "config": desc["config"],
                "transforms": desc["transforms"], "data_window": data_window or {},
                "metrics": metrics or {}, "parent": parent, "notes": notes,
                "extra": extra or {}, "tsforge_version": __version__,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "files": files,
            }
            meta["checksum"] = _checksum(files)
            meta_bytes = json.dumps(meta, indent=1, sort_keys=True).encode()
            atomic_write_bytes(staging / layout.VERSION_FILE, meta_bytes)
            fsync_dir(staging)
            final.parent.mkdir(exist_ok=True)
            os.rename(staging, final)
            fsync_dir(final.parent)
            new = _copy(state)
            new["versions"][name] = {"stage": "candidate",
                                     "meta_sha256": _sha(meta_bytes),
                                     "registered": meta["created"]}
            committed = layout.write_state(self.root, state, new)
            self._log(committed, "register", version=name, parent=parent)
        return self.show(name)

    def promote(self, version: str, *, reason: str = "manual",
                evidence: dict[str, Any] | None = None) -> VersionInfo:
        """Make ``version`` the champion after verifying its files; the old one is archived.

        A version whose files fail verification is refused and the champion is unchanged.
        """
        with self._lock():
            self._promote_locked(self.state(), version, reason, evidence)
        return self.show(version)

    def rollback(self, to: str | None = None, *, reason: str = "manual",
                 evidence: dict[str, Any] | None = None) -> VersionInfo:
        """Replace the champion by ``to`` (default: the previous champion) after verifying it.

        The rolled-back champion gets stage ``rejected``; the target must pass its checksum
        check, else nothing changes and the error names the bad file.
        """
        with self._lock():
            target = self._rollback_locked(self.state(), to, reason, evidence)
        return self.show(target)

    def apply(self, event: Any) -> VersionInfo | None:
        """Apply a monitor decision (``promote``/``rollback``; others are ignored).

        Checked and applied under the writer lock, so it is idempotent for concurrent
        workers: if the registry already serves the event's target, nothing changes.  If it
        serves a third version, the event is stale and a :class:`ConfigError` says so.
        """
        if event.kind not in ("promote", "rollback"):
            return None
        with self._lock():
            state = self.state()
            champ = state["champion"]
            if champ != event.to_version:
                if champ != event.from_version:
                    raise ConfigError(
                        f"stale {event.kind} event: it expects champion '{event.from_version}'"
                        f", the registry serves '{champ}'; reload the registry state and "
                        "monitor again"
                    )
                if event.kind == "promote":
                    self._promote_locked(state, event.to_version, event.reason,
                                         event.to_dict())
                else:
                    self._rollback_locked(state, event.to_version, event.reason,
                                          event.to_dict())
        return self.show(event.to_version)

    def _promote_locked(self, state: dict[str, Any], version: str, reason: str,
                        evidence: dict[str, Any] | None) -> None:
        self.verify_in(state, version)
        old = state["champion"]
        if old == version:
            return
        new = _copy(state)
        if old is not None:
            new["versions"][old]["stage"] = "archived"
            new["history"] = [h for h in new["history"] if h != version] + [old]
        new["versions"][version]["stage"] = "champion"
        new["champion"] = version
        committed = layout.write_state(self.root, state, new)
        self._log(committed, "promote", version=version, previous=old, reason=reason,
                  evidence=evidence)

    def _rollback_locked(self, state: dict[str, Any], to: str | None, reason: str,
                         evidence: dict[str, Any] | None) -> str:
        old = state["champion"]
        if old is None:
            raise ConfigError("nothing to roll back: the registry has no champion")
        target = to if to is not None else (state["history"][-1] if state["history"] else None)
        if target is None:
            raise ConfigError(f"cannot roll back {old}: no earlier champion is recorded; "
                              "promote a version explicitly")
        if target == old:
            raise ConfigError(f"'{target}' is already the champion")
        self.verify_in(state, target)
        new = _copy(state)
        new["versions"][old]["stage"] = "rejected"
        new["versions"][target]["stage"] = "champion"
        new["history"] = [h for h in new["history"] if h not in (target, old)]
        new["champion"] = target
        committed = layout.write_state(self.root, state, new)
        self._log(committed, "rollback", version=target, previous=old, reason=reason,
                  evidence=evidence)
        return target

    def verify_in(self, state: dict[str, Any], version: str) -> VersionInfo:
        """Verify ``version`` as named in ``state`` (files and metadata checksums)."""
        info = self.show(version, state=state)
        layout.verify_files(self.root, version, {"files": info.files})
        return info

    def _next_name(self, state: dict[str, Any]) -> str:
        used = list(state["versions"])
        vdir = self.root / layout.VERSIONS_DIR
        if vdir.exists():
            used += [p.name for p in vdir.iterdir()]
        numbers = [int(m.group(1)) for m in map(_AUTO.match, used) if m]
        return f"v{max(numbers, default=0) + 1:04d}"

    def _log(self, state: dict[str, Any], action: str, **fields: Any) -> None:
        layout.append_event(self.root, {"generation": state["generation"], "action": action,
                                   "time": time.time(), "champion": state["champion"],
                                   **fields})


def _info(meta: dict[str, Any], stage: str, path: Path) -> VersionInfo:
    return VersionInfo(
        name=meta["name"], stage=stage, family=meta["family"], model=meta["model"],
        config=meta["config"], transforms=meta["transforms"], data_window=meta["data_window"],
        metrics=meta["metrics"], parent=meta["parent"], created=meta["created"],
        checksum=meta["checksum"], files=meta["files"], path=path,
        has_onnx=ONNX_NAME in meta["files"], has_weights=WEIGHTS_NAME in meta["files"],
        notes=meta.get("notes", ""), extra=meta.get("extra", {}),
    )


def _checksum(files: dict[str, dict[str, Any]]) -> str:
    return _sha(layout.canonical(files))


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _copy(state: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(state))


def _json_ok(value: Any, what: str) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what} must be JSON-serialisable with finite numbers: {exc}") from exc
