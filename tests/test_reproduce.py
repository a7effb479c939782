"""`reasonalign reproduce`: cells keyed by their config hash, resumable after a kill; the table read back
from per-item files (mean over seeds, CI over items, paired differences); the README block it writes."""

import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest
import yaml
from conftest import COMMAND, SRC, cli


def tiny_config(tmp_path, tiny_model) -> str:
    """The shape of configs/reproduce-cpu.yaml on a tiny model: the demo (16 training, 16 test rows) for one seed,
    a logistic-regression baseline for two."""
    config = {
        "title": "tiny reproduce", "output": str(tmp_path / "out"), "seeds": [0, 1], "vars": {"model": tiny_model},
        "cells": {
            "baselines": {"command": "baselines", "options": {"data": "dfar", "train_rows": 60, "models": "logreg"}},
            "dfar": {"recipe": "demo", "seeds": [0],
                     "set": {"model": "{model}", "train_rows": 16, "test_rows": 16, "calibration_rows": 8,
                             "mar_rows": 8, "mar_max_new_tokens": 6, "mar_min_new_tokens": 2}},
        },
        "columns": [{"key": "test", "name": "DFAR acc", "dataset": "dfar", "run": "eval", "metric": "accuracy",
                     "split": "full"},
                    {"key": "clean", "name": "DFAR acc", "dataset": "dfar", "run": "eval", "part": "dfar:test-clean",
                     "metric": "accuracy", "split": "clean"},
                    {"key": "mar", "name": "DFAR MAR", "dataset": "dfar", "run": "eval-reasons", "metric": "mar",
                     "split": "full"}],
        "rows": [{"method": "LR", "kind": "baseline", "folders": {"dfar": "{cell:baselines}/logreg"},
                  "paper": {"test": "67.8"}},
                 {"method": "L", "kind": "generative", "folders": {"dfar": "{cell:dfar}/l"}},
                 {"method": "L+R", "kind": "generative", "folders": {"dfar": "{cell:dfar}/lr"},
                  "paper": {"test": "89.4 / 82.2", "mar": "9.4 / 12.2"}}],
        "compare": [["L", "L+R"], ["LR", "L+R"]],
        "extra_sources": [],
        "caption": "tiny",
    }
    path = tmp_path / "reproduce.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return str(path)


def _popen(*args):
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.Popen([*COMMAND, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)


def test_reproduce_resumes_after_a_kill_and_a_second_run_recomputes_nothing(tiny_model, tmp_path):
    config = tiny_config(tmp_path, tiny_model)
    out = tmp_path / "out"
    # 1. killed inside the demo cell, after its first finished step
    proc = _popen("reproduce", "--config", config)
    deadline = time.time() + 400
    while not list(out.glob("cells/dfar/seed-0-*/recipe_steps.json")) and time.time() < deadline:
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    # cells run seed by seed: baselines seed 0 finished, then the demo (seed 0) was killed
    assert len(list(out.glob("cells/baselines/seed-0-*/cell.json"))) == 1
    assert not list(out.glob("cells/dfar/*/cell.json"))
    finished = json.loads(next(out.glob("cells/dfar/seed-0-*/recipe_steps.json")).read_text())
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("cells/baselines/**/*") if p.is_file()}

    # 2. the rerun continues: finished cells reused, the demo's finished steps skipped
    r = cli("reproduce", "--config", config)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("finished earlier, reused") == 1
    assert r.stdout.count("already done (--resume") >= len(finished)
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())

    results = json.loads((out / "results.json").read_text())
    rows = {r["method"]: r for r in results["rows"]}
    assert rows["LR"]["cells"]["test"]["seeds"] == [0, 1] and rows["LR"]["cells"]["test"]["n"] == 500
    assert rows["LR"]["cells"]["clean"]["n"] == 311 and rows["LR"]["cells"]["test"]["paper"] == "67.8"
    assert rows["L+R"]["cells"]["test"]["n"] == 16 and rows["L+R"]["cells"]["mar"]["n"] == 8
    assert rows["L+R"]["cells"]["mar"]["judge"].startswith("reference ref4-")
    comp = {(c["a"], c["b"], c["column"]): c for c in results["comparisons"]}
    assert comp[("LR", "L+R", "test")]["n"] == 16  # paired on the 16 rows both saw, seed 0 only
    assert comp[("L", "L+R", "mar")]["per_seed"][0]["n"] == 8
    for f in ("results.md", "results.csv", "report.html"):
        assert (out / f).stat().st_size > 0
    assert list((out / "plots").glob("*.png")) and list((out / "plots").glob("*.svg"))
    md = (out / "results.md").read_text()
    assert "| L+R | 16 | 0 |" in md and "89.4 / 82.2" in md and "| L+R − L |" in md
    assert "MAR judge: reference ref4-" in md

    # 3. a second run recomputes nothing
    r = cli("reproduce", "--config", config)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("finished earlier, reused") == 3 and "running ->" not in r.stdout
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())


