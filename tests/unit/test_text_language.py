"""Which script a passage is written in, as the relevance judgement of knowledge-base chat needs it."""

from server.knowledge_base.boundaries import mostly_cjk


def test_a_passage_is_mostly_cjk_when_it_has_a_cjk_character_for_every_three_latin_letters():
    assert mostly_cjk("劳动合同期限一年以上不满三年的，试用期不得超过二个月。")
    assert mostly_cjk("第十九条 劳动合同期限三个月以上不满一年的（see Article 19），试用期不得超过一个月。")
    assert not mostly_cjk("Turn the compost heap every two weeks, said 王先生.")
    assert not mostly_cjk("1984, 2001: 42")
    assert not mostly_cjk("")
