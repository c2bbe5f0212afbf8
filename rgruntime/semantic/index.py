"""The vectors of one partition, searchable by cosine similarity: exact while small, hnswlib after.

A partition starts as an exact index: a numpy matrix searched by one matrix-vector product, which
is both faster than a graph and always right while it holds a few thousand rows. When it grows past
``exact_limit`` live vectors it moves, once, to an hnswlib graph (cosine space), which answers in
~0.2 ms at 100,000 vectors where the product would take ~9 ms.

Labels are integers chosen by the caller (the :class:`~rgruntime.semantic.SemanticCache` maps them
to cache keys). Deleting a label removes its vector from every later search: the exact index frees
the row, hnswlib marks the element deleted and reuses its slot for a later insert
(``allow_replace_deleted``), so an index that churns does not grow.

Not safe for concurrent use by itself: every method takes :attr:`PartitionIndex.lock`, so worker
threads may call it at once, but a call blocks while another runs. It runs only in worker threads
(``anyio.to_thread``): hnswlib and numpy release the GIL while they compute, so the event loop keeps
running meanwhile.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Final

import attrs
import numpy as np
import numpy.typing as npt

from rgruntime.errors import InvalidArgumentError
from rgruntime.semantic.embedder import Vectors

__all__ = ["HnswSettings", "PartitionIndex"]

LabelArray = npt.NDArray[np.int64]

#: Rows the exact index starts with; it doubles when full.
_INITIAL_ROWS: Final = 64


def _check_positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgumentError(name, value, "a positive whole number")


@attrs.frozen(kw_only=True)
class HnswSettings:
    """hnswlib's parameters. The defaults reach recall@1 of 1.000 against brute force at 100,000
    vectors of 384 dimensions on this project's machine (``docs/semantic.md``)."""

    #: Links per node: more is more accurate, bigger and slower to build.
    m: int = 16
    #: Candidate list while inserting: the graph's quality.
    ef_construction: int = 200
    #: Candidate list while searching: recall against speed (at least the k searched for).
    ef_search: int = 64
    #: Live vectors above which a partition moves from exact search to hnswlib.
    exact_limit: int = 2048

    def __attrs_post_init__(self) -> None:
        for name in ("m", "ef_construction", "ef_search", "exact_limit"):
            _check_positive(name, getattr(self, name))


def _import_hnswlib() -> Any:
    try:
        import hnswlib  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        from rgruntime.semantic.errors import EmbedderUnavailableError

        raise EmbedderUnavailableError(
            "semantic index",
            "the hnswlib package",
            "install it with: pip install 'rgruntime[semantic]'",
        ) from None
    return hnswlib