def test_a_changed_setting_is_a_new_cell(tiny_model, tmp_path):
    config = tiny_config(tmp_path, tiny_model)
    before = cli("reproduce", "--config", config, "--dry-run")
    data = yaml.safe_load(open(config))
    data["cells"]["baselines"]["options"]["train_rows"] = 80
    open(config, "w").write(yaml.safe_dump(data))
    after = cli("reproduce", "--config", config, "--dry-run")
    assert before.returncode == after.returncode == 0, before.stderr + after.stderr
    keys = [{line.split()[0] + line.split()[2]: line.split()[3] for line in r.stdout.splitlines()} for r in (before, after)]
    assert keys[0]["baselines0"] != keys[1]["baselines0"] and keys[0]["dfar0"] == keys[1]["dfar0"]
    assert "to run" in after.stdout and not (tmp_path / "out").exists()


@pytest.mark.parametrize("change, problem", [
    (lambda c: c.update(extra=1), "unknown key(s) extra"),
    (lambda c: c["cells"]["baselines"]["options"].update(train_rows="{cell:dfar}"), "reads cell dfar, which is not listed before it"),
    (lambda c: c["cells"]["baselines"]["options"].update(no_such_option=1), "unknown option(s) --no-such-option"),
    (lambda c: c.update(files=["/nonexistent/ethos.csv"]), "/nonexistent/ethos.csv not found"),
])
def test_bad_configs_are_one_line_errors_and_write_nothing(tiny_model, tmp_path, change, problem):
    config = tiny_config(tmp_path, tiny_model)
    data = yaml.safe_load(open(config))
    change(data)
    open(config, "w").write(yaml.safe_dump(data))
    r = cli("reproduce", "--config", config)
    assert r.returncode == 2 and problem in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "out").exists()


def _eval_folder(folder, correct: dict, data="dfar:validation"):
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"data": data}))
    (folder / "predictions.jsonl").write_text("".join(json.dumps({"row": r, "gold": int(r == 1), "correct": c}) + "\n"
                                                      for r, c in correct.items()))


