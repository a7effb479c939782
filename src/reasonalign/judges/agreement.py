"""Inter-judge agreement: Cohen's kappa (two judges), Fleiss' kappa (more), raw agreement.

A MAR from one automatic judge means little until it agrees with people; these numbers say
how far the reference judge, LLM judges and human raters can stand in for each other.
"""

from collections import Counter

from sklearn.metrics import cohen_kappa_score

from reasonalign.judges.base import Judgement


def cohen_kappa(a: list, b: list) -> float:
    """Cohen's kappa for two raters' labels over the same items.

    NaN when chance agreement is 1 (both raters used one and the same label for every item):
    kappa is undefined there, and NaN keeps it from passing as perfect agreement. That case is
    caught here, before scikit-learn, which would return NaN too but with warnings.
    """
    if len(a) != len(b) or not a:
        raise ValueError("cohen_kappa needs two equally long, non-empty label lists")
    if len(set(a) | set(b)) == 1:
        return float("nan")
    return float(cohen_kappa_score(a, b))


def fleiss_kappa(matrix: list[list[int]]) -> float:
    """Fleiss' kappa from an items x categories matrix of counts (same raters per item).

    Hand-written: neither scipy nor scikit-learn has it (statsmodels does; not a dependency here).
    """
    if not matrix:
        raise ValueError("fleiss_kappa needs at least one item")
    raters = sum(matrix[0])
    if raters < 2 or any(sum(row) != raters for row in matrix):
        raise ValueError("fleiss_kappa needs the same number (>= 2) of ratings on every item")
    n_items = len(matrix)
    p_items = [(sum(c * c for c in row) - raters) / (raters * (raters - 1)) for row in matrix]
    p_bar = sum(p_items) / n_items
    shares = [sum(col) / (n_items * raters) for col in zip(*matrix)]
    p_e = sum(s * s for s in shares)
    return float("nan") if p_e == 1 else (p_bar - p_e) / (1 - p_e)


def raw_agreement(labels_by_rater: list[list]) -> float:
    """Mean over items of the share of rater pairs that agree (plain agreement for two raters)."""
    n = len(labels_by_rater)
    total = 0.0
    for labels in zip(*labels_by_rater):
        counts = Counter(labels).values()
        total += sum(c * (c - 1) for c in counts) / (n * (n - 1))
    return total / len(labels_by_rater[0])


def agreement(judgements_by_judge: dict[str, list[Judgement]]) -> dict:
    """Kappa (Cohen for two judges, Fleiss for more) and raw agreement on `aligned`.

    Compared over the items every judge rated without error (matched by item_id); the count
    of items left out is reported as `excluded`.
    """
    if len(judgements_by_judge) < 2:
        raise ValueError("agreement needs at least two judges")
    tables = [{j.item_id: j for j in js} for js in judgements_by_judge.values()]
    all_ids = set().union(*tables)
    common = sorted(i for i in all_ids if all(i in t and t[i].error is None for t in tables))
    if not common:
        return {"kind": None, "kappa": None, "raw_agreement": None, "n_items": 0,
                "judges": list(judgements_by_judge), "excluded": len(all_ids)}
    labels = [[t[i].aligned for i in common] for t in tables]
    if len(labels) == 2:
        kind, kappa = "cohen", cohen_kappa(*labels)
    else:
        matrix = [[sum(col), len(col) - sum(col)] for col in zip(*labels)]
        kind, kappa = "fleiss", fleiss_kappa(matrix)
    return {"kind": kind, "kappa": kappa, "raw_agreement": raw_agreement(labels), "n_items": len(common),
            "judges": list(judgements_by_judge), "excluded": len(all_ids) - len(common)}
