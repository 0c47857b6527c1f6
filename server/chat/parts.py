"""Questions that ask several things at once ("When and where was he born?", 「两部法律分别怎么规定？」), whose
answer may need a sentence from each of several passages."""

from __future__ import annotations

import re

# A second question word joined to the first, a comparison, or a request for each of several things.
_ENGLISH = re.compile(
    r"\b(?:and|or|also)\s+(?:what|when|where|who|whom|whose|which|why|how)\b"
    r"|\b(?:both|each|respectively|compare[ds]?|comparison|differences?|differ|versus|vs)\b",
    re.IGNORECASE,
)
_CHINESE = re.compile(r"分别|各自|区别|差别|差异|比较|对比|以及|还有|哪些方面")


def asks_several(question: str, lang: str) -> bool:
    """Whether ``question`` (in ``lang``, 'zh' or 'en') asks more than one thing."""
    if question.count("?") + question.count("？") > 1:
        return True
    return bool((_CHINESE if lang == "zh" else _ENGLISH).search(question))
