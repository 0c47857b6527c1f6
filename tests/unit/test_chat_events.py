"""Chat events: folding a stream into one result, and the download links transports add to sources."""

from __future__ import annotations

from server.api.transport import located, with_download_urls
from server.chat import events
from server.chat.events import AnswerAccumulator


def test_the_accumulator_folds_a_stream_into_one_result():
    first = events.source(1, "garden.md", kb="garden", score=0.5)
    better = events.source(1, "bees.txt", kb="garden", score=0.9)
    answer = AnswerAccumulator()
    for event in (
        events.start("c1", "m0"), events.status("reading"), events.sources([first]), events.delta("Every "),
        events.tool("calculator", '{"expression": "2*7"}', "14"), events.sources([better]), events.delta("14 days"),
        events.done("m1", "c1", 30, 4, 12.34),
    ):
        answer.add(event)
    result = answer.result()
    assert result.answer == "Every 14 days" and result.sources == [better] and result.error is None
    assert result.tools == [{"tool": "calculator", "input": '{"expression": "2*7"}', "output": "14", "error": False}]
    assert (result.conversation_id, result.message_id, result.latency_ms) == ("c1", "m1", 12.3)
    assert result.usage == {"prompt_tokens": 30, "completion_tokens": 4}


def test_a_failed_stream_keeps_its_partial_answer_and_error():
    answer = AnswerAccumulator()
    for event in (events.start("", ""), events.delta("Half"), events.error("llm_timeout", "too slow")):
        answer.add(event)
    result = answer.result()
    assert result.answer == "Half" and result.error == {"code": "llm_timeout", "message": "too slow"}
    assert result.conversation_id is None and result.message_id is None


def test_transports_link_knowledge_base_files_and_keep_web_urls():
    kb = events.source(1, "劳动法.md", kb="laws")
    web = events.source(2, "Example", url="https://example.org/a")
    assert kb["url"] is None  # the chat layer names the knowledge base and file only
    linked = located(events.sources([kb, web]))
    assert linked["type"] == "sources"
    assert [s["url"] for s in linked["sources"]] == [
        "/kbs/laws/files/%E5%8A%B3%E5%8A%A8%E6%B3%95.md/download", "https://example.org/a"
    ]
    assert kb["url"] is None  # the event itself is left as it was
    assert located(events.delta("text")) == events.delta("text")
    assert with_download_urls([events.source(3, "", kb="laws")])[0]["url"] is None
