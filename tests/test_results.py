"""The recipe results table on fake run folders: validation column, caption, paired comparisons, seeds."""

import json
import random

import numpy as np
import pytest

from conftest import cli
from reasonalign.report.recipe_table import seed_summary, write_seed_table, write_table
from reasonalign.core.errors import UserError
from reasonalign.core.files import write_jsonl
from reasonalign.core.stats import paired_comparison
from reasonalign.data.tables import clean_rows

CLEAN = clean_rows("dfar:test")  # DFAR test rows 0 and 1 are repeated from train, 2..9 are not
ROWS = list(range(10))
JUDGE = "reference"


def _acc(correct):
    return {"accuracy": float(np.mean(correct)), "ci95": [0.0, 1.0], "n": len(correct), "majority_baseline": 0.5}


def _write_eval(folder, data, correct, seed, **extra):
    """metrics.json + predictions.jsonl as `eval` writes them, predictions in a shuffled row order."""
    splits = ({data: _acc(correct), "dfar:test-clean": _acc([c for r, c in zip(ROWS, correct) if r in CLEAN])}
              if data == "dfar:test" else {})
    metrics = {**_acc(correct), "data": data, "splits": splits, "threshold_source": "none (threshold 0)",
               "accuracy_threshold_0": 0.5, "seconds": 1.0, **extra}
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps(metrics))
    records = [{"row": r, "pred": 0, "gold": 0, "correct": bool(c)} for r, c in zip(ROWS, correct)]
    random.Random(seed).shuffle(records)
    write_jsonl(folder / "predictions.jsonl", records)


def fake_model(folder, correct, misaligned, validation=None, seed=0, decoding=None):
    _write_eval(folder / "eval", "dfar:test", correct, seed, precision="bf16")
    if validation is not None:
        _write_eval(folder / "eval-validation", "dfar:validation", validation, seed + 1)
    rows = ROWS[:len(misaligned)]
    mar = {"mar": float(np.mean(misaligned)), "ci95": [0.0, 1.0], "n": len(misaligned)}
    clean = [m for r, m in zip(rows, misaligned) if r in CLEAN]
    reasons = {**mar, "data": "dfar:test", "judge": JUDGE, "judge_version": "v1", "criteria_rates": {},
               "seconds": 2.0, "splits": {"dfar:test": mar, "dfar:test-clean": {
                   "mar": float(np.mean(clean)), "ci95": [0.0, 1.0], "n": len(clean)}},
               **({"decoding": decoding} if decoding else {})}
    (folder / "eval-reasons").mkdir()
    (folder / "eval-reasons" / "metrics.json").write_text(json.dumps(reasons))
    write_jsonl(folder / "eval-reasons" / "judgements.jsonl", [
        {"row": r, "judges": {JUDGE: {"aligned": not m}, "other": {"aligned": True}}}
        for r, m in zip(rows, misaligned)])


A_CORRECT, B_CORRECT = [1, 0, 0, 1, 0, 0, 1, 0, 1, 0], [1, 1, 1, 1, 0, 1, 1, 1, 1, 0]
A_VAL, B_VAL = [0, 1, 0, 1, 0, 0, 1, 0, 0, 0], [1, 1, 1, 1, 1, 0, 1, 1, 0, 1]
A_MIS, B_MIS = [1, 1, 0, 1, 1, 0], [0, 1, 0, 0, 0, 0]
TABLE = {"title": "t", "caption": "c.", "rows": [{"name": "A", "folder": "{output}/a"},
                                                 {"name": "B", "folder": "{output}/b"}]}


def _run_table(tmp_path, table, seed=0, validation=True, decoding=None, fresh=True):
    if fresh:  # else the caller wrote the folders
        fake_model(tmp_path / "a", A_CORRECT, A_MIS, A_VAL if validation else None, seed=seed)
        fake_model(tmp_path / "b", B_CORRECT, B_MIS, B_VAL if validation else None, seed=seed + 7, decoding=decoding)
    values = {"output": str(tmp_path), "seed": seed}
    write_table(table, values, lambda v: v.replace("{output}", str(tmp_path)), "r.yaml")
    return json.loads((tmp_path / "results.json").read_text()), (tmp_path / "results.md").read_text()


