"""The vectors of one partition, searchable by cosine similarity: exact while small, hnswlib after.

A partition starts as an exact index: a numpy matrix searched by one matrix-vector product, which
is both faster than a graph and always right while it holds a few thousand rows. When it grows past
``exact_limit`` live vectors it moves, once, to an hnswlib graph (cosine space), which answers in
~0.13 ms at 100,000 vectors where the product would take ~9 ms. The graph holds the vectors
projected on the partition's first principal axes (:attr:`HnswSettings.graph_dimension`), and the
nearest it finds are scored again on the full vectors, which the index keeps beside it: a shorter
walk, and the exact similarity.

Labels are integers chosen by the caller (the :class:`~rgruntime.semantic.SemanticCache` maps them
to cache keys). Deleting a label removes its vector from every later search: the exact index frees
the row, hnswlib marks the element deleted and reuses its slot for a later insert
(``allow_replace_deleted``), so an index that churns does not grow.

Searches may run in several threads at once with one writer (the cache's actor: writes must not
run concurrently with each other). Searches and the changes to the index take
:attr:`PartitionIndex.lock`, since hnswlib must not search while it inserts; the first graph of a
partition is built outside it, while the matrix keeps answering. It runs only in worker threads:
hnswlib's ``add_items`` and ``knn_query`` and numpy's products release the GIL while they compute,
so the event loop keeps running meanwhile. hnswlib's ``resize_index`` and ``init_index`` do not:
they hold the GIL for time proportional to the capacity (a few ms up to ~130,000 slots, ~25 ms
from 131,072 to 262,144 on this project's machine), so a graph starts large enough to be grown by
remapping rather than copying (``_INITIAL_CAPACITY``) and doubles, to pause the loop rarely.
"""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path
from typing import Any, Final

import attrs
import numpy as np
import numpy.typing as npt

from rgruntime.errors import InvalidArgumentError
from rgruntime.semantic._sharded import ShardedDict
from rgruntime.semantic.embedder import Vectors

__all__ = ["HnswSettings", "PartitionIndex"]

LabelArray = npt.NDArray[np.int64]

#: Rows the exact index starts with; it doubles when full.
_INITIAL_ROWS: Final = 64
#: The smallest capacity a graph starts with; it doubles when full. ``resize_index`` holds the GIL
#: while it reallocates, so the loop stands still meanwhile. A graph's block of vectors and links
#: must start over 32 MiB, which glibc always maps on its own (its heap threshold rises to at most
#: 32 MiB), so that every later growth remaps pages instead of copying them: a 28 MB block on the
#: heap took 19 ms to grow in the benchmark (0.1-1 ms mapped), and 32,768 slots of 192 projected
#: dimensions (31 MB) made a 17 ms gap again. :func:`_initial_capacity` doubles this until the
#: block is large enough. Untouched pages cost no memory: the graph of a small partition holds
#: ~46 bytes more per slot (a lock, a level and a visited mark).
_INITIAL_CAPACITY: Final = 32_768
#: Above glibc's largest heap threshold (32 MiB), with a margin.
_MAPPED_BLOCK: Final = 34 * 1024 * 1024


def _initial_capacity(dimension: int, m: int) -> int:
    """Slots a new graph starts with: at least :data:`_INITIAL_CAPACITY`, doubled until hnswlib's
    block (per slot: the vector, 2m + 1 links on level 0, the label) is surely mapped."""
    per_slot = 4 * dimension + 4 * (2 * m + 1) + 8
    capacity = _INITIAL_CAPACITY
    # At most 4 times the floor: only tiny vectors (tests' 2 dimensions) would need more.
    while capacity * per_slot <= _MAPPED_BLOCK and capacity < 4 * _INITIAL_CAPACITY:
        capacity *= 2
    return capacity


