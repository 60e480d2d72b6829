"""Write what the device learned into a new bundle version, without torch or onnx.

The new version's ``model.onnx`` is the current one with the learner's updated
weights written over its initializers (:mod:`tsforge.runtime.onnx_patch`), and
its manifest carries the sensor's live state: model state, transform chain and
interval residuals, so a restart (or another box) continues exactly where this
one stopped.  Before the version is committed, the patched step is streamed
beside a copy of the numpy learner; a gap above the tolerance refuses the write.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import numpy as np

from tsforge.errors import ArtifactError
from tsforge.io_utils import atomic_write_bytes, sha256_file
from tsforge.runtime import bundle as layout
from tsforge.runtime.adapt import updated_initializers
from tsforge.runtime.artifact import _ort, session_options
from tsforge.runtime.onnx_patch import patch_initializers


def check_patched(onnx_bytes: bytes, learner: Any, steps: int = 64, seed: int = 0) -> float:
    """Max |forecast gap| between the patched ONNX step and the numpy learner over a stream.

    Both start from the learner's current state and see the same random inputs;
    the learner is copied, so the live one is not advanced.
    """
    ort = _ort()
    session = ort.InferenceSession(onnx_bytes, sess_options=session_options(1),
                                   providers=["CPUExecutionProvider"])
    twin = copy.deepcopy(learner)
    state = np.asarray(twin.stream_state(), dtype=np.float32)[None]
    rng = np.random.default_rng(seed)
    gap = 0.0
    for row in rng.standard_normal((steps, 1 + (twin.n_covariates_ or 0))):
        y, state = session.run(None, {"x": row[None].astype(np.float32), "state": state})
        twin.update(float(row[0]), row[1:])
        gap = max(gap, float(np.max(np.abs(y[0] - twin.forecast().mean))))
    return gap


def save_adapted(bundle: layout.Bundle, runtime: Any, tolerance: float = 1e-4) -> dict[str, Any]:
    """Commit the runtime's learner as the next version of ``bundle``; return the new index.

    The current version becomes the previous one (the rollback target).  Raises
    :class:`ArtifactError` when the bundle carries no learner or the patched
    step disagrees with the learner.
    """
    entry = bundle.version_entry()
    adaptation = entry.get("adaptation")
    if adaptation is None or runtime.learner is None:
        raise ArtifactError(f"bundle {bundle.root} version {bundle.index['current']} has no "
                            "online learner; export an esn, rtrl or uoro (cell 'rnn') model")
    learner = runtime.learner
    src = bundle.root / bundle.index["current"]
    patched = patch_initializers((src / "model.onnx").read_bytes(),
                                 updated_initializers(learner, adaptation["map"]))
    gap = check_patched(patched, learner)
    if not gap <= tolerance:
        raise ArtifactError(f"updated ONNX step differs from the learner by {gap:.3g} (tolerance "
                            f"{tolerance:g}); the adapted version was not written")
    folder = layout.next_folder(bundle.root)
    dst = bundle.root / folder
    atomic_write_bytes(dst / "model.onnx", patched)
    readings = int(adaptation.get("readings", 0)) + runtime.learned
    meta = dict(bundle.current.meta)
    meta.update(sha256=sha256_file(dst / "model.onnx"), onnx_file="model.onnx",
                stream_state=np.asarray(learner.stream_state()).tolist(),
                bundle_version=int(folder[1:]), adapted_readings=readings,
                parity={"steps": 64, "max_abs_error": gap, "tolerance": tolerance,
                        "reference": "numpy learner on the device"})
    st = runtime.sensors.get(runtime.learner_sensor)
    if st is not None:
        meta["transforms"] = st.chain.to_spec()
        if st.conformal is not None:
            meta["intervals"] = st.conformal.to_json()
    meta.pop("quantization", None)
    atomic_write_bytes(dst / "model.json", json.dumps(meta, indent=1).encode())
    learner.save(dst / "learner.npz")
    new_entry = {
        "model": entry.get("model"), "sensor": entry.get("sensor"),
        "source": "on-device adaptation", "parent": bundle.index["current"],
        "parity": {"steps": 64, "max_abs_error": gap},
        "adaptation": {**adaptation, "readings": readings},
    }
    return layout.commit_version(bundle.root, folder, new_entry)
