"""Table rows read in the order a superlative question asks for (server/chat/superlatives.py, evidence.py)."""

from __future__ import annotations

import pytest

from server.chat.evidence import choose, rank_sentences, split_passages
from server.chat.superlatives import chunk_asked_for, descending, rows_asked_for, with_row_asked_for
from server.knowledge_base.schemas import SearchHit

CUPS = ["Team: Blues; Location: STL; Stanley Cups: 1", "Team: Flyers; Location: PHI; Stanley Cups: 2",
        "Team: Maple Leafs; Location: TOR; Stanley Cups: 0"]
SALES = ["Zone NA; Sales: 12,553; Trading operating profit: 2,632; Restructuring costs: (44)",
         "Zone EUR; Sales: 9,467; Trading operating profit: 1,373; Restructuring costs: (140)",
         "Zone GC; Sales: 2,548; Trading operating profit: 418; Restructuring costs: (2)",
         "Zone LATAM; Sales: —; Trading operating profit: 1,101"]


@pytest.mark.parametrize(("question", "expected"), [
    ("Which team has won the most Stanley Cups?", True), ("Which zone had the lowest sales?", False),
    ("哪个地区的销售额最高？", True), ("哪个队赢得的冠军最少？", False), ("How many cups have the Blues won?", None),
    ("Which is the highest and which the lowest?", None),
])
def test_which_way_a_question_asks(question, expected):
    assert descending(question) is expected


def test_the_row_asked_for_comes_first_by_the_column_the_question_names():
    assert rows_asked_for("Which team has won the most Stanley Cups since 1967?", CUPS) == [1, 0, 2]
    assert rows_asked_for("Which team won the fewest Stanley Cups?", CUPS) == [2, 0, 1]
    # The column named, not the first: a row without a figure there comes last.
    assert rows_asked_for("Which zone had the highest sales?", SALES) == [0, 1, 2, 3]
    assert rows_asked_for("Which zone had the lowest trading operating profit?", SALES) == [2, 3, 1, 0]
    # Costs in brackets are negative figures: the lowest cost is the one nearest zero.
    assert rows_asked_for("Where were restructuring costs lowest?", SALES) == [2, 0, 1, 3]
    assert rows_asked_for("Where were restructuring costs highest?", SALES) == [1, 0, 2, 3]
    # A total adds up the rows; it is none of them.
    with_total = [*SALES, "Total; Sales: 24,568; Trading operating profit: 5,524", "合计; 销售额: 30000"]
    assert rows_asked_for("Which zone had the highest sales?", with_total) == [0, 1, 2, 3, 4, 5]
    # Columns that are periods are not named by the question's period: it says which table, not what to compare.
    periods = ["Item: Operating profit; January–June 2023: 7262; January–June 2022: 6619",
               "Item: Net financial income; January–June 2023: -697; January–June 2022: -434"]
    assert rows_asked_for("Which category made the smallest profit in January to June 2023?", periods) is None
    assert rows_asked_for("哪一项在2023年1-6月最低？", ["项目: 营业利润; 2023年1-6月: 7262", "项目: 财务费用; 2023年1-6月: -697"]) is None
    # Several numeric columns and none named: no order to give.
    assert rows_asked_for("Which zone is the biggest?", SALES) is None
    assert rows_asked_for("How many Stanley Cups have the Flyers won?", CUPS) is None


def test_the_evidence_holds_that_row_alone_of_the_table():
    question = "Which team has won the most Stanley Cups since 1967?"
    [table] = split_passages(["\n\n".join(CUPS)], [True])
    assert [table.sentence(c.index) for c in rank_sentences(question, [table])] == [CUPS[1]]
    [chosen] = choose(question, ["\n\n".join(CUPS)], 400, lambda text: len(text.split()), tables=[True])
    assert chosen.excerpt() == CUPS[1]
    # A row long enough to be cut in two is read whole, its name with its figure.
    long_rows = [f"{row}; Note: {'a remark on this row that makes it long ' * 5}" for row in CUPS]
    [chosen] = choose(question, ["\n\n".join(long_rows)], 400, lambda text: len(text.split()), tables=[True])
    assert chosen.excerpt().replace("\n", " ").startswith("Team: Flyers") and "Blues" not in chosen.excerpt()
    # Not a table: sentences keep their own order.
    [prose] = split_passages(["\n\n".join(CUPS)])
    in_order = [c.index for c in rank_sentences("Stanley Cups", [prose])]
    assert [c.index for c in rank_sentences(question, [prose])] == in_order


def _hit(doc_id, text, rows=True):
    metadata = {"source": "sales.xlsx", "heading_path": ["Sales"], **({"rows": [1, 1]} if rows else {})}
    return SearchHit(doc_id=doc_id, text=text, score=0.9, metadata=metadata, rank=1)


def test_the_chunk_holding_the_row_asked_for_is_fetched_from_its_table():
    table = [_hit(f"row{i}", row) for i, row in enumerate(SALES)]  # one row per chunk, as long rows are
    found = [_hit("prose", "Sales rose in every zone.", rows=False), table[1], table[0]]
    asked = []

    def table_chunks(hit):
        asked.append(hit.doc_id)
        return table

    # The row asked for first, in place of the table's other chunks.
    lowest = with_row_asked_for("Which zone had the lowest sales?", found, table_chunks)
    assert [h.doc_id for h in lowest] == ["row2", "prose"] and asked == ["row1"]
    highest = with_row_asked_for("Which zone had the highest sales?", found, table_chunks)
    assert [h.doc_id for h in highest] == ["row0", "prose"]
    for question in ("How much did Zone NA sell?", "Which zone is the biggest?"):
        assert with_row_asked_for(question, found, table_chunks) == found
    assert with_row_asked_for("Which zone had the lowest sales?", found[:1], table_chunks) == found[:1]
    chunks = ["\n\n".join(CUPS[:1]), "\n\n".join(CUPS[1:])]
    assert chunk_asked_for("Which team has won the most Stanley Cups?", chunks) == 1
