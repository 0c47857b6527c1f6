"""BM25 tokenisation and index, reciprocal-rank fusion, and hybrid retrieval on hand-written law questions."""

from __future__ import annotations

import re

import pytest

from configs import Settings
from server.db import Database
from server.knowledge_base.bm25 import BM25Index, tokenize
from server.knowledge_base.manager import KnowledgeBaseManager
from server.knowledge_base.retriever import FusionParams, candidate_count, fuse, fuse_rankings, normalize_bm25
from server.knowledge_base.schemas import SearchHit
from server.knowledge_base.vector_store import StoredDoc


def test_chinese_text_becomes_overlapping_bigrams():
    assert tokenize("劳动合同") == ["劳动", "动合", "合同"]


def test_lone_chinese_character_is_a_unigram_unless_a_stop_character():
    assert tokenize("猫，狗") == ["猫", "狗"]
    assert tokenize("的") == []


def test_english_is_lowercased_without_stop_words_and_plurals():
    assert tokenize("The Contracts of Employees") == ["contract", "employee"]
    assert tokenize("policies and classes") == ["policy", "class"]


def test_full_width_digits_and_mixed_scripts_are_split():
    assert tokenize("第３９条GDPR") == ["第", "39", "条", "gdpr"]


def test_a_word_run_together_from_three_or_more_also_yields_its_parts():
    assert tokenize("Ki67CD8frequencyUnstim") == ["ki67cd8frequencyunstim", "ki67", "cd8", "frequency", "unstim"]
    assert tokenize("getUserNames") == ["getusername", "get", "user", "name"]
    # Two parts are mostly a name; a code, an ordinal, a brand and a short word stay whole too.
    assert tokenize("LayoutParser SteelJIS SS400 SNB22-3 2nd iPhone FY2023 McDo") == [
        "layoutparser", "steeljis", "ss400", "snb22", "3", "2nd", "iphone", "fy2023", "mcdo"]


def test_a_question_finds_the_column_a_header_ran_together():
    index = BM25Index()
    index.build([1, 2], ["SpearmanCorrelationCoefficient,1Freq Ki67CD8frequencyUnstim,2Unstim CD8TeffCD38Unstim",
                         "The frequency of CD8 T cells was measured in the table."])
    assert index.search("Ki67 CD8 frequency unstimulated", 5)[0][0] == 1


def test_jieba_tokenizer_yields_words():
    tokens = tokenize("用人单位解除劳动合同", "jieba")
    assert "劳动合同" in tokens and "用人单位" in tokens


def test_bm25_ranks_the_document_sharing_rare_terms_first(tmp_path):
    index = BM25Index()
    index.build([7, 8, 9], ["劳动者可以解除劳动合同", "消费者享有知情权", "用人单位应当支付经济补偿"])
    hits = index.search("解除合同", 5)
    assert hits[0][0] == 7 and all(score > 0 for _, score in hits)
    assert index.search("经济补偿", 5, allowed_ids={7, 9})[0][0] == 9
    assert index.search("经济补偿", 5, allowed_ids={7, 8}) == []
    assert index.search("完全无关的词语", 5) == []
    index.save(tmp_path / "bm25")
    assert BM25Index.load(tmp_path / "bm25").search("知情权", 5)[0][0] == 8


def test_rebuilding_tokenizes_only_the_texts_of_new_ids(monkeypatch):
    import server.knowledge_base.bm25 as bm25

    seen = []
    monkeypatch.setattr(bm25, "tokenize",
                        lambda text, tokenizer="bigram", **kw: seen.append(text) or tokenize(text, **kw))
    index = BM25Index()
    index.build([1, 2], ["劳动合同的解除", "消费者的权益"])
    index.build([2, 3], ["消费者的权益", "经济补偿的标准"])
    assert seen == ["劳动合同的解除", "消费者的权益", "经济补偿的标准"]
    assert index.search("解除", 5) == [] and index.search("补偿", 5)[0][0] == 3
    assert index.search("消费者", 5)[0][0] == 2


