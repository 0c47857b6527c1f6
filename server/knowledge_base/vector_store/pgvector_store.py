"""Chunk vectors in PostgreSQL with pgvector: one table per dimension, a KB column and an HNSW index per KB.

Rows carry the store version that added them and the one that removed them, so a process that loaded
version V searches exactly the vectors of V while a writer prepares V+1 (the chunk texts, BM25 and sentence
vectors stay in the version folder, as for FAISS; see base.py). A save writes its changes in one
transaction just before the version folder is switched in:

* rows added after the last committed version (left by a save that failed after its transaction) are
  deleted, and removals recorded after it are undone, so the database agrees with ``CURRENT`` again;
* removed rows get ``removed_in = new version``; new rows ``added_in = new version``;
* rows removed before the previous version are dropped (versions.py keeps that one for slow readers).

Scores follow the FAISS convention: ``1 - cosine distance`` = cosine, clamped to [0, 1] by the base class.
"""

from __future__ import annotations

import hashlib
import logging
import threading

import numpy as np
from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    create_engine,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError

from server.db.engine import database_url
from server.errors import InvalidInput, ServiceUnavailable
from server.knowledge_base.vector_store.base import StoreOptions
from server.knowledge_base.vector_store.versioned_rows import VersionedRowStore

logger = logging.getLogger(__name__)

URL_SETTING = "kb.pgvector_url"
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64
# hnsw.ef_search per query: at least this, and a few times k, so filtered-out rows still leave k hits.
MIN_EF_SEARCH = 40
EF_PER_HIT = 4
MAX_EF_SEARCH = 1000

_engines: dict[str, Engine] = {}
_tables: dict[tuple[str, int], Table] = {}
_registry_lock = threading.Lock()


class VectorDatabaseUnavailable(ServiceUnavailable):
    """The pgvector database of a knowledge base cannot be reached or used."""

    code = "vector_database_unavailable"


def engine_for(url: str) -> Engine:
    """One engine (connection pool) per URL for every pgvector store of the process."""
    with _registry_lock:
        engine = _engines.get(url)
        if engine is None:
            # The same URL rules as the metadata database (a bare postgresql:// means psycopg 3).
            engine = _engines[url] = create_engine(database_url(url), pool_pre_ping=True)
        return engine


def dispose_engines() -> None:
    with _registry_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _tables.clear()


TABLE_PREFIX = "kbchat_vectors_"


def table_name(dim: int) -> str:
    return f"{TABLE_PREFIX}{dim}"


def _table(engine: Engine, dim: int) -> Table:
    """The vector table of one dimension, created with its KB index when missing (under an advisory lock)."""
    key = (str(engine.url), dim)
    with _registry_lock:
        table = _tables.get(key)
    if table is not None:
        return table
    table = Table(
        table_name(dim), MetaData(),
        Column("kb", String(100), primary_key=True),
        Column("id", BigInteger, primary_key=True),  # a rebuild reuses ids: added_in tells the rows apart
        Column("embedding", Vector(dim), nullable=False),
        Column("added_in", Integer, primary_key=True),
        Column("removed_in", Integer, nullable=True),
    )
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": table.name})
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
        table.create(conn, checkfirst=True)
    with _registry_lock:
        _tables[key] = table
    return table


def _vector_tables(conn: Connection) -> list[str]:
    """Names of the vector tables that exist, one per dimension."""
    return list(conn.scalars(text("SELECT tablename FROM pg_tables WHERE tablename ~ :pattern"),
                             {"pattern": f"^{TABLE_PREFIX}[0-9]+$"}))


def _quoted(value: str) -> str:
    """A SQL string literal: the partial index of a KB is matched only by a literal ``kb = '...'``."""
    return str(literal(value, String()).compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))


def index_name(dim: int, kb: str) -> str:
    return f"{table_name(dim)}_hnsw_{hashlib.sha1(kb.encode()).hexdigest()[:16]}"