def test_table_cells_are_means_over_seeds_and_differences_are_paired(tmp_path):
    from reasonalign.report.table import build_rows, compare

    a = {0: {1: True, 2: True, 3: False, 4: False}, 1: {1: True, 2: False, 3: False, 4: False}}
    b = {0: {1: True, 2: True, 3: True, 4: False}, 1: {1: True, 2: True, 3: True, 4: True}}
    rows = []
    for name, outcomes in (("A", a), ("B", b)):
        for seed, correct in outcomes.items():
            _eval_folder(tmp_path / name / str(seed) / "eval", correct)
        rows.append({"method": name, "kind": "generative",
                     "folders": {"dfar": {s: str(tmp_path / name / str(s)) for s in outcomes}}})
    columns = [{"key": "acc", "name": "acc", "dataset": "dfar", "run": "eval", "metric": "accuracy", "split": "full"}]
    table, outcomes = build_rows(rows, columns)
    cell = table[0]["cells"]["acc"]
    assert cell["value"] == pytest.approx((0.5 + 0.25) / 2) and cell["per_seed"] == [0.5, 0.25]
    assert cell["sd"] == pytest.approx(np.std([0.5, 0.25], ddof=1)) and cell["n"] == 4 and cell["seeds"] == [0, 1]
    assert cell["ci95"][0] <= cell["value"] <= cell["ci95"][1]
    assert cell["majority"] == pytest.approx(0.75)  # gold: 1 unethical of 4
    (diff,) = compare([["A", "B"]], columns, outcomes)
    # seed 0: B right on item 3 only -> +0.25; seed 1: B right on 2, 3, 4 -> +0.75
    assert diff["difference"] == pytest.approx(0.5) and [p["difference"] for p in diff["per_seed"]] == [0.25, 0.75]
    assert diff["per_seed"][1]["mcnemar_p"] == pytest.approx(0.25)  # 3 discordant items, all for B: 2 * 0.5**3
    assert diff["ci95"][0] <= 0.5 <= diff["ci95"][1]


def test_seeds_bootstrap_resamples_shared_items_jointly():
    from reasonalign.core.stats import bootstrap_ci, seeds_bootstrap_ci

    outcomes = {i: float(i % 3 == 0) for i in range(90)}
    # the same items seen by three seeds are one sample, not three: the same interval as one seed
    assert seeds_bootstrap_ci([outcomes] * 3) == pytest.approx(seeds_bootstrap_ci([outcomes]))
    assert seeds_bootstrap_ci([outcomes]) == pytest.approx(bootstrap_ci(list(outcomes.values())), abs=0.02)
    # disjoint items (a seeded subset per seed) are more evidence: a narrower interval
    other = {i + 1000: v for i, v in outcomes.items()}
    wide, narrow = seeds_bootstrap_ci([outcomes]), seeds_bootstrap_ci([outcomes, other])
    assert narrow[1] - narrow[0] < wide[1] - wide[0]


def test_readme_block_is_replaced_and_a_missing_block_is_an_error(tmp_path):
    from reasonalign.pipeline.reproduce import markers, update_readme
    from reasonalign.core.errors import UserError

    README_BEGIN, README_END = markers()
    quick_begin, quick_end = markers("reproduce-quick")
    readme = tmp_path / "README.md"
    readme.write_text(f"{README_BEGIN}\nfull\n{README_END}\n{quick_begin}\nquick\n{quick_end}\n")
    update_readme(readme, "new quick", "reproduce-quick")  # each config writes its own block only
    assert "full" in readme.read_text() and "new quick" in readme.read_text() and "\nquick\n" not in readme.read_text()

    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n{README_BEGIN}\nold table\n{README_END}\nafter\n")
    update_readme(readme, "new table")
    text = readme.read_text()
    assert "new table" in text and "old table" not in text and text.startswith("# x") and text.endswith("after\n")
    update_readme(readme, "newer")
    assert readme.read_text().count(README_BEGIN) == 1 and "new table" not in readme.read_text()
    readme.write_text("no block")
    with pytest.raises(UserError, match="no <!-- reproduce:begin -->"):
        update_readme(readme, "x")


def test_shipped_reproduce_configs_plan_every_cell(tmp_path):
    """configs/reproduce-*.yaml: every cell's recipe, var and option exists (a dry run plans them all)."""
    from pathlib import Path

    from conftest import write_rows

    ethos = write_rows(tmp_path / "ethos.csv")  # the real ETHOS copy is GPL and not in the repository
    for config in sorted(Path(__file__).parents[1].glob("configs/reproduce-*.yaml")):
        ethos_var = ["--set", f"ethos={ethos}"] if "\n  ethos:" in config.read_text() else []
        r = cli("reproduce", "--config", str(config), "--dry-run", *ethos_var, "--output", str(tmp_path / config.stem))
        assert r.returncode == 0, (config, r.stderr)
        cells = [line for line in r.stdout.splitlines() if ": to run -> " in line]
        assert len(cells) >= 6, r.stdout
    assert not any((tmp_path / c.stem).exists() for c in Path(__file__).parents[1].glob("configs/reproduce-*.yaml"))


