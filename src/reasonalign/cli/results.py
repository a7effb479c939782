"""The results table of a recipe: one row per model folder, accuracy and MAR per split, side by side.

A recipe's `table:` names its rows (`name`, `folder`); each folder holds what the steps wrote:
eval/metrics.json (accuracy, with `splits`), eval-reasons/metrics.json (MAR; optional) and, for
a trained model, train_summary.json. The table is printed and saved as results.md and results.json
in the recipe's output folder.
"""

import json
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from reasonalign.core.errors import UserError


def _read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def result_row(name: str, folder: Path) -> dict:
    """What the table shows of one model, read from its folder."""
    metrics = _read(folder / "eval" / "metrics.json")
    if metrics is None:
        raise UserError(f"{folder / 'eval' / 'metrics.json'}: missing; the recipe's accuracy step did not run")
    reasons, summary = _read(folder / "eval-reasons" / "metrics.json"), _read(folder / "train_summary.json")
    splits = metrics.get("splits") or {metrics["data"]: metrics}
    return {"model": name, "accuracy": {k: {f: v[f] for f in ("accuracy", "ci95", "n")} for k, v in splits.items()},
            "majority_baseline": {k: v["majority_baseline"] for k, v in splits.items()},
            "threshold_source": metrics["threshold_source"], "accuracy_threshold_0": metrics["accuracy_threshold_0"],
            "mar": None if reasons is None else {
                k: {f: v[f] for f in ("mar", "ci95", "n")} for k, v in (reasons["splits"] or
                                                                         {reasons["data"]: reasons}).items()},
            "mar_criteria": None if reasons is None else reasons["criteria_rates"],
            "judge": None if reasons is None else f"{reasons['judge']} {reasons['judge_version']}",
            "train_seconds": summary["seconds"] if summary else 0.0, "eval_seconds": metrics["seconds"],
            "mar_seconds": reasons["seconds"] if reasons else 0.0,
            "train_tokens": summary["real_tokens"] if summary else 0}


def _columns(results) -> list[str]:
    acc, mar = results[0]["accuracy"], results[0]["mar"] or {}
    return (["model"] + [f"acc {k} (n={v['n']})" for k, v in acc.items()]
            + [f"MAR {k} (n={v['n']})" for k, v in mar.items()] + ["train s", "eval s"])


def _cells(r: dict) -> list[str]:
    """One results row as text: the same cells in the terminal table and in results.md."""
    def cell(value, ci):
        return f"{value:.1%} [{ci[0]:.1%}–{ci[1]:.1%}]"

    return ([r["model"]] + [cell(v["accuracy"], v["ci95"]) for v in r["accuracy"].values()]
            + [cell(v["mar"], v["ci95"]) for v in (r["mar"] or {}).values()]
            + [f"{r['train_seconds']:.0f}", f"{r['eval_seconds'] + r['mar_seconds']:.0f}"])


def _caption(results, caption: str) -> str:
    majority = ", ".join(f"{k} {v:.1%}" for k, v in results[0]["majority_baseline"].items())
    judge = f" Judge: {results[0]['judge']}." if results[0]["judge"] else ""
    return f"Majority class: {majority}. {caption}{judge}"


def write_table(table: dict, values: dict, fill) -> list[dict]:
    """Build, print and save the table described by a recipe's `table:` (with its vars filled in)."""
    results = [result_row(fill(row["name"]), Path(fill(row["folder"]))) for row in table["rows"]]
    title, caption = fill(table.get("title", "results")), fill(table.get("caption", ""))
    out = Path(values["output"])
    view = Table(title=title, caption=_caption(results, caption))
    for col in _columns(results):
        view.add_column(col, justify="left" if col == "model" else "right")
    for r in results:
        view.add_row(*_cells(r))
    Console().print(view)
    columns = _columns(results)
    lines = [f"# {title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in results]
    lines += ["", _caption(results, caption) + f" Written {time.strftime('%Y-%m-%d %H:%M')}."]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    (out / "results.json").write_text(json.dumps({"config": values, "results": results}, indent=2))
    print(f"saved {out / 'results.md'} and {out / 'results.json'}")
    return results