def test_an_index_rebuilt_after_changes_scores_like_one_built_from_scratch():
    texts = {1: "劳动合同的解除与终止", 2: "消费者享有知情权和选择权", 3: "The tenant pays the rent monthly.",
             4: "用人单位解除劳动合同应当支付经济补偿", 5: "Rent is due on the first day; the tenant pays late fees."}
    changed = BM25Index()
    changed.build([1, 2, 3], [texts[i] for i in (1, 2, 3)])
    changed.build([2, 3, 4, 5], [texts[i] for i in (2, 3, 4, 5)])  # 1 deleted: its tokens stay in the vocabulary
    fresh = BM25Index()
    fresh.build([2, 3, 4, 5], [texts[i] for i in (2, 3, 4, 5)])
    for query in ("解除劳动合同", "tenant rent", "知情权", "终止"):
        got, want = changed.search(query, 5), fresh.search(query, 5)
        assert [i for i, _ in got] == [i for i, _ in want], query
        assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=1e-6), query


def _doc(i: int) -> StoredDoc:
    return StoredDoc(i, f"d{i}", f"text {i}", {"source": "f.txt"})


def test_fusion_rewards_chunks_found_by_both_retrievers():
    dense = [(_doc(1), 0.9), (_doc(2), 0.8), (_doc(3), 0.7)]
    sparse = [(_doc(3), 1.0), (_doc(4), 0.6)]
    fused = fuse(dense, sparse, 4, FusionParams(rrf_k=60))
    assert [d.id for d, _ in fused] == [3, 1, 2, 4]
    assert dict((d.id, s) for d, s in fused) == {3: 1.0, 1: 0.9, 2: 0.8, 4: 0.6}


def test_fusion_weights_shift_the_ranking():
    dense = [(_doc(1), 0.9), (_doc(2), 0.8)]
    sparse = [(_doc(2), 1.0), (_doc(1), 0.5)]
    assert fuse(dense, sparse, 1, FusionParams(vector_weight=2.0))[0][0].id == 1
    assert fuse(dense, sparse, 1, FusionParams(bm25_weight=2.0))[0][0].id == 2


def test_rankings_of_two_queries_fuse_by_rank_each_chunk_once():
    def hit(doc_id: str, score: float) -> SearchHit:
        return SearchHit(doc_id=doc_id, text=doc_id, score=score, metadata={}, rank=1)

    alone = [hit("a", 0.9), hit("b", 0.8), hit("c", 0.7)]
    in_context = [hit("c", 0.95), hit("b", 0.85), hit("d", 0.6)]
    fused = fuse_rankings([alone, in_context], 3, rrf_k=10)
    # c (first and third) edges out b (second twice); a, first in one ranking only, beats d, third in one.
    assert [h.doc_id for h in fused] == ["c", "b", "a"]
    assert [h.rank for h in fused] == [1, 2, 3]
    assert fused[0].score == 0.95 and fused[1].score == 0.85  # each chunk's best display score


def test_bm25_scores_are_normalised_by_the_best_score():
    normalised = normalize_bm25([(_doc(1), 8.0), (_doc(2), 2.0)])
    assert [s for _, s in normalised] == [1.0, 0.25]
    assert candidate_count(3) == 20 and candidate_count(10) == 40


# Hand-written colloquial questions (tuning data) over two labour laws; gold = article numbers.
LABOUR_QUESTIONS = [
    ("公司不跟我签书面劳动合同，我能要双倍工资吗？", "劳动合同法", ["第八十二条"]),
    ("试用期最长可以约定多久？", "劳动合同法", ["第十九条"]),
    ("我想辞职，需要提前多少天告诉公司？", "劳动合同法", ["第三十七条"]),
    ("公司裁员要给员工多少经济补偿？", "劳动合同法", ["第四十七条"]),
    ("在一个单位干满十年了能签无固定期限合同吗？", "劳动合同法", ["第十四条"]),
    ("哪些情况下公司可以直接开除员工不给补偿？", "劳动合同法", ["第三十九条"]),
    ("老板拖欠工资不发怎么办？", "劳动合同法", ["第三十条", "第八十五条"]),
    ("一个月加班最多能加多少小时？", "劳动法", ["第四十一条"]),
    ("法定节假日加班工资怎么算？", "劳动法", ["第四十四条"]),
    ("女职工生孩子能休多少天产假？", "劳动法", ["第六十二条"]),
]
LAW_FILES = ["社会法_劳动合同法(2012-12-28).md", "社会法_劳动法(2018-12-29).md"]


