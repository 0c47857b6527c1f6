"""Moving a knowledge base to another vector store kind (``kbchat kb migrate NAME --to pgvector`` or ``milvus``).

The vectors are read back from the source store, not re-embedded: chunk texts, doc ids, metadata, chunk and
sentence vectors go into a fresh store of the target kind, saved as the next version of the knowledge base's
store folder; then the database records the new kind. All of it under the knowledge base's writer lock, so
no upload interleaves, and readers in other processes reload on the new version.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from server.db import kb_repository as repo
from server.db.records import KBRecord
from server.errors import InvalidInput
from server.knowledge_base.context import KBContext, make_store
from server.knowledge_base.vector_store import STORE_KINDS, check_kind

logger = logging.getLogger(__name__)


def migrate_store(ctx: KBContext, kb: str, to_kind: str) -> KBRecord:
    """Move knowledge base ``kb`` to vector store ``to_kind``; returns its updated record."""
    check_kind(to_kind, ctx.store_options)
    with ctx.pool.writer_lock(kb):
        record = ctx.record(kb)
        if record.vector_store == to_kind:
            raise InvalidInput(f"knowledge base {kb!r} already uses vector store {to_kind!r}")
        began = time.monotonic()
        source = ctx.pool.get(kb)
        target = make_store(ctx.store_options, ctx.layout, replace(record, vector_store=to_kind), fresh=True)
        with ctx.pool.saving(kb, target):
            moved = source.copy_into(target)
        updated = ctx.db.run(repo.set_vector_store, kb, to_kind)
        ctx.pool.put(kb, target)
        if record.vector_store in STORE_KINDS:
            STORE_KINDS[record.vector_store].discard_saved(ctx.store_options, kb)
    logger.info("moved knowledge base %s from %s to %s: %d chunks in %.1f s", kb, record.vector_store, to_kind,
                moved, time.monotonic() - began)
    return updated