class PgVectorStore(VersionedRowStore):
    """Cosine search over pgvector's HNSW index; changes wait in memory until ``save()``."""

    kind = "pgvector"
    _engine: Engine

    @classmethod
    def check_options(cls, options: StoreOptions) -> None:
        if not options.pgvector_url:
            raise InvalidInput(f"vector store 'pgvector' needs a PostgreSQL database with pgvector: set {URL_SETTING} "
                               "(or make paths.database_url a PostgreSQL URL)")

    @classmethod
    def discard_saved(cls, options: StoreOptions, kb_name: str) -> None:
        if not options.pgvector_url:
            return
        engine = engine_for(options.pgvector_url)
        try:
            with engine.begin() as conn:
                for name in _vector_tables(conn):
                    conn.execute(text(f"DELETE FROM {name} WHERE kb = :kb"), {"kb": kb_name})
                    conn.exec_driver_sql(f"DROP INDEX IF EXISTS {index_name(int(name[len(TABLE_PREFIX):]), kb_name)}")
        except DBAPIError as exc:
            # Harmless leftovers: a new knowledge base of that name starts by removing them.
            logger.warning("vectors of deleted knowledge base %s stay in the pgvector database: %s", kb_name, exc.orig)

    def configure(self, options: StoreOptions) -> None:
        self.check_options(options)
        self._engine = engine_for(str(options.pgvector_url))
        self._indexed: str | None = None
        self._reset_rows()

    # ----- rows in PostgreSQL (see versioned_rows.py)
    def _saved_count(self) -> int:
        table = self._table()
        with self._connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(table).where(self._visible(table))) or 0)

    def _saved_vectors(self, ids: list[int]) -> dict[int, np.ndarray]:
        table = self._table()
        with self._connect() as conn:
            query = select(table.c.id, table.c.embedding).where(self._visible(table), table.c.id.in_(ids))
            return {int(i): np.asarray(v, dtype=np.float32) for i, v in conn.execute(query).all()}

    def _write_rows(self, new: int, base: int, replace_all: bool) -> None:
        current = self._table() if self._index_dim else None
        try:
            with self._engine.begin() as conn:
                for table in self._tables(conn, current):
                    self._write(conn, table, new, base, replace_all=replace_all, insert_here=table is current)
        except DBAPIError as exc:
            raise self._unavailable(exc) from exc

    # ----- PostgreSQL
    def _table(self) -> Table:
        try:
            table = _table(self._engine, self._index_dim)
            self._ensure_kb_index(table)
        except DBAPIError as exc:
            raise self._unavailable(exc) from exc
        return table

    def _tables(self, conn: Connection, current: Table | None) -> list[Table]:
        """The vector table of this store's dimension, then those of other dimensions (an earlier model)."""
        others = [_table(self._engine, int(name[len(TABLE_PREFIX):])) for name in _vector_tables(conn)
                  if current is None or name != current.name]
        return ([current] if current is not None else []) + others

    def _connect(self) -> Connection:
        try:
            return self._engine.connect()
        except DBAPIError as exc:
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: DBAPIError) -> VectorDatabaseUnavailable:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
        url = self._engine.url.render_as_string(hide_password=True)
        return VectorDatabaseUnavailable(f"the pgvector database of knowledge base {self.kb_name!r} ({URL_SETTING} "
                                         f"{url}) cannot be used: {reason}")

    def _ensure_kb_index(self, table: Table) -> None:
        if self._indexed == table.name:
            return
        name = index_name(self._index_dim, self.kb_name)
        with self._engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})
            conn.exec_driver_sql(
                f"CREATE INDEX IF NOT EXISTS {name} ON {table.name} USING hnsw (embedding vector_cosine_ops) "
                f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION}) WHERE kb = {_quoted(self.kb_name)}")
        self._indexed = table.name

    def _visible(self, table: Table) -> ColumnElement[bool]:
        """Rows of this KB in the loaded version; the KB as a literal, so its partial index is used."""
        at = self._visible_at
        return and_(text(f"{table.name}.kb = {_quoted(self.kb_name)}"), table.c.added_in <= at,
                    or_(table.c.removed_in.is_(None), table.c.removed_in > at))

    def _search_saved(self, vector: np.ndarray, k: int, ids: np.ndarray | None) -> list[tuple[int, float]]:
        table = self._table()
        if ids is None:
            distance = table.c.embedding.cosine_distance(vector)
            query = select(table.c.id, 1 - distance).where(self._visible(table)).order_by(distance).limit(k)
        else:
            # Few candidates (one file's chunks): an exact scan of them rather than the KB-wide index.
            subset = (select(table.c.id, table.c.embedding).where(self._visible(table), table.c.id.in_(ids.tolist()))
                      .cte("candidates").prefix_with("MATERIALIZED"))
            distance = subset.c.embedding.cosine_distance(vector)
            query = select(subset.c.id, 1 - distance).order_by(distance).limit(k)
        ef_search = min(MAX_EF_SEARCH, max(MIN_EF_SEARCH, k * EF_PER_HIT))
        try:
            with self._engine.begin() as conn:
                conn.exec_driver_sql(f"SET LOCAL hnsw.ef_search = {int(ef_search)}")
                return [(int(i), float(s)) for i, s in conn.execute(query).all()]
        except DBAPIError as exc:
            raise self._unavailable(exc) from exc

    def _write(self, conn: Connection, table: Table, new: int, base: int, *, replace_all: bool,
               insert_here: bool) -> None:
        """Bring this KB's rows of ``table`` from version ``base`` to ``new``, in the caller's transaction."""
        mine = table.c.kb == self.kb_name
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"{table.name}:{self.kb_name}"})
        # Leftovers of a save whose version never became current.
        conn.execute(delete(table).where(mine, table.c.added_in > base))
        conn.execute(update(table).where(mine, table.c.removed_in > base).values(removed_in=None))
        if replace_all or not insert_here:
            conn.execute(update(table).where(mine, table.c.removed_in.is_(None)).values(removed_in=new))
        elif self._removed:
            conn.execute(update(table).where(mine, table.c.removed_in.is_(None),
                                             table.c.id.in_(sorted(self._removed))).values(removed_in=new))
        if insert_here and self._pending:
            rows = [{"kb": self.kb_name, "id": idx, "embedding": row, "added_in": new, "removed_in": None}
                    for idx, row in sorted(self._pending.items())]
            conn.execute(insert(table), rows)
        # Rows no longer seen by this version nor the one before it (versions.py keeps that one a while).
        conn.execute(delete(table).where(mine, table.c.removed_in < new))
