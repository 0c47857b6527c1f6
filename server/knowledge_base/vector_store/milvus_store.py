"""Chunk vectors in Milvus: one collection per knowledge base and dimension, in an embedded milvus-lite database
(``kb.milvus_uri`` a local path ending in ``.db``) or on a Milvus server (``http://host:19530``).

As for pgvector (see pgvector_store.py), rows carry the store version that added them and the one that removed
them: a process that loaded version V searches exactly the vectors of V while a writer prepares V+1, and the chunk
texts, BM25 and sentence vectors stay in the version folder (see base.py). Milvus has no transactions, so a save
first undoes whatever a failed save left (rows added, or marked removed, after the committed version), then marks
removed rows, inserts new ones and drops rows no reader can see any more. Every change is tagged with the new
version, invisible to readers of the committed one until ``CURRENT`` moves.

Scores follow the FAISS convention: Milvus's COSINE similarity, clamped to [0, 1] by the base class.
"""

from __future__ import annotations

import functools
import importlib.util
import hashlib
import logging
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from server.errors import InvalidInput, ServiceUnavailable
from server.knowledge_base.vector_store.base import StoreOptions
from server.knowledge_base.vector_store.versioned_rows import VersionedRowStore


def _installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


@functools.cache
def _pymilvus() -> Any:
    """pymilvus, imported on first use: the import takes 0.4-0.9 s, which a process without a Milvus knowledge
    base (every API start, every CLI command) should not pay. Only called once check_options has passed."""
    import pymilvus

    return pymilvus


def _milvus_error() -> type[Exception]:
    """pymilvus's error class, for ``except`` clauses of code that talks to Milvus."""
    error: type[Exception] = _pymilvus().MilvusException
    return error

logger = logging.getLogger(__name__)

URI_SETTING = "kb.milvus_uri"
PREFIX = "kbchat_"
NEVER = 2**62  # removed_in of a live row (Milvus filters cannot test for null everywhere)
BATCH = 1000
MAX_FILE = 4096

_clients: dict[tuple[str, str], Any] = {}
_registry_lock = threading.Lock()


class VectorDatabaseUnavailable(ServiceUnavailable):
    """The Milvus database of a knowledge base cannot be reached or used."""

    code = "vector_database_unavailable"


def is_local(uri: str) -> bool:
    """A milvus-lite database file rather than a server address."""
    return not re.match(r"^[a-z]+://", uri)


def client_for(uri: str, token: str | None) -> Any:
    """One client per URI for every Milvus store of the process (for a local path, one milvus-lite engine)."""
    key = (uri, token or "")
    with _registry_lock:
        client = _clients.get(key)
        if client is None:
            if is_local(uri):
                Path(uri).parent.mkdir(parents=True, exist_ok=True)
            client = _clients[key] = _pymilvus().MilvusClient(uri=uri, token=token or "")
        return client


def dispose_clients() -> None:
    """Close every client and stop the milvus-lite engines this process started."""
    with _registry_lock:
        for (uri, _), client in _clients.items():
            client.close()
            if is_local(uri):
                from milvus_lite.server_manager import server_manager_instance

                server_manager_instance.release_server(uri)
        _clients.clear()


def collection_prefix(kb: str) -> str:
    """Collections of one knowledge base: names allow only ASCII letters, digits and _, so a hash tells KBs apart."""
    readable = re.sub(r"[^A-Za-z0-9]", "_", kb)[:40]
    return f"{PREFIX}{readable}_{hashlib.sha1(kb.encode()).hexdigest()[:12]}_"


def collection_name(kb: str, dim: int) -> str:
    return f"{collection_prefix(kb)}{dim}"


def _query(client: Any, name: str, *, where: str, fields: list[str]) -> Any:
    return client.query(name, filter=where, output_fields=fields)


def is_collection_of(name: str, kb: str) -> bool:
    prefix = collection_prefix(kb)
    return name.startswith(prefix) and name[len(prefix):].isdigit()


