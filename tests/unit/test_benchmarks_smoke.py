"""The benchmark code keeps working against the modules it measures, on tiny in-test data (seconds)."""

from __future__ import annotations

import os

import pytest

from benchmarks import ann, datasets, query, retrieval
from benchmarks.baselines import PlainBM25
from benchmarks.datasets import Question, RetrievalSet
from benchmarks.kbtools import E5, open_manager
from benchmarks.metrics import GoldMatcher, RankingScores, best_threshold, contains_answer

ZH_PASSAGES = [
    "长城是中国古代的军事防御工程，东起山海关，西至嘉峪关，全长两万多千米。",
    "大熊猫主要生活在四川、陕西和甘肃的山区，以竹子为主要食物，每天进食十几个小时。",
    "黄河是中国第二长河，发源于青海省巴颜喀拉山脉，流经九个省区，最后注入渤海。",
]
ZH_QUESTIONS = [("长城东起哪里？", "山海关", 0), ("大熊猫主要吃什么食物？", "竹子", 1),
                ("黄河最后注入哪个海？", "渤海", 2)]
EN_PASSAGES = [
    "The Eiffel Tower is a wrought-iron lattice tower in Paris, completed in 1889 for the World's Fair.",
    "Photosynthesis lets plants turn sunlight, water and carbon dioxide into glucose and oxygen.",
    "The Pacific Ocean is the largest and deepest ocean on Earth, covering about a third of its surface.",
]
EN_QUESTIONS = [("When was the Eiffel Tower in Paris completed?", "1889", 0),
                ("What do plants make from sunlight by photosynthesis?", "glucose", 1),
                ("Which ocean is the largest and deepest on Earth?", "Pacific", 2)]


def tiny_set(name: str, lang: str, passages: list[str], questions: list[tuple[str, str, int]]) -> RetrievalSet:
    return RetrievalSet(name, lang, "tuning", list(passages),
                        [Question(f"{name}-{i}", q, [a], [g]) for i, (q, a, g) in enumerate(questions)])


def test_gold_matcher_accepts_chunks_of_the_gold_passage_and_rejects_others():
    matcher = GoldMatcher(EN_PASSAGES)
    assert matcher.is_hit("lattice tower in Paris, completed in 1889", [0])
    assert matcher.is_hit("Landmarks > Paris\n" + EN_PASSAGES[0], [0])  # a heading line added by the splitter
    assert not matcher.is_hit("lattice tower in Paris, completed in 1889", [1, 2])
    assert not matcher.is_hit("", [0])


def test_ranking_scores_give_recall_at_k_and_reciprocal_rank():
    scores = RankingScores()
    scores.add([False, True, False])  # first hit at rank 2
    scores.add([True])
    scores.add([False] * 10)
    out = scores.as_dict()
    assert out["R@1"] == pytest.approx(1 / 3, abs=1e-4)
    assert out["R@3"] == pytest.approx(2 / 3, abs=1e-4)
    assert out["MRR@10"] == pytest.approx((0.5 + 1.0) / 3, abs=1e-4)
    assert contains_answer(["The answer is Glucose."], ["glucose"])


def test_threshold_calibration_separates_relevant_from_irrelevant_scores():
    out = best_threshold([0.82, 0.86, 0.9, 0.95], [0.5, 0.6, 0.7, 0.78])
    assert 0.78 < out["f1_threshold"] <= 0.82
    assert out["f1"] == 1.0
    assert out["keep95_threshold"] == 0.82


def test_sampling_keeps_gold_passages_of_every_kept_question():
    rset = tiny_set("en", "en", EN_PASSAGES, EN_QUESTIONS)
    small = datasets.sample(rset, 1, seed=3, max_passages=2)
    assert len(small.passages) == 2 and len(small.questions) <= 1
    for q in small.questions:
        assert small.passages[q.gold[0]] == EN_PASSAGES[int(q.qid.split("-")[1])]


def test_plain_bm25_baseline_ranks_the_gold_passage_first():
    index = PlainBM25(ZH_PASSAGES, "zh")
    assert [index.rank(q, 3)[0] for q, _, _ in ZH_QUESTIONS] == [0, 1, 2]


