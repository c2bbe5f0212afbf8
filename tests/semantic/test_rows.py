"""A partition index's rows (``rgruntime/semantic/_rows.py``): who holds which row, and where."""

from __future__ import annotations

import mmap

import numpy as np

from rgruntime.semantic._rows import FREE, INITIAL_ROWS, RowTable, _matrix


def vectors(count: int, dimension: int = 8) -> np.ndarray:
    return np.arange(count * dimension, dtype=np.float32).reshape(count, dimension) + 1


def test_freed_rows_are_taken_first_and_their_vectors_zeroed() -> None:
    table = RowTable.empty(8)
    assert table.place([10, 11, 12], vectors(3)) == [0, 1, 2]
    assert table.release(11) == 1
    assert table.release(11) is None  # released once
    assert table.matrix is not None
    assert not table.matrix[1].any()  # a removed entry's vector does not outlive it
    assert table.labels[1] == FREE
    assert table.place([13], vectors(1)) == [1]
    assert (len(table), table.used, table.row_of(13), 11 in table) == (3, 3, 1, False)
    assert table.live_rows().tolist() == [0, 1, 2]


def test_a_table_grows_by_doubling_and_keeps_its_rows() -> None:
    table = RowTable.empty(8)
    many = vectors(INITIAL_ROWS + 1)
    rows = table.place(list(range(INITIAL_ROWS + 1)), many)
    assert rows == list(range(INITIAL_ROWS + 1))
    assert len(table.labels) == 2 * INITIAL_ROWS
    assert table.matrix is not None
    assert (table.matrix[: INITIAL_ROWS + 1] == many).all()


def test_a_table_made_of_rows_keeps_their_numbers_and_free_ones() -> None:
    labels = np.asarray([5, FREE, 7], dtype=np.int64)
    table = RowTable.of(8, labels, vectors(3))
    assert (len(table), table.used, table.row_of(7)) == (2, 3, 2)
    assert table.place([9], vectors(1)) == [1]  # the free row first
    without = RowTable.of(8, labels, None)  # a graph of the full vectors holds them
    assert without.matrix is None
    assert without.place([9], vectors(1)) == [1]


def test_a_large_matrix_is_mapped_without_numpys_huge_page_advice() -> None:
    large = _matrix(100_000, 384)  # 154 MB
    memory = large.base.base  # the reshape of an array over a view of the mapping
    assert isinstance(memory, memoryview)
    assert isinstance(memory.obj, mmap.mmap)
    assert (large.shape, large.dtype, large.flags["C_CONTIGUOUS"]) == (
        (100_000, 384),
        np.float32,
        True,
    )
    assert not large[99_999].any()  # zero-filled, written lazily
    large[99_999] = 1.0
    assert large[99_999].all()
    small = _matrix(64, 384)
    assert small.base is None  # numpy's own: under the size numpy advises huge pages for
