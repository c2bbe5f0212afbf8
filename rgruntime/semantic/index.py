"""The vectors of one partition, searchable by cosine similarity: exact while small, hnswlib after.

A partition starts as an exact index: a numpy matrix searched by one matrix-vector product, which
is both faster than a graph and always right while it holds a few thousand rows. When it grows past
``exact_limit`` live vectors it moves, once, to an hnswlib graph (cosine space), which answers in
~0.13 ms at 100,000 vectors where the product would take ~9 ms. The graph holds the vectors
projected on the partition's first principal axes (:attr:`HnswSettings.graph_dimension`), and the
nearest it finds are scored again on the full vectors, which the index keeps beside it: a shorter
walk, and the exact similarity.

Labels are integers chosen by the caller (the :class:`~rgruntime.semantic.SemanticCache` maps them
to cache keys). Each vector has a row (:mod:`rgruntime.semantic._rows`), and a graph's labels are
these rows: its neighbours' full vectors are read by position, and only the nearest few are mapped
back to labels. Deleting a label removes its vector from every later search: it frees the row,
which hnswlib marks deleted, and the next insert takes the row and its slot in the graph, so an
index that churns does not grow.

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
from rgruntime.semantic._rows import LabelArray, RowTable
from rgruntime.semantic.embedder import Vectors

__all__ = ["HnswSettings", "PartitionIndex"]

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
        # Each vector's row: the whole index while it is exact; beside a graph, whose labels
        # are these rows, what its neighbours are mapped back to labels with (and, if the graph
        # holds projected vectors, scored on).
        self._rows = RowTable.empty(dimension)
        self._graph: Any = None
        # Full vectors -> the graph's vectors (dimension x graph dimension), if projected.
        self._projection: Vectors | None = None
        self._search_seconds = math.inf

    def __len__(self) -> int:
        """Live (not deleted) vectors."""
        return len(self._rows)

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
        return self._graph is None and self._rows.used + extra <= INLINE_ROWS

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
        self._check_shape(len(labels), vectors)
        if self._graph is None and len(self) + len(labels) > self.settings.exact_limit:
            # Built outside the lock (the first graph of a partition takes ~0.5 s to build):
            # searches go on in the matrix meanwhile, and no other write can run.
            start = self._graph_start(vectors)
            with self.lock:
                self._switch_to(start)
        # Grown outside the lock: the copy must not keep searches waiting. Only the writer
        # changes the rows, so nothing changes between the copy and the swap.
        grown = self._rows.growth_for(len(labels))
        with self.lock:
            if grown is not None:
                self._rows.adopt(grown)
            self._add(labels, vectors)

    def _delete(self, label: int) -> None:
        row = self._rows.release(label)
        if row is not None and self._graph is not None:
            # Its slot stays in the graph, skipped by searches, until a new label takes the row.
            self._graph.mark_deleted(row)

    def _check_shape(self, count: int, vectors: Vectors) -> None:
        if vectors.shape != (count, self.dimension):
            raise InvalidArgumentError(
                "vectors", vectors.shape, f"shape ({count}, {self.dimension})"
            )

    def _add(self, labels: list[int], vectors: Vectors) -> None:
        self._check_shape(len(labels), vectors)
        if len(set(labels)) != len(labels):
            raise InvalidArgumentError("labels", labels, "distinct labels")
        for label in labels:
            if label in self._rows:
                self._delete(label)  # added again: the new vector replaces the old one
        if self._graph is None and len(self) + len(labels) > self.settings.exact_limit:
            self._switch_to(self._graph_start(vectors))
        rows = self._rows.place(labels, vectors)
        if self._graph is not None:
            self._add_to_graph(rows, vectors)

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

    def _graph_start(self, incoming: Vectors) -> _GraphStart:
        """A graph of the live rows, with room for the ``incoming`` vectors (added next), the
        projection of its vectors, fitted on both, and the rows renumbered from 0 to match the
        graph's labels. Reads only: built while searches go on in the matrix."""
        live = self._rows.live_rows()
        assert self._rows.matrix is not None
        vectors = self._rows.matrix[live]
        projection = self._fit_projection(np.concatenate([vectors, incoming]))
        graph = self._graph_of(vectors, projection, capacity=2 * (len(live) + len(incoming)))
        rows = RowTable.of(
            self.dimension, self._rows.labels[live], None if projection is None else vectors
        )
        return _GraphStart(graph, projection, rows)

    def _graph_of(self, vectors: Vectors, projection: Vectors | None, capacity: int) -> Any:
        """A new graph holding ``vectors`` (projected with ``projection``) under rows 0, 1, ..."""
        graph = self._new_graph(
            self.dimension if projection is None else projection.shape[1], capacity
        )
        if len(vectors):
            graph.add_items(_project(vectors, projection), np.arange(len(vectors)), num_threads=1)
        return graph

    def _new_graph(self, dimension: int, capacity: int) -> Any:
        hnswlib = _import_hnswlib()
        settings = self.settings
        graph = hnswlib.Index(space="cosine", dim=dimension)
        graph.init_index(
            max_elements=max(capacity, _initial_capacity(dimension, settings.m)),
            ef_construction=settings.ef_construction,
            M=settings.m,
            random_seed=100,
        )
        graph.set_ef(settings.ef_search)
        graph.set_num_threads(1)
        return graph

    def _switch_to(self, start: _GraphStart) -> None:
        """Search ``start``'s graph (which holds every live row) from now on."""
        self._graph, self._projection, self._rows = start.graph, start.projection, start.rows

    def _add_to_graph(self, rows: list[int], vectors: Vectors) -> None:
        graph = self._graph
        capacity = graph.get_max_elements()
        if self._rows.used > capacity:
            graph.resize_index(max(2 * capacity, self._rows.used))
        # A row freed by a deletion is still a (deleted) element of the graph under its label:
        # adding to it again replaces its vector and links, and makes it live.
        graph.add_items(_project(vectors, self._projection), rows, num_threads=1)

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
        k = min(k, len(self))
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
        used = self._rows.used
        assert self._rows.matrix is not None
        matrix = self._rows.matrix[:used]
        labels = self._rows.labels[:used]
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
        wanted = k if projection is None else min(max(k, self.settings.rerank), len(self))
        queries = vectors if projection is None else _project_queries(vectors, projection)
        # hnswlib raises when it cannot find k live results (possible after many deletions):
        # ask for fewer rather than fail the lookup.
        while wanted > 0:
            try:
                rows, distances = self._graph.knn_query(queries, k=wanted, num_threads=1)
            except RuntimeError:
                wanted //= 2
                continue
            if projection is not None:
                return [
                    self._rescored(query_rows, vector, k)
                    for query_rows, vector in zip(rows, vectors, strict=True)
                ]
            labels = self._rows.labels
            return [
                list(
                    zip(
                        labels[query_rows].tolist(),
                        [_clamp(1.0 - distance) for distance in query_distances.tolist()],
                        strict=True,
                    )
                )
                for query_rows, query_distances in zip(rows, distances, strict=True)
            ]
        return [[] for _ in range(len(vectors))]

    def _rescored(
        self, rows: npt.NDArray[np.uint64], vector: Vectors, k: int
    ) -> list[tuple[int, float]]:
        """The ``k`` of ``rows`` most similar to ``vector`` by their full vectors, as labels."""
        assert self._rows.matrix is not None
        # On every lookup of a graph: Python's sort of a short list (stable, like the graph's
        # order for ties) rather than numpy's, whose calls cost more than 16 elements do.
        scores = (self._rows.matrix[rows] @ vector).tolist()
        best = sorted(range(len(scores)), key=scores.__getitem__, reverse=True)[:k]
        labels = self._rows.labels[rows[best]].tolist()
        return [(label, _clamp(scores[i])) for label, i in zip(labels, best, strict=True)]

    # -- persistence ---------------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        """Write this index into ``directory`` (which must exist)."""
        with self.lock:
            rows = self._rows
            # Every row, free ones included: a graph's labels are rows, so they keep their
            # numbers (a free row's vector is stale; its label says it is free).
            meta: dict[str, Any] = {"dimension": self.dimension, "layout": _ROWS_LAYOUT}
            np.save(directory / "row_labels.npy", rows.labels[: rows.used])
            if rows.matrix is not None:
                np.save(directory / "vectors.npy", rows.matrix[: rows.used])
            if self._graph is None:
                meta["mode"] = "exact"
            else:
                self._graph.save_index(str(directory / "graph.bin"))
                meta["mode"] = "graph"
                if self._projection is not None:
                    np.save(directory / "projection.npy", self._projection)
                    meta["projected"] = True
            (directory / "index.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, directory: Path, settings: HnswSettings) -> PartitionIndex:
        meta = json.loads((directory / "index.json").read_text())
        if meta.get("layout") != _ROWS_LAYOUT:
            return cls._load_labelled(directory, meta, settings)
        index = cls(int(meta["dimension"]), settings)
        labels = np.load(directory / "row_labels.npy")
        vectors = None
        if meta["mode"] == "exact" or meta.get("projected"):
            vectors = np.ascontiguousarray(np.load(directory / "vectors.npy"), dtype=np.float32)
            index._check_shape(len(labels), vectors)
        index._rows = RowTable.of(index.dimension, labels, vectors)
        if meta["mode"] == "graph":
            projection = None
            if meta.get("projected"):
                projection = np.ascontiguousarray(
                    np.load(directory / "projection.npy"), dtype=np.float32
                )
            graph = index._loaded_graph(
                directory / "graph.bin",
                index.dimension if projection is None else projection.shape[1],
            )
            index._graph, index._projection = graph, projection
        return index

    @classmethod
    def _load_labelled(
        cls, directory: Path, meta: dict[str, Any], settings: HnswSettings
    ) -> PartitionIndex:
        """An index saved before format 3, whose graph's labels were the caller's labels: loaded,
        and its graph built again with rows for labels (once; the saved vectors are exact)."""
        index = cls(int(meta["dimension"]), settings)
        labels = np.asarray(meta["labels"], dtype=np.int64)
        if meta["mode"] == "exact":
            vectors = np.ascontiguousarray(np.load(directory / "vectors.npy"), dtype=np.float32)
            if len(labels):
                index._add(labels.tolist(), vectors)
            return index
        if meta.get("projected"):
            projection: Vectors | None = np.ascontiguousarray(
                np.load(directory / "projection.npy"), dtype=np.float32
            )
            vectors = np.ascontiguousarray(np.load(directory / "vectors.npy"), dtype=np.float32)
        else:
            projection = None
            vectors = np.empty((0, index.dimension), dtype=np.float32)
            if len(labels):  # (hnswlib answers no labels with an array of another shape)
                old = index._loaded_graph(
                    directory / "graph.bin", index.dimension, replace_deleted=True
                )
                vectors = np.ascontiguousarray(old.get_items(labels), dtype=np.float32)
        index._check_shape(len(labels), vectors)
        index._rebuilt(labels, vectors, projection)
        return index

    def _loaded_graph(self, path: Path, dimension: int, *, replace_deleted: bool = False) -> Any:
        graph = _import_hnswlib().Index(space="cosine", dim=dimension)
        graph.load_index(str(path), allow_replace_deleted=replace_deleted)
        graph.set_ef(self.settings.ef_search)  # not saved with the index
        graph.set_num_threads(1)
        return graph

    def _rebuilt(self, labels: LabelArray, vectors: Vectors, projection: Vectors | None) -> None:
        """Become a graph of ``vectors`` under ``labels``, projected with ``projection``."""
        self._rows = RowTable.of(self.dimension, labels, None if projection is None else vectors)
        self._graph = self._graph_of(vectors, projection, capacity=2 * len(labels))
        self._projection = projection


@attrs.frozen
class _GraphStart:
    """A partition's first graph, built beside its exact index, and the rows that go with it."""

    graph: Any
    projection: Vectors | None
    rows: RowTable


#: ``index.json``'s ``layout`` since save format 3: a graph's labels are rows of the index.
_ROWS_LAYOUT: Final = "rows"


def _project_queries(vectors: Vectors, projection: Vectors) -> Vectors:
    # One matrix-vector product per query (3.4 µs for 384 x 192 here, where einsum took 9-15):
    # OpenBLAS runs a product this small on the calling thread, and the same call for each row
    # gives a query the same projection alone or in a batch.
    return np.stack([vector @ projection for vector in vectors])


def _project(vectors: Vectors, projection: Vectors | None) -> Vectors:
    # einsum (0.08 ms for 8 rows) rather than a BLAS product, which could wake OpenBLAS's
    # spinning threads at every write (see _fit_projection).
    return vectors if projection is None else np.einsum("ij,jk->ik", vectors, projection)


def _clamp(similarity: float) -> float:
    return 0.0 if similarity < 0.0 else 1.0 if similarity > 1.0 else similarity
