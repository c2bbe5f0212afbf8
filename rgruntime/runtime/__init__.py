"""The actor runtime: layers, their actors, the supervisor and single-flight loads."""

from rgruntime.runtime.layer import Layer
from rgruntime.runtime.runtime import Runtime, open_runtime
from rgruntime.runtime.stats import CacheStats, LayerStatistics

__all__ = ["CacheStats", "Layer", "LayerStatistics", "Runtime", "open_runtime"]