def test_retrieval_benchmark_runs_grid_calibration_and_judging(tmp_path):
    sets = [tiny_set("tiny-zh", "zh", ZH_PASSAGES, ZH_QUESTIONS),
            tiny_set("tiny-en", "en", EN_PASSAGES, EN_QUESTIONS)]
    with open_manager(tmp_path) as manager:
        out = retrieval.evaluate_all(manager, sets, sets, chunk_sizes=(250,), models=(E5,))
    by_label = {row["label"]: row for row in out["tuning_grid"]}
    assert by_label["bm25"]["mean R@1"] == 1.0
    assert by_label["vector e5"]["mean R@1"] == 1.0
    assert {"hybrid e5 1:1", "hybrid e5 3:1"} <= set(by_label)
    assert out["recommended"]["chunk_size"] == 250
    assert 0.0 < out["recommended"]["score_threshold"][E5] < 1.0
    chatchat = [r for r in out["judging"] if r["system"].startswith("Chatchat")]
    assert len(chatchat) == 2 and all(r["R@5"] is None and r["R@3"] == 1.0 for r in chatchat)
    assert all(report["error_count"] == 0 for report in out["ingested"].values())
    tables = retrieval.print_tables({"tuning_sets": [s.summary() for s in sets], **out})
    assert "Recommended defaults" in tables


def test_query_benchmark_times_each_mode_against_raw_faiss(tmp_path):
    pool = [p for p in ZH_PASSAGES + EN_PASSAGES]
    questions = [q for q, _, _ in ZH_QUESTIONS + EN_QUESTIONS]
    out = query.measure_size(300, pool, questions, tmp_path, seed=1)
    cores = os.cpu_count() or 1
    assert set(out["modes"]) == {"vector", "bm25", "hybrid", f"vector, FAISS {cores} threads"}
    assert out["faiss_threads"] == 1
    assert all(stats["n"] == len(questions) and stats["p50_ms"] > 0 for stats in out["modes"].values())
    assert out["floor_p50_ms"] > 0 and out["modes"]["vector"]["ratio_to_floor"] > 0
    assert out["build"]["one_file_add_and_save_s"] > 0 and out["build"]["raw_faiss_file_add_s"] > 0
    upload = out["upload"]
    assert upload["indexed"] == upload["files"] == query.UPLOAD_FILES and upload["chunks"] >= upload["files"]
    assert 0 < upload["save_s"] < upload["seconds"] and upload["encoder_only_s"] > 0
    assert "+1 file (50 chunks)" in query.print_tables({"pipeline": [out], "ann": [], "index_recommendation": {}})
    rows = ann.compare_indexes(2000, n_queries=10, hnsw_ef_search=(32,), ivf_nprobe=(8,))
    assert [r["index"].split()[0] for r in rows] == ["Flat", "Flat", "numpy", "HNSW", "IVFFlat"]
    assert all(r["recall@1"] >= 0.9 for r in rows)
    assert set(ann.recommend_index(rows)) == {2000}


def test_everyday_sets_parse_and_their_law_evidence_stands_in_its_article():
    from benchmarks import everyday

    laws = everyday.load_questions(everyday.SETS["laws_zh"])
    files = everyday.load_questions(everyday.SETS["files_en"])
    assert len(laws) >= 150 and len(files) >= 50
    assert len({q.qid for q in laws + files}) == len(laws) + len(files)
    assert len(everyday.load_questions(everyday.SETS["laws_zh"], "heldout")) == 50
    assert len(everyday.load_questions(everyday.SETS["files_en"], "tuning")) == len(files) - 25
    assert all(q.answers and q.evidence and q.file for q in laws + files)
    folder = everyday.SETS["laws_zh"].docs
    if not folder.is_dir():
        pytest.skip("the shared law documents are not next to the repository")
    texts = {p.name: p.read_text(encoding="utf-8") for p in folder.iterdir()}
    for q in laws:
        assert q.evidence in texts[q.file], q.qid
        # A hit needs the evidence in a chunk of the right file, not merely similar words.
        assert q.is_hit(q.file, f"...{q.evidence}...") and not q.is_hit("other.md", q.evidence)


