"""Summaries of the accuracy benchmark's rows: per-family table, coverage check, headline ratio.

Kept apart from ``accuracy.py`` so that the tables can be rebuilt from a
``rows.jsonl`` without re-running any model.  Aggregation over series uses the
median of MASE (scale-free) and the mean of coverage (what a user of a family
gets on average); MAE and widths are in each series' own units, so they are only
compared within a cell (width relative to the naive forecast's interval).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

BASELINES = ("naive", "seasonal_naive")
PEERS = ("snarimax", "holt_winters", "ets", "arima")
#: Largest |coverage - level| accepted as calibrated (2 points).
TOLERANCE = 0.02
#: "Clearly better": the candidate's MASE at least this share below the reference's.
MARGIN = 0.10


def kind(name: str) -> str:
    if name in BASELINES:
        return "baseline"
    return "peer" if name in PEERS else "tsforge"


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and value is not None else math.nan


def _median(values: list[float]) -> float:
    vals = [v for v in values if math.isfinite(v)]
    return float(np.median(vals)) if vals else math.nan


def clean(obj: Any) -> Any:
    """Non-finite floats -> None, recursively (strict JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    return obj


def progress_line(row: dict[str, Any]) -> str:
    head = f"{row['series']:<44} h={row['horizon']:<3} {row['model']:<15}"
    if "error" in row:
        return head + " FAILED " + row["error"][:120]
    return (head + f" MASE {row['mase']:7.3f}  cov {_num(row.get('coverage_0.8')):.3f}"
            f"/{_num(row.get('coverage_0.95')):.3f}  fit {row['fit_seconds']:6.1f} s"
            f"  {row['us_per_step']:8.0f} µs/step")


def _cells(rows: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, dict[str, Any]]]:
    cells: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
    for r in rows:
        if "error" not in r:
            cells.setdefault((r["series"], r["horizon"]), {})[r["model"]] = r
    return cells


def _family(name: str, rows: list[dict[str, Any]], cells: dict, levels: tuple[float, ...],
            horizons: list[int]) -> dict[str, Any]:
    mine = [r for r in rows if r["model"] == name]
    ok = [r for r in mine if "error" not in r]
    out: dict[str, Any] = {"kind": kind(name), "cells": len(ok),
                           "failed": [f"{r['series']} h={r['horizon']}: {r['error']}"
                                      for r in mine if "error" in r]}
    for h in horizons:
        out[f"mase_h{h}"] = _median([_num(r["mase"]) for r in ok if r["horizon"] == h])
    out["mase"] = _median([_num(r["mase"]) for r in ok])
    worst, where = 0.0, None
    for lvl in levels:
        key = f"{lvl:g}"
        cov = [_num(r.get(f"coverage_{key}")) for r in ok]
        finite = [c for c in cov if math.isfinite(c)]
        out[f"coverage_{key}"] = float(np.mean(finite)) if finite else math.nan
        out[f"no_intervals_{key}"] = len(cov) - len(finite)
        for r, c in zip(ok, cov):
            if math.isfinite(c) and abs(c - lvl) > worst:
                worst, where = abs(c - lvl), f"{r['series']} h={r['horizon']} @{key}"
        ratios = []
        for r in ok:
            ref = cells[(r["series"], r["horizon"])].get("naive")
            if ref is not None:
                ratios.append(_num(r.get(f"width_{key}")) / _num(ref.get(f"width_{key}")))
        out[f"width_vs_naive_{key}"] = _median(ratios)
    pooled = [abs(out[f"coverage_{lvl:g}"] - lvl) for lvl in levels]
    out["pooled_coverage_error"] = max(pooled) if pooled else math.nan
    out["worst_cell_coverage_error"] = worst if ok else math.nan
    out["worst_cell"] = where
    out["cells_over_tolerance"] = sum(
        1 for r in ok for lvl in levels
        if abs(_num(r.get(f"coverage_{lvl:g}")) - lvl) > TOLERANCE)
    out["calibrated"] = bool(ok) and out["pooled_coverage_error"] <= TOLERANCE
    out["fit_seconds"] = _median([_num(r["fit_seconds"]) for r in ok])
    out["us_per_step"] = _median([_num(r["us_per_step"]) for r in ok])
    out["best_in_cells"] = sum(
        1 for models in cells.values()
        if name in models and min(models, key=lambda m: _num(models[m]["mase"])) == name)
    return out


