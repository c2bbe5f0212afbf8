"""A partition's graph over projected vectors, re-ranked on the full vectors (``index.py``).

The vectors here have the shape of sentence embeddings: most of their variance in a few
directions, plus noise, so that the projection keeps the neighbourhoods and the re-ranking has to
put the exact nearest first. Synchronous: the index is plain threads-and-locks code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rgruntime.errors import InvalidArgumentError
from rgruntime.semantic import HnswSettings
from rgruntime.semantic.index import PartitionIndex

DIMENSION = 64
SETTINGS = HnswSettings(exact_limit=300, graph_dimension=16, rerank=8)


def embedding_like(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    basis = np.random.default_rng(0).standard_normal((12, DIMENSION))
    vectors = rng.standard_normal((count, 12)) @ basis + 0.3 * rng.standard_normal(
        (count, DIMENSION)
    )
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32)


def filled(
    count: int = 500, settings: HnswSettings = SETTINGS
) -> tuple[PartitionIndex, np.ndarray]:
    index = PartitionIndex(DIMENSION, settings)
    vectors = embedding_like(count, seed=1)
    for start in range(0, count, 50):  # through the exact index, then the graph
        index.apply([], list(range(start, start + 50)), vectors[start : start + 50])
    return index, vectors


def test_a_large_partition_searches_a_graph_of_projected_vectors() -> None:
    index, _ = filled()
    assert index.uses_graph
    assert index.graph_dimension == 16
    assert len(index) == 500


def test_similarities_are_exact_cosines_of_the_full_vectors_and_the_nearest_comes_first() -> None:
    index, vectors = filled()
    queries = embedding_like(200, seed=2)
    exact = queries @ vectors.T
    for query, similarities in zip(queries, exact, strict=True):
        found = index.search(query, 4)
        assert len(found) == 4
        for label, similarity in found:
            assert similarity == pytest.approx(float(similarities[label]), abs=1e-5)
        assert [s for _, s in found] == sorted((s for _, s in found), reverse=True)
        # The true nearest, found in the projected graph and put first by the full vectors.
        assert found[0][1] == pytest.approx(float(similarities.max()), abs=1e-5)


def test_a_stored_vector_finds_itself() -> None:
    index, vectors = filled()
    for label in range(0, 500, 7):
        assert index.search(vectors[label], 1) == [(label, pytest.approx(1.0, abs=1e-5))]


def test_batched_searches_equal_single_ones() -> None:
    index, _ = filled()
    queries = embedding_like(20, seed=3)
    assert index.search_many(queries, 3) == [index.search(query, 3) for query in queries]


def test_deleted_vectors_are_never_returned_and_their_rows_are_reused() -> None:
    index, vectors = filled()
    gone = list(range(0, 500, 2))
    index.apply(gone, [], None)
    assert len(index) == 250
    for label in gone[:50]:
        found = index.search(vectors[label], 8)
        assert all(found_label % 2 == 1 for found_label, _ in found)
    replacement = embedding_like(250, seed=4)
    index.apply([], list(range(1000, 1250)), replacement)
    assert len(index) == 500
    assert index.search(replacement[17], 1)[0][0] == 1017
    # The deleted rows were reused: neither the matrix nor the graph grew.
    assert index._rows.used == index._graph.get_current_count() == 500


def test_saved_and_loaded_it_answers_the_same(tmp_path: Path) -> None:
    index, _ = filled()
    index.apply([3, 4, 5], [], None)
    index.save(tmp_path)
    loaded = PartitionIndex.load(tmp_path, SETTINGS)
    assert loaded.graph_dimension == 16
    assert len(loaded) == len(index) == 497
    queries = embedding_like(30, seed=5)
    assert loaded.search_many(queries, 4) == index.search_many(queries, 4)
    loaded.apply([], [2000], queries[:1])
    assert loaded.search(queries[0], 1) == [(2000, pytest.approx(1.0, abs=1e-5))]


def test_too_few_vectors_to_fit_a_projection_keep_the_full_vectors() -> None:
    # 4 vectors per axis are needed: 16 axes need 64 vectors when the graph is built.
    index, _ = filled(100, HnswSettings(exact_limit=40, graph_dimension=16))
    assert index.graph_dimension == DIMENSION


def test_the_projection_can_be_turned_off() -> None:
    index, vectors = filled(500, HnswSettings(exact_limit=300, graph_dimension=None))
    assert index.graph_dimension == DIMENSION
    assert index.search(vectors[9], 1)[0][0] == 9


@pytest.mark.parametrize(
    ("field", "value"),
    [("graph_dimension", 0), ("graph_dimension", 12.5), ("graph_dimension", True), ("rerank", 0)],
)
def test_bad_settings_name_the_field_and_value(field: str, value: object) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        HnswSettings(**{field: value})  # type: ignore[arg-type]
    assert field in str(caught.value)
    assert repr(value) in str(caught.value) or str(value) in str(caught.value)


def test_one_large_write_is_fitted_with_the_vectors_it_brings() -> None:
    index = PartitionIndex(DIMENSION, SETTINGS)
    vectors = embedding_like(500, seed=6)
    index.apply([], list(range(500)), vectors)  # from empty past exact_limit at once
    assert index.graph_dimension == 16
    assert index.search(vectors[123], 1)[0][0] == 123


def test_deleted_slots_are_still_reused_after_a_load(tmp_path: Path) -> None:
    index, _ = filled()
    index.apply(list(range(20)), [], None)
    index.save(tmp_path)
    loaded = PartitionIndex.load(tmp_path, SETTINGS)
    slots = loaded._graph.get_current_count()
    loaded.apply([], list(range(3000, 3020)), embedding_like(20, seed=7))
    assert loaded._graph.get_current_count() == slots  # the 20 deleted slots took them
    assert len(loaded) == 500


@pytest.mark.parametrize(("dimension", "slots"), [(384, 32_768), (256, 32_768), (192, 65_536)])
def test_a_graph_starts_with_a_block_glibc_maps_on_its_own(dimension: int, slots: int) -> None:
    """A block under glibc's 32 MiB heap threshold may land on the heap, and resize_index then
    copies it with the GIL held (a 17 ms loop gap at 192 dimensions)."""
    from rgruntime.semantic.index import _initial_capacity

    capacity = _initial_capacity(dimension, m=20)
    assert capacity == slots
    assert capacity * (4 * dimension + 4 * 41 + 8) > 32 * 1024 * 1024


def test_the_fit_leaves_the_blas_thread_count_as_it_found_it() -> None:
    from threadpoolctl import threadpool_info  # type: ignore[import-untyped,unused-ignore]

    before = [pool["num_threads"] for pool in threadpool_info()]
    index, _ = filled()
    assert index.graph_dimension == 16
    assert [pool["num_threads"] for pool in threadpool_info()] == before


def _write_labelled_graph(
    directory: Path, labels: list[int], vectors: np.ndarray, projection: np.ndarray | None
) -> None:
    """A partition as ``save`` wrote it before format 3: the graph labelled by the caller's
    labels, the live vectors only (beside a projected graph), one element deleted."""
    import json

    import hnswlib

    graphed = vectors if projection is None else vectors @ projection
    graph = hnswlib.Index(space="cosine", dim=graphed.shape[1])
    graph.init_index(max_elements=1024, ef_construction=200, M=20, allow_replace_deleted=True)
    graph.add_items(graphed, labels)
    graph.add_items(graphed[:1], [99_999])
    graph.mark_deleted(99_999)
    graph.save_index(str(directory / "graph.bin"))
    meta: dict[str, object] = {"dimension": DIMENSION, "mode": "graph", "deleted": 1}
    if projection is None:
        meta["labels"] = sorted(labels)
    else:
        np.save(directory / "vectors.npy", vectors)
        np.save(directory / "projection.npy", projection)
        meta["labels"] = labels
        meta["projected"] = True
    (directory / "index.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("projected", [True, False])
def test_a_graph_saved_before_its_labels_were_rows_is_rebuilt_when_loaded(
    tmp_path: Path, projected: bool
) -> None:
    vectors = embedding_like(400, seed=8)
    labels = list(range(5000, 5400))
    projection = None
    if projected:
        axes = np.linalg.eigh(vectors.T.astype(np.float64) @ vectors)[1][:, ::-1][:, :16]
        projection = np.ascontiguousarray(axes, dtype=np.float32)
    _write_labelled_graph(tmp_path, labels, vectors, projection)
    loaded = PartitionIndex.load(tmp_path, SETTINGS)
    assert len(loaded) == 400
    assert loaded.graph_dimension == (16 if projected else DIMENSION)
    queries = embedding_like(50, seed=9)
    exact = queries @ vectors.T
    for query, similarities in zip(queries, exact, strict=True):
        label, similarity = loaded.search(query, 1)[0]
        assert label == labels[int(similarities.argmax())]
        assert similarity == pytest.approx(float(similarities.max()), abs=1e-5)
    # It goes on as an index of this format: deletions, inserts, and a save read back.
    loaded.apply([5000, 5001], [7000], queries[:1])
    assert loaded.search(queries[0], 1)[0] == (7000, pytest.approx(1.0, abs=1e-5))
    assert all(label not in (5000, 5001) for label, _ in loaded.search(vectors[0], 8))
    again = tmp_path / "again"
    again.mkdir()
    loaded.save(again)
    assert PartitionIndex.load(again, SETTINGS).search_many(queries, 3) == loaded.search_many(
        queries, 3
    )


def test_an_exact_index_saved_before_format_3_is_read(tmp_path: Path) -> None:
    import json

    vectors = embedding_like(40, seed=10)
    labels = list(range(300, 340))
    np.save(tmp_path / "vectors.npy", vectors)
    (tmp_path / "index.json").write_text(
        json.dumps({"dimension": DIMENSION, "mode": "exact", "labels": labels})
    )
    loaded = PartitionIndex.load(tmp_path, SETTINGS)
    assert not loaded.uses_graph
    assert len(loaded) == 40
    assert loaded.search(vectors[7], 1) == [(307, pytest.approx(1.0, abs=1e-5))]


MODES = {
    "exact": HnswSettings(exact_limit=10_000),
    "graph": HnswSettings(exact_limit=300, graph_dimension=None),
    "projected": SETTINGS,
}


@pytest.mark.parametrize("mode", MODES)
def test_a_label_added_again_keeps_only_its_new_vector(mode: str) -> None:
    index, vectors = filled(500, MODES[mode])
    index.apply([], [7], vectors[8:9])  # label 7 now holds label 8's vector
    assert len(index) == 500
    assert [label for label, _ in index.search(vectors[7], 3)].count(7) <= 1
    assert index.search(vectors[8], 2)[1][0] in (7, 8)
    index.apply([7], [], None)
    assert len(index) == 499
    assert all(label != 7 for label, _ in index.search(vectors[8], 8))
    assert all(label != 7 for label, _ in index.search(vectors[7], 8))
    with pytest.raises(InvalidArgumentError, match="distinct labels"):
        index.apply([], [900, 900], vectors[:2])
    assert len(index) == 499


@pytest.mark.parametrize("mode", ["exact", "projected"])
def test_a_removed_vector_is_neither_kept_nor_saved(mode: str, tmp_path: Path) -> None:
    index, vectors = filled(500, MODES[mode])
    index.apply([42], [], None)
    index.save(tmp_path)
    saved = np.load(tmp_path / "vectors.npy")
    assert not (np.abs(saved @ vectors[42]) > 0.999).any()
    assert len(PartitionIndex.load(tmp_path, MODES[mode])) == 499


def test_a_legacy_graph_with_every_vector_deleted_loads_empty(tmp_path: Path) -> None:
    import json

    import hnswlib

    graph = hnswlib.Index(space="cosine", dim=DIMENSION)
    graph.init_index(max_elements=64, allow_replace_deleted=True)
    graph.add_items(embedding_like(3, seed=11), [0, 1, 2])
    for label in (0, 1, 2):
        graph.mark_deleted(label)
    graph.save_index(str(tmp_path / "graph.bin"))
    meta = {"dimension": DIMENSION, "mode": "graph", "deleted": 3, "labels": []}
    (tmp_path / "index.json").write_text(json.dumps(meta))
    loaded = PartitionIndex.load(tmp_path, SETTINGS)
    assert len(loaded) == 0
    assert loaded.search(embedding_like(1, seed=12)[0], 3) == []
    loaded.apply([], [5], embedding_like(1, seed=13))
    assert len(loaded) == 1