def test_validation_column_comes_first_and_comparisons_match_paired_comparison(tmp_path):
    decoding = {"strategy": "greedy", "repetition_penalty": 1.3, "max_new_tokens": 48}
    results, md = _run_table(tmp_path, {**TABLE, "compare": [["A", "B"]]}, seed=3, decoding=decoding)
    header = md.splitlines()[2]
    assert header.startswith("| model | acc dfar:validation (n=10) | acc dfar:test (n=10) | acc dfar:test-clean (n=8)")
    assert results["results"][1]["accuracy"]["dfar:validation"]["accuracy"] == pytest.approx(0.8)
    assert "Precision: bf16." in md and md.count("bf16") == 1
    assert ("Judge: reference v1 (this version not checked against careful readers). MAR decoding: greedy, "
            "repetition penalty 1.3, max new tokens 48.") in md
    clean = [r in CLEAN for r in ROWS]
    expected = {"acc dfar:validation": (A_VAL, B_VAL), "acc dfar:test": (A_CORRECT, B_CORRECT),
                "acc dfar:test-clean": ([c for c, k in zip(A_CORRECT, clean) if k],
                                        [c for c, k in zip(B_CORRECT, clean) if k]),
                "MAR dfar:test": (A_MIS, B_MIS),
                "MAR dfar:test-clean": ([m for m, k in zip(A_MIS, clean) if k], [m for m, k in zip(B_MIS, clean) if k])}
    comps = {c["column"]: c for c in results["comparisons"]}
    assert list(comps) == list(expected)
    for column, (a, b) in expected.items():
        assert {k: v for k, v in comps[column].items() if k not in ("model_a", "model_b", "column")} == \
            paired_comparison(a, b, seed=3), column
        assert (comps[column]["model_a"], comps[column]["model_b"]) == ("A", "B")
    assert comps["acc dfar:test"]["difference"] == pytest.approx(0.4)
    assert comps["MAR dfar:test"]["discordant"] == {"a_only": 3, "b_only": 0}
    assert "## paired differences (B − A)" in md
    cells = next(line for line in md.splitlines() if line.startswith("| B − A | +")).split(" | ")
    assert cells[1].startswith("+50.0% [") and cells[1].endswith("p=0.0625 n=10")
    assert cells[2].startswith("+40.0% [") and cells[2].endswith("p=0.125 n=10")  # 4 discordant, all for B


def test_old_runs_without_validation_or_compare(tmp_path):
    decoding = {"strategy": "greedy", "repetition_penalty": 1.3, "no_repeat_ngram_size": 3}
    results, md = _run_table(tmp_path, {**TABLE, "rows": TABLE["rows"][::-1]}, validation=False, decoding=decoding)
    assert "validation" not in md and results["comparisons"] == [] and "paired differences" not in md
    assert list(results["results"][0]["accuracy"]) == ["dfar:test", "dfar:test-clean"]
    assert ("Judge: reference v1 (this version not checked against careful readers). MAR decoding: greedy, "
            "repetition penalty 1.3, no repeat ngram size 3.") in md


def test_a_row_without_validation_gets_a_dash(tmp_path):
    fake_model(tmp_path / "a", A_CORRECT, A_MIS)
    fake_model(tmp_path / "b", B_CORRECT, B_MIS, B_VAL)
    write_table({**TABLE, "compare": [["A", "B"]]}, {"output": str(tmp_path)},
                lambda v: v.replace("{output}", str(tmp_path)))
    md = (tmp_path / "results.md").read_text()
    row_a = next(line for line in md.splitlines() if line.startswith("| A |"))
    assert row_a.split(" | ")[1] == "—" and "| model | acc dfar:validation (n=10) | acc dfar:test (n=10) |" in md
    comps = json.loads((tmp_path / "results.json").read_text())["comparisons"]
    assert "acc dfar:validation" not in {c["column"] for c in comps}


def test_bad_compare_names_name_the_recipe_table(tmp_path):
    cases = [([["A", "C"]], "no row named 'C' (rows: A, B)"), ([["A"]], "is not an [A, B] pair")]
    for compare, problem in cases:
        with pytest.raises(UserError, match=r"r\.yaml: table: compare: ") as err:
            _run_table(tmp_path / str(len(compare[0])), {**TABLE, "compare": compare})
        assert problem in str(err.value)


def _seed_results(acc_a, acc_b, diff, p):
    def row(model, acc):
        return {"model": model, "accuracy": {"dfar:test": {"accuracy": acc, "ci95": [0, 1], "n": 10}},
                "mar": {"dfar:test": {"mar": 1 - acc, "ci95": [0, 1], "n": 5}}}

    return {"results": [row("A", acc_a), row("B", acc_b)],
            "comparisons": [{"model_a": "A", "model_b": "B", "column": "acc dfar:test", "difference": diff,
                             "mcnemar_p": p}]}


