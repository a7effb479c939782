"""The reproduce report on a small fake reproduce output: every plot, escaping, and the page in real Chromium.

The fake output follows results.json's schema and the files `eval`, `train` and `align` write; its
statements include HTML that must stay text. The browser tests drive Debian's chromium through
Selenium (`make browser` installs it) and check what a reader sees: images, filters, the count, no
script run from data, no console error, no network.
"""

import json
import math
import random
import time
from pathlib import Path

import pytest

from conftest import headless_chromium
from reasonalign.core.files import write_jsonl
from reasonalign.report.html import write_report
from reasonalign.report.plots import PLOTS, write_plots

SCRIPT = '<script>alert("x")</script>'
IMG = "<img src=x onerror=alert(1)>"
STATEMENTS = [SCRIPT, IMG, "I brought food to the starving dog.", 'He said "go away" & left, it\'s rude.']
GENERATIVE = ["untuned", "L (labels)", "L+R (labels + reasons)", "L+R+AFT"]
BASELINE = "tf-idf logistic regression"
SEEDS = [0, 1]


def _json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _accuracy_folder(folder: Path, method: str, seed: int, rng: random.Random) -> None:
    """metrics.json + predictions.jsonl: log-likelihoods for language models, p_unethical for the baseline."""
    predictions = []
    for row in range(40):
        gold = row % 2
        if method == BASELINE:
            p = None if row == 0 else min(1.0, max(0.0, 0.3 + 0.4 * gold + rng.uniform(-0.3, 0.3)))
            pred = -1 if p is None else int(p > 0.5)
            scores = {"p_unethical": p}
        else:
            margin = (1.0 if gold else -1.0) * rng.uniform(-0.5, 2.0)
            scores = {"logp_ethical": -1.0, "logp_unethical": -1.0 + margin}
            pred = int(margin > 0)
        predictions.append({"row": row, "statement": STATEMENTS[row % 4], "gold": gold, "pred": pred,
                            "correct": pred == gold, **scores})
    write_jsonl(folder / "predictions.jsonl", predictions)
    matrix = [[sum(p["gold"] == g and p["pred"] == q for p in predictions) for q in (0, 1, -1)] for g in (0, 1)]
    accuracy = sum(p["correct"] for p in predictions) / len(predictions)
    metrics = {"accuracy": accuracy, "n": 40, "ci95": [accuracy - 0.1, accuracy + 0.1], "majority_baseline": 0.5,
               "confusion_matrix": {"values": matrix}, "data": "dfar:test",
               "splits": {"dfar:test": {"accuracy": accuracy, "n": 40, "majority_baseline": 0.5},
                          "dfar:test-clean": {"accuracy": accuracy, "n": 25, "majority_baseline": 0.64}}}
    if method == "L+R (labels + reasons)":
        metrics["threshold"] = 0.3
    _json(folder / "metrics.json", metrics)


def _reasons_folder(folder: Path, dataset: str, seed: int) -> list[dict]:
    """judgements.jsonl + generations.jsonl (ETHOS: no gold reasons); returns the rows the report should show."""
    judgements, generations = [], []
    for row, statement in enumerate(STATEMENTS):
        gold = ["unethical", "unethical", "ethical", "unethical"][row]
        verdict = [gold, "ethical", gold, None][(row + seed) % 4]
        aligned = (row + seed) % 3 != 0
        reason = f"Because {statement} is what it is (seed {seed})."
        judgements.append({"row": row, "statement": statement, "gold": gold, "verdict": verdict, "reason": reason,
                           "judges": {"reference": {"aligned": aligned, "rationale": "fake",
                                                    "criteria": [] if aligned else ["verdict_contradicts"]}}})
        gold_reason = None if dataset == "ethos" else f"Gold reason {row}: {statement}"
        generations.append({"row": row, "statement": statement, "gold": gold, "gold_reason": gold_reason,
                            "output": f" {verdict}. {reason}", "verdict": verdict, "reason": reason})
    write_jsonl(folder / "judgements.jsonl", judgements)
    write_jsonl(folder / "generations.jsonl", generations)
    _json(folder / "metrics.json", {"judge": "reference", "mar": 0.5, "n": 4,
                                    "data": "dfar:test" if dataset == "dfar" else "ethos:comments.csv"})
    # DFAR test rows 0 and 1 repeat training statements, 2 and 3 are in the clean split
    return [{"statement": j["statement"], "reason": j["reason"], "gold_reason": g["gold_reason"] or "",
             "right": j["verdict"] == j["gold"], "aligned": j["judges"]["reference"]["aligned"],
             "clean": dataset == "dfar" and j["row"] >= 2}
            for j, g in zip(judgements, generations)]


