"""The actor runtime: layers, their actors, the supervisor and single-flight loads."""

from rgruntime.runtime.layer import Layer, Lookup
from rgruntime.runtime.runtime import Runtime, open_runtime
from rgruntime.runtime.stats import CacheStats, LayerStatistics

__all__ = ["CacheStats", "Layer", "LayerStatistics", "Lookup", "Runtime", "open_runtime"]