def test_seed_summary_mean_sd_and_range(tmp_path):
    runs = {0: _seed_results(0.5, 0.7, 0.2, 0.3), 1: _seed_results(0.6, 0.9, 0.3, 0.04),
            2: _seed_results(0.7, 0.8, 0.1, 0.5)}
    summary = seed_summary(runs)
    a = summary["models"]["A"]["acc dfar:test"]
    assert a["mean"] == pytest.approx(0.6) and a["sd"] == pytest.approx(0.1)  # sample SD of 0.5, 0.6, 0.7
    assert (a["min"], a["max"], a["n_seeds"]) == (0.5, 0.7, 3)
    assert summary["models"]["B"]["MAR dfar:test"]["mean"] == pytest.approx(0.2)
    (c,) = summary["comparisons"]
    assert c["mean_difference"] == pytest.approx(0.2) and c["mcnemar_p"] == [0.3, 0.04, 0.5]
    assert c["seeds"] == [0, 1, 2] and summary["seeds"] == [0, 1, 2]
    assert seed_summary({4: runs[0]})["models"]["A"]["acc dfar:test"]["sd"] is None

    for s, run in runs.items():
        (tmp_path / f"seed-{s}").mkdir()
        (tmp_path / f"seed-{s}" / "results.json").write_text(json.dumps(run))
    assert write_seed_table(tmp_path, [0, 1, 2]) == json.loads((tmp_path / "results-seeds.json").read_text())
    md = (tmp_path / "results-seeds.md").read_text()
    assert "| A | 60.0% ± 10.0% (50.0%–70.0%) |" in md and "seed 1: +30.0% (p=0.04)" in md


def test_recipe_with_seeds_runs_once_per_seed(tiny_model, small_csv, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"""
vars:
  seed: 0
output: {tmp_path / "run"}
steps:
  - command: eval
    options: {{model: {tiny_model}, data: {small_csv}, rows: 12, method: l, seed: "{{seed}}",
              output: "{{output}}/a/eval"}}
  - command: eval
    options: {{model: {tiny_model}, data: {small_csv}, rows: 12, method: lr, seed: "{{seed}}",
              output: "{{output}}/b/eval"}}
table:
  title: "tiny (seed {{seed}})"
  rows: [{{name: A, folder: "{{output}}/a"}}, {{name: B, folder: "{{output}}/b"}}]
  compare: [[A, B]]
""")
    r = cli("recipe", str(recipe), "--seeds", "3,5")
    assert r.returncode == 0, r.stderr
    run = tmp_path / "run"
    per_seed = {s: json.loads((run / f"seed-{s}" / "results.json").read_text()) for s in (3, 5)}
    assert [per_seed[s]["config"]["seed"] for s in (3, 5)] == [3, 5]
    assert json.loads((run / "seed-5" / "a" / "eval" / "metrics.json").read_text())["seed"] == 5
    summary = json.loads((run / "results-seeds.json").read_text())
    assert summary == seed_summary(per_seed) and summary["seeds"] == [3, 5]
    acc = [per_seed[s]["results"][0]["accuracy"][str(small_csv)]["accuracy"] for s in (3, 5)]
    assert summary["models"]["A"][f"acc {small_csv}"]["mean"] == pytest.approx(np.mean(acc))
    assert [c["column"] for c in summary["comparisons"]] == [f"acc {small_csv}"]
    assert not (run / "results.json").exists()

    recipe.write_text(recipe.read_text().replace("vars:\n  seed: 0\n", "").replace('"{seed}"', "0"))
    r = cli("recipe", str(recipe), "--seeds", "1,2")
    assert r.returncode == 2 and "needs a `seed` var" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = cli("recipe", str(recipe), "--seeds", "1,x")
    assert r.returncode == 2 and "--seeds 1,x: expected distinct integers" in r.stderr


def test_mar_only_rows_with_different_decodings_say_each_their_own(tmp_path):
    """A decoding sweep: the same model, reasons decoded two ways, no accuracy step; each row names its
    decoding (a caption naming one would be false), and a folder with neither metrics is an error."""
    greedy = {"strategy": "greedy", "repetition_penalty": 1.0, "max_new_tokens": 48}
    penalty = {"strategy": "greedy", "repetition_penalty": 1.2, "max_new_tokens": 48}
    for name, misaligned, decoding in (("a", A_MIS, greedy), ("b", B_MIS, penalty)):
        fake_model(tmp_path / name, A_CORRECT, misaligned, decoding=decoding)
        for f in (tmp_path / name / "eval").iterdir():
            f.unlink()
        (tmp_path / name / "eval").rmdir()
    results, md = _run_table(tmp_path, TABLE, fresh=False)
    header, row_b = md.splitlines()[2], md.splitlines()[5]
    assert "acc" not in header and "MAR dfar:test (n=6)" in header and "MAR decoding" in header
    assert "repetition penalty 1.2" in row_b and "MAR decoding:" not in md
    (tmp_path / "c").mkdir()
    with pytest.raises(UserError, match="neither eval/metrics.json nor eval-reasons"):
        write_table({**TABLE, "rows": [{"name": "C", "folder": str(tmp_path / "c")}]}, {"output": str(tmp_path)},
                    lambda v: v, "r.yaml")