def _ranking_folder(folder: Path, shift: float, rng: random.Random) -> None:
    groups = [{"id": f"dfar:train:{i}", "row": i, "scores": [rng.gauss(-1.5 + shift, 0.3) for _ in range(3)]
               + [rng.gauss(-2.0, 0.3)], "correct": [True, True, True, False], "pairs": 3,
               "pairs_ordered": 2} for i in range(12)]
    write_jsonl(folder / "group_scores.jsonl", groups)


def build(root: Path, aft: bool = True) -> tuple[dict, dict[str, list[dict]]]:
    """A reproduce output folder: results.json and its sources. Returns results and the reasons per method."""
    rng = random.Random(0)
    methods = GENERATIVE if aft else GENERATIVE[:3]
    sources, reasons = [], {}
    for seed in SEEDS:
        for method in methods + [BASELINE]:
            base = f"cells/dfar/seed-{seed}-1a2b3c4d/{method.split(' ')[0].lower()}"
            _accuracy_folder(root / base / "eval", method, seed, rng)
            sources.append({"method": method, "seed": seed, "dataset": "dfar", "kind": "accuracy",
                            "folder": f"{base}/eval"})
            if method in ("L (labels)", "L+R (labels + reasons)"):
                summary = {"steps": 30, "seconds": 12.0}
                if seed == 0 or method == "L (labels)":  # L+R seed 1 is an "old run" without a loss_log
                    floor = 0.4 + 0.3 * seed + 0.5 * (method == "L (labels)")
                    summary["loss_log"] = [{"step": s, "loss": 2.5 * math.exp(-s / 15) + floor}
                                           for s in range(0, 31, 5)]
                _json(root / base / "train_summary.json", summary)
                sources.append({"method": method, "seed": seed, "dataset": "dfar", "kind": "train", "folder": base})
            if method in methods and (seed == 0 or method == "L+R (labels + reasons)"):
                found = _reasons_folder(root / base / "eval-reasons", "dfar", seed)
                reasons.setdefault(method, []).extend(found)
                sources.append({"method": method, "seed": seed, "dataset": "dfar", "kind": "reasons",
                                "folder": f"{base}/eval-reasons"})
    ethos = "cells/ethos/seed-0-5e6f7a8b/lr/eval-reasons"
    reasons["L+R (labels + reasons)"] += _reasons_folder(root / ethos, "ethos", 0)
    sources.append({"method": "L+R (labels + reasons)", "seed": 0, "dataset": "ethos", "kind": "reasons",
                    "folder": ethos})
    for kind in ("validation", "reasons", "train", "ranking"):  # sources whose files are gone: no crash, no data
        sources.append({"method": "L (labels)", "seed": 1, "dataset": "dfar", "kind": kind, "stage": "after",
                        "folder": f"cells/missing/{kind}"})
    (root / "cells/missing/ranking").mkdir(parents=True)
    (root / "cells/missing/ranking/group_scores.jsonl").write_text("not JSON\n")  # malformed: skipped too
    if aft:
        for stage, shift in (("before", 0.0), ("after", 0.4)):
            folder = f"cells/dfar/seed-0-1a2b3c4d/aft/{stage}-ranking"
            _ranking_folder(root / folder, shift, rng)
            sources.append({"method": "L+R+AFT", "seed": 0, "dataset": "dfar", "kind": "ranking", "stage": stage,
                            "folder": folder})
    columns = [{"key": "dfar_val_acc", "name": "DFAR validation acc", "metric": "accuracy", "dataset": "dfar",
                "split": "validation"},
               {"key": "dfar_test_acc", "name": "DFAR test acc", "metric": "accuracy", "dataset": "dfar",
                "split": "full"},
               {"key": "dfar_clean_acc", "name": "DFAR clean acc", "metric": "accuracy", "dataset": "dfar",
                "split": "clean"},
               {"key": "dfar_test_mar", "name": "DFAR test MAR", "metric": "mar", "dataset": "dfar", "split": "full"},
               {"key": "ethos_mar", "name": "ETHOS MAR", "metric": "mar", "dataset": "ethos", "split": "held-out"}]

    def cell(value, paper=None, judge=None):
        return {"value": value, "ci95": [value - 0.05, value + 0.05], "n": 40, "seeds": SEEDS,
                "per_seed": [value, value], "sd": 0.01, "paper": paper, "judge": judge}

    rows = [{"method": m, "kind": "generative", "train_rows": 300,
             "cells": {"dfar_val_acc": cell(0.65),
                       "dfar_test_acc": cell(0.6 + 0.03 * i, "89.4 / 82.2" if i == 2 else None),
                       "dfar_clean_acc": cell(0.62), "dfar_test_mar": cell(0.9 - 0.2 * i, judge="reference ref1"),
                       **({"ethos_mar": cell(0.4, judge="reference ref1")} if i == 2 else {})}}
            for i, m in enumerate(methods)]
    rows.append({"method": BASELINE, "kind": "baseline", "train_rows": 300,
                 "cells": {"dfar_test_acc": cell(0.66, "71.3"), "dfar_clean_acc": {**cell(0.6), "value": None}}})
    results = {
        "title": "Reproduce <b>test</b>", "config": "configs/reproduce-cpu.yaml", "seeds": SEEDS,
        "written": "2026-11-24 02:10", "seconds": 5400.0,
        "machine": {"cpu": "AMD EPYC <fake>", "cores": 2, "precision": "bf16"},
        "paper": {"source": "Kabir et al. 2024", "models": ["Llama-2-7B", "Mistral-7B"]},
        "columns": columns, "rows": rows,
        "comparisons": [{"a": "L (labels)", "b": "L+R (labels + reasons)", "column": "dfar_test_acc",
                         "difference": 0.05, "ci95": [0.01, 0.09], "n": 40,
                         "per_seed": [{"seed": s, "difference": 0.05, "mcnemar_p": 0.01, "n": 40} for s in SEEDS]}],
        "sources": sources,
        "cells": [{"name": "dfar", "seed": s, "key": "1a2b3c4d", "folder": f"cells/dfar/seed-{s}-1a2b3c4d",
                   "seconds": 400.1, "status": "ran" if s == 0 else "reused"} for s in SEEDS],
    }
    _json(root / "results.json", results)
    return results, reasons


