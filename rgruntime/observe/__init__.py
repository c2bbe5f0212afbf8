"""Operations: miss-ratio curves and recommendations, diagnosis, metrics over time, alerts.

Everything here reads what the layers already record (access observers, removal listeners,
counters); nothing of it sits on the hit path. See docs/operations.md.
"""

from rgruntime.observe.alerts import Alert, AlertCondition, Alerts, FiredAlert
from rgruntime.observe.analysis import Analysis, LayerAnalysis, SizeChange
from rgruntime.observe.diagnosis import Cause, Diagnosis
from rgruntime.observe.metrics import LayerPoint, MetricPoint
from rgruntime.observe.monitor import LayerMonitor
from rgruntime.observe.operations import LargeEntry, MemoryUsage, Operations, StaleEntry
from rgruntime.observe.service import MetricsService
from rgruntime.observe.shards import MAX_SAMPLED_KEYS, MissRatioCurve, ReuseSampler

__all__ = [
    "MAX_SAMPLED_KEYS",
    "Alert",
    "AlertCondition",
    "Alerts",
    "Analysis",
    "Cause",
    "Diagnosis",
    "FiredAlert",
    "LargeEntry",
    "LayerAnalysis",
    "LayerMonitor",
    "LayerPoint",
    "MemoryUsage",
    "MetricPoint",
    "MetricsService",
    "MissRatioCurve",
    "Operations",
    "ReuseSampler",
    "SizeChange",
    "StaleEntry",
]
