"""Lexical rankers over the same chunks, for benchmarks/fulltext.py: kbchat's BM25, PostgreSQL full-text search and
Milvus's BM25 function.

The engines get kbchat's BM25 tokens (``server.knowledge_base.bm25.tokenize``: character bigrams or jieba words for
Chinese, lower-cased and de-pluralised English words without stop words) joined by spaces, so that they rank the same
terms and only the index and the scoring differ. PostgreSQL has no Chinese parser here: the tokens go to the
'simple' configuration, which keeps each space-separated token as one lexeme. Milvus gets them through its
whitespace-splitting 'standard' analyzer; ``native`` hands Milvus the raw text and its own analyzer instead (jieba
for Chinese, standard for English).
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, Protocol

from server.knowledge_base.bm25 import BM25Index, tokenize

logger = logging.getLogger("benchmarks.fulltext")

BATCH = 1000
OWN = "kbchat BM25"


class LexicalEngine(Protocol):
    """Ranks chunk ids for a query by keywords alone."""

    name: str

    def build(self, ids: list[int], texts: list[str]) -> None: ...

    def add(self, ids: list[int], texts: list[str]) -> None: ...

    def search(self, query: str, k: int) -> list[int]: ...

    def close(self) -> None: ...


def token_text(text: str, tokenizer: str) -> str:
    """kbchat's BM25 tokens of a text, space-separated."""
    return " ".join(tokenize(text, tokenizer))


class OwnBM25:
    """kbchat's BM25 (bm25s, as every store keeps it in its version folder): an add rebuilds the index, as a save
    does, reusing the tokens of chunks it has seen."""

    def __init__(self, tokenizer: str) -> None:
        self.name = OWN
        self._index = BM25Index(tokenizer)
        self._ids: list[int] = []
        self._texts: list[str] = []

    def build(self, ids: list[int], texts: list[str]) -> None:
        self._ids, self._texts = list(ids), list(texts)
        self._index.build(self._ids, self._texts)

    def add(self, ids: list[int], texts: list[str]) -> None:
        self.build(self._ids + ids, self._texts + texts)

    def search(self, query: str, k: int) -> list[int]:
        return [idx for idx, _ in self._index.search(query, k)]

    def close(self) -> None:
        pass


class PostgresFullText:
    """A tsvector column of kbchat's tokens ('simple' configuration) with a GIN index; the query is the OR of its
    tokens, ranked by ``ts_rank_cd`` (cover density) or, with ``ranking="ts_rank"``, by ``ts_rank`` normalised by
    document length."""

    RANKINGS = {"ts_rank_cd": "ts_rank_cd(tsv, q)", "ts_rank": "ts_rank(tsv, q, 1)"}

    def __init__(self, url: str, tokenizer: str, ranking: str = "ts_rank_cd", table: str = "fulltext_chunks") -> None:
        import psycopg

        self.name = f"PostgreSQL {ranking}"
        self.tokenizer = tokenizer
        self._rank = self.RANKINGS[ranking]
        self._table = table
        self._conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)

    def build(self, ids: list[int], texts: list[str]) -> None:
        self._conn.execute(f"DROP TABLE IF EXISTS {self._table}")
        self._conn.execute(f"CREATE TABLE {self._table} (id bigint PRIMARY KEY, "
                           "tsv tsvector NOT NULL)")
        self.add(ids, texts)
        self._conn.execute(f"CREATE INDEX ON {self._table} USING gin (tsv)")
        self._conn.execute(f"ANALYZE {self._table}")

    def add(self, ids: list[int], texts: list[str]) -> None:
        with self._conn.transaction(), self._conn.cursor() as cur:
            for start in range(0, len(ids), BATCH):
                rows = [(idx, token_text(text, self.tokenizer))
                        for idx, text in zip(ids[start:start + BATCH], texts[start:start + BATCH])]
                cur.executemany(f"INSERT INTO {self._table} (id, tsv) VALUES (%s, to_tsvector('simple', %s))", rows)

    def search(self, query: str, k: int) -> list[int]:
        tokens = list(dict.fromkeys(tokenize(query, self.tokenizer)))
        if not tokens:
            return []
        # Tokens hold word characters only (bm25.tokenize), so quoting them makes a valid tsquery.
        expression = " | ".join(f"'{token}'" for token in tokens)
        rows = self._conn.execute(
            f"SELECT id FROM {self._table}, to_tsquery('simple', %s) q WHERE tsv @@ q "
            f"ORDER BY {self._rank} DESC, id LIMIT %s", (expression, k)).fetchall()
        return [int(row[0]) for row in rows]

    def lexeme_check(self, texts: list[str]) -> dict[str, int]:
        """How many texts PostgreSQL keeps as exactly kbchat's distinct tokens (a check that 'simple' splits
        nothing further and drops nothing)."""
        same = 0
        for text in texts:
            tokens = Counter(tokenize(text, self.tokenizer))
            lexemes = self._conn.execute("SELECT lexeme, array_length(positions, 1) FROM "
                                         "unnest(to_tsvector('simple', %s))",
                                         (token_text(text, self.tokenizer),)).fetchall()
            same += dict(lexemes) == {t: min(c, 256) for t, c in tokens.items()}
        return {"texts": len(texts), "same_terms_and_counts": same}

    def close(self) -> None:
        self._conn.close()


class MilvusFullText:
    """A collection with a BM25 function from a text field to a sparse vector, searched by text."""

    def __init__(self, uri: str, tokenizer: str, *, native: str | None = None, name: str = "fulltext_chunks") -> None:
        from server.knowledge_base.vector_store.milvus_store import client_for

        self.name = f"Milvus BM25 ({native} analyzer, raw text)" if native else "Milvus BM25 (kbchat tokens)"
        self.tokenizer = tokenizer
        self._native = native
        self._collection = name
        self._client = client_for(uri, None)

    def _text(self, text: str) -> str:
        return text if self._native else token_text(text, self.tokenizer)

    def build(self, ids: list[int], texts: list[str]) -> None:
        from pymilvus import DataType, Function, FunctionType, MilvusClient

        client = self._client
        if client.has_collection(self._collection):
            client.drop_collection(self._collection)
        schema = MilvusClient.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("text", DataType.VARCHAR, max_length=65535, enable_analyzer=True,
                         analyzer_params={"tokenizer": self._native or "standard"})
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["text"],
                                     output_field_names=["sparse"]))
        index = client.prepare_index_params()
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        client.create_collection(self._collection, schema=schema, index_params=index, consistency_level="Strong")
        self.add(ids, texts)
        client.load_collection(self._collection)

    def add(self, ids: list[int], texts: list[str]) -> None:
        for start in range(0, len(ids), BATCH):
            self._client.insert(self._collection, [{"id": idx, "text": self._text(text)} for idx, text
                                                   in zip(ids[start:start + BATCH], texts[start:start + BATCH])])

    def search(self, query: str, k: int) -> list[int]:
        text = self._text(query)
        if not text.strip():
            return []
        found: Any = self._client.search(self._collection, data=[text], anns_field="sparse", limit=k,
                                         output_fields=["id"], search_params={"metric_type": "BM25"})
        return [int(hit["id"]) for hit in found[0]]

    def close(self) -> None:
        self._client.drop_collection(self._collection)