def render(root: Path, aft: bool = True):
    results, reasons = build(root, aft)
    plots = write_plots(results, root, root / "plots")
    return plots, write_report(results, root, plots), reasons


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("reproduce")
    return render(root)


def test_every_plot_is_written_as_png_and_svg(report):
    plots, path, _ = report
    assert list(plots) == list(PLOTS)
    for name, files in plots.items():
        png, svg = (path.parent / f for f in files)
        assert files == [f"plots/{name}.png", f"plots/{name}.svg"]
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000, name
        assert "<svg" in svg.read_text()[:2000], name


def test_plots_without_data_are_skipped_and_the_report_says_so(tmp_path):
    plots, path, _ = render(tmp_path, aft=False)
    assert "aft_scores" not in plots and "accuracy" in plots
    html = path.read_text()
    assert "Not drawn" in html and PLOTS["aft_scores"][1] in html
    assert write_plots({}, tmp_path, tmp_path / "empty") == {}
    assert "No generated reasons" in write_report({}, tmp_path / "empty", {}).read_text()


def test_data_is_escaped_and_the_page_is_self_contained(report):
    html = report[1].read_text()
    assert "&lt;script&gt;alert(" in html and "<script>alert" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "<img src=x" not in html
    assert "Reproduce &lt;b&gt;test&lt;/b&gt;" in html and "AMD EPYC &lt;fake&gt;" in html
    assert html.count("<script") == 1 and "innerHTML" not in html
    assert "http://" not in html and "https://" not in html and "<link" not in html
    assert html.count('src="data:image/png;base64,') == len(PLOTS)


