"""`reasonalign eval --task answers`: chain-of-thought accuracy, its Wilson interval, the files it writes."""

import json
from pathlib import Path

import pytest

from conftest import cli
from reasonalign.cli import main
from reasonalign.data.cot import format_prompt, format_target, load_cot
from reasonalign.eval.answers import AnswersConfig, evaluate_answers
from reasonalign.models import load_tokenizer
from reasonalign.core.stats import wilson_interval

FIXTURES = Path(__file__).parent / "fixtures"
GSM8K, AQUA = str(FIXTURES / "gsm8k_tiny.jsonl"), str(FIXTURES / "aqua_tiny.jsonl")


def test_wilson_interval_by_hand():
    # textbook values (Newcombe 1998; Wilson 1927), z = 1.96
    assert wilson_interval(0, 10) == pytest.approx([0.0, 0.2775], abs=1e-4)
    assert wilson_interval(5, 10) == pytest.approx([0.2366, 0.7634], abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx([0.7225, 1.0], abs=1e-4)
    lo, hi = wilson_interval(81, 263)
    assert (lo, hi) == pytest.approx((0.2553, 0.3662), abs=1e-4)


@pytest.mark.parametrize("data, task", [(GSM8K, "gsm8k"), (AQUA, "aqua")])
def test_accuracy_from_scripted_answers(tiny_model, tmp_path, monkeypatch, data, task):
    """Every other question gets its gold rationale (right), the rest a wrong answer: accuracy 1/2."""
    examples = load_cot(data)
    gold = {format_prompt(ex): ex for ex in examples}

    def scripted(model, tokenizer, prompts, **kw):
        assert kw["stop"] == ("\nQuestion:",) and kw["add_special_tokens"] is True
        out = []
        for prompt in prompts:
            ex = gold[prompt]
            wrong = " The answer is -1." if task == "gsm8k" else " I am not sure."
            out.append(format_target(ex) if ex.row % 2 else wrong)
        return out

    monkeypatch.setattr("reasonalign.core.generation.generate_texts", scripted)
    m = evaluate_answers(AnswersConfig(model=tiny_model, data=data, output=str(tmp_path)))
    assert (m["accuracy"], m["n"], m["correct"], m["task"]) == (0.5, 8, 4, task)
    assert m["ci95"] == wilson_interval(4, 8) and m["ci_method"] == "Wilson score interval"
    assert m["no_answer"] == (0 if task == "gsm8k" else 4)
    rows = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    tokenizer = load_tokenizer(tiny_model)  # the speed a caption quotes: every kept output token, per second
    tokens = sum(len(tokenizer(r["output"], add_special_tokens=False).input_ids) for r in rows)
    assert m["generated_tokens"] == tokens > 8
    assert m["tokens_per_second"] > 0
    assert [r["row"] for r in rows] == list(range(1, 9))  # all rows, in file order
    for r in rows:
        assert r["correct"] == (r["row"] % 2 == 1) and r["prompt"].endswith("\nAnswer:")
        assert (r["extracted"] == r["gold"]) == r["correct"]


def test_rows_are_a_seeded_first_n(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setattr("reasonalign.core.generation.generate_texts", lambda m, t, prompts, **kw: [""] * len(prompts))
    picks = []
    for seed in (0, 0, 1):
        evaluate_answers(AnswersConfig(model=tiny_model, data=GSM8K, rows=3, seed=seed, output=str(tmp_path)))
        picks.append([json.loads(x)["row"] for x in (tmp_path / "predictions.jsonl").read_text().splitlines()])
    assert len(picks[0]) == 3 and picks[0] == picks[1] and picks[0] != picks[2]


def test_console_script_eval_answers(tiny_model, tmp_path):
    out = tmp_path / "ev"
    r = cli("eval", "--task", "answers", "--model", tiny_model, "--data", GSM8K, "--rows", "4",
            "--max-new-tokens", "8", "--batch-size", "2", "--output", str(out))
    assert r.returncode == 0, r.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert metrics["n"] == len(rows) == 4 and len(metrics["ci95"]) == 2
    assert metrics["accuracy"] == sum(r["correct"] for r in rows) / len(rows)
    assert metrics["task"] == "gsm8k" and metrics["seed"] == 0 and metrics["data"] == GSM8K
    assert set(rows[0]) == {"row", "prompt", "output", "extracted", "gold", "correct"}
    assert "n=4" in r.stdout and f"{out}/metrics.json" in r.stdout


@pytest.mark.parametrize("args, problem", [
    (["--data", "ABSENT"], "ABSENT: file not found"),
    (["--data", "gsm8k:dev"], "gsm8k:dev: unknown data set"),
    (["--data", GSM8K, "--rows", "0"], "--rows 0: must be at least 1"),
    (["--data", GSM8K, "--calibration", "none"], "--calibration: not an option of --task answers"),
])
def test_bad_input_is_one_line_exit_2_nothing_written(tiny_model, tmp_path, capsys, args, problem):
    out = tmp_path / "out"
    args = [a.replace("ABSENT", str(tmp_path / "absent.jsonl")) for a in args]
    problem = problem.replace("ABSENT", str(tmp_path / "absent.jsonl"))
    assert main(["eval", "--task", "answers", "--model", tiny_model, *args, "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {problem}"), err
    assert not out.exists()
