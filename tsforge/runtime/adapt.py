"""On-device learning: which learners can keep adapting without torch, and how their
weights map onto the exported ONNX step.

The online learners' learning math is numpy (:mod:`tsforge.models.online`), so the
edge box runs the library's own ``learn_one``: the echo state network's RLS
readout (``esn``) and RTRL/UORO for the tanh RNN (``rtrl``/``uoro`` with
``cell="rnn"``).  Their inference step is exported as ``RNNReadoutCore``
(``h' = (1-leak) h + leak tanh(U x + W h + b)``, ``y = V h' + c``); the arrays
``W, U, b, V, c`` appear among the ONNX initializers, some transposed by the
exporter.  :func:`param_map` finds each one by value at export time (exact
float32 equality), and :func:`updated_initializers` turns adapted learner weights
into the initializer values that :func:`tsforge.runtime.onnx_patch.patch_initializers`
writes into a new bundle version.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tsforge.errors import ArtifactError, ConfigError
from tsforge.runtime.onnx_patch import read_initializers

#: Families that learn on the device with numpy only (``rtrl``/``uoro`` need ``cell="rnn"``).
ADAPTABLE = ("esn", "rtrl", "uoro")


def adaptable(model: Any) -> bool:
    """True when ``model`` (a bare forecaster) can keep learning on a torch-free box."""
    if getattr(model, "name", "") not in ADAPTABLE:
        return False
    return getattr(model.config, "cell", "rnn") == "rnn"


def core_params(model: Any) -> dict[str, np.ndarray]:
    """The arrays of the model's exported step, named as in ``RNNReadoutCore``."""
    if not adaptable(model):
        raise ConfigError(
            f"model '{getattr(model, 'name', model)}' cannot learn on the device; families that "
            f"can: {', '.join(ADAPTABLE)} (rtrl/uoro with cell='rnn')"
        )
    if model.name == "esn":
        W, U, b = model.W_, model.W_in_, model.b_
        V, c = model.W_out_[:, :-1], model.W_out_[:, -1]
    else:
        from tsforge.models.online import rnn

        n = model.config.hidden
        W, U, b = rnn.unpack(model.theta_, n, model.theta_.size // n - n - 1)
        V, c = model._readout()
    return {"W": W, "U": U, "b": b, "V": V, "c": c}


def param_map(onnx_bytes: bytes, params: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """Map each ONNX initializer to the parameter it holds: ``{init: {param, transpose}}``.

    Every parameter must be found exactly once (as itself or transposed), else
    :class:`ArtifactError`: the model could not be adapted safely.
    """
    inits = read_initializers(onnx_bytes)
    found: dict[str, dict[str, Any]] = {}
    for pname, value in params.items():
        v32 = np.asarray(value, dtype=np.float32)
        hits = []
        for iname, arr in inits.items():
            if arr.shape == v32.shape and np.array_equal(arr, v32):
                hits.append((iname, False))
            elif v32.ndim == 2 and arr.shape == v32.T.shape and np.array_equal(arr, v32.T):
                hits.append((iname, True))
        if len(hits) != 1 or hits[0][0] in found:
            raise ArtifactError(
                f"parameter '{pname}' matches {len(hits)} ONNX initializer(s); the exported step "
                "cannot be updated on the device. Export without on-device adaptation."
            )
        found[hits[0][0]] = {"param": pname, "transpose": hits[0][1]}
    return found


def updated_initializers(model: Any, mapping: dict[str, dict[str, Any]]) -> dict[str, np.ndarray]:
    """The initializer values of ``model``'s current weights, per :func:`param_map`."""
    params = core_params(model)
    return {iname: (params[m["param"]].T if m["transpose"] else params[m["param"]])
            for iname, m in mapping.items()}