def versus_reference(rows: list[dict[str, Any]], candidate: str) -> dict[str, Any]:
    """``candidate`` against the best baseline or peer of each cell where both ran.

    The reference of a cell is the lowest MASE among naive, seasonal naive and the
    peers (river, statsmodels) that ran there; ``ratio`` = reference MASE /
    candidate MASE (> 1: the candidate is better).  Counts the cells at or below
    the reference and those at least :data:`MARGIN` below it (the issue's goals).
    """
    out: list[dict[str, Any]] = []
    for (series, h), models in sorted(_cells(rows).items()):
        refs = {n: _num(r["mase"]) for n, r in models.items() if kind(n) != "tsforge"}
        refs = {n: v for n, v in refs.items() if math.isfinite(v)}
        mine = _num(models[candidate]["mase"]) if candidate in models else math.nan
        if not refs or not math.isfinite(mine):
            continue
        best = min(refs, key=refs.__getitem__)
        ours = {n: _num(r["mase"]) for n, r in models.items()
                if kind(n) == "tsforge" and n != candidate}
        ours = {n: v for n, v in ours.items() if math.isfinite(v)}
        family = min(ours, key=ours.__getitem__) if ours else None
        out.append({"series": series, "horizon": h, "candidate": mine, "reference": best,
                    "reference_mase": refs[best], "ratio": refs[best] / mine,
                    "best_family": family,
                    "best_family_mase": ours[family] if family else math.nan,
                    "coverage_0.8": _num(models[candidate].get("coverage_0.8")),
                    "coverage_0.95": _num(models[candidate].get("coverage_0.95"))})
    regret = [c["candidate"] / c["best_family_mase"] for c in out
              if math.isfinite(c["best_family_mase"])]
    return {"cells": out, "compared": len(out),
            "regret_median": _median(regret),
            "regret_worst": max(regret) if regret else math.nan,
            "regret_at_or_below_1": sum(r <= 1 for r in regret),
            "at_or_below": sum(c["candidate"] <= c["reference_mase"] for c in out),
            "margin_below": sum(c["candidate"] <= (1 - MARGIN) * c["reference_mase"]
                                for c in out)}


def summarise(rows: list[dict[str, Any]], names: list[str],
              levels: tuple[float, ...]) -> dict[str, Any]:
    """Per-family figures, the coverage check and the headline ratio."""
    cells = _cells(rows)
    horizons = sorted({h for _, h in cells})
    families = {n: _family(n, rows, cells, levels, horizons) for n in names}
    ours = [n for n in names if kind(n) == "tsforge" and families[n]["cells"]]
    if "auto" in ours:
        candidate, label = "auto", "auto"
    elif ours:
        candidate = min(ours, key=lambda n: families[n]["mase"])
        label = (f"{candidate}: best single tsforge family by median MASE "
                 "('auto' is not registered)")
    else:
        candidate, label = None, None
    ratios, oracle = [], []
    for models in cells.values():
        base = models.get("seasonal_naive")
        if base is None:
            continue
        if candidate in models:
            ratios.append(_num(base["mase"]) / _num(models[candidate]["mase"]))
        best = [_num(models[n]["mase"]) for n in ours if n in models]
        if best:
            oracle.append(_num(base["mase"]) / min(best))
    return {"families": families, "candidate": candidate, "candidate_label": label,
            "versus_reference": versus_reference(rows, candidate) if candidate else None,
            "ratio": _median(ratios), "ratio_oracle": _median(oracle), "cells": len(cells),
            "horizons": horizons,
            "series": sorted({s for s, _ in cells})}


def _f(value: Any, fmt: str) -> str:
    v = _num(value)
    return format(v, fmt) if math.isfinite(v) else "–"


