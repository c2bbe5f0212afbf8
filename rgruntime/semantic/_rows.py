"""Which label each row of a partition index holds, and the full vectors of those rows.

A :class:`~rgruntime.semantic.index.PartitionIndex` gives every vector a row: the exact index
multiplies the matrix of rows, and a graph's labels *are* rows, so that a search's neighbours are
read from the matrix by position, and only the few it returns are mapped back to the caller's
labels (mapping the 16 neighbours of each graph search through a dict of 100,000 labels took
17 µs of a 210 µs search here, most of it cache misses). A deleted label frees its row, which the
next insert takes: the matrix and the graph never grow from churn alone.

Not thread-safe by itself: the index takes its lock around every change and every search.
"""

from __future__ import annotations

import mmap
from typing import Final

import numpy as np
import numpy.typing as npt

from rgruntime.semantic._sharded import ShardedDict
from rgruntime.semantic.embedder import Vectors

__all__ = ["INITIAL_ROWS", "LabelArray", "RowTable"]

LabelArray = npt.NDArray[np.int64]

#: Rows a table starts with; it doubles when full.
INITIAL_ROWS: Final = 64
#: The label of a free row.
FREE: Final = -1
#: Bytes from which a matrix is mapped by :func:`_matrix` (numpy advises huge pages from 4 MB).
_MAPPED_FROM: Final = 4 * 1024 * 1024


def _matrix(rows: int, dimension: int) -> Vectors:
    """An uninitialized float32 matrix, in memory mapped without numpy's huge-page advice.

    numpy asks the kernel to back every array over 4 MB with 2 MB pages (``madvise``), and this
    machine's kernel then finds (or compacts) a whole 2 MB page on the first write to each: a row
    written into a grown matrix, with the GIL held, stood the event loop still for 20-60 ms at
    100,000 vectors (20 inserts runs: maxima 6-58 ms with the advice, 5-10 ms without). An
    anonymous mapping of our own gets ordinary pages, faulted in 4 KB at a time.
    """
    size = max(rows * dimension * 4, 1)
    if size < _MAPPED_FROM:
        return np.empty((rows, dimension), dtype=np.float32)
    if hasattr(mmap, "MAP_PRIVATE"):  # POSIX: private to the process, zero-filled, lazy
        buffer = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    else:  # Windows: an anonymous mapping is the paging file's
        buffer = mmap.mmap(-1, size)
    return np.frombuffer(buffer, dtype=np.float32, count=rows * dimension).reshape(rows, dimension)


class RowTable:
    """Rows handed out to labels (see the module documentation).

    ``matrix`` holds each row's full vector, or is None when the index's graph holds the full
    vectors itself. ``labels[row]`` is the row's label, or :data:`FREE`.
    """

    __slots__ = ("_free", "_label_rows", "dimension", "labels", "matrix", "used")

    def __init__(
        self, dimension: int, labels: LabelArray, matrix: Vectors | None, used: int
    ) -> None:
        self.dimension = dimension
        self.matrix = matrix
        self.labels = labels
        self.used = used
        # A map of ints, sharded: untracked by the garbage collector, and never rebuilt whole
        # while it grows (a dict of 100,000 keys rebuilds its table for ~3 ms, holding the GIL).
        in_use = labels[:used].tolist()
        self._label_rows: ShardedDict[int, int] = ShardedDict(
            (label, row) for row, label in enumerate(in_use) if label != FREE
        )
        self._free = [row for row, label in enumerate(in_use) if label == FREE]

    @classmethod
    def empty(cls, dimension: int) -> RowTable:
        return cls(
            dimension,
            np.full(INITIAL_ROWS, FREE, dtype=np.int64),
            _matrix(INITIAL_ROWS, dimension),
            0,
        )

    @classmethod
    def of(cls, dimension: int, labels: LabelArray, vectors: Vectors | None) -> RowTable:
        """A table whose row ``i`` holds ``labels[i]`` (:data:`FREE`: a free row) and, unless
        ``vectors`` is None, ``vectors[i]``; with room to grow (one copy, not a row at a time)."""
        count = len(labels)
        capacity = max(INITIAL_ROWS, 1 << max(count - 1, 0).bit_length())
        row_labels = np.full(capacity, FREE, dtype=np.int64)
        row_labels[:count] = labels
        matrix = None
        if vectors is not None:
            matrix = _matrix(capacity, dimension)
            matrix[:count] = vectors
        return cls(dimension, row_labels, matrix, count)

    def __len__(self) -> int:
        """Labels that hold a row."""
        return len(self._label_rows)

    def __contains__(self, label: int) -> bool:
        return label in self._label_rows

    def row_of(self, label: int) -> int | None:
        return self._label_rows.get(label)

    def live_rows(self) -> npt.NDArray[np.intp]:
        """The rows that hold a label, in order."""
        return np.flatnonzero(self.labels[: self.used] != FREE)

    def release(self, label: int) -> int | None:
        """Free ``label``'s row (the next :meth:`place` may take it); return it, or None if
        ``label`` held none."""
        row = self._label_rows.pop(label, None)
        if row is not None:
            self.labels[row] = FREE
            if self.matrix is not None:
                # A removed entry's vector must not outlive it, in memory or in a save.
                self.matrix[row] = 0.0
            self._free.append(row)
        return row

    def growth_for(self, count: int) -> tuple[LabelArray, Vectors | None] | None:
        """Grown copies of the labels and the matrix if placing ``count`` more labels would
        outgrow them, else None. Reads only, so that the copy (~70 ms at 131,072 rows of 384
        floats) can be made while searches go on; :meth:`adopt` swaps it in."""
        needed = self.used + max(0, count - len(self._free))
        rows = len(self.labels)
        if needed <= rows:
            return None
        while rows < needed:
            rows *= 2
        labels = np.full(rows, FREE, dtype=np.int64)
        labels[: self.used] = self.labels[: self.used]
        matrix = None
        if self.matrix is not None:
            matrix = _matrix(rows, self.dimension)
            matrix[: self.used] = self.matrix[: self.used]
        return labels, matrix

    def adopt(self, grown: tuple[LabelArray, Vectors | None]) -> None:
        """Swap in what :meth:`growth_for` made (nothing may have changed since)."""
        self.labels, self.matrix = grown

    def place(self, labels: list[int], vectors: Vectors) -> list[int]:
        """Give each of ``labels`` a row (freed rows first) holding its vector; return the rows."""
        grown = self.growth_for(len(labels))
        if grown is not None:
            self.adopt(grown)
        rows = []
        for label, vector in zip(labels, vectors, strict=True):
            if self._free:
                row = self._free.pop()
            else:
                row = self.used
                self.used += 1
            if self.matrix is not None:
                self.matrix[row] = vector
            self.labels[row] = label
            self._label_rows[label] = row
            rows.append(row)
        return rows

    def without_vectors(self) -> None:
        """Drop the matrix: a graph of the full vectors holds them."""
        self.matrix = None
