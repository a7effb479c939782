"""`reasonalign eval --task ranking`: metrics agree with the per-group scores it writes."""

import json
from pathlib import Path

import pytest

from conftest import cli
from reasonalign.core.stats import bootstrap_groups
from reasonalign.eval.ranking import group_pairs

GROUPS = str(Path(__file__).parent / "fixtures" / "groups_tiny.jsonl")


def test_group_pairs_by_hand():
    # ranks 0 < 1 < 2 (and a tie at 1): pairs (0,1) (0,2) (0,3) (1,2) (3,2); ties form none
    assert group_pairs([-1.0, -2.0, -3.0, -0.5], [0, 1, 2, 1]) == (4, 5)  # (0,3) is ordered wrong
    assert group_pairs([-1.0, -1.0], [0, 1]) == (0, 1)  # a tie in score counts as wrong
    assert group_pairs([-1.0, -2.0], [0, 0]) == (0, 0)


def test_bootstrap_over_groups_is_seeded_and_brackets_the_share():
    ordered, pairs = [3, 1, 0, 2, 4], [4, 2, 1, 2, 4]
    lo, hi = bootstrap_groups(ordered, pairs, seed=0)
    assert 0 <= lo <= sum(ordered) / sum(pairs) <= hi <= 1
    assert bootstrap_groups(ordered, pairs, seed=0) == [lo, hi]
    assert bootstrap_groups([0], [0], seed=0) != bootstrap_groups([0], [0], seed=0)  # NaN: nothing to resample


@pytest.mark.parametrize("feedback", ["binary", "rank"])
def test_eval_ranking_cli(tiny_model, tmp_path, feedback):
    out = tmp_path / "ev"
    r = cli("eval", "--task", "ranking", "--model", tiny_model, "--groups", GROUPS,
            "--feedback", feedback, "--output", str(out), "--seed", "3")
    assert r.returncode == 0, r.stderr
    m = json.loads((out / "metrics.json").read_text())
    rows = [json.loads(line) for line in (out / "group_scores.jsonl").read_text().splitlines()]
    assert len(rows) == m["n_groups"] == 6 and m["seed"] == 3 and m["feedback"] == feedback
    # recompute the share and the margin from the written scores
    pairs = [(s[i], s[j]) for row in rows for s, rk in [(row["scores"], row["ranks"])]
             for i in range(len(s)) for j in range(len(s)) if rk[i] < rk[j]]
    assert m["n_pairs"] == len(pairs) == (9 if feedback == "binary" else 10)  # rank: 0 < 1 < 2 adds one pair
    assert m["pair_accuracy"] == pytest.approx(sum(a > b for a, b in pairs) / len(pairs))
    assert m["margin"] == pytest.approx(sum(a - b for a, b in pairs) / len(pairs), abs=1e-5)
    assert m["n_groups_with_pairs"] == 4 and sum(row["pairs"] for row in rows) == m["n_pairs"]
    lo, hi = m["ci95"]
    assert 0 <= lo <= m["pair_accuracy"] <= hi <= 1 and "bootstrap over groups" in m["ci_method"]
    assert all(len(row["scores"]) == len(row["correct"]) for row in rows)
    assert r.stdout.strip().startswith("pairs ordered right ") and f"{out}/metrics.json" in r.stdout
