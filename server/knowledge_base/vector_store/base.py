"""The per-knowledge-base store: chunk texts, their vectors and a BM25 index, saved together atomically.

`VectorStore` owns the chunk documents (id -> doc_id, text, metadata), the BM25 index and the
on-disk layout; subclasses implement only the vector index through the ``do_*`` hooks.

Scores: vectors are L2-normalised, so the inner product is the cosine similarity in [-1, 1].
The vector score reported is ``max(0, cosine)``, in [0, 1], higher is better: negative cosines
mean "unrelated" and are clamped to 0. BM25 search returns raw BM25 scores (see bm25.py).

On disk, under ``<kb>/vector_store/``::

    CURRENT            name of the live version folder
    v000007/           store.json (kind, embed model, dim, ...), docs.jsonl, the vector index, bm25/

Each save writes a complete new version folder and switches CURRENT to it atomically (versions.py),
so a crash mid-save leaves the previous version in place and loadable.
"""

from __future__ import annotations

import json
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from server.errors import Conflict, ServiceUnavailable
from server.knowledge_base.bm25 import BM25Index
from server.knowledge_base.codes import alphanumeric
from server.knowledge_base.splitter import chunk_text_with_headings
from server.knowledge_base.types import Chunk
from server.knowledge_base.vector_store import versions
from server.knowledge_base.vector_store.sentence_index import SentenceIndex

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
SIDECAR = "store.json"
DOCS = "docs.jsonl"


class StoreUnreadable(ServiceUnavailable):
    """The saved store cannot be read; rebuilding it from content/ fixes it."""

    code = "vector_store_unreadable"


class EmbedModelMismatch(Conflict):
    """Vectors of one embedding model must never be searched or mixed with another's."""

    code = "embed_model_mismatch"


@dataclass(frozen=True)
class StoreOptions:
    """How a store indexes chunks (BM25 tokenizer for Chinese, heading paths) and where a database-backed
    store keeps its vectors."""

    bm25_tokenizer: str = "bigram"
    index_headings: bool = True
    pgvector_url: str | None = None
    milvus_uri: str | None = None
    milvus_token: str | None = field(default=None, repr=False)


@dataclass
class StoredDoc:
    """One chunk as held by a store."""

    id: int
    doc_id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> str:
        return str(self.metadata.get("source", ""))


def index_text(text: str, metadata: dict[str, Any], with_headings: bool) -> str:
    """Text that is embedded and BM25-indexed: the chunk preceded by its heading path when enabled."""
    return chunk_text_with_headings(Chunk(text=text, metadata=metadata)) if with_headings else text


