"""The codes a question names (model and part numbers, grades), and whether a store mentions them."""

from __future__ import annotations

import pytest

from server.knowledge_base.codes import alphanumeric, codes


@pytest.mark.parametrize(("question", "named"), [
    ("What's the minimum yield strength for SS400 steel?", ["SS400"]),
    ("SS400钢的屈服强度是多少？", ["SS400"]),
    ("What are SNB22-3 steel bars meant to be used for?", ["SNB22-3"]),
    ("Correlation of CD161+ CD8 T cells with Ki67+ CD8 cells?", ["CD161", "CD8", "Ki67"]),
    ("Does the X200 fit the iPhone15?", ["X200", "iPhone15"]),
    # Quantities, ordinals, decades, periods and numbers with a letter are said in other words, or are no codes.
    ("Sales in H1 2023, Q3 and FY2023?", []), ("A 10km run at 3pm on the 2nd, in the 1990s?", []),
    ("Is 5G or 4K at 12V covered?", []), ("PC-12/47E airplanes, the 10-K report, the 737-8, COVID-19", []),
])
def test_the_codes_a_question_names(question, named):
    assert codes(question) == named


def test_codes_are_compared_on_their_letters_and_digits():
    assert alphanumeric("SS-400") == alphanumeric("ＳＳ４００") == alphanumeric("ss 400") == "ss400"