#: Rows up to which an exact partition is searched and written on the caller's thread: a search
#: over 256 rows of 384 floats took 25 µs here (one row written: 8 µs), less than the hop to a
#: worker thread and back (50-150 µs), and far under what the event loop can spare.
INLINE_ROWS: Final = 256
#: The weight of the newest search in :attr:`PartitionIndex.search_seconds`.
_SEARCH_AVERAGE_WEIGHT: Final = 0.05


def _check_positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgumentError(name, value, "a positive whole number")


@attrs.frozen(kw_only=True)
class HnswSettings:
    """hnswlib's parameters. The defaults find the true nearest neighbour (recall@1 against brute
    force) for 99% of all queries at 100,000 MiniLM vectors, and for every query whose nearest
    neighbour could be a hit, in 0.13 ms of search on this project's machine when it is quiet
    (``docs/semantic.md``)."""

    #: Links per node: more is more accurate, bigger and slower to build. 20 reached a recall of
    #: 0.99 for less search time than 16 (with a larger ``ef_search``), 24 or 32.
    m: int = 20
    #: Candidate list while inserting: the graph's quality. 400 doubled the build time for less
    #: recall than ``m`` 20 gives.
    ef_construction: int = 200
    #: Candidate list while searching: recall against speed (at least the k searched for); the
    #: search time grows about linearly with it. 72 on 192 projected dimensions: recall@1 0.993
    #: at 100,000 vectors (64: 0.992, 48: 0.990).
    ef_search: int = 72
    #: Live vectors above which a partition moves from exact search to hnswlib.
    exact_limit: int = 2048
    #: Dimensions of the vectors in the graph: the partition's vectors projected on their first
    #: principal axes, fitted when the graph is built (``None``: the full vectors). The graph's
    #: walk is mostly distances, and a distance in 192 dimensions reads half the floats of one in
    #: 384: at 100,000 MiniLM vectors a search took 131 µs instead of 181 at the same recall
    #: (128 dimensions lost recall that no affordable ``ef_search`` won back). The ``rerank``
    #: nearest it finds are then scored on the full vectors, so every similarity a search
    #: returns is the exact cosine of the full vectors.
    graph_dimension: int | None = 192
    #: Neighbours taken from a projected graph and scored on the full vectors (at least the k
    #: searched for).
    rerank: int = 16

    def __attrs_post_init__(self) -> None:
        for name in ("m", "ef_construction", "ef_search", "exact_limit", "rerank"):
            _check_positive(name, getattr(self, name))
        if self.graph_dimension is not None:
            _check_positive("graph_dimension", self.graph_dimension)


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
        # Rows of full vectors, and the label of each row (-1: free). The whole index while it is
        # exact; beside a projected graph, what its neighbours are scored on.
        self._matrix: Vectors | None = np.empty((_INITIAL_ROWS, dimension), dtype=np.float32)
        self._row_labels: LabelArray = np.full(_INITIAL_ROWS, -1, dtype=np.int64)
        self._label_rows: ShardedDict[int, int] = ShardedDict()
        self._free_rows: list[int] = []
        self._used_rows = 0
        # Graph mode.
        self._graph: Any = None
        # Full vectors -> the graph's vectors (dimension x graph dimension), if projected.
        self._projection: Vectors | None = None
        # Live labels in the graph (a map of ints: untracked by the garbage collector, unlike a
        # set, which every full collection would walk). The maps of labels are sharded: a dict
        # of 100,000 keys rebuilds its table for ~3 ms when it grows, holding the GIL, which
        # stops the event loop too.
        self._graph_labels: ShardedDict[int, None] = ShardedDict()
        self._graph_deleted = 0
        self._search_seconds = math.inf

    def __len__(self) -> int:
        """Live (not deleted) vectors."""
        return self._live

    @property
    def uses_graph(self) -> bool:
        return self._graph is not None

    @property
    def graph_dimension(self) -> int | None:
        """Dimensions of the graph's vectors (None while the index is exact)."""
        if self._graph is None:
            return None
        return self.dimension if self._projection is None else self._projection.shape[1]

    def runs_inline(self, extra: int = 0) -> bool:
        """True if a search, or a write of ``extra`` more vectors, is cheap enough to run on the
        event loop's thread: an exact partition of at most :data:`INLINE_ROWS` rows.

        Once False it stays False (rows are reused, never returned; a graph stays a graph), so a
        worker thread never holds the lock of a partition that the loop's thread searches.
        """
        return self._graph is None and self._used_rows + extra <= INLINE_ROWS

    # -- changes -------------------------------------------------------------------------------

    def apply(self, delete: list[int], labels: list[int], vectors: Vectors | None) -> None:
        """Delete the labels in ``delete``, then add ``vectors`` under ``labels``.

        Writes must not run concurrently (the cache's actor serializes them); searches may.
        """
        with self.lock:
            for label in delete:
                self._delete(label)
        if not labels:
            return
        assert vectors is not None
        label_array = np.asarray(labels, dtype=np.int64)
        self._check_shape(label_array, vectors)
        if self._graph is None and self._live + len(labels) > self.settings.exact_limit:
            # Built outside the lock (the first graph of a partition takes ~0.5 s to build):
            # searches go on in the matrix meanwhile, and no other write can run.
            graph, projection = self._build_graph(vectors)
            with self.lock:
                self._switch_to(graph, projection)
        self._reserve_rows(len(labels))
        with self.lock:
            self._add(label_array, vectors)

    def _delete(self, label: int) -> None:
        if self._graph is not None:
            if label not in self._graph_labels:
                return
            self._graph.mark_deleted(label)
            del self._graph_labels[label]
            self._graph_deleted += 1
            if self._projection is None:
                self._live -= 1
                return
        row = self._label_rows.pop(label, None)
        if row is not None:
            self._row_labels[row] = -1
            self._free_rows.append(row)
            self._live -= 1

    def _check_shape(self, labels: LabelArray, vectors: Vectors) -> None:
        if vectors.shape != (len(labels), self.dimension):
            raise InvalidArgumentError(
                "vectors", vectors.shape, f"shape ({len(labels)}, {self.dimension})"
            )

    def _add(self, labels: LabelArray, vectors: Vectors) -> None:
        self._check_shape(labels, vectors)
        if self._graph is None and self._live + len(labels) > self.settings.exact_limit:
            self._switch_to(*self._build_graph(vectors))
        if self._graph is not None:
            self._add_to_graph(labels, vectors)
        if self._graph is None or self._projection is not None:
            self._store_rows(labels, vectors)
        self._live += len(labels)

    def _store_rows(self, labels: LabelArray, vectors: Vectors) -> None:
        for label, vector in zip(labels.tolist(), vectors, strict=True):
            row = self._free_rows.pop() if self._free_rows else self._new_row()
            assert self._matrix is not None
            self._matrix[row] = vector
            self._row_labels[row] = label
            self._label_rows[label] = row

    def _set_rows(self, labels: LabelArray, vectors: Vectors) -> None:
        """Fill an empty index's rows with ``vectors`` under ``labels`` in one copy (a load), not
        row by row through :meth:`_store_rows` with a copy at every doubling."""
        count = len(labels)
        capacity = max(_INITIAL_ROWS, 1 << max(count - 1, 0).bit_length())
        self._matrix = np.empty((capacity, self.dimension), dtype=np.float32)
        self._matrix[:count] = vectors
        self._row_labels = np.full(capacity, -1, dtype=np.int64)
        self._row_labels[:count] = labels
        self._label_rows = ShardedDict(zip(labels.tolist(), range(count), strict=True))
        self._free_rows = []
        self._used_rows = count

    def _new_row(self) -> int:
        assert self._matrix is not None
        if self._used_rows == len(self._matrix):
            self._matrix, self._row_labels = self._grown_rows(self._used_rows + 1)
        self._used_rows += 1
        return self._used_rows - 1

    def _grown_rows(self, needed: int) -> tuple[Vectors, LabelArray]:
        """Copies of the matrix and its row labels with room for ``needed`` rows (doubling)."""
        assert self._matrix is not None
        rows = len(self._matrix)
        while rows < needed:
            rows *= 2
        matrix = np.empty((rows, self.dimension), dtype=np.float32)
        matrix[: self._used_rows] = self._matrix[: self._used_rows]
        labels = np.full(rows, -1, dtype=np.int64)
        labels[: self._used_rows] = self._row_labels[: self._used_rows]
        return matrix, labels

    def _reserve_rows(self, count: int) -> None:
        """Grow the matrix for ``count`` more rows before taking the lock: the copy (~70 ms at
        131,072 rows) must not keep searches waiting. Only the writer changes the matrix, so
        nothing changes between the copy and the swap; searches read the old one meanwhile."""
        if self._matrix is None:
            return
        needed = self._used_rows + max(0, count - len(self._free_rows))
        if needed > len(self._matrix):
            grown = self._grown_rows(needed)
            with self.lock:
                self._matrix, self._row_labels = grown

    def _fit_projection(self, vectors: Vectors) -> Vectors | None:
        """The first ``graph_dimension`` principal axes of ``vectors`` (not centred: cosine
        similarity is a dot product of unit vectors, which the uncentred axes preserve best), or
        None when the graph should hold the full vectors: projection off, no smaller, or too few
        vectors to fit it (fewer than four per axis)."""
        wanted = self.settings.graph_dimension
        if wanted is None or wanted >= self.dimension or len(vectors) < 4 * wanted:
            return None
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped,import-not-found,unused-ignore]

        rows = vectors.astype(np.float64)
        # The eigenvectors of the Gram matrix are the right singular vectors: 22 ms for 2,049 x
        # 384 where the SVD took 119 ms. One BLAS thread for these two calls: OpenBLAS's
        # workers otherwise keep spinning on both cores for ~0.1 s afterwards, and the event
        # loop's thread waited for a CPU (4-6 ms gaps) while a partition's first graph was
        # built. The limit is process-wide for the ~30 ms it lasts (threadpoolctl sets
        # OpenBLAS's thread count and restores it).
        with threadpool_limits(limits=1, user_api="blas"):
            _, axes = np.linalg.eigh(rows.T @ rows)  # ascending eigenvalues
        return np.ascontiguousarray(axes[:, ::-1][:, :wanted], dtype=np.float32)

    def _build_graph(self, incoming: Vectors) -> tuple[Any, Vectors | None]:
        """An hnswlib graph of the live rows, with room for the ``incoming`` vectors (added
        next), and the projection of its vectors, fitted on both (reads only)."""
        rows = np.flatnonzero(self._row_labels[: self._used_rows] >= 0)
        assert self._matrix is not None
        vectors = self._matrix[rows]
        projection = self._fit_projection(np.concatenate([vectors, incoming]))
        dimension = self.dimension if projection is None else projection.shape[1]
        graph = self._new_graph(
            dimension,
            capacity=max(
                2 * (self._live + len(incoming)), _initial_capacity(dimension, self.settings.m)
            ),
        )
        if len(rows):
            graph.add_items(_project(vectors, projection), self._row_labels[rows], num_threads=1)
        return graph, projection

    def _new_graph(self, dimension: int, capacity: int) -> Any:
        hnswlib = _import_hnswlib()
        settings = self.settings
        graph = hnswlib.Index(space="cosine", dim=dimension)
        graph.init_index(
            max_elements=capacity,
            ef_construction=settings.ef_construction,
            M=settings.m,
            random_seed=100,
            allow_replace_deleted=True,
        )
        graph.set_ef(settings.ef_search)
        graph.set_num_threads(1)
        return graph

    def _switch_to(self, graph: Any, projection: Vectors | None) -> None:
        """Search ``graph`` (which holds every live row) from now on; keep the full vectors only
        if the graph's are projected."""
        self._graph = graph
        self._projection = projection
        self._graph_labels = ShardedDict.fromkeys(self._label_rows, None)
        self._graph_deleted = 0
        if projection is None:
            self._matrix, self._label_rows, self._free_rows = None, ShardedDict(), []
            self._row_labels = np.empty(0, dtype=np.int64)
            self._used_rows = 0

    def _add_to_graph(self, labels: LabelArray, vectors: Vectors) -> None:
        graph = self._graph
        # Deleted slots are reused first; only the rest needs room.
        needed = graph.get_current_count() + max(0, len(labels) - self._graph_deleted)
        capacity = graph.get_max_elements()
        if needed > capacity:
            graph.resize_index(max(2 * capacity, needed))
        graph.add_items(
            _project(vectors, self._projection),
            labels,
            num_threads=1,
            replace_deleted=self._graph_deleted > 0,
        )
        self._graph_deleted = max(0, self._graph_deleted - len(labels))
        self._graph_labels.update(dict.fromkeys(labels.tolist()))

    # -- search --------------------------------------------------------------------------------

    def search(self, vector: Vectors, k: int) -> list[tuple[int, float]]:
        """Up to ``k`` (label, cosine similarity in [0, 1]) pairs, the most similar first."""
        return self.search_many(vector[None, :], k)[0]

    def search_many(self, vectors: Vectors, k: int) -> list[list[tuple[int, float]]]:
        """:meth:`search` for each row of ``vectors`` (one call into hnswlib for them all)."""
        with self.lock:
            return self._search_locked(vectors, k)

    def search_unless_busy(self, vector: Vectors, k: int) -> list[tuple[int, float]] | None:
        """:meth:`search`, unless another thread holds the index (a write): then None, at once.

        For the event loop's thread, which must never wait for a write to finish."""
        if not self.lock.acquire(blocking=False):
            return None
        try:
            return self._search_locked(vector[None, :], k)[0]
        finally:
            self.lock.release()

    @property
    def search_seconds(self) -> float:
        """How long a search of this index has taken lately (a moving average; infinite until
        one was timed)."""
        return self._search_seconds

    def _search_locked(self, vectors: Vectors, k: int) -> list[list[tuple[int, float]]]:
        began = time.perf_counter()
        k = min(k, self._live)
        if k <= 0:
            return [[] for _ in range(len(vectors))]
        if self._graph is not None:
            found = self._search_graph(vectors, k)
        else:
            found = self._search_exact(vectors, k)
        # Per query, so that a batch of 16 does not look like one slow search. Written under the
        # lock: one writer at a time.
        spent = (time.perf_counter() - began) / len(vectors)
        if self._search_seconds == math.inf:
            self._search_seconds = spent
        else:
            self._search_seconds += _SEARCH_AVERAGE_WEIGHT * (spent - self._search_seconds)
        return found

    def _search_exact(self, vectors: Vectors, k: int) -> list[list[tuple[int, float]]]:
        assert self._matrix is not None
        used = self._used_rows
        matrix = self._matrix[:used]
        labels = self._row_labels[:used]
        free = labels < 0
        found = []
        # One matrix-vector product per query, not one matrix product for them all: the two
        # round differently in the last bit, and a text's similarity must not depend on which
        # lookups it was searched with.
        for vector in vectors:
            similarities = matrix @ vector
            similarities[free] = -np.inf
            top = np.argpartition(-similarities, k - 1)[:k] if k < used else np.arange(used)
            top = top[np.argsort(-similarities[top], kind="stable")]
            found.append(
                [
                    (int(labels[row]), _clamp(float(similarities[row])))
                    for row in top
                    if labels[row] >= 0
                ]
            )
        return found

    def _search_graph(self, vectors: Vectors, k: int) -> list[list[tuple[int, float]]]:
        projection = self._projection
        wanted = k if projection is None else min(max(k, self.settings.rerank), self._live)
        queries = _project(vectors, projection)
        # hnswlib raises when it cannot find k live results (possible after many deletions):
        # ask for fewer rather than fail the lookup.
        while wanted > 0:
            try:
                labels, distances = self._graph.knn_query(queries, k=wanted, num_threads=1)
            except RuntimeError:
                wanted //= 2
                continue
            if projection is not None:
                return [
                    self._rescored(row_labels, vector, k)
                    for row_labels, vector in zip(labels, vectors, strict=True)
                ]
            return [
                [
                    (int(label), _clamp(1.0 - float(distance)))
                    for label, distance in zip(row_labels, row_distances, strict=True)
                ]
                for row_labels, row_distances in zip(
                    labels.tolist(), distances.tolist(), strict=True
                )
            ]
        return [[] for _ in range(len(vectors))]

    def _rescored(self, labels: LabelArray, vector: Vectors, k: int) -> list[tuple[int, float]]:
        """The ``k`` of ``labels`` most similar to ``vector`` by their full vectors."""
        assert self._matrix is not None
        # On every lookup of a graph: Python lists rather than one numpy scalar per element.
        label_list = labels.tolist()
        similarities = self._matrix[self._label_rows.values_of(label_list)] @ vector
        order = np.argsort(-similarities, kind="stable")[:k].tolist()
        scores = similarities.tolist()
        return [(label_list[i], _clamp(scores[i])) for i in order]

    # -- persistence ---------------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        """Write this index into ``directory`` (which must exist)."""
        with self.lock:
            meta: dict[str, Any] = {"dimension": self.dimension}
            if self._matrix is not None:
                rows = np.flatnonzero(self._row_labels[: self._used_rows] >= 0)
                np.save(directory / "vectors.npy", self._matrix[rows])
                meta["labels"] = self._row_labels[rows].tolist()
            if self._graph is None:
                meta["mode"] = "exact"
            else:
                self._graph.save_index(str(directory / "graph.bin"))
                meta["mode"] = "graph"
                meta["deleted"] = self._graph_deleted
                if self._projection is None:
                    meta["labels"] = sorted(self._graph_labels)
                else:
                    np.save(directory / "projection.npy", self._projection)
                    meta["projected"] = True
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
        projection: Vectors | None = None
        if meta.get("projected"):
            projection = np.ascontiguousarray(
                np.load(directory / "projection.npy"), dtype=np.float32
            )
            vectors = np.ascontiguousarray(np.load(directory / "vectors.npy"), dtype=np.float32)
            index._check_shape(labels, vectors)
            index._set_rows(labels, vectors)
        hnswlib = _import_hnswlib()
        graph = hnswlib.Index(
            space="cosine", dim=index.dimension if projection is None else projection.shape[1]
        )
        graph.load_index(str(directory / "graph.bin"), allow_replace_deleted=True)
        graph.set_ef(settings.ef_search)  # not saved with the index
        graph.set_num_threads(1)
        index._graph = graph
        index._projection = projection
        index._graph_labels = ShardedDict.fromkeys(labels.tolist(), None)
        index._graph_deleted = int(meta["deleted"])
        index._live = len(labels)
        if projection is None:
            index._matrix = None
        return index


def _project(vectors: Vectors, projection: Vectors | None) -> Vectors:
    # einsum (0.08 ms for 8 rows) rather than a BLAS product, which could wake OpenBLAS's
    # spinning threads at every write (see _fit_projection).
    return vectors if projection is None else np.einsum("ij,jk->ik", vectors, projection)


def _clamp(similarity: float) -> float:
    return 0.0 if similarity < 0.0 else 1.0 if similarity > 1.0 else similarity
