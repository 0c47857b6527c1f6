"""Hit definition and ranking metrics shared by the retrieval and answer benchmarks.

Hit rule (chunks, not files, are ranked, so splitting is part of what is measured):
let N(x) be x after NFKC normalisation, case folding and removal of all whitespace. A retrieved
chunk c is a hit for a question when, for at least one of the question's gold passages g,
N(c) is a substring of N(g), or at least half of the distinct character 8-grams of N(c) occur in
N(g). The 8-gram rule tolerates text the splitter adds or trims (heading paths, joined lines)
while two unrelated passages essentially never share half their 8-grams. A chunk shorter than
8 characters after normalisation counts only by the substring rule.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field

from server.knowledge_base.evaluation import SHINGLE, normalise, shingles

MIN_SHARED = 0.5
CUTOFFS = (1, 3, 5, 10)


class GoldMatcher:
    """Decides whether a chunk text is a hit for a set of gold passages (see the module docstring)."""

    def __init__(self, passages: Sequence[str]) -> None:
        self._passages = passages
        self._norm: dict[int, str] = {}
        self._shingles: dict[int, set[str]] = {}

    def _gold(self, idx: int) -> tuple[str, set[str]]:
        if idx not in self._norm:
            self._norm[idx] = normalise(self._passages[idx])
            self._shingles[idx] = shingles(self._norm[idx])
        return self._norm[idx], self._shingles[idx]

    def is_hit(self, chunk_text: str, gold: Sequence[int]) -> bool:
        norm = normalise(chunk_text)
        if not norm:
            return False
        own = shingles(norm) if len(norm) >= SHINGLE else set()
        for idx in gold:
            g_norm, g_shingles = self._gold(idx)
            if norm in g_norm:
                return True
            if own and len(own & g_shingles) >= MIN_SHARED * len(own):
                return True
        return False


def contains_answer(texts: Sequence[str], answers: Sequence[str]) -> bool:
    """Whether any answer string occurs (normalised) in any of the texts."""
    norm_answers = [normalise(a) for a in answers if normalise(a)]
    if not norm_answers:
        return False
    joined = [normalise(t) for t in texts]
    return any(a in t for a in norm_answers for t in joined)


@dataclass
class RankingScores:
    """Accumulates Recall@k and MRR@10 over questions from per-rank hit flags."""

    cutoffs: tuple[int, ...] = CUTOFFS
    n: int = 0
    recall_hits: dict[int, int] = field(default_factory=dict)
    rr_sum: float = 0.0
    answer_hits: int = 0
    answer_n: int = 0

    def add(self, flags: Sequence[bool], answer_in_top5: bool | None = None) -> None:
        """flags[i] says whether the result at rank i+1 is a hit."""
        self.n += 1
        first = next((i + 1 for i, f in enumerate(flags[:10]) if f), None)
        for k in self.cutoffs:
            if first is not None and first <= k:
                self.recall_hits[k] = self.recall_hits.get(k, 0) + 1
        if first is not None:
            self.rr_sum += 1.0 / first
        if answer_in_top5 is not None:
            self.answer_n += 1
            self.answer_hits += int(answer_in_top5)

    def as_dict(self) -> dict[str, float | int | None]:
        out: dict[str, float | int | None] = {"questions": self.n}
        for k in self.cutoffs:
            out[f"R@{k}"] = round(self.recall_hits.get(k, 0) / self.n, 4) if self.n else None
        out["MRR@10"] = round(self.rr_sum / self.n, 4) if self.n else None
        out["AnsR@5"] = round(self.answer_hits / self.answer_n, 4) if self.answer_n else None
        return out


def best_threshold(positives: Sequence[float], negatives: Sequence[float]) -> dict[str, float | None]:
    """Score thresholds separating relevant from irrelevant top scores.

    Returns the threshold maximising F1 of "score >= t means relevant", the F1 reached, and the
    threshold keeping 95% (and 90%) of the relevant scores with the share of irrelevant ones it drops.
    """
    if not positives:
        return {"f1_threshold": None, "f1": None, "keep95_threshold": None, "keep90_threshold": None}
    pos = sorted(positives)
    neg = sorted(negatives)
    candidates = sorted(set(pos) | set(neg))
    best_t, best_f1 = candidates[0], -1.0
    n_pos, n_neg = len(pos), len(neg)
    for t in candidates:
        tp = n_pos - bisect.bisect_left(pos, t)
        fp = n_neg - bisect.bisect_left(neg, t)
        if tp == 0:
            continue
        precision = tp / (tp + fp)
        recall = tp / n_pos
        f1 = 2 * precision * recall / (precision + recall)
        if f1 > best_f1:
            best_t, best_f1 = t, f1

    def keep(share: float) -> tuple[float, float | None]:
        t = pos[int((1 - share) * n_pos)]
        dropped = bisect.bisect_left(neg, t) / n_neg if n_neg else None
        return t, dropped

    t95, drop95 = keep(0.95)
    t90, drop90 = keep(0.90)
    return {
        "f1_threshold": round(best_t, 4),
        "f1": round(best_f1, 4),
        "keep95_threshold": round(t95, 4),
        "keep95_negatives_dropped": None if drop95 is None else round(drop95, 4),
        "keep90_threshold": round(t90, 4),
        "keep90_negatives_dropped": None if drop90 is None else round(drop90, 4),
        "positives": n_pos,
        "negatives": n_neg,
    }