class VectorStore(ABC):
    """Chunks, vectors and BM25 of one knowledge base; every public method is thread-safe."""

    kind: ClassVar[str]

    def __init__(self, root: Path, kb_name: str, embed_model: str, *, bm25_tokenizer: str = "bigram",
                 index_headings: bool = True) -> None:
        self.root = Path(root)
        self.kb_name = kb_name
        self.embed_model = embed_model
        self.index_headings = index_headings
        self.dim: int | None = None
        self.version = 0
        self.lock = threading.RLock()
        self._docs: dict[int, StoredDoc] = {}
        self._by_doc_id: dict[str, int] = {}
        self._by_source: dict[str, set[int]] = {}
        self._next_id = 1
        self._bm25 = BM25Index(bm25_tokenizer)
        self._bm25_dirty = False
        # Every chunk's letters and digits (``codes.alphanumeric``), one line each, for ``mentions``; None when
        # the chunks changed since.
        self._plain: str | None = None
        self._sentences = SentenceIndex()

    # ----- hooks implemented by each vector index kind
    @classmethod
    def check_options(cls, options: StoreOptions) -> None:
        """Raise InvalidInput, naming the setting, when this kind cannot work with ``options``."""

    def configure(self, options: StoreOptions) -> None:
        """Take what this kind needs from ``options``; called once, before ``load``."""

    @classmethod
    def discard_saved(cls, options: StoreOptions, kb_name: str) -> None:
        """Remove what a deleted knowledge base keeps outside its folder (its folder is removed anyway)."""

    @abstractmethod
    def do_init_index(self, dim: int) -> None: ...

    @abstractmethod
    def do_load_index(self, folder: Path) -> None: ...

    @abstractmethod
    def do_save_index(self, folder: Path) -> None: ...

    @abstractmethod
    def do_add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    @abstractmethod
    def do_remove(self, ids: np.ndarray) -> None: ...

    @abstractmethod
    def do_search(self, vector: np.ndarray, k: int, ids: np.ndarray | None) -> list[tuple[int, float]]:
        """Up to k (id, cosine) pairs, best first; ``ids`` restricts the candidates."""

    @abstractmethod
    def do_count(self) -> int: ...

    @abstractmethod
    def do_vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of ``ids``, one row each, in that order (to move a store without re-embedding)."""

    # ----- reading
    def __len__(self) -> int:
        with self.lock:
            return len(self._docs)

    def get(self, doc_id: str) -> StoredDoc | None:
        with self.lock:
            idx = self._by_doc_id.get(doc_id)
            return None if idx is None else self._docs[idx]

    def docs_for_source(self, source: str) -> list[StoredDoc]:
        """Chunks of one file in chunk order."""
        with self.lock:
            docs = [self._docs[i] for i in self._by_source.get(source, ())]
        return sorted(docs, key=lambda d: (d.metadata.get("chunk_index", 0), d.id))

    def doc_ids(self) -> set[str]:
        with self.lock:
            return set(self._by_doc_id)

    def sources(self) -> set[str]:
        with self.lock:
            return {s for s, ids in self._by_source.items() if ids}

    def mentions(self, term: str) -> bool:
        """Whether any chunk's text holds ``term``, case and everything but letters and digits aside ("ss-400" is
        held by "SS400", "cd161" by a CSV header's "CD161CD8Tfrequency")."""
        wanted = alphanumeric(term)
        with self.lock:
            if self._plain is None:
                self._plain = "\n".join(alphanumeric(d.text) for d in self._docs.values())
            return bool(wanted) and wanted in self._plain

    def index_text(self, text: str, metadata: dict[str, Any]) -> str:
        return index_text(text, metadata, self.index_headings)

    def vector_search(self, vector: np.ndarray, k: int, source: str | None = None) -> list[tuple[StoredDoc, float]]:
        """Nearest chunks with score max(0, cosine), best first."""
        with self.lock:
            if not self._docs or k <= 0:
                return []
            self._check_dim(int(np.asarray(vector).shape[-1]))
            allowed = self._source_ids(source)
            if allowed is not None and not allowed:
                return []
            ids = None if allowed is None else np.fromiter(allowed, dtype=np.int64)
            query = np.ascontiguousarray(np.asarray(vector, dtype=np.float32).reshape(1, -1))
            hits = self.do_search(query, min(k, len(self._docs)), ids)
            return [(self._docs[i], min(1.0, max(0.0, s))) for i, s in hits if i in self._docs]

    def sentence_search(self, vector: np.ndarray, k: int, source: str | None = None
                        ) -> list[tuple[StoredDoc, float]]:
        """Chunks by their best-matching sentence, score max(0, cosine), best first (see sentence_index.py)."""
        with self.lock:
            allowed = self._source_ids(source)
            if allowed is not None and not allowed:
                return []
            hits = self._sentences.search(vector, k, allowed)
            return [(self._docs[i], min(1.0, max(0.0, s))) for i, s in hits if i in self._docs]

    def sentence_scores(self, doc_id: str, vector: np.ndarray) -> np.ndarray | None:
        """Cosine of each sentence of one chunk with a query vector, in text order (None: not embedded)."""
        with self.lock:
            idx = self._by_doc_id.get(doc_id)
            return None if idx is None else self._sentences.scores(idx, vector)

    @property
    def sentence_count(self) -> int:
        with self.lock:
            return len(self._sentences)

    def bm25_search(self, query: str, k: int, source: str | None = None) -> list[tuple[StoredDoc, float]]:
        """Chunks matching the query's keywords with raw BM25 scores, best first."""
        with self.lock:
            self._refresh_bm25()
            allowed = self._source_ids(source)
            if allowed is not None and not allowed:
                return []
            hits = self._bm25.search(query, k, allowed)
            return [(self._docs[i], s) for i, s in hits if i in self._docs]

    def copy_into(self, target: "VectorStore", batch: int = 1000) -> int:
        """Add every chunk, with the vectors and sentence vectors read back from this store, to ``target``
        (in chunk-id order, keeping doc ids, texts and metadata); returns how many. Nothing is re-embedded."""
        with self.lock:
            docs = sorted(self._docs.values(), key=lambda d: d.id)
            for start in range(0, len(docs), batch):
                part = docs[start:start + batch]
                vectors = self.do_vectors(np.asarray([d.id for d in part], dtype=np.int64))
                sentences = [self._sentences.rows(d.id, vectors.shape[1]) for d in part]
                target.add([(d.doc_id, d.text, d.metadata) for d in part], vectors,
                           sentences if self._sentences.owners() else None)
            return len(docs)

    # ----- writing (in memory until save())
    def add(self, docs: list[tuple[str, str, dict[str, Any]]], vectors: np.ndarray,
            sentence_vectors: Sequence[np.ndarray] | None = None) -> list[StoredDoc]:
        """Add (doc_id, text, metadata) chunks with their vectors, and optionally each chunk's sentence
        vectors (one matrix per chunk, a row per sentence of ``sentences.sentence_spans``)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if len(docs) != vectors.shape[0]:
            raise ValueError(f"{len(docs)} documents but {vectors.shape[0]} vectors")
        if sentence_vectors is not None and len(sentence_vectors) != len(docs):
            raise ValueError(f"{len(docs)} documents but sentence vectors for {len(sentence_vectors)}")
        if not docs:
            return []
        with self.lock:
            if self.dim is None:
                self.dim = int(vectors.shape[1])
                self.do_init_index(self.dim)
            self._check_dim(int(vectors.shape[1]))
            ids = np.arange(self._next_id, self._next_id + len(docs), dtype=np.int64)
            for rows in sentence_vectors or ():
                if len(rows):
                    self._check_dim(int(np.asarray(rows).shape[1]))
            self.do_add(ids, vectors)
            for idx, rows in zip(ids.tolist(), sentence_vectors or ()):
                self._sentences.add(idx, rows)
            self._next_id += len(docs)
            stored = []
            for idx, (doc_id, text, metadata) in zip(ids.tolist(), docs):
                doc = StoredDoc(idx, doc_id, text, dict(metadata))
                self._register(doc)
                stored.append(doc)
            self._changed()
            return stored

    def delete(self, doc_ids: list[str]) -> int:
        """Remove chunks by doc_id; returns how many were removed."""
        with self.lock:
            ids = [self._by_doc_id[d] for d in doc_ids if d in self._by_doc_id]
            if not ids:
                return 0
            self.do_remove(np.asarray(ids, dtype=np.int64))
            self._sentences.remove(ids)
            for idx in ids:
                doc = self._docs.pop(idx)
                del self._by_doc_id[doc.doc_id]
                self._by_source.get(doc.source, set()).discard(idx)
            self._changed()
            return len(ids)

    def delete_source(self, source: str) -> list[str]:
        """Remove every chunk of one file; returns their doc_ids."""
        with self.lock:
            doc_ids = [self._docs[i].doc_id for i in self._by_source.get(source, ())]
            self.delete(doc_ids)
            self._by_source.pop(source, None)
            return doc_ids

    def update(self, doc_id: str, text: str, vector: np.ndarray,
               sentence_vectors: np.ndarray | None = None) -> StoredDoc:
        """Replace the text and vectors of one chunk, keeping its doc_id and metadata."""
        with self.lock:
            old = self._by_doc_id[doc_id]
            doc = self._docs[old]
            self.delete([doc_id])
            sentences = None if sentence_vectors is None else [sentence_vectors]
            return self.add([(doc_id, text, doc.metadata)], np.asarray(vector, dtype=np.float32).reshape(1, -1),
                            sentences)[0]

    def clear(self) -> None:
        """Forget every chunk (the saved version stays until the next save)."""
        with self.lock:
            self._docs.clear()
            self._by_doc_id.clear()
            self._by_source.clear()
            self._sentences.clear()
            self.dim = None
            self.do_init_index(0)
            self._changed()

    def _source_ids(self, source: str | None) -> set[int] | None:
        """The chunk ids of one file (empty if it has none), or None for no restriction."""
        return None if source is None else self._by_source.get(source, set())

    def _register(self, doc: StoredDoc) -> None:
        self._plain = None
        self._docs[doc.id] = doc
        self._by_doc_id[doc.doc_id] = doc.id
        self._by_source.setdefault(doc.source, set()).add(doc.id)

    def _check_dim(self, dim: int) -> None:
        if self.dim is not None and dim != self.dim:
            raise EmbedModelMismatch(
                f"knowledge base {self.kb_name!r} holds {self.dim}-dimensional vectors of {self.embed_model!r}, "
                f"got {dim}-dimensional ones; rebuild it with `kbchat init --recreate-vs -n {self.kb_name}`"
            )

    def _changed(self) -> None:
        """The chunks changed: BM25 and the text ``mentions`` reads are rebuilt when next needed."""
        self._bm25_dirty = True
        self._plain = None

    def _refresh_bm25(self) -> None:
        if self._bm25_dirty:
            docs = sorted(self._docs.values(), key=lambda d: d.id)
            self._bm25.build([d.id for d in docs], [self.index_text(d.text, d.metadata) for d in docs])
            self._bm25_dirty = False

    # ----- persistence
    def save(self) -> None:
        """Write a complete new version and switch to it atomically (see versions.py)."""
        with self.lock:
            self._refresh_bm25()
            self.version = versions.commit(self.root, self._write_version, self.version)

    def _write_version(self, folder: Path) -> None:
        self.do_save_index(folder)
        with open(folder / DOCS, "w", encoding="utf-8") as handle:
            for doc in sorted(self._docs.values(), key=lambda d: d.id):
                record = {"id": doc.id, "doc_id": doc.doc_id, "text": doc.text, "metadata": doc.metadata}
                handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self._bm25.save(folder / "bm25")
        self._sentences.save(folder)
        sidecar = {
            "format": FORMAT_VERSION,
            "kind": self.kind,
            "kb": self.kb_name,
            "embed_model": self.embed_model,
            "dim": self.dim,
            "count": len(self._docs),
            "sentences": len(self._sentences),
            "next_id": self._next_id,
            "index_headings": self.index_headings,
            "bm25_tokenizer": self._bm25.tokenizer,
        }
        (folder / SIDECAR).write_text(json.dumps(sidecar, ensure_ascii=False, indent=1), encoding="utf-8")

    def load(self) -> None:
        """Read the version CURRENT names; a store never saved stays empty."""
        with self.lock:
            try:
                folder = versions.current_folder(self.root)
                if folder is None:
                    return
                meta = json.loads((folder / SIDECAR).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise self._unreadable(exc) from exc
            if meta.get("kind") != self.kind or meta.get("format") != FORMAT_VERSION:
                raise self._unreadable(f"it is a {meta.get('kind')!r} store of format {meta.get('format')}")
            if meta.get("embed_model") != self.embed_model:
                raise EmbedModelMismatch(
                    f"the vector store of knowledge base {self.kb_name!r} was built with embedding model "
                    f"{meta.get('embed_model')!r} (dim {meta.get('dim')}), but the knowledge base uses "
                    f"{self.embed_model!r}; rebuild it with `kbchat init --recreate-vs -n {self.kb_name}`"
                )
            try:
                self._read_version(folder, meta)
            except (OSError, ValueError, KeyError, RuntimeError) as exc:
                raise self._unreadable(exc) from exc
            self.version = versions.version_number(folder)

    def _read_version(self, folder: Path, meta: dict[str, Any]) -> None:
        self.dim = meta["dim"]
        self.index_headings = bool(meta.get("index_headings", True))
        self._next_id = int(meta["next_id"])
        with open(folder / DOCS, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    record = json.loads(line)
                    self._register(StoredDoc(record["id"], record["doc_id"], record["text"], record["metadata"]))
        if self.dim:
            self.do_load_index(folder)
        else:
            self.do_init_index(0)
        if self.do_count() != len(self._docs):
            raise ValueError(f"index holds {self.do_count()} vectors for {len(self._docs)} chunks")
        self._sentences.load(folder, self.dim, self._docs.keys())
        wanted = self._bm25.tokenizer
        try:
            self._bm25 = BM25Index.load(folder / "bm25")
        except (OSError, ValueError, KeyError) as exc:
            logger.warning("BM25 index of %s unreadable (%s); rebuilding it", self.kb_name, exc)
            self._bm25 = BM25Index(wanted)
            self._changed()
        if self._bm25.tokenizer != wanted or self._bm25.stale:
            self._bm25 = BM25Index(wanted)
            self._changed()

    def _unreadable(self, reason: object) -> StoreUnreadable:
        return StoreUnreadable(
            f"the vector store of knowledge base {self.kb_name!r} cannot be read ({reason}); "
            f"rebuild it with `kbchat init --recreate-vs -n {self.kb_name}`"
        )
