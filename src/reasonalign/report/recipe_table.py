"""The results table of a recipe (and of the demo): one row per model folder, accuracy and MAR per split.

A recipe's `table:` names its rows (`name`, `folder`); each folder holds what the steps wrote:
eval/metrics.json (accuracy, with `splits`), eval-validation/metrics.json (accuracy on held-out
DFAR train rows, the in-distribution check; optional), eval-reasons/metrics.json (MAR; optional)
and, for a trained model, train_summary.json. `compare: [[A, B], ...]` adds paired differences
B − A on the items both rows saw (read per item by report/outcomes.py, as reproduce's table is). The
tables are printed and saved as results.md and results.json in the recipe's output folder;
`write_seed_table` summarises one such run per seed.
"""

import json
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from reasonalign.core.errors import UserError
from reasonalign.core.files import write_text
from reasonalign.judges.judgeset import validated
from reasonalign.report.outcomes import by_split, over_seeds, read_metrics, read_outcomes

# validation first: the in-distribution check reads before the test columns it qualifies
ACCURACY_RUNS = ("eval-validation", "eval")


def _splits(metrics: dict) -> dict:
    return metrics.get("splits") or {metrics["data"]: metrics}


def result_row(name: str, folder: Path) -> dict:
    """What the table shows of one model, read from its folder."""
    metrics = read_metrics(folder / "eval" / "metrics.json")
    validation = read_metrics(folder / "eval-validation" / "metrics.json")
    reasons, summary = read_metrics(folder / "eval-reasons" / "metrics.json"), read_metrics(folder / "train_summary.json")
    if metrics is None and reasons is None:
        raise UserError(f"{folder}: neither eval/metrics.json nor eval-reasons/metrics.json; the recipe's "
                        f"accuracy or MAR step did not run")
    metrics = metrics or {}  # a MAR-only row (e.g. a decoding sweep) shows no accuracy
    splits = {**(_splits(validation) if validation else {}), **(_splits(metrics) if metrics else {})}
    return {"model": name, "validation_splits": list(_splits(validation)) if validation else [],
            "accuracy": {k: {f: v[f] for f in ("accuracy", "ci95", "n")} for k, v in splits.items()},
            "majority_baseline": {k: v["majority_baseline"] for k, v in splits.items()},
            "threshold_source": metrics.get("threshold_source"),
            "accuracy_threshold_0": metrics.get("accuracy_threshold_0"),
            "mar": None if reasons is None else {
                k: {f: v[f] for f in ("mar", "ci95", "n")} for k, v in (reasons["splits"] or
                                                                         {reasons["data"]: reasons}).items()},
            "mar_criteria": None if reasons is None else reasons["criteria_rates"],
            "judge": None if reasons is None else f"{reasons['judge']} {reasons['judge_version']}",
            "mar_decoding": reasons.get("decoding") if reasons else None, "precision": metrics.get("precision"),
            "train_seconds": summary["seconds"] if summary else 0.0,
            "eval_seconds": metrics.get("seconds", 0.0) + (validation["seconds"] if validation else 0.0),
            "mar_seconds": reasons["seconds"] if reasons else 0.0,
            "train_tokens": summary["real_tokens"] if summary else 0}


def _keys(results, field: str) -> list[str]:
    """Splits in the order rows show them, validation first even when the first row lacks it (an old run)."""
    first = [k for r in results for k in r["validation_splits"]] if field == "accuracy" else []
    return list(dict.fromkeys(first + [k for r in results for k in (r[field] or {})]))


def _decodings_differ(results) -> bool:
    """Whether rows generated their reasons differently (a decoding sweep): then each row says how."""
    return len({json.dumps(r["mar_decoding"], sort_keys=True) for r in results if r.get("mar_decoding")}) > 1


def _columns(results) -> list[str]:
    def n(field, k):
        return next(r[field][k]["n"] for r in results if k in (r[field] or {}))

    return (["model"] + [f"acc {k} (n={n('accuracy', k)})" for k in _keys(results, "accuracy")]
            + [f"MAR {k} (n={n('mar', k)})" for k in _keys(results, "mar")]
            + (["MAR decoding"] if _decodings_differ(results) else []) + ["train s", "eval s"])


def _cells(r: dict, acc: list[str], mar: list[str], decoding: bool = False) -> list[str]:
    """One results row as text: the same cells in the terminal table and in results.md."""
    def cell(v, key):
        return "—" if v is None else f"{v[key]:.1%} [{v['ci95'][0]:.1%}–{v['ci95'][1]:.1%}]"

    return ([r["model"]] + [cell(r["accuracy"].get(k), "accuracy") for k in acc]
            + [cell((r["mar"] or {}).get(k), "mar") for k in mar]
            + ([_decoding(r["mar_decoding"]) if r.get("mar_decoding") else "—"] if decoding else [])
            + [f"{r['train_seconds']:.0f}", f"{r['eval_seconds'] + r['mar_seconds']:.0f}"])


