"""The paper's table from finished runs (`reasonalign reproduce`): one row per method, one column per
(dataset, split, metric).

Each cell of the table is read back from per-item files (report/outcomes.py), not from the runs'
summary numbers. That makes the two things a summary cannot give possible: a mean over training seeds
with a confidence interval over the test items, and paired differences between two methods on the
items both saw. With one seed every number is the run's own.

    rows    [{method, kind, train_rows, folders: {dataset: {seed: folder}}, paper: {column: "89.4 / 82.2"}}]
    columns [{key, name, dataset, run, metric: accuracy|mar|empty|ordering, split, part?}]

`run` is the model folder's sub-folder written by eval (eval, eval-validation, eval-reasons,
eval-ranking); `part` picks one reported split of it (e.g. dfar:test-clean). `ordering` reads
`eval --task ranking`: the share of a group's (better, worse) response pairs the model scores in that
order, each pair an item (so the CI resamples pairs, not groups, and is a little narrow).
"""

import csv
from pathlib import Path

import numpy as np

from reasonalign.core.files import read_jsonl
from reasonalign.core.stats import paired_comparison, seeds_bootstrap_ci, wilson_interval
from reasonalign.judges.judgeset import validated
from reasonalign.report.outcomes import item_outcomes, over_seeds, read_metrics

SOURCE_KINDS = {"eval": "accuracy", "eval-validation": "validation", "eval-reasons": "reasons"}


def _cell(per_seed: dict[int, dict[int, bool]], seed: int) -> dict:
    """Mean over seeds of each seed's share; CI over the test items (`seeds_bootstrap_ci`).

    Where every outcome is the same (a MAR of 100%) a percentile bootstrap collapses to a point,
    claiming a certainty n items cannot give: there the Wilson interval on the distinct items."""
    shares = [float(np.mean(list(o.values()))) for o in per_seed.values()]
    sizes = [len(o) for o in per_seed.values()]
    items = {row for o in per_seed.values() for row in o}
    spread = over_seeds(shares)
    value = spread["mean"]
    constant = len({v for o in per_seed.values() for v in o.values()}) == 1
    return {"value": value, "ci95": wilson_interval(round(value * len(items)), len(items)) if constant
            else seeds_bootstrap_ci(list(per_seed.values()), seed),
            "n": sizes[0] if len(set(sizes)) == 1 else sizes,
            "seeds": list(per_seed), "per_seed": shares, "sd": spread["sd"]}


def build_rows(rows: list[dict], columns: list[dict], seed: int = 0) -> tuple[list[dict], dict]:
    """(the table's rows with their cells, every per-item outcome keyed by (method, column, seed))."""
    table, outcomes = [], {}
    for row in rows:
        cells = {}
        for column in columns:
            per_seed = {}
            for s, folder in row["folders"].get(column["dataset"], {}).items():
                found = item_outcomes(Path(folder), column)
                if found:
                    per_seed[s] = found
                    outcomes[(row["method"], column["key"], s)] = found
            if per_seed:
                first = next(iter(per_seed))
                cells[column["key"]] = {**_cell(per_seed, seed), "paper": (row.get("paper") or {}).get(column["key"]),
                                        "majority": _majority(Path(row["folders"][column["dataset"]][first]),
                                                              column, set(per_seed[first])),
                                        "split": (row.get("splits") or {}).get(column["dataset"], column["split"]),
                                        "judge": _judge(row, column, per_seed) if column["metric"] == "mar" else None}
        table.append({"method": row["method"], "kind": row["kind"], "train_rows": _train_rows(row), "cells": cells})
    return table, outcomes


def _judge(row: dict, column: dict, per_seed: dict) -> str | None:
    folder = Path(row["folders"][column["dataset"]][next(iter(per_seed))]) / column["run"]
    metrics = read_metrics(folder / "metrics.json") or {}
    return f"{metrics.get('judge')} {metrics.get('judge_version', '')}".strip() if metrics.get("judge") else None


def _train_rows(row: dict) -> int | str | None:
    """What the method's DFAR model was trained on (None: untuned): rows (train, baselines) or groups (align)."""
    for folders in row["folders"].values():
        for folder in folders.values():
            if summary := read_metrics(Path(folder) / "train_summary.json"):
                return summary.get("train_rows")
            if summary := read_metrics(Path(folder) / "align_summary.json"):
                return f"{summary['groups']['used']} groups"
    return None


def _majority(folder: Path, column: dict, rows: set) -> float | None:
    """Share of the commoner label among the column's items (accuracy columns of a two-label task only)."""
    if column["metric"] != "accuracy":
        return None
    gold = [r["gold"] for _, r in read_jsonl(folder / column["run"] / "predictions.jsonl") if r["row"] in rows]
    if not gold or any(g not in (0, 1) for g in gold):  # answers (arith, GSM8K) have no classes
        return None
    return max(np.mean(gold), 1 - np.mean(gold))


def compare(pairs: list[list[str]], columns: list[dict], outcomes: dict, seed: int = 0) -> list[dict]:
    """B − A on every column both have, paired on the items both saw within each seed."""
    out = []
    for a, b in pairs:
        for column in columns:
            seeds = [s for (m, c, s) in outcomes if m == a and c == column["key"] and (b, c, s) in outcomes]
            if not seeds:
                continue
            per_seed, diffs = [], []
            for s in seeds:
                left, right = outcomes[(a, column["key"], s)], outcomes[(b, column["key"], s)]
                items = [r for r in left if r in right]
                comp = paired_comparison([left[r] for r in items], [right[r] for r in items], seed=seed)
                per_seed.append({"seed": s, "difference": comp["difference"], "mcnemar_p": comp["mcnemar_p"],
                                 "n": comp["n"]})
                diffs.append({r: float(right[r]) - float(left[r]) for r in items})
            out.append({"a": a, "b": b, "column": column["key"], "seeds": seeds,
                        "difference": float(np.mean([p["difference"] for p in per_seed])),
                        "ci95": seeds_bootstrap_ci(diffs, seed), "n": per_seed[0]["n"], "per_seed": per_seed})
    return out