# --- in a real browser ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser(report):
    started = time.monotonic()
    driver = headless_chromium(1400, 1000)
    driver.get(report[1].resolve().as_uri())
    print(f"chromium started and loaded the report in {time.monotonic() - started:.1f} s")
    yield driver
    driver.quit()


def _visible_rows(driver) -> list:
    from selenium.webdriver.common.by import By

    return [r for r in driver.find_elements(By.CSS_SELECTOR, "#reasons-table tbody tr") if r.is_displayed()]


def _choose(driver, name: str, value: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.CSS_SELECTOR, f'select[data-filter="{name}"]')).select_by_value(value)


def _count(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, "reasons-count").text


def test_page_renders_offline_without_errors(browser, report):
    from selenium.webdriver.common.by import By

    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == []
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    assert browser.execute_script("return Array.from(document.images).length") == len(PLOTS)
    assert browser.execute_script("return Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
    table = browser.find_element(By.ID, "results-table")
    assert table.is_displayed() and len(table.find_elements(By.CSS_SELECTOR, "tbody tr")) == len(GENERATIVE) + 1
    assert "+5.0" in browser.find_element(By.ID, "differences-table").text


def test_reason_filters_search_and_count(browser, report):
    from selenium.webdriver.common.by import By

    reasons = report[2]
    total = sum(map(len, reasons.values()))
    assert len(_visible_rows(browser)) == total and _count(browser) == f"{total} of {total} shown"

    _choose(browser, "method", "L+R (labels + reasons)")
    rows = _visible_rows(browser)
    assert len(rows) == len(reasons["L+R (labels + reasons)"]) < total
    assert {r.get_attribute("data-method") for r in rows} == {"L+R (labels + reasons)"}
    assert _count(browser) == f"{len(rows)} of {total} shown"

    _choose(browser, "dataset", "ethos")
    assert len(_visible_rows(browser)) == len(STATEMENTS)
    assert all(r.find_element(By.CSS_SELECTOR, ".gold-reason").text == "—" for r in _visible_rows(browser))
    _choose(browser, "dataset", "")

    everyone = [r for rs in reasons.values() for r in rs]
    browser.find_element(By.ID, "reasons-reset").click()
    _choose(browser, "split", "clean")  # DFAR test's clean part: rows not repeated from training
    assert 0 < len(_visible_rows(browser)) == sum(r["clean"] for r in everyone) < total
    _choose(browser, "split", "")
    for value, keep in (("right", lambda r: r["right"]), ("wrong", lambda r: not r["right"])):
        _choose(browser, "correct", value)
        assert len(_visible_rows(browser)) == sum(map(keep, everyone)), value
    _choose(browser, "correct", "")
    for value, keep in (("aligned", lambda r: r["aligned"]), ("misaligned", lambda r: not r["aligned"])):
        _choose(browser, "aligned", value)
        assert len(_visible_rows(browser)) == sum(map(keep, everyone)), value
        assert _count(browser) == f"{sum(map(keep, everyone))} of {total} shown"
    _choose(browser, "aligned", "")

    search = browser.find_element(By.ID, "reasons-search")
    search.send_keys("STARVING")
    expected = sum("starving" in (r["statement"] + r["reason"] + r["gold_reason"]).lower() for r in everyone)
    assert 0 < len(_visible_rows(browser)) == expected < total
    assert _count(browser) == f"{expected} of {total} shown"
    browser.find_element(By.ID, "reasons-reset").click()
    assert len(_visible_rows(browser)) == total


def test_html_in_statements_shows_as_text_and_runs_nothing(browser):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    browser.find_element(By.ID, "reasons-reset").click()
    statements = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "#reasons-table td.statement")]
    assert SCRIPT in statements and IMG in statements
    assert browser.execute_script("return document.querySelectorAll('#reasons-table img, #reasons-table script')"
                                  ".length") == 0
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