class PartitionIndex:
    """One partition's vectors (see the module documentation)."""

    def __init__(self, dimension: int, settings: HnswSettings) -> None:
        _check_positive("dimension", dimension)
        self.dimension = dimension
        self.settings = settings
        self.lock = threading.Lock()
        self._live = 0
        # Exact mode: rows of a matrix, and the label of each row (-1: free).
        self._matrix: Vectors | None = np.empty((_INITIAL_ROWS, dimension), dtype=np.float32)
        self._row_labels: LabelArray = np.full(_INITIAL_ROWS, -1, dtype=np.int64)
        self._label_rows: dict[int, int] = {}
        self._free_rows: list[int] = []
        self._used_rows = 0
        # Graph mode.
        self._graph: Any = None
        # Live labels in the graph (a dict of ints: untracked by the garbage collector, unlike a
        # set, which every full collection would walk).
        self._graph_labels: dict[int, None] = {}
        self._graph_deleted = 0

    def __len__(self) -> int:
        """Live (not deleted) vectors."""
        return self._live

    @property
    def uses_graph(self) -> bool:
        return self._graph is not None

    # -- changes -------------------------------------------------------------------------------

    def apply(self, delete: list[int], labels: list[int], vectors: Vectors | None) -> None:
        """Delete the labels in ``delete``, then add ``vectors`` under ``labels``."""
        with self.lock:
            for label in delete:
                self._delete(label)
            if labels:
                assert vectors is not None
                self._add(np.asarray(labels, dtype=np.int64), vectors)

    def _delete(self, label: int) -> None:
        if self._graph is not None:
            if label in self._graph_labels:
                self._graph.mark_deleted(label)
                del self._graph_labels[label]
                self._graph_deleted += 1
                self._live -= 1
            return
        row = self._label_rows.pop(label, None)
        if row is not None:
            self._row_labels[row] = -1
            self._free_rows.append(row)
            self._live -= 1

    def _add(self, labels: LabelArray, vectors: Vectors) -> None:
        if vectors.shape != (len(labels), self.dimension):
            raise InvalidArgumentError(
                "vectors", vectors.shape, f"shape ({len(labels)}, {self.dimension})"
            )
        if self._graph is None and self._live + len(labels) > self.settings.exact_limit:
            self._move_to_graph(extra=len(labels))
        if self._graph is not None:
            self._add_to_graph(labels, vectors)
            return
        for label, vector in zip(labels.tolist(), vectors, strict=True):
            row = self._free_rows.pop() if self._free_rows else self._new_row()
            assert self._matrix is not None
            self._matrix[row] = vector
            self._row_labels[row] = label
            self._label_rows[label] = row
            self._live += 1

    def _new_row(self) -> int:
        assert self._matrix is not None
        if self._used_rows == len(self._matrix):
            grown = np.empty((2 * len(self._matrix), self.dimension), dtype=np.float32)
            grown[: self._used_rows] = self._matrix
            self._matrix = grown
            labels = np.full(len(grown), -1, dtype=np.int64)
            labels[: self._used_rows] = self._row_labels
            self._row_labels = labels
        self._used_rows += 1
        return self._used_rows - 1

    def _move_to_graph(self, extra: int) -> None:
        hnswlib = _import_hnswlib()
        settings = self.settings
        graph = hnswlib.Index(space="cosine", dim=self.dimension)
        capacity = max(2 * (self._live + extra), 1024)
        graph.init_index(
            max_elements=capacity,
            ef_construction=settings.ef_construction,
            M=settings.m,
            random_seed=100,
            allow_replace_deleted=True,
        )
        graph.set_ef(settings.ef_search)
        graph.set_num_threads(1)
        if self._live:
            rows = np.flatnonzero(self._row_labels[: self._used_rows] >= 0)
            assert self._matrix is not None
            graph.add_items(self._matrix[rows], self._row_labels[rows], num_threads=1)
        self._graph = graph
        self._graph_labels = dict.fromkeys(self._label_rows)
        self._graph_deleted = 0
        self._matrix, self._label_rows, self._free_rows = None, {}, []
        self._row_labels = np.empty(0, dtype=np.int64)
        self._used_rows = 0

    def _add_to_graph(self, labels: LabelArray, vectors: Vectors) -> None:
        graph = self._graph
        # Deleted slots are reused first; only the rest needs room.
        needed = graph.get_current_count() + max(0, len(labels) - self._graph_deleted)
        capacity = graph.get_max_elements()
        if needed > capacity:
            graph.resize_index(max(2 * capacity, needed))
        graph.add_items(vectors, labels, num_threads=1, replace_deleted=self._graph_deleted > 0)
        self._graph_deleted = max(0, self._graph_deleted - len(labels))
        self._graph_labels.update(dict.fromkeys(labels.tolist()))
        self._live += len(labels)

    # -- search --------------------------------------------------------------------------------

    def search(self, vector: Vectors, k: int) -> list[tuple[int, float]]:
        """Up to ``k`` (label, cosine similarity in [0, 1]) pairs, the most similar first."""
        with self.lock:
            k = min(k, self._live)
            if k <= 0:
                return []
            if self._graph is not None:
                return self._search_graph(vector, k)
            return self._search_exact(vector, k)

    def _search_exact(self, vector: Vectors, k: int) -> list[tuple[int, float]]:
        assert self._matrix is not None
        used = self._used_rows
        similarities = self._matrix[:used] @ vector
        labels = self._row_labels[:used]
        similarities[labels < 0] = -np.inf
        top = np.argpartition(-similarities, k - 1)[:k] if k < used else np.arange(used)
        top = top[np.argsort(-similarities[top], kind="stable")]
        return [
            (int(labels[row]), _clamp(float(similarities[row]))) for row in top if labels[row] >= 0
        ]

    def _search_graph(self, vector: Vectors, k: int) -> list[tuple[int, float]]:
        # hnswlib raises when it cannot find k live results (possible after many deletions):
        # ask for fewer rather than fail the lookup.
        while k > 0:
            try:
                labels, distances = self._graph.knn_query(vector, k=k, num_threads=1)
            except RuntimeError:
                k //= 2
                continue
            return [
                (int(label), _clamp(1.0 - float(distance)))
                for label, distance in zip(labels[0], distances[0], strict=True)
            ]
        return []

    # -- persistence ---------------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        """Write this index into ``directory`` (which must exist)."""
        with self.lock:
            if self._graph is not None:
                self._graph.save_index(str(directory / "graph.bin"))
                meta: dict[str, Any] = {
                    "mode": "graph",
                    "labels": sorted(self._graph_labels),
                    "deleted": self._graph_deleted,
                }
            else:
                rows = np.flatnonzero(self._row_labels[: self._used_rows] >= 0)
                assert self._matrix is not None
                np.save(directory / "vectors.npy", self._matrix[rows])
                meta = {"mode": "exact", "labels": self._row_labels[rows].tolist()}
            meta["dimension"] = self.dimension
            (directory / "index.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, directory: Path, settings: HnswSettings) -> PartitionIndex:
        meta = json.loads((directory / "index.json").read_text())
        index = cls(int(meta["dimension"]), settings)
        labels = np.asarray(meta["labels"], dtype=np.int64)
        if meta["mode"] == "exact":
            vectors = np.load(directory / "vectors.npy")
            if len(labels):
                index._add(labels, np.ascontiguousarray(vectors, dtype=np.float32))
            return index
        hnswlib = _import_hnswlib()
        graph = hnswlib.Index(space="cosine", dim=index.dimension)
        graph.load_index(str(directory / "graph.bin"), allow_replace_deleted=True)
        graph.set_ef(settings.ef_search)  # not saved with the index
        graph.set_num_threads(1)
        index._graph = graph
        index._graph_labels = dict.fromkeys(labels.tolist())
        index._graph_deleted = int(meta["deleted"])
        index._live = len(labels)
        index._matrix = None
        return index


def _clamp(similarity: float) -> float:
    return 0.0 if similarity < 0.0 else 1.0 if similarity > 1.0 else similarity
