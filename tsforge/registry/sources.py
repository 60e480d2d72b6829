"""What a registration copies: the ONNX file + manifest and/or the ``.npz`` weights.

Both are read without unpickling: the manifest is JSON, the weights are opened with
``allow_pickle=False``.  The model name, config and transform chain recorded in the
version come from these files, so the registry describes exactly what it serves.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from tsforge.errors import ArtifactError
from tsforge.io_utils import sha256_file

#: Fixed names of the registered files inside a version directory.
ONNX_NAME, MANIFEST_NAME, WEIGHTS_NAME = "model.onnx", "model.json", "weights.npz"


def describe_sources(onnx: str | Path | None,
             weights: str | Path | None) -> tuple[dict[str, Path], dict[str, Any]]:
    """Files to copy (target name -> source) and the model, config and transforms they carry.

    Raises :class:`ArtifactError` when the weights are not a tsforge model file or the ONNX
    file does not match its manifest's checksum (nothing broken enters the registry).
    """
    sources: dict[str, Path] = {}
    desc: dict[str, Any] = {}
    if weights is not None:
        wpath = Path(weights)
        try:
            with np.load(wpath, allow_pickle=False) as npz:
                wmeta = json.loads(str(npz["__meta__"]))
        except (OSError, ValueError, KeyError) as exc:
            raise ArtifactError(f"weights {wpath} are not a tsforge model file written by "
                                f"Forecaster.save: {exc}") from exc
        desc = {"model": wmeta["model"], "config": wmeta["config"], "transforms": []}
        sources[WEIGHTS_NAME] = wpath
    if onnx is not None:
        opath = Path(onnx)
        mpath = opath.with_suffix(".json")
        try:
            manifest = json.loads(mpath.read_text())
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"cannot read the manifest {mpath} of {opath}: {exc}; export "
                                "the model with `tsforge export`, which writes both") from exc
        if not opath.exists() or sha256_file(opath) != manifest.get("sha256"):
            raise ArtifactError(f"{opath} is missing or does not match its manifest checksum; "
                                "re-export it before registering")
        desc = {"model": manifest["model"], "config": manifest["config"],
                "transforms": manifest.get("transforms", [])}
        sources[ONNX_NAME], sources[MANIFEST_NAME] = opath, mpath
    return sources, desc