@pytest.mark.parametrize("name", ["laws_zh", "files_en"])
def test_the_follow_up_sets_parse_and_each_law_evidence_stands_in_its_law(name):
    from benchmarks import everyday, everyday_answers

    spec = everyday.SETS[name]
    conversations = everyday_answers.load_followups(spec, "all")
    held = everyday_answers.load_followups(spec, "heldout")
    assert len(conversations) >= 20 and len(held) == everyday_answers.FOLLOWUPS_HELDOUT
    assert held + everyday_answers.load_followups(spec, "tuning") == conversations
    assert all(c.first and c.question and c.answers and c.evidence and c.file for c in conversations)
    assert all(c.lang == spec.lang for c in conversations)
    if name != "laws_zh":
        return  # English evidence stands in the text as read (PDF, OCR), not in the files' bytes
    if not spec.docs.is_dir():
        pytest.skip("the shared law documents are not next to the repository")
    texts = {p.name: p.read_text(encoding="utf-8") for p in spec.docs.iterdir()}
    for c in conversations:
        assert c.evidence in texts[c.file], c.qid


def test_unanswerable_summary_counts_declines_and_answers_that_say_the_passages_do_not_answer():
    from benchmarks.everyday_answers import _ADMITS, summarise_unanswerable

    assert _ADMITS.search("The knowledge base does not say.") and _ADMITS.search("资料中没有提到工资。")
    assert not _ADMITS.search("According to [1], the fee is $10.") and not _ADMITS.search("根据资料[1]，可以退货。")
    rows = [{"qid": "a", "completion_tokens": 0}, {"qid": "b", "completion_tokens": 5, "admits": True},
            {"qid": "c", "completion_tokens": 9, "admits": False}, {"qid": "d", "error": "llm_timeout"}]
    summary = summarise_unanswerable(rows)
    assert summary["declined"] == 0.333 and summary["answered"] == 2 and summary["says_so"] == 0.667
    assert summary["errors"] == 1


def test_query_likelihood_prefers_the_passage_that_answers_and_reorders_by_it(tmp_path):
    from benchmarks.query_likelihood import Scorer, rerank_order, summarise
    from server.llm.local.assemble import ensure_weights
    from server.llm.local.builtin import BUILTIN_MODELS

    scorer = Scorer(ensure_weights(BUILTIN_MODELS["smollm2-135m"], tmp_path))
    question = "When was the Eiffel Tower in Paris completed?"
    scores = scorer.question_logprobs(list(EN_PASSAGES), question)
    assert scores[0] == max(scores) and all(s < 0 for s in scores)
    assert scorer.tokens > 0
    # A prior of 1 per rank outweighs a score gap of 0.5; none leaves the scores alone. Past the depth, search order.
    assert rerank_order([-2.0, -1.5, -3.0, -0.1], 3, 0.0, 4) == [1, 0, 2, 3]
    assert rerank_order([-2.0, -1.5, -3.0, -0.1], 3, 1.0, 4) == [0, 1, 2, 3]
    rows = [{"gold": [False, True, False], "scores": [-2.0, -1.0, -3.0]}]
    by_config = {s["config"]: s for s in summarise(rows)}
    assert by_config["search order"]["hit@1"] == 0.0 and by_config["top 5, prior 0"]["hit@1"] == 1.0


def test_an_everyday_knowledge_base_kept_from_an_earlier_run_is_reused_and_completed(tmp_path):
    from benchmarks.everyday import EverydaySet, build_kb

    docs = tmp_path / "docs"
    docs.mkdir()
    for i, text in enumerate(EN_PASSAGES[:2]):
        (docs / f"p{i}.txt").write_text(text, encoding="utf-8")
    spec = EverydaySet("tiny_en", "en", docs, 0)
    with open_manager(tmp_path / "data") as manager:
        assert build_kb(manager, spec)["files"] == 2
    (docs / "p2.txt").write_text(EN_PASSAGES[2], encoding="utf-8")
    with open_manager(tmp_path / "data") as manager:
        # Only the document the knowledge base does not hold yet is read again.
        assert build_kb(manager, spec)["files"] == 1
        assert sorted(f.file_name for f in manager.list_files("tiny_en")) == ["p0.txt", "p1.txt", "p2.txt"]
        assert build_kb(manager, spec)["files"] == 0
