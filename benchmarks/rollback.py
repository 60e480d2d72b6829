"""Automatic rollback on real data: NAB machine temperature (bundled).

A lag MLP fitted on the first 3000 readings is registered and promoted (v0001); a
deliberately degraded copy (scale step mis-calibrated by one standard deviation) is
registered and promoted by mistake (v0002).  The rest of the stream, which runs into
the machine's known failure, is served through ``MonitoredServing`` with the default
rule.  Measured side by side on the same stream:

- baseline: the degraded version served alone (what happens without the monitor);
- candidate: monitored serving, which rolls back to v0001.

Also measured: a second pass with v0001 as champion and the degraded copy as shadow
challenger (the rule must not promote it), the monitor's own cost per reading, and
how often the default rule switches among three equally good models (synthetic errors).

    python benchmarks/rollback.py [--quick] [--alpha 0.01]

Last line: JSON with ratio = champion MAE after rollback / degraded MAE (same readings),
readings and seconds from alarm to rollback.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np

from tsforge.monitor import Monitor, MonitorConfig
from tsforge.monitor.pipeline import MonitoredServing
from tsforge.monitor.scenario import SENSOR, build_versions, load_nab_temperature, run_scenario
from tsforge.registry import Registry

TRAIN = 3000


def false_switches(readings: int, seeds: int, shared: float, config: MonitorConfig) -> int:
    """Switches of the rule among three equally good models (synthetic errors).

    Each model's error is ``shared * common + (1 - shared) * own`` (Laplace noise):
    ``shared = 0`` is the worst case of independent errors; forecasters of one stream
    share much of their error (the reading's own surprise), ``shared = 0.7`` here.
    """
    count = 0
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        common = rng.laplace(0.0, 1.0, readings)
        errs = {v: shared * common + (1 - shared) * rng.laplace(0.0, 1.0, readings)
                for v in ("v1", "v2", "v3")}
        mon = Monitor("v2", previous="v1", challenger="v3", config=config)
        count += sum(e.switches for e in mon.observe_batch(errs))
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--alpha", type=float, default=MonitorConfig().alpha,
                        help="level of the monitor's paired test (default: the rule's default)")
    args = parser.parse_args()
    config = MonitorConfig(alpha=args.alpha)
    ts, y = load_nab_temperature()
    n = 5000 if args.quick else y.shape[0] - TRAIN
    ys, stamps = y[TRAIN:TRAIN + n], ts[TRAIN:TRAIN + n]
    with tempfile.TemporaryDirectory() as tmp:
        reg = Registry(f"{tmp}/reg")
        t0 = time.perf_counter()
        good, bad = build_versions(reg, y, TRAIN, f"{tmp}/work", epochs=2 if args.quick else 5,
                                   timestamps=ts)
        build_s = time.perf_counter() - t0
        reg.promote(good)
        reg.promote(bad)
        result = run_scenario(reg, ys, stamps, config=config)
        fig = result.figures(ys, good, bad)
        whole = {v: float(np.mean(np.abs(f[:-1, 0] - ys[1:])))
                 for v, f in result.standalone.items()}
        served_whole = float(np.mean(np.abs(result.report.forecasts[:-1, 0] - ys[1:])))
        # Second pass: the good champion with the degraded copy in shadow.
        shadow = MonitoredServing(reg, SENSOR, challenger=bad, config=config,
                                  apply_to_registry=False)
        shadow_events = shadow.run(ys).events
        false_promotions = sum(e.kind == "promote" for e in shadow_events)
        # Monitor cost per reading on the recorded errors of both versions.
        errs = {v: f[:-1, 0] - ys[1:] for v, f in result.standalone.items()}
        mon = Monitor(good, previous=bad, config=MonitorConfig(alpha=args.alpha, cooldown=10**9))
        t0 = time.perf_counter()
        mon.observe_batch(errs)
        monitor_us = (time.perf_counter() - t0) / (n - 1) * 1e6
    print(f"NAB machine temperature, {n} readings served after {TRAIN} for training "
          f"(models built in {build_s:.1f} s)")
    fs_readings, fs_seeds = (20_000, 2) if args.quick else (50_000, 4)
    fs = {str(c): false_switches(fs_readings, fs_seeds, c, config) for c in (0.0, 0.7)}
    print(f"{'':34}{'MAE whole stream':>18}{'MAE after rollback':>20}")
    print(f"{'baseline: degraded served alone':34}{whole[bad]:18.4f}"
          f"{fig.get('mae_degraded_after_rollback', float('nan')):20.4f}")
    print(f"{'candidate: monitored, rolled back':34}{served_whole:18.4f}"
          f"{fig.get('mae_served_after_rollback', float('nan')):20.4f}")
    print(f"{'reference: v0001 alone':34}{whole[good]:18.4f}"
          f"{fig.get('mae_champion_after_rollback', float('nan')):20.4f}")
    if fig["rolled_back"]:
        print(f"alarm -> rollback: {fig['readings_from_alarm_to_rollback']} readings, "
              f"{fig['seconds_from_alarm_to_rollback']:.3f} s wall clock "
              f"({fig['stream_minutes_from_alarm_to_rollback']:.0f} min of stream time); "
              f"rollback at reading {fig['rollback_at_reading']}, p={fig['p_value']:.2g}")
    print(f"shadow pass: degraded challenger promoted {false_promotions} time(s); "
          f"monitor cost {monitor_us:.1f} µs per reading")
    print(f"equal models, alpha={args.alpha:g}: {fs['0.0']} switch(es) with independent errors, "
          f"{fs['0.7']} with shared errors, in {fs_seeds * fs_readings} readings each")
    print(json.dumps({
        "benchmark": "rollback",
        "baseline": "degraded version served alone",
        "candidate": "monitored serving with automatic rollback",
        "ratio": (fig["mae_champion_after_rollback"] / fig["mae_degraded_after_rollback"]
                  if fig["rolled_back"] else None),
        "readings_from_alarm_to_rollback": fig.get("readings_from_alarm_to_rollback"),
        "seconds_from_alarm_to_rollback": fig.get("seconds_from_alarm_to_rollback"),
        "stream_minutes_from_alarm_to_rollback": fig.get("stream_minutes_from_alarm_to_rollback"),
        "rollback_at_reading": fig.get("rollback_at_reading"),
        "mae_whole_stream": {"degraded_alone": whole[bad], "monitored": served_whole,
                             "champion_alone": whole[good]},
        "false_promotions_of_degraded_challenger": false_promotions,
        "monitor_us_per_reading": monitor_us,
        "equal_models_false_switches": {"readings": fs_seeds * fs_readings,
                                        "independent_errors": fs["0.0"],
                                        "shared_errors_0.7": fs["0.7"]},
        "readings": n,
        "alpha": args.alpha,
        "quick": args.quick,
    }))


if __name__ == "__main__":
    main()
