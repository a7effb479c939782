"""The generated arithmetic task (data/arith.py): deterministic splits, step checking, ranking feedback,
the `arith:` specs, and bad input."""

import json
import random

import pytest
from conftest import cli

from reasonalign.align.sample import Item, make_group
from reasonalign.core.errors import UserError
from reasonalign.data.arith import chain_score, make_problem, make_split
from reasonalign.tasks import task_for


def test_problems_are_deterministic_and_their_chains_are_right():
    a, b = make_split("validation", 3, 50), make_split("validation", 3, 50)
    assert a == b and a != make_split("validation", 2, 50)
    for p in a:
        lines = p["answer"].split("\n")[0].split(". ")
        assert len(p["chain"]) == 3 == len(lines)
        value = None
        for line, result in zip(lines, p["chain"]):
            left, right = line.rstrip(".").split(" = ")
            x, op, y = left.split()
            assert value is None or int(x) == value  # each step starts from the last result
            assert eval(f"{x} {op} {y}") == int(right) == result and result >= 0
            value = result
        assert p["answer"].endswith(f"#### {p['chain'][-1]}")


def test_splits_share_no_question():
    train = {p["question"] for p in make_split("train", 2)}
    held = [p["question"] for split in ("validation", "test") for p in make_split(split, 2)]
    assert len(train) == 4000 and len(set(held)) == 1000 and not train & set(held)


def test_chain_score_counts_gold_results_reached_in_order():
    assert chain_score("7 + 5 = 12. 12 - 3 = 9. 9 * 2 = 18. The answer is 18.", [12, 9, 18]) == 3
    assert chain_score("7 + 5 = 12. 12 - 3 = 8. 8 * 2 = 16.", [12, 9, 18]) == 1
    assert chain_score("9 - 3 = 9. 7 + 5 = 12.", [12, 9, 18]) == 1  # out of order: 9 before 12 does not count
    assert chain_score("The answer is 18.", [12, 9, 18]) == 0


def test_steps_scorer_ranks_right_answers_first_then_by_steps_reached():
    item = Item("x", "gsm8k", "Question: ...\nAnswer:", True, "18", (12, 9, 18))
    texts = [" 7 + 5 = 12. 12 - 3 = 9. 9 * 2 = 18.\nThe answer is 18.",  # right, 3 steps
             " 7 + 5 = 12. 12 - 3 = 8. 8 * 2 = 16.\nThe answer is 16.",  # wrong, 1 step
             " 7 + 5 = 11.\nThe answer is 18.",  # right answer, no step: below the full chain
             " 7 + 5 = 12. 12 - 3 = 9. 9 * 2 = 19.\nThe answer is 19."]  # wrong, 2 steps
    ranks = [r["rank"] for r in make_group(item, texts, 0, "steps")["responses"]]
    assert ranks == [0, 3, 1, 2]


def test_arith_specs_load_as_gsm8k_with_chains_and_bad_specs_are_one_line():
    task = task_for("arith3:test")
    examples = task.load("arith3:test").examples
    assert task.name == "gsm8k" and len(examples) == 500 and all(len(ex.chain) == 3 for ex in examples)
    assert examples[0].rationale.endswith(f"The answer is {examples[0].answer}.")
    assert task.is_correct(examples[0].rationale, examples[0].answer)
    with pytest.raises(UserError, match="unknown split"):
        task.load("arith:dev")
    with pytest.raises(UserError, match="1 to 8 steps"):
        task.load("arith9:test")


def test_data_arith_writes_files_with_hashes_and_a_bad_chain_is_named(tmp_path):
    r = cli("data", "arith", "--steps", "2", "--output", str(tmp_path / "a"))
    assert r.returncode == 0, r.stderr
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["files"]["test"]["rows"] == 500 and len(manifest["files"]["train"]["sha256"]) == 64
    assert [json.loads(line) for line in (tmp_path / "a" / "test.jsonl").read_text().splitlines()] == \
        make_split("test", 2)
    bad = tmp_path / "bad.jsonl"
    record = make_problem(random.Random(0), 2)
    bad.write_text(json.dumps(record) + "\n" + json.dumps({**record, "chain": ["12"]}) + "\n")
    with pytest.raises(UserError, match=f"{bad}:2:.*chain"):
        task_for(str(bad)).load(str(bad))
    r = cli("data", "arith", "--steps", "0", "--output", str(tmp_path / "b"))
    assert r.returncode == 2 and "Traceback" not in r.stderr and not (tmp_path / "b").exists()


def test_reason_scorer_ranks_label_correct_responses_by_their_reason():
    """DFAR ranking feedback that counts the reason: the label-correct response whose reason says what the
    human reason says ranks first, an off-topic but label-correct one second, a label-wrong one last."""
    from reasonalign.align.sample import rank_by_reason
    from reasonalign.judges.reference import load_minilm

    item = Item("d:1", "dfar", "...", True, "unethical",
                gold_reason="Crushing a frog on purpose is cruel: animals feel pain.")
    texts = ["unethical. Killing a frog deliberately is cruel because animals feel pain.",
             "unethical. Taxes fund roads and schools.",
             "ethical. Frogs are fine."]
    groups = [make_group(item, texts, 0)]
    rank_by_reason(groups, [item], encoder=load_minilm())
    responses = groups[0]["responses"]
    assert [r["rank"] for r in responses] == [0, 1, 2]
    assert responses[0]["reason_similarity"] > responses[1]["reason_similarity"]
    assert "reason_similarity" not in responses[2]