def _setting(key: str, value) -> str:
    return str(value) if key == "strategy" else f"{key.replace('_', ' ')} {value}"


def _decoding(d: dict) -> str:
    return ", ".join(_setting(k, v) for k, v in d.items() if v is not None)


def _caption(results, caption: str) -> str:
    baselines = {k: v for r in results for k, v in r["majority_baseline"].items()}
    majority = ", ".join(f"{k} {v:.1%}" for k, v in baselines.items()) or "—"
    judge = f" Judge: {validated(results[0]['judge'])}." if results[0]["judge"] else ""
    decoding = next((r["mar_decoding"] for r in results if r.get("mar_decoding")), None)
    if decoding and not _decodings_differ(results):  # else each row says its own
        judge += " MAR decoding: " + _decoding(decoding) + "."
    precisions = ", ".join(dict.fromkeys(r["precision"] for r in results if r.get("precision")))
    return f"Majority class: {majority}. {caption}{judge}" + (f" Precision: {precisions}." if precisions else "")


def _show(title: str, columns: list[str], rows: list[list[str]], caption: str) -> list[str]:
    """Print a table in the terminal; return it as markdown lines (the same cells)."""
    view = Table(title=title, caption=caption)
    for i, col in enumerate(columns):
        view.add_column(col, justify="left" if i == 0 else "right")
    for row in rows:
        view.add_row(*row)
    Console().print(view)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def compare_pairs(table: dict, fill, source: str) -> list[tuple[str, str]]:
    """The table's `compare:` pairs, checked against its row names (called before any step runs too)."""
    rows = [fill(row["name"]) for row in table["rows"]]
    pairs = table.get("compare") or []
    if not isinstance(pairs, list):
        raise UserError(f"{source}: table: compare: expected a list of [A, B] row-name pairs")
    out = []
    for pair in pairs:
        if not isinstance(pair, list) or len(pair) != 2:
            raise UserError(f"{source}: table: compare: {pair!r} is not an [A, B] pair of row names")
        a, b = fill(str(pair[0])), fill(str(pair[1]))
        for name in (a, b):
            if name not in rows:
                raise UserError(f"{source}: table: compare: no row named {name!r} (rows: {', '.join(rows)})")
        out.append((a, b))
    return out


def outcomes(folder: Path) -> dict[str, dict[int, bool]]:
    """Per-item outcomes of one model by table column, keyed by data row:
    "acc SPLIT" -> correct, "MAR SPLIT" -> misaligned by the headline judge."""
    out = {}
    for run in ACCURACY_RUNS:
        if found := read_outcomes(folder / run, "accuracy"):
            out.update({f"acc {split}": o for split, o in by_split(*found).items()})
    found = read_outcomes(folder / "eval-reasons", "mar")
    # a vote's combined verdicts are not stored per item: no MAR column unless the judge rated every item
    if found and found[0].get("judge") and len(found[2]) == len(found[1]):
        out.update({f"MAR {split}": o for split, o in by_split(*found).items()})
    return out


def comparisons(pairs, folders: dict[str, Path], seed: int = 0) -> list[dict]:
    """`paired_comparison` of B against A on every column both have, on the rows both saw."""
    from reasonalign.core.stats import paired_comparison  # scipy: only when a table compares

    seen = {name: outcomes(folders[name]) for pair in pairs for name in pair}
    out = []
    for a, b in pairs:
        for column, left in seen[a].items():
            right = seen[b].get(column)
            if right is None:
                continue
            rows = [row for row in left if row in right]
            out.append({"model_a": a, "model_b": b, "column": column, **paired_comparison(
                [left[r] for r in rows], [right[r] for r in rows], seed=seed)})
    return out


def _diff_cell(c: dict) -> str:
    lo, hi = c["ci95"]
    return f"{c['difference']:+.1%} [{lo:+.1%}, {hi:+.1%}] p={c['mcnemar_p']:.3g} n={c['n']}"


def _comparison_table(comps: list[dict], seed: int) -> list[str]:
    columns = list(dict.fromkeys(c["column"] for c in comps))
    pairs = list(dict.fromkeys((c["model_a"], c["model_b"]) for c in comps))
    cells = {(c["model_a"], c["model_b"], c["column"]): _diff_cell(c) for c in comps}
    rows = [[f"{b} − {a}"] + [cells.get((a, b, col), "—") for col in columns] for a, b in pairs]
    caption = (f"Paired bootstrap 95% CI (2000 resamples of items, seed {seed}); exact McNemar p on the "
               f"discordant items; n = items both models saw. MAR: lower is better.")
    title = "paired differences (B − A)"
    return ["", f"## {title}", ""] + _show(title, ["B − A"] + columns, rows, caption) + ["", caption]


