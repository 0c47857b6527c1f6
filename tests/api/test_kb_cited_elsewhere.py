"""KB chat notes a figure the answer cites from a passage that does not hold it, naming the passage that does
(chat.check_figures, server/chat/citations.py)."""

from __future__ import annotations

from tests.chat_support import answer_of, collect, kb_services

FILES = {"shed.md": "# Garden shed\n\nThe garden shed is 12 feet long and has a felt roof.\n",
         "fence.md": "# Garden fence\n\nThe garden fence is 45 metres long and made of larch.\n"}
QUESTION = "How long are the garden shed and the fence?"


def test_a_figure_cited_from_the_wrong_passage_is_noted_with_the_passage_that_holds_it(tmp_path, fake_openai):
    services = kb_services(tmp_path, fake_openai.base_url, chat={"refuse_unsupported": False})
    services.kb.create_kb("garden")
    services.kb.add_files("garden", [(name, text.encode()) for name, text in FILES.items()])
    fake_openai.queue("Unused.")
    sources = next(e for e in collect(services, mode="kb", query=QUESTION, kb_name="garden", top_k=2)
                   if e["type"] == "sources")["sources"]
    number = {source["file"]: source["index"] for source in sources}
    shed, fence = number["shed.md"], number["fence.md"]
    wrong = f"The shed is 12 feet long and the fence 45 metres [{shed}]."
    fake_openai.queue(wrong)
    events = collect(services, mode="kb", query=QUESTION, kb_name="garden", top_k=2)
    assert answer_of(events) == f"{wrong}\n\n(Check the citation: 45 is in [{fence}], not in [{shed}].)"
    stored = services.chat.conversations.get(events[-1]["conversation_id"]).messages[-1]
    assert stored.meta["cited_elsewhere"] == [{"figure": "45", "found": fence, "cited": [shed]}]
    assert "unsupported_figures" not in stored.meta and stored.content.endswith(stored.meta["note"])
    # Each figure cited from a passage that holds it: no note.
    right = f"The shed is 12 feet long [{shed}] and the fence 45 metres [{fence}]."
    fake_openai.queue(right)
    assert answer_of(collect(services, mode="kb", query=QUESTION, kb_name="garden", top_k=2)) == right
    services.close()
