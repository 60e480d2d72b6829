"""kill -9 at random moments while a process registers, promotes and rolls back.

After every kill the registry must open, and its champion must be a complete version
whose every file passes its checksum and loads in onnxruntime.  100 iterations run
here (a forked writer, killed after a random delay scaled to the measured duration of one
register + promote, keeps each iteration to a fraction of a second);
``benchmarks/registry_crash.py --iterations 2000`` runs more with fresh interpreters.
"""

from __future__ import annotations

import os
import random
import signal
import time

import numpy as np
import pytest
from _linear_onnx import fit_ar, write_linear_ar

from tsforge.registry import Registry, check_registry

pytest.importorskip("onnx")  # the test artifacts are written with onnx.helper

ITERATIONS = 100


def churn(root, paths, seed) -> None:
    """The writer: register, promote and roll back as fast as it can, forever."""
    rng = random.Random(seed)
    reg = Registry(root)
    while True:
        v = reg.register(onnx=rng.choice(paths), metrics={"seed": seed})
        action = rng.random()
        if action < 0.6:
            reg.promote(v.name)
        elif action < 0.8 and reg.previous is not None:
            reg.rollback()


def _forked_op_seconds(root, onnx) -> float:
    """How long a forked writer takes, right now, from fork to one register + promote.

    Timed the way the test's writers run (fork, then the operation), so that the
    kill delays scale with the machine's current load: on a loaded machine a child
    may wait for a core before it writes anything.
    """
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # child: one operation, then exit without returning into pytest
        try:
            reg = Registry(root)
            reg.promote(reg.register(onnx=onnx).name)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    return time.perf_counter() - t0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_kill9_never_breaks_the_registry(tmp_path):
    rng = np.random.default_rng(0)
    y = np.cumsum(rng.standard_normal(500))
    coef, b, m, s = fit_ar(y, 4)
    paths = [write_linear_ar(tmp_path / f"m{i}.onnx", coef * (1 - 0.05 * i), b, m, s)
             for i in range(3)]
    op_seconds = _forked_op_seconds(tmp_path / "probe", paths[0])
    root = tmp_path / "reg"
    Registry(root)
    pick = random.Random(1)
    generations, interrupted = [], 0
    for i in range(ITERATIONS):
        pid = os.fork()
        if pid == 0:  # child: never returns into pytest
            try:
                churn(root, paths, i)
            finally:
                os._exit(0)
        time.sleep(pick.uniform(0.0, 2.5 * op_seconds))  # lands anywhere in the first ops
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        reg = Registry(root)  # opens: the state file is complete and checksum-valid
        state = reg.state()
        generations.append(state["generation"])
        if state["champion"] is not None:
            info = reg.verify()  # every file of the champion matches its checksum
            assert info.stage == "champion"
            assert reg.load_artifact().horizon == 1
        report = check_registry(root)
        committed_bad = [p for p in report.problems
                         if "not committed" not in p and ".staging" not in p]
        assert not committed_bad, committed_bad
        interrupted += not report.ok
    assert generations == sorted(generations) and generations[-1] > 10  # writes happened
    print(f"{ITERATIONS} kills, {interrupted} left an interrupted registration behind, "
          f"{generations[-1]} committed operations")