def quoted(value: str) -> str:
    """A Milvus filter string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class MilvusStore(VersionedRowStore):
    """Cosine search in a Milvus collection; changes wait in memory until ``save()``."""

    kind = "milvus"
    _client: Any

    @classmethod
    def check_options(cls, options: StoreOptions) -> None:
        if not _installed("pymilvus"):
            raise InvalidInput(f"vector store 'milvus' needs the pymilvus package (and milvus-lite for a local "
                               f"{URI_SETTING}); it is not installed")
        uri = options.milvus_uri
        if not uri:
            raise InvalidInput(f"vector store 'milvus' needs {URI_SETTING}: a local path ending in .db (milvus-lite) "
                               "or a Milvus server address such as http://localhost:19530")
        if is_local(uri):
            if not uri.endswith(".db"):
                raise InvalidInput(f"{URI_SETTING} {uri!r} is neither a local path ending in .db (milvus-lite) nor "
                                   "an http://, https://, tcp:// or unix:// Milvus server address")
            if not _installed("milvus_lite"):
                raise InvalidInput(f"{URI_SETTING} {uri!r} is a local milvus-lite database but the milvus-lite "
                                   "package is not installed")
        elif not re.match(r"^(https?|tcp|unix)://", uri):
            raise InvalidInput(f"{URI_SETTING} {uri!r} is not an http://, https://, tcp:// or unix:// address")

    @classmethod
    def discard_saved(cls, options: StoreOptions, kb_name: str) -> None:
        if not _installed("pymilvus") or not options.milvus_uri:
            return
        try:
            client = client_for(options.milvus_uri, options.milvus_token)
            for name in client.list_collections():
                if is_collection_of(name, kb_name):
                    client.drop_collection(name)
        except (_milvus_error(), OSError) as exc:
            # Harmless leftovers: a new knowledge base of that name starts by removing them.
            logger.warning("vectors of deleted knowledge base %s stay in Milvus: %s", kb_name, exc)

    def configure(self, options: StoreOptions) -> None:
        self.check_options(options)
        self._uri = str(options.milvus_uri)
        self._token = options.milvus_token
        self._client = None
        self._ready: set[str] = set()
        self._reset_rows()

    # ----- rows in Milvus (see versioned_rows.py)
    def _saved_count(self) -> int:
        rows = self._call(functools.partial(_query, where=self._visible(), fields=["count(*)"]))
        return int(rows[0]["count(*)"]) if rows else 0

    def _saved_vectors(self, ids: list[int]) -> dict[int, np.ndarray]:
        found: dict[int, np.ndarray] = {}
        for start in range(0, len(ids), BATCH):
            part = ",".join(str(i) for i in ids[start:start + BATCH])
            rows = self._call(functools.partial(_query, where=f"{self._visible()} and chunk_id in [{part}]",
                                                fields=["chunk_id", "vector"]))
            found.update((int(r["chunk_id"]), np.asarray(r["vector"], dtype=np.float32)) for r in rows)
        return found

    def _write_rows(self, new: int, base: int, replace_all: bool) -> None:
        client = self._connect()
        current = self._collection() if self._index_dim else None
        try:
            names = [n for n in client.list_collections() if is_collection_of(n, self.kb_name)]
            for name in sorted(names, key=lambda n: n != current):
                self._write(client, name, new, base, replace_all=replace_all, insert_here=name == current)
                if is_local(self._uri):
                    # milvus-lite searches rows still in its memtable row by row: unflushed, 100k chunks took
                    # seconds per search instead of about 0.4 s (benchmarks/query.py).
                    client.flush(name)
        except _milvus_error() as exc:
            raise self._unavailable(exc) from exc

    # ----- Milvus
    def _connect(self) -> Any:
        if self._client is None:
            try:
                self._client = client_for(self._uri, self._token)
            except (_milvus_error(), OSError) as exc:
                busy = " (a milvus-lite database serves one process at a time; for several, use a Milvus server)"
                raise self._unavailable(exc, busy if is_local(self._uri) else "") from exc
        return self._client

    def _unavailable(self, exc: Exception, hint: str = "") -> VectorDatabaseUnavailable:
        reason = (getattr(exc, "message", None) or str(exc)) + hint
        return VectorDatabaseUnavailable(f"the Milvus database of knowledge base {self.kb_name!r} ({URI_SETTING} "
                                         f"{self._uri}) cannot be used: {reason}")

    def _collection(self) -> str:
        """This store's collection, created (exact index for milvus-lite, Milvus's own choice on a server) when
        missing."""
        name = collection_name(self.kb_name, self._index_dim)
        if name in self._ready:
            return name
        client = self._connect()
        try:
            if not client.has_collection(name):
                data_type = _pymilvus().DataType
                schema = _pymilvus().MilvusClient.create_schema(auto_id=False)
                schema.add_field("pk", data_type.VARCHAR, is_primary=True, max_length=48)  # chunk id:added_in
                schema.add_field("chunk_id", data_type.INT64)
                schema.add_field("file", data_type.VARCHAR, max_length=MAX_FILE)
                schema.add_field("vector", data_type.FLOAT_VECTOR, dim=self._index_dim)
                schema.add_field("added_in", data_type.INT64)
                schema.add_field("removed_in", data_type.INT64)
                index = client.prepare_index_params()
                index.add_index("vector", index_type="FLAT" if is_local(self._uri) else "AUTOINDEX",
                                metric_type="COSINE")
                client.create_collection(name, schema=schema, consistency_level="Strong")
                # Without waiting on the index: milvus-lite builds it at once and has no timestamps to wait with.
                client.create_index(name, index, sync=False)
            client.load_collection(name)
        except _milvus_error() as exc:
            raise self._unavailable(exc) from exc
        self._ready.add(name)
        return name

    def _call(self, run: Callable[[Any, str], Any]) -> Any:
        try:
            return run(self._connect(), self._collection())
        except _milvus_error() as exc:
            raise self._unavailable(exc) from exc

    def _visible(self) -> str:
        at = self._visible_at
        return f"added_in <= {at} and removed_in > {at}"

    def _search_saved(self, vector: np.ndarray, k: int, ids: np.ndarray | None) -> list[tuple[int, float]]:
        where = self._visible()
        if ids is not None:
            sources = {self._docs[i].source for i in ids.tolist() if i in self._docs}
            source = next(iter(sources)) if len(sources) == 1 else None
            # One file's chunks (a search restricted to a file): its field is shorter to filter on than ids.
            if (source is not None and len(source.encode()) <= MAX_FILE
                    and ids.size == len(self._by_source.get(source, ()))):
                where += f" and file == {quoted(source)}"
            else:
                where += f" and chunk_id in [{','.join(str(i) for i in ids.tolist())}]"
        found = self._call(lambda c, n: c.search(n, data=[vector.tolist()], limit=k, filter=where,
                                                 anns_field="vector", output_fields=["chunk_id"],
                                                 search_params={"metric_type": "COSINE"}))
        return [(int(hit["entity"]["chunk_id"]), float(hit["distance"])) for hit in found[0]]

    def _mark(self, client: Any, name: str, where: str, removed_in: int) -> None:
        """Set removed_in of the rows matching ``where``, which the new value must no longer match: Milvus updates
        a row by writing it whole, a batch at a time, until none is left."""
        seen: set[str] = set()
        while batch := client.query(name, filter=where, limit=BATCH, consistency_level="Strong",
                                    output_fields=["pk", "chunk_id", "file", "vector", "added_in", "removed_in"]):
            keys = {row["pk"] for row in batch}
            if keys <= seen:
                raise _pymilvus().MilvusException(message=f"rows of {name} keep matching {where!r} after being updated")
            seen |= keys
            client.upsert(name, [{**row, "vector": list(row["vector"]), "removed_in": removed_in} for row in batch])

    def _write(self, client: Any, name: str, new: int, base: int, *, replace_all: bool, insert_here: bool) -> None:
        """Bring this KB's rows of collection ``name`` from version ``base`` to ``new``."""
        client.load_collection(name)
        # Leftovers of a save whose version never became current.
        client.delete(name, filter=f"added_in > {base}")
        self._mark(client, name, f"removed_in > {base} and removed_in < {NEVER}", NEVER)
        if replace_all or not insert_here:
            self._mark(client, name, f"removed_in == {NEVER}", new)
        elif self._removed:
            removed = sorted(self._removed)
            for start in range(0, len(removed), BATCH):
                part = ",".join(str(i) for i in removed[start:start + BATCH])
                self._mark(client, name, f"removed_in == {NEVER} and chunk_id in [{part}]", new)
        if insert_here and self._pending:
            items = sorted(self._pending.items())
            for start in range(0, len(items), BATCH):
                client.insert(name, [self._row(idx, vector, new) for idx, vector in items[start:start + BATCH]])
        # Rows no longer seen by this version nor the one before it (versions.py keeps that one a while).
        client.delete(name, filter=f"removed_in < {new}")

    def _row(self, idx: int, vector: np.ndarray, added_in: int) -> dict[str, Any]:
        doc = self._docs.get(idx)
        source = doc.source if doc is not None else ""
        return {"pk": f"{idx}:{added_in}", "chunk_id": idx, "file": source if len(source.encode()) <= MAX_FILE else "",
                "vector": vector.tolist(), "added_in": added_in, "removed_in": NEVER}
