"""Kappa and raw agreement, hand-computed."""

import math
import random
from collections import Counter

import pytest
from sklearn.metrics import cohen_kappa_score

from reasonalign.judges.agreement import agreement, cohen_kappa, fleiss_kappa, raw_agreement
from reasonalign.judges.base import JUDGE_ERROR, Judgement

# 10 items: both yes 4, A yes/B no 2, A no/B yes 1, both no 3.
A = [1, 1, 1, 1, 1, 1, 0, 0, 0, 0]
B = [1, 1, 1, 1, 0, 0, 1, 0, 0, 0]

# 3 raters x 4 items, counts per item of (aligned, misaligned)
FLEISS = [[3, 0], [2, 1], [1, 2], [0, 3]]


def test_cohen_hand_computed():
    # observed 7/10; chance = 0.6*0.5 + 0.4*0.5 = 0.5; kappa = (0.7 - 0.5) / (1 - 0.5)
    assert cohen_kappa(A, B) == pytest.approx(0.4)
    assert cohen_kappa(A, B) == pytest.approx(cohen_kappa_score(A, B))
    assert cohen_kappa(A, A) == 1.0
    assert math.isnan(cohen_kappa([1, 1], [1, 1]))  # chance agreement 1: undefined


def cohen_by_hand(a, b):
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b)) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[c] * cb[c] for c in ca) / (n * n)
    return (observed - expected) / (1 - expected)


@pytest.mark.filterwarnings("error")
def test_cohen_matches_hand_formula_and_stays_quiet():
    rng = random.Random(0)
    for _ in range(20):
        n = rng.randint(2, 30)
        a, b = [rng.choice("xyz") for _ in range(n)], [rng.choice("xyz") for _ in range(n)]
        if len(set(a) | set(b)) > 1:
            assert cohen_kappa(a, b) == pytest.approx(cohen_by_hand(a, b))
    assert cohen_kappa([True, True], [False, False]) == 0.0  # no shared label: chance agreement 0
    assert math.isnan(cohen_kappa(["x"] * 3, ["x"] * 3))  # NaN without scikit-learn's warnings
    with pytest.raises(ValueError):
        cohen_kappa([1, 0], [1])
    with pytest.raises(ValueError):
        cohen_kappa([], [])


def test_fleiss_hand_computed():
    # P_i = 1, 1/3, 1/3, 1 -> mean 2/3; category shares 1/2, 1/2 -> P_e = 1/2; kappa = (2/3-1/2)/(1/2)
    assert fleiss_kappa(FLEISS) == pytest.approx(1 / 3)
    assert fleiss_kappa([[3, 0], [0, 3]]) == 1.0
    with pytest.raises(ValueError):
        fleiss_kappa([[3, 0], [1, 1]])


def test_raw_agreement():
    assert raw_agreement([A, B]) == pytest.approx(0.7)
    # item-wise pair agreement 1, 1/3, 1/3, 1 (same as Fleiss' P_i)
    three = [[True, True, True, False], [True, True, False, False], [True, False, False, False]]
    assert raw_agreement(three) == pytest.approx(2 / 3)


def judgements(labels, errors=()):
    return [Judgement(str(i), bool(v), "", [] if v else ["x"]) if i not in errors
            else Judgement(str(i), False, "", [JUDGE_ERROR], error="timeout") for i, v in enumerate(labels)]


def test_agreement_picks_cohen_for_two_and_fleiss_for_three():
    two = agreement({"ref": judgements(A), "llm": judgements(B)})
    assert two["kind"] == "cohen" and two["kappa"] == pytest.approx(0.4)
    assert two["raw_agreement"] == pytest.approx(0.7) and two["n_items"] == 10 and two["excluded"] == 0

    raters = [[True, True, True, False], [True, True, False, False], [True, False, False, False]]
    three = agreement({f"r{k}": judgements(r) for k, r in enumerate(raters)})
    assert three["kind"] == "fleiss" and three["kappa"] == pytest.approx(1 / 3)
    assert three["raw_agreement"] == pytest.approx(2 / 3)


def test_agreement_matches_by_item_id_and_skips_errors():
    # judge "llm" errored on item 9 and lists items in another order: compare items 0-8 only
    llm = list(reversed(judgements(B, errors={9})))
    out = agreement({"ref": judgements(A), "llm": llm})
    assert out["n_items"] == 9 and out["excluded"] == 1
    # dropping item 9 (both "no"): observed 6/9; shares A yes 6/9, B yes 5/9 -> chance 30/81 + 12/81
    expected = (6 / 9 - 42 / 81) / (1 - 42 / 81)
    assert out["kappa"] == pytest.approx(expected)