# ----------------------------------------------------------------------------- writing


def _pct(v: float) -> str:
    return f"{100 * v:.1f}"


def cell_text(cell: dict | None) -> str:
    if cell is None:
        return "—"
    lo, hi = cell["ci95"]
    sd = f" ±{100 * cell['sd']:.1f}" if cell["sd"] is not None else ""
    n = cell["n"] if isinstance(cell["n"], int) else "/".join(map(str, cell["n"]))
    return f"{_pct(cell['value'])} [{_pct(lo)}–{_pct(hi)}]{sd} n={n}"


def markdown(results: dict) -> str:
    """The table and the paired differences as Markdown (what results.md and the README hold)."""
    columns, rows = results["columns"], results["rows"]
    has_paper = [c for c in columns if any((r["cells"].get(c["key"]) or {}).get("paper") for r in rows)]
    head = ["method", "train rows", "seeds"]
    for c in columns:
        head.append(f"{c['name']} ({c['split']})")
        if c in has_paper:
            head.append("paper")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        seeds = sorted({s for cell in r["cells"].values() for s in cell["seeds"]})
        line = [r["method"], str(r["train_rows"] or "—"), ",".join(map(str, seeds)) or "—"]
        for c in columns:
            cell = r["cells"].get(c["key"])
            text = cell_text(cell)
            if cell and cell["split"] != c["split"]:
                text += f" ({cell['split']})"
            line.append(text)
            if c in has_paper:
                line.append((cell or {}).get("paper") or "—")
        lines.append("| " + " | ".join(line) + " |")
    majority = ["majority class", "—", "—"]
    for c in columns:  # from the first row scored on the column's own split (not a held-out one)
        share = next((cell["majority"] for r in rows if (cell := r["cells"].get(c["key"]))
                      and cell.get("majority") is not None and cell["split"] == c["split"]), None)
        majority += [_pct(share) if share is not None else "—"] + (["—"] if c in has_paper else [])
    lines.append("| " + " | ".join(majority) + " |")
    judges = sorted({cell["judge"] for r in rows for cell in r["cells"].values() if cell.get("judge")})
    if judges:
        lines += ["", f"MAR judge: {'; '.join(validated(j) for j in judges)}. Splits: validation = held-out training rows, full = the "
                      f"whole test set, clean = its rows not repeated from training, held-out = a seeded split of "
                      f"the dataset itself."]
    names = {c["key"]: f"{c['name']} ({c['split']})" for c in columns}
    if results["comparisons"]:
        lines += ["", "Paired differences, B − A, in points (mean over the seeds both have; 95% CI over the items, "
                      "resampled jointly across seeds; exact McNemar p per seed):", "",
                  "| B − A | column | difference [95% CI] | n | McNemar p per seed |", "|---|---|---|---|---|"]
        for c in results["comparisons"]:
            lo, hi = c["ci95"]
            ps = ", ".join(f"{p['seed']}: {p['mcnemar_p']:.2g}" for p in c["per_seed"])
            lines.append(f"| {c['b']} − {c['a']} | {names[c['column']]} | {100 * c['difference']:+.1f} "
                         f"[{100 * lo:+.1f}, {100 * hi:+.1f}] | {c['n']} | {ps} |")
    return "\n".join(lines)


def write_csv(results: dict, path: Path) -> None:
    """One line per (method, column): the long form a spreadsheet or pandas reads."""
    fields = ["method", "kind", "train_rows", "column", "dataset", "split", "metric", "value", "ci_low", "ci_high",
              "n", "seeds", "sd", "per_seed", "paper", "judge"]
    columns = {c["key"]: c for c in results["columns"]}
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for r in results["rows"]:
            for key, cell in r["cells"].items():
                writer.writerow({"method": r["method"], "kind": r["kind"], "train_rows": r["train_rows"], "column": key,
                                 "dataset": columns[key]["dataset"], "split": cell["split"],
                                 "metric": columns[key]["metric"], "value": round(cell["value"], 4),
                                 "ci_low": round(cell["ci95"][0], 4), "ci_high": round(cell["ci95"][1], 4),
                                 "n": cell["n"], "seeds": " ".join(map(str, cell["seeds"])),
                                 "sd": None if cell["sd"] is None else round(cell["sd"], 4),
                                 "per_seed": " ".join(f"{v:.4f}" for v in cell["per_seed"]),
                                 "paper": cell["paper"], "judge": cell["judge"]})


def sources(rows: list[dict], extra: list[dict]) -> list[dict]:
    """Every run folder the plots and the report read: the table's runs, training folders, `extra`."""
    out = []
    for row in rows:
        for dataset, folders in row["folders"].items():
            for s, folder in folders.items():
                folder = Path(folder)
                for run, kind in SOURCE_KINDS.items():
                    if (folder / run / "metrics.json").is_file():
                        out.append({"method": row["method"], "seed": s, "dataset": dataset, "kind": kind,
                                    "folder": str(folder / run)})
                if dataset == "dfar" and any((folder / f).is_file() for f in ("train_summary.json",
                                                                             "align_summary.json")):
                    out.append({"method": row["method"], "seed": s, "dataset": dataset, "kind": "train",
                                "folder": str(folder)})
    return out + extra
