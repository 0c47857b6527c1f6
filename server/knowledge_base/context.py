"""What the knowledge-base manager and its indexer share: the database, the store pool, the embedding
service, the folder layout and the KB settings, in one small typed object built once per manager."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from configs.settings import KBSettings
from server.db import Database
from server.db import kb_repository as repo
from server.db.records import KBRecord
from server.knowledge_base.embeddings import EmbeddingService
from server.knowledge_base.names import validate_kb_name
from server.knowledge_base.store_pool import StorePool
from server.knowledge_base.vector_store import StoreOptions, VectorStore, open_store

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class KBLayout:
    """Where a knowledge base's files live: ``<root>/<name>/content`` and ``<root>/<name>/vector_store``."""

    root: Path

    def kb_dir(self, kb: str) -> Path:
        return self.root / validate_kb_name(kb)

    def content_dir(self, kb: str) -> Path:
        return self.kb_dir(kb) / "content"

    def store_dir(self, kb: str) -> Path:
        return self.kb_dir(kb) / "vector_store"

    def staging_dir(self, kb: str) -> Path:
        """Uploads wait here, on content/'s filesystem, until they are moved in atomically."""
        return self.kb_dir(kb) / ".staging"

    @property
    def lock_dir(self) -> Path:
        """Writer lock files, outside every knowledge base's folder (deleting one must not remove its lock)."""
        return self.root / ".locks"


MILVUS_LITE_FILE = ".milvus.db"  # in the knowledge base root; a KB name never starts with '.'


def store_options(settings: KBSettings, db: Database, kb_root: Path) -> StoreOptions:
    """The configured store options; pgvector's database is kb.pgvector_url, else the metadata database
    when that is PostgreSQL; Milvus is kb.milvus_uri, else a milvus-lite database in the knowledge base root."""
    pgvector_url = settings.pgvector_url or (db.url if db.engine.dialect.name == "postgresql" else None)
    token = settings.milvus_token.get_secret_value() if settings.milvus_token else None
    return StoreOptions(bm25_tokenizer=settings.bm25_tokenizer, index_headings=settings.index_headings,
                        pgvector_url=pgvector_url, milvus_uri=settings.milvus_uri or str(kb_root / MILVUS_LITE_FILE),
                        milvus_token=token)


def make_store(options: StoreOptions, layout: KBLayout, record: KBRecord, embed_model: str | None = None, *,
               fresh: bool = False) -> VectorStore:
    """The store object of a knowledge base (loaded from disk unless ``fresh``), with the configured options."""
    return open_store(record.vector_store, layout.store_dir(record.name), record.name,
                      embed_model or record.embed_model, options, fresh=fresh)


class StoreOpener:
    """Loads a knowledge base's saved store for the pool (the pool's ``opener``)."""

    def __init__(self, db: Database, layout: KBLayout, settings: KBSettings, options: StoreOptions) -> None:
        self.db, self.layout, self.settings, self.options = db, layout, settings, options

    def __call__(self, kb: str) -> VectorStore:
        record = self.db.run(repo.require_kb, validate_kb_name(kb))
        store = make_store(self.options, self.layout, record)
        if self.settings.sentence_vectors and len(store) and not store.sentence_count:
            logger.warning("knowledge base %s was built without sentence vectors; rebuild it (`kbchat kb rebuild %s`) "
                           "for better retrieval", kb, kb)
        return store


@dataclass(frozen=True)
class KBContext:
    """The parts of a KnowledgeBaseManager its helpers (the indexer, maintenance) work with."""

    db: Database
    pool: StorePool
    embeddings: EmbeddingService
    layout: KBLayout
    settings: KBSettings
    store_options: StoreOptions

    @classmethod
    def build(cls, settings: KBSettings, db: Database, kb_root: Path, cache_dir: Path) -> "KBContext":
        layout = KBLayout(kb_root)
        embeddings = EmbeddingService(settings, cache_dir / "embeddings.sqlite")
        options = store_options(settings, db, kb_root)
        pool = StorePool(settings.index_pool_size, StoreOpener(db, layout, settings, options), layout.lock_dir)
        return cls(db=db, pool=pool, embeddings=embeddings, layout=layout, settings=settings, store_options=options)

    def record(self, kb: str) -> KBRecord:
        """The database record of a knowledge base, or NotFound (InvalidInput for a bad name)."""
        return self.db.run(repo.require_kb, validate_kb_name(kb))

    def new_store(self, record: KBRecord, embed_model: str) -> VectorStore:
        """An empty store for the knowledge base that replaces its saved one when saved."""
        return make_store(self.store_options, self.layout, record, embed_model, fresh=True)
