"""The demo workload behind ``rgruntime demo``."""

from rgruntime.demo.workload import DemoReport, LayerReport, WorkloadSettings, run_workload

__all__ = ["DemoReport", "LayerReport", "WorkloadSettings", "run_workload"]
