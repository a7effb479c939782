"""The task registry decides once what a data spec is; `--rows` has one meaning everywhere."""

import json

import pytest

from reasonalign.core.errors import UserError
from reasonalign.data import load, take_rows
from reasonalign.tasks import TASKS, check, task_for


def test_specs_and_files_map_to_their_task(tmp_path, small_csv):
    assert task_for("dfar:test").name == "dfar" and task_for("dfar").name == "dfar"
    assert task_for("ethos:/x/Ethos_Dataset_Binary.csv").name == "ethos"
    assert task_for("gsm8k:train").name == "gsm8k" and task_for("aqua:dev").name == "aqua"
    assert task_for(small_csv).name == "dfar"  # a statement/label CSV is DFAR-style data
    gsm, aqua, labels = tmp_path / "g.jsonl", tmp_path / "a.jsonl", tmp_path / "l.jsonl"
    gsm.write_text(json.dumps({"question": "1+1?", "answer": "2\n#### 2"}) + "\n")
    aqua.write_text(json.dumps({"question": "q", "options": ["A)1", "B)2"], "rationale": "r", "correct": "B"}) + "\n")
    labels.write_text(json.dumps({"statement": "I lied.", "label": 1}) + "\n")
    assert [task_for(str(p)).name for p in (gsm, aqua, labels)] == ["gsm8k", "aqua", "dfar"]
    assert [TASKS[t].kind for t in ("dfar", "ethos", "gsm8k", "aqua")] == ["labels", "labels", "answers", "answers"]


def test_an_unreadable_json_lines_file_goes_to_the_loader_the_command_expects(tmp_path):
    absent = str(tmp_path / "absent.jsonl")
    assert task_for(absent).name == "dfar" and task_for(absent, expect="answers").kind == "answers"
    with pytest.raises(UserError, match="absent.jsonl: file not found"):
        task_for(absent, expect="answers").load(absent)


def test_the_checker_of_each_task():
    assert check("gsm8k", " so 3 + 4 = 7. The answer is 7.", "7") and not check("gsm8k", " The answer is 8.", "7")
    assert check("aqua", " The answer is C.", "C") and check("dfar", " unethical. It hurts.", "unethical")
    assert not check("ethos", " I cannot say.", "ethical")
    with pytest.raises(UserError, match="unknown task"):
        check("mmlu", "A", "A")


def test_rows_keep_the_label_shares_in_every_prefix_and_skip_rows_never_overlap():
    test = load("dfar:test").examples
    share = sum(e.label for e in test) / len(test)
    order = TASKS["dfar"].rows(test, len(test), seed=3)
    for n in (10, 50, 96, 311):
        assert abs(sum(e.label for e in order[:n]) - share * n) < 1  # largest-remainder interleave
    held = TASKS["dfar"].rows(test, 50, seed=3)
    rest = TASKS["dfar"].rows(test, 200, seed=3, skip=50)
    assert held == order[:50] and rest == order[50:250] and not {id(e) for e in held} & {id(e) for e in rest}
    assert TASKS["dfar"].rows(test, None, seed=3) == test  # all rows, file order
    assert TASKS["dfar"].rows(test, 50, seed=4) != held
    # answers tasks have no labels: the same seeded first-N/skip scheme over a plain shuffle
    assert TASKS["gsm8k"].rows(list(range(20)), 5, seed=1) == take_rows(list(range(20)), 5, seed=1)
