"""Adding files gives way to chat answers: the Foreground gate, and queries going before passages at the encoder."""

from __future__ import annotations

import threading
import time

import pytest

from configs.settings import KBSettings
from server.knowledge_base.embeddings import EmbeddingService
from server.knowledge_base.foreground import Foreground

E5 = "multilingual-e5-small"


def test_nothing_waits_when_no_answer_is_under_way():
    gate = Foreground(enabled=True, max_wait=5, poll=0.01)
    gate.add_probe(lambda: False)
    assert not gate.busy()
    assert gate.give_way() == 0.0


def test_indexing_waits_for_the_answer_to_end():
    gate = Foreground(enabled=True, max_wait=30, poll=0.01)
    ended = threading.Event()

    def answer() -> None:
        with gate.answering():
            time.sleep(0.5)
            ended.set()

    thread = threading.Thread(target=answer)
    thread.start()
    while not gate.busy():
        time.sleep(0.001)
    waited = gate.give_way()
    assert ended.is_set() and waited > 0  # it returned only after the answer ended
    thread.join()
    assert not gate.busy() and gate.give_way() == 0.0


def test_a_probe_counts_as_an_answer_and_a_disabled_gate_never_waits():
    state = {"busy": True}
    gate = Foreground(enabled=True, max_wait=30, poll=0.01)
    gate.add_probe(lambda: state["busy"])
    timer = threading.Timer(0.3, lambda: state.update(busy=False))
    timer.start()
    assert gate.give_way() > 0 and not state["busy"]
    off = Foreground(enabled=False, max_wait=30, poll=0.01)
    off.add_probe(lambda: True)
    assert off.busy() and off.give_way() == 0.0


def test_a_steady_stream_of_answers_cannot_stop_indexing():
    gate = Foreground(enabled=True, max_wait=0.3, poll=0.01)
    gate.add_probe(lambda: True)
    first = gate.give_way()
    assert 0.3 <= first < 10  # the whole bound, however slow the machine
    assert gate.give_way() == 0.0  # then it runs as long without waiting


@pytest.fixture
def service(tmp_path):
    svc = EmbeddingService(KBSettings(), None)
    yield svc
    svc.close()


def test_files_being_added_give_way_to_an_answer_before_each_batch(service):
    gate = service.foreground
    gate.poll = 0.01
    order: list[str] = []
    embedder = service.get(E5)
    real = embedder._encode

    def recording(texts, *, is_query):
        order.append("query" if is_query else "passages")
        return real(texts, is_query=is_query)

    embedder._encode = recording  # type: ignore[method-assign]
    try:
        with gate.answering():
            adding = threading.Thread(target=service.embed_passages,
                                      args=(E5, [f"第{i}条 背景文字。" for i in range(8)]), kwargs={"background": True})
            adding.start()
            time.sleep(0.3)
            assert order == []  # paused before its first batch while the answer is under way
            service.embed_query(E5, "试用期多久")  # the answer's own search is not held up
            service.embed_passages(E5, ["前台的文字。"])  # nor is anything not marked background
        adding.join(30)
        assert order[:2] == ["query", "passages"] and order.count("passages") == 1 + 2  # 8 texts, batches of 4
    finally:
        del embedder._encode


def test_a_query_goes_before_the_next_batch_of_passages(service):
    """A question asked during a long upload waits for one batch at most, not for the whole upload."""
    embedder = service.get(E5)
    order: list[str] = []
    started = threading.Event()
    real = embedder._encode

    def slow(texts, *, is_query):
        order.append("query" if is_query else "passages")
        started.set()
        time.sleep(0.2)  # a batch long enough that a busy machine still asks the query within a few of them
        return real(texts, is_query=is_query)

    embedder._encode = slow  # type: ignore[method-assign]
    try:
        texts = [f"第{i}段，背景。" for i in range(80)]  # 20 batches
        adding = threading.Thread(target=embedder.embed_documents, args=(texts,))
        adding.start()
        started.wait(30)
        embedder.embed_query("问题")
        adding.join(60)
        assert order.count("passages") == 20 and order.index("query") < 6
    finally:
        del embedder._encode
