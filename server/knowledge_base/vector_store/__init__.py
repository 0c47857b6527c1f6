"""Vector stores by kind; each knowledge base records the kind it uses."""

from __future__ import annotations

from pathlib import Path

from server.errors import InvalidInput
from server.knowledge_base.vector_store.base import (
    EmbedModelMismatch,
    StoredDoc,
    StoreUnreadable,
    VectorStore,
)
from server.knowledge_base.vector_store.faiss_store import FaissStore, set_threads

STORE_KINDS: dict[str, type[VectorStore]] = {FaissStore.kind: FaissStore}


def check_kind(kind: str) -> str:
    """Return the kind if it is a known vector store kind, else raise InvalidInput."""
    if kind not in STORE_KINDS:
        raise InvalidInput(f"unknown vector store {kind!r}; available: {', '.join(STORE_KINDS)}")
    return kind


def open_store(kind: str, root: Path, kb_name: str, embed_model: str, *, bm25_tokenizer: str = "bigram",
               index_headings: bool = True, fresh: bool = False) -> VectorStore:
    """The one way to make a store object: the saved store of a knowledge base (empty when never saved), or
    with ``fresh`` an empty one that replaces what is saved at ``root`` when it is saved (a rebuild)."""
    store = STORE_KINDS[check_kind(kind)](root, kb_name, embed_model, bm25_tokenizer=bm25_tokenizer,
                                          index_headings=index_headings)
    if not fresh:
        store.load()
    return store


__all__ = [
    "STORE_KINDS",
    "EmbedModelMismatch",
    "FaissStore",
    "StoreUnreadable",
    "StoredDoc",
    "VectorStore",
    "check_kind",
    "open_store",
    "set_threads",
]