def markdown(rows: list[dict[str, Any]], summary: dict[str, Any],
             settings: dict[str, Any]) -> str:
    """Headline table (one row per family), coverage check and per-cell MASE."""
    levels = settings["levels"]
    hs = summary["horizons"]
    head = (["family", "kind", "cells"] + [f"MASE h={h}" for h in hs]
            + [f"cov {lvl:g}" for lvl in levels] + ["worst cell error"]
            + [f"width {lvl:g} / naive" for lvl in levels]
            + ["fit s", "µs/step", "best in cells"])
    lines = [f"Mode `{settings['mode']['name']}`: {len(summary['series'])} series x "
             f"horizons {hs}, {summary['cells']} cells; medians over cells for MASE, fit s "
             "and µs/step, means for coverage.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    fams = summary["families"]
    for name, f in sorted(fams.items(), key=lambda kv: _num(kv[1]["mase"])):
        if not f["cells"]:
            continue
        cols = ([name, f["kind"], str(f["cells"])] + [_f(f[f"mase_h{h}"], ".3f") for h in hs]
                + [_f(f[f"coverage_{lvl:g}"], ".3f") for lvl in levels]
                + [_f(f["worst_cell_coverage_error"], ".3f")]
                + [_f(f[f"width_vs_naive_{lvl:g}"], ".2f") for lvl in levels]
                + [_f(f["fit_seconds"], ".2f"), _f(f["us_per_step"], ".0f"),
                   str(f["best_in_cells"])])
        lines.append("| " + " | ".join(cols) + " |")
    lines += ["", f"Coverage check (mean coverage over cells within {TOLERANCE:.2f} of each "
              "level; the worst single cell is shown as well):", "",
              "| family | calibrated | pooled error | worst cell | cells over 2 pts |",
              "|---|---|---|---|---|"]
    for name, f in fams.items():
        if f["cells"]:
            lines.append(f"| {name} | {'yes' if f['calibrated'] else 'NO'} | "
                         f"{_f(f['pooled_coverage_error'], '.3f')} | "
                         f"{_f(f['worst_cell_coverage_error'], '.3f')} ({f['worst_cell']}) | "
                         f"{f['cells_over_tolerance']} of {len(levels) * f['cells']} |")
    vs = summary.get("versus_reference")
    if vs and vs["compared"]:
        lines += ["", f"`{summary['candidate']}` against the best baseline or peer of each cell "
                  f"(ratio = reference MASE / {summary['candidate']} MASE): at or below it in "
                  f"{vs['at_or_below']} of {vs['compared']} cells, {MARGIN:.0%} or more below "
                  f"it in {vs['margin_below']}. Against the best other tsforge family of "
                  "each cell in hindsight (regret = candidate MASE / that family's): median "
                  f"{_f(vs['regret_median'], '.3f')}, worst {_f(vs['regret_worst'], '.3f')}, "
                  f"at or below 1 in {vs['regret_at_or_below_1']} cells.", "",
                  f"| series | h | {summary['candidate']} | best reference | ratio | best "
                  "tsforge family | cov 0.8 | cov 0.95 |", "|---|---|---|---|---|---|---|---|"]
        for c in vs["cells"]:
            lines.append(f"| {c['series']} | {c['horizon']} | {c['candidate']:.3f} | "
                         f"{c['reference']} {c['reference_mase']:.3f} | {c['ratio']:.2f} | "
                         f"{c['best_family']} {_f(c['best_family_mase'], '.3f')} | "
                         f"{_f(c['coverage_0.8'], '.3f')} | {_f(c['coverage_0.95'], '.3f')} |")
    failed = [(n, msg) for n, f in fams.items() for msg in f["failed"]]
    if failed:
        lines += ["", "Failed cells:", ""] + [f"- {n}: {m}" for n, m in failed]
    names = [n for n in fams if fams[n]["cells"]]
    lines += ["", "MASE per cell:", "", "| series | h | " + " | ".join(names) + " |",
              "|---|---|" + "---|" * len(names)]
    for (s, h), models in sorted(_cells(rows).items()):
        vals = [_f(models[n]["mase"], ".3f") if n in models else "–" for n in names]
        lines.append(f"| {s} | {h} | " + " | ".join(vals) + " |")
    return "\n".join(lines) + "\n"


def last_line(summary: dict[str, Any], settings: dict[str, Any], out: Path) -> dict[str, Any]:
    fams = summary["families"]
    return clean({
        "benchmark": "accuracy", "mode": settings["mode"]["name"],
        "baseline": "seasonal_naive", "candidate": summary["candidate_label"],
        "ratio": summary["ratio"],
        "candidate_cells": fams[summary["candidate"]]["cells"] if summary["candidate"] else 0,
        "ratio_meaning": "median over series x horizons of seasonal-naive MASE / candidate MASE",
        "ratio_oracle_best_tsforge_per_cell": summary["ratio_oracle"],
        "cells": summary["cells"], "series": len(summary["series"]),
        "median_mase": {n: f["mase"] for n, f in fams.items() if f["cells"]},
        "calibrated_within_2pts": {n: f["calibrated"] for n, f in fams.items() if f["cells"]},
        "pooled_coverage_error": {n: f["pooled_coverage_error"]
                                  for n, f in fams.items() if f["cells"]},
        "worst_cell_coverage_error": {n: f["worst_cell_coverage_error"]
                                      for n, f in fams.items() if f["cells"]},
        "failed_cells": sum(len(f["failed"]) for f in fams.values()),
        "candidate_at_or_below_reference": (summary["versus_reference"] or {}).get(
            "at_or_below"),
        "candidate_10pct_below_reference": (summary["versus_reference"] or {}).get(
            "margin_below"),
        "cells_compared_with_reference": (summary["versus_reference"] or {}).get("compared"),
        "candidate_regret_vs_best_family_median": (summary["versus_reference"] or {}).get(
            "regret_median"),
        "seconds": settings.get("seconds"), "table": str(out / "accuracy.md"),
    })
