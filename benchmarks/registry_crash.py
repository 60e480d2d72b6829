"""kill -9 a writer at random moments, many times, with fresh interpreters each time.

The CI test (``tests/test_registry_crash.py``) runs 100 kills of a forked writer; this
script runs as many as asked, each writer a new ``python`` process killed by SIGKILL
after a random delay once it has started writing.  Side by side:

- baseline: a naive store (files written in place, ``state.json`` rewritten with
  ``json.dump`` into the open file, no temporary files, no checksums);
- candidate: :class:`tsforge.registry.Registry`.

After each kill the store is checked: the state must parse and name a champion whose
files are complete (ONNX bytes match the manifest checksum).

    python benchmarks/registry_crash.py [--quick] [--iterations N]

Last line: JSON with the broken fraction of each and ratio = candidate / baseline.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

WRITER = textwrap.dedent("""
    import json, random, shutil, sys
    from pathlib import Path
    mode, root, seed, *paths = sys.argv[1:]
    rng, root = random.Random(int(seed)), Path(root)
    print("ready", flush=True)
    if mode == "candidate":
        from tsforge.registry import Registry
        reg = Registry(root)
        while True:
            v = reg.register(onnx=rng.choice(paths))
            if rng.random() < 0.7:
                reg.promote(v.name)
            elif reg.previous is not None:
                reg.rollback()
    state_path = root / "state.json"
    while True:  # the naive store
        state = json.loads(state_path.read_text()) if state_path.exists() else {"versions": []}
        name = f"v{len(state['versions']) + 1:04d}"
        src = Path(rng.choice(paths))
        (root / name).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, root / name / "model.onnx")
        shutil.copyfile(src.with_suffix(".json"), root / name / "model.json")
        state["versions"].append(name)
        state["champion"] = name
        with open(state_path, "w") as fh:
            json.dump(state, fh, indent=1)
""")


def make_artifacts(tmp: Path) -> list[str]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from _linear_onnx import fit_ar, write_linear_ar

    y = np.cumsum(np.random.default_rng(0).standard_normal(500))
    coef, b, m, s = fit_ar(y, 4)
    return [str(write_linear_ar(tmp / f"m{i}.onnx", coef * (1 - 0.05 * i), b, m, s))
            for i in range(3)]


def healthy(mode: str, root: Path) -> bool:
    """The store opens and its champion is complete and checksum-valid."""
    if mode == "candidate":
        from tsforge.errors import TsforgeError
        from tsforge.registry import Registry

        try:
            reg = Registry(root)
            if reg.champion is not None:
                reg.verify()
            return True
        except TsforgeError:
            return False
    try:
        state = json.loads((root / "state.json").read_text())
    except FileNotFoundError:
        return True  # nothing committed yet
    except ValueError:
        return False
    champ = root / state.get("champion", "")
    try:
        manifest = json.loads((champ / "model.json").read_text())
        data = (champ / "model.onnx").read_bytes()
    except (OSError, ValueError):
        return False
    return hashlib.sha256(data).hexdigest() == manifest.get("sha256")


def run(mode: str, iterations: int, paths: list[str], tmp: Path) -> dict[str, float]:
    root = tmp / mode
    pick = random.Random(7)
    broken = 0
    t0 = time.perf_counter()
    for i in range(iterations):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, mode, str(root), str(i), *paths],
                                stdout=subprocess.PIPE, text=True)
        proc.stdout.readline()  # "ready": imports done, writes start now
        time.sleep(pick.uniform(0.0, 0.25))
        proc.kill()  # SIGKILL
        proc.wait()
        proc.stdout.close()
        if not healthy(mode, root):
            broken += 1
            if mode == "baseline":  # start the naive store afresh so later kills count
                import shutil

                shutil.rmtree(root, ignore_errors=True)
    return {"iterations": iterations, "broken": broken, "broken_fraction": broken / iterations,
            "seconds": time.perf_counter() - t0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--iterations", type=int, default=None)
    args = parser.parse_args()
    n = args.iterations or (40 if args.quick else 300)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        paths = make_artifacts(tmp)
        res = {mode: run(mode, n, paths, tmp) for mode in ("baseline", "candidate")}
    for mode, r in res.items():
        print(f"{mode:<10} {r['iterations']} kills: {r['broken']} left the store broken "
              f"({r['seconds']:.0f} s)")
    base = res["baseline"]["broken_fraction"]
    print(json.dumps({
        "benchmark": "registry_crash",
        "baseline": "naive in-place writes", "candidate": "tsforge.registry",
        "ratio": res["candidate"]["broken_fraction"] / base if base else None,
        "baseline_broken": res["baseline"]["broken"],
        "candidate_broken": res["candidate"]["broken"],
        "iterations": n, "quick": args.quick,
    }))


if __name__ == "__main__":
    main()
