"""Production monitor: champion vs previous version vs shadow challenger (numpy only).

>>> from tsforge.monitor import Monitor, MonitorConfig
>>> mon = Monitor("v2", previous="v1", config=MonitorConfig())
>>> events = mon.observe({"v2": 0.4, "v1": 0.3})   # one reading's errors per version
"""

from tsforge.monitor.events import EVENT_KINDS, MonitorConfig, MonitorEvent
from tsforge.monitor.monitor import Monitor
from tsforge.monitor.pipeline import MonitoredServing, ServingReport
from tsforge.monitor.stats import TestResult, diebold_mariano, paired_test, sign_test

__all__ = [
    "EVENT_KINDS",
    "Monitor",
    "MonitorConfig",
    "MonitorEvent",
    "MonitoredServing",
    "ServingReport",
    "TestResult",
    "diebold_mariano",
    "paired_test",
    "sign_test",
]
