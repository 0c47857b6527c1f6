"""Vector stores by kind; each knowledge base records the kind it uses."""

from __future__ import annotations

from pathlib import Path

from server.errors import InvalidInput
from server.knowledge_base.vector_store import versions
from server.knowledge_base.vector_store.base import (
    EmbedModelMismatch,
    StoredDoc,
    StoreOptions,
    StoreUnreadable,
    VectorStore,
)
from server.knowledge_base.vector_store.faiss_store import FaissStore, set_threads
from server.knowledge_base.vector_store.milvus_store import MilvusStore
from server.knowledge_base.vector_store.pgvector_store import PgVectorStore

STORE_KINDS: dict[str, type[VectorStore]] = {
    FaissStore.kind: FaissStore, MilvusStore.kind: MilvusStore, PgVectorStore.kind: PgVectorStore,
}
# Reads of a store that other processes keep saving meanwhile, before its unreadability is believed.
LOAD_ATTEMPTS = 5


def check_kind(kind: str, options: StoreOptions | None = None) -> str:
    """Return the kind if it is a known vector store kind (usable with ``options``, when given), else raise
    InvalidInput."""
    if kind not in STORE_KINDS:
        raise InvalidInput(f"unknown vector store {kind!r}; available: {', '.join(STORE_KINDS)}")
    if options is not None:
        STORE_KINDS[kind].check_options(options)
    return kind


def usable_kinds(options: StoreOptions) -> list[str]:
    """The kinds a new knowledge base may choose with these options (pgvector and milvus need their database)."""
    usable = []
    for kind, store_class in sorted(STORE_KINDS.items()):
        try:
            store_class.check_options(options)
        except InvalidInput:
            continue
        usable.append(kind)
    return usable


def open_store(kind: str, root: Path, kb_name: str, embed_model: str, options: StoreOptions = StoreOptions(), *,
               fresh: bool = False) -> VectorStore:
    """The one way to make a store object: the saved store of a knowledge base (empty when never saved), or
    with ``fresh`` an empty one that replaces what is saved at ``root`` when it is saved (a rebuild)."""
    store_class = STORE_KINDS[check_kind(kind, options)]
    attempts_left = LOAD_ATTEMPTS
    while True:
        store = store_class(root, kb_name, embed_model, bm25_tokenizer=options.bm25_tokenizer,
                            index_headings=options.index_headings)
        store.configure(options)
        if fresh:
            return store
        before = versions.current_name(root)
        try:
            store.load()
            return store
        except StoreUnreadable:
            # Another process saved twice while this one read, and the version read was pruned: read the new one.
            attempts_left -= 1
            if attempts_left == 0 or versions.current_name(root) == before:
                raise


__all__ = [
    "STORE_KINDS",
    "EmbedModelMismatch",
    "FaissStore",
    "MilvusStore",
    "PgVectorStore",
    "StoreOptions",
    "StoreUnreadable",
    "StoredDoc",
    "VectorStore",
    "check_kind",
    "open_store",
    "usable_kinds",
    "set_threads",
]