def write_table(table: dict, values: dict, fill, source: str = "recipe") -> list[dict]:
    """Build, print and save the table described by a recipe's `table:` (with its vars filled in)."""
    pairs = compare_pairs(table, fill, source)
    folders = {fill(row["name"]): Path(fill(row["folder"])) for row in table["rows"]}
    results = [result_row(name, folder) for name, folder in folders.items()]
    title, caption = fill(table.get("title", "results")), _caption(results, fill(table.get("caption", "")))
    out = Path(values["output"])
    acc, mar = _keys(results, "accuracy"), _keys(results, "mar")
    rows = [_cells(r, acc, mar, _decodings_differ(results)) for r in results]
    lines = [f"# {title}", ""] + _show(title, _columns(results), rows, caption)
    lines += ["", caption + f" Written {time.strftime('%Y-%m-%d %H:%M')}."]
    seed = int(values.get("seed") or 0)
    comps = comparisons(pairs, folders, seed) if pairs else []
    if comps:
        lines += _comparison_table(comps, seed)
    write_text(out / "results.md", "\n".join(lines) + "\n")
    write_text(out / "results.json", json.dumps({"config": values, "results": results, "comparisons": comps},
                                                 indent=2))
    print(f"saved {out / 'results.md'} and {out / 'results.json'}")
    return results


def seed_summary(per_seed: dict[int, dict]) -> dict:
    """Every table cell and comparison over seeds, from each seed's results.json.

    One seed's CI says how much the test items move a number; the spread over seeds says how much
    the training run does, which a single seed cannot show."""
    cells: dict[str, dict[str, list]] = {}
    comps: dict[tuple, list] = {}
    for seed, run in per_seed.items():
        for r in run["results"]:
            row = cells.setdefault(r["model"], {})
            for k, v in r["accuracy"].items():
                row.setdefault(f"acc {k}", []).append(v["accuracy"])
            for k, v in (r["mar"] or {}).items():
                if v["mar"] is not None:
                    row.setdefault(f"MAR {k}", []).append(v["mar"])
        for c in run.get("comparisons", []):
            comps.setdefault((c["model_a"], c["model_b"], c["column"]), []).append((seed, c))
    return {"seeds": list(per_seed),
            "models": {m: {col: over_seeds(v) for col, v in cols.items()} for m, cols in cells.items()},
            "comparisons": [{"model_a": a, "model_b": b, "column": col, "seeds": [s for s, _ in cs],
                             "mean_difference": float(np.mean([c["difference"] for _, c in cs])),
                             "differences": [c["difference"] for _, c in cs],
                             "mcnemar_p": [c["mcnemar_p"] for _, c in cs]}
                            for (a, b, col), cs in comps.items()]}


def write_seed_table(output: Path, seeds: list[int]) -> dict:
    """Read {output}/seed-S/results.json for every seed; print and save results-seeds.md / .json."""
    output = Path(output)
    summary = seed_summary({s: json.loads((output / f"seed-{s}" / "results.json").read_text()) for s in seeds})
    columns = list(dict.fromkeys(col for cols in summary["models"].values() for col in cols))

    def cell(s):
        return "—" if s is None else f"{s['mean']:.1%} ± {'—' if s['sd'] is None else format(s['sd'], '.1%')} " \
                                     f"({s['min']:.1%}–{s['max']:.1%})"

    title = f"results over {len(seeds)} seeds ({', '.join(map(str, seeds))})"
    caption = "mean ± sample SD (min–max) over seeds; each seed's run and table is in seed-S/."
    rows = [[m] + [cell(cols.get(c)) for c in columns] for m, cols in summary["models"].items()]
    lines = [f"# {title}", ""] + _show(title, ["model"] + columns, rows, caption) + ["", caption]
    if summary["comparisons"]:
        head = ["B − A", "column", "mean difference", "per seed: difference (McNemar p)"]
        lines += ["", "## paired differences (B − A) over seeds", "", "| " + " | ".join(head) + " |",
                  "|" + "---|" * len(head)]
        lines += [f"| {c['model_b']} − {c['model_a']} | {c['column']} | {c['mean_difference']:+.1%} | "
                  + ", ".join(f"seed {s}: {d:+.1%} (p={p:.3g})"
                              for s, d, p in zip(c["seeds"], c["differences"], c["mcnemar_p"])) + " |"
                  for c in summary["comparisons"]]
    write_text(output / "results-seeds.md", "\n".join(lines) + "\n")
    write_text(output / "results-seeds.json", json.dumps(summary, indent=2))
    print(f"saved {output / 'results-seeds.md'} and {output / 'results-seeds.json'}")
    return summary