def test_a_cell_where_every_outcome_is_the_same_gets_a_wilson_interval(tmp_path):
    """A percentile bootstrap of all-ones is [1, 1]: 96 items cannot show that; Wilson (k=n) can."""
    from reasonalign.core.stats import wilson_interval
    from reasonalign.report.table import build_rows

    _eval_folder(tmp_path / "m" / "eval", {r: True for r in range(96)})
    columns = [{"key": "acc", "name": "acc", "dataset": "dfar", "run": "eval", "metric": "accuracy", "split": "full"}]
    table, _ = build_rows([{"method": "M", "kind": "baseline", "folders": {"dfar": {0: str(tmp_path / "m")}}}], columns)
    cell = table[0]["cells"]["acc"]
    assert cell["value"] == 1.0 and cell["ci95"] == wilson_interval(96, 96) and cell["ci95"][0] < 0.97


def test_answer_columns_have_no_majority_and_ordering_counts_every_better_worse_pair(tmp_path):
    """Arith/GSM8K golds are numbers (no majority class); an `ordering` column reads eval --task ranking's
    group_scores.jsonl: one item per (better, worse) pair, right when the better one scores higher."""
    from reasonalign.report.table import build_rows, compare

    for name, scores in (("VFT", [[-1.0, -2.0, -0.5], [-3.0, -1.0]]), ("AFT", [[-0.5, -2.0, -1.0], [-1.0, -3.0]])):
        run = tmp_path / name / "eval-answers"
        run.mkdir(parents=True)
        (run / "metrics.json").write_text(json.dumps({"data": "arith6:test"}))
        (run / "predictions.jsonl").write_text("".join(json.dumps({"row": r, "gold": str(7 * r), "correct": r % 2 == 0})
                                                       + "\n" for r in (1, 2, 3)))
        ranking = tmp_path / name / "eval-ranking"
        ranking.mkdir()
        (ranking / "metrics.json").write_text(json.dumps({"pair_accuracy": None}))
        groups = [{"id": "arith6:validation:5", "scores": scores[0], "ranks": [0, 1, 1]},  # 0 beats 1 and 2
                  {"id": "arith6:validation:9", "scores": scores[1], "ranks": [0, 1]}]  # 0 beats 1
        (ranking / "group_scores.jsonl").write_text("".join(json.dumps(g) + "\n" for g in groups))
    columns = [{"key": "acc", "name": "acc", "dataset": "a", "run": "eval-answers", "metric": "accuracy", "split": "full"},
               {"key": "ord", "name": "ord", "dataset": "a", "run": "eval-ranking", "metric": "ordering",
                "split": "validation"}]
    rows = [{"method": m, "kind": "generative", "folders": {"a": {0: str(tmp_path / m)}}} for m in ("VFT", "AFT")]
    table, outcomes = build_rows(rows, columns)
    assert table[0]["cells"]["acc"]["value"] == pytest.approx(1 / 3) and table[0]["cells"]["acc"]["majority"] is None
    # VFT: -1 > -2 yes, -1 > -0.5 no, -3 > -1 no -> 1 of 3; AFT: all three pairs in order
    assert table[0]["cells"]["ord"]["value"] == pytest.approx(1 / 3) and table[0]["cells"]["ord"]["n"] == 3
    assert table[1]["cells"]["ord"]["value"] == 1.0
    diff = next(d for d in compare([["VFT", "AFT"]], columns, outcomes) if d["column"] == "ord")
    assert diff["difference"] == pytest.approx(2 / 3) and diff["n"] == 3