def _relevant(hit, law: str, articles: list[str]) -> bool:
    return law in hit.metadata["source"] and any(re.search(rf"^\s*{a}", hit.text, re.M) for a in articles)


@pytest.fixture(scope="module")
def labour_kb(shared_data, tmp_path_factory):
    laws = shared_data / "docs" / "zh" / "laws"
    files = [laws / name for name in LAW_FILES]
    if not all(f.is_file() for f in files):
        pytest.skip("labour law files missing from the shared data")
    root = tmp_path_factory.mktemp("labour")
    cache = tmp_path_factory.getbasetemp() / "kb-embedding-cache"
    settings = Settings(paths={"data_root": root, "cache_dir": cache})
    db = Database(settings.paths.database_url)
    db.create_tables()
    manager = KnowledgeBaseManager(settings, db)
    manager.create_kb("labour")
    results = manager.add_files("labour", files)
    assert [r.status for r in results] == ["indexed", "indexed"]
    yield manager
    manager.close()
    db.dispose()


def _recall_at_5(manager: KnowledgeBaseManager, mode: str) -> float:
    found = 0
    for question, law, articles in LABOUR_QUESTIONS:
        hits = manager.search("labour", question, top_k=5, mode=mode, score_threshold=0.0)
        found += any(_relevant(h, law, articles) for h in hits)
    return found / len(LABOUR_QUESTIONS)


def test_hybrid_recall_is_at_least_that_of_the_weaker_retriever(labour_kb):
    recall = {mode: _recall_at_5(labour_kb, mode) for mode in ("bm25", "vector", "hybrid")}
    assert min(recall.values()) > 0, recall
    assert recall["hybrid"] >= min(recall["bm25"], recall["vector"]), recall


def test_search_scores_are_in_unit_interval_and_ranked(labour_kb):
    for mode in ("bm25", "vector", "hybrid"):
        hits = labour_kb.search("labour", "试用期工资", top_k=5, mode=mode)
        assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
        assert all(0.0 <= h.score <= 1.0 for h in hits)
        assert all(h.metadata["heading_path"] for h in hits)
    bm25 = labour_kb.search("labour", "试用期工资", top_k=5, mode="bm25")
    assert bm25[0].score == 1.0 and [h.score for h in bm25] == sorted((h.score for h in bm25), reverse=True)


def test_threshold_filters_vector_hits_but_never_bm25_hits(labour_kb):
    assert labour_kb.search("labour", "试用期", mode="vector", score_threshold=0.999) == []
    assert labour_kb.search("labour", "试用期", mode="bm25", score_threshold=0.999)
    hybrid = labour_kb.search("labour", "试用期", mode="hybrid", score_threshold=0.999)
    bm25 = labour_kb.search("labour", "试用期", mode="bm25")
    assert [h.doc_id for h in hybrid] == [h.doc_id for h in bm25]


def test_search_can_be_limited_to_one_file(labour_kb):
    hits = labour_kb.search("labour", "加班工资", top_k=10, file_name=LAW_FILES[1])
    assert hits and {h.metadata["source"] for h in hits} == {LAW_FILES[1]}


# Follow-ups as the chat model rewrote them, leaving out what the question before them was about.
FOLLOW_UPS = [
    ("公司一天最多能让我加几个小时班？", "公司一个月最多能让我加几个小时班？", "劳动法", ["第四十一条"]),
    ("我想辞职，要提前多久跟公司说？", "我想辞职，还在试用期呢？", "劳动合同法", ["第三十七条"]),
]


@pytest.mark.parametrize("previous,follow_up,law,articles", FOLLOW_UPS)
def test_a_follow_up_searched_in_the_context_of_its_previous_question_finds_its_article(
        labour_kb, previous, follow_up, law, articles):
    alone = labour_kb.search("labour", follow_up, top_k=3, score_threshold=0.0)
    in_context = labour_kb.search("labour", follow_up, top_k=3, score_threshold=0.0, context=previous)
    assert not any(_relevant(h, law, articles) for h in alone)
    assert any(_relevant(h, law, articles) for h in in_context)
    assert [h.rank for h in in_context] == [1, 2, 3] and len({h.doc_id for h in in_context}) == 3
